"""Indicator catalogue, rates, empirical-Bayes smoothing, need index, map classes.

The pipeline hands this module one row per Sozialraum (the standard frame of
``docs/architecture.md``) and an indicator catalogue (YAML, see
``indicators/berlin/katalog.yaml``). Everything here is pure: frames in, new
frames out, inputs are never modified.

Conventions (documented once, used everywhere below)
----------------------------------------------------
* **Rates** are shares in % (``unit: "%"``) or per 1,000 (``unit: "je 1.000"``)
  of the indicator's *base*, the sum of the catalogue's ``base`` count columns
  (persons). The base is also the weight when the pipeline aggregates small
  areas to Sozialräume and the denominator for smoothing.
* **z-scores** are computed over Sozialräume, *unweighted* by population (every
  Sozialraum counts once, as in the Berlin Monitoring Soziale Stadtentwicklung,
  MSS), with the standard deviation with ``ddof=0``: the Sozialräume of a city
  are the complete set, not a sample, and ``ddof=0`` makes a re-standardised
  index have sd exactly 1 over the areas shown in the report. With 58 areas the
  choice scales z by sqrt(57/58) = 0.991; the Berlin MSS 2021 status classes
  are reproduced exactly under either choice (see tests).
* **Direction**: ``z_<name>`` is sign-adjusted so that higher always means more
  need (``"hoch = weniger Bedarf"`` flips the sign).

Public API
----------
``load_catalogue(path)`` / ``parse_catalogue(mapping)`` -> :class:`Catalogue`;
``catalogue_table(catalogue)`` (Datengrundlage table);
``derive_indicators(frame, catalogue, neighbours=None)`` -> :class:`DerivedIndicators`;
``need_index(frame, catalogue, method=...)`` -> :class:`NeedIndex`;
``dynamik_index(frame, catalogue)`` -> :class:`DynamikIndex`;
``dynamik(frame_t0, frame_t1, catalogue)`` change between two dates;
``classify(values, scheme, k)`` -> :class:`Classification`;
building blocks ``base_of``, ``raw_rate``, ``eb_global``, ``eb_local``,
``zscore``, ``sd_classes``, ``dynamik_classes``.

References
----------
* Marshall, R. J. (1991): Mapping disease and mortality rates using empirical
  Bayes estimators. Applied Statistics 40(2), 283–294.
* Senatsverwaltung für Stadtentwicklung, Bauen und Wohnen Berlin (2021):
  Monitoring Soziale Stadtentwicklung 2021, Methodik (Status-/Dynamik-Index).
* Jenks, G. F. (1967); Fisher, W. D. (1958): natural breaks, as implemented in
  ``mapclassify.FisherJenks`` (Rey et al., PySAL).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from geoplan import fmt
from geoplan.errors import GeoplanError, QANote, english_words
from geoplan.load.catalogue import RATE_SCALE, Catalogue, Indicator, catalogue_table, load_catalogue, parse_catalogue  # noqa: F401

STAGE = "indicators"



#: MSS-style classes of an index standardised to mean 0, sd 1 (higher = more need).
#: Rule (reproduces the MSS 2021 Status-Index of all 536 valid Planungsräume):
#: class 1 if z < -1, 2 if -1 <= z <= 1, 3 if 1 < z <= 1.5, 4 if z > 1.5.
NEED_CLASS_LABELS: dict[int, str] = {
    1: "hoher Status (Index unter −1 sd)",
    2: "mittlerer Status (−1 bis +1 sd)",
    3: "niedriger Status (über +1 bis +1,5 sd)",
    4: "sehr niedriger Status (über +1,5 sd)",
}

#: MSS 2021 Dynamik-Index classes (reproduced on the shipped data): 1 if z < -1
#: ("positiv", need falling), 3 if -1 <= z <= 1 ("stabil"), 5 if z > 1 ("negativ").
DYNAMIK_CLASS_LABELS: dict[int, str] = {1: "positiv", 3: "stabil", 5: "negativ"}


# --------------------------------------------------------------------------- frame checks


def _require_columns(frame: pd.DataFrame, indicator: Indicator, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise GeoplanError(
            f"Spalte(n) {', '.join(repr(c) for c in missing)} für Indikator '{indicator.name}' fehlen in der Tabelle.",
            location=f"Indikator '{indicator.name}'",
            expected=", ".join(columns),
            found="vorhandene Spalten: " + ", ".join(map(str, frame.columns)),
            hint="Spaltenzuordnung (rename) in der Konfiguration oder 'column'/'numerator'/'base' im Katalog prüfen.",
            message_en=f"Column(s) {', '.join(repr(c) for c in missing)} for indicator '{indicator.name}' missing in the table.",
            found_en="columns present: " + ", ".join(map(str, frame.columns)),
            hint_en="Check the column mapping (rename) in the configuration or 'column'/'numerator'/'base' in the catalogue.",
        )


def validate_frame(frame: pd.DataFrame, catalogue: Catalogue) -> None:
    """Raise GeoplanError if a column named by the catalogue is missing in ``frame``,
    or a share in % lies outside 0–100 (typically an unmarked missing-value code
    such as -9999), or a count column is negative."""
    keys = _keys(frame)
    for ind in catalogue.indicators:
        cols = [ind.column] if ind.column else [ind.numerator]  # type: ignore[list-item]
        _require_columns(frame, ind, [c for c in cols if c] + list(ind.base))
        checks = [(c, 0.0, np.inf) for c in [*ind.base, *([ind.numerator] if ind.numerator else [])]]
        if ind.column and ind.unit == "%":
            checks.append((ind.column, 0.0, 100.0))
        for col, lo, hi in checks:
            x = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
            bad = np.flatnonzero((x < lo) | (x > hi))
            if len(bad):
                raise GeoplanError(
                    f"Unplausible Werte in Spalte '{col}' (Indikator '{ind.name}').",
                    location=", ".join(f"Schlüssel {keys[i]}" for i in bad[:10]),
                    expected="Anteil in % zwischen 0 und 100" if hi == 100.0 else "Anzahl >= 0",
                    found=", ".join(f"{x[i]:g}" for i in bad[:10]),
                    hint="Fehlwertkennungen (z. B. -9999) beim Einlesen als fehlend markieren "
                    "(na_values) oder die Einheit im Katalog prüfen.",
                    message_en=f"Implausible values in column '{col}' (indicator '{ind.name}').",
                    expected_en="share in % between 0 and 100" if hi == 100.0 else "count >= 0",
                    hint_en="Mark missing-value codes (e.g. -9999) as missing when reading (na_values) or check the "
                    "unit in the catalogue.",
                )


def base_of(frame: pd.DataFrame, indicator: Indicator) -> pd.Series:
    """Population base of an indicator: the sum of its ``base`` count columns (persons).

    NaN if the indicator names no base. Missing cells in a base column count
    as 0 only when at least one base column of the row has a value.
    """
    if not indicator.base:
        return pd.Series(np.nan, index=frame.index, name=f"{indicator.name}_basis", dtype=float)
    _require_columns(frame, indicator, list(indicator.base))
    parts = frame[list(indicator.base)].apply(pd.to_numeric, errors="coerce")
    return parts.sum(axis=1, min_count=1).astype(float).rename(f"{indicator.name}_basis")


def raw_rate(frame: pd.DataFrame, indicator: Indicator) -> pd.Series:
    """The unsmoothed indicator value in its unit (column as is, or numerator / base × scale)."""
    if indicator.column is not None:
        _require_columns(frame, indicator, [indicator.column])
        return pd.to_numeric(frame[indicator.column], errors="coerce").astype(float).rename(f"{indicator.name}_roh")
    _require_columns(frame, indicator, [indicator.numerator] + list(indicator.base))  # type: ignore[list-item]
    num = pd.to_numeric(frame[indicator.numerator], errors="coerce").astype(float)
    base = base_of(frame, indicator)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = num / base.where(base > 0) * RATE_SCALE[indicator.unit]
    return rate.rename(f"{indicator.name}_roh")


# --------------------------------------------------------------------------- EB smoothing


def eb_global(events: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Global empirical-Bayes rates (Marshall 1991, moment estimator).

    Parameters
    ----------
    events, base : array (n,)
        Event counts and population at risk (persons), base > 0.

    Returns
    -------
    (rates, shrink) : proportions (events per person) and the credibility
        weight w_i = s² / (s² + m / b_i) of the raw rate (1 = unchanged, 0 =
        fully pulled to the mean m). m = Σe / Σb; s² = Σ b_i (r_i − m)² / Σb − m / b̄.
        A negative s² (less variation than Poisson noise alone) is set to 0, as
        Marshall recommends, so all areas get the mean; ``esda`` does not clip,
        and equals this function whenever s² >= 0.

    Totals: Σ b_i r̂_i equals Σ e_i when all bases are equal; in general it
    differs slightly (reported by :func:`derive_indicators` as a QA note).
    """
    e = np.asarray(events, dtype=float)
    b = np.asarray(base, dtype=float)
    rate = e / b
    m = e.sum() / b.sum()
    if m <= 0:
        return rate.copy(), np.ones_like(rate)
    s2 = (b * (rate - m) ** 2).sum() / b.sum() - m / b.mean()
    s2 = max(s2, 0.0)
    shrink = s2 / (s2 + m / b)
    return shrink * rate + (1.0 - shrink) * m, shrink


