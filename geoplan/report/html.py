"""bericht.html / bericht.pdf and karte.html.

The HTML report is self-contained: CSS inline, figures as data URIs, no
script or font from any host. The PDF is rendered from the same HTML by
WeasyPrint (A4, page numbers, table of contents).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from geoplan import fmt
from geoplan.report import figures

SIM = "simuliert"


def format_cell(value, kind: str, lang: str = "de") -> str:
    """German (or English) display of one table cell; strings (suppression markers) pass through."""
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return "–"
    if kind == "text":
        return str(value)
    if kind in ("int", "count"):
        return fmt.number(value, 0, lang)
    if kind == "euro":
        return fmt.euro(value, 0, lang)
    if kind == "euro2":
        return fmt.euro(value, 2, lang)
    if kind == "pct":
        return fmt.percent(value, 1, lang)
    if kind == "index":
        return fmt.number(value, 2, lang)
    if kind == "ratio":
        return fmt.number(value, 2, lang)
    if kind == "rate":
        return fmt.number(value, 1, lang)
    if kind == "num0":
        return fmt.number(value, 0, lang)
    return fmt.number(value, 1, lang)


def table_rows(df: pd.DataFrame, columns: list[tuple[str, str, str, str]], lang: str = "de") -> list[list[str]]:
    return [[format_cell(row[c], kind, lang) for c, _, _, kind in columns] for _, row in df.iterrows()]


def _env() -> Environment:
    env = Environment(loader=PackageLoader("geoplan", "report/templates"), autoescape=select_autoescape(["html", "j2"]))
    env.filters["euro"] = lambda v, d=0: fmt.euro(v, d)
    env.filters["num"] = lambda v, d=0: fmt.number(v, d)
    env.filters["pct"] = lambda v, d=1: fmt.percent(v, d)
    env.filters["signed"] = lambda v, d=1, u="": fmt.signed(v, d, unit=u)
    return env


def report_context(result, pub, lang: str = "de") -> dict:
    """Everything the template shows, already formatted."""
    cfg = result.config
    f = result.frame
    areas = pub.areas
    eq = result.equity
    model = result.model
    alloc = result.allocation

    col = {c[0]: c for c in pub.columns}

    def cols(names):
        return [col[n] for n in names if n in col]

    alloc_cols = cols(["key", "name", "bezirk", "pop_u21", "need_index", "expected_cases"]) + \
        [c for c in pub.columns if c[0].startswith("eur_")] + cols(["budget_eur", "budget_per_u21", "hze_cost_prev_eur", "change_pct"])
    need_cols = cols(["key", "name", "pop_u21", "hze_cases", "hze_per_1000", "expected_cases", "pi_low", "pi_high",
                      "expected_per_1000", "oe_ratio"])
    ind_cols = cols(["key", "name", "bezirk"]) + [c for c in pub.columns if c[0] in {i.name for i in result.catalogue.indicators}] \
        + cols(["need_index"])
    sorted_areas = areas.sort_values("key")

    total = int(f["budget_eur"].sum())
    summary = dict(eq.summary) if eq is not None else {}
    per = eq.per_area if eq is not None else pd.DataFrame()
    winners = per.sort_values("change_eur", ascending=False).head(5) if "change_eur" in per else per.head(0)
    losers = per.sort_values("change_eur").head(5) if "change_eur" in per else per.head(0)
    name_of = dict(zip(f["key"], f["name"]))

    coefs = model.coefficients.copy()
    coef_rows = []
    for _, r in coefs.iterrows():
        coef_rows.append([
            str(r.get("label", r["term"])),
            fmt.number(r["coef"], 3, lang), fmt.number(r["se"], 3, lang),
            fmt.number(r["irr"], 3, lang), f"{fmt.number(r['irr_low'], 3, lang)} – {fmt.number(r['irr_high'], 3, lang)}",
            ("< 0,001" if r["p_value"] < 0.001 else fmt.number(r["p_value"], 3, lang)),
        ])
    cv_rows = []
    if getattr(model, "cv", None) is not None and len(model.cv):
        for _, r in model.cv.iterrows():
            name = r.get("label", r.name)
            cv_rows.append([str(name), fmt.number(r.get("deviance_explained", np.nan), 3, lang),
                            fmt.number(r.get("mae_per_1000", np.nan), 2, lang)])

    figs = {
        "coefficients": figures.data_uri(figures.coefficient_plot(coefs, lang)),
    }
    if eq is not None and getattr(eq, "curve", None) is not None:
        figs["concentration"] = figures.data_uri(figures.concentration_curve_plot(eq.curve, summary.get("concentration_index", np.nan), lang))
    figs["budget_need"] = figures.data_uri(figures.budget_vs_need_plot(pd.DataFrame(f.drop(columns="geometry")), lang))
    if getattr(model, "funnel", None) is not None:
        mask = pub.mask["hze_cases"].to_numpy() if "hze_cases" in pub.mask else None
        figs["funnel"] = figures.data_uri(figures.funnel_plot_png(model.funnel, mask, lang))
    try:
        from geoplan.report.mapping import report_maps

        figs.update(report_maps(result, pub, lang))
    except ImportError:  # pragma: no cover - maps module is part of the package
        pass

    teil_rows = []
    tb = getattr(alloc, "teilbudgets", None)
    if tb is not None and len(tb):
        for _, r in tb.iterrows():
            teil_rows.append([str(r.get("id", "")), str(r.get("label", "")), str(r.get("rule", "")),
                              fmt.euro(r.get("amount_eur", np.nan)), "ja" if r.get("distributed", True) else "nein"])

    comp_rows = []
    for comp in result.allocation_spec.components:
        amount = f[f"eur_{comp.name}"].sum() if f"eur_{comp.name}" in f.columns else np.nan
        comp_rows.append([comp.label, comp.type, fmt.percent(comp.weight * 100, 1, lang), fmt.euro(amount),
                          getattr(comp, "describe", lambda: "")() if callable(getattr(comp, "describe", None)) else ""])

    notes = [n for n in result.notes]
    catalogue_rows = [
        [i.label, i.unit, i.direction, fmt.number(i.weight, 2, lang), i.source, i.reference_date,
         ", ".join(i.base) if i.base else (i.column or "")]
        for i in result.catalogue.indicators
    ]
    return {
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
        "winners": [[name_of.get(r["key"], r["key"]), fmt.euro(r["change_eur"]), fmt.percent(r.get("change_pct", np.nan))]
                    for _, r in winners.iterrows()],
        "losers": [[name_of.get(r["key"], r["key"]), fmt.euro(r["change_eur"]), fmt.percent(r.get("change_pct", np.nan))]
                   for _, r in losers.iterrows()],
        "alloc_header": [c[1] if lang == "de" else c[2] for c in alloc_cols],
        "alloc_rows": table_rows(sorted_areas, alloc_cols, lang),
        "alloc_total": fmt.euro(total, 0, lang),
        "alloc_ncols": len(alloc_cols),
        "need_header": [c[1] if lang == "de" else c[2] for c in need_cols],
        "need_rows": table_rows(sorted_areas, need_cols, lang),
        "ind_header": [c[1] if lang == "de" else c[2] for c in ind_cols],
        "ind_rows": table_rows(sorted_areas, ind_cols, lang),
        "coef_rows": coef_rows,
        "cv_rows": cv_rows,
        "model_fit": model.fit,
        "moran": getattr(model, "moran", None),
        "comp_rows": comp_rows,
        "teil_rows": teil_rows,
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
    }


def render_report(result, pub, lang: str = "de") -> str:
    return _env().get_template("bericht.html.j2").render(**report_context(result, pub, lang))


def write_report(result, pub, out_dir: Path, *, lang: str = "de", pdf: bool = True) -> list[Path]:
    html = render_report(result, pub, lang)
    path = out_dir / "bericht.html"
    path.write_text(html, encoding="utf-8")
    written = [path]
    if pdf:
        from weasyprint import HTML

        pdf_path = out_dir / "bericht.pdf"
        HTML(string=html, base_url=str(out_dir)).write_pdf(pdf_path, uncompressed_pdf=False)
        written.append(pdf_path)
    return written


def write_map(result, pub, out_dir: Path, *, lang: str = "de") -> list[Path]:
    from geoplan.report.mapping import write_karte

    return [write_karte(result, pub, out_dir / "karte.html", lang=lang)]
