"""The NAT rule model: entries -> kernel rules, checked, in both tools' words. Plain data, no kernel.

Each entry of the model (`Masquerade`, `PortMapping`) expands into kernel rules (`Rule`),
the same for both backends:

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
(GHSA-jv3w-x3r3-g6rm). Any NAT also wants net.bridge.bridge-nf-call-iptables=0 in the host
namespace (`sysctls_for`). `commands` and `explain` show every rule in both tools' words.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import shlex
from dataclasses import dataclass, field

from ..errors import BadAddress, BadValue
from ..model import plan
from ..model.topology import Filter, Masquerade, PortMapping

BRIDGE = "br0"
LOOPBACK_NET = "127.0.0.0/8"
PROTOCOLS = ("tcp", "udp")
BRIDGE_NF = "net.bridge.bridge-nf-call-iptables"

from .words import NFT_CHAINS, NFT_FAMILY, NFT_TABLE, VERDICTS, chain_command, chains_of, nft_chain, nft_states


def shell_words(argv) -> str:
    """`argv` as shell words, quoted only where needed ("!" stays bare, as the seed writes it)."""
    return " ".join(a if a == "!" else shlex.quote(a) for a in argv)


@dataclass(frozen=True)
class Rule:
    """One kernel rule, in neither tool's words. Interfaces may be negated: "!br0".

    table "nat" | "raw" | "filter"; chain "PREROUTING" | "OUTPUT" | "POSTROUTING" | "FORWARD"
    or a chain of the filter table's own (DOCKER-USER, ...); action "MASQUERADE" | "DNAT" |
    "DROP" | "ACCEPT" | "RETURN" or a chain to jump to; `to` is "address:port" for DNAT.
    `ctstate` matches conntrack states ("RELATED,ESTABLISHED"); `policy` True: not a rule
    but the chain's policy (`action` is ACCEPT or DROP).
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
    ctstate: str | None = None
    policy: bool = False

    def iptables(self) -> list[str]:
        """The iptables arguments that append this rule (the seed's order and spelling)."""
        if self.policy:
            return ["-t", self.table, "-P", self.chain, self.action]
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
        if self.ctstate:
            argv += ["-m", "conntrack", "--ctstate", self.ctstate]
        argv += ["-j", self.action]
        if self.to:
            argv += ["--to-destination", self.to]
        return argv

    def nft(self) -> str:
        """The rule's body in nft's words (as `nft -s list table` prints it), with a counter."""
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
        if self.ctstate:
            words.append(f"ct state {nft_states(self.ctstate)}")
        words.append("counter")                      # nft counts only where a rule says so
        words.append(VERDICTS.get(self.action) or (f"dnat to {self.to}" if self.action == "DNAT"
                                                    else f"jump {nft_chain(self.table, self.action)}"))
        return " ".join(words)

    def iptables_command(self) -> str:
        """`iptables -t TABLE -A CHAIN ...`: the command that adds this rule."""
        return "iptables " + shell_words(self.iptables())

    def nft_command(self) -> str:
        """`nft add rule ip labkit CHAIN ...` (the table and chain must exist); a policy:
        the base chain with it."""
        if self.policy:
            return f"nft {chain_command(self.table, self.chain, self.action)}"
        return f"nft add rule {NFT_FAMILY} {NFT_TABLE} {NFT_CHAINS[(self.table, self.chain)][0]} {self.nft()}"


# entries whose rules another module writes: type -> (check(entry), rules(all entries)); their
# rules follow the NAT rules (labkit.nat.filter registers Filter when labkit.nat is imported)
EXPANDERS: dict = {}


# -- checking entries ----------------------------------------------------------------------------

def is_loopback(address: str) -> bool:
    """True if `address` (a checked IPv4 address) is in 127.0.0.0/8."""
    return ipaddress.IPv4Address(address).is_loopback


