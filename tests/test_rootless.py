"""labkit as a normal user: each user's labs in a private world of user namespaces (issue 15).

The suite runs as root; these tests act as two unprivileged users, labkit-u1 and labkit-u2
(made with useradd when missing), through runuser and setpriv. Where the machine gives normal
users no user namespaces they are skipped, saying why and the fix (userns.diagnose); the
diagnosis itself is tested on data, and on a real refusal (user.max_user_namespaces=0 in a
user namespace of the test's own).
"""
from __future__ import annotations

import errno
import json
import os
import pwd
import signal
import subprocess
import sys
import sysconfig

import pytest

from labkit.kernel import keeper, netns, userns, world
from labkit.lab import doctor
from labkit.model import stages

from seedtyping import poll

from harness import REPO

USERS = ("labkit-u1", "labkit-u2")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class User:
    """A normal user of the machine, and how to run labkit as it."""

    def __init__(self, name: str, python: str, extra_env: dict):
        entry = pwd.getpwnam(name)
        self.name, self.uid, self.gid, self.home = name, entry.pw_uid, entry.pw_gid, entry.pw_dir
        self.python = python
        self.env = {"PATH": PATH, "HOME": self.home, "USER": name, "LOGNAME": name,
                    "LANG": "C.UTF-8", "PYTHONPYCACHEPREFIX": f"/tmp/labkit-pycache-{name}",
                    "MPLCONFIGDIR": f"/tmp/labkit-mpl-{name}", **extra_env}

    def argv(self, *argv: str, env: dict | None = None) -> list[str]:
        extra = [f"{k}={v}" for k, v in {**self.env, **(env or {})}.items()]
        return ["runuser", "-u", self.name, "--", "env", "-i", *extra, *argv]

    def run(self, *argv: str, timeout: float = 120, env: dict | None = None, **kwargs):
        return subprocess.run(self.argv(*argv, env=env), capture_output=True, text=True,
                              timeout=timeout, cwd="/tmp", stdin=subprocess.DEVNULL, **kwargs)

    def labkit(self, *argv: str, **kwargs):
        return self.run(self.python, "-m", "labkit", *argv, **kwargs)

    def ok(self, *argv: str, **kwargs) -> str:
        result = self.labkit(*argv, **kwargs)
        assert result.returncode == 0, (argv, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        return result.stdout

    def script(self, code: str, **kwargs):
        return self.run(self.python, "-c", code, **kwargs)

    def popen(self, *argv: str, **kwargs) -> subprocess.Popen:
        return subprocess.Popen(self.argv(*argv), cwd="/tmp", stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)

    def world(self) -> world.World | None:
        """The user's world as its record names it (read as root)."""
        try:
            with open(os.path.join(self.home, ".local", "state", "labkit", world.STATE_FILE)) as f:
                return world.World(**json.load(f))
        except FileNotFoundError:
            return None

    def processes(self) -> list[int]:
        """Every live process of this user (none may outlive a test; a zombie waits for its
        parent to read its status, and this machine's init reaps late)."""
        found = []
        for entry in os.listdir("/proc"):
            try:
                if (entry.isdigit() and os.stat(f"/proc/{entry}").st_uid == self.uid
                        and world.start_time(int(entry)) is not None):
                    found.append(int(entry))
            except FileNotFoundError:
                continue
        return found

    def end_everything(self) -> None:
        """Stop every process of this user and forget its world (after a failed test)."""
        for pid in self.processes():
            with _suppress():
                os.kill(pid, signal.SIGKILL)
        poll(lambda: not self.processes(), 10)
        path = os.path.join(self.home, ".local", "state", "labkit", world.STATE_FILE)
        with _suppress():
            os.unlink(path)


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        return kind is not None and issubclass(kind, (ProcessLookupError, FileNotFoundError))


def _python_for(name: str) -> tuple[str, dict]:
    """An interpreter the user can run with labkit and its dependencies importable: this one,
    or (when a directory on its way is private, as /root is) the system's of the same
    version, given this environment's packages on PYTHONPATH."""
    purelib = sysconfig.get_paths()["purelib"]
    candidates = [(sys.executable, {})]
    if os.path.exists("/usr/bin/python3"):
        candidates.append(("/usr/bin/python3", {"PYTHONPATH": f"{REPO}:{purelib}"}))
    tried = []
    for python, env in candidates:
        probe = User(name, python, env).run(
            python, "-c", "import sys, labkit.cli, pyroute2, scapy, jupyter_client; print(sys.version_info[:2])")
        if probe.returncode == 0 and probe.stdout.strip() == str(tuple(sys.version_info[:2])):
            return python, env
        tried.append(f"{python}: {probe.stderr.strip()[-200:] or probe.stdout.strip()}")
    pytest.fail(f"user {name} cannot run Python {sys.version_info[:2]} with labkit importable: "
                + "; ".join(tried), pytrace=False)


@pytest.fixture(scope="module")
def users() -> dict[str, User]:
    """The two test users (made if missing, and then removed with their homes after the
    module), once the machine is known to give them worlds."""
    made_here = []
    for name in USERS:
        try:
            pwd.getpwnam(name)
        except KeyError:
            made_here.append(name)
            subprocess.run(["useradd", "-m", name], check=True, capture_output=True)
    try:
        yield _users()
    finally:
        for name in made_here:
            User(name, sys.executable, {}).end_everything()
            result = subprocess.run(["userdel", "-r", name], capture_output=True, text=True)
            assert result.returncode == 0, f"userdel -r {name}: {result.stderr}"


def _users() -> dict[str, User]:
    python, env = _python_for(USERS[0])
    made = {name: User(name, python, env) for name in USERS}
    probe = made[USERS[0]].script("import json; from labkit.kernel import userns; "
                                  "print(json.dumps(userns.diagnose(userns.probe())))")
    assert probe.returncode == 0, probe.stderr
    problem, fix = json.loads(probe.stdout)
    if problem:
        pytest.skip(f"this machine gives normal users no user namespaces: {problem}; fix: {fix}")
    return made


@pytest.fixture
def user1(users):
    yield from _clean_user(users[USERS[0]])


@pytest.fixture
def user2(users):
    yield from _clean_user(users[USERS[1]])


def _clean_user(user: User):
    user.end_everything()
    yield user
    poll(lambda: not user.processes(), 5)       # one still exiting (a loaded machine) may finish
    left = user.processes()
    user.end_everything()
    assert not left, f"processes of {user.name} outlived the test: {left}"


def in_world(user: User, path: str) -> str:
    """`path` as root reaches it inside the user's world (through the keeper's root)."""
    return f"/proc/{user.world().pid}/root{path}"


def world_processes(w: world.World) -> list[int]:
    """Every live process in world `w`'s user namespace (read as root)."""
    return [int(e) for e in os.listdir("/proc") if e.isdigit() and userns.inode(e) == w.userns
            and world.start_time(int(e)) is not None]


# -- the world ----------------------------------------------------------------------------------

def test_root_has_no_world():
    assert os.geteuid() == 0 and not world.wanted()


def test_a_user_runs_every_stage_in_a_world_that_ends_with_the_last_lab(user1):
    said = user1.ok("up", "veth")
    assert "lab (default): stage veth is up" in said
    w = user1.world()
    assert w is not None and w.alive() and w.uid == user1.uid
    assert os.stat(f"/proc/{w.pid}").st_uid == user1.uid
    with open(f"/proc/{w.pid}/cmdline") as f:
        assert f.read().split("\0")[0] == keeper.NAME
    # the seed's names, in the world's own /run/netns: none of them is one of root's
    theirs = {n: os.stat(in_world(user1, f"/run/netns/{n}")).st_ino for n in ("host", "world", "netns0")}
    ours = {os.stat(netns.path(n)).st_ino for n in netns.names()}
    assert not set(theirs.values()) & ours
    for stage in stages.STAGES:
        user1.ok("up", stage)
        result = user1.labkit("check", stage)
        assert result.returncode == 0, (stage, result.stdout, result.stderr)
    user1.ok("up", "hairpin")     # back to the seed's shape (the overlay's has two hosts)
    listing = user1.ok("shell", "--", "ip", "netns", "list")
    assert {"host", "world", "netns0", "netns1"} <= {line.split()[0] for line in listing.splitlines()}
    page = user1.ok("shell", "--", "ip", "netns", "exec", "world", "curl", "-s", "-m", "5",
                    "http://10.0.2.15:5000/")
    assert "netns0" in page, page     # the seed's published server, reached from the outside
    assert user1.world() == w, "every command used the same world"
    assert "removed" in user1.ok("down")
    assert user1.world() is None and not w.alive(), "down of the last lab ends the world"
    assert poll(lambda: not world_processes(w), 5), world_processes(w)


@pytest.mark.parametrize("stage", ["veth", "outside"])
def test_a_user_practises_a_stage_typing_the_seeds_lines_in_labkit_shell(user1, stage):
    """`labkit practice STAGE`, then the seed's own lines, sudo included, each typed in a shell
    of the world in its namespace (the host's: nsenter --net, as root's practice says); then
    `labkit check STAGE` passes. Without the lines it does not."""
    from labkit.model import seed
    user1.ok("practice", stage)
    assert user1.labkit("check", stage).returncode == 1
    for step in seed.steps(stage, "", "iptables"):
        where = (["nsenter", "--net=/run/netns/host"] if step.where == "host"
                 else ["ip", "netns", "exec", step.where])
        result = user1.labkit("shell", "--", *where, "bash", "-c", step.command)
        assert result.returncode == 0, (step.command, result.stdout, result.stderr)
    result = user1.labkit("check", stage)
    assert result.returncode == 0, result.stdout
    user1.ok("down")
    assert user1.world() is None


def test_a_lab_of_roots_with_the_same_name_is_neither_seen_nor_touched(user1, lab):
    """The world's mount namespace starts as a copy of the machine's, root's namespaces
    included, under the world's own /run/netns: the user's lab of the same name goes up and
    down whole, and root's stays."""
    lab.up("veth")
    ours = {n: netns.inode(n) for n in netns.names() if n.startswith(lab.name + "-")}
    user1.ok("up", "bridge", "--lab", lab.name)
    assert "removed" in user1.ok("down", "--lab", lab.name)
    assert user1.world() is None
    assert {n: netns.inode(n) for n in netns.names() if n.startswith(lab.name + "-")} == ours
    assert lab.ping("netns0", "172.18.0.11")


def test_a_process_in_the_world_keeps_it_and_the_next_command_ends_it(user1):
    shell = user1.popen(user1.python, "-m", "labkit", "shell", "--", "sleep", "60")
    try:
        assert poll(lambda: user1.world() is not None and len(world_processes(user1.world())) >= 3, 30)
        w = user1.world()
        user1.ok("status")                          # no lab: but the shell is in the world
        assert w.alive()
    finally:
        shell.kill()
        shell.wait()
    for pid in world_processes(w):
        if pid != w.pid:
            os.kill(pid, signal.SIGKILL)
    assert poll(lambda: world_processes(w) == [w.pid], 5)
    assert "nothing to remove" in user1.ok("down")
    assert not w.alive() and user1.world() is None


def test_nat_on_both_backends_as_a_user(user1):
    for backend, rule in (("iptables", "iptables -t nat -A PREROUTING -d 10.0.2.15/32"),
                          ("nftables", "dnat")):
        user1.ok("up", "publish", "--backend", backend)
        assert user1.labkit("check", "publish").returncode == 0, backend
        status = user1.ok("status")
        assert f"({backend}" in status and rule in status, status
    user1.ok("down")


def test_firewall_and_names_with_iptables_as_a_user(user1):
    """The filter table and the containers' resolvers with iptables in a world (the default,
    nftables, is what the every-stage test runs): check sends real traffic and real lookups."""
    for stage in ("firewall", "isolated", "names"):
        user1.ok("up", stage, "--backend", "iptables")
        result = user1.labkit("check", stage)
        assert result.returncode == 0, (stage, result.stdout)
    found = user1.ok("shell", "--", "ip", "netns", "exec", "netns0", "getent", "hosts", "netns1")
    assert found.split()[:2] == ["172.18.0.20", "netns1"], found
    user1.ok("down")
    assert user1.world() is None


BURST = r"""
import socket, sys, time
from labkit.kernel import world
world.enter()
from labkit.lab import Lab
from labkit.capture import Capture, sockets
probe = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
try:
    probe.setsockopt(socket.SOL_SOCKET, sockets.SO_RCVBUFFORCE, 1 << 20)
    print("rcvbufforce allowed")
except PermissionError:
    print("rcvbufforce refused")
n, ring = int(sys.argv[1]), sys.argv[2] == "ring"
with Lab("bu") as lab:
    lab.up("veth")
    lab.ping("netns0", "172.18.0.11")
    mac = lab.exec("host", ["cat", "/sys/class/net/veth0/address"]).stdout.strip()
    cap = Capture(["host:veth0"], lab=lab, filter="udp and dst port 9")
    cap.start()
    for s in cap._socks:
        print("ring" if s.ring is not None else "buffer")
    lab.exec("netns0", [sys.executable, "-m", "labkit.capture.frames", "burst", "ceth0", mac,
                        "172.18.0.10", "172.18.0.11", str(n)], timeout=300)
    cap.wait(count=n, timeout=60 if ring else 3)
    stats = cap.stop().stats["host:veth0"]
    print("captured", stats.captured, "seen", stats.seen, "dropped", stats.dropped)
world.end_if_idle(busy=False)    # the lab is down: nothing is left in the world
"""


@pytest.mark.parametrize("how", ["ring", "buffer"])
def test_a_user_captures_the_whole_burst_with_a_ring(user1, how):
    """100,000 frames on a veth, as a normal user: whole with the TPACKET_V3 ring, while the
    receive buffer that rmem_max caps loses frames (so the test can fail)."""
    env = {"LABKIT_CAPTURE_RING": "1" if how == "ring" else "0"}
    result = user1.script(BURST.replace("sys.argv[1]", "'100000'").replace("sys.argv[2]", repr(how)),
                          env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "rcvbufforce refused" and lines[1] == how, lines
    captured, seen, dropped = (int(x) for x in lines[2].split()[1::2])
    if how == "ring":
        assert (captured, seen, dropped) == (100_000, 100_000, 0), lines
    else:
        assert dropped > 0 and captured + dropped == seen, lines
    assert user1.world() is None  # the script's lab went down; `bu` was the world's only lab


def test_kill_9_of_the_keeper_then_clean_leaves_nothing(user1):
    user1.ok("up", "publish")
    w = user1.world()
    before = world_processes(w)
    assert len(before) >= 3, before      # the keeper and the two servers
    os.kill(w.pid, signal.SIGKILL)
    assert poll(lambda: not w.alive(), 5)
    result = user1.labkit("clean")
    assert result.returncode == 0, result.stderr
    assert f"your previous world (keeper pid {w.pid}) had ended" in result.stderr, result.stderr
    assert poll(lambda: not world_processes(w), 5), world_processes(w)
    assert user1.world() is None and not user1.processes()
    user1.ok("up", "veth")                # a fresh world
    assert user1.world() != w
    user1.ok("down")
    assert user1.world() is None


def test_kill_9_of_a_command_in_the_world_then_clean_leaves_nothing(user1):
    proc = user1.popen(user1.python, "-m", "labkit", "up", "bridge", "--lab", "k9", "--containers", "200")
    assert poll(lambda: user1.world() is not None
                      and os.path.exists(in_world(user1, "/run/netns/k9-netns1")), 60), proc.stderr
    w = user1.world()
    for pid in world_processes(w):
        if pid != w.pid and "labkit" in _cmdline(pid):
            os.kill(pid, signal.SIGKILL)
    proc.wait()
    assert os.listdir(in_world(user1, "/run/netns")), "killed too late to test anything"
    said = user1.ok("clean")
    assert "lab k9: removed" in said, said
    assert user1.world() is None and poll(lambda: not world_processes(w), 5)


def test_two_users_at_once_are_apart(user1, user2):
    ups = [u.popen(u.python, "-m", "labkit", "up", "publish") for u in (user1, user2)]
    for proc in ups:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    worlds = {u.name: u.world() for u in (user1, user2)}
    w1, w2 = worlds[user1.name], worlds[user2.name]
    assert w1.userns != w2.userns
    captures = [u.popen(u.python, "-m", "labkit", "capture", "host:br0", "-q") for u in (user1, user2)]
    try:
        assert poll(lambda: all(len(world_processes(w)) >= 4 for w in (w1, w2)), 30)
        for u in (user1, user2):
            assert u.labkit("check", "publish").returncode == 0, u.name
        # user2 can neither see into, enter, nor end user1's world
        peek = user2.script(f"open('/proc/{w1.pid}/ns/net')")
        assert peek.returncode != 0 and "PermissionError" in peek.stderr, peek.stderr
        assert user2.run("kill", "-9", str(w1.pid)).returncode != 0 and w1.alive()
        assert user2.run("nsenter", "-t", str(w1.pid), "-U", "-m", "-n", "true").returncode != 0
        refused = _setns_with_handed_fds(user2, w1)
        assert refused == {"user": errno.EPERM, "net": errno.EPERM}, refused
        # user2 given user1's record: takes it for a stale one, touches nothing of it
        borrowed = f"/tmp/labkit-borrowed-{user2.name}"
        subprocess.run(["install", "-d", "-o", user2.name, borrowed], check=True)
        with open(os.path.join(borrowed, world.STATE_FILE), "w") as f:
            json.dump(w1.__dict__, f)
        status = user2.labkit("status", env={"LABKIT_STATE_DIR": borrowed})
        assert status.returncode == 0 and w1.alive() and user1.labkit("check", "publish").returncode == 0
        subprocess.run(["rm", "-rf", borrowed], check=True)
        # each sees only its own namespaces; none of them is root's
        mine = {(u.name, n): os.stat(in_world(u, f"/run/netns/{n}")).st_ino for u in (user1, user2)
                for n in ("host", "netns0")}
        assert len(set(mine.values())) == 4
        assert not set(mine.values()) & {os.stat(netns.path(n)).st_ino for n in netns.names()}
    finally:
        for w in (w1, w2):            # Ctrl-C, to the capture itself (runuser keeps SIGINT)
            for pid in world_processes(w):
                if "capture" in _cmdline(pid):
                    os.kill(pid, signal.SIGINT)
        said = [proc.communicate(timeout=30) for proc in captures]
    for proc, (out, err) in zip(captures, said):
        assert proc.returncode == 0 and "captured" in out + err, (proc.returncode, out, err)
    for u in (user1, user2):
        u.ok("down")
    for w in (w1, w2):
        assert poll(lambda: not world_processes(w), 5), world_processes(w)


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline") as f:
            return f.read().replace("\0", " ")
    except OSError:
        return ""


SETNS = r"""
import json, os, sys
from labkit.kernel import userns
result = {}
for kind, fd, flag in (("user", int(sys.argv[1]), userns.CLONE_NEWUSER), ("net", int(sys.argv[2]), userns.CLONE_NEWNET)):
    try:
        userns.setns(fd, flag)
        result[kind] = 0
    except OSError as e:
        result[kind] = e.errno
print(json.dumps(result))
"""


def _setns_with_handed_fds(user: User, target: world.World) -> dict:
    """As `user`, try setns into `target`'s user and network namespaces through descriptors
    that root opened and handed over: the kernel itself must refuse (EPERM)."""
    fds = [os.open(f"/proc/{target.pid}/ns/{kind}", os.O_RDONLY) for kind in ("user", "net")]
    try:
        argv = ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--init-groups", "env", "-i",
                *[f"{k}={v}" for k, v in user.env.items()], user.python, "-c", SETNS, *map(str, fds)]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60, pass_fds=fds, cwd="/tmp")
    finally:
        for fd in fds:
            os.close(fd)
    assert result.returncode == 0, result.stderr
    return {k: v for k, v in json.loads(result.stdout).items()}


