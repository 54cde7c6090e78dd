"""Make the kernel match a Topology: create what is missing, fix what differs, delete what is extra.

Used by every stage: `up STAGE` converges from any state (nothing, another stage, a lab a
student edited by hand), so running it twice changes nothing the second time. Namespaces
are journaled before they are created. Only the lab's own namespaces are touched.
"""
from __future__ import annotations

from . import netns, plan, sysctl
from .errors import KernelError
from .journal import Journal
from .model import Interface, Namespace, Topology
from .netlink import Netlink
from .stages import IPV6_OFF


def converge(topology: Topology, journal: Journal) -> None:
    """Bring lab `topology.lab` to `topology` (namespaces, links, addresses, routes, sysctls)."""
    lab = topology.lab
    wanted = {plan.namespace_name(lab, ns.name): ns for ns in topology.namespaces}
    extra = [n for n in journal.namespaces if n not in wanted]
    for name in reversed(extra):
        netns.delete(name)
    if extra:
        journal.forget_namespaces(extra)
    missing = [n for n in wanted if not netns.exists(n)]
    journal.add_namespaces(list(wanted))
    for name in missing:
        netns.create(name)
        for key, value in IPV6_OFF:  # before any interface exists, so none gets IPv6
            sysctl.write(name, key, value)
    fresh = set(missing)
    sockets: dict[str, Netlink] = {}
    try:
        for name in wanted:
            sockets[name] = Netlink(name)
        state = {name: ([] if name in fresh else sockets[name].links()) for name in wanted}
        for name in wanted:
            _converge_links(lab, name, wanted, sockets, state)
        for name, ns in wanted.items():
            _converge_settings(name, ns, sockets[name], fresh=name in fresh)
    finally:
        for s in sockets.values():
            s.close()


def _converge_links(lab: str, name: str, wanted: dict[str, Namespace],
                    sockets: dict[str, Netlink], state: dict[str, list[dict]]) -> None:
    """Create, recreate or delete this namespace's links; veth pairs are made from this side
    when the peer's namespace comes later in the topology (the host makes its containers' pairs)."""
    nl, ns = sockets[name], wanted[name]
    order = list(wanted)
    links = {link["name"]: link for link in state[name]}
    wanted_names = {itf.name for itf in ns.interfaces}
    made_peers: set[str] = set()
    for link_name, link in links.items():
        if link_name not in wanted_names and link["kind"] is not None:
            nl.delete_link(link_name)
    for itf in ns.interfaces:
        have = links.get(itf.name)
        if itf.kind == "bridge" and (have is None or have["kind"] != "bridge"):
            if have is not None:
                nl.delete_link(itf.name)
            nl.add_bridge(itf.name, itf.mac)
        elif itf.kind == "veth" and itf.peer:
            peer_ns = plan.namespace_name(lab, itf.peer[0])
            if order.index(peer_ns) < order.index(name):
                continue  # made by the peer's side
            if have is not None and _pair_ok(have, peer_ns, itf.peer[1], sockets):
                continue
            if have is not None:
                nl.delete_link(itf.name)
            sockets[peer_ns].delete_link(itf.peer[1])
            peer = wanted[peer_ns].interface(itf.peer[1])
            nl.add_veth(itf.name, itf.mac, itf.peer[1], peer_ns, peer.mac if peer else None)
            made_peers.add(peer_ns)
    for other in made_peers:  # their link lists are stale now
        state[other] = sockets[other].links()


def _pair_ok(have: dict, peer_ns: str, peer_name: str, sockets: dict[str, Netlink]) -> bool:
    if have["kind"] != "veth" or have["link_netnsid"] is None:
        return False
    peer_index = sockets[peer_ns].index(peer_name)
    return peer_index is not None and have["link"] == peer_index


def _converge_settings(name: str, ns: Namespace, nl: Netlink, fresh: bool) -> None:
    """Masters, MACs, link state, addresses, routes and sysctls of one namespace."""
    links = {link["name"]: link for link in nl.links()}
    by_index = {link["index"]: link["name"] for link in links.values()}
    for itf in ns.interfaces:
        link = links.get(itf.name)
        if link is None:
            raise KernelError(f"interface {itf.name} is missing in namespace {name!r} after "
                              f"creating it; run `labkit up` again or `labkit down` to reset")
        changes = {}
        if itf.mac and link["mac"] != itf.mac:
            changes["mac"] = itf.mac
        master = by_index.get(link["master"]) if link["master"] else None
        if master != itf.master:
            changes["master"] = itf.master
        if link["up"] != itf.up:
            changes["up"] = itf.up
        if changes:
            nl.set_link(itf.name, **changes)
    have_addrs: dict[str, set[str]] = {}
    for index, cidr in ([] if fresh else nl.addresses()):
        if not cidr.startswith("127."):
            have_addrs.setdefault(by_index.get(index, "?"), set()).add(cidr)
    for itf in ns.interfaces:
        want = set(itf.addresses)
        have = have_addrs.pop(itf.name, set())
        for cidr in sorted(have - want):
            nl.del_address(itf.name, cidr)
        for cidr in sorted(want - have):
            nl.add_address(itf.name, cidr)
    wanted_routes = {(r.dst, r.gateway, r.dev) for r in ns.routes}
    for r in ([] if fresh else nl.routes(static_only=True)):
        dev = None if r["gateway"] else by_index.get(r["dev"])
        key = (r["dst"], r["gateway"], dev)
        if key in wanted_routes:
            wanted_routes.discard(key)
        else:
            nl.del_route(r["dst"], r["gateway"], r["dev"])
    for dst, gateway, dev in sorted(wanted_routes, key=str):
        nl.add_route(dst, gateway, dev)
    for key, value in ns.sysctls:
        sysctl.write(name, key, value)
