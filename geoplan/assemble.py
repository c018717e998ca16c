"""The Sozialraum frame from the inputs: indicator tables on their levels, the HzE table or case list.

Glue between the loaders (:mod:`geoplan.load`) and the stages (:mod:`geoplan.stages`),
shared by :func:`geoplan.pipeline.run` and :func:`geoplan.dryrun.dry_run`.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd

from geoplan.config import Config
from geoplan import fmt
from geoplan.errors import QANote
from geoplan.provenance import InputFile, input_file


def attach(frame: gpd.GeoDataFrame, table: pd.DataFrame, *, replace: tuple[str, ...] = ()) -> gpd.GeoDataFrame:
    """Add the per-key columns of ``table`` (indexed by key) that ``frame`` lacks (or that are in ``replace``)."""
    out = frame.copy()
    for c in table.columns:
        if c not in out.columns or c in replace:
            out[c] = out["key"].map(table[c]).to_numpy()
    return out


def indicators_stage(config: Config, bres, inputs: list[InputFile], notes: list[QANote],
                     problems: list | None = None, remote=None):
    """Catalogue, every table on its level, the levels brought onto the Sozialräume, rates and need index.

    Returns ``(frame, catalogue, need index)``. With ``problems`` (validate) the
    errors of the catalogue, each table and each level are collected and
    ``(None, catalogue or None, None)`` is returned when any occurred. ``remote``
    (:class:`geoplan.load.sources.Remote`): cache and offline mode of WFS inputs.
    """
    from geoplan.config import exposure_label
    from geoplan.errors import GeoplanError
    from geoplan.load import sources
    from geoplan.load.catalogue import load_catalogue
    from geoplan.stages.indicators import sozialraum_indicators

    def attempt(fn, *a, **k):
        try:
            return fn(*a, **k)
        except GeoplanError as err:
            if problems is None:
                raise
            problems.append(err)
            return None

    n_before = len(problems) if problems is not None else 0
    cat_path = config.resolve(config.indicators.catalogue)
    catalogue = attempt(load_catalogue, cat_path)
    if catalogue is not None:
        inputs.append(input_file("Indikatorenkatalog", cat_path, label=cat_path.name))
    src = sources.read_indicator_tables(config, catalogue, inputs, notes, problems=problems, remote=remote)
    levels = {}
    if bres is not None:
        needed = {sources.table_level(config, t) for t in config.indicators.tables} - {None}
        levels = sources.read_levels(config, bres.metric_crs, inputs, notes, needed=needed, problems=problems,
                                     remote=remote)
    if problems is not None and (len(problems) > n_before or bres is None or catalogue is None):
        return None, catalogue, None
    b = config.boundaries
    excluded = bres.excluded["key"].tolist() if bres.excluded is not None else ()
    res = attempt(sozialraum_indicators, src, bres.gdf, catalogue, config.indicators, levels=levels,
                  expo=config.model.exposure, expo_label=exposure_label(config), boundaries_name=b.display,
                  excluded=excluded,
                  merge_map={str(k): str(m.key) for m in b.merge for k in m.keys})
    if res is None:
        return None, catalogue, None
    frame, nidx, _aggregation, ind_notes = res
    notes.extend(ind_notes)
    return frame, catalogue, nidx


def hze_stage(config: Config, frame, inputs: list[InputFile], notes: list[QANote], remote=None):
    """Simulated HzE data, or the HzE table (same reader rules as the indicator tables) joined to the Sozialräume."""
    from geoplan.load import sources
    from geoplan.stages import hze

    h = config.hze
    if h.simulate is not None:
        frame, note = hze.simulated_hze(frame, h.simulate, budget_kinds=h.budget_kinds, exposure=config.model.exposure)
        notes.append(note)
        return frame
    if h.case_list is not None:
        return case_list_stage(config, frame, inputs, notes, remote=remote)
    table, table_name = sources.read_hze_table(config, inputs, notes)
    if frame is None:
        return None
    expo = config.model.exposure
    frame, join_notes = hze.attach_hze(frame, table, frame_name=config.boundaries.display,
                                       table_name=table_name, exposure=expo if expo in frame.columns else None,
                                       cost_range=h.cost_per_case_range_eur)
    notes.extend(join_notes)
    return frame


def case_list_stage(config: Config, frame, inputs: list[InputFile], notes: list[QANote], remote=None):
    """Count the Jugendamt's case list (one row per help) into per-area, per-year HzE figures."""
    from geoplan.errors import config_field
    from geoplan.load import sources
    from geoplan.load.caselist import read_case_list_inputs
    from geoplan.stages.caselist import case_counts

    h = config.hze
    cl_cfg = h.case_list
    cl_path = config.resolve(cl_cfg.path)
    key_table, _ = sources.read_key_table(config, [], remote=remote)
    agg = config.indicators.aggregate
    with config_field("hze.case_list", cl_path):
        cl, mapping, directory = read_case_list_inputs(
            cl_cfg, base_dir=config.base_dir, key_table=key_table,
            key_source=agg.source_key if agg else None, key_target=agg.target_key if agg else None)
        if frame is None:
            return None
        counts = case_counts(cl, cl_cfg, area_keys=frame["key"].tolist(), budget_year=config.budget_year,
                             budget_kinds=h.budget_kinds, mapping=mapping, polygons=frame[["key", "geometry"]],
                             directory=directory)
    notes.extend(counts.notes)
    inputs.append(input_file("HzE-Fallliste", cl_path, label=cl_path.name, rows=cl.summary["rows"],
                             qa=f"{fmt.number(counts.qa['gezaehlt'])} von {fmt.number(counts.qa['rows'])} Zeilen gezählt",
                             qa_en=f"{fmt.number(counts.qa['gezaehlt'], lang='en')} of "
                                   f"{fmt.number(counts.qa['rows'], lang='en')} rows counted"))
    inputs.extend(case_list_aux_inputs(config, inputs, mapping=mapping, directory=directory))
    return attach(frame, counts.frame)


def case_list_aux_inputs(config: Config, inputs: list[InputFile], *, mapping, directory) -> list[InputFile]:
    """The files a case list was located with: its key table and street directory (hash and row count only).

    The key table of ``indicators.aggregate`` is listed once: not again when the indicators already list it.
    """
    cl_cfg = config.hze.case_list
    listed = {Path(i.path).resolve() for i in inputs if i.path is not None}
    out = []
    key_path = None
    if cl_cfg.subarea_key_table is not None:
        key_path = config.resolve(cl_cfg.subarea_key_table)
    elif mapping is not None and config.indicators.aggregate is not None and config.indicators.aggregate.key_table:
        key_path = config.resolve(config.indicators.aggregate.key_table)
    if key_path is not None and key_path.resolve() not in listed:
        out.append(input_file("Schlüsseltabelle der Fallliste", key_path, label=key_path.name,
                              rows=len(mapping) if mapping is not None else None))
    if cl_cfg.street_directory is not None and directory is not None:
        sd_path = config.resolve(cl_cfg.street_directory.path)
        if sd_path.resolve() not in listed:
            out.append(input_file("Straßenverzeichnis", sd_path, label=sd_path.name, rows=len(directory.sections)))
    return out
