"""`labkit capture`: print packets as they come, in time order across points; write them."""
from __future__ import annotations

import collections
import os
import signal
import sys
import threading
import time

from ..capture.live import Capture
from ..capture.packets import Packet, ends, sort_key
from ..errors import BadValue


class _Printer:
    """Prints packets as they come, in time order across points: a packet is printed once
    `hold` seconds have passed since its timestamp (points are read one after another)."""

    def __init__(self, labels: list[str], hold: float = 0.05):
        self.pending: collections.deque[Packet] = collections.deque()
        self.held: list[Packet] = []
        self.width = max(len(label) for label in labels)
        self.hold_ns = int(hold * 1e9)
        self.t0: int | None = None

    def flush(self, everything: bool = False, kept=None) -> None:
        """Print what has waited `hold` seconds (all if `everything`; only packets in `kept`,
        the final result, if given)."""
        while self.pending:
            self.held.append(self.pending.popleft())
        self.held.sort(key=lambda p: sort_key(p.time_ns, p.direction, p.upper, p.seq))
        cutoff = None if everything else time.time_ns() - self.hold_ns
        n = 0
        for p in self.held:
            if cutoff is not None and p.time_ns > cutoff:
                break
            if kept is not None and id(p) not in kept:
                n += 1
                continue
            self.t0 = p.time_ns if self.t0 is None else self.t0
            h = p.headers
            print(f"{(p.time_ns - self.t0) / 1e6:10.3f} ms  {p.point:<{self.width}}  "
                  f"{p.direction:<3}  {h.proto:<5} {ends(h)}  {h.info}")
            n += 1
        del self.held[:n]
        if n:
            sys.stdout.flush()


def cli_capture(args) -> int:
    """`labkit capture`: print packets as they come, stop at -c COUNT or Ctrl-C, write -w FILE,
    end with each point's counts. `args`: an argparse namespace with lab, points, write,
    filter, count (and optionally quiet: print only the counts). Returns the exit status."""
    quiet = getattr(args, "quiet", False)
    if args.write:
        _check_writable(args.write)
    cap = Capture(args.points, lab=args.lab or "", filter=args.filter, count=args.count)
    out = _Printer([p.label for p in cap.points])
    if not quiet:
        cap.on_packet = out.pending.append
    cap.start()
    previous = _stop_on_signals()
    print(f"capturing at {', '.join(p.label for p in cap.points)}"
          + (f" (filter: {args.filter})" if args.filter else "")
          + ("; Ctrl-C stops" if not args.count else f"; stops after {args.count} packets"),
          file=sys.stderr, flush=True)
    try:
        try:
            while cap.running:
                if not cap._stopping:      # at the count, the final result decides what prints
                    out.flush()
                cap.wait(timeout=0.05)
        except KeyboardInterrupt:
            pass
        packets = cap.stop()
        out.flush(everything=True, kept={id(p) for p in packets})
    except BrokenPipeError:   # `labkit capture ... | head`: stop quietly
        sys.stdout = open(os.devnull, "w")
        packets = cap.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if args.write:
        written = packets.write(args.write)
        print(f"wrote {len(packets)} packets to {', '.join(written)}", file=sys.stderr)
    print(packets.summary(), file=sys.stderr)
    return 0


def _stop_on_signals() -> dict:
    """Make SIGINT and SIGTERM end the capture loop (as tcpdump does), even when the shell
    started us in the background with SIGINT ignored; returns the handlers to restore."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, interrupt)
    return previous


def _check_writable(path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
        raise BadValue(f"cannot write {path}: directory {directory} does not exist or is not "
                       f"writable; choose another -w FILE")
