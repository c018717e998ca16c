"""QGIS styles (QML) and the QGIS project ``ergebnis.qgz`` next to ``ergebnis.gpkg``.

The styles use the report's classes: quantiles (mapclassify, k = 5, the lowest
class starting at the minimum) of the budget per resident under 21, the need
index and the expected demand, and for the change against the prior year the
report's five fixed classes around the corridor (rules on the change rounded
to one decimal, :func:`geoplan.report.maps.change_layer`), with the map's
colour ramps. They are used three times: as the layers of the
project, as the styles in a PostGIS ``layer_styles`` table
(:mod:`geoplan.report.postgis`) and in the GeoPackage.

The project is written as plain XML (the pipeline does not need QGIS); the
tests open it with real QGIS and render it. All data sources are relative
(``./ergebnis.gpkg``), so the output folder can be moved or zipped.
"""

from __future__ import annotations

import io
import os
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import geopandas as gpd
import mapclassify
import numpy as np
import pandas as pd
import pyogrio
from pyproj import CRS

from geoplan import fmt

__all__ = ["StyleSpec", "DEFAULT_STYLES", "class_breaks", "layer_qml", "styles_for", "write_qgis_project",
           "write_bezirke_layer", "BEZIRKE_LAYER"]

BEZIRKE_LAYER = "bezirke"
QGIS_VERSION = "3.22.16-Białowieża"

# the colour ramps of the report's maps (geoplan.report.maps), 5 steps each
PALETTES = {
    "viridis": ["68,1,84", "59,82,139", "33,145,140", "94,201,98", "253,231,37"],
    "YlOrRd": ["255,255,178", "254,204,92", "253,141,60", "240,59,32", "189,0,38"],
    "BrBG": ["166,97,26", "223,194,125", "245,245,245", "128,205,193", "1,133,113"],
    "PuBu": ["241,238,246", "189,201,225", "116,169,207", "43,140,190", "4,90,141"],
}


@dataclass(frozen=True)
class StyleSpec:
    """One classified map of the result layer."""

    column: str
    title: str          # German
    title_en: str
    palette: str
    fmt: str = "num"    # num | euro | pct
    decimals: int = 2
    k: int = 5


DEFAULT_STYLES = (
    StyleSpec("budget_per_u21", "Budget je Einwohner unter 21 (€)", "Budget per resident under 21 (€)", "viridis",
              "euro", 0),
    StyleSpec("change_pct", "Veränderung zum Vorjahr (%)", "Change against the prior year (%)", "BrBG", "pct", 1),
    StyleSpec("need_index", "Bedarfsindex", "Need index", "YlOrRd", "num", 2),
    StyleSpec("expected_per_1000", "Erwartete HzE-Fälle je 1.000 unter 21", "Expected HzE cases per 1,000 under 21",
              "PuBu", "num", 1),
)


def class_breaks(values, k: int = 5) -> list[tuple[float, float]]:
    """(lower, upper) of the quantile classes, as the report's maps draw them."""
    v = pd.to_numeric(pd.Series(values), errors="coerce").dropna().to_numpy(float)
    if len(v) == 0:
        return []
    k = max(1, min(k, len(np.unique(v))))
    bins = mapclassify.Quantiles(v, k=k).bins
    lowers = np.concatenate([[v.min()], bins[:-1]])
    return [(float(lo), float(hi)) for lo, hi in zip(lowers, bins)]


def _label(spec: StyleSpec, lo: float, hi: float, lang: str) -> str:
    def f(x):
        if spec.fmt == "euro":
            return fmt.euro(x, spec.decimals, lang)
        if spec.fmt == "pct":
            return fmt.percent(x, spec.decimals, lang)
        return fmt.number(x, spec.decimals, lang)

    return f"{f(lo)} – {f(hi)}"


def _color(palette: str, i: int, k: int) -> str:
    ramp = PALETTES[palette]
    return ramp[round(i * (len(ramp) - 1) / max(k - 1, 1))]


