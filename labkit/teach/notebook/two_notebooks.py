"""Two notebooks of the course open at once: the second says so in its first cell, once.

A notebook kernel owns the lab it brought up while it runs (labkit.lab.owner), so a second
notebook's `Lab()` would be refused. `note()` is what `notebook.setup()` prints then: who owns
the default lab, and how to go on (a lab of this notebook's own, or shut the other kernel
down). Nothing is printed when no other live process owns it.
"""
from __future__ import annotations

from ...errors import LabkitError
from ...lab import journal as journal_mod
from ...lab import owner as owner_mod

_told: set[str] = set()


def free_lab(start: int = 2) -> str:
    """The first of t2, t3, ... that no other live process owns (for this notebook's own lab)."""
    k = start
    while True:
        name = f"t{k}"
        holder = owner_mod.of(journal_mod.Journal(name))
        if holder is None or owner_mod.is_mine(holder):
            return name
        k += 1


def note(lab: str = "") -> str | None:
    """What to say when another live process owns lab `lab` (None: it does not)."""
    holder = owner_mod.of(journal_mod.Journal(lab))
    if holder is None or owner_mod.is_mine(holder):
        return None
    mine = free_lab()
    what = f"lab {lab!r}" if lab else "the default lab"
    call = f"Lab({lab!r})" if lab else "Lab()"
    kernel = "ipykernel" in holder.command
    who = "Another notebook" if kernel else "Another process"
    stop = ("shut the other notebook's kernel down (Kernel > Shut Down Kernel there)" if kernel
            else f"stop that process (kill {holder.pid})")
    return (f"{who} is working in {what}: {holder.describe()}. Two hands on one lab would "
            f"undo each other's steps, so {call} is refused here while it runs.\n"
            f"Give this notebook a lab of its own: write Lab({mine!r}) where the cells say "
            f"{call} (and %%lab ROLE --lab {mine} in shell cells). Or {stop} and run "
            f"this cell again.")


def tell(lab: str = "") -> bool:
    """Print `note(lab)` once per process; True if it was printed now."""
    try:
        text = note(lab)
    except LabkitError:  # a journal it may not read: the lab's own commands will say why
        return False
    if text is None or lab in _told:
        return False
    _told.add(lab)
    print(text)
    return True
