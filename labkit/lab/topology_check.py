"""A lab of one's own checked like a stage: `check_topology(lab, blueprint)`.

The state items are check's own (labkit.lab.check: namespaces, links, peers, masters, link
states, addresses, routes, ip_forward, servers), given the blueprint's Topology where a stage's
plan would be; to them come the other sysctls the blueprint sets and its NAT entries. The
traffic is the blueprint's expectations (Blueprint.expect, `[[expects]]`), sent for real
(labkit.lab.expectation). The Result names the topology where a stage's name would be.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import re

from ..kernel import privilege, sysctl
from ..model.topology import Topology
from . import reach
from .check import _forwarding_items, _host_rules, _server_items, _state_items
from .verdict import Item, Result, Words


def check_topology(lab, blueprint) -> Result:
    """Compare lab `lab` with a lab of one's own, `blueprint` (a Blueprint, or a Topology: then
    without expectations): by the kernel's state (namespaces, links, peers, masters, link
    states, addresses, routes, the sysctls it sets, NAT, servers), as a stage is, and by real
    traffic, through the expectations it declares (labkit.lab.expectation). The Result names
    the topology where a stage's name would be."""
    from ..model import validation
    from ..model.expectation import targets
    from . import expectation
    from .inspection import inspect
    if isinstance(blueprint, Topology):
        want = validation.check(dataclasses.replace(blueprint, lab=lab.name, nat_backend=None))
        expectations, declared = (), {ns.role: dict(ns.sysctls) for ns in want.namespaces}
    else:
        want, expectations = blueprint.build(lab.name), blueprint.expectations
        declared = {}
        for call in blueprint.to_dict().get("sysctls", []):
            key, value = validation.check_sysctl(call["key"], call["value"])
            declared.setdefault(call["namespace"], {})[key] = value
    for e in expectations:          # a namespace without an address is said before anything is sent
        targets(e, want)
    privilege.require()
    journal = lab.journal
    live = inspect(lab.name, journal.namespaces, journal.get("stage"), want) if journal.exists() \
        else Topology(lab.name, None)
    words = Words(lab.name)
    items = list(_state_items(want, live, words))   # no misplaced.Survey: it knows the stages'
    items += _forwarding_items(want, live, words)     # names, and a blueprint may repeat a route
    items += _sysctl_items(declared, live, words)
    items += _nat_items(lab, want, words)
    items += _server_items(lab, want, words)
    state_ok = all(i.ok for i in items)
    patience = reach.PATIENCE if state_ok else 0.0
    traffic = expectation.items(lab, expectations, want, words, patience)
    if not state_ok:
        traffic = [dataclasses.replace(i, fix="") for i in traffic]
    return Result(want.stage, lab.name, tuple(items + traffic), kind="topology")


def _sysctl_items(declared: dict[str, dict[str, str]], live: Topology, w: Words):
    """The sysctls a blueprint sets, other than ip_forward (`_forwarding_items` says that one),
    each at its value in its namespace."""
    for role, values in declared.items():
        have = live.namespace(role)
        if have is None:
            continue
        now = dict(have.sysctls)
        for key, value in values.items():
            if key == "net.ipv4.ip_forward" and value == "1":
                continue
            ok = now.get(key) == value or not sysctl.applies(key)
            yield Item(ok, f"{key} is {now.get(key)} in {role}" + ("" if ok else f", not {value}"),
                       "forwarding", w.look(role, f"sysctl {key}"),
                       f"{w.where(role)}: sysctl -w {key}={value}")


def _nat_items(lab, want: Topology, w: Words):
    """Each NAT entry of the topology (in its "host"): a masquerade as MASQUERADE or SNAT for
    its source, a published port as DNAT to its target from outside and from the host itself,
    typed with either tool."""
    from ..model.topology import Masquerade
    from ..nat.rules import rules_for
    if not want.nat:
        return
    rules = _host_rules(lab)
    for entry in want.nat:
        if isinstance(entry, Masquerade):
            (rule,) = rules_for([entry])[:1]

            def wanted(c, entry=entry) -> bool:
                return c.action in ("MASQUERADE", "SNAT") and _overlaps(c.source, entry.source)
            ok = any(wanted(c) for c in rules)
            yield Item(ok, f"packets from {entry.source} are " + ("" if ok else "not ")
                       + "masqueraded", "nat", w.look("host", "iptables -t nat -S POSTROUTING"),
                       f"{w.where('host')}: {rule.iptables_command()}")
            continue
        to = f"{entry.to_address}:{entry.to_port}"
        for rule in rules_for([entry])[:2]:       # PREROUTING (from outside), OUTPUT (the host)
            def wanted(c, entry=entry, hook=rule.chain.lower()) -> bool:
                return c.action == "DNAT" and c.hook == hook and to in c.text \
                    and re.search(rf"dport {entry.port}\b", c.text) is not None
            ok = any(wanted(c) for c in rules)
            who = "from outside" if rule.chain == "PREROUTING" else "from the host itself"
            yield Item(ok, f"{entry.address}:{entry.port} is " + ("" if ok else "not ")
                       + f"forwarded to {to} {who} (DNAT in {rule.chain})", "nat",
                       w.look("host", f"iptables -t nat -S {rule.chain}"),
                       f"{w.where('host')}: {rule.iptables_command()}")


def _overlaps(source: str | None, network: str) -> bool:
    """True if a rule's `source` (None: any) holds addresses of `network`."""
    try:
        return source is None or ipaddress.ip_network(source, strict=False).overlaps(
            ipaddress.ip_network(network, strict=False))
    except ValueError:
        return False
