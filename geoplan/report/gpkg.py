"""ergebnis.gpkg: the result layer with every published column, field aliases and one QGIS style per measure.

Suppressed counts are NULL with a flag column ``<col>_unterdrueckt`` so the
layer keeps numeric types for GIS use. The GeoPackage's ``layer_styles`` table
holds one style per published measure, each with the classes of the report's
maps and karte.html (:func:`geoplan.report.maps.classify` on the same layers,
:func:`geoplan.report.mapping.map_layers`): the budget per resident under 21
(default), the budget, the change against the prior year (fixed classes
centred on 0, aligned to the corridor, on the class column
``veraenderung_klasse``) and the need index. Each style carries the QML
(renderer, area labels, German or English field aliases) and an SLD of the
same classes. ``gpkg_data_columns`` (GeoPackage schema extension) gives every
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
from xml.sax.saxutils import escape, quoteattr

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
    for col in ("hze_per_1000", "oe_ratio", "hze_cases_forecast"):
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


_QML_HEAD = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n<qgis version=\"3.28.0\" styleCategories=\"Symbology|Labeling|Fields\">\n"
_LABELING = ('<labeling type="simple"><settings calloutType="simple"><text-style fieldName="name" fontSize="8" '
             'textColor="30,30,30,255"/><text-buffer bufferDraw="1" bufferSize="0.8" bufferColor="255,255,255,255"/>'
             '</settings></labeling>\n')
_QML_TAIL = _LABELING + "</qgis>\n"


def _tail(aliases: dict[str, str] | None, columns=()) -> str:
    """Area labels, the field aliases (QGIS ``<aliases>``) and the end of the QML."""
    if not aliases:
        return _QML_TAIL
    items = [f'<alias field={quoteattr(c)} index="{i}" name={quoteattr(aliases[c])}/>'
             for i, c in enumerate(columns) if c in aliases]
    return _LABELING + f"<aliases>{''.join(items)}</aliases>\n</qgis>\n"


def graduated_qml(values: pd.Series, column: str = STYLE_COLUMN, k: int = 5, *, layer=None, lang: str = "de",
                  aliases: dict[str, str] | None = None, columns=()) -> str:
    """QGIS QML of a graduated renderer with the report's classes (:func:`geoplan.report.maps.classify` on ``layer``;
    default: quantiles of the budget per head)."""
    from geoplan.report.maps import MapLayer, classify

    v = pd.to_numeric(values, errors="coerce").to_numpy(float)
    layer = layer or MapLayer(column, column, scheme="quantiles", k=k, palette="viridis", fmt="euro")
    clf = classify(v, layer, lang)
    lowers = [clf.lower, *clf.bins[:-1]]
    ranges = [f'<range render="true" symbol="{i}" lower="{float(lo)!r}" upper="{float(hi)!r}" label="{escape(label)}"/>'
              for i, (lo, hi, label) in enumerate(zip(lowers, clf.bins, clf.labels))]
    symbols = [_symbol(i, c) for i, c in enumerate(clf.colors)]
    return (
        _QML_HEAD
        + f'<renderer-v2 type="graduatedSymbol" attr="{column}" graduatedMethod="GraduatedColor" '
        'symbollevels="0" enableorderby="0" forceraster="0">\n'
        f"<ranges>{''.join(ranges)}</ranges>\n<symbols>{''.join(symbols)}</symbols>\n"
        f'<mode name="{_MODES.get(layer.scheme, "manual")}"/></renderer-v2>\n' + _tail(aliases, columns)
    )


_MODES = {"quantiles": "quantile", "natural_breaks": "jenks", "equal_interval": "equal", "std_mean": "stddev"}


def change_classes(result, pub, lang: str = "de"):
    """The change map's classification (:func:`geoplan.report.maps.change_layer`), the same as in the report."""
    from geoplan.report.maps import change_layer, classify

    layer = change_layer("Veränderung zum Vorjahr (%)", result.config.allocation.corridor)
    values = pd.to_numeric(pub.areas["change_pct"], errors="coerce").to_numpy(float)
    return classify(values, layer, lang)


def categorized_qml(clf, column: str = CHANGE_CLASS_COLUMN, *, aliases: dict[str, str] | None = None, columns=()) -> str:
    """QGIS QML of a categorized renderer on the class label column (exact: the class is computed once)."""
    cats = [f'<category render="true" symbol="{i}" value="{escape(label, {chr(34): "&quot;"})}" label="{escape(label)}"/>'
            for i, label in enumerate(clf.labels)]
    symbols = [_symbol(i, c) for i, c in enumerate(clf.colors)]
    return (
        _QML_HEAD
        + f'<renderer-v2 type="categorizedSymbol" attr="{column}" symbollevels="0" enableorderby="0" forceraster="0">\n'
        f"<categories>{''.join(cats)}</categories>\n<symbols>{''.join(symbols)}</symbols>\n</renderer-v2>\n"
        + _tail(aliases, columns)
    )


# --------------------------------------------------------------------------- SLD (OGC Symbology Encoding 1.1)
def _sld_rule(title: str, color: str, flt: str) -> str:
    return (f"<se:Rule><se:Name>{escape(title)}</se:Name><se:Description><se:Title>{escape(title)}</se:Title>"
            f"</se:Description>{flt}<se:PolygonSymbolizer><se:Fill><se:SvgParameter name=\"fill\">{color}"
            "</se:SvgParameter></se:Fill><se:Stroke><se:SvgParameter name=\"stroke\">#ffffff</se:SvgParameter>"
            "<se:SvgParameter name=\"stroke-width\">1</se:SvgParameter></se:Stroke></se:PolygonSymbolizer></se:Rule>")


