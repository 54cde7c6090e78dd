"""Benchmark: what the kernel itself costs per container, and whether that cost grows with
the number of containers already there (which no tool can avoid).

    sudo python3 benchmarks/kernel.py [--n 1000] [--chunk 200] [--rounds 3] [--readme]

With labkit's own primitives (netns.create, one batched netlink socket), N containers are
made in steps, each step timed per chunk of --chunk containers (ms per chunk, median of
--rounds); a cost that is linear overall shows the same figure in every column:

1. namespaces: unshare + bind mount (mount points as hard links, as labkit makes them)
2. the same with the two IPv6-off sysctls written inside each new namespace
3. veth pairs host <-> container, no bridge
4. veth pairs made as ports of an up bridge, host end up
5. the container ends brought up (carrier on: the bridge enables the port)

Between steps the script waits a second (untimed) for the kernel's deferred work.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import common  # noqa: E402
from labkit.kernel import netns, sysctl  # noqa: E402
from labkit.kernel.netlink import Netlink  # noqa: E402
from labkit.model.stages import IPV6_OFF  # noqa: E402

STEPS = ("namespaces (unshare + bind mount)", "namespaces with IPv6 off (2 sysctls)",
         "veth pairs, no bridge", "veth pairs as ports of an up bridge",
         "container ends up (bridge enables the port)")


def chunks(n: int, size: int, each, after_chunk=None) -> list[float]:
    out, t = [], time.perf_counter()
    for k in range(n):
        each(k)
        if (k + 1) % size == 0 or k == n - 1:
            if after_chunk:
                after_chunk()
            now = time.perf_counter()
            out.append(now - t)
            t = now
    return out


def one_round(n: int, size: int) -> dict[str, list[float]]:
    base = common.unique("bnk", 6)
    made: list[str] = []
    template = os.path.join(netns.prepare_dir(), f".{base}-mountpoint")
    os.close(os.open(template, os.O_RDONLY | os.O_CREAT, 0))
    result = {}
    try:
        def make(sysctls, tag):
            def each(k):
                name = f"{base}{tag}{k}"
                made.append(name)
                netns.create(name, inside=(lambda: sysctl.write_here(sysctls)) if sysctls else None, like=template)
            return each
        result[STEPS[0]] = chunks(n, size, make((), "a"))
        netns.delete_many([m for m in made if f"{base}a" in m])
        common.wait_kernel_quiet()
        time.sleep(1)
        result[STEPS[1]] = chunks(n, size, make(IPV6_OFF, "c"))
        host = f"{base}h"
        made.append(host)
        netns.create(host, inside=lambda: sysctl.write_here(IPV6_OFF))
        containers = [f"{base}c{k}" for k in range(n)]
        with Netlink(host) as nl:
            with nl.batch():
                result[STEPS[2]] = chunks(n, size, lambda k: nl.add_veth(
                    f"v{k}", None, f"c{k}", containers[k], None), nl.flush)
            with nl.batch():
                for k in range(n):
                    nl.delete_link(f"v{k}")
            time.sleep(1)
            nl.add_bridge("br0", None, up=True)
            with nl.batch():
                result[STEPS[3]] = chunks(n, size, lambda k: nl.add_veth(
                    f"v{k}", None, f"c{k}", containers[k], None, master="br0", up=True), nl.flush)
        time.sleep(1)  # let the kernel's deferred work of the step before (link events) finish

        def up(k):
            with Netlink(containers[k]) as c:
                c.set_link(f"c{k}", up=True)
        result[STEPS[4]] = chunks(n, size, up)
    finally:
        os.unlink(template)
        netns.delete_many(made)
        common.wait_kernel_quiet()
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--chunk", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--readme", action="store_true")
    args = ap.parse_args()
    common.require_root()
    info = common.machine()
    print("machine:", common.machine_line(info), flush=True)
    rounds = [one_round(args.n, args.chunk) for _ in range(args.rounds)]
    med = {step: [common.median([r[step][i] for r in rounds]) for i in range(len(rounds[0][step]))]
           for step in STEPS}
    cols = [f"{i * args.chunk + 1}-{min((i + 1) * args.chunk, args.n)}" for i in range(len(med[STEPS[0]]))]
    out = [f"**Kernel cost per chunk of {args.chunk} containers** (ms, median of {args.rounds}; "
           f"columns: which containers)\n",
           "| step | " + " | ".join(cols) + " | last / first |", "|---|" + "---:|" * (len(cols) + 1)]
    for step in STEPS:
        v = med[step]
        out.append(f"| {step} | " + " | ".join(f"{x * 1000:.0f}" for x in v) + f" | {v[-1] / v[0]:.1f}x |")
    text = "\n".join(out) + f"\n\nMachine: {common.machine_line(info)}."
    print(text)
    common.save_result("kernel", {"machine": info, "chunks": cols, "median": med, "rounds": rounds})
    if args.readme:
        common.update_readme("kernel", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
