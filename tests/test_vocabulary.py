"""Readers see words, not code: the demo outputs scanned for identifiers, machine paths and (in English) German.

German outputs (report HTML and PDF text, karte.html's visible text, tooltips and legends, every XLSX cell and sheet
name, the GeoPackage's field names, aliases and styles, the manifest's QA texts) must not contain a column name of
the run's Sozialraum frame, a Python name or an absolute path. English outputs must not contain common German words
or report terms, except in proper names, which are taken from the run: names of Sozialräume and Bezirke, the names the
config gives (title, region, sources, licences, formula components, Teilbudgets), the catalogue's sources and the
input files. Two German terms are kept on purpose and explained in the English report: "Sozialraum"/"Sozialräume"
("Sozialräume (social areas)") and "HzE"/"Hilfen zur Erziehung" ("educational support for families"). The QA
findings carry their English text (QANote.message_en) and are scanned like the rest.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
from html import unescape

import pytest
from bs4 import BeautifulSoup
from openpyxl import load_workbook

from geoplan.report import vocabulary as voc

PYTHON_NAMES = [r"\bNone\b", r"\bnan\b", r"\bNaN\b", r"\bTrue\b", r"\bFalse\b", r"Traceback", r"<bool>",
                r"\b[A-Z][A-Za-z]*Error\b", r"\bnp\.", r"\bpd\.", r"__\w+__", r"\bself\."]
# absolute paths (a path relative to the config folder, also "../daten/x.csv", is what a report should show)
ABSOLUTE_PATHS = [r"(?<![\w.:/])/(?:tmp|work|home|root|usr|var|Users|mnt|opt|srv|data)/", r"\b[A-Za-z]:\\",
                  r"\w/\.\./"]
GERMAN_WORDS = [
    "und", "der", "die", "das", "den", "dem", "des", "mit", "nicht", "ein", "eine", "einer", "ist", "sind", "wird",
    "werden", "für", "von", "vom", "zum", "zur", "im", "auf", "aus", "bei", "nach", "über", "unter", "oder", "ohne",
    "je", "davon", "gesamt", "Budget je", "Einwohner", "Einwohnern", "Bezirk", "Bezirke", "Kosten", "Vorjahr",
    "Vorjahres", "Veränderung", "Fälle", "Fallzahlen", "Hilfe", "Anteil", "Summe", "Gewicht", "gewichtet", "hoch",
    "mehr", "weniger", "Bedarf", "Bedarfsindex", "simuliert", "Spalte", "Zeilen", "Datei", "Quelle", "Schlüssel",
    "Jahr", "Jahre", "Zielwert", "Korridor", "Bestandteil", "Befund", "unterdrückt", "Stufe", "Hinweis", "Warnung",
    "Rang", "Prüfung", "Stand", "Lizenz", "Bezeichnung", "Regel", "Betrag", "Beschreibung", "nie", "ja", "nein",
    "Kennzahl", "Wert", "Bevölkerung", "Sozialindikatoren", "Bedarfsmodell", "Verteilung", "Gerechtigkeit",
]
KEPT_TERMS = ["Hilfen zur Erziehung", "Sozialräumen", "Sozialräume", "Sozialraums", "Sozialraum", "HzE"]


# --------------------------------------------------------------------------- what a reader sees
def _soup_text(html: str) -> str:
    soup = BeautifulSoup(html, "html.parser")
    for t in soup(["script", "style"]):
        t.decompose()
    attrs = [v for tag in soup.find_all(True) for k, v in tag.attrs.items()
             if k in ("alt", "title", "aria-label", "placeholder") and isinstance(v, str)]
    return soup.get_text(" ") + "\n" + "\n".join(attrs)


def report_text(folder) -> str:
    return _soup_text((folder / "bericht.html").read_text(encoding="utf-8"))


def map_text(folder) -> str:
    """karte.html: visible page text, layer control, legends, tooltip labels and tooltip values."""
    html = (folder / "karte.html").read_text(encoding="utf-8")
    parts = [_soup_text(html)]
    labels = re.search(r"tipLabels = (\[.*?\]);", html)
    assert labels, "karte.html without tooltip labels"
    parts += json.loads(labels.group(1))
    legend = re.search(r"d\.innerHTML = (\".*?\");\n", html)
    assert legend, "karte.html without legend"
    parts.append(BeautifulSoup(json.loads(legend.group(1)), "html.parser").get_text(" "))
    # tooltip values are the GeoJSON properties t0, t1 … (pre-formatted strings); names are in the name property
    for m in re.finditer(r'"properties": (\{[^{}]*\})', html):
        props = json.loads(m.group(1))
        parts += [str(v) for k, v in props.items() if re.fullmatch(r"t\d+", k) or k == "name"]
    # overlay names of the layer control
    for m in re.finditer(r"L\.control\.layers\(\s*(\{.*?\}),\s*(\{.*?\})", html, re.S):
        parts += re.findall(r'"((?:[^"\\]|\\.)*)"\s*:', m.group(1) + m.group(2))
    return unescape("\n".join(parts))


def xlsx_text(folder) -> str:
    wb = load_workbook(folder / "verteilung.xlsx")
    parts = list(wb.sheetnames)
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                if isinstance(c.value, str) and c.data_type != "f":
                    parts.append(c.value)
    return "\n".join(parts)


def gpkg_words(folder) -> dict:
    con = sqlite3.connect(folder / "ergebnis.gpkg")
    try:
        styles = con.execute("SELECT styleName, description, styleQML, styleSLD, useAsDefault, update_time "
                             "FROM layer_styles ORDER BY id").fetchall()
        columns = con.execute("SELECT column_name, name, title, description FROM gpkg_data_columns "
                              "WHERE table_name = 'sozialraeume'").fetchall()
        fields = [r[1] for r in con.execute("PRAGMA table_info(sozialraeume)")]
    finally:
        con.close()
    return {"styles": styles, "columns": columns, "fields": fields}


def gpkg_text(folder, lang: str) -> str:
    """The GeoPackage's texts for readers: style names and descriptions, class and alias labels, field names."""
    w = gpkg_words(folder)
    parts = []
    for name, desc, qml, sld, _d, _t in w["styles"]:
        parts += [name, desc]
        parts += [unescape(x) for x in re.findall(r'\blabel="([^"]*)"', qml)]
        parts += [unescape(x) for x in re.findall(r'<alias [^>]*name="([^"]*)"', qml)]
        parts += [unescape(x) for x in re.findall(r"<se:Title>([^<]*)</se:Title>", sld)]
    for _c, name, title, desc in w["columns"]:
        parts += [name] if lang == "de" else [title]
    return "\n".join(parts)


