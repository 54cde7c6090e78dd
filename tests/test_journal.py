"""The journal undoes exactly what the lab made: a namespace re-made under the same name by
someone else, and an /etc/netns that existed before labkit, are left alone."""
from __future__ import annotations

import os
import subprocess

import pytest

from labkit.kernel import netns

pytestmark = pytest.mark.kernel


def test_down_leaves_a_namespace_someone_else_remade_under_the_same_name(lab):
    lab.up("veth")
    name = lab.ns("netns0")
    subprocess.run(["ip", "netns", "delete", name], check=True)
    subprocess.run(["ip", "netns", "add", name], check=True)   # someone else's now
    try:
        assert lab.journal.foreign() == [name]
        lab.down()
        assert netns.exists(name), "down deleted a namespace the lab did not make"
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def test_up_does_not_delete_a_remade_namespace_it_no_longer_wants(lab):
    lab.up("two-veths")
    name = lab.ns("netns1")
    subprocess.run(["ip", "netns", "delete", name], check=True)
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        lab.up("veth")               # one container: netns1 is no longer wanted
        assert netns.exists(name)
    finally:
        lab.down()
        subprocess.run(["ip", "netns", "delete", name], check=False)


@pytest.mark.parametrize("existed", [True, False])
def test_an_etc_netns_that_existed_before_is_kept_and_one_labkit_made_is_removed(
        lab_factory, tmp_path, monkeypatch, existed):
    etc = tmp_path / "netns"
    if existed:
        etc.mkdir()
    monkeypatch.setenv("LABKIT_ETC_NETNS", str(etc))
    lab = lab_factory()  # made after the change of place: it keeps its /etc/netns there
    lab.up("veth")
    assert (etc / lab.ns("netns0") / "hosts").exists()
    lab.down()
    assert etc.is_dir() == existed
    if existed:
        assert os.listdir(etc) == []


def test_a_lab_keeps_its_places_when_the_environment_changes_later(lab_factory, tmp_path, monkeypatch):
    """The `lab` fixture's teardown runs after monkeypatch has put the environment back: the
    lab must still find its journal, namespaces and /etc/netns where it made them."""
    places = {"LABKIT_RUN_DIR": tmp_path / "run", "LABKIT_ETC_NETNS": tmp_path / "etc"}
    for name, path in places.items():
        monkeypatch.setenv(name, str(path))
    lab = lab_factory()
    lab.up("veth")
    assert (tmp_path / "run" / f"{lab.name}.json").exists()
    assert (tmp_path / "etc" / lab.ns("netns0") / "hosts").exists()
    for name in places:
        monkeypatch.delenv(name)
    assert lab.stage == "veth" and lab.journal.path.startswith(str(tmp_path))
    lab.down()
    assert not (tmp_path / "run").exists() and not (tmp_path / "etc").exists()
    assert not any(n.startswith(lab.name + "-") for n in netns.names())
