"""Real QGIS (Debian python3-qgis, headless) opens geoplan's outputs.

QGIS runs in Debian's /usr/bin/python3 (the venv cannot import it) with
QT_QPA_PLATFORM=offscreen. It opens ergebnis.gpkg (default style from the
GeoPackage's layer_styles), the PostGIS output layer (style from the
database's layer_styles) and ergebnis.qgz, checks the layers are valid and
styled with the expected classes, and renders each to PNG; the test checks
the images are not blank. Skips without QGIS; GEOPLAN_REQUIRE_QGIS=1 makes
it fail instead.
"""

from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pytest
from gis_services import postgis_server, run_qgis  # noqa: F401  (fixture)
from PIL import Image

QGIS_SCRIPT = r"""
import json, os, sys
from qgis.core import (QgsApplication, QgsVectorLayer, QgsProject, QgsMapSettings, QgsMapRendererParallelJob,
                       QgsRectangle)
from qgis.PyQt.QtCore import QSize
from qgis.PyQt.QtGui import QColor

app = QgsApplication([], False)
app.initQgis()
jobs = json.loads(sys.argv[1])
out = []

def describe(layer):
    r = layer.renderer()
    d = {"name": layer.name(), "valid": layer.isValid(), "features": layer.featureCount() if layer.isValid() else -1,
         "renderer": r.type() if r else None, "labels": bool(layer.labelsEnabled()), "source": layer.source(),
         "crs": layer.crs().authid()}
    if r is not None and r.type() == "graduatedSymbol":
        d["attr"] = r.classAttribute()
        d["classes"] = [(rg.lowerValue(), rg.upperValue(), rg.label(), rg.symbol().color().name())
                        for rg in r.ranges()]
        # features with a value that no class takes (QGIS would not draw them)
        d["unclassified"] = 0
        for f in layer.getFeatures():
            v = f[r.classAttribute()]
            if v is not None and v == v and not any(lo <= float(v) <= hi for lo, hi, _, _ in d["classes"]):
                d["unclassified"] += 1
    if r is not None and r.type() == "categorizedSymbol":
        d["attr"] = r.classAttribute()
        d["categories"] = [(c.value(), c.label(), c.symbol().color().name()) for c in r.categories()]
        # per feature, its value of the class attribute (QGIS draws it with the category of that value)
        d["values"] = {str(f["key"]): f[r.classAttribute()] for f in layer.getFeatures()}
    if r is not None and r.type() == "RuleRenderer":
        from qgis.core import QgsExpression, QgsExpressionContext, QgsExpressionContextUtils

        rules = r.rootRule().children()
        d["rules"] = [(ru.label(), ru.filterExpression(), ru.symbol().color().name()) for ru in rules]
        exprs = [QgsExpression(ru.filterExpression()) for ru in rules]
        ctx = QgsExpressionContext(QgsExpressionContextUtils.globalProjectLayerScopes(layer))
        # per feature, the label of every rule it meets (QGIS draws a feature once per matching rule)
        d["matches"] = {}
        for f in layer.getFeatures():
            ctx.setFeature(f)
            d["matches"][str(f["key"])] = [ru.label() for ru, e in zip(rules, exprs) if e.evaluate(ctx)]
    return d

def render(layers, png, extent=None):
    ms = QgsMapSettings()
    ms.setLayers(layers)
    ms.setBackgroundColor(QColor(255, 255, 255))
    ms.setOutputSize(QSize(900, 700))
    ms.setDestinationCrs(layers[0].crs())
    if extent is None:
        extent = QgsRectangle()
        for l in layers:
            extent.combineExtentWith(l.extent())
    ms.setExtent(extent)
    job = QgsMapRendererParallelJob(ms)
    job.start()
    job.waitForFinished()
    job.renderedImage().save(png, "png")

def styles(layer):
    # every style the GeoPackage stores for the layer, applied in turn: renderer, classes, an alias
    from qgis.PyQt.QtXml import QDomDocument

    n, ids, names, descs, err = layer.listStylesInDatabase()
    res = []
    for sid, name in zip(ids, names):
        qml, err = layer.getStyleFromDatabase(sid)
        doc = QDomDocument()
        doc.setContent(qml)
        ok, msg = layer.importNamedStyle(doc)
        r = layer.renderer()
        d = {"name": name, "ok": ok, "renderer": r.type() if r else None, "attr": r.classAttribute() if r else None,
             "n": len(r.ranges()) if r and r.type() == "graduatedSymbol" else
                  (len(r.categories()) if r and r.type() == "categorizedSymbol" else 0),
             "alias_bezirk": layer.attributeAlias(layer.fields().indexOf("bezirk")),
             "alias_budget": layer.attributeAlias(layer.fields().indexOf("budget_eur"))}
        res.append(d)
    return res

for job in jobs:
    if job["kind"] == "styles":
        layer = QgsVectorLayer(job["uri"], job["name"], "ogr")
        out.append({"job": job["name"], "valid": layer.isValid(), "styles": styles(layer)})
    elif job["kind"] == "layer":
        layer = QgsVectorLayer(job["uri"], job["name"], job["provider"])
        d = describe(layer)
        if layer.isValid():
            render([layer], job["png"])
        out.append({"job": job["name"], "layers": [d]})
    else:
        project = QgsProject.instance()
        ok = project.read(job["path"])
        layers = [tl.layer() for tl in project.layerTreeRoot().findLayers()]
        visible = [tl.layer() for tl in project.layerTreeRoot().findLayers() if tl.isVisible()]
        d = {"job": job["name"], "read": ok, "title": project.title(),
             "absolute_paths": project.readBoolEntry("Paths", "/Absolute", True)[0],
             "layers": [describe(l) for l in layers], "visible": [l.name() for l in visible]}
        if ok and visible:
            render(visible, job["png"])
        out.append(d)
print("RESULT " + json.dumps(out), flush=True)
sys.stderr.flush()
os._exit(0)  # QGIS 3.22 may crash in its exit handlers after a project was read
"""


