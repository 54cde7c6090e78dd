"""Captures without root: capture points, header decoding, paths across NAT, tables, pcap files."""
import os
import struct
import subprocess
import sys

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether

from labkit import capture
from labkit.capture import frames, pcap
from labkit.capture import Capture, Packet, Packets, PointStats, parse_point
from labkit.errors import BadName, BadValue, LabkitError
from labkit.capture.packets import Change, follow
from labkit.capture.headers import headers
from synthetic import T0, frame, seen

C0, C1, BR, HOST, WORLD, PUBLIC = "172.18.0.10", "172.18.0.20", "172.18.0.1", "10.0.2.15", "10.0.2.2", "203.0.113.80"
MAC0, MAC1 = "02:42:ac:12:00:0a", "02:42:ac:12:00:14"


# --- capture points -------------------------------------------------------------------------

def test_point_relative_to_a_named_lab():
    p = parse_point("netns0:ceth0", "t1")
    assert (p.namespace, p.iface, p.label) == ("t1-netns0", "ceth0", "netns0:ceth0")


def test_point_in_the_default_lab_has_the_seeds_namespace_name():
    assert parse_point("host:br0").namespace == "host"


def test_point_relative_to_a_lab_object_uses_its_name():
    class FakeLab:
        name = "ab12"
    assert parse_point("world:wan0", FakeLab()).namespace == "ab12-world"


def test_point_as_kernel_namespace_and_interface():
    p = parse_point(("t1-host", "veth0"))
    assert (p.namespace, p.iface, p.label) == ("t1-host", "veth0", "t1-host:veth0")


@pytest.mark.parametrize("spec", ["netns0", ":ceth0", "netns0:", "a:b:c", "", 7, ("x",)])
def test_malformed_points_say_how_to_write_one(spec):
    with pytest.raises(BadName, match="NAMESPACE:INTERFACE|name"):
        parse_point(spec)


def test_interface_names_longer_than_the_kernel_allows_are_refused():
    with pytest.raises(BadName, match="at most 15"):
        parse_point("netns0:" + "x" * 16)


def test_bad_lab_name_is_refused():
    with pytest.raises(BadName, match="lab name"):
        parse_point("netns0:ceth0", "Bad-Lab")


def test_capture_arguments_are_checked_before_anything_opens():
    with pytest.raises(BadValue, match="at least one point"):
        Capture([])
    with pytest.raises(BadValue, match="repeat"):
        Capture(["netns0:ceth0", "netns0:ceth0"])
    with pytest.raises(BadValue, match="whole number"):
        Capture("netns0:ceth0", count=0)
    with pytest.raises(BadValue, match="never started"):
        Capture("netns0:ceth0").stop()


def test_a_single_string_is_one_point():
    assert [p.label for p in Capture("host:br0").points] == ["host:br0"]


def test_filters_compile_to_classic_bpf():
    code = capture.compile_filter("icmp or arp")
    assert code and len(code) % 8 == 0


def test_a_bad_filter_names_the_problem_and_the_fix():
    with pytest.raises(BadValue, match="not valid: .*syntax error.*tcpdump"):
        Capture("netns0:ceth0", filter="icmp and and")


def test_filters_keep_accepted_frames_up_to_the_snap_length():
    """scapy compiles for 65,535 bytes; a filter accepts 262,144 (a GSO frame kept whole)."""
    code = capture.compile_filter("udp and dst port 9")
    insns = [struct.unpack("HBBI", code[i:i + 8]) for i in range(0, len(code), 8)]
    assert sorted({k for op, _, _, k in insns if op == 0x06}) == [0, pcap.DEFAULT_SNAPLEN]


