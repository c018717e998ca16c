"""Reads the input tables a config names: indicator tables, the key table, the HzE table.

Each reader returns frames with geoplan's column names and appends an
:class:`~geoplan.provenance.InputFile` (with SHA-256) for the manifest.
Values are checked here (counts ≥ 0, shares 0–100 %, the stated period), so
the stages can trust them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geoplan.config import Config
from geoplan.errors import GeoplanError, QANote, config_field, what_en
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
            hint_en="Check the path; relative paths start from the folder of the configuration file.",
        )


def check_inputs(config: Config) -> None:
    """Fail early, before any work, when an input file is missing."""
    for field, path in file_fields(config):
        require_file(path, field)


def file_fields(config: Config) -> list[tuple[str, Path]]:
    """(config field, resolved path) of every input file; PostGIS/WFS inputs (``connection``) have none."""
    out = []
    if config.boundaries.path is not None:
        out.append(("boundaries.path", config.resolve(config.boundaries.path)))
    out.append(("indicators.catalogue", config.resolve(config.indicators.catalogue)))
    out += [(f"indicators.tables[{i}].path", config.resolve(t.path))
            for i, t in enumerate(config.indicators.tables) if t.path is not None]
    return out + input_fields(config)


def input_fields(config: Config) -> list[tuple[str, Path]]:
    """(config field, resolved path) of every input file except the boundaries, catalogue and tables."""
    out = []
    agg = config.indicators.aggregate
    if agg and agg.key_table:
        out.append(("indicators.aggregate.key_table", config.resolve(agg.key_table)))
    for name, lv in config.indicators.levels.items():
        f = f"indicators.levels.{name}"
        if lv.key_table is not None:
            out.append((f"{f}.key_table", config.resolve(lv.key_table)))
        if lv.polygons is not None:
            out.append((f"{f}.polygons", config.resolve(lv.polygons)))
        if lv.weights is not None:
            for attr in ("raster", "polygons", "table"):
                p = getattr(lv.weights, attr)
                if p is not None:
                    out.append((f"{f}.weights.{attr}", config.resolve(p)))
    if config.hze.path:
        out.append(("hze.path", config.resolve(config.hze.path)))
    return out


def missing_inputs(config: Config) -> list[GeoplanError]:
    """Every missing input file at once (validate)."""
    problems = []
    for field, path in file_fields(config):
        try:
            require_file(path, field)
        except GeoplanError as err:
            problems.append(err)
    return problems


@dataclass
class Remote:
    """How PostGIS/WFS inputs are read: WFS answers are kept in ``cache_dir`` (the run copies it into the
    output folder's ``provenienz/wfs``); ``offline`` reads them only from there. ``cache_dir=None``: a
    temporary download, nothing kept."""

    cache_dir: Path | None = None
    offline: bool = False


def uses_wfs(config: Config) -> bool:
    """True when an input of ``config`` comes from a WFS (its answers are cached for the outputs)."""
    from geoplan.load.wfs import is_wfs_source

    agg = config.indicators.aggregate
    return any(is_wfs_source(c) for c in (config.boundaries.connection, *(t.connection for t in config.indicators.tables),
                                          agg.key_table_connection if agg else None))


def remote_input(role: str, prov: dict, **kw) -> InputFile:
    """The manifest entry of a PostGIS/WFS input: server/database and table (or SQL), or the WFS URL and
    type name; never a user or a password (the readers' provenance has none)."""
    if prov.get("kind") == "wfs":
        location = f"{prov['url']} {prov['typename']}"
        kw.setdefault("rows", prov.get("features"))
    else:
        location = f"{prov['server']}/{prov['database']} {prov.get('table') or 'SQL'}"
        kw.setdefault("rows", prov.get("rows"))
    return InputFile(role, None, prov["sha256"], location=location, **kw)


def read_remote_table(connection: str, *, layer: str | None, sql: str | None, wfs_version: str, field_name: str,
                      remote: Remote | None, **options):
    """A table from PostGIS or a WFS, through the same checks as a file (:func:`table_from_rows`)."""
    from geoplan.load.postgis import is_postgis_source, read_postgis_table
    from geoplan.load.wfs import read_wfs_table

    if is_postgis_source(connection):
        return read_postgis_table(connection, layer=layer, sql=sql, field_name=field_name, **options)
    if sql is not None or layer is None:
        raise GeoplanError(
            "Für eine WFS-Quelle den Typnamen der Ebene angeben (SQL gibt es nur für PostGIS).",
            location=f"Konfigurationsfeld '{field_name}'",
            expected="layer: Typname aus GetCapabilities des Dienstes",
            message_en="For a WFS source give the layer's type name (SQL is for PostGIS only).",
        )
    remote = remote or Remote()
    return read_wfs_table(connection, layer, version=wfs_version, cache_dir=remote.cache_dir,
                          offline=remote.offline, field_name=field_name, **options)


#: read_table options that only make sense for a file (PostGIS and WFS deliver typed columns by name)
_FILE_ONLY = ("sheet", "encoding", "delimiter")


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
                message_en=f"Column '{col}' for the reference-date check is missing.",
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
                message_en=f"The table belongs (partly) to another reference date: column '{col}' has {found}.",
                hint_en="Use the table of the right year or adjust indicators.tables[].period.",
            )
    for src, dst in t.columns.items():
        v = df[src]
        if dst.startswith("pop_") and (v < 0).any():
            raise GeoplanError(
                f"Spalte '{src}' enthält negative Einwohnerzahlen.",
                file=path, location=f"Schlüssel {rows_of(v < 0)}", expected="Zahlen ≥ 0",
                hint="Die Quelldatei korrigieren (Zählgrößen können nicht negativ sein).",
                message_en=f"Column '{src}' holds negative population counts.", expected_en="numbers ≥ 0",
                hint_en="Correct the source file (counts cannot be negative).",
            )
        if dst in percent_columns and ((v < 0) | (v > 100)).any():
            bad = (v < 0) | (v > 100)
            raise GeoplanError(
                f"Spalte '{src}' ({dst}) ist ein Anteil in %, enthält aber Werte außerhalb von 0 bis 100.",
                file=path, location=f"Schlüssel {rows_of(bad)}", expected="0 ≤ Wert ≤ 100",
                found=", ".join(str(x) for x in v[bad].head(5)),
                hint="Prüfen, ob die Spalte wirklich Prozentwerte enthält (nicht Promille oder absolute Zahlen).",
                message_en=f"Column '{src}' ({dst}) is a share in % but holds values outside 0 to 100.",
                expected_en="0 ≤ value ≤ 100",
                hint_en="Check that the column really holds percentages (not per mille or absolute numbers).",
            )


def reader_options(t) -> dict:
    """``read_table`` keyword arguments from a table section (indicator table or ``hze``): one set of reader rules."""
    from geoplan.load.tables import DEFAULT_NA_MARKERS

    return dict(
        sheet=t.sheet,
        header_row=t.header_row,
        encoding=t.encoding,
        delimiter=t.delimiter,
        decimal=t.decimal,
        thousands=t.thousands,
        key_width=t.key_width,
        allow_mixed_key_lengths=t.allow_mixed_key_lengths,
        skip_rows=t.skip_rows,
        drop_keys=t.drop_rows.keys if t.drop_rows else (),
        drop_labels=t.drop_rows.labels if t.drop_rows else (),
        na_markers=(set(DEFAULT_NA_MARKERS) | set(t.na_markers)) if t.na_markers else None,
    )


def _long_to_wide(res, t, path: Path) -> pd.DataFrame:
    """A long table (key, variable, value) -> one row per key, one column per configured variable."""
    df = res.frame
    var, val = t.variable, t.value
    names = df[var].astype(str).str.strip()
    wanted = list(t.columns)
    absent = [c for c in wanted if c not in set(names)]
    if absent:
        have = sorted(set(names))
        raise GeoplanError(
            f"Merkmal(e) {', '.join(repr(c) for c in absent)} kommen in der Spalte '{var}' nicht vor.",
            file=path, location=f"Spalte '{var}'",
            expected=", ".join(repr(c) for c in wanted),
            found=", ".join(repr(c) for c in have[:20]) + (" …" if len(have) > 20 else ""),
            hint="Die Merkmalsnamen unter 'columns' so schreiben wie in der Tabelle.",
            message_en=f"Item(s) {', '.join(repr(c) for c in absent)} do not occur in the column '{var}'.",
            hint_en="Write the item names under 'columns' as in the table.",
        )
    sub = df[names.isin(wanted)].assign(**{var: names[names.isin(wanted)]})
    dup = sub.duplicated([t.key, var], keep=False)
    if dup.any():
        pairs = sub.loc[dup, [t.key, var]].drop_duplicates().head(5)
        raise GeoplanError(
            "Ein Merkmal kommt für denselben Schlüssel mehrfach vor.",
            file=path, location="; ".join(f"{k} / {v}" for k, v in pairs.itertuples(index=False)),
            hint="Je Schlüssel und Merkmal nur eine Zeile; sonst die Tabelle mit drop_rows oder valid filtern.",
            message_en="An item occurs more than once for the same key.",
            hint_en="One row per key and item; otherwise filter the table with drop_rows or valid.",
        )
    wide = sub.pivot(index=t.key, columns=var, values=val)
    wide = wide.reindex(columns=wanted)
    wide.columns.name = None
    out = wide.reset_index()
    out[t.key] = out[t.key].astype(str)
    return out


def read_one_table(config: Config, i: int, t, percent_columns: set[str], inputs: list[InputFile],
                   notes: list[QANote], remote: Remote | None = None) -> pd.DataFrame:
    """One indicator table (file, PostGIS or WFS) -> ``_source_key`` + geoplan columns (checked)."""
    long = t.format == "long"
    opts = dict(
        key=t.key,
        **reader_options(t),
        sentinels=tuple(t.sentinels),
        valid_column=t.valid.column if t.valid else None,
        valid_values=t.valid.values if t.valid else None,
        text_columns=([t.period.column] if t.period else []) + ([t.variable] if long else []),
        numeric_columns=[t.value] if long else list(t.columns),
        allow_duplicates=long,
    )
    if t.connection is not None:
        path = t.display  # what messages name: the table or type name (never the connection)
        for k in _FILE_ONLY:
            opts.pop(k)
        with config_field(f"indicators.tables[{i}]"):
            res = read_remote_table(t.connection, layer=t.layer, sql=t.sql, wfs_version=t.wfs_version,
                                    field_name=f"indicators.tables[{i}]", remote=remote, **opts)
            df = _long_to_wide(res, t, path) if long else res.frame
    else:
        path = config.resolve(t.path)
        with config_field(f"indicators.tables[{i}]", path):
            res = read_table(path, **opts)
            df = _long_to_wide(res, t, path) if long else res.frame
    # in a long table every key repeats once per variable: that is the format, not a finding
    notes.extend(n for n in res.notes if not (long and "duplicates" in n.details))
    missing = [c for c in t.columns if c not in df.columns]
    if missing:
        raise GeoplanError(
            f"Spalte(n) {', '.join(repr(c) for c in missing)} fehlen in der Indikatortabelle.",
            file=path,
            location=f"Konfigurationsfeld 'indicators.tables[{i}].columns'",
            expected=", ".join(map(str, df.columns)),
            hint="Spaltennamen in der Konfiguration an die Tabelle anpassen.",
            message_en=f"Column(s) {', '.join(repr(c) for c in missing)} missing in the indicator table.",
            hint_en="Match the column names in the configuration to the table.",
        )
    for src in t.columns:
        if not pd.api.types.is_numeric_dtype(df[src]):
            raise GeoplanError(
                f"Spalte '{src}' ist keine Zahlenspalte.",
                file=path,
                location=f"Spalte '{src}'",
                found=str(df[src].dropna().astype(str).head(3).tolist()),
                hint="Nur Zahlenspalten als Indikatoren verwenden.",
                message_en=f"Column '{src}' is not a numeric column.",
                hint_en="Use only numeric columns as indicators.",
            )
    if not long:
        check_values(df, t, path, i, percent_columns)
    sub = df[[t.key, *t.columns]].rename(columns={**t.columns, t.key: "_source_key"})
    qa, qa_en = [], []
    if res.suppressed:
        cols = ", ".join(f"{c} {n}" for c, n in res.suppressed.items() if c in t.columns and n)
        qa.append("unterdrückt/leer: " + cols)
        qa_en.append("suppressed/empty: " + cols)
    meta = dict(label=t.label or t.display, source=t.source, licence=t.licence, reference_date=t.reference_date,
                rows=len(df), qa="; ".join(q for q in qa if q) or "ohne Befund",
                qa_en="; ".join(q for q in qa_en if q) or "no findings")
    if t.connection is not None:
        inputs.append(remote_input("Indikatoren", res.dialect["provenance"], **meta))
    else:
        inputs.append(input_file("Indikatoren", path, **meta))
    return sub


def table_level(config: Config, t) -> str | None:
    """The level name a table lives on: a name of ``indicators.levels``, ``"aggregate"`` (the legacy
    ``indicators.aggregate`` block) or None for the Sozialräume."""
    from geoplan.config import SOZIALRAUM_LEVELS

    if t.level is not None:
        return None if t.level in SOZIALRAUM_LEVELS else t.level
    return "aggregate" if config.indicators.aggregate is not None else None


def join_level_tables(parts: list[tuple[int, pd.DataFrame]], config: Config, notes: list[QANote]) -> pd.DataFrame:
    """Join the tables of one level on their source key (allow_missing as configured)."""
    merged: pd.DataFrame | None = None
    merged_name = ""
    for i, sub in parts:
        t = config.indicators.tables[i]
        name = t.display
        if merged is None:
            merged, merged_name = sub, name
            continue
        field = f"indicators.tables[{i}].allow_missing"
        j = join_by_key(
            merged, sub, left_key="_source_key", right_key="_source_key", left_name=merged_name, right_name=name,
            allow_missing_left=t.allow_missing, allow_missing_right=t.allow_missing, config_fields=(field, field),
        )
        notes.extend(j.notes)
        merged = j.frame
        merged_name = f"{merged_name} + {name}"
    assert merged is not None
    return merged


def read_indicator_tables(config: Config, catalogue, inputs: list[InputFile], notes: list[QANote],
                          problems: list[GeoplanError] | None = None,
                          remote: Remote | None = None) -> dict[str | None, pd.DataFrame]:
    """Every indicator table, grouped by level and joined within it on the source key.

    Returns ``{level name or None: frame}`` (``_source_key`` + geoplan columns).
    With ``problems`` (validate), errors are collected per table instead of raised.
    """
    percent_columns = {ind.column or ind.name for ind in catalogue.indicators if ind.unit == "%"} if catalogue else set()
    by_level: dict[str | None, list[tuple[int, pd.DataFrame]]] = {}
    for i, t in enumerate(config.indicators.tables):
        try:
            sub = read_one_table(config, i, t, percent_columns, inputs, notes, remote=remote)
        except GeoplanError as err:
            if problems is None:
                raise
            problems.append(err)
            continue
        by_level.setdefault(table_level(config, t), []).append((i, sub))
    if problems is not None and len(by_level) == 0:
        return {}
    out = {}
    for level, parts in by_level.items():
        try:
            out[level] = join_level_tables(parts, config, notes)
        except GeoplanError as err:
            if problems is None:
                raise
            problems.append(err)
    return out


@dataclass
class LevelData:
    """A table geography as read: key table (hierarchy) or source polygons (+ weights) in the metric CRS."""

    name: str
    field: str                                  # config field, e.g. "indicators.levels.plz"
    config: Any                                 # LevelConfig or AggregateConfig
    mapping: pd.DataFrame | None = None         # key table (source key -> Sozialraum key)
    group_map: pd.Series | None = None          # Sozialraum key -> group (Bezirk)
    polygons: Any = None                        # GeoDataFrame key + geometry, one row per key
    weights: Any = None                         # raster path or GeoDataFrame
    weights_column: str | None = None
    source_name: str = ""                       # file name for messages
    key_table_path: Path | None = None

    @property
    def kind(self) -> str:
        c = self.config
        if getattr(c, "polygons", None) is not None:
            return c.method
        has_table = c.key_table is not None or getattr(c, "key_table_connection", None) is not None
        return "key_table" if has_table else "prefix"


def _read_key_table(config: Config, lv, field: str, inputs: list[InputFile],
                    remote: Remote | None = None) -> tuple[pd.DataFrame, pd.Series | None]:
    text_columns = [c for c in (lv.target_key, lv.group) if c]
    connection = getattr(lv, "key_table_connection", None)  # indicators.aggregate only
    if connection is not None:
        kpath = lv.key_table_layer or "SQL"
        with config_field(field):
            kres = read_remote_table(connection, layer=lv.key_table_layer, sql=lv.key_table_sql,
                                     wfs_version=lv.key_table_wfs_version, field_name=field, remote=remote,
                                     key=lv.source_key, text_columns=text_columns)
    else:
        kpath = config.resolve(lv.key_table)
        with config_field(field, kpath):
            kres = read_table(kpath, key=lv.source_key, encoding=lv.key_table_encoding, text_columns=text_columns)
    for col in (lv.target_key, lv.group):
        if col and col not in kres.frame.columns:
            raise GeoplanError(
                f"Spalte '{col}' fehlt in der Schlüsseltabelle.",
                file=kpath,
                location=f"Konfigurationsfeld '{field}'",
                expected=", ".join(map(str, kres.frame.columns)),
                hint="Spaltennamen in der Konfiguration anpassen.",
                message_en=f"Column '{col}' is missing in the key table.",
                hint_en="Adjust the column names in the configuration.",
            )
    mapping = kres.frame
    if connection is not None:
        inputs.append(remote_input("Schlüsseltabelle", kres.dialect["provenance"], label=kpath, rows=len(mapping),
                                   qa="ohne Befund", qa_en="no findings"))
    else:
        inputs.append(input_file("Schlüsseltabelle", kpath, label=kpath.name, rows=len(mapping),
                                 qa="ohne Befund", qa_en="no findings"))
    group_map = None
    if lv.group:
        group_map = (mapping[[lv.target_key, lv.group]].drop_duplicates().set_index(lv.target_key)[lv.group])
        if group_map.index.duplicated().any():
            dup = group_map.index[group_map.index.duplicated()].unique().tolist()
            raise GeoplanError(
                "Ein Sozialraum liegt laut Schlüsseltabelle in mehreren übergeordneten Einheiten.",
                file=kpath,
                location=f"Sozialraum {', '.join(dup[:10])}",
                hint="Schlüsseltabelle prüfen (eine Zeile je Quellraum, eindeutige Zuordnung).",
                message_en="According to the key table a Sozialraum lies in several higher-level units.",
                location_en=f"Sozialraum {', '.join(dup[:10])}",
                hint_en="Check the key table (one row per source area, a unique assignment).",
            )
    return mapping, group_map


def read_key_table(config: Config, inputs: list[InputFile],
                   remote: Remote | None = None) -> tuple[pd.DataFrame | None, pd.Series | None]:
    """The key table of ``indicators.aggregate`` (source key -> Sozialraum key, optional group) and the group map."""
    agg_cfg = config.indicators.aggregate
    if agg_cfg is None or not agg_cfg.has_key_table:
        return None, None
    return _read_key_table(config, agg_cfg, "indicators.aggregate", inputs, remote=remote)


def read_polygon_layer(path: Path, *, key: str, layer, crs, encoding, key_width, metric_crs: str, what: str,
                       notes: list[QANote]):
    """A polygon layer other than the Sozialräume (source geography, weights) in ``metric_crs``:
    ``key`` as text, invalid geometries repaired (noted), parts of one key dissolved (noted)."""
    import geopandas as gpd
    import shapely

    from geoplan.load.boundaries import _polygonal, read_boundaries
    from geoplan.load.tables import normalize_keys

    raw = read_boundaries(path, key=key, layer=layer, crs=crs, encoding=encoding)
    notes.extend(n for n in raw.attrs.get("geoplan", {}).get("notes", []) if n.level != "info")
    gdf = raw.to_crs(metric_crs)
    if key is None:
        gdf = gdf[~(gdf.geometry.isna() | gdf.geometry.is_empty)]
        invalid = ~shapely.is_valid(np.asarray(gdf.geometry.values, dtype=object))
        if invalid.any():
            gdf = gdf.set_geometry(gpd.GeoSeries([_polygonal(shapely.make_valid(g)) if bad else g
                                                  for g, bad in zip(gdf.geometry.values, invalid)],
                                                 crs=gdf.crs, index=gdf.index))
            notes.append(QANote("indicators", f"{int(invalid.sum())} ungültige Geometrie(n) der {what} repariert "
                                "(make_valid).", file=str(path),
                                message_en=f"{int(invalid.sum())} invalid geometr{'y' if invalid.sum() == 1 else 'ies'} "
                                f"of the {what_en(what)} repaired (make_valid)."))
        return gdf
    if gdf[key].isna().any():
        rows = [str(i + 1) for i in range(len(gdf)) if pd.isna(gdf[key].iloc[i])][:10]
        raise GeoplanError(f"Objekte ohne Schlüssel in der {what}.", file=path, location="Objekt " + ", ".join(rows),
                           hint="Schlüsselfeld füllen oder die Objekte entfernen.",
                           message_en=f"Features without a key in the {what_en(what)}.",
                           hint_en="Fill the key field or remove the features.")
    gdf[key] = normalize_keys(gdf[key].tolist(), key_width=key_width, file=str(path), column=key,
                              row_numbers=[f"Objekt {i + 1}" for i in range(len(gdf))])
    geoms = gdf.geometry.values
    invalid = ~shapely.is_valid(np.asarray(geoms, dtype=object))
    if invalid.any():
        fixed = [_polygonal(shapely.make_valid(g)) if bad else g for g, bad in zip(geoms, invalid)]
        gdf = gdf.set_geometry(gpd.GeoSeries(fixed, crs=gdf.crs, index=gdf.index))
        notes.append(QANote("indicators", f"{int(invalid.sum())} ungültige Geometrie(n) der {what} repariert "
                            "(make_valid).", file=str(path),
                            message_en=f"{int(invalid.sum())} invalid geometr{'y' if invalid.sum() == 1 else 'ies'} "
                            f"of the {what_en(what)} repaired (make_valid).",
                            location="Schlüssel " + ", ".join(gdf.loc[invalid, key].astype(str).tolist()[:10])))
    counts = gdf[key].value_counts()
    multi = counts[counts > 1]
    if len(multi):
        gdf = gdf.dissolve(by=key, as_index=False, sort=False)
        notes.append(QANote("indicators", f"{len(multi)} Schlüssel der {what} bestehen aus mehreren Objekten; "
                            "je Schlüssel zu einer Fläche vereinigt, damit ihr Wert nur einmal zählt.",
                            file=str(path), location="Schlüssel " + ", ".join(map(str, multi.index[:10])),
                            details={"keys": {str(k): int(v) for k, v in multi.items()}},
                            message_en=f"{len(multi)} keys of the {what_en(what)} consist of several features; "
                            "dissolved into one area per key so that their value counts once."))
    return gdf


def read_level(config: Config, name: str, lv, metric_crs: str, inputs: list[InputFile],
               notes: list[QANote], remote: Remote | None = None) -> LevelData:
    """Read what a level needs: its key table, or its polygons and dasymetric weights."""
    import geopandas as gpd

    field = "indicators.aggregate" if name == "aggregate" and lv is config.indicators.aggregate \
        else f"indicators.levels.{name}"
    data = LevelData(name=name, field=field, config=lv)
    if getattr(lv, "key_table_connection", None) is not None:
        data.mapping, data.group_map = _read_key_table(config, lv, field, inputs, remote=remote)
        data.source_name = lv.key_table_layer or "SQL"
        return data
    if lv.key_table is not None:
        data.mapping, data.group_map = _read_key_table(config, lv, field, inputs)
        data.key_table_path = config.resolve(lv.key_table)
        data.source_name = data.key_table_path.name
        return data
    if getattr(lv, "polygons", None) is None:
        return data  # prefix
    ppath = config.resolve(lv.polygons)
    with config_field(f"{field}.polygons", ppath):
        data.polygons = read_polygon_layer(ppath, key=lv.key, layer=lv.layer, crs=lv.crs, encoding=lv.encoding,
                                           key_width=lv.key_width, metric_crs=metric_crs,
                                           what=f"Quellgeografie '{name}'", notes=notes)[[lv.key, "geometry"]]
    data.polygons = data.polygons.rename(columns={lv.key: "_source_key"})
    data.source_name = ppath.name
    inputs.append(input_file("Quellgeografie", ppath, label=f"{name}: {ppath.name}", rows=len(data.polygons),
                             qa="ohne Befund", qa_en="no findings"))
    w = lv.weights
    if lv.method == "dasymetric" and w is not None:
        wfield = f"{field}.weights"
        if w.raster is not None:
            rpath = config.resolve(w.raster)
            require_file(rpath, f"{wfield}.raster")
            data.weights = rpath
            inputs.append(input_file("Gewichte", rpath, label=rpath.name, qa="ohne Befund", qa_en="no findings"))
        else:
            wpath = config.resolve(w.polygons)
            with config_field(f"{wfield}.polygons", wpath):
                wg = read_polygon_layer(wpath, key=w.key, layer=w.layer, crs=w.crs, encoding=w.encoding,
                                        key_width=None, metric_crs=metric_crs, what="Gewichtsebene", notes=notes)
            wkey = w.key
            inputs.append(input_file("Gewichte", wpath, label=wpath.name, rows=len(wg),
                                     qa="ohne Befund", qa_en="no findings"))
            if w.table is not None:
                tpath = config.resolve(w.table)
                with config_field(f"{wfield}.table", tpath):
                    tres = read_table(tpath, key=w.table_key, numeric_columns=[w.column])
                    notes.extend(tres.notes)
                    j = join_by_key(wg[[wkey, "geometry"]], tres.frame[[w.table_key, w.column]], left_key=wkey,
                                    right_key=w.table_key, left_name=wpath.name, right_name=tpath.name)
                    notes.extend(j.notes)
                    wg = gpd.GeoDataFrame(j.frame, geometry="geometry", crs=wg.crs)
                    if wg[w.column].isna().any():
                        wg[w.column] = wg[w.column].fillna(0.0)
                inputs.append(input_file("Gewichte", tpath, label=tpath.name, rows=len(tres.frame),
                                         qa="ohne Befund", qa_en="no findings"))
            if w.column is not None and w.column not in wg.columns:
                raise GeoplanError(f"Gewichtsspalte '{w.column}' fehlt in der Gewichtsebene.", file=wpath,
                                   location=f"Konfigurationsfeld '{wfield}.column'",
                                   found="Felder: " + ", ".join(repr(c) for c in wg.columns if c != "geometry"),
                                   message_en=f"Weight column '{w.column}' is missing in the weights layer.")
            data.weights = wg
            data.weights_column = w.column
    return data


def read_levels(config: Config, metric_crs: str, inputs: list[InputFile], notes: list[QANote],
                needed: set | None = None, problems: list[GeoplanError] | None = None,
                remote: Remote | None = None) -> dict[str, LevelData]:
    """Every level the tables use (``indicators.levels``, plus the legacy ``indicators.aggregate``)."""
    defs: dict[str, Any] = dict(config.indicators.levels)
    if config.indicators.aggregate is not None:
        defs.setdefault("aggregate", config.indicators.aggregate)
    out = {}
    for name, lv in defs.items():
        if needed is not None and name not in needed:
            continue
        try:
            out[name] = read_level(config, name, lv, metric_crs, inputs, notes, remote=remote)
        except GeoplanError as err:
            if problems is None:
                raise
            problems.append(err)
    return out


def read_remote_boundaries(b, remote: Remote | None = None):
    """The raw Sozialraum layer of ``boundaries.connection`` (PostGIS table/SQL or WFS layer), in the form
    :func:`geoplan.load.boundaries.read_boundaries` returns (``attrs["geoplan"]["provenance"]``)."""
    from geoplan.load.postgis import is_postgis_source, read_postgis_boundaries
    from geoplan.load.wfs import read_wfs_boundaries

    if is_postgis_source(b.connection):
        return read_postgis_boundaries(b.connection, layer=b.layer, sql=b.sql, key=b.key, name=b.name, crs=b.crs,
                                       geometry_column=b.geometry_column, field_name="boundaries")
    if b.layer is None or b.sql is not None or b.geometry_column is not None:
        raise GeoplanError(
            "Für eine WFS-Quelle den Typnamen der Ebene angeben; 'sql' und 'geometry_column' gibt es nur für PostGIS.",
            location="Konfigurationsfeld 'boundaries'",
            expected="layer: Typname aus GetCapabilities des Dienstes",
            message_en="For a WFS source give the layer's type name; 'sql' and 'geometry_column' are for PostGIS only.",
        )
    remote = remote or Remote()
    return read_wfs_boundaries(b.connection, b.layer, key=b.key, name=b.name, version=b.wfs_version, srs=b.srs,
                               crs=b.crs, cache_dir=remote.cache_dir, offline=remote.offline, field_name="boundaries")


def read_boundaries_config(config: Config, inputs: list[InputFile], notes: list[QANote],
                           remote: Remote | None = None):
    """The Sozialräume of ``boundaries`` (file, PostGIS or WFS): read, checked, merged (``merge``), split into
    budget areas and the ``exclude``-d polygons, with the group column (``group`` -> ``bezirk``)."""
    from geoplan.load.boundaries import apply_merge_exclude, prepare_boundaries

    b = config.boundaries
    bpath = config.resolve(b.path) if b.path is not None else b.display
    with config_field("boundaries", bpath if b.path is not None else None):
        raw = read_remote_boundaries(b, remote) if b.connection is not None else None
        bres = prepare_boundaries(bpath, key=b.key, name=b.name, layer=b.layer, crs=b.crs,
                                  metric_crs=b.metric_crs, repair=b.repair, min_sliver_m2=b.min_sliver_m2,
                                  encoding=b.encoding, key_width=b.key_width,
                                  keep_columns=[b.group] if b.group else (), raw=raw)
        bres = apply_merge_exclude(bres, merge=b.merge, exclude=b.exclude, group=b.group)
    notes.extend(bres.notes)
    findings = getattr(bres.qa, "findings", None)
    n_findings = 0 if findings is None else len(findings)
    meta = dict(label=b.display, rows=len(bres.gdf), qa=f"{n_findings} Befund(e)" if n_findings else "ohne Befund",
                qa_en=f"{n_findings} finding(s)" if n_findings else "no findings")
    if raw is not None:
        inputs.append(remote_input("Sozialräume", raw.attrs["geoplan"]["provenance"], **meta))
    else:
        inputs.append(input_file("Sozialräume", bpath, **meta))
    return bres


def read_hze_table(config: Config, inputs: list[InputFile], notes: list[QANote]) -> tuple[pd.DataFrame, str]:
    """The HzE table (cases, prior-year costs per Sozialraum) with geoplan's column names and ``key``."""
    h = config.hze
    path = config.resolve(h.path)
    with config_field("hze", path):
        res = read_table(path, key=h.key, **reader_options(h), numeric_columns=list(h.columns))
    notes.extend(res.notes)
    df = res.frame
    missing = [c for c in h.columns if c not in df.columns]
    if missing:
        raise GeoplanError(
            f"Spalte(n) {', '.join(missing)} fehlen in der HzE-Tabelle.",
            file=path,
            location="Konfigurationsfeld 'hze.columns'",
            expected=", ".join(map(str, df.columns)),
            message_en=f"Column(s) {', '.join(missing)} missing in the HzE table.",
        )
    df = df[[h.key, *h.columns]].rename(columns={**h.columns, h.key: "key"})
    if "hze_cases" not in df.columns:
        raise GeoplanError(
            "Die HzE-Tabelle braucht eine Spalte für die Fallzahl (Ziel 'hze_cases').",
            file=path,
            location="Konfigurationsfeld 'hze.columns'",
            hint="z. B. columns: {Faelle_2025: hze_cases, Kosten_2024: hze_cost_prev_eur}",
            message_en="The HzE table needs a column for the case count (target 'hze_cases').",
            hint_en="e.g. columns: {Faelle_2025: hze_cases, Kosten_2024: hze_cost_prev_eur}",
        )
    inputs.append(input_file("HzE-Daten", path, label=path.name, rows=len(df), qa="ohne Befund", qa_en="no findings"))
    return df, path.name
