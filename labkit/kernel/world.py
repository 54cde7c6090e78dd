"""A normal user's world: user, network and mount namespaces where the user is root, kept
alive by a keeper process (labkit.kernel.keeper), where that user's labs live.

Run by a normal user, the `labkit` command `enter()`s the world first thing (starting it if
there is none), before any thread: a process must be single-threaded to enter a user or mount
namespace. Inside, the user is root with every capability, /run/netns, /run/labkit and
/etc/netns are the world's own (empty when it starts), and labkit runs exactly as for root:
the default lab keeps the seed's names. Two users' worlds are apart by the kernel: another
user can neither open nor enter them.

The world is recorded in STATE_DIR/world.json (LABKIT_STATE_DIR, default
~/.local/state/labkit of the user's home, the same for a terminal and a JupyterHub server,
whose XDG_RUNTIME_DIR differ): the keeper's pid, start time (clock ticks after boot), user
namespace (inode) and the boot it belongs to; a record whose process is gone or another is
stale. `end()` ends a world: the keeper and every process still in it. Root has no world.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import signal
import time
from dataclasses import asdict, dataclass

from . import keeper, outside, userns
from .process import start_time
from ..errors import KernelError, NotPrivileged

STATE_FILE = "world.json"
OFF = ("0", "off", "no", "false")
_joined: list = []  # the World this process entered (at most one)
_me: dict = {}      # what is known of the user before entering: the state directory


def wanted() -> bool:
    """True for a normal user (root needs no world, and inside a world one is root;
    LABKIT_WORLD=off turns worlds off: labkit then needs root, as before)."""
    return os.geteuid() != 0 and os.environ.get("LABKIT_WORLD", "").lower() not in OFF


def state_dir() -> str:
    """Where the world is recorded (LABKIT_STATE_DIR, default ~/.local/state/labkit); the
    same once inside the world, where the user is root."""
    if "state_dir" not in _me:
        configured = os.environ.get("LABKIT_STATE_DIR")
        try:
            home = pwd.getpwuid(userns.machine_uid()).pw_dir   # the user's, inside the world too
        except KeyError:
            home = os.path.expanduser("~")
        _me["state_dir"] = configured or os.path.join(home, ".local", "state", "labkit")
    return _me["state_dir"]


def _boot() -> str:
    with open("/proc/sys/kernel/random/boot_id") as f:
        return f.read().strip()


@dataclass(frozen=True)
class World:
    """One user's world, by identity: its keeper's pid and start time, its user namespace."""
    pid: int
    start: str
    userns: int
    boot: str
    uid: int

    def alive(self) -> bool:
        """True while this very keeper runs (not a re-used pid, not an earlier boot)."""
        return (self.boot == _boot() and start_time(self.pid) == self.start
                and userns.inode(self.pid) == self.userns)

    def processes(self) -> list[int]:
        """Every process in the world (its user namespace) but this one, keeper included;
        only processes started after the world count (an inode is re-used after its end)."""
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) != os.getpid() and userns.inode(entry) == self.userns:
                started = start_time(int(entry))
                if started is not None and int(started) >= int(self.start):
                    found.append(int(entry))
        return found

    def describe(self) -> str:
        """"keeper pid 1234, started 3.2 s ago": how messages name it."""
        with open("/proc/uptime") as f:
            up = float(f.read().split()[0])
        age = up - int(self.start) / os.sysconf("SC_CLK_TCK")
        return f"keeper pid {self.pid}, started {age:.1f} s ago"


def recorded() -> World | None:
    """The world this user's record names (alive or not); None if there is no record."""
    try:
        with open(os.path.join(state_dir(), STATE_FILE)) as f:
            return World(**json.load(f))
    except (OSError, ValueError, TypeError):
        return None


def current() -> World | None:
    """This user's world if it runs; None if there is none or it ended."""
    world = recorded()
    return world if world is not None and world.alive() else None


