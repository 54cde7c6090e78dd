"""Is the stage done? The live lab compared with what a stage does, in the seed's terms.

`check(lab, stage)` reads the kernel (namespaces, links, addresses, masters, link states,
routes, forwarding, listening servers) and sends real traffic between lab namespaces (the
stage's reachability). It judges what the lesson needs and accepts how a person did it: NAT
typed with iptables (either flavour) or nft, rules in any order, routes of any protocol, any
MAC, extra harmless addresses and processes. Each unmet item says what is wrong in the
seed's words; `Result.hints(1)` adds where to look (the tool that shows it), `hints(2)` the
command that fixes it. Commands are written for the lab's own names (`t1-netns0` in lab t1).
"""
from __future__ import annotations

import dataclasses
import ipaddress
import re
import time

from .. import nat
from ..errors import UnknownName
from ..kernel import privilege, sysctl
from ..model import plan, seed, stages
from ..model.topology import Interface, Namespace, Topology, route_text
from . import firewall, misplaced, reach, service, strays
from .verdict import LAYERS, Item, Result, Words


def check(lab, stage: str, containers: int | None = None) -> Result:
    """Compare lab `lab` (a Lab) with `stage`, by the kernel's state and by real traffic."""
    stages.check_stage(stage)
    privilege.require()     # it sends real traffic: without privileges it could only say "missing"
    want = stages.build(stage, lab.name, containers or _containers(lab, stage))
    live = lab.inspect()
    words = Words(lab.name)
    seen = misplaced.Survey(lab, live, words)   # where a missing thing went (read when asked)
    items = list(_state_items(want, live, words, seen))
    items += _forwarding_items(want, live, words, seen)
    items += _server_items(lab, want, words)
    mystery = bool(lab.journal.get("mystery") and lab.journal.get("fault"))
    routed = stages.includes(stage, "outside")
    rules = _host_rules(lab) if routed else []      # read once: the stage's items and strays'
    if stage == "outside":
        items.append(_masquerade_item(words, rules, seen))
    elif stage == "hairpin":
        items += _hairpin_items(lab, words, rules, seen)
    if stages.includes(stage, "ipv6"):       # beyond the seed: IPv6 (labkit.lab.dualstack)
        from . import dualstack
        items += dualstack.items(lab, stage, words)
    if stage == "overlay":                     # two hosts over VXLAN (labkit.lab.tunnel)
        from . import tunnel
        items += tunnel.items(want, live, words) + tunnel.underlay_items(lab, words)
    if stages.includes(stage, "firewall") or stages.includes(stage, "names"):
        items += firewall.items(lab, stage, want, words)
    items += strays.items(lab, stage, want, live, words, rules)
    state_ok = all(i.ok for i in items)
    # where the state is wrong the stage is not done whatever the traffic does: the probes only
    # confirm it, so each is sent once (no patience), and the state's items name the fix
    patience = reach.PATIENCE if state_ok else 0.0
    if mystery:
        traffic, symptoms = _symptoms(lab, stage, words, patience)
    else:
        traffic, symptoms = reach.items(lab, stage, words, patience), ()
    if stages.includes(stage, "ipv6") and not mystery:
        from . import dualstack
        traffic.append(dualstack.source_seen(lab, stage, words))
    if not state_ok:
        traffic = [dataclasses.replace(i, fix="") for i in traffic]
    traffic = seen.traffic(traffic, stage)
    return Result(stage, lab.name, tuple(items + traffic), symptoms, mystery)


