"""End-to-end checks on the Berlin example: real content, not just files."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm


def test_58_sozialraeume_every_key_matched(demo_result):
    f = demo_result.frame
    assert len(f) == 58
    assert f["key"].is_unique
    assert f["key"].str.fullmatch(r"\d{4}").all()
    for col in ["pop_u21", "kinderarmut", "alleinerziehende", "arbeitslosigkeit", "need_index", "hze_cases",
                "expected_cases", "budget_eur"]:
        assert f[col].notna().all(), col
    assert f.crs.to_epsg() == 25833
    assert f["bezirk"].nunique() == 12


def test_population_aggregated_from_planungsraeume(demo_result):
    """Counts are summed over the Planungsräume of each Prognoseraum (suppressed cells missing, not zero)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    ew = pd.read_csv(root / "indicators/berlin/einwohner_plr_2022-06.csv", sep=";", dtype=str, encoding="utf-8-sig")
    ew["prr"] = ew["PLR-ID"].str[:4]
    ew["Gesamt"] = pd.to_numeric(ew["Gesamt"].replace("–", np.nan))
    expected = ew.groupby("prr")["Gesamt"].sum()
    got = demo_result.frame.set_index("key")["pop_total"]
    pd.testing.assert_series_equal(got.sort_index().astype(float), expected.sort_index().astype(float),
                                   check_names=False, check_index_type=False)


def test_allocation_sums_to_total_to_the_euro(demo_result):
    f = demo_result.frame
    total = demo_result.config.allocation.total_eur
    assert f["budget_eur"].dtype.kind == "i"
    assert int(f["budget_eur"].sum()) == total
    assert (f["budget_eur"] >= 0).all()
    comp = [c for c in f.columns if c.startswith("eur_")]
    assert comp, "component amounts missing"
    assert (f[comp].sum(axis=1) == f["budget_eur"]).all()


def test_model_equals_statsmodels_glm(demo_result):
    f = demo_result.frame
    preds = demo_result.config.model.predictors
    X = f[preds].astype(float)
    Xs = (X - X.mean()) / X.std(ddof=0)
    fam = demo_result.model.fit["family"]
    if fam == "poisson":
        family = sm.families.Poisson()
    else:
        family = sm.families.NegativeBinomial(alpha=demo_result.model.fit["alpha"])
    glm = sm.GLM(f["hze_cases"].astype(float), sm.add_constant(Xs), family=family,
                 offset=np.log(f["pop_u21"].astype(float))).fit()
    coefs = demo_result.model.coefficients.set_index("term")
    for p in preds:
        assert coefs.loc[p, "coef"] == pytest.approx(glm.params[p], rel=1e-5, abs=1e-7)
        assert coefs.loc[p, "ci_low"] == pytest.approx(glm.conf_int().loc[p, 0], rel=1e-4, abs=1e-6)
    np.testing.assert_allclose(f["expected_cases"], glm.predict(sm.add_constant(Xs), offset=np.log(f["pop_u21"].astype(float))),
                               rtol=1e-6)


def test_concentration_index_by_hand(demo_result):
    f = demo_result.frame.sort_values("need_index", kind="mergesort")
    w = f["pop_u21"].to_numpy(float)
    y = f["budget_eur"].to_numpy(float) / w
    # weighted fractional rank: midpoint of each area's population share
    cum = np.cumsum(w) / w.sum()
    r = cum - w / w.sum() / 2
    mu = np.average(y, weights=w)
    ci = 2 * np.average((y - mu) * (r - np.average(r, weights=w)), weights=w) / mu
    assert demo_result.equity.summary["concentration_index"] == pytest.approx(ci, abs=1e-9)
    assert ci > 0  # money follows need


def test_all_outputs_written(demo_outputs):
    names = {p.name for p in demo_outputs.iterdir()}
    assert {"bericht.html", "karte.html", "verteilung.xlsx", "ergebnis.gpkg", "manifest.json", "bericht.pdf"} <= names
    assert not [p for p in demo_outputs.parent.iterdir() if ".tmp-" in p.name]


def test_manifest_hashes_inputs(demo_outputs, demo_result):
    m = json.loads((demo_outputs / "manifest.json").read_text(encoding="utf-8"))
    assert m["totals"]["budget_eur"] == 120_000_000
    assert m["simulated_hze"] is True
    assert len(m["inputs"]) >= 6
    for i in m["inputs"]:
        assert hashlib.sha256(open(i["path"], "rb").read()).hexdigest() == i["sha256"]
    assert "pandas" in m["versions"] and m["config"]["region"] == "Berlin"


def test_report_shows_tables_and_labels_simulation(demo_outputs):
    html = (demo_outputs / "bericht.html").read_text(encoding="utf-8")
    for heading in ["Zusammenfassung", "Datengrundlage", "Bedarfsmodell", "Verteilung", "Verteilungsgerechtigkeit",
                    "Methodik"]:
        assert heading in html
    assert "simuliert" in html
    assert "120.000.000 €" in html
    assert "Konzentrationsindex" in html
    assert html.count("data:image/png;base64,") >= 4
    assert not re.search(r"""(src|href)=["']https?://""", html)


def test_map_carries_58_features(demo_outputs):
    html = (demo_outputs / "karte.html").read_text(encoding="utf-8")
    assert len(re.findall(r'"type":\s*"Feature"', html)) >= 58
    assert "Budget je Einwohner unter 21" in html


def test_gpkg_and_xlsx_readable(demo_outputs, demo_result):
    import geopandas as gpd
    from openpyxl import load_workbook

    g = gpd.read_file(demo_outputs / "ergebnis.gpkg", layer="sozialraeume")
    assert len(g) == 58 and int(g["budget_eur"].sum()) == 120_000_000
    assert g.crs.to_epsg() == 25833
    wb = load_workbook(demo_outputs / "verteilung.xlsx")
    ws = wb["Verteilung"]
    header = [c.value for c in ws[1]]
    j = header.index("Budget") + 1
    values = [ws.cell(row=r, column=j).value for r in range(2, 60)]
    assert all(isinstance(v, int) for v in values)
    assert sum(values) == 120_000_000
    assert ws.freeze_panes == "C2"  # header row and the key and name columns
