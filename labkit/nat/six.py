"""A lab's IPv6 rules in its host: NAT66, publishing on the host's IPv6 address, and the routed
mode's filter; with ip6tables or with nft, as the lab's NAT backend is.

Two gateway modes, as Docker names them (`com.docker.network.bridge.gateway_mode_ipv6`,
Docker 27.0 and later; before it, NAT66 came with `ip6tables: true`, from 20.10):
- "nat" (Docker's default): containers' packets leave with the host's 2001:db8:2::15 (a
  MASQUERADE in ip6 nat POSTROUTING) and [2001:db8:2::15]:5000 is DNATed to
  [fd00:172:18::10]:5000, from outside (PREROUTING) and from the host itself (OUTPUT);
- "routed": no NAT of the containers' own connections; the world routes fd00:172:18::/64
  via the host (a route in the plan) and reaches [fd00:172:18::10]:5000 directly, and the
  host's FORWARD lets in, from ens18 to br0, only replies and new connections to that
  published port, dropping the rest. labkit keeps the DNAT of [2001:db8:2::15]:5000 here too
  (Docker's routed mode maps no host port: its -p opens the container's port only).

nftables: the lab's own table `ip6 labkit6`, replaced in one transaction, removed by deleting
it. iptables: `ip6tables` (the flavour the system's alternatives choose), each rule checked
with -C before -A, removed exactly with -D; what was added is kept in the journal (key
"six") before it is added. `converge(lab, mode, backend, journal)` makes the host hold exactly
the mode's rules (mode None: none), so going back to an IPv4 stage leaves none.
"""
from __future__ import annotations

from ..errors import KernelError
from ..kernel import netns
from ..model import plan, six
from ..model.six import _CHAINS, MASQUERADE6, PUBLISH6, ROUTED_FILTER, Rule6  # noqa: F401 (the rules, as data)
from . import tool
from .tool import run_tool

TABLE = "labkit6"
FAMILY = "ip6"
JOURNAL_KEY = "six"
MODES = ("nat", "routed")


def mode_of(stage: str | None) -> str | None:
    """The gateway mode of a stage: "nat" for ipv6, "routed" for ipv6-routed, else None; for
    the start of a practice ("before-ipv6-routed"), the mode of the stage it starts from."""
    from ..model import stages
    if stage and stages.practised(stage) in stages.STAGES:
        stage = stages.previous(stages.practised(stage))
    if stage not in stages.STAGES or not stages.includes(stage, "ipv6"):
        return None
    return "routed" if stages.includes(stage, six.ROUTED) else "nat"


def rules(mode: str | None) -> tuple[Rule6, ...]:
    """The host's IPv6 rules in gateway mode `mode` (None: none)."""
    if mode is None:
        return ()
    if mode not in MODES:
        raise KernelError(f"IPv6 gateway mode {mode!r} is not known: use nat or routed")
    return (MASQUERADE6,) + PUBLISH6 if mode == "nat" else PUBLISH6 + ROUTED_FILTER


# -- nft --------------------------------------------------------------------------------------
def _nft_text(wanted) -> str:
    lines = [f"table {FAMILY} {TABLE}", f"delete table {FAMILY} {TABLE}"]
    if wanted:
        lines.append(f"table {FAMILY} {TABLE} {{")
        for key in [k for k in _CHAINS if any((r.table, r.chain) == k for r in wanted)]:
            name, kind, hook, prio = _CHAINS[key]
            lines.append(f"  chain {name} {{")
            lines.append(f"    type {kind} hook {hook} priority {prio}; policy accept;")
            lines += [f"    {r.nft}" for r in wanted if (r.table, r.chain) == key]
            lines.append("  }")
        lines.append("}")
    return "\n".join(lines) + "\n"


# -- ip6tables ----------------------------------------------------------------------------------
def _with(argv: list[str], op: str) -> list[str]:
    return [op if a == "-A" else a for a in argv]


def _present(ns: str, argv: list[str]) -> bool:
    return run_tool(ns, ["ip6tables", *_with(argv, "-C")], check=False).returncode == 0


