"""Jupyter widgets: a stage stepper, a traffic tester and a capture viewer (ipywidgets).

Each is a small object holding ipywidgets controls in `.widget` (it displays itself as that)
and plain methods that the controls call: `StageStepper.go(stage)`, `TrafficTester.send()`,
`CaptureViewer.apply()`. Those methods work, and are tested, without a browser; what they
show goes into HTML widgets (`.value` holds the HTML), and errors from labkit are shown there
too, never raised into the notebook. Everything that touches the kernel goes through the
`lab` given (a `Lab`). Plan mode, with lab=None or where labs cannot run (no CAP_NET_ADMIN):
the stepper draws the stages' plans with the reachability recorded on a real kernel, and the
tester shows probes as recorded (PlannedStepper, PlannedTraffic; labkit.teach.replay.traffic_log).
Where widgets do not render (a saved or printed notebook, the static site, JupyterLab before a
kernel runs), each shows its status line as text (`text()`, the display's text/plain) and
its drawing as it was when displayed (`picture`, the display's image/png; a live notebook
shows the widget instead). Drawings scale down to the width of the output area (`fitted`),
never wider than it.
"""
from __future__ import annotations

import html
import re

import ipywidgets as w

from ...draw import diagram
from ...draw import ladder
from ...model import stages
from ...model.topology import Topology
from ...errors import LabkitError
from ...draw.figure import WARN, Figure, fitted_svg
from ...kernel import privilege
from ...lab import reach
from ..replay import traffic_log

OK, FAIL = "#138a36", WARN
DEFAULT_POINTS = ("netns0:ceth0", "host:veth0", "host:br0", "host:veth1", "netns1:ceth1",
                  "host:ens18", "world:wan0")
PROTOS = ("all", "icmp", "tcp", "udp", "arp")


FULL = {"width": "100%", "max_width": "100%"}   # a widget as wide as the output area, no wider
# a drawing's widget inside that column: stretched to it, margins included (width 100% plus
# ipywidgets' 2 px margins stuck out of the area by 2 px and made the column scroll sideways)
FILL = {"width": "auto", "max_width": "100%"}


def _say(text: str, color: str = "#333") -> str:
    return f'<span style="color:{color};font-family:monospace">{html.escape(text)}</span>'


def fitted(svg: str) -> str:
    """SVG for an HTML widget: scaled to the output area's width (never wider than drawn)."""
    return fitted_svg(svg)


def boxed(content: str) -> str:
    """HTML (a table) kept inside the output area: it scrolls inside its box if too wide."""
    return f'<div style="max-width:100%;overflow-x:auto">{content}</div>'


def _area(*children) -> w.VBox:
    """A column of widgets as wide as the output area; drawings inside scale to it."""
    return w.VBox(list(children), layout=w.Layout(**FULL))


def _plain(value: str) -> str:
    """The text of a status HTML, without its markup."""
    return html.unescape(re.sub(r"<[^>]+>", "", value))


class _Shown:
    widget: w.Widget
    status: w.HTML
    picture: Figure | None = None   # the drawing shown now (None: none)

    def text(self) -> str:
        """What the widget says now, as plain text (its status line)."""
        return _plain(self.status.value)

    def _draw(self, area: w.HTML, figure: Figure | None) -> None:
        """Show `figure` in `area` (scaled to the output area), or nothing for None."""
        self.picture = figure
        area.value = fitted(figure.render("svg")) if figure is not None else ""

    def _repr_mimebundle_(self, **kwargs):
        import base64
        bundle = dict(self.widget._repr_mimebundle_(**kwargs))
        bundle["text/plain"] = self.text() or bundle.get("text/plain", "")
        if self.picture is not None:
            bundle["image/png"] = base64.b64encode(self.picture.render("png")).decode()
        return bundle

    def _ipython_display_(self):
        from IPython.display import display
        display(self._repr_mimebundle_(), raw=True)


