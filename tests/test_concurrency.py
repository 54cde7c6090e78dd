"""One lab, many hands (issue 16): two commands on one lab at once, a lab owned by the process
that works in it, and namespaces mounted more than once.

Writers (up, down, practice, clean) take turns on the lab's lock and the second converges from
what the first left; lookers (status, exec, capture, draw, check) are never blocked nor fail;
a lab a long-lived process brought up (a notebook kernel, `Lab(own=True)`) is refused to
others until it is taken over or its owner is gone; `down` removes stacked mounts in one run.
Commands that scan every lab (`clean`) run with a private LABKIT_RUN_DIR.
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time

import pytest

from labkit.kernel import process
from labkit import Lab
from labkit.kernel import mounts, netns
from labkit.lab import journal, lock, owner

from harness import labkit_env

pytestmark = pytest.mark.kernel

WAITING = "waiting for it to finish"


def env_for(run_dir: str | None = None) -> dict[str, str]:
    env = labkit_env()
    if run_dir is not None:
        env["LABKIT_RUN_DIR"] = run_dir
    return env


def start(*args, env=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "labkit", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                            env=env or env_for())


def labkit(*args, env=None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "labkit", *args], capture_output=True, text=True,
                          timeout=timeout, env=env or env_for(), stdin=subprocess.DEVNULL)


def poll(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.002)
    return value


def read_line(proc: subprocess.Popen, text: str, timeout: float = 20) -> str:
    """The first line of `proc`'s stderr that contains `text` (polling with a deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no line with {text!r} from {proc.args}"
        ready, _, _ = select.select([proc.stderr], [], [], left)
        if ready:
            line = proc.stderr.readline()
            assert line, f"{proc.args} ended (exit {proc.wait()}) without {text!r}"
            if text in line:
                return line


def mount_lines(name: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if f"/{name}-" in line.split()[4]]


def leftovers(name: str, run_dir: str | None = None) -> list[str]:
    """What of lab `name` is left: namespaces, files in the netns directory, mounts, journal,
    lock file."""
    run_dir = run_dir or journal.run_dir()
    found = [n for n in netns.names() if n.startswith(f"{name}-")]
    found += [f for f in os.listdir(netns.netns_dir()) if f.startswith(f"{name}-") and f not in found]
    found += mount_lines(name)
    found += [p for p in (f"{name}.json", f"{name}.lock") if os.path.lexists(os.path.join(run_dir, p))]
    return found


def assert_matches(name: str, stage: str, env=None) -> None:
    result = labkit("status", "--lab", name, env=env)
    assert result.returncode == 0, result.stderr
    assert f"matches stage {stage}: nothing was changed by hand" in result.stdout, result.stdout


def assert_down_leaves_nothing(name: str, env=None, run_dir=None) -> None:
    result = labkit("down", "--lab", name, env=env)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert not leftovers(name, run_dir), leftovers(name, run_dir)


def run_both(*commands) -> list[tuple[int, str, str, float]]:
    """Start the commands at once; each one's (exit, stdout, stderr, when it ended)."""
    procs = [start(*argv) for argv in commands]
    ended: dict[int, float] = {}
    while len(ended) < len(procs):
        for i, proc in enumerate(procs):
            if i not in ended and proc.poll() is not None:
                ended[i] = time.monotonic()
        time.sleep(0.001)
    return [(p.returncode, *p.communicate(), ended[i]) for i, p in enumerate(procs)], procs


# -- one writer at a time -------------------------------------------------------------------------

@pytest.mark.parametrize("first,second,containers", [
    ("bridge", "outside", 10), ("bridge", "outside", 40), ("veth", "publish", None),
    ("publish", "two-veths", None)])
