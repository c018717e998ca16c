"""Tests for geoplan.stages.interpolate: key hierarchies and areal interpolation."""

from pathlib import Path
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import box

from geoplan.errors import GeoplanError
from geoplan.stages.interpolate import aggregate_by_key, area_interpolate, intersection_table

ROOT = Path(__file__).resolve().parents[1]
BERLIN = ROOT / "indicators" / "berlin"
CRS = "EPSG:25833"


def _num(s):
    # the Berlin table marks suppressed values with '–'
    return pd.to_numeric(s.replace("–", np.nan))


# ---------------------------------------------------------------- key hierarchies


@pytest.fixture(scope="module")
def berlin_keys():
    return pd.read_csv(BERLIN / "lor_2021_plr_schluessel.csv", dtype=str, encoding="utf-8-sig")


@pytest.fixture(scope="module")
def berlin_pop():
    return pd.read_csv(BERLIN / "einwohner_plr_2022-06.csv", dtype=str, sep=";", encoding="utf-8-sig")


def test_berlin_plr_to_prognoseraum_by_key_table(berlin_keys, berlin_pop):
    res = aggregate_by_key(
        berlin_pop, source_key="PLR-ID", counts=["Gesamt", "unter6"],
        mapping=berlin_keys, mapping_source="Planungsraum (Nummer)", mapping_target="Prognoseraum (Nummer)",
    )
    f = res.frame
    assert len(f) == 58
    assert f["key"].str.len().eq(4).all() and f["key"].iloc[0] == "0110"
    assert f["n_sources"].sum() == 542
    total = _num(berlin_pop["Gesamt"]).sum()
    assert f["Gesamt"].sum() == total
    # independent check of one Prognoseraum
    mask = berlin_pop["PLR-ID"].str.startswith("0110")
    assert f.set_index("key").loc["0110", "Gesamt"] == _num(berlin_pop.loc[mask, "Gesamt"]).sum()
    # suppressed values ('–') are missing, not zero, and reported
    assert res.unmatched == []
    assert res.missing["Gesamt"].sum() == 2 and res.missing["unter6"].sum() == 4
    assert any("'unter6': 4 von 542" in n.message for n in res.notes)


def test_berlin_prefix_equals_key_table(berlin_keys, berlin_pop):
    a = aggregate_by_key(berlin_pop, source_key="PLR-ID", counts=["Gesamt", "18-27"], prefix_len=4)
    b = aggregate_by_key(
        berlin_pop, source_key="PLR-ID", counts=["Gesamt", "18-27"], mapping=berlin_keys,
        mapping_source="Planungsraum (Nummer)", mapping_target="Prognoseraum (Nummer)",
    )
    pd.testing.assert_frame_equal(a.frame, b.frame)


def test_berlin_mss_shares_weighted_by_population(berlin_keys):
    mss = pd.read_csv(BERLIN / "mss_2021_index_indikatoren.csv", dtype=str)
    res = aggregate_by_key(
        mss, source_key="PLR_ID", counts=["EW"], shares={"S1": "EW", "S2": "EW"}, prefix_len=4,
    )
    f = res.frame.set_index("key")
    # hand computation for one Prognoseraum
    sub = mss[mss["PLR_ID"].str.startswith("0110")]
    ew, s1 = _num(sub["EW"]), _num(sub["S1"])
    ok = ew.notna() & s1.notna()
    assert f.loc["0110", "S1"] == pytest.approx((s1[ok] * ew[ok]).sum() / ew[ok].sum(), rel=1e-12)
    # S2 is suppressed in almost every Planungsraum: low coverage, counted as missing
    assert res.missing["S2"].sum() == 536
    assert (res.coverage.set_index("key")["S1"] == 1.0).sum() >= 57
    assert res.coverage["S2"].max() < 1
    # one missing EW: reported, sum from the remaining rows
    assert res.missing["EW"].sum() == 1
    assert any("'EW'" in n.message for n in res.notes)


def test_missing_count_is_not_zero():
    t = pd.DataFrame({"id": ["0101", "0102", "0201", "0202"], "n": [5.0, np.nan, np.nan, np.nan], "p": [10.0, 20.0, 30.0, 40.0]})
    res = aggregate_by_key(t, source_key="id", counts=["n"], shares={"p": "n"}, prefix_len=2)
    f = res.frame.set_index("key")
    assert f.loc["01", "n"] == 5 and np.isnan(f.loc["02", "n"])
    assert res.missing.set_index("key")["n"].tolist() == [1, 2]
    assert f.loc["01", "p"] == 10.0 and np.isnan(f.loc["02", "p"])
    assert res.coverage.set_index("key").loc["01", "p"] == 1.0


