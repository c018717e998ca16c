"""Benchmark: geoplan end to end through the CLI, and the national 100 m grid case.

Pipeline runs
    ``geoplan demo`` (Berlin, 58 Prognoseräume) and synthetic projects of
    ``--sizes`` areas (default 58, 1,000, 10,000), each run as
    ``geoplan run <config> --out <dir>`` in a fresh Python process, with all
    outputs (report HTML and PDF, map, XLSX, GeoPackage, manifest; ``--no-pdf``
    leaves the PDF out). Measured per run: wall time, CPU time (user + system
    of the process and everything it waited for, from ``wait4``), peak RSS
    (``ru_maxrss`` as reported by ``wait4``: the largest single process of the
    run's tree, e.g. the CLI or its PDF process, not their sum), and the
    wall and CPU time of every pipeline stage and every writer (the CLI's
    progress hook and the writer functions, timed inside the run's process).

    A synthetic project is made like the Berlin example: the same indicator
    catalogue and config, with the three input tables built by drawing rows of
    the real Berlin tables (542 Planungsräume) with replacement and a little
    noise, one square 400 m area per row on a grid in EPSG:25833, one Bezirk
    per 40 areas, and the HzE data simulated per area (``hze.simulate`` with the
    settings the demo had before it read a case list).

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

Weight sensitivity (``--sensitivity``)
    10,000 draws × 10,000 Sozialräume with a ±10 % corridor, the case of
    ``bench_scale.py corridor`` (data of ``bench_sensitivity.py``), in a fresh
    process: CPU, wall, peak RSS and a digest of the result table.

Interactive map alone (``--karte``)
    ``karte.html`` for ``--sizes`` synthetic areas (the square 400 m areas of
    the synthetic projects, or with ``--karte-geometry berlin`` copies of
    Berlin's 58 Prognoseräume, about 1,200 vertices each), built by
    :func:`geoplan.report.maps.interactive_map` with the layers and tooltip of
    ``karte.html`` in a fresh process: file size, wall, CPU and peak RSS.

``--previous PATH`` runs every selected case a second time with the
``geoplan`` of another checkout (e.g. ``git worktree add /tmp/prev <commit>``)
in the same minute, for a measured "before" column; without it the table's
"previous" column holds the figures last written in benchmarks/README.md.

Run (from the repository); the final figures of issue 15:
``PYTHONPATH=. python benchmarks/bench_pipeline.py --all --json bench.json``
which is ``--demo-repeat 5 --sizes 58 1000 10000 --sensitivity --national``
(about an hour of CPU on two cores), or any part of it, e.g.
``PYTHONPATH=. python benchmarks/bench_pipeline.py --demo-repeat 0 --sizes 58 --no-pdf``
``PYTHONPATH=. python benchmarks/bench_pipeline.py --national``
``PYTHONPATH=. python benchmarks/bench_pipeline.py --karte --sizes 58 1000 10000 --previous /tmp/prev``
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
    fn = getattr(mod, name, None)
    if fn is None:  # a writer renamed or gone: its time stays in the total
        return
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


HZE_SIMULATE = {
    "seed": 2026, "rate_per_1000": 30, "effects": {"kinderarmut": 0.35, "alleinerziehende": 0.12, "arbeitslosigkeit": 0.05},
    "alpha": 0.03, "trend": 0.02, "cost_sd_log": 0.15,
    "kinds": {"ambulant": {"share": 0.62, "cost_per_case_eur": 7000},
              "teilstationaer": {"share": 0.08, "cost_per_case_eur": 20000},
              "stationaer": {"share": 0.30, "cost_per_case_eur": 62000}},
}


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
    # HzE simulated per area (the demo's case list belongs to Berlin's real Planungsräume); the
    # simulator's settings are those the demo used before it read the case list
    cfg["hze"] = {"simulate": HZE_SIMULATE}
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    # total budget = the simulated prior-year costs (the corridor's reference), rounded to 1,000 EUR:
    # the first three stages are run here once to know them
    cfg["allocation"]["total_eur"] = int(round(_prior_year_costs(path), -3))
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _prior_year_costs(config_path: Path) -> float:
    """Sum of the corridor's reference column (prior-year HzE costs) of a project, from its first three stages."""
    from geoplan.assemble import hze_stage, indicators_stage
    from geoplan.config import load_config
    from geoplan.load import sources

    config = load_config(config_path)
    inputs, notes = [], []
    bres = sources.read_boundaries_config(config, inputs, notes)
    frame, _, _ = indicators_stage(config, bres, inputs, notes)
    frame = hze_stage(config, frame, inputs, notes)
    corridor = config.allocation.corridor
    column = getattr(corridor, "reference_column", None) or "hze_cost_prev_eur"
    return float(pd.to_numeric(frame[column], errors="coerce").sum())


