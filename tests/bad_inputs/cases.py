"""The broken inputs. Each ``case_*`` returns (argv, fragments of the expected message)."""

from __future__ import annotations

import copy
import json
import shutil

import geopandas as gpd
from shapely.geometry import Polygon

from tests.bad_inputs import BOUNDARIES, Workspace

EW = "einwohner_plr_2022-06.csv"
MSS = "mss_2021_index_indikatoren.csv"
KEYS = "lor_2021_plr_schluessel.csv"
GJ = BOUNDARIES.name


def _replace_in_row(ws: Workspace, name: str, key: str, old_to_new, count: int = 1):
    def fn(lines):
        out = []
        for line in lines:
            if key in line:
                line = old_to_new(line)
            out.append(line)
        return out
    return ws.edit_lines(name, fn)


# ----------------------------------------------------------------- boundaries

def case_boundaries_missing(ws):
    ws.raw["boundaries"]["path"] = "daten/gibtsnicht.geojson"
    return ws.run_args(), ["gibtsnicht.geojson", "boundaries.path"]


def case_boundaries_bowtie(ws):
    g = ws.geojson()
    g["features"][3]["geometry"] = {"type": "Polygon", "coordinates": [[[390000, 5820000], [391000, 5821000],
                                                                          [391000, 5820000], [390000, 5821000],
                                                                          [390000, 5820000]]]}
    key = g["features"][3]["properties"]["id"]
    ws.write_geojson(g)
    return ws.run_args(), [GJ, key, "repair"]


def case_boundaries_empty_geometry(ws):
    g = ws.geojson()
    g["features"][5]["geometry"] = None
    key = g["features"][5]["properties"]["id"]
    ws.write_geojson(g)
    return ws.run_args(), [GJ, key]


def case_boundaries_duplicate_key(ws):
    g = ws.geojson()
    dup = g["features"][1]["properties"]["id"]
    g["features"][2]["properties"]["id"] = dup
    ws.write_geojson(g)
    return ws.run_args(), [GJ, dup]


def case_boundaries_key_column_missing(ws):
    ws.raw["boundaries"]["key"] = "PRG_ID"
    return ws.run_args(), [GJ, "PRG_ID", "id"]


def case_boundaries_degrees_as_metres(ws):
    g = gpd.read_file(BOUNDARIES).to_crs(4326)
    g = g.set_crs(25833, allow_override=True)
    g.to_file(ws.data / "grad.geojson", driver="GeoJSON")
    ws.raw["boundaries"]["path"] = "daten/grad.geojson"
    return ws.run_args(), ["grad.geojson", "EPSG:4326"]


def case_boundaries_metres_as_degrees(ws):
    g = gpd.read_file(BOUNDARIES).set_crs(4326, allow_override=True)
    g.to_file(ws.data / "meter.gpkg", layer="sr", driver="GPKG")
    ws.raw["boundaries"]["path"] = "daten/meter.gpkg"
    return ws.run_args(), ["meter.gpkg", "EPSG:25833"]


def case_boundaries_shapefile_without_prj(ws):
    g = gpd.read_file(BOUNDARIES)
    g.to_file(ws.data / "sr.shp")
    (ws.data / "sr.prj").unlink()
    ws.raw["boundaries"]["path"] = "daten/sr.shp"
    return ws.run_args(), ["sr.shp", "crs"]


def case_boundaries_empty_layer(ws):
    g = gpd.read_file(BOUNDARIES).iloc[0:0]
    g.to_file(ws.data / "leer.gpkg", layer="sozialraeume", driver="GPKG")
    ws.raw["boundaries"]["path"] = "daten/leer.gpkg"
    return ws.run_args(), ["leer.gpkg", "leer"]


def case_boundaries_truncated(ws):
    p = ws.data / GJ
    p.write_bytes(p.read_bytes()[:50000])
    return ws.run_args(), [GJ]