def test_the_jupyter_kernel_runs_cells_in_the_world(user1):
    said = user1.ok("install-kernel", "--user")
    assert "Python (labkit lab)" in said
    code = r"""
from jupyter_client import KernelManager
km = KernelManager(kernel_name="labkit")
km.start_kernel()
c = km.client(); c.start_channels(); c.wait_for_ready(timeout=60)
out = []
for cell in ("import labkit.teach.notebook; labkit.teach.notebook.setup()",
             "import os; print('uid', os.getuid())",
             "from labkit import Lab\nlab = Lab()\nlab.up('bridge')\nprint('ping', lab.ping('netns0', '172.18.0.20'))",
             "from labkit.capture import Capture\nwith Capture(['netns0:ceth0'], lab=lab, filter='icmp') as cap:\n    lab.ping('netns0', '172.18.0.1')\n    cap.wait(count=2)\nprint('captured', len(cap.packets))",
             "print('check', lab.check('bridge').ok); lab.down()"):
    reply = c.execute_interactive(cell, timeout=120, output_hook=out.append)
    print('status', reply['content']['status'])
print(''.join(m['content'].get('text', '') for m in out if m['msg_type'] == 'stream'))
c.stop_channels(); km.shutdown_kernel(now=True)
"""
    try:
        result = user1.script(code, timeout=300)
    finally:
        user1.run("rm", "-rf", os.path.join(user1.home, ".local/share/jupyter/kernels/labkit"))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count("status ok") == 5, out
    assert "labkit is ready" in out and "uid 0" in out and "ping True" in out, out
    assert "captured 2" in out and "check True" in out, out
    w = user1.world()
    assert w is not None and poll(lambda: world_processes(w) == [w.pid], 10)
    user1.ok("clean")                    # the kernel has gone: nothing is left in the world
    assert user1.world() is None


