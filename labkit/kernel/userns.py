"""User namespaces: make one (this user mapped to root in it), join one, and find out why a
machine refuses them.

A normal user may make a user namespace and, in it, network and mount namespaces where it
holds every capability (`unshare -Urnm` does the same). Where that is refused, `probe()` says
at which step, and `diagnose()` tells apart the usual causes, each with its fix: user
namespaces disabled (kernel.unprivileged_userns_clone=0, user.max_user_namespaces=0),
restricted by AppArmor (kernel.apparmor_restrict_unprivileged_userns=1, Ubuntu 23.10 and
later), or blocked by a container runtime's seccomp profile (Docker, Kubernetes'
RuntimeDefault, Binder). `diagnose` is plain logic on the probe's data: tested without any.
"""
from __future__ import annotations

import ctypes
import errno
import json
import os
import select
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_NOSUID, MS_NODEV = 2, 4

_libc = ctypes.CDLL(None, use_errno=True)

SYSCTLS = {"unprivileged_userns_clone": "kernel/unprivileged_userns_clone",
           "max_user_namespaces": "user/max_user_namespaces",
           "apparmor_restrict": "kernel/apparmor_restrict_unprivileged_userns"}


def _raise(what: str) -> None:
    err = ctypes.get_errno()
    raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    """unshare(2) for the calling thread; OSError with the kernel's errno if refused."""
    if _libc.unshare(flags) != 0:
        _raise("unshare")


def setns(fd: int, kind: int) -> None:
    """setns(2): move the calling thread into the namespace `fd` (of type `kind`). Entering a
    user or mount namespace needs a single-threaded process (EINVAL otherwise)."""
    if _libc.setns(fd, kind) != 0:
        _raise("setns")


def mount(source: str, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    """mount(2); OSError with the kernel's errno if refused."""
    if _libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None, flags,
                   data.encode() if data else None) != 0:
        _raise(f"mount {target}")


