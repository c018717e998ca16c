"""Nothing row-level from an HzE case list reaches a result, a note, a message or an output.

The secrets are every case id, every date (as written and as ISO), every
coordinate and every street of the list. ``as_of`` (the list's date, a
configuration value) is the only date allowed.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from geoplan.errors import GeoplanError
from geoplan.load.caselist import CaseListConfig, read_case_list_inputs
from geoplan.load.simulated_caselist import OUT, ROOT
from geoplan.load.tables import read_table
from geoplan.stages.caselist import case_counts

BERLIN_LIST = dict(case_id="Fallnummer", kind="Hilfeart", start="Beginn", end="Ende", cost="Kosten je Monat",
                   subarea="Planungsraum", x="Rechtswert", y="Hochwert")


def _secrets(path: Path) -> tuple[set[str], set[str]]:
    """(case ids, dates in both spellings) of a case-list CSV, read with plain pandas."""
    raw = pd.read_csv(path, sep=";", dtype=str, keep_default_na=False)
    ids = set(raw["Fallnummer"])
    dates = {d for d in pd.concat([raw["Beginn"], raw["Ende"]]) if d}
    iso = {f"{d[6:]}-{d[3:5]}-{d[:2]}" for d in dates}
    return ids, dates | iso


def _leaks(text: str, ids: set[str], dates: set[str], allowed=()) -> list[str]:
    found = [t for t in re.findall(r"\b[FG]\d{6}\b", text) if t in ids]
    found += [t for t in re.findall(r"\b\d{2}\.\d{2}\.\d{4}\b|\b\d{4}-\d{2}-\d{2}\b", text)
              if t in dates and t not in allowed]
    return found


def _blob(*objs) -> str:
    parts = []
    for o in objs:
        if isinstance(o, pd.DataFrame):
            parts.append(o.to_csv())
        elif isinstance(o, list):  # notes
            parts += [json.dumps(n.to_dict(), default=str, ensure_ascii=False) for n in o]
        else:
            parts.append(json.dumps(o, default=str, ensure_ascii=False))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def berlin_counts():
    import geopandas as gpd

    cfg = CaseListConfig(path=OUT, columns=BERLIN_LIST, cost_basis="monat", crs="EPSG:25833", simulated=True)
    kt = read_table(ROOT / "indicators/berlin/lor_2021_plr_schluessel.csv", key="Planungsraum (Nummer)",
                    text_columns=["Prognoseraum (Nummer)"]).frame
    cl, mapping, directory = read_case_list_inputs(cfg, key_table=kt, key_source="Planungsraum (Nummer)",
                                                   key_target="Prognoseraum (Nummer)")
    poly = gpd.read_file(ROOT / "boundaries/berlin/prognoseraeume_2021.geojson").rename(columns={"id": "key"})
    res = case_counts(cl, cfg, area_keys=poly["key"].tolist(), budget_year=2027, mapping=mapping, polygons=poly)
    return cl, res


def test_results_notes_and_summaries_hold_no_case_id_or_date(berlin_counts):
    cl, res = berlin_counts
    ids, dates = _secrets(OUT)
    blob = _blob(cl.summary, cl.notes, cl.unknown_kinds, res.frame, res.panel, res.notes, res.summary())
    assert _leaks(blob, ids, dates) == []
    # the list's date was taken from the rows (no as_of configured): only its month is shown
    assert cl.as_of_derived and res.summary()["as_of"] == f"{cl.as_of:%m.%Y}"
    # the planted check works: a note with a case id would be found
    assert _leaks(blob + f"\n{sorted(ids)[0]}", ids, dates) == [sorted(ids)[0]]


def test_loader_frame_holds_only_mapped_columns(berlin_counts):
    cl, _ = berlin_counts
    assert set(cl.frame.columns) <= {"row", "case_id", "kind", "form", "start", "end", "cost", "area", "subarea",
                                     "x", "y", "street", "house_number"}


def test_strict_error_names_rows_not_values(tmp_path):
    p = tmp_path / "f.csv"
    p.write_text("Fall;Art;Beginn;Ende;Straße;Nr\nF123456;34;01.02.2024;01.01.2024;Geheimweg;3\n"
                 "F654321;Geheimart;01.02.2024;;Geheimweg;5\n", encoding="utf-8")
    sd = tmp_path / "s.csv"
    sd.write_text("Straße;von;bis;Seite;Schlüssel\nAndereStraße;1;9;alle;01\n", encoding="utf-8")
    cfg = CaseListConfig(path=p, columns=dict(case_id="Fall", kind="Art", start="Beginn", end="Ende", street="Straße",
                                              house_number="Nr"),
                         street_directory={"path": sd}, strict=True, as_of="2024-12-31", years=2)
    cl, mapping, directory = read_case_list_inputs(cfg)
    with pytest.raises(GeoplanError) as err:
        case_counts(cl, cfg, area_keys=["01"], budget_year=2026, directory=directory)
    text = err.value.render() + err.value.render("en")
    for secret in ("F123456", "F654321", "01.02.2024", "01.01.2024", "Geheimweg"):
        assert secret not in text
    assert "Zeilen 2" in text
    # the unknown kind's spelling is named (a category label, to fill in kind_map), in the console message only
    assert "Geheimart" in text


def test_every_output_of_a_run_from_the_case_list_is_free_of_list_values(demo_result, demo_outputs):
    """The session's demo run (tests/conftest.py) is a run from the case list: examples/berlin.yaml reads the
    simulated list with these columns, as_of 31.12.2025, a budget of ambulant and teilstationär help, and
    writes every output, the PDF included."""
    from geoplan.cli import EXAMPLE_CONFIG
    from tests.bad_inputs import BOUNDARIES, IND

    cfg = demo_result.config
    cl = cfg.hze.case_list
    assert cl is not None and cfg.resolve(cl.path).resolve() == OUT.resolve()
    assert cl.columns.model_dump(exclude_none=True) == BERLIN_LIST and cl.simulated and str(cl.as_of) == "2025-12-31"
    assert list(cfg.hze.budget_kinds) == ["ambulant", "teilstationaer"] and int(cfg.allocation.total_eur) == 200_000_000
    assert demo_result.frame["hze_cases"].sum() > 0
    out = demo_outputs
    assert (out / "bericht.pdf").is_file()
    ids, dates = _secrets(OUT)
    texts = {}
    for f in out.rglob("*"):
        if f.suffix == ".xlsx":
            with zipfile.ZipFile(f) as z:
                texts[f.name] = "\n".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
        elif f.suffix == ".gpkg":
            with sqlite3.connect(f) as con:
                texts[f.name] = "\n".join(con.iterdump())
        elif f.suffix == ".pdf":
            if shutil.which("pdftotext"):  # (without it the PDF's text cannot be read; the other outputs are)
                texts[f.name] = subprocess.run(["pdftotext", str(f), "-"], capture_output=True, text=True,
                                               check=True).stdout
        elif f.is_file():
            texts[f.name] = f.read_text(encoding="utf-8", errors="replace")
    assert texts
    # Dates that come from elsewhere are allowed: the inputs other than the list
    # (reference dates of the indicators, "Stand der Daten" of the key table),
    # the configuration (as_of) and the day of the run.
    import datetime as _dt

    inputs = [BOUNDARIES, *(f for f in IND.iterdir() if f.suffix in (".csv", ".yaml") and f.name != OUT.name)]
    other = [f.read_text(encoding="utf-8", errors="replace") for f in inputs]
    other.append(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    today = _dt.date.today()
    other.append(f"{today:%d.%m.%Y} {today:%Y-%m-%d} 31.12.2025 2025-12-31")
    allowed = set(re.findall(r"\b\d{2}\.\d{2}\.\d{4}\b|\b\d{4}-\d{2}-\d{2}\b", "\n".join(other)))
    for name, text in texts.items():
        assert _leaks(text, ids, dates, allowed=allowed) == [], name
