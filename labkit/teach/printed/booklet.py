"""The course booklet of one edition: a title page, the contents with page numbers, then the
notebooks in order and the cheat sheets, each part from a fresh page (course.html, course.pdf).

The page numbers in the contents come from the parts' own PDFs (each part prints on the same
pages in the booklet as alone: same stylesheet, same page size); after printing, where each
part starts is read back from the PDF (each part is a link target: pdfinfo -dests), and the
booklet printed once more with the pages found if they differ.
"""
from __future__ import annotations

import datetime
import html
import os
from dataclasses import dataclass

from ...errors import LabkitError
from . import page
from .printer import destinations, pages, to_pdf

COVER_PAGES = 1
PER_CONTENTS_PAGE = 28


@dataclass(frozen=True)
class Part:
    """A part of the booklet: `main` its HTML, `pdf` the same printed alone (for its length)."""
    name: str
    title: str
    main: str
    pdf: str


def first_page(parts: list[Part]) -> int:
    """The booklet page the first part starts on (after the title page and the contents)."""
    return COVER_PAGES + 1 + (len(parts) - 1) // PER_CONTENTS_PAGE + 1


def planned_starts(parts: list[Part]) -> list[int]:
    """The page each part starts on, from the length of its own PDF."""
    starts, at = [], first_page(parts)
    for part in parts:
        starts.append(at)
        at += pages(part.pdf)
    return starts


def _cover(edition: str, parts: list[Part], run: bool) -> str:
    how = ("from a real run of every notebook on this machine" if run else
           "from the notebooks' stored outputs")
    who = {"student": "Student's edition: tasks and questions, with room to write",
           "instructor": "Instructor's edition: solutions, answers and notes"}[edition]
    today = datetime.date.today().isoformat()
    return (f'<section class="lk-cover"><h1>Container networking on the real Linux kernel</h1>'
            f"<p><strong>labkit course</strong> · {html.escape(who)}</p>"
            f"<p>{len(parts) - 1} notebooks and a cheat sheet per stage. Printed {today}, "
            f"{html.escape(how)}.</p></section>")


def _contents(parts: list[Part], starts: list[int]) -> str:
    rows = "".join(f'<li><a href="#part-{html.escape(p.name)}">{html.escape(p.title)}</a>'
                   f'<span class="lk-dots"></span><span>{n}</span></li>' for p, n in zip(parts, starts))
    return f'<section class="lk-contents"><h1>Contents</h1><ol>{rows}</ol></section>'


def document(edition: str, parts: list[Part], starts: list[int], run: bool) -> str:
    """The booklet's HTML."""
    body = _cover(edition, parts, run) + _contents(parts, starts) + "".join(
        f'<section class="lk-part" id="part-{html.escape(p.name)}">{p.main}</section>' for p in parts)
    return page.page(f"labkit course · {edition}'s edition", body,
                     f"labkit course · {edition}'s edition", f"lk-edition-{edition} lk-booklet")


def found_starts(pdf_path: str, parts: list[Part]) -> list[int | None]:
    """The page each part starts on in the printed booklet (None: not found)."""
    where = destinations(pdf_path)
    return [where.get(f"part-{p.name}", (None, 0))[0] for p in parts]


def write(directory: str, edition: str, parts: list[Part], run: bool) -> list[str]:
    """Write course.html and course.pdf of `edition` into `directory`; returns their paths."""
    html_path, pdf_path = os.path.join(directory, "course.html"), os.path.join(directory, "course.pdf")
    starts = planned_starts(parts)
    for _ in range(2):
        with open(html_path, "w") as f:
            f.write(document(edition, parts, starts, run))
        to_pdf(html_path, pdf_path)
        found = found_starts(pdf_path, parts)
        if found == starts:
            return [html_path, pdf_path]
        if None in found:
            missing = parts[found.index(None)].title
            raise LabkitError(f"the booklet {pdf_path} does not show where {missing!r} starts; "
                              "print it again, and report it if it persists")
        starts = found
    raise LabkitError(f"the booklet {pdf_path}: its parts moved when the contents were filled "
                      f"in ({starts}); report it")
