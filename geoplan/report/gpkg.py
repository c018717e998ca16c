"""ergebnis.gpkg: the result layer with every published column, field aliases and one QGIS style per measure.

Suppressed counts are NULL with a flag column ``<col>_unterdrueckt`` so the
layer keeps numeric types for GIS use. The GeoPackage's ``layer_styles`` table
holds one style per published measure with the classes and colours of the
report's maps (:mod:`geoplan.report.styles`, the same styles as ergebnis.qgz
and a PostGIS table): the budget per head (default), the budget, the change
against the prior year (fixed classes centred on 0, aligned to the corridor,
on the class column ``veraenderung_klasse``), the need index, the expected
demand per 1,000, the observed/expected ratio and, with BYM2, the probability
that the budget lies below need (class column ``unter_bedarf_klasse``). Each
style carries the QML (renderer, area labels, German or English field
aliases) and an SLD of the same classes. ``gpkg_data_columns`` (GeoPackage schema extension) gives every
field its German name (``name``, shown by GDAL/QGIS as the alias), English
title and an explanation in both languages.

Dates: the layer's and the styles' time stamp is the date of the data (the
newest reference date of the inputs), or ``SOURCE_DATE_EPOCH`` when set; GDAL's
time stamps are pinned (``OGR_CURRENT_DATE``) so the same result gives a
byte-identical file.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
import geopandas as gpd
import pandas as pd
import pyogrio


LAYER = "sozialraeume"
from geoplan.report.i18n import relabel  # noqa: E402

STYLE_COLUMN = "budget_per_u21"


def result_layer(result, pub) -> gpd.GeoDataFrame:
    areas = pub.areas.copy()
    for col in pub.mask.columns:
        if col in areas.columns:
            m = pub.mask[col].to_numpy()
            areas[col] = pd.to_numeric(areas[col].where(~m), errors="coerce").astype("Int64")
            areas[f"{col}_unterdrueckt"] = m
    for col in ("hze_per_1000", "oe_ratio", "hze_cases_forecast"):
        if col in areas.columns:
            areas[col] = pd.to_numeric(areas[col], errors="coerce")
    g = result.frame[["key", "geometry"]].merge(areas, on="key", how="left", validate="one_to_one")
    g = gpd.GeoDataFrame(g, geometry="geometry", crs=result.frame.crs)
    g["simuliert"] = bool(result.simulated)
    return g


def write_layer_style(path: Path, qml: str, *, layer: str = LAYER, geometry_column: str = "geom",
                      stamp: str = "2000-01-01T00:00:00Z", name: str = "Budget je Einwohner unter 21",
                      description: str = "geoplan: Budget je Einwohner unter 21, Quantile", default: bool = True,
                      sld: str = "") -> None:
    """Create the QGIS ``layer_styles`` table (if needed) and store ``qml`` (and ``sld``) as a style of the layer."""
    con = sqlite3.connect(path)
    try:
        con.execute(
            """CREATE TABLE IF NOT EXISTS layer_styles (
                id INTEGER PRIMARY KEY AUTOINCREMENT, f_table_catalog TEXT(256), f_table_schema TEXT(256),
                f_table_name TEXT(256), f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT,
                styleSLD TEXT, useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30),
                update_time DATETIME)"""
        )
        con.execute(
            "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, f_geometry_column, styleName,"
            " styleQML, styleSLD, useAsDefault, description, owner, ui, update_time)"
            " VALUES ('', '', ?, ?, ?, ?, ?, ?, ?, 'geoplan', '', ?)",
            (layer, geometry_column, relabel(name), qml, sld, 1 if default else 0, relabel(description), stamp),
        )
        # register the table as plain attributes so GDAL/QGIS accept the GeoPackage as valid
        con.execute(
            "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, last_change)"
            " VALUES ('layer_styles', 'attributes', 'layer_styles', ?)", (stamp,)
        )
        con.commit()
    finally:
        con.close()


# --------------------------------------------------------------------------- field names for readers
def field_words(g, pub) -> dict[str, tuple[str, str, str]]:
    """Column -> (German name, English title, explanation in both languages) for every attribute of the layer."""
    from geoplan.report import vocabulary as voc

    by_pub = {c: (de, en) for c, de, en, _f in pub.columns}
    out = {}
    for col in g.columns:
        if col == g.geometry.name:
            continue
        if col in by_pub:
            de, en = by_pub[col]
        else:
            base = col[: -len("_unterdrueckt")] if col.endswith("_unterdrueckt") else None
            if base is not None and base in by_pub:
                de, en = f"{by_pub[base][0]}: unterdrückt", f"{by_pub[base][1]}: suppressed"
            else:
                de = voc.column_label(col, "de") or col
                en = voc.column_label(col, "en") or col
        t = voc.term("budget_per_u21" if col.startswith("budget_per_") else col)
        unit = t.unit if t else ""
        if unit == "€" and "€" not in de:
            de, en = f"{de} (€)", f"{en} (€)"
        elif unit == "%" and "%" not in de:
            de, en = f"{de} (%)", f"{en} (%)"
        if col.endswith("_unterdrueckt"):
            desc = ("wahr, wenn der Wert zum Schutz kleiner Fallzahlen nicht veröffentlicht ist / "
                    "true where the value is withheld to protect small case counts")
        elif t is not None and (t.explain_de or t.explain_en):
            desc = f"{t.explain_de} / {t.explain_en}"
        else:
            desc = f"{de} / {en}"
        out[col] = (de, en, desc)
    # gpkg_data_columns.name is unique per table
    seen: dict[str, int] = {}
    for col, (de, en, desc) in out.items():
        n = seen.get(de, 0)
        seen[de] = n + 1
        if n:
            out[col] = (f"{de} ({n + 1})", en, desc)
    return out


def write_data_columns(path: Path, words: dict[str, tuple[str, str, str]], *, table: str = LAYER) -> None:
    """GeoPackage schema extension: each column's German name, English title and explanation."""
    con = sqlite3.connect(path)
    try:
        con.execute("""CREATE TABLE IF NOT EXISTS gpkg_data_columns (table_name TEXT NOT NULL, column_name TEXT NOT NULL,
                       name TEXT, title TEXT, description TEXT, mime_type TEXT, constraint_name TEXT,
                       CONSTRAINT pk_gdc PRIMARY KEY (table_name, column_name),
                       CONSTRAINT gdc_tn UNIQUE (table_name, name))""")
        con.execute("""CREATE TABLE IF NOT EXISTS gpkg_data_column_constraints (constraint_name TEXT NOT NULL,
                       constraint_type TEXT NOT NULL, value TEXT, min NUMERIC, min_is_inclusive BOOLEAN, max NUMERIC,
                       max_is_inclusive BOOLEAN, description TEXT,
                       CONSTRAINT gdcc_ntv UNIQUE (constraint_name, constraint_type, value))""")
        for t in ("gpkg_data_columns", "gpkg_data_column_constraints"):
            con.execute("INSERT OR IGNORE INTO gpkg_extensions (table_name, column_name, extension_name, definition, scope)"
                        " VALUES (?, NULL, 'gpkg_schema', 'http://www.geopackage.org/spec/#extension_schema', 'read-write')",
                        (t,))
        con.executemany("INSERT OR REPLACE INTO gpkg_data_columns (table_name, column_name, name, title, description)"
                        " VALUES (?, ?, ?, ?, ?)", [(table, c, de, en, desc) for c, (de, en, desc) in words.items()])
        con.commit()
    finally:
        con.close()


