"""pytest fixtures for labkit (loaded automatically once labkit is installed).

- `lab`: a fresh Lab with a unique name, torn down after the test (its own namespaces only).
- `lab_factory`: call it for more labs in one test; all are torn down after.
- `@pytest.mark.kernel` marks tests that need root and real namespaces; without privileges
  they fail with a message saying so (they are never skipped silently).
- After a session that ran kernel tests, the machine's own namespace (links, addresses,
  routes, rules, nftables and iptables rules, the sysctls labkit touches) must be exactly as
  before, and no lab namespace or journal may be left: otherwise the session fails.
"""
from __future__ import annotations

import itertools
import os
import random
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
    from labkit import journal, netns
    rng = random.Random(f"{os.getpid()}-{next(_counter)}-{os.urandom(4).hex()}")
    while True:
        name = "t" + "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(5))
        if name not in journal.labs() and not any(n.startswith(name + "-") for n in netns.names()):
            return name


def machine_snapshot() -> dict[str, str]:
    """The machine's own (root) network namespace as text, to compare before and after."""
    def run(*argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout
        except FileNotFoundError:
            return f"{argv[0]} not installed"
    snap = {
        "links": run("ip", "-o", "link", "show"),
        "addresses": run("ip", "-o", "address", "show"),
        "routes": run("ip", "route", "show", "table", "all"),
        "rules": run("ip", "rule", "show"),
        "nftables": run("nft", "list", "ruleset"),
        "iptables": _strip_counters(run("iptables-save")),
        "namespaces": run("ip", "netns", "list"),
    }
    from labkit.journal import run_dir
    snap["etc_netns"] = "\n".join(sorted(os.listdir("/etc/netns"))) if os.path.isdir("/etc/netns") else ""
    snap["journals"] = "\n".join(sorted(os.listdir(run_dir()))) if os.path.isdir(run_dir()) else ""
    for key in ("net/ipv4/ip_forward", "net/ipv4/conf/all/route_localnet",
                "net/ipv6/conf/all/disable_ipv6", "net/ipv6/conf/default/disable_ipv6"):
        try:
            with open(f"/proc/sys/{key}") as f:
                snap[key] = f.read().strip()
        except OSError:
            snap[key] = "absent"
    return snap


def _strip_counters(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("#")
                     ).replace("[0:0]", "")


def _privileged() -> bool:
    from labkit import privilege
    return not privilege.missing_capabilities()


def pytest_configure(config):
    config.addinivalue_line("markers", "kernel: needs root; creates real network namespaces")


def pytest_runtest_setup(item):
    if item.get_closest_marker("kernel"):
        if not _privileged():
            pytest.fail("this test needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN): run pytest with sudo, "
                        "or deselect kernel tests with -m 'not kernel'", pytrace=False)
        if "before" not in _state:
            _state["before"] = machine_snapshot()


def pytest_sessionfinish(session, exitstatus):
    before = _state.pop("before", None)
    if before is None:
        return
    after = machine_snapshot()
    changed = [key for key in before if before[key] != after.get(key)]
    if changed:
        lines = ["labkit leak check: the machine's own network state changed during the tests:"]
        for key in changed:
            lines.append(f"--- {key} before:\n{before[key]}\n+++ {key} after:\n{after.get(key)}")
        session.config.pluginmanager.get_plugin("terminalreporter").write_line("\n".join(lines),
                                                                               red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def lab_factory():
    """Make labs with unique names (`lab_factory()` -> Lab); every one is torn down after the test."""
    from labkit import Lab, journal, netns
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
