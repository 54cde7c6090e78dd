"""The `%%lab ROLE [--lab NAME] [--timeout S]` cell magic: shell commands typed in a notebook
cell, run one line at a time in a lab namespace and printed as a terminal shows them.

    %%lab host
    sudo ip link add veth0 type veth peer name ceth0
    ip -br link show veth0

prints

    root@host:~# sudo ip link add veth0 type veth peer name ceth0
    root@host:~# ip -br link show veth0
    veth0@ceth0      DOWN           ...

Each line that is neither empty nor a comment runs as `bash -c LINE` inside the namespace, as
`ip netns exec` runs it (the namespace's /etc/netns files over /etc's, its own /sys), except
that an `ip netns add` or `delete` typed in it is seen by every later line (see ENTER); in the
home directory, without the machine's proxy variables. Its stdout and stderr go to one file,
so they interleave as they come. A failing line is followed by `[exit N]`, and the next line
still runs, as in a terminal. A line ending in `&` (a server) returns at once; the server keeps
running until its namespace is deleted. A line that would open an interactive shell (`ip
netns exec netns0 bash`, `sudo nsenter --net=... bash`) is refused before anything runs, with
a note to start the cell with `%%lab netns0` instead. A line still running after `timeout`
seconds is stopped, with a note. Before each line, labkit waits (polling) until the kernel
reports the lab's interfaces' states, so `ip` prints the same every run. As root, `sudo` runs
its command directly (as root it changes nothing, and the real one would warn inside a lab
namespace that it cannot resolve the machine's host name). Errors (not privileged, no such
namespace) print one line `labkit: ...`, never a traceback.

`labkit.teach.notebook.setup()` loads it; alone: `%load_ext labkit.teach.notebook.magic`.
"""
from __future__ import annotations

import codecs
import contextlib
import getpass
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time

from ...errors import BadValue, LabkitError
from ...kernel import netns, privilege
from .shell import PROXY_VARIABLES, links_into, settle, wait_gone

default_lab = ""
"""Lab of cells without `--lab` ("" is the default lab, whose namespaces have the seed's names)."""
timeout = 30.0
"""Seconds a line may run before it is stopped (`--timeout S` for one cell)."""

USAGE = "usage: %%lab ROLE [--lab NAME] [--timeout SECONDS], then one shell command a line"
SHELLS = {"bash", "sh", "dash", "zsh", "ksh", "ash", "fish", "su"}
SUDO_AS_ROOT = 'sudo() { while [ "${1#-}" != "$1" ]; do shift; done; "$@"; }'
"""Defined before each line when the process is root: `sudo -E cmd` runs `cmd`."""
ENTER = """\
for f in "$1"/*; do
  t="/etc/${f##*/}"
  if [ -f "$f" ] && [ -e "$t" ]; then
    mount --make-slave "$(findmnt -nfo TARGET -T "$t")" && mount --bind "$f" "$t" || exit 126
  fi
done
mount --make-slave /sys && mount -t sysfs sysfs /sys || exit 126
shift
exec "$@"
"""
"""Run in the namespace, in a mount namespace of the line's own, before the line: what `ip
netns exec` does (the namespace's /etc/netns/NAME files over /etc's, its own /sys), but with
only the mounts it covers made slaves: `ip netns exec` makes every mount a slave, so an `ip
netns add` typed inside it is lost when the line ends (the seed types that in the host)."""


def entering(kernel_name: str) -> list[str]:
    """The argv prefix that sets up a line's mounts as ENTER says; run it inside namespace
    `kernel_name` (run_line's `namespace`, which enters it with labkit.kernel.netns.entered)."""
    from ...lab.etcfiles import etc_dir
    return ["unshare", "--mount", "--propagation", "unchanged", "--",
            "sh", "-c", ENTER, "enter", os.path.join(etc_dir(), kernel_name)]


def parse(line: str) -> tuple[str, str, float]:
    """The magic line's ROLE, lab name and timeout; BadValue with the usage if it is wrong."""
    try:
        words = shlex.split(line)
    except ValueError as e:
        raise BadValue(f"{e}; {USAGE}") from None
    role, lab, limit = None, default_lab, timeout
    while words:
        word = words.pop(0)
        if word.startswith("--") and "=" in word:
            word, value = word.split("=", 1)
            words.insert(0, value)
        if word in ("--lab", "--timeout") and words:
            value = words.pop(0)
            if word == "--lab":
                lab = value
            else:
                try:
                    limit = float(value)
                except ValueError:
                    raise BadValue(f"--timeout takes seconds, not {value!r}; {USAGE}") from None
        elif role is None and not word.startswith("-"):
            role = word
        else:
            raise BadValue(f"unexpected {word!r}; {USAGE}")
    if role is None:
        raise BadValue(f"name the namespace the commands run in; {USAGE}")
    return role, lab, limit


