"""Checks of a planned lab before anything is made: each failure is a LabkitError that names the
problem and the fix.

`check(topology)` checks a whole Topology: names (the lab's prefix counts towards the kernel's
15 characters), kinds, each address used once, veth peers that point back at each other,
masters that are bridges of the same namespace, routes the namespace can reach, sysctls, NAT
(only in the namespace named "host" for now) and servers. The small checks above it are what
`Blueprint` runs at each call, so that a mistake shows at the line that made it.
"""
from __future__ import annotations

import functools
import ipaddress
import re

from . import plan
from ..errors import BadAddress, BadName, BadValue, UnknownName
from .topology import Filter, Masquerade, PortMapping, Topology, route_text

NAMESPACE_KINDS = ("host", "world", "container")
INTERFACE_KINDS = ("veth", "bridge", "loopback", "vxlan")
PORT_KINDS = ("veth", "vxlan")  # what can be a bridge's port
PROTOCOLS = ("tcp", "udp")
NAT_NAMESPACE = "host"  # where labkit.nat puts a lab's NAT rules
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_TITLE_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,39}")
_SYSCTL_RE = re.compile(r"net(\.[A-Za-z0-9_-]+)+")


def check_title(name) -> str:
    """Return `name` if it can name a topology (what `status` shows as its stage), else BadName."""
    if not isinstance(name, str) or not _TITLE_RE.fullmatch(name):
        raise BadName(f"topology name {name!r} is not valid: use 1 to 40 characters a-z, 0-9, "
                      f"'.', '_' and '-', starting with a letter or digit (e.g. two-networks)")
    return name


def check_name(name, what: str = "interface") -> str:
    """Return `name` if it can name a namespace or interface (at most 15 characters, letters,
    digits, '-', '_', '.'), else BadName."""
    if isinstance(name, str) and len(name) <= plan.IFNAMSIZ and _NAME_RE.fullmatch(name):
        return name
    plan.check_kernel_name(name, what)
    if not _NAME_RE.fullmatch(name):
        raise BadName(f"{what} name {name!r} is not valid: use letters, digits, '-', '_' and '.', "
                      f"starting with a letter or digit")
    return name


def kernel_name(lab: str, name: str) -> str:
    """Kernel name of namespace `name` in lab `lab`; BadName, saying how short to make it, if
    the lab's prefix takes it over the kernel's 15 characters."""
    full = f"{lab}-{name}" if lab else name
    if len(full) > plan.IFNAMSIZ:
        room = plan.IFNAMSIZ - len(full) + len(name)
        raise BadName(f"namespace {name!r} becomes {full!r} in lab {lab!r}: {len(full)} characters, "
                      f"and the kernel allows at most {plan.IFNAMSIZ}: shorten the namespace name "
                      f"to {room} characters, or use a shorter lab name")
    return plan.namespace_name(lab, name)


def check_kind(kind) -> str:
    """Return `kind` if it is a namespace's kind (host, world or container), else BadValue."""
    if kind not in NAMESPACE_KINDS:
        raise BadValue(f"namespace kind {kind!r} is not known: use one of {', '.join(NAMESPACE_KINDS)}")
    return kind


def check_address(cidr, where: str = "") -> str:
    """An interface address with prefix length, normalised ("172.18.0.2/16"); BadAddress for
    anything an interface should not hold (loopback, network or broadcast address, ...)."""
    fast = _plain_address(cidr)  # ipaddress is slow for a 1000-container plan (benchmarks/README.md)
    return fast if fast is not None else _check_address(cidr, where)


_CIDR_RE = re.compile(r"(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})/([1-9]|[12]\d|3[0-2])")


def _plain_address(cidr) -> str | None:
    """`cidr` if it is an ordinary unicast host address with prefix length, else None."""
    m = _CIDR_RE.fullmatch(cidr) if isinstance(cidr, str) else None
    if m is None:
        return None
    a, b, c, d, prefix = map(int, m.groups())
    if max(a, b, c, d) > 255 or a in (0, 127) or a >= 224:
        return None
    host = ((b << 16) | (c << 8) | d) | (a << 24)
    mask = (1 << (32 - prefix)) - 1
    if prefix <= 30 and host & mask in (0, mask):
        return None
    return cidr


def _check_address6(cidr, where: str) -> str:
    at = f"{where}: " if where else ""
    try:
        iface = plan.parse_cidr6(cidr)
    except BadAddress as e:
        raise BadAddress(f"{at}{e}") from None
    ip = iface.ip
    if ip.is_loopback or ip.is_unspecified or ip.is_multicast or ip.is_link_local:
        raise BadAddress(f"{at}{cidr} cannot be given to an interface by labkit (loopback, "
                         f"unspecified, multicast and link-local addresses are the kernel's): "
                         f"choose a global or unique local address such as fd00:172:18::2/64")
    return str(iface)


