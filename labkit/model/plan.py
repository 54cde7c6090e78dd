"""The naming and addressing scheme of a lab, written once.

Namespaces (roles; lab `t1` prefixes each kernel name: `t1-host`, `t1-netns0`; the default
lab, named "", has no prefix so a student's commands match the seed's text):

    host     the seed's VM      ens18 10.0.2.15/24, default via 10.0.2.2; vethK; br0 172.18.0.1/16
    world    LAN and internet   wan0 10.0.2.2/24; 203.0.113.80/32 on lo (a "public server")
    netnsK   container K        lo; cethK

Container K (0-based, up to 1000) has the address

    172.18.(K // 25).(10 * (K % 25 + 1))/16

so netns0 is 172.18.0.10 and netns1 is 172.18.0.20 (the seed's), netns24 is 172.18.0.250 and
netns25 is 172.18.1.10. In the `two-veths` stage the host side vethK holds that address + 1
(172.18.0.11, 172.18.0.21). All of it lies inside 172.18.0.0/16, and no container address
ever equals the bridge's 172.18.0.1.

MACs are derived Docker style: 02:42 followed by the four bytes of the interface's IPv4
address; an interface without address gets 02:00 followed by four bytes of a hash of its
namespace role and name. Kernel names (interfaces and namespaces) are at most 15 characters
without "/" or white space; lab names are 1 to 6 characters of a-z and 0-9.
"""
from __future__ import annotations

import hashlib
import ipaddress
import re

from ..errors import BadAddress, BadName, BadValue

BRIDGE_NET = "172.18.0.0/16"
BRIDGE_ADDRESS = "172.18.0.1"
HOST_UPLINK = "ens18"
HOST_ADDRESS = "10.0.2.15"
WORLD_UPLINK = "wan0"
WORLD_ADDRESS = "10.0.2.2"
UPLINK_PREFIX = 24
PUBLIC_SERVER = "203.0.113.80"
MAX_CONTAINERS = 1000
IFNAMSIZ = 15
# every lab namespace starts with IPv6 off (router solicitations are noise in captures)
IPV6_OFF = (("net.ipv6.conf.all.disable_ipv6", "1"), ("net.ipv6.conf.default.disable_ipv6", "1"))
# ... and reverse-path filtering off: a new namespace copies the machine's value (1 or 2 on
# some distributions, where a reply on the "wrong" interface would be dropped in silence);
# set before any interface exists, so each interface inherits 0 from `default`
RP_FILTER_OFF = (("net.ipv4.conf.all.rp_filter", "0"), ("net.ipv4.conf.default.rp_filter", "0"))
NAMESPACE_SYSCTLS = IPV6_OFF + RP_FILTER_OFF

_LAB_RE = re.compile(r"[a-z0-9]{1,6}")


def check_lab_name(lab: str) -> str:
    """Return `lab` if it is a valid lab name ("" is the default lab), else raise BadName."""
    if lab == "" or _LAB_RE.fullmatch(lab):
        return lab
    raise BadName(f"lab name {lab!r} is not valid: use 1 to 6 characters a-z and 0-9 "
                  f"(e.g. --lab t1), or no --lab for the default lab")


def lab_name(lab) -> str:
    """The name of `lab`, a Lab or a lab name (checked); BadName for anything else."""
    name = lab if isinstance(lab, str) else getattr(lab, "name", None)
    if not isinstance(name, str):
        raise BadName(f"{lab!r} is not a lab: pass a Lab or a lab name (e.g. 't1')")
    return check_lab_name(name)


def check_kernel_name(name: str, what: str = "interface") -> str:
    """Return `name` if the kernel accepts it as an interface/namespace name, else raise BadName."""
    if not isinstance(name, str) or not name:
        raise BadName(f"{what} name must be a non-empty string, got {name!r}")
    if len(name) > IFNAMSIZ:
        raise BadName(f"{what} name {name!r} has {len(name)} characters; the kernel allows at "
                      f"most {IFNAMSIZ}: choose a shorter name")
    if "/" in name or any(c.isspace() for c in name) or name in (".", ".."):
        raise BadName(f"{what} name {name!r} contains '/' or white space: use letters, "
                      f"digits, '-' and '_' only")
    return name


