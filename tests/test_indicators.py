"""Tests for geoplan.stages.indicators: catalogue, rates, EB smoothing, need index, classes, Dynamik."""

from __future__ import annotations

from pathlib import Path

import mapclassify
import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from esda.smoothing import Empirical_Bayes, Spatial_Empirical_Bayes
from libpysal.weights import W, lat2W

from geoplan.errors import GeoplanError
from geoplan.stages.indicators import (
    NEED_CLASS_LABELS,
    aggregate_indicators,
    base_of,
    Catalogue,
    Indicator,
    catalogue_table,
    classify,
    derive_indicators,
    dynamik,
    dynamik_classes,
    dynamik_index,
    eb_global,
    eb_local,
    load_catalogue,
    need_index,
    sd_classes,
    zscore,
)

ROOT = Path(__file__).resolve().parents[1]
BERLIN = ROOT / "indicators" / "berlin"
SRC = {"source": "Test", "reference_date": "31.12.2020"}


def ind(name, **kw) -> Indicator:
    data = {"label": name, "unit": "%", "direction": "hoch = mehr Bedarf", "column": name, **SRC}
    data.update(kw)
    return Indicator(name=name, **data)


def small_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "key": ["01", "02", "03", "04"],
            "a": [1.0, 2.0, 3.0, 6.0],
            "b": [10.0, 10.0, 40.0, 20.0],
            "pop": [100.0, 200.0, 300.0, 400.0],
        }
    )


# --------------------------------------------------------------------------- Berlin data


def _read_mss(name: str) -> pd.DataFrame:
    # -9999 marks the MSS rows suppressed below 300 residents or as outliers.
    return pd.read_csv(BERLIN / name, dtype={"PLR_ID": str, "BEZ_ID": str}, na_values=[-9999])


def berlin_plr(valid_only: bool = True) -> pd.DataFrame:
    """Planungsraum frame with the standard column names (valid MSS rows only unless told)."""
    idx = _read_mss("mss_2021_index_indikatoren.csv")
    ki = _read_mss("mss_2021_kontext_indikatoren.csv")
    si = _read_mss("mss_2021_indizes.csv")
    ew = pd.read_csv(
        BERLIN / "einwohner_plr_2022-06.csv", sep=";", encoding="utf-8-sig", dtype={"PLR-ID": str}, na_values=["–"]
    ).fillna(0)
    ew = ew.rename(
        columns={
            "PLR-ID": "PLR_ID", "Gesamt": "pop_total", "unter6": "pop_u6", "6-15": "pop_6_15",
            "15-18": "pop_15_18", "18-27": "pop_18_27", "27-45": "pop_27_45", "45-55": "pop_45_55",
            "55-65": "pop_55_65", "65undmehr": "pop_65plus",
        }
    )
    df = (idx[idx["KOM"] == "gültig"] if valid_only else idx).rename(
        columns={"S1": "arbeitslosigkeit", "S3": "transferbezug", "S4": "kinderarmut",
                 "D1": "arbeitslosigkeit_dyn", "D3": "transferbezug_dyn", "D4": "kinderarmut_dyn"}
    )
    df = df.merge(ki[["PLR_ID", "KI_01", "KI_02"]], on="PLR_ID").rename(
        columns={"KI_01": "jugendarbeitslosigkeit", "KI_02": "alleinerziehende"}
    )
    df = df.merge(si[["PLR_ID", "SI_N", "DI_N"]], on="PLR_ID").merge(ew, on="PLR_ID")
    return df.rename(columns={"PLR_ID": "key"})


def berlin_prognoseraeume(cat: Catalogue) -> pd.DataFrame:
    """The 58 Prognoseräume from all 542 Planungsräume (the pipeline's aggregation step)."""
    plr = berlin_plr(valid_only=False)
    plr["prr"] = plr["key"].str[:4]
    pops = [c for c in plr.columns if c.startswith("pop_")]
    return aggregate_indicators(plr, cat, by="prr", count_columns=pops).frame


@pytest.fixture(scope="module")
def berlin_cat() -> Catalogue:
    return load_catalogue(BERLIN / "katalog.yaml")


