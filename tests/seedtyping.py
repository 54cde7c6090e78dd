"""Type a stage's seed commands as a person would, each in a shell in its namespace.

The host's shell is `nsenter --net` (so the namespaces added there are seen everywhere), the
others' `ip netns exec` (the namespace's own resolv.conf and hosts). A person is slower than
a script: after a namespace is deleted, wait until the kernel has removed its veth pair, and
after a server is started, until it listens (polling with a deadline, never a fixed sleep).
"""
from __future__ import annotations

import subprocess
import tempfile
import time

from labkit.kernel import netns
from labkit.lab import service
from labkit.model import plan, seed


def shell_argv(lab, role: str, line: str) -> list[str]:
    return netns.command(plan.namespace_name(lab.name, role), ["bash", "-c", line],
                         own_etc=role != "host", check=False)


def run_line(lab, role: str, line: str) -> tuple[int, str]:
    """Run one shell line in namespace `role` of `lab`; (exit status, output)."""
    with tempfile.TemporaryFile("w+") as out:   # a background server keeps a pipe open
        code = subprocess.run(shell_argv(lab, role, line), stdout=out, stderr=out, text=True,
                              timeout=30, stdin=subprocess.DEVNULL).returncode
        out.seek(0)
        return code, out.read()


def poll(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def type_steps(lab, stage: str, tool: str = "iptables", skip: int | None = None) -> list[str]:
    """Type the steps of `stage` (all but number `skip`); returns the lines that failed."""
    failed = []
    for i, step in enumerate(seed.steps(stage, lab.name, tool)):
        if i == skip:
            continue
        code, out = run_line(lab, step.where, step.command)
        if code:
            failed.append(f"{step.command}: {out.strip()}")
        words = step.command.split()
        if words[:4] == ["sudo", "ip", "netns", "delete"]:
            poll(lambda: not netns.exists(words[4]))
            k = plan.container_index(words[4][len(lab.name) + 1:] if lab.name else words[4])
            host = plan.namespace_name(lab.name, "host")
            poll(lambda: f"veth{k}" not in run_line(lab, "host", "ip -br link")[1])
            assert netns.exists(host)
        if "http.server" in step.command:
            ns = plan.namespace_name(lab.name, step.where)
            poll(lambda: service.is_listening(ns, plan.container_address(0), 5000))
    return failed
