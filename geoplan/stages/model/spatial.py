"""The need-model stage with ``model.family: bym2``: spatial model, intervals, uncertainty in euros.

:func:`need_stage` is what the pipeline calls for the model stage. For
``poisson``/``negbin``/``auto`` it is :func:`geoplan.stages.model.glm.expected_demand`
unchanged. For ``bym2`` it

1. fits the GLM (family ``auto``) as the *reference model*: its coefficients,
   cross-validation, calibration, funnel and Moran's I stay in the report as
   diagnostics and as the comparison the BYM2 is read against;
2. fits :class:`geoplan.stages.model.bym2.BYM2Model` on the same predictors,
   cases and exposure, with the queen adjacency of the Sozialraum polygons;
3. replaces ``expected_cases`` (and ``expected_per_1000``) by the posterior
   mean, ``pi_low``/``pi_high`` by the 95 % posterior predictive interval of
   the cases (Poisson draws around every posterior draw of μ, seeded), and adds
   ``expected_q05``/``expected_q95`` (90 % interval of the expected cases).

:func:`budget_intervals` runs after the allocation: every posterior draw of
the expected cases goes through the budget formula
(:func:`geoplan.stages.uncertainty.budget_uncertainty`), giving per
Sozialraum ``target_q05_eur``/``target_q95_eur`` (interval of the need-based
target) and ``p_budget_below_need``.

Everything the report shows about BYM2 is in :class:`SpatialNeed`
(``Result.uncertainty``); the report formats it and computes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from geoplan.errors import QANote

STAGE = "bedarfsmodell"

#: columns the BYM2 stages add to the Sozialraum frame
FRAME_COLUMNS = ("expected_q05", "expected_q95", "target_q05_eur", "target_q95_eur", "p_budget_below_need")


@dataclass
class SpatialNeed:
    """The BYM2 fit and its uncertainty in euros, as the report needs it (``Result.uncertainty``).

    summary : one row per parameter (``beta0``, the predictors, ``sigma``,
        ``rho``): ``mean``, ``sd``, ``q2.5``, ``q97.5`` (95 % credible interval),
        ``r_hat``, ``ess``, ``label`` (German).
    areas : one row per Sozialraum (key order of the frame): ``key``, ``name``,
        ``expected_cases``, ``expected_q05``, ``expected_q95``, ``budget_eur``,
        ``target_eur``, ``target_q05_eur``, ``target_q50_eur``, ``target_q95_eur``,
        ``target_range_pct``, ``p_budget_below_need`` (filled by :func:`budget_intervals`).
    diagnostics : ``chains``, ``warmup``, ``draws`` (per chain), ``n_draws``
        (all chains), ``seed``, ``max_r_hat`` (all parameters incl. area
        effects), ``min_ess`` (parameters of ``summary``), ``n_divergent``,
        ``n_components``, ``n_islands``, ``n_edges``, ``waic``, ``waic_se``, ``p_waic``.
    priors : German text per parameter (``sigma``, ``rho``, ``beta0``, ``beta``).
    budget : :class:`geoplan.stages.uncertainty.BudgetUncertainty` summary
        (``n_draws``, ``prob``, ``n_likely_below``, ``n_likely_above``, ``eur_at_risk``).
    reference_family : family of the GLM kept as reference (``poisson``/``negbin``).
    expected_draws : (S × n) posterior draws of the expected cases (not written to any output).
    """

    summary: pd.DataFrame
    areas: pd.DataFrame
    diagnostics: dict
    priors: dict
    interval: float
    reference_family: str
    budget: dict = field(default_factory=dict)
    expected_draws: np.ndarray | None = field(default=None, repr=False)
    notes: list[QANote] = field(default_factory=list)

    @property
    def rho(self) -> pd.Series:
        """Posterior summary of ρ, the spatially structured share of the area effect's variance."""
        return self.summary.loc["rho"]

    @property
    def sigma(self) -> pd.Series:
        return self.summary.loc["sigma"]


