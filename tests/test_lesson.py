"""Notebook helpers (labkit.teach.notebook.lesson, labkit.teach.notebook.exercises): unit tests without root, then kernel
tests that run them against real labs (what the notebooks rely on)."""
import dataclasses
import json
import pathlib
import re
import socket
import struct
import subprocess
import sys

import pytest
from scapy.layers.inet import ICMP, IP, TCP
from scapy.layers.l2 import ARP, Ether

from labkit.teach.notebook import exercises
from labkit.capture import frames
from labkit.teach.notebook import lesson
from labkit.lab import reach
from labkit.kernel import privilege
from labkit.model import plan
from labkit.model import stages
from labkit.capture import Packet
from labkit.errors import UnknownName
from labkit.capture.packets import follow, headers

C0, C1, BR, HOST, WORLD, PUBLIC = "172.18.0.10", "172.18.0.20", "172.18.0.1", "10.0.2.15", "10.0.2.2", "203.0.113.80"
T0 = 1_700_000_000_000_000_000
MAC = {a: plan.mac_for(a) for a in (C0, C1, BR, HOST, WORLD)}


def seen(at_us, point, direction, data, upper=False) -> Packet:
    return Packet(T0 + int(at_us * 1000), point, direction, "outgoing" if direction == "out" else "host",
                  data, len(data), upper)


def echo(src, dst, ident=4242, seq=1, ip_id=7, reply=False, smac=MAC[C0], dmac=MAC[BR]) -> bytes:
    return bytes(Ether(src=smac, dst=dmac) / IP(src=src, dst=dst, id=ip_id)
                 / ICMP(type=0 if reply else 8, id=ident, seq=seq) / b"payload")


def arp_request(src, dst, smac) -> bytes:
    return bytes(Ether(src=smac, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, psrc=src, pdst=dst, hwsrc=smac))


def masqueraded_ping(t=0.0, ident=4242, ip_id=7):
    """One echo request from netns0 to the public server, seen at three points, NAT at ens18."""
    return [seen(t, "netns0:ceth0", "out", echo(C0, PUBLIC, ident, ip_id=ip_id)),
            seen(t + 5, "host:br0", "in", echo(C0, PUBLIC, ident, ip_id=ip_id), upper=True),
            seen(t + 9, "host:ens18", "out", echo(HOST, PUBLIC, ident + 1, ip_id=ip_id))]


def trace_of(packets, points, keep=None, action="ping from netns0 to 203.0.113.80",
             outcome="answered") -> lesson.Trace:
    return lesson.Trace(action, outcome, tuple(points), tuple(lesson.distinct(follow(packets), keep)))


# --- the seed's commands ---------------------------------------------------------------------

@pytest.mark.parametrize("stage", stages.STAGES)
def test_every_stage_has_shell_commands_beside_its_labkit_call(stage):
    cmds = lesson.seed(stage)
    text = str(cmds)
    assert f"lab.up({stage!r})" in text and cmds.blocks
    assert "sudo nsenter --net=/run/netns/host bash" in text   # ip netns exec hides an ip netns add
    html = cmds._repr_html_()
    assert "<table" in html and "&lt;" not in cmds.call


def test_seed_commands_are_the_seeds_own():
    assert "sudo ip link add veth0 type veth peer name ceth0" in str(lesson.seed("veth"))
    assert "sudo ip addr add 172.18.0.21/16 dev veth1" in str(lesson.seed("two-veths"))
    bridge = str(lesson.seed("bridge"))
    assert "sudo ip netns delete netns0" in bridge and "sudo ip addr add 172.18.0.1/16 dev br0" in bridge
    outside = str(lesson.seed("outside"))
    assert "sudo iptables -t nat -A POSTROUTING -s 172.18.0.0/16 ! -o br0 -j MASQUERADE" in outside
    assert outside.count("MASQUERADE") == 1            # the seed's rule is not repeated as an extra
    publish = str(lesson.seed("publish"))
    assert publish.count("--to-destination 172.18.0.10:5000") == 2
    assert "--ctstate DNAT -j MASQUERADE" in publish   # labkit's hairpin rule, marked as an addition


def test_hairpin_commands_are_only_what_the_stage_adds():
    text = str(lesson.seed("hairpin"))
    assert "-d 127.0.0.1" in text and "raw -A PREROUTING -d 127.0.0.0/8 ! -i lo -j DROP" in text
    assert "route_localnet=1" in text
    assert "-d 10.0.2.15" not in text                  # already there since publish


