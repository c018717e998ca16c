"""Settlement input: actual costs at the end of the budget period, one row per Sozialraum."""

from __future__ import annotations

import pandas as pd

from geoplan.errors import GeoplanError
from geoplan.load.tables import read_table
from geoplan.provenance import input_file


def read_actual_costs(config, keys, inputs: list, notes: list) -> pd.Series | None:
    """``settlement.actual_costs`` as a Series (EUR) indexed by Sozialraum key; None when not configured."""
    spec = config.settlement
    if spec is None or spec.actual_costs is None:
        return None
    a = spec.actual_costs
    path = config.resolve(a.path)
    res = read_table(path, key=a.key)
    notes.extend(res.notes)
    df = res.frame
    if a.column not in df.columns:
        raise GeoplanError(f"Spalte '{a.column}' fehlt in der Tabelle der Ist-Kosten.", file=path,
                           location="Konfigurationsfeld 'settlement.actual_costs.column'",
                           expected=", ".join(map(str, df.columns)), hint="Spaltennamen der Ist-Kosten angeben.",
                           message_en=f"Column '{a.column}' is missing in the table of actual costs.",
                           hint_en="Give the column names of the actual costs.")
    values = pd.to_numeric(df[a.column], errors="coerce")
    if values.isna().any() or (values < 0).any():
        i = int((values.isna() | (values < 0)).to_numpy().argmax())
        raise GeoplanError("Ist-Kosten müssen Beträge ≥ 0 sein.", file=path, location=f"Zeile {i + 2}, Spalte '{a.column}'",
                           found=repr(df[a.column].iloc[i]), expected="Betrag in EUR",
                           message_en="Actual costs must be amounts ≥ 0.", expected_en="amount in EUR")
    s = pd.Series(values.to_numpy(float), index=df[a.key].astype(str))
    missing = sorted(set(map(str, keys)) - set(s.index))
    if missing:
        raise GeoplanError(f"Ist-Kosten fehlen für {len(missing)} Sozialräume.", file=path,
                           location="Sozialräume " + ", ".join(missing[:10]),
                           hint="Für jeden Sozialraum eine Zeile mit den Ist-Kosten angeben.",
                           message_en=f"Actual costs are missing for {len(missing)} Sozialräume.",
                           hint_en="Give a row with the actual costs for every Sozialraum.")
    inputs.append(input_file("Ist-Kosten (Abrechnung)", path, label=path.name, rows=len(df),
                             qa="ohne Befund", qa_en="no findings"))
    return s
