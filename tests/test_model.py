"""Tests of the HzE demand model (geoplan.stages.model) on synthetic Sozialräume with known truth."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from sklearn.model_selection import GroupKFold, cross_val_predict, cross_val_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from geoplan.errors import GeoplanError
from geoplan.stages.model import HzEDemandModel, fit_need_model, funnel_table, poisson_limits
from geoplan.synthetic import make_sozialraeume

PRED = ["arbeitslosigkeit", "kinderarmut", "alleinerziehende"]


def _glm_reference(model, frame, family):
    Z = (frame[PRED].to_numpy(float) - frame[PRED].to_numpy(float).mean(0)) / frame[PRED].to_numpy(float).std(0)
    return sm.GLM(frame["hze_cases"], sm.add_constant(Z), family=family, offset=np.log(frame["pop_u21"])).fit()


def test_poisson_coefficients_and_se_equal_statsmodels_glm():
    frame, _ = make_sozialraeume(150, seed=3)
    m = HzEDemandModel(family="poisson").fit(frame[PRED], frame["hze_cases"], exposure=frame["pop_u21"])
    ref = _glm_reference(m, frame, sm.families.Poisson())
    np.testing.assert_allclose(np.r_[m.intercept_, m.coef_], ref.params, atol=1e-6)
    np.testing.assert_allclose(m.bse_.to_numpy(), ref.bse, atol=1e-6)
    np.testing.assert_allclose(m.conf_int_.to_numpy(), np.asarray(ref.conf_int()), atol=1e-6)
    sf = m.summary_frame()
    np.testing.assert_allclose(sf["irr"], np.exp(ref.params), rtol=1e-6)
    assert list(sf.columns) == ["term", "coef", "se", "z", "p_value", "ci_low", "ci_high", "irr", "irr_low", "irr_high"]


def test_negbin_coefficients_and_se_equal_statsmodels_glm_at_alpha():
    frame, _ = make_sozialraeume(200, alpha=0.15, seed=4)
    m = HzEDemandModel(family="negbin").fit(frame[PRED], frame["hze_cases"], exposure=frame["pop_u21"])
    ref = _glm_reference(m, frame, sm.families.NegativeBinomial(alpha=m.alpha_))
    np.testing.assert_allclose(np.r_[m.intercept_, m.coef_], ref.params, atol=1e-6)
    np.testing.assert_allclose(m.bse_.to_numpy(), ref.bse, atol=1e-6)
    # alpha is the NB2 maximum-likelihood estimate: the discrete NB2 model gives the same coefficients.
    X = sm.add_constant((frame[PRED] - frame[PRED].mean()) / frame[PRED].std(ddof=0))
    nb2 = sm.NegativeBinomial(frame["hze_cases"], X, offset=np.log(frame["pop_u21"])).fit(disp=0)
    np.testing.assert_allclose(m.alpha_, nb2.params.iloc[-1], rtol=1e-4)
    np.testing.assert_allclose(np.r_[m.intercept_, m.coef_], nb2.params.iloc[:-1], atol=1e-5)


@pytest.mark.parametrize("family", ["poisson", "negbin"])
def test_predictions_identical_between_sklearn_and_statsmodels(family):
    frame, _ = make_sozialraeume(120, alpha=0.1, seed=5)
    m = HzEDemandModel(family=family).fit(frame[PRED], frame["hze_cases"], exposure=frame["pop_u21"])
    sm_pred = m.sm_result_.predict(m.design_matrix(frame[PRED]), offset=np.log(frame["pop_u21"].to_numpy(float)))
    np.testing.assert_allclose(m.predict(frame[PRED], exposure=frame["pop_u21"]), sm_pred, rtol=1e-12)
    np.testing.assert_allclose(m.predict(frame[PRED], exposure=frame["pop_u21"]), m.sm_result_.fittedvalues, rtol=1e-10)
    # without exposure: rate per person under 21
    np.testing.assert_allclose(m.predict(frame[PRED]) * frame["pop_u21"], sm_pred, rtol=1e-12)
    # raw-scale coefficients reproduce the same linear predictor
    eta_raw = m.intercept_raw_ + frame[PRED].to_numpy(float) @ m.coef_raw_
    np.testing.assert_allclose(np.exp(eta_raw) * frame["pop_u21"], sm_pred, rtol=1e-10)


def test_coverage_of_true_coefficients_in_100_replications():
    hits = np.zeros(len(PRED) + 1, dtype=int)
    for seed in range(100):
        frame, truth = make_sozialraeume(80, alpha=0.0, seed=1000 + seed)
        m = HzEDemandModel(family="poisson", standardize=False).fit(
            frame[PRED], frame["hze_cases"], exposure=frame["pop_u21"]
        )
        true = np.r_[truth["intercept"], [truth["coef"][c] for c in PRED]]
        ci = m.conf_int_.to_numpy()
        hits += (ci[:, 0] <= true) & (true <= ci[:, 1])
    assert (hits >= 90).all(), hits


def test_coverage_negbin_in_100_replications():
    hits = np.zeros(len(PRED), dtype=int)
    for seed in range(100):
        frame, truth = make_sozialraeume(100, alpha=0.1, seed=2000 + seed)
        m = HzEDemandModel(family="negbin").fit(frame[PRED], frame["hze_cases"], exposure=frame["pop_u21"])
        true = np.array([truth["coef"][c] for c in PRED]) * m.scaler_scale_  # per SD of the sample
        ci = m.conf_int_.to_numpy()[1:]
        hits += (ci[:, 0] <= true) & (true <= ci[:, 1])
    assert (hits >= 90).all(), hits


def test_auto_family_switches_to_negbin_when_overdispersed_and_keeps_poisson_otherwise():
    over, _ = make_sozialraeume(200, alpha=0.2, seed=6)
    m = HzEDemandModel().fit(over[PRED], over["hze_cases"], exposure=over["pop_u21"])
    assert m.family_ == "negbin"
    assert m.overdispersion_test_["p_value"] < 0.05
    assert "Überdispersion" in m.family_reason_
    assert 0.1 < m.alpha_ < 0.4
    pois, _ = make_sozialraeume(200, alpha=0.0, seed=7)
    m2 = HzEDemandModel().fit(pois[PRED], pois["hze_cases"], exposure=pois["pop_u21"])
    assert m2.family_ == "poisson"
    assert m2.alpha_ == 0.0
    assert 0.7 < m2.dispersion_ < 1.4


def test_forced_poisson_with_overdispersion_warns_in_notes():
    frame, truth = make_sozialraeume(150, alpha=0.2, seed=8)
    res = fit_need_model(frame, predictors=PRED, family="poisson", n_boot=100, cv_folds=3)
    assert res.fit["family"] == "poisson"
    assert any("Überdispersion" in n.message and n.level == "warnung" for n in res.notes)
    res2 = fit_need_model(frame, predictors=PRED, family="auto", n_boot=100, cv_folds=3)
    assert res2.fit["family"] == "negbin"
    assert any("NB2" in n.message for n in res2.notes)


def test_sklearn_cross_val_score_works_with_exposure_column():
    frame, _ = make_sozialraeume(150, alpha=0.0, seed=9)
    X = frame[PRED + ["pop_u21"]]
    est = HzEDemandModel(family="poisson", exposure_col="pop_u21")
    scores = cross_val_score(est, X, frame["hze_cases"], cv=5)
    assert scores.shape == (5,)
    assert np.all(np.isfinite(scores)) and scores.mean() > 0.1
    pred = cross_val_predict(est, X, frame["hze_cases"], cv=GroupKFold(4), groups=frame["bezirk"])
    assert pred.shape == (150,) and np.all(pred > 0)
    # the exposure column is not a predictor
    fitted = est.fit(X, frame["hze_cases"])
    assert list(fitted.feature_names_in_) == PRED


def test_score_is_deviance_explained():
    frame, _ = make_sozialraeume(150, alpha=0.0, seed=10)
    m = HzEDemandModel(family="poisson").fit(frame[PRED], frame["hze_cases"], exposure=frame["pop_u21"])
    d2 = m.score(frame[PRED], frame["hze_cases"], exposure=frame["pop_u21"])
    null = sm.GLM(frame["hze_cases"], np.ones((150, 1)), family=sm.families.Poisson(), offset=np.log(frame["pop_u21"])).fit()
    assert d2 == pytest.approx(1 - m.sm_result_.deviance / null.deviance, rel=1e-8)


# ---- guard rails -------------------------------------------------------------


def _frame():
    return make_sozialraeume(60, seed=11)[0]


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda f: f.assign(pop_u21=f["pop_u21"].where(f.index != 3, 0)), ["pop_u21", "0004"]),
        (lambda f: f.assign(pop_u21=f["pop_u21"].astype(float).where(f.index != 5, np.nan)), ["pop_u21", "0006"]),
        (lambda f: f.assign(pop_u21=f["pop_u21"].where(f.index != 7, -3)), ["pop_u21", "0008"]),
        (lambda f: f.assign(hze_cases=f["hze_cases"].where(f.index != 2, -1)), ["Negative", "0003"]),
        (lambda f: f.assign(hze_cases=f["hze_cases"].astype(float).where(f.index != 4, 2.5)), ["ganzzahlig", "0005", "2.5"]),
        (lambda f: f.assign(hze_cases=f["hze_cases"].astype(float).where(f.index != 9, np.nan)), ["fehlen", "0010"]),
        (lambda f: f.assign(kinderarmut=f["kinderarmut"].where(f.index != 1, np.nan)), ["kinderarmut", "0002"]),
        (lambda f: f.assign(kinderarmut=5.0), ["kinderarmut", "konstant"]),
        (lambda f: f.drop(columns="kinderarmut"), ["kinderarmut", "fehlen"]),
        (lambda f: f.iloc[:19], ["Zu wenige", "20"]),
    ],
)
def test_guard_rails_raise_german_errors_naming_column_and_rows(mutate, words):
    frame = mutate(_frame())
    with pytest.raises(GeoplanError) as exc:
        fit_need_model(frame, predictors=PRED, n_boot=50, cv_folds=3)
    text = exc.value.render()
    for w in words:
        assert w in text, text


def test_estimator_guard_rails():
    f = _frame()
    with pytest.raises(GeoplanError, match="Exposition"):
        HzEDemandModel().fit(f[PRED], f["hze_cases"], exposure=np.r_[0, f["pop_u21"].to_numpy()[1:]])
    with pytest.raises(GeoplanError, match="Modellfamilie"):
        HzEDemandModel(family="gauss").fit(f[PRED], f["hze_cases"], exposure=f["pop_u21"])


# ---- fit_need_model ------------------------------------------------------------


def test_fit_need_model_outputs():
    frame, truth = make_sozialraeume(200, alpha=0.1, seed=12, geometry=True)
    res = fit_need_model(frame, predictors=PRED, n_boot=400, seed=1)
    assert res.coefficients.loc[0, "label"] == "Konstante"
    assert res.expected.index.equals(frame.index)
    assert res.expected.sum() == pytest.approx(frame["hze_cases"].sum(), rel=0.05)
    assert set(res.cv.index) == {"model_kfold", "model_blocked", "baseline_prev", "baseline_rate"}
    assert list(res.cv.columns[-2:]) == ["deviance_explained", "mae_per_1000"]
    # the indicators carry real signal: the model beats the citywide rate out of sample
    assert res.cv.loc["model_kfold", "deviance_explained"] > res.cv.loc["baseline_rate", "deviance_explained"]
    assert res.cv.loc["model_kfold", "mae_per_1000"] < res.cv.loc["baseline_rate", "mae_per_1000"]
    assert len(res.calibration) == 10 and res.calibration["n"].sum() == 200
    assert (res.intervals["pi_low"] <= res.expected).all() and (res.expected <= res.intervals["pi_high"]).all()
    inside = ((frame["hze_cases"] >= res.intervals["pi_low"]) & (frame["hze_cases"] <= res.intervals["pi_high"])).mean()
    assert inside > 0.85
    assert res.moran is not None and set(res.moran) >= {"I", "p_value", "significant"}
    assert res.fit["n"] == 200 and res.fit["k"] == 4 and res.fit["family"] == "negbin"
    # deterministic for a seed
    res2 = fit_need_model(frame, predictors=PRED, n_boot=400, seed=1)
    pd.testing.assert_frame_equal(res.intervals, res2.intervals)
    assert res.moran == res2.moran


def test_funnel_limits_exact_poisson():
    e = np.array([5.0, 20.0, 100.0])
    hi = poisson_limits(e, 0.975)
    lo = poisson_limits(e, 0.025)
    # the interpolated limits lie between the neighbouring integers of the exact quantile
    from scipy.stats import poisson

    q = poisson.ppf(0.975, e)
    assert np.all((hi <= q) & (hi > q - 1))
    assert np.all(lo < e) and np.all(hi > e)
    ft = funnel_table([15, 20, 60], e)
    assert list(ft["flag"]) == ["auffällig hoch", "", "auffällig niedrig"]
    assert (ft["lo998"] < ft["lo95"]).all() and (ft["hi998"] > ft["hi95"]).all()
    # funnel narrows with larger expected counts
    assert ft["hi95"].is_monotonic_decreasing


# ---- options: panel, spatial lag, fixed effects ----------------------------------------


def test_panel_with_year_effects_predicts_budget_year_from_latest_indicators():
    frame, truth = make_sozialraeume(80, years=3, year_effect=0.1, alpha=0.0, seed=13)
    res = fit_need_model(frame, predictors=PRED, family="poisson", n_boot=200, cv_folds=4)
    assert res.fit["panel_years"] == [2022, 2023, 2024] and res.fit["prediction_year"] == 2024
    terms = dict(zip(res.coefficients["term"], res.coefficients["label"]))
    assert terms["jahr_2022"] == "Jahr 2022 (gegenüber 2024)"
    coefs = res.coefficients.set_index("term")
    # year effects relative to the latest year are recovered within their CI
    for yr in (2022, 2023):
        row = coefs.loc[f"jahr_{yr}"]
        assert row["ci_low"] <= truth["year_effects"][yr] <= row["ci_high"]
    latest = frame[frame["year"] == 2024]
    assert res.expected.index.equals(latest.index)
    # the prediction uses the latest year's indicators and exposure at the latest year's level:
    manual = res.estimator.predict(
        latest[PRED].assign(jahr_2022=0.0, jahr_2023=0.0)[res.predictors], exposure=latest["pop_u21"]
    )
    np.testing.assert_allclose(res.expected, manual, rtol=1e-12)
    # and it differs from a prediction with an older year's indicators
    older = frame[frame["year"] == 2022]
    stale = res.estimator.predict(older[PRED].assign(jahr_2022=0.0, jahr_2023=0.0)[res.predictors], exposure=older["pop_u21"])
    assert not np.allclose(stale, manual)
    assert len(res.intervals) == 80 and len(res.funnel) == 80


def test_spatial_autocorrelation_detected_and_options_reduce_it():
    frame, _ = make_sozialraeume(144, alpha=0.0, spatial_effect=0.4, geometry=True, seed=14, n_bezirke=6)
    res = fit_need_model(frame, predictors=PRED, family="poisson", n_boot=100, cv_folds=3)
    assert res.moran["significant"] and res.moran["I"] > 0.2
    note = [n for n in res.notes if "Moran" in n.message]
    assert note and "spatial_lag" in note[0].message and "fixed_effects" in note[0].message
    # Option 1: Bezirk fixed effects
    fe = fit_need_model(frame, predictors=PRED, family="poisson", n_boot=100, cv_folds=3, fixed_effects="bezirk")
    fe_terms = [t for t in fe.coefficients["term"] if t.startswith("fe_bezirk_")]
    assert len(fe_terms) == 5
    assert fe.coefficients.set_index("term").loc[fe_terms[0], "label"].startswith("Bezirk: Bezirk 2 (gegenüber Bezirk 1)")
    assert fe.moran["I"] < res.moran["I"]
    assert "model_blocked" not in fe.cv.index  # left out: the held-out Bezirk would have no estimate
    # fixed-effect dummies stay 0/1 (not standardised)
    est = fe.estimator
    j = list(est.feature_names_in_).index(fe_terms[0])
    assert est.scaler_mean_[j] == 0 and est.scaler_scale_[j] == 1
    # Option 2: spatial lag of a need index (here: the lagged observed rate as a proxy for a need index)
    frame = frame.assign(need_index=np.log((frame["hze_cases"] + 0.5) / frame["pop_u21"]))
    lag = fit_need_model(frame, predictors=PRED, family="poisson", n_boot=100, cv_folds=3, spatial_lag="need_index")
    assert "lag_need_index" in lag.predictors
    assert lag.moran["I"] < res.moran["I"]


def test_spatial_lag_values_are_neighbour_means():
    frame, _ = make_sozialraeume(25, geometry=True, seed=15)
    from geoplan.stages.model.glm import _spatial_lag

    v = np.arange(25, dtype=float)
    lag = _spatial_lag(frame.assign(v=v), "v", frame.geometry, np.ones(25, bool), False, "year", "key")
    # cell 0 (corner of the 5x5 grid) has queen neighbours 1, 5, 6
    assert lag[0] == pytest.approx((1 + 5 + 6) / 3)
    # centre cell 12 has 8 neighbours whose mean is 12 on a regular grid
    assert lag[12] == pytest.approx(12.0)


def test_spatial_lag_without_geometry_raises():
    frame, _ = make_sozialraeume(60, seed=16)
    with pytest.raises(GeoplanError, match="Geometrien"):
        fit_need_model(frame.assign(need_index=0.1), predictors=PRED, spatial_lag="need_index", n_boot=10)


def test_cross_validate_with_metadata_routing():
    import sklearn
    from sklearn.model_selection import cross_validate

    frame, _ = make_sozialraeume(120, seed=17)
    with sklearn.config_context(enable_metadata_routing=True):
        est = HzEDemandModel(family="poisson").set_fit_request(exposure=True).set_score_request(exposure=True)
        out = cross_validate(est, frame[PRED], frame["hze_cases"], cv=4, params={"exposure": frame["pop_u21"].to_numpy()})
    assert out["test_score"].shape == (4,) and out["test_score"].mean() > 0.1


def test_cv_figures_match_manual_computation():
    from sklearn.model_selection import KFold

    from geoplan.stages.model import deviance_explained, mae_per_1000

    frame, _ = make_sozialraeume(100, alpha=0.0, seed=18)
    res = fit_need_model(frame, predictors=PRED, family="poisson", cv_folds=5, seed=3, n_boot=50)
    y, e = frame["hze_cases"].to_numpy(), frame["pop_u21"].to_numpy()
    X = frame[PRED + ["pop_u21"]]
    pred = cross_val_predict(HzEDemandModel(family="poisson", exposure_col="pop_u21"), X, y, cv=KFold(5, shuffle=True, random_state=3))
    assert res.cv.loc["model_kfold", "deviance_explained"] == pytest.approx(deviance_explained(y, pred, e), rel=1e-9)
    assert res.cv.loc["model_kfold", "mae_per_1000"] == pytest.approx(mae_per_1000(y, pred, e), rel=1e-9)
    prev = frame["hze_cases_prev"].clip(lower=0.5).to_numpy()
    assert res.cv.loc["baseline_prev", "mae_per_1000"] == pytest.approx(1000 * np.abs(y - prev).sum() / e.sum())


def test_calibration_deciles_sum_up():
    frame, _ = make_sozialraeume(100, seed=19)
    res = fit_need_model(frame, predictors=PRED, n_boot=50)
    c = res.calibration
    assert c["n"].tolist() == [10] * 10
    assert (c["mean_observed"] * c["n"]).sum() == pytest.approx(frame["hze_cases"].sum())
    assert c["rate_expected_per_1000"].is_monotonic_increasing


def test_plots_draw_with_german_labels(monkeypatch):
    from geoplan.report import figures

    monkeypatch.setattr(figures, "png_bytes", lambda fig: fig)  # keep the figure to look at it
    frame, _ = make_sozialraeume(100, alpha=0.2, seed=20)
    res = fit_need_model(frame, predictors=PRED, n_boot=50)
    a = figures.funnel_plot_png(res.funnel).axes[0]
    b = figures.calibration_png(res).axes[0]
    assert a.get_ylabel() == "beobachtet / erwartet" and "1.000 unter 21" in b.get_xlabel()
    assert len(a.collections) == 1 and len(a.collections[0].get_offsets()) == 100
    assert "negativ-binomial" in a.get_legend().get_title().get_text()
    hidden = np.zeros(100, bool)
    hidden[:7] = True
    a = figures.funnel_plot_png(res.funnel, hidden).axes[0]
    assert len(a.collections[0].get_offsets()) == 93  # suppressed areas are not drawn
    b = figures.calibration_png(res, lang="en").axes[0]
    assert "1.000" not in b.get_xlabel() and b.get_xlabel() != "Erwartete Fälle je 1.000 unter 21"
    import matplotlib.pyplot as plt

    plt.close("all")


# ---- cost model -------------------------------------------------------------------


@pytest.mark.parametrize("family", ["gamma", "tweedie"])
def test_cost_model_by_kind(family):
    from geoplan.stages.model import fit_cost_model

    frame, _ = make_sozialraeume(300, seed=21)
    cm = fit_cost_model(frame, predictors=PRED, family=family)
    assert cm.kinds == ["ambulant", "teilstationaer", "stationaer"]
    # synthetic cost per case: about 14,000 / 32,000 / 62,000 EUR
    means = cm.cost_per_case.mean()
    assert 12_000 < means["ambulant"] < 16_500 and 27_000 < means["teilstationaer"] < 37_000 and 55_000 < means["stationaer"] < 70_000
    np.testing.assert_allclose(cm.kind_shares.sum(axis=1), 1.0)
    ec = cm.expected_cost(frame["hze_cases"].astype(float))
    parts = ec[[f"expected_cost_{k}_eur" for k in cm.kinds]].sum(axis=1)
    np.testing.assert_allclose(ec["expected_cost_eur"], parts)
    # with the observed cases, the model reproduces the city's total cost within a few percent
    assert ec["expected_cost_eur"].sum() == pytest.approx(frame["hze_cost_prev_eur"].sum(), rel=0.05)
    assert set(cm.coefficients["part"]) >= {"ambulant", "anteil_stationaer"}


def test_cost_model_total_matches_statsmodels_gamma():
    from geoplan.stages.model import fit_cost_model

    frame, _ = make_sozialraeume(150, seed=22)
    cm = fit_cost_model(frame, predictors=PRED, family="gamma", kinds=[])
    use = frame["hze_cases"] > 0
    Z = (frame[PRED] - frame[PRED].mean()) / frame[PRED].std(ddof=0)
    ref = sm.GLM(
        (frame["hze_cost_prev_eur"] / frame["hze_cases"])[use],
        sm.add_constant(Z)[use],
        family=sm.families.Gamma(link=sm.families.links.Log()),
        var_weights=frame["hze_cases"][use],
    ).fit()
    np.testing.assert_allclose(cm.coefficients["coef"], ref.params, rtol=1e-6)
    np.testing.assert_allclose(cm.cost_per_case["total"], np.exp(sm.add_constant(Z) @ ref.params.to_numpy()), rtol=1e-6)
    ec = cm.expected_cost(pd.Series(2.0, index=frame.index))
    np.testing.assert_allclose(ec["expected_cost_eur"], 2.0 * cm.cost_per_case["total"])


def test_cost_model_guard_rails():
    from geoplan.stages.model import fit_cost_model

    frame, _ = make_sozialraeume(60, seed=23)
    with pytest.raises(GeoplanError, match="Familie"):
        fit_cost_model(frame, predictors=PRED, family="normal")
    bad = frame.assign(hze_cost_prev_eur=frame["hze_cost_prev_eur"].where(frame.index != 0, -5))
    with pytest.raises(GeoplanError, match="negativ"):
        fit_cost_model(bad, predictors=PRED, kinds=[])
    # a kind with too few areas falls back to the citywide cost per case, with a note
    few = frame.copy()
    few.loc[few.index[3:], "hze_cases_teilstationaer"] = 0
    few.loc[few.index[3:], "hze_cost_prev_teilstationaer_eur"] = 0
    cm = fit_cost_model(few, predictors=PRED)
    assert any("teilstationär" in n.message for n in cm.notes)
    assert cm.cost_per_case["teilstationaer"].nunique() == 1


def test_poisson_coverage_fails_under_overdispersion():
    # the coverage check is sharp: a Poisson model on NB2 data covers far less than 90 %
    hits = np.zeros(len(PRED), dtype=int)
    for seed in range(100):
        frame, truth = make_sozialraeume(100, alpha=0.1, seed=2000 + seed)
        m = HzEDemandModel(family="poisson", standardize=False).fit(frame[PRED], frame["hze_cases"], exposure=frame["pop_u21"])
        true = np.array([truth["coef"][c] for c in PRED])
        ci = m.conf_int_.to_numpy()[1:]
        hits += (ci[:, 0] <= true) & (true <= ci[:, 1])
    assert (hits < 80).all(), hits


def test_moran_on_shipped_berlin_prognoseraeume():
    import geopandas as gpd

    from geoplan.stages.model import morans_i

    geo = gpd.read_file("boundaries/berlin/prognoseraeume_2021.geojson")
    assert geo.crs.to_epsg() == 25833
    frame, _ = make_sozialraeume(len(geo), alpha=0.0, seed=24)
    x = geo.geometry.centroid.x.to_numpy()
    # demand rising from west to east that the indicators do not know about
    frame["hze_cases"] = np.random.default_rng(0).poisson(frame["pop_u21"] * 0.02 * np.exp(1.0 * (x - x.mean()) / x.std()))
    gdf = gpd.GeoDataFrame(frame, geometry=geo.geometry.to_numpy(), crs=geo.crs)
    res = fit_need_model(gdf, predictors=["kinderarmut"], family="poisson", groups=None, n_boot=50, cv_folds=3)
    assert res.moran["significant"] and res.moran["n"] + res.moran["islands"] == 58
    # a spatially random variable on the same graph is not significant
    rnd = morans_i(np.random.default_rng(1).normal(size=58), geo.geometry, seed=0)
    assert not rnd["significant"]


def test_describe_de_text():
    from geoplan.report.model_text import describe_de

    frame, _ = make_sozialraeume(120, alpha=0.2, seed=25, geometry=True)
    res = fit_need_model(frame, predictors=PRED, n_boot=50)
    d = describe_de(res)
    assert "NegBin" in d["formula_symbols"] and "Standardabweichung" in d["formula_words"]
    assert len(d["validation"]) == len(res.cv) and "je 1.000 unter 21" in d["validation"][0]
    assert any("NB2-Grenzen" in s for s in d["limitations"])


def test_exclude_empty_areas_option():
    frame, _ = make_sozialraeume(100, seed=26, geometry=True)
    frame.loc[[3, 50], ["pop_u21", "hze_cases"]] = 0
    with pytest.raises(GeoplanError, match="pop_u21"):
        fit_need_model(frame, predictors=PRED, n_boot=50)
    res = fit_need_model(frame, predictors=PRED, n_boot=50, exclude_empty=True)
    assert res.expected.index.equals(frame.index)
    assert res.expected.loc[[3, 50]].eq(0).all() and (res.expected.drop([3, 50]) > 0).all()
    assert res.intervals.loc[3].tolist() == [0.0, 0.0]
    assert res.fit["n"] == 98 and res.moran["n"] + res.moran["islands"] == 98
    assert "0004" in res.notes[0].location and "0051" in res.notes[0].location
    # an area with cases but without exposure is still refused
    frame.loc[7, "pop_u21"] = 0
    with pytest.raises(GeoplanError, match="0008"):
        fit_need_model(frame, predictors=PRED, n_boot=50, exclude_empty=True)


def test_fit_moran_and_notes_are_json_serialisable_for_the_manifest():
    import json

    frame, _ = make_sozialraeume(100, alpha=0.2, seed=27, geometry=True, spatial_effect=0.4)
    res = fit_need_model(frame, predictors=PRED, n_boot=50, family="poisson")
    json.dumps(res.fit)
    json.dumps(res.moran)
    json.dumps([n.to_dict() for n in res.notes])
    assert {n.level for n in res.notes} <= {"info", "warnung"}


def test_prediction_intervals_cover_new_counts_at_nominal_rate():
    frame, truth = make_sozialraeume(300, alpha=0.15, seed=28)
    res = fit_need_model(frame, predictors=PRED, n_boot=2000, seed=2)
    rng = np.random.default_rng(99)
    mu = truth["mu"]
    new = rng.poisson(rng.gamma(1 / 0.15, 0.15 * mu, size=(20, len(mu))))
    cover = ((new >= res.intervals["pi_low"].to_numpy()) & (new <= res.intervals["pi_high"].to_numpy())).mean()
    assert 0.92 <= cover <= 0.99
    # a Poisson model's intervals are too narrow for the same NB2 data
    pois = fit_need_model(frame, predictors=PRED, family="poisson", n_boot=2000, seed=2)
    cover_p = ((new >= pois.intervals["pi_low"].to_numpy()) & (new <= pois.intervals["pi_high"].to_numpy())).mean()
    assert cover_p < 0.85


def test_coefficient_table_reports_sd_in_indicator_units():
    frame, _ = make_sozialraeume(100, seed=29)
    res = fit_need_model(frame, predictors=PRED, n_boot=20, fixed_effects="bezirk", groups=None)
    c = res.coefficients.set_index("term")
    assert c.loc["kinderarmut", "predictor_sd"] == pytest.approx(frame["kinderarmut"].std(ddof=0))
    assert np.isnan(c.loc["const", "predictor_sd"]) and np.isnan(c.loc["fe_bezirk_Bezirk 2", "predictor_sd"])


def test_predict_with_missing_predictor_raises():
    frame, _ = make_sozialraeume(60, seed=30)
    m = HzEDemandModel().fit(frame[PRED], frame["hze_cases"], exposure=frame["pop_u21"])
    with pytest.raises(GeoplanError, match="kinderarmut"):
        m.predict(frame[["arbeitslosigkeit", "alleinerziehende"]], exposure=frame["pop_u21"])


def test_cost_model_kind_subset_and_prior_year_column_names():
    from geoplan.stages.model import fit_cost_model

    frame, _ = make_sozialraeume(300, seed=31)
    # the prior-year naming of the simulator: hze_cases_prev_<kind>
    renamed = frame.rename(columns={f"hze_cases_{k}": f"hze_cases_prev_{k}" for k in ("ambulant", "teilstationaer", "stationaer")})
    renamed = renamed.drop(columns="hze_cases_prev").rename(columns={"hze_cases": "hze_cases_prev"})
    sub = fit_cost_model(renamed, cases="hze_cases_prev", predictors=PRED, kinds=["ambulant", "teilstationaer"])
    assert sub.kinds == ["ambulant", "teilstationaer"] and list(sub.cost_per_case.columns) == sub.kinds
    # shares of the chosen kinds cover about 70 % of all cases (60 % ambulant + 10 % teilstationär)
    assert sub.kind_shares.sum(axis=1).mean() == pytest.approx(0.7, abs=0.03)
    ec = sub.expected_cost(renamed["hze_cases_prev"].astype(float))
    budget_cost = renamed["hze_cost_prev_ambulant_eur"].sum() + renamed["hze_cost_prev_teilstationaer_eur"].sum()
    assert ec["expected_cost_eur"].sum() == pytest.approx(budget_cost, rel=0.05)
    with pytest.raises(GeoplanError, match="Hilfearten"):
        fit_cost_model(frame, predictors=PRED, kinds=["heim"])


@parametrize_with_checks([HzEDemandModel(), HzEDemandModel(family="negbin", alpha=0.5)])
def test_passes_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_is_a_regressor_that_ensembles_accept():
    from sklearn.base import is_regressor
    from sklearn.ensemble import VotingRegressor

    assert is_regressor(HzEDemandModel())
    frame, _ = make_sozialraeume(80, seed=33)
    X = frame[PRED].assign(pop_u21=frame["pop_u21"])
    vote = VotingRegressor([("p", HzEDemandModel(family="poisson", exposure_col="pop_u21")),
                            ("nb", HzEDemandModel(family="negbin", exposure_col="pop_u21"))]).fit(X, frame["hze_cases"])
    single = HzEDemandModel(family="poisson", exposure_col="pop_u21").fit(X, frame["hze_cases"])
    assert vote.predict(X) == pytest.approx((single.predict(X) + vote.estimators_[1].predict(X)) / 2)


@pytest.mark.parametrize(
    "params, word",
    [({"family": "gauss"}, "Modellfamilie"), ({"alpha": -1.0}, "alpha"), ({"maxiter": 0}, "maxiter"),
     ({"tol": "klein"}, "tol"), ({"standardize": "ja"}, "standardize"), ({"exposure_col": 3}, "exposure_col")],
)
def test_bad_parameters_are_refused_the_scikit_learn_way_in_german(params, word):
    from sklearn.utils._param_validation import InvalidParameterError

    f = _frame()
    with pytest.raises(InvalidParameterError) as exc:
        HzEDemandModel(**params).fit(f[PRED], f["hze_cases"], exposure=f["pop_u21"])
    assert isinstance(exc.value, GeoplanError) and isinstance(exc.value, ValueError)
    assert word in exc.value.render() and f"bedarfsmodell.{next(iter(params))}" in exc.value.render()
    assert f"'{next(iter(params))}' parameter of HzEDemandModel" in exc.value.render("en")


def test_sklearn_estimator_conventions():
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.estimator_checks import (
        check_get_params_invariance,
        check_no_attributes_set_in_init,
        check_parameters_default_constructible,
        check_set_params,
    )

    est = HzEDemandModel(family="negbin", alpha=0.2)
    check_no_attributes_set_in_init("HzEDemandModel", est)
    check_parameters_default_constructible("HzEDemandModel", est)
    check_get_params_invariance("HzEDemandModel", est)
    check_set_params("HzEDemandModel", est)
    assert clone(est).get_params() == est.get_params()
    frame, _ = make_sozialraeume(60, seed=32)
    with pytest.raises(NotFittedError):
        est.predict(frame[PRED], exposure=frame["pop_u21"])
    est.fit(frame[PRED], frame["hze_cases"], exposure=frame["pop_u21"])
    assert est.alpha_ == 0.2 and est.n_features_in_ == 3
    assert "lr_p_value" in est.overdispersion_test_


def test_likelihood_ratio_overdispersion_test():
    over, _ = make_sozialraeume(200, alpha=0.2, seed=33)
    m = HzEDemandModel(family="negbin").fit(over[PRED], over["hze_cases"], exposure=over["pop_u21"])
    assert m.overdispersion_test_["lr_p_value"] < 0.001
    calm, _ = make_sozialraeume(200, alpha=0.0, seed=34)
    m2 = HzEDemandModel(family="negbin").fit(calm[PRED], calm["hze_cases"], exposure=calm["pop_u21"])
    assert m2.overdispersion_test_["lr_p_value"] > 0.05


def test_funnel_note_speaks_of_cases_not_need(demo_result):
    """The QA note on the funnel plot counts areas with more or fewer cases than expected (observed against
    expected counts); it said 'auffällig hohem ... Bedarf', which reads as a statement about need."""
    notes = [n for n in demo_result.notes if "Poisson" in n.message and "Trichterdiagramm" in n.message]
    assert len(notes) == 1
    de, en = notes[0].text("de"), notes[0].text("en")
    assert "Fällen als vom Modell erwartet" in de and "Bedarf" not in de, de
    assert "cases than the model expects" in en and "need" not in en, en
