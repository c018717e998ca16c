"""The municipal presets: loadable, valid, run on the Berlin example, worked examples from the source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geoplan.stages.allocate import allocate, parse_spec
from geoplan.errors import GeoplanError
from geoplan.presets import PRESET_DIR, list_presets, load_preset, preset_path
from geoplan.stages.settlement import (
    base_total,
    conditional_payout,
    describe_settlement,
    dynamic_coupling,
    first_year_refund,
    parse_settlement,
    provider_split,
    settle_overspend,
    share_surplus,
    transfer_old_cases,
    verfuegungsfonds,
)

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = {
    "stuttgart", "hannover", "bremen", "frankfurt_oder", "wiesbaden", "celle", "siegen",
    "landkreis_tuebingen", "kamp_lintfort", "neunkirchen", "landkreis_nordfriesland", "isa",
}


@pytest.fixture(scope="module")
def berlin():
    """The 58 Berlin Prognoseräume built from the shipped open data.

    Population and MSS indicators are real (aggregated from Planungsräume,
    indicators weighted by residents); expected cases and prior-year costs are
    derived deterministically from them, as stand-ins for the pipeline's
    need model and the simulated HzE data.
    """
    ew = pd.read_csv(ROOT / "indicators/berlin/einwohner_plr_2022-06.csv", sep=";", dtype={"PLR-ID": str},
                     encoding="utf-8-sig", na_values=["–"])
    ew = ew.fillna({c: 0 for c in ew.columns if c != "PLR-ID"})
    ew["pop_u21"] = ew["unter6"] + ew["6-15"] + ew["15-18"] + ew["18-27"] / 3
    keys = pd.read_csv(ROOT / "indicators/berlin/lor_2021_plr_schluessel.csv", dtype=str, encoding="utf-8-sig")
    keys = keys.rename(columns={"Planungsraum (Nummer)": "plr", "Prognoseraum (Nummer)": "key",
                                "Prognoseraum (Name)": "name", "Bezirk": "bezirk"})
    idx = pd.read_csv(ROOT / "indicators/berlin/mss_2021_index_indikatoren.csv", dtype={"PLR_ID": str})
    ctx = pd.read_csv(ROOT / "indicators/berlin/mss_2021_kontext_indikatoren.csv", dtype={"PLR_ID": str})
    ind = idx[["PLR_ID", "S1", "S3", "S4"]].merge(ctx[["PLR_ID", "KI_02"]], on="PLR_ID")
    ind.columns = ["plr", "arbeitslosigkeit", "transferbezug", "kinderarmut", "alleinerziehende"]
    ind = ind.replace(-9999, np.nan)  # MSS sentinel for suppressed values
    df = ew.rename(columns={"PLR-ID": "plr"}).merge(keys[["plr", "key", "name", "bezirk"]], on="plr").merge(ind, on="plr")
    cols = ["arbeitslosigkeit", "transferbezug", "kinderarmut", "alleinerziehende"]
    for c in cols:
        df[c] = df[c].fillna((df[c] * df["Gesamt"]).sum() / df.loc[df[c].notna(), "Gesamt"].sum())
        df[c + "_w"] = df[c] * df["Gesamt"]
    g = df.groupby(["key", "name", "bezirk"], as_index=False).agg(
        pop_total=("Gesamt", "sum"), pop_u21=("pop_u21", "sum"), **{c + "_w": (c + "_w", "sum") for c in cols}
    )
    for c in cols:
        g[c] = g.pop(c + "_w") / g["pop_total"]
    z = (g[cols] - g[cols].mean()) / g[cols].std(ddof=0)
    rel = np.exp(0.35 * z["kinderarmut"] + 0.12 * z["alleinerziehende"] + 0.05 * z["arbeitslosigkeit"])
    g["expected_cases"] = g["pop_u21"] * 30 / 1000 * rel / ((g["pop_u21"] * rel).sum() / g["pop_u21"].sum())
    prev = g["expected_cases"] / 1.02
    for kind, share, cost in [("ambulant", 0.62, 7000), ("teilstationaer", 0.08, 20000), ("stationaer", 0.30, 62000)]:
        g[f"hze_cost_prev_{kind}_eur"] = np.round(prev * share * cost).astype(np.int64)
    g["hze_cost_prev_eur"] = g["hze_cost_prev_ambulant_eur"] + g["hze_cost_prev_teilstationaer_eur"]
    g["expected_cost_eur"] = g["expected_cases"] * 0.7 * g["hze_cost_prev_eur"].sum() / (prev.sum() * 0.7)
    g["need_index"] = (rel - rel.mean()) / rel.std(ddof=0)
    assert len(g) == 58
    return g


# ------------------------------------------------------------------ catalogue
def test_all_presets_listed_and_valid():
    infos = list_presets()
    assert {p.name for p in infos} == EXPECTED
    for p in infos:
        data = load_preset(p.name)
        assert p.title and p.description and data["source"].startswith("ISSAB-Expertise, Kap.")
        parse_spec(data["allocation"])
        parse_settlement(data["settlement"])
        assert len(describe_settlement(data["settlement"])) >= 1


def test_unknown_preset_lists_names():
    with pytest.raises(GeoplanError) as exc:
        load_preset("gotham")
    assert "stuttgart" in exc.value.expected and "isa" in exc.value.expected
    assert preset_path("Frankfurt-Oder") == PRESET_DIR / "frankfurt_oder.yaml"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_preset_runs_on_berlin_example(berlin, name):
    spec = parse_spec(load_preset(name)["allocation"])
    before = berlin.copy()
    res = allocate(berlin, spec)
    pd.testing.assert_frame_equal(berlin, before)
    t = res.table
    assert len(t) == 58
    assert t["budget_eur"].sum() == res.distributed_eur == res.total_eur - res.retained_eur
    assert (t["budget_eur"] >= 0).all()
    assert res.teilbudgets["amount_eur"].sum() == res.total_eur
    for y, total in zip(res.year_totals["year"], res.year_totals["total_eur"]):
        assert res.per_year[f"jahr_{y}_eur"].sum() == total


# ------------------------------------------------------------ worked examples
def test_stuttgart_worked_example(berlin):
    """Source 3.1: B = 6 % of A; 95 % in instalments, 1 % + 3 % + 1 % conditional, bonus up to 1 %."""
    data = load_preset("stuttgart")
    spec = parse_spec({**data["allocation"], "total_eur": 1_060_000})
    res = allocate(berlin, spec)
    tb = res.teilbudgets.set_index("id")["amount_eur"]
    assert tb["A"] == 1_000_000 and tb["B"] == 60_000
    p = data["settlement"]["payout"]
    pay = conditional_payout(
        1_060_000,
        instalments=p["instalments"],
        unconditional_pct=p["unconditional_pct"],
        conditions=p["conditions"],
        bonus_max_pct=p["bonus_max_pct"],
        met={"Einsatz ehrenamtlicher Kräfte": True, "Termingerechte Leistungsberichte": True,
             "Ordnungsgemäße Jahresendabrechnung": False},
        bonus_achieved=0.5,
    )
    assert pay.unconditional_eur == 1_007_000
    assert pay.schedule["amount_eur"].sum() == 1_007_000 and len(pay.schedule) == 12
    assert set(pay.schedule["amount_eur"]) == {83_917, 83_916}
    cond = pay.conditions.set_index("label")
    assert list(cond["amount_eur"]) == [10_600, 31_800, 10_600, 10_600]
    assert pay.withheld_eur == 10_600 and pay.bonus_eur == 5_300
    assert pay.paid_eur == 1_007_000 + 10_600 + 31_800 + 5_300


def test_hannover_worked_example():
    """Source 3.2: half of the remainder of B goes to the partners; indicator clause on overspend."""
    s = load_preset("hannover")["settlement"]
    assert s["surplus"]["teilbudget"] == "B"
    r = share_surplus(800_000, 760_000, s["surplus"]["provider_pct"])
    assert r.surplus_eur == 40_000 and r.provider_eur == 20_000 and r.public_eur == 20_000
    o = settle_overspend(800_000, 850_000, refinancing=s["overspend"]["refinancing"],
                         indicator_before=[20.0, 10.0, 8.0], indicator_after=[21.0, 10.5, 8.4])
    # indicators up 5 % -> budget +40,000 of the 50,000 overspend
    assert o.refinanced_eur == 40_000 and o.uncovered_eur == 10_000 and o.capped


def test_bremen_worked_example(berlin):
    """Source 3.3: administration-internal, non-steerable items excluded, no free providers."""
    data = load_preset("bremen")
    res = allocate(berlin, {**data["allocation"], "total_eur": 10_000_000})
    assert res.retained_eur == 2_000_000 and res.table["budget_eur"].sum() == 8_000_000
    r = share_surplus(8_000_000, 7_500_000, data["settlement"]["surplus"]["provider_pct"], carry_over=False)
    assert r.provider_eur == 0 and r.public_eur == 500_000 and r.carry_over_eur == 0
    o = settle_overspend(100, 120, refinancing="none")
    assert o.capped and o.uncovered_eur == 20 and "Deckel" in o.reason


def test_frankfurt_oder_worked_example():
    """Source 3.4: savings 25 % to the providers, 75 % stay with the city."""
    pct = load_preset("frankfurt_oder")["settlement"]["surplus"]["provider_pct"]
    r = share_surplus(1_000_000, 880_000, pct, next_budget_eur=1_000_000)
    assert (r.surplus_eur, r.provider_eur, r.public_eur) == (120_000, 30_000, 90_000)
    assert r.next_budget_eur == 1_030_000
    odd = share_surplus(1_000_001, 1_000_000, pct)
    assert odd.provider_eur + odd.public_eur == 1


def test_wiesbaden_worked_example(berlin):
    """Source 3.5: Verfügungsfonds of about 20,000 EUR in each of 8 regions."""
    f = load_preset("wiesbaden")["settlement"]["verfuegungsfonds"]
    res = verfuegungsfonds(mode=f["mode"], amount_eur=f["amount_eur"], areas=f["areas"], years=f["years"])
    assert res.total_eur == 160_000 and (res.per_area_eur == 20_000).all() and len(res.per_area_eur) == 8
    alloc = allocate(berlin, load_preset("wiesbaden")["allocation"])
    assert (alloc.table["budget_eur"] == 20_000).all()


def test_berlin_verfuegungsfonds_dm():
    """Source chapter 5, note 20: 15 Quartiere, DM 1,000,000 for 2001/2002."""
    res = verfuegungsfonds(mode="pot", amount_dm=1_000_000, areas=15, years=2)
    assert res.total_eur == 511_292  # 1,000,000 / 1.95583 = 511,291.88
    assert "1,95583" in res.notes[0].message
    assert len(res.table) == 30 and res.per_area_eur.max() - res.per_area_eur.min() <= 1
    q = verfuegungsfonds(mode="per_quarter", amount_eur=5_000, areas=["Nord", "Süd"], quarters=4)
    assert q.total_eur == 40_000 and len(q.table) == 8


def test_celle_worked_example(berlin):
    """Source 3.6: A about 80 % of the Sozialraumbudget, C stays with the public body, refund in year one."""
    data = load_preset("celle")
    res = allocate(berlin, {**data["allocation"], "total_eur": 1_000_000, "teilbudgets": [
        t for t in data["allocation"]["teilbudgets"] if t["id"] != "C"]})
    tb = res.teilbudgets.set_index("id")["amount_eur"]
    assert tb["A"] == 800_000 and tb["B"] == 200_000
    full = allocate(berlin, data["allocation"])
    c_share = next(t["share"] for t in data["allocation"]["teilbudgets"] if t["id"] == "C")
    assert c_share == 0.3 and full.retained_eur == round(c_share * data["allocation"]["total_eur"])  # C retained
    leavers = pd.DataFrame({"case": ["F-1", "F-2"], "monthly_cost_eur": [5_200, 4_100.5]})
    r = first_year_refund(leavers, 2_000_000, months=data["settlement"]["refund"]["months"])
    assert list(r.table["refund_eur"]) == [62_400, 49_206] and r.c_after_eur == 2_000_000 - 111_606
    short = first_year_refund(leavers, 100_000)
    assert short.refund_eur == 100_000 and short.notes


def test_siegen_worked_example():
    """Source 3.7: A's savings go to B, B never below its start value, 40 % of savings stay with the network."""
    s = load_preset("siegen")["settlement"]
    table = dynamic_coupling(1_000_000, [900_000, 1_050_000, 1_200_000], 500_000,
                             floor_at_start=s["coupling"]["floor_at_start"])
    assert list(table["b_after_eur"]) == [600_000, 550_000, 500_000]
    assert list(table["floor_binding"]) == [False, False, True]
    r = share_surplus(600_000, 500_000, s["surplus"]["provider_pct"])
    assert r.provider_eur == 40_000 and r.public_eur == 60_000
    no = settle_overspend(500_000, 560_000, refinancing="indicator", indicator_before=[10], indicator_after=[12],
                          not_if_principles_broken=True, principles_kept=False)
    assert no.refinanced_eur == 0 and no.capped
    yes = settle_overspend(500_000, 560_000, refinancing="indicator", indicator_before=[10], indicator_after=[12],
                           not_if_principles_broken=True, principles_kept=True)
    assert yes.refinanced_eur == 60_000 and not yes.capped
    split = provider_split(600_000, s["providers"]["model"], s["providers"]["members"])
    assert list(split["amount_eur"]) == [300_000, 180_000, 120_000]
    assert split.loc[0, "role"] == "Gewährleistungsträger"