def _fill_symbol(name: str, color: str, outline: str = "255,255,255,255", width: str = "0.26",
                 style: str = "solid") -> str:
    return (
        f'<symbol type="fill" name="{name}" alpha="1" clip_to_extent="1" force_rhr="0">'
        '<layer class="SimpleFill" enabled="1" pass="0" locked="0">'
        f'<prop k="color" v="{color}"/><prop k="outline_color" v="{outline}"/>'
        f'<prop k="outline_style" v="solid"/><prop k="outline_width" v="{width}"/>'
        f'<prop k="outline_width_unit" v="MM"/><prop k="style" v="{style}"/></layer></symbol>'
    )


def _change_renderer(values, spec: StyleSpec, lang: str, corridor) -> str:
    """The change map's classes as QGIS rules: the same five classes, labels and colours as the report,
    decided on the change rounded to one decimal (two areas with the same rounded change share a class)."""
    from geoplan.report.gpkg import _rgb
    from geoplan.report.maps import change_layer, classify

    layer = change_layer(spec.title if lang == "de" else spec.title_en, corridor)
    clf = classify(pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(float), layer, lang)
    olo, ilo, ihi, ohi = (float(b) for b in layer.bins)
    x = f'round("{spec.column}", 1)'
    filters = [f"{x} <= {olo!r}", f"{x} > {olo!r} AND {x} < {ilo!r}", f"{x} >= {ilo!r} AND {x} <= {ihi!r}",
               f"{x} > {ihi!r} AND {x} < {ohi!r}", f"{x} >= {ohi!r}"]
    rules = "".join(f'<rule key="{{change-{i}}}" symbol="{i}" label={quoteattr(label)} filter={quoteattr(flt)}/>'
                    for i, (label, flt) in enumerate(zip(clf.labels, filters)))
    symbols = "".join(_fill_symbol(str(i), _rgb(c) + ",255") for i, c in enumerate(clf.colors))
    return ('<renderer-v2 type="RuleRenderer" symbollevels="0" enableorderby="0" forceraster="0">'
            f'<rules key="{{change-root}}">{rules}</rules><symbols>{symbols}</symbols></renderer-v2>')


def _renderer(values, spec: StyleSpec, lang: str, corridor=None) -> str:
    if spec.column == "change_pct":
        return _change_renderer(values, spec, lang, corridor)
    ranges, symbols = [], []
    breaks = class_breaks(values, spec.k)
    for i, (lo, hi) in enumerate(breaks):
        ranges.append(f'<range render="true" symbol="{i}" lower="{lo!r}" upper="{hi!r}" '
                      f'label={quoteattr(_label(spec, lo, hi, lang))}/>')
        symbols.append(_fill_symbol(str(i), _color(spec.palette, i, len(breaks)) + ",255"))
    return (
        f'<renderer-v2 type="graduatedSymbol" attr={quoteattr(spec.column)} graduatedMethod="GraduatedColor" '
        'symbollevels="0" enableorderby="0" forceraster="0">'
        f"<ranges>{''.join(ranges)}</ranges><symbols>{''.join(symbols)}</symbols>"
        '<mode name="quantile"/></renderer-v2>'
    )


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
    items = [f"<alias field={quoteattr(c)} index=\"{i}\" name={quoteattr(aliases[c])}/>"
             for i, c in enumerate(columns) if c in aliases]
    return f"<aliases>{''.join(items)}</aliases>"


def layer_qml(values, spec: StyleSpec, *, label_field: str | None = "name", aliases: dict[str, str] | None = None,
              columns=(), lang: str = "de", corridor=None) -> str:
    """A complete QML style (graduated colours, area labels, field aliases); ``corridor`` (the config's
    ``allocation.corridor``) places the change classes as in the report."""
    body = _renderer(values, spec, lang, corridor) + (_labeling(label_field) if label_field else "") + _aliases(aliases, columns)
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        f'<qgis version="{QGIS_VERSION}" styleCategories="AllStyleCategories" '
        f'labelsEnabled="{1 if label_field else 0}">\n{body}\n</qgis>\n'
    )


