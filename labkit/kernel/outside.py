"""The machine's network, kept by a process whose work moved into a world's network namespace.

A world's network has no way out (labkit.kernel.world), yet a student's checks must reach the
class's service on the hub (LABKIT_CLASS_URL, on the machine's loopback). A socket belongs to
the network namespace of the thread that made it, and a thread keeps its own namespace when
another enters one: so a process keeps one thread on the machine's network, started just
before it (or its cell thread, in a Jupyter kernel) enters the world's, and makes its sockets
to the service there. `keep()` starts it; `call(fn)` runs fn there (or here, when none was
kept: root, or no world), `submit(fn)` hands it over without waiting. Only under a hub (`wanted()`); elsewhere no thread is started.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

_kept: list[ThreadPoolExecutor] = []


def wanted() -> bool:
    """Whether a thread should be kept: under a hub whose class service records checks."""
    return bool(os.environ.get("LABKIT_CLASS_URL"))


def keep() -> None:
    """Start the thread, from a thread still on the machine's network (once per process)."""
    if not _kept:
        pool = ThreadPoolExecutor(1, thread_name_prefix="labkit-machine-network")
        pool.submit(int).result()   # the thread exists now, in this thread's namespaces
        _kept.append(pool)


def kept() -> bool:
    """Whether this process kept a thread on the machine's network."""
    return bool(_kept)


def submit(fn, *args):
    """Run fn(*args) in the kept thread, without waiting (a Future); the interpreter waits for
    what was handed over before it exits. Only where `kept()`."""
    return _kept[0].submit(fn, *args)


def call(fn, *args, timeout: float | None = 90.0):
    """fn(*args) on the machine's network: in the kept thread if there is one, else here."""
    if not _kept:
        return fn(*args)
    return _kept[0].submit(fn, *args).result(timeout)
