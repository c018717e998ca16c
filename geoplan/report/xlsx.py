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
    "int": "#,##0", "count": "#,##0", "num0": "#,##0", "euro": '#,##0 "€"', "euro2": '#,##0.00 "€"',
    "pct": '0.0 "%"', "index": "0.00", "ratio": "0.00", "rate": "0.0", "num1": "#,##0.0",
}
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
    wb = Workbook()
    wb.remove(wb.active)
    areas = pub.areas.sort_values("key")
    cols = pub.columns
    header = [c[1] if lang == "de" else c[2] for c in cols]
    if result.simulated:
        header = [h + (" (simuliert)" if c[0] in ("hze_cases", "hze_per_1000", "oe_ratio", "hze_cost_prev_eur") else "")
                  for h, c in zip(header, cols)]
    rows = [[row[c[0]] for c in cols] for _, row in areas.iterrows()]
    ws = allocation_sheet(wb, "Verteilung", header, rows, cols, lang)

    coefs = result.model.coefficients
    ccols = [c for c in ["label", "term", "coef", "se", "z", "p_value", "ci_low", "ci_high", "irr", "irr_low", "irr_high"] if c in coefs.columns]
    _sheet(wb, "Bedarfsmodell", ccols, coefs[ccols].values.tolist(), ["text", "text"] + ["index"] * (len(ccols) - 2), widths=[28, 20] + [12] * (len(ccols) - 2))

    s = result.equity.summary
    _sheet(wb, "Gerechtigkeit", ["Kennzahl", "Wert", "Schlüssel"] if lang == "de" else ["Measure", "Value", "Key"],
           [[SUMMARY_LABELS.get(k, (k, k))[0 if lang == "de" else 1], _summary_value(v), k] for k, v in s.items()],
           ["text", "index", "text"], widths=[52, 16, 30])
    conv = getattr(result.equity, "convergence", None)
    if conv is not None:
        names = dict(zip(result.frame["key"], result.frame["name"]))
        p = conv.path.copy()
        years = [c for c in p.columns if c.startswith("jahr_")]
        target = result.frame.set_index("key")["budget_eur"] - result.frame.set_index("key")["eur_korridor"]
        head = ["Schlüssel", "Sozialraum", "Zielwert (Formel)"] + [f"Jahr {c[5:]}" for c in years] + ["Jahre bis Ziel"]
        first = conv.first_year
        prow = [[k, names.get(k, ""), int(target[k])] + [int(v) for v in r[years]] +
                [int(fy) if np.isfinite(fy) else "nie"] for (k, r), fy in zip(p.set_index("key").iterrows(), first)]
        _sheet(wb, "Zielpfad", head, prow, ["text", "text"] + ["euro"] * (len(years) + 1) + ["int"],
               widths=[10, 28] + [14] * (len(years) + 2))

    spec = result.allocation_spec
    comp_rows = []
    for comp in spec.components:
        col = f"eur_{comp.name}"
        comp_rows.append([comp.name, comp.label, comp.type, float(comp.weight),
                          int(result.frame[col].sum()) if col in result.frame.columns else None])
    ws = _sheet(wb, "Formel", ["Bestandteil", "Bezeichnung", "Art", "Gewicht", "Betrag (€)"], comp_rows,
                ["text", "text", "text", "index", "euro"], widths=[18, 36, 18, 10, 16])
    _sum_row(ws, [4, 5], ["index", "euro"])
    r = ws.max_row + 2
    lines = [
        "Budget je Sozialraum i = Σ_k Gewicht_k · Anteil_ik · Gesamtbudget (Anteile je Bestandteil summieren sich zu 1).",
        "Rundung auf ganze Euro nach dem Verfahren der größten Reste (Hamilton): die Zeilen ergeben genau das Gesamtbudget.",
        f"Gesamtbudget: {int(result.frame['budget_eur'].sum())} €; Haushaltsjahr {result.config.budget_year}.",
        f"HzE-Fallzahlen von 1 bis {pub.k - 1} sind unterdrückt („< {pub.k}“).",
    ]
    if result.simulated:
        lines.append("HzE-Fallzahlen und Kosten sind simuliert (keine amtlichen Daten).")
    for i, line in enumerate(lines):
        ws.cell(row=r + i, column=1, value=line)

    tb = getattr(result.allocation, "teilbudgets", None)
    if tb is not None and len(tb):
        tcols = [c for c in ["id", "label", "rule", "amount_eur", "distributed"] if c in tb.columns]
        head = {"id": "Teilbudget", "label": "Bezeichnung", "rule": "Regel", "amount_eur": "Betrag (€)",
                "distributed": "an Sozialräume verteilt"}
        trows = [[("ja" if v else "nein") if isinstance(v, (bool, np.bool_)) else v for v in r] for r in tb[tcols].values.tolist()]
        ws = _sheet(wb, "Teilbudgets", [head[c] for c in tcols], trows, ["text", "text", "text", "euro", "text"][: len(tcols)],
                    widths=[12, 30, 30, 16, 14])
        if "amount_eur" in tcols:
            _sum_row(ws, [tcols.index("amount_eur") + 1], ["euro"])

    view = getattr(result, "settlement", None)
    if view is not None:
        settlement_sheet(wb, view, lang)

    sens = getattr(result, "sensitivity", None)
    if sens is not None:  # computed by the pipeline (geoplan.stages.sensitivity.weight_sensitivity)
        scols = [("key", "Schlüssel", "text"), ("name", "Name", "text"), ("budget_eur", "Budget (€)", "euro"),
                 ("p05_eur", "5-%-Quantil (€)", "euro"), ("p50_eur", "Median (€)", "euro"),
                 ("p95_eur", "95-%-Quantil (€)", "euro"), ("range_pct", "Spanne 5–95 % (% des Budgets)", "rate"),
                 ("rank", "Rang", "int"), ("rank_p05", "Rang 5 %", "int"), ("rank_p95", "Rang 95 %", "int"),
                 ("rank_same_share", "Anteil Ziehungen mit gleichem Rang", "ratio")]
        scols = [c for c in scols if c[0] in sens.table.columns]
        ws = _sheet(wb, "Sensitivität", [c[1] for c in scols], sens.table.sort_values("key")[[c[0] for c in scols]].values.tolist(),
                    [c[2] for c in scols], widths=[10, 28] + [14] * (len(scols) - 2))
        ws.cell(row=ws.max_row + 2, column=1,
                value=f"{sens.n_draws} Monte-Carlo-Ziehungen der Gewichte (Dirichlet, Konzentration {sens.concentration:g}, "
                      f"Startwert {sens.seed}); der Korridor gilt in jeder Ziehung.")

    inp = [[i.role, i.label or i.path.name, i.source or "", i.licence or "", i.reference_date or "", i.rows, i.sha256, i.qa]
           for i in result.inputs]
    _sheet(wb, "Datengrundlage", ["Rolle", "Datei", "Quelle", "Lizenz", "Stand", "Zeilen", "SHA-256", "Prüfung"], inp,
           ["text", "text", "text", "text", "text", "int", "text", "text"], widths=[18, 32, 30, 16, 12, 10, 20, 30])
    _sheet(wb, "QA", ["Stufe", "Art", "Befund", "Stelle"],
           [[n.stage, n.level, n.message, n.location or n.file or ""] for n in result.notes], widths=[14, 10, 90, 30])
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


