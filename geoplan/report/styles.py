"""The QGIS styles of the result layer: one per published measure, with the classes and colours of the report's maps.

One place for every style geoplan writes — the GeoPackage's ``layer_styles``
(:mod:`geoplan.report.gpkg`), the layers of ``ergebnis.qgz``
(:mod:`geoplan.report.qgis`) and a PostGIS table's ``layer_styles``
(:mod:`geoplan.report.postgis`) — so a GIS analyst sees in QGIS exactly the
classes, colours and legend labels of bericht.html and karte.html:

- the classes come from :func:`geoplan.report.maps.classify` on the layers of
  :func:`geoplan.report.mapping.map_layers` (the report's maps), plus the
  budget per Sozialraum and the expected demand per 1,000, which the report
  shows as tables;
- measures with fixed classes whose lower bound belongs to the class (the
  change against the prior year, the BYM2 probability that the budget lies
  below need) get a class column holding each area's legend label, styled by
  category: QGIS's graduated ranges include the upper bound, so a value on a
  bound would otherwise land in the neighbouring class.

:func:`geoplan.report.gpkg.styled_layer` returns the layer as written (the
budget-per-head column named after the config's exposure, the class columns
added) with its styled measures.
Each :class:`Style` holds a complete QML document, the same classes as SLD,
and the part of the QML a QGIS project embeds in its ``<maplayer>``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from xml.sax.saxutils import escape, quoteattr

import pandas as pd

__all__ = ["Style", "StyleLayer", "style_layers", "add_class_columns", "layer_styles",
           "style_column", "CHANGE_CLASS_COLUMN", "PROBABILITY_CLASS_COLUMN", "QGIS_VERSION"]

QGIS_VERSION = "3.22.16-Białowieża"
#: Class columns of the measures with fixed classes (each area's legend label).
CHANGE_CLASS_COLUMN = "veraenderung_klasse"
PROBABILITY_CLASS_COLUMN = "unter_bedarf_klasse"
#: The BYM2 probability that the budget lies below need: a share 0–1 in the layer, classified in %.
PROBABILITY_COLUMN = "p_budget_below_need"

_MODES = {"quantiles": "quantile", "natural_breaks": "jenks", "equal_interval": "equal", "std_mean": "stddev"}


@dataclass(frozen=True)
class StyleLayer:
    """One styled measure: the map layer (scheme, palette, format), the column it classifies, in which unit."""

    layer: object                 # geoplan.report.maps.MapLayer, ``column`` = the attribute of the result layer
    name: str                     # style / QGIS layer name in the output's language
    how: str                      # the classification in words (the style's description)
    default: bool = False
    scale: float = 1.0            # layer value = attribute × scale (a share shown in %)
    class_column: str | None = None  # fixed classes: styled by category on this column


@dataclass(frozen=True)
class Style:
    """A QGIS style of the result layer."""

    column: str                   # the attribute the style classifies
    name: str
    description: str
    default: bool
    qml: str                      # a complete QML document
    sld: str                      # the same classes as OGC SLD 1.1
    body: str                     # renderer, labels and field aliases: the QML a QGIS project embeds


def style_layers(frame: pd.DataFrame, lang: str = "de", corridor=None,
                 style_column: str = "budget_per_u21") -> list[StyleLayer]:
    """The styled measures of ``frame`` (the published areas or the result layer), the first one QGIS's default.

    The report's map layers (:func:`geoplan.report.mapping.map_layers`) for the
    budget per head (on ``style_column``), the change, the need index, the
    observed/expected ratio and the BYM2 probability; the budget per
    Sozialraum and the expected demand per 1,000 as quantiles.
    """
    from geoplan.report.i18n import gettext
    from geoplan.report.mapping import P_BELOW, map_layers
    from geoplan.report.maps import TEXT, MapLayer

    _ = gettext(lang)
    words = TEXT[lang]["schemes"]
    view = pd.DataFrame(index=frame.index)
    for col in ("budget_per_u21", "need_index", "change_pct", "oe_ratio", "expected_per_1000", "budget_eur"):
        src = style_column if col == "budget_per_u21" else col
        if src in frame.columns:
            view[col] = pd.to_numeric(frame[src], errors="coerce")
    if PROBABILITY_COLUMN in frame.columns:
        view[P_BELOW] = 100 * pd.to_numeric(frame[PROBABILITY_COLUMN], errors="coerce")
    maps = {ly.column: ly for ly in map_layers(view, lang, corridor) if ly.column in view.columns}

    def has(col):
        return col in view.columns and view[col].notna().any()

    out = []
    if "budget_per_u21" in maps and has("budget_per_u21"):
        ly = maps["budget_per_u21"]
        out.append(StyleLayer(replace(ly, column=style_column), ly.label, words[ly.scheme], default=True))
    if has("budget_eur"):
        out.append(StyleLayer(MapLayer("budget_eur", _("Budget je Sozialraum (€)"), scheme="quantiles", k=5,
                                       palette="viridis", fmt="euro"), _("Budget je Sozialraum (€)"),
                              words["quantiles"]))
    if "change_pct" in maps:
        ly = maps["change_pct"]
        out.append(StyleLayer(ly, ly.label, words[ly.scheme], class_column=CHANGE_CLASS_COLUMN))
    if "need_index" in maps and has("need_index"):
        ly = maps["need_index"]
        out.append(StyleLayer(ly, ly.label, words[ly.scheme]))
    if has("expected_per_1000"):
        label = _("Erwartete HzE-Fälle je 1.000 unter 21")
        out.append(StyleLayer(MapLayer("expected_per_1000", label, scheme="quantiles", k=5, palette="PuBu",
                                       fmt="zahl"), label, words["quantiles"]))
    if "oe_ratio" in maps:
        ly = maps["oe_ratio"]
        out.append(StyleLayer(ly, ly.label, words[ly.scheme]))
    if P_BELOW in maps:
        ly = maps[P_BELOW]
        out.append(StyleLayer(replace(ly, column=PROBABILITY_COLUMN), ly.label, words[ly.scheme], scale=100.0,
                              class_column=PROBABILITY_CLASS_COLUMN))
    if out and not any(s.default for s in out):
        out[0] = replace(out[0], default=True)
    return out


def _classify(g: pd.DataFrame, sl: StyleLayer, lang: str):
    from geoplan.report.maps import classify

    values = pd.to_numeric(g[sl.layer.column], errors="coerce").to_numpy(float) * sl.scale
    return classify(values, sl.layer, lang)


def add_class_columns(g: pd.DataFrame, layers: list[StyleLayer], lang: str = "de") -> pd.DataFrame:
    """``g`` with the class column of each fixed-class layer: the area's legend label (None: no value)."""
    g = g.copy()
    for sl in layers:
        if sl.class_column is not None:
            clf = _classify(g, sl, lang)
            g[sl.class_column] = [clf.labels[c] if c >= 0 else None for c in clf.classes]
    return g


