"""/etc/netns as labkit makes it: marked as labkit's whenever labkit made it, even when another
lab's tidy-up removes it between the check and the making of a namespace's directory."""

import os

from labkit.lab import etcfiles


def test_a_namespace_directory_made_after_a_tidy_removed_etc_netns_leaves_it_marked(tmp_path, monkeypatch):
    etc = tmp_path / "netns"
    monkeypatch.setenv("LABKIT_ETC_NETNS", str(etc))
    etcfiles._make_etc_dir()
    etcfiles.tidy_etc_dir()                  # another lab's down: nothing of its own left, so it goes
    assert not etc.exists()
    etcfiles._make_namespace_dir(str(etc / "t1-netns0"))
    assert sorted(os.listdir(etc)) == [etcfiles.MADE_MARKER, "t1-netns0"]
    os.rmdir(etc / "t1-netns0")
    etcfiles.tidy_etc_dir()                  # the last lab gone: labkit's /etc/netns goes with it
    assert not etc.exists()


def test_an_etc_netns_that_was_there_before_stays_and_gets_no_marker(tmp_path, monkeypatch):
    etc = tmp_path / "netns"
    etc.mkdir()
    monkeypatch.setenv("LABKIT_ETC_NETNS", str(etc))
    etcfiles._make_namespace_dir(str(etc / "t1-netns0"))
    os.rmdir(etc / "t1-netns0")
    etcfiles.tidy_etc_dir()
    assert etc.is_dir() and os.listdir(etc) == []
