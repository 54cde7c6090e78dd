"""Tables of what the kernel decided: conntrack entries (the NAT each implies, why answers come
back), the neighbour (ARP) table and the bridge FDB. Unit tests build tables from records
captured in real runs; kernel tests read them after real traffic between lab namespaces."""
import pytest

from labkit.kernel.conntrack import Connection, Ends
from labkit.teach.notebook import tables

CURL = ["curl", "-s", "--noproxy", "*", "--connect-timeout", "2", "-m", "4"]

# conntrack in the host namespace at stage publish after a curl from the world and a ping
# from netns0 to the public server (kernel.conntrack.connections, as read)
CONNECTIONS = [
    Connection("tcp", Ends("10.0.2.2", "10.0.2.15", 45004, 5000),
               Ends("172.18.0.10", "10.0.2.2", 5000, 45004), "TIME_WAIT", False, True),
    Connection("icmp", Ends("172.18.0.10", "203.0.113.80", None, None),
               Ends("203.0.113.80", "10.0.2.15", None, None), "REPLIED", True, False),
]
# a container reaching its own published port through the host (hairpin): both rewrites
HAIRPIN = Connection("tcp", Ends("172.18.0.10", "10.0.2.15", 51000, 5000),
                     Ends("172.18.0.10", "172.18.0.1", 5000, 51000), "TIME_WAIT", True, True)
# the host's neighbours at stage two-veths after `ping 172.18.0.20` from the host, plus a
# static entry; and its links
NEIGHBOURS = [{"ifindex": 3, "ip": "172.18.0.20", "mac": None, "state": "INCOMPLETE"},
              {"ifindex": 2, "ip": "10.0.2.2", "mac": "02:42:0a:00:02:02", "state": "STALE"},
              {"ifindex": 1, "ip": "127.0.0.9", "mac": "00:00:00:00:00:00", "state": "NOARP"}]
LINKS = {1: "lo", 2: "ens18", 3: "veth0", 4: "veth1", 5: "br0"}
# the host's FDB at stage bridge after netns0 and netns1 pinged each other (Netlink.fdb())
FDB = [{"ifindex": 2, "master": None, "mac": "33:33:00:00:00:01", "permanent": True, "vlan": None},
       {"ifindex": 2, "master": None, "mac": "01:00:5e:00:00:01", "permanent": True, "vlan": None},
       {"ifindex": 3, "master": 5, "mac": "02:42:ac:12:00:0a", "permanent": False, "vlan": None},
       {"ifindex": 3, "master": 5, "mac": "02:00:89:2c:2d:70", "permanent": True, "vlan": None},
       {"ifindex": 3, "master": None, "mac": "33:33:00:00:00:01", "permanent": True, "vlan": None},
       {"ifindex": 3, "master": None, "mac": "01:00:5e:00:00:01", "permanent": True, "vlan": None},
       {"ifindex": 4, "master": 5, "mac": "02:42:ac:12:00:14", "permanent": False, "vlan": None},
       {"ifindex": 4, "master": 5, "mac": "02:00:10:96:07:10", "permanent": True, "vlan": None},
       {"ifindex": 4, "master": None, "mac": "33:33:00:00:00:01", "permanent": True, "vlan": None},
       {"ifindex": 4, "master": None, "mac": "01:00:5e:00:00:01", "permanent": True, "vlan": None},
       {"ifindex": 5, "master": None, "mac": "33:33:00:00:00:01", "permanent": True, "vlan": None},
       {"ifindex": 5, "master": None, "mac": "01:00:5e:00:00:6a", "permanent": True, "vlan": None},
       {"ifindex": 5, "master": None, "mac": "33:33:00:00:00:6a", "permanent": True, "vlan": None},
       {"ifindex": 5, "master": None, "mac": "01:00:5e:00:00:01", "permanent": True, "vlan": None},
       {"ifindex": 5, "master": 5, "mac": "02:42:ac:12:00:01", "permanent": True, "vlan": None}]
OWNERS = {"02:42:ac:12:00:0a": "netns0:ceth0", "02:42:ac:12:00:14": "netns1:ceth1",
          "02:42:0a:00:02:02": "world:wan0"}


# ---- conntrack ------------------------------------------------------------------------------------

def test_conntrack_shows_both_tuples_and_the_nat_each_implies():
    t = tables.conntrack_table(CONNECTIONS, "t1-host")
    assert t.columns == ("proto", "original", "reply", "state", "NAT")
    assert t.rows == (
        ("icmp", "172.18.0.10 -> 203.0.113.80", "203.0.113.80 -> 10.0.2.15", "REPLIED",
         "SNAT 172.18.0.10 -> 10.0.2.15"),
        ("tcp", "10.0.2.2:45004 -> 10.0.2.15:5000", "172.18.0.10:5000 -> 10.0.2.2:45004", "TIME_WAIT",
         "DNAT 10.0.2.15:5000 -> 172.18.0.10:5000"))
    assert t.command == "sudo ip netns exec t1-host conntrack -L"
    assert tables.implied_nat(HAIRPIN) == ("DNAT 10.0.2.15:5000 -> 172.18.0.10:5000; "
                                           "SNAT 172.18.0.10:51000 -> 172.18.0.1:51000")
    assert "undoes both rewrites" in tables.why_back(HAIRPIN)
    assert tables.conntrack_table(list(reversed(CONNECTIONS)), "t1-host") == t   # sorted


