"""The netfilter path of a namespace, drawn with its rules and their packet counters.

    read(lab, role="host") -> Reading       rules with counters as the kernel holds them (nft,
                                            iptables of either flavour; labkit's or typed by
                                            hand), the ways in and out, ip_forward; needs root
    layout(reading, since=None) -> Layout   plain data: hook boxes, rule cards, steps, arrows
    figure(reading, since=None) -> Figure   labkit.draw.figure.Figure: .render("png"|"svg"|
                                            "text"), matplotlib (Agg)
    netfilter(lab, since=None) -> Figure    read, then draw: what a notebook shows

The IPv4 path: a packet from a wire meets PREROUTING, then the routing decision: for this
host, INPUT and a local process; else FORWARD. A local process's packet is routed first (way
out, source address), then meets OUTPUT, and is routed again if OUTPUT changed its
destination (DNAT). Both meet POSTROUTING last. Each rule is drawn at its hook (in priority
order) with its packet counter; against `since` (an earlier Reading or view) the counters that
grew are marked: the rules the packets in between hit. Output repeats exactly for the same
counters (no times, no byte counts). Sized for an A4 page's text width (figure.A4_WIDTH).
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass

from ..nat.rules import HOOKS, Counted
from .figure import (A4_WIDTH, BOX_PAD, CHAR, EDGE, FILL, FONT, LINE, MARGIN, PAD, TITLE_FONT,
                     TITLE_LINE, TOP, WARN, Figure, Rect, canvas)

WIDTH = A4_WIDTH * FONT / 6.6       # 7.6 in: 8 pt text is 6.6 pt on an A4 page
GAP, ARROW = 0.4, 0.26              # between the lanes; length of an arrow between steps
LANE = (WIDTH - 2 * MARGIN - GAP) / 2
BADGE = 9 * CHAR + 2 * PAD          # a rule's counter, left of its words
HIT_INK, HIT_FILL = "#d0650a", "#fff0e0"
NAT_NOTE = "A nat rule sees only the first packet of a connection; its others follow the conntrack entry."
ABOUT = {
    "prerouting": "every packet from a wire, before routing: DNAT",
    "input": "packets for this host",
    "forward": "packets routed through this host",
    "output": "this host's own packets, after routing: DNAT",
    "postrouting": "every packet leaving, after routing: SNAT, MASQUERADE",
}


@dataclass(frozen=True)
class Reading:
    """The rules of one namespace with their counters, read at one moment."""
    lab: str
    namespace: str                   # kernel name
    role: str
    rules: tuple[Counted, ...]
    interfaces: tuple[str, ...]      # ways in and out: not lo, not bridge ports
    forwarding: str | None           # net.ipv4.ip_forward

    def commands(self) -> list[str]:
        """The commands a person types to see these counters."""
        found = list(dict.fromkeys(c.listing_command(self.namespace) for c in self.rules))
        return ["sudo " + c for c in found] or [
            f"sudo ip netns exec {self.namespace} nft list ruleset",
            f"sudo ip netns exec {self.namespace} iptables -t nat -L -v -n -x"]


def read(lab, role: str = "host") -> Reading:
    """The rules of namespace `role` of `lab` (a Lab or a lab name) with their counters now;
    those labkit made are marked, from the lab's journal."""
    from ..kernel import sysctl
    from ..kernel.netlink import Netlink
    from ..lab import Lab
    from ..model import plan
    from ..nat import api
    lab = lab if isinstance(lab, Lab) else Lab(plan.lab_name(lab))
    rules = api.counters(lab.name, role, journal=lab.journal)
    name = plan.namespace_name(lab.name, role)
    with Netlink(name) as nl:
        ways = tuple(sorted(link.name for link in nl.links() if link.name != "lo" and not link.master))
    return Reading(lab.name, name, role, tuple(rules), ways,
                   sysctl.read(name, "net.ipv4.ip_forward"))


def _key(c: Counted) -> tuple:
    return (c.tool, c.table, c.chain, c.position, c.text)


