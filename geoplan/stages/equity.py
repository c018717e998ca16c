"""Verteilungsgerechtigkeit: how fairly a budget follows need.

All functions are pure: they take arrays or a Sozialraum frame and return new
numbers or frames; nothing is read or written.

Measures
--------
``concentration_index`` / ``concentration_curve``
    The budget per young person (EUR per resident under 21) ranked by need
    (O'Donnell, van Doorslaer, Wagstaff & Lindelow 2008, *Analyzing Health
    Equity Using Household Survey Data*, World Bank, ch. 7–8). Areas are
    sorted by need from lowest to highest; a positive index means that the
    budget is concentrated where need is higher, 0 that every young person
    gets the same amount whatever the need, a negative index that money goes
    to low-need areas.
``gini``
    Gini coefficient in mean-difference form (Sen 1973; PySAL
    ``inequality.gini.Gini`` for the unweighted case).
``theil`` / ``theil_decomposition``
    Theil's T (Theil 1967; Shorrocks 1980 for the decomposition) with the
    between-/within-Bezirk split (PySAL ``inequality.theil.Theil``/``TheilD``
    for the unweighted case).

PySAL's ``Gini``, ``Theil`` and ``TheilD`` take no weights. Without weights the
functions here give the same values (tested to 1e-12); with weights (the
residents under 21 of each area) every young person counts once, which is the
fairness question of a council: "does each child in a high-need area get more
than a child in a low-need area?". With integer weights the weighted value
equals the unweighted value on data where each area is repeated ``w`` times.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from geoplan.errors import GeoplanError, QANote

__all__ = [
    "EquityResult",
    "concentration_curve",
    "concentration_index",
    "equity_measures",
    "fractional_rank",
    "gini",
    "theil",
    "theil_decomposition",
    "years_to_close",
    "ConvergencePath",
    "convergence_path",
]

# Changes smaller than half a euro are rounding, not a decision.
_UNCHANGED_EUR = 0.5


# --------------------------------------------------------------------------
# input helpers
# --------------------------------------------------------------------------
def _vector(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float).ravel()
    if arr.size == 0:
        raise GeoplanError(
            f"Keine Werte für '{name}'.",
            location=name,
            expected="mindestens ein Sozialraum",
            found="0 Werte",
            message_en=f"No values for '{name}'.", expected_en="at least one Sozialraum", found_en="0 values",
        )
    if not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise GeoplanError(
            f"Fehlender oder ungültiger Wert in '{name}'.",
            location=f"{name}, Position {bad}",
            expected="endliche Zahl",
            found=str(arr[bad]),
            hint="Fehlende Werte in den Eingangsdaten ergänzen.",
            message_en=f"Missing or invalid value in '{name}'.", location_en=f"{name}, position {bad}",
            expected_en="a finite number", hint_en="Fill in the missing values in the input data.",
        )
    return arr


def _weights(weights, n: int, name: str = "weights") -> np.ndarray:
    if weights is None:
        return np.ones(n)
    w = _vector(weights, name)
    if w.size != n:
        raise GeoplanError(
            f"'{name}' hat eine andere Länge als die Werte.",
            location=name,
            expected=f"{n} Gewichte",
            found=f"{w.size} Gewichte",
            message_en=f"'{name}' has a different length than the values.", expected_en=f"{n} weights",
            found_en=f"{w.size} weights",
        )
    if np.any(w < 0) or w.sum() <= 0:
        raise GeoplanError(
            f"Gewichte in '{name}' müssen ≥ 0 sein und eine positive Summe haben.",
            location=name,
            expected="Einwohnerzahlen ≥ 0",
            found=f"Minimum {w.min():g}, Summe {w.sum():g}",
            message_en=f"Weights in '{name}' must be ≥ 0 with a positive sum.", expected_en="population counts ≥ 0",
            found_en=f"minimum {w.min():g}, sum {w.sum():g}",
        )
    return w


def _nonnegative(x: np.ndarray, name: str) -> None:
    if np.any(x < 0) or x.sum() <= 0:
        raise GeoplanError(
            f"Ungleichheitsmaße brauchen Werte ≥ 0 mit positiver Summe ('{name}').",
            location=name,
            expected="Werte ≥ 0, Summe > 0",
            found=f"Minimum {x.min():g}, Summe {x.sum():g}",
            message_en=f"Inequality measures need values ≥ 0 with a positive sum ('{name}').",
            expected_en="values ≥ 0, sum > 0", found_en=f"minimum {x.min():g}, sum {x.sum():g}",
        )


# --------------------------------------------------------------------------
# concentration index and curve
# --------------------------------------------------------------------------
def fractional_rank(rank_by, weights=None) -> np.ndarray:
    """Weighted fractional rank in (0, 1) of each observation by ``rank_by``.

    R_i = (Σ_{j ranked before i} w_j + w_i / 2) / Σ w   (O'Donnell et al. 2008,
    eq. 8.7), i.e. the cumulative population share up to the midpoint of area
    i. Ties in ``rank_by`` get the mean rank of their tied block, i.e. the
    midpoint of the block, so the result does not depend on row order.
    """
    r = _vector(rank_by, "rank_by")
    w = _weights(weights, r.size)
    total = w.sum()
    order = np.argsort(r, kind="mergesort")
    cum_before = np.concatenate([[0.0], np.cumsum(w[order])[:-1]])
    rank = np.empty(r.size)
    rank[order] = (cum_before + w[order] / 2.0) / total
    # tie blocks: midpoint of the block's population span
    _, inverse = np.unique(r, return_inverse=True)
    for block in np.flatnonzero(np.bincount(inverse) > 1):
        members = inverse == block
        start = cum_before[np.searchsorted(r[order], r[members][0], side="left")]
        rank[members] = (start + w[members].sum() / 2.0) / total
    return rank


def concentration_index(values, rank_by, weights=None) -> float:
    """Concentration index C of ``values`` ranked by ``rank_by``.

    C = 2 · cov_w(y, R) / μ_w(y)
    with y the value per person (here: budget EUR per resident under 21),
    R the weighted fractional rank by need (:func:`fractional_rank`),
    weights w the persons (residents under 21), μ_w the weighted mean and
    cov_w(y, R) = Σ w_i (y_i − μ_w)(R_i − R̄) / Σ w_i (O'Donnell et al. 2008,
    ch. 8, eq. 8.7; Kakwani, Wagstaff & van Doorslaer 1997). C lies in
    (−1, 1); it equals 1 − 2·(area under the concentration curve) when there
    are no ties in ``rank_by``. Positive: the budget is concentrated where
    need is higher. ``values`` must be ≥ 0 with a positive weighted mean.
    """
    y = _vector(values, "values")
    w = _weights(weights, y.size)
    if _vector(rank_by, "rank_by").size != y.size:
        raise GeoplanError(
            "'rank_by' hat eine andere Länge als die Werte.",
            location="rank_by",
            expected=f"{y.size} Werte",
            found=f"{np.asarray(rank_by).size} Werte",
            message_en="'rank_by' has a different length than the values.", expected_en=f"{y.size} values",
            found_en=f"{np.asarray(rank_by).size} values",
        )
    _nonnegative(y * (w > 0), "values")
    rank = fractional_rank(rank_by, w)
    total = w.sum()
    mu = float((w * y).sum() / total)
    r_bar = float((w * rank).sum() / total)  # = 1/2 by construction
    cov = float((w * (y - mu) * (rank - r_bar)).sum() / total)
    return 2.0 * cov / mu


def concentration_curve(values, rank_by, weights=None, *, keys=None) -> pd.DataFrame:
    """Concentration curve: cumulative population share vs cumulative budget share.

    Areas are sorted by ``rank_by`` (need) ascending, ties by the order of
    ``keys`` (or position) so the curve is deterministic. The first row is the
    origin (0, 0), the last (1, 1). Columns: ``key`` (None on the origin),
    ``rank_by``, ``pop_share_cum`` (cumulative share of the weights, e.g.
    residents under 21) and ``budget_share_cum`` (cumulative share of
    values × weights, e.g. EUR). A curve above the diagonal means the budget
    is concentrated in low-need areas, below it in high-need areas
    (O'Donnell et al. 2008, ch. 7).
    """
    y = _vector(values, "values")
    r = _vector(rank_by, "rank_by")
    w = _weights(weights, y.size)
    if r.size != y.size:
        raise GeoplanError(
            "'rank_by' hat eine andere Länge als die Werte.",
            location="rank_by",
            expected=f"{y.size} Werte",
            found=f"{r.size} Werte",
            message_en="'rank_by' has a different length than the values.", expected_en=f"{y.size} values",
            found_en=f"{r.size} values",
        )
    keys_arr = np.arange(y.size) if keys is None else np.asarray(list(keys), dtype=object)
    tiebreak = pd.Series(keys_arr).astype(str).to_numpy()
    order = np.lexsort((tiebreak, r))
    mass = (y * w)[order]
    pop = w[order]
    return pd.DataFrame(
        {
            "key": pd.Series([None] + list(keys_arr[order]), dtype=object),
            "rank_by": np.concatenate([[np.nan], r[order]]),
            "pop_share_cum": np.concatenate([[0.0], np.cumsum(pop) / pop.sum()]),
            "budget_share_cum": np.concatenate([[0.0], np.cumsum(mass) / mass.sum()]),
        }
    )


# --------------------------------------------------------------------------
# Gini and Theil
# --------------------------------------------------------------------------
def gini(x, weights=None) -> float:
    """Gini coefficient of ``x`` (e.g. EUR per resident under 21).

    G = Σ_i Σ_j w_i w_j |x_i − x_j| / (2 · W² · μ_w),  W = Σ w,  μ_w = Σ w x / W.
    Without weights this is PySAL's ``inequality.gini.Gini`` (mean-difference
    form, n² in the denominator). Computed in O(n log n) over the sorted values:
    Σ_i Σ_j w_i w_j |x_i − x_j| = 2 Σ_i w_i x_i (2·C_i − w_i − W) with C_i the
    cumulative weight up to and including i in ascending order.
    """
    v = _vector(x, "x")
    w = _weights(weights, v.size)
    _nonnegative(v * (w > 0), "x")
    order = np.argsort(v, kind="mergesort")
    v, w = v[order], w[order]
    total = w.sum()
    cum = np.cumsum(w)
    abs_diff_sum = 2.0 * float((w * v * (2.0 * cum - w - total)).sum())
    mu = float((w * v).sum() / total)
    return float(abs_diff_sum / (2.0 * float(total) ** 2 * mu))


def theil(x, weights=None) -> float:
    """Theil's T of ``x`` (e.g. EUR per resident under 21).

    T = Σ_i (w_i / W) · (x_i / μ_w) · ln(x_i / μ_w), with 0 · ln 0 = 0
    (Theil 1967). Without weights equal to PySAL ``inequality.theil.Theil``
    (which writes it as Σ s_i ln(n s_i), s_i = x_i / Σ x).
    """
    v = _vector(x, "x")
    w = _weights(weights, v.size)
    _nonnegative(v * (w > 0), "x")
    return _theil(v, w)


def _theil(v: np.ndarray, w: np.ndarray) -> float:
    total = w.sum()
    mu = (w * v).sum() / total
    rel = v / mu
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(rel > 0, rel * np.log(rel), 0.0)
    return float((w * terms).sum() / total)


def theil_decomposition(x, groups, weights=None) -> dict:
    """Theil's T split into between- and within-group parts (Shorrocks 1980).

    between = Σ_g (W_g/W)(μ_g/μ) ln(μ_g/μ);
    within  = Σ_g (W_g μ_g / (W μ)) · T_g, with T_g the Theil of group g;
    total = between + within exactly (the within part is computed directly,
    not as a residual, and the identity is checked to 1e-9).
    Without weights equal to PySAL ``inequality.theil.TheilD`` (``bg``, ``wg``).
    Returns ``{"total", "between", "within", "groups": DataFrame}`` with one
    row per group: ``group``, ``weight_share``, ``mean``, ``theil``,
    ``within_contribution``.
    """
    v = _vector(x, "x")
    w = _weights(weights, v.size)
    _nonnegative(v * (w > 0), "x")
    g = np.asarray(list(groups), dtype=object)
    if g.size != v.size:
        raise GeoplanError(
            "Die Gruppen (Bezirke) haben eine andere Länge als die Werte.",
            location="groups",
            expected=f"{v.size} Einträge",
            found=f"{g.size} Einträge",
            message_en="The groups (districts) have a different length than the values.",
            expected_en=f"{v.size} entries",
            found_en=f"{g.size} entries",
        )
    if pd.isna(pd.Series(g)).any():
        raise GeoplanError(
            "Fehlende Gruppe (Bezirk) für die Theil-Zerlegung.",
            location="groups",
            expected="ein Bezirk für jeden Sozialraum",
            found="leerer Eintrag",
            hint="Spalte 'bezirk' vollständig füllen.",
            message_en="Missing group (district) for the Theil decomposition.",
            expected_en="a district for every Sozialraum", found_en="empty entry",
            hint_en="Fill the column 'bezirk' completely.",
        )
    total_w = w.sum()
    mu = (w * v).sum() / total_w
    total = _theil(v, w)
    rows = []
    between = 0.0
    within = 0.0
    for label in sorted(pd.unique(g), key=str):
        m = g == label
        wg = w[m].sum()
        if wg <= 0:
            continue
        mu_g = (w[m] * v[m]).sum() / wg
        t_g = _theil(v[m], w[m]) if mu_g > 0 else 0.0
        share = wg / total_w
        if mu_g > 0:
            between += share * (mu_g / mu) * math.log(mu_g / mu)
        contrib = share * (mu_g / mu) * t_g
        within += contrib
        rows.append(
            {"group": label, "weight_share": share, "mean": mu_g, "theil": t_g, "within_contribution": contrib}
        )
    if abs(between + within - total) > 1e-9 * max(1.0, abs(total)):  # pragma: no cover - identity
        raise AssertionError("Theil decomposition does not add up")
    return {"total": total, "between": float(between), "within": float(within), "groups": pd.DataFrame(rows)}


# --------------------------------------------------------------------------
# distance to target and corridor
# --------------------------------------------------------------------------
def years_to_close(current, target, corridor_pct: float) -> float:
    """Budget years a corridor of ±``corridor_pct`` % per year needs to reach ``target``.

    Each year the allocation may move at most ``corridor_pct`` % from the
    previous year's allocation (the same rule as the corridor in
    ``geoplan.stages.allocate``, reference = prior year). Starting from ``current``
    (EUR) the smallest n with current·(1 + p)^n ≥ target (increase) or
    current·(1 − p)^n ≤ target (decrease) is

        n = ceil( ln(target / current) / ln(1 ± p) ),  p = corridor_pct / 100.

    0 when the gap is below half a euro (already there). ``inf`` when the
    target cannot be reached by a multiplicative corridor: current = 0 and
    target > 0, target = 0 with current > 0, or p = 0 with a gap; a decrease
    corridor of 100 % reaches any lower target in one year. A relative
    tolerance of 1e-9 on the quotient avoids counting one year too many from
    floating-point noise (e.g. 1.1² = 1.2100000000000002).
    """
    current = float(current)
    target = float(target)
    if not (math.isfinite(current) and math.isfinite(target)) or current < 0 or target < 0:
        raise GeoplanError(
            "Ist- und Zielwert für den Korridor müssen Beträge ≥ 0 sein.",
            location="years_to_close",
            expected="EUR ≥ 0",
            found=f"Ist {current}, Ziel {target}",
            message_en="Current and target amount for the corridor must be amounts ≥ 0.",
            found_en=f"current {current}, target {target}",
        )
    if corridor_pct is None or not math.isfinite(corridor_pct) or corridor_pct < 0:
        raise GeoplanError(
            "Der Korridor muss ein Prozentwert ≥ 0 sein.",
            location="corridor_pct",
            expected="z. B. 5 für ±5 % je Jahr",
            found=str(corridor_pct),
            message_en="The corridor must be a percentage ≥ 0.", expected_en="e.g. 5 for ±5% per year",
        )
    if abs(target - current) < _UNCHANGED_EUR:
        return 0.0
    p = corridor_pct / 100.0
    if p == 0 or current == 0:
        return math.inf
    if target > current:
        n = math.log(target / current) / math.log1p(p)
    else:
        if target == 0:
            return math.inf if p < 1 else 1.0
        if p >= 1:
            return 1.0
        n = math.log(target / current) / math.log1p(-p)
    return float(max(1, math.ceil(n - 1e-9)))


@dataclass
class ConvergencePath:
    """The allocation year after year under the real corridor (constant target and total).

    path : ``key`` plus ``jahr_<n>`` (budget of year n, in the allocation's unit); year 1 is this
        run's allocation, year n+1 the corridor solver applied with year n as the reference.
    within : one row per year: ``year``, ``n_within`` (areas within ``tolerance_pct`` % of their
        target), ``share_within``.
    first_year : per area (input order) the first year it is within the tolerance; NaN = never
        within ``max_years`` (the rules hold it away from its target).
    never : keys of the areas that never get there.
    years_until_all : the year in which the last area gets there (None if some never do).
    """

    path: pd.DataFrame
    within: pd.DataFrame
    first_year: np.ndarray
    never: list[str]
    years_until_all: int | None
    tolerance_pct: float
    max_years: int


def _within(budget: np.ndarray, target: np.ndarray, tolerance_pct: float) -> np.ndarray:
    return np.abs(budget - target) <= tolerance_pct / 100.0 * np.abs(target) + _UNCHANGED_EUR


def convergence_path(
    frame: pd.DataFrame,
    corridor,
    *,
    target,
    first_year,
    tolerance_pct: float = 1.0,
    max_years: int = 30,
    key: str = "key",
) -> ConvergencePath:
    """Apply the corridor solver of :mod:`geoplan.stages.allocate` year after year.

    ``corridor`` is the :class:`~geoplan.stages.allocate.Corridor` of the run; ``frame`` holds its
    reference, floor and cap columns. ``target`` is the formula amount per area (before the
    corridor), ``first_year`` this year's allocation (which the same solver produced from the
    prior-year reference). Each later year the corridor's reference is the previous year's budget,
    the target and the total stay the same (the NHS way of reading "distance from target" and "pace
    of change"). The path stops when every area is within ``tolerance_pct`` % of its target, when it
    no longer moves, or after ``max_years``.
    """
    from geoplan.stages.allocate import corridor_bounds, solve_corridor

    tgt = np.asarray(target, dtype=float)
    b = np.asarray(first_year, dtype=np.int64)
    total = int(b.sum())
    keys = frame[key].astype(str).to_numpy() if key in frame.columns else np.arange(len(b)).astype(str)
    work = frame.reset_index(drop=True).copy()
    years = {1: b}
    first = np.where(_within(b, tgt, tolerance_pct), 1.0, np.nan)
    for year in range(2, max_years + 1):
        if np.isfinite(first).all():
            break
        work[corridor.reference_column] = years[year - 1].astype(float)
        lo, hi, _, _ = corridor_bounds(work, corridor, 1)
        try:
            nxt = solve_corridor(tgt, lo, hi, total)
        except GeoplanError:  # the rules cannot be met any more: the path ends here
            break
        if np.array_equal(nxt, years[year - 1]):
            break
        years[year] = nxt
        newly = np.isnan(first) & _within(nxt, tgt, tolerance_pct)
        first[newly] = year
    path = pd.DataFrame({key: keys, **{f"jahr_{y}": v for y, v in years.items()}})
    ys = sorted(years)
    within = pd.DataFrame({"year": ys, "n_within": [int((first <= y).sum()) for y in ys]})
    within["share_within"] = within["n_within"] / max(len(b), 1)
    never = [str(k) for k in keys[np.isnan(first)]]
    return ConvergencePath(path=path, within=within, first_year=first, never=never,
                           years_until_all=None if never else int(np.nanmax(first)) if len(first) else 0,
                           tolerance_pct=float(tolerance_pct), max_years=int(max_years))


# --------------------------------------------------------------------------
# all measures for a Sozialraum frame
# --------------------------------------------------------------------------
@dataclass
class EquityResult:
    """Result of :func:`equity_measures`.

    per_area : one row per Sozialraum (input order) with
        ``key``, ``name``/``bezirk`` when present,
        ``budget_eur`` (EUR), ``pop_u21`` (persons),
        ``budget_per_u21`` (EUR per resident under 21),
        ``need_index`` (z), ``expected_cases`` (cases),
        ``expected_per_1000`` (expected cases per 1,000 under 21),
        ``budget_share`` (share of the total budget), ``need_share`` (share of
        all expected cases), ``ratio`` (budget_share / need_share; 1 = money
        follows expected demand), ``prior_eur`` (prior-year costs, EUR),
        ``change_eur`` (budget − prior, EUR), ``change_pct`` (% of prior),
        ``direction`` ("Gewinn"/"Verlust"/"unverändert"),
        ``target_eur`` (formula target, EUR), ``distance_to_target_eur``
        (target − prior, EUR; positive = the area is below its target),
        ``years_to_target`` (first year of the convergence path within
        ``tolerance_pct`` % of the target; NaN without corridor or never), and with observed cases
        ``observed_cases`` (cases), ``observed_per_1000`` and
        ``observed_expected_ratio``. Observed cases are small counts: pass
        the frame through :func:`geoplan.privacy.suppress_counts` before
        publishing it.
    summary : dict with ``concentration_index`` (population-weighted,
        ranked by need), ``gini_budget_per_u21`` / ``theil`` /
        ``theil_between`` / ``theil_within`` (population-weighted),
        ``gini_budget_per_u21_areas`` / ``theil_areas`` /
        ``theil_between_areas`` / ``theil_within_areas`` (unweighted, each
        Sozialraum counts once, = PySAL), ``n_areas``, ``n_winners``,
        ``n_losers``, ``n_unchanged``, ``total_budget_eur``,
        ``total_prior_eur``, ``total_change_eur``,
        ``total_distance_to_target_eur`` (Σ target − Σ prior),
        ``sum_abs_distance_to_target_eur`` (Σ |target − prior|, EUR that would
        have to move), ``target_tolerance_pct``, ``n_at_target_year1``,
        ``years_until_all_at_target`` (None if some never get there),
        ``n_never_at_target``, ``never_at_target`` (keys),
        ``convergence`` ([year, areas within the tolerance] pairs), ``corridor_pct``,
        ``corr_budget_per_u21_need`` (Pearson), ``spearman_budget_per_u21_need``,
        and with observed cases ``total_observed_cases`` and
        ``observed_expected_total`` (Σ observed / Σ expected). All values
        are plain Python numbers (JSON-ready) or None.
    curve : the concentration curve (:func:`concentration_curve`) with an
        extra column ``need_share_cum`` (cumulative share of expected cases
        in the same order), for plotting the budget against demand.
    theil_groups : per-Bezirk table of the weighted decomposition.
    notes : QA notes.
    """

    per_area: pd.DataFrame
    summary: dict
    curve: pd.DataFrame
    theil_groups: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[QANote] = field(default_factory=list)
    convergence: ConvergencePath | None = None


_WHAT_EN = {"Budget": "budget", "Einwohner unter 21": "residents under 21", "Bedarfsindex": "need index",
            "erwartete Fälle": "expected cases", "Zielwert der Formel": "target of the formula",
            "Korridor-Anpassung": "corridor adjustment", "Vorjahreskosten": "prior-year costs",
            "beobachtete Fälle": "observed cases"}


def _require(frame: pd.DataFrame, column: str, what: str, *, signed: bool = False) -> pd.Series:
    if column not in frame.columns:
        raise GeoplanError(
            f"Spalte '{column}' ({what}) fehlt im Sozialraum-Datensatz.",
            location=f"Spalte '{column}'",
            expected=f"Spalte '{column}'",
            found=", ".join(map(str, frame.columns[:20])),
            hint="Spaltennamen in der Konfiguration prüfen (siehe docs/architecture.md).",
            message_en=f"Column '{column}' ({_WHAT_EN.get(what, what)}) is missing in the Sozialraum data.",
            expected_en=f"column '{column}'",
            hint_en="Check the column names in the configuration (see docs/architecture.md).",
        )
    s = pd.to_numeric(frame[column], errors="coerce")
    if s.isna().any():
        i = int(np.flatnonzero(s.isna().to_numpy())[0])
        key = frame["key"].iloc[i] if "key" in frame.columns else i
        raise GeoplanError(
            f"Fehlender oder nicht numerischer Wert in '{column}' ({what}).",
            location=f"Sozialraum {key}, Spalte '{column}'",
            expected="Zahl",
            found=repr(frame[column].iloc[i]),
            message_en=f"Missing or non-numeric value in '{column}' ({_WHAT_EN.get(what, what)}).",
            location_en=f"Sozialraum {key}, column '{column}'", expected_en="a number",
        )
    if not signed and (s < 0).any():
        i = int(np.flatnonzero((s < 0).to_numpy())[0])
        key = frame["key"].iloc[i] if "key" in frame.columns else i
        raise GeoplanError(
            f"Negativer Wert in '{column}' ({what}).",
            location=f"Sozialraum {key}, Spalte '{column}'",
            expected="Wert ≥ 0",
            found=str(s.iloc[i]), message_en=f"Negative value in '{column}' ({_WHAT_EN.get(what, what)}).",
            location_en=f"Sozialraum {key}, column '{column}'", expected_en="value ≥ 0",
        )
    return s.astype(float)


def equity_measures(
    frame: pd.DataFrame,
    *,
    budget: str = "budget_eur",
    population: str = "pop_u21",
    need: str = "need_index",
    expected: str = "expected_cases",
    prior: str | None = "hze_cost_prev_eur",
    group: str | None = "bezirk",
    corridor_pct: float | None = None,
    target: str | None = None,
    observed: str | None = "hze_cases",
    corridor=None,
    tolerance_pct: float = 1.0,
) -> EquityResult:
    """Verteilungsgerechtigkeit measures for one allocation.

    Parameters
    ----------
    frame : Sozialraum frame (one row per area, standard column names).
    budget : allocated budget column (EUR).
    population : residents under 21 (persons); the weight of every
        per-person measure.
    need : need index (z) used to rank areas for the concentration index.
    expected : expected HzE cases of the need model (cases).
    prior : prior-year actual HzE costs (EUR); ``None`` or a missing column
        skips winners/losers and distance to target (with a QA note).
    group : higher-level district for the Theil decomposition (``bezirk``);
        ``None`` or a missing column skips it.
    corridor_pct : ±x % per year allowed change (shorthand for ``corridor``).
    corridor : the run's :class:`~geoplan.stages.allocate.Corridor`; gives the convergence path
        (:func:`convergence_path`): ``years_to_target`` per area and the ``convergence`` counts.
    tolerance_pct : an area counts as at its target within ± this % of the target.
    target : the formula's target per area (EUR) before any corridor. By
        default the ``budget`` column; if the frame holds ``eur_korridor``
        (the corridor's change from ``geoplan.stages.allocate``) the target is
        ``budget − eur_korridor``.
    observed : observed HzE cases (cases), optional.

    Areas without residents under 21 have no budget per young person; they
    are left out of the per-person measures (weight 0) with a QA note.
    """
    if not isinstance(frame, pd.DataFrame) or len(frame) == 0:
        raise GeoplanError(
            "Leerer Sozialraum-Datensatz für die Verteilungsgerechtigkeit.",
            expected="mindestens ein Sozialraum",
            found="keine Zeilen", message_en="Empty Sozialraum data for the distributive-fairness measures.",
            expected_en="at least one Sozialraum", found_en="no rows",
        )
    notes: list[QANote] = []
    b = _require(frame, budget, "Budget")
    pop = _require(frame, population, "Einwohner unter 21")
    nd = _require(frame, need, "Bedarfsindex", signed=True)
    ex = _require(frame, expected, "erwartete Fälle")
    keys = frame["key"].astype(str).to_numpy() if "key" in frame.columns else np.arange(len(frame)).astype(str)

    has_pop = pop.to_numpy() > 0
    if not has_pop.all():
        missing = [str(k) for k in keys[~has_pop]]
        notes.append(
            QANote(
                stage="equity",
                level="info",
                message=(
                    f"{len(missing)} Sozialräume ohne Einwohner unter 21 gehen nicht in die "
                    "Maße je jungem Menschen ein."
                ),
                message_en=(
                    f"{len(missing)} Sozialräume without residents under 21 are left out of the measures per "
                    "young person."
                ),
                location=", ".join(missing[:20]),
            )
        )
    if not has_pop.any():
        raise GeoplanError(
            "Kein Sozialraum hat Einwohner unter 21.",
            location=f"Spalte '{population}'",
            expected="Einwohnerzahlen > 0",
            found="alle 0",
            message_en="No Sozialraum has residents under 21.", expected_en="population counts > 0", found_en="all 0",
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        per_u21 = np.where(has_pop, b.to_numpy() / pop.to_numpy(), np.nan)
        exp_per_1000 = np.where(has_pop, ex.to_numpy() / pop.to_numpy() * 1000.0, np.nan)
    total_budget = float(b.sum())
    total_expected = float(ex.sum())
    out = pd.DataFrame({"key": frame["key"].to_numpy() if "key" in frame.columns else keys})
    for col in ("name", "bezirk"):
        if col in frame.columns:
            out[col] = frame[col].to_numpy()
    if group and group in frame.columns and group not in out.columns:
        out[group] = frame[group].to_numpy()
    out["budget_eur"] = frame[budget].to_numpy()
    out["pop_u21"] = frame[population].to_numpy()
    out["budget_per_u21"] = per_u21
    out["need_index"] = nd.to_numpy()
    out["expected_cases"] = ex.to_numpy()
    out["expected_per_1000"] = exp_per_1000
    out["budget_share"] = b.to_numpy() / total_budget if total_budget > 0 else np.nan
    out["need_share"] = ex.to_numpy() / total_expected if total_expected > 0 else np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        out["ratio"] = np.where(out["need_share"] > 0, out["budget_share"] / out["need_share"], np.nan)

    # target of the formula (before the corridor)
    if target is not None:
        tgt = _require(frame, target, "Zielwert der Formel")
    elif "eur_korridor" in frame.columns:
        tgt = b - _require(frame, "eur_korridor", "Korridor-Anpassung", signed=True)
        notes.append(
            QANote(
                stage="equity",
                level="info",
                message="Zielwert je Sozialraum = Budget − Korridor-Anpassung (Spalte 'eur_korridor').",
                message_en="Target per Sozialraum = budget − corridor adjustment (column 'eur_korridor').",
            )
        )
    else:
        tgt = b
    out["target_eur"] = tgt.to_numpy()

    summary: dict = {"n_areas": int(len(frame)), "total_budget_eur": total_budget, "corridor_pct": corridor_pct}
    if prior and prior in frame.columns:
        pr = _require(frame, prior, "Vorjahreskosten")
        change = b - pr
        out["prior_eur"] = pr.to_numpy()
        out["change_eur"] = change.to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            out["change_pct"] = np.where(pr.to_numpy() > 0, change.to_numpy() / pr.to_numpy() * 100.0, np.nan)
        direction = np.where(
            change.to_numpy() >= _UNCHANGED_EUR,
            "Gewinn",
            np.where(change.to_numpy() <= -_UNCHANGED_EUR, "Verlust", "unverändert"),
        )
        out["direction"] = direction
        dist = tgt - pr
        out["distance_to_target_eur"] = dist.to_numpy()
        if corridor is None and corridor_pct is not None:
            from geoplan.stages.allocate import Corridor

            corridor = Corridor(max_change_pct=corridor_pct, reference_column=prior)
        if corridor is not None:
            conv = convergence_path(
                frame.assign(**{corridor.reference_column: pr.to_numpy()}) if corridor.reference_column == prior else frame,
                corridor, target=tgt.to_numpy(), first_year=np.floor(b.to_numpy() + 0.5),
                tolerance_pct=tolerance_pct, key="key" if "key" in frame.columns else "__none__")
            out["years_to_target"] = conv.first_year
            summary.update(
                target_tolerance_pct=float(tolerance_pct),
                n_at_target_year1=int((conv.first_year == 1).sum()),
                years_until_all_at_target=conv.years_until_all,
                n_never_at_target=len(conv.never),
                never_at_target=list(conv.never),
                convergence=[[int(y), int(n)] for y, n in zip(conv.within["year"], conv.within["n_within"])],
            )
            if conv.never:
                names = frame["name"].astype(str).to_numpy() if "name" in frame.columns else keys
                never_names = [str(n) for k, n in zip(keys, names) if k in set(conv.never)]
                summary["never_at_target_names"] = never_names
                notes.append(
                    QANote(
                        stage="equity",
                        message=(
                            f"{len(conv.never)} Sozialräume erreichen ihren Zielwert unter den Korridorregeln nie "
                            f"(auch nach {conv.max_years} Jahren nicht auf ±{tolerance_pct:g} % genau)."
                        ),
                        message_en=(
                            f"{len(conv.never)} Sozialräume never reach their target under the corridor rules "
                            f"(not within ±{tolerance_pct:g}% even after {conv.max_years} years)."
                        ),
                        location=", ".join(never_names[:20]),
                    )
                )
        else:
            out["years_to_target"] = np.nan
            conv = None
            summary.update(target_tolerance_pct=None, n_at_target_year1=None, years_until_all_at_target=None,
                           n_never_at_target=None, never_at_target=None, convergence=None)
        summary.update(
            n_winners=int((direction == "Gewinn").sum()),
            n_losers=int((direction == "Verlust").sum()),
            n_unchanged=int((direction == "unverändert").sum()),
            total_prior_eur=float(pr.sum()),
            total_change_eur=float(change.sum()),
            total_distance_to_target_eur=float(dist.sum()),
            sum_abs_distance_to_target_eur=float(dist.abs().sum()),
        )
    else:
        notes.append(
            QANote(
                stage="equity",
                level="info",
                message="Keine Vorjahreskosten: Gewinner/Verlierer und Abstand zum Zielwert entfallen.",
                message_en="No prior-year costs: winners/losers and distance from target are left out.",
                location=f"Spalte '{prior}'" if prior else None,
            )
        )
        conv = None
        for col in ("prior_eur", "change_eur", "change_pct", "distance_to_target_eur", "years_to_target"):
            out[col] = np.nan
        out["direction"] = None
        summary.update(
            n_winners=None,
            n_losers=None,
            n_unchanged=None,
            total_prior_eur=None,
            total_change_eur=None,
            total_distance_to_target_eur=None,
            sum_abs_distance_to_target_eur=None,
            target_tolerance_pct=None,
            n_at_target_year1=None,
            years_until_all_at_target=None,
            n_never_at_target=None,
            never_at_target=None,
            convergence=None,
        )

    if observed and observed in frame.columns:
        obs = _require(frame, observed, "beobachtete Fälle")
        out["observed_cases"] = frame[observed].to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            out["observed_per_1000"] = np.where(has_pop, obs.to_numpy() / pop.to_numpy() * 1000.0, np.nan)
            out["observed_expected_ratio"] = np.where(ex.to_numpy() > 0, obs.to_numpy() / ex.to_numpy(), np.nan)
        summary["total_observed_cases"] = float(obs.sum())
        summary["observed_expected_total"] = float(obs.sum() / total_expected) if total_expected > 0 else None

    # per-person measures over areas with residents under 21
    y = per_u21[has_pop]
    w = pop.to_numpy()[has_pop]
    r = nd.to_numpy()[has_pop]
    summary["concentration_index"] = concentration_index(y, r, w)
    summary["gini_budget_per_u21"] = gini(y, w)
    summary["gini_budget_per_u21_areas"] = gini(y)
    summary["theil"] = theil(y, w)
    summary["theil_areas"] = theil(y)
    theil_groups = pd.DataFrame()
    # a district split needs districts: a column of empty strings (no boundaries.group) or a
    # single district is no decomposition, and the report must not claim one
    gcol = frame[group].astype("string").str.strip().replace("", pd.NA) if group and group in frame.columns else None
    if gcol is not None and gcol.notna().all() and gcol.nunique() > 1:
        g = gcol.to_numpy(dtype=object)[has_pop]
        dec_w = theil_decomposition(y, g, w)
        dec_u = theil_decomposition(y, g)
        summary.update(
            theil_between=dec_w["between"],
            theil_within=dec_w["within"],
            theil_between_areas=dec_u["between"],
            theil_within_areas=dec_u["within"],
        )
        theil_groups = dec_w["groups"]
    else:
        summary.update(theil_between=None, theil_within=None, theil_between_areas=None, theil_within_areas=None)
    if y.size > 1 and np.std(y) > 0 and np.std(r) > 0:
        summary["corr_budget_per_u21_need"] = float(np.corrcoef(y, r)[0, 1])
        summary["spearman_budget_per_u21_need"] = float(
            pd.Series(y).rank().corr(pd.Series(r).rank())
        )
    else:
        summary["corr_budget_per_u21_need"] = None
        summary["spearman_budget_per_u21_need"] = None

    curve = concentration_curve(y, r, w, keys=keys[has_pop])
    # same order as the curve (need ascending, ties by key)
    exp_sorted = ex.to_numpy()[has_pop][np.lexsort((keys[has_pop], r))]
    curve["need_share_cum"] = np.concatenate(
        [[0.0], np.cumsum(exp_sorted) / exp_sorted.sum() if exp_sorted.sum() > 0 else np.full(exp_sorted.size, np.nan)]
    )
    return EquityResult(per_area=out, summary=summary, curve=curve, theil_groups=theil_groups, notes=notes,
                        convergence=conv)
