"""``run(config) -> Result``: the stage order and the manifest.

config.yaml ─► boundaries ─► indicators ─► need model ─► allocation ─► equity ─► outputs

Loaders read files at the start; :mod:`geoplan.report` writes them at the end.
Everything in between works on data frames. The CLI and the Python API both
call :func:`run` and :func:`write_outputs`.
"""

from __future__ import annotations

import hashlib
import platform
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import geopandas as gpd
import numpy as np
import pandas as pd
from pydantic import ValidationError

from geoplan import __version__
from geoplan.config import Config, validation_error_to_geoplan
from geoplan.errors import GeoplanError, QANote

STAGES = [
    ("boundaries", "Sozialräume lesen und prüfen"),
    ("indicators", "Indikatoren lesen, zuordnen, ableiten"),
    ("hze", "HzE-Fallzahlen und Kosten"),
    ("model", "Bedarfsmodell schätzen"),
    ("allocation", "Budget verteilen"),
    ("equity", "Verteilungsgerechtigkeit messen"),
]

AGE_COLUMNS = ["pop_u6", "pop_6_15", "pop_15_18", "pop_18_27", "pop_27_45", "pop_45_55", "pop_55_65", "pop_65plus"]


@dataclass
class InputFile:
    role: str
    path: Path
    sha256: str
    label: str | None = None
    source: str | None = None
    licence: str | None = None
    reference_date: str | None = None
    rows: int | None = None
    qa: str = ""


@dataclass
class Result:
    """Everything a run produced; writers turn it into files."""

    config: Config
    frame: gpd.GeoDataFrame                      # one row per Sozialraum, standard columns, metric CRS
    boundaries: Any = None                       # geoplan.boundaries.BoundaryResult
    catalogue: Any = None                        # geoplan.indicators.Catalogue
    need: Any = None                             # geoplan.indicators.NeedIndex
    aggregation: Any = None                      # geoplan.interpolate.AggregateResult
    model: Any = None                            # geoplan.model.NeedModelResult
    allocation: Any = None                       # geoplan.allocate.AllocationResult
    allocation_spec: Any = None                  # geoplan.allocate.AllocationSpec
    settlement: Any = None                       # geoplan.settlement.SettlementSpec (rules of the period's end)
    settlement_rules: Any = None                 # German table of those rules (regel, beschreibung)
    equity: Any = None                           # geoplan.equity.EquityResult
    inputs: list[InputFile] = field(default_factory=list)
    notes: list[QANote] = field(default_factory=list)
    simulated: bool = False
    started: str = ""
    source_rows: dict[str, int] = field(default_factory=dict)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _require_file(path: Path, field_name: str) -> None:
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
    _require_file(config.resolve(config.boundaries.path), "boundaries.path")
    _require_file(config.resolve(config.indicators.catalogue), "indicators.catalogue")
    for i, t in enumerate(config.indicators.tables):
        _require_file(config.resolve(t.path), f"indicators.tables[{i}].path")
    agg = config.indicators.aggregate
    if agg and agg.key_table:
        _require_file(config.resolve(agg.key_table), "indicators.aggregate.key_table")
    if config.hze.path:
        _require_file(config.resolve(config.hze.path), "hze.path")


def allocation_spec(config: Config, file: str | Path = "<config>"):
    from geoplan.allocate import AllocationSpec

    try:
        return AllocationSpec.model_validate(config.allocation)
    except ValidationError as err:
        e = validation_error_to_geoplan(err, AllocationSpec, file)
        e.message = e.message.replace("- Feld '", "- Feld 'allocation.").replace(
            "- unbekanntes Feld '", "- unbekanntes Feld 'allocation."
        ).replace("- Pflichtfeld '", "- Pflichtfeld 'allocation.")
        raise e from None


