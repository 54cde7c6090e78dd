"""Vector pictures while a handout is made: run in the notebook's kernel by `labkit handout`
before the first cell, so that each topology diagram or ladder a cell shows as a PNG (as the
notebooks store them) also carries the same figure as SVG, text kept as text. The handout
prints the SVG: sharp at any size, and its words can be found and measured in the PDF.

    install()    in the kernel; nothing changes for the notebook's own outputs but the SVG added

Only for printing: notebooks keep storing PNG (nbval does not compare pictures)."""
from __future__ import annotations

_svg_of: dict[int, str] = {}
_MARK = "_labkit_vector"


def _remembering(render):
    """`render` (labkit.draw's diagram.render or ladder.render) that also keeps the SVG of each PNG."""
    def wrapper(what, fmt="png", *args, **kwargs):
        out = render(what, fmt, *args, **kwargs)
        if fmt == "png":
            _svg_of[hash(out)] = render(what, "svg")
        return out
    setattr(wrapper, _MARK, True)
    wrapper.__doc__ = render.__doc__
    return wrapper


def _svg(image) -> str | None:
    data = getattr(image, "data", None)
    return _svg_of.get(hash(data)) if isinstance(data, bytes) else None


def install() -> None:
    """Make every PNG picture labkit draws from now on in this kernel carry its SVG too."""
    from IPython import get_ipython
    from IPython.display import Image

    from ...draw import diagram, ladder
    from ..notebook.trace import Ladder
    for module in (diagram, ladder):
        if not getattr(module.render, _MARK, False):
            module.render = _remembering(module.render)
    shell = get_ipython()
    if shell is not None:
        formatter = shell.display_formatter.formatters["image/svg+xml"]
        formatter.enabled = True
        for kind in (Image, Ladder):            # a diagram; a trace's ladder (its data: the PNG)
            formatter.for_type(kind, _svg)
