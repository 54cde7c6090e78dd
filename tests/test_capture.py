"""Captures on the real kernel: every point of a bridged ping, a lossless burst, paths, pcap, CLI.

Traffic goes only between the lab's own namespaces.
"""
import os
import select
import signal
import subprocess
import sys
import threading
import time

import pytest

from labkit import capture
from labkit.capture import pcap
from labkit.capture import Capture
from labkit.errors import UnknownName
from labkit.capture.packets import Change

from harness import without_capabilities

pytestmark = pytest.mark.kernel

C0, C1, HOST, PUBLIC = "172.18.0.10", "172.18.0.20", "10.0.2.15", "203.0.113.80"
BRIDGE_POINTS = ["netns0:ceth0", "host:veth0", "host:br0", "host:veth1", "netns1:ceth1"]



def send_burst(lab, n: int, role="netns0", iface="ceth0", peer=("host", "veth0"),
               src=C0, dst="172.18.0.11"):
    """Send `n` UDP frames from `role`:`iface` to the lab address `dst` on the peer's MAC."""
    mac = lab.exec(peer[0], ["cat", f"/sys/class/net/{peer[1]}/address"], check=True).stdout.strip()
    lab.exec(role, [sys.executable, "-m", "labkit.capture.frames", "burst", iface, mac, src, dst, str(n)],
             check=True, timeout=120)


def no_capture_threads() -> bool:
    return not any(t.name == "labkit-capture" for t in threading.enumerate())


def test_a_ping_across_the_bridge_is_seen_at_every_point_arp_included(lab):
    lab.up("bridge")
    for role in ("netns0", "netns1"):
        lab.exec(role, ["ip", "neigh", "flush", "all"], check=True)
    points = ["netns0:ceth0", "host:veth0", "host:br0", "netns1:ceth1"]

    def complete(pkts):
        return all({"arp", "echo-request", "echo-reply"} <= kinds(pkts.at(p)) for p in points)

    with Capture(points, lab=lab) as cap:
        assert lab.ping("netns0", C1)
        assert cap.wait(until=complete, timeout=5), cap.packets
    pkts = cap.packets
    for point in points:
        at = pkts.at(point)
        assert any(p.headers.info == f"who-has {C1} tell {C0}" for p in at), (point, at)
        assert pkts.stats[point].dropped == 0
        assert pkts.stats[point].captured == len(at) == pkts.stats[point].seen
    assert {p.direction for p in pkts.at("netns0:ceth0").filter(proto="icmp")} == {"in", "out"}
    assert no_capture_threads()


def kinds(pkts) -> set[str]:
    found = set()
    for p in pkts:
        h = p.headers
        found.add(h.proto)
        if h.proto == "icmp":
            found.add(h.info.split()[0])
    return found


def test_a_burst_of_20000_frames_on_a_veth_is_captured_whole(lab):
    lab.up("veth")
    n = 20_000
    with Capture(["netns0:ceth0", "host:veth0"], lab=lab, filter="udp and dst port 9") as cap:
        send_burst(lab, n)
        assert cap.wait(count=2 * n, timeout=60), cap.stats
    pkts = cap.packets
    for point in ("netns0:ceth0", "host:veth0"):
        stats = pkts.stats[point]
        assert (stats.captured, stats.seen, stats.dropped) == (n, n, 0), stats
        ids = {p.headers.ip_id for p in pkts.at(point)}
        assert len(ids) == min(n, 65536)
    assert pkts.dropped == 0


def test_the_path_of_a_ping_across_the_bridge(lab):
    lab.up("bridge")
    with Capture(BRIDGE_POINTS, lab=lab, filter="icmp") as cap:
        assert lab.ping("netns0", C1)
        assert cap.wait(count=10, timeout=5), cap.packets
    request, reply = cap.packets.paths(proto="icmp")
    assert request.points == tuple(BRIDGE_POINTS)
    assert [h.direction for h in request.hops] == ["out", "in", "in", "out", "in"]
    assert reply.points == tuple(reversed(BRIDGE_POINTS))
    assert request.changes == [] and reply.changes == []      # a bridge rewrites nothing
    assert all(h.src == C0 and h.dst == C1 for h in request.hops)
    assert all(b.time >= a.time for a, b in zip(request.hops, request.hops[1:]))