def case_boundaries_ambiguous_layers(ws):
    g = gpd.read_file(BOUNDARIES)
    p = ws.data / "zwei.gpkg"
    g.to_file(p, layer="sozialraeume_2021", driver="GPKG")
    g.to_file(p, layer="sozialraeume_2019", driver="GPKG")
    ws.raw["boundaries"]["path"] = "daten/zwei.gpkg"
    return ws.run_args(), ["zwei.gpkg", "sozialraeume_2021", "sozialraeume_2019", "layer"]


def case_boundaries_wrong_layer(ws):
    g = gpd.read_file(BOUNDARIES)
    g.to_file(ws.data / "eins.gpkg", layer="sozialraeume", driver="GPKG")
    ws.raw["boundaries"]["path"] = "daten/eins.gpkg"
    ws.raw["boundaries"]["layer"] = "sozialräume"
    return ws.run_args(), ["eins.gpkg", "sozialraeume"]


def case_boundaries_not_geodata(ws):
    (ws.data / "polygone.geojson").write_text("Schlüssel;Name\n0110;Zentrum\n", encoding="utf-8")
    ws.raw["boundaries"]["path"] = "daten/polygone.geojson"
    return ws.run_args(), ["polygone.geojson"]


def case_boundaries_polygon_missing_for_key(ws):
    g = ws.geojson()
    g["features"] = [f for f in g["features"] if f["properties"]["id"] != "0110"]
    ws.write_geojson(g)
    return ws.run_args(), ["0110"]


# ----------------------------------------------------------------- tables

def case_table_missing(ws):
    ws.raw["indicators"]["tables"][0]["path"] = "daten/einwohner_2030.csv"
    return ws.run_args(), ["einwohner_2030.csv", "indicators.tables[0].path"]


def case_table_keys_lost_leading_zeros(ws):
    """As after a round trip through Excel: 01100101 became 1100101."""
    def fix(lines):
        out = [lines[0]]
        for line in lines[1:]:
            cells = line.split(";")
            cells[-1] = cells[-1].lstrip("0")
            out.append(";".join(cells))
        return out
    ws.edit_lines(EW, fix)
    return ws.run_args(), [EW, "key_width"]


def case_table_duplicate_key(ws):
    ws.edit_lines(EW, lambda ls: ls + [ls[5]])
    key = ws.table(EW).read_text(encoding="utf-8-sig").splitlines()[5].split(";")[-1]
    return ws.run_args(), [EW, key]


def case_table_text_in_number_column(ws):
    _replace_in_row(ws, EW, "01100103", lambda l: l.replace("5537", "55x7", 1))
    return ws.run_args(), [EW, "55x7", "Gesamt"]


def case_table_mixed_decimal(ws):
    def fn(lines):
        out = [lines[0]]
        for i, l in enumerate(lines[1:]):
            cells = l.split(",")
            # S1 is column index 5 (after ZEIT, PLR_ID, PLR_NAME, EW, BEZ_ID)
            if i % 2 == 0 and "." in cells[5]:
                cells[5] = '"' + cells[5].replace(".", ",") + '"'
            out.append(",".join(cells))
        return out
    ws.edit_lines(MSS, fn, encoding="utf-8")
    return ws.run_args(), [MSS, "S1"]


def case_table_key_column_missing(ws):
    ws.raw["indicators"]["tables"][0]["key"] = "PLR_ID"
    return ws.run_args(), [EW, "PLR_ID", "PLR-ID"]


def case_table_config_column_missing(ws):
    ws.raw["indicators"]["tables"][1]["columns"]["S99"] = "phantasie"
    return ws.run_args(), [MSS, "S99", "indicators.tables[1]"]


def case_table_empty(ws):
    ws.table(EW).write_text("", encoding="utf-8")
    return ws.run_args(), [EW, "leer"]


def case_table_truncated(ws):
    p = ws.table(MSS)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return ws.run_args(), [MSS]


