"""Packet (ladder) diagrams from merged captures: layout as data, NAT highlighted, rendering."""
import html
import re

import pytest
from scapy.layers.inet import ICMP, IP, TCP
from scapy.layers.l2 import ARP, Ether

from labkit.draw import ladder
from labkit.capture import Packets, PointStats
from labkit.errors import BadValue
from labkit.capture.packets import follow
from synthetic import frame, seen

C0, C1, HOST, WORLD, PUBLIC = "172.18.0.10", "172.18.0.20", "10.0.2.15", "10.0.2.2", "203.0.113.80"
OUTWARD = ["netns0:ceth0", "host:veth0", "host:br0", "host:ens18", "world:wan0"]


def masqueraded_ping() -> Packets:
    """netns0 pings 203.0.113.80 in the outside stage, seen at five points (listed unsorted)."""
    def req(src, ttl):
        return frame(Ether(), IP(src=src, dst=PUBLIC, ttl=ttl, id=42), ICMP(id=7, seq=1), b"x" * 8)

    def rep(dst, ttl):
        return frame(Ether(), IP(src=PUBLIC, dst=dst, ttl=ttl, id=43), ICMP(type=0, id=7, seq=1),
                     b"x" * 8)
    pkts = [seen(84, "world:wan0", "in", req(HOST, 63)), seen(0, "netns0:ceth0", "out", req(C0, 64)),
            seen(15, "host:br0", "in", req(C0, 64), upper=True),
            seen(15, "host:veth0", "in", req(C0, 64)), seen(82, "host:ens18", "out", req(HOST, 63)),
            seen(100, "world:wan0", "out", rep(HOST, 64)), seen(101, "host:ens18", "in", rep(HOST, 64)),
            seen(107, "host:br0", "out", rep(C0, 63), upper=True),
            seen(110, "host:veth0", "out", rep(C0, 63)), seen(111, "netns0:ceth0", "in", rep(C0, 63))]
    return Packets(pkts, [PointStats(p, 2, 2, 0) for p in OUTWARD])


def published_syn() -> list:
    def syn(dst, ttl):
        return frame(Ether(), IP(src=WORLD, dst=dst, ttl=ttl, id=1),
                     TCP(sport=40000, dport=5000, flags="S", seq=1000))
    return follow([seen(0, "world:wan0", "out", syn(HOST, 64)),
                   seen(1, "host:ens18", "in", syn(HOST, 64)),
                   seen(9, "host:br0", "out", syn(C0, 63), upper=True),
                   seen(12, "host:veth0", "out", syn(C0, 63)),
                   seen(13, "netns0:ceth0", "in", syn(C0, 63))])


def test_columns_follow_the_packet_outward_and_rows_keep_time_order():
    lad = ladder.layout(masqueraded_ping())
    assert [c.point for c in lad.columns] == OUTWARD
    xs = [c.x for c in lad.columns]
    assert xs == sorted(xs) and all(b - a >= ladder.COL_MIN for a, b in zip(xs, xs[1:]))
    assert [r.kind for r in lad.rows] == (["packet"] + ["hop"] * 4 + ["nat", "hop"]   # at ens18
                                          + ["packet"] + ["hop"] * 3 + ["nat"] + ["hop"] * 2)
    ys = [r.y for r in lad.rows]
    assert ys == sorted(ys) and len(set(ys)) == len(ys)
    assert all(r.y > lad.top for r in lad.rows)
    assert lad.rows[0].text == "#1  +0.0 us  icmp  echo-request id=7 seq=1"
    assert lad.rows[7].text.startswith("#2  +100.")
    assert [c.seen for c in lad.columns] == [2] * 5


def test_one_arrow_per_hop_to_the_next():
    lad = ladder.layout(masqueraded_ping())
    assert len(lad.dots) == 10 and len(lad.arrows) == 8
    col = {c.point: c.x for c in lad.columns}
    request = [a for a in lad.arrows if a.path == 0]
    assert [a.start[0] for a in request] == [col[p] for p in OUTWARD[:-1]]
    assert [a.end[0] for a in request] == [col[p] for p in OUTWARD[1:]]
    assert all(a.end[1] > a.start[1] for a in lad.arrows)         # time runs down
    reply = [a for a in lad.arrows if a.path == 1]
    assert all(a.end[0] < a.start[0] for a in reply)              # the reply goes back left