def _delete(ns: str, argv: list[str]) -> None:
    for _ in range(100):
        if not _present(ns, argv):
            return
        run_tool(ns, ["ip6tables", *_with(argv, "-D")])


# -- the lab ------------------------------------------------------------------------------------
def converge(lab: str, mode: str | None, backend: str, journal) -> None:
    """Make the host of lab `lab` hold exactly mode `mode`'s IPv6 rules with `backend`
    ("nftables" or "iptables"), removing those of another mode or backend first; the ip6
    tables that ip6tables (nf_tables flavour) made for labkit are deleted once empty."""
    host = plan.namespace_name(lab, "host")
    wanted = rules(mode)
    record = journal.get(JOURNAL_KEY) or {}
    if not netns.exists(host):
        journal.update({JOURNAL_KEY: None})
        return
    if wanted:
        tool.require(backend, "nftables" if backend == "nftables" else "iptables",
                     "nft" if backend == "nftables" else "ip6tables", other="the other backend")
    created = list(record.get("created_tables", ()))
    if record.get("backend") == "nftables" and (backend != "nftables" or not wanted):
        run_tool(host, ["nft", "delete", "table", FAMILY, TABLE], check=False)
    want_argv = [r.argv() for r in wanted] if backend == "iptables" else []
    for argv in record.get("rules", ()):
        if list(argv) not in want_argv:
            _delete(host, list(argv))
    if backend == "iptables":
        created += [t for t in sorted({r.table for r in wanted})
                    if t not in created and _nft_table(host, t) is False]
    for table in [t for t in created if t not in {r.table for r in wanted} or backend != "iptables"]:
        _drop_if_empty(host, table)
        created.remove(table)
    journal.update({JOURNAL_KEY: {"backend": backend, "mode": mode, "rules": want_argv,
                                  "created_tables": created} if wanted or created else None})
    if backend == "nftables" and wanted:
        run_tool(host, ["nft", "-f", "-"], input=_nft_text(wanted))
        return
    for argv in want_argv:
        if not _present(host, argv):
            run_tool(host, ["ip6tables", *argv])


def _nft_table(ns: str, table: str) -> bool | None:
    """Whether nft sees table `ip6 TABLE` in `ns` (None without nft: cannot tell)."""
    if not tool.installed("nft"):
        return None
    return run_tool(ns, ["nft", "list", "table", FAMILY, table], check=False).returncode == 0


def _drop_if_empty(ns: str, table: str) -> None:
    """Delete ip6tables' table `ip6 TABLE` in `ns` if no rule is left in it."""
    if not _nft_table(ns, table):
        return
    out = run_tool(ns, ["nft", "list", "table", FAMILY, table], check=False).stdout
    body = [w for line in out.splitlines() for w in [line.strip()]
            if w and not w.startswith(("table", "chain", "type", "}", "policy"))]
    if not body:
        run_tool(ns, ["nft", "delete", "table", FAMILY, table], check=False)


def listing(kernel_name: str) -> list[str]:
    """Every IPv6 rule line in namespace `kernel_name`, either tool's: `ip6tables -S` of tables
    nat and filter ("nat -A POSTROUTING ..."), and the rules of nft's ip6 and inet tables
    with their chain's hook ("nft postrouting ip6 saddr ... masquerade")."""
    lines = []
    if tool.installed("ip6tables"):
        for table in ("nat", "filter"):
            out = run_tool(kernel_name, ["ip6tables", "-t", table, "-S"], check=False).stdout
            lines += [f"{table} {line}" for line in out.splitlines() if line.startswith("-A ")]
    if tool.installed("nft"):
        out = run_tool(kernel_name, ["nft", "list", "ruleset"], check=False).stdout
        family = hook = None
        for line in out.splitlines():
            words = line.split()
            if words[:1] == ["table"] and len(words) > 1:
                family, hook = words[1], None
            elif words[:1] == ["type"] and "hook" in words:
                hook = words[words.index("hook") + 1]
            elif family in ("ip6", "inet") and hook and words and \
                    words[0] not in ("chain", "}", "policy", "type"):
                lines.append(f"nft {hook} {line.strip()}")
    return lines
