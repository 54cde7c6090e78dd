"""What runs in a notebook's kernel: the first cell's setup(), and the modules cells import.

    import labkit.teach.notebook; labkit.teach.notebook.setup()    every course notebook's first cell
    from labkit.teach.notebook import lesson, tables               lesson cells
    from labkit.teach.notebook.widgets import StageStepper         widgets

`python -m labkit.teach.notebook clean|check|student ...`: the stored notebooks' tools
(labkit.teach.printed.stored).
"""
from .first_cell import setup
from ...lab import practice as _practice


def _draw_goal(target, start):
    """A challenge's goal drawn (labkit.lab.practice.GOAL_DRAWER): the target, what is new marked."""
    from ...draw import diagram
    return diagram.figure(target, start)


_practice.GOAL_DRAWER = _draw_goal

__all__ = ["setup"]
