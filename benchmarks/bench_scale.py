"""Benchmark: the two stages that did not scale (issue 15), on 10,000 Sozialräume.

* ``suppress``: small-cell suppression of one HzE count column, no group
  column, 20 % small counts (1 or 2), 10 % zeros.
* ``corridor``: Monte Carlo weight sensitivity, 10,000 draws × 10,000
  Sozialräume with a ±10 % corridor (the data of bench_sensitivity.py).

Prints CPU and wall seconds and a digest of the result table, so a run of an
older checkout (``PYTHONPATH=<old checkout>``, started outside this folder)
can be compared for identical results.

Run: ``PYTHONPATH=. python benchmarks/bench_scale.py suppress|corridor [--areas N --draws D --jobs J]``
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import sys
import time

import numpy as np
import pandas as pd


def suppress_case(n: int):
    from geoplan.privacy.suppress import suppress_counts

    rng = np.random.default_rng(1)
    c = rng.integers(3, 60, n)
    small = rng.random(n) < 0.2
    c[small] = rng.integers(1, 3, small.sum())
    c[rng.random(n) < 0.1] = 0
    f = pd.DataFrame({"key": [f"{i:05d}" for i in range(n)], "hze_cases": c})
    t, w = time.process_time(), time.perf_counter()
    r = suppress_counts(f, columns=["hze_cases"])
    cpu, wall = time.process_time() - t, time.perf_counter() - w
    digest = hashlib.sha256(r.frame.to_csv().encode() + r.kind.to_csv().encode()).hexdigest()[:16]
    return cpu, wall, digest, f"{r.primary} primary, {r.secondary} secondary cells"


def corridor_case(n: int, draws: int, jobs):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_sensitivity import SPEC, make_frame

    from geoplan.stages.sensitivity import weight_sensitivity

    f = make_frame(n, seed=4)
    spec = {**SPEC, "total_eur": int(f["hze_cost_prev_eur"].sum()), "corridor": {"max_change_pct": 10}}
    small = f.head(300)
    weight_sensitivity(small, {**spec, "total_eur": int(small["hze_cost_prev_eur"].sum())}, n_draws=50)  # warm-up
    t, w = time.process_time(), time.perf_counter()
    r = weight_sensitivity(f, spec, n_draws=draws, seed=1, n_jobs=jobs)
    cpu, wall = time.process_time() - t, time.perf_counter() - w
    return cpu, wall, hashlib.sha256(r.table.to_csv().encode()).hexdigest()[:16], f"{draws} draws"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=["suppress", "corridor"])
    ap.add_argument("--areas", type=int, default=10_000)
    ap.add_argument("--draws", type=int, default=10_000)
    ap.add_argument("--jobs", type=int, default=None)
    a = ap.parse_args()
    if a.case == "suppress":
        cpu, wall, digest, what = suppress_case(a.areas)
    else:
        cpu, wall, digest, what = corridor_case(a.areas, a.draws, a.jobs)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{a.case} {a.areas} areas ({what}): CPU {cpu:.2f} s, wall {wall:.2f} s, peak RSS {rss:.0f} MB, "
          f"load {os.getloadavg()[0]:.1f}, result {digest}")


if __name__ == "__main__":
    main()