def test_unknown_stage_lists_the_stages():
    with pytest.raises(UnknownName, match="veth, two-veths"):
        lesson.seed("vxlan")


# --- packets described without what varies ---------------------------------------------------

def test_descriptions_drop_icmp_ids_and_tcp_sequence_numbers():
    icmp = follow([seen(0, "a:x", "out", echo(C0, C1, ident=31337))])[0].hops[0]
    assert lesson.describe(icmp) == "echo-request seq=1"
    syn = bytes(Ether() / IP(src=WORLD, dst=HOST) / TCP(sport=40000, dport=5000, flags="S", seq=987654))
    synack = bytes(Ether() / IP(src=HOST, dst=WORLD) / TCP(sport=5000, dport=40000, flags="SA", seq=5, ack=987655))
    data = bytes(Ether() / IP(src=WORLD, dst=HOST) / TCP(sport=40000, dport=5000, flags="PA") / b"GET /")
    hops = [follow([seen(0, "a:x", "in", f)])[0].hops[0] for f in (syn, synack, data)]
    assert [lesson.describe(h) for h in hops] == ["SYN", "SYN-ACK", "PSH-ACK len=5"]
    arp = follow([seen(0, "a:x", "out", arp_request(C0, C1, MAC[C0]))])[0].hops[0]
    assert lesson.describe(arp) == f"who-has {C1} tell {C0}"


def test_trace_lists_each_distinct_path_once_with_nat_and_silent_points():
    packets = masqueraded_ping(0, ident=1, ip_id=7) + masqueraded_ping(2_000_000, ident=2, ip_id=8)
    trace = trace_of(packets, ["netns0:ceth0", "host:br0", "host:ens18", "world:wan0"])
    text = str(trace)
    assert text.count("echo-request seq=1") == 1       # the repeat (other id, later) is one path
    assert f"src {C0} -> {HOST}" in text and "NAT:" in text
    assert "id=" not in text and "us" not in text       # nothing that varies from run to run
    assert text.splitlines()[-1] == "nothing seen at: world:wan0"
    assert trace.silent == ["world:wan0"] and trace.answered


def test_trace_text_repeats_exactly_whatever_the_timing():
    a = str(trace_of(masqueraded_ping(0, ident=11, ip_id=1), ["netns0:ceth0", "host:br0", "host:ens18"]))
    b = str(trace_of(masqueraded_ping(777, ident=99, ip_id=2), ["netns0:ceth0", "host:br0", "host:ens18"]))
    assert a == b


def test_keep_selects_the_lessons_packets():
    request = arp_request("172.18.0.11", C1, plan.mac_for("172.18.0.11"))
    packets = [seen(0, "host:veth0", "out", request)] + masqueraded_ping(100)
    only_arp = trace_of(packets, ["host:veth0"], keep=lambda p: p.proto == "arp")
    assert [p.proto for p in only_arp.paths] == ["arp"]
    assert "02:42:ac:12:00:0b > ff:ff:ff:ff:ff:ff" in str(only_arp)  # ARP hops show MACs


def test_an_empty_trace_says_so():
    text = str(trace_of([], ["host:veth1"], outcome="NO ANSWER"))
    assert "NO ANSWER" in text and "no packets of this lesson" in text and "host:veth1" in text


# --- reachability tables ---------------------------------------------------------------------

class FakeLab:
    """Answers pings from a table; enough for reachability() and the exercise checks."""
    name = ""

    def __init__(self, answers=None, routes=None, topology=None):
        self.answers, self.routes = answers or {}, routes or {}
        self.topology = topology or stages.build("two-veths")

    def ns(self, role):
        return role

    def roles(self):
        return [n.role for n in self.topology.namespaces]

    def ping(self, role, address, timeout=1.0):
        return self.answers.get((role, address), False)

    def inspect(self):
        return self.topology

    def plan(self, stage):
        return stages.build(stage)

    def exec(self, role, argv, **kw):
        out = ""
        if argv[:4] == ["ip", "-o", "route", "get"]:
            out = f"{argv[4]} dev {self.routes[(role, argv[4])]} src 172.18.0.11 uid 0 \\    cache"
        return subprocess.CompletedProcess(argv, 0, out, "")


@pytest.fixture
def unprivileged_ok(monkeypatch):
    monkeypatch.setattr(privilege, "require", lambda: None)


