"""Stage overlay on the real kernel: two hosts, one network over VXLAN (issue 24)."""
import pytest

from labkit.capture import Capture
from labkit.lab import reach
from labkit.lab.inspection import differences
from labkit.model import overlay

pytestmark = pytest.mark.kernel

BIG = "http://172.18.0.20:8000/big.txt"


def test_netns0_on_host_a_reaches_netns1_on_host_b_through_the_tunnel(lab):
    lab.up("overlay")
    assert differences(lab.plan("overlay"), lab.inspect()) == []
    assert lab.roles() == ["world", "host-a", "host-b", "netns0", "netns1"]
    with Capture(["host-a:eth0"], lab=lab, filter="udp port 4789") as cap:
        assert lab.ping("netns0", "172.18.0.20")
        cap.wait(count=3, timeout=5)    # the ARP request, its answer, the echo request
    from scapy.layers.inet import IP, UDP
    from scapy.layers.vxlan import VXLAN
    frames = [p.scapy() for p in cap.packets]
    tunnelled = [f for f in frames if f.haslayer(VXLAN)]
    assert tunnelled, cap.packets
    first = tunnelled[0]
    assert first[IP].src == "10.0.3.1" and first[IP].dst == "10.0.3.2" and first[UDP].dport == 4789
    assert first[VXLAN].vni == 42
    inner = [f[VXLAN].payload for f in tunnelled]
    from scapy.layers.l2 import ARP
    assert inner[0].haslayer(ARP) and inner[0].dst == "ff:ff:ff:ff:ff:ff"   # flooded to the other VTEP
    assert any(i.haslayer(IP) and (i[IP].src, i[IP].dst) == ("172.18.0.10", "172.18.0.20") for i in inner)
    fdb = lab.exec("host-a", ["bridge", "fdb", "show", "dev", "vxlan42"]).stdout
    assert "00:00:00:00:00:00 dst 10.0.3.2" in fdb
    page = reach.send(lab, "netns0", BIG)
    assert page.ok and len(page.body) + 1 >= overlay.BIG_BYTES - 70, page.said   # 1,400 bytes cross
    assert lab.check("overlay").ok


def test_at_mtu_1500_ping_passes_but_a_large_response_stalls_and_check_names_the_mtu(lab):
    lab.up("overlay", fault="mtu-1500")
    assert lab.ping("netns0", "172.18.0.20")
    assert reach.send(lab, "netns0", "http://172.18.0.20:8000/").ok        # a small page crosses
    assert not reach.send(lab, "netns0", BIG).ok                            # a full segment does not
    result = lab.check("overlay")
    assert not result.ok and "MTU 1500, not 1450" in result.text(1)
    for role, itf in (("netns0", "ceth0"), ("netns1", "ceth1")):
        lab.exec(role, ["ip", "link", "set", itf, "mtu", "1450"])
    assert lab.check("overlay").ok


def test_overlay_and_the_single_host_stages_converge_into_each_other(lab):
    lab.up("overlay")
    lab.up("bridge")
    assert differences(lab.plan("bridge"), lab.inspect()) == []
    lab.up("overlay")
    assert differences(lab.plan("overlay"), lab.inspect()) == []
    assert lab.ping("netns1", "172.18.0.10")
