"""Is the overlay done? What `check` adds for it: each VXLAN device's tunnel (VNI, UDP port,
local VTEP), its flood entries to the other host, and the MTUs the encapsulation needs.

The generic items (namespaces, links, masters, addresses, link states) come from check; the
traffic from reach.PROBES["overlay"] (a ping across the hosts and a 1,400-byte HTTP response).
"""
from __future__ import annotations

from ..model import overlay
from ..model.topology import Topology
from .verdict import Item, Words


def items(want: Topology, live: Topology, w: Words) -> list[Item]:
    """The overlay's tunnel and MTU items, in the plan's order."""
    found = []
    for ns in want.namespaces:
        have = live.namespace(ns.role)
        if have is None:
            continue
        for itf in ns.interfaces:
            got = have.interface(itf.name)
            if got is None:
                continue
            if ns.kind == "host" and (itf.master or got.master):  # check's own: role "host" only
                ok = got.master == itf.master
                found.append(Item(ok, f"{itf.name} in {ns.role} is " + (f"a port of {itf.master}" if ok
                                  else f"not a port of {itf.master}"), "links",
                                  w.look(ns.role, "bridge link"),
                                  f"{w.where(ns.role)}: ip link set {itf.name} master {itf.master}"))
            if itf.vxlan is not None and got.vxlan is not None:
                found += _tunnel_items(ns.role, itf, got, w)
            if itf.mtu is not None:
                ok = got.mtu == itf.mtu
                where = f"{itf.name} in {ns.role}"
                found.append(Item(ok, f"{where} has MTU {got.mtu}" + ("" if ok else
                                  f", not {itf.mtu} (a full-size frame does not fit the tunnel: "
                                  f"VXLAN takes 50 of the underlay's 1500 bytes)"), "links",
                                  w.look(ns.role, f"ip link show {itf.name}"),
                                  f"{w.where(ns.role)}: ip link set {itf.name} mtu {itf.mtu}"))
    return found


def underlay_items(lab, w: Words) -> list[Item]:
    """Nothing in either host drops the tunnel's UDP port (a firewall on the underlay path),
    read from both tools' rules."""
    from ..kernel import netns
    found = []
    port = str(overlay.VXLAN_PORT)
    for host in overlay.HOSTS:
        lines = []
        for argv in (["iptables-save"], ["nft", "list", "ruleset"]):
            out = netns.run(w.ns(host), argv, check=False).stdout or ""
            lines += [line.strip() for line in out.splitlines()
                      if port in line and any(v in line for v in ("DROP", "REJECT", " drop", " reject"))]
        rule = next((line for line in lines if line.startswith("-A ")), lines[0] if lines else "")
        fix = (f"{w.where(host)}: iptables -D {rule[3:]}" if rule.startswith("-A ") else
               f"{w.where(host)}: nft -a list ruleset, then nft delete rule ... handle N")
        found.append(Item(not lines, f"{host} " + ("lets in" if not lines else f"drops ({rule})")
                          + f" the tunnel's UDP port {port}", "links",
                          w.look(host, f"iptables -S; nft list ruleset | grep {port}"), fix))
    return found


def _tunnel_items(role: str, itf, got, w: Words) -> list[Item]:
    t, g = itf.vxlan, got.vxlan
    where = f"{itf.name} in {role}"
    look = w.look(role, f"ip -d link show {itf.name}")
    remake = (f"{w.where(role)}: ip link del {itf.name}; ip link add {itf.name} type vxlan id {t.vni} "
              f"dstport {t.port} local {t.local} nolearning; ip link set {itf.name} mtu "
              f"{itf.mtu or overlay.MTU} master br0 up; " + "; ".join(
                  f"bridge fdb append 00:00:00:00:00:00 dev {itf.name} dst {r}" for r in t.remotes))
    ok = (g.vni, g.port, g.local) == (t.vni, t.port, t.local)
    said = (f"{where} carries VNI {g.vni} on UDP {g.port} from {g.local}" if ok else
            f"{where} carries VNI {g.vni} on UDP {g.port} from {g.local}, not VNI {t.vni} on UDP "
            f"{t.port} from {t.local} (both ends of a tunnel must agree)")
    out = [Item(ok, said, "links", look, remake)]
    for remote in t.remotes:
        has = remote in g.remotes
        out.append(Item(has, f"{where} " + ("floods" if has else "does not flood") +
                        f" broadcast and unknown frames to {remote} (the other host's VTEP)", "links",
                        w.look(role, f"bridge fdb show dev {itf.name}"),
                        f"{w.where(role)}: bridge fdb append 00:00:00:00:00:00 dev {itf.name} dst {remote}"))
    return out
