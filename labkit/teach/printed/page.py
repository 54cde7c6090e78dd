"""The printed page of a handout: A4 geometry, type sizes, and the stylesheet every handout
HTML carries (so the browser's own print dialog prints it as the PDF is printed).

    page(title, body, footer, kind)     a whole offline HTML document around `body`
    CODE_COLUMNS                        characters of code that fit a line of an A4 page

Sizes are chosen for paper and checked on the PDF (labkit.teach.printed.proof): body text 10.5 pt,
code 8.5 pt, headings never left at the foot of a page, pictures no wider than the text, a
wide picture on a landscape page of its own (`page: wide`). Fonts are DejaVu (Debian's
fonts-dejavu-core), the fonts labkit's figures are drawn with.
"""
from __future__ import annotations

import html

A4 = (210.0, 297.0)                      # mm
MARGIN = {"top": 14.0, "bottom": 17.0, "side": 13.0}  # mm; the footer sits in the bottom margin
PT_PER_MM = 72 / 25.4
TEXT_WIDTH = (A4[0] - 2 * MARGIN["side"]) * PT_PER_MM                      # 521.6 pt
LANDSCAPE_WIDTH = (A4[1] - 2 * MARGIN["side"]) * PT_PER_MM                 # 767.3 pt
TEXT_HEIGHT = (A4[1] - MARGIN["top"] - MARGIN["bottom"]) * PT_PER_MM
LANDSCAPE_HEIGHT = (A4[0] - MARGIN["top"] - MARGIN["bottom"]) * PT_PER_MM

BODY_PT, CODE_PT, FOOTER_PT = 10.5, 8.5, 8.5
MIN_BODY_PT, MIN_CODE_PT, MIN_FIGURE_PT = 10.0, 8.0, 6.5   # what the handouts must keep
MONO_ADVANCE = 0.602                     # DejaVu Sans Mono: 1233/2048 em per character
CODE_PAD = 5.0                           # pt: a code block's padding and border, each side
CODE_COLUMNS = int((TEXT_WIDTH - 2 * CODE_PAD) / (CODE_PT * MONO_ADVANCE)) - 1
CONTINUATION = "\u21a9"                  # ↩ ends a line that continues on the next

SANS = "'DejaVu Sans', 'Bitstream Vera Sans', Verdana, sans-serif"
MONO = "'DejaVu Sans Mono', 'Bitstream Vera Sans Mono', monospace"

