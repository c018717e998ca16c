"""bericht.html / bericht.pdf and karte.html.

The HTML report is self-contained: CSS inline, figures as data URIs, no
script or font from any host. The PDF is rendered by WeasyPrint (A4, page
numbers, table of contents) from the same template and context, with the
detail tables per Sozialraum replaced by a sentence saying where they are
when there are more than ``output.pdf_detail_tables_max_areas`` Sozialräume.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from geoplan import fmt
from geoplan.report import claims, drawjobs, figures
from geoplan.report.vocabulary import label as voc_label
from geoplan.report.i18n import gettext

# the PDF writer lives in geoplan.report.pdf (its second process imports only WeasyPrint); names kept here
from geoplan.report.pdf import PdfWorker, PendingPdf, start_pdf  # noqa: F401
from geoplan.report.pdf import pdf_from_html as _pdf_from_html

SIM = "simuliert"


def format_cell(value, kind: str, lang: str = "de") -> str:
    """German (or English) display of one table cell; strings (suppression markers) pass through."""
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return "–"
    if kind == "text":
        return str(value)
    formatter, decimals = _CELL_FORMATS.get(kind, (fmt.number, 1))
    return formatter(value, decimals, lang)


# display format -> (formatter, decimals)
_CELL_FORMATS = {
    "int": (fmt.number, 0), "count": (fmt.number, 0), "num0": (fmt.number, 0),
    "euro": (fmt.euro, 0), "euroq": (fmt.euro, 0), "euro2": (fmt.euro, 2), "pct": (fmt.percent, 1),
    "index": (fmt.number, 2), "ratio": (fmt.number, 2), "rate": (fmt.number, 1),
}


def table_rows(df: pd.DataFrame, columns: list[tuple[str, str, str, str]], lang: str = "de") -> list[list[str]]:
    return [[format_cell(row[c], kind, lang) for c, _, _, kind in columns] for _, row in df.iterrows()]


@functools.lru_cache(maxsize=4)
def _env(lang: str = "de") -> Environment:
    """The report's Jinja environment for ``lang``, built once per process (compiling bericht.html.j2 costs
    about 0.1 s; it is rendered twice per run when the PDF has its own text). The config's labels are read
    at render time (:func:`geoplan.report.i18n.relabel`), not kept here."""
    env = Environment(loader=PackageLoader("geoplan", "report/templates"), autoescape=select_autoescape(["html", "j2"]))
    env.filters["euro"] = lambda v, d=0: fmt.euro(v, d, lang)
    env.filters["num"] = lambda v, d=0: fmt.number(v, d, lang)
    env.filters["pct"] = lambda v, d=1: fmt.percent(v, d, lang)
    env.filters["signed"] = lambda v, d=1, u="": fmt.signed(v, d, lang, unit=u)
    env.globals["_"] = gettext(lang)
    return env


def _indicator_unit(result, term: str) -> str:
    for i in result.catalogue.indicators:
        if i.name == term:
            return i.unit or ""
    return ""


def _sd_text(sd: float, unit: str, lang: str) -> str:
    """One standard deviation in the indicator's own unit (percentage points for % indicators)."""
    if sd is None or not np.isfinite(sd):
        return "–"
    if unit == "%":
        return fmt.number(sd, 1, lang) + (" Prozentpunkte" if lang == "de" else " percentage points")
    return fmt.number(sd, 2, lang) + (f" {unit}" if unit and unit not in ("Index",) else "")


def coef_label(result, row, lang: str = "de") -> str:
    """A model term in words: the catalogue's label of its indicator (English where the catalogue gives one)."""
    term = str(row["term"])
    for i in result.catalogue.indicators:
        if term in (i.name, f"z_{i.name}"):
            return (i.label_en or i.label) if lang == "en" else i.label
    return voc_label(term, lang, str(row.get("label", term)))


def model_text(result, lang: str = "de") -> dict:
    """Formula, family, validation and limitations of the need model in the report's language.

    German comes from :func:`geoplan.report.model_text.describe_de`; English is written here from the same fit.
    """
    model = result.model
    fit = model.fit
    if lang == "de":
        try:
            from geoplan.report.model_text import describe_de

            return describe_de(model)
        except Exception:  # noqa: BLE001 - a model without the text helper still gets a report
            pass
    nb = fit.get("family") == "negbin"
    symbols = "log E[Y_i] = log(E_i) + β₀ + Σ_j β_j · z_ij" + (
        ",  Y_i ~ NegBin(μ_i, α), Var(Y_i) = μ_i + α·μ_i²" if nb else ",  Y_i ~ Poisson(μ_i), Var(Y_i) = μ_i")
    words = ("The expected HzE cases μ_i of Sozialraum i are its number of residents under 21 (E_i) times a take-up "
             "rate. The rate depends multiplicatively on the standardised indicators z_ij (mean 0, standard deviation 1 "
             "over all Sozialräume): if an indicator rises by one standard deviation, the expected rate changes by the "
             "factor IRR = exp(β_j), the other indicators held constant. exp(β₀) is the rate per person under 21 in a "
             "Sozialraum with average indicator values.")
    if nb:
        family = (f"Overdispersion detected (variance larger than the mean): negative binomial model (NB2), dispersion "
                  f"α = {fmt.number(fit.get('alpha', np.nan), 3, lang)} (Var = μ + α·μ²).")
    else:
        family = f"Poisson model; Pearson χ²/df = {fmt.number(fit.get('dispersion', np.nan), 2, lang)}."
    labels_en = {"model_kfold": "Model, k-fold cross-validation", "model_blocked": "Model, spatially blocked cross-validation",
                 "baseline_prev": "Prior-year cases", "baseline_rate": "Citywide rate × population under 21"}
    lines = [f"{labels_en.get(k, k)}: deviance explained {fmt.percent(100 * r['deviance_explained'], 1, lang)}, mean absolute "
             f"error {fmt.number(r['mae_per_1000'], 2, lang)} cases per 1,000 under 21" for k, r in model.cv.iterrows()]
    limitations = [
        "The model describes relations between Sozialräume, not between families (ecological model); it supports no "
        "statement about single households.",
        "The indicators explain take-up statistically, not causally. Case counts also reflect supply, access and the "
        "practice of the social services, not only need.",
        "The funnel plot's limits cover only random variation of the counts" + (
            "; with overdispersion the NB2 limits apply." if nb else "."),
        "The prediction intervals include the uncertainty of the coefficients and the random variation of the cases"
        + (", not the uncertainty of the dispersion α." if nb else "."),
    ]
    if model.moran is not None and model.moran.get("significant"):
        limitations.append(f"The residuals are spatially autocorrelated (Moran's I = {fmt.number(model.moran['I'], 3, lang)}); "
                           "standard errors may be too small.")
    return {"formula_symbols": symbols, "formula_words": words, "family": family, "validation": lines,
            "limitations": limitations}


