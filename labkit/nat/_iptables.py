"""iptables backend: the seed's exact commands, run inside the lab's host namespace.

`apply` appends each missing rule with `iptables -t TABLE -A CHAIN ...` (checked first with
-C, so running it twice adds nothing) and deletes the rules it added before that are no
longer wanted; `remove` deletes exactly the rules it added, with -D. On the nf_tables
variant iptables makes tables `ip nat` / `ip raw` on first use: those that labkit's commands
made are deleted again once empty (with nft, when installed), so nothing of this backend is
left. Every rule is journaled before it is added; a failed apply takes back what it added.
"""
from __future__ import annotations

import shlex
import shutil

from ..errors import KernelError, MissingTool

TOOL = "iptables"
PACKAGE = "iptables"
KEY = "iptables"


def available() -> bool:
    """True if iptables and iptables-save are installed."""
    return shutil.which(TOOL) is not None and shutil.which("iptables-save") is not None


def require() -> None:
    """Raise MissingTool (naming the Debian package) unless iptables is installed."""
    if not available():
        raise MissingTool(f"the NAT backend iptables needs the commands `iptables` and "
                          f"`iptables-save`, which are not installed: apt-get install {PACKAGE} "
                          f"(or choose --backend nftables)")


def shell_words(argv) -> str:
    from .api import shell_words as words
    return words(argv)


def _run(ns: str, argv: list[str], check: bool = True):
    from .api import run_tool
    return run_tool(ns, argv, check=check)


def _with(argv: list[str], op: str) -> list[str]:
    """`argv` (-t T -A CHAIN ...) with -A replaced by `op` (-C, -D)."""
    return [op if a == "-A" else a for a in argv]


def present(ns: str, argv: list[str]) -> bool:
    """True if the rule `argv` (-t T -A CHAIN ...) is in namespace `ns`."""
    return _run(ns, [TOOL, *_with(argv, "-C")], check=False).returncode == 0


def delete(ns: str, argv: list[str]) -> None:
    """Delete rule `argv` with -D, every copy of it; a no-op if it is not there."""
    for _ in range(100):
        if not present(ns, argv):
            return
        _run(ns, [TOOL, *_with(argv, "-D")])


def _nft_table_exists(ns: str, table: str) -> bool | None:
    """Whether nft sees iptables' table `table` (None without nft: cannot tell)."""
    if shutil.which("nft") is None:
        return None
    return _run(ns, ["nft", "list", "table", "ip", table], check=False).returncode == 0


def _state(journal) -> dict:
    from .api import state
    return dict(state(journal).get(KEY) or {"rules": [], "created_tables": []})


def _save(journal, mine: dict | None) -> None:
    from .api import JOURNAL_KEY, state
    rec = state(journal)
    rec[KEY] = mine
    journal.record(JOURNAL_KEY, rec)


def apply(ns: str, rules, journal) -> None:
    """Make the rules labkit added in `ns` exactly `rules` (journaled first)."""
    mine = _state(journal)
    wanted = [r.iptables() for r in rules]
    for table in sorted({r.table for r in rules} - set(mine["created_tables"])):
        if _nft_table_exists(ns, table) is False:
            mine["created_tables"].append(table)
    mine["rules"] = mine["rules"] + [w for w in wanted if w not in mine["rules"]]
    _save(journal, mine)
    for argv in [a for a in mine["rules"] if a not in wanted]:
        delete(ns, argv)
    added = []
    try:
        for argv in wanted:
            if not present(ns, argv):
                _run(ns, [TOOL, *argv])
                added.append(argv)
    except KernelError:
        for argv in reversed(added):
            delete(ns, argv)
        raise
    mine["rules"] = wanted
    used = {r.table for r in rules}
    for table in [t for t in mine["created_tables"] if t not in used]:
        _drop_if_empty(ns, table)
        mine["created_tables"].remove(table)
    _save(journal, mine)


def remove(ns: str, state: dict, journal) -> None:
    """Delete every rule labkit added in `ns`, then the tables its commands created if empty."""
    mine = dict(state.get(KEY) or {"rules": [], "created_tables": []})
    for argv in reversed(mine["rules"]):
        delete(ns, argv)
    for table in mine["created_tables"]:
        _drop_if_empty(ns, table)
    _save(journal, None)


def _drop_if_empty(ns: str, table: str) -> None:
    import json
    if shutil.which("nft") is None:
        return
    result = _run(ns, ["nft", "-j", "list", "table", "ip", table], check=False)
    if result.returncode != 0:
        return
    items = json.loads(result.stdout)["nftables"]
    if any("rule" in i or ("chain" in i and "hook" not in i["chain"]) for i in items):
        return  # someone else's rules or chains: leave the table
    _run(ns, ["nft", "delete", "table", "ip", table], check=False)


def _saved(ns: str) -> list[tuple[str, list[str]]]:
    """(table, argv) of every rule in tables raw and nat, as iptables-save writes them."""
    found = []
    for table in ("raw", "nat"):
        out = _run(ns, ["iptables-save", "-t", table], check=False).stdout
        for line in out.splitlines():
            if line.startswith("-A "):
                found.append((table, shlex.split(line)))
    return found


def parse(table: str, argv: list[str]):
    """A nat.Rule from one iptables-save line's words, or None if it is not in labkit's forms."""
    from .api import Rule
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
                if next(it) != "DNAT":
                    return None
                fields["ct_dnat"] = True
            elif word == "-j":
                fields["action"] = next(it)
            elif word == "--to-destination":
                fields["to"] = next(it)
            else:
                return None
            neg = False
    except (StopIteration, ValueError):
        return None
    if fields.get("action") not in ("MASQUERADE", "DNAT", "DROP") or "chain" not in fields:
        return None
    chain = fields.pop("chain")
    return Rule(table, chain, **fields)


def read(ns: str) -> list:
    """Rules in tables raw and nat: a nat.Rule where labkit recognises one, else the line."""
    out = []
    for table, argv in _saved(ns):
        rule = parse(table, argv)
        out.append(rule if rule is not None else f"-t {table} {shell_words(argv)}")
    return out


def listing(ns: str) -> list[str]:
    """Every rule in tables raw and nat, as commands (`iptables -t nat -A ...`)."""
    return [f"iptables -t {table} {shell_words(argv)}" for table, argv in _saved(ns)]
