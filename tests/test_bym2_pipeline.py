"""``model.family: bym2`` end to end: config, pipeline, report, XLSX, claims, privacy.

The Berlin example with the spatial model, few draws and one chain (a test of
the plumbing, not of the sampler: tests/test_bym2.py checks the model).
"""

from __future__ import annotations

import html as htmllib
import re

import numpy as np
import pandas as pd
import pytest
import yaml
from openpyxl import load_workbook

from geoplan.errors import GeoplanError

pytest.importorskip("numpyro")

FAST = {"chains": 1, "warmup": 100, "draws": 100, "seed": 3}


def berlin_raw(**model) -> dict:
    from geoplan.cli import EXAMPLE_CONFIG

    raw = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    raw["model"].update(model)
    return raw


def berlin_config(raw):
    from geoplan.cli import EXAMPLE_CONFIG
    from geoplan.config import config_from_dict

    return config_from_dict(raw, base_dir=EXAMPLE_CONFIG.parent, file=EXAMPLE_CONFIG)


@pytest.fixture(scope="module")
def bym2_result():
    from geoplan.pipeline import run

    raw = berlin_raw(family="bym2", bym2=dict(FAST))
    raw["sensitivity"] = {"n_draws": 0}
    raw["output"]["pdf"] = False
    return run(berlin_config(raw))


@pytest.fixture(scope="module")
def bym2_outputs(bym2_result, tmp_path_factory):
    from geoplan.report import write_outputs

    base = tmp_path_factory.mktemp("bym2")
    write_outputs(bym2_result, base / "de")
    write_outputs(bym2_result, base / "en", lang="en")
    return base


def test_config_accepts_bym2_and_names_bad_fields():
    cfg = berlin_config(berlin_raw(family="bym2"))
    b = cfg.model.bym2
    assert cfg.model.family == "bym2" and (b.chains, b.warmup, b.draws, b.interval) == (2, 500, 1000, 0.9)
    assert berlin_config(berlin_raw()).model.family == "auto"  # the default stays
    raw = berlin_raw(family="bym2", bym2={"chains": 0, "draws": 5, "target_accept": 1.2, "warmup": 20,
                                          "rho_prior": ["beta", 1], "drawz": 3})
    with pytest.raises(GeoplanError) as err:
        berlin_config(raw)
    msg = str(err.value)
    for field in ("model.bym2.chains", "model.bym2.draws", "model.bym2.target_accept", "model.bym2.rho_prior",
                  "model.bym2.drawz"):
        assert field in msg, field
    assert "model.bym2.warmup" not in msg  # 20 is fine
    assert "beta" in msg and "uniform" in msg  # the prior error lists what is allowed
    with pytest.raises(GeoplanError) as err:
        berlin_config(berlin_raw(family="bayes"))
    assert "model.family" in str(err.value) and "bym2" in str(err.value)
    with pytest.raises(GeoplanError) as err:
        berlin_config(berlin_raw(family="bym2", bym2={"sigma_prior": ["pc", 1, 2]}))
    assert "model.bym2.sigma_prior" in str(err.value)


def test_pipeline_adds_posterior_and_euro_intervals(bym2_result):
    r = bym2_result
    f = r.frame.set_index("key")
    u = r.uncertainty
    assert u is not None and len(u.areas) == len(f) == 58
    a = u.areas.set_index("key").loc[f.index]
    # the budget follows the posterior mean
    assert np.allclose(f["expected_cases"], a["expected_cases"])
    assert np.allclose(f["expected_cases"], u.expected_draws.mean(axis=0)[[list(u.areas["key"]).index(k) for k in f.index]])
    assert (f["expected_q05"] <= f["expected_cases"]).all() and (f["expected_cases"] <= f["expected_q95"]).all()
    assert (f["pi_low"] <= f["expected_q05"] + 1).all() and (f["pi_high"] >= f["expected_q95"] - 1).all()
    assert (f["target_q05_eur"] < f["target_q95_eur"]).all()
    assert ((f["target_q05_eur"] <= f["target_eur"] + 1) & (f["target_eur"] <= f["target_q95_eur"] + 1)).all()
    assert f["p_budget_below_need"].between(0, 1).all()
    # P(budget < target) is the share of draws: the corridor holds areas below their target
    held_down = f["budget_eur"] < f["target_eur"] * 0.97
    assert (f.loc[held_down, "p_budget_below_need"] > 0.5).all()
    # the posterior summary and its diagnostics
    assert {"beta0", "kinderarmut", "sigma", "rho"} <= set(u.summary.index)
    assert 0 < u.rho["q2.5"] < u.rho["mean"] < u.rho["q97.5"] < 1
    d = u.diagnostics
    assert d["n_draws"] == FAST["chains"] * FAST["draws"] and d["n_components"] == 1 and d["n_islands"] == 0
    bym_notes = [n for n in r.notes if n.stage == "bedarfsmodell" and "BYM2" in n.message]
    assert any("R̂" in n.message and "divergente" in n.message for n in bym_notes)
    warned = any(n.level == "warnung" and "R̂" in n.message for n in bym_notes)
    assert warned == (d["max_r_hat"] > 1.01)
    # the GLM stays as the reference model
    assert r.model.fit["family"] in ("poisson", "negbin") and u.reference_family == r.model.fit["family"]