def cv_reading(cv: pd.DataFrame, lang: str = "de") -> str:
    """Plain-words reading of the cross-validation against the baselines."""
    if cv is None or not len(cv):
        return ""
    d = cv["deviance_explained"]
    model_rows = [k for k in cv.index if str(k).startswith("model")]
    best_model = float(d[model_rows].max()) if model_rows else np.nan
    prev = float(d["baseline_prev"]) if "baseline_prev" in d.index else np.nan
    rate = float(d["baseline_rate"]) if "baseline_rate" in d.index else np.nan
    n = lambda v: fmt.percent(100 * v, 1, lang, sep=fmt.NBSP)  # noqa: E731  (the number with its unit, kept together)
    if lang == "de":
        parts = [f"Das Modell erklärt außerhalb der Stichprobe {n(best_model)} der Devianz"]
        if np.isfinite(rate):
            parts.append(f"; die stadtweite Quote je Einwohner unter 21 erklärt {n(rate)}, das Modell sagt also weit "
                         "besser voraus als eine Verteilung nur nach Köpfen")
        text = "".join(parts) + "."
        if np.isfinite(prev) and prev > best_model:
            text += (f" Die Vorjahresfälle sagen noch besser voraus ({n(prev)}): Fallzahlen ändern sich von Jahr zu Jahr "
                     "wenig. Trotzdem sollte eine Budgetformel nicht auf Vorjahresfällen beruhen: sie hängen von der "
                     "bisherigen Praxis ab – wie viele Hilfen ein Träger bewilligt bekam, wie das Angebot im Sozialraum "
                     "aussieht –, und diese Praxis beeinflussen die Leistungserbringer selbst. Wer mehr Fälle erzeugt, "
                     "bekäme mehr Geld; präventive, fallvermeidende Arbeit würde bestraft. Deshalb stützt sich die Formel "
                     "auf Sozialstrukturindikatoren, die die Träger nicht beeinflussen können (so auch das ISA-Modell "
                     "für Sozialraumbudgets).")
        elif np.isfinite(prev):
            text += f" Die Vorjahresfälle erklären {n(prev)}."
        return text
    text = f"Out of sample, the model explains {n(best_model)} of the deviance"
    if np.isfinite(rate):
        text += (f"; the citywide rate per resident under 21 explains {n(rate)}, so the model predicts far better than a "
                 "split by head count alone")
    text += "."
    if np.isfinite(prev) and prev > best_model:
        text += (f" Prior-year cases predict even better ({n(prev)}): case numbers change little from year to year. A "
                 "budget formula should still not rest on prior-year cases: they depend on past practice – how many "
                 "cases a provider had approved, what services exist in the area – and providers influence that "
                 "practice themselves. Whoever produced more cases would get more money, and preventive work that "
                 "avoids cases would be penalised. The formula therefore uses social-structure indicators that "
                 "providers cannot influence (as in the ISA model for Sozialraum budgets).")
    elif np.isfinite(prev):
        text += f" Prior-year cases explain {n(prev)}."
    return text


def moran_text(moran: dict | None, lang: str = "de") -> str:
    if not moran:
        return ""
    i, p = fmt.number(moran["I"], 3, lang), fmt.number(moran["p_value"], 3, lang)
    if lang == "de":
        base = (f"Moran's I der Pearson-Residuen auf dem Nachbarschaftsgraphen (Queen-Kontiguität) beträgt {i} "
                f"(Permutationstest, p = {p}). Moran's I misst, ob benachbarte Sozialräume ähnliche Abweichungen vom "
                "Modell haben (Werte nahe 0: nein; positiv: Nachbarn weichen in dieselbe Richtung ab). ")
        if moran.get("significant"):
            return base + ("Das ist hier der Fall: dem Modell fehlt vermutlich ein räumlich gehäufter Einfluss. Als "
                           "Abhilfe stehen ein räumlicher Lag des Bedarfsindex oder feste Bezirkseffekte als "
                           "Modelloptionen bereit; die Standardfehler sind sonst eher zu klein.")
        return base + "Hier gibt es keinen Hinweis auf räumlich gehäufte Abweichungen."
    base = (f"Moran's I of the Pearson residuals on the neighbourhood graph (queen contiguity) is {i} (permutation test, "
            f"p = {p}). Moran's I measures whether neighbouring Sozialräume deviate from the model in the same way "
            "(values near 0: no; positive: neighbours deviate in the same direction). ")
    if moran.get("significant"):
        return base + ("That is the case here: the model probably misses a spatially clustered influence. A spatial lag "
                       "of the need index or district fixed effects are available as model options; otherwise the "
                       "standard errors are likely too small.")
    return base + "There is no sign of spatially clustered deviations here."


def _prior_text(prior, param: str, lang: str) -> str:
    """A configured prior (``model.bym2.sigma_prior``/``rho_prior``) in words."""
    kind, *v = list(prior)
    de = lang == "de"
    n = lambda x: fmt.number(float(x), 3, lang).rstrip("0").rstrip(",.")  # noqa: E731
    if kind == "pc":
        rel = ">" if param == "σ" else "<"
        return (f"PC-Prior: P({param} {rel} {n(v[0])}) = {n(v[1])}" if de else f"PC prior: P({param} {rel} {n(v[0])}) = {n(v[1])}")
    if kind == "halfnormal":
        return f"{'Halbnormal' if de else 'half-normal'}(0, {n(v[0])})"
    if kind == "exponential":
        return f"Exponential({'Rate' if de else 'rate'} {n(v[0])})"
    if kind == "beta":
        return f"Beta({n(v[0])}, {n(v[1])})"
    return "Gleichverteilung auf (0, 1)" if de else "uniform on (0, 1)"


def bym2_context(result, lang: str = "de") -> dict | None:
    """The spatial model's part of the Bedarfsmodell section (``result.uncertainty``), formatted; None without BYM2."""
    u = getattr(result, "uncertainty", None)
    if u is None:
        return None
    de = lang == "de"
    b = result.config.model.bym2
    label_of = {i.name: i.label for i in result.catalogue.indicators}
    priors = {"beta0": ("Normal(log(Σ Fälle / Σ Exposition), 5)" if de else "normal(log(Σ cases / Σ exposure), 5)"),
              "sigma": _prior_text(b.sigma_prior, "σ", lang), "rho": _prior_text(b.rho_prior, "ρ", lang)}
    names = {"beta0": "Achsenabschnitt (log Rate)" if de else "Intercept (log rate)",
             "sigma": "σ: Streuung des Gebietseffekts" if de else "σ: spread of the area effect",
             "rho": "ρ: räumlicher Anteil der Varianz" if de else "ρ: spatial share of the variance"}
    param_rows = []
    for name, r in u.summary.iterrows():
        is_coef = name not in names
        label = (f"{label_of.get(name, name)} ({'log Ratenverhältnis je SD' if de else 'log rate ratio per SD'})"
                 if is_coef else names[name])
        prior = f"Normal(0, {fmt.number(b.coef_prior_sd, 3, lang).rstrip('0').rstrip(',.')})" if is_coef else priors[name]
        def show(v, rho=name == "rho"):  # ρ as a share in %, the others on the log scale
            return fmt.percent(100 * v, 0, lang) if rho else fmt.number(v, 3, lang)

        param_rows.append([label, prior, show(r["mean"]), show(r["sd"]), f"{show(r['q2.5'])} – {show(r['q97.5'])}",
                           fmt.number(r["r_hat"], 3, lang), fmt.number(r["ess"], 0, lang)])
    a = u.areas.sort_values("key")
    area_rows = [[str(r["key"]), str(r["name"]), fmt.number(r["expected_cases"], 1, lang),
                  f"{fmt.number(r['expected_q05'], 1, lang)} – {fmt.number(r['expected_q95'], 1, lang)}",
                  fmt.euro(r["budget_eur"], 0, lang), fmt.euro(r["target_eur"], 0, lang),
                  f"{fmt.euro(r['target_q05_eur'], 0, lang)} – {fmt.euro(r['target_q95_eur'], 0, lang)}",
                  fmt.percent(100 * r["p_budget_below_need"], 0, lang)] for _i, r in a.iterrows()]
    fam = {"negbin": "negatives Binomialmodell" if de else "negative binomial model",
           "poisson": "Poisson-Modell" if de else "Poisson model"}.get(u.reference_family, u.reference_family)
    return {"sentences": claims.bym2_sentences(result, lang), "param_rows": param_rows, "area_rows": area_rows,
            "interval": (f"{fmt.number(100 * u.interval, 0, lang)}-%-Intervall" if de else
                         f"{fmt.percent(100 * u.interval, 0, lang)} interval"), "reference": fam,
            "n_draws": fmt.number(u.diagnostics["n_draws"], 0, lang),
            "lo": fmt.percent(50 * (1 - u.interval), 0, lang), "hi": fmt.percent(50 * (1 + u.interval), 0, lang)}


