"""`Lab`: a named lab that owns what it creates, journals it first, and tears it down in reverse.

    with Lab("t1") as lab:          # lab "t1": namespaces t1-host, t1-world, t1-netns0, ...
        lab.up("bridge")            # converge to a stage from any state
        lab.ping("netns0", "172.18.0.20")
    # leaving the block runs lab.down()

    Lab("diy").up("examples/two-networks.toml")   # a lab of one's own: a TOML file, a dict,
                                                  # a Blueprint or a Topology (labkit.model)

The default lab (name "") uses the seed's names unprefixed, so `ip netns exec netns0 ...`
works as the seed's text says.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess

from . import faults
from . import journal as journal_mod
from ..kernel import netns, places
from ..model import plan
from ..kernel import privilege
from ..model import stages, topology_file, validation
from ..errors import BadAddress, BadName, BadValue, KernelError, LabkitError, UnknownName
from ..model.plan import BRIDGE_NET, HOST_ADDRESS
from ..model.topology import Topology


@places.kept
class Lab:
    """A named lab; nothing is created until `up` (a context manager: leaving it runs `down`).
    It keeps the run, namespace and /etc/netns directories the environment named when it was
    made (`places`), whatever the environment says later."""

    def __init__(self, name: str = "", *, own: bool | None = None, take: bool = False):
        """`own`: this process owns the lab it brings up while it lives, and another's `up`
        or `down` is refused (None: only in a Jupyter kernel; labkit.lab.owner says why).
        `take`: take the lab over from the process that owns it."""
        if not isinstance(name, str):
            raise BadName(f"lab name must be a string of 1 to 6 characters a-z and 0-9, got {name!r}")
        self.name = plan.check_lab_name(name)
        self.own, self.take = own, take
        self.places = places.Places.from_environment()

    def __repr__(self) -> str:
        return f"Lab({self.name!r})"

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc) -> None:
        self.down()

    @property
    def journal(self) -> journal_mod.Journal:
        """This lab's journal (read afresh)."""
        return journal_mod.Journal(self.name)

    def ns(self, role: str) -> str:
        """Kernel name of namespace `role` ("netns0" -> "t1-netns0"); UnknownName if the lab lacks it."""
        name = plan.namespace_name(self.name, role)
        if not netns.exists(name):
            have = ", ".join(self.roles()) or "none: run `labkit up STAGE` first"
            raise UnknownName(f"lab {self.name or '(default)'!r} has no namespace {role!r} "
                              f"(it has {have})")
        return name

    def roles(self) -> list[str]:
        """Role names of the lab's namespaces that exist now."""
        from .inspection import role_of
        return [role_of(self.name, n) for n in self.journal.namespaces if netns.exists(n)]

    @property
    def stage(self) -> str | None:
        """The stage last brought up, or the name of its own topology (None if the lab is down)."""
        return self.journal.get("stage")

    def plan(self, stage, containers: int | None = None) -> Topology:
        """What `stage` looks like for this lab (plain data, no root), checked whole.

        `stage` is a stage's name, or a lab of one's own: a Blueprint, a Topology, a dict or
        the path of a TOML file (labkit.model.topology_file says their schema)."""
        return self._goal(stage, containers)[0]

    def _goal(self, what, containers: int | None) -> tuple[Topology, str | None]:
        """The topology to bring the lab to, and the file it came from (None: not a file)."""
        if isinstance(what, str) and (what in stages.STAGES or _stage_like(what)):
            try:
                return stages.build(what, self.name, containers), None
            except UnknownName as e:
                raise UnknownName(f"{e}, or give the path of a topology file (.toml)") from None
        if containers is not None:
            raise BadValue(f"containers={containers!r} applies to a stage; a topology of one's own "
                           f"declares its namespaces: leave it out")
        if isinstance(what, Topology):
            topology = dataclasses.replace(what, lab=self.name, nat_backend=None,
                                           stage=what.stage or "custom")
            if topology.stage in stages.STAGES and topology == stages.build(
                    topology.stage, self.name, len(topology.containers) or None):
                return topology, None  # a stage's own plan
            validation.check_title(topology.stage)
            topology = validation.check(topology)
        else:
            topology = topology_file.load(what).build(self.name)
        if topology.stage in stages.STAGES:
            raise BadName(f"topology name {topology.stage!r} is a stage's: name it otherwise "
                          f"(name = \"...\" in a file, Blueprint(\"...\") in Python)")
        source = os.path.abspath(os.fspath(what)) if isinstance(what, (str, os.PathLike)) else None
        return topology, source

    def planned(self) -> Topology | None:
        """The plan of the lab's last `up`: a stage's, or its own topology (read back from the
        journal); None if the lab is down."""
        return self._planned(self.journal)

    def _planned(self, journal: journal_mod.Journal) -> Topology | None:
        data = journal.get("topology")
        if data:
            return Topology.from_dict(data)
        stage = journal.get("stage")
        return stages.build(stage, self.name, journal.get("containers")) if stage else None

    def up_command(self) -> str:
        """The command that brings the lab back to its plan, as a person types it."""
        journal = self.journal
        lab = f" --lab {self.name}" if self.name else ""
        if journal.get("topology"):
            source = journal.get("topology_file")
            return f"labkit up --topology {source}{lab}" if source else \
                f"lab.up(...) with the same topology (lab {self.name or '(default)'})"
        return f"labkit up {journal.get('stage') or journal.get('goal') or 'STAGE'}{lab}"

    def writing(self):
        """A context manager holding the lab's lock (one writer at a time, labkit.lab.lock)."""
        from . import lock
        return lock.held(self.name)

    def _claim(self, journal: journal_mod.Journal) -> None:
        from . import owner
        own = owner.in_jupyter_kernel() if self.own is None else self.own
        owner.claim(journal, self.name, own, self.take)

    def up(self, stage, containers: int | None = None,
           backend: str | None = None, fault: str | None = None,
           seed: int | str | None = None) -> Topology:
        """Converge the kernel to `stage`; returns the plan. Safe to repeat; journaled first,
        undone by `down`.

        `stage` is a stage's name, or a lab of one's own (a Blueprint, Topology, dict or TOML
        file's path, see `plan`), checked whole before anything is made. `backend` is the
        NAT backend, "nftables" or "iptables"; None keeps the lab's own (nftables at first).
        Switching leaves nothing of the other backend. `fault` brings the stage up with one
        thing broken (labkit.lab.faults lists them; NAT faults use iptables, the seed's tool).
        `fault="random"` draws one of the stage's faults and names it nowhere a student looks
        (a mystery: check then says only what the traffic shows, until asked for hints): by
        `seed` if given, else by the user's name (labkit.lab.faults.draw); it returns the
        stage's plan, unbroken. Holds the lab's lock; refused (LabOwned) if another live
        process owns the lab."""
        self._goal(stage, containers)  # bad input is said at once, not after waiting
        if seed is not None and fault != faults.RANDOM:
            raise BadValue(f"seed={seed!r} chooses a random fault: give fault={faults.RANDOM!r} too")
        privilege.require()
        with self.writing():
            return self._up(stage, containers, backend, fault, seed)

    def _up(self, stage, containers, backend, fault, seed=None) -> Topology:
        want, source = self._goal(stage, containers)
        broken, clean, mystery = None, want, fault == faults.RANDOM
        if mystery:
            fault = faults.draw(want.stage, seed)
            backend = backend or "iptables"     # the same tool whatever was drawn: it tells nothing
        if fault is not None:
            broken = faults.fault(fault, want.stage)
            want = faults.broken(want, fault)
            backend = backend or broken.backend
        custom = source is not None or want.stage not in stages.STAGES
        from ..nat import api as nat
        from . import etcfiles, service
        for entry in want.nat:
            nat.check_entry(entry)
        journal = self.journal
        backend = nat.choose_backend(journal, backend, want.nat)
        privilege.require()
        self._claim(journal)
        self._check_not_foreign(want, journal)
        from .converge import converge
        journal.update({"goal": want.stage, "stage": None,  # status names an `up` that did not finish
                        "topology": want.to_dict() if custom else None, "topology_file": source})
        has_nat_home = want.namespace(validation.NAT_NAMESPACE) is not None
        if not has_nat_home:
            with contextlib.suppress(LabkitError):
                nat.remove(self.name, journal=journal)  # while the old host, if any, is still there
        faults.undo(self.name, journal.get("fault"))
        converge(want, journal)
        etcfiles.write_resolver(want, journal)
        if has_nat_home:
            nat.apply(self.name, want.nat, backend, journal=journal)
        if has_nat_home or journal.get("six"):  # the IPv6 rules (labkit.nat.six)
            from ..nat import six as nat6
            nat6.converge(self.name, nat6.mode_of(want.stage) if want.stage else None, backend, journal)
        service.converge(want, journal)
        from . import names
        names.converge(want, journal, backend)
        for role, argv in broken.after if broken else ():
            netns.run(plan.namespace_name(self.name, role), list(argv))
        journal.update({"nat_backend": backend, "stage": want.stage, "fault": fault,
                        "mystery": mystery, "practice": None, "containers": len(want.containers)})
        return dataclasses.replace(clean if mystery else want, nat_backend=backend)

    def practice(self, stage: str, backend: str | None = "iptables", challenge: bool = False):
        """Bring the lab to where `stage` starts and return the task: the seed's commands for a
        person to type or, with `challenge`, the goal without them (labkit.lab.practice)."""
        from .practice import practice
        return practice(self, stage, backend, challenge)

    def check(self, stage=None, *, hints: int = 0):
        """Whether the lab does what `stage` does (default: the one practised or brought up),
        by the kernel's state and real traffic; a Result with hints (see labkit.lab.check).
        `stage` may also be a lab of one's own (a Blueprint, a TOML file's path, a dict or a
        Topology): what it declares, and the traffic it expects (Blueprint.expect).
        Each check is recorded with `hints`, the hint level the caller shows (labkit.lab.progress),
        under the stage's name or the topology's."""
        from . import progress
        from .check import check
        if stage is not None and not (isinstance(stage, str) and (stage in stages.STAGES
                                                                   or _stage_like(stage))):
            from .topology_check import check_topology
            result = check_topology(self, stage if isinstance(stage, Topology)
                                    else topology_file.load(stage))
            progress.keep(progress.of(result, None, hints))
            return result
        result = check(self, stage or self._checked_stage())
        progress.keep(progress.of(result, self.journal.get("fault"), hints))
        return result

    def hint(self, stage=None, level: int = 1) -> str:
        """What is not done yet: level 1 where to look, level 2 also what kind of change
        (which object, with which tool), level 3 also the command that fixes it."""
        return self.check(stage, hints=level).text(level)

    def _checked_stage(self) -> str:
        journal = self.journal
        stage = journal.get("practice") or journal.get("stage")
        if stage not in stages.STAGES:
            raise UnknownName(f"which stage? name it (lab.check('bridge')): the lab is "
                              f"{'down' if not journal.exists() else 'at ' + repr(stage)}")
        return stage

    def _check_not_foreign(self, want: Topology, journal: journal_mod.Journal) -> None:
        """Refuse a namespace the stage needs that exists but this lab did not create
        (made by hand, or by another tool): labkit would take it over and later delete it."""
        ours = set(journal.namespaces)
        foreign = [name for name in (plan.namespace_name(self.name, ns.role) for ns in want.namespaces)
                   if name not in ours and netns.exists(name)]
        if foreign:
            raise KernelError(
                f"namespace(s) {', '.join(foreign)} exist but lab {self.name or '(default)'!r} did "
                f"not create them, and labkit only changes what it made: delete them if they are "
                f"yours to lose ({'; '.join(f'sudo ip netns delete {n}' for n in foreign)}) "
                f"or use another lab name (--lab NAME)")

    def down(self) -> list[str]:
        """Remove everything the lab created (namespaces, processes in them, files); safe twice.

        Holds the lab's lock; refused (LabOwned) if another live process owns the lab. Goes
        on past what it cannot remove, then names it, and why, in a KernelError."""
        if not self.journal.exists():
            return []
        privilege.require()
        with self.writing():
            journal = self.journal
            if not journal.exists():
                return []  # another writer took it down while we waited
            from . import owner
            owner.check(journal, self.name, self.take)
            from ..nat import api as nat
            from . import etcfiles, service
            with contextlib.suppress(LabkitError):
                nat.remove(self.name, journal=journal)  # exact, though deleting the namespaces would do
            service.stop_recorded(journal)  # also those in a namespace deleted by hand
            removed = journal.undo()
            etcfiles.tidy_etc_dir()
        if journal.left:
            raise KernelError(f"{journal.left_text()} (removed the rest: {len(removed)} "
                              f"namespace(s)/file(s))")
        return removed

    def inspect(self) -> Topology:
        """The lab as the kernel holds it now (hand edits included)."""
        if not self.journal.exists():
            return Topology(self.name, None)
        privilege.require()
        from .inspection import inspect
        journal = self.journal
        live = inspect(self.name, journal.namespaces, journal.get("stage"), self._planned(journal))
        from ..nat import api as nat
        from . import service
        backend, entries = (nat.read(self.name, journal=journal) if live.namespace("host")
                            else (None, ()))
        return dataclasses.replace(live, nat=entries, nat_backend=backend,
                                   services=service.running(self.name, self.journal))

    def drift(self, live: Topology | None = None) -> list[str]:
        """How the lab differs from the stage it was brought to, one line each ([]: it matches).

        Names hand edits (links, addresses, routes, sysctls), NAT rules and servers, and an
        `up` that did not finish. Empty for a lab that is down."""
        journal = self.journal
        if not journal.exists():
            return []
        from .lock import holder
        if busy := holder(self.name):  # another process's up, down, practice... at work
            return [f"being changed now by {busy}: look again when it is done"]
        if journal.get("stage") is None:
            goal, source = journal.get("goal"), journal.get("topology_file")
            again = f" --topology {source}" if source else f" {goal}" if goal else ""
            if holder(self.name) or self.journal.get("stage") is not None:
                return self.drift()  # a writer started, or finished, just now
            return [f"the last `labkit up{again}` did not finish (interrupted or failed): run it "
                    f"again, or `labkit down`"]
        if journal.get("fault") or journal.get("practice"):
            what = ("a fault is set" if journal.get("fault") and journal.get("mystery") else
                    f"fault {journal.get('fault')!r} is set" if journal.get("fault") else
                    f"practising stage {journal.get('practice')!r}")
            return [f"{what}: `labkit check {journal.get('practice') or journal.get('stage')}"
                    f"{' --lab ' + self.name if self.name else ''}` says what is left to do"]
        want = self._planned(journal)
        live = live if live is not None else self.inspect()
        from ..nat import api as nat
        from . import service
        from .inspection import differences
        lines = differences(want, live)
        if live.namespace(validation.NAT_NAMESPACE) is not None:
            lines += nat.drift(self.name, want.nat, journal=journal)
        lines += service.drift(self.name, want.services)
        return lines

    def publish(self, container: str, port: int, *, to_port: int | None = None,
                address: str = HOST_ADDRESS, proto: str = "tcp"):
        """Publish `container`'s `to_port` (default `port`) on the host's `address`:`port`
        (labkit.nat.publish, journaled, one writer at a time); returns the PortMapping."""
        from ..nat import api as nat
        return nat.publish(self.name, container, port, to_port=to_port, address=address,
                           proto=proto, journal=self.journal, lock=self.writing())

    def unpublish(self, port: int, *, address: str = HOST_ADDRESS, proto: str = "tcp"):
        """Take back the mapping of `address`:`port` (labkit.nat.unpublish); returns it, or
        None if it was not published."""
        from ..nat import api as nat
        return nat.unpublish(self.name, port, address=address, proto=proto,
                             journal=self.journal, lock=self.writing())

    def masquerade(self, source: str = BRIDGE_NET, not_out: str | None = "br0"):
        """Masquerade traffic from `source` unless it leaves by `not_out` (labkit.nat.masquerade);
        a no-op if present. Returns the Masquerade."""
        from ..nat import api as nat
        return nat.masquerade(self.name, source, not_out, journal=self.journal, lock=self.writing())

    def exec(self, role: str, argv: list[str], *, check: bool = False,
             timeout: float | None = 60) -> subprocess.CompletedProcess:
        """Run `argv` in namespace `role` and wait; returns the completed process (text output)."""
        privilege.require()  # else `ip netns exec` fails and a ping reads as "no answer"
        privilege.require_tool(argv[0]) if argv else None
        return netns.run(self.ns(role), list(argv), check=check, timeout=timeout)

    def ping(self, role: str, address: str, count: int = 1, timeout: float = 1.0) -> bool:
        """True if `count` pings from namespace `role` to `address` (IPv4 or IPv6) are all answered."""
        plan.parse_any_address(address)
        result = self.exec(role, ["ping", "-n", "-q", "-c", str(count), "-W", str(timeout),
                                  "-i", "0.01", address], timeout=timeout * count + 5)
        return result.returncode == 0

    def add_address(self, role: str, ifname: str, cidr: str) -> None:
        """Add `cidr` to interface `ifname` in namespace `role`; refuses an address the lab already uses."""
        parsed = plan.parse_cidr(cidr)
        kernel = self.ns(role)
        live = self.inspect()
        holder = live.addresses().get(str(parsed.ip))
        if holder:
            raise BadAddress(f"{parsed.ip} is already in use in lab {self.name or '(default)'!r} "
                             f"on {holder[0]}:{holder[1]}: choose another address")
        namespace = live.namespace(role)
        if namespace is None or namespace.interface(ifname) is None:
            raise UnknownName(f"namespace {role!r} has no interface {ifname!r}")
        from ..kernel.netlink import Netlink
        with Netlink(kernel) as nl:
            nl.add_address(ifname, str(parsed))


def _stage_like(text: str) -> bool:
    """True if `text` reads as a stage's name rather than a file's path."""
    return not text.endswith(".toml") and os.sep not in text and not os.path.exists(text)