def test_conntrack_filters_and_says_why_the_answer_returns():
    t = tables.conntrack_table(CONNECTIONS, "t1-host", proto="tcp", port=5000)
    assert [r[0] for r in t.rows] == ["tcp"] and t.entries == (CONNECTIONS[0],)
    assert t.command == "sudo ip netns exec t1-host conntrack -L -p tcp --dport 5000"
    why = [n for n in t.notes if n.startswith("Why the answer comes back")]
    assert why == ["Why the answer comes back: the answer 172.18.0.10:5000 -> 10.0.2.2:45004 "
                   "matches this entry's reply tuple, so the kernel rewrites its source back to "
                   "10.0.2.15:5000 (the entry undoes the DNAT, not a rule): the client sees the "
                   "address it asked."]
    icmp = tables.conntrack_table(CONNECTIONS, "t1-host", address="203.0.113.80")
    assert [r[0] for r in icmp.rows] == ["icmp"] and icmp.command.endswith("| grep -F 203.0.113.80")
    assert "undoes the SNAT" in str(icmp)
    none = tables.conntrack_table(CONNECTIONS, "t1-host", proto="udp")
    assert none.rows == () and "(no entries)" in str(none)
    assert "answers come back by routing alone" in str(none)


def test_a_table_is_text_and_html():
    t = tables.conntrack_table(CONNECTIONS, "t1-host")
    text = str(t)
    assert text.splitlines()[:3] == [
        "conntrack entries in t1-host", "$ sudo ip netns exec t1-host conntrack -L",
        "proto  original                          reply                               state      NAT"]
    assert repr(t) == text
    page = t._repr_html_()
    assert page.count("<tr>") == 3 and "<code>DNAT 10.0.2.15:5000 -&gt; 172.18.0.10:5000</code>" in page
    assert "max-width:100%" in page


# ---- neighbours and the FDB ------------------------------------------------------------------------

def test_an_unanswered_arp_leaves_an_entry_without_a_mac():
    t = tables.neighbours_table(NEIGHBOURS, LINKS, "t1-host", OWNERS)
    assert t.rows == (("10.0.2.2", "ens18", "02:42:0a:00:02:02", "answered", "world:wan0"),
                      ("172.18.0.20", "veth0", "(none)", "no answer", ""))
    assert t.command == "sudo ip netns exec t1-host ip -4 neigh show"
    assert "1 static entry (PERMANENT or NOARP) not shown" in str(t)
    assert len(tables.neighbours_table(NEIGHBOURS, LINKS, "t1-host", everything=True).rows) == 3
    on = tables.neighbours_table(NEIGHBOURS, LINKS, "t1-host", interface="veth0")
    assert [r[0] for r in on.rows] == ["172.18.0.20"] and on.command.endswith("dev veth0")
    assert [tables.state_word(s) for s in ("REACHABLE", "STALE", "FAILED", "INCOMPLETE", "PERMANENT")] \
        == ["answered", "answered", "no answer", "no answer", "static"]


def test_fdb_shows_what_the_bridge_learned_and_on_which_port():
    t = tables.fdb_table(FDB, LINKS, "t1-host", OWNERS)
    assert t.rows == (("br0", "veth0", "02:42:ac:12:00:0a", "learned", "netns0:ceth0"),
                      ("br0", "veth1", "02:42:ac:12:00:14", "learned", "netns1:ceth1"))
    assert t.command == "sudo ip netns exec t1-host bridge fdb show"
    assert "11 entries not shown: the bridge's and its ports' own MACs" in str(t)
    every = tables.fdb_table(FDB, LINKS, "t1-host", bridge="br0", everything=True)
    assert len(every.rows) == 5 and every.command.endswith("bridge fdb show br br0")
    assert tables.fdb_table(FDB, LINKS, "t1-host", bridge="br1").rows == ()


# ---- the kernel ---------------------------------------------------------------------------------------

@pytest.mark.kernel
def test_conntrack_shows_the_dnat_of_a_curl_to_the_published_port(lab):
    lab.up("publish")
    assert lab.exec("world", CURL + ["http://10.0.2.15:5000/"]).returncode == 0
    t = tables.conntrack(lab, proto="tcp", port=5000)
    (c,) = t.entries
    assert (c.original.src, c.original.dst, c.reply.src, c.reply.sport) == \
        ("10.0.2.2", "10.0.2.15", "172.18.0.10", 5000)
    (row,) = t.rows
    assert row[4] == "DNAT 10.0.2.15:5000 -> 172.18.0.10:5000"
    assert t.command == f"sudo ip netns exec {lab.ns('host')} conntrack -L -p tcp --dport 5000"


@pytest.mark.kernel
def test_the_arp_that_is_never_answered_at_stage_two_veths(lab):
    lab.up("two-veths")
    assert not lab.ping("host", "172.18.0.20")       # asked on veth0, where nobody has .20
    t = tables.neighbours(lab, "host")
    (row,) = [r for r in t.rows if r[0] == "172.18.0.20"]
    assert row[1:4] == ("veth0", "(none)", "no answer")
    (entry,) = [n for n in t.entries if n["ip"] == "172.18.0.20"]
    assert entry["state"] in ("INCOMPLETE", "FAILED")


@pytest.mark.kernel
def test_the_bridge_learns_each_containers_mac_on_its_port(lab):
    lab.up("bridge")
    assert lab.ping("netns0", "172.18.0.20") and lab.ping("netns1", "172.18.0.10")
    t = tables.fdb(lab)
    plan = lab.plan("bridge")
    learned = {(r[1], r[2], r[4]) for r in t.rows}
    for k in range(2):
        mac = plan.namespace(f"netns{k}").interface(f"ceth{k}").mac
        assert (f"veth{k}", mac, f"netns{k}:ceth{k}") in learned
    assert all(r[3] == "learned" for r in t.rows)
    neighbours = tables.neighbours(lab, "netns0")
    assert ("172.18.0.20", "ceth0", plan.namespace("netns1").interface("ceth1").mac, "answered",
            "netns1:ceth1") in neighbours.rows
