"""WFS input against a real MapServer (Debian cgi-mapserver) on 127.0.0.1.

The server serves the Berlin Prognoseräume and Planungsraum tables; what
geoplan reads must equal the files, with paging, WFS 2.0.0 and 1.1.0, axis
order in EPSG:4326, and a cache that --offline reuses with the server
stopped. Skips without MapServer/ogr2ogr; GEOPLAN_REQUIRE_WFS=1 fails instead.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pandas as pd
import pytest
import shapely
from gis_services import BERLIN_BOUNDARIES, BERLIN_INDICATORS, free_port, start_wfs

from geoplan.errors import GeoplanError
from geoplan.load.wfs import read_wfs_boundaries, read_wfs_table

from geoplan.load.boundaries import prepare_boundaries, read_boundaries
from geoplan.load.tables import read_table

BOUNDARY_FILE = BERLIN_BOUNDARIES / "prognoseraeume_2021.geojson"


@pytest.fixture(scope="module")
def wfs_data(tmp_path_factory):
    """The GeoPackage the test servers serve, written once for the module (MapServer only reads it)."""
    from gis_services import berlin_wfs_data, require_wfs

    require_wfs()
    return berlin_wfs_data(tmp_path_factory.mktemp("wfs_data"))


@pytest.fixture(scope="module")
def wfs(wfs_data, tmp_path_factory):
    server = start_wfs(tmp_path_factory.mktemp("wfs"), data=wfs_data)
    yield server
    server.stop()


@pytest.fixture
def fresh(wfs):
    """Request log, delay and failure mode reset for each test."""
    wfs.handler.requests = []
    wfs.handler.delay = 0.0
    wfs.handler.fail_status = 0
    yield wfs
    wfs.handler.delay = 0.0
    wfs.handler.fail_status = 0


@functools.cache
def _file_boundaries_once():
    return read_boundaries(BOUNDARY_FILE, key="id", name="name").sort_values("id").reset_index(drop=True)


def _file_boundaries():
    """The boundary file as geoplan reads it (read once per module; each caller gets its own copy)."""
    return _file_boundaries_once().copy()


@functools.cache
def _file_prepared_once():
    return prepare_boundaries(BOUNDARY_FILE, key="id", name="name").gdf.sort_values("key").reset_index(drop=True)


def _hausdorff_at_most(a, b, tol):
    """Per pair of geometries: the Hausdorff distance, or a bound of it when the bound is within ``tol``.

    GEOS's (discrete) Hausdorff distance is the largest distance from a vertex of one geometry to the other
    geometry. Paired vertices (the i-th of one with the i-th of the other, for two geometries with as many
    vertices) bound it: each vertex lies within the pair's distance of a point of the other geometry. Where
    that bound is within ``tol`` the test's condition holds; GEOS's distance (seconds for the Berlin
    polygons) is computed only for the pairs where it is not."""
    n_a, n_b = shapely.get_num_coordinates(a), shapely.get_num_coordinates(b)
    bound = np.full(len(a), np.inf)
    same = (n_a == n_b) & (n_a > 0)
    if same.any():
        ca, cb = shapely.get_coordinates(a[same]), shapely.get_coordinates(b[same])
        d = np.hypot(*(ca - cb).T)
        starts = np.concatenate([[0], np.cumsum(n_a[same])[:-1]])
        bound[same] = np.maximum.reduceat(d, starts)
    slow = ~(bound <= tol)
    bound[slow] = shapely.hausdorff_distance(a[slow], b[slow])
    return bound


def _same_geometries(a, b, tol):
    a = a.sort_values("id").reset_index(drop=True).to_crs(b.crs)
    assert a["id"].tolist() == b["id"].tolist()
    dist = _hausdorff_at_most(a.geometry.to_numpy(), b.geometry.to_numpy(), tol)
    assert np.nanmax(dist) <= tol, np.nanmax(dist)


@pytest.mark.parametrize("version", ["2.0.0", "1.1.0"])
def test_boundaries_equal_file_with_paging(fresh, version, tmp_path):
    gdf = read_wfs_boundaries("WFS:" + fresh.url, "prognoseraeume", key="id", name="name", version=version,
                              page_size=10, cache_dir=tmp_path)
    f = _file_boundaries()
    assert gdf.crs.to_epsg() == 25833 and len(gdf) == 58
    g = gdf.sort_values("id").reset_index(drop=True)
    assert g["id"].tolist() == f["id"].tolist() and g["id"].str.len().eq(4).all()  # '0930' stays text
    assert g["name"].tolist() == f["name"].tolist()
    _same_geometries(gdf, f, 1e-6)
    a = prepare_boundaries("WFS", key="id", name="name", raw=gdf).gdf.sort_values("key").reset_index(drop=True)
    b = _file_prepared_once()
    np.testing.assert_allclose(a["area_km2"], b["area_km2"], rtol=1e-12)
    # paging: 58 features in pages of 10 -> 6 GetFeature requests, plus one DescribeFeatureType
    prov = gdf.attrs["geoplan"]["provenance"]
    assert prov["pages"] == 6 and prov["features"] == 58 and prov["version"] == version and len(prov["sha256"]) == 64
    reqs = [dict(parse_qsl(urlsplit(r).query)) for r in fresh.requests]
    assert [r["REQUEST"] for r in reqs] == ["DescribeFeatureType"] + ["GetFeature"] * 6
    assert [int(r["STARTINDEX"]) for r in reqs[1:]] == [0, 10, 20, 30, 40, 50]
    assert all(urlsplit(r).path == "/wfs" for r in fresh.requests)


def test_server_limit_below_page_size(wfs_data, tmp_path):
    """A server that sends fewer features than asked for (its own limit): WFS 2.0 says more follow
    ('next' link), so geoplan keeps paging instead of stopping at the first short page."""
    server = start_wfs(tmp_path / "wfs", max_features=20, data=wfs_data)
    try:
        gdf = read_wfs_boundaries(server.url, "prognoseraeume", key="id", version="2.0.0", page_size=50)
    finally:
        server.stop()
    prov = gdf.attrs["geoplan"]["provenance"]
    assert len(gdf) == 58 and gdf["id"].is_unique and prov["pages"] == 3 and prov["features"] == 58
    starts = [int(dict(parse_qsl(urlsplit(r).query))["STARTINDEX"]) for r in server.requests if "GetFeature" in r]
    assert starts == [0, 20, 40]


@pytest.mark.parametrize("version", ["2.0.0", "1.1.0"])
def test_axis_order_epsg4326(fresh, version):
    """EPSG:4326 comes latitude first in WFS 1.1/2.0; MapServer's 1.1 answer even labels it 'EPSG:4326'."""
    gdf = read_wfs_boundaries(fresh.url, "prognoseraeume", key="id", name="name", version=version, srs="EPSG:4326")
    assert gdf.crs.to_epsg() == 4326
    minx, miny, maxx, maxy = gdf.total_bounds
    assert 13.0 < minx < maxx < 13.8 and 52.3 < miny < maxy < 52.7  # x is longitude
    _same_geometries(gdf, _file_boundaries(), 0.25)  # 6 decimals of a degree: about 0.1 m
    assert not [n for n in gdf.attrs["geoplan"]["notes"] if "KBS" in n.message]


