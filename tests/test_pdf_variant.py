"""The PDF's variant of the report (issue 15): above output.pdf_detail_tables_max_areas Sozialräume bericht.pdf
leaves the detail tables per Sozialraum out and says where they are; bericht.html keeps them all, and the
allocation table the committee votes on is always in the PDF."""

from __future__ import annotations

import re
import shutil
import subprocess
from html import unescape

import pytest

from geoplan.config import OutputConfig
from geoplan.report import html
from geoplan.report.published import build_published

#: table id in bericht.html -> key of the sentence that replaces it in the PDF
DETAIL_IDS = {"indikatortabelle": "ind", "bedarfstabelle": "need", "bym2-intervalle": "bym2",
              "korridortabelle": "binding", "abstandstabelle": "dist", "sensitivitaetstabelle": "sens"}


def _table_ids(doc: str) -> list[str]:
    return re.findall(r'<table id="([^"]+)"', doc)


def _rows(doc: str, table_id: str) -> int:
    return re.search(rf'<table id="{table_id}".*?</table>', doc, re.DOTALL).group(0).count("<tr")


def _wide_blocks(doc: str) -> list[str]:
    """The landscape blocks (<div class="wide">…</div>; they hold no other div)."""
    return re.findall(r'<div class="wide">.*?</div>', doc, re.DOTALL)


@pytest.fixture(scope="module")
def pubs(demo_result):
    return {lang: build_published(demo_result, lang=lang) for lang in ("de", "en")}


@pytest.fixture(scope="module")
def variant(demo_result, pubs):
    """``html.render_reports(demo_result, pubs[lang], lang, pdf_max_areas=len(frame) - 1)`` (bericht.html and the
    PDF's text just below the limit), rendered once per language for the tests that read it: the same call
    gives the same text (tests/test_report_determinism.py checks the outputs byte by byte)."""
    n = len(demo_result.frame)
    return {lang: html.render_reports(demo_result, pubs[lang], lang, pdf_max_areas=n - 1) for lang in ("de", "en")}


def test_default_limit_and_its_values():
    assert OutputConfig().pdf_detail_tables_max_areas == 30  # one landscape page of rows
    assert OutputConfig(pdf_detail_tables_max_areas=0).pdf_detail_tables_max_areas == 0
    assert OutputConfig(pdf_detail_tables_max_areas=None).pdf_detail_tables_max_areas is None
    with pytest.raises(ValueError):
        OutputConfig(pdf_detail_tables_max_areas=-1)


def test_pdf_omits_exactly_the_detail_tables_above_the_limit(demo_result, variant):
    n = len(demo_result.frame)
    page, pdf = variant["de"]
    ids = _table_ids(page)
    details = [i for i in ids if i in DETAIL_IDS]
    assert {"indikatortabelle", "bedarfstabelle", "korridortabelle", "abstandstabelle",
            "sensitivitaetstabelle"} <= set(details)
    # bericht.html keeps every table with one row per Sozialraum; the PDF keeps all but the detail tables
    assert _table_ids(pdf) == [i for i in ids if i not in DETAIL_IDS]
    assert page.count("<table") - pdf.count("<table") == len(details)
    assert _rows(pdf, "verteilungstabelle") == _rows(page, "verteilungstabelle") == 1 + n + 1
    for i in details:
        assert _rows(page, i) >= 1 + (n if i != "korridortabelle" else demo_result.allocation.binding.shape[0])
    # the PDF is bericht.html with each detail block replaced by its sentence, nothing else changed
    sentences = dict(re.findall(r'<p class="note" id="pdf-ohne-(\w+)">(.*?)</p>', pdf))
    assert sorted(sentences) == sorted(DETAIL_IDS[i] for i in details)
    expected = page
    for block in _wide_blocks(page):
        table_id = (_table_ids(block) or [""])[0]
        if table_id in DETAIL_IDS:
            key = DETAIL_IDS[table_id]
            expected = expected.replace(block, f'<p class="note" id="pdf-ohne-{key}">{sentences[key]}</p>')
    binding = re.search(r'<table id="korridortabelle".*?</table>\n', page, re.DOTALL).group(0)  # not in a wide block
    expected = expected.replace(binding, f'<p class="note" id="pdf-ohne-binding">{sentences["binding"]}</p>')
    expected = expected.replace("Die Tabelle zeigt je Sozialraum", "Die Tabelle in bericht.html zeigt je Sozialraum")
    assert pdf == expected
    assert unescape(sentences["need"]) == (
        f"Die Tabelle „Erwarteter Bedarf je Sozialraum“ ({n} Sozialräume) steht nicht im PDF, sondern in "
        "bericht.html, Abschnitt 4 „Bedarfsmodell“, und in verteilung.xlsx, Blatt „Verteilung“ (Tabellen je "
        f"Sozialraum stehen im PDF bis {n - 1} Sozialräume, output.pdf_detail_tables_max_areas).")
    assert "Abschnitt 3 „Indikatoren“" in unescape(sentences["ind"])
    assert "Abschnitt 6 „Verteilungsgerechtigkeit“" in unescape(sentences["dist"])
    n_held = len(demo_result.allocation.binding)
    assert unescape(sentences["binding"]).startswith(f"Die Tabelle „Sozialräume an der Korridorgrenze“ ({n_held} "
                                                     "Sozialräume) steht nicht im PDF")
    assert "Abschnitt 5 „Verteilung“, und in verteilung.xlsx, Blatt „Verteilung“" in unescape(sentences["binding"])
    assert "Abschnitt 7 „Sensitivität“, und in verteilung.xlsx, Blatt „Sensitivität“" in unescape(sentences["sens"])


