"""The `labkit` command: up, down, check, practice, faults, status, clean, exec, doctor, capture,
draw, handout, site; shell and install-kernel (labkit.cli.rootless: a normal user's world).

`labkit up --topology FILE` brings up a lab of one's own (labkit.model.topology_file).

Namespace names on the command line are relative to the lab (`netns0`, `host`, `world`).
Every LabkitError is printed as one line with its fix (exit 2), never as a traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from ..model import stages
from ..errors import LabkitError
from . import rootless


def _lab(args):
    from ..lab import Lab
    return Lab(args.lab, take=getattr(args, "take", False))


def cmd_up(args) -> int:
    lab = _lab(args)
    kwargs = {"containers": args.containers}
    if args.backend:
        kwargs["backend"] = args.backend
    if args.topology is not None:
        want = lab.up(_topology_path(args.topology), **kwargs)
        print(f"lab {lab.name or '(default)'}: topology {want.stage} is up (from {args.topology}: "
              f"{', '.join(ns.role for ns in want.namespaces)})")
        return 0
    if args.fault:
        kwargs["fault"] = args.fault
    if args.seed is not None:
        kwargs["seed"] = args.seed
    lab.up(args.stage, **kwargs)
    if args.fault == "random":      # a mystery: nothing printed may name it, nor its symptom
        flag = f" --lab {lab.name}" if lab.name else ""
        print(f"lab {lab.name or '(default)'}: stage {args.stage} is up, with something broken.\n"
              f"What does not work: labkit check {args.stage}{flag}; find why with the course's "
              f"tools, fix it by hand, check again (hints: --hint, --hint 2, then --fix)")
        return 0
    if args.fault:
        from ..lab import faults
        flag = f" --lab {lab.name}" if lab.name else ""
        print(f"lab {lab.name or '(default)'}: stage {args.stage} is up, with one thing broken.\n"
              f"Symptom: {faults.fault(args.fault).symptom}.\n"
              f"Find it with the course's tools, fix it by hand, then: labkit check {args.stage}{flag}")
        return 0
    print(f"lab {lab.name or '(default)'}: stage {args.stage} is up "
          f"({stages.DESCRIPTIONS[args.stage]})")
    return 0


def cmd_check(args) -> int:
    asked = 3 if args.fix else args.hint
    if args.topology is not None:   # a lab of one's own: what the file declares and expects
        result = _lab(args).check(_topology_path(args.topology), hints=asked)
        print(result.to_json() if args.json else result.text(asked or 1))
        return 0 if result.ok else 1
    result = _lab(args).check(args.stage, hints=asked)
    level = asked or (0 if result.mystery else 1)   # a mystery's items only when asked for
    print(result.to_json() if args.json else result.text(level))
    return 0 if result.ok else 1


def cmd_progress(args) -> int:
    from ..lab import progress
    records = progress.load()
    print(json.dumps([{k: v for k, v in r.to_dict().items() if k != "fault"} for r in records],
                     indent=2) if args.json else progress.summary(records))
    return 0


def cmd_practice(args) -> int:
    from ..draw import diagram
    task = _lab(args).practice(args.stage, challenge=args.challenge)
    print(str(task) + ("\n\n" + diagram.figure(task.target, task.start).text if task.challenge else ""))
    return 0


def cmd_faults(args) -> int:
    from ..lab import faults
    if args.reveal:                 # for the instructor: the lab's fault, drawn or named
        print(faults.reveal(args.lab))
        return 0
    print("\n".join(faults.listing()))
    print("bring one up: labkit up STAGE --fault NAME [--lab NAME]; one of the stage's, unnamed: "
          "--fault random [--seed N]")
    return 0


def _topology_path(path: str) -> str:
    """`path` as a file's path for Lab.up (which reads a bare word as a stage's name)."""
    return path if os.sep in path or path.endswith(".toml") else os.path.join(".", path)


def cmd_down(args) -> int:
    from . import status
    lab = _lab(args)
    before = status.left_by([lab.name])
    removed = lab.down()
    print(f"removed {len(removed)} namespace(s)/file(s)" if removed else "nothing to remove")
    for line in status.left_section(before):
        print(line)
    return 0


def cmd_status(args) -> int:
    from . import status
    lab = _lab(args)
    topology = lab.inspect()
    nat = _nat_status(lab)
    drift = lab.drift(topology)
    if args.json:
        print(status.as_json(topology, {"nat_rules": nat, "drift": drift}))
    else:
        print(status.text(topology, nat))
        section = _drift_text(lab, drift)
        if section:
            print(section)
        for line in status.machine_section(lab.name, lab.journal.namespaces,
                                           lab.journal.get("machine")):
            print(line)
    return 0


def _drift_text(lab, drift: list[str]) -> str:
    """The status section that compares the lab with the stage (or topology) it was brought to."""
    stage = lab.stage
    journal = lab.journal
    if not journal.exists():
        return ""
    what = "topology" if journal.get("topology") else "stage"
    if not drift:
        return f"matches {what} {stage}: nothing was changed by hand"
    if journal.get("fault") or journal.get("practice") or drift[0].startswith("being changed now"):
        return drift[0]       # on purpose (a fault, a stage practised), or a writer is at work
    target = f"{what} {stage}" if stage else f"the {what}"
    return "\n".join([f"differs from {target} (changed by hand? `{lab.up_command()}` brings it back):"]
                     + [f"  {line}" for line in drift])


def _nat_status(lab) -> list[str]:
    """The lab's NAT rules as lines (none for a lab that is down)."""
    from ..nat import api as nat
    journal = lab.journal
    return nat.status_lines(lab.name, journal=journal) if journal.exists() else []


