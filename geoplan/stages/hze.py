"""HzE cases and prior-year costs per Sozialraum: simulated (example) or joined from the HzE table.

Also the expected cost of the budget year: expected cases × the city-wide
prior-year cost per case of the kinds of help the budget covers.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from geoplan.errors import QANote
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
        level="info",
    )
    out = frame.copy()
    for c in sim.columns:
        out[c] = sim[c].to_numpy()
    return out, note


def attach_hze(frame: gpd.GeoDataFrame, table: pd.DataFrame, *, frame_name: str, table_name: str):
    """Join the HzE table (``key`` + hze columns) to the Sozialräume; every key must match."""
    j = join_by_key(frame[["key"]], table, left_key="key", right_key="key", left_name=frame_name,
                    right_name=table_name)
    out = frame.merge(table, on="key", how="left", validate="one_to_one")
    return gpd.GeoDataFrame(out, geometry="geometry", crs=frame.crs), j.notes


def expected_cost(frame: gpd.GeoDataFrame, budget_kinds) -> gpd.GeoDataFrame:
    """``expected_cost_eur`` = expected cases × city-wide prior-year cost per case of the budget's kinds of help."""
    out = frame.copy()
    if "hze_cost_prev_eur" in out.columns and "hze_cases_prev" in out.columns:
        prev_cases = sum(out[f"hze_cases_prev_{k}"] for k in budget_kinds) if all(
            f"hze_cases_prev_{k}" in out.columns for k in budget_kinds) else out["hze_cases_prev"]
        cost_per_case = out["hze_cost_prev_eur"].sum() / max(prev_cases.sum(), 1)
        share_kinds = prev_cases.sum() / max(out["hze_cases_prev"].sum(), 1)
        out["expected_cost_eur"] = out["expected_cases"] * share_kinds * cost_per_case
    return out