def goals(stage: str, start: Topology, lab: str = "") -> list[str]:
    """What check will test when `stage` is built from `start`, in words and without commands:
    each state item the stage adds, then the traffic it sends (for `practice --challenge`)."""
    want, w = stages.build(stage, lab), Words(lab)

    def facts(t: Topology) -> list[str]:
        items = list(_state_items(t, t, w)) + list(_forwarding_items(t, t, w))
        return [i.what for i in sorted(items, key=lambda i: LAYERS.index(i.layer))]
    before = set(facts(start))
    said = [f for f in facts(want) if f not in before]
    said += [f"something listens on {s.address}:{s.port} in {s.namespace}" for s in want.services
             if s.namespace != "world" and s.address and s.port and s not in start.services]
    if stage == "outside":
        said.append(f"a MASQUERADE of {plan.BRIDGE_NET} in nat POSTROUTING rewrites the source of "
                    f"packets leaving {plan.HOST_UPLINK}")
    elif stage == "hairpin":
        said.append("br0 lets packets from 127.0.0.1 leave (net.ipv4.conf.br0.route_localnet)")
        said += [f"{what} is there" for _, what, *_ in _HAIRPIN_RULES]
    probes = reach.PROBES.get(stage, ())
    said += [reach.in_words(p) for p in probes if p.expect]
    refused = sum(not p.expect for p in probes)   # the lesson's predictions: not said before the run
    if refused:
        said.append(f"and {refused} probe{'s' if refused > 1 else ''} that must get no answer "
                    f"(check names {'them' if refused > 1 else 'it'} only if answered)")
    if stage == "outside":
        said.append(f"the public server sees netns0's packets coming from {plan.HOST_ADDRESS}")
    return said


def _containers(lab, stage: str) -> int:
    """How many containers to expect: the stage's default, or more if the lab has them."""
    have = [r for r in lab.roles() if plan.container_index(r) is not None]
    return max(stages.default_containers(stage), len(have))


def _state_items(want: Topology, live: Topology, w: Words, seen=None):
    """Namespaces, links (kind, peer, state, master) and addresses, in the plan's order."""
    for ns in want.namespaces:
        have = live.namespace(ns.role)
        yield Item(have is not None, f"namespace {w.ns(ns.role)} "
                   + ("exists" if have is not None else "does not exist"), "namespaces",
                   "ip netns list", f"{w.where('host')}: ip netns add {w.ns(ns.role)}")
        if have is None:
            continue
        for itf in ns.interfaces:
            yield from _link_items(ns, itf, have, live, w, seen)
    for ns in want.namespaces:
        have = live.namespace(ns.role)
        if have is None:
            continue
        for itf in ns.interfaces:
            got = have.interface(itf.name)
            if got is None:
                continue
            yield from _address_items(ns.role, itf, got, w, seen)
        for route in ns.routes:
            found = any(r.dst == route.dst and r.gateway == route.gateway for r in have.routes)
            text = route_text(route)
            item = Item(found, f"{ns.role} has " + ("a" if found else "no") + f" route {text}",
                        "routes", w.look(ns.role, "ip route"), f"{w.where(ns.role)}: ip route add {text}")
            yield seen.route(item, ns.role, route) if seen and not found else item


def _link_items(ns: Namespace, itf: Interface, have: Namespace, live: Topology, w: Words, seen=None):
    got = have.interface(itf.name)
    where = f"{itf.name} in {ns.role}" if ns.role != "host" else itf.name
    if got is None:
        item = Item(False, f"{where} does not exist", "links", w.look(ns.role, "ip link"),
                    _make_link(ns, itf, live, w))
        yield seen.link(item, ns.role, itf) if seen else item
        return
    if itf.kind == "veth" and itf.peer and ns.role == "host":
        ok = got.kind == "veth" and got.peer is not None and tuple(got.peer) == tuple(itf.peer)
        yield Item(ok, f"{where}'s other end is " + (f"{itf.peer[1]} in {itf.peer[0]}" if ok else
                   f"not {itf.peer[1]} in {itf.peer[0]}"), "links", w.look("host", "ip -d link show type veth")
                   + f" (and {w.look(itf.peer[0], 'ip link')})", _make_link(ns, itf, live, w))
    if itf.kind != "loopback" or ns.kind == "container":
        yield Item(got.up == itf.up, f"{where} is " + ("up" if got.up else "down"), "links",
                   w.look(ns.role, "ip -br link"),
                   f"{w.where(ns.role)}: ip link set {itf.name} {'up' if itf.up else 'down'}")
    if itf.kind == "veth" and ns.role == "host" and (itf.master or got.master):
        ok = got.master == itf.master
        said = (f"{itf.name} is a port of {itf.master}" if ok and itf.master else
                f"{itf.name} is not a port of {itf.master}" if itf.master else
                f"{itf.name} is a port of {got.master}, which this stage does not have")
        fix = (f"ip link set {itf.name} master {itf.master}" if itf.master
               else f"ip link set {itf.name} nomaster")
        yield Item(ok, said, "links", w.look("host", "bridge link"), f"{w.where('host')}: {fix}")