def test_each_sentence_names_the_section_the_report_shows(variant):
    """The section a PDF sentence names is the heading of bericht.html with that number and title
    (html.section_numbers gives both), in German and English."""
    for lang, quote in (("de", ("„", "“")), ("en", ("'", "'"))):
        page, pdf = variant[lang]
        headings = {f"{num} {quote[0]}{title}{quote[1]}" for num, title in
                    re.findall(r'<h2 id="\w+"(?: class="first")?>(\d+) ([^<]+)</h2>', unescape(page))}
        assert len(headings) >= 8
        sentences = dict(re.findall(r'<p class="note" id="pdf-ohne-(\w+)">(.*?)</p>', pdf))
        assert len(sentences) >= 5
        word = "Abschnitt" if lang == "de" else "section"
        for key, text in sentences.items():
            named = re.search(word + r" (\d+ " + quote[0] + ".*?" + quote[1] + ")", unescape(text)).group(1)
            assert named in headings, (lang, key, named)


def test_section_numbers_follow_the_sections_present():
    assert html.section_numbers(True)["methodik"] == 8 and html.section_numbers(True)["sensitivitaet"] == 7
    without = html.section_numbers(False)
    assert "sensitivitaet" not in without and without["methodik"] == 7 and without["anhang"] == 8
    assert list(without.values()) == list(range(1, 9))


def test_sheets_named_in_the_pdf_exist(demo_result, pubs, variant, tmp_path):
    """Every sheet a sentence names is a sheet of verteilung.xlsx (de and en)."""
    from openpyxl import load_workbook

    from geoplan.report import xlsx

    for lang, pattern in (("de", r"Blatt „([^“]+)“"), ("en", r"sheet '([^']+)'")):
        pdf = variant[lang][1]
        named = set(re.findall(pattern, unescape(" ".join(re.findall(r'id="pdf-ohne-\w+">(.*?)</p>', pdf)))))
        path = xlsx.write_xlsx(demo_result, pubs[lang], tmp_path / f"verteilung_{lang}.xlsx", lang=lang)
        assert named and named <= set(load_workbook(path, read_only=True).sheetnames)


