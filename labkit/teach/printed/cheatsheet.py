"""Cheat sheets: one A4 page per stage, to keep beside the keyboard.

    body()          every stage's sheet, one per page (HTML for page.page)
    sheet(stage)    one stage's: how to start and check it, the seed's commands of the stage
                    (where each is typed, what it does: labkit.model.seed), and the commands
                    that show the result (`ip -br addr`, `ip route get`, `bridge link`,
                    `iptables -t nat -S -v`, `conntrack -L`, `tcpdump -ni`), with what to look for
"""
from __future__ import annotations

import html

from ...model import plan, seed
from ...model.stages import DESCRIPTIONS, STAGES

C0, C1 = plan.container_address(0), plan.container_address(1)
HOST, SERVER, BRIDGE = plan.HOST_ADDRESS, plan.PUBLIC_SERVER, plan.BRIDGE_ADDRESS
PORT = 5000

LOOK: dict[str, tuple[tuple[str, str, str], ...]] = {
    "veth": (
        ("host", "ip -br addr", f"veth0 UP, with {plan.host_veth_address(0)}/16"),
        ("netns0", "ip -br addr", f"lo and ceth0 UP; ceth0 holds {C0}/16"),
        ("host", f"ip route get {C0}", "the packet leaves by dev veth0"),
        ("host", f"ping -c1 {C0}", "one answer from netns0"),
        ("host", "tcpdump -ni veth0", "the echo request and its reply on the wire"),
    ),
    "two-veths": (
        ("host", "ip route", f"two routes for {plan.BRIDGE_NET}: dev veth0 and dev veth1"),
        ("host", f"ip route get {C1}", "dev veth0: the wire to netns0, not to netns1"),
        ("host", f"ping -c1 {C1}", "no answer"),
        ("host", "tcpdump -ni veth0 arp", f"who-has {C1}, asked on the wrong wire, unanswered"),
    ),
    "bridge": (
        ("host", "bridge link", "veth0 and veth1 are ports of br0"),
        ("host", "ip -br addr", f"br0 holds {BRIDGE}/16; the veths hold no address"),
        ("host", f"ip route get {C1}", "one route now: dev br0"),
        ("netns0", f"ping -c1 {C1}", "netns1 answers, through the bridge"),
        ("host", "tcpdump -ni br0", "the frames between the two containers"),
    ),
    "outside": (
        ("netns0", f"ip route get {SERVER}", f"via {BRIDGE} dev ceth0: the default route"),
        ("host", "sysctl net.ipv4.ip_forward", "= 1: the host forwards"),
        ("host", "iptables -t nat -S -v", "the MASQUERADE rule, with its packet counter"),
        ("netns0", f"ping -c1 {SERVER}", "an answer from the world"),
        ("host", "conntrack -L", f"the ping: sent from {C0}, answered to {HOST}"),
        ("host", "tcpdump -ni ens18 icmp", f"the source on the way out is {HOST}, not {C0}"),
    ),
    "publish": (
        ("netns0", "ss -ltn", f"the server listening on {C0}:{PORT}"),
        ("host", "iptables -t nat -S -v", "DNAT rules in PREROUTING and OUTPUT, with counters"),
        ("world", f"curl http://{HOST}:{PORT}/", "the page served by netns0"),
        ("host", f"conntrack -L -p tcp --dport {PORT}", f"the rewrite: {HOST}:{PORT} to {C0}:{PORT}"),
        ("host", f"tcpdump -ni br0 tcp port {PORT}", f"the SYN reaching {C0}:{PORT}"),
    ),
    "hairpin": (
        ("host", "sysctl net.ipv4.conf.br0.route_localnet", "= 1: 127.0.0.1 may leave by br0"),
        ("host", "iptables -t nat -S -v", "DNAT for 127.0.0.1, MASQUERADE for 127.0.0.0/8 and the hairpin"),
        ("host", "iptables -t raw -S -v", "the DROP of 127.0.0.0/8 arriving from the network"),
        ("host", f"curl http://127.0.0.1:{PORT}/", "the page served by netns0"),
        ("netns0", f"curl http://{HOST}:{PORT}/", "netns0 reaches its own published port"),
        ("host", f"conntrack -L -p tcp --dport {PORT}", "both rewrites of the hairpin connection"),
        ("host", f"tcpdump -ni br0 tcp port {PORT}", f"the packet comes back down from {BRIDGE}"),
    ),
}
"""For each stage: (where, command, what to look for) to see what the stage made."""
LOOK.update({
    "firewall": (
        ("host", "iptables -S FORWARD", "-P FORWARD DROP, then -j DOCKER-USER first"),
        ("host", "iptables -L -v -n -x", "each rule's counter: replies by RELATED,ESTABLISHED"),
        ("world", f"curl http://{HOST}:{PORT}/", "the page: DNATed, then accepted by DOCKER"),
        ("world", f"curl -m 2 http://{C0}:{PORT}/", "no answer: the direct route is refused"),
        ("host", "conntrack -L", "each connection and its state"),
    ),
    "isolated": (
        ("host", "iptables -S DOCKER-ISOLATION-STAGE-2", "-o br0 -j DROP, -o br1 -j DROP"),
        ("netns0", "ping -c1 172.19.0.10", "no answer: the networks are apart"),
    ),
    "names": (
        ("netns0", "cat /etc/resolv.conf", "nameserver 127.0.0.11"),
        ("netns0", "iptables -t nat -L OUTPUT -v -n", "127.0.0.11:53 DNATed to port 10053"),
        ("netns0", "getent hosts netns1", f"{C1}: answered by netns0's resolver"),
        ("netns0", "getent hosts public.example", f"{SERVER}: forwarded to the world"),
    ),
    "ipv6": (
        ("host", "ip -6 addr show dev br0", "fd00:172:18::1/64, and a link-local fe80::/64"),
        ("netns0", "ip -6 neigh", "fd00:172:18::1 and fe80:: neighbours, found by NDP"),
        ("host", "ip6tables -t nat -S", "MASQUERADE of fd00:172:18::/64; DNAT of port 5000"),
        ("netns0", "curl http://[2001:db8:80::80]/", "the page: the world sees 2001:db8:2::15"),
    ),
    "ipv6-routed": (
        ("world", "ip -6 route", "fd00:172:18::/64 via 2001:db8:2::15: no NAT66"),
        ("host", "ip6tables -S FORWARD", "only netns0's port 5000 let in from outside"),
        ("world", "curl -m 2 http://[fd00:172:18::10]:8080/", "no answer: that port is not let in"),
    ),
    "overlay": (
        ("host-a", "ip -d link show vxlan42", "vxlan id 42, local 10.0.3.1, dstport 4789, nolearning"),
        ("host-a", "bridge fdb show dev vxlan42", "00:00:00:00:00:00 dst 10.0.3.2: the flood entry"),
        ("netns0", "ip link show ceth0", "mtu 1450: room for the 50 bytes of VXLAN"),
        ("world", "tcpdump -ni br-under udp port 4789", "10.0.3.1 > 10.0.3.2, VXLAN vni 42, inner frame"),
    ),
})


