"""Indicators delivered on other geographies.

Two ways to bring a table onto the Sozialräume:

* :func:`aggregate_by_key` — the source areas nest in the targets (Berlin:
  Planungsraum → Prognoseraum). Counts are summed, shares (percentages) are
  averaged with their base as weight. Exact, no geometry needed.
* :func:`area_interpolate` — the source polygons cut across the targets.
  Area-weighted areal interpolation (Goodchild & Lam 1980; Tobler 1979 for the
  mass-preserving idea) or dasymetric interpolation with ancillary weights from a
  population raster or residential land-use polygons (Mennis 2003; Eicher &
  Brewer 2001).

Both are pure: data frames in, new data frames out; inputs are not modified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse

from geoplan.errors import GeoplanError, QANote, what_en
from geoplan.load.tables import DEFAULT_NA_MARKERS  # the one list of missing-value markers
from geoplan.parallel import n_threads

__all__ = ["AggregateResult", "aggregate_by_key", "area_interpolate", "intersection_table"]

_STAGE = "indicators"


# ---------------------------------------------------------------------------
# key hierarchies
# ---------------------------------------------------------------------------


@dataclass
class AggregateResult:
    """Result of :func:`aggregate_by_key`.

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per target key, sorted by key. Columns: ``target_name`` (text),
        every count column (sum over the source rows with a value; NaN if no
        source row had one), every share column (base-weighted mean over the
        source rows where share and base are present; same unit as the input,
        usually %), and ``n_sources`` (number of source rows mapped to the
        target).
    coverage : pandas.DataFrame
        Same keys; per share column the fraction (0–1) of the target's base
        weight that came with a share value. 1.0 means complete.
    missing : pandas.DataFrame
        Same keys; per count and share column the number of source rows
        without a value (suppressed or empty).
    unmatched : list of str
        Source keys that have no target (only non-empty with
        ``allow_unmatched=True``; these rows are left out of the sums).
    notes : list of QANote
        Findings for the report (missing values, unmatched keys, empty targets).
    """

    frame: pd.DataFrame
    coverage: pd.DataFrame
    missing: pd.DataFrame
    unmatched: list[str] = field(default_factory=list)
    notes: list[QANote] = field(default_factory=list)


def _as_key(series: pd.Series) -> pd.Series:
    # Keys are text; a float key like 1100101.0 would lose its leading zero, so
    # numbers are refused instead of silently formatted.
    if not (pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)):
        raise GeoplanError(
            f"Schlüsselspalte '{series.name}' ist nicht als Text gelesen.",
            location=f"Spalte '{series.name}'",
            expected="Schlüssel als Text (führende Nullen bleiben erhalten)",
            found=f"Datentyp {series.dtype}",
            hint="Tabelle mit dtype=str bzw. über geoplan.load.tables einlesen.",
            message_en=f"Key column '{series.name}' was not read as text.",
            expected_en="keys as text (leading zeros are kept)", found_en=f"data type {series.dtype}",
            hint_en="Read the table with dtype=str or through geoplan.load.tables.",
        )
    return series.astype("string").str.strip()


def _numeric(table: pd.DataFrame, column: str) -> pd.Series:
    if column not in table.columns:
        raise GeoplanError(
            f"Spalte '{column}' fehlt in der Indikatorentabelle.",
            location=f"Spalte '{column}'",
            expected=f"Spalte '{column}'",
            found=", ".join(map(str, table.columns)),
            hint="Spaltennamen in der Konfiguration prüfen.",
            message_en=f"Column '{column}' is missing in the indicator table.", expected_en=f"column '{column}'",
            hint_en="Check the column names in the configuration.",
        )
    col = table[column]
    if pd.api.types.is_numeric_dtype(col):
        return col.astype(float)
    text = col.astype("string").str.strip()
    suppressed = text.isin(DEFAULT_NA_MARKERS)
    values = pd.to_numeric(text.mask(suppressed), errors="coerce")
    bad = text.notna() & ~suppressed & values.isna()
    if bad.any():
        pos = int(np.flatnonzero(bad.to_numpy())[0])
        raise GeoplanError(
            f"Spalte '{column}' enthält Text, der keine Zahl ist.",
            location=f"Zeile {pos + 1}, Spalte '{column}'",
            expected="Zahl oder leer",
            found=repr(str(text.iloc[pos])),
            hint="Unterdrückte Werte als leer lesen (geoplan.load.tables erkennt –, x, / usw.).",
            message_en=f"Column '{column}' holds text that is not a number.",
            hint_en="Read suppressed values as empty (geoplan.load.tables recognises –, x, / etc.).",
        )
    return values.astype(float)


def aggregate_by_key(
    table: pd.DataFrame,
    *,
    source_key: str,
    counts: list[str],
    shares: dict[str, str] | None = None,
    mapping: pd.DataFrame | None = None,
    mapping_source: str | None = None,
    mapping_target: str | None = None,
    prefix_len: int | None = None,
    target_name: str = "key",
    allow_unmatched: bool = False,
) -> AggregateResult:
    """Aggregate an indicator table along a key hierarchy.

    Each source row (e.g. a Berlin Planungsraum, 8-digit key) belongs to one
    target (e.g. a Prognoseraum, 4 digits), given either by a key table
    (``mapping`` with columns ``mapping_source`` → ``mapping_target``) or by
    the first ``prefix_len`` characters of the source key.

    Counts (persons, cases) are summed. A missing count (suppressed value,
    NaN) is treated as *unknown*, not zero: the sum uses the rows with a value,
    the number of missing rows is reported in ``missing`` and in a note, and a
    target without any value gets NaN.

    Shares (rates in %, per 1,000 …) are averaged with their base as weight:
    ``share_T = Σ share_i · base_i / Σ base_i`` over the rows of target T where
    share and base are both present. This reproduces the share of the union
    exactly when the share is ``numerator / base`` per row. ``coverage`` gives
    ``Σ base_i (share present) / Σ base_i`` per target.

    Parameters
    ----------
    table : DataFrame
        Source table, one row per source key (key column as text).
    source_key : str
        Key column of ``table``.
    counts : list of str
        Count columns to sum.
    shares : dict, optional
        Share column → base (weight) column, e.g. ``{"S1": "EW"}``.
    mapping : DataFrame, optional
        Key table; keys as text. ``mapping_source``/``mapping_target`` name
        its columns.
    prefix_len : int, optional
        Alternative to ``mapping``: the target key is the key prefix.
    target_name : str
        Name of the target key column in the result (default ``"key"``).
    allow_unmatched : bool
        If False (default) a source key without a target is an error; if True
        it is listed in ``unmatched`` and left out.

    Returns
    -------
    AggregateResult
    """
    shares = dict(shares or {})
    if (mapping is None) == (prefix_len is None):
        raise GeoplanError(
            "Für die Aggregation muss genau eines angegeben sein: Schlüsseltabelle oder Präfixlänge.",
            expected="mapping=… oder prefix_len=…",
            found="beides" if mapping is not None else "keines",
            hint="In der Konfiguration entweder die Schlüsseltabelle oder die Präfixlänge setzen.",
            message_en="Aggregation needs exactly one of: a key table or a prefix length.",
            expected_en="mapping=… or prefix_len=…", found_en="both" if mapping is not None else "neither",
            hint_en="Set either the key table or the prefix length in the configuration.",
        )
    if source_key not in table.columns:
        raise GeoplanError(
            f"Schlüsselspalte '{source_key}' fehlt in der Indikatorentabelle.",
            location=f"Spalte '{source_key}'",
            expected=f"Spalte '{source_key}'",
            found=", ".join(map(str, table.columns)),
            message_en=f"Key column '{source_key}' is missing in the indicator table.",
            expected_en=f"column '{source_key}'",
        )
    src = _as_key(table[source_key])
    notes: list[QANote] = []

    if src.isna().any() or (src == "").any():
        pos = int(np.flatnonzero((src.isna() | (src == "")).to_numpy())[0])
        raise GeoplanError(
            "Leerer Schlüssel in der Indikatorentabelle.",
            location=f"Zeile {pos + 1}, Spalte '{source_key}'",
            expected="ein Schlüssel je Zeile",
            found="leer",
            message_en="Empty key in the indicator table.", expected_en="one key per row", found_en="empty",
        )
    dup = src[src.duplicated(keep=False)]
    if len(dup):
        raise GeoplanError(
            "Doppelte Schlüssel in der Indikatorentabelle; Summen wären doppelt gezählt.",
            location=f"Spalte '{source_key}'",
            expected="jeder Schlüssel einmal",
            found=", ".join(sorted(set(dup.astype(str)))[:10]),
            hint="Doppelte Zeilen entfernen oder vorher zusammenfassen.",
            message_en="Duplicate keys in the indicator table; totals would be counted twice.",
            expected_en="every key once", hint_en="Remove duplicate rows or combine them beforehand.",
        )

    all_targets: pd.Index | None = None
    if prefix_len is not None:
        if prefix_len < 1:
            raise GeoplanError("Präfixlänge muss mindestens 1 sein.", found=str(prefix_len),
                               message_en="The prefix length must be at least 1.")
        short = src.str.len() < prefix_len
        if short.any():
            pos = int(np.flatnonzero(short.to_numpy())[0])
            raise GeoplanError(
                f"Schlüssel kürzer als die Präfixlänge {prefix_len}.",
                location=f"Zeile {pos + 1}, Spalte '{source_key}'",
                expected=f"mindestens {prefix_len} Zeichen",
                found=repr(str(src.iloc[pos])),
                hint="Führende Nullen verloren? Schlüssel als Text einlesen.",
                message_en=f"Key shorter than the prefix length {prefix_len}.",
                expected_en=f"at least {prefix_len} characters",
                hint_en="Leading zeros lost? Read the keys as text.",
            )
        tgt = src.str.slice(0, prefix_len)
    else:
        for col in (mapping_source, mapping_target):
            if col is None or col not in mapping.columns:
                raise GeoplanError(
                    "Spalte der Schlüsseltabelle fehlt.",
                    location=f"Spalte '{col}'",
                    expected="mapping_source und mapping_target als Spalten der Schlüsseltabelle",
                    found=", ".join(map(str, mapping.columns)), message_en="A column of the key table is missing.",
                    expected_en="mapping_source and mapping_target as columns of the key table",
                )
        m_src = _as_key(mapping[mapping_source])
        m_tgt = _as_key(mapping[mapping_target])
        pairs = pd.DataFrame({"s": m_src, "t": m_tgt}).dropna().drop_duplicates()
        conflict = pairs["s"][pairs["s"].duplicated(keep=False)]
        if len(conflict):
            raise GeoplanError(
                "Die Schlüsseltabelle ordnet einen Schlüssel mehreren Zielen zu.",
                location=f"Spalte '{mapping_source}'",
                expected="jeder Quellschlüssel genau einem Ziel zugeordnet",
                found=", ".join(sorted(set(conflict.astype(str)))[:10]),
                message_en="The key table assigns one key to several targets.",
                expected_en="every source key assigned to exactly one target",
            )
        lookup = pd.Series(pairs["t"].to_numpy(), index=pairs["s"].to_numpy())
        tgt = pd.Series(src.map(lookup).to_numpy(), index=src.index, dtype="string")
        all_targets = pd.Index(sorted(set(pairs["t"].astype(str))))

    no_target = tgt.isna()
    unmatched = sorted(src[no_target].astype(str))
    if unmatched:
        if not allow_unmatched:
            raise GeoplanError(
                f"{len(unmatched)} Schlüssel der Indikatorentabelle fehlen in der Schlüsseltabelle.",
                location=f"Spalte '{source_key}'",
                expected="jeder Schlüssel in der Schlüsseltabelle",
                found=", ".join(unmatched[:10]) + (" …" if len(unmatched) > 10 else ""),
                hint="Schlüsseltabelle und Gebietsstand prüfen oder fehlende Schlüssel ausdrücklich zulassen.",
                message_en=f"{len(unmatched)} keys of the indicator table are missing in the key table.",
                expected_en="every key in the key table",
                hint_en="Check the key table and the boundary version, or allow the missing keys explicitly.",
            )
        notes.append(
            QANote(
                _STAGE,
                f"{len(unmatched)} Schlüssel ohne Zielgebiet wurden nicht berücksichtigt.",
                message_en=f"{len(unmatched)} keys without a target area were left out.",
                location=f"Spalte '{source_key}'",
                details={"unmatched": unmatched},
            )
        )

    value_cols = list(dict.fromkeys([*counts, *shares.keys(), *shares.values()]))
    values = pd.DataFrame({c: _numeric(table, c).to_numpy() for c in value_cols}, index=table.index)
    keep = ~no_target.to_numpy()
    values = values.loc[keep]
    groups = tgt[keep].astype(str).to_numpy()
    grouped = values.groupby(groups, sort=True)

    keys = grouped.size().index
    if all_targets is not None:
        keys = all_targets.union(keys)
    out = pd.DataFrame(index=keys)
    missing = pd.DataFrame(index=keys)

    for c in counts:
        out[c] = grouped[c].sum(min_count=1).reindex(keys)
        missing[c] = values[c].isna().groupby(groups).sum().reindex(keys, fill_value=0).astype(int)
    coverage = pd.DataFrame(index=keys)
    for s, b in shares.items():
        present = values[s].notna() & values[b].notna()
        num = (values[s] * values[b]).where(present).groupby(groups).sum(min_count=1)
        den = values[b].where(present).groupby(groups).sum(min_count=1)
        base_all = values[b].groupby(groups).sum(min_count=1)
        mean = (num / den.where(den != 0)).reindex(keys)
        out[s] = mean
        coverage[s] = (den.fillna(0) / base_all.where(base_all != 0)).reindex(keys)
        missing[s] = values[s].isna().groupby(groups).sum().reindex(keys, fill_value=0).astype(int)
        base_gap = int((values[s].notna() & values[b].isna()).sum())
        if base_gap:
            notes.append(
                QANote(
                    _STAGE,
                    f"Anteil '{s}': {base_gap} Zeilen ohne Basiswert '{b}' wurden nicht gewichtet.",
                    message_en=f"Share '{s}': {base_gap} rows without a base value '{b}' were not weighted.",
                    location=f"Spalte '{b}'",
                    details={"rows": base_gap},
                )
            )
    out["n_sources"] = grouped.size().reindex(keys, fill_value=0).astype(int)

    for c in missing.columns:
        n = int(missing[c].sum())
        if n:
            kind = "Summe" if c in counts else "gewichteter Mittelwert"
            notes.append(
                QANote(
                    _STAGE,
                    f"Spalte '{c}': {n} von {len(values)} Quellzeilen ohne Wert; {kind} aus den vorhandenen Zeilen.",
                    message_en=f"Column '{c}': {n} of {len(values)} source rows without a value; "
                    f"{'total' if c in counts else 'weighted mean'} from the rows that have one.",
                    location=f"Spalte '{c}'",
                    details={"missing_rows": n, "targets_affected": int((missing[c] > 0).sum())},
                )
            )
    empty = keys[out["n_sources"].to_numpy() == 0]
    if len(empty):
        notes.append(
            QANote(
                _STAGE,
                f"{len(empty)} Zielgebiete der Schlüsseltabelle haben keine Quellzeile.",
                message_en=f"{len(empty)} target areas of the key table have no source row.",
                details={"targets": list(map(str, empty))},
            )
        )

    def _keyed(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        df.insert(0, target_name, pd.array(df.index.astype(str), dtype=object))
        return df.reset_index(drop=True)

    return AggregateResult(
        frame=_keyed(out),
        coverage=_keyed(coverage),
        missing=_keyed(missing),
        unmatched=unmatched,
        notes=notes,
    )


# ---------------------------------------------------------------------------
# areal interpolation
# ---------------------------------------------------------------------------


def _check_crs(source: gpd.GeoDataFrame, target: gpd.GeoDataFrame, what: str = "Ziel") -> None:
    if source.crs is None or target.crs is None:
        raise GeoplanError(
            "Für die Flächeninterpolation fehlt ein Koordinatenbezugssystem.",
            expected="beide Ebenen mit CRS (metrisch, z. B. EPSG:25833)",
            found=f"Quelle: {source.crs}, {what}: {target.crs}",
            hint="CRS setzen bzw. die .prj-Datei mitliefern.",
            message_en="A coordinate reference system is missing for the areal interpolation.",
            expected_en="both layers with a CRS (metric, e.g. EPSG:25833)",
            found_en=f"source: {source.crs}, {what_en(what)}: {target.crs}",
            hint_en="Set the CRS or supply the .prj file.",
        )
    if source.crs != target.crs:
        raise GeoplanError(
            "Quell- und Zielebene haben verschiedene Koordinatenbezugssysteme.",
            expected="dasselbe metrische CRS",
            found=f"Quelle: {source.crs.to_string()}, {what}: {target.crs.to_string()}",
            hint="Beide Ebenen vorher mit to_crs() in das Projekt-CRS (EPSG:25832/25833) bringen.",
            message_en="Source and target layer have different coordinate reference systems.",
            expected_en="the same metric CRS",
            found_en=f"source: {source.crs.to_string()}, {what_en(what)}: {target.crs.to_string()}",
            hint_en="Bring both layers into the project CRS (EPSG:25832/25833) with to_crs() first.",
        )
    if not source.crs.is_projected:
        raise GeoplanError(
            "Flächen können nur in einem projizierten (metrischen) CRS berechnet werden.",
            expected="projiziertes CRS, z. B. EPSG:25833",
            found=source.crs.to_string(),
            hint="Mit to_crs('EPSG:25833') umprojizieren.",
            message_en="Areas can only be computed in a projected (metric) CRS.",
            expected_en="a projected CRS, e.g. EPSG:25833", hint_en="Reproject with to_crs('EPSG:25833').",
        )


def _run_chunks(fn, chunks: list, n_jobs: int) -> list:
    """``[fn(c) for c in chunks]``, in threads when there is more than one.

    shapely and numpy release the GIL in their array loops, so threads use
    several cores without copying geometries to other processes. Each chunk
    writes only its own result: the outcome does not depend on thread count.
    """
    if n_jobs <= 1 or len(chunks) <= 1:
        return [fn(c) for c in chunks]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=n_jobs) as pool:
        return list(pool.map(fn, chunks))


_MAX_CLIP_VERTICES = 64  # larger rings go to GEOS: padded arrays would waste memory


def _clip_usable(geoms: np.ndarray) -> np.ndarray:
    """Polygons usable for clipping: no holes, 3–64 vertices."""
    simple = (shapely.get_type_id(geoms) == 3) & (shapely.get_num_interior_rings(geoms) == 0)
    nv = np.where(simple, shapely.get_num_coordinates(geoms) - 1, 0)
    return simple & (nv >= 3) & (nv <= _MAX_CLIP_VERTICES)


def _convex(geoms: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Convexity flags (length ``len(geoms)``) computed for ``geoms[idx]`` only.

    Convex means the hull has the same area up to 1e-12 relative; a smaller
    dent changes a clipped area by less than that.
    """
    out = np.zeros(len(geoms), dtype=bool)
    if len(idx):
        area = shapely.area(geoms[idx])
        out[idx] = shapely.area(shapely.convex_hull(geoms[idx])) - area <= 1e-12 * area
    return out


