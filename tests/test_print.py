"""Handouts on paper, measured on the PDFs: one --stored build of the whole course (and of a
synthetic lesson with every kind of solution marker and two labkit pictures as SVG) shared by
the tests of this module; no root, no kernel. Plus the proofreader itself, shown a bad page.

Run alone: .venv/bin/python -m pytest -q -p no:randomly tests/test_print.py"""
import json
import os
import re
import shutil
import subprocess

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from labkit.model import seed
from labkit.model.stages import STAGES
from labkit.teach.printed import editions, handout, page, printer, proof
from labkit.teach.replay import course

pytestmark = pytest.mark.skipif(shutil.which("chromium") is None or shutil.which("pdftotext") is None,
                                reason="apt-get install chromium poppler-utils")

SECRETS = ("ANSWER-PREDICT-7Q", "SOLUTION-CMD-3Z", "veth0-secret-9", "INSTRUCTOR-NOTE-5K")
LONG = ("sudo iptables -t nat -A POSTROUTING -s 172.18.0.0/16 -d 172.18.0.10 -o br0 -p tcp -m tcp "
        "--dport 5000 -m conntrack --ctstate DNAT -j MASQUERADE --random-fully --to-ports 1024-65535")


def pictures():
    """A topology diagram and a ladder, as labkit.draw makes them (SVG, text kept as text)."""
    from scapy.layers.inet import ICMP, IP
    from scapy.layers.l2 import Ether
    from synthetic import frame, seen

    from labkit.capture import Packets, PointStats
    from labkit.draw import diagram, ladder
    from labkit.model import stages
    points = ["netns0:ceth0", "host:br0", "host:ens18"]
    req = lambda src: frame(Ether(), IP(src=src, dst="203.0.113.80"), ICMP(id=7, seq=1))
    packets = Packets([seen(0, points[0], "out", req("172.18.0.10")),
                       seen(9, points[1], "in", req("172.18.0.10"), upper=True),
                       seen(20, points[2], "out", req("10.0.2.15"))],
                      [PointStats(p, 1, 1, 0) for p in points])
    return diagram.figure(stages.build("hairpin")).render("svg"), ladder.figure(packets).render("svg")