@contextmanager
def config_field(field: str, file: Path | None = None):
    """Name the config field (and file) in any GeoplanError raised inside, so the user knows what to edit."""
    try:
        yield
    except GeoplanError as err:
        if err.location:
            err.location = err.location.replace("'_source_key'", "'Quellschlüssel'")
        where = f"Konfigurationsfeld '{field}'"
        if field not in (err.location or "") and field not in err.message:
            err.location = f"{err.location}; {where}" if err.location else where
        if err.file is None and file is not None:
            err.file = str(file)
        raise


# --------------------------------------------------------------------------- stages


def stage_boundaries(config: Config):
    from geoplan.boundaries import prepare_boundaries

    b = config.boundaries
    with config_field("boundaries", config.resolve(b.path)):
        return _prepare(b, config)


def _prepare(b, config):
    from geoplan.boundaries import prepare_boundaries

    return prepare_boundaries(
        config.resolve(b.path),
        key=b.key,
        name=b.name,
        layer=b.layer,
        crs=b.crs,
        metric_crs=b.metric_crs,
        repair=b.repair,
        min_sliver_m2=b.min_sliver_m2,
        encoding=b.encoding,
        key_width=b.key_width,
    )


def _check_values(df: pd.DataFrame, t, path: Path, i: int, percent_columns: set[str]) -> None:
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


