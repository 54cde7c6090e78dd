"""The keeper: the small process that holds a user's world while it lives (podman's rootless
pause process is the model).

`start()` forks twice (the keeper is nobody's child, so it never lingers as a zombie); the
keeper unshares a user namespace (this user mapped to root), a network namespace (the user's
"machine") and a mount namespace, gives it fresh, empty /run/netns, /run/labkit and
/etc/netns, says it is ready, and becomes `sleep infinity` (about 1 MB). Its mounts are
private: nothing mounted in the world is seen outside, nor the machine's later mounts inside
(root's namespaces made after the world started never reach its mount table).

A directory that the machine lacks (a laptop that never ran `ip netns add` has no /run/netns)
cannot be made in a directory owned by the real root; its parent is then covered with a
tmpfs holding the new directory and, bind-mounted back, every entry the parent had (submounts
included): the world sees /run and /etc as they were when it started, except that a file the
machine later replaces by renaming (/etc/resolv.conf, /etc/passwd) keeps its old content there.
"""
from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import stat

from . import userns
from ..errors import KernelError

MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
# parent -> the directories the world gets fresh and empty
PRIVATE = {"/run": ("netns", "labkit"), "/etc": ("netns",)}
NAME = "labkit-world"
READY_SECONDS = 10.0


def start(private: dict[str, tuple[str, ...]] | None = None) -> int:
    """Start a keeper in new user, network and mount namespaces; returns its pid once the
    world is ready. KernelError (with the kernel's errno) if a step is refused."""
    uid, gid = os.geteuid(), os.getegid()
    sleep = shutil.which("sleep")
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)  # closes at the keeper's exec: then it is ready
    middle = os.fork()
    if middle == 0:
        try:
            os.close(read_fd)
            os.setsid()  # no terminal: Ctrl-C and hang-ups of the caller's never reach it
            if os.fork() == 0:
                _become_keeper(write_fd, uid, gid, sleep, PRIVATE if private is None else private)
        finally:
            os._exit(0)
    os.close(write_fd)
    os.waitpid(middle, 0)
    try:
        chunks = []
        while True:
            ready, _, _ = select.select([read_fd], [], [], READY_SECONDS)
            if not ready:
                raise KernelError(f"the keeper of the world did not start within {READY_SECONDS} s")
            chunk = os.read(read_fd, 4096)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_fd)
    said = b"".join(chunks).decode(errors="replace")
    if not said.startswith("pid "):
        raise KernelError(said.strip() or "the keeper of the world ended before it was ready")
    return int(said.split()[1])


def _become_keeper(report: int, uid: int, gid: int, sleep: str | None,
                   private: dict[str, tuple[str, ...]]) -> None:
    """In the keeper: make the namespaces, report the pid (or why not), exec sleep."""
    step = "unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS)"
    try:
        userns.unshare(userns.CLONE_NEWUSER | userns.CLONE_NEWNET | userns.CLONE_NEWNS)
        step = "mapping the user to root (uid_map, gid_map)"
        userns.map_to_root(uid, gid)
        step = "making the world's mounts its own"
        userns.mount("none", "/", None, MS_REC | MS_PRIVATE)
        for parent, names in private.items():
            step = f"giving the world its own {', '.join(os.path.join(parent, n) for n in names)}"
            provide(parent, names)
        with contextlib.suppress(OSError):  # /sys of the world's own network: for a person's ls
            userns.mount("sysfs", "/sys", "sysfs", 0)
        step = "bringing the world's loopback up"
        _loopback_up()  # a Jupyter kernel started in the world (labkit handout) talks over it
        os.chdir("/")
    except OSError as e:
        os.write(report, f"{step} failed: {e.strerror or e} (errno {e.errno}); "
                         f"`labkit doctor` says why and what to do".encode())
        os._exit(1)
    os.write(report, f"pid {os.getpid()}\n".encode())
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.closerange(3, 65536)  # the report pipe too: the caller sees end of file, ready
    if sleep:
        os.execv(sleep, [NAME, "infinity"])
    while True:  # no sleep(1) on the machine: wait here (a Python process, ~10 MB)
        signal.pause()


def _loopback_up() -> None:
    """Set `lo` up in this network namespace (SIOCGIFFLAGS, then SIOCSIFFLAGS with IFF_UP)."""
    import fcntl
    import socket
    import struct
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        flags = struct.unpack_from("16sH", fcntl.ioctl(sock, 0x8913, struct.pack("16sH22x", b"lo", 0)))[1]
        fcntl.ioctl(sock, 0x8914, struct.pack("16sH22x", b"lo", flags | 1))


def provide(parent: str, names: tuple[str, ...]) -> None:
    """Give this mount namespace fresh, empty directories `parent`/NAME: a tmpfs on each when
    all exist, else a tmpfs over `parent` with its entries bound back (see the module's text).
    Call it in a mount namespace of one's own, as root of its user namespace."""
    if all(os.path.isdir(os.path.join(parent, n)) for n in names):
        for name in names:
            userns.mount("tmpfs", os.path.join(parent, name), "tmpfs",
                         userns.MS_NOSUID | userns.MS_NODEV, "mode=0755")
        return
    cover(parent, names)
    for name in names:
        os.mkdir(os.path.join(parent, name), 0o755)


def cover(parent: str, left_out: tuple[str, ...]) -> None:
    """Put a tmpfs over `parent` with every entry it had bound back, except `left_out` (which
    then do not exist there). Call it in a mount namespace of one's own."""
    old = os.open(parent, os.O_PATH | os.O_DIRECTORY)
    try:
        entries = os.listdir(f"/proc/self/fd/{old}")
        mode = stat.S_IMODE(os.stat(parent).st_mode)
        userns.mount("tmpfs", parent, "tmpfs", userns.MS_NODEV, f"mode={mode:o}")
        for entry in entries:
            if entry not in left_out:
                _bind_back(f"/proc/self/fd/{old}/{entry}", os.path.join(parent, entry))
    finally:
        os.close(old)


def _bind_back(source: str, target: str) -> None:
    """Make `target` show what `source` (an entry of the covered directory) is: a symlink is
    copied, anything else bind-mounted (recursively) on a directory or file made for it."""
    try:
        st = os.lstat(source)
    except OSError:
        return
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(source), target)
        return
    if stat.S_ISDIR(st.st_mode):
        os.mkdir(target, stat.S_IMODE(st.st_mode))
    else:
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT, 0o644))
    with contextlib.suppress(OSError):  # an entry that cannot be bound stays an empty stand-in
        userns.mount(source, target, None, MS_BIND | MS_REC)