def _code(text: str) -> str:
    return f"<code>{html.escape(text)}</code>"


def _rows(rows) -> str:
    """Table rows of (where, command or commands, what); several commands stack in one cell."""
    return "".join(f'<tr><td class="lk-where">{html.escape(w)}</td>'
                   f"<td>{''.join(_code(x) for x in ([c] if isinstance(c, str) else c))}</td>"
                   f"<td>{html.escape(d)}</td></tr>" for w, c, d in rows)


def _runs(rows) -> list[tuple[str, list]]:
    """(where, its rows) for each run of consecutive rows typed in one place."""
    runs: list[tuple[str, list]] = []
    for row in rows:
        if runs and runs[-1][0] == row[0]:
            runs[-1][1].append(row)
        else:
            runs.append((row[0], [row]))
    return runs


LONG = 14   # a stage with more steps prints its commands alone (`labkit practice` says what each
            # does), stacked by the place they are typed in, to keep to one page


def sheet(stage: str) -> str:
    """The cheat sheet of `stage`, as an HTML section one page long."""
    steps = seed.steps(stage)
    build = [(s.where, s.command, s.does + ("" if s.seed else " (labkit's; not in the seed)"))
             for s in steps]
    where = sorted({s.where for s in steps} | {w for w, _, _ in LOOK[stage]})
    if len(build) > LONG:       # one page still: the commands alone, one row per place typed in
        build = [(w, [c for _, c, _ in rows], "") for w, rows in _runs(build)]
    return (f'<section class="lk-sheet" id="sheet-{stage}"><h1>Stage {html.escape(stage)}: cheat sheet</h1>'
            f"<p>{html.escape(DESCRIPTIONS[stage])}.</p>"
            f"<p>Start where the stage starts: {_code(f'sudo labkit practice {stage}')}; "
            f"see what is missing: {_code(f'sudo labkit check {stage}')}; the whole stage at "
            f"once: {_code(f'sudo labkit up {stage}')}. Type each command in a shell in its "
            f"namespace: " + ", ".join(_code(f"sudo ip netns exec {w} bash") for w in where) + ".</p>"
            f"<h2>Build it: the seed's commands</h2><table><thead><tr><th>in</th><th>command</th>"
            f"<th>what it does</th></tr></thead><tbody>{_rows(build)}</tbody></table>"
            f"<h2>Look at the result</h2><table><thead><tr><th>in</th><th>command</th>"
            f"<th>what to look for</th></tr></thead><tbody>{_rows(LOOK[stage])}</tbody></table>"
            "</section>")


def body() -> str:
    """Every stage's cheat sheet, in the course's order, one per page."""
    return "".join(sheet(stage) for stage in STAGES)