# --------------------------------------------------------------------------- QML
def _rgb(hex_color: str) -> str:
    h = hex_color.lstrip("#")
    return ",".join(str(int(h[i:i + 2], 16)) for i in (0, 2, 4))


def fill_symbol(name: str, color: str, outline: str = "255,255,255,255", width: str = "0.26",
                style: str = "solid") -> str:
    """A QGIS fill symbol; ``color`` and ``outline`` as "r,g,b,a"."""
    return (
        f'<symbol type="fill" name="{name}" alpha="1" clip_to_extent="1" force_rhr="0">'
        '<layer class="SimpleFill" enabled="1" pass="0" locked="0">'
        f'<prop k="color" v="{color}"/><prop k="outline_color" v="{outline}"/>'
        f'<prop k="outline_style" v="solid"/><prop k="outline_width" v="{width}"/>'
        f'<prop k="outline_width_unit" v="MM"/><prop k="style" v="{style}"/></layer></symbol>'
    )


def _graduated(clf, layer) -> str:
    lowers = [clf.lower, *clf.bins[:-1]]
    ranges = "".join(f'<range render="true" symbol="{i}" lower="{float(lo)!r}" upper="{float(hi)!r}" '
                     f'label={quoteattr(label)}/>'
                     for i, (lo, hi, label) in enumerate(zip(lowers, clf.bins, clf.labels)))
    symbols = "".join(fill_symbol(str(i), _rgb(c) + ",255") for i, c in enumerate(clf.colors))
    return (f'<renderer-v2 type="graduatedSymbol" attr={quoteattr(layer.column)} graduatedMethod="GraduatedColor" '
            'symbollevels="0" enableorderby="0" forceraster="0">'
            f'<ranges>{ranges}</ranges><symbols>{symbols}</symbols>'
            f'<mode name="{_MODES.get(layer.scheme, "manual")}"/></renderer-v2>')


