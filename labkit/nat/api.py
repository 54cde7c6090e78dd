"""NAT for a lab: masquerade, publish, unpublish; one API over two backends.

The lab's NAT lives in its `host` namespace; `rules` turns the model's entries into kernel
rules. The backend is chosen here and only here (`backend_module`): "nftables" (default; the
lab's own table `ip labkit`, replaced in one atomic transaction, removed by deleting the
table) or "iptables" (the seed's exact commands, removed exactly with -D). Call `apply` (what
`Lab.up` does) or the one-entry helpers `masquerade`, `publish`, `unpublish` on a lab that is up.

Every function takes the lab's name; NAT knows nothing of the lab layer above it, which passes
down what NAT needs: `journal=` (the lab's journal, which keeps NAT's record: backend,
entries, the sysctls' old values, written back when no longer needed, and each backend's own
bookkeeping) and, to change anything, `lock=` (a context manager held while NAT reads its
record, changes the kernel and journals it: the lab's writer lock; None when the caller holds
it already, as `Lab.up` does). `Lab.publish`, `Lab.unpublish` and `Lab.masquerade` pass both.
A backend module offers TOOL, PACKAGE, available(), require(), apply(ns, rules, book),
remove(ns, book), read(ns) and listing(ns).
"""
from __future__ import annotations

import contextlib
import dataclasses

from ..errors import BadAddress, BadName, BadValue, UnknownName
from ..kernel import netns, privilege, sysctl
from ..kernel.netlink import Netlink
from ..model import plan
from ..model.topology import Masquerade, PortMapping
from . import _iptables, _nftables
from .rules import (BRIDGE, BRIDGE_NF, HOOKS, Counted, Rule, check_entry, check_port,
                    check_protocol, commands, entries_from_rules, explain, from_record,
                    is_loopback, rules_for, sysctls_for, to_record)

__all__ = ["BACKENDS", "DEFAULT_BACKEND", "AlreadyPublished", "BRIDGE_NF", "Masquerade", "PortMapping",
           "apply", "backend_of", "backend_module", "check_backend", "choose_backend", "commands",
           "counters", "drift", "entries_of", "explain", "host_namespace", "live_rules", "masquerade",
           "publish", "read", "remove", "state", "status_lines", "unpublish"]

BACKENDS = ("nftables", "iptables")
DEFAULT_BACKEND = "nftables"
JOURNAL_KEY = "nat"


class AlreadyPublished(BadValue):
    """The address:port is already published to a different target."""


# -- backends: chosen here and only here -----------------------------------------------------------

def backend_module(name: str):
    """The module implementing backend `name` (UnknownName for anything else)."""
    if name == "nftables":
        return _nftables
    if name == "iptables":
        return _iptables
    raise UnknownName(f"unknown NAT backend {name!r}: choose nftables or iptables")


def check_backend(name: str | None) -> str:
    """`name` (default nftables) if known and its tool is installed; else UnknownName/MissingTool."""
    name = name or DEFAULT_BACKEND
    backend_module(name).require()
    return name


def choose_backend(journal, backend: str | None, entries) -> str:
    """The backend to use (`backend`, else the lab's, else nftables), once every tool needed
    is known to be there: the new backend's if there are entries, the old one's if it has
    rules to remove. Raises UnknownName / MissingTool before anything changes."""
    old = state(journal)
    backend = backend or old.get("backend") or DEFAULT_BACKEND
    mod = backend_module(backend)
    if entries:
        mod.require()
    old_backend = old.get("backend")
    if old_backend and old_backend != backend and old.get("entries"):
        backend_module(old_backend).require()
    return backend


# -- the lab, its journal and NAT's record in it ---------------------------------------------------

def _name(lab) -> str:
    """`lab` if it is a lab name (checked); BadName for anything else, a Lab too."""
    if not isinstance(lab, str):
        raise BadName(f"{lab!r} is not a lab name: NAT takes the lab's name with its journal= "
                      f"and lock= (a Lab's publish, unpublish and masquerade pass them)")
    return plan.check_lab_name(lab)


def state(journal) -> dict:
    """The lab's NAT record: backend, entries (dicts), and each backend's own bookkeeping."""
    return dict(journal.get(JOURNAL_KEY) or {})


