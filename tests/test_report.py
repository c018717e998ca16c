"""Report content: English with --lang en, German unchanged, Bedarfsmodell/Verteilung/Gerechtigkeit sections."""

from __future__ import annotations

import re
from html import unescape

import pandas as pd
import pytest

from geoplan import fmt
from geoplan.report.i18n import EN, gettext, missing
from geoplan.report.published import build_published

GERMAN_HEADINGS = ["Zusammenfassung", "Datengrundlage", "Indikatoren", "Bedarfsmodell", "Verteilung",
                   "Verteilungsgerechtigkeit", "Methodik", "Anhang: Qualitätssicherung"]


@pytest.fixture(scope="module")
def reports(demo_outputs, demo_outputs_en):
    """bericht.html of the session's demo run in German and English (tests/conftest.py): the text
    ``render_report(demo_result, build_published(demo_result, lang=lang), lang)`` gives, as written by
    ``write_outputs`` (the demo's report is rendered once per session and language, not again here)."""
    return {"de": (demo_outputs / "bericht.html").read_text(encoding="utf-8"),
            "en": (demo_outputs_en / "bericht.html").read_text(encoding="utf-8")}


def _headings(html: str, level: str = "h2") -> list[str]:
    return [unescape(re.sub(r"<[^>]+>", "", h)).strip() for h in re.findall(rf"<{level}[^>]*>(.*?)</{level}>", html, flags=re.S)]


def test_english_report_has_english_headings_only(reports, demo_result):
    h2 = _headings(reports["en"])
    assert any(h.endswith("Summary") for h in h2)
    assert any(h.endswith("Distribution") for h in h2)
    assert any(h.endswith("Distributive fairness") for h in h2)
    for german in GERMAN_HEADINGS:
        assert not any(h.split(" ", 1)[1] == german for h in h2), german
    assert '<html lang="en">' in reports["en"]
    # English number format in the totals
    total = int(demo_result.config.allocation.total_eur)
    assert fmt.euro(total, lang="en") in reports["en"] and fmt.euro(total) not in reports["en"]
    assert fmt.euro(total, lang="en") == "€" + f"{total:,}"  # €200,000,000
    assert "Page" in reports["en"] and "Seite" not in _headings(reports["en"], "h3")


def test_german_report_unchanged(reports, demo_result):
    h2 = [h.split(" ", 1)[1] for h in _headings(reports["de"])]
    for german in GERMAN_HEADINGS:
        assert german in h2
    total = int(demo_result.config.allocation.total_eur)
    assert fmt.euro(total) in reports["de"] and fmt.euro(total) == f"{total:,} €".replace(",", ".")
    assert "Summary" not in reports["de"]


def test_translation_table_covers_headings():
    assert missing(GERMAN_HEADINGS) == []
    _ = gettext("en")
    assert _("Zusammenfassung") == "Summary"
    assert gettext("de")("Zusammenfassung") == "Zusammenfassung"
    # an HTML-bearing string is markup; inserted values are escaped
    s = _("Das Budget von <b>{total}</b> wird auf {n} Sozialräume nach einer Formel verteilt, deren Bestandteile und "
          "Gewichte in Abschnitt 5 stehen. Grundlage sind Indikatoren, die von den Leistungserbringern nicht unmittelbar "
          "beeinflusst werden können (Sozialstruktur, Bevölkerung), und der von einem Regressionsmodell erwartete Bedarf "
          "an Hilfen zur Erziehung.").format(total="<x>", n=3)
    assert "&lt;x&gt;" in s and "<b>" in s
    assert all(v.strip() for v in EN.values())


def test_bedarfsmodell_section(reports, demo_result):
    html = reports["de"]
    sec = unescape(html.split('id="bedarfsmodell"', 1)[1].split('id="verteilung"', 1)[0])
    assert "log E[Y_i]" in sec  # formula in symbols
    assert "Inanspruchnahmequote" in sec  # formula in words (describe_de)
    # one SD in the indicator's unit (Kinderarmut is in %)
    sd = demo_result.model.coefficients.set_index("term").loc["kinderarmut", "predictor_sd"]
    assert f"{sd:.1f}".replace(".", ",") + " Prozentpunkte" in sec
    assert "Vorjahresfälle" in sec and "beeinflussen die Leistungserbringer" in sec
    assert "Moran's I" in sec
    assert sec.count("data:image/png;base64,") >= 5  # coefficients, CV, calibration, funnel, residual map
    assert "Grenzen des Modells" in sec