def _categorized(clf, column: str) -> str:
    cats = "".join(f'<category render="true" symbol="{i}" value={quoteattr(label)} label={quoteattr(label)}/>'
                   for i, label in enumerate(clf.labels))
    symbols = "".join(fill_symbol(str(i), _rgb(c) + ",255") for i, c in enumerate(clf.colors))
    return (f'<renderer-v2 type="categorizedSymbol" attr={quoteattr(column)} symbollevels="0" enableorderby="0" '
            f'forceraster="0"><categories>{cats}</categories><symbols>{symbols}</symbols></renderer-v2>')


def _labeling(field: str) -> str:
    return (
        '<labeling type="simple"><settings calloutType="simple">'
        f'<text-style fieldName={quoteattr(field)} isExpression="0" fontSize="7" fontSizeUnit="Point" '
        'fontFamily="DejaVu Sans" textColor="30,30,30,255" textOpacity="1" multilineHeight="1">'
        '<text-buffer bufferDraw="1" bufferSize="0.7" bufferSizeUnits="MM" bufferColor="255,255,255,255" '
        'bufferOpacity="0.8"/></text-style>'
        '<text-format wrapChar="" autoWrapLength="14" multilineAlign="1" plussign="0"/>'
        '<placement placement="1" dist="0" offsetType="0" centroidWhole="0" centroidInside="1" fitInPolygonOnly="0"/>'
        '<rendering obstacle="1" displayAll="0" limitNumLabels="0" scaleVisibility="0" labelPerPart="0" '
        'upsidedownLabels="0" drawLabels="1" fontLimitPixelSize="0"/>'
        "</settings></labeling>"
    )


def _aliases(aliases: dict[str, str] | None, columns) -> str:
    if not aliases:
        return ""
    items = "".join(f'<alias field={quoteattr(c)} index="{i}" name={quoteattr(aliases[c])}/>'
                    for i, c in enumerate(columns) if c in aliases)
    return f"<aliases>{items}</aliases>"


def qml_document(body: str, labels: bool = True) -> str:
    """A complete QML style around ``body`` (renderer, labels, aliases)."""
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
            f'<qgis version="{QGIS_VERSION}" styleCategories="Symbology|Labeling|Fields" labelsEnabled="{int(labels)}">\n'
            f"{body}\n</qgis>\n")


# --------------------------------------------------------------------------- SLD (OGC Symbology Encoding 1.1)
def _sld_rule(title: str, color: str, flt: str) -> str:
    return (f"<se:Rule><se:Name>{escape(title)}</se:Name><se:Description><se:Title>{escape(title)}</se:Title>"
            f"</se:Description>{flt}<se:PolygonSymbolizer><se:Fill><se:SvgParameter name=\"fill\">{color}"
            "</se:SvgParameter></se:Fill><se:Stroke><se:SvgParameter name=\"stroke\">#ffffff</se:SvgParameter>"
            "<se:SvgParameter name=\"stroke-width\">1</se:SvgParameter></se:Stroke></se:PolygonSymbolizer></se:Rule>")


