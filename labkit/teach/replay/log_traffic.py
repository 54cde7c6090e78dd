"""Make the recorded run that the widgets replay where labs cannot run (see recording).

    sudo python -m labkit.teach.replay.log_traffic [-o FILE] [--lab NAME] [STAGE...]

brings a lab of its own (default `rec`) to each stage in turn (all of them by default), sends
each of `traffic_log.PROBES` whose source namespace exists with the traffic tester, capturing
at its default points, and writes what it saw to FILE (default: the file shipped beside
labkit.teach.replay.traffic_log). The lab is taken down at the end, whatever happens.
"""
from __future__ import annotations

import argparse
import datetime
import sys

from ...errors import LabkitError
from . import traffic_log
from ..notebook.widgets import DEFAULT_POINTS, TrafficTester


def take(lab, source: str, target: str, method: str, points=DEFAULT_POINTS) -> dict:
    """One probe sent by the traffic tester on the live lab, as stored."""
    tester = TrafficTester(lab, source=source, target=target, method=method)
    tester.points.value = tuple(p for p in points if p in tester.points.options)
    ok = tester.send()
    if ok is None:
        raise LabkitError(f"the probe {source} -> {target} could not be sent: {tester.text()}")
    frames, stats = traffic_log.encode(tester.packets)
    return {"source": source, "target": target, "method": method, "ok": ok,
            "said": tester.text(), "frames": frames, "stats": stats}


def record(lab, stages=None, probes=traffic_log.PROBES, points=DEFAULT_POINTS) -> dict:
    """Bring `lab` to each stage and take each probe there; the recorded run, as stored."""
    from ...model.stages import STAGES
    run = {"recorded": datetime.date.today().isoformat(), "points": list(points), "stages": {}}
    for stage in stages or STAGES:
        lab.up(stage)
        roles = set(lab.roles())
        run["stages"][stage] = [take(lab, s, t, m, points) for s, t, m in probes if s in roles]
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labkit.teach.replay.log_traffic",
                                     description="record each stage's probes on a real kernel")
    parser.add_argument("stages", nargs="*", help="stages to record (default: all)")
    parser.add_argument("-o", "--output", default=traffic_log.PATH)
    parser.add_argument("--lab", default="rec", help="the lab to record in (its own; default rec)")
    args = parser.parse_args(argv)
    from ...lab import Lab
    lab = Lab(args.lab)
    try:
        run = record(lab, args.stages or None)
        traffic_log.write(args.output, run)
    except LabkitError as e:
        print(f"labkit: {e}", file=sys.stderr)
        return 2
    finally:
        try:
            lab.down()
        except LabkitError:
            pass
    takes = sum(len(t) for t in run["stages"].values())
    print(f"wrote {args.output}: {takes} probes at {len(run['stages'])} stages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
