"""Scenario comparison, Monte Carlo sensitivity and the waterfall explanation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geoplan.stages.allocate import allocate, parse_spec
from geoplan.errors import GeoplanError
from geoplan.stages.sensitivity import compare_allocations, explain, explain_extremes, weight_sensitivity


def frame(n=12, seed=3):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "key": [f"S{i:02d}" for i in range(n)],
            "name": [f"Raum {i}" for i in range(n)],
            "pop_u21": rng.integers(500, 8000, n),
            "kinderarmut": rng.uniform(2, 60, n),
            "expected_cases": rng.uniform(5, 120, n),
            "hze_cost_prev_eur": rng.integers(100_000, 2_000_000, n),
        }
    )


SPEC = {
    "total_eur": 10_000_000,
    "components": [
        {"name": "bev", "label": "Einwohner unter 21", "type": "population", "weight": 0.3},
        {"name": "isa", "label": "Kinderarmut", "type": "indicator", "indicators": {"kinderarmut": 1}, "base": "pop_u21", "weight": 0.3},
        {"name": "modell", "label": "Erwartete Fälle", "type": "model", "weight": 0.4},
    ],
}
PRIOR = {"total_eur": 10_000_000, "components": [{"name": "vorjahr", "type": "prior_year", "weight": 1}]}


def test_compare_two_scenarios():
    f = frame()
    a, b = allocate(f, PRIOR), allocate(f, SPEC)
    out = compare_allocations({"vorjahr": a, "isa": b})
    assert {"key", "name", "vorjahr", "isa", "diff_isa", "diff_isa_pct", "rank_isa", "ergebnis"} <= set(out.columns)
    assert out["diff_isa"].sum() == 0  # same total, money only moves
    assert (out["diff_isa"] == out["isa"] - out["vorjahr"]).all()
    assert list(out["diff_isa"]) == sorted(out["diff_isa"], reverse=True)
    winners = out[out["ergebnis"] == "Gewinner"]
    assert (winners["diff_isa"] > 0).all() and len(winners) > 0
    assert (out.loc[out["ergebnis"] == "Verlierer", "diff_isa"] < 0).all()
    assert (out["spanne_eur"] == out["diff_isa"].abs()).all()
    named = compare_allocations({"x": a, "y": b}, names=["Vorjahr", "Indikatoren"])
    assert "diff_Indikatoren" in named.columns


def test_compare_rejects_different_areas_and_single():
    a = allocate(frame(5), PRIOR)
    b = allocate(frame(6), PRIOR)
    with pytest.raises(GeoplanError, match="verschiedene Sozialräume"):
        compare_allocations({"a": a, "b": b})
    with pytest.raises(GeoplanError):
        compare_allocations({"a": a})


def test_compare_cents_converted():
    f = frame(4)
    a = allocate(f, PRIOR)
    c = allocate(f, {**PRIOR, "unit": "cent"})
    out = compare_allocations({"euro": a, "cent": c})
    assert out["diff_cent"].abs().max() < 1


def naive_draws(f, spec, weights: pd.DataFrame, model_values=None):
    """Straightforward reference: one allocate() call per draw."""
    spec = parse_spec(spec)
    out = []
    for d, row in enumerate(weights.itertuples(index=False)):
        comps = [c.model_copy(update={"weight": float(w)}) for c, w in zip(spec.components, row)]
        s = spec.model_copy(update={"components": comps})
        g = f if model_values is None else f.assign(expected_cases=model_values[d])
        out.append(allocate(g, s).table["budget_eur"].to_numpy())
    return np.array(out)


def test_sensitivity_matches_per_draw_allocate():
    f = frame()
    res = weight_sensitivity(f, SPEC, n_draws=200, concentration=50, seed=7)
    assert np.allclose(res.weights.sum(axis=1), 1.0)
    ref = naive_draws(f, SPEC, res.weights)
    k = [int(np.ceil(p * 200)) - 1 for p in (0.05, 0.5, 0.95)]
    srt = np.sort(ref, axis=0)
    t = res.table
    # continuous formula vs whole euros: at most one euro per component apart
    assert np.all(np.abs(t["p05_eur"] - srt[k[0]]) <= 3)
    assert np.all(np.abs(t["p50_eur"] - srt[k[1]]) <= 3)
    assert np.all(np.abs(t["p95_eur"] - srt[k[2]]) <= 3)
    assert (t["p05_eur"] <= t["p50_eur"]).all() and (t["p50_eur"] <= t["p95_eur"]).all()
    ranks = (-ref).argsort(axis=1, kind="stable").argsort(axis=1) + 1
    same = (ranks == t["rank"].to_numpy()[None, :]).mean(axis=0)
    assert np.allclose(t["rank_same_share"], same, atol=0.02)
    # rank quantiles are the order statistics of the ranks over the draws (whole euros may swap near-ties)
    rsrt = np.sort(ranks, axis=0)
    for col, kk in (("rank_p05", k[0]), ("rank_p95", k[2])):
        off = np.abs(t[col].to_numpy() - rsrt[kk])
        assert off.max() <= 2 and (off == 0).mean() > 0.9, (col, off)
    assert (t["rank_p05"] <= t["rank_p95"]).all()


def test_sensitivity_concentration_and_seed():
    f = frame()
    tight = weight_sensitivity(f, SPEC, n_draws=300, concentration=1e12, seed=1).table
    wide = weight_sensitivity(f, SPEC, n_draws=300, concentration=5, seed=1).table
    assert (tight["range_pct"] < 0.5).all() and (wide["range_pct"] > tight["range_pct"]).all()
    assert (tight["rank_same_share"] > 0.99).all()
    assert np.all(np.abs(tight["p50_eur"] - tight["budget_eur"]) <= 3)
    again = weight_sensitivity(f, SPEC, n_draws=300, concentration=5, seed=1).table
    pd.testing.assert_frame_equal(wide, again)
    threads = weight_sensitivity(f, SPEC, n_draws=300, concentration=5, seed=1, n_jobs=1, chunk=7).table
    pd.testing.assert_frame_equal(wide, threads)


def test_sensitivity_with_model_draws():
    f = frame()
    rng = np.random.default_rng(5)
    draws = f["expected_cases"].to_numpy()[None, :] * rng.lognormal(0, 0.2, size=(100, len(f)))
    res = weight_sensitivity(f, SPEC, n_draws=100, concentration=1e9, seed=2, coef_draws=draws)
    ref = naive_draws(f, SPEC, res.weights, model_values=draws)
    srt = np.sort(ref, axis=0)
    assert np.all(np.abs(res.table["p50_eur"] - srt[49]) <= 3)
    with pytest.raises(GeoplanError, match="Form"):
        weight_sensitivity(f, SPEC, n_draws=10, coef_draws=draws[:, :3])
    with pytest.raises(GeoplanError, match="Modellkomponente"):
        weight_sensitivity(f, PRIOR, n_draws=10, coef_draws=draws)


def test_sensitivity_with_teilbudgets_keeps_split():
    f = frame()
    spec = {**SPEC, "teilbudgets": [
        {"id": "A", "remainder": True},
        {"id": "B", "percent_of": "A", "percent": 6, "components": [{"name": "sockel", "type": "fixed", "weight": 1}]},
        {"id": "C", "share": 0.2, "distributed": False},
    ]}
    res = weight_sensitivity(f, spec, n_draws=50, seed=0)
    w = res.weights
    assert np.allclose(w["B:sockel"], 0.06 / 1.06)
    assert np.allclose(w.sum(axis=1), 1.0)
    assert abs(res.table["p50_eur"].sum() - 8_000_000) < 8_000_000 * 0.01


def test_explain_waterfall():
    f = frame()
    spec = {**SPEC, "corridor": {"reference_column": "hze_cost_prev_eur", "floor_eur": 400_000}}
    res = allocate(f, spec)
    key = res.table.loc[res.table["eur_korridor"] != 0, "key"].iloc[0]
    w = explain(res, key)
    assert list(w["position"]) == ["bev", "isa", "modell", "korridor", "budget"]
    assert w.loc[w.position != "budget", "amount_eur"].sum() == w.iloc[-1]["amount_eur"]
    assert w.iloc[-2]["end_eur"] == w.iloc[-1]["end_eur"]
    assert w.iloc[0]["label"] == "Einwohner unter 21"
    with pytest.raises(GeoplanError, match="nicht in der Verteilung"):
        explain(res, "nope")
    ext = explain_extremes(res, n=2)
    by_budget = res.table.sort_values(["budget_eur", "key"], ascending=[False, True])["key"].tolist()
    assert list(ext) == by_budget[:2] + by_budget[-2:]
    for k, table in ext.items():
        assert table.equals(explain(res, k))


def test_waterfall_grid_draws_one_bar_per_position(monkeypatch):
    from geoplan.report import figures

    monkeypatch.setattr(figures, "png_bytes", lambda fig: fig)
    res = allocate(frame(), {**SPEC, "corridor": {"reference_column": "hze_cost_prev_eur", "floor_eur": 400_000}})
    tables = [(k, t.assign(short=t["position"])) for k, t in explain_extremes(res, n=1).items()]
    fig = figures.waterfall_grid(tables)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [len(ax.patches) for ax in visible] == [len(t) for _, t in tables]
    assert [ax.get_title() for ax in visible] == [k for k, _ in tables]
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_sensitivity_applies_corridor_in_every_draw():
    f = frame()
    prev = f["hze_cost_prev_eur"].to_numpy()
    spec = {**SPEC, "total_eur": int(prev.sum()), "corridor": {"max_change_pct": 20}}
    res = weight_sensitivity(f, spec, n_draws=150, concentration=5, seed=4)
    t = res.table
    assert (t["p05_eur"] >= np.ceil(prev * 0.8) - 1).all()
    assert (t["p95_eur"] <= np.floor(prev * 1.2) + 1).all()
    assert (t["budget_eur"] == allocate(f, spec).table["budget_eur"]).all()
    ref = naive_draws(f, spec, res.weights)
    assert (ref.sum(axis=1) == int(prev.sum())).all()
    srt = np.sort(ref, axis=0)
    assert np.all(np.abs(t["p50_eur"] - srt[74]) <= 4)
    assert np.all(np.abs(t["p95_eur"] - srt[142]) <= 4)


# --------------------------------------------------------------------------
# corridor factor (issue 15): Newton gives the root the bisection approaches
# --------------------------------------------------------------------------
def _bisection_factor(b, lo, hi, D):
    """The earlier implementation: vectorised bisection on g(λ) = Σ clip(λ·b, lo, hi)."""
    k = b.shape[0]
    low, up = np.zeros(k), np.ones(k)

    def g(lam):
        return np.clip(lam[:, None] * b, lo[None, :], hi[None, :]).sum(axis=1)

    for _ in range(200):
        short = g(up) < D
        if not short.any():
            break
        up[short] *= 2.0
    for _ in range(60):
        mid = 0.5 * (low + up)
        below = g(mid) < D
        low = np.where(below, mid, low)
        up = np.where(below, up, mid)
    return up


@pytest.mark.parametrize("case", ["pct", "floor_only", "cap_only", "tight", "zeros"])
def test_corridor_factor_newton_equals_bisection(case):
    from geoplan.stages.sensitivity import _corridor_factor

    rng = np.random.default_rng(11)
    n, k = 400, 60
    prev = rng.integers(50_000, 3_000_000, n).astype(float)
    D = float(prev.sum())
    lo, hi = np.ceil(prev * 0.9), np.floor(prev * 1.1)
    if case == "floor_only":
        hi = np.full(n, np.inf)
    elif case == "cap_only":
        lo = np.zeros(n)
    elif case == "tight":  # nearly every area bound
        lo, hi = np.ceil(prev * 0.999), np.floor(prev * 1.001)
    w = rng.dirichlet(np.ones(n) * 2, size=k)
    b = (D * (0.5 * w + 0.5 * prev / D)).astype(np.float32)
    if case == "zeros":
        b[:, :20] = 0
    lam = _corridor_factor(b, lo, hi, D)
    ref = _bisection_factor(b, lo, hi, D)
    # equal to float64 precision of g: where few areas are free, the slope of g
    # is small and both methods only pin λ to ~1e-13 (the budgets still agree)
    np.testing.assert_allclose(lam, ref, rtol=1e-15 if case == "pct" else 1e-12)
    # the budgets, as used (float32), are the same
    a = np.clip(lam[:, None] * b, lo, hi).astype(np.float32)
    r = np.clip(ref[:, None] * b, lo, hi).astype(np.float32)
    assert np.abs(a.astype(float) - r).max() <= 1.0  # at most one float32 step (0.25 € at 3 M€)
    np.testing.assert_allclose(a.sum(axis=1, dtype=float), D, rtol=1e-6)


def test_sensitivity_with_corridor_unchanged_by_newton(monkeypatch):
    import geoplan.stages.sensitivity as sens

    f = frame(300, seed=5)
    prev = f["hze_cost_prev_eur"].to_numpy()
    spec = {**SPEC, "total_eur": int(prev.sum()), "corridor": {"max_change_pct": 10}}
    new = weight_sensitivity(f, spec, n_draws=400, concentration=20, seed=2)
    monkeypatch.setattr(sens, "_corridor_factor", _bisection_factor)
    old = weight_sensitivity(f, spec, n_draws=400, concentration=20, seed=2)
    pd.testing.assert_frame_equal(new.table, old.table)
