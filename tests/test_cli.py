"""The `labkit` command as a shell user meets it: output piped into a reader that has gone."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from harness import labkit_env




def run_into_closed_pipe(*args) -> subprocess.CompletedProcess:
    """Run `labkit ARGS` with stdout a pipe whose reader is already closed (as `| head` leaves it)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "labkit", *args], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=60,
                              env=labkit_env())
    finally:
        os.close(write_end)


@pytest.mark.parametrize("args", [["--help"], ["up", "--help"], ["doctor"]])
def test_a_closed_pipe_ends_the_command_quietly(args):
    result = run_into_closed_pipe(*args)
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr, result.stderr
    assert result.returncode == (0 if "--help" in args else 141)  # argparse's help ignores it


@pytest.mark.kernel
def test_status_into_a_closed_pipe_is_quiet(lab):
    lab.up("veth")
    result = run_into_closed_pipe("status", "--lab", lab.name)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 141


def labkit(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "labkit", *args], capture_output=True, text=True,
                          timeout=120, env=labkit_env(), stdin=subprocess.DEVNULL)


def test_faults_lists_every_fault_with_its_stage():
    from labkit.lab import faults
    result = labkit("faults")
    assert result.returncode == 0
    for name, fault in faults.FAULTS.items():
        assert any(line.split()[:2] == [name, fault.stage] for line in result.stdout.splitlines())


@pytest.mark.kernel
def test_practice_check_and_a_fault_from_the_command_line(lab):
    result = labkit("practice", "veth", "--lab", lab.name)
    assert result.returncode == 0 and f"sudo ip netns add {lab.name}-netns0" in result.stdout
    result = labkit("check", "--lab", lab.name)
    assert result.returncode == 1 and "stage veth: not done yet" in result.stdout
    assert "fix:" not in result.stdout
    assert "fix: in host" in labkit("check", "--lab", lab.name, "--fix").stdout
    data = json.loads(labkit("check", "veth", "--lab", lab.name, "--json").stdout)
    assert data["ok"] is False and data["stage"] == "veth" and data["items"]
    result = labkit("up", "bridge", "--lab", lab.name, "--fault", "bridge-down")
    assert result.returncode == 0 and "Symptom: no container reaches" in result.stdout
    assert labkit("check", "bridge", "--lab", lab.name).returncode == 1
    assert "fault 'bridge-down' is set" in labkit("status", "--lab", lab.name).stdout
    lab.exec("host", ["ip", "link", "set", "br0", "up"], check=True)
    result = labkit("check", "bridge", "--lab", lab.name)
    assert result.returncode == 0, result.stdout


@pytest.mark.kernel
def test_a_bad_fault_is_one_line_naming_the_choices(lab):
    result = labkit("up", "veth", "--lab", lab.name, "--fault", "no-masquerade")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "does not apply to stage 'veth'" in result.stderr
    result = labkit("up", "veth", "--lab", lab.name, "--fault", "cable-cut")
    assert result.returncode == 2 and "ceth-down" in result.stderr and "Traceback" not in result.stderr
    assert lab.roles() == []