def styles_for(gdf, specs=DEFAULT_STYLES, *, aliases: dict[str, str] | None = None, label_field: str = "name",
               lang: str = "de", corridor=None) -> list[tuple[StyleSpec, str]]:
    """(spec, QML) for each style whose column exists and has values."""
    out = []
    cols = [c for c in gdf.columns if c != getattr(gdf, "geometry", pd.Series(name=None)).name]
    for spec in specs:
        if spec.column in gdf.columns and pd.to_numeric(gdf[spec.column], errors="coerce").notna().sum() >= 2:
            out.append((spec, layer_qml(gdf[spec.column], spec, label_field=label_field if label_field in gdf.columns
                                        else None, aliases=aliases, columns=cols, lang=lang,
                                        corridor=corridor)))
    return out


def write_bezirke_layer(gpkg_path: Path, frame: gpd.GeoDataFrame, *, column: str = "bezirk",
                        stamp: str = "2000-01-01T00:00:00.000Z") -> bool:
    """Add the Bezirk borders (the Sozialräume dissolved by ``column``) as the
    layer ``bezirke`` to the GeoPackage geoplan wrote. False when there is
    nothing to draw (no or only one Bezirk)."""
    if column not in frame.columns or frame[column].astype(str).str.strip().replace("", np.nan).nunique() < 2:
        return False
    g = frame[[column, frame.geometry.name]].dissolve(by=column, as_index=False).sort_values(column)
    g = gpd.GeoDataFrame({"bezirk": g[column].astype(str).to_numpy()}, geometry=g.geometry.to_numpy(), crs=frame.crs)
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": stamp})
    try:
        g.to_file(gpkg_path, layer=BEZIRKE_LAYER, driver="GPKG", engine="pyogrio", append=False)
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": None})
    return True


def _srs_xml(crs: CRS) -> str:
    auth = crs.to_authority()
    authid = f"{auth[0]}:{auth[1]}" if auth else ""
    return (f"<spatialrefsys><wkt>{escape(crs.to_wkt())}</wkt>"
            f"<authid>{authid}</authid><description>{escape(crs.name)}</description></spatialrefsys>")


def _maplayer(layer_id: str, name: str, source: str, crs: CRS, inner: str, labels: bool, extent) -> str:
    xmin, ymin, xmax, ymax = extent
    return (
        f'<maplayer type="vector" geometry="Polygon" wkbType="MultiPolygon" labelsEnabled="{int(labels)}" '
        'autoRefreshEnabled="0" refreshOnNotifyEnabled="0" hasScaleBasedVisibilityFlag="0" '
        'styleCategories="AllStyleCategories" readOnly="0" simplifyDrawingHints="0">'
        f"<extent><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></extent>"
        f"<id>{layer_id}</id><datasource>{escape(source)}</datasource>"
        f"<layername>{escape(name)}</layername><srs>{_srs_xml(crs)}</srs>"
        '<provider encoding="UTF-8">ogr</provider>'
        f"{inner}</maplayer>"
    )


