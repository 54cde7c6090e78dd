"""What a topology diagram shows, each namespace, interface and line marked against a previous one.

`views(topology, previous, macs)` returns one NsView per namespace of either (host, world, then
the containers by number) whose interfaces (IfViews), notes and NAT lines carry a mark: SAME,
ADDED, REMOVED (kept, to be drawn grey) or CHANGED; without `previous` everything is SAME.
`merge` marks a list against the previous one. Plain data, no geometry: labkit.draw.placement
decides where each goes.
"""
from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass

from ..model import plan, stages
from .figure import ADDED, CHANGED, REMOVED, SAME, Line
from ..model.topology import Masquerade, PortMapping, Topology, route_text

NULL_MAC = "00:00:00:00:00:00"


@dataclass
class IfView:
    """One interface as drawn: its lines (name, addresses, MAC), each marked, and its links."""
    ns: str
    name: str
    kind: str
    status: str
    lines: list
    peer: tuple[str, str] | None
    master: str | None


@dataclass
class NsView:
    """One namespace as drawn: its interfaces, notes (routes, sysctls, services) and NAT lines."""
    name: str                                    # the namespace's role: "host", "netns0", "web"
    kind: str                                    # "host" | "world" | "container"
    status: str
    ifs: list
    notes: list
    nat: list

    @property
    def changed(self) -> bool:
        return (self.status != SAME or any(i.status != SAME for i in self.ifs)
                or any(ln.status != SAME for ln in self.notes + self.nat))


def _status(cur, prev, compared: bool) -> str:
    if not compared:
        return SAME
    if cur is None:
        return REMOVED
    if prev is None:
        return ADDED
    return SAME if cur == prev else CHANGED


def merge(cur: list, prev: list, compared: bool) -> list:
    """[(item, status)]: current items in order, then those only in `prev` (removed)."""
    out = [(it, ADDED if compared and it not in prev else SAME) for it in cur]
    return out + [(it, REMOVED) for it in prev if it not in cur] if compared else out


def _lines(items: list, compared: bool, prev: list = ()) -> list:
    """Items are tuples of strings (one rule, route, warning); each string becomes a Line."""
    return [Line(text, st, False, "warning" if item[0].startswith("!") else "")
            for item, st in merge(list(items), list(prev), compared) for text in item]


def _default_mtu(itf):
    """`itf` with an MTU left to the kernel (None, as plans say) written as the kernel's 1500,
    as inspection reads it: a plan and the live lab then differ only where the MTU does."""
    return dataclasses.replace(itf, mtu=itf.mtu or 1500) if itf is not None else None


def _if_view(ns: str, cur, prev, compared: bool, show_macs: bool = True) -> IfView:
    itf = cur or prev
    st = _status(_default_mtu(cur), _default_mtu(prev), compared)
    name = itf.name + ("  bridge" if itf.kind == "bridge" else "") + ("" if itf.up else "  DOWN")
    name_st = st if st in (ADDED, REMOVED) else (
        CHANGED if st == CHANGED and (cur.up, cur.kind) != (prev.up, prev.kind) else SAME)

    def macs(i):
        return [i.mac] if show_macs and i is not None and i.mac and i.mac != NULL_MAC else []

    lines = [Line(name, name_st, True)]
    lines += [Line(a, s) for a, s in merge(list(cur.addresses if cur else ()),
                                            list(prev.addresses if prev else ()), compared)]
    lines += [Line(m, s) for m, s in merge(macs(cur), macs(prev), compared)]
    return IfView(ns, itf.name, itf.kind, st, lines, itf.peer, itf.master)


