"""Running a NAT tool (nft, iptables, iptables-save) inside a lab's namespace."""
from __future__ import annotations

import shutil
import subprocess

from ..errors import MissingTool
from ..kernel import netns

TIMEOUT = 30  # seconds; a NAT command that takes longer is stopped and reported


def installed(*tools: str) -> bool:
    """True if every command in `tools` is on PATH."""
    return all(shutil.which(t) is not None for t in tools)


def require(backend: str, package: str, *tools: str, other: str) -> None:
    """Raise MissingTool naming the Debian package (and the other backend) unless `tools` are installed."""
    if not installed(*tools):
        words = " and ".join(f"`{t}`" for t in tools)
        raise MissingTool(f"the NAT backend {backend} needs the command{'s' if len(tools) > 1 else ''} "
                          f"{words}, which {'are' if len(tools) > 1 else 'is'} not installed: "
                          f"apt-get install {package} (or choose --backend {other})")


def run_tool(ns: str, argv: list[str], *, check: bool = True,
             input: str | None = None) -> subprocess.CompletedProcess:
    """Run `argv` in namespace `ns`, output as text (a KernelError names the command if it fails)."""
    return netns.run(ns, argv, check=check, input=input, timeout=TIMEOUT)
