"""Reachability checked with real traffic: pings and HTTP requests between lab namespaces,
each sent by labkit.lab.reach.probe (its one success rule).

`reachability(lab, checks)` runs every check at once and returns a table (text, or HTML in a
notebook) in the order given; it raises AssertionError naming each check whose result differs
from what the lesson expects, so a notebook fails when reality changes. Needs root."""
from __future__ import annotations

import concurrent.futures
import html
import re
from dataclasses import dataclass

from ...kernel import privilege
from ...lab.reach import probe

@dataclass(frozen=True)
class Probe:
    """One check: from namespace `source` to `target` (an address: ping; a URL: HTTP GET)."""
    source: str
    target: str
    expected: bool
    got: bool | None = None
    holder: str = ""                     # who holds the target address, e.g. "host:veth1"

    @property
    def ok(self) -> bool:
        return self.got == self.expected

    @property
    def how(self) -> str:
        return "http" if "://" in self.target else "ping"


def _yes(b: bool | None) -> str:
    return {True: "yes", False: "no", None: "?"}[b]


@dataclass(frozen=True)
class Reachability:
    """Probes run against the live lab; a table when shown."""
    probes: tuple[Probe, ...]

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.probes)

    def rows(self) -> list[tuple[str, ...]]:
        return [(p.source, p.how, p.target + (f" ({p.holder})" if p.holder else ""),
                 _yes(p.expected), _yes(p.got), "ok" if p.ok else "DIFFERS")
                for p in self.probes]

    HEADER = ("from", "test", "to", "expected", "got", "")

    def __str__(self) -> str:
        return _table(self.HEADER, self.rows())

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return _html_table(self.HEADER, self.rows())


def _table(header, rows) -> str:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
                     for r in [header, *rows])


def _html_table(header, rows) -> str:
    head = "".join(f'<th style="text-align:left">{html.escape(h)}</th>' for h in header)
    body = "".join("<tr>" + "".join(f'<td style="text-align:left"><code>{html.escape(c)}</code></td>'
                                    for c in r) + "</tr>" for r in rows)
    return f'<table class="labkit-lesson"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _holder(addresses: dict, target: str) -> str:
    host = re.sub(r"^\w+://", "", target).split("/")[0].rsplit(":", 1)[0]
    where = addresses.get(host)
    if where:
        return f"{where[0]}:{where[1]}"
    if host.startswith("127."):
        return "its own lo"
    return ""


def reachability(lab, checks, timeout: float = 0.5) -> Reachability:
    """Run `checks` [(from role, address or URL, expected True/False)] at once; returns the table.

    Raises AssertionError naming every check whose result differs from what is expected, so
    a notebook fails when reality changes. A failed ping waits `timeout` seconds."""
    privilege.require()
    checks = [(s, t, bool(e)) for s, t, e in checks]
    for source, _, _ in checks:
        lab.ns(source)                                    # UnknownName now, not in a thread
    addresses = lab.inspect().addresses()

    def run(check):
        source, target, expected = check
        return Probe(source, target, expected, probe(lab, source, target, timeout),
                     _holder(addresses, target))

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        table = Reachability(tuple(pool.map(run, checks)))
    if not table.ok:
        wrong = [f"  {p.source} -> {p.target}: expected {'an answer' if p.expected else 'no answer'}, "
                 f"got {'an answer' if p.got else 'none'}" for p in table.probes if not p.ok]
        raise AssertionError(
            "reachability differs from what this lesson teaches:\n" + "\n".join(wrong)
            + f"\n\n{table}\n\nWas the lab changed by hand? Run the notebook's lab.up(...) cell "
              "again (stages converge from any state) and then this cell.")
    return table
