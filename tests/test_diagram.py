"""Topology diagrams: layout as data (no pixels), rendering of every stage, change marks."""
import dataclasses
import html
import re
import subprocess
import sys

import pytest

from labkit.draw import diagram, figure
from labkit.model import stages
from labkit.draw.diagram import ADDED, CHANGED, REMOVED, SAME, Rect
from labkit.errors import BadValue, LabkitError
from labkit.model import Interface, Topology

COUNTS = (1, 2, 5, 20, 200)
CASES = [(s, n) for s in stages.STAGES for n in COUNTS
         if not (stages.includes(s, "isolated") and n <= stages.SECOND_CONTAINER)]   # netns2 is on br1


def check_geometry(lay: diagram.Layout) -> None:
    """Boxes apart, chips and notes inside their box and apart, all inside the figure."""
    page = Rect(0, 0, lay.width, lay.height)
    for i, a in enumerate(lay.boxes):
        assert page.contains(a.rect), a.name
        for b in lay.boxes[i + 1:]:
            assert not a.rect.overlaps(b.rect), (a.name, b.name)
        parts = [(c.name, c.rect) for c in a.chips] + [(n.kind, n.rect) for n in a.notes]
        for j, (name, r) in enumerate(parts):
            assert a.rect.contains(r), (a.name, name)
            for other, r2 in parts[j + 1:]:
                assert not r.overlaps(r2), (a.name, name, other)
    for e in lay.edges:
        for x, y in e.points:
            assert 0 <= x <= lay.width and 0 <= y <= lay.height


def veth_pairs(t: Topology) -> set:
    return {frozenset([(ns.role, i.name), i.peer]) for ns in t.namespaces for i in ns.interfaces
            if i.peer}


@pytest.mark.parametrize("stage,n", CASES)
def test_layout_of_every_stage_is_tidy_and_complete(stage, n):
    t = stages.build(stage, containers=n)
    lay = diagram.layout(t)
    check_geometry(lay)
    shown = {b.name for b in lay.boxes if b.kind != "summary"}
    hidden = {name for b in lay.boxes for name in b.hidden}
    assert shown | hidden == {ns.role for ns in t.namespaces} and not shown & hidden
    for ns in t.namespaces:
        if ns.role in hidden:
            continue
        for itf in ns.interfaces:                     # every interface labelled: name, addrs, MAC
            if itf.peer and itf.peer[0] in hidden:
                continue                              # counted in the host's summary chip
            chip = lay.chip(ns.role, itf.name)
            texts = [ln.text for ln in chip.lines]
            assert texts[0].split()[0] == itf.name
            assert all(a in texts for a in itf.addresses)
            shown_mac = stage in ("veth", "two-veths", "bridge")     # the lessons about MACs
            assert itf.mac is None or (itf.mac in texts) == shown_mac
    edges = {frozenset([e.a, e.b]) for e in lay.edges if e.kind == "veth"}
    want = {p for p in veth_pairs(t) if not {ns for ns, _ in p} & hidden}
    assert edges == want                              # every shown veth pair is connected
    for e in lay.edges:                               # ... and its ends touch their chips
        ca, cb = lay.chip(*e.a) or lay.box(e.a[0]).rect, lay.chip(*e.b) or lay.box(e.b[0]).rect
        ra, rb = getattr(ca, "rect", ca), getattr(cb, "rect", cb)
        (xa, ya), (xb, yb) = e.points
        assert xa in (ra.x, ra.right) and ra.y <= ya <= ra.bottom
        assert xb in (rb.x, rb.right) and rb.y <= yb <= rb.bottom
    assert not lay.compared and all(b.status == SAME for b in lay.boxes)


def test_veth_pairs_line_up_with_their_container():
    lay = diagram.layout(stages.build("two-veths", containers=5))
    for k in range(5):
        ceth, veth = lay.chip(f"netns{k}", f"ceth{k}"), lay.chip("host", f"veth{k}")
        assert abs(ceth.rect.cy - veth.rect.cy) < 1e-6     # horizontal wire
        assert ceth.rect.right < veth.rect.x                # containers left of the host
    ens18, wan0 = lay.chip("host", "ens18"), lay.chip("world", "wan0")
    assert abs(ens18.rect.cy - wan0.rect.cy) < 1e-6 and ens18.rect.right < wan0.rect.x


def test_bridge_ports_are_wired_to_the_bridge():
    lay = diagram.layout(stages.build("bridge", containers=3))
    ports = {e.a for e in lay.edges if e.kind == "port"}
    assert ports == {("host", "veth0"), ("host", "veth1"), ("host", "veth2")}
    assert all(e.b == ("host", "br0") for e in lay.edges if e.kind == "port")
    assert lay.chip("host", "br0").lines[0].text == "br0  bridge"


