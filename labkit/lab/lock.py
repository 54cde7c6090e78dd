"""One writer at a time: each lab's lock, a file beside its journal held with flock(2).

Every command that changes a lab (up, down, practice, a fault, NAT changes through a Lab,
clean) holds the lab's lock for its whole run; commands that only look (status, exec,
capture, draw, check) never take it. The kernel releases a flock when its process dies, so a
kill -9 never leaves a lab locked. A second writer prints one line to stderr naming what it
waits for, waits, then works from what the first left. The lock is re-entrant within a
process (`practice` calls `up`); threads of one process take turns. The lock file exists only
while someone holds or waits for it: the holder removes it on release, and whoever locked a
file that was removed meanwhile locks the new one instead (`_same_file`).
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import threading
import time

from ..errors import LabkitError, NotPrivileged
from .journal import run_dir
from .owner import command_line

SUFFIX = ".lock"


class LabBusy(LabkitError):
    """Another process kept changing the lab for longer than the caller would wait."""


def path(lab: str) -> str:
    """The lock file of lab `lab`, beside its journal."""
    return os.path.join(run_dir(), f"{lab or 'default'}{SUFFIX}")


def locked_labs() -> list[str]:
    """Labs that have a lock file now (held, waited for, or left by a killed process)."""
    with contextlib.suppress(OSError):
        return sorted("" if e == f"default{SUFFIX}" else e[:-len(SUFFIX)]
                      for e in os.listdir(run_dir()) if e.endswith(SUFFIX))
    return []


class _Hold:
    def __init__(self):
        self.turn = threading.RLock()
        self.fd: int | None = None
        self.depth = 0


_guard = threading.Lock()
_holds: dict[str, _Hold] = {}


@contextlib.contextmanager
def held(lab: str, wait: float | None = None):
    """Hold lab `lab`'s lock for the block. Waits for another writer as long as it takes
    (`wait` None; Ctrl-C stops the wait) or `wait` seconds, then raises LabBusy."""
    key = path(lab)
    with _guard:
        hold = _holds.setdefault(key, _Hold())
    if not hold.turn.acquire(timeout=-1 if wait is None else wait):
        raise LabBusy(f"lab {lab or '(default)'!r} is being changed by another thread of this "
                      f"process: try again when it is done")
    try:
        if hold.depth == 0:
            hold.fd = _acquire(lab, key, wait)
        hold.depth += 1
        try:
            yield
        finally:
            hold.depth -= 1
            if hold.depth == 0:
                fd, hold.fd = hold.fd, None
                _release(key, fd)
    finally:
        hold.turn.release()


def holding(lab: str) -> bool:
    """True if this process holds lab `lab`'s lock now."""
    hold = _holds.get(path(lab))
    return hold is not None and hold.depth > 0


def _open(p: str) -> int:
    for _ in range(100):  # the directory may be removed by a writer that just finished
        try:
            os.makedirs(os.path.dirname(p), exist_ok=True)
            return os.open(p, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:
            continue
        except PermissionError:
            from ..kernel import privilege
            privilege.require()
            raise NotPrivileged(f"cannot create the lab lock {p}: permission denied; run labkit "
                                f"as the user that made the lab (root: sudo labkit ...)") from None
    raise LabkitError(f"cannot create the lab lock {p}: its directory keeps disappearing")


def _acquire(lab: str, p: str, wait: float | None) -> int:
    deadline = None if wait is None else time.monotonic() + wait
    said = False
    while True:
        fd = _open(p)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not said:
                    said = True
                    print(f"labkit: lab {lab or '(default)'!r} is being changed by {_holder(fd)}: "
                          f"waiting for it to finish", file=sys.stderr, flush=True)
                if not _wait(fd, deadline):
                    raise LabBusy(f"lab {lab or '(default)'!r} is still being changed by "
                                  f"{_holder(fd)} after {wait:g} s: try again when it is done"
                                  ) from None
        except BaseException:
            os.close(fd)
            raise
        if _same_file(fd, p):
            return fd
        os.close(fd)  # the file was removed while we waited (its holder finished): lock anew


def _wait(fd: int, deadline: float | None) -> bool:
    """Block until the lock is ours (True), or poll until `deadline` (False if not got)."""
    if deadline is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return True
    while time.monotonic() < deadline:
        time.sleep(0.01)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
    return False


def _same_file(fd: int, p: str) -> bool:
    try:
        st = os.stat(p)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


def _release(p: str, fd: int) -> None:
    try:
        with contextlib.suppress(FileNotFoundError):
            if _same_file(fd, p):
                os.unlink(p)  # while still held: a waiter on it will lock a new file
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(p))  # only when no lab has a journal or lock there
    finally:
        os.close(fd)


def holder(lab: str) -> str | None:
    """Who else holds lab `lab`'s lock now, as "pid N (command line)"; None if nobody (or
    this process) does. Only reads (/proc/locks): never takes the lock, never waits."""
    try:
        st = os.stat(path(lab))
    except OSError:
        return None
    return _holding(st, skip=os.getpid())


def _holder(fd: int) -> str:
    """The process holding the lock on `fd`'s file, as "pid N (command line)"."""
    return _holding(os.fstat(fd)) or "another process"


def _holding(st: os.stat_result, skip: int | None = None) -> str | None:
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/locks") as f:
            for line in f:
                fields = line.split()
                if "->" not in fields and len(fields) > 5 and fields[5] == device:
                    pid = int(fields[4])
                    return None if pid == skip else f"pid {pid} ({command_line(pid) or 'gone'})"
    return None