def test_verteilung_and_gerechtigkeit_sections(reports, demo_result):
    html = reports["de"]
    sec = html.split('id="verteilung"', 1)[1].split('id="gerechtigkeit"', 1)[0]
    binding = demo_result.allocation.binding
    assert f"Der Korridor greift bei {len(binding)} von 58" in sec
    assert "Zusammensetzung einzelner Budgets" in sec
    largest = demo_result.frame.sort_values("budget_eur").iloc[-1]
    assert f"{largest['key']} {largest['name']}" in sec
    fair = html.split('id="gerechtigkeit"', 1)[1].split('id="methodik"', 1)[0]
    s = demo_result.equity.summary
    assert "Abstand zum Zielwert" in fair
    # the winner/loser counts stand in this section, as the KPI next to its label
    assert re.search(rf"Gewinner\s*(</[^>]+>\s*)?<b>{s['n_winners']}</b>", fair), fair[:2000]
    assert re.search(rf"Verlierer\s*(</[^>]+>\s*)?<b>{s['n_losers']}</b>", fair)
    from geoplan import fmt
    assert fmt.euro(s["sum_abs_distance_to_target_eur"], sep=fmt.NBSP) in fair  # a sentence: number and € kept together
    assert "Beobachteter und erwarteter Bedarf" in fair


def test_english_model_text_and_no_german_section_text(reports):
    html = reports["en"]
    sec = unescape(html.split('id="bedarfsmodell"', 1)[1].split('id="verteilung"', 1)[0])
    assert "take-up rate" in sec and "Inanspruchnahmequote" not in sec
    assert "Prior-year cases predict even better" in sec or "Prior-year cases explain" in sec


def test_observed_expected_thresholds_come_from_the_config(demo_result):
    import dataclasses

    from geoplan.report.html import report_context

    def counts(result):
        pub = build_published(result)
        ctx = report_context(result, pub)
        oe = pd.to_numeric(pub.areas["oe_ratio"], errors="coerce")
        return ctx["oe_stats"], oe

    stats, oe = counts(demo_result)
    assert (stats["n_above"], stats["n_below"]) == (int((oe > 1.1).sum()), int((oe < 0.9).sum()))
    cfg = demo_result.config.model_copy(update={"model": demo_result.config.model.model_copy(
        update={"oe_high": 1.3, "oe_low": 0.6})})
    wide, _ = counts(dataclasses.replace(demo_result, config=cfg, sensitivity=None))
    assert (wide["n_above"], wide["n_below"]) == (int((oe > 1.3).sum()), int((oe < 0.6).sum()))
    assert (wide["n_above"], wide["n_below"]) != (stats["n_above"], stats["n_below"])


def _explanation(components: dict[str, int], corridor: int) -> pd.DataFrame:
    rows = [(name, label, amount) for name, (label, amount) in components.items()]
    if corridor:
        rows.append(("korridor", "Korridor (Begrenzung der Veränderung)", corridor))
    rows.append(("budget", "Budget", sum(a for _l, a in components.values()) + corridor))
    return pd.DataFrame(rows, columns=["position", "label", "amount_eur"])


def test_explain_table_headings_and_alignment():
    """The table beside the waterfalls: components headed by their configured label in both languages
    (not the internal names 'grundanteil', 'korridor', 'budget'), and a budget the corridor does not
    move keeps its budget in the budget column (0 € as its corridor adjustment)."""
    from geoplan.report.html import explain_table

    comps = {"grundanteil": ("Grundanteil nach Einwohnern unter 21", 600), "bedarf": ("Bedarfsanteil", 400)}
    explanations = [("0110 Zentrum", _explanation(comps, 0)), ("0120 Moabit", _explanation(comps, -50))]
    header, rows = explain_table(explanations, "en")
    assert header == ["Sozialraum", "Grundanteil nach Einwohnern unter 21", "Bedarfsanteil",
                      "Corridor (limit on the change)", "Budget"]
    assert rows == [["0110 Zentrum", "€600", "€400", "€0", "€1,000"],
                    ["0120 Moabit", "€600", "€400", "−€50", "€950"]]
    header, rows = explain_table(explanations, "de")
    assert header[1:] == ["Grundanteil nach Einwohnern unter 21", "Bedarfsanteil",
                          "Korridor (Begrenzung der Veränderung)", "Budget"]
    assert rows[0] == ["0110 Zentrum", "600 €", "400 €", "0 €", "1.000 €"]
    assert explain_table([], "en") == ([], [])


def test_english_report_explain_table_has_no_internal_names(reports):
    sec = reports["en"].split('id="verteilung"', 1)[1].split('id="gerechtigkeit"', 1)[0]
    heads = _headings(sec, "th")
    assert "Corridor (limit on the change)" in heads and "Budget" in heads
    for internal in ("grundanteil", "bedarf", "sozialindikatoren", "korridor", "budget"):
        assert internal not in heads, internal