@contextlib.contextmanager
def locked():
    """Hold this user's world lock (flock): starting, entering and ending are one at a time."""
    directory = state_dir()
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd = os.open(os.path.join(directory, "world.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as e:
        raise NotPrivileged(f"cannot keep the record of your labkit world in {directory}: "
                            f"{e.strerror}; set LABKIT_STATE_DIR to a directory of yours") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _record(world: World | None) -> None:
    path = os.path.join(state_dir(), STATE_FILE)
    if world is None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    with open(path + ".tmp", "w") as f:
        json.dump(asdict(world), f)
    os.replace(path + ".tmp", path)


def start() -> World:
    """Start this user's world (call with `locked()` held) and record it."""
    pid = keeper.start()
    world = World(pid, start_time(pid) or "0", userns.inode(pid) or 0, _boot(), os.getuid())
    _record(world)
    return world


def enter(create: bool = True, net: bool = True) -> World | None:
    """Enter this user's world, starting it if there is none (`create`); a stale one is ended
    first. Returns the world, or None when there is none and `create` is False. Call it
    before any thread starts. NotPrivileged, with why and the fix, if the machine refuses.
    `net=False` leaves the network namespace to enter later (see `join`)."""
    with locked():
        world = recorded()
        if world is not None and not world.alive():
            end(world)
            world = None
        if world is None:
            if not create:
                return None
            try:
                world = start()
            except KernelError as e:
                reason = why(str(e))
                error = NotPrivileged(refusal(reason))
                error.why = reason  # the launcher passes it on to the notebook
                raise error from None
        join(world, net)
    return world


def why(detail: str) -> str:
    """Why the machine refuses a world, and the fix (userns.diagnose on a fresh probe)."""
    problem, fix = userns.diagnose(userns.probe())
    return f"{problem or detail}. Fix: {fix or 'see labkit doctor'}"


def refusal(reason: str) -> str:
    """The message for a world the machine refuses: `reason` (see `why`), the way with root."""
    return (f"labkit needs root, or a world of user namespaces for you (uid {os.getuid()}), "
            f"which this machine refuses: {reason}. Meanwhile: sudo labkit ... in a "
            f"privileged Linux VM (CAP_NET_ADMIN, CAP_SYS_ADMIN)")


def join(world: World, net: bool = True) -> None:
    """Move this process into `world`: its user, mount and network namespaces, in that order;
    the working directory stays (by path). KernelError if the world ended or is not ours.
    `net=False`: not the network namespace, which a thread may enter later on its own (a
    Jupyter kernel binds its sockets on the machine's loopback first: labkit.kernel.launcher)."""
    kinds = ("user", "mnt", "net") if net else ("user", "mnt")
    fds = []
    try:
        for kind in kinds:
            fds.append(os.open(f"/proc/{world.pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC))
        if not world.alive():
            raise KernelError(f"the world ({world.describe()}) ended while it was being entered")
    except PermissionError:
        raise NotPrivileged(f"the world of pid {world.pid} is not yours: the kernel refuses to "
                            f"open its namespaces") from None
    except FileNotFoundError:
        raise KernelError(f"the world (keeper pid {world.pid}) ended; run the command again") from None
    finally:
        if len(fds) < len(kinds):
            for fd in fds:
                os.close(fd)
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = None
    try:
        for fd, kind in zip(fds, (userns.CLONE_NEWUSER, userns.CLONE_NEWNS, userns.CLONE_NEWNET)):
            if kind == userns.CLONE_NEWNET and outside.wanted():
                outside.keep()   # a thread left on the machine's network, for the class's service
            userns.setns(fd, kind)
    except OSError as e:
        hint = (" (this process runs threads: enter the world first thing, before any starts)"
                if e.errno == 22 else "")
        raise NotPrivileged(f"entering the world ({world.describe()}) was refused: "
                            f"{e.strerror}{hint}") from None
    finally:
        for fd in fds:
            os.close(fd)
    with contextlib.suppress(OSError):
        os.chdir(cwd or os.path.expanduser("~"))
    _joined[:] = [world]


def joined() -> World | None:
    """The world this process entered with `enter`/`join`, if any."""
    return _joined[0] if _joined else None


def end(world: World, timeout: float = 5.0) -> list[int]:
    """End `world`: SIGKILL its keeper and every process left in it (never this one), wait
    for them to go, forget the record. Returns the pids ended. Its namespaces, and every lab
    in it, go with the last process."""
    victims = world.processes()  # the kernel lets a user signal only its own processes
    if world.alive() and world.pid not in victims:
        victims.append(world.pid)
    for pid in victims:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(start_time(p) is not None for p in victims):
        time.sleep(0.005)  # polling the kernel: a killed process goes within milliseconds
    if recorded() == world:
        _record(None)
    return victims


def end_if_idle(busy: bool) -> World | None:
    """End the world this process entered when nothing is left in it: `busy` is False (the
    caller found no lab and no namespace) and no other process but the keeper is in it.
    Returns the world ended, or None."""
    world = joined()
    if world is None or busy:
        return None
    with locked():
        if not world.alive() or [p for p in world.processes() if p != world.pid]:
            return None
        end(world)
    return world
