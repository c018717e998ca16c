"""Build the simulated HzE case list of the Berlin example from the shipped open data.

``python -m geoplan.load.simulated_caselist [OUT.csv]`` reads the Planungsraum
population (under 21), the MSS indicators, the LOR key table and the
Prognoseraum polygons, draws the list with
:func:`geoplan.stages.simulate_caselist.simulate_case_list` and writes it
(default: ``indicators/berlin/hze_fallliste_simuliert.csv``). The file is
shipped; tests regenerate it and compare.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from geoplan.load.tables import read_table
from geoplan.stages.simulate_caselist import case_list_csv, simulate_case_list

ROOT = Path(__file__).resolve().parents[2]
BERLIN = ROOT / "indicators" / "berlin"
OUT = BERLIN / "hze_fallliste_simuliert.csv"
#: Indicator effects (log rate ratio per SD), as the per-area simulator had them in earlier versions of berlin.yaml.
EFFECTS = {"kinderarmut": 0.35, "alleinerziehende": 0.12, "arbeitslosigkeit": 0.05}
SEED = 2026


def berlin_areas(root: Path = ROOT) -> tuple[pd.DataFrame, object]:
    """Planungsräume with ``key``, ``sozialraum`` (Prognoseraum), ``pop_u21`` and the indicators; and the polygons."""
    import geopandas as gpd

    b = root / "indicators" / "berlin"
    ew = read_table(b / "einwohner_plr_2022-06.csv", key="PLR-ID",
                    numeric_columns=["unter6", "6-15", "15-18", "18-27"]).frame
    mss = read_table(b / "mss_2021_index_indikatoren.csv", key="PLR_ID", sentinels=[-9999],
                     valid_column="KOM", valid_values=["gültig"], numeric_columns=["S1", "S4"]).frame
    ctx = read_table(b / "mss_2021_kontext_indikatoren.csv", key="PLR_ID", sentinels=[-9999],
                     valid_column="KOM", valid_values=["gültig"], numeric_columns=["KI_02"]).frame
    kt = read_table(b / "lor_2021_plr_schluessel.csv", key="Planungsraum (Nummer)",
                    text_columns=["Prognoseraum (Nummer)"]).frame
    areas = pd.DataFrame({
        "key": ew["PLR-ID"],
        # the table has 18-27 as one group; a third is taken as 18-20 (as in berlin.yaml)
        "pop_u21": ew["unter6"] + ew["6-15"] + ew["15-18"] + ew["18-27"] / 3.0,
    })
    areas["sozialraum"] = areas["key"].map(kt.set_index("Planungsraum (Nummer)")["Prognoseraum (Nummer)"])
    areas["kinderarmut"] = areas["key"].map(mss.set_index("PLR_ID")["S4"])
    areas["arbeitslosigkeit"] = areas["key"].map(mss.set_index("PLR_ID")["S1"])
    areas["alleinerziehende"] = areas["key"].map(ctx.set_index("PLR_ID")["KI_02"])
    areas = areas[areas["sozialraum"].notna()].sort_values("key").reset_index(drop=True)
    poly = gpd.read_file(root / "boundaries" / "berlin" / "prognoseraeume_2021.geojson")
    poly = poly.rename(columns={"id": "key"})[["key", "geometry"]]
    if poly.crs is None or poly.crs.to_epsg() != 25833:
        poly = poly.set_crs("EPSG:25833", allow_override=poly.crs is None).to_crs("EPSG:25833")
    return areas, poly


def berlin_case_list(root: Path = ROOT, seed: int = SEED) -> pd.DataFrame:
    """The simulated Berlin case list (helps running 2023–2025, list dated 31.12.2025)."""
    areas, poly = berlin_areas(root)
    return simulate_case_list(areas, polygons=poly, effects=EFFECTS, first_year=2023, last_year=2025, seed=seed)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else OUT
    out.write_text(case_list_csv(berlin_case_list()), encoding="utf-8")
    print(out)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
