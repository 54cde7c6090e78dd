"""A lab: what it made (journal), converging the kernel to a topology, reading it back, services."""
from .lab import Lab
from .leftovers import clean

__all__ = ["Lab", "clean"]