def case_table_wrong_encoding(ws):
    p = ws.table(EW)
    p.write_bytes(p.read_text(encoding="utf-8-sig").replace("–", "-").encode("utf-8"))
    # the key table's names contain umlauts; written as cp1252 but declared as UTF-8
    k = ws.table(KEYS)
    k.write_bytes(k.read_text(encoding="utf-8-sig").encode("cp1252"))
    ws.raw["indicators"]["aggregate"]["key_table_encoding"] = "utf-8"
    return ws.run_args(), [KEYS, "cp1252"]


def case_table_negative_population(ws):
    _replace_in_row(ws, EW, "01100103", lambda l: l.replace("5537", "-5537", 1))
    return ws.run_args(), [EW, "01100103", "negativ"]


def case_table_zero_population(ws):
    def fn(lines):
        out = [lines[0]]
        for l in lines[1:]:
            cells = l.split(";")
            if cells[-1].startswith("0110"):
                cells = ["0"] * (len(cells) - 1) + [cells[-1]]
            out.append(";".join(cells))
        return out
    ws.edit_lines(EW, fn)
    return ws.run_args(), ["0110", "pop_u21"]


def case_table_rate_above_100(ws):
    _replace_in_row(ws, MSS, '"01100103"', lambda l: l.replace("32.63158", "132.63158", 1), )
    return ws.run_args(), [MSS, "01100103", "100"]


def case_table_other_year(ws):
    ws.edit_text(MSS, lambda t: t.replace("\n202012,", "\n202212,"), encoding="utf-8")
    ws.raw["indicators"]["tables"][1]["period"] = {"column": "ZEIT", "value": "202012"}
    return ws.run_args(), [MSS, "ZEIT", "202012", "202212"]


def case_key_table_missing_source_key(ws):
    ws.edit_lines(KEYS, lambda ls: [l for l in ls if not l.split(",")[1] == "01100103"])
    return ws.run_args(), ["01100103", KEYS]


def case_key_table_target_column_missing(ws):
    ws.raw["indicators"]["aggregate"]["target_key"] = "Prognoseraum (Nr)"
    return ws.run_args(), [KEYS, "Prognoseraum (Nr)"]


def case_derived_unknown_column(ws):
    ws.raw["indicators"]["derived"]["pop_u21"]["pop_18_21"] = 1
    return ws.run_args(), ["pop_18_21", "indicators.derived.pop_u21"]


# ----------------------------------------------------------------- catalogue

def case_catalogue_unknown_field(ws):
    ws.edit_text("katalog.yaml", lambda t: t.replace("unit:", "einheit: x\n    unit:", 1), encoding="utf-8")
    return ws.run_args(), ["katalog.yaml", "einheit"]


def case_catalogue_bad_unit(ws):
    ws.edit_text("katalog.yaml", lambda t: t.replace('unit: "%"', 'unit: "Prozent"', 1).replace("unit: '%'", "unit: 'Prozent'", 1),
                 encoding="utf-8")
    return ws.run_args(), ["katalog.yaml", "Prozent"]


# ----------------------------------------------------------------- config

def case_config_missing(ws):
    return ["run", str(ws.root / "nicht_da.yaml"), "--out", str(ws.out)], ["nicht_da.yaml", "geoplan init"]


def case_config_yaml_syntax(ws):
    p = ws.root / "kaputt.yaml"
    p.write_text("title: x\nregion: [Berlin\nbudget_year: 2027\n", encoding="utf-8")
    return ["run", str(p), "--out", str(ws.out)], ["kaputt.yaml", "Zeile"]


def case_config_not_mapping(ws):
    p = ws.root / "liste.yaml"
    p.write_text("- a\n- b\n", encoding="utf-8")
    return ["run", str(p), "--out", str(ws.out)], ["liste.yaml", "Zuordnung"]


def case_config_not_utf8(ws):
    p = ws.write_config()
    p.write_bytes(p.read_text(encoding="utf-8").encode("cp1252"))
    return ["run", str(p), "--out", str(ws.out)], ["config.yaml", "UTF-8"]