def test_english_pdf_says_where_the_tables_are(demo_result, variant):
    n = len(demo_result.frame)
    page, pdf = variant["en"]
    sentences = {k: unescape(v) for k, v in re.findall(r'<p class="note" id="pdf-ohne-(\w+)">(.*?)</p>', pdf)}
    assert sentences["sens"] == (
        f"The table 'Sensitivity by Sozialraum' ({n} Sozialräume) is not in the PDF but in bericht.html, section "
        "7 'Sensitivity', and in verteilung.xlsx, sheet 'Sensitivity' (the PDF holds tables by Sozialraum up to "
        f"{n - 1} Sozialräume, output.pdf_detail_tables_max_areas).")
    assert "section 4 'Demand model'" in sentences["need"] and "sheet 'Distribution'" in sentences["need"]
    assert "Per Sozialraum the table in bericht.html shows" in pdf
    assert "verteilungstabelle" in _table_ids(pdf) and "bedarfstabelle" in _table_ids(page)
    assert not any(i in DETAIL_IDS for i in _table_ids(pdf))


def test_below_the_limit_the_pdf_has_every_table(demo_result, pubs):
    n = len(demo_result.frame)
    for limit in (n, None):
        page, pdf = html.render_reports(demo_result, pubs["de"], "de", pdf_max_areas=limit)
        assert pdf is page  # the very same text: the PDF is rendered from bericht.html itself
        assert "pdf-ohne" not in page and "bedarfstabelle" in _table_ids(page)
    assert html.render_report(demo_result, pubs["de"], "de", pdf=True, pdf_max_areas=n) == page


def test_limit_zero_leaves_every_detail_table_out(demo_result, pubs):
    pdf = html.render_report(demo_result, pubs["de"], "de", pdf=True, pdf_max_areas=0)
    assert not any(i in DETAIL_IDS for i in _table_ids(pdf)) and "verteilungstabelle" in _table_ids(pdf)
    assert pdf.count("(output.pdf_detail_tables_max_areas: 0).") == pdf.count('id="pdf-ohne-') >= 4


def test_above_both_limits_the_pdf_names_the_shortened_html_and_the_full_sheet(demo_result, pubs):
    n = len(demo_result.frame)
    page, pdf = html.render_reports(demo_result, pubs["de"], "de", max_areas=n - 1, pdf_max_areas=n - 1)
    need = unescape(re.search(r'id="pdf-ohne-need">(.*?)</p>', pdf).group(1))
    assert need == ("Die Tabelle „Erwarteter Bedarf je Sozialraum“ steht nicht im PDF: bericht.html, Abschnitt 4 "
                    "„Bedarfsmodell“, zeigt die 10 Sozialräume mit dem höchsten und die 10 mit dem niedrigsten Wert, "
                    f"verteilung.xlsx, Blatt „Verteilung“, alle {n} (Tabellen je Sozialraum stehen im PDF bis "
                    f"{n - 1} Sozialräume, output.pdf_detail_tables_max_areas).")
    # the allocation table, shortened like in bericht.html, and the Bezirk summary stay in the PDF
    assert _rows(pdf, "verteilungstabelle") == _rows(page, "verteilungstabelle") == 1 + 2 * html.EXTREME_ROWS + 1 + 1
    assert "bezirkstabelle" in _table_ids(pdf)


def test_corridor_table_is_shortened_like_the_other_per_area_tables(demo_result, pubs):
    """Above output.max_areas_in_report the table of the areas the corridor holds shows the ten largest and ten
    smallest adjustments (it had one row per held area at any size); the sentence above it still counts all."""
    n = len(demo_result.frame)
    binding = demo_result.allocation.binding
    assert len(binding) > 2 * html.EXTREME_ROWS
    full = html.render_report(demo_result, pubs["de"], "de", max_areas=n)
    short = html.render_report(demo_result, pubs["de"], "de", max_areas=n - 1)
    assert _rows(full, "korridortabelle") == 1 + len(binding)
    assert _rows(short, "korridortabelle") == 1 + 2 * html.EXTREME_ROWS + 1
    for page in (full, short):
        assert f"Der Korridor greift bei {len(binding)} von {n} Sozialräumen" in page
    assert (f"Gezeigt sind die 10 Sozialräume mit dem höchsten und die 10 mit dem niedrigsten Wert "
            f"(Korridor-Anpassung) von {n}.") in unescape(short)
    adjustment = (binding["budget_eur"] - binding["formula_eur"]).to_numpy()
    table = re.search(r'<table id="korridortabelle".*?</table>', short, re.DOTALL).group(0)
    first = re.findall(r"<tr><td class=\"l\">([^<]+)</td>", table)[0]
    assert first == str(binding["key"].to_numpy()[adjustment.argmax()])