def test_landkreis_tuebingen_worked_example():
    """Source 3.8: Fachleistungsstunden (hours × rate) plus lump sums."""
    f = pd.DataFrame({"key": ["R1", "R2", "R3", "R4"], "fachleistungsstunden": [1000, 2000, 1500, 500],
                      "pop_u21": [5000, 9000, 7000, 3000]})
    spec = {"total_eur": 5000 * 52.0, "components": [
        {"name": "fls", "type": "fachleistungsstunden", "rate_eur_per_hour": 52, "weight": 1}]}
    t = allocate(f, spec).table
    assert list(t["budget_eur"]) == [52_000, 104_000, 78_000, 26_000]
    data = load_preset("landkreis_tuebingen")["allocation"]
    f2 = f.assign(expected_cases=f["fachleistungsstunden"] / 120)
    res = allocate(f2, {**data, "total_eur": 1_000_000})
    tb = res.teilbudgets.set_index("id")["amount_eur"]
    assert tb["T1"] == 920_000 and tb["T2"] == 80_000
    assert list(res.table["eur_infrastruktur"]) == [23_000] * 4
    assert res.table["eur_gemeinwesen"].tolist() == [16_667, 30_000, 23_333, 10_000]


def test_kamp_lintfort_worked_example():
    """Source 3.9: spending of the two previous years plus a lump sum, split among the Trägerverbund."""
    total = base_total([950_000, 1_050_000], combine="mean", lump_sum_eur=60_000)
    assert total == 1_060_000
    m = load_preset("kamp_lintfort")["settlement"]["providers"]
    split = provider_split(total, m["model"], m["members"])
    assert list(split["amount_eur"]) == [583_000, 318_000, 159_000]
    assert split["basis"].tolist() == ["55 Fälle", "30 Fälle", "15 Fälle"]


