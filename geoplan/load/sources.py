"""Reads the input tables a config names: indicator tables, the key table, the HzE table.

Each reader returns frames with geoplan's column names and appends an
:class:`~geoplan.provenance.InputFile` (with SHA-256) for the manifest.
Values are checked here (counts ≥ 0, shares 0–100 %, the stated period), so
the stages can trust them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from geoplan.config import Config
from geoplan.errors import GeoplanError, QANote, config_field
from geoplan.load.tables import join_by_key, read_table
from geoplan.provenance import InputFile, input_file


def require_file(path: Path, field_name: str) -> None:
    if not path.is_file():
        raise GeoplanError(
            "Eingabedatei nicht gefunden.",
            file=path,
            location=f"Konfigurationsfeld '{field_name}'",
            hint="Pfad prüfen; relative Pfade gelten ab dem Ordner der Konfigurationsdatei.",
            message_en="Input file not found.",
        )


def check_inputs(config: Config) -> None:
    """Fail early, before any work, when an input file is missing."""
    require_file(config.resolve(config.boundaries.path), "boundaries.path")
    require_file(config.resolve(config.indicators.catalogue), "indicators.catalogue")
    for i, t in enumerate(config.indicators.tables):
        require_file(config.resolve(t.path), f"indicators.tables[{i}].path")
    agg = config.indicators.aggregate
    if agg and agg.key_table:
        require_file(config.resolve(agg.key_table), "indicators.aggregate.key_table")
    if config.hze.path:
        require_file(config.resolve(config.hze.path), "hze.path")



def check_values(df: pd.DataFrame, t, path: Path, i: int, percent_columns: set[str]) -> None:
    """Counts must not be negative, shares in % must lie in 0..100, rows must be of the stated period."""
    def rows_of(mask) -> str:
        keys = df.loc[mask, t.key].astype(str).tolist()
        return ", ".join(keys[:10]) + (" …" if len(keys) > 10 else "")

    if t.period is not None:
        col = t.period.column
        if col not in df.columns:
            raise GeoplanError(
                f"Spalte '{col}' für die Stichtagsprüfung fehlt.",
                file=path, location=f"Konfigurationsfeld 'indicators.tables[{i}].period.column'",
                expected=", ".join(map(str, df.columns)),
            )
        vals = df[col].map(lambda v: str(int(v)) if isinstance(v, float) and v == int(v) else str(v))
        bad = vals != t.period.value
        if bad.any():
            found = ", ".join(sorted(set(vals[bad]))[:5])
            raise GeoplanError(
                f"Die Tabelle gehört (teilweise) zu einem anderen Stichtag: Spalte '{col}' hat {found}.",
                file=path, location=f"Schlüssel {rows_of(bad)}", expected=f"{col} = {t.period.value}",
                found=found,
                hint="Die Tabelle des richtigen Jahres verwenden oder indicators.tables[].period anpassen.",
            )
    for src, dst in t.columns.items():
        v = df[src]
        if dst.startswith("pop_") and (v < 0).any():
            raise GeoplanError(
                f"Spalte '{src}' enthält negative Einwohnerzahlen.",
                file=path, location=f"Schlüssel {rows_of(v < 0)}", expected="Zahlen ≥ 0",
                hint="Die Quelldatei korrigieren (Zählgrößen können nicht negativ sein).",
            )
        if dst in percent_columns and ((v < 0) | (v > 100)).any():
            bad = (v < 0) | (v > 100)
            raise GeoplanError(
                f"Spalte '{src}' ({dst}) ist ein Anteil in %, enthält aber Werte außerhalb von 0 bis 100.",
                file=path, location=f"Schlüssel {rows_of(bad)}", expected="0 ≤ Wert ≤ 100",
                found=", ".join(str(x) for x in v[bad].head(5)),
                hint="Prüfen, ob die Spalte wirklich Prozentwerte enthält (nicht Promille oder absolute Zahlen).",
            )


def read_indicator_tables(config: Config, catalogue, inputs: list[InputFile], notes: list[QANote]) -> pd.DataFrame:
    """Read every indicator table, rename to geoplan names, check values, join on the source key."""
    percent_columns = {ind.column or ind.name for ind in catalogue.indicators if ind.unit == "%"}

    merged: pd.DataFrame | None = None
    merged_name = ""
    for i, t in enumerate(config.indicators.tables):
        path = config.resolve(t.path)
        with config_field(f"indicators.tables[{i}]", path):
            res = read_table(
                path,
                key=t.key,
                sheet=t.sheet,
                header_row=t.header_row,
                encoding=t.encoding,
                delimiter=t.delimiter,
                decimal=t.decimal,
                thousands=t.thousands,
                sentinels=tuple(t.sentinels),
                key_width=t.key_width,
                valid_column=t.valid.column if t.valid else None,
                valid_values=t.valid.values if t.valid else None,
                text_columns=[t.period.column] if t.period else (),
                numeric_columns=list(t.columns),
            )
        notes.extend(res.notes)
        df = res.frame
        missing = [c for c in t.columns if c not in df.columns]
        if missing:
            raise GeoplanError(
                f"Spalte(n) {', '.join(repr(c) for c in missing)} fehlen in der Indikatortabelle.",
                file=path,
                location=f"Konfigurationsfeld 'indicators.tables[{i}].columns'",
                expected=", ".join(map(str, df.columns)),
                hint="Spaltennamen in der Konfiguration an die Tabelle anpassen.",
            )
        for src in t.columns:
            if not pd.api.types.is_numeric_dtype(df[src]):
                raise GeoplanError(
                    f"Spalte '{src}' ist keine Zahlenspalte.",
                    file=path,
                    location=f"Spalte '{src}'",
                    found=str(df[src].dropna().astype(str).head(3).tolist()),
                    hint="Nur Zahlenspalten als Indikatoren verwenden.",
                )
        check_values(df, t, path, i, percent_columns)
        sub = df[[t.key, *t.columns]].rename(columns={**t.columns, t.key: "_source_key"})
        qa = []
        if res.suppressed:
            qa.append("unterdrückt/leer: " + ", ".join(f"{c} {n}" for c, n in res.suppressed.items() if c in t.columns and n))
        inputs.append(
            input_file(
                "Indikatoren",
                path,
                label=t.label or path.name,
                source=t.source,
                licence=t.licence,
                reference_date=t.reference_date,
                rows=len(df),
                qa="; ".join(q for q in qa if q) or "ohne Befund",
            )
        )
        if merged is None:
            merged, merged_name = sub, path.name
        else:
            field = f"indicators.tables[{i}].allow_missing"
            j = join_by_key(
                merged,
                sub,
                left_key="_source_key",
                right_key="_source_key",
                left_name=merged_name,
                right_name=path.name,
                allow_missing_left=t.allow_missing,
                allow_missing_right=t.allow_missing,
                config_fields=(field, field),
            )
            notes.extend(j.notes)
            merged = j.frame
            merged_name = f"{merged_name} + {path.name}"
    assert merged is not None
    return merged


def read_key_table(config: Config, inputs: list[InputFile]) -> tuple[pd.DataFrame | None, pd.Series | None]:
    """The key table of ``indicators.aggregate`` (source key -> Sozialraum key, optional group) and the group map."""
    agg_cfg = config.indicators.aggregate
    mapping = group_map = None
    if agg_cfg is None or not agg_cfg.key_table:
        return None, None
    kpath = config.resolve(agg_cfg.key_table)
    with config_field("indicators.aggregate", kpath):
        kres = read_table(kpath, key=agg_cfg.source_key, encoding=agg_cfg.key_table_encoding,
                          text_columns=[c for c in (agg_cfg.target_key, agg_cfg.group) if c])
    for col in (agg_cfg.target_key, agg_cfg.group):
        if col and col not in kres.frame.columns:
            raise GeoplanError(
                f"Spalte '{col}' fehlt in der Schlüsseltabelle.",
                file=kpath,
                location="Konfigurationsfeld 'indicators.aggregate'",
                expected=", ".join(map(str, kres.frame.columns)),
                hint="Spaltennamen in der Konfiguration anpassen.",
            )
    mapping = kres.frame
    inputs.append(input_file("Schlüsseltabelle", kpath, label=kpath.name, rows=len(mapping), qa="ohne Befund"))
    if agg_cfg.group:
        group_map = (
            mapping[[agg_cfg.target_key, agg_cfg.group]].drop_duplicates().set_index(agg_cfg.target_key)[agg_cfg.group]
        )
        if group_map.index.duplicated().any():
            dup = group_map.index[group_map.index.duplicated()].unique().tolist()
            raise GeoplanError(
                "Ein Sozialraum liegt laut Schlüsseltabelle in mehreren übergeordneten Einheiten.",
                file=kpath,
                location=f"Schlüssel {', '.join(dup[:10])}",
                hint="Schlüsseltabelle prüfen (eine Zeile je Quellraum, eindeutige Zuordnung).",
            )
    return mapping, group_map


def read_hze_table(config: Config, inputs: list[InputFile], notes: list[QANote]) -> tuple[pd.DataFrame, str]:
    """The HzE table (cases, prior-year costs per Sozialraum) with geoplan's column names and ``key``."""
    h = config.hze
    path = config.resolve(h.path)
    res = read_table(path, key=h.key)
    notes.extend(res.notes)
    df = res.frame
    missing = [c for c in h.columns if c not in df.columns]
    if missing:
        raise GeoplanError(
            f"Spalte(n) {', '.join(missing)} fehlen in der HzE-Tabelle.",
            file=path,
            location="Konfigurationsfeld 'hze.columns'",
            expected=", ".join(map(str, df.columns)),
        )
    df = df[[h.key, *h.columns]].rename(columns={**h.columns, h.key: "key"})
    if "hze_cases" not in df.columns:
        raise GeoplanError(
            "Die HzE-Tabelle braucht eine Spalte für die Fallzahl (Ziel 'hze_cases').",
            file=path,
            location="Konfigurationsfeld 'hze.columns'",
            hint="z. B. columns: {Faelle_2025: hze_cases, Kosten_2024: hze_cost_prev_eur}",
        )
    inputs.append(input_file("HzE-Daten", path, label=path.name, rows=len(df), qa="ohne Befund"))
    return df, path.name
