"""ergebnis.gpkg read with sqlite3 (styles, classes, aliases, dates) and verteilung.xlsx with openpyxl (print setup,
number formats), as a GIS analyst and a Kämmerei clerk would open them."""

from __future__ import annotations

import json
import re
import sqlite3
import xml.etree.ElementTree as ET
from datetime import datetime
from html import unescape

import pytest
from openpyxl import load_workbook

SLD_NS = {"se": "http://www.opengis.net/se", "ogc": "http://www.opengis.net/ogc"}


def _styles(folder):
    con = sqlite3.connect(folder / "ergebnis.gpkg")
    try:
        rows = con.execute("SELECT styleName, description, styleQML, styleSLD, useAsDefault, update_time, f_table_name "
                           "FROM layer_styles ORDER BY id").fetchall()
        cols = {r[0]: r[1:] for r in con.execute("SELECT column_name, name, title, description FROM gpkg_data_columns "
                                                 "WHERE table_name = 'sozialraeume'")}
        fields = [r[1] for r in con.execute("PRAGMA table_info(sozialraeume)") if r[1] not in ("fid", "geom")]
        ext = {r[0] for r in con.execute("SELECT table_name FROM gpkg_extensions WHERE extension_name = 'gpkg_schema'")}
        contents = dict(con.execute("SELECT table_name, last_change FROM gpkg_contents"))
        data = con.execute("SELECT change_pct, veraenderung_klasse, budget_per_u21, budget_eur, need_index "
                           "FROM sozialraeume").fetchall()
    finally:
        con.close()
    return {"styles": rows, "columns": cols, "fields": fields, "ext": ext, "contents": contents, "data": data}


def _map_legends(folder) -> dict[str, dict]:
    """karte.html's legend per layer column: class bounds (data-breaks) and labels."""
    html = (folder / "karte.html").read_text(encoding="utf-8")
    legend = unescape(json.loads(re.search(r"d\.innerHTML = (\".*?\");\n", html).group(1)))
    out = {}
    for m in re.finditer(r'data-column="([^"]+)"(?: data-breaks="([^"]*)")?[^>]*>(.*?)(?=<div class="geoplan-legend-layer"|$)',
                         legend, re.S):
        out[m.group(1)] = {"breaks": json.loads(m.group(2)) if m.group(2) else None, "html": m.group(3)}
    return out


def _ranges(qml: str) -> list[tuple[float, float, str]]:
    return [(float(lo), float(hi), unescape(lab))
            for lo, hi, lab in re.findall(r'<range [^>]*lower="([^"]+)" upper="([^"]+)" label="([^"]*)"', qml)]


def _data_date(result) -> str:
    dates = []
    for i in result.inputs:
        m = re.search(r"(\d{1,2})\.(\d{1,2})\.(\d{4})", str(i.reference_date or ""))
        if m:
            dates.append(datetime(int(m.group(3)), int(m.group(2)), int(m.group(1))))
    return max(dates).strftime("%Y-%m-%dT00:00:00.000Z")