def sensitivity_context(result, lang: str = "de", max_areas: int = figures.MAX_AREAS_PER_CHART,
                        jobs: drawjobs.Figures | None = None) -> dict | None:
    """The run's weight-sensitivity Monte Carlo (``result.sensitivity``, computed by the pipeline), formatted.

    None when the run has none (``sensitivity.n_draws: 0``); the report then leaves the section out.
    ``jobs``: the figure goes there (key ``sensitivity``) and ``fig`` is None until the caller fills it in.
    """
    sens = getattr(result, "sensitivity", None)
    if sens is None:
        return None
    t = sens.table.copy()
    name_of = dict(zip(result.frame["key"], result.frame["name"]))
    t["label"] = [f"{k} {name_of.get(k, '')}" for k in t["key"]]
    rows = []
    for _, r in t.sort_values("key").iterrows():
        rows.append([r["key"], name_of.get(r["key"], ""), fmt.euro(r["budget_eur"], 0, lang), fmt.euro(r["p05_eur"], 0, lang),
                     fmt.euro(r["p95_eur"], 0, lang), fmt.percent(r.get("range_pct", np.nan), 1, lang),
                     fmt.number(r["rank"], 0, lang), f"{fmt.number(r['rank_p05'], 0, lang)}–{fmt.number(r['rank_p95'], 0, lang)}",
                     fmt.percent(100 * r.get("rank_same_share", np.nan), 0, lang)])
    conc = getattr(sens, "concentration", None)
    if jobs is None:
        fig = figures.data_uri(figures.sensitivity_plot(t, lang, max_areas=max_areas))
    else:
        jobs.add("sensitivity", figures.sensitivity_plot, t, lang, max_areas=max_areas)
        fig = None
    return {
        "rows": rows,
        "n_draws": fmt.number(sens.n_draws, 0, lang),
        "concentration": fmt.number(conc, 0, lang) if conc is not None else "–",
        "max_range_pct": fmt.percent(float(t["range_pct"].max()), 1, lang) if "range_pct" in t else "–",
        "median_range_pct": fmt.percent(float(t["range_pct"].median()), 1, lang) if "range_pct" in t else "–",
        "fig": fig,
        "range_values": t.sort_values("key")["range_pct"].tolist() if "range_pct" in t else [np.nan] * len(t),
    }



#: Above ``output.max_areas_in_report`` Sozialräume a per-area table shows this many areas at each end.
EXTREME_ROWS = 10


def _extremes(rows: list[list[str]], values, n: int = EXTREME_ROWS) -> list[list[str]]:
    """The ``n`` rows with the largest and the ``n`` with the smallest ``values`` (largest first), a "…" row between.

    Rows without a value (NaN) are left out; the full table is in the XLSX.
    """
    v = pd.Series(pd.to_numeric(pd.Series(list(values)), errors="coerce").to_numpy(float))
    order = [int(i) for i in v.dropna().sort_values(ascending=False, kind="stable").index]
    if len(order) <= 2 * n:
        return [rows[i] for i in order]
    width = len(rows[0]) if rows else 1
    return [rows[i] for i in order[:n]] + [["…"] + [""] * (width - 1)] + [rows[i] for i in order[-n:]]


def _more_note(n_areas: int, what: str, sheet: str, lang: str, gpkg: bool = True, n: int = EXTREME_ROWS) -> str:
    """The sentence under a shortened per-area table: what it shows and where all rows are."""
    total = fmt.number(n_areas, 0, lang)
    if lang == "de":
        return (f"Gezeigt sind die {n} Sozialräume mit dem höchsten und die {n} mit dem niedrigsten Wert ({what}) "
                f"von {total}. Die vollständige Tabelle mit allen {total} Sozialräumen steht in verteilung.xlsx, "
                f"Blatt „{sheet}“" + (", und in ergebnis.gpkg." if gpkg else "."))
    return (f"Shown are the {n} Sozialräume with the highest and the {n} with the lowest value ({what}) of {total}. "
            f"The full table with all {total} Sozialräume is in verteilung.xlsx, sheet '{sheet}'"
            + (", and in ergebnis.gpkg." if gpkg else "."))


#: The per-area detail tables bericht.pdf leaves out above ``output.pdf_detail_tables_max_areas`` Sozialräume:
#: key -> (German title, English title). "Budget je Sozialraum" (``alloc``), the table the committee votes on,
#: is no detail table: the PDF always has it.
PDF_DETAIL_TABLES = {
    "ind": ("Indikatorwerte je Sozialraum", "Indicator values by Sozialraum"),
    "need": ("Erwarteter Bedarf je Sozialraum", "Expected demand by Sozialraum"),
    "bym2": ("Intervalle je Sozialraum (BYM2)", "Intervals by Sozialraum (BYM2)"),
    # every number of it is in the allocation table too (formula value = budget − corridor adjustment)
    "binding": ("Sozialräume an der Korridorgrenze", "Sozialräume held by the corridor"),
    "dist": ("Abstand zum Zielwert je Sozialraum", "Distance from target by Sozialraum"),
    "sens": ("Sensitivität je Sozialraum", "Sensitivity by Sozialraum"),
}

_CONFIG = object()  # "take the limit from the config" (None is a value: no limit)


#: The report's sections in order: anchor (the heading's id in bericht.html) and German heading.
SECTIONS = (("zusammenfassung", "Zusammenfassung"), ("datengrundlage", "Datengrundlage"),
            ("indikatoren", "Indikatoren"), ("bedarfsmodell", "Bedarfsmodell"), ("verteilung", "Verteilung"),
            ("gerechtigkeit", "Verteilungsgerechtigkeit"), ("sensitivitaet", "Sensitivität"),
            ("methodik", "Methodik"), ("anhang", "Anhang: Qualitätssicherung"))


def section_numbers(has_sensitivity: bool) -> dict[str, int]:
    """Anchor -> the number of each section the report has (the sensitivity section only with its table),
    used by the headings and by every sentence that names a section (the PDF's notes, the closing note)."""
    present = [a for a, _ in SECTIONS if has_sensitivity or a != "sensitivitaet"]
    return {anchor: i for i, anchor in enumerate(present, start=1)}