def growth(reading: Reading, since) -> dict[tuple, int | None]:
    """Per rule (by its key): how many packets it counted since `since` (a Reading or view;
    None: no earlier reading), None for a rule new since then or without a counter."""
    before = getattr(since, "reading", since)
    if before is None:
        return {}
    old = {_key(c): c.packets for c in before.rules}
    return {_key(c): (c.packets - old[_key(c)] if c.packets is not None and old.get(_key(c))
                      is not None else None) for c in reading.rules}


def count_text(c: Counted, grew: int | None, compared: bool) -> str:
    """"1 packet (+1)", "0 packets", "no counter" (an nft rule without `counter`)."""
    if c.packets is None:
        return "no counter"
    text = f"{c.packets} packet{'s' if c.packets != 1 else ''}"
    if compared:
        text += " (new)" if grew is None else f" (+{grew})" if grew else ""
    return text


def who(c: Counted) -> str:
    """Where the rule is and who made it: "nft ip labkit prerouting (labkit)"."""
    where = f"{c.tool} {c.table} {c.chain}" if c.tool == "nft" else f"{c.tool} -t {c.table} {c.chain}"
    return f"{where} ({'labkit' if c.labkit else 'by hand'})"


# ---- layout ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Card:
    """One rule at its hook: counter badge, where/who, and its words wrapped."""
    rect: Rect
    count: str
    hit: bool
    head: tuple[str, ...]            # where the rule is and who made it
    lines: tuple[str, ...]           # its words


@dataclass(frozen=True)
class HookBox:
    """A hook (PREROUTING, ...) with the rules that run on it."""
    name: str
    about: str
    rect: Rect
    cards: tuple[Card, ...]
    note: str = ""                   # "no rules", or a warning (ip_forward=0)


@dataclass(frozen=True)
class Step:
    """Something on the path that is not a hook: "wire", "route" (a routing decision), "process"."""
    kind: str
    rect: Rect
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Layout:
    """The whole figure as data, in inches (origin top left)."""
    title: str
    width: float
    height: float
    hooks: tuple[HookBox, ...]
    steps: tuple[Step, ...]
    arrows: tuple[tuple[tuple[float, float], tuple[float, float]], ...]
    foot: tuple[str, ...]            # the note and the commands, under the figure
    reading: Reading
    compared: bool = False

    def hook(self, name: str) -> HookBox:
        return next(h for h in self.hooks if h.name == name)


def _wrap(text: str, width: float) -> list[str]:
    return textwrap.wrap(text, max(int(width / CHAR), 10), break_on_hyphens=False) or [""]


def _hook_box(hook: str, x: float, y: float, w: float, rules, grew, compared, note="") -> HookBox:
    inner = w - 2 * BOX_PAD
    cy = y + BOX_PAD + TITLE_LINE + LINE + PAD
    cards = []
    for c in rules:
        head, lines = _wrap(who(c), inner - BADGE - PAD), _wrap(c.text, inner - BADGE - PAD)
        h = (len(head) + len(lines)) * LINE + 2 * PAD
        g = grew.get(_key(c))
        hit = bool(g) if compared else bool(c.packets)
        cards.append(Card(Rect(x + BOX_PAD, cy, inner, h), count_text(c, g, compared), hit,
                          tuple(head), tuple(lines)))
        cy += h + PAD
    note = note or ("" if cards else "no rules: every packet goes on")
    if note:
        cy += LINE + PAD
    return HookBox(hook.upper(), ABOUT[hook], Rect(x, y, w, cy - y + BOX_PAD - PAD), tuple(cards), note)


def _step(kind: str, x: float, y: float, w: float, lines) -> Step:
    return Step(kind, Rect(x, y, w, len(lines) * LINE + 2 * PAD), tuple(lines))


