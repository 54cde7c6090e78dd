"""Benchmark: how long labkit takes to start: `import labkit`, the CLI, and a fresh Jupyter
kernel to the first diagram.

    sudo python3 benchmarks/startup.py [--rounds 7] [--readme]

- `import labkit`, `from labkit import Lab` and `import labkit.cli`: the package's own
  cumulative import time from `python -X importtime` (median of --rounds fresh interpreters),
  with the bytecode cache warm (as after an install) and cold (every module compiled: what
  the first import after a source checkout costs, or every import where
  PYTHONDONTWRITEBYTECODE is set), and which heavy modules each import pulls in.
- the interpreter alone (`python -c pass`) and `labkit --help`, whole processes.
- fresh kernel to first diagram (needs root): a new IPython kernel (jupyter_client), then a
  notebook's first three cells with a lab of its own: `labkit.teach.notebook.setup()`;
  `Lab(NAME).up("veth")`; `lesson.draw(lab)` until its PNG arrives. The lab is removed after.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

HEAVY = ("scapy", "matplotlib", "ipywidgets", "IPython", "pyroute2", "numpy")
IMPORTS = {"import labkit": "import labkit",
           "from labkit import Lab": "from labkit import Lab",
           "import labkit.cli": "import labkit.cli.commands"}


def import_time(statement: str, env: dict) -> tuple[float, list[str]]:
    """(seconds spent importing labkit's modules and what they import, heavy modules loaded)."""
    code = f"{statement}\nimport sys\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    r = subprocess.run([sys.executable, "-X", "importtime", "-c", code], env=env,
                       capture_output=True, text=True, check=True)
    total = 0
    for line in r.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if m and not m.group(3) and m.group(4).split(".")[0] == "labkit":
            total += int(m.group(2))  # top-level entries only: cumulative, no double counting
    return total / 1e6, [m for m in r.stdout.strip().split(",") if m]


def process_time(argv: list[str], env: dict, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.monotonic()
        subprocess.run(argv, env=env, capture_output=True, check=True)
        times.append(time.monotonic() - t)
    return common.median(times)


def imports(rounds: int) -> dict:
    warm = common.python_env()
    subprocess.run([sys.executable, "-c", "import labkit.cli, labkit.lab.lab"], env=warm, check=True)
    cold_cache = tempfile.mkdtemp(prefix="bn-pycache-")
    cold = {**warm, "PYTHONPYCACHEPREFIX": cold_cache, "PYTHONDONTWRITEBYTECODE": "1"}
    result = {}
    try:
        for label, statement in IMPORTS.items():
            row = {}
            for mode, env in (("warm", warm), ("cold", cold)):
                runs = [import_time(statement, env) for _ in range(rounds)]
                row[mode] = common.median([s for s, _ in runs])
                row["heavy"] = runs[-1][1]
            result[label] = row
        result["python -c pass"] = process_time([sys.executable, "-c", "pass"], warm, rounds)
        result["python -I -c pass"] = process_time([sys.executable, "-I", "-c", "pass"], warm, rounds)
        result["labkit --help"] = process_time([sys.executable, "-m", "labkit", "--help"], warm, rounds)
    finally:
        shutil.rmtree(cold_cache, ignore_errors=True)
    return result


CELLS = ("import labkit.teach.notebook; labkit.teach.notebook.setup()",
         "from labkit import Lab, lesson\nlab = Lab({lab!r})\nlab.up('veth')",
         "lesson.draw(lab)")


def first_diagram(rounds: int) -> dict | None:
    """Seconds from asking for a kernel to the first diagram's PNG, by phase (median of rounds)."""
    try:
        from jupyter_client.manager import KernelManager
    except ImportError:
        return None
    phases = {"kernel ready": [], "setup cell": [], "lab up veth": [], "draw": [], "total": []}
    for _ in range(rounds):
        lab = common.unique("bn", 6)
        km = KernelManager(kernel_name="python3")
        t0 = time.monotonic()
        km.start_kernel(env=common.python_env(), cwd=common.REPO)
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=120)
            marks = [time.monotonic()]
            png = False
            for cell in CELLS:
                outputs = []
                reply = kc.execute_interactive(cell.format(lab=lab), timeout=300,
                                               output_hook=outputs.append)
                if reply["content"]["status"] != "ok":
                    raise RuntimeError(f"cell failed: {cell!r}: {reply['content'].get('evalue')}")
                png = png or any("image/png" in m["content"].get("data", {}) for m in outputs)
                marks.append(time.monotonic())
            if not png:
                raise RuntimeError("lesson.draw(lab) showed no PNG")
        finally:
            with_lab_down(kc, lab)
            kc.stop_channels()
            km.shutdown_kernel(now=True)
        phases["kernel ready"].append(marks[0] - t0)
        for name, a, b in zip(("setup cell", "lab up veth", "draw"), marks, marks[1:]):
            phases[name].append(b - a)
        phases["total"].append(marks[-1] - t0)
    return {k: common.median(v) for k, v in phases.items()}


def with_lab_down(kc, lab: str) -> None:
    """Remove the benchmark's lab, from the kernel (or from a fresh process if that fails)."""
    try:
        kc.execute_interactive(f"from labkit import Lab; _ = Lab({lab!r}).down()", timeout=120,
                               output_hook=lambda msg: None)
    except Exception:  # noqa: BLE001 - fall back to the CLI
        subprocess.run([sys.executable, "-m", "labkit", "down", "--lab", lab],
                       env=common.python_env(), capture_output=True)


def table(imp: dict, fk: dict | None, rounds: int) -> str:
    out = [f"**Start-up** (median of {rounds} fresh processes)\n",
           "| what | bytecode cached | not cached (compiled) | heavy modules loaded |",
           "|---|---:|---:|---|"]
    for label in IMPORTS:
        row = imp[label]
        out.append(f"| `{label}` (labkit's modules, from -X importtime) | {row['warm'] * 1000:.1f} ms | "
                   f"{row['cold'] * 1000:.1f} ms | {', '.join(row['heavy']) or 'none'} |")
    for label in ("python -c pass", "python -I -c pass", "labkit --help"):
        out.append(f"| `{label}` (whole process) | {imp[label] * 1000:.0f} ms | | |")
    out.append("")
    if fk is None:
        out.append("Fresh kernel to first diagram: not measured (jupyter_client is not installed).")
    else:
        out.append("**Fresh kernel to first diagram** (new IPython kernel; then the notebooks' first "
                   "cells: setup, `Lab(...).up('veth')`, `lesson.draw(lab)`)\n")
        out.append("| " + " | ".join(fk) + " |")
        out.append("|" + "---:|" * len(fk))
        out.append("| " + " | ".join(f"{v:.2f} s" for v in fk.values()) + " |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--kernel-rounds", type=int, default=3)
    ap.add_argument("--readme", action="store_true", help="write the table into benchmarks/README.md")
    args = ap.parse_args()
    info = common.machine()
    print("machine:", common.machine_line(info), flush=True)
    imp = imports(args.rounds)
    fk = None
    if os.geteuid() == 0:
        fk = first_diagram(args.kernel_rounds)
    else:
        print("not root: fresh kernel to first diagram skipped (it brings a lab up)")
    text = table(imp, fk, args.rounds) + f"\n\nMachine: {common.machine_line(info)}."
    print(text)
    common.save_result("startup", {"machine": info, "imports": imp, "first_diagram": fk})
    if args.readme:
        common.update_readme("startup", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
