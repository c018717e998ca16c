"""Tests for geoplan.load.boundaries: shipped Berlin layer and broken inputs built here."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import Polygon, box

from geoplan.load.boundaries import (
    check_boundaries,
    detect_dbf_encoding,
    list_layers,
    metric_crs_for,
    prepare_boundaries,
    read_boundaries,
)
from geoplan.errors import GeoplanError

ROOT = Path(__file__).resolve().parents[1]
BERLIN = ROOT / "boundaries" / "berlin" / "prognoseraeume_2021.geojson"

# A 2 x 2 km block of four Sozialräume near Berlin (EPSG:25833, metres).
X0, Y0 = 390000.0, 5810000.0
NAMES = ["Märkisches Viertel", "Straße des 17. Juni – Süd", "Groß Glienicke", "Übersee"]


def grid(crs="EPSG:25833", keys=("0101", "0102", "0201", "0202")):
    geoms = [
        box(X0, Y0, X0 + 1000, Y0 + 1000),
        box(X0 + 1000, Y0, X0 + 2000, Y0 + 1000),
        box(X0, Y0 + 1000, X0 + 1000, Y0 + 2000),
        box(X0 + 1000, Y0 + 1000, X0 + 2000, Y0 + 2000),
    ]
    return gpd.GeoDataFrame({"SR_ID": list(keys), "SR_NAME": NAMES}, geometry=geoms, crs=crs)


def write_shp(gdf, path, encoding, cpg=True, prj=True):
    gdf.to_file(path, engine="pyogrio", encoding=encoding)
    if not cpg:
        path.with_suffix(".cpg").unlink(missing_ok=True)
        # The language-driver byte tells GDAL the code page: clear it, as
        # older ArcView/MapInfo exports do, so only the bytes can tell.
        dbf = path.with_suffix(".dbf")
        raw = bytearray(dbf.read_bytes())
        raw[29] = 0
        dbf.write_bytes(bytes(raw))
    if not prj:
        path.with_suffix(".prj").unlink()
    return path


# --------------------------------------------------------------------------
# shipped data


def test_berlin_prognoseraeume():
    r = prepare_boundaries(BERLIN, key="id", name="name")
    g = r.gdf
    assert len(g) == 58
    assert g.crs.to_epsg() == 25833
    assert r.metric_crs == "EPSG:25833" and r.source_crs == "EPSG:25833"
    assert list(g.columns) == ["key", "name", "area_km2", "geometry"]
    assert g["key"].str.len().eq(4).all()
    assert g["key"].is_unique
    # Berlin is 891.1 km² (Amt für Statistik Berlin-Brandenburg)
    assert g["area_km2"].sum() == pytest.approx(891.1, rel=0.01)
    assert r.qa.count("invalid") == 0 and r.qa.count("overlap") == 0


def test_berlin_in_wgs84_gets_utm33(tmp_path):
    g = gpd.read_file(BERLIN, engine="pyogrio").to_crs("EPSG:4326")
    assert metric_crs_for(g) == "EPSG:25833"
    p = tmp_path / "berlin.fgb"
    g.to_file(p, engine="pyogrio")
    r = prepare_boundaries(p, key="id", name="name")
    assert r.source_crs == "EPSG:4326" and r.metric_crs == "EPSG:25833"
    assert r.gdf["area_km2"].sum() == pytest.approx(891.1, rel=0.01)


def test_metric_crs_west_of_12_degrees():
    cologne = gpd.GeoDataFrame(geometry=[box(6.9, 50.9, 7.0, 51.0)], crs="EPSG:4326")
    assert metric_crs_for(cologne) == "EPSG:25832"
    assert metric_crs_for(cologne.to_crs("EPSG:25832")) == "EPSG:25832"
    dresden = gpd.GeoDataFrame(geometry=[box(13.7, 51.0, 13.8, 51.1)], crs="EPSG:4326")
    assert metric_crs_for(dresden) == "EPSG:25833"


# --------------------------------------------------------------------------
# formats and encodings


def test_shapefile_cp1252_without_cpg(tmp_path):
    p = write_shp(grid(), tmp_path / "sr.shp", "cp1252", cpg=False)
    assert detect_dbf_encoding(p.with_suffix(".dbf"))[0] == "cp1252"
    # GDAL alone would read latin-1 and turn the en dash into U+0096
    plain = gpd.read_file(p, engine="pyogrio")
    assert "\x96" in plain["SR_NAME"].iloc[1]
    r = prepare_boundaries(p, key="SR_ID", name="SR_NAME")
    assert r.gdf["name"].tolist() == NAMES
    assert r.gdf["key"].tolist() == ["0101", "0102", "0201", "0202"]
    assert any("cp1252" in n.message for n in r.notes)


def test_shapefile_utf8_without_cpg(tmp_path):
    p = write_shp(grid(), tmp_path / "sr.shp", "UTF-8", cpg=False)
    assert detect_dbf_encoding(p.with_suffix(".dbf"))[0] == "utf-8"
    plain = gpd.read_file(p, engine="pyogrio")
    assert plain["SR_NAME"].iloc[0] != NAMES[0]  # mojibake without detection
    g = read_boundaries(p, key="SR_ID", name="SR_NAME")
    assert g["SR_NAME"].tolist() == NAMES


def test_shapefile_with_cpg(tmp_path):
    p = write_shp(grid(), tmp_path / "sr.shp", "cp1252", cpg=True)
    g = read_boundaries(p, key="SR_ID", name="SR_NAME")
    assert g["SR_NAME"].tolist() == NAMES


def test_shapefile_missing_prj(tmp_path):
    p = write_shp(grid(), tmp_path / "sr.shp", "UTF-8", prj=False)
    with pytest.raises(GeoplanError) as ei:
        read_boundaries(p, key="SR_ID")
    assert ".prj" in ei.value.message and "crs" in ei.value.hint
    r = prepare_boundaries(p, key="SR_ID", crs="EPSG:25833")
    assert r.gdf.crs.to_epsg() == 25833
    assert r.gdf["area_km2"].tolist() == pytest.approx([1.0] * 4)


def test_shapefile_missing_sidecar(tmp_path):
    p = write_shp(grid(), tmp_path / "sr.shp", "UTF-8")
    p.with_suffix(".dbf").unlink()
    with pytest.raises(GeoplanError, match="Begleitdateien") as ei:
        read_boundaries(p, key="SR_ID")
    assert ".dbf" in ei.value.found


def test_geopackage_layers(tmp_path):
    p = tmp_path / "stadt.gpkg"
    grid().to_file(p, layer="sozialraeume", engine="pyogrio")
    grid().dissolve().assign(SR_ID="1").to_file(p, layer="stadtgrenze", engine="pyogrio")
    assert sorted(list_layers(p)) == ["sozialraeume", "stadtgrenze"]
    with pytest.raises(GeoplanError) as ei:
        read_boundaries(p, key="SR_ID")
    assert "'sozialraeume'" in ei.value.found and "'stadtgrenze'" in ei.value.found
    assert "layer" in ei.value.hint
    with pytest.raises(GeoplanError, match="gibt es nicht"):
        read_boundaries(p, key="SR_ID", layer="bezirke")
    r = prepare_boundaries(p, key="SR_ID", name="SR_NAME", layer="sozialraeume")
    assert len(r.gdf) == 4 and r.gdf["name"].tolist() == NAMES


def test_geojson_and_flatgeobuf_roundtrip(tmp_path):
    for ext in ("geojson", "fgb"):
        p = tmp_path / f"sr.{ext}"
        grid().to_file(p, engine="pyogrio")
        r = prepare_boundaries(p, key="SR_ID", name="SR_NAME")
        # FlatGeobuf stores features in spatial-index order
        assert sorted(r.gdf["name"]) == sorted(NAMES)
        assert dict(zip(r.gdf["key"], r.gdf["name"]))["0101"] == NAMES[0]
        assert r.gdf["area_km2"].sum() == pytest.approx(4.0)


def test_empty_layer(tmp_path):
    p = tmp_path / "leer.gpkg"
    grid().iloc[:0].to_file(p, layer="sr", engine="pyogrio")
    with pytest.raises(GeoplanError, match="keine Objekte"):
        read_boundaries(p, key="SR_ID")


def test_missing_key_field(tmp_path):
    p = tmp_path / "sr.geojson"
    grid().to_file(p, engine="pyogrio")
    with pytest.raises(GeoplanError) as ei:
        read_boundaries(p, key="id")
    assert "'SR_ID'" in ei.value.found and "'SR_NAME'" in ei.value.found


def test_missing_file():
    with pytest.raises(GeoplanError, match="nicht gefunden"):
        read_boundaries("/nonexistent/sr.gpkg", key="id")


# --------------------------------------------------------------------------
# CRS plausibility


def test_degrees_labelled_as_utm(tmp_path):
    g = grid().to_crs("EPSG:4326").set_crs("EPSG:25833", allow_override=True)
    p = tmp_path / "falsch.gpkg"
    g.to_file(p, engine="pyogrio")
    with pytest.raises(GeoplanError) as ei:
        read_boundaries(p, key="SR_ID")
    assert "Grad" in ei.value.message
    assert "EPSG:4326" in ei.value.hint
    # following the hint works
    r = prepare_boundaries(p, key="SR_ID", crs="EPSG:4326")
    assert r.metric_crs == "EPSG:25833"
    assert r.gdf["area_km2"].sum() == pytest.approx(4.0, rel=1e-3)
    assert any("ersetzt" in n.message for n in r.notes)


def test_metres_labelled_as_degrees(tmp_path):
    g = grid().set_crs("EPSG:4326", allow_override=True)
    p = tmp_path / "falsch.geojson"
    g.to_file(p, engine="pyogrio")
    with pytest.raises(GeoplanError) as ei:
        read_boundaries(p, key="SR_ID")
    assert "Meter" in ei.value.message
    assert "crs" in ei.value.hint


def test_wrong_utm_zone_is_noted(tmp_path):
    # Berlin coordinates labelled as Gauss-Krüger zone 2 (valid for 4.5–7.5° E)
    g = grid().set_crs("EPSG:31466", allow_override=True)
    p = tmp_path / "zone.gpkg"
    g.to_file(p, engine="pyogrio")
    r = read_boundaries(p, key="SR_ID")
    notes = r.attrs["geoplan"]["notes"]
    assert any("Gültigkeitsbereichs" in n.message for n in notes)


# --------------------------------------------------------------------------
# geometry QA


def test_overlap_and_gap_findings():
    g = grid()
    # 0102 extends 10 m into 0101: overlap 10 x 1000 = 10,000 m²
    g.loc[1, "geometry"] = box(X0 + 990, Y0, X0 + 2000, Y0 + 1000)
    # a 50 x 50 m notch cut out of the corner all four share is a hole in the union
    notch = box(X0 + 975, Y0 + 975, X0 + 1025, Y0 + 1025)
    g["geometry"] = g.geometry.difference(notch)
    qa = check_boundaries(g, key="SR_ID", min_sliver_m2=1.0)
    f = qa.findings
    ov = f[f["kind"] == "overlap"]
    assert len(ov) == 1
    assert ov["key"].iloc[0] == "0101 / 0102"
    assert ov["area_m2"].iloc[0] == pytest.approx(10_000 - 10 * 25, rel=1e-6)  # strip minus notch
    gaps = f[f["kind"] == "gap"]
    assert len(gaps) == 1
    assert gaps["area_m2"].iloc[0] == pytest.approx(2500.0)
    assert set(gaps["key"].iloc[0].split(" / ")) == {"0101", "0102", "0201", "0202"}
    assert any("Überlappung" in n.message for n in qa.notes)
    assert any("Lücke" in n.message for n in qa.notes)
    # slivers below the tolerance are not reported
    qa2 = check_boundaries(g, key="SR_ID", min_sliver_m2=20_000)
    assert qa2.count("overlap") == 0 and qa2.count("gap") == 0


def test_clean_grid_has_no_findings():
    qa = check_boundaries(grid(), key="SR_ID")
    assert len(qa.findings) == 0
    assert list(qa.findings.columns) == ["kind", "key", "detail", "area_m2"]


def test_bowtie_invalid_error_and_repair():
    g = grid()
    bowtie = Polygon([(X0, Y0), (X0 + 1000, Y0 + 1000), (X0 + 1000, Y0), (X0, Y0 + 1000), (X0, Y0)])
    assert not bowtie.is_valid
    g.loc[0, "geometry"] = bowtie
    with pytest.raises(GeoplanError) as ei:
        check_boundaries(g, key="SR_ID")
    assert "0101" in ei.value.location and "Self-intersection" in ei.value.location
    assert "repair" in ei.value.hint
    assert (ei.value.findings["kind"] == "invalid").sum() == 1
    qa = check_boundaries(g, key="SR_ID", repair=True)
    f = qa.findings
    assert f[f["kind"] == "invalid"]["key"].tolist() == ["0101"]
    rep = f[f["kind"] == "repaired"]
    assert rep["key"].tolist() == ["0101"]
    assert rep["area_m2"].iloc[0] == pytest.approx(500_000.0)  # two triangles of 250,000 m²
    fixed = qa.gdf.geometry.iloc[0]
    assert fixed.is_valid and fixed.geom_type == "MultiPolygon"
    assert f[f["kind"] == "multipart"]["key"].tolist() == ["0101"]
    assert g.geometry.iloc[0].equals(bowtie)  # input not modified
    assert any("repariert" in n.message for n in qa.notes)


def test_empty_geometry_and_keys():
    g = grid()
    g.loc[2, "geometry"] = Polygon()
    g.loc[3, "SR_ID"] = "0101"
    with pytest.raises(GeoplanError) as ei:
        check_boundaries(g, key="SR_ID")
    f = ei.value.findings
    assert f[f["kind"] == "empty"]["key"].tolist() == ["0201"]
    assert f[f["kind"] == "duplicate_key"]["key"].tolist() == ["0101"]
    g2 = grid()
    g2.loc[1, "SR_ID"] = None
    qa = check_boundaries(g2, key="SR_ID", strict=False)
    assert qa.findings[qa.findings["kind"] == "missing_key"]["key"].tolist() == ["(Objekt 2)"]


def test_multipart_counted():
    g = grid()
    g.loc[0, "geometry"] = shapely.MultiPolygon(
        [box(X0, Y0, X0 + 400, Y0 + 1000), box(X0 + 600, Y0, X0 + 1000, Y0 + 1000)]
    )
    qa = check_boundaries(g, key="SR_ID")
    mp = qa.findings[qa.findings["kind"] == "multipart"]
    assert mp["key"].tolist() == ["0101"] and "2 Teilflächen" in mp["detail"].iloc[0]
    # the 200 m strip between the parts is a gap inside the union
    gaps = qa.findings[qa.findings["kind"] == "gap"]
    assert len(gaps) == 0  # it opens to the outside (south edge), so it is not a hole


def test_prepare_with_integer_keys_and_key_width(tmp_path):
    g = grid(keys=(101, 102, 201, 202))
    p = tmp_path / "int.gpkg"
    g.to_file(p, engine="pyogrio")
    r = prepare_boundaries(p, key="SR_ID", key_width=4)
    assert r.gdf["key"].tolist() == ["0101", "0102", "0201", "0202"]
    assert r.gdf["name"].tolist() == r.gdf["key"].tolist()
    r2 = prepare_boundaries(p, key="SR_ID")
    assert r2.gdf["key"].tolist() == ["101", "102", "201", "202"]


def test_prepare_repairs_when_allowed(tmp_path):
    g = grid()
    g.loc[0, "geometry"] = Polygon([(X0, Y0), (X0 + 1000, Y0 + 1000), (X0 + 1000, Y0), (X0, Y0 + 1000)])
    p = tmp_path / "bow.gpkg"
    g.to_file(p, engine="pyogrio")
    with pytest.raises(GeoplanError, match="Geometrieprüfung"):
        prepare_boundaries(p, key="SR_ID")
    r = prepare_boundaries(p, key="SR_ID", repair=True)
    assert r.gdf.geometry.is_valid.all()
    assert r.qa.count("repaired") == 1
    assert np.isclose(r.gdf["area_km2"].iloc[0], 0.5)


# --------------------------------------------------------------------------
# more formats, encodings and CRS hints


def _zip(path, files):
    import zipfile

    with zipfile.ZipFile(path, "w") as zf:
        for f in files:
            zf.write(f, arcname=f"export/{f.name}")
    return path


def test_zipped_shapefile_cp1252_without_cpg(tmp_path):
    shp = write_shp(grid(), tmp_path / "sozialraeume.shp", "cp1252", cpg=False)
    z = _zip(tmp_path / "sr.zip", sorted(tmp_path.glob("sozialraeume.*")))
    assert list_layers(z) == ["sozialraeume"]
    r = prepare_boundaries(z, key="SR_ID", name="SR_NAME")
    assert r.gdf["name"].tolist() == NAMES
    assert shp.exists()


def test_zip_with_two_shapefiles_needs_layer(tmp_path):
    write_shp(grid(), tmp_path / "a.shp", "UTF-8")
    write_shp(grid().iloc[:2], tmp_path / "b.shp", "UTF-8")
    z = _zip(tmp_path / "two.zip", sorted(tmp_path.glob("[ab].*")))
    with pytest.raises(GeoplanError) as ei:
        read_boundaries(z, key="SR_ID")
    assert "'a'" in ei.value.found and "'b'" in ei.value.found
    assert len(read_boundaries(z, key="SR_ID", layer="b")) == 2


def test_zip_missing_dbf(tmp_path):
    write_shp(grid(), tmp_path / "a.shp", "UTF-8")
    z = _zip(tmp_path / "bad.zip", [f for f in tmp_path.glob("a.*") if f.suffix != ".dbf"])
    with pytest.raises(GeoplanError, match="Begleitdateien") as ei:
        read_boundaries(z, key="SR_ID")
    assert ".dbf" in ei.value.found


def test_cpg_claims_utf8_but_bytes_are_cp1252(tmp_path):
    p = write_shp(grid(), tmp_path / "sr.shp", "cp1252", cpg=False)
    p.with_suffix(".cpg").write_text("UTF-8")
    g = read_boundaries(p, key="SR_ID", name="SR_NAME")
    assert g["SR_NAME"].tolist() == NAMES
    assert any(".cpg nennt" in n.message for n in g.attrs["geoplan"]["notes"])


def test_missing_prj_suggests_crs(tmp_path):
    p = write_shp(grid(), tmp_path / "sr.shp", "UTF-8", prj=False)
    with pytest.raises(GeoplanError) as ei:
        read_boundaries(p, key="SR_ID")
    assert "EPSG:25833" in ei.value.found and "EPSG:25832" in ei.value.found
    assert "EPSG:31468" not in ei.value.found


def test_gauss_krueger_labelled_as_utm_is_noted(tmp_path):
    # Gauss-Krüger zone 4 coordinates (Berlin) stored with an UTM 33N label
    g = grid().to_crs("EPSG:31468").set_crs("EPSG:25833", allow_override=True)
    p = tmp_path / "gk.gpkg"
    g.to_file(p, engine="pyogrio")
    notes = read_boundaries(p, key="SR_ID").attrs["geoplan"]["notes"]
    msg = [n.message for n in notes if "Gültigkeitsbereichs" in n.message]
    assert msg and "EPSG:31468" in msg[0]
    r = prepare_boundaries(p, key="SR_ID", crs="EPSG:31468")
    assert r.gdf["area_km2"].sum() == pytest.approx(4.0, rel=1e-3)


def test_points_are_not_sozialraeume():
    g = grid()
    g.loc[0, "geometry"] = shapely.Point(X0, Y0)
    with pytest.raises(GeoplanError) as ei:
        check_boundaries(g, key="SR_ID", repair=True)
    f = ei.value.findings
    assert f[f["kind"] == "invalid"]["detail"].iloc[0] == "keine Fläche (Point)"


def test_3d_polygons_are_read_2d(tmp_path):
    g = grid()
    g["geometry"] = shapely.force_3d(g.geometry.array, z=34.0)
    p = tmp_path / "z.gpkg"
    g.to_file(p, engine="pyogrio")
    r = prepare_boundaries(p, key="SR_ID")
    assert not r.gdf.geometry.has_z.any()


def test_check_in_degrees_measures_in_metres():
    g = grid().to_crs("EPSG:4326")
    g.loc[1, "geometry"] = grid().to_crs("EPSG:4326").geometry.iloc[1].buffer(0.001)
    qa = check_boundaries(g, key="SR_ID", min_sliver_m2=1000)
    ov = qa.findings[qa.findings["kind"] == "overlap"]
    assert len(ov) == 3  # buffered 0102 now reaches into 0101, 0201 and 0202
    assert ov["area_m2"].max() > 10_000  # metres, not square degrees


def test_summary_for_datengrundlage():
    r = prepare_boundaries(BERLIN, key="id", name="name")
    s = r.summary()
    assert s["features"] == 58 and s["metric_crs"] == "EPSG:25833"
    assert s["layer"] == "prognoseraeume_2021"
    assert s["findings"] == {k: 0 for k in s["findings"]} and "gap" in s["findings"]
    assert s["area_km2"] == pytest.approx(891.1, rel=0.01)


def test_collapsed_polygon_is_empty_after_repair():
    g = grid()
    g.loc[2, "geometry"] = Polygon([(X0, Y0), (X0 + 500, Y0 + 500), (X0 + 1000, Y0 + 1000), (X0, Y0)])
    with pytest.raises(GeoplanError) as ei:
        check_boundaries(g, key="SR_ID", repair=True)
    f = ei.value.findings
    assert f[f["kind"] == "empty"]["key"].tolist() == ["0201"]
    assert "keine Fläche" in f[f["kind"] == "empty"]["detail"].iloc[0]
    assert (f["kind"] == "repaired").sum() == 0


def test_gap_excludes_islands_inside_it():
    g = grid()
    notch = box(X0 + 950, Y0 + 950, X0 + 1050, Y0 + 1050)  # 10,000 m² hole
    g["geometry"] = g.geometry.difference(notch)
    island = gpd.GeoDataFrame({"SR_ID": ["0301"], "SR_NAME": ["Insel"]},
                              geometry=[box(X0 + 990, Y0 + 990, X0 + 1010, Y0 + 1010)], crs=g.crs)
    g = gpd.GeoDataFrame(pd.concat([g, island], ignore_index=True), crs=g.crs)
    qa = check_boundaries(g, key="SR_ID")
    gaps = qa.findings[qa.findings["kind"] == "gap"]
    assert len(gaps) == 1
    assert gaps["area_m2"].iloc[0] == pytest.approx(10_000 - 400)
    assert "0301" in gaps["key"].iloc[0]


def test_missing_key_field_suggests_close_name(tmp_path):
    p = tmp_path / "sr.geojson"
    grid().to_file(p, engine="pyogrio")
    with pytest.raises(GeoplanError) as ei:
        read_boundaries(p, key="SR_IDX")
    assert "'SR_ID'" in ei.value.hint
    # case alone is forgiven (DBF field names are upper case)
    r = prepare_boundaries(p, key="sr_id", name="sr_name")
    assert r.gdf["key"].tolist() == ["0101", "0102", "0201", "0202"]
    assert r.gdf["name"].tolist() == NAMES


def test_layer_listing_shows_geometry_types(tmp_path):
    p = tmp_path / "stadt.gpkg"
    grid().to_file(p, layer="sozialraeume", engine="pyogrio")
    gpd.GeoDataFrame({"SR_ID": ["k1"]}, geometry=[shapely.Point(X0, Y0)], crs=grid().crs).to_file(
        p, layer="kitas", engine="pyogrio")
    with pytest.raises(GeoplanError) as ei:
        read_boundaries(p, key="SR_ID")
    assert "'sozialraeume' (Polygon)" in ei.value.found and "'kitas' (Point)" in ei.value.found


def test_boundary_keys_lost_zeros(tmp_path):
    g = grid(keys=(1100101, 1100102, 12601235, 12601236))
    p = tmp_path / "plr.gpkg"
    g.to_file(p, engine="pyogrio")
    with pytest.raises(GeoplanError) as ei:
        prepare_boundaries(p, key="SR_ID")
    assert ei.value.location == "Objekt 1, Objekt 2"
    assert "key_width: 8" in ei.value.hint
    r = prepare_boundaries(p, key="SR_ID", key_width=8)
    assert r.gdf["key"].tolist()[:2] == ["01100101", "01100102"]


def test_unknown_crs_in_config(tmp_path):
    p = write_shp(grid(), tmp_path / "sr.shp", "UTF-8", prj=False)
    with pytest.raises(GeoplanError) as ei:
        read_boundaries(p, key="SR_ID", crs="UTM33")
    assert "'crs'" in ei.value.location
    with pytest.raises(GeoplanError) as ei:
        prepare_boundaries(p, key="SR_ID", crs="EPSG:25833", metric_crs="EPSG:999999")
    assert "'metric_crs'" in ei.value.location
    with pytest.raises(GeoplanError, match="projiziert"):
        prepare_boundaries(p, key="SR_ID", crs="EPSG:25833", metric_crs="EPSG:4326")


def test_attribute_table_layer(tmp_path):
    import pandas as pd
    import pyogrio

    p = tmp_path / "mix.gpkg"
    grid().to_file(p, layer="sr", engine="pyogrio")
    pyogrio.write_dataframe(pd.DataFrame({"SR_ID": ["0101"], "EW": [5]}), p, layer="tabelle")
    with pytest.raises(GeoplanError, match="keine Geometrie") as ei:
        read_boundaries(p, key="SR_ID", layer="tabelle")
    assert "'sr' (Polygon)" in ei.value.found


# --------------------------------------------------------------------------
# property: a partition has no findings; a removed interior cell is one gap

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(
    widths=st.lists(st.floats(50, 2000), min_size=3, max_size=6),
    heights=st.lists(st.floats(50, 2000), min_size=3, max_size=6),
    pick=st.tuples(st.integers(0, 10), st.integers(0, 10)),
)
def test_partition_and_removed_cell(widths, heights, pick):
    xs = np.concatenate([[0.0], np.cumsum(widths)]) + X0
    ys = np.concatenate([[0.0], np.cumsum(heights)]) + Y0
    cells, keys = [], []
    for i in range(len(widths)):
        for j in range(len(heights)):
            cells.append(box(xs[i], ys[j], xs[i + 1], ys[j + 1]))
            keys.append(f"{i:02d}{j:02d}")
    g = gpd.GeoDataFrame({"k": keys}, geometry=cells, crs="EPSG:25833")
    qa = check_boundaries(g, key="k")
    assert len(qa.findings) == 0
    # remove an interior cell: exactly one gap of its area, bordered by 8 cells
    i = 1 + pick[0] % (len(widths) - 2)
    j = 1 + pick[1] % (len(heights) - 2)
    k = f"{i:02d}{j:02d}"
    qa = check_boundaries(g[g["k"] != k], key="k")
    gaps = qa.findings[qa.findings["kind"] == "gap"]
    assert len(gaps) == 1 and len(qa.findings) == 1
    assert gaps["area_m2"].iloc[0] == pytest.approx(widths[i] * heights[j], rel=1e-9)
    assert len(gaps["key"].iloc[0].split(" / ")) == 8
