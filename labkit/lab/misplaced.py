"""Where an object a stage expects went, when it is not where it belongs.

A person who types the host's commands at their own prompt (forgetting `sudo nsenter
--net=/run/netns/host bash`) makes them in the machine's own network namespace: the one
labkit runs in (in a normal user's world, the world's). One typed in the wrong lab shell
makes it in another lab namespace, on the other end of a veth, in the wrong container. None of
it fails, so nothing tells them. `Survey` looks in those places for what check finds missing
and rewrites check's item: where it is, then (the fix) the command that removes it from
there followed by the right command in the right shell.

`strays` lists what in the machine carries a name, address or route of the stages (status,
doctor, down and clean say it, with the command that removes it: labkit made none of it, so
it never removes any). `snapshot` is what the machine held when a practice began, journaled
(record MACHINE_RECORD), so what was there before is never blamed on the person.
The machine is only read here: links, addresses, routes, ip_forward, NAT rules.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import re
import subprocess

from .. import nat
from ..errors import LabkitError
from ..kernel import world
from ..model import plan
from ..model.topology import Interface, Namespace, route_text
from .inspection import read_machine
from .verdict import Item, Words

MACHINE_RECORD = "machine"
"""The journal's record of the machine at the first practice: {"keys": [...], "ip_forward": "0"}."""
NAMES = re.compile(r"(?:veth|ceth)\d{1,3}|br0")   # the stages' link names a person types
NET = ipaddress.ip_network(plan.BRIDGE_NET)         # the stages' addresses a person types
FORWARD = "net.ipv4.ip_forward"


def machine_words() -> tuple[str, str]:
    """(what the machine's namespace is called, where a person types there)."""
    if world.joined() is not None:
        return ("your world's own network",
                "in your world's own shell (labkit shell, no namespace named)")
    return ("the machine's own network",
            "in your own shell (the machine's, outside nsenter and ip netns exec)")


@dataclasses.dataclass(frozen=True)
class Stray:
    """Something in the machine's namespace that carries a stage's name, address or route."""
    key: str        # its identity, as a snapshot records it ("link veth0")
    what: str       # "veth0 (veth, its other end ceth0 in netns0; 172.18.0.11/16)"
    remove: str     # the command that removes it, typed in the machine's own shell


def _ours(cidr: str) -> bool:
    try:
        return ipaddress.ip_interface(cidr).ip in NET
    except ValueError:
        return False


def _delete_rule(c) -> str:
    """The command that deletes NAT rule `c` (a nat.Counted) where it is."""
    if c.tool == "nft":
        return (f"sudo nft delete rule {c.table} {c.chain} handle H (H: its handle, from "
                f"sudo nft -a list chain {c.table} {c.chain})")
    return f"sudo {c.tool} -t {c.table} -D {c.chain} {c.text}"


def strays(lab: str = "", kernel_names: list[str] = (), before: dict | None = None,
           rules: bool = True) -> list[Stray]:
    """What the machine's namespace holds that carries a name, address or route of the
    stages (see the module's text), less what `before` (a snapshot) held; `kernel_names`:
    the lab's namespaces, to name a veth's other end. Reads only; [] if it cannot read."""
    try:
        machine = read_machine(lab, list(kernel_names))
    except (LabkitError, OSError):
        return []
    found = []
    links = {itf.name for itf in machine.interfaces if NAMES.fullmatch(itf.name)}
    for itf in machine.interfaces:
        if itf.name in links:
            found.append(Stray(f"link {itf.name}", _link_text(itf),
                               f"sudo ip link delete {itf.name}"
                               + (" (its other end goes with it)" if itf.kind == "veth" else "")))
        else:
            found += [Stray(f"address {cidr} {itf.name}", f"{cidr} on {itf.name}",
                            f"sudo ip addr del {cidr} dev {itf.name}")
                      for cidr in itf.addresses if _ours(cidr)]
    for route in machine.routes:
        if route.dev not in links and (_ours(route.dst) or (route.gateway and _ours(route.gateway))):
            text = route_text(route)
            found.append(Stray(f"route {text}", f"the route {text}", f"sudo ip route del {text}"))
    before = before or {}
    now = dict(machine.sysctls).get(FORWARD)
    if before.get("ip_forward") == "0" and now == "1":
        found.append(Stray(f"sysctl {FORWARD}", f"{FORWARD}=1 (it was 0 when the practice began)",
                           f"sudo sysctl -w {FORWARD}=0"))
    if rules:
        try:
            counted = nat.rules_in(None)
        except (LabkitError, OSError, ValueError, subprocess.SubprocessError):
            counted = []
        found += [Stray(f"rule {c.tool} {c.table} {c.chain} {c.text}",
                        f"the rule `{c.line}` ({c.tool}, table {c.table})", _delete_rule(c))
                  for c in counted if "172.18." in c.text and not c.labkit]
    old = set(before.get("keys", ()))
    return [s for s in found if s.key not in old]


