"""Pictures for a notebook cell: the live topology, and any drawing, as a PNG image.

PNG (`IPython.display.Image`) on purpose: nbval does not compare images, so a cell's stored
output stays stable. matplotlib and IPython are imported only when a picture is made."""
from __future__ import annotations

import contextlib
import logging

from ...kernel import privilege


@contextlib.contextmanager
def quiet_matplotlib():
    """Keep matplotlib's one-off log lines (building the font cache) out of cell outputs."""
    logger = logging.getLogger("matplotlib")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def image(png: bytes):
    """PNG bytes as an image a notebook displays."""
    from IPython.display import Image
    return Image(data=png, format="png")


def draw(lab, since: str | None = None):
    """The lab as the kernel holds it now (`lab.inspect()`), as a PNG image for a notebook.

    With `since` (a stage name), what differs from that stage's plan is marked. Needs root."""
    privilege.require()
    from ...draw import diagram
    previous = lab.plan(since) if since else None
    with quiet_matplotlib():
        return image(diagram.render(diagram.layout(lab.inspect(), previous), "png"))
