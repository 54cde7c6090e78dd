"""Benchmark: capture a burst of UDP frames on a veth with labkit, scapy's AsyncSniffer
(defaults) and tcpdump -w; print frames captured, drops and capture rate.

    sudo .venv/bin/python benchmarks/capture_burst.py [N ...]     (default: 20000 100000)
    sudo .venv/bin/python benchmarks/capture_burst.py --largest   (labkit only: double N until loss)

A lab of its own (stage `veth`, removed afterwards) carries the burst: a raw packet socket in
netns0 sends N copies of one scapy-built frame (labkit.capture.frames) out of ceth0 to 172.18.0.11 (veth0, the host side); each tool
captures at host:veth0 with the filter "udp and dst port 9". sent/s: the sender's rate;
captured/s: frames in the tool's hands / time from the first frame sent until the tool had
the last one (labkit: wait() returned; tcpdump: its file last grew; AsyncSniffer: its count
last grew; both polled every 20-50 ms; tcpdump -w writes through a buffer, so its file
grows in steps). With 2 points labkit captures every frame twice (ceth0 out, veth0 in). AsyncSniffer runs in a process inside
the host namespace (it cannot follow a setns, scapy#3467); it reports no kernel drop count,
so its drops are frames sent minus frames captured.
"""
from __future__ import annotations

import os
import random
import signal
import string
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from labkit.kernel import netns
from labkit.capture import pcap  # noqa: E402
from labkit.capture import Capture  # noqa: E402
from labkit.lab import Lab  # noqa: E402

FILTER = "udp and dst port 9"
SNIFFER = r"""
import sys, threading, time
from scapy.all import AsyncSniffer
ready = threading.Event()
sniffer = AsyncSniffer(iface=sys.argv[1], filter=sys.argv[2], store=True,
                       started_callback=ready.set)
sniffer.start()
ready.wait(30)
print("ready", flush=True)
sys.stdin.readline()            # the burst has been sent
last, since = -1, time.time()
while time.time() - since < 1.0:   # until nothing new arrives for 1 s
    if sniffer.count != last:
        last, since = sniffer.count, time.time()
    time.sleep(0.05)
sniffer.stop()
print(len(sniffer.results), since, flush=True)
"""


def send(lab: Lab, n: int) -> tuple[float, float]:
    """Send the burst; returns (first frame sent, last frame sent) as epoch seconds."""
    mac = lab.exec("host", ["cat", "/sys/class/net/veth0/address"], check=True).stdout.strip()
    out = lab.exec("netns0", [sys.executable, "-m", "labkit.capture.frames", "burst", "ceth0", mac, "172.18.0.10",
                              "172.18.0.11", str(n)], check=True, timeout=300).stdout.split()
    return float(out[0]), float(out[1])


def with_labkit(lab: Lab, n: int, points: list[str]) -> dict:
    with Capture(points, lab=lab, filter=FILTER) as cap:
        t0, t1 = send(lab, n)
        cap.wait(count=n * len(points), timeout=120)
        done = time.time()
    stats = cap.packets.stats.values()
    return dict(captured=sum(s.captured for s in stats), drops=sum(s.dropped for s in stats),
                seconds=done - t0, sent=t1 - t0,
                note=f"{len(points)} point(s): " + ", ".join(str(s.captured) for s in stats))


def with_asyncsniffer(lab: Lab, n: int) -> dict:
    proc = netns.spawn(lab.ns("host"), [sys.executable, "-c", SNIFFER, "veth0", FILTER],
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        t0, t1 = send(lab, n)
        proc.stdin.write("sent\n")
        proc.stdin.flush()
        captured, last = proc.stdout.readline().split()
        proc.wait(timeout=60)
    finally:
        proc.kill()
    return dict(captured=int(captured), drops=n - int(captured),
                seconds=float(last) - t0, sent=t1 - t0,
                note="drops = sent - captured")


def with_tcpdump(lab: Lab, n: int, directory: str) -> dict:
    target = os.path.join(directory, "tcpdump.pcap")
    proc = netns.spawn(lab.ns("host"), ["tcpdump", "-i", "veth0", "-n", "-w", target, FILTER],
                       stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert "listening on" in line, line
        t0, t1 = send(lab, n)
        size, since = -1, time.time()
        while time.time() - since < 1.0:        # until the file stops growing for 1 s
            now = os.path.getsize(target) if os.path.exists(target) else 0
            if now != size:
                size, since = now, time.time()
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=30)[1]
    finally:
        proc.kill()
    records = pcap.read_pcap(target)
    dropped = next((int(x.split()[0]) for x in err.splitlines() if "dropped by kernel" in x), -1)
    return dict(captured=len(records), drops=dropped, seconds=since - t0, sent=t1 - t0,
                note="drops from tcpdump's kernel count")


def main(sizes: list[int]) -> int:
    name = "bk" + "".join(random.choice(string.ascii_lowercase) for _ in range(4))
    print(f"{'frames':>7}  {'tool':<22} {'captured':>8} {'drops':>7} {'sent/s':>9} "
          f"{'captured/s':>10}  note")
    with Lab(name) as lab, tempfile.TemporaryDirectory() as tmp:
        lab.up("veth")
        lab.ping("netns0", "172.18.0.11")
        for n in sizes:
            runs = [("labkit", lambda: with_labkit(lab, n, ["host:veth0"])),
                    ("labkit, 2 points", lambda: with_labkit(lab, n, ["netns0:ceth0", "host:veth0"])),
                    ("AsyncSniffer defaults", lambda: with_asyncsniffer(lab, n)),
                    ("tcpdump -w", lambda: with_tcpdump(lab, n, tmp))]
            for tool, run in runs:
                r = run()
                print(f"{n:>7}  {tool:<22} {r['captured']:>8} {r['drops']:>7} "
                      f"{n / r['sent']:>9,.0f} {r['captured'] / r['seconds']:>10,.0f}  "
                      f"{r['note']}", flush=True)
    return 0


def largest(start: int = 100_000, limit: int = 1_600_000) -> None:
    """Double the burst until labkit (one point) loses a frame or `limit` is reached."""
    name = "bk" + "".join(random.choice(string.ascii_lowercase) for _ in range(4))
    with Lab(name) as lab:
        lab.up("veth")
        n = start
        while n <= limit:
            r = with_labkit(lab, n, ["host:veth0"])
            print(f"{n:>8}: captured {r['captured']}, dropped {r['drops']}, "
                  f"{r['captured'] / r['seconds']:,.0f} frames/s", flush=True)
            if r["captured"] != n or r["drops"]:
                break
            n *= 2


if __name__ == "__main__" and sys.argv[1:2] == ["--largest"]:
    largest()
    sys.exit(0)
if __name__ == "__main__":
    sys.exit(main([int(a) for a in sys.argv[1:]] or [20_000, 100_000]))
