"""The ipv6 and overlay stages as plain data (no root): IPv6 addresses and routes, VXLAN
devices and MTUs in the model, their checks, and their round trips through files."""
import pytest

from labkit import Blueprint
from labkit.errors import BadAddress, BadValue
from labkit.model import overlay, six, stages
from labkit.model.topology import Topology


def test_the_ipv6_stage_is_publish_with_ipv6_beside_ipv4():
    t = stages.build("ipv6")
    host, c0 = t.namespace("host"), t.namespace("netns0")
    assert host.interface("br0").addresses == ("172.18.0.1/16", "fd00:172:18::1/64")
    assert c0.interface("ceth0").addresses == ("172.18.0.10/16", "fd00:172:18::10/64")
    assert ("net.ipv6.conf.all.disable_ipv6", "0") in c0.sysctls
    assert {r.gateway for r in c0.routes} == {"172.18.0.1", "fd00:172:18::1"}
    assert six.container_address6(1) == "fd00:172:18::20" and six.container_address6(25) == "fd00:172:18::1:10"
    assert not any(r.dst == six.BRIDGE_NET6 for r in t.namespace("world").routes)       # NAT66: no route back
    assert any(r.dst == six.BRIDGE_NET6 for r in stages.build("ipv6-routed").namespace("world").routes)
    assert ("net.ipv6.conf.all.disable_ipv6", "1") in stages.build("publish").namespace("netns0").sysctls


def test_the_overlay_spans_two_hosts_with_one_tunnel_each():
    t = stages.build("overlay", "t1")
    a = t.namespace("host-a").interface("vxlan42")
    assert (a.vxlan.vni, a.vxlan.port, a.vxlan.local, a.vxlan.remotes) == (42, 4789, "10.0.3.1", ("10.0.3.2",))
    assert a.master == "br0" and a.mtu == overlay.MTU == 1450
    assert t.namespace("netns1").interface("ceth1").mtu == 1450
    assert Topology.from_dict(t.to_dict()) == t
    bp = stages.blueprint("overlay")
    assert Blueprint.from_dict(bp.to_dict()).build("t1") == t


def _two_hosts() -> Blueprint:
    bp = Blueprint("x")
    bp.namespace("a", "host").namespace("b", "host")
    bp.veth("a:eth0", "b:eth0", address="10.0.3.1/24", peer_address="10.0.3.2/24")
    bp.bridge("a", "br0")
    return bp


@pytest.mark.parametrize("vni,local,remotes,error,words", [
    (0, "10.0.3.1", ["10.0.3.2"], BadValue, "VNI 0 is out of range"),
    (42, "10.0.3.9", ["10.0.3.2"], BadAddress, "local 10.0.3.9 is not an address of this namespace"),
    (42, "10.0.3.1", ["10.0.3.1"], BadAddress, "the device's own local address"),
])
def test_a_vxlan_device_that_cannot_work_is_refused_naming_the_fix(vni, local, remotes, error, words):
    bp = _two_hosts().vxlan("a", "vxlan42", vni, local=local, remotes=remotes, master="br0")
    with pytest.raises(error, match=words):
        bp.build("t1")


def test_ipv6_addresses_and_routes_are_checked_like_ipv4_ones():
    bp = _two_hosts()
    with pytest.raises(BadAddress, match="link-local"):
        bp.address("a", "eth0", "fe80::1/64")
    with pytest.raises(BadAddress, match="IPv6 address"):
        bp.route("a", "default", via="fd00::zz")
    bp.address("a", "eth0", "fd00:1::1/64").route("a", "default", via="fd00:1::2")
    with pytest.raises(BadAddress, match="not of the destination's family"):
        _two_hosts().route("a", "fd00:9::/64", via="10.0.3.2").build("t1")
    with pytest.raises(BadAddress, match="cannot reach the gateway"):
        _two_hosts().route("a", "default", via="fd00:1::2").build("t1")
    with pytest.raises(BadValue, match="mtu 40 is out of range"):
        bp.mtu("a", "eth0", 40)
