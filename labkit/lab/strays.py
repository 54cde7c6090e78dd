"""What no stage has, found only where it is: a healthy lab adds no item to a check.

A stray route more specific than the bridge's network, a neighbour (ARP) entry that gives a
lab address a MAC its holder does not have, two interfaces with one MAC (bridge on); a rule
on the forward hook that drops (outside on); a DNAT of the published port to a port the
server does not listen on (publish on). Each is a check item with where to look and the
fix; the faults that make them are labkit.lab.faults's.
"""
from __future__ import annotations

import ipaddress
import re

from ..errors import LabkitError
from ..model import plan, stages
from ..model.topology import Interface, Topology, route_text
from .verdict import Item, Words


def items(lab, stage: str, want: Topology, live: Topology, w: Words, rules) -> list[Item]:
    """Things no stage has, in layers the stage's own items do not read: a stray route, a
    wrong neighbour entry, two interfaces with one MAC (bridge on), a FORWARD rule that drops
    (outside on), a DNAT of the published port to a port nothing listens on (publish on).
    `rules`: the host's rules as labkit.nat reads them (check reads them once for both)."""
    if not stages.includes(stage, "bridge"):
        return []
    found = _same_mac_items(live, w) + _stray_route_items(want, live, w) + _neighbour_items(lab, live, w)
    if stages.includes(stage, "outside"):
        found += _forward_drop_items(w, rules, stages.includes(stage, "firewall"))
        if stages.includes(stage, "publish"):
            found += _dnat_port_items(w, rules)
    return found


def _interfaces(live: Topology):
    """(role, interface) for every interface of the lab that has a MAC."""
    return [(ns.role, itf) for ns in live.namespaces for itf in ns.interfaces if itf.mac]


def _same_mac_items(live: Topology, w: Words) -> list[Item]:
    """Two interfaces on the lab's links with one MAC: the bridge cannot tell them apart."""
    seen: dict[str, tuple[str, str]] = {}
    found = []
    for role, itf in _interfaces(live):
        where = f"{itf.name} in {role}"
        if itf.mac in seen and role != seen[itf.mac][0]:
            found.append(Item(False, f"{where} has the MAC {itf.mac} of {seen[itf.mac][1]}: the "
                              f"bridge and the neighbours cannot tell them apart", "links",
                              w.look(role, "ip -br link") + f" (and {w.look(seen[itf.mac][0], 'ip -br link')})",
                              f"{w.where(role)}: ip link set {itf.name} address "
                              f"{plan.mac_for(_ipv4(itf))}; then in every namespace that "
                              f"talked to it: ip neigh flush all"))
        seen.setdefault(itf.mac, (role, where))
    return found


def _ipv4(itf: Interface) -> str | None:
    return itf.addresses[0].split("/")[0] if itf.addresses else None


def _stray_route_items(want: Topology, live: Topology, w: Words) -> list[Item]:
    """A route the stage does not have, more specific than a network the lab is on: longest
    prefix wins, so it takes the packets of the addresses it covers."""
    found = []
    for ns in live.namespaces:
        planned = want.namespace(ns.role)
        for route in ns.routes:
            if route.dst == "default" or (planned and route in planned.routes):
                continue
            dst = ipaddress.ip_network(route.dst, strict=False)
            if not dst.subnet_of(ipaddress.ip_network(plan.BRIDGE_NET)) or dst.prefixlen <= 16:
                continue
            text = route_text(route)
            found.append(Item(False, f"{ns.role} has a route {text} that the stage does not have "
                              f"(longest prefix wins: it takes the packets for {dst} from "
                              f"the bridge's {plan.BRIDGE_NET})", "routes",
                              w.look(ns.role, "ip route") + f"; {w.look(ns.role, 'ip route get ' + str(dst.network_address))}",
                              f"{w.where(ns.role)}: ip route del {text}"))
    return found


