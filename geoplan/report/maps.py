"""Interactive (folium/Leaflet) and print (matplotlib) choropleth maps.

Two writers for the Sozialraum frame (see ``docs/architecture.md``):

* :func:`interactive_map` / :func:`write_interactive_map` build ``karte.html``:
  a folium map with one GeoJSON layer per :class:`MapLayer` (switchable in the
  layer control, one choropleth visible at a time), tooltips with German
  labels and German-formatted values, and a legend per layer with the
  mapclassify class breaks. The document is self-contained: Leaflet 1.9.4 is
  vendored in ``geoplan/static`` and inlined, nothing is loaded from any host
  when the file is opened. Background tiles are off unless a tile URL is given.
* :func:`static_map` / :func:`static_map_png_bytes` draw a print map (PNG) with
  legend, scale bar, north arrow, title and source line for the PDF report.

Classification uses mapclassify (Rey, Stephens & Laura 2017, "mapclassify: A
Python package for choropleth map classification"): ``quantiles``,
``natural_breaks`` (Fisher-Jenks, Fisher 1958, "On grouping for maximum
homogeneity"), ``equal_interval``, ``std_mean`` and ``user_defined`` (fixed
breaks, e.g. centred on 0 for change maps). Palettes are restricted to
colour-blind-safe ones (viridis family, Nuñez et al. 2018 for cividis;
ColorBrewer schemes marked colour-blind safe, Brewer 2003).

Input geometry must be in a projected CRS with metre units (the project's
metric CRS, EPSG:25832/25833); the interactive map reprojects to EPSG:4326.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import math
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geoplan.errors import GeoplanError
from geoplan.fmt import KINDS as FORMATS, LANGS, by_kind as _by_kind, number as _number

__all__ = [
    "MapLayer",
    "Classification",
    "PALETTES",
    "classify",
    "change_bins",
    "change_layer",
    "probability_layer",
    "interactive_map",
    "write_interactive_map",
    "static_map",
    "static_map_png_bytes",
]

#: Colour-blind-safe palettes (matplotlib names; ``_r`` reverses). Sequential
#: ones for levels, diverging ones (BrBG, PuOr, RdBu) for change.
PALETTES = frozenset(
    {
        "viridis", "cividis", "plasma", "inferno", "magma",
        "YlOrRd", "YlOrBr", "YlGnBu", "PuBu", "Blues", "Greens", "Purples", "Oranges",
        "BrBG", "PuOr", "RdBu",
    }
)
SCHEMES = ("quantiles", "natural_breaks", "equal_interval", "std_mean", "user_defined", "change", "probability")
#: Upper bounds (%, exclusive) of the fixed classes of a probability map; the last class is "80 % or more".
PROBABILITY_BINS = (20.0, 40.0, 60.0, 80.0)

#: Fill for areas without a value (suppressed for privacy or missing).
NODATA_COLOR = "#d9d9d9"
NODATA_LABEL = "keine Angabe / nicht veröffentlicht"
#: Fixed texts of the maps; layer labels and titles come from the caller.
TEXT = {
    "de": {
        "nodata": NODATA_LABEL,
        "area": "Sozialraum",
        "over": "über",
        "upto": "bis",
        "classes": "Klassen: {scheme}; in Klammern Anzahl Sozialräume",
        "background": "Hintergrundkarte",
        "simplified": "Grenzen für die Anzeige vereinfacht (Toleranz {tol}); Nachbargebiete schließen lückenlos an.",
        "simplified_each": "Grenzen für die Anzeige je Gebiet vereinfacht (Toleranz {tol}).",
        "yes": "ja",
        "no": "nein",
        "schemes": {
            "quantiles": "Quantile",
            "natural_breaks": "natürliche Unterbrechungen (Fisher-Jenks)",
            "equal_interval": "gleiche Intervalle",
            "std_mean": "Standardabweichungen um den Mittelwert",
            "user_defined": "feste Klassengrenzen",
            "change": "feste Klassen um 0, am Korridor ausgerichtet",
            "probability": "feste Klassen von 20 Prozentpunkten, Mitte 50 %",
        },
    },
    "en": {
        "nodata": "no value / not published",
        "area": "Area",
        "over": "over",
        "upto": "up to",
        "classes": "Classes: {scheme}; number of areas in brackets",
        "background": "Background map",
        "simplified": "Boundaries simplified for display (tolerance {tol}); neighbouring areas still meet.",
        "simplified_each": "Boundaries simplified for display, each area on its own (tolerance {tol}).",
        "yes": "yes",
        "no": "no",
        "schemes": {
            "quantiles": "quantiles",
            "natural_breaks": "natural breaks (Fisher-Jenks)",
            "equal_interval": "equal intervals",
            "std_mean": "standard deviations around the mean",
            "user_defined": "fixed class bounds",
            "change": "fixed classes centred on 0, aligned to the corridor",
            "probability": "fixed classes of 20 percentage points, centred on 50 %",
        },
    },
}
#: Tolerances (m, metric CRS) the web map's display geometry is simplified with; see
#: :func:`display_tolerance`. Simplification runs on the whole coverage
#: (``shapely.coverage_simplify``), so neighbouring Sozialräume keep their shared borders.
SIMPLIFY_STEPS_M = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0)
#: A typical area (square root of the median area) spans this many tolerances: about one
#: screen pixel when the area is zoomed to 400 pixels across.
SIMPLIFY_AREA_SPAN = 400
#: At most about this many vertices in ``karte.html`` (≈ 20 bytes each): above it the next
#: larger tolerance is taken, so 10,000 detailed areas still give a file of a few MB.
SIMPLIFY_MAX_VERTICES = 500_000
#: Decimal places of degrees kept in the web map (1e-5 deg ≈ 1 m; tolerances are ≥ 1 m).
COORD_DECIMALS = 5

@dataclass
class MapLayer:
    """One choropleth layer.

    Attributes
    ----------
    column : str
        Numeric column of the Sozialraum frame (NaN = no value / suppressed).
    label : str
        German layer name, e.g. ``"Budget je Kind/Jugendl. (unter 21) in €"``.
    scheme : str
        ``quantiles``, ``natural_breaks`` (Fisher-Jenks), ``equal_interval``,
        ``std_mean`` or ``user_defined`` (then ``bins`` gives the upper class
        bounds).
    k : int
        Number of classes (ignored by ``std_mean`` and ``user_defined``).
    palette : str
        One of :data:`PALETTES` (optionally with ``_r``).
    fmt : str
        ``euro`` (1.234,56 €), ``prozent`` (value already in %, 12,3 %),
        ``zahl`` (1.234,5) or ``index`` (0,12).
    show : bool
        Initially visible (the first layer is shown when none is marked).
    bins : tuple of float, optional
        Upper class bounds for ``user_defined``; the last bound is raised to
        the maximum when it is lower.
    center : float, optional
        Neutral value of a diverging palette (BrBG, PuOr, RdBu); default 0.
        Class colours are taken at the class midpoints on a scale symmetric
        around it, so the neutral colour always means "no change" whatever
        the class breaks are.
    """

    column: str
    label: str
    scheme: str = "quantiles"
    k: int = 5
    palette: str = "viridis"
    fmt: str = "zahl"
    show: bool = False
    bins: tuple[float, ...] | None = None
    center: float | None = None


@dataclass
class Classification:
    """Result of :func:`classify`.

    ``bins`` are mapclassify's upper class bounds, ``lower`` the lower bound of
    the first class (the minimum), ``classes`` the class index per row (-1 for
    no value), ``colors`` one hex colour per class, ``counts`` areas per class.
    """

    bins: list[float]
    lower: float
    classes: np.ndarray
    colors: list[str]
    counts: list[int]
    labels: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------
# legend decimals
# --------------------------------------------------------------------------
def _legend_decimals(values: list[float], fmt: str) -> int:
    """Fewest decimals (≥ the format's usual for small spans) that keep breaks distinct."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return 0
    span = max(finite) - min(finite)
    start = 0 if span >= 100 else (1 if span >= 10 else 2)
    if fmt == "index":
        start = max(start, 2)
    for d in range(start, 7):
        texts = [_number(v, d) for v in finite]
        if len(set(texts)) == len(set(finite)):
            return d
    return 6


# --------------------------------------------------------------------------
# validation and classification
# --------------------------------------------------------------------------
def _check_frame(gdf, columns: list[str], key: str, name: str) -> None:
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise GeoplanError(
            "Für die Karte wird ein GeoDataFrame mit Geometrien benötigt.",
            expected="geopandas.GeoDataFrame",
            found=type(gdf).__name__, message_en="The map needs a GeoDataFrame with geometries.",
        )
    if gdf.crs is None:
        raise GeoplanError(
            "Die Geometrien haben kein Koordinatenreferenzsystem (CRS).",
            expected="metrisches CRS, z. B. EPSG:25833",
            found="kein CRS",
            hint="CRS beim Einlesen der Sozialraumgrenzen setzen (Konfiguration 'crs').",
            message_en="The geometries have no coordinate reference system (CRS).",
            expected_en="a metric CRS, e.g. EPSG:25833", found_en="no CRS",
            hint_en="Set the CRS when reading the Sozialraum boundaries (configuration 'crs').",
        )
    unit = (gdf.crs.axis_info[0].unit_name or "").lower() if gdf.crs.axis_info else ""
    if not gdf.crs.is_projected or unit not in ("metre", "meter", "m"):
        raise GeoplanError(
            "Die Karte erwartet Geometrien in einem metrischen, projizierten CRS.",
            expected="projiziertes CRS in Metern, z. B. EPSG:25832 oder EPSG:25833",
            found=gdf.crs.to_string(),
            hint="Sozialraumgrenzen vorher in das Projekt-CRS umprojizieren.",
            message_en="The map expects geometries in a metric, projected CRS.",
            expected_en="a projected CRS in metres, e.g. EPSG:25832 or EPSG:25833",
            hint_en="Reproject the Sozialraum boundaries into the project CRS first.",
        )
    if len(gdf) == 0:
        raise GeoplanError("Die Karte hat keine Sozialräume (0 Zeilen).", expected="mindestens 1 Sozialraum",
                           message_en="The map has no Sozialräume (0 rows).", expected_en="at least 1 Sozialraum")
    needed = list(dict.fromkeys(c for c in [key, name, *columns] if c is not None))
    missing = [c for c in needed if c not in gdf.columns]
    if missing:
        raise GeoplanError(
            "Spalte für die Karte fehlt: " + ", ".join(f"'{c}'" for c in missing),
            location="Spalte " + ", ".join(missing),
            expected="Spalten " + ", ".join(needed),
            found="vorhanden: " + ", ".join(map(str, gdf.columns)),
            hint="Kartenebene oder Tooltip auf eine vorhandene Spalte der Ergebnistabelle setzen.",
            message_en="Column for the map missing: " + ", ".join(f"'{c}'" for c in missing),
            found_en="present: " + ", ".join(map(str, gdf.columns)),
            hint_en="Set the map layer or tooltip to a column of the result table that exists.",
        )
    if gdf.geometry.isna().any() or gdf.geometry.is_empty.any():
        mask = (gdf.geometry.isna() | gdf.geometry.is_empty).to_numpy()
        bad = (gdf.loc[mask, key].astype(str).tolist() if key is not None
               else [str(i + 1) for i in np.flatnonzero(mask)])
        raise GeoplanError(
            "Sozialräume ohne Geometrie können nicht kartiert werden.",
            location=("Schlüssel " if key is not None else "Zeile ") + ", ".join(bad[:10]),
            expected="Polygon je Sozialraum",
            found="leere Geometrie",
            message_en="Sozialräume without geometry cannot be mapped.", expected_en="one polygon per Sozialraum",
            found_en="empty geometry",
        )


def _numeric(gdf, layer: MapLayer) -> np.ndarray:
    col = gdf[layer.column]
    values = pd.to_numeric(col, errors="coerce")
    bad = values.isna() & col.notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise GeoplanError(
            f"Kartenebene '{layer.label}': Spalte '{layer.column}' enthält keine Zahl.",
            location=f"Zeile {i + 1}, Spalte '{layer.column}'",
            expected="Zahl oder leer (nicht veröffentlicht)",
            found=repr(col.iloc[i]),
            message_en=f"Map layer '{layer.label}': column '{layer.column}' holds something that is not a number.",
            expected_en="a number or empty (not published)",
        )
    return values.to_numpy(dtype=float)


def _check_layer(layer: MapLayer) -> None:
    if layer.scheme not in SCHEMES:
        raise GeoplanError(
            f"Kartenebene '{layer.label}': unbekannte Klassifikation '{layer.scheme}'.",
            expected=", ".join(SCHEMES),
            found=layer.scheme, message_en=f"Map layer '{layer.label}': unknown classification '{layer.scheme}'.",
        )
    if layer.palette.removesuffix("_r") not in PALETTES:
        raise GeoplanError(
            f"Kartenebene '{layer.label}': Farbpalette '{layer.palette}' ist nicht zugelassen.",
            expected="farbfehlsichtigkeitssicher: " + ", ".join(sorted(PALETTES)),
            found=layer.palette,
            hint="Sequenziell: viridis, cividis, YlOrRd, PuBu; Veränderung (divergierend): BrBG, PuOr, RdBu.",
            message_en=f"Map layer '{layer.label}': colour palette '{layer.palette}' is not allowed.",
            expected_en="safe for colour-vision deficiency: " + ", ".join(sorted(PALETTES)),
            hint_en="Sequential: viridis, cividis, YlOrRd, PuBu; change (diverging): BrBG, PuOr, RdBu.",
        )
    if layer.fmt not in FORMATS:
        raise GeoplanError(
            f"Kartenebene '{layer.label}': unbekanntes Zahlenformat '{layer.fmt}'.",
            expected=", ".join(FORMATS),
            found=layer.fmt, message_en=f"Map layer '{layer.label}': unknown number format '{layer.fmt}'.",
        )
    if layer.scheme == "change" and (not layer.bins or len(layer.bins) != 4):
        raise GeoplanError(
            f"Kartenebene '{layer.label}': 'change' braucht vier Klassengrenzen (−außen, −innen, +innen, +außen).",
            expected="z. B. (-15, -5, 5, 15)",
            found=str(layer.bins),
            message_en=f"Map layer '{layer.label}': 'change' needs four class limits (−outer, −inner, +inner, +outer).",
            expected_en="e.g. (-15, -5, 5, 15)",
        )
    if layer.scheme == "probability" and (not layer.bins or list(layer.bins) != sorted(layer.bins)):
        raise GeoplanError(
            f"Kartenebene '{layer.label}': 'probability' braucht aufsteigende Klassengrenzen in %.",
            expected="z. B. (20, 40, 60, 80)",
            found=str(layer.bins),
            message_en=f"Map layer '{layer.label}': 'probability' needs ascending class limits in %.",
            expected_en="e.g. (20, 40, 60, 80)",
        )
    if layer.scheme == "user_defined" and not layer.bins:
        raise GeoplanError(
            f"Kartenebene '{layer.label}': 'user_defined' braucht Klassengrenzen (bins).",
            expected="aufsteigende Obergrenzen, z. B. (-10, 0, 10, 1e9)",
            found="keine", message_en=f"Map layer '{layer.label}': 'user_defined' needs class limits (bins).",
            expected_en="ascending upper limits, e.g. (-10, 0, 10, 1e9)", found_en="none",
        )
    if layer.scheme not in ("std_mean", "user_defined") and not (1 <= int(layer.k) <= 12):
        raise GeoplanError(
            f"Kartenebene '{layer.label}': Klassenanzahl k muss zwischen 1 und 12 liegen.",
            expected="1–12",
            found=str(layer.k),
            message_en=f"Map layer '{layer.label}': the number of classes k must lie between 1 and 12.",
        )


DIVERGING = frozenset({"BrBG", "PuOr", "RdBu"})


def _diverging_colors(palette: str, lower: float, bins: list[float], center: float) -> list[str]:
    import matplotlib
    from matplotlib.colors import to_hex

    cmap = matplotlib.colormaps[palette]
    edges = [lower, *bins]
    # Class midpoints; an unbounded class takes its finite bound.
    mids = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        mids.append((lo + hi) / 2 if math.isfinite(hi) and math.isfinite(lo) else (lo if math.isfinite(lo) else hi))
    # The class farthest from the neutral value gets the palette's end colour;
    # the other side is scaled alike, so equal distances get equal intensity.
    half = max(abs(m - center) for m in mids) or 1.0
    return [to_hex(cmap(min(1.0, max(0.0, 0.5 + 0.5 * (m - center) / half)))) for m in mids]


def _palette_colors(palette: str, n: int) -> list[str]:
    import matplotlib
    from matplotlib.colors import to_hex

    cmap = matplotlib.colormaps[palette]
    if n <= 1:
        return [to_hex(cmap(0.5))]
    return [to_hex(cmap(x)) for x in np.linspace(0.0, 1.0, n)]


def change_bins(max_decrease_pct: float | None = None, max_increase_pct: float | None = None) -> tuple[float, ...]:
    """Class edges of a change map (%): (−outer, −inner, +inner, +outer), outer = the corridor (default 15),
    inner = a third of it (5 for ±15 %); rounded to one decimal, so no legend bound has more."""
    lo = round(float(max_decrease_pct if max_decrease_pct is not None else 15.0), 1)
    hi = round(float(max_increase_pct if max_increase_pct is not None else 15.0), 1)
    inner = round(max(min(lo, hi) / 3.0, 0.1), 1)
    return (-lo, -inner, inner, hi)


def change_layer(label: str, corridor=None) -> MapLayer:
    """The change-against-prior-year layer (%) with :func:`change_bins` for every map and style."""
    c = corridor
    bins = change_bins(getattr(c, "max_decrease_pct", None), getattr(c, "max_increase_pct", None))
    return MapLayer("change_pct", label, scheme="change", bins=bins, palette="BrBG", fmt="prozent", center=0.0)


def _classify_change(y: np.ndarray, ok: np.ndarray, layer: MapLayer, lang: str) -> Classification:
    """Five fixed diverging classes on the change rounded to one decimal:
    ≤ −outer, (−outer, −inner), [−inner, +inner], (+inner, +outer), ≥ +outer."""
    import matplotlib
    from matplotlib.colors import to_hex

    olo, ilo, ihi, ohi = (float(b) for b in layer.bins)
    classes = np.full(len(y), -1, dtype=int)
    r = np.round(y[ok], 1)
    cls = np.where(r <= olo, 0, np.where(r < ilo, 1, np.where(r <= ihi, 2, np.where(r < ohi, 3, 4))))
    classes[ok] = cls
    counts = [int((cls == i).sum()) for i in range(5)]
    d = 0 if all(float(b).is_integer() for b in layer.bins) else 1

    def f(v, sign=False):
        t = _by_kind(v, layer.fmt, d, lang)
        return ("+" + t) if sign and v > 0 else t

    dash = " – "
    labels = [f"≤ {f(olo)}", f"{f(olo)}{dash}{f(ilo)}", f"{f(ilo)}{dash}{f(ihi, True)}",
              f"{f(ihi, True)}{dash}{f(ohi, True)}", f"≥ {f(ohi, True)}"]
    cmap = matplotlib.colormaps[layer.palette]
    colors = [to_hex(cmap(x)) for x in (0.1, 0.3, 0.5, 0.7, 0.9)]
    top = max(ohi, float(r.max())) if r.size else ohi
    low = min(olo, float(r.min())) if r.size else olo
    return Classification(bins=[olo, ilo, ihi, ohi, top], lower=low, classes=classes, colors=colors, counts=counts,
                          labels=labels)


def probability_layer(column: str, label: str) -> MapLayer:
    """A probability layer (values in %, 0–100) with the five fixed classes of :data:`PROBABILITY_BINS`
    and the colour-blind-safe diverging PuOr scheme: purple below 50 %, orange above, near-white around 50 %."""
    return MapLayer(column, label, scheme="probability", bins=PROBABILITY_BINS, palette="PuOr_r", fmt="prozent",
                    center=50.0)


def _classify_probability(y: np.ndarray, ok: np.ndarray, layer: MapLayer, lang: str) -> Classification:
    """Five fixed classes of a probability in %: < b1, [b1, b2), …, ≥ b_last (every class in the legend, also
    when empty, so the same colour means the same probability in every run)."""
    import matplotlib
    from matplotlib.colors import to_hex

    bounds = [float(b) for b in layer.bins]
    classes = np.full(len(y), -1, dtype=int)
    cls = np.searchsorted(np.asarray(bounds), y[ok], side="right")
    classes[ok] = cls
    k = len(bounds) + 1
    counts = [int((cls == i).sum()) for i in range(k)]
    d = 0 if all(b.is_integer() for b in bounds) else 1

    def f(v):
        return _by_kind(v, layer.fmt, d, lang)

    if lang == "en":
        labels = [f"under {f(bounds[0])}"] + [f"{f(a)} to under {f(b)}" for a, b in zip(bounds[:-1], bounds[1:])] \
            + [f"{f(bounds[-1])} or more"]
    else:
        labels = [f"unter {f(bounds[0])}"] + [f"{f(a)} bis unter {f(b)}" for a, b in zip(bounds[:-1], bounds[1:])] \
            + [f"{f(bounds[-1])} und mehr"]
    cmap = matplotlib.colormaps[layer.palette]
    # symmetric around the middle class: equal distance from 50 % gets equal intensity
    colors = [to_hex(cmap(x)) for x in np.linspace(0.1, 0.9, k)]
    top = max(100.0, float(y[ok].max())) if ok.any() else 100.0
    return Classification(bins=[*bounds, top], lower=0.0, classes=classes, colors=colors, counts=counts,
                          labels=labels)


def classify(values, layer: MapLayer, lang: str = "de") -> Classification:
    """Classify ``values`` (array, NaN = no value) with the layer's mapclassify scheme.

    Returns the mapclassify upper bounds (``bins``) exactly, the class of each
    value (-1 for NaN), one palette colour per class and German legend labels
    ``"a – b"`` in the layer's number format.
    """
    import warnings

    import mapclassify

    _check_layer(layer)
    y = np.asarray(values, dtype=float)
    ok = np.isfinite(y)
    classes = np.full(len(y), -1, dtype=int)
    if not ok.any():
        return Classification(bins=[], lower=float("nan"), classes=classes, colors=[], counts=[], labels=[])
    if layer.scheme == "change":
        return _classify_change(y, ok, layer, lang)
    if layer.scheme == "probability":
        return _classify_probability(y, ok, layer, lang)
    yy = y[ok]
    n_unique = len(np.unique(yy))
    k = max(1, min(int(layer.k), n_unique))
    if layer.scheme == "user_defined":
        clf = mapclassify.UserDefined(yy, bins=sorted(float(b) for b in layer.bins))
    elif layer.scheme == "std_mean":
        clf = mapclassify.StdMean(yy) if n_unique > 1 else mapclassify.UserDefined(yy, bins=[yy.max()])
    elif k == 1:
        clf = mapclassify.UserDefined(yy, bins=[yy.max()])
    elif layer.scheme == "quantiles":
        with warnings.catch_warnings():
            # Ties leave fewer distinct quantiles; the legend then simply shows fewer classes.
            warnings.filterwarnings("ignore", message="Not enough unique values")
            clf = mapclassify.Quantiles(yy, k=k)
    elif layer.scheme == "natural_breaks":
        with warnings.catch_warnings():
            # mapclassify only hints that numba would be faster; 58-500 areas are quick anyway.
            warnings.filterwarnings("ignore", message="Numba not installed")
            clf = mapclassify.FisherJenks(yy, k=k)
    else:
        clf = mapclassify.EqualInterval(yy, k=k)
    bins = [float(b) for b in np.asarray(clf.bins, dtype=float)]
    classes[ok] = np.asarray(clf.yb, dtype=int)
    counts = [int(c) for c in np.asarray(clf.counts)]
    lower = float(yy.min())
    if layer.palette.removesuffix("_r") in DIVERGING:
        center = 0.0 if layer.center is None else float(layer.center)
        # Last user-defined bound far beyond the data would wash out all colours.
        top = min(bins[-1], float(yy.max())) if layer.scheme == "user_defined" else bins[-1]
        colors = _diverging_colors(layer.palette, lower, [*bins[:-1], top], center)
    else:
        colors = _palette_colors(layer.palette, len(bins))
    labels = _class_labels(lower, bins, layer.fmt, float(yy.max()), lang)
    return Classification(bins=bins, lower=lower, classes=classes, colors=colors, counts=counts, labels=labels)


def _class_labels(
    lower: float, bins: list[float], fmt: str, upper: float | None = None, lang: str = "de"
) -> list[str]:
    """Legend labels; classes are (previous bound, bound], the first starts at the minimum.

    An upper bound beyond the data maximum (``user_defined`` catch-all class)
    is written as ``über x``.
    """
    if upper is None:
        upper = bins[-1] if bins else lower
    open_last = bool(bins) and (not math.isfinite(bins[-1]) or bins[-1] > upper)
    shown = [b for b in (bins[:-1] if open_last else bins) if math.isfinite(b)]
    d = _legend_decimals([lower, *shown], fmt)
    labels = []
    prev = lower
    for i, b in enumerate(bins):
        lo = _by_kind(prev, fmt, d, lang)
        if i == len(bins) - 1 and open_last and i > 0:
            labels.append(f"{TEXT[lang]['over']} {lo}")
        elif i == 0 and b <= prev:
            labels.append(f"{TEXT[lang]['upto']} {_by_kind(b, fmt, d, lang)}")
        else:
            labels.append(f"{lo} – {_by_kind(b, fmt, d, lang)}")
        prev = b
    return labels


# --------------------------------------------------------------------------
# interactive map
# --------------------------------------------------------------------------
def _static_text(name: str) -> str:
    return resources.files("geoplan").joinpath("static", name).read_text(encoding="utf-8")


def _static_b64(name: str) -> str:
    return base64.b64encode(resources.files("geoplan").joinpath("static", name).read_bytes()).decode("ascii")


def _inline_assets() -> str:
    """Leaflet JS + CSS as inline ``<style>``/``<script>``; images as data: URIs."""
    css = _static_text("leaflet.css")
    css = css.replace("url(images/layers.png)", f"url(data:image/png;base64,{_static_b64('leaflet-layers.png')})")
    css = css.replace(
        "url(images/layers-2x.png)", f"url(data:image/png;base64,{_static_b64('leaflet-layers-2x.png')})"
    )
    # Marker icons are not shipped: the maps draw polygons only.
    css = re.sub(r"\.leaflet-default-icon-path\s*\{[^}]*\}", "", css)
    js = _static_text("leaflet.js")
    js = re.sub(r"//# sourceMappingURL=\S+", "", js)
    js = js.replace("</script", "<\\/script")
    return (
        "<!-- Leaflet 1.9.4 (BSD-2-Clause, (c) 2010-2023 Vladimir Agafonkin, (c) 2010-2011 CloudMade), "
        "inlined by geoplan -->\n"
        f"<style>{css}</style>\n<script>{js}</script>\n"
    )


_MAP_CSS = """
<style>
html, body {margin:0; padding:0; font-family: "DejaVu Sans", Arial, Helvetica, sans-serif;}
.leaflet-container {background: #ffffff; font-family: inherit;}
.geoplan-title {position: absolute; top: 0; left: 0; right: 0; height: 40px; box-sizing: border-box;
  padding: 9px 12px; font-size: 17px; font-weight: bold; background: #ffffff; color: #222;
  border-bottom: 1px solid #cccccc; white-space: nowrap; overflow: hidden; text-overflow: ellipsis;}
.folium-map {top: 40px !important; height: calc(100% - 40px) !important;}
.geoplan-legend {background: rgba(255,255,255,0.94); padding: 8px 10px; border-radius: 4px;
  box-shadow: 0 1px 4px rgba(0,0,0,0.3); font-size: 12px; line-height: 1.35; max-width: 300px;}
.geoplan-legend h4 {margin: 0 0 5px 0; font-size: 12.5px;}
.geoplan-legend .row {display: flex; align-items: center; white-space: nowrap;}
.geoplan-legend .sw {display: inline-block; width: 18px; height: 13px; margin-right: 6px;
  border: 1px solid #777; flex: none;}
.geoplan-legend .n {color: #555; margin-left: 6px;}
.geoplan-legend .scheme {color: #555; margin-top: 4px; font-size: 11px; white-space: normal;}
.geoplan-legend .geoplan-note {color: #555; margin-top: 4px; font-size: 11px; white-space: normal;
  border-top: 1px solid #ddd; padding-top: 3px; width: 0; min-width: 100%;}
.leaflet-tooltip table td {padding: 1px 4px;}
@media (max-width: 600px) {
  .geoplan-legend {font-size: 10.5px; max-width: 190px; padding: 5px 6px;}
  .geoplan-legend .scheme {display: none;}
  .geoplan-title {font-size: 14px;}
}
@media print {
  .leaflet-control-zoom, .leaflet-control-layers {display: none;}
  .geoplan-legend, .geoplan-title {box-shadow: none;}
}
</style>
"""


def _legend_html(
    layer: MapLayer, clf: Classification, has_nodata: bool, idx: int, opacity: float = 1.0, lang: str = "de"
) -> str:
    text = TEXT[lang]
    rows = []
    for label, color, count in zip(clf.labels, clf.colors, clf.counts):
        rows.append(
            f'<div class="row"><span class="sw" style="background:{color};opacity:{opacity:g}"></span>'
            f'<span class="lbl">{html.escape(label)}</span><span class="n">({count})</span></div>'
        )
    if has_nodata:
        rows.append(
            f'<div class="row"><span class="sw" style="background:{NODATA_COLOR}"></span>'
            f'<span class="lbl">{html.escape(text["nodata"])}</span></div>'
        )
    bins_attr = html.escape(json.dumps([clf.lower, *clf.bins]))
    return (
        f'<div class="geoplan-legend-layer" data-layer="{idx}" data-column="{html.escape(layer.column)}" '
        f'data-breaks="{bins_attr}">'
        f"<h4>{html.escape(layer.label)}</h4>{''.join(rows)}"
        f'<div class="scheme">{html.escape(text["classes"].format(scheme=text["schemes"][layer.scheme]))}</div></div>'
    )


def _sample(geoms: np.ndarray, size: int) -> np.ndarray:
    """Evenly spaced geometries (deterministic): all of them up to ``size``."""
    if len(geoms) <= size:
        return geoms
    return geoms[np.linspace(0, len(geoms) - 1, size).round().astype(int)]


def display_tolerance(gdf: gpd.GeoDataFrame) -> float:
    """Simplification tolerance (m) for the web map's display geometry.

    The largest of :data:`SIMPLIFY_STEPS_M` not above √(median area) / 400
    (a typical area zoomed to 400 screen pixels across loses less than a
    pixel); if the whole map would still have more than
    :data:`SIMPLIFY_MAX_VERTICES` vertices (estimated from 300 evenly spaced
    areas), the next larger step, and so on. Berlin's 58
    Prognoseräume: 5 m; 10,000 areas of the same detail: 20–50 m.
    """
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    area = shapely.area(geoms)
    area = area[np.isfinite(area) & (area > 0)]
    if not len(area):
        return SIMPLIFY_STEPS_M[0]
    side = math.sqrt(float(np.median(area)))
    steps = [t for t in SIMPLIFY_STEPS_M if t <= side / SIMPLIFY_AREA_SPAN] or [SIMPLIFY_STEPS_M[0]]
    i = SIMPLIFY_STEPS_M.index(steps[-1])
    if shapely.get_num_coordinates(geoms).sum() <= SIMPLIFY_MAX_VERTICES:
        return SIMPLIFY_STEPS_M[i]  # within the budget before any simplification
    sample = _sample(geoms, 300)
    scale = len(geoms) / len(sample)
    while i < len(SIMPLIFY_STEPS_M) - 1:
        try:
            n = shapely.get_num_coordinates(shapely.coverage_simplify(sample, SIMPLIFY_STEPS_M[i])).sum()
        except Exception:  # noqa: BLE001 - not polygons: per-area simplification below
            n = shapely.get_num_coordinates(shapely.simplify(sample, SIMPLIFY_STEPS_M[i])).sum()
        if n * scale <= SIMPLIFY_MAX_VERTICES:
            break
        i += 1
    return SIMPLIFY_STEPS_M[i]


#: The last few display geometries by content (see :func:`_web_geometry`): key -> (geometries, whole).
_WEB_CACHE: dict = {}
_WEB_CACHE_SIZE = 4


def _geometry_digest(geoms: np.ndarray) -> str:
    """SHA-256 of the geometries' WKB (each with its length; a missing one marked): equal content, equal digest."""
    import hashlib

    digest = hashlib.sha256()
    for wkb in shapely.to_wkb(geoms).tolist():
        digest.update(b"\xff" * 8 if wkb is None else len(wkb).to_bytes(8, "little") + wkb)
    return digest.hexdigest()


def _web_geometry(gdf: gpd.GeoDataFrame, tolerance_m: float) -> tuple[np.ndarray, bool]:
    """Display geometry in EPSG:4326, simplified with ``tolerance_m`` and rounded to :data:`COORD_DECIMALS`.

    The areas are simplified as one coverage (``shapely.coverage_simplify``),
    so shared borders stay shared; if that gives an invalid or empty polygon
    (the areas are not a clean coverage), each area on its own
    (topology-preserving per area). Returns the geometries and whether the
    coverage was simplified as a whole.

    The result depends only on the coordinates, the CRS and the tolerance; it
    is kept for the last few of them (keyed by a SHA-256 of the geometries'
    WKB), so maps of the same areas in one process (both languages, several
    presets or configurations on the same boundaries) simplify them once:
    0.2 s CPU for Berlin's 58 Prognoseräume.
    """
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    key = (_geometry_digest(geoms), gdf.crs.to_wkt() if gdf.crs is not None else None, float(tolerance_m))
    hit = _WEB_CACHE.get(key)
    if hit is not None:
        return hit[0].copy(), hit[1]
    out = _simplified_web_geometry(gdf, geoms, tolerance_m)
    _WEB_CACHE[key] = (out[0].copy(), out[1])
    while len(_WEB_CACHE) > _WEB_CACHE_SIZE:
        _WEB_CACHE.pop(next(iter(_WEB_CACHE)))
    return out


def _simplified_web_geometry(gdf, geoms: np.ndarray, tolerance_m: float) -> tuple[np.ndarray, bool]:
    """:func:`_web_geometry` without the cache."""
    whole = False
    simplified = None
    try:
        simplified = shapely.coverage_simplify(geoms, tolerance_m)
        whole = bool(shapely.is_valid(simplified).all() and not shapely.is_empty(simplified).any())
    except Exception:  # noqa: BLE001 - e.g. lines or points among the areas
        whole = False
    if not whole:
        simplified = shapely.simplify(geoms, tolerance_m, preserve_topology=True)
        bad = ~shapely.is_valid(simplified) | shapely.is_empty(simplified)
        simplified = np.where(bad & ~shapely.is_empty(geoms), geoms, simplified)
    web = gpd.GeoSeries(simplified, crs=gdf.crs).to_crs(4326).values
    # Rounding each vertex on its own keeps shared vertices shared.
    return shapely.transform(np.asarray(web, dtype=object), lambda c: np.round(c, COORD_DECIMALS)), whole


def _feature_collection(geoms: np.ndarray, props: list[dict]) -> str:
    """GeoJSON FeatureCollection text for a <script> block, written once for all layers.

    Geometry by GEOS's GeoJSON writer (shortest round-trip numbers); properties
    by :func:`_script_json`, so no text can end the script.
    """
    geo = shapely.to_geojson(geoms)
    parts = []
    for g, p in zip(geo.tolist(), props):
        parts.append('{"type":"Feature","properties":' + _script_json(p) + ',"geometry":' + (g or "null") + "}")
    return '{"type":"FeatureCollection","features":[' + ",".join(parts) + "]}"


def _tooltip_spec(tooltip: dict, layers: list[MapLayer]) -> list[tuple[str, str, str | None]]:
    fmt_by_col = {ly.column: ly.fmt for ly in layers}
    spec = []
    for col, label in tooltip.items():
        fmt = None
        if isinstance(label, (tuple, list)):
            label, fmt = label
        spec.append((col, str(label), fmt or fmt_by_col.get(col)))
    return spec


def _tooltip_value(value, fmt: str | None, lang: str = "de") -> str:
    if fmt is not None:
        return _by_kind(value, fmt, lang=lang)
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return TEXT[lang]["yes"] if value else TEXT[lang]["no"]
    if isinstance(value, (int, float, np.integer, np.floating)):
        return _by_kind(value, "zahl", lang=lang)
    return str(value)


_SAFE_LINK = re.compile(r"""<a\s+href\s*=\s*["'](https?://[^"'<>\s]+)["']\s*>([^<>]*)</a\s*>""", re.IGNORECASE)


def safe_attribution(text: str | None) -> str:
    """Attribution HTML with only plain links kept: ``<a href="https://…">text</a>``; everything else escaped.

    Leaflet inserts attributions as HTML; this keeps licence links working while a
    source text from the config can neither run script nor load anything (no ``<img>``).
    """
    if not text:
        return ""
    text = str(text)
    out, pos = [], 0
    for m in _SAFE_LINK.finditer(text):
        out.append(html.escape(text[pos : m.start()]))
        out.append(f'<a href="{html.escape(m.group(1))}">{html.escape(html.unescape(m.group(2)))}</a>')
        pos = m.end()
    out.append(html.escape(text[pos:]))
    return "".join(out)


def _check_tiles(tiles: str, tiles_attribution: str | None) -> None:
    if not isinstance(tiles, str) or not all(p in tiles for p in ("{z}", "{x}", "{y}")):
        raise GeoplanError(
            "Die Kachel-URL für den Kartenhintergrund ist keine Vorlage mit {z}/{x}/{y}.",
            location="output.tiles",
            expected="z. B. kacheln/{z}/{x}/{y}.png (im Ausgabeordner) oder https://…/{z}/{x}/{y}.png",
            found=repr(tiles),
            hint="Kachel-URL korrigieren oder 'tiles' weglassen (kein Hintergrund, keine Anfrage an Dritte).",
            message_en="The tile URL for the map background is not a template with {z}/{x}/{y}.",
            expected_en="e.g. tiles/{z}/{x}/{y}.png (in the output folder) or https://…/{z}/{x}/{y}.png",
            hint_en="Correct the tile URL or leave out 'tiles' (no background, no request to third parties).",
        )
    if not tiles_attribution or not str(tiles_attribution).strip():
        raise GeoplanError(
            "Für Hintergrundkacheln fehlt die Quellenangabe des Kachelanbieters.",
            location="output.tiles_attribution",
            expected="Quellenangabe, z. B. '© OpenStreetMap-Mitwirkende'",
            found="leer",
            hint="'tiles_attribution' in der Konfiguration setzen (Lizenzpflicht der Kachelanbieter).",
            message_en="The attribution of the tile provider is missing for background tiles.",
            expected_en="an attribution, e.g. '© OpenStreetMap contributors'", found_en="empty",
            hint_en="Set 'tiles_attribution' in the configuration (the tile providers' licences require it).",
        )


@functools.lru_cache(maxsize=8)
def _template(text: str):
    """A Jinja template compiled once per text (Leaflet's 150 kB of script took 30 ms to lex each time)."""
    from jinja2 import Template

    return Template(text)


def _element(text: str):
    """A branca element whose template is ``text`` (what ``Element(text)`` is), its template compiled once."""
    from branca.element import Element

    element = Element()
    element._template = _template(text)
    return element


_CONTROLS_TEMPLATE = """
        {% macro script(this, kwargs) %}
        var geoplan_sozialraeume = <GEOPLAN_MAP_DATA>;
        (function(map) {
            map.attributionControl.setPrefix(false);
            {%- if this.attribution %}
            map.attributionControl.addAttribution({{ this.attribution|tojson }});
            {%- endif %}
            var legend = L.control({position: 'bottomright'});
            legend.onAdd = function() {
                var d = L.DomUtil.create('div', 'geoplan-legend');
                d.innerHTML = {{ this.legends|tojson }};
                L.DomEvent.disableClickPropagation(d);
                return d;
            };
            legend.addTo(map);
            var names = {{ this.names|tojson }};
            function showLegend(i) {
                document.querySelectorAll('.geoplan-legend-layer').forEach(function(el) {
                    el.style.display = (el.getAttribute('data-layer') === String(i)) ? 'block' : 'none';
                });
            }
            showLegend({{ this.shown }});
            // One set of polygons for all layers; a layer is a colouring: its palette and each area's class.
            var palettes = {{ this.palettes|tojson }}, current = {{ this.shown }};
            function style(feature) {
                var c = feature.properties.c[current];
                return {fillColor: c >= 0 ? palettes[current][c] : {{ this.nodata|tojson }}, color: '#333333',
                        weight: 0.8, fillOpacity: {{ this.fill_opacity }}};
            }
            var areas = L.geoJson(geoplan_sozialraeume, {style: style, smoothFactor: 0.5}).addTo(map);
            var bases = names.map(function(n, i) { return L.layerGroup(); });
            bases[current].addTo(map);
            L.control.layers({{ this.base_object }}, {{ this.overlay_object }},
                             {collapsed: false, position: 'topright', autoZIndex: true}).addTo(map);
            map.on('baselayerchange', function(e) {
                current = names.indexOf(e.name);
                areas.setStyle(style);
                showLegend(current);
            });
            // Tooltips are built as DOM nodes with textContent: names and labels are never parsed as HTML.
            var tipFields = {{ this.tip_fields|tojson }}, tipLabels = {{ this.tip_labels|tojson }};
            function geoplanTip(layer) {
                var p = (layer.feature && layer.feature.properties) || {};
                var t = document.createElement('table');
                tipFields.forEach(function(f, i) {
                    var tr = t.insertRow(), th = document.createElement('th');
                    th.textContent = tipLabels[i];
                    tr.appendChild(th);
                    tr.insertCell().textContent = (p[f] === null || p[f] === undefined) ? '' : String(p[f]);
                });
                return t;
            }
            areas.bindTooltip(geoplanTip, {sticky: true, className: 'foliumtooltip'});
            // The hovered area's outline on top of its neighbours.
            areas.on('mouseover', function(e) { e.layer.setStyle({weight: 3, color: '#000000'}); e.layer.bringToFront(); });
            areas.on('mouseout', function(e) { areas.resetStyle(e.layer); });
            L.control.scale({imperial: false, position: 'bottomleft'}).addTo(map);
            // Keep the polygons clear of the legend (bottom right).
            var lw = legend.getContainer().offsetWidth || 0;
            map.fitBounds({{ this.bounds|tojson }}, {paddingTopLeft: [10, 10], paddingBottomRight: [lw + 20, 10]});
        })({{ this._parent.get_name() }});
        {% endmacro %}
        """


def interactive_map(
    gdf: gpd.GeoDataFrame,
    layers: list[MapLayer],
    *,
    tooltip: dict[str, str],
    title: str,
    attribution: str,
    tiles: str | None = None,
    key: str = "key",
    name: str = "name",
    tiles_attribution: str | None = None,
    lang: str = "de",
    simplify_m: float | None = None,
) -> str:
    """Build ``karte.html`` as a full, self-contained HTML document.

    Parameters
    ----------
    gdf : GeoDataFrame
        Sozialraum frame in a metric CRS (EPSG:25832/25833).
    layers : list of MapLayer
        One choropleth each; switchable (radio buttons) in the layer control.
    tooltip : dict
        ``{column: German label}`` shown on hover after the name. A value may
        be ``(label, fmt)`` to choose the number format; otherwise a layer's
        format is used for its column and ``zahl`` for other numbers.
    title : str
        Map title (German).
    attribution : str
        Data sources shown in the attribution control (text; plain links, e.g. an
        ``<a href>`` to the licence, which does not load anything).
    tiles : str, optional
        Tile URL template with ``{z}``, ``{x}``, ``{y}`` (e.g. a relative
        ``kacheln/{z}/{x}/{y}.png`` served from the output folder, or a tile
        server the config names). ``None`` (default) draws no background and
        makes no request at all.
    tiles_attribution : str, optional
        Required with ``tiles``: the tile provider's attribution (HTML).
    lang : str
        ``de`` (default) or ``en`` for the fixed texts and number format.
    key, name : str
        Key and name columns.
    simplify_m : float, optional
        Tolerance (m) for the display geometry; default :func:`display_tolerance`
        (from the areas' size and number). Stated in the legend.

    The geometry is written once, as one GeoJSON FeatureCollection, and drawn
    as one set of polygons; switching the layer recolours them (the class of
    each area per layer is a small integer in its properties). Only the key,
    the name, the pre-formatted tooltip strings and the class numbers are
    written into the map data (no other column leaves the frame).
    """
    import folium
    from branca.element import MacroElement

    if not layers:
        raise GeoplanError("Die Karte braucht mindestens eine Kartenebene.", expected="mindestens 1 MapLayer",
                           message_en="The map needs at least one map layer.", expected_en="at least 1 MapLayer")
    for ly in layers:
        _check_layer(ly)
    tiles = tiles or None
    if lang not in LANGS:
        raise GeoplanError(f"Unbekannte Sprache '{lang}'.", expected="de oder en", found=str(lang),
                           message_en=f"Unknown language '{lang}'.")
    if tiles is not None:
        _check_tiles(tiles, tiles_attribution)
    spec = _tooltip_spec(tooltip, layers)
    _check_frame(gdf, [ly.column for ly in layers] + [c for c, _, _ in spec], key, name)

    tol = float(simplify_m) if simplify_m is not None else display_tolerance(gdf)
    geoms, whole = _web_geometry(gdf, tol)
    keys = gdf[key].astype(str).tolist()
    if len(set(keys)) != len(keys):
        dup = pd.Series(keys)[pd.Series(keys).duplicated()].iloc[0]
        raise GeoplanError(
            "Sozialraum-Schlüssel sind nicht eindeutig.",
            location=f"Schlüssel {dup}",
            expected="eindeutiger Schlüssel je Sozialraum",
            found="doppelt",
            message_en="Sozialraum keys are not unique.",
            expected_en="a unique key per Sozialraum", found_en="duplicate",
        )
    names = gdf[name].astype(str).tolist()
    columns: dict[str, list] = {"key": keys, "name": names}
    # The name leads the tooltip unless the caller lists it already; key and name are not repeated.
    listed = {c for c, _, _ in spec}
    fields, aliases = ([], []) if name in listed else (["name"], [TEXT[lang]["area"]])
    for i, (col, label, fmt) in enumerate(spec):
        if fmt is None and col in (key, name):
            prop = "key" if col == key else "name"
        else:
            prop = f"t{i}"
            columns[prop] = [_tooltip_value(v, fmt, lang) for v in gdf[col].tolist()]
        fields.append(prop)
        aliases.append(label)

    # Without a background the fill is opaque so map colours equal the legend swatches.
    fill_opacity = 0.75 if tiles else 1.0
    shown = next((i for i, ly in enumerate(layers) if ly.show), 0)
    legends, palettes, classes = [], [], []
    for i, ly in enumerate(layers):
        clf = classify(_numeric(gdf, ly), ly, lang)
        legends.append(_legend_html(ly, clf, bool((clf.classes < 0).any()), i, fill_opacity, lang))
        palettes.append(list(clf.colors))
        classes.append(clf.classes.astype(int).tolist())
    columns["c"] = [list(c) for c in zip(*classes)]  # class of each layer (-1: no value)
    props = [dict(zip(columns, row)) for row in zip(*columns.values())]
    data = _feature_collection(geoms, props)
    tol_text = _by_kind(tol, "zahl", lang=lang) + "\u00a0m"
    note = TEXT[lang]["simplified" if whole else "simplified_each"].format(tol=tol_text)
    legends.append(f'<div class="geoplan-note" data-simplify-m="{tol:g}">{html.escape(note)}</div>')

    bounds = shapely.bounds(geoms)
    minx, miny = np.nanmin(bounds[:, 0]), np.nanmin(bounds[:, 1])
    maxx, maxy = np.nanmax(bounds[:, 2]), np.nanmax(bounds[:, 3])
    m = folium.Map(
        location=[(miny + maxy) / 2, (minx + maxx) / 2],
        tiles=None,
        zoom_start=10,
        control_scale=False,
        prefer_canvas=False,
        font_size="13px",
        zoom_snap=0.25,
        zoom_delta=0.5,
    )
    # Instance attributes shadow folium's CDN lists (class lists stay untouched).
    m.default_js = []
    m.default_css = []
    root = m.get_root()
    root.header.add_child(_element(_inline_assets()), name="geoplan_leaflet")
    root.header.add_child(_element(_MAP_CSS), name="geoplan_css")
    root.title = html.escape(title)  # branca writes <title>{{ title }}</title> without escaping
    root.html.add_child(_element(f'<header class="geoplan-title">{html.escape(title)}</header>'), name="geoplan_title")

    tile_layer = None
    if tiles:
        tile_layer = folium.TileLayer(
            tiles=tiles, attr=safe_attribution(tiles_attribution), name=TEXT[lang]["background"], overlay=True,
            control=True, show=True,
        ).add_to(m)

    label_names = [html.escape(ly.label) for ly in layers]  # Leaflet's layer control inserts names as HTML
    attribution_html = safe_attribution(attribution)
    controls = MacroElement()
    controls._template = _template(_CONTROLS_TEMPLATE)
    controls.attribution = attribution_html
    controls.legends = "".join(legends)
    controls.names = label_names
    controls.tip_fields = fields
    controls.tip_labels = aliases
    controls.shown = shown
    controls.palettes = palettes
    controls.nodata = NODATA_COLOR
    controls.fill_opacity = f"{fill_opacity:g}"
    controls.base_object = "{" + ", ".join(f"{_script_json(n)}: bases[{i}]" for i, n in enumerate(label_names)) + "}"
    controls.overlay_object = (
        "{" + f"{_script_json(TEXT[lang]['background'])}: {tile_layer.get_name()}" + "}" if tile_layer is not None else "{}"
    )
    controls.bounds = [[float(miny), float(minx)], [float(maxy), float(maxx)]]
    m.add_child(controls, name="geoplan_controls")

    doc = root.render()
    doc = doc.replace("<html>", f'<html lang="{lang}">', 1)
    # The data goes in after the id clean-up (no regular expression runs over megabytes of GeoJSON).
    # The placeholder has a '<', which every user text in the page has escaped: it occurs once.
    doc = _postprocess(doc)
    marker = "var geoplan_sozialraeume = <GEOPLAN_MAP_DATA>;"
    assert doc.count(marker) == 1
    return doc.replace(marker, f"var geoplan_sozialraeume = {data};", 1)


_FOLIUM_ID = re.compile(r"(?<![0-9A-Za-z])([a-z][a-z_]*?)_([0-9a-f]{32})(?![0-9a-f])")


_NO_ZOOM = re.compile(r'<meta name="viewport" content="width=device-width,\s*initial-scale=1\.0, maximum-scale=1\.0, user-scalable=no" />')


def _script_json(data) -> str:
    """JSON for a <script> block: <, > and & as \\u escapes, so no text can end or re-open the script."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _postprocess(doc: str) -> str:
    """Make folium's random ids stable and allow zooming the page.

    folium names elements with random hex ids; replacing them by counters
    makes the file byte-identical for identical input (so its hash in
    ``manifest.json`` is reproducible).
    """
    ids: dict[str, str] = {}

    def stable(match: re.Match) -> str:
        hexid = match.group(2)
        if hexid not in ids:
            ids[hexid] = f"{len(ids) + 1:04d}"
        return f"{match.group(1)}_{ids[hexid]}"

    doc = _FOLIUM_ID.sub(stable, doc)
    # folium forbids zooming the page (maximum-scale=1, user-scalable=no); WCAG 1.4.4 needs it allowed
    return _NO_ZOOM.sub('<meta name="viewport" content="width=device-width, initial-scale=1.0" />', doc)


def write_interactive_map(path, gdf: gpd.GeoDataFrame, layers: list[MapLayer], **kwargs) -> Path:
    """Write :func:`interactive_map` to ``path`` (UTF-8) and return the path."""
    path = Path(path)
    text = interactive_map(gdf, layers, **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------
# static (print) map
# --------------------------------------------------------------------------
def _nice_length(target_m: float) -> float:
    """Largest 1/2/5 × 10^n metres not above ``target_m``."""
    if target_m <= 0:
        return 1.0
    exp = math.floor(math.log10(target_m))
    for f in (5, 2, 1):
        if f * 10**exp <= target_m:
            return float(f * 10**exp)
    return float(10**exp)


_CORNERS = ("lower right", "upper left", "lower left", "upper right")
_OPPOSITE = {"lower right": "upper right", "upper left": "lower left", "lower left": "lower right",
             "upper right": "upper left"}


def _axes_box(ax, bbox_display):
    """Display-space bbox -> shapely box in data coordinates."""
    inv = ax.transData.inverted()
    (x0, y0), (x1, y1) = inv.transform([[bbox_display.x0, bbox_display.y0], [bbox_display.x1, bbox_display.y1]])
    return shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def _overlap(ax, artist, shape, renderer) -> float:
    return _box_overlap(ax, artist.get_window_extent(renderer), shape)


def _box_overlap(ax, bbox_display, shape) -> float:
    """Share of a display-space box covered by ``shape`` (a :class:`_Coverage` in data coordinates)."""
    box = _axes_box(ax, bbox_display)
    return shape.covered(box) / box.area if box.area > 0 else 0.0


_MPL_CORNER = {"upper right": "NE", "upper left": "NW", "lower left": "SW", "lower right": "SE"}


def _legend_corner_boxes(ax, leg, renderer) -> dict:
    """Display boxes of ``leg`` placed in each of :data:`_CORNERS`, from one measurement of it.

    A legend's size does not depend on its corner; matplotlib anchors it in the
    axes box shrunk by ``borderaxespad`` (in units of the legend's font size),
    which is repeated here instead of laying the legend out four times.
    """
    from matplotlib.transforms import Bbox

    ext = leg.get_window_extent(renderer)
    pad = leg.borderaxespad * renderer.points_to_pixels(leg.prop.get_size_in_points())
    container = leg.get_bbox_to_anchor().padded(-pad)
    size = Bbox.from_bounds(0, 0, ext.width, ext.height)
    out = {}
    for corner in _CORNERS:
        x0, y0 = size.anchored(_MPL_CORNER[corner], container=container).p0
        out[corner] = Bbox.from_bounds(x0, y0, ext.width, ext.height)
    return out


def _corner_overlap(ax, corner: str, shape, fw: float, fh: float) -> float:
    """Share of a corner box (fw × fh of the axes) covered by the map's polygons."""
    (minx, maxx), (miny, maxy) = ax.get_xlim(), ax.get_ylim()
    w, h = (maxx - minx) * fw, (maxy - miny) * fh
    x0 = minx if "left" in corner else maxx - w
    y0 = miny if "lower" in corner else maxy - h
    box = shapely.box(x0, y0, x0 + w, y0 + h)
    return shape.covered(box) / box.area


def _draw_scalebar(ax, corner: str, lang: str = "de") -> None:
    """Alternating black/white bar of a round length (1/2/5 × 10^n m) about 1/4 of the map width.

    Drawn in the metric CRS, so lengths are true at the projection's scale
    (UTM scale error in Germany < 0.1 %).
    """
    from matplotlib.patches import Rectangle

    (minx, maxx), (miny, maxy) = ax.get_xlim(), ax.get_ylim()
    width, height = maxx - minx, maxy - miny
    length = _nice_length(width / 4)
    unit_km = length >= 1000
    h = 0.012 * height
    x0 = minx + 0.03 * width if "left" in corner else maxx - 0.06 * width - length
    y0 = miny + 0.03 * height if "lower" in corner else maxy - 0.08 * height
    ax.add_patch(Rectangle((x0 - 0.015 * width, y0 - 0.015 * height), length + 0.065 * width, h + 0.065 * height,
                           facecolor="white", edgecolor="none", alpha=0.8, zorder=4))
    n = 2
    for i in range(n):
        ax.add_patch(
            Rectangle(
                (x0 + i * length / n, y0), length / n, h,
                facecolor="black" if i % 2 == 0 else "white", edgecolor="black", linewidth=0.8, zorder=5,
            )
        )
    for i in range(n + 1):
        v = i * length / n
        ax.text(x0 + v, y0 + h * 1.6, _by_kind(v / 1000 if unit_km else v, "zahl", lang=lang), ha="center", va="bottom",
                fontsize=8, zorder=5)
    ax.text(x0 + length + 0.01 * width, y0 + h / 2, "km" if unit_km else "m", ha="left", va="center",
            fontsize=8, zorder=5)


def _draw_north_arrow(ax, corner: str) -> None:
    """North arrow; the metric CRS (UTM) is grid-north up, convergence in Germany < 3°."""
    x = 0.95 if "right" in corner else 0.05
    y = 0.97 if "upper" in corner else 0.16
    ax.annotate(
        "N",
        xy=(x, y),
        xytext=(x, y - 0.09),
        xycoords="axes fraction",
        textcoords="axes fraction",
        ha="center",
        va="center",
        fontsize=12,
        fontweight="bold",
        arrowprops=dict(facecolor="black", edgecolor="black", width=4, headwidth=11, headlength=10),
        zorder=6,
    )


def _fit_limits(ax, bounds) -> None:
    """Set equal-scale limits covering ``bounds`` and filling the axes box (centred)."""
    minx, miny, maxx, maxy = bounds
    pos = ax.get_position()
    fw, fh = ax.figure.get_size_inches()
    box_ratio = (pos.width * fw) / (pos.height * fh)
    w, h = maxx - minx, maxy - miny
    if w / h < box_ratio:
        extra = (h * box_ratio - w) / 2
        minx, maxx = minx - extra, maxx + extra
    else:
        extra = (w / box_ratio - h) / 2
        miny, maxy = miny - extra, maxy + extra
    ax.set_xlim(minx, maxx)
    ax.set_ylim(miny, maxy)
    ax.set_aspect("equal", adjustable="box")


def _wrap(text: str, width_in: float, fontsize: float) -> str:
    import textwrap

    # DejaVu Sans averages about 0.6 em per character.
    chars = max(20, int(width_in * 72 / (fontsize * 0.6)))
    return "\n".join(textwrap.wrap(text, chars)) if text else ""


class _Coverage:
    """Area of the map's polygons inside a box, without their union.

    The legend, scale bar and north arrow go where they cover the least of the
    areas. Sozialräume do not overlap, so the covered area of a box is the sum
    of each area's part in it: areas whose bounds lie inside the box count
    whole, only those crossing its edge are intersected. (The union of
    Berlin's 58 areas alone took 0.2 s per report.)
    """

    def __init__(self, geoms):
        geoms = np.asarray(geoms, dtype=object)
        ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        self.geoms = geoms[ok]
        self.area = shapely.area(self.geoms)
        self.bounds = shapely.bounds(self.geoms)
        self.tree = shapely.STRtree(self.geoms)

    def covered(self, box) -> float:
        """Area of the polygons inside ``box`` (a shapely box)."""
        idx = self.tree.query(box)
        if not len(idx):
            return 0.0
        x0, y0, x1, y1 = box.bounds
        b = self.bounds[idx]
        inside = (b[:, 0] >= x0) & (b[:, 1] >= y0) & (b[:, 2] <= x1) & (b[:, 3] <= y1)
        cut = idx[~inside]
        return float(self.area[idx[inside]].sum() + shapely.area(shapely.intersection(self.geoms[cut], box)).sum())


def _cached(cache: list, geoms: np.ndarray, extra, build):
    """``build()`` for ``geoms`` (and ``extra``), kept for the last geometries: ``cache`` is ``[(key, value)]``.

    The report draws four or five maps of the same areas, in this process or
    in the PDF worker, which gets each map's areas as new objects (pickled per
    job): the key is the geometry objects themselves (an identity match is
    exact and costs nothing) or else their content (:func:`_geometry_digest`,
    3 ms for Berlin, computed once per set of objects for both caches).
    """
    if cache:
        (objects, digest, other), value = cache[0]
        if other == extra and _same_objects(objects, geoms):
            return value
    digest_now = _digest_once(geoms)
    if cache and cache[0][0][2] == extra and cache[0][0][1] == digest_now:
        value = cache[0][1]
    else:
        value = build()
    cache[:] = [((geoms.copy(), digest_now, extra), value)]
    return value


def _same_objects(a: np.ndarray, b: np.ndarray) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))