def manifest_text(folder) -> str:
    m = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    parts = [n.get("message") or "" for n in m["qa_notes"]] + [n.get("file") or "" for n in m["qa_notes"]]
    parts += [i["path"] for i in m["inputs"]]
    return "\n".join(parts)


def pdf_text(folder) -> str | None:
    pdf = folder / "bericht.pdf"
    if not pdf.exists() or not shutil.which("pdftotext"):
        return None
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


# --------------------------------------------------------------------------- the scanners
def identifiers(result) -> list[str]:
    """Code names a reader must not meet: the columns of the run's Sozialraum frame."""
    return sorted({str(c) for c in result.frame.columns}, key=len, reverse=True)


def find_identifiers(text: str, names) -> list[str]:
    hits = []
    for n in names:
        for m in re.finditer(r"(?<![\w-])" + re.escape(n) + r"(?![\w-])", text):
            hits.append(f"{n!r}: …{text[max(0, m.start() - 50):m.end() + 30]}…")
    for pat in PYTHON_NAMES + ABSOLUTE_PATHS:
        for m in re.finditer(pat, text):
            hits.append(f"{pat}: …{text[max(0, m.start() - 50):m.end() + 30]}…")
    return hits


def proper_names(result) -> list[str]:
    """Names an English text may keep in German: places, publishers, the config's own names, file names."""
    cfg = result.config
    f = result.frame
    names = {str(v) for v in f["name"]} | ({str(v) for v in f["bezirk"]} if "bezirk" in f.columns else set())
    names |= {cfg.title, cfg.region}
    for s in cfg.sources or []:
        names |= {str(v) for v in s.values() if isinstance(v, str)}
    for c in result.allocation_spec.components:
        names |= {c.label or "", c.name}
    tb = getattr(result.allocation, "teilbudgets", None)
    if tb is not None:
        for col in ("label", "rule", "id"):
            if col in tb.columns:
                names |= {str(v) for v in tb[col]}
    for i in result.inputs:
        names |= {str(i.label or ""), i.path.name, str(i.source or ""), str(i.licence or ""), str(i.qa or "")}
    for i in result.catalogue.indicators:
        names |= {str(i.source or ""), str(i.reference_date or "")}
    return sorted((n for n in names if n and len(n) > 1), key=len, reverse=True)


def find_german(text: str, keep) -> list[str]:
    for name in keep:
        text = re.sub(r"(?<!\w)" + re.escape(name) + r"(?!\w)", " ", text)
    for term in KEPT_TERMS:
        text = re.sub(r"(?<!\w)" + re.escape(term) + r"(?!\w)", " ", text)
    hits = []
    for w in GERMAN_WORDS:
        for m in re.finditer(r"(?<![\w-])" + re.escape(w) + r"(?![\w-])", text):
            hits.append(f"{w!r}: …{text[max(0, m.start() - 50):m.end() + 30]}…")
    return hits