def test_unmatched_source_key_is_error_unless_allowed(berlin_keys, berlin_pop):
    pop = berlin_pop.copy()
    pop.loc[0, "PLR-ID"] = "99999999"
    kw = dict(source_key="PLR-ID", counts=["Gesamt"], mapping=berlin_keys,
              mapping_source="Planungsraum (Nummer)", mapping_target="Prognoseraum (Nummer)")
    with pytest.raises(GeoplanError) as e:
        aggregate_by_key(pop, **kw)
    assert "99999999" in e.value.found
    res = aggregate_by_key(pop, allow_unmatched=True, **kw)
    assert res.unmatched == ["99999999"]
    assert res.frame["n_sources"].sum() == 541
    assert res.frame["Gesamt"].sum() == _num(pop["Gesamt"]).sum() - int(pop.loc[0, "Gesamt"])
    # the emptied target is still listed, with NaN instead of a made-up zero
    assert len(res.frame) == 58


def test_bad_inputs():
    t = pd.DataFrame({"id": ["01", "01"], "n": [1, 2]})
    with pytest.raises(GeoplanError, match="Doppelte"):
        aggregate_by_key(t, source_key="id", counts=["n"], prefix_len=1)
    t = pd.DataFrame({"id": [101, 102], "n": [1, 2]})
    with pytest.raises(GeoplanError, match="Text"):
        aggregate_by_key(t, source_key="id", counts=["n"], prefix_len=1)
    t = pd.DataFrame({"id": ["01", "02"], "n": ["1", "zwei"]})
    with pytest.raises(GeoplanError) as e:
        aggregate_by_key(t, source_key="id", counts=["n"], prefix_len=1)
    assert e.value.location.startswith("Zeile 2")
    with pytest.raises(GeoplanError, match="genau eines"):
        aggregate_by_key(t, source_key="id", counts=["n"])
    m = pd.DataFrame({"s": ["01", "01"], "t": ["A", "B"]})
    with pytest.raises(GeoplanError, match="mehreren"):
        aggregate_by_key(pd.DataFrame({"id": ["01"], "n": [1]}), source_key="id", counts=["n"],
                         mapping=m, mapping_source="s", mapping_target="t")


# ---------------------------------------------------------------- areal interpolation


def _jittered_grid(nx, ny, size, seed, value_seed=None):
    """Polygons of a jittered grid (irregular quadrilaterals tiling a rectangle)."""
    rng = np.random.default_rng(seed)
    xs = np.arange(nx + 1) * size
    ys = np.arange(ny + 1) * size
    X, Y = np.meshgrid(xs, ys)
    jx = rng.uniform(-0.3, 0.3, X.shape) * size
    jy = rng.uniform(-0.3, 0.3, Y.shape) * size
    jx[:, [0, -1]] = 0
    jy[[0, -1], :] = 0
    X, Y = X + jx + 390000, Y + jy + 5810000
    polys = [
        shapely.Polygon([(X[j, i], Y[j, i]), (X[j, i + 1], Y[j, i + 1]), (X[j + 1, i + 1], Y[j + 1, i + 1]), (X[j + 1, i], Y[j + 1, i])])
        for j in range(ny) for i in range(nx)
    ]
    vr = np.random.default_rng(value_seed if value_seed is not None else seed + 1)
    return gpd.GeoDataFrame(
        {"pop": vr.integers(0, 5000, len(polys)).astype(float), "rate": vr.uniform(0, 40, len(polys))},
        geometry=polys, crs=CRS,
    )


@pytest.fixture(scope="module")
def layers():
    src = _jittered_grid(30, 20, 100.0, 1)
    # target: fewer, larger cells, shifted so some sources stick out of the target union
    tgt = _jittered_grid(7, 5, 420.0, 2)
    tgt["geometry"] = tgt.geometry.translate(-130, -90)
    return src, tgt


def _tobler(src, tgt, **kw):
    from tobler.area_weighted import area_interpolate as tai
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tai(src, tgt, **kw)


