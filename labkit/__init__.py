"""labkit: learn container networking on the real Linux kernel, one stage at a time.

`import labkit` stays light (no scapy, matplotlib or widgets until they are used).
"""
from .errors import LabkitError

__version__ = "0.1.0"
__all__ = ["LabkitError", "Lab", "__version__"]


def __getattr__(name):
    if name == "Lab":
        from .lab import Lab
        return Lab
    raise AttributeError(name)