def test_nat_rules_annotate_the_host():
    lay = diagram.layout(stages.build("publish"))
    (nat,) = [n for n in lay.box("host").notes if n.kind == "nat"]
    texts = [ln.text for ln in nat.lines]
    assert "masquerade 172.18.0.0/16" in texts and "  unless out br0" in texts
    assert "publish tcp 10.0.2.15:5000" in texts and "  \u2192 172.18.0.10:5000" in texts
    assert not [n for n in diagram.layout(stages.build("bridge")).box("host").notes
                if n.kind == "nat"]


def test_two_veths_warns_of_two_routes_for_one_network():
    notes = [ln for n in diagram.layout(stages.build("two-veths")).box("host").notes
             for ln in n.lines]
    assert [ln.text for ln in notes if ln.kind == "warning"][0] == \
        "! 172.18.0.0/16 on veth0 and veth1:"
    bridge = diagram.layout(stages.build("bridge")).box("host")
    assert not [ln for n in bridge.notes for ln in n.lines if ln.kind == "warning"]


def remove(t: Topology, ns_name: str, ifname: str) -> Topology:
    nss = tuple(dataclasses.replace(ns, interfaces=tuple(i for i in ns.interfaces if i.name != ifname))
                if ns.role == ns_name else ns for ns in t.namespaces)
    return dataclasses.replace(t, namespaces=nss)


def edit(t: Topology, ns_name: str, ifname: str, **changes) -> Topology:
    nss = tuple(dataclasses.replace(ns, interfaces=tuple(
        dataclasses.replace(i, **changes) if i.name == ifname else i for i in ns.interfaces))
        if ns.role == ns_name else ns for ns in t.namespaces)
    return dataclasses.replace(t, namespaces=nss)


def test_a_deleted_veth_pair_is_drawn_removed():
    before = stages.build("two-veths")
    after = remove(remove(before, "host", "veth1"), "netns1", "ceth1")
    lay = diagram.layout(after, previous=before)
    check_geometry(lay)
    assert lay.compared and lay.changed
    for ns, name in (("host", "veth1"), ("netns1", "ceth1")):
        chip = lay.chip(ns, name)
        assert chip.status == REMOVED and all(ln.status == REMOVED for ln in chip.lines)
    (edge,) = [e for e in lay.edges if {e.a, e.b} == {("host", "veth1"), ("netns1", "ceth1")}]
    assert edge.status == REMOVED
    assert lay.chip("host", "veth0").status == SAME
    warning = [ln for n in lay.box("host").notes for ln in n.lines if ln.kind == "warning"]
    assert warning and all(ln.status == REMOVED for ln in warning)   # the conflict is gone
    assert [ln.text for ln in lay.legend if ln.status != SAME] == ["+ added", "- removed",
                                                                   "~ changed"]
    text = str(diagram.figure(after, before))
    assert re.search(r"^-\s+veth1\b", text, re.M) and re.search(r"^-\s+ceth1\b", text, re.M)


def test_added_interfaces_addresses_and_changes_are_marked():
    before = stages.build("bridge")
    after = edit(before, "host", "ens18", addresses=("10.0.2.15/24", "10.0.2.99/24"))
    after = edit(after, "netns0", "lo", up=False)
    host = after.namespace("host")
    after = dataclasses.replace(after, namespaces=tuple(
        dataclasses.replace(ns, interfaces=ns.interfaces + (Interface("dummy0", "dummy"),))
        if ns is host else ns for ns in after.namespaces))
    lay = diagram.layout(after, previous=before)
    check_geometry(lay)
    ens18 = lay.chip("host", "ens18")
    assert ens18.status == CHANGED
    assert {ln.text: ln.status for ln in ens18.lines}["10.0.2.99/24"] == ADDED
    assert {ln.text: ln.status for ln in ens18.lines}["10.0.2.15/24"] == SAME
    assert lay.chip("host", "dummy0").status == ADDED
    lo = lay.chip("netns0", "lo")
    assert lo.status == CHANGED and lo.lines[0] == diagram.Line("lo  DOWN", CHANGED, True)
    assert "+10.0.2.99/24" in str(diagram.figure(after, before))


def test_stage_change_marks_the_new_bridge_and_ports():
    lay = diagram.layout(stages.build("bridge"), previous=stages.build("two-veths"))
    assert lay.chip("host", "br0").status == ADDED
    assert {e.a: e.status for e in lay.edges if e.kind == "port"} == {
        ("host", "veth0"): ADDED, ("host", "veth1"): ADDED}
    veth0 = {ln.text: ln.status for ln in lay.chip("host", "veth0").lines}
    assert veth0["172.18.0.11/16"] == REMOVED