# --------------------------------------------------------------------------- GeoPackage
def test_gpkg_has_one_style_per_measure_with_the_maps_classes(demo_outputs, demo_result):
    g = _styles(demo_outputs)
    names = [s[0] for s in g["styles"]]
    assert names == ["Budget je Einwohner unter 21 (€)", "Budget je Sozialraum (€)", "Veränderung zum Vorjahr (%)",
                     "Bedarfsindex", "Erwartete HzE-Fälle je 1.000 unter 21", "HzE beobachtet/erwartet"]
    assert [s[4] for s in g["styles"]] == [1, 0, 0, 0, 0, 0]  # the budget per head opens by default
    assert all(s[6] == "sozialraeume" for s in g["styles"])
    legends = _map_legends(demo_outputs)
    by_attr = {}
    for name, desc, qml, sld, _d, _t, _tab in g["styles"]:
        attr = re.search(r'<renderer-v2 type="\w+" attr="([^"]+)"', qml).group(1)
        by_attr[attr] = (name, qml, sld)
        assert 'styleCategories="Symbology|Labeling|Fields"' in qml
        root = ET.fromstring(sld)  # a real SLD, one rule per class
        rules = root.findall(".//se:Rule", SLD_NS)
        n_classes = len(_ranges(qml)) or len(re.findall(r"<category ", qml))
        assert len(rules) == n_classes >= 3
        assert all(r.find("se:PolygonSymbolizer", SLD_NS) is not None for r in rules)
    # the same class bounds as karte.html (and the report's maps, which use the same layers)
    for col in ("budget_per_u21", "need_index"):
        ranges = _ranges(by_attr[col][1])
        bounds = [ranges[0][0]] + [hi for _lo, hi, _lab in ranges]
        assert bounds == pytest.approx(legends[col]["breaks"], rel=1e-12)
        for _lo, _hi, lab in ranges:  # the map's own legend labels
            assert lab in unescape(legends[col]["html"])
    for _lo, _hi, lab in _ranges(by_attr["budget_per_u21"][1]) + _ranges(by_attr["budget_eur"][1]):
        assert "€" in lab
    # every feature falls in a class; no two classes share a bound's value (first match = upper-inclusive)
    for j, col in ((2, "budget_per_u21"), (3, "budget_eur"), (4, "need_index")):
        ranges = _ranges(by_attr[col][1])
        for row in g["data"]:
            v = row[j]
            if v is not None:
                assert sum(lo <= v <= hi for lo, hi, _ in ranges) >= 1, (col, v)
    # the change style: categories = the map's legend classes; each area's class follows its change
    cats = [unescape(c) for c in re.findall(r'<category [^>]*value="([^"]*)"', by_attr["veraenderung_klasse"][1])]
    assert len(cats) == 5 and all(c in unescape(legends["change_pct"]["html"]) for c in cats)
    lo, ilo, ihi, hi = (-15.0, -5.0, 5.0, 15.0)
    for change, klass, *_ in g["data"]:
        r = round(change, 1)
        expected = 0 if r <= lo else 1 if r < ilo else 2 if r <= ihi else 3 if r < hi else 4
        assert klass == cats[expected], (change, klass)


def test_gpkg_field_aliases_in_german_and_english(demo_outputs, demo_outputs_en, demo_result):
    g = _styles(demo_outputs)
    assert {"gpkg_data_columns", "gpkg_data_column_constraints"} <= g["ext"]
    assert set(g["columns"]) == set(g["fields"])  # every attribute has its words
    names = [v[0] for v in g["columns"].values()]
    assert len(set(names)) == len(names)
    code = {str(c) for c in demo_result.frame.columns}
    for col, (de, en, desc) in g["columns"].items():
        assert de and en and desc, col
        assert de not in code and en not in code, (col, de, en)
    assert g["columns"]["budget_eur"][:2] == ("Budget (€)", "Budget (€)")
    assert g["columns"]["bezirk"][:2] == ("Bezirk", "District")
    assert g["columns"]["hze_cases_unterdrueckt"][0] == "HzE-Fälle: unterdrückt"
    # QGIS aliases in each style: German in the German output, English with --lang en
    for folder, lang in ((demo_outputs, "de"), (demo_outputs_en, "en")):
        s = _styles(folder)
        for *_x, qml, _sld, _d, _t, _tab in s["styles"]:
            aliases = dict(re.findall(r'<alias field="([^"]+)" index="\d+" name="([^"]*)"', qml))
            assert set(aliases) == set(s["fields"])
            assert aliases["bezirk"] == ("Bezirk" if lang == "de" else "District")
            assert aliases["change_pct"] == ("Veränderung in %" if lang == "de" else "Change in %")
    en_names = [s[0] for s in _styles(demo_outputs_en)["styles"]]
    assert en_names == ["Budget per resident under 21 (€)", "Budget per Sozialraum (€)", "Change vs prior year (%)",
                        "Need index", "Expected HzE cases per 1,000 under 21", "HzE observed/expected"]


