"""Network namespaces: create, enter, list, delete (ending their processes), run commands in them.

Namespaces are bind mounts under `netns_dir()` (default /run/netns, where `ip netns` looks;
set LABKIT_NETNS_DIR to move it). `entered(name)` is the one helper that switches the calling
thread into a namespace and always switches it back (`create` switches back the same way):
netlink sockets and packet sockets opened inside stay bound to that namespace after the
switch back, and a process started inside runs there. `command(name, argv, own_etc=...)` is
the one argv that runs a command in a namespace, with or without the namespace's own /etc
files (see there why a lesson needs each).
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time

from ..errors import KernelError, UnknownName
from . import mounts, places, process

CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_SHARED = 1 << 20

_libc = ctypes.CDLL(None, use_errno=True)


def netns_dir() -> str:
    """Directory holding the namespace bind mounts (LABKIT_NETNS_DIR, default /run/netns)."""
    return places.current().netns_dir


def path(name: str) -> str:
    """Path of namespace `name`'s bind mount."""
    return os.path.join(netns_dir(), name)


def _oserror(what: str, name: str) -> KernelError:
    err = ctypes.get_errno()
    return KernelError(f"{what} for namespace {name!r} failed: {os.strerror(err)} (errno {err})")


def _share_dir(directory: str) -> None:
    """Make `directory` a shared mount point, as `ip netns add` does, so bind mounts propagate."""
    os.makedirs(directory, exist_ok=True)
    if _libc.mount(b"", directory.encode(), b"none", MS_SHARED | MS_REC, None) == 0:
        return
    if _libc.mount(directory.encode(), directory.encode(), b"none", MS_BIND | MS_REC, None) != 0:
        raise _oserror("bind-mounting the namespace directory", directory)
    if _libc.mount(b"", directory.encode(), b"none", MS_SHARED | MS_REC, None) != 0:
        raise _oserror("sharing the namespace directory", directory)


def exists(name: str) -> bool:
    """True if namespace `name` is mounted."""
    p = path(name)
    return os.path.exists(p) and _is_namespace(p)


def _is_namespace(p: str) -> bool:
    try:
        fd = os.open(p, os.O_RDONLY)
    except OSError:
        return False
    try:
        # NS_GET_NSTYPE ioctl would be exact; an fstat inode on nsfs is enough here
        return os.fstat(fd).st_dev != os.stat(os.path.dirname(p)).st_dev
    finally:
        os.close(fd)


_dir_shared = set()


def prepare_dir() -> str:
    """Make `netns_dir()` exist as a shared mount point (once per process); returns it."""
    directory = netns_dir()
    if directory not in _dir_shared:
        _share_dir(directory)
        _dir_shared.add(directory)
    return directory


def create(name: str, inside=None, like: str | None = None) -> None:
    """Create namespace `name`; a no-op if it exists. Undo: `delete(name)`.

    `inside()`, if given, runs in the new namespace before anything else exists in it (saves
    entering it again, e.g. to set sysctls); a string it returns is a failure to report.
    `like`: an empty file in `netns_dir()` whose hard link becomes the mount point instead
    of a new file (cheaper where /run/netns is on disk; mounts attach to the name, so the
    links stay independent)."""
    if exists(name):
        return
    prepare_dir()
    p = path(name)
    linked = False
    if like is not None:
        with contextlib.suppress(OSError):  # EXDEV, EMLINK, EEXIST...: make a file as usual
            os.link(like, p)
            linked = True
    if not linked:
        try:
            os.close(os.open(p, os.O_RDONLY | os.O_CREAT, 0))
        except OSError as e:
            raise KernelError(f"cannot create {p}: {e.strerror}") from None
    try:
        with _coming_back(name):
            if _libc.unshare(CLONE_NEWNET) != 0:
                raise _oserror("unshare(CLONE_NEWNET)", name)
            if _libc.mount(b"/proc/thread-self/ns/net", p.encode(), b"none", MS_BIND, None) != 0:
                raise _oserror("bind-mounting", name)
            failed = inside() if inside is not None else None
    except KernelError:
        with contextlib.suppress(OSError):
            os.unlink(p)
        raise
    if failed:
        raise KernelError(f"{failed} in the new namespace {name!r} failed "
                          f"(it exists now: `labkit down` removes it)")