def test_shipped_berlin_catalogue(berlin_cat):
    names = [i.name for i in berlin_cat.indicators]
    assert names[:5] == ["arbeitslosigkeit", "transferbezug", "kinderarmut", "jugendarbeitslosigkeit", "alleinerziehende"]
    assert {i.name for i in berlin_cat.index_indicators} == set(names[:5])
    assert [i.name for i in berlin_cat.indicators if i.group == "status"] == names[:3]
    dyn = [i for i in berlin_cat.indicators if i.group == "dynamik"]
    assert len(dyn) == 3 and all(i.weight == 0 and i.unit == "Prozentpunkte" for i in dyn)
    for i in berlin_cat.indicators:
        assert i.licence == "dl-de/by-2.0"
        assert i.reference_date == "31.12.2020"
        assert "Monitoring Soziale Stadtentwicklung 2021" in i.source
        assert i.base, i.name
    assert berlin_cat.get("kinderarmut").base == ["pop_u6", "pop_6_15"]
    assert berlin_cat.get("arbeitslosigkeit").base == ["pop_15_18", "pop_18_27", "pop_27_45", "pop_45_55", "pop_55_65"]
    table = catalogue_table(berlin_cat)
    assert len(table) == 8 and table.loc[2, "Bezugsbevölkerung"] == "pop_u6 + pop_6_15"
    assert table.loc[0, "Lizenz"] == "dl-de/by-2.0" and table.loc[5, "Gewicht im Index"] == 0
    en = catalogue_table(berlin_cat, lang="en")
    assert en.loc[0, "Indicator"] == "Unemployment (SGB II)" and "Population base" in en.columns


def test_mss_method_reproduces_official_berlin_status_and_dynamik_index(berlin_cat):
    plr = berlin_plr()
    assert len(plr) == 536
    res = need_index(plr, berlin_cat, method="mss")
    assert set(res.weights) == {"arbeitslosigkeit", "transferbezug", "kinderarmut"}
    np.testing.assert_array_equal(res.frame["need_class"].to_numpy(), plr["SI_N"].to_numpy())
    # The sd convention does not matter for the official classes: ddof=1 gives the same.
    s1 = sum(zscore(plr[c], ddof=1) for c in ("arbeitslosigkeit", "transferbezug", "kinderarmut"))
    np.testing.assert_array_equal(sd_classes(zscore(s1, ddof=1)), plr["SI_N"].to_numpy())
    # Dynamik index: same rule on the change indicators, classes at -1 / +1 sd.
    dres = dynamik_index(plr, berlin_cat)
    assert dres.indicators == ["arbeitslosigkeit_dyn", "transferbezug_dyn", "kinderarmut_dyn"]
    np.testing.assert_array_equal(dres.frame["dynamik_class"].to_numpy(), plr["DI_N"].to_numpy())
    assert dres.class_labels[5] == "negativ"


def test_berlin_prognoseraeume_all_methods(berlin_cat):
    frame = berlin_prognoseraeume(berlin_cat)
    assert len(frame) == 58
    derived = derive_indicators(frame, berlin_cat)
    for name in ("kinderarmut", "alleinerziehende", "kinderarmut_dyn"):
        assert {name, f"{name}_roh", f"{name}_basis"} <= set(derived.frame.columns)
    np.testing.assert_allclose(
        derived.frame["kinderarmut_basis"], frame["pop_u6"] + frame["pop_6_15"]
    )
    results = {m: need_index(derived.frame, berlin_cat, method=m) for m in ("gewichtet", "mss", "pca")}
    for m, r in results.items():
        idx = r.frame["need_index"].to_numpy()
        assert abs(idx.mean()) < 1e-12 and abs(idx.std() - 1) < 1e-12, m
        assert set(r.frame["need_class"]) <= {1, 2, 3, 4}
    pca = results["pca"]
    assert (pca.loadings["PC1"] > 0).all()
    assert pca.explained_variance > 0.5
    # All three ways rank the Sozialräume very similarly on Berlin data.
    assert np.corrcoef(results["gewichtet"].frame["need_index"], results["pca"].frame["need_index"])[0, 1] > 0.95
    assert np.corrcoef(results["gewichtet"].frame["need_index"], results["mss"].frame["need_index"])[0, 1] > 0.9