def _neighbour_sets(w, keys: list[str]) -> list[np.ndarray]:
    """Positions of each area's neighbours in ``keys`` order (binary, from a libpysal W)."""
    ids = list(w.id_order)
    as_str = {str(i): i for i in ids}
    if set(as_str) == set(keys):
        pos = {k: p for p, k in enumerate(keys)}
        return [np.array([pos[str(j)] for j in w.neighbors[as_str[k]]], dtype=int) for k in keys]
    if set(ids) == set(range(len(keys))):
        return [np.array(list(w.neighbors[i]), dtype=int) for i in range(len(keys))]
    raise GeoplanError(
        "Nachbarschaftsmatrix passt nicht zu den Sozialräumen.",
        location="neighbours",
        expected=f"{len(keys)} ids = Sozialraum-Schlüssel (z. B. {keys[:3]}) oder 0…{len(keys) - 1}",
        found=f"{len(ids)} ids (z. B. {ids[:3]})",
        hint="libpysal.weights.Queen.from_dataframe(gdf, ids=gdf['key'].tolist()) verwenden.",
        message_en="The neighbourhood matrix does not fit the Sozialräume.",
        expected_en=f"{len(keys)} ids = Sozialraum keys (e.g. {keys[:3]}) or 0…{len(keys) - 1}",
        found_en=f"{len(ids)} ids (e.g. {ids[:3]})",
        hint_en="Use libpysal.weights.Queen.from_dataframe(gdf, ids=gdf['key'].tolist()).",
    )


