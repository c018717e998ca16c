"""The demo (geoplan demo, examples/berlin.yaml) runs from the simulated HzE case list.

Its per-area counts are checked against a direct pandas count of the same CSV,
written here without geoplan's case-list code (own kind table, own key table
read, own point-in-polygon, the counting rule "am 31.12. andauernd + im Jahr
beendet" as a date comparison).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT

LIST = ROOT / "indicators" / "berlin" / "hze_fallliste_simuliert.csv"
KEY_TABLE = ROOT / "indicators" / "berlin" / "lor_2021_plr_schluessel.csv"
POLYGONS = ROOT / "boundaries" / "berlin" / "prognoseraeume_2021.geojson"

# the written-out kinds of the list -> § (numbers are read from the text)
WORDS = {"SPFH": "31", "Heimerziehung": "34", "Erziehungsbeistand": "30", "Vollzeitpflege": "33",
         "Tagesgruppe": "32", "Soziale Gruppenarbeit": "29", "ISE": "35"}
# groups of the Kinder- und Jugendhilfestatistik; § 41 i.V.m. § 34 is stationär (the form), § 19 no HzE
GROUP = {"27": "ambulant", "29": "ambulant", "30": "ambulant", "31": "ambulant", "35": "ambulant",
         "35a": "ambulant", "32": "teilstationaer", "33": "stationaer", "34": "stationaer", "41": "stationaer"}


def _para(text: str) -> str | None:
    if text in WORDS:
        return WORDS[text]
    m = re.search(r"(\d{2}a?)", text)
    return m.group(1) if m else None


@pytest.fixture(scope="module")
def direct():
    """The list counted with pandas: one row per help with Sozialraum, group, start and end."""
    import geopandas as gpd

    raw = pd.read_csv(LIST, sep=";", dtype=str, keep_default_na=False)
    raw = raw.drop_duplicates()  # exact copies of a row (the simulator's duplicates) are one help
    raw["para"] = raw["Hilfeart"].map(_para)
    raw["group"] = raw["para"].map(GROUP)  # None: no HzE (§ 19), not counted
    start = pd.to_datetime(raw["Beginn"], format="%d.%m.%Y")
    end = pd.to_datetime(raw["Ende"].replace("", None), format="%d.%m.%Y")
    # after dropping exact copies no help of a case overlaps another of the same kind, so every row is one help
    order = pd.DataFrame({"case": raw["Fallnummer"], "para": raw["para"], "start": start,
                          "end": end.fillna(pd.Timestamp("2262-01-01"))}).sort_values(["case", "para", "start"])
    same = (order["case"].to_numpy()[1:] == order["case"].to_numpy()[:-1]) & (
        order["para"].to_numpy()[1:] == order["para"].to_numpy()[:-1])
    assert not (same & (order["start"].to_numpy()[1:] <= order["end"].to_numpy()[:-1])).any()
    kt = pd.read_csv(KEY_TABLE, dtype=str, encoding="utf-8-sig")
    key = raw["Planungsraum"].map(dict(zip(kt["Planungsraum (Nummer)"], kt["Prognoseraum (Nummer)"])))
    poly = gpd.read_file(POLYGONS)[["id", "geometry"]].to_crs("EPSG:25833")
    xy = (raw["Rechtswert"] != "") & key.isna()
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(
        raw.loc[xy, "Rechtswert"].str.replace(",", ".").astype(float),
        raw.loc[xy, "Hochwert"].str.replace(",", ".").astype(float)), index=raw.index[xy], crs="EPSG:25833")
    hit = gpd.sjoin(pts, poly, predicate="intersects")
    key = key.fillna(hit["id"].groupby(level=0).min())
    ok = key.notna() & raw["group"].notna() & ~(end < start)
    return pd.DataFrame({"key": key, "group": raw["group"], "start": start, "end": end})[ok]


def _count(direct: pd.DataFrame, year: int, keys, group: str | None = None) -> pd.Series:
    d = direct if group is None else direct[direct["group"] == group]
    # am 31.12. andauernd (begun by 31.12., no end or an end after it) + im Jahr beendet
    ongoing = (d["start"] <= f"{year}-12-31") & (d["end"].isna() | (d["end"] > f"{year}-12-31"))
    ended = (d["end"] >= f"{year}-01-01") & (d["end"] <= f"{year}-12-31")
    return d.loc[ongoing | ended, "key"].value_counts().reindex(keys, fill_value=0)


def test_demo_reads_the_simulated_case_list(demo_result):
    cfg = demo_result.config
    assert cfg.hze.simulate is None and cfg.hze.case_list is not None and cfg.hze.case_list.simulated
    assert cfg.resolve(cfg.hze.case_list.path).resolve() == LIST.resolve()
    assert demo_result.simulated
    roles = {i.role: i for i in demo_result.inputs}
    assert roles["HzE-Fallliste"].rows == len(pd.read_csv(LIST, sep=";", dtype=str))


def test_case_list_counts_in_texts_have_thousands_separators(demo_result):
    """The row counts of the case list in the Datengrundlage's check column and in the QA notes are grouped
    like every other count of the report: "53.840 von 53.882" (German), "53,840 of 53,882" (English)."""
    from geoplan import fmt

    hze = {i.role: i for i in demo_result.inputs}["HzE-Fallliste"]
    n = hze.rows
    assert n > 9999
    assert hze.qa.endswith(f" von {fmt.number(n)} Zeilen gezählt"), hze.qa
    assert hze.qa_en.endswith(f" of {fmt.number(n, lang='en')} rows counted"), hze.qa_en
    case_notes = [x for x in demo_result.notes if x.text("de").startswith(("Fallliste:", "HzE-Fallliste:"))]
    assert len(case_notes) >= 2
    for note in case_notes:
        assert f" von {fmt.number(n)} Zeilen" in note.text("de"), note.text("de")
        assert f" of {fmt.number(n, lang='en')} rows" in note.text("en"), note.text("en")
    summary = next(x for x in case_notes if x.text("de").startswith("HzE-Fallliste:"))
    assert re.search(r": \d{1,3}(\.\d{3})+ Hilfen", summary.text("de")), summary.text("de")
    assert re.search(r": \d{1,3}(,\d{3})+ helps", summary.text("en")), summary.text("en")


def test_notes_on_the_case_list_file_stand_under_its_stage(demo_result):
    """The reader's notes on the case list (e.g. its number format) are listed under 'HzE-Daten' in the
    QA appendix, not under 'Indikatoren'."""
    on_list = [x for x in demo_result.notes if x.file and Path(x.file).name == LIST.name]
    assert any("Zahlenformat" in x.message for x in on_list)
    assert {x.stage for x in on_list} == {"hze"}, [(x.stage, x.message) for x in on_list]


def test_demo_counts_equal_a_direct_pandas_count_of_the_list(demo_result, direct):
    f = demo_result.frame.set_index("key")
    as_of = pd.Timestamp(demo_result.config.hze.case_list.as_of)
    ref = as_of.year  # the list is dated 31.12.: its year is complete
    assert (as_of.month, as_of.day) == (12, 31)
    for year, col in ((ref, "hze_cases"), (ref - 1, "hze_cases_prev")):
        counted = _count(direct, year, f.index)
        assert counted.sum() > 10_000  # the whole city, not an empty selection
        assert (f[col].astype(int) == counted).all(), (col, (f[col] - counted).abs().max())
        for group in ("ambulant", "teilstationaer", "stationaer"):
            by_group = _count(direct, year, f.index, group)
            assert (f[f"{col}_{group}"].astype(int) == by_group).all(), (col, group)


def test_demo_budget_fits_the_lists_prior_year_costs(demo_result):
    """The total lies near the list's prior-year costs: the ±15 % corridor is feasible, binds areas on both
    sides, and there are winners and losers."""
    f = demo_result.frame
    total = int(f["budget_eur"].sum())
    prior = float(f["hze_cost_prev_eur"].sum())
    assert total == int(demo_result.config.allocation.total_eur)
    assert 0.85 * prior < total < 1.15 * prior
    change = (f["budget_eur"] - f["hze_cost_prev_eur"]) / f["hze_cost_prev_eur"] * 100
    assert (change > 0).sum() >= 5 and (change < 0).sum() >= 5
    assert change.max() == pytest.approx(15, abs=0.01) and change.min() == pytest.approx(-15, abs=0.01)
    assert (change.abs() <= 15 + 1e-6).all()


def test_expected_cost_takes_cost_and_cases_of_one_year(demo_result):
    """A case list's prior-year costs are those of its reference year (hze_cases), not of the year before."""
    f = demo_result.frame
    kinds = demo_result.config.hze.budget_kinds
    cases = sum(f[f"hze_cases_{k}"] for k in kinds).sum()
    per_case = f["hze_cost_prev_eur"].sum() / cases
    share = cases / f["hze_cases"].sum()
    assert np.allclose(f["expected_cost_eur"], f["expected_cases"] * share * per_case)
    # the year before has other counts: mixing the years would give another cost per case
    prev = sum(f[f"hze_cases_prev_{k}"] for k in kinds).sum()
    assert prev != cases


