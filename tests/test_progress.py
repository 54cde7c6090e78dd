"""Each check is recorded for the student and, under a hub, for the instructor (real kernel)."""
import json
import subprocess
import sys

import pytest

from labkit.lab import progress

from harness import labkit_env

pytestmark = pytest.mark.kernel


def test_every_check_and_hint_is_recorded_and_progress_shows_them_without_the_fault(
        lab, tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("SUDO_USER", raising=False)
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    lab.up("bridge", fault="port-not-on-bridge")
    assert not lab.check("bridge")
    assert "fix:" in lab.hint("bridge", 3)
    first, second = progress.load()
    assert (first.user, first.lab, first.stage, first.done, first.hints) == ("root", lab.name, "bridge", False, 0)
    assert first.fault == "port-not-on-bridge" and first.unmet and second.hints == 3
    assert any(i.startswith("links/") for i in first.unmet), first.unmet
    env = labkit_env(LABKIT_STATE_DIR=str(tmp_path))
    result = subprocess.run([sys.executable, "-m", "labkit", "check", "bridge", "--lab", lab.name, "--fix"],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 1 and progress.load()[-1].hints == 3
    shown = subprocess.run([sys.executable, "-m", "labkit", "progress"], capture_output=True, text=True,
                           timeout=60, env=env)
    assert shown.returncode == 0, shown.stderr
    assert f"lab {lab.name} stage bridge: not done yet; 3 check(s), hints up to level 3" in shown.stdout
    listed = subprocess.run([sys.executable, "-m", "labkit", "progress", "--json"], capture_output=True,
                            text=True, timeout=60, env=env)
    records = json.loads(listed.stdout)
    assert len(records) == 3 and all("fault" not in r for r in records)
    assert "port-not-on-bridge" not in shown.stdout + listed.stdout
    lab.up("bridge")
    assert lab.check("bridge") and progress.load()[-1].done and progress.load()[-1].unmet == ()