def qgis(jobs: list[dict]) -> list[dict]:
    res = run_qgis(QGIS_SCRIPT, json.dumps(jobs))
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")]
    assert res.returncode == 0 and line, f"QGIS failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return json.loads(line[0][len("RESULT "):])


def assert_not_blank(png, min_colours: int = 5):
    img = np.asarray(Image.open(png).convert("RGB")).reshape(-1, 3)
    white = (img == 255).all(axis=1).mean()
    colours = len(np.unique(img[:: 7], axis=0))
    assert white < 0.9, f"{png}: {white:.0%} white"
    assert colours >= min_colours, f"{png}: only {colours} colours"
    return white, colours


def keep(*pngs):
    """GEOPLAN_KEEP_PNG=DIR keeps the rendered images for a look."""
    import os

    if os.environ.get("GEOPLAN_KEEP_PNG"):
        for png in pngs:
            shutil.copy(png, os.environ["GEOPLAN_KEEP_PNG"])


@pytest.fixture(scope="module")
def outputs(demo_result, demo_outputs, tmp_path_factory):
    """A copy of the demo output folder with the Bezirk layer and ergebnis.qgz."""
    from geoplan.report.gpkg import layer_aliases, styled_layer
    from geoplan.report.published import build_published
    from geoplan.report.qgis import write_bezirke_layer, write_qgis_project
    from geoplan.report.styles import layer_styles

    out = tmp_path_factory.mktemp("qgis") / "ausgabe"
    shutil.copytree(demo_outputs, out)
    pub = build_published(demo_result)
    frame, layers = styled_layer(demo_result, pub)
    assert write_bezirke_layer(out / "ergebnis.gpkg", frame)
    styles = layer_styles(frame, layers, aliases=layer_aliases(demo_result, pub, frame)[1])
    write_qgis_project(out / "ergebnis.qgz", out / "ergebnis.gpkg", frame=frame, styles=styles,
                       title="Sozialraumbudget Berlin 2027", simulated=demo_result.simulated)
    return out, frame, styles


def test_qgz_is_relative_and_deterministic(outputs, tmp_path):
    from geoplan.report.qgis import write_qgis_project

    out, frame, styles = outputs
    with zipfile.ZipFile(out / "ergebnis.qgz") as z:
        assert z.namelist() == ["ergebnis.qgs"]
        qgs = z.read("ergebnis.qgs").decode()
    assert "./ergebnis.gpkg|layername=sozialraeume" in qgs and str(out) not in qgs
    assert "(HzE simuliert)" in qgs
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = write_qgis_project(tmp_path / "a" / "ergebnis.qgz", out / "ergebnis.gpkg", frame=frame, styles=styles,
                           title="T", simulated=True)
    b = write_qgis_project(tmp_path / "b" / "ergebnis.qgz", out / "ergebnis.gpkg", frame=frame, styles=styles,
                           title="T", simulated=True)
    assert a.read_bytes() == b.read_bytes()