# --------------------------------------------------------------------------
# runs
# --------------------------------------------------------------------------
def run_cli(args: list[str], workdir: Path, repo: Path = REPO) -> dict:
    """One CLI run in a fresh process (``geoplan`` from ``repo``): wall, CPU, peak RSS, per-part times."""
    times_file = workdir / f"times-{time.time_ns()}.json"
    env = {**os.environ, "GEOPLAN_BENCH_TIMES": str(times_file), "PYTHONPATH": str(repo)}
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


def bench_sizes(sizes, repeat, demo_repeat, pdf, tmp: Path, repo: Path = REPO, tag: str = "") -> dict:
    results = {}
    if demo_repeat:
        runs = []
        for r in range(demo_repeat):
            out = tmp / f"demo{tag}-{r}"
            runs.append(run_cli(["demo", "--out", str(out)], tmp, repo))
        results["demo"] = {"runs": runs, "outputs": output_sizes(out), "pdf": True}
        print(f"demo{tag}: wall {[round(x['wall'], 1) for x in runs]} cpu {[round(x['cpu'], 1) for x in runs]} "
              f"rss {[round(x['peak_rss_mb']) for x in runs]} MB", flush=True)
    for n in sizes:
        cfg = make_project(n, tmp / f"project-{n}", pdf=pdf)
        runs = []
        for r in range(repeat):
            out = tmp / f"out{tag}-{n}-{r}"
            runs.append(run_cli(["run", str(cfg), "--out", str(out)], tmp, repo))
        results[str(n)] = {"runs": runs, "outputs": output_sizes(out), "pdf": pdf}
        print(f"{n}{tag}: wall {[round(x['wall'], 1) for x in runs]} cpu {[round(x['cpu'], 1) for x in runs]} "
              f"rss {[round(x['peak_rss_mb']) for x in runs]} MB; parts (wall/cpu s): "
              + ", ".join(f"{p['part']} {p['wall']:.1f}/{p['cpu']:.1f}" for p in median_run(runs)["parts"]), flush=True)
    return results