def _make_link(ns: Namespace, itf: Interface, live: Topology, w: Words) -> str:
    """The seed's commands that make a missing link."""
    home = ns.role if ns.kind == "host" else itf.peer[0] if itf.peer else "host"  # overlay: host-a
    if itf.kind == "bridge":
        return f"{w.where(home)}: ip link add {itf.name} type bridge; ip link set {itf.name} up"
    if itf.kind == "veth" and itf.peer:
        host_end, other = (itf.name, itf.peer) if ns.role == home else (itf.peer[1], (ns.role, itf.name))
        return (f"{w.where(home)}: ip link add {host_end} type veth peer name {other[1]}; "
                f"ip link set {other[1]} netns {w.ns(other[0])}")
    return ""


def _address_items(role: str, itf: Interface, got: Interface, w: Words, seen=None):
    where = f"{itf.name} in {role}" if role != "host" else itf.name
    for cidr in itf.addresses:
        ok = cidr in got.addresses
        instead = [a for a in got.addresses if a not in itf.addresses]
        said = (f"{where} holds {cidr}" if ok else f"{where} lacks {cidr}"
                + (f" (it holds {', '.join(instead)} instead)" if instead else ""))
        fix = "; ".join([f"ip addr del {a} dev {itf.name}" for a in instead if not ok]
                        + [f"ip addr add {cidr} dev {itf.name}"])
        item = Item(ok, said, "addresses", w.look(role, "ip -br addr"), f"{w.where(role)}: {fix}")
        yield seen.address(item, role, itf, cidr) if seen and not ok else item
    if itf.master:  # a bridge port holds no address: one left there is a second route
        for cidr in got.addresses:
            yield Item(False, f"{where} still holds {cidr}, but a bridge port has no address "
                       f"(its route competes with the bridge's)", "addresses",
                       w.look(role, "ip route"), f"{w.where(role)}: ip addr del {cidr} dev {itf.name}")


def _forwarding_items(want: Topology, live: Topology, w: Words, seen=None):
    """ip_forward where the stage routes (outside and later)."""
    for ns in want.namespaces:
        value = dict(ns.sysctls).get("net.ipv4.ip_forward")
        have = live.namespace(ns.role)
        if value != "1" or have is None:
            continue
        now = dict(have.sysctls).get("net.ipv4.ip_forward")
        item = Item(now == "1", f"the {ns.role} " + ("forwards packets" if now == "1" else
                    f"does not forward packets (net.ipv4.ip_forward is {now})"), "forwarding",
                    w.look(ns.role, "sysctl net.ipv4.ip_forward"),
                    f"{w.where(ns.role)}: sysctl -w net.ipv4.ip_forward=1")
        yield seen.forwarding(item, ns.role) if seen and now != "1" else item


def _server_items(lab, want: Topology, w: Words):
    """The stage's servers that a person starts (the seed's http.server), listening; one just
    started (`... &` typed, then check) is given reach.PATIENCE, shared, to open its socket."""
    deadline = time.monotonic() + reach.PATIENCE
    for s in want.services:
        if s.namespace == "world" or not (s.address and s.port):
            continue  # the world's server is part of the scene, not the student's task
        kernel = w.ns(s.namespace)
        ok = kernel in _existing(lab) and _listening(kernel, s.address, s.port, deadline)
        yield Item(ok, f"{'something' if ok else 'nothing'} listens on {s.address}:{s.port} in "
                   f"{s.namespace}", "servers", w.look(s.namespace, "ss -ltn"),
                   f"{w.where(s.namespace)}: {' '.join(s.argv)} &")


