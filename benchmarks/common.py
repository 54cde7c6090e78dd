"""What every benchmark script shares: the machine's description, timing a process, waiting
for the kernel to finish tearing namespaces down, checking that nothing leaked, and writing
a table into benchmarks/README.md.

Every benchmark works in namespaces whose names start with "bn" and that it made itself;
nothing is removed by name pattern, only what the script recorded making.
"""
from __future__ import annotations

import json
import os
import platform
import random
import re
import statistics
import string
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
README = os.path.join(HERE, "README.md")
RESULTS = os.path.join(HERE, "results")


PYCACHE = "/tmp/labkit-bench-pycache"


def python_env() -> dict:
    """Environment for labkit's processes: the checkout on PYTHONPATH, and bytecode cached as
    after a normal install (PYTHONDONTWRITEBYTECODE, if this machine sets it, is dropped; the
    cache goes to PYCACHE, outside the tree)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = REPO
    env["PYTHONPYCACHEPREFIX"] = PYCACHE
    return env


def python_startup(python: str = sys.executable, runs: int = 5) -> float:
    """Median seconds for `python -c pass` here (the interpreter's own start-up, site included)."""
    times = []
    for _ in range(runs):
        t = time.monotonic()
        subprocess.run([python, "-c", "pass"], env=python_env(), check=True)
        times.append(time.monotonic() - t)
    return statistics.median(times)


def machine() -> dict:
    """Cores, CPU model, kernel, Python, memory and load: printed with every result."""
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {"cores": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "python": platform.python_version(), "python_path": sys.executable, "memory": mem,
            "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def machine_line(info: dict | None = None) -> str:
    """The machine in one line."""
    m = info or machine()
    return (f"{m['cores']} cores ({m['cpu'] or 'unknown CPU'}), Linux {m['kernel']}, "
            f"Python {m['python']}, {m['memory']} RAM, load average {m['load_average']} at {m['date']}")


def require_root() -> None:
    """Exit with a message unless running as root (namespaces need CAP_SYS_ADMIN, CAP_NET_ADMIN)."""
    if os.geteuid() != 0:
        sys.exit(f"{os.path.basename(sys.argv[0])} needs root: run it with sudo "
                 f"(sudo {sys.executable} {' '.join(sys.argv)})")


def begin(doc: str) -> tuple[bool, dict]:
    """The start of a root benchmark with only --readme: (--readme given?, the machine),
    the machine printed."""
    import argparse
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--readme", action="store_true")
    readme = ap.parse_args().readme
    require_root()
    info = machine()
    print("machine:", machine_line(info), flush=True)
    return readme, info


def unique(prefix: str, length: int = 6) -> str:
    """A name `prefix` + random a-z0-9, `length` characters in all, that no namespace starts with."""
    existing = namespaces()
    while True:
        name = prefix + "".join(random.choice(string.ascii_lowercase + string.digits)
                                for _ in range(length - len(prefix)))
        if not any(n.startswith(name) for n in existing):
            return name


def namespaces() -> list[str]:
    """Names in /run/netns (what `ip netns` lists)."""
    try:
        return sorted(os.listdir("/run/netns"))
    except FileNotFoundError:
        return []


def root_links() -> set[str]:
    """Names of the links of the machine's own (root) network namespace."""
    with open("/proc/net/dev") as f:
        return {line.split(":", 1)[0].strip() for line in f.readlines()[2:]}


class Timed:
    """The result of `run_timed`: wall seconds, exit status, output, child's peak RSS (KiB)."""

    def __init__(self, seconds: float, status: int, stdout: str, stderr: str, maxrss_kib: int,
                 started: float):
        self.seconds, self.status, self.stdout, self.stderr = seconds, status, stdout, stderr
        self.maxrss_kib, self.started = maxrss_kib, started

    def check(self, what: str) -> Timed:
        """Raise with the output if the process failed."""
        if self.status != 0:
            raise RuntimeError(f"{what} failed (exit {self.status}):\n{self.stdout[-2000:]}\n"
                               f"{self.stderr[-2000:]}")
        return self


def run_timed(argv: list[str], *, env: dict | None = None, stdin: str | None = None,
              timeout: float = 900) -> Timed:
    """Run `argv`, wall-clock it from fork to exit, and read the child's own peak RSS (wait4)."""
    with tempfile.TemporaryFile("w+") as so, tempfile.TemporaryFile("w+") as se:
        started = time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                stdout=so, stderr=se, env=env, cwd=REPO)
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            if stdin is not None:
                proc.stdin.write(stdin.encode())
                proc.stdin.close()
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        seconds = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        so.seek(0)
        se.seek(0)
        return Timed(seconds, proc.returncode, so.read(), se.read(), usage.ru_maxrss, started)


def net_namespaces_alive() -> int | None:
    """Network namespaces the kernel still holds (net_namespace slab objects in use), or None.

    Deleting a namespace returns at once; the kernel frees it later in a worker. The count is
    approximate (per-CPU slabs), so callers wait for it to stop changing."""
    try:
        with open("/proc/slabinfo") as f:
            for line in f:
                if line.startswith("net_namespace "):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def wait_kernel_quiet(timeout: float = 30.0, settle: float = 0.3) -> float:
    """Wait until the kernel's count of network namespaces has not changed for `settle` seconds
    (the teardown before has been finished by the kernel); returns the seconds waited."""
    start = time.monotonic()
    last, since = net_namespaces_alive(), time.monotonic()
    if last is None:
        return 0.0
    while time.monotonic() - start < timeout:
        time.sleep(0.05)
        now = net_namespaces_alive()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= settle:
            break
    return time.monotonic() - start


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def save_result(name: str, data: dict) -> str:
    """Write results/NAME.json; returns its path."""
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, f"{name}.json")
    with open(path, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")
    return path


def update_readme(section: str, text: str) -> None:
    """Replace the text between <!-- SECTION start --> and <!-- SECTION end --> in README.md."""
    with open(README) as f:
        readme = f.read()
    start, end = f"<!-- {section} start -->", f"<!-- {section} end -->"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if not pattern.search(readme):
        raise SystemExit(f"README.md has no {start} ... {end} block")
    readme = pattern.sub(lambda _: f"{start}\n{text.rstrip()}\n{end}", readme)
    with open(README, "w") as f:
        f.write(readme)


