"""Plain-data model of a lab: what should exist (a stage's plan) or what does (inspection).

No root, no kernel: these are frozen dataclasses that can be built, compared, drawn and
serialised anywhere. A namespace is named here by its role in the lab (`host`, `world`,
`netns0`, a custom lab's `web`); a `Lab` maps roles to kernel names (`t1-netns0`). Its kind is
what it is: host, world or container.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..errors import BadValue


@dataclass(frozen=True)
class Vxlan:
    """A VXLAN device's tunnel: VNI, UDP port, the local underlay address (the VTEP), and the
    remote VTEPs it floods to (static FDB entries 00:00:00:00:00:00 dst REMOTE; no learning)."""
    vni: int
    port: int = 4789
    local: str | None = None
    remotes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Interface:
    """A network interface inside one namespace."""
    name: str
    kind: str                                # "veth" | "bridge" | "vxlan" | "loopback" | what the kernel says
    addresses: tuple[str, ...] = ()          # CIDRs, e.g. "172.18.0.10/16", "fd00:172:18::10/64"
    mac: str | None = None
    peer: tuple[str, str] | None = None      # (namespace role, interface) at the other end of a veth
    master: str | None = None                # bridge this interface is a port of
    up: bool = True
    mtu: int | None = None                   # None: left as the kernel makes it (1500)
    vxlan: Vxlan | None = None               # a VXLAN device's tunnel


@dataclass(frozen=True)
class Route:
    """A route the lab sets (kernel-made link routes of addresses are not listed)."""
    dst: str                                 # "default" or a CIDR
    gateway: str | None = None
    dev: str | None = None


def route_text(route: Route) -> str:
    """A route as `ip route` writes it ("default via 172.18.0.1")."""
    return route.dst + (f" via {route.gateway}" if route.gateway else "") \
        + (f" dev {route.dev}" if route.dev else "")


@dataclass(frozen=True)
class Masquerade:
    """SNAT to the outgoing interface's address for `source`, except when leaving by `not_out`."""
    source: str                              # CIDR, e.g. "172.18.0.0/16"
    not_out: str | None = None               # e.g. "br0"
    namespace: str = "host"


@dataclass(frozen=True)
class PortMapping:
    """DNAT of address:port (proto) to a container's to_address:to_port."""
    address: str                             # published address, e.g. "10.0.2.15"
    port: int
    to_address: str
    to_port: int
    proto: str = "tcp"
    namespace: str = "host"


@dataclass(frozen=True)
class Filter:
    """Docker's filter table on the host's forward hook (labkit.nat.filter says its rules):
    policy DROP, a chain for the user's own rules first, replies accepted by their conntrack
    state, published ports open to what was DNATed to them, each network kept apart from the
    others. `networks`: (bridge, its CIDR) of each network; `icc` False drops traffic between
    the containers of one bridge (it needs bridge-nf-call-iptables=1 to see it)."""
    networks: tuple[tuple[str, str], ...] = (("br0", "172.18.0.0/16"),)
    icc: bool = True
    namespace: str = "host"


@dataclass(frozen=True)
class Service:
    """A background process the lab runs in a namespace (ends with the namespace)."""
    namespace: str
    argv: tuple[str, ...]
    address: str | None = None               # address:port it listens on, to wait for it
    port: int | None = None


@dataclass(frozen=True)
class Namespace:
    """A network namespace with its interfaces, static routes and the sysctls labkit sets."""
    role: str                                # its name in the lab: "host", "world", "netns0", "web", ...
    kind: str                                # "host" | "world" | "container"
    interfaces: tuple[Interface, ...] = ()
    routes: tuple[Route, ...] = ()
    sysctls: tuple[tuple[str, str], ...] = ()

    def interface(self, name: str) -> Interface | None:
        """The interface called `name`, or None."""
        return next((i for i in self.interfaces if i.name == name), None)


@dataclass(frozen=True)
class Topology:
    """A whole lab: namespaces, NAT rules and services."""
    lab: str
    stage: str | None
    namespaces: tuple[Namespace, ...] = ()
    nat: tuple[Masquerade | PortMapping | Filter, ...] = ()
    services: tuple[Service, ...] = ()
    nat_backend: str | None = None

    def namespace(self, role: str) -> Namespace | None:
        """The namespace whose role is `role` ("netns0"), or None."""
        return next((n for n in self.namespaces if n.role == role), None)

    @property
    def containers(self) -> list[Namespace]:
        """Container namespaces in index order."""
        return [n for n in self.namespaces if n.kind == "container"]

    def addresses(self) -> dict[str, tuple[str, str]]:
        """Every address (without prefix length) -> (namespace, interface) that holds it."""
        found = {}
        for ns in self.namespaces:
            for itf in ns.interfaces:
                for cidr in itf.addresses:
                    found[cidr.split("/")[0]] = (ns.role, itf.name)
        return found

    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists); `from_dict` reads it back."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Topology:
        """The Topology that `to_dict` wrote (read back from JSON too); BadValue if it is not one.

        No checks beyond the shape: `validation.check` says whether labkit can make it. A
        namespace written by labkit before its fields were renamed ({"name": "netns0", "role":
        "container"}, in journals of labs brought up then) reads as {"role": "netns0", "kind":
        "container"}, so such a lab can still be taken down."""
        try:
            return cls(data["lab"], data.get("stage"),
                       tuple(_namespace(ns) for ns in data.get("namespaces", ())),
                       tuple(_nat_entry(e) for e in data.get("nat", ())),
                       tuple(Service(s["namespace"], tuple(s["argv"]), s.get("address"), s.get("port"))
                             for s in data.get("services", ())),
                       data.get("nat_backend"))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise BadValue(f"not a topology as Topology.to_dict writes it ({type(e).__name__}: {e}): "
                           f"build one with Blueprint, or read a file with Blueprint.from_dict") from None


def _namespace(data: dict) -> Namespace:
    interfaces = tuple(Interface(i["name"], i["kind"], tuple(i.get("addresses", ())), i.get("mac"),
                                 tuple(i["peer"]) if i.get("peer") else None, i.get("master"),
                                 i.get("up", True), i.get("mtu"), _vxlan(i.get("vxlan")))
                       for i in data.get("interfaces", ()))
    routes = tuple(Route(r["dst"], r.get("gateway"), r.get("dev")) for r in data.get("routes", ()))
    sysctls = tuple((k, v) for k, v in data.get("sysctls", ()))
    if "kind" in data:
        role, kind = data["role"], data["kind"]
    else:  # written before the rename: "name" held the role, "role" the kind
        role, kind = data["name"], data["role"]
    return Namespace(role, kind, interfaces, routes, sysctls)


def _vxlan(data: dict | None) -> Vxlan | None:
    if not data:
        return None
    return Vxlan(data["vni"], data.get("port", 4789), data.get("local"), tuple(data.get("remotes", ())))


def _nat_entry(data: dict) -> Masquerade | PortMapping | Filter:
    if "networks" in data:
        return Filter(tuple(tuple(n) for n in data["networks"]), data.get("icc", True),
                      data.get("namespace", "host"))
    if "source" in data:
        return Masquerade(data["source"], data.get("not_out"), data.get("namespace", "host"))
    return PortMapping(data["address"], data["port"], data["to_address"], data["to_port"],
                       data.get("proto", "tcp"), data.get("namespace", "host"))
