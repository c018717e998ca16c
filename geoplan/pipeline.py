"""``run(config) -> Result``: one call per stage, in the order of the README.

config.yaml ─► boundaries ─► indicators ─► need model ─► allocation ─► equity ─► sensitivity ─► outputs

Loaders (:mod:`geoplan.load`) read the inputs; the stages
(:mod:`geoplan.stages`) compute on data frames; :mod:`geoplan.report` writes.
The CLI and the Python API both call :func:`run` and then
:func:`geoplan.report.write_outputs`.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import geopandas as gpd
import pandas as pd

from geoplan.config import Config
from geoplan.errors import QANote
from geoplan.provenance import InputFile, input_file

STAGES = [
    ("boundaries", "Sozialräume lesen und prüfen"),
    ("indicators", "Indikatoren lesen, zuordnen, ableiten"),
    ("hze", "HzE-Fallzahlen und Kosten"),
    ("model", "Bedarfsmodell schätzen"),
    ("allocation", "Budget verteilen"),
    ("equity", "Verteilungsgerechtigkeit messen"),
    ("sensitivity", "Sensitivität der Gewichte prüfen"),
]


@dataclass
class Result:
    """Everything a run produced; writers turn it into files."""

    config: Config
    frame: gpd.GeoDataFrame                      # one row per Sozialraum, standard columns, metric CRS
    boundaries: Any = None                       # geoplan.load.boundaries.BoundaryResult
    catalogue: Any = None                        # geoplan.load.catalogue.Catalogue
    need: Any = None                             # geoplan.stages.indicators.NeedIndex
    model: Any = None                            # geoplan.stages.model.NeedModelResult
    allocation: Any = None                       # geoplan.stages.allocate.AllocationResult
    settlement_rules: Any = None                 # German table of the settlement rules (regel, beschreibung)
    settlement: Any = None                       # geoplan.stages.settlement.SettlementView (rules with this run's euros)
    equity: Any = None                           # geoplan.stages.equity.EquityResult
    sensitivity: Any = None                      # geoplan.stages.sensitivity.SensitivityResult (None: n_draws 0)
    explanations: dict = field(default_factory=dict)  # key -> waterfall table (sensitivity.explain), largest/smallest budgets
    inputs: list[InputFile] = field(default_factory=list)
    notes: list[QANote] = field(default_factory=list)
    simulated: bool = False
    started: str = ""

    @property
    def allocation_spec(self):
        """The validated ``allocation`` section (:class:`geoplan.stages.allocate.AllocationSpec`)."""
        return self.config.allocation


def _attach(frame: gpd.GeoDataFrame, table: pd.DataFrame, *, replace: tuple[str, ...] = ()) -> gpd.GeoDataFrame:
    """Add the per-key columns of ``table`` (indexed by key) that ``frame`` lacks (or that are in ``replace``)."""
    out = frame.copy()
    for c in table.columns:
        if c not in out.columns or c in replace:
            out[c] = out["key"].map(table[c]).to_numpy()
    return out


def indicators_stage(config: Config, bres, inputs: list[InputFile], notes: list[QANote],
                     problems: list | None = None):
    """Catalogue, every table on its level, the levels brought onto the Sozialräume, rates and need index.

    Returns ``(frame, catalogue, need index)``. With ``problems`` (validate) the
    errors of the catalogue, each table and each level are collected and
    ``(None, catalogue or None, None)`` is returned when any occurred.
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
    src = sources.read_indicator_tables(config, catalogue, inputs, notes, problems=problems)
    levels = {}
    if bres is not None:
        needed = {sources.table_level(config, t) for t in config.indicators.tables} - {None}
        levels = sources.read_levels(config, bres.metric_crs, inputs, notes, needed=needed, problems=problems)
    if problems is not None and (len(problems) > n_before or bres is None or catalogue is None):
        return None, catalogue, None
    b = config.boundaries
    excluded = bres.excluded["key"].tolist() if bres.excluded is not None else ()
    res = attempt(sozialraum_indicators, src, bres.gdf, catalogue, config.indicators, levels=levels,
                  expo=config.model.exposure, expo_label=exposure_label(config), boundaries_name=Path(b.path).name,
                  excluded=excluded)
    if res is None:
        return None, catalogue, None
    frame, nidx, _aggregation, ind_notes = res
    notes.extend(ind_notes)
    return frame, catalogue, nidx