def case_config_unknown_top_field(ws):
    ws.raw["budgetjahr"] = 2027
    return ws.run_args(), ["budgetjahr", "budget_year"]


def case_config_unknown_nested_field(ws):
    ws.raw["allocation"]["components"][0]["wieght"] = 0.3
    return ws.run_args(), ["wieght", "allocation.components"]


def case_config_missing_required(ws):
    del ws.raw["region"]
    return ws.run_args(), ["region", "fehlt"]


def case_config_budget_year_out_of_range(ws):
    ws.raw["budget_year"] = 1850
    return ws.run_args(), ["budget_year", "1850"]


def case_weights_do_not_sum_to_one(ws):
    ws.raw["allocation"]["components"][0]["weight"] = 0.5
    return ws.run_args(), ["grundanteil", "1"]


def case_total_negative(ws):
    ws.raw["allocation"]["total_eur"] = -5
    return ws.run_args(), ["total_eur"]


def case_total_zero(ws):
    ws.raw["allocation"]["total_eur"] = 0
    return ws.run_args(), ["total_eur"]


def case_unknown_component_type(ws):
    ws.raw["allocation"]["components"][0]["type"] = "kopfpauschale"
    return ws.run_args(), ["kopfpauschale", "population"]


def case_component_column_missing(ws):
    ws.raw["allocation"]["components"][0]["columns"] = ["pop_unter21"]
    return ws.run_args(), ["pop_unter21", "grundanteil"]


def case_teilbudget_refers_to_itself(ws):
    ws.raw["allocation"]["teilbudgets"] = [
        {"id": "A", "label": "Einzelfallhilfen", "remainder": True},
        {"id": "B", "label": "Fallunspezifisch", "percent": 6, "percent_of": "B"},
    ]
    return ws.run_args(), ["B", "percent_of"]


def case_corridor_infeasible(ws):
    ws.raw["allocation"]["corridor"] = {"max_change_pct": 1.0}
    ws.raw["allocation"]["total_eur"] = 60_000_000
    return ws.run_args(), ["Korridor"]


def case_predictor_unknown(ws):
    ws.raw["model"]["predictors"] = ["kinderarmut", "armut_gesamt"]
    return ws.run_args(), ["armut_gesamt", "model.predictors"]


def case_hze_file_missing(ws):
    ws.raw["hze"] = {"path": "daten/hze.csv", "key": "SR", "columns": {"F": "hze_cases"}}
    return ws.run_args(), ["hze.csv", "hze.path"]


def _hze_file(ws, rows):
    g = ws.geojson()
    keys = [f["properties"]["id"] for f in g["features"]]
    lines = ["SR;Faelle;Kosten"] + [f"{k};{rows(i)};{1_000_000 + i}" for i, k in enumerate(keys)]
    (ws.data / "hze.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    ws.raw["hze"] = {"path": "daten/hze.csv", "key": "SR",
                     "columns": {"Faelle": "hze_cases", "Kosten": "hze_cost_prev_eur"}}
    return keys


def case_hze_negative_counts(ws):
    keys = _hze_file(ws, lambda i: -4 if i == 7 else 300 + i)
    return ws.run_args(), ["hze_cases", keys[7]]


def case_hze_non_integer_counts(ws):
    keys = _hze_file(ws, lambda i: "12,5" if i == 9 else 300 + i)
    return ws.run_args(), ["hze_cases", keys[9]]


def case_hze_key_unknown(ws):
    _hze_file(ws, lambda i: 300 + i)
    ws.edit_text("hze.csv", lambda t: t + "9999;12;13\n", encoding="utf-8")
    return ws.run_args(), ["hze.csv", "9999"]


# ----------------------------------------------------------------- output

def case_output_is_a_file(ws):
    ws.out.write_text("ich bin eine Datei")
    return ws.run_args(), ["ausgabe", "Ordner"]


