"""nftables backend: the lab's own table `ip labkit` in its host namespace.

`apply` replaces the whole table in one atomic transaction (`nft -j -f -` run inside the
namespace: add table, delete it, add it again with its chains and rules), so a packet never
meets half the rules. `remove` deletes the table. Rules go through nftables' own JSON
interface, not hand-built netlink. Call from anywhere: every command runs in the namespace.
Imports only the rule model and the tool runner.
"""
from __future__ import annotations

import json

from ..errors import KernelError
from . import tool
from .rules import NFT_CHAINS as CHAINS, NFT_FAMILY as FAMILY, NFT_TABLE as TABLE, Rule
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
    if rule.action == "MASQUERADE":
        expr.append({"masquerade": None})
    elif rule.action == "DROP":
        expr.append({"drop": None})
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
        made = set()
        for rule in rules:
            name, kind, hook, prio, _ = CHAINS[(rule.table, rule.chain)]
            if name not in made:
                made.add(name)
                cmds.append({"add": {"chain": {"family": FAMILY, "table": TABLE, "name": name,
                                               "type": kind, "hook": hook, "prio": prio,
                                               "policy": "accept"}}})
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
        rule = item.get("rule")
        if rule is None:
            continue
        parsed = parse(rule)
        found.append(parsed if parsed is not None else json.dumps(rule["expr"]))
    return found


def listing(ns: str) -> list[str]:
    """The table as `nft list table ip labkit` prints it (empty if there is no table)."""
    result = run_tool(ns, [TOOL, "list", "table", FAMILY, TABLE], check=False)
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
            else:
                return None
        elif "masquerade" in e:
            fields["action"] = "MASQUERADE"
        elif "drop" in e:
            fields["action"] = "DROP"
        elif "dnat" in e and "addr" in e["dnat"] and "port" in e["dnat"]:
            fields["action"], fields["to"] = "DNAT", f"{e['dnat']['addr']}:{e['dnat']['port']}"
        elif "counter" in e:
            continue
        else:
            return None
    if "action" not in fields or None in (fields.get("saddr", ""), fields.get("daddr", "")):
        return None
    return Rule(key[0], key[1], **fields)
