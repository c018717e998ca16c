"""Accessible documents (BITV 2.0): axe-core finds no WCAG 2.1 A/AA violation in bericht.html and
karte.html (German and English); the PDF is tagged (PDF/UA-1) and declares its language.

axe-core runs inside Debian's Chromium (see geoplan.browser); skipped only where Chromium is
missing and GEOPLAN_REQUIRE_BROWSER is not set (CI sets it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest

from geoplan.browser import Browser, axe_violations, chromium_available

AXE = Path(__file__).parent / "assets" / "axe" / "axe.min.js"
READY = "return document.readyState === 'complete';"


def _need_browser():
    if not chromium_available():
        if os.environ.get("GEOPLAN_REQUIRE_BROWSER"):
            pytest.fail("GEOPLAN_REQUIRE_BROWSER ist gesetzt, aber Chromium/chromedriver fehlen.")
        pytest.skip("Chromium/chromedriver nicht installiert (Debian: apt install chromium chromium-driver)")


def _summary(violations: list[dict]) -> str:
    return "\n".join(
        f"{v['id']} ({v.get('impact')}): {v['help']} – {[n['target'] for n in v['nodes'][:3]]}" for v in violations
    )


@pytest.fixture(scope="module")
def browser():
    """One Chromium for the module's pages (each page in a new tab), in axe_violations' window size."""
    _need_browser()
    with Browser((1024, 900)) as b:
        yield b


@pytest.mark.browser
@pytest.mark.parametrize("name", ["bericht.html", "karte.html"])
@pytest.mark.parametrize("lang", ["de", "en"])
def test_axe_finds_no_wcag_violation(name, lang, demo_outputs, demo_outputs_en, browser):
    _need_browser()
    folder = demo_outputs if lang == "de" else demo_outputs_en
    violations = axe_violations(folder / name, AXE, wait_js=READY, timeout=300, browser=browser)
    assert violations == [], _summary(violations)


def _pdf_objects(data: bytes) -> bytes:
    """The PDF's bytes with every Flate stream decompressed (object streams hold the catalog)."""
    parts = [data]
    for m in re.finditer(rb"stream\r?\n", data):
        try:
            parts.append(zlib.decompressobj().decompress(data[m.end():m.end() + 4_000_000]))
        except zlib.error:
            continue
    return b"\n".join(parts)


def test_pdf_is_tagged_and_declares_its_language(demo_outputs):
    pdf = demo_outputs / "bericht.pdf"
    if shutil.which("pdfinfo"):
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
        assert re.search(r"^Tagged:\s+yes$", info, re.M), info
    elif os.environ.get("GEOPLAN_REQUIRE_BROWSER"):
        pytest.fail("pdfinfo (poppler-utils) fehlt")
    objects = _pdf_objects(pdf.read_bytes())
    assert b"/Lang (de)" in objects
    assert b"/StructTreeRoot" in objects and b"/MarkInfo <</Marked true>>" in objects
    # every figure has an alternative text in the structure tree
    n_figures = objects.count(b"/S /Figure")
    assert n_figures > 0
    assert objects.count(b"/Alt (") + objects.count(b"/Alt <") >= n_figures
