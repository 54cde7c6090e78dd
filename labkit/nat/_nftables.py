"""nftables backend: the lab's own table `ip labkit` in its host namespace.

`apply` replaces the whole table in one atomic transaction (`nft -j -f -` run inside the
namespace: add table, delete it, add it again with its chains and rules), so a packet never
meets half the rules. `remove` deletes the table. Rules go through nftables' own JSON
interface, not hand-built netlink. Call from anywhere: every command runs in the namespace.
Imports only the rule model and the tool runner.
"""
from __future__ import annotations

import json
import re

from ..errors import KernelError
from . import tool
from .rules import HOOKS, NFT_CHAINS as CHAINS, NFT_FAMILY as FAMILY, NFT_TABLE as TABLE, Counted, Rule
from .words import chains_of, ct_states, jumps, nft_chain, nft_states
from .tool import run_tool

TOOL = "nft"
PACKAGE = "nftables"
_BY_NAME = {spec[0]: key for key, spec in CHAINS.items()}


def available() -> bool:
    """True if the nft command is installed."""
    return tool.installed(TOOL)


def require() -> None:
    """Raise MissingTool (naming the Debian package) unless nft is installed."""
    tool.require("nftables", PACKAGE, TOOL, other="iptables")


def _table() -> dict:
    return {"family": FAMILY, "name": TABLE}


def _match(left: dict, right, op: str = "==") -> dict:
    return {"match": {"op": op, "left": left, "right": right}}


def _addr(cidr: str):
    if "/" in cidr:
        addr, length = cidr.split("/")
        if length != "32":
            return {"prefix": {"addr": addr, "len": int(length)}}
        return addr
    return cidr


def _ifname(key: str, itf: str) -> dict:
    neg = itf.startswith("!")
    return _match({"meta": {"key": key}}, itf[1:] if neg else itf, "!=" if neg else "==")


def expressions(rule: Rule) -> list[dict]:
    """nftables JSON expressions of one Rule."""
    expr = []
    if rule.saddr:
        expr.append(_match({"payload": {"protocol": "ip", "field": "saddr"}}, _addr(rule.saddr)))
    if rule.daddr:
        expr.append(_match({"payload": {"protocol": "ip", "field": "daddr"}}, _addr(rule.daddr)))
    if rule.in_if:
        expr.append(_ifname("iifname", rule.in_if))
    if rule.out_if:
        expr.append(_ifname("oifname", rule.out_if))
    if rule.proto:
        if rule.dport is not None:
            expr.append(_match({"payload": {"protocol": rule.proto, "field": "dport"}}, rule.dport))
        else:
            expr.append(_match({"payload": {"protocol": "ip", "field": "protocol"}}, rule.proto))
    if rule.ct_dnat:
        expr.append(_match({"ct": {"key": "status"}}, "dnat", "in"))
    if rule.ctstate:
        expr.append(_match({"ct": {"key": "state"}}, nft_states(rule.ctstate).split(","), "in"))
    expr.append({"counter": None})                # nft counts only where a rule says so
    if rule.action == "MASQUERADE":
        expr.append({"masquerade": None})
    elif rule.action in ("DROP", "ACCEPT", "RETURN"):
        expr.append({rule.action.lower(): None})
    elif jumps(rule):
        expr.append({"jump": {"target": nft_chain(rule.table, rule.action)}})
    elif rule.action == "DNAT":
        addr, _, port = rule.to.rpartition(":")
        expr.append({"dnat": {"addr": addr, "port": int(port)}})
    else:
        raise ValueError(f"no nftables form for action {rule.action}")
    return expr


def transaction(rules) -> dict:
    """One nft JSON batch that makes table ip labkit hold exactly `rules` (none: no table)."""
    cmds = [{"metainfo": {"json_schema_version": 1}},
            {"add": {"table": _table()}}, {"delete": {"table": _table()}}]
    if rules:
        cmds.append({"add": {"table": _table()}})
        policies = {(r.table, r.chain): r.action.lower() for r in rules if r.policy}
        for key in chains_of(rules):               # every chain first: rules jump to them
            name, kind, hook, prio, _ = CHAINS[key]
            chain = {"family": FAMILY, "table": TABLE, "name": name}
            if hook is not None:
                chain.update(type=kind, hook=hook, prio=prio, policy=policies.get(key, "accept"))
            cmds.append({"add": {"chain": chain}})
        for rule in rules:
            if rule.policy:
                continue
            name = CHAINS[(rule.table, rule.chain)][0]
            cmds.append({"add": {"rule": {"family": FAMILY, "table": TABLE, "chain": name,
                                          "expr": expressions(rule)}}})
    return {"nftables": cmds}


