"""BYM2 fit times at 58, 1,000 and 10,000 Sozialräume, with a Poisson GLM as the peer.

Data: ``geoplan.synthetic.make_sozialraeume(n, geometry=True,
spatial_effect=0.3)`` — square cells (queen adjacency from the polygons, as
the pipeline builds it), the three default indicators as predictors, the
population under 21 as exposure, a smooth spatial effect the GLM does not
know about. The BYM2 settings are the defaults of ``model.bym2``
(:class:`geoplan.config.BYM2Config`: chains, warm-up, draws, target
acceptance, tree depth, PC priors) unless overridden on the command line.

Reported per size: adjacency (queen contiguity from the polygons), the BYM2
fit wall time (graph preparation + NUTS sampling including JIT compilation),
its CPU time, mean leapfrog steps per iteration, the largest split-R̂ and the
smallest ESS of the parameters (β, σ, ρ), divergences, the coverage of the
true expected cases by the 90 % intervals, and in the same process the
statsmodels Poisson GLM of the same data (wall time and the ratio).

``--probe N`` (used for sizes above 2,000 by default) first runs one chain
with N warm-up iterations and 10 draws and prints the time per 100
iterations and the *extrapolated* time of the full fit, before the full fit
starts, so a run stopped by ``timeout`` still leaves a measured number.

    PYTHONPATH=. python benchmarks/bench_bym2.py                       # 58 and 1,000 areas
    PYTHONPATH=. timeout 900 python benchmarks/bench_bym2.py --sizes 10000

Prints Markdown table rows. Timings depend on the machine and its load; the
CPU column is the process CPU time (all threads).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from geoplan.config import BYM2Config
from geoplan.stages.model.bym2 import BYM2Model, queen_adjacency
from geoplan.synthetic import DEFAULT_COEF, make_sozialraeume

PREDICTORS = list(DEFAULT_COEF)


def data(n: int, seed: int = 0):
    frame, truth = make_sozialraeume(n, geometry=True, spatial_effect=0.3, seed=seed)
    return frame, np.asarray(truth["mu"], dtype=float)


def estimator(cfg: BYM2Config, **over) -> BYM2Model:
    s = {"chains": cfg.chains, "warmup": cfg.warmup, "draws": cfg.draws, "seed": cfg.seed,
         "target_accept": cfg.target_accept, "max_tree_depth": cfg.max_tree_depth, **over}
    return BYM2Model(sigma_prior=tuple(cfg.sigma_prior), rho_prior=tuple(cfg.rho_prior),
                     coef_prior_sd=cfg.coef_prior_sd, **s)


def glm_seconds(frame) -> float:
    import statsmodels.api as sm

    X = sm.add_constant(frame[PREDICTORS].to_numpy(float))
    t0 = time.perf_counter()
    sm.GLM(frame["hze_cases"].to_numpy(float), X, family=sm.families.Poisson(),
           exposure=frame["pop_u21"].to_numpy(float)).fit()
    return time.perf_counter() - t0


def probe(frame, adjacency, cfg: BYM2Config, iters: int) -> dict:
    """One chain, ``iters`` warm-up iterations + 10 draws: time per 100 iterations and the extrapolation."""
    m = estimator(cfg, chains=1, warmup=iters, draws=10)
    t0 = time.perf_counter()
    m.fit(frame[PREDICTORS], frame["hze_cases"], exposure=frame["pop_u21"], adjacency=adjacency)
    wall = time.perf_counter() - t0
    per100 = 100 * m.fit_seconds_ / (iters + 10)  # includes JIT compilation: an upper bound per iteration
    total = cfg.chains * (cfg.warmup + cfg.draws)
    return {"iters": iters + 10, "wall": wall, "per100": per100, "steps": m.mean_leapfrog_steps_,
            "graph": m.graph_seconds_, "sampling": m.fit_seconds_,
            "extrapolated": m.graph_seconds_ + per100 * total / 100}


def run(n: int, cfg: BYM2Config, probe_iters: int) -> dict:
    frame, mu_true = data(n)
    t0 = time.perf_counter()
    adjacency = queen_adjacency(frame.geometry)
    adj_s = time.perf_counter() - t0
    glm_s = glm_seconds(frame)
    if probe_iters:
        p = probe(frame, adjacency, cfg, probe_iters)
        print(f"<!-- {n} areas, probe: 1 chain × {p['iters']} iterations in {p['wall']:.0f} s "
              f"(graph preparation {p['graph']:.0f} s, sampling {p['sampling']:.0f} s = {p['per100']:.1f} s per 100 "
              f"iterations incl. compilation, {p['steps']:.0f} leapfrog steps each, the rest post-processing); "
              f"EXTRAPOLATED graph + sampling of {cfg.chains}×({cfg.warmup}+{cfg.draws}): "
              f"{p['extrapolated'] / 60:.0f} min, post-processing not included -->", flush=True)
    m = estimator(cfg)
    c0, t0 = time.process_time(), time.perf_counter()
    m.fit(frame[PREDICTORS], frame["hze_cases"], exposure=frame["pop_u21"], adjacency=adjacency)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    lo, hi = np.quantile(m.draws_["expected"], [0.05, 0.95], axis=0)
    return {
        "areas": n,
        "icar": "eigen" if m.graph_.basis is not None else "pairwise",
        "chains×(warmup+draws)": f"{cfg.chains}×({cfg.warmup}+{cfg.draws})",
        "queen_s": round(adj_s, 1),
        "bym2_wall_s": round(wall, 1),
        "bym2_cpu_s": round(cpu, 1),
        "leapfrog_steps": round(m.mean_leapfrog_steps_, 1),
        "max_r_hat": round(float(m.summary_["r_hat"].max()), 3),
        "min_ess": int(m.summary_["ess"].min()),
        "divergent": m.n_divergent_,
        "coverage_90": round(float(((lo <= mu_true) & (mu_true <= hi)).mean()), 3),
        "glm_s": round(glm_s, 3),
        "bym2/glm": f"{wall / glm_s:,.0f}×",
    }


def main():
    d = BYM2Config()
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[58, 1000])
    ap.add_argument("--chains", type=int, default=d.chains)
    ap.add_argument("--warmup", type=int, default=d.warmup)
    ap.add_argument("--draws", type=int, default=d.draws)
    ap.add_argument("--probe", type=int, default=None,
                    help="warm-up iterations of the one-chain probe (default: 100 above 2,000 areas, else none)")
    a = ap.parse_args()
    cfg = d.model_copy(update={"chains": a.chains, "warmup": a.warmup, "draws": a.draws})
    print(f"<!-- {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}; target_accept {cfg.target_accept}, max_tree_depth {cfg.max_tree_depth} -->",
          flush=True)
    header = False
    for n in a.sizes:
        row = run(n, cfg, a.probe if a.probe is not None else (100 if n > 2000 else 0))
        if not header:
            print("| " + " | ".join(row) + " |")
            print("|" + "---:|" * len(row))
            header = True
        print("| " + " | ".join(map(str, row.values())) + " |", flush=True)


if __name__ == "__main__":
    main()
