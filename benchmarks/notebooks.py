"""Benchmark: the whole notebook suite under nbval (as the test suite runs it), wall time.

    sudo python3 benchmarks/notebooks.py [--readme]

The notebooks use the default lab (the seed's names). So that this run cannot collide with
anyone else's lab on the machine, it keeps its namespaces, journals and /etc files in
directories of its own (LABKIT_NETNS_DIR, LABKIT_RUN_DIR, LABKIT_ETC_NETNS under
/run/bnnb-*; labkit then enters namespaces with nsenter instead of `ip netns exec`), and
removes them after. Whole process wall time of `python -m pytest notebooks/`, and per notebook
from pytest's durations.
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def run() -> dict | None:
    notebooks = sorted(glob.glob(os.path.join(common.REPO, "notebooks", "*.ipynb")))
    if not notebooks:
        return None
    base = common.unique("bnnb", 6)
    dirs = {"LABKIT_NETNS_DIR": f"/run/{base}-netns", "LABKIT_RUN_DIR": f"/run/{base}-labkit",
            "LABKIT_ETC_NETNS": f"/run/{base}-etc"}
    env = {**common.python_env(), **dirs}
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=0",
            "--durations-min=0", *notebooks]
    try:
        result = common.run_timed(argv, env=env, timeout=3600)
    finally:
        subprocess.run([sys.executable, "-m", "labkit", "clean"], env=env, capture_output=True)
        for d in dirs.values():  # labkit bind-mounts the namespace directory on itself
            while os.path.ismount(d):
                if subprocess.run(["umount", d], capture_output=True).returncode != 0:
                    break
            shutil.rmtree(d, ignore_errors=True)
    per = {}
    for line in result.stdout.splitlines():
        m = re.match(r"\s*([\d.]+)s (setup|call|teardown)\s+(\S+?\.ipynb)", line)
        if m:
            name = os.path.basename(m.group(3))
            per[name] = per.get(name, 0.0) + float(m.group(1))
    summary = next((line.strip("= ") for line in reversed(result.stdout.splitlines())
                    if " passed" in line or " failed" in line or " error" in line), "")
    return {"seconds": result.seconds, "status": result.status, "summary": summary,
            "notebooks": len(notebooks), "per_notebook": per,
            "tail": result.stdout[-3000:] + result.stderr[-2000:]}


def table(r: dict | None) -> str:
    if r is None:
        return "No notebooks in notebooks/: not measured."
    out = [f"**Notebook suite**: {r['notebooks']} notebooks, `python -m pytest notebooks/` "
           f"(nbval as configured in pyproject.toml): **{r['seconds']:.1f} s** wall; "
           f"result: {r['summary'] or 'exit ' + str(r['status'])}.\n",
           "| notebook | seconds (pytest setup + call + teardown, summed over its cells) |", "|---|---:|"]
    for name, seconds in sorted(r["per_notebook"].items()):
        out.append(f"| {name} | {seconds:.1f} |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--readme", action="store_true")
    args = ap.parse_args()
    common.require_root()
    info = common.machine()
    print("machine:", common.machine_line(info), flush=True)
    t = time.monotonic()
    r = run()
    text = table(r) + f"\n\nMachine: {common.machine_line(info)}."
    print(text)
    if r and r["status"] != 0:
        print(r["tail"])
    common.save_result("notebooks", {"machine": info, "result": r, "wall": time.monotonic() - t})
    if args.readme:
        common.update_readme("notebooks", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