def _read_tables(config: Config, catalogue, inputs: list[InputFile], notes: list[QANote]) -> pd.DataFrame:
    """Read every indicator table, rename to geoplan names, check values, join on the source key."""
    percent_columns = {ind.column or ind.name for ind in catalogue.indicators if ind.unit == "%"}
    from geoplan.tables import join_by_key, read_table

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
        _check_values(df, t, path, i, percent_columns)
        sub = df[[t.key, *t.columns]].rename(columns={**t.columns, t.key: "_source_key"})
        qa = []
        if res.suppressed:
            qa.append("unterdrückt/leer: " + ", ".join(f"{c} {n}" for c, n in res.suppressed.items() if c in t.columns and n))
        inputs.append(
            InputFile(
                role="Indikatoren",
                path=path,
                sha256=sha256_of(path),
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


def _linear_combinations(df: pd.DataFrame, derived: dict[str, dict[str, float]]) -> pd.DataFrame:
    out = df.copy()
    for name, terms in derived.items():
        missing = [c for c in terms if c not in out.columns]
        if missing:
            raise GeoplanError(
                f"Abgeleitete Spalte '{name}': Spalte(n) {', '.join(missing)} unbekannt.",
                location=f"Konfigurationsfeld 'indicators.derived.{name}'",
                expected=", ".join(c for c in out.columns if not c.startswith("_")),
                hint="Nur Spalten verwenden, die in indicators.tables[].columns benannt sind.",
            )
        # a term that is missing in a row makes the derived value missing (no silent zero)
        out[name] = sum(out[c] * f for c, f in terms.items())
    return out


def stage_indicators(config: Config, boundaries_gdf: gpd.GeoDataFrame, inputs, notes):
    """Read, aggregate to Sozialräume, join to polygons, derive rates and the need index."""
    from geoplan.indicators import base_of, derive_indicators, load_catalogue, need_index
    from geoplan.interpolate import aggregate_by_key
    from geoplan.tables import join_by_key, read_table

    cfg = config.indicators
    cat_path = config.resolve(cfg.catalogue)
    catalogue = load_catalogue(cat_path)
    inputs.append(InputFile("Indikatorenkatalog", cat_path, sha256_of(cat_path), label=cat_path.name))

    src = _read_tables(config, catalogue, inputs, notes)
    src = _linear_combinations(src, cfg.derived)
    source_rows = {"Quellzeilen": len(src)}

    count_cols = [c for c in src.columns if c != "_source_key" and (c.startswith("pop_") or c in cfg.derived)]
    shares: dict[str, str] = {}
    for ind in catalogue.indicators:
        if ind.column and ind.column in src.columns and ind.column not in count_cols:
            if ind.base:
                bname = f"_basis_{ind.name}"
                src[bname] = base_of(src, ind)
                shares[ind.column] = bname
            else:
                shares[ind.column] = "pop_total"
    # columns that are neither counts nor catalogue indicators are still carried, weighted by residents
    for c in src.columns:
        if c == "_source_key" or c.startswith("_basis_") or c in count_cols or c in shares:
            continue
        shares[c] = "pop_total" if "pop_total" in src.columns else count_cols[0]

    agg_cfg = cfg.aggregate
    group_map = None
    aggregation = None
    if agg_cfg is None:
        frame = src.rename(columns={"_source_key": "key"})
    else:
        mapping = None
        if agg_cfg.key_table:
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
            inputs.append(InputFile("Schlüsseltabelle", kpath, sha256_of(kpath), label=kpath.name, rows=len(mapping),
                                    qa="ohne Befund"))
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
        with config_field("indicators.aggregate",
                          config.resolve(agg_cfg.key_table) if agg_cfg.key_table else None):
            aggregation = aggregate_by_key(
                src,
                source_key="_source_key",
                counts=count_cols,
                shares=shares,
                mapping=mapping,
                mapping_source=agg_cfg.source_key,
                mapping_target=agg_cfg.target_key,
                prefix_len=agg_cfg.prefix_len,
                target_name="key",
            )
        notes.extend(aggregation.notes)
        frame = aggregation.frame.reset_index(drop="key" in aggregation.frame.columns)
        frame = frame[[c for c in frame.columns if not c.startswith("_basis_")]]
    frame["key"] = frame["key"].astype(str)

    # every Sozialraum must have indicators and every indicator row a Sozialraum
    try:
        j = join_by_key(
            boundaries_gdf[["key"]],
            frame,
            left_key="key",
            right_key="key",
            left_name=Path(config.boundaries.path).name,
            right_name="den Indikatoren (über die Schlüsseltabelle zusammengefasst)",
        )
    except GeoplanError as err:
        # every Sozialraum needs indicators and every indicator row a polygon: no config switch for that
        err.hint = ("Polygone und Indikatoren müssen dieselben Sozialräume enthalten: fehlende Polygone ergänzen, "
                    "die Schlüsseltabelle (indicators.aggregate) korrigieren oder den Schlüssel in "
                    "boundaries.key prüfen.")
        raise
    notes.extend(j.notes)
    joined = boundaries_gdf.merge(frame, on="key", how="left", validate="one_to_one")
    expo = config.model.exposure
    if expo in joined.columns:
        bad = joined[~(joined[expo] > 0)]
        if len(bad):
            raise GeoplanError(
                f"{len(bad)} Sozialraum/Sozialräume ohne Einwohner unter 21 ({expo} ist 0 oder fehlt).",
                location="Sozialräume " + ", ".join(bad["key"].astype(str).tolist()[:10]),
                expected=f"{expo} > 0 für jeden Sozialraum",
                hint="Bevölkerungstabelle prüfen; unbewohnte Flächen (Wald, Flughafen) nicht als Sozialraum führen "
                     "oder einem Nachbarraum zuschlagen.",
            )
    if group_map is not None:
        joined["bezirk"] = joined["key"].map(group_map).astype(str)
    elif "bezirk" not in joined.columns:
        joined["bezirk"] = ""

    derived = derive_indicators(pd.DataFrame(joined.drop(columns="geometry")), catalogue)
    notes.extend(derived.notes)
    nidx = need_index(derived.frame, catalogue, method=cfg.index_method)
    notes.extend(nidx.notes)
    out = gpd.GeoDataFrame(nidx.frame, geometry=joined.geometry.values, crs=joined.crs)
    return out, catalogue, nidx, aggregation, source_rows


def stage_hze(config: Config, frame: gpd.GeoDataFrame, inputs, notes) -> tuple[gpd.GeoDataFrame, bool]:
    """Attach HzE cases and prior-year costs: simulated (example) or read from a file."""
    from geoplan.simulate import simulate_hze

    h = config.hze
    if h.simulate is not None:
        s = h.simulate
        sim = simulate_hze(
            frame,
            effects=s.effects,
            rate_per_1000=s.rate_per_1000,
            kinds={k: v.model_dump() for k, v in s.kinds.items()},
            alpha=s.alpha,
            cost_sd_log=s.cost_sd_log,
            trend=s.trend,
            budget_kinds=h.budget_kinds,
            seed=s.seed,
            exposure=config.model.exposure,
        )
        notes.append(
            QANote(
                "hze",
                f"HzE-Fallzahlen und -Kosten sind simuliert (Seed {s.seed}, {s.rate_per_1000:g} Fälle je 1.000 unter 21); "
                "sie sind keine amtlichen Daten.",
                level="info",
            )
        )
        out = frame.copy()
        for c in sim.columns:
            out[c] = sim[c].to_numpy()
        return out, True

    from geoplan.tables import join_by_key, read_table

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
    j = join_by_key(frame[["key"]], df, left_key="key", right_key="key", left_name=str(config.boundaries.path),
                    right_name=path.name)
    notes.extend(j.notes)
    inputs.append(InputFile("HzE-Daten", path, sha256_of(path), label=path.name, rows=len(df), qa="ohne Befund"))
    out = frame.merge(df, on="key", how="left", validate="one_to_one")
    return gpd.GeoDataFrame(out, geometry="geometry", crs=frame.crs), False


def stage_model(config: Config, frame: gpd.GeoDataFrame, catalogue=None):
    from geoplan.model import fit_need_model

    labels = {i.name: i.label for i in catalogue.indicators} if catalogue is not None else None
    m = config.model
    unknown = [p for p in m.predictors if p not in frame.columns]
    if unknown:
        raise GeoplanError(
            f"Prädiktor(en) {', '.join(unknown)} gibt es nicht.",
            location="Konfigurationsfeld 'model.predictors'",
            expected=", ".join(c for c in frame.columns if c not in ("geometry", "key", "name", "bezirk")),
            hint="Namen aus dem Indikatorenkatalog verwenden.",
        )
    res = fit_need_model(
        pd.DataFrame(frame.drop(columns="geometry")),
        cases="hze_cases",
        exposure=m.exposure,
        predictors=list(m.predictors),
        family=m.family,
        groups="bezirk" if frame["bezirk"].nunique() > 1 else None,
        geometry=frame.geometry,
        cv_folds=m.cv_folds,
        n_boot=m.n_boot,
        seed=m.seed,
        labels=labels,
    )
    out = frame.copy()
    out["expected_cases"] = np.asarray(res.expected, float)
    out["expected_per_1000"] = out["expected_cases"] / out[m.exposure] * 1000.0
    out["pi_low"] = np.asarray(res.intervals["pi_low"], float)
    out["pi_high"] = np.asarray(res.intervals["pi_high"], float)
    if "hze_cost_prev_eur" in out.columns and "hze_cases_prev" in out.columns:
        # expected cost = expected cases x city-wide prior-year cost per case of the budget's kinds of help
        kinds = config.hze.budget_kinds
        prev_cases = sum(out[f"hze_cases_prev_{k}"] for k in kinds) if all(
            f"hze_cases_prev_{k}" in out.columns for k in kinds) else out["hze_cases_prev"]
        cost_per_case = out["hze_cost_prev_eur"].sum() / max(prev_cases.sum(), 1)
        share_kinds = prev_cases.sum() / max(out["hze_cases_prev"].sum(), 1)
        out["expected_cost_eur"] = out["expected_cases"] * share_kinds * cost_per_case
    return out, res


def stage_allocation(config: Config, frame: gpd.GeoDataFrame, spec):
    from geoplan.allocate import allocate

    res = allocate(pd.DataFrame(frame.drop(columns="geometry")), spec, key="key")
    table = res.table.set_index("key")
    out = frame.copy()
    for c in table.columns:
        if c not in out.columns or c == "budget_eur":
            out[c] = out["key"].map(table[c]).to_numpy()
    return out, res


def stage_equity(config: Config, frame: gpd.GeoDataFrame, spec):
    from geoplan.equity import equity_measures

    corridor_pct = None
    corridor = getattr(spec, "corridor", None)
    if corridor is not None:
        corridor_pct = getattr(corridor, "max_change_pct", None)
    res = equity_measures(
        pd.DataFrame(frame.drop(columns="geometry")),
        budget="budget_eur",
        population=config.model.exposure,
        need="need_index",
        expected="expected_cases",
        prior="hze_cost_prev_eur" if "hze_cost_prev_eur" in frame.columns else None,
        group="bezirk",
        corridor_pct=corridor_pct,
    )
    per = res.per_area.set_index("key")
    out = frame.copy()
    for c in per.columns:
        # observed counts stay in the model columns (hze_cases), where suppression applies
        if c not in out.columns and not c.startswith("observed_"):
            out[c] = out["key"].map(per[c]).to_numpy()
    return out, res


# --------------------------------------------------------------------------- run


def run(config: Config, *, progress: Callable[[str, str], Any] | None = None) -> Result:
    """Run every stage on ``config``; pure apart from reading the inputs.

    ``progress(stage, label)`` is called as a context manager factory around
    each stage (the CLI shows it with rich); ``None`` runs silently.
    """
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    step = progress or (lambda stage, label: nullcontext())
    labels = dict(STAGES)
    check_inputs(config)
    spec = allocation_spec(config)
    settlement = settlement_rules = None
    if config.settlement:
        from geoplan.settlement import describe_settlement, parse_settlement

        with config_field("settlement"):
            settlement = parse_settlement(config.settlement)
        settlement_rules = describe_settlement(settlement)
    notes: list[QANote] = []
    inputs: list[InputFile] = []

    with step("boundaries", labels["boundaries"]):
        b = stage_boundaries(config)
        notes.extend(b.notes)
        bpath = config.resolve(config.boundaries.path)
        n_findings = len(b.qa.findings) if getattr(b.qa, "findings", None) is not None else 0
        inputs.append(
            InputFile("Sozialräume", bpath, sha256_of(bpath), label=bpath.name, rows=len(b.gdf),
                      qa=f"{n_findings} Befund(e)" if n_findings else "ohne Befund")
        )
    with step("indicators", labels["indicators"]):
        frame, catalogue, nidx, aggregation, source_rows = stage_indicators(config, b.gdf, inputs, notes)
    with step("hze", labels["hze"]):
        frame, simulated = stage_hze(config, frame, inputs, notes)
    with step("model", labels["model"]):
        frame, model_res = stage_model(config, frame, catalogue)
        notes.extend(model_res.notes)
    with step("allocation", labels["allocation"]):
        frame, alloc = stage_allocation(config, frame, spec)
        notes.extend(alloc.notes)
    with step("equity", labels["equity"]):
        frame, eq = stage_equity(config, frame, spec)
        notes.extend(eq.notes)

    return Result(
        config=config,
        frame=frame,
        boundaries=b,
        catalogue=catalogue,
        need=nidx,
        aggregation=aggregation,
        model=model_res,
        allocation=alloc,
        allocation_spec=spec,
        settlement=settlement,
        settlement_rules=settlement_rules,
        equity=eq,
        inputs=inputs,
        notes=notes,
        simulated=simulated,
        started=started,
        source_rows=source_rows,
    )


def package_versions() -> dict[str, str]:
    names = ["geoplan", "numpy", "pandas", "geopandas", "shapely", "pyogrio", "pyproj", "scikit-learn",
             "statsmodels", "libpysal", "esda", "mapclassify", "folium", "matplotlib", "openpyxl", "pydantic",
             "jinja2", "weasyprint"]
    out = {"python": platform.python_version()}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = __version__ if n == "geoplan" else "nicht installiert"
    return out