def _ring_arrays(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exterior rings as padded arrays ``(x, y, n_vertices)``, counter-clockwise.

    Rows hold the vertices without the closing point, padded with the first
    vertex. Polygons must have no holes (see :func:`_clip_usable`).
    """
    ext = shapely.get_exterior_ring(geoms)
    coords, owner = shapely.get_coordinates(ext, return_index=True)
    counts = np.bincount(owner, minlength=len(geoms))  # with closing point
    start = np.cumsum(counts) - counts
    L = counts - 1
    col = np.arange(int(L.max()) if len(L) else 1)[None, :]
    take = start[:, None] + np.where(col < L[:, None], col, 0)
    x, y = coords[take, 0], coords[take, 1]
    # shoelace relative to the first vertex: orientation without cancellation
    rx, ry = x - x[:, :1], y - y[:, :1]
    nxt = np.where(col + 1 < L[:, None], col + 1, 0)
    signed = (rx * np.take_along_axis(ry, nxt, 1) - np.take_along_axis(rx, nxt, 1) * ry).sum(1)
    cw = signed < 0
    if cw.any():
        rev = np.where(col < L[:, None], L[:, None] - 1 - col, 0)
        x = np.where(cw[:, None], np.take_along_axis(x, rev, 1), x)
        y = np.where(cw[:, None], np.take_along_axis(y, rev, 1), y)
    return x, y, L


def _clip_convex_area(sx, sy, sL, cx, cy, cL) -> np.ndarray:
    """Area of ``subject_k ∩ clipper_k`` for arrays of ring pairs (see :func:`_ring_arrays`).

    Sutherland & Hodgman (1974) re-entrant polygon clipping, vectorised over
    all pairs: the subject ring is clipped against the half-plane of each
    edge of the convex clipper. The subject may be concave (the clipped ring
    may then contain zero-width bridges, which do not change its area).
    Coordinates are shifted to the clipper's first vertex so that UTM
    magnitudes do not cost precision.

    Sutherland, I. E., & Hodgman, G. W. (1974). Reentrant polygon clipping.
    Communications of the ACM 17(1), 32–42.
    """
    P = len(sL)
    rows = np.arange(P)
    ox, oy = cx[:, :1], cy[:, :1]
    x, y = sx[:, : int(sL.max())] - ox, sy[:, : int(sL.max())] - oy
    K = int(cL.max())
    cx, cy = cx[:, :K] - ox, cy[:, :K] - oy
    # vertex after the last real one is the first: closes the ring, and the
    # padding edges have length zero (every point counts as inside them)
    cx = np.concatenate([cx, cx[:, :1]], 1)
    cy = np.concatenate([cy, cy[:, :1]], 1)
    pad = np.arange(K + 1)[None, :] >= cL[:, None]
    cx = np.where(pad, cx[:, :1], cx)
    cy = np.where(pad, cy[:, :1], cy)
    L = sL.astype(np.int64)
    for j in range(K):
        ax, ay = cx[:, j : j + 1], cy[:, j : j + 1]
        ex, ey = cx[:, j + 1 : j + 2] - ax, cy[:, j + 1 : j + 2] - ay
        M = x.shape[1]
        valid = np.arange(M)[None, :] < L[:, None]
        last = np.maximum(L - 1, 0)
        sc = ex * (y - ay) - ey * (x - ax)
        sn = np.empty_like(sc)
        sn[:, :-1] = sc[:, 1:]
        sn[rows, last] = sc[:, 0]
        xn = np.empty_like(x)
        xn[:, :-1] = x[:, 1:]
        xn[rows, last] = x[:, 0]
        yn = np.empty_like(y)
        yn[:, :-1] = y[:, 1:]
        yn[rows, last] = y[:, 0]
        inside = sc >= 0
        ic = inside & valid
        cross = (inside != (sn >= 0)) & valid
        cnt = ic.astype(np.int64) + cross
        pos = np.cumsum(cnt, 1) - cnt
        L = cnt.sum(1)
        W = max(int(L.max()), 1)
        nx_ = np.zeros((P, W))
        ny_ = np.zeros((P, W))
        r, c = np.nonzero(ic)
        nx_[r, pos[r, c]] = x[r, c]
        ny_[r, pos[r, c]] = y[r, c]
        r, c = np.nonzero(cross)
        t = sc[r, c] / (sc[r, c] - sn[r, c])  # sc and sn differ in sign: no division by 0
        p2 = pos[r, c] + ic[r, c]
        nx_[r, p2] = x[r, c] + t * (xn[r, c] - x[r, c])
        ny_[r, p2] = y[r, c] + t * (yn[r, c] - y[r, c])
        x, y = nx_, ny_
    M = x.shape[1]
    col = np.arange(M)[None, :]
    valid = col < L[:, None]
    nxt = np.where(col + 1 < L[:, None], col + 1, 0)
    xn, yn = np.take_along_axis(x, nxt, 1), np.take_along_axis(y, nxt, 1)
    return 0.5 * np.where(valid, x * yn - xn * y, 0.0).sum(1)


def _pair_areas(src, tgt, s_idx, t_idx, n_jobs: int = 1) -> np.ndarray:
    """Areas of ``src[s_idx] ∩ tgt[t_idx]``: convex clipping where it applies, GEOS otherwise."""
    out = np.empty(len(s_idx))
    if not len(s_idx):
        return out
    both = _clip_usable(src)[s_idx] & _clip_usable(tgt)[t_idx]
    # the convex-hull test only for polygons that could be clipped
    cs = _convex(src, np.unique(s_idx[both]))
    ct = _convex(tgt, np.unique(t_idx[both]))
    by_t = both & ct[t_idx]
    by_s = both & cs[s_idx] & ~by_t
    tasks = []
    if by_t.any() or by_s.any():
        # ring arrays only for the polygons that take part in clipping
        clip_pairs = by_t | by_s
        s_need, s_pos = np.unique(s_idx[clip_pairs], return_inverse=True)
        t_need, t_pos = np.unique(t_idx[clip_pairs], return_inverse=True)
        rs, rt = _ring_arrays(src[s_need]), _ring_arrays(tgt[t_need])
        sel_pairs = np.flatnonzero(clip_pairs)
        from_t = by_t[sel_pairs]
        for mask, subj, si, clip, ci in ((from_t, rs, s_pos, rt, t_pos), (~from_t, rt, t_pos, rs, s_pos)):
            idx = np.flatnonzero(mask)
            # sorted by clipper size, so a chunk loops only over the edges it needs
            idx = idx[np.argsort(clip[2][ci[idx]], kind="stable")]
            for k in range(0, len(idx), 4096):
                sel = idx[k : k + 4096]
                tasks.append(("clip", sel_pairs[sel], subj, si[sel], clip, ci[sel]))
    geos = np.flatnonzero(~(by_t | by_s))
    if len(geos):
        # GEOS overlay in as many pieces as threads (at least 500 pairs each)
        parts = max(1, min(n_jobs, len(geos) // 500))
        for chunk in np.array_split(geos, parts):
            tasks.append(("geos", chunk))

    def work(task):
        if task[0] == "clip":
            _, where, subj, a, clip, b = task
            return where, _clip_convex_area(subj[0][a], subj[1][a], subj[2][a], clip[0][b], clip[1][b], clip[2][b])
        where = task[1]
        return where, shapely.area(shapely.intersection(src[s_idx[where]], tgt[t_idx[where]]))

    for where, values in _run_chunks(work, tasks, n_jobs):
        out[where] = values
    return out


def intersection_table(source_geoms, target_geoms, *, n_jobs: int | None = None) -> sparse.csr_matrix:
    """Sparse matrix ``A[i, j] = area(source_i ∩ target_j)`` in CRS units² (m²).

    The bounding-box tree (shapely 2 STRtree, built on the sources) finds the
    candidate pairs with a prepared ``intersects`` test. Pairs where the target
    covers the source need no overlay: their area is the source's area (this
    makes nested geographies cheap). The remaining pairs are intersected
    vectorised: by Sutherland–Hodgman clipping in numpy when one polygon of
    the pair is convex and both have no holes (grid cells, hexagons, Voronoi
    cells), else by ``shapely.intersection`` (GEOS overlay) on arrays. The
    pair chunks run in ``n_jobs`` threads (default: all CPUs); the result does
    not depend on it.
    """
    src = np.asarray(source_geoms, dtype=object)
    tgt = np.asarray(target_geoms, dtype=object)
    tree = shapely.STRtree(src)
    jobs = n_threads(n_jobs)
    bounds = np.linspace(0, len(tgt), min(jobs, max(len(tgt) // 50, 1)) + 1).astype(int)

    def query(predicate):
        def part(k):
            ti, si = tree.query(tgt[bounds[k] : bounds[k + 1]], predicate=predicate)
            return ti + bounds[k], si

        res = _run_chunks(part, list(range(len(bounds) - 1)), jobs)
        return np.concatenate([r[0] for r in res]), np.concatenate([r[1] for r in res])

    t_idx, s_idx = query("intersects")
    n_s = len(src)
    areas = np.empty(len(s_idx), dtype=float)
    if len(s_idx):
        ct, cs = query("covers")
        covered = np.isin(t_idx.astype(np.int64) * n_s + s_idx, ct.astype(np.int64) * n_s + cs)
        src_area = shapely.area(src)
        areas[covered] = src_area[s_idx[covered]]
        rest = ~covered
        areas[rest] = _pair_areas(src, tgt, s_idx[rest], t_idx[rest], n_threads(n_jobs))
    keep = areas > 0
    return sparse.csr_matrix(
        (areas[keep], (s_idx[keep], t_idx[keep])), shape=(n_s, len(tgt)), dtype=float
    )


def _weight_table(source, target, weights, weights_column, n_jobs=None):
    """Ancillary weight per source∩target piece, plus each source's total weight.

    Returns ``(W, total, notes)`` with ``W`` a sparse n_source × n_target matrix.
    """
    notes: list[QANote] = []
    src = source.geometry.values
    tgt = target.geometry.values
    A = intersection_table(src, tgt, n_jobs=n_jobs)
    if weights is None:
        return A, shapely.area(np.asarray(src, dtype=object)), notes

    coo = A.tocoo()
    pieces = shapely.intersection(np.asarray(src, dtype=object)[coo.row], np.asarray(tgt, dtype=object)[coo.col])
    if isinstance(weights, (str, Path)):
        from geoplan.load.raster import _weighted_sums_crs

        piece_w, raster_notes = _weighted_sums_crs(weights, pieces, source.crs, n_jobs)
        src_total, _ = _weighted_sums_crs(weights, np.asarray(src, dtype=object), source.crs, n_jobs)
        notes += raster_notes
        method = f"Rasterdatei {Path(weights).name}"
    elif isinstance(weights, gpd.GeoDataFrame):
        _check_crs(source, weights, what="Gewichtsebene")
        lu = np.asarray(weights.geometry.values, dtype=object)
        if weights_column is None:
            density = np.ones(len(lu))
        else:
            if weights_column not in weights.columns:
                raise GeoplanError(
                    f"Gewichtsspalte '{weights_column}' fehlt in der Gewichtsebene.",
                    location=f"Spalte '{weights_column}'",
                    found=", ".join(map(str, weights.columns)),
                    message_en=f"Weight column '{weights_column}' is missing in the weights layer.",
                )
            amount = pd.to_numeric(weights[weights_column], errors="coerce").to_numpy(dtype=float)
            if np.any(~np.isfinite(amount)) or np.any(amount < 0):
                raise GeoplanError(
                    f"Gewichtsspalte '{weights_column}' enthält fehlende oder negative Werte.",
                    location=f"Spalte '{weights_column}'",
                    expected="Zahlen ≥ 0",
                    message_en=f"Weight column '{weights_column}' holds missing or negative values.",
                    expected_en="numbers ≥ 0",
                )
            lu_area = shapely.area(lu)
            density = np.divide(amount, lu_area, out=np.zeros_like(amount), where=lu_area > 0)
        piece_w = intersection_table(pieces, lu, n_jobs=n_jobs) @ density
        src_total = intersection_table(np.asarray(src, dtype=object), lu, n_jobs=n_jobs) @ density
        method = "Nutzungsflächen" + (f" (Spalte '{weights_column}')" if weights_column else "")
    else:
        raise GeoplanError(
            "Unbekannte Gewichte für die dasymetrische Interpolation.",
            expected="Pfad zu einem Bevölkerungsraster oder GeoDataFrame mit Nutzungsflächen",
            found=type(weights).__name__, message_en="Unknown weights for the dasymetric interpolation.",
            expected_en="path to a population raster or a GeoDataFrame of land-use areas",
        )

    # A source area without any ancillary weight at all (no residential land,
    # empty pixels) would lose its value; it falls back to area weighting. Its
    # area is converted to weight units with the mean weight density of the
    # sources that have weight, so intensive estimates do not mix m² with
    # persons. A source whose weight lies outside every target is no fallback
    # case: it contributes nothing there (as tobler).
    src_total = np.asarray(src_total, dtype=float)
    touches = np.bincount(coo.row, minlength=len(src)) > 0
    fallback = (src_total <= 0) & touches
    if fallback.any():
        src_area = shapely.area(np.asarray(src, dtype=object))
        has_w = src_total > 0
        density = src_total[has_w].sum() / src_area[has_w].sum() if has_w.any() and src_area[has_w].sum() > 0 else 1.0
        sel = fallback[coo.row]
        piece_w = np.asarray(piece_w, dtype=float).copy()
        piece_w[sel] = coo.data[sel] * density
        src_total = np.where(fallback, src_area * density, src_total)
        notes.append(
            QANote(
                _STAGE,
                f"{int(fallback.sum())} Quellgebiete ohne Gewicht ({method}, auch außerhalb der Zielgebiete keines); "
                "dort wurde nach Fläche verteilt "
                "(mit der mittleren Gewichtsdichte, damit die Einheiten passen).",
                message_en=f"{int(fallback.sum())} source areas without weight ({method}, none outside the target "
                "areas either); distributed by area there (with the mean weight density, so that the units fit).",
                details={"source_rows": np.flatnonzero(fallback).tolist(), "density_per_m2": float(density)},
            )
        )
    W = sparse.csr_matrix((piece_w, (coo.row, coo.col)), shape=A.shape)
    return W, np.asarray(src_total, dtype=float), notes


def _dissolve_by_key(source: gpd.GeoDataFrame, key: str, extensive, intensive):
    """One row per key: the parts of a multipart source united; their values must agree (same record)."""
    if key not in source.columns:
        raise GeoplanError(f"Schlüsselspalte '{key}' fehlt in der Quellebene.", location=f"Spalte '{key}'",
                           found=", ".join(map(str, source.columns)),
                           message_en=f"Key column '{key}' is missing in the source layer.")
    counts = source[key].value_counts()
    multi = counts[counts > 1]
    if not len(multi):
        return source, []
    cols = [*extensive, *intensive]
    parts = source[source[key].isin(multi.index)]
    differ = [k for k, g in parts.groupby(key) if len(g[cols].drop_duplicates()) > 1]
    if differ:
        raise GeoplanError(
            "Ein Schlüssel der Quellebene hat mehrere Polygone mit verschiedenen Werten.",
            location="Schlüssel " + ", ".join(map(str, differ[:10])),
            expected="gleiche Werte für alle Teile eines Gebiets (ein Datensatz, mehrere Flächen)",
            hint="Werte je Gebiet vorher zusammenfassen oder die Teile verschieden schlüsseln.",
            message_en="A key of the source layer has several polygons with different values.",
            expected_en="the same values for all parts of an area (one record, several polygons)",
            hint_en="Combine the values per area first or give the parts different keys.",
        )
    out = source.dissolve(by=key, as_index=False, sort=False, aggfunc="first")
    note = QANote(_STAGE, f"{len(multi)} Quellgebiet(e) bestehen aus mehreren Polygonen; je Schlüssel vereinigt, "
                  "damit ihr Wert nur einmal zählt.", location="Schlüssel " + ", ".join(map(str, multi.index[:10])),
                  message_en=f"{len(multi)} source area(s) consist of several polygons; dissolved per key so that "
                  "their value counts once.",
                  details={"keys": {str(k): int(v) for k, v in multi.items()}})
    return out, [note]


def area_interpolate(
    source: gpd.GeoDataFrame,
    target: gpd.GeoDataFrame,
    *,
    extensive=(),
    intensive=(),
    weights=None,
    weights_column: str | None = None,
    allocate_total: bool = True,
    n_jobs: int | None = None,
    source_key: str | None = None,
) -> gpd.GeoDataFrame:
    """Interpolate source-polygon values onto target polygons.

    Let ``w_ij`` be the weight of the piece ``source_i ∩ target_j``: its area
    in m² (area weighting, Goodchild & Lam 1980), or with ``weights`` the
    ancillary mass in the piece (dasymetric mapping; Tobler 1979 for the
    pycnophylactic, i.e. mass-preserving, requirement; Mennis 2003 for
    dasymetric weighting by ancillary data):

    * **extensive** (counts, persons): ``v_j = Σ_i v_i · w_ij / d_i`` with
      ``d_i = Σ_k w_ik`` (``allocate_total=True``: all of a source's value is
      handed to the targets it touches) or ``d_i`` = total weight of source i
      (``allocate_total=False``: parts outside every target are lost);
    * **intensive** (rates, %, densities): ``v_j = Σ_i v_i · w_ij / Σ_k w_kj``.

    With ``weights=None`` the results equal ``tobler.area_interpolate`` (same
    formulas, same handling of zero denominators), but the intersection
    table is computed in float64 (tobler stores it as float32).

    Dasymetric weights:

    * a **raster path** (e.g. Zensus population per 100 m cell): each pixel's
      value is split between pieces by the exact fraction of the pixel each
      piece covers (see :func:`geoplan.load.raster.zonal_stats`); the pieces are
      reprojected to the raster CRS when needed;
    * a **GeoDataFrame** of polygons (residential land use, same CRS): without
      ``weights_column`` the weight is the land-use area in the piece (binary
      dasymetric method); with it, the column holds an amount per polygon
      (e.g. residents or dwellings) spread evenly over the polygon's area. For
      a relative density class weight (Mennis 2003) pass ``density × area``.

    Source areas without any ancillary weight fall back to area weighting, in
    weight units (area × the mean weight density of the other sources), with a
    note counting only those sources; a source whose weight lies entirely
    outside the targets contributes nothing (as tobler). Invalid polygons of
    source or target (self-intersections, zero-width spikes, bowties) are
    repaired with ``make_valid`` (note). With ``source_key``, rows of one key
    (a source stored as several polygons) are dissolved first (note), so its
    value counts once.

    Missing values (NaN) are unknown, not zero: an extensive estimate sums the
    sources with a value (NaN if none contributes); an intensive estimate
    weights over the sources with a value. ``result.attrs["notes"]`` lists
    the QANotes.

    Parameters
    ----------
    source, target : GeoDataFrame
        Polygons in the same projected CRS (m), e.g. EPSG:25833.
    extensive, intensive : sequence of str
        Columns of ``source``.
    weights : path or GeoDataFrame, optional
        Ancillary data for dasymetric interpolation.
    weights_column : str, optional
        Amount column of a land-use ``weights`` GeoDataFrame.
    allocate_total : bool
        See above.
    n_jobs : int, optional
        Threads for the polygon intersections (default: all CPUs; 1 = serial).
        Results are identical for any value.
    source_key : str, optional
        Key column of ``source``; parts with the same key are one source.

    Returns
    -------
    GeoDataFrame
        Target index and geometry with one column per variable.

    References
    ----------
    Tobler, W. R. (1979). Smooth pycnophylactic interpolation for
    geographical regions. JASA 74(367), 519–530.
    Goodchild, M. F., & Lam, N. S.-N. (1980). Areal interpolation: a variant of
    the traditional spatial problem. Geo-Processing 1, 297–312.
    Mennis, J. (2003). Generating surface models of population using
    dasymetric mapping. The Professional Geographer 55(1), 31–42.
    """
    _check_crs(source, target)
    extensive = list(extensive)
    intensive = list(intensive)
    from geoplan.load.boundaries import repair_polygons

    pre_notes: list[QANote] = []
    fixed, n1 = repair_polygons(source.geometry.values, "Quellebene")
    if n1:
        source = source.set_geometry(gpd.GeoSeries(fixed, index=source.index, crs=source.crs))
        pre_notes += n1
    fixed, n2 = repair_polygons(target.geometry.values, "Zielebene")
    if n2:
        target = target.set_geometry(gpd.GeoSeries(fixed, index=target.index, crs=target.crs))
        pre_notes += n2
    if source_key is not None:
        source, n3 = _dissolve_by_key(source, source_key, extensive, intensive)
        pre_notes += n3
    for c in extensive + intensive:
        if c not in source.columns:
            raise GeoplanError(
                f"Spalte '{c}' fehlt in der Quellebene.",
                location=f"Spalte '{c}'",
                found=", ".join(map(str, source.columns)), message_en=f"Column '{c}' is missing in the source layer.",
            )
    W, total, notes = _weight_table(source, target, weights, weights_column, n_jobs)
    notes = pre_notes + notes

    columns: dict[str, np.ndarray] = {}
    if extensive:
        den = np.asarray(W.sum(axis=1)).ravel() if allocate_total else np.asarray(total, dtype=float)
        den = den + (den == 0)
        Wn = sparse.diags(1.0 / den) @ W
        V = source[extensive].to_numpy(dtype=float)
        present = np.isfinite(V)
        est = Wn.T @ np.where(present, V, 0.0)
        # a target gets NaN only if every source touching it lacks the value
        touched = (Wn.T @ present.astype(float)) > 0
        reach = np.asarray((Wn != 0).sum(axis=0)).ravel() > 0
        est = np.where(touched | ~reach[:, None], est, np.nan)
        for k, c in enumerate(extensive):
            columns[c] = est[:, k]
            n = int((~present[:, k]).sum())
            if n:
                notes.append(QANote(_STAGE, f"Spalte '{c}': {n} Quellgebiete ohne Wert; Summe aus den vorhandenen.", location=f"Spalte '{c}'", details={"missing_rows": n},
                                    message_en=f"Column '{c}': {n} source areas without a value; total of the others."))
    if intensive:
        V = source[intensive].to_numpy(dtype=float)
        present = np.isfinite(V)
        num = W.T @ np.where(present, V, 0.0)
        if present.all():
            area = np.asarray(W.sum(axis=0)).ravel()[:, None]
        else:
            area = W.T @ present.astype(float)
        est = num / (area + (area == 0))
        if not present.all():
            reach = np.asarray(W.sum(axis=0)).ravel()[:, None] > 0
            est = np.where((area > 0) | ~reach, est, np.nan)
        for k, c in enumerate(intensive):
            columns[c] = est[:, k]
            n = int((~present[:, k]).sum())
            if n:
                notes.append(QANote(_STAGE, f"Spalte '{c}': {n} Quellgebiete ohne Wert; gewichtet über die vorhandenen.", location=f"Spalte '{c}'", details={"missing_rows": n},
                                    message_en=f"Column '{c}': {n} source areas without a value; weighted over the others."))

    out = gpd.GeoDataFrame(columns, index=target.index, geometry=target.geometry.values, crs=target.crs)
    out.attrs["notes"] = notes
    return out