def need_stage(frame, model_cfg, labels: dict[str, str] | None = None):
    """The model stage: ``(frame, NeedModelResult, SpatialNeed | None)``."""
    from geoplan.stages.model import expected_demand

    if model_cfg.family != "bym2":
        out, res = expected_demand(frame, model_cfg, labels=labels)
        return out, res, None
    out, res = expected_demand(frame, model_cfg.model_copy(update={"family": "auto"}), labels=labels)
    spatial = fit_bym2(out, model_cfg)
    spatial.reference_family = str(res.fit.get("family", ""))
    s = spatial.areas
    out["expected_cases"] = s["expected_cases"].to_numpy()
    out["expected_per_1000"] = out["expected_cases"] / out[model_cfg.exposure] * 1000.0
    out["expected_q05"] = s["expected_q05"].to_numpy()
    out["expected_q95"] = s["expected_q95"].to_numpy()
    lo, hi = _predictive_interval(spatial.expected_draws, model_cfg.bym2.seed)
    out["pi_low"], out["pi_high"] = lo, hi
    res.notes.extend(spatial.notes)
    return out, res, spatial


def _predictive_interval(mu_draws: np.ndarray, seed: int, prob: float = 0.95):
    """95 % posterior predictive interval of the case count: one Poisson draw per posterior draw of μ."""
    rng = np.random.default_rng(seed)
    y = rng.poisson(mu_draws)
    a = (1 - prob) / 2
    lo, hi = np.quantile(y, [a, 1 - a], axis=0, method="inverted_cdf")
    return lo.astype(float), hi.astype(float)