def test_two_ups_of_one_lab_at_once(lab, first, second, containers):
    size = ["--containers", str(containers)] if containers else []
    results, procs = run_both(["up", first, "--lab", lab.name, *size],
                              ["up", second, "--lab", lab.name, *size])
    for rc, out, err, _ in results:
        assert rc == 0 and "File exists" not in err and "Traceback" not in err, err
    waited = [i for i, r in enumerate(results) if WAITING in r[2]]
    assert len(waited) <= 1
    if waited:  # the waiter names the one it waits for, and ran last
        other = procs[1 - waited[0]]
        assert f"by pid {other.pid} (" in results[waited[0]][2] and "labkit up" in results[waited[0]][2]
        last = waited[0]
    else:       # they did not overlap: the one that ended later ran later
        last = 0 if results[0][3] > results[1][3] else 1
    stage = (first, second)[last]
    assert Lab(lab.name).stage == stage
    assert_matches(lab.name, stage)
    assert_down_leaves_nothing(lab.name)


def test_up_and_down_at_once(lab):
    for _ in range(3):
        assert labkit("up", "veth", "--lab", lab.name).returncode == 0
        results, _ = run_both(["up", "bridge", "--lab", lab.name, "--containers", "40"],
                              ["down", "--lab", lab.name])
        for rc, out, err, _ in results:
            assert rc == 0 and "Traceback" not in err and "File exists" not in err, err
        if Lab(lab.name).journal.exists():   # down ran first: the up built bridge from nothing
            assert_matches(lab.name, "bridge")
        else:                                # up ran first: down left nothing
            assert not leftovers(lab.name)
        assert_down_leaves_nothing(lab.name)


def test_a_writer_waits_and_says_for_whom_while_lookers_go_on(lab, tmp_path):
    lab.up("veth")
    with lock.held(lab.name):  # this test is the busy writer
        writer = start("up", "bridge", "--lab", lab.name)
        line = read_line(writer, WAITING)
        assert line.count("\n") == 1 and f"lab {lab.name!r} is being changed by pid {os.getpid()} (" in line
        assert owner.command_line(os.getpid())[:40] in line
        status = labkit("status", "--lab", lab.name, timeout=30)
        assert status.returncode == 0 and f"being changed now by pid {os.getpid()}" in status.stdout
        assert labkit("exec", "--lab", lab.name, "netns0", "--", "true", timeout=30).returncode == 0
        assert labkit("draw", "--lab", lab.name, "-o", str(tmp_path / "x.svg"), timeout=60).returncode == 0
        assert labkit("check", "veth", "--lab", lab.name, timeout=60).returncode == 0
        capture = start("capture", "--lab", lab.name, "netns0:ceth0", "-f", "icmp", "-c", "1", "-q")
        read_line(capture, "capturing at")
        assert lab.ping("netns0", "172.18.0.11")
        _, err = capture.communicate(timeout=30)
        assert capture.returncode == 0, err
        assert writer.poll() is None, "the writer did not wait for the lock"
    out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0 and "Traceback" not in err, err
    assert_matches(lab.name, "bridge")
    assert_down_leaves_nothing(lab.name)


LOOKER = r"""
import sys, traceback
from labkit import Lab
lab, looks = Lab(sys.argv[1]), 0
while not sys.stdin.readline().startswith("stop"):  # one look per line, as fast as asked
    try:
        lab.drift(lab.inspect())
    except Exception:
        traceback.print_exc()
        sys.exit(3)
    looks += 1
    print(looks, flush=True)
"""


