"""`python -m labkit.kernel.launcher --kernel -f FILE`: a Jupyter kernel (ipykernel) in this
user's world; `python -m labkit.kernel.launcher [--] CMD...`: any command in it.

The launcher enters the world (starting it if needed) while single-threaded, then execs. A
kernel cannot enter the world's network namespace at once: Jupyter reaches it on the machine's
loopback (127.0.0.1), which the world's network does not share. So the kernel enters the
world's user and mount namespaces (root there, every capability), binds its sockets on the
machine's network, and only then, as an IPython extension (`load_ipython_extension`, run in
the thread that runs the cells), moves that thread into the world's network: its sockets stay
where they were made, and the cells, their threads and processes are in the world. Notebooks
run unchanged.

Where the machine refuses a world, the kernel runs anyway, outside, with LABKIT_WORLD_PROBLEM
saying why and the fix, so the notebook's first labkit call says it (labkit.kernel.privilege).
Root needs no world: the kernel runs as it is.
"""
from __future__ import annotations

import os
import sys

from . import outside, userns, world
from ..errors import LabkitError

NET_FD = "LABKIT_WORLD_NET_FD"   # the world's network namespace, open across the exec


def main(argv: list[str]) -> None:
    """Enter (or start) the world, then exec the kernel or `argv`; never returns."""
    kernel = argv[:1] == ["--kernel"]
    argv = argv[1:] if argv[:1] in (["--"], ["--kernel"]) else argv
    if not argv and not kernel:
        sys.exit("usage: python -m labkit.kernel.launcher --kernel -f CONNECTION_FILE, "
                 "or python -m labkit.kernel.launcher [--] CMD...")
    if kernel:
        argv = [sys.executable, "-m", "ipykernel_launcher", *argv]
    if world.wanted():
        try:
            entered = world.enter(net=not kernel)
            if kernel:
                fd = os.open(f"/proc/{entered.pid}/ns/net", os.O_RDONLY)
                os.set_inheritable(fd, True)  # open across the exec, for the extension
                os.environ[NET_FD] = str(fd)
                argv.append("--IPKernelApp.extra_extensions=labkit.kernel.launcher")
        except LabkitError as e:
            os.environ["LABKIT_WORLD_PROBLEM"] = getattr(e, "why", str(e))
    os.execvp(argv[0], argv)


def load_ipython_extension(ip) -> None:
    """In the kernel, once its sockets are bound: move the thread that runs the cells into the
    world's network namespace (threads and processes it starts follow)."""
    fd = os.environ.pop(NET_FD, None)
    if fd is not None:
        if outside.wanted():
            outside.keep()   # a thread left on the machine's network, for the class's service
        userns.setns(int(fd), userns.CLONE_NEWNET)
        os.close(int(fd))


if __name__ == "__main__":
    main(sys.argv[1:])
