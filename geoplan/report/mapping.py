"""Glue between the published table and :mod:`geoplan.report.maps`.

Maps show only published (suppressed) values; HzE counts never enter the map
data, only the need index, budget per young person, change against the prior
year and, where no count is suppressed, the observed/expected ratio.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import geopandas as gpd
import pandas as pd

from geoplan.report.maps import MapLayer, change_layer, interactive_map, probability_layer, static_map_png_bytes
from geoplan.report import figures  # noqa: F401 - sets the report's matplotlib settings (rcParams) the maps are drawn with
from geoplan.report.i18n import gettext
from geoplan.report.vocabulary import label as voc_label


#: Map column of the BYM2 probability that the budget lies below the need-based target, in %.
P_BELOW = "p_budget_below_need_pct"


def _map_frame(result, pub) -> gpd.GeoDataFrame:
    areas = pub.areas.set_index("key")
    g = result.frame[["key", "name", "geometry"]].copy()
    for col in ("need_index", "budget_eur", "budget_per_u21", "change_pct", "expected_per_1000", "oe_ratio", "pop_u21"):
        if col in areas.columns:
            g[col] = g["key"].map(areas[col])
    if "oe_ratio" in g.columns:
        g["oe_ratio"] = pd.to_numeric(g["oe_ratio"], errors="coerce")
    if "p_budget_below_need" in areas.columns:  # model.family: bym2; a share 0–1, shown in % like the tables
        g[P_BELOW] = 100 * pd.to_numeric(g["key"].map(areas["p_budget_below_need"]), errors="coerce")
    ex = getattr(result.boundaries, "excluded", None)
    if ex is not None and len(ex):  # boundaries.exclude: shown grey (no value), no budget
        ex = ex[["key", "name", "geometry"]].to_crs(g.crs).assign(name=ex["name"].astype(str) + " (ohne Budget)")
        g = gpd.GeoDataFrame(pd.concat([g, ex], ignore_index=True), geometry="geometry", crs=g.crs)
    return g


def map_layers(frame, lang: str = "de", corridor=None) -> list[MapLayer]:
    _ = gettext(lang)
    layers = [
        MapLayer("budget_per_u21", _("Budget je Einwohner unter 21 (€)"),
                 scheme="quantiles", k=5, palette="viridis", fmt="euro", show=True),
        MapLayer("need_index", _("Bedarfsindex"), scheme="quantiles", k=5,
                 palette="YlOrRd", fmt="index"),
    ]
    if "change_pct" in frame.columns and frame["change_pct"].notna().any():
        # fixed classes centred on 0 and aligned to the corridor, the same in every map and style
        layers.append(change_layer(_("Veränderung zum Vorjahr (%)"), corridor))
    if "oe_ratio" in frame.columns and frame["oe_ratio"].notna().sum() >= 5:
        layers.append(MapLayer("oe_ratio", _("HzE beobachtet/erwartet"),
                               scheme="quantiles", k=5, palette="PuBu", fmt="index"))
    if P_BELOW in frame.columns and frame[P_BELOW].notna().any():
        layers.append(probability_layer(P_BELOW, _(P_BELOW_LABEL)))
    return layers


P_BELOW_LABEL = "Wahrscheinlichkeit, dass das Budget unter dem Bedarf liegt"


def residual_layer(lang: str = "de") -> MapLayer:
    """Pearson residuals, diverging around 0 with fixed breaks at ±1 and ±2
    (|r| > 2: the area's count lies far outside what the model expects)."""
    return MapLayer("residual", gettext(lang)("Pearson-Residuum"), scheme="user_defined", bins=(-2.0, -1.0, 1.0, 2.0, 3.0),
                    palette="RdBu_r", fmt="index", center=0.0)


def _source_line(result, lang: str = "de") -> str:
    _ = gettext(lang)
    src = "; ".join(s.get("short", s.get("text", "")) for s in result.config.sources if s)
    return (_("Quelle: ") + src if src else _("Quelle: eigene Daten")) + (_("; HzE-Werte simuliert") if result.simulated else "")


def write_karte(result, pub, path: Path, lang: str = "de") -> Path:
    g = _map_frame(result, pub)
    _ = gettext(lang)
    tooltip = {"name": voc_label("name", lang), "key": voc_label("key", lang)}
    layers = map_layers(g, lang, result.config.allocation.corridor)
    for layer in layers:
        tooltip[layer.column] = layer.label
    html = interactive_map(
        g,
        layers,
        tooltip=tooltip,
        title=f"{result.config.title} – {result.config.region} {result.config.budget_year}",
        attribution=_source_line(result, lang),
        tiles=result.config.output.tiles,
        tiles_attribution=result.config.output.tiles_attribution,
        lang=lang,
    )
    path.write_text(html, encoding="utf-8")
    return path


#: The report's maps are 8 × 7 in and print at most 115 mm high (4.5 in): 100 dpi gives about 155 dpi on paper.
MAP_DPI = 100


def map_jobs(result, pub, lang: str = "de") -> list[tuple[str, Callable[..., bytes], tuple, dict]]:
    """The report's static maps as ``(key, function, args, kwargs)``, the function returning PNG bytes.

    The arguments hold the map frame, a layer and texts, not the whole
    ``result``: :mod:`geoplan.report.drawjobs` may send them to the PDF worker.
    """
    g = _map_frame(result, pub)
    src = _source_line(result, lang)
    jobs = []
    names = {"budget_per_u21": "map_budget", "need_index": "map_need", "change_pct": "map_change",
             P_BELOW: "map_p_below"}
    for layer in map_layers(g, lang, result.config.allocation.corridor):
        if layer.column in names:
            jobs.append((names[layer.column], static_map_png_bytes, (g, layer),
                         dict(title=layer.label, source_line=src, lang=lang, dpi=MAP_DPI)))
    res = getattr(result.model, "residuals", None)
    if res is not None and len(res) == len(g):
        # the residual, the published expected value and alpha together give the count back:
        # areas with a suppressed count get no residual on the map
        r = pd.Series(res.to_numpy(float), index=g.index)
        if "hze_cases" in pub.mask.columns:
            r[pub.mask["hze_cases"].to_numpy(bool)] = float("nan")
        jobs.append(("map_residual", static_map_png_bytes, (g.assign(residual=r), residual_layer(lang)),
                     dict(title=gettext(lang)("Pearson-Residuen des Modells je Sozialraum"), source_line=src,
                          lang=lang, dpi=MAP_DPI)))
    return jobs