def test_masquerade_and_its_reply_are_highlighted():
    lad = ladder.layout(masqueraded_ping())
    nat = [(d.point, d.nat) for d in lad.dots if d.nat]
    assert nat == [("host:ens18", "POSTROUTING: src 172.18.0.10 -> 10.0.2.15"),
                   ("host:br0", "PREROUTING: dst 10.0.2.15 -> 172.18.0.10")]   # the hook that did it
    (into_ens18,) = [a for a in lad.arrows if a.nat.startswith("POSTROUTING: src")]
    assert into_ens18.end[0] == lad.column("host:ens18").x
    assert [r.text.split() for r in lad.rows if r.nat and r.kind == "hop"] == [
        ["10.0.2.15", ">", PUBLIC], [PUBLIC, ">", "172.18.0.10"]]
    rows = list(lad.rows)
    labels = [(rows[k - 1], r) for k, r in enumerate(rows) if r.kind == "nat"]
    assert [r.nat for _, r in labels] == [d.nat for d in lad.dots if d.nat]
    for hop, label in labels:                     # right under its hop, in the text column
        assert hop.kind == "hop" and hop.nat == label.nat and label.y > hop.y
        assert label.text.strip() == label.nat
        assert (len(label.text) + 2) * ladder.CHAR + lad.text_x < lad.columns[0].x - ladder.COL_MIN / 2


def test_a_rewrite_of_both_ends_gets_a_label_per_hook_and_the_ladder_fits_a_page():
    """The hairpin: one hop where DNAT and SNAT both rewrote the packet; the ladder stays
    narrow enough to print its 8 pt text at 6.5 pt or more on an A4 page, turned if need be."""
    def syn(src, dst, sport, dport, ttl):
        return frame(Ether(), IP(src=src, dst=dst, ttl=ttl, id=1),
                     TCP(sport=sport, dport=dport, flags="S", seq=1000))
    pts = ["netns0:ceth0", "host:veth0", "host:br0"]
    paths = follow([seen(0, pts[0], "out", syn(C0, HOST, 40000, 8080, 64)),
                    seen(1, pts[1], "in", syn(C0, HOST, 40000, 8080, 64)),
                    seen(2, pts[2], "in", syn(C0, HOST, 40000, 8080, 64), upper=True),
                    seen(9, pts[1], "out", syn("172.18.0.1", C0, 40000, 80, 63)),
                    seen(10, pts[0], "in", syn("172.18.0.1", C0, 40000, 80, 63))])
    lad = ladder.layout(paths)
    (hop,) = [r for r in lad.rows if r.kind == "hop" and r.nat]
    assert [r.nat for r in lad.rows if r.kind == "nat"] == [
        "PREROUTING: dst 10.0.2.15:8080 -> 172.18.0.10:80",
        "POSTROUTING: src 172.18.0.10:40000 -> 172.18.0.1:40000"]
    assert hop.nat == "; ".join(r.nat for r in lad.rows if r.kind == "nat")
    assert ladder.fits_a4(lad) and lad.width < 7.5
    heads = [r for r in lad.rows if r.kind == "packet"]      # may run over the lanes: no dot there
    assert heads and not {d.y for d in lad.dots} & {r.y for r in heads}
    wide = ladder.layout(masqueraded_ping(), points=OUTWARD + ["netns1:ceth1", "host:veth1", "host:lo"])
    assert ladder.fits_a4(wide), wide.width
    assert not ladder.fits_a4(ladder.layout(masqueraded_ping(), points=OUTWARD + [
        f"netns{k}:ceth{k}" for k in range(1, 12)]))


def test_published_port_rewrite_shows_address_and_port():
    lad = ladder.layout(published_syn())
    assert [c.point for c in lad.columns] == OUTWARD             # still outward, though inbound
    assert [d.nat for d in lad.dots if d.nat] == ["PREROUTING: dst 10.0.2.15:5000 -> 172.18.0.10:5000"]
    text = str(ladder.ladder(published_syn()))
    assert "at host:br0" in text and "NAT: PREROUTING: dst 10.0.2.15:5000 -> 172.18.0.10:5000" in text


