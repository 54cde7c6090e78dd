"""Run every benchmark, one after the other, and write their tables into benchmarks/README.md.

    sudo python3 benchmarks/run_all.py [--quick]

--quick: bridge.py with N = 2 50 200 and 3 rounds, phases.py at N = 200 only (minutes, not
a quarter of an hour). capture_burst.py (the captures' own script) is run as it is and its
output copied into the README.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def script(name: str, *args: str) -> int:
    print(f"\n=== {name} {' '.join(args)}", flush=True)
    return subprocess.run([sys.executable, os.path.join(common.HERE, name), *args],
                          cwd=common.REPO, env=common.python_env()).returncode


def captures() -> int:
    path = os.path.join(common.HERE, "capture_burst.py")
    if not os.path.exists(path):
        common.update_readme("captures", "benchmarks/capture_burst.py is not there yet: not measured.")
        return 0
    print("\n=== capture_burst.py", flush=True)
    info = common.machine()
    r = subprocess.run([sys.executable, path], cwd=common.REPO, env=common.python_env(),
                       capture_output=True, text=True)
    print(r.stdout, r.stderr[-2000:], sep="")
    text = ("Output of `sudo python3 benchmarks/capture_burst.py` (see its docstring for what each "
            "column means):\n\n```\n" + r.stdout.rstrip() + "\n```\n\n"
            + ("" if r.returncode == 0 else f"It exited with status {r.returncode}: "
               + r.stderr.strip().splitlines()[-1] + "\n\n")
            + f"Machine: {common.machine_line(info)}.")
    common.update_readme("captures", text)
    return r.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    common.require_root()
    print("machine:", common.machine_line())
    status = 0
    if args.quick:
        status |= script("bridge.py", "--readme", "--sizes", "2", "50", "200")
        status |= script("phases.py", "--readme", "--sizes", "200")
    else:
        status |= script("bridge.py", "--readme")
        status |= script("phases.py", "--readme")
    status |= script("kernel.py", "--readme", *(["--rounds", "1"] if args.quick else []))
    status |= script("startup.py", "--readme")
    status |= captures()
    status |= script("notebooks.py", "--readme")
    return 1 if status else 0


if __name__ == "__main__":
    sys.exit(main())
