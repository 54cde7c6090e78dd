"""Stages ipv6 and ipv6-routed on the real kernel: dual stack, NAT66, IPv6 publishing, routed
mode (issue 24), with both NAT tools; going back to an IPv4 stage turns IPv6 off again."""
import time

import pytest

from labkit.lab import reach
from labkit.lab.inspection import differences
from labkit.model import six

pytestmark = pytest.mark.kernel

WHOAMI6 = six.url(six.PUBLIC_SERVER6)
PUBLISHED6 = six.url(six.HOST_ADDRESS6, 5000)


def send(lab, source, url, patience=5.0):
    """reach.send, again until `patience` runs out while it fails (as check gives a probe that
    should work reach.PATIENCE): a lab's first IPv6 connection sometimes took over curl's 1 s."""
    deadline = time.monotonic() + patience
    while True:
        answer = reach.send(lab, source, url)
        if answer.ok or time.monotonic() > deadline:
            return answer


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_nat66_carries_the_containers_out_and_publishes_on_the_hosts_ipv6_address(lab, backend):
    lab.up("ipv6", backend=backend)
    assert differences(lab.plan("ipv6"), lab.inspect()) == []
    for role in ("netns0", "netns1"):
        answer = send(lab, role, WHOAMI6)
        assert answer.ok and answer.body.strip() == six.HOST_ADDRESS6, (role, answer)  # NAT66
    for role in ("world", "host"):
        page = send(lab, role, PUBLISHED6)
        assert page.ok and "netns0" in page.body, (role, page)
    assert send(lab, "netns0", "http://203.0.113.80/").body.strip() == "10.0.2.15"
    # no route back to the containers' prefix in NAT mode: the world cannot reach them directly
    assert not send(lab, "world", six.url(six.container_address6(0), 5000), patience=0).ok
    assert lab.check("ipv6").ok
    neighbours = lab.exec("netns0", ["ip", "-6", "neigh"]).stdout
    assert six.BRIDGE_ADDRESS6 in neighbours                        # learnt by NDP, not ARP
    links = lab.exec("netns0", ["ip", "-6", "addr", "show", "dev", "ceth0"]).stdout
    assert "fe80::" in links and "scope link" in links              # the kernel's own link-local
    assert lab.ping("netns0", six.PUBLIC_SERVER6) and not lab.ping("world", six.container_address6(0))


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_routed_mode_lets_in_only_the_published_port(lab, backend):
    lab.up("ipv6-routed", backend=backend)
    answer = send(lab, "netns0", WHOAMI6)
    assert answer.ok and answer.body.strip() == six.container_address6(0), answer  # no NAT66
    assert send(lab, "world", six.url(six.container_address6(0), 5000)).ok
    # a server listens on 8080 in netns0 (the stage's): only the FORWARD drop keeps it out
    assert lab.exec("netns0", ["ss", "-ltnH", "sport", "= :8080"]).stdout.strip()
    assert send(lab, "netns0", six.url(six.container_address6(0), six.UNPUBLISHED_PORT)).ok
    assert not send(lab, "world", six.url(six.container_address6(0), six.UNPUBLISHED_PORT), patience=0).ok
    assert lab.check("ipv6-routed").ok


def test_going_back_to_publish_turns_ipv6_off_and_leaves_no_ipv6_rule(lab):
    lab.up("ipv6", backend="iptables")
    lab.up("publish")
    assert differences(lab.plan("publish"), lab.inspect()) == []
    for role in ("host", "world", "netns0"):
        assert lab.exec(role, ["sysctl", "-n", "net.ipv6.conf.all.disable_ipv6"]).stdout.strip() == "1"
        assert lab.exec(role, ["ip", "-6", "addr"]).stdout.strip() == ""
    assert "-A " not in lab.exec("host", ["ip6tables-save"]).stdout
    assert "ip6" not in lab.exec("host", ["nft", "list", "tables"]).stdout
    assert lab.check("publish").ok


def test_the_routed_modes_return_route_fault_and_its_fix(lab):
    lab.up("ipv6-routed", fault="no-return-route")
    result = lab.check("ipv6-routed")
    assert not result.ok and "route fd00:172:18::/64 via 2001:db8:2::15" in result.text(3)
    lab.exec("world", ["ip", "-6", "route", "add", six.BRIDGE_NET6, "via", six.HOST_ADDRESS6])
    assert lab.check("ipv6-routed").ok