_DIGEST_MEMO: list = []  # [(geometries, digest)] of the last digest computed for the map caches


def _digest_once(geoms: np.ndarray) -> str:
    if _DIGEST_MEMO and _same_objects(_DIGEST_MEMO[0][0], geoms):
        return _DIGEST_MEMO[0][1]
    digest = _geometry_digest(geoms)
    _DIGEST_MEMO[:] = [(geoms.copy(), digest)]
    return digest


_COVERAGE_CACHE: list = []  # [(key, coverage)] of the last call: several maps of one result share it


def _coverage_once(geoms) -> _Coverage:
    """The :class:`_Coverage` of ``geoms``, built once for the same geometries (see :func:`_cached`)."""
    arr = np.asarray(geoms, dtype=object)
    return _cached(_COVERAGE_CACHE, arr, None, lambda: _Coverage(arr))


_PATH_CACHE: list = []  # [(key, paths)] of the last call: the report's maps of one result share them

#: Tolerance of the drawn outlines, in pixels of the map: the areas are drawn simplified by a tenth of a pixel
#: (Douglas-Peucker; Berlin's 58 areas keep 7,700 of 70,000 vertices and draw 3× faster). Below a pixel's tenth
#: the antialiased edges differ by a few grey levels at most; legend, scale bar and arrow are placed on the
#: unsimplified areas.
DRAW_TOLERANCE_PX = 0.1


