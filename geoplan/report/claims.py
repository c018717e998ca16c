"""The number-bearing sentences of the report, computed from :class:`geoplan.pipeline.Result`.

Nothing here is fixed text with a number in it: every sentence is built from
the configuration of this run (formula, Teilbudgets, corridor, kinds of help)
and from the tables of this run (allocation, equity, convergence path), in
German or English. ``tests/test_claims.py`` parses these sentences in the
rendered report and recomputes every number from the tables of the same output.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from geoplan import fmt

#: kinds of help (config ``hze.budget_kinds``) and their paragraphs of SGB VIII
KIND_PARAGRAPHS = {
    "ambulant": ("ambulante Hilfen", "ambulatory help", "§§ 28–31, 35"),
    "teilstationaer": ("teilstationäre Hilfen", "day-care help", "§ 32"),
    "stationaer": ("stationäre Hilfen", "residential help", "§§ 33, 34"),
}


def component_text(comp, result, lang: str = "de") -> str:
    """What a formula component distributes by, in words (column names through the vocabulary)."""
    from geoplan.report.vocabulary import label

    label_of = {i.name: ((i.label_en or i.label) if lang == "en" else i.label) for i in result.catalogue.indicators}
    word = lambda c: label_of.get(c) or label(c, lang)  # noqa: E731
    de = lang == "de"
    t = comp.type
    if t == "fixed":
        return (f"nach „{word(comp.column)}“" if comp.column else "gleicher Betrag je Sozialraum") if de else \
            (f"by “{word(comp.column)}”" if comp.column else "equal amount per Sozialraum")
    if t == "population":
        cols = comp.columns or [comp.column]
        return ("Anteil an " if de else "share of ") + " + ".join(word(c) for c in cols)
    if t == "model":
        return ("Anteil an den erwarteten HzE-Fällen des Bedarfsmodells" if de else
                "share of the need model's expected HzE cases") if comp.column == "expected_cases" else \
            ("Anteil an " if de else "share of ") + word(comp.column)
    if t == "indicator":
        ws = ", ".join(f"{label_of.get(k, k)} {_pct(v * 100 / sum(comp.indicators.values()), lang, 0)}"
                       for k, v in comp.indicators.items())
        base = f" × {word(comp.base)}" if comp.base else ""
        return (f"gewichtete Indikatoren ({ws}){base}" if de else f"weighted indicators ({ws}){base}")
    if t == "prior_year":
        return (("Anteil an den Vorjahreskosten (" if de else "share of prior-year costs (")
                + ", ".join(word(c) for c in comp.columns) + ")")
    if t == "fachleistungsstunden":
        return "Fachleistungsstunden × Stundensatz" if de else "specialist hours × hourly rate"
    return ""


# In the sentences a no-break space keeps a number and its unit on one line ("100.000.000 €", "15,0 %").
def _eur(v, lang):
    return fmt.euro(v, 0, lang, sep=fmt.NBSP)


def _seur(v, lang):
    return ("+" if v > 0.5 else "") + fmt.euro(v, 0, lang, sep=fmt.NBSP)


def _pct(v, lang, d=1):
    return fmt.percent(v, d, lang, sep=fmt.NBSP)


def _spct(v, lang):
    return ("+" if round(v, 1) > 0 else "") + fmt.percent(v, 1, lang, sep=fmt.NBSP)


def _component_words(comp, result, lang):

    return comp.label or component_text(comp, result, lang) or comp.name


def _rule_en(t) -> str:
    if t.share is not None:
        return f"{t.share * 100:g}% of the total budget"
    if t.percent_of is not None:
        return f"{t.percent:g}% of Teilbudget {t.percent_of}"
    if t.amount_eur is not None:
        return f"fixed amount {fmt.euro(t.amount_eur, 0, 'en')}"
    return "remainder"


def teilbudget_texts(row, spec, lang: str = "de") -> tuple[str, str]:
    """Label and rule of a row of ``AllocationResult.teilbudgets`` for the report and the workbook.

    German: as the allocation wrote them. English: the rule of a configured Teilbudget in English, and for the
    single Teilbudget the allocation makes when none is configured ("Gesamtbudget", "100 % des Gesamtbudgets")
    both in English; a configured label is the user's own text and stays as written.
    """
    label, rule = str(row.get("label", "")), str(row.get("rule", ""))
    if lang == "de":
        return label, rule
    configured = {t.id: t for t in spec.teilbudgets}
    if str(row.get("id", "")) in configured:
        return label, _rule_en(configured[str(row["id"])])
    if not spec.teilbudgets:
        return "Total budget", "100% of the total budget"
    return label, rule


def _past(c) -> bool:
    """Components that follow past spending: prior-year costs, or Fachleistungsstunden counted in hours (not cases)."""
    return c.type == "prior_year" or (c.type == "fachleistungsstunden" and c.hours_per_case is None)


def _all_components(spec) -> dict:
    comps = {c.name: c for c in spec.components}
    for tb in spec.teilbudgets:
        for c in tb.components or []:
            comps.setdefault(c.name, c)
    return comps


def formula_sentences(result, lang: str = "de") -> list[str]:
    """The formula of this run in words: components with weight and amount, Teilbudgets, corridor."""
    de = lang == "de"
    spec = result.allocation_spec
    f = result.frame
    alloc = result.allocation
    total = int(f["budget_eur"].sum())
    comps = _all_components(spec)

    def amount(name):
        return int(f[f"eur_{name}"].sum()) if f"eur_{name}" in f.columns else 0

    def label(c):
        return _component_words(c, result, lang)

    tb = alloc.teilbudgets
    if not spec.teilbudgets:
        parts = [f"{_pct(c.weight * 100, lang, 0)} {label(c)} ({_eur(amount(c.name), lang)})" for c in spec.components]
        out = [(f"Das Budget von {_eur(total, lang)} wird auf {len(f)} Sozialräume nach dieser Formel verteilt: "
                if de else f"The budget of {_eur(total, lang)} is split over {len(f)} Sozialräume by this formula: ")
               + "; ".join(parts) + "."]
    else:
        rules = {t.id: _rule_en(t) for t in spec.teilbudgets} if not de else {}
        items = [f"{r['id']} – {r['label']} ({rules.get(r['id'], r['rule'])}): {_eur(r['amount_eur'], lang)}"
                 for _, r in tb.iterrows()]
        out = [(f"Das Budget von {_eur(alloc.total_eur, lang)} besteht aus den Teilbudgets " if de else
                f"The budget of {_eur(alloc.total_eur, lang)} consists of the Teilbudgets ") + "; ".join(items) + "."]
        if alloc.retained_eur:
            out.append((f"Davon verbleiben {_eur(alloc.retained_eur, lang)} beim öffentlichen Träger; auf die {len(f)} "
                        f"Sozialräume verteilt werden {_eur(total, lang)}." if de else
                        f"Of this, {_eur(alloc.retained_eur, lang)} remains with the public body; {_eur(total, lang)} is "
                        f"split over the {len(f)} Sozialräume."))
        else:
            out.append((f"Auf die {len(f)} Sozialräume verteilt werden {_eur(total, lang)}." if de else
                        f"{_eur(total, lang)} is split over the {len(f)} Sozialräume."))
        for t in spec.teilbudgets:
            if not t.distributed:
                continue
            parts = [f"{_pct(c.weight * 100, lang, 0)} {label(c)}" for c in (t.components or spec.components)]
            out.append((f"Teilbudget {t.id} wird verteilt nach: " if de else f"Teilbudget {t.id} is split by: ")
                       + "; ".join(parts) + ".")
        parts = [f"{label(c)} ({_eur(amount(n), lang)})" for n, c in comps.items() if f"eur_{n}" in f.columns]
        out.append(("Zusammen erhalten die Sozialräume aus den Bestandteilen: " if de else
                    "Together the Sozialräume receive from the components: ") + "; ".join(parts) + ".")
    prior = sum(amount(n) for n, c in comps.items() if _past(c))
    prior_pct = 100.0 * prior / total if total else 0.0
    if prior > 0:
        out.append((f"{_pct(prior_pct, lang, 0)} des verteilten Budgets folgen den Ist-Kosten oder Leistungsstunden der "
                    "Vergangenheit; dieser Teil hängt von der bisherigen Bewilligungspraxis ab, die die Leistungserbringer "
                    "mitbestimmen." if de else
                    f"{_pct(prior_pct, lang, 0)} of the distributed budget follows past actual costs or service hours; "
                    "this part depends on past approval practice, which providers help to shape."))
    if prior < total:
        out.append((f"{_pct(100 - prior_pct, lang, 0)} beruhen auf Bevölkerung, Sozialstruktur oder dem erwarteten "
                    "Bedarf, die die Leistungserbringer nicht unmittelbar beeinflussen." if de else
                    f"{_pct(100 - prior_pct, lang, 0)} rests on population, social structure or expected demand, "
                    "which providers cannot directly influence."))
    c = spec.corridor
    if c is not None and (c.max_decrease_pct is not None or c.max_increase_pct is not None):
        down = _pct(c.max_decrease_pct, lang) if c.max_decrease_pct is not None else None
        up = _pct(c.max_increase_pct, lang) if c.max_increase_pct is not None else None
        n_bind = len(alloc.binding)
        lim = " und ".join(x for x in [f"höchstens {down} weniger" if down else "", f"höchstens {up} mehr" if up else ""] if x) \
            if de else " and ".join(x for x in [f"at most {down} less" if down else "", f"at most {up} more" if up else ""] if x)
        out.append((f"Ein Korridor begrenzt die Veränderung gegenüber den Vorjahreskosten je Sozialraum auf {lim}; "
                     f"er greift bei {n_bind} Sozialräumen." if de else
                     f"A corridor limits each Sozialraum's change against its prior-year costs to {lim}; it binds for "
                     f"{n_bind} Sozialräume."))
        if alloc.corridor_exempt:
            from geoplan.stages.allocate import corridor_rule_text

            names = dict(zip(f["key"].astype(str), f["name"].astype(str)))
            who = ", ".join(names.get(k, k) for k in alloc.corridor_exempt[:10])
            out.append(corridor_rule_text(c, lang) + (f" Das betrifft {len(alloc.corridor_exempt)} Sozialräume ({who})."
                                                      if de else f" This applies to {len(alloc.corridor_exempt)} "
                                                      f"Sozialräume ({who})."))
    return out


def coverage_sentence(result, lang: str = "de") -> str:
    """Which kinds of help and which §§ of SGB VIII the budget covers (config ``hze.budget_kinds``)."""
    kinds = result.config.hze.budget_kinds
    de = lang == "de"
    items = [f"{KIND_PARAGRAPHS[k][0 if de else 1]} ({KIND_PARAGRAPHS[k][2]} SGB VIII)" for k in kinds]
    joined = ", ".join(items[:-1]) + ((" und " if de else " and ") + items[-1] if len(items) > 1 else items[0])
    if de:
        return (f"Das Budget deckt die Hilfen zur Erziehung der Arten {joined}; die Vorjahreskosten sind die Kosten "
                "genau dieser Hilfearten.")
    return (f"The budget covers the Hilfen zur Erziehung (educational help) of the kinds {joined}; the prior-year costs "
            "are the costs of exactly these kinds of help.")


def _movers(result):
    f = result.frame
    if "change_eur" not in f.columns or not f["change_eur"].notna().any():
        return None, None
    d = pd.DataFrame(f.drop(columns="geometry")).sort_values(["change_eur", "key"])
    return d.head(2), d.sort_values(["change_eur", "key"], ascending=[False, True]).head(2)


def _mover_sentence(r, lang, loser: bool) -> str:
    de = lang == "de"
    target = r["budget_eur"] - r.get("eur_korridor", 0)
    name = str(r["name"])
    ch = _eur(abs(r["change_eur"]), lang)
    pct = _spct(r["change_pct"], lang) if np.isfinite(r["change_pct"]) else "–"
    prior, tgt, need = _eur(r["hze_cost_prev_eur"], lang), _eur(target, lang), fmt.number(r["need_index"], 2, lang)
    if de:
        head = f"{name} {'verliert' if loser else 'gewinnt'} {ch} ({pct}): "
        if r["hze_cost_prev_eur"] > target:
            why = f"die Vorjahreskosten ({prior}) liegen über dem Zielwert der Formel ({tgt})"
        else:
            why = f"die Vorjahreskosten ({prior}) liegen unter dem Zielwert der Formel ({tgt})"
        return head + why + f"; Bedarfsindex {need}."
    head = f"{name} {'loses' if loser else 'gains'} {ch} ({pct}): "
    side = "above" if r["hze_cost_prev_eur"] > target else "below"
    return head + f"its prior-year costs ({prior}) lie {side} the formula target ({tgt}); need index {need}."


def change_sentences(result, lang: str = "de") -> list[str]:
    """Total change against the prior year and why the largest losers and winners move."""
    s = result.equity.summary if result.equity is not None else {}
    if s.get("total_prior_eur") is None:
        return []
    de = lang == "de"
    prior, change = s["total_prior_eur"], s["total_change_eur"]
    pct = change / prior * 100 if prior else float("nan")
    out = [(f"Gegenüber den Kosten des Vorjahres ({_eur(prior, lang)}) ändert sich die verteilte Summe um "
            f"{_seur(change, lang)} ({_spct(pct, lang)}); {s['n_winners']} Sozialräume erhalten mehr, "
            f"{s['n_losers']} weniger." if de else
            f"Against the prior year's costs ({_eur(prior, lang)}) the distributed total changes by {_seur(change, lang)} "
            f"({_spct(pct, lang)}); {s['n_winners']} Sozialräume get more, {s['n_losers']} less.")]
    losers, winners = _movers(result)
    if losers is not None:
        out += [_mover_sentence(r, lang, True) for _, r in losers.iterrows() if r["change_eur"] < 0]
        out += [_mover_sentence(r, lang, False) for _, r in winners.iterrows() if r["change_eur"] > 0]
        high_need_cut = any(r["need_index"] > 0 and r["hze_cost_prev_eur"] > r["budget_eur"] - r.get("eur_korridor", 0)
                            for _, r in losers.iterrows() if r["change_eur"] < 0)
        if high_need_cut:
            out.append("Auch Sozialräume mit hohem Bedarf verlieren, wenn dort bisher mehr ausgegeben wurde, als die "
                       "Formel vorsieht: der Zielwert folgt der Formel, nicht den bisherigen Ausgaben." if de else
                       "Areas with high need lose, too, where more was spent so far than the formula provides: the "
                       "target follows the formula, not past spending.")
    return out


def convergence_sentences(result, lang: str = "de") -> list[str]:
    """How many areas are within x % of their target after 1, 2, 3 … years under the real corridor."""
    s = result.equity.summary if result.equity is not None else {}
    conv = s.get("convergence")
    if not conv:
        return []
    de = lang == "de"
    n = s["n_areas"]
    tol = _pct(s["target_tolerance_pct"], lang)
    counts = dict(conv)
    years = sorted(counts)
    first = (f"Im ersten Jahr liegen {counts[1]} von {n} Sozialräumen höchstens {tol} neben ihrem Zielwert nach der "
             "Formel." if de else
             f"In the first year {counts[1]} of {n} Sozialräume are within {tol} of their formula target.")
    out = [first]
    later = [y for y in years if y > 1][:4]
    if later:
        seq = ", ".join((f"nach {y} Jahren {counts[y]}" if de else f"after {y} years {counts[y]}") for y in later)
        out.append((f"Wendet man denselben Korridor Jahr für Jahr bei gleichem Zielwert und gleichem Gesamtbudget an, "
                    f"sind es {seq}." if de else
                    f"Applying the same corridor year after year with the same target and total, it is {seq}."))
    if s.get("years_until_all_at_target") is not None:
        y = s["years_until_all_at_target"]
        out.append((f"Der letzte Sozialraum erreicht seinen Zielwert im Jahr {y}." if de else
                    f"The last Sozialraum reaches its target in year {y}."))
    else:
        names = ", ".join(s.get("never_at_target_names") or s.get("never_at_target") or [])
        k = s["n_never_at_target"]
        out.append((f"{k} Sozialräume erreichen ihren Zielwert unter diesen Regeln nie: {names}." if de else
                    f"{k} Sozialräume never reach their target under these rules: {names}."))
    return out


def measure_sentences(result, lang: str = "de") -> list[str]:
    """Section 6: each measure in one plain sentence with its reading for this run."""
    s = result.equity.summary if result.equity is not None else {}
    de = lang == "de"
    out = []
    ci = s.get("concentration_index")
    if ci is not None:
        n = fmt.number(ci, 3, lang)
        if de:
            where = ("auf Sozialräume mit höherem Bedarf konzentriert" if ci > 0.005 else
                     "auf Sozialräume mit niedrigerem Bedarf konzentriert" if ci < -0.005 else
                     "unabhängig vom Bedarf etwa gleich verteilt")
            out.append(f"Der Konzentrationsindex von {n} heißt: Das Budget je Einwohner unter 21 ist {where} "
                       "(0 hieße gleiches Geld je Kopf unabhängig vom Bedarf, 1 alles beim höchsten Bedarf).")
        else:
            where = ("concentrated in higher-need areas" if ci > 0.005 else
                     "concentrated in lower-need areas" if ci < -0.005 else "about equal whatever the need")
            out.append(f"The concentration index of {n} means: the budget per resident under 21 is {where} "
                       "(0 would be the same money per head whatever the need, 1 everything at the highest need).")
    g = s.get("gini_budget_per_u21")
    if g is not None:
        n, d = fmt.number(g, 3, lang), _pct(200 * g, lang, 0)
        out.append((f"Der Gini-Koeffizient von {n} heißt: Zwei zufällig gewählte junge Menschen erhalten im Mittel "
                    f"Beträge, die sich um {d} des Durchschnitts je Kopf unterscheiden (0 = überall gleich)." if de else
                    f"The Gini coefficient of {n} means: two young people picked at random receive amounts that differ "
                    f"on average by {d} of the mean per head (0 = the same everywhere)."))
    t, tb, tw = s.get("theil"), s.get("theil_between"), s.get("theil_within")
    if t is not None and tb is not None and t > 0:
        share = _pct(100 * tb / t, lang, 0)
        out.append((f"Der Theil-Index von {fmt.number(t, 4, lang)} zerlegt die Ungleichheit: {share} liegen zwischen "
                    f"den Bezirken ({fmt.number(tb, 4, lang)}), der Rest innerhalb der Bezirke "
                    f"({fmt.number(tw, 4, lang)})." if de else
                    f"The Theil index of {fmt.number(t, 4, lang)} splits the inequality: {share} lies between districts "
                    f"({fmt.number(tb, 4, lang)}), the rest within districts ({fmt.number(tw, 4, lang)})."))
    return out


def distance_sentences(result, lang: str = "de") -> list[str]:
    """How far the prior year lies from the formula targets."""
    s = result.equity.summary if result.equity is not None else {}
    de = lang == "de"
    out = []
    if s.get("sum_abs_distance_to_target_eur") is not None:
        out.append((f"Die Vorjahreskosten liegen zusammen {_eur(s['sum_abs_distance_to_target_eur'], lang)} von den "
                    f"Zielwerten der Formel entfernt (Summe der Abstände je Sozialraum; netto "
                    f"{_seur(s['total_distance_to_target_eur'], lang)})." if de else
                    f"Prior-year costs lie {_eur(s['sum_abs_distance_to_target_eur'], lang)} away from the formula "
                    f"targets in total (sum of the distances per Sozialraum; net "
                    f"{_seur(s['total_distance_to_target_eur'], lang)})."))
    return out


def settlement_pointer(result, lang: str = "de") -> list[str]:
    """Which settlement rules this model has (the euros are in section 5)."""
    v = getattr(result, "settlement", None)
    if v is None or not len(v.rules):
        return []
    from geoplan.report.i18n import gettext

    _ = gettext(lang)
    rules = ", ".join(dict.fromkeys(str(_(r)) for r in v.rules["regel"] if r != "Hinweis"))
    if not rules:
        return []
    return [f"Das Modell legt auch die Abrechnung fest ({rules}); Abschnitt 5 zeigt diese Regeln mit den Beträgen "
            "dieses Laufs." if lang == "de" else
            f"The model also sets the settlement rules ({rules}); section 5 shows them with this run's amounts."]


def report_claims(result, lang: str = "de") -> dict:
    """All computed sentences of the summary (paragraphs) and section 6."""
    measures = measure_sentences(result, lang)
    conv = convergence_sentences(result, lang)
    change = change_sentences(result, lang)
    # paragraphs ("p") and one list ("ul") of the largest losers and winners with the reason
    summary = [("p", formula_sentences(result, lang)), ("p", [coverage_sentence(result, lang)]), ("p", change[:1]),
               ("ul", change[1:]), ("p", conv), ("p", measures[:1]), ("p", settlement_pointer(result, lang))]
    return {"summary": [(kind, p) for kind, p in summary if p], "measures": measures, "distance": distance_sentences(result, lang),
            "convergence": conv, "settlement": settlement_sentences(result, lang)}


def settlement_sentences(result, lang: str = "de") -> list[str]:
    """The configured settlement rules with this run's euros (payout, worked surplus/overspend, Verfügungsfonds)."""
    v = getattr(result, "settlement", None)
    if v is None:
        return []
    de = lang == "de"
    out = []
    if v.payout is not None and len(v.payout):
        p = v.payout
        unc = int(p["unconditional_eur"].sum())
        conds = [c for c in p.columns if c.startswith("cond_")]
        cond_sum = int(p[conds].sum().sum()) if conds else 0
        ex_key = v.examples[0]["key"] if v.examples else str(p.iloc[0, 0])
        first = p[p.iloc[:, 0].astype(str) == ex_key].iloc[0]
        out.append((f"Je Sozialraum werden {_pct(v.unconditional_pct, lang, 0)} des Budgets in {v.instalments} Raten "
                    f"ausgezahlt (zusammen {_eur(unc, lang)}, je Sozialraum auf ganze Euro gerundet), z. B. für "
                    f"{first['name']}: {_eur(first['rate_eur'], lang)} je Rate." if de else
                    f"Each Sozialraum is paid {_pct(v.unconditional_pct, lang, 0)} of its budget in {v.instalments} "
                    f"instalments (together {_eur(unc, lang)}, rounded to whole euros per area), e.g. for "
                    f"{first['name']}: {_eur(first['rate_eur'], lang)} per instalment."))
        if conds:
            pcts = {c.label: c.pct for c in result.config.settlement.payout.conditions}
            items = [f"{lab} {_pct(pcts.get(lab, 0), lang, 0)} ({_eur(int(p[c].sum()), lang)})"
                     for c, lab in zip(conds, v.payout_labels)]
            out.append((f"{_eur(cond_sum, lang)} sind an Bedingungen gebunden: " if de else
                        f"{_eur(cond_sum, lang)} depends on conditions: ") + "; ".join(items) + ".")
        if v.bonus_max_pct:
            out.append((f"Dazu kommt ein Leistungsbonus von bis zu {_pct(v.bonus_max_pct, lang, 0)} "
                        f"({_eur(int(p['bonus_max_eur'].sum()), lang)}) für vereinbarte Qualitätsziele." if de else
                        f"On top comes a performance bonus of up to {_pct(v.bonus_max_pct, lang, 0)} "
                        f"({_eur(int(p['bonus_max_eur'].sum()), lang)}) for agreed quality targets."))
    for ex in v.examples:
        if ex["rule"] == "surplus":
            sp = result.config.settlement.surplus
            carry = (" und überträgt ihn in die nächste Periode" if de else " and carries it into the next period") \
                if sp.carry_over and ex["provider_eur"] else ""
            what = (f"Teilbudget {ex['teilbudget']}" if ex.get("teilbudget") else "Budget")
            out.append((f"Beispiel {ex['name']} ({what} {_eur(ex['budget_eur'], lang)}): Bleiben die Ist-Kosten 5 % darunter "
                        f"({_eur(ex['actual_eur'], lang)}), beträgt die Einsparung {_eur(ex['surplus_eur'], lang)}; davon behält "
                        f"der Träger {_eur(ex['provider_eur'], lang)} ({_pct(sp.provider_pct, lang, 0)}){carry}, an den "
                        f"öffentlichen Träger gehen {_eur(ex['public_eur'], lang)}." if de else
                        f"Example {ex['name']} ({what.replace('Budget', 'budget')} {_eur(ex['budget_eur'], lang)}): if actual "
                        "costs stay 5 % below "
                        f"({_eur(ex['actual_eur'], lang)}), the surplus is {_eur(ex['surplus_eur'], lang)}; the provider keeps "
                        f"{_eur(ex['provider_eur'], lang)} ({_pct(sp.provider_pct, lang, 0)}){carry}, "
                        f"{_eur(ex['public_eur'], lang)} goes back to the public body."))
        elif ex["rule"] == "overspend":
            how = {"none": ("bleibt ungedeckt: das Budget wirkt als Deckel", "stays uncovered: the budget is a cap"),
                   "indicator": ("wird nur nachfinanziert, wenn sich die Sozialindikatoren verändert haben",
                                 "is re-financed only if the social indicators have changed"),
                   "case_costs": ("wird nach Prüfung der Einzelfallkosten nachfinanziert",
                                  "is re-financed after a check of the individual case costs")}[ex["refinancing"]]
            out.append((f"Liegen sie 5 % darüber ({_eur(ex['actual_eur'], lang)}), beträgt die Überschreitung "
                        f"{_eur(ex['overspend_eur'], lang)}; sie {how[0]}." if de else
                        f"If they are 5 % above ({_eur(ex['actual_eur'], lang)}), the overspend is "
                        f"{_eur(ex['overspend_eur'], lang)}; it {how[1]}."))
    if v.fonds_eur is not None:
        out.append((f"Für Verfügungsfonds stehen {_eur(v.fonds_eur, lang)} bereit." if de else
                    f"Verfügungsfonds (small local funds) receive {_eur(v.fonds_eur, lang)}."))
    if v.settled is not None:
        t = dict(zip(v.settled.totals["position"], v.settled.totals["amount_eur"]))
        out.append((f"Abrechnung mit den Ist-Kosten ({_eur(t['Ist-Kosten'], lang)}): Einsparungen {_eur(t['Einsparungen'], lang)} "
                    f"(davon Träger {_eur(t['davon Träger'], lang)}), Überschreitungen {_eur(t['Überschreitungen'], lang)} "
                    f"(davon nachfinanziert {_eur(t['davon nachfinanziert'], lang)}, ungedeckt "
                    f"{_eur(t['davon ungedeckt (Deckelung)'], lang)})." if de else
                    f"Settlement against actual costs ({_eur(t['Ist-Kosten'], lang)}): surplus {_eur(t['Einsparungen'], lang)} "
                    f"(provider {_eur(t['davon Träger'], lang)}), overspend {_eur(t['Überschreitungen'], lang)} "
                    f"(re-financed {_eur(t['davon nachfinanziert'], lang)}, uncovered "
                    f"{_eur(t['davon ungedeckt (Deckelung)'], lang)})."))
    return out