# -- where the machine refuses a world ----------------------------------------------------------

REFUSED = r"""
import os, sys
from labkit.kernel import userns
read_fd, write_fd = os.pipe()
go_r, go_w = os.pipe()
pid = os.fork()
if pid == 0:
    userns.unshare(userns.CLONE_NEWUSER)
    os.write(write_fd, b"x")
    os.read(go_r, 1)
    with open("/proc/sys/user/max_user_namespaces", "w") as f:
        f.write("0")
    uid, gid = int(sys.argv[1]), int(sys.argv[2])
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    os.execv(sys.argv[3], sys.argv[3:])
os.read(read_fd, 1)
for name, text in (("uid_map", f"0 0 1\n{sys.argv[1]} {sys.argv[1]} 1"), ("gid_map", f"0 0 1\n{sys.argv[2]} {sys.argv[2]} 1")):
    with open(f"/proc/{pid}/{name}", "w") as f:
        f.write(text)
os.write(go_w, b"x")
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _refused(user: User, *argv: str):
    """Run `argv` as `user` in a user namespace whose user.max_user_namespaces is 0."""
    env = {**user.env, "PYTHONPATH": user.env.get("PYTHONPATH", REPO)}
    return subprocess.run([sys.executable, "-c", REFUSED, str(user.uid), str(user.gid), *argv],
                          capture_output=True, text=True, timeout=120, env=env, cwd="/tmp")


def test_a_world_refused_says_why_and_the_fix(user1):
    result = _refused(user1, user1.python, "-m", "labkit", "up", "veth")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "user.max_user_namespaces=0" in result.stderr, result.stderr
    assert "sysctl -w user.max_user_namespaces=" in result.stderr and "sudo labkit" in result.stderr
    report = _refused(user1, user1.python, "-m", "labkit", "doctor")
    assert report.returncode == 1 and "FAIL user namespaces" in report.stdout, report.stdout
    kernel = _refused(user1, user1.python, "-m", "labkit.kernel.launcher", "--", user1.python, "-c",
                      "from labkit.kernel import privilege\nprivilege.require()")
    assert "Your own world of user namespaces could not be made: user namespaces are disabled" \
        in kernel.stderr, kernel.stderr
    assert user1.world() is None


DIAGNOSES = [
    ({"errno": 0}, "", ""),
    ({"errno": errno.ENOSPC, "sysctls": {"max_user_namespaces": "0"}},
     "user.max_user_namespaces=0", "sysctl -w user.max_user_namespaces=15000"),
    ({"errno": errno.EPERM, "sysctls": {"unprivileged_userns_clone": "0", "max_user_namespaces": "63000"}},
     "kernel.unprivileged_userns_clone=0", "sysctl -w kernel.unprivileged_userns_clone=1"),
    ({"errno": errno.EPERM, "step": "map", "sysctls": {"apparmor_restrict": "1"}},
     "AppArmor", "apparmor_parser -r /etc/apparmor.d/labkit"),
    ({"errno": errno.EPERM, "step": "unshare", "seccomp": "2",
      "sysctls": {"unprivileged_userns_clone": "1", "max_user_namespaces": "63000", "apparmor_restrict": None}},
     "seccomp", "--security-opt seccomp=unconfined"),
    ({"errno": errno.EPERM, "step": "mount", "seccomp": "2",
      "sysctls": {"unprivileged_userns_clone": "1", "max_user_namespaces": "63000", "apparmor_restrict": None}},
     "seccomp filter refuses mount()", "deploy/kubernetes/seccomp/labkit.json"),
    ({"errno": errno.ENOSPC, "sysctls": {"max_user_namespaces": "10"}}, "limit", "labkit clean"),
    ({"errno": errno.EPERM, "step": "unshare", "seccomp": "0", "sysctls": {}}, "refused step 'unshare'",
     "unshare -Urn true"),
]


@pytest.mark.parametrize("data, problem, fix", DIAGNOSES)
def test_the_diagnosis_tells_the_causes_apart(data, problem, fix):
    said_problem, said_fix = userns.diagnose(data)
    assert problem in said_problem and fix in said_fix, (said_problem, said_fix)
    assert bool(said_problem) == bool(problem)
    check = doctor.world_check(data)
    assert check.ok == (not problem) and (not problem or fix in check.fix)


def test_root_is_told_whether_normal_users_may_have_worlds():
    assert doctor.world_check({"sysctls": {"max_user_namespaces": "63000"}}, root=True).ok
    blocked = doctor.world_check({"sysctls": {"unprivileged_userns_clone": "0"}}, root=True)
    assert not blocked.ok and "normal users get no world" in blocked.detail
    assert "sysctl -w kernel.unprivileged_userns_clone=1" in blocked.fix


def test_a_directory_the_machine_lacks_is_provided_with_the_rest_bound_back(tmp_path):
    """keeper.provide on a parent without the new directory: a tmpfs over the parent, every
    entry (file, directory, symlink, a mount inside) still there, the new one empty; and
    nothing of it outside the mount namespace."""
    parent = tmp_path / "etc"
    (parent / "sub").mkdir(parents=True)
    (parent / "file").write_text("kept")
    (parent / "link").symlink_to("file")
    (parent / "mnt").mkdir()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            userns.unshare(userns.CLONE_NEWNS)
            userns.mount("none", "/", None, keeper.MS_REC | keeper.MS_PRIVATE)
            userns.mount("tmpfs", str(parent / "mnt"), "tmpfs", 0)
            (parent / "mnt" / "inside").write_text("mounted")
            keeper.provide(str(parent), ("netns",))
            ok = ((parent / "file").read_text() == "kept" and os.readlink(parent / "link") == "file"
                  and (parent / "sub").is_dir() and (parent / "mnt" / "inside").read_text() == "mounted"
                  and os.listdir(parent / "netns") == []
                  and sorted(os.listdir(parent)) == ["file", "link", "mnt", "netns", "sub"])
            code = 0 if ok else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert sorted(os.listdir(parent)) == ["file", "link", "mnt", "sub"]  # outside: unchanged
    assert os.listdir(parent / "mnt") == []


# -- a classroom server -------------------------------------------------------------------------

def test_the_jupyterhub_example_runs_each_student_as_itself_on_the_labkit_kernel():
    """examples/jupyterhub/jupyterhub_config.py loads (traitlets, as JupyterHub loads it):
    the users' own servers, labkit's kernel the default and the only one."""
    from traitlets.config import Config
    path = os.path.join(REPO, "examples", "jupyterhub", "jupyterhub_config.py")
    c = Config()
    with open(path) as f:
        exec(compile(f.read(), path, "exec"), {"get_config": lambda: c})
    assert c.JupyterHub.spawner_class == "jupyterhub.spawner.LocalProcessSpawner"
    assert c.JupyterHub.bind_url.startswith("http://127.0.0.1:")
    assert "--MappingKernelManager.default_kernel_name=labkit" in c.Spawner.args
    assert "--KernelSpecManager.allowed_kernelspecs=labkit" in c.Spawner.args
    assert os.path.basename(c.Spawner.cmd[0]) == "jupyterhub-singleuser"
    (service,) = c.JupyterHub.services                 # the instructors' view of the class
    assert service["name"] == "labkit-class" and service["command"][-2:] == ["-m", "labkit.classroom.service"]
    assert c.Spawner.environment["LABKIT_CLASS_URL"].endswith("/services/labkit-class/")
    assert "access:services!service=labkit-class" in c.Spawner.server_token_scopes
    assert c.JupyterHub.load_groups["instructors"]["users"]


def test_the_kernel_installed_for_everyone_runs_in_each_users_world(user1, user2, public_dir):
    """`labkit install-kernel --prefix DIR` (root, once): each user's Jupyter finds the kernel
    there, and each user's notebook runs in that user's own world."""
    from labkit.cli import main
    assert main(["install-kernel", "--prefix", public_dir, "--python", user1.python]) == 0
    jupyter_path = os.path.join(public_dir, "share", "jupyter")
    code = r"""
