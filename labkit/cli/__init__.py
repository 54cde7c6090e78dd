"""The `labkit` command (see `commands`)."""
from .commands import main, parser

__all__ = ["main", "parser"]
