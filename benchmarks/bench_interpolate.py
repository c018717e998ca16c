"""Benchmark: geoplan.stages.interpolate.area_interpolate vs tobler.area_interpolate.

Same process, same synthetic data: 10,000 source Voronoi cells and 1,000
target Voronoi cells over a 30 km × 30 km square in EPSG:25833, one extensive
and one intensive variable. Two scenarios:

* ``convex``: plain Voronoi cells (like grid cells or hexagons: convex);
* ``non-convex``: the same cells densified to 25 m and warped by a smooth
  displacement (still a tiling), so both layers are concave with 40–150
  vertices, like real statistical blocks and Sozialräume.
 Reports best-of-N wall time, peak traced memory
(tracemalloc: Python and numpy allocations; GEOS' own heap is not traced) and
the peak rise of the resident set size (sampled every 2 ms, includes GEOS).

Run:  PYTHONPATH=. python benchmarks/bench_interpolate.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import threading
import time
import tracemalloc
import warnings

import geopandas as gpd
import numpy as np
import shapely

from geoplan.stages.interpolate import area_interpolate

CRS = "EPSG:25833"


def voronoi_cells(n: int, seed: int, extent=(380000.0, 5800000.0, 410000.0, 5830000.0)) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = extent
    pts = shapely.multipoints(np.c_[rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)])
    frame = shapely.box(*extent)
    cells = shapely.get_parts(shapely.voronoi_polygons(pts, extend_to=frame))
    cells = shapely.intersection(cells, frame)
    return gpd.GeoDataFrame(
        {"pop": rng.integers(0, 3000, len(cells)).astype(float), "rate": rng.uniform(0, 40, len(cells))},
        geometry=cells, crs=CRS,
    )


def warped(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Densify and warp: a continuous displacement keeps the tiling, breaks convexity."""

    def move(xy):
        x, y = xy[:, 0], xy[:, 1]
        return np.c_[x + 120 * np.sin(y / 700.0), y + 120 * np.sin(x / 900.0)]

    out = gdf.copy()
    out["geometry"] = shapely.transform(shapely.segmentize(gdf.geometry.values, 25.0), move)
    return out


def _trim() -> None:
    # give freed heap back to the OS so the next RSS rise is the call's own
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(fn, repeat: int):
    """Best-of-`repeat` wall and CPU seconds, tracemalloc peak and sampled RSS peak rise (bytes).

    A first, untimed run measures memory (tracemalloc on, RSS sampled every
    2 ms against the level before the call); the timed runs follow. CPU time
    (this process only) is given because the benchmark machine is shared:
    wall time then includes waiting for a core.
    """
    _trim()
    base = _rss()
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.002)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    tracemalloc.start()
    fn()
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    stop.set()
    th.join()
    times, cpus = [], []
    result = None
    for _ in range(repeat):
        _trim()
        c = time.process_time()
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return min(times), min(cpus), traced, peak[0] - base, result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sources", type=int, default=10_000)
    ap.add_argument("--targets", type=int, default=1_000)
    args = ap.parse_args()
    from tobler.area_weighted import area_interpolate as tobler_ai

    print(f"{args.sources} sources x {args.targets} targets, {os.cpu_count()} CPUs, "
          f"{platform.processor() or platform.machine()}, best of {args.repeat}, load {os.getloadavg()[0]:.1f}")
    base_src = voronoi_cells(args.sources, 1)
    base_tgt = voronoi_cells(args.targets, 2)[["geometry"]]
    for scenario in ("convex", "non-convex"):
        src, tgt = (base_src, base_tgt) if scenario == "convex" else (warped(base_src), warped(base_tgt))
        nv = shapely.get_num_coordinates(src.geometry.values).mean(), shapely.get_num_coordinates(tgt.geometry.values).mean()
        print(f"\n## {scenario} (mean vertices: sources {nv[0]:.0f}, targets {nv[1]:.0f})")
        run(src, tgt, args.repeat, tobler_ai)


def run(src, tgt, repeat, tobler_ai) -> None:
    def ours():
        return area_interpolate(src, tgt, extensive=["pop"], intensive=["rate"])

    def tobler(n_jobs=1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return tobler_ai(src, tgt, extensive_variables=["pop"], intensive_variables=["rate"], n_jobs=n_jobs)

    def ours_serial():
        return area_interpolate(src, tgt, extensive=["pop"], intensive=["rate"], n_jobs=1)

    rows = [
        (f"geoplan ({os.cpu_count()} threads)", *measure(ours, repeat)),
        ("tobler n_jobs=1", *measure(tobler, repeat)),
        ("geoplan n_jobs=1", *measure(ours_serial, repeat)),
    ]
    if (os.cpu_count() or 1) > 1:
        rows.append((f"tobler n_jobs={os.cpu_count()}", *measure(lambda: tobler(-1), repeat)))
    ref = rows[1][5]
    print("| method | wall s | wall / geoplan | CPU s | CPU / geoplan | traced peak MB | RSS rise MB | max rel diff to tobler |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, t, cpu, traced, rss, res in rows:
        diff = max(
            float(np.max(np.abs(res[c] - ref[c]) / np.maximum(np.abs(ref[c]), 1e-12))) for c in ("pop", "rate")
        )
        print(f"| {name} | {t:.3f} | {t / rows[0][1]:.2f} | {cpu:.3f} | {cpu / rows[0][2]:.2f} | "
              f"{traced / 1e6:.1f} | {rss / 1e6:.1f} | {diff:.1e} |")
    print("tobler n_jobs>1 works in child processes: their CPU time and memory are not counted.")


if __name__ == "__main__":
    main()
