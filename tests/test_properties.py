"""Property-based bad input over the public API and the CLI: only LabkitError, never a traceback
from inside, never a half-made lab."""
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labkit import plan, stages
from labkit.errors import LabkitError

names = st.one_of(st.text(max_size=20), st.sampled_from(["", "t1", "abcdef", "abcdefg", "a b", "../x"]))
anything = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=8))
counts = st.one_of(st.integers(min_value=-5, max_value=2000), anything)
INPUTS = {"tried": 0}


@settings(max_examples=300, deadline=None)
@given(lab=names, stage=st.one_of(st.sampled_from(stages.STAGES), st.text(max_size=12)), n=counts)
def test_building_a_plan_accepts_or_raises_labkit_error(lab, stage, n):
    INPUTS["tried"] += 1
    try:
        topology = stages.build(stage, lab, n)
    except LabkitError as e:
        assert str(e)
        return
    assert len(topology.containers) == (stages.default_containers(stage) if n is None else n)
    for ns in topology.namespaces:
        plan.check_kernel_name(plan.namespace_name(lab, ns.name), "namespace")
        for itf in ns.interfaces:
            plan.check_kernel_name(itf.name)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(max_size=24), st.from_regex(r"\d{1,3}(\.\d{1,3}){3}/\d{1,2}", fullmatch=True)))
def test_cidr_parsing(text):
    try:
        parsed = plan.parse_cidr(text)
    except LabkitError as e:
        assert "write it like" in str(e)
    else:
        assert str(parsed) == text or parsed.ip.version == 4


@settings(max_examples=300, deadline=None)
@given(name=st.one_of(st.text(max_size=20), anything))
def test_kernel_names(name):
    try:
        ok = plan.check_kernel_name(name)
    except LabkitError:
        return
    assert 1 <= len(ok) <= 15 and "/" not in ok and not any(c.isspace() for c in ok)


@pytest.mark.kernel
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(args=st.lists(st.one_of(st.sampled_from(["up", "down", "status", "exec", "--lab", "--containers",
                                                 "--backend", "--json", "veth", "bridge", "0", "5000",
                                                 "netns0", "--", "-1", "nftables", "x" * 16, "a b"]),
                               st.text(alphabet="abcxyz019-/ ", max_size=8)), max_size=6))
def test_cli_never_shows_a_traceback(tmp_path_factory, args):
    """Random command lines: exit 0, 1 or 2 with a message; no traceback; nothing half-made."""
    if args and args[0] == "up":
        args = [*args, "--lab", "tprop"]  # anything valid goes into one lab, removed below
    run_dir = tmp_path_factory.mktemp("run")
    env = {**os.environ, "LABKIT_RUN_DIR": str(run_dir)}
    result = subprocess.run([sys.executable, "-m", "labkit", *args], capture_output=True, text=True,
                            env=env, timeout=60, stdin=subprocess.DEVNULL)
    subprocess.run([sys.executable, "-m", "labkit", "clean"], env=env, capture_output=True, timeout=60)
    assert "Traceback" not in result.stderr, (args, result.stderr)
    assert result.returncode in (0, 1, 2, 127), (args, result.returncode, result.stderr)
    from labkit import netns
    assert not [n for n in netns.names() if n.startswith("tprop-")]
