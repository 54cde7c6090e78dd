"""Mount points counted, not assumed: how many mounts sit on a path, and removing a path
that may carry several (stacked bind mounts, from any cause: two processes that each mounted
a namespace there, or a person's `mount --bind`).

Read from /proc/self/mountinfo, so it is this process's mount namespace that counts.
"""
from __future__ import annotations

import ctypes
import os
import re

MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)

MAX_UNMOUNTS = 64  # per path and run: far more than any stacking seen (two per path, issue 16)


def mount_counts(paths: list[str]) -> dict[str, int]:
    """How many mounts sit on each of `paths` (stacked bind mounts count each), from
    /proc/self/mountinfo: this process's mount namespace. Only mounts the path reaches count:
    those stacked on the mount its directory is on, not ones hidden under a later mount of
    the directory (a user's world has a tmpfs over /run/netns, above the machine's mounts)."""
    wanted = {os.path.join(os.path.realpath(os.path.dirname(p)), os.path.basename(p)): p for p in paths}
    under = {d: _mount_id(d) for d in {os.path.dirname(point) for point in wanted}}
    stacks: dict[str, dict[int, int]] = {}  # point -> {parent mount id: mount id}
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            fields = line.split(b" ", 5)
            if len(fields) > 4:
                point = _unescape(fields[4])
                if point in wanted:
                    stacks.setdefault(point, {})[int(fields[1])] = int(fields[0])
    counts = dict.fromkeys(paths, 0)
    for point, stack in stacks.items():
        mount = under[os.path.dirname(point)]
        if mount is None:  # the directory's mount is unknown: count them all, as before
            counts[wanted[point]] = len(stack)
            continue
        while mount in stack:
            mount = stack[mount]
            counts[wanted[point]] += 1
    return counts


def _mount_id(directory: str) -> int | None:
    """Id of the mount that `directory` is on (its top mount, as a path lookup reaches it)."""
    try:
        fd = os.open(directory, os.O_PATH | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        with open(f"/proc/self/fdinfo/{fd}") as f:
            for line in f:
                if line.startswith("mnt_id:"):
                    return int(line.split()[1])
    except OSError:
        pass
    finally:
        os.close(fd)
    return None


def _unescape(field: bytes) -> str:
    """A mountinfo path: octal escapes (\\040 for a space) back to characters."""
    if b"\\" in field:
        field = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), field)
    return field.decode(errors="surrogateescape")


def remove_all(paths: dict[str, str]) -> dict[str, str]:
    """Unmount each path (name -> path) until it is no longer a mount point, detaching busy
    mounts (MNT_DETACH: they go when their last user does), then remove the file. Returns
    name -> why, for those that could not be removed."""
    failed: dict[str, str] = {}
    errors: dict[str, int] = {}
    left = mount_counts(list(paths.values()))
    for _ in range(MAX_UNMOUNTS):
        todo = [p for p, count in left.items() if count]
        if not todo:
            break
        for p in todo:
            for _ in range(left[p]):
                if _libc.umount2(p.encode(), MNT_DETACH) != 0:
                    errors[p] = ctypes.get_errno()
                    break
        left = mount_counts(todo)
    for name, p in paths.items():
        if left.get(p):
            err = errors.get(p)
            why = f": {os.strerror(err)}" if err else ""
            failed[name] = (f"{p} is still mounted {left[p]} time(s) after unmounting it{why} "
                            f"(see grep {name} /proc/self/mountinfo)")
            continue
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass
        except OSError as e:
            failed[name] = f"cannot remove {p}: {e.strerror} (errno {e.errno})"
    return failed
