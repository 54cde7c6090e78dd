"""`labkit doctor`: can this machine run labs? Privileges, kernel features, tools, and fixes.

For a normal user it first says whether the machine lets the user have a world of user
namespaces, and if not, which of the usual causes refuses it and the fix
(labkit.kernel.userns.diagnose): disabled by a sysctl, restricted by AppArmor, blocked by a
container runtime's seccomp profile. For root it says whether normal users may have worlds."""
from __future__ import annotations

import errno
import os
import shutil
from dataclasses import dataclass

from ..kernel import privilege, userns, world
from ..errors import LabkitError


@dataclass(frozen=True)
class Check:
    """One check: its name, whether it passed, what was seen, and what to do if it failed."""
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _unused_name() -> str:
    """A namespace name for the probe that nothing uses (a namespace of that name that
    exists is someone else's, or a probe left by a doctor killed earlier: never ours to delete)."""
    from ..kernel import netns
    base = f"lkdoc{os.getpid() % 100000}"
    for i in range(100):
        name = f"{base}-{i}" if i else base
        if not os.path.lexists(netns.path(name)):
            return name
    raise LabkitError(f"namespaces {base} to {base}-99 all exist: delete the old probes "
                      f"(sudo ip netns delete NAME) and run labkit doctor again")


NFT_PROBE = ("table ip labkit_doctor {\n"
             " chain post { type nat hook postrouting priority srcnat; masquerade; }\n}\n")
FIXES = {"veth": "load the module: modprobe veth", "bridge": "load the module: modprobe bridge",
         "nftables": "load the modules: modprobe nf_tables nft_chain_nat nft_masq "
                     "(and apt-get install nftables)"}


def _kernel_feature(kind: str) -> tuple[bool, str]:
    """Try `kind` (a veth or bridge link, or an nftables NAT table) in a throwaway namespace
    (needs privileges)."""
    from ..kernel import netns
    from ..kernel.netlink import Netlink
    name = _unused_name()
    try:
        netns.create(name)
        if kind == "nftables":
            privilege.require_tool("nft")
            netns.run(name, ["nft", "-f", "-"], input=NFT_PROBE)
            return True, "a NAT table with a masquerade rule can be loaded"
        with Netlink(name) as nl:
            if kind == "veth":
                nl.add_veth("d0", None, "d1", None, None)
            else:
                nl.add_bridge("d0", None)
        return True, f"{kind} links can be created"
    except Exception as e:  # noqa: BLE001 - any failure is the answer
        return False, str(e)
    finally:
        netns.delete(name)


def world_check(data: dict, root: bool = False) -> Check:
    """The check "user namespaces" from `userns.probe()` data (plain logic: tested on data).
    For root (`root`), whose own probe proves nothing for others, only the sysctls count."""
    if root:
        data = {**data, "step": "unshare", "errno": errno.EPERM, "seccomp": "0"}
        problem, fix = userns.diagnose(data)
        if "sysctl" in fix:
            return Check("user namespaces", False, f"normal users get no world: {problem}", fix)
        return Check("user namespaces", True, "normal users may have worlds of their own")
    problem, fix = userns.diagnose(data)
    if problem:
        return Check("user namespaces", False, problem, fix)
    return Check("user namespaces", True, "this user may make a world of its own "
                 "(user, network and mount namespaces)")


def _world() -> list[Check]:
    """For a normal user: can a world be made, then enter it (the later checks run there)."""
    data = userns.probe()
    check = world_check(data)
    if not check.ok:
        return [check]
    try:
        entered = world.enter()
    except LabkitError as e:
        return [check, Check("world", False, str(e), "run labkit doctor from a shell, as yourself")]
    return [check, Check("world", True, f"your world runs ({entered.describe()}); the checks "
                         f"below run in it")]


def _capture_check() -> Check:
    """How captures keep bursts whole here: a 64 MiB receive buffer, or a TPACKET_V3 ring."""
    import socket
    from ..capture import ring, sockets
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    except OSError as e:
        return Check("captures", False, f"no packet socket: {e.strerror}", "run labkit as root")
    with sock:
        try:
            sock.setsockopt(socket.SOL_SOCKET, sockets.SO_RCVBUFFORCE, sockets.DEFAULT_BUFFER)
            return Check("captures", True, "a 64 MiB receive buffer per point (SO_RCVBUFFORCE)")
        except PermissionError:
            pass
        try:
            ring.Ring(sock, 2 * ring.BLOCK).close()
        except OSError as e:
            return Check("captures", False, f"SO_RCVBUFFORCE refused and no TPACKET_V3 ring: "
                         f"{e.strerror}", "a burst may lose frames; run labkit as root")
    return Check("captures", True, "a TPACKET_V3 ring per point (SO_RCVBUFFORCE is refused "
                 "here; the ring's size is not capped by net.core.rmem_max)")


def checks() -> list[Check]:
    """Every check, in order; later ones are skipped when privileges are missing. A normal
    user's doctor first checks user namespaces, then enters the user's world (which it
    starts if needed: call it before any thread starts, as the `labkit` command does)."""
    result = _world() if world.wanted() else []
    if os.geteuid() == 0 and userns.initial():
        result.append(world_check({"sysctls": userns.sysctls()}, root=True))
    missing = privilege.missing_capabilities()
    who = "root of your world" if world.joined() else "root"
    result.append(Check("privileges", not missing,
                        f"{who} with CAP_NET_ADMIN and CAP_SYS_ADMIN" if not missing
                        else f"uid {os.geteuid()}, missing {', '.join(missing)}",
                        "run labkit as root in a privileged Linux VM (sudo labkit ...)"))
    result.append(Check("netns support", os.path.exists("/proc/self/ns/net"),
                        "/proc/self/ns/net present", "use a kernel built with CONFIG_NET_NS"))
    result.append(machine_check(rules=not missing))
    for kind in ("veth", "bridge", "nftables"):
        if missing:
            result.append(Check(f"kernel {kind}", False, "not tried without privileges",
                                "run labkit doctor as root"))
        else:
            ok, detail = _kernel_feature(kind)
            result.append(Check(f"kernel {kind}", ok, detail, FIXES[kind]))
    if not missing:
        result.append(_capture_check())
    for tool, package in privilege.TOOLS.items():
        path = shutil.which(tool)
        result.append(Check(f"tool {tool}", bool(path), path or "not found",
                            f"apt-get install {package}"))
    return result


def machine_check(rules: bool = True) -> Check:
    """The machine's own network (a normal user's: the world's) holds nothing that carries a
    name, address or route of the stages (labkit.lab.misplaced.strays): a link of theirs
    there fails (typed outside a lab's shell, it collides with the course); an address or a
    rule is named (another tool, such as Docker, may use 172.18.0.0/16)."""
    from . import misplaced
    found = misplaced.strays(rules=rules)
    name, where = misplaced.machine_words()
    if not found:
        return Check("machine network", True, f"{name} holds none of the stages' names, "
                     f"addresses or routes")
    return Check("machine network", not any(s.key.startswith("link ") for s in found),
                 f"{name} holds " + "; ".join(s.what for s in found) + " (labkit did not make it)",
                 f"typed outside a lab's shell? remove it {where}: "
                 + "; ".join(s.remove for s in found))


def report(results: list[Check]) -> str:
    """Text report: one line per check, with the fix for each failure."""
    lines = []
    for c in results:
        lines.append(f"{'ok  ' if c.ok else 'FAIL'} {c.name:<16} {c.detail}")
        if not c.ok and c.fix:
            lines.append(f"     -> {c.fix}")
    return "\n".join(lines)
