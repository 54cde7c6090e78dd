"""Broken labs: a stage with one thing broken, for a person to diagnose and fix by hand.

A fault is the stage's plan with one change (a link down, an address wrong, a route, a rule
or a server left out), converged like any stage, so `down` removes it like the rest; or, for
what the plan does not model (a netfilter policy), commands run in the lab after `up`, in
the lab's own namespaces, gone with them. `labkit faults` lists them; `check` names what is
wrong, and passes again once the person has typed the fix.

A double fault breaks two layers at once: both fixes are needed. A mystery fault (`labkit up
STAGE --fault random`, `lab.up(stage, fault="random")`) is one of the stage's faults drawn by
`draw`: from a seed if given, else from the student's user name (a stable hash: a student who
starts again draws the same one, the class draws across the set). Its name is kept in the
journal only; `labkit faults --reveal` (`reveal`) names it for the instructor.
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Callable

from ..errors import BadValue, UnknownName
from ..kernel import netns
from ..model import plan, stages
from ..model.topology import Masquerade, Topology
from . import progress


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

    @property
    def backend(self) -> str | None:
        """The NAT tool it needs: iptables where it changes NAT rules (the seed's tool)."""
        return "iptables" if {"nat", "filter"} & set(self.layer.split("+")) else None


def _from(stage: str) -> tuple[str, ...]:
    return stages.later(stage)


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
    """netns0 without its IPv4 default route (an IPv6 one, in the ipv6 stages, stays)."""
    return _namespace(t, "netns0", routes=tuple(r for r in t.namespace("netns0").routes
                                                if ":" in (r.gateway or "")))


def _no_forwarding(t: Topology) -> Topology:
    host = t.namespace("host")
    return _namespace(t, "host", sysctls=tuple(
        (k, "0" if k == "net.ipv4.ip_forward" else v) for k, v in host.sysctls))


def _no_masquerade(t: Topology) -> Topology:
    return dataclasses.replace(t, nat=tuple(e for e in t.nat if not isinstance(e, Masquerade)
                                            or e.source != plan.BRIDGE_NET))   # br0's network's


def _no_server(t: Topology) -> Topology:
    return dataclasses.replace(t, services=tuple(s for s in t.services if s.namespace != "netns0"))


def _dnat(chain: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    rule = (f"-t nat -D {chain} -d {plan.HOST_ADDRESS} -p tcp -m tcp --dport 5000 -j DNAT "
            f"--to-destination {plan.container_address(0)}:5000")
    return (("host", ("iptables", *rule.split())),)


_HAIRPIN = ("host", ("iptables", *f"-t nat -D POSTROUTING -s {plan.BRIDGE_NET} -d "
                     f"{plan.container_address(0)} -o br0 -p tcp -m tcp --dport 5000 -m conntrack "
                     f"--ctstate DNAT -j MASQUERADE".split()))

# a container's link down or its address wrong leaves no way to its default route (outside on)
_BEFORE_ROUTES = ("veth", "two-veths", "bridge")

FAULTS: dict[str, Fault] = {f.name: f for f in (
    Fault("ceth-down", _BEFORE_ROUTES, "netns0 reaches nothing, and nothing reaches it", "links",
          _interface("netns0", "ceth0", up=False)),
    Fault("lo-down", _from("veth"), "in netns0, a ping of its own address 172.18.0.10 gets no "
          "answer", "links", _interface("netns0", "lo", up=False)),
    Fault("wrong-address", _BEFORE_ROUTES, "netns0 cannot reach the host", "addresses",
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
          "still reaches both (br_netfilter loaded and FORWARD's policy DROP: after Docker before "
          "27.3, or kubeadm)", "netfilter",
          after=(("host", ("sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1")),
                 ("host", ("iptables", "-P", "FORWARD", "DROP"))),
          undo=(("host", ("iptables", "-P", "FORWARD", "ACCEPT")),
                ("host", ("sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0")))),
    Fault("no-hairpin", _from("hairpin"), "netns1 cannot open http://10.0.2.15:5000/; the "
          "world and the host can", "nat", after=(_HAIRPIN,)),
)}


def _host(*lines: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple(("host", tuple(line.split())) for line in lines)


def _same_mac(t: Topology) -> Topology:
    """netns1's ceth1 given netns0's MAC (as two containers made from one image might be)."""
    return _interface("netns1", "ceth1", mac=t.namespace("netns0").interface("ceth0").mac)(t)


_STRAY = f"{plan.container_address(1)}/32 dev veth0"      # more specific than br0's /16: it wins
_WRONG_NEIGHBOUR = f"{plan.container_address(1)} lladdr 02:42:ac:12:00:99 dev br0"
_WRONG_DNAT = (f"PREROUTING -d {plan.HOST_ADDRESS} -p tcp -m tcp --dport 5000 -j DNAT "
               f"--to-destination {plan.container_address(0)}:5001")
_FORWARD_DROP = "FORWARD -o br0 -j DROP"                    # one direction: what comes back

FAULTS.update({f.name: f for f in (
    Fault("same-mac", _from("bridge"), "netns0 and netns1 do not reach each other; the host "
          "reaches one of them, not always the same one", "ethernet", _same_mac),
    Fault("stray-route", _from("bridge"), "the host and netns1 do not reach each other; netns0 "
          "reaches both", "routes", after=_host(f"ip route add {_STRAY}"),
          undo=_host(f"ip route del {_STRAY}")),
    Fault("wrong-neighbour", _from("bridge"), "the host does not reach netns1, nor netns1 the "
          "host; netns0 reaches both", "neighbours",
          after=_host(f"ip neigh replace {_WRONG_NEIGHBOUR} nud permanent"),
          undo=_host(f"ip neigh del {_WRONG_NEIGHBOUR}")),
    Fault("forward-drop", _from("outside"), "the containers' pings to the public server "
          "203.0.113.80 get no answer; the host's do, and the containers reach each other",
          "filter", after=_host(f"iptables -I {_FORWARD_DROP}"),
          undo=_host(f"iptables -D {_FORWARD_DROP}")),
    Fault("dnat-wrong-port", _from("publish"), "the world cannot open http://10.0.2.15:5000/; "
          "the host can, and netns0's server answers", "nat",
          after=_dnat("PREROUTING") + _host(f"iptables -t nat -A {_WRONG_DNAT}"),
          undo=_host(f"iptables -t nat -D {_WRONG_DNAT}")),
)})


def _double(a: str, b: str, symptom: str) -> Fault:
    """Faults `a` and `b` at once (the stages both break): each fix alone is not enough."""
    first, second = FAULTS[a], FAULTS[b]

    def change(t: Topology) -> Topology:
        for f in (first, second):
            t = f.change(t) if f.change else t
        return t
    return Fault(f"{a}+{b}", tuple(s for s in first.stages if s in second.stages), symptom,
                 f"{first.layer}+{second.layer}", change, first.after + second.after,
                 first.undo + second.undo)


FAULTS.update({f.name: f for f in (
    _double("no-forwarding", "forward-drop", "no container reaches the public server "
            "203.0.113.80; the host does"),
    _double("stray-route", "wrong-neighbour", "the host and netns1 do not reach each other; "
            "netns0 reaches both"),
    _double("server-down", "dnat-wrong-port", "nobody can open http://10.0.2.15:5000/"),
)})

# the stages after publish and outside (issue 23): Docker's filter table, and names
_ESTABLISHED = "FORWARD -o br0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
_ACCEPT_PUBLISHED = (f"DOCKER -d {plan.container_address(0)}/32 ! -i br0 -o br0 -p tcp -m tcp --dport 5000 "
                     f"-m conntrack --ctstate DNAT -j ACCEPT")
_RESOLVER_DNAT = (f"OUTPUT -d {stages.RESOLVER}/32 -p udp -m udp --dport 53 -j DNAT --to-destination "
                  f"{stages.RESOLVER}:{stages.RESOLVER_PORT}")


# ends the dnsmasq of the namespace it runs in (found by namespace identity), as a crash would
_END_RESOLVER = ("sh", "-c", 'me=$(readlink /proc/self/ns/net); for p in /proc/[0-9]*; do '
                 '[ "$(readlink $p/ns/net 2>/dev/null)" = "$me" ] && [ "$(cat $p/comm 2>/dev/null)" = '
                 'dnsmasq ] && kill "${p#/proc/}"; done; true')


FAULTS.update({f.name: f for f in (
    Fault("no-established", _from("firewall"), "the containers' pings to the public server "
          "203.0.113.80 get no answer (the request leaves, the reply is dropped); the world still "
          "opens http://10.0.2.15:5000/", "filter", after=_host(f"iptables -D {_ESTABLISHED}")),
    Fault("no-published-accept", _from("firewall"), "the world cannot open "
          "http://10.0.2.15:5000/; the host can, and the containers reach the public server",
          "filter", after=_host(f"iptables -D {_ACCEPT_PUBLISHED}")),
    Fault("forward-accept", _from("firewall"), "the world reaches netns0's own address "
          "172.18.0.10 through its route, which the firewall should refuse", "filter",
          after=_host("iptables -P FORWARD ACCEPT")),
    Fault("no-isolation", _from("isolated"), "netns0 and netns2 reach each other across the two "
          "networks", "filter", after=_host("iptables -D FORWARD -j DOCKER-ISOLATION-STAGE-1")),
    Fault("resolver-down", _from("names"), "in netns0, getent hosts netns1 finds nothing, nor "
          "public.example; netns1 finds both", "servers", after=(("netns0", _END_RESOLVER),)),
    Fault("resolv-conf-elsewhere", _from("names"), "in netns0, getent hosts netns1 finds nothing, "
          "though public.example is found; netns1 finds both", "names",
          after=(("netns0", ("sh", "-c", "echo nameserver 10.0.2.2 > /etc/resolv.conf")),)),
    Fault("no-resolver-dnat", _from("names"), "in netns0, getent hosts netns1 finds nothing; "
          "netns1 finds it", "nat", after=(("netns0", ("iptables", "-t", "nat", "-D",
                                                        *_RESOLVER_DNAT.split())),)),
)})
# lo down: the names stage's resolver cannot even bind 127.0.0.11 (up fails, nothing to diagnose)
FAULTS["lo-down"] = dataclasses.replace(FAULTS["lo-down"], stages=tuple(
    s for s in FAULTS["lo-down"].stages if not stages.includes(s, "names")))
# Docker's filter table accepts bridged traffic within br0 by its own rule (-i br0 -o br0)
FAULTS["br-netfilter-drop"] = dataclasses.replace(FAULTS["br-netfilter-drop"], stages=tuple(
    s for s in FAULTS["br-netfilter-drop"].stages if not stages.includes(s, "firewall")))

RANDOM = "random"                   # the fault name that draws one of the stage's faults


def pool(stage: str) -> list[str]:
    """The faults that break `stage` (singles and doubles), in a stable order."""
    stages.check_stage(stage)
    return [f.name for f in FAULTS.values() if stage in f.stages]


student = progress.user   # who is at the keyboard: the same name the check records carry


def draw(stage: str, seed: int | str | None = None, user: str | None = None) -> str:
    """One of `stage`'s faults: chosen by `seed` if given, else by `user` (default: `student()`),
    through a stable hash (sha256, not Python's per-process hash()): the same key draws the
    same fault in every run."""
    choices = pool(stage)
    key = f"seed {seed}" if seed is not None else f"user {user or student()}"
    digest = hashlib.sha256(f"{key}\n{stage}".encode()).digest()
    return choices[int.from_bytes(digest[:8], "big") % len(choices)]


def reveal(lab: str) -> str:
    """For the instructor: which fault lab `lab` has (from its journal), and its layer."""
    from .journal import Journal
    journal = Journal(lab)
    who = f"lab {lab or '(default)'}"
    name = journal.get("fault") if journal.exists() else None
    if not name:
        return f"{who}: no fault is set"
    f = FAULTS.get(name)
    how = "drawn at random" if journal.get("mystery") else "named"
    return (f"{who}: fault {name!r} ({how}; stage {journal.get('stage') or journal.get('goal')}; "
            f"layer {f.layer if f else '?'}): {f.symptom if f else ''}")

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


# -- beyond the seed: IPv6 (labkit.model.six) and the overlay (labkit.model.overlay) -----------------
def _no_forwarding6(t: Topology) -> Topology:
    from ..model import six
    host = t.namespace("host")
    return _namespace(t, "host", sysctls=tuple((k, "0" if k == six.FORWARDING6 else v)
                                               for k, v in host.sysctls))


def _no_return_route(t: Topology) -> Topology:
    from ..model import six
    return _namespace(t, "world", routes=tuple(r for r in t.namespace("world").routes
                                               if r.dst != six.BRIDGE_NET6))


def _no_default_route6(t: Topology) -> Topology:
    return _namespace(t, "netns0", routes=tuple(r for r in t.namespace("netns0").routes
                                                if ":" not in (r.gateway or "")))


def _mtu_1500(t: Topology) -> Topology:
    return _interface("netns1", "ceth1", mtu=1500)(_interface("netns0", "ceth0", mtu=1500)(t))


def _tunnel(host: str, **changes):
    def change(t: Topology) -> Topology:
        itf = t.namespace(host).interface("vxlan42")
        return _interface(host, "vxlan42", vxlan=dataclasses.replace(itf.vxlan, **changes))(t)
    return change


_NAT66 = ("host", tuple("ip6tables -t nat -D POSTROUTING -s fd00:172:18::/64 ! -o br0 -j MASQUERADE".split()))
_VXLAN_DROP = "INPUT -p udp -m udp --dport 4789 -j DROP"

FAULTS.update({f.name: f for f in (
    Fault("no-forwarding6", ("ipv6", "ipv6-routed"), "no container reaches the world's IPv6 "
          "server http://[2001:db8:80::80]/; over IPv4 they reach 203.0.113.80", "forwarding",
          _no_forwarding6),
    Fault("no-nat66", ("ipv6",), "the containers get no answer from http://[2001:db8:80::80]/; "
          "the host does, and IPv4 works", "nat", after=(_NAT66,)),
    Fault("no-default-route6", ("ipv6", "ipv6-routed"), "netns0 cannot reach the world over IPv6; "
          "netns1 can, and netns0 can over IPv4", "routes", _no_default_route6),
    Fault("no-return-route", ("ipv6-routed",), "netns0 gets no answer from "
          "http://[2001:db8:80::80]/ and the world cannot open http://[fd00:172:18::10]:5000/; "
          "the host reaches both", "routes", _no_return_route),
    Fault("mtu-1500", ("overlay",), "netns0 pings netns1, and gets its small page, but "
          "http://172.18.0.20:8000/big.txt (1,400 bytes) never arrives", "links", _mtu_1500),
    Fault("no-flood-entry", ("overlay",), "netns0 and netns1 do not reach each other; each host's "
          "underlay address reaches the other's", "links", _tunnel("host-a", remotes=())),
    Fault("wrong-vni", ("overlay",), "netns0 and netns1 do not reach each other, though the "
          "tunnel's UDP datagrams reach the other host", "links", _tunnel("host-b", vni=43)),
    Fault("vxlan-port-dropped", ("overlay",), "netns0 and netns1 do not reach each other; the "
          "hosts ping each other on the underlay", "filter",
          after=(("host-b", ("iptables", "-A", *_VXLAN_DROP.split())),),
          undo=(("host-b", ("iptables", "-D", *_VXLAN_DROP.split())),)),
)})
