"""Make the kernel match a Topology: create what is missing, fix what differs, delete what is extra.

Used by every stage: `up STAGE` converges from any state (nothing, another stage, a lab a
student edited by hand), so running it twice changes nothing the second time. Namespaces
are journaled before they are created. Only the lab's own namespaces are touched.

Two passes over the namespaces, in the topology's order: links (delete what is extra,
create bridges, then veth pairs from the side whose namespace comes first), then settings
(MAC, master, state, addresses, routes, sysctls), each read back from the kernel. Cost stays
linear in the containers: a namespace made in this run is known to hold only `lo` and is
not read before its links are made; a link is made whole (MAC, master and state in the
creating request); requests go out in batches on one socket per namespace, and at most
MAX_SOCKETS sockets are open at once (1000 containers fit a 1024-descriptor limit).
"""
from __future__ import annotations

import contextlib
import os
from collections import OrderedDict

from ..kernel import netns
from ..model import plan
from ..kernel import sysctl, vxlan
from ..errors import KernelError
from .journal import Journal
from ..model.topology import Namespace, Topology
from ..kernel.messages import Link
from ..kernel.netlink import Netlink
from ..model.stages import NAMESPACE_SYSCTLS

MAX_SOCKETS = 32
_LOOPBACK_INDEX = 1  # the kernel gives lo index 1 in every namespace


def converge(topology: Topology, journal: Journal) -> None:
    """Bring lab `topology.lab` to `topology` (namespaces, links, addresses, routes, sysctls)."""
    lab = topology.lab
    wanted = {plan.namespace_name(lab, ns.role): ns for ns in topology.namespaces}
    foreign = set(journal.foreign())  # re-made by someone else under our name: not ours
    extra = [n for n in journal.namespaces if n not in wanted and n not in foreign]
    netns.delete_many(list(reversed(extra)))
    if extra:
        journal.forget_namespaces(extra)
    missing = [n for n in wanted if not netns.exists(n)]
    journal.add_namespaces(list(wanted))
    _create(lab, missing, journal)
    journal.add_inodes(missing)
    run = _Run(lab, wanted, set(missing))
    try:
        for name in wanted:
            run.converge_links(name)
        for name in wanted:
            run.converge_settings(name)
    finally:
        run.close()


def _create(lab: str, names: list[str], journal: Journal) -> None:
    """Create namespaces `names` (already journaled) with IPv6 off and rp_filter 0 before any
    interface exists (plan.NAMESPACE_SYSCTLS).

    Many at once: their mount points are hard links of one empty file, journaled first and
    removed after (see netns.create)."""
    template = None
    if len(names) > 2:
        template = os.path.join(netns.prepare_dir(), f".labkit-{lab or 'default'}-mountpoint")
        journal.add_path(template)
        try:
            os.close(os.open(template, os.O_RDONLY | os.O_CREAT, 0))
        except OSError:
            template = None

    def first_sysctls():
        return sysctl.write_here(NAMESPACE_SYSCTLS)

    try:
        for name in names:
            netns.create(name, inside=first_sysctls, like=template)
    finally:
        if template:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(template)


