"""Captures while traffic runs in the lab, returned as Traces (labkit.teach.notebook.trace).

`watch(lab, points, ping=... | http=...)` captures at `points` while one ping or HTTP GET runs;
`neighbour_syn(lab)` sends hand-made SYN frames from `world` to the host's MAC. Both need root
and keep every frame inside the lab's namespaces; `watch` first empties the lab's ARP caches
(unless fresh=False), so the ARP exchange shows on every run, not only the first."""
from __future__ import annotations

from typing import Callable

from ...model import plan
from ...kernel import privilege
from ...errors import BadValue
from ...capture.frames import syn_frame
from ...lab.reach import probe
from .trace import Trace, describe, distinct


def flush_neighbours(lab) -> None:
    """Forget every learned MAC address (ARP) in the lab's namespaces, so a capture that
    follows shows the ARP exchange every time, not only the first time a cell runs."""
    for role in lab.roles():
        lab.exec(role, ["ip", "neigh", "flush", "all"])


def watch(lab, points, *, ping: tuple[str, str] | None = None, http: tuple[str, str] | None = None,
          keep=None, filter: str = "arp or icmp or tcp",
          timeout: float = 0.5, fresh: bool = True) -> Trace:
    """Capture at `points` while `ping` = (from role, address) or `http` = (from role, URL) runs.

    `keep` selects the paths to show: protocol names ("icmp", ("arp", "icmp")) or a function
    of a path (default: ARP and ICMP for a ping; TCP SYN and SYN-ACK for HTTP, where NAT's
    rewrites show). `fresh` first empties the ARP caches."""
    privilege.require()
    from ...capture.live import Capture
    if (ping is None) == (http is None):
        raise BadValue("give exactly one of ping=(role, address) or http=(role, url)")
    source, target = ping or http
    lab.ns(source)
    if fresh:
        flush_neighbours(lab)
    if keep is None:
        keep = _default_keep(ping is not None)
    elif isinstance(keep, (str, tuple, list)):
        protos = {keep} if isinstance(keep, str) else set(keep)
        keep = lambda p, protos=protos: p.proto in protos
    with Capture(points, lab=lab, filter=filter) as cap:
        answered = probe(lab, source, target, timeout)
    packets = cap.packets
    paths = distinct(packets.paths(), keep)
    if http is not None:
        paths = _own_connections(paths)
    action = f"{'ping' if ping else 'HTTP GET'} from {source} to {target}"
    if target.startswith("name:"):                 # reach's name probe: getent ahostsv4 NAME
        action = f"lookup of {target[5:].split('=')[0]} in {source} (getent ahostsv4)"
    return Trace(action, "answered" if answered else "NO ANSWER",
                 tuple(p.label for p in cap.points), tuple(paths), packets)


def _own_connections(paths: list) -> list:
    """TCP paths of the connections this capture saw open (a SYN), so that a server's late
    retransmission for an older connection does not show up; other protocols as they are."""
    opened = {(h.src, h.sport) for p in paths if describe(p.hops[0]) == "SYN" for h in p.hops}
    return [p for p in paths if p.proto != "tcp" or describe(p.hops[0]) == "SYN"
            or any((h.dst, h.dport) in opened for h in p.hops)]


def _default_keep(is_ping: bool) -> Callable:
    if is_ping:
        return lambda p: p.proto in ("arp", "icmp")
    return lambda p: p.proto == "tcp" and describe(p.hops[0]) in ("SYN", "SYN-ACK")


def neighbour_syn(lab, target: str = "127.0.0.1", port: int = 5000, timeout: float = 3.0,
                  sport: int = 31001) -> Trace:
    """What a neighbour on the LAN can do: from `world`, send a TCP SYN for target:port in a
    frame addressed straight to the host's ens18 MAC (as moby#41872 describes), then a
    control SYN for 10.0.2.15:port; capture at host:ens18 and netns0:ceth0 until the control
    arrives (frames on one path keep their order). Traffic stays inside the lab.

    The SYNs leave from ports `sport` and `sport + 1`: the same ports are the same connection
    to conntrack, which keeps a DNAT it once made (for minutes) even after its rule is gone;
    other ports make a new one."""
    privilege.require()
    import socket
    from ...kernel import netns
    from ...capture.live import Capture
    probes = ((sport, target), (sport + 1, plan.HOST_ADDRESS))
    frames = [syn_frame(plan.mac_for(plan.WORLD_ADDRESS), plan.mac_for(plan.HOST_ADDRESS),
                        plan.WORLD_ADDRESS, dst, src, port, seq=src) for src, dst in probes]
    with netns.entered(lab.ns("world")):
        tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    points = ["host:ens18", "netns0:ceth0"]
    control = lambda pkts: any(p.headers.sport == sport + 1 and p.point == "netns0:ceth0"
                               for p in pkts.filter(proto="tcp"))
    with tx, Capture(points, lab=lab, filter=f"tcp port {port}") as cap:
        tx.bind((plan.WORLD_UPLINK, 0))
        for frame in frames:
            tx.send(frame)
        arrived = cap.wait(until=control, timeout=timeout)
    if not arrived:
        raise AssertionError("the control SYN to 10.0.2.15 never reached netns0: is the stage up?")
    syns = lambda p: p.proto == "tcp" and describe(p.hops[0]) == "SYN" and p.hops[0].sport in (sport, sport + 1)
    # in probe order: two frames sent one after the other may still be received out of order
    # (each send queues its frame on the CPU the sender happens to run on)
    paths = sorted(distinct(cap.packets.paths(), syns), key=lambda p: p.hops[0].sport)
    reached = any(h.point == "netns0:ceth0" and h.sport == sport for p in paths for h in p.hops)
    outcome = (f"the SYN to {target} REACHED netns0" if reached
               else f"the SYN to {target} was dropped in the host")
    action = f"SYNs from world to {target}:{port} and (control) {plan.HOST_ADDRESS}:{port}, " \
             f"sent to the host's MAC"
    return Trace(action, outcome, tuple(points), tuple(paths), cap.packets)
