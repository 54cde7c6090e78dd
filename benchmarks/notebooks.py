"""Benchmark: the whole notebook suite under nbval (as the test suite runs it), wall time.

    sudo python3 benchmarks/notebooks.py [--readme]

The notebooks use the default lab (the seed's names: netns0, host, world). So that this run
cannot collide with anyone else's lab on the machine, pytest runs in a mount namespace of
its own (unshare --mount, private propagation) where /run/netns and /etc/netns are empty
tmpfs (/etc/netns inside an overlay of /etc whose changes go to a tmpfs, so nothing is made
on the machine's /etc); the journals go to a private LABKIT_RUN_DIR. labkit runs as it does for a student (`ip netns exec`, /etc/netns files), and
when the mount namespace ends nothing of it is left on the machine (`labkit clean` runs in it
first). Figures: wall time of `python -m pytest notebooks/` (nbval options from
pyproject.toml), and per notebook from pytest's durations.
"""
from __future__ import annotations

import glob
import os
import re
import shlex
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

SANDBOX = """set -e
mount -t tmpfs bnnb {s}
mkdir {s}/upper {s}/work {s}/netns {s}/run
mount -t overlay overlay -o lowerdir=/etc,upperdir={s}/upper,workdir={s}/work /etc
mkdir -p /etc/netns
mount -t tmpfs bnnb-etc-netns /etc/netns
mkdir -p /run/netns
mount --bind {s}/netns /run/netns
export LABKIT_RUN_DIR={s}/run
set +e
start=$(date +%s.%N)
{pytest}
status=$?
end=$(date +%s.%N)
{clean} >/dev/null 2>&1
echo "BNNB-SECONDS $start $end"
exit $status
"""


def run() -> dict | None:
    notebooks = sorted(glob.glob(os.path.join(common.REPO, "notebooks", "*.ipynb")))
    if not notebooks:
        return None
    scratch = f"/tmp/{common.unique('bnnb', 8)}"
    os.mkdir(scratch)
    py = shlex.quote(sys.executable)
    pytest = " ".join([py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=0",
                       "--durations-min=0", *map(shlex.quote, notebooks)])
    script = SANDBOX.format(s=scratch, pytest=pytest, clean=f"{py} -m labkit clean")
    try:
        result = common.run_timed(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                                  env=common.python_env(), timeout=3600)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    per = {}
    seconds = result.seconds
    for line in result.stdout.splitlines():
        m = re.match(r"\s*([\d.]+)s (setup|call|teardown)\s+(\S+?\.ipynb)", line)
        if m:
            name = os.path.basename(m.group(3))
            per[name] = per.get(name, 0.0) + float(m.group(1))
        if line.startswith("BNNB-SECONDS "):
            a, b = map(float, line.split()[1:])
            seconds = b - a
    summary = next((line.strip("= ") for line in reversed(result.stdout.splitlines())
                    if " passed" in line or " failed" in line or " error" in line), "")
    return {"seconds": seconds, "status": result.status, "summary": summary,
            "notebooks": len(notebooks), "per_notebook": per,
            "tail": result.stdout[-3000:] + result.stderr[-2000:]}


def table(r: dict | None) -> str:
    if r is None:
        return "No notebooks in notebooks/: not measured."
    out = [f"**Notebook suite**: {r['notebooks']} notebooks, `python -m pytest notebooks/` "
           f"(nbval as configured in pyproject.toml): **{r['seconds']:.1f} s** wall for pytest; "
           f"result: {r['summary'] or 'exit ' + str(r['status'])}.\n",
           "| notebook | seconds (pytest setup + call + teardown, summed over its cells) |", "|---|---:|"]
    for name, seconds in sorted(r["per_notebook"].items()):
        out.append(f"| {name} | {seconds:.1f} |")
    return "\n".join(out)


def main() -> int:
    readme, info = common.begin(__doc__)
    t = time.monotonic()
    r = run()
    text = table(r) + f"\n\nMachine: {common.machine_line(info)}."
    print(text)
    if r and r["status"] != 0:
        print(r["tail"])
    common.save_result("notebooks", {"machine": info, "result": r, "wall": time.monotonic() - t})
    if readme:
        common.update_readme("notebooks", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
