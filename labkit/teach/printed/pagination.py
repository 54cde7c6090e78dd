"""Second look at a printed handout: a page left more than half empty just before a landscape
page (the few cells that came after the last full page, before the page turned for a wide
picture) has its cells moved onto the landscape page, and the handout is printed once more.

    settle(html_path, pdf_path, main, document)   print; move such cells; print again if any

Which cell printed on which page comes from the PDF (each cell is a link target: pdfinfo
-dests); how full a page is, from the page drawn small (labkit.teach.printed.proof.ink).
"""
from __future__ import annotations

from . import proof
from .printer import destinations, to_pdf

CELL = "cell-id="


def lonely_cells(pdf_path: str) -> list[str]:
    """The ids of cells that start on a portrait page less than half full before a landscape one."""
    pages, where = proof.ink(pdf_path), destinations(pdf_path)
    found = []
    for k, (wide, rows) in enumerate(pages[:-1]):
        if not wide and pages[k + 1][0] and proof.covered(rows) < 0.5:
            found += sorted((y, name) for name, (number, y) in where.items()
                            if number == k + 1 and name.startswith(CELL))
    return [name for _, name in found]


def move_to_landscape(main: str, ids: list[str]) -> str:
    """`main` with the cells named by `ids` on landscape pages."""
    from bs4 import BeautifulSoup
    soup = BeautifulSoup(main, "html.parser")
    for name in ids:
        cell = soup.find(id=name)
        if cell is not None and "lk-wide" not in cell.get("class", []):
            cell["class"] = cell.get("class", []) + ["lk-wide"]
    return str(soup)


def settle(html_path: str, pdf_path: str, main: str, document) -> str:
    """Print `html_path` (the page `document(main)`) to `pdf_path`; if cells were left alone
    before a landscape page, move them onto it and print again. Returns `main` as printed."""
    to_pdf(html_path, pdf_path)
    ids = lonely_cells(pdf_path)
    if not ids:
        return main
    main = move_to_landscape(main, ids)
    with open(html_path, "w") as f:
        f.write(document(main))
    to_pdf(html_path, pdf_path)
    return main
