"""The recorded run that ships with labkit: what each stage's traffic did on a real kernel.

For each stage, `PROBES` (a ping or an HTTP GET from a lab namespace to an address; those the
stages' checks send, and a few more) were sent by the traffic tester on a real kernel while
capturing at its default points: whether each was answered, the tester's one-line account, and
every packet captured (`traffic_log.json.gz` beside this module). The widgets replay it where
labs cannot run (their plan mode): the reachability table of a stage, a probe's capture.
`python -m labkit.teach.replay.log_traffic` (as root) makes the file again; a test compares a fresh
recording with the shipped one, so it cannot drift from what the kernel does.

Plain data and the standard library; packets come back as `labkit.capture.Packets`.
"""
from __future__ import annotations

import base64
import gzip
import html
import json
import os
from dataclasses import dataclass

from ...capture.packets import Packet, Packets, PointStats
from ...errors import UnknownName
from ...lab import reach
from ...model import plan, stages

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "traffic_log.json.gz")
PUBLISHED = reach.PUBLISHED


def _probes() -> tuple[tuple[str, str, str], ...]:
    """(source, target, method) of every probe of every stage's check, then a few more."""
    more = [("host", plan.container_address(0)), ("host", plan.container_address(1)),
            ("netns0", plan.container_address(1)), ("netns1", plan.container_address(0)),
            ("netns0", plan.WORLD_ADDRESS), ("netns0", plan.PUBLIC_SERVER),
            ("world", plan.container_address(0)), ("netns0", reach.WHOAMI),
            ("world", PUBLISHED), ("host", PUBLISHED), ("netns0", PUBLISHED), ("netns1", PUBLISHED)]
    pairs = [(p.source, p.target) for ps in reach.PROBES.values() for p in ps
             if not p.target.startswith(reach.NAME)] + more      # a lookup is no ping nor GET
    return tuple((s, t, "http" if t.startswith("http") else "ping") for s, t in dict.fromkeys(pairs))


PROBES = _probes()


def key(source: str, target: str, method: str) -> tuple[str, str, str]:
    """A probe's key: its target as the tester reads it ("10.0.2.15:5000" is a URL for http)."""
    target = target.strip()
    if method == "http":
        target = target if "://" in target else f"http://{target}/"
    else:
        target = target.split("://")[-1].split("/")[0].split(":")[0]
    return source, target, method


@dataclass(frozen=True)
class Take:
    """One probe as recorded: answered or not, the tester's account, the packets captured."""
    stage: str
    source: str
    target: str
    method: str
    ok: bool
    said: str
    frames: tuple = ()
    stats: tuple = ()

    @property
    def packets(self) -> Packets:
        """The packets captured during the probe (times as recorded, from 0)."""
        return Packets((Packet(t, point, d, kind, base64.b64decode(data), wire, upper, seq)
                        for t, point, d, kind, data, wire, upper, seq in self.frames),
                       (PointStats(*s) for s in self.stats))

    @property
    def expect(self) -> bool | None:
        """What the stage's check expects of this probe (None: it does not probe it)."""
        for p in reach.PROBES.get(self.stage, ()):
            if (p.source, p.target) == (self.source, self.target):
                return p.expect
        return None


def encode(packets: Packets | None) -> tuple[list, list]:
    """(frames, stats) of `packets` as stored (times relative to the first frame)."""
    if packets is None or not len(packets):
        return [], [list(s.__dict__.values()) for s in (packets.stats.values() if packets else ())]
    t0 = packets[0].time_ns
    frames = [[p.time_ns - t0, p.point, p.direction, p.pkttype, base64.b64encode(p.data).decode(),
               p.wirelen, p.upper, p.seq] for p in packets]
    stats = [[s.point, s.captured, s.seen, s.dropped, s.gone] for s in packets.stats.values()]
    return frames, stats


class Recording:
    """The takes of a recorded run, by stage (`load()` reads the shipped one)."""

    def __init__(self, data: dict):
        self.date = data.get("recorded", "")
        self.points = tuple(data.get("points", ()))
        self.takes = {stage: [Take(stage, *(t[k] for k in ("source", "target", "method", "ok", "said")),
                                   tuple(map(tuple, t.get("frames", ()))),
                                   tuple(map(tuple, t.get("stats", ()))))
                              for t in takes]
                      for stage, takes in data.get("stages", {}).items()}

    def take(self, stage: str, source: str, target: str, method: str = "ping") -> Take | None:
        """The recorded probe, or None if it was not recorded at that stage."""
        stages.check_stage(stage)
        wanted = key(source, target, method)
        return next((t for t in self.takes.get(stage, ()) if key(t.source, t.target, t.method) == wanted),
                    None)

    def packets(self, stage: str, source: str, target: str, method: str = "ping") -> Packets:
        """The capture of a recorded probe; UnknownName naming those recorded if it was not."""
        take = self.take(stage, source, target, method)
        if take is None:
            said = ", ".join(f"{t.source} -> {t.target}" for t in self.takes.get(stage, ()))
            raise UnknownName(f"no {method} from {source} to {target} was recorded at stage "
                              f"{stage}; recorded there: {said or 'nothing'}")
        return take.packets

    def first_working(self, source: str, target: str, method: str) -> str | None:
        """The first stage at which this probe was answered (None: at none)."""
        for stage in stages.STAGES:
            take = self.take(stage, source, target, method)
            if take is not None and take.ok:
                return stage
        return None

    def table(self, stage: str) -> str:
        """The stage's reachability as recorded: an HTML table (source, target, answer)."""
        rows = []
        for t in self.takes.get(stage, ()):
            color = "#138a36" if t.ok else "#c62828"
            expect = "" if t.expect is None else ("expected" if t.expect == t.ok else "NOT expected")
            rows.append(f"<tr><td>{html.escape(t.source)}</td><td>{t.method}</td>"
                        f"<td>{html.escape(t.target)}</td><td style=\"color:{color}\">"
                        f"{'answered' if t.ok else 'no answer'}</td><td>{expect}</td></tr>")
        return ('<table class="labkit-reachability"><thead><tr><th>from</th><th>send</th>'
                "<th>to</th><th>recorded</th><th>check</th></tr></thead><tbody>"
                + "".join(rows) + "</tbody></table>"
                + f"<p><small>recorded on a real kernel on {html.escape(self.date)}; "
                  "run it yourself in a VM</small></p>")


_cache: dict[str, Recording] = {}


def load(path: str = PATH) -> Recording:
    """The recorded run at `path` (default: the one shipped with labkit); an empty one if the
    file is missing."""
    if path not in _cache:
        try:
            with gzip.open(path, "rt", encoding="utf-8") as f:
                _cache[path] = Recording(json.load(f))
        except FileNotFoundError:
            return Recording({})
    return _cache[path]


def write(path: str, data: dict) -> None:
    """Store a recorded run (gzip'd JSON, stable: the same run gives the same bytes)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    with open(path, "wb") as f:
        f.write(gzip.compress(text.encode(), mtime=0))