OUTWARD = ["netns0:ceth0", "host:veth0", "host:br0", "host:ens18", "world:wan0"]


def test_the_path_of_a_masqueraded_ping_shows_the_source_rewritten_at_the_uplink(lab):
    lab.up("outside")
    with Capture(OUTWARD, lab=lab, filter="icmp") as cap:
        assert lab.ping("netns0", PUBLIC)
        assert cap.wait(count=10, timeout=5), cap.packets
    request, reply = cap.packets.paths(proto="icmp")
    assert request.points == tuple(OUTWARD)
    assert request.changes == [("host:ens18", Change("src", C0, HOST))]
    assert reply.points == tuple(reversed(OUTWARD))
    assert reply.changes == [("host:br0", Change("dst", HOST, C0))]


def test_the_path_of_a_request_to_a_published_port_shows_the_destination_rewritten(lab):
    lab.up("publish")
    with Capture(OUTWARD, lab=lab, filter="tcp port 5000") as cap:
        got = lab.exec("world", ["curl", "-s", "-m", "5", f"http://{HOST}:5000/"])
        assert got.returncode == 0, got.stderr
        assert cap.wait(until=lambda p: len(p.paths()) >= 3, timeout=5), cap.packets
    syn = cap.packets.paths(dport=5000)[0]
    assert "[S]" in syn.summary
    assert syn.points == tuple(reversed(OUTWARD))
    assert syn.changes == [("host:br0", Change("dst", HOST, C0))]
    assert syn.hops[-1].endpoints().endswith(f"> {C0}:5000")


def test_written_pcap_is_read_back_by_tshark_with_the_same_count(lab, tmp_path):
    lab.up("bridge")
    with Capture(["netns0:ceth0", "host:br0"], lab=lab) as cap:
        assert lab.ping("netns0", C1, count=3)
        assert cap.wait(until=lambda p: len(p.filter(proto="icmp")) >= 12, timeout=5)
    pkts = cap.packets
    merged = pkts.write(str(tmp_path / "ping.pcap"))
    ng = pkts.write(str(tmp_path / "ping.pcapng"))
    split = pkts.write(str(tmp_path / "ping.pcap"), per_point=True)
    for path in merged + ng:
        out = subprocess.run(["tshark", "-r", path], capture_output=True, text=True, check=True)
        assert len(out.stdout.splitlines()) == len(pkts), out.stdout
    assert [len(pcap.read_pcap(p)) for p in split] == [len(pkts.at("netns0:ceth0")),
                                                        len(pkts.at("host:br0"))]


def test_start_stop_count_and_kernel_ns_points(lab):
    lab.up("veth")
    cap = Capture([(lab.ns("netns0"), "ceth0")], count=3, filter="icmp").start()
    assert cap.running and cap.stats[0].captured == 0
    assert lab.ping("netns0", "172.18.0.11", count=3)
    assert cap.wait(timeout=5)            # ends by itself at the count
    assert not cap.running
    pkts = cap.stop()
    assert len(pkts) == 3 and pkts.points == [f"{lab.ns('netns0')}:ceth0"]
    assert cap.stop() is pkts               # twice is fine
    assert no_capture_threads()


def test_count_keeps_the_first_packets_in_time_across_points(lab):
    lab.up("veth")
    with Capture(["host:veth0", "netns0:ceth0"], lab=lab, filter="icmp", count=2) as cap:
        assert lab.ping("netns0", "172.18.0.11")
        assert cap.wait(timeout=5)
    pkts = cap.packets
    assert [(p.point, p.direction, p.headers.info.split()[0]) for p in pkts] == [
        ("netns0:ceth0", "out", "echo-request"), ("host:veth0", "in", "echo-request")]


def test_stop_all_stops_the_captures_of_a_lab(lab):
    lab.up("veth")
    cap = Capture("netns0:ceth0", lab=lab).start()
    assert capture.stop_all(["some-other-namespace"]) == 0 and cap.running
    assert capture.stop_all([lab.ns("host"), lab.ns("netns0")]) == 1
    assert not cap.running and no_capture_threads()


