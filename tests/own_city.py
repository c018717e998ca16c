"""A small invented city ("Musterstadt") laid out unlike Berlin, built from scratch for the own-data tests.

20 Stadtteile (1 km squares, EPSG:25832 shapefile, two-digit keys with leading
zeros, a BEZIRK field); two of them are published by the statistics as one
area ("0304"), one is an uninhabited harbour ("20", no table row). Population
comes per postcode (8 PLZ polygons cutting across the Stadtteile, one PLZ
stored as two polygons) and is brought onto the Stadtteile dasymetrically with
residents per 500 m block (a block GeoJSON plus a CSV of residents). Social
indicators are a long table (raum_id; merkmal; wert) with a city total row;
HzE cases and costs a wide table with a units row under the header, costs as
"35.206,98 €" and a total row. The exposure is pop_u18.

``build_city(root)`` writes the files under ``root/daten`` and returns the
config as a dict (paths relative to ``root``); ``truth`` holds the exact
residents under 18 per Stadtteil for checking the interpolation.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import yaml
from shapely.geometry import box

X0, Y0 = 560_000.0, 5_930_000.0
NX, NY = 5, 4
CRS = "EPSG:25832"

CATALOGUE = {
    "title": "Indikatoren Musterstadt",
    "indicators": [
        {"name": "kinderarmut", "label": "Kinderarmut (SGB II unter 15)", "column": "kinderarmut",
         "base": ["pop_u18"], "unit": "%", "direction": "hoch = mehr Bedarf", "weight": 1.0,
         "group": "status", "smoothing": "keine", "source": "Jobcenter Musterstadt", "reference_date": "31.12.2025"},
        {"name": "alleinerziehende", "label": "Alleinerziehende", "column": "alleinerziehende",
         "base": ["pop_u18"], "unit": "%", "direction": "hoch = mehr Bedarf", "weight": 1.0,
         "group": "kontext", "smoothing": "keine", "source": "Statistikstelle Musterstadt",
         "reference_date": "31.12.2025"},
    ],
}


def _de(x: float, decimals: int = 2) -> str:
    s = f"{x:,.{decimals}f}"
    return s.replace(",", " ").replace(".", ",").replace(" ", ".")


def build_city(root: Path, *, seed: int = 7, boundaries: str = "shp") -> tuple[dict, pd.Series]:
    rng = np.random.default_rng(seed)
    data = Path(root) / "daten"
    data.mkdir(parents=True, exist_ok=True)

    # Stadtteile
    rows = []
    for j in range(NY):
        for i in range(NX):
            n = j * NX + i + 1
            rows.append({"ST_NR": f"{n:02d}", "ST_NAME": f"Stadtteil {n:02d}", "BEZIRK": f"Bezirk {'ABCD'[j]}",
                         "geometry": box(X0 + i * 1000, Y0 + j * 1000, X0 + (i + 1) * 1000, Y0 + (j + 1) * 1000)})
    st = gpd.GeoDataFrame(rows, crs=CRS)
    if boundaries == "shp":
        st.to_file(data / "stadtteile.shp", encoding="cp1252")
    else:  # a GeoPackage with two layers (this year's and an older one)
        st.to_file(data / "stadtteile.gpkg", layer="stadtteile_2025", driver="GPKG")
        st.iloc[:10].to_file(data / "stadtteile.gpkg", layer="stadtteile_2010", driver="GPKG")

    # residents per 500 m block; the harbour (Stadtteil 20) has none
    blocks = []
    for j in range(NY * 2):
        for i in range(NX * 2):
            g = box(X0 + i * 500, Y0 + j * 500, X0 + (i + 1) * 500, Y0 + (j + 1) * 500)
            st_nr = f"{(j // 2) * NX + (i // 2) + 1:02d}"
            ew = 0 if st_nr == "20" else int(rng.integers(300, 2500))
            blocks.append({"block_id": f"B{j:02d}{i:02d}", "st": st_nr, "EW": ew, "geometry": g})
    bl = gpd.GeoDataFrame(blocks, crs=CRS)
    bl[["block_id", "geometry"]].to_file(data / "bloecke.geojson", driver="GeoJSON")
    (data / "bloecke_ew.csv").write_text(
        "block_id;EW\n" + "".join(f"{b};{e}\n" for b, e in zip(bl["block_id"], bl["EW"])), encoding="utf-8")

    # postcodes: strips on 500 m lines, cutting across the Stadtteile
    xs = [0, 1500, 2500, 3500, 5000]
    plz = []
    for jj, (ya, yb) in enumerate([(0, 2000), (2000, 4000)]):
        for ii in range(4):
            code = f"2{jj}{ii:03d}"
            plz.append({"plz": code, "geometry": box(X0 + xs[ii], Y0 + ya, X0 + xs[ii + 1], Y0 + yb)})
    pg = gpd.GeoDataFrame(plz, crs=CRS)
    # one postcode stored as two polygons (as in many official PLZ layers)
    first = pg.iloc[0]
    x_mid = X0 + 500
    parts = [box(X0, Y0, x_mid, Y0 + 2000), box(x_mid, Y0, X0 + 1500, Y0 + 2000)]
    pg = pd.concat([gpd.GeoDataFrame([{"plz": first["plz"], "geometry": parts[0]},
                                      {"plz": first["plz"], "geometry": parts[1]}], crs=CRS), pg.iloc[1:]],
                   ignore_index=True)
    pg = gpd.GeoDataFrame(pg, crs=CRS).to_crs(4326)  # the PLZ layer comes in WGS84
    pg.to_file(data / "plz.geojson", driver="GeoJSON")

    # population per PLZ: block residents summed, age shares per PLZ
    centroids = bl.geometry.centroid
    plz_of = []
    for c in centroids:
        x = c.x - X0
        y = c.y - Y0
        ii = next(k for k in range(4) if xs[k] <= x < xs[k + 1])
        plz_of.append(f"2{0 if y < 2000 else 1}{ii:03d}")
    bl["plz"] = plz_of
    lines = ["Bevölkerung nach Postleitzahl, 31.12.2025", "", "PLZ,Einwohner,unter 6,6 bis 15,15 bis 18"]
    truth_u18 = pd.Series(0.0, index=sorted(set(bl["st"])))
    for code, grp in bl.groupby("plz"):
        ew = int(grp["EW"].sum())
        s6, s15, s18 = rng.uniform(0.05, 0.08), rng.uniform(0.07, 0.11), rng.uniform(0.025, 0.04)
        u6, a615, a1518 = round(ew * s6), round(ew * s15), round(ew * s18)
        lines.append(f"{code},{ew},{u6},{a615},{a1518}")
        share_u18 = (u6 + a615 + a1518) / ew
        for st_nr, e in zip(grp["st"], grp["EW"]):
            truth_u18[st_nr] += e * share_u18
    lines.append("Quelle: Statistikstelle Musterstadt")
    (data / "bevoelkerung_plz.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")

    # social indicators, long, on the Stadtteile as the statistics publish them (03+04 as one, no 20)
    keys = [k for k in truth_u18.index if k not in ("03", "04", "20")] + ["0304"]
    ka = {k: rng.uniform(5, 45) for k in keys}
    ae = {k: rng.uniform(10, 35) for k in keys}
    long = ["raum_id;raum_name;merkmal;wert"]
    for k in keys:
        long.append(f"{k};Stadtteil {k};Kinderarmut;{_de(ka[k], 1)}")
        long.append(f"{k};Stadtteil {k};Alleinerziehende;{_de(ae[k], 1)}")
    long.append("99;Stadt insgesamt;Kinderarmut;21,4")
    long.append("99;Stadt insgesamt;Alleinerziehende;22,0")
    (data / "sozialdaten.csv").write_text("\n".join(long) + "\n", encoding="cp1252")

    # HzE: cases from the exposure and child poverty, costs with € sign
    u18 = truth_u18.copy()
    u18["0304"] = u18["03"] + u18["04"]
    hze = ["Stadtteil;Fälle 2025;Fälle 2024;Kosten 2024", ";Anzahl;Anzahl;EUR"]
    tot = [0, 0, 0.0]
    for k in keys:
        mu = u18[k] * 0.03 * np.exp(0.03 * (ka[k] - 25))
        c, cp = int(rng.poisson(mu)), int(rng.poisson(mu))
        cost = cp * rng.uniform(24_000, 30_000)
        tot = [tot[0] + c, tot[1] + cp, tot[2] + cost]
        hze.append(f"{k};{c};{cp};{_de(cost)} €")
    hze.append(f"gesamt;{tot[0]};{tot[1]};{_de(tot[2])} €")
    (data / "hze.csv").write_text("\n".join(hze) + "\n", encoding="utf-8")

    (data / "katalog.yaml").write_text(yaml.safe_dump(CATALOGUE, allow_unicode=True, sort_keys=False),
                                       encoding="utf-8")
    bpath = "daten/stadtteile.shp" if boundaries == "shp" else "daten/stadtteile.gpkg"
    raw = {
        "title": "Sozialraumbudget HzE Musterstadt",
        "region": "Musterstadt",
        "budget_year": 2027,
        "boundaries": {"path": bpath, "key": "ST_NR", "name": "ST_NAME", "group": "BEZIRK",
                       "merge": [{"keys": ["03", "04"], "key": "0304", "name": "Altdorf/Neudorf"}],
                       "exclude": ["20"]},
        "indicators": {
            "catalogue": "daten/katalog.yaml",
            "levels": {"plz": {"polygons": "daten/plz.geojson", "key": "plz", "method": "dasymetric",
                               "weights": {"polygons": "daten/bloecke.geojson", "key": "block_id",
                                           "table": "daten/bloecke_ew.csv", "table_key": "block_id",
                                           "column": "EW"}}},
            "tables": [
                {"path": "daten/bevoelkerung_plz.csv", "key": "PLZ", "level": "plz", "label": "Bevölkerung je PLZ",
                 "columns": {"Einwohner": "pop_total", "unter 6": "pop_u6", "6 bis 15": "pop_6_15",
                             "15 bis 18": "pop_15_18"}},
                {"path": "daten/sozialdaten.csv", "key": "raum_id", "format": "long", "variable": "merkmal",
                 "value": "wert", "allow_mixed_key_lengths": True, "drop_rows": {"labels": ["Stadt insgesamt"]},
                 "columns": {"Kinderarmut": "kinderarmut", "Alleinerziehende": "alleinerziehende"}},
            ],
            "derived": {"pop_u18": {"pop_u6": 1, "pop_6_15": 1, "pop_15_18": 1}},
        },
        "hze": {"path": "daten/hze.csv", "key": "Stadtteil", "skip_rows": 1, "allow_mixed_key_lengths": True, "drop_rows": {"keys": ["^gesamt$"]},
                "columns": {"Fälle 2025": "hze_cases", "Fälle 2024": "hze_cases_prev",
                            "Kosten 2024": "hze_cost_prev_eur"}},
        "model": {"predictors": ["kinderarmut", "alleinerziehende"], "exposure": "pop_u18",
                  "cv_folds": 3, "n_boot": 100},
        "allocation": {"total_eur": 5_000_000, "unit": "euro", "components": [
            {"name": "grundanteil", "label": "Grundanteil nach Einwohnern unter 18", "type": "population",
             "weight": 0.4, "columns": ["pop_u18"]},
            {"name": "bedarf", "label": "Bedarfsanteil nach erwarteten Fällen", "type": "model", "weight": 0.6,
             "column": "expected_cases"}]},
        "output": {"pdf": False},
    }
    truth = truth_u18.drop("20")
    truth["0304"] = truth["03"] + truth["04"]
    return raw, truth.drop(["03", "04"])


def write_config(root: Path, raw: dict, name: str = "musterstadt.yaml") -> Path:
    p = Path(root) / name
    p.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return p


if __name__ == "__main__":  # pragma: no cover
    import sys

    raw, _ = build_city(Path(sys.argv[1]))
    print(write_config(Path(sys.argv[1]), raw))
    print(json.dumps(raw, ensure_ascii=False)[:200])