def _conflicts(ns) -> list[tuple[str, str]]:
    """Warnings for one network on several interfaces (the two-veths lesson)."""
    nets: dict = {}
    for itf in ns.interfaces if ns else ():
        for cidr in itf.addresses:
            try:
                net = ipaddress.ip_interface(cidr).network
            except ValueError:
                continue
            if itf.kind != "loopback" and net.prefixlen < net.max_prefixlen:
                nets.setdefault(str(net), []).append(itf.name)
    out = []
    for net, names in nets.items():
        if len(set(names)) > 1:
            shown = (" and ".join(names) if len(names) == 2 else ", ".join(names) if len(names) <= 4
                     else f"{names[0]}, \u2026 {names[-1]}")
            out.append((f"! {net} on {shown}:", f"  {len(names)} routes, the kernel uses one"))
    return out


def _notes(ns, services) -> list[tuple]:
    if ns is None:
        return []
    items = [(route_text(r),) for r in ns.routes]
    items += [(f"{k.rsplit('.', 1)[-1]}={v}",) for k, v in ns.sysctls     # what labkit turned on
              if "disable_ipv6" not in k and v != "0"]
    items += _conflicts(ns)
    for s in services:
        if s.namespace == ns.role:
            where = f"{s.address}:{s.port}" if s.address else (f"port {s.port}" if s.port else "")
            what = "web server" if _labkits_own(s.argv) else f"runs {' '.join(s.argv[:3])}"
            items.append((what,) + ((f"  on {where}",) if where else ()))
    return items


def _labkits_own(argv) -> bool:
    """True for labkit's own web server (the world's whoami page): drawn as what it is for."""
    return "labkit.lab.service" in argv[:3]


def _nat_items(topology, ns_name: str) -> list[tuple]:
    items = []
    for rule in topology.nat if topology else ():
        if rule.namespace != ns_name:
            continue
        if isinstance(rule, Masquerade):
            items.append((f"masquerade {rule.source}",)
                         + ((f"  unless out {rule.not_out}",) if rule.not_out else ()))
        elif isinstance(rule, PortMapping):
            items.append((f"publish {rule.proto} {rule.address}:{rule.port}",
                          f"  \u2192 {rule.to_address}:{rule.to_port}"))
    return items


def _ns_key(view: NsView) -> tuple:
    k = plan.container_index(view.name)
    return ({"host": 0, "world": 1}.get(view.kind, 2), k if k is not None else 10**9, view.name)


MAC_STAGES = ("veth", "two-veths", "bridge")      # whose lessons are about MACs


def shows_macs(topology: Topology) -> bool:
    """Whether a diagram shows MACs by itself: in the stages whose lessons are about them, and
    for a lab that is no stage of the course (a custom one: all of it may matter)."""
    stage = stages.practised(topology.stage or "") or topology.stage   # where a practice starts
    return stage in MAC_STAGES or stage not in stages.STAGES


def views(topology: Topology, previous: Topology | None, macs: bool | None = None) -> list[NsView]:
    """The namespaces as drawn; `macs` None: `shows_macs(topology)`."""
    compared = previous is not None
    macs = shows_macs(topology) if macs is None else bool(macs)
    prev_t = previous or Topology(topology.lab, None)
    names = [n.role for n in topology.namespaces]
    names += [n.role for n in prev_t.namespaces if n.role not in names]
    out = []
    for name in names:
        cur, prev = topology.namespace(name), prev_t.namespace(name)
        ns = cur or prev
        ifnames = [i.name for i in (cur.interfaces if cur else ())]
        ifnames += [i.name for i in (prev.interfaces if prev else ()) if i.name not in ifnames]
        ifs = [_if_view(name, cur and cur.interface(n), prev and prev.interface(n), compared, macs)
               for n in ifnames]
        notes = _lines(_notes(cur, topology.services), compared, _notes(prev, prev_t.services))
        nat = _lines(_nat_items(topology if cur else None, name), compared,
                     _nat_items(prev_t if prev else None, name))
        if nat:
            backend = topology.nat_backend or prev_t.nat_backend
            nat.insert(0, Line("NAT" + (f" ({backend})" if backend else ""), SAME, True))
        out.append(NsView(name, ns.kind, _status(cur, prev, compared) if compared and (
            cur is None or prev is None) else SAME, ifs, notes, nat))
    return sorted(out, key=_ns_key)