def test_winner_loser_kpi_labels_are_capitalised(reports, demo_result):
    """The three count tiles under 'Gewinner und Verlierer' read alike: Gewinner, Verlierer, Unverändert."""
    s = demo_result.equity.summary
    for lang, labels in (("de", ("Gewinner", "Verlierer", "Unverändert")), ("en", ("Winners", "Losers", "Unchanged"))):
        fair = reports[lang].split('id="gerechtigkeit"', 1)[1].split('id="methodik"', 1)[0]
        for label, n in zip(labels, (s["n_winners"], s["n_losers"], s["n_unchanged"])):
            assert re.search(rf'<div class="kpi">{label}<b>{n}</b></div>', fair), (lang, label)


def test_percent_in_running_text(reports):
    """Running text writes percentages as the tables beside it: English 94.9% (it had '94.9 %' under a
    table with 94.9%), German 94,9 % with a no-break space, so the unit never starts a line."""
    from geoplan.report.html import cv_reading

    cv = pd.DataFrame({"deviance_explained": [0.949, 0.945, 0.987, -0.043]},
                      index=["model_kfold", "model_blocked", "baseline_prev", "baseline_rate"])
    en, de = cv_reading(cv, "en"), cv_reading(cv, "de")
    assert "explains 94.9% of the deviance" in en and "explains −4.3%," in en and "(98.7%)" in en
    assert "Stichprobe 94,9\u00a0% der Devianz" in de and "(98,7\u00a0%)" in de
    paragraphs = [unescape(re.sub(r"<[^>]+>", "", p)) for p in re.findall(r"<p[^>]*>(.*?)</p>", reports["en"], re.S)]
    bad = [m for p in paragraphs for m in re.findall(r".{0,30}\d %.{0,10}", p)]
    assert bad == [], bad


def test_teilbudget_rule_and_default_label_in_english(reports, demo_outputs_en, demo_result):
    """The Teilbudgets table (report and workbook) in English: the rule of a configured Teilbudget in English,
    and the single Teilbudget made when none is configured is 'Total budget', '100% of the total budget'
    (it showed 'Gesamtbudget', '100 % des Gesamtbudgets')."""
    from openpyxl import load_workbook

    from geoplan.report.claims import teilbudget_texts
    from geoplan.stages.allocate import AllocationSpec

    spec = demo_result.allocation_spec
    assert not spec.teilbudgets
    row = demo_result.allocation.teilbudgets.iloc[0]
    assert teilbudget_texts(row, spec, "de") == ("Gesamtbudget", "100 % des Gesamtbudgets")
    assert teilbudget_texts(row, spec, "en") == ("Total budget", "100% of the total budget")
    sec = unescape(reports["en"].split('id="verteilung"', 1)[1].split('id="gerechtigkeit"', 1)[0])
    assert "100% of the total budget" in sec and "des Gesamtbudgets" not in sec and "Gesamtbudget" not in sec
    ws = load_workbook(demo_outputs_en / "verteilung.xlsx")["Partial budgets"]
    assert [c.value for c in ws[2]][:3] == ["gesamt", "Total budget", "100% of the total budget"]

    configured = spec.model_copy(update={"teilbudgets": AllocationSpec.model_validate({
        "total_eur": 100, "components": [c.model_dump() for c in spec.components],
        "teilbudgets": [{"id": "A", "label": "Fallspezifische Leistungen", "remainder": True},
                        {"id": "B", "label": "Ressourcenpool", "percent_of": "A", "percent": 25},
                        {"id": "C", "label": "Stationär", "amount_eur": 1000000, "distributed": False}]}).teilbudgets})
    rows = [{"id": "A", "label": "Fallspezifische Leistungen", "rule": "Rest"},
            {"id": "B", "label": "Ressourcenpool", "rule": "25 % von Teilbudget A"},
            {"id": "C", "label": "Stationär", "rule": "fester Betrag 1.000.000 EUR"}]
    assert [teilbudget_texts(r, configured, "en") for r in rows] == [
        ("Fallspezifische Leistungen", "remainder"), ("Ressourcenpool", "25% of Teilbudget A"),
        ("Stationär", "fixed amount €1,000,000")]
    assert [teilbudget_texts(r, configured, "de")[1] for r in rows] == [r["rule"] for r in rows]


def test_sensitivity_draw_count_is_grouped(reports, demo_result):
    """The number of Monte Carlo draws in the sensitivity text is grouped like every count (1,000 / 1.000)."""
    n = demo_result.config.sensitivity.n_draws
    assert n >= 1000
    assert f"In {fmt.number(n, lang='en')} Monte Carlo draws" in reports["en"]
    assert f"In {fmt.number(n)} Monte-Carlo-Ziehungen" in reports["de"]