SUMMARY_LABELS = {
    "n_areas": ("Sozialräume", "Sozialräume"),
    "total_budget_eur": ("Budget gesamt (€)", "Total budget (€)"),
    "corridor_pct": ("Korridor ± %", "Corridor ± %"),
    "n_winners": ("Sozialräume mit mehr Geld als im Vorjahr", "Sozialräume with more than last year"),
    "n_losers": ("Sozialräume mit weniger Geld als im Vorjahr", "Sozialräume with less than last year"),
    "n_unchanged": ("Sozialräume unverändert", "Sozialräume unchanged"),
    "total_prior_eur": ("Kosten Vorjahr gesamt (€)", "Total prior-year costs (€)"),
    "total_change_eur": ("Veränderung gesamt (€)", "Total change (€)"),
    "total_distance_to_target_eur": ("Abstand Vorjahr–Zielwert netto (€)", "Net distance prior year to target (€)"),
    "sum_abs_distance_to_target_eur": ("Abstand Vorjahr–Zielwert, Summe der Beträge (€)",
                                       "Distance prior year to target, sum of absolute values (€)"),
    "target_tolerance_pct": ("Toleranz am Zielwert ± %", "Tolerance at target ± %"),
    "n_at_target_year1": ("Sozialräume am Zielwert im ersten Jahr", "Sozialräume at target in year 1"),
    "years_until_all_at_target": ("Jahr, in dem der letzte Sozialraum den Zielwert erreicht",
                                  "Year in which the last Sozialraum reaches its target"),
    "n_never_at_target": ("Sozialräume, die den Zielwert nie erreichen", "Sozialräume that never reach their target"),
    "never_at_target": ("Schlüssel dieser Sozialräume", "Keys of these Sozialräume"),
    "never_at_target_names": ("Namen dieser Sozialräume", "Names of these Sozialräume"),
    "convergence": ("Sozialräume am Zielwert je Jahr (Jahr: Anzahl)", "Sozialräume at target per year (year: count)"),
    "concentration_index": ("Konzentrationsindex (Bedarf, je Einwohner u. 21)", "Concentration index (need, per resident u. 21)"),
    "gini_budget_per_u21": ("Gini Budget je Einwohner u. 21", "Gini budget per resident u. 21"),
    "gini_budget_per_u21_areas": ("Gini je Sozialraum (ungewichtet)", "Gini per Sozialraum (unweighted)"),
    "theil": ("Theil gesamt", "Theil total"),
    "theil_areas": ("Theil je Sozialraum (ungewichtet)", "Theil per Sozialraum (unweighted)"),
    "theil_between": ("Theil zwischen Bezirken", "Theil between districts"),
    "theil_within": ("Theil innerhalb der Bezirke", "Theil within districts"),
    "theil_between_areas": ("Theil zwischen Bezirken (ungewichtet)", "Theil between districts (unweighted)"),
    "theil_within_areas": ("Theil innerhalb der Bezirke (ungewichtet)", "Theil within districts (unweighted)"),
    "corr_budget_per_u21_need": ("Korrelation Budget je Kopf – Bedarfsindex (Pearson)", "Correlation budget per head – need (Pearson)"),
    "spearman_budget_per_u21_need": ("Rangkorrelation Budget je Kopf – Bedarfsindex (Spearman)",
                                     "Rank correlation budget per head – need (Spearman)"),
    "total_observed_cases": ("HzE-Fälle beobachtet gesamt", "Observed HzE cases, total"),
    "observed_expected_total": ("Beobachtet/erwartet gesamt", "Observed/expected, total"),
}


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


