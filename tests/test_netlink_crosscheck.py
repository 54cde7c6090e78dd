"""labkit encodes rtnetlink itself (labkit/netlink.py); pyroute2, an independent decoder, checks
that what it made is what the plan says."""
import pytest

from labkit.kernel import netns

pytestmark = pytest.mark.kernel


def read_with_pyroute2(kernel_ns):
    """{ifname: (kind, mac, master name, up, sorted IPv4 CIDRs)} of one namespace, via pyroute2."""
    from pyroute2 import IPRoute
    with netns.entered(kernel_ns):
        ipr = IPRoute()
    try:
        links = {m["index"]: m for m in ipr.get_links()}
        names = {i: m.get_attr("IFLA_IFNAME") for i, m in links.items()}
        addrs = {}
        for a in ipr.get_addr(family=2):
            addrs.setdefault(a["index"], []).append(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}")
        result = {}
        for i, m in links.items():
            info = m.get_attr("IFLA_LINKINFO")
            result[names[i]] = (info.get_attr("IFLA_INFO_KIND") if info else None,
                                m.get_attr("IFLA_ADDRESS"), names.get(m.get_attr("IFLA_MASTER")),
                                bool(m["flags"] & 1), sorted(addrs.get(i, [])))
        return result
    finally:
        ipr.close()


@pytest.mark.parametrize("stage", ["two-veths", "bridge"])
def test_pyroute2_reads_back_the_plan(lab, stage):
    want = lab.up(stage, containers=3)
    for ns in want.namespaces:
        seen = read_with_pyroute2(lab.ns(ns.name))
        for itf in ns.interfaces:
            kind, mac, master, up, addrs = seen[itf.name]
            assert up is itf.up, (ns.name, itf.name)
            assert master == itf.master, (ns.name, itf.name)
            if itf.kind != "loopback":
                assert (kind, mac) == (itf.kind, itf.mac), (ns.name, itf.name)
                assert addrs == sorted(itf.addresses), (ns.name, itf.name)
        assert set(seen) == {itf.name for itf in ns.interfaces}