def _link_text(itf: Interface) -> str:
    parts = [itf.kind]
    if itf.peer:
        parts.append(f"its other end {itf.peer[1]} in {itf.peer[0]}")
    text = f"{itf.name} ({', '.join(parts)}"
    return text + (f"; {', '.join(itf.addresses)})" if itf.addresses else ")")


def snapshot(lab: str, kernel_names: list[str], rules: bool) -> dict:
    """What the machine holds now that `strays` would name, and its ip_forward: the record
    a practice journals before the person types anything."""
    try:
        forward = dict(read_machine(lab, list(kernel_names)).sysctls).get(FORWARD)
    except (LabkitError, OSError):
        forward = None
    return {"keys": [s.key for s in strays(lab, kernel_names, rules=rules)], "ip_forward": forward}


def lines(found: list[Stray], heading: str) -> list[str]:
    """`found` as lines a command prints: a heading, then each with the command that removes it."""
    if not found:
        return []
    name, where = machine_words()
    return [f"{heading}: {name} holds what the lab's stages name (labkit did not make it, so it "
            f"never removes it; typed outside the lab's shells? remove it {where}; made by "
            f"another tool, such as Docker? leave it):"] + \
        [f"  {s.what}: {s.remove}" for s in found]


class Survey:
    """The places a missing object may have gone, read when first asked (check's helper)."""

    def __init__(self, lab, live, words: Words):
        self.lab, self.live, self.w = lab, live, words
        journal = lab.journal
        self.kernel_names = list(journal.namespaces)
        self.before = journal.get(MACHINE_RECORD) or {}
        self._machine: Namespace | None | bool = False
        self._rules: dict[str, list] = {}

    # -- the places ----------------------------------------------------------------------
    def machine(self) -> Namespace | None:
        if self._machine is False:
            try:
                self._machine = read_machine(self.lab.name, self.kernel_names)
            except (LabkitError, OSError):
                self._machine = None
        return self._machine

    def _places(self, role: str, same: bool = False):
        """(place, Namespace): the machine, then the lab's namespaces (`role` too if `same`)."""
        machine = self.machine()
        if machine is not None:
            yield "machine", machine
        for ns in self.live.namespaces:
            if ns.role != role or same:
                yield ns.role, ns

    def _old(self, key: str) -> bool:
        return key in set(self.before.get("keys", ()))

    def _where(self, place: str) -> str:
        return machine_words()[1] if place == "machine" else self.w.where(place)

    def _outside(self, role: str = "host") -> str:
        return f"you typed it outside `{self.w.shell(role)}`"

    def look(self, command: str, role: str = "host") -> str:
        """A look in the machine's own shell, and which shell is the lab's (with its prompt)."""
        return (f"{command} at your own prompt; the lab's {role} is `{self.w.shell(role)}` "
                f"(or `{self.w.labkit_shell(role)}`, whose prompt says {self.w.prompt(role)})")

    # -- what check asks ------------------------------------------------------------------
    def link(self, item: Item, role: str, itf: Interface) -> Item:
        """`item` says link itf.name is missing in `role`: say where it is, if anywhere."""
        name = itf.name
        for place, ns in self._places(role):
            got = ns.interface(name)
            if got is None or (place == "machine" and self._old(f"link {name}")):
                continue
            if place == "machine":
                holds = f" (there it holds {', '.join(got.addresses)})" if got.addresses else ""
                said = (f"{name} was made in {machine_words()[0]}, not in the lab's {role}: "
                        f"{self._outside()}{holds}")
                remove = f"sudo ip link delete {name}" + (
                    " (its other end goes with it)" if got.kind == "veth" else "")
                return Item(False, said, "links", self.look(f"ip -br link show {name}"),
                            f"{self._where(place)}: {remove}; then {item.fix}")
            if place == "host" and itf.peer and itf.peer[0] == "host":
                return Item(False, f"{name} is in host, not in {role}: it was made there and "
                            f"not moved", "links", self.w.look("host", "ip -br link"),
                            f"{self.w.where('host')}: ip link set {name} netns {self.w.ns(role)}")
            return Item(False, f"{name} was made in {place}, not in {role}: you typed it in "
                        f"{place}'s shell (`{self.w.shell(place)}`)", "links",
                        self.w.look(place, "ip -br link"),
                        f"{self.w.where(place)}: ip link delete {name}; then {item.fix}")
        return item

    def address(self, item: Item, role: str, itf: Interface, cidr: str) -> Item:
        """`item` says `cidr` is missing on itf in `role`: say where it is, if anywhere."""
        ip = cidr.split("/")[0]
        for place, ns in self._places(role, same=True):
            for there in ns.interfaces:
                if place == role and there.name == itf.name:
                    continue
                for have in there.addresses:
                    if have.split("/")[0] != ip or (
                            place == "machine" and self._old(f"address {have} {there.name}")):
                        continue
                    on = f"{have} is on {there.name}"
                    if place == "machine":
                        said = (f"{on} in {machine_words()[0]}, not on {itf.name} in the lab's "
                                f"{role}: {self._outside(role)}")
                        look = self.look("ip -br addr", role)
                    elif place == role:
                        said = f"{on}, not on {itf.name}, in {role}"
                        look = self.w.look(role, "ip -br addr")
                    elif itf.peer and tuple(itf.peer) == (place, there.name) or \
                            there.peer and tuple(there.peer) == (role, itf.name):
                        said = (f"{on} in {place}, the other end of the veth: it belongs on "
                                f"{itf.name} in {role}")
                        look = self.w.look(place, "ip -br addr")
                    else:
                        said = (f"{on} in {place}, not on {itf.name} in {role}: you typed it in "
                                f"{place}'s shell")
                        look = self.w.look(place, "ip -br addr")
                    return Item(False, said, "addresses", look,
                                f"{self._where(place)}: {'sudo ' if place == 'machine' else ''}"
                                f"ip addr del {have} dev {there.name}; then {item.fix}")
        return item

    def route(self, item: Item, role: str, route) -> Item:
        """`item` says `route` is missing in `role`: say where it is, if anywhere."""
        for place, ns in self._places(role):
            if not any(r.dst == route.dst and r.gateway == route.gateway for r in ns.routes):
                continue
            text = route_text(route)
            if place == "machine" and self._old(f"route {text}"):
                continue
            said = (f"the route {text} is in {machine_words()[0]}, not in {role}: "
                    f"{self._outside(role)}" if place == "machine" else
                    f"the route {text} is in {place}, not in {role}: you typed it in {place}'s shell")
            return Item(False, said, "routes", self.w.look(place, "ip route") if place != "machine"
                        else self.look("ip route", role),
                        f"{self._where(place)}: {'sudo ' if place == 'machine' else ''}ip route del "
                        f"{text}; then {item.fix}")
        return item

    def forwarding(self, item: Item, role: str) -> Item:
        """`item` says `role` does not forward: say so if the machine was set to instead."""
        machine = self.machine()
        if machine is None or role != "host" or dict(machine.sysctls).get(FORWARD) != "1":
            return item
        was = self.before.get("ip_forward")
        name, where = machine_words()
        if was == "1":
            return item
        if was == "0":
            said = (f"{item.what}: `sysctl -w {FORWARD}=1` went to {name}, where it is 1 now (it "
                    f"was 0 when the practice began): {self._outside()}")
            undo = f"sudo sysctl -w {FORWARD}=0"
        else:
            said = (f"{item.what}; {name} forwards ({FORWARD} is 1 there): if you typed "
                    f"`sysctl -w {FORWARD}=1` at your own prompt, it went there, outside "
                    f"`{self.w.shell('host')}`")
            undo = f"sudo sysctl -w {FORWARD}=0 (if it was 0 before you typed it)"
        return Item(False, said, item.layer, self.look(f"sysctl {FORWARD}"),
                    f"{where}: {undo}; then {item.fix}")

    def _rules_in(self, place: str) -> list:
        if place not in self._rules:
            try:
                self._rules[place] = nat.rules_in(None) if place == "machine" else \
                    nat.counters(self.lab.name, place)
            except (LabkitError, OSError, ValueError, subprocess.SubprocessError):
                self._rules[place] = []
        return self._rules[place]

    def rule(self, item: Item, what: str, match, right: str) -> Item:
        """`item` says NAT rule `what` is missing in the host: say where a rule that `match`es
        is instead (the machine, another lab namespace); `right` is the fix in the host."""
        places = ["machine"] + [ns.role for ns in self.live.namespaces if ns.role != "host"]
        for place in places:
            for c in self._rules_in(place):
                if c.labkit or not match(c):
                    continue
                if place == "machine" and self._old(f"rule {c.tool} {c.table} {c.chain} {c.text}"):
                    continue
                if place == "machine":
                    said = (f"{what} was added in {machine_words()[0]}, not in the lab's host: "
                            f"{self._outside()}")
                    look = self.look(f"sudo {c.tool} -t {c.table} -S" if c.tool != "nft"
                                     else "sudo nft list ruleset")
                else:
                    said = f"{what} was added in {place}, not in the host: you typed it in {place}'s shell"
                    look = self.w.look(place, c.listing_command())
                return Item(False, said, "nat", look,
                            f"{self._where(place)}: {_delete_rule(c)}; then {item.fix or right}")
        return item

    def traffic(self, items: list[Item], stage: str) -> list[Item]:
        """Unmet probes of published ports whose DNAT rule was added elsewhere, said so."""
        from .reach import PROBES
        out = []
        for item in items:
            for p in PROBES.get(stage, ()):
                if item.ok or "DNAT" not in p.fix or not item.what.startswith(
                        f"{p.source} gets no answer from {p.target}"):
                    continue
                chain = "prerouting" if "PREROUTING" in p.fix else "output"
                address = p.fix.split(" -d ")[1].split()[0]

                def match(c, chain=chain, address=address):
                    return c.action.upper() == "DNAT" and c.hook == chain and address in c.text \
                        and "5000" in c.text
                item = self.rule(item, f"the {chain.upper()} DNAT of {address}:5000", match,
                                 f"{self.w.where('host')}: {p.fix}")
            out.append(item)
        return out