def eb_local(events: np.ndarray, base: np.ndarray, neighbours: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Local (spatial) empirical-Bayes rates (Marshall 1991, local moment estimator).

    The prior of area i is estimated from its neighbourhood N_i = {i} ∪
    neighbours(i) (binary contiguity, weights of the W object are ignored):
    m_i = Σ_{N_i} e / Σ_{N_i} b, s²_i = Σ_{N_i} b_j (r_j − m_i)² / Σ_{N_i} b − m_i / b̄_i
    with b̄_i the mean base in N_i; s²_i < 0 is set to 0. The smoothed rate is
    m_i + (r_i − m_i) · s²_i / (s²_i + m_i / b_i). Equals
    ``esda.smoothing.Spatial_Empirical_Bayes`` with binary weights.

    Returns (rates as proportions, credibility weights).
    """
    from scipy import sparse

    e = np.asarray(events, dtype=float)
    b = np.asarray(base, dtype=float)
    n = len(e)
    rate = e / b
    rows = np.concatenate([np.arange(n)] + [np.full(len(ng), i) for i, ng in enumerate(neighbours)])
    cols = np.concatenate([np.arange(n)] + [np.asarray(ng, dtype=int) for ng in neighbours])
    # Binary neighbourhood incl. the area itself; duplicates collapse to 1.
    A = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    A.data[:] = 1.0
    size = np.asarray(A.sum(axis=1)).ravel()
    bs = A @ b
    es = A @ e
    m = es / bs
    # Σ b_j (r_j − m_i)² = Σ e_j r_j − 2 m_i Σ e_j + m_i² Σ b_j over the neighbourhood.
    s2 = (A @ (e * rate) - 2 * m * es + m * m * bs) / bs - m / (bs / size)
    s2 = np.maximum(s2, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        shrink = np.where(m > 0, s2 / (s2 + m / b), 1.0)
    return m + (rate - m) * shrink, shrink


# --------------------------------------------------------------------------- derive


@dataclass
class DerivedIndicators:
    """Result of :func:`derive_indicators`.

    frame: copy of the input with, per indicator, ``<name>`` (value used
    downstream: smoothed if the catalogue asks for it, else raw),
    ``<name>_roh`` (raw) and ``<name>_basis`` (population base, persons).
    notes: QA notes (smoothing per indicator: which areas moved and by how much;
    missing values).
    """

    frame: pd.DataFrame
    catalogue: Catalogue
    notes: list[QANote] = field(default_factory=list)


def _keys(frame: pd.DataFrame) -> list[str]:
    if "key" in frame.columns:
        return frame["key"].astype(str).tolist()
    return [str(i) for i in frame.index]


def derive_indicators(frame: pd.DataFrame, catalogue: Catalogue, *, neighbours=None) -> DerivedIndicators:
    """Compute every catalogue indicator per Sozialraum, with base and optional EB smoothing.

    Parameters
    ----------
    frame : DataFrame
        One row per Sozialraum with the columns the catalogue names.
    catalogue : Catalogue
    neighbours : libpysal.weights.W, optional
        Needed for ``smoothing: eb_lokal``; ids are the Sozialraum keys
        (``frame['key']``) or positions 0…n−1.

    Smoothing works on proportions (value / scale) with events = proportion ×
    base; areas with missing value or base <= 0 keep the raw value and are
    named in a note. The smoothed value is written to ``<name>``, the raw one
    to ``<name>_roh``.
    """
    validate_frame(frame, catalogue)
    out = frame.copy()
    notes: list[QANote] = []
    keys = _keys(frame)
    nsets = None
    for ind in catalogue.indicators:
        raw = raw_rate(frame, ind)
        base = base_of(frame, ind)
        value = raw.copy()
        missing = [k for k, v in zip(keys, raw.isna()) if v]
        if missing:
            notes.append(
                QANote(
                    STAGE,
                    f"Indikator '{ind.name}': {len(missing)} Sozialraum/-räume ohne Wert.",
                    message_en=f"Indicator '{ind.name}': {len(missing)} Sozialraum/Sozialräume without a value.",
                    location=", ".join(missing[:20]),
                    details={"indicator": ind.name, "keys": missing},
                )
            )
        if ind.smoothing != "keine":
            scale = RATE_SCALE[ind.unit]
            ok = (raw.notna() & base.notna() & (base > 0)).to_numpy()
            if ind.smoothing == "eb_lokal" and neighbours is None:
                raise GeoplanError(
                    f"Indikator '{ind.name}' verlangt lokale EB-Glättung, aber keine Nachbarschaft wurde übergeben.",
                    location=f"Indikator '{ind.name}', smoothing",
                    expected="neighbours = libpysal-Gewichte (z. B. Queen-Nachbarschaft)",
                    found="keine",
                    hint="smoothing: eb_global verwenden oder Grenzen (Polygone) mitgeben.",
                    message_en=f"Indicator '{ind.name}' asks for local EB smoothing, but no neighbourhood was given.",
                    expected_en="neighbours = libpysal weights (e.g. queen contiguity)", found_en="none",
                    hint_en="Use smoothing: eb_global or pass the boundaries (polygons).",
                )
            if ok.sum() >= 2:
                b = base.to_numpy()[ok]
                e = raw.to_numpy()[ok] / scale * b
                if ind.smoothing == "eb_global":
                    sm, shrink = eb_global(e, b)
                else:
                    if nsets is None:
                        nsets = _neighbour_sets(neighbours, keys)
                    # Neighbourhoods are restricted to areas with a usable rate.
                    pos = -np.ones(len(keys), dtype=int)
                    pos[np.flatnonzero(ok)] = np.arange(ok.sum())
                    sub = [pos[nsets[i]][pos[nsets[i]] >= 0] for i in np.flatnonzero(ok)]
                    sm, shrink = eb_local(e, b, sub)
                    ok_keys_local = [k for k, o in zip(keys, ok) if o]
                    islands = [ok_keys_local[j] for j, ng in enumerate(sub) if len(ng) == 0]
                    if islands:
                        notes.append(
                            QANote(
                                STAGE,
                                f"Indikator '{ind.name}': Sozialräume ohne Nachbarn bleiben bei lokaler Glättung unverändert.",
                                message_en=f"Indicator '{ind.name}': Sozialräume without neighbours stay unchanged by "
                                "local smoothing.",
                                location=", ".join(islands[:20]),
                                details={"indicator": ind.name, "keys": islands},
                            )
                        )
                vals = value.to_numpy().copy()
                vals[ok] = sm * scale
                value = pd.Series(vals, index=frame.index)
                diff = vals[ok] - raw.to_numpy()[ok]
                ok_keys = [k for k, o in zip(keys, ok) if o]
                order = np.argsort(-np.abs(diff))
                moved = {
                    ok_keys[j]: {
                        "roh": float(raw.to_numpy()[ok][j]),
                        "geglaettet": float(vals[ok][j]),
                        "differenz": float(diff[j]),
                        "basis": float(b[j]),
                        "gewicht_roh": float(shrink[j]),
                    }
                    for j in order
                }
                total_raw, total_sm = float(e.sum()), float((sm * b).sum())
                top = ", ".join(f"{ok_keys[j]} ({diff[j]:+.2f})".replace(".", ",") for j in order[:5])
                notes.append(
                    QANote(
                        STAGE,
                        f"Indikator '{ind.name}' empirisch-bayes-geglättet ({ind.smoothing}): "
                        f"größte Änderungen {top} {ind.unit}; mittlere absolute Änderung "
                        f"{np.abs(diff).mean():.3f}".replace(".", ",") + f" {ind.unit}.",
                        message_en=f"Indicator '{ind.name}' smoothed by empirical Bayes ({ind.smoothing}): "
                        f"largest changes "
                        + ", ".join(f"{ok_keys[j]} ({diff[j]:+.2f})" for j in order[:5])
                        + f" {ind.unit}; mean absolute change {np.abs(diff).mean():.3f} {ind.unit}.",
                        level="info",
                        details={
                            "indicator": ind.name,
                            "method": ind.smoothing,
                            "areas": moved,
                            "events_raw": total_raw,
                            "events_smoothed": total_sm,
                            "events_rel_diff": (total_sm - total_raw) / total_raw if total_raw else 0.0,
                        },
                    )
                )
            else:
                notes.append(
                    QANote(
                        STAGE,
                        f"Indikator '{ind.name}': weniger als zwei Sozialräume mit Wert und Bezugsbevölkerung, nicht geglättet.",
                        message_en=f"Indicator '{ind.name}': fewer than two Sozialräume with a value and a reference "
                        "population; not smoothed.",
                        details={"indicator": ind.name},
                    )
                )
            unusable = [k for k, o in zip(keys, ok) if not o and k not in missing]
            if unusable:
                notes.append(
                    QANote(
                        STAGE,
                        f"Indikator '{ind.name}': Sozialräume ohne Bezugsbevölkerung nicht geglättet.",
                        message_en=f"Indicator '{ind.name}': Sozialräume without a reference population not smoothed.",
                        location=", ".join(unusable[:20]),
                        details={"indicator": ind.name, "keys": unusable},
                    )
                )
        out[ind.name] = value.to_numpy()
        out[f"{ind.name}_roh"] = raw.to_numpy()
        out[f"{ind.name}_basis"] = base.to_numpy()
    return DerivedIndicators(frame=out, catalogue=catalogue, notes=notes)


# --------------------------------------------------------------------------- need index


def zscore(values: pd.Series | np.ndarray, *, ddof: int = 0) -> np.ndarray:
    """Unweighted z-scores over areas (NaN ignored in mean and sd; sd with ``ddof``, default 0)."""
    x = np.asarray(values, dtype=float)
    ok = np.isfinite(x)
    if ok.sum() == 0:
        return np.full_like(x, np.nan)
    mean = x[ok].mean()
    sd = x[ok].std(ddof=ddof) if ok.sum() > ddof else 0.0
    if not sd > 0:
        return np.where(ok, 0.0, np.nan)
    return (x - mean) / sd


def sd_classes(z: np.ndarray) -> np.ndarray:
    """MSS status classes 1–4 of a standardised index (see :data:`NEED_CLASS_LABELS`)."""
    z = np.asarray(z, dtype=float)
    return np.select([z < -1.0, z <= 1.0, z <= 1.5], [1, 2, 3], 4).astype(int)


def dynamik_classes(z: np.ndarray) -> np.ndarray:
    """MSS Dynamik classes 1/3/5 of a standardised change index (see :data:`DYNAMIK_CLASS_LABELS`)."""
    z = np.asarray(z, dtype=float)
    return np.select([z < -1.0, z <= 1.0], [1, 3], 5).astype(int)


@dataclass
class NeedIndex:
    """Result of :func:`need_index`.

    frame: copy of the input with ``z_<name>`` per indicator used (sign-adjusted,
    higher = more need), ``need_index`` (mean 0, sd 1 with ddof=0 over
    Sozialräume, higher = more need) and ``need_class`` (int 1–4, MSS classes by
    standard deviation; labels in ``class_labels``).
    weights: effective weight per indicator (normalised to sum 1; for PCA the
    first component's coefficients on the z-scores).
    loadings: PCA only: correlation of each z-score with each component
    (rows = indicators, columns PC1…PCk).
    explained_variance: PCA only: share of variance of the first component.
    """

    frame: pd.DataFrame
    weights: dict[str, float]
    method: str
    class_labels: dict[int, str] = field(default_factory=lambda: dict(NEED_CLASS_LABELS))
    loadings: pd.DataFrame | None = None
    explained_variance: float | None = None
    notes: list[QANote] = field(default_factory=list)


def _value_column(frame: pd.DataFrame, ind: Indicator) -> pd.Series:
    if ind.name in frame.columns:
        return pd.to_numeric(frame[ind.name], errors="coerce").astype(float)
    if ind.column and ind.column in frame.columns:
        return pd.to_numeric(frame[ind.column], errors="coerce").astype(float)
    raise GeoplanError(
        f"Spalte für Indikator '{ind.name}' fehlt in der Tabelle.",
        location=f"Indikator '{ind.name}'",
        expected=ind.name,
        found="vorhandene Spalten: " + ", ".join(map(str, frame.columns)),
        hint="Zuerst derive_indicators() aufrufen.",
        message_en=f"The column for indicator '{ind.name}' is missing in the table.",
        found_en="columns present: " + ", ".join(map(str, frame.columns)),
        hint_en="Call derive_indicators() first.",
    )


_INDEX_EN = {"Bedarfsindex": "Need index", "Dynamik-Index": "Dynamics index"}


def _z_matrix(frame: pd.DataFrame, used: list[Indicator], out: pd.DataFrame, notes: list[QANote], what: str) -> np.ndarray:
    """Sign-adjusted z-scores of ``used`` (written to ``out`` as ``z_<name>``);
    missing values become 0 in the returned matrix and are named in ``notes``."""
    keys = _keys(frame)
    cols = []
    for ind in used:
        x = _value_column(frame, ind).to_numpy()
        z = zscore(x) * ind.need_sign
        nan = ~np.isfinite(z)
        if nan.all():
            raise GeoplanError(
                f"Indikator '{ind.name}' hat in keinem Sozialraum einen Wert.",
                location=f"Indikator '{ind.name}'", hint="Daten oder Spaltenzuordnung prüfen.",
                message_en=f"Indicator '{ind.name}' has a value in no Sozialraum.",
                hint_en="Check the data or the column mapping.",
            )
        if nan.any():
            miss = [k for k, n in zip(keys, nan) if n]
            notes.append(
                QANote(
                    STAGE,
                    f"{what}: '{ind.name}' fehlt in {len(miss)} Sozialraum/-räumen; dort mit dem Mittelwert (z = 0) gerechnet.",
                    message_en=f"{_INDEX_EN.get(what, what)}: '{ind.name}' is missing in {len(miss)} "
                    "Sozialraum/Sozialräume; the mean (z = 0) is used there.",
                    location=", ".join(miss[:20]),
                    details={"indicator": ind.name, "keys": miss},
                )
            )
        elif np.nanstd(x) == 0:
            notes.append(QANote(STAGE, f"{what}: '{ind.name}' ist in allen Sozialräumen gleich (z = 0).",
                                message_en=f"{_INDEX_EN.get(what, what)}: '{ind.name}' is the same in every "
                                "Sozialraum (z = 0)."))
        out[f"z_{ind.name}"] = z
        cols.append(np.where(nan, 0.0, z))
    return np.column_stack(cols)


def need_index(
    frame: pd.DataFrame,
    catalogue: Catalogue,
    *,
    method: Literal["gewichtet", "mss", "pca"] = "gewichtet",
) -> NeedIndex:
    """Composite need index per Sozialraum.

    Methods
    -------
    ``gewichtet``
        Σ_k w_k z_k over indicators with weight > 0 (weights normalised to sum
        1), then re-standardised.
    ``mss``
        Berlin MSS: unweighted sum of the z-scores of the indicators with
        ``group: status`` (all indicators with weight > 0 if none is marked),
        re-standardised. Together with :func:`sd_classes` this reproduces the
        MSS 2021 Status-Index classes (SenStadt Berlin, MSS 2021 Methodik).
    ``pca``
        First principal component (``sklearn.decomposition.PCA``) of the z-scores
        of the indicators with weight > 0 (their catalogue weights are not used),
        sign fixed so that the component correlates positively with the
        unweighted sum of sign-adjusted z-scores (i.e. with need), re-standardised.

    z-scores: unweighted over Sozialräume, sd with ddof=0 (module docstring).
    A missing indicator value gets z = 0 (the mean) for the index; a note names
    the areas. need_class: 1 if index < −1, 2 if ≤ 1, 3 if ≤ 1.5, else 4.
    """
    if method not in ("gewichtet", "mss", "pca"):
        raise GeoplanError(
            "Unbekannte Methode für den Bedarfsindex.", location="need_index.method",
            expected="gewichtet, mss, pca", found=str(method),
            message_en="Unknown method for the need index.", expected_en="gewichtet (weighted), mss, pca",
        )
    if method == "mss":
        used = [i for i in catalogue.indicators if i.group == "status"] or catalogue.index_indicators
    else:
        used = catalogue.index_indicators
    if not used:
        raise GeoplanError(
            "Kein Indikator für den Bedarfsindex: alle Gewichte sind 0.",
            location="Katalog, weight", expected="mindestens ein Indikator mit weight > 0", found="0",
            message_en="No indicator for the need index: all weights are 0.", location_en="catalogue, weight",
            expected_en="at least one indicator with weight > 0",
        )
    out = frame.copy()
    notes: list[QANote] = []
    Z = _z_matrix(frame, used, out, notes, "Bedarfsindex")
    loadings = None
    explained = None
    if method == "gewichtet":
        w = np.array([i.weight for i in used], dtype=float)
        w = w / w.sum()
        raw_index = Z @ w
    elif method == "mss":
        w = np.full(len(used), 1.0 / len(used))
        raw_index = Z.sum(axis=1)
    else:
        from sklearn.decomposition import PCA

        if Z.shape[0] < 3 or Z.shape[1] < 2:
            raise GeoplanError(
                "PCA-Index braucht mindestens 2 Indikatoren und 3 Sozialräume.",
                location="indicators.index_method", found=f"{Z.shape[1]} Indikatoren, {Z.shape[0]} Sozialräume",
                hint="index_method: gewichtet verwenden.",
                message_en="A PCA index needs at least 2 indicators and 3 Sozialräume.",
                found_en=f"{Z.shape[1]} indicators, {Z.shape[0]} Sozialräume", hint_en="Use index_method: gewichtet.",
            )
        # Re-standardise after mean-imputation so PCA works on a correlation matrix.
        Zs = np.column_stack([zscore(c) for c in Z.T])
        pca = PCA(n_components=min(Zs.shape), svd_solver="full").fit(Zs)
        scores = pca.transform(Zs)
        sign = 1.0 if np.corrcoef(scores[:, 0], Zs.sum(axis=1))[0, 1] >= 0 else -1.0
        scores[:, 0] *= sign
        comps = pca.components_.copy()
        comps[0] *= sign
        w = comps[0]
        raw_index = scores[:, 0]
        cols = [f"PC{j + 1}" for j in range(scores.shape[1])]
        corr = np.empty((Zs.shape[1], scores.shape[1]))
        for a in range(Zs.shape[1]):
            for c in range(scores.shape[1]):
                sa, sc = Zs[:, a].std(), scores[:, c].std()
                corr[a, c] = 0.0 if sa == 0 or sc == 0 else np.corrcoef(Zs[:, a], scores[:, c])[0, 1]
        loadings = pd.DataFrame(corr, index=[i.name for i in used], columns=cols)
        loadings.index.name = "indicator"
        explained = float(pca.explained_variance_ratio_[0])
        if comps.shape[0] > 1:
            loadings.attrs["explained_variance_ratio"] = pca.explained_variance_ratio_.tolist()
    index = zscore(raw_index)
    out["need_index"] = index
    out["need_class"] = sd_classes(index)
    return NeedIndex(
        frame=out,
        weights={i.name: float(wi) for i, wi in zip(used, w)},
        method=method,
        loadings=loadings,
        explained_variance=explained,
        notes=notes,
    )


@dataclass
class DynamikIndex:
    """Result of :func:`dynamik_index`: ``frame`` with ``z_<name>`` of the change
    indicators, ``dynamik_index`` (mean 0, sd 1; higher = need grew) and
    ``dynamik_class`` (1 positiv, 3 stabil, 5 negativ; labels in ``class_labels``)."""

    frame: pd.DataFrame
    indicators: list[str]
    class_labels: dict[int, str] = field(default_factory=lambda: dict(DYNAMIK_CLASS_LABELS))
    notes: list[QANote] = field(default_factory=list)


def dynamik_index(frame: pd.DataFrame, catalogue: Catalogue) -> DynamikIndex:
    """MSS Dynamik-Index from the catalogue's ``group: dynamik`` indicators.

    Sum of their sign-adjusted z-scores (unweighted, ddof=0), re-standardised;
    classes by :func:`dynamik_classes` (< −1 sd positiv, > +1 sd negativ). On
    the shipped MSS 2021 data this reproduces the official Dynamik-Index of all
    536 valid Planungsräume (SenStadt Berlin, MSS 2021 Methodik).
    """
    used = [i for i in catalogue.indicators if i.group == "dynamik"]
    if not used:
        raise GeoplanError(
            "Kein Dynamik-Indikator im Katalog.", location="Katalog, group",
            expected="mindestens ein Indikator mit group: dynamik", found="keiner",
            message_en="No dynamics indicator in the catalogue.", location_en="catalogue, group",
            expected_en="at least one indicator with group: dynamik", found_en="none",
        )
    out = frame.copy()
    notes: list[QANote] = []
    Z = _z_matrix(frame, used, out, notes, "Dynamik-Index")
    idx = zscore(Z.sum(axis=1))
    out["dynamik_index"] = idx
    out["dynamik_class"] = dynamik_classes(idx)
    return DynamikIndex(frame=out, indicators=[i.name for i in used], notes=notes)


# --------------------------------------------------------------------------- map classes


@dataclass
class Classification:
    """Map classes: ``bins`` (upper bounds), ``yb`` (class 0…k−1 per value, −1 if
    missing), German ``labels`` ("1,2 bis 3,4"), ``counts``, ``scheme``, ``k``."""

    bins: np.ndarray
    yb: np.ndarray
    labels: list[str]
    scheme: str
    k: int
    counts: list[int] = field(default_factory=list)


def classify(
    values,
    scheme: Literal["quantile", "natural_breaks", "equal_interval", "std_mean"] = "quantile",
    k: int = 5,
    *,
    decimals: int = 1,
) -> Classification:
    """Classes for choropleth maps through :func:`geoplan.report.maps.classify` (mapclassify).

    Schemes: ``quantile`` (``Quantiles``), ``natural_breaks`` (``FisherJenks``:
    the exact, deterministic Jenks optimum; ``NaturalBreaks`` is k-means with a
    random start), ``equal_interval`` (``EqualInterval``), ``std_mean``
    (``StdMean`` with multiples −2, −1, +1, +2 sd; ``k`` is ignored, the number
    of classes follows the data). Missing values get class −1 and no label.
    Labels use a decimal comma and ``decimals`` places.
    """
    x = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=float)
    ok = np.isfinite(x)
    if ok.sum() == 0:
        raise GeoplanError("Klassenbildung: keine gültigen Werte.", location="classify.values",
                           message_en="Classification: no valid values.")
    schemes = ("quantile", "natural_breaks", "equal_interval", "std_mean")
    if scheme not in schemes:
        raise GeoplanError(
            "Unbekanntes Klassifikationsverfahren.", location="classify.scheme",
            expected=", ".join(schemes), found=str(scheme), message_en="Unknown classification scheme.",
        )
    if scheme != "std_mean" and (not isinstance(k, int) or k < 2):
        raise GeoplanError("Klassenzahl k muss mindestens 2 sein.", location="classify.k", found=str(k),
                           message_en="The number of classes k must be at least 2.")
    # one classifier for every map, style and table: geoplan.report.maps.classify
    from geoplan.report.maps import MapLayer
    from geoplan.report.maps import classify as map_classify

    names = {"quantile": "quantiles", "natural_breaks": "natural_breaks", "equal_interval": "equal_interval",
             "std_mean": "std_mean"}
    mc = map_classify(x, MapLayer("wert", "Wert", scheme=names[scheme], k=k if scheme != "std_mean" else 5))
    bins = np.asarray(mc.bins, dtype=float)
    yb = np.asarray(mc.classes, dtype=int)
    lower = [float(x[ok].min())] + bins[:-1].tolist()
    labels = [f"{fmt.number(lo, decimals)} bis {fmt.number(hi, decimals)}" for lo, hi in zip(lower, bins)]
    if lower[0] > bins[0]:
        # std_mean: mean − 2 sd can lie below the smallest value (empty first class).
        labels[0] = f"bis {fmt.number(bins[0], decimals)}"
    counts = [int((yb == c).sum()) for c in range(len(bins))]
    return Classification(bins=bins, yb=yb, labels=labels, scheme=scheme, k=len(bins), counts=counts)


# --------------------------------------------------------------------------- Dynamik


def dynamik(
    frame_t0: pd.DataFrame,
    frame_t1: pd.DataFrame,
    catalogue: Catalogue,
    *,
    key: str = "key",
) -> pd.DataFrame:
    """Change of each indicator between two reference dates (Dynamik indicator).

    For every catalogue indicator that is not itself a change (unit
    "Prozentpunkte" / group "dynamik") and whose columns exist in both frames,
    returns ``<name>_t0``, ``<name>_t1`` and ``<name>_dyn`` = t1 − t0 (raw,
    unsmoothed values; percentage points for % shares, else the indicator's
    unit), plus ``<name>_dyn_z`` (change z-scored, sign-adjusted: higher = need
    grew) and ``dynamik_index`` / ``dynamik_class`` (MSS way: sum of the change
    z-scores of indicators with weight > 0, re-standardised; classes 1 positiv,
    3 stabil, 5 negativ at ∓1 sd). One row per key, in the order of
    ``frame_t1``. Keys present in only one frame raise GeoplanError.
    """
    for f, label in ((frame_t0, "t0"), (frame_t1, "t1")):
        if key not in f.columns:
            raise GeoplanError(
                f"Schlüsselspalte '{key}' fehlt in der Tabelle zum Stichtag {label}.",
                location=label, expected=key, found=", ".join(map(str, f.columns)),
                message_en=f"Key column '{key}' is missing in the table of reference date {label}.",
            )
        dup = f[key].astype(str)[f[key].astype(str).duplicated()].unique().tolist()
        if dup:
            raise GeoplanError(
                f"Doppelte Schlüssel in der Tabelle zum Stichtag {label}.",
                location=label, found=", ".join(dup[:20]),
                message_en=f"Duplicate keys in the table of reference date {label}.",
            )
    k0 = frame_t0[key].astype(str)
    k1 = frame_t1[key].astype(str)
    only0 = sorted(set(k0) - set(k1))
    only1 = sorted(set(k1) - set(k0))
    if only0 or only1:
        raise GeoplanError(
            "Die Sozialräume der beiden Stichtage stimmen nicht überein.",
            location=key,
            expected="dieselben Schlüssel zu beiden Stichtagen",
            found=f"nur t0: {', '.join(only0[:10]) or '–'}; nur t1: {', '.join(only1[:10]) or '–'}",
            hint="Gebietsstand angleichen (Schlüsseltabelle/Umschlüsselung) bevor die Veränderung berechnet wird.",
            message_en="The Sozialräume of the two reference dates do not match.",
            expected_en="the same keys at both reference dates",
            found_en=f"only t0: {', '.join(only0[:10]) or '–'}; only t1: {', '.join(only1[:10]) or '–'}",
            hint_en="Align the area boundaries (key table/re-keying) before the change is computed.",
        )
    a = frame_t0.assign(**{key: k0}).set_index(key)
    b = frame_t1.assign(**{key: k1}).set_index(key)
    a = a.loc[k1.tolist()]
    out = pd.DataFrame({key: k1.tolist()})
    zs = []
    for ind in catalogue.indicators:
        if ind.unit == "Prozentpunkte" or ind.group == "dynamik":
            continue
        cols = [ind.column] if ind.column else [ind.numerator, *ind.base]
        if not all(c in a.columns and c in b.columns for c in cols):
            continue
        v0 = raw_rate(a.reset_index(), ind).to_numpy()
        v1 = raw_rate(b.reset_index(), ind).to_numpy()
        out[f"{ind.name}_t0"] = v0
        out[f"{ind.name}_t1"] = v1
        out[f"{ind.name}_dyn"] = v1 - v0
        z = zscore(v1 - v0) * ind.need_sign
        out[f"{ind.name}_dyn_z"] = z
        if ind.weight > 0:
            zs.append(np.where(np.isfinite(z), z, 0.0))
    if not zs:
        raise GeoplanError(
            "Keine Indikatorspalten in beiden Tabellen gefunden; Veränderung nicht berechenbar.",
            expected=", ".join(i.column or i.numerator or i.name for i in catalogue.indicators),
            message_en="No indicator columns found in both tables; the change cannot be computed.",
        )
    idx = zscore(np.sum(zs, axis=0))
    out["dynamik_index"] = idx
    out["dynamik_class"] = dynamik_classes(idx)
    return out


# --------------------------------------------------------------------------- the stage


def linear_combinations(df: pd.DataFrame, derived: dict[str, dict[str, float]]) -> pd.DataFrame:
    """Derived count columns (``indicators.derived``): weighted sums of source columns, e.g. pop_u21."""
    out = df.copy()
    for name, terms in derived.items():
        missing = [c for c in terms if c not in out.columns]
        if missing:
            raise GeoplanError(
                f"Abgeleitete Spalte '{name}': Spalte(n) {', '.join(missing)} unbekannt.",
                location=f"Konfigurationsfeld 'indicators.derived.{name}'",
                expected=", ".join(c for c in out.columns if not c.startswith("_")),
                hint="Nur Spalten verwenden, die in indicators.tables[].columns benannt sind.",
                message_en=f"Derived column '{name}': column(s) {', '.join(missing)} unknown.",
                hint_en="Use only columns named in indicators.tables[].columns.",
            )
        # a term that is missing in a row makes the derived value missing (no silent zero)
        out[name] = sum(out[c] * f for c, f in terms.items())
    return out


def _count_and_share_columns(src: pd.DataFrame, catalogue: Catalogue, derived: dict) -> tuple[list[str], dict[str, str]]:
    """Counts (``pop_*`` and derived columns: summed) and shares (column -> weight column) of a source frame.

    Adds ``_basis_<indicator>`` weight columns to ``src`` (in place) for catalogue shares with a base.
    """
    count_cols = [c for c in src.columns if c != "_source_key" and (c.startswith("pop_") or c in derived)]
    shares: dict[str, str] = {}
    for ind in catalogue.indicators:
        if ind.column and ind.column in src.columns and ind.column not in count_cols:
            if ind.base and all(b in src.columns for b in ind.base):
                bname = f"_basis_{ind.name}"
                src[bname] = base_of(src, ind)
                shares[ind.column] = bname
            else:
                shares[ind.column] = "pop_total"
    # columns that are neither counts nor catalogue indicators are still carried, weighted by residents
    for c in src.columns:
        if c == "_source_key" or c.startswith("_basis_") or c in count_cols or c in shares:
            continue
        shares[c] = "pop_total"
    fallback = "pop_total" if "pop_total" in src.columns else (count_cols[0] if count_cols else None)
    for c, w in list(shares.items()):
        if w not in src.columns:
            if fallback is None:
                shares[c] = ""  # unweighted mean (no count column on this level)
            else:
                shares[c] = fallback
    return count_cols, shares


def _totals_note(level_name: str, how: str, source: pd.DataFrame, target: pd.DataFrame, count_cols: list[str],
                 tolerance: float = 0.005, how_en: str | None = None) -> QANote | None:
    """Source total, target total and difference of every count column after a step (QA section)."""
    from geoplan import fmt

    rows = []
    worst = 0.0
    for c in count_cols:
        if c not in source.columns or c not in target.columns:
            continue
        s_tot = float(pd.to_numeric(source[c], errors="coerce").sum())
        t_tot = float(pd.to_numeric(target[c], errors="coerce").sum())
        diff = t_tot - s_tot
        rel = abs(diff) / abs(s_tot) if s_tot else (0.0 if diff == 0 else 1.0)
        worst = max(worst, rel)
        rows.append({"column": c, "source_total": s_tot, "target_total": t_tot, "difference": diff})
    if not rows:
        return None
    text = "; ".join(f"{r['column']}: Quelle {fmt.number(r['source_total'])}, Sozialräume "
                     f"{fmt.number(r['target_total'])}, Differenz {fmt.signed(r['difference'], 0)}" for r in rows[:6])
    more = f" (und {len(rows) - 6} weitere Spalten)" if len(rows) > 6 else ""
    text_en = "; ".join(f"{r['column']}: source {fmt.number(r['source_total'], lang='en')}, Sozialräume "
                        f"{fmt.number(r['target_total'], lang='en')}, difference "
                        f"{fmt.signed(r['difference'], 0, lang='en')}" for r in rows[:6])
    more_en = f" (and {len(rows) - 6} more columns)" if len(rows) > 6 else ""
    return QANote(STAGE, f"Summenprüfung Ebene '{level_name}' ({how}): {text}{more}.",
                  level="info" if worst <= tolerance else "warnung",
                  details={"level": level_name, "totals": rows},
                  message_en=f"Total check, level '{level_name}' ({english_words(how_en or how)}): {text_en}{more_en}.")


def _bring_onto(src: pd.DataFrame, level, targets, count_cols: list[str], shares: dict[str, str], notes: list,
                merge_map: dict | None = None):
    """One level's source rows -> one row per Sozialraum key (``key`` column)."""
    from geoplan.errors import config_field
    from geoplan.load.tables import join_by_key
    from geoplan.stages.interpolate import aggregate_by_key, area_interpolate

    if level is None:
        return src.rename(columns={"_source_key": "key"}), None
    if level.polygons is None:
        cfg = level.config
        mapping, m_src, m_tgt, prefix_len = level.mapping, cfg.source_key, cfg.target_key, cfg.prefix_len
        if merge_map:
            # polygons combined by boundaries.merge: their parts' keys lead to the combined key
            if mapping is None:
                mapping = pd.DataFrame({"_s": src["_source_key"].astype(str),
                                        "_t": src["_source_key"].astype(str).str.slice(0, prefix_len)})
                m_src, m_tgt, prefix_len = "_s", "_t", None
            else:
                mapping = mapping.copy()
            mapping[m_tgt] = mapping[m_tgt].astype(str).map(lambda k: merge_map.get(k, k))
        with config_field(level.field, level.key_table_path):
            agg = aggregate_by_key(
                src, source_key="_source_key", counts=count_cols,
                shares={c: w for c, w in shares.items() if w},
                mapping=mapping, mapping_source=m_src, mapping_target=m_tgt,
                prefix_len=prefix_len, target_name="key",
            )
        notes.extend(agg.notes)
        frame = agg.frame.reset_index(drop="key" in agg.frame.columns)
        unweighted = [c for c, w in shares.items() if not w]
        if unweighted:
            keys = (src["_source_key"].str.slice(0, prefix_len) if prefix_len else
                    src["_source_key"].map(mapping.set_index(m_src)[m_tgt]))
            means = src[unweighted].groupby(keys.to_numpy()).mean()
            for c in unweighted:
                frame[c] = frame["key"].map(means[c])
        how = level.config.describe() if hasattr(level.config, "describe") else (
            f"über die Schlüsseltabelle {level.source_name}" if level.mapping is not None
            else f"über die ersten {cfg.prefix_len} Zeichen des Schlüssels")
        how_en = level.config.describe("en") if hasattr(level.config, "describe") else (
            f"through the key table {level.source_name}" if level.mapping is not None
            else f"through the first {cfg.prefix_len} characters of the key")
        note = _totals_note(level.name, how, src, frame, count_cols, how_en=how_en)
        if note:
            notes.append(note)
        return frame[[c for c in frame.columns if not c.startswith("_basis_")]], agg
    # another polygon layer: areal interpolation onto the Sozialräume
    import geopandas as gpd

    polys = level.polygons
    with config_field(level.field):
        j = join_by_key(polys, src, left_key="_source_key", right_key="_source_key",
                        left_name=level.source_name, right_name=f"den Tabellen der Ebene '{level.name}'",
                        allow_missing_right=True)
    notes.extend(j.notes)
    if j.missing_in_right:
        notes.append(QANote(STAGE, f"Ebene '{level.name}': {len(j.missing_in_right)} Polygone ohne Tabellenzeile; "
                            "sie tragen nichts bei.",
                            message_en=f"Level '{level.name}': {len(j.missing_in_right)} polygons without a table "
                            "row; they contribute nothing.", location="Schlüssel " + ", ".join(j.missing_in_right[:10])))
    source = gpd.GeoDataFrame(j.frame, geometry="geometry", crs=polys.crs)
    intensive = [c for c in shares if c in source.columns]
    with config_field(level.field):
        res = area_interpolate(source, targets[["key", "geometry"]], extensive=count_cols, intensive=intensive,
                               weights=level.weights, weights_column=level.weights_column)
    notes.extend(res.attrs.get("notes", []))
    frame = pd.DataFrame(res.drop(columns="geometry"))
    frame.insert(0, "key", targets["key"].astype(str).to_numpy())
    note = _totals_note(level.name, level.config.describe(), source, frame, count_cols,
                        how_en=level.config.describe("en"))
    if note:
        notes.append(note)
    return frame, None


def sozialraum_indicators(
    src,
    boundaries_gdf,
    catalogue: Catalogue,
    cfg,
    *,
    levels: dict | None = None,
    mapping: pd.DataFrame | None = None,
    group_map: pd.Series | None = None,
    expo: str,
    boundaries_name: str,
    key_table_path=None,
    expo_label: str | None = None,
    excluded=(),
    merge_map: dict | None = None,
):
    """Source rows per level -> one row per Sozialraum with rates and the need index.

    ``src`` is ``{level name or None: frame}`` (``_source_key`` + geoplan
    columns; None = already on the Sozialräume) as read by
    :func:`geoplan.load.sources.read_indicator_tables`, ``levels`` the
    :class:`~geoplan.load.sources.LevelData` of each named level. A single frame
    with ``mapping``/``cfg.aggregate`` is the older form (one level for all).
    Counts (``pop_*`` and derived columns) are summed or interpolated as
    extensive, shares weighted by their base (catalogue) or by residents
    (intensive in areal interpolation); totals are checked after every step
    (QA note). Derived columns are formed on the level that has all their terms,
    else on the Sozialräume. The result must cover exactly the polygons' keys;
    rows of ``excluded`` keys (``boundaries.exclude``) are dropped with a note;
    ``merge_map`` (part key -> combined key, ``boundaries.merge``) makes key
    hierarchies sum the parts of a combined area into it.
    Returns ``(GeoDataFrame, NeedIndex, AggregateResult | None, notes)``.
    """
    import geopandas as gpd

    from geoplan.load.tables import join_by_key

    notes: list[QANote] = []
    if isinstance(src, pd.DataFrame):  # older form: one frame, cfg.aggregate for all of it
        src = {("aggregate" if cfg.aggregate is not None else None): src}
        if cfg.aggregate is not None and (levels is None or "aggregate" not in levels):
            from geoplan.load.sources import LevelData

            levels = dict(levels or {})
            levels["aggregate"] = LevelData(name="aggregate", field="indicators.aggregate", config=cfg.aggregate,
                                            mapping=mapping, group_map=group_map, key_table_path=key_table_path,
                                            source_name=getattr(key_table_path, "name", ""))
    levels = levels or {}
    derived = dict(cfg.derived)
    pending = dict(derived)
    frames = []
    aggregation = None
    for level_name, frame in src.items():
        frame = frame.copy()
        here = {n: t for n, t in pending.items() if all(c in frame.columns for c in t)}
        if here:
            frame = linear_combinations(frame, here)
            for n in here:
                pending.pop(n)
        count_cols, shares = _count_and_share_columns(frame, catalogue, derived)
        level = levels.get(level_name) if level_name is not None else None
        if level_name is not None and level is None:
            raise GeoplanError(f"Die Ebene '{level_name}' wurde nicht gelesen.", location="indicators.levels",
                               message_en=f"The level '{level_name}' was not read.")
        out, agg = _bring_onto(frame, level, boundaries_gdf, count_cols, shares, notes, merge_map=merge_map)
        aggregation = aggregation or agg
        out = out[[c for c in out.columns if not c.startswith("_basis_") and not (c == "n_sources" and frames)]]
        out["key"] = out["key"].astype(str)
        frames.append((level_name, out))
    # one row per Sozialraum key from every level
    frame = None
    for level_name, out in frames:
        if frame is None:
            frame = out
            continue
        clash = [c for c in out.columns if c != "key" and c in frame.columns]
        if clash:
            raise GeoplanError(
                f"Spalte(n) {', '.join(clash)} kommen aus Tabellen verschiedener Ebenen.",
                location="indicators.tables[].columns",
                hint="Jede geoplan-Spalte nur aus einer Tabelle lesen.",
                message_en=f"Column(s) {', '.join(clash)} come from tables of different levels.",
                hint_en="Read each geoplan column from one table only.",
            )
        frame = frame.merge(out, on="key", how="outer")
    assert frame is not None
    if pending:
        frame = linear_combinations(frame, pending)
    excluded_keys = {str(k) for k in excluded}
    if excluded_keys:
        drop = frame["key"].isin(excluded_keys)
        if drop.any():
            notes.append(QANote(STAGE, f"{int(drop.sum())} Tabellenzeile(n) ausgeschlossener Polygone "
                                "(boundaries.exclude) nicht verwendet.", level="info",
                                message_en=f"{int(drop.sum())} table row(s) of excluded polygons "
                                "(boundaries.exclude) not used.",
                                location="Schlüssel " + ", ".join(frame.loc[drop, "key"].tolist()[:10])))
            frame = frame[~drop]

    # every Sozialraum must have indicators and every indicator row a Sozialraum
    how = [levels[n].config.describe() if hasattr(levels[n].config, "describe") else
           (f"über die Schlüsseltabelle {levels[n].source_name}" if levels[n].mapping is not None
            else f"über die ersten {levels[n].config.prefix_len} Zeichen des Schlüssels")
           for n, _ in frames if n is not None and n in levels]
    right_name = f"den Indikatoren ({how[0]})" if len(frames) == 1 and how else "den Indikatortabellen"
    try:
        j = join_by_key(boundaries_gdf[["key"]], frame, left_key="key", right_key="key",
                        left_name=boundaries_name, right_name=right_name)
    except GeoplanError as err:
        # every Sozialraum needs indicators and every indicator row a polygon: no config switch for that
        err.hint = ("Polygone und Indikatoren müssen dieselben Sozialräume enthalten. Veröffentlicht die Statistik "
                    "mehrere Polygone als ein Gebiet, sie mit boundaries.merge zusammenfassen (keys, key, name); "
                    "unbewohnte Polygone ohne Tabellenzeile mit boundaries.exclude ausschließen; Summenzeilen "
                    "(z. B. 'Stadt insgesamt') mit indicators.tables[].drop_rows überspringen. Sonst fehlende "
                    "Polygone ergänzen, die Zuordnung der Ebenen (indicators.levels/aggregate) oder boundaries.key "
                    "prüfen.")
        raise
    notes.extend(j.notes)
    joined = boundaries_gdf.merge(frame, on="key", how="left", validate="one_to_one")
    if expo not in joined.columns:
        have = [c for c in joined.columns if c.startswith("pop_") or c in derived]
        raise GeoplanError(
            f"Die Bezugsbevölkerung '{expo}' (model.exposure) ist keine Spalte der Indikatoren.",
            location="Konfigurationsfeld 'model.exposure'",
            expected="eine Zählspalte aus indicators.tables[].columns oder indicators.derived",
            found=", ".join(have) or "keine Zählspalten (pop_…)",
            hint=f"In indicators.tables[].columns eine Spalte als {expo} benennen oder unter indicators.derived "
                 f"bilden, z. B. {expo}: {{pop_u6: 1, pop_6_15: 1, pop_15_18: 1}}.",
            message_en=f"The reference population '{expo}' (model.exposure) is not a column of the indicators.",
            expected_en="a count column from indicators.tables[].columns or indicators.derived",
            found_en=", ".join(have) or "no count columns (pop_…)",
            hint_en=f"Name a column {expo} in indicators.tables[].columns or build it under indicators.derived, "
                    f"e.g. {expo}: {{pop_u6: 1, pop_6_15: 1, pop_15_18: 1}}.",
        )
    bad = joined[~(joined[expo] > 0)]
    if len(bad):
        what = expo_label or expo
        raise GeoplanError(
            f"{len(bad)} Sozialraum/Sozialräume ohne {what} ({expo} ist 0 oder fehlt).",
            location="Sozialräume " + ", ".join(bad["key"].astype(str).tolist()[:10]),
            expected=f"{expo} > 0 für jeden Sozialraum",
            hint="Bevölkerungstabelle prüfen; unbewohnte Flächen (Wald, Flughafen) mit boundaries.exclude "
                 "ausschließen oder mit boundaries.merge einem Nachbarraum zuschlagen.",
            message_en=f"{len(bad)} Sozialraum/Sozialräume without a reference population ({expo} is 0 or missing).",
            expected_en=f"{expo} > 0 for every Sozialraum",
            hint_en="Check the population table; exclude uninhabited areas (forest, airport) with boundaries.exclude "
                    "or add them to a neighbouring area with boundaries.merge.",
        )
    if "bezirk" not in joined.columns or joined["bezirk"].isna().all():
        gm = group_map
        for lv in levels.values():
            if gm is None and getattr(lv, "group_map", None) is not None:
                gm = lv.group_map
        joined["bezirk"] = joined["key"].map(gm).astype(str) if gm is not None else ""

    derived_ind = derive_indicators(pd.DataFrame(joined.drop(columns="geometry")), catalogue)
    notes.extend(derived_ind.notes)
    nidx = need_index(derived_ind.frame, catalogue, method=cfg.index_method)
    notes.extend(nidx.notes)
    out = gpd.GeoDataFrame(nidx.frame, geometry=joined.geometry.values, crs=joined.crs)
    return out, nidx, aggregation, notes