def test_report_xlsx_and_claims(bym2_result, bym2_outputs):
    from test_claims import check_reconciliation, check_report_claims

    out = bym2_outputs / "de"
    html = (out / "bericht.html").read_text(encoding="utf-8")
    assert 'id="bym2"' in html and "Räumliches Modell (BYM2)" in html
    assert "Der räumlich strukturierte Anteil an der Varianz des Gebietseffekts (ρ)" in html
    part = html[html.index('<table id="bym2-intervalle"'):]
    part = part[:part.index("</table>")]
    assert part.count("<tr>") == 58 + 1
    assert "Wahrscheinlichkeit, dass das Budget unter dem Bedarf liegt" in part
    # XLSX: interval columns in the allocation sheet, the posterior summary in its own sheet
    wb = load_workbook(out / "verteilung.xlsx")
    head = [c.value for c in wb["Verteilung"][1]]
    for h in ("Erwartete Fälle 5 %-Quantil", "Erwartete Fälle 95 %-Quantil", "Bedarfsgerechter Zielwert 5 %-Quantil",
              "Bedarfsgerechter Zielwert 95 %-Quantil", "Wahrscheinlichkeit Budget unter Bedarf"):
        assert h in head, h
    rho = next(r for r in wb["BYM2"].iter_rows(values_only=True) if r[0] == "rho")
    assert rho[2] == pytest.approx(bym2_result.uncertainty.rho["mean"])
    # every number-bearing sentence, the BYM2 ones included, equals the tables
    n = check_report_claims(out)
    assert n >= 20
    check_reconciliation(out, bym2_result)
    # the sentences are really checked: a wrong number fails
    bad = out.parent / "bad"
    import shutil

    shutil.copytree(out, bad)
    sig = f"{bym2_result.uncertainty.sigma['mean']:.3f}".replace(".", ",")
    text = html.replace(f"beträgt {sig} (95", "beträgt 9,999 (95", 1)
    assert text != html
    (bad / "bericht.html").write_text(text, encoding="utf-8")
    with pytest.raises(AssertionError):
        check_report_claims(bad)


def test_english_report(bym2_outputs):
    html = (bym2_outputs / "en" / "bericht.html").read_text(encoding="utf-8")
    a = html.index('<div id="bym2-text">')
    part = htmllib.unescape(html[a:html.index("<!-- /bym2-text -->", a)])
    assert "Spatial model (BYM2) and uncertainty in euros" in html
    assert "The spatially structured share of the area effect's variance (ρ)" in part
    assert "Probability that the budget lies below need" in part
    for german in ("Der räumlich", "Geschätzt mit", "Wahrscheinlichkeit", "Bedarfsgerechter", "Kette", "Zielwert"):
        assert german not in part, german


def test_no_observed_count_can_be_recovered(bym2_result, bym2_outputs):
    from geoplan.privacy import scan_output_proportional

    counts = bym2_result.frame.set_index("key")["hze_cases"].astype(float)
    # pretend every area's count were small: no published column (intervals included) may follow the counts
    for lang in ("de", "en"):
        assert scan_output_proportional(bym2_outputs / lang, counts, k=int(counts.max()) + 1) == {}
    # the posterior draws and the area effects are not written anywhere
    wb = load_workbook(bym2_outputs / "de" / "verteilung.xlsx")
    heads = {str(c.value) for ws in wb.worksheets for c in ws[1]}
    assert not any(re.search(r"theta|phi|relative_risk|Gebietseffekt je", h) for h in heads)
    published = pd.read_excel(bym2_outputs / "de" / "verteilung.xlsx", sheet_name="Verteilung")
    assert not any(c.startswith("hze_cases_") for c in published.columns)


def test_validate_names_the_missing_extra(monkeypatch):
    """``geoplan validate`` with model.family: bym2 and no NumPyro: one problem with the install command."""
    import sys

    from geoplan.dryrun import dry_run

    raw = berlin_raw(family="bym2")
    assert not dry_run(berlin_config(raw)).problems  # installed: nothing to say
    monkeypatch.setitem(sys.modules, "numpyro", None)
    problems = dry_run(berlin_config(raw)).problems
    assert len(problems) == 1 and "geoplan[bayes]" in problems[0].hint
    assert problems[0].location == "model.family: bym2"


P_LABEL = {"de": "Wahrscheinlichkeit, dass das Budget unter dem Bedarf liegt",
           "en": "Probability that the budget lies below need"}
