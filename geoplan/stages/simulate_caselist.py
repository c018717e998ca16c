"""Seeded simulator of an HzE case list as a Jugendamt exports it (one row per help).

HzE case lists are social data and never open data; the Berlin example reads
a simulated one through the real import path (:mod:`geoplan.load.caselist`)
so that path runs on every demo. Assumptions and their sources are in
docs/simulation.md.

Model, per small area i (Berlin: LOR-Planungsraum) and kind of help k::

    eta_i      = sum_j b_j z_ij                 z = standardised indicator (0 where missing)
    g_i        ~ Gamma(1/alpha, alpha)           unmeasured local conditions, mean 1
    w_i        = P_i exp(eta_i) g_i / mean       P = persons under 21
    P_k        = rate_k / 1000 * sum_i P_i       helps of kind k in a year (am 31.12. andauernd + beendet)
    lambda_k   = P_k / (D_k + 1)                 new helps per year; D_k mean duration in years
                                                 (in a steady state the helps of a year are those
                                                 running on 1 January, lambda D, plus the new ones, lambda)
    starts     ~ Poisson(lambda_k w_i / sum w * (1 + trend)^(t - t_last)) per year t, days uniform
    duration   ~ LogNormal(log D_k − s²/2, s)   in days, s = 0.8
    cost/month ~ LogNormal(log C_k − c²/2, c)   c = 0.25, rounded to cents

Starts are drawn from ``burn_in`` years before the first year on, so that
the first year already has the long-running helps of a steady state; the
list holds the helps with at least one day in the years asked for, as an
export "alle Hilfen mit Laufzeit im Zeitraum" would. Helps running past the
list's date have no end. All draws come from one
``numpy.random.Generator(PCG64(seed))`` in a fixed order.

Where the family lives: the Planungsraum key for most rows; for a share
``coord_share`` only coordinates (EPSG:25833, a uniform point in the
Sozialraum polygon the Planungsraum belongs to). A few rows carry the faults
real exports have (no location, end before start, an overlapping duplicate,
a kind outside HzE), so the QA of the import runs on every demo too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from geoplan.errors import GeoplanError

__all__ = ["KindAssumption", "DEFAULT_KINDS", "simulate_case_list", "case_list_csv"]


@dataclass(frozen=True)
class KindAssumption:
    """One kind of help: rate per 1,000 under 21 per year, mean duration (months), mean cost per month (EUR)."""

    rate_per_1000: float
    duration_months: float
    cost_per_month_eur: float
    spellings: tuple[str, ...]


#: Rounded national orders of magnitude (see docs/simulation.md for sources).
DEFAULT_KINDS: dict[str, KindAssumption] = {
    "27_2": KindAssumption(5.5, 10, 900, ("§ 27 Abs. 2 SGB VIII", "27.2", "Flexible Hilfe § 27,2")),
    "29": KindAssumption(1.0, 12, 450, ("§ 29 SGB VIII", "29", "Soziale Gruppenarbeit")),
    "30": KindAssumption(5.0, 15, 1000, ("§ 30 SGB VIII", "30", "Erziehungsbeistand")),
    "31": KindAssumption(9.0, 17, 1500, ("§ 31 SGB VIII", "31", "SPFH")),
    "32": KindAssumption(1.5, 22, 2800, ("§ 32 SGB VIII", "32", "Tagesgruppe")),
    "33": KindAssumption(5.5, 42, 1600, ("§ 33 SGB VIII", "33", "Vollzeitpflege")),
    "34": KindAssumption(8.0, 22, 6500, ("§ 34 SGB VIII", "34", "Heimerziehung")),
    "35": KindAssumption(0.5, 12, 4500, ("§ 35 SGB VIII", "35", "ISE")),
    "35a": KindAssumption(6.0, 20, 1300, ("§ 35a SGB VIII", "35a", "Eingliederungshilfe § 35a")),
}

#: Share of § 34 helps written as help for young adults in residential care.
YOUNG_ADULT_34 = 0.15

COLUMNS = ["Fallnummer", "Hilfeart", "Beginn", "Ende", "Kosten je Monat", "Planungsraum", "Rechtswert", "Hochwert"]


def _random_points(rng, polygon, n: int) -> np.ndarray:
    """n uniform points in a (multi)polygon by rejection from its bounding box."""
    import shapely

    minx, miny, maxx, maxy = polygon.bounds
    out = np.empty((0, 2))
    while len(out) < n:
        m = max(2 * (n - len(out)), 16)
        xy = np.column_stack([rng.uniform(minx, maxx, m), rng.uniform(miny, maxy, m)])
        inside = shapely.contains_xy(polygon, xy[:, 0], xy[:, 1])
        out = np.vstack([out, xy[inside]])
    return out[:n]


def simulate_case_list(
    areas: pd.DataFrame,
    *,
    polygons=None,
    effects: dict[str, float] | None = None,
    kinds: dict[str, KindAssumption] | None = None,
    first_year: int = 2023,
    last_year: int = 2025,
    burn_in: int = 8,
    trend: float = 0.02,
    alpha: float = 0.05,
    duration_sd_log: float = 0.8,
    cost_sd_log: float = 0.25,
    coord_share: float = 0.25,
    faults: bool = True,
    seed: int = 2026,
) -> pd.DataFrame:
    """Draw a case list.

    Parameters
    ----------
    areas : one row per small area: ``key`` (text, e.g. the 8-digit
        Planungsraum), ``sozialraum`` (key of the polygon it lies in),
        ``pop_u21`` (persons) and the indicator columns named in ``effects``.
    polygons : GeoDataFrame of the Sozialräume (``key``, EPSG:25833) for the
        coordinates; None = no coordinates.
    effects : log rate ratio per standard deviation of each indicator.

    Returns
    -------
    DataFrame with the columns of :data:`COLUMNS` as text, as an export
    writes them (German dates and decimal comma; ``Planungsraum`` empty
    where only coordinates are given). The list's date is 31.12. of
    ``last_year``.
    """
    kinds = DEFAULT_KINDS if kinds is None else kinds
    effects = effects or {}
    for col in ["key", "sozialraum", "pop_u21", *effects]:
        if col not in areas.columns:
            raise GeoplanError(f"Simulation der Fallliste: Spalte {col!r} fehlt.",
                               expected="key, sozialraum, pop_u21 und die Indikatoren aus 'effects'",
                               message_en=f"Case list simulation: column {col!r} is missing.")
    rng = np.random.Generator(np.random.PCG64(seed))
    pop = areas["pop_u21"].to_numpy(float)
    pop = np.where(np.isfinite(pop) & (pop > 0), pop, 0.0)
    eta = np.zeros(len(areas))
    for col, b in effects.items():
        x = areas[col].to_numpy(float)
        ok = np.isfinite(x)
        if ok.sum() > 1 and x[ok].std() > 0:
            z = np.where(ok, (x - x[ok].mean()) / x[ok].std(), 0.0)
            eta += b * z
    g = rng.gamma(1.0 / alpha, alpha, len(areas)) if alpha > 0 else np.ones(len(areas))
    w = pop * np.exp(eta) * g
    w = w / w.sum()
    total_pop = pop.sum()
    t0 = np.datetime64(f"{first_year}-01-01", "D")
    as_of = np.datetime64(f"{last_year}-12-31", "D")
    keys = areas["key"].astype(str).to_numpy()
    sozialraum = areas["sozialraum"].astype(str).to_numpy()

    parts = []
    for code, a in kinds.items():
        d_years = a.duration_months / 12.0
        lam = a.rate_per_1000 / 1000.0 * total_pop / (d_years + 1.0)
        for year in range(first_year - burn_in, last_year + 1):
            lam_t = lam * (1.0 + trend) ** (year - last_year)
            n_area = rng.poisson(lam_t * w)
            n = int(n_area.sum())
            if n == 0:
                continue
            idx = np.repeat(np.arange(len(areas)), n_area)
            days_in_year = 366 if year % 4 == 0 else 365
            start = np.datetime64(f"{year}-01-01", "D") + rng.integers(0, days_in_year, n).astype("timedelta64[D]")
            mu = np.log(a.duration_months * 30.4375) - duration_sd_log**2 / 2
            dur = np.maximum(np.rint(rng.lognormal(mu, duration_sd_log, n)), 1).astype(np.int64)
            end = start + (dur - 1).astype("timedelta64[D]")
            cmu = np.log(a.cost_per_month_eur) - cost_sd_log**2 / 2
            cost = np.round(rng.lognormal(cmu, cost_sd_log, n), 2)
            spelling = rng.integers(0, len(a.spellings), n)
            parts.append(pd.DataFrame({"code": code, "area": idx, "start": start, "end": end, "cost": cost,
                                       "spelling": spelling}))
    df = pd.concat(parts, ignore_index=True)
    # the export: helps with a day in first_year … last_year, none begun after the list's date
    df = df[(df["end"] >= t0) & (df["start"] <= as_of)].reset_index(drop=True)
    n = len(df)
    ongoing = df["end"].to_numpy() > as_of
    kind_text = np.array([kinds[c].spellings[s] for c, s in zip(df["code"], df["spelling"])], dtype=object)
    young_adult = (df["code"].to_numpy() == "34") & (rng.random(n) < YOUNG_ADULT_34)
    kind_text[young_adult] = "§ 41 i.V.m. § 34 SGB VIII"
    ids = rng.choice(np.arange(100000, 1000000), size=n, replace=False)
    out = pd.DataFrame({
        "Fallnummer": [f"F{i}" for i in ids],
        "Hilfeart": kind_text,
        "Beginn": pd.to_datetime(df["start"]).dt.strftime("%d.%m.%Y"),
        "Ende": pd.Series(pd.to_datetime(df["end"]).dt.strftime("%d.%m.%Y")).where(~ongoing, ""),
        "Kosten je Monat": [f"{c:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".") for c in df["cost"]],
        "Planungsraum": keys[df["area"].to_numpy()],
        "Rechtswert": "",
        "Hochwert": "",
    })
    if polygons is not None and coord_share > 0:
        with_xy = rng.random(n) < coord_share
        poly_by_key = dict(zip(polygons["key"].astype(str), polygons.geometry))
        sr = sozialraum[df["area"].to_numpy()]
        xs = np.full(n, "", dtype=object)
        ys = np.full(n, "", dtype=object)
        for k in sorted(set(sr[with_xy])):
            rows = np.flatnonzero(with_xy & (sr == k))
            pts = _random_points(rng, poly_by_key[k], len(rows))
            xs[rows] = [f"{v:.1f}".replace(".", ",") for v in pts[:, 0]]
            ys[rows] = [f"{v:.1f}".replace(".", ",") for v in pts[:, 1]]
        out["Rechtswert"] = xs
        out["Hochwert"] = ys
        out.loc[with_xy, "Planungsraum"] = ""
    if faults:
        out = _add_faults(out, rng)
    # the export's order: by start date, then case number
    order = np.lexsort((out["Fallnummer"].to_numpy(), pd.to_datetime(out["Beginn"], format="%d.%m.%Y").to_numpy()))
    return out.iloc[order].reset_index(drop=True)


def _add_faults(out: pd.DataFrame, rng) -> pd.DataFrame:
    """A few rows with the faults of real exports (numbers in docs/simulation.md)."""
    out = out.copy()
    n = len(out)
    pick = rng.choice(n, size=40, replace=False)
    no_loc, swapped, dup_src = pick[:10], pick[10:15], pick[15:23]
    out.loc[no_loc, ["Planungsraum", "Rechtswert", "Hochwert"]] = ""
    ended = out.loc[swapped, "Ende"] != ""
    sw = swapped[ended.to_numpy()]
    out.loc[sw, ["Beginn", "Ende"]] = out.loc[sw, ["Ende", "Beginn"]].to_numpy()
    dups = out.loc[dup_src].copy()  # the same help exported twice (e.g. after a change of provider)
    other = out.iloc[rng.choice(n, size=20, replace=False)].copy()
    other["Hilfeart"] = "§ 19 SGB VIII"  # Mutter-/Vater-Kind-Einrichtung: not a Hilfe zur Erziehung
    other["Fallnummer"] = [f"G{i}" for i in rng.choice(np.arange(100000, 1000000), size=20, replace=False)]
    return pd.concat([out, dups, other], ignore_index=True)


def case_list_csv(frame: pd.DataFrame) -> str:
    """The list as a semicolon CSV text with a header (as German exports write it)."""
    return frame.to_csv(sep=";", index=False, lineterminator="\n")
