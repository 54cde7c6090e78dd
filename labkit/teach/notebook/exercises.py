"""Exercises for the notebooks, each answer checked against the live lab.

A wrong answer gets a hint aimed at that mistake (the usual wrong answers are listed per
exercise); an empty one ("", "?", or the student edition's stub `...` or None) is told to
answer first, without touching the kernel.

    answer = "veth0"                              # the student edits this
    lesson.check("two-veths-route", answer, lab)  # Right: ... / Not quite (...). Hint: ...
    exercises.reveal("two-veths-route", lab)       # the answer and why, for who asks

The right answer is read from the kernel (`ip route get`, inspection, a short capture), not
stored, so a check also fails when the lab no longer behaves as the lesson says.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from ...model import plan
from ...kernel import privilege
from ...errors import UnknownName
from .trace import Trace, describe
from .traffic import watch


def route_device(lab, role: str, address: str) -> str:
    """The interface namespace `role` sends packets for `address` out of (`ip route get`)."""
    out = lab.exec(role, ["ip", "-o", "route", "get", address]).stdout
    m = re.search(r"\bdev (\S+)", out)
    return m.group(1) if m else "(no route)"


def _interface(lab, role: str, ifname: str):
    ns = lab.inspect().namespace(role)
    itf = ns.interface(ifname) if ns else None
    if itf is None:
        raise UnknownName(f"{role} has no interface {ifname} now: run the notebook's lab.up cell")
    return itf


def _address_holder(lab, role: str, network: str) -> str:
    import ipaddress
    net = ipaddress.ip_network(network)
    ns = lab.inspect().namespace(role)
    for itf in ns.interfaces if ns else ():
        if any(ipaddress.ip_interface(a).ip in net for a in itf.addresses):
            return itf.name
    return "(none)"


def _default_gateway(lab, role: str) -> str:
    ns = lab.inspect().namespace(role)
    return next((r.gateway for r in (ns.routes if ns else ()) if r.dst == "default"), "(none)")


def _seen_source(lab) -> str:
    """The source address the public server sees for netns0's ping (captured at world:wan0)."""
    trace = watch(lab, ["world:wan0"], ping=("netns0", plan.PUBLIC_SERVER), fresh=False,
                  keep=lambda p: p.proto == "icmp" and "request" in p.summary)
    return trace.paths[0].hops[0].src if trace.paths else "(nothing arrived)"


def _arrival(trace: Trace, point: str, what: str = "SYN"):
    """The hop at which the first `what` packet of `trace` entered `point`, or None."""
    for p in trace.paths:
        if describe(p.hops[0]) == what:
            for h in p.hops:
                if h.point == point and h.direction == "in":
                    return h
    return None


def _published_target(lab) -> str:
    """Address:port the container sees a published connection addressed to (captured at ceth0)."""
    url = f"http://{plan.HOST_ADDRESS}:5000/"
    hop = _arrival(watch(lab, ["netns0:ceth0"], http=("world", url), fresh=False), "netns0:ceth0")
    return f"{hop.dst}:{hop.dport}" if hop else "(nothing arrived)"


def _hairpin_source(lab) -> str:
    """Source address netns0's server sees when netns0 itself fetches 10.0.2.15:5000."""
    url = f"http://{plan.HOST_ADDRESS}:5000/"
    hop = _arrival(watch(lab, ["netns0:ceth0"], http=("netns0", url), fresh=False), "netns0:ceth0")
    return hop.src if hop else "(nothing arrived)"


@dataclass(frozen=True)
class Exercise:
    """A question whose answer is read from the live lab (`truth`), with hints for the usual
    wrong answers: `hints` maps a wrong answer (lower case) to what to look at."""
    name: str
    truth: Callable
    why: str
    hints: dict = field(default_factory=dict)
    otherwise: str = ""
    normalize: Callable[[str], str] = lambda s: s.strip().lower()


EXERCISES: dict[str, Exercise] = {}


def _exercise(*args, **kwargs) -> None:
    ex = Exercise(*args, **kwargs)
    EXERCISES[ex.name] = ex


def _mac(s: str) -> str:
    return s.strip().lower().replace("-", ":")


_exercise(
    "intro-gateway", lambda lab: _default_gateway(lab, "host"),
    "the host sends whatever has no closer route to 10.0.2.2, the world's end of the wire "
    "on ens18 (`ip route` in host: default via 10.0.2.2 dev ens18).",
    {plan.HOST_ADDRESS: "10.0.2.15 is the host's own address on ens18. The gateway is the next "
                        "hop, at the other end of that wire.",
     plan.PUBLIC_SERVER: "203.0.113.80 is a server out on the 'internet'. The host does not reach it "
                         "directly: it hands the packet to a router first. Which one?",
     "ens18": "ens18 is the interface. The question asks for the gateway's address."},
    "look at the line starting with `default` in `ip route` run in the host namespace.")