class _Book:
    """A backend's own bookkeeping inside the lab's NAT record: get(), and put() journaled."""

    def __init__(self, journal, backend: str):
        self.journal, self.key = journal, backend

    def get(self):
        return state(self.journal).get(self.key)

    def put(self, value) -> None:
        rec = state(self.journal)
        rec[self.key] = value
        self.journal.record(JOURNAL_KEY, rec)


def host_namespace(lab: str) -> str:
    """Kernel name of lab `lab`'s host namespace; UnknownName if the lab is not up."""
    name = plan.namespace_name(_name(lab), "host")
    if not netns.exists(name):
        raise UnknownName(f"lab {lab or '(default)'!r} is not up (no namespace {name}): "
                          f"run `labkit up outside` first")
    return name


def entries_of(journal) -> tuple:
    """The NAT entries a lab has applied, from its `journal`."""
    return tuple(from_record(d) for d in state(journal).get("entries", []))


def backend_of(journal) -> str | None:
    """The backend a lab uses now, from its `journal` (None before any NAT was applied)."""
    return state(journal).get("backend")


# -- changing the lab's NAT ------------------------------------------------------------------------

def apply(lab: str, entries, backend: str | None = None, *, journal, lock=None) -> None:
    """Make the host namespace's NAT exactly `entries` (none: remove all) with `backend`.

    backend None keeps the lab's current one (nftables for a new lab). Switching backends
    removes every rule of the old one first. Everything is checked before anything changes;
    each change is journaled before it is made; `lock` (if any) is held throughout."""
    with lock or contextlib.nullcontext():
        _apply(lab, entries, backend, journal)


def _apply(lab: str, entries, backend: str | None, journal) -> None:
    entries = tuple(check_entry(e) for e in entries)
    backend = choose_backend(journal, backend, entries)
    new_mod = backend_module(backend)
    old = state(journal)
    old_backend = old.get("backend")
    ns = host_namespace(lab)
    had_rules = bool(old.get("entries"))
    if old_backend and old_backend != backend and had_rules:
        backend_module(old_backend).remove(ns, _Book(journal, old_backend))
        old, had_rules = state(journal), False
    old.update(backend=backend, entries=[to_record(e) for e in entries])
    journal.record(JOURNAL_KEY, old)
    if entries or had_rules:  # a lab that never had NAT needs no tool
        new_mod.apply(ns, rules_for(entries), _Book(journal, backend))
    _set_sysctls(ns, sysctls_for(entries), journal)


def remove(lab: str, *, journal, lock=None) -> None:
    """Remove every NAT rule of the lab and restore the sysctls NAT changed; safe twice.
    `lock` (if any) is held throughout."""
    name = plan.namespace_name(_name(lab), "host")
    with lock or contextlib.nullcontext():
        old = state(journal)
        if old and netns.exists(name):
            _remove(name, old, journal)


def _remove(name: str, old: dict, journal) -> None:
    backend = old.get("backend")
    if backend and old.get("entries") and backend_module(backend).available():
        backend_module(backend).remove(name, _Book(journal, backend))  # no rules ever: no tool to run
    _set_sysctls(name, {}, journal)
    journal.record(JOURNAL_KEY, None)


def _set_sysctls(ns: str, wanted: dict[str, str], journal) -> None:
    """Set `wanted` (where the kernel has the key), remembering old values; restore the rest."""
    rec = state(journal)
    saved = dict(rec.get("sysctls", {}))
    for key, value in wanted.items():
        if key not in saved:
            old = sysctl.read(ns, key)
            if old is None:
                continue  # no br0 yet, or no br_netfilter: nothing to set
            saved[key] = old
            rec["sysctls"] = saved
            journal.record(JOURNAL_KEY, rec)
        sysctl.write(ns, key, value)
    for key in [k for k in saved if k not in wanted]:
        if sysctl.read(ns, key) is not None:
            sysctl.write(ns, key, saved[key])
        del saved[key]
        rec["sysctls"] = saved
        journal.record(JOURNAL_KEY, rec)


def _modify(lab: str, change, journal, lock) -> tuple:
    """Apply `change(entries) -> entries` to the lab's current NAT with its backend, holding
    `lock` (if any) from reading the entries to journaling the new ones."""
    privilege.require()
    with lock or contextlib.nullcontext():
        host_namespace(lab)
        current = entries_of(journal)
        wanted = change(current)
        if wanted != current:
            _apply(lab, wanted, backend_of(journal), journal)
        return wanted


