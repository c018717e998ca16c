"""Report language: German source strings with their English translation.

The report template, the figures and the map layer labels are written in
German; :func:`gettext` returns a ``_()`` function for a language that looks a
German string up in :data:`EN` (``lang="en"``) or returns it unchanged
(``lang="de"``, the default). Strings that contain HTML are template literals
(trusted), so ``_()`` returns them as :class:`markupsafe.Markup`; values put
into them with ``.format()`` are escaped.

A German string without an English entry is shown in German rather than
failing: :func:`missing` lists such strings for the tests.
"""

from __future__ import annotations

from html import escape as html_escape
from typing import Callable

from markupsafe import Markup

LANGS = ("de", "en")

EN: dict[str, str] = {
    # header, table of contents, section headings
    "Haushaltsjahr": "Budget year",
    "Sozialräume": "Sozialräume (social areas)",
    "Bericht zur Verteilungsgerechtigkeit nach § 80 SGB VIII":
        "Report on distributive fairness (§ 80 SGB VIII youth welfare planning)",
    "Hinweis:": "Note:",
    "Die HzE-Fallzahlen und -Kosten in diesem Beispiel sind <b>simuliert</b> (es gibt sie nicht als offene Daten). "
    "Alle Werte, die auf ihnen beruhen, sind als „simuliert“ gekennzeichnet.":
        "The HzE case counts and costs in this example are <b>simulated</b> (they are not available as open data). "
        "Every value based on them is marked “simulated”.",
    "Inhalt": "Contents",
    "Zusammenfassung": "Summary",
    "Datengrundlage": "Data sources",
    "Indikatoren": "Indicators",
    "Bedarfsmodell": "Demand model",
    "Verteilung": "Distribution",
    "Verteilungsgerechtigkeit": "Distributive fairness",
    "Sensitivität": "Sensitivity",
    "Methodik": "Methods",
    "Anhang: Qualitätssicherung": "Appendix: quality assurance",
    "Seite": "Page",
    "von": "of",
    # summary
    "Gesamtbudget": "Total budget",
    "Einwohner unter 21": "Residents under 21",
    "Budget je Einwohner unter 21": "Budget per resident under 21",
    "Konzentrationsindex (Bedarf)": "Concentration index (need)",
    "Das Budget von <b>{total}</b> wird auf {n} Sozialräume nach einer Formel verteilt, deren Bestandteile und Gewichte "
    "in Abschnitt 5 stehen. Grundlage sind Indikatoren, die von den Leistungserbringern nicht unmittelbar beeinflusst "
    "werden können (Sozialstruktur, Bevölkerung), und der von einem Regressionsmodell erwartete Bedarf an Hilfen zur "
    "Erziehung.":
        "The budget of <b>{total}</b> is distributed over {n} Sozialräume by a formula whose components and weights are "
        "given in section 5. It rests on indicators that providers cannot directly influence (social structure, "
        "population) and on the demand for Hilfen zur Erziehung (HzE, educational support for families) expected by a "
        "regression model.",
    " (auf simulierten Fallzahlen geschätzt)": " (estimated on simulated case counts)",
    "Der <b>Konzentrationsindex von {ci}</b> misst, wie stark das Budget je Einwohner unter 21 auf Sozialräume mit "
    "hohem Bedarf konzentriert ist: 0 hieße gleiches Geld je Kopf unabhängig vom Bedarf, positive Werte bedeuten mehr "
    "Geld, wo der Bedarf höher ist. Der Gini-Koeffizient des Budgets je Einwohner unter 21 beträgt {gini}.":
        "The <b>concentration index of {ci}</b> measures how strongly the budget per resident under 21 is concentrated "
        "in Sozialräume with high need: 0 would mean the same money per head regardless of need, positive values mean "
        "more money where need is higher. The Gini coefficient of the budget per resident under 21 is {gini}.",
    "Budget je Einwohner unter 21 nach Sozialraum": "Budget per resident under 21 by Sozialraum",
    " (auf Basis simulierter HzE-Daten)": " (based on simulated HzE data)",
    " (simuliert)": " (simulated)",
    "Größte Zuwächse gegenüber dem Vorjahr": "Largest increases against the prior year",
    "Größte Rückgänge gegenüber dem Vorjahr": "Largest decreases against the prior year",
    "Sozialraum": "Sozialraum",
    "Veränderung": "Change",
    "in %": "in %",
    # data sources
    "Rolle": "Role",
    "Datei": "File",
    "Quelle / Lizenz": "Source / licence",
    "Stand": "Date",
    "Zeilen": "Rows",
    "Prüfung": "Check",
    "Quellen und Lizenzen": "Sources and licences",
    "Lizenz": "Licence",
    "Indikatorenkatalog": "Indicator catalogue",
    "Indikator": "Indicator",
    "Einheit": "Unit",
    "Richtung": "Direction",
    "Gewicht im Index": "Weight in the index",
    "Quelle": "Source",
    "Stichtag": "Reference date",
    "Bezugsgröße": "Base",
    # indicators
    "Die Indikatoren wurden von der Quellgeografie auf die Sozialräume übertragen (Zählgrößen summiert, Anteile mit "
    "ihrer Bezugsbevölkerung gewichtet) und zu einem Bedarfsindex zusammengefasst (Methode: {method}; Mittelwert 0, "
    "Standardabweichung 1, höher = mehr Bedarf).":
        "The indicators were transferred from the source geography to the Sozialräume (counts summed, shares weighted "
        "by their base population) and combined into a need index (method: {method}; mean 0, standard deviation 1, "
        "higher = more need).",
    "Bedarfsindex nach Sozialraum": "Need index by Sozialraum",
    # demand model
    "Modell in Worten": "The model in words",
    "Modell in Symbolen": "The model in symbols",
    "Koeffizienten": "Coefficients",
    "Term": "Term",
    "Std.-Fehler": "Std. error",
    "95-%-KI (IRR)": "95 % CI (IRR)",
    "1 Standardabweichung": "1 standard deviation",
    "Konstante": "Constant",
    "Güte und Kreuzvalidierung": "Fit and cross-validation",
    "Verfahren": "Method",
    "erklärte Devianz": "deviance explained",
    "mittlerer abs. Fehler je 1.000 u. 21": "mean abs. error per 1,000 under 21",
    "Inzidenzratenverhältnisse mit 95-%-Konfidenzintervall": "Incidence rate ratios with 95 % confidence interval",
    "Beobachtet/erwartet mit exakten Kontrollgrenzen": "Observed/expected with exact control limits",
    "Sozialräume mit unterdrückten Fallzahlen sind nicht eingezeichnet":
        "Sozialräume with suppressed counts are not drawn",
    "Kalibrierung: beobachtete gegen erwartete Fallrate nach Dezilen (Kreuzvalidierung)":
        "Calibration: observed against expected case rate by decile (cross-validated)",
    "Erklärte Devianz außerhalb der Stichprobe: Modell gegen einfache Verfahren":
        "Out-of-sample deviance explained: model against simple methods",
    "Pearson-Residuen des Modells je Sozialraum": "Pearson residuals of the model by Sozialraum",
    "Residuen und räumliche Autokorrelation": "Residuals and spatial autocorrelation",
    "Grenzen des Modells": "Limitations of the model",
    "Erwarteter Bedarf je Sozialraum": "Expected demand by Sozialraum",
    "Pearson-Residuum": "Pearson residual",
    # distribution
    "Bestandteil": "Component",
    "Art": "Type",
    "Gewicht": "Weight",
    "Betrag": "Amount",
    "Beschreibung": "Description",
    "Summe": "Total",
    "Teilbudgets": "Teilbudgets (partial budgets)",
    "Teilbudget": "Teilbudget",
    "Bezeichnung": "Label",
    "Regel": "Rule",
    "an Sozialräume verteilt": "distributed to Sozialräume",
    "ja": "yes",
    "nein": "no",
    "Budget je Sozialraum": "Budget by Sozialraum",
    " (Vorjahreskosten simuliert)": " (prior-year costs simulated)",
    "Die Formel in Worten": "The formula in words",
    "Korridor": "Corridor",
    "Untergrenze": "Floor",
    "Obergrenze": "Cap",
    "unten": "lower",
    "oben": "upper",
    "Formelwert": "Formula value",
    "Grenze": "Bound",
    "Zusammensetzung einzelner Budgets": "How single budgets are made up",
    "Zusammensetzung des Budgets aus den Bestandteilen": "Budget made up of its components",
    "Korridor-Anpassung": "Corridor adjustment",
    "Korridor (Begrenzung der Veränderung)": "Corridor (limit on the change)",
    "Budget": "Budget",
    # fairness
    "Konzentrationsindex": "Concentration index",
    "Gini (Budget je u. 21)": "Gini (budget per u. 21)",
    "Theil gesamt": "Theil total",
    "Theil zwischen Bezirken": "Theil between districts",
    "Theil innerhalb der Bezirke": "Theil within districts",
    "Konzentrationskurve: Sozialräume nach Bedarfsindex aufsteigend geordnet":
        "Concentration curve: Sozialräume ranked by need index, ascending",
    "Budget je Einwohner unter 21 und erwarteter Bedarf": "Budget per resident under 21 and expected demand",
    "Veränderung gegenüber den Kosten des Vorjahres": "Change against the prior year's costs",
    "Abstand zum Zielwert": "Distance from target",
    "Gewinner und Verlierer": "Winners and losers",
    "Beobachteter und erwarteter Bedarf": "Observed and expected demand",
    "Vorjahr": "Prior year",
    "Bezirk": "District",
    "alle": "all",
    "Zielwert (Formel)": "Target (formula)",
    "Abstand": "Distance",
    "Jahre bis Ziel": "Years to target",
    "nie": "never",
    "Abrechnung und Auszahlung": "Settlement and payout",
    "Überschuss": "Surplus",
    "Überschreitung": "Overspend",
    "Auszahlung": "Payout",
    "Kopplung": "Coupling",
    "Erstattung": "Refund",
    "Umbuchung": "Transfer",
    "Träger": "Provider",
    "Verfügungsfonds": "Verfügungsfonds (local fund)",
    "Hinweis": "Note",
    "Jahr": "Year",
    "Sozialräume am Zielwert": "Sozialräume at target",
    "Anteil": "Share",
    "Gewinner": "Winners",
    "Verlierer": "Losers",
    "Unverändert": "Unchanged",
    # sensitivity
    "Spanne 5–95 %": "Range 5–95 %",
    "Rang": "Rank",
    "Rangspanne 5–95 %": "Rank range 5–95 %",
    # appendix
    "Stufe": "Stage",
    "Befund": "Finding",
    "Stelle": "Location",
    "Keine Befunde.": "No findings.",
    # figures
    "Inzidenzratenverhältnis je Standardabweichung (95-%-KI)": "Incidence rate ratio per SD (95 % CI)",
    "Gleichverteilung je Kopf": "Equal per head",
    "erwarteter Bedarf": "expected demand",
    "Budget, Konzentrationsindex ": "Budget, concentration index ",
    "kumulierter Anteil Einwohner unter 21 (nach Bedarfsindex aufsteigend)":
        "cumulative share of residents under 21 (ranked by need index)",
    "kumulierter Anteil": "cumulative share",
    "erwartete HzE-Fälle je 1.000 unter 21": "expected HzE cases per 1,000 under 21",
    "Budget je Einwohner unter 21 (€)": "Budget per resident under 21 (€)",
    "erwartete Fälle": "expected cases",
    "beobachtet / erwartet": "observed / expected",
    "Kontrollgrenzen (negativ-binomial)": "control limits (negative binomial)",
    "Kontrollgrenzen (Poisson)": "control limits (Poisson)",
    "Erwartete Fälle je 1.000 unter 21": "Expected cases per 1,000 under 21",
    "Beobachtete Fälle je 1.000 unter 21": "Observed cases per 1,000 under 21",
    "perfekte Kalibrierung": "perfect calibration",
    "Dezile": "deciles",
    "Kalibrierung nach Dezilen des erwarteten Bedarfs": "Calibration by decile of expected demand",
    "mittlerer absoluter Fehler je 1.000 unter 21": "mean absolute error per 1,000 under 21",
    "Modell": "Model",
    "Vorjahresfälle": "Prior-year cases",
    "Stadtweite Quote × Bevölkerung unter 21": "Citywide rate × population under 21",
    "Budget (€)": "Budget (€)",
    "Budget je Sozialraum (€)": "Budget per Sozialraum (€)",
    "Vorjahr und Zielwert": "Prior year and target",
    "Budget, Median und 5–95-%-Spanne (€)": "Budget, median and 5–95 % range (€)",
    # map layers
    "Bedarfsindex": "Need index",
    "Erwartete HzE-Fälle je 1.000 unter 21": "Expected HzE cases per 1,000 under 21",
    "Veränderung zum Vorjahr (%)": "Change vs prior year (%)",
    "HzE beobachtet/erwartet": "HzE observed/expected",
    "Quelle: ": "Source: ",
    "Quelle: eigene Daten": "Source: own data",
    "; HzE-Werte simuliert": "; HzE values simulated",
    "Schlüssel": "Key",
    # spatial model (model.family: bym2)
    "Räumliches Modell (BYM2) und Unsicherheit in Euro": "Spatial model (BYM2) and uncertainty in euros",
    "Parameter": "Parameter",
    "Prior": "Prior",
    "Mittelwert": "Mean",
    "Std.-Abw.": "SD",
    "95-%-Intervall": "95 % interval",
    "Erwartete Fälle": "Expected cases",
    "Bedarfsgerechter Zielwert": "Need-based target",
    "Wahrscheinlichkeit, dass das Budget unter dem Bedarf liegt": "Probability that the budget lies below need",
    "Unsicherheit in Euro": "Uncertainty in euros",
}