from jupyter_client import KernelManager
km = KernelManager(kernel_name="labkit")
km.start_kernel()
c = km.client(); c.start_channels(); c.wait_for_ready(timeout=60)
out = []
cell = "import os\nfrom labkit import Lab\nlab = Lab()\nlab.up('veth')\nprint('ping', lab.ping('netns0', '172.18.0.11'), open('/proc/self/uid_map').read().split()[1])\nlab.down()"
print('status', c.execute_interactive(cell, timeout=120, output_hook=out.append)['content']['status'])
print(''.join(m['content'].get('text', '') for m in out if m['msg_type'] == 'stream'))
c.stop_channels(); km.shutdown_kernel(now=True)
"""
    runs = [u.popen(*["env", f"JUPYTER_PATH={jupyter_path}", u.python, "-c", code]) for u in (user1, user2)]
    for u, proc in zip((user1, user2), runs):
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0 and "status ok" in out, (u.name, out, err)
        assert f"ping True {u.uid}" in out, (u.name, out)   # in the world that maps this user
    for u in (user1, user2):
        u.ok("clean")
        assert u.world() is None


def test_a_user_has_ipv6_with_both_tools_and_an_overlay_of_two_hosts(user1):
    """Issue 24 without root: NAT66 and IPv6 publishing with ip6tables and with nft, the routed
    mode, and VXLAN between two hosts, each checked; the world reaches the published port over
    IPv6 and the overlay carries 1,400 bytes across."""
    for backend in ("iptables", "nftables"):
        user1.ok("up", "ipv6", "--backend", backend)
        result = user1.labkit("check", "ipv6")
        assert result.returncode == 0, (backend, result.stdout, result.stderr)
        page = user1.ok("shell", "--", "ip", "netns", "exec", "world", "curl", "-s", "-m", "5",
                        "http://[2001:db8:2::15]:5000/")
        assert "netns0" in page, page
        seen = user1.ok("shell", "--", "ip", "netns", "exec", "netns0", "curl", "-s", "-m", "5",
                        "http://[2001:db8:80::80]/")
        assert seen.strip() == "2001:db8:2::15", seen
    user1.ok("up", "ipv6-routed")
    assert user1.labkit("check", "ipv6-routed").returncode == 0
    user1.ok("up", "overlay")
    result = user1.labkit("check", "overlay")
    assert result.returncode == 0, (result.stdout, result.stderr)
    fdb = user1.ok("shell", "--", "ip", "netns", "exec", "host-a", "bridge", "fdb", "show", "dev", "vxlan42")
    assert "dst 10.0.3.2" in fdb, fdb
    user1.ok("up", "overlay", "--fault", "mtu-1500")
    result = user1.labkit("check", "overlay")
    assert result.returncode == 1 and "MTU 1500" in result.stdout, result.stdout
    user1.ok("down")
    assert user1.world() is None