def layout(reading: Reading, since=None) -> Layout:
    """Lay out the path with the rules of `reading`; against `since`, mark what grew."""
    compared = getattr(since, "reading", since) is not None
    grew = growth(reading, since)
    at = {h: [c for c in reading.rules if c.hook == h] for h in HOOKS}
    left, right, full = MARGIN, MARGIN + LANE + GAP, WIDTH - 2 * MARGIN
    ways = ", ".join(reading.interfaces) or "(no interface)"
    arrows, steps, hooks = [], [], []

    def down(a: Rect, b: Rect, x: float | None = None):
        x = a.x + a.w / 2 if x is None else x
        arrows.append(((x, a.bottom), (x, b.y)))

    arrive = _step("wire", left, TOP, LANE, [f"a packet arrives by {ways}"])
    pre = _hook_box("prerouting", left, arrive.rect.bottom + ARROW, LANE, at["prerouting"], grew, compared)
    fwd_word = f"ip_forward={reading.forwarding}" if reading.forwarding is not None else "ip_forward"
    route = _step("route", left, pre.rect.bottom + ARROW, LANE,
                  ["routing decision:", "for this host: INPUT", f"else FORWARD ({fwd_word})"])
    off = "ip_forward=0: nothing is forwarded" if reading.forwarding == "0" else ""
    fwd = _hook_box("forward", left, route.rect.bottom + ARROW, LANE, at["forward"], grew, compared, off)
    inp = _hook_box("input", right, route.rect.y, LANE, at["input"], grew, compared)
    local = _step("process", right, inp.rect.bottom + ARROW, LANE,
                  [f"a local process in {reading.role}", "(a server, curl, ping)"])
    route2 = _step("route", right, local.rect.bottom + ARROW, LANE,
                   ["routing decision: its way out", "and its source address"])
    out = _hook_box("output", right, route2.rect.bottom + ARROW, LANE, at["output"], grew, compared)
    again = _step("route", right, out.rect.bottom + ARROW, LANE,
                  ["routed again if OUTPUT changed", "its destination"])
    post_y = max(fwd.rect.bottom, again.rect.bottom) + ARROW
    post = _hook_box("postrouting", left, post_y, full, at["postrouting"], grew, compared)
    leave = _step("wire", left, post.rect.bottom + ARROW, full, [f"the packet leaves by {ways}"])
    steps += [arrive, route, local, route2, again, leave]
    hooks += [pre, inp, fwd, out, post]
    down(arrive.rect, pre.rect)
    down(pre.rect, route.rect)
    down(route.rect, fwd.rect)
    arrows.append(((route.rect.right, route.rect.cy), (inp.rect.x, route.rect.cy)))
    for a, b in ((inp, local), (local, route2), (route2, out), (out, again)):
        down(a.rect, b.rect)
    down(fwd.rect, post.rect)
    down(again.rect, post.rect)
    down(post.rect, leave.rect, left + LANE / 2)
    stray = [c for c in reading.rules if c.hook not in HOOKS]
    foot = ([f"Not on any hook (no chain jumps to them): {len(stray)} rules"] if stray else []) \
        + [NAT_NOTE, "To see these counters yourself:"] + ["  " + c for c in reading.commands()]
    height = leave.rect.bottom + PAD + len(foot) * LINE + MARGIN
    n = len(reading.rules)
    title = (f"netfilter in {reading.namespace}: {n} rule{'s' if n != 1 else ''} with packet counters"
             + (", marked where they grew" if compared else ""))
    return Layout(title, round(WIDTH, 3), round(height, 3), tuple(hooks), tuple(steps),
                  tuple(arrows), tuple(foot), reading, compared)


# ---- drawing ---------------------------------------------------------------------------------