def masquerade(lab: str, source: str = plan.BRIDGE_NET, not_out: str | None = BRIDGE, *,
               journal, lock=None) -> Masquerade:
    """Masquerade traffic from `source` unless it leaves by `not_out`; a no-op if present."""
    entry = check_entry(Masquerade(source, not_out))
    _modify(lab, lambda cur: cur if entry in cur else cur + (entry,), journal, lock)
    return entry


def _container_address(lab: str, container: str) -> str:
    k = plan.container_index(container) if isinstance(container, str) else None
    kernel = plan.namespace_name(_name(lab), container) if k is not None else None
    if k is None or k >= plan.MAX_CONTAINERS or not netns.exists(kernel):
        raise UnknownName(f"lab {lab or '(default)'!r} has no container {container!r}: "
                          f"name one that is up (netns0, netns1, ...)")
    return plan.container_address(k)


def _host_addresses(ns: str) -> set[str]:
    with Netlink(ns) as nl:
        return {cidr.split("/")[0] for _, cidr in nl.addresses()}


def publish(lab: str, container: str, port: int, *, to_port: int | None = None,
            address: str = plan.HOST_ADDRESS, proto: str = "tcp", journal, lock=None) -> PortMapping:
    """Publish `container`'s `to_port` (default `port`) on the host's `address`:`port`.

    The same mapping again is a no-op; the same address:port to another target raises
    AlreadyPublished. `address` must be the host's own (10.0.2.15, 127.0.0.1, ...)."""
    check_port(port)
    check_port(port if to_port is None else to_port, "target port")
    check_protocol(proto)
    plan.parse_address(address)
    privilege.require()  # reading the host's addresses enters its namespace
    target = _container_address(lab, container)
    entry = check_entry(PortMapping(address, port, target, port if to_port is None else to_port, proto))
    if not is_loopback(address) and address not in _host_addresses(host_namespace(lab)):
        raise BadAddress(f"{address} is not an address of the lab's host: publish on one it "
                         f"holds (e.g. {plan.HOST_ADDRESS} or 127.0.0.1)")

    def change(cur):
        for e in cur:
            if isinstance(e, PortMapping) and (e.address, e.port, e.proto) == (address, port, proto):
                if e == entry:
                    return cur
                raise AlreadyPublished(
                    f"{address}:{port}/{proto} is already published to {e.to_address}:{e.to_port}: "
                    f"unpublish it first (lab.unpublish({port}, address={address!r}))")
        return cur + (entry,)
    _modify(lab, change, journal, lock)
    return entry


def unpublish(lab: str, port: int, *, address: str = plan.HOST_ADDRESS, proto: str = "tcp",
              journal, lock=None) -> PortMapping | None:
    """Remove the mapping of `address`:`port`; returns it, or None if it was not published."""
    check_port(port)
    plan.parse_address(address)
    check_protocol(proto)
    _name(lab)
    found = [e for e in entries_of(journal) if isinstance(e, PortMapping)
             and (e.address, e.port, e.proto) == (address, port, proto)]
    if found:
        _modify(lab, lambda cur: tuple(e for e in cur if e not in found), journal, lock)
    return found[0] if found else None


# -- reading the kernel back -------------------------------------------------------------------------

def live_rules(lab: str) -> dict[str, list[Rule | str]]:
    """Rules in the lab's host namespace, per backend whose tool is installed: a Rule where
    labkit recognises it, else the kernel's own text."""
    ns = host_namespace(lab)
    found = {}
    for name in BACKENDS:
        mod = backend_module(name)
        if mod.available():
            rules = mod.read(ns)
            if rules:
                found[name] = rules
    return found


def read(lab: str, *, journal=None) -> tuple[str | None, tuple]:
    """(backend, entries) as the kernel holds them now; backend None when there are no rules.
    Where both backends hold rules, the lab's own (from its `journal`; without one, the
    first of BACKENDS) is the one read."""
    live = live_rules(lab)
    if not live:
        return None, ()
    recorded = backend_of(journal) if journal is not None else None
    name = recorded if recorded in live else next(iter(live))
    return name, entries_from_rules(live[name])