def test_aggregate_berlin_planungsraeume_to_prognoseraeume(berlin_cat):
    plr = berlin_plr(valid_only=False)
    assert len(plr) == 542 and plr["arbeitslosigkeit"].isna().sum() == 6
    frame = berlin_prognoseraeume(berlin_cat)
    assert len(frame) == 58 and frame["key"].str.len().eq(4).all()
    assert frame["pop_total"].sum() == plr["pop_total"].sum()  # suppressed rows keep their residents
    assert frame["n_teilraeume"].sum() == 542
    sub = plr[plr["key"].str.startswith("0110") & plr["kinderarmut"].notna()]
    w = sub["pop_u6"] + sub["pop_6_15"]
    expected = (sub["kinderarmut"] * w).sum() / w.sum()
    got = frame.loc[frame["key"] == "0110", "kinderarmut"].item()
    assert got == pytest.approx(expected, rel=1e-12)
    # Plausible magnitudes: child poverty differs roughly tenfold between Prognoseräume.
    assert 0 < frame["kinderarmut"].min() < 10 < 45 < frame["kinderarmut"].max() < 100


def test_share_outside_0_100_is_an_error():
    plr = berlin_plr(valid_only=False)
    plr.loc[plr["arbeitslosigkeit"].isna(), "arbeitslosigkeit"] = -9999.0
    cat = Catalogue(indicators=[ind("arbeitslosigkeit", base=["pop_total"])])
    for call in (lambda: aggregate_indicators(plr, cat, by="BEZ_ID"), lambda: derive_indicators(plr, cat)):
        with pytest.raises(GeoplanError) as exc:
            call()
        assert "-9999" in exc.value.found and "03300515" in exc.value.location
        assert "fehlend" in exc.value.hint


def test_aggregate_coverage_note_and_unweighted_fallback():
    f = pd.DataFrame(
        {"g": ["x", "x", "y", "y"], "a": [10.0, np.nan, 20.0, 40.0], "p": [100.0, 900.0, 100.0, 300.0], "h": [1.0, 2, 3, 4]}
    )
    cat = Catalogue(indicators=[ind("a", base=["p"]), ind("h")])
    res = aggregate_indicators(f, cat, by="g")
    out = res.frame.set_index("key")
    assert out.loc["x", "a"] == 10.0 and out.loc["y", "a"] == pytest.approx(35.0)
    assert out.loc["x", "p"] == 1000.0 and out.loc["y", "h"] == 3.5
    cov = next(n for n in res.notes if n.details.get("coverage"))
    assert cov.details["coverage"] == {"x": pytest.approx(0.1)}
    assert any("ungewichtet" in n.message for n in res.notes)
    with pytest.raises(GeoplanError, match="Gruppierungsspalte"):
        aggregate_indicators(f, cat, by="bezirk")


def test_local_eb_on_berlin_prognoseraeume_barely_moves_large_areas(berlin_cat):
    import geopandas as gpd
    from libpysal.weights import Queen

    gdf = gpd.read_file(ROOT / "boundaries" / "berlin" / "prognoseraeume_2021.geojson")
    w = Queen.from_dataframe(gdf, ids=gdf["id"].astype(str).tolist(), use_index=False)
    frame = berlin_prognoseraeume(berlin_cat)
    cat = Catalogue(
        indicators=[berlin_cat.get("jugendarbeitslosigkeit").model_copy(update={"smoothing": "eb_lokal"})]
    )
    res = derive_indicators(frame, cat, neighbours=w)
    diff = (res.frame["jugendarbeitslosigkeit"] - res.frame["jugendarbeitslosigkeit_roh"]).abs()
    raw = res.frame["jugendarbeitslosigkeit_roh"]
    note = next(n for n in res.notes if n.details.get("method") == "eb_lokal")
    cred = pd.Series({k: v["gewicht_roh"] for k, v in note.details["areas"].items()})
    # Thousands of young residents per Prognoseraum: the raw share keeps most of its
    # credibility and moves by hundredths of a percentage point (at most 0.19).
    assert cred.median() > 0.95 and cred.min() > 0.5
    assert 0 < diff.median() < 0.02 and diff.max() < 0.25
    assert list(note.details["areas"])[0] == res.frame.loc[diff.idxmax(), "key"]
    assert len(note.details["areas"]) == 58


