"""BYM2 fit times at 58, 1,000 and 10,000 areas (synthetic lattice adjacency).

Data are simulated from a known BYM2 (σ = 0.5, ρ = 0.7, one predictor,
expected cases 8–60 per area) on an r × c rook lattice. Reported per size:
graph preparation (components, scaling, eigen decomposition), sampling wall
time including JIT compilation, CPU time, mean leapfrog steps per iteration,
the largest split-R̂ and the smallest ESS of the hyperparameters, and the
coverage of the 90 % intervals of the true relative risks.

    PYTHONPATH=. python benchmarks/bench_bym2.py                 # 58 and 1,000 areas, default settings
    PYTHONPATH=. python benchmarks/bench_bym2.py --sizes 10000 --chains 2 --warmup 500 --draws 500

Prints a Markdown table row per size. Timings depend on the load of the
machine: the CPU column is the process CPU time (all threads).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import pandas as pd

from geoplan.stages.model.bym2 import BYM2Model, adjacency_graph

SHAPES = {58: (2, 29), 1000: (25, 40), 10000: (100, 100)}


def lattice_pairs(r: int, c: int) -> np.ndarray:
    idx = np.arange(r * c).reshape(r, c)
    right = np.column_stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()])
    down = np.column_stack([idx[:-1, :].ravel(), idx[1:, :].ravel()])
    return np.vstack([right, down])


def simulate(n: int, seed: int = 0):
    r, c = SHAPES.get(n, (1, n))
    pairs = lattice_pairs(r, c)
    rng = np.random.default_rng(seed)
    if n <= 2000:
        g = adjacency_graph(pairs, n, eigenvalues=False, basis=True)
        phi = g.basis @ rng.normal(size=g.basis.shape[1])
    else:  # scaled ICAR draw by Gibbs-free route: smooth noise, centred and scaled to geometric-mean variance ~1
        from scipy.sparse import coo_matrix, diags, identity
        from scipy.sparse.linalg import spsolve

        A = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
        A = (A + A.T).tocsr()
        Q = diags(np.asarray(A.sum(axis=1)).ravel()) - A
        # a proper CAR approximation of the ICAR for simulation only
        phi = spsolve((Q + 0.01 * identity(n)).tocsc(), rng.normal(size=n) * np.sqrt(np.asarray(A.sum(axis=1)).ravel()))
        phi = (phi - phi.mean()) / phi.std()
    x = rng.normal(size=n)
    e = rng.uniform(8, 60, n)
    log_rr = 0.3 * x + 0.5 * (np.sqrt(0.3) * rng.normal(size=n) + np.sqrt(0.7) * phi)
    y = rng.poisson(e * np.exp(log_rr))
    return pairs, pd.DataFrame({"x": x}), y, e, np.exp(log_rr)


def run(n: int, chains: int, warmup: int, draws: int) -> dict:
    pairs, X, y, e, true_rr = simulate(n)
    m = BYM2Model(chains=chains, warmup=warmup, draws=draws, seed=0)
    c0, t0 = time.process_time(), time.perf_counter()
    m.fit(X, y, exposure=e, adjacency=pairs)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    lo, hi = np.quantile(m.draws_["relative_risk"], [0.05, 0.95], axis=0)
    return {
        "areas": n,
        "icar": "eigen" if m.graph_.basis is not None else "pairwise",
        "chains×(warmup+draws)": f"{chains}×({warmup}+{draws})",
        "graph_s": round(m.graph_seconds_, 1),
        "fit_wall_s": round(wall, 1),
        "sampling_s": round(m.fit_seconds_, 1),
        "cpu_s": round(cpu, 1),
        "leapfrog_steps": round(m.mean_leapfrog_steps_, 1),
        "max_r_hat": round(m.max_r_hat_, 3),
        "min_ess_hyper": int(m.summary_["ess"].min()),
        "divergent": m.n_divergent_,
        "coverage_90": round(float(((lo <= true_rr) & (true_rr <= hi)).mean()), 3),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[58, 1000])
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--draws", type=int, default=1000)
    a = ap.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    rows = []
    for n in a.sizes:
        rows.append(run(n, a.chains, a.warmup, a.draws))
        if len(rows) == 1:
            print("| " + " | ".join(rows[0]) + " |")
            print("|" + "---:|" * len(rows[0]))
        print("| " + " | ".join(map(str, rows[-1].values())) + " |", flush=True)


if __name__ == "__main__":
    main()