@pytest.mark.parametrize("allocate_total", [True, False])
def test_equals_tobler(layers, allocate_total):
    src, tgt = layers
    ours = area_interpolate(src, tgt, extensive=["pop"], intensive=["rate"], allocate_total=allocate_total)
    # tobler with its own (float32) intersection table: agreement limited by float32
    theirs = _tobler(src, tgt, extensive_variables=["pop"], intensive_variables=["rate"], allocate_total=allocate_total)
    np.testing.assert_allclose(ours["pop"], theirs["pop"], rtol=1e-6)
    np.testing.assert_allclose(ours["rate"], theirs["rate"], rtol=1e-6)
    # tobler's formulas on an exact float64 table built by geopandas.overlay: 1e-9
    ov = gpd.overlay(src.reset_index(names="i"), tgt.drop(columns=["pop", "rate"]).reset_index(names="j"), how="intersection", keep_geom_type=True)
    from scipy.sparse import csr_matrix
    table = csr_matrix((ov.area.to_numpy(), (ov["i"], ov["j"])), shape=(len(src), len(tgt)))
    exact = _tobler(src, tgt, extensive_variables=["pop"], intensive_variables=["rate"], allocate_total=allocate_total, table=table)
    np.testing.assert_allclose(ours["pop"], exact["pop"], rtol=1e-9, atol=0)
    np.testing.assert_allclose(ours["rate"], exact["rate"], rtol=1e-9, atol=0)
    assert ours.index.equals(tgt.index) and ours.crs == tgt.crs
    if allocate_total:
        # the total of every source that overlaps a target is preserved
        hit = src.intersection(tgt.union_all()).area > 0
        assert ours["pop"].sum() == pytest.approx(src.loc[hit, "pop"].sum(), rel=1e-12)
        assert (~hit).any()
    else:
        assert ours["pop"].sum() < src["pop"].sum()


def test_intersection_table_nested_and_partial():
    src = gpd.GeoSeries([box(0, 0, 1, 1), box(1, 0, 2, 1), box(0.5, 1, 1.5, 2)], crs=CRS)
    tgt = gpd.GeoSeries([box(0, 0, 2, 1.5), box(0, 1.5, 2, 3)], crs=CRS)
    A = intersection_table(src.values, tgt.values).toarray()
    np.testing.assert_allclose(A, [[1, 0], [1, 0], [0.5, 0.5]])


def test_hand_computed_small_case():
    # two sources split by a target edge at x = 1.5
    src = gpd.GeoDataFrame({"n": [100.0, 40.0], "r": [10.0, 20.0]}, geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)], crs=CRS)
    tgt = gpd.GeoDataFrame(geometry=[box(0, 0, 1.5, 1), box(1.5, 0, 3, 1)], crs=CRS)
    out = area_interpolate(src, tgt, extensive=["n"], intensive=["r"])
    np.testing.assert_allclose(out["n"], [120.0, 20.0])
    np.testing.assert_allclose(out["r"], [(10 * 1 + 20 * 0.5) / 1.5, 20.0])


def test_missing_values_are_not_zero():
    src = gpd.GeoDataFrame({"n": [100.0, np.nan], "r": [10.0, np.nan]}, geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)], crs=CRS)
    tgt = gpd.GeoDataFrame(geometry=[box(0, 0, 1.5, 1), box(1.5, 0, 3, 1)], crs=CRS)
    out = area_interpolate(src, tgt, extensive=["n"], intensive=["r"])
    assert out["n"].iloc[0] == 100.0 and np.isnan(out["n"].iloc[1])
    assert out["r"].iloc[0] == 10.0 and np.isnan(out["r"].iloc[1])
    assert len(out.attrs["notes"]) == 2


def test_crs_checks(layers):
    src, tgt = layers
    with pytest.raises(GeoplanError, match="verschiedene"):
        area_interpolate(src, tgt.to_crs("EPSG:25832"), extensive=["pop"])
    with pytest.raises(GeoplanError, match="projiziert"):
        area_interpolate(src.to_crs(4326), tgt.to_crs(4326), extensive=["pop"])
    with pytest.raises(GeoplanError, match="fehlt"):
        area_interpolate(src, tgt, extensive=["nope"])


def test_inputs_not_modified(layers):
    src, tgt = layers
    s0, t0 = src.copy(), tgt.copy()
    area_interpolate(src, tgt, extensive=["pop"], intensive=["rate"])
    pd.testing.assert_frame_equal(src, s0)
    pd.testing.assert_frame_equal(tgt, t0)


# ---------------------------------------------------------------- dasymetric


X0, Y0 = 390000.0, 5810000.0


def _b(x0, x1, y0=0.0, y1=1.0, s=100.0):
    """A box in a local 100 m frame (x, y in units of 100 m)."""
    return box(X0 + x0 * s, Y0 + y0 * s, X0 + x1 * s, Y0 + y1 * s)


@pytest.fixture
def two_sources():
    src = gpd.GeoDataFrame({"n": [100.0, 60.0], "r": [10.0, 20.0]}, geometry=[_b(0, 2), _b(2, 4)], crs=CRS)
    tgt = gpd.GeoDataFrame(geometry=[_b(0, 1.5), _b(1.5, 4)], crs=CRS)
    return src, tgt


