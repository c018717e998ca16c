"""Tests for geoplan.load.raster: exact zonal statistics and the Zensus grid import."""

import numpy as np
import geopandas as gpd
import pandas as pd
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin

from geoplan.errors import GeoplanError
from geoplan.load.raster import coverage_fraction, zensus_grid_to_geotiff, zensus_zonal_sum, zonal_stats

CRS = "EPSG:25833"
NODATA = -1.0


@pytest.fixture(scope="module")
def raster(tmp_path_factory):
    rng = np.random.default_rng(0)
    data = rng.uniform(0, 10, (300, 400)).astype("float32")
    data[5:20, 5:30] = NODATA
    path = tmp_path_factory.mktemp("r") / "pop.tif"
    with rasterio.open(path, "w", driver="GTiff", height=300, width=400, count=1, dtype="float32", crs=CRS,
                       transform=from_origin(390000, 5820000, 10, 10), nodata=NODATA, tiled=True,
                       blockxsize=64, blockysize=64) as dst:
        dst.write(data, 1)
    return path, data


@pytest.fixture(scope="module")
def zones():
    rng = np.random.default_rng(1)
    pts = shapely.points(np.c_[rng.uniform(389950, 394050, 25), rng.uniform(5816950, 5820050, 25)])
    polys = [shapely.buffer(p, r, quad_segs=5) for p, r in zip(pts, rng.uniform(20, 500, 25))]
    polys[0] = shapely.difference(polys[0], shapely.buffer(pts[0], polys[0].area ** 0.5 / 5))  # with a hole
    polys.append(shapely.box(390000.3, 5817000, 390123.7, 5817777.7))  # edges off the pixel grid
    polys.append(shapely.MultiPolygon([shapely.box(390500, 5818000, 390600, 5818100),
                                       shapely.box(390700, 5818000, 390755, 5818105)]))
    polys.append(shapely.box(390050, 5819750, 390250, 5819950))  # inside the nodata block partly
    polys.append(shapely.box(400000, 5800000, 400100, 5800100))  # outside the raster
    return gpd.GeoDataFrame({"key": [f"{i:03d}" for i in range(len(polys))]}, geometry=polys, crs=CRS)


def _brute_coverage(geom, transform, h, w):
    """Reference: intersect every pixel box with the polygon."""
    xs = transform.c + transform.a * np.arange(w)
    ys = transform.f + transform.e * np.arange(h)
    X, Y = np.meshgrid(xs, ys)
    boxes = shapely.box(X, Y + transform.e, X + transform.a, Y)
    return shapely.area(shapely.intersection(boxes, geom)) / (transform.a * -transform.e)


@pytest.mark.parametrize("geom", [
    shapely.box(0.25, 0.25, 2.5, 1.5),
    shapely.Polygon([(0.1, 0.1), (4.9, 0.3), (2.2, 3.7)]),
    shapely.box(-1, -1, 2.5, 9).difference(shapely.box(0.5, 0.5, 1.5, 1.5)),
    shapely.buffer(shapely.Point(2.5, 2.5), 2.2, quad_segs=7),
])
def test_coverage_fraction_exact(geom):
    t = from_origin(0, 5, 1, 1)
    cov = coverage_fraction(geom, t, 5, 5)
    np.testing.assert_allclose(cov, _brute_coverage(geom, t, 5, 5), atol=1e-12)


def test_equals_exactextract(raster, zones):
    from exactextract import exact_extract
    path, _ = raster
    ours = zonal_stats(path, zones, stats=("sum", "mean", "count", "min", "max"))
    ee = exact_extract(str(path), zones, ["sum", "mean", "count", "min", "max"], include_cols=["key"], output="pandas")
    assert list(ours["key"]) == list(ee["key"])
    # exactextract itself deviates from the exact pixel-box areas by up to ~3e-9
    # (measured on the off-grid box); ours match brute force to 1e-12 (below)
    for c in ("sum", "mean", "count", "min", "max"):
        np.testing.assert_allclose(ours[c], ee[c], rtol=1e-8, atol=1e-9, equal_nan=True)
    assert ours["count"].iloc[-1] == 0 and ours["sum"].iloc[-1] == 0 and np.isnan(ours["mean"].iloc[-1])
    assert any("ohne gültige" in n.message for n in ours.attrs["notes"])


