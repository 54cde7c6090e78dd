"""Read a lab's live kernel state back into the plain-data model.

What `status` and every diagram show is what IS: links, peers, masters, MACs, addresses,
static routes and the sysctls labkit touches, as the kernel holds them now, hand edits
included.
"""
from __future__ import annotations

import dataclasses

from ..errors import LabkitError
from ..kernel import netns
from ..model import plan
from ..kernel import sysctl, vxlan
from ..model.topology import Interface, Namespace, Route, Topology, Vxlan, route_text
from ..kernel.netlink import Netlink
from ..model.stages import SYSCTLS_TOUCHED


def role_of(lab: str, kernel_name: str) -> str:
    """Role name of a lab namespace's kernel name ("t1-netns0" -> "netns0")."""
    prefix = f"{lab}-" if lab else ""
    return kernel_name[len(prefix):] if kernel_name.startswith(prefix) else kernel_name


def kind_of_role(role: str) -> str:
    """"host", "world" or "container" for a role name."""
    return role if role in ("host", "world") else "container"


def _order(role: str) -> tuple:
    k = plan.container_index(role)
    return ({"host": 0, "world": 1}.get(role, 2), k if k is not None else 0, role)


def read_namespace(role: str, kernel_name: str, nl: Netlink, nsid_to_role: dict[int, str],
                   kind: str | None = None, sysctls: tuple[str, ...] = SYSCTLS_TOUCHED
                   ) -> tuple[Namespace, dict[int, str]]:
    """One namespace's live state, and its ifindex -> name table (to name peers seen from elsewhere).

    `kind` is host, world or container (guessed from the role if None); `sysctls` the
    keys to read. A veth whose peer is in another namespace gets peer (role, "#IFINDEX");
    `inspect` names it."""
    links = nl.links()
    by_index = {link.index: link for link in links}
    addrs: dict[int, list[str]] = {}
    for index, cidr in nl.addresses():
        if not cidr.startswith("127."):
            addrs.setdefault(index, []).append(cidr)
    interfaces = []
    for link in links:
        link_kind = link.kind or ("loopback" if link.name == "lo" else "unknown")
        peer = None
        if link_kind == "veth" and link.link:
            if link.link_netnsid is None:
                peer_link = by_index.get(link.link)
                peer = (role, peer_link.name) if peer_link else None
            else:
                peer = (nsid_to_role.get(link.link_netnsid, "?"), f"#{link.link}")
        master = by_index[link.master].name if link.master in by_index else None
        interfaces.append(Interface(link.name, link_kind, tuple(sorted(addrs.get(link.index, []))),
                                    None if link_kind == "loopback" else link.mac, peer, master,
                                    link.up, None if link_kind == "loopback" else link.mtu,
                                    _tunnel(link, nl)))
    routes = []
    for r in nl.routes(static_only=True):
        dev = by_index[r["dev"]].name if r["dev"] in by_index else None
        routes.append(Route(r["dst"], r["gateway"], None if r["gateway"] else dev))
    with netns.entered(kernel_name):
        values = tuple((key, _read_proc(key)) for key in sysctls)
    namespace = Namespace(role, kind or kind_of_role(role), tuple(interfaces), tuple(routes),
                          tuple((k, v) for k, v in values if v is not None))
    return namespace, {index: link.name for index, link in by_index.items()}


def _tunnel(link, nl: Netlink) -> Vxlan | None:
    """A VXLAN device's tunnel as the kernel holds it (its flood entries read from its FDB)."""
    if link.kind != "vxlan" or link.vxlan is None:
        return None
    vni, port, local, _learning = link.vxlan
    return Vxlan(vni, port, local, tuple(vxlan.floods(nl, link.name)))


def _tunnel_text(t: Vxlan) -> str:
    return (f"VNI {t.vni} port {t.port} local {t.local} flooding to "
            f"{', '.join(sorted(t.remotes)) or 'nothing'}")


def _read_proc(key: str) -> str | None:
    try:
        with open("/proc/sys/" + key.replace(".", "/")) as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def inspect(lab: str, kernel_names: list[str], stage: str | None = None,
            want: Topology | None = None) -> Topology:
    """Live Topology of lab `lab` over the namespaces `kernel_names` that exist.

    With `want` (the plan the lab was brought to), namespaces keep its kinds and order, its
    sysctls are read too, and each namespace's veth peers are named wherever the plan puts
    them; without it, kinds are guessed from the roles (host, world, containers)."""
    present = [n for n in kernel_names if netns.exists(n)]
    roles = {n: role_of(lab, n) for n in present}
    planned = {ns.role: ns for ns in want.namespaces} if want else {}
    kinds = {n: planned[r].kind if r in planned else kind_of_role(r) for n, r in roles.items()}
    keys = tuple(dict.fromkeys(SYSCTLS_TOUCHED + tuple(k for ns in planned.values() for k, _ in ns.sysctls)))
    hubs = [n for n in present if kinds[n] in ("host", "world")]
    read = []
    for n in present:  # one socket at a time: 1000 containers fit a 1024-descriptor limit
        try:
            with Netlink(n) as nl:
                others = present if kinds[n] == "host" else \
                    list(dict.fromkeys(hubs + [p for p in _plan_peers(lab, planned.get(roles[n])) if p in roles]))
                read.append(read_namespace(roles[n], n, nl, _nsid_map(n, nl, others, roles), kinds[n], keys))
        except LabkitError:
            if netns.exists(n):
                raise
            continue  # deleted since `present` was read (a writer at work): not there now
    indexes = {ns.role: table for ns, table in read}
    namespaces = [_name_peers(ns, indexes) for ns, _ in read]
    order = {name: i for i, name in enumerate(planned)}
    namespaces.sort(key=lambda ns: (order.get(ns.role, len(order)), _order(ns.role)))
    return Topology(lab, stage, tuple(namespaces))