def cmd_clean(args) -> int:
    from ..lab import clean, journal
    from . import status
    before = status.left_by(journal.labs())
    removed = clean()
    for lab, items in removed.items():
        print(f"lab {lab or '(default)'}: removed {', '.join(items) or 'its journal'}")
    if not removed:
        print("no lab leftovers")
    for line in status.left_section(before):
        print(line)
    return 0


def cmd_exec(args) -> int:
    import subprocess
    from ..kernel import netns
    from ..kernel import privilege
    argv = args.cmd[1:] if args.cmd and args.cmd[0] == "--" else args.cmd
    if not argv:
        raise LabkitError("no command given: write it after --, e.g. labkit exec netns0 -- ip addr")
    lab = _lab(args)
    privilege.require()
    privilege.require_tool("ip")
    privilege.require_tool(argv[0])
    return subprocess.call(netns.command(lab.ns(args.ns), argv))


def cmd_doctor(args) -> int:
    from ..lab import doctor
    results = doctor.checks()
    print(doctor.report(results))
    return 0 if all(c.ok for c in results) else 1


def cmd_capture(args) -> int:
    from ..kernel import privilege
    privilege.require()  # packet sockets inside lab namespaces
    from .capture import cli_capture
    return cli_capture(args)


def cmd_draw(args) -> int:
    from ..draw import diagram
    if args.topology is not None:  # the plan, drawn without root
        topology = _lab(args).plan(_topology_path(args.topology))
    else:
        topology = _lab(args).inspect()
    print(diagram.cli_draw(topology, args.output) if args.output else diagram.figure(topology))
    return 0


def cmd_handout(args) -> int:
    from ..kernel import privilege
    if not args.stored:
        privilege.require()  # the notebooks are run for real before they are printed
    from ..teach.printed import handout
    from ..teach.replay import course
    paths = args.notebooks or course.notebooks(args.notebook_dir)
    written = handout.build(args.output, notebooks=paths, run=not args.stored, say=print)
    print(handout.summary(args.output, written))
    return 0


def cmd_site(args) -> int:
    from ..teach.printed import site     # no root: the stored (recorded) outputs, nothing is run
    from ..teach.replay import course
    for path in site.build(args.output, args.notebooks or course.notebooks(args.notebook_dir), args.binder):
        print(f"wrote {path}")
    return 0


def cmd_editions(args) -> int:
    from ..teach.printed import stored      # no root: the notebooks are read, not run
    from ..teach.replay import course
    for path in stored.write_editions(args.output, args.notebooks or course.notebooks(args.notebook_dir)):
        print(f"wrote {path}")
    return 0


NOTEBOOKS_HELP = ("the course's notebooks (default: $LABKIT_NOTEBOOKS, else ./notebooks if it holds "
                  "the course, else the notebooks that come with labkit)")


