"""Benchmark: normal users' worlds (issue 15): what a world costs to start and to keep, a
stage's up time as root and as a user, and how many worlds at `publish`, each with a capture
running, this machine holds: one after another, then all at once.

    sudo python3 benchmarks/worlds.py [--worlds 30] [--rounds 5] [--user labkit-u1]

Runs as root and acts as a normal user (made with useradd if missing) through runuser. A
user has one world per state directory: the N worlds are N state directories of that user
(LABKIT_STATE_DIR), each a world of its own (its own user, network and mount namespaces and
keeper), as N students' would be; the kernel's per-user counts then all fall on one user.
Each world is brought to `publish` (`labkit up publish`) and runs `labkit capture host:br0`
(one TPACKET_V3 ring of 64 MiB) until the end; every world is checked (`labkit check
publish`, real traffic) while all of them run. Memory: MemAvailable of the machine before and
with all worlds up, and the processes in each world (count, RSS and PSS summed). Root's labs
are named bn....; every world is ended at the end (down), and the script checks that no
process of the user is left.
"""
from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import signal
import statistics
import subprocess
import sys
import sysconfig
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

sys.path.insert(0, common.REPO)
from labkit.kernel import userns, world  # noqa: E402

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
STATES = "/tmp/labkit-bench-worlds"


class User:
    """A normal user, and how to run labkit as it (an interpreter it can reach)."""

    def __init__(self, name: str):
        try:
            pwd.getpwnam(name)
        except KeyError:
            subprocess.run(["useradd", "-m", name], check=True)
        entry = pwd.getpwnam(name)
        self.name, self.uid, self.home = name, entry.pw_uid, entry.pw_dir
        self.env = {"PATH": PATH, "HOME": self.home, "USER": name, "LANG": "C.UTF-8",
                    "PYTHONPYCACHEPREFIX": f"/tmp/labkit-pycache-{name}"}
        self.python = self._python()

    def _python(self) -> str:
        purelib = sysconfig.get_paths()["purelib"]
        for python, extra in ((sys.executable, {}),
                              ("/usr/bin/python3", {"PYTHONPATH": f"{common.REPO}:{purelib}"})):
            self.env.update(extra)
            if subprocess.run(self.argv(python, "-c", "import labkit.cli, pyroute2"),
                              capture_output=True).returncode == 0:
                return python
        sys.exit(f"user {self.name} cannot run Python with labkit importable")

    def argv(self, *argv: str, state: str | None = None) -> list[str]:
        env = {**self.env, **({"LABKIT_STATE_DIR": state} if state else {})}
        return ["runuser", "-u", self.name, "--", "env", "-i",
                *[f"{k}={v}" for k, v in env.items()], *argv]

    def labkit(self, *argv: str, state: str | None = None, check: bool = True):
        result = subprocess.run(self.argv(self.python, "-m", "labkit", *argv, state=state),
                                capture_output=True, text=True, cwd="/tmp", timeout=300)
        if check and result.returncode != 0:
            raise SystemExit(f"labkit {' '.join(argv)} as {self.name} failed: {result.stderr}")
        return result

    def processes(self) -> list[int]:
        return [int(e) for e in os.listdir("/proc") if e.isdigit() and _owner(e) == self.uid
                and world.start_time(int(e)) is not None]


