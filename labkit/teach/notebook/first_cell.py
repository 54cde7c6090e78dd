"""The first cell of every course notebook: `import labkit.teach.notebook; labkit.teach.notebook.setup()`.

Where the kernel lacks the privileges to run labs (Binder, a laptop without sudo), setup() says
so once, plainly; then every later cell runs, and one that needs the kernel shows, instead of
an error, the outputs recorded for it on a real kernel under a one-line banner
(labkit.teach.replay.cells), so "Run All" goes through and leaves the notebook as rich as it
was stored. With privileges every cell runs for real.
"""
from __future__ import annotations

from ...errors import NotPrivileged
from ...kernel import privilege

_state = {"told": False}


def setup(quiet: bool = False) -> bool:
    """Prepare an IPython kernel for labkit (and its `%%lab ROLE` cell magic); returns True
    if labs can run here.

    Without privileges, prints once what is needed; a later cell that needs the kernel then
    shows the outputs recorded for it (labkit.teach.replay.cells; none fails, so "Run All" goes
    through)."""
    missing = privilege.missing_capabilities()
    shell = _shell()
    if shell is not None:
        shell.extension_manager.load_extension("labkit.teach.notebook.magic")   # %%lab ROLE
        if missing:
            from ..replay.cells import install
            install(shell)           # cells that need the kernel replay what it printed
        else:
            shell.set_custom_exc((NotPrivileged,), _short_note)
    if missing and not _state["told"]:
        _state["told"] = True
        print("labkit needs a privileged Linux VM to run these cells for real (root with "
              f"CAP_NET_ADMIN and CAP_SYS_ADMIN; missing here: {', '.join(missing)}).\n"
              "Cells that need the kernel show the outputs recorded for them on a real kernel, "
              "under a line saying so; the others (plans, drawings, your own code) run here. To run "
              "them all for real: start JupyterLab as root in a VM (see the README), then run "
              "the notebook again.")
        if privilege.world_problem():   # the kernel "Python (labkit lab)" tried a world of your own
            print(f"Your own world of user namespaces could not be made: {privilege.world_problem()} "
                  f"(`labkit doctor` says the same, with the fix).")
    elif not missing and not quiet:
        print("labkit is ready: root with CAP_NET_ADMIN; labs run on this kernel.")
    if not missing:
        from .two_notebooks import tell
        tell()  # another notebook works in the default lab: say so once, offer a lab of its own
    return not missing


def _shell():
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


SKIPPED = "(skipped: this cell needs a privileged VM; see the first cell)"


def _short_note(shell, etype, value, tb, tb_offset=None):
    if not _state["told"]:
        _state["told"] = True
        print(f"labkit: {value}")
    else:
        print(SKIPPED)
