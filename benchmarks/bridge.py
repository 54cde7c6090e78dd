"""Benchmark: N containers on one bridge, brought up and torn down by labkit and three peers.

    sudo python3 benchmarks/bridge.py                      # N = 2 50 200 1000, 3 rounds
    sudo python3 benchmarks/bridge.py --sizes 200 --rounds 5 --tools labkit,cni
    sudo python3 benchmarks/bridge.py --readme              # also write the table into README.md

The same lab for every tool: a "host" namespace holding bridge br0 (172.18.0.1/16) and N
container namespaces, each with lo up and a veth whose host end is a port of br0 and whose
container end has an address in 172.18.0.0/16. No tool touches the machine's own network.

- labkit: `python -m labkit up bridge --lab L --containers N`, then `labkit down` (it also
  makes the `world` namespace and the host's uplink, sets MACs, turns IPv6 off and writes
  /etc/netns/NAME files).
- seed: the demo's way, one `ip` command per step, as one shell script generated for N
  (`ip -n NS ...` rather than `ip netns exec NS ip ...`: one process per step, not two).
- cni: the CNI reference bridge plugin (Debian containernetworking-plugins) with host-local
  IPAM, as a runtime calls it: per container `ip netns add`, then the plugin (ADD) run with
  nsenter inside the host namespace; teardown: the plugin (DEL), then `ip netns delete`.
- mininet: `mn --switch lxbr --controller none --topo single,N` through Mininet's API (see
  mininet_driver.py), run inside a namespace of its own (`ip netns exec`), so its bridge s1
  and veths are made there and not in the machine's root namespace.

Each figure is the wall time of whole processes (interpreter start-up included), the median
of `--rounds` rounds; the tools take turns within a round, starting with a different one
each round; after each teardown the script waits (untimed) until the kernel has finished
freeing namespaces. The first round checks that container 0 reaches the last container.
The peers are installed with apt-get (--no-install-recommends) if missing.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import common  # noqa: E402
from labkit.model import plan  # noqa: E402  (plain data only: container addresses)

CNI_DIR = "/usr/lib/cni"
MININET_PYTHON = "/usr/bin/python3"
PACKAGES = {"seed": ["iproute2"], "cni": ["containernetworking-plugins", "iproute2", "util-linux"],
            "mininet": ["mininet", "bridge-utils", "iproute2"]}
TOOLS = ("labkit", "seed", "cni", "mininet")


def install(tools: list[str]) -> dict[str, str]:
    """apt-get install what the peers need; returns tool -> version string (or why it cannot run)."""
    wanted = sorted({p for t in tools for p in PACKAGES.get(t, ())})
    missing = [p for p in wanted if subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True).stdout
        != "install ok installed"]
    if missing:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        print(f"installing {' '.join(missing)} ...", flush=True)
        subprocess.run(["apt-get", "update", "-q"], env=env, check=False, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
                       env=env, check=True, capture_output=True)
    versions = {"labkit": _labkit_version()}
    for tool, package in (("seed", "iproute2"), ("cni", "containernetworking-plugins"),
                          ("mininet", "mininet")):
        versions[tool] = package + " " + subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True).stdout
    return versions


def _labkit_version() -> str:
    rev = subprocess.run(["git", "-C", common.REPO, "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", common.REPO, "status", "--porcelain", "labkit"],
                           capture_output=True, text=True).stdout.strip()
    return f"labkit {rev}{' (modified tree)' if dirty else ''}"


def ping(ns: str, address: str) -> bool:
    """One ping from namespace `ns` to `address`, retried for up to 5 s (links settle)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if subprocess.run(["ip", "netns", "exec", ns, "ping", "-n", "-q", "-c1", "-W1", address],
                          capture_output=True).returncode == 0:
            return True
    return False


def run_script(text: str, what: str) -> float:
    """Run a generated shell script (a file: 8000 lines do not fit one argument); wall seconds."""
    with tempfile.NamedTemporaryFile("w", suffix=".sh", prefix="bn-") as f:
        f.write(text)
        f.flush()
        return common.run_timed(["bash", f.name]).check(what).seconds


