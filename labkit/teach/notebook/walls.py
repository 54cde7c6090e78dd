"""Notebook helpers of the firewall and names lessons (09, 10): packets no command sends, and
what a DNS server did for one lookup, each printed the same way every run.

    walls.stray_icmp(lab)              the world sends netns0 an ICMP error about a packet netns0
                                       never sent (conntrack calls it INVALID)
    walls.lookup(lab, "netns0", "public.example")
                                       getent in netns0, and the lines the resolvers logged for it
"""
from __future__ import annotations

import os
import socket

from ...kernel import netns, privilege
from ...model import plan
from .lesson import Said


def stray_icmp(lab, source: str = "world", target: str = plan.container_address(0)) -> Said:
    """From `source`, an ICMP port unreachable to `target` about a UDP packet `target` never
    sent (to 10.0.2.2:2222 from port 1111): no connection of conntrack's matches it."""
    privilege.require()
    from scapy.layers.inet import ICMP, IP, UDP
    src = plan.WORLD_ADDRESS if source == "world" else None
    packet = IP(src=src, dst=target) / ICMP(type=3, code=3) / \
        IP(src=target, dst=plan.WORLD_ADDRESS) / UDP(sport=1111, dport=2222)
    with netns.entered(lab.ns(source)):
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    try:
        sock.sendto(bytes(packet), (target, 0))
    finally:
        sock.close()
    return Said(f"{source} sent {target} an ICMP port unreachable about UDP {target}:1111 -> "
                f"{plan.WORLD_ADDRESS}:2222, a packet {target} never sent")


def udp_refused(lab, source: str, address: str, port: int) -> Said:
    """One UDP datagram from namespace `source` to `address`:`port` (a connected socket), and
    whether an ICMP port unreachable came back within 2 s (the socket says so)."""
    privilege.require()
    with netns.entered(lab.ns(source)):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.connect((address, port))
        sock.send(b"x")
        sock.settimeout(2)
        try:
            sock.recv(1)
            said = "an answer came back"
        except ConnectionRefusedError:
            said = "ConnectionRefusedError: an ICMP port unreachable came back"
        except socket.timeout:
            said = "no answer, no ICMP error: timed out"
    finally:
        sock.close()
    return Said(f"{source} sent one UDP datagram to {address}:{port}; {said}")


def _log(lab, role: str, port: int) -> str:
    from ...lab.service import services_dir
    return os.path.join(services_dir(lab.name), f"{role}-{port}.log")


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _settled(paths: list[str], timeout: float = 1.0) -> None:
    """Poll until the logs stop growing (dnsmasq may log a reply just after sending it)."""
    import time
    deadline = time.monotonic() + timeout
    sizes = [_size(p) for p in paths]
    while time.monotonic() < deadline:
        time.sleep(0.03)
        now = [_size(p) for p in paths]
        if now == sizes:
            return
        sizes = now


def lookup(lab, role: str, name: str, family: str = "ahosts") -> Said:
    """`getent ahostsv4 NAME` in namespace `role` (IPv4 only: one question, type A), and what
    the resolvers logged meanwhile (netns's own at 127.0.0.11, the world's at 10.0.2.2),
    dnsmasq's process id left out."""
    from ...model import stages
    privilege.require()
    logs = {f"{role}'s resolver": _log(lab, role, stages.RESOLVER_PORT),
            "the world's DNS server": _log(lab, "world", 53)}
    start = {who: _size(path) for who, path in logs.items()}
    result = lab.exec(role, ["getent", "ahostsv4", name], timeout=15)
    _settled(list(logs.values()))
    answer = sorted({line.split()[0] for line in result.stdout.splitlines() if line.split()})
    lines = [f"$ getent ahostsv4 {name}    (in {role})",
             f"  {' '.join(answer) if answer else 'not found'}"]
    for who, path in logs.items():
        try:
            with open(path) as f:
                f.seek(start[who])
                said = [line.split("]: ", 1)[-1].strip() for line in f.read().splitlines()
                        if "]: " in line]
        except OSError:
            said = []
        lines.append(f"{who} logged:")
        lines += [f"  {line}" for line in said] or ["  (nothing)"]
    return Said("\n".join(lines))