def bym2_sentences(result, lang: str = "de") -> list[str]:
    """The spatial model (``model.family: bym2``) in plain sentences: spatial share, convergence, euros.

    Every number comes from ``result.uncertainty`` (:class:`geoplan.stages.model.spatial.SpatialNeed`);
    ``tests/test_claims.py`` recomputes each from the sheets ``BYM2`` and ``Verteilung`` of verteilung.xlsx.
    """
    u = getattr(result, "uncertainty", None)
    if u is None:
        return []
    de = lang == "de"
    d, s = u.diagnostics, u.summary
    rho, sig = s.loc["rho"], s.loc["sigma"]
    n = len(u.areas)
    num = lambda v, k: fmt.number(v, k, lang)  # noqa: E731
    out = [
        ("Die erwarteten Fälle, nach denen das Budget verteilt wird, stammen aus einem räumlichen BYM2-Modell: es "
         "schätzt für jeden Sozialraum einen Gebietseffekt, der sich aus einem räumlich strukturierten Teil (Nachbarn "
         "ähneln sich) und einem unstrukturierten Teil zusammensetzt, und leiht sich so Information von den "
         "Nachbarräumen." if de else
         "The expected cases the budget is distributed by come from a spatial BYM2 model: it estimates an area effect "
         "for every Sozialraum, made of a spatially structured part (neighbours are alike) and an unstructured part, "
         "and so borrows information from the neighbouring areas."),
        (f"Der räumlich strukturierte Anteil an der Varianz des Gebietseffekts (ρ) beträgt {_pct(100 * rho['mean'], lang, 0)} "
         f"(95-%-Intervall {_pct(100 * rho['q2.5'], lang, 0)} bis {_pct(100 * rho['q97.5'], lang, 0)}); die Streuung "
         f"des Gebietseffekts (σ, log-Skala) beträgt {num(sig['mean'], 3)} (95-%-Intervall {num(sig['q2.5'], 3)} bis "
         f"{num(sig['q97.5'], 3)})." if de else
         f"The spatially structured share of the area effect's variance (ρ) is {_pct(100 * rho['mean'], lang, 0)} "
         f"(95 % interval {_pct(100 * rho['q2.5'], lang, 0)} to {_pct(100 * rho['q97.5'], lang, 0)}); the spread of the "
         f"area effect (σ, log scale) is {num(sig['mean'], 3)} (95 % interval {num(sig['q2.5'], 3)} to "
         f"{num(sig['q97.5'], 3)})."),
        (f"Geschätzt mit {d['chains']} Kette(n) zu je {num(d['draws'], 0)} Ziehungen nach {num(d['warmup'], 0)} "
         f"Aufwärmschritten (Startwert {d['seed']}): größtes R̂ (Parameter und erwartete Fälle) {num(d['max_r_hat'], 3)}, "
         f"kleinste effektive "
         f"Stichprobengröße {num(d['min_ess'], 0)}, {d['n_divergent']} divergente Übergänge." if de else
         f"Estimated with {d['chains']} chain(s) of {num(d['draws'], 0)} draws each after {num(d['warmup'], 0)} warm-up "
         f"steps (seed {d['seed']}): largest R̂ (parameters and expected cases) {num(d['max_r_hat'], 3)}, smallest "
         f"effective sample size "
         f"{num(d['min_ess'], 0)}, {d['n_divergent']} divergent transitions."),
    ]
    if d["max_r_hat"] <= 1.01 and d["n_divergent"] == 0:
        out.append("Die Ketten sind konvergiert (R̂ höchstens 1,01, keine divergenten Übergänge)." if de else
                   "The chains have converged (R̂ at most 1.01, no divergent transitions).")
    else:
        out.append("Achtung: R̂ über 1,01 oder divergente Übergänge – die Ketten sind nicht sicher konvergiert, die "
                   "Intervalle sind nicht belastbar; mehr Ziehungen und Aufwärmschritte einstellen (model.bym2)." if de else
                   "Caution: R̂ above 1.01 or divergent transitions – the chains have not reliably converged and the "
                   "intervals are not dependable; set more draws and warm-up steps (model.bym2).")
    rng = u.areas["target_range_pct"].astype(float)
    p = u.areas["p_budget_below_need"].astype(float)
    prob = f"{fmt.number(100 * u.interval, 0, lang)}-%" if de else _pct(100 * u.interval, lang, 0)
    out += [
        (f"Jede der {num(d['n_draws'], 0)} Ziehungen der erwarteten Fälle wurde durch die Budgetformel gerechnet; das "
         f"{prob}-Intervall des bedarfsgerechten Zielwerts ist im Median {_pct(float(rng.median()), lang)} des "
         f"Zielwerts breit, höchstens {_pct(float(rng.max()), lang)}." if de else
         f"Each of the {num(d['n_draws'], 0)} draws of the expected cases was put through the budget formula; the "
         f"{prob} interval of the need-based target is {_pct(float(rng.median()), lang)} of the target wide in the "
         f"median, at most {_pct(float(rng.max()), lang)}."),
        (f"Bei {int((p >= 0.8).sum())} von {n} Sozialräumen liegt das Budget mit mindestens 80 % Wahrscheinlichkeit unter "
         f"dem bedarfsgerechten Zielwert, bei {int((p <= 0.2).sum())} mit mindestens 80 % Wahrscheinlichkeit darüber."
         if de else
         f"In {int((p >= 0.8).sum())} of {n} Sozialräume the budget lies below the need-based target with at least 80 % "
         f"probability, in {int((p <= 0.2).sum())} above it with at least 80 % probability."),
        ("Wo das Budget allein der Formel folgt, liegt diese Wahrscheinlichkeit nahe der Hälfte – ebenso gut zu wenig wie "
         "zu viel; weit davon weg rückt sie dort, wo der Korridor oder die übrigen Bestandteile das Budget vom Bedarf "
         "wegziehen." if de else
         "Where the budget follows the formula alone, this probability is near one half – as likely too little as too "
         "much; it moves far from that where the corridor or the other components pull the budget away from need."),
    ]
    return out
