"""Widgets' callbacks without a browser: stage stepper, traffic tester, capture viewer."""
import re
import subprocess
import sys

import pytest

from labkit.model import stages
from labkit.teach.notebook import widgets
from labkit.errors import NotPrivileged, UnknownName

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from test_ladder import OUTWARD, masqueraded_ping  # noqa: E402


class FakeLab:
    """Records calls; the kernel is the stage's plan."""

    def __init__(self, stage=None, fail=None):
        self.name, self.calls, self.fail = "", [], fail
        self.topology = stages.build(stage) if stage else None

    def up(self, stage, containers=None):
        self.calls.append(("up", stage, containers))
        if self.fail:
            raise self.fail
        self.topology = stages.build(stage, containers=containers)
        return self.topology

    def inspect(self):
        if self.topology is None:
            raise NotPrivileged("labkit needs root: run it with sudo")
        return self.topology

    def ping(self, role, address, count=1, timeout=1.0):
        self.calls.append(("ping", role, address))
        return address != "172.18.0.99"

    def exec(self, role, argv, **kw):
        self.calls.append(("exec", role, argv[-1]))
        return subprocess.CompletedProcess(argv, 0, "200" if "5000" in argv[-1] else "000", "")


class FakeCapture:
    made = []

    def __init__(self, points, lab=None, filter=None):
        self.points, self.filter, self.state = points, filter, "new"
        FakeCapture.made.append(self)

    def start(self):
        self.state = "running"
        return self

    def stop(self):
        self.state = "stopped"
        return masqueraded_ping()


def test_stepper_without_a_lab_draws_plans_and_marks_changes():
    s = widgets.StageStepper()
    assert s.go("veth") and s.stage.value == "veth"
    assert "ceth0" in s.diagram.value and s.diagram.value.startswith("<svg")
    assert "the plan; no lab touched" in s.status.value
    assert s.before is None
    assert s.step(+1) and s.stage.value == "two-veths"
    assert s.before == stages.build("veth") and s.view.model.changed
    assert "veth1" in s.diagram.value and "two routes" not in s.about.value
    s.step(+10)
    assert s.stage.value == stages.STAGES[-1]
    s.step(-1)
    assert s.stage.value == stages.STAGES[-2]


def test_stepper_buttons_converge_the_lab_once_per_click():
    lab = FakeLab()
    s = widgets.StageStepper(lab, containers=3)
    s.stage.value = "bridge"                        # a click on the toggle button
    assert lab.calls == [("up", "bridge", 3)]
    assert "br0" in s.diagram.value and "at stage bridge" in s.status.value
    s.next.click()
    assert lab.calls[-1] == ("up", "outside", 3) and s.stage.value == "outside"
    s.redraw.click()                                 # reads the kernel again, no convergence
    assert len(lab.calls) == 2 and s.before == s.topology


def test_stepper_shows_errors_instead_of_raising():
    s = widgets.StageStepper(FakeLab(fail=NotPrivileged("not root: run with sudo")))
    assert s.go("bridge") is False
    assert "not root: run with sudo" in s.status.value and widgets.FAIL in s.status.value
    assert s.go("nonsense") is False and "unknown stage" in s.status.value


def test_traffic_tester_pings_while_capturing_and_shows_the_ladder():
    FakeCapture.made.clear()
    lab = FakeLab("outside")
    t = widgets.TrafficTester(lab, capture=FakeCapture)
    assert t.source.options == ("host", "world", "netns0", "netns1")
    assert set(t.points.value) == set(OUTWARD) | {"host:veth1", "netns1:ceth1"}
    assert t.send() is True
    (cap,) = FakeCapture.made
    assert cap.state == "stopped" and cap.filter == "icmp or arp"
    assert lab.calls == [("ping", "netns0", "203.0.113.80")]
    assert "answered" in t.status.value and widgets.OK in t.status.value
    assert "src 172.18.0.10 -&gt; 10.0.2.15" in t.ladder.value
    assert "labkit-capture" in t.table.value


def test_traffic_tester_http_and_failures():
    lab = FakeLab("publish")
    t = widgets.TrafficTester(lab, capture=FakeCapture, source="world", target="10.0.2.15:5000",
                              method="http")
    assert t.send() is True and "GET http://10.0.2.15:5000/ from world: HTTP 200" in t.status.value
    t.target.value = "172.18.0.99"
    t.method.value = "ping"
    assert t.send() is False and "no answer" in t.status.value
    t.points.value = ()
    assert t.send() is False and t.packets is None and t.ladder.value == ""


def test_traffic_tester_errors_are_shown():
    class Refusing(FakeCapture):
        def start(self):
            raise UnknownName("lab has no namespace 'netns7'")
    t = widgets.TrafficTester(FakeLab("outside"), capture=Refusing)
    assert t.send() is None and "netns7" in t.status.value
    down = widgets.TrafficTester(FakeLab())          # lab not up / no root: no choices
    assert down.source.options == () and down.send() is None
    assert "bring the lab up first" in down.status.value


def test_capture_viewer_filters_and_keeps_whole_paths_in_the_ladder():
    v = widgets.CaptureViewer(masqueraded_ping())
    assert "10 of 10 packets" in v.status.value
    v.host.value = "172.18.0.10"
    assert len(v.shown) == 6                       # hops with the container's own address
    assert "src 172.18.0.10 -&gt; 10.0.2.15" in v.ladder.value   # ... but the whole path drawn
    v.host.value = ""
    v.proto.value = "tcp"
    assert v.apply() == 0
    v.proto.value = "all"
    v.point.value = ("host:ens18",)
    assert len(v.shown) == 2
    v.point.value = ()
    assert len(v.shown) == 0
    v.port.value = "http"
    assert "not a number" in v.status.value