def _check_address(cidr, where: str) -> str:
    if isinstance(cidr, str) and ":" in cidr:
        return _check_address6(cidr, where)
    at = f"{where}: " if where else ""
    try:
        iface = plan.parse_cidr(cidr)
    except BadAddress as e:
        raise BadAddress(f"{at}{e}") from None
    ip, net = iface.ip, iface.network
    if ip.is_loopback:
        raise BadAddress(f"{at}{cidr} is a loopback address (127.0.0.0/8 is lo's own in every "
                         f"namespace): choose an address outside 127.0.0.0/8")
    if ip.is_unspecified or ip.is_multicast or ip == ipaddress.IPv4Address("255.255.255.255"):
        raise BadAddress(f"{at}{cidr} cannot be an interface's address: choose a unicast address "
                         f"such as 172.18.0.2/16")
    if net.prefixlen <= 30 and ip in (net.network_address, net.broadcast_address):
        which = "network" if ip == net.network_address else "broadcast"
        raise BadAddress(f"{at}{cidr} is the {which} address of {net}: give the interface a host "
                         f"address such as {net.network_address + 1}/{net.prefixlen}")
    return str(iface)


@functools.lru_cache(maxsize=256)
def _interface(cidr: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    return ipaddress.ip_interface(cidr)


@functools.lru_cache(maxsize=256)
def _gateway(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return plan.parse_any_address(text)


def check_network(text, what: str) -> str:
    """A network in CIDR form without host bits ("172.18.0.0/16", "fd00:172:18::/64");
    "default" stays as it is (either family's: the gateway says which)."""
    if text == "default":
        return text
    iface = plan.parse_any_cidr(text)
    if iface.ip != iface.network.network_address:
        raise BadAddress(f"{what} {text} has host bits set: write the network, {iface.network}")
    return "default" if iface.network.prefixlen == 0 else str(iface.network)


def check_port(port, what: str = "port") -> int:
    """Return `port` if it is a whole number from 1 to 65535, else BadValue."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise BadValue(f"{what} {port!r} is out of range: use a whole number from 1 to 65535")
    return port


def check_sysctl(key, value) -> tuple[str, str]:
    """(key, value as text) for a network namespace's sysctl ("net.ipv4.ip_forward", 1)."""
    if not isinstance(key, str) or not _SYSCTL_RE.fullmatch(key):
        raise BadName(f"sysctl {key!r} is not a network namespace's: write a dotted net.* key "
                      f"such as net.ipv4.ip_forward")
    if isinstance(value, bool) or not isinstance(value, (str, int)) \
            or not str(value) or any(c.isspace() for c in str(value)):
        raise BadValue(f"sysctl {key} = {value!r}: give the value as text or a whole number, "
                       f"e.g. \"1\"")
    return key, str(value)


def check(topology: Topology) -> Topology:
    """Return `topology` if labkit can make it, else the LabkitError of its first problem."""
    lab = plan.check_lab_name(topology.lab)
    by_name: dict[str, dict] = {}
    holders: dict[str, str] = {}  # address -> "ns:interface"
    for ns in topology.namespaces:
        check_name(ns.role, "namespace")
        if ns.role in by_name:
            raise BadName(f"namespace {ns.role!r} is declared twice: give each namespace its own name")
        kernel_name(lab, ns.role)
        check_kind(ns.kind)
        by_name[ns.role] = _interfaces(ns, holders)
    for ns in topology.namespaces:
        links = by_name[ns.role]
        for itf in ns.interfaces:
            _check_links(ns.role, itf, links, by_name)
        _check_routes(ns, links)
        keys = [check_sysctl(k, v)[0] for k, v in ns.sysctls]
        if len(set(keys)) != len(keys):
            raise BadValue(f"{ns.role}: a sysctl is set twice: keep one value per key")
    _check_nat(topology, by_name, holders)
    _check_services(topology, by_name)
    return topology


def _interfaces(ns, holders: dict[str, str]) -> dict:
    """The namespace's interfaces by name, each checked alone; records every address's holder."""
    links = {}
    for itf in ns.interfaces:
        where = f"{ns.role}:{itf.name}"
        check_name(itf.name)
        if itf.name in links:
            raise BadName(f"{ns.role} has two interfaces named {itf.name!r}: give each its own name")
        if itf.kind not in INTERFACE_KINDS or (itf.kind == "loopback") != (itf.name == "lo"):
            raise BadValue(f"{where}: kind {itf.kind!r} is not one labkit makes: a veth, a bridge, "
                           f"or lo (the loopback every namespace has)")
        for cidr in itf.addresses:
            address = check_address(cidr, where).split("/")[0]
            if address in holders:
                raise BadAddress(f"{address} is used twice, on {holders[address]} and on {where}: "
                                 f"give each interface its own address")
            holders[address] = where
        links[itf.name] = itf
    return links


def _check_links(ns: str, itf, links: dict, by_name: dict[str, dict]) -> None:
    """A veth's peer exists in another namespace and points back; a master is a bridge here."""
    where = f"{ns}:{itf.name}"
    if itf.kind != "veth" and itf.peer is not None:
        raise BadValue(f"{where} is a {itf.kind}: only a veth has a peer")
    if itf.kind == "veth":
        if not itf.peer:
            raise BadValue(f"{where} is a veth without a peer: a veth is a pair, give both ends")
        peer_ns, peer_name = itf.peer
        if peer_ns == ns:
            raise BadValue(f"{where}: both ends of the veth are in namespace {ns!r}: put the other "
                           f"end in another namespace")
        if peer_ns not in by_name:
            raise UnknownName(f"{where}: its peer's namespace {peer_ns!r} is not declared: declare "
                              f"it (namespace {peer_ns!r}) or correct the name")
        peer = by_name[peer_ns].get(peer_name)
        if peer is None or peer.kind != "veth" or tuple(peer.peer or ()) != (ns, itf.name):
            raise UnknownName(f"{where}: its peer {peer_ns}:{peer_name} is not a veth whose peer is "
                              f"{where}: declare the pair once, with both ends")
    if itf.master is not None:
        master = links.get(itf.master)
        if master is None or master.kind != "bridge":
            bridges = [i.name for i in links.values() if i.kind == "bridge"]
            raise UnknownName(f"{where}: master {itf.master!r} is not a bridge in namespace {ns!r} "
                              f"(its bridges: {', '.join(bridges) or 'none'}): declare the bridge "
                              f"there, or name one of its bridges")
        if itf.kind not in PORT_KINDS:
            raise BadValue(f"{where}: only a veth or a VXLAN device can be a bridge port here, "
                           f"not a {itf.kind}")
    if (itf.kind == "vxlan") != (itf.vxlan is not None):
        raise BadValue(f"{where}: a VXLAN device needs its tunnel (vni, local, remotes), and only "
                       f"a VXLAN device has one: declare it with Blueprint.vxlan")
    if itf.vxlan is not None:
        _check_vxlan(where, itf.vxlan, links)
    if itf.mtu is not None and (isinstance(itf.mtu, bool) or not isinstance(itf.mtu, int)
                                or not 68 <= itf.mtu <= 65535):
        raise BadValue(f"{where}: mtu {itf.mtu!r} is out of range: use a whole number from 68 "
                       f"(IPv4's least) to 65535")


def _check_vxlan(where: str, tunnel, links: dict) -> None:
    """A VNI of 24 bits, a UDP port, a local address the namespace holds, remotes that are not it."""
    if isinstance(tunnel.vni, bool) or not isinstance(tunnel.vni, int) or not 1 <= tunnel.vni < 1 << 24:
        raise BadValue(f"{where}: VNI {tunnel.vni!r} is out of range: a VXLAN network identifier "
                       f"is a whole number from 1 to {(1 << 24) - 1}")
    check_port(tunnel.port, f"{where}: VXLAN UDP port")
    own = {cidr.split("/")[0] for itf in links.values() for cidr in itf.addresses}
    if tunnel.local is not None and tunnel.local not in own:
        raise BadAddress(f"{where}: local {tunnel.local} is not an address of this namespace "
                         f"(it holds {', '.join(sorted(own)) or 'none'}): give the underlay "
                         f"address of the host the device is on")
    for remote in tunnel.remotes:
        plan.parse_address(remote)
        if remote == tunnel.local:
            raise BadAddress(f"{where}: remote {remote} is the device's own local address: "
                             f"flood to the other hosts' underlay addresses")


def _check_routes(ns, links: dict) -> None:
    """Each route: a dst once, via an address on a link of the namespace, or a dev it has."""
    networks = {}
    for itf in links.values():
        for cidr in itf.addresses:
            iface = _interface(cidr)
            networks.setdefault(str(iface.network), []).append((iface, itf.name))
    seen = set()
    for route in ns.routes:
        text = f"{ns.role}: route {route_text(route)}"
        dst = check_network(route.dst, "route destination")
        if dst != route.dst:
            raise BadAddress(f"{text}: write the destination as {dst}")
        family = 6 if ":" in (route.gateway or "") + (dst if dst != "default" else "") else 4
        if (family, dst) in seen:
            raise BadValue(f"{text}: {ns.role} has a route to {dst} already: keep one")
        seen.add((family, dst))
        if dst in networks and dst != "default":
            iface, name = networks[dst][0]
            raise BadValue(f"{text}: the kernel makes that route itself, from {iface} on {name}: "
                           f"leave it out")
        if (route.gateway is None) == (route.dev is None):
            raise BadValue(f"{text}: give either via (a gateway address) or dev (an interface), "
                           f"one of them")
        if route.dev is not None and route.dev not in links:
            raise UnknownName(f"{text}: {ns.role} has no interface {route.dev!r}: name one of "
                              f"{', '.join(links)}")
        if route.gateway is not None and dst != "default" and \
                (":" in dst) != (":" in route.gateway):
            raise BadAddress(f"{text}: the gateway {route.gateway} is not of the destination's "
                             f"family (IPv{6 if ':' in dst else 4}): choose a gateway of that family")
        if route.gateway is not None:
            via = _gateway(route.gateway)
            on_link = [name for nets in networks.values() for iface, name in nets
                       if iface.version == via.version and via in iface.network and via != iface.ip]
            if not on_link:
                raise BadAddress(f"{text}: no interface of {ns.role} has an address in a network "
                                 f"that holds {via}, so the kernel cannot reach the gateway: add "
                                 f"such an address, or choose a gateway on one of its networks")


def _check_nat(topology: Topology, by_name: dict[str, dict], holders: dict[str, str]) -> None:
    """NAT entries: in the namespace named "host" (all labkit.nat can do for now), well formed."""
    published = set()
    for entry in topology.nat:
        if isinstance(entry, Filter) and entry.namespace == NAT_NAMESPACE and NAT_NAMESPACE in by_name:
            continue                         # checked by labkit.nat.filter.check_filter
        if not isinstance(entry, (Masquerade, PortMapping)):
            raise BadValue(f"{entry!r} is not a NAT entry (a masquerade or a publish)")
        if entry.namespace != NAT_NAMESPACE or NAT_NAMESPACE not in by_name:
            raise BadValue(f"NAT ({_nat_text(entry)}) in namespace {entry.namespace!r}: labkit puts "
                           f"NAT only in the namespace named {NAT_NAMESPACE!r} for now: name the "
                           f"namespace that does NAT {NAT_NAMESPACE!r}")
        host = by_name[NAT_NAMESPACE]
        if isinstance(entry, Masquerade):
            source = check_network(entry.source, "masquerade source")
            if source == "default" or source != entry.source:
                raise BadAddress(f"masquerade source {entry.source!r}: write a network such as "
                                 f"{plan.BRIDGE_NET}")
            if entry.not_out is not None and entry.not_out not in host:
                raise UnknownName(f"masquerade not_out {entry.not_out!r}: {NAT_NAMESPACE} has no such "
                                  f"interface: name one of {', '.join(host)}")
            continue
        check_port(entry.port)
        check_port(entry.to_port, "target port")
        if entry.proto not in PROTOCOLS:
            raise BadValue(f"publish protocol {entry.proto!r}: use tcp or udp")
        address = str(plan.parse_address(entry.address))
        if address != "127.0.0.1" and not holders.get(address, "").startswith(f"{NAT_NAMESPACE}:"):
            raise BadAddress(f"publish on {address}: it is not an address of {NAT_NAMESPACE!r}: "
                             f"publish on one of its addresses, or on 127.0.0.1")
        target = str(plan.parse_address(entry.to_address))
        if target not in holders:
            raise BadAddress(f"publish to {target}: no interface of the lab holds that address: "
                             f"name a container's address")
        key = (address, entry.port, entry.proto)
        if key in published:
            raise BadValue(f"{address}:{entry.port}/{entry.proto} is published twice: keep one")
        published.add(key)


def _nat_text(entry) -> str:
    if isinstance(entry, Masquerade):
        return f"masquerade {entry.source}"
    return f"publish {entry.address}:{entry.port}"


def _check_services(topology: Topology, by_name: dict[str, dict]) -> None:
    """Servers: in a declared namespace, on one of its addresses, one per port."""
    seen = set()
    for service in topology.services:
        if service.namespace not in by_name:
            raise UnknownName(f"server in namespace {service.namespace!r}: it is not declared: "
                              f"declare it, or correct the name")
        if service.address is None or service.port is None:
            continue
        check_port(service.port)
        address = str(plan.parse_any_address(service.address))
        own = {cidr.split("/")[0] for itf in by_name[service.namespace].values()
               for cidr in itf.addresses}
        if address not in own | {"0.0.0.0", "::1", "::"} and not address.startswith("127."):  # lo holds 127/8
            raise BadAddress(f"server on {address}:{service.port}: {service.namespace} does not hold "
                             f"{address}: serve on one of its addresses "
                             f"({', '.join(sorted(own)) or 'it has none'}), or one of lo's 127.0.0.0/8")
        family = 6 if ":" in address else 4   # an IPv4 and an IPv6 server may share a port
        if (service.namespace, service.port, family) in seen:
            raise BadValue(f"two servers on port {service.port} in {service.namespace}: give each "
                           f"its own port")
        seen.add((service.namespace, service.port, family))
