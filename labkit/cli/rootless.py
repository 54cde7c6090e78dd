"""The command's part in a normal user's world: entering it before anything else, ending it
when nothing is left in it, `labkit shell` and `labkit install-kernel`.

`enter(command)` runs first thing in `main()`, single-threaded: a normal user's command enters
the user's world (labkit.kernel.world), starting it if needed (a world whose keeper is gone is
ended first: `labkit clean` after a crash); `doctor`, `faults` and `install-kernel` stay
outside. Outside a world, a normal user's command would read root's journals: never.
`leave()` ends the world once the command leaves it with no lab, no namespace and no other
process in it: `labkit down` of the last lab ends it. Root has no world.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

from ..errors import LabkitError, MissingTool
from ..kernel import world

OUTSIDE = {"doctor", "faults", "install-kernel", "progress", "site"}   # commands that never enter a world
KERNEL_NAME = "labkit"
DISPLAY_NAME = "Python (labkit lab)"
_notes: list[str] = []


def enter(command: str) -> None:
    """Enter (or start) this user's world for `command`, when a world is wanted."""
    if command in OUTSIDE or not world.wanted():
        return
    stale = world.recorded()
    entered = world.enter()  # `clean` too: outside it, a user would read root's journals
    if stale is not None and stale != entered:
        _notes.append(f"your previous world (keeper pid {stale.pid}) had ended; what was left "
                      f"of it was stopped")


def notes() -> list[str]:
    """What entering had to say (a stale world ended), for the command to print."""
    return list(_notes)


def leave() -> None:
    """End the world this command entered if it leaves it empty (no lab journal, no network
    namespace, no process but the keeper)."""
    if world.joined() is None:
        return
    from ..kernel import netns
    from ..lab import journal
    world.end_if_idle(busy=bool(journal.labs() or netns.names()))


_ROLE = re.compile(r"host|world|netns\d+")


def _namespace_words(words: list[str], lab: str = "") -> tuple[str | None, str, list[str]]:
    """(role, lab, command) from `labkit shell` words: `ROLE [--lab NAME] [-- CMD...]` names a
    lab namespace (a seed role, or one the lab has); anything else is a command."""
    from ..lab import Lab
    rest = list(words)
    while rest[:1] and rest[0].startswith("--lab"):
        lab = rest[0].split("=", 1)[1] if "=" in rest[0] else (rest[1] if len(rest) > 1 else "")
        rest = rest[1:] if "=" in rest[0] else rest[2:]
    if not rest or rest[0] == "--":
        return None, lab, rest[1:] if rest else []
    role, more = rest[0], rest[1:]
    if not (_ROLE.fullmatch(role) or role in Lab(lab).roles()):
        return None, lab, rest
    while more[:1] and more[0].startswith("--lab"):
        lab = more[0].split("=", 1)[1] if "=" in more[0] else (more[1] if len(more) > 1 else "")
        more = more[1:] if "=" in more[0] else more[2:]
    return role, lab, more[1:] if more[:1] == ["--"] else more


def _namespace_shell(role: str, lab: str, argv: list[str]) -> list[str]:
    """The argv of a shell (or `argv`) in namespace `role` of lab `lab`: the host's by nsenter
    (the namespaces added there are seen everywhere), the others' by ip netns exec; an
    interactive bash's prompt names the namespace (its rc file read first)."""
    from ..kernel import netns
    from ..lab.verdict import Words
    words = Words(lab)
    kernel = words.ns(role)
    if not netns.exists(kernel):
        raise LabkitError(f"lab {lab or '(default)'!r} has no namespace {role} ({kernel}): "
                          f"bring it up first (labkit practice STAGE{' --lab ' + lab if lab else ''})")
    if not argv:
        rc = os.path.join(tempfile.mkdtemp(prefix="labkit-shell-"), "bashrc")
        with open(rc, "w") as f:
            f.write(f"[ -f ~/.bashrc ] && . ~/.bashrc\nPS1='{words.prompt(role)} '\n")
        argv = ["bash", "--rcfile", rc, "-i"]
        print(f"labkit: a shell in {role} of lab {lab or '(default)'} ({kernel}); its prompt says "
              f"{words.prompt(role)}; `exit` leaves it", file=sys.stderr)
    return netns.command(kernel, argv, own_etc=role != "host")


