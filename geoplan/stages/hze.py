"""HzE cases and prior-year costs per Sozialraum: simulated (example) or joined from the HzE table.

Also the expected cost of the budget year: expected cases × the city-wide
prior-year cost per case of the kinds of help the budget covers.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from geoplan.errors import GeoplanError, QANote
from geoplan.load.tables import join_by_key


def simulated_hze(frame: gpd.GeoDataFrame, sim_cfg, *, budget_kinds, exposure: str) -> tuple[gpd.GeoDataFrame, QANote]:
    """Seeded simulated cases and costs (see :mod:`geoplan.stages.simulate`), labelled as such in a QA note."""
    from geoplan.stages.simulate import simulate_hze

    s = sim_cfg
    sim = simulate_hze(
        frame,
        effects=s.effects,
        rate_per_1000=s.rate_per_1000,
        kinds={k: v.model_dump() for k, v in s.kinds.items()},
        alpha=s.alpha,
        cost_sd_log=s.cost_sd_log,
        trend=s.trend,
        budget_kinds=budget_kinds,
        seed=s.seed,
        exposure=exposure,
    )
    note = QANote(
        "hze",
        f"HzE-Fallzahlen und -Kosten sind simuliert (Seed {s.seed}, {s.rate_per_1000:g} Fälle je 1.000 unter 21); "
        "sie sind keine amtlichen Daten.",
        message_en=f"HzE case counts and costs are simulated (seed {s.seed}, {s.rate_per_1000:g} cases per 1,000 "
        "under 21); they are not official data.",
        level="info",
    )
    out = frame.copy()
    for c in sim.columns:
        out[c] = sim[c].to_numpy()
    return out, note


#: Default plausible range of prior-year cost per case (EUR per case and year); config: hze.cost_per_case_range_eur
COST_PER_CASE_RANGE = (200.0, 400_000.0)


def _implausible(table_name, column, key, value, message, message_en, expected, hint, hint_en):
    return GeoplanError(
        message, file=table_name, location=f"Schlüssel {key}, Spalte '{column}'", expected=expected,
        found=str(value), hint=hint, message_en=message_en, hint_en=hint_en)


def check_hze_plausibility(frame: pd.DataFrame, *, table_name: str, exposure: str | None = None,
                           cost_range: tuple[float, float] | None = None) -> None:
    """Stop on HzE data that cannot be right: the message names file, key and value.

    Cases (``hze_cases*``) are integers ≥ 0 and at most the young population
    (``exposure``); not every case count is 0; prior-year cost per case lies in
    ``cost_range`` (EUR, default :data:`COST_PER_CASE_RANGE`).
    """
    fix = "Die HzE-Tabelle prüfen (Spaltenzuordnung unter hze.columns, Einheit, Tippfehler)."
    fix_en = "Check the HzE table (column mapping under hze.columns, unit, typos)."
    keys = frame["key"].astype(str).to_numpy()
    case_cols = [c for c in frame.columns if str(c).startswith("hze_cases")]
    for col in case_cols:
        v = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
        for i in range(len(v)):
            x = v[i]
            if np.isnan(x):
                continue
            if x < 0 or x != np.floor(x):
                raise _implausible(table_name, col, keys[i], f"{x:g}",
                                   "HzE-Fallzahlen müssen ganze Zahlen ≥ 0 sein.",
                                   "HzE case counts must be integers ≥ 0.", "ganze Zahl ≥ 0", fix, fix_en)
        if exposure and exposure in frame.columns:
            pop = pd.to_numeric(frame[exposure], errors="coerce").to_numpy(dtype=float)
            over = np.flatnonzero(~np.isnan(v) & ~np.isnan(pop) & (v > pop))
            if len(over):
                i = over[0]
                raise _implausible(
                    table_name, col, keys[i], f"{v[i]:g} Fälle bei {pop[i]:g} Einwohnern ('{exposure}')",
                    f"Mehr HzE-Fälle als junge Einwohner im Sozialraum ('{exposure}'); das kann nicht stimmen.",
                    f"More HzE cases than young residents in the area ('{exposure}'); this cannot be right.",
                    f"höchstens {pop[i]:g} (Einwohner '{exposure}')", fix, fix_en)
    if "hze_cases" in frame.columns:
        cases = pd.to_numeric(frame["hze_cases"], errors="coerce")
        if cases.notna().any() and cases.fillna(0).sum() == 0:
            raise GeoplanError(
                "Alle HzE-Fallzahlen sind 0; daraus lässt sich kein Bedarfsmodell schätzen.",
                file=table_name, location="Spalte 'hze_cases'", expected="Fallzahlen des letzten Jahres, nicht alle 0",
                found=f"0 in allen {len(cases)} Sozialräumen",
                hint="Prüfen, ob die richtige Spalte als hze_cases zugeordnet ist (hze.columns), oder die "
                     "Beispielwerte mit 'hze: simulate' verwenden.",
                message_en="All HzE case counts are 0; no need model can be estimated from them.",
                hint_en="Check that the right column is mapped to hze_cases (hze.columns), or use 'hze: simulate'.")
    if "hze_cost_prev_eur" in frame.columns:
        lo, hi = cost_range or COST_PER_CASE_RANGE
        ccol = "hze_cases_prev" if "hze_cases_prev" in frame.columns else ("hze_cases" if "hze_cases" in frame.columns
                                                                          else None)
        if ccol is not None:
            cost = pd.to_numeric(frame["hze_cost_prev_eur"], errors="coerce").to_numpy(dtype=float)
            n = pd.to_numeric(frame[ccol], errors="coerce").to_numpy(dtype=float)
            with np.errstate(divide="ignore", invalid="ignore"):
                per = cost / n
            bad = np.flatnonzero((n > 0) & ~np.isnan(per) & ((per < lo) | (per > hi)))
            if len(bad):
                i = bad[0]
                raise _implausible(
                    table_name, "hze_cost_prev_eur", keys[i],
                    f"{cost[i]:,.0f} € für {n[i]:g} Fälle = {per[i]:,.0f} € je Fall".replace(",", "."),
                    "Die Vorjahreskosten je Fall liegen außerhalb des plausiblen Bereichs.",
                    "The prior-year cost per case lies outside the plausible range.",
                    f"{lo:,.0f} bis {hi:,.0f} € je Fall und Jahr".replace(",", "."),
                    "Einheit prüfen (Euro, nicht Tausend Euro) und die Zuordnung der Spalten; ein anderer Bereich "
                    "lässt sich mit hze.cost_per_case_range_eur: [min, max] einstellen.",
                    "Check the unit (euros, not thousands) and the column mapping; another range can be set with "
                    "hze.cost_per_case_range_eur: [min, max].")


def attach_hze(frame: gpd.GeoDataFrame, table: pd.DataFrame, *, frame_name: str, table_name: str,
               exposure: str | None = None, cost_range: tuple[float, float] | None = None):
    """Join the HzE table (``key`` + hze columns) to the Sozialräume; every key must match; check plausibility."""
    j = join_by_key(frame[["key"]], table, left_key="key", right_key="key", left_name=frame_name,
                    right_name=table_name)
    out = frame.merge(table, on="key", how="left", validate="one_to_one")
    check_hze_plausibility(out, table_name=table_name, exposure=exposure, cost_range=cost_range)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=frame.crs), j.notes


def expected_cost(frame: gpd.GeoDataFrame, budget_kinds, *, cases: str = "hze_cases_prev") -> gpd.GeoDataFrame:
    """``expected_cost_eur`` = expected cases × city-wide prior-year cost per case of the budget's kinds of help.

    ``cases`` names the case counts of the same year as ``hze_cost_prev_eur`` (``<cases>`` and
    ``<cases>_<kind>``), so cost per case and the budget kinds' share of the cases never mix years:
    ``hze_cases_prev`` for the HzE table and the per-area simulator (cases and costs of the prior
    year), ``hze_cases`` for a case list (costs and cases of its reference year, see
    :mod:`geoplan.stages.caselist`).
    """
    out = frame.copy()
    if "hze_cost_prev_eur" in out.columns and cases in out.columns:
        kind_cols = [f"{cases}_{k}" for k in budget_kinds]
        prev_cases = sum(out[c] for c in kind_cols) if all(c in out.columns for c in kind_cols) else out[cases]
        cost_per_case = out["hze_cost_prev_eur"].sum() / max(prev_cases.sum(), 1)
        share_kinds = prev_cases.sum() / max(out[cases].sum(), 1)
        out["expected_cost_eur"] = out["expected_cases"] * share_kinds * cost_per_case
    return out


def cost_year_cases(hze_config) -> str:
    """The case column of the year ``hze_cost_prev_eur`` belongs to (see :func:`expected_cost`)."""
    return "hze_cases" if hze_config.case_list is not None else "hze_cases_prev"
