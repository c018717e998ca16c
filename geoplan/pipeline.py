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
from typing import Any, Callable

import geopandas as gpd
import pandas as pd

from geoplan.config import Config
from geoplan.errors import QANote
from geoplan.assemble import attach, hze_stage, indicators_stage
from geoplan.provenance import InputFile

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
    uncertainty: Any = None                      # geoplan.stages.model.spatial.SpatialNeed (model.family: bym2)
    explanations: dict = field(default_factory=dict)  # key -> waterfall table (sensitivity.explain), largest/smallest budgets
    inputs: list[InputFile] = field(default_factory=list)
    notes: list[QANote] = field(default_factory=list)
    simulated: bool = False
    started: str = ""
    remote: Any = None                           # geoplan.load.sources.Remote: WFS cache copied into the outputs

    @property
    def allocation_spec(self):
        """The validated ``allocation`` section (:class:`geoplan.stages.allocate.AllocationSpec`)."""
        return self.config.allocation


def run(config: Config, *, progress: Callable[[str, str], Any] | None = None, remote=None) -> Result:
    """Run every stage on ``config``; pure apart from reading the inputs.

    ``progress(stage, label)`` is called as a context manager factory around
    each stage (the CLI shows it with rich); ``None`` runs silently.
    ``remote`` (:class:`geoplan.load.sources.Remote`): WFS cache folder and ``--offline``.
    """
    from geoplan.load import sources
    from geoplan.privacy.components import check_no_observed_counts
    from geoplan.stages import hze
    from geoplan.stages.allocate import allocate
    from geoplan.stages.equity import equity_measures
    from geoplan.stages.model.spatial import budget_intervals, need_stage
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
        bres = sources.read_boundaries_config(config, inputs, notes, remote=remote)

    with step("indicators", labels["indicators"]):
        frame, catalogue, nidx = indicators_stage(config, bres, inputs, notes, remote=remote)

    with step("hze", labels["hze"]):
        h = config.hze
        frame = hze_stage(config, frame, inputs, notes, remote=remote)

    with step("model", labels["model"]):
        frame, model_res, spatial = need_stage(frame, config.model, labels={i.name: i.label for i in catalogue.indicators})
        frame = hze.expected_cost(frame, h.budget_kinds, cases=hze.cost_year_cases(h))
        notes.extend(model_res.notes)

    with step("allocation", labels["allocation"]):
        alloc = allocate(pd.DataFrame(frame.drop(columns="geometry")), spec, key="key")
        frame = attach(frame, alloc.table.set_index("key"), replace=("budget_eur",))
        notes.extend(alloc.notes)
        frame, spatial = budget_intervals(frame, spec, alloc, spatial, notes)  # BYM2: target intervals in euros
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
        frame = attach(frame, per[[c for c in per.columns if not c.startswith("observed_")]])
        notes.extend(eq.notes)

    with step("sensitivity", labels["sensitivity"]):
        explanations = explain_extremes(alloc)
        sens = None
        s = config.sensitivity
        if s.n_draws:
            sens = weight_sensitivity(pd.DataFrame(frame.drop(columns="geometry")), spec, n_draws=s.n_draws,
                                      concentration=s.concentration, seed=s.seed)

    return Result(config=config, frame=frame, boundaries=bres, catalogue=catalogue, need=nidx, model=model_res,
                  allocation=alloc, settlement_rules=settlement_rules, settlement=settlement, equity=eq, sensitivity=sens,
                  uncertainty=spatial, explanations=explanations, inputs=inputs, notes=notes, remote=remote,
                  simulated=h.simulate is not None or bool(h.case_list and h.case_list.simulated), started=started)