def cmd_shell(args) -> int:
    """`labkit shell [ROLE [--lab NAME]] [-- CMD...]`: a root shell (or CMD) in this user's
    world, or in namespace ROLE of a lab (its prompt names it)."""
    role, lab, argv = _namespace_words(list(args.cmd), getattr(args, "lab", ""))
    if role is None and lab and not argv:
        raise LabkitError("name the namespace: labkit shell ROLE --lab NAME (e.g. host)")
    if role is not None:
        argv = _namespace_shell(role, lab, argv)
    if not argv:
        argv = [os.environ.get("SHELL") or "/bin/sh"]
        current = world.joined()
        where = (f"your world ({current.describe()}): you are root here, the labs' namespaces "
                 f"are in `ip netns`; `exit` leaves it, the labs stay" if current else
                 "the machine itself: root has no world (labkit shell is for normal users)")
        print(f"labkit: a shell in {where}", file=sys.stderr)
    env = dict(os.environ)
    if world.joined() is not None:
        env["PATH"] = f"{_sudo_shim()}:{env.get('PATH', os.defpath)}"
    if shutil.which(argv[0], path=env["PATH"]) is None:
        raise MissingTool(f"the command `{argv[0]}` is not installed")
    old = [signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGQUIT)]
    try:  # as system(3): the terminal's Ctrl-C is the shell's, not labkit's
        return subprocess.call(argv, preexec_fn=_default_signals, env=env)
    finally:
        for s, handler in zip((signal.SIGINT, signal.SIGQUIT), old):
            signal.signal(s, handler)
        if "--rcfile" in argv:   # the prompt's rc file, made for this shell alone
            shutil.rmtree(os.path.dirname(argv[argv.index("--rcfile") + 1]), ignore_errors=True)


SUDO = """#!/bin/sh
# labkit's world: you are root here already, so sudo only runs the command (options dropped),
# and the seed's lines (sudo ip netns add netns0) work as they are written.
while [ "${1#-}" != "$1" ]; do shift; done
exec "$@"
"""


def _sudo_shim() -> str:
    """A directory holding `sudo` for the world's shell (the machine's sudo refuses to run in
    a user namespace, where its own files belong to nobody); made in the state directory."""
    directory = os.path.join(world.state_dir(), "bin")
    path = os.path.join(directory, "sudo")
    os.makedirs(directory, exist_ok=True)
    if not os.path.exists(path):
        with open(path + ".tmp", "w") as f:
            f.write(SUDO)
        os.chmod(path + ".tmp", 0o755)
        os.replace(path + ".tmp", path)
    return directory


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def kernel_spec(python: str) -> dict:
    """The kernelspec (kernel.json) of "Python (labkit lab)": ipykernel, run by the launcher
    that enters (or starts) the user's world first."""
    return {"argv": [python, "-m", "labkit.kernel.launcher", "--kernel", "-f", "{connection_file}"],
            "display_name": DISPLAY_NAME, "language": "python", "metadata": {"debugger": False}}


def cmd_install_kernel(args) -> int:
    """`labkit install-kernel [--user | --prefix DIR]`: install the kernelspec."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager
    except ImportError:
        raise MissingTool("jupyter_client is not installed: pip install ipykernel "
                          "(in the environment that has labkit)") from None
    python = args.python or sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)  # copied with its mode: everyone must read a kernel installed for all
        with open(os.path.join(tmp, "kernel.json"), "w") as f:
            json.dump(kernel_spec(python), f, indent=1)
        try:
            where = KernelSpecManager().install_kernel_spec(tmp, KERNEL_NAME, user=args.user,
                                                            prefix=args.prefix)
        except OSError as e:
            raise LabkitError(f"cannot install the kernel: {e.strerror or e} ({e.filename}); "
                              f"--user installs it for you alone, or run it as root for "
                              f"everyone") from None
    print(f"installed the kernel {DISPLAY_NAME!r} in {where}: a notebook on it runs in the "
          f"world of the user who opens it (root's, on the machine itself)")
    return 0


def add_parsers(add) -> None:
    """Add `shell` and `install-kernel` to the command's parser (`add(name, func, help)`)."""
    import argparse
    sp = add("shell", cmd_shell, "a root shell (or a command) in your world, as a normal user "
             "(as `podman unshare`); `labkit shell ROLE [--lab NAME]`: in a lab's namespace "
             "(host, netns0, ...), its prompt naming it")
    sp.add_argument("--lab", default="", help="the lab whose namespace ROLE is (default: the seed's names)")
    sp.add_argument("cmd", nargs=argparse.REMAINDER, metavar="[ROLE] -- CMD...")
    sp = add("install-kernel", cmd_install_kernel, "install the Jupyter kernel \"Python (labkit "
             "lab)\" whose notebooks run in the user's world")
    where = sp.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="for you alone (~/.local/share/jupyter)")
    where.add_argument("--prefix", default=None, metavar="DIR",
                       help="under DIR/share/jupyter (e.g. a JupyterHub's environment)")
    sp.add_argument("--python", default=None, metavar="PATH",
                    help="the interpreter the kernel runs (default: this one)")
