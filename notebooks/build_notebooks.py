"""Writes the notebooks in this folder from their cell sources (run: python notebooks/build_notebooks.py).

Keeping the sources here lets code review see plain Python; the .ipynb files
are what planners open. tests/test_notebooks.py executes them.
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent

SETUP = """from pathlib import Path
import geoplan
ROOT = Path(geoplan.__file__).resolve().parents[1]   # the repository checkout
"""

NOTEBOOKS = {
    "01_schnellstart.ipynb": [
        new_markdown_cell("# Schnellstart: das Berliner Beispiel\n\n58 LOR-Prognoseräume als Sozialräume, echte "
                          "Indikatoren des Monitorings Soziale Stadtentwicklung 2021, **simulierte** HzE-Fallzahlen. "
                          "Dasselbe wie `geoplan demo`, aber Schritt für Schritt in Python."),
        new_code_cell(SETUP + """from geoplan.cli import demo_config
from geoplan.pipeline import run

config = demo_config()
config.model.n_boot = 200          # schneller für das Notebook
result = run(config)
len(result.frame)"""),
        new_markdown_cell("Die Verteilung: ganze Euro, die zusammen genau das Gesamtbudget ergeben."),
        new_code_cell("""table = result.frame[["key", "name", "bezirk", "pop_u21", "need_index", "expected_cases", "budget_eur"]]
assert int(table["budget_eur"].sum()) == config.allocation.total_eur
table.sort_values("budget_eur", ascending=False).head(10)"""),
        new_code_cell("""result.equity.summary"""),
        new_markdown_cell("Alle Ausgaben (Bericht, Karte, Excel, GeoPackage, Manifest) in einen Ordner schreiben:"),
        new_code_cell("""import tempfile
from geoplan.report import write_outputs

out = Path(tempfile.mkdtemp()) / "ausgabe"
sorted(p.name for p in write_outputs(result, out, pdf=False))"""),
    ],
    "02_eigene_daten.ipynb": [
        new_markdown_cell("# Eigene Shapefile- und CSV-Dateien einlesen\n\nSo kommen Daten aus dem Rathaus: ein "
                          "Shapefile aus dem GIS (DBF in Windows-1252, ohne `.cpg`), eine Semikolon-CSV mit "
                          "Dezimalkomma und Schlüsseln mit führenden Nullen. Wir bauen beides hier aus den "
                          "Berliner Daten nach und lesen es mit geoplan."),
        new_code_cell(SETUP + """import tempfile
import geopandas as gpd

work = Path(tempfile.mkdtemp())
polys = gpd.read_file(ROOT / "boundaries/berlin/prognoseraeume_2021.geojson")
polys = polys.rename(columns={"id": "SR_NR", "name": "SR_NAME"})
polys.to_file(work / "sozialraeume.shp", encoding="cp1252")
(work / "sozialraeume.cpg").unlink(missing_ok=True)     # wie oft in der Praxis: keine .cpg
sorted(p.name for p in work.iterdir())"""),
        new_code_cell("""from geoplan.load.boundaries import prepare_boundaries

b = prepare_boundaries(work / "sozialraeume.shp", key="SR_NR", name="SR_NAME")
print(b.source_crs, "->", b.metric_crs)
b.gdf[["key", "name", "area_km2"]].head()"""),
        new_markdown_cell("Umlaute kommen richtig an (Treptow-Köpenick), obwohl keine `.cpg` die Kodierung nennt."),
        new_code_cell("""assert b.gdf["name"].str.contains("ö").any()
b.qa.findings"""),
        new_code_cell("""import pandas as pd
ew = pd.read_csv(ROOT / "indicators/berlin/einwohner_plr_2022-06.csv", sep=";", dtype=str, encoding="utf-8-sig")
ew["Anteil_u6"] = (pd.to_numeric(ew["unter6"].replace("–", None)) / pd.to_numeric(ew["Gesamt"].replace("–", None)) * 100).round(2)
german = ew[["PLR-ID", "Gesamt", "Anteil_u6"]].to_csv(sep=";", decimal=",", index=False)
(work / "bevoelkerung.csv").write_text(german, encoding="cp1252")
print(german[:120])"""),
        new_code_cell("""from geoplan.load.tables import read_table

t = read_table(work / "bevoelkerung.csv", key="PLR-ID")
print(t.dialect)
t.frame.head()"""),
    ],
    "03_bedarfsmodell.ipynb": [
        new_markdown_cell("# Das Bedarfsmodell\n\nPoisson- bzw. negativ-binomiale Regression der HzE-Fälle mit "
                          "log(Einwohner unter 21) als Offset, Kreuzvalidierung, Funnel-Plot, Moran's I."),
        new_code_cell(SETUP + """from geoplan.cli import demo_config
from geoplan.pipeline import run

config = demo_config()
config.model.n_boot = 200
result = run(config)
result.model.fit"""),
        new_code_cell("""result.model.coefficients"""),
        new_code_cell("""result.model.cv"""),
        new_markdown_cell("Auffällige Sozialräume (außerhalb der 99,8-%-Kontrollgrenzen). Die Fallzahlen sind simuliert."),
        new_code_cell("""f = result.model.funnel
f[f["flag"].astype(str) != ""]"""),
        new_code_cell("""result.model.moran"""),
    ],
    "04_szenarien.ipynb": [
        new_markdown_cell("# Szenarien vergleichen\n\nDieselben Daten, verschiedene Budgetformeln: das Berliner "
                          "Beispiel mit seiner Formel und mit dem ISA-Indikatorenmodell."),
        new_code_cell(SETUP + """from geoplan.cli import demo_config
from geoplan.pipeline import run
from geoplan.presets import list_presets

[p.name for p in list_presets()]"""),
        new_code_cell("""results = {}
for name in [None, "isa"]:
    cfg = demo_config(preset=name)
    cfg.model.n_boot = 200
    results[name or "beispiel"] = run(cfg).allocation"""),
        new_code_cell("""from geoplan.stages.sensitivity import compare_allocations

cmp = compare_allocations(results)
cmp.head(10)"""),
    ],
}


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                "language": "python"},
                                                 "language_info": {"name": "python"}})
        nbformat.write(nb, HERE / name)


if __name__ == "__main__":
    main()
