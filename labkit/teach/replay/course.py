"""Where the course's notebooks are: one rule for every command and module that reads them.

    directory(given=None)   the first of:
        1. `given` (a command's `--notebooks DIR`);
        2. $LABKIT_NOTEBOOKS;
        3. ./notebooks, if it holds the course;
        4. the notebooks that come with labkit: the checkout's notebooks/ beside the package
           (a source tree, an editable install), else the copy shipped inside the package
           (labkit/teach/replay/notebooks/, package data of an installed labkit).
    notebooks(given=None)   its numbered notebooks (NN-name.ipynb), in the order of their names
    example(name)           examples/NAME beside the course's notebooks (08 reads one)

A directory "holds the course" when one of its notebooks starts the way every course notebook
does (`labkit.teach.notebook.setup()` in its first code cell, SETUP_MARK). A directory named
by 1 or 2 is taken as it is: a missing one is an error (BadValue), not a reason to look on.
The notebooks are also the recording that labkit.teach.replay.stored_outputs replays.
"""
from __future__ import annotations

import glob
import os

from ...errors import BadValue

ENVIRONMENT = "LABKIT_NOTEBOOKS"
SETUP_MARK = "labkit.teach.notebook.setup()"
_PACKAGE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))   # labkit/
SHIPPED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "notebooks")
CHECKOUT = os.path.join(os.path.dirname(_PACKAGE), "notebooks")


def holds_course(path: str) -> bool:
    """True if `path` is a directory with a course notebook in it (see SETUP_MARK)."""
    for nb in glob.glob(os.path.join(path, "*.ipynb")):
        try:
            with open(nb, encoding="utf-8") as f:
                if SETUP_MARK in f.read():
                    return True
        except OSError:
            continue
    return False


def directory(given: str | None = None) -> str:
    """The directory of the course's notebooks, by the rule of the module docstring."""
    for named, what in ((given, "--notebooks"), (os.environ.get(ENVIRONMENT), f"${ENVIRONMENT}")):
        if named:
            if not os.path.isdir(named):
                raise BadValue(f"{what} names {named}, which is not a directory of notebooks")
            return os.path.abspath(named)
    for path in (os.path.abspath("notebooks"), CHECKOUT, SHIPPED):
        if holds_course(path):
            return path
    return SHIPPED


def notebooks(given: str | None = None) -> list[str]:
    """The course's notebooks (NN-name.ipynb in `directory(given)`), in the order of their
    names; BadValue if there are none."""
    where = directory(given)
    found = sorted(glob.glob(os.path.join(where, "[0-9]*.ipynb")))
    if not found:
        raise BadValue(f"no notebooks in {where}: name a directory with --notebooks DIR "
                       f"or ${ENVIRONMENT}")
    return found


def example(name: str) -> str:
    """The path of examples/`name` beside the course's notebooks (the checkout's examples/,
    wherever the notebook itself was copied to); BadValue naming where it looked if missing."""
    for where in (directory(), CHECKOUT):
        path = os.path.join(os.path.dirname(where), "examples", name)
        if os.path.isfile(path):
            return path
    raise BadValue(f"no example {name!r} beside the course's notebooks ({directory()}): run the "
                   f"notebook from labkit's checkout, or set ${ENVIRONMENT} to its notebooks/")
