"""Where labs cannot run (no CAP_NET_ADMIN): a cell that needs the kernel shows the outputs
recorded for it on a real kernel, under one line saying so; every other cell runs for real.

`install(shell)` (what `notebook.setup()` does without privileges) sets three hooks:
- before each cell, its source and JupyterLab's cell id are noted;
- a cell that raises NotPrivileged (anything that touches the kernel: a Lab's steps, captures,
  `%%lab` lines) shows instead the banner `recorded on a real kernel on DATE; run it yourself
  in a VM` and the outputs stored for it (`stored_outputs.Finder`: its notebook, matched by source
  text), each as it was stored: streams as text, pictures and tables with their mimebundle
  (image/png, image/svg+xml, text/html, text/plain). What the cell had printed before the
  exception is cleared first: the recording holds the whole cell as a real kernel ran it,
  which a half-printed start would only repeat out of order.
- a cell of the course (one found in a stored notebook) that fails otherwise replays too: with
  a LabkitError (`tables.fdb` finds no namespace `host` where none could be made), or, once a
  cell was replayed, with anything if it has a recording (a NameError for a capture that could
  not be made here). A cell not found (the student's own code) shows its traceback as usual,
  or, if it needs the kernel, one line, `NOT_RECORDED`. An exercise's check is not replayed (its recorded
  verdict judged the instructor's answer, not this one): it prints `NOT_JUDGED`.
A replayed cell reports success to the notebook, so "Run All" goes on to the next cell.
With privileges nothing of this is installed.
"""
from __future__ import annotations

import html
import sys

from ...errors import LabkitError, NotPrivileged
from . import stored_outputs

NOT_RECORDED = ("(this cell needs a privileged VM, and no run of it was recorded: "
                "see the first cell)")
BANNER_STYLE = ("color:#666;font-style:italic;font-family:sans-serif;font-size:90%;"
                "border-left:3px solid #c90;padding-left:6px;margin:2px 0")
NOT_JUDGED = ("(this exercise compares your answer with the live lab, which cannot run here: "
              "run the notebook in a VM to check your answer)")
TEXT_TYPES = ("text/", "image/svg+xml", "application/javascript")


class Replayer:
    """The hooks of one kernel (see the module docstring)."""

    def __init__(self, shell, finder: stored_outputs.Finder | None = None):
        self.shell = shell
        self.finder = finder or stored_outputs.Finder()
        self.cell: tuple[str, str | None] | None = None     # source and id of the running cell
        self.handled: BaseException | None = None          # the exception replayed in it
        self.replayed = 0                                   # cells replayed in this kernel

    def pre_run_cell(self, info) -> None:
        self.cell = (info.raw_cell, getattr(info, "cell_id", None))
        self.handled = None

    def post_run_cell(self, result) -> None:
        """A replayed cell succeeded, as far as the notebook is told (Run All goes on)."""
        if self.handled is not None and result.error_in_exec is self.handled:
            result.error_in_exec = None
            self.shell.last_execution_succeeded = True

    def handler(self, shell, etype, value, tb, tb_offset=None):
        """IPython's custom exception handler: replay, or the usual traceback."""
        try:
            match = self.finder.find(*self.cell) if self.cell else None
        except Exception:                  # an unreadable notebook: as if nothing were recorded
            match = None
        needs_kernel = isinstance(value, NotPrivileged) or match is not None and (
            isinstance(value, LabkitError) or self.replayed and bool(match.outputs))
        if not needs_kernel:
            shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
            return None
        self.handled = value
        if match is None:
            print(NOT_RECORDED)
        elif match.cell.judged:
            print(NOT_JUDGED)
        else:
            show(match)
            self.replayed += 1
        return None


def show(match: stored_outputs.Match) -> None:
    """Clear what the cell printed, then show the banner and the recorded outputs."""
    from IPython.display import clear_output, publish_display_data
    clear_output()
    publish_display_data({"text/plain": match.banner,
                          "text/html": f'<div style="{BANNER_STYLE}">{html.escape(match.banner)}</div>'},
                         metadata={stored_outputs.MARK: True})
    for output in match.outputs:
        if output.get("output_type") == "stream":
            stream = sys.stderr if output.get("name") == "stderr" else sys.stdout
            stream.write(_joined(output.get("text", "")))
            stream.flush()
        elif "data" in output:
            data = {mime: _joined(value) if mime.startswith(TEXT_TYPES) or mime == "image/png" else value
                    for mime, value in output["data"].items()
                    if mime != "application/vnd.jupyter.widget-view+json"}
            publish_display_data(data, metadata=output.get("metadata") or {})


def _joined(value):
    return "".join(value) if isinstance(value, list) else value


def lab_cell(line: str, cell: str) -> None:
    """`%%lab` where labs cannot run: as the magic, but NotPrivileged goes up (to be replayed)."""
    from ..notebook import magic
    try:
        role, lab, limit = magic.parse(line)
        magic.run(role, cell, lab, limit)
    except NotPrivileged:
        raise
    except LabkitError as e:
        print(f"labkit: {e}")


_installed: dict[int, Replayer] = {}


def install(shell) -> Replayer:
    """Set the hooks on IPython `shell` (once; a second call returns the same Replayer)."""
    if id(shell) in _installed:
        return _installed[id(shell)]
    replayer = Replayer(shell)
    shell.events.register("pre_run_cell", replayer.pre_run_cell)
    shell.events.register("post_run_cell", replayer.post_run_cell)
    shell.set_custom_exc((Exception,), replayer.handler)
    shell.register_magic_function(lab_cell, magic_kind="cell", magic_name="lab")
    _installed[id(shell)] = replayer
    return replayer
