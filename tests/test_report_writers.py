"""The writers of issue 15: per-area tables above output.max_areas_in_report, fixed column widths, the early
PDF worker (ended on every error), the progress hook per writer."""

from __future__ import annotations

import re
from html import unescape

import numpy as np
import pytest

from geoplan.report import WRITERS, html, write_outputs
from geoplan.report.pdf import PdfWorker
from geoplan.report.published import build_published


def test_extremes_keep_both_ends_in_order_and_drop_missing():
    rows = [[f"k{i}"] for i in range(30)]
    values = list(range(30))
    values[5] = np.nan
    out = html._extremes(rows, values, n=3)
    assert out == [["k29"], ["k28"], ["k27"], ["…"], ["k2"], ["k1"], ["k0"]]
    assert html._extremes(rows[:5], [3, 1, np.nan, 2, 0], n=3) == [["k0"], ["k3"], ["k1"], ["k4"]]


def test_column_widths_never_cut_a_number():
    header = ["Schlüssel", "Sozialraum"] + [f"Spalte {i}" for i in range(14)]
    rows = [["0110", "Charlottenburg-Wilmersdorf Nord"] + ["12.345.678 €"] * 14 for _ in range(5)]
    w = html.col_widths(rows, header)
    assert sum(w) == pytest.approx(100, abs=0.1)
    # the table is overfull: the text columns give way, every number column keeps the width of its number
    number = (html._text_em("12.345.678 €") + html.PAD_EM) / html.TABLE_EM * 100
    assert min(w[2:]) >= number - 0.01
    assert w[1] < 100 * (html._text_em(rows[0][1]) + html.PAD_EM) / html.TABLE_EM
    # a narrow table gets the full text of every column, the rest in proportion
    w = html.col_widths([["1", "Mitte", "1,0"]], ["Schlüssel", "Sozialraum", "Index"])
    assert w[1] > w[2] and sum(w) == pytest.approx(100, abs=0.1)


def test_words_do_not_break_at_a_no_break_space():
    assert html._words("Haushalte 40\u00a0%) × Korridor-Anpassung") == ["Haushalte", "40\u00a0%)", "×", "Korridor-",
                                                                         "Anpassung"]


def _table(doc: str, table_id: str) -> str:
    return re.search(rf'<table id="{table_id}".*?</table>', doc, re.DOTALL).group(0)


def test_report_shortens_per_area_tables_above_the_limit(demo_result):
    pub = build_published(demo_result, lang="de")
    n = len(demo_result.frame)
    full = html.render_report(demo_result, pub, "de", max_areas=n)
    short = html.render_report(demo_result, pub, "de", max_areas=n - 1)
    rows = lambda doc: _table(doc, "verteilungstabelle").count("<tr")  # header, rows, sum
    assert rows(full) == 1 + n + 1
    assert rows(short) == 1 + 2 * html.EXTREME_ROWS + 1 + 1  # the ten largest, "…", the ten smallest
    assert "Gezeigt sind" not in full and 'id="bezirkstabelle"' not in full
    note = (f"Gezeigt sind die 10 Sozialräume mit dem höchsten und die 10 mit dem niedrigsten Wert (Budget) von {n}. "
            f"Die vollständige Tabelle mit allen {n} Sozialräumen steht in verteilung.xlsx, Blatt „Verteilung“, "
            "und in ergebnis.gpkg.")
    assert note in short
    # largest budget first; the sum row still totals all areas
    f = demo_result.frame.sort_values(["budget_eur", "key"], ascending=[False, True])
    body = _table(short, "verteilungstabelle")
    assert body.index(f"<td class=\"l\">{f['key'].iloc[0]}</td>") < body.index(f"<td class=\"l\">{f['key'].iloc[-1]}</td>")
    assert f"Summe (alle {n})" in body
    # one row per Bezirk, its budgets add up to the total
    groups = _table(short, "bezirkstabelle")
    assert groups.count("<tr") == 1 + demo_result.frame["bezirk"].nunique()
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", groups, re.DOTALL)]
    budgets = [int(re.sub(r"\D", "", c[3])) for c in cells if c]
    assert len(budgets) == demo_result.frame["bezirk"].nunique()
    assert sum(budgets) == int(demo_result.frame["budget_eur"].sum())
    en = html.render_report(demo_result, build_published(demo_result, lang="en"), "en", max_areas=n - 1)
    assert f"The full table with all {n} Sozialräume is in verteilung.xlsx, sheet 'Distribution'" in unescape(en)