def _cmp(op: str, column: str, value) -> str:
    v = escape(value) if isinstance(value, str) else repr(float(value))
    return f"<ogc:{op}><ogc:PropertyName>{escape(column)}</ogc:PropertyName><ogc:Literal>{v}</ogc:Literal></ogc:{op}>"


def graduated_sld(clf, column: str, name: str) -> str:
    """SLD of the classes of ``clf``: (lower, upper] per class, the first one closed at its lower end."""
    lowers = [clf.lower, *clf.bins[:-1]]
    rules = []
    for i, (lo, hi, label, color) in enumerate(zip(lowers, clf.bins, clf.labels, clf.colors)):
        low = _cmp("PropertyIsGreaterThanOrEqualTo" if i == 0 else "PropertyIsGreaterThan", column, lo)
        flt = f"<ogc:Filter><ogc:And>{low}{_cmp('PropertyIsLessThanOrEqualTo', column, hi)}</ogc:And></ogc:Filter>"
        rules.append(_sld_rule(label, color, flt))
    return _sld(name, rules)


def categorized_sld(clf, column: str, name: str) -> str:
    rules = [_sld_rule(label, color, f"<ogc:Filter>{_cmp('PropertyIsEqualTo', column, label)}</ogc:Filter>")
             for label, color in zip(clf.labels, clf.colors)]
    return _sld(name, rules)


def _sld(name: str, rules: list[str]) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<StyledLayerDescriptor xmlns="http://www.opengis.net/sld" xmlns:ogc="http://www.opengis.net/ogc" '
            'xmlns:se="http://www.opengis.net/se" xmlns:xlink="http://www.w3.org/1999/xlink" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" version="1.1.0" '
            'xsi:schemaLocation="http://www.opengis.net/sld http://schemas.opengis.net/sld/1.1.0/StyledLayerDescriptor.xsd">'
            f"<NamedLayer><se:Name>{LAYER}</se:Name><UserStyle><se:Name>{escape(name)}</se:Name><se:FeatureTypeStyle>"
            + "".join(rules) + "</se:FeatureTypeStyle></UserStyle></NamedLayer></StyledLayerDescriptor>\n")


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


def style_layers(result, pub, style_column: str, lang: str = "de"):
    """(MapLayer on the GeoPackage's column, style name, description, default) for each published measure,
    with the layers of the report's maps and karte.html."""
    from dataclasses import replace

    from geoplan.report.i18n import gettext
    from geoplan.report.mapping import map_layers
    from geoplan.report.maps import TEXT, MapLayer

    _ = gettext(lang)
    words = TEXT[lang]["schemes"]
    frame = pub.areas
    by_col = {ly.column: ly for ly in map_layers(frame, lang, result.config.allocation.corridor)}
    out = []
    if "budget_per_u21" in by_col:
        out.append((replace(by_col["budget_per_u21"], column=style_column), _("Budget je Einwohner unter 21"),
                    words["quantiles"], True))
    if "budget_eur" in frame.columns:
        out.append((MapLayer("budget_eur", _("Budget (€)"), scheme="quantiles", k=5, palette="viridis", fmt="euro"),
                    _("Budget je Sozialraum"), words["quantiles"], False))
    if "change_pct" in by_col:
        out.append((by_col["change_pct"], _("Veränderung zum Vorjahr (%)"), words["change"], False))
    if "need_index" in by_col:
        out.append((by_col["need_index"], _("Bedarfsindex"), words["quantiles"], False))
    return out


def write_gpkg(result, pub, path: Path, lang: str = "de") -> Path:
    from geoplan.report.maps import classify

    g = result_layer(result, pub)
    # the budget per head of the config's exposure: budget_per_u18 for pop_u18
    style_column = "budget_per_" + result.config.model.exposure.removeprefix("pop_")
    g = g.rename(columns={STYLE_COLUMN: style_column})
    pub_cols = [(style_column if c == STYLE_COLUMN else c, de, en, f) for c, de, en, f in pub.columns]
    layers = style_layers(result, pub, style_column, lang)
    change = next((ly for ly, *_ in layers if ly.column == "change_pct"), None)
    if change is not None:
        clf = classify(pd.to_numeric(g["change_pct"], errors="coerce").to_numpy(float), change, lang)
        g[CHANGE_CLASS_COLUMN] = [clf.labels[c] if c >= 0 else None for c in clf.classes]
    stamp = data_date(result)
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": stamp})
    try:
        g.to_file(path, layer=LAYER, driver="GPKG", engine="pyogrio")
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": None})
    from dataclasses import replace

    words = field_words(g, replace(pub, columns=pub_cols))
    write_data_columns(path, words)
    columns = [c for c in g.columns if c != g.geometry.name]
    aliases = {c: (w[1] if lang == "en" else w[0]) for c, w in words.items()}
    for layer, name, how, default in layers:
        if layer.column not in g.columns or not pd.to_numeric(g[layer.column], errors="coerce").notna().any():
            continue
        values = pd.to_numeric(g[layer.column], errors="coerce")
        clf = classify(values.to_numpy(float), layer, lang)
        if layer.scheme == "change":
            qml = categorized_qml(clf, aliases=aliases, columns=columns)
            sld = categorized_sld(clf, CHANGE_CLASS_COLUMN, name)
        else:
            qml = graduated_qml(values, column=layer.column, layer=layer, lang=lang, aliases=aliases, columns=columns)
            sld = graduated_sld(clf, layer.column, name)
        write_layer_style(path, qml, stamp=stamp, name=name, description=f"geoplan: {name}, {how}",
                          default=default, sld=sld)
    return path
