"""The QGIS project ``ergebnis.qgz`` next to ``ergebnis.gpkg``, and the Bezirk layer it draws on top.

One project layer per style of the result layer (:mod:`geoplan.report.styles`:
the classes, colours and legend labels of the report's maps, the same styles
as in the GeoPackage and a PostGIS table), the first one visible.

The project is written as plain XML (the pipeline does not need QGIS); the
tests open it with real QGIS and render it. All data sources are relative
(``./ergebnis.gpkg``), so the output folder can be moved or zipped.
"""

from __future__ import annotations

import io
import os
import uuid
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import geopandas as gpd
import numpy as np
import pyogrio
from pyproj import CRS

from geoplan.report.styles import QGIS_VERSION, Style, fill_symbol

__all__ = ["write_qgis_project", "write_bezirke_layer", "BEZIRKE_LAYER"]

BEZIRKE_LAYER = "bezirke"


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


def write_qgis_project(path, gpkg_path, *, frame: gpd.GeoDataFrame, styles: list[Style], layer: str = "sozialraeume",
                       title: str = "geoplan", simulated: bool = False, bezirke: bool = True,
                       lang: str = "de") -> Path:
    """Write ``ergebnis.qgz``: one layer per style (:func:`geoplan.report.styles.layer_styles`; the first
    visible), the Bezirk borders on top (layer ``bezirke`` of the GeoPackage, when present) and area labels,
    all sources relative to the project.

    ``frame`` is the result layer as written to ``layer`` of ``gpkg_path`` (for
    the extent). With ``simulated`` every layer name and the project title say
    "HzE simuliert".
    """
    path, gpkg_path = Path(path), Path(gpkg_path)
    rel = Path(os.path.relpath(gpkg_path.resolve(), path.parent.resolve()))
    rel_source = "./" + rel.as_posix() if not rel.as_posix().startswith("..") else rel.as_posix()
    crs = CRS.from_user_input(frame.crs)
    extent = tuple(float(v) for v in frame.total_bounds)
    note = (" (HzE simuliert)" if lang == "de" else " (HzE simulated)") if simulated else ""
    ns = uuid.UUID("6f1c2a52-5d9f-4b8e-9a55-0c9e1d7f3a10")  # stable ids: same result, same project
    maplayers, tree = [], []
    has_bezirke = bezirke and gpkg_path.exists() and BEZIRKE_LAYER in {str(r[0]) for r in pyogrio.list_layers(gpkg_path)}
    if has_bezirke:
        lid = f"bezirke_{uuid.uuid5(ns, 'bezirke').hex[:12]}"
        name = "Bezirke" if lang == "de" else "Districts"
        renderer = ('<renderer-v2 type="singleSymbol" symbollevels="0" enableorderby="0" forceraster="0">'
                    "<symbols>" + fill_symbol("0", "0,0,0,0", "40,40,40,255", "0.6", "no") + "</symbols>"
                    "</renderer-v2>")
        maplayers.append(_maplayer(lid, name, f"{rel_source}|layername={BEZIRKE_LAYER}", crs, renderer, False,
                                   extent))
        tree.append((lid, name, f"{rel_source}|layername={BEZIRKE_LAYER}", True))
    for i, style in enumerate(styles):
        lid = f"{layer}_{style.column}_{uuid.uuid5(ns, style.column).hex[:12]}"
        name = style.name + note
        source = f"{rel_source}|layername={layer}"
        maplayers.append(_maplayer(lid, name, source, crs, style.body, True, extent))
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
