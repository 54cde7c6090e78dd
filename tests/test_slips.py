"""Slips that leave no error: a command typed in the wrong shell. check must say where it
went, the fix must remove it from there and then make it right, and after the person does
both, check passes and the machine's own network is as it was.

Slips at the machine's own prompt run in a stand-in machine (tests/standin.py): a child
process with a network namespace of its own, so this machine's network is never touched.
Slips inside the lab (the wrong end of the veth, the wrong container) need none.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from labkit.lab import Lab
from labkit.model import seed

import standin
from seedtyping import run_line

pytestmark = pytest.mark.kernel


@dataclass(frozen=True)
class Slip:
    """Steps `steps` of `stage` typed in `typed_in` ("machine": the machine's own prompt; a
    lab role), with `sub` (old, new) applied to them; check must say `says` (a regex, lab
    names as {lab}); after the undo, steps `redo` are typed where they belong."""
    name: str
    stage: str
    steps: tuple[int, ...]
    typed_in: str
    says: str
    redo: tuple[int, ...]
    sub: tuple[str, str] | None = None
    before: str = ""            # typed at the machine's prompt before the practice


MACHINE_SLIPS = (
    Slip("veth-host-steps-at-own-prompt", "veth", (1, 2, 3, 4), "machine",
         r"veth0 was made in the machine's own network, not in the lab's host: you typed it "
         r"outside `sudo nsenter --net=/run/netns/{lab}-host bash` \(there it holds 172\.18\.0\.11/16\)",
         (1, 2, 3, 4, 6, 7)),
    Slip("masquerade-at-own-prompt", "outside", (3,), "machine",
         r"the MASQUERADE of 172\.18\.0\.0/16 was added in the machine's own network, not in the "
         r"lab's host: you typed it outside `sudo nsenter --net=/run/netns/{lab}-host bash`", (3,)),
    Slip("ip-forward-at-own-prompt", "outside", (2,), "machine",
         r"the host does not forward packets \(net\.ipv4\.ip_forward is 0\): `sysctl -w "
         r"net\.ipv4\.ip_forward=1` went to the machine's own network, where it is 1 now \(it was 0 "
         r"when the practice began\): you typed it outside `sudo nsenter", (2,),
         before="sysctl -qw net.ipv4.ip_forward=0"),
    Slip("prerouting-dnat-at-own-prompt", "publish", (1,), "machine",
         r"the PREROUTING DNAT of 10\.0\.2\.15:5000 was added in the machine's own network, not in "
         r"the lab's host: you typed it outside", (1,)),
    Slip("output-dnat-at-own-prompt", "publish", (2,), "machine",
         r"the OUTPUT DNAT of 10\.0\.2\.15:5000 was added in the machine's own network", (2,)),
)

LAB_SLIPS = (
    Slip("container-address-on-veth0", "veth", (7,), "host",
         r"172\.18\.0\.10/16 is on veth0 in host, the other end of the veth: it belongs on ceth0 in "
         r"netns0", (7,), sub=("dev ceth0", "dev veth0")),
    Slip("netns1-address-in-netns0", "two-veths", (7,), "netns0",
         r"172\.18\.0\.20/16 is on ceth0 in netns0, not on ceth1 in netns1: you typed it in netns0's "
         r"shell", (7,), sub=("dev ceth1", "dev ceth0")),
    Slip("masquerade-in-a-container", "outside", (3,), "netns0",
         r"the MASQUERADE of 172\.18\.0\.0/16 was added in netns0, not in the host: you typed it in "
         r"netns0's shell", (3,)),
)


def _type(lab, slip: Slip) -> list[str]:
    """Practice, then type the stage with the slip; returns what failed."""
    failed = []
    for i, step in enumerate(seed.steps(slip.stage, lab.name)):
        where, line = step.where, step.command
        if i in slip.steps:
            where = slip.typed_in
            if slip.sub:
                line = line.replace(*slip.sub)
        code, out = standin.at_prompt(line) if where == "machine" else run_line(lab, where, line)
        if code:
            failed.append(f"{line}: {out.strip()}")
    return failed


def _undo(lab, item) -> str:
    """Type the fix's first part (the removal) where it says; returns it."""
    where, _, rest = item.fix.partition(": ")
    remove = rest.split("; then ")[0]
    remove = re.sub(r" \(its other end goes with it\)$", "", remove)
    if where.startswith("in your own shell"):
        code, out = standin.at_prompt(remove)
    else:
        role = re.match(r"in (\S+) \(", where).group(1)
        code, out = run_line(lab, role, remove)
    assert code == 0, (remove, out)
    return remove