def test_lookers_never_fail_while_an_up_runs(lab):
    """status, a capture, and a process that reads the lab again and again (as a notebook
    drawing it does), while ups delete and make 38 namespaces at a time."""
    assert labkit("up", "bridge", "--lab", lab.name, "--containers", "40").returncode == 0
    capture = start("capture", "--lab", lab.name, "host:br0", "-f", "icmp", "-c", "1", "-q")
    read_line(capture, "capturing at")
    looker = subprocess.Popen([sys.executable, "-c", LOOKER, lab.name], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env_for())
    looks = statuses = 0
    try:
        for stage, size in (("outside", "2"), ("bridge", "40"), ("outside", "2"), ("outside", "40")):
            writer = start("up", stage, "--lab", lab.name, "--containers", size)
            while writer.poll() is None:
                looker.stdin.write("look\n")
                looker.stdin.flush()
                line = looker.stdout.readline()
                assert line, f"the looker died (exit {looker.wait()}): {looker.stderr.read()}"
                looks += 1
                if looks % 4 == 0:
                    status = labkit("status", "--lab", lab.name, timeout=30)
                    assert status.returncode == 0 and "Traceback" not in status.stderr, status.stderr
                    statuses += 1
            assert writer.returncode == 0, writer.stderr.read()
        looker.stdin.write("stop\n")
        looker.stdin.flush()
        assert looker.wait(30) == 0, looker.stderr.read()
    finally:
        looker.kill()
        looker.wait()
    assert looks > 8 and statuses > 2, (looks, statuses)
    assert lab.ping("netns0", "172.18.0.1")
    _, err = capture.communicate(timeout=30)
    assert capture.returncode == 0, err
    assert_matches(lab.name, "outside")
    assert_down_leaves_nothing(lab.name)


VISITOR = r"""
import sys
from labkit.kernel import netns
with netns.entered(sys.argv[1]):             # as status does, for a moment: here until told
    print("in", flush=True)
    sys.stdin.readline()
print("out", flush=True)
"""


def test_a_process_looking_inside_a_namespace_is_not_killed_for_it(lab):
    """Deleting a namespace ends the processes that live in it (servers), not one that entered
    it with setns and holds its way back (labkit's own readers)."""
    lab.up("bridge")
    visitor = subprocess.Popen([sys.executable, "-c", VISITOR, lab.ns("netns1")], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, env=env_for())
    resident = netns.spawn(lab.ns("netns1"), ["sleep", "300"])
    try:
        assert visitor.stdout.readline() == "in\n"
        assert_down_leaves_nothing(lab.name)
        assert visitor.poll() is None and resident.wait(10) == -signal.SIGKILL
        assert visitor.communicate("\n", timeout=10)[0] == "out\n" and visitor.returncode == 0
    finally:
        visitor.kill()
        resident.kill()


def test_kill_9_of_a_writer_while_another_waits(lab):
    first = start("up", "bridge", "--lab", lab.name, "--containers", "300")
    poll(lambda: f"pid {first.pid} (" in (lock.holder(lab.name) or ""), 20, "the first up to hold the lock")
    second = start("up", "outside", "--lab", lab.name, "--containers", "300")
    assert f"by pid {first.pid} (" in read_line(second, WAITING)
    assert first.poll() is None, "the first up ended before the second waited: nothing tested"
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0 and "Traceback" not in err and "File exists" not in err, err
    assert_matches(lab.name, "outside")
    assert_down_leaves_nothing(lab.name)


# -- mounts are counted ---------------------------------------------------------------------------

def test_a_namespace_mounted_twice_by_hand_goes_in_one_down(lab):
    lab.up("bridge")
    for role in ("netns0", "host"):
        p = netns.path(lab.ns(role))
        for _ in range(2):
            subprocess.run(["mount", "--bind", p, p], check=True)
    stacked = mounts.mount_counts([netns.path(lab.ns("netns0"))])
    assert list(stacked.values())[0] >= 3, stacked
    assert_down_leaves_nothing(lab.name)


def test_down_goes_on_past_what_it_cannot_remove_and_names_it(lab, tmp_path):
    lab.up("veth")
    stuck = tmp_path / "stuck"
    (stuck / "m").mkdir(parents=True)
    lab.journal.add_path(str(stuck))
    subprocess.run(["mount", "-t", "tmpfs", "none", str(stuck / "m")], check=True)
    try:
        result = labkit("down", "--lab", lab.name)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1 and str(stuck) in result.stderr
        assert "Device or resource busy" in result.stderr and "tries again" in result.stderr
        assert not [n for n in netns.names() if n.startswith(f"{lab.name}-")]  # the rest went
        assert lab.journal.data["paths"] == [str(stuck)] and lab.journal.namespaces == []
    finally:
        subprocess.run(["umount", str(stuck / "m")], check=True)
    assert lab.down() == [str(stuck)] and not leftovers(lab.name)


