"""PostGIS in and out against a real PostgreSQL + PostGIS (see tests/gis_services.py).

The Berlin example is loaded with ogr2ogr; what geoplan reads from the
database must equal what it reads from the files, and what it writes must be
what QGIS shows. Skips when PostgreSQL/PostGIS/ogr2ogr are missing, fails
instead with GEOPLAN_REQUIRE_POSTGIS=1 (set by .ci/run).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import shapely
from gis_services import BERLIN_BOUNDARIES, BERLIN_INDICATORS, postgis_server  # noqa: F401  (fixture)

from geoplan.errors import GeoplanError
from geoplan.load.postgis import parse_dsn, read_postgis_boundaries, read_postgis_table, scrub
from geoplan.load.boundaries import prepare_boundaries, read_boundaries
from geoplan.load.tables import read_table


@pytest.fixture
def pgenv(postgis_server, monkeypatch):
    """Password only in the environment, as the README tells users."""
    monkeypatch.setenv("PGPASSWORD", postgis_server.password)
    return postgis_server


# --------------------------------------------------------------------------
# connection strings (no server needed)


def test_parse_dsn_forms():
    a = parse_dsn("PG:host=gis.example port=5433 dbname=geo user=jh")
    assert a.params["host"] == "gis.example" and a.params["port"] == "5433" and a.display == "gis.example:5433/geo"
    b = parse_dsn("postgresql://jh@gis.example:5433/geo")
    assert b.params["dbname"] == "geo" and b.params["user"] == "jh"
    c = parse_dsn("PG:service=stadtgis")
    assert c.params["service"] == "stadtgis" and "stadtgis" in c.display


@pytest.mark.parametrize("dsn", ["PG:host=h dbname=d user=u password=Geheim-123",
                                 "postgresql://u:Geheim-123@h:5432/d",
                                 "PG:host=h dbname=d password='Geheim-123 x'"])
def test_password_in_config_refused_not_echoed(dsn):
    with pytest.raises(GeoplanError) as ei:
        parse_dsn(dsn)
    text = ei.value.render("de") + ei.value.render("en")
    assert "Passwort" in ei.value.message and "password" in ei.value.message_en.lower()
    assert "Geheim-123" not in text


def test_scrub():
    assert "s3cr" not in scrub("host=h password=s3cr dbname=x")
    assert "s3cr" not in scrub("postgresql://u:s3cr@h/db")


# --------------------------------------------------------------------------
# input: same as the files


def test_boundaries_from_postgis_equal_file(pgenv):
    pg = read_postgis_boundaries(pgenv.dsn(), layer="berlin.prognoseraeume", key="id", name="name")
    f = read_boundaries(BERLIN_BOUNDARIES / "prognoseraeume_2021.geojson", key="id", name="name")
    assert pg.crs.to_epsg() == 25833 == f.crs.to_epsg()
    # the file's order (ogr2ogr loads in file order, the primary key keeps it): the simulated
    # HzE data are drawn in this order
    assert pg["id"].tolist() == f["id"].tolist()  # text keys with leading zeros ('0930')
    assert pg["id"].str.len().eq(4).all()
    assert pg["name"].tolist() == f["name"].tolist()
    assert shapely.equals_exact(pg.geometry.to_numpy(), f.geometry.to_numpy(), tolerance=1e-9).all()
    prov = pg.attrs["geoplan"]["provenance"]
    assert prov["rows"] == 58 and prov["table"] == "berlin.prognoseraeume" and len(prov["sha256"]) == 64
    assert prov["server"] == f"127.0.0.1:{pgenv.port}" and prov["database"] == "geoplan"
    # the pipeline's checks and reprojection on both give identical Sozialräume
    a = prepare_boundaries("PostGIS", key="id", name="name", raw=pg)
    b = prepare_boundaries(BERLIN_BOUNDARIES / "prognoseraeume_2021.geojson", key="id", name="name")
    a_, b_ = a.gdf.sort_values("key").reset_index(drop=True), b.gdf.sort_values("key").reset_index(drop=True)
    pd.testing.assert_series_equal(a_["area_km2"], b_["area_km2"])
    assert a.qa.summary() == b.qa.summary()


def test_boundaries_from_sql_with_srid_transform(pgenv):
    gdf = read_postgis_boundaries(
        pgenv.dsn(), sql="SELECT id AS schluessel, name, ST_Transform(geom, 4326) AS g FROM berlin.prognoseraeume "
                         "WHERE id LIKE '01%'", key="schluessel", name="name")
    assert gdf.crs.to_epsg() == 4326 and len(gdf) == 4 and gdf["schluessel"].str.startswith("01").all()
    assert gdf.attrs["geoplan"]["provenance"]["sql"].startswith("SELECT")


TABLES = [
    ("einwohner_plr_2022-06.csv", "berlin.einwohner_plr", "PLR-ID",
     dict(numeric_columns=["Gesamt", "unter6", "6-15", "15-18", "18-27"])),
    ("mss_2021_index_indikatoren.csv", "berlin.mss_index", "PLR_ID",
     dict(sentinels=(-9999,), valid_column="KOM", valid_values=["gültig"], numeric_columns=["S1", "S3", "S4", "D1"])),
    ("mss_2021_kontext_indikatoren.csv", "berlin.mss_kontext", "PLR_ID",
     dict(sentinels=(-9999,), valid_column="KOM", valid_values=["gültig"], numeric_columns=["KI_01", "KI_02"])),
    ("lor_2021_plr_schluessel.csv", "berlin.lor_schluessel", "Planungsraum (Nummer)",
     dict(text_columns=["Prognoseraum (Nummer)", "Bezirk"])),
]


@pytest.mark.parametrize("csv,table,key,opts", TABLES, ids=[t[1] for t in TABLES])
def test_tables_from_postgis_equal_file(pgenv, csv, table, key, opts):
    pg = read_postgis_table(pgenv.dsn(), layer=table, key=key, **opts)
    f = read_table(BERLIN_INDICATORS / csv, key=key, **opts)
    want = list(opts.get("numeric_columns", [])) + list(opts.get("text_columns", []))
    a = pg.frame.set_index(key).sort_index()[want]
    b = f.frame.set_index(key).sort_index()[want]
    assert a.index.tolist() == b.index.tolist() and (a.index.str.len() == b.index.str.len()).all()
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    for c in opts.get("numeric_columns", []):
        assert pg.frame[c].dtype == "float64"
    assert pg.dialect["provenance"]["rows"] == len(pg.frame)


def test_table_from_sql(pgenv):
    res = read_postgis_table(pgenv.dsn(), key="PLR_ID",
                             sql='SELECT "PLR_ID", "S4" AS kinderarmut FROM berlin.mss_index WHERE "KOM" = \'gültig\'',
                             numeric_columns=["kinderarmut"])
    assert len(res.frame) > 400 and res.frame["kinderarmut"].notna().all()


# --------------------------------------------------------------------------
# credentials from ~/.pgpass and pg_service.conf


def test_password_from_pgpass_and_service(postgis_server, tmp_path, monkeypatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"127.0.0.1:{postgis_server.port}:*:{postgis_server.user}:{postgis_server.password}\n")
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    gdf = read_postgis_boundaries(postgis_server.dsn(), layer="berlin.prognoseraeume", key="id")
    assert len(gdf) == 58
    service = tmp_path / "pg_service.conf"
    service.write_text(f"[stadtgis]\nhost=127.0.0.1\nport={postgis_server.port}\ndbname=geoplan\n"
                       f"user={postgis_server.user}\n")
    monkeypatch.setenv("PGSERVICEFILE", str(service))
    gdf = read_postgis_boundaries("PG:service=stadtgis", layer="berlin.prognoseraeume", key="id")
    assert len(gdf) == 58


# --------------------------------------------------------------------------
# error messages


def _err(fn) -> GeoplanError:
    with pytest.raises(GeoplanError) as ei:
        fn()
    e = ei.value
    assert e.message and e.message_en and e.render("de") != e.render("en")
    return e


def test_wrong_password_not_echoed(postgis_server, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", "Falsch-Passwort-987")
    monkeypatch.setenv("PGPASSFILE", "/nonexistent")
    e = _err(lambda: read_postgis_boundaries(postgis_server.dsn(), layer="berlin.prognoseraeume", key="id"))
    assert "Passwort falsch" in e.message and "password" in e.message_en
    for text in (e.render("de"), e.render("en"), repr(e.__dict__)):
        assert "Falsch-Passwort-987" not in text and postgis_server.password not in text


def test_no_password(postgis_server, monkeypatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", "/nonexistent")
    e = _err(lambda: read_postgis_table(postgis_server.dsn(), layer="berlin.mss_index", key="PLR_ID"))
    assert "verlangt ein Passwort" in e.message


def test_connection_refused(pgenv):
    from gis_services import free_port

    port = free_port()
    e = _err(lambda: read_postgis_table(f"PG:host=127.0.0.1 port={port} dbname=geoplan user=x", layer="t", key="k"))
    assert "Verbindung abgelehnt" in e.message and f"127.0.0.1:{port}" in e.message
    assert "connection refused" in e.message_en


def test_missing_table(pgenv):
    e = _err(lambda: read_postgis_boundaries(pgenv.dsn(), layer="berlin.prognoseraeum", key="id"))
    assert "'berlin.prognoseraeum'" in e.message and "berlin.prognoseraeume" in e.found


def test_missing_column_and_bad_sql(pgenv):
    e = _err(lambda: read_postgis_boundaries(pgenv.dsn(), layer="berlin.prognoseraeume", key="PGR_ID"))
    assert "'PGR_ID'" in e.message and "'id'" in e.found
    e = _err(lambda: read_postgis_boundaries(pgenv.dsn(), sql="SELECT nix FROM berlin.prognoseraeume", key="id"))
    assert "nix" in e.found


def test_missing_postgis_extension(pgenv):
    pgenv.psql("postgres", "DROP DATABASE IF EXISTS ohne_postgis")
    pgenv.createdb("ohne_postgis", postgis=False)
    e = _err(lambda: read_postgis_boundaries(pgenv.dsn("ohne_postgis"), layer="x", key="id"))
    assert "PostGIS" in e.message and "CREATE EXTENSION postgis" in e.hint


def test_missing_database(pgenv):
    e = _err(lambda: read_postgis_table(pgenv.dsn("gibtsnicht"), layer="x", key="id"))
    assert "Datenbank" in e.message


# --------------------------------------------------------------------------
# output: published layer + QGIS styles


@pytest.fixture(scope="module")
def published(demo_result):
    from geoplan.report.published import build_published
    from geoplan.report.gpkg import styled_layer

    pub = build_published(demo_result)
    return styled_layer(demo_result, pub)[0], pub


def _styles(gdf):
    from geoplan.report.styles import layer_styles, style_layers

    return layer_styles(gdf, style_layers(gdf))


def test_write_postgis_roundtrip_with_styles(pgenv, published, caplog, capsys):
    from geoplan.report.postgis import write_postgis

    gdf, pub = published
    # the Berlin counts are all >= k; suppress two as build_published would (NULL + flag)
    gdf = gdf.copy()
    gdf.loc[gdf.index[:2], "hze_cases"] = pd.NA
    gdf.loc[gdf.index[:2], "hze_cases_unterdrueckt"] = True
    styles = _styles(gdf)
    assert [s.column for s in styles] == ["budget_per_u21", "budget_eur", "veraenderung_klasse", "need_index",
                                          "expected_per_1000", "oe_ratio"]
    info = write_postgis(gdf, pgenv.dsn(), "public.sozialraumbudget", "fail", styles, description="Berlin 2027")
    assert info["rows"] == 58 and info["table"] == "public.sozialraumbudget" and info["styles"] == 6
    back = read_postgis_boundaries(pgenv.dsn(), layer="public.sozialraumbudget", key="key", name="name")
    g = gdf.reset_index(drop=True)  # read back in the written order (primary key fid)
    assert back["key"].tolist() == g["key"].tolist()
    assert back["budget_eur"].astype("int64").tolist() == g["budget_eur"].tolist()
    assert int(back["budget_eur"].sum()) == int(g["budget_eur"].sum()) > 0
    # suppressed counts stay NULL, with their flag
    sup = g["hze_cases_unterdrueckt"].to_numpy(bool)
    assert sup.any() and back.loc[sup, "hze_cases"].isna().all()
    assert back.loc[~sup, "hze_cases"].astype(int).tolist() == g.loc[~sup, "hze_cases"].astype(int).tolist()
    assert shapely.equals_exact(back.geometry.to_numpy(), g.geometry.to_numpy(), tolerance=1e-6).all()
    assert back.crs.to_epsg() == 25833
    rows = pgenv.psql("geoplan", "SELECT stylename, useasdefault, f_geometry_column FROM layer_styles "
                                 "WHERE f_table_name = 'sozialraumbudget' ORDER BY id").splitlines()
    assert rows[0] == "Budget je Einwohner unter 21 (€)|t|geom" and len(rows) == 6
    # each style with its SLD (the same classes, for other GIS)
    assert pgenv.psql("geoplan", "SELECT count(*) FROM layer_styles WHERE f_table_name = 'sozialraumbudget' "
                                 "AND stylesld::text LIKE '%StyledLayerDescriptor%'").strip() == "6"
    assert sum(r.split("|")[1] == "t" for r in rows) == 1
    assert pgenv.psql("geoplan", "SELECT obj_description('public.sozialraumbudget'::regclass)").startswith("geoplan:")
    # nothing anywhere holds the password
    out = capsys.readouterr()
    for text in (repr(info), caplog.text, out.out, out.err, repr(back.attrs)):
        assert pgenv.password not in text


def test_write_postgis_if_exists(pgenv, published):
    from geoplan.report.postgis import write_postgis

    gdf, _ = published
    write_postgis(gdf, pgenv.dsn(), "ergebnis_a", "fail")
    e = _err(lambda: write_postgis(gdf, pgenv.dsn(), "ergebnis_a", "fail"))
    assert "schon" in e.message and "if_exists" in e.hint
    half = gdf.iloc[:10]
    write_postgis(half, pgenv.dsn(), "ergebnis_a", "replace", _styles(half))
    assert pgenv.psql("geoplan", "SELECT count(*) FROM public.ergebnis_a").strip() == "10"
    # a table geoplan did not write is never replaced
    pgenv.psql("geoplan", "CREATE TABLE public.fremd (x int); INSERT INTO public.fremd VALUES (1)")
    e = _err(lambda: write_postgis(gdf, pgenv.dsn(), "fremd", "replace"))
    assert "nicht von geoplan" in e.message
    assert pgenv.psql("geoplan", "SELECT x FROM public.fremd").strip() == "1"


def test_write_postgis_one_transaction(pgenv, published):
    """A failure after the rename (a broken style) leaves the old table as it was."""
    from geoplan.report.postgis import write_postgis

    gdf, _ = published
    write_postgis(gdf, pgenv.dsn(), "ergebnis_t", "replace", _styles(gdf))
    before = pgenv.psql("geoplan", "SELECT count(*), sum(budget_eur) FROM public.ergebnis_t")
    e = _err(lambda: write_postgis(gdf.iloc[:5], pgenv.dsn(), "ergebnis_t", "replace", [("kaputt", "<qgis><nicht")]))
    assert "nichts wurde geändert" in e.message
    assert pgenv.psql("geoplan", "SELECT count(*), sum(budget_eur) FROM public.ergebnis_t") == before
    assert pgenv.psql("geoplan", "SELECT count(*) FROM layer_styles WHERE f_table_name = 'ergebnis_t'").strip() == "6"
    assert pgenv.psql("geoplan", "SELECT to_regclass('public.ergebnis_t__geoplan_neu')").strip() == ""


def test_write_postgis_errors(pgenv, published):
    from geoplan.report.postgis import write_postgis

    gdf, _ = published
    e = _err(lambda: write_postgis(gdf, pgenv.dsn(), "gibtsnicht.tab", "fail"))
    assert "Schema 'gibtsnicht'" in e.message
    e = _err(lambda: write_postgis(gdf, pgenv.dsn(), "tab", "ersetzen"))
    assert "if_exists" in e.message
    pgenv.psql("postgres", "DROP DATABASE IF EXISTS ohne_postgis2")
    pgenv.createdb("ohne_postgis2", postgis=False)
    e = _err(lambda: write_postgis(gdf, pgenv.dsn("ohne_postgis2"), "tab", "fail"))
    assert "PostGIS" in e.message


# --------------------------------------------------------------------------
# geoplan run against the database (input and output), compared with the files


def test_geoplan_run_postgis_same_budgets(pgenv, demo_outputs, tmp_path, monkeypatch, capfd):
    """The run from the files is the session's demo run (tests/conftest.py): examples/berlin.yaml. The runs
    through the database are ``geoplan run`` in this process (``main()``, its output captured from the file
    descriptors); the password is only in PGPASSWORD (fixture pgenv)."""
    import yaml
    from gis_services import budgets, example_config, geoplan_main, grep_tree

    files = budgets(demo_outputs)
    assert len(files) == 58

    dsn = pgenv.dsn()
    cfg = example_config()
    cfg["boundaries"] = {"connection": f"PG:{dsn}", "layer": "berlin.prognoseraeume", "key": "id", "name": "name"}
    tables = {"einwohner_plr_2022-06.csv": "berlin.einwohner_plr", "mss_2021_index_indikatoren.csv":
              "berlin.mss_index", "mss_2021_kontext_indikatoren.csv": "berlin.mss_kontext"}
    for t in cfg["indicators"]["tables"]:
        t["connection"] = f"PG:{dsn}"
        t["layer"] = tables[Path(t.pop("path")).name]
    agg = cfg["indicators"]["aggregate"]
    agg.pop("key_table")
    agg["key_table_connection"] = f"PG:{dsn}"
    agg["key_table_layer"] = "berlin.lor_schluessel"
    cfg["output"]["postgis"] = {"connection": f"PG:{dsn}", "table": "public.sozialraumbudget_run", "if_exists": "replace"}
    (tmp_path / "postgis.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    r2 = geoplan_main(capfd, "run", str(tmp_path / "postgis.yaml"), "--out", str(tmp_path / "aus_postgis"))
    assert r2.returncode == 0, r2.stderr
    assert budgets(tmp_path / "aus_postgis") == files
    db = dict(line.split("|") for line in pgenv.psql(
        "geoplan", "SELECT key, budget_eur FROM public.sozialraumbudget_run").splitlines())
    assert {k: int(float(v)) for k, v in db.items()} == files
    assert "layer_styles" in pgenv.psql("geoplan", "SELECT 'layer_styles' FROM layer_styles "
                                                   "WHERE f_table_name = 'sozialraumbudget_run' LIMIT 1")
    manifest = (tmp_path / "aus_postgis" / "manifest.json").read_text(encoding="utf-8")
    assert "berlin.prognoseraeume" in manifest and f"127.0.0.1:{pgenv.port}" in manifest
    # the password is nowhere: not in any output file, not in stdout/stderr
    assert grep_tree(tmp_path / "aus_postgis", pgenv.password) == []
    assert pgenv.password not in r2.stdout + r2.stderr
    # a wrong password stops with exit 2, a German message, and is not echoed
    monkeypatch.setenv("PGPASSWORD", "Falsch-Passwort-555")
    monkeypatch.setenv("PGPASSFILE", "/nonexistent")
    r3 = geoplan_main(capfd, "run", str(tmp_path / "postgis.yaml"), "--out", str(tmp_path / "aus_falsch"))
    assert r3.returncode == 2 and "Passwort falsch" in r3.stderr + r3.stdout
    assert "Falsch-Passwort-555" not in r3.stderr + r3.stdout and "Traceback" not in r3.stderr


def _postgis_config(dsn: str, table_layer: str = "berlin.mss_index") -> dict:
    from gis_services import example_config

    cfg = example_config()
    cfg["boundaries"] = {"connection": f"PG:{dsn}", "layer": "berlin.prognoseraeume", "key": "id", "name": "name"}
    tables = {"einwohner_plr_2022-06.csv": "berlin.einwohner_plr", "mss_2021_index_indikatoren.csv": table_layer,
              "mss_2021_kontext_indikatoren.csv": "berlin.mss_kontext"}
    for t in cfg["indicators"]["tables"]:
        t["connection"] = f"PG:{dsn}"
        t["layer"] = tables[Path(t.pop("path")).name]
    agg = cfg["indicators"]["aggregate"]
    agg.pop("key_table")
    agg["key_table_connection"] = f"PG:{dsn}"
    agg["key_table_layer"] = "berlin.lor_schluessel"
    return cfg


def test_validate_reads_postgis(pgenv, tmp_path):
    """`geoplan validate` (dry_run) reads boundaries, tables and key table from the database; a missing
    table is one of the problems it lists, with the config field and the tables that exist."""
    from geoplan.config import config_from_dict
    from geoplan.dryrun import dry_run

    res = dry_run(config_from_dict(_postgis_config(pgenv.dsn()), base_dir=tmp_path))
    assert res.problems == [] and res.n_areas == 58
    remote = [i for i in res.inputs if i.path is None]
    assert {i.role for i in remote} == {"Sozialräume", "Indikatoren", "Schlüsseltabelle"} and len(remote) == 5
    assert all(i.location.startswith(f"127.0.0.1:{pgenv.port}/geoplan berlin.") and pgenv.user not in i.location
               and len(i.sha256) == 64 for i in remote)
    bad = dry_run(config_from_dict(_postgis_config(pgenv.dsn(), "berlin.mss_indx"), base_dir=tmp_path))
    assert len(bad.problems) == 1
    e = bad.problems[0]
    assert "'berlin.mss_indx'" in e.message and "indicators.tables[1]" in e.location and "berlin.mss_index" in e.found


def test_password_search_reads_the_pdf(demo_outputs, tmp_path):
    """The search of the run's outputs for the password (above) must see what a reader of bericht.pdf sees:
    WeasyPrint compresses every page's text, so a string on a page is not in the file's bytes."""
    from gis_services import grep_tree

    shutil.copy(demo_outputs / "bericht.pdf", tmp_path / "bericht.pdf")
    data = (tmp_path / "bericht.pdf").read_bytes()
    assert b"Hilfen zur Erziehung" not in data  # only in compressed streams
    pdf = tmp_path / "bericht.pdf"
    assert grep_tree(tmp_path, "Hilfen zur Erziehung") == [f"{pdf} (stream)", f"{pdf} (text)"]
    assert grep_tree(tmp_path, "Geheim-Passwort-0815") == []
