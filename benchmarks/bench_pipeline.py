"""Benchmark: geoplan end to end through the CLI, and the national 100 m grid case.

Pipeline runs
    ``geoplan demo`` (Berlin, 58 Prognoseräume) and synthetic projects of
    ``--sizes`` areas (default 58, 1,000, 10,000), each run as
    ``geoplan run <config> --out <dir>`` in a fresh Python process, with all
    outputs (report HTML and PDF, map, XLSX, GeoPackage, manifest; ``--no-pdf``
    leaves the PDF out). Measured per run: wall time, CPU time (user + system
    of the process and everything it waited for, from ``wait4``), peak RSS
    (``ru_maxrss`` of the run's process tree as reported by ``wait4``), and the
    wall and CPU time of every pipeline stage and every writer (the CLI's
    progress hook and the writer functions, timed inside the run's process).

    A synthetic project is made like the Berlin example: the same indicator
    catalogue and config, with the three input tables built by drawing rows of
    the real Berlin tables (542 Planungsräume) with replacement and a little
    noise, one square 400 m area per row on a grid in EPSG:25833, one Bezirk
    per 40 areas, and the HzE data simulated as in the demo.

National grid case (``--national``)
    Zensus 2022 100 m grid cells in the Zensus CSV format (``GITTER_ID_100m;
    x_mp_100m; y_mp_100m; Einwohner``, EPSG:3035 cell centres, "–" for cells
    without residents), synthetic: ``--cells`` populated cells (default
    3.1 million, about as many as Germany has) in clusters inside an
    area of Germany's extent, aggregated by :func:`geoplan.load.raster.
    zensus_grid_to_areas` onto ``--gemeinden`` (default 11,000) synthetic
    Gemeinden (Voronoi polygons of random points). Reported: time to read the
    CSV and aggregate, peak RSS of that process; the result is checked (the
    population total is preserved).

Run (from the repository):
``PYTHONPATH=. python benchmarks/bench_pipeline.py --sizes 58 1000 10000 --repeat 1 --demo-repeat 5``
``PYTHONPATH=. python benchmarks/bench_pipeline.py --national``
Prints Markdown tables (paste into benchmarks/README.md) and writes JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
BERLIN = REPO / "indicators" / "berlin"

# The child process: the CLI with timing hooks on its progress callback and writers.
CHILD = r"""
import json, os, sys, time
from contextlib import contextmanager
import geoplan.cli as cli
times = []

@contextmanager
def _stage(stage, label):
    w, c = time.perf_counter(), time.process_time()
    yield
    times.append({"part": stage, "wall": time.perf_counter() - w, "cpu": time.process_time() - c})

cli._stage = _stage

def timed(mod, name, label):
    fn = getattr(mod, name)
    def wrapper(*a, **k):
        w, c = time.perf_counter(), time.process_time()
        try:
            return fn(*a, **k)
        finally:
            times.append({"part": label, "wall": time.perf_counter() - w, "cpu": time.process_time() - c})
    setattr(mod, name, wrapper)

from geoplan.report import gpkg, html, published, xlsx
timed(published, "build_published", "write: published tables")
timed(html, "write_report", "write: bericht.html + pdf")
timed(html, "write_map", "write: karte.html")
timed(xlsx, "write_xlsx", "write: verteilung.xlsx")
timed(gpkg, "write_gpkg", "write: ergebnis.gpkg")
t0 = time.perf_counter()
code = cli.main(sys.argv[1:])
times.append({"part": "total in process", "wall": time.perf_counter() - t0, "cpu": time.process_time()})
with open(os.environ["GEOPLAN_BENCH_TIMES"], "w", encoding="utf-8") as fh:
    json.dump(times, fh)