TABLES = [
    ("einwohner_plr", "einwohner_plr_2022-06.csv", "PLR-ID",
     {"Gesamt": "Gesamt", "unter6": "unter6", "ew_6_15": "6-15", "ew_15_18": "15-18", "ew_18_27": "18-27",
      "ew_27_45": "27-45", "ew_45_55": "45-55", "ew_55_65": "55-65", "ew_65plus": "65undmehr"}, {}),
    ("mss_index", "mss_2021_index_indikatoren.csv", "PLR_ID",
     {c: c for c in ("S1", "S3", "S4", "D1", "D3", "D4")},
     dict(sentinels=(-9999,), valid_column="KOM", valid_values=["gültig"])),
    ("mss_kontext", "mss_2021_kontext_indikatoren.csv", "PLR_ID", {"KI_01": "KI_01", "KI_02": "KI_02"},
     dict(sentinels=(-9999,), valid_column="KOM", valid_values=["gültig"])),
]


@pytest.mark.parametrize("typename,csv,file_key,columns,opts", TABLES, ids=[t[0] for t in TABLES])
def test_tables_equal_file(fresh, typename, csv, file_key, columns, opts):
    w = read_wfs_table(fresh.url, typename, key="PLR_ID", numeric_columns=list(columns), **opts)
    f = read_table(BERLIN_INDICATORS / csv, key=file_key, numeric_columns=list(columns.values()), **opts)
    a = w.frame.set_index("PLR_ID").sort_index()[list(columns)]
    b = f.frame.set_index(file_key).sort_index()[list(columns.values())]
    b.columns = list(columns)
    b.index.name = "PLR_ID"
    assert a.index.tolist() == b.index.tolist() and (a.index.str.len() == 8).all()
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    assert w.dialect["provenance"]["features"] == len(w.frame)