def parser() -> argparse.ArgumentParser:
    """The argument parser (also used by the tests)."""
    p = argparse.ArgumentParser(prog="labkit", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, func, help_text):
        sp = sub.add_parser(name, help=help_text, description=help_text)
        sp.set_defaults(func=func)
        return sp

    def topology_arg(sp, what):
        sp.add_argument("--topology", metavar="FILE", default=None,
                        help=f"a topology file (TOML, e.g. examples/two-networks.toml): {what}")

    def lab_arg(sp):
        sp.add_argument("--lab", default="", help="lab name (1-6 of a-z0-9; default: the seed's names)")
        if sp.get_default("func") in (cmd_up, cmd_down, cmd_practice):
            sp.add_argument("--take", action="store_true",
                            help="take the lab over from the process that owns it (a notebook kernel)")

    sp = add("up", cmd_up, "bring a lab to a stage, or to a topology of one's own (from any state)")
    sp.add_argument("stage", nargs="?", choices=stages.STAGES, metavar="STAGE",
                    help="one of: " + ", ".join(stages.STAGES))
    topology_arg(sp, "the lab to bring up, instead of a STAGE")
    lab_arg(sp)
    sp.add_argument("--containers", type=int, default=None, metavar="N",
                    help="number of containers, 1 to 1000 (default: the stage's)")
    sp.add_argument("--backend", choices=("nftables", "iptables"), default=None,
                    help="NAT backend for outside/publish/hairpin (default nftables)")
    sp.add_argument("--fault", default=None, metavar="NAME",
                    help="bring the stage up with one thing broken (labkit faults lists them; "
                         "random: one of the stage's, not named)")
    sp.add_argument("--seed", default=None, metavar="N",
                    help="with --fault random: the seed that chooses (default: your user name)")
    sp = add("down", cmd_down, "remove a lab")
    lab_arg(sp)
    sp = add("check", cmd_check, "say whether a lab does what a stage does (exit 0) or what is "
             "missing (exit 1)")
    sp.add_argument("stage", nargs="?", choices=stages.STAGES, metavar="STAGE",
                    help="one of: " + ", ".join(stages.STAGES) + " (default: the one practised)")
    topology_arg(sp, "check the lab against this file (what it declares, and its [[expects]]) "
                 "instead of a STAGE")
    lab_arg(sp)
    sp.add_argument("--hint", nargs="?", type=int, const=1, default=0, choices=(1, 2, 3), metavar="LEVEL",
                    help="1: where to look (a random fault: symptoms only without it); 2: what kind of change")
    sp.add_argument("--fix", action="store_true", help="also the command that fixes each item (--hint 3)")
    sp.add_argument("--json", action="store_true", help="print JSON")
    sp = add("practice", cmd_practice, "bring a lab to where a stage starts, and print the "
             "seed's commands to type (or, with --challenge, the goal)")
    sp.add_argument("stage", choices=stages.STAGES, metavar="STAGE",
                    help="one of: " + ", ".join(stages.STAGES))
    lab_arg(sp)
    sp.add_argument("--challenge", action="store_true", help="print the goal in words and drawn, and "
                    "what check will test, without the stage's commands")
    sp = add("progress", cmd_progress, "your checks so far: each stage done or not, checks and hints")
    sp.add_argument("--json", action="store_true", help="print every record as JSON")
    sp = add("faults", cmd_faults, "list the broken labs (labkit up STAGE --fault NAME)")
    sp.add_argument("--reveal", action="store_true",
                    help="for the instructor: name the fault the lab has (drawn at random too)")
    lab_arg(sp)
    sp = add("status", cmd_status, "show a lab as the kernel holds it")
    lab_arg(sp)
    sp.add_argument("--json", action="store_true", help="print JSON")
    add("clean", cmd_clean, "remove every lab's leftovers (after a crash too)")
    sp = add("exec", cmd_exec, "run a command in a lab namespace (like ip netns exec)")
    lab_arg(sp)
    sp.add_argument("ns", metavar="NS", help="namespace: host, world, netns0, ...")
    sp.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD...")
    add("doctor", cmd_doctor, "check privileges, kernel support and tools")
    rootless.add_parsers(add)
    sp = add("capture", cmd_capture, "capture packets on lab interfaces")
    lab_arg(sp)
    sp.add_argument("points", nargs="+", metavar="NS:IFACE",
                    help="capture points, e.g. netns0:ceth0 host:br0")
    sp.add_argument("-w", dest="write", metavar="FILE.pcap",
                    help="write the packets (FILE.pcapng keeps points and directions)")
    sp.add_argument("-f", dest="filter", metavar="BPF", help="capture filter (tcpdump syntax)")
    sp.add_argument("-c", dest="count", type=int, metavar="COUNT", help="stop after COUNT packets")
    sp.add_argument("-q", dest="quiet", action="store_true", help="print only the per-point counts")
    sp = add("draw", cmd_draw, "draw the live topology (or a topology file's plan) to a PNG or SVG file")
    lab_arg(sp)
    topology_arg(sp, "draw this file's plan instead of the live lab (no root needed)")
    sp.add_argument("-o", dest="output", metavar="FILE.png|FILE.svg",
                    help="file to write (without it: a text tree)")
    sp = add("handout", cmd_handout, "run the notebooks and print a student's and an instructor's "
                                      "edition (HTML, A4 PDF, course booklet, cheat sheets)")
    sp.add_argument("-o", dest="output", default="handouts", metavar="DIR")
    sp.add_argument("--stored", action="store_true",
                    help="print the stored outputs instead of running the notebooks (no root needed)")
    sp.add_argument("--notebooks", dest="notebook_dir", metavar="DIR", help=NOTEBOOKS_HELP)
    sp.add_argument("notebooks", nargs="*", metavar="NOTEBOOK")
    sp = add("site", cmd_site, "write the course (student edition, recorded outputs) as a static website")
    sp.add_argument("-o", dest="output", default="site", metavar="DIR")
    sp.add_argument("--binder", default="", metavar="URL", help="the course on Binder, linked from each page")
    sp.add_argument("--notebooks", dest="notebook_dir", metavar="DIR", help=NOTEBOOKS_HELP)
    sp.add_argument("notebooks", nargs="*", metavar="NOTEBOOK")
    sp = add("editions", cmd_editions, "write the notebooks' student editions (no solutions, answers "
             "or revealing outputs) and instructor's editions, as .ipynb")
    sp.add_argument("-o", dest="output", default="editions", metavar="DIR",
                    help="writes DIR/student/*.ipynb and DIR/instructor/*.ipynb")
    sp.add_argument("--notebooks", dest="notebook_dir", metavar="DIR", help=NOTEBOOKS_HELP)
    sp.add_argument("notebooks", nargs="*", metavar="NOTEBOOK")
    return p