def test_reachability_table_when_reality_matches(unprivileged_ok):
    lab = FakeLab({("host", C0): True})
    table = lesson.reachability(lab, [("host", C0, True), ("host", C1, False)])
    assert table.ok
    assert str(table).splitlines() == [
        "from  test  to                          expected  got",
        "host  ping  172.18.0.10 (netns0:ceth0)  yes       yes  ok",
        "host  ping  172.18.0.20 (netns1:ceth1)  no        no   ok"]
    assert "<table" in table._repr_html_()


def test_reachability_fails_and_names_each_check_that_differs(unprivileged_ok):
    lab = FakeLab({("host", C0): True, ("host", C1): True})
    with pytest.raises(AssertionError) as err:
        lesson.reachability(lab, [("host", C0, True), ("host", C1, False), ("netns0", C1, True)])
    message = str(err.value)
    assert "host -> 172.18.0.20: expected no answer, got an answer" in message
    assert "netns0 -> 172.18.0.20: expected an answer, got none" in message
    assert "host -> 172.18.0.10" not in message.split("\n\n")[0]
    assert "lab.up" in message


def test_a_url_is_checked_with_http_and_an_address_with_ping(unprivileged_ok, monkeypatch):
    calls = []
    monkeypatch.setattr(reach, "send", lambda lab, s, target, timeout=1.0: calls.append(target)
                        or reach.Answer(True, "HTTP 200"))
    table = lesson.reachability(FakeLab(), [("world", "http://10.0.2.15:5000/", True)])
    assert calls == ["http://10.0.2.15:5000/"] and table.probes[0].how == "http"
    assert "(host:ens18)" in str(table)


def test_one_success_rule_for_every_probe():
    """labkit.lab.reach.send is the probe of check, lesson.reachability, watch and the traffic
    tester: an HTTP answer below 400 works (curl -f exits 0), 4xx/5xx and no answer do not."""
    import subprocess

    class Lab:
        def __init__(self, rc, out, err=""):
            self.result = subprocess.CompletedProcess([], rc, out, err)
            self.argv = None

        def exec(self, source, argv, **kw):
            self.argv = argv
            return self.result

        def ping(self, source, address, timeout=1.0):
            return address == "172.18.0.10"

    url = "http://10.0.2.15:5000/"
    ok = reach.send(Lab(0, "hello\n200"), "world", url)
    assert (ok.ok, ok.said, ok.body) == (True, "HTTP 200", "hello")
    assert reach.send(Lab(0, "\n301"), "world", url).ok
    missing = reach.send(Lab(22, "\n404", "curl: (22) The requested URL returned error: 404"), "world", url)
    assert (missing.ok, missing.said) == (False, "HTTP 404")
    refused = reach.send(Lab(7, "\n000", "curl: (7) Failed to connect"), "world", url)
    assert (refused.ok, refused.said) == (False, "curl: (7) Failed to connect")
    lab = Lab(0, "")
    reach.send(lab, "world", url)
    assert "-f" in lab.argv and "--noproxy" in lab.argv
    assert reach.send(lab, "host", "172.18.0.10") == reach.Answer(True, "answered")
    assert not reach.probe(lab, "host", "172.18.0.20")


def test_every_name_a_notebook_calls_on_lesson_is_there():
    """The notebooks call `lesson.NAME` (seed, sh, watch, ...): the helpers live in modules of
    their own, and lesson must still offer each name, or a notebook cell fails."""
    used = set()
    for nb in sorted(pathlib.Path(__file__).resolve().parent.parent.glob("notebooks/*.ipynb")):
        for cell in json.loads(nb.read_text())["cells"]:
            if cell["cell_type"] == "code":
                used |= set(re.findall(r"\blesson\.(\w+)", "".join(cell["source"])))
    assert {"seed", "sh", "watch", "reachability", "check"} <= used
    assert [name for name in sorted(used) if not callable(getattr(lesson, name, None))] == []


# --- exercises -------------------------------------------------------------------------------

def test_right_answer_says_why(unprivileged_ok):
    lab = FakeLab(routes={("host", C1): "veth0"})
    verdict = lesson.check("two-veths-route", " Veth0 ", lab)
    assert verdict and str(verdict).startswith("Right: veth0. Why:")


def test_a_usual_wrong_answer_gets_its_own_hint(unprivileged_ok):
    lab = FakeLab(routes={("host", C1): "veth0"})
    verdict = lesson.check("two-veths-route", "veth1", lab)
    assert not verdict and "ip route get 172.18.0.20" in str(verdict) and "Not quite ('veth1')" in str(verdict)
    other = lesson.check("two-veths-route", "eth7", lab)
    assert not other and "Hint:" in str(other) and str(other) != str(verdict)