sys.exit(code)
"""


# --------------------------------------------------------------------------
# synthetic project
# --------------------------------------------------------------------------
def _read_berlin():
    pop = pd.read_csv(BERLIN / "einwohner_plr_2022-06.csv", sep=";", dtype={"PLR-ID": str}, encoding="utf-8-sig")
    idx = pd.read_csv(BERLIN / "mss_2021_index_indikatoren.csv", dtype={"PLR_ID": str})
    ctx = pd.read_csv(BERLIN / "mss_2021_kontext_indikatoren.csv", dtype={"PLR_ID": str})
    idx = idx[(idx["KOM"] == "gültig")][["PLR_ID", "S1", "S3", "S4", "D1", "D3", "D4"]]
    ctx = ctx[(ctx["KOM"] == "gültig")][["PLR_ID", "KI_01", "KI_02"]]
    real = pop.rename(columns={"PLR-ID": "PLR_ID"}).merge(idx, on="PLR_ID").merge(ctx, on="PLR_ID")
    num = [c for c in real.columns if c != "PLR_ID"]
    real[num] = real[num].apply(lambda s: pd.to_numeric(s, errors="coerce"))
    real = real.dropna()
    real = real[(real[["S1", "S3", "S4", "KI_01", "KI_02"]] >= 0).all(axis=1) & (real["Gesamt"] > 500)]
    return real.reset_index(drop=True)


def make_project(n: int, folder: Path, seed: int = 0, pdf: bool = True) -> Path:
    """Write a synthetic project of ``n`` areas into ``folder``; return the config path."""
    import geopandas as gpd
    import shapely
    import yaml

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    real = _read_berlin()
    rows = real.iloc[rng.integers(0, len(real), n)].reset_index(drop=True)
    keys = [f"{i + 1:08d}" for i in range(n)]
    n_groups = max(3, int(round(n / 40)))
    bezirk = [f"Bezirk {g + 1:03d}" for g in (np.arange(n) * n_groups // n)]
    noise = rng.lognormal(0, 0.1, n)
    age = ["Gesamt", "unter6", "6-15", "15-18", "18-27", "27-45", "45-55", "55-65", "65undmehr"]
    pop = pd.DataFrame({c: np.maximum(0, np.round(rows[c] * noise)).astype(int) for c in age})
    pop["Gesamt"] = pop[age[1:]].sum(axis=1)
    pop["PLR-ID"] = keys
    pop.to_csv(folder / "einwohner.csv", sep=";", index=False)
    jitter = lambda c: np.round(np.clip(rows[c] * rng.lognormal(0, 0.05, n), 0, 100), 5)  # noqa: E731
    idx = pd.DataFrame({"ZEIT": 202012, "PLR_ID": keys, **{c: jitter(c) for c in ("S1", "S3", "S4")},
                        **{c: np.round(rows[c] + rng.normal(0, 0.05, n), 5) for c in ("D1", "D3", "D4")},
                        "KOM": "gültig"})
    idx.to_csv(folder / "mss_index.csv", index=False)
    ctx = pd.DataFrame({"ZEIT": 202012, "PLR_ID": keys, "KI_01": jitter("KI_01"), "KI_02": jitter("KI_02"), "KOM": "gültig"})
    ctx.to_csv(folder / "mss_kontext.csv", index=False)
    pd.DataFrame({"Planungsraum (Nummer)": keys, "Prognoseraum (Nummer)": keys, "Bezirk": bezirk}).to_csv(
        folder / "schluessel.csv", index=False)
    nx = int(np.ceil(np.sqrt(n)))
    side = 400.0
    x0, y0 = 370_000.0, 5_790_000.0
    i = np.arange(n)
    geom = shapely.box(x0 + (i % nx) * side, y0 + (i // nx) * side, x0 + (i % nx + 1) * side, y0 + (i // nx + 1) * side)
    gpd.GeoDataFrame({"id": keys, "name": [f"Sozialraum {k}" for k in keys]}, geometry=geom, crs=25833).to_file(
        folder / "gebiete.geojson", driver="GeoJSON")

    cfg = yaml.safe_load((REPO / "geoplan" / "examples" / "berlin.yaml").read_text(encoding="utf-8"))
    cfg["title"] = f"Sozialraumbudget, synthetisch ({n} Sozialräume)"
    cfg["region"] = "Synthetisch"
    cfg["boundaries"]["path"] = "gebiete.geojson"
    ind = cfg["indicators"]
    ind["catalogue"] = str(BERLIN / "katalog.yaml")
    ind["tables"][0]["path"] = "einwohner.csv"
    ind["tables"][1]["path"] = "mss_index.csv"
    ind["tables"][2]["path"] = "mss_kontext.csv"
    ind["aggregate"]["key_table"] = "schluessel.csv"
    cfg["output"]["pdf"] = pdf
    # total budget in proportion to the population, as in the demo (120 M EUR for Berlin)
    berlin = pd.read_csv(BERLIN / "einwohner_plr_2022-06.csv", sep=";", encoding="utf-8-sig")
    berlin_pop = pd.to_numeric(berlin["Gesamt"], errors="coerce").sum()
    # (× 1.2: the drawn Planungsräume have relatively more HzE costs than Berlin as a whole, so the
    # budget lands near the prior year's costs, inside the ±15 % corridor)
    cfg["allocation"]["total_eur"] = int(round(1.2 * cfg["allocation"]["total_eur"] * pop["Gesamt"].sum() / berlin_pop, -3))
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


# --------------------------------------------------------------------------
# runs
# --------------------------------------------------------------------------
def run_cli(args: list[str], workdir: Path) -> dict:
    """One CLI run in a fresh process: wall, CPU, peak RSS, per-part times."""
    times_file = workdir / f"times-{time.time_ns()}.json"
    env = {**os.environ, "GEOPLAN_BENCH_TIMES": str(times_file), "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, *args], env=env, cwd=workdir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode("utf-8", "replace")
    proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"geoplan {' '.join(args)} failed with exit code {code}:\n{err[-3000:]}")
    parts = json.loads(times_file.read_text(encoding="utf-8"))
    times_file.unlink()
    return {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "peak_rss_mb": ru.ru_maxrss / 1024, "parts": parts}


def output_sizes(out: Path) -> dict:
    return {p.name: p.stat().st_size for p in sorted(out.iterdir())}


def bench_sizes(sizes, repeat, demo_repeat, pdf, tmp: Path) -> dict:
    results = {}
    if demo_repeat:
        runs = []
        for r in range(demo_repeat):
            out = tmp / f"demo-{r}"
            runs.append(run_cli(["demo", "--out", str(out)], tmp))
        results["demo"] = {"runs": runs, "outputs": output_sizes(out)}
        print(f"demo: wall {[round(x['wall'], 1) for x in runs]} cpu {[round(x['cpu'], 1) for x in runs]}", flush=True)
    for n in sizes:
        cfg = make_project(n, tmp / f"project-{n}", pdf=pdf)
        runs = []
        for r in range(repeat):
            out = tmp / f"out-{n}-{r}"
            runs.append(run_cli(["run", str(cfg), "--out", str(out)], tmp))
        results[str(n)] = {"runs": runs, "outputs": output_sizes(out)}
        print(f"{n}: wall {[round(x['wall'], 1) for x in runs]} cpu {[round(x['cpu'], 1) for x in runs]} "
              f"rss {[round(x['peak_rss_mb']) for x in runs]} MB; parts (wall/cpu s): "
              + ", ".join(f"{p['part']} {p['wall']:.1f}/{p['cpu']:.1f}" for p in median_run(runs)["parts"]), flush=True)
    return results


def median_run(runs: list[dict]) -> dict:
    return sorted(runs, key=lambda r: r["wall"])[len(runs) // 2]


def markdown(results: dict) -> str:
    lines = ["| case | runs | wall s (median) | CPU s (median) | peak RSS MB | outputs MB |", "|---|---:|---:|---:|---:|---:|"]
    for case, res in results.items():
        if case in ("machine", "national"):
            continue
        runs = res["runs"]
        mb = sum(res["outputs"].values()) / 1e6
        lines.append(f"| {case} | {len(runs)} | {statistics.median(r['wall'] for r in runs):.1f} | "
                     f"{statistics.median(r['cpu'] for r in runs):.1f} | {max(r['peak_rss_mb'] for r in runs):.0f} | {mb:.1f} |")
    lines += ["", "Per part (wall s / CPU s of the median run):", ""]
    cases = [c for c in results if c not in ("machine", "national")]
    parts = []
    for c in cases:
        for p in median_run(results[c]["runs"])["parts"]:
            if p["part"] not in parts:
                parts.append(p["part"])
    lines.append("| part | " + " | ".join(cases) + " |")
    lines.append("|---|" + "---:|" * len(cases))
    for part in parts:
        cells = []
        for c in cases:
            ps = [p for p in median_run(results[c]["runs"])["parts"] if p["part"] == part]
            cells.append(f"{sum(p['wall'] for p in ps):.2f} / {sum(p['cpu'] for p in ps):.2f}" if ps else "–")
        lines.append(f"| {part} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# national grid case
# --------------------------------------------------------------------------
NATIONAL_CHILD = r"""
import json, sys, time
import geopandas as gpd
from geoplan.load.raster import zensus_zonal_sum
csv, areas_path, out = sys.argv[1:4]
w, c = time.perf_counter(), time.process_time()
areas = gpd.read_file(areas_path)
t_read_areas = time.perf_counter() - w
res = zensus_zonal_sum(csv, areas, value_column="Einwohner", zone_key="ags")
info = {"wall": time.perf_counter() - w, "cpu": time.process_time() - c, "read_areas_wall": t_read_areas,
        "areas": len(res), "total": float(res["Einwohner"].sum()), "cells_counted": int(res["n_cells"].sum())}
