"""HzE case lists: reading, locating, counting rules of the KJH-Statistik, QA, street directory.

Every expected number is worked out by hand in the test (calendar days in
the comments), not taken from the code under test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from geoplan.errors import GeoplanError
from geoplan.load.caselist import CaseListConfig, normalize_kind, parse_dates, read_case_list
from geoplan.load.streets import directory_from_frame, house_number, normalize_street, read_street_directory
from geoplan.stages.caselist import case_counts, check_cases, count_years, forecast_factor, locate

# Five valid helps in two areas, plus three faulty rows. Dates cross year ends,
# start and end in one year, no end, end on 31.12., a one-day help.
LIST_CSV = """Fall-Nr;Vorname;Geburtsdatum;Hilfeart;Beginn;Ende;Kosten;SR
A1;Max;01.01.2010;§ 34 SGB VIII;01.07.2022;31.03.2024;{a};01
B1;Eva;01.01.2011;31;01.02.2023;30.04.2023;{b};01
C1;Udo;01.01.2012;Heimerziehung;01.11.2023;;{c};02
D1;Ina;01.01.2013;§ 27 Abs. 2;15.03.2024;31.12.2024;{d};02
E1;Tom;01.01.2014;35a;01.01.2024;01.01.2024;{e};01
F1;Kai;01.01.2015;XYZ;01.01.2024;;300;01
G1;Kim;01.01.2016;30;01.05.2024;01.04.2024;300;01
H1;Lea;01.01.2017;30;01.05.2024;;300;
"""
COLUMNS = dict(case_id="Fall-Nr", kind="Hilfeart", start="Beginn", end="Ende", cost="Kosten", area="SR")


def _config(path, basis="monat", **kw):
    return CaseListConfig(path=path, columns=COLUMNS, cost_basis=basis, as_of="2024-12-31", years=2, **kw)


def _write(tmp_path, a="5.000,00", b="1.000,00", c="6.000,00", d="800,00", e="300,00"):
    p = tmp_path / "faelle.csv"
    p.write_text(LIST_CSV.format(a=a, b=b, c=c, d=d, e=e), encoding="utf-8")
    return p


def _counts(tmp_path, basis="monat", **costs):
    cfg = _config(_write(tmp_path, **costs), basis)
    cl = read_case_list(cfg)
    return case_counts(cl, cfg, area_keys=["01", "02"], budget_year=2026)


def _cell(res, key, year, kind, col):
    p = res.panel
    sel = p[(p["key"] == key) & (p["year"] == year) & (p["kind"] == kind)]
    return int(sel[col].iloc[0]) if len(sel) else 0


def test_reader_keeps_only_mapped_columns(tmp_path):
    cl = read_case_list(_config(_write(tmp_path)))
    assert "Vorname" not in cl.frame.columns and "Geburtsdatum" not in cl.frame.columns
    flat = cl.frame.astype(str).to_numpy().ravel().tolist()
    assert not any(v in flat for v in ("Max", "Eva", "01.01.2010", "2010-01-01"))
    assert cl.summary["columns_read"] == sorted(COLUMNS.values())
    assert cl.frame["kind"].tolist()[:5] == ["34", "31", "34", "27_2", "35a"]
    assert cl.frame["area"].tolist()[7] is None


@pytest.mark.parametrize("role,column", [("case_id", "Vorname"), ("start", "Geburtsdatum"),
                                          ("kind", "Name"), ("case_id", "geb. am")])
def test_mapping_that_reads_names_or_birth_dates_is_refused(tmp_path, role, column):
    cols = dict(COLUMNS, **{role: column})
    with pytest.raises((GeoplanError, ValidationError)) as err:
        CaseListConfig(path=_write(tmp_path), columns=cols, cost_basis="monat")
    assert "Namen oder Geburtsdaten" in str(err.value)


def test_sozialraum_name_is_not_mistaken_for_a_person_name():
    # "Sozialraumname" / "Straßenname" are not personal names
    CaseListConfig(path="x.csv", columns=dict(case_id="Fall", kind="Art", start="Beginn", area="Sozialraumname"))
    CaseListConfig(path="x.csv", columns=dict(case_id="Fall", kind="Art", start="Beginn", street="Straßenname",
                                              house_number="Nr"), street_directory={"path": "s.csv"})


def test_config_needs_cost_basis_crs_and_directory():
    with pytest.raises(ValidationError, match="cost_basis"):
        CaseListConfig(path="x.csv", columns=COLUMNS)
    with pytest.raises(ValidationError, match="crs"):
        CaseListConfig(path="x.csv", columns=dict(case_id="F", kind="A", start="B", x="X", y="Y"))
    with pytest.raises(ValidationError, match="street_directory"):
        CaseListConfig(path="x.csv", columns=dict(case_id="F", kind="A", start="B", street="S", house_number="N"))


@pytest.mark.parametrize("text,code", [
    ("§ 34 SGB VIII", "34"), ("34", "34"), ("34.0", "34"), ("Heimerziehung", "34"),
    ("Heimerziehung, sonstige betreute Wohnform", "34"), ("§ 27 Abs. 2", "27_2"), ("27.2", "27_2"),
    ("§27 II SGB VIII", "27_2"), ("35a", "35a"), ("§ 35 a SGB VIII", "35a"), ("§ 35", "35"),
    ("Eingliederungshilfe für seelisch behinderte junge Menschen", "35a"), ("SPFH", "31"),
    ("Sozialpädagogische Familienhilfe", "31"), ("Erziehungsbeistand", "30"), ("Tagesgruppe", "32"),
    ("Vollzeitpflege", "33"), ("Soziale Gruppenarbeit", "29"), ("§ 41 i.V.m. § 34", "41"),
    ("Hilfe für junge Volljährige", "41"), ("Kinderheim", "34"), ("Geheimsache", None), ("XYZ", None), ("", None), ("§ 13", None),
])
def test_kind_spellings(text, code):
    assert normalize_kind(text) == code


def test_kind_map_for_local_codes():
    assert normalize_kind("HE-stat", {"he-stat": "34"}) == "34"
    assert normalize_kind("  AMB 1 ", {"amb 1": "31"}) == "31"


def test_dates():
    s, bad = parse_dates(pd.Series(["31.12.2024", "1.3.24", "2024-02-29", "2024-02-29 00:00:00", "45657", None,
                                    "31.02.2024", "gestern"]))
    assert [str(d.date()) if not pd.isna(d) else None for d in s] == [
        "2024-12-31", "2024-03-01", "2024-02-29", "2024-02-29", "2024-12-31", None, None, None]
    assert bad.tolist() == [False] * 6 + [True, True]


def test_counting_rules_by_hand(tmp_path):
    r = _counts(tmp_path)
    # 2023, area 01: A (34, 01.07.2022–31.03.2024) ongoing on 31.12.; B (31, 01.02.–30.04.2023) begun and ended
    assert [_cell(r, "01", 2023, "alle", c) for c in ("started", "ended", "ongoing", "ongoing_or_ended")] == [1, 1, 1, 2]
    # days: A all 365 days of 2023; B 28 (Feb) + 31 (Mar) + 30 (Apr) = 89
    assert _cell(r, "01", 2023, "alle", "days") == 365 + 89
    # 2023, area 02: C (Heimerziehung from 01.11.2023, no end) begun and ongoing; 30 + 31 = 61 days
    assert [_cell(r, "02", 2023, "alle", c) for c in ("started", "ended", "ongoing", "ongoing_or_ended", "days")] \
        == [1, 0, 1, 1, 61]
    # 2024 (leap year), area 01: A ended 31.03. (31 + 29 + 31 = 91 days), E one day 01.01.2024
    assert [_cell(r, "01", 2024, "alle", c) for c in ("started", "ended", "ongoing", "ongoing_or_ended", "days")] \
        == [1, 2, 0, 2, 91 + 1]
    # 2024, area 02: C ongoing all 366 days; D 15.03.–31.12.: ended on 31.12. counts as ended, not ongoing;
    # days 17 (Mar) + 30 + 31 + 30 + 31 + 31 + 30 + 31 + 30 + 31 = 292
    assert [_cell(r, "02", 2024, "alle", c) for c in ("started", "ended", "ongoing", "ongoing_or_ended", "days")] \
        == [1, 1, 1, 2, 366 + 292]
    # groups: A, C stationär (§ 34); B, D, E ambulant (§ 31, § 27 Abs. 2, § 35a)
    assert _cell(r, "01", 2023, "stationaer", "ongoing_or_ended") == 1
    assert _cell(r, "01", 2023, "ambulant", "ongoing_or_ended") == 1
    assert _cell(r, "02", 2024, "ambulant", "ended") == 1 and _cell(r, "02", 2024, "p27_2", "ended") == 1
    assert _cell(r, "01", 2024, "p35a", "started") == 1
    # the Sozialraum columns: reference year 2024, prior year 2023
    f = r.frame
    assert f.loc["01", "hze_cases"] == 2 and f.loc["02", "hze_cases"] == 2
    assert f.loc["01", "hze_cases_prev"] == 2 and f.loc["02", "hze_cases_prev"] == 1
    assert f.loc["02", "hze_cases_stationaer"] == 1 and f.loc["02", "hze_cases_ambulant"] == 1
    assert r.reference_year == 2024 and r.years == [2023, 2024]


def test_costs_per_month_pro_rata_by_days(tmp_path):
    r = _counts(tmp_path, basis="monat")
    # 2023: A 5,000/month all year = 60,000.00; B 1,000 × 12 × 89/365 = 2,926.03 -> 62,926.03 -> 62,926
    assert _cell(r, "01", 2023, "alle", "cost_eur") == 62926
    # C 6,000 × 12 × 61/365 = 12,032.88 -> 12,033
    assert _cell(r, "02", 2023, "alle", "cost_eur") == 12033
    # 2024: A 5,000 × 12 × 91/366 = 14,918.03; E 300 × 12 × 1/366 = 9.84 -> 14,927.87 -> 14,928
    assert _cell(r, "01", 2024, "alle", "cost_eur") == 14928
    # stationär part of it: 14,918.03 -> 14,918; ambulant 9.84 -> 10
    assert r.frame.loc["01", "hze_cost_prev_stationaer_eur"] == 14918
    assert r.frame.loc["01", "hze_cost_prev_ambulant_eur"] == 10
    assert r.frame.loc["01", "hze_cost_prev_eur"] == 14918 + 10


def test_costs_per_year_pro_rata_by_days(tmp_path):
    r = _counts(tmp_path, basis="jahr", a="36.600", b="36.500", c="0", d="36.600", e="0")
    # 2023: A 36,600 × 365/365 = 36,600; B 36,500 × 89/365 = 8,900 -> 45,500
    assert _cell(r, "01", 2023, "alle", "cost_eur") == 45500
    # 2024: A 36,600 × 91/366 = 9,100; D 36,600 × 292/366 = 29,200
    assert _cell(r, "01", 2024, "alle", "cost_eur") == 9100
    assert _cell(r, "02", 2024, "alle", "cost_eur") == 29200


def test_total_costs_spread_over_the_help(tmp_path):
    r = _counts(tmp_path, basis="gesamt", a="100.000", b="8.900", c="4.270", d="2.920", e="50")
    # A: 01.07.2022–31.03.2024 = 184 + 365 + 91 = 640 days; 2023: 100,000 × 365/640 = 57,031.25;
    # B lies in 2023 entirely: 8,900 -> 65,931.25 -> 65,931
    assert _cell(r, "01", 2023, "alle", "cost_eur") == 65931
    # 2024: A 100,000 × 91/640 = 14,218.75; E 50 (one day, all of it) -> 14,268.75 -> 14,269
    assert _cell(r, "01", 2024, "alle", "cost_eur") == 14269
    # C ongoing: total up to the list's date 31.12.2024 = 61 + 366 = 427 days; 2023: 4,270 × 61/427 = 610;
    # 2024: 4,270 × 366/427 = 3,660; D 2,920 all in 2024 -> 6,580
    assert _cell(r, "02", 2023, "alle", "cost_eur") == 610
    assert _cell(r, "02", 2024, "alle", "cost_eur") == 3660 + 2920


def test_qa_counts_faulty_rows_without_values(tmp_path):
    r = _counts(tmp_path)
    assert r.qa["rows"] == 8
    assert r.qa["hilfeart_unbekannt"] == 1  # F1 'XYZ'
    assert r.qa["ende_vor_beginn"] == 1  # G1
    assert r.qa["ohne_ort"] == 1  # H1 without a key
    assert r.qa["gezaehlt"] == 5
    text = " ".join(n.message + str(n.details) + str(n.location) for n in r.notes)
    for secret in ("A1", "H1", "XYZ", "01.05.2024", "2024-05-01", "Lea"):
        assert secret not in text


def test_strict_mode_stops_and_names_rows_not_values(tmp_path):
    cfg = _config(_write(tmp_path), strict=True)
    with pytest.raises(GeoplanError) as err:
        case_counts(read_case_list(cfg), cfg, area_keys=["01", "02"], budget_year=2026)
    msg = err.value.render()
    assert "strenger Modus" in msg and "Zeilen 8" in msg  # G1 is line 8 of the file
    assert "G1" not in msg and "01.04.2024" not in msg


def _frame(rows):
    return pd.DataFrame(rows, columns=["case_id", "kind", "start", "end", "key"]).assign(
        start=lambda d: pd.to_datetime(d["start"]), end=lambda d: pd.to_datetime(d["end"]), row=range(2, 2 + len(rows)))


def test_overlapping_duplicates_are_merged():
    f = _frame([
        ["X", "31", "2023-01-01", "2023-06-30", "01"],
        ["X", "31", "2023-06-01", "2023-12-31", "01"],  # overlaps the first: same help
        ["X", "31", "2024-02-01", "2024-03-31", "01"],  # later, no overlap: a new help
        ["X", "34", "2023-03-01", None, "01"],          # other kind: its own help
        ["Y", "31", "2023-01-01", "2023-06-30", "01"],
    ])
    usable, qa, notes = check_cases(f, as_of=pd.Timestamp("2024-12-31"))
    assert qa["doppelt_ueberlappend"] == 1
    assert usable.tolist() == [True, False, True, True, True]
    assert "zusammengefasst" in " ".join(n.message for n in notes)


def test_merged_duplicate_keeps_union_period(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("Fall;Art;Beginn;Ende;SR\nX;31;01.01.2023;30.06.2023;01\nX;31;01.06.2023;31.01.2024;01\n",
                 encoding="utf-8")
    cfg = CaseListConfig(path=p, columns=dict(case_id="Fall", kind="Art", start="Beginn", end="Ende", area="SR"),
                         as_of="2024-12-31", years=2)
    r = case_counts(read_case_list(cfg), cfg, area_keys=["01"], budget_year=2026)
    # one help 01.01.2023–31.01.2024: ongoing on 31.12.2023, ended 2024; 365 + 31 days
    assert _cell(r, "01", 2023, "alle", "ongoing") == 1 and _cell(r, "01", 2023, "alle", "days") == 365
    assert _cell(r, "01", 2024, "alle", "ended") == 1 and _cell(r, "01", 2024, "alle", "days") == 31


def test_forecast_factor_by_hand():
    t = pd.Series([100, 110, 121], index=[2022, 2023, 2024])
    # +10 % a year; two years ahead: 1.1² = 1.21
    assert forecast_factor(t, "trend", 2) == pytest.approx(1.21)
    assert forecast_factor(t, "vorjahr", 2) == 1.0
    assert forecast_factor(t, "mittel", 2) == pytest.approx(110.333333 / 121)


def test_forecast_and_cost_forecast_columns(tmp_path):
    r = _counts(tmp_path)
    # city-wide ongoing_or_ended: 2023 = 3, 2024 = 4; budget year 2026 is two years on: (4/3)² = 16/9
    assert r.forecast_factor == pytest.approx(16 / 9)
    assert r.frame.loc["02", "hze_cases_forecast"] == pytest.approx(2 * 16 / 9)
    # prior-year costs × case forecast (Stuttgart, Neunkirchen)
    assert r.frame.loc["01", "hze_cost_forecast_eur"] == round(14928 * 16 / 9)


def test_stage_equals_direct_pandas_count():
    rng = np.random.default_rng(7)
    n = 2000
    start = pd.Timestamp("2019-01-01") + pd.to_timedelta(rng.integers(0, 6 * 365, n), unit="D")
    dur = pd.to_timedelta(rng.integers(0, 900, n), unit="D")
    end = (start + dur).where(rng.random(n) < 0.7)
    end = end.where(end <= pd.Timestamp("2024-12-31"))
    f = pd.DataFrame({"case_id": [f"c{i}" for i in range(n)], "kind": rng.choice(["31", "34", "32", "35a"], n),
                      "start": start, "end": end, "key": rng.choice(["a", "b", "c"], n)})
    f = f[f["start"] <= pd.Timestamp("2024-12-31")]
    panel = count_years(f, [2022, 2023, 2024], as_of=pd.Timestamp("2024-12-31"))
    for y in (2022, 2023, 2024):
        y0, y1 = pd.Timestamp(f"{y}-01-01"), pd.Timestamp(f"{y}-12-31")
        active = (f["start"] <= y1) & (f["end"].isna() | (f["end"] >= y0))
        direct = f[active].groupby("key").size()
        ongoing = f[(f["start"] <= y1) & (f["end"].isna() | (f["end"] > y1))].groupby("key").size()
        begun = f[f["start"].between(y0, y1)].groupby("key").size()
        stage = panel[(panel["year"] == y) & (panel["kind"] == "alle")].set_index("key")
        assert stage["ongoing_or_ended"].to_dict() == direct.to_dict()
        assert stage["ongoing"].to_dict() == ongoing.to_dict()
        assert stage["started"].to_dict() == begun.reindex(stage.index, fill_value=0).to_dict()
        # kinds add up to all; groups too
        groups = panel[(panel["year"] == y) & panel["kind"].isin(["ambulant", "teilstationaer", "stationaer"])]
        assert groups["ongoing_or_ended"].sum() == stage["ongoing_or_ended"].sum()


# --------------------------------------------------------------------------
# street directory

DIRECTORY = pd.DataFrame({
    "Straße": ["Hauptstraße", "Hauptstraße", "Hauptstraße", "Karl-Marx-Str.", "Müllerstraße", "Müllerstraße"],
    "von": ["1", "2", "101", None, "1", "8"],
    "bis": ["99", "98", "199", None, "10", "20"],
    "Seite": ["ungerade", "gerade", "alle", None, "alle", "alle"],
    "Schlüssel": ["A", "B", "C", "D", "E", "F"],
})


@pytest.mark.parametrize("street,number,key,outcome", [
    ("Hauptstr.", "13a", "A", "ok"),           # odd, suffix
    ("hauptstrasse", "14", "B", "ok"),         # even, spelling
    ("Haupt-Straße", "101 b", "C", "ok"),      # all numbers, hyphen, suffix with blank
    ("Hauptstraße", "99", "A", "ok"),          # upper end of the odd range
    ("Hauptstraße", "100", None, "nummer_unbekannt"),  # even but above 98, below 101
    ("Hauptstraße", "201", None, "nummer_unbekannt"),
    ("Karl Marx Straße", "5", "D", "ok"),      # whole street
    ("karl-marx-strasse", "12-14", "D", "ok"),
    ("Muellerstr", "9", None, "mehrdeutig"),   # 9 in 1–10 (E) and 8–20 (F)
    ("Müllerstr.", "12", "F", "ok"),
    ("Mullerstraße", "12", None, "strasse_unbekannt"),
    (None, "1", None, "ohne_adresse"),
])
def test_street_directory(street, number, key, outcome):
    d = directory_from_frame(DIRECTORY, street="Straße", number_from="von", number_to="bis", parity="Seite",
                             key="Schlüssel")
    keys, outcomes = d.lookup_many([street], [number])
    assert keys == [key] and outcomes == [outcome]


def test_street_normalisation_and_house_numbers():
    assert normalize_street("Straßburger Str.") == "strassburgerstrasse"
    assert normalize_street("Alexanderpl.") == normalize_street("Alexanderplatz")
    assert normalize_street("Große Hamburger Straße") == normalize_street("Grosse Hamburger Str")
    assert [house_number(v) for v in ("12a", "12 A", "12-14", "12/1", 7, 7.0, "a12", None)] == \
        [12, 12, 12, 12, 7, 7, None, None]


def test_street_directory_file_and_addresses_in_a_case_list(tmp_path):
    sd = tmp_path / "strassen.csv"
    DIRECTORY.to_csv(sd, sep=";", index=False)
    cases = tmp_path / "f.csv"
    cases.write_text("Fall;Art;Beginn;Straße;Nr\n1;31;01.01.2024;Hauptstr.;13a\n2;31;01.01.2024;Hauptstr.;100\n"
                     "3;34;01.01.2024;Gibtsnichtweg;1\n4;34;01.01.2024;Müllerstr.;12\n", encoding="utf-8")
    cfg = CaseListConfig(path=cases, columns=dict(case_id="Fall", kind="Art", start="Beginn", street="Straße",
                                                   house_number="Nr"),
                         street_directory={"path": sd}, as_of="2024-12-31", years=2)
    d = read_street_directory(sd)
    r = case_counts(read_case_list(cfg), cfg, area_keys=list("ABCDEF"), budget_year=2026, directory=d)
    assert r.located == {"adresse": 2, "nummer_unbekannt": 1, "strasse_unbekannt": 1}
    assert r.frame.loc["A", "hze_cases"] == 1 and r.frame.loc["F", "hze_cases"] == 1
    text = " ".join(n.message for n in r.notes)
    assert "Straße nicht im Straßenverzeichnis: 1" in text and "Gibtsnichtweg" not in text


def test_subarea_keys_through_key_table():
    f = pd.DataFrame({"subarea": ["01100101", "01100102", "99999999", None], "area": [None, None, None, "0110"]})
    loc = locate(f, area_keys=["0110", "0120"], mapping={"01100101": "0110", "01100102": "0120"})
    assert loc.key.tolist() == ["0110", "0120", None, "0110"]
    assert loc.method.tolist() == ["subarea", "subarea", "subarea_unbekannt", "area"]
    loc = locate(f.iloc[:2], area_keys=["0110"], prefix_len=4)
    assert loc.key.tolist() == ["0110", "0110"]


# --------------------------------------------------------------------------
# point in polygon


def _squares():
    import geopandas as gpd
    from shapely.geometry import box

    # two squares of 1 km sharing the edge x = 391,000 (ETRS89 / UTM 33N, Berlin)
    return gpd.GeoDataFrame({"key": ["02", "01"]},
                            geometry=[box(390000, 5819000, 391000, 5820000), box(391000, 5819000, 392000, 5820000)],
                            crs="EPSG:25833")


def test_points_on_boundaries_and_outside():
    f = pd.DataFrame({"x": [390500, 391000, 390000, 391500, 395000, np.nan],
                      "y": [5819500, 5819500, 5819000, 5819999.999, 5819500, np.nan]})
    loc = locate(f, area_keys=["01", "02"], polygons=_squares(), crs="EPSG:25833")
    # inside 02; on the shared edge -> smallest key 01; outer corner of 02; inside 01; outside; no point
    assert loc.key.tolist() == ["02", "01", "02", "01", None, None]
    assert loc.method.tolist() == ["punkt", "punkt", "punkt", "punkt", "punkt_ausserhalb", "ohne_ort"]


def test_points_in_another_crs_are_transformed():
    from pyproj import Transformer

    lon, lat = Transformer.from_crs("EPSG:25833", "EPSG:4326", always_xy=True).transform(391500, 5819500)
    f = pd.DataFrame({"x": [lon], "y": [lat]})
    loc = locate(f, area_keys=["01", "02"], polygons=_squares(), crs="EPSG:4326")
    assert loc.key.tolist() == ["01"]


# --------------------------------------------------------------------------
# the simulated Berlin list (shipped, read through the real import path)

BERLIN_LIST = dict(case_id="Fallnummer", kind="Hilfeart", start="Beginn", end="Ende", cost="Kosten je Monat",
                   subarea="Planungsraum", x="Rechtswert", y="Hochwert")


@pytest.fixture(scope="module")
def berlin():
    import geopandas as gpd

    from geoplan.load.simulated_caselist import OUT, ROOT
    from geoplan.load.tables import read_table

    cfg = CaseListConfig(path=OUT, columns=BERLIN_LIST, cost_basis="monat", crs="EPSG:25833", simulated=True)
    kt = read_table(ROOT / "indicators/berlin/lor_2021_plr_schluessel.csv", key="Planungsraum (Nummer)",
                    text_columns=["Prognoseraum (Nummer)"]).frame
    mapping = dict(zip(kt["Planungsraum (Nummer)"], kt["Prognoseraum (Nummer)"]))
    poly = gpd.read_file(ROOT / "boundaries/berlin/prognoseraeume_2021.geojson").rename(columns={"id": "key"})
    res = case_counts(read_case_list(cfg), cfg, area_keys=poly["key"].tolist(), budget_year=2027,
                      mapping=mapping, polygons=poly)
    return OUT, mapping, poly, res


def test_shipped_simulated_list_is_reproducible():
    from geoplan.load.simulated_caselist import OUT, berlin_case_list
    from geoplan.stages.simulate_caselist import case_list_csv

    assert case_list_csv(berlin_case_list()) == OUT.read_text(encoding="utf-8")


def test_berlin_counts_equal_a_direct_pandas_count(berlin):
    import geopandas as gpd

    path, mapping, poly, res = berlin
    raw = pd.read_csv(path, sep=";", dtype=str, keep_default_na=False)
    raw = raw.drop_duplicates()  # the simulated duplicates are exact copies of a row
    start = pd.to_datetime(raw["Beginn"], format="%d.%m.%Y")
    end = pd.to_datetime(raw["Ende"].replace("", None), format="%d.%m.%Y")
    keep = ~raw["Hilfeart"].str.contains("§ 19") & ~(end < start)
    key = raw["Planungsraum"].map(mapping)
    has_xy = raw["Rechtswert"] != ""
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(
        raw.loc[has_xy, "Rechtswert"].str.replace(",", ".").astype(float),
        raw.loc[has_xy, "Hochwert"].str.replace(",", ".").astype(float)), index=raw.index[has_xy], crs="EPSG:25833")
    j = gpd.sjoin(pts, poly[["key", "geometry"]], predicate="within")
    key = key.fillna(j["key"].groupby(level=0).first())
    keep &= key.notna()
    for year, col in ((2025, "hze_cases"), (2024, "hze_cases_prev")):
        active = keep & (start <= f"{year}-12-31") & (end.isna() | (end >= f"{year}-01-01"))
        direct = key[active].value_counts().reindex(res.frame.index, fill_value=0)
        assert (res.frame[col] == direct).all(), col
        stat = active & raw["Hilfeart"].str.contains("33|34|Vollzeitpflege|Heimerziehung")
        direct_stat = key[stat].value_counts().reindex(res.frame.index, fill_value=0)
        assert (res.frame[col.replace("hze_cases", "hze_cases") + "_stationaer"] == direct_stat).all()
    assert res.frame["hze_cases"].sum() > 20000  # about 39 per 1,000 under 21 in Berlin
    assert res.qa["hilfeart_unbekannt"] == 20 and res.qa["ohne_ort"] == 10 and res.qa["doppelt_ueberlappend"] == 8
    assert res.located["punkt"] > 0.2 * res.qa["rows"]


def test_excluded_kinds_are_not_counted(tmp_path):
    cfg = _config(_write(tmp_path), exclude_kinds=["35a"])
    r = case_counts(read_case_list(cfg), cfg, area_keys=["01", "02"], budget_year=2026)
    # 2024, area 01 without E (§ 35a): only A, ended 31.03.2024, 91 days
    assert _cell(r, "01", 2024, "alle", "ongoing_or_ended") == 1 and _cell(r, "01", 2024, "alle", "days") == 91
    assert r.qa["nicht_gezaehlte_hilfeart"] == 1 and r.qa["gezaehlt"] == 4
    with pytest.raises(ValidationError, match="exclude_kinds"):
        _config(_write(tmp_path), exclude_kinds=["99"])