def _check_words(args) -> None:
    """Refuse what is wrong on the command line itself before anything else (a normal
    user's world included): capture points that are not NAMESPACE:INTERFACE, an `up` given
    both or neither of a stage and a topology file."""
    from ..errors import BadValue
    if args.command == "up" and (args.stage is None) == (args.topology is None):
        raise BadValue("give a STAGE or --topology FILE, one of them: e.g. `labkit up bridge` or "
                       "`labkit up --topology examples/two-networks.toml --lab diy`")
    if args.command == "check" and args.stage is not None and args.topology is not None:
        raise BadValue("give a STAGE or --topology FILE, not both: e.g. `labkit check bridge` or "
                       "`labkit check --topology examples/two-networks.toml --lab diy`")
    if args.command == "capture":
        from ..capture.points import parse_point
        for spec in args.points:
            parse_point(spec, args.lab)


def _plan_only(args) -> bool:
    """True for a command that reads no kernel: a topology file drawn as planned, editions."""
    return args.command == "editions" or (args.command == "draw" and args.topology is not None)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `labkit` command; returns the exit status (141 when the reader of its
    output went away, as `labkit draw | head` does: quietly, no traceback)."""
    try:
        args = parser().parse_args(argv)
        try:
            _check_words(args)
            if not _plan_only(args):
                rootless.enter(args.command)  # a normal user's world: first, before any thread
            for note in rootless.notes():
                print(f"labkit: {note}", file=sys.stderr)
            status = args.func(args)
            rootless.leave()              # ends the world if nothing is left in it
        except LabkitError as e:
            print(f"labkit: error: {e}", file=sys.stderr)
            status = 2
        except KeyboardInterrupt:
            print("labkit: interrupted", file=sys.stderr)
            status = 130
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return status
    except BrokenPipeError:
        _silence_stdout()
        return 141


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's own flush at exit does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
