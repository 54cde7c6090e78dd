"""Crash safety: `kill -9` of `labkit up publish`, and of a Jupyter kernel running
`Lab(...).up("publish")`, at many points of the build; `labkit clean` then leaves nothing
(no namespace, journal, /etc/netns entry, nft table, iptables rule or lab process) and a
fresh `labkit up publish` serves the page again.

Kill points are timed (a random delay within the measured build time) and triggered (the
moment an observable of one build step appears: namespaces, links, NAT, resolver files,
servers). Each test has a private LABKIT_RUN_DIR, so `labkit clean` sees only its own lab.
The seed is printed, so a failing run can be replayed with LABKIT_CRASH_SEED.
"""
from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

import pytest

from labkit.kernel import process
from labkit.kernel import netns
from labkit.model import plan
from labkit.lab import etcfiles, service
from labkit.pytest_plugin import unique_lab_name

from harness import labkit_env

pytestmark = pytest.mark.kernel

KILL_POINTS = 24          # kills that land while `up` is still running (at least 20)
FRESH_UPS = 4             # of which this many are followed by a fresh `up publish` that must work
SEED = int(os.environ.get("LABKIT_CRASH_SEED", random.SystemRandom().randrange(1 << 30)))
CURL = ["curl", "-sS", "--noproxy", "*", "--connect-timeout", "2", "-m", "4"]
PAGE = "Hello from netns0"
FIGURES: dict[str, int] = {}
PHASES: dict[str, int] = {}


def env_for(run_dir) -> dict[str, str]:
    return labkit_env(LABKIT_RUN_DIR=str(run_dir))


def labkit_cli(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "labkit", *args], env=env, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def poll(condition, timeout: float = 10.0, what: str = "condition"):
    """Poll `condition()` until it is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.001)


# -- what a lab may leave behind -----------------------------------------------------------------

def root_rules() -> str:
    """The machine's own nftables ruleset and iptables/ip6tables rules (no comments/counters)."""
    out = []
    for argv in (["nft", "list", "ruleset"], ["iptables-save"], ["ip6tables-save"]):
        try:
            text = subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout
        except FileNotFoundError:
            continue
        out += [line.split(" [")[0] for line in text.splitlines() if not line.startswith("#")]
    return "\n".join(out)


def lab_inodes(lab: str, held: dict[int, int] | None = None) -> dict[int, int]:
    """Inode (namespace identity) -> an open fd, for each of the lab's namespaces mounted now,
    added to `held`. The fd keeps the namespace alive until `release(held)`, so its inode
    cannot be reused by someone else's new namespace before the leftovers are checked."""
    held = {} if held is None else held
    for name in os.listdir(netns.netns_dir()):
        if name.startswith(lab + "-") and netns.exists(name):
            try:
                fd = os.open(netns.path(name), os.O_RDONLY)
            except OSError:
                continue
            ino = os.fstat(fd).st_ino
            if ino in held:
                os.close(fd)
            else:
                held[ino] = fd
    return held


def release(held: dict[int, int]) -> None:
    for fd in held.values():
        os.close(fd)
    held.clear()


