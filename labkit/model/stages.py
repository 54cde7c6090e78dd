"""The stages of the demo as plain data: what each one's lab looks like (no root needed).

Each stage is a whole state, not a step: `up STAGE` converges the kernel to `build(STAGE)`
from whatever is there. The seed's order: veth, two-veths, bridge, outside, publish; then
hairpin (publishing on the host's 127.0.0.1 and a container reaching its own published port).
"""
from __future__ import annotations

from . import plan
from ..errors import UnknownName
from .topology import Interface, Masquerade, Namespace, PortMapping, Route, Service, Topology

STAGES = ("veth", "two-veths", "bridge", "outside", "publish", "hairpin")
DEFAULT_CONTAINERS = {"veth": 1}
PUBLISHED_PORT = 5000
IPV6_OFF = (("net.ipv6.conf.all.disable_ipv6", "1"), ("net.ipv6.conf.default.disable_ipv6", "1"))
SYSCTLS_TOUCHED = ("net.ipv4.ip_forward", "net.ipv6.conf.all.disable_ipv6",
                   "net.ipv6.conf.default.disable_ipv6")

DESCRIPTIONS = {
    "veth": "netns0 joined to the host by a veth pair (veth0 <-> ceth0)",
    "two-veths": "a second container on its own veth: two host routes for one /16 conflict",
    "bridge": "both containers' veths enslaved to br0, which holds 172.18.0.1/16",
    "outside": "default routes, ip_forward and MASQUERADE: containers reach the world",
    "publish": "an HTTP server in netns0 published on 10.0.2.15:5000 by DNAT",
    "hairpin": "publishing on 127.0.0.1 and a container reaching its own published port",
}


def check_stage(stage: str) -> str:
    """Return `stage` if it is known, else raise UnknownName listing the stages."""
    if stage not in STAGES:
        raise UnknownName(f"unknown stage {stage!r}: choose one of {', '.join(STAGES)}")
    return stage


def default_containers(stage: str) -> int:
    """How many containers `stage` has when the caller does not say."""
    return DEFAULT_CONTAINERS.get(stage, 2)


def _mac(ns: str, ifname: str, address: str | None) -> str:
    return plan.mac_for(address, ns, ifname)


def _uplinks() -> tuple[Namespace, Interface]:
    """The world namespace, and the host's uplink to it."""
    world_lo = Interface("lo", "loopback", (f"{plan.PUBLIC_SERVER}/32",), None)
    wan0 = Interface(plan.WORLD_UPLINK, "veth", (f"{plan.WORLD_ADDRESS}/{plan.UPLINK_PREFIX}",),
                     _mac("world", plan.WORLD_UPLINK, plan.WORLD_ADDRESS),
                     peer=("host", plan.HOST_UPLINK))
    world = Namespace("world", "world", (world_lo, wan0), (), IPV6_OFF)
    ens18 = Interface(plan.HOST_UPLINK, "veth", (f"{plan.HOST_ADDRESS}/{plan.UPLINK_PREFIX}",),
                      _mac("host", plan.HOST_UPLINK, plan.HOST_ADDRESS),
                      peer=("world", plan.WORLD_UPLINK))
    return world, ens18


def build(stage: str, lab: str = "", containers: int | None = None) -> Topology:
    """The Topology of `stage` for lab `lab` with `containers` containers (stage default if None)."""
    check_stage(stage)
    plan.check_lab_name(lab)
    n = plan.check_containers(default_containers(stage) if containers is None else containers)
    bridged = STAGES.index(stage) >= STAGES.index("bridge")
    routed = STAGES.index(stage) >= STAGES.index("outside")
    prefix = int(plan.BRIDGE_NET.split("/")[1])
    world, ens18 = _uplinks()
    host_ifs = [Interface("lo", "loopback"), ens18]
    namespaces = []
    for k in range(n):
        role, veth, ceth = plan.container(k), f"veth{k}", f"ceth{k}"
        plan.check_kernel_name(plan.namespace_name(lab, role), "namespace")
        addr = plan.container_address(k)
        host_addr = None if bridged else plan.host_veth_address(k)
        host_ifs.append(Interface(
            veth, "veth", (f"{host_addr}/{prefix}",) if host_addr else (),
            _mac("host", veth, host_addr), peer=(role, ceth), master="br0" if bridged else None))
        routes = (Route("default", plan.BRIDGE_ADDRESS),) if routed else ()
        namespaces.append(Namespace(role, "container", (
            Interface("lo", "loopback"),
            Interface(ceth, "veth", (f"{addr}/{prefix}",), _mac(role, ceth, addr), peer=("host", veth)),
        ), routes, IPV6_OFF))
    if bridged:
        host_ifs.append(Interface("br0", "bridge", (f"{plan.BRIDGE_ADDRESS}/{prefix}",),
                                  _mac("host", "br0", plan.BRIDGE_ADDRESS)))
    # listed in every stage, so going back from `outside` turns forwarding off again
    host_sysctls = IPV6_OFF + (("net.ipv4.ip_forward", "1" if routed else "0"),)
    host = Namespace("host", "host", tuple(host_ifs),
                     (Route("default", plan.WORLD_ADDRESS),), host_sysctls)
    nat, services = _nat_and_services(stage)
    return Topology(lab, stage, (host, world, *namespaces), nat, services)


def _nat_and_services(stage: str) -> tuple[tuple, tuple]:
    """NAT rules and background services of `stage` (empty before `outside`)."""
    i = STAGES.index(stage)
    nat, services = [], []
    if i >= STAGES.index("outside"):
        nat.append(Masquerade(plan.BRIDGE_NET, not_out="br0"))
        services.append(Service("world", ("python3", "-m", "labkit.lab.service", "whoami",
                                          plan.PUBLIC_SERVER, "80"), plan.PUBLIC_SERVER, 80))
    if i >= STAGES.index("publish"):
        target = plan.container_address(0)
        nat.append(PortMapping(plan.HOST_ADDRESS, PUBLISHED_PORT, target, PUBLISHED_PORT))
        services.append(Service(plan.container(0),
                                ("python3", "-m", "http.server", "--bind", target, str(PUBLISHED_PORT)),
                                target, PUBLISHED_PORT))
    if i >= STAGES.index("hairpin"):
        nat.append(PortMapping("127.0.0.1", PUBLISHED_PORT, plan.container_address(0), PUBLISHED_PORT))
    return tuple(nat), tuple(services)
