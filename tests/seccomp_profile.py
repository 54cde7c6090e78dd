"""A seccomp profile in the format of Docker, containerd and Kubernetes' Localhost profiles
(defaultAction, archMap, syscalls with names, action, args, includes and excludes), loaded
into this process with libseccomp (pyseccomp), as a container runtime loads it into a
container's first process: the filter holds for every process started after, across exec.

    python tests/seccomp_profile.py PROFILE.json [--without-labkit] -- CMD...

loads PROFILE.json (`--without-labkit`: without the rules labkit added, i.e. the runtime's
default profile it was made from), then execs CMD. The capabilities a rule may require
(includes/excludes "caps") are those a container runtime grants by default, without any added.
"""
from __future__ import annotations

import json
import os
import platform
import sys

# containerd's and Docker's default capabilities of a container (no CAP_SYS_ADMIN)
RUNTIME_CAPS = {"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
LABKIT = "labkit:"    # how the rules labkit added to the runtime's default begin their comment


def _kernel() -> tuple[int, ...]:
    return tuple(int(x) for x in platform.release().split("-")[0].split(".")[:2])


def applies(rule: dict, caps=frozenset(RUNTIME_CAPS)) -> bool:
    """Whether `rule` is part of the filter here: its includes met, none of its excludes."""
    inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
    if inc.get("caps") and not set(inc["caps"]) <= caps:
        return False
    if inc.get("arches") and ARCH not in inc["arches"]:
        return False
    if inc.get("minKernel") and _kernel() < tuple(int(x) for x in inc["minKernel"].split(".")):
        return False
    if set(exc.get("caps") or ()) & caps or ARCH in (exc.get("arches") or ()):
        return False
    return True


def rules(profile: dict, labkit: bool = True) -> list[dict]:
    """The profile's rules, without labkit's when `labkit` is false."""
    return [r for r in profile["syscalls"]
            if labkit or not str(r.get("comment", "")).startswith(LABKIT)]


def load(profile: dict, labkit: bool = True) -> None:
    """Load `profile` into this process (no_new_privs is set, as for a container's process)."""
    import pyseccomp as sc

    def action(name: str, errno_ret: int | None):
        if name == "SCMP_ACT_ALLOW":
            return sc.ALLOW
        if name == "SCMP_ACT_ERRNO":
            return sc.ERRNO(1 if errno_ret is None else errno_ret)
        raise ValueError(f"action {name} is not used by this loader's profiles")

    f = sc.SyscallFilter(defaction=action(profile["defaultAction"], profile.get("defaultErrnoRet")))
    for rule in rules(profile, labkit):
        if not applies(rule):
            continue
        act = action(rule["action"], rule.get("errnoRet"))
        args = [sc.Arg(a["index"], getattr(sc, a["op"].replace("SCMP_CMP_", "")), a["value"],
                       a.get("valueTwo", 0)) for a in rule.get("args") or ()]
        for name in rule["names"]:
            if sc.resolve_syscall(sc.Arch.NATIVE, name) < 0:
                continue                # not a system call of this architecture
            f.add_rule(act, name, *args)
    f.load()


def main(argv: list[str]) -> None:
    path, rest = argv[0], argv[1:]
    labkit = "--without-labkit" not in rest
    cmd = rest[rest.index("--") + 1:]
    with open(path) as f:
        load(json.load(f), labkit)
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    main(sys.argv[1:])