def counters(lab: str, role: str = "host", *, journal=None) -> list[Counted]:
    """Every IPv4 rule in namespace `role` of the lab with its packet counter, whoever made
    it: nft (any table), iptables of either flavour (iptables-nft, iptables-legacy), labkit or
    a person at a shell. In hook order, then priority, then as each chain lists them; the
    rules labkit made are marked `labkit` (its table ip labkit; its iptables rules as its
    journal records them, when given its `journal`)."""
    name = plan.namespace_name(_name(lab), role)
    if not netns.exists(name):
        raise UnknownName(f"lab {lab or '(default)'!r} has no namespace {role!r} "
                          f"(no {name}): bring the lab up first (labkit up STAGE)")
    found = rules_in(name)
    book = {}
    if role == "host" and journal is not None:     # labkit's NAT lives in the host namespace
        book = state(journal).get("iptables") or {}
    made = {_iptables.parse(argv[1], argv[2:]) for argv in book.get("rules", [])}
    mine = [c if c.tool == "nft" else dataclasses.replace(
        c, labkit=c.tool == "iptables" and c.rule is not None and c.rule in made) for c in found]
    return sorted(mine, key=lambda c: (HOOKS.index(c.hook) if c.hook in HOOKS else len(HOOKS),
                                       c.priority, c.tool, c.table, c.chain, c.position))


def rules_in(kernel_name: str | None) -> list[Counted]:
    """Every IPv4 rule of namespace `kernel_name` (None: the one this process is in, such as
    the machine's own), either tool's, with its counter, as listed (`counters` orders them)."""
    found = _iptables.counted(kernel_name) if _iptables.available() else []
    nft_flavour = [f for f, save in _iptables.flavours() if save == "iptables-nft-save"]
    skip = {f"ip {c.table}" for c in found if c.tool in nft_flavour}
    if _nftables.available():
        found += _nftables.counted(kernel_name, skip)
    return found


def _rule_text(backend: str, rule) -> str:
    if not isinstance(rule, Rule):
        return str(rule)
    return rule.iptables_command() if backend == "iptables" else rule.nft_command()


def drift(lab: str, entries, *, journal) -> list[str]:
    """How the NAT in the lab's host namespace differs from `entries` (a stage's), one line
    each: rules missing, rules that are not the stage's (either tool), sysctls changed."""
    backend = state(journal).get("backend") or DEFAULT_BACKEND
    ns = host_namespace(lab)
    want = rules_for(entries)
    mod = backend_module(backend)
    if want and not mod.available():
        return [f"host: cannot compare the NAT rules: {mod.TOOL} is not installed "
                f"(apt-get install {mod.PACKAGE})"]
    live = live_rules(lab)
    have = live.get(backend, [])
    lines = [f"host: NAT rule missing ({backend}): {r.why}: {_rule_text(backend, r)}"
             for r in want if r not in have]
    # without a firewall of labkit's, the filter table is the person's own (08 drops by hand)
    mine = {"nat", "raw"} | ({"filter"} if any(r.table == "filter" for r in want) else set())
    for name, rules in live.items():
        lines += [f"host: NAT rule not part of the stage ({name}): {_rule_text(name, r)}"
                  for r in rules if (name != backend or r not in want) and r.table in mine]
    for key, value in sysctls_for(entries).items():
        now = sysctl.read(ns, key)
        if now is not None and now != value:
            lines.append(f"host: {key} is {now}, the stage wants {value}")
    return lines


def status_lines(lab: str, *, journal) -> list[str]:
    """What `labkit status` prints about NAT: the rules read back from the kernel."""
    try:
        ns = host_namespace(lab)
    except UnknownName:
        return []
    rec = state(journal)
    recorded = rec.get("backend")
    lines = []
    for name in BACKENDS:
        mod = backend_module(name)
        if not mod.available():
            if name == recorded:
                lines.append(f"NAT ({name}): cannot read the rules: {mod.TOOL} is not installed "
                             f"(apt-get install {mod.PACKAGE})")
            continue
        listing = mod.listing(ns)
        if listing:
            mark = ", this lab's backend" if name == recorded else ""
            lines.append(f"NAT rules ({name}{mark}) in namespace {ns}, read from the kernel:")
            lines += ["  " + line for line in listing]
    if not lines:
        lines.append(f"NAT: no rules in namespace {ns}")
    for key, value in rec.get("sysctls", {}).items():
        lines.append(f"  sysctl {key}={sysctl.read(ns, key)} (was {value})")
    return lines
