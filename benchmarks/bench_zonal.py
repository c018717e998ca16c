"""Benchmark: geoplan.load.raster.zonal_stats vs rasterstats and exactextract.

Same process, same data: a 10,000 × 10,000 float32 raster (10 m pixels,
EPSG:25833, 512 × 512 tiles, deflate, 1 % nodata) written to a temporary
GeoTIFF, and 1,000 Voronoi polygons covering it (about 100,000 pixels each).
Statistics: sum, mean, count. GDAL's block cache is limited to 64 MB
(``GDAL_CACHEMAX``) for all methods. Reports best-of-N wall time, peak traced memory
(tracemalloc: Python and numpy; GDAL's and GEOS' own heaps are not traced),
the sampled peak rise of the resident set size (includes GDAL block cache),
and the largest relative difference of the sums to exactextract.

rasterstats counts a pixel fully when its centre is inside (no partial
coverage), so its sums differ from the exact ones by design; geoplan's
``partial=False`` mode reproduces rasterstats and is timed too.

Run:  PYTHONPATH=. python benchmarks/bench_zonal.py [--repeat 2] [--size 10000]
"""

from __future__ import annotations

import argparse
import os

# A national raster does not fit in GDAL's block cache (default 5 % of RAM,
# here 1.2 GB, which would hold this whole raster after the first run); a
# small cache makes every method decompress what it reads, as it would then.
os.environ.setdefault("GDAL_CACHEMAX", "64")
import platform
import tempfile
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from rasterio.transform import from_origin

from bench_interpolate import measure  # same timing and memory method
from geoplan.load.raster import zonal_stats

CRS = "EPSG:25833"
X0, Y0, RES = 380000.0, 5830000.0, 10.0


def write_raster(path: Path, size: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    profile = dict(driver="GTiff", height=size, width=size, count=1, dtype="float32", crs=CRS,
                   transform=from_origin(X0, Y0, RES, RES), nodata=-9999.0, tiled=True,
                   blockxsize=512, blockysize=512, compress="deflate")
    with rasterio.open(path, "w", **profile) as dst:
        for r0 in range(0, size, 1024):
            h = min(1024, size - r0)
            block = rng.gamma(2.0, 5.0, (h, size)).astype("float32")
            block[rng.random((h, size)) < 0.01] = -9999.0
            dst.write(block, 1, window=rasterio.windows.Window(0, r0, size, h))


def zones(n: int, size: int, seed: int = 1) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    ext = (X0, Y0 - size * RES, X0 + size * RES, Y0)
    pts = shapely.multipoints(np.c_[rng.uniform(ext[0], ext[2], n), rng.uniform(ext[1], ext[3], n)])
    frame = shapely.box(*ext)
    cells = shapely.intersection(shapely.get_parts(shapely.voronoi_polygons(pts, extend_to=frame)), frame)
    return gpd.GeoDataFrame({"key": [f"{i:04d}" for i in range(len(cells))]}, geometry=cells, crs=CRS)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--size", type=int, default=10_000)
    ap.add_argument("--zones", type=int, default=1_000)
    args = ap.parse_args()
    from exactextract import exact_extract
    from rasterstats import zonal_stats as rs_zonal

    with tempfile.TemporaryDirectory(prefix="geoplan_bench_") as tmp:
        path = Path(tmp) / "bench.tif"
        write_raster(path, args.size)
        z = zones(args.zones, args.size)
        print(f"raster {args.size} x {args.size}, {len(z)} zones, {os.cpu_count()} CPUs, "
              f"{platform.processor() or platform.machine()}, best of {args.repeat}, load {os.getloadavg()[0]:.1f}")

        def ours():
            return zonal_stats(path, z, stats=("sum", "mean", "count"))

        def ours_serial():
            return zonal_stats(path, z, stats=("sum", "mean", "count"), n_jobs=1)

        def ours_center():
            return zonal_stats(path, z, stats=("sum", "mean", "count"), partial=False)

        def ee():
            return exact_extract(str(path), z, ["sum", "mean", "count"], output="pandas")

        def rs():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import pandas as pd

                return pd.DataFrame(rs_zonal(z, str(path), stats=["sum", "mean", "count"]))

        rows = [
            (f"geoplan exact ({os.cpu_count()} threads)", *measure(ours, args.repeat)),
            ("exactextract", *measure(ee, args.repeat)),
            ("geoplan partial=False", *measure(ours_center, args.repeat)),
            ("rasterstats", *measure(rs, args.repeat)),
            ("geoplan exact, n_jobs=1", *measure(ours_serial, args.repeat)),
        ]
    ref = rows[1][5]["sum"].to_numpy()
    print("| method | wall s | wall / geoplan exact | CPU s | CPU / geoplan exact | traced peak MB | RSS rise MB "
          "| max rel diff of sums to exactextract |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, t, cpu, traced, rss, res in rows:
        diff = float(np.max(np.abs(res["sum"].to_numpy() - ref) / np.abs(ref)))
        print(f"| {name} | {t:.2f} | {t / rows[0][1]:.2f} | {cpu:.2f} | {cpu / rows[0][2]:.2f} | "
              f"{traced / 1e6:.1f} | {rss / 1e6:.1f} | {diff:.1e} |")
    center, rs_sum = rows[2][5]["sum"].to_numpy(), rows[3][5]["sum"].fillna(0).to_numpy()
    print(f"geoplan partial=False vs rasterstats: max rel diff of sums {np.max(np.abs(center - rs_sum) / np.abs(rs_sum)):.1e}, "
          f"counts equal: {bool(np.array_equal(rows[2][5]['count'].to_numpy(), rows[3][5]['count'].to_numpy()))}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
