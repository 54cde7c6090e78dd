"""Tables of what the kernel decided, for a notebook: connection tracking, neighbours, bridge FDB.

    conntrack(lab, role="host", proto=, address=, port=)   the conntrack entries, with the NAT
                                                          each implies and why answers return
    neighbours(lab, role, interface=)                      the neighbour (ARP) table
    fdb(lab, role="host", bridge=)                         what each bridge learned on its ports

Each returns a `Table`: text in a terminal (and what nbval compares), an HTML table in Jupyter,
the command a person types for the same table, and `entries` (the kernel's own records, for
code). The text repeats exactly for the same state: rows sorted; no timeouts, ids or ages;
neighbour states given as "answered" / "no answer" (the kernel's word moves on with time:
REACHABLE becomes STALE, INCOMPLETE becomes FAILED). The `*_table` functions build a table
from records already read (no root: tests, saved data).
"""
from __future__ import annotations

import html
from dataclasses import dataclass

ANSWERED = ("REACHABLE", "STALE", "DELAY", "PROBE")
UNANSWERED = ("INCOMPLETE", "FAILED")
MULTICAST_PREFIXES = ("01:00:5e:", "33:33:")


@dataclass(frozen=True)
class Table:
    """A titled table with the command that shows the same, and notes under it."""
    title: str
    command: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...] = ()
    entries: tuple = ()              # the records shown, as the kernel gave them

    def __str__(self) -> str:
        out = [self.title, f"$ {self.command}"]
        if self.rows:
            widths = [max(len(r[k]) for r in (self.columns, *self.rows)) for k in range(len(self.columns))]
            for r in (self.columns, *self.rows):
                out.append("  ".join(f"{v:<{w}}" for v, w in zip(r, widths)).rstrip())
        else:
            out.append("(no entries)")
        return "\n".join(out + list(self.notes))

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        e = html.escape
        head = "".join(f"<th style='text-align:left'>{e(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td style='text-align:left'><code>{e(v)}</code></td>"
                                        for v in r) + "</tr>" for r in self.rows)
        table = (f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
                 if self.rows else "<p>(no entries)</p>")
        notes = "".join(f"<p>{e(n)}</p>" for n in self.notes)
        return (f"<div class='labkit-table' style='max-width:100%;overflow-x:auto'>"
                f"<p><b>{e(self.title)}</b></p><pre>$ {e(self.command)}</pre>{table}{notes}</div>")


def _sudo(namespace: str, command: str) -> str:
    return f"sudo ip netns exec {namespace} {command}"


# ---- connection tracking -----------------------------------------------------------------------

def _end(addr: str, port: int | None) -> str:
    return addr if port is None else f"{addr}:{port}"


def _tuple(ends) -> str:
    return f"{_end(ends.src, ends.sport)} -> {_end(ends.dst, ends.dport)}"


def implied_nat(c) -> str:
    """The NAT a conntrack entry implies, from its two tuples: "DNAT 10.0.2.15:5000 ->
    172.18.0.10:5000" (the reply's source is not the original destination), "SNAT
    172.18.0.10 -> 10.0.2.15" (the reply's destination is not the original source), both, or ""."""
    o, r = c.original, c.reply
    found = []
    if (r.src, r.sport) != (o.dst, o.dport):
        found.append(f"DNAT {_end(o.dst, o.dport)} -> {_end(r.src, r.sport)}")
    if (r.dst, r.dport) != (o.src, o.sport):
        found.append(f"SNAT {_end(o.src, o.sport)} -> {_end(r.dst, r.dport)}")
    return "; ".join(found)


def why_back(c) -> str:
    """One sentence: how an answer to entry `c` finds its way back."""
    o, r = c.original, c.reply
    answer = f"the answer {_tuple(r)}"
    if (r.src, r.sport) != (o.dst, o.dport) and (r.dst, r.dport) != (o.src, o.sport):
        return (f"{answer} matches this entry's reply tuple, so the kernel gives it back the "
                f"source {_end(o.dst, o.dport)} and the destination {_end(o.src, o.sport)}: "
                f"the entry undoes both rewrites, no rule is read for it.")
    if (r.src, r.sport) != (o.dst, o.dport):
        return (f"{answer} matches this entry's reply tuple, so the kernel rewrites its source "
                f"back to {_end(o.dst, o.dport)} (the entry undoes the DNAT, not a rule): "
                f"the client sees the address it asked.")
    return (f"{answer} matches this entry's reply tuple, so the kernel rewrites its destination "
            f"back to {_end(o.src, o.sport)} (the entry undoes the SNAT, not a rule); routing "
            f"then takes it there.")


