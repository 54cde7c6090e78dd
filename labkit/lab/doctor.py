"""`labkit doctor`: can this machine run labs? Privileges, kernel features, tools, and fixes."""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from ..kernel import privilege
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


def checks() -> list[Check]:
    """Every check, in order; later ones are skipped when privileges are missing."""
    missing = privilege.missing_capabilities()
    result = [Check("privileges", not missing,
                    "root with CAP_NET_ADMIN and CAP_SYS_ADMIN" if not missing
                    else f"uid {os.geteuid()}, missing {', '.join(missing)}",
                    "run labkit as root in a privileged Linux VM (sudo labkit ...)")]
    result.append(Check("netns support", os.path.exists("/proc/self/ns/net"),
                        "/proc/self/ns/net present", "use a kernel built with CONFIG_NET_NS"))
    for kind in ("veth", "bridge", "nftables"):
        if missing:
            result.append(Check(f"kernel {kind}", False, "not tried without privileges",
                                "run labkit doctor as root"))
        else:
            ok, detail = _kernel_feature(kind)
            result.append(Check(f"kernel {kind}", ok, detail, FIXES[kind]))
    for tool, package in privilege.TOOLS.items():
        path = shutil.which(tool)
        result.append(Check(f"tool {tool}", bool(path), path or "not found",
                            f"apt-get install {package}"))
    return result


def report(results: list[Check]) -> str:
    """Text report: one line per check, with the fix for each failure."""
    lines = []
    for c in results:
        lines.append(f"{'ok  ' if c.ok else 'FAIL'} {c.name:<16} {c.detail}")
        if not c.ok and c.fix:
            lines.append(f"     -> {c.fix}")
    return "\n".join(lines)