class StageStepper(_Shown):
    """Go to a stage (buttons, or `go(stage)`); the topology diagram follows, changes marked.

    With `lab`, each step converges the kernel (`lab.up`) and draws what `lab.inspect()` reads
    back; with lab=None it draws the stage's plan (no root: previews, Binder)."""

    def __new__(cls, lab=None, *args, **kwargs):
        if cls is StageStepper and _planned(lab):
            cls = PlannedStepper                  # no lab, or labs cannot run here: plan mode
        return super().__new__(cls)

    def __init__(self, lab=None, containers: int | None = None):
        self.lab, self.containers = lab, containers
        self.before: Topology | None = None           # the topology drawn before the last
        self.topology: Topology | None = None         # the topology drawn last
        self.view: Figure | None = None               # its figure
        self.stage = w.ToggleButtons(options=stages.STAGES, value=None, description="stage")
        self.back = w.Button(description="\u25c0 back", layout=w.Layout(width="90px"))
        self.next = w.Button(description="next \u25b6", layout=w.Layout(width="90px"))
        self.redraw = w.Button(description="redraw", tooltip="read the kernel again",
                               layout=w.Layout(width="90px"))
        self.status = w.HTML()
        self.about = w.HTML()
        self.diagram = w.HTML(layout=w.Layout(**FILL))
        self._quiet = False                           # go() setting the buttons itself
        self.stage.observe(lambda c: None if self._quiet or not c["new"] else self.go(c["new"]),
                           "value")
        self.back.on_click(lambda _: self.step(-1))
        self.next.on_click(lambda _: self.step(+1))
        self.redraw.on_click(lambda _: self.show())
        self.widget = _area(self.stage, w.HBox([self.back, self.next, self.redraw]),
                            self.status, self.about, self.diagram)

    def go(self, stage: str) -> bool:
        """Bring the lab to `stage` (or plan it) and draw it; False (and a message) on error."""
        try:
            stages.check_stage(stage)
            self.status.value = _say(f"going to {stage} ...")
            if self.lab is not None:
                self.lab.up(stage, self.containers)
            self.about.value = _say(f"{stage}: {stages.DESCRIPTIONS[stage]}")
            self._quiet = True
            try:
                self.stage.value = stage
            finally:
                self._quiet = False
            ok = self.show(stage)
            if ok:
                self.status.value = _say(f"at stage {stage}" + (
                    "" if self.lab is not None else " (the plan; no lab touched)"), OK)
            return ok
        except LabkitError as e:
            self.status.value = _say(str(e), FAIL)
            return False

    def text(self) -> str:
        """The status line and the stage's description, as plain text."""
        return "\n".join(t for t in (_plain(self.status.value), _plain(self.about.value)) if t)

    def step(self, delta: int) -> bool:
        """Go to the stage `delta` places from the current one (first stage if none yet)."""
        current = self.stage.value
        i = 0 if current is None else stages.STAGES.index(current) + delta
        return self.go(stages.STAGES[max(0, min(i, len(stages.STAGES) - 1))])

    def show(self, stage: str | None = None) -> bool:
        """Draw the lab as it is now (or the plan of `stage`), marked against the last drawing."""
        stage = stage or self.stage.value
        try:
            if self.lab is not None:
                topology = self.lab.inspect()
            elif stage is not None:
                topology = stages.build(stage, containers=self.containers)
            else:
                return False
        except LabkitError as e:
            self.status.value = _say(str(e), FAIL)
            return False
        self.before, self.topology = self.topology, topology
        self.view = diagram.figure(topology, self.before)
        self._draw(self.diagram, self.view)
        return True


def _target(text: str, method: str) -> tuple[str, str]:
    """(address, URL) from "10.0.2.15:5000", "http://10.0.2.15:5000/" or "203.0.113.80"."""
    text = text.strip()
    if method == "http":
        url = text if "://" in text else f"http://{text}/"
        host = url.split("://", 1)[1].split("/", 1)[0].split(":")[0]
        return host, url
    return text.split(":")[0], ""


