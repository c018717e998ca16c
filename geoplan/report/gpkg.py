"""ergebnis.gpkg: the result layer with every published column and a QGIS style.

Suppressed counts are NULL with a flag column ``<col>_unterdrueckt`` so the
layer keeps numeric types for GIS use. The default style (graduated colours of
the budget per resident under 21, quantile classes as in the report) is stored
in the GeoPackage's ``layer_styles`` table, which QGIS reads when the layer is
opened. GDAL's time stamps are pinned (``OGR_CURRENT_DATE``) so the same result
gives a byte-identical file.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from xml.sax.saxutils import escape

import geopandas as gpd
import mapclassify
import numpy as np
import pandas as pd
import pyogrio

from geoplan import fmt

LAYER = "sozialraeume"
STYLE_COLUMN = "budget_per_u21"
# viridis at 5 steps (colour-blind safe)
VIRIDIS_5 = ["68,1,84", "59,82,139", "33,145,140", "94,201,98", "253,231,37"]


def result_layer(result, pub) -> gpd.GeoDataFrame:
    areas = pub.areas.copy()
    for col in pub.mask.columns:
        if col in areas.columns:
            m = pub.mask[col].to_numpy()
            areas[col] = pd.to_numeric(areas[col].where(~m), errors="coerce").astype("Int64")
            areas[f"{col}_unterdrueckt"] = m
    for col in ("hze_per_1000", "oe_ratio"):
        if col in areas.columns:
            areas[col] = pd.to_numeric(areas[col], errors="coerce")
    g = result.frame[["key", "geometry"]].merge(areas, on="key", how="left", validate="one_to_one")
    g = gpd.GeoDataFrame(g, geometry="geometry", crs=result.frame.crs)
    g["simuliert"] = bool(result.simulated)
    return g


def graduated_qml(values: pd.Series, column: str = STYLE_COLUMN, k: int = 5) -> str:
    """QGIS QML of a graduated renderer with mapclassify quantile classes (German labels)."""
    v = pd.to_numeric(values, errors="coerce").dropna().to_numpy(float)
    k = max(1, min(k, len(np.unique(v))))
    bins = mapclassify.Quantiles(v, k=k).bins
    lowers = np.concatenate([[v.min()], bins[:-1]])
    ranges, symbols = [], []
    for i, (lo, hi) in enumerate(zip(lowers, bins)):
        label = f"{fmt.number(lo, 2)} – {fmt.number(hi, 2)}"
        ranges.append(f'<range render="true" symbol="{i}" lower="{float(lo)!r}" upper="{float(hi)!r}" label="{escape(label)}"/>')
        color = VIRIDIS_5[round(i * (len(VIRIDIS_5) - 1) / max(k - 1, 1))]
        symbols.append(
            f'<symbol type="fill" name="{i}" alpha="1" clip_to_extent="1" force_rhr="0">'
            f'<layer class="SimpleFill" enabled="1" pass="0" locked="0">'
            f'<prop k="color" v="{color},255"/><prop k="outline_color" v="255,255,255,255"/>'
            f'<prop k="outline_style" v="solid"/><prop k="outline_width" v="0.26"/>'
            f'<prop k="outline_width_unit" v="MM"/><prop k="style" v="solid"/></layer></symbol>'
        )
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        '<qgis version="3.28.0" styleCategories="Symbology|Labeling">\n'
        f'<renderer-v2 type="graduatedSymbol" attr="{column}" graduatedMethod="GraduatedColor" '
        'symbollevels="0" enableorderby="0" forceraster="0">\n'
        f"<ranges>{''.join(ranges)}</ranges>\n<symbols>{''.join(symbols)}</symbols>\n"
        '<mode name="quantile"/></renderer-v2>\n'
        '<labeling type="simple"><settings calloutType="simple"><text-style fieldName="name" fontSize="8" '
        'textColor="30,30,30,255"/><text-buffer bufferDraw="1" bufferSize="0.8" bufferColor="255,255,255,255"/>'
        '</settings></labeling>\n</qgis>\n'
    )


def write_layer_style(path: Path, qml: str, *, layer: str = LAYER, geometry_column: str = "geom",
                      stamp: str = "2000-01-01T00:00:00Z") -> None:
    """Create the QGIS ``layer_styles`` table and store ``qml`` as the layer's default style."""
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
            " VALUES ('', '', ?, ?, ?, ?, '', 1, ?, 'geoplan', '', ?)",
            (layer, geometry_column, "Budget je Einwohner unter 21", qml,
             "geoplan: Budget je Einwohner unter 21, Quantile", stamp),
        )
        # register the table as plain attributes so GDAL/QGIS accept the GeoPackage as valid
        con.execute(
            "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, last_change)"
            " VALUES ('layer_styles', 'attributes', 'layer_styles', ?)", (stamp,)
        )
        con.commit()
    finally:
        con.close()


def write_gpkg(result, pub, path: Path) -> Path:
    g = result_layer(result, pub)
    stamp = f"{result.config.budget_year}-01-01T00:00:00.000Z"
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": stamp})
    try:
        g.to_file(path, layer=LAYER, driver="GPKG", engine="pyogrio")
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": None})
    if STYLE_COLUMN in g.columns:
        write_layer_style(path, graduated_qml(g[STYLE_COLUMN]), stamp=stamp)
    return path