def test_base_of_sums_base_columns():
    f = pd.DataFrame({"u6": [10.0, np.nan, np.nan], "u15": [5.0, 7.0, np.nan]})
    got = base_of(f, ind("x", base=["u6", "u15"]))
    assert got.name == "x_basis"
    np.testing.assert_array_equal(got.to_numpy(), [15.0, 7.0, np.nan])
    assert base_of(f, ind("x")).isna().all()
    with pytest.raises(GeoplanError, match="'pop_u6'"):
        base_of(f, ind("x", base=["pop_u6"]))


# --------------------------------------------------------------------------- z-scores, index


def test_zscores_and_weighted_index_by_hand():
    f = small_frame()
    cat = Catalogue(indicators=[ind("a", weight=1.0), ind("b", weight=3.0)])
    res = need_index(f, cat)
    a = np.array([1.0, 2, 3, 6])
    za = (a - 3) / np.sqrt(((a - 3) ** 2).mean())  # ddof=0
    b = np.array([10.0, 10, 40, 20])
    zb = (b - 20) / np.sqrt(((b - 20) ** 2).mean())
    np.testing.assert_allclose(res.frame["z_a"], za)
    np.testing.assert_allclose(res.frame["z_b"], zb)
    s = 0.25 * za + 0.75 * zb
    np.testing.assert_allclose(res.frame["need_index"], (s - s.mean()) / s.std(ddof=0))
    assert res.weights == {"a": 0.25, "b": 0.75}
    assert res.method == "gewichtet" and res.loadings is None
    assert "need_index" not in f.columns  # input untouched


def test_direction_flips_sign_and_weight_zero_excluded():
    f = small_frame()
    cat = Catalogue(indicators=[ind("a"), ind("b", direction="hoch = weniger Bedarf"), ind("pop", weight=0)])
    res = need_index(f, cat)
    assert "z_pop" not in res.frame.columns and "pop" not in res.weights
    plain = need_index(f, Catalogue(indicators=[ind("b")]))
    np.testing.assert_allclose(res.frame["z_b"], -plain.frame["z_b"])
    # Equal weights: index is the standardised mean of za and -zb.
    s = res.frame["z_a"] + res.frame["z_b"]
    np.testing.assert_allclose(res.frame["need_index"], (s - s.mean()) / s.std(ddof=0))


def test_mss_method_uses_status_group_unweighted():
    f = small_frame()
    cat = Catalogue(indicators=[ind("a", group="status", weight=5), ind("b", group="status"), ind("pop", group="kontext")])
    res = need_index(f, cat, method="mss")
    assert set(res.weights) == {"a", "b"} and res.weights["a"] == 0.5
    s = res.frame["z_a"] + res.frame["z_b"]
    np.testing.assert_allclose(res.frame["need_index"], (s - s.mean()) / s.std(ddof=0))


def test_sd_classes_boundaries_and_labels():
    z = np.array([-2.0, -1.0, -0.999, 1.0, 1.01, 1.5, 1.51, 3])
    np.testing.assert_array_equal(sd_classes(z), [1, 2, 2, 2, 3, 3, 4, 4])
    np.testing.assert_array_equal(dynamik_classes(np.array([-1.2, -1.0, 1.0, 1.2])), [1, 3, 3, 5])
    assert NEED_CLASS_LABELS[4].startswith("sehr niedriger Status")


def test_missing_value_gets_mean_and_note():
    f = small_frame()
    f.loc[2, "a"] = np.nan
    res = need_index(f, Catalogue(indicators=[ind("a"), ind("b")]))
    assert np.isnan(res.frame.loc[2, "z_a"])
    assert np.isfinite(res.frame["need_index"]).all()
    assert any("03" in (n.location or "") for n in res.notes)