def test_points_where_nothing_arrived_stay_as_columns():
    arp = frame(Ether(dst="ff:ff:ff:ff:ff:ff"), ARP(op=1, psrc="172.18.0.11", pdst=C1))
    pkts = Packets([seen(0, "host:veth0", "out", arp), seen(8, "netns0:ceth0", "in", arp)],
                   [PointStats(p, n, n, 0) for p, n in (("host:veth0", 1), ("host:veth1", 0),
                                                         ("netns0:ceth0", 1), ("netns1:ceth1", 0))])
    lad = ladder.layout(pkts)
    assert [c.point for c in lad.columns] == ["netns0:ceth0", "netns1:ceth1", "host:veth0",
                                              "host:veth1"]
    assert {c.point: c.seen for c in lad.columns} == {"netns0:ceth0": 1, "netns1:ceth1": 0,
                                                      "host:veth0": 1, "host:veth1": 0}
    text = str(ladder.ladder(pkts))
    assert text.endswith("nothing seen at netns1:ceth1, host:veth1")


def test_explicit_point_order_flow_filter_and_limit():
    lad = ladder.layout(masqueraded_ping(), points=list(reversed(OUTWARD)))
    assert [c.point for c in lad.columns] == list(reversed(OUTWARD))
    only_replies = ladder.layout(masqueraded_ping(), src=PUBLIC)
    assert len([r for r in only_replies.rows if r.kind == "packet"]) == 1
    one = ladder.layout(masqueraded_ping(), limit=1)
    assert one.hidden == 1 and one.rows[-1].text.startswith("... 1 more packets not drawn")
    assert one.title == "2 packets at 5 capture points"


def test_accepts_paths_a_path_and_nothing():
    paths = masqueraded_ping().paths()
    assert len(ladder.layout(paths).dots) == 10
    assert len(ladder.layout(paths[0]).dots) == 5
    empty = ladder.layout(Packets([]))
    assert empty.rows[-1].text == "no packets to draw" and not empty.arrows
    assert ladder.figure(empty).render("png").startswith(b"\x89PNG")
    with pytest.raises(BadValue, match="captured packets"):
        ladder.layout(42)
    with pytest.raises(BadValue, match="captured packets"):
        ladder.layout(["not a path"])


def test_renders_png_and_svg_with_points_and_rewrites_as_text(tmp_path):
    pkts = masqueraded_ping()
    assert ladder.figure(pkts).render("png").startswith(b"\x89PNG\r\n\x1a\n")
    svg = ladder.figure(pkts).render("svg")
    texts = {html.unescape(s) for s in re.findall(r"<text[^>]*>([^<]*)</text>", svg)}
    assert {w for p in OUTWARD for w in p.split(":")} <= texts     # namespace over interface
    assert "2 seen" in texts
    assert "POSTROUTING: src 172.18.0.10 -> 10.0.2.15" in texts
    assert "PREROUTING: dst 10.0.2.15 -> 172.18.0.10" in texts
    assert svg == ladder.figure(pkts).render("svg")
    with pytest.raises(BadValue):
        ladder.figure(pkts).render("gif")
    view = ladder.ladder(pkts)
    assert view.save(tmp_path / "l.svg").read_text().count("<svg") == 1
    with pytest.raises(BadValue, match=r"\.png or \.svg"):
        view.save(tmp_path / "l.txt")
    assert view.render("png").startswith(b"\x89PNG")
    assert view.render("svg") == svg and repr(view) == str(view) == ladder.text(view.model)
    assert str(ladder.figure(view.model, listing="what a trace says")) == "what a trace says"


M0, M1, BRIDGE_MAC = "02:42:ac:12:00:0a", "02:42:ac:12:00:14", "02:42:ac:12:00:01"
ENS18_MAC, WAN0_MAC = "02:42:0a:00:02:0f", "02:42:0a:00:02:02"
BRIDGED = ["netns0:ceth0", "host:veth0", "host:br0", "host:veth1", "netns1:ceth1"]


def arp_then_ping() -> Packets:
    """netns0 asks for 172.18.0.20's MAC across br0 (bridge stage), is answered, then pings it."""
    def arp(op, src, dst, smac, dmac):
        return frame(Ether(src=smac, dst=dmac), ARP(op=op, psrc=src, pdst=dst, hwsrc=smac,
                                                    hwdst=dmac if op == 2 else "00:00:00:00:00:00"))
    req, rep = arp(1, C0, C1, M0, "ff:ff:ff:ff:ff:ff"), arp(2, C1, C0, M1, M0)
    ping = frame(Ether(src=M0, dst=M1), IP(src=C0, dst=C1, ttl=64, id=5), ICMP(id=3, seq=1))
    b = BRIDGED
    return Packets([seen(0, b[0], "out", req), seen(5, b[1], "in", req), seen(6, b[2], "in", req, upper=True),
                    seen(8, b[3], "out", req), seen(9, b[4], "in", req), seen(20, b[4], "out", rep),
                    seen(21, b[3], "in", rep), seen(23, b[1], "out", rep), seen(24, b[0], "in", rep),
                    seen(30, b[0], "out", ping), seen(31, b[1], "in", ping), seen(33, b[3], "out", ping),
                    seen(34, b[4], "in", ping)], [PointStats(p, 3, 3, 0) for p in BRIDGED])