def apply(ns: str, rules, book=None) -> None:
    """Replace table ip labkit in namespace `ns` by `rules`, atomically (keeps no `book`)."""
    run_tool(ns, [TOOL, "-j", "-f", "-"], input=json.dumps(transaction(rules)))


def remove(ns: str, book=None) -> None:
    """Delete table ip labkit from namespace `ns` (a no-op if it is gone)."""
    apply(ns, [])


def _read_json(ns: str) -> list[dict] | None:
    result = run_tool(ns, [TOOL, "-j", "list", "table", FAMILY, TABLE], check=False)
    if result.returncode != 0:
        if "No such file or directory" in result.stderr:
            return None
        raise KernelError(f"`nft list table {FAMILY} {TABLE}` in namespace {ns!r} failed: "
                          f"{result.stderr.strip()}")
    return json.loads(result.stdout)["nftables"]


def read(ns: str) -> list:
    """The table's rules: a Rule where labkit recognises one, else nft's JSON as text."""
    items = _read_json(ns)
    if items is None:
        return []
    found = []
    for item in items:
        chain = item.get("chain")
        if chain and chain.get("policy") == "drop" and chain["name"] in _BY_NAME:
            found.append(Rule(*_BY_NAME[chain["name"]], "DROP", policy=True))
        rule = item.get("rule")
        if rule is None:
            continue
        parsed = parse(rule)
        found.append(parsed if parsed is not None else json.dumps(rule["expr"]))
    return found


def listing(ns: str) -> list[str]:
    """The table as `nft -s list table ip labkit` prints it, counters' numbers left out (empty
    if there is no table)."""
    result = run_tool(ns, [TOOL, "-s", "list", "table", FAMILY, TABLE], check=False)
    if result.returncode != 0:
        return []
    return [line.replace("\t", "  ") for line in result.stdout.splitlines() if line.strip()]


def exists(ns: str) -> bool:
    """True if table ip labkit exists in namespace `ns`."""
    return _read_json(ns) is not None


def _unaddr(right) -> str | None:
    if isinstance(right, str):
        return right
    if isinstance(right, dict) and "prefix" in right:
        return f"{right['prefix']['addr']}/{right['prefix']['len']}"
    return None


def parse(rule: dict) -> Rule | None:
    """A Rule from one rule of `nft -j list` output, or None if it is not in labkit's forms."""
    key = _BY_NAME.get(rule.get("chain"))
    if key is None:
        return None
    fields: dict = {}
    for e in rule.get("expr", []):
        if "match" in e:
            m = e["match"]
            left, right, op = m["left"], m["right"], m["op"]
            if "payload" in left:
                p = left["payload"]
                if p.get("protocol") == "ip" and p.get("field") in ("saddr", "daddr") and op == "==":
                    fields[p["field"]] = _unaddr(right)
                elif p.get("field") == "dport" and op == "==" and isinstance(right, int):
                    fields["proto"], fields["dport"] = p["protocol"], right
                elif p.get("field") == "protocol" and op == "==":
                    fields["proto"] = right
                else:
                    return None
            elif "meta" in left and left["meta"]["key"] in ("iifname", "oifname") and op in ("==", "!="):
                name = ("!" if op == "!=" else "") + right
                fields["in_if" if left["meta"]["key"] == "iifname" else "out_if"] = name
            elif "ct" in left and left["ct"]["key"] == "status" and right == "dnat":
                fields["ct_dnat"] = True
            elif "ct" in left and left["ct"]["key"] == "state" and op in ("in", "=="):
                states = right.get("set", right) if isinstance(right, dict) else right
                fields["ctstate"] = ct_states(states)
            else:
                return None
        elif "masquerade" in e:
            fields["action"] = "MASQUERADE"
        elif "drop" in e or "accept" in e or "return" in e:
            fields["action"] = next(k for k in ("drop", "accept", "return") if k in e).upper()
        elif "jump" in e:
            target = e["jump"].get("target")
            fields["action"] = next((k[1] for k, spec in CHAINS.items() if spec[0] == target
                                     and k[0] == key[0]), target)
        elif "dnat" in e and "addr" in e["dnat"] and "port" in e["dnat"]:
            fields["action"], fields["to"] = "DNAT", f"{e['dnat']['addr']}:{e['dnat']['port']}"
        elif "counter" in e:
            continue
        else:
            return None
    if "action" not in fields or None in (fields.get("saddr", ""), fields.get("daddr", "")):
        return None
    return Rule(key[0], key[1], **fields)