def hze_stage(config: Config, frame, inputs: list[InputFile], notes: list[QANote]):
    """Simulated HzE data, or the HzE table (same reader rules as the indicator tables) joined to the Sozialräume."""
    from geoplan.load import sources
    from geoplan.stages import hze

    h = config.hze
    if h.simulate is not None:
        frame, note = hze.simulated_hze(frame, h.simulate, budget_kinds=h.budget_kinds, exposure=config.model.exposure)
        notes.append(note)
        return frame
    table, table_name = sources.read_hze_table(config, inputs, notes)
    if frame is None:
        return None
    frame, join_notes = hze.attach_hze(frame, table, frame_name=Path(config.boundaries.path).name,
                                       table_name=table_name, exposure=config.model.exposure,
                                       cost_range=h.cost_per_case_range_eur)
    notes.extend(join_notes)
    return frame


def run(config: Config, *, progress: Callable[[str, str], Any] | None = None) -> Result:
    """Run every stage on ``config``; pure apart from reading the inputs.

    ``progress(stage, label)`` is called as a context manager factory around
    each stage (the CLI shows it with rich); ``None`` runs silently.
    """
    from geoplan.load import sources
    from geoplan.privacy.components import check_no_observed_counts
    from geoplan.stages import hze
    from geoplan.stages.allocate import allocate
    from geoplan.stages.equity import equity_measures
    from geoplan.stages.model import expected_demand
    from geoplan.stages.sensitivity import explain_extremes, weight_sensitivity

    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    step = progress or (lambda stage, label: nullcontext())
    labels = dict(STAGES)
    sources.check_inputs(config)
    spec = config.allocation
    check_no_observed_counts(spec, k=config.privacy.k)  # privacy by construction (issue 12)
    settlement_rules = None
    if config.settlement is not None:
        from geoplan.stages.settlement import describe_settlement

        settlement_rules = describe_settlement(config.settlement)
    notes: list[QANote] = []
    inputs: list[InputFile] = []

    with step("boundaries", labels["boundaries"]):
        bres = sources.read_boundaries_config(config, inputs, notes)

    with step("indicators", labels["indicators"]):
        frame, catalogue, nidx = indicators_stage(config, bres, inputs, notes)

    with step("hze", labels["hze"]):
        h = config.hze
        frame = hze_stage(config, frame, inputs, notes)

    with step("model", labels["model"]):
        frame, model_res = expected_demand(frame, config.model,
                                           labels={i.name: i.label for i in catalogue.indicators})
        frame = hze.expected_cost(frame, h.budget_kinds)
        notes.extend(model_res.notes)

    with step("allocation", labels["allocation"]):
        alloc = allocate(pd.DataFrame(frame.drop(columns="geometry")), spec, key="key")
        frame = _attach(frame, alloc.table.set_index("key"), replace=("budget_eur",))
        notes.extend(alloc.notes)
        settlement = None
        if config.settlement is not None:
            from geoplan.load.settlement import read_actual_costs
            from geoplan.stages.settlement import settlement_view

            actual = read_actual_costs(config, alloc.table["key"], inputs, notes)
            settlement = settlement_view(alloc, config.settlement, names=dict(zip(frame["key"], frame["name"])),
                                         actual_eur=actual)
            notes.extend(settlement.notes)

    with step("equity", labels["equity"]):
        corridor = spec.corridor
        eq = equity_measures(
            pd.DataFrame(frame.drop(columns="geometry")),
            budget="budget_eur",
            population=config.model.exposure,
            need="need_index",
            expected="expected_cases",
            prior="hze_cost_prev_eur" if "hze_cost_prev_eur" in frame.columns else None,
            group="bezirk",
            corridor_pct=corridor.max_change_pct if corridor is not None else None,
            corridor=corridor,
            tolerance_pct=corridor.target_tolerance_pct if corridor is not None else 1.0,
        )
        # observed counts stay in the model columns (hze_cases), where suppression applies
        per = eq.per_area.set_index("key")
        frame = _attach(frame, per[[c for c in per.columns if not c.startswith("observed_")]])
        notes.extend(eq.notes)

    with step("sensitivity", labels["sensitivity"]):
        explanations = explain_extremes(alloc)
        sens = None
        s = config.sensitivity
        if s.n_draws:
            sens = weight_sensitivity(pd.DataFrame(frame.drop(columns="geometry")), spec, n_draws=s.n_draws,
                                      concentration=s.concentration, seed=s.seed)

    return Result(config=config, frame=frame, boundaries=bres, catalogue=catalogue, need=nidx, model=model_res,
                  allocation=alloc, settlement_rules=settlement_rules, settlement=settlement, equity=eq, sensitivity=sens, explanations=explanations,
                  inputs=inputs, notes=notes,
                  simulated=h.simulate is not None, started=started)


