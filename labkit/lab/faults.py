"""Broken labs: a stage with one thing broken, for a person to diagnose and fix by hand.

A fault is the stage's plan with one change (a link down, an address wrong, a route, a rule
or a server left out), converged like any stage, so `down` removes it like the rest; or, for
what the plan does not model (a netfilter policy), commands run in the lab after `up`, in
the lab's own namespaces, gone with them. `labkit faults` lists them; `check` names what is
wrong, and passes again once the person has typed the fix.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

from ..errors import BadValue, UnknownName
from ..kernel import netns
from ..model import plan, stages
from ..model.topology import Masquerade, Topology


@dataclass(frozen=True)
class Fault:
    """One broken thing: the stages it applies to (the first is its default), the symptom a
    person sees, the layer to look at, and how it is made."""
    name: str
    stages: tuple[str, ...]
    symptom: str
    layer: str
    change: Callable[[Topology], Topology] | None = None
    after: tuple[tuple[str, tuple[str, ...]], ...] = ()   # (namespace role, argv) run after up
    undo: tuple[tuple[str, tuple[str, ...]], ...] = ()    # what the next `up` runs first

    @property
    def stage(self) -> str:
        """The stage it breaks when none is named."""
        return self.stages[0]


def _from(stage: str) -> tuple[str, ...]:
    return stages.STAGES[stages.STAGES.index(stage):]


def _interface(role: str, ifname: str, **changes):
    def change(t: Topology) -> Topology:
        return _namespace(t, role, interfaces=tuple(
            dataclasses.replace(i, **changes) if i.name == ifname else i
            for i in t.namespace(role).interfaces))
    return change


def _namespace(t: Topology, role: str, **changes) -> Topology:
    return dataclasses.replace(t, namespaces=tuple(
        dataclasses.replace(n, **changes) if n.role == role else n for n in t.namespaces))


def _no_default_route(t: Topology) -> Topology:
    return _namespace(t, "netns0", routes=())


def _no_forwarding(t: Topology) -> Topology:
    host = t.namespace("host")
    return _namespace(t, "host", sysctls=tuple(
        (k, "0" if k == "net.ipv4.ip_forward" else v) for k, v in host.sysctls))


def _no_masquerade(t: Topology) -> Topology:
    return dataclasses.replace(t, nat=tuple(e for e in t.nat if not isinstance(e, Masquerade)))


def _no_server(t: Topology) -> Topology:
    return dataclasses.replace(t, services=tuple(s for s in t.services if s.namespace != "netns0"))


def _dnat(chain: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    rule = (f"-t nat -D {chain} -d {plan.HOST_ADDRESS} -p tcp -m tcp --dport 5000 -j DNAT "
            f"--to-destination {plan.container_address(0)}:5000")
    return (("host", ("iptables", *rule.split())),)


_HAIRPIN = ("host", ("iptables", *f"-t nat -D POSTROUTING -s {plan.BRIDGE_NET} -d "
                     f"{plan.container_address(0)} -o br0 -p tcp -m tcp --dport 5000 -m conntrack "
                     f"--ctstate DNAT -j MASQUERADE".split()))

FAULTS: dict[str, Fault] = {f.name: f for f in (
    Fault("ceth-down", _from("veth"), "netns0 reaches nothing, and nothing reaches it", "links",
          _interface("netns0", "ceth0", up=False)),
    Fault("lo-down", _from("veth"), "in netns0, a ping of its own address 172.18.0.10 gets no "
          "answer", "links", _interface("netns0", "lo", up=False)),
    Fault("wrong-address", _from("veth"), "netns0 cannot reach the host", "addresses",
          _interface("netns0", "ceth0", addresses=("172.19.0.10/16",))),
    Fault("port-not-on-bridge", _from("bridge"), "netns1 reaches nothing; netns0 still reaches "
          "the host", "links", _interface("host", "veth1", master=None)),
    Fault("bridge-down", _from("bridge"), "no container reaches the host or the other container",
          "links", _interface("host", "br0", up=False)),
    Fault("no-default-route", _from("outside"), "netns0 cannot reach the public server "
          "203.0.113.80; netns1 can", "routes", _no_default_route),
    Fault("no-forwarding", _from("outside"), "no container reaches the public server "
          "203.0.113.80; the host does", "forwarding", _no_forwarding),
    Fault("no-masquerade", _from("outside"), "the containers' pings to the public server "
          "203.0.113.80 get no answer; the host's do", "nat", _no_masquerade),
    Fault("no-prerouting-dnat", _from("publish"), "the world cannot open http://10.0.2.15:5000/; "
          "the host can", "nat", after=_dnat("PREROUTING")),
    Fault("no-output-dnat", _from("publish"), "the host cannot open http://10.0.2.15:5000/; the "
          "world can", "nat", after=_dnat("OUTPUT")),
    Fault("server-down", _from("publish"), "nobody can open http://10.0.2.15:5000/", "servers",
          _no_server),
    Fault("br-netfilter-drop", _from("bridge"), "netns0 cannot reach netns1 (and back); the host "
          "still reaches both (what happens on a machine after Docker is installed)", "netfilter",
          after=(("host", ("sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1")),
                 ("host", ("iptables", "-P", "FORWARD", "DROP"))),
          undo=(("host", ("iptables", "-P", "FORWARD", "ACCEPT")),
                ("host", ("sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0")))),
    Fault("no-hairpin", _from("hairpin"), "netns1 cannot open http://10.0.2.15:5000/; the "
          "world and the host can", "nat", after=(_HAIRPIN,)),
)}


def fault(name: str, stage: str | None = None) -> Fault:
    """The fault called `name`, checked against `stage` (UnknownName / BadValue name the choices)."""
    if name not in FAULTS:
        raise UnknownName(f"unknown fault {name!r}: choose one of {', '.join(FAULTS)} "
                          f"(labkit faults lists them)")
    f = FAULTS[name]
    if stage is not None:
        stages.check_stage(stage)
        if stage not in f.stages:
            raise BadValue(f"fault {name!r} does not apply to stage {stage!r}: it breaks "
                           f"{', '.join(f.stages)}")
    return f


def broken(topology: Topology, name: str) -> Topology:
    """`topology` (a stage's plan) with fault `name` in it (its commands run after `up`)."""
    f = fault(name, topology.stage)
    return f.change(topology) if f.change else topology


def undo(lab: str, name: str | None) -> None:
    """Undo what fault `name` did beyond the plan (before the lab converges to another plan);
    namespaces already gone are skipped."""
    if name not in FAULTS:
        return
    for role, argv in FAULTS[name].undo:
        kernel = plan.namespace_name(lab, role)
        if netns.exists(kernel):
            netns.run(kernel, list(argv), check=False)


def listing() -> list[str]:
    """One line per fault: name, stages, symptom (what `labkit faults` prints)."""
    width = max(len(n) for n in FAULTS)
    return [f"{f.name:<{width}}  {f.stage:<9} {f.symptom}" for f in FAULTS.values()]
