"""The stages of the demo as plain data: what each one's lab looks like (no root needed).

Each stage is a whole state, not a step: `up STAGE` converges the kernel to `build(STAGE)`
from whatever is there. The seed's order: veth, two-veths, bridge, outside, publish; then
hairpin (publishing on the host's 127.0.0.1 and a container reaching its own published port);
ipv6 (from publish: dual stack, NAT66) and ipv6-routed (from ipv6: Docker's routed gateway
mode); overlay (a lab of its own shape: two hosts joined by VXLAN, labkit.model.overlay).
Each is written with the public builder (`blueprint(stage)`), as a lab of one's own would be.
"""
from __future__ import annotations

from . import plan
from ..errors import BadValue, UnknownName
from .blueprint import Blueprint
from .topology import Topology

STAGES = ("veth", "two-veths", "bridge", "outside", "publish", "hairpin", "firewall", "isolated", "names",
          "ipv6", "ipv6-routed", "overlay")
# the stage each one is built from (the seed's stages form a line; later chapters branch off it)
PREVIOUS = {"two-veths": "veth", "bridge": "two-veths", "outside": "bridge", "publish": "outside",
            "hairpin": "publish", "ipv6": "publish", "ipv6-routed": "ipv6"}
PREVIOUS.update({"firewall": "publish", "isolated": "firewall", "names": "outside"})
# overlay has none: it is a lab of another shape (two hosts on an underlay), started from its
# own beginning (the world's underlay and two empty hosts: labkit.lab.practice.before)
DEFAULT_CONTAINERS = {"veth": 1}
DEFAULT_CONTAINERS.update({"isolated": 3})   # netns2 on br1: the second network
# the `isolated` stage's second network (Docker's second user-defined network)
SECOND_BRIDGE, SECOND_NET, SECOND_GATEWAY, SECOND_CONTAINER = "br1", "172.19.0.0/16", "172.19.0.1", 2
SECOND_ADDRESS = "172.19.0.10"
# the `names` stage: each container's resolver on 127.0.0.11 (Docker's address), at a port of
# its own that nat rules in the container send port 53 to; the world's DNS server on 10.0.2.2
RESOLVER, RESOLVER_PORT = "127.0.0.11", 10053
WORLD_DNS = plan.WORLD_ADDRESS
PUBLIC_NAME = "public.example"
PUBLISHED_PORT = 5000
IPV6_OFF = plan.IPV6_OFF
NAMESPACE_SYSCTLS = plan.NAMESPACE_SYSCTLS     # every lab namespace, set when it is created
SYSCTLS_TOUCHED = ("net.ipv4.ip_forward", "net.ipv6.conf.all.disable_ipv6",
                   "net.ipv6.conf.default.disable_ipv6", "net.ipv4.conf.all.rp_filter",
                   "net.ipv4.conf.default.rp_filter")

DESCRIPTIONS = {
    "veth": "netns0 joined to the host by a veth pair (veth0 <-> ceth0)",
    "two-veths": "a second container on its own veth: two host routes for one /16 conflict",
    "bridge": "both containers' veths enslaved to br0, which holds 172.18.0.1/16",
    "outside": "default routes, ip_forward and MASQUERADE: containers reach the world",
    "publish": "an HTTP server in netns0 published on 10.0.2.15:5000 by DNAT",
    "hairpin": "publishing on 127.0.0.1 and a container reaching its own published port",
    "firewall": "Docker's filter table: FORWARD policy DROP, replies by conntrack state, the published port open",
    "isolated": "a second network (br1, netns2) kept apart from the first; both reach the world",
    "names": "container names resolved by a resolver at 127.0.0.11 in each container; the rest forwarded",
    "ipv6": "dual stack: fd00:172:18::/64 on br0, NAT66 out of 2001:db8:2::15, publishing on "
            "[2001:db8:2::15]:5000",
    "ipv6-routed": "IPv6 without NAT: the world routes fd00:172:18::/64 via the host, which "
                   "lets in only the published port",
    "overlay": "two hosts, one network: netns0 on host-a and netns1 on host-b joined by "
               "VXLAN (VNI 42, UDP 4789) over an underlay",
}


BEFORE = "before-"


def before_name(stage: str) -> str:
    """The stage name of where a practice of `stage` starts ("before-veth"), when that is no
    stage of its own (labkit.lab.practice)."""
    return BEFORE + stage


def practised(name: str) -> str:
    """The stage a "before-STAGE" name is the start of ("" for any other name)."""
    return name[len(BEFORE):] if name.startswith(BEFORE) else ""


def check_stage(stage: str) -> str:
    """Return `stage` if it is known, else raise UnknownName listing the stages."""
    if stage not in STAGES:
        raise UnknownName(f"unknown stage {stage!r}: choose one of {', '.join(STAGES)}")
    return stage


def previous(stage: str) -> str | None:
    """The stage `stage` is built from (None for the first)."""
    return PREVIOUS.get(check_stage(stage))