def case_output_not_empty(ws):
    ws.out.mkdir()
    (ws.out / "bericht_alt.html").write_text("alt")
    return ws.run_args(), ["ausgabe", "--force"]


def case_unknown_language(ws):
    return ["--lang", "fr", "validate", str(ws.write_config())], ["de", "en", "fr"]


# ----------------------------------------------------------------- issue 12: hostile and implausible input

def _yaml_text(ws) -> str:
    import yaml

    return yaml.safe_dump(ws.raw, allow_unicode=True, sort_keys=False)


def _write_raw_config(ws, text: str) -> list[str]:
    p = ws.root / "config.yaml"
    p.write_text(text, encoding="utf-8")
    return ["run", str(p), "--out", str(ws.out)]


def case_config_duplicate_key(ws):
    text = _yaml_text(ws).replace("budget_year: 2027\n", "budget_year: 2027\nbudget_year: 2028\n", 1)
    return _write_raw_config(ws, text), ["budget_year", "zweimal", "config.yaml"]


def case_config_nan_total(ws):
    text = _yaml_text(ws).replace("total_eur: 120000000", "total_eur: .nan", 1)
    return _write_raw_config(ws, text), ["allocation.total_eur", "NaN", "config.yaml"]


def case_config_inf_rate(ws):
    ws.raw["hze"]["simulate"]["rate_per_1000"] = float("inf")
    return ws.run_args(), ["hze.simulate.rate_per_1000", "unendlich"]


def case_config_negative_value_german(ws):
    ws.raw["model"]["n_boot"] = -5
    return ws.run_args(), ["model.n_boot", "mindestens 100", "-5"]


def case_config_budget_1e20(ws):
    ws.raw["allocation"]["total_eur"] = 1e20
    return ws.run_args(), ["allocation.total_eur", "unrealistisch"]


def case_simulate_seed_negative(ws):
    ws.raw["hze"]["simulate"]["seed"] = -1
    return ws.run_args(), ["hze.simulate.seed", "mindestens 0"]


def _hze_prev_file(ws, cases, prev):
    g = ws.geojson()
    keys = [f["properties"]["id"] for f in g["features"]]
    lines = ["SR;Faelle;Vorjahr;Kosten"] + [f"{k};{cases(i)};{prev(i)};{(prev(i) or 1) * 9000}"
                                            for i, k in enumerate(keys)]
    (ws.data / "hze.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    ws.raw["hze"] = {"path": "daten/hze.csv", "key": "SR",
                     "columns": {"Faelle": "hze_cases", "Vorjahr": "hze_cases_prev", "Kosten": "hze_cost_prev_eur"}}
    return keys


def case_privacy_component_on_observed_counts(ws):
    """Issue 12: euros proportional to counts of 1-2 would give the counts back."""
    _hze_prev_file(ws, lambda i: 1 + i % 2, lambda i: 1 + (i + 1) % 2)
    ws.raw["allocation"]["components"][1] = {"name": "faelle", "type": "model", "weight": 0.5,
                                             "column": "hze_cases_prev"}
    return ws.run_args(), ["hze_cases_prev", "allocation.components[1].column", "zurückrechnen",
                           "expected_cases", "Vorjahreskosten"]


def case_privacy_component_on_observed_counts_validate(ws):
    _hze_prev_file(ws, lambda i: 1 + i % 2, lambda i: 2)
    ws.raw["allocation"]["components"][0] = {"name": "faelle", "type": "fachleistungsstunden", "weight": 0.3,
                                             "column": "hze_cases", "hours_per_case": 100, "rate_eur_per_hour": 60}
    return ["validate", str(ws.write_config())], ["hze_cases", "allocation.components[0].column", "expected_cases"]


def case_hze_cases_exceed_population(ws):
    keys = _hze_file(ws, lambda i: 500_000 if i == 3 else 300 + i)
    return ws.run_args(), ["hze.csv", keys[3], "500000", "pop_u21"]


