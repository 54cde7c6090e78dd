"""Per-namespace sysctls, read and written through /proc/sys from inside the namespace."""
from __future__ import annotations

import os

from . import netns
from ..errors import KernelError

PROC_SYS = "/proc/sys"


def _file(key: str) -> str:
    return os.path.join(PROC_SYS, key.replace(".", "/"))


def applies(key: str) -> bool:
    """False for an IPv6 sysctl on a kernel booted without IPv6 (ipv6.disable=1): there is
    nothing to set, and IPv6 is off already."""
    return not key.startswith("net.ipv6.") or os.path.isdir(os.path.join(PROC_SYS, "net/ipv6"))


def read(ns: str, key: str) -> str | None:
    """Value of sysctl `key` (dotted, e.g. net.ipv4.ip_forward) in namespace `ns`, None if absent."""
    with netns.entered(ns):
        try:
            with open(_file(key)) as f:
                return f.read().strip()
        except FileNotFoundError:
            return None


def write(ns: str, key: str, value: str) -> str | None:
    """Set sysctl `key` in namespace `ns`; returns the old value (the undo is write(old)).

    A no-op returning None where the key does not apply (see `applies`)."""
    if not applies(key):
        return None
    with netns.entered(ns):
        try:
            with open(_file(key)) as f:
                old = f.read().strip()
            if old != str(value):
                with open(_file(key), "w") as f:
                    f.write(str(value))
            return old
        except OSError as e:
            raise KernelError(f"setting {key}={value} in namespace {ns!r} failed: {e.strerror}") from None


def write_here(sysctls) -> str | None:
    """Write sysctls (key, value pairs) in the calling thread's namespace; returns None, or
    "setting key=value (why)" for the first that failed.

    Paths are opened relative to their common directory, looked up once: each lookup under
    /proc/sys/net walks one dentry per namespace that used that name."""
    sysctls = tuple((key, value) for key, value in sysctls if applies(key))
    if not sysctls:
        return None
    paths = ["/proc/sys/" + key.replace(".", "/") for key, _ in sysctls]
    base = os.path.dirname(os.path.commonprefix([os.path.dirname(p) + "/" for p in paths]))
    try:
        dirfd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        return f"setting {sysctls[0][0]}={sysctls[0][1]} ({e.strerror})"
    try:
        for (key, value), p in zip(sysctls, paths):
            try:
                fd = os.open(os.path.relpath(p, base), os.O_WRONLY, dir_fd=dirfd)
                try:
                    os.write(fd, str(value).encode())
                finally:
                    os.close(fd)
            except OSError as e:
                return f"setting {key}={value} ({e.strerror})"
    finally:
        os.close(dirfd)
    return None