def test_gpkg_dates_are_the_date_of_the_data(demo_outputs, demo_result):
    g = _styles(demo_outputs)
    stamp = _data_date(demo_result)
    assert stamp < f"{demo_result.config.budget_year}-01-01"  # never a date in the budget year to come
    assert {s[5] for s in g["styles"]} == {stamp}
    assert g["contents"]["sozialraeume"] == stamp == g["contents"]["layer_styles"]


def test_gpkg_date_from_source_date_epoch(demo_result, monkeypatch):
    from geoplan.report.gpkg import data_date

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert data_date(demo_result) == "2023-11-14T22:13:20.000Z"
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    assert data_date(demo_result) == _data_date(demo_result)


# --------------------------------------------------------------------------- XLSX
def test_xlsx_prints_as_a_kaemmerei_needs_it(demo_outputs, demo_outputs_en):
    for folder in (demo_outputs, demo_outputs_en):
        wb = load_workbook(folder / "verteilung.xlsx")
        for ws in wb.worksheets:
            assert ws.print_title_rows == "$1:$1", ws.title
            assert ws.page_setup.orientation == "landscape", ws.title
            assert ws.sheet_properties.pageSetUpPr.fitToPage, ws.title
            assert (int(ws.page_setup.fitToWidth), int(ws.page_setup.fitToHeight)) == (1, 0), ws.title
            assert ws.freeze_panes in ("A2", "C2"), ws.title
    de = load_workbook(demo_outputs / "verteilung.xlsx").sheetnames
    en = load_workbook(demo_outputs_en / "verteilung.xlsx").sheetnames
    assert de[:3] == ["Verteilung", "Bedarfsmodell", "Gerechtigkeit"]
    assert en[:3] == ["Distribution", "Demand model", "Fairness"]
    assert len(de) == len(en) and not set(de[:-1]) & set(en[:-1])


def test_xlsx_number_formats_per_column(demo_outputs):
    wb = load_workbook(demo_outputs / "verteilung.xlsx")
    ws = wb["Verteilung"]
    header = [c.value for c in ws[1]]
    fmt_of = {h: ws.cell(row=2, column=j + 1).number_format for j, h in enumerate(header)}
    assert fmt_of["Budget"] == '#,##0 "€"'
    assert fmt_of["Budget je Einwohner u. 21"] == '#,##0.00 "€"'
    assert fmt_of["Veränderung in %"] == '0.0 "%"'
    assert fmt_of["Einwohner unter 21"] == "#,##0"
    assert fmt_of["Bedarfsindex"] == "0.00"
    # every measure in its unit: counts without decimals, money in €, indices with three decimals
    eq = {r[0].value: r[1] for r in wb["Gerechtigkeit"].iter_rows(min_row=2) if r[0].value}
    assert eq["Sozialräume"].value == 58 and eq["Sozialräume"].number_format == "#,##0"
    assert eq["Budget gesamt (€)"].number_format == '#,##0 "€"'
    assert eq["Konzentrationsindex (Bedarf, je Einwohner u. 21)"].number_format == "0.000"
    assert [c.value for c in wb["Gerechtigkeit"][1]] == ["Kennzahl", "Wert"]  # no column of code keys
    m = wb["Bedarfsmodell"]
    mh = [c.value for c in m[1]]
    assert mh[:5] == ["Einflussgröße", "Koeffizient", "Std.-Fehler", "z-Wert", "p-Wert"]
    p = mh.index("p-Wert") + 1
    assert all(m.cell(row=r, column=p).number_format == "0.0000" for r in range(2, m.max_row + 1))
    assert m.cell(row=2, column=1).value == "Konstante"
    t = wb["Teilbudgets"]
    assert [c.value for c in t[1]] == ["Teilbudget", "Bezeichnung", "Regel", "Betrag (€)", "an Sozialräume verteilt"]
    f = wb["Formel"]
    assert [c.value for c in f[1]] == ["Bestandteil", "Art", "Verteilt nach", "Gewicht", "Betrag (€)"]
    assert {f.cell(row=r, column=2).value for r in range(2, 5)} == {"Bevölkerung", "Bedarfsmodell", "Sozialindikatoren"}
