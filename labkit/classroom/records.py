"""The class's check records in SQLite: kept across restarts, read as the instructor's grid.

One row per check (labkit.lab.progress.Record), with the user the hub vouched for. What the
page and the API show is derived here, as plain data: each student's state per stage (not
started, working, done), the time from first check to done, the hints asked for, the last
unmet items, the faults drawn, and the class's most common unmet items now.
"""
from __future__ import annotations

import collections
import csv
import io
import json
import sqlite3
import threading

from ..lab.progress import Record
from ..model import stages

SCHEMA = """CREATE TABLE IF NOT EXISTS checks (
    id INTEGER PRIMARY KEY, user TEXT NOT NULL, lab TEXT NOT NULL, stage TEXT NOT NULL,
    done INTEGER NOT NULL, unmet TEXT NOT NULL, hints INTEGER NOT NULL, fault TEXT,
    time REAL NOT NULL)"""


class Store:
    """The records of one class, in the SQLite file `path` (":memory:" for none)."""

    def __init__(self, path: str):
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock, self._db:
            self._db.execute(SCHEMA)

    def add(self, record: Record) -> None:
        """Keep `record` (its user is the one the hub authenticated)."""
        with self._lock, self._db:
            self._db.execute("INSERT INTO checks (user, lab, stage, done, unmet, hints, fault, time) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             (record.user, record.lab, record.stage, int(record.done),
                              json.dumps(list(record.unmet)), record.hints, record.fault, record.time))

    def records(self) -> list[Record]:
        """Every record, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT user, lab, stage, done, unmet, hints, fault, time "
                                    "FROM checks ORDER BY time, id").fetchall()
        return [Record(u, lab, s, bool(d), tuple(json.loads(un)), h, f, t)
                for u, lab, s, d, un, h, f, t in rows]


def progress(records: list[Record]) -> dict:
    """The class as the instructor's page shows it (JSON-ready): per student and stage the
    state, checks, hints, minutes from first check to done, last unmet items and faults; and
    the most common unmet items among each student's last check of each stage not yet done."""
    cells: dict[tuple[str, str], list[Record]] = collections.defaultdict(list)
    for record in records:
        cells[(record.user, record.stage)].append(record)
    students = sorted({user for user, _ in cells})
    known = [s for s in stages.STAGES if any(stage == s for _, stage in cells)]
    order = known + sorted({stage for _, stage in cells} - set(known))
    grid = {}
    common: collections.Counter = collections.Counter()
    for (user, stage), checks in cells.items():
        done = next((r for r in checks if r.done), None)
        last = checks[-1]
        grid.setdefault(user, {})[stage] = {
            "state": "done" if done else "working", "checks": len(checks),
            "hints": max(r.hints for r in checks),
            "minutes": round((done.time - checks[0].time) / 60, 1) if done else None,
            "unmet": [] if done else list(last.unmet),
            "faults": sorted({r.fault for r in checks if r.fault}),
        }
        if not done:
            common.update(set(last.unmet))
    return {"students": students, "stages": order, "grid": grid,
            "common": [{"item": item, "students": n, "of": len(students)}
                       for item, n in common.most_common(10)]}


def as_csv(records: list[Record]) -> str:
    """Every record as CSV, one row per check (the fault included: this is the instructor's)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["user", "lab", "stage", "done", "unmet", "hints", "fault", "time"])
    for r in records:
        writer.writerow([r.user, r.lab, r.stage, int(r.done), " ".join(r.unmet), r.hints,
                         r.fault or "", f"{r.time:.3f}"])
    return out.getvalue()