class _Run:
    """One convergence: sockets, and what is known of each namespace's links."""

    def __init__(self, lab: str, wanted: dict[str, Namespace], fresh: set[str]):
        self.lab, self.wanted, self.fresh = lab, wanted, fresh
        self.order = {name: i for i, name in enumerate(wanted)}
        self.sockets: OrderedDict[str, Netlink] = OrderedDict()
        self.known: dict[str, dict[str, dict]] = {}   # namespace -> link name -> links() entry
        self.sysctls_set = {name: dict(NAMESPACE_SYSCTLS) for name in fresh}
        self.made_here: set[str] = set()              # namespaces that made links of their own
        self.made_into: dict[str, list[dict]] = {}    # fresh namespace -> peers made into it
        self.echo_wanted: dict[str, list[dict]] = {}  # namespace -> those peers it made

    def close(self) -> None:
        while self.sockets:
            self.sockets.popitem()[1].close()

    def nl(self, name: str) -> Netlink:
        """The namespace's socket (opened on first use; the least recently used one is closed
        when MAX_SOCKETS are open)."""
        sock = self.sockets.get(name)
        if sock is None:
            idle = [n for n, s in self.sockets.items() if not s.batching]
            if len(self.sockets) >= MAX_SOCKETS and idle:
                self.sockets.pop(idle[0]).close()
            sock = self.sockets[name] = Netlink(name)
        self.sockets.move_to_end(name)
        return sock

    def drop(self, name: str) -> None:
        """Close the namespace's socket (done with it)."""
        sock = self.sockets.pop(name, None)
        if sock is not None:
            sock.close()

    def links(self, name: str) -> dict[str, dict]:
        """The namespace's links by name: read from the kernel, or only `lo` if made in this run."""
        if name not in self.known:
            if name in self.fresh:
                self.known[name] = {"lo": Link(_LOOPBACK_INDEX, "lo")}
            else:
                self.known[name] = {link.name: link for link in self.nl(name).links()}
        return self.known[name]

    def delete(self, name: str, link_name: str) -> None:
        """Delete a link; a veth's peer goes with it, so other namespaces must be read again."""
        link = self.links(name).pop(link_name, None)
        self.nl(name).delete_link(link_name)
        if link is None or link.link_netnsid is not None:
            for other in list(self.known):
                if other != name and other not in self.fresh:
                    del self.known[other]

    def converge_links(self, name: str) -> None:
        """Create, recreate or delete this namespace's links; veth pairs are made from this side
        when the peer's namespace comes later in the topology (the host makes its containers' pairs)."""
        ns = self.wanted[name]
        wanted_names = {itf.name for itf in ns.interfaces}
        for link_name, link in list(self.links(name).items()):
            if link_name not in wanted_names and link.kind is not None:
                self.delete(name, link_name)
        for itf in ns.interfaces:  # bridges first: ports are enslaved as they are made
            have = self.links(name).get(itf.name)
            if itf.kind == "bridge" and (have is None or have.kind != "bridge"):
                if have is not None:
                    self.delete(name, itf.name)
                self.nl(name).add_bridge(itf.name, itf.mac, up=itf.up)
                self.made_here.add(name)
        for itf in ns.interfaces:  # VXLAN devices: made again if their tunnel differs
            if itf.kind == "vxlan":
                self._make_vxlan(name, itf)
        pairs = [itf for itf in ns.interfaces if itf.kind == "veth" and itf.peer
                 and self.order[plan.namespace_name(self.lab, itf.peer[0])] >= self.order[name]]
        if not pairs:
            return  # the peers' side makes them (no socket needed here)
        with self.nl(name).batch():  # the pairs go out together; deletions elsewhere come first
            for itf in pairs:
                self._make_pair(name, itf)
        created = self.nl(name).created
        for peer in self.echo_wanted.pop(name, []):  # the kernel's echo names each peer's index
            echo = created.get(peer["by"])
            if echo is not None and echo.link_netnsid is not None:
                peer["index"] = echo.link

    def _make_vxlan(self, name: str, itf) -> None:
        """Make VXLAN device `itf` (its VNI, port, local address; learning off) unless it is there."""
        have = self.links(name).get(itf.name)
        t = itf.vxlan
        if have is not None and have.kind == "vxlan" and have.vxlan is not None \
                and tuple(have.vxlan) == (t.vni, t.port, t.local, False):
            return
        if have is not None:
            self.delete(name, itf.name)
        master = itf.master if itf.master and self._is_bridge(name, itf.master) else None
        vxlan.add_vxlan(self.nl(name), itf.name, itf.mac, t.vni, t.port, t.local, master=master,
                                up=itf.up, mtu=itf.mtu)
        self.made_here.add(name)

    def _make_pair(self, name: str, itf) -> None:
        """Make veth `itf` and its peer (in a later namespace) unless the pair is there."""
        peer_ns = plan.namespace_name(self.lab, itf.peer[0])
        have = self.links(name).get(itf.name)
        if have is not None and self._pair_ok(have, peer_ns, itf.peer[1]):
            return
        if have is not None:
            self.delete(name, itf.name)
        if itf.peer[1] in self.links(peer_ns):
            self.delete(peer_ns, itf.peer[1])
        peer = self.wanted[peer_ns].interface(itf.peer[1])
        master = itf.master if itf.master and self._is_bridge(name, itf.master) else None
        fresh_peer = peer_ns in self.fresh and peer_ns not in self.made_here
        self.nl(name).add_veth(itf.name, itf.mac, itf.peer[1], peer_ns, peer.mac if peer else None,
                               master=master, up=itf.up, echo=fresh_peer)
        self.made_here.add(name)
        if fresh_peer:
            entry = {"by": itf.name, "name": itf.peer[1], "index": None,
                     "mac": peer.mac if peer else None}
            self.made_into.setdefault(peer_ns, []).append(entry)
            self.echo_wanted.setdefault(name, []).append(entry)

    def _made_here_only(self, name: str) -> dict[str, dict] | None:
        """The links of a namespace made in this run that holds only `lo` and peers made from
        elsewhere whose indexes the kernel echoed (none read back); None if not known so."""
        if name in self.made_here:
            return None
        peers = self.made_into.get(name, [])
        if any(p["index"] is None for p in peers):
            return None
        links = {"lo": self.links(name)["lo"]}
        for p in peers:
            links[p["name"]] = Link(p["index"], p["name"], "veth", p["mac"])
        return links

    def _is_bridge(self, name: str, link_name: str) -> bool:
        have = self.links(name).get(link_name)
        return have is None or have.kind == "bridge"  # None: made in this pass

    def _pair_ok(self, have: Link, peer_ns: str, peer_name: str) -> bool:
        if have.kind != "veth" or have.link_netnsid is None:
            return False
        peer = self.links(peer_ns).get(peer_name)
        return peer is not None and peer.index is not None and have.link == peer.index

    def converge_settings(self, name: str) -> None:
        """Masters, MACs, link state, addresses, routes and sysctls of one namespace."""
        ns, nl, fresh = self.wanted[name], self.nl(name), name in self.fresh
        links = self._made_here_only(name) if fresh else None
        if links is None:
            links = {link.name: link for link in nl.links()}
        else:
            for link in links.values():
                nl.remember(link.name, link.index)
        by_index = {link.index: link.name for link in links.values()}
        done = dict(self.sysctls_set.get(name, {}))
        for key, value in ns.sysctls:  # IPv6 on before its addresses (the kernel refuses them)
            if key.endswith(".disable_ipv6") and value == "0" and done.get(key) != value:
                sysctl.write(name, key, value)
                done[key] = value
        with nl.batch():
            for itf in ns.interfaces:
                link = links.get(itf.name)
                if link is None:
                    raise KernelError(f"interface {itf.name} is missing in namespace {name!r} after "
                                      f"creating it; run `labkit up` again or `labkit down` to reset")
                changes = {}
                if itf.mac and link.mac != itf.mac:
                    changes["mac"] = itf.mac
                master = by_index.get(link.master) if link.master else None
                if master != itf.master:
                    changes["master"] = itf.master
                if link.up != itf.up:
                    changes["up"] = itf.up
                if changes:
                    nl.set_link(itf.name, **changes)
                if itf.mtu and link.mtu != itf.mtu:
                    vxlan.set_mtu(nl, itf.name, itf.mtu)
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
                    nl.del_route(r["dst"], r["gateway"], r["dev"], family=r.get("family"))
            for dst, gateway, dev in sorted(wanted_routes, key=str):
                nl.add_route(dst, gateway, dev)
        self._converge_floods(name, ns, nl)
        self.drop(name)
        for key, value in ns.sysctls:
            if done.get(key) != value:
                sysctl.write(name, key, value)

    def _converge_floods(self, name: str, ns: Namespace, nl: Netlink) -> None:
        """Each VXLAN device's flood entries (00:00:00:00:00:00 dst REMOTE) as its tunnel lists."""
        devices = [itf for itf in ns.interfaces if itf.kind == "vxlan"]
        if not devices:
            return
        have = {itf.name: set(vxlan.floods(nl, itf.name)) for itf in devices}
        with nl.batch():
            for itf in devices:
                want = set(itf.vxlan.remotes)
                for dst in sorted(have[itf.name] - want):
                    vxlan.del_flood(nl, itf.name, dst)
                for dst in sorted(want - have[itf.name]):
                    vxlan.add_flood(nl, itf.name, dst)