def test_pdf_worker_ends_when_cancelled_or_given_nothing():
    w = PdfWorker()
    w.cancel()
    assert w.proc.poll() is not None
    w.cancel()  # twice is fine
    w = PdfWorker()
    w.proc.stdin.close()  # end of input without a job: the worker ends by itself, without error
    assert w.proc.wait(timeout=120) == 0
    w.cancel()


def test_error_in_a_writer_ends_the_pdf_worker(demo_result, tmp_path, monkeypatch):
    from geoplan.report import xlsx

    def broken(*args, **kwargs):
        raise RuntimeError("kaputt")

    monkeypatch.setattr(xlsx, "write_xlsx", broken)
    worker = PdfWorker()
    seen = []
    with pytest.raises(RuntimeError, match="kaputt"):
        write_outputs(demo_result, tmp_path / "aus", pdf_worker=worker, progress=seen.append)
    assert worker.proc.poll() is not None  # killed, not left behind
    assert not (tmp_path / "aus").exists()  # nothing half written, no temporary folder left
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".geoplan.lock")] == []
    assert seen == ["report", "map", "xlsx"]


def test_every_writer_has_a_progress_line_in_both_languages():
    from geoplan.cli import STAGES_EN, WRITER_LABELS
    from geoplan.pipeline import STAGES

    assert set(WRITERS) == set(WRITER_LABELS)
    assert all(de and en for de, en in WRITER_LABELS.values())
    assert WRITER_LABELS["report"] == ("Bericht (bericht.html, Abbildungen und Karten)",
                                       "Report (bericht.html, figures and maps)")
    assert {k for k, _ in STAGES} == set(STAGES_EN)


def test_progress_shows_only_the_writers_of_the_run(demo_result, tmp_path):
    """The demo writes no QGIS project, PostGIS table or WFS answers: no line claims it did."""
    seen = []
    write_outputs(demo_result, tmp_path / "aus", pdf=False, progress=seen.append)
    assert seen == ["report", "map", "xlsx", "gpkg", "manifest", "done"]


def test_table_font_shrinks_before_a_word_breaks():
    """A per-area table whose headers and words fit whole at 7 pt keeps 7 pt; one that only fits at a smaller
    font gets it (class small/smaller), and then every column is at least as wide as its longest header word
    (words end at blanks and after hyphens) and its longest number."""
    def table(n):
        header = ["Schlüssel", "Sozialraum", "Korridor-Anpassung"] + [f"Bestandteil{i} nach Einwohnern"
                                                                       for i in range(n)]
        return [["0110", "Charlottenburg-Wilmersdorf Nord", "−1.234.567 €"] + ["12.345.678 €"] * n] * 5, header

    assert html.fitted_widths(*table(2))[1] == ""
    n = next(n for n in range(2, 40) if html._whole_words_em(*table(n), 2, []) > html.TABLE_EM)
    rows, header = table(n)  # the smallest table that does not fit whole at 7 pt
    need = html._whole_words_em(rows, header, 2, [])
    widths, cls = html.fitted_widths(rows, header)
    pt = {"": 7.0, **{c: p for p, c in html.SMALL_FONTS}}[cls]
    assert cls in ("small", "smaller") and need <= html.TABLE_EM * 7.0 / pt
    table_em = html.TABLE_EM * 7.0 / pt
    for j, w in enumerate(widths):
        width_em = w / 100 * table_em
        longest_head = html.HEAD_EM * max(html._text_em(x) for x in html._words(header[j]))
        assert width_em >= longest_head, (header[j], width_em, longest_head)
        if j >= 2:
            assert width_em >= max(html._text_em(r[j]) for r in rows)
    assert html._words("Korridor-Anpassung in %") == ["Korridor-", "Anpassung", "in", "%"]