def routed_ping() -> list:
    """netns0 pings 203.0.113.80 (outside stage): the host routes it, so its MACs change at ens18."""
    def req(src, smac, dmac, ttl):
        return frame(Ether(src=smac, dst=dmac), IP(src=src, dst=PUBLIC, ttl=ttl, id=42), ICMP(id=7, seq=1))
    return follow([seen(0, "netns0:ceth0", "out", req(C0, M0, BRIDGE_MAC, 64)),
                   seen(2, "host:veth0", "in", req(C0, M0, BRIDGE_MAC, 64)),
                   seen(2, "host:br0", "in", req(C0, M0, BRIDGE_MAC, 64), upper=True),
                   seen(9, "host:ens18", "out", req(HOST, ENS18_MAC, WAN0_MAC, 63)),
                   seen(10, "world:wan0", "in", req(HOST, ENS18_MAC, WAN0_MAC, 63))])


def test_arp_and_a_bridge_show_macs_that_the_bridge_leaves_alone():
    lad = ladder.layout(arp_then_ping())
    assert lad.macs                                   # ARP and a bridge: MACs shown by themselves
    hops = [r for r in lad.rows if r.kind == "hop"]
    assert [r.macs for r in hops[:5]] == [f"{M0} > ff:ff:ff:ff:ff:ff"] * 5
    assert [r.macs for r in hops[9:]] == [f"{M0} > {M1}"] * 4
    assert not any(r.mac_changed for r in hops)       # a bridge forwards the frame as it is
    assert all(r.macs in r.text for r in hops)
    assert f"{C0} > {C1}  {M0} > {M1}" in str(ladder.ladder(arp_then_ping()))
    assert not ladder.layout(arp_then_ping(), macs=False).macs


def test_a_router_writes_new_macs_and_the_ladder_says_so():
    lad = ladder.layout(routed_ping(), macs=True)
    changed = [(d.point, r.macs) for r, d in zip([r for r in lad.rows if r.kind == "hop"], lad.dots)
               if r.mac_changed]
    assert changed == [("host:ens18", f"{ENS18_MAC} > {WAN0_MAC}")]
    text = str(ladder.ladder(routed_ping(), macs=True))
    assert "at host:ens18   out  MACs rewritten  NAT: POSTROUTING: src 172.18.0.10 -> 10.0.2.15" in text
    assert not ladder.layout(routed_ping()).macs      # NAT drawn, no ARP: MACs only if asked
    svg = ladder.figure(lad).render("svg")
    assert f"{ENS18_MAC} &gt; {WAN0_MAC}" in svg


@pytest.mark.kernel
def test_a_live_masqueraded_ping_shows_the_rewrite(lab):
    from labkit.capture import Capture
    lab.up("outside")
    with Capture(OUTWARD, lab=lab, filter="icmp") as cap:
        assert lab.ping("netns0", PUBLIC)
        cap.wait(until=lambda p: len(p) >= 10, timeout=5)
    lad = ladder.layout(cap.packets, macs=True)
    assert [c.point for c in lad.columns] == OUTWARD
    assert ("host:ens18", "POSTROUTING: src 172.18.0.10 -> 10.0.2.15") in [(d.point, d.nat) for d in lad.dots]
    rewritten = [d.point for r, d in zip([r for r in lad.rows if r.kind == "hop"], lad.dots)
                 if r.mac_changed]
    assert sorted(rewritten) == ["host:br0", "host:ens18"]    # routed out of ens18, back into br0


def test_no_text_is_smaller_than_the_figures_font():
    """The handouts estimate a stored PNG's smallest text as FONT (labkit.teach.printed.typeset)."""
    from labkit.teach.printed.typeset import PNG_SMALLEST_PT
    for what in (masqueraded_ping(), arp_then_ping(), published_syn()):
        svg = ladder.figure(what).render("svg")
        sizes = [float(s) for s in re.findall(r"font-size: ([\d.]+)px", svg)]
        assert sizes and min(sizes) == ladder.FONT == PNG_SMALLEST_PT
