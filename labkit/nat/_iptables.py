"""iptables backend: the seed's exact commands, run inside the lab's host namespace.

`apply` appends each missing rule with `iptables -t TABLE -A CHAIN ...` (checked first with
-C, so running it twice adds nothing) and deletes the rules it added before that are no
longer wanted; `remove` deletes exactly the rules it added, with -D. On the nf_tables
variant iptables makes tables `ip nat` / `ip raw` on first use: those that labkit's commands
made are deleted again once empty (with nft, when installed), so nothing of this backend is
left. What it added is kept in `book` (the backend's own record in the lab's journal:
`book.get()` / `book.put(dict | None)`) before it is added; a failed apply takes back what it
added. Imports only the rule model and the tool runner.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil

from ..errors import KernelError
from . import tool
from .rules import HOOKS, Counted, Rule, iptables_priority, shell_words
from .words import BUILTIN_CHAINS, chains_of
from .tool import run_tool

TOOL = "iptables"
PACKAGE = "iptables"
EMPTY = {"rules": [], "created_tables": []}


def available() -> bool:
    """True if iptables and iptables-save are installed."""
    return tool.installed(TOOL, "iptables-save")


def require() -> None:
    """Raise MissingTool (naming the Debian package) unless iptables is installed."""
    tool.require("iptables", PACKAGE, TOOL, "iptables-save", other="nftables")


def _with(argv: list[str], op: str) -> list[str]:
    """`argv` (-t T -A CHAIN ...) with -A replaced by `op` (-C, -D)."""
    return [op if a == "-A" else a for a in argv]


def present(ns: str, argv: list[str]) -> bool:
    """True if the rule `argv` (-t T -A CHAIN ...) is in namespace `ns`."""
    return run_tool(ns, [TOOL, *_with(argv, "-C")], check=False).returncode == 0


def delete(ns: str, argv: list[str]) -> None:
    """Delete rule `argv` with -D, every copy of it; a no-op if it is not there."""
    for _ in range(100):
        if not present(ns, argv):
            return
        run_tool(ns, [TOOL, *_with(argv, "-D")])


def _nft_table_exists(ns: str, table: str) -> bool | None:
    """Whether nft sees iptables' table `table` (None without nft: cannot tell)."""
    if not tool.installed("nft"):
        return None
    return run_tool(ns, ["nft", "list", "table", "ip", table], check=False).returncode == 0


def _mine(book) -> dict:
    found = book.get() or EMPTY
    return {"rules": list(found["rules"]), "created_tables": list(found["created_tables"]),
            "chains": [list(c) for c in found.get("chains", [])],
            "policies": dict(found.get("policies", {}))}


def _chain_exists(ns: str, table: str, chain: str) -> bool:
    return run_tool(ns, [TOOL, "-t", table, "-S", chain], check=False).returncode == 0


def _policy(ns: str, table: str, chain: str) -> str:
    """A built-in chain's policy now ("-P FORWARD ACCEPT" is the first line of -S FORWARD)."""
    out = run_tool(ns, [TOOL, "-t", table, "-S", chain]).stdout.split()
    return out[2] if out[:2] == ["-P", chain] else "ACCEPT"


def _chains_and_policies(ns: str, rules, mine: dict) -> None:
    """Make the chains of its own `rules` jump to or fill, and set the policies they say;
    each chain made and each policy's old value kept in `mine` first (the caller's book)."""
    for table, chain in chains_of([r for r in rules if not r.policy]):
        if chain not in BUILTIN_CHAINS and [table, chain] not in mine["chains"] \
                and not _chain_exists(ns, table, chain):
            mine["chains"].append([table, chain])
    for r in (r for r in rules if r.policy):
        mine["policies"].setdefault(f"{r.table} {r.chain}", _policy(ns, r.table, r.chain))


def _made_chains(ns: str, mine: dict, keep=()) -> None:
    """Create the chains `mine` lists (missing ones), and remove those not in `keep` that are
    empty and unreferenced now."""
    for table, chain in mine["chains"]:
        if (table, chain) in keep and not _chain_exists(ns, table, chain):
            run_tool(ns, [TOOL, "-t", table, "-N", chain])
    for table, chain in [c for c in mine["chains"] if tuple(c) not in keep]:
        if _chain_exists(ns, table, chain):
            run_tool(ns, [TOOL, "-t", table, "-X", chain], check=False)
        mine["chains"].remove([table, chain])


def _restore_policies(ns: str, mine: dict, keep=()) -> None:
    for key in [k for k in mine["policies"] if k not in keep]:
        table, chain = key.split()
        run_tool(ns, [TOOL, "-t", table, "-P", chain, mine["policies"].pop(key)], check=False)