STYLE = f"""
@page {{ size: A4; margin: {MARGIN['top']}mm {MARGIN['side']}mm {MARGIN['bottom']}mm;
  @bottom-left {{ font: {FOOTER_PT}pt {SANS}; color: #555; }}
  @bottom-right {{ content: counter(page) " / " counter(pages); font: {FOOTER_PT}pt {SANS}; color: #555; }} }}
@page wide {{ size: A4 landscape; }}
@page cover {{ @bottom-left {{ content: none; }} @bottom-right {{ content: none; }} }}
html {{ -webkit-print-color-adjust: exact; print-color-adjust: exact; }}
body {{ font: {BODY_PT}pt/1.42 {SANS}; color: #111; margin: 0 auto; max-width: 190mm;
  padding: 0 4mm; orphans: 3; widows: 3; }}
@media print {{ body {{ max-width: none; padding: 0; }} }}
h1, h2, h3, h4, h5, h6 {{ font-family: {SANS}; line-height: 1.25; break-after: avoid;
  page-break-after: avoid; break-inside: avoid; margin: 0.9em 0 0.35em; }}
h1 {{ font-size: 18pt; margin-top: 0; }} h2 {{ font-size: 14pt; }} h3 {{ font-size: 12pt; }}
h4, h5, h6 {{ font-size: 11pt; }}
a.anchor-link {{ display: none; }}
a {{ color: inherit; text-decoration: none; }}
p, li {{ margin: 0.35em 0; }}
ul, ol {{ padding-left: 1.6em; margin: 0.35em 0; }}
code, pre, kbd, samp {{ font-family: {MONO}; }}
code {{ font-size: 0.92em; background: #f2f2f2; padding: 0 0.15em; border-radius: 2px; }}
pre code {{ background: none; padding: 0; font-size: 1em; }}
.lk-tok {{ white-space: nowrap; }}
pre {{ font-size: {CODE_PT}pt; line-height: 1.3; margin: 0; white-space: pre; overflow: visible;
  word-break: keep-all; overflow-wrap: normal; }}
.lk-cont::after {{ content: " {CONTINUATION}"; color: #888; }}
table {{ border-collapse: collapse; margin: 0.4em 0; font-size: {BODY_PT}pt; }}
small {{ font-size: 10pt; }}
th, td {{ border-bottom: 1px solid #ccc; padding: 1pt 6pt 1pt 0; text-align: left; vertical-align: top; }}
th {{ font-family: {SANS}; }}
td code, th code {{ font-size: {CODE_PT}pt; background: none; padding: 0; }}
td pre, th pre {{ font-size: {CODE_PT}pt; }}
.lk-stacked > div {{ margin: 0.2em 0; }}
.lk-stacked .lk-head {{ font-family: {SANS}; font-weight: bold; font-size: 10pt; }}
.lk-stacked .lk-head small {{ font-weight: normal; }}
img, svg {{ max-width: 100%; height: auto; }}
.lk-figure {{ break-inside: avoid; margin: 0.3em 0; }}
.lk-figure img, .lk-figure svg {{ display: block; max-width: none; border: 0.6pt solid #d8d8d8; }}
.lk-wide {{ page: wide; }}
.jp-InputPrompt, .jp-OutputPrompt, .jp-Collapser, .jp-InputArea-prompt, .jp-OutputArea-prompt {{ display: none; }}
.jp-Cell {{ margin: 0 0 4.5mm; }}
.jp-CodeCell:not(.jp-mod-noOutputs) > .jp-Cell-inputWrapper {{ break-after: avoid; page-break-after: avoid; }}
.jp-CodeCell .jp-InputArea {{ background: #f5f6f8; border-left: 2.5pt solid #9aa7b8;
  padding: 2.5pt {CODE_PAD - 2.5}pt 2.5pt {CODE_PAD - 2.5}pt; }}
.jp-OutputArea-output {{ margin-top: 1.5mm; }}
.lk-anchors, .celltag_lk-hidden {{ display: none; }}
.jp-RenderedText pre {{ padding: 0 {CODE_PAD}pt; }}
.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"] pre {{ color: #8a1c1c; }}
.lk-short {{ break-inside: avoid; }}
.lk-keep-next {{ break-after: avoid; page-break-after: avoid; }}
.lk-room {{ break-inside: avoid; margin: 1.5mm 0 0; border: 0.8pt solid #777; border-radius: 2pt;
  background: repeating-linear-gradient(to bottom, #fff 0, #fff 7.5mm, #bbb 7.5mm, #bbb 7.8mm);
  height: calc(var(--lines) * 7.8mm); }}
.lk-room-label {{ font-size: 9pt; color: #555; margin-top: 1mm; }}
.lk-answer, .lk-instructor, .lk-notes {{ border-left: 3pt solid #c0392b; background: #fdf1ef;
  padding: 1.5mm 3mm; margin: 1.5mm 0; }}
.lk-answer::before, .lk-instructor::before, .lk-notes::before {{ display: block; font-weight: bold;
  color: #c0392b; font-size: 10pt; }}
.lk-answer::before {{ content: "Answer"; }}
.lk-instructor::before, .lk-notes::before {{ content: "For the instructor"; }}
.lk-instructor .jp-CodeCell .jp-InputArea, .lk-instructor .jp-InputArea {{ background: #fff; }}
.lk-solution .jp-InputArea {{ border-left-color: #c0392b; background: #fdf1ef; }}
.lk-cover {{ page: cover; height: 230mm; display: flex; flex-direction: column; justify-content: center; }}
.lk-cover h1 {{ font-size: 26pt; }} .lk-cover p {{ font-size: 13pt; }}
.lk-contents {{ break-before: page; }}
.lk-contents ol {{ list-style: none; padding: 0; }}
.lk-contents li {{ display: flex; font-size: 12pt; margin: 0.6em 0; }}
.lk-contents .lk-dots {{ flex: 1; border-bottom: 1pt dotted #888; margin: 0 0.4em 0.3em; }}
.lk-part {{ break-before: page; }}
.lk-sheet {{ break-before: page; }}
.lk-sheet:first-child {{ break-before: auto; }}
.lk-sheet h1 {{ font-size: 16pt; }}
.lk-sheet table {{ width: 100%; }}
.lk-sheet td code {{ display: block; padding-left: 1.5em; text-indent: -1.5em; }}
.lk-sheet td.lk-where {{ font-family: {MONO}; white-space: nowrap; }}
"""

PYGMENTS_STYLE = "default"


def code_style() -> str:
    """CSS for the syntax colours of code cells (pygments, as nbconvert highlights them)."""
    from pygments.formatters import HtmlFormatter
    return HtmlFormatter(style=PYGMENTS_STYLE).get_style_defs(".highlight")


def page(title: str, body: str, footer: str = "", kind: str = "") -> str:
    """A whole HTML document: `body` with the handout's stylesheet, nothing from the network.
    `footer` is printed at the foot of each page (the page number at the right)."""
    css_footer = '"' + footer.replace("\\", "\\\\").replace('"', '\\"').replace("<", "\\3c ") + '"'
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(title)}</title>\n"
            f'<style id="labkit-handout">{STYLE}\n@page {{ @bottom-left {{ content: {css_footer}; }} }}\n'
            f"{code_style()}</style>\n</head>\n"
            f'<body class="lk-handout {html.escape(kind)}">\n{body}\n</body>\n</html>\n')
