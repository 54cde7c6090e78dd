"""labkit: learn container networking on the real Linux kernel, one stage at a time.

    from labkit import Lab, Blueprint
    Lab().up("bridge")                                   # a stage of the demo
    bp = Blueprint("mine").namespace("host", "host")...  # or a lab of one's own
    Lab("diy").up(bp)                                    # or a TOML file's path, or a dict

`import labkit` stays light (no scapy, matplotlib or widgets until they are used).
"""
from .errors import LabkitError

__version__ = "0.1.0"
__all__ = ["LabkitError", "Lab", "Blueprint", "Topology", "load_blueprint", "__version__"]


def __getattr__(name):
    if name == "Lab":
        from .lab import Lab
        return Lab
    if name in ("Blueprint", "Topology"):
        from . import model
        return getattr(model, name)
    if name == "load_blueprint":
        from .model.topology_file import load
        return load
    raise AttributeError(f"module 'labkit' has no attribute {name!r}")