def test_down_stops_a_capture_running_in_the_lab(lab):
    lab.up("veth")
    cap = Capture(["netns0:ceth0", "host:veth0"], lab=lab).start()
    lab.down()
    assert not cap.running and no_capture_threads()
    assert lab.roles() == []


def test_a_point_whose_interface_goes_away_is_reported_not_fatal(lab):
    lab.up("veth")
    cap = Capture(["netns0:ceth0", "host:veth0"], lab=lab).start()
    lab.exec("host", ["ip", "link", "del", "veth0"], check=True)   # takes ceth0 with it
    assert cap.wait(until=lambda p: all(s.gone for s in p.stats.values()), timeout=5)
    pkts = cap.stop()
    assert "went away" in str(pkts.stats["host:veth0"])


def test_unknown_namespace_and_interface_are_named_with_what_exists(lab):
    lab.up("veth")
    with pytest.raises(UnknownName, match="does not exist.*labkit up"):
        Capture("netns1:ceth1", lab=lab).start()
    with pytest.raises(UnknownName, match=r"no interface 'eth9'.*it has: lo, ceth0"):
        Capture(["host:veth0", "netns0:eth9"], lab=lab).start()
    assert no_capture_threads()


def test_start_without_privileges_raises_not_privileged_and_leaves_nothing_open(lab, tmp_path):
    """Capture.start() from a process without capabilities (a notebook kernel started without
    sudo, on a lab brought up as root): NotPrivileged saying how to run it, not a KernelError
    about setns; no reader thread and no descriptor left behind."""
    lab.up("veth")
    code = (f"import os, threading\n"
            f"from labkit.capture import Capture\nfrom labkit.errors import NotPrivileged\n"
            f"before = set(os.listdir('/proc/self/fd'))\n"
            f"for spec in ('netns0:ceth0', ['host:veth0', 'netns0:ceth0']):\n"
            f"    try:\n"
            f"        Capture(spec, lab={lab.name!r}, filter='icmp').start()\n"
            f"        print('started')\n"
            f"    except NotPrivileged as e:\n"
            f"        print('NotPrivileged', 'CAP_NET_ADMIN' in str(e) and 'sudo' in str(e))\n"
            f"    except Exception as e:\n"
            f"        print(type(e).__name__, e)\n"
            f"print(sorted(set(os.listdir('/proc/self/fd')) - before), threading.active_count())\n")
    result = without_capabilities("-c", code, HOME=str(tmp_path))
    said = result.stdout + result.stderr
    assert result.stdout.splitlines() == ["NotPrivileged True", "NotPrivileged True", "[] 1"], said


def test_cli_prints_packets_writes_the_file_and_counts(lab, tmp_path):
    lab.up("veth")
    target = str(tmp_path / "cli.pcap")
    argv = [sys.executable, "-m", "labkit", "capture", "--lab", lab.name, "netns0:ceth0",
            "host:veth0", "-f", "icmp", "-c", "4", "-w", target]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_line(proc.stderr, "capturing at", timeout=10)
        assert lab.ping("netns0", "172.18.0.11")
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert len(out.splitlines()) == 4 and "echo-request" in out and "echo-reply" in out
    assert f"wrote 4 packets to {target}" in err
    assert "netns0:ceth0: 2 captured, 2 seen by the kernel, 0 dropped" in err
    assert len(pcap.read_pcap(target)) == 4


def test_cli_stops_on_sigint_and_still_writes_and_counts(lab, tmp_path):
    lab.up("veth")
    target = str(tmp_path / "int.pcapng")
    argv = [sys.executable, "-m", "labkit", "capture", "--lab", lab.name, "netns0:ceth0", "-w", target]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_line(proc.stderr, "capturing at", timeout=10)
        assert lab.ping("netns0", "172.18.0.11")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "echo-request" in out and "netns0:ceth0:" in err and "0 dropped" in err
    assert os.path.getsize(target) > 0


def wait_for_line(stream, text: str, timeout: float) -> str:
    """Read `stream` until a line containing `text` (polling with a deadline)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], deadline - time.monotonic())
        if ready:
            line = stream.readline()
            if text in line:
                return line
            if not line:
                break
    raise AssertionError(f"no line with {text!r} within {timeout} s")
