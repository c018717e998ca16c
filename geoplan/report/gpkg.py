"""ergebnis.gpkg: the result layer with every published column.

Suppressed counts are NULL with a flag column ``<col>_unterdrueckt`` so the
layer keeps numeric types for GIS use.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd


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


def write_gpkg(result, pub, path: Path) -> Path:
    g = result_layer(result, pub)
    g.to_file(path, layer="sozialraeume", driver="GPKG", engine="pyogrio")
    return path