def _pdf_note(key: str, section: str, sheet: str, n_areas: int, limit: int, shortened: bool, lang: str,
              n: int = EXTREME_ROWS, n_rows: int | None = None) -> str:
    """The sentence bericht.pdf shows in place of the detail table ``key``: where the table is instead.

    ``section``: number and heading of the report section in bericht.html; ``sheet``: the verteilung.xlsx
    sheet with all rows; ``shortened``: bericht.html itself shows only the ``n`` areas at each end
    (above ``output.max_areas_in_report``); ``n_rows``: the table's rows, if not one per Sozialraum.
    """
    de_title, en_title = PDF_DETAIL_TABLES[key]
    total = fmt.number(n_areas, 0, lang)
    rows = fmt.number(n_areas if n_rows is None else n_rows, 0, lang)
    field = "output.pdf_detail_tables_max_areas"
    if lang == "de":
        rule = (f"Tabellen je Sozialraum stehen im PDF bis {fmt.number(limit, 0, lang)} Sozialräume, {field}" if limit
                else f"{field}: 0")
        if shortened:
            return (f"Die Tabelle „{de_title}“ steht nicht im PDF: bericht.html, Abschnitt {section}, zeigt die {n} "
                    f"Sozialräume mit dem höchsten und die {n} mit dem niedrigsten Wert, verteilung.xlsx, Blatt "
                    f"„{sheet}“, alle {total} ({rule}).")
        return (f"Die Tabelle „{de_title}“ ({rows} Sozialräume) steht nicht im PDF, sondern in bericht.html, "
                f"Abschnitt {section}, und in verteilung.xlsx, Blatt „{sheet}“ ({rule}).")
    rule = (f"the PDF holds tables by Sozialraum up to {fmt.number(limit, 0, lang)} Sozialräume, {field}" if limit
            else f"{field}: 0")
    if shortened:
        return (f"The table '{en_title}' is not in the PDF: bericht.html, section {section}, shows the {n} "
                f"Sozialräume with the highest and the {n} with the lowest value, verteilung.xlsx, sheet "
                f"'{sheet}', all {total} ({rule}).")
    return (f"The table '{en_title}' ({rows} Sozialräume) is not in the PDF but in bericht.html, section {section}, "
            f"and in verteilung.xlsx, sheet '{sheet}' ({rule}).")


def _group_rows(areas: pd.DataFrame, group: str, expo: str, lang: str) -> list[list[str]]:
    """One row per Bezirk (``boundaries.group``): areas, residents, budget, budget per head, prior year, change."""
    a = areas.assign(_g=areas[group].astype(str))
    rows = []
    for g, d in a.groupby("_g", sort=True):
        pop = float(pd.to_numeric(d[expo], errors="coerce").sum()) if expo in d else np.nan
        budget = float(d["budget_eur"].sum())
        prior = float(pd.to_numeric(d["hze_cost_prev_eur"], errors="coerce").sum()) if "hze_cost_prev_eur" in d else np.nan
        rows.append([g, fmt.number(len(d), 0, lang), fmt.number(pop, 0, lang), fmt.euro(budget, 0, lang),
                     fmt.euro(budget / pop, 2, lang) if pop else "–",
                     fmt.euro(prior, 0, lang) if np.isfinite(prior) else "–",
                     fmt.percent((budget - prior) / prior * 100, 1, lang) if np.isfinite(prior) and prior else "–"])
    return rows


_NARROW = set(".,:;'!|il ()[]/")


def _text_em(text: str) -> float:
    """Width of ``text`` in em of DejaVu Sans, estimated per character (digits 0.64, dots 0.32, letters 0.6)."""
    w = 0.0
    for ch in text:
        if ch in _NARROW:
            w += 0.32
        elif ch.isdigit() or ch == "€":
            w += 0.64
        elif ch in "−–%mwMW":
            w += 0.9
        elif ch.isupper():
            w += 0.7
        else:
            w += 0.6
    return w


#: Width of the tables with one row per Sozialraum, in em of their 7 pt text (A4 landscape less margins, 273 mm),
#: and a cell's padding (2 × 3 px); headers are 6.5 pt bold.
TABLE_EM, PAD_EM, HEAD_EM = 273 / 25.4 * 72 / 7, 6 * 0.75 / 7, 6.5 / 7 * 1.25


def _words(text) -> list[str]:
    """The pieces a line may break between: at blanks (not at a no-break space) and after a hyphen
    ('Korridor-' 'Anpassung')."""
    return re.findall(r"(?:[^\s-]|\u00a0)*-|(?:[^\s-]|\u00a0)+", str(text))


def col_widths(rows: list[list[str]], header: list[str], left: int = 2, extra: list[list[str]] = (),
               font_pt: float = 7.0) -> list[float]:
    """Column widths in % for ``table-layout: fixed``, laid out like the browser's automatic layout.

    Per column a minimum and a maximum (the whole text) from estimated
    character widths; the table's width goes to the maxima if they fit, else
    each column gets its minimum and the rest in proportion to what it lacks
    (CSS 2.1 §17.5.2.2). The minimum is the first of these that lets the
    table fit: the longest word of the header (headers wrap between words),
    number or word of the first ``left`` text columns (words end at blanks
    and hyphens); then the headers of the number columns give up their
    longest word (a long compound in a header breaks before a name in the
    body does); then the text columns give up theirs (they wrap anywhere); a
    number is never cut. ``extra``: rows that count but are not shown in
    ``rows`` (the bold sum row). The PDF then lays the table out without
    measuring every cell twice, which is most of the cost of a table with one
    row per Sozialraum. ``font_pt``: the table's font size (the width of the
    page in em grows as the font shrinks).
    """
    table_em = TABLE_EM * 7.0 / font_pt
    levels: list[list[float]] = [[], [], []]
    maxs = []
    for j, head in enumerate(header):
        cells = [_text_em(str(r[j])) for r in rows if j < len(r)]
        cells += [1.1 * _text_em(str(r[j])) for r in extra if j < len(r)]
        hmin = HEAD_EM * max((_text_em(w) for w in _words(head)), default=0.0)
        cmax = max(cells, default=0.0)
        if j < left:
            word = max((_text_em(w) for r in rows if j < len(r) for w in _words(r[j])), default=0.0)
            lv = (max(hmin, word), max(hmin, word), 3.0)
        else:
            lv = (max(hmin, cmax), cmax, cmax)
        for k in range(3):
            levels[k].append(max(lv[k], 1.5) + PAD_EM)
        maxs.append(max(levels[0][-1], cmax + PAD_EM))
    mins = next((lv for lv in levels if sum(lv) <= table_em), levels[-1])
    if mins is levels[1]:  # number headers that can have their longest word whole get it, cheapest first
        mins = list(mins)
        for j in sorted(range(len(mins)), key=lambda j: levels[0][j] - mins[j]):
            if sum(mins) + levels[0][j] - mins[j] <= table_em:
                mins[j] = levels[0][j]
    smin, smax = sum(mins), sum(maxs)
    if smax <= table_em:
        widths = maxs
    elif smin < table_em:
        widths = [lo + (hi - lo) * (table_em - smin) / (smax - smin) for lo, hi in zip(mins, maxs)]
    else:
        widths = mins
    total = sum(widths) or 1.0
    return [round(100.0 * w / total, 2) for w in widths]


#: Smaller fonts (body, header pt and the class in the template) for a wide per-area table whose headers and
#: words do not fit whole at 7 pt: a smaller font rather than words broken inside.
SMALL_FONTS = ((6.5, "small"), (6.0, "smaller"))


def fitted_widths(rows: list[list[str]], header: list[str], left: int = 2,
                  extra: list[list[str]] = ()) -> tuple[list[float], str]:
    """:func:`col_widths` at 7 pt, or at the largest of :data:`SMALL_FONTS` at which no header and no word
    has to break inside (else the smallest); returns the widths and the table's extra class ("" at 7 pt)."""
    need = _whole_words_em(rows, header, left, extra)
    for pt, cls in ((7.0, ""),) + SMALL_FONTS:
        if need <= TABLE_EM * 7.0 / pt:
            return col_widths(rows, header, left, extra, font_pt=pt), cls
    pt, cls = SMALL_FONTS[-1]  # even the smallest font breaks some word: it breaks the fewest
    return col_widths(rows, header, left, extra, font_pt=pt), cls


def _whole_words_em(rows, header, left, extra) -> float:
    """Width in em the table needs with no word broken (the first level of :func:`col_widths`)."""
    total = 0.0
    for j, head in enumerate(header):
        hmin = HEAD_EM * max((_text_em(w) for w in _words(head)), default=0.0)
        if j < left:
            need = max([hmin] + [_text_em(w) for r in rows if j < len(r) for w in _words(r[j])])
        else:
            need = max([hmin] + [_text_em(str(r[j])) for r in rows if j < len(r)]
                       + [1.1 * _text_em(str(r[j])) for r in extra if j < len(r)])
        total += max(need, 1.5) + PAD_EM
    return total


