"""verteilung.xlsx: one sheet per table, numbers as numbers, frozen headers.

Number formats use Excel's locale-neutral codes (``#,##0``), which German Excel
shows as 1.234; suppressed counts are the text marker (e.g. "< 3").
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

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


def _sheet(wb: Workbook, title: str, header: list[str], rows: list[list], formats: list[str] | None = None, widths=None):
    ws = wb.create_sheet(title)
    ws.append(header)
    for c in ws[1]:
        c.font = Font(bold=True)
        c.fill = HEADER_FILL
        c.alignment = Alignment(wrap_text=True, vertical="top")
    for r in rows:
        ws.append([_cell_value(v) for v in r])
    if formats:
        for j, f in enumerate(formats, start=1):
            nf = NUMBER_FORMATS.get(f)
            if nf:
                for row in ws.iter_rows(min_row=2, min_col=j, max_col=j):
                    for c in row:
                        if isinstance(c.value, (int, float)):
                            c.number_format = nf
    ws.freeze_panes = "A2"
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
    total_row = ["Summe"] + [None] * (len(cols) - 1)
    for j, c in enumerate(cols):
        if c[0] in ("budget_eur", "pop_u21", "pop_total") or c[0].startswith("eur_"):
            total_row[j] = int(pd.to_numeric(areas[c[0]]).sum())
    ws = _sheet(wb, "Verteilung", header, rows + [total_row], [c[3] for c in cols],
                widths=[10, 28, 20] + [14] * (len(cols) - 3))
    for c in ws[ws.max_row]:
        c.font = Font(bold=True)

    coefs = result.model.coefficients
    ccols = [c for c in ["label", "term", "coef", "se", "z", "p_value", "ci_low", "ci_high", "irr", "irr_low", "irr_high"] if c in coefs.columns]
    _sheet(wb, "Bedarfsmodell", ccols, coefs[ccols].values.tolist(), ["text", "text"] + ["index"] * (len(ccols) - 2), widths=[28, 20] + [12] * (len(ccols) - 2))

    s = result.equity.summary
    _sheet(wb, "Gerechtigkeit", ["Kennzahl", "Wert"], [[k, _cell_value(v)] for k, v in s.items()], ["text", "index"], widths=[40, 16])

    spec = result.allocation_spec
    comp_rows = []
    for comp in spec.components:
        col = f"eur_{comp.name}"
        comp_rows.append([comp.name, comp.label, comp.type, float(comp.weight),
                          int(result.frame[col].sum()) if col in result.frame.columns else None])
    ws = _sheet(wb, "Formel", ["Bestandteil", "Bezeichnung", "Art", "Gewicht", "Betrag (€)"], comp_rows,
                ["text", "text", "text", "index", "euro"], widths=[18, 36, 18, 10, 16])
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
        _sheet(wb, "Teilbudgets", tcols, tb[tcols].values.tolist(), ["text", "text", "text", "euro", "text"][: len(tcols)])

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
