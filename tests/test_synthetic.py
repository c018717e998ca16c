"""Tests of the synthetic Sozialraum generator (geoplan.synthetic)."""

import numpy as np
import pytest

from geoplan.synthetic import KINDS, make_sozialraeume


def test_standard_columns_and_reproducibility():
    f1, t1 = make_sozialraeume(50, seed=3)
    f2, _ = make_sozialraeume(50, seed=3)
    f3, _ = make_sozialraeume(50, seed=4)
    assert f1.equals(f2) and not f1.equals(f3)
    for col in ["key", "name", "bezirk", "pop_u21", "hze_cases", "hze_cases_prev", "hze_cost_prev_eur"]:
        assert col in f1.columns
    assert f1["key"].iloc[0] == "0001"
    assert (f1["pop_u21"].between(200, 5000)).all()
    kinds = sum(f1[f"hze_cases_{k}"] for k in KINDS)
    assert (kinds == f1["hze_cases"]).all()
    assert (sum(f1[f"hze_cost_prev_{k}_eur"] for k in KINDS) == f1["hze_cost_prev_eur"]).all()
    np.testing.assert_allclose(t1["mu"].sum(), f1["hze_cases"].sum(), rtol=0.1)


@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_overdispersion_matches_alpha(alpha):
    f, t = make_sozialraeume(3000, alpha=alpha, exposure_range=(1000, 1000), seed=5)
    mu, y = t["mu"], f["hze_cases"].to_numpy()
    # method of moments for Var = mu + alpha mu²
    est = np.sum((y - mu) ** 2 - y) / np.sum(mu**2)
    assert est == pytest.approx(alpha, abs=0.05)


def test_panel_and_geometry():
    f, t = make_sozialraeume(30, years=3, geometry=True, seed=1)
    assert len(f) == 90 and sorted(f["year"].unique()) == [2022, 2023, 2024]
    assert f.crs.to_epsg() == 25833
    assert t["year_effects"][2024] == 0.0 and t["year_effects"][2022] < 0
    latest = f[f["year"] == 2024]
    assert latest.geometry.area.round().eq(1e6).all()
