"""ergebnis.gpkg: the result layer with every published column and a QGIS style.

Suppressed counts are NULL with a flag column ``<col>_unterdrueckt`` so the
layer keeps numeric types for GIS use. The default style (graduated colours of
the budget per resident under 21, quantile classes as in the report) and a
second style of the change against the prior year (fixed classes centred on 0,
aligned to the corridor, on the class column ``veraenderung_klasse``) are stored
in the GeoPackage's ``layer_styles`` table, which QGIS reads when the layer is
opened. GDAL's time stamps are pinned (``OGR_CURRENT_DATE``) so the same result
gives a byte-identical file.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from xml.sax.saxutils import escape

import geopandas as gpd
import pandas as pd
import pyogrio


LAYER = "sozialraeume"
from geoplan.report.i18n import relabel  # noqa: E402

STYLE_COLUMN = "budget_per_u21"
CHANGE_CLASS_COLUMN = "veraenderung_klasse"


def _rgb(hex_color: str) -> str:
    h = hex_color.lstrip("#")
    return ",".join(str(int(h[i:i + 2], 16)) for i in (0, 2, 4))


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


def _symbol(i, color: str) -> str:
    return (f'<symbol type="fill" name="{i}" alpha="1" clip_to_extent="1" force_rhr="0">'
            f'<layer class="SimpleFill" enabled="1" pass="0" locked="0">'
            f'<prop k="color" v="{_rgb(color)},255"/><prop k="outline_color" v="255,255,255,255"/>'
            f'<prop k="outline_style" v="solid"/><prop k="outline_width" v="0.26"/>'
            f'<prop k="outline_width_unit" v="MM"/><prop k="style" v="solid"/></layer></symbol>')


_QML_HEAD = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n<qgis version=\"3.28.0\" styleCategories=\"Symbology|Labeling\">\n"
_QML_TAIL = ('<labeling type="simple"><settings calloutType="simple"><text-style fieldName="name" fontSize="8" '
             'textColor="30,30,30,255"/><text-buffer bufferDraw="1" bufferSize="0.8" bufferColor="255,255,255,255"/>'
             '</settings></labeling>\n</qgis>\n')


def graduated_qml(values: pd.Series, column: str = STYLE_COLUMN, k: int = 5) -> str:
    """QGIS QML of a graduated renderer with the report's quantile classes (:func:`geoplan.report.maps.classify`)."""
    from geoplan.report.maps import MapLayer, classify

    v = pd.to_numeric(values, errors="coerce").to_numpy(float)
    clf = classify(v, MapLayer(column, column, scheme="quantiles", k=k, palette="viridis", fmt="euro"))
    lowers = [clf.lower, *clf.bins[:-1]]
    ranges = [f'<range render="true" symbol="{i}" lower="{lo:.6f}" upper="{hi:.6f}" label="{escape(label)}"/>'
              for i, (lo, hi, label) in enumerate(zip(lowers, clf.bins, clf.labels))]
    symbols = [_symbol(i, c) for i, c in enumerate(clf.colors)]
    return (
        _QML_HEAD
        + f'<renderer-v2 type="graduatedSymbol" attr="{column}" graduatedMethod="GraduatedColor" '
        'symbollevels="0" enableorderby="0" forceraster="0">\n'
        f"<ranges>{''.join(ranges)}</ranges>\n<symbols>{''.join(symbols)}</symbols>\n"
        '<mode name="quantile"/></renderer-v2>\n' + _QML_TAIL
    )


def change_classes(result, pub, lang: str = "de"):
    """The change map's classification (:func:`geoplan.report.maps.change_layer`), the same as in the report."""
    from geoplan.report.maps import change_layer, classify

    layer = change_layer("Veränderung zum Vorjahr (%)", result.config.allocation.corridor)
    values = pd.to_numeric(pub.areas["change_pct"], errors="coerce").to_numpy(float)
    return classify(values, layer, lang)


def categorized_qml(clf, column: str = CHANGE_CLASS_COLUMN) -> str:
    """QGIS QML of a categorized renderer on the class label column (exact: the class is computed once)."""
    cats = [f'<category render="true" symbol="{i}" value="{escape(label, {chr(34): "&quot;"})}" label="{escape(label)}"/>'
            for i, label in enumerate(clf.labels)]
    symbols = [_symbol(i, c) for i, c in enumerate(clf.colors)]
    return (
        _QML_HEAD
        + f'<renderer-v2 type="categorizedSymbol" attr="{column}" symbollevels="0" enableorderby="0" forceraster="0">\n'
        f"<categories>{''.join(cats)}</categories>\n<symbols>{''.join(symbols)}</symbols>\n</renderer-v2>\n" + _QML_TAIL
    )


def write_layer_style(path: Path, qml: str, *, layer: str = LAYER, geometry_column: str = "geom",
                      stamp: str = "2000-01-01T00:00:00Z", name: str = "Budget je Einwohner unter 21",
                      description: str = "geoplan: Budget je Einwohner unter 21, Quantile", default: bool = True) -> None:
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
            " VALUES ('', '', ?, ?, ?, ?, '', ?, ?, 'geoplan', '', ?)",
            (layer, geometry_column, relabel(name), qml, 1 if default else 0, relabel(description), stamp),
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
    # the budget per head of the config's exposure: budget_per_u18 for pop_u18
    style_column = "budget_per_" + result.config.model.exposure.removeprefix("pop_")
    g = g.rename(columns={STYLE_COLUMN: style_column})
    clf = None
    if "change_pct" in g.columns and pd.to_numeric(g["change_pct"], errors="coerce").notna().any():
        clf = change_classes(result, pub)
        label_of = dict(zip(pub.areas["key"], [clf.labels[c] if c >= 0 else None for c in clf.classes]))
        g[CHANGE_CLASS_COLUMN] = g["key"].map(label_of)
    stamp = f"{result.config.budget_year}-01-01T00:00:00.000Z"
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": stamp})
    try:
        g.to_file(path, layer=LAYER, driver="GPKG", engine="pyogrio")
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": None})
    if style_column in g.columns:
        write_layer_style(path, graduated_qml(g[style_column], column=style_column), stamp=stamp)
    if clf is not None:
        write_layer_style(path, categorized_qml(clf), stamp=stamp, name="Veränderung zum Vorjahr",
                          description="geoplan: Veränderung zum Vorjahr, feste Klassen um 0 am Korridor", default=False)
    return path