def _figure(lay: Layout):
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    fig, ax = canvas(lay.width, lay.height, lay.title)

    def box(r: Rect, fill, edge, lw=1.0, z=1, radius=0.06):
        ax.add_patch(FancyBboxPatch((r.x, r.y), r.w, r.h, f"round,pad=0,rounding_size={radius}",
                                    facecolor=fill, edgecolor=edge, linewidth=lw, zorder=z))

    def write(x, y, text, z=4, **kw):
        ax.text(x, y, text, fontsize=kw.pop("size", FONT), va="top", ha="left", zorder=z, **kw)

    for h in lay.hooks:
        box(h.rect, FILL["host"], EDGE["host"], 1.2)
        write(h.rect.x + BOX_PAD, h.rect.y + BOX_PAD, h.name, size=TITLE_FONT,
              fontweight="bold", color=EDGE["host"])
        write(h.rect.x + BOX_PAD, h.rect.y + BOX_PAD + TITLE_LINE, h.about, color="#404040")
        for c in h.cards:
            box(c.rect, HIT_FILL if c.hit else "white", HIT_INK if c.hit else "#9a9a9a",
                1.6 if c.hit else 0.8, 2, 0.04)
            ink = HIT_INK if c.hit else "#1f1f1f"
            words = c.count.split(" (")
            write(c.rect.x + PAD, c.rect.y + PAD, words[0], color=ink, fontweight="bold")
            if len(words) > 1:
                write(c.rect.x + PAD, c.rect.y + PAD + LINE, "(" + words[1], color=ink,
                      fontweight="bold")
            x = c.rect.x + BADGE + PAD
            for k, line in enumerate(c.head + c.lines):
                write(x, c.rect.y + PAD + k * LINE, line, color="#404040" if k < len(c.head) else ink)
        if h.note:
            bottom = h.rect.bottom - BOX_PAD + PAD - LINE - PAD
            write(h.rect.x + BOX_PAD, bottom, h.note,
                  color=WARN if h.note.startswith("ip_forward") else "#555555")
    for s in lay.steps:
        if s.kind != "wire":
            box(s.rect, FILL["container"] if s.kind == "process" else FILL["summary"],
                EDGE["container"] if s.kind == "process" else EDGE["summary"], 0.9, 1, 0.12)
        for k, line in enumerate(s.lines):
            ax.text(s.rect.x + s.rect.w / 2, s.rect.y + PAD + k * LINE, line, fontsize=FONT,
                    va="top", ha="center", zorder=4,
                    fontweight="bold" if s.kind == "wire" else "normal")
    for a, b in lay.arrows:
        ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=9, shrinkA=1,
                                     shrinkB=1, color="#303030", linewidth=1.1, zorder=3))
    y = lay.steps[-1].rect.bottom + PAD
    for k, line in enumerate(lay.foot):
        write(MARGIN, y + k * LINE, line, color="#303030")
    return fig


def text(lay: Layout) -> str:
    """The figure as text: each hook and its rules with their counters, then the commands."""
    r = lay.reading
    ways = ", ".join(r.interfaces) or "(no interface)"
    out = [lay.title, f"a packet arrives by {ways}"]

    def hook(name):
        h = lay.hook(name)
        out.append(f"{h.name}: {h.about}")
        for c in h.cards:
            mark = "*" if c.hit else " "
            out.append(f" {mark}{c.count:<16} {' '.join(c.head)}: {' '.join(c.lines)}")
        if h.note:
            out.append(f"  {h.note}")

    hook("PREROUTING")
    fwd = f" (ip_forward={r.forwarding})" if r.forwarding is not None else ""
    out.append(f"routing decision: for this host: INPUT; else FORWARD{fwd}")
    hook("INPUT")
    hook("FORWARD")
    out.append(f"a local process in {r.role} sends: routing decision (way out, source), then")
    hook("OUTPUT")
    out.append("routed again if OUTPUT changed the destination")
    hook("POSTROUTING")
    out.append(f"the packet leaves by {ways}")
    out.append("* counted packets" + (" since the previous reading" if lay.compared else ""))
    out += list(lay.foot)
    return "\n".join(out)


def figure(what: Reading | Layout, since=None) -> Figure:
    """A Reading (laid out, what grew since `since` marked: an earlier Reading or figure) or
    a Layout as a Figure: PNG or SVG, and the text of each hook's rules and counters."""
    if isinstance(since, Figure):
        since = since.model                         # its Layout, which holds its reading
    lay = what if isinstance(what, Layout) else layout(what, since)
    return Figure(lay, _figure, text(lay))


def netfilter(lab, role: str = "host", since=None) -> Figure:
    """Read namespace `role`'s rules and counters now and draw them, marked against `since`
    (the figure drawn before some traffic: what grew is what that traffic hit). Needs root."""
    return figure(read(lab, role), since)