def gettext(lang: str = "de") -> Callable[[str], str]:
    """Return ``_(s)``: the English text of German ``s`` when ``lang == "en"``, else ``s``.

    Strings containing ``<`` (HTML from the template) come back as Markup.
    """
    table = EN if lang == "en" else {}

    def _(s: str):
        text = table.get(s, s)
        # HTML from the template: the config's label goes in escaped; plain text is escaped by Jinja
        return Markup(relabel(text, lang, escape=True)) if "<" in text else relabel(text, lang)

    return _


def missing(strings) -> list[str]:
    """German strings among ``strings`` that have no English entry."""
    return [s for s in strings if s not in EN]


# --------------------------------------------------------------------------- names from the config
# The report text is written for the default exposure (residents under 21, Berlin's derived formula) and a
# group column (Bezirk). ``set_labels(result)`` (called by ``write_outputs``) makes ``gettext`` and
# ``relabel_html`` use the config's exposure, its label and formula, and drop group-based claims when the
# Sozialräume have no group.

import contextvars
import re

_CTX: contextvars.ContextVar[dict | None] = contextvars.ContextVar("geoplan_report_labels", default=None)


def labels_of(result) -> dict:
    """Exposure name, labels (de/en), formula and whether a group column exists, from a run result."""
    from geoplan.config import default_exposure_label, exposure_definition, exposure_label

    cfg = result.config
    frame = result.frame
    has_group = "bezirk" in frame.columns and frame["bezirk"].astype(str).replace("", None).nunique() > 1
    label_de = exposure_label(cfg, "de")
    label_en = cfg.model.exposure_label or default_exposure_label(cfg.model.exposure, "en")
    return {"exposure": cfg.model.exposure, "de": label_de, "en": label_en,
            "definition": exposure_definition(cfg, "de"), "definition_en": exposure_definition(cfg, "en"),
            "has_group": bool(has_group), "key_table": _uses_key_table(cfg)}


