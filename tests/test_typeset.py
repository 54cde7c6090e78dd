"""Handouts without a browser: where code lines break, how pictures are placed, what each
edition keeps (labkit.teach.printed.typeset, copies). And the proofreader shown a page that breaks
every rule, and a page of known sizes (one Chromium print each)."""
import re
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from labkit.teach.printed import copies, page, printer, proof, typeset

needs_chromium = pytest.mark.skipif(shutil.which("chromium") is None or shutil.which("pdftotext") is None,
                                    reason="apt-get install chromium poppler-utils")


def apply(text, points):
    out, last = "", 0
    for start, end, indent in points:
        out += text[last:start] + " \\\n" + indent
        last = end
    return out + text[last:]


# --- code lines ----------------------------------------------------------------------------------

token = st.text(alphabet="abcdefghij0123456789.-/:=", min_size=1, max_size=30)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(token, min_size=1, max_size=25), min_size=1, max_size=4),
       st.integers(min_value=0, max_value=8), st.integers(min_value=30, max_value=100))
def test_code_breaks_only_between_tokens_and_fits_the_line(lines, lead, width):
    text = "\n".join(" " * lead + " ".join(words) for words in lines)
    points = typeset.wrap_points(text, width)
    assert all(set(text[s:e]) == {" "} for s, e, _ in points)          # only spaces become breaks
    wrapped = apply(text, points)
    assert wrapped.replace(" \\\n", " ").split() == text.split()          # every token whole, in order
    for line in wrapped.split("\n"):
        body = line.removesuffix(" \\")
        assert len(body) <= width or " " not in body.strip() or len(max(body.split(), key=len)) > width - 8


def test_a_long_command_wraps_with_a_hanging_indent():
    cmd = ("root@host:~# sudo iptables -t nat -A PREROUTING -d 10.0.2.15 -p tcp -m tcp --dport 5000 "
           "-j DNAT --to-destination 172.18.0.10:5000")
    wrapped = apply(cmd, typeset.wrap_points(cmd, 60)).split("\n")
    assert len(wrapped) == 3 and all(line.endswith(" \\") for line in wrapped[:-1])
    assert all(line.startswith("    ") and not line.startswith("     ") for line in wrapped[1:])
    assert "--to-destination" in wrapped[1] and wrapped[2].strip() == "172.18.0.10:5000"


def test_typeset_marks_breaks_keeps_tokens_whole_and_stacks_code_tables():
    long = "x = call(" + ", ".join(f"'argument-{k}'" for k in range(20)) + ")"
    html = ('<div class="jp-Cell jp-CodeCell"><div class="highlight"><pre><span class="n">'
            + long + "</span></pre></div></div>"
            '<div class="jp-RenderedMarkdown"><p>See <code>ip route get 172.18.0.10</code> and '
            "http://10.0.2.15:5000/ now.</p></div>"
            "<table><thead><tr><th>commands</th><th>labkit</th></tr></thead><tbody><tr><td><pre>"
            "sudo ip link add br0 type bridge</pre></td><td><pre>lab.up('bridge')</pre></td></tr></tbody></table>")
    out, figures = typeset.typeset(html)
    assert out.count('class="lk-cont"') >= 2 and figures == []
    from bs4 import BeautifulSoup
    soup = BeautifulSoup(out, "html.parser")
    assert " ".join(soup.find("pre").get_text().split()) == " ".join(long.split())
    assert [s.get_text() for s in soup.select("code .lk-tok")] == ["172.18.0.10"]
    assert "http://10.0.2.15:5000/" in [s.get_text() for s in soup.select("p > .lk-tok")]
    assert soup.find("table") is None and soup.select(".lk-stacked .lk-head")[0].get_text() == "commands"


def test_tabs_count_as_the_spaces_they_print_as():
    html = "<pre>\t\tip saddr 172.18.0.0/16 ip daddr 172.18.0.10 oifname \"br0\" tcp dport 5000 ct status dnat masquerade</pre>"
    out, _ = typeset.typeset(html)
    text = re.sub(r"<[^>]+>", "", out)
    assert "\t" not in text and all(len(line) <= page.CODE_COLUMNS for line in text.split("\n"))