# --------------------------------------------------------------------------- the scanners catch what they should
def test_scanners_catch_identifiers_paths_and_german():
    names = ["budget_eur", "pop_u21", "need_index", "bezirk"]
    assert find_identifiers("Anteil an pop_u21", names)
    assert find_identifiers("räumlich blockiert nach 'bezirk'", names)
    assert find_identifiers("Datei /work/main/geoplan/examples/../../x.csv", names)
    assert find_identifiers("C:\\Daten\\x.csv", names)
    assert find_identifiers("Wert: None", names)
    assert not find_identifiers("Budget je Einwohner unter 21: 1.234 € (Bezirk Mitte)", names)
    assert find_german("method: gewichtet", [])
    assert find_german("high = mehr Bedarf", [])
    assert find_german("HzE cases (simuliert)", [])
    assert not find_german("Budget per resident under 21 in Sozialraum Alt-Mitte (HzE, simulated)", [])
    assert not find_german("Source: Amt für Statistik", ["Amt für Statistik"])


def test_humanize_names_columns_and_drops_machine_paths(tmp_path):
    from geoplan.report import i18n

    token = i18n._CTX.set(None)  # the default wording: no labels left by an earlier run in this process
    try:
        _humanize_checks(tmp_path)
    finally:
        i18n._CTX.reset(token)


def _humanize_checks(tmp_path):
    base = tmp_path / "projekt"
    text = f"Spalte 'pop_u21': 5 von 542 Quellzeilen ohne Wert; Datei {base}/daten/einwohner.csv"
    out = voc.humanize(text, "de", base)
    assert "„Einwohner unter 21“" in out and "daten/einwohner.csv" in out
    assert "pop_u21" not in out and str(tmp_path) not in out
    assert voc.humanize("pop_total: Quelle 3.821.881", "de") == "Einwohner: Quelle 3.821.881"
    assert voc.public_path("C:\\Daten\\x.csv") == "x.csv"
    assert voc.public_path("C:\\Projekt\\daten\\x.csv", "C:\\Projekt") == "daten/x.csv"
    assert voc.humanize("gelesen: C:\\Projekt\\daten\\x.csv", "de", "C:\\Projekt") == "gelesen: daten/x.csv"


# --------------------------------------------------------------------------- German outputs: no code names
@pytest.mark.parametrize("part", ["report", "map", "xlsx", "gpkg", "manifest", "pdf"])
def test_german_outputs_show_no_code_names(part, demo_outputs, demo_result):
    text = {"report": lambda: report_text(demo_outputs), "map": lambda: map_text(demo_outputs),
            "xlsx": lambda: xlsx_text(demo_outputs), "gpkg": lambda: gpkg_text(demo_outputs, "de"),
            "manifest": lambda: manifest_text(demo_outputs), "pdf": lambda: pdf_text(demo_outputs)}[part]()
    if text is None:
        pytest.skip("no PDF written or no pdftotext")
    assert len(text) > 200
    names = identifiers(demo_result)
    if part == "manifest":  # a machine-readable record: only paths matter there
        names = []
    hits = find_identifiers(text, names)
    assert hits == [], "\n".join(hits[:30])


# --------------------------------------------------------------------------- English outputs: no German words
@pytest.mark.parametrize("part", ["report", "map", "xlsx", "gpkg"])
def test_english_outputs_have_no_german_words(part, demo_outputs_en, demo_result):
    text = {"report": lambda: report_text(demo_outputs_en), "map": lambda: map_text(demo_outputs_en),
            "xlsx": lambda: xlsx_text(demo_outputs_en), "gpkg": lambda: gpkg_text(demo_outputs_en, "en")}[part]()
    assert len(text) > 200
    hits = find_german(text, proper_names(demo_result))
    assert hits == [], "\n".join(hits[:40])
    if part == "report":
        assert "Sozialräume (social areas)" in text  # the kept term is explained
        assert "QA findings are recorded in German" not in text  # they are in English (QANote.message_en)


def test_english_outputs_show_no_code_names(demo_outputs_en, demo_result):
    # in English, "key", "ratio" or "direction" are words: the code names with an underscore or digit are scanned
    names = [n for n in identifiers(demo_result) if re.search(r"[_\d]", n)]
    for text in (report_text(demo_outputs_en), map_text(demo_outputs_en), xlsx_text(demo_outputs_en),
                 gpkg_text(demo_outputs_en, "en")):
        hits = find_identifiers(text, names)
        assert hits == [], "\n".join(hits[:30])