@dataclass
class DryRun:
    """What ``geoplan validate`` found: every problem (GeoplanError), the QA notes and a few counts."""

    problems: list
    notes: list[QANote]
    inputs: list[InputFile]
    n_areas: int | None = None
    n_excluded: int = 0
    levels: list[str] = field(default_factory=list)


def _model_input_checks(frame, config: Config) -> None:
    """The input checks of the model stage, without fitting: predictors exist, counts and exposure are valid."""
    from geoplan.errors import GeoplanError
    from geoplan.stages.model.glm import _check_counts, _check_exposure

    m = config.model
    unknown = [p for p in m.predictors if p not in frame.columns]
    if unknown:
        raise GeoplanError(
            f"Prädiktor(en) {', '.join(unknown)} gibt es nicht.",
            location="Konfigurationsfeld 'model.predictors'",
            expected=", ".join(c for c in frame.columns if c not in ("geometry", "key", "name", "bezirk")),
            hint="Namen aus dem Indikatorenkatalog verwenden.",
        )
    named = pd.DataFrame(frame.drop(columns="geometry")).set_axis(frame["key"].astype(str).to_numpy())
    _check_counts(named["hze_cases"], "hze_cases")
    _check_exposure(named[m.exposure], m.exposure)


def dry_run(config: Config) -> DryRun:
    """Everything ``run`` does with the inputs, except fitting the model: read every file, resolve every
    column and key, join and interpolate, check the model inputs and the budget formula (with expected
    cases proportional to the exposure as a stand-in). Collects all problems instead of stopping at the first;
    the messages are those of ``run``."""
    from geoplan.errors import GeoplanError
    from geoplan.load import sources
    from geoplan.stages import hze
    from geoplan.stages.allocate import allocate

    problems: list = sources.missing_inputs(config)
    missing = {p.file for p in problems}
    notes: list[QANote] = []
    inputs: list[InputFile] = []

    def attempt(fn, *a, **k):
        try:
            return fn(*a, **k)
        except GeoplanError as err:
            problems.append(err)
            return None

    bres = None
    if str(config.resolve(config.boundaries.path)) not in missing:
        bres = attempt(sources.read_boundaries_config, config, inputs, notes)
    frame, catalogue, _nidx = indicators_stage(config, bres, inputs, notes, problems=problems)
    if frame is not None:
        frame = attempt(hze_stage, config, frame, inputs, notes)
    elif config.hze.path is not None and str(config.resolve(config.hze.path)) not in missing:
        if bres is not None:  # the HzE table against the polygons' keys, even when the indicators failed
            attempt(hze_stage, config, bres.gdf[["key", "geometry"]], inputs, notes)
        else:
            attempt(sources.read_hze_table, config, inputs, notes)
    if config.settlement is not None:
        from geoplan.stages.settlement import describe_settlement

        attempt(describe_settlement, config.settlement)
    n_before = len(problems)
    if frame is not None:
        attempt(_model_input_checks, frame, config)
    if frame is not None and len(problems) == n_before:
        stand_in = frame.copy()
        expo = stand_in[config.model.exposure].astype(float)
        stand_in["expected_cases"] = expo / expo.sum() * float(stand_in["hze_cases"].sum())
        stand_in = hze.expected_cost(stand_in, config.hze.budget_kinds)
        attempt(allocate, pd.DataFrame(stand_in.drop(columns="geometry")), config.allocation, key="key")
    # a missing file is reported once, by the file check
    problems = [p for p in problems
                if not (p.file in missing and p.message != "Eingabedatei nicht gefunden.")]
    return DryRun(problems=problems, notes=notes, inputs=inputs,
                  n_areas=None if bres is None else len(bres.gdf),
                  n_excluded=0 if bres is None or bres.excluded is None else len(bres.excluded),
                  levels=sorted({sources.table_level(config, t) or "Sozialräume" for t in config.indicators.tables}))