def apply(ns: str, rules, book) -> None:
    """Make the rules labkit added in `ns` exactly `rules` (kept in `book` first), with the
    chains they need and the policies they set."""
    mine = _mine(book)
    _chains_and_policies(ns, rules, mine)
    policies = [r for r in rules if r.policy]
    rules = [r for r in rules if not r.policy]
    wanted = [r.iptables() for r in rules]
    for table in sorted({r.table for r in rules} - set(mine["created_tables"])):
        if _nft_table_exists(ns, table) is False:
            mine["created_tables"].append(table)
    mine["rules"] = mine["rules"] + [w for w in wanted if w not in mine["rules"]]
    book.put(mine)
    for argv in [a for a in mine["rules"] if a not in wanted]:
        delete(ns, argv)
    _made_chains(ns, mine, keep=set(chains_of(rules)))
    added = []
    try:
        for rule, argv in zip(rules, wanted):
            if not present(ns, argv):
                run_tool(ns, [TOOL, *_placed(ns, rule, rules, argv)])
                added.append(argv)
    except KernelError:
        for argv in reversed(added):
            delete(ns, argv)
        raise
    mine["rules"] = wanted
    for r in policies:
        run_tool(ns, [TOOL, *r.iptables()])
    _restore_policies(ns, mine, keep={f"{r.table} {r.chain}" for r in policies})
    used = {r.table for r in rules}
    for table in [t for t in mine["created_tables"] if t not in used]:
        _drop_if_empty(ns, table)
        mine["created_tables"].remove(table)
    book.put(mine)


def _placed(ns: str, rule: Rule, rules, argv: list[str]) -> list[str]:
    """`argv` as it goes in: appended (-A), except in the filter table, where the order of a
    chain's rules is what they mean: inserted (-I CHAIN N) right after the last rule before
    it in `rules` that the chain holds now (first, if none), whoever added the others."""
    if rule.table != "filter":
        return argv
    earlier = [r for r in rules[:list(rules).index(rule)] if r.chain == rule.chain and not r.policy]
    listed = [parse(rule.table, shlex.split(line)) for line in run_tool(
        ns, [TOOL, "-t", rule.table, "-S", rule.chain]).stdout.splitlines() if line.startswith("-A ")]
    at = max((k + 1 for k, have in enumerate(listed) if have in earlier), default=0)
    return [*argv[:2], "-I", rule.chain, str(at + 1), *argv[4:]]


def remove(ns: str, book) -> None:
    """Delete every rule labkit added in `ns`, then the tables its commands created if empty."""
    mine = _mine(book)
    for argv in reversed(mine["rules"]):
        delete(ns, argv)
    _made_chains(ns, mine)
    _restore_policies(ns, mine)
    for table in mine["created_tables"]:
        _drop_if_empty(ns, table)
    book.put(None)


def _drop_if_empty(ns: str, table: str) -> None:
    if not tool.installed("nft"):
        return
    result = run_tool(ns, ["nft", "-j", "list", "table", "ip", table], check=False)
    if result.returncode != 0:
        return
    items = json.loads(result.stdout)["nftables"]
    if any("rule" in i or ("chain" in i and "hook" not in i["chain"]) for i in items):
        return  # someone else's rules or chains: leave the table
    run_tool(ns, ["nft", "delete", "table", "ip", table], check=False)


def _saved(ns: str) -> list[tuple[str, list[str]]]:
    """(table, argv) of every rule in tables raw and nat, as iptables-save writes them."""
    found = []
    for table in ("raw", "nat", "filter"):
        out = run_tool(ns, ["iptables-save", "-t", table], check=False).stdout
        for line in out.splitlines():
            if line.startswith("-A "):
                found.append((table, shlex.split(line)))
    return found


def parse(table: str, argv: list[str]) -> Rule | None:
    """A Rule from one iptables-save line's words, or None if it is not in labkit's forms."""
    fields: dict = {}
    it = iter(argv)
    neg = False
    try:
        for word in it:
            if word == "!":
                neg = True
                continue
            if word == "-A":
                fields["chain"] = next(it)
            elif word in ("-s", "-d") and not neg:
                value = next(it)
                fields["saddr" if word == "-s" else "daddr"] = value[:-3] if value.endswith("/32") else value
            elif word in ("-i", "-o"):
                fields["in_if" if word == "-i" else "out_if"] = ("!" if neg else "") + next(it)
            elif word == "-p" and not neg:
                fields["proto"] = next(it)
            elif word == "-m":
                module = next(it)
                if module not in ("tcp", "udp", "conntrack"):
                    return None
            elif word == "--dport" and not neg:
                fields["dport"] = int(next(it))
            elif word == "--ctstate" and not neg:
                states = next(it)
                if states == "DNAT":
                    fields["ct_dnat"] = True
                else:
                    fields["ctstate"] = states
            elif word == "-j":
                fields["action"] = next(it)
            elif word == "--to-destination":
                fields["to"] = next(it)
            else:
                return None
            neg = False
    except (StopIteration, ValueError):
        return None
    if "chain" not in fields or fields.get("action") not in (
            "MASQUERADE", "DNAT", "DROP", "ACCEPT", "RETURN") and not (
            table == "filter" and fields.get("action", "").startswith("DOCKER")):
        return None
    chain = fields.pop("chain")
    return Rule(table, chain, **fields)


