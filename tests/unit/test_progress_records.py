"""The record of each check, as plain data: its form, item ids, the summary a student sees."""
import json

from labkit.lab import progress
from labkit.lab.verdict import Item, Result


def _result(stage="bridge", *unmet: str) -> Result:
    items = [Item(True, "br0 exists", "links")] + [Item(False, what, "links") for what in unmet]
    return Result(stage, "", tuple(items))


def test_a_record_names_the_unmet_items_by_id_and_reads_back(monkeypatch, tmp_path):
    monkeypatch.setenv("LABKIT_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("SUDO_USER", "ada")
    record = progress.of(_result("bridge", "veth1 is not a port of br0"), "bridge-down", 2)
    assert (record.user, record.stage, record.done, record.hints, record.fault) == \
        ("ada", "bridge", False, 2, "bridge-down")
    assert record.unmet == ("links/veth1-is-not-a-port-of-br0",)
    assert progress.save(record) and progress.load() == [record]
    line = (tmp_path / progress.FILE).read_text().splitlines()[0]
    assert json.loads(line)["unmet"] == ["links/veth1-is-not-a-port-of-br0"]


def test_the_hubs_user_comes_first(monkeypatch):
    monkeypatch.setenv("SUDO_USER", "ada")
    monkeypatch.setenv("JUPYTERHUB_USER", "student07")
    assert progress.user() == "student07"


def test_the_summary_says_when_a_stage_was_done_and_never_names_the_fault(monkeypatch, tmp_path):
    monkeypatch.setenv("LABKIT_STATE_DIR", str(tmp_path))
    for result, hints in ((_result("bridge", "veth1 is not a port of br0"), 1),
                          (_result("bridge"), 0), (_result("outside", "ip_forward is 0"), 2)):
        progress.save(progress.of(result, "no-forwarding", hints))
    text = progress.summary(progress.load())
    assert "stage bridge: done after 2 check(s); 2 check(s), hints up to level 1" in text
    assert "stage outside: not done yet; 1 check(s), hints up to level 2; last unmet: " \
           "links/ip-forward-is-0" in text
    assert "no-forwarding" not in text


def test_a_state_directory_that_cannot_be_written_is_said_once_and_the_check_goes_on(
        monkeypatch, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("LABKIT_STATE_DIR", str(blocker / "state"))
    record = progress.of(_result("veth"), None, 0)
    assert progress.save(record) is False and progress.save(record) is False
    assert capsys.readouterr().err.count("checks are not recorded") == 1
    assert progress.load() == [] and "no checks recorded yet" in progress.summary([])
