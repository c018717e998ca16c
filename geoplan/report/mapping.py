"""Glue between the published table and :mod:`geoplan.maps`.

Maps show only published (suppressed) values; HzE counts never enter the map
data, only the need index, budget per young person, change against the prior
year and, where no count is suppressed, the observed/expected ratio.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd

from geoplan.maps import MapLayer, interactive_map, static_map_png_bytes
from geoplan.report import figures


def _map_frame(result, pub) -> gpd.GeoDataFrame:
    areas = pub.areas.set_index("key")
    g = result.frame[["key", "name", "geometry"]].copy()
    for col in ("need_index", "budget_eur", "budget_per_u21", "change_pct", "expected_per_1000", "oe_ratio", "pop_u21"):
        if col in areas.columns:
            g[col] = g["key"].map(areas[col])
    if "oe_ratio" in g.columns:
        g["oe_ratio"] = pd.to_numeric(g["oe_ratio"], errors="coerce")
    return g


def map_layers(frame, lang: str = "de") -> list[MapLayer]:
    layers = [
        MapLayer("budget_per_u21", "Budget je Einwohner unter 21 (€)" if lang == "de" else "Budget per resident under 21 (€)",
                 scheme="quantiles", k=5, palette="viridis", fmt="euro", show=True),
        MapLayer("need_index", "Bedarfsindex" if lang == "de" else "Need index", scheme="quantiles", k=5,
                 palette="YlOrRd", fmt="index"),
    ]
    if "change_pct" in frame.columns and frame["change_pct"].notna().any():
        layers.append(MapLayer("change_pct", "Veränderung zum Vorjahr (%)" if lang == "de" else "Change vs prior year (%)",
                               scheme="quantiles", k=5, palette="BrBG", fmt="prozent"))
    if "oe_ratio" in frame.columns and frame["oe_ratio"].notna().sum() >= 5:
        layers.append(MapLayer("oe_ratio", "HzE beobachtet/erwartet" if lang == "de" else "HzE observed/expected",
                               scheme="quantiles", k=5, palette="PuBu", fmt="index"))
    return layers


def _source_line(result) -> str:
    src = "; ".join(s.get("short", s.get("text", "")) for s in result.config.sources if s)
    return ("Quelle: " + src if src else "Quelle: eigene Daten") + ("; HzE-Werte simuliert" if result.simulated else "")


def write_karte(result, pub, path: Path, lang: str = "de") -> Path:
    g = _map_frame(result, pub)
    tooltip = {"name": "Sozialraum", "key": "Schlüssel"}
    for layer in map_layers(g, lang):
        tooltip[layer.column] = layer.label
    html = interactive_map(
        g,
        map_layers(g, lang),
        tooltip=tooltip,
        title=f"{result.config.title} – {result.config.region} {result.config.budget_year}",
        attribution=_source_line(result),
        tiles=result.config.output.tiles,
    )
    path.write_text(html, encoding="utf-8")
    return path


def report_maps(result, pub, lang: str = "de") -> dict[str, str]:
    g = _map_frame(result, pub)
    src = _source_line(result)
    out = {}
    names = {"budget_per_u21": "map_budget", "need_index": "map_need", "change_pct": "map_change"}
    for layer in map_layers(g, lang):
        if layer.column in names:
            png = static_map_png_bytes(g, layer, title=layer.label, source_line=src)
            out[names[layer.column]] = figures.data_uri(png)
    return out