def test_case_forecast_is_published_only_where_the_count_is(demo_result):
    """The forecast is the count × a city-wide factor: where the count is suppressed, so is the forecast."""
    import dataclasses

    from geoplan.report.published import build_published

    f = demo_result.frame.copy()
    factor = float((f["hze_cases_forecast"] / f["hze_cases"]).iloc[0])
    small = f["key"].isin(sorted(f["key"])[:2])  # two areas of the same Bezirk get 2 and 1 cases
    for n, row in zip((2, 1), np.flatnonzero(small)):
        f.loc[f.index[row], ["hze_cases", "hze_cases_ambulant", "hze_cases_teilstationaer", "hze_cases_stationaer"]] = \
            [n, n, 0, 0]
        f.loc[f.index[row], "hze_cases_forecast"] = n * factor
    pub = build_published(dataclasses.replace(demo_result, frame=f))
    a = pub.areas.reset_index(drop=True)
    hidden = pub.mask["hze_cases"].to_numpy()
    assert "hze_cases_forecast" in a.columns and hidden.sum() >= 2
    assert hidden[np.flatnonzero(small.to_numpy())].all()
    for i in range(len(a)):
        value = a.loc[i, "hze_cases_forecast"]
        if hidden[i]:
            assert isinstance(value, str) and value == a.loc[i, "hze_cases"]  # the count's marker, "< 3" or "x"
        else:
            expected = f.set_index("key").loc[a.loc[i, "key"], "hze_cases_forecast"]
            assert value == pytest.approx(round(float(expected), 1))