class Tool:
    """One way to bring the lab up and down; remembers the namespaces it made."""
    name = ""

    def __init__(self, n: int):
        self.n = n
        self.made: list[str] = []
        self.peak_kib = 0

    def up(self) -> float:
        raise NotImplementedError

    def down(self) -> float:
        raise NotImplementedError

    def verify(self) -> bool:
        raise NotImplementedError

    def leftovers(self) -> list[str]:
        """Namespaces this tool made that still exist."""
        have = set(common.namespaces())
        return [n for n in self.made if n in have]

    def cleanup(self) -> None:
        """Remove what this run made and left (after a failure)."""
        for name in self.leftovers():
            subprocess.run(["ip", "netns", "delete", name], capture_output=True)


class Labkit(Tool):
    name = "labkit"

    def __init__(self, n: int):
        super().__init__(n)
        self.lab = common.unique("bn", 6)
        self.env = common.python_env()

    def _cli(self, *args: str) -> common.Timed:
        return common.run_timed([sys.executable, "-m", "labkit", *args], env=self.env)

    def up(self) -> float:
        result = self._cli("up", "bridge", "--lab", self.lab, "--containers", str(self.n)).check("labkit up")
        self.made = [plan.namespace_name(self.lab, r) for r in
                     ("host", "world", *(plan.container(k) for k in range(self.n)))]
        self.peak_kib = result.maxrss_kib
        return result.seconds

    def down(self) -> float:
        return self._cli("down", "--lab", self.lab).check("labkit down").seconds

    def verify(self) -> bool:
        last = plan.container_address(self.n - 1)
        return (ping(f"{self.lab}-netns0", last) and ping(f"{self.lab}-host", plan.container_address(0)))

    def cleanup(self) -> None:
        self._cli("down", "--lab", self.lab)
        super().cleanup()


class Seed(Tool):
    name = "seed"

    def __init__(self, n: int):
        super().__init__(n)
        p = common.unique("bns", 6)
        self.host = f"{p}-host"
        self.containers = [f"{p}-c{k}" for k in range(n)]
        self.made = [self.host, *self.containers]

    def script_up(self) -> str:
        h = self.host
        lines = ["set -e", f"ip netns add {h}", f"ip -n {h} link add br0 type bridge",
                 f"ip -n {h} link set br0 up", f"ip -n {h} addr add 172.18.0.1/16 dev br0"]
        for k, c in enumerate(self.containers):
            lines += [f"ip netns add {c}",
                      f"ip -n {h} link add veth{k} type veth peer name ceth{k}",
                      f"ip -n {h} link set ceth{k} netns {c}",
                      f"ip -n {h} link set veth{k} up",
                      f"ip -n {h} link set veth{k} master br0",
                      f"ip -n {c} link set lo up",
                      f"ip -n {c} link set ceth{k} up",
                      f"ip -n {c} addr add {plan.container_address(k)}/16 dev ceth{k}"]
        return "\n".join(lines) + "\n"

    def script_down(self) -> str:
        return "".join(f"ip netns delete {c}\n" for c in [*self.containers, self.host])

    def up(self) -> float:
        return run_script(self.script_up(), "seed script")

    def down(self) -> float:
        return run_script(self.script_down(), "seed teardown")

    def verify(self) -> bool:
        return (ping(self.containers[0], plan.container_address(self.n - 1))
                and ping(self.host, plan.container_address(0)))


