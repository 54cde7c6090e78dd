"""NAT for a lab: masquerade, publish, unpublish; one API over two backends.

The lab's NAT lives in its `host` namespace. Each entry of the model (`Masquerade`,
`PortMapping`) expands into kernel rules (`Rule`), the same for both backends:

    Masquerade(172.18.0.0/16, not_out=br0)
        nat POSTROUTING  -s 172.18.0.0/16 ! -o br0 -j MASQUERADE                (the seed's)
    PortMapping(10.0.2.15:5000 -> 172.18.0.10:5000)
        nat PREROUTING   -d 10.0.2.15 --dport 5000 -j DNAT   (from outside; the seed's)
        nat OUTPUT       -d 10.0.2.15 --dport 5000 -j DNAT   (from the host itself; the seed's)
        nat POSTROUTING  hairpin: a container reaching a published port through the host is
                         masqueraded, so the answer comes back through the host's NAT
    PortMapping(127.0.0.1:5000 -> ...) adds, as Docker and the CNI portmap plugin do,
        sysctl net.ipv4.conf.br0.route_localnet=1 (let 127.0.0.1 leave by br0),
        nat POSTROUTING  -s 127.0.0.0/8 -o br0 -j MASQUERADE
        raw PREROUTING   -d 127.0.0.0/8 ! -i lo -j DROP   (closes moby#41872: without it a
                         neighbour's packet addressed to 127.0.0.1 is DNATed into the container)

A DNAT rule always names the published address: it never matches transit traffic
(GHSA-jv3w-x3r3-g6rm). Any NAT also sets net.bridge.bridge-nf-call-iptables=0 in the host
namespace where br_netfilter is loaded, so bridged frames skip the IP hooks on every machine
alike. Sysctls' old values are journaled and written back when no longer needed.

The backend is chosen in one place (`backend_module`): "nftables" (default; the lab's own
table `ip labkit`, replaced in one atomic transaction, removed by deleting the table) or
"iptables" (the seed's exact commands, removed exactly with -D). `commands()` shows every
rule in both tools' words. Call `apply` (what `Lab.up` does) or the one-entry helpers
`masquerade`, `publish`, `unpublish` on a lab that is up.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import shlex
from dataclasses import dataclass, field

from ..kernel import netns
from ..model import plan
from ..errors import BadAddress, BadName, BadValue, UnknownName
from ..model.topology import Masquerade, PortMapping

BACKENDS = ("nftables", "iptables")
DEFAULT_BACKEND = "nftables"
BRIDGE = "br0"
LOOPBACK_NET = "127.0.0.0/8"
PROTOCOLS = ("tcp", "udp")
BRIDGE_NF = "net.bridge.bridge-nf-call-iptables"
JOURNAL_KEY = "nat"


class AlreadyPublished(BadValue):
    """The address:port is already published to a different target."""


@dataclass(frozen=True)
class Rule:
    """One kernel rule, in neither tool's words. Interfaces may be negated: "!br0".

    table "nat" | "raw"; chain "PREROUTING" | "OUTPUT" | "POSTROUTING"; action
    "MASQUERADE" | "DNAT" | "DROP"; `to` is "address:port" for DNAT.
    """
    table: str
    chain: str
    action: str
    saddr: str | None = None
    daddr: str | None = None
    in_if: str | None = None
    out_if: str | None = None
    proto: str | None = None
    dport: int | None = None
    ct_dnat: bool = False
    to: str | None = None
    why: str = field(default="", compare=False)

    def iptables(self) -> list[str]:
        """The iptables arguments that append this rule (the seed's order and spelling)."""
        argv = ["-t", self.table, "-A", self.chain]
        if self.saddr:
            argv += ["-s", self.saddr]
        if self.daddr:
            argv += ["-d", self.daddr]
        for flag, itf in (("-i", self.in_if), ("-o", self.out_if)):
            if itf:
                argv += (["!", flag, itf[1:]] if itf.startswith("!") else [flag, itf])
        if self.proto:
            argv += ["-p", self.proto]
            if self.dport is not None:
                argv += ["-m", self.proto, "--dport", str(self.dport)]
        if self.ct_dnat:
            argv += ["-m", "conntrack", "--ctstate", "DNAT"]
        argv += ["-j", self.action]
        if self.to:
            argv += ["--to-destination", self.to]
        return argv

    def nft(self) -> str:
        """The rule's body in nft's words (as `nft list table` prints it)."""
        words = []
        if self.saddr:
            words.append(f"ip saddr {self.saddr}")
        if self.daddr:
            words.append(f"ip daddr {self.daddr}")
        for key, itf in (("iifname", self.in_if), ("oifname", self.out_if)):
            if itf:
                words.append(f'{key} != "{itf[1:]}"' if itf.startswith("!") else f'{key} "{itf}"')
        if self.proto:
            words.append(f"{self.proto} dport {self.dport}" if self.dport is not None
                         else f"ip protocol {self.proto}")
        if self.ct_dnat:
            words.append("ct status dnat")
        words.append({"MASQUERADE": "masquerade", "DROP": "drop"}.get(self.action)
                     or f"dnat to {self.to}")
        return " ".join(words)


def shell_words(argv) -> str:
    """`argv` as shell words, quoted only where needed ("!" stays bare, as the seed writes it)."""
    return " ".join(a if a == "!" else shlex.quote(a) for a in argv)


# -- the model -> rules ------------------------------------------------------------------------

def _is_loopback(address: str) -> bool:
    return ipaddress.IPv4Address(address).is_loopback


def check_port(port, what: str = "port") -> int:
    """Return `port` if it is a whole number 1..65535, else raise BadValue."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise BadValue(f"{what} {port!r} is out of range: use a whole number from 1 to 65535")
    return port


def check_entry(entry):
    """Validate one Masquerade or PortMapping; returns it, or raises BadValue/BadAddress."""
    if isinstance(entry, Masquerade):
        if not isinstance(entry.source, str):
            raise BadAddress(f"masquerade source {entry.source!r} is not an IPv4 network: "
                             f"write it like {plan.BRIDGE_NET}")
        plan.parse_cidr(entry.source if "/" in entry.source else entry.source + "/32")
        if entry.not_out is not None:
            plan.check_kernel_name(entry.not_out)
        return entry
    if isinstance(entry, PortMapping):
        check_port(entry.port)
        check_port(entry.to_port, "target port")
        if entry.proto not in PROTOCOLS:
            raise BadValue(f"protocol {entry.proto!r} is not supported: use tcp or udp")
        for text in (entry.address, entry.to_address):
            if not isinstance(text, str):
                raise BadAddress(f"{text!r} is not an IPv4 address: write it as text, like "
                                 f"{plan.HOST_ADDRESS}")
        address = plan.parse_address(entry.address)
        if address.is_unspecified or address.is_multicast or str(address).endswith(".255"):
            raise BadAddress(f"cannot publish on {address}: name one address of the host "
                             f"(e.g. {plan.HOST_ADDRESS} or 127.0.0.1)")
        target = plan.parse_address(entry.to_address)
        if target.is_unspecified or target.is_multicast or target.is_loopback \
                or str(target).endswith(".255"):
            raise BadAddress(f"cannot forward to {target}: name a container's address "
                             f"(e.g. {plan.container_address(0)})")
        return entry
    raise BadValue(f"{entry!r} is not a NAT entry (Masquerade or PortMapping)")


def rules_for(entries) -> list[Rule]:
    """The kernel rules that implement `entries`, in order, without duplicates."""
    out: list[Rule] = []

    def add(rule: Rule) -> None:
        if rule not in out:
            out.append(rule)

    for e in entries:
        check_entry(e)
        if isinstance(e, Masquerade):
            add(Rule("nat", "POSTROUTING", "MASQUERADE", saddr=e.source,
                     out_if=f"!{e.not_out}" if e.not_out else None,
                     why=f"masquerade {e.source}" + (f" unless leaving by {e.not_out}"
                                                     if e.not_out else "")))
            continue
        to = f"{e.to_address}:{e.to_port}"
        where = f"{e.address}:{e.port}/{e.proto}"
        for chain, who in (("PREROUTING", "from outside"), ("OUTPUT", "from the host itself")):
            add(Rule("nat", chain, "DNAT", daddr=e.address, proto=e.proto, dport=e.port, to=to,
                     why=f"publish {where} on {to} ({who})"))
        add(Rule("nat", "POSTROUTING", "MASQUERADE", saddr=plan.BRIDGE_NET, daddr=e.to_address,
                 out_if=BRIDGE, proto=e.proto, dport=e.to_port, ct_dnat=True,
                 why=f"hairpin: containers reaching {where} answer through the host"))
        if _is_loopback(e.address):
            add(Rule("nat", "POSTROUTING", "MASQUERADE", saddr=LOOPBACK_NET, out_if=BRIDGE,
                     why="localhost publishing: 127.0.0.1 may not leave the host as a source"))
            add(Rule("raw", "PREROUTING", "DROP", daddr=LOOPBACK_NET, in_if="!lo",
                     why="drop packets to 127.0.0.0/8 that did not come from lo (moby#41872)"))
    return out


def sysctls_for(entries) -> dict[str, str]:
    """The host-namespace sysctls `entries` need (key -> value)."""
    wanted = {}
    if entries:
        wanted[BRIDGE_NF] = "0"
    if any(isinstance(e, PortMapping) and _is_loopback(e.address) for e in entries):
        wanted[f"net.ipv4.conf.{BRIDGE}.route_localnet"] = "1"
    return wanted


def commands(entries, tool: str = "both", namespace: str | None = None) -> list[str]:
    """The shell commands that set `entries` up by hand: tool "iptables", "nft" or "both".

    With `namespace`, each command is prefixed `ip netns exec NAMESPACE` (the lab's host)."""
    if tool not in ("iptables", "nft", "both"):
        raise BadValue(f"tool {tool!r}: choose iptables, nft or both")
    pre = f"ip netns exec {namespace} " if namespace else ""
    rules = rules_for(entries)
    lines = [f"{pre}sysctl -w {k}={v}" for k, v in sysctls_for(entries).items()]
    if tool in ("iptables", "both"):
        lines += [f"{pre}iptables {shell_words(r.iptables())}" for r in rules]
    if tool in ("nft", "both"):
        from . import _nftables as nftables
        lines += [pre + line for line in nftables.commands(rules)]
    return lines


def explain(entries) -> list[tuple[str, str, str]]:
    """Per rule: (why, iptables command, nft command), for a table in a notebook."""
    from . import _nftables as nftables
    return [(r.why, "iptables " + shell_words(r.iptables()), nftables.rule_command(r))
            for r in rules_for(entries)]


# -- entries as JSON (the journal) ---------------------------------------------------------------

def to_record(entry) -> dict:
    """A journal-ready dict of one entry."""
    return {"kind": type(entry).__name__, **dataclasses.asdict(entry)}


def from_record(data: dict):
    """The entry a `to_record` dict describes."""
    data = dict(data)
    kind = data.pop("kind")
    return {"Masquerade": Masquerade, "PortMapping": PortMapping}[kind](**data)


# -- backends: chosen here and only here -----------------------------------------------------------

def backend_module(name: str):
    """The module implementing backend `name` (UnknownName for anything else)."""
    if name == "nftables":
        from . import _nftables as nftables
        return nftables
    if name == "iptables":
        from . import _iptables as iptables
        return iptables
    raise UnknownName(f"unknown NAT backend {name!r}: choose nftables or iptables")


def check_backend(name: str | None) -> str:
    """`name` (default nftables) if known and its tool is installed; else UnknownName/MissingTool."""
    name = name or DEFAULT_BACKEND
    backend_module(name).require()
    return name


# -- the lab's NAT in the kernel -------------------------------------------------------------------

def _lab_name(lab) -> str:
    """The name of `lab` (a Lab or a lab name); BadName for anything else."""
    name = lab if isinstance(lab, str) else getattr(lab, "name", None)
    if not isinstance(name, str):
        raise BadName(f"{lab!r} is not a lab: pass a Lab or a lab name (e.g. 't1')")
    return plan.check_lab_name(name)


def _journal(lab):
    from ..lab.journal import Journal
    return Journal(_lab_name(lab))


def host_namespace(lab) -> str:
    """Kernel name of lab `lab`'s host namespace; UnknownName if the lab is not up."""
    name = plan.namespace_name(_lab_name(lab), "host")
    if not netns.exists(name):
        raise UnknownName(f"lab {_lab_name(lab) or '(default)'!r} is not up (no namespace {name}): "
                          f"run `labkit up outside` first")
    return name


def state(journal) -> dict:
    """The lab's NAT record: backend, entries (dicts), and each backend's own bookkeeping."""
    return dict(journal.get(JOURNAL_KEY) or {})


def entries_of(lab) -> tuple:
    """The NAT entries lab `lab` has applied (from its journal)."""
    return tuple(from_record(d) for d in state(_journal(lab)).get("entries", []))


def backend_of(lab) -> str | None:
    """The backend lab `lab` uses now (None before any NAT was applied)."""
    return state(_journal(lab)).get("backend")


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


def apply(lab, entries, backend: str | None = None, journal=None) -> None:
    """Make the host namespace's NAT exactly `entries` (none: remove all) with `backend`.

    backend None keeps the lab's current one (nftables for a new lab). Switching backends
    removes every rule of the old one first. Everything is checked before anything changes;
    each change is journaled before it is made."""
    journal = journal or _journal(lab)
    entries = tuple(check_entry(e) for e in entries)
    backend = choose_backend(journal, backend, entries)
    new_mod = backend_module(backend)
    old = state(journal)
    old_backend = old.get("backend")
    ns = host_namespace(lab)
    had_rules = bool(old.get("entries"))
    if old_backend and old_backend != backend and had_rules:
        backend_module(old_backend).remove(ns, old, journal)
        old, had_rules = state(journal), False
    old.update(backend=backend, entries=[to_record(e) for e in entries])
    journal.record(JOURNAL_KEY, old)
    if entries or had_rules:  # a lab that never had NAT needs no tool
        new_mod.apply(ns, rules_for(entries), journal)
    _set_sysctls(ns, sysctls_for(entries), journal)


def remove(lab, journal=None) -> None:
    """Remove every NAT rule of the lab and restore the sysctls NAT changed; safe twice."""
    journal = journal or _journal(lab)
    old = state(journal)
    name = plan.namespace_name(_lab_name(lab), "host")
    if not old or not netns.exists(name):
        return
    backend = old.get("backend")
    if backend and old.get("entries") and backend_module(backend).available():
        backend_module(backend).remove(name, old, journal)  # no rules ever: no tool to run
    _set_sysctls(name, {}, journal)
    journal.record(JOURNAL_KEY, None)


def _set_sysctls(ns: str, wanted: dict[str, str], journal) -> None:
    """Set `wanted` (where the kernel has the key), remembering old values; restore the rest."""
    from ..kernel import sysctl
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


def _modify(lab, change) -> tuple:
    """Apply `change(entries) -> entries` to the lab's current NAT with its backend."""
    from ..kernel import privilege
    privilege.require()
    journal = _journal(lab)
    host_namespace(lab)
    current = tuple(from_record(d) for d in state(journal).get("entries", []))
    wanted = change(current)
    if wanted != current:
        apply(lab, wanted, state(journal).get("backend"), journal)
    return wanted


def masquerade(lab, source: str = plan.BRIDGE_NET, not_out: str | None = BRIDGE) -> Masquerade:
    """Masquerade traffic from `source` unless it leaves by `not_out`; a no-op if present."""
    entry = check_entry(Masquerade(source, not_out))
    _modify(lab, lambda cur: cur if entry in cur else cur + (entry,))
    return entry


def _container_address(lab, container: str) -> str:
    k = plan.container_index(container) if isinstance(container, str) else None
    kernel = plan.namespace_name(_lab_name(lab), container) if k is not None else None
    if k is None or k >= plan.MAX_CONTAINERS or not netns.exists(kernel):
        raise UnknownName(f"lab {_lab_name(lab) or '(default)'!r} has no container {container!r}: "
                          f"name one that is up (netns0, netns1, ...)")
    return plan.container_address(k)


def _host_addresses(ns: str) -> set[str]:
    from ..kernel.netlink import Netlink
    with Netlink(ns) as nl:
        return {cidr.split("/")[0] for _, cidr in nl.addresses()}


def publish(lab, container: str, port: int, *, to_port: int | None = None,
            address: str = plan.HOST_ADDRESS, proto: str = "tcp") -> PortMapping:
    """Publish `container`'s `to_port` (default `port`) on the host's `address`:`port`.

    The same mapping again is a no-op; the same address:port to another target raises
    AlreadyPublished. `address` must be the host's own (10.0.2.15, 127.0.0.1, ...)."""
    check_port(port)
    check_port(port if to_port is None else to_port, "target port")
    if proto not in PROTOCOLS:
        raise BadValue(f"protocol {proto!r} is not supported: use tcp or udp")
    plan.parse_address(address)
    from ..kernel import privilege
    privilege.require()  # reading the host's addresses enters its namespace
    target = _container_address(lab, container)
    entry = check_entry(PortMapping(address, port, target, port if to_port is None else to_port, proto))
    if not _is_loopback(address) and address not in _host_addresses(host_namespace(lab)):
        raise BadAddress(f"{address} is not an address of the lab's host: publish on one it "
                         f"holds (e.g. {plan.HOST_ADDRESS} or 127.0.0.1)")

    def change(cur):
        for e in cur:
            if isinstance(e, PortMapping) and (e.address, e.port, e.proto) == (address, port, proto):
                if e == entry:
                    return cur
                raise AlreadyPublished(
                    f"{address}:{port}/{proto} is already published to {e.to_address}:{e.to_port}: "
                    f"unpublish it first (labkit.nat.unpublish(lab, {port}, address={address!r}))")
        return cur + (entry,)
    _modify(lab, change)
    return entry


def unpublish(lab, port: int, *, address: str = plan.HOST_ADDRESS,
              proto: str = "tcp") -> PortMapping | None:
    """Remove the mapping of `address`:`port`; returns it, or None if it was not published."""
    check_port(port)
    plan.parse_address(address)
    if proto not in PROTOCOLS:
        raise BadValue(f"protocol {proto!r} is not supported: use tcp or udp")
    found = [e for e in entries_of(lab) if isinstance(e, PortMapping)
             and (e.address, e.port, e.proto) == (address, port, proto)]
    if found:
        _modify(lab, lambda cur: tuple(e for e in cur if e not in found))
    return found[0] if found else None


# -- reading the kernel back -------------------------------------------------------------------------

def live_rules(lab) -> dict[str, list[Rule | str]]:
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


def entries_from_rules(rules) -> tuple:
    """The Masquerade and PortMapping entries that `rules` implement (helper rules are implied)."""
    out = []
    for r in rules:
        if not isinstance(r, Rule):
            continue
        if r.action == "DNAT" and r.table == "nat" and r.daddr and r.to and r.dport:
            addr, _, port = r.to.rpartition(":")
            e = PortMapping(r.daddr, r.dport, addr, int(port), r.proto or "tcp")
        elif (r.action == "MASQUERADE" and r.saddr and not r.daddr and not r.dport
              and (r.out_if is None or r.out_if.startswith("!"))):
            e = Masquerade(r.saddr, r.out_if[1:] if r.out_if else None)
        else:
            continue
        if e not in out:
            out.append(e)
    return tuple(out)


def read(lab) -> tuple[str | None, tuple]:
    """(backend, entries) as the kernel holds them now; backend None when there are no rules."""
    live = live_rules(lab)
    if not live:
        return None, ()
    recorded = backend_of(lab)
    name = recorded if recorded in live else next(iter(live))
    return name, entries_from_rules(live[name])


def _rule_text(backend: str, rule) -> str:
    if not isinstance(rule, Rule):
        return str(rule)
    if backend == "iptables":
        return "iptables " + shell_words(rule.iptables())
    from . import _nftables as nftables
    return nftables.rule_command(rule)


def drift(lab, entries, journal=None) -> list[str]:
    """How the NAT in the lab's host namespace differs from `entries` (a stage's), one line
    each: rules missing, rules that are not the stage's (either tool), sysctls changed."""
    journal = journal or _journal(lab)
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
    for name, rules in live.items():
        lines += [f"host: NAT rule not part of the stage ({name}): {_rule_text(name, r)}"
                  for r in rules if name != backend or r not in want]
    from ..kernel import sysctl
    for key, value in sysctls_for(entries).items():
        now = sysctl.read(ns, key)
        if now is not None and now != value:
            lines.append(f"host: {key} is {now}, the stage wants {value}")
    return lines


def status_lines(lab) -> list[str]:
    """What `labkit status` prints about NAT: the rules read back from the kernel."""
    try:
        ns = host_namespace(lab)
    except UnknownName:
        return []
    recorded = backend_of(lab)
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
    for key, value in state(_journal(lab)).get("sysctls", {}).items():
        from ..kernel import sysctl
        lines.append(f"  sysctl {key}={sysctl.read(ns, key)} (was {value})")
    return lines


def run_tool(ns: str, argv: list[str], *, check: bool = True, input: str | None = None):
    """Run a NAT tool in namespace `ns` (a KernelError names the command if it fails)."""
    return netns.run(ns, argv, check=check, input=input, timeout=30)

