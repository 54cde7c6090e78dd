"""Benchmark: a class on one machine's JupyterHub (issue 22). N students log in through the
real hub at once, from the shipped config (examples/jupyterhub, PAM, each server running as
its student), and each runs notebook 01's practice and check on the labkit kernel, in a
world of its own, through the hub's proxy (REST API, kernel websocket), as
tests/test_hub_students.py does for two.

    sudo python3 benchmarks/classroom.py [--students 30] [--readme]

Per student: the time from the login (all N at once) to the first output of the practice cell
(`task = lab.practice("veth")`: what the student first sees of the lab), and to the check
that says "done" after the your-turn cells. The machine's memory: MemAvailable before, and
its lowest (sampled every 0.5 s) while every student's server, kernel and world is up. And
whether every check reached the instructors' page (labkit-class's API, read as an
instructor: each student's two checks, the last one done; checks are posted in the
background, so the page is read until all are there or a minute has passed). The hub's log
(the students' servers' too) is kept in /tmp/labkit-bench-classroom-N.log. The N users
(lkc...) are made with useradd and removed after with every process of theirs, however the
run ends.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

sys.path[:0] = [common.REPO, os.path.join(common.REPO, "tests")]
from labkit.cli.rootless import kernel_spec  # noqa: E402
from harness import new_users  # noqa: E402
from test_hub_students import Kernel, ShippedHub, _your_turn_cells  # noqa: E402
from test_rootless import _python_for  # noqa: E402

EXTRA = """
c.Spawner.http_timeout = 600
c.Spawner.start_timeout = 600
c.JupyterHub.concurrent_spawn_limit = 0
"""


def mem_available() -> int:
    with open("/proc/meminfo") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))


def server_state(hub: ShippedHub, name: str) -> str:
    """"ready", "pending", or "gone" (no server: the login started one, so the hub ended it)."""
    status, text = hub.call("GET", f"/hub/api/users/{name}", hub.admin, timeout=60)
    if status != 200:
        return "pending"
    server = json.loads(text).get("servers", {}).get("")
    if server is None:
        return "gone"
    return "ready" if server.get("ready") else "pending"


def student_run(hub: ShippedHub, name: str, password: str, cells: list[str], start: threading.Event,
                out: dict) -> None:
    """One student: log in, wait for the server, open a kernel, run the cells; record times."""
    try:
        start.wait()
        t0 = time.monotonic()
        hub.login(name, password, timeout=900)
        deadline = time.monotonic() + 900
        while (state := server_state(hub, name)) != "ready":   # every 0.5 s: N students poll the hub
            if state == "gone":      # the hub gave up on it (a student would see an error page)
                raise RuntimeError("the hub stopped the server before it was ready (its log says why)")
            if time.monotonic() > deadline:
                raise RuntimeError("server not ready in 900 s")
            time.sleep(0.5)
        out["server"] = time.monotonic() - t0
        kernel = Kernel(hub, name, hub.token_for(name, timeout=60), timeout=900)
        practice = next(i for i, c in enumerate(cells) if "lab.practice(" in c)
        said = []
        for i, cell in enumerate(cells):
            out["at"] = f"cell {i}: {cell[:40]!r}"
            said.append(kernel.run(cell, timeout=900))
            if i == practice:
                out["first_output"] = kernel.first_output - t0
        out["check"] = time.monotonic() - t0
        out["done"] = "stage veth: done" in said[-1]
        out["posted"] = "labkit: checks" not in "".join(said)
        out["said"] = [line for line in "".join(said).splitlines() if line.startswith("labkit: checks")]
        kernel.run("lab.down()", timeout=300)
        kernel.close()
    except Exception:
        out["error"] = out.get("at", "before the kernel") + ": " + traceback.format_exc()[-600:]


def run(students: int) -> dict:
    info = common.machine()
    print("machine:", common.machine_line(info), flush=True)
    public = tempfile.mkdtemp(prefix="labkit-bench-class-")
    os.chmod(public, 0o755)
    try:
        with new_users(students, "lkc") as passwords:
            names = sorted(passwords)
            python, env = _python_for(names[0])
            kernels = os.path.join(public, "jupyter", "kernels", "labkit")
            os.makedirs(kernels)
            for d in (os.path.join(public, "jupyter"), os.path.dirname(kernels), kernels):
                os.chmod(d, 0o755)
            with open(os.path.join(kernels, "kernel.json"), "w") as f:
                json.dump(kernel_spec(python), f)
            jupyter_path = os.pathsep.join([os.path.join(public, "jupyter"),
                                            os.path.join(sys.prefix, "share", "jupyter")])
            hubdir = os.path.join(public, "hub")
            os.mkdir(hubdir, 0o700)
            hub = ShippedHub(hubdir, names, python, env.get("PYTHONPATH", common.REPO), jupyter_path, EXTRA)
            hub.start()
            try:
                before = mem_available()
                lowest, sampling = [before], threading.Event()

                def sample():       # the least memory available while the class works
                    while not sampling.wait(0.5):
                        lowest.append(mem_available())
                sampler = threading.Thread(target=sample)
                sampler.start()
                cells = _your_turn_cells()
                results = {n: {} for n in names}
                start = threading.Event()
                threads = [threading.Thread(target=student_run, args=(hub, n, passwords[n], cells, start, results[n]))
                           for n in names]
                for t in threads:
                    t.start()
                t0 = time.monotonic()
                start.set()
                for t in threads:
                    t.join()
                wall = time.monotonic() - t0
                sampling.set()
                sampler.join()
                during = min(lowest)
                teacher = hub.token_for("teacher", "access:services!service=labkit-class")
                checks = sum(1 for c in cells if c.strip() == 'lab.check("veth")')

                def on_page() -> int:    # students whose every check is on the page (posted in the background)
                    status, text = hub.call("GET", "/services/labkit-class/api/progress", teacher, timeout=60)
                    grid = json.loads(text)["grid"] if status == 200 else {}
                    return sum(1 for n in names if grid.get(n, {}).get("veth", {}).get("checks") == checks
                               and grid[n]["veth"]["state"] == "done")
                t1 = time.monotonic()
                while on_page() < students and time.monotonic() - t1 < 60:
                    time.sleep(1)
                late = time.monotonic() - t1
                reached = on_page()
                for n in names:
                    hub.call("DELETE", f"/hub/api/users/{n}/server", hub.admin, timeout=60)
            finally:
                hub.stop()
                shutil.copy(os.path.join(hubdir, "hub.log"), f"/tmp/labkit-bench-classroom-{students}.log")
    finally:
        shutil.rmtree(public, ignore_errors=True)
    errors = {n: r["error"] for n, r in results.items() if "error" in r}
    ok = [r for r in results.values() if "error" not in r]
    firsts = [r["first_output"] for r in ok]
    checks = [r["check"] for r in ok]
    return {"machine": info, "students": students, "wall": wall,
            "first_output": {"median": statistics.median(firsts) if firsts else None,
                             "max": max(firsts) if firsts else None},
            "check": {"median": statistics.median(checks) if checks else None, "max": max(checks) if checks else None},
            "server": {"median": statistics.median(r["server"] for r in ok) if ok else None},
            "done": sum(1 for r in ok if r["done"]), "posted": sum(1 for r in ok if r["posted"]),
            "reached_page": reached, "last_records_after_s": late, "errors": errors,
            "unposted": {n: r["said"] for n, r in results.items() if r.get("said")},
            "memory": {"total_gib": info["memory"], "available_before_gib": before / 2**30,
                       "available_lowest_gib": during / 2**30,
                       "used_per_student_mib": (before - during) / students / 2**20}}


def table(results: list[dict]) -> str:
    m = results[0]["machine"]
    lines = [f"Measured {m['date']} on {common.machine_line(m)}; `sudo python3 benchmarks/classroom.py "
             f"--students N`, all N logging in at the same moment:", "",
             "| students | login to the practice's first output, median / max | login to the check done, "
             "median / max | checks done / on the instructors' page | memory used (all up) | per student |",
             "|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        mem = r["memory"]
        lines.append(f"| {r['students']} | {r['first_output']['median']:.1f} s / {r['first_output']['max']:.1f} s "
                     f"| {r['check']['median']:.1f} s / {r['check']['max']:.1f} s "
                     f"| {r['done']} of {r['students']} / {r['reached_page']} of {r['students']} "
                     f"| {(mem['available_before_gib'] - mem['available_lowest_gib']):.1f} GiB of {mem['total_gib']} "
                     f"| {mem['used_per_student_mib']:.0f} MiB |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--students", type=int, action="append", help="how many (repeatable; default 30)")
    ap.add_argument("--readme", action="store_true")
    args = ap.parse_args()
    common.require_root()
    results = []
    for n in args.students or [30]:
        r = run(n)
        results.append(r)
        print(json.dumps({k: v for k, v in r.items() if k != "machine"}, indent=1), flush=True)
        common.save_result(f"classroom-{n}", r)
    print(table(results))
    if args.readme:
        common.update_readme("classroom", table(results))


if __name__ == "__main__":
    main()
