"""Two hosts, one network (the `overlay` stage): the addressing scheme, written once.

    world    br-under, a bridge joining the hosts' uplinks: the underlay (a LAN between hosts)
    host-a   eth0 10.0.3.1/24 (peer world:under-a); br0; vxlan42 (VNI 42, UDP 4789, local 10.0.3.1,
             flooding to 10.0.3.2); veth0 <-> netns0:ceth0
    host-b   eth0 10.0.3.2/24 (peer world:under-b); br0; vxlan42 (local 10.0.3.2, flooding to
             10.0.3.1); veth1 <-> netns1:ceth1
    netns0   ceth0 172.18.0.10/16, MTU 1450 (on host-a)
    netns1   ceth1 172.18.0.20/16, MTU 1450 (on host-b)

The containers share one /16 across two hosts: a frame from netns0 to netns1 crosses host-a's
br0, enters vxlan42, leaves host-a inside a UDP datagram (outer IPv4 10.0.3.1 -> 10.0.3.2, UDP
port 4789, an 8-byte VXLAN header carrying VNI 42) and comes out of host-b's vxlan42 onto its
br0. Inside the underlay's 1500-byte MTU the encapsulation takes 50 bytes (outer IPv4 20, UDP 8,
VXLAN 8, and the inner frame's own Ethernet header 14): vxlan42 and the containers have MTU
1450, as flannel's vxlan backend sets them. A bridge drops in silence a frame larger than the
port it must leave by, so a container left at 1500 sends full-size segments that never arrive
(when the other end also offers a 1460-byte MSS: TCP's MSS is the smaller of both ends'). The hosts' bridges hold no address: the hosts
themselves are not on the overlay (no routing, no NAT: one layer-2 segment).

No learning of remote VTEPs (`nolearning`): each host floods broadcast and unknown frames to
the other by a static FDB entry `00:00:00:00:00:00 dst OTHER`, as flannel programs them, and
the bridge learns the inner MACs behind vxlan42 like behind any port.
"""
from __future__ import annotations

from . import plan

HOSTS = ("host-a", "host-b")
UNDERLAY_NET = "10.0.3.0/24"
UNDERLAY = {"host-a": "10.0.3.1", "host-b": "10.0.3.2"}
UNDERLAY_PREFIX = 24
UPLINK = "eth0"
WORLD_PORTS = {"host-a": "under-a", "host-b": "under-b"}
WORLD_BRIDGE = "br-under"
VXLAN = "vxlan42"
VNI = 42
VXLAN_PORT = 4789
MTU = 1450
CONTAINERS = {"netns0": "host-a", "netns1": "host-b"}
BIG_BYTES = 1400                   # the body of the large HTTP response the MTU lesson sends
HTTP_PORT = 8000


def other(host: str) -> str:
    """The other host."""
    return HOSTS[1 - HOSTS.index(host)]


def blueprint(bp) -> None:
    """Fill blueprint `bp` (empty) with the overlay lab."""
    bp.namespace("world", "world")
    for host in HOSTS:
        bp.namespace(host, "host")
    for role in CONTAINERS:
        bp.namespace(role)
    bp.bridge("world", WORLD_BRIDGE)
    for host in HOSTS:
        bp.veth(f"{host}:{UPLINK}", f"world:{WORLD_PORTS[host]}",
                address=f"{UNDERLAY[host]}/{UNDERLAY_PREFIX}", peer_master=WORLD_BRIDGE)
        bp.bridge(host, "br0")
        bp.vxlan(host, VXLAN, VNI, local=UNDERLAY[host], remotes=[UNDERLAY[other(host)]],
                 port=VXLAN_PORT, master="br0")
    for role, host in CONTAINERS.items():
        k = plan.container_index(role)
        bp.veth(f"{host}:veth{k}", f"{role}:ceth{k}", master="br0",
                peer_address=f"{plan.container_address(k)}/16")
        bp.mtu(role, f"ceth{k}", MTU)
    for host in HOSTS:
        bp.mtu(host, VXLAN, MTU)
    bp.server("netns1", "0.0.0.0", HTTP_PORT)   # the scene's, serving big.txt (BIG_BYTES)


def start(target):
    """Where practising the overlay starts: the world's underlay and the two hosts on it, with
    their underlay addresses, and the containers' namespaces holding only lo (made, as a
    container runtime makes them before its network plugin wires them); no bridge, VXLAN
    device or veth; netns1's web server (on 0.0.0.0:8000, the scene's). (A shell in host-a is `ip netns exec`'s, whose `ip netns add` would not
    be seen outside it: the namespaces are there already.)"""
    import dataclasses
    kept = tuple(dataclasses.replace(ns, interfaces=tuple(
        dataclasses.replace(i, up=ns.role not in CONTAINERS) for i in ns.interfaces
        if i.kind == "loopback" or i.name == UPLINK or ns.role == "world"))   # a new namespace's lo is down
        for ns in target.namespaces)
    return dataclasses.replace(target, namespaces=kept)


def _step(where: str, command: str, does: str, seed: bool = True, nft: str = "") -> tuple:
    return (where, command, does, seed, nft)


def steps() -> dict:
    """The commands a person types to build the overlay from its start (labkit's own: the
    seed has one host), in the style of the seed's."""
    Step = _step  # noqa: N806 (seed.Step's fields, as a tuple: seed wraps them)
    out = []
    for host in HOSTS:
        role = next(r for r, h in CONTAINERS.items() if h == host)
        k = plan.container_index(role)
        veth, ceth = f"veth{k}", f"ceth{k}"

        def h(command, does):
            return Step(host, f"sudo {command}", does, False)
        out += [
            h("ip link add br0 type bridge", "the host's bridge"),
            h("ip link set br0 up", "the bridge up"),
            h(f"ip link add {VXLAN} type vxlan id {VNI} dstport {VXLAN_PORT} local {UNDERLAY[host]} "
              f"nolearning", f"the VXLAN device: VNI {VNI}, UDP {VXLAN_PORT}, this host's underlay address"),
            h(f"ip link set {VXLAN} mtu {MTU}", "room for the 50 bytes of encapsulation"),
            h(f"ip link set {VXLAN} master br0", "the tunnel becomes a port of the bridge"),
            h(f"ip link set {VXLAN} up", "the tunnel up"),
            h(f"bridge fdb append 00:00:00:00:00:00 dev {VXLAN} dst {UNDERLAY[other(host)]}",
              "flood broadcast and unknown frames to the other host"),
            h(f"ip link add {veth} type veth peer name {ceth}", "its veth pair"),
            h(f"ip link set {ceth} netns {role}", f"one end into {role}"),
            h(f"ip link set {veth} master br0", f"{veth} becomes a port of the bridge"),
            h(f"ip link set {veth} up", "the host's end up"),
            Step(role, "ip link set lo up", "the loopback interface up", False),
            Step(role, f"ip link set {ceth} mtu {MTU}", "the overlay's MTU", False),
            Step(role, f"ip link set {ceth} up", "the container's end up", False),
            Step(role, f"ip addr add {plan.container_address(k)}/16 dev {ceth}",
                 "the container's address in the one /16", False),
        ]
    return {"overlay": tuple(out)}