def data_date(result) -> str:
    """Time stamp of layer and styles: ``SOURCE_DATE_EPOCH`` if set, else the newest reference date of the inputs
    (the date the data describe), else 1 January of the budget year."""
    import os
    import re
    from datetime import datetime, timezone

    if os.environ.get("SOURCE_DATE_EPOCH", "").strip().isdigit():
        return datetime.fromtimestamp(int(os.environ["SOURCE_DATE_EPOCH"]), timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    dates = []
    for i in getattr(result, "inputs", []) or []:
        d = str(getattr(i, "reference_date", "") or "")
        m = re.search(r"(\d{1,2})\.(\d{1,2})\.(\d{4})", d)
        iso = re.search(r"(\d{4})-(\d{2})-(\d{2})", d)
        try:
            if m:
                dates.append(datetime(int(m.group(3)), int(m.group(2)), int(m.group(1))))
            elif iso:
                dates.append(datetime(int(iso.group(1)), int(iso.group(2)), int(iso.group(3))))
        except ValueError:
            continue
    if dates:
        return max(dates).strftime("%Y-%m-%dT00:00:00.000Z")
    return f"{result.config.budget_year}-01-01T00:00:00.000Z"


def styled_layer(result, pub, lang: str = "de"):
    """The result layer as geoplan writes it (GeoPackage, PostGIS) and its styled measures
    (:func:`geoplan.report.styles.style_layers`; :func:`geoplan.report.styles.layer_styles` makes the styles
    once the field aliases are known).

    The budget per head is named after the config's exposure (``budget_per_u18``
    for ``pop_u18``); the class columns of the fixed-class measures are added.
    """
    from geoplan.report.styles import add_class_columns, style_column, style_layers

    g = result_layer(result, pub).rename(columns={STYLE_COLUMN: style_column(result)})
    layers = style_layers(g, lang, result.config.allocation.corridor, style_column=style_column(result))
    g = add_class_columns(g, layers, lang)
    return g, layers


def layer_aliases(result, pub, g, lang: str = "de") -> tuple[dict[str, tuple[str, str, str]], dict[str, str]]:
    """:func:`field_words` of the written layer ``g`` (the budget per head under its exposure's name) and the
    field aliases in ``lang`` (the styles' aliases, the same in the GeoPackage, ergebnis.qgz and PostGIS)."""
    from dataclasses import replace

    from geoplan.report.styles import style_column

    pub_cols = [(style_column(result) if c == STYLE_COLUMN else c, de, en, f) for c, de, en, f in pub.columns]
    words = field_words(g, replace(pub, columns=pub_cols))
    return words, {c: (w[1] if lang == "en" else w[0]) for c, w in words.items()}


def write_gpkg(result, pub, path: Path, lang: str = "de") -> Path:
    from geoplan.report.styles import layer_styles

    g, layers = styled_layer(result, pub, lang)
    stamp = data_date(result)
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": stamp})
    try:
        g.to_file(path, layer=LAYER, driver="GPKG", engine="pyogrio")
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": None})
    words, aliases = layer_aliases(result, pub, g, lang)
    write_data_columns(path, words)
    for style in layer_styles(g, layers, lang=lang, aliases=aliases, layer_name=LAYER):
        write_layer_style(path, style.qml, stamp=stamp, name=style.name, description=style.description,
                          default=style.default, sld=style.sld)
    return path