def _uses_key_table(cfg) -> bool:
    ind = cfg.indicators
    return bool((ind.aggregate is not None and ind.aggregate.has_key_table)
                or any(lv.key_table is not None for lv in ind.levels.values()))


def set_labels(result) -> None:
    _CTX.set(labels_of(result))


def _tail(label: str, word: str) -> str:
    return label[len(word):] if label.startswith(word) else label


def relabel(text: str, lang: str = "de", *, escape: bool = False) -> str:
    """Replace the default exposure wording ('Einwohner unter 21', 'je 1.000 u. 21' …) by the config's.

    ``escape=True`` when ``text`` is HTML: the config's labels go in HTML-escaped.
    """
    ctx = _CTX.get()
    if not ctx or not isinstance(text, str):
        return text
    de, en = (html_escape(ctx["de"]), html_escape(ctx["en"])) if escape else (ctx["de"], ctx["en"])
    if de == "Einwohner unter 21" and ctx["exposure"] == "pop_u21":
        return text
    t_de, t_en = _tail(de, "Einwohner "), _tail(en, "residents ")
    new = {"Einwohnern unter 21": de, "Einwohner unter 21": de, "Einwohnerzahl unter 21": de,
           "Personen unter 21": de, "Bevölkerung unter 21": de, "u. 21": t_de, "unter 21": t_de,
           "residents under 21": en, "resident under 21": en, "population under 21": en, "under 21": t_en}
    old = re.compile("|".join(re.escape(k) for k in sorted(new, key=len, reverse=True)))
    # one pass, and the config's labels already in the text stay as they are ("Junge Menschen unter 21"
    # must not become "Junge Menschen Junge Menschen unter 21" when the report is relabelled twice)
    labels = sorted({de, en, t_de, t_en} - {""}, key=len, reverse=True)
    parts = re.split("(" + "|".join(re.escape(x) for x in labels) + ")", text)
    return "".join(part if i % 2 else old.sub(lambda m: new[m.group(0)], part) for i, part in enumerate(parts))