class Cni(Tool):
    name = "cni"

    def __init__(self, n: int):
        super().__init__(n)
        p = common.unique("bnc", 6)
        self.host = f"{p}-host"
        self.containers = [f"{p}-c{k}" for k in range(n)]
        self.made = [self.host, *self.containers]
        self.data_dir = f"/run/{p}-cni"
        self.conf = tempfile.NamedTemporaryFile("w", suffix=".json", prefix=f"{p}-", delete=False)
        json.dump({"cniVersion": "1.0.0", "name": p, "type": "bridge", "bridge": "br0",
                   "isGateway": True, "ipMasq": False,
                   "ipam": {"type": "host-local", "dataDir": self.data_dir,
                            "ranges": [[{"subnet": "172.18.0.0/16", "gateway": "172.18.0.1"}]]}},
                  self.conf)
        self.conf.close()

    def _plugin(self, command: str, k: int) -> str:
        c = self.containers[k]
        return (f"CNI_COMMAND={command} CNI_CONTAINERID={c} CNI_NETNS=/run/netns/{c} CNI_IFNAME=eth0 "
                f"CNI_PATH={CNI_DIR} nsenter --net=/run/netns/{self.host} {CNI_DIR}/bridge "
                f"< {self.conf.name} > /dev/null")

    def up(self) -> float:
        lines = ["set -e", f"ip netns add {self.host}"]
        for k, c in enumerate(self.containers):
            lines += [f"ip netns add {c}", self._plugin("ADD", k)]
        return run_script("\n".join(lines), "CNI ADD")

    def down(self) -> float:
        lines = ["set -e"]
        for k, c in enumerate(self.containers):
            lines += [self._plugin("DEL", k), f"ip netns delete {c}"]
        lines += [f"ip netns delete {self.host}", f"rm -rf {self.data_dir}"]
        return run_script("\n".join(lines), "CNI DEL")

    def verify(self) -> bool:
        addr = subprocess.run(["ip", "-n", self.containers[-1], "-4", "-o", "addr", "show", "eth0"],
                              capture_output=True, text=True).stdout.split()
        last = addr[addr.index("inet") + 1].split("/")[0] if "inet" in addr else None
        return bool(last) and ping(self.containers[0], last) and ping(self.host, last)

    def cleanup(self) -> None:
        super().cleanup()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        os.unlink(self.conf.name)


class Mininet(Tool):
    """Mininet does up and down in one process: both are timed from its own timestamps."""
    name = "mininet"

    def __init__(self, n: int, check: bool = False):
        super().__init__(n)
        self.root = common.unique("bnm", 6) + "-root"
        self.made = [self.root]
        self.check = check
        self.pids: list[int] = []
        self._down = 0.0

    def up(self) -> float:
        subprocess.run(["ip", "netns", "add", self.root], check=True)
        out = tempfile.NamedTemporaryFile(suffix=".json", delete=False)
        out.close()
        try:
            argv = ["ip", "netns", "exec", self.root, MININET_PYTHON,
                    os.path.join(common.HERE, "mininet_driver.py"), str(self.n), out.name]
            result = common.run_timed(argv + (["--ping"] if self.check else []), timeout=1800)
            with open(out.name) as f:
                data = json.load(f) if os.path.getsize(out.name) else {}
        finally:
            os.unlink(out.name)
        self.pids = data.get("pids", [])
        result.check("Mininet")
        self.ping_ok = data.get("ping_ok")
        self._down = result.started + result.seconds - data["down_start"]
        return data["up_done"] - result.started

    def down(self) -> float:
        self._end_hosts()
        subprocess.run(["ip", "netns", "delete", self.root], check=True)
        return self._down

    def verify(self) -> bool:
        return bool(self.ping_ok)

    def _end_hosts(self) -> None:
        """End host shells the driver recorded that are still alive (only if it died)."""
        for pid in self.pids:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"mininet:" not in f.read():
                        continue  # not ours any more (pid reused)
                os.kill(pid, signal.SIGKILL)
            except (FileNotFoundError, ProcessLookupError):
                continue

    def cleanup(self) -> None:
        self._end_hosts()
        super().cleanup()


def make(tool: str, n: int, check: bool) -> Tool:
    if tool == "mininet":
        return Mininet(n, check)
    return {"labkit": Labkit, "seed": Seed, "cni": Cni}[tool](n)


def bench(sizes: list[int], rounds: int, tools: list[str]) -> dict:
    """Run every tool `rounds` times per size, in turns; returns the samples."""
    samples = {n: {t: {"up": [], "down": [], "peak_kib": [], "verified": None} for t in tools}
               for n in sizes}
    for n in sizes:
        for r in range(rounds):
            order = tools[r % len(tools):] + tools[:r % len(tools)]
            for t in order:
                tool = make(t, n, check=r == 0)
                try:
                    up = tool.up()
                    if r == 0:
                        samples[n][t]["verified"] = tool.verify()
                    down = tool.down()
                except BaseException:
                    tool.cleanup()
                    raise
                left = tool.leftovers()
                if left:
                    tool.cleanup()
                    raise RuntimeError(f"{t} left namespaces behind: {left[:5]}")
                if isinstance(tool, Cni):
                    os.unlink(tool.conf.name)
                s = samples[n][t]
                s["up"].append(up)
                s["down"].append(down)
                if tool.peak_kib:
                    s["peak_kib"].append(tool.peak_kib)
                print(f"N={n:5} round {r + 1}/{rounds} {t:8} up {up:7.3f} s  down {down:7.3f} s"
                      + (f"  peak RSS {tool.peak_kib / 1024:.1f} MiB" if tool.peak_kib else "")
                      + ("" if r else f"  reachable: {s['verified']}"), flush=True)
                common.wait_kernel_quiet()
    return samples


