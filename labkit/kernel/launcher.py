"""`python -m labkit.kernel.launcher [--] CMD...`: run CMD inside this user's world (entered,
or started); the Jupyter kernel "Python (labkit lab)" is ipykernel run this way.

It enters the world while single-threaded, then execs CMD, which is then root of the world
with every capability: notebooks run unchanged. Where the machine refuses a world, CMD runs
anyway, outside, with LABKIT_WORLD_PROBLEM saying why and the fix, so the notebook's first
labkit call says it once (labkit.kernel.privilege). Root needs no world: CMD runs as it is.
"""
from __future__ import annotations

import os
import sys

from . import world
from ..errors import LabkitError


def main(argv: list[str]) -> None:
    """Enter (or start) the world, then exec `argv`; never returns."""
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        sys.exit("usage: python -m labkit.kernel.launcher [--] CMD... (e.g. python -m "
                 "ipykernel_launcher -f CONNECTION_FILE)")
    if world.wanted():
        try:
            world.enter()
        except LabkitError as e:
            os.environ["LABKIT_WORLD_PROBLEM"] = getattr(e, "why", str(e))
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