def test_report_methods_describe_the_case_list_not_the_area_simulator(demo_outputs, demo_outputs_en):
    """bericht.html of the session's demo run (tests/conftest.py), German and English."""
    for out, (lang, present, absent) in zip((demo_outputs, demo_outputs_en), (
        ("de", ["<b>HzE-Fallliste:</b>", "Die Fallliste ist mit festem Zufallsstartwert", "Fallprognose Haushaltsjahr"],
         "negativ-binomial um eine Rate"),
        ("en", ["<b>HzE case list:</b>", "the case list is simulated with a fixed random seed",
                "Case forecast, budget year"], "negative binomial around a rate"),
    )):
        html = (out / "bericht.html").read_text(encoding="utf-8")
        assert f'<html lang="{lang}">' in html
        for text in present:
            assert text in html, (lang, text)
        assert absent not in html, lang


def test_inputs_name_the_key_table_and_street_directory_of_a_case_list(demo_result, tmp_path):
    """The manifest's input list (role, hash, rows; nothing of the rows) names every file a case list was
    located with; the example's own key table (already listed by the indicators) is not listed twice."""
    import hashlib

    from geoplan.assemble import case_list_stage
    from geoplan.load.caselist import CaseListConfig

    keys = sorted(demo_result.frame["key"])[:2]
    (tmp_path / "liste.csv").write_text(
        "Fall;Art;Beginn;Ende;PLR;Strasse;Nr\n"
        "A1;31;01.02.2024;;P1;;\n"
        "B1;34;01.03.2024;30.06.2025;;Hauptstr.;12a\n"
        "C1;30;01.04.2025;;P2;;\n", encoding="utf-8")
    (tmp_path / "plr.csv").write_text(f"PLR;PGR\nP1;{keys[0]}\nP2;{keys[1]}\nP3;{keys[1]}\n", encoding="utf-8")
    (tmp_path / "strassen.csv").write_text(f"Straße;von;bis;Seite;Schlüssel\nHauptstraße;1;99;gerade;{keys[0]}\n"
                                           f"Hauptstraße;1;99;ungerade;{keys[1]}\n", encoding="utf-8")
    cl = CaseListConfig(path=tmp_path / "liste.csv", columns=dict(case_id="Fall", kind="Art", start="Beginn", end="Ende",
                                                                   subarea="PLR", street="Strasse", house_number="Nr"),
                        subarea_key_table=tmp_path / "plr.csv", subarea_source_key="PLR", subarea_target_key="PGR",
                        street_directory={"path": tmp_path / "strassen.csv"}, as_of="2025-12-31", years=2)
    cfg = demo_result.config.model_copy(update={"hze": demo_result.config.hze.model_copy(update={"case_list": cl})})
    inputs, notes = [], []
    frame = case_list_stage(cfg, demo_result.frame[["key", "name", "geometry"]], inputs, notes)
    roles = {i.role: i for i in inputs}
    assert set(roles) == {"HzE-Fallliste", "Schlüsseltabelle der Fallliste", "Straßenverzeichnis"}
    for role, name, rows in (("HzE-Fallliste", "liste.csv", 3), ("Schlüsseltabelle der Fallliste", "plr.csv", 3),
                             ("Straßenverzeichnis", "strassen.csv", 2)):
        i = roles[role]
        assert i.path.name == name and i.rows == rows
        assert i.sha256 == hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
    f = frame.set_index("key")
    assert f.loc[keys[0], "hze_cases"] == 2 and f.loc[keys[1], "hze_cases"] == 1  # A1 (P1), B1 (12: even); C1 (P2)
    # protected from being overwritten by an output folder, like every other input
    assert {tmp_path / n for n in ("liste.csv", "plr.csv", "strassen.csv")} <= set(cfg.input_paths())
    # the demo: its list is located through the indicators' key table, which is listed once
    key_table = cfg.resolve(cfg.indicators.aggregate.key_table).resolve()
    assert [i.role for i in demo_result.inputs if i.path.resolve() == key_table] == ["Schlüsseltabelle"]