def _owner(pid: str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def root_env(user: User) -> dict:
    """Root's environment for labkit, with the user's interpreter and bytecode cache: the
    figures then differ only by the world."""
    env = common.python_env()
    env.update({k: v for k, v in user.env.items() if k in ("PYTHONPATH", "PYTHONPYCACHEPREFIX")})
    env["PYTHONPYCACHEPREFIX"] = "/tmp/labkit-pycache-root"
    return env


def timed(argv: list[str], env: dict | None = None) -> float:
    t = time.monotonic()
    subprocess.run(argv, check=True, capture_output=True, cwd="/tmp", env=env)
    return time.monotonic() - t


def mem_available() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def memory_of(pids: list[int]) -> tuple[int, int]:
    """(RSS, PSS) summed over `pids`, in bytes (smaps_rollup)."""
    rss = pss = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
        except OSError:
            continue
    return rss, pss


def world_of(state: str) -> world.World:
    with open(os.path.join(state, world.STATE_FILE)) as f:
        return world.World(**json.load(f))


def in_world(w: world.World) -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit() and userns.inode(e) == w.userns
            and world.start_time(int(e)) is not None]


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def startup(user: User, rounds: int) -> dict:
    """Keeper start and entering, in-process; `labkit shell -- true` as root, as a user with
    no world (it starts one and ends it) and with one (it only enters)."""
    code = ("import time, statistics\nfrom labkit.kernel import keeper, world, userns\n"
            "starts = []\n"
            f"for _ in range({rounds}):\n"
            "    t = time.perf_counter(); pid = keeper.start(); starts.append(time.perf_counter() - t)\n"
            "    world.end(world.World(pid, world.start_time(pid), userns.inode(pid), world._boot(), 0))\n"
            "print(statistics.median(starts))\n")
    out = subprocess.run(user.argv(user.python, "-c", code), capture_output=True, text=True,
                         check=True, cwd="/tmp").stdout
    keeper_start = float(out)
    enter = []
    user.labkit("up", "veth")
    for _ in range(rounds):
        out = subprocess.run(user.argv(user.python, "-c", "import time; from labkit.kernel import world\n"
                                       "t = time.perf_counter(); world.enter(); print(time.perf_counter() - t)"),
                             capture_output=True, text=True, check=True, cwd="/tmp").stdout
        enter.append(float(out))
    joined = [timed(user.argv(user.python, "-m", "labkit", "shell", "--", "true")) for _ in range(rounds)]
    user.labkit("down")
    fresh = [timed(user.argv(user.python, "-m", "labkit", "shell", "--", "true")) for _ in range(rounds)]
    as_root = [timed([user.python, "-m", "labkit", "shell", "--", "true"], root_env(user))
               for _ in range(rounds)]
    return {"keeper start (in-process)": keeper_start, "enter a world (in-process)": statistics.median(enter),
            "labkit shell -- true, root": statistics.median(as_root),
            "labkit shell -- true, user, no world (start, enter, end)": statistics.median(fresh),
            "labkit shell -- true, user, world running (enter)": statistics.median(joined)}


def stage_times(user: User, rounds: int, stage: str = "publish") -> dict:
    """`labkit up STAGE` and `down`, whole processes, as root (a lab of its own) and as a user
    (the default lab, in a world that up starts and down ends), by the same interpreter."""
    name = common.unique("bn")
    env = root_env(user)
    root_up, root_down, user_up, user_down = [], [], [], []
    for _ in range(rounds):
        root_up.append(timed([user.python, "-m", "labkit", "up", stage, "--lab", name], env))
        root_down.append(timed([user.python, "-m", "labkit", "down", "--lab", name], env))
        user_up.append(timed(user.argv(user.python, "-m", "labkit", "up", stage)))
        user_down.append(timed(user.argv(user.python, "-m", "labkit", "down")))
    med = statistics.median
    return {f"up {stage}, root": med(root_up), f"up {stage}, user (starts the world)": med(user_up),
            "down, root": med(root_down), "down, user (ends the world)": med(user_down)}


