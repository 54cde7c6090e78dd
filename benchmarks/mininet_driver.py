"""Run by bridge.py inside a namespace of its own (ip netns exec bnm...-root, Debian's
/usr/bin/python3): Mininet's `mn --switch lxbr --controller none --topo single,N`, through its
Python API so that each phase can be timed.

    python3 mininet_driver.py N OUT.json [--ping]

Writes to OUT.json: monotonic times when the network was up and when stopping began, the
host shells' pids (so the caller can end exactly those if this process dies), and, with
--ping, whether h1 reached hN. Mininet.init() is skipped: its fixLimits() raises
machine-wide sysctls (fs.file-max, kernel.pty.max, net.core.*); only the process's own
rlimits are raised as it would. Never calls mininet.clean: it sweeps the machine by name.
"""
import json
import resource
import sys
import time

from mininet.log import setLogLevel
from mininet.net import Mininet
from mininet.nodelib import LinuxBridge
from mininet.topo import SingleSwitchTopo


def main() -> int:
    n, out = int(sys.argv[1]), sys.argv[2]
    ping = "--ping" in sys.argv[3:]
    for limit, value in ((resource.RLIMIT_NOFILE, 16384), (resource.RLIMIT_NPROC, 8192)):
        soft, hard = resource.getrlimit(limit)
        if soft != resource.RLIM_INFINITY and soft < value:
            resource.setrlimit(limit, (min(value, hard) if hard != resource.RLIM_INFINITY else value, hard))
    setLogLevel("error")
    Mininet.inited = True
    result = {"n": n}
    net = Mininet(topo=SingleSwitchTopo(k=n), switch=LinuxBridge, controller=None, build=False)
    try:
        net.build()
        result["pids"] = [h.pid for h in net.hosts] + [s.pid for s in net.switches]
        with open(out, "w") as f:
            json.dump(result, f)
        net.start()
        result["up_done"] = time.monotonic()
        if ping:
            first, last = net.hosts[0], net.hosts[-1]
            deadline = time.monotonic() + 10
            ok = False
            while not ok and time.monotonic() < deadline:
                ok = " 0% packet loss" in first.cmd("ping", "-c1", "-W1", last.IP())
            result["ping_ok"] = ok
    finally:
        result["down_start"] = time.monotonic()
        net.stop()
    with open(out, "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
