"""Uncertainty of need carried into euros.

The need model (BYM2, :mod:`geoplan.stages.model.bym2`) gives posterior draws
of the expected cases per Sozialraum. Each draw is put through the budget
formula — the same shares and weights as the point allocation, vectorised as
in the sensitivity analysis (:func:`geoplan.stages.sensitivity.formula_draws`)
— so every draw gives a *need-based target* per Sozialraum: the amount the
formula would assign if that draw were the true expected demand. Per
Sozialraum this module reports the 90 % interval of that target (EUR) and the
probability that the budget actually set lies below it
(„Wahrscheinlichkeit, dass das Budget unter dem Bedarf liegt“).

The target is the formula before the corridor (as ``target_eur`` in
:mod:`geoplan.stages.equity`); the budget compared with it is the allocation's
``budget_eur`` (after corridor and rounding) unless another budget is given —
e.g. the current year's budget when the question is "is what we spend now
enough?". Where the formula distributes all money by the model component and
no corridor binds, the budget is the target at the posterior mean and the
probability is near 50 %: an honest "we do not know whether it is too little
or too much". Components that do not depend on the model (population,
indicators, prior year) carry no model uncertainty, so the interval narrows
with the model's weight.

Quantiles are empirical (inverted CDF, the ⌈p·S⌉-th smallest of S draws),
rounded to whole EUR.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from geoplan.errors import GeoplanError, QANote

from geoplan.stages.allocate import AllocationResult, AllocationSpec, parse_spec
from geoplan.stages.sensitivity import formula_draws

__all__ = ["BudgetUncertainty", "budget_uncertainty"]

STAGE = "unsicherheit"


@dataclass
class BudgetUncertainty:
    """Result of :func:`budget_uncertainty`.

    table : one row per Sozialraum (frame order): ``key`` (and ``name`` when
        known), ``budget_eur`` (the budget compared), ``target_eur`` (formula
        target at the posterior mean of expected cases, EUR), ``target_q05_eur``
        / ``target_q50_eur`` / ``target_q95_eur`` (90 % interval and median of the
        need-based target over draws, whole EUR), ``target_range_pct``
        ((q95 − q05) / target × 100), ``p_budget_below_need`` (share of draws in
        which the budget is below the need-based target, 0–1),
        ``expected_cases`` / ``expected_q05`` / ``expected_q95`` (posterior mean
        and 90 % interval of expected cases).
    summary : ``n_draws``, ``prob`` (0.9), ``n_likely_below`` (areas with
        P ≥ 0.8), ``n_likely_above`` (P ≤ 0.2), ``eur_at_risk`` (Σ over areas
        of the expected shortfall E[max(target − budget, 0)], EUR).
    """

    table: pd.DataFrame
    summary: dict
    notes: list[QANote] = field(default_factory=list)


def _order_stat(sorted_draws: np.ndarray, p: float) -> np.ndarray:
    k = max(int(np.ceil(p * sorted_draws.shape[0])) - 1, 0)
    return sorted_draws[k]


def budget_uncertainty(
    frame: pd.DataFrame,
    spec: AllocationSpec | dict,
    expected_draws,
    *,
    budget=None,
    allocation: AllocationResult | None = None,
    key: str = "key",
    prob: float = 0.9,
    model_column: str | None = None,
) -> BudgetUncertainty:
    """Per Sozialraum the interval of the need-based target and P(budget < target).

    Parameters
    ----------
    frame : the Sozialraum frame the allocation was computed from (frame
        order = the order of the draws' columns).
    spec : the allocation spec (or its dict).
    expected_draws : (S × n) posterior draws of the model component's column
        (expected cases), e.g. ``BYM2Model.predict_draws()``.
    budget : (n,) the budget to compare (EUR); default ``allocation``'s
        ``budget_eur`` (converted from cents), else the formula at the
        frame's model column.
    allocation : the point :class:`AllocationResult` (same frame order).
    prob : central probability of the interval (0.9 → 5 % and 95 %).
    model_column : the frame column holding the point expected cases
        (default: the column of the spec's model component).
    """
    spec = parse_spec(spec)
    f = frame.reset_index(drop=True)
    n = len(f)
    M = np.asarray(expected_draws, dtype=float)
    if M.ndim != 2 or M.shape[1] != n or M.shape[0] < 2:
        raise GeoplanError("Die Ziehungen der erwarteten Fälle passen nicht zu den Sozialräumen.",
                           expected=f"(Ziehungen ≥ 2) × {n}", found=str(M.shape),
                           message_en="The draws of the expected cases do not fit the Sozialräume.",
                           expected_en=f"(draws ≥ 2) × {n}")
    if not 0 < prob < 1:
        raise GeoplanError("prob muss zwischen 0 und 1 liegen.", found=str(prob),
                           message_en="prob must lie between 0 and 1.")
    scale = 100 if spec.unit == "cent" else 1
    draws = formula_draws(f, spec, M) / scale  # S × n, EUR, before the corridor
    if model_column is None:
        comps = [c for t in (spec.teilbudgets or []) for c in (t.components or [])] + list(spec.components or [])
        model_column = next((getattr(c, "column", None) for c in comps if c.type == "model"), "expected_cases")
    point_m = M.mean(axis=0)
    target = formula_draws(f, spec, point_m[None, :])[0] / scale
    if budget is None:
        if allocation is not None:
            t = allocation.table
            if len(t) != n or list(t[allocation.key].astype(str)) != list(f[key].astype(str)):
                raise GeoplanError("Die Verteilung und die Sozialräume der Ziehungen passen nicht zusammen.",
                                   hint="Dieselbe Tabelle (gleiche Reihenfolge) für Verteilung und Unsicherheit verwenden.",
                                   message_en="The allocation and the Sozialräume of the draws do not match.",
                                   hint_en="Use the same table (same order) for allocation and uncertainty.")
            budget = t["budget_eur"].to_numpy(dtype=float) / (100 if allocation.unit == "cent" else 1)
        else:
            budget = target
    b = np.asarray(budget, dtype=float).ravel()
    if b.size != n or not np.isfinite(b).all():
        raise GeoplanError("Das Vergleichsbudget passt nicht zu den Sozialräumen oder enthält ungültige Werte.",
                           expected=f"{n} Beträge", found=str(b.size),
                           message_en="The comparison budget does not fit the Sozialräume or holds invalid values.",
                           expected_en=f"{n} amounts")
    srt = np.sort(draws, axis=0)
    lo_p, hi_p = (1 - prob) / 2, 1 - (1 - prob) / 2
    q05, q50, q95 = (_order_stat(srt, p) for p in (lo_p, 0.5, hi_p))
    below = (draws > b[None, :]).mean(axis=0)
    shortfall = np.maximum(draws - b[None, :], 0).mean(axis=0)
    mq = np.sort(M, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rng_pct = np.where(target > 0, (q95 - q05) / target * 100, np.nan)
    table = pd.DataFrame({
        "key": f[key].to_numpy() if key in f.columns else np.arange(n),
        "budget_eur": np.round(b).astype(np.int64),
        "target_eur": np.round(target).astype(np.int64),
        "target_q05_eur": np.round(q05).astype(np.int64),
        "target_q50_eur": np.round(q50).astype(np.int64),
        "target_q95_eur": np.round(q95).astype(np.int64),
        "target_range_pct": rng_pct,
        "p_budget_below_need": below,
        "expected_cases": point_m,
        "expected_q05": _order_stat(mq, lo_p),
        "expected_q95": _order_stat(mq, hi_p),
    })
    if "name" in f.columns:
        table.insert(1, "name", f["name"].to_numpy())
    notes = [QANote(stage=STAGE, level="info", message=(
        f"Unsicherheit in Euro: {M.shape[0]} Ziehungen der erwarteten Fälle durch die Budgetformel gerechnet "
        f"(Modellspalte '{model_column}'); {prob:.0%}-Intervall des bedarfsgerechten Zielwerts je Sozialraum."),
        message_en=(
            f"Uncertainty in euros: {M.shape[0]} draws of the expected cases put through the budget formula "
            f"(model column '{model_column}'); {prob:.0%} interval of the need-based target per Sozialraum."))]
    summary = {
        "n_draws": int(M.shape[0]),
        "prob": float(prob),
        "n_likely_below": int((below >= 0.8).sum()),
        "n_likely_above": int((below <= 0.2).sum()),
        "eur_at_risk": float(shortfall.sum()),
    }
    return BudgetUncertainty(table=table, summary=summary, notes=notes)