def _cmp(op: str, column: str, value) -> str:
    v = escape(value) if isinstance(value, str) else repr(float(value))
    return f"<ogc:{op}><ogc:PropertyName>{escape(column)}</ogc:PropertyName><ogc:Literal>{v}</ogc:Literal></ogc:{op}>"


def graduated_sld(clf, column: str, name: str, layer_name: str) -> str:
    """SLD of the classes of ``clf``: (lower, upper] per class, the first one closed at its lower end."""
    lowers = [clf.lower, *clf.bins[:-1]]
    rules = []
    for i, (lo, hi, label, color) in enumerate(zip(lowers, clf.bins, clf.labels, clf.colors)):
        low = _cmp("PropertyIsGreaterThanOrEqualTo" if i == 0 else "PropertyIsGreaterThan", column, lo)
        flt = f"<ogc:Filter><ogc:And>{low}{_cmp('PropertyIsLessThanOrEqualTo', column, hi)}</ogc:And></ogc:Filter>"
        rules.append(_sld_rule(label, color, flt))
    return _sld(name, rules, layer_name)


def categorized_sld(clf, column: str, name: str, layer_name: str) -> str:
    rules = [_sld_rule(label, color, f"<ogc:Filter>{_cmp('PropertyIsEqualTo', column, label)}</ogc:Filter>")
             for label, color in zip(clf.labels, clf.colors)]
    return _sld(name, rules, layer_name)


def _sld(name: str, rules: list[str], layer_name: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<StyledLayerDescriptor xmlns="http://www.opengis.net/sld" xmlns:ogc="http://www.opengis.net/ogc" '
            'xmlns:se="http://www.opengis.net/se" xmlns:xlink="http://www.w3.org/1999/xlink" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" version="1.1.0" '
            'xsi:schemaLocation="http://www.opengis.net/sld http://schemas.opengis.net/sld/1.1.0/StyledLayerDescriptor.xsd">'
            f"<NamedLayer><se:Name>{escape(layer_name)}</se:Name><UserStyle><se:Name>{escape(name)}</se:Name>"
            "<se:FeatureTypeStyle>" + "".join(rules) + "</se:FeatureTypeStyle></UserStyle></NamedLayer>"
            "</StyledLayerDescriptor>\n")


# --------------------------------------------------------------------------- the styles
def layer_styles(g: pd.DataFrame, layers: list[StyleLayer], *, lang: str = "de",
                 aliases: dict[str, str] | None = None, label_field: str | None = "name",
                 layer_name: str = "sozialraeume") -> list[Style]:
    """The :class:`Style` of each of ``layers`` that has a value in ``g`` (with its class columns already added,
    :func:`add_class_columns`); ``aliases``: field name -> alias shown by QGIS."""
    columns = [c for c in g.columns if c != getattr(g, "geometry", pd.Series(name=None)).name]
    label = label_field if label_field in g.columns else None
    tail = (_labeling(label) if label else "") + _aliases(aliases, columns)
    out = []
    for sl in layers:
        if sl.layer.column not in g.columns or not pd.to_numeric(g[sl.layer.column], errors="coerce").notna().any():
            continue
        clf = _classify(g, sl, lang)
        if sl.class_column is not None:
            renderer = _categorized(clf, sl.class_column)
            sld = categorized_sld(clf, sl.class_column, sl.name, layer_name)
            column = sl.class_column
        else:
            renderer = _graduated(clf, sl.layer)
            sld = graduated_sld(clf, sl.layer.column, sl.name, layer_name)
            column = sl.layer.column
        body = renderer + tail
        out.append(Style(column=column, name=sl.name, description=f"geoplan: {sl.name}, {sl.how}",
                         default=sl.default, qml=qml_document(body, labels=label is not None), sld=sld, body=body))
    return out


def style_column(result) -> str:
    """The layer's column of the budget per head of the config's exposure (``budget_per_u18`` for ``pop_u18``)."""
    return "budget_per_" + result.config.model.exposure.removeprefix("pop_")
