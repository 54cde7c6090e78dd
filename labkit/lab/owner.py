"""Who owns a lab: the long-lived process that works in it (a notebook kernel), while it lives.

A `Lab` owns what it brings up when `own=True`; `own=None` (the default) means "only in a
Jupyter kernel": the kernel is the long-lived process a student works in, while the `labkit`
command, a script or a test ends (or downs its lab) as soon as it is done, so holding on to
the lab would only get in another's way. The owner is recorded in the lab's journal as pid,
start time (from /proc/PID/stat: a pid re-used by another process is not the owner) and
command line. Another process's `up` or `down` is refused (`LabOwned`) unless it takes the lab
over (`take=True`, `labkit ... --take`); a process the owner started itself (`!labkit up` in a
notebook cell) counts as the owner. When the owner is gone, the lab is free again.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from ..errors import LabkitError
from ..kernel import process

JOURNAL_KEY = "owner"


class LabOwned(LabkitError):
    """The lab belongs to another live process (a notebook kernel); the message names it."""


@dataclass(frozen=True)
class Process:
    """A process by identity: pid, start time (clock ticks after boot) and command line."""
    pid: int
    start: str
    command: str

    def to_dict(self) -> dict:
        return {"pid": self.pid, "start": self.start, "command": self.command}

    @classmethod
    def from_dict(cls, data) -> Process | None:
        try:
            return cls(int(data["pid"]), str(data["start"]), str(data.get("command", "")))
        except (TypeError, KeyError, ValueError):
            return None

    def alive(self) -> bool:
        """True if this very process still runs (same pid and start time, not a zombie)."""
        return process.stat(self.pid)[1] == self.start

    def describe(self) -> str:
        """"pid 1234 (python -m ipykernel_launcher -f ...)": how messages name it."""
        return f"pid {self.pid} ({self.command or '?'})"


def command_line(pid: int) -> str:
    """The command line of `pid` as one line (at most 160 characters); "" if unreadable."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().rstrip(b"\0").split(b"\0")
    except OSError:
        return ""
    text = " ".join(" ".join(a.decode(errors="replace").split()) for a in argv)
    return text if len(text) <= 160 else text[:157] + "..."


def this_process() -> Process:
    """The calling process."""
    pid = os.getpid()
    return Process(pid, process.stat(pid)[1] or "", command_line(pid))


def in_jupyter_kernel() -> bool:
    """True inside a Jupyter (IPython) kernel: a long-lived process a person works in."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and getattr(shell, "kernel", None) is not None


def _lineage() -> set[tuple[int, str]]:
    """(pid, start) of this process and each of its ancestors."""
    found, pid = set(), os.getpid()
    while pid and pid not in {p for p, _ in found}:
        parent, start = process.stat(pid)
        if start is None:
            break
        found.add((pid, start))
        pid = parent
    return found


def of(journal) -> Process | None:
    """The lab's owner if it still lives (None: the lab is free)."""
    owner = Process.from_dict(journal.get(JOURNAL_KEY))
    return owner if owner is not None and owner.alive() else None


def is_mine(owner: Process) -> bool:
    """True if `owner` is this process or one of its ancestors (a command a notebook ran)."""
    return (owner.pid, owner.start) in _lineage()


def claim(journal, lab: str, own: bool, take: bool) -> None:
    """Before changing lab `lab`: refuse if another live process owns it (LabOwned) unless
    `take`; then record this process as the owner if `own`, or clear an owner that is gone
    or taken over. Call with the lab's lock held."""
    check(journal, lab, take)
    owner = of(journal)
    foreign = owner is not None and not is_mine(owner)
    if own and (owner is None or foreign):
        journal.update({JOURNAL_KEY: this_process().to_dict()})
    elif not own and (foreign or owner is None and journal.get(JOURNAL_KEY) is not None):
        journal.update({JOURNAL_KEY: None})


def check(journal, lab: str, take: bool) -> None:
    """Refuse (LabOwned) if another live process owns lab `lab`, unless `take`."""
    owner = of(journal)
    if owner is not None and not is_mine(owner) and not take:
        raise LabOwned(refusal(lab, owner))


def refusal(lab: str, owner: Process) -> str:
    """What a person reads when another process owns the lab, and how to go on."""
    kernel = "ipykernel" in owner.command
    other = "t2" if lab != "t2" else "t3"
    mine = f"Lab({lab!r}, take=True)" if lab else "Lab(take=True)"
    stop = (f"shut that kernel down (Kernel > Shut Down Kernel in its notebook, or kill {owner.pid})"
            if kernel else f"stop that process (kill {owner.pid})")
    return (f"lab {lab or '(default)'!r} belongs to {'a notebook kernel' if kernel else 'another process'}, "
            f"{owner.describe()}, which brought it up and still runs. Go on with another lab "
            f"(Lab({other!r}), or --lab {other}), or {stop}, or take the lab over ({mine}, or --take)")
