"""Where each box and chip of a topology diagram goes: columns containers | host | world.

`Geometry` places marked views (labkit.draw.marks) left to right, in inches from the top left,
and records where each interface chip landed (`chips`, for the edges). Above SUMMARY_ABOVE
containers only the first HEAD, the changed ones (up to EXTRA) and the last TAIL are drawn
(`runs`); each run of hidden containers becomes one "... N more" box.
"""
from __future__ import annotations

from .figure import (BOX_PAD, CHAR, LINE, MARGIN, PAD, SAME, TITLE_CHAR, TITLE_LINE, Box, Chip,
                     Line, Note, Rect)
from .marks import IfView, NsView

SUMMARY_ABOVE, HEAD, TAIL, EXTRA = 20, 3, 1, 4
CHIP_GAP, ROW_GAP, COL_GAP, BOX_GAP = 0.12, 0.16, 0.45, 0.55


def _size(lines, marks: int) -> tuple[float, float]:
    width = max((len(ln.text) for ln in lines), default=0) + marks
    return width * CHAR + 2 * PAD, len(lines) * LINE + 2 * PAD


def _stack(items: list, top: float) -> list:
    """items: [(preferred top, height, payload)] -> [(top, payload)], in order, never overlapping."""
    out, y = [], top
    for want, h, payload in sorted(items, key=lambda t: t[0]):
        y0 = max(want, y)
        out.append((y0, payload))
        y = y0 + h + CHIP_GAP
    return out


def _summary_lines(names: list[str], what: str) -> tuple[Line, ...]:
    return (Line(f"\u2026 {len(names)} more {what}", SAME, True), Line(f"{names[0]} \u2026 {names[-1]}"))


def anchors(a: Rect, b: Rect) -> tuple[tuple, float]:
    """The two ends of a line joining chips `a` and `b`, and its curve (0: straight)."""
    if a.right <= b.x:
        return ((a.right, a.cy), (b.x, b.cy)), 0.0
    if b.right <= a.x:
        return ((a.x, a.cy), (b.right, b.cy)), 0.0
    return ((a.x, a.cy), (b.x, b.cy)), 0.4          # same column: arc out to the left


def runs(column: list) -> list:
    """Containers to draw, with each run of hidden ones as a list (see SUMMARY_ABOVE)."""
    if len(column) <= SUMMARY_ABOVE:
        return list(column)
    keep = set(range(HEAD)) | set(range(len(column) - TAIL, len(column)))
    keep |= set([i for i, v in enumerate(column) if v.changed and i not in keep][:EXTRA])
    items: list = []
    for i, v in enumerate(column):
        if i in keep:
            items.append(v)
        elif items and isinstance(items[-1], list):
            items[-1].append(v)
        else:
            items.append([v])
    return items