def test_dasymetric_raster_weights(two_sources, tmp_path):
    import rasterio
    from rasterio.transform import from_origin
    src, tgt = two_sources
    path = tmp_path / "pop.tif"
    with rasterio.open(path, "w", driver="GTiff", height=1, width=4, count=1, dtype="float32", crs=CRS,
                       transform=from_origin(X0, Y0 + 100, 100, 100), nodata=-1) as dst:
        dst.write(np.array([[4, 2, 1, 3]], dtype="float32"), 1)
    out = area_interpolate(src, tgt, extensive=["n"], intensive=["r"], weights=path)
    # source 1: piece in target 1 holds 4 + 2·0.5 = 5 residents, piece in target 2 holds 1
    np.testing.assert_allclose(out["n"], [100 * 5 / 6, 100 / 6 + 60])
    np.testing.assert_allclose(out["r"], [10.0, (10 * 1 + 20 * 4) / 5])
    # area weighting would give 75 / 85: the raster moves residents
    plain = area_interpolate(src, tgt, extensive=["n"])
    np.testing.assert_allclose(plain["n"], [75.0, 85.0])


def test_dasymetric_raster_in_other_crs(two_sources, tmp_path):
    import rasterio
    from rasterio.transform import from_origin
    src, tgt = two_sources
    # a fine raster with uniform values: dasymetric must reduce to area weighting
    path = tmp_path / "u.tif"
    b = src.to_crs(3035).total_bounds
    with rasterio.open(path, "w", driver="GTiff", height=60, width=120, count=1, dtype="float32", crs="EPSG:3035",
                       transform=from_origin(b[0] - 50, b[3] + 50, (b[2] - b[0] + 100) / 120, (b[3] - b[1] + 100) / 60)) as dst:
        dst.write(np.ones((60, 120), dtype="float32"), 1)
    out = area_interpolate(src, tgt, extensive=["n"], weights=path)
    np.testing.assert_allclose(out["n"], [75.0, 85.0], rtol=1e-6)
    assert any("umprojiziert" in n.message for n in out.attrs["notes"])


def test_dasymetric_land_use_polygons(two_sources):
    src, tgt = two_sources
    tgt = gpd.GeoDataFrame(geometry=[_b(0, 1), _b(1, 4)], crs=CRS)
    lu = gpd.GeoDataFrame({"ew": [30.0, 10.0]}, geometry=[_b(0, 0.5), _b(1, 2)], crs=CRS)
    # binary: residential area 0.5 in target 1, 1.0 in target 2; source 2 has none -> area fallback
    out = area_interpolate(src, tgt, extensive=["n"], weights=lu)
    np.testing.assert_allclose(out["n"], [100 / 3, 200 / 3 + 60])
    assert any("ohne Gewicht" in n.message for n in out.attrs["notes"])
    # amounts per land-use polygon: 30 residents vs 10
    out = area_interpolate(src, tgt, extensive=["n"], intensive=["r"], weights=lu, weights_column="ew")
    np.testing.assert_allclose(out["n"], [75.0, 85.0])
    # target 2: source 1 weight 10 residents; source 2 falls back to its area (2 · 100 m · 100 m) in
    # weight units: × the mean density of source 1 (40 residents / 20,000 m²) = 40 residents, not 20,000 m²
    np.testing.assert_allclose(out["r"], [10.0, (10 * 10 + 20 * 40) / (10 + 40)])
    # allocate_total=False: a source's land use outside every target is lost
    small = gpd.GeoDataFrame(geometry=[_b(0, 1)], crs=CRS)
    lost = area_interpolate(src, small, extensive=["n"], weights=lu, weights_column="ew", allocate_total=False)
    np.testing.assert_allclose(lost["n"], [75.0])
    kept = area_interpolate(src, small, extensive=["n"], weights=lu, weights_column="ew")
    np.testing.assert_allclose(kept["n"], [100.0])


def test_dasymetric_bad_weights(two_sources):
    src, tgt = two_sources
    lu = gpd.GeoDataFrame({"ew": [-1.0]}, geometry=[_b(0, 1)], crs=CRS)
    with pytest.raises(GeoplanError, match="negative"):
        area_interpolate(src, tgt, extensive=["n"], weights=lu, weights_column="ew")
    with pytest.raises(GeoplanError, match="fehlt"):
        area_interpolate(src, tgt, extensive=["n"], weights=lu, weights_column="nope")
    with pytest.raises(GeoplanError, match="verschiedene"):
        area_interpolate(src, tgt, extensive=["n"], weights=lu.to_crs(3035))
    with pytest.raises(GeoplanError, match="Unbekannte"):
        area_interpolate(src, tgt, extensive=["n"], weights=42)