def _matches(c, proto, address, port) -> bool:
    if proto is not None and c.proto != proto:
        return False
    if address is not None and address not in (c.original.src, c.original.dst, c.reply.src, c.reply.dst):
        return False
    return port is None or port in (c.original.dport, c.reply.sport)


def conntrack_table(connections, namespace: str, *, proto: str | None = None,
                    address: str | None = None, port: int | None = None) -> Table:
    """A Table of conntrack entries (kernel.conntrack.Connection) of `namespace` (kernel name),
    kept where they match `proto`, `address` (any of the four) and `port` (the service's)."""
    shown = sorted((c for c in connections if _matches(c, proto, address, port)),
                   key=lambda c: (c.proto, _tuple(c.original), _tuple(c.reply)))
    rows = tuple((c.proto, _tuple(c.original), _tuple(c.reply), c.state, implied_nat(c) or "none")
                 for c in shown)
    command = "conntrack -L" + (f" -p {proto}" if proto else "") \
        + (f" --dport {port}" if port is not None and proto in ("tcp", "udp") else "")
    command = _sudo(namespace, command) + (f" | grep -F {address}" if address else "") \
        + (f" | grep -w {port}" if port is not None and proto not in ("tcp", "udp") else "")
    which = ", ".join(w for w in (proto, address, None if port is None else f"port {port}") if w)
    title = f"conntrack entries in {namespace}" + (f" ({which})" if which else "")
    nat = [c for c in shown if implied_nat(c)]
    notes = ["original: the first packet as it arrived; reply: what an answer must look like. "
             "DNAT: the reply's source is not the original destination; SNAT (a SNAT or "
             "MASQUERADE rule): the reply's destination is not the original source."]
    notes.append("Why the answer comes back: " + why_back(nat[0]) if nat else
                 "No entry shown rewrites anything: answers come back by routing alone.")
    notes.append("(the conntrack command is in Debian's package conntrack)")
    return Table(title, command, ("proto", "original", "reply", "state", "NAT"), rows,
                 tuple(notes), tuple(shown))


def conntrack(lab, role: str = "host", *, proto: str | None = None, address: str | None = None,
              port: int | None = None) -> Table:
    """The conntrack entries of namespace `role` of `lab` (read over netlink), filtered. Root."""
    from ...kernel import conntrack as ct
    namespace = lab.ns(role)
    return conntrack_table(ct.connections(namespace), namespace, proto=proto, address=address,
                           port=port)


# ---- neighbours and the bridge's forwarding database --------------------------------------------

def owners(lab) -> dict[str, str]:
    """MAC -> "namespace:interface" over the whole lab as the kernel holds it ({} if unreadable)."""
    from ...errors import LabkitError
    try:
        topology = lab.inspect()
    except (LabkitError, AttributeError):
        return {}
    return {i.mac: f"{ns.role}:{i.name}" for ns in topology.namespaces for i in ns.interfaces if i.mac}


def state_word(state: str) -> str:
    """"answered", "no answer" or "static" for a neighbour's NUD state (`ip neigh`'s word)."""
    first = state.split(",")[0]
    if first in ANSWERED:
        return "answered"
    if first in UNANSWERED:
        return "no answer"
    return "static"