class TrafficTester(_Shown):
    """Send a ping or an HTTP request from a namespace to a target, capturing at chosen points.

    Shows whether it got through, the packets that crossed each point (a table) and their
    ladder (NAT rewrites highlighted). `capture` makes the capture (labkit.capture.Capture by
    default; tests pass a stand-in)."""

    def __new__(cls, lab=None, *args, **kwargs):
        if cls is TrafficTester and _planned(lab):
            cls = PlannedTraffic                  # no lab, or labs cannot run here: plan mode
        return super().__new__(cls)

    def __init__(self, lab, capture=None, source: str = "netns0", target: str = "203.0.113.80",
                 method: str = "ping"):
        self.lab = lab
        self._capture = capture
        self.packets = None
        roles, points = self._choices()
        self.source = w.Dropdown(options=roles, value=source if source in roles else
                                 (roles[0] if roles else None), description="from")
        self.target = w.Text(value=target, description="to",
                             placeholder="203.0.113.80 or 10.0.2.15:5000")
        self.method = w.ToggleButtons(options=("ping", "http"), value=method, description="send")
        self.points = w.SelectMultiple(options=points, description="capture at",
                                       value=tuple(p for p in DEFAULT_POINTS if p in points),
                                       rows=min(8, max(len(points), 1)))
        self.button = w.Button(description="send", button_style="primary")
        self.status = w.HTML()
        self.table, self.ladder = w.HTML(layout=w.Layout(**FILL)), w.HTML(layout=w.Layout(**FILL))
        self.button.on_click(lambda _: self.send())
        self.widget = _area(w.HBox([self.source, self.target], layout=w.Layout(flex_flow="row wrap")),
                            self.method, self.points, self.button, self.status, self.ladder,
                            self.table)

    def _choices(self) -> tuple[list[str], list[str]]:
        try:
            topology = self.lab.inspect()
        except LabkitError:
            return [], []
        roles = [ns.role for ns in topology.namespaces]
        points = [f"{ns.role}:{i.name}" for ns in topology.namespaces for i in ns.interfaces
                  if i.kind != "loopback"]
        return roles, points

    def send(self) -> bool | None:
        """Send once, capturing; True if answered, False if not, None on an error (shown)."""
        method, source = self.method.value, self.source.value
        try:
            address, url = _target(self.target.value, method)
            if not source:
                raise LabkitError("no namespace to send from: bring the lab up first "
                                  "(labkit up STAGE)")
            points = list(self.points.value)
            make = self._capture
            if make is None:
                from ...capture.live import Capture as make
            cap = make(points, lab=self.lab, filter="icmp or arp" if method == "ping"
                       else "tcp or arp") if points else None
            if cap is not None:
                cap.start()
            try:
                ok, said = self._send(method, source, address, url)
            finally:
                self.packets = cap.stop() if cap is not None else None
        except LabkitError as e:
            self.status.value = _say(str(e), FAIL)
            return None
        self.status.value = _say(said, OK if ok else FAIL)
        self.table.value = boxed(self.packets._repr_html_()) if self.packets is not None else ""
        self._draw(self.ladder, ladder.figure(self.packets) if self.packets is not None else None)
        return ok

    def _send(self, method: str, source: str, address: str, url: str) -> tuple[bool, str]:
        answer = reach.send(self.lab, source, address if method == "ping" else url)  # the one probe
        what = f"ping {source} -> {address}" if method == "ping" else f"GET {url} from {source}"
        return answer.ok, f"{what}: {answer.said}"


class CaptureViewer(_Shown):
    """Browse captured packets: filter by protocol, host, port and point; a table and a ladder."""

    def __init__(self, packets, limit: int = ladder.LIMIT):
        self.packets, self.limit = packets, limit
        self.shown = packets
        self.proto = w.Dropdown(options=PROTOS, value="all", description="protocol")
        self.host = w.Text(description="host", placeholder="an address, e.g. 172.18.0.10")
        self.port = w.Text(description="port", placeholder="e.g. 5000")
        points = tuple(packets.points)
        self.point = w.SelectMultiple(options=points, value=points, description="points",
                                      rows=min(8, max(len(points), 1)))
        self.status = w.HTML()
        self.table, self.ladder = w.HTML(layout=w.Layout(**FILL)), w.HTML(layout=w.Layout(**FILL))
        for control in (self.proto, self.host, self.port, self.point):
            control.observe(lambda _: self.apply(), "value")
        self.widget = _area(w.HBox([self.proto, self.host, self.port],
                                   layout=w.Layout(flex_flow="row wrap")),
                            self.point, self.status, self.ladder, self.table)
        self.apply()

    def apply(self) -> int:
        """Show the packets matching the controls; returns how many."""
        flow = {}
        if self.proto.value != "all":
            flow["proto"] = self.proto.value
        if self.host.value.strip():
            flow["host"] = self.host.value.strip()
        port = self.port.value.strip()
        if port:
            if not port.isdigit():
                self.status.value = _say(f"port {port!r} is not a number: write e.g. 5000", FAIL)
                return len(self.shown)
            flow["port"] = int(port)
        at = self.packets.filter(point=list(self.point.value)) if self.point.value \
            else self.packets[:0]
        self.shown = at.filter(**flow)
        self.status.value = _say(f"{len(self.shown)} of {len(self.packets)} packets")
        self.table.value = boxed(self.shown._repr_html_())
        # the ladder keeps whole paths that match anywhere: hops after NAT rewrote the address
        self._draw(self.ladder, ladder.figure(ladder.layout(at, limit=self.limit, **flow)))
        return len(self.shown)