def test_sum_equals_brute_force_and_respects_nodata(raster, zones):
    path, data = raster
    ours = zonal_stats(path, zones, stats=("sum", "count"))
    t = from_origin(390000, 5820000, 10, 10)
    for i in (0, 25, 26, 27):  # hole, off-grid box, multipolygon, partly nodata
        cov = _brute_coverage(zones.geometry.iloc[i], t, 300, 400)
        valid = data != NODATA
        assert ours["sum"].iloc[i] == pytest.approx(float((cov * np.where(valid, data, 0)).sum()), rel=1e-10)
        assert ours["count"].iloc[i] == pytest.approx(float((cov * valid).sum()), rel=1e-10)


def test_center_mode_equals_rasterstats(raster, zones):
    from rasterstats import zonal_stats as rs_zonal
    path, _ = raster
    ours = zonal_stats(path, zones.iloc[:-1], stats=("sum", "count"), partial=False)
    rs = pd.DataFrame(rs_zonal(zones.iloc[:-1], str(path), stats=["sum", "count"], nodata=NODATA))
    np.testing.assert_allclose(ours["sum"], rs["sum"].fillna(0), rtol=1e-5)  # rasterstats sums in float32
    np.testing.assert_array_equal(ours["count"], rs["count"])


def test_reprojected_zones_with_note(raster, zones):
    path, _ = raster
    a = zonal_stats(path, zones.iloc[1:5])
    b = zonal_stats(path, zones.iloc[1:5].to_crs("EPSG:3035"))
    np.testing.assert_allclose(a["sum"], b["sum"], rtol=1e-3)  # edges reprojected twice: not identical
    assert any("umprojiziert" in n.message for n in b.attrs["notes"])
    assert not a.attrs["notes"]


def test_windowed_strips_give_same_result(raster, zones, monkeypatch):
    import geoplan.load.raster as r
    path, _ = raster
    whole = zonal_stats(path, zones)
    monkeypatch.setattr(r, "_MAX_PIXELS", 500)  # forces many row strips per zone
    strips = zonal_stats(path, zones)
    np.testing.assert_allclose(strips["sum"], whole["sum"], rtol=1e-12)
    np.testing.assert_allclose(strips["count"], whole["count"], rtol=1e-12)


def test_bad_arguments(raster, zones, tmp_path):
    path, _ = raster
    with pytest.raises(GeoplanError, match="Unbekannte"):
        zonal_stats(path, zones, stats=("median",))
    with pytest.raises(GeoplanError, match="nicht gefunden"):
        zonal_stats(tmp_path / "nope.tif", zones)
    with pytest.raises(GeoplanError, match="Band"):
        zonal_stats(path, zones, band=2)


# ---------------------------------------------------------------- Zensus grid


def _zensus_csv(path, rows, header="GITTER_ID_100m;x_mp_100m;y_mp_100m;Einwohner", encoding="utf-8-sig"):
    path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding=encoding)
    return path


def _cell(n, e, v, res=100):
    return f"CRS3035RES{res}mN{n}E{e};{e + res // 2};{n + res // 2};{v}"


def test_zensus_grid_to_geotiff(tmp_path):
    rows = [_cell(2691700, 4341100, 12), _cell(2691700, 4341200, "–"), _cell(2691900, 4341400, 7),
            _cell(2691800, 4341100, "3,5"), _cell(2691800, 4341300, "")]
    csv = _zensus_csv(tmp_path / "z.csv", rows)
    out = zensus_grid_to_geotiff(csv, tmp_path / "z.tif", value_column="Einwohner")
    with rasterio.open(out) as src:
        assert src.crs.to_epsg() == 3035
        assert (src.width, src.height) == (4, 3)
        assert src.bounds == (4341100, 2691700, 4341500, 2692000)
        a = src.read(1, masked=True)
    # lower-left corner N2691700 E4341100 -> bottom row, first column
    assert a[2, 0] == 12 and a[0, 3] == 7 and a[1, 0] == 3.5
    assert a.mask[2, 1] and a.mask[1, 2] and a.mask[0, 0]
    assert a.count() == 3