def test_neunkirchen_worked_example():
    """Source 3.10: prior-year costs + case forecast + prevention; savings for prevention next year."""
    total = base_total([1_900_000, 2_000_000], combine="last", case_forecast_pct=5, lump_sum_eur=80_000)
    assert total == 2_180_000
    r = share_surplus(total, 2_100_000, 100, next_budget_eur=2_200_000)
    assert r.provider_eur == 80_000 and r.next_budget_eur == 2_280_000
    m = load_preset("neunkirchen")["settlement"]["providers"]
    split = provider_split(total, m["model"], m["members"])
    assert len(split) == 6 and split["amount_eur"].sum() == total
    assert split["amount_eur"].max() - split["amount_eur"].min() <= 1


def test_landkreis_nordfriesland_worked_example():
    """Source 3.11: B = mean cost of new cases in two years + provider's own cases; old cases move A -> B."""
    b = base_total([300_000, 340_000], combine="mean", lump_sum_eur=150_000)
    assert b == 470_000
    cases = pd.DataFrame({"case": ["X1", "X2", "X3"], "annual_cost_eur": [24_000, 31_000, 18_500],
                          "reviewed": [True, False, True]})
    a_after, b_after, moved = transfer_old_cases(900_000, b, cases)
    assert (a_after, b_after) == (857_500, 512_500) and list(moved["case"]) == ["X1", "X3"]
    with pytest.raises(GeoplanError):
        transfer_old_cases(10_000, b, cases)


def test_isa_worked_example():
    """ISA: indicator share ∝ residents under 21 × indicator, weighted; no prior-year costs."""
    data = load_preset("isa")["allocation"]
    assert all(c["type"] != "prior_year" for c in data["components"])
    f = pd.DataFrame({
        "key": ["a", "b"], "pop_u21": [1000, 1000],
        "kinderarmut": [10.0, 30.0], "alleinerziehende": [20.0, 20.0], "arbeitslosigkeit": [5.0, 15.0],
        "expected_cases": [20.0, 60.0],
    })
    res = allocate(f, {**data, "total_eur": 1_000_000})
    # sockel 300,000 equal; ISA 400,000: shares a = .5*.25 + .3*.5 + .2*.25 = .325; model 300,000 at 1:3
    assert res.table["eur_sockel"].tolist() == [150_000, 150_000]
    assert res.table["eur_sozialindikatoren"].tolist() == [130_000, 270_000]
    assert res.table["eur_bedarf"].tolist() == [75_000, 225_000]
    assert res.table["budget_eur"].tolist() == [355_000, 645_000]