P_CLASSES = {"de": ("unter 20 %", "20 % bis unter 40 %", "40 % bis unter 60 %", "60 % bis unter 80 %", "80 % und mehr"),
             "en": ("under 20%", "20% to under 40%", "40% to under 60%", "60% to under 80%", "80% or more")}


def _plain(text: str) -> str:
    return htmllib.unescape(text).replace("\u00a0", " ")


def _legends(karte: str) -> str:
    """The legends of karte.html (a JSON string in its script), as plain text."""
    import json

    return _plain("".join(json.loads(m) for m in re.findall(r'd\.innerHTML = ("(?:[^"\\]|\\.)*");', karte)))


def test_probability_map_in_report_and_karte(bym2_result, bym2_outputs):
    """The map of P(budget below need): a figure in section 4 and a layer of karte.html, in both languages."""
    p = bym2_result.uncertainty.areas.set_index("key")["p_budget_below_need"]
    for lang in ("de", "en"):
        html = _plain((bym2_outputs / lang / "bericht.html").read_text(encoding="utf-8"))
        a = html.index('<figure id="bym2-karte">')
        fig = html[a:html.index("</figure>", a)]
        assert 'src="data:image/png;base64,' in fig and P_LABEL[lang] in fig
        assert html.index('<h2 id="bedarfsmodell">') < a < html.index("<!-- /bym2-text -->")
        karte = _legends((bym2_outputs / lang / "karte.html").read_text(encoding="utf-8"))
        assert 'data-column="p_budget_below_need_pct"' in karte and P_LABEL[lang] in karte
        legend = karte[karte.index('data-column="p_budget_below_need_pct"'):]
        legend = legend[:legend.index("</div></div>")]
        for label in P_CLASSES[lang]:
            assert label in legend, label
        # the legend counts are the Result's probabilities in the fixed classes
        counts = [int(c) for c in re.findall(r'class="n">\((\d+)\)', legend)]
        expected = np.bincount(np.searchsorted([20, 40, 60, 80], 100 * p.to_numpy(float), side="right"), minlength=5)
        assert counts == expected.tolist()


def test_probability_map_absent_without_bym2(demo_outputs):
    html = (demo_outputs / "bericht.html").read_text(encoding="utf-8")
    assert 'id="bym2-karte"' not in html
    karte = (demo_outputs / "karte.html").read_text(encoding="utf-8")
    assert 'data-column="budget_per_u21"' in _legends(karte) and "p_budget_below_need" not in karte


def test_probability_classes_are_fixed():
    from geoplan.report.maps import classify, probability_layer

    layer = probability_layer("p", "P")
    c = classify([0.0, 19.9, 20.0, 50.0, 79.9, 80.0, 100.0, np.nan], layer)
    assert c.classes.tolist() == [0, 0, 1, 2, 3, 4, 4, -1]
    assert c.counts == [2, 1, 1, 1, 2]
    assert [_plain(x) for x in c.labels] == list(P_CLASSES["de"])
    # all five classes, also when the data fill only one: the same colour means the same probability in every run
    one = classify([55.0, 45.0], layer, lang="en")
    assert one.counts == [0, 0, 2, 0, 0] and one.colors == c.colors
    assert [_plain(x) for x in one.labels] == list(P_CLASSES["en"])
    # diverging and symmetric around the middle class: purple below, orange above
    assert c.colors[0] != c.colors[4] and len(set(c.colors)) == 5


def test_probability_style_in_the_geopackage(bym2_result, bym2_outputs):
    """ergebnis.gpkg styles P(budget below need) like the report's map: the fixed classes by category on the
    class column, each area in the class of its probability (a value on a bound, e.g. exactly 20 %, included)."""
    import sqlite3

    p = bym2_result.uncertainty.areas.set_index("key")["p_budget_below_need"]
    for lang in ("de", "en"):
        con = sqlite3.connect(bym2_outputs / lang / "ergebnis.gpkg")
        try:
            styles = con.execute("SELECT styleName, styleQML, styleSLD FROM layer_styles ORDER BY id").fetchall()
            rows = con.execute("SELECT key, p_budget_below_need, unter_bedarf_klasse FROM sozialraeume").fetchall()
        finally:
            con.close()
        (name, qml, sld), = [s for s in styles if 'attr="unter_bedarf_klasse"' in s[1]]
        assert name == P_LABEL[lang] and 'type="categorizedSymbol"' in qml
        cats = [_plain(c) for c in re.findall(r'<category [^>]*value="([^"]*)"', qml)]
        assert cats == list(P_CLASSES[lang]) and all(c in _plain(sld) for c in cats)
        for key, share, klass in rows:
            assert share == pytest.approx(p[key])
            assert _plain(klass) == cats[int(np.searchsorted([20, 40, 60, 80], 100 * p[key], side="right"))], (key, share)