class Geometry:
    """Places boxes left to right: the container column, the host, the world."""

    def __init__(self, marks: int, top: float):
        self.marks, self.top, self.title_h = marks, top, BOX_PAD + TITLE_LINE
        self.boxes: list[Box] = []
        self.chips: dict[tuple[str, str], Rect] = {}     # (namespace, interface) -> where
        self.right = MARGIN - BOX_GAP

    def size(self, lines) -> tuple[float, float]:
        return _size(lines, self.marks)

    def chip(self, ns: str, i: IfView, rect: Rect) -> Chip:
        self.chips[(ns, i.name)] = rect
        return Chip(ns, i.name, i.kind, rect, tuple(i.lines), i.status, i.peer, i.master)

    def add(self, v: NsView, rect: Rect, chips: list, notes) -> None:
        self.boxes.append(Box(v.name, v.kind, rect, Line(v.name, v.status, True), tuple(chips),
                              tuple(notes), v.status))
        self.right = rect.right

    def containers(self, items: list, host_name: str | None) -> None:
        """Left part of each box: title, other chips (lo), notes if narrow; right: facing chips."""
        def facing(i) -> bool:
            return i.peer is not None and i.peer[0] == host_name

        shown = [it for it in items if not isinstance(it, list)]
        face_w = max((self.size(i.lines)[0] for v in shown for i in v.ifs if facing(i)), default=0)
        left_w = note_w = 0.0
        for it in items:
            if isinstance(it, list):
                lines = _summary_lines([v.name for v in it], "containers")
                left_w = max(left_w, max(len(ln.text) for ln in lines) * CHAR)
                continue
            ws = [self.size(i.lines)[0] for i in it.ifs if not facing(i)]
            left_w = max(left_w, sum(ws) + CHIP_GAP * max(len(ws) - 1, 0),
                         (len(it.name) + self.marks) * TITLE_CHAR)
            note_w = max(note_w, self.size(it.notes + it.nat)[0] if it.notes or it.nat else 0)
        under = note_w > left_w                     # notes under the facing chips, else beside
        col_w = max(2 * BOX_PAD + left_w + (COL_GAP / 2 + face_w if face_w else 0),
                    note_w + 2 * BOX_PAD)
        y, x0 = self.top + TITLE_LINE, MARGIN
        for k, it in enumerate(items):
            if isinstance(it, list):
                names = [v.name for v in it]
                lines = _summary_lines(names, "containers")
                rect = Rect(x0, y, col_w, self.title_h + LINE + 2 * BOX_PAD)
                note = Note("notes", Rect(x0 + BOX_PAD, y + self.title_h, left_w, LINE + PAD),
                            lines[1:])
                self.boxes.append(Box(f"\u2026{k}", "summary", rect, lines[0], (), (note,), SAME,
                                      tuple(names)))
                self.chips[(f"\u2026{k}", "")] = rect
                y = rect.bottom + ROW_GAP
                continue
            placed, x, row_h = [], x0 + BOX_PAD, 0.0
            for i in (i for i in it.ifs if not facing(i)):
                w, h = self.size(i.lines)
                placed.append(self.chip(it.name, i, Rect(x, y + self.title_h, w, h)))
                x, row_h = x + w + CHIP_GAP, max(row_h, h)
            fy = y + BOX_PAD
            for i in (i for i in it.ifs if facing(i)):
                h = self.size(i.lines)[1]
                placed.append(self.chip(it.name, i, Rect(x0 + col_w - BOX_PAD - face_w, fy,
                                                         face_w, h)))
                fy += h + CHIP_GAP
            bottom = y + self.title_h + row_h
            if under:
                bottom = max(bottom, fy - CHIP_GAP)
            notes = ()
            if it.notes or it.nat:
                nw, nh = self.size(it.notes + it.nat)
                ny = bottom + (CHIP_GAP if row_h or under else 0)
                notes = (Note("notes", Rect(x0 + BOX_PAD, ny, nw, nh), tuple(it.notes + it.nat)),)
                bottom = ny + nh
            bottom = max(bottom, fy - CHIP_GAP)
            self.add(it, Rect(x0, y, col_w, bottom + BOX_PAD - y), placed, notes)
            y = bottom + BOX_PAD + ROW_GAP
        self.right = x0 + col_w if items else self.right

    def host(self, host: NsView, column: list, hidden_in: dict, world: NsView | None) -> None:
        """Columns L (ports facing containers), M (lo, bridges, others; notes), R (uplinks, NAT)."""
        hx, htop = self.right + BOX_GAP, self.top + self.title_h
        col: dict[str, list] = {"L": [], "M": [], "R": []}
        runs: dict[int, list] = {}
        names = {v.name for v in column}
        for i in host.ifs:
            side = i.peer[0] if i.peer else None
            if side in hidden_in:
                runs.setdefault(hidden_in[side], []).append(i)
            else:
                col["L" if side in names else "R" if world and side == world.name else "M"].append(i)
        size = {i.name: self.size(i.lines) for i in host.ifs}
        summaries = {k: _summary_lines([i.name for i in r], "veths") for k, r in runs.items()}
        nat_w, nat_h = self.size(host.nat) if host.nat else (0, 0)
        note_w, note_h = self.size(host.notes) if host.notes else (0, 0)
        widths = {"L": max([size[i.name][0] for i in col["L"]]
                           + [self.size(s)[0] for s in summaries.values()], default=0),
                  "M": max([size[i.name][0] for i in col["M"]] + [note_w + 2 * PAD]),
                  "R": max([size[i.name][0] for i in col["R"]] + [nat_w])}
        xs, x = {}, hx + BOX_PAD
        for c, w in widths.items():
            xs[c] = x
            x += w + (COL_GAP if w else 0)
        host_w = max(x - COL_GAP - hx + BOX_PAD, (len(host.name) + self.marks) * TITLE_CHAR
                     + 2 * BOX_PAD)
        placed = []

        def stack(want, c, w=None) -> float:
            y = htop
            for ytop, i in _stack(want, htop):
                if isinstance(i, int):              # a summary of hidden veths
                    rect = Rect(xs[c], ytop, widths[c], self.size(summaries[i])[1])
                    masters = {p.master for p in runs[i]}
                    placed.append(Chip(host.name, f"\u2026{i}", "summary", rect, summaries[i],
                                       SAME, (f"\u2026{i}", ""),
                                       masters.pop() if len(masters) == 1 else None))
                    self.chips[(host.name, f"\u2026{i}")] = rect
                else:
                    rect = Rect(xs[c], ytop, w or size[i.name][0], size[i.name][1])
                    placed.append(self.chip(host.name, i, rect))
                y = rect.bottom + CHIP_GAP
            return y

        def centred(cy: float, h: float) -> float:
            return cy - h / 2

        want = [(centred(self.chips[i.peer].cy, size[i.name][1]) if i.peer in self.chips
                 else htop, size[i.name][1], i) for i in col["L"]]
        want += [(centred(self.chips[(f"\u2026{k}", "")].cy, self.size(s)[1]), self.size(s)[1], k)
                 for k, s in summaries.items()]
        stack(want, "L", widths["L"])
        ports = list(placed)
        want = []
        for i in col["M"]:
            ys = [c.rect.cy for c in ports if c.master == i.name]
            pref = centred(sum(ys) / len(ys), size[i.name][1]) if ys and i.kind == "bridge" else htop
            want.append((pref if i.kind != "loopback" else htop - 1, size[i.name][1], i))
        y = stack(want, "M")
        notes = [Note("notes", Rect(xs["M"] + 2 * PAD, y, note_w, note_h), tuple(host.notes))] \
            if host.notes else []
        bridges = [c for c in placed if c.kind == "bridge"]
        mid = (bridges[0].rect.cy if bridges else
               sum(c.rect.cy for c in ports) / len(ports) if ports else htop)
        y = stack([(centred(mid, size[i.name][1]), size[i.name][1], i) for i in col["R"]], "R")
        if host.nat:
            notes.append(Note("nat", Rect(xs["R"], y, nat_w, nat_h), tuple(host.nat)))
        bottom = max([c.rect.bottom for c in placed] + [n.rect.bottom for n in notes] + [htop])
        self.add(host, Rect(hx, self.top, host_w, bottom + BOX_PAD - self.top), placed, notes)

    def world(self, world: NsView) -> None:
        """Chips stacked, the one facing the host level with its peer; then notes."""
        wx = self.right + BOX_GAP
        ordered = sorted(world.ifs, key=lambda i: not (i.peer and i.peer in self.chips))
        sizes = [self.size(i.lines) for i in ordered]
        notes = world.notes + world.nat
        ww = max([w for w, _ in sizes] + [self.size(notes)[0] if notes else 0])
        ww = max(ww + 2 * BOX_PAD, (len(world.name) + self.marks) * TITLE_CHAR + 2 * BOX_PAD)
        wtop = self.top
        if ordered and ordered[0].peer in self.chips:
            wtop = max(self.top, self.chips[ordered[0].peer].cy - sizes[0][1] / 2 - self.title_h)
        y, placed = wtop + self.title_h, []
        for i, (w, h) in zip(ordered, sizes):
            placed.append(self.chip(world.name, i, Rect(wx + BOX_PAD, y, w, h)))
            y += h + CHIP_GAP
        blocks = ()
        if notes:
            nw, nh = self.size(notes)
            blocks = (Note("notes", Rect(wx + BOX_PAD, y, nw, nh), tuple(notes)),)
            y += nh + CHIP_GAP
        self.add(world, Rect(wx, wtop, ww, y - CHIP_GAP + BOX_PAD - wtop), placed, blocks)
