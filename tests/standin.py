"""A stand-in for the machine, for tests of commands a person types at their own prompt.

`run(function, *args)` calls the module-level `function(*args)` of a test module in a child
process that has, of its own:
- a network namespace standing for "the machine" (labkit's own namespace: the one it runs in),
  with lo up; what is typed at "the machine's prompt" is typed there (`at_prompt`);
- a fresh view (tests/freshview.py): /run/netns, /run/labkit and /etc/netns of its own, so the
  lab's namespaces are seen by the child alone;
- a pid namespace, so any process started there (a server in a lab namespace) ends with it.
The lab's namespaces and the stand-in disappear with the child: the machine's own network is
never touched. The function's return value (JSON-ready) comes back; an exception in it is
raised here as an AssertionError with the child's traceback.
"""
from __future__ import annotations

import json
import re
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from harness import labkit_env  # noqa: E402

NETWORK_KEYS = ("links", "addresses", "routes", "rules", "nftables", "iptables", "net/")


def run(function, *args, timeout: float = 300):
    """`function(*args)` in a stand-in machine (see the module's text); returns its result."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        spec = json.dumps({"module": function.__module__, "name": function.__name__,
                           "args": list(args), "out": out})
        done = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "--net",
                               sys.executable, os.path.abspath(__file__), spec],
                              capture_output=True, text=True, timeout=timeout,
                              env=labkit_env(PYTHONPATH=HERE + os.pathsep + labkit_env()["PYTHONPATH"]))
        if not os.path.exists(out):
            raise AssertionError(f"the stand-in failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
        with open(out) as f:
            result = json.load(f)
    if "error" in result:
        raise AssertionError(f"in the stand-in:\n{result['error']}\n{done.stderr[-3000:]}")
    return result["value"]


def at_prompt(line: str) -> tuple[int, str]:
    """Type `line` at the machine's own prompt (in the stand-in: this process's namespace)."""
    done = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)
    return done.returncode, done.stdout + done.stderr


def machine() -> dict[str, str]:
    """The stand-in machine's network as text (links, addresses, routes, rules, sysctls)."""
    from labkit.pytest_plugin import machine_snapshot
    snap = {k: v for k, v in machine_snapshot().items() if k.startswith(NETWORK_KEYS)}
    for key, text in snap.items():   # rules only: `iptables -D` leaves its empty table behind
        if key.startswith(("iptables", "nftables")):
            snap[key] = "\n".join(line for line in text.splitlines() if line.startswith("-A ")
                                  or (key == "nftables" and not re.match(
                                      r"\s*(table|chain|type|policy|}|$)", line)))
    return snap


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """The keys of two `machine()` readings that differ (a key one lacks: empty)."""
    return sorted(k for k in set(before) | set(after) if before.get(k, "") != after.get(k, ""))


def _main(spec: dict) -> None:
    import importlib
    import traceback

    try:
        import freshview
        freshview.enter()      # in an xdist worker too: a view inside its view
        at_prompt("ip link set lo up")
        function = getattr(importlib.import_module(spec["module"]), spec["name"])
        result = {"value": function(*spec["args"])}
    except BaseException:  # noqa: BLE001 - reported to the test
        result = {"error": traceback.format_exc()}
    finally:
        _down_every_lab()
    with open(spec["out"], "w") as f:
        json.dump(result, f)


def _down_every_lab() -> None:
    """Take down what a failed test left (its servers end with the pid namespace anyway)."""
    try:
        from labkit.lab import clean
        clean()
    except Exception:  # noqa: BLE001 - the stand-in goes away regardless
        pass


if __name__ == "__main__":
    _main(json.loads(sys.argv[1]))
