"""bericht.html / bericht.pdf and karte.html.

The HTML report is self-contained: CSS inline, figures as data URIs, no
script or font from any host. The PDF is rendered from the same HTML by
WeasyPrint (A4, page numbers, table of contents).
"""

from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from geoplan import fmt
from geoplan.report import figures
from geoplan.report.i18n import gettext

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
    "euro": (fmt.euro, 0), "euro2": (fmt.euro, 2), "pct": (fmt.percent, 1),
    "index": (fmt.number, 2), "ratio": (fmt.number, 2), "rate": (fmt.number, 1),
}


def table_rows(df: pd.DataFrame, columns: list[tuple[str, str, str, str]], lang: str = "de") -> list[list[str]]:
    return [[format_cell(row[c], kind, lang) for c, _, _, kind in columns] for _, row in df.iterrows()]


def _env(lang: str = "de") -> Environment:
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
    lines = [f"{labels_en.get(k, k)}: deviance explained {fmt.number(100 * r['deviance_explained'], 1, lang)} %, mean absolute "
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
    n = lambda v: fmt.number(100 * v, 1, lang)  # noqa: E731
    if lang == "de":
        parts = [f"Das Modell erklärt außerhalb der Stichprobe {n(best_model)} % der Devianz"]
        if np.isfinite(rate):
            parts.append(f"; die stadtweite Quote je Einwohner unter 21 erklärt {n(rate)} %, das Modell sagt also weit "
                         "besser voraus als eine Verteilung nur nach Köpfen")
        text = "".join(parts) + "."
        if np.isfinite(prev) and prev > best_model:
            text += (f" Die Vorjahresfälle sagen noch besser voraus ({n(prev)} %): Fallzahlen ändern sich von Jahr zu Jahr "
                     "wenig. Trotzdem sollte eine Budgetformel nicht auf Vorjahresfällen beruhen: sie hängen von der "
                     "bisherigen Praxis ab – wie viele Hilfen ein Träger bewilligt bekam, wie das Angebot im Sozialraum "
                     "aussieht –, und diese Praxis beeinflussen die Leistungserbringer selbst. Wer mehr Fälle erzeugt, "
                     "bekäme mehr Geld; präventive, fallvermeidende Arbeit würde bestraft. Deshalb stützt sich die Formel "
                     "auf Sozialstrukturindikatoren, die die Träger nicht beeinflussen können (so auch das ISA-Modell "
                     "für Sozialraumbudgets).")
        elif np.isfinite(prev):
            text += f" Die Vorjahresfälle erklären {n(prev)} %."
        return text
    text = f"Out of sample, the model explains {n(best_model)} % of the deviance"
    if np.isfinite(rate):
        text += (f"; the citywide rate per resident under 21 explains {n(rate)} %, so the model predicts far better than a "
                 "split by head count alone")
    text += "."
    if np.isfinite(prev) and prev > best_model:
        text += (f" Prior-year cases predict even better ({n(prev)} %): case numbers change little from year to year. A "
                 "budget formula should still not rest on prior-year cases: they depend on past practice – how many "
                 "cases a provider had approved, what services exist in the area – and providers influence that "
                 "practice themselves. Whoever produced more cases would get more money, and preventive work that "
                 "avoids cases would be penalised. The formula therefore uses social-structure indicators that "
                 "providers cannot influence (as in the ISA model for Sozialraum budgets).")
    elif np.isfinite(prev):
        text += f" Prior-year cases explain {n(prev)} %."
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


def component_text(comp, result, lang: str = "de") -> str:
    """What a formula component distributes by, in words."""
    label_of = {i.name: i.label for i in result.catalogue.indicators}
    de = lang == "de"
    t = comp.type
    if t == "fixed":
        return (f"nach '{comp.column}'" if comp.column else "gleicher Betrag je Sozialraum") if de else \
            (f"by '{comp.column}'" if comp.column else "equal amount per Sozialraum")
    if t == "population":
        cols = comp.columns or [comp.column]
        return ("Anteil an " if de else "share of ") + " + ".join(cols)
    if t == "model":
        return ("Anteil an den erwarteten HzE-Fällen des Bedarfsmodells" if de else
                "share of the need model's expected HzE cases") if comp.column == "expected_cases" else \
            ("Anteil an " if de else "share of ") + comp.column
    if t == "indicator":
        ws = ", ".join(f"{label_of.get(k, k)} {fmt.number(v * 100 / sum(comp.indicators.values()), 0, lang)} %"
                       for k, v in comp.indicators.items())
        base = f" × {comp.base}" if comp.base else ""
        return (f"gewichtete Indikatoren ({ws}){base}" if de else f"weighted indicators ({ws}){base}")
    if t == "prior_year":
        return ("Anteil an den Vorjahreskosten (" if de else "share of prior-year costs (") + ", ".join(comp.columns) + ")"
    if t == "fachleistungsstunden":
        return "Fachleistungsstunden × Stundensatz" if de else "specialist hours × hourly rate"
    return ""


def sensitivity_context(result, lang: str = "de") -> dict | None:
    """The run's weight-sensitivity Monte Carlo (``result.sensitivity``, computed by the pipeline), formatted.

    None when the run has none (``sensitivity.n_draws: 0``); the report then leaves the section out.
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
    return {
        "rows": rows,
        "n_draws": sens.n_draws,
        "concentration": fmt.number(conc, 0, lang) if conc is not None else "–",
        "max_range_pct": fmt.percent(float(t["range_pct"].max()), 1, lang) if "range_pct" in t else "–",
        "median_range_pct": fmt.percent(float(t["range_pct"].median()), 1, lang) if "range_pct" in t else "–",
        "fig": figures.data_uri(figures.sensitivity_plot(t, lang)),
    }


def report_context(result, pub, lang: str = "de") -> dict:
    """Everything the template shows, already formatted in ``lang`` (de: 1.234,56 €; en: €1,234.56)."""
    _ = gettext(lang)
    cfg = result.config
    f = result.frame
    areas = pub.areas
    eq = result.equity
    model = result.model
    alloc = result.allocation
    name_of = dict(zip(f["key"], f["name"]))

    col = {c[0]: c for c in pub.columns}

    def cols(names):
        return [col[n] for n in names if n in col]

    def header(columns):
        return [c[1] if lang == "de" else c[2] for c in columns]

    expo = result.config.model.exposure
    alloc_cols = cols(["key", "name", "bezirk", expo, "need_index", "expected_cases"]) + \
        [c for c in pub.columns if c[0].startswith("eur_")] + cols(["budget_eur", "budget_per_u21", "hze_cost_prev_eur", "change_pct"])
    need_cols = cols(["key", "name", expo, "hze_cases", "hze_per_1000", "expected_cases", "pi_low", "pi_high",
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
            _("Konstante") if is_const else str(r.get("label", r["term"])),
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

    figs = {"coefficients": figures.data_uri(figures.coefficient_plot(coefs, lang))}
    if cv is not None and len(cv):
        figs["cv"] = figures.data_uri(figures.cv_plot(cv, lang))
    if getattr(model, "calibration", None) is not None and len(model.calibration):
        figs["calibration"] = figures.data_uri(figures.calibration_png(model, lang))
    if eq is not None and getattr(eq, "curve", None) is not None:
        figs["concentration"] = figures.data_uri(figures.concentration_curve_plot(eq.curve, summary.get("concentration_index", np.nan), lang))
    figs["budget_need"] = figures.data_uri(figures.budget_vs_need_plot(pd.DataFrame(f.drop(columns="geometry")), lang))
    if getattr(model, "funnel", None) is not None:
        mask = pub.mask["hze_cases"].to_numpy() if "hze_cases" in pub.mask else None
        figs["funnel"] = figures.data_uri(figures.funnel_plot_png(model.funnel, mask, lang))
    from geoplan.report.mapping import report_maps

    figs.update(report_maps(result, pub, lang))

    # --- Verteilung ----------------------------------------------------------------------------
    teil_rows = []
    tb = getattr(alloc, "teilbudgets", None)
    if tb is not None and len(tb):
        for _i, r in tb.iterrows():
            teil_rows.append([str(r.get("id", "")), str(r.get("label", "")), str(r.get("rule", "")),
                              fmt.euro(r.get("amount_eur", np.nan), 0, lang), _("ja") if r.get("distributed", True) else _("nein")])

    spec = result.allocation_spec
    comp_rows = []
    for comp in spec.components:
        amount = f[f"eur_{comp.name}"].sum() if f"eur_{comp.name}" in f.columns else np.nan
        comp_rows.append([comp.label or comp.name, comp.type, fmt.percent(comp.weight * 100, 1, lang), fmt.euro(amount, 0, lang),
                          component_text(comp, result, lang)])
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
    n_binding_up = int((binding["side"] == "oben").sum()) if binding is not None and len(binding) else 0
    n_binding_down = int((binding["side"] == "unten").sum()) if binding is not None and len(binding) else 0

    short = {c.name: (c.label or c.name).split(" ")[0] for c in spec.components}
    explanations = []
    for k, t in result.explanations.items():  # sensitivity.explain of the largest and smallest budgets
        t = t.copy()
        t["short"] = [short.get(p, _("Korridor") if p == "korridor" else _("Budget")) for p in t["position"]]
        explanations.append((f"{k} {name_of.get(k, '')}", t))
    if explanations:
        figs["waterfall"] = figures.waterfall_grid(explanations, lang)
        figs["waterfall"] = figures.data_uri(figs["waterfall"])
    explain_rows = []
    for title, t in explanations:
        explain_rows.append([title] + [fmt.euro(a, 0, lang) for a in t["amount_eur"]])
    explain_header = [_("Sozialraum")] + [str(l) if lang == "de" else str(p) for p, l in
                                          zip(explanations[0][1]["position"], explanations[0][1]["label"])] if explanations else []

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
        figs["distance"] = figures.data_uri(figures.distance_plot(dd, lang))

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

    notes = [n for n in result.notes]
    catalogue_rows = [
        [i.label, i.unit, i.direction, fmt.number(i.weight, 2, lang), i.source, i.reference_date,
         ", ".join(i.base) if i.base else (i.column or "")]
        for i in result.catalogue.indicators
    ]
    sens = sensitivity_context(result, lang)
    from geoplan.report.claims import report_claims

    conv_rows = [[fmt.number(y, 0, lang), fmt.number(n, 0, lang), fmt.percent(100 * n / max(len(f), 1), 0, lang)]
                 for y, n in (summary.get("convergence") or [])][:10]
    return {
        "claims": report_claims(result, lang),
        "settle_rules": _settle_rules(result, lang),
        "conv_rows": conv_rows,
        "lang": lang,
        "title": cfg.title,
        "region": cfg.region,
        "budget_year": cfg.budget_year,
        "simulated": result.simulated,
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
        "alloc_header": header(alloc_cols),
        "alloc_rows": table_rows(sorted_areas, alloc_cols, lang),
        "alloc_kinds": [c[3] for c in alloc_cols],
        "alloc_total": fmt.euro(total, 0, lang),
        "alloc_budget_col": [c[0] for c in alloc_cols].index("budget_eur") if "budget_eur" in col else -1,
        "alloc_ncols": len(alloc_cols),
        # every money column (and the residents) totalled; per-head and % columns as ratios of the totals
        "alloc_sums": [_column_total(sorted_areas, c, lang) for c in alloc_cols[3:]],
        "need_header": header(need_cols),
        "need_rows": table_rows(sorted_areas, need_cols, lang),
        "ind_header": header(ind_cols),
        "ind_rows": table_rows(sorted_areas, ind_cols, lang),
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
        "predictors": [next((i.label for i in result.catalogue.indicators if i.name == p), p) for p in cfg.model.predictors],
        "sources": cfg.sources,
        "index_method": cfg.indicators.index_method,
        "fmt": fmt,
        "num": lambda v, d=0: fmt.number(v, d, lang),
    }


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


def render_report(result, pub, lang: str = "de") -> str:
    from geoplan.report.i18n import relabel_html

    return relabel_html(_env(lang).get_template("bericht.html.j2").render(**report_context(result, pub, lang)), lang)


@contextmanager
def _fixed_font_timestamp():
    """Set SOURCE_DATE_EPOCH for the PDF's font subsets (fixed bytes), unless the user set it."""
    if "SOURCE_DATE_EPOCH" in os.environ:
        yield
        return
    os.environ["SOURCE_DATE_EPOCH"] = "946684800"  # 2000-01-01: any constant will do
    try:
        yield
    finally:
        os.environ.pop("SOURCE_DATE_EPOCH", None)


def _pdf_from_html(html: str, out_dir: Path, pdf_path: Path) -> None:
    from weasyprint import HTML

    # the PDF's file identifier is derived from the report text, so the same report gives the same bytes
    ident = hashlib.sha256(html.encode("utf-8")).hexdigest()[:32].encode("ascii")
    # fontTools stamps each embedded font subset with "now" unless SOURCE_DATE_EPOCH is set
    with _fixed_font_timestamp():
        # PDF/UA-1: tagged structure, document language and title for screen readers (BITV 2.0)
        HTML(string=html, base_url=str(out_dir)).write_pdf(pdf_path, uncompressed_pdf=False, pdf_identifier=ident,
                                                           pdf_variant="pdf/ua-1")


def _pdf_child() -> None:  # pragma: no cover - runs in the second process (tested through finish_pdf)
    """Entry point of the PDF process: argv = bericht.html, output folder, bericht.pdf."""
    import sys

    html_path, out_dir, pdf_path = sys.argv[1:4]
    _pdf_from_html(Path(html_path).read_text(encoding="utf-8"), Path(out_dir), Path(pdf_path))


class PendingPdf:
    """A PDF being rendered by a second process; :meth:`wait` returns its path or raises."""

    def __init__(self, proc, pdf_path: Path, err_path: Path):
        self.proc, self.path, self._err = proc, pdf_path, err_path

    def wait(self) -> Path:
        code = self.proc.wait()
        err = self._err.read_text(encoding="utf-8", errors="replace") if self._err.exists() else ""
        self._err.unlink(missing_ok=True)
        if code != 0:
            from geoplan.errors import GeoplanError

            self.path.unlink(missing_ok=True)
            raise GeoplanError(
                "Der PDF-Bericht konnte nicht erstellt werden.",
                file=self.path,
                found=err.strip().splitlines()[-1] if err.strip() else f"Exit-Code {code}",
                hint="bericht.html enthält denselben Bericht; output.pdf: false schaltet das PDF ab.",
                message_en="The PDF report could not be written.",
            )
        return self.path

    def cancel(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._err.unlink(missing_ok=True)


def start_pdf(html_path: Path, out_dir: Path) -> PendingPdf:
    """Render ``bericht.pdf`` from the written ``bericht.html`` in a second process.

    The writers after the report (map, XLSX, GeoPackage) run meanwhile on the
    other core; the bytes are the same as with :func:`_pdf_from_html` in this
    process (same HTML text, same base URL, same identifier).
    """
    import subprocess
    import sys

    pdf_path = out_dir / "bericht.pdf"
    err_path = out_dir / ".bericht.pdf.log"
    code = f"import sys; sys.path[:0] = {[p for p in sys.path if p]!r}; from geoplan.report.html import _pdf_child; _pdf_child()"
    with open(err_path, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", code, str(html_path), str(out_dir), str(pdf_path)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    return PendingPdf(proc, pdf_path, err_path)


def write_report(result, pub, out_dir: Path, *, lang: str = "de", pdf: bool = True, background: bool = False):
    """Write bericht.html and (``pdf``) bericht.pdf; return the paths.

    With ``background=True`` the PDF is rendered by a second process
    (:func:`start_pdf`) and the return value is ``(paths, pending)``: the
    caller writes the other outputs meanwhile and calls ``pending.wait()``
    (or ``pending.cancel()`` on an error) before it uses the folder.
    """
    html = render_report(result, pub, lang)
    path = out_dir / "bericht.html"
    path.write_text(html, encoding="utf-8")
    written = [path]
    pending = None
    if pdf:
        pdf_path = out_dir / "bericht.pdf"
        if background:
            pending = start_pdf(path, out_dir)
        else:
            _pdf_from_html(html, out_dir, pdf_path)
        written.append(pdf_path)
    return (written, pending) if background else written


def write_map(result, pub, out_dir: Path, *, lang: str = "de") -> list[Path]:
    from geoplan.report.mapping import write_karte

    return [write_karte(result, pub, out_dir / "karte.html", lang=lang)]
