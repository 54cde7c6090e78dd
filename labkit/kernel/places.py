"""Where labkit keeps its files: the journals, the namespace mounts, the per-namespace /etc.

Each is read from the environment (LABKIT_RUN_DIR, LABKIT_NETNS_DIR, LABKIT_ETC_NETNS) unless
a caller has pinned a set with `pinned(...)`: a `Lab` pins the places it was made with for
each of its calls, so its `down` finds its journal whatever the environment says by then (a
test's monkeypatch undone before the lab fixture's teardown, a notebook that changed
os.environ). Pinning is process-wide, for the call's duration.
"""
from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Places:
    """The directories one lab's files live in."""
    run_dir: str    # journals, locks (LABKIT_RUN_DIR, default /run/labkit)
    netns_dir: str  # namespace bind mounts (LABKIT_NETNS_DIR, default /run/netns)
    etc_dir: str    # what `ip netns exec` binds over /etc (LABKIT_ETC_NETNS, default /etc/netns)

    @classmethod
    def from_environment(cls) -> Places:
        """The places the environment names now."""
        env = os.environ
        return cls(env.get("LABKIT_RUN_DIR", "/run/labkit"),
                   env.get("LABKIT_NETNS_DIR", "/run/netns"),
                   env.get("LABKIT_ETC_NETNS", "/etc/netns"))


_pinned: list[Places] = []


def current() -> Places:
    """The places pinned by the innermost `pinned`, else those of the environment."""
    return _pinned[-1] if _pinned else Places.from_environment()


@contextlib.contextmanager
def pinned(places: Places):
    """Use `places` (not the environment's) until the block ends; nests."""
    _pinned.append(places)
    try:
        yield places
    finally:
        _pinned.pop()


def kept(cls):
    """Class decorator: every public method and property of `cls` runs with its instance's
    `places` pinned, so an object's files stay where it began them."""
    def pinning(function):
        @functools.wraps(function)
        def call(self, *args, **kwargs):
            with pinned(self.places):
                return function(self, *args, **kwargs)
        return call
    for attribute, value in list(vars(cls).items()):
        if attribute.startswith("_") and attribute not in ("__enter__", "__exit__"):
            continue
        if isinstance(value, property):
            setattr(cls, attribute, property(pinning(value.fget), doc=value.__doc__))
        elif callable(value) and not isinstance(value, (staticmethod, classmethod)):
            setattr(cls, attribute, pinning(value))
    return cls
