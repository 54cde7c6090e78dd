"""The `%%lab ROLE` cell magic, through a real IPython shell, in a lab on the real kernel."""
import os
import re
import subprocess
import time

import pytest

from labkit.errors import BadValue
from labkit.kernel import netns
from labkit.teach.notebook import magic

from harness import without_capabilities


@pytest.fixture
def ip():
    """The IPython shell of this process, with the magic loaded as a notebook's setup() does."""
    from IPython.core.interactiveshell import InteractiveShell
    from labkit.teach import notebook
    shell = InteractiveShell.instance()
    notebook.setup(quiet=True)
    return shell


def cell(ip, capsys, text):
    """Run `text` as a notebook cell; returns what it printed (and fails on a traceback)."""
    capsys.readouterr()
    result = ip.run_cell(text)
    out = capsys.readouterr()
    assert result.error_in_exec is None and result.error_before_exec is None, out
    assert "Traceback" not in out.out + out.err
    return out.out


def running(pid: int) -> bool:
    """True if process `pid` exists and is not a zombie (waiting for its parent to reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


# -- no root -------------------------------------------------------------------------------------

@pytest.mark.parametrize("line, into", [
    ("sudo nsenter --net=/var/run/netns/netns0 bash", "netns0"),
    ("nsenter -n /run/netns/t1-netns1", "netns1"),
    ("ip netns exec t1-netns0 bash", "netns0"),
    ("sudo ip netns exec netns1 sh -l", "netns1"),
    ("bash", "host"),
    ("sudo -i", "host"),
    ("sudo su", "host"),
])
def test_a_line_that_opens_an_interactive_shell_is_recognised(line, into):
    assert magic.interactive(line, "host", "t1") == into


@pytest.mark.parametrize("line", [
    "ip netns exec netns0 ip -br addr", "sudo nsenter --net=/run/netns/netns0 ip link",
    "bash -c 'ip link'", "sh script.sh", "python3 -m http.server --bind 172.18.0.10 5000 &",
    "echo bash", "ip link | grep bash",
])
def test_other_lines_are_not_taken_for_shells(line):
    assert magic.interactive(line, "host", "") is None


def test_cell_lines_skip_comments_and_join_continuations():
    text = "\n# a comment\n  ### BEGIN SOLUTION\nip link \\\n  show lo\n\n  echo x  \n"
    assert magic.commands(text) == ["ip link \\\n  show lo", "echo x"]


def test_the_magic_line_is_parsed_and_a_wrong_one_gets_the_usage(monkeypatch):
    monkeypatch.setattr(magic, "default_lab", "t9")
    assert magic.parse("netns0") == ("netns0", "t9", magic.timeout)
    assert magic.parse("host --lab=t1 --timeout 5") == ("host", "t1", 5.0)
    for wrong in ("", "--lab t1", "host netns0", "host --timeout x", "host --bogus"):
        with pytest.raises(BadValue, match="usage: %%lab ROLE"):
            magic.parse(wrong)


def test_without_privileges_a_cell_prints_one_line(tmp_path):
    code = ("from IPython.testing.globalipapp import start_ipython\n"
            "ip = start_ipython()\n"
            "ip.run_cell('%load_ext labkit.teach.notebook.magic')\n"
            "ip.run_cell('%%lab host\\nip link')\n")
    result = without_capabilities("-c", code, HOME=str(tmp_path), IPYTHONDIR=str(tmp_path / "ipy"),
                                  LABKIT_RUN_DIR=str(tmp_path / "run"))
    out = (result.stdout + result.stderr).strip()
    assert out.startswith("labkit: labkit needs root") and "\n" not in out, out


# -- kernel --------------------------------------------------------------------------------------

@pytest.mark.kernel
def test_host_shows_its_veth_address(ip, capsys, lab):
    lab.up("veth")
    out = cell(ip, capsys, f"%%lab host --lab {lab.name}\nip -br addr")
    assert out.startswith("root@host:~# ip -br addr\n"), out
    assert re.search(r"^veth0@if\d+ +UP +172\.18\.0\.11/16 *$", out, re.M), out


@pytest.mark.kernel
def test_commands_run_in_the_cells_namespace_one_after_another(ip, capsys, lab, monkeypatch):
    lab.up("veth")
    monkeypatch.setattr(magic, "default_lab", lab.name)       # as a notebook sets it
    out = cell(ip, capsys, "%%lab netns0\nip link set lo down\nip -br link show lo")
    assert out.startswith("root@netns0:~# ip link set lo down\nroot@netns0:~# ip -br link show lo\n")
    assert re.search(r"^lo +DOWN ", out, re.M), out
    assert "DOWN" in lab.exec("netns0", ["ip", "-br", "link", "show", "lo"]).stdout
    assert "UNKNOWN" in lab.exec("host", ["ip", "-br", "link", "show", "lo"]).stdout


@pytest.mark.kernel
def test_a_failing_line_shows_its_status_and_the_next_one_runs(ip, capsys, lab):
    lab.up("veth")
    out = cell(ip, capsys, f"%%lab host --lab {lab.name}\n"
                           "ip link set nothere up\necho one; echo two >&2; echo three")
    assert out == ("root@host:~# ip link set nothere up\nCannot find device \"nothere\"\n[exit 1]\n"
                   "root@host:~# echo one; echo two >&2; echo three\none\ntwo\nthree\n")


@pytest.mark.kernel
def test_a_background_server_returns_at_once_and_ends_with_the_lab(ip, capsys, lab):
    lab.up("veth")
    start = time.monotonic()
    out = cell(ip, capsys, f"%%lab netns0 --lab {lab.name}\n"
                           "python3 -m http.server --bind 172.18.0.10 5000 &")
    assert time.monotonic() - start < 5, "the cell waited for the server"
    assert out == "root@netns0:~# python3 -m http.server --bind 172.18.0.10 5000 &\n"
    deadline, page = time.monotonic() + 10, None
    while time.monotonic() < deadline:               # poll until the server listens
        page = lab.exec("host", ["curl", "-sS", "--noproxy", "*", "-m", "2",
                                 "http://172.18.0.10:5000/"])
        if page.returncode == 0:
            break
    assert page.returncode == 0 and "Directory listing" in page.stdout, page.stderr
    server = netns.pids(lab.ns("netns0"))
    assert server
    lab.down()
    assert not any(running(pid) for pid in server)


@pytest.mark.kernel
def test_sudo_works_as_typed(ip, capsys, lab):
    lab.up("veth")
    out = cell(ip, capsys, f"%%lab netns0 --lab {lab.name}\nsudo ip link set lo down\n"
                           "sudo -E ip -br link show lo")
    assert out.startswith("root@netns0:~# sudo ip link set lo down\n"
                          "root@netns0:~# sudo -E ip -br link show lo\nlo "), out
    assert "exit" not in out and "sudo:" not in out
    assert "DOWN" in lab.exec("netns0", ["ip", "-br", "link", "show", "lo"]).stdout


@pytest.mark.kernel
def test_an_interactive_shell_is_refused_and_nothing_runs(ip, capsys, lab):
    lab.up("veth")
    out = cell(ip, capsys, f"%%lab host --lab {lab.name}\nip link set lo down\n"
                           f"sudo nsenter --net=/var/run/netns/{lab.ns('netns0')} bash")
    assert out.count("\n") == 1 and out.startswith("labkit: `sudo nsenter"), out
    assert "start a cell with `%%lab netns0`" in out
    assert "UNKNOWN" in lab.exec("host", ["ip", "-br", "link", "show", "lo"]).stdout


@pytest.mark.kernel
def test_an_unknown_namespace_is_one_line(ip, capsys, lab):
    lab.up("veth")
    out = cell(ip, capsys, f"%%lab netns7 --lab {lab.name}\nip link")
    assert out == (f"labkit: lab '{lab.name}' has no namespace 'netns7' "
                   "(it has host, world, netns0)\n")


@pytest.mark.kernel
def test_a_line_that_does_not_end_is_stopped_and_the_next_runs(ip, capsys, lab):
    lab.up("veth")
    start = time.monotonic()
    out = cell(ip, capsys, f"%%lab host --lab {lab.name} --timeout 0.5\n"
                           "echo before; sleep 30; echo never\necho after")
    assert time.monotonic() - start < 10
    assert out.startswith("root@host:~# echo before; sleep 30; echo never\nbefore\n"
                          "[stopped after 0.5 s: ")
    assert out.endswith("root@host:~# echo after\nafter\n"), out
    assert not [p for p in netns.pids(lab.ns("host")) if running(p)
                and "sleep" in open(f"/proc/{p}/cmdline").read()]


def machine_mounts() -> list[str]:
    """This process's mounts, leaving out namespace files (other labs come and go)."""
    with open("/proc/self/mountinfo") as f:
        return sorted(" ".join(line.split()[2:5]) for line in f if " /run/netns/" not in line)