def test_pca_sign_loadings_and_sklearn_equivalence():
    rng = np.random.default_rng(3)
    n = 60
    latent = rng.normal(size=n)
    f = pd.DataFrame(
        {
            "key": [f"{i:03d}" for i in range(n)],
            "x1": 10 + 3 * latent + rng.normal(scale=1, size=n),
            "x2": 5 + 2 * latent + rng.normal(scale=1, size=n),
            # Higher x3 = less need (e.g. employment rate): negatively tied to need.
            "x3": 50 - 4 * latent + rng.normal(scale=2, size=n),
        }
    )
    cat = Catalogue(indicators=[ind("x1"), ind("x2"), ind("x3", direction="hoch = weniger Bedarf")])
    res = need_index(f, cat, method="pca")
    idx = res.frame["need_index"].to_numpy()
    assert np.corrcoef(idx, latent)[0, 1] > 0.9  # sign: higher = more need
    assert (res.loadings["PC1"] > 0.7).all()
    z = res.frame[["z_x1", "z_x2", "z_x3"]].to_numpy()
    for j, name in enumerate(["x1", "x2", "x3"]):
        assert res.loadings.loc[name, "PC1"] == pytest.approx(np.corrcoef(z[:, j], idx)[0, 1])
    from sklearn.decomposition import PCA

    p = PCA().fit(z)
    assert res.explained_variance == pytest.approx(p.explained_variance_ratio_[0])
    pc1 = p.transform(z)[:, 0]
    assert abs(np.corrcoef(pc1, idx)[0, 1]) == pytest.approx(1.0)
    assert sum(res.weights.values()) > 0 and all(v > 0 for v in res.weights.values())
    # Negating the data and the direction gives the same index.
    f2 = f.assign(x1=-f["x1"])
    cat2 = Catalogue(indicators=[ind("x1", direction="hoch = weniger Bedarf"), ind("x2"), ind("x3", direction="hoch = weniger Bedarf")])
    np.testing.assert_allclose(need_index(f2, cat2, method="pca").frame["need_index"], idx, atol=1e-10)


# --------------------------------------------------------------------------- classes


@pytest.mark.filterwarnings("ignore:Numba not installed")
@pytest.mark.parametrize(
    "scheme,mc",
    [
        ("quantile", lambda y: mapclassify.Quantiles(y, k=5)),
        ("natural_breaks", lambda y: mapclassify.FisherJenks(y, k=5)),
        ("equal_interval", lambda y: mapclassify.EqualInterval(y, k=5)),
        ("std_mean", lambda y: mapclassify.StdMean(y)),
    ],
)
def test_classify_equals_mapclassify(scheme, mc):
    y = np.random.default_rng(1).gamma(2.0, 3.0, size=80)
    c = classify(y, scheme, k=5)
    ref = mc(y)
    np.testing.assert_allclose(c.bins, ref.bins)
    np.testing.assert_array_equal(c.yb, ref.yb)
    assert len(c.labels) == len(c.bins) == c.k
    assert sum(c.counts) == 80


def test_classify_labels_german_and_missing():
    y = pd.Series([1.2, 3.4, np.nan, 2.0, 5.55, 4.1])
    c = classify(y, "equal_interval", k=2, decimals=1)
    assert c.labels[0] == "1,2 bis 3,4"  # (5.55 - 1.2) / 2 + 1.2 = 3.375
    assert c.labels[1].endswith("bis 5,6") or c.labels[1].endswith("bis 5,5")
    assert c.yb[2] == -1
    assert c.yb.tolist() == [0, 1, -1, 0, 1, 1]
    assert classify([1234.5, 2000.0, 10.0], "equal_interval", k=2).labels[1] == "1.005,0 bis 2.000,0"
    with pytest.raises(GeoplanError):
        classify(y, "kmeans")
    # Skewed data: mean - 2 sd lies below the minimum, the first std_mean class is empty.
    sm = classify([3.5, 4.0, 5.0, 6.0, 7.0, 60.0], "std_mean")
    assert sm.bins[0] < 3.5 and sm.counts[0] == 0
    assert sm.labels[0] == f"bis {sm.bins[0]:.1f}".replace(".", ",")


