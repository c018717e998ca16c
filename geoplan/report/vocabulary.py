"""One vocabulary for every output: code name -> German and English label, unit, plain-language explanation.

The writers (report, map, XLSX, GeoPackage) take the words for columns, measures, table headers, component
types and QA stages from :data:`TERMS`; no code identifier (``budget_eur``, ``pop_u21``) reaches a reader.
:func:`humanize` turns free text the pipeline wrote for its QA notes into reader text: quoted code names
(``Spalte 'pop_u21'``) become their label, absolute paths become paths relative to the config folder.

Terms kept in German in English outputs, on purpose: "Sozialraum"/"Sozialräume" (the planning unit of § 80 SGB
VIII; the English report introduces it as "Sozialräume (social areas)") and "HzE" (Hilfen zur Erziehung, explained
as "educational support for families"). Names the config gives (title, region, sources, component and Teilbudget
labels) are the city's own names and stay as written. QA findings carry their English text
(``QANote.message_en``, picked by ``QANote.text(lang)``); their stage, level and location words are translated here.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Term:
    de: str
    en: str
    unit: str = ""          # "€", "%", "Anzahl", "" (unitless)
    explain_de: str = ""
    explain_en: str = ""

    def label(self, lang: str = "de") -> str:
        return self.en if lang == "en" else self.de

    def explanation(self, lang: str = "de") -> str:
        return self.explain_en if lang == "en" else self.explain_de


T = Term
TERMS: dict[str, Term] = {
    # ---- the Sozialraum table
    "key": T("Schlüssel", "Key", "", "Kennung des Sozialraums", "Identifier of the Sozialraum"),
    "name": T("Sozialraum", "Sozialraum", "", "Name des Sozialraums", "Name of the Sozialraum (social area)"),
    "bezirk": T("Bezirk", "District", "", "Bezirk, zu dem der Sozialraum gehört", "District the Sozialraum belongs to"),
    "area_km2": T("Fläche (km²)", "Area (km²)", "km²"),
    "pop_total": T("Einwohner", "Residents", "Anzahl", "Einwohnerinnen und Einwohner insgesamt", "All residents"),
    "pop_u6": T("Einwohner unter 6", "Residents under 6", "Anzahl"),
    "pop_6_15": T("Einwohner 6 bis unter 15", "Residents aged 6 to under 15", "Anzahl"),
    "pop_15_18": T("Einwohner 15 bis unter 18", "Residents aged 15 to under 18", "Anzahl"),
    "pop_18_27": T("Einwohner 18 bis unter 27", "Residents aged 18 to under 27", "Anzahl"),
    "pop_27_45": T("Einwohner 27 bis unter 45", "Residents aged 27 to under 45", "Anzahl"),
    "pop_45_55": T("Einwohner 45 bis unter 55", "Residents aged 45 to under 55", "Anzahl"),
    "pop_55_65": T("Einwohner 55 bis unter 65", "Residents aged 55 to under 65", "Anzahl"),
    "pop_65plus": T("Einwohner ab 65", "Residents aged 65 and over", "Anzahl"),
    "pop_u18": T("Einwohner unter 18", "Residents under 18", "Anzahl"),
    "pop_u21": T("Einwohner unter 21", "Residents under 21", "Anzahl",
                 "Bezugsbevölkerung der Hilfen zur Erziehung", "Population the educational support is meant for"),
    "need_index": T("Bedarfsindex", "Need index", "Index",
                    "Sozialindikatoren zusammengefasst; Mittelwert 0, höher = mehr Bedarf",
                    "Social indicators combined; mean 0, higher = more need"),
    "need_class": T("Bedarfsklasse", "Need class"),
    "hze_cases": T("HzE-Fälle", "HzE cases", "Anzahl", "Fälle der Hilfen zur Erziehung im Haushaltsjahr",
                   "Cases of educational support for families (HzE) in the budget year"),
    "hze_per_1000": T("HzE-Fälle je 1.000 u. 21", "HzE cases per 1,000 under 21", "je 1.000"),
    "hze_cases_forecast": T("Fallprognose Haushaltsjahr", "Case forecast, budget year", "Anzahl",
                            "HzE-Fälle des letzten Jahres fortgeschrieben auf das Haushaltsjahr",
                            "HzE cases of the latest year carried forward to the budget year"),
    "expected_cases": T("Erwartete Fälle", "Expected cases", "Anzahl", "vom Bedarfsmodell erwartete HzE-Fälle",
                        "HzE cases expected by the demand model"),
    "expected_per_1000": T("Erwartet je 1.000 u. 21", "Expected per 1,000 under 21", "je 1.000"),
    "pi_low": T("Prognoseintervall unten", "Prediction interval low", "Anzahl"),
    "pi_high": T("Prognoseintervall oben", "Prediction interval high", "Anzahl"),
    "oe_ratio": T("Beobachtet/erwartet", "Observed/expected", "Verhältnis",
                  "beobachtete durch erwartete HzE-Fälle; über 1 = mehr Fälle als erwartet",
                  "observed over expected HzE cases; above 1 = more cases than expected"),
    "expected_cost_eur": T("Erwartete Kosten", "Expected costs", "€"),
    "hze_cost_prev_eur": T("Kosten Vorjahr", "Prior-year costs", "€"),
    "budget_eur": T("Budget", "Budget", "€", "Budget des Sozialraums im Haushaltsjahr",
                    "Budget of the Sozialraum in the budget year"),
    "budget_per_u21": T("Budget je Einwohner u. 21", "Budget per resident under 21", "€"),
    "budget_share": T("Anteil am Budget", "Share of the budget", "%"),
    "need_share": T("Anteil am Bedarf", "Share of need", "%"),
    "target_eur": T("Zielwert (Formel)", "Target (formula)", "€"),
    "prior_eur": T("Vorjahr", "Prior year", "€"),
    "change_eur": T("Veränderung zum Vorjahr", "Change vs prior year", "€"),
    "change_pct": T("Veränderung in %", "Change in %", "%"),
    "distance_to_target_eur": T("Abstand zum Zielwert", "Distance from target", "€"),
    "years_to_target": T("Jahre bis Ziel", "Years to target", "Jahre"),
    "eur_korridor": T("Korridor-Anpassung", "Corridor adjustment", "€",
                      "Betrag, um den der Korridor das Formelergebnis verändert",
                      "Amount by which the corridor changes the formula result"),
    "simuliert": T("simuliert", "simulated", "", "HzE-Werte sind simuliert, keine amtlichen Daten",
                   "HzE values are simulated, not official data"),
    "veraenderung_klasse": T("Klasse der Veränderung", "Class of change"),
    "unter_bedarf_klasse": T("Klasse der Wahrscheinlichkeit, dass das Budget unter dem Bedarf liegt",
                             "Class of the probability that the budget lies below need"),
    # ---- measures of the equity sheet
    "n_areas": T("Sozialräume", "Sozialräume", "Anzahl"),
    "total_budget_eur": T("Budget gesamt (€)", "Total budget (€)", "€"),
    "corridor_pct": T("Korridor ± %", "Corridor ± %", "%"),
    "n_winners": T("Sozialräume mit mehr Geld als im Vorjahr", "Sozialräume with more than last year", "Anzahl"),
    "n_losers": T("Sozialräume mit weniger Geld als im Vorjahr", "Sozialräume with less than last year", "Anzahl"),
    "n_unchanged": T("Sozialräume unverändert", "Sozialräume unchanged", "Anzahl"),
    "total_prior_eur": T("Kosten Vorjahr gesamt (€)", "Total prior-year costs (€)", "€"),
    "total_change_eur": T("Veränderung gesamt (€)", "Total change (€)", "€"),
    "total_distance_to_target_eur": T("Abstand Vorjahr–Zielwert netto (€)", "Net distance prior year to target (€)", "€"),
    "sum_abs_distance_to_target_eur": T("Abstand Vorjahr–Zielwert, Summe der Beträge (€)",
                                        "Distance prior year to target, sum of absolute values (€)", "€"),
    "target_tolerance_pct": T("Toleranz am Zielwert ± %", "Tolerance at target ± %", "%"),
    "n_at_target_year1": T("Sozialräume am Zielwert im ersten Jahr", "Sozialräume at target in year 1", "Anzahl"),
    "years_until_all_at_target": T("Jahr, in dem der letzte Sozialraum den Zielwert erreicht",
                                   "Year in which the last Sozialraum reaches its target", "Jahr"),
    "n_never_at_target": T("Sozialräume, die den Zielwert nie erreichen", "Sozialräume that never reach their target",
                           "Anzahl"),
    "never_at_target": T("Schlüssel dieser Sozialräume", "Keys of these Sozialräume"),
    "never_at_target_names": T("Namen dieser Sozialräume", "Names of these Sozialräume"),
    "convergence": T("Sozialräume am Zielwert je Jahr (Jahr: Anzahl)", "Sozialräume at target per year (year: count)"),
    "concentration_index": T("Konzentrationsindex (Bedarf, je Einwohner u. 21)",
                             "Concentration index (need, per resident u. 21)", "Index"),
    "gini_budget_per_u21": T("Gini Budget je Einwohner u. 21", "Gini budget per resident u. 21", "Index"),
    "gini_budget_per_u21_areas": T("Gini je Sozialraum (ungewichtet)", "Gini per Sozialraum (unweighted)", "Index"),
    "theil": T("Theil gesamt", "Theil total", "Index"),
    "theil_areas": T("Theil je Sozialraum (ungewichtet)", "Theil per Sozialraum (unweighted)", "Index"),
    "theil_between": T("Theil zwischen Bezirken", "Theil between districts", "Index"),
    "theil_within": T("Theil innerhalb der Bezirke", "Theil within districts", "Index"),
    "theil_between_areas": T("Theil zwischen Bezirken (ungewichtet)", "Theil between districts (unweighted)", "Index"),
    "theil_within_areas": T("Theil innerhalb der Bezirke (ungewichtet)", "Theil within districts (unweighted)", "Index"),
    "corr_budget_per_u21_need": T("Korrelation Budget je Kopf – Bedarfsindex (Pearson)",
                                  "Correlation budget per head – need (Pearson)", "Index"),
    "spearman_budget_per_u21_need": T("Rangkorrelation Budget je Kopf – Bedarfsindex (Spearman)",
                                      "Rank correlation budget per head – need (Spearman)", "Index"),
    "total_observed_cases": T("HzE-Fälle beobachtet gesamt", "Observed HzE cases, total", "Anzahl"),
    "observed_expected_total": T("Beobachtet/erwartet gesamt", "Observed/expected, total", "Index"),
    # ---- the demand model's coefficient table
    "coef.label": T("Einflussgröße", "Predictor"),
    "coef.term": T("Modellterm", "Model term"),
    "coef.coef": T("Koeffizient", "Coefficient", "Index"),
    "coef.se": T("Std.-Fehler", "Std. error", "Index"),
    "coef.z": T("z-Wert", "z value", "Index"),
    "coef.p_value": T("p-Wert", "p value", "p"),
    "coef.ci_low": T("95-%-KI unten", "95 % CI low", "Index"),
    "coef.ci_high": T("95-%-KI oben", "95 % CI high", "Index"),
    "coef.irr": T("Inzidenzratenverhältnis", "Incidence rate ratio", "Index"),
    "coef.irr_low": T("Inzidenzratenverhältnis, 95-%-KI unten", "Incidence rate ratio, 95 % CI low", "Index"),
    "coef.irr_high": T("Inzidenzratenverhältnis, 95-%-KI oben", "Incidence rate ratio, 95 % CI high", "Index"),
    # ---- Teilbudgets
    "teil.id": T("Teilbudget", "Partial budget"),
    "teil.label": T("Bezeichnung", "Label"),
    "teil.rule": T("Regel", "Rule"),
    "teil.amount_eur": T("Betrag (€)", "Amount (€)", "€"),
    "teil.distributed": T("an Sozialräume verteilt", "distributed to Sozialräume"),
    # ---- kinds of formula components (allocation.components[].type)
    "type.population": T("Bevölkerung", "Population", "", "Anteil an der Bezugsbevölkerung",
                         "Share of the reference population"),
    "type.model": T("Bedarfsmodell", "Demand model", "", "Anteil an den vom Modell erwarteten Fällen",
                    "Share of the cases the model expects"),
    "type.indicator": T("Sozialindikatoren", "Social indicators", "", "Anteil nach gewichteten Indikatoren",
                        "Share by weighted indicators"),
    "type.fixed": T("fester Betrag", "Fixed amount"),
    "type.prior_year": T("Vorjahreskosten", "Prior-year costs", "", "Anteil an den Kosten des Vorjahres",
                         "Share of the prior year's costs"),
    "type.fachleistungsstunden": T("Fachleistungsstunden", "Specialist hours", "", "Fachleistungsstunden × Stundensatz",
                                   "Specialist hours × hourly rate"),
    "type.equal": T("gleicher Betrag je Sozialraum", "Equal amount per Sozialraum"),
    # ---- QA notes
    "level.info": T("Hinweis", "Note"),
    "level.warnung": T("Warnung", "Warning"),
    "level.fehler": T("Fehler", "Error"),
    "stage.boundaries": T("Sozialraumgrenzen", "Boundaries"),
    "stage.indicators": T("Indikatoren", "Indicators"),
    "stage.hze": T("HzE-Daten", "HzE data"),
    "stage.bedarfsmodell": T("Bedarfsmodell", "Demand model"),
    "stage.model": T("Bedarfsmodell", "Demand model"),
    "stage.allocation": T("Verteilung", "Distribution"),
    "stage.equity": T("Verteilungsgerechtigkeit", "Distributive fairness"),
    "stage.privacy": T("Datenschutz", "Privacy"),
    "stage.sensitivity": T("Sensitivität", "Sensitivity"),
    "stage.settlement": T("Abrechnung", "Settlement"),
    "stage.caselist": T("HzE-Fallliste", "HzE case list"),
    # ---- index methods (indicators.index_method)
    "method.gewichtet": T("gewichtet", "weighted"),
    "method.mss": T("wie Monitoring Soziale Stadtentwicklung", "as in Berlin's social monitoring (MSS)"),
    "method.pca": T("Hauptkomponente", "principal component"),
    # ---- catalogue units and directions (indicator catalogue values)
    "unit.%": T("%", "%"),
    "unit.je 1.000": T("je 1.000", "per 1,000"),
    "unit.Anzahl": T("Anzahl", "count"),
    "unit.Index": T("Index", "index"),
    "unit.Prozentpunkte": T("Prozentpunkte", "percentage points"),
    "direction.hoch = mehr Bedarf": T("hoch = mehr Bedarf", "high = more need"),
    "direction.niedrig = mehr Bedarf": T("niedrig = mehr Bedarf", "low = more need"),
    # ---- roles of input files (provenance.input_file)
    "role.Sozialräume": T("Sozialräume", "Sozialräume (boundaries)"),
    "role.Indikatorenkatalog": T("Indikatorenkatalog", "Indicator catalogue"),
    "role.Indikatoren": T("Indikatoren", "Indicators"),
    "role.Schlüsseltabelle": T("Schlüsseltabelle", "Key table"),
    "role.Quellgeografie": T("Quellgeografie", "Source geography"),
    "role.Gewichte": T("Gewichte", "Weights"),
    "role.HzE-Daten": T("HzE-Daten", "HzE data"),
    "role.HzE-Fallliste": T("HzE-Fallliste", "HzE case list"),
    "role.Ist-Kosten (Abrechnung)": T("Ist-Kosten (Abrechnung)", "Actual costs (settlement)"),
    "role.Schlüsseltabelle der Fallliste": T("Schlüsseltabelle der Fallliste", "Key table of the case list"),
    "role.Straßenverzeichnis": T("Straßenverzeichnis", "Street directory"),
    # ---- XLSX sheets
    "sheet.allocation": T("Verteilung", "Distribution"),
    "sheet.model": T("Bedarfsmodell", "Demand model"),
    "sheet.equity": T("Gerechtigkeit", "Fairness"),
    "sheet.path": T("Zielpfad", "Path to target"),
    "sheet.formula": T("Formel", "Formula"),
    "sheet.teilbudgets": T("Teilbudgets", "Partial budgets"),
    "sheet.settlement": T("Abrechnung", "Settlement"),
    "sheet.sensitivity": T("Sensitivität", "Sensitivity"),
    "sheet.inputs": T("Datengrundlage", "Data sources"),
    "sheet.qa": T("QA", "QA"),
}
del T


def term(key: str) -> Term | None:
    return TERMS.get(key)


def label(key: str, lang: str = "de", default: str | None = None) -> str:
    """The reader's word for ``key`` (relabelled for the config's exposure); ``default`` or ``key`` when unknown."""
    from geoplan.report.i18n import relabel

    t = TERMS.get(key)
    if t is None:
        return key if default is None else default
    return relabel(t.label(lang), lang)


def column_label(col: str, lang: str = "de", extra: dict[str, tuple[str, str]] | None = None) -> str | None:
    """Label of a column of the Sozialraum table (``extra``: run-specific labels, e.g. indicators, components)."""
    if extra and col in extra:
        return extra[col][1 if lang == "en" else 0]
    if col in TERMS:
        return label(col, lang)
    if col.endswith("_unterdrueckt") and col[: -len("_unterdrueckt")] in TERMS:
        base = label(col[: -len("_unterdrueckt")], lang)
        return f"{base}: unterdrückt" if lang == "de" else f"{base}: suppressed"
    return None


# --------------------------------------------------------------------------- free text of QA notes
_WIN_ABS = re.compile(r"(?<![\w/])[A-Za-z]:\\[^\s;,()'\"]+")
_POSIX_ABS = re.compile(r"(?<![\w.:/])/(?:[\w.+~-]+/)+[\w.+~-]*")


def public_path(path, base_dir=None) -> str:
    """``path`` for a published output: relative to the config folder (POSIX separators), or the file name."""
    p = str(path)
    if re.match(r"^[A-Za-z]:\\", p) and os.sep != "\\":  # a Windows path read on another system
        from pathlib import PureWindowsPath

        if base_dir is None or not re.match(r"^[A-Za-z]:\\", str(base_dir)):
            return PureWindowsPath(p).name
        try:
            return Path(os.path.relpath(PureWindowsPath(p).as_posix(), PureWindowsPath(str(base_dir)).as_posix())).as_posix()
        except ValueError:
            return PureWindowsPath(p).name
    if base_dir is not None:
        try:
            rel = os.path.relpath(os.path.normpath(p), os.path.normpath(str(base_dir)))
            return Path(rel).as_posix()
        except ValueError:  # another drive on Windows
            pass
    return Path(p).name


def humanize(text, lang: str = "de", base_dir=None, names: dict[str, str] | None = None):
    """QA text for readers: ``'pop_u21'`` -> „Einwohner unter 21“ and absolute paths relative to the config folder.

    ``names`` adds run-specific labels (indicator names -> their catalogue label).
    """
    if not isinstance(text, str) or not text:
        return text

    def quoted(m: re.Match) -> str:
        ident = m.group(1)
        lab = (names or {}).get(ident) or column_label(ident, lang)
        if lab is None:
            return m.group(0)
        return f"„{lab}“" if lang == "de" else f"“{lab}”"

    out = re.sub(r"'([A-Za-z_][A-Za-z0-9_]*)'", quoted, text)
    # bare identifiers with an underscore or digit (pop_total: Quelle …) that the vocabulary knows
    def bare(m: re.Match) -> str:
        ident = m.group(0)
        lab = (names or {}).get(ident) or column_label(ident, lang)
        return lab if lab is not None else ident

    out = re.sub(r"(?<![\w./\\-])[a-z][a-z0-9]*_[a-z0-9_]+(?![\w./\\-])", bare, out)
    out = _WIN_ABS.sub(lambda m: public_path(m.group(0), base_dir), out)
    out = _POSIX_ABS.sub(lambda m: public_path(m.group(0), base_dir), out)
    return out




def indicator_names(result, lang: str = "de") -> dict[str, str]:
    """Indicator code name -> the catalogue's label (English where the catalogue gives one)."""
    return {i.name: ((i.label_en or i.label) if lang == "en" else i.label) for i in result.catalogue.indicators}


def humanize_note(note, lang: str = "de", base_dir=None, names: dict[str, str] | None = None):
    """A QA note (:class:`geoplan.errors.QANote`) as a reader sees it: stage and level in words, the message in
    ``lang`` (``QANote.text``) and the location through :func:`humanize`, the file relative to the config folder."""
    import dataclasses

    message = humanize(note.text(lang), lang, base_dir, names)
    return dataclasses.replace(
        note,
        stage=label("stage." + note.stage, lang, note.stage),
        level=label("level." + note.level, lang, note.level),
        message=message,
        message_en=message if lang == "en" else note.message_en,
        location=_location(humanize(note.location, lang, base_dir, names), lang) if note.location else note.location,
        file=public_path(note.file, base_dir) if note.file else note.file,
    )


def _location(text: str, lang: str) -> str:
    """Where a finding is, in the reader's language (the words of a location are few and fixed)."""
    from geoplan.errors import english_location

    return english_location(text) if lang == "en" else text