def many(user: User, n: int, together: bool) -> dict:
    """N worlds at `publish`, each with a capture running: brought up one after another or all
    at once; all checked while all run; memory; then all ended."""
    states = [os.path.join(STATES, f"w{i:02d}") for i in range(n)]
    for state in states:
        subprocess.run(["install", "-d", "-o", user.name, state], check=True)
    before = mem_available()
    t0 = time.monotonic()
    ups = []
    if together:
        procs = [subprocess.Popen(user.argv(user.python, "-m", "labkit", "up", "publish", state=s),
                                  cwd="/tmp", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for s in states]
        for p in procs:
            if p.wait(timeout=600) != 0:
                raise SystemExit(f"up failed: {p.stderr.read()}")
    else:
        for s in states:
            t = time.monotonic()
            user.labkit("up", "publish", state=s)
            ups.append(time.monotonic() - t)
    up_all = time.monotonic() - t0
    captures = [subprocess.Popen(user.argv(user.python, "-m", "labkit", "capture", "host:br0", "-q", state=s),
                                 cwd="/tmp", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for s in states]
    worlds = [world_of(s) for s in states]
    try:
        ready = wait_until(lambda: all(any(_is_capture(p) for p in in_world(w)) for w in worlds), 120)
        time.sleep(0.5)  # let each capture open its ring (polled above: its process is there)
        after = mem_available()
        per = [(len(in_world(w)), *memory_of(in_world(w))) for w in worlds]
        checked = sum(user.labkit("check", "publish", state=s, check=False).returncode == 0
                      for s in states)
    finally:
        for w in worlds:
            for pid in in_world(w):
                if _is_capture(pid):
                    os.kill(pid, signal.SIGINT)
        for c in captures:
            c.communicate(timeout=60)
    t1 = time.monotonic()
    for s in states:
        user.labkit("down", state=s)
    down_all = time.monotonic() - t1
    ended = wait_until(lambda: not any(in_world(w) for w in worlds), 30)
    shutil.rmtree(STATES, ignore_errors=True)
    med = statistics.median
    return {"worlds": n, "captures running": ready, "checked ok (publish, real traffic)": checked,
            "up, all (s)": up_all, "up, each (median s)": med(ups) if ups else None,
            "down, all (s)": down_all, "all ended": ended,
            "processes per world (median)": med(p[0] for p in per),
            "RSS per world (median MiB)": med(p[1] for p in per) / 2**20,
            "PSS per world (median MiB)": med(p[2] for p in per) / 2**20,
            "MemAvailable drop, all (MiB)": (before - after) / 2**20,
            "MemAvailable drop per world (MiB)": (before - after) / n / 2**20}


def _is_capture(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline") as f:
            return "capture" in f.read()
    except OSError:
        return False


def keeper_cost(user: User) -> dict:
    """One idle world: its keeper's RSS and PSS."""
    user.labkit("up", "veth")
    try:
        w = world.World(**json.load(open(os.path.join(user.home, ".local/state/labkit", world.STATE_FILE))))
        rss, pss = memory_of([w.pid])
        return {"keeper RSS (KiB)": rss / 1024, "keeper PSS (KiB)": pss / 1024}
    finally:
        user.labkit("down")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worlds", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--user", default="labkit-u1")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("worlds.py runs as root (it acts as a normal user through runuser)")
    user = User(args.user)
    if user.processes():
        sys.exit(f"user {user.name} has processes running: stop them first (labkit clean as it)")
    print(common.machine_line())
    results = {"machine": common.machine(), "user": user.name, "python": user.python}
    for title, run in (("start-up (s)", lambda: startup(user, args.rounds)),
                       ("keeper", lambda: keeper_cost(user)),
                       ("stage up and down (s, whole processes, median)", lambda: stage_times(user, args.rounds)),
                       (f"{args.worlds} worlds one after another", lambda: many(user, args.worlds, False)),
                       (f"{args.worlds} worlds all at once", lambda: many(user, args.worlds, True))):
        figures = run()
        results[title] = figures
        print(f"\n{title}")
        for key, value in figures.items():
            shown = f"{value:.3f}" if isinstance(value, float) else str(value)
            print(f"  {key:<58} {shown}")
    left = user.processes()
    print(f"\nprocesses of {user.name} left: {left or 'none'}")
    os.makedirs(common.RESULTS, exist_ok=True)
    with open(os.path.join(common.RESULTS, "worlds.json"), "w") as f:
        json.dump(results, f, indent=1, default=str)
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