def _plan_peers(lab: str, ns: Namespace | None) -> list[str]:
    """Kernel names of the namespaces where the plan puts `ns`'s veth peers."""
    if ns is None:
        return []
    return [plan.namespace_name(lab, itf.peer[0]) for itf in ns.interfaces if itf.peer]


def _nsid_map(name: str, nl: Netlink, others: list[str], roles: dict[str, str]) -> dict[int, str]:
    """The ids under which namespace `name` (socket `nl`) knows `others` (the host knows
    every namespace; the others know host and world), as id -> role."""
    mapping = {}
    for other in others:
        if other != name:
            try:
                nsid = nl.netnsid_of(other)
            except OSError:
                if netns.exists(other):
                    raise
                continue  # deleted meanwhile (a writer at work)
            if nsid is not None:
                mapping[nsid] = roles[other]
    return mapping


def _name_peers(ns: Namespace, indexes: dict[str, dict[int, str]]) -> Namespace:
    """Replace peers ("role", "#IFINDEX") by ("role", name) from that namespace's index table."""
    interfaces = []
    for itf in ns.interfaces:
        if itf.peer and itf.peer[1].startswith("#"):
            name = indexes.get(itf.peer[0], {}).get(int(itf.peer[1][1:]), "?")
            itf = dataclasses.replace(itf, peer=(itf.peer[0], name))
        interfaces.append(itf)
    return dataclasses.replace(ns, interfaces=tuple(interfaces))


def differences(want: Topology, have: Topology) -> list[str]:
    """What differs between a plan and the live lab, one line each ("" list: they match).

    Compares namespaces, interfaces (kind, addresses, MAC, peer, master, state), static
    routes and the sysctls the plan sets; NAT rules and services are compared elsewhere."""
    lines = []
    for ns in want.namespaces:
        live = have.namespace(ns.role)
        if live is None:
            lines.append(f"{ns.role}: namespace missing")
            continue
        for itf in ns.interfaces:
            got = live.interface(itf.name)
            if got is None:
                lines.append(f"{ns.role}: {itf.name} missing")
                continue
            for attr in ("kind", "mac", "peer", "master", "up", "mtu"):
                a, b = getattr(itf, attr), getattr(got, attr)
                if a is not None and a != b:
                    lines.append(f"{ns.role}: {itf.name} {attr} is {b!r}, the stage wants {a!r}")
            if itf.vxlan is not None and got.vxlan is not None and \
                    (itf.vxlan.vni, itf.vxlan.port, itf.vxlan.local, tuple(sorted(itf.vxlan.remotes))) \
                    != (got.vxlan.vni, got.vxlan.port, got.vxlan.local, got.vxlan.remotes):
                lines.append(f"{ns.role}: {itf.name} tunnel is {_tunnel_text(got.vxlan)}, the "
                             f"stage wants {_tunnel_text(itf.vxlan)}")
            for cidr in sorted(set(got.addresses) - set(itf.addresses)):
                lines.append(f"{ns.role}: {itf.name} addresses: {cidr} is not part of the stage")
            for cidr in sorted(set(itf.addresses) - set(got.addresses)):
                lines.append(f"{ns.role}: {itf.name} addresses: {cidr} missing")
        for extra in sorted({i.name for i in live.interfaces} - {i.name for i in ns.interfaces}):
            lines.append(f"{ns.role}: {extra} is not part of the stage")
        for route in sorted(set(ns.routes) - set(live.routes), key=route_text):
            lines.append(f"{ns.role}: route {route_text(route)} missing")
        for route in sorted(set(live.routes) - set(ns.routes), key=route_text):
            lines.append(f"{ns.role}: route {route_text(route)} is not part of the stage")
        live_sysctls = dict(live.sysctls)
        for key, value in ns.sysctls:
            if live_sysctls.get(key) != value and sysctl.applies(key):
                lines.append(f"{ns.role}: {key} is {live_sysctls.get(key)}, the stage wants {value}")
    for extra in sorted({n.role for n in have.namespaces} - {n.role for n in want.namespaces}):
        lines.append(f"{extra}: namespace is not part of the stage")
    return lines


MACHINE = "/proc/self/ns/net"
"""The namespace labkit runs in (the machine's own network; in a normal user's world, the
world's), as a name that `netns.entered` and `Netlink` accept: an absolute path is used as it
is. Only ever read: labkit makes nothing there."""


def read_machine(lab: str, kernel_names: list[str]) -> Namespace:
    """The machine's own namespace (role "machine"): its links, addresses, static routes and
    ip_forward; a veth whose other end is in one of the lab's namespaces `kernel_names` names
    it (role, interface). Reads only."""
    present = [n for n in kernel_names if netns.exists(n)]
    roles = {n: role_of(lab, n) for n in present}
    with Netlink(MACHINE) as nl:
        ns, _ = read_namespace("machine", MACHINE, nl, _nsid_map(MACHINE, nl, present, roles),
                               "host", ("net.ipv4.ip_forward",))
    wanted = {itf.peer[0] for itf in ns.interfaces if itf.peer and itf.peer[1].startswith("#")}
    indexes = {}
    for kernel, role in roles.items():
        if role in wanted:
            try:
                with Netlink(kernel) as nl:
                    indexes[role] = {link.index: link.name for link in nl.links()}
            except LabkitError:
                continue  # deleted meanwhile
    return _name_peers(ns, indexes)