# -- a lab belongs to the process that works in it ------------------------------------------------

OWNER = r"""
import subprocess, sys
from labkit import Lab
lab = Lab(sys.argv[1], own=True)
for line in sys.stdin:                       # lives until its stdin closes, or kill -9
    stage = line.strip()
    if stage.startswith("!"):                # a command the owner runs itself
        rc = subprocess.run([sys.executable, "-m", "labkit", "up", stage[1:], "--lab", lab.name],
                            capture_output=True).returncode
        print("rc", rc, flush=True)
    else:
        lab.up(stage)
        print("up", stage, flush=True)
"""


def tell(proc: subprocess.Popen, line: str) -> str:
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    return proc.stdout.readline().strip()


def test_a_lab_belongs_to_the_process_that_brought_it_up(lab):
    held = subprocess.Popen([sys.executable, "-c", OWNER, lab.name], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env_for())
    try:
        assert tell(held, "veth") == "up veth"
        for argv in (["up", "bridge"], ["down"], ["practice", "bridge"]):
            result = labkit(*argv, "--lab", lab.name)
            assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
            assert f"belongs to another process, pid {held.pid} (" in result.stderr
            assert "--take" in result.stderr and "--lab t2" in result.stderr
        with pytest.raises(owner.LabOwned, match=f"pid {held.pid} "):
            Lab(lab.name).up("bridge")
        with pytest.raises(owner.LabOwned, match=f"pid {held.pid} "):
            Lab(lab.name).down()
        assert Lab(lab.name).stage == "veth"
        assert tell(held, "!two-veths") == "rc 0"      # the owner's own command is the owner's
        Lab(lab.name, take=True).up("bridge")          # taken over from Python
        assert lab.journal.get("owner") is None and Lab(lab.name).stage == "bridge"
        assert tell(held, "veth") == "up veth"         # a free lab: the process owns it again
        assert lab.journal.get("owner")["pid"] == held.pid
        result = labkit("up", "bridge", "--lab", lab.name, "--take")
        assert result.returncode == 0, result.stderr
        assert tell(held, "veth") == "up veth"
        os.kill(held.pid, signal.SIGKILL)
        held.wait()
        result = labkit("up", "outside", "--lab", lab.name)   # its owner is gone: free again
        assert result.returncode == 0, result.stderr
        assert lab.journal.get("owner") is None
        assert_matches(lab.name, "outside")
    finally:
        held.kill()
        held.wait()
    assert_down_leaves_nothing(lab.name)


