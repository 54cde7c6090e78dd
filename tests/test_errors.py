"""Bad input and missing privileges or tools: a LabkitError naming problem and fix, nothing half-made."""
import os
import signal
import subprocess
import sys

import pytest

from labkit import Lab
from labkit.lab import journal
from labkit.kernel import netns
from labkit.errors import BadAddress, BadName, BadValue, KernelError, LabkitError, MissingTool, UnknownName

from harness import kernel_without_capabilities, labkit_env, without_capabilities

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
        from labkit.model.plan import check_kernel_name
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


NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
EVERY_COMMAND = (("up", "veth"), ("down",), ("status",), ("clean",), ("exec", "netns0", "--", "true"),
                 ("doctor",), ("capture", "netns0:ceth0", "-c", "1"), ("draw", "-o", "{tmp}/x.svg"),
                 ("handout", "-o", "{tmp}/handouts"))


@pytest.mark.parametrize("who", ["nobody", "root without capabilities"])
def test_every_command_says_what_it_needs(who, public_dir, monkeypatch, tmp_path):
    """Each CLI command run without privileges, on a lab that is up: one clear message naming
    what is needed and how to run it, no traceback, and the lab unchanged."""
    from labkit.pytest_plugin import WITHOUT_CAPABILITIES, unique_lab_name
    monkeypatch.setenv("LABKIT_RUN_DIR", public_dir)
    lab = Lab(unique_lab_name())
    lab.up("bridge")
    os.chmod(tmp_path, 0o777)
    prefix = NOBODY if who == "nobody" else WITHOUT_CAPABILITIES
    env = labkit_env(HOME=str(tmp_path), MPLCONFIGDIR=str(tmp_path / "mpl"),
                     LABKIT_WORLD="off")  # a normal user would get a world of its own (test_rootless)
    python = _interpreter_for(prefix, env)
    try:
        for command in EVERY_COMMAND:
            argv = [a.format(tmp=tmp_path) for a in command]
            if command[0] not in ("clean", "doctor", "handout"):
                argv[1:1] = ["--lab", lab.name]
            result = subprocess.run([*prefix, python, "-m", "labkit", *argv], capture_output=True,
                                    text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
            said = result.stdout + result.stderr
            assert "Traceback" not in said, (argv, said)
            if command[0] == "doctor":
                assert result.returncode == 1 and "missing CAP_NET_ADMIN" in said, said
                assert "run labkit as root in a privileged Linux VM (sudo labkit ...)" in said
            else:
                assert result.returncode == 2, (argv, result.returncode, said)
                assert said.count("\n") == 1 and said.startswith("labkit: error: labkit needs root"), said
                assert "CAP_NET_ADMIN" in said and "sudo labkit" in said, said
        assert lab.stage == "bridge" and lab.drift() == []
        assert not os.path.exists(tmp_path / "x.svg") and not os.path.exists(tmp_path / "handouts")
        fresh = unique_lab_name()
        result = subprocess.run([*prefix, python, "-m", "labkit", "up", "veth", "--lab", fresh],
                                capture_output=True, text=True, timeout=60, env=env)
        assert result.returncode == 2 and "needs root" in result.stderr, result.stderr
        assert_nothing_made(fresh)
    finally:
        lab.down()


def _interpreter_for(prefix, env) -> str:
    """This interpreter, or the system's (the refusals need only the standard library), as
    long as the user `prefix` runs as can reach it and the labkit sources."""
    for python in (sys.executable, "/usr/bin/python3"):
        probe = subprocess.run([*prefix, python, "-c", "import labkit.cli"], capture_output=True,
                               env=env, timeout=60)
        if probe.returncode == 0:
            return python
    pytest.skip(f"{' '.join(prefix)} cannot run Python on labkit's sources here (a directory on "
                f"the way is private): the same commands are checked as root without capabilities")


def test_notebooks_start_with_the_setup_that_explains():
    """Every notebook's first code cell is labkit.teach.notebook.setup(): the first labkit call a
    student makes says, without privileges, what is needed (test_notebook_tools runs it)."""
    import glob
    import json
    paths = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "notebooks", "*.ipynb")))
    for path in paths:
        with open(path) as f:
            cells = [c for c in json.load(f)["cells"] if c["cell_type"] == "code"]
        first = "".join(cells[0]["source"]) if cells else ""
        assert "labkit.teach.notebook.setup()" in first, (path, first)


def test_a_kernel_without_capabilities_runs_the_first_cells_without_a_traceback(tmp_path, monkeypatch):
    """A real Jupyter kernel without CAP_NET_ADMIN (a hosted notebook service): the setup cell
    explains once; each later cell that needs the kernel, found in no stored notebook, says so in
    one line (test_replay: those that are, replay their recording); no cell fails, so Run All goes on."""
    from jupyter_client import KernelManager
    monkeypatch.setenv("JUPYTER_PATH", kernel_without_capabilities(tmp_path))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    env = labkit_env(LABKIT_RUN_DIR=str(tmp_path / "run"), IPYTHONDIR=str(tmp_path / "ipy"))
    km = KernelManager(kernel_name="nocaps")
    km.start_kernel(env=env, cwd=str(tmp_path))
    client = km.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        outputs = []
        for code in ("import labkit.teach.notebook; labkit.teach.notebook.setup()",
                     "from labkit import Lab\nlab = Lab('np')\nlab.up('veth')",
                     "lab.up('bridge')"):
            reply = client.execute_interactive(code, timeout=60, output_hook=outputs.append)
            assert reply["content"]["status"] == "ok", (code, reply["content"])
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)
    kinds = [m["msg_type"] for m in outputs]
    text = "".join(m["content"].get("text", "") for m in outputs if m["msg_type"] == "stream")
    assert "error" not in kinds and "Traceback" not in text, outputs
    assert text.count("needs a privileged Linux VM") == 1, text
    assert text.count("needs a privileged VM, and no run of it was recorded") == 2, text


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


def test_a_command_that_outlives_its_timeout_is_a_labkit_error(lab):
    """lab.exec with a timeout that runs out: a KernelError naming the command (not
    subprocess.TimeoutExpired), and the command is ended."""
    lab.up("veth")
    with pytest.raises(KernelError, match="did not finish within"):
        lab.exec("netns0", ["sleep", "30"], timeout=0.3)
    assert netns.pids(lab.ns("netns0")) == []


def test_ping_without_privileges_says_so_instead_of_answering_false(lab, tmp_path):
    """Lab.ping / Lab.exec from a process without CAP_SYS_ADMIN (a notebook kernel started
    without sudo, on a lab brought up as root) cannot enter the namespace: NotPrivileged,
    not a ping that 'fails' as if the address were unreachable."""
    lab.up("veth")
    assert lab.ping("netns0", "172.18.0.11")
    code = (f"from labkit import Lab\nfrom labkit.errors import NotPrivileged\n"
            f"try:\n    print(Lab({lab.name!r}).ping('netns0', '172.18.0.11'))\n"
            f"except NotPrivileged:\n    print('NotPrivileged')\n")
    result = without_capabilities("-c", code, HOME=str(tmp_path))
    assert result.stdout.strip() == "NotPrivileged", result.stdout + result.stderr
