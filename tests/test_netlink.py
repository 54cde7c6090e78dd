"""Netlink and conntrack on the real kernel: errors carry the operation and the kernel's reason,
batches raise the failure in their middle and still run the rest, created veths are echoed
with their peer's index, and the neighbour table, the bridge FDB and the conntrack table show
what real traffic did."""
import asyncio
import dataclasses
import subprocess
import sys

import pytest

from labkit.errors import KernelError, UnknownName
from labkit.kernel import conntrack
from labkit.kernel.netlink import BATCH_MESSAGES, Netlink
from labkit.model import plan

pytestmark = pytest.mark.kernel

CURL = ["curl", "-sS", "--noproxy", "*", "--connect-timeout", "2", "-m", "4"]
BAD_GATEWAY = r"\(errno 101\): Nexthop has invalid gateway"   # 192.0.2.1 is on no link


def mac_of(lab, stage: str, role: str, ifname: str, containers: int = 2) -> str:
    return lab.plan(stage, containers).namespace(role).interface(ifname).mac


def test_an_error_names_the_operation_and_the_kernels_reason(lab):
    lab.up("veth")
    with Netlink(lab.ns("netns0")) as nl:
        with pytest.raises(KernelError, match=r"adding route 10\.9\.0\.0/16 in namespace "
                                              rf"'{lab.ns('netns0')}' failed: .*{BAD_GATEWAY}"):
            nl.add_route("10.9.0.0/16", "192.0.2.1")
        with pytest.raises(KernelError, match=r"creating bridge x{20} .*: Attribute failed policy"):
            nl.add_bridge("x" * 20, None)  # longer than IFNAMSIZ
        nl.add_address("ceth0", "172.18.0.10/16")  # already there: fine, as is a second delete
        nl.del_route("10.9.0.0/16", "192.0.2.1")


def test_a_failure_in_the_middle_of_a_batch_is_raised_and_the_rest_is_run(lab):
    lab.up("veth")
    wanted = [f"10.{1 + k // 250}.{k % 250}.1/32" for k in range(3 * BATCH_MESSAGES)]
    queued = []
    with Netlink(lab.ns("netns0")) as nl:
        with pytest.raises(KernelError, match=rf"adding route 10\.9\.0\.0/16 .*{BAD_GATEWAY}"):
            with nl.batch():  # sent BATCH_MESSAGES at a time: the failures are in the second send
                for k, cidr in enumerate(wanted):
                    nl.add_address("ceth0", cidr)
                    queued.append(cidr)
                    if k == BATCH_MESSAGES + 20:
                        nl.add_route("10.9.0.0/16", "192.0.2.1")
                        nl.add_route("10.8.0.0/16", "192.0.2.2")  # fails too: the first is named
        assert BATCH_MESSAGES + 20 < len(queued) < len(wanted)  # raised as the second part went
        assert set(queued) <= {cidr for _, cidr in nl.addresses()}  # ... after running all of it
        with nl.batch():  # failures in a call's "fine" list are not raised
            nl.add_address("ceth0", wanted[0])
            nl.del_route("10.9.0.0/16", "192.0.2.1")
            nl.del_address("ceth0", "10.99.0.1/32")


def test_created_veths_are_echoed_with_their_peers_index(lab):
    lab.up("veth")
    inside = lab.ns("netns0")
    with Netlink(lab.ns("host")) as nl:
        with nl.batch():
            nl.add_veth("tv0", "02:00:00:00:aa:01", "tp0", inside, "02:00:00:00:aa:02", echo=True)
            nl.add_veth("tv1", None, "tp1", inside, None, up=True, echo=True)
        nl.add_veth("tv2", None, "tp2", inside, None, echo=True)  # not batched
        created, here = nl.created, {link.name: link for link in nl.links()}
    with Netlink(inside) as nl:
        peers = {link.name: link for link in nl.links()}
    assert sorted(created) == ["tv0", "tv1", "tv2"]
    for k in range(3):
        echo = created[f"tv{k}"]
        assert echo.link == peers[f"tp{k}"].index and echo.link_netnsid is not None
        assert (echo.index, echo.kind) == (here[f"tv{k}"].index, "veth")
    assert created["tv0"].mac == "02:00:00:00:aa:01" and peers["tp0"].mac == "02:00:00:00:aa:02"
    assert here["tv1"].up and not here["tv0"].up
    with pytest.raises(dataclasses.FrozenInstanceError):   # a record of what the kernel said
        here["tv1"].up = False