# --------------------------------------------------------------------------- EB smoothing


def test_eb_global_matches_esda_and_shrinks_small_bases():
    rng = np.random.default_rng(7)
    b = np.concatenate([np.full(5, 30.0), np.full(25, 5000.0)])
    true = rng.uniform(0.05, 0.15, size=30)
    e = rng.poisson(true * b).astype(float)
    sm, shrink = eb_global(e, b)
    ref = Empirical_Bayes(e, b).r.ravel()
    np.testing.assert_allclose(sm, ref, rtol=1e-12)
    rate = e / b
    m = e.sum() / b.sum()
    # Small bases are pulled strongly toward the mean, large bases barely move.
    assert (shrink[:5] < 0.5).all() and (shrink[5:] > 0.9).all()
    assert (np.abs(sm[5:] - rate[5:]) < 0.1 * np.abs(rate[5:] - m) + 1e-4).all()
    assert (np.abs(sm[:5] - m) < np.abs(rate[:5] - m) + 1e-15).all()


def test_eb_global_totals_preserved_with_equal_bases_and_clipping():
    e = np.array([2.0, 9.0, 4.0, 13.0])
    b = np.full(4, 100.0)
    sm, _ = eb_global(e, b)
    assert (sm * b).sum() == pytest.approx(e.sum())
    # No extra-Poisson variation: variance estimate clipped at 0, every area gets the mean.
    e2 = np.array([10.0, 10.0, 10.0, 11.0])
    sm2, shrink2 = eb_global(e2, b)
    np.testing.assert_allclose(sm2, e2.sum() / b.sum())
    assert (shrink2 == 0).all()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 5000), st.floats(0.0, 1.0)),
        min_size=3, max_size=30,
    )
)
def test_eb_global_properties(rows):
    b = np.array([r[0] for r in rows], dtype=float)
    e = np.floor(np.array([r[1] for r in rows]) * b)
    sm, shrink = eb_global(e, b)
    rate, m = e / b, e.sum() / b.sum()
    assert ((shrink >= 0) & (shrink <= 1)).all()
    # The smoothed rate lies between the raw rate and the overall mean.
    lo, hi = np.minimum(rate, m), np.maximum(rate, m)
    assert ((sm >= lo - 1e-12) & (sm <= hi + 1e-12)).all()
    # Larger base, more credibility for the raw rate.
    order = np.argsort(b)
    assert (np.diff(shrink[order]) >= -1e-12).all()
    s2 = (b * (rate - m) ** 2).sum() / b.sum() - m / b.mean()
    if m > 0 and s2 > 0:
        np.testing.assert_allclose(sm, Empirical_Bayes(e, b).r.ravel(), rtol=1e-9, atol=1e-15)


def test_eb_local_matches_esda_spatial_eb():
    w = lat2W(5, 5, rook=False)  # queen contiguity on a 5x5 grid
    rng = np.random.default_rng(11)
    b = rng.integers(50, 3000, size=25).astype(float)
    trend = np.repeat(np.linspace(0.05, 0.3, 5), 5)
    e = rng.poisson(trend * b).astype(float)
    nsets = [np.array(list(w.neighbors[i])) for i in range(25)]
    sm, _ = eb_local(e, b, nsets)
    ref = Spatial_Empirical_Bayes(e, b, w).r.ravel()
    np.testing.assert_allclose(sm, ref, rtol=1e-10)