def test_offline_reuses_cache_with_server_stopped(wfs_data, tmp_path):
    server = start_wfs(tmp_path / "wfs", data=wfs_data)
    cache = tmp_path / "ausgabe" / "provenienz" / "wfs"
    try:
        online = read_wfs_boundaries(server.url, "prognoseraeume", key="id", name="name", cache_dir=cache,
                                     page_size=25)
        table = read_wfs_table(server.url, "mss_index", key="PLR_ID", cache_dir=cache, numeric_columns=["S4"])
    finally:
        server.stop()
    n_requests = len(server.requests)
    offline = read_wfs_boundaries(server.url, "prognoseraeume", key="id", name="name", cache_dir=cache,
                                  page_size=25, offline=True)
    table2 = read_wfs_table(server.url, "mss_index", key="PLR_ID", cache_dir=cache, numeric_columns=["S4"],
                            offline=True)
    assert len(server.requests) == n_requests
    pd.testing.assert_frame_equal(pd.DataFrame(offline.drop(columns="geometry")),
                                  pd.DataFrame(online.drop(columns="geometry")))
    assert shapely.equals_exact(offline.geometry.to_numpy(), online.geometry.to_numpy(), 0).all()
    pd.testing.assert_frame_equal(table.frame, table2.frame)
    p_on, p_off = online.attrs["geoplan"]["provenance"], offline.attrs["geoplan"]["provenance"]
    assert p_on["sha256"] == p_off["sha256"] and p_off["source"].startswith("Zwischenspeicher")
    # the cache is described by its own manifest
    folder = cache / p_on["cache"]
    meta = json.loads((folder / "abruf.json").read_text())
    assert meta["sha256"] == p_on["sha256"] and len(meta["pages"]) == 3
    # a changed cache is refused, a missing one explained
    page = folder / meta["pages"][0]
    page.write_bytes(page.read_bytes().replace(b"Zentrum", b"Zentrun"))
    with pytest.raises(GeoplanError) as ei:
        read_wfs_boundaries(server.url, "prognoseraeume", key="id", cache_dir=cache, page_size=25, offline=True)
    assert "verändert" in ei.value.message
    with pytest.raises(GeoplanError) as ei:
        read_wfs_boundaries(server.url, "prognoseraeume", key="id", cache_dir=cache, page_size=99, offline=True)
    assert "--offline" in ei.value.message and "ohne --offline" in ei.value.hint