def test_an_empty_answer_is_not_checked(unprivileged_ok):
    verdict = lesson.check("two-veths-route", "", None)
    assert not verdict and "Not answered yet" in str(verdict)


def test_mac_answers_are_compared_as_macs(unprivileged_ok):
    lab = FakeLab(topology=stages.build("veth"))
    assert lesson.check("veth-mac", "02-42-AC-12-00-0A", lab)
    assert "hexadecimal" in str(lesson.check("veth-mac", "02:42:ac:12:00:10", lab))


def test_unknown_exercise_lists_the_exercises():
    with pytest.raises(UnknownName, match="two-veths-route"):
        lesson.check("nope", "x", None)


def test_every_exercise_explains_itself_and_has_hints():
    for ex in exercises.EXERCISES.values():
        assert ex.why and ex.otherwise and ex.hints, ex.name
        assert all(k == ex.normalize(k) for k in ex.hints), ex.name  # hints are reachable


# --- the neighbour's frame, and small things -------------------------------------------------

def test_syn_frame_has_valid_checksums():
    frame = frames.syn_frame(MAC[WORLD], MAC[HOST], WORLD, "127.0.0.1", 31001, 5000, seq=31001)
    h = headers(frame)
    assert (h.proto, h.src, h.dst, h.sport, h.dport, h.tcp_flags) == ("tcp", WORLD, "127.0.0.1", 31001, 5000, "S")
    ip = frame[14:34]
    assert frames.checksum(ip) == 0
    tcp = frame[34:]
    pseudo = socket.inet_aton(WORLD) + socket.inet_aton("127.0.0.1") + struct.pack("!BBH", 0, 6, len(tcp))
    assert frames.checksum(pseudo + tcp) == 0


def test_said_shows_without_quotes():
    assert repr(lesson.Said("Nothing left.")) == "Nothing left."


def test_shell_output_shows_the_command_to_type():
    assert str(lesson.Shell("sudo ip netns exec host ip route", "default via 10.0.2.2\n")) == \
        "$ sudo ip netns exec host ip route\ndefault via 10.0.2.2"


