"""Vector pictures while a handout is made: run in the notebook's kernel by `labkit handout`
before the first cell, so that every figure labkit draws (labkit.draw.figure.Figure: a
topology diagram, a ladder, a netfilter path) shows as SVG instead of the PNG the notebooks
store, its text kept as text. The handout prints the SVG: sharp at any size, and its words
can be found and measured in the PDF.

    install()    in the kernel; from then on every Figure shows as SVG (Figure.shows)

Only for printing: notebooks keep storing PNG (nbval compares a figure's text, not its picture)."""
from __future__ import annotations


def install() -> None:
    """Make every figure labkit shows from now on in this kernel an SVG picture."""
    from IPython import get_ipython

    from ...draw.figure import Figure
    Figure.shows = "svg"
    shell = get_ipython()
    if shell is not None:
        shell.display_formatter.formatters["image/svg+xml"].enabled = True