json.dump(info, open(out, "w"))
"""


def make_zensus(cells: int, gemeinden: int, folder: Path, seed: int = 0) -> tuple[Path, Path, int]:
    """Synthetic Zensus 100 m CSV (EPSG:3035) and Gemeinde polygons covering its extent."""
    import geopandas as gpd
    import shapely

    rng = np.random.default_rng(seed)
    # Germany's extent in EPSG:3035 metres, roughly 640 km × 870 km
    xmin, ymin, xmax, ymax = 4_030_000, 2_690_000, 4_670_000, 3_560_000
    n_ctr = 20_000
    cx = rng.uniform(xmin + 5_000, xmax - 5_000, n_ctr)
    cy = rng.uniform(ymin + 5_000, ymax - 5_000, n_ctr)
    # cells clustered around settlement centres; unique 100 m cells
    which = rng.integers(0, n_ctr, int(cells * 1.15))
    x = np.floor((cx[which] + rng.normal(0, 1_200, which.size)) / 100).astype(np.int64)
    y = np.floor((cy[which] + rng.normal(0, 1_200, which.size)) / 100).astype(np.int64)
    ok = (x * 100 > xmin) & (x * 100 < xmax - 100) & (y * 100 > ymin) & (y * 100 < ymax - 100)
    code = np.unique(x[ok] * 100_000 + y[ok])
    code = rng.permutation(code)[:cells]
    x, y = code // 100_000, code % 100_000
    pop = rng.geometric(0.08, code.size)
    xm, ym = x * 100 + 50, y * 100 + 50
    frame = pd.DataFrame({
        "GITTER_ID_100m": [f"CRS3035RES100mN{b}E{a}" for a, b in zip(x * 100, y * 100)],
        "x_mp_100m": xm, "y_mp_100m": ym, "Einwohner": pop,
    })
    csv = folder / "Zensus2022_Bevoelkerungszahl_100m-Gitter.csv"
    frame.to_csv(csv, sep=";", index=False)
    pts = shapely.points(rng.uniform(xmin, xmax, gemeinden), rng.uniform(ymin, ymax, gemeinden))
    env = shapely.box(xmin, ymin, xmax, ymax)
    vor = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=env))
    vor = shapely.intersection(vor, env)
    areas = gpd.GeoDataFrame({"ags": [f"{i:08d}" for i in range(len(vor))]}, geometry=vor, crs=3035)
    areas_path = folder / "gemeinden.gpkg"
    areas.to_file(areas_path, driver="GPKG")
    return csv, areas_path, int(pop.sum())


def bench_national(cells: int, gemeinden: int, tmp: Path) -> dict:
    t = time.perf_counter()
    csv, areas_path, total = make_zensus(cells, gemeinden, tmp)
    made = time.perf_counter() - t
    out = tmp / "national.json"
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", NATIONAL_CHILD, str(csv), str(areas_path), str(out)],
                            env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode("utf-8", "replace")
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(err[-3000:])
    info = json.loads(out.read_text())
    res = {"cells": cells, "gemeinden": gemeinden, "csv_mb": csv.stat().st_size / 1e6, "generate_s": made,
           "process_wall": wall, "process_cpu": ru.ru_utime + ru.ru_stime, "peak_rss_mb": ru.ru_maxrss / 1024,
           **info, "population_total": total}
    print(json.dumps(res, indent=1), flush=True)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[58, 1000, 10000])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--demo-repeat", type=int, default=5)
    ap.add_argument("--no-pdf", action="store_true", help="synthetic projects without the PDF")
    ap.add_argument("--national", action="store_true", help="only the national 100 m grid case")
    ap.add_argument("--cells", type=int, default=3_100_000)
    ap.add_argument("--gemeinden", type=int, default=11_000)
    ap.add_argument("--json", default=None)
    ap.add_argument("--keep", default=None, help="folder for projects and outputs (default: a temporary one)")
    args = ap.parse_args()
    machine = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
               "load_avg_before": os.getloadavg(), "started_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}
    with tempfile.TemporaryDirectory(prefix="geoplan-bench-") as td:
        tmp = Path(args.keep) if args.keep else Path(td)
        tmp.mkdir(parents=True, exist_ok=True)
        if args.national:
            results = {"machine": machine, "national": bench_national(args.cells, args.gemeinden, tmp)}
        else:
            results = {"machine": machine, **bench_sizes(args.sizes, args.repeat, args.demo_repeat, not args.no_pdf, tmp)}
            print(markdown(results))
    results["machine"]["load_avg_after"] = os.getloadavg()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