def test_zensus_1km_and_zonal_sum(tmp_path):
    rows = [_cell(2690000, 4340000, 100, 1000), _cell(2690000, 4341000, 50, 1000), _cell(2691000, 4340000, "–", 1000)]
    csv = _zensus_csv(tmp_path / "z1km.csv", rows, header="GITTER_ID_1km;x_mp_1km;y_mp_1km;Einwohner")
    zones = gpd.GeoDataFrame(
        {"key": ["a", "b"]},
        geometry=[shapely.box(4340000, 2690000, 4340500, 2691000), shapely.box(4340500, 2690000, 4342000, 2692000)],
        crs="EPSG:3035",
    )
    res = zensus_zonal_sum(csv, zones, value_column="Einwohner")
    assert list(res.columns) == ["key", "Einwohner", "n_cells"]
    np.testing.assert_allclose(res["Einwohner"], [50.0, 100.0])
    np.testing.assert_allclose(res["n_cells"], [0.5, 1.5])
    assert any("gesperrt" in n.message for n in res.attrs["notes"])
    # the same in the project CRS (zones reprojected to EPSG:3035, note)
    res2 = zensus_zonal_sum(csv, zones.to_crs(CRS), value_column="Einwohner")
    np.testing.assert_allclose(res2["Einwohner"], [50.0, 100.0], rtol=1e-6)


def test_zensus_sum_equals_exactextract(tmp_path):
    from exactextract import exact_extract
    rng = np.random.default_rng(3)
    rows = [_cell(2691000 + 100 * r, 4341000 + 100 * c, int(rng.integers(0, 60))) for r in range(30) for c in range(30)]
    csv = _zensus_csv(tmp_path / "z.csv", rows)
    tif = zensus_grid_to_geotiff(csv, tmp_path / "z.tif", value_column="Einwohner")
    zones = gpd.GeoDataFrame({"key": ["1", "2"]}, geometry=[
        shapely.buffer(shapely.Point(4342000, 2692000), 777.7, quad_segs=9),
        shapely.Polygon([(4341050, 2691033), (4343900, 2691500), (4342222, 2693950)])], crs="EPSG:3035")
    ours = zensus_zonal_sum(csv, zones, value_column="Einwohner")
    ee = exact_extract(str(tif), zones, ["sum"], output="pandas")
    np.testing.assert_allclose(ours["Einwohner"], ee["sum"], rtol=1e-8)


@pytest.mark.parametrize("bad_id", ["CRS3035RES100mN2691700", "CRS3035RES100N2691700E4341100", "RES100mN1E2", "4341100"])
def test_zensus_malformed_id_reports_row(tmp_path, bad_id):
    rows = [_cell(2691700, 4341100, 1), _cell(2691800, 4341100, 2), f"{bad_id};0;0;5"]
    csv = _zensus_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(GeoplanError) as e:
        zensus_grid_to_geotiff(csv, tmp_path / "bad.tif", value_column="Einwohner")
    assert e.value.location.startswith("Zeile 4") and bad_id in e.value.found


def test_zensus_other_errors(tmp_path):
    mixed = _zensus_csv(tmp_path / "m.csv", [_cell(2691700, 4341100, 1), _cell(2690000, 4340000, 1, 1000)])
    with pytest.raises(GeoplanError, match="Auflösung"):
        zensus_grid_to_geotiff(mixed, tmp_path / "m.tif", value_column="Einwohner")
    dup = _zensus_csv(tmp_path / "d.csv", [_cell(2691700, 4341100, 1), _cell(2691700, 4341100, 2)])
    with pytest.raises(GeoplanError, match="doppelt"):
        zensus_grid_to_geotiff(dup, tmp_path / "d.tif", value_column="Einwohner")
    txt = _zensus_csv(tmp_path / "t.csv", [_cell(2691700, 4341100, "viele")])
    with pytest.raises(GeoplanError, match="keine Zahl"):
        zensus_grid_to_geotiff(txt, tmp_path / "t.tif", value_column="Einwohner")
    with pytest.raises(GeoplanError, match="fehlt"):
        zensus_grid_to_geotiff(txt, tmp_path / "t.tif", value_column="Frauen")


def test_center_mask_equals_rasterio_geometry_mask():
    from rasterio.features import geometry_mask
    from geoplan.load.raster import center_mask
    rng = np.random.default_rng(11)
    t = from_origin(1000.0, 2000.0, 10.0, 10.0)
    for k in range(20):
        c = rng.uniform(1000, 1400, 2)
        g = shapely.buffer(shapely.Point(*c), rng.uniform(15, 150), quad_segs=int(rng.integers(2, 9)))
        if k % 3 == 0:
            g = g.difference(shapely.buffer(shapely.Point(*c), 12.3))  # hole
        if k % 4 == 0:
            g = shapely.affinity.rotate(shapely.box(c[0] - 90, 1950 - 60, c[0] + 7.7, 1950 + 33.3), 17)
        want = geometry_mask([g], out_shape=(40, 45), transform=t, invert=True)
        got = center_mask(g, t, 40, 45)
        np.testing.assert_array_equal(got.astype(bool), want)


