"""Hands-on: practice a stage, type the seed's commands, and check says whether it is done.

Every stage, typed with iptables as the seed writes it and (for the NAT stages) with nft;
then every single step left out, generated from the seed's steps: check must fail and name
what is missing. Traffic only between the lab's namespaces.
"""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from labkit.errors import KernelError, UnknownName
from labkit.lab.practice import before
from labkit.model import plan, seed, stages

from seedtyping import run_line, type_steps

pytestmark = pytest.mark.kernel

NAT_STAGES = ("outside", "publish", "hairpin", "firewall", "names")   # nft words for each NAT step


@pytest.mark.parametrize("stage,tool", [(s, "iptables") for s in stages.STAGES]
                         + [(s, "nft") for s in NAT_STAGES])
def test_the_seeds_commands_typed_by_hand_make_check_pass(lab, stage, tool):
    task = lab.practice(stage, backend="nftables" if tool == "nft" else "iptables")
    assert task.steps and f"labkit check {stage} --lab {lab.name}" in str(task)
    first = lab.check(stage)
    assert not first.ok
    failed = type_steps(lab, stage, tool)
    assert failed == [], failed
    result = lab.check(stage)
    assert result.ok, result.text(3)
    assert lab.check().ok            # the stage practised is the default
    lab.down()
    assert lab.roles() == []


def expected_words(step: seed.Step) -> set[str]:
    """Words of a step that the check must name when the step is left out."""
    words = set(re.findall(r"\b(?:netns\d+|veth\d+|ceth\d+|br[01]|lo|vxlan\d+)\b", step.command))
    words |= set(re.findall(r"\bDOCKER[-A-Z0-9]*", step.command))     # the filter table's chains
    words |= {a.split("/")[0] for a in re.findall(r"\d+\.\d+\.\d+\.\d+(?:/\d+)?", step.command)}
    words |= {a.split("/")[0] for a in re.findall(r"\b[0-9a-f]{1,4}:[0-9a-f:]*::?[0-9a-f]*(?:/\d+)?", step.command)}
    for k in re.findall(r"netns delete netns(\d+)", step.command):   # its veth pair goes with it
        words |= {f"veth{k}", f"ceth{k}"}
    for key, said in (("ip_forward", "forward"), ("MASQUERADE", "source"), ("PREROUTING", "PREROUTING"),
                      ("OUTPUT", "OUTPUT"), ("http.server", "listens"),
                      ("route_localnet", "route_localnet"), ("-t raw", "moby#41872"),
                      ("127.0.0.0/8 -o br0", "masquerade of 127"), ("-P FORWARD DROP", "policy"),
                      ("dnsmasq", "listens"), ("resolv.conf", "resolv.conf"),
                      # IPv6 and the overlay
                      ("disable_ipv6", "IPv6 is off"), ("conf.all.forwarding", "forward"),
                      ("RELATED,ESTABLISHED", "2001:db8:80::80"), ("-j DROP", "8080")):
        if key in step.command:
            words.add(said)
    return words


SEED_STAGES = stages.STAGES[:stages.STAGES.index("hairpin") + 1]   # the later ones: test_omissions.py
MIRRORED = {"overlay": range(15, 30), "ipv6": range(11, 14)}   # host-b's and netns1's steps repeat
                                                              # host-a's and netns0's, left out once


def omissions(chosen) -> list[tuple[str, int]]:
    """(stage, step) for every step of the `chosen` stages that check must miss when left out."""
    return [(stage, i) for stage in chosen for i in range(len(seed.STEPS[stage]))
            # hairpin's PREROUTING DNAT of 127.0.0.1 changes nothing a check can see: the raw
            # drop (moby#41872) stops every packet from the network to 127/8 before it
            if not (stage == "hairpin" and "PREROUTING -d 127.0.0.1" in seed.STEPS[stage][i].command)
            and i not in MIRRORED.get(stage, ())]


def omission_ids(chosen) -> list[str]:
    return [f"{s}-{i}-{seed.STEPS[s][i].command.split()[-1]}" for s, i in chosen]


OMISSIONS = omissions(SEED_STAGES)


@pytest.mark.parametrize("stage,skip", OMISSIONS, ids=omission_ids(OMISSIONS))
def test_leaving_out_any_one_step_fails_check_and_names_it(lab, stage, skip):
    leave_out_and_check(lab, stage, skip)


def leave_out_and_check(lab, stage: str, skip: int) -> None:
    """Practise `stage`, type every step but `skip`: check must fail and name what is missing."""
    lab.practice(stage)
    type_steps(lab, stage, skip=skip)
    result = lab.check(stage)
    step = seed.STEPS[stage][skip]
    assert not result.ok, f"check passed without: {step.command}"
    said = " ".join(i.what for i in result.unmet)
    words = expected_words(step)
    assert any(w in said for w in words), (step.command, words, said)