def test_clean_takes_each_lab_in_turn_and_leaves_an_owned_one(monkeypatch, tmp_path, lab_factory):
    run_dir = str(tmp_path / "run")
    monkeypatch.setenv("LABKIT_RUN_DIR", run_dir)
    env = env_for(run_dir)
    owned, loose = lab_factory(), lab_factory()
    held = subprocess.Popen([sys.executable, "-c", OWNER, owned.name], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert tell(held, "veth") == "up veth"
        assert labkit("up", "veth", "--lab", loose.name, env=env).returncode == 0
        with lock.held(loose.name):                  # a writer busy with the other lab
            cleaner = start("clean", env=env)
            assert f"lab {loose.name!r} is being changed by pid {os.getpid()} (" in read_line(cleaner, WAITING)
        out, err = cleaner.communicate(timeout=60)
        assert cleaner.returncode == 2 and err.count("\n") == 1 and "Traceback" not in err, err
        assert f"lab {owned.name!r} left as it is: it belongs to pid {held.pid} (" in err
        assert f"cleaned the rest: {loose.name}" in err
        assert not leftovers(loose.name, run_dir) and Lab(owned.name).stage == "veth"
        os.kill(held.pid, signal.SIGKILL)
        held.wait()
        result = labkit("clean", env=env)
        assert result.returncode == 0, result.stderr
        assert not leftovers(owned.name, run_dir) and not os.path.exists(run_dir)
    finally:
        held.kill()
        held.wait()


def _kernel(env, cwd):
    from jupyter_client import KernelManager
    km = KernelManager(kernel_name="python3")
    km.start_kernel(env=env, cwd=cwd)
    client = km.client()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    return km, client


def _run(client, code: str) -> tuple[dict, str]:
    outputs = []
    reply = client.execute_interactive(code, timeout=120, output_hook=outputs.append)
    text = "".join(m["content"].get("text", "") for m in outputs if m["msg_type"] == "stream")
    return reply["content"], text


def test_a_notebook_kernel_owns_its_lab_and_a_second_notebook_says_so(monkeypatch, tmp_path, lab):
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter"))
    run1, run2 = str(tmp_path / "run1"), str(tmp_path / "run2")
    monkeypatch.setenv("LABKIT_RUN_DIR", run1)  # the fixture's teardown downs the lab from there
    first_env, second_env = env_for(run1), env_for(run2)
    kernels = []
    try:
        kernels.append(_kernel(first_env, str(tmp_path)))
        reply, text = _run(kernels[0][1], f"import os\nfrom labkit import Lab\nLab({lab.name!r}).up('veth')\n"
                                          f"print(os.getpid())")
        assert reply["status"] == "ok", reply
        pid = int(text.split()[-1])
        result = labkit("up", "bridge", "--lab", lab.name, env=first_env)
        assert result.returncode == 2 and f"belongs to a notebook kernel, pid {pid} (" in result.stderr
        assert "ipykernel" in result.stderr and "Kernel > Shut Down Kernel" in result.stderr
        # the second notebook: the default lab (here with a journal of its own) owned by the first
        os.makedirs(run2)
        with open(os.path.join(run2, "default.json"), "w") as f:
            json.dump({"records": {"owner": owner.Process(pid, process.start_time(pid), owner.command_line(pid))
                                   .to_dict()}}, f)
        kernels.append(_kernel(second_env, str(tmp_path)))
        said = ""
        for _ in range(2):
            reply, text = _run(kernels[1][1], "import labkit.teach.notebook; labkit.teach.notebook.setup()")
            assert reply["status"] == "ok", reply
            said += text
        assert said.count("Another notebook is working in the default lab") == 1, said
        assert f"pid {pid} (" in said and "Lab('t2')" in said and "--lab t2" in said
        assert "Kernel > Shut Down Kernel" in said
        reply, _ = _run(kernels[1][1], "from labkit import Lab\nLab().up('veth')")
        assert reply["status"] == "error" and reply["ename"] == "LabOwned", reply
        assert sorted(os.listdir(run2)) == ["default.json"]       # refused before anything was made
    finally:
        for km, client in kernels:
            client.stop_channels()
            km.shutdown_kernel(now=True)
    assert_matches(lab.name, "veth", env=first_env)             # its owner is gone: free again
    assert labkit("up", "bridge", "--lab", lab.name, env=first_env).returncode == 0
    assert_down_leaves_nothing(lab.name, env=first_env, run_dir=run1)


def test_one_notebook_alone_is_told_nothing_new(tmp_path, monkeypatch, capsys):
    """The setup cell prints exactly what the stored notebooks show when no one else owns
    the default lab (its journal here is a private one)."""
    monkeypatch.setenv("LABKIT_RUN_DIR", str(tmp_path))
    from labkit.teach import notebook
    from labkit.teach.notebook import two_notebooks as sharing
    assert sharing.note() is None
    notebook.setup()
    assert capsys.readouterr().out == "labkit is ready: root with CAP_NET_ADMIN; labs run on this kernel.\n"


def test_the_lock_is_reentrant_and_its_file_goes_with_the_last_holder(lab):
    with lock.held(lab.name):
        assert os.path.exists(lock.path(lab.name)) and lock.holder(lab.name) is None  # ours
        with lock.held(lab.name):                     # practice calls up: one process, one lock
            assert lock.holding(lab.name)
        assert lock.holding(lab.name) and os.path.exists(lock.path(lab.name))
    assert not lock.holding(lab.name) and not os.path.exists(lock.path(lab.name))