def settlement_sheet(wb: Workbook, view, lang: str = "de"):
    """Abrechnung: the rules, then the payout per Sozialraum with =SUM totals, then the settlement if actual costs were given."""
    ws = _sheet(wb, "Abrechnung", ["Regel", "Beschreibung"], view.rules.values.tolist(), ["text", "text"], widths=[18, 90])
    if view.payout is not None and len(view.payout):
        p = view.payout
        head = {"key": "Schlüssel", "name": "Sozialraum", "budget_eur": "Budget", "unconditional_eur": "in Raten (unbedingt)",
                "rate_eur": "1. Rate", "bonus_max_eur": "Leistungsbonus höchstens"}
        for i, lab in enumerate(view.payout_labels, start=1):
            head[f"cond_{i}_eur"] = f"bedingt: {lab}"
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
        ws.cell(row=last + 1, column=1, value="Summe").font = Font(bold=True)
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
        labels = {"budget_eur": "Budget", "actual_eur": "Ist-Kosten", "surplus_eur": "Einsparung", "provider_eur": "davon Träger",
                  "public_eur": "davon öffentlicher Träger", "overspend_eur": "Überschreitung",
                  "refinanced_eur": "davon nachfinanziert", "uncovered_eur": "davon ungedeckt",
                  "adjusted_budget_eur": "angepasstes Budget", "next_budget_eur": "Budget nächste Periode"}
        cols = list(t.columns)
        for j, c in enumerate(cols, start=1):
            cell = ws.cell(row=start, column=j, value=labels.get(c, "Schlüssel" if j == 1 else c))
            cell.font = Font(bold=True)
            cell.fill = HEADER_FILL
        for i, row in enumerate(t.itertuples(index=False), start=start + 1):
            for j, v in enumerate(row, start=1):
                cell = ws.cell(row=i, column=j, value=_cell_value(v))
                if isinstance(cell.value, (int, float)):
                    cell.number_format = NUMBER_FORMATS["euro"]
        last = start + len(t)
        ws.cell(row=last + 1, column=1, value="Summe").font = Font(bold=True)
        for j, c in enumerate(cols, start=1):
            if c.endswith("_eur"):
                col = get_column_letter(j)
                ws.cell(row=last + 1, column=j, value=f"=SUM({col}{start + 1}:{col}{last})").number_format = NUMBER_FORMATS["euro"]
        _as_text(ws, start)
    for j in range(3, ws.max_column + 1):
        ws.column_dimensions[get_column_letter(j)].width = 16
    ws.auto_filter.ref = None
    return ws