def test_neighbours_after_pinging_a_peer_and_an_absent_address(lab):
    lab.up("bridge")
    assert lab.ping("netns0", "172.18.0.20")
    assert not lab.ping("netns0", "172.18.0.99", timeout=0.3)

    async def read():  # as a notebook calls it: its kernel runs an asyncio loop
        with Netlink(lab.ns("netns0")) as nl:
            return {n["ip"]: n for n in nl.neighbours()}, nl.index("ceth0")

    table, ceth0 = asyncio.run(read())
    assert table["172.18.0.20"] == {"ifindex": ceth0, "ip": "172.18.0.20", "state": "REACHABLE",
                                    "mac": mac_of(lab, "bridge", "netns1", "ceth1")}
    absent = table["172.18.0.99"]
    assert absent["state"] in ("INCOMPLETE", "FAILED") and absent["mac"] is None


def test_fdb_shows_each_containers_mac_learned_on_its_port(lab):
    lab.up("bridge", containers=3)
    assert lab.ping("netns0", "172.18.0.20") and lab.ping("netns1", "172.18.0.30")
    with Netlink(lab.ns("host")) as nl:
        index = {link.name: link.index for link in nl.links()}
        fdb = nl.fdb()
    br0 = index["br0"]
    learned = {e["mac"]: e["ifindex"] for e in fdb if e["master"] == br0 and not e["permanent"]}
    for k in range(3):
        assert learned.get(mac_of(lab, "bridge", f"netns{k}", f"ceth{k}", 3)) == index[f"veth{k}"], k
    own = [e for e in fdb if e["mac"] == mac_of(lab, "bridge", "host", "br0")]
    assert [(e["ifindex"], e["master"], e["permanent"], e["vlan"]) for e in own] == [(br0, br0, True, None)]


def test_conntrack_shows_the_masquerade_from_inside_a_running_event_loop(lab):
    lab.up("outside")
    assert lab.ping("netns0", plan.PUBLIC_SERVER)
    assert lab.exec("netns0", CURL + [f"http://{plan.PUBLIC_SERVER}/"]).returncode == 0

    async def read():
        return conntrack.connections(lab.ns("host"))

    ours = {c.proto: c for c in asyncio.run(read())
            if (c.original.src, c.original.dst) == ("172.18.0.10", plan.PUBLIC_SERVER)}
    assert set(ours) == {"icmp", "tcp"}
    for c in ours.values():
        assert (c.reply.src, c.reply.dst) == (plan.PUBLIC_SERVER, plan.HOST_ADDRESS)
        assert c.snat and not c.dnat
    tcp = ours["tcp"]
    assert (tcp.original.dport, tcp.reply.sport, tcp.reply.dport) == (80, 80, tcp.original.sport)
    assert tcp.state in ("TIME_WAIT", "CLOSE")
    assert ours["icmp"].state == "REPLIED" and ours["icmp"].original.sport is None


def test_conntrack_shows_the_published_port_translated(lab):
    lab.up("publish")
    assert lab.exec("world", CURL + ["http://10.0.2.15:5000/"]).returncode == 0
    published = [c for c in conntrack.connections(lab.ns("host"))
                 if c.proto == "tcp" and (c.original.dst, c.original.dport) == (plan.HOST_ADDRESS, 5000)]
    assert len(published) == 1
    c = published[0]
    assert c.dnat and not c.snat and c.original.src == plan.WORLD_ADDRESS
    assert (c.reply.src, c.reply.sport, c.reply.dst) == ("172.18.0.10", 5000, plan.WORLD_ADDRESS)


def test_conntrack_of_a_missing_namespace_says_so():
    with pytest.raises(UnknownName, match="labkit-no-such-namespace"):
        conntrack.connections("labkit-no-such-namespace")


def test_pyroute2_is_imported_by_the_first_kernel_call_not_by_the_import():
    code = ("import sys, labkit.kernel.netlink as n, labkit.kernel.conntrack\n"
            "print('pyroute2' in sys.modules)\n"
            "try:\n    n.Netlink('labkit-no-such-namespace')\nexcept LookupError:\n    pass\n"
            "print('pyroute2' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout.split()) == (0, ["False", "True"]), out.stderr