def commands(cell: str) -> list[str]:
    """The cell's command lines: blank lines and comments dropped, `\\` continuations joined
    (kept as typed, with their newlines)."""
    out, pending = [], ""
    for raw in cell.splitlines():
        line = pending + raw if pending else raw.strip()
        if line.endswith("\\"):
            pending = line + "\n"
            continue
        pending = ""
        if line.strip() and not line.lstrip().startswith("#"):
            out.append(line)
    if pending.strip():
        out.append(pending.rstrip("\n"))
    return out


def interactive(line: str, role: str, lab: str) -> str | None:
    """If `line` opens an interactive shell, the role it would be in (None otherwise)."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError:
        return None
    for i, w in enumerate(words):                 # the first simple command only
        if w in ("|", "||", "&&", ";", "&"):
            words = words[:i]
            break
    while words and words[0] == "sudo":
        words.pop(0)
        while words and words[0].startswith("-"):
            if words.pop(0) in ("-i", "-s", "--login", "--shell"):
                return role
    if words[:1] == ["nsenter"]:
        words, where = _nsenter(words[1:])
        return _role(where, lab, role) if _shell(words) else None
    if words[:3] == ["ip", "netns", "exec"] and len(words) > 3:
        return _role(words[3], lab, role) if _shell(words[4:]) else None
    return role if words and _shell(words) else None


def _nsenter(words: list[str]) -> tuple[list[str], str]:
    """nsenter's command after its options, and the namespace file given to --net (or "")."""
    where = ""
    while words and words[0].startswith("-"):
        option = words.pop(0)
        if option == "--":
            break
        if option.startswith("--net="):
            where = option.split("=", 1)[-1]
        elif option in ("-n", "--net") and words and not words[0].startswith("-"):
            where = words.pop(0)
        elif option.startswith("-n") and len(option) > 2:
            where = option[2:]
        elif option in ("-t", "--target", "-S", "-G", "-w", "-r") and words:
            words.pop(0)
    return words, where


def _shell(words: list[str]) -> bool:
    """True if `words` start a shell that reads its commands from the terminal."""
    if not words:
        return True                                # nsenter or `ip netns exec` with no command
    if os.path.basename(words[0]) not in SHELLS:
        return False
    rest = words[1:]
    return "-c" not in rest and not any(not w.startswith("-") for w in rest)


def _role(where: str, lab: str, role: str) -> str:
    name = os.path.basename(where) if where else ""
    prefix = f"{lab}-" if lab else ""
    if not name:
        return "ROLE"
    return name[len(prefix):] if prefix and name.startswith(prefix) else name


def refusal(line: str, role: str, into: str) -> str:
    """Why an interactive shell line is refused, and what to write instead (one line)."""
    if into == role:
        return (f"`{line}` opens an interactive shell, which a cell cannot type into; "
                f"each line of this cell already runs in a shell in {role}: write the commands "
                "themselves (nothing in this cell was run)")
    return (f"`{line}` opens an interactive shell in {into}, which a cell cannot type "
            f"into: start a cell with `%%lab {into}` and write the commands there (nothing in "
            "this cell was run)")


def prompt(role: str) -> str:
    """The prompt a terminal in namespace `role` shows (`root@host:~# `)."""
    root = os.geteuid() == 0
    return f"{'root' if root else getpass.getuser()}@{role}:~{'#' if root else '$'} "