def lineage(stage: str) -> tuple[str, ...]:
    """The stages from the first to `stage` itself, each built from the one before."""
    line = [check_stage(stage)]
    while line[-1] in PREVIOUS:
        line.append(PREVIOUS[line[-1]])
    return tuple(reversed(line))


def includes(stage: str, earlier: str) -> bool:
    """Whether `stage` has everything `earlier` has (it is `earlier` or built from it)."""
    return earlier in lineage(stage)


def later(stage: str) -> tuple[str, ...]:
    """`stage` and every stage built from it, in course order."""
    return tuple(s for s in STAGES if includes(s, check_stage(stage)))


def default_containers(stage: str) -> int:
    """How many containers `stage` has when the caller does not say."""
    return DEFAULT_CONTAINERS.get(stage, 2)


def build(stage: str, lab: str = "", containers: int | None = None) -> Topology:
    """The Topology of `stage` for lab `lab` with `containers` containers (stage default if None)."""
    check_stage(stage)
    plan.check_lab_name(lab)
    return blueprint(stage, containers).build(lab)


def blueprint(stage: str, containers: int | None = None) -> Blueprint:
    """`stage` written with the builder (a start for a lab of one's own: `topology_file.dump`)."""
    check_stage(stage)
    n = plan.check_containers(default_containers(stage) if containers is None else containers)
    if stage == "overlay":
        from . import overlay
        bp = Blueprint(stage)
        overlay.blueprint(bp)
        return bp
    second = includes(stage, "isolated")
    if second and n <= SECOND_CONTAINER:
        raise BadValue(f"stage {stage!r} has netns{SECOND_CONTAINER} on {SECOND_BRIDGE}: give at "
                       f"least {SECOND_CONTAINER + 1} containers")
    bridged, routed = includes(stage, "bridge"), includes(stage, "outside")
    prefix = plan.BRIDGE_NET.split("/")[1]
    bp = Blueprint(stage)
    bp.namespace("host", "host").namespace("world", "world")
    for k in range(n):
        bp.namespace(plan.container(k))
    uplink = f"/{plan.UPLINK_PREFIX}"
    bp.veth(f"host:{plan.HOST_UPLINK}", f"world:{plan.WORLD_UPLINK}", address=plan.HOST_ADDRESS + uplink,
            peer_address=plan.WORLD_ADDRESS + uplink)
    bp.address("world", "lo", f"{plan.PUBLIC_SERVER}/32")
    for k in range(n):
        if second and k == SECOND_CONTAINER:
            bp.veth(f"host:veth{k}", f"{plan.container(k)}:ceth{k}", master=SECOND_BRIDGE,
                    peer_address=f"{SECOND_ADDRESS}/{prefix}")
            continue
        bp.veth(f"host:veth{k}", f"{plan.container(k)}:ceth{k}",
                address=None if bridged else f"{plan.host_veth_address(k)}/{prefix}",
                master="br0" if bridged else None,
                peer_address=f"{plan.container_address(k)}/{prefix}")
    if bridged:
        bp.bridge("host", "br0", f"{plan.BRIDGE_ADDRESS}/{prefix}")
    if second:
        bp.bridge("host", SECOND_BRIDGE, f"{SECOND_GATEWAY}/{prefix}")
    bp.route("host", "default", via=plan.WORLD_ADDRESS)
    for k in range(n) if routed else ():
        bp.route(plan.container(k), "default",
                 via=SECOND_GATEWAY if second and k == SECOND_CONTAINER else plan.BRIDGE_ADDRESS)
    # set in every stage, so going back from `outside` turns forwarding off again
    bp.sysctl("host", "net.ipv4.ip_forward", "1" if routed else "0")
    if routed:
        bp.masquerade(plan.BRIDGE_NET, not_out="br0")
        bp.server("world", plan.PUBLIC_SERVER, 80, kind="whoami")
    if includes(stage, "publish"):
        target = plan.container_address(0)
        bp.publish(plan.HOST_ADDRESS, PUBLISHED_PORT, target)
        bp.server(plan.container(0), target, PUBLISHED_PORT)
    if includes(stage, "hairpin"):
        bp.publish("127.0.0.1", PUBLISHED_PORT, plan.container_address(0))
    if second:
        bp.masquerade(SECOND_NET, not_out=SECOND_BRIDGE)
    if includes(stage, "firewall"):
        # the world routes the containers' network to the host, as a neighbour could
        bp.route("world", plan.BRIDGE_NET, via=plan.HOST_ADDRESS)
        bp.firewall([("br0", plan.BRIDGE_NET)] + ([(SECOND_BRIDGE, SECOND_NET)] if second else []))
    if includes(stage, "names"):
        bp.dns("world", WORLD_DNS, 53, records=[(PUBLIC_NAME, plan.PUBLIC_SERVER)])
        records = [(plan.container(k), plan.container_address(k)) for k in range(n)]
        for k in range(n):
            bp.dns(plan.container(k), RESOLVER, RESOLVER_PORT, records=records, upstream=WORLD_DNS)
    if includes(stage, "ipv6"):
        from . import six
        six.extend(bp, n, routed=includes(stage, "ipv6-routed"))
    return bp
