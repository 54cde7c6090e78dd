"""Processes by identity: a pid and its start time, read from /proc (a pid alone is reused)."""
from __future__ import annotations


def stat(pid: int) -> tuple[int | None, str | None]:
    """(parent pid, start time in clock ticks after boot) of `pid`; (None, None) if it is gone
    or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return None, None
    if fields[0] in ("Z", "X"):
        return None, None
    return int(fields[1]), fields[19]


def start_time(pid: int) -> str | None:
    """Start time of `pid` (with the pid, its identity); None if it is gone or a zombie."""
    return stat(pid)[1]


def alive(pid: int) -> bool:
    """True if `pid` runs (not gone, not a zombie)."""
    return stat(pid)[1] is not None
