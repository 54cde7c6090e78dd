"""The filter table of the `firewall` and `isolated` stages: Docker's, as rules (plain data).

A `Filter` entry (labkit.model.topology) expands, after the NAT rules, into the rules Docker
(20.10 to 27.x) puts in iptables' filter table for its bridge networks, with their names:

    filter FORWARD  policy DROP                       what no rule accepts is dropped
    -A FORWARD -j DOCKER-USER                         the user's own rules, first
    -A FORWARD -j DOCKER-ISOLATION-STAGE-1            (two networks or more)
    per network (bridge B):
    -A FORWARD -o B -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT   replies, errors
    -A FORWARD -o B -j DOCKER                         new connections in: published ports only
    -A FORWARD -i B ! -o B -j ACCEPT                  the containers' own connections out
    -A FORWARD -i B -o B -j ACCEPT                    container to container (icc; DROP: icc=false)
    -A DOCKER -d C ! -i B -o B -p tcp --dport P -m conntrack --ctstate DNAT -j ACCEPT
    -A DOCKER-ISOLATION-STAGE-1 -i B ! -o B -j DOCKER-ISOLATION-STAGE-2
    -A DOCKER-ISOLATION-STAGE-1 -j RETURN
    -A DOCKER-ISOLATION-STAGE-2 -o B -j DROP
    -A DOCKER-ISOLATION-STAGE-2 -j RETURN
    -A DOCKER-USER -j RETURN

One difference from Docker up to 27.x, whose DOCKER rule has no `--ctstate DNAT`: there, a
neighbour with a route to the containers' network reaches a published port of the
container's own address directly (moby#45610); Docker 28.0 closed that with a raw PREROUTING
drop of packets to a container's address arriving by another interface. labkit accepts only
what was DNATed to the port, so a direct route is refused by the same table. In nftables
the same rules sit in the lab's table `ip labkit` beside the NAT chains: base chain
`forward` (type filter, hook forward, priority filter, policy drop) and regular chains
`docker-user`, `docker`, `docker-isolation-stage-1` and `-2`.
"""
from __future__ import annotations

import ipaddress

from ..errors import BadAddress, BadValue
from ..model import plan
from ..model.topology import Filter, PortMapping
from .rules import EXPANDERS, Rule

USER = "DOCKER-USER"
PUBLISHED = "DOCKER"
STAGE_1, STAGE_2 = "DOCKER-ISOLATION-STAGE-1", "DOCKER-ISOLATION-STAGE-2"
REPLIES = "RELATED,ESTABLISHED"


def check_filter(entry: Filter) -> Filter:
    """`entry` if its networks are (bridge name, IPv4 network) pairs; else BadValue/BadAddress."""
    if not entry.networks or not isinstance(entry.networks, tuple):
        raise BadValue(f"{entry!r}: a filter needs its networks, e.g. (('br0', '{plan.BRIDGE_NET}'),)")
    for pair in entry.networks:
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise BadValue(f"filter network {pair!r}: write it as (bridge, network), e.g. "
                           f"('br0', '{plan.BRIDGE_NET}')")
        plan.check_kernel_name(pair[0], "bridge")
        try:
            ipaddress.IPv4Network(pair[1])
        except (ValueError, TypeError):
            raise BadAddress(f"filter network {pair[1]!r} of {pair[0]}: write it like "
                             f"{plan.BRIDGE_NET}") from None
    if not isinstance(entry.icc, bool):
        raise BadValue(f"filter icc {entry.icc!r}: True or False")
    return entry


def bridge_of(entry: Filter, address: str) -> str | None:
    """The bridge of the network that holds `address` (None: none of them)."""
    for bridge, network in entry.networks:
        if ipaddress.IPv4Address(address) in ipaddress.IPv4Network(network):
            return bridge
    return None


def filter_rules(entries) -> list[Rule]:
    """The filter table's rules for the Filter among `entries`, the published ports being the
    PortMappings among them (see the module docstring)."""
    entry = next(e for e in entries if isinstance(e, Filter))
    bridges = [b for b, _ in entry.networks]
    apart = len(bridges) > 1
    out = [Rule("filter", "FORWARD", "DROP", policy=True,
                why="the forward hook drops what no rule accepts (policy DROP)"),
           Rule("filter", "FORWARD", USER, why="the user's own rules come first (DOCKER-USER)")]
    if apart:
        out.append(Rule("filter", "FORWARD", STAGE_1, why="networks kept apart (isolation, stage 1)"))
    for b in bridges:
        out += [Rule("filter", "FORWARD", "ACCEPT", out_if=b, ctstate=REPLIES,
                     why=f"replies (and related ICMP errors) into {b}'s network"),
                Rule("filter", "FORWARD", PUBLISHED, out_if=b,
                     why=f"new connections into {b}'s network: the published ports only"),
                Rule("filter", "FORWARD", "ACCEPT", in_if=b, out_if=f"!{b}",
                     why=f"connections from {b}'s network out"),
                Rule("filter", "FORWARD", "ACCEPT" if entry.icc else "DROP", in_if=b, out_if=b,
                     why=f"between containers of {b}" + ("" if entry.icc else " (icc=false)"))]
    for e in entries:
        if isinstance(e, PortMapping) and (b := bridge_of(entry, e.to_address)):
            out.append(Rule("filter", PUBLISHED, "ACCEPT", daddr=e.to_address, in_if=f"!{b}",
                            out_if=b, proto=e.proto, dport=e.to_port, ct_dnat=True,
                            why=f"published: {e.to_address}:{e.to_port}, when DNATed to it"))
    if apart:
        out += [Rule("filter", STAGE_1, STAGE_2, in_if=b, out_if=f"!{b}",
                     why=f"leaving {b}'s network for another: stage 2") for b in bridges]
        out.append(Rule("filter", STAGE_1, "RETURN", why="the rest: back to FORWARD"))
        out += [Rule("filter", STAGE_2, "DROP", out_if=b, why=f"into {b}'s network from another")
                for b in bridges]
        out.append(Rule("filter", STAGE_2, "RETURN", why="the rest: back to FORWARD"))
    out.append(Rule("filter", USER, "RETURN", why="no rules of the user's yet: back to FORWARD"))
    return out


EXPANDERS[Filter] = (check_filter, filter_rules)