def write_qgis_project(path, gpkg_path, *, frame: gpd.GeoDataFrame, layer: str = "sozialraeume",
                       specs=DEFAULT_STYLES, title: str = "geoplan", simulated: bool = False,
                       aliases: dict[str, str] | None = None, bezirke: bool = True, lang: str = "de",
                       corridor=None) -> Path:
    """Write ``ergebnis.qgz``: one layer per style in ``specs`` (first one
    visible), the Bezirk borders on top (layer ``bezirke`` of the GeoPackage,
    when present) and area labels, all sources relative to the project.

    ``frame`` is the published layer as written to ``layer`` of ``gpkg_path``
    (for the classes and the extent). With ``simulated`` every layer name and
    the project title say "HzE simuliert".
    """
    path, gpkg_path = Path(path), Path(gpkg_path)
    rel = Path(os.path.relpath(gpkg_path.resolve(), path.parent.resolve()))
    rel_source = "./" + rel.as_posix() if not rel.as_posix().startswith("..") else rel.as_posix()
    crs = CRS.from_user_input(frame.crs)
    extent = tuple(float(v) for v in frame.total_bounds)
    note = (" (HzE simuliert)" if lang == "de" else " (HzE simulated)") if simulated else ""
    styles = styles_for(frame, specs, aliases=aliases, lang=lang, corridor=corridor)
    ns = uuid.UUID("6f1c2a52-5d9f-4b8e-9a55-0c9e1d7f3a10")  # stable ids: same result, same project
    maplayers, tree = [], []
    has_bezirke = bezirke and gpkg_path.exists() and BEZIRKE_LAYER in {str(r[0]) for r in pyogrio.list_layers(gpkg_path)}
    if has_bezirke:
        lid = f"bezirke_{uuid.uuid5(ns, 'bezirke').hex[:12]}"
        name = "Bezirke" if lang == "de" else "Districts"
        renderer = ('<renderer-v2 type="singleSymbol" symbollevels="0" enableorderby="0" forceraster="0">'
                    "<symbols>" + _fill_symbol("0", "0,0,0,0", "40,40,40,255", "0.6", "no") + "</symbols>"
                    "</renderer-v2>")
        maplayers.append(_maplayer(lid, name, f"{rel_source}|layername={BEZIRKE_LAYER}", crs, renderer, False,
                                   extent))
        tree.append((lid, name, f"{rel_source}|layername={BEZIRKE_LAYER}", True))
    for i, (spec, qml) in enumerate(styles):
        lid = f"{layer}_{spec.column}_{uuid.uuid5(ns, spec.column).hex[:12]}"
        name = (spec.title if lang == "de" else spec.title_en) + note
        inner = qml.split("\n", 2)[2].rsplit("</qgis>", 1)[0]  # renderer, labeling, aliases
        source = f"{rel_source}|layername={layer}"
        maplayers.append(_maplayer(lid, name, source, crs, inner, True, extent))
        tree.append((lid, name, source, i == 0))
    proj_title = title + note
    tree_xml = "".join(
        f'<layer-tree-layer id="{lid}" name={quoteattr(name)} source={quoteattr(src)} providerKey="ogr" '
        f'checked="{"Qt::Checked" if on else "Qt::Unchecked"}" expanded="0"><customproperties/></layer-tree-layer>'
        for lid, name, src, on in tree
    )
    order = "".join(f"<item>{lid}</item>" for lid, *_ in tree)
    layerorder = "".join(f'<layer id="{lid}"/>' for lid, *_ in tree)
    xmin, ymin, xmax, ymax = extent
    qgs = (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        f'<qgis projectname={quoteattr(proj_title)} version="{QGIS_VERSION}">\n'
        f"<homePath path=\"\"/><title>{escape(proj_title)}</title>"
        f"<projectCrs>{_srs_xml(crs)}</projectCrs>"
        f'<layer-tree-group><customproperties/>{tree_xml}'
        f'<custom-order enabled="0">{order}</custom-order></layer-tree-group>'
        f"<mapcanvas name=\"theMapCanvas\" annotationsVisible=\"1\"><units>meters</units>"
        f"<extent><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></extent>"
        f"<rotation>0</rotation><destinationsrs>{_srs_xml(crs)}</destinationsrs><rendermaptile>0</rendermaptile>"
        "</mapcanvas>"
        f"<projectlayers>{''.join(maplayers)}</projectlayers>"
        f"<layerorder>{layerorder}</layerorder>"
        '<properties><Paths><Absolute type="bool">false</Absolute></Paths>'
        '<Measurement><DistanceUnits type="QString">meters</DistanceUnits><AreaUnits type="QString">km2</AreaUnits>'
        "</Measurement></properties>"
        f"<projectMetadata><title>{escape(proj_title)}</title><abstract>"
        + escape("Ergebnis von geoplan" + ("; HzE-Fälle und -Kosten sind simuliert (keine echten Daten)."
                                          if simulated else "."))
        + "</abstract><language>de</language></projectMetadata>\n</qgis>\n"
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo(path.with_suffix(".qgs").name, date_time=(2000, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, qgs.encode("utf-8"))
    path.write_bytes(buf.getvalue())
    return path