def test_sentences_are_escaped(demo_result, pubs, monkeypatch):
    """A sheet name from the vocabulary goes through Jinja's autoescape like every other text."""
    from geoplan.report import vocabulary

    real = vocabulary.label
    monkeypatch.setattr(vocabulary, "label", lambda key, *a, **k: "<b>&Blatt" if key == "sheet.sensitivity"
                        else real(key, *a, **k))
    pdf = html.render_report(demo_result, pubs["de"], "de", pdf=True, pdf_max_areas=0)
    assert "„&lt;b&gt;&amp;Blatt“" in pdf and "<b>&Blatt" not in pdf


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="pdftotext (poppler-utils) fehlt")
def test_demo_pdf_shows_the_sentences_and_the_allocation_table(demo_outputs, demo_result):
    text = subprocess.run(["pdftotext", str(demo_outputs / "bericht.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    flat = re.sub(r"\s+", " ", text)
    assert len(demo_result.frame) > OutputConfig().pdf_detail_tables_max_areas
    assert flat.count("steht nicht im PDF, sondern in bericht.html") == 5
    assert "Budget je Sozialraum" in flat and "Summe" in flat
    for key in demo_result.frame["key"]:  # every row of the allocation table
        assert key in flat
    page = (demo_outputs / "bericht.html").read_text(encoding="utf-8")
    assert "bedarfstabelle" in _table_ids(page) and "pdf-ohne" not in page
    assert not (demo_outputs / html.PDF_SOURCE).exists()


def _png(image) -> bytes:
    import io

    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.skipif(not shutil.which("pdfimages"), reason="pdfimages (poppler-utils) fehlt")
def test_png_figures_are_embedded_with_their_pixels(tmp_path):
    """RGB and grey PNGs go into the PDF as they are, opaque RGBA ones without a mask, the rest through
    WeasyPrint's own code: every image comes out of the PDF with the pixels it went in with."""
    import base64
    import io

    import numpy as np
    from PIL import Image
    from weasyprint.images import RasterImage

    from geoplan.report import pdf

    rng = np.random.default_rng(1)
    rgb = Image.fromarray(rng.integers(0, 256, (37, 53, 3), dtype=np.uint8), "RGB")
    rgba = rgb.convert("RGBA")  # alpha 255 everywhere, like matplotlib's figures
    grey = Image.fromarray(rng.integers(0, 256, (21, 19), dtype=np.uint8), "L")
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    masked = rgba.copy()
    masked.putalpha(Image.fromarray(np.tile(np.arange(53, dtype=np.uint8) * 4, (37, 1)), "L"))
    # (WeasyPrint turns a palette PNG into an RGB PNG when it reads it: that one goes in directly too)
    cases = [("rgb", rgb, True), ("rgba", rgba, True), ("grey", grey, True), ("palette", palette, True),
             ("masked", masked, False)]
    for name, image, direct in cases:  # which images the direct way takes; the others keep WeasyPrint's
        data = _png(image)
        assert (pdf._png_x_object(RasterImage(Image.open(io.BytesIO(data)), name, data), True)
                is not None) == direct, name
    body = "".join(f'<p><img alt="{name}" src="data:image/png;base64,{base64.b64encode(_png(image)).decode()}"></p>'
                   for name, image, _d in cases)
    page = f'<!DOCTYPE html><html lang="de"><head><meta charset="utf-8"><title>t</title></head><body>{body}</body></html>'
    target = tmp_path / "bilder.pdf"
    pdf.pdf_from_html(page, tmp_path, target)
    subprocess.run(["pdfimages", "-png", str(target), str(tmp_path / "x")], check=True)
    out = sorted(tmp_path.glob("x-*.png"))
    assert len(out) == len(cases) + 1  # the masked image's colour and its mask
    for (name, image, _d), path in zip(cases, out):
        expected = np.asarray(image.convert("L" if name == "grey" else "RGB"))
        assert np.array_equal(np.asarray(Image.open(path)), expected), name
    assert np.array_equal(np.asarray(Image.open(out[-1])), np.asarray(masked.getchannel("A")))
