"""A command run in a lab namespace, shown with the terminal command line that gives the same.

`sh(lab, role, command)` needs root (checked first: without it, one line, not a traceback),
unsets the machine's proxy variables, and first waits (polling) until the kernel reports every
interface that is up with carrier as UP, so `ip` prints the same states on every run."""
from __future__ import annotations

import shlex
from dataclasses import dataclass

from ...kernel import netns, privilege
from ...errors import BadValue

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
    out = lab.exec(role, ["ip", "-d", "-j", "link", "show"]).stdout
    links = json.loads(out or "[]")
    masters = {link.get("master") for link in links}
    return [link["ifname"] for link in links
            if {"UP", "LOWER_UP"} <= set(link.get("flags", ())) and link.get("operstate") != "UP"
            and link.get("link_type") != "loopback"       # lo stays UNKNOWN; a new veth starts so
            and link.get("linkinfo", {}).get("info_kind") != "vxlan"    # a VXLAN device stays UNKNOWN
            and not (link.get("linkinfo", {}).get("info_kind") == "bridge"
                     and link["ifname"] not in masters)]  # so does a bridge with no port yet


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


def links_into(lab, kernel_name: str) -> list[tuple[str, str]]:
    """(namespace, interface) of every link of the lab's other namespaces whose veth peer is in
    namespace `kernel_name`: they go when it is deleted, a moment after `ip netns delete`."""
    from ...kernel.netlink import Netlink
    found = []
    for ns in lab.journal.namespaces:
        if ns == kernel_name or not netns.exists(ns) or not netns.exists(kernel_name):
            continue
        with Netlink(ns) as nl:
            nsid = nl.netnsid_of(kernel_name)
            if nsid is not None:
                found += [(ns, link.name) for link in nl.links() if link.link_netnsid == nsid]
    return found


def wait_gone(links: list[tuple[str, str]], timeout: float = 10.0) -> list[tuple[str, str]]:
    """Wait (polling) until `links` are gone; returns those still there after `timeout`."""
    import time
    from ...kernel.netlink import Netlink
    deadline = time.monotonic() + timeout
    while True:
        left = []
        for ns, name in links:
            if netns.exists(ns):
                with Netlink(ns) as nl:
                    if nl.link(name) is not None:
                        left.append((ns, name))
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.02)
