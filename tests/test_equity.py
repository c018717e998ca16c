"""Tests for geoplan.stages.equity: hand computations and equality with PySAL inequality."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from inequality.gini import Gini
from inequality.theil import Theil, TheilD

from geoplan.stages.equity import (
    EquityResult,
    concentration_curve,
    concentration_index,
    equity_measures,
    fractional_rank,
    gini,
    theil,
    theil_decomposition,
    years_to_close,
)
from geoplan.errors import GeoplanError


# --------------------------------------------------------------------------
# concentration index: worked example
# --------------------------------------------------------------------------
# Four areas, ranked by need A < B < C < D.
NEED = [-1.0, 0.0, 0.5, 2.0]
POP = [100, 200, 100, 100]  # residents under 21, W = 500
PER_U21 = [100.0, 150.0, 200.0, 300.0]  # EUR per resident under 21


def test_fractional_rank_hand():
    # R_i = (population before i + half of i) / W
    # A: (0 + 50)/500, B: (100 + 100)/500, C: (300 + 50)/500, D: (400 + 50)/500
    np.testing.assert_allclose(fractional_rank(NEED, POP), [0.1, 0.4, 0.7, 0.9])
    # unweighted: (i - 1/2)/n
    np.testing.assert_allclose(fractional_rank(NEED), [0.125, 0.375, 0.625, 0.875])


def test_fractional_rank_ties_use_block_midpoint_and_ignore_row_order():
    r = fractional_rank([1.0, 2.0, 2.0, 3.0], [1, 1, 2, 1])
    # tie block {B, C} spans population 1..4 of W = 5: midpoint 2.5 / 5
    np.testing.assert_allclose(r, [0.1, 0.5, 0.5, 0.9])
    r2 = fractional_rank([2.0, 3.0, 1.0, 2.0], [2, 1, 1, 1])
    np.testing.assert_allclose(r2, [0.5, 0.9, 0.1, 0.5])


def test_concentration_index_hand():
    # weighted mean mu = (100*100 + 200*150 + 100*200 + 100*300) / 500 = 90000/500 = 180
    # R = [0.1, 0.4, 0.7, 0.9], weighted mean of R = 250/500 = 0.5
    # sum w (y - mu)(R - 0.5):
    #   A 100 * (-80) * (-0.4) = 3200
    #   B 200 * (-30) * (-0.1) =  600
    #   C 100 * ( 20) * ( 0.2) =  400
    #   D 100 * (120) * ( 0.4) = 4800   -> 9000, cov = 9000/500 = 18
    # C = 2 * 18 / 180 = 0.2
    assert concentration_index(PER_U21, NEED, POP) == pytest.approx(0.2, abs=1e-12)


def test_concentration_index_unweighted_five_areas_hand():
    # n = 5, R = (i - 0.5)/5 = 0.1, 0.3, 0.5, 0.7, 0.9; need order: e, a, c, b, d
    need = [1.0, 3.0, 2.0, 4.0, 0.0]
    y = [20.0, 40.0, 30.0, 60.0, 50.0]
    # sorted by need: y = 50, 20, 30, 40, 60 with R = .1 .3 .5 .7 .9; mean y = 40
    # sum (y-40)(R-.5) = 10*(-.4) + (-20)(-.2) + (-10)(0) + 0*.2 + 20*.4 = -4 + 4 + 0 + 0 + 8 = 8
    # cov = 8/5 = 1.6, C = 2*1.6/40 = 0.08
    assert concentration_index(y, need) == pytest.approx(0.08, abs=1e-12)


def test_concentration_index_sign_and_equal_budget():
    assert concentration_index([10.0, 10, 10, 10], NEED, POP) == pytest.approx(0.0, abs=1e-15)
    assert concentration_index(PER_U21[::-1], NEED, POP) < 0  # money flows to low need


def test_concentration_curve_hand_and_area_identity():
    curve = concentration_curve(PER_U21, NEED, POP, keys=["A", "B", "C", "D"])
    assert list(curve["key"]) == [None, "A", "B", "C", "D"]
    # population 0.2, 0.6, 0.8, 1.0; budget 10000, 30000, 20000, 30000 of 90000
    np.testing.assert_allclose(curve["pop_share_cum"], [0, 0.2, 0.6, 0.8, 1.0])
    np.testing.assert_allclose(curve["budget_share_cum"], [0, 1 / 9, 4 / 9, 6 / 9, 1.0])
    # area by trapezoids: 0.2*(1/9)/2 + 0.4*(5/9)/2 + 0.2*(10/9)/2 + 0.2*(15/9)/2 = 0.4 -> C = 1 - 2*0.4
    area = np.trapezoid(curve["budget_share_cum"], curve["pop_share_cum"])
    assert area == pytest.approx(0.4, abs=1e-12)
    assert 1 - 2 * area == pytest.approx(concentration_index(PER_U21, NEED, POP), abs=1e-12)


def test_concentration_curve_does_not_depend_on_row_order():
    perm = [2, 0, 3, 1]
    a = concentration_curve(PER_U21, NEED, POP, keys=list("ABCD"))
    b = concentration_curve(
        [PER_U21[i] for i in perm], [NEED[i] for i in perm], [POP[i] for i in perm], keys=[list("ABCD")[i] for i in perm]
    )
    pd.testing.assert_frame_equal(a, b)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0.1, 1000), st.floats(-3, 3, allow_nan=False), st.integers(1, 500)
        ),
        min_size=2,
        max_size=30,
        unique_by=lambda t: t[1],
    )
)
def test_concentration_index_equals_one_minus_twice_curve_area(rows):
    y, r, w = map(np.array, zip(*rows))
    curve = concentration_curve(y, r, w)
    area = np.trapezoid(curve["budget_share_cum"], curve["pop_share_cum"])
    assert concentration_index(y, r, w) == pytest.approx(1 - 2 * area, abs=1e-9)


# --------------------------------------------------------------------------
# Gini and Theil against PySAL
# --------------------------------------------------------------------------
@pytest.fixture
def sample():
    rng = np.random.default_rng(20261124)
    y = rng.lognormal(6, 0.5, 60)
    y[7] = 0.0  # a Sozialraum without budget
    groups = rng.choice(["Mitte", "Pankow", "Neukölln", "Spandau"], 60)
    return y, groups


def test_gini_unweighted_equals_pysal(sample):
    y, _ = sample
    assert abs(gini(y) - Gini(y).g) < 1e-12
    assert abs(gini(y[::-1]) - Gini(y).g) < 1e-12


def test_theil_unweighted_equals_pysal(sample):
    y, _ = sample
    assert abs(theil(y) - float(Theil(y).T)) < 1e-12


def test_theil_decomposition_unweighted_equals_pysal(sample):
    y, groups = sample
    dec = theil_decomposition(y, groups)
    ref = TheilD(y, groups)
    assert abs(dec["total"] - float(ref.T)) < 1e-12
    assert abs(dec["between"] - float(np.ravel(ref.bg)[0])) < 1e-12
    assert abs(dec["within"] - float(np.ravel(ref.wg)[0])) < 1e-12
    assert dec["between"] + dec["within"] == pytest.approx(dec["total"], abs=1e-12)
    assert set(dec["groups"]["group"]) == set(groups)


def test_gini_weighted_hand():
    # x = 1, 2, 4 with weights 1, 2, 1: W = 4, mu = (1 + 4 + 4)/4 = 9/4
    # sum_ij w_i w_j |x_i - x_j| = 2*(1*2*1 + 1*1*3 + 2*1*2) = 18
    # G = 18 / (2 * 16 * 9/4) = 18/72 = 0.25
    assert gini([1, 2, 4], [1, 2, 1]) == pytest.approx(0.25, abs=1e-15)
    # equals the unweighted Gini of the data repeated by weight
    assert gini([1, 2, 4], [1, 2, 1]) == pytest.approx(Gini(np.array([1.0, 2, 2, 4])).g, abs=1e-12)


def test_theil_weighted_hand():
    # mu = 9/4; T = sum (w/W)(x/mu) ln(x/mu)
    expected = (
        0.25 * (4 / 9) * math.log(4 / 9)
        + 0.5 * (8 / 9) * math.log(8 / 9)
        + 0.25 * (16 / 9) * math.log(16 / 9)
    )
    assert theil([1, 2, 4], [1, 2, 1]) == pytest.approx(expected, abs=1e-15)


def test_theil_decomposition_weighted_hand():
    # groups a = {1 (w 1), 2 (w 2)}, b = {4 (w 1)}; W_a = 3, mu_a = 5/3; W_b = 1, mu_b = 4; mu = 9/4
    mu = 9 / 4
    between = 0.75 * (5 / 3 / mu) * math.log(5 / 3 / mu) + 0.25 * (4 / mu) * math.log(4 / mu)
    t_a = (1 / 3) * (3 / 5) * math.log(3 / 5) + (2 / 3) * (6 / 5) * math.log(6 / 5)
    within = 0.75 * (5 / 3 / mu) * t_a  # T_b = 0 (one area)
    dec = theil_decomposition([1, 2, 4], ["a", "a", "b"], [1, 2, 1])
    assert dec["between"] == pytest.approx(between, abs=1e-15)
    assert dec["within"] == pytest.approx(within, abs=1e-15)
    assert dec["total"] == pytest.approx(theil([1, 2, 4], [1, 2, 1]), abs=1e-15)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 2000), st.integers(1, 4), st.sampled_from("abc")), min_size=2, max_size=12)
)
def test_integer_weights_equal_replicated_pysal(rows):
    x, w, g = zip(*rows)
    x = np.array(x, dtype=float)
    if x.sum() == 0:
        return
    w = np.array(w)
    rep = np.repeat(x, w)
    grep = np.repeat(np.array(g), w)
    assert gini(x, w) == pytest.approx(Gini(rep).g, abs=1e-10)
    assert theil(x, w) == pytest.approx(float(Theil(rep).T), abs=1e-10)
    dec = theil_decomposition(x, g, w)
    ref = TheilD(rep, grep)
    assert dec["between"] == pytest.approx(float(np.ravel(ref.bg)[0]), abs=1e-10)
    assert dec["within"] == pytest.approx(float(np.ravel(ref.wg)[0]), abs=1e-10)


def test_bad_inputs_raise_german_errors():
    with pytest.raises(GeoplanError, match="Werte ≥ 0"):
        gini([1.0, -2.0])
    with pytest.raises(GeoplanError, match="ungültiger Wert"):
        theil([1.0, float("nan")])
    with pytest.raises(GeoplanError, match="Länge"):
        gini([1.0, 2.0], [1.0])
    with pytest.raises(GeoplanError, match="Länge"):
        concentration_index([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(GeoplanError, match="Gruppe"):
        theil_decomposition([1.0, 2.0], ["a", None])


# --------------------------------------------------------------------------
# corridor
# --------------------------------------------------------------------------
def test_years_to_close():
    # 100,000 -> 121,000 at +10 %/year: 1.1^2 = 1.21 exactly two years (no float off-by-one)
    assert years_to_close(100_000, 121_000, 10) == 2
    # 100,000 -> 80,000 at -10 %/year: 0.9^2 = 0.81 > 0.8, 0.9^3 = 0.729 <= 0.8 -> 3 years
    assert years_to_close(100_000, 80_000, 10) == 3
    assert years_to_close(100_000, 100_000, 5) == 0
    assert years_to_close(100_000, 100_000.4, 5) == 0
    assert years_to_close(100_000, 100_001, 5) == 1
    assert math.isinf(years_to_close(0, 5_000, 5))
    assert math.isinf(years_to_close(5_000, 0, 5))
    assert math.isinf(years_to_close(5_000, 6_000, 0))
    with pytest.raises(GeoplanError):
        years_to_close(-1, 5, 5)


# --------------------------------------------------------------------------
# equity_measures on a Sozialraum frame
# --------------------------------------------------------------------------
@pytest.fixture
def frame():
    return pd.DataFrame(
        {
            "key": ["0101", "0102", "0201", "0202", "0203"],
            "name": ["Nord", "Süd", "Ost", "West", "Mitte"],
            "bezirk": ["01", "01", "02", "02", "02"],
            "pop_u21": [1000, 2000, 500, 1500, 0],
            "need_index": [1.5, -0.5, 0.8, -1.0, 0.0],
            "expected_cases": [40.0, 30.0, 15.0, 15.0, 0.0],
            "budget_eur": [400_000, 360_000, 150_000, 190_000, 0],
            "hze_cost_prev_eur": [330_000, 400_000, 150_000, 220_000, 0],
            "hze_cases": [38, 31, 2, 16, 0],
        }
    )


def test_equity_measures_per_area(frame):
    res = equity_measures(frame, corridor_pct=10)
    assert isinstance(res, EquityResult)
    pa = res.per_area.set_index("key")
    assert pa.loc["0101", "budget_per_u21"] == 400.0  # 400,000 EUR / 1,000
    assert pa.loc["0201", "expected_per_1000"] == 30.0  # 15 / 500 * 1000
    assert pa.loc["0101", "budget_share"] == pytest.approx(400_000 / 1_100_000)
    assert pa.loc["0101", "need_share"] == pytest.approx(0.4)
    assert pa.loc["0101", "ratio"] == pytest.approx((400_000 / 1_100_000) / 0.4)
    assert pa.loc["0101", "change_eur"] == 70_000
    assert pa.loc["0102", "change_pct"] == pytest.approx(-10.0)
    assert list(pa["direction"]) == ["Gewinn", "Verlust", "unverändert", "Verlust", "unverändert"]
    # target = budget here (no corridor column): every area is at its target in year 1
    assert pa.loc["0101", "distance_to_target_eur"] == 70_000
    assert (pa["years_to_target"] == 1).all()
    assert res.summary["n_at_target_year1"] == 5 and res.summary["years_until_all_at_target"] == 1
    assert np.isnan(pa.loc["0203", "budget_per_u21"])
    assert pa.loc["0201", "observed_expected_ratio"] == pytest.approx(2 / 15)


def test_equity_measures_summary(frame):
    res = equity_measures(frame, corridor_pct=10)
    s = res.summary
    assert s["n_winners"] == 1 and s["n_losers"] == 2 and s["n_unchanged"] == 2
    assert s["total_change_eur"] == 1_100_000 - 1_100_000
    assert s["sum_abs_distance_to_target_eur"] == 70_000 + 40_000 + 30_000
    # area 0203 has no residents under 21: left out of per-person measures, with a note
    y = np.array([400.0, 180.0, 300.0, 190_000 / 1500])
    w = np.array([1000, 2000, 500, 1500])
    r = np.array([1.5, -0.5, 0.8, -1.0])
    assert s["concentration_index"] == pytest.approx(concentration_index(y, r, w), abs=1e-15)
    assert s["concentration_index"] > 0
    assert s["gini_budget_per_u21"] == pytest.approx(gini(y, w), abs=1e-15)
    assert s["gini_budget_per_u21_areas"] == pytest.approx(Gini(y).g, abs=1e-12)
    assert s["theil_areas"] == pytest.approx(float(Theil(y).T), abs=1e-12)
    assert s["theil_between"] + s["theil_within"] == pytest.approx(s["theil"], abs=1e-12)
    ref = TheilD(y, np.array(["01", "01", "02", "02"]))
    assert s["theil_between_areas"] == pytest.approx(float(np.ravel(ref.bg)[0]), abs=1e-12)
    assert s["corr_budget_per_u21_need"] == pytest.approx(np.corrcoef(y, r)[0, 1])
    assert any("ohne Einwohner unter 21" in n.message for n in res.notes)
    assert list(res.curve.columns) == ["key", "rank_by", "pop_share_cum", "budget_share_cum", "need_share_cum"]
    assert list(res.curve["key"]) == [None, "0202", "0102", "0201", "0101"]
    assert res.curve["need_share_cum"].iloc[-1] == pytest.approx(1.0)
    assert s["observed_expected_total"] == pytest.approx(87 / 100)
    import json

    assert json.loads(json.dumps(s)) == s  # plain numbers for manifest.json


def test_equity_measures_target_from_corridor_column(frame):
    f = frame.assign(eur_korridor=[-20_000, 0, 0, 0, 0])
    res = equity_measures(f, corridor_pct=5)
    pa = res.per_area.set_index("key")
    assert pa.loc["0101", "target_eur"] == 420_000
    assert pa.loc["0101", "distance_to_target_eur"] == 90_000


def _corridor_case(total=1_000_000, corridor=None):
    from geoplan.stages.allocate import allocate

    fr = pd.DataFrame({
        "key": ["a", "b", "c", "d", "e"], "name": ["A", "B", "C", "D", "E"],
        "pop_u21": [1000, 1000, 1000, 4000, 3000],
        "need_index": [0.1, -0.2, 0.3, 1.0, -1.0], "expected_cases": [10.0, 10, 10, 40, 30],
        "hze_cost_prev_eur": [300_000, 250_000, 150_000, 200_000, 100_000],
        "start_eur": [0, 0, 0, 0, 0],
    })
    spec = {"total_eur": total, "components": [{"name": "bev", "type": "population", "weight": 1}],
            "corridor": corridor or {"max_change_pct": 10}}
    alloc = allocate(fr, spec)
    t = fr.merge(alloc.table.drop(columns="name"), on="key")
    return t, alloc


def test_convergence_path_applies_the_real_solver_year_after_year():
    t, alloc = _corridor_case()
    res = equity_measures(t, corridor=alloc.spec.corridor, tolerance_pct=1.0)
    conv = res.convergence
    # year 1 is this run's allocation; every later year is the solver with the previous year as reference
    assert (conv.path["jahr_1"].to_numpy() == t["budget_eur"].to_numpy()).all()
    for y in range(2, conv.path.shape[1]):
        prev, cur = conv.path[f"jahr_{y - 1}"].to_numpy(), conv.path[f"jahr_{y}"].to_numpy()
        assert cur.sum() == 1_000_000
        assert (cur >= np.ceil(prev * 0.9) - 1).all() and (cur <= np.floor(prev * 1.1) + 1).all()
    # counts recomputed from the table: within 1 % of the target (formula before the corridor)
    target = (t["budget_eur"] - t["eur_korridor"]).to_numpy()
    y1 = int((np.abs(t["budget_eur"] - target) <= 0.01 * target + 0.5).sum())
    assert res.summary["n_at_target_year1"] == y1 < 5
    last = conv.path.iloc[:, -1].to_numpy()
    assert (np.abs(last - target) <= 0.01 * target + 0.5).all()
    assert res.summary["years_until_all_at_target"] == conv.path.shape[1] - 1 > 1
    assert res.summary["n_never_at_target"] == 0
    assert conv.within["n_within"].is_monotonic_increasing


def test_convergence_path_names_areas_that_never_get_there():
    # a floor above the formula target holds area a away from its target for ever (the others get within 1 %)
    t, alloc = _corridor_case(corridor={"max_change_pct": 10, "floor_column": "start_eur"})
    t = t.assign(start_eur=[105_000, 0, 0, 0, 0])  # target of a: 100,000
    from geoplan.stages.allocate import Corridor

    res = equity_measures(t, corridor=Corridor(max_change_pct=10, floor_column="start_eur"))
    assert res.summary["never_at_target"] == ["a"] and res.summary["years_until_all_at_target"] is None
    assert res.summary["never_at_target_names"] == ["A"]
    assert any("nie" in n.message and "A" in (n.location or "") for n in res.notes)


def test_equity_measures_does_not_modify_input_and_is_deterministic(frame):
    before = frame.copy()
    a = equity_measures(frame)
    b = equity_measures(frame)
    pd.testing.assert_frame_equal(frame, before)
    pd.testing.assert_frame_equal(a.per_area, b.per_area)
    assert a.summary == b.summary


def test_equity_measures_errors(frame):
    with pytest.raises(GeoplanError, match="budget_eur") as exc:
        equity_measures(frame.drop(columns="budget_eur"))
    assert exc.value.hint
    bad = frame.copy()
    bad.loc[1, "pop_u21"] = -5
    with pytest.raises(GeoplanError, match="Negativer Wert") as exc:
        equity_measures(bad)
    assert "0102" in exc.value.location


def test_equity_measures_without_prior_or_group(frame):
    res = equity_measures(frame.drop(columns=["hze_cost_prev_eur", "bezirk"]))
    assert res.summary["n_winners"] is None and res.summary["theil_between"] is None
    assert res.per_area["change_eur"].isna().all()
    assert any("Vorjahreskosten" in n.message for n in res.notes)


# --------------------------------------------------------------------------
# the shipped Berlin data (542 Planungsräume, 12 Bezirke)
# --------------------------------------------------------------------------
BERLIN = __import__("pathlib").Path(__file__).resolve().parents[1] / "indicators" / "berlin"


@pytest.fixture(scope="module")
def berlin():
    ew = pd.read_csv(BERLIN / "einwohner_plr_2022-06.csv", sep=";", dtype=str, encoding="utf-8-sig")
    ages = ["unter6", "6-15", "15-18", "18-27"]
    num = ew[ages].replace("–", "0").astype(int)  # "–": Planungsraum without residents
    # under 21: all under 18 plus three of the nine years 18-26 (an approximation for the test)
    pop_u21 = num["unter6"] + num["6-15"] + num["15-18"] + (num["18-27"] * 3 / 9).round().astype(int)
    ind = pd.read_csv(BERLIN / "mss_2021_index_indikatoren.csv", dtype={"PLR_ID": str, "BEZ_ID": str})
    frame = pd.DataFrame({"key": ew["PLR-ID"], "pop_u21": pop_u21}).merge(
        ind[["PLR_ID", "BEZ_ID", "S4"]], left_on="key", right_on="PLR_ID", how="left"
    )
    # S4: child poverty (transfer benefits under 15, %); -9999 marks a missing value
    s4 = frame["S4"].where(frame["S4"] > -9999)
    s4 = s4.fillna(s4.mean())
    frame["need_index"] = (s4 - s4.mean()) / s4.std(ddof=0)
    frame["bezirk"] = frame["key"].str[:2]
    rng = np.random.default_rng(7)
    frame["expected_cases"] = frame["pop_u21"] * 0.02 * np.exp(0.4 * frame["need_index"])
    frame["budget_eur"] = (frame["expected_cases"] * 25_000).round().astype(int)
    frame["hze_cost_prev_eur"] = (frame["budget_eur"] * rng.uniform(0.85, 1.15, len(frame))).round().astype(int)
    return frame.drop(columns=["PLR_ID", "BEZ_ID", "S4"])


def test_berlin_measures_equal_pysal_and_add_up(berlin):
    res = equity_measures(berlin, corridor_pct=5)
    s = res.summary
    has_pop = berlin["pop_u21"] > 0
    assert (~has_pop).sum() >= 2 and any("ohne Einwohner" in n.message for n in res.notes)
    y = (berlin["budget_eur"] / berlin["pop_u21"])[has_pop].to_numpy()
    assert abs(s["gini_budget_per_u21_areas"] - Gini(y).g) < 1e-12
    assert abs(s["theil_areas"] - float(Theil(y).T)) < 1e-12
    ref = TheilD(y, berlin["bezirk"][has_pop].to_numpy())
    assert abs(s["theil_between_areas"] - float(np.ravel(ref.bg)[0])) < 1e-12
    assert abs(s["theil_within_areas"] - float(np.ravel(ref.wg)[0])) < 1e-12
    assert s["theil_between"] + s["theil_within"] == pytest.approx(s["theil"], abs=1e-12)
    assert len(res.theil_groups) == 12
    # budget follows need by construction: positive concentration and correlation
    assert s["concentration_index"] > 0.05 and s["corr_budget_per_u21_need"] > 0.9
    assert s["n_winners"] + s["n_losers"] + s["n_unchanged"] == len(berlin)
    assert s["sum_abs_distance_to_target_eur"] == pytest.approx(
        (berlin["budget_eur"] - berlin["hze_cost_prev_eur"]).abs().sum()
    )
    assert s["n_at_target_year1"] == len(berlin)  # no corridor column: budget = target
    assert res.curve["pop_share_cum"].is_monotonic_increasing
