"""Benchmark: the whole set of handouts, both editions, wall time.

    sudo python3 benchmarks/handouts.py [--readme]

Times `labkit handout -o DIR` (every notebook run for real on the kernel, then an HTML and an
A4 PDF per notebook and edition, the course booklet and the cheat sheets, by Debian's
headless chromium) and `labkit handout --stored -o DIR` (the stored outputs printed, nothing
run). The real run uses the default lab, so it runs in the same private mount namespace as
benchmarks/notebooks.py: nothing of it is left on the machine, and nobody's lab is touched.
Figures: wall seconds of each, the files written and the pages printed (pdfinfo).
"""
from __future__ import annotations

import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from notebooks import SANDBOX  # noqa: E402


def pages(outdir: str) -> int:
    total = 0
    for pdf in glob.glob(os.path.join(outdir, "**", "*.pdf"), recursive=True):
        info = subprocess.run(["pdfinfo", pdf], capture_output=True, text=True).stdout
        m = re.search(r"^Pages:\s+(\d+)", info, re.M)
        total += int(m.group(1)) if m else 0
    return total


def run(stored: bool) -> dict:
    scratch = f"/tmp/{common.unique('bnho', 8)}"
    os.mkdir(scratch)
    outdir = os.path.join(scratch, "out")
    py = shlex.quote(sys.executable)
    handout = " ".join([py, "-m", "labkit", "handout", "-o", shlex.quote(outdir)]
                       + (["--stored"] if stored else []))
    script = SANDBOX.format(s=scratch, pytest=handout, clean=f"{py} -m labkit clean")
    try:
        # the sandbox mounts a tmpfs over `scratch`: the handouts are written in it, and counted there
        script = script.replace("exit $status", f"echo BNHO-FILES $(find {outdir} -type f | wc -l)\n"
                                f"for f in $(find {outdir} -name '*.pdf'); do pdfinfo $f | grep ^Pages; done\n"
                                "exit $status")
        result = common.run_timed(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                                  env=common.python_env(), timeout=3600)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    seconds, files = result.seconds, 0
    for line in result.stdout.splitlines():
        if line.startswith("BNNB-SECONDS "):
            a, b = map(float, line.split()[1:])
            seconds = b - a
        elif line.startswith("BNHO-FILES "):
            files = int(line.split()[1])
    printed = sum(int(n) for n in re.findall(r"^Pages:\s+(\d+)", result.stdout, re.M))
    return {"stored": stored, "seconds": seconds, "status": result.status, "files": files,
            "pages": printed, "tail": result.stdout[-2000:] + result.stderr[-2000:]}


def table(runs: list[dict]) -> str:
    out = ["| handouts | wall seconds | files written | PDF pages | exit |", "|---|---:|---:|---:|---:|"]
    for r in runs:
        what = ("`labkit handout --stored` (stored outputs, nothing run)" if r["stored"]
                else "`labkit handout` (every notebook run on the kernel)")
        out.append(f"| {what} | {r['seconds']:.1f} | {r['files']} | {r['pages']} | {r['status']} |")
    return "\n".join(out)


def main() -> int:
    readme, info = common.begin(__doc__)
    t = time.monotonic()
    runs = [run(stored=False), run(stored=True)]
    text = table(runs) + f"\n\nMachine: {common.machine_line(info)}."
    print(text)
    for r in runs:
        if r["status"] != 0:
            print(r["tail"])
    common.save_result("handouts", {"machine": info, "runs": runs, "wall": time.monotonic() - t})
    if readme:
        common.update_readme("handouts", text)
    return 0 if all(r["status"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