def fit_bym2(frame, model_cfg) -> SpatialNeed:
    """Fit BYM2 on the frame (predictors, ``hze_cases``, exposure, polygons) with ``model.bym2``'s settings."""
    from geoplan.stages.model.bym2 import BYM2Model

    b = model_cfg.bym2
    est = BYM2Model(sigma_prior=tuple(b.sigma_prior), rho_prior=tuple(b.rho_prior), coef_prior_sd=b.coef_prior_sd,
                    chains=b.chains, warmup=b.warmup, draws=b.draws, seed=b.seed, target_accept=b.target_accept,
                    max_tree_depth=b.max_tree_depth)
    data = pd.DataFrame(frame.drop(columns="geometry"))
    est.fit(data[list(model_cfg.predictors)], data["hze_cases"], exposure=data[model_cfg.exposure],
            adjacency=frame.geometry)
    mu = est.predict_draws()
    a = (1 - b.interval) / 2
    srt = np.sort(mu, axis=0)
    k_lo = max(int(np.ceil(a * len(srt))) - 1, 0)
    k_hi = max(int(np.ceil((1 - a) * len(srt))) - 1, 0)
    areas = pd.DataFrame({"key": data["key"].to_numpy(), "name": data["name"].to_numpy(),
                          "expected_cases": mu.mean(axis=0), "expected_q05": srt[k_lo], "expected_q95": srt[k_hi]})
    summ = est.summary_.copy()
    g = est.graph_
    # convergence of what the budget uses: the parameters and the expected cases μ per area. θ and φ
    # separately are only identified through their sum (their split follows ρ); their R̂ is kept apart.
    from numpyro.diagnostics import split_gelman_rubin

    per_chain = mu.shape[0] // int(b.chains)
    r_mu = float(np.nanmax(split_gelman_rubin(np.log(mu).reshape(int(b.chains), per_chain, -1)))) \
        if per_chain >= 4 else float("nan")
    diag = {
        "chains": int(b.chains), "warmup": int(b.warmup), "draws": int(b.draws), "n_draws": int(mu.shape[0]),
        "seed": int(b.seed), "max_r_hat": float(np.nanmax([summ["r_hat"].max(), r_mu])),
        "max_r_hat_effects": float(est.max_r_hat_), "min_ess": float(summ["ess"].min()),
        "n_divergent": int(est.n_divergent_), "n_components": int(g.n_components - g.n_islands),
        "n_islands": int(g.n_islands), "n_edges": int(len(g.edges)),
        "waic": float(est.waic_["waic"]), "waic_se": float(est.waic_["se"]), "p_waic": float(est.waic_["p_waic"]),
    }
    notes = [QANote(stage=STAGE, level="info", message=(
        f"BYM2: {diag['chains']} Kette(n) × {diag['draws']} Ziehungen nach {diag['warmup']} Aufwärmschritten "
        f"(Startwert {diag['seed']}); größtes R̂ der Parameter und erwarteten Fälle {diag['max_r_hat']:.3f} "
        f"(Ziel ≤ 1,01), kleinste effektive Stichprobengröße der Parameter {diag['min_ess']:.0f}, "
        f"{diag['n_divergent']} divergente Übergänge; größtes R̂ der einzelnen Gebietseffekte θ, φ "
        f"{diag['max_r_hat_effects']:.3f} (nur ihre Summe ist bestimmt)."), message_en=(
        f"BYM2: {diag['chains']} chain(s) × {diag['draws']} draws after {diag['warmup']} warm-up steps "
        f"(seed {diag['seed']}); largest R̂ of the parameters and expected cases {diag['max_r_hat']:.3f} "
        f"(target ≤ 1.01), smallest effective sample size of the parameters {diag['min_ess']:.0f}, "
        f"{diag['n_divergent']} divergent transitions; largest R̂ of the single area effects θ, φ "
        f"{diag['max_r_hat_effects']:.3f} (only their sum is identified)."))]
    # divergences, islands, components from the model; its R̂ note (over θ and φ too) is replaced by this one
    notes += [n for n in est.notes_ if not n.message.startswith("BYM2: R̂")]
    if diag["max_r_hat"] > 1.01:
        notes.append(QANote(stage=STAGE, message=(
            f"BYM2: R̂ = {diag['max_r_hat']:.3f} > 1,01 bei den Parametern oder erwarteten Fällen — die Ketten sind "
            "nicht konvergiert, die Intervalle sind nicht belastbar (model.bym2.warmup und draws erhöhen)."),
                            message_en=(
            f"BYM2: R̂ = {diag['max_r_hat']:.3f} > 1.01 for the parameters or expected cases — the chains have "
            "not converged, the intervals are not reliable (raise model.bym2.warmup and draws).")))
    if diag["chains"] < 2:
        notes.append(QANote(stage=STAGE, level="info", message=(
            "BYM2 mit nur einer Kette: R̂ vergleicht nur die beiden Hälften dieser Kette; für eine Entscheidung "
            "model.bym2.chains ≥ 2 setzen."), message_en=(
            "BYM2 with a single chain: R̂ only compares the two halves of this chain; for a decision set "
            "model.bym2.chains ≥ 2.")))
    return SpatialNeed(summary=summ, areas=areas, diagnostics=diag, priors=dict(est.priors_), interval=float(b.interval),
                       reference_family="", expected_draws=mu, notes=notes)


def budget_intervals(frame, spec, alloc, spatial: SpatialNeed | None, notes: list[QANote]):
    """After the allocation: interval of the need-based target and P(budget < target) per Sozialraum.

    Returns ``(frame, spatial)``; without BYM2 both come back unchanged.
    """
    if spatial is None:
        return frame, None
    from geoplan.stages.uncertainty import budget_uncertainty

    data = pd.DataFrame(frame.drop(columns="geometry")).reset_index(drop=True)
    bu = budget_uncertainty(data, spec, spatial.expected_draws, allocation=alloc, prob=spatial.interval)
    t = bu.table
    out = frame.copy()
    for c in ("target_q05_eur", "target_q95_eur", "p_budget_below_need"):
        out[c] = t[c].to_numpy()
    cols = ["budget_eur", "target_eur", "target_q05_eur", "target_q50_eur", "target_q95_eur", "target_range_pct",
            "p_budget_below_need"]
    spatial.areas = pd.concat([spatial.areas.reset_index(drop=True), t[cols].reset_index(drop=True)], axis=1)
    spatial.budget = dict(bu.summary)
    notes.extend(bu.notes)
    return out, spatial
