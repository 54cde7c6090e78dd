"""The `labkit` command as a shell user meets it: output piped into a reader that has gone."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import labkit

REPO = os.path.dirname(os.path.dirname(os.path.abspath(labkit.__file__)))


def run_into_closed_pipe(*args) -> subprocess.CompletedProcess:
    """Run `labkit ARGS` with stdout a pipe whose reader is already closed (as `| head` leaves it)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "labkit", *args], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=60,
                              env={**os.environ, "PYTHONPATH": REPO})
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
