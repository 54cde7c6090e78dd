"""Mystery faults: drawn by seed or by student, never named where a student looks, and fixed by
hand (a file of its own, so that it runs beside tests/test_faults.py on another worker)."""
from __future__ import annotations

import os

import pytest

from labkit.errors import BadValue
from labkit.lab import faults
from labkit.model import stages

from test_faults import type_fix
BIG = [s for s in stages.STAGES if len(faults.pool(s)) >= 3]


@pytest.mark.parametrize("stage", BIG)
def test_twenty_seeds_or_twenty_students_draw_at_least_three_faults(stage):
    assert len({faults.draw(stage, seed=n) for n in range(20)}) >= 3
    assert len({faults.draw(stage, user=f"student{n}") for n in range(20)}) >= 3
    assert faults.draw(stage, user="ada") == faults.draw(stage, user="ada")
    assert faults.draw(stage, seed=7) == faults.draw(stage, seed="7")
    assert all(faults.draw(stage, seed=n) in faults.pool(stage) for n in range(20))


def test_a_draw_does_not_change_between_runs():
    """A stable hash (not Python's, randomized per process): the same student, the same fault."""
    import subprocess
    import sys
    code = "from labkit.lab import faults; print(faults.draw('publish', user='ada'), faults.draw('bridge', seed=3))"
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": str(n)}).stdout for n in range(3)}
    assert runs == {f"{faults.draw('publish', user='ada')} {faults.draw('bridge', seed=3)}\n"}


def test_the_student_is_the_user_behind_sudo(monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    monkeypatch.setenv("SUDO_USER", "ada")
    assert faults.student() == "ada"
    assert faults.draw("outside") == faults.draw("outside", user="ada")


def test_a_seed_without_a_random_fault_is_refused():
    from labkit.lab import Lab
    with pytest.raises(BadValue, match="random"):
        Lab("zz").up("bridge", fault="stray-route", seed=3)


def _cli(*args):
    from test_cli import labkit
    return labkit(*args)


def _said_by_what_a_student_runs(lab, stage: str) -> str:
    outputs = [_cli("status", "--lab", lab.name), _cli("status", "--lab", lab.name, "--json"),
               _cli("check", stage, "--lab", lab.name), _cli("check", stage, "--lab", lab.name, "--json"),
               _cli("faults"), _cli("faults", "--lab", lab.name)]
    return "\n".join(r.stdout + r.stderr for r in outputs)


@pytest.mark.kernel
@pytest.mark.parametrize("stage", stages.STAGES)
def test_a_mystery_fault_is_named_only_by_reveal_and_fixed_by_hand(lab, stage):
    seed = 5
    name = faults.draw(stage, seed=seed)
    result = _cli("up", stage, "--lab", lab.name, "--fault", "random", "--seed", str(seed))
    assert result.returncode == 0, result.stderr
    assert name not in result.stdout and faults.FAULTS[name].symptom not in result.stdout
    assert lab.journal.get("fault") == name                       # the journal keeps its name
    said = _said_by_what_a_student_runs(lab, stage)
    assert name not in said.replace(_cli("faults").stdout, ""), said
    assert _cli("faults", "--lab", lab.name).stdout == _cli("faults").stdout
    assert "a fault is set" in _cli("status", "--lab", lab.name).stdout
    assert name in _cli("faults", "--reveal", "--lab", lab.name).stdout
    check = _cli("check", stage, "--lab", lab.name)
    assert check.returncode == 1 and "wrong: " in check.stdout
    assert "look:" not in check.stdout and "fix:" not in check.stdout
    assert "look:" in _cli("check", stage, "--lab", lab.name, "--hint").stdout
    assert "fix:" in _cli("check", stage, "--lab", lab.name, "--fix").stdout
    assert "look:" in lab.hint(stage, 1) and "fix:" not in lab.hint(stage, 1)
    assert "change:" in _cli("check", stage, "--lab", lab.name, "--hint", "2").stdout
    assert "fix:" in lab.hint(stage, 3) and "fix:" not in lab.hint(stage, 2)
    assert "look:" not in str(lab.check(stage))
    type_fix(lab, name)
    fixed = lab.check(stage)
    assert fixed.ok, f"{name}: {fixed.text(3)}"


@pytest.mark.kernel
def test_the_same_student_draws_the_same_fault_again(lab, monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    monkeypatch.setenv("SUDO_USER", "ada")
    plan = lab.up("outside", fault="random")
    first = lab.journal.get("fault")
    assert first == faults.draw("outside", user="ada") and lab.journal.get("mystery")
    assert plan.namespace("host") == stages.build("outside", lab.name).namespace("host")  # unbroken
    lab.up("outside")
    assert lab.journal.get("fault") is None and lab.check("outside").ok
    lab.up("outside", fault="random")
    assert lab.journal.get("fault") == first
    assert lab.drift() == [f"a fault is set: `labkit check outside --lab {lab.name}` says what is left to do"]
