"""verteilung.xlsx: one sheet per table, numbers as numbers, frozen headers.

Number formats use Excel's locale-neutral codes (``#,##0``), which German Excel
shows as 1.234; suppressed counts are the text marker (e.g. "< 3"). The
allocation sheet reconciles by row (components + corridor adjustment = budget,
with a check column as a formula) and every money column has a total as a
``=SUM`` formula (German Excel shows ``=SUMME``). Text is always written as
text: a name starting with ``=``, ``+``, ``-`` or ``@`` never becomes a formula.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.properties import PageSetupProperties

NUMBER_FORMATS = {
    "int": "#,##0", "count": "#,##0", "num0": "#,##0", "euro": '#,##0 "€"', "euro2": '#,##0.00 "€"', "num3": "0.000",
    "euroq": '#,##0" €"',  # a quantile (same look as euro): no =SUM total, a sum of quantiles is no quantile
    "pct": '0.0 "%"', "index": "0.00", "ratio": "0.00", "rate": "0.0", "num1": "#,##0.0",
    "coef": "0.000", "p": "0.0000",
}
#: number format of an equity measure by its unit in the vocabulary
_UNIT_FORMATS = {"Anzahl": "int", "Jahr": "text", "€": "euro", "%": "num1", "Index": "coef"}
HEADER_FILL = PatternFill("solid", fgColor="DCE6F1")


def _cell_value(v):
    if v is None or v is pd.NA:
        return None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return None if np.isnan(v) else float(v)
    return v


_FORMULA_START = ("=", "+", "-", "@")


def _as_text(ws, min_row: int = 1) -> None:
    """Every string cell stays text (CSV/formula injection: '=HYPERLINK(…)' as a Sozialraum name)."""
    for row in ws.iter_rows(min_row=min_row):
        for c in row:
            if isinstance(c.value, str) and (c.data_type == "f" or c.value.startswith(_FORMULA_START)):
                c.data_type = "s"
                c.quotePrefix = True


def _print_setup(ws, *, freeze: str = "A2", filter_rows: int | None = None) -> None:
    """Frozen header (and name columns), autofilter, header row repeated on every page, landscape fit to width."""
    ws.freeze_panes = freeze
    if filter_rows:
        ws.auto_filter.ref = f"A1:{get_column_letter(ws.max_column)}{filter_rows}"
    ws.print_title_rows = "1:1"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0


def _sheet(wb: Workbook, title: str, header: list[str], rows: list[list], formats: list[str] | None = None, widths=None):
    ws = wb.create_sheet(title)
    ws.append(header)
    for c in ws[1]:
        c.font = Font(bold=True)
        c.fill = HEADER_FILL
        c.alignment = Alignment(wrap_text=True, vertical="top")
    for r in rows:
        ws.append([_cell_value(v) for v in r])
    _as_text(ws)
    if formats:
        for j, f in enumerate(formats, start=1):
            nf = NUMBER_FORMATS.get(f)
            if nf:
                for row in ws.iter_rows(min_row=2, min_col=j, max_col=j):
                    for c in row:
                        if isinstance(c.value, (int, float)) or c.data_type == "f":
                            c.number_format = nf
    _print_setup(ws, filter_rows=len(rows) + 1 if rows else None)
    for j in range(1, len(header) + 1):
        ws.column_dimensions[get_column_letter(j)].width = (widths[j - 1] if widths else 16)
    return ws


def write_xlsx(result, pub, path: Path, lang: str = "de") -> Path:
    from geoplan.report import vocabulary as voc

    en = lang == "en"
    W = lambda de, en_: en_ if en else de  # noqa: E731
    sheet = lambda key: voc.label("sheet." + key, lang)  # noqa: E731
    ind_names = {i.name: ((i.label_en or i.label) if en else i.label) for i in result.catalogue.indicators}
    wb = Workbook()
    wb.remove(wb.active)
    areas = pub.areas.sort_values("key")
    cols = pub.columns
    header = [c[1] if lang == "de" else c[2] for c in cols]
    if result.simulated:
        header = [h + (W(" (simuliert)", " (simulated)") if c[0] in ("hze_cases", "hze_per_1000", "hze_cases_forecast", "oe_ratio", "hze_cost_prev_eur") else "")
                  for h, c in zip(header, cols)]
    rows = areas[[c[0] for c in cols]].astype(object).values.tolist()  # each value as the row iteration gave it
    ws = allocation_sheet(wb, sheet("allocation"), header, rows, cols, lang)

    coefs = result.model.coefficients
    # the predictor in words (the model term is a code name and stays out); p-values with four decimals
    ccols = [c for c in ["coef", "se", "z", "p_value", "ci_low", "ci_high", "irr", "irr_low", "irr_high"] if c in coefs.columns]
    crows = []
    for _i, r in coefs.iterrows():
        term = str(r.get("term", ""))
        name = W("Konstante", "Constant") if term in ("const", "Intercept") else (
            ind_names.get(term.removeprefix("z_")) or str(r.get("label", term)))
        crows.append([name] + [r[c] for c in ccols])
    _sheet(wb, sheet("model"), [voc.label("coef.label", lang)] + [voc.label("coef." + c, lang) for c in ccols], crows,
           ["text"] + ["p" if c == "p_value" else "coef" for c in ccols], widths=[40] + [14] * len(ccols))

    if getattr(result, "uncertainty", None) is not None:  # model.family: bym2
        bym2_sheet(wb, result.uncertainty, lang)

    s = result.equity.summary
    # without two groups (boundaries.group) there is nothing between or within districts: no rows for it
    s = {k: v for k, v in s.items() if not (k.startswith(("theil_between", "theil_within")) and v is None)}
    ws = _sheet(wb, sheet("equity"), [W("Kennzahl", "Measure"), W("Wert", "Value")],
                [[voc.label(k, lang), _summary_value(v)] for k, v in s.items()], ["text", "text"], widths=[60, 18])
    for r, k in enumerate(s, start=2):  # each measure in its unit: 58 Sozialräume, not 58,00
        t = voc.term(k)
        nf = NUMBER_FORMATS.get(_UNIT_FORMATS.get(t.unit if t else "", "coef"))
        if nf and isinstance(ws.cell(row=r, column=2).value, (int, float)):
            ws.cell(row=r, column=2).number_format = nf
    conv = getattr(result.equity, "convergence", None)
    if conv is not None:
        names = dict(zip(result.frame["key"], result.frame["name"]))
        p = conv.path.copy()
        years = [c for c in p.columns if c.startswith("jahr_")]
        target = result.frame.set_index("key")["budget_eur"] - result.frame.set_index("key")["eur_korridor"]
        head = ([voc.label("key", lang), voc.label("name", lang), voc.label("target_eur", lang)]
                + [f"{W('Jahr', 'Year')} {c[5:]}" for c in years] + [voc.label("years_to_target", lang)])
        first = conv.first_year
        prow = [[k, names.get(k, ""), int(target[k])] + [int(v) for v in r] +
                [int(fy) if np.isfinite(fy) else W("nie", "never")]
                for k, r, fy in zip(p["key"], p[years].to_numpy().tolist(), first)]
        _sheet(wb, sheet("path"), head, prow, ["text", "text"] + ["euro"] * (len(years) + 1) + ["int"],
               widths=[10, 28] + [14] * (len(years) + 2))

    spec = result.allocation_spec
    comp_rows = []
    for comp in spec.components:
        col = f"eur_{comp.name}"
        comp_rows.append([comp.label or comp.name, voc.label("type." + comp.type, lang, comp.type),
                          voc.term("type." + comp.type).explanation(lang) if voc.term("type." + comp.type) else "",
                          float(comp.weight),
                          int(result.frame[col].sum()) if col in result.frame.columns else None])
    ws = _sheet(wb, sheet("formula"), [W("Bestandteil", "Component"), W("Art", "Type"), W("Verteilt nach", "Distributed by"),
                                       W("Gewicht", "Weight"), W("Betrag (€)", "Amount (€)")], comp_rows,
                ["text", "text", "text", "index", "euro"], widths=[40, 18, 40, 10, 16])
    _sum_row(ws, [4, 5], ["index", "euro"], W("Summe", "Total"))
    r = ws.max_row + 2
    from geoplan import fmt

    total = fmt.euro(int(result.frame["budget_eur"].sum()), 0, lang)
    lines = [
        W("Budget je Sozialraum i = Σ_k Gewicht_k · Anteil_ik · Gesamtbudget (Anteile je Bestandteil summieren sich zu 1).",
          "Budget of Sozialraum i = Σ_k weight_k · share_ik · total budget (the shares of each component add up to 1)."),
        W("Rundung auf ganze Euro nach dem Verfahren der größten Reste (Hamilton): die Zeilen ergeben genau das Gesamtbudget.",
          "Rounded to whole euros by the largest-remainder method (Hamilton): the rows add up exactly to the total budget."),
        W(f"Gesamtbudget: {total}; Haushaltsjahr {result.config.budget_year}.",
          f"Total budget: {total}; budget year {result.config.budget_year}."),
        W(f"HzE-Fallzahlen von 1 bis {pub.k - 1} sind unterdrückt („< {pub.k}“).",
          f"HzE case counts from 1 to {pub.k - 1} are suppressed (“< {pub.k}”)."),
    ]
    if result.simulated:
        lines.append(W("HzE-Fallzahlen und Kosten sind simuliert (keine amtlichen Daten).",
                       "HzE case counts and costs are simulated (not official data)."))
    for i, line in enumerate(lines):
        ws.cell(row=r + i, column=1, value=line)

    tb = getattr(result.allocation, "teilbudgets", None)
    if tb is not None and len(tb):
        tcols = [c for c in ["id", "label", "rule", "amount_eur", "distributed"] if c in tb.columns]
        head = {c: voc.label("teil." + c, lang) for c in tcols}
        from geoplan.report.claims import teilbudget_texts

        texts = [dict(zip(("label", "rule"), teilbudget_texts(r, result.allocation_spec, lang))) for _i, r in tb.iterrows()]
        trows = [[W("ja" if v else "nein", "yes" if v else "no") if isinstance(v, (bool, np.bool_)) else texts[i].get(c, v)
                  for c, v in zip(tcols, r)] for i, r in enumerate(tb[tcols].values.tolist())]
        ws = _sheet(wb, sheet("teilbudgets"), [head[c] for c in tcols], trows, ["text", "text", "text", "euro", "text"][: len(tcols)],
                    widths=[12, 30, 30, 16, 14])
        if "amount_eur" in tcols:
            _sum_row(ws, [tcols.index("amount_eur") + 1], ["euro"], W("Summe", "Total"))

    view = getattr(result, "settlement", None)
    if view is not None:
        settlement_sheet(wb, view, lang, result.config)

    sens = getattr(result, "sensitivity", None)
    if sens is not None:  # computed by the pipeline (geoplan.stages.sensitivity.weight_sensitivity)
        scols = [("key", voc.label("key", lang), "text"), ("name", voc.label("name", lang), "text"),
                 ("budget_eur", W("Budget (€)", "Budget (€)"), "euro"),
                 ("p05_eur", W("5-%-Quantil (€)", "5 % quantile (€)"), "euro"), ("p50_eur", W("Median (€)", "Median (€)"), "euro"),
                 ("p95_eur", W("95-%-Quantil (€)", "95 % quantile (€)"), "euro"),
                 ("range_pct", W("Spanne 5–95 % (% des Budgets)", "Range 5–95 % (% of the budget)"), "rate"),
                 ("rank", W("Rang", "Rank"), "int"), ("rank_p05", W("Rang 5 %", "Rank 5 %"), "int"),
                 ("rank_p95", W("Rang 95 %", "Rank 95 %"), "int"),
                 ("rank_same_share", W("Anteil Ziehungen mit gleichem Rang", "Share of draws with the same rank"), "ratio")]
        scols = [c for c in scols if c[0] in sens.table.columns]
        ws = _sheet(wb, sheet("sensitivity"), [c[1] for c in scols], sens.table.sort_values("key")[[c[0] for c in scols]].values.tolist(),
                    [c[2] for c in scols], widths=[10, 28] + [14] * (len(scols) - 2))
        ws.cell(row=ws.max_row + 2, column=1,
                value=W(f"{sens.n_draws} Monte-Carlo-Ziehungen der Gewichte (Dirichlet, Konzentration {sens.concentration:g}, "
                        f"Startwert {sens.seed}); der Korridor gilt in jeder Ziehung.",
                        f"{sens.n_draws} Monte Carlo draws of the weights (Dirichlet, concentration {sens.concentration:g}, "
                        f"seed {sens.seed}); the corridor holds in every draw."))

    inp = [[voc.label("role." + i.role, lang, i.role), i.label or i.name, i.source or "", i.licence or "",
            i.reference_date or "", i.rows, i.sha256, i.qa_text(lang)]
           for i in result.inputs]
    _sheet(wb, sheet("inputs"), [W("Rolle", "Role"), W("Datei", "File"), W("Quelle", "Source"), W("Lizenz", "Licence"),
                                 W("Stand", "Date"), W("Zeilen", "Rows"), "SHA-256", W("Prüfung", "Check")], inp,
           ["text", "text", "text", "text", "text", "int", "text", "text"], widths=[18, 32, 30, 16, 12, 10, 20, 30])
    base_dir = getattr(result.config, "base_dir", None)
    notes = [voc.humanize_note(n, lang, base_dir, ind_names) for n in result.notes]
    _sheet(wb, sheet("qa"), [W("Stufe", "Stage"), W("Art", "Level"), W("Befund", "Finding"), W("Stelle", "Location")],
           [[n.stage, n.level, n.message, n.location or n.file or ""] for n in notes], widths=[22, 10, 90, 30])
    # fixed document properties keep the file byte-stable between runs
    from datetime import datetime

    wb.properties.creator = "geoplan"
    fixed = datetime(result.config.budget_year, 1, 1)
    wb.properties.created = fixed
    wb.properties.modified = fixed
    wb.save(path)
    _normalise_zip(path)
    return path


def _normalise_zip(path: Path) -> None:
    """Rewrite the xlsx zip with fixed member timestamps (byte-identical outputs)."""
    import zipfile

    data = []
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            data.append((info.filename, z.read(info.filename)))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in data:
            if name == "docProps/core.xml":
                # openpyxl stamps the save time as "modified"; use the fixed creation date instead
                text = content.decode("utf-8")
                created = re.search(r"<dcterms:created[^>]*>([^<]*)<", text)
                if created:
                    text = re.sub(r"(<dcterms:modified[^>]*>)[^<]*(<)", lambda m: m.group(1) + created.group(1) + m.group(2), text)
                content = text.encode("utf-8")
            zi = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, content)


def _summary_value(v):
    if isinstance(v, list):
        return "; ".join(f"{a[0]}: {a[1]}" if isinstance(a, (list, tuple)) else str(a) for a in v)
    return _cell_value(v)


def _sum_row(ws, columns: list[int], formats: list[str], label: str = "Summe") -> None:
    """A bold total row under the table with =SUM formulas for ``columns`` (1-based)."""
    last = ws.max_row
    total = last + 1
    ws.cell(row=total, column=1, value=label).font = Font(bold=True)
    for j, f in zip(columns, formats):
        col = get_column_letter(j)
        cell = ws.cell(row=total, column=j, value=f"=SUM({col}2:{col}{last})")
        cell.number_format = NUMBER_FORMATS.get(f, "#,##0")
        cell.font = Font(bold=True)


#: money columns that get a =SUM total; per-head and % columns get a ratio of the totals
_SUM_FORMATS = ("euro", "int")


def allocation_sheet(wb: Workbook, title: str, header: list[str], rows: list[list], cols, lang: str = "de"):
    """The Kämmerei sheet: one row per Sozialraum, reconciliation check column, =SUM totals."""
    names = [c[0] for c in cols]
    check_header = ("Abgleich: Bestandteile + Korridor − Budget" if lang == "de" else
                    "Check: components + corridor − budget")
    parts = [j for j, n in enumerate(names) if n.startswith("eur_")]
    has_check = bool(parts) and "budget_eur" in names
    ws = _sheet(wb, title, header + ([check_header] if has_check else []), rows,
                [c[3] for c in cols] + (["euro"] if has_check else []),
                widths=[10, 28, 20] + [14] * (len(cols) - 3) + ([16] if has_check else []))
    first, last = 2, len(rows) + 1
    letter = {n: get_column_letter(j + 1) for j, n in enumerate(names)}
    if has_check:
        jc = len(cols) + 1
        lb = letter["budget_eur"]
        for r in range(first, last + 1):
            terms = "+".join(f"{get_column_letter(j + 1)}{r}" for j in parts)
            cell = ws.cell(row=r, column=jc, value=f"={terms}-{lb}{r}")
            cell.number_format = NUMBER_FORMATS["euro"]
    total = last + 1
    ws.cell(row=total, column=1, value="Summe" if lang == "de" else "Total")
    for j, c in enumerate(cols, start=1):
        col = get_column_letter(j)
        if c[3] in _SUM_FORMATS and c[0] not in ("key",) and j > 3:
            cell = ws.cell(row=total, column=j, value=f"=SUM({col}{first}:{col}{last})")
            cell.number_format = NUMBER_FORMATS.get(c[3], "#,##0")
    if "budget_per_u21" in names and "budget_eur" in names and "pop_u21" in names:
        cell = ws.cell(row=total, column=names.index("budget_per_u21") + 1,
                       value=f"={letter['budget_eur']}{total}/{letter['pop_u21']}{total}")
        cell.number_format = NUMBER_FORMATS["euro2"]
    if "change_pct" in names and "change_eur" in names and "hze_cost_prev_eur" in names:
        cell = ws.cell(row=total, column=names.index("change_pct") + 1,
                       value=f"={letter['change_eur']}{total}/{letter['hze_cost_prev_eur']}{total}*100")
        cell.number_format = NUMBER_FORMATS["pct"]
    if has_check:
        jc = get_column_letter(len(cols) + 1)
        cell = ws.cell(row=total, column=len(cols) + 1, value=f"=SUM({jc}{first}:{jc}{last})")
        cell.number_format = NUMBER_FORMATS["euro"]
    for c in ws[total]:
        c.font = Font(bold=True)
    _print_setup(ws, freeze="C2", filter_rows=last)
    return ws


#: diagnostics of the BYM2 sheet: key -> (German, English)
BYM2_DIAGNOSTICS = {
    "chains": ("Ketten", "Chains"), "warmup": ("Aufwärmschritte je Kette", "Warm-up steps per chain"),
    "draws": ("Ziehungen je Kette", "Draws per chain"), "n_draws": ("Ziehungen zusammen", "Draws in total"),
    "seed": ("Startwert", "Seed"), "max_r_hat": ("größtes R̂ (Parameter und erwartete Fälle)", "largest R̂ (parameters and expected cases)"),
    "max_r_hat_effects": ("größtes R̂ der einzelnen Gebietseffekte θ, φ (nur ihre Summe ist bestimmt)",
                          "largest R̂ of the separate area effects θ, φ (only their sum is identified)"),
    "min_ess": ("kleinste effektive Stichprobengröße (Parameter)", "smallest effective sample size (parameters)"),
    "n_divergent": ("divergente Übergänge", "divergent transitions"),
    "n_components": ("zusammenhängende Teile der Nachbarschaft", "connected parts of the adjacency"),
    "n_islands": ("Sozialräume ohne Nachbarn", "Sozialräume without neighbours"),
    "n_edges": ("Nachbarpaare (Queen-Kontiguität)", "neighbour pairs (queen contiguity)"),
    "waic": ("WAIC", "WAIC"), "waic_se": ("Standardfehler des WAIC", "standard error of the WAIC"),
    "p_waic": ("effektive Parameterzahl (WAIC)", "effective number of parameters (WAIC)"),
}


def bym2_sheet(wb: Workbook, u, lang: str = "de"):
    """The spatial model: posterior summary of the parameters, then the sampler's diagnostics (key in column A)."""
    de = lang == "de"
    head = (["Parameter", "Bezeichnung", "Mittelwert", "Std.-Abw.", "2,5-%-Quantil", "97,5-%-Quantil", "R̂", "ESS"] if de else
            ["Parameter", "Label", "Mean", "SD", "2.5 % quantile", "97.5 % quantile", "R̂", "ESS"])
    rows = [[str(k), str(r["label"]), float(r["mean"]), float(r["sd"]), float(r["q2.5"]), float(r["q97.5"]),
             float(r["r_hat"]), float(r["ess"])] for k, r in u.summary.iterrows()]
    ws = _sheet(wb, "BYM2", head, rows, ["text", "text"] + ["num3"] * 4 + ["num3", "int"], widths=[18, 44] + [14] * 6)
    r0 = ws.max_row + 2
    extra = {**u.diagnostics, "interval": u.interval}
    labels = {**BYM2_DIAGNOSTICS, "interval": ("Wahrscheinlichkeit der Intervalle des Zielwerts", "probability of the target's intervals")}
    for i, (k, v) in enumerate(extra.items()):
        ws.cell(row=r0 + i, column=1, value=k)
        ws.cell(row=r0 + i, column=2, value=labels.get(k, (k, k))[0 if de else 1])
        ws.cell(row=r0 + i, column=3, value=_cell_value(v))
    return ws