_exercise(
    "veth-route", lambda lab: route_device(lab, "host", "172.18.0.10"),
    "giving veth0 the address 172.18.0.11/16 made the kernel add the route "
    "172.18.0.0/16 dev veth0, and netns0's 172.18.0.10 lies in it.",
    {"ceth0": "ceth0 is inside netns0: the host cannot even see it. Which end of the pair "
              "stayed in the host?",
     "ens18": "ens18 leads to the world (10.0.2.0/24). Is 172.18.0.10 in that network?",
     "lo": "lo only carries the namespace's own addresses; 172.18.0.10 is not one of the host's."},
    "ask the kernel: `ip route get 172.18.0.10` in the host namespace, and read the word after dev.")
_exercise(
    "veth-mac", lambda lab: _interface(lab, "netns0", "ceth0").mac,
    "172.18.0.10 is ac.12.00.0a in hexadecimal bytes, after labkit's 02:42 prefix: labkit derives "
    "MACs from addresses so captures repeat (Docker did so once; since moby#48808 it draws them "
    "at random).",
    {"02:42:ac:12:00:10": "Close: the bytes are written in hexadecimal, and 10 in hexadecimal is 0a.",
     "02:42:ac:12:00:0b": "That is veth0's MAC (172.18.0.11): the question asks for ceth0's.",
     "02:42:172:18:0:10": "The address bytes must be written in hexadecimal: 172 is ac, 18 is 12."},
    "run `ip link show ceth0` in netns0 and read link/ether, or write 02:42 followed by the "
    "four bytes of 172.18.0.10 in hexadecimal.", _mac)
_exercise(
    "two-veths-route", lambda lab: route_device(lab, "host", "172.18.0.20"),
    "both veth0 and veth1 give the host a route for the whole 172.18.0.0/16: the same prefix, "
    "so longest-prefix match cannot choose, and the tie goes to the route found first (the "
    "older one, via veth0); packets for netns1 go down netns0's wire.",
    {"veth1": "That is where netns1 is plugged in, and where the packet ought to go. But the "
              "kernel picks a route, not a wire: `ip route` shows two routes for the same "
              "172.18.0.0/16. Which one does `ip route get 172.18.0.20` choose?",
     "ceth1": "ceth1 is inside netns1; the host only holds veth0 and veth1.",
     "ens18": "ens18 leads to the world; 172.18.0.20 is in a network the host has on its veths."},
    "run `ip route get 172.18.0.20` in the host namespace and read the word after dev.")
_exercise(
    "two-veths-reply", lambda lab: route_device(lab, "host", "172.18.0.20"),
    "the echo request from netns1 arrives on veth1, but the reply follows the host's route "
    "for 172.18.0.20, which leaves by veth0: the ARP for netns1 goes unanswered there.",
    {"veth1": "That is where the request came in, but a reply is routed like any packet: "
              "the kernel does not send it back the way the request came.",
     "ceth1": "ceth1 is inside netns1; the host sends on its own interfaces."},
    "the reply is addressed to 172.18.0.20: which interface does the host's route for that use?")
_exercise(
    "bridge-address", lambda lab: _address_holder(lab, "host", plan.BRIDGE_NET),
    "br0 holds 172.18.0.1/16; veth0 and veth1 are now plain ports of the bridge, without "
    "addresses, so there is one route: 172.18.0.0/16 dev br0.",
    {"veth0": "veth0 is a port of br0 now, and ports hold no address. See `ip -br addr` in host.",
     "veth1": "veth1 is a port of br0 now, and ports hold no address. See `ip -br addr` in host.",
     "ens18": "ens18 holds 10.0.2.15/24, in the world's network, not in 172.18.0.0/16."},
    "run `ip -br addr` in the host namespace: which interface has an address in 172.18.0.0/16?")
_exercise(
    "bridge-mac", lambda lab: _interface(lab, "netns1", "ceth1").mac,
    "a bridge forwards frames unchanged, so netns0 learns the MAC of netns1's own ceth1.",
    {plan.mac_for(plan.BRIDGE_ADDRESS): "That is br0's MAC. A bridge switches frames without "
                                        "rewriting them: whose card sent the ARP reply?",
     plan.mac_for("172.18.0.10"): "That is netns0's own MAC (ceth0). The question asks what "
                                  "netns0 learned for 172.18.0.20."},
    "run `ip neigh` in netns0 after a ping to 172.18.0.20 and read lladdr.", _mac)
_exercise(
    "outside-source", _seen_source,
    "MASQUERADE on the way out of ens18 replaced the container's source 172.18.0.10 with "
    "the host's own 10.0.2.15: the world never learns about 172.18.0.0/16.",
    {"172.18.0.10": "That is what leaves netns0. Look at the same packet at host:ens18 in the "
                    "capture: did it keep that source?",
     plan.BRIDGE_ADDRESS: "172.18.0.1 is the containers' gateway, but a router forwards packets "
                          "with their source as it is. Only NAT changes it, and to which address?"},
    "compare the source of the echo request at host:br0 and at host:ens18 in the capture above.")
