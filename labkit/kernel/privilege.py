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
            f"this process runs as {who} without {', '.join(missing)}. Run it in a privileged Linux "
            f"VM as root (sudo labkit ..., or start JupyterLab with sudo); containers need "
            f"--privileged, and hosted notebook services (Binder) cannot run the cells.")


def require_tool(tool: str) -> str:
    """Path of `tool`, or raise MissingTool naming the Debian package to install."""
    found = shutil.which(tool)
    if not found:
        package = TOOLS.get(tool, tool)
        raise MissingTool(f"the command `{tool}` is not installed: apt-get install {package}")
    return found
