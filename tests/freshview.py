"""A fresh machine's view, for the tests: this process's own mount namespace in which
/run/netns, /run/labkit and /etc/netns do not exist, whatever the machine has.

What labkit then creates there (namespace mounts, journals, /etc/netns and its files) is seen
by this process and its children alone, so test processes run side by side (pytest-xdist
workers, each in a view of its own) even on the default lab, and every run meets the folders
a fresh machine lacks. Nothing of the machine's own network is changed: network namespaces
are not touched here.

- /run: a tmpfs over it, every entry of the machine's /run bound back except netns and labkit
  (as a user's world does, labkit.kernel.keeper.provide);
- /etc: an overlay whose upper layer is that tmpfs, with netns whited out: writes to /etc
  (labkit's /etc/netns, useradd's /etc/passwd) stay in the view, and renames work (a bind-back
  of /etc/passwd would refuse useradd's rename with EBUSY).

Run as root, from the thread that will run the tests (unshare of a mount namespace acts on
the calling thread; threads and processes it starts later inherit it). `python
tests/freshview.py CMD...` runs a command in a fresh view.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from labkit.kernel import keeper, userns  # noqa: E402

CLONE_NEWNS = 0x00020000
HIDDEN = {"/run": ("netns", "labkit"), "/etc": ("netns",)}
LAYERS = "/run/.labkit-fresh-etc"  # the /etc overlay's upper and work directories (in the tmpfs)


def enter() -> None:
    """Move the calling thread into a fresh view (see the module's text); raises OSError."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare(CLONE_NEWNS): {os.strerror(err)}")
    userns.mount("none", "/", None, keeper.MS_REC | keeper.MS_PRIVATE)
    # an enclosing view's layers are left out too: a view entered inside one (tests/standin.py
    # in an xdist worker) makes its own in its own tmpfs
    keeper.cover("/run", HIDDEN["/run"] + (os.path.basename(LAYERS),))
    upper, work = os.path.join(LAYERS, "upper"), os.path.join(LAYERS, "work")
    os.makedirs(upper)
    os.makedirs(work)
    for name in HIDDEN["/etc"]:
        os.mknod(os.path.join(upper, name), 0o600 | 0o020000, os.makedev(0, 0))  # a whiteout
    userns.mount("overlay", "/etc", "overlay", 0, f"lowerdir=/etc,upperdir={upper},workdir={work}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python tests/freshview.py COMMAND [ARG...]  (as root)")
    enter()
    os.execvp(sys.argv[1], sys.argv[1:])
