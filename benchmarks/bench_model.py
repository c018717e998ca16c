"""Benchmark of the HzE demand model (run: PYTHONPATH=. python benchmarks/bench_model.py).

Times fit_need_model (fit, 5-fold + blocked CV, bootstrap intervals, funnel,
Moran's I) on synthetic Sozialräume of Berlin's size (542 Planungsräume) and
larger, and the 100-replication coverage study used by the tests.
"""

from __future__ import annotations

import time

import numpy as np

from geoplan.stages.model import HzEDemandModel, fit_cost_model, fit_need_model
from geoplan.synthetic import make_sozialraeume

PRED = ["arbeitslosigkeit", "kinderarmut", "alleinerziehende"]


def timed(fn, repeat=3):
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    for n, geometry in [(542, False), (542, True), (2000, True), (10000, False)]:
        frame, _ = make_sozialraeume(n, alpha=0.1, seed=1, geometry=geometry, n_bezirke=12)
        t, res = timed(lambda: fit_need_model(frame, predictors=PRED, n_boot=1000, seed=0), repeat=2)
        print(f"fit_need_model n={n:>5} geometry={geometry!s:5} n_boot=1000: {t:6.2f} s  family={res.fit['family']}")
    frame, _ = make_sozialraeume(542, alpha=0.1, seed=1)
    t, _ = timed(lambda: HzEDemandModel().fit(frame[PRED], frame["hze_cases"], exposure=frame["pop_u21"]))
    print(f"HzEDemandModel.fit n=542 (auto -> NB2): {t * 1000:6.1f} ms")
    t, _ = timed(lambda: fit_cost_model(frame, predictors=PRED))
    print(f"fit_cost_model n=542, 3 kinds (gamma): {t * 1000:6.1f} ms")

    def coverage():
        hits = np.zeros(len(PRED), dtype=int)
        for seed in range(100):
            f, truth = make_sozialraeume(100, alpha=0.1, seed=2000 + seed)
            m = HzEDemandModel(family="negbin", standardize=False).fit(f[PRED], f["hze_cases"], exposure=f["pop_u21"])
            true = np.array([truth["coef"][c] for c in PRED])
            ci = m.conf_int_.to_numpy()[1:]
            hits += (ci[:, 0] <= true) & (true <= ci[:, 1])
        return hits

    t, hits = timed(coverage, repeat=1)
    print(f"coverage study 100 x NB2 n=100: {t:6.2f} s, 95 % CI coverage per coefficient {hits.tolist()}")


if __name__ == "__main__":
    main()