# --- pictures -------------------------------------------------------------------------------------

def test_a_picture_keeps_its_size_is_scaled_or_turns_the_page():
    assert typeset.place(400, 300, 8) == (400, False)                      # fits: drawn size
    width, wide = typeset.place(600, 300, 8)                               # 8 pt * 0.87 >= 6.5
    assert not wide and width == pytest.approx(page.TEXT_WIDTH)
    width, wide = typeset.place(880, 300, 8)                               # 8 pt * 0.59 < 6.5
    assert wide and width == pytest.approx(page.LANDSCAPE_WIDTH)
    width, wide = typeset.place(700, 300, 8)                               # landscape at its own size
    assert wide and width == 700
    width, wide = typeset.place(500, 800, 8)        # tall: its cell's input still fits above it
    assert not wide and 800 * width / 500 == pytest.approx(page.TEXT_HEIGHT - typeset.INPUT_ROOM)


def test_an_svg_picture_is_inlined_with_ids_of_its_own():
    import base64
    svg = ('<?xml version="1.0"?><svg width="900pt" height="300pt" viewBox="0 0 900 300">'
           '<defs><clipPath id="p1"><rect/></clipPath></defs><g clip-path="url(#p1)">'
           '<text style="font: 8px \'DejaVu Sans Mono\'">netns0</text></g></svg>')
    uri = "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
    html = (f'<div class="jp-Cell"><div class="jp-OutputArea-child"><div class="jp-RenderedSVG">'
            f'<img src="{uri}"></div></div></div>')
    out, (fig,) = typeset.typeset(html)
    assert "<img" not in out and 'id="lk0-p1"' in out and "url(#lk0-p1)" in out
    assert fig.kind == "svg" and fig.landscape and fig.smallest_pt == pytest.approx(8 * page.LANDSCAPE_WIDTH / 900, abs=0.01)
    assert "lk-wide" in out



def test_an_svg_fitted_to_its_output_area_is_printed_at_its_drawn_size():
    """A figure's HTML form (netfilter()): the SVG says width 100% and its drawn width as
    max-width; it prints at that width (not at the viewBox read as pixels, 3/4 of it)."""
    from labkit.draw.figure import fitted_svg
    svg = ('<svg width="500pt" height="600pt" viewBox="0 0 500 600" xmlns="http://www.w3.org/2000/svg">'
           '<text style="font-size: 8px">PREROUTING</text></svg>')
    html = (f'<div class="jp-Cell"><div class="jp-OutputArea-child"><div class="jp-RenderedHTML">'
            f'<div class="labkit-netfilter">{fitted_svg(svg)}</div></div></div></div>')
    out, (fig,) = typeset.typeset(html)
    assert fig.natural == 500 and fig.printed == 500 and fig.smallest_pt == 8 and not fig.landscape


# --- editions -------------------------------------------------------------------------------------

def lesson():
    return new_notebook(cells=[
        new_markdown_cell("# 02 · Two containers\n\nIntro."),
        new_code_cell("import labkit.teach.notebook; labkit.teach.notebook.setup()", outputs=[
            new_output("stream", name="stdout", text="labkit is ready\n"),
            new_output("execute_result", {"text/plain": "True"}, execution_count=1)]),
        new_code_cell("lab.practice('two-veths')", outputs=[
            new_output("stream", name="stdout", text="root@host:~# one\n"),
            new_output("stream", name="stdout", text="root@host:~# two\n"),
            new_output("display_data", {"application/vnd.jupyter.widget-view+json": {"model_id": "x"},
                                        "text/plain": "StageStepper (text)"})]),
        new_markdown_cell("Predict?\n\n<!-- BEGIN SOLUTION -->\nveth0, because\nthe first route wins.\n"
                          "<!-- END SOLUTION -->"),
        new_code_cell("%%lab host\n### BEGIN SOLUTION\nip link add veth1 type veth peer name ceth1\n"
                      "ip link set veth1 up\n### END SOLUTION"),
        new_code_cell('lesson.check("two-veths-route", answer, lab)', outputs=[
            new_output("execute_result", {"text/plain": "Right: veth0. Why: ..."}, execution_count=5)]),
        new_markdown_cell("Watch for ceth1 left down.", metadata={"tags": ["instructor"]}),
    ])