def _err(fn) -> GeoplanError:
    with pytest.raises(GeoplanError) as ei:
        fn()
    e = ei.value
    assert e.message and e.message_en and e.hint
    return e


def test_server_errors(fresh):
    e = _err(lambda: read_wfs_boundaries(fresh.url, "prognoseraum", key="id"))
    assert "meldet einen Fehler" in e.message and "prognoseraum" in e.found
    fresh.handler.fail_status = 500
    e = _err(lambda: read_wfs_boundaries(fresh.url, "prognoseraeume", key="id"))
    assert "HTTP 500" in e.message and "--offline" in e.hint
    fresh.handler.fail_status = 0
    fresh.handler.delay = 3.0
    e = _err(lambda: read_wfs_boundaries(fresh.url, "prognoseraeume", key="id", timeout=1))
    assert "Zeitüberschreitung" in e.message and "timed out" in e.message_en


def test_connection_refused_and_bad_urls():
    e = _err(lambda: read_wfs_boundaries(f"WFS:http://127.0.0.1:{free_port()}/wfs", "x", key="id"))
    assert "Verbindung abgelehnt" in e.message
    with pytest.raises(GeoplanError) as ei:
        read_wfs_boundaries("WFS:https://nutzer:Geheim-42@gis.example/wfs", "x", key="id")
    assert "Geheim-42" not in ei.value.render("de") + ei.value.render("en")
    with pytest.raises(GeoplanError):
        read_wfs_boundaries("WFS:ftp://gis.example/wfs", "x", key="id")


def test_missing_key_field(fresh):
    e = _err(lambda: read_wfs_boundaries(fresh.url, "prognoseraeume", key="PGR_ID"))
    assert "'PGR_ID'" in e.message and "'id'" in e.found


def test_geoplan_run_wfs_same_budgets_and_offline(wfs_data, demo_outputs, tmp_path, capfd):
    """The run from the files is the session's demo run (tests/conftest.py): examples/berlin.yaml. The runs
    through the WFS are ``geoplan run`` in this process (``main()``, its output captured)."""
    import yaml
    from gis_services import budgets, example_config, geoplan_main

    server = start_wfs(tmp_path / "wfs", data=wfs_data)
    cfg = example_config()
    cfg["output"]["pdf"] = False
    url = "WFS:" + server.url
    cfg["boundaries"] = {"connection": url, "layer": "prognoseraeume", "key": "id", "name": "name", "srs": "EPSG:25833"}
    for t in cfg["indicators"]["tables"]:
        name = Path(t.pop("path")).name
        t["connection"] = url
        if name.startswith("einwohner"):
            t["layer"], t["key"] = "einwohner_plr", "PLR_ID"
            t["columns"] = {"Gesamt": "pop_total", "unter6": "pop_u6", "ew_6_15": "pop_6_15",
                            "ew_15_18": "pop_15_18", "ew_18_27": "pop_18_27", "ew_27_45": "pop_27_45",
                            "ew_45_55": "pop_45_55", "ew_55_65": "pop_55_65", "ew_65plus": "pop_65plus"}
        else:
            t["layer"] = "mss_index" if "index" in name else "mss_kontext"
    (tmp_path / "wfs.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    out = tmp_path / "aus_wfs"
    try:
        r2 = geoplan_main(capfd, "run", str(tmp_path / "wfs.yaml"), "--out", str(out))
    finally:
        server.stop()
    assert r2.returncode == 0, r2.stderr
    want = budgets(demo_outputs)
    assert len(want) == 58
    assert budgets(out) == want
    n = len(server.requests)
    r3 = geoplan_main(capfd, "run", str(tmp_path / "wfs.yaml"), "--out", str(out), "--force", "--offline")
    assert r3.returncode == 0, r3.stderr
    assert len(server.requests) == n and budgets(out) == want
    manifest = (out / "manifest.json").read_text(encoding="utf-8")
    assert "prognoseraeume" in manifest and "sha256" in manifest
