"""Benchmark: Monte Carlo weight sensitivity (geoplan.stages.sensitivity.weight_sensitivity).

Measures the vectorised implementation on 10,000 draws × 10,000 Sozialräume
and compares it with the straightforward peer — one ``geoplan.stages.allocate.allocate``
call per draw — on a smaller case, where both run in the same process on the
same data. Synthetic data, fixed seeds.

Run: ``PYTHONPATH=. python benchmarks/bench_sensitivity.py [--draws 10000 --areas 10000]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import pandas as pd

from geoplan.stages.allocate import allocate, parse_spec
from geoplan.stages.sensitivity import weight_sensitivity

SPEC = {
    "total_eur": 1_000_000_000,
    "components": [
        {"name": "bev", "type": "population", "weight": 0.3},
        {"name": "isa", "type": "indicator", "indicators": {"kinderarmut": 0.6, "alleinerziehende": 0.4},
         "base": "pop_u21", "weight": 0.3},
        {"name": "modell", "type": "model", "weight": 0.3},
        {"name": "vorjahr", "type": "prior_year", "weight": 0.1},
    ],
}


def make_frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "key": [f"{i:06d}" for i in range(n)],
        "pop_u21": rng.integers(200, 9000, n),
        "kinderarmut": rng.uniform(1, 60, n),
        "alleinerziehende": rng.uniform(5, 45, n),
        "expected_cases": rng.uniform(2, 150, n),
        "hze_cost_prev_eur": rng.integers(50_000, 3_000_000, n),
    })


def per_draw_loop(frame, spec, weights: pd.DataFrame) -> np.ndarray:
    """The straightforward peer: one allocate() per weight draw, then quantiles."""
    spec = parse_spec(spec)
    out = np.empty((len(weights), len(frame)))
    for d, row in enumerate(weights.itertuples(index=False)):
        comps = [c.model_copy(update={"weight": float(w)}) for c, w in zip(spec.components, row)]
        out[d] = allocate(frame, spec.model_copy(update={"components": comps})).table["budget_eur"].to_numpy()
    return np.quantile(out, [0.05, 0.5, 0.95], axis=0, method="inverted_cdf")


def timed(fn, repeat=1):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t)
    return best, value


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--draws", type=int, default=10_000)
    ap.add_argument("--areas", type=int, default=10_000)
    ap.add_argument("--small-draws", type=int, default=200)
    ap.add_argument("--small-areas", type=int, default=1_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", default=None, help="write the numbers to this file")
    args = ap.parse_args()
    results = {"machine": {"python": platform.python_version(), "numpy": np.__version__,
                           "cpus": os.cpu_count(), "load_avg_1min": os.getloadavg()[0]}}

    big = make_frame(args.areas)
    weight_sensitivity(make_frame(500), SPEC, n_draws=100)  # warm-up (imports, BLAS threads)
    for jobs in (1, None):
        t, res = timed(lambda: weight_sensitivity(big, SPEC, n_draws=args.draws, seed=1, n_jobs=jobs), args.repeat)
        label = f"vectorised_{args.draws}x{args.areas}_jobs{jobs or 'auto'}"
        results[label] = {"seconds": round(t, 3), "draws_per_second": round(args.draws / t, 1)}
        print(f"{label}: {t:.2f} s ({args.draws / t:,.0f} draws/s over {args.areas:,} Sozialräume)")

    # with a ±10 % corridor (vectorised bisection per draw) on fewer Sozialräume
    mid = make_frame(1_000, seed=4)
    cspec = {**SPEC, "total_eur": int(mid["hze_cost_prev_eur"].sum()), "corridor": {"max_change_pct": 10}}
    t, _ = timed(lambda: weight_sensitivity(mid, cspec, n_draws=args.draws, seed=1), args.repeat)
    label = f"vectorised_corridor_{args.draws}x1000"
    results[label] = {"seconds": round(t, 3), "draws_per_second": round(args.draws / t, 1)}
    print(f"{label}: {t:.2f} s ({args.draws / t:,.0f} draws/s over 1,000 Sozialräume, ±10 % corridor)")

    small = make_frame(args.small_areas, seed=2)
    t_vec, res = timed(lambda: weight_sensitivity(small, SPEC, n_draws=args.small_draws, seed=3), args.repeat)
    t_loop, q = timed(lambda: per_draw_loop(small, SPEC, res.weights), 1)
    diff = np.abs(res.table["p50_eur"].to_numpy() - q[1]).max()
    results["small_case"] = {
        "draws": args.small_draws, "areas": args.small_areas,
        "vectorised_seconds": round(t_vec, 4), "per_draw_allocate_seconds": round(t_loop, 3),
        "speedup": round(t_loop / t_vec, 1), "max_abs_diff_median_eur": float(diff),
        "per_draw_allocate_extrapolated_big_seconds": round(t_loop / args.small_draws * args.draws
                                                           * args.areas / args.small_areas, 0),
    }
    print(f"small case {args.small_draws} draws × {args.small_areas} Sozialräume: vectorised {t_vec:.3f} s, "
          f"per-draw allocate() {t_loop:.2f} s (×{t_loop / t_vec:.0f}); medians agree within {diff:.0f} EUR")
    print(f"per-draw loop extrapolated to {args.draws}×{args.areas}: "
          f"~{results['small_case']['per_draw_allocate_extrapolated_big_seconds']:.0f} s (linear in draws and areas)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