def inode(name: str) -> int | None:
    """Inode of namespace `name` (identity used to find its processes), None if it is gone."""
    try:
        return os.stat(path(name)).st_ino if exists(name) else None
    except FileNotFoundError:
        return None


def pids(name: str) -> list[int]:
    """Processes whose network namespace is `name` (found by namespace identity, not by name)."""
    ino = inode(name)
    if ino is None:
        return []
    return _pids_in({ino}).get(ino, [])


def _pids_in(inodes: set[int]) -> dict[int, list[int]]:
    """One scan of /proc: namespace inode -> the processes in it, for the given inodes."""
    found: dict[int, list[int]] = {}
    if not inodes:
        return found
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ino = os.stat(f"/proc/{entry}/ns/net").st_ino
        except OSError:
            continue
        if ino in inodes:
            found.setdefault(ino, []).append(int(entry))
    return found


def _kill(victims: list[int], timeout: float) -> int:
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(process.alive(p) for p in victims):
        _reap(victims)
        time.sleep(0.005)
    return len(victims)


def _reap(victims: list[int]) -> None:
    for pid in victims:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


def delete(name: str) -> None:
    """Delete namespace `name` after ending its processes; a no-op if it is already gone."""
    delete_many([name])


_before_delete: list = []


def before_delete(callback) -> None:
    """Call `callback(names)` before namespaces `names` are deleted (captures register here:
    an open packet socket would keep a deleted namespace and its interfaces alive)."""
    if callback not in _before_delete:
        _before_delete.append(callback)


def delete_many(names: list[str], timeout: float = 5.0, problems: dict[str, str] | None = None
                ) -> list[str]:
    """Delete namespaces `names` as `delete` does each, in order, finding the processes of all
    of them in one scan of /proc (`delete` scans /proc once per namespace).
    Returns the names removed. Each goes whatever it meets (see `mounts.remove_all`); one that
    cannot be removed is put in `problems` (name -> why), or, without `problems`, named in a
    KernelError raised once every other one is gone."""
    present = [n for n in names if os.path.lexists(path(n))]
    for callback in list(_before_delete) if present else ():
        callback(present)
    inodes = {ino for ino in map(inode, present) if ino is not None}
    found = _pids_in(inodes)
    _kill(_residents(found), timeout)
    held = []  # keeps each namespace alive, so no new namespace can take its inode meanwhile
    for name in present:
        with contextlib.suppress(OSError):
            held.append(os.open(path(name), os.O_RDONLY | os.O_CLOEXEC))
    try:
        failed = mounts.remove_all({name: path(name) for name in present})
        late = _pids_in(inodes)  # a process that entered between the scan and the unmount
        _kill(_residents(late), timeout)
    finally:
        for fd in held:
            os.close(fd)
    if problems is not None:
        problems.update(failed)
    elif failed:
        raise KernelError("could not delete " + "; ".join(f"namespace {n!r}: {why}"
                                                          for n, why in failed.items()))
    return [n for n in present if n not in failed]


def _residents(found: dict[int, list[int]]) -> list[int]:
    """The processes of `found` (namespace inode -> pids) that live in their namespace, not
    this one, nor a visitor: a process that entered it with setns and holds its way back (an
    open handle on another network namespace), as labkit's own readers (`status`, a notebook
    drawing the lab) do for a moment. A visitor must not be killed for looking."""
    residents = []
    for ino, group in found.items():
        for pid in group:
            if pid != os.getpid() and not _visiting(pid, ino):
                residents.append(pid)
    return residents


def _visiting(pid: int, ino: int) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("net:[") and target != f"net:[{ino}]":
            return True
    try:  # a visitor that left since the scan (and closed its way back) is no resident either
        return os.stat(f"/proc/{pid}/ns/net").st_ino != ino
    except OSError:
        return True