def synthetic_notebook(path):
    topology, lad = pictures()
    svg = lambda s: new_output("display_data", {"image/svg+xml": s, "text/plain": "<figure>"})
    nb = new_notebook(cells=[
        new_markdown_cell("# 90 · A synthetic lesson\n\nThe container 172.18.0.10 reaches "
                          "`http://10.0.2.15:5000/` through br0."),
        new_code_cell("import labkit.teach.notebook; labkit.teach.notebook.setup()", outputs=[
            new_output("stream", name="stdout", text="labkit is ready: root with CAP_NET_ADMIN\n"),
            new_output("execute_result", {"text/plain": "True"}, execution_count=1)]),
        new_markdown_cell("**Predict.** Which source address will the world see?\n\n"
                          "<!-- BEGIN SOLUTION -->\nThe host's, ANSWER-PREDICT-7Q: MASQUERADE rewrote it."
                          "\n<!-- END SOLUTION -->"),
        new_code_cell("%%lab host\n### BEGIN SOLUTION\nsudo sysctl -w net.ipv4.ip_forward=1  # SOLUTION-CMD-3Z\n"
                      + LONG + "\n### END SOLUTION", outputs=[
                          new_output("stream", name="stdout", text="root@host:~# " + LONG + "\n"),
                          new_output("stream", name="stdout", text="root@host:~# done\n")]),
        new_code_cell('### BEGIN SOLUTION\nanswer = "veth0-secret-9"\n### END SOLUTION'),
        new_code_cell('lesson.check("veth-route", answer, lab)', outputs=[
            new_output("execute_result", {"text/plain": "Right: veth0. Why: the route."}, execution_count=4)]),
        new_markdown_cell("INSTRUCTOR-NOTE-5K: students forget `ip link set lo up`.",
                          metadata={"tags": ["instructor"]}),
        new_markdown_cell("## The topology"),
        new_code_cell("lesson.draw(lab)", outputs=[svg(topology)]),
        new_markdown_cell("## The capture"),
        new_code_cell("trace.show()", outputs=[svg(lad)]),
        new_markdown_cell("## The end\n\nThat is all."),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    path.write_text(json.dumps(nb))
    return str(path)


@pytest.fixture(scope="module")
def printed(tmp_path_factory):
    """The course and the synthetic lesson printed from stored outputs: {edition: [pdf paths]}."""
    here = tmp_path_factory.mktemp("handouts")
    lesson = synthetic_notebook(here / "90-synthetic.ipynb")
    out = here / "out"
    written = handout.build(str(out), course.notebooks() + [lesson], run=False)
    pdfs = {e: sorted(p for p in written if p.endswith(".pdf") and f"/{e}/" in p) for e in handout.EDITIONS}
    return {"dir": out, "pdfs": pdfs, "lesson": lesson}


def html_of(pdf):
    return open(pdf[:-4] + ".html").read()


def text_of(pdf, *how):
    """The PDF's text; pages end with a form feed. (how: "-layout" keeps columns side by side.)"""
    return subprocess.run(["pdftotext", *how, pdf, "-"], capture_output=True, text=True, check=True).stdout


def without_footers(text):
    """The PDF's text without each page's footer (its title line, then "N / M" at the end):
    a paragraph broken across two pages reads on as one."""
    import re
    pages = []
    for page_text in text.split("\f"):
        lines = page_text.rstrip("\n").split("\n")
        if lines and re.fullmatch(r"\d+ ?/ ?\d+", lines[-1].strip()):   # "6 / 7", or "6/7" when short
            lines.pop()
            while lines and not lines[-1].strip():
                lines.pop()
            lines = lines[:-1]
        pages.append("\n".join(lines))
    return "\n".join(pages)


def folded(text):
    return " ".join(text.replace(page.CONTINUATION, " ").split())


def squeezed(text):
    """Text without any space (pdftotext puts one where inline code's padding is)."""
    return "".join(text.replace(page.CONTINUATION, "").split())


def every_pdf(printed):
    return [p for e in handout.EDITIONS for p in printed["pdfs"][e]]


def part_starts(pdf):
    """Pages that begin a part of their own: a booklet's parts, each cheat sheet."""
    name = os.path.basename(pdf)
    if name == "cheatsheets.pdf":
        return tuple(range(1, 100))
    if name == "course.pdf":
        return tuple(n for key, (n, _) in printer.destinations(pdf).items() if key.startswith("part-"))
    return ()


# --- what is written ----------------------------------------------------------------------------

def test_each_edition_has_every_notebook_the_booklet_and_the_cheat_sheets(printed):
    names = [os.path.splitext(os.path.basename(p))[0] for p in course.notebooks()] + ["90-synthetic"]
    for edition in handout.EDITIONS:
        where = printed["dir"] / edition
        expected = {f"{n}.{x}" for n in names + ["course", "cheatsheets"] for x in ("html", "pdf")}
        assert expected <= set(os.listdir(where))
        for pdf in printed["pdfs"][edition]:
            sizes = re.findall(r"size:\s+([\d.]+) x ([\d.]+)",
                               subprocess.run(["pdfinfo", "-l", "999", pdf], capture_output=True, text=True).stdout)
            assert sizes and all(sorted(round(float(v)) for v in s) == [595, 842] for s in sizes), pdf


def test_html_is_offline_and_prints_as_the_pdf_does(printed):
    for pdf in every_pdf(printed):
        html = html_of(pdf)
        assert handout.external_references(html) == [], pdf
        assert 'id="labkit-handout"' in html and "@page" in html and "size: A4" in html, pdf


# --- type sizes -----------------------------------------------------------------------------------

def test_no_text_below_10_pt_body_or_8_pt_code(printed):
    for pdf in every_pdf(printed):
        html = html_of(pdf)
        small = [w for w in proof.too_small(pdf, html) if w[3] != "figure"]
        assert small == [], (pdf, small[:5])
        sizes = proof.smallest(pdf, html)
        assert sizes.get("body", 99) >= page.MIN_BODY_PT - 0.05, (pdf, sizes)
        assert sizes.get("code", 99) >= page.MIN_CODE_PT - 0.05, (pdf, sizes)
        words, sizes = proof.layout(pdf)
        words = [w for w in words if proof.in_text_area(w, sizes[w.page - 1])]     # not the footer
        kinds = proof.kinds(html)
        known = sum(proof.kind_of(w.text, kinds) != "other" for w in words)
        assert known >= 0.95 * len(words), (pdf, known, len(words))     # the sizes say something


def test_svg_pictures_keep_their_text_as_text_at_6_5_pt_or_more(printed):
    for edition in handout.EDITIONS:
        pdf = str(printed["dir"] / edition / "90-synthetic.pdf")
        words, _ = proof.layout(pdf)
        figure_words = proof.kinds(html_of(pdf))["figure"]
        printed_figure = [w for w in words if proof.bare(w.text) in figure_words and w.text != "·"]
        assert {"ceth0", "veth0", "wan0", "netns0"} <= {w.text for w in printed_figure}
        assert min(w.size for w in printed_figure) >= page.MIN_FIGURE_PT - 0.05, edition


def test_the_course_pictures_print_their_text_at_6_5_pt_or_more(printed):
    """Ladders are drawn for a page (labkit.draw.ladder.fits_a4); stored PNGs are measured by
    their resolution on the page, with every labkit figure's text at FONT."""
    small = {}
    for pdf in printed["pdfs"]["student"]:
        sizes = [w[2] for w in proof.too_small(pdf, html_of(pdf)) if w[3] == "figure"]
        sizes += [pt for pt in proof.picture_text(pdf) if pt < page.MIN_FIGURE_PT]   # PNG: estimated
        if sizes:
            small[os.path.basename(pdf)] = min(sizes)
    assert small == {}


def test_a_picture_prints_at_its_own_size_or_as_large_as_the_page_allows(printed):
    """PNG pictures: at their drawn size, or with their smallest text at 6.5 pt or more, or
    as wide as a landscape page."""
    from labkit.teach.printed.typeset import INPUT_ROOM, PNG_DPI, PNG_SMALLEST_PT
    for pdf in printed["pdfs"]["student"]:
        out = subprocess.run(["pdfimages", "-list", pdf], capture_output=True, text=True).stdout
        for row in out.splitlines()[2:]:
            cols = row.split()
            if cols[2] == "image" and int(cols[3]) >= 200:
                natural, printed_width = int(cols[3]) / PNG_DPI * 72, int(cols[3]) / float(cols[12]) * 72
                height = int(cols[4]) / PNG_DPI * 72
                landscape = min(page.LANDSCAPE_WIDTH, natural * (page.LANDSCAPE_HEIGHT - INPUT_ROOM) / height)
                assert (printed_width >= natural - 2 or PNG_SMALLEST_PT * printed_width / natural >= 6.45
                        or printed_width >= landscape - 4), (pdf, row)


# --- code and commands ----------------------------------------------------------------------------

def test_every_command_word_and_address_prints_whole(printed):
    for pdf in every_pdf(printed):
        assert proof.broken_tokens(pdf, html_of(pdf)) == [], pdf
    lesson = str(printed["dir"] / "instructor" / "90-synthetic.pdf")
    text = text_of(lesson)
    assert page.CONTINUATION in text                          # the long command wrapped, visibly
    assert folded(LONG) in folded(text)
    for pdf in every_pdf(printed):
        words, sizes = proof.layout(pdf)
        right = [w for w in words if w.x1 > sizes[w.page - 1][0] - page.MARGIN["side"] * page.PT_PER_MM + 2]
        assert right == [], (pdf, right[:3])                  # nothing runs into the margin


# --- editions ---------------------------------------------------------------------------------------

def solutions(nb_path):
    """The solution lines of an instructor's notebook (between the markers)."""
    import nbformat
    out = []
    for cell in nbformat.read(nb_path, as_version=4).cells:
        if editions.STUDENT_TAG in cell.metadata.get("tags", []):
            continue                    # the student's own cells: not in the instructor's edition
        inside = False
        for line in cell.source.split("\n"):
            if editions.BEGIN in line:
                inside = True
            elif editions.END in line:
                inside = False
            elif inside and len(line.strip()) > 6:
                out.append(plain(line) if cell.cell_type == "markdown" else line.strip())
    return out


def plain(markdown_line):
    """A line of markdown as it reads once rendered (no list bullet, backticks, stars)."""
    line = re.sub(r"^\s*(?:[-*+]|\d+\.)\s+", "", markdown_line)
    return re.sub(r"`|\*\*|(?<!\w)[*_]|[*_](?!\w)", "", line).strip()


def everything(nb) -> str:
    """All the text a notebook holds: sources and outputs."""
    out = []
    for cell in nb["cells"]:
        out.append(cell["source"])
        for o in cell.get("outputs", []):
            out += [o.get("text", "")] + [v for k, v in o.get("data", {}).items() if k.startswith("text/")]
    return "\n".join("".join(x) if isinstance(x, list) else x for x in out)


def test_the_students_edition_has_no_solution_answer_or_verdict(printed):
    import nbformat
    for pdf in printed["pdfs"]["student"]:
        text = folded(text_of(pdf))
        assert "Right:" not in text, pdf
        assert not any(s in text for s in SECRETS), pdf
        assert "checks unmet)" not in text and "the stage does: " not in text, pdf  # no check's output
    for nb_path in course.notebooks() + [printed["lesson"]]:
        name = os.path.splitext(os.path.basename(nb_path))[0]
        text = squeezed(text_of(str(printed["dir"] / "student" / f"{name}.pdf")))
        plain = squeezed(everything(editions.student(nbformat.read(nb_path, as_version=4))))
        leaked = [s for s in solutions(nb_path) if squeezed(s) in text and squeezed(s) not in plain]
        assert leaked == [], (name, leaked)
    lesson = html_of(str(printed["dir"] / "student" / "90-synthetic.pdf"))
    assert lesson.count('class="lk-room"') == 3                # room to write where each solution was


def test_the_instructors_edition_has_every_solution_and_notes(printed):
    for nb_path in course.notebooks() + [printed["lesson"]]:
        name = os.path.splitext(os.path.basename(nb_path))[0]
        text = squeezed(without_footers(text_of(str(printed["dir"] / "instructor" / f"{name}.pdf"))))
        missing = [s for s in solutions(nb_path) if squeezed(s) not in text]
        assert missing == [], (name, missing)
        assert "Fortheinstructor" in text and "Time." in text, name
        with open(nb_path) as f:
            notes = [c for c in json.load(f)["cells"] if editions.INSTRUCTOR_TAG in c["metadata"].get("tags", [])]
        student = squeezed(text_of(str(printed["dir"] / "student" / f"{name}.pdf")))
        for cell in notes:                  # the cells tagged instructor: in this edition alone
            first = squeezed(plain("".join(cell["source"]).splitlines()[-1]))[:60]
            assert first in text and first not in student, (name, first)
    assert all(any(editions.INSTRUCTOR_TAG in c["metadata"].get("tags", [])
                   for c in json.load(open(p))["cells"]) for p in course.notebooks()[1:7])   # 01-06
    text = folded(text_of(str(printed["dir"] / "instructor" / "90-synthetic.pdf")))
    assert all(s in text for s in SECRETS) and "Right: veth0" in text
    assert "veth-route" in text and "ceth0 is inside netns0" in text   # the exercise's usual wrong answers


def test_setup_cells_print_nothing(printed):
    for pdf in every_pdf(printed):
        assert "labkit is ready" not in text_of(pdf), pdf
    from bs4 import BeautifulSoup
    for edition in handout.EDITIONS:
        soup = BeautifulSoup(html_of(str(printed["dir"] / edition / "90-synthetic.pdf")), "html.parser")
        (setup,) = [c for c in soup.select(".jp-CodeCell") if "setup()" in c.get_text()]
        assert setup.select(".jp-OutputArea-output") == []      # neither "labkit is ready" nor True
        assert "celltag_lk-hidden" in setup["class"]            # and the cell itself not printed
        assert "notebook.setup()" not in text_of(str(printed["dir"] / edition / "90-synthetic.pdf"))


# --- pages --------------------------------------------------------------------------------------

def test_no_page_more_than_half_blank_unless_the_next_block_could_not_fit(printed):
    for pdf in every_pdf(printed):
        assert proof.half_blank(pdf, part_starts(pdf)) == [], pdf


def test_no_heading_is_the_last_thing_on_a_page(printed):
    for pdf in every_pdf(printed):
        assert proof.headings_last(pdf, html_of(pdf)) == [], pdf


def test_the_booklet_starts_with_a_title_page_and_contents_whose_numbers_are_right(printed):
    for edition in handout.EDITIONS:
        pdf = str(printed["dir"] / edition / "course.pdf")
        pages = text_of(pdf, "-layout").split("\f")
        assert "Container networking on the real Linux kernel" in folded(pages[0])
        assert f"{edition.capitalize()}'s edition" in pages[0]
        listed = [(t, n) for t, n in re.findall(r"^\s*(\S.*?\S)\s+(\d+)\s*$", pages[1], re.M)
                  if not t.endswith("/")]                       # not the footer's "2 / 90"
        starts = printer.destinations(pdf)
        titles = [handout.title_of(__import__("nbformat").read(p, as_version=4), "")
                  for p in course.notebooks() + [printed["lesson"]]] + ["Cheat sheets"]
        assert [t for t, _ in listed] == titles
        names = [os.path.splitext(os.path.basename(p))[0] for p in course.notebooks() + [printed["lesson"]]]
        for (title, number), name in zip(listed, names + ["cheatsheets"]):
            assert starts[f"part-{name}"][0] == int(number), title


def test_one_cheat_sheet_page_per_stage_with_the_seeds_commands_and_the_tools(printed):
    pdf = str(printed["dir"] / "student" / "cheatsheets.pdf")
    pages = [folded(p) for p in text_of(pdf).split("\f") if p.strip()]
    assert len(pages) == len(STAGES)
    for stage, text in zip(STAGES, pages):
        assert f"Stage {stage}: cheat sheet" in text
        words = set(text.split())
        for step in seed.steps(stage):                     # a command's words, each whole
            assert set(step.command.split()) <= words, (stage, step.command)
    whole = " ".join(pages)
    for tool in ("ip -br addr", "ip route get", "bridge link", "iptables -t nat -S -v", "conntrack -L",
                 "tcpdump -ni"):
        assert tool in whole, tool