def test_qgis_opens_gpkg_and_project(outputs, tmp_path):
    out, frame, _styles = outputs
    moved = tmp_path / "woanders" / "ergebnis"  # relative paths: the folder can be moved
    shutil.copytree(out, moved)
    png_gpkg, png_proj = tmp_path / "gpkg.png", tmp_path / "projekt.png"
    res = qgis([
        {"kind": "layer", "name": "gpkg", "uri": f"{moved}/ergebnis.gpkg|layername=sozialraeume", "provider": "ogr",
         "png": str(png_gpkg)},
        {"kind": "project", "name": "qgz", "path": str(moved / "ergebnis.qgz"), "png": str(png_proj)},
    ])
    gp = res[0]["layers"][0]
    assert gp["valid"] and gp["features"] == 58 and gp["crs"] == "EPSG:25833"
    assert gp["renderer"] == "graduatedSymbol" and gp["attr"] == "budget_per_u21" and len(gp["classes"]) == 5
    assert gp["unclassified"] == 0
    assert_not_blank(png_gpkg)

    proj = res[1]
    assert proj["read"] and proj["absolute_paths"] is False and "simuliert" in proj["title"]
    names = [layer["name"] for layer in proj["layers"]]
    assert names == ["Bezirke", "Budget je Einwohner unter 21 (€) (HzE simuliert)",
                     "Budget je Sozialraum (€) (HzE simuliert)", "Veränderung zum Vorjahr (%) (HzE simuliert)",
                     "Bedarfsindex (HzE simuliert)", "Erwartete HzE-Fälle je 1.000 unter 21 (HzE simuliert)",
                     "HzE beobachtet/erwartet (HzE simuliert)"]
    assert proj["visible"] == names[:2]
    for layer in proj["layers"]:
        assert layer["valid"], layer
        assert str(moved) in layer["source"]  # resolved against the moved folder
    assert proj["layers"][0]["features"] == 12  # Berlin's 12 Bezirke
    # every layer has the classes, colours and legend labels of the report's maps (geoplan.report.maps.classify
    # on the layers of geoplan.report.mapping.map_layers), not classes of its own
    from geoplan.report.mapping import map_layers
    from geoplan.report.maps import MapLayer, change_layer, classify

    report = {ly.column: ly for ly in map_layers(frame, "de")}
    report["budget_eur"] = MapLayer("budget_eur", "x", scheme="quantiles", k=5, palette="viridis", fmt="euro")
    report["expected_per_1000"] = MapLayer("expected_per_1000", "x", scheme="quantiles", k=5, palette="PuBu")
    for layer, col in zip(proj["layers"][1:], ["budget_per_u21", "budget_eur", "change_pct", "need_index",
                                                "expected_per_1000", "oe_ratio"]):
        if col == "change_pct":
            continue  # the report's fixed classes, below
        assert layer["renderer"] == "graduatedSymbol" and layer["attr"] == col and layer["labels"]
        assert layer["unclassified"] == 0, layer
        want = classify(frame[col].to_numpy(float), report[col], "de")
        assert len(layer["classes"]) == len(want.bins) == 5
        assert np.allclose([c[1] for c in layer["classes"]], want.bins, atol=1e-5)
        assert [(c[2], c[3]) for c in layer["classes"]] == list(zip(want.labels, want.colors)), col
    assert "€" in proj["layers"][1]["classes"][0][2]
    # the change layer: the report's five classes (labels, colours), every area in exactly the class the
    # report's change map gives it (by category on the class column: a change on a class bound is not moved)
    change = proj["layers"][3]
    assert change["renderer"] == "categorizedSymbol" and change["attr"] == "veraenderung_klasse" and change["labels"]
    clf = classify(frame["change_pct"].to_numpy(float), change_layer("x"), "de")
    assert [(lbl, col) for _, lbl, col in change["categories"]] == list(zip(clf.labels, clf.colors))
    assert [v for v, _, _ in change["categories"]] == clf.labels
    want = {str(k): clf.labels[c] for k, c in zip(frame["key"], clf.classes)}
    assert change["values"] == want
    assert sum(1 for c in want.values() if c == clf.labels[0]) >= 1  # the corridor's lower edge is taken
    assert_not_blank(png_proj)
    keep(png_proj, png_gpkg)