def _slipped(lab, slip: Slip) -> dict:
    """Practice `slip.stage`, type it with the slip, check, undo as told, redo, check again."""
    lab.practice(slip.stage)
    failed = _type(lab, slip)
    assert not failed, failed
    result = lab.check(slip.stage)
    says = slip.says.format(lab=lab.name)
    found = [i for i in result.unmet if re.search(says, i.what)]
    assert found, f"{says!r} not said:\n{result.text(3)}"
    item = found[0]
    assert "; then " in item.fix, item.fix
    removed = _undo(lab, item)
    for i in slip.redo:
        step = seed.steps(slip.stage, lab.name)[i]
        code, out = run_line(lab, step.where, step.command)
        assert code == 0, (step.command, out)
    after = lab.check(slip.stage)
    assert after.ok, after.text(3)
    return {"what": item.what, "fix": item.fix, "look": item.look, "removed": removed}


def in_standin(index: int) -> dict:
    """In the stand-in: the machine slip number `index`, and the machine as it was after."""
    slip = MACHINE_SLIPS[index]
    if slip.before:
        standin.at_prompt(slip.before)
    machine = standin.machine()
    lab = Lab("sl")
    try:
        said = _slipped(lab, slip)
        said["changed"] = standin.changed(machine, standin.machine())
        lab.down()
        said["after_down"] = standin.changed(machine, standin.machine())
        return said
    finally:
        lab.down()


@pytest.mark.parametrize("index", range(len(MACHINE_SLIPS)), ids=[s.name for s in MACHINE_SLIPS])
def test_a_slip_at_the_machines_own_prompt_is_found_and_undone(index):
    said = standin.run(in_standin, index)
    assert said["fix"].startswith("in your own shell"), said
    assert said["changed"] == [] and said["after_down"] == [], said


@pytest.mark.parametrize("slip", LAB_SLIPS, ids=[s.name for s in LAB_SLIPS])
def test_a_slip_in_the_wrong_lab_shell_is_found_and_undone(lab, slip):
    said = _slipped(lab, slip)
    assert said["fix"].startswith("in "), said


def cli_in_standin() -> dict:
    """In the stand-in: a MASQUERADE typed at the machine's prompt during practice; what
    status, doctor and down say of it, and whether down left it."""
    import subprocess
    import sys

    from labkit.lab import doctor
    lab = Lab("sl")
    lab.practice("outside")
    rule = seed.steps("outside", "sl")[3].command
    assert standin.at_prompt(rule)[0] == 0

    def labkit(*argv):
        return subprocess.run([sys.executable, "-m", "labkit", *argv], capture_output=True,
                              text=True, timeout=120).stdout
    status = labkit("status", "--lab", "sl")
    check = doctor.machine_check()
    down = labkit("down", "--lab", "sl")
    kept = "MASQUERADE" in standin.at_prompt("iptables -t nat -S POSTROUTING")[1]
    standin.at_prompt(rule.replace(" -A ", " -D "))
    return {"status": status, "doctor": [check.ok, check.detail, check.fix], "down": down, "kept": kept}


def test_status_doctor_and_down_name_what_the_machine_holds_and_down_leaves_it():
    said = standin.run(cli_in_standin)
    remove = "sudo iptables -t nat -D POSTROUTING -s 172.18.0.0/16 ! -o br0 -j MASQUERADE"
    assert "warning: the machine's own network holds what the lab's stages name" in said["status"]
    assert remove in said["status"], said["status"]
    ok, detail, fix = said["doctor"]
    assert ok and "MASQUERADE" in detail and remove in fix, said["doctor"]
    assert "left as it is: the machine's own network holds" in said["down"] and remove in said["down"]
    assert said["kept"], "down removed what labkit did not make"
