"""The one privilege check, and checks for the system tools labkit runs."""
from __future__ import annotations

import os
import shutil

from ..errors import MissingTool, NotPrivileged

CAP_SYS_ADMIN = 21
CAP_NET_ADMIN = 12

# tool -> Debian package that provides it
TOOLS = {"ip": "iproute2", "nft": "nftables", "iptables": "iptables", "ping": "iputils-ping",
         "curl": "curl", "tshark": "tshark", "tcpdump": "tcpdump"}


def capabilities() -> int:
    """The effective capability mask of this process."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def missing_capabilities() -> list[str]:
    """Names of the capabilities labkit needs that this process lacks."""
    caps = capabilities()
    return [name for name, bit in (("CAP_NET_ADMIN", CAP_NET_ADMIN), ("CAP_SYS_ADMIN", CAP_SYS_ADMIN))
            if not caps & (1 << bit)]


def require() -> None:
    """Raise NotPrivileged unless the process may create namespaces and configure networks."""
    missing = missing_capabilities()
    if missing:
        who = "root" if os.geteuid() == 0 else f"uid {os.geteuid()}"
        raise NotPrivileged(
            f"labkit needs root with CAP_NET_ADMIN and CAP_SYS_ADMIN to create network namespaces; "
            f"this process runs as {who} without {', '.join(missing)}. {_how(os.geteuid())}")


def world_problem() -> str:
    """Why this user's world could not be made, as the Jupyter launcher found ("" if it was,
    or was not tried): LABKIT_WORLD_PROBLEM, which labkit.kernel.launcher sets."""
    return os.environ.get("LABKIT_WORLD_PROBLEM", "")


def _how(euid: int) -> str:
    """How to run labkit, for a process without the capabilities."""
    root = ("Run it in a privileged Linux VM as root (sudo labkit ..., or start JupyterLab with "
            "sudo); containers need --privileged, and hosted notebook services (Binder) cannot "
            "run the cells.")
    if euid == 0:
        return root
    if world_problem():
        return f"Your own world of user namespaces could not be made: {world_problem()}"
    return ("As a normal user, labkit works in a world of your own: run the labkit command as you "
            "are (`labkit up STAGE`, `labkit shell` for a root shell there), and in Jupyter the "
            "kernel \"Python (labkit lab)\" (`labkit install-kernel --user`); a script enters it "
            "first thing with labkit.kernel.world.enter(). Or: " + root[0].lower() + root[1:])


def require_tool(tool: str) -> str:
    """Path of `tool`, or raise MissingTool naming the Debian package to install."""
    found = shutil.which(tool)
    if not found:
        package = TOOLS.get(tool, tool)
        raise MissingTool(f"the command `{tool}` is not installed: apt-get install {package}")
    return found