def lab_processes(inodes, run_dir: str) -> list[str]:
    """Processes in one of the namespaces `inodes`, or working in the lab's run dir (its
    servers: http.server and the world's whoami run from there)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            ino = os.stat(f"/proc/{entry}/ns/net").st_ino
            cwd = os.readlink(f"/proc/{entry}/cwd")
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            with open(f"/proc/{entry}/stat") as f:
                zombie = f.read().rsplit(") ", 1)[1].startswith("Z")
        except OSError:
            continue
        if zombie:
            continue
        if ino in inodes:
            found.append(f"process {entry} ({cmd}) in a lab namespace")
        elif cwd.startswith(run_dir) and ("http.server" in cmd or "labkit.lab.service" in cmd):
            found.append(f"process {entry} ({cmd}) is a server of the lab")
    return found


def leftovers(lab: str, run_dir: str, inodes, rules_before: str) -> list[str]:
    """Everything of lab `lab` still on the machine."""
    found = [f"namespace file {n}" for n in os.listdir(netns.netns_dir()) if n.startswith(lab + "-")]
    if os.path.isdir(run_dir):
        found += [f"journal dir entry {e}" for e in os.listdir(run_dir)]
    if os.path.isdir(etcfiles.etc_dir()):
        found += [f"{etcfiles.etc_dir()}/{n}" for n in os.listdir(etcfiles.etc_dir())
                  if n.startswith(lab + "-")]
    found += lab_processes(inodes, run_dir)
    if root_rules() != rules_before:
        found.append("the machine's own nftables/iptables rules changed")
    return found


# -- observables of the build, in the order `up publish` makes them ------------------------------

def _journal(run_dir: str, lab: str) -> dict:
    try:
        with open(os.path.join(run_dir, f"{lab}.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _has_link(kernel: str, ifname: str) -> bool:
    if not netns.exists(kernel):
        return False
    try:
        with netns.entered(kernel):
            return any(name == ifname for _, name in socket.if_nameindex())
    except Exception:  # noqa: BLE001 - deleted under us: not there
        return False


def _listening(kernel: str, address: str, port: int) -> bool:
    try:
        return netns.exists(kernel) and service.is_listening(kernel, address, port)
    except Exception:  # noqa: BLE001
        return False


def observables(lab: str, run_dir: str) -> dict[str, callable]:
    ns = lambda role: plan.namespace_name(lab, role)  # noqa: E731
    return {
        "journal written": lambda: os.path.exists(os.path.join(run_dir, f"{lab}.json")),
        "host namespace": lambda: netns.exists(ns("host")),
        "last namespace": lambda: netns.exists(ns("netns1")),
        "uplink ens18": lambda: _has_link(ns("host"), "ens18"),
        "veth1": lambda: _has_link(ns("host"), "veth1"),
        "bridge br0": lambda: _has_link(ns("host"), "br0"),
        "resolver files": lambda: os.path.exists(os.path.join(etcfiles.etc_dir(), ns("netns1"),
                                                              "resolv.conf")),
        "NAT journaled": lambda: bool(_journal(run_dir, lab).get("records", {}).get("nat")),
        "NAT applied": lambda: "nat_backend" in _journal(run_dir, lab).get("records", {}),
        "world server spawned": lambda: bool(_journal(run_dir, lab).get("records", {}).get("services")),
        "world server listening": lambda: _listening(ns("world"), plan.PUBLIC_SERVER, 80),
        "seed server listening": lambda: _listening(ns("netns0"), "172.18.0.10", 5000),
    }


def phase(lab: str, run_dir: str) -> str:
    """The last build step (in build order) whose observable holds now."""
    reached = "nothing yet"
    for name, check in observables(lab, run_dir).items():
        if check():
            reached = name
    return reached


# -- the tests ------------------------------------------------------------------------------------

def kill_during(argv: list[str], env: dict, trigger, lab: str) -> tuple[bool, dict[int, int]]:
    """Start `argv`, SIGKILL it when `trigger()` is true; returns (still running at the kill?,
    the lab namespaces seen, held as by `lab_inodes`)."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    held: dict[int, int] = {}
    try:
        while proc.poll() is None and not trigger():
            lab_inodes(lab, held)
            time.sleep(0.0005)
        running = proc.poll() is None
        if running:
            os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
        proc.stderr.close()
    return running, lab_inodes(lab, held)


def clean_and_check(env, lab: str, run_dir: str, held: dict[int, int], rules_before: str, where: str):
    try:
        result = labkit_cli(env, "clean")
        assert result.returncode == 0 and "Traceback" not in result.stderr, (where, result.stderr)
        left = leftovers(lab, run_dir, set(held), rules_before)
    finally:
        release(held)
    FIGURES["leftovers found"] = FIGURES.get("leftovers found", 0) + len(left)
    assert not left, f"after a kill at {where} and `labkit clean` (seed {SEED}): {left}"


def fresh_up_serves_the_page(env, lab: str, backend: str) -> None:
    result = labkit_cli(env, "up", "publish", "--lab", lab, "--backend", backend)
    assert result.returncode == 0, result.stderr
    page = netns.run(plan.namespace_name(lab, "world"), CURL + ["http://10.0.2.15:5000/"], check=False)
    assert PAGE in page.stdout, page.stderr


def kill_points(rng: random.Random, lab: str, run_dir: str, build_time: float) -> list[tuple[str, object]]:
    """Every observable once (shuffled), then random delays within the build time."""
    triggered = list(observables(lab, run_dir).items())
    rng.shuffle(triggered)
    points: list[tuple[str, object]] = [(f"when {name} appears", check) for name, check in triggered]
    # more than enough delays: the loop stops once KILL_POINTS kills landed mid-build (the one
    # timed build may have been slower than later ones, whose end some delays then miss)
    points += [(f"{d * 1000:.0f} ms in", d) for d in (rng.uniform(0, build_time) for _ in range(100))]
    return points


def test_kill_9_of_up_publish_at_many_points_then_clean(tmp_path):
    rng = random.Random(SEED)
    print(f"crash test seed: {SEED} (replay with LABKIT_CRASH_SEED={SEED})")
    lab, run_dir = unique_lab_name(), str(tmp_path / "run")
    env = env_for(run_dir)
    rules_before = root_rules()
    started = time.monotonic()                      # the whole build, timed once
    fresh_up_serves_the_page(env, lab, "nftables")
    build_time = time.monotonic() - started
    clean_and_check(env, lab, run_dir, lab_inodes(lab), rules_before, "the end of a whole build")
    try:
        tried, mid_build, fresh = crash_loop(rng, env, lab, run_dir, build_time, rules_before)
    finally:
        labkit_cli(env, "clean")                    # whatever happened, leave no lab
    FIGURES.update({"kill points tried": tried, "kills mid-build": mid_build, "fresh ups": fresh + 1})
    print(f"crash figures: {FIGURES}, build time {build_time:.2f} s; "
          f"last step reached at each kill: {PHASES}")
    assert mid_build >= 20 and fresh >= FRESH_UPS, FIGURES
    assert len(PHASES) >= 6, f"kills not spread over the build: {PHASES}"


