"""Synthetic Sozialräume with a known HzE demand model (for tests and demos).

The generator draws social indicators (percent), a population under 21
(exposure, persons) and HzE case counts from a log-linear model

    log E[cases_i] = log(pop_u21_i) + intercept + sum_j coef_j * x_ij (+ year effect)
    cases_i ~ NB2(mean mu_i, alpha)   (Poisson when alpha == 0)

where NB2 is the gamma-Poisson mixture with Var = mu + alpha * mu²
(Cameron & Trivedi 2013, *Regression Analysis of Count Data*, ch. 3).
Coefficients are per unit of the raw indicator (per percentage point), so the
fitted per-SD coefficients must be divided by the predictor's standard
deviation to compare (``HzEDemandModel.coef_raw_`` does that).

The areas are laid out as squares on a regular grid in EPSG:25833 (metres) so
that spatial statistics (queen contiguity, Moran's I) can be exercised; an
optional smooth spatial effect creates residual autocorrelation on purpose.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DEFAULT_COEF = {"arbeitslosigkeit": 0.04, "kinderarmut": 0.015, "alleinerziehende": 0.01}
DEFAULT_INTERCEPT = -5.0
KINDS = ("ambulant", "teilstationaer", "stationaer")
# Mean cost per case and year by kind of help, EUR (order of magnitude of German HzE statistics).
_COST_PER_CASE = {"ambulant": 14_000.0, "teilstationaer": 32_000.0, "stationaer": 62_000.0}
_KIND_SHARE = {"ambulant": 0.6, "teilstationaer": 0.1, "stationaer": 0.3}


def _draw_counts(rng: np.random.Generator, mu: np.ndarray, alpha: float) -> np.ndarray:
    if alpha <= 0:
        return rng.poisson(mu)
    # NB2 as gamma-Poisson mixture: lambda ~ Gamma(shape 1/alpha, scale alpha*mu), E = mu, Var = mu + alpha mu².
    lam = rng.gamma(shape=1.0 / alpha, scale=alpha * mu)
    return rng.poisson(lam)


def make_sozialraeume(
    n: int = 200,
    coef: dict[str, float] | None = None,
    intercept: float | None = None,
    alpha: float = 0.0,
    exposure_range: tuple[int, int] = (200, 5000),
    seed: int = 0,
    *,
    n_bezirke: int = 8,
    years: int = 1,
    year_effect: float = 0.05,
    spatial_effect: float = 0.0,
    geometry: bool = False,
    cell_m: float = 1000.0,
):
    """Draw ``n`` synthetic Sozialräume with known demand coefficients.

    Parameters
    ----------
    n : number of Sozialräume.
    coef : raw coefficients per percentage point of each indicator
        (log rate ratio); defaults to :data:`DEFAULT_COEF`. Any name works; the
        indicator is then drawn from N(20, 6²) percent clipped to [0, 100].
    intercept : log rate per person under 21 at indicator value 0.
    alpha : NB2 overdispersion (0 = Poisson).
    exposure_range : uniform range of the population under 21 (persons).
    seed : seed of ``numpy.random.default_rng``.
    n_bezirke : number of Bezirke (contiguous vertical strips of the grid).
    years : number of years; > 1 returns a long panel with a ``year`` column
        (latest year last), the indicators drifting a little each year and a
        log year effect ``year_effect`` per year (latest year = 0).
    spatial_effect : SD of a smooth spatial random effect on the log rate
        (creates residual autocorrelation that the model does not know about).
    geometry : return a GeoDataFrame of square cells (EPSG:25833, ``cell_m`` m).

    Returns
    -------
    (frame, truth)
        ``frame`` has the standard columns ``key``, ``name``, ``bezirk``,
        ``pop_u21``, the indicators (%), ``hze_cases``, ``hze_cases_prev``,
        ``hze_cases_<kind>``, ``hze_cost_prev_eur`` and
        ``hze_cost_prev_<kind>_eur`` (int EUR). ``truth`` is a dict with
        ``intercept``, ``coef`` (raw), ``alpha``, ``year_effects`` (dict year ->
        log effect) and ``mu`` (the true expected cases per row).
    """
    rng = np.random.default_rng(seed)
    coef = dict(DEFAULT_COEF if coef is None else coef)
    intercept = DEFAULT_INTERCEPT if intercept is None else float(intercept)
    n = int(n)
    ncols = int(np.ceil(np.sqrt(n)))
    col = np.arange(n) % ncols
    row = np.arange(n) // ncols
    bezirk_of_col = np.minimum((col * n_bezirke) // ncols, n_bezirke - 1)

    # Correlated indicators through one latent deprivation factor, as in real small-area data.
    latent = rng.normal(size=n)
    base = {}
    spec = {"arbeitslosigkeit": (7.0, 3.0), "kinderarmut": (25.0, 12.0), "alleinerziehende": (28.0, 7.0)}
    for name in coef:
        mean, sd = spec.get(name, (20.0, 6.0))
        base[name] = np.clip(mean + sd * (0.7 * latent + 0.71 * rng.normal(size=n)), 0.0, 100.0)
    lo, hi = exposure_range
    pop = rng.integers(int(lo), int(hi) + 1, size=n)

    if spatial_effect > 0:
        x, y = col / max(ncols - 1, 1), row / max(row.max(), 1)
        field = np.sin(2 * np.pi * x) + np.cos(2 * np.pi * y)
        field = spatial_effect * (field - field.mean()) / (field.std() or 1.0)
    else:
        field = np.zeros(n)

    year_values = list(range(2024 - years + 1, 2025))
    year_effects = {yr: year_effect * (yr - year_values[-1]) for yr in year_values}
    frames, mus = [], []
    prev_cases = None
    for t, yr in enumerate(year_values):
        drift = years - 1 - t
        ind = {k: np.clip(v + 0.3 * drift * rng.normal(size=n), 0.0, 100.0) for k, v in base.items()}
        pop_t = np.maximum(1, np.round(pop * (1 - 0.01 * drift))).astype(int)
        eta = intercept + sum(coef[k] * ind[k] for k in coef) + field + year_effects[yr]
        mu = pop_t * np.exp(eta)
        cases = _draw_counts(rng, mu, alpha)
        if prev_cases is None:
            prev_cases = _draw_counts(rng, mu * np.exp(-year_effect), alpha)
        kinds = rng.multinomial(1, [_KIND_SHARE[k] for k in KINDS], size=int(cases.sum()))
        owner = np.repeat(np.arange(n), cases)
        by_kind = {k: np.bincount(owner, weights=kinds[:, j], minlength=n).astype(int) for j, k in enumerate(KINDS)}
        f = pd.DataFrame(
            {
                "key": [f"{i + 1:04d}" for i in range(n)],
                "name": [f"Sozialraum {i + 1}" for i in range(n)],
                "bezirk": [f"Bezirk {b + 1}" for b in bezirk_of_col],
                "pop_u21": pop_t,
                **ind,
                "hze_cases": cases.astype(int),
                "hze_cases_prev": np.asarray(prev_cases, dtype=int),
            }
        )
        total_cost = np.zeros(n)
        for k in KINDS:
            f[f"hze_cases_{k}"] = by_kind[k]
            # Cost per case rises a little with deprivation; Gamma noise with CV 1/sqrt(shape * cases).
            cpc = _COST_PER_CASE[k] * np.exp(0.1 * latent)
            shape = 4.0 * np.maximum(by_kind[k], 1)
            cost = np.where(by_kind[k] > 0, by_kind[k] * rng.gamma(shape, cpc / shape), 0.0)
            f[f"hze_cost_prev_{k}_eur"] = np.round(cost).astype(np.int64)
            total_cost += f[f"hze_cost_prev_{k}_eur"].to_numpy()
        f["hze_cost_prev_eur"] = total_cost.astype(np.int64)
        if years > 1:
            f.insert(0, "year", yr)
        frames.append(f)
        mus.append(mu)
        prev_cases = cases
    frame = pd.concat(frames, ignore_index=True)
    if geometry:
        import geopandas as gpd
        from shapely import box

        x0 = np.tile(col, len(year_values)) * cell_m + 380_000.0
        y0 = np.tile(row, len(year_values)) * cell_m + 5_810_000.0
        geoms = box(x0, y0, x0 + cell_m, y0 + cell_m)
        frame = gpd.GeoDataFrame(frame, geometry=geoms, crs="EPSG:25833")
    truth = {
        "intercept": intercept,
        "coef": coef,
        "alpha": float(alpha),
        "year_effects": year_effects,
        "mu": np.concatenate(mus),
    }
    return frame, truth


# Shares of the residents under 21 by age group (18–27 counts a third, as in the Berlin example's derived pop_u21).
_AGE_SHARES = {"pop_u6": 0.30, "pop_6_15": 0.43, "pop_15_18": 0.14, "pop_18_27": 0.39}
_EXAMPLE_INDICATORS = {
    "arbeitslosigkeit": "Arbeitslosigkeit",
    "transferbezug": "Transferbezug",
    "kinderarmut": "Kinderarmut",
    "alleinerziehende": "Alleinerziehende Haushalte",
}


def write_example(folder, n: int = 40, seed: int = 0) -> dict:
    """Write a small synthetic city (``n`` square Sozialräume) as input files; return its config as a dict.

    Files in ``folder``: ``sozialraeume.gpkg`` (key, name, bezirk; EPSG:25833),
    ``indikatoren.csv`` (residents by age group and four indicators in %) and
    ``katalog.yaml``. The config has the sections of the Berlin example
    (simulated HzE data, the same need model and budget formula) and runs in
    seconds: for tests of what does not depend on Berlin, e.g. the presets.
    Relative paths in it refer to ``folder`` (``config_from_dict(raw, base_dir=folder)``).
    """
    from pathlib import Path

    import yaml

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    coef = {**DEFAULT_COEF, "transferbezug": 0.0}
    frame, _ = make_sozialraeume(n, coef=coef, seed=seed, geometry=True, n_bezirke=4, exposure_range=(1500, 6000))
    frame[["key", "name", "bezirk", "geometry"]].to_file(folder / "sozialraeume.gpkg", driver="GPKG")
    table = pd.DataFrame({"key": frame["key"]})
    for col, share in _AGE_SHARES.items():
        table[col] = np.round(frame["pop_u21"] * share).astype(int)
    table["pop_total"] = np.round(frame["pop_u21"] * 5).astype(int)
    for name in _EXAMPLE_INDICATORS:
        table[name] = frame[name].round(2)
    table.to_csv(folder / "indikatoren.csv", index=False, sep=";")
    catalogue = {
        "title": "Synthetische Indikatoren (Testbeispiel)",
        "indicators": [
            {"name": name, "label": label, "column": name, "base": ["pop_total"], "unit": "%",
             "direction": "hoch = mehr Bedarf", "weight": 1.0, "source": "synthetisch (geoplan.synthetic)",
             "reference_date": "31.12.2024"}
            for name, label in _EXAMPLE_INDICATORS.items()
        ],
    }
    (folder / "katalog.yaml").write_text(yaml.safe_dump(catalogue, allow_unicode=True, sort_keys=False), encoding="utf-8")
    columns = {c: c for c in [*_AGE_SHARES, "pop_total", *_EXAMPLE_INDICATORS]}
    return {
        "title": "Sozialraumbudget (synthetisches Beispiel)",
        "region": "Beispielstadt",
        "budget_year": 2027,
        "boundaries": {"path": "sozialraeume.gpkg", "key": "key", "name": "name", "group": "bezirk"},
        "indicators": {
            "catalogue": "katalog.yaml",
            "tables": [{"path": "indikatoren.csv", "key": "key", "delimiter": ";", "columns": columns,
                        "label": "Synthetische Indikatoren", "source": "geoplan.synthetic"}],
            "derived": {"pop_u21": {"pop_u6": 1, "pop_6_15": 1, "pop_15_18": 1, "pop_18_27": 1 / 3}},
        },
        "hze": {
            "simulate": {"seed": seed, "rate_per_1000": 30, "alpha": 0.03,
                         "effects": {"kinderarmut": 0.35, "alleinerziehende": 0.12, "arbeitslosigkeit": 0.05},
                         "kinds": {"ambulant": {"share": 0.62, "cost_per_case_eur": 7000},
                                   "teilstationaer": {"share": 0.08, "cost_per_case_eur": 20000},
                                   "stationaer": {"share": 0.30, "cost_per_case_eur": 62000}}},
            "budget_kinds": ["ambulant", "teilstationaer"],
        },
        "model": {"predictors": ["kinderarmut", "alleinerziehende", "arbeitslosigkeit"], "n_boot": 200, "cv_folds": 4},
        "allocation": {
            "total_eur": 25_000_000,
            "components": [
                {"name": "grundanteil", "label": "Grundanteil nach Einwohnern unter 21", "type": "population",
                 "weight": 0.3, "columns": ["pop_u21"]},
                {"name": "bedarf", "label": "Bedarfsanteil nach erwarteten HzE-Fällen", "type": "model", "weight": 0.5,
                 "column": "expected_cases"},
                {"name": "sozialindikatoren", "label": "Sozialindikatoren (ISA)", "type": "indicator", "weight": 0.2,
                 "indicators": {"kinderarmut": 0.6, "alleinerziehende": 0.4}, "base": "pop_u21"},
            ],
            "corridor": {"max_change_pct": 15},
        },
        "sensitivity": {"n_draws": 200},
        "output": {"pdf": False},
    }