def report_context(result, pub, lang: str = "de", max_areas: int | None = None, pdf_max_areas=_CONFIG,
                   worker=None) -> dict:
    """Everything the template shows, already formatted in ``lang`` (de: 1.234,56 €; en: €1,234.56).

    Above ``max_areas`` Sozialräume (default ``output.max_areas_in_report``) the
    per-area tables show the areas at both ends of their main value and the
    allocation a summary per Bezirk, each with a sentence saying where the
    full table is (verteilung.xlsx, ergebnis.gpkg). Above ``pdf_max_areas``
    (default ``output.pdf_detail_tables_max_areas``; None: no limit) the PDF
    variant of the report shows, in place of each detail table
    (:data:`PDF_DETAIL_TABLES`), the sentence in ``pdf_notes`` saying where
    it is (see :func:`render_report`).

    ``worker``: a :class:`geoplan.report.pdf.PdfWorker` (``figures=True``) that
    draws some of the figures meanwhile (:mod:`geoplan.report.drawjobs`; the
    same PNGs); without one all are drawn here.
    """
    jobs = drawjobs.Figures(worker)
    try:
        return _report_context(result, pub, lang, max_areas, pdf_max_areas, jobs)
    finally:
        jobs.close()


def _report_context(result, pub, lang, max_areas, pdf_max_areas, jobs: drawjobs.Figures) -> dict:
    _ = gettext(lang)
    cfg = result.config
    f = result.frame
    areas = pub.areas
    eq = result.equity
    model = result.model
    alloc = result.allocation
    name_of = dict(zip(f["key"], f["name"]))
    if max_areas is None:
        max_areas = cfg.output.max_areas_in_report
    big = len(f) > max_areas
    if pdf_max_areas is _CONFIG:
        pdf_max_areas = cfg.output.pdf_detail_tables_max_areas

    col = {c[0]: c for c in pub.columns}

    def cols(names):
        return [col[n] for n in names if n in col]

    def header(columns):
        return [c[1] if lang == "de" else c[2] for c in columns]

    expo = result.config.model.exposure
    alloc_cols = cols(["key", "name", "bezirk", expo, "need_index", "expected_cases"]) + \
        [c for c in pub.columns if c[0].startswith("eur_")] + cols(["budget_eur", "budget_per_u21", "hze_cost_prev_eur", "change_pct"])
    need_cols = cols(["key", "name", expo, "hze_cases", "hze_per_1000", "hze_cases_forecast", "expected_cases",
                      "pi_low", "pi_high",
                      "expected_per_1000", "oe_ratio"])
    ind_cols = cols(["key", "name", "bezirk"]) + [c for c in pub.columns if c[0] in {i.name for i in result.catalogue.indicators}] \
        + cols(["need_index"])
    sorted_areas = areas.sort_values("key")

    total = int(f["budget_eur"].sum())
    summary = dict(eq.summary) if eq is not None else {}
    per = eq.per_area if eq is not None else pd.DataFrame()
    has_change = "change_eur" in per and per["change_eur"].notna().any()
    winners = per.sort_values(["change_eur", "key"], ascending=[False, True]).head(5) if has_change else per.head(0)
    losers = per.sort_values(["change_eur", "key"]).head(5) if has_change else per.head(0)

    # --- Bedarfsmodell -------------------------------------------------------------------------
    coefs = model.coefficients.copy()
    coef_rows = []
    for _i, r in coefs.iterrows():
        is_const = str(r["term"]) == "const"
        unit = _indicator_unit(result, str(r["term"]))
        coef_rows.append([
            _("Konstante") if is_const else coef_label(result, r, lang),
            "" if is_const else _sd_text(r.get("predictor_sd", np.nan), unit, lang),
            fmt.number(r["coef"], 3, lang), fmt.number(r["se"], 3, lang),
            fmt.number(r["irr"], 3, lang), f"{fmt.number(r['irr_low'], 3, lang)} – {fmt.number(r['irr_high'], 3, lang)}",
            (("< 0,001" if lang == "de" else "< 0.001") if r["p_value"] < 0.001 else fmt.number(r["p_value"], 3, lang)),
        ])
    cv = getattr(model, "cv", None)
    cv_rows = []
    labels_en = {"model_kfold": "Model, k-fold cross-validation", "model_blocked": "Model, spatially blocked cross-validation",
                 "baseline_prev": "Prior-year cases", "baseline_rate": "Citywide rate × population under 21"}
    if cv is not None and len(cv):
        for k, r in cv.iterrows():
            label = str(r.get("label", k)) if lang == "de" else labels_en.get(str(k), str(k))
            cv_rows.append([label, fmt.percent(100 * r.get("deviance_explained", np.nan), 1, lang),
                            fmt.number(r.get("mae_per_1000", np.nan), 2, lang)])
    mtext = model_text(result, lang)

    # the figures are drawn at the end (jobs.draw), some by the PDF worker meanwhile
    jobs.add("coefficients", figures.coefficient_plot, coefs, lang)
    if cv is not None and len(cv):
        jobs.add("cv", figures.cv_plot, cv, lang)
    if getattr(model, "calibration", None) is not None and len(model.calibration):
        # calibration_png reads only the model's calibration table: the worker is sent that, not the model
        jobs.add("calibration", figures.calibration_png, SimpleNamespace(calibration=model.calibration), lang)
    if eq is not None and getattr(eq, "curve", None) is not None:
        jobs.add("concentration", figures.concentration_curve_plot, eq.curve, summary.get("concentration_index", np.nan),
                 lang)
    jobs.add("budget_need", figures.budget_vs_need_plot, pd.DataFrame(f.drop(columns="geometry")), lang)
    if getattr(model, "funnel", None) is not None:
        mask = pub.mask["hze_cases"].to_numpy() if "hze_cases" in pub.mask else None
        jobs.add("funnel", figures.funnel_plot_png, model.funnel, mask, lang)
    from geoplan.report.mapping import map_jobs

    for key, func, args, kwargs in map_jobs(result, pub, lang):
        jobs.add_for_worker(key, func, *args, **kwargs)

    # --- Verteilung ----------------------------------------------------------------------------
    teil_rows = []
    tb = getattr(alloc, "teilbudgets", None)
    if tb is not None and len(tb):
        for _i, r in tb.iterrows():
            teil_rows.append([str(r.get("id", "")), *claims.teilbudget_texts(r, result.allocation_spec, lang),
                              fmt.euro(r.get("amount_eur", np.nan), 0, lang), _("ja") if r.get("distributed", True) else _("nein")])

    spec = result.allocation_spec
    comp_rows = []
    for comp in spec.components:
        amount = f[f"eur_{comp.name}"].sum() if f"eur_{comp.name}" in f.columns else np.nan
        comp_rows.append([comp.label or comp.name, voc_label("type." + comp.type, lang, comp.type), fmt.percent(comp.weight * 100, 1, lang), fmt.euro(amount, 0, lang),
                          claims.component_text(comp, result, lang)])
    corridor = spec.corridor
    corridor_text = ""
    if corridor is not None:
        parts = []
        if corridor.max_decrease_pct is not None:
            parts.append((f"höchstens {fmt.number(corridor.max_decrease_pct, 1, lang)} % weniger" if lang == "de" else
                          f"at most {fmt.number(corridor.max_decrease_pct, 1, lang)}% less"))
        if corridor.max_increase_pct is not None:
            parts.append((f"höchstens {fmt.number(corridor.max_increase_pct, 1, lang)} % mehr" if lang == "de" else
                          f"at most {fmt.number(corridor.max_increase_pct, 1, lang)}% more"))
        ref = pub.label(corridor.reference_column, lang) if corridor.reference_column else ""
        if parts:
            corridor_text = ((", ".join(parts) + f" als „{ref}“") if lang == "de" else (", ".join(parts) + f" than '{ref}'"))
        for attr, de, en in (("floor_column", "nie unter", "never below"), ("cap_column", "nie über", "never above")):
            if getattr(corridor, attr):
                corridor_text += ("; " if corridor_text else "") + (de if lang == "de" else en) + f" '{getattr(corridor, attr)}'"
        for attr, de, en in (("floor_eur", "Mindestbetrag", "minimum"), ("cap_eur", "Höchstbetrag", "maximum")):
            if getattr(corridor, attr) is not None:
                corridor_text += ("; " if corridor_text else "") + (de if lang == "de" else en) + " " + fmt.euro(getattr(corridor, attr), 0, lang)
    binding = getattr(alloc, "binding", None)
    binding_rows = []
    if binding is not None and len(binding):
        kcol = "key" if "key" in binding.columns else binding.columns[0]
        for _i, r in binding.sort_values(kcol).iterrows():
            binding_rows.append([str(r[kcol]), name_of.get(r[kcol], ""), _(str(r["bound"])), _(str(r["side"])),
                                 fmt.euro(r["formula_eur"], 0, lang), fmt.euro(r["budget_eur"], 0, lang),
                                 fmt.euro(r["budget_eur"] - r["formula_eur"], 0, lang)])
    n_binding = len(binding_rows)  # the table may be shortened below (above output.max_areas_in_report)
    n_binding_up = int((binding["side"] == "oben").sum()) if binding is not None and len(binding) else 0
    n_binding_down = int((binding["side"] == "unten").sum()) if binding is not None and len(binding) else 0

    short = {c.name: (c.label or c.name).split(" ")[0] for c in spec.components}
    explanations = []
    for k, t in result.explanations.items():  # sensitivity.explain of the largest and smallest budgets
        t = t.copy()
        t["short"] = [short.get(p, _("Korridor") if p == "korridor" else _("Budget")) for p in t["position"]]
        explanations.append((f"{k} {name_of.get(k, '')}", t))
    if explanations:
        jobs.add("waterfall", figures.waterfall_grid, explanations, lang)
    explain_header, explain_rows = explain_table(explanations, lang)

    # --- Verteilungsgerechtigkeit: distance from target, winners/losers, observed vs expected -----
    dist_rows = []
    dist_total = {}
    if "distance_to_target_eur" in per and per["distance_to_target_eur"].notna().any():
        d = per.sort_values("key")
        for _i, r in d.iterrows():
            y = r.get("years_to_target", np.nan)
            years = "–" if y is None or not np.isfinite(y) else fmt.number(y, 0, lang)
            if summary.get("never_at_target") and str(r["key"]) in summary["never_at_target"]:
                years = _("nie")
            dist_rows.append([str(r["key"]), str(r.get("name", name_of.get(r["key"], ""))), fmt.euro(r["prior_eur"], 0, lang),
                              fmt.euro(r["target_eur"], 0, lang), fmt.euro(r["distance_to_target_eur"], 0, lang),
                              fmt.euro(r["budget_eur"], 0, lang), years])
        until = summary.get("years_until_all_at_target")
        dist_total = {
            "prior": fmt.euro(summary.get("total_prior_eur"), 0, lang),
            "target": fmt.euro(float(per["target_eur"].sum()), 0, lang),
            "distance": fmt.euro(summary.get("total_distance_to_target_eur"), 0, lang),
            "abs": fmt.euro(summary.get("sum_abs_distance_to_target_eur"), 0, lang),
            "budget": fmt.euro(summary.get("total_budget_eur"), 0, lang),
            "max_years": fmt.number(until, 0, lang) if until is not None else ("–" if not summary.get("never_at_target") else _("nie")),
        }
        dd = per.assign(label=[f"{k} {n}" for k, n in zip(per["key"], per.get("name", per["key"]))])
        jobs.add("distance", figures.distance_plot, dd, lang, max_areas=max_areas)

    # observed vs expected from the published (suppressed) ratio only
    oe = pd.to_numeric(areas["oe_ratio"], errors="coerce") if "oe_ratio" in areas else pd.Series(dtype=float)
    oe_stats = None
    if oe.notna().any():
        flags = model.funnel.get("flag_nb", model.funnel.get("flag")) if getattr(model, "funnel", None) is not None else None
        hidden = pub.mask["hze_cases"].to_numpy(bool) if "hze_cases" in pub.mask else np.zeros(len(areas), bool)
        n_high = n_low = 0
        if flags is not None and len(flags) == len(areas):
            fl = flags.astype(str).to_numpy()
            n_high = int(((fl == "auffällig hoch") & ~hidden).sum())
            n_low = int(((fl == "auffällig niedrig") & ~hidden).sum())
        oe_stats = {"n": int(oe.notna().sum()), "n_above": int((oe > cfg.model.oe_high).sum()), "n_below": int((oe < cfg.model.oe_low).sum()),
                    "n_high": n_high, "n_low": n_low, "n_hidden": int(hidden.sum())}

    from geoplan.report import vocabulary as voc

    ind_names = {i.name: ((i.label_en or i.label) if lang == "en" else i.label) for i in result.catalogue.indicators}
    base_dir = getattr(cfg, "base_dir", None)
    notes = [voc.humanize_note(n, lang, base_dir, ind_names) for n in result.notes]
    catalogue_rows = [
        [ind_names[i.name], voc.label("unit." + i.unit, lang, i.unit), voc.label("direction." + i.direction, lang, i.direction),
         fmt.number(i.weight, 2, lang), i.source, i.reference_date,
         ", ".join(voc.label(b, lang) for b in i.base) if i.base else voc.label(i.column or "", lang, i.column or "")]
        for i in result.catalogue.indicators
    ]
    sens = sensitivity_context(result, lang, max_areas=max_areas, jobs=jobs)
    bym2 = bym2_context(result, lang)

    alloc_header, need_header, ind_header = header(alloc_cols), header(need_cols), header(ind_cols)
    alloc_rows = table_rows(sorted_areas, alloc_cols, lang)
    need_rows = table_rows(sorted_areas, need_cols, lang)
    ind_rows = table_rows(sorted_areas, ind_cols, lang)
    more = {}  # table -> the sentence under it when it is shortened
    group_rows = []
    sheet = lambda key: voc.label("sheet." + key, lang)  # noqa: E731  (verteilung.xlsx's sheet names)
    dist_sheet = sheet("path") if getattr(eq, "convergence", None) is not None else sheet("allocation")
    if big:
        n = len(f)
        alloc_rows = _extremes(alloc_rows, sorted_areas["budget_eur"])
        more["alloc"] = _more_note(n, col["budget_eur"][1 if lang == "de" else 2], sheet("allocation"), lang)
        group = "bezirk" if "bezirk" in sorted_areas.columns else None
        if group is not None:
            group_rows = _group_rows(sorted_areas, group, expo, lang)
        if "need_index" in sorted_areas:
            ind_rows = _extremes(ind_rows, sorted_areas["need_index"])
            more["ind"] = _more_note(n, col["need_index"][1 if lang == "de" else 2], sheet("allocation"), lang)
        else:
            ind_rows = ind_rows[:0]
        key_need = "expected_per_1000" if "expected_per_1000" in sorted_areas else "expected_cases"
        need_rows = _extremes(need_rows, sorted_areas[key_need])
        more["need"] = _more_note(n, col[key_need][1 if lang == "de" else 2] if key_need in col else key_need,
                                  sheet("allocation"), lang)
        if dist_rows:
            dist_rows = _extremes(dist_rows, per.sort_values("key")["distance_to_target_eur"])
            more["dist"] = _more_note(n, _("Abstand"), dist_sheet, lang, gpkg=False)
        if sens:
            sens["rows"] = _extremes(sens["rows"], sens["range_values"])
            more["sens"] = _more_note(n, _("Spanne 5–95 %"), sheet("sensitivity"), lang, gpkg=False)
        if binding_rows:
            adjustment = binding.sort_values("key" if "key" in binding.columns else binding.columns[0])
            binding_rows = _extremes(binding_rows, adjustment["budget_eur"] - adjustment["formula_eur"])
            more["binding"] = _more_note(n, _("Korridor-Anpassung"), sheet("allocation"), lang)
        if bym2:
            a = result.uncertainty.areas.sort_values("key")
            bym2["area_rows"] = _extremes(bym2["area_rows"], a["p_budget_below_need"])
            # the intervals per area are columns of the allocation sheet and the GeoPackage (the BYM2 sheet holds
            # the model's parameters)
            more["bym2"] = _more_note(n, _("Wahrscheinlichkeit, dass das Budget unter dem Bedarf liegt"),
                                      sheet("allocation"), lang)
    alloc_sums = [_column_total(sorted_areas, c, lang) for c in alloc_cols[3:]]
    specs = {"alloc": (alloc_rows, alloc_header, 3, [["", "", ""] + alloc_sums]),
             "need": (need_rows, need_header, 2, []),
             "ind": (ind_rows, ind_header, 3, [])}
    dist_header = [_("Schlüssel"), _("Sozialraum"), _("Vorjahr"), _("Zielwert (Formel)"), _("Abstand"), _("Budget"),
                   _("Jahre bis Ziel")]
    sens_header = [_("Schlüssel"), _("Sozialraum"), _("Budget"), "5 %", "95 %", _("Spanne 5–95 %"), _("Rang"),
                   _("Rangspanne 5–95 %"), "draws with same rank" if lang == "en" else "Ziehungen mit gleichem Rang"]
    bym2_header = [_("Schlüssel"), _("Sozialraum"), _("Erwartete Fälle"), bym2.get("interval", ""), _("Budget"),
                   _("Bedarfsgerechter Zielwert"),
                   bym2.get("interval", "") + (" of the target" if lang == "en" else " des Zielwerts"),
                   _("Wahrscheinlichkeit, dass das Budget unter dem Bedarf liegt")] if bym2 else []
    if dist_rows:
        specs["dist"] = (dist_rows, dist_header, 2,
                         [["", ""] + [str(dist_total.get(k, "")) for k in
                                      ("prior", "target", "distance", "budget", "max_years")]])
    if sens:
        specs["sens"] = (sens["rows"], sens_header, 2, [])
    if bym2:
        specs["bym2"] = (bym2["area_rows"], bym2_header, 2, [])
    widths: dict = {}
    for k, (rows_k, header_k, left_k, extra_k) in specs.items():  # widths in %, and the class of a smaller font
        widths[k], widths[k + "_cls"] = fitted_widths(rows_k, header_k, left_k, extra_k)

    conv_rows = [[fmt.number(y, 0, lang), fmt.number(n, 0, lang), fmt.percent(100 * n / max(len(f), 1), 0, lang)]
                 for y, n in (summary.get("convergence") or [])][:10]
    sections = section_numbers(bool(sens))
    pdf_notes = {}  # detail table -> the sentence the PDF shows in its place
    if pdf_max_areas is not None and len(f) > pdf_max_areas:
        def section(anchor):  # number and heading, as the report's heading shows them
            num, head = sections[anchor], dict(SECTIONS)[anchor]
            return f"{num} „{_(head)}“" if lang == "de" else f"{num} '{_(head)}'"

        shown = {"ind": bool(ind_rows), "need": bool(need_rows), "bym2": bool(bym2), "binding": bool(binding_rows),
                 "dist": bool(dist_rows), "sens": bool(sens)}
        where = {"ind": (section("indikatoren"), sheet("allocation")),
                 "need": (section("bedarfsmodell"), sheet("allocation")),
                 # the BYM2 intervals per area are columns of the allocation sheet (the BYM2 sheet has the parameters)
                 "bym2": (section("bedarfsmodell"), sheet("allocation")),
                 "binding": (section("verteilung"), sheet("allocation")),
                 "dist": (section("gerechtigkeit"), dist_sheet),
                 "sens": (section("sensitivitaet") if sens else "", sheet("sensitivity"))}
        pdf_notes = {k: _pdf_note(k, *where[k], len(f), pdf_max_areas, big, lang,
                                  n_rows=n_binding if k == "binding" else None) for k in PDF_DETAIL_TABLES if shown[k]}
    figs = {key: figures.data_uri(png) for key, png in jobs.draw().items()}
    if sens:
        sens["fig"] = figs.pop("sensitivity")
    return {
        "sections": sections,
        "pdf_notes": pdf_notes,
        "claims": claims.report_claims(result, lang),
        "bym2": bym2,
        "more": more,
        "widths": widths,
        "dist_header": dist_header,
        "sens_header": sens_header,
        "bym2_header": bym2_header,
        "group_rows": group_rows,
        "settle_rules": _settle_rules(result, lang),
        "conv_rows": conv_rows,
        "lang": lang,
        "title": cfg.title,
        "region": cfg.region,
        "budget_year": cfg.budget_year,
        "simulated": result.simulated,
        "case_list": cfg.hze.case_list is not None,
        "n_areas": len(f),
        "total": total,
        "total_fmt": fmt.euro(total, 0, lang),
        "pop_u21": fmt.number(f[cfg.model.exposure].sum(), 0, lang),
        "per_u21": fmt.euro(total / f[cfg.model.exposure].sum(), 2, lang),
        "summary": summary,
        "ci": fmt.number(summary.get("concentration_index", np.nan), 3, lang),
        "gini": fmt.number(summary.get("gini_budget_per_u21", np.nan), 3, lang),
        "theil": fmt.number(summary.get("theil", np.nan), 4, lang),
        "theil_between": fmt.number(summary.get("theil_between", np.nan), 4, lang),
        "theil_within": fmt.number(summary.get("theil_within", np.nan), 4, lang),
        "n_winners": summary.get("n_winners"),
        "n_losers": summary.get("n_losers"),
        "n_unchanged": summary.get("n_unchanged"),
        "total_change": fmt.euro(summary.get("total_change_eur"), 0, lang),
        "winners": [[name_of.get(r["key"], r["key"]), fmt.euro(r["change_eur"], 0, lang), fmt.percent(r.get("change_pct", np.nan), 1, lang)]
                    for _i, r in winners.iterrows()],
        "losers": [[name_of.get(r["key"], r["key"]), fmt.euro(r["change_eur"], 0, lang), fmt.percent(r.get("change_pct", np.nan), 1, lang)]
                   for _i, r in losers.iterrows()],
        "alloc_header": alloc_header,
        "alloc_rows": alloc_rows,
        "alloc_kinds": [c[3] for c in alloc_cols],
        "alloc_total": fmt.euro(total, 0, lang),
        "alloc_budget_col": [c[0] for c in alloc_cols].index("budget_eur") if "budget_eur" in col else -1,
        "alloc_ncols": len(alloc_cols),
        # every money column (and the residents) totalled; per-head and % columns as ratios of the totals
        "alloc_sums": alloc_sums,
        "need_header": need_header,
        "need_rows": need_rows,
        "ind_header": ind_header,
        "ind_rows": ind_rows,
        "coef_rows": coef_rows,
        "cv_rows": cv_rows,
        "cv_reading": cv_reading(cv, lang),
        "mtext": mtext,
        "model_fit": model.fit,
        "dispersion": fmt.number(model.fit.get("dispersion", np.nan), 2, lang),
        "dev_explained": fmt.percent(100 * model.fit.get("deviance_explained", np.nan), 1, lang),
        "moran": getattr(model, "moran", None),
        "moran_text": moran_text(getattr(model, "moran", None), lang),
        "comp_rows": comp_rows,
        "corridor_text": corridor_text,
        "binding_rows": binding_rows,
        "n_binding": n_binding,
        "n_binding_up": n_binding_up,
        "n_binding_down": n_binding_down,
        "explain_rows": explain_rows,
        "explain_header": explain_header,
        "teil_rows": teil_rows,
        "retained": fmt.euro(getattr(alloc, "retained_eur", 0), 0, lang),
        "has_retained": bool(getattr(alloc, "retained_eur", 0)),
        "dist_rows": dist_rows,
        "dist_total": dist_total,
        "oe_stats": oe_stats,
        "sens": sens,
        "catalogue_rows": catalogue_rows,
        "inputs": result.inputs,
        "notes": notes,
        "figs": figs,
        "k": pub.k,
        "n_suppressed": pub.n_suppressed,
        "predictors": [ind_names.get(p, voc.label(p, lang)) for p in cfg.model.predictors],
        "sources": cfg.sources,
        "index_method": voc.label("method." + cfg.indicators.index_method, lang, cfg.indicators.index_method),
        "fmt": fmt,
        "num": lambda v, d=0: fmt.number(v, d, lang),
    }