@pytest.mark.kernel
def test_a_namespace_added_in_a_cell_is_seen_by_the_next_lines_and_by_everyone(ip, capsys, lab):
    """`ip netns exec` would keep the mount of `ip netns add` to the line's own (slave) mounts."""
    lab.up("veth")
    extra = f"{lab.name}-netns5"
    before = machine_mounts()
    try:
        out = cell(ip, capsys, f"%%lab host --lab {lab.name}\nsudo ip netns add {extra}\n"
                               "sudo ip link add veth5 type veth peer name ceth5\n"
                               f"sudo ip link set ceth5 netns {extra}\n"
                               f"sudo ip netns exec {extra} ip -br link show ceth5")
        assert "[exit" not in out and re.search(r"^ceth5@if\d+ +DOWN ", out, re.M), out
        assert netns.exists(extra)
        out = cell(ip, capsys, f"%%lab host --lab {lab.name}\nsudo ip netns delete {extra}\n"
                               "ip -br link show veth5")
        assert out.endswith('Device "veth5" does not exist.\n[exit 1]\n'), out
        assert not netns.exists(extra)
    finally:
        netns.delete(extra)
    assert machine_mounts() == before


@pytest.mark.kernel
def test_a_line_sees_the_namespaces_own_sys_and_etc_files(ip, capsys, lab):
    lab.up("veth")
    before = machine_mounts()
    out = cell(ip, capsys, f"%%lab netns0 --lab {lab.name}\nls /sys/class/net\ngetent hosts netns0")
    assert out.startswith("root@netns0:~# ls /sys/class/net\nceth0\nlo\n"), out
    if netns.netns_dir() == "/run/netns":           # labkit writes /etc/netns files only then
        assert re.search(r"^172\.18\.0\.10 +netns0$", out, re.M), out
    assert machine_mounts() == before


def test_an_interrupt_stops_the_line_and_everything_it_started():
    """The notebook's interrupt (KeyboardInterrupt) while a line runs: its processes end too."""
    seen = []

    def write(text):
        seen.append(text)
        raise KeyboardInterrupt

    marker = f"sleep 3{os.getpid() % 1000}.17"            # a command line no one else runs
    with pytest.raises(KeyboardInterrupt):
        magic.run_line(["bash", "-c", f"echo started; {marker}; echo never"], 10, write)
    assert seen == ["started\n"]
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
    assert not [p for p in left.split() if running(int(p))]