def read(ns: str) -> list:
    """Rules in tables raw and nat: a Rule where labkit recognises one, else the line."""
    out = [Rule("filter", chain, "DROP", policy=True) for chain in _dropping(ns)]
    for table, argv in _saved(ns):
        rule = parse(table, argv)
        out.append(rule if rule is not None else f"-t {table} {shell_words(argv)}")
    return out


def _dropping(ns: str) -> list[str]:
    """The filter table's built-in chains whose policy is DROP."""
    out = run_tool(ns, ["iptables-save", "-t", "filter"], check=False).stdout
    return [line.split()[0][1:] for line in out.splitlines()
            if line.startswith(":") and line.split()[1:2] == ["DROP"]]


def listing(ns: str) -> list[str]:
    """Every rule in tables raw, nat and filter, as commands (`iptables -t nat -A ...`)."""
    return [f"iptables -t {table} {shell_words(argv)}" for table, argv in _saved(ns)]


# -- every rule with its counters, either flavour (iptables-nft, iptables-legacy) ------------------

def flavours() -> list[tuple[str, str]]:
    """(the name a person types, its save command) of each iptables flavour installed: the one
    `iptables` runs is "iptables", the other "iptables-legacy" or "iptables-nft"."""
    path = shutil.which(TOOL)
    bare = "legacy" if path and "legacy" in os.path.realpath(path) else "nft"
    found = [(TOOL if bare == kind else f"{TOOL}-{kind}", f"{TOOL}-{kind}-save")
             for kind in ("nft", "legacy") if tool.installed(f"{TOOL}-{kind}-save")]
    return found or ([(TOOL, "iptables-save")] if available() else [])


def _counts(argv: list[str]) -> tuple[list[str], int | None, int | None]:
    """`argv` without its counters ("-c PACKETS BYTES", as `iptables -S -v` puts them)."""
    if "-c" in argv[:-2]:
        at = argv.index("-c")
        return argv[:at] + argv[at + 3:], int(argv[at + 1]), int(argv[at + 2])
    return argv, None, None


def parse_saved(text: str, name: str = TOOL, table: str = "filter") -> list[Counted]:
    """Every rule of `iptables-save -c` output (or of `iptables -t TABLE -S -v`: `table`), with
    its counters and the hook it runs on (a chain of its own: the hook of the chain that jumps
    to it); `name` is the flavour's name."""
    found = []
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
            continue
        packets = size = None
        if line.startswith("[") and "] -A " in line:
            counts, line = line[1:].split("] ", 1)
            packets, size = (int(n) for n in counts.split(":"))
        if not line.startswith("-A "):
            continue
        argv, p, b = _counts(shlex.split(line))
        found.append((table, argv, packets if p is None else p, size if b is None else b))
    chains = {(t, argv[1]) for t, argv, _, _ in found}
    hooks = {(t, c): c.lower() for t, c in chains if c.isupper() and c.lower() in HOOKS}
    changed = True
    while changed:                                 # chains jumped to take their caller's hook
        changed = False
        for t, argv, _, _ in found:
            target = next((argv[k + 1] for k, w in enumerate(argv[:-1]) if w in ("-j", "-g")), "")
            if (t, argv[1]) in hooks and (t, target) in chains and (t, target) not in hooks:
                hooks[(t, target)], changed = hooks[(t, argv[1])], True
    out, position = [], {}
    for t, argv, p, b in found:
        key = (t, argv[1])
        hook = hooks.get(key)
        position[key] = position.get(key, -1) + 1
        out.append(Counted(name, t, argv[1], hook, iptables_priority(t, hook or ""),
                           shell_words(argv[2:]), p, b, parse(t, argv), False, position[key]))
    return out


def counted(ns: str) -> list[Counted]:
    """Every rule of every iptables table in namespace `ns`, each flavour, with its counters.

    Reads `iptables-save -c` of each flavour: it lists only the tables that exist (asking
    `iptables -t nat -L` of iptables-legacy would make its nat table in the namespace)."""
    out = []
    for name, save in flavours():
        result = run_tool(ns, [save, "-c"], check=False)
        if result.returncode == 0:
            out += parse_saved(result.stdout, name)
    return out