def test_coverage_of_collection_ignores_lines():
    t = from_origin(0, 5, 1, 1)
    poly = shapely.box(0.5, 0.5, 3.5, 2.5)
    gc = shapely.GeometryCollection([poly, shapely.LineString([(0, 4), (5, 4)]), shapely.Point(1, 1)])
    np.testing.assert_allclose(coverage_fraction(gc, t, 5, 5), coverage_fraction(poly, t, 5, 5))
    assert coverage_fraction(poly, t, 5, 5).sum() == pytest.approx(6.0)


def test_threads_do_not_change_results(raster, zones):
    path, _ = raster
    many = pd.concat([zones] * 3, ignore_index=True)
    a = zonal_stats(path, many, stats=("sum", "count", "min", "max"), n_jobs=1)
    b = zonal_stats(path, many, stats=("sum", "count", "min", "max"), n_jobs=3)
    pd.testing.assert_frame_equal(a, b)


def test_scale_and_offset_applied(tmp_path):
    path = tmp_path / "packed.tif"
    with rasterio.open(path, "w", driver="GTiff", height=4, width=4, count=1, dtype="int16", crs=CRS,
                       transform=from_origin(0, 40, 10, 10), nodata=-1) as dst:
        dst.write(np.array([[10, 20, 30, -1]] * 4, dtype="int16"), 1)
        dst.scales = (0.5,)
        dst.offsets = (1.0,)
    z = gpd.GeoDataFrame({"key": ["a"]}, geometry=[shapely.box(0, 0, 40, 10)], crs=CRS)
    res = zonal_stats(path, z, stats=("sum", "count", "max"))
    assert res["sum"].iloc[0] == pytest.approx(6 + 11 + 16)
    assert res["count"].iloc[0] == pytest.approx(3) and res["max"].iloc[0] == 16


# ---------------------------------------------------------------- Zensus reader: vectorised = regex reference

_REF_ID = __import__("re").compile(r"^CRS(?P<epsg>\d+)RES(?P<res>\d+)mN(?P<n>\d+)E(?P<e>\d+)$")


def _reference_read(path, id_column, value_column):
    """The reader before the national-grid change (whole file as text, regex extract): the reference."""
    from geoplan.load.tables import DEFAULT_NA_MARKERS

    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252")
    import io

    table = pd.read_csv(io.StringIO(text), sep=";", dtype=str, keep_default_na=False)
    table.columns = [c.strip() for c in table.columns]
    ids = table[id_column].str.strip()
    parts = ids.str.extract(_REF_ID)
    assert not parts["epsg"].isna().any()
    val = table[value_column].str.strip()
    missing = val.isin(DEFAULT_NA_MARKERS)
    num = pd.to_numeric(val.mask(missing).str.replace(",", ".", regex=False), errors="coerce")
    assert not (~missing & num.isna()).any()
    out = pd.DataFrame({"n": parts["n"].astype(np.int64), "e": parts["e"].astype(np.int64), "value": num.astype(float)})
    out.attrs["res"] = int(parts["res"].iloc[0])
    out.attrs["n_missing"] = int(missing.sum())
    return out


EDGE_ROWS = [
    "CRS3035RES100mN2691700E4341100;4341150;2691750;12",
    "  CRS3035RES100mN2691700E4341200 ;4341250;2691750; 7 ",  # white space around id and value
    "CRS3035RES100mN2691900E4341400;4341450;2691950;–",      # Zensus suppression dash
    "CRS3035RES100mN2691800E4341100;4341150;2691850;-",
    "CRS3035RES100mN2691800E4341300;4341350;2691850;",
    "CRS3035RES100mN2691800E4341400;4341450;2691850;3,5",    # decimal comma
    "CRS3035RES100mN0002691600E4341100;4341150;2691650;1.25",  # leading zeros, decimal point
    '"CRS3035RES100mN2691600E4341200";4341250;2691650;"4"',    # quoted fields
    "CRS3035RES100mN2691600E4341300;4341350;2691650;k. A.",
    "CRS3035RES100mN2691600E4341400;4341450;2691650;1e3",
]


