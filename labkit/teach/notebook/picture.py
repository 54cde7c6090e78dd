"""The live topology for a notebook cell: `draw(lab)`, a labkit.draw.figure.Figure.

It shows as a PNG with the diagram's text tree as its text/plain: nbval compares that text
(namespaces, interfaces, addresses, routes), never the pixels."""
from __future__ import annotations

from ...kernel import privilege


def draw(lab, since: str | None = None):
    """The lab as the kernel holds it now (`lab.inspect()`) as a Figure for a notebook.

    With `since` (a stage name), what differs from that stage's plan is marked. Needs root."""
    privilege.require()
    from ...draw import diagram
    return diagram.figure(lab.inspect(), lab.plan(since) if since else None)