def explain_table(explanations: list[tuple[str, pd.DataFrame]], lang: str = "de") -> tuple[list[str], list[list[str]]]:
    """Header and rows of the table beside the waterfalls (``sensitivity.explain`` tables, one per area).

    One column per position: the components (headed by their configured label, as in the
    components table), the corridor adjustment and the budget. A budget the corridor does not
    move has no ``korridor`` position; its cell there reads 0 € so the columns stay aligned.
    """
    if not explanations:
        return [], []
    _ = gettext(lang)
    labels: dict[str, str] = {}
    for _title, t in explanations:
        for p, lab in zip(t["position"], t["label"]):
            labels.setdefault(str(p), str(lab))
    order = [p for p in labels if p not in ("korridor", "budget")] + [p for p in ("korridor", "budget") if p in labels]
    header = [_("Sozialraum")] + [_(labels[p]) if p in ("korridor", "budget") else labels[p] for p in order]
    rows = []
    for title, t in explanations:
        amount = dict(zip(t["position"].astype(str), t["amount_eur"]))
        rows.append([title] + [fmt.euro(amount.get(p, 0), 0, lang) for p in order])
    return header, rows


def _settle_rules(result, lang: str) -> list[list[str]]:
    if getattr(result, "settlement", None) is None:
        return []
    from geoplan.stages.settlement import describe_settlement

    _ = gettext(lang)
    rules = result.settlement.rules if lang == "de" else describe_settlement(result.config.settlement, lang)
    return [[_(str(r["regel"])), str(r["beschreibung"])] for _i, r in rules.iterrows()]