def map_to_root(uid: int, gid: int) -> None:
    """Map `uid`/`gid` (this process's in the parent namespace) to root in the user namespace
    the process has just unshared: setgroups deny, then gid_map and uid_map "0 ID 1"."""
    for name, text in (("setgroups", "deny"), ("gid_map", f"0 {gid} 1"), ("uid_map", f"0 {uid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)


SECCOMP_PROFILE = "deploy/kubernetes/seccomp/labkit.json"   # in labkit's repository


def initial() -> bool:
    """True if this process is in the machine's initial user namespace (its uid map is whole)."""
    try:
        with open("/proc/self/uid_map") as f:
            return f.read().split() == ["0", "0", "4294967295"]
    except OSError:
        return True


def machine_uid() -> int:
    """The uid this process stands for on the machine: its own, or, as root of a world (a
    user namespace mapping 0 to one uid), the uid that the map gives root."""
    uid = os.getuid()
    try:
        with open("/proc/self/uid_map") as f:
            inside, outside, _count = (int(n) for n in f.readline().split())
        if inside == 0 and uid == 0:
            return outside
    except (OSError, ValueError):
        pass
    return uid


def inode(pid: int | str = "self") -> int | None:
    """Identity (inode) of process `pid`'s user namespace; None if it cannot be read."""
    try:
        return os.stat(f"/proc/{pid}/ns/user").st_ino
    except OSError:
        return None


def sysctls() -> dict[str, str | None]:
    """The sysctls that govern unprivileged user namespaces (None: not on this kernel)."""
    found = {}
    for key, rel in SYSCTLS.items():
        try:
            with open(f"/proc/sys/{rel}") as f:
                found[key] = f.read().strip()
        except OSError:
            found[key] = None
    return found


def seccomp_mode() -> str:
    """This process's seccomp mode from /proc/self/status ("0" none, "2" a filter)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Seccomp:"):
                return line.split()[1]
    return "0"


def probe(timeout: float = 10.0) -> dict:
    """Try, in a child process, what a world needs: unshare user+network+mount namespaces, map
    this user to root, mount a tmpfs. Returns the data `diagnose` reads: the errno of the
    first step refused ("step", "errno"; errno 0 if all went), the sysctls, seccomp mode."""
    data = {"sysctls": sysctls(), "seccomp": seccomp_mode(), "uid": os.geteuid()}
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: try each step, report the first refusal, never return
        os.close(read_fd)
        step, err = "unshare", 0
        try:
            uid, gid = os.geteuid(), os.getegid()
            unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS)
            step = "map"
            map_to_root(uid, gid)
            step = "mount"
            mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")
            step = "done"
        except OSError as e:
            err = e.errno or errno.EPERM
        os.write(write_fd, json.dumps({"step": step, "errno": err}).encode())
        os._exit(0)
    os.close(write_fd)
    try:
        ready, _, _ = select.select([read_fd], [], [], timeout)
        text = os.read(read_fd, 4096).decode() if ready else ""
    finally:
        os.close(read_fd)
        os.waitpid(pid, 0)
    data.update(json.loads(text) if text else {"step": "unshare", "errno": errno.ETIMEDOUT})
    return data


def diagnose(data: dict) -> tuple[str, str]:
    """(problem, fix) from `probe()` data; ("", "") when a world can be made. Tells apart:
    disabled by a sysctl, restricted by AppArmor, blocked by seccomp, a limit reached."""
    err, step = data.get("errno", 0), data.get("step", "unshare")
    if not err:
        return "", ""
    ctl = data.get("sysctls", {})
    python = os.path.realpath(sys.executable)
    if ctl.get("max_user_namespaces") == "0":
        return ("user namespaces are disabled on this machine (user.max_user_namespaces=0)",
                "as root: sysctl -w user.max_user_namespaces=15000 (and the same line in "
                "/etc/sysctl.d/90-labkit.conf to keep it)")
    if ctl.get("unprivileged_userns_clone") == "0":
        return ("user namespaces are disabled for normal users on this machine "
                "(kernel.unprivileged_userns_clone=0)",
                "as root: sysctl -w kernel.unprivileged_userns_clone=1 (and the same line in "
                "/etc/sysctl.d/90-labkit.conf to keep it)")
    if ctl.get("apparmor_restrict") == "1":
        return ("AppArmor restricts unprivileged user namespaces on this machine "
                "(kernel.apparmor_restrict_unprivileged_userns=1, Ubuntu 23.10 and later): "
                f"the namespace is made but its root has no capabilities ({step} refused)",
                f"as root, allow labkit's interpreter: write /etc/apparmor.d/labkit containing "
                f"`abi <abi/4.0>, include <tunables/global> profile labkit {python} "
                f"flags=(unconfined) {{ userns, }}` then apparmor_parser -r /etc/apparmor.d/labkit; "
                f"or, for every program: sysctl -w kernel.apparmor_restrict_unprivileged_userns=0")
    if err == errno.ENOSPC:
        return ("the limit of user namespaces is reached (user.max_user_namespaces="
                f"{ctl.get('max_user_namespaces')}, or this user's share of it)",
                "end worlds no longer used (labkit clean, as each user), or as root raise "
                "user.max_user_namespaces")
    if err == errno.EUSERS:
        return ("user namespaces are nested too deep here (32 levels at most)",
                "run labkit from a shell outside the nested containers")
    if err == errno.EPERM and step in ("unshare", "mount") and data.get("seccomp") == "2":
        call = "unshare(CLONE_NEWUSER)" if step == "unshare" else "mount() in a new mount namespace"
        return (f"a seccomp filter refuses {call} in this process: a container "
                "runtime's default profile (Docker, Kubernetes' RuntimeDefault, Binder), while "
                "the kernel's sysctls allow user namespaces",
                "give the container labkit's seccomp profile (the runtime's default plus unshare, "
                "clone, setns and mount for user, network and mount namespaces: "
                f"{SECCOMP_PROFILE}, --security-opt seccomp=FILE with Docker/podman, "
                "seccompProfile: {type: Localhost} in Kubernetes), or run it with --security-opt "
                "seccomp=unconfined; on a hosted service (Binder) use a Linux VM or laptop instead")
    return (f"the kernel refused step {step!r} of making a user namespace: {os.strerror(err)} "
            f"(errno {err})",
            "try `unshare -Urn true` in a shell for the same refusal; run labkit as root "
            "(sudo labkit ...) meanwhile")
