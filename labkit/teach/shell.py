"""A command run in a lab namespace, shown with the terminal command line that gives the same.

`sh(lab, role, command)` needs root (checked first: without it, one line, not a traceback),
unsets the machine's proxy variables, and first waits (polling) until the kernel reports every
interface that is up with carrier as UP, so `ip` prints the same states on every run."""
from __future__ import annotations

import shlex
from dataclasses import dataclass

from ..kernel import privilege
from ..errors import BadValue

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
"""Unset for commands run by `sh`: a proxy of the machine is unreachable from inside the lab."""


@dataclass(frozen=True)
class Shell:
    """A command's output, shown with the terminal command line that gives the same."""
    prompt: str
    output: str

    def __str__(self) -> str:
        return f"$ {self.prompt}\n{self.output}".rstrip()

    __repr__ = __str__


def sh(lab, role: str, command: str, *, check: bool = True) -> Shell:
    """Run `command` (a string, split like a shell would) in namespace `role` of `lab`.

    Raises AssertionError with the output if it fails and `check` is true."""
    privilege.require()
    try:
        argv = shlex.split(command)
    except ValueError as e:
        raise BadValue(f"cannot split the command {command!r} as a shell would: {e}") from None
    if not argv:
        raise BadValue("no command given: write one, e.g. sh(lab, 'host', 'ip route')")
    settle(lab)
    privilege.require_tool(argv[0])
    result = lab.exec(role, ["env", *(f"--unset={v}" for v in PROXY_VARIABLES), *argv])
    out = result.stdout + result.stderr
    if check and result.returncode != 0:
        raise AssertionError(f"`{command}` in {role} failed (exit {result.returncode}): {out.strip()}")
    return Shell(f"sudo ip netns exec {lab.ns(role)} {command}", out)


def _pending(lab, role: str) -> list[str]:
    """Interfaces of `role` that are up with carrier but whose operational state the kernel
    has not updated yet (it does so in batches, up to a second later)."""
    import json
    out = lab.exec(role, ["ip", "-j", "link", "show"]).stdout
    links = json.loads(out or "[]")
    return [link["ifname"] for link in links
            if {"UP", "LOWER_UP"} <= set(link.get("flags", ())) and link.get("operstate") != "UP"
            and link.get("link_type") != "loopback"]      # lo stays UNKNOWN; a new veth starts so


def settle(lab, timeout: float = 10.0) -> list[str]:
    """Wait (polling) until every lab interface that is up with carrier is reported UP, so
    `ip` prints the same states (and no stale `linkdown` on routes) every time; returns the
    interfaces still pending after `timeout` seconds (none, normally)."""
    import time
    deadline = time.monotonic() + timeout
    while True:
        pending = [f"{r}:{i}" for r in lab.roles() for i in _pending(lab, r)]
        if not pending or time.monotonic() >= deadline:
            return pending
        time.sleep(0.02)