def _paths_once(geoms, tolerance: float = 0.0) -> list:
    """One matplotlib compound path per geometry (all parts, holes as inner rings), built once.

    The report draws four or five maps of the same areas in different colours;
    the paths are the same for all of them, only the fill changes (see
    :func:`_cached`). ``tolerance`` (map units): the outlines simplified by it
    first (not topology-preserving: a ring under the tolerance may vanish, it
    would not be visible).
    """
    arr = np.asarray(geoms, dtype=object)
    return _cached(_PATH_CACHE, arr, float(tolerance), lambda: _build_paths(arr, tolerance))


def _build_paths(arr: np.ndarray, tolerance: float) -> list:
    from matplotlib.path import Path as MplPath

    if tolerance > 0:
        arr = shapely.simplify(arr, tolerance, preserve_topology=False)
    paths = []
    for geom in arr:
        parts = [] if geom is None or geom.is_empty else list(getattr(geom, "geoms", [geom]))
        rings = []
        for poly in parts:
            if poly.geom_type != "Polygon" or poly.is_empty:
                continue
            rings.append(MplPath(np.asarray(poly.exterior.coords)[:, :2]))
            rings += [MplPath(np.asarray(r.coords)[:, :2]) for r in poly.interiors]
        paths.append(MplPath.make_compound_path(*rings) if rings else MplPath(np.zeros((0, 2))))
    return paths