def test_derive_indicators_columns_smoothing_and_notes():
    f = pd.DataFrame(
        {
            "key": ["A", "B", "C", "D", "E", "F"],
            "faelle": [1.0, 30.0, 60.0, 20.0, 90.0, 4.0],
            "u21": [10.0, 1000.0, 1200.0, 900.0, 1500.0, 800.0],
            "u6": [5.0, 100.0, 100.0, 100.0, 100.0, 100.0],
        }
    )
    cat = Catalogue(
        indicators=[
            Indicator(name="quote", label="Quote", numerator="faelle", base=["u21", "u6"], unit="je 1.000",
                      direction="hoch = mehr Bedarf", smoothing="eb_global", **SRC),
        ]
    )
    before = f.copy()
    res = derive_indicators(f, cat)
    pd.testing.assert_frame_equal(f, before)
    out = res.frame
    base = f["u21"] + f["u6"]
    np.testing.assert_allclose(out["quote_basis"], base)
    np.testing.assert_allclose(out["quote_roh"], f["faelle"] / base * 1000)
    ref = Empirical_Bayes(f["faelle"], base).r.ravel() * 1000
    np.testing.assert_allclose(out["quote"], ref)
    # Area A (base 15) moves most.
    moved = abs(out["quote"] - out["quote_roh"])
    assert moved.idxmax() == 0
    note = next(n for n in res.notes if n.details.get("method") == "eb_global")
    assert list(note.details["areas"])[0] == "A"
    assert note.details["areas"]["A"]["basis"] == 15.0


def test_derive_local_smoothing_with_key_ids_and_errors():
    keys = [f"k{i}" for i in range(9)]
    base_w = lat2W(3, 3, rook=False)
    w = W({keys[i]: [keys[j] for j in base_w.neighbors[i]] for i in range(9)}, id_order=keys)
    rng = np.random.default_rng(5)
    pop = rng.integers(20, 2000, size=9).astype(float)
    share = rng.uniform(5, 30, size=9)
    f = pd.DataFrame({"key": keys, "anteil": share, "pop": pop})
    cat = Catalogue(indicators=[ind("anteil", base=["pop"], smoothing="eb_lokal")])
    res = derive_indicators(f, cat, neighbours=w)
    e = share / 100 * pop
    ref = Spatial_Empirical_Bayes(e, pop, base_w).r.ravel() * 100
    np.testing.assert_allclose(res.frame["anteil"], ref, rtol=1e-10)
    np.testing.assert_allclose(res.frame["anteil_roh"], share)
    # Row order of the frame need not follow the W's id order.
    shuffled = f.iloc[[4, 0, 8, 2, 6, 1, 3, 7, 5]].reset_index(drop=True)
    res2 = derive_indicators(shuffled, cat, neighbours=w)
    got = dict(zip(res2.frame["key"], res2.frame["anteil"]))
    np.testing.assert_allclose([got[k] for k in keys], ref, rtol=1e-10)
    # An island keeps its raw rate and is named in a note.
    w_island = W({**{k: [j for j in w.neighbors[k] if j != "k8"] for k in keys[:8]}, "k8": []}, id_order=keys, silence_warnings=True)
    res3 = derive_indicators(f, cat, neighbours=w_island)
    assert res3.frame.loc[8, "anteil"] == pytest.approx(share[8])
    assert any("ohne Nachbarn" in n.message and n.location == "k8" for n in res3.notes)
    with pytest.raises(GeoplanError, match="Nachbarschaft"):
        derive_indicators(f, cat)
    with pytest.raises(GeoplanError) as exc:
        derive_indicators(f, cat, neighbours=lat2W(2, 2))
    assert "Nachbarschaftsmatrix" in exc.value.message


# --------------------------------------------------------------------------- validation


def write_cat(tmp_path, data) -> Path:
    p = tmp_path / "katalog.yaml"
    p.write_text(yaml.safe_dump(data, allow_unicode=True) if not isinstance(data, str) else data, encoding="utf-8")
    return p


def base_entry(**kw) -> dict:
    e = {"name": "kinderarmut", "label": "Kinderarmut", "column": "kinderarmut", "unit": "%",
         "direction": "hoch = mehr Bedarf", **SRC}
    e.update(kw)
    return e


def test_catalogue_unknown_field(tmp_path):
    p = write_cat(tmp_path, {"indicators": [base_entry(), base_entry(name="x", colour="rot")]})
    with pytest.raises(GeoplanError) as exc:
        load_catalogue(p)
    err = exc.value
    assert err.file == str(p)
    assert "indicators[1] ('x').colour" == err.location
    assert "unit" in err.expected and "base" in err.expected


