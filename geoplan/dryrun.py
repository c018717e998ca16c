"""``geoplan validate``: everything :func:`geoplan.pipeline.run` does with the inputs except fitting the model."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from geoplan.assemble import hze_stage, indicators_stage
from geoplan.config import Config
from geoplan.errors import QANote
from geoplan.provenance import InputFile


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
    from geoplan.stages.model.glm import _check_counts, _check_exposure, check_predictors_exist

    m = config.model
    check_predictors_exist(frame, m)
    named = pd.DataFrame(frame.drop(columns="geometry")).set_axis(frame["key"].astype(str).to_numpy())
    _check_counts(named["hze_cases"], "hze_cases")
    _check_exposure(named[m.exposure], m.exposure)
    if m.family == "bym2":  # the optional extra is installed (numpyro, jax)
        from geoplan.stages.model.bym2 import require_bayes

        require_bayes()


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
    b_path = config.boundaries.path  # None: PostGIS/WFS (read like run does, into a temporary folder)
    if b_path is None or str(config.resolve(b_path)) not in missing:
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
    from geoplan.privacy.components import check_no_observed_counts

    attempt(check_no_observed_counts, config.allocation, k=config.privacy.k)
    n_before = len(problems)
    if frame is not None:
        attempt(_model_input_checks, frame, config)
    if frame is not None and len(problems) == n_before:
        stand_in = frame.copy()
        expo = stand_in[config.model.exposure].astype(float)
        stand_in["expected_cases"] = expo / expo.sum() * float(stand_in["hze_cases"].sum())
        stand_in = hze.expected_cost(stand_in, config.hze.budget_kinds,
                                     cases=hze.cost_year_cases(config.hze))
        attempt(allocate, pd.DataFrame(stand_in.drop(columns="geometry")), config.allocation, key="key")
    # a missing file is reported once, by the file check
    problems = [p for p in problems
                if not (p.file in missing and p.message != "Eingabedatei nicht gefunden.")]
    return DryRun(problems=problems, notes=notes, inputs=inputs,
                  n_areas=None if bres is None else len(bres.gdf),
                  n_excluded=0 if bres is None or bres.excluded is None else len(bres.excluded),
                  levels=sorted({sources.table_level(config, t) or "Sozialräume" for t in config.indicators.tables}))