def test_namespace_removed_and_nothing_changed():
    before = stages.build("bridge", containers=3)
    after = dataclasses.replace(before, namespaces=before.namespaces[:-1])
    lay = diagram.layout(after, previous=before)
    assert lay.box("netns2").status == REMOVED
    check_geometry(lay)
    same = diagram.layout(before, previous=before)
    assert same.compared and not same.changed
    assert [ln.text for ln in same.legend if not ln.kind] == [
        "nothing changed since the previous drawing"]


def test_follow_marks_changes_since_the_previous_drawing_of_the_same_lab():
    first = diagram.follow(stages.build("veth", "fol1"))
    assert not first.model.compared
    second = diagram.follow(stages.build("two-veths", "fol1"))
    assert second.model == diagram.layout(stages.build("two-veths", "fol1"),
                                          stages.build("veth", "fol1")) and second.model.changed
    other = diagram.follow(stages.build("veth", "fol2"))
    assert not other.model.compared


@pytest.mark.parametrize("n", [21, 200])
def test_more_than_20_containers_are_summarised(n):
    lay = diagram.layout(stages.build("bridge", containers=n))
    names = [b.name for b in lay.boxes if b.kind == "container"]
    assert names == ["netns0", "netns1", "netns2", f"netns{n - 1}"]
    (summary,) = [b for b in lay.boxes if b.kind == "summary"]
    assert summary.title.text == f"\u2026 {n - 4} more containers"
    assert summary.hidden == tuple(f"netns{k}" for k in range(3, n - 1))
    (chip,) = [c for c in lay.box("host").chips if c.kind == "summary"]
    assert chip.lines[0].text == f"\u2026 {n - 4} more veths"
    assert chip.lines[1].text == f"veth3 \u2026 veth{n - 2}"
    kinds = [e.kind for e in lay.edges]
    assert kinds.count("veth") == 5 and kinds.count("port") == 4 and kinds.count("summary") == 2
    assert lay.height < 12                             # stays one screen or two, not 200 rows


def test_summary_keeps_a_changed_container_in_view():
    before = stages.build("bridge", containers=60)
    after = edit(before, "netns40", "ceth40", addresses=())
    lay = diagram.layout(after, previous=before)
    names = [b.name for b in lay.boxes if b.kind == "container"]
    assert names == ["netns0", "netns1", "netns2", "netns40", "netns59"]
    assert [b.title.text for b in lay.boxes if b.kind == "summary"] == [
        "\u2026 37 more containers", "\u2026 18 more containers"]
    check_geometry(lay)


def test_up_to_20_containers_are_all_drawn():
    lay = diagram.layout(stages.build("outside", containers=20))
    assert [b.name for b in lay.boxes if b.kind == "container"] == [f"netns{k}" for k in range(20)]


def test_odd_topologies_still_lay_out():
    assert diagram.layout(Topology("", None)).boxes == ()
    assert "nothing to draw" in str(diagram.figure(Topology("", None)))
    t = stages.build("bridge")
    only_containers = dataclasses.replace(t, namespaces=t.containers)
    check_geometry(diagram.layout(only_containers))
    # a veth between two containers (made by hand) is drawn as an arc
    t = edit(edit(t, "netns0", "lo", peer=("netns1", "lo")), "netns1", "lo", peer=("netns0", "lo"))
    (arc,) = [e for e in diagram.layout(t).edges if e.curve]
    assert {arc.a, arc.b} == {("netns0", "lo"), ("netns1", "lo")}


PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("stage", stages.STAGES)
@pytest.mark.parametrize("n", [1, 2, 20])
def test_every_stage_renders_png_and_svg_with_names_as_text(stage, n):
    if stages.includes(stage, "isolated"):       # netns2 on br1: at least three containers
        n = max(n, stages.default_containers(stage))
    t = stages.build(stage, containers=n)
    assert diagram.figure(t).render("png").startswith(PNG)
    svg = diagram.figure(t).render("svg")
    texts = {html.unescape(s) for s in re.findall(r"<text[^>]*>([^<]*)</text>", svg)}
    for ns in t.namespaces:
        assert ns.role in texts
        for itf in ns.interfaces:
            assert any(s.split()[0] == itf.name for s in texts if s.strip()), itf.name
            assert set(itf.addresses) <= texts


def test_render_of_200_containers_names_the_summary():
    svg = diagram.figure(stages.build("publish", containers=200)).render("svg")
    assert "196 more containers" in svg and "veth199" in svg and "veth100" not in svg


def test_svg_repeats_byte_for_byte():
    t = stages.build("publish")
    assert diagram.figure(t).render("svg") == diagram.figure(t).render("svg")
    assert diagram.figure(t).render("png") == diagram.figure(t).render("png")