def test_widgets_display_as_their_box():
    s = widgets.StageStepper()
    bundle = s._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle


def svg_head(value: str) -> str:
    assert value.startswith("<svg"), value[:80]
    return value[:value.index(">") + 1]


def test_drawings_scale_to_the_output_area_and_are_never_wider():
    """A drawing wider than the output area (a ladder is 11 inches) would make the area scroll
    sideways: each is width 100% of its widget, at most its natural width, its height from
    its viewBox; the widgets themselves are as wide as the area, no wider."""
    s = widgets.StageStepper()
    s.go("hairpin")
    t = widgets.TrafficTester(FakeLab("outside"), capture=FakeCapture)
    t.send()
    v = widgets.CaptureViewer(masqueraded_ping())
    for value in (s.diagram.value, t.ladder.value, v.ladder.value):
        head = svg_head(value)
        assert re.search(r'\swidth="100%"', head) and 'viewBox="0 0 ' in head
        natural = re.search(r"max-width:([\d.]+)pt", head)
        assert natural and float(natural.group(1)) > 500 and "height:auto" in head
        assert not re.search(r'\sheight="', head) and len(re.findall(r'\swidth="', head)) == 1
        assert "<text" in value                       # text stays text: it scales, it is searchable
    for widget in (s, t, v):
        assert (widget.widget.layout.width, widget.widget.layout.max_width) == ("100%", "100%")
    for html_widget in (s.diagram, t.ladder, t.table, v.ladder, v.table):
        assert html_widget.layout.max_width == "100%"
    for table in (t.table.value, v.table.value):      # a wide table scrolls inside its own box
        assert table.startswith('<div style="max-width:100%;overflow-x:auto">')


@pytest.mark.kernel
def test_traffic_tester_on_a_live_lab_shows_the_masquerade(lab):
    lab.up("outside")
    t = widgets.TrafficTester(lab)
    t.points.value = tuple(OUTWARD)
    assert t.send() is True
    assert "src 172.18.0.10 -&gt; 10.0.2.15" in t.ladder.value


@pytest.mark.kernel
def test_stepper_on_a_live_lab_draws_what_the_kernel_holds(lab):
    s = widgets.StageStepper(lab)
    assert s.go("two-veths") and "veth1" in s.diagram.value
    assert s.go("bridge")
    assert s.topology.namespace("host").interface("br0") is not None
    assert s.view.model.chip("host", "br0").status == "added"


@pytest.mark.kernel
def test_traffic_tester_http_ignores_the_machines_proxy(lab, monkeypatch):
    """A proxy set for the machine (http_proxy, common behind a company network) is not
    reachable from inside the lab: the tester's GET goes straight to the lab address, as
    lesson.probe's does. The 'proxy' here is a closed port on the world's own loopback."""
    lab.up("publish")
    for var in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    t = widgets.TrafficTester(lab, source="world", target="10.0.2.15:5000", method="http")
    t.points.value = ()
    assert t.send() is True, t.status.value


def test_where_widgets_do_not_render_they_show_their_status_as_text():
    s = widgets.StageStepper()
    assert s.go("bridge")
    bundle = s._repr_mimebundle_()
    assert bundle["text/plain"] == ("at stage bridge (the plan; no lab touched)\n"
                                    f"bridge: {widgets.stages.DESCRIPTIONS['bridge']}")
    assert "application/vnd.jupyter.widget-view+json" in bundle
    t = widgets.TrafficTester(FakeLab("outside"), capture=FakeCapture)
    t.send()
    assert t._repr_mimebundle_()["text/plain"] == "ping netns0 -> 203.0.113.80: answered"


def test_where_widgets_do_not_render_they_show_their_drawing_as_a_picture():
    """A saved notebook keeps a widget's drawing as image/png beside its text (the widget view
    itself is dropped when notebooks are stored): the static site, JupyterLab before a kernel
    starts and a notebook viewer show that picture; a live notebook shows the widget."""
    import base64
    from labkit.teach.printed import stored
    s = widgets.StageStepper()
    assert "image/png" not in s._repr_mimebundle_()            # nothing drawn yet
    assert s.go("bridge")
    bundle = s._repr_mimebundle_()
    png = base64.b64decode(bundle["image/png"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and png == s.view.render("png")
    nb = {"cells": [{"cell_type": "code", "source": "stepper", "metadata": {}, "execution_count": 3,
                     "outputs": [{"output_type": "display_data", "metadata": {}, "data": bundle}]}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    kept = stored.clean(nb)["cells"][0]["outputs"][0]["data"]
    assert set(kept) == {"text/plain", "image/png"}
    t = widgets.TrafficTester(FakeLab("outside"), capture=FakeCapture)
    assert t.send() and t._repr_mimebundle_()["image/png"]
    assert base64.b64decode(t._repr_mimebundle_()["image/png"]) == t.picture.render("png")
    v = widgets.CaptureViewer(masqueraded_ping())
    v.point.value = ()
    assert v._repr_mimebundle_()["image/png"]                    # an empty ladder is still drawn
