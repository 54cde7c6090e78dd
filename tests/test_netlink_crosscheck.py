"""What labkit made and reads, read again by independent readers.

labkit builds and parses rtnetlink with pyroute2's message classes on a socket of its own
(labkit/kernel/netlink.py, messages.py). pyroute2's IPRoute (its own requests, socket and
dump handling) checks that what labkit made is what the plan says; iproute2's `ip -j` and
`bridge -j` (C, sharing no code with pyroute2) check labkit's readers: links, addresses,
routes, neighbours and the bridge FDB.
"""
import dataclasses
import json

import pytest

from labkit.kernel import netns
from labkit.kernel.netlink import Netlink

pytestmark = pytest.mark.kernel

PROTOCOLS = {"kernel": 2, "boot": 3, "static": 4}   # rtnetlink(7) RTPROT_*, as iproute2 names them


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
        seen = read_with_pyroute2(lab.ns(ns.role))
        for itf in ns.interfaces:
            kind, mac, master, up, addrs = seen[itf.name]
            assert up is itf.up, (ns.role, itf.name)
            assert master == itf.master, (ns.role, itf.name)
            if itf.kind != "loopback":
                assert (kind, mac) == (itf.kind, itf.mac), (ns.role, itf.name)
                assert addrs == sorted(itf.addresses), (ns.role, itf.name)
        assert set(seen) == {itf.name for itf in ns.interfaces}


def rows(items) -> list:
    return sorted(items, key=repr)  # None sorts too


def ip_json(lab, role, *argv):
    return json.loads(lab.exec(role, list(argv), check=True).stdout or "[]")


def _vxlan(link: dict):
    """A VXLAN device's (vni, port, local, remotes) as ip -d shows it (remotes: labkit reads
    them from the FDB, so an empty tuple here and the FDB compared below); None for others."""
    data = link.get("linkinfo", {}).get("info_data", {})
    if link.get("linkinfo", {}).get("info_kind") != "vxlan":
        return None
    return (data.get("id"), data.get("port"), data.get("local"), ())


def read_with_iproute2(lab, role):
    """What labkit's readers return, as `ip -j` and `bridge -j` see it (indexes, not names)."""
    links = ip_json(lab, role, "ip", "-j", "-d", "link", "show")
    index = {link["ifname"]: link["ifindex"] for link in links}
    return {
        "links": rows((link["ifindex"], link["ifname"], link.get("linkinfo", {}).get("info_kind"),
                         link.get("address"), "UP" in link["flags"], index.get(link.get("master")),
                         link.get("link_index"), link.get("link_netnsid"), link.get("mtu"),
                         _vxlan(link)) for link in links),
        "addresses": rows((link["ifindex"], f"{a['local']}/{a['prefixlen']}")
                            for link in ip_json(lab, role, "ip", "-j", "-4", "address", "show")
                            for a in link["addr_info"]),
        "routes": rows((r["dst"] if "/" in r["dst"] or r["dst"] == "default" else r["dst"] + "/32",
                          r.get("gateway"), index[r["dev"]], PROTOCOLS[r["protocol"]], r.get("prefsrc"))
                         for r in ip_json(lab, role, "ip", "-j", "-4", "route", "show", "table", "main")),
        "neighbours": rows((index[n["dev"]], n["dst"], n.get("lladdr"), ",".join(n["state"]))
                             for n in ip_json(lab, role, "ip", "-j", "-4", "neigh", "show", "nud", "all")),
        "fdb": rows((index[e["ifname"]], index.get(e.get("master")), e["mac"],
                       e["state"] in ("permanent", "static"), e.get("vlan"))
                      for e in ip_json(lab, role, "bridge", "-j", "fdb", "show")),
    }


def read_with_labkit(lab, role):
    with Netlink(lab.ns(role)) as nl:
        return {
            "links": rows(dataclasses.astuple(link) for link in nl.links()),
            "addresses": rows(nl.addresses()),
            "routes": rows((r["dst"], r["gateway"], r["dev"], r["proto"], r["src"]) for r in nl.routes()),
            "neighbours": rows((n["ifindex"], n["ip"], n["mac"], n["state"]) for n in nl.neighbours()),
            "fdb": rows((e["ifindex"], e["master"], e["mac"], e["permanent"], e["vlan"])
                          for e in nl.fdb()),
        }


def test_labkit_reads_what_iproute2_reads(lab):
    lab.up("outside", containers=3)
    assert lab.ping("netns0", "172.18.0.20") and lab.ping("netns2", "203.0.113.80")
    for role in lab.roles():  # a neighbour may change state meanwhile (DELAY, PROBE, ...)
        before = read_with_iproute2(lab, role)
        mine = read_with_labkit(lab, role)
        assert mine in (before, read_with_iproute2(lab, role)), role
    assert read_with_labkit(lab, "netns0")["neighbours"]  # the pings filled the tables read
    assert any(not permanent for *_, permanent, _ in read_with_labkit(lab, "host")["fdb"])