def test_catalogue_bad_unit_lists_allowed_values(tmp_path):
    p = write_cat(tmp_path, {"indicators": [base_entry(unit="Prozent")]})
    with pytest.raises(GeoplanError) as exc:
        load_catalogue(p)
    err = exc.value
    assert err.location == "indicators[0] ('kinderarmut').unit"
    assert "'je 1.000'" in err.expected and "'Prozentpunkte'" in err.expected
    assert "Prozent" in err.found


@pytest.mark.parametrize(
    "entry,needle",
    [
        (base_entry(numerator="faelle"), "genau eines"),
        (base_entry(column=None, numerator="faelle"), "base"),
        (base_entry(unit="Prozentpunkte", smoothing="eb_global", base=["p"]), "Glättung"),
        (base_entry(direction="hoch"), "direction"),
        (base_entry(weight=-1), "weight"),
        (base_entry(name="kinder armut"), "name"),
    ],
)
def test_catalogue_semantic_errors(tmp_path, entry, needle):
    entry = {k: v for k, v in entry.items() if v is not None}
    p = write_cat(tmp_path, {"indicators": [entry]})
    with pytest.raises(GeoplanError) as exc:
        load_catalogue(p)
    assert needle in exc.value.render()


def test_catalogue_yaml_errors_and_duplicates(tmp_path):
    with pytest.raises(GeoplanError) as exc:
        load_catalogue(write_cat(tmp_path, "indicators:\n  - name: a\n   label: b\n"))
    assert "YAML" in exc.value.message and exc.value.location.startswith("Zeile")
    with pytest.raises(GeoplanError, match="doppelt"):
        load_catalogue(write_cat(tmp_path, {"indicators": [base_entry(), base_entry()]}))
    with pytest.raises(GeoplanError, match="nicht gefunden"):
        load_catalogue(tmp_path / "fehlt.yaml")


def test_missing_column_in_frame_names_indicator_and_column():
    f = small_frame()
    cat = Catalogue(indicators=[ind("a"), ind("kinderarmut", base=["pop_u6", "pop_6_15"])])
    with pytest.raises(GeoplanError) as exc:
        derive_indicators(f, cat)
    err = exc.value
    assert "'kinderarmut'" in err.message and "'pop_u6'" in err.message
    assert err.location == "Indikator 'kinderarmut'"
    with pytest.raises(GeoplanError, match="derive_indicators"):
        need_index(f, Catalogue(indicators=[ind("kinderarmut")]))


# --------------------------------------------------------------------------- Dynamik


def test_dynamik_between_two_dates():
    t0 = pd.DataFrame({"key": ["01", "02", "03"], "a": [10.0, 20.0, 30.0], "n": [5.0, 10.0, 1.0], "p": [100.0, 200.0, 50.0]})
    t1 = pd.DataFrame({"key": ["03", "01", "02"], "a": [33.0, 9.0, 20.0], "n": [2.0, 5.0, 12.0], "p": [50.0, 100.0, 200.0]})
    cat = Catalogue(
        indicators=[
            ind("a"),
            Indicator(name="q", label="Q", numerator="n", base=["p"], unit="je 1.000",
                      direction="hoch = weniger Bedarf", **SRC),
            ind("a_dyn", column="a", unit="Prozentpunkte", group="dynamik", weight=0),
        ]
    )
    d = dynamik(t0, t1, cat)
    assert d["key"].tolist() == ["03", "01", "02"]
    np.testing.assert_allclose(d["a_dyn"], [3.0, -1.0, 0.0])
    np.testing.assert_allclose(d["q_dyn"], [20.0, 0.0, 10.0])
    assert "a_dyn_dyn" not in d.columns
    dq = np.array([20.0, 0.0, 10.0])
    np.testing.assert_allclose(d["q_dyn_z"], -(dq - dq.mean()) / dq.std())
    s = d["a_dyn_z"] + d["q_dyn_z"]
    np.testing.assert_allclose(d["dynamik_index"], (s - s.mean()) / s.std(ddof=0))
    with pytest.raises(GeoplanError) as exc:
        dynamik(t0, t1.iloc[:2], cat)
    assert "nur t0: 02" in exc.value.found