@pytest.mark.parametrize("chunk", [500_000, 3, 1])
@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8", "cp1252"])
def test_zensus_reader_equals_regex_reference(tmp_path, monkeypatch, chunk, encoding):
    """Chunked, vectorised reader = the whole-file regex reader: headers with spaces, ';', '–', '-', '', commas."""
    import geoplan.load.raster as raster_mod

    monkeypatch.setattr(raster_mod, "_CHUNK_ROWS", chunk)
    header = " GITTER_ID_100m ;x_mp_100m;y_mp_100m; Einwohner "
    csv = _zensus_csv(tmp_path / "edge.csv", EDGE_ROWS, header=header, encoding=encoding)
    ours = raster_mod._read_grid_table(csv, "GITTER_ID_100m", "Einwohner")
    ref = _reference_read(csv, "GITTER_ID_100m", "Einwohner")
    pd.testing.assert_frame_equal(ours, ref)
    assert ours.attrs == ref.attrs == {"res": 100, "n_missing": 4}
    assert ours["value"].tolist()[:2] == [12.0, 7.0] and ours["value"].iloc[5] == 3.5


@pytest.mark.parametrize("chunk", [500_000, 2])
def test_zensus_reader_random_table_equals_reference(tmp_path, monkeypatch, chunk):
    import geoplan.load.raster as raster_mod

    monkeypatch.setattr(raster_mod, "_CHUNK_ROWS", chunk)
    rng = np.random.default_rng(5)
    cells = rng.choice(400 * 400, 700, replace=False)
    vals = rng.integers(0, 90, 700).astype(object)
    vals[rng.random(700) < 0.1] = "–"
    rows = [_cell(2_600_000 + 1000 * (c // 400), 4_000_000 + 1000 * (c % 400), v, 1000) for c, v in zip(cells, vals)]
    csv = _zensus_csv(tmp_path / "r.csv", rows, header="GITTER_ID_1km;x_mp_1km;y_mp_1km;Einwohner")
    ours = raster_mod._read_grid_table(csv, "GITTER_ID_1km", "Einwohner")
    pd.testing.assert_frame_equal(ours, _reference_read(csv, "GITTER_ID_1km", "Einwohner"))
    assert ours.attrs["res"] == 1000


@pytest.mark.parametrize("chunk", [500_000, 2])
def test_zensus_reader_errors_name_the_row_across_chunks(tmp_path, monkeypatch, chunk):
    import geoplan.load.raster as raster_mod

    monkeypatch.setattr(raster_mod, "_CHUNK_ROWS", chunk)
    good = [_cell(2691700 + 100 * i, 4341100, i) for i in range(4)]
    cases = {
        "CRS3035RES100mN26917OOE4341100;0;0;1": ("Ungültige", "Zeile 6"),  # letter O, not zero
        "CRS3035RES100mN2691700E4341100x;0;0;1": ("Ungültige", "Zeile 6"),
        "CRS3035RES100mN" + "9" * 80 + "E1;0;0;1": ("Ungültige", "Zeile 6"),  # far too long
        "CRS3035RES1000mN2691000E4341000;0;0;1": ("Auflösung", "Zeile 6"),
        "CRS3035RES100mN2691700E4341100;0;0;1": ("doppelt", "Zeile 6"),
        "CRS3035RES100mN2699700E4341100;0;0;nan": ("keine Zahl", "Zeile 6"),
        "CRS3035RES100mN2699700E4341100;0;0;1.000,5": ("keine Zahl", "Zeile 6"),
    }
    for row, (message, line) in cases.items():
        csv = _zensus_csv(tmp_path / "e.csv", good + [row])
        with pytest.raises(GeoplanError, match=message) as e:
            raster_mod._read_grid_table(csv, "GITTER_ID_100m", "Einwohner")
        assert e.value.location.startswith(line), (row, e.value.location)
    wrong_crs = _zensus_csv(tmp_path / "c.csv", ["CRS25832RES100mN5800000E400000;0;0;1"])
    with pytest.raises(GeoplanError, match="EPSG:3035"):
        raster_mod._read_grid_table(wrong_crs, "GITTER_ID_100m", "Einwohner")
    empty = _zensus_csv(tmp_path / "leer.csv", [])
    with pytest.raises(GeoplanError, match="keine Zeilen"):
        zensus_grid_to_geotiff(empty, tmp_path / "leer.tif", value_column="Einwohner")