def test_qgis_opens_postgis_layer_with_style(postgis_server, outputs, tmp_path, monkeypatch):
    from geoplan.report.postgis import write_postgis

    out, frame, styles = outputs
    monkeypatch.setenv("PGPASSWORD", postgis_server.password)
    write_postgis(frame, postgis_server.dsn(), "public.qgis_ergebnis", "replace", styles)
    png = tmp_path / "postgis.png"
    uri = (f"host=127.0.0.1 port={postgis_server.port} dbname=geoplan user={postgis_server.user} "
           "key='fid' srid=25833 type=MultiPolygon table=\"public\".\"qgis_ergebnis\" (geom)")
    res = qgis([{"kind": "layer", "name": "pg", "uri": uri, "provider": "postgres", "png": str(png)}])
    layer = res[0]["layers"][0]
    assert layer["valid"] and layer["features"] == 58
    assert layer["renderer"] == "graduatedSymbol" and layer["attr"] == "budget_per_u21"
    assert len(layer["classes"]) == 5 and layer["labels"] and layer["unclassified"] == 0
    assert postgis_server.password not in json.dumps(res)
    assert_not_blank(png)
    keep(png)


def test_write_outputs_with_qgis_project(demo_result, outputs, tmp_path):
    """output.qgis_project: write_outputs puts ergebnis.qgz (the same project as the writer's) and the
    Bezirk layer into the output folder and lists the project in the manifest; off by default."""
    import dataclasses

    import pyogrio

    from geoplan.report import write_outputs

    assert demo_result.config.output.qgis_project is False
    cfg = demo_result.config
    on = dataclasses.replace(demo_result, config=cfg.model_copy(
        update={"output": cfg.output.model_copy(update={"qgis_project": True})}))
    files = {p.name for p in write_outputs(on, tmp_path / "aus", pdf=False)}
    assert {"ergebnis.qgz", "ergebnis.gpkg", "manifest.json"} <= files
    assert "bezirke" in {str(r[0]) for r in pyogrio.list_layers(tmp_path / "aus" / "ergebnis.gpkg")}
    manifest = json.loads((tmp_path / "aus" / "manifest.json").read_text(encoding="utf-8"))
    assert "ergebnis.qgz" in manifest["outputs"] and "postgis_output" not in manifest
    with zipfile.ZipFile(tmp_path / "aus" / "ergebnis.qgz") as z, zipfile.ZipFile(outputs[0] / "ergebnis.qgz") as ref:
        qgs = [n for n in z.namelist() if n.endswith(".qgs")]
        assert len(qgs) == 1 and "./ergebnis.gpkg|layername=bezirke" in z.read(qgs[0]).decode()
        # the same layers and styles as the writer gives for this result (the title aside)
        import re

        def layers(b):
            return re.findall(r"<layername>(.*?)</layername>", b.decode())

        got, want = z.read(qgs[0]), ref.read([n for n in ref.namelist() if n.endswith(".qgs")][0])
        assert layers(got) == layers(want) and len(layers(got)) >= 3
        assert got.count(b"<renderer-v2") == want.count(b"<renderer-v2")


def test_qgis_reads_every_gpkg_style_with_aliases(demo_outputs, demo_outputs_en):
    """The six styles of ergebnis.gpkg (one per published measure) load in QGIS with their classes and aliases."""
    res = qgis([{"kind": "styles", "name": lang, "uri": f"{folder}/ergebnis.gpkg|layername=sozialraeume"}
                for folder, lang in ((demo_outputs, "de"), (demo_outputs_en, "en"))])
    for r, lang in zip(res, ("de", "en")):
        assert r["valid"]
        got = [(s["renderer"], s["attr"], s["n"]) for s in r["styles"]]
        assert got == [("graduatedSymbol", "budget_per_u21", 5), ("graduatedSymbol", "budget_eur", 5),
                       ("categorizedSymbol", "veraenderung_klasse", 5), ("graduatedSymbol", "need_index", 5),
                       ("graduatedSymbol", "expected_per_1000", 5), ("graduatedSymbol", "oe_ratio", 5)], r
        assert all(s["ok"] for s in r["styles"])
        assert {s["alias_bezirk"] for s in r["styles"]} == {"Bezirk" if lang == "de" else "District"}
        assert {s["alias_budget"] for s in r["styles"]} == {"Budget (€)"}
