"""Scenarios, sensitivity and explanation of budget allocations.

* :func:`compare_allocations` – several allocations side by side, differences
  per Sozialraum, winners and losers.
* :func:`weight_sensitivity` – Monte Carlo over the component weights
  (Dirichlet around the configured weights) and optionally over draws of the
  need model's expected cases; per Sozialraum the 5 %, 50 % and 95 % budget
  and the stability of its rank.
* :func:`explain` – one Sozialraum's budget decomposed into its components
  (waterfall table); :func:`explain_extremes` for the largest and smallest
  budgets. :func:`geoplan.report.figures.waterfall_grid` draws them.

Money is EUR (or cents if the allocation was configured in cents).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from geoplan.stages.allocate import (
    AllocationResult,
    AllocationSpec,
    corridor_bounds,
    allocate,
    component_raw,
    parse_spec,
    resolve_teilbudgets,
)
from geoplan.errors import GeoplanError, QANote

__all__ = ["SensitivityResult", "compare_allocations", "formula_draws", "weight_sensitivity", "explain", "explain_extremes"]


# --------------------------------------------------------------------------
# Scenario comparison
# --------------------------------------------------------------------------
def compare_allocations(results: dict[str, AllocationResult], names=None) -> pd.DataFrame:
    """Allocations side by side (EUR).

    ``results`` maps a scenario name to its :class:`AllocationResult`; the
    first is the reference. ``names`` optionally replaces the scenario names
    (same order). Columns: ``key`` (and ``name`` if known), one budget column
    per scenario (named by the scenario), for every further scenario
    ``diff_<s>`` (EUR against the reference) and ``diff_<s>_pct`` (% of the
    reference), ``rank_<s>`` (1 = largest budget) for every scenario,
    ``spanne_eur`` (max − min over scenarios), ``max_szenario`` /
    ``min_szenario`` (the scenario giving the most / least), and
    ``ergebnis`` ("Gewinner" / "Verlierer" / "unverändert": last scenario
    against the reference). Sorted by the last difference, largest gain first.
    Amounts in cents are converted to EUR.
    """
    if not isinstance(results, dict) or len(results) < 2:
        raise GeoplanError("Zum Vergleichen mindestens zwei Verteilungen angeben.", found=str(len(results or {})),
                           message_en="Give at least two allocations to compare.")
    labels = list(results) if names is None else [str(n) for n in names]
    if len(labels) != len(results) or len(set(labels)) != len(labels):
        raise GeoplanError("Szenarionamen müssen eindeutig sein und zu den Ergebnissen passen.",
                           found=", ".join(labels), message_en="Scenario names must be unique and match the results.")
    merged = None
    name_col = None
    for label, res in zip(labels, results.values()):
        key = res.key
        t = res.table
        scale = 100 if res.unit == "cent" else 1
        part = pd.DataFrame({"key": t[key].astype(str).to_numpy(), label: t["budget_eur"].to_numpy() / scale})
        if name_col is None and "name" in t.columns:
            name_col = pd.DataFrame({"key": t[key].astype(str).to_numpy(), "name": t["name"].to_numpy()})
        merged = part if merged is None else merged.merge(part, on="key", how="outer")
    missing = merged[merged[labels].isna().any(axis=1)]
    if len(missing):
        raise GeoplanError(
            "Die Szenarien enthalten verschiedene Sozialräume; ein Vergleich braucht dieselben Schlüssel.",
            location="Sozialräume " + ", ".join(missing["key"].astype(str).head(10)),
            hint="Dieselbe Gebietsgliederung in allen Konfigurationen verwenden.",
            message_en="The scenarios hold different Sozialräume; a comparison needs the same keys.",
            hint_en="Use the same area division in all configurations.",
        )
    out = merged
    if name_col is not None:
        out = name_col.merge(out, on="key", how="right")
    for label in labels:
        if (out[label] == out[label].round()).all():
            out[label] = out[label].astype(np.int64)
    ref = labels[0]
    for label in labels[1:]:
        out[f"diff_{label}"] = out[label] - out[ref]
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"diff_{label}_pct"] = np.where(out[ref] != 0, out[f"diff_{label}"] / out[ref] * 100, np.nan)
    for label in labels:
        out[f"rank_{label}"] = out[label].rank(ascending=False, method="min").astype(np.int64)
    values = out[labels].to_numpy(dtype=float)
    out["spanne_eur"] = values.max(axis=1) - values.min(axis=1)
    out["max_szenario"] = [labels[i] for i in values.argmax(axis=1)]
    out["min_szenario"] = [labels[i] for i in values.argmin(axis=1)]
    last = out[f"diff_{labels[-1]}"]
    out["ergebnis"] = np.select([last > 0, last < 0], ["Gewinner", "Verlierer"], "unverändert")
    return out.sort_values([f"diff_{labels[-1]}", "key"], ascending=[False, True]).reset_index(drop=True)


# --------------------------------------------------------------------------
# Monte Carlo sensitivity
# --------------------------------------------------------------------------
@dataclass
class SensitivityResult:
    """Result of :func:`weight_sensitivity`.

    table : per Sozialraum: ``key``, ``budget_eur`` (the configured
        allocation, whole EUR), ``p05_eur``, ``p50_eur``, ``p95_eur``,
        ``mean_eur``, ``range_pct`` ((p95 − p05) / budget × 100), ``rank``
        (1 = largest budget in the configured allocation), ``rank_same_share``
        (share of draws with exactly that rank), ``rank_p05``, ``rank_p95``.
    weights : the weight draws (n_draws × components), columns named
        ``<teilbudget>:<component>`` or ``<component>``.
    """

    table: pd.DataFrame
    weights: pd.DataFrame
    n_draws: int
    concentration: float
    seed: int
    notes: list[QANote] = field(default_factory=list)


def _blocks(frame: pd.DataFrame, spec: AllocationSpec):
    """(fraction of the distributed total, components) per distributed Teilbudget."""
    scale = 100 if spec.unit == "cent" else 1
    total_units = int(spec.total_eur * scale)
    if not spec.teilbudgets:
        return [("", 1.0, spec.components)], total_units
    tb = resolve_teilbudgets(spec, total_units)
    distributed = int(tb.loc[tb["distributed"], "amount_eur"].sum())
    blocks = []
    for t, amount in zip(spec.teilbudgets, tb["amount_eur"]):
        if t.distributed and amount > 0:
            blocks.append((t.id, amount / distributed, t.components or spec.components))
    return blocks, distributed


def _corridor_factor(b: np.ndarray, lo: np.ndarray, hi: np.ndarray, D: float) -> np.ndarray:
    """λ per draw with Σ_i clip(λ·b_i, lo_i, hi_i) = D (safeguarded Newton, exact).

    g(λ) = Σ_i clip(λ·b_i, lo_i, hi_i) is piecewise linear and
    non-decreasing; on the piece through λ it is C + λ·B (C the bounds
    that hold, B the sum of b over the free areas), so the Newton step
    λ ← (D − C) / B lands on the root as soon as the set of bound areas
    is right — usually after 3–6 steps. A step that leaves the bracket
    [low, up] known from earlier evaluations (g(low) < D ≤ g(up)) is
    replaced by bisection, so it always converges. A draw stops when a
    step no longer moves λ: then the set of bound areas no longer changes
    and λ is the same root the bisection of
    :func:`geoplan.stages.allocate.solve_corridor` approaches (to float64
    precision).
    """
    k = b.shape[0]
    total_b = b.sum(axis=1, dtype=np.float64)
    lam = np.where(total_b > 0, D / np.where(total_b > 0, total_b, 1.0), 1.0)
    low = np.zeros(k)
    up = np.full(k, np.inf)
    todo = np.arange(k)
    for it in range(200):
        if todo.size == 0:
            break
        bt = b[todo]
        lt = lam[todo]
        t = bt * lt[:, None]  # float64 (k × n)
        free = (t > lo[None, :]) & (t < hi[None, :])
        np.clip(t, lo[None, :], hi[None, :], out=t)
        g = t.sum(axis=1)
        fb = np.where(free, bt, 0).sum(axis=1, dtype=np.float64)
        fc = np.where(free, 0.0, t).sum(axis=1)  # C: the bounds that hold
        below = g < D
        low[todo] = np.where(below, lt, low[todo])
        up[todo] = np.where(below, up[todo], lt)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = (D - fc) / fb
        lo_t, up_t = low[todo], up[todo]
        eps = 4 * np.finfo(float).eps
        # converged: the step from λ's piece returns λ itself (the piece holds the root)
        done = (fb > 0) & np.isfinite(newton) & (np.abs(newton - lt) <= eps * np.abs(lt))
        ok = np.isfinite(newton) & (newton > lo_t) & (newton <= up_t) & (fb > 0)
        if it >= 60:  # pragma: no cover - Newton with a bracket ends long before
            ok[:] = False
        fallback = np.where(np.isfinite(up_t), 0.5 * (lo_t + up_t), 2.0 * np.maximum(lt, 1e-300))
        new = np.where(ok, newton, fallback)
        collapsed = ~done & np.isfinite(up_t) & (up_t - lo_t <= eps * up_t)
        lam[todo] = np.where(done, newton, np.where(collapsed, up_t, new))
        done |= collapsed
        todo = todo[~done]
    return lam


def _scale_clip_inplace(b: np.ndarray, lam: np.ndarray, lo: np.ndarray, hi: np.ndarray, rows: int = 16) -> None:
    """``b[:] = clip(lam · b, lo, hi)`` for float32 ``b``, computed in float64 in small row blocks.

    The same values as ``np.clip(lam * b, lo, hi).astype(np.float32)`` (the
    product and clip in float64, one rounding to float32), without the
    full-size float64 temporaries.
    """
    for r0 in range(0, b.shape[0], rows):
        r1 = min(r0 + rows, b.shape[0])
        tmp = b[r0:r1] * (lam[r0:r1] if lam.shape[0] > 1 else lam)
        np.clip(tmp, lo[r0:r1] if lo.shape[0] > 1 else lo, hi[r0:r1] if hi.shape[0] > 1 else hi, out=tmp)
        b[r0:r1] = tmp


def _share_design(f: pd.DataFrame, blocks):
    """Shares of every component of every distributed Teilbudget.

    Returns ``cols`` (names), ``S`` (n × C shares, columns sum to 1),
    ``weights`` (C,: configured weight × the Teilbudget's fraction of the
    distributed total; they sum to 1), ``model_idx`` (columns of type model)
    and per block ``(fraction, configured weights)``.
    """
    cols, shares, weights, model_idx, block_weights = [], [], [], [], []
    for tb_id, frac, comps in blocks:
        w = np.array([c.weight for c in comps], dtype=float)
        block_weights.append((frac, w))
        for j, c in enumerate(comps):
            raw = component_raw(f, c)
            cols.append(f"{tb_id}:{c.name}" if tb_id else c.name)
            shares.append(raw / raw.sum())
            weights.append(frac * w[j])
            if c.type == "model":
                model_idx.append(len(cols) - 1)
    return cols, np.stack(shares, axis=1), np.array(weights), model_idx, block_weights


def formula_draws(frame: pd.DataFrame, spec: AllocationSpec | dict, model_draws, *, corridor: bool = False):
    """The allocation formula evaluated for every draw of the model component (draws × Sozialräume).

    ``model_draws`` (draws × Sozialräume, frame order) are alternative values
    of the model component's column (e.g. posterior draws of expected cases);
    the configured weights stay fixed. Draw d gives
    ``D × (Σ_{c not model} w_c s_ic + w_model · m_di / Σ_i m_di)`` — the same
    shares and weights as :func:`weight_sensitivity` and
    :func:`geoplan.allocate.allocate` before rounding to whole units. With
    ``corridor=True`` a configured corridor is applied per draw (as in
    :func:`weight_sensitivity`); by default the result is the formula target
    before the corridor. Amounts in the allocation's unit (EUR or cent), float64.
    """
    spec = parse_spec(spec)
    f = frame.reset_index(drop=True)
    n = len(f)
    blocks, distributed = _blocks(f, spec)
    _, S, weights, model_idx, _ = _share_design(f, blocks)
    if not model_idx:
        raise GeoplanError("Die Budgetformel hat keine Modellkomponente (type: model); Modellziehungen ändern nichts.",
                           location="allocation.components",
                           hint="Eine Komponente vom Typ 'model' aufnehmen oder die Unsicherheit des Modells nicht in Euro umrechnen.",
                           message_en="The budget formula has no model component (type: model); model draws change nothing.",
                           hint_en="Add a component of type 'model' or do not convert the model's uncertainty into euros.")
    M = np.asarray(model_draws, dtype=float)
    if M.ndim != 2 or M.shape[1] != n:
        raise GeoplanError("Die Modellziehungen müssen die Form (Ziehungen × Sozialräume) haben.",
                           expected=f"(…, {n})", found=str(M.shape),
                           message_en="The model draws must have the shape (draws × Sozialräume).")
    if (M < 0).any() or not np.isfinite(M).all() or (M.sum(axis=1) <= 0).any():
        raise GeoplanError("Die Modellziehungen enthalten negative, nicht-endliche Werte oder Ziehungen mit Summe 0.",
                           message_en="The model draws hold negative or non-finite values or draws with sum 0.")
    model_cols = np.array(model_idx, dtype=int)
    fixed_cols = np.setdiff1d(np.arange(S.shape[1]), model_cols)
    D = float(distributed)
    out = np.broadcast_to(S[:, fixed_cols] @ weights[fixed_cols], (M.shape[0], n)).copy()
    out += weights[model_cols].sum() * (M / M.sum(axis=1, keepdims=True))
    out *= D
    if corridor and spec.corridor is not None:
        lo, hi, _, _ = corridor_bounds(f, spec.corridor, 100 if spec.unit == "cent" else 1)
        lam = _corridor_factor(out, lo, hi, D)
        out = np.clip(lam[:, None] * out, lo[None, :], hi[None, :])
    return out


def weight_sensitivity(
    frame: pd.DataFrame,
    spec: AllocationSpec | dict,
    *,
    n_draws: int = 1000,
    concentration: float = 100.0,
    seed: int = 0,
    coef_draws=None,
    key: str = "key",
    chunk: int = 256,
    n_jobs: int | None = None,
) -> SensitivityResult:
    """Monte Carlo over component weights (and optionally model draws).

    Each draw takes the weights of the components of every distributed
    Teilbudget from a Dirichlet distribution with parameters
    ``concentration × w`` (w the configured weights; mean = w, variance
    w(1 − w)/(concentration + 1); components with weight 0 stay 0). With
    ``coef_draws`` — an array (n_draws × Sozialräume, in frame order) of
    alternative values of the model component's column, e.g. expected cases
    predicted under bootstrap draws of the need model's coefficients — the
    model component's shares change with the draw as well.

    The budget of Sozialraum i in draw d is
    ``D × Σ_c w_c(d) · s_ic(d)`` (D the distributed total, s the shares), i.e.
    the formula before rounding to whole euros; a configured corridor is
    applied in every draw (``clip(λ_d · b_di, lo_i, hi_i)`` with λ_d the root
    that :func:`geoplan.stages.allocate.solve_corridor` bisects for, found here
    by a vectorised safeguarded Newton iteration, see :func:`_corridor_factor`). This
    is computed as one matrix product per block of draws, so 10,000 draws
    over 10,000 Sozialräume take seconds (see benchmarks/bench_sensitivity.py).
    Budgets are computed in float32 (relative precision about 1e-7, i.e.
    below one euro for areas under 5 million EUR); quantiles are rounded to
    whole EUR. Ranks: 1 = largest budget. Quantiles are empirical order statistics
    (inverted CDF: the ⌈p·n_draws⌉-th smallest value). Blocks of draws and of
    Sozialräume run on ``n_jobs`` threads (default: up to 4 cores); the result
    does not depend on the number of threads.

    References: Saltelli et al. (2008), *Global Sensitivity Analysis. The
    Primer*, Wiley (Monte Carlo uncertainty analysis); Dirichlet weight
    perturbation as in OECD/JRC (2008), *Handbook on Constructing Composite
    Indicators*, section 7.
    """
    spec = parse_spec(spec)
    if n_draws < 1:
        raise GeoplanError("n_draws muss mindestens 1 sein.", found=str(n_draws),
                           message_en="n_draws must be at least 1.")
    if not concentration > 0:
        raise GeoplanError("concentration muss > 0 sein.", found=str(concentration),
                           message_en="concentration must be > 0.")
    n = len(frame)
    base = allocate(frame, spec, key=key)
    notes: list[QANote] = []
    # frame order as in allocate (reset index)
    budget_base = base.table["budget_eur"].to_numpy()
    blocks, distributed = _blocks(frame.reset_index(drop=True), spec)
    rng = np.random.default_rng(seed)

    f = frame.reset_index(drop=True)
    cols, S, weights, model_idx, block_weights = _share_design(f, blocks)
    w_draws = []
    for frac, w in block_weights:
        pos = w > 0
        draws = np.zeros((n_draws, w.size))
        if pos.sum() == 1:
            draws[:, pos] = 1.0
        else:
            draws[:, pos] = rng.dirichlet(concentration * w[pos], size=n_draws)
        w_draws.append(frac * draws)
    W = np.concatenate(w_draws, axis=1)  # n_draws × C, rows sum to 1

    M = None
    if coef_draws is not None:
        M = np.asarray(coef_draws, dtype=float)
        if M.ndim != 2 or M.shape[1] != n:
            raise GeoplanError("coef_draws muss die Form (Ziehungen × Sozialräume) haben.",
                               expected=f"(…, {n})", found=str(M.shape),
                               message_en="coef_draws must have the shape (draws × Sozialräume).")
        if not model_idx:
            raise GeoplanError("coef_draws angegeben, aber die Formel hat keine Modellkomponente (type: model).",
                               message_en="coef_draws given, but the formula has no model component (type: model).")
        if (M < 0).any() or not np.isfinite(M).all():
            raise GeoplanError("coef_draws enthält negative oder nicht-endliche Werte.",
                               message_en="coef_draws holds negative or non-finite values.")
        if M.shape[0] != n_draws:
            notes.append(QANote(stage="sensitivity", level="info",
                                message=f"{M.shape[0]} Modellziehungen für {n_draws} Gewichtsziehungen: zyklisch wiederverwendet.",
                                message_en=f"{M.shape[0]} model draws for {n_draws} weight draws: reused cyclically."))
        sums = M.sum(axis=1, keepdims=True)
        if (sums <= 0).any():
            raise GeoplanError("Eine Modellziehung summiert sich auf 0.", message_en="A model draw sums to 0.")
        M = M / sums  # shares per model draw

    D = float(distributed)
    St = S.astype(np.float32)  # n × C
    Wt = np.ascontiguousarray(W.T.astype(np.float32))  # C × n_draws
    model_cols = np.array(model_idx, dtype=int)
    fixed_cols = np.setdiff1d(np.arange(W.shape[1]), model_cols)
    lo = hi = None
    if spec.corridor is not None:
        lo, hi, _, _ = corridor_bounds(f, spec.corridor, 100 if spec.unit == "cent" else 1)
        notes.append(QANote(stage="sensitivity", level="info",
                            message="Korridor in jeder Ziehung angewandt (Umverteilung unter den nicht gebundenen Sozialräumen).",
                            message_en="Corridor applied in every draw (redistribution among the Sozialräume it does "
                            "not hold)."))

    # the configured allocation, continuous: the reference for ranks
    cont = D * (S @ np.array(weights))
    if lo is not None:
        cont = np.clip(_corridor_factor(cont[None, :], lo, hi, D)[0] * cont, lo, hi)
    lam = np.ones(n_draws)
    base_rank = np.empty(n, dtype=np.int64)
    base_rank[np.argsort(-cont, kind="stable")] = np.arange(1, n + 1)

    def budgets_by_area(a0, a1):
        """Budgets of Sozialräume a0:a1 in every draw (areas × draws), float32 EUR."""
        if M is None:
            out = St[a0:a1] @ Wt
        else:
            out = St[a0:a1, fixed_cols] @ Wt[fixed_cols]
            wm = Wt[model_cols].sum(axis=0)  # model weight per draw
            Md = M[np.arange(n_draws) % M.shape[0], a0:a1].T.astype(np.float32)
            out += Md * wm[None, :]
        out *= np.float32(D)
        return out

    def budgets_by_draw(d0, d1):
        """Budgets of every Sozialraum in draws d0:d1 (draws × areas), float32 EUR."""
        if M is None:
            out = Wt[:, d0:d1].T @ St.T
        else:
            out = Wt[fixed_cols, d0:d1].T @ St[:, fixed_cols].T
            wm = Wt[model_cols, d0:d1].sum(axis=0)
            out += wm[:, None] * M[np.arange(d0, d1) % M.shape[0]].astype(np.float32)
        out *= np.float32(D)
        return out

    rdtype = np.int16 if n < 32767 else np.int32
    ranks = np.empty((n, n_draws), dtype=rdtype)  # area-major for the quantiles below
    positions = np.arange(1, n + 1, dtype=rdtype)
    idx64 = np.arange(n, dtype=np.uint64)
    k05, k50, k95 = (int(np.ceil(p * n_draws)) - 1 for p in (0.05, 0.5, 0.95))

    def rank_chunk(d0, d1):
        # ranks need every Sozialraum of a draw
        b = budgets_by_draw(d0, d1)
        if lo is not None:
            lam[d0:d1] = _corridor_factor(b, lo, hi, D)
            _scale_clip_inplace(b, lam[d0:d1, None], lo[None, :], hi[None, :])
        np.maximum(b, 0, out=b)  # float error can give tiny negatives; budgets are ≥ 0
        b += np.float32(0.0)  # -0.0 -> +0.0 for the bit keys below
        # argsort by sorting 64-bit keys (descending budget bits, then position):
        # SIMD sort is faster than argsort and breaks ties by frame order
        bits = b.view(np.uint32).astype(np.uint64)
        keys64 = ((np.uint64(0xFFFFFFFF) - bits) << np.uint64(32)) | idx64
        keys64.sort(axis=1)
        order = (keys64 & np.uint64(0xFFFFFFFF)).astype(np.intp)
        rk = np.empty(b.shape, dtype=rdtype)
        rows = np.arange(d1 - d0)[:, None]
        rk[rows, order] = positions
        ranks[:, d0:d1] = rk.T
        return (rk == base_rank[None, :]).sum(axis=0)

    def quantile_chunk(a0, a1):
        # quantiles need every draw of a Sozialraum; budgets are recomputed
        # (one small matrix product) instead of stored as n × draws floats
        blk = budgets_by_area(a0, a1)
        if lo is not None:
            _scale_clip_inplace(blk, lam[None, :], lo[a0:a1, None], hi[a0:a1, None])
        mean[a0:a1] = blk.mean(axis=1, dtype=np.float64)
        # a full SIMD sort is faster here than np.partition with three kth
        blk.sort(axis=1)
        q[:, a0:a1] = blk[:, [max(k05, 0), max(k50, 0), max(k95, 0)]].T
        rblk = np.sort(ranks[a0:a1], axis=1)
        rq[:, a0:a1] = rblk[:, [max(k05, 0), max(k95, 0)]].T

    q = np.empty((3, n))
    rq = np.empty((2, n))
    mean = np.empty(n)
    workers = n_jobs or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        # numpy releases the GIL in matmul, sort and partition; chunks are independent
        same = sum(pool.map(lambda d0: rank_chunk(d0, min(d0 + chunk, n_draws)), range(0, n_draws, chunk)))
        list(pool.map(lambda a0: quantile_chunk(a0, min(a0 + chunk, n)), range(0, n, chunk)))
    keys = f[key].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        rng_pct = np.where(budget_base > 0, (q[2] - q[0]) / budget_base * 100, np.nan)
    table = pd.DataFrame({
        key: keys,
        "budget_eur": budget_base.astype(np.int64),
        "p05_eur": np.round(q[0]).astype(np.int64),
        "p50_eur": np.round(q[1]).astype(np.int64),
        "p95_eur": np.round(q[2]).astype(np.int64),
        "mean_eur": np.round(mean).astype(np.int64),
        "range_pct": rng_pct,
        "rank": base_rank,
        "rank_same_share": same / n_draws,
        "rank_p05": rq[0].astype(np.int64),
        "rank_p95": rq[1].astype(np.int64),
    })
    if "name" in f.columns:
        table.insert(1, "name", f["name"].to_numpy())
    return SensitivityResult(
        table=table,
        weights=pd.DataFrame(W, columns=cols),
        n_draws=n_draws,
        concentration=concentration,
        seed=seed,
        notes=notes,
    )


# --------------------------------------------------------------------------
# Explanation
# --------------------------------------------------------------------------
def explain(result: AllocationResult, key) -> pd.DataFrame:
    """Waterfall of one Sozialraum's budget (EUR): components, corridor, total.

    Columns: ``position`` (component name, ``korridor``, ``budget``),
    ``label`` (German), ``amount_eur``, ``start_eur`` and ``end_eur`` (the bar
    of a waterfall chart), ``anteil`` (share of the budget) and
    ``anteil_gesamt`` (this area's share of the component's total).
    """
    t = result.table
    k = result.key
    match = t[t[k].astype(str) == str(key)]
    if match.empty:
        raise GeoplanError(
            f"Sozialraum '{key}' ist nicht in der Verteilung enthalten.",
            location=f"Schlüssel {key}",
            expected=", ".join(t[k].astype(str).head(10)) + (" …" if len(t) > 10 else ""),
            message_en=f"Sozialraum '{key}' is not in the allocation.",
        )
    row = match.iloc[0]
    rows = []
    run = 0
    budget = int(row["budget_eur"])
    for name in result.components:
        amount = int(row[f"eur_{name}"])
        col_total = int(t[f"eur_{name}"].sum())
        rows.append((name, result.labels.get(name, name), amount, run, run + amount,
                     amount / budget if budget else np.nan, amount / col_total if col_total else np.nan))
        run += amount
    corr = int(row["eur_korridor"])
    if corr:
        rows.append(("korridor", "Korridor (Begrenzung der Veränderung)", corr, run, run + corr,
                     corr / budget if budget else np.nan, np.nan))
        run += corr
    rows.append(("budget", "Budget", budget, 0, budget, 1.0 if budget else np.nan,
                 budget / result.distributed_eur if result.distributed_eur else np.nan))
    assert run == budget
    return pd.DataFrame(rows, columns=["position", "label", "amount_eur", "start_eur", "end_eur", "anteil", "anteil_gesamt"])


def explain_extremes(result: AllocationResult, n: int = 3) -> dict[str, pd.DataFrame]:
    """:func:`explain` for the ``n`` Sozialräume with the largest and the ``n`` with the
    smallest budget (ties by key), largest first: the waterfalls the report shows."""
    t = result.table.assign(_key=result.table[result.key].astype(str))
    ranked = t.sort_values(["budget_eur", "_key"], ascending=[False, True])["_key"].tolist()
    return {k: explain(result, k) for k in dict.fromkeys(ranked[:n] + ranked[-n:])}