_exercise(
    "outside-forwarding", lambda lab: "net.ipv4.ip_forward"
    if dict(lab.inspect().namespace("host").sysctls).get("net.ipv4.ip_forward") == "1" else "(off)",
    "net.ipv4.ip_forward=1 lets the host pass packets from one interface to another, as a "
    "router; /proc/sys/net/ipv4/ip_forward is the same switch as a file.",
    {"ip_forward": "Right idea; write the full sysctl name, net.ipv4.ip_forward.",
     "/proc/sys/net/ipv4/ip_forward": "That file is the switch; its sysctl name is written with "
                                      "dots: net.ipv4.ip_forward."},
    "the seed reads it with `cat /proc/sys/net/ipv4/ip_forward`.",
    lambda s: s.strip().lower().removeprefix("sysctl ").split("=")[0].strip())
_exercise(
    "publish-target", _published_target,
    "the DNAT rule in PREROUTING rewrote the destination 10.0.2.15:5000 to 172.18.0.10:5000 "
    "before routing, so the packet went to br0 and the server sees its own address.",
    {"10.0.2.15:5000": "That is what the client wrote. Look at the SYN at netns0:ceth0 in the "
                       "capture: which destination did it arrive with?",
     "172.18.0.1:5000": "172.18.0.1 is br0, the containers' gateway; the server listens on "
                        "172.18.0.10 only, and DNAT points the packet there.",
     "172.18.0.10": "Right address; write it with the port, ADDRESS:PORT."},
    "read the destination of the SYN at netns0:ceth0 in the capture above.")
_exercise(
    "hairpin-chain", lambda lab: "OUTPUT",
    "a connection opened on the host itself never passes PREROUTING: its first nat hook is "
    "OUTPUT, which is why the seed (and this stage) add a DNAT rule there too.",
    {"prerouting": "PREROUTING sees packets that arrive on an interface. A packet the host "
                   "itself sends starts in OUTPUT.",
     "postrouting": "POSTROUTING comes after routing; DNAT must choose the destination before "
                    "the route is looked up."},
    "which nat chain does a locally generated packet meet first?",
    lambda s: s.strip().lower().removeprefix("nat ").strip())
_exercise(
    "hairpin-source", _hairpin_source,
    "the hairpin rule masquerades a container's connection to a published port as coming from "
    "br0's 172.18.0.1, so the server's answer goes back up to the host, where both rewrites "
    "are undone before netns0's client sees it.",
    {"172.18.0.10": "That is netns0's own address, which the client wrote as the source. Look "
                    "at the SYN as it comes back in at netns0:ceth0: NAT changed the source too. "
                    "(Without that, the server would answer itself directly, and the client, "
                    "waiting for 10.0.2.15, would never recognise the answer.)",
     plan.HOST_ADDRESS: "10.0.2.15 is the destination the client wrote; the question asks for "
                        "the source the server sees."},
    "read the source of the SYN where it comes back in at netns0:ceth0 in the capture above.")


@dataclass(frozen=True)
class Verdict:
    """The outcome of an exercise check; prints as a sentence."""
    name: str
    answer: str
    right: bool
    text: str

    def __bool__(self) -> bool:
        return self.right

    def __str__(self) -> str:
        return self.text

    __repr__ = __str__


NOT_DONE = ("Not answered yet: write your answer in the cell above (in place of ...), run "
            "that cell, then this one again.")


def _exercise_named(name: str) -> Exercise:
    ex = EXERCISES.get(name)
    if ex is None:
        raise UnknownName(f"no exercise {name!r}: choose one of {', '.join(EXERCISES)}")
    return ex


def _truth(ex: Exercise, lab) -> str:
    """The right answer, read from the live lab (None: the default lab, which notebooks use)."""
    privilege.require()
    if lab is None:
        from ...lab import Lab
        lab = Lab()
    return str(ex.truth(lab))


def check(name: str, answer, lab=None) -> Verdict:
    """Check `answer` to exercise `name` against the live lab (None: the default lab): right,
    or a targeted hint. The student edition's stub (`...`) or None is "not answered yet"."""
    ex = _exercise_named(name)
    if answer is ... or answer is None:
        return Verdict(name, "", False, NOT_DONE)
    given = str(answer)
    if not given.strip() or given.strip() in ("...", "?"):
        return Verdict(name, given, False, "Not answered yet: put your answer between the quotes "
                                           "above and run the cell again.")
    truth = _truth(ex, lab)
    got = ex.normalize(given)
    if got == ex.normalize(truth):
        return Verdict(name, given, True, f"Right: {truth}. Why: {ex.why}")
    hint = ex.hints.get(got) or ex.hints.get(ex.normalize(got)) or ex.otherwise
    return Verdict(name, given, False, f"Not quite ({given.strip()!r}). Hint: {hint}")


def reveal(name: str, lab=None) -> None:
    """Print the answer to exercise `name`, read from the live lab (what `check` compares
    with), and why, for a student who asks."""
    ex = _exercise_named(name)
    print(f"The answer to {name!r}, read from the lab now: {_truth(ex, lab)}. Why: {ex.why}")