def test_pair_areas_convex_clipping_and_geos_fallback():
    from geoplan.stages.interpolate import _pair_areas
    rng = np.random.default_rng(5)
    centers = rng.uniform(0, 1000, (300, 2)) + [390000, 5810000]
    convex = shapely.convex_hull(shapely.multipoints([c + rng.normal(0, 60, (8, 2)) for c in centers]))
    concave = np.array([
        shapely.Polygon([(x, y), (x + 150, y), (x + 150, y + 150), (x + 75, y + 40), (x, y + 150)]) for x, y in centers
    ])
    holed = shapely.difference(shapely.buffer(shapely.points(centers), 90), shapely.buffer(shapely.points(centers), 30))
    multi = np.array([shapely.MultiPolygon([shapely.box(x, y, x + 50, y + 50), shapely.box(x + 70, y, x + 120, y + 50)]) for x, y in centers])
    a = np.concatenate([convex, concave, holed, multi])
    b = np.concatenate([concave, convex, convex, concave])  # same centres: the pairs overlap
    i = np.arange(1200)
    got = _pair_areas(a, b, i, i)
    want = shapely.area(shapely.intersection(a, b))
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-6)  # 1e-6 m² for near-empty slivers
    assert (want > 0).sum() > 1000


def test_concave_targets_equal_overlay():
    src = _jittered_grid(12, 10, 100.0, 7)
    L = [shapely.Polygon([(0, 0), (600, 0), (600, 250), (250, 250), (250, 600), (0, 600)]),
         shapely.Polygon([(600, 0), (1200, 0), (1200, 1000), (250, 1000), (250, 600), (250, 250), (600, 250)]),
         shapely.Polygon([(0, 600), (250, 600), (250, 1000), (0, 1000)])]
    tgt = gpd.GeoDataFrame(geometry=[shapely.affinity.translate(p, 390000, 5810000) for p in L], crs=CRS)
    out = area_interpolate(src, tgt, extensive=["pop"], intensive=["rate"])
    ov = gpd.overlay(src.reset_index(names="i"), tgt.reset_index(names="j"), how="intersection")
    exp = (ov["pop"] * ov.area / src.area.to_numpy()[ov["i"]]).groupby(ov["j"]).sum()
    np.testing.assert_allclose(out["pop"], exp.to_numpy(), rtol=1e-9)
    assert out["pop"].sum() == pytest.approx(src["pop"].sum(), rel=1e-12)


def test_threads_do_not_change_results(layers):
    src, tgt = layers
    warped = src.copy()
    warped["geometry"] = shapely.segmentize(src.geometry.values, 20.0)
    warped["geometry"] = shapely.transform(warped.geometry.values, lambda xy: xy + 15 * np.sin(xy[:, ::-1] / 97.0))
    a = area_interpolate(warped, tgt, extensive=["pop"], intensive=["rate"], n_jobs=1)
    b = area_interpolate(warped, tgt, extensive=["pop"], intensive=["rate"], n_jobs=3)
    pd.testing.assert_frame_equal(a, b)
    A1 = intersection_table(warped.geometry.values, tgt.geometry.values, n_jobs=1)
    A3 = intersection_table(warped.geometry.values, tgt.geometry.values, n_jobs=3)
    assert (A1 != A3).nnz == 0


def test_berlin_prognoseraeume_to_bezirke_matches_key_aggregation(berlin_pop):
    boundaries = ROOT / "boundaries" / "berlin"
    pr = gpd.read_file(boundaries / "prognoseraeume_2021.geojson")
    bez = gpd.read_file(boundaries / "bezirke.geojson")
    by_pr = aggregate_by_key(berlin_pop, source_key="PLR-ID", counts=["Gesamt"], prefix_len=4).frame
    by_bez = aggregate_by_key(berlin_pop, source_key="PLR-ID", counts=["Gesamt"], prefix_len=2).frame
    src = pr.merge(by_pr, left_on="id", right_on="key")
    assert len(src) == 58
    out = area_interpolate(src, bez, extensive=["Gesamt"])
    got = pd.Series(out["Gesamt"].to_numpy(), index=bez["id"].to_numpy())
    want = by_bez.set_index("key")["Gesamt"]
    # the layers nest; only digitising slivers between them move residents
    np.testing.assert_allclose(got[want.index], want, rtol=1e-5)
