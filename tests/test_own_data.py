"""A city's own data through the config alone (issue 13).

Each situation is built from data the test writes (``tests/own_city.py``: an
invented city laid out unlike Berlin) and run through ``geoplan validate`` and
``geoplan run`` with a config only: population per PLZ brought onto the
Stadtteile dasymetrically (a PLZ stored as two polygons), a merged pair, an
excluded polygon, a long table with a total row, a HzE table with a units row,
"35.206,98 €" costs and a total row, pop_u18 as exposure, the Bezirk from the
polygons, a multi-layer GeoPackage.
"""

from __future__ import annotations

import copy
import re
import sqlite3

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest

from geoplan.cli import main
from geoplan.config import load_config
from geoplan.load.tables import read_table
from tests.own_city import build_city, write_config


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    root = tmp_path_factory.mktemp("musterstadt")
    raw, truth = build_city(root)
    return root, raw, truth


def _flat(capsys) -> str:
    cap = capsys.readouterr()
    return " ".join((cap.err + cap.out).split())


def test_validate_then_run_with_config_only(city, capsys):
    root, raw, truth = city
    cfg = write_config(root, raw)
    assert main(["validate", str(cfg)]) == 0, _flat(capsys)
    out_text = _flat(capsys)
    assert "18 Sozialräume (1 ausgeschlossen)" in out_text, out_text
    out = root / "ausgabe"
    assert main(["run", str(cfg), "--out", str(out)]) == 0, _flat(capsys)

    g = gpd.read_file(out / "ergebnis.gpkg", layer="sozialraeume")
    # merged pair as one area, harbour excluded, Bezirk from the polygons' field
    assert len(g) == 18
    assert "0304" in set(g["key"]) and not {"03", "04", "20"} & set(g["key"])
    assert set(g["bezirk"]) == {"Bezirk A", "Bezirk B", "Bezirk C", "Bezirk D"}
    assert g.loc[g["key"] == "0304", "name"].item() == "Altdorf/Neudorf"
    # dasymetric PLZ -> Stadtteile with residents per block reproduces the true residents under 18
    got = g.set_index("key")["pop_u18"].astype(float)
    np.testing.assert_allclose(got.reindex(truth.index).to_numpy(), truth.to_numpy(), rtol=1e-9)
    # costs "35.206,98 €" read as numbers; the total row of the HzE table is not an area
    hze = pd.read_csv(root / "daten" / "hze.csv", sep=";", skiprows=[1], dtype=str)
    costs = hze.loc[hze["Stadtteil"] != "gesamt", "Kosten 2024"].str.replace(r"[ €.]", "", regex=True) \
        .str.replace(",", ".").astype(float)
    assert g["hze_cost_prev_eur"].sum() == pytest.approx(costs.sum())
    # the exposure's name and label everywhere
    assert "budget_per_u18" in g.columns and "budget_per_u21" not in g.columns
    html = (out / "bericht.html").read_text(encoding="utf-8")
    text = re.sub(r"<[^>]+>", " ", html)
    assert "Einwohner unter 18" in text
    assert "unter 21" not in text and "u. 21" not in text and "pop_u21" not in text
    assert "Drittel der 18–27" not in text
    assert "pop_u6 + pop_6_15 + pop_15_18" in text
    assert "über die Schlüsseltabelle" not in text
    assert "Summenprüfung Ebene" in text
    wb = openpyxl.load_workbook(out / "verteilung.xlsx")
    header = [c.value for c in wb.worksheets[0][1]]
    assert "Einwohner unter 18" in header and not any("21" in str(h) for h in header)
    con = sqlite3.connect(out / "ergebnis.gpkg")
    styles = con.execute("select styleName, description from layer_styles").fetchall()
    con.close()
    assert styles and all("21" not in s for row in styles for s in row)


def test_without_merge_the_mismatch_names_both_remedies(city, capsys, tmp_path):
    root, raw, _ = city
    bad = copy.deepcopy(raw)
    del bad["boundaries"]["merge"]
    assert main(["validate", str(write_config(root, bad, "ohne_merge.yaml"))]) == 2
    msg = _flat(capsys)
    assert "0304" in msg and "boundaries.merge" in msg and "boundaries.exclude" in msg, msg
    assert "Schlüssel 'key' ↔ 'key'" not in msg and "Schlüsseltabelle" not in msg


def test_total_row_must_be_dropped(city, capsys):
    root, raw, _ = city
    bad = copy.deepcopy(raw)
    del bad["indicators"]["tables"][1]["drop_rows"]
    del bad["hze"]["drop_rows"]
    assert main(["validate", str(write_config(root, bad, "ohne_drop.yaml"))]) == 2
    msg = _flat(capsys)
    # both tables are reported at once: the indicator total row '99', the HzE total row 'gesamt'
    assert "99" in msg and "gesamt" in msg, msg