def test_draw_writes_by_extension(tmp_path):
    t = stages.build("outside")
    assert diagram.draw(t, tmp_path / "a.png").read_bytes().startswith(PNG)
    assert "<svg" in diagram.draw(t, str(tmp_path / "a.SVG")).read_text()
    with pytest.raises(BadValue, match=r"\.png or \.svg"):
        diagram.draw(t, tmp_path / "a.pdf")
    with pytest.raises(LabkitError, match="cannot write"):
        diagram.draw(t, tmp_path / "missing" / "a.png")
    with pytest.raises(BadValue):
        diagram.figure(t).render("jpg")
    assert diagram.cli_draw(t, tmp_path / "b.svg") == \
        f"wrote {tmp_path / 'b.svg'} (4 namespaces, 11 interfaces)"


def test_a_figure_shows_a_png_and_its_text_in_jupyter_svg_when_printed(monkeypatch):
    """Every figure of the course is one type: in Jupyter its PNG (what notebooks store) and
    its text as text/plain (what nbval compares); switched for printing, SVG instead."""
    from IPython.core.formatters import DisplayFormatter
    view = diagram.figure(stages.build("bridge"))
    assert isinstance(view, figure.Figure) and view.model == diagram.layout(stages.build("bridge"))
    shown, _ = DisplayFormatter().format(view)
    assert set(shown) == {"image/png", "text/plain"} and shown["text/plain"] == str(view)
    monkeypatch.setattr(figure.Figure, "shows", "svg")         # as vector.install() does
    shown, _ = DisplayFormatter().format(view)
    assert set(shown) == {"image/svg+xml", "text/plain"} and "<svg" in shown["image/svg+xml"]
    assert view.render("png").startswith(PNG) and view.render("svg").lstrip().startswith("<?xml")
    with pytest.raises(BadValue, match="'png', 'svg' or 'text'"):
        view.render("jpg")


def test_view_displays_in_jupyter_and_terminal():
    view = diagram.figure(stages.build("bridge"))
    text = view.render("text")
    assert text.splitlines()[0] == "stage bridge  -  default lab  -  2 containers"
    assert "  veth0    02:00:" in text and "port of br0  <-> netns0/ceth0" in text
    assert "  br0  bridge 172.18.0.1/16" in text and repr(view) == text
    assert text.isascii()


def test_import_labkit_does_not_import_matplotlib():
    code = "import sys, labkit, labkit.draw.diagram; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.kernel
@pytest.mark.parametrize("stage", stages.STAGES)
def test_svg_of_a_live_lab_names_every_interface_the_kernel_holds(lab, stage):
    lab.up(stage)
    live = lab.inspect()
    svg = diagram.figure(live).render("svg")
    texts = {html.unescape(s) for s in re.findall(r"<text[^>]*>([^<]*)</text>", svg)}
    for ns in live.namespaces:
        for itf in ns.interfaces:
            assert any(s.split()[0] == itf.name for s in texts if s.strip()), (ns.role, itf.name)


def test_the_title_counts_the_containers_there_now_and_names_where_a_practice_starts():
    from labkit.lab import practice
    three = stages.build("bridge", containers=3)
    two = stages.build("bridge", containers=2)
    lay = diagram.layout(two, previous=three)             # netns2 drawn, grey: removed
    assert any(b.status == REMOVED and b.kind == "container" for b in lay.boxes)
    assert lay.title.endswith("2 containers")
    assert diagram.layout(three, previous=two).title.endswith("3 containers")
    start = diagram.layout(practice.before("veth", "t1"))          # the host and the world alone
    assert start.title == "before stage veth  \u00b7  lab t1  \u00b7  0 containers"
    assert diagram.layout(practice.before("bridge", "t1")).title.startswith("stage two-veths")
    assert diagram.layout(stages.build("veth")).title.startswith("stage veth  \u00b7  default lab")


def test_macs_where_the_lesson_is_about_them_and_labkits_server_as_what_it_is_for():
    t = stages.build("publish")
    texts = [ln.text for b in diagram.layout(t).boxes for c in b.chips for ln in c.lines]
    macs = [i.mac for ns in t.namespaces for i in ns.interfaces if i.mac]
    assert macs and not set(macs) & set(texts)
    assert set(macs) <= {ln.text for b in diagram.layout(t, macs=True).boxes for c in b.chips
                         for ln in c.lines}
    notes = [ln.text for b in diagram.layout(t).boxes for n in b.notes for ln in n.lines]
    assert "web server" in notes and not any("labkit" in n for n in notes)
    bridge = [ln.text for b in diagram.layout(stages.build("bridge")).boxes for c in b.chips for ln in c.lines]
    assert "02:42:ac:12:00:01" in bridge                       # br0's MAC: the bridge lesson