def _neighbour_items(lab, live: Topology, w: Words) -> list[Item]:
    """A neighbour (ARP) entry that gives a lab address a MAC other than that of the interface
    holding it (typed by hand, or left from before a MAC changed)."""
    from ..kernel.netlink import Netlink
    macs = {a.split("/")[0]: (role, itf) for role, itf in _interfaces(live) for a in itf.addresses}
    found = []
    for ns in live.namespaces:
        try:
            with Netlink(w.ns(ns.role)) as nl:
                names = {link.index: link.name for link in nl.links()}
                table = nl.neighbours()
        except LabkitError:
            continue
        for n in table:
            holder = macs.get(n["ip"])
            if not n["mac"] or holder is None or n["mac"] in _macs_of(live, *holder):
                continue
            dev = names.get(n["ifindex"], "?")
            found.append(Item(False, f"{ns.role}'s neighbour table says {n['ip']} is at {n['mac']} "
                              f"({n['state'].lower()}), but {holder[1].name} in {holder[0]}, which "
                              f"holds it, is {holder[1].mac}", "links",
                              w.look(ns.role, "ip neigh") + f"; {w.look(holder[0], 'ip -br link')}",
                              f"{w.where(ns.role)}: ip neigh del {n['ip']} dev {dev}"))
    return found


def _macs_of(live: Topology, role: str, itf: Interface) -> set[str]:
    """The MACs that reach the namespace holding `itf`'s address: any of its interfaces (it
    answers ARP for its addresses on each; a bridge takes frames sent to its ports)."""
    ns = live.namespace(role)
    return {itf.mac} | {i.mac for i in (ns.interfaces if ns else ()) if i.mac}


def _forward_drop_items(w: Words, rules, walled: bool = False) -> list[Item]:
    """A rule on the forward hook that drops: the containers' packets, or their answers, die
    in the host (a policy is not read here: that is br_netfilter's lesson, told by traffic).
    `walled` (a stage with Docker's filter table): only a drop in the FORWARD chain itself,
    not in a chain it jumps to (the isolation chains drop by design)."""
    found = []
    for c in rules:
        if c.hook != "forward" or c.action not in ("DROP", "REJECT"):
            continue
        if walled and c.chain not in ("FORWARD", "forward"):
            continue
        fix = (f"iptables -t {c.table} -D {c.line[3:]}" if c.tool != "nft" else
               f"nft -a list table {c.table} (then: nft delete rule {c.table} {c.chain} handle N)")
        found.append(Item(False, f"a rule in the host's forward path drops packets: {c.line}",
                          "forwarding", w.look("host", "iptables -S FORWARD -v")
                          + f" (or {w.look('host', 'nft list ruleset')})", f"{w.where('host')}: {fix}"))
    return found


_DNAT_TO = re.compile(r"(?:--to-destination|dnat to) (\d+\.\d+\.\d+\.\d+):(\d+)")


def _dnat_port_items(w: Words, rules) -> list[Item]:
    """A DNAT of the published port 5000 to a port of netns0 other than its server's."""
    want = f"{plan.container_address(0)}:{stages.PUBLISHED_PORT}"
    found = []
    for c in rules:
        to = _DNAT_TO.search(c.line) if c.action == "DNAT" else None
        if not to or not re.search(rf"dport {stages.PUBLISHED_PORT}\b", c.line) or \
                f"{to[1]}:{to[2]}" == want:
            continue
        fix = (f"iptables -t {c.table} -D {c.line[3:]}; iptables -t {c.table} -A "
               f"{c.line[3:].replace(f'{to[1]}:{to[2]}', want)}" if c.tool != "nft" else
               f"nft -a list table {c.table} (then replace the rule: dnat to {want})")
        found.append(Item(False, f"a DNAT of port {stages.PUBLISHED_PORT} sends to {to[1]}:{to[2]}, "
                          f"but the server listens on {want}: {c.line}", "nat",
                          w.look("host", f"iptables -t {c.table} -S") + "; "
                          + w.look("netns0", "ss -ltn"), f"{w.where('host')}: {fix}"))
    return found