def median_run(runs: list[dict]) -> dict:
    return sorted(runs, key=lambda r: r["wall"])[len(runs) // 2]


#: The figures last written in benchmarks/README.md (measured 2026-12-02 under load 10–17 on the
#: same 2-vCPU machine; CPU s is the comparable figure), shown as "previous" when --previous is not given.
PREVIOUS = {
    "demo": "CPU 31.4 s, wall 238 s (load 13–17); 40.1 CPU s at bb68c14",
    "58": "CPU 32.8 s, wall 301 s, 416 MB (with PDF)",
    "1000": "CPU 47.0 s, wall 470 s, 556 MB (without PDF)",
    "10000": "without PDF: CPU 99.9 s, wall 411 s, 703 MB; with PDF: did not finish",
    "sensitivity": "CPU 17.3 s; 62.6 s at bb68c14",
    "national": "CPU 48.8 s, wall 387 s, 2,270 MB",
    "karte 10000": "karte.html 25 MB (issue 15); 8.6 s CPU in the 10,000-area run",
}
#: The goals of issue 15: (text, wall s, peak RSS MB)
GOALS = {"demo": ("< 10 s wall", 10, None), "10000": ("< 5 min, < 4 GB", 300, 4096),
         "sensitivity": ("< 10 s wall", 10, None), "national": ("< 60 s, < 2 GB", 60, 2048)}


def _met(case: str, res: dict, wall: float, rss: float) -> str:
    if case not in GOALS:
        return ""
    if case == "10000" and not res.get("pdf", True):
        return "no (without PDF)"
    _, max_wall, max_rss = GOALS[case]
    return "yes" if wall < max_wall and (max_rss is None or rss < max_rss) else "no"


def _case_label(case: str, res: dict) -> str:
    if case == "demo":
        return f"`geoplan demo` (58 Prognoseräume, all outputs), median of {len(res['runs'])}"
    if case == "sensitivity":
        return f"weight sensitivity, {res['draws']:,} draws × {res['areas']:,} areas, ±10 % corridor"
    if case == "national":
        return f"national grid: {res['cells']:,} Zensus cells onto {res['gemeinden']:,} Gemeinden"
    if case.startswith("karte "):
        return f"`karte.html` alone, {int(case.split()[1]):,} areas"
    runs = res["runs"]
    what = "all outputs incl. PDF" if res.get("pdf", True) else "without the PDF"
    med = f", median of {len(runs)}" if len(runs) > 1 else ""
    return f"synthetic {int(case):,} areas, {what}{med}"


def _summary(res: dict) -> tuple[float, float, float, str]:
    """(wall, CPU, peak RSS MB, what was produced) of a case."""
    if "runs" in res:
        runs = res["runs"]
        mb = sum(res["outputs"].values()) / 1e6
        return (statistics.median(r["wall"] for r in runs), statistics.median(r["cpu"] for r in runs),
                max(r["peak_rss_mb"] for r in runs), f"{len(res['outputs'])} files, {mb:.1f} MB")
    if "karte_mb" in res:
        return res["wall"], res["cpu"], res["peak_rss_mb"], f"{res['karte_mb']:.2f} MB, tolerance {res['tolerance']}"
    if "digest" in res:  # the stage itself (the goal's figure); the process adds imports and making the data
        return (res["stage_wall"], res["stage_cpu"], res["peak_rss_mb"],
                f"result {res['digest']}; process {res['cpu']:.1f} s CPU")
    ok = "total preserved" if round(res["total"]) == res["population_total"] else "TOTAL DIFFERS"
    return res["process_wall"], res["process_cpu"], res["peak_rss_mb"], f"{ok}, {res['cells_counted']:,} cells counted"


def markdown(results: dict, previous: dict | None = None) -> str:
    """Markdown for benchmarks/README.md: the command and machine, one summary row per case, per-part times."""
    m = results["machine"]
    cases = [c for c in results if c != "machine"]
    lines = [f"Command: `{m['command']}` (commit {m['commit']})  ",
             (f"Machine: {m['cpus']} CPUs, {m['platform']}, Python {m['python']}; started {m['started_utc']} UTC, "
              f"load average {m['load_avg_before'][0]:.1f} before, {m.get('load_avg_after', [float('nan')])[0]:.1f} after."),
             ""]
    prev_head = "before (measured, `--previous`)" if previous else "previous (README)"
    lines += [f"| case | {prev_head} | wall s | CPU s | peak RSS MB | produced | goal | met |",
              "|---|---|---:|---:|---:|---|---|---|"]
    for case in cases:
        wall, cpu, rss, what = _summary(results[case])
        if previous and case in previous:
            pw, pc, pr, pwhat = _summary(previous[case])
            prev = f"CPU {pc:.1f} s, wall {pw:.1f} s, {pr:,.0f} MB; {pwhat}"
        else:
            r = results[case]
            default = ((case != "sensitivity" or (r["areas"], r["draws"]) == (10_000, 10_000))
                       and (case != "national" or (r["cells"], r["gemeinden"]) == (3_100_000, 11_000)))
            prev = PREVIOUS.get(case, "–") if default else "–"
        goal = GOALS[case][0] if case in GOALS else ""
        lines.append(f"| {_case_label(case, results[case])} | {prev} | {wall:.1f} | {cpu:.1f} | {rss:,.0f} | {what} | "
                     f"{goal} | {_met(case, results[case], wall, rss)} |")
    runs_cases = [c for c in cases if "runs" in results[c]]
    if runs_cases:
        lines += ["", ("Per part (wall s / CPU s of the median run; stages from the CLI's progress hook, writers timed "
                       "in the run's process):"), ""]
        parts = []
        for c in runs_cases:
            for p in median_run(results[c]["runs"])["parts"]:
                if p["part"] not in parts:
                    parts.append(p["part"])
        lines.append("| part | " + " | ".join(c if c == "demo" else f"{int(c):,} areas" for c in runs_cases) + " |")
        lines.append("|---|" + "---:|" * len(runs_cases))
        for part in parts:
            cells = []
            for c in runs_cases:
                ps = [p for p in median_run(results[c]["runs"])["parts"] if p["part"] == part]
                cells.append(f"{sum(p['wall'] for p in ps):.2f} / {sum(p['cpu'] for p in ps):.2f}" if ps else "–")
            lines.append(f"| {part} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# a benchmark child process
# --------------------------------------------------------------------------
def run_child(code: str, args: list[str], repo: Path, workdir: Path) -> dict:
    """Run ``code`` in a fresh Python with ``geoplan`` from ``repo``; it writes a JSON dict to argv[1].

    Returns that dict with the process's wall, CPU (user + system, from wait4) and peak RSS.
    """
    out = workdir / f"child-{time.time_ns()}.json"
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, str(out), *args], env={**os.environ, "PYTHONPATH": str(repo)},
                            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode("utf-8", "replace")
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(err[-3000:])
    info = json.loads(out.read_text(encoding="utf-8"))
    out.unlink()
    return {**info, "wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "peak_rss_mb": ru.ru_maxrss / 1024}


SENSITIVITY_CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[2])
from bench_scale import corridor_case
cpu, wall, digest, what = corridor_case(int(sys.argv[3]), int(sys.argv[4]), None)
json.dump({"stage_cpu": cpu, "stage_wall": wall, "digest": digest, "what": what, "areas": int(sys.argv[3]),
           "draws": int(sys.argv[4])}, open(sys.argv[1], "w"))
"""


def bench_sensitivity(tmp: Path, repo: Path = REPO, areas: int = 10_000, draws: int = 10_000) -> dict:
    res = run_child(SENSITIVITY_CHILD, [str(REPO / "benchmarks"), str(areas), str(draws)], repo, tmp)
    print(f"sensitivity ({repo}): {json.dumps(res)}", flush=True)
    return res


KARTE_CHILD = r"""
import json, re, sys, time
import numpy as np, geopandas as gpd, shapely
out, n, geometry, berlin = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
rng = np.random.default_rng(0)
if geometry == "berlin":
    b = gpd.read_file(berlin).to_crs(25833)
    reps = -(-n // len(b)); cols = int(np.ceil(np.sqrt(reps)))
    geom = np.concatenate([b.geometry.translate(50_000 * (i % cols), 45_000 * (i // cols)).values
                           for i in range(reps)])[:n]
else:  # the square 400 m areas of the synthetic projects
    nx = int(np.ceil(np.sqrt(n))); i = np.arange(n)
    geom = shapely.box(370_000 + (i % nx) * 400.0, 5_790_000 + (i // nx) * 400.0,
                       370_000 + (i % nx + 1) * 400.0, 5_790_000 + (i // nx + 1) * 400.0)
keys = [f"{k + 1:08d}" for k in range(n)]
g = gpd.GeoDataFrame({"key": keys, "name": [f"Sozialraum {k}" for k in keys],
                      "budget_per_u21": rng.uniform(100, 900, n), "need_index": rng.normal(1, 0.2, n),
                      "change_pct": rng.normal(0, 8, n), "oe_ratio": rng.normal(1, 0.2, n)}, geometry=geom, crs=25833)
g.loc[g.index[::7], "oe_ratio"] = np.nan
from geoplan.report.maps import interactive_map
from geoplan.report.mapping import map_layers
layers = map_layers(g, "de", None)
tooltip = {"name": "Name", "key": "Schlüssel", **{ly.column: ly.label for ly in layers}}
w, c = time.perf_counter(), time.process_time()
html = interactive_map(g, layers, tooltip=tooltip, title="Synthetisch", attribution="Quelle: synthetisch")
with open(out + ".html", "w", encoding="utf-8") as fh:
    fh.write(html)
tol = re.search(r'data-simplify-m=\W*([0-9.]+)', html)
json.dump({"karte_wall": time.perf_counter() - w, "karte_cpu": time.process_time() - c,
           "karte_mb": len(html.encode("utf-8")) / 1e6, "tolerance": (tol.group(1) + " m") if tol else "5 m (fixed)",
           "vertices_in": int(shapely.get_num_coordinates(geom).sum())}, open(out, "w"))
"""


def bench_karte(sizes, geometry: str, tmp: Path, repo: Path = REPO) -> dict:
    results = {}
    berlin = REPO / "boundaries" / "berlin" / "prognoseraeume_2021.geojson"
    for n in sizes:
        res = run_child(KARTE_CHILD, [str(n), geometry, str(berlin)], repo, tmp)
        # the child's own time for the map (without imports and making the frame) is the figure
        res["wall"], res["cpu"] = res["karte_wall"], res["karte_cpu"]
        results[f"karte {n}"] = res
        print(f"karte {n} ({repo}): {res['karte_mb']:.2f} MB, wall {res['wall']:.1f} s, CPU {res['cpu']:.1f} s, "
              f"peak RSS {res['peak_rss_mb']:.0f} MB, tolerance {res['tolerance']}", flush=True)
    return results


# --------------------------------------------------------------------------
# national grid case
# --------------------------------------------------------------------------
NATIONAL_CHILD = r"""
import json, sys, time
import geopandas as gpd
from geoplan.load.raster import zensus_zonal_sum
out, csv, areas_path = sys.argv[1:4]
w, c = time.perf_counter(), time.process_time()
areas = gpd.read_file(areas_path)
t_read_areas = time.perf_counter() - w
res = zensus_zonal_sum(csv, areas, value_column="Einwohner", zone_key="ags")
info = {"stage_wall": time.perf_counter() - w, "stage_cpu": time.process_time() - c, "read_areas_wall": t_read_areas,
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


_ZENSUS: dict = {}  # (cells, gemeinden, folder) -> made files: a --previous run uses the same data


def bench_national(cells: int, gemeinden: int, tmp: Path, repo: Path = REPO) -> dict:
    t = time.perf_counter()
    if (cells, gemeinden, tmp) not in _ZENSUS:
        _ZENSUS[(cells, gemeinden, tmp)] = make_zensus(cells, gemeinden, tmp)
    csv, areas_path, total = _ZENSUS[(cells, gemeinden, tmp)]
    made = time.perf_counter() - t
    info = run_child(NATIONAL_CHILD, [str(csv), str(areas_path)], repo, tmp)
    res = {"cells": cells, "gemeinden": gemeinden, "csv_mb": csv.stat().st_size / 1e6, "generate_s": made,
           "process_wall": info.pop("wall"), "process_cpu": info.pop("cpu"), **info, "population_total": total}
    print(json.dumps(res, indent=1), flush=True)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--all", action="store_true",
                    help="the final figures: --demo-repeat 5 --sizes 58 1000 10000 --sensitivity --national")
    ap.add_argument("--sizes", type=int, nargs="*", default=None, help="synthetic projects (default 58 1000 10000)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--demo-repeat", type=int, default=None, help="runs of geoplan demo (default 5; 0: none)")
    ap.add_argument("--no-pdf", action="store_true", help="synthetic projects without the PDF")
    ap.add_argument("--sensitivity", action="store_true", help="10,000 draws × 10,000 areas with a corridor")
    ap.add_argument("--national", action="store_true", help="the national 100 m grid case")
    ap.add_argument("--karte", action="store_true", help="only karte.html at --sizes areas")
    ap.add_argument("--karte-geometry", choices=["boxes", "berlin"], default="boxes")
    ap.add_argument("--sens-areas", type=int, default=10_000, help="(to try the script on a small case)")
    ap.add_argument("--sens-draws", type=int, default=10_000)
    ap.add_argument("--cells", type=int, default=3_100_000)
    ap.add_argument("--gemeinden", type=int, default=11_000)
    ap.add_argument("--previous", default=None, help="checkout of an earlier commit: every case again with its geoplan")
    ap.add_argument("--json", default=None)
    ap.add_argument("--keep", default=None, help="folder for projects and outputs (default: a temporary one)")
    args = ap.parse_args()
    only_extra = (args.national or args.sensitivity or args.karte) and not args.all
    sizes = args.sizes if args.sizes is not None else ([] if only_extra and not args.karte else [58, 1000, 10000])
    demo_repeat = args.demo_repeat if args.demo_repeat is not None else (0 if only_extra else 5)
    if args.all:
        args.sensitivity = args.national = True
    previous = Path(args.previous).resolve() if args.previous else None
    machine = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
               "load_avg_before": os.getloadavg(), "started_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
               "command": "PYTHONPATH=. python benchmarks/bench_pipeline.py " + " ".join(sys.argv[1:]),
               "commit": subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                        text=True, check=False).stdout.strip()}
    with tempfile.TemporaryDirectory(prefix="geoplan-bench-") as td:
        tmp = Path(args.keep) if args.keep else Path(td)
        tmp.mkdir(parents=True, exist_ok=True)
        results: dict = {"machine": machine}
        before: dict = {}
        if args.karte:
            results.update(bench_karte(sizes, args.karte_geometry, tmp))
            if previous:
                before.update(bench_karte(sizes, args.karte_geometry, tmp, previous))
        else:
            results.update(bench_sizes(sizes, args.repeat, demo_repeat, not args.no_pdf, tmp))
            if previous and (sizes or demo_repeat):
                before.update(bench_sizes(sizes, args.repeat, demo_repeat, not args.no_pdf, tmp, previous, "-previous"))
        if args.sensitivity:
            results["sensitivity"] = bench_sensitivity(tmp, REPO, args.sens_areas, args.sens_draws)
            if previous:
                before["sensitivity"] = bench_sensitivity(tmp, previous, args.sens_areas, args.sens_draws)
        if args.national:
            results["national"] = bench_national(args.cells, args.gemeinden, tmp)
            if previous:
                before["national"] = bench_national(args.cells, args.gemeinden, tmp, previous)
        results["machine"]["load_avg_after"] = os.getloadavg()
        print()
        print(markdown(results, before or None))
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "previous": before}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
