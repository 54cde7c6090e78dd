"""The files `ip netns exec NAME` binds over /etc: /etc/netns/NAME/hosts and resolv.conf.

labkit writes there a hosts file naming every lab address and a resolv.conf whose only
nameserver is 127.0.0.1, where nothing listens: a lookup is answered from the hosts file or
refused at once, never after http.server's ~10 s wait for an unreachable DNS server (the names
stage writes its containers' own: labkit.lab.names). Each file or directory is journaled
before it is made, so `labkit down` and `labkit clean` remove it; /etc/netns itself is
removed only if labkit made it (MADE_MARKER).
"""
from __future__ import annotations

import contextlib
import os
import socket

from ..kernel import netns, places
from ..model import plan
from ..model.topology import Topology


def etc_dir() -> str:
    """Where `ip netns exec` looks for per-namespace /etc files (LABKIT_ETC_NETNS, /etc/netns)."""
    return places.current().etc_dir


# -- name resolution -----------------------------------------------------------------------------

def hosts_text(topology: Topology) -> str:
    """A hosts file naming every address of `topology` by its namespace role, and the machine's
    own name (namespaces share it: sudo, typed in a lab namespace, resolves it)."""
    lines = ["127.0.0.1\tlocalhost", f"127.0.1.1\t{socket.gethostname()}"]  # sudo looks it up
    for address, (role, _itf) in sorted(topology.addresses().items(),
                                         key=lambda kv: _address_key(kv[0])):
        name = "public-server" if address in (plan.PUBLIC_SERVER, _PUBLIC_SERVER6) else role
        lines.append(f"{address}\t{name}")
    return "\n".join(lines) + "\n"


_PUBLIC_SERVER6 = "2001:db8:80::80"   # labkit.model.six.PUBLIC_SERVER6


def _address_key(address: str) -> tuple[bool, bytes]:  # IPv4 in numeric order, then IPv6
    return ":" in address, socket.inet_pton(socket.AF_INET6 if ":" in address else socket.AF_INET, address)


RESOLV_CONF = ("# labkit: no DNS server in this lab; names come from /etc/hosts (this namespace's)\n"
               "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")


def write_resolver(topology: Topology, journal) -> list[str]:
    """Give each namespace of `topology` its own hosts and resolv.conf (journaled first).

    A directory /etc/netns/NAME that labkit did not make is left alone, except for files it
    lacks. Returns the files written."""
    if netns.netns_dir() != "/run/netns":
        return []  # nsenter, not `ip netns exec`: /etc/netns is not used
    from .names import files as names_files
    lab_files = {"hosts": hosts_text(topology), "resolv.conf": RESOLV_CONF}
    files = {}                 # path -> its text: the lab's, or a namespace's own (labkit.lab.names)
    directories, paths, journaled = [], [], []
    for ns in topology.namespaces:
        directory = os.path.join(etc_dir(), plan.namespace_name(topology.lab, ns.role))
        own = names_files(topology, ns, lab_files["hosts"], lab_files["resolv.conf"])
        files.update({os.path.join(directory, fname): text for fname, text in own.items()})
        ours = directory in journal.data["paths"]
        if not os.path.isdir(directory):
            directories.append(directory)
            journaled.append(directory)
            ours = True
        for fname in lab_files:
            path = os.path.join(directory, fname)
            if ours:
                paths.append(path)  # goes with its directory
            elif not os.path.lexists(path) or path in journal.data["paths"]:
                paths.append(path)
                journaled.append(path)
    journal.add_paths(journaled)  # one journal write for the whole lab, before anything is made
    for directory in directories:
        _make_namespace_dir(directory)
    first: dict[tuple[str, str], str] = {}
    for path in paths:
        key = (os.path.basename(path), files[path])
        if key in first and key[0] == "hosts" and not os.path.lexists(path):
            os.link(first[key], path)  # one copy per lab and text; `ip netns exec` bind-mounts it
            continue
        if (key not in first or key[0] != "hosts") and os.path.lexists(path) \
                and os.stat(path).st_nlink > 1:
            os.unlink(path)            # linked to another namespace's: a copy of its own now
                                       # (resolv.conf always: a person may edit one container's)
        with open(path, "w") as f:
            f.write(files[path])
        first.setdefault(key, path)
    return paths


MADE_MARKER = ".made-by-labkit"
"""A file in /etc/netns saying labkit made the directory (`ip netns exec` reads only the
directories named after namespaces, so it is never bound over /etc)."""


def _make_etc_dir() -> None:
    """Create /etc/netns if it is missing, marked as labkit's (only then is it removed)."""
    try:
        os.makedirs(os.path.dirname(etc_dir()), exist_ok=True)
        os.mkdir(etc_dir())
    except FileExistsError:
        return
    with open(os.path.join(etc_dir(), MADE_MARKER), "w"):
        pass


def _make_namespace_dir(directory: str) -> None:
    """Create a namespace's directory in /etc/netns, making /etc/netns (marked) first if needed.
    Never with makedirs: another lab's tidy_etc_dir may remove /etc/netns in between, and a
    /etc/netns made again as a side effect would have no marker and outlive every lab."""
    for _ in range(3):
        _make_etc_dir()
        try:
            os.mkdir(directory)
            return
        except FileExistsError:
            return
        except FileNotFoundError:      # removed by another lab's tidy since: make it again
            continue
    os.mkdir(directory)


def tidy_etc_dir() -> None:
    """Remove /etc/netns if labkit made it and nothing but its marker is left (every lab's
    directories in it are gone); one that existed before labkit is left, empty or not."""
    marker = os.path.join(etc_dir(), MADE_MARKER)
    try:
        if os.listdir(etc_dir()) != [MADE_MARKER]:
            return
    except FileNotFoundError:
        return
    with contextlib.suppress(FileNotFoundError):
        os.unlink(marker)
    try:
        os.rmdir(etc_dir())
    except FileNotFoundError:
        pass
    except OSError:  # a lab wrote its directory there meanwhile: the directory stays labkit's
        with open(marker, "w"):
            pass
