"""Raster zonal statistics and the Zensus 2022 grid import.

Zonal statistics read only each zone's window of the raster (rasterio,
windowed reads, large windows in row strips), so a national 100 m raster does
not have to fit in memory. Pixels on a zone's boundary count with the exact
fraction of their area inside the zone.

Coverage fractions are computed exactly by signed-area accumulation along the
zone's boundary (the scan-line area coverage used in exact anti-aliased
polygon rasterisation): every boundary edge is cut at the pixel grid lines;
a piece inside pixel (r, c) with vertical extent ``dy`` (in pixel units) and
mean horizontal position ``fx`` inside the pixel contributes ``dy·(1 − fx)``
to pixel (r, c) and ``dy`` to every pixel right of it in row r. Summed over
all edges this is the integral of the winding number over each pixel, i.e.
the exact area fraction, the same quantity ``exactextract`` computes (Baston
2022, exactextract; Green's theorem). Only the boundary is walked; the row
prefix sum fills the interior.
"""

from __future__ import annotations

import math
import re
import tempfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
from rasterio.enums import MaskFlags
from affine import Affine
from rasterio.windows import Window

from geoplan.errors import GeoplanError, QANote
from geoplan.load.tables import DEFAULT_NA_MARKERS  # the one list of missing-value markers
from geoplan.parallel import n_threads

__all__ = ["zonal_stats", "zensus_grid_to_geotiff", "zensus_zonal_sum", "coverage_fraction", "center_mask"]

_STAGE = "indicators"
_STATS = ("sum", "mean", "count", "min", "max")
# largest window (pixels) read at once; bigger zones are processed in row strips
_MAX_PIXELS = 4_000_000


# ---------------------------------------------------------------------------
# exact coverage fractions
# ---------------------------------------------------------------------------