def test_both_editions_leave_out_the_setup_output_and_widget_views_and_join_terminal_lines():
    for nb in (copies.student(lesson()), copies.instructor(lesson())):
        setup = [c for c in nb["cells"] if "setup()" in c["source"]][0]
        assert setup["outputs"] == []
        practice = [c for c in nb["cells"] if "practice" in c["source"]][0]
        assert practice["outputs"][0]["text"] == "root@host:~# one\nroot@host:~# two\n"
        assert "application/vnd.jupyter.widget-view+json" not in practice["outputs"][1]["data"]


def test_the_students_copy_has_room_where_solutions_were_and_no_verdict():
    nb = copies.student(lesson())
    text = str(nb)
    assert "veth0, because" not in text and "ip link set veth1 up" not in text and "Right:" not in text
    assert "Watch for ceth1" not in text
    rooms = re.findall(r'--lines: (\d+)', text)
    assert rooms == ["3", "3"]                     # two lines of answer, two of commands: and one more


def test_the_instructors_copy_boxes_answers_and_opens_with_notes():
    nb = copies.instructor(lesson(), seconds=42.0)
    notes = nb["cells"][1]["source"]
    assert "ran in 42 s" in notes and "two-veths-route" in notes and "ceth1 is inside netns1" in notes
    assert "What usually goes wrong in stage two-veths" not in notes or "--fault" in notes
    answer = [c for c in nb["cells"] if "because" in c["source"]][0]["source"]
    assert '<div class="lk-answer">' in answer and "BEGIN SOLUTION" not in answer
    solved = [c for c in nb["cells"] if "%%lab" in c["source"]][0]
    assert copies.SOLUTION_TAG in solved["metadata"]["tags"] and "ip link set veth1 up" in solved["source"]
    assert copies.stages_of(lesson()) == ["two-veths"] and copies.exercises_of(lesson()) == ["two-veths-route"]


# --- the proofreader ----------------------------------------------------------------------------

@needs_chromium
def test_word_sizes_are_read_from_the_pdf_as_printed(tmp_path):
    body = "".join(f'<p style="font: {pt}pt {font}">size{str(pt).replace(".", "_")} {font[:12]}</p>'
                   for pt in (6.5, 8, 10, 20) for font in (page.SANS, page.MONO))
    (tmp_path / "s.html").write_text(page.page("sizes", body, "sizes"))
    printer.to_pdf(str(tmp_path / "s.html"), str(tmp_path / "s.pdf"))
    words, _ = proof.layout(str(tmp_path / "s.pdf"))
    for w in words:
        if re.fullmatch(r"size[\d_]+", w.text):
            assert w.size == pytest.approx(float(w.text[4:].replace("_", ".")), abs=0.05), w


@needs_chromium
def test_the_proofreader_finds_every_fault_of_a_bad_page(tmp_path):
    bad = ('<div style="font-size: 8pt">Small body text here.</div>'
           '<pre style="font-size: 6pt">tiny code</pre>'
           '<pre style="white-space: pre-wrap; overflow-wrap: anywhere; width: 30mm">sudo iptables -t nat '
           '-A PREROUTING -j DNAT --to-destination 172.18.0.10:5000</pre>'
           '<div style="height: 215mm"></div><h2 style="break-after: auto">Stranded heading</h2>'
           '<div style="height: 90mm; break-inside: avoid; background: #eee">block</div>'
           '<p>A short page.</p><div style="break-before: page">The next page.</div>')
    (tmp_path / "bad.html").write_text(page.page("bad", bad, "bad"))
    pdf = str(tmp_path / "bad.pdf")
    printer.to_pdf(str(tmp_path / "bad.html"), pdf)
    html = (tmp_path / "bad.html").read_text()
    small = {(w, k) for _, w, _, k in proof.too_small(pdf, html)}
    assert ("Small", "body") in small and ("tiny", "code") in small
    assert "--to-destination" in proof.broken_tokens(pdf, html)
    assert [t for _, t in proof.headings_last(pdf, html)] == ["Stranded heading"]
    assert [p for p, _, _ in proof.half_blank(pdf)] == [2]