def table(samples: dict, tools: list[str], rounds: int) -> str:
    """The results as Markdown tables."""
    label = {"labkit": "labkit", "seed": "seed `ip` script", "cni": "CNI bridge", "mininet": "Mininet"}
    peers = [t for t in tools if t != "labkit"]
    out = []
    for phase, title in (("up", "Bring-up"), ("down", "Teardown")):
        out.append(f"**{title}** (seconds, whole processes, median of {rounds}; "
                   f"in brackets: how many times longer than labkit)\n")
        out.append("| containers | " + " | ".join(label[t] for t in tools) + " |")
        out.append("|---:|" + "---:|" * len(tools))
        for n, by_tool in samples.items():
            base = common.median(by_tool["labkit"][phase]) if "labkit" in by_tool else None
            cells = []
            for t in tools:
                m = common.median(by_tool[t][phase])
                cells.append(f"{m:.3f}" + (f" ({m / base:.1f}x)" if base and t in peers else ""))
            out.append(f"| {n} | " + " | ".join(cells) + " |")
        out.append("")
    if "labkit" in tools:
        out.append("**labkit per container and peak memory** (`labkit up` process)\n")
        out.append("| containers | up, ms per container | down, ms per container | peak RSS, MiB |")
        out.append("|---:|---:|---:|---:|")
        for n, by_tool in samples.items():
            lk = by_tool["labkit"]
            out.append(f"| {n} | {1000 * common.median(lk['up']) / n:.2f} | "
                       f"{1000 * common.median(lk['down']) / n:.2f} | "
                       f"{common.median(lk['peak_kib']) / 1024:.1f} |")
        out.append("")
    bad = [f"{t} at N={n}" for n, by_tool in samples.items() for t in tools
           if by_tool[t]["verified"] is False]
    out.append("Reachability checked in the first round (container 0 -> last container): "
               + ("all passed." if not bad else "FAILED for " + ", ".join(bad) + "."))
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2, 50, 200, 1000])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tools", default=",".join(TOOLS), help="comma-separated: " + ",".join(TOOLS))
    ap.add_argument("--readme", action="store_true", help="write the table into benchmarks/README.md")
    args = ap.parse_args()
    common.require_root()
    tools = [t for t in args.tools.split(",") if t]
    unknown = set(tools) - set(TOOLS)
    if unknown:
        ap.error(f"unknown tools {sorted(unknown)}; choose from {','.join(TOOLS)}")
    versions = install(tools)
    info = common.machine()
    print("machine:", common.machine_line(info))
    print("tools:", "; ".join(versions[t] for t in tools), flush=True)
    before_links, before_ns = common.root_links(), set(common.namespaces())
    common.wait_kernel_quiet()
    samples = bench(args.sizes, args.rounds, tools)
    info_after = common.machine()
    new_links = sorted(common.root_links() - before_links)
    new_ns = sorted(n for n in set(common.namespaces()) - before_ns if n.startswith("bn"))
    text = table(samples, tools, args.rounds)
    footer = (f"\nMachine: {common.machine_line(info)}; load average at the end "
              f"{info_after['load_average']}.\nTools: {'; '.join(versions[t] for t in tools)}.\n"
              f"Left behind: namespaces {new_ns or 'none'}; new links in the root namespace "
              f"{new_links or 'none'} (other users of the machine may add some).")
    print()
    print(text + footer)
    common.save_result("bridge", {"machine": info, "machine_after": info_after, "versions": versions,
                                  "rounds": args.rounds, "samples": samples,
                                  "left_namespaces": new_ns, "new_root_links": new_links})
    if args.readme:
        common.update_readme("bridge", text + footer)
    return 1 if new_ns else 0


if __name__ == "__main__":
    sys.exit(main())