def relabel_html(html: str, lang: str = "de") -> str:
    """The rendered report with the config's exposure, its formula, and no group-based claims without a group."""
    ctx = _CTX.get()
    if not ctx:
        return html
    en = lang == "en"
    # every config value that goes into the rendered HTML is escaped
    label = html_escape(ctx["en"] if en else ctx["de"])
    definition = html_escape((ctx["definition_en"] if en else ctx["definition"]) or "")
    exposure = html_escape(ctx["exposure"])
    # Berlin's formula of the exposure
    formula_de = re.compile(r"Einwohner unter 21 = unter 6 \+ 6–15 \+ 15–18 \+ ein Drittel der 18–27-Jährigen "
                            r"\(Annahme gleich verteilter Jahrgänge\)\.")
    formula_en = re.compile(r"Residents under 21 = under 6 \+ 6–15 \+ 15–18 \+ one third of the 18–27-year-olds "
                            r"\(assuming evenly spread age cohorts\)\.")
    if definition:
        new = f"{label} ({exposure}) = {definition} (indicators.derived)."
    else:
        new = (f"{label}: Spalte {exposure} der Tabellen." if not en
               else f"{label}: column {exposure} of the tables.")
    berlin = ctx["exposure"] == "pop_u21" and ctx["definition"] == "pop_u6 + pop_6_15 + pop_15_18 + 1/3 · pop_18_27"
    if not berlin:
        html = (formula_en if en else formula_de).sub(lambda m: new, html)
    if not ctx["key_table"]:
        html = html.replace("Zählgrößen werden über die Schlüsseltabelle summiert",
                            "Zählgrößen werden je Sozialraum summiert bzw. flächengewichtet übertragen")
        html = html.replace("counts are summed through the key table",
                            "counts are summed per Sozialraum or transferred by areal weighting")
    if not ctx["has_group"]:
        html = re.sub(r'\s*<div class="kpi">[^<]*(Theil zwischen Bezirken|Theil innerhalb der Bezirke|'
                      r'Theil between districts|Theil within districts)<b>[^<]*</b></div>', "", html)
        for old, new in (("k-fache und räumlich blockierte Kreuzvalidierung", "k-fache Kreuzvalidierung"),
                         ("k-fold and spatially blocked cross-validation", "k-fold cross-validation"),
                         ("; Theil zerlegt in Anteile zwischen und innerhalb der Bezirke", ""),
                         ("; Theil decomposed into between- and within-district parts", "")):
            html = html.replace(old, new)
    return relabel(html, lang, escape=True)