def names() -> list[str]:
    """Names of every namespace mounted in `netns_dir()`."""
    try:
        return sorted(n for n in os.listdir(netns_dir()) if exists(n))
    except FileNotFoundError:
        return []


@contextlib.contextmanager
def entered(name: str):
    """Run the block with the calling thread inside namespace `name`; always switches back.

    Sockets opened inside stay in `name`. Only this thread moves: use it from the thread
    that does the work (other threads, and scapy's cached interface list, do not follow).
    """
    try:
        target = os.open(path(name), os.O_RDONLY)
    except FileNotFoundError:
        raise UnknownName(f"network namespace {name!r} does not exist "
                          f"(create it first, or check the lab name)") from None
    try:
        with _coming_back(name):
            if _libc.setns(target, CLONE_NEWNET) != 0:
                raise _oserror("entering", name)
            yield
    finally:
        os.close(target)


@contextlib.contextmanager
def _coming_back(name: str):
    """Switch the calling thread back to the network namespace it is in now when the block
    ends, however it ends (`name`: the namespace it goes to, for the message)."""
    orig = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        yield
    finally:
        try:
            if _libc.setns(orig, CLONE_NEWNET) != 0:  # pragma: no cover - a valid fd cannot fail
                raise _oserror("switching back from", name)
        finally:
            os.close(orig)


def command(name: str | None, argv: list[str], *, own_etc: bool = True, check: bool = True) -> list[str]:
    """The argv that runs `argv` inside namespace `name` (None: where this process is).

    `own_etc` True: `ip netns exec NAME`, which gives the command a mount namespace of its own
    and binds /etc/netns/NAME/* over /etc there: the namespace's own resolv.conf and hosts
    (a container resolving names, as the `names` lesson shows). Namespaces the command adds
    (`ip netns add`) are then not seen outside it. False: `nsenter --net`, in this mount
    namespace and this /etc: what a shell in the seed's host needs, where the student adds
    the containers' namespaces. Namespaces outside /run/netns (LABKIT_NETNS_DIR) are not
    found by `ip netns exec`: nsenter there either way. `check`: UnknownName if `name` does
    not exist (False: the argv all the same, as a command for a person to type)."""
    if name is None:
        return list(argv)
    if check and not exists(name):
        raise UnknownName(f"network namespace {name!r} does not exist")
    if own_etc and netns_dir() == "/run/netns":
        return ["ip", "netns", "exec", name, *argv]
    return ["nsenter", f"--net={path(name)}", *argv]


def run(name: str | None, argv: list[str], *, check: bool = True, timeout: float | None = 60,
        input: str | None = None) -> subprocess.CompletedProcess:
    """Run `argv` inside namespace `name` (None: where this process is) and wait; output is
    captured as text."""
    where = f"in namespace {name!r}" if name is not None else "in this process's namespace"
    try:
        result = subprocess.run(command(name, argv), capture_output=True, text=True,
                                timeout=timeout, input=input)
    except FileNotFoundError as e:
        from ..errors import MissingTool
        raise MissingTool(f"{e.filename} is not installed: apt-get install iproute2") from None
    except subprocess.TimeoutExpired:  # subprocess.run has killed it
        raise KernelError(f"`{' '.join(argv)}` {where} did not finish within "
                          f"{timeout} s and was stopped") from None
    if check and result.returncode != 0:
        raise KernelError(f"`{' '.join(argv)}` {where} failed "
                          f"(exit {result.returncode}): {result.stderr.strip() or result.stdout.strip()}")
    return result


def spawn(name: str, argv: list[str], **popen_kwargs) -> subprocess.Popen:
    """Start `argv` in the background inside namespace `name`; it ends when the namespace is deleted."""
    popen_kwargs.setdefault("stdin", subprocess.DEVNULL)
    popen_kwargs.setdefault("start_new_session", True)
    return subprocess.Popen(command(name, argv), **popen_kwargs)