def settlement_sheet(wb: Workbook, view, lang: str = "de", config=None):
    """Abrechnung: the rules, then the payout per Sozialraum with =SUM totals, then the settlement if actual costs were given."""
    from geoplan.report.vocabulary import label as voc_label

    en = lang == "en"
    W = lambda de, en_: en_ if en else de  # noqa: E731
    rules = view.rules.values.tolist()
    if en and config is not None and getattr(config, "settlement", None) is not None:
        from geoplan.report.i18n import gettext
        from geoplan.stages.settlement import describe_settlement

        _ = gettext(lang)  # the rules in English, as the report writes them
        rules = [[_(str(r["regel"])), str(r["beschreibung"])] for _i, r in describe_settlement(config.settlement, lang).iterrows()]
    ws = _sheet(wb, voc_label("sheet.settlement", lang), [W("Regel", "Rule"), W("Beschreibung", "Description")],
                rules, ["text", "text"], widths=[18, 90])
    if view.payout is not None and len(view.payout):
        p = view.payout
        head = {"key": voc_label("key", lang), "name": voc_label("name", lang), "budget_eur": "Budget",
                "unconditional_eur": W("in Raten (unbedingt)", "in instalments (unconditional)"),
                "rate_eur": W("1. Rate", "1st instalment"), "bonus_max_eur": W("Leistungsbonus höchstens", "Performance bonus, at most")}
        for i, lab in enumerate(view.payout_labels, start=1):
            head[f"cond_{i}_eur"] = f"{W('bedingt', 'conditional')}: {lab}"
        start = ws.max_row + 2
        cols = list(p.columns)
        for j, c in enumerate(cols, start=1):
            cell = ws.cell(row=start, column=j, value=head.get(c, c))
            cell.font = Font(bold=True)
            cell.fill = HEADER_FILL
            cell.alignment = Alignment(wrap_text=True, vertical="top")
        for i, row in enumerate(p.itertuples(index=False), start=start + 1):
            for j, v in enumerate(row, start=1):
                cell = ws.cell(row=i, column=j, value=_cell_value(v))
                if isinstance(cell.value, (int, float)):
                    cell.number_format = NUMBER_FORMATS["euro"]
        last = start + len(p)
        ws.cell(row=last + 1, column=1, value=W("Summe", "Total")).font = Font(bold=True)
        for j, c in enumerate(cols, start=1):
            if c.endswith("_eur"):
                col = get_column_letter(j)
                cell = ws.cell(row=last + 1, column=j, value=f"=SUM({col}{start + 1}:{col}{last})")
                cell.number_format = NUMBER_FORMATS["euro"]
                cell.font = Font(bold=True)
        _as_text(ws, start)
    if view.settled is not None:
        t = view.settled.table
        start = ws.max_row + 2
        labels = {"budget_eur": "Budget", "actual_eur": W("Ist-Kosten", "Actual costs"), "surplus_eur": W("Einsparung", "Savings"),
                  "provider_eur": W("davon Träger", "of which provider"),
                  "public_eur": W("davon öffentlicher Träger", "of which public body"),
                  "overspend_eur": W("Überschreitung", "Overspend"),
                  "refinanced_eur": W("davon nachfinanziert", "of which refinanced"),
                  "uncovered_eur": W("davon ungedeckt", "of which uncovered"),
                  "adjusted_budget_eur": W("angepasstes Budget", "Adjusted budget"),
                  "next_budget_eur": W("Budget nächste Periode", "Budget next period")}
        cols = list(t.columns)
        for j, c in enumerate(cols, start=1):
            cell = ws.cell(row=start, column=j, value=labels.get(c, voc_label("key", lang) if j == 1 else voc_label(c, lang)))
            cell.font = Font(bold=True)
            cell.fill = HEADER_FILL
        for i, row in enumerate(t.itertuples(index=False), start=start + 1):
            for j, v in enumerate(row, start=1):
                cell = ws.cell(row=i, column=j, value=_cell_value(v))
                if isinstance(cell.value, (int, float)):
                    cell.number_format = NUMBER_FORMATS["euro"]
        last = start + len(t)
        ws.cell(row=last + 1, column=1, value=W("Summe", "Total")).font = Font(bold=True)
        for j, c in enumerate(cols, start=1):
            if c.endswith("_eur"):
                col = get_column_letter(j)
                ws.cell(row=last + 1, column=j, value=f"=SUM({col}{start + 1}:{col}{last})").number_format = NUMBER_FORMATS["euro"]
        _as_text(ws, start)
    for j in range(3, ws.max_column + 1):
        ws.column_dimensions[get_column_letter(j)].width = 16
    ws.auto_filter.ref = None
    return ws
