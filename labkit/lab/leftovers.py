"""Every lab's leftovers removed, after a crash too (`labkit clean`)."""
from __future__ import annotations

from . import journal as journal_mod
from . import etcfiles, lock, owner, service
from ..errors import KernelError, LabkitError
from ..kernel import privilege

CLEAN_WAIT = 60.0
"""Seconds `clean` waits for a writer busy with one lab before it goes on to the next."""


def clean() -> dict[str, list[str]]:
    """Remove every journaled lab's leftovers (after a crash too); returns lab -> what was removed.

    Takes each lab's lock in turn (waiting at most CLEAN_WAIT s) and leaves alone a lab that
    a live process owns (a notebook kernel). What it could not remove or left, and why, is
    named in one KernelError raised after everything else is done."""
    labs = sorted(set(journal_mod.labs()) | set(lock.locked_labs()))
    if labs:
        privilege.require()
    removed, problems = {}, []
    for lab in labs:
        try:
            with lock.held(lab, wait=CLEAN_WAIT):
                journal = journal_mod.Journal(lab)
                holder = owner.of(journal) if journal.exists() else None
                if holder is not None and not owner.is_mine(holder):
                    problems.append(f"lab {lab or '(default)'!r} left as it is: it belongs to "
                                    f"{holder.describe()}, which still runs (stop it, or "
                                    f"`labkit down{' --lab ' + lab if lab else ''} --take`)")
                elif journal.exists():
                    service.stop_recorded(journal)
                    removed[lab] = journal.undo()
                    if journal.left:
                        problems.append(journal.left_text())
        except LabkitError as e:
            problems.append(str(e))
    journal_mod.sweep()
    etcfiles.tidy_etc_dir()
    if problems:
        done = ", ".join(lab or "(default)" for lab in removed)
        raise KernelError("; ".join(problems) + (f" (cleaned the rest: {done})" if done else ""))
    return removed
