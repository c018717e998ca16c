"""Config loader: clear errors for every wrong field, and no crash on any input (hypothesis)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geoplan.cli import EXAMPLE_CONFIG
from geoplan.config import Config, config_from_dict, load_config
from geoplan.errors import GeoplanError

RAW = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))


def test_example_config_is_valid():
    cfg = load_config(EXAMPLE_CONFIG)
    assert cfg.region == "Berlin"
    assert cfg.resolve(cfg.boundaries.path).is_file()
    assert all(p.is_file() for p in cfg.input_paths())


def test_unknown_field_lists_allowed_fields():
    raw = copy.deepcopy(RAW)
    raw["boundaries"]["schluessel"] = "id"
    with pytest.raises(GeoplanError) as e:
        config_from_dict(raw, base_dir=EXAMPLE_CONFIG.parent, file="x.yaml")
    msg = e.value.render()
    assert "boundaries.schluessel" in msg
    assert "key" in msg and "layer" in msg and "x.yaml" in msg


def test_wrong_literal_names_allowed_values():
    raw = copy.deepcopy(RAW)
    raw["model"]["family"] = "gauss"
    with pytest.raises(GeoplanError) as e:
        config_from_dict(raw, base_dir=EXAMPLE_CONFIG.parent)
    msg = e.value.render()
    assert "model.family" in msg and "poisson" in msg and "gauss" in msg


def test_every_error_reported_at_once():
    raw = copy.deepcopy(RAW)
    raw["budget_year"] = "nächstes Jahr"
    raw["privacy"]["k"] = 1
    with pytest.raises(GeoplanError) as e:
        config_from_dict(raw, base_dir=EXAMPLE_CONFIG.parent)
    msg = e.value.render()
    assert "budget_year" in msg and "privacy.k" in msg


def test_error_raised_in_an_allocation_validator_keeps_its_field_and_fix():
    # GeoplanError is a ValueError, so pydantic wraps it; the message must still name the field
    raw = copy.deepcopy(RAW)
    raw["allocation"]["components"][0]["weight"] = 0.9
    raw["allocation"]["teilbudgets"] = [{"id": "A", "remainder": True}, {"id": "A", "share": 0.1}]
    with pytest.raises(GeoplanError) as e:
        config_from_dict(raw, base_dir=EXAMPLE_CONFIG.parent, file="x.yaml")
    msg = e.value.render()
    assert "Feld 'allocation.components'" in msg and "addieren" in msg and "grundanteil=0.9" in msg
    assert "Value error" not in msg and "Lösung: Gewichte anpassen" in msg
    raw["allocation"]["components"][0]["weight"] = 0.3
    with pytest.raises(GeoplanError) as e:
        config_from_dict(raw, base_dir=EXAMPLE_CONFIG.parent)
    assert "Teilbudget-IDs müssen eindeutig sein" in e.value.render() and "gefunden: A" in e.value.render()


def test_sensitivity_and_observed_expected_settings():
    cfg = config_from_dict(copy.deepcopy(RAW), base_dir=EXAMPLE_CONFIG.parent)
    assert (cfg.sensitivity.n_draws, cfg.model.oe_high, cfg.model.oe_low) == (1000, 1.1, 0.9)
    raw = copy.deepcopy(RAW)
    raw["sensitivity"] = {"n_draws": -1, "ziehungen": 5}
    raw["model"]["oe_low"] = 1.2
    with pytest.raises(GeoplanError) as e:
        config_from_dict(raw, base_dir=EXAMPLE_CONFIG.parent)
    msg = e.value.render()
    assert "sensitivity.n_draws" in msg and "sensitivity.ziehungen" in msg and "model.oe_low" in msg


def test_english_rendering():
    with pytest.raises(GeoplanError) as e:
        load_config(Path("/nonexistent/geoplan.yaml"))
    assert "not found" in e.value.render("en")
    assert "nicht gefunden" in e.value.render("de")


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**12), st.floats(allow_nan=True),
                     st.text(max_size=20))
_values = st.recursive(_scalars, lambda c: st.one_of(st.lists(c, max_size=4),
                                                     st.dictionaries(st.text(max_size=12), c, max_size=4)),
                       max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.lists(st.sampled_from(list(RAW) + ["boundaries", "model", "allocation", "indicators", "hze"]),
                     min_size=1, max_size=2), value=_values)
def test_fuzz_mutated_config_never_crashes(path, value):
    raw = copy.deepcopy(RAW)
    target = raw
    for p in path[:-1]:
        if not isinstance(target.get(p), dict):
            target[p] = {}
        target = target[p]
    target[path[-1]] = value
    try:
        cfg = config_from_dict(raw, base_dir=EXAMPLE_CONFIG.parent)
    except GeoplanError as e:
        assert e.render()
    else:
        assert isinstance(cfg, Config)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=300))
def test_fuzz_arbitrary_yaml_text(tmp_path_factory, text):
    p = tmp_path_factory.mktemp("cfg") / "c.yaml"
    p.write_text(text, encoding="utf-8")
    try:
        load_config(p)
    except GeoplanError as e:
        assert e.render()


# --------------------------------------------------------------------------
# PostGIS / WFS instead of files (issue 17)


def _invalid(raw) -> str:
    with pytest.raises(GeoplanError) as e:
        config_from_dict(raw, base_dir=EXAMPLE_CONFIG.parent, file="x.yaml")
    return e.value.render("de") + e.value.render("en")


def test_connections_instead_of_paths():
    raw = copy.deepcopy(RAW)
    raw["boundaries"] = {"connection": "PG:service=stadtgis", "layer": "sozialraum.pgr", "key": "id"}
    raw["indicators"]["tables"][0].pop("path")
    raw["indicators"]["tables"][0].update(connection="WFS:https://gdi.example/wfs", layer="einwohner",
                                          wfs_version="1.1.0")
    agg = raw["indicators"]["aggregate"]
    agg.pop("key_table")
    agg.update(key_table_connection="postgresql://jh@gis.example/geo", key_table_layer="stat.lor")
    raw["output"]["postgis"] = {"connection": "PG:service=stadtgis", "table": "jh.budget", "if_exists": "replace"}
    cfg = config_from_dict(raw, base_dir=EXAMPLE_CONFIG.parent)
    assert cfg.boundaries.path is None and cfg.boundaries.display == "sozialraum.pgr"
    assert cfg.indicators.tables[0].display == "einwohner" and cfg.indicators.aggregate.has_key_table
    assert cfg.output.postgis.if_exists == "replace" and cfg.output.qgis_project is False
    # the files that remain are still the inputs the output folder must not hold
    full = config_from_dict(copy.deepcopy(RAW), base_dir=EXAMPLE_CONFIG.parent).input_paths()
    # the boundaries, the first table and the key table now come from connections: exactly they are gone
    gone = {"prognoseraeume_2021.geojson", "einwohner_plr_2022-06.csv", "lor_2021_plr_schluessel.csv"}
    assert gone <= {p.name for p in full}
    assert [p.name for p in cfg.input_paths()] == [p.name for p in full if p.name not in gone]
    assert all(p.is_file() for p in cfg.input_paths())


def test_exactly_one_of_path_and_connection():
    raw = copy.deepcopy(RAW)
    raw["boundaries"]["connection"] = "PG:service=stadtgis"
    assert "genau eines von 'path' (Datei) oder 'connection'" in _invalid(raw)
    raw = copy.deepcopy(RAW)
    raw["indicators"]["tables"][1].pop("path")
    assert "indicators.tables.1" in _invalid(raw) and "genau eines von 'path'" in _invalid(raw)
    raw = copy.deepcopy(RAW)
    raw["indicators"]["aggregate"]["key_table_connection"] = "PG:service=stadtgis"
    assert "'key_table_connection'" in _invalid(raw)
    raw = copy.deepcopy(RAW)
    raw["boundaries"]["sql"] = "SELECT 1"
    assert "nur mit 'connection'" in _invalid(raw)


@pytest.mark.parametrize("connection", [
    "PG:host=gis.example dbname=geo user=jh password=Geheim-4711",
    "postgresql://jh:Geheim-4711@gis.example/geo",
    "WFS:https://jh:Geheim-4711@gdi.example/wfs",
    "Geheim-4711",
    "ftp://Geheim-4711@gdi.example/x",
])
def test_password_in_a_connection_is_refused_and_never_echoed(connection):
    for where in ("boundaries", "table", "key_table", "output"):
        raw = copy.deepcopy(RAW)
        if where == "boundaries":
            raw["boundaries"] = {"connection": connection, "layer": "a.b", "key": "id"}
        elif where == "table":
            raw["indicators"]["tables"][0].pop("path")
            raw["indicators"]["tables"][0].update(connection=connection, layer="a.b")
        elif where == "key_table":
            raw["indicators"]["aggregate"].pop("key_table")
            raw["indicators"]["aggregate"]["key_table_connection"] = connection
        else:
            raw["output"]["postgis"] = {"connection": connection, "table": "a.b"}
        msg = _invalid(raw)
        assert "Geheim-4711" not in msg and "connection" in msg


def test_postgis_output_needs_postgis():
    raw = copy.deepcopy(RAW)
    raw["output"]["postgis"] = {"connection": "WFS:https://gdi.example/wfs", "table": "a.b"}
    assert "nur in PostGIS" in _invalid(raw)
    raw["output"]["postgis"] = {"connection": "PG:service=x", "table": "a.b", "if_exists": "append"}
    assert "output.postgis.if_exists" in _invalid(raw)