def _segments(geom) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Start and end points of every ring edge of a (multi)polygon."""
    parts = shapely.get_parts(geom)
    while np.any(np.isin(shapely.get_type_id(parts), (6, 7))):  # nested multi/collections
        parts = shapely.get_parts(parts)
    # lines and points of a collection (e.g. an overlay result) cover no area
    rings = shapely.get_rings(parts[shapely.get_type_id(parts) == 3])
    coords, ring_id = shapely.get_coordinates(rings, return_index=True)
    same = ring_id[1:] == ring_id[:-1]
    x, y = coords[:, 0], coords[:, 1]
    return x[:-1][same], y[:-1][same], x[1:][same], y[1:][same]


def _integers_between(a: np.ndarray, b: np.ndarray):
    """For each interval (a_i, b_i) the integers strictly inside: (segment id, value)."""
    lo = np.minimum(a, b)
    hi = np.maximum(a, b)
    start = np.floor(lo) + 1
    n = np.maximum(np.ceil(hi) - start, 0).astype(np.int64)
    seg = np.repeat(np.arange(len(a)), n)
    offs = np.arange(seg.size) - np.repeat(np.cumsum(n) - n, n)
    return seg, start[seg] + offs


def coverage_fraction(geom, transform, height: int, width: int) -> np.ndarray:
    """Exact fraction (0–1) of each pixel of a grid covered by a polygon.

    ``transform`` is the affine transform of the grid (north-up, no
    rotation), ``height × width`` its shape. The polygon is in the grid's CRS;
    parts outside the grid are ignored. Float64, exact up to rounding
    (~1e-12).
    """
    if transform.b != 0 or transform.d != 0 or transform.e >= 0:
        raise GeoplanError(
            "Das Raster ist gedreht oder nicht nordorientiert.",
            expected="nordorientiertes Raster ohne Rotation",
            found=str(transform),
            hint="Raster mit gdalwarp auf ein nordorientiertes Gitter umrechnen.",
            message_en="The raster is rotated or not north-up.", expected_en="a north-up raster without rotation",
            hint_en="Resample the raster to a north-up grid with gdalwarp.",
        )
    if shapely.is_empty(geom):
        return np.zeros((height, width))
    geom = shapely.normalize(geom)  # exterior and holes in opposite orientation
    x0, y0, x1, y1 = _segments(geom)
    px0 = (x0 - transform.c) / transform.a
    px1 = (x1 - transform.c) / transform.a
    py0 = (transform.f - y0) / -transform.e
    py1 = (transform.f - y1) / -transform.e
    n = len(px0)
    dx, dy = px1 - px0, py1 - py0
    sx, kx = _integers_between(px0, px1)
    sy, ky = _integers_between(py0, py1)
    seg = np.concatenate([np.arange(n), np.arange(n), sx, sy])
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.concatenate([np.zeros(n), np.ones(n), (kx - px0[sx]) / dx[sx], (ky - py0[sy]) / dy[sy]])
    order = np.lexsort((t, seg))
    seg, t = seg[order], t[order]
    xs = px0[seg] + t * dx[seg]
    ys = py0[seg] + t * dy[seg]
    same = seg[1:] == seg[:-1]
    xa, xb, ya, yb = xs[:-1][same], xs[1:][same], ys[:-1][same], ys[1:][same]
    xm, ym = 0.5 * (xa + xb), 0.5 * (ya + yb)
    d = yb - ya
    # pieces above, below or right of the grid touch no pixel of it; pieces
    # left of it still cover whole pixels to their right (column clamped to -1)
    rows = np.floor(ym).astype(np.int64)
    cols = np.floor(xm)
    inside = (rows >= 0) & (rows < height) & (cols < width) & (d != 0)
    rows, xm, d, cols = rows[inside], xm[inside], d[inside], cols[inside]
    frac = xm - cols
    left = cols < 0
    cols = np.maximum(cols, -1).astype(np.int64)
    frac[left] = 1.0  # a piece left of the grid: pixel 0 onwards fully right of it
    # orientation from the ring itself (shoelace in pixel units), so that the
    # accumulated coverage comes out positive without a pass over the grid
    sign = 1.0 if np.sum(px0 * py1 - px1 * py0) <= 0 else -1.0
    stride = width + 2
    idx = rows * stride + cols + 1  # +1: column -1 is stored at index 0
    size = height * stride
    d = sign * d
    acc = np.bincount(
        np.concatenate([idx, idx + 1]), weights=np.concatenate([d * (1.0 - frac), d * frac]), minlength=size + 1
    )[:size]
    # row-wise prefix sums as one flat cumsum minus each row's start (numpy's
    # cumsum along axis 1 is several times slower); row totals are near 0, so
    # the running sum stays small and loses no precision
    run = np.cumsum(acc).reshape(height, stride)
    start = np.empty((height, 1))
    start[0, 0] = 0.0
    start[1:, 0] = run[:-1, -1]
    cov = run[:, 1 : width + 1] - start
    # rounding leaves residues of ~1e-16 around 0 and 1
    np.clip(cov, 0.0, 1.0, out=cov)
    return cov


def center_mask(geom, transform, height: int, width: int) -> np.ndarray:
    """1.0 where the pixel centre lies inside the polygon, else 0.0.

    The same boundary walk as :func:`coverage_fraction`, sampled on the row
    centre lines: each edge crossing the line ``row + 0.5`` adds its direction
    (±1) at the first pixel centre right of the crossing; the row prefix sum is
    the winding number at every centre (non-zero = inside). Matches
    ``rasterio.features.rasterize`` without ``all_touched`` except for centres
    exactly on an edge.
    """
    if shapely.is_empty(geom):
        return np.zeros((height, width))
    x0, y0, x1, y1 = _segments(geom)
    px0 = (x0 - transform.c) / transform.a
    px1 = (x1 - transform.c) / transform.a
    py0 = (transform.f - y0) / -transform.e - 0.5  # centre lines at integers
    py1 = (transform.f - y1) / -transform.e - 0.5
    lo, hi = np.minimum(py0, py1), np.maximum(py0, py1)
    # half-open [lo, hi): a vertex on a centre line is counted once
    first = np.ceil(lo).astype(np.int64)
    n = np.maximum(np.ceil(hi).astype(np.int64) - first, 0)
    seg = np.repeat(np.arange(len(px0)), n)
    rows = first[seg] + (np.arange(seg.size) - np.repeat(np.cumsum(n) - n, n))
    t = (rows - py0[seg]) / (py1[seg] - py0[seg])
    xc = px0[seg] + t * (px1[seg] - px0[seg])
    cols = np.floor(xc - 0.5).astype(np.int64) + 1
    step = np.where(py1[seg] > py0[seg], 1.0, -1.0)
    keep = (rows >= 0) & (rows < height) & (cols < width)
    rows, cols, step = rows[keep], np.maximum(cols[keep], 0), step[keep]
    acc = np.bincount(rows * (width + 1) + cols, weights=step, minlength=height * (width + 1))
    wind = np.cumsum(acc.reshape(height, width + 1), axis=1)[:, :width]
    return (np.abs(wind) > 0.5).astype(float)


# ---------------------------------------------------------------------------
# zonal statistics
# ---------------------------------------------------------------------------


def _open(raster):
    if isinstance(raster, (str, Path)):
        path = Path(raster)
        if not path.exists():
            raise GeoplanError("Rasterdatei nicht gefunden.", file=path, hint="Pfad in der Konfiguration prüfen.",
                               message_en="Raster file not found.", hint_en="Check the path in the configuration.")
        try:
            return rasterio.open(path), True
        except rasterio.errors.RasterioIOError as exc:
            raise GeoplanError(
                "Rasterdatei kann nicht gelesen werden.", file=path, found=str(exc), expected="GeoTIFF o. ä. (GDAL-Format)",
                message_en="The raster file cannot be read.", expected_en="GeoTIFF or similar (GDAL format)"
            ) from exc
    return raster, False


def _zone_windows(bounds, transform, height, width):
    """Pixel window (row0, row1, col0, col1) of a bounding box, clipped to the grid."""
    minx, miny, maxx, maxy = bounds
    c0 = math.floor((minx - transform.c) / transform.a)
    c1 = math.ceil((maxx - transform.c) / transform.a)
    r0 = math.floor((transform.f - maxy) / -transform.e)
    r1 = math.ceil((transform.f - miny) / -transform.e)
    return max(r0, 0), min(r1, height), max(c0, 0), min(c1, width)


def _zone_stats(src, geom, band: int, partial: bool, stats) -> dict:
    """Coverage-weighted statistics of one zone, reading only its window."""
    out = {"sum": 0.0, "count": 0.0, "min": np.inf, "max": -np.inf}
    if geom is None or shapely.is_empty(geom):
        return _finish(out, stats)
    r0, r1, c0, c1 = _zone_windows(shapely.bounds(geom), src.transform, src.height, src.width)
    if r1 <= r0 or c1 <= c0:
        return _finish(out, stats)
    w = c1 - c0
    step = max(1, _MAX_PIXELS // w)
    nodata = src.nodatavals[band - 1]
    if nodata is not None and np.isnan(nodata):
        nodata = None  # NaN is caught by the isfinite test
    # nodata values and "all valid" need no mask band; other masks are read
    simple_mask = all(f in (MaskFlags.all_valid, MaskFlags.nodata) for f in src.mask_flag_enums[band - 1])
    scale, offset = src.scales[band - 1], src.offsets[band - 1]
    for rs in range(r0, r1, step):
        re_ = min(rs + step, r1)
        win = Window(c0, rs, w, re_ - rs)
        t = src.transform
        wt = Affine(t.a, 0.0, t.c + t.a * c0, 0.0, t.e, t.f + t.e * rs)
        if partial:
            cov = coverage_fraction(geom, wt, re_ - rs, w)
        else:
            cov = center_mask(geom, wt, re_ - rs, w)
        if not cov.any():
            continue
        vals = src.read(band, window=win, masked=not simple_mask)
        if simple_mask:
            valid = np.ones(vals.shape, dtype=bool) if nodata is None else vals != nodata
        else:
            valid = ~np.ma.getmaskarray(vals)
            vals = np.ma.getdata(vals)
        if scale != 1.0 or offset != 0.0:
            vals = vals * scale + offset  # packed values (e.g. int16 with a scale)
        if vals.dtype.kind == "f":
            valid &= np.isfinite(vals)
        if not valid.all():
            invalid = ~valid
            cov[invalid] = 0.0  # cov and vals are this call's own arrays
            vals[invalid] = 0
        # einsum accumulates in float64 without a float64 copy of the window
        out["sum"] += float(np.einsum("ij,ij->", cov, vals, dtype=np.float64))
        out["count"] += float(cov.sum())
        if "min" in stats or "max" in stats:
            # pixels only touched at an edge have coverage 0 up to rounding
            hit = cov > 1e-10
            if hit.any():
                out["min"] = min(out["min"], float(vals[hit].min()))
                out["max"] = max(out["max"], float(vals[hit].max()))
    return _finish(out, stats)


def _all_zones(src, geoms: np.ndarray, band: int, partial: bool, stats, n_jobs: int = 1) -> list[dict]:
    """Statistics for every zone, visited in raster block order, returned in input order.

    Neighbouring zones share raster blocks; visiting them block row by block
    row lets GDAL's block cache serve a block once instead of decompressing it
    again for every zone that touches it. With ``n_jobs`` > 1 the block-ordered
    zones are cut into contiguous runs, one per thread, each with its own
    dataset handle (a rasterio dataset must not be shared between threads);
    GDAL and numpy release the GIL while reading and summing.
    """
    bounds = shapely.bounds(geoms)
    t = src.transform
    bh, bw = src.block_shapes[band - 1]
    with np.errstate(invalid="ignore"):
        row = np.nan_to_num((t.f - bounds[:, 3]) / -t.e // bh)
        col = np.nan_to_num((bounds[:, 0] - t.c) / t.a // bw)
    order = np.lexsort((col, row))
    out: list[dict] = [{}] * len(geoms)
    runs = [r for r in np.array_split(order, max(1, min(n_jobs, len(order) // 20))) if len(r)]
    if len(runs) <= 1:
        for i in order:
            out[i] = _zone_stats(src, geoms[i], band, partial, stats)
        return out

    def work(run):
        with rasterio.open(src.name) as own:
            return run, [_zone_stats(own, geoms[i], band, partial, stats) for i in run]

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        for run, results in pool.map(work, runs):
            for i, r in zip(run, results):
                out[i] = r
    return out


def _finish(acc: dict, stats) -> dict:
    res = {"count": acc["count"]}
    for s in stats:
        if s == "sum":
            res[s] = acc["sum"]
        elif s == "count":
            res[s] = acc["count"]
        elif s == "mean":
            res[s] = acc["sum"] / acc["count"] if acc["count"] > 0 else np.nan
        elif s == "min":
            res[s] = acc["min"] if np.isfinite(acc["min"]) else np.nan
        elif s == "max":
            res[s] = acc["max"] if np.isfinite(acc["max"]) else np.nan
    return res


def _to_raster_crs(geoms: np.ndarray, crs, src) -> tuple[np.ndarray, list[QANote]]:
    if src.crs is None:
        raise GeoplanError(
            "Das Raster hat kein Koordinatenbezugssystem.",
            file=getattr(src, "name", None),
            hint="CRS setzen, z. B. gdal_edit.py -a_srs EPSG:3035.",
            message_en="The raster has no coordinate reference system.",
            hint_en="Set the CRS, e.g. gdal_edit.py -a_srs EPSG:3035.",
        )
    if crs is None:
        raise GeoplanError("Die Zonen haben kein Koordinatenbezugssystem.", hint="CRS der Gebietsgrenzen setzen.",
                           message_en="The zones have no coordinate reference system.",
                           hint_en="Set the CRS of the area boundaries.")
    if gpd.GeoSeries(crs=crs).crs == src.crs:
        return geoms, []
    moved = gpd.GeoSeries(geoms, crs=crs).to_crs(src.crs).values
    note = QANote(
        _STAGE,
        f"Zonen wurden für die Rasterstatistik von {gpd.GeoSeries(crs=crs).crs.to_string()} "
        f"in das Raster-CRS {src.crs.to_string()} umprojiziert.",
        message_en=f"Zones reprojected for the raster statistics from {gpd.GeoSeries(crs=crs).crs.to_string()} "
        f"to the raster CRS {src.crs.to_string()}.",
        level="info",
        file=getattr(src, "name", None),
    )
    return np.asarray(moved, dtype=object), [note]


def zonal_stats(
    raster,
    zones: gpd.GeoDataFrame,
    *,
    stats=("sum", "mean", "count"),
    band: int = 1,
    partial: bool = True,
    zone_key: str = "key",
    n_jobs: int | None = None,
) -> pd.DataFrame:
    """Statistics of raster values per zone polygon.

    Parameters
    ----------
    raster : path or open rasterio dataset
        Single- or multi-band raster, north-up (e.g. Zensus population per
        100 m cell in EPSG:3035).
    zones : GeoDataFrame
        Zone polygons with a CRS; reprojected to the raster CRS when they
        differ (a QANote says so).
    stats : sequence of str
        Any of ``"sum"`` (Σ value·coverage, in the raster's unit, e.g.
        persons), ``"mean"`` (coverage-weighted mean), ``"count"`` (Σ coverage
        of valid pixels, in pixels; equals exactextract's ``count``),
        ``"min"``, ``"max"`` (over pixels touched with coverage > 0).
    band : int
        1-based band number.
    partial : bool
        True: boundary pixels count with their exact covered fraction
        (same as ``exactextract``). False: a pixel counts fully if its centre
        is inside (same as ``rasterstats`` default).
    zone_key : str
        Key column of ``zones``; if absent, the index is used.
    n_jobs : int, optional
        Threads (default: all CPUs; 1 = serial). Results are identical for
        any value.

    Nodata pixels (the raster's nodata value, masks and NaN) are left out.
    A zone outside the raster or over nodata only gets sum 0, count 0 and
    mean NaN (as exactextract), and a QANote.

    Returns
    -------
    DataFrame
        Columns ``zone_key`` and one per statistic, one row per zone in input
        order; ``attrs["notes"]`` holds the QANotes.
    """
    bad = [s for s in stats if s not in _STATS]
    if bad:
        raise GeoplanError(
            "Unbekannte Rasterstatistik.", expected=", ".join(_STATS), found=", ".join(map(str, bad)),
            message_en="Unknown raster statistic."
        )
    src, owned = _open(raster)
    try:
        if not 1 <= band <= src.count:
            raise GeoplanError("Band gibt es im Raster nicht.", file=src.name, expected=f"1 bis {src.count}", found=str(band),
                               message_en="The raster has no such band.", expected_en=f"1 to {src.count}")
        from geoplan.load.boundaries import repair_polygons

        fixed, repair_notes = repair_polygons(zones.geometry.values, "Zonen")
        geoms, notes = _to_raster_crs(fixed, zones.crs, src)
        notes = repair_notes + notes
        raw = _all_zones(src, geoms, band, partial, tuple(stats), n_threads(n_jobs))
        rows = [{k: r[k] for k in stats} for r in raw]
        name = src.name
    finally:
        if owned:
            src.close()
    keys = zones[zone_key].to_numpy() if zone_key in zones.columns else zones.index.to_numpy()
    df = pd.DataFrame(rows, columns=list(stats))
    df.insert(0, zone_key, keys)
    counts = np.array([r["count"] for r in raw])
    empty = df[zone_key][counts == 0]
    if len(empty):
        notes.append(
            QANote(
                _STAGE,
                f"{len(empty)} Zonen ohne gültige Rasterzellen (außerhalb des Rasters oder nur Nodata).",
                message_en=f"{len(empty)} zones without valid raster cells (outside the raster or nodata only).",
                file=name,
                details={"zones": list(map(str, empty))[:50]},
            )
        )
    df.attrs["notes"] = notes
    return df


def _weighted_sums_crs(raster, geoms: np.ndarray, crs, n_jobs: int | None = None) -> tuple[np.ndarray, list[QANote]]:
    """Coverage-weighted pixel sums for an array of polygons (dasymetric weights)."""
    src, owned = _open(raster)
    try:
        moved, notes = _to_raster_crs(geoms, crs, src)
        sums = np.array([r["sum"] for r in _all_zones(src, moved, 1, True, ("sum",), n_threads(n_jobs))])
    finally:
        if owned:
            src.close()
    return sums, notes


# ---------------------------------------------------------------------------
# Zensus 2022 grid
# ---------------------------------------------------------------------------

_GRID_ID = re.compile(r"^CRS(?P<epsg>\d+)RES(?P<res>\d+)mN(?P<n>\d+)E(?P<e>\d+)$")


# rows read at once from a Zensus grid table: memory stays bounded for the national 100 m grid
_CHUNK_ROWS = 500_000
# longest grid id parsed (CRS + EPSG + RES + size + mN + northing + E + easting is about 30 characters)
_MAX_ID_CHARS = 64


def _grid_columns(path: Path, encoding: str, id_column: str, value_column: str) -> tuple[str, str]:
    """The header names (as written, maybe with spaces) of the id and value columns."""
    header = pd.read_csv(path, sep=";", nrows=0, dtype=str, keep_default_na=False, encoding=encoding).columns
    stripped = {str(c).strip(): c for c in header}
    for col in (id_column, value_column):
        if col not in stripped:
            raise GeoplanError(
                f"Spalte '{col}' fehlt in der Zensus-Gittertabelle.",
                file=path,
                expected=col,
                found=", ".join(str(c).strip() for c in header),
                hint="Name der Gitter-ID- bzw. Wertspalte angeben (z. B. GITTER_ID_100m, Einwohner).",
                message_en=f"Column '{col}' is missing in the census grid table.",
                hint_en="Give the name of the grid-id or value column (e.g. GITTER_ID_100m, Einwohner).",
            )
    return stripped[id_column], stripped[value_column]


def _parse_grid_ids(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised parse of grid ids ``CRS<epsg>RES<res>mN<n>E<e>`` (a numpy str array).

    Returns ``(ok, numbers)``: ``ok`` is False for ids that, stripped of
    surrounding white space, do not match ``^CRS(\\d+)RES(\\d+)mN(\\d+)E(\\d+)$``
    (ASCII digits); ``numbers`` is an ``(n, 4)`` int64 array of EPSG code,
    cell size, northing and easting (0 where not ok).

    The ids are viewed as a matrix of code points. Each row's layout (the id
    with every digit replaced by ``9``) is matched against the pattern once per
    distinct layout (a grid table has one or a few), and the digit runs of a
    layout are turned into numbers for all its rows at once by a product with
    powers of ten. No Python string is made per row.
    """
    n = len(ids)
    ok = np.zeros(n, dtype=bool)
    numbers = np.zeros((n, 4), dtype=np.int64)
    width = ids.dtype.itemsize // 4
    if n == 0 or width == 0:
        return ok, numbers
    codes = np.ascontiguousarray(ids).view(np.uint32).reshape(n, width)
    digit = (codes >= 48) & (codes <= 57)
    layout = np.where(digit, np.uint32(57), codes)  # every digit -> '9'
    uniq, inverse = np.unique(layout.view(np.dtype((np.void, 4 * width))).ravel(), return_inverse=True)
    inverse = inverse.ravel()
    pattern = re.compile(_GRID_ID.pattern, re.ASCII)
    for j, u in enumerate(uniq):
        text = "".join(map(chr, np.trim_zeros(np.frombuffer(u.tobytes(), dtype=np.uint32), "b")))
        stripped = text.strip()
        m = pattern.match(stripped)
        if m is None or any(m.end(k) - m.start(k) > 18 for k in range(1, 5)):  # more digits overflow int64
            continue
        shift = len(text) - len(text.lstrip())
        rows = np.flatnonzero(inverse == j)
        ok[rows] = True
        for k in range(4):
            s, e = m.start(k + 1) + shift, m.end(k + 1) + shift
            weights = 10 ** np.arange(e - s - 1, -1, -1, dtype=np.int64)
            numbers[rows, k] = (codes[rows, s:e].astype(np.int64) - 48) @ weights
    return ok, numbers


def _stripped(value):
    return value.strip() if isinstance(value, str) else value


def _grid_values(col: pd.Series, path: Path, start: int, value_column: str) -> tuple[np.ndarray, int]:
    """Values of a chunk read as text: markers are missing, a decimal comma is a point; else an error."""
    val = col.astype(object).where(col.notna(), np.nan)
    val = val.map(lambda v: v.strip() if isinstance(v, str) else v)
    missing = val.isin(DEFAULT_NA_MARKERS)
    # Zensus tables write decimals with a comma and no thousands separator
    num = pd.to_numeric(val.mask(missing).map(lambda v: v.replace(",", ".") if isinstance(v, str) else v),
                        errors="coerce")
    bad = ~missing & num.isna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise GeoplanError(
            f"Wert in Spalte '{value_column}' ist keine Zahl.",
            file=path,
            location=f"Zeile {start + i + 2}, Spalte '{value_column}'",
            expected="Zahl, leer oder Sperrzeichen (–)",
            found=repr(val.iloc[i]), message_en=f"Value in column '{value_column}' is not a number.",
            expected_en="a number, empty or a suppression mark (–)",
        )
    return num.to_numpy(dtype=float), int(missing.sum())


def _read_grid_table(csv_path, id_column: str, value_column: str) -> pd.DataFrame:
    """Grid cells of a Zensus table: northing ``n``, easting ``e`` (int64) and ``value`` (float, NaN = missing).

    Reads only the id and value columns, ``_CHUNK_ROWS`` rows at a time, and
    keeps numbers only (three 8-byte columns per cell), so a national 100 m
    table (3.1 million cells) needs a few hundred MB instead of Python strings
    for every field. UTF-8 (with or without BOM), else Windows-1252.
    """
    path = Path(csv_path)
    if not path.exists():
        raise GeoplanError("Zensus-Gittertabelle nicht gefunden.", file=path, message_en="Census grid table not found.")
    try:
        return _read_grid_chunks(path, "utf-8-sig", id_column, value_column)
    except UnicodeDecodeError:
        return _read_grid_chunks(path, "cp1252", id_column, value_column)


def _read_grid_chunks(path: Path, encoding: str, id_column: str, value_column: str) -> pd.DataFrame:
    raw_id, raw_value = _grid_columns(path, encoding, id_column, value_column)
    ns, es, values = [], [], []
    first_id = None  # (epsg, res, id text) of the first row
    n_missing = 0
    start = 0  # rows before this chunk
    # The value column is left to the CSV parser's number inference: a chunk of plain numbers
    # arrives as numbers; one with a marker, a decimal comma or anything else as text, which is
    # then read cell by cell as before (strip, marker, comma).
    reader = pd.read_csv(path, sep=";", usecols=[raw_id, raw_value], dtype={raw_id: str}, keep_default_na=False,
                         encoding=encoding, chunksize=_CHUNK_ROWS)
    with reader:
        for chunk in reader:
            ids = chunk[raw_id]
            too_long = (ids.str.len() > _MAX_ID_CHARS).to_numpy()  # malformed; keeps the code point matrix small
            ok, numbers = _parse_grid_ids(np.asarray(ids.mask(too_long, "") if too_long.any() else ids, dtype=str))
            ok &= ~too_long
            if not ok.all():
                i = int(np.flatnonzero(~ok)[0])
                raise GeoplanError(
                    "Ungültige Gitterzellen-ID in der Zensus-Tabelle.",
                    file=path,
                    location=f"Zeile {start + i + 2}, Spalte '{id_column}'",  # +2: header is line 1
                    expected="z. B. CRS3035RES100mN2691700E4341100",
                    found=repr(_stripped(ids.iloc[i])),
                    message_en="Invalid grid cell id in the census table.",
                    expected_en="e.g. CRS3035RES100mN2691700E4341100",
                )
            if first_id is None and len(ids):
                first_id = (int(numbers[0, 0]), int(numbers[0, 1]), _stripped(ids.iloc[0]))
            if first_id is not None:
                other = (numbers[:, 0] != first_id[0]) | (numbers[:, 1] != first_id[1])
                if other.any():
                    i = int(np.flatnonzero(other)[0])
                    raise GeoplanError(
                        "Gitterzellen verschiedener Auflösung oder Projektion in einer Tabelle.",
                        file=path,
                        location=f"Zeile {start + i + 2}, Spalte '{id_column}'",
                        expected=first_id[2][: first_id[2].index("N")],
                        found=_stripped(ids.iloc[i])[: _stripped(ids.iloc[i]).index("N")],
                        message_en="Grid cells of different resolution or projection in one table.",
                    )
                if first_id[0] != 3035:
                    raise GeoplanError(
                        "Zensus-Gitter müssen in EPSG:3035 (ETRS89-LAEA) vorliegen.",
                        file=path,
                        location=f"Zeile 2, Spalte '{id_column}'",
                        expected="CRS3035",
                        found=f"CRS{first_id[0]}", message_en="Census grids must be in EPSG:3035 (ETRS89-LAEA).",
                    )
            col = chunk[raw_value]
            if col.dtype.kind in "iuf" and not col.isna().any():
                num, n_miss = col.to_numpy(dtype=float), 0  # numbers only (the common case)
            else:
                num, n_miss = _grid_values(col, path, start, value_column)
            ns.append(numbers[:, 2].copy())
            es.append(numbers[:, 3].copy())
            values.append(num)
            n_missing += n_miss
            start += len(chunk)
    out = pd.DataFrame({
        "n": np.concatenate(ns) if ns else np.zeros(0, np.int64),
        "e": np.concatenate(es) if es else np.zeros(0, np.int64),
        "value": np.concatenate(values) if values else np.zeros(0, float),
    })
    dup = out.duplicated(["n", "e"])
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise GeoplanError(
            "Gitterzelle kommt doppelt vor.", file=path, location=f"Zeile {i + 2}", found=repr(f"CRS{first_id[0]}RES{first_id[1]}mN{out['n'].iat[i]}E{out['e'].iat[i]}"),
            message_en="A grid cell occurs twice."
        )
    out.attrs["res"] = first_id[1] if first_id is not None else 0
    out.attrs["n_missing"] = n_missing
    return out


def zensus_grid_to_geotiff(csv_path, out_path, *, value_column: str, id_column: str = "GITTER_ID_100m") -> Path:
    """Turn a Zensus 2022 grid table into a GeoTIFF in EPSG:3035.

    The table is a semicolon CSV with one row per grid cell; the cell id
    ``CRS3035RES100mN2691700E4341100`` gives the CRS (EPSG:3035), the cell
    size in metres (100, 1000 or 10000) and the northing and easting of the
    cell's lower-left corner. The raster covers the extent of all ids; cells
    without a row and suppressed values (``–``, ``/``, empty …) are nodata
    (NaN). Values are float32 in the unit of the column (e.g. persons).

    Raises GeoplanError with the row number for malformed ids, mixed
    resolutions, duplicate cells or non-numeric values.
    """
    cells = _read_grid_table(csv_path, id_column, value_column)
    return _write_grid(cells, out_path, csv_path)


def _write_grid(cells: pd.DataFrame, out_path, csv_path) -> Path:
    if cells.empty:
        raise GeoplanError("Die Zensus-Gittertabelle enthält keine Zeilen.", file=csv_path,
                           message_en="The census grid table holds no rows.")
    res = cells.attrs["res"]
    e0, n1 = int(cells["e"].min()), int(cells["n"].max()) + res
    width = (int(cells["e"].max()) - e0) // res + 1
    height = (n1 - int(cells["n"].min())) // res
    col = ((cells["e"] - e0) // res).to_numpy()
    row = ((n1 - res - cells["n"]) // res).to_numpy()
    if np.any((cells["e"] - e0) % res) or np.any((n1 - cells["n"]) % res):
        raise GeoplanError(
            "Gitterzellen liegen nicht auf einem gemeinsamen Raster.", file=csv_path, expected=f"Vielfache von {res} m",
            message_en="Grid cells do not lie on a common grid.", expected_en=f"multiples of {res} m"
        )
    transform = rasterio.transform.from_origin(e0, n1, res, res)
    out_path = Path(out_path)
    profile = dict(
        driver="GTiff", height=height, width=width, count=1, dtype="float32", crs="EPSG:3035",
        transform=transform, nodata=np.nan, tiled=True, blockxsize=256, blockysize=256, compress="deflate",
    )
    order = np.argsort(row, kind="stable")
    row, col, values = row[order], col[order], cells["value"].to_numpy()[order]
    block = 2048  # rows per write: memory stays bounded for a national grid
    with rasterio.open(out_path, "w", **profile) as dst:
        for r0 in range(0, height, block):
            r1 = min(r0 + block, height)
            lo, hi = np.searchsorted(row, [r0, r1])
            arr = np.full((r1 - r0, width), np.nan, dtype="float32")
            arr[row[lo:hi] - r0, col[lo:hi]] = values[lo:hi]
            dst.write(arr, 1, window=Window(0, r0, width, r1 - r0))
    return out_path


def zensus_zonal_sum(csv_path, zones: gpd.GeoDataFrame, *, value_column: str, zone_key: str = "key") -> pd.DataFrame:
    """Sum a Zensus 2022 grid variable per zone (e.g. residents per Sozialraum).

    The grid table is written to a temporary GeoTIFF (EPSG:3035) and summed
    with exact partial-cell coverage (:func:`zonal_stats`); a cell split by a
    zone boundary is shared by area, which assumes residents are spread evenly
    within the 100 m cell.

    Returns
    -------
    DataFrame
        ``zone_key``, ``value_column`` (sum, unit of the column) and
        ``n_cells`` (covered cells with a value); ``attrs["notes"]``.
    """
    id_column = _grid_id_column(csv_path)
    cells = _read_grid_table(csv_path, id_column, value_column)
    with tempfile.TemporaryDirectory(prefix="geoplan_zensus_") as tmp:
        path = _write_grid(cells, Path(tmp) / "zensus.tif", csv_path)
        stats = zonal_stats(path, zones, stats=("sum", "count"), zone_key=zone_key)
    n_missing = cells.attrs["n_missing"]
    out = stats.rename(columns={"sum": value_column, "count": "n_cells"})
    notes = list(stats.attrs.get("notes", []))
    if n_missing:
        notes.append(
            QANote(
                _STAGE,
                f"Zensus-Gitter '{value_column}': {n_missing} Zellen gesperrt oder leer; als fehlend (nicht 0) behandelt.",
                message_en=f"Census grid '{value_column}': {n_missing} cells suppressed or empty; treated as missing "
                "(not 0).",
                file=str(csv_path),
                details={"cells": n_missing},
            )
        )
    out.attrs["notes"] = notes
    return out


def _grid_id_column(csv_path) -> str:
    """The id column of a Zensus grid table (GITTER_ID_100m, _1km, _10km)."""
    header = pd.read_csv(csv_path, sep=";", nrows=0, encoding="utf-8-sig", encoding_errors="replace").columns
    ids = [c.strip() for c in header if c.strip().upper().startswith("GITTER_ID")]
    return ids[0] if ids else "GITTER_ID_100m"