def check_port(port, what: str = "port") -> int:
    """Return `port` if it is a whole number 1..65535, else raise BadValue."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise BadValue(f"{what} {port!r} is out of range: use a whole number from 1 to 65535")
    return port


def check_protocol(proto) -> str:
    """Return `proto` if it is tcp or udp, else raise BadValue."""
    if proto not in PROTOCOLS:
        raise BadValue(f"protocol {proto!r} is not supported: use tcp or udp")
    return proto


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
        check_protocol(entry.proto)
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
    if type(entry) in EXPANDERS:
        return EXPANDERS[type(entry)][0](entry)
    raise BadValue(f"{entry!r} is not a NAT entry (Masquerade, PortMapping or Filter)")


# -- entries -> rules, and back -------------------------------------------------------------------

def rules_for(entries) -> list[Rule]:
    """The kernel rules that implement `entries` (checked first), in order, without duplicates."""
    out: list[Rule] = []

    def add(rule: Rule) -> None:
        if rule not in out:
            out.append(rule)

    for e in entries:
        check_entry(e)
        if type(e) in EXPANDERS:
            continue                                 # their rules come last
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
        if is_loopback(e.address):
            add(Rule("nat", "POSTROUTING", "MASQUERADE", saddr=LOOPBACK_NET, out_if=BRIDGE,
                     why="localhost publishing: 127.0.0.1 may not leave the host as a source"))
            add(Rule("raw", "PREROUTING", "DROP", daddr=LOOPBACK_NET, in_if="!lo",
                     why="drop packets to 127.0.0.0/8 that did not come from lo (moby#41872)"))
    for kind, (_, expand) in EXPANDERS.items():
        if any(isinstance(e, kind) for e in entries):
            for rule in expand(entries):
                add(rule)
    return out


def sysctls_for(entries) -> dict[str, str]:
    """The host-namespace sysctls `entries` need (key -> value)."""
    wanted = {}
    if entries:
        wanted[BRIDGE_NF] = "0"
    if any(isinstance(e, PortMapping) and is_loopback(e.address) for e in entries):
        wanted[f"net.ipv4.conf.{BRIDGE}.route_localnet"] = "1"
    return wanted


def entries_from_rules(rules) -> tuple:
    """The Masquerade and PortMapping entries that `rules` implement (helper rules are implied;
    anything not a Rule, such as a foreign rule's text, is skipped)."""
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


def to_record(entry) -> dict:
    """A JSON-ready dict of one entry (as the journal keeps it)."""
    return {"kind": type(entry).__name__, **dataclasses.asdict(entry)}


def from_record(data: dict):
    """The entry a `to_record` dict describes."""
    data = dict(data)
    kind = data.pop("kind")
    if kind == "Filter":
        return Filter(tuple(tuple(n) for n in data["networks"]), data.get("icc", True),
                      data.get("namespace", "host"))
    return {"Masquerade": Masquerade, "PortMapping": PortMapping}[kind](**data)


# -- both tools' words ----------------------------------------------------------------------------

def nft_commands(rules) -> list[str]:
    """The nft commands that build table ip labkit by hand: table, chains, then rules."""
    lines = [f"nft add table {NFT_FAMILY} {NFT_TABLE}"]
    made = []
    policies = {(r.table, r.chain): r.action for r in rules if r.policy}
    for key in chains_of(rules):
        name = NFT_CHAINS[key][0]
        if name not in made:
            made.append(name)
            lines.append(f"nft {chain_command(*key, policies.get(key))}")
    return lines + [r.nft_command() for r in rules if not r.policy]


def commands(entries, tool: str = "both", namespace: str | None = None) -> list[str]:
    """The shell commands that set `entries` up by hand: tool "iptables", "nft" or "both".

    With `namespace`, each command is prefixed `ip netns exec NAMESPACE` (the lab's host)."""
    if tool not in ("iptables", "nft", "both"):
        raise BadValue(f"tool {tool!r}: choose iptables, nft or both")
    pre = f"ip netns exec {namespace} " if namespace else ""
    rules = rules_for(entries)
    lines = [f"sysctl -w {k}={v}" for k, v in sysctls_for(entries).items()]
    if tool in ("iptables", "both"):
        lines += [r.iptables_command() for r in rules]
    if tool in ("nft", "both"):
        lines += nft_commands(rules)
    return [pre + line for line in lines]


def explain(entries) -> list[tuple[str, str, str]]:
    """Per rule: (why, iptables command, nft command), for a table in a notebook."""
    return [(r.why, r.iptables_command(), r.nft_command()) for r in rules_for(entries)]


# -- rules as the kernel holds them, with their counters ------------------------------------------

HOOKS = ("prerouting", "input", "forward", "output", "postrouting")   # netfilter's IPv4 hooks
# where iptables' tables sit on a hook (nft's names for these priorities: raw, mangle, dstnat,
# filter, security, srcnat); nat is dstnat on prerouting/output and srcnat on input/postrouting
TABLE_PRIORITY = {"raw": -300, "mangle": -150, "filter": 0, "security": 50}


def iptables_priority(table: str, hook: str) -> int:
    """The priority at which iptables' `table` runs on `hook` (nat: -100 or 100)."""
    if table == "nat":
        return -100 if hook in ("prerouting", "output") else 100
    return TABLE_PRIORITY.get(table, 0)


@dataclass(frozen=True)
class Counted:
    """One rule as the kernel holds it, with its packet counter, read with the tool that shows it.

    `tool` is "nft", "iptables", or the other iptables flavour ("iptables-legacy" or
    "iptables-nft"); `table` and `chain` as that tool names them (nft: family and table,
    "ip labkit"); `hook` one of HOOKS (None: a chain no hook reaches); `text` the rule as the
    tool prints it, counters left out; `packets`/`bytes` None where the rule has no counter
    (an nft rule without `counter`); `rule` labkit's reading of it (None if not one of its
    forms); `labkit` True if labkit made it."""
    tool: str
    table: str
    chain: str
    hook: str | None
    priority: int
    text: str
    packets: int | None
    bytes: int | None
    rule: Rule | None = None
    labkit: bool = False
    position: int = 0              # its place in its chain (0 first)

    @property
    def action(self) -> str:
        """What the rule does: DNAT, MASQUERADE, SNAT, DROP, ACCEPT, a chain's name, ... ("" unknown)."""
        if self.rule is not None:
            return self.rule.action
        words = self.text.split()
        if "-j" in words[:-1]:
            return words[words.index("-j") + 1]
        verbs = ("dnat", "snat", "masquerade", "redirect", "drop", "accept", "reject", "jump",
                 "goto", "return")
        # nft's statement comes last: "ct status dnat counter masquerade" masquerades
        return next((w.upper() for w in reversed(words) if w in verbs), "")

    @property
    def line(self) -> str:
        """The rule as its tool lists it: `-A CHAIN ...` (as `iptables -S` prints it) or nft's words."""
        return self.text if self.tool == "nft" else f"-A {self.chain} {self.text}"

    @property
    def source(self) -> str | None:
        """The source the rule matches, as written ("172.18.0.0/16"; a negated one too); None:
        any source."""
        words = self.text.split()
        key = ("ip", "saddr") if self.tool == "nft" else ("-s",)
        for k in range(len(words) - len(key)):
            if tuple(words[k:k + len(key)]) == key:
                return words[k + len(key)]
        return None

    def listing_command(self, namespace: str | None = None) -> str:
        """The command a person types to see this rule's counter (in `namespace`, if given)."""
        pre = f"ip netns exec {namespace} " if namespace else ""
        if self.tool == "nft":
            return f"{pre}nft list table {self.table}"
        return f"{pre}{self.tool} -t {self.table} -L -v -n -x"