def run(role: str, cell: str, lab=None, limit: float | None = None, write=None) -> list[int | None]:
    """Run the cell's command lines in namespace `role` of `lab` (a Lab or a lab name; None:
    `default_lab`) and print them as a terminal does; returns each line's exit status (None:
    stopped after `limit` seconds). A cell of comments only does nothing. Raises a LabkitError
    before running anything if the process lacks privileges, the namespace does not exist,
    or a line opens a shell."""
    from ...lab import Lab
    write = write or _stdout
    lab = lab if isinstance(lab, Lab) else Lab(default_lab if lab is None else lab)
    limit = timeout if limit is None else limit
    lines = commands(cell)
    if not lines:                               # nothing typed yet (a student edition's stub)
        return []
    privilege.require()
    namespace = lab.ns(role)                    # UnknownName (one line) if the lab lacks it
    argv_in = entering(namespace)
    for line in lines:
        into = interactive(line, role, lab.name)
        if into is not None:
            raise BadValue(refusal(line, role, into))
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
    home = os.path.expanduser("~")
    before = f"{SUDO_AS_ROOT}\n" if os.geteuid() == 0 else ""
    statuses = []
    for line in lines:
        settle(lab)
        write(prompt(role) + line.replace("\n", "\n> ") + "\n")
        going = [link for name in deleted_namespaces(line, lab.name) for link in links_into(lab, name)]
        status = run_line([*argv_in, "bash", "-c", before + line], limit, write, env,
                          home if os.path.isdir(home) else None, namespace)
        wait_gone(going)    # the veths of a deleted namespace go a moment later: as by hand
        if status is None:
            write(f"[stopped after {limit:g} s: still running. A command that runs until "
                  "stopped needs a limit (ping -c 3) or, for a server, a final &]\n")
        elif status < 0:
            write(f"[stopped by signal {-status}]\n")
        elif status:
            write(f"[exit {status}]\n")
        statuses.append(status)
    return statuses


def deleted_namespaces(line: str, lab: str) -> list[str]:
    """Kernel names of the lab namespaces that `line` deletes (`ip netns delete NAME`)."""
    from ...model import plan
    names = re.findall(r"\bip\s+(?:-\S+\s+)*netns\s+del(?:ete)?\s+([\w.-]+)", line)
    prefix = f"{lab}-" if lab else ""
    return [n for n in names if n.startswith(prefix) or not lab and plan.container_index(n) is not None
            or n in ("host", "world")]


def run_line(argv: list[str], limit: float, write, env=None, cwd=None,
             namespace: str | None = None) -> int | None:
    """Run `argv` (started inside network namespace `namespace`, if given) with stdout and stderr into one temporary file, writing what it prints as
    it comes; returns its exit status, or None if it ran `limit` seconds and was stopped
    (with every process it started in the foreground; so is it on KeyboardInterrupt, which
    goes on up). Background processes (`cmd &`) keep the file, never a pipe, so returning
    does not wait for them."""
    with tempfile.TemporaryFile() as log:
        with netns.entered(namespace) if namespace else contextlib.nullcontext():
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True)
        copy = _Copy(log.fileno(), write)
        deadline = time.monotonic() + limit
        try:
            while True:
                try:
                    status = proc.wait(timeout=max(0.0, min(0.1, deadline - time.monotonic())))
                except subprocess.TimeoutExpired:
                    status = None
                if status is None and time.monotonic() >= deadline:
                    _stop(proc)
                copy.more()
                if status is not None or time.monotonic() >= deadline:
                    copy.end()
                    return status
        except KeyboardInterrupt:              # the notebook's interrupt: as Ctrl-C in a terminal
            _stop(proc)
            raise


class _Copy:
    """Writes what a growing file holds, decoded as UTF-8, a piece at a time."""

    def __init__(self, fd: int, write):
        self.fd, self.write, self.done, self.last = fd, write, 0, "\n"
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def _put(self, text: str) -> None:
        if text:
            self.write(text)
            self.last = text[-1]

    def more(self) -> None:
        while chunk := os.pread(self.fd, 65536, self.done):
            self.done += len(chunk)
            self._put(self.decoder.decode(chunk))

    def end(self) -> None:
        """The rest, ending with a newline (a terminal's next prompt starts a line)."""
        self._put(self.decoder.decode(b"", final=True))
        if self.last != "\n":
            self.write("\n")


def _stop(proc: subprocess.Popen) -> None:
    import signal
    try:
        os.killpg(proc.pid, signal.SIGKILL)       # its own session: the line and its children
    except ProcessLookupError:
        pass
    proc.wait()


def _stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def lab_magic(line: str, cell: str) -> None:
    """The `%%lab` cell magic (see the module docstring)."""
    try:
        role, lab, limit = parse(line)
        run(role, cell, lab, limit)
    except LabkitError as e:
        print(f"labkit: {e}")


def load_ipython_extension(ipython) -> None:
    """Register `%%lab` (`%load_ext labkit.teach.notebook.magic`)."""
    ipython.register_magic_function(lab_magic, magic_kind="cell", magic_name="lab")