def _draw_tolerance(ax) -> float:
    """:data:`DRAW_TOLERANCE_PX` in map units, rounded down to 1, 2 or 5 × 10^n (the same for maps of one size)."""
    (x0, x1), width_px = ax.get_xlim(), ax.get_window_extent().width
    if width_px <= 0 or x1 <= x0:
        return 0.0
    return _nice_length(DRAW_TOLERANCE_PX * (x1 - x0) / width_px)


def _render_static(gdf, layer: MapLayer, *, title, source_line, figsize, dpi, lang="de") -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import PathCollection
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    _check_layer(layer)
    _check_frame(gdf, [layer.column], None, None)
    values = _numeric(gdf, layer)
    if lang not in LANGS:
        raise GeoplanError(f"Unbekannte Sprache '{lang}'.", expected="de oder en", found=str(lang),
                           message_en=f"Unknown language '{lang}'.")
    clf = classify(values, layer, lang)
    fill = [clf.colors[c] if c >= 0 else NODATA_COLOR for c in clf.classes]

    fig = Figure(figsize=figsize, dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    title_text = _wrap(title, figsize[0] * 0.94, 13)
    source_text = _wrap(source_line, figsize[0] * 0.96, 7)
    title_h = (0.28 * (title_text.count("\n") + 1) + 0.15) / figsize[1]
    source_h = (0.14 * (source_text.count("\n") + 1) + 0.12) / figsize[1]
    ax = fig.add_axes([0.02, source_h, 0.96, 1 - title_h - source_h - 0.01])
    geo = gpd.GeoDataFrame(geometry=gdf.geometry.values, crs=gdf.crs)
    minx, miny, maxx, maxy = geo.total_bounds
    padx, pady = 0.03 * (maxx - minx), 0.03 * (maxy - miny)
    _fit_limits(ax, (minx - padx, miny - pady, maxx + padx, maxy + pady))
    ax.apply_aspect()
    # the same paths for every map of these areas, recoloured (geometry converted once, see _paths_once)
    ax.add_collection(PathCollection(_paths_once(geo.geometry.values, _draw_tolerance(ax)), facecolors=fill,
                                     edgecolors="#333333", linewidths=0.4, transform=ax.transData), autolim=False)
    ax.set_axis_off()

    handles = [Patch(facecolor=c, edgecolor="#333333", linewidth=0.5, label=f"{lab} ({n})")
               for c, lab, n in zip(clf.colors, clf.labels, clf.counts)]
    if (clf.classes < 0).any():
        handles.append(Patch(facecolor=NODATA_COLOR, edgecolor="#333333", linewidth=0.5, label=TEXT[lang]["nodata"]))
    legend_kw = dict(handles=handles, title=_wrap(layer.label, 2.6, 8), fontsize=7.5, title_fontsize=8,
                     frameon=True, framealpha=0.95, edgecolor="#999999", alignment="left")

    # Put the legend in the corner where it covers the least of the map; if
    # every corner covers Sozialräume, make room below the map instead.
    shape = _coverage_once(geo.geometry.values)
    renderer = canvas.get_renderer()
    # (the axes box of the equal aspect, applied above, for the overlap tests: a full draw without rendering cost as much)
    best, best_overlap = None, None
    leg = ax.legend(loc=_CORNERS[0], **legend_kw)  # laid out once, then moved (Legend.set_loc)
    boxes = _legend_corner_boxes(ax, leg, renderer)  # its box moved to each corner
    for corner in _CORNERS:
        ov = _box_overlap(ax, boxes[corner], shape)
        if best_overlap is None or ov < best_overlap - 1e-9:
            best, best_overlap = corner, ov
    if best_overlap > 0.01:
        best = "lower right"
        leg.set_loc(best)
        bottom = miny - pady
        # Zooming out changes the legend's height in map units: repeat until it is clear.
        for _ in range(6):
            box = _axes_box(ax, leg.get_window_extent(renderer))
            ov = _overlap(ax, leg, shape, renderer)
            if ov <= 0.001:
                break
            bottom = ax.get_ylim()[0] - max(box.bounds[3] - miny, 0.0) - pady
            _fit_limits(ax, (minx - padx, bottom, maxx + padx, maxy + pady))
            ax.apply_aspect()
    else:
        leg.set_loc(best)
    free = [c for c in _CORNERS if c != best]
    # Scale bar, then north arrow, each into the free corner they cover least (lower/left preferred on ties).
    bar = min(free, key=lambda c: (round(_corner_overlap(ax, c, shape, 0.4, 0.1), 3), "upper" in c))
    free.remove(bar)
    arrow = min(free, key=lambda c: (round(_corner_overlap(ax, c, shape, 0.1, 0.15), 3), "lower" in c))
    _draw_scalebar(ax, bar, lang)
    _draw_north_arrow(ax, arrow)
    fig.text(0.5, 1 - 0.5 * title_h, title_text, ha="center", va="center", fontsize=13, fontweight="bold",
             linespacing=1.25)
    fig.text(0.02, 0.5 * source_h, source_text, ha="left", va="center", fontsize=7, color="#333333")

    from geoplan.report.png import figure_png

    fig.set_facecolor("white")
    return figure_png(fig, dpi)


def static_map_png_bytes(
    gdf: gpd.GeoDataFrame,
    layer: MapLayer,
    *,
    title: str,
    source_line: str,
    figsize: tuple[float, float] = (8, 7),
    dpi: int = 150,
    lang: str = "de",
) -> bytes:
    """Print map as PNG bytes (for inlining as base64 in the report).

    Choropleth of ``layer.column`` with the same classification as the
    interactive map, legend (German labels, English with ``lang='en'``;
    areas per class), scale bar
    (computed in the metric CRS), north arrow (the metric CRS is grid-north up,
    UTM convergence in Germany < 3°), title and source line. No background
    tiles. Byte-identical output for identical input (no PNG software/time
    metadata).
    """
    return _render_static(gdf, layer, title=title, source_line=source_line, figsize=figsize, dpi=dpi, lang=lang)


def static_map(
    gdf: gpd.GeoDataFrame,
    layer: MapLayer,
    *,
    path,
    title: str,
    source_line: str,
    figsize: tuple[float, float] = (8, 7),
    dpi: int = 150,
    lang: str = "de",
) -> Path:
    """Write :func:`static_map_png_bytes` to ``path`` and return the path."""
    data = static_map_png_bytes(
        gdf, layer, title=title, source_line=source_line, figsize=figsize, dpi=dpi, lang=lang
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
