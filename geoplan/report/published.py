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

from geoplan.privacy import suppress_counts, suppress_rates

# (column, German label, English label, format)
# formats: text, int, euro, pct (value already in %), num1, num2, index, count (may be suppressed)
BASE_COLUMNS = [
    ("key", "Schlüssel", "Key", "text"),
    ("name", "Sozialraum", "Sozialraum", "text"),
    ("bezirk", "Bezirk", "District", "text"),
    ("pop_total", "Einwohner", "Residents", "int"),
    ("pop_u21", "Einwohner unter 21", "Residents under 21", "int"),
]
MODEL_COLUMNS = [
    ("need_index", "Bedarfsindex", "Need index", "index"),
    ("hze_cases", "HzE-Fälle", "HzE cases", "count"),
    ("hze_per_1000", "HzE-Fälle je 1.000 u. 21", "HzE cases per 1,000 under 21", "rate"),
    ("expected_cases", "Erwartete Fälle", "Expected cases", "num1"),
    ("expected_per_1000", "Erwartet je 1.000 u. 21", "Expected per 1,000 under 21", "num1"),
    ("pi_low", "Prognoseintervall unten", "Prediction interval low", "num0"),
    ("pi_high", "Prognoseintervall oben", "Prediction interval high", "num0"),
    ("oe_ratio", "Beobachtet/erwartet", "Observed/expected", "ratio"),
]
MONEY_COLUMNS = [
    ("hze_cost_prev_eur", "Kosten Vorjahr", "Prior-year costs", "euro"),
    ("budget_eur", "Budget", "Budget", "euro"),
    ("budget_per_u21", "Budget je Einwohner u. 21", "Budget per resident under 21", "euro2"),
    ("change_eur", "Veränderung zum Vorjahr", "Change vs prior year", "euro"),
    ("change_pct", "Veränderung in %", "Change in %", "pct"),
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


def build_published(result, lang: str = "de") -> Published:
    f = result.frame
    k = result.config.privacy.k
    df = pd.DataFrame(f.drop(columns="geometry")).copy()
    if "hze_cases" in df.columns:
        df["hze_per_1000"] = df["hze_cases"] / df[result.config.model.exposure] * 1000.0
        df["oe_ratio"] = df["hze_cases"] / df["expected_cases"]

    # only the total HzE count of the budget year is published per area; counts by kind of help
    # and of the prior year stay internal (fewer published cells, fewer ways to recompute one)
    exposure = result.config.model.exposure
    internal = [c for c in df.columns if (c.startswith("hze_cases") and c != "hze_cases") or
                (c.startswith("hze_cost_prev_") and c != "hze_cost_prev_eur")]
    df = df.drop(columns=internal)
    sup = suppress_counts(df, columns=["hze_cases"], k=k,
                          group="bezirk" if df["bezirk"].nunique() > 1 else None, total_row=False)
    mask = sup.mask
    areas = suppress_rates(sup.frame, sup, rate_columns={
        "hze_per_1000": ("hze_cases", exposure, 1000),
        "oe_ratio": ("hze_cases", "expected_cases", 1),
    }, mode="range")

    indicator_cols = []
    for ind in result.catalogue.indicators:
        if ind.name in areas.columns:
            lab = f"{ind.label} ({ind.unit})" if ind.unit not in ("Index", "Anzahl") else ind.label
            fmt = "pct" if ind.unit == "%" else "num1"
            indicator_cols.append((ind.name, lab, getattr(ind, "label_en", None) or ind.name, fmt))
    component_cols = []
    for comp in result.allocation_spec.components:
        col = f"eur_{comp.name}"
        if col in areas.columns:
            component_cols.append((col, f"davon {comp.label}", f"of which {comp.name}", "euro"))
    # budget = Σ components + corridor adjustment: the adjustment is a column wherever the components are
    if component_cols and "eur_korridor" in areas.columns and result.allocation_spec.corridor is not None:
        component_cols.append(("eur_korridor", "Korridor-Anpassung", "Corridor adjustment", "euro"))

    from geoplan.report.i18n import relabel

    base = [(exposure, *c[1:]) if c[0] == "pop_u21" and exposure != "pop_u21" else c for c in BASE_COLUMNS]
    columns = [(c[0], relabel(c[1]), relabel(c[2], "en"), c[3]) for c in base + indicator_cols + MODEL_COLUMNS + MONEY_COLUMNS + component_cols
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