def neighbours_table(entries, links: dict[int, str], namespace: str, who: dict[str, str] | None = None,
                     *, interface: str | None = None, everything: bool = False) -> Table:
    """A Table of neighbour entries (Netlink.neighbours()) of `namespace`; `links` names the
    interfaces by index, `who` names a MAC's owner. Static (PERMANENT, NOARP) entries only
    with `everything`."""
    who = who or {}
    on = [n for n in entries if interface is None or links.get(n["ifindex"]) == interface]
    shown = [n for n in on if everything or state_word(n["state"]) != "static"]
    shown.sort(key=lambda n: (links.get(n["ifindex"], ""), tuple(int(b) for b in n["ip"].split("."))))
    rows = tuple((n["ip"], links.get(n["ifindex"], f"#{n['ifindex']}"), n["mac"] or "(none)",
                  state_word(n["state"]), who.get(n["mac"], "")) for n in shown)
    notes = ["answered: ip neigh says REACHABLE, STALE, DELAY or PROBE (by the entry's age); "
             "no answer: INCOMPLETE (still asking) or FAILED (gave up): no MAC, nothing is sent."]
    hidden = len(on) - len(shown)
    if hidden:
        notes.append(f"{hidden} static entr{'ies' if hidden != 1 else 'y'} (PERMANENT or NOARP) "
                     f"not shown: everything=True shows them")
    command = _sudo(namespace, "ip -4 neigh show" + (f" dev {interface}" if interface else ""))
    title = f"neighbour (ARP) table of {namespace}" + (f" on {interface}" if interface else "")
    return Table(title, command, ("address", "on", "MAC", "ARP", "MAC of"), rows, tuple(notes),
                 tuple(shown))


def neighbours(lab, role: str, *, interface: str | None = None, everything: bool = False) -> Table:
    """The neighbour table of namespace `role` of `lab` (read over netlink). Needs root."""
    from ...kernel.netlink import Netlink
    namespace = lab.ns(role)
    with Netlink(namespace) as nl:
        links = {link.index: link.name for link in nl.links()}
        entries = nl.neighbours()
    return neighbours_table(entries, links, namespace, owners(lab), interface=interface,
                            everything=everything)


def fdb_table(entries, links: dict[int, str], namespace: str, who: dict[str, str] | None = None,
              *, bridge: str | None = None, everything: bool = False) -> Table:
    """A Table of bridge FDB entries (Netlink.fdb()) of `namespace`: by default only what each
    bridge learned (not its own and its ports' own MACs, nor multicast groups)."""
    who = who or {}
    bridges = [n for n in entries if n["master"] is not None
               and (bridge is None or links.get(n["master"]) == bridge)]
    shown = [n for n in bridges if everything or not (n["permanent"] or n["mac"].startswith(MULTICAST_PREFIXES))]
    shown.sort(key=lambda n: (links.get(n["master"], ""), links.get(n["ifindex"], ""), n["mac"]))
    rows = tuple((links.get(n["master"], f"#{n['master']}"), links.get(n["ifindex"], f"#{n['ifindex']}"),
                  n["mac"], "permanent" if n["permanent"] else "learned", who.get(n["mac"], ""))
                 for n in shown)
    ports = {n["ifindex"] for n in bridges} | {n["master"] for n in bridges}
    hidden = len([n for n in entries if n in bridges or n["ifindex"] in ports]) - len(shown)
    notes = ["learned: a frame from that MAC came in by that port; frames to it leave by that "
             "port only (the others are not flooded)."]
    if hidden:
        notes.append(f"{hidden} entr{'ies' if hidden != 1 else 'y'} not shown: the bridge's and its "
                     f"ports' own MACs (permanent) and multicast groups; everything=True shows them")
    command = _sudo(namespace, "bridge fdb show" + (f" br {bridge}" if bridge else ""))
    title = f"forwarding database of {bridge or 'the bridges'} in {namespace}"
    return Table(title, command, ("bridge", "port", "MAC", "entry", "MAC of"), rows, tuple(notes),
                 tuple(shown))


def fdb(lab, role: str = "host", *, bridge: str | None = None, everything: bool = False) -> Table:
    """What the bridges of namespace `role` of `lab` learned (read over netlink). Needs root."""
    from ...kernel.netlink import Netlink
    namespace = lab.ns(role)
    with Netlink(namespace) as nl:
        links = {link.index: link.name for link in nl.links()}
        entries = nl.fdb()
    return fdb_table(entries, links, namespace, owners(lab), bridge=bridge, everything=everything)
