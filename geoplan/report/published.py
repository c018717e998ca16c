"""What may be published: the per-Sozialraum table after small-cell suppression.

Every writer (HTML, PDF, Excel, GeoPackage, map) takes its per-area numbers
from :func:`build_published`, never from the raw result frame, so HzE counts
from 1 to k-1 cannot slip into an output by one writer forgetting the rule.
Prior-year costs are published only as the total of the budget's kinds of help
(costs by kind would reveal single expensive placements).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from geoplan.privacy import protect_sozialraum_frame

# (column, German label, English label, format)
# formats: text, int, euro, pct (value already in %), num1, num2, index, count (may be suppressed)
def _vocab(cols: list[tuple[str, str]]) -> list[tuple[str, str, str, str]]:
    """(column, German, English, format) with the words from :mod:`geoplan.report.vocabulary`."""
    from geoplan.report.vocabulary import TERMS

    return [(c, TERMS[c].de, TERMS[c].en, f) for c, f in cols]


BASE_COLUMNS = _vocab([("key", "text"), ("name", "text"), ("bezirk", "text"), ("pop_total", "int"), ("pop_u21", "int")])
MODEL_COLUMNS = _vocab([("need_index", "index"), ("hze_cases", "count"), ("hze_per_1000", "rate"),
                        ("hze_cases_forecast", "num1"), ("expected_cases", "num1"), ("expected_per_1000", "num1"), ("pi_low", "num0"),
                        ("pi_high", "num0"), ("oe_ratio", "ratio")])
MONEY_COLUMNS = _vocab([("hze_cost_prev_eur", "euro"), ("budget_eur", "euro"), ("budget_per_u21", "euro2"),
                        ("change_eur", "euro"), ("change_pct", "pct")])


def uncertainty_columns(interval: float) -> list[tuple[str, str, str, str]]:
    """Columns of the BYM2 model (``model.family: bym2``): intervals of expected cases and of the need-based target.

    Model output only (posterior quantiles, a probability); no observed count can be read from them. The
    target's quantiles are not summed in the XLSX (format ``euroq``): a sum of quantiles is no quantile.
    """
    lo = f"{(1 - interval) / 2 * 100:g} %"
    hi = f"{(1 + interval) / 2 * 100:g} %"
    return [
        ("expected_q05", f"Erwartete Fälle {lo}-Quantil", f"Expected cases {lo} quantile", "num1"),
        ("expected_q95", f"Erwartete Fälle {hi}-Quantil", f"Expected cases {hi} quantile", "num1"),
        ("target_q05_eur", f"Bedarfsgerechter Zielwert {lo}-Quantil", f"Need-based target {lo} quantile", "euroq"),
        ("target_q95_eur", f"Bedarfsgerechter Zielwert {hi}-Quantil", f"Need-based target {hi} quantile", "euroq"),
        ("p_budget_below_need", "Wahrscheinlichkeit Budget unter Bedarf", "Probability budget below need", "ratio"),
    ]


@dataclass
class Published:
    areas: pd.DataFrame                     # one row per Sozialraum, suppressed
    columns: list[tuple[str, str, str, str]]  # (column, de, en, format) in display order
    mask: pd.DataFrame                      # True where a count was suppressed
    k: int
    n_suppressed: int
    notes: list = field(default_factory=list)
    component_columns: list[tuple[str, str]] = field(default_factory=list)  # (eur_<name>, label)

    def label(self, col: str, lang: str = "de") -> str:
        for c, de, en, _ in self.columns:
            if c == col:
                return de if lang == "de" else en
        return col


def _component_en(name: str, types: dict) -> str:
    """English name of a formula component: the kind of share (the config's labels are German)."""
    from geoplan.report.vocabulary import TERMS

    kind = types.get(name)
    t = TERMS.get(f"type.{kind}")
    same = sum(1 for v in types.values() if v == kind)
    base = t.en.lower() + " share" if t is not None else "component"
    return base if same <= 1 else f"{base} {list(k for k, v in types.items() if v == kind).index(name) + 1}"


def suppress_like(values: pd.Series, published_counts: pd.Series, suppressed: pd.Series,
                  decimals: int = 1) -> pd.Series:
    """A column derived from the HzE counts (the case forecast = count × a city-wide factor), made as safe as
    the counts: where a count is suppressed, its marker (``< 3``, ``x``) instead of the value, which would
    give the count back; elsewhere the value rounded to ``decimals``."""
    out = pd.Series(np.round(pd.to_numeric(values, errors="coerce").to_numpy(dtype=float), decimals),
                    index=values.index, dtype=object)
    hidden = suppressed.reindex(values.index).fillna(True).to_numpy(dtype=bool)
    out[hidden] = published_counts.reindex(values.index)[hidden]
    return out


def build_published(result, lang: str = "de") -> Published:
    from geoplan.report.vocabulary import label
    from geoplan.report.i18n import set_labels

    set_labels(result)  # every writer starts here: labels of this result's config, not of an earlier one
    f = result.frame
    k = result.config.privacy.k
    df = pd.DataFrame(f.drop(columns="geometry")).copy()
    if "hze_cases" in df.columns:
        df["hze_per_1000"] = df["hze_cases"] / df[result.config.model.exposure] * 1000.0
        df["oe_ratio"] = df["hze_cases"] / df["expected_cases"]

    # only the total HzE count of the budget year is published per area; counts by kind of help
    # and of the prior year stay internal (fewer published cells, fewer ways to recompute one)
    exposure = result.config.model.exposure
    # the case forecast of a case list (hze_cases × a city-wide factor) is published, but only where
    # hze_cases is: it is set aside here and gets the count's markers after the suppression below
    forecast = df.pop("hze_cases_forecast") if "hze_cases_forecast" in df.columns else None
    internal = [c for c in df.columns if (c.startswith("hze_cases") and c != "hze_cases") or
                (c.startswith("hze_cost_prev_") and c != "hze_cost_prev_eur")]
    df = df.drop(columns=internal)
    # the one privacy gate: counts (primary and secondary suppression) and the rates made of them
    sup = protect_sozialraum_frame(df, k=k, group="bezirk" if df["bezirk"].nunique() > 1 else None, rate_columns={
        "hze_per_1000": ("hze_cases", exposure, 1000),
        "oe_ratio": ("hze_cases", "expected_cases", 1),
    }, rate_mode="range")
    mask = sup.mask
    areas = sup.frame
    if forecast is not None:
        areas["hze_cases_forecast"] = suppress_like(forecast, areas["hze_cases"], mask["hze_cases"])

    indicator_cols = []
    for ind in result.catalogue.indicators:
        if ind.name in areas.columns:
            lab = f"{ind.label} ({ind.unit})" if ind.unit not in ("Index", "Anzahl") else ind.label
            fmt = "pct" if ind.unit == "%" else "num1"
            lab_en = getattr(ind, "label_en", None) or ind.label  # the catalogue's German label, never the code name
            lab_en = f"{lab_en} ({label('unit.' + ind.unit, 'en', ind.unit)})" if ind.unit not in ("Index", "Anzahl") else lab_en
            indicator_cols.append((ind.name, lab, lab_en, fmt))
    component_cols = []
    # every component, also those only a Teilbudget uses (Landkreis Tübingen: Gemeinwesenarbeit)
    alloc = result.allocation
    names = list(getattr(alloc, "components", None) or [c.name for c in result.allocation_spec.components])
    labels = getattr(alloc, "labels", None) or {c.name: c.label for c in result.allocation_spec.components}
    types = {c.name: getattr(c, "type", None) for c in result.allocation_spec.components}
    for name in names:
        col = f"eur_{name}"
        if col in areas.columns:
            component_cols.append((col, f"davon {labels.get(name) or name}", f"of which: {_component_en(name, types)}",
                                   "euro"))
    # budget = Σ components + corridor adjustment: the adjustment is a column wherever the components are
    if component_cols and "eur_korridor" in areas.columns and result.allocation_spec.corridor is not None:
        component_cols.append(("eur_korridor", "Korridor-Anpassung", "Corridor adjustment", "euro"))

    from geoplan.report.i18n import relabel

    base = [(exposure, *c[1:]) if c[0] == "pop_u21" and exposure != "pop_u21" else c for c in BASE_COLUMNS]
    unc = getattr(result, "uncertainty", None)
    unc_cols = uncertainty_columns(unc.interval) if unc is not None else []
    columns = [(c[0], relabel(c[1]), relabel(c[2], "en"), c[3])
               for c in base + indicator_cols + MODEL_COLUMNS + MONEY_COLUMNS + unc_cols + component_cols
               if c[0] in areas.columns]
    keep = list(dict.fromkeys([c[0] for c in columns] + ["need_class"]))
    areas = areas[[c for c in keep if c in areas.columns]]
    return Published(
        areas=areas,
        columns=columns,
        mask=mask,
        k=k,
        n_suppressed=int(np.asarray(mask.to_numpy()).sum()),
        notes=list(sup.notes),
        component_columns=[(c[0], c[1]) for c in component_cols],
    )