def check_containers(n) -> int:
    """Return `n` if it is a valid container count (1..1000), else raise BadValue."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise BadValue(f"container count must be a whole number, got {n!r}")
    if not 1 <= n <= MAX_CONTAINERS:
        raise BadValue(f"container count {n} is out of range: use 1 to {MAX_CONTAINERS} "
                       f"(a Linux bridge takes at most 1024 ports)")
    return n


def parse_cidr(text: str) -> ipaddress.IPv4Interface:
    """Parse an IPv4 address with prefix length ("172.18.0.10/16"), else raise BadAddress."""
    try:
        if "/" not in str(text):
            raise ValueError("no prefix length")
        return ipaddress.IPv4Interface(text)
    except (ValueError, TypeError) as e:
        raise BadAddress(f"{text!r} is not an IPv4 address with prefix length ({e}); "
                         f"write it like 172.18.0.10/16") from None


def parse_address(text: str) -> ipaddress.IPv4Address:
    """Parse a bare IPv4 address, else raise BadAddress."""
    try:
        return ipaddress.IPv4Address(text)
    except (ValueError, TypeError):
        raise BadAddress(f"{text!r} is not an IPv4 address; write it like 172.18.0.10") from None


def parse_cidr6(text: str) -> ipaddress.IPv6Interface:
    """Parse an IPv6 address with prefix length ("fd00:172:18::10/64"), else raise BadAddress."""
    try:
        if "/" not in str(text):
            raise ValueError("no prefix length")
        return ipaddress.IPv6Interface(text)
    except (ValueError, TypeError) as e:
        raise BadAddress(f"{text!r} is not an IPv6 address with prefix length ({e}); "
                         f"write it like fd00:172:18::10/64") from None


def parse_any_cidr(text: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    """An IPv4 or IPv6 address with prefix length (IPv6 if it holds ':'), else BadAddress."""
    return parse_cidr6(text) if isinstance(text, str) and ":" in text else parse_cidr(text)


def parse_any_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """A bare IPv4 or IPv6 address (IPv6 if it holds ':'), else BadAddress."""
    if isinstance(text, str) and ":" in text:
        try:
            return ipaddress.IPv6Address(text)
        except ValueError:
            raise BadAddress(f"{text!r} is not an IPv6 address; write it like fd00:172:18::10") from None
    return parse_address(text)


def namespace_name(lab: str, role: str) -> str:
    """Kernel name of namespace `role` in lab `lab` ("t1", "netns0" -> "t1-netns0")."""
    name = f"{lab}-{role}" if lab else role
    return check_kernel_name(name, "namespace")


def container(k: int) -> str:
    """Role name of container k: netns0, netns1, ..."""
    return f"netns{k}"


def container_address(k: int) -> str:
    """Address of container k, without prefix length (see the module docstring)."""
    if not 0 <= k < MAX_CONTAINERS:
        raise BadValue(f"container index {k} out of range 0..{MAX_CONTAINERS - 1}")
    return f"172.18.{k // 25}.{10 * (k % 25 + 1)}"


def host_veth_address(k: int) -> str:
    """Address of the host side of container k's veth in the `two-veths` stage (container + 1)."""
    return str(ipaddress.IPv4Address(container_address(k)) + 1)


def container_index(role: str) -> int | None:
    """k for role "netnsK", else None."""
    m = re.fullmatch(r"netns(\d+)", role)
    return int(m.group(1)) if m else None


def mac_for(address: str | None, namespace: str = "", ifname: str = "") -> str:
    """Deterministic MAC: 02:42 + IPv4 bytes, or 02:00 + a hash of namespace role and name."""
    if address:
        raw = bytes([2, 0x42]) + ipaddress.IPv4Address(address.split("/")[0]).packed
    else:
        raw = bytes([2, 0]) + hashlib.sha256(f"{namespace}/{ifname}".encode()).digest()[:4]
    return ":".join(f"{b:02x}" for b in raw)