def _column_total(areas: pd.DataFrame, c, lang: str) -> str:
    name, kind = c[0], c[3]
    if kind == "euro" or name in ("pop_u21", "pop_total"):
        return format_cell(float(pd.to_numeric(areas[name], errors="coerce").sum()), kind, lang)
    if name == "budget_per_u21" and "pop_u21" in areas:
        return format_cell(float(areas["budget_eur"].sum() / areas["pop_u21"].sum()), kind, lang)
    if name == "change_pct" and "hze_cost_prev_eur" in areas:
        prior = float(areas["hze_cost_prev_eur"].sum())
        return format_cell((float(areas["budget_eur"].sum()) - prior) / prior * 100 if prior else np.nan, kind, lang)
    return ""


def render_report(result, pub, lang: str = "de", max_areas: int | None = None, *, pdf: bool = False,
                  pdf_max_areas=_CONFIG) -> str:
    """bericht.html as text; ``max_areas``, ``pdf_max_areas``: see :func:`report_context`.

    ``pdf=True``: the text bericht.pdf is rendered from — the same report, with
    the detail tables above ``pdf_max_areas`` replaced by the sentence saying
    where they are.
    """
    return render_reports(result, pub, lang, max_areas, pdf_max_areas=pdf_max_areas)[1 if pdf else 0]


