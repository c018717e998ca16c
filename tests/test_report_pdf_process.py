"""The PDF rendered by a second process (issue 15) is the same file as in-process."""

from __future__ import annotations

import pytest

from geoplan.errors import GeoplanError
from geoplan.report import html
from geoplan.report.published import build_published


def test_background_pdf_is_byte_identical(demo_result, tmp_path):
    pub = build_published(demo_result, lang="de")
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    sync = html.write_report(demo_result, pub, a, lang="de", pdf=True)
    paths, pending = html.write_report(demo_result, pub, b, lang="de", pdf=True, background=True)
    assert [p.name for p in paths] == [p.name for p in sync] == ["bericht.html", "bericht.pdf"]
    assert pending.wait() == b / "bericht.pdf"
    assert (b / "bericht.pdf").read_bytes() == (a / "bericht.pdf").read_bytes()
    assert (b / "bericht.html").read_bytes() == (a / "bericht.html").read_bytes()
    assert sorted(p.name for p in b.iterdir()) == ["bericht.html", "bericht.pdf"]  # no log left behind


def test_background_pdf_failure_is_a_german_error(tmp_path):
    pending = html.start_pdf(tmp_path / "fehlt.html", tmp_path)
    with pytest.raises(GeoplanError, match="PDF-Bericht") as err:
        pending.wait()
    assert "FileNotFoundError" in err.value.render("de") or "fehlt.html" in err.value.render("de")
    assert not (tmp_path / "bericht.pdf").exists()
    assert list(tmp_path.iterdir()) == []


def test_pdf_variant_file_is_removed_when_done_or_cancelled(demo_result, tmp_path):
    """Above output.pdf_detail_tables_max_areas the worker renders the PDF's own text from a temporary file in
    the output folder; it is gone when the PDF is done and when it is cancelled."""
    pub = build_published(demo_result, lang="de")
    assert len(demo_result.frame) > demo_result.config.output.pdf_detail_tables_max_areas  # the demo uses the variant
    _paths, pending = html.write_report(demo_result, pub, tmp_path, lang="de", pdf=True, background=True)
    source = tmp_path / html.PDF_SOURCE
    assert source.read_text(encoding="utf-8") == html.render_report(demo_result, pub, "de", pdf=True)
    pending.cancel()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bericht.html"]