def _listening(kernel: str, address: str, port: int, deadline: float) -> bool:
    """True once something listens on address:port in namespace `kernel`, polled until `deadline`."""
    while not service.is_listening(kernel, address, port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _existing(lab) -> set[str]:
    return {w for w in (plan.namespace_name(lab.name, r) for r in lab.roles())}


_HAIRPIN_RULES = (  # (its seed step, what, table, iptables -S, nft): either tool's, typed by hand
    (2, "the OUTPUT DNAT of 127.0.0.1:5000", "nat", r"-A OUTPUT -d 127\.0\.0\.1/32 .*--dport 5000 .*DNAT",
     r"ip daddr 127\.0\.0\.1 tcp dport 5000 .*dnat"),
    (3, "the masquerade of 127.0.0.0/8 leaving by br0", "nat",
     r"-A POSTROUTING -s 127\.0\.0\.0/8 -o br0 .*MASQUERADE",
     r'ip saddr 127\.0\.0\.0/8 oifname "br0" .*masquerade'),
    (4, "the raw PREROUTING drop of 127.0.0.0/8 from the network (moby#41872)", "raw",
     r"-A PREROUTING -d 127\.0\.0\.0/8 ! -i lo .*DROP",
     r'ip daddr 127\.0\.0\.0/8 iifname != "lo" .*drop'),
)


def _hairpin_items(lab, w: Words, rules, seen=None):
    """Publishing on 127.0.0.1: route_localnet on br0, and its rules (in iptables or nft)."""
    host = w.ns("host")
    value = sysctl.read(host, "net.ipv4.conf.br0.route_localnet")
    yield Item(value == "1", "br0 " + ("lets" if value == "1" else "does not let") + " packets "
               "from 127.0.0.1 leave (net.ipv4.conf.br0.route_localnet)", "forwarding",
               w.look("host", "sysctl net.ipv4.conf.br0.route_localnet"),
               f"{w.where('host')}: sysctl -w net.ipv4.conf.br0.route_localnet=1")
    for step, what, table, iptables, nft in _HAIRPIN_RULES:
        def wanted(c, iptables=iptables, nft=nft, table=table) -> bool:
            return (c.tool == "nft" or c.table == table) and \
                bool(re.search(nft if c.tool == "nft" else iptables, c.line))
        ok = any(wanted(c) for c in rules)
        item = Item(ok, f"{what} is " + ("there" if ok else "missing"), "nat",
                    w.look("host", f"iptables -t {table} -S"),
                    f"{w.where('host')}: {seed.STEPS['hairpin'][step].command}")
        yield seen.rule(item, what, wanted, item.fix) if seen and not ok else item


def _masquerade_item(w: Words, rules, seen=None) -> Item:
    """The containers' source rewritten on the way out: a MASQUERADE (or SNAT) rule in nat
    POSTROUTING (any nft chain) for 172.18.0.0/16 or for any source, made with either tool."""
    def wanted(c) -> bool:
        return c.action in ("MASQUERADE", "SNAT") and _for_containers(c.source) \
            and (c.tool == "nft" or (c.table, c.chain) == ("nat", "POSTROUTING"))
    ok = any(wanted(c) for c in rules)
    (step,) = [s for s in seed.STEPS["outside"] if "MASQUERADE" in s.command]
    rule = f"MASQUERADE of {plan.BRIDGE_NET} in nat POSTROUTING"
    said = (f"a {rule} rewrites the source of packets leaving {plan.HOST_UPLINK}" if ok else
            f"nothing rewrites the source of packets leaving {plan.HOST_UPLINK} (no {rule})")
    item = Item(ok, said, "nat", w.look("host", "iptables -t nat -S POSTROUTING"),
                f"{w.where('host')}: {step.command}")
    return seen.rule(item, f"the MASQUERADE of {plan.BRIDGE_NET}", wanted, item.fix) \
        if seen and not ok else item


def _for_containers(source: str | None) -> bool:
    """True if a rule's `source` (None: any) is, or holds addresses of, the containers' network."""
    try:
        return source is None or ipaddress.ip_network(source, strict=False).overlaps(
            ipaddress.ip_network(plan.BRIDGE_NET))
    except ValueError:
        return False


def _host_rules(lab) -> list:
    """Every IPv4 rule in the lab's host namespace, either tool's, as NAT reads them (none if
    the lab has no host)."""
    try:
        return nat.counters(lab.name, "host")
    except UnknownName:
        return []


# -- a mystery fault: what the traffic shows, and nothing else without hints -----------------
def _symptom_probes(stage: str, lab) -> list[reach.Probe]:
    """The probes of a mystery check, the same whatever the fault: the stage's, those of the
    stages it builds on (from bridge), each container's ping of its own address and, from
    bridge on, of the host's br0."""
    line = stages.lineage(stage)
    bridged = "bridge" in line
    chosen = [p for s in (line[line.index("bridge"):] if bridged else (stage,))
              for p in reach.PROBES.get(s, ())]
    containers = [r for r in lab.roles() if plan.container_index(r) is not None] or \
        [r for r in ("netns0", "netns1")[:stages.default_containers(stage)]]
    second = stages.includes(stage, "isolated")
    for role in sorted(containers, key=plan.container_index):
        if second and plan.container_index(role) == stages.SECOND_CONTAINER:   # on br1
            chosen += [reach.Probe(role, stages.SECOND_ADDRESS), reach.Probe(role, stages.SECOND_GATEWAY)]
            continue
        chosen.append(reach.Probe(role, plan.container_address(plan.container_index(role))))
        if bridged:
            chosen.append(reach.Probe(role, plan.BRIDGE_ADDRESS))
    seen, unique = set(), []
    for p in chosen:
        if (p.source, p.target) not in seen:
            seen.add((p.source, p.target))
            unique.append(p)
    return unique


def _symptoms(lab, stage: str, w: Words, patience: float) -> tuple[list[Item], tuple[str, ...]]:
    """Mystery mode: each probe as a check item (its hints for levels 1 and 2) and as a bare
    line of what happened, which is all a check without hints says."""
    roles = set(lab.roles())
    deadline = time.monotonic() + patience
    items, wrong, right = [], [], []
    for p in _symptom_probes(stage, lab):
        if p.source not in roles:
            items.append(Item(False, f"cannot probe from {p.source}: the namespace is missing",
                              "traffic", "ip netns list"))
            wrong.append(f"{p.source} does not exist")
            continue
        got = reach._works(lab, p, deadline)
        items.append(reach._item(p, got, w))
        (right if got == p.expect else wrong).append(_said(p, got))
    if (stage == "outside" or stages.includes(stage, "firewall")) and "netns0" in roles:
        items.append(reach._source_seen(lab, w))
    return items, tuple([f"wrong: {line}" for line in wrong] + [f"right: {line}" for line in right])


def _said(p: reach.Probe, got: bool) -> str:
    """A probe's outcome in a few words, naming whose address it is."""
    own = plan.container_index(p.source) is not None and \
        p.target == plan.container_address(plan.container_index(p.source))
    owner = "its own address" if own else _OWNERS.get(p.target)
    target = p.target + (f" ({owner})" if owner else "")
    if p.target.startswith("http"):
        said = f"{p.source} {'gets' if got else 'gets no answer from'} {target}"
    else:
        said = f"{p.source} {'reaches' if got else 'does not reach'} {target}"
    if not p.expect:
        said += ", as the stage says" if not got else ", but should not"
    return said


_OWNERS = {plan.BRIDGE_ADDRESS: "the host's br0", plan.PUBLIC_SERVER: "the public server",
           **{plan.container_address(k): f"netns{k}" for k in range(2)}}
