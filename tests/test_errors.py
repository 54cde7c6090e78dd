"""Bad input and missing privileges or tools: a LabkitError naming problem and fix, nothing half-made."""
import os
import signal
import subprocess
import sys

import pytest

from labkit import Lab, journal, netns
from labkit.errors import BadAddress, BadName, BadValue, LabkitError, MissingTool, UnknownName

pytestmark = pytest.mark.kernel


def labkit_cli(*args, env=None, **kwargs):
    return subprocess.run([sys.executable, "-m", "labkit", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120, **kwargs)


def assert_nothing_made(name):
    assert name not in journal.labs()
    assert not [n for n in netns.names() if n.startswith(name + "-")]


def test_bad_container_count_creates_nothing(lab):
    with pytest.raises(BadValue, match="1 to 1000"):
        lab.up("bridge", containers=1001)
    assert_nothing_made(lab.name)


def test_unknown_stage_creates_nothing(lab):
    with pytest.raises(UnknownName, match="choose one of"):
        lab.up("bridges")
    assert_nothing_made(lab.name)


def test_bad_lab_name():
    with pytest.raises(BadName):
        Lab("this-is-long")


def test_unknown_namespace(lab):
    lab.up("veth")
    with pytest.raises(UnknownName, match="has no namespace 'netns1'"):
        lab.exec("netns1", ["true"])


def test_address_clash_bad_cidr_and_long_names(lab):
    lab.up("bridge")
    with pytest.raises(BadAddress, match="already in use .* netns1:ceth1"):
        lab.add_address("netns0", "ceth0", "172.18.0.20/16")
    with pytest.raises(BadAddress, match="prefix length"):
        lab.add_address("netns0", "ceth0", "172.18.0.300/16")
    with pytest.raises(UnknownName, match="no interface 'ceth9'"):
        lab.add_address("netns0", "ceth9", "172.18.5.5/16")
    lab.add_address("netns0", "ceth0", "172.18.5.5/16")
    assert lab.ping("netns1", "172.18.5.5")
    with pytest.raises(BadName, match="at most 15"):
        from labkit.plan import check_kernel_name
        check_kernel_name("averyveryverylongname")


def test_cli_reports_errors_in_one_line_without_traceback(lab):
    result = labkit_cli("up", "bridge", "--lab", lab.name, "--containers", "5000")
    assert result.returncode == 2
    assert "out of range" in result.stderr and "Traceback" not in result.stderr
    result = labkit_cli("exec", "--lab", lab.name, "netns0", "--", "true")
    assert result.returncode == 2 and "has no namespace 'netns0'" in result.stderr
    assert_nothing_made(lab.name)


def test_missing_tool_names_the_package(lab):
    lab.up("veth")
    result = labkit_cli("exec", "--lab", lab.name, "netns0", "--", "ping", "-c1", "172.18.0.11",
                        env={"PATH": "/nonexistent"})
    assert result.returncode == 2
    assert "apt-get install iproute2" in result.stderr, result.stderr


def test_not_root_says_how_to_run_it(tmp_path):
    # run as nobody: no CAP_NET_ADMIN, no CAP_SYS_ADMIN
    env = {"LABKIT_RUN_DIR": str(tmp_path / "run"), "PYTHONPATH": os.getcwd()}
    result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                             sys.executable, "-m", "labkit", "up", "veth", "--lab", "np"],
                            capture_output=True, text=True, env={**os.environ, **env}, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "needs root" in result.stderr and "sudo" in result.stderr
    assert "Traceback" not in result.stderr
    assert_nothing_made("np")


def test_no_capabilities_says_what_is_missing(tmp_path):
    from labkit.pytest_plugin import WITHOUT_CAPABILITIES
    for command in (["up", "veth", "--lab", "np"], ["status", "--lab", "np"], ["down"], ["doctor"]):
        result = subprocess.run([*WITHOUT_CAPABILITIES, sys.executable, "-m", "labkit", *command],
                                capture_output=True, text=True, timeout=60,
                                env={**os.environ, "LABKIT_RUN_DIR": str(tmp_path)})
        assert "Traceback" not in result.stderr, (command, result.stderr)
        if command[0] == "doctor":
            assert result.returncode == 1 and "missing CAP_NET_ADMIN" in result.stdout
        elif command[0] == "up":
            assert result.returncode == 2 and "without CAP_NET_ADMIN" in result.stderr
    assert_nothing_made("np")


def test_kill_9_during_up_then_clean_leaves_nothing(tmp_path):
    env = {**os.environ, "LABKIT_RUN_DIR": str(tmp_path / "run")}
    proc = subprocess.Popen([sys.executable, "-m", "labkit", "up", "bridge", "--lab", "k9",
                             "--containers", "300"], env=env, stdout=subprocess.DEVNULL)
    import time
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(n.startswith("k9-netns1") for n in netns.names()):
        time.sleep(0.002)  # poll for the kernel state the kill must interrupt
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert any(n.startswith("k9-") for n in netns.names()), "killed too late to test anything"
    result = subprocess.run([sys.executable, "-m", "labkit", "clean"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert not [n for n in netns.names() if n.startswith("k9-")]
    assert not os.path.exists(tmp_path / "run" / "k9.json")


def test_errors_are_labkit_errors():
    for cls in (BadAddress, BadName, BadValue, MissingTool, UnknownName):
        assert issubclass(cls, LabkitError)