def test_no_group_no_group_claims(city, capsys):
    root, raw, _ = city
    cfg = copy.deepcopy(raw)
    del cfg["boundaries"]["group"]
    out = root / "ohne_bezirk"
    assert main(["run", str(write_config(root, cfg, "ohne_bezirk.yaml")), "--out", str(out)]) == 0, _flat(capsys)
    text = re.sub(r"<[^>]+>", " ", (out / "bericht.html").read_text(encoding="utf-8"))
    assert "Theil zwischen Bezirken" not in text and "innerhalb der Bezirke" not in text
    assert "räumlich blockierte" not in text


def test_multi_layer_geopackage(tmp_path, capsys):
    raw, _ = build_city(tmp_path, boundaries="gpkg")
    assert main(["validate", str(write_config(tmp_path, raw))]) == 2
    msg = _flat(capsys)
    assert "stadtteile_2025" in msg and "stadtteile_2010" in msg and "layer" in msg, msg
    raw["boundaries"]["layer"] = "stadtteile_2025"
    assert main(["validate", str(write_config(tmp_path, raw, "mit_layer.yaml"))]) == 0, _flat(capsys)


def test_area_weighting_counts_a_multipart_source_once(city):
    """PLZ 20000 is stored as two polygons: dissolved by key first, so its residents count once."""
    from geoplan.pipeline import dry_run

    root, raw, truth = city
    cfg = copy.deepcopy(raw)
    cfg["indicators"]["levels"]["plz"] = {"polygons": "daten/plz.geojson", "key": "plz", "method": "area"}
    res = dry_run(load_config(write_config(root, cfg, "flaeche.yaml")))
    assert not res.problems, [p.render() for p in res.problems]
    totals = [n for n in res.notes if n.message.startswith("Summenprüfung")]
    assert totals
    for row in totals[0].details["totals"]:
        assert row["target_total"] == pytest.approx(row["source_total"], rel=1e-9)
    assert any("mehreren Objekten" in n.message for n in res.notes)


# ----------------------------------------------------------------- the table reader's new rules

def test_reader_currency_units_row_and_total_rows(tmp_path):
    p = tmp_path / "hze.csv"
    p.write_text("SR;Fälle;Kosten\n;Anzahl;EUR\n01;12;35.206,98 €\n02;7;€ 1.000,00\n03;3;2.500 EUR\n"
                 "Summe;22;38.706,98 €\n", encoding="utf-8")
    res = read_table(p, key="SR", skip_rows=1, drop_labels=["summe"], numeric_columns=["Fälle", "Kosten"])
    assert res.frame["SR"].tolist() == ["01", "02", "03"]
    assert res.frame["Kosten"].tolist() == [35206.98, 1000.0, 2500.0]
    assert any("drop_rows" in n.message for n in res.notes)
    res2 = read_table(p, key="SR", skip_rows=1, drop_keys=["^summe$"], numeric_columns=["Kosten"])
    assert len(res2.frame) == 3


def test_long_table_with_unknown_variable(tmp_path, capsys):
    raw, _ = build_city(tmp_path)
    raw["indicators"]["tables"][1]["columns"]["Kinderarmutsquote"] = "kinderarmut2"
    assert main(["validate", str(write_config(tmp_path, raw))]) == 2
    msg = _flat(capsys)
    assert "Kinderarmutsquote" in msg and "merkmal" in msg and "'Kinderarmut'" in msg, msg


# ----------------------------------------------------------------- areal interpolation fixes

def _gdf(geoms, **cols):
    return gpd.GeoDataFrame(cols, geometry=list(geoms), crs="EPSG:25832")


def test_dasymetric_fallback_units_and_count():
    from shapely.geometry import box

    from geoplan.stages.interpolate import area_interpolate

    # A has residents (2000 over 2 m², density 1000/m²), B none at all, C none and far from every target
    src = _gdf([box(0, 0, 2, 1), box(2, 0, 4, 1), box(10, 0, 11, 1)], v=[10.0, 20.0, 99.0], n=[100.0, 50.0, 7.0])
    tgt = _gdf([box(1, 0, 3, 1)])
    weights = _gdf([box(0, 0, 2, 1)], ew=[2000.0])
    out = area_interpolate(src, tgt, extensive=["n"], intensive=["v"], weights=weights, weights_column="ew")
    # B's half enters with area × mean density (1000 persons), like A's half: the mean of 10 and 20
    assert out["v"].iloc[0] == pytest.approx(15.0)
    assert out["n"].iloc[0] == pytest.approx(100.0 + 50.0)
    fallback = [n for n in out.attrs["notes"] if "ohne Gewicht" in n.message]
    assert len(fallback) == 1 and fallback[0].message.startswith("1 Quellgebiete"), fallback


