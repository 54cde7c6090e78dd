"""Check items of the stages after publish and outside: the host's filter table (`firewall`,
`isolated`) and each container's resolver (`names`), read from the kernel, either tool's.

A rule counts wherever a person put it: iptables of either flavour, or nft in any table whose
chains carry labkit's names (forward, docker-user, docker, docker-isolation-stage-1 and -2;
nat's output in a container), so the stage's commands typed with either tool pass. Each
item names the rule in iptables' words (what `iptables -S` prints) with why it is there.
"""
from __future__ import annotations

import json

from ..kernel import netns
from ..model import stages
from ..model.topology import Topology
from ..nat import _iptables, _nftables
from ..nat.filter import filter_rules
from ..model.topology import Masquerade
from ..nat.rules import Rule, rules_for
from ..nat.words import BUILTIN_CHAINS
from . import names
from .verdict import Item, Words


def present(kernel: str) -> set[Rule]:
    """Every rule of namespace `kernel` that labkit can read as a Rule (either tool, any
    table), and a policy Rule for each built-in FORWARD chain whose policy is DROP."""
    found: set[Rule] = set()
    if _iptables.available():
        for _, save in _iptables.flavours():
            out = netns.run(kernel, [save], check=False).stdout
            found |= {c.rule for c in _iptables.parse_saved(out) if c.rule is not None}
            found |= {Rule("filter", line.split()[0][1:], "DROP", policy=True) for line in out.splitlines()
                      if line.startswith(":") and line.split()[1:2] == ["DROP"]}
    if _nftables.available():
        result = netns.run(kernel, ["nft", "-j", "list", "ruleset"], check=False)
        items = json.loads(result.stdout or '{"nftables": []}')["nftables"] if result.returncode == 0 else []
        for item in items:
            chain, rule = item.get("chain"), item.get("rule")
            if chain and chain.get("hook") == "forward" and chain.get("policy") == "drop" \
                    and chain.get("family") in ("ip", "inet"):
                found.add(Rule("filter", "FORWARD", "DROP", policy=True))
            if rule and rule.get("family") in ("ip", "inet") and (parsed := _nftables.parse(rule)):
                found.add(parsed)
    return found


def items(lab, stage: str, want: Topology, w: Words) -> list[Item]:
    """The filter table's rules (firewall on), and each container's resolver setup (names on)."""
    found = []
    if stages.includes(stage, "firewall"):
        have = present(w.ns("host"))
        found += [_rule_item(rule, rule in have, "host", w) for rule in filter_rules(want.nat)]
        found.append(_user_first(lab, w))
        second = [e for e in want.nat if isinstance(e, Masquerade) and e.source == stages.SECOND_NET]
        found += [_rule_item(rule, rule in have, "host", w) for rule in rules_for(second)]
    for role, port in names.resolvers(want).items() if stages.includes(stage, "names") else ():
        if role not in lab.roles():
            continue
        found.append(_resolv_item(lab, role, w))
        have = present(w.ns(role))
        found += [_rule_item(rule, rule in have, role, w) for rule in names.dnat_rules(port)]
    return found


def _rule_item(rule: Rule, ok: bool, role: str, w: Words) -> Item:
    words = " ".join(rule.iptables()[2:])
    if rule.policy:
        said = f"the policy of {rule.chain} is " + (rule.action if ok else f"not {rule.action}")
    else:
        said = f"`{words}` is " + ("there" if ok else "missing")
    make = f"iptables -t {rule.table} -N {rule.chain} 2>/dev/null; " \
        if rule.chain not in BUILTIN_CHAINS else ""
    where = f"{role}'s {rule.table} table" if role != "host" else f"the {rule.table} table"
    return Item(ok, f"{said} in {where} ({rule.why})", "forwarding",
                w.look(role, f"iptables -t {rule.table} -S") + f" (or {w.look(role, 'nft list ruleset')})",
                f"{w.where(role)}: {make}{rule.iptables_command()}")


def _user_first(lab, w: Words) -> Item:
    """The first rule of the forward hook's base chain jumps to DOCKER-USER (either tool)."""
    from ..nat import counters
    rules = [c for c in counters(lab.name, "host") if c.hook == "forward" and c.position == 0
             and c.chain in ("FORWARD", "forward")]
    ok = any("docker-user" in c.text.lower() for c in rules)
    return Item(ok, "the user's chain DOCKER-USER " + ("comes first" if ok else "is not the first "
                "rule of FORWARD") + ": a user's rule there is met before every accept", "forwarding",
                w.look("host", "iptables -S FORWARD") + f" (or {w.look('host', 'nft list ruleset')})",
                f"{w.where('host')}: iptables -N DOCKER-USER 2>/dev/null; iptables -D FORWARD -j "
                f"DOCKER-USER; iptables -I FORWARD 1 -j DOCKER-USER")


def _resolv_item(lab, role: str, w: Words) -> Item:
    """The container asks 127.0.0.11 (its /etc/resolv.conf, as `ip netns exec` binds it)."""
    text = lab.exec(role, ["cat", "/etc/resolv.conf"]).stdout
    servers = [line.split()[1] for line in text.splitlines() if line.split()[:1] == ["nameserver"]
               and len(line.split()) > 1]
    ok = servers[:1] == [stages.RESOLVER]
    said = f"{role}'s resolv.conf names " + (stages.RESOLVER if ok else
                                            (", ".join(servers) or "no nameserver") + f", not {stages.RESOLVER}")
    return Item(ok, said, "servers", w.look(role, "cat /etc/resolv.conf"),
                f"{w.where(role)}: echo nameserver {stages.RESOLVER} > /etc/resolv.conf")