def case_hze_all_zero(ws):
    _hze_file(ws, lambda i: 0)
    return ws.run_args(), ["hze.csv", "hze_cases", "alle", "0"]


def case_hze_cost_per_case_implausible(ws):
    keys = _hze_prev_file(ws, lambda i: 300 + i, lambda i: 290 + i)
    # costs given in thousands of euros for one area
    ws.edit_text("hze.csv", lambda t: t.replace(f"{keys[4]};304;294;{294 * 9000}", f"{keys[4]};304;294;2646"),
                 encoding="utf-8")
    return ws.run_args(), ["hze.csv", keys[4], "hze_cost_prev_eur", "je Fall", "cost_per_case_range_eur"]


def case_table_path_is_not_a_table(ws):
    """Like /etc/shadow: the message must not print the file's content."""
    secret = "root:$6$geheimerHash0123456789:19000:0:99999:7:::"
    (ws.data / "schatten").write_text(secret + "\n" + "daemon:*:19000:0:99999:7:::\n", encoding="utf-8")
    ws.raw["indicators"]["tables"][0]["path"] = "daten/schatten"
    return ws.run_args(), ["schatten", "Trennzeichen", "Inhalt wird nicht angezeigt"]


def case_xlsx_formulas_without_cached_values(ws):
    import openpyxl

    wb = openpyxl.Workbook()
    sh = wb.active
    sh.title = "Daten"
    sh.append(["PLR-ID", "Gesamt", "unter6", "6-15", "15-18", "18-27", "27-45", "45-55", "55-65", "65undmehr"])
    for line in ws.table(EW).read_text(encoding="utf-8-sig").splitlines()[1:6]:
        cells = line.split(";")
        sh.append([cells[-1], "=C{0}+D{0}".format(sh.max_row + 1)] + [1] * 8)
    wb.save(ws.data / "einwohner.xlsx")
    t = ws.raw["indicators"]["tables"][0]
    t["path"] = "daten/einwohner.xlsx"
    return ws.run_args(), ["einwohner.xlsx", "Formeln ohne gespeicherte Werte", "in Excel öffnen und speichern", "B2"]


def case_output_is_config_folder_force(ws):
    return ws.run_args() + ["--out", str(ws.root), "--force"], [str(ws.root), "nicht erlaubt", "config.yaml"]


def case_output_is_input_folder_force(ws):
    return ws.run_args() + ["--out", str(ws.data), "--force"], [str(ws.data), "nicht erlaubt", "Eingabedatei"]


def case_output_is_input_file_force(ws):
    return ws.run_args() + ["--out", str(ws.data / EW), "--force"], [EW, "nicht erlaubt"]


def case_output_filesystem_root_force(ws):
    return ws.run_args() + ["--out", "/", "--force"], ["Wurzelverzeichnis"]


def case_output_foreign_folder_force(ws):
    ws.out.mkdir()
    (ws.out / "bericht_2025_final.docx").write_text("fremd")
    return ws.run_args() + ["--force"], ["nicht von geoplan geschrieben", "bericht_2025_final.docx"]


def case_output_name_too_long(ws):
    return ws.run_args() + ["--out", str(ws.root / ("a" * 300))], ["zu lang"]


def case_usage_unknown_option(ws):
    return ws.run_args() + ["--schnell"], ["Unbekannte Option", "--schnell", "geoplan run --help"]


def case_usage_missing_argument(ws):
    return ["run", "--out", str(ws.out)], ["CONFIG", "geoplan run --help"]


def case_usage_option_without_value(ws):
    return ws.run_args() + ["--out"], ["--out", "braucht einen Wert"]


def case_init_into_missing_folder(ws):
    return ["init", str(ws.root / "gibtsnicht" / "geoplan.yaml")], ["gibtsnicht", "existiert nicht"]


CASES = {name[len("case_"):]: fn for name, fn in sorted(globals().items()) if name.startswith("case_") and callable(fn)}