def crash_loop(rng, env, lab, run_dir, build_time, rules_before) -> tuple[int, int, int]:
    """Kill `up publish` at each point until enough landed mid-build; returns (tried,
    mid-build, fresh ups)."""
    up = [sys.executable, "-m", "labkit", "up", "publish", "--lab", lab]
    mid_build = tried = fresh = 0
    over_a_lab = due = False                         # the previous point left a lab at publish
    for i, (where, point) in enumerate(kill_points(rng, lab, run_dir, build_time)):
        if mid_build >= KILL_POINTS and fresh >= FRESH_UPS:
            break
        backend = rng.choice(("nftables", "iptables"))
        if isinstance(point, float):
            deadline = time.monotonic() + point
            point = lambda deadline=deadline: time.monotonic() >= deadline  # noqa: E731
        running, held = kill_during([*up, "--backend", backend], env, point, lab)
        tried += 1
        mid_build += running
        try:
            if running:
                reached = phase(lab, run_dir)
                PHASES[reached] = PHASES.get(reached, 0) + 1
            if running and mid_build <= 3 and os.path.exists(os.path.join(run_dir, f"{lab}.json")):
                said = labkit_cli(env, "status", "--lab", lab)   # before cleaning: what does it say?
                assert said.returncode == 0 and "Traceback" not in said.stderr, said.stderr
                if _journal(run_dir, lab).get("records", {}).get("stage") is None:
                    assert "the last `labkit up publish` did not finish" in said.stdout, said.stdout
        finally:
            clean_and_check(env, lab, run_dir, held, rules_before,
                            f"{where} ({backend}{', over a lab at publish' if over_a_lab else ''})")
        over_a_lab = False
        due = due or i % 5 == 4                       # every fifth point, or the next that ran
        if running and fresh < FRESH_UPS and due:
            fresh_up_serves_the_page(env, lab, backend)
            fresh, due = fresh + 1, False
            over_a_lab = True                        # the next kill repeats or switches over it
    if over_a_lab:
        clean_and_check(env, lab, run_dir, lab_inodes(lab), rules_before, "the last fresh up")
    return tried, mid_build, fresh


def test_kill_9_of_a_jupyter_kernel_mid_cell(tmp_path, monkeypatch):
    """A student's kernel dies (kill -9) while a cell runs Lab(...).up("publish")."""
    from jupyter_client import KernelManager
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter"))
    rules_before = root_rules()
    for i, name in enumerate(("last namespace", "NAT applied", "world server spawned")):
        lab, run_dir = unique_lab_name(), str(tmp_path / f"run{i}")
        env = env_for(run_dir)
        km = KernelManager(kernel_name="python3")
        km.start_kernel(env=env, cwd=str(tmp_path))
        client = km.client()
        client.start_channels()
        inodes: dict[int, int] = {}
        killed = False
        try:
            client.wait_for_ready(timeout=60)
            client.execute(f"from labkit import Lab\nLab({lab!r}).up('publish')\n")
            poll(observables(lab, run_dir)[name], 30, name)
            lab_inodes(lab, inodes)
            os.kill(km.provisioner.process.pid, signal.SIGKILL)
            poll(lambda: not km.is_alive(), 10, "the kernel to die")
            lab_inodes(lab, inodes)
            assert inodes, "killed too late: nothing to clean"
            killed = True
        finally:
            client.stop_channels()
            if km.is_alive():
                km.shutdown_kernel(now=True)
            km.cleanup_resources()
            if not killed:
                labkit_cli(env, "clean")
                release(inodes)
        clean_and_check(env, lab, run_dir, inodes, rules_before, f"a kernel killed when {name} appeared")
    FIGURES["kernel kills"] = 3


def test_stopping_a_server_whose_parent_lives_on_does_not_wait(tmp_path):
    """`labkit clean` in a terminal while the notebook kernel that started the servers lives:
    a server ended there stays a zombie until the kernel reaps it; that is ended, not alive."""
    parent = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time\n"
                               "p = subprocess.Popen(['sleep', '300'])\n"
                               "print(p.pid, flush=True)\ntime.sleep(300)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        pid = int(parent.stdout.readline())
        started = time.monotonic()
        service.stop(pid, process.start_time(pid))
        assert time.monotonic() - started < 2
        assert process.start_time(pid) is None
    finally:
        parent.kill()
        parent.wait()
