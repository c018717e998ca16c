"""Seeded simulator of HzE case counts and costs per Sozialraum.

Case counts and costs of Hilfen zur Erziehung are not published as open data.
The built-in example therefore draws *plausible* values from the real
indicators; every output that shows them labels them "simuliert".

Model (per Sozialraum i, indicators j, budget year t and prior year t-1)::

    eta_i   = sum_j b_j * z_ij                     z = (x - mean) / sd over Sozialräume (ddof=0)
    mu_i    = P_i * r / 1000 * exp(eta_i) / c      P = persons under 21, r = rate per 1,000 under 21
    c       = sum_i P_i exp(eta_i) / sum_i P_i     so that the city-wide rate equals r
    g_i     ~ Gamma(shape 1/alpha, scale alpha)            area effect (mean 1), the same in both years
    Y_i,t   ~ Poisson(mu_i g_i)        -> NegBin(mean mu_i, var mu_i + alpha mu_i^2); alpha = 0: Poisson
    Y_i,t-1 ~ Poisson(mu_i g_i / (1 + trend))

The area effect is shared between the years because unmeasured local
conditions persist; only the Poisson noise differs from year to year, so the
prior year is a realistic (not a perfect) predictor of the budget year.
    cases by kind ~ Multinomial(Y, shares of the kinds)
    cost_i,kind,t-1 = cases_i,kind,t-1 * cost per case * exp(e_i - s^2/2),  e_i ~ N(0, s^2)

All draws come from one ``numpy.random.Generator(PCG64(seed))`` in a fixed
order, so the same seed and inputs give the same numbers on every machine.
Units: cases per year; costs in whole EUR per year.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from geoplan.errors import GeoplanError

KINDS = ("ambulant", "teilstationaer", "stationaer")


def simulate_hze(
    frame: pd.DataFrame,
    *,
    effects: dict[str, float],
    rate_per_1000: float,
    kinds: dict[str, dict],
    alpha: float = 0.04,
    cost_sd_log: float = 0.15,
    trend: float = 0.02,
    budget_kinds=KINDS,
    seed: int = 2026,
    exposure: str = "pop_u21",
) -> pd.DataFrame:
    """Draw HzE cases (budget year and prior year) and prior-year costs.

    Parameters
    ----------
    frame : DataFrame with ``key``, the exposure column (persons under 21) and
        every indicator named in ``effects``.
    effects : log rate ratio per standard deviation of each indicator.
    rate_per_1000 : city-wide cases per 1,000 persons under 21 per year.
    kinds : ``{kind: {"share": float, "cost_per_case_eur": float}}``; shares
        are normalised to sum to 1.
    budget_kinds : kinds whose costs make up ``hze_cost_prev_eur`` (the costs
        the Sozialraumbudget covers).

    Returns
    -------
    DataFrame indexed like ``frame`` with ``hze_cases``, ``hze_cases_prev``,
    ``hze_cases_<kind>``, ``hze_cases_prev_<kind>``, ``hze_cost_prev_<kind>_eur``
    and ``hze_cost_prev_eur`` (int EUR).
    """
    for col in [exposure, *effects]:
        if col not in frame.columns:
            raise GeoplanError(
                f"Simulation der HzE-Fälle: Spalte '{col}' fehlt im Sozialraum-Datensatz.",
                location="hze.simulate.effects",
                expected=", ".join(sorted(c for c in frame.columns if c not in ("geometry",))),
                hint="Einen Indikator aus dem Katalog verwenden.",
                message_en=f"Simulation of the HzE cases: column '{col}' is missing in the Sozialraum data.",
                hint_en="Use an indicator from the catalogue.",
            )
        if frame[col].isna().any():
            bad = frame.loc[frame[col].isna(), "key"].tolist()
            raise GeoplanError(
                f"Simulation der HzE-Fälle: Spalte '{col}' hat fehlende Werte.",
                location=f"Sozialräume {', '.join(map(str, bad))}",
                hint="Fehlende Indikatorwerte ergänzen oder den Indikator aus hze.simulate.effects nehmen.",
                message_en=f"Simulation of the HzE cases: column '{col}' has missing values.",
                hint_en="Fill in the missing indicator values or take the indicator out of hze.simulate.effects.",
            )
    pop = frame[exposure].to_numpy(float)
    if (pop <= 0).any():
        bad = frame.loc[pop <= 0, "key"].tolist()
        raise GeoplanError(
            "Simulation der HzE-Fälle: Bevölkerung unter 21 ist 0 oder negativ.",
            location=f"Sozialräume {', '.join(map(str, bad))}",
            hint="Bevölkerungsdaten prüfen.",
            message_en="Simulation of the HzE cases: the population under 21 is 0 or negative.",
            hint_en="Check the population data.",
        )
    eta = np.zeros(len(frame))
    for col, b in effects.items():
        x = frame[col].to_numpy(float)
        sd = x.std()
        if sd > 0:
            eta += b * (x - x.mean()) / sd
    c = (pop * np.exp(eta)).sum() / pop.sum()
    mu = pop * rate_per_1000 / 1000.0 * np.exp(eta) / c

    rng = np.random.Generator(np.random.PCG64(seed))

    area_effect = rng.gamma(shape=1.0 / alpha, scale=alpha, size=len(mu)) if alpha > 0 else np.ones(len(mu))
    cases = rng.poisson(mu * area_effect).astype(np.int64)
    cases_prev = rng.poisson(mu * area_effect / (1.0 + trend)).astype(np.int64)

    names = [k for k in KINDS if k in kinds]
    shares = np.array([kinds[k]["share"] for k in names], float)
    shares = shares / shares.sum()
    out = pd.DataFrame(index=frame.index)
    out["hze_cases"] = cases
    out["hze_cases_prev"] = cases_prev
    by_kind = np.vstack([rng.multinomial(n, shares) for n in cases]) if len(cases) else np.zeros((0, len(names)))
    by_kind_prev = (
        np.vstack([rng.multinomial(n, shares) for n in cases_prev]) if len(cases) else np.zeros((0, len(names)))
    )
    cost_total = np.zeros(len(frame), dtype=np.int64)
    for j, kind in enumerate(names):
        out[f"hze_cases_{kind}"] = by_kind[:, j].astype(np.int64)
        out[f"hze_cases_prev_{kind}"] = by_kind_prev[:, j].astype(np.int64)
        noise = np.exp(rng.normal(0.0, cost_sd_log, len(frame)) - cost_sd_log**2 / 2)
        cost = np.rint(by_kind_prev[:, j] * kinds[kind]["cost_per_case_eur"] * noise).astype(np.int64)
        out[f"hze_cost_prev_{kind}_eur"] = cost
        if kind in budget_kinds:
            cost_total += cost
    out["hze_cost_prev_eur"] = cost_total
    return out