# -- every rule of every table, with its counter ----------------------------------------------------

_HANDLE = re.compile(r"\s+# handle (\d+)$")
_COUNTER = re.compile(r"\bcounter packets \d+ bytes \d+")


def rule_texts(listing: str) -> dict[tuple[str, str, str, int], str]:
    """(family, table, chain, handle) -> the rule as `nft -a list ruleset` prints it, its
    counter's numbers and its handle left out ("counter" stays: the rule counts)."""
    texts, table, chain = {}, None, None
    for raw in listing.splitlines():
        line = raw.strip()
        words = line.split()
        if words[:1] == ["table"] and len(words) >= 3:
            table, chain = (words[1], words[2]), None
        elif words[:1] == ["chain"] and len(words) >= 2:
            chain = words[1]
        elif line == "}":
            chain = None
        elif chain and table and (m := _HANDLE.search(line)):
            body = _COUNTER.sub("counter", line[:m.start()]).strip()
            if not body.startswith(("type ", "policy ")):
                texts[(*table, chain, int(m.group(1)))] = body
    return texts


def parse_ruleset(items: list[dict], texts: dict, skip=()) -> list[Counted]:
    """Every rule of `nft -j list ruleset` (its "nftables" list) in families ip and inet, with
    its counter (None without one) and hook (a regular chain: its caller's); `texts` from
    `rule_texts`; tables in `skip` ("ip nat", ...) are left out (iptables-nft's own). The
    rules of table ip labkit are labkit's."""
    chains = {}
    for item in items:
        if "chain" in item:
            c = item["chain"]
            chains[(c["family"], c["table"], c["name"])] = (c.get("hook"), c.get("prio", 0))
    rules = [item["rule"] for item in items if "rule" in item
             and item["rule"]["family"] in ("ip", "inet")
             and f"{item['rule']['family']} {item['rule']['table']}" not in skip]
    hooks = {k: v for k, v in chains.items() if v[0] in HOOKS}
    changed = True
    while changed:                                 # chains jumped to take their caller's hook
        changed = False
        for r in rules:
            key = (r["family"], r["table"], r["chain"])
            for e in r["expr"]:
                target = (e.get("jump") or e.get("goto") or {}).get("target")
                to = (r["family"], r["table"], target)
                if target and key in hooks and to in chains and to not in hooks:
                    hooks[to], changed = hooks[key], True
    out, position = [], {}
    for r in rules:
        key = (r["family"], r["table"], r["chain"])
        hook, prio = hooks.get(key, (None, 0))
        counter = next((e["counter"] for e in r["expr"] if isinstance(e.get("counter"), dict)), None)
        position[key] = position.get(key, -1) + 1
        text = texts.get((*key, r.get("handle")), json.dumps(r["expr"]))
        mine = (r["family"], r["table"]) == (FAMILY, TABLE)
        out.append(Counted(TOOL, f"{r['family']} {r['table']}", r["chain"], hook,
                           prio if isinstance(prio, int) else 0, text,
                           counter["packets"] if counter else None,
                           counter["bytes"] if counter else None,
                           parse(r) if mine else None, mine, position[key]))
    return out


def counted(ns: str, skip=()) -> list[Counted]:
    """Every rule of every ip/inet table in namespace `ns` with its counter (tables in `skip`,
    "ip nat" and such, left out: iptables-nft's, read with iptables)."""
    result = run_tool(ns, [TOOL, "-j", "list", "ruleset"])
    listing = run_tool(ns, [TOOL, "-a", "list", "ruleset"]).stdout
    return parse_ruleset(json.loads(result.stdout)["nftables"], rule_texts(listing), skip)
