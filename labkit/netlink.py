"""Kernel primitives over netlink (pyroute2): links, veth pairs, bridges, addresses, routes.

`Netlink(ns)` holds one rtnetlink socket opened inside namespace `ns` (kernel name); every
call acts there. Each creating call has its undo (`delete_link`, `del_address`,
`del_route`); "already there" and "already gone" are not errors, anything else raises
KernelError naming the operation.
"""
from __future__ import annotations

import errno
import os
import socket

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from . import netns
from .errors import KernelError

IFF_UP = 1
RT_PROTO_KERNEL = 2
RT_TABLE_MAIN = 254


class Netlink:
    """An rtnetlink socket bound to one namespace; a context manager (closes the socket)."""

    def __init__(self, ns: str):
        self.ns = ns
        with netns.entered(ns):
            self.ipr = IPRoute()
        self._index: dict[str, int] | None = None

    def close(self) -> None:
        """Close the socket."""
        self.ipr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _call(self, what: str, func, *args, ok=(), **kwargs):
        try:
            return func(*args, **kwargs)
        except NetlinkError as e:
            if e.code in ok:
                return None
            raise KernelError(f"{what} in namespace {self.ns!r} failed: "
                              f"{os.strerror(e.code)} (errno {e.code})") from None

    # -- links -----------------------------------------------------------------------------
    def links(self) -> list[dict]:
        """Every link as a plain dict: index, name, kind, mac, up, master (index), link, link_netnsid."""
        result = []
        for msg in self._call("listing links", self.ipr.get_links):
            info = msg.get_attr("IFLA_LINKINFO")
            result.append({
                "index": msg["index"],
                "name": msg.get_attr("IFLA_IFNAME"),
                "kind": info.get_attr("IFLA_INFO_KIND") if info else None,
                "mac": msg.get_attr("IFLA_ADDRESS"),
                "up": bool(msg["flags"] & IFF_UP),
                "master": msg.get_attr("IFLA_MASTER"),
                "link": msg.get_attr("IFLA_LINK"),
                "link_netnsid": msg.get_attr("IFLA_LINK_NETNSID"),
            })
        self._index = {link["name"]: link["index"] for link in result}
        return result

    def index(self, name: str) -> int | None:
        """Interface index of `name`, or None if there is no such link."""
        if self._index is None or name not in self._index:
            self._index = {m.get_attr("IFLA_IFNAME"): m["index"]
                           for m in self._call("listing links", self.ipr.get_links)}
        return self._index.get(name)

    def add_veth(self, name: str, mac: str | None, peer: str, peer_ns: str | None,
                 peer_mac: str | None) -> None:
        """Create veth `name` here with its peer `peer` in namespace `peer_ns` (None: here).

        Undo: delete_link(name) (removes both ends)."""
        peer_spec = {"ifname": peer}
        if peer_mac:
            peer_spec["address"] = peer_mac
        fd = None
        if peer_ns is not None and peer_ns != self.ns:
            fd = os.open(netns.path(peer_ns), os.O_RDONLY)
            peer_spec["net_ns_fd"] = fd
        try:
            kwargs = {"ifname": name, "kind": "veth", "peer": peer_spec}
            if mac:
                kwargs["address"] = mac
            self._call(f"creating veth pair {name} <-> {peer}", self.ipr.link, "add", **kwargs)
        finally:
            if fd is not None:
                os.close(fd)
        self._index = None

    def add_bridge(self, name: str, mac: str | None) -> None:
        """Create bridge `name`. Undo: delete_link(name)."""
        kwargs = {"ifname": name, "kind": "bridge"}
        if mac:
            kwargs["address"] = mac
        self._call(f"creating bridge {name}", self.ipr.link, "add", **kwargs)
        self._index = None

    def delete_link(self, name: str) -> None:
        """Delete link `name`; a no-op if it is gone."""
        idx = self.index(name)
        if idx is not None:
            self._call(f"deleting {name}", self.ipr.link, "del", index=idx, ok=(errno.ENODEV,))
            self._index = None

    def set_link(self, name: str, **attrs) -> None:
        """Set link attributes: up=bool, mac=str, master=name or None (nomaster)."""
        idx = self._require(name)
        kwargs = {}
        if "mac" in attrs and attrs["mac"]:
            kwargs["address"] = attrs["mac"]
        if "master" in attrs:
            kwargs["master"] = self._require(attrs["master"]) if attrs["master"] else 0
        if "up" in attrs:
            kwargs["state"] = "up" if attrs["up"] else "down"
        if kwargs:
            self._call(f"setting {name} {sorted(kwargs)}", self.ipr.link, "set", index=idx, **kwargs)

    def _require(self, name: str) -> int:
        idx = self.index(name)
        if idx is None:
            raise KernelError(f"interface {name!r} does not exist in namespace {self.ns!r}")
        return idx

    def netnsid_of(self, ns: str) -> int | None:
        """The id under which this namespace knows namespace `ns` (None if it has none)."""
        fd = os.open(netns.path(ns), os.O_RDONLY)
        try:
            reply = self._call("reading netnsid", self.ipr.get_netnsid, fd=fd)
        finally:
            os.close(fd)
        nsid = reply.get("nsid") if reply else None
        return None if nsid in (None, -1, 0xFFFFFFFF, 4294967295) else nsid

    # -- addresses -------------------------------------------------------------------------
    def addresses(self) -> list[tuple[int, str]]:
        """Every IPv4 address as (interface index, "a.b.c.d/len")."""
        return [(m["index"], f"{m.get_attr('IFA_ADDRESS')}/{m['prefixlen']}")
                for m in self._call("listing addresses", self.ipr.get_addr, family=socket.AF_INET)]

    def add_address(self, name: str, cidr: str) -> None:
        """Add `cidr` to `name` (no-op if present). Undo: del_address."""
        addr, length = cidr.split("/")
        self._call(f"adding {cidr} to {name}", self.ipr.addr, "add", index=self._require(name),
                   address=addr, prefixlen=int(length), ok=(errno.EEXIST,))

    def del_address(self, name: str, cidr: str) -> None:
        """Remove `cidr` from `name` (no-op if absent)."""
        idx = self.index(name)
        if idx is None:
            return
        addr, length = cidr.split("/")
        self._call(f"removing {cidr} from {name}", self.ipr.addr, "del", index=idx, address=addr,
                   prefixlen=int(length), ok=(errno.EADDRNOTAVAIL, errno.ENODEV))

    # -- routes ----------------------------------------------------------------------------
    def routes(self, static_only: bool = False) -> list[dict]:
        """IPv4 routes of the main table: dst ("default" or CIDR), gateway, dev (index), proto, src."""
        result = []
        for m in self._call("listing routes", self.ipr.get_routes, family=socket.AF_INET,
                            table=RT_TABLE_MAIN):
            if m.get_attr("RTA_TABLE", m["table"]) != RT_TABLE_MAIN:
                continue
            if static_only and m["proto"] == RT_PROTO_KERNEL:
                continue
            dst = m.get_attr("RTA_DST")
            result.append({
                "dst": f"{dst}/{m['dst_len']}" if dst else "default",
                "gateway": m.get_attr("RTA_GATEWAY"),
                "dev": m.get_attr("RTA_OIF"),
                "proto": m["proto"],
                "src": m.get_attr("RTA_PREFSRC"),
            })
        return result

    def add_route(self, dst: str, gateway: str | None = None, dev: str | None = None) -> None:
        """Add a route (dst "default" or CIDR); no-op if the same route is there. Undo: del_route."""
        kwargs = {"dst": "0.0.0.0/0" if dst == "default" else dst}
        if gateway:
            kwargs["gateway"] = gateway
        if dev:
            kwargs["oif"] = self._require(dev)
        self._call(f"adding route {dst}", self.ipr.route, "add", ok=(errno.EEXIST,), **kwargs)

    def del_route(self, dst: str, gateway: str | None = None, dev: int | None = None) -> None:
        """Delete a route (dev as an index); no-op if it is gone."""
        kwargs = {"dst": "0.0.0.0/0" if dst == "default" else dst}
        if gateway:
            kwargs["gateway"] = gateway
        if dev:
            kwargs["oif"] = dev
        self._call(f"deleting route {dst}", self.ipr.route, "del", ok=(errno.ESRCH,), **kwargs)