def test_weight_outside_every_target_is_no_fallback():
    from shapely.geometry import box

    from geoplan.stages.interpolate import area_interpolate

    src = _gdf([box(0, 0, 2, 1)], n=[100.0])
    tgt = _gdf([box(0, 0, 1, 1)])
    weights = _gdf([box(1, 0, 2, 1)], ew=[500.0])  # all of the source's residents outside the target
    out = area_interpolate(src, tgt, extensive=["n"], weights=weights, weights_column="ew")
    assert out["n"].iloc[0] == pytest.approx(0.0)  # as tobler
    assert not [n for n in out.attrs["notes"] if "ohne Gewicht" in n.message]


def test_spike_and_bowtie_are_repaired_with_a_note(tmp_path):
    import rasterio
    from rasterio.transform import from_origin
    from shapely.geometry import Polygon, box

    from geoplan.load.raster import zonal_stats
    from geoplan.stages.interpolate import area_interpolate

    spike = Polygon([(0, 0), (10, 0), (10, 10), (5, 10), (5, 5), (5, 10), (0, 10)])
    out = area_interpolate(_gdf([box(0, 0, 10, 10)], n=[100.0]), _gdf([spike]), extensive=["n"])
    assert out["n"].iloc[0] == pytest.approx(100.0)
    assert any("repariert" in n.message for n in out.attrs["notes"])

    path = tmp_path / "ones.tif"
    with rasterio.open(path, "w", driver="GTiff", width=10, height=10, count=1, dtype="float32",
                       crs="EPSG:25832", transform=from_origin(0, 10, 1, 1)) as dst:
        dst.write(np.ones((1, 10, 10), dtype="float32"))
    bowtie = Polygon([(0, 0), (10, 10), (10, 0), (0, 10), (0, 0)])
    df = zonal_stats(path, _gdf([bowtie], key=["z"]), stats=("sum",))
    assert df["sum"].iloc[0] == pytest.approx(50.0)  # both lobes (2 × 25 m²)
    assert any("repariert" in n.message for n in df.attrs["notes"])


def test_multipart_source_dissolved_by_key():
    from shapely.geometry import box

    from geoplan.stages.interpolate import area_interpolate

    src = _gdf([box(0, 0, 1, 1), box(1, 0, 2, 1)], plz=["14193", "14193"], n=[18228.0, 18228.0])
    out = area_interpolate(src, _gdf([box(0, 0, 2, 1)]), extensive=["n"], source_key="plz")
    assert out["n"].iloc[0] == pytest.approx(18228.0)
    assert any("mehreren Polygonen" in n.message for n in out.attrs["notes"])


def test_init_from_own_files_then_validate(tmp_path, capsys):
    """init --from proposes config + catalogue for the polygons and a table as delivered (units row, total row,
    keys without leading zeros); the next step, validate, passes without edits."""
    build_city(tmp_path)
    rng = np.random.default_rng(3)
    lines = ["Stadtteil;Name;Einwohner;unter 6;6 bis 15;15 bis 18;Kinderarmut;Alleinerziehende",
             ";;Anzahl;Anzahl;Anzahl;Anzahl;%;%"]
    for n in range(1, 21):
        ew = int(rng.integers(3000, 9000))
        lines.append(f"{n};Stadtteil {n:02d};{ew};{ew // 15};{ew // 10};{ew // 30};"
                     f"{rng.uniform(5, 40):.1f};{rng.uniform(10, 30):.1f}".replace(".", ","))
    lines.append("Stadt;Insgesamt;0;0;0;0;0;0")
    (tmp_path / "daten" / "sozialraumdaten.csv").write_text("\n".join(lines) + "\n", encoding="cp1252")
    cfg = tmp_path / "stadt.yaml"
    assert main(["init", str(cfg), "--from", str(tmp_path / "daten" / "stadtteile.shp"),
                 "--table", str(tmp_path / "daten" / "sozialraumdaten.csv")]) == 0, _flat(capsys)
    text = cfg.read_text(encoding="utf-8")
    cat = (tmp_path / "stadt_katalog.yaml").read_text(encoding="utf-8")
    assert "key: ST_NR" in text and "name: ST_NAME" in text and "group: BEZIRK" in text
    assert "key_width: 2" in text and "skip_rows: 1" in text and "drop_rows" in text
    assert "pop_u18:" in text and "exposure: pop_u18" in text
    assert "name: kinderarmut" in cat and "reference_date" in cat
    capsys.readouterr()
    assert main(["validate", str(cfg)]) == 0, _flat(capsys)
    # init never overwrites
    assert main(["init", str(cfg), "--from", str(tmp_path / "daten" / "stadtteile.shp")]) == 2