# Plan mode: where labs cannot run (no lab given, or no CAP_NET_ADMIN: Binder), the stepper and
# the tester work on the stages' plans and on the run recorded on a real kernel (recording); a
# CaptureViewer needs no privileges: CaptureViewer(traffic_log.load().packets(stage, src, dst)).

def _planned(lab) -> bool:
    """True if a widget given `lab` works in plan mode: no lab, or no privileges to run one."""
    return lab is None or bool(privilege.missing_capabilities())


class PlannedStepper(StageStepper):
    """StageStepper in plan mode: each stage's plan, changes marked against the stage drawn
    before, and the stage's reachability as recorded on a real kernel (a table)."""

    def __init__(self, lab=None, containers: int | None = None):
        super().__init__(None, containers)
        self.reach = w.HTML(layout=w.Layout(**FILL))
        self.widget.children = (*self.widget.children, self.reach)

    def show(self, stage: str | None = None) -> bool:
        ok = super().show(stage)
        run = traffic_log.load()
        if ok and run.takes.get(self.stage.value):
            self.reach.value = boxed(run.table(self.stage.value))
        return ok


class PlannedTraffic(TrafficTester):
    """TrafficTester in plan mode: sends nothing; `send()` shows the probe as recorded on a
    real kernel at the chosen stage (answered or not, the packets at the chosen points and
    their ladder), or says it was not recorded. The stage defaults to the first at which the
    probe was answered."""

    def __init__(self, lab=None, capture=None, source: str = "netns0", target: str = "203.0.113.80",
                 method: str = "ping", stage: str | None = None):
        self.run = traffic_log.load()
        first = self.run.first_working(source, target, method) or stages.STAGES[-1]
        self.stage = w.Dropdown(options=stages.STAGES, value=stages.check_stage(stage or first),
                                description="stage")
        super().__init__(None, capture, source, target, method)
        self.button.description = "show recorded"
        self.widget.children = (self.stage, *self.widget.children)
        self.stage.observe(lambda _: self._restage(), "value")

    def _choices(self) -> tuple[list[str], list[str]]:
        topology = stages.build(self.stage.value)
        return ([ns.role for ns in topology.namespaces],
                [f"{ns.role}:{i.name}" for ns in topology.namespaces for i in ns.interfaces
                 if i.kind != "loopback"])

    def _restage(self) -> None:
        roles, points = self._choices()
        source, chosen = self.source.value, set(self.points.value)
        self.source.options, self.points.options = roles, points
        self.source.value = source if source in roles else roles[0]
        self.points.value = tuple(p for p in points if p in chosen or p in DEFAULT_POINTS)
        self.send()

    def send(self) -> bool | None:
        """Show the recorded probe; True/False as it was answered, None if not recorded."""
        method, source, stage = self.method.value, self.source.value, self.stage.value
        take = self.run.take(stage, source, self.target.value, method)
        if take is None:
            self.packets, self.table.value = None, ""
            self._draw(self.ladder, None)
            self.status.value = _say(f"{method} from {source} to {self.target.value.strip()} was not "
                                     f"recorded at stage {stage}: run it yourself in a VM", FAIL)
            return None
        self.packets = take.packets.filter(point=list(self.points.value)) if self.points.value else None
        self.status.value = _say(f"{take.said} (recorded on a real kernel on {self.run.date}; run "
                                 "it yourself in a VM)", OK if take.ok else FAIL)
        self.table.value = boxed(self.packets._repr_html_()) if self.packets is not None else ""
        self._draw(self.ladder, ladder.figure(self.packets) if self.packets is not None else None)
        return take.ok

