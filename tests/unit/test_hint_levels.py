"""Level 2 of a hint: the kind of change a fix makes, read from the fix without its arguments."""

import pytest

from labkit.lab.verdict import Item, Result, kind_of_change

WHERE = "in host (sudo nsenter --net=/run/netns/host bash): "


@pytest.mark.parametrize("fix,said", [
    (WHERE + "ip link set veth1 master br0", "in host: change the link veth1, with `ip link`"),
    (WHERE + "ip netns add t1-netns0", "in host: add a namespace, with `ip netns`"),
    ("in netns0 (sudo ip netns exec netns0 bash): ip route add default via 172.18.0.1",
     "in netns0: add a route, with `ip route`"),
    (WHERE + "sysctl -w net.ipv4.ip_forward=1",
     "in host: change the kernel setting net.ipv4.ip_forward, with `sysctl`"),
    (WHERE + "iptables -t nat -A POSTROUTING -s 172.18.0.0/16 ! -o br0 -j MASQUERADE",
     "in host: add a rule in the nat table's POSTROUTING chain, with `iptables`"),
    (WHERE + "iptables -P FORWARD ACCEPT",
     "in host: change the policy of the filter table's FORWARD chain, with `iptables`"),
    ("in netns0 (x): ip addr del 172.18.0.11/16 dev ceth0; ip addr add 172.18.0.10/16 dev ceth0",
     "in netns0: delete an address on ceth0, with `ip addr`; then in netns0: add an address on "
     "ceth0, with `ip addr`"),
])
def test_the_kind_of_change_names_object_and_tool_but_no_argument(fix, said):
    assert kind_of_change(fix) == said
    for argument in ("172.18", "MASQUERADE", "master", "=1", "ACCEPT"):
        assert argument not in said


def test_each_level_adds_one_line_per_unmet_item():
    item = Item(False, "veth1 is not a port of br0", "links", "bridge link",
                WHERE + "ip link set veth1 master br0")
    result = Result("bridge", "t1", (item, Item(True, "br0 is up", "links")))
    assert [len(result.hints(level)) for level in (1, 2, 3)] == [1, 2, 3]
    assert result.hints(3)[2] == "    fix: " + item.fix
