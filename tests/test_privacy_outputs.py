"""A planted small HzE count must not appear in any published output.

The run uses a HzE table (as a Jugendamt would deliver it) in which one
Sozialraum has exactly 2 cases; every other area has a three-digit count. Each
output is then searched where that area's count would stand.
"""

from __future__ import annotations

import json
from html import unescape
import re
import shutil
import subprocess
import zipfile

import geopandas as gpd
import pytest
from openpyxl import load_workbook

from geoplan.config import config_from_dict
from geoplan.pipeline import run
from geoplan.report import write_outputs
from tests.bad_inputs import Workspace

PLANTED_KEY = "0110"
PLANTED = 2


@pytest.fixture(scope="module")
def planted_outputs(tmp_path_factory):
    ws = Workspace.create(tmp_path_factory.mktemp("privacy") / "ws")
    keys = [f["properties"]["id"] for f in ws.geojson()["features"]]
    lines = ["SR;Faelle_2026;Faelle_2025;Kosten_2025"]
    for i, k in enumerate(sorted(keys)):
        cases = PLANTED if k == PLANTED_KEY else 300 + 7 * i
        lines.append(f"{k};{cases};{cases + 5 if k != PLANTED_KEY else 1};{(cases + 5) * 9000}")
    (ws.data / "hze.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    ws.raw["hze"] = {"path": "daten/hze.csv", "key": "SR",
                     "columns": {"Faelle_2026": "hze_cases", "Faelle_2025": "hze_cases_prev",
                                 "Kosten_2025": "hze_cost_prev_eur"}}
    ws.raw["allocation"].pop("corridor", None)  # the made-up costs are not on the budget's scale
    ws.raw["output"]["pdf"] = shutil.which("pdftotext") is not None
    cfg = config_from_dict(ws.raw, base_dir=ws.root)
    result = run(cfg)
    out = ws.root / "ausgabe"
    write_outputs(result, out)
    return out, result


def test_raw_result_has_the_planted_count(planted_outputs):
    _, result = planted_outputs
    assert int(result.frame.set_index("key").loc[PLANTED_KEY, "hze_cases"]) == PLANTED
    assert result.simulated is False


def _row_cells_html(html: str, key: str) -> list[list[str]]:
    rows = []
    for tr in re.findall(r"<tr>(.*?)</tr>", html, flags=re.S):
        cells = [unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, flags=re.S)]
        if cells and cells[0] == key:
            rows.append(cells)
    return rows


def test_html_report(planted_outputs):
    out, _ = planted_outputs
    html = (out / "bericht.html").read_text(encoding="utf-8")
    rows = _row_cells_html(html, PLANTED_KEY)
    assert rows, "the planted area's rows are missing from the report"
    for cells in rows:
        assert str(PLANTED) not in cells
    assert any("< 3" in c for cells in rows for c in cells)


def test_map(planted_outputs):
    out, _ = planted_outputs
    html = (out / "karte.html").read_text(encoding="utf-8")
    assert "hze_cases" not in html
    for m in re.finditer(r'"key":\s*"0110"', html):
        window = html[max(0, m.start() - 2000): m.end() + 2000]
        assert not re.search(r'"hze[^"]*":\s*"?2"?[,}]', window)


def test_xlsx(planted_outputs):
    out, _ = planted_outputs
    wb = load_workbook(out / "verteilung.xlsx")
    for ws in wb.worksheets:
        header = [c.value for c in ws[1]]
        for row in ws.iter_rows(min_row=2, values_only=True):
            if row and row[0] == PLANTED_KEY:
                for h, v in zip(header, row):
                    if h and "HzE" in str(h) and "Fälle" in str(h) and "erwartet" not in str(h).lower():
                        assert v != PLANTED and isinstance(v, str), (h, v)
    # and nowhere in the raw XML next to the key
    with zipfile.ZipFile(out / "verteilung.xlsx") as z:
        assert "hze_cases" not in z.read("xl/worksheets/sheet1.xml").decode()


def test_gpkg(planted_outputs):
    out, _ = planted_outputs
    g = gpd.read_file(out / "ergebnis.gpkg", layer="sozialraeume").set_index("key")
    row = g.loc[PLANTED_KEY]
    for col in g.columns:
        if col.startswith("hze_cases") and not col.endswith("_unterdrueckt"):
            assert row[col] is None or row[col] != row[col] or row[col] != PLANTED, col
    assert bool(row["hze_cases_unterdrueckt"])


def test_pdf_text(planted_outputs):
    out, _ = planted_outputs
    if not (out / "bericht.pdf").exists():
        pytest.skip("pdftotext not installed")
    text = subprocess.run(["pdftotext", "-layout", str(out / "bericht.pdf"), "-"], capture_output=True,
                          text=True, check=True).stdout
    lines = [l for l in text.splitlines() if re.match(rf"\s*{PLANTED_KEY}\s", l)]
    assert lines
    for l in lines:
        assert not re.search(rf"\s{PLANTED}(\s|$)", l.split(PLANTED_KEY, 1)[1].split("Zentrum", 1)[-1]), l


def test_secondary_suppression_protects_the_bezirk_total(planted_outputs):
    out, result = planted_outputs
    g = gpd.read_file(out / "ergebnis.gpkg", layer="sozialraeume")
    bez = result.frame.set_index("key").loc[PLANTED_KEY, "bezirk"]
    same = g[g["bezirk"] == bez]
    assert same["hze_cases_unterdrueckt"].sum() >= 2


def test_manifest(planted_outputs):
    out, _ = planted_outputs
    m = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert m["simulated_hze"] is False
    text = json.dumps(m, ensure_ascii=False)
    assert not re.search(r'"hze_cases[a-z_]*":\s*2\b', text)
    assert f"{PLANTED_KEY}: {PLANTED}" not in text