def test_importing_lesson_stays_light():
    code = ("import sys, labkit.teach.notebook.lesson, labkit.teach.notebook.exercises\n"
            "print(sorted(m for m in ('scapy', 'matplotlib', 'IPython') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- against the kernel ----------------------------------------------------------------------

@pytest.mark.kernel
def test_two_veths_capture_shows_the_unanswered_arp_and_repeats(lab):
    lab.up("two-veths")
    points = ["host:veth0", "netns0:ceth0", "host:veth1", "netns1:ceth1"]
    first = lesson.watch(lab, points, ping=("host", C1))
    second = lesson.watch(lab, points, ping=("host", C1))
    assert str(first) == str(second)
    assert not first.answered and [p.proto for p in first.paths] == ["arp"]
    assert first.silent == ["host:veth1", "netns1:ceth1"]


@pytest.mark.kernel
def test_reachability_fails_when_the_lab_is_not_as_the_lesson_says(lab):
    lab.up("two-veths")
    with pytest.raises(AssertionError, match="host -> 172.18.0.20: expected an answer"):
        lesson.reachability(lab, [("host", C1, True)])
    lab.up("bridge")
    assert lesson.reachability(lab, [("host", C1, True), ("netns0", HOST, False)]).ok


@pytest.mark.kernel
def test_shell_names_the_labs_namespace_and_settles(lab):
    lab.up("bridge")
    out = lesson.sh(lab, "host", "ip -br addr show dev br0")
    assert out.prompt == f"sudo ip netns exec {lab.name}-host ip -br addr show dev br0"
    assert " UP " in out.output and "172.18.0.1/16" in out.output
    assert lesson.settle(lab) == []
    with pytest.raises(AssertionError, match="failed"):
        lesson.sh(lab, "host", "ip link show nosuchlink")


@pytest.mark.kernel
@pytest.mark.parametrize("stage, name, answer", [
    ("veth", "intro-gateway", WORLD), ("veth", "veth-route", "veth0"),
    ("veth", "veth-mac", "02:42:ac:12:00:0a"), ("two-veths", "two-veths-route", "veth0"),
    ("two-veths", "two-veths-reply", "veth0"), ("bridge", "bridge-address", "br0"),
    ("bridge", "bridge-mac", "02:42:ac:12:00:14"), ("outside", "outside-source", HOST),
    ("outside", "outside-forwarding", "net.ipv4.ip_forward"),
    ("publish", "publish-target", "172.18.0.10:5000"), ("hairpin", "hairpin-chain", "OUTPUT"),
    ("hairpin", "hairpin-source", BR)])
def test_the_notebooks_answers_are_right_on_the_real_kernel(lab, stage, name, answer):
    lab.up(stage)
    assert lesson.check(name, answer, lab), lesson.check(name, answer, lab)


@pytest.mark.kernel
def test_the_route_localnet_guard_drops_a_neighbours_syn_to_127(lab):
    lab.up("hairpin")
    trace = lesson.neighbour_syn(lab)
    assert trace.outcome == "the SYN to 127.0.0.1 was dropped in the host"
    assert "nothing seen" not in str(trace)            # both points saw the control SYN


@pytest.mark.kernel
def test_a_dnat_once_made_outlives_its_rule_for_the_same_ports(lab):
    """Notebook 06: with the raw guard gone, deleting the PREROUTING DNAT of 127.0.0.1 closes
    the hole for a new connection only; the neighbour's SYN from the same ports is still
    DNATed by the conntrack entry its first SYN made."""
    lab.up("hairpin", backend="iptables")
    lab.exec("host", "iptables -t raw -D PREROUTING -d 127.0.0.0/8 ! -i lo -j DROP".split(), check=True)
    assert lesson.neighbour_syn(lab).outcome == "the SYN to 127.0.0.1 REACHED netns0"
    lab.exec("host", ("iptables -t nat -D PREROUTING -d 127.0.0.1 -p tcp -m tcp --dport 5000 -j DNAT "
                      "--to-destination 172.18.0.10:5000").split(), check=True)
    assert lesson.neighbour_syn(lab).outcome == "the SYN to 127.0.0.1 REACHED netns0"
    fresh = lesson.neighbour_syn(lab, sport=31101)
    assert fresh.outcome == "the SYN to 127.0.0.1 was dropped in the host"
    assert {p.hops[0].sport for p in fresh.paths} == {31101, 31102}


def test_show_displays_the_capture_once_as_a_ladder_whose_text_is_the_listing(capsys):
    trace = trace_of(masqueraded_ping(), ["netns0:ceth0", "host:br0", "host:ens18"])
    trace.show()                                        # outside IPython: printed reprs
    out = capsys.readouterr().out
    assert out == str(trace) + "\n"                     # one copy: the ladder's text form
    lad = trace.ladder()
    assert lad.render("png").startswith(b"\x89PNG") and repr(lad) == str(trace)
    trace.show(text=True)                               # asked: the listing above it as well
    assert capsys.readouterr().out == (str(trace) + "\n") * 2
    from IPython.core.formatters import DisplayFormatter
    shown, _ = DisplayFormatter().format(lad)
    assert set(shown) == {"image/png", "text/plain"} and shown["text/plain"] == str(trace)


def test_watch_with_both_or_neither_probe_is_a_labkit_error(monkeypatch):
    from labkit.errors import LabkitError
    monkeypatch.setattr(privilege, "require", lambda: None)
    for kwargs in ({}, {"ping": ("netns0", "172.18.0.20"), "http": ("netns0", "http://x/")}):
        with pytest.raises(LabkitError, match="exactly one"):
            lesson.watch(None, ["netns0:ceth0"], **kwargs)


def test_an_exercise_checked_without_a_lab_reads_the_default_lab(unprivileged_ok, monkeypatch):
    """check(name, answer) with the lab left out (its signature allows it) checks against the
    default lab, as the notebooks use, instead of failing with AttributeError on None."""
    from labkit import Lab
    seen = []
    ex = exercises.EXERCISES["intro-gateway"]
    monkeypatch.setitem(exercises.EXERCISES, "intro-gateway",
                        dataclasses.replace(ex, truth=lambda lab: seen.append(lab) or "10.0.2.2"))
    assert lesson.check("intro-gateway", "10.0.2.2")
    assert isinstance(seen[0], Lab) and seen[0].name == ""


@pytest.mark.parametrize("command", ["", "   ", "echo 'unclosed"])
def test_sh_with_no_command_or_broken_quoting_is_a_labkit_error(unprivileged_ok, command):
    from labkit.errors import BadValue
    with pytest.raises(BadValue, match="command"):
        lesson.sh(FakeLab(), "host", command)
