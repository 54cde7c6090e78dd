"""What runs in a notebook's kernel: the first cell's setup(), and the modules cells import.

    import labkit.teach.notebook; labkit.teach.notebook.setup()    every course notebook's first cell
    from labkit.teach.notebook import lesson, tables               lesson cells
    from labkit.teach.notebook.widgets import StageStepper         widgets

`python -m labkit.teach.notebook clean|check|student ...`: the stored notebooks' tools
(labkit.teach.printed.stored).
"""
from .first_cell import setup

__all__ = ["setup"]
