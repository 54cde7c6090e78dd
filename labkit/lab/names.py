"""Names in containers (the `names` stage): a resolver at 127.0.0.11 in each container, as
Docker's embedded DNS server on a user-defined network.

Each container of the stage runs its own DNS server (Debian's dnsmasq, a `dns` service of the
stage's blueprint) inside its own namespace, on 127.0.0.11 at port RESOLVER_PORT (Docker's
resolver listens there at a random port). Two nat rules in the container's own namespace send
what the container asks of 127.0.0.11:53, UDP and TCP, to that port, as Docker's do:

    iptables -t nat -A OUTPUT -d 127.0.0.11 -p udp --dport 53 -j DNAT --to-destination 127.0.0.11:10053
    iptables -t nat -A OUTPUT -d 127.0.0.11 -p tcp --dport 53 -j DNAT --to-destination 127.0.0.11:10053

(conntrack undoes the DNAT on the answer, so it comes from 127.0.0.11:53). The container's
/etc/resolv.conf (labkit writes /etc/netns/NETNS/resolv.conf, which `ip netns exec` binds over
/etc) names 127.0.0.11 alone; its hosts file names only itself, as Docker's does, so another
container's name is found by DNS. The resolver answers the containers' names and forwards
every other name to the world's DNS server (10.0.2.2:53), which answers public.example. The
host's resolv.conf names the world's server too: it is the lab's LAN resolver.

The rules are made with the lab's NAT tool (iptables or nft: labkit.nat's backends, which
work in any namespace) and journaled (record "names") before they are made; converging to a
stage without names takes them out of the containers that stay. `down` needs nothing more:
the containers' namespaces, and their rules, go.
"""
from __future__ import annotations

import socket

from ..kernel import netns
from ..model import plan, stages
from ..model.topology import Namespace, Service, Topology
from ..nat.rules import Rule

JOURNAL_KEY = "names"
RESOLV_CONF = ("# labkit: the resolver in this container, at Docker's 127.0.0.11 (the names stage)\n"
               f"nameserver {stages.RESOLVER}\noptions ndots:0 timeout:1 attempts:2\n")
HOST_RESOLV_CONF = ("# labkit: the lab's LAN resolver, the world's DNS server (the names stage)\n"
                    f"nameserver {stages.WORLD_DNS}\noptions timeout:1 attempts:2\n")


def resolvers(topology: Topology) -> dict[str, int]:
    """role -> port of each namespace whose resolver listens on 127.0.0.11."""
    return {s.namespace: s.port for s in topology.services
            if s.address == stages.RESOLVER and s.port and s.argv[:1] == ("dnsmasq",)}


def dnat_rules(port: int) -> list[Rule]:
    """The container's own nat rules: 127.0.0.11:53 (UDP and TCP) to its resolver's port."""
    return [Rule("nat", "OUTPUT", "DNAT", daddr=stages.RESOLVER, proto=proto, dport=53,
                 to=f"{stages.RESOLVER}:{port}",
                 why=f"the container's queries to {stages.RESOLVER}:53/{proto} go to its resolver")
            for proto in ("udp", "tcp")]


def commands(port: int = stages.RESOLVER_PORT, tool: str = "iptables") -> list[str]:
    """What a person types in the container for its two rules."""
    from ..nat.rules import nft_commands
    rules = dnat_rules(port)
    if tool == "iptables":
        return [r.iptables_command() for r in rules]
    return nft_commands(rules)


# -- the files `ip netns exec` binds over /etc ---------------------------------------------------

def files(topology: Topology, ns: Namespace, hosts: str, resolv: str) -> dict[str, str]:
    """hosts and resolv.conf of namespace `ns`: the lab's (`hosts`, `resolv`) unless the
    stage gives it a resolver (then its own name only, and 127.0.0.11) or it is the host of a
    lab with resolvers (the world's DNS server)."""
    served = resolvers(topology)
    if ns.role in served:
        own = [f"{cidr.split('/')[0]}\t{ns.role}" for itf in ns.interfaces for cidr in itf.addresses]
        return {"hosts": "\n".join(["127.0.0.1\tlocalhost", f"127.0.1.1\t{socket.gethostname()}"]
                                   + own) + "\n", "resolv.conf": RESOLV_CONF}
    if served and ns.kind == "host":
        return {"hosts": hosts, "resolv.conf": HOST_RESOLV_CONF}
    return {"hosts": hosts, "resolv.conf": resolv}


def unpointed(topology: Topology, etc_dir: str, resolv: str) -> None:
    """Give each container with a resolver the lab's resolv.conf `resolv` (labkit.lab.service's:
    127.0.0.1, where nothing listens) again, as before the stage: what a person practising it
    changes (the files are journaled)."""
    import os
    if netns.netns_dir() != "/run/netns":
        return
    for role in resolvers(topology):
        path = os.path.join(etc_dir, plan.namespace_name(topology.lab, role), "resolv.conf")
        if os.path.exists(path):
            with open(path, "w") as f:
                f.write(resolv)


# -- the rules in each container -----------------------------------------------------------------

class _Book:
    """A backend's bookkeeping for one namespace, inside the journal's record."""

    def __init__(self, journal, kernel: str):
        self.journal, self.kernel = journal, kernel

    def get(self):
        return (self.journal.get(JOURNAL_KEY) or {}).get("books", {}).get(self.kernel)

    def put(self, value) -> None:
        record = dict(self.journal.get(JOURNAL_KEY) or {})
        books = dict(record.get("books", {}))
        books[self.kernel] = value
        record["books"] = books
        self.journal.record(JOURNAL_KEY, record)


def converge(topology: Topology, journal, backend: str) -> None:
    """Give each container with a resolver its two rules (with `backend`'s tool), and take
    them out of the namespaces that had them and no longer need them (or had them with
    another tool)."""
    from ..nat.api import backend_module
    lab = topology.lab
    wanted = {plan.namespace_name(lab, role): port for role, port in resolvers(topology).items()}
    record = dict(journal.get(JOURNAL_KEY) or {})
    old_backend = record.get("backend")
    for kernel in list(record.get("namespaces", [])):
        if kernel in wanted and old_backend == backend:
            continue
        if netns.exists(kernel) and old_backend:
            backend_module(old_backend).remove(kernel, _Book(journal, kernel))
        _forget(journal, kernel)
    if not wanted:
        if journal.get(JOURNAL_KEY):
            journal.record(JOURNAL_KEY, None)
        return
    record = dict(journal.get(JOURNAL_KEY) or {})
    record.update(backend=backend, namespaces=sorted(set(record.get("namespaces", [])) | set(wanted)))
    journal.record(JOURNAL_KEY, record)
    module = backend_module(backend)
    module.require()
    for kernel, port in wanted.items():
        module.apply(kernel, dnat_rules(port), _Book(journal, kernel))


def _forget(journal, kernel: str) -> None:
    record = dict(journal.get(JOURNAL_KEY) or {})
    record["namespaces"] = [n for n in record.get("namespaces", []) if n != kernel]
    books = dict(record.get("books", {}))
    books.pop(kernel, None)
    record["books"] = books
    journal.record(JOURNAL_KEY, record)


def resolver_service(topology: Topology, role: str) -> Service | None:
    """The resolver the stage runs in namespace `role` (None: none)."""
    return next((s for s in topology.services if s.namespace == role
                 and s.address == stages.RESOLVER), None)
