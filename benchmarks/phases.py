"""Benchmark: where `labkit up bridge` and `labkit down` spend their time, in-process.

    sudo python3 benchmarks/phases.py [--sizes 200 1000] [--rounds 3] [--readme]

Runs Lab(NAME).up("bridge", containers=N) and .down() in this process with timers around
the steps that Lab.up and Lab.down call (wrapped here, not changed), median of --rounds.
Nested rows (indented) are parts of the row above; journal saves are counted wherever they
happen. Interpreter start-up and imports are not included (see startup.py).
"""
from __future__ import annotations

import argparse
import functools
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import common  # noqa: E402

# (module, attribute path, label) of what is timed, when it exists
STEPS = (
    ("labkit.lab.converge", "converge", "converge (namespaces, links, addresses, routes)"),
    ("labkit.lab.converge", "_create", "  create namespaces (IPv6 off inside)"),
    ("labkit.lab.converge", "_Run.converge_links", "  links: bridge, veth pairs"),
    ("labkit.lab.converge", "_Run.converge_settings", "  settings: state, addresses, routes"),
    ("labkit.lab.etcfiles", "write_resolver", "etcfiles.write_resolver (/etc/netns files)"),
    ("labkit.nat", "apply", "nat.apply"),
    ("labkit.lab.service", "converge", "service.converge"),
    ("labkit.nat", "remove", "nat.remove"),
    ("labkit.lab.service", "stop_recorded", "service.stop_recorded"),
    ("labkit.lab.journal", "Journal.undo", "journal.undo (namespaces, /etc/netns files)"),
    ("labkit.kernel.netns", "delete", "  netns.delete"),
    ("labkit.lab.journal", "Journal._save", "(journal saves: json + fsync, inside the rows above)"),
)


def instrument(times: dict) -> None:
    import importlib
    for module, attr, label in STEPS:
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        owner, name = mod, attr
        if "." in attr:
            cls, name = attr.split(".")
            owner = getattr(mod, cls, None)
        func = getattr(owner, name, None) if owner is not None else None
        if func is None:
            continue

        def wrapped(*a, _f=func, _label=label, **k):
            t = time.perf_counter()
            try:
                return _f(*a, **k)
            finally:
                times[_label] = times.get(_label, 0.0) + time.perf_counter() - t
        setattr(owner, name, functools.wraps(func)(wrapped))
        # modules that imported the function by name keep the original: patch them too
        for other in list(sys.modules.values()):
            if other is not None and getattr(other, "__name__", "").startswith("labkit") \
                    and other is not mod and getattr(other, name, None) is func and "." not in attr:
                setattr(other, name, getattr(owner, name))


def run(n: int, rounds: int) -> dict:
    from labkit.lab import Lab
    samples: dict[str, list[float]] = {}
    for _ in range(rounds):
        lab = Lab(common.unique("bn", 6))
        _TIMES.clear()
        t = time.perf_counter()
        try:
            lab.up("bridge", containers=n)
            up = time.perf_counter() - t
            up_parts = dict(_TIMES)
            _TIMES.clear()
            t = time.perf_counter()
        finally:
            lab.down()
        down = time.perf_counter() - t
        down_parts = dict(_TIMES)
        _TIMES.clear()
        for key, value in [("Lab.up total", up), ("Lab.down total", down)] + \
                [("up: " + k, v) for k, v in up_parts.items()] + [("down: " + k, v) for k, v in down_parts.items()]:
            samples.setdefault(key, []).append(value)
        common.wait_kernel_quiet()
    return {k: common.median(v) for k, v in samples.items()}


_TIMES: dict[str, float] = {}


def table(results: dict[int, dict], rounds: int) -> str:
    sizes = list(results)
    out = [f"**In-process time of `Lab.up('bridge', containers=N)` and `Lab.down()`** "
           f"(ms, median of {rounds}; indented rows are parts of the row above)\n",
           "| step | " + " | ".join(f"N={n}" for n in sizes) + " |",
           "|---|" + "---:|" * len(sizes)]
    order = ["Lab.up total"] + [f"up: {label}" for _, _, label in STEPS] + \
            ["Lab.down total"] + [f"down: {label}" for _, _, label in STEPS]
    for key in order:
        if not any(key in results[n] for n in sizes):
            continue
        cells = [f"{results[n].get(key, 0) * 1000:.0f}" for n in sizes]
        label = key.replace("up: ", "").replace("down: ", "")
        indent = "&nbsp;&nbsp;&nbsp;&nbsp;" * (2 if label.startswith("  ") else 1) if ": " in key else ""
        out.append(f"| {indent}{label.strip()} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[200, 1000])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--readme", action="store_true")
    args = ap.parse_args()
    common.require_root()
    info = common.machine()
    print("machine:", common.machine_line(info), flush=True)
    instrument(_TIMES)
    results = {}
    for n in args.sizes:
        results[n] = run(n, args.rounds)
        print(f"N={n}: up {results[n]['Lab.up total']:.3f} s, down {results[n]['Lab.down total']:.3f} s",
              flush=True)
    text = table(results, args.rounds) + f"\n\nMachine: {common.machine_line(info)}."
    print(text)
    common.save_result("phases", {"machine": info, "results": results})
    if args.readme:
        common.update_readme("phases", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
