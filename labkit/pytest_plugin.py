"""pytest fixtures for labkit (loaded automatically once labkit is installed).

- `lab`: a fresh Lab with a unique name, torn down after the test (its own namespaces only).
- `lab_factory`: call it for more labs in one test; all are torn down after.
- `@pytest.mark.kernel` marks tests that need root and real namespaces; without privileges
  they fail with a message saying so (they are never skipped silently).
- After a session that ran kernel tests, the machine's own namespace (links, addresses,
  routes and rules of IPv4 and IPv6, the nftables ruleset, every iptables and ip6tables
  table, the sysctls labkit touches) must be exactly as before, and no namespace, journal or
  /etc/netns entry may be left: otherwise the session fails (`machine_snapshot`,
  `snapshot_differences`).
"""
from __future__ import annotations

import itertools
import os
import random
import re
import shutil
import string
import subprocess

import pytest

_counter = itertools.count()

# Prefix for a command that runs as root but without any capability (as in a container
# without CAP_NET_ADMIN, or a hosted notebook service).
WITHOUT_CAPABILITIES = ("setpriv", "--bounding-set=-all", "--inh-caps=-all", "--")
_state: dict = {}


def unique_lab_name() -> str:
    """A lab name (6 characters) no journal or namespace uses yet."""
    from labkit.lab import journal
    from labkit.kernel import netns
    rng = random.Random(f"{os.getpid()}-{next(_counter)}-{os.urandom(4).hex()}")
    while True:
        name = "t" + "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(5))
        if name not in journal.labs() and not any(n.startswith(name + "-") for n in netns.names()):
            return name


SYSCTL_GLOBS = ("net/ipv4/ip_forward", "net/ipv4/conf/*/route_localnet", "net/ipv4/conf/*/forwarding",
                "net/ipv6/conf/*/disable_ipv6", "net/ipv6/conf/*/forwarding", "net/bridge/bridge-nf-call-*")


def machine_snapshot() -> dict[str, str]:
    """The machine's own (root) network namespace, and labkit's files, as text to compare
    before and after (`snapshot_differences`). Volatile numbers (address lifetimes, route
    expiry, rule counters) are left out, so only a real change shows."""
    import glob

    from labkit.kernel import netns
    from labkit.lab.journal import run_dir

    def run(*argv):
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        except FileNotFoundError:
            return f"{argv[0]} not installed"
        return result.stdout + (f"(exit {result.returncode}: {result.stderr.strip()})"
                                if result.returncode else "")

    def listing(directory):
        entries = sorted(os.listdir(directory)) if os.path.isdir(directory) else []
        if not entries and (directory in (netns.netns_dir(), "/run/netns") or not os.path.isdir(directory)):
            return "(none)"  # an empty /run/netns is left as `ip netns add` leaves it (tmpfs)
        return "\n".join(entries) or "(empty)"

    snap = {
        "links": run("ip", "-o", "link", "show"),
        "addresses": re.sub(r"valid_lft \S+ preferred_lft \S+", "", run("ip", "-o", "address", "show")),
        "routes": run("ip", "route", "show", "table", "all"),
        "routes6": re.sub(r"expires \S+", "", run("ip", "-6", "route", "show", "table", "all")),
        "rules": run("ip", "rule", "show"),
        "rules6": run("ip", "-6", "rule", "show"),
        "nftables": re.sub(r"(counter|quota) packets \d+ bytes \d+|expires \S+", r"\1",
                           run("nft", "list", "ruleset")),
    }
    for tool in ("iptables", "ip6tables"):  # every table that exists: filter, nat, raw, mangle, ...
        if shutil.which(f"{tool}-save"):
            for table, text in _tables(run(f"{tool}-save")).items():
                snap[f"{tool} {table}"] = text
        else:
            snap[tool] = "not installed"
    for pattern in SYSCTL_GLOBS:
        for path in sorted(glob.glob(f"/proc/sys/{pattern}")):
            try:
                with open(path) as f:
                    snap[path[len("/proc/sys/"):]] = f.read().strip()
            except OSError as e:
                snap[path[len("/proc/sys/"):]] = f"unreadable: {e.strerror}"
    for directory in sorted({netns.netns_dir(), "/run/netns", "/etc/netns", run_dir(), "/run/labkit"}):
        snap[directory] = listing(directory)
    return snap


def _tables(save_text: str) -> dict[str, str]:
    """iptables-save output split by table, without comments and counters."""
    tables: dict[str, list[str]] = {}
    current = None
    for line in save_text.splitlines():
        if line.startswith("#"):
            continue
        if line.startswith("*"):
            current = line[1:]
            tables[current] = []
        elif current is not None:
            tables[current].append(re.sub(r"\[\d+:\d+\]", "", line))
        else:
            tables.setdefault("?", []).append(line)
    return {table: "\n".join(lines) for table, lines in tables.items()}


def snapshot_differences(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """What changed between two `machine_snapshot`s, one text block per changed key."""
    import difflib
    out = []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key, "(absent)"), after.get(key, "(absent)")
        if a != b:
            diff = difflib.unified_diff(a.splitlines(), b.splitlines(), "before", "after", lineterm="", n=0)
            out.append(f"{key} changed:\n" + "\n".join(list(diff)[2:]))
    return out


def _privileged() -> bool:
    from labkit.kernel import privilege
    return not privilege.missing_capabilities()


def pytest_configure(config):
    config.addinivalue_line("markers", "kernel: needs root; creates real network namespaces")


def pytest_runtest_setup(item):
    if item.get_closest_marker("kernel") or item.get_closest_marker("root"):
        if not _privileged():
            pytest.fail("this test needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN): run pytest with sudo, "
                        "or deselect kernel tests with -m 'not kernel'", pytrace=False)
        if "before" not in _state:
            _state["before"] = machine_snapshot()


def pytest_sessionfinish(session, exitstatus):
    before = _state.pop("before", None)
    if before is None:
        return
    changed = snapshot_differences(before, machine_snapshot())
    if changed:
        lines = ["labkit leak check: the machine's own network state changed during the tests:"]
        lines += changed
        session.config.pluginmanager.get_plugin("terminalreporter").write_line("\n".join(lines),
                                                                               red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def lab_factory():
    """Make labs with unique names (`lab_factory()` -> Lab); every one is torn down after the test."""
    from labkit.lab import Lab
    from labkit.lab import journal
    from labkit.kernel import netns
    made = []

    def make(name: str | None = None):
        lab = Lab(name or unique_lab_name())
        made.append(lab)
        return lab

    yield make
    leftovers = []
    for lab in reversed(made):
        lab.down()
        prefix = f"{lab.name}-"
        leftovers += [n for n in netns.names() if n.startswith(prefix)]
        if lab.name in journal.labs():
            leftovers.append(f"journal of {lab.name}")
    assert not leftovers, f"labkit leaked after the test: {leftovers}"


@pytest.fixture
def lab(lab_factory):
    """A fresh Lab with a unique name; nothing is created until `lab.up(...)`."""
    return lab_factory()