def test_a_filter_without_libpcap_names_the_package_to_install():
    code = ("import ctypes.util\nctypes.util.find_library = lambda name: None   # no libpcap\n"
            "from labkit.capture import compile_filter\nfrom labkit.errors import MissingTool\n"
            "try:\n    compile_filter('icmp')\nexcept MissingTool as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "needs libpcap: apt-get install libpcap0.8" in out.stdout, out.stdout + out.stderr


def test_cli_reports_a_bad_point_as_one_line(capsys):
    from labkit.cli import main
    assert main(["capture", "netns0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("labkit: error:") and "netns0:ceth0" in err


def test_importing_capture_does_not_import_scapy():
    code = ("import sys, labkit.capture, labkit.capture.frames, labkit.capture.pcap\n"
            "print('scapy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- header decoding ------------------------------------------------------------------------

def test_arp_request_and_reply():
    req = headers(frame(Ether(dst="ff:ff:ff:ff:ff:ff"), ARP(op=1, psrc=C0, pdst=C1)))
    assert (req.proto, req.src, req.dst, req.info) == ("arp", C0, C1, f"who-has {C1} tell {C0}")
    rep = headers(frame(Ether(), ARP(op=2, psrc=C1, pdst=C0, hwsrc="02:42:ac:12:00:14")))
    assert rep.info == f"{C1} is-at 02:42:ac:12:00:14"


def test_icmp_echo():
    h = headers(frame(Ether(), IP(src=C0, dst=C1, ttl=64, id=5), ICMP(id=7, seq=3)))
    assert (h.proto, h.src, h.dst, h.ttl, h.icmp_id, h.icmp_seq) == ("icmp", C0, C1, 64, 7, 3)
    assert h.info == "echo-request id=7 seq=3"


def test_tcp_and_udp_ports_and_flags():
    t = headers(frame(Ether(), IP(src=C0, dst=HOST), TCP(sport=40000, dport=5000, flags="S", seq=9)))
    assert (t.proto, t.sport, t.dport, t.tcp_flags) == ("tcp", 40000, 5000, "S")
    assert "[S] seq=9" in t.info
    u = headers(frame(Ether(), IP(src=C0, dst=C1), UDP(sport=1, dport=53), b"abcd"))
    assert (u.proto, u.sport, u.dport, u.info) == ("udp", 1, 53, "1 > 53 len=4")


def test_ipv6_and_vlan_tagged_frames():
    h = headers(frame(Ether(), IPv6(src="fd00::1", dst="fd00::2"), ICMPv6EchoRequest(id=1, seq=2)))
    assert (h.proto, h.src, h.info) == ("icmp6", "fd00::1", "echo-request id=1 seq=2")
    v = headers(frame(Ether(), Dot1Q(vlan=5), IP(src=C0, dst=C1), ICMP()))
    assert (v.proto, v.src) == ("icmp", C0)


@pytest.mark.parametrize("cut", [0, 5, 14, 20, 30, 40])
def test_truncated_frames_never_raise(cut):
    data = frame(Ether(), IP(src=C0, dst=C1), TCP())[:cut]
    assert headers(data).proto


def test_flow_matching():
    h = headers(frame(Ether(), IP(src=C0, dst=HOST), TCP(sport=40000, dport=5000)))
    assert h.matches(proto="tcp", port=5000, host=HOST, src=C0, dport=5000)
    assert not h.matches(port=80) and not h.matches(proto="udp") and not h.matches(dst=C0)


def test_key_survives_nat_and_routing_but_not_a_new_packet():
    before = frame(Ether(), IP(src=C0, dst=PUBLIC, ttl=64, id=99), ICMP(id=7, seq=1), b"payload")
    after = frame(Ether(src="02:42:0a:00:02:0f"), IP(src=HOST, dst=PUBLIC, ttl=63, id=99),
                  ICMP(id=7, seq=1), b"payload")
    other = frame(Ether(), IP(src=C0, dst=PUBLIC, ttl=64, id=100), ICMP(id=7, seq=1), b"payload")
    assert headers(before).key == headers(after).key != headers(other).key


# --- paths ----------------------------------------------------------------------------------

def masqueraded_ping() -> list[Packet]:
    """A ping netns0 -> 203.0.113.80 as the outside stage shows it at five points."""
    req = lambda src, ttl: frame(Ether(), IP(src=src, dst=PUBLIC, ttl=ttl, id=42), ICMP(id=7, seq=1), b"x" * 16)
    rep = lambda dst, ttl: frame(Ether(), IP(src=PUBLIC, dst=dst, ttl=ttl, id=43), ICMP(type=0, id=7, seq=1), b"x" * 16)
    return [   # listed out of order, as the reader thread reads point after point
        seen(84, "world:wan0", "in", req(HOST, 63)),
        seen(0, "netns0:ceth0", "out", req(C0, 64)),
        seen(15, "host:br0", "in", req(C0, 64), upper=True),   # same timestamp as veth0
        seen(15, "host:veth0", "in", req(C0, 64)),
        seen(82, "host:ens18", "out", req(HOST, 63)),
        seen(100, "world:wan0", "out", rep(HOST, 64)),
        seen(101, "host:ens18", "in", rep(HOST, 64)),
        seen(107, "host:br0", "out", rep(C0, 63), upper=True),
        seen(110, "host:veth0", "out", rep(C0, 63)),
        seen(111, "netns0:ceth0", "in", rep(C0, 63)),
    ]


def test_the_path_of_a_masqueraded_ping_shows_the_source_rewritten_at_the_uplink():
    request, reply = follow(masqueraded_ping())
    assert request.points == ("netns0:ceth0", "host:veth0", "host:br0", "host:ens18", "world:wan0")
    assert request.changes == [("host:ens18", Change("src", C0, HOST))]
    assert [h.ttl for h in request.hops] == [64, 64, 64, 63, 63]
    assert request.hops[0].offset == 0 and request.hops[-1].offset == pytest.approx(84e-6)
    assert reply.points == ("world:wan0", "host:ens18", "host:br0", "host:veth0", "netns0:ceth0")
    assert reply.changes == [("host:br0", Change("dst", HOST, C0))]
    assert "src 172.18.0.10 -> 10.0.2.15" in str(request)


def test_a_flow_filter_finds_hops_after_nat_rewrote_the_address():
    paths = follow(masqueraded_ping(), src=C0)
    assert len(paths) == 1 and paths[0].hops[-1].src == HOST


def test_the_path_of_a_published_port_shows_the_destination_rewritten():
    syn = lambda dst, ttl: frame(Ether(), IP(src=WORLD, dst=dst, ttl=ttl, id=1),
                                 TCP(sport=40000, dport=5000, flags="S", seq=1000))
    path, = follow([seen(0, "world:wan0", "out", syn(HOST, 64)),
                    seen(1, "host:ens18", "in", syn(HOST, 64)),
                    seen(9, "host:br0", "out", syn(C0, 63), upper=True),
                    seen(12, "host:veth0", "out", syn(C0, 63)),
                    seen(13, "netns0:ceth0", "in", syn(C0, 63))], dport=5000)
    assert path.changes == [("host:br0", Change("dst", HOST, C0))]
    assert path.hops[-1].endpoints() == f"{WORLD}:40000 > {C0}:5000"


def test_port_rewrites_are_changes_too():
    udp = lambda src, sport: frame(Ether(), IP(src=src, dst=PUBLIC, id=3), UDP(sport=sport, dport=53), b"q")
    path, = follow([seen(0, "netns0:ceth0", "out", udp(C0, 1000)),
                    seen(5, "host:ens18", "out", udp(HOST, 61000))])
    assert path.changes == [("host:ens18", Change("src", C0, HOST)),
                            ("host:ens18", Change("sport", 1000, 61000))]


def test_identical_frames_are_separate_packets_when_a_point_repeats_or_time_passes():
    arp = frame(Ether(dst="ff:ff:ff:ff:ff:ff"), ARP(op=1, psrc=C0, pdst=C1))
    paths = follow([seen(0, "netns0:ceth0", "out", arp), seen(2, "host:veth0", "in", arp),
                    seen(1_000_000, "netns0:ceth0", "out", arp),
                    seen(3_000_000, "host:veth0", "in", arp)])
    assert [p.points for p in paths] == [("netns0:ceth0", "host:veth0"), ("netns0:ceth0",),
                                         ("host:veth0",)]


def test_path_of_one_packet():
    pkts = Packets(masqueraded_ping())
    assert pkts.path(0).points[-1] == "world:wan0"
    assert pkts.path(pkts[-1]).points[0] == "world:wan0"


def test_path_of_a_packet_that_is_not_there_is_a_labkit_error():
    pkts = Packets(masqueraded_ping())
    for missing in (len(pkts) + 5, Packets(masqueraded_ping())[0]):
        with pytest.raises(LabkitError, match="not among"):
            pkts.path(missing)


# --- results --------------------------------------------------------------------------------

def sample() -> Packets:
    stats = [PointStats("netns0:ceth0", 4, 4, 0), PointStats("host:veth0", 2, 2, 0),
             PointStats("host:br0", 2, 2, 0), PointStats("host:ens18", 2, 2, 0),
             PointStats("world:wan0", 2, 2, 0)]
    return Packets(masqueraded_ping(), stats)


def test_packets_are_merged_in_time_order():
    assert [p.point for p in sample()][:3] == ["netns0:ceth0", "host:veth0", "host:br0"]


def test_table_lists_packets_then_the_counts_of_every_point():
    text = str(sample())
    lines = text.splitlines()
    assert lines[0].split() == ["#", "ms", "point", "dir", "proto", "source", "destination", "info"]
    assert "echo-request id=7 seq=1" in lines[1] and "0.000" in lines[1]
    assert "10 packets at 5 point(s)" in text
    assert "netns0:ceth0: 4 captured, 4 seen by the kernel, 0 dropped" in text


def test_loss_is_shown_loudly():
    lossy = Packets(masqueraded_ping(), [PointStats("host:br0", 2, 12, 10)])
    assert lossy.dropped == 10
    assert "10 DROPPED" in lossy.summary() and "LOSS" in str(lossy)
    assert "color:#b00" in lossy._repr_html_()


def test_table_limit_and_html_escaping():
    assert "... 7 more" in sample().table(limit=3)
    html = sample()._repr_html_()
    assert html.count("<tr>") == 11 and "&gt;" not in html.split("<pre")[0].replace("<th>", "")


def test_filter_by_flow_point_and_direction():
    pkts = sample()
    assert len(pkts.filter(src=C0)) == 3
    assert len(pkts.filter(host=HOST)) == 4
    assert len(pkts.filter(point="host:ens18")) == 2 == len(pkts.at("world:wan0"))
    assert len(pkts.filter(point=["host:ens18", "world:wan0"], direction="out")) == 2
    assert len(pkts.filter(proto="udp")) == 0
    assert pkts.filter(proto="icmp").stats == pkts.stats


def test_pcap_round_trip(tmp_path):
    pkts = sample()
    target = str(tmp_path / "all.pcap")
    assert pkts.write(target) == [target]
    back = pcap.read_pcap(target)
    assert [(r.time_ns, r.data) for r in back] == [(p.time_ns, p.data) for p in pkts]


def test_one_file_per_point(tmp_path):
    written = sample().write(str(tmp_path / "cap.pcap"), per_point=True)
    assert [w.rsplit("/", 1)[1] for w in written] == [
        "cap-netns0-ceth0.pcap", "cap-host-veth0.pcap", "cap-host-br0.pcap",
        "cap-host-ens18.pcap", "cap-world-wan0.pcap"]
    assert len(pcap.read_pcap(written[0])) == 2


def test_pcap_and_pcapng_keep_nanoseconds_and_pcapng_the_points_and_directions(tmp_path):
    records = [pcap.Record(T0 + 123_456_789 + i, p.data, p.wirelen, p.point, p.direction)
               for i, p in enumerate(sample())]
    pcap.write_pcap(str(tmp_path / "a.pcap"), records)
    pcap.write_pcapng(str(tmp_path / "a.pcapng"), records)
    assert pcap.read_pcap(str(tmp_path / "a.pcapng")) == records
    assert pcap.read_pcap(str(tmp_path / "a.pcap")) == [r._replace(interface="", direction="")
                                                        for r in records]


def test_a_pcap_file_is_byte_for_byte_what_labkit_wrote_before_scapy(tmp_path):
    """Header: ns magic, version 2.4, snap length 262144, Ethernet; records little-endian."""
    data = frame(Ether(), IP(src=C0, dst=C1), ICMP())
    pcap.write_pcap(str(tmp_path / "one.pcap"), [pcap.Record(T0 + 7, data, len(data) + 4)])
    assert (tmp_path / "one.pcap").read_bytes() == (
        struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1)
        + struct.pack("<IIII", T0 // 10**9, 7, len(data), len(data) + 4) + data)


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(BadValue, match="pcap or pcapng"):
        sample().write(str(tmp_path / "x.cap"), format="erf")


def test_tshark_reads_pcap_and_pcapng_with_points_and_directions(tmp_path):
    pkts = sample()
    for name in ("a.pcap", "a.pcapng"):
        pkts.write(str(tmp_path / name))
        out = subprocess.run(["tshark", "-r", str(tmp_path / name), "-T", "fields", "-e", "ip.src"],
                             capture_output=True, text=True, check=True).stdout.split()
        assert out == [p.headers.src for p in pkts]
    fields = subprocess.run(["tshark", "-r", str(tmp_path / "a.pcapng"), "-T", "fields",
                             "-e", "frame.interface_name", "-e", "frame.p2p_dir"],
                            capture_output=True, text=True, check=True).stdout.splitlines()
    assert fields[0].split("\t") == ["netns0:ceth0", "0"]     # 0: sent
    assert fields[1].split("\t") == ["host:veth0", "1"]       # 1: received


def test_scapy_dissection_on_demand():
    p = sample()[0]
    assert p.scapy()[ICMP].seq == 1
    assert len(sample().to_scapy()) == 10


def test_the_syn_is_scapy_layers_a_student_can_read():
    layers = frames.syn_layers(MAC0, MAC1, WORLD, HOST, 31001, 5000, seq=31001)
    assert layers.summary() == f"Ether / IP / TCP {WORLD}:31001 > {HOST}:5000 S"
    assert frames.syn_frame(MAC0, MAC1, WORLD, HOST, 31001, 5000, seq=31001) == bytes(layers)


def test_burst_frames_are_numbered_copies_of_one_scapy_frame():
    burst = frames.udp_frames(MAC0, MAC1, C0, C1, 70_000)
    for i in (0, 1, 4242, 65535, 65536, 69_999):
        assert burst[i] == bytes(frames.udp_layers(MAC0, MAC1, C0, C1, i)), i
    assert all(frames.checksum(f[14:34]) == 0 for f in burst)     # each IP checksum updated


def test_errors_are_labkit_errors():
    assert issubclass(BadName, LabkitError) and issubclass(BadValue, LabkitError)


def test_a_start_that_fails_leaves_no_descriptor_open():
    """start() raises for a point whose namespace does not exist (or, without root, for want
    of privileges), and closes everything it opened (its wake-up pipe included): a notebook
    cell re-run many times must not leak."""
    def fds():
        return set(os.listdir("/proc/self/fd"))
    before = fds()
    for _ in range(3):
        cap = Capture("netns0:ceth0", lab="zz9qx")
        with pytest.raises(LabkitError, match="does not exist|needs root"):
            cap.start()
    assert fds() - before == set()


def test_reading_a_file_that_is_not_pcap_is_a_labkit_error(tmp_path):
    short, ng = tmp_path / "short.pcap", tmp_path / "x.pcapng"
    short.write_bytes(b"abc")
    ng.write_bytes(b"\x0a\x0d\x0d\x0a" + b"\0" * 28)
    for path in (short, ng, tmp_path / "missing.pcap"):
        with pytest.raises(LabkitError):
            pcap.read_pcap(str(path))


def test_writing_where_no_file_can_be_made_is_a_labkit_error(tmp_path):
    with pytest.raises(BadValue, match="cannot write"):
        sample().write(str(tmp_path / "no-such-dir" / "cap.pcap"))
