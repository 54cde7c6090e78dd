"""The record of each check: who checked which stage of which lab, done or not, what was unmet
(by id), how many hints were asked for, the fault the lab carried, and when.

Every `check` (`labkit check`, `lab.check`, `lab.hint`) appends one record, a line of JSON, to
progress.jsonl in the user's state directory (LABKIT_STATE_DIR, default
~/.local/state/labkit, the same inside a normal user's world); `labkit progress` shows one's
own, without the fault (a mystery fault stays one). Under a JupyterHub whose configuration
names the class's service (LABKIT_CLASS_URL, examples/jupyterhub), the record is also posted
there with the token the hub gave the student's server (JUPYTERHUB_API_TOKEN): the
instructor's live view (labkit.classroom). Recording never makes a check fail: what cannot
be written or posted is said once, and the check goes on.
"""
from __future__ import annotations

import json
import os
import pwd
import re
import sys
import time
from dataclasses import asdict, dataclass

from ..kernel import outside, userns

FILE = "progress.jsonl"
_said: set[str] = set()


@dataclass(frozen=True)
class Record:
    """One check, as the instructor's view needs it."""
    user: str
    lab: str
    stage: str
    done: bool
    unmet: tuple[str, ...]     # ids of the unmet items (`item_id`), in the lesson's order
    hints: int                 # the hint level asked for: 0 none, 1 where to look, 2 the fix
    fault: str | None          # the fault the lab was brought up with (None: none)
    time: float                # seconds since the epoch

    def to_dict(self) -> dict:
        """JSON-ready."""
        return {**asdict(self), "unmet": list(self.unmet)}

    @classmethod
    def from_dict(cls, data: dict) -> Record:
        """A record read back (`to_dict`'s form)."""
        return cls(str(data["user"]), str(data["lab"]), str(data["stage"]), bool(data["done"]),
                   tuple(data.get("unmet", ())), int(data.get("hints", 0)), data.get("fault"),
                   float(data["time"]))


def item_id(item) -> str:
    """A check item's id: its layer and its finding as a slug ("links/veth1-is-not-a-port-of-br0"),
    the same for every student who meets the same problem (names are the seed's in a world)."""
    slug = re.sub(r"[^a-z0-9.]+", "-", item.what.lower()).strip("-")
    return f"{item.layer}/{slug[:80]}"


def user() -> str:
    """Who is checking: the hub's user, else the one who ran sudo, else the user this process
    is (outside a world: inside one, uid 0 stands for the user of the world's uid map)."""
    for variable in ("JUPYTERHUB_USER", "SUDO_USER"):
        if os.environ.get(variable):
            return os.environ[variable]
    uid = userns.machine_uid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def of(result, fault: str | None, hints: int) -> Record:
    """The record of a check's `result` (a labkit.lab.verdict.Result)."""
    return Record(user(), result.lab, result.stage, result.ok,
                  tuple(item_id(i) for i in result.unmet), hints, fault, time.time())


def path() -> str:
    """The user's progress file (in LABKIT_STATE_DIR as it is now, else the world's state
    directory, which a world keeps the same inside as outside)."""
    from ..kernel import world
    return os.path.join(os.environ.get("LABKIT_STATE_DIR") or world.state_dir(), FILE)


def save(record: Record) -> bool:
    """Append `record` to the user's progress file; False (said once on stderr) if it cannot."""
    target = path()
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "a") as f:
            f.write(json.dumps(record.to_dict(), sort_keys=True) + "\n")
        return True
    except OSError as e:
        if target not in _said:
            _said.add(target)
            print(f"labkit: checks are not recorded: cannot write {target} ({e.strerror}); set "
                  f"LABKIT_STATE_DIR to a directory of yours", file=sys.stderr)
        return False


def keep(record: Record) -> None:
    """Save `record` in the user's file, and post it to the class's service under a hub: in
    the background where a thread is kept on the machine's network (a world's kernel or
    command, labkit.kernel.outside), so a check never waits on a busy hub."""
    save(record)
    post(record, background=True)


def post(record: Record, timeout: float = 5.0, background: bool = False) -> bool:
    """Send `record` to the class's service when a hub runs this server (LABKIT_CLASS_URL and
    JUPYTERHUB_API_TOKEN set); False (said once) if it could not, True if sent or no hub.
    `background`: where a thread is kept on the machine's network, hand it the post (with
    a minute to go through) and return True at once; a command's process waits for it at exit."""
    url, token = os.environ.get("LABKIT_CLASS_URL"), os.environ.get("JUPYTERHUB_API_TOKEN")
    if not url or not token:
        return True
    import urllib.error
    import urllib.request
    target = url.rstrip("/") + "/api/records"
    request = urllib.request.Request(target, data=json.dumps(record.to_dict()).encode(), method="POST",
                                     headers={"Authorization": f"token {token}",
                                              "Content-Type": "application/json"})

    def send(timeout: float) -> bool:
        try:
            with urllib.request.urlopen(request, timeout=timeout) as reply:
                return reply.status == 201
        except (urllib.error.URLError, OSError) as e:
            if target not in _said:
                _said.add(target)
                print(f"labkit: checks do not reach the class's page: {target}: {e}", file=sys.stderr)
            return False
    if background and outside.kept():
        outside.submit(send, 60.0)
        return True
    return outside.call(send, timeout)   # from the machine's network: a world's own has no way to the hub


def load() -> list[Record]:
    """The user's records, oldest first (lines that cannot be read are skipped)."""
    try:
        with open(path()) as f:
            lines = f.read().splitlines()
    except (FileNotFoundError, NotADirectoryError):
        return []
    records = []
    for line in lines:
        try:
            records.append(Record.from_dict(json.loads(line)))
        except (ValueError, KeyError, TypeError):
            continue
    return records


def summary(records: list[Record]) -> str:
    """One line per lab and stage checked: done or not, checks, hints, what was last unmet;
    the faults are not shown (a student's mystery stays one)."""
    if not records:
        return "no checks recorded yet: `labkit check STAGE` records one"
    rows: dict[tuple[str, str], list[Record]] = {}
    for record in records:
        rows.setdefault((record.lab, record.stage), []).append(record)
    lines = []
    for (lab, stage), checks in rows.items():
        last = checks[-1]
        done = next((r for r in checks if r.done), None)
        took = f"done after {checks.index(done) + 1} check(s)" if done else "not done yet"
        hints = max(r.hints for r in checks)
        line = (f"lab {lab or '(default)'} stage {stage}: {took}; {len(checks)} check(s), "
                f"hints up to level {hints}")
        if not last.done and last.unmet:
            line += f"; last unmet: {', '.join(last.unmet)}"
        lines.append(line)
    return "\n".join(lines)