def test_practice_journals_the_names_the_person_creates_and_down_removes_them(lab):
    lab.practice("bridge")
    names = [lab.journal.namespaces]
    assert plan.namespace_name(lab.name, "netns0") in names[0]
    run_line(lab, "host", f"ip netns delete {lab.name}-netns0")
    run_line(lab, "host", f"ip netns add {lab.name}-netns0")      # the person's, as the seed says
    lab.down()
    assert lab.roles() == []
    assert subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.count(
        f"{lab.name}-") == 0


def test_practice_refuses_a_namespace_it_did_not_make(lab):
    name = plan.namespace_name(lab.name, "netns0")
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        with pytest.raises(KernelError, match=f"{name}.*did not create"):
            lab.practice("veth")
        assert lab.roles() == []
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def test_practice_on_a_lab_that_is_up_converges(lab):
    lab.up("hairpin")
    lab.practice("outside")
    assert not lab.check("outside").ok and lab.check("bridge").ok
    lab.practice("outside")                    # again: the same start
    assert lab.check("bridge").ok


def test_the_start_of_each_stage_is_the_stage_before():
    assert [n.role for n in before("veth").namespaces] == ["host", "world"]
    assert before("bridge") == stages.build("two-veths")
    outside = before("outside")
    assert [s.namespace for s in outside.services] == ["world"] and outside.nat == ()


def test_check_without_a_stage_on_a_lab_that_is_down_says_which(lab):
    with pytest.raises(UnknownName, match="which stage"):
        lab.check()


def test_unknown_stage_lists_the_stages(lab):
    with pytest.raises(UnknownName, match="veth, two-veths, bridge"):
        lab.practice("bridges")


@pytest.mark.parametrize("stage", stages.STAGES)
def test_the_seeds_commands_typed_in_lab_cells_make_check_pass(lab, stage):
    """As in a notebook: one `%%lab ROLE` cell per run of steps typed in the same namespace
    (the bridge stage deletes and re-adds both containers in one host cell)."""
    import itertools

    from labkit.teach.notebook import magic
    lab.practice(stage)
    printed = []
    for where, group in itertools.groupby(seed.steps(stage, lab.name), key=lambda s: s.where):
        statuses = magic.run(where, "\n".join(s.command for s in group), lab=lab, write=printed.append)
        assert not any(statuses), "".join(printed)
    result = lab.check(stage)
    assert result.ok, result.text(3)


def test_the_magic_knows_which_lab_namespaces_a_line_deletes():
    from labkit.teach.notebook.magic import deleted_namespaces
    assert deleted_namespaces("sudo ip netns delete netns0", "") == ["netns0"]
    assert deleted_namespaces("ip netns del t1-netns1; ip netns delete other", "t1") == ["t1-netns1"]
    assert deleted_namespaces("ip -n x netns list", "") == []


def _commands(stage: str, lab: str) -> list[str]:
    """The stage's commands as the guided task prints them (without sudo)."""
    return [step.command.removeprefix("sudo ") for step in seed.steps(stage, lab)]


@pytest.mark.parametrize("stage", stages.STAGES)
def test_a_challenge_gives_the_goal_without_a_command_and_the_goal_is_what_check_tests(lab, stage):
    task = lab.practice(stage, challenge=True)
    said = str(task)
    leaked = [c for c in _commands(stage, lab.name) if c in said]
    assert leaked == [], leaked
    assert f"labkit check {stage} --lab {lab.name}" in said and task.goals
    failed = type_steps(lab, stage)
    assert failed == [], failed
    result = lab.check(stage)
    assert result.ok, result.text(3)
    met = {i.what for i in result.items}
    promised = [g for g in task.goals if not g.startswith("and ")]
    assert [g for g in promised if g not in met] == [], met


def test_hints_come_in_three_levels_where_then_what_kind_then_the_command(lab):
    lab.practice("bridge", challenge=True)
    result = lab.check("bridge")
    one, two, three = result.text(1), result.text(2), result.text(3)
    assert "look:" in one and "change:" not in one and "fix:" not in one
    assert "change: in host: change the link veth0, with `ip link`" in two and "fix:" not in two
    assert "fix:" in three and "ip link set veth0 master br0" in three
    commands = _commands("bridge", lab.name)
    assert [c for c in commands if c in two] == []            # level 2 names no whole command


def test_labkit_practice_challenge_prints_no_command_of_the_stage(lab):
    from harness import labkit_env
    out = subprocess.run([sys.executable, "-m", "labkit", "practice", "outside", "--challenge",
                          "--lab", lab.name], capture_output=True, text=True, env=labkit_env())
    assert out.returncode == 0, out.stderr
    assert "Check will test" in out.stdout and "host" in out.stdout      # the goal, drawn as text
    assert [c for c in _commands("outside", lab.name) if c in out.stdout] == []