def render_reports(result, pub, lang: str = "de", max_areas: int | None = None, *,
                   pdf_max_areas=_CONFIG, worker=None) -> tuple[str, str]:
    """bericht.html and the text of bericht.pdf, from one context (the figures are drawn once).

    The PDF's text is the same string object as the HTML when the PDF leaves
    no table out (at most ``pdf_max_areas`` Sozialräume). ``worker``: the PDF
    worker, which draws some of the figures (see :func:`report_context`).
    """
    from geoplan.report.i18n import relabel_html, set_labels

    set_labels(result)
    ctx = report_context(result, pub, lang, max_areas=max_areas, pdf_max_areas=pdf_max_areas, worker=worker)
    template = _env(lang).get_template("bericht.html.j2")
    html = relabel_html(template.render(**ctx, pdf=False), lang)
    if not ctx["pdf_notes"]:
        return html, html
    return html, relabel_html(template.render(**ctx, pdf=True), lang)


#: The PDF's text while the second process renders it, in the folder the outputs are written to (removed when
#: the PDF is done, failed or cancelled; the outputs appear only after that, see geoplan.report.write_outputs).
PDF_SOURCE = ".bericht-pdf.html"


def write_report(result, pub, out_dir: Path, *, lang: str = "de", pdf: bool = True, background: bool = False,
                 worker: PdfWorker | None = None, max_areas: int | None = None, pdf_max_areas=_CONFIG):
    """Write bericht.html and (``pdf``) bericht.pdf; return the paths.

    With ``background=True`` the PDF is rendered by a second process
    (:func:`start_pdf`; ``worker``: one started earlier, see
    :class:`geoplan.report.pdf.PdfWorker`) and the return value is
    ``(paths, pending)``: the caller writes the other outputs meanwhile and
    calls ``pending.wait()`` (or ``pending.cancel()`` on an error) before it
    uses the folder. ``max_areas``, ``pdf_max_areas``: see :func:`render_report`;
    when the PDF leaves tables out, its text goes to the worker in
    :data:`PDF_SOURCE`, which is removed when the PDF is done. A worker
    started with ``figures=True`` draws some of the figures first.
    """
    html, pdf_html = render_reports(result, pub, lang, max_areas=max_areas,
                                    pdf_max_areas=pdf_max_areas if pdf else None,  # no PDF: no variant
                                    worker=worker if pdf and background else None)
    path = out_dir / "bericht.html"
    path.write_text(html, encoding="utf-8")
    written = [path]
    pending = None
    if pdf:
        pdf_path = out_dir / "bericht.pdf"
        if background:
            source = path
            if pdf_html is not html:
                source = out_dir / PDF_SOURCE
                try:
                    source.write_text(pdf_html, encoding="utf-8")
                except BaseException:
                    source.unlink(missing_ok=True)
                    raise
            pending = start_pdf(source, out_dir, worker, remove_source=source != path)
        else:
            _pdf_from_html(pdf_html, out_dir, pdf_path)
        written.append(pdf_path)
    return (written, pending) if background else written


def write_map(result, pub, out_dir: Path, *, lang: str = "de") -> list[Path]:
    from geoplan.report.mapping import write_karte

    return [write_karte(result, pub, out_dir / "karte.html", lang=lang)]
