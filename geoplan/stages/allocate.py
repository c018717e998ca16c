"""Budget formula: components, Teilbudgets, corridors and exact rounding.

A total budget (EUR) is split over Sozialräume by weighted *components*. Each
component turns one or more columns of the Sozialraum frame into *shares*
(non-negative, summing to 1 over all Sozialräume):

``fixed``
    equal share per Sozialraum, or proportional to ``column`` (e.g. ``area_km2``).
``population``
    proportional to a population column or the sum of several (``pop_u21``).
``indicator``
    ISA style (Institut für soziale Arbeit, 2001; source section 6.2):
    weighted indicator columns (``indicators: {kinderarmut: 0.5, ...}``). Each
    indicator's share is proportional to ``base × indicator`` when ``base`` is
    given (an indicator in % of the base population then counts affected
    persons), otherwise proportional to the indicator value itself. The
    component share is the weighted mean of the indicator shares.
``model``
    proportional to the need model's ``expected_cases`` (cases) or
    ``expected_cost_eur`` (EUR).
``prior_year``
    proportional to actual costs (EUR) of one or several years, averaged per
    Sozialraum (e.g. Kamp-Lintfort: the two previous years).
``fachleistungsstunden``
    proportional to hours × hourly rate (EUR/h; Landkreis Tübingen), the rate
    either a constant ``rate_eur_per_hour`` or a per-area ``rate_column``.

Money is integer: whole euros (``unit: euro``) or cents (``unit: cent``); the
amount columns of the result are in that unit. Rounding uses the largest
remainder method (Hamilton; Balinski & Young, *Fair Representation*, 1982)
in two steps so that every total is exact:

1. the distributed amount of a Teilbudget is split into component totals by
   the weights (Hamilton over components);
2. every component total is split over Sozialräume by the component's shares
   (Hamilton over Sozialräume).

The row total ``budget_eur`` is the sum of the row's component amounts, so
rows add up to the distributed total exactly, every component column adds up
to its component total, and the components add up to the row. Ties of
remainders are broken by the Sozialraum key (ascending), so results are
deterministic and independent of the row order of the input.

Properties (tested with hypothesis): the total is exact, amounts are never
negative, corridors and floors hold, scaling a population column leaves the
shares unchanged, and more need never lowers an area's exact quota; after
rounding an area can lose at most one unit per component when its need
rises (the largest remainder method's population paradox, Balinski & Young).

Corridors (change against the prior year limited to ±x %, floors, caps) are
applied to the row totals afterwards; the change is shown in the column
``eur_korridor`` so that ``Σ eur_<component> + eur_korridor = budget_eur``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Literal, Union

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, ValidationError, model_validator

from geoplan import fmt
from geoplan.errors import GeoplanError, QANote
from geoplan.fmt import number as fmt_eur  # German grouping (1.060.000 / 1.234,50): the one formatter

__all__ = [
    "AllocationResult",
    "AllocationSpec",
    "Component",
    "Corridor",
    "Teilbudget",
    "allocate",
    "corridor_bounds",
    "corridor_exempt",
    "corridor_rule_text",
    "hamilton",
    "parse_spec",
    "resolve_teilbudgets",
    "solve_corridor",
]

WEIGHT_TOL = 1e-9
_UNIT_SCALE = {"euro": 1, "cent": 100}


# --------------------------------------------------------------------------
# Configuration models (the ``allocation:`` section of the YAML config)
# --------------------------------------------------------------------------
class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="identifier, used in column eur_<name>")
    label: str = Field("", description="German label for reports")
    weight: float = Field(ge=0.0, le=1.0)


class FixedComponent(_Base):
    """Equal share per Sozialraum, or proportional to ``column`` (e.g. area_km2)."""

    type: Literal["fixed"]
    column: str | None = None


class PopulationComponent(_Base):
    """Share proportional to a population column (persons), or the sum of ``columns``."""

    type: Literal["population"]
    column: str | None = None
    columns: list[str] | None = None

    @model_validator(mode="after")
    def _one(self):
        if not self.column and not self.columns:
            self.column = "pop_u21"
        return self


class IndicatorComponent(_Base):
    """ISA indicator share: weighted indicator columns, optionally times ``base``."""

    type: Literal["indicator"]
    indicators: dict[str, float] = Field(min_length=1)
    base: str | None = None

    @model_validator(mode="after")
    def _weights(self):
        bad = {k: v for k, v in self.indicators.items() if not (v >= 0) or not math.isfinite(v)}
        if bad or sum(self.indicators.values()) <= 0:
            raise ValueError(f"Indikatorgewichte müssen ≥ 0 sein und eine positive Summe haben, gefunden: {self.indicators}")
        return self


class ModelComponent(_Base):
    """Share proportional to the need model's expected cases or expected cost."""

    type: Literal["model"]
    column: Literal["expected_cases", "expected_cost_eur"] | str = "expected_cases"


class PriorYearComponent(_Base):
    """Share proportional to prior-year costs (EUR).

    ``columns`` are averaged per Sozialraum when they are several years
    (``combine: mean``, e.g. Kamp-Lintfort 1998 and 1999) or added up when they
    are cost types of one year (``combine: sum``, e.g. ambulant + teilstationär).
    """

    type: Literal["prior_year"]
    columns: list[str] = Field(default_factory=lambda: ["hze_cost_prev_eur"], min_length=1)
    combine: Literal["mean", "sum"] = "mean"


class FachleistungsstundenComponent(_Base):
    """Share proportional to hours × hourly rate (EUR/h).

    ``column`` holds Fachleistungsstunden (h) per Sozialraum; with
    ``hours_per_case`` it holds cases instead (e.g. ``expected_cases``) and the
    hours are cases × hours per case.
    """

    type: Literal["fachleistungsstunden"]
    column: str = "fachleistungsstunden"
    hours_per_case: float | None = Field(None, gt=0)
    rate_eur_per_hour: float | None = Field(None, gt=0)
    rate_column: str | None = None

    @model_validator(mode="after")
    def _rate(self):
        if self.rate_eur_per_hour is None and self.rate_column is None:
            raise ValueError("Fachleistungsstunden brauchen rate_eur_per_hour oder rate_column")
        return self


Component = Annotated[
    Union[
        FixedComponent,
        PopulationComponent,
        IndicatorComponent,
        ModelComponent,
        PriorYearComponent,
        FachleistungsstundenComponent,
    ],
    Field(discriminator="type"),
]


class Teilbudget(BaseModel):
    """A part of the total (A, B, C, …).

    Exactly one rule: ``share`` (fraction of the total, 0–1), ``percent_of`` +
    ``percent`` (e.g. Stuttgart B = 6 % of A), ``amount_eur`` (fixed amount,
    EUR) or ``remainder: true`` (what is left; at most one Teilbudget).
    ``distributed: false`` means the Teilbudget stays with the public body
    ("verbleibt beim öffentlichen Träger") and is not split over Sozialräume.
    ``components`` may give a formula of its own; otherwise the spec's.
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9_]+$")
    label: str = ""
    share: float | None = Field(None, ge=0.0, le=1.0)
    percent: float | None = Field(None, ge=0.0)
    percent_of: str | None = None
    amount_eur: float | None = Field(None, ge=0.0)
    remainder: bool = False
    distributed: bool = True
    components: list[Component] | None = None

    @model_validator(mode="after")
    def _one_rule(self):
        rules = [
            self.share is not None,
            self.percent_of is not None,
            self.amount_eur is not None,
            self.remainder,
        ]
        if sum(rules) != 1:
            raise ValueError(
                f"Teilbudget {self.id}: genau eine Regel angeben (share, percent_of+percent, amount_eur oder remainder)"
            )
        if (self.percent_of is None) != (self.percent is None):
            raise ValueError(f"Teilbudget {self.id}: percent_of und percent gehören zusammen")
        return self

    @property
    def rule(self) -> str:
        if self.share is not None:
            return f"{self.share * 100:g} % des Gesamtbudgets"
        if self.percent_of is not None:
            return f"{self.percent:g} % von Teilbudget {self.percent_of}"
        if self.amount_eur is not None:
            return f"fester Betrag {fmt_eur(self.amount_eur)} EUR"
        return "Rest"


class Corridor(BaseModel):
    """Limits on each Sozialraum's budget (all amounts EUR).

    ``max_decrease_pct`` / ``max_increase_pct`` limit the change against
    ``reference_column`` (prior-year costs by default); ``floor_column``
    gives a minimum per area (e.g. the start budget: never below it);
    ``cap_column`` a maximum; ``floor_eur`` / ``cap_eur`` the same as constants.

    New or empty areas: a corridor relative to a reference of 0 € would pin
    the area at 0 € forever. An area whose reference is at most
    ``new_area_threshold_eur`` (0 by default: only areas without prior-year
    costs) is therefore *not* held by the change limits when ``new_areas`` is
    ``formula`` (default): it gets its formula amount, scaled like every
    unbound area; floors and caps still apply. ``held`` keeps the old
    behaviour (the area stays at its reference).
    """

    model_config = ConfigDict(extra="forbid")

    reference_column: str = "hze_cost_prev_eur"
    max_change_pct: float | None = Field(None, ge=0.0, le=100.0, description="±x %: sets both limits")
    max_decrease_pct: float | None = Field(None, ge=0.0, le=100.0)
    max_increase_pct: float | None = Field(None, ge=0.0)
    floor_column: str | None = None
    cap_column: str | None = None
    floor_eur: float | None = Field(None, ge=0.0)
    cap_eur: float | None = Field(None, ge=0.0)
    new_areas: Literal["formula", "held"] = "formula"
    new_area_threshold_eur: float = Field(0.0, ge=0.0)
    target_tolerance_pct: float = Field(1.0, gt=0.0, le=50.0, description="at target = within ± this % of it")

    @model_validator(mode="after")
    def _symmetric(self):
        if self.max_change_pct is not None:
            if self.max_decrease_pct is None:
                self.max_decrease_pct = self.max_change_pct
            if self.max_increase_pct is None:
                self.max_increase_pct = self.max_change_pct
        return self


def _decimal_out(v: Decimal):
    return int(v) if v == v.to_integral_value() else float(v)


class AllocationSpec(BaseModel):
    """The ``allocation:`` section: total (EUR), components, Teilbudgets, corridor, period."""

    model_config = ConfigDict(extra="forbid")

    # Decimal keeps "1234.56" exact for cent budgets; dumps as int/float for JSON manifests
    total_eur: Annotated[Decimal, PlainSerializer(_decimal_out, return_type=Union[int, float])] = Field(gt=0)
    unit: Literal["euro", "cent"] = "euro"
    components: list[Component] = Field(min_length=1)
    teilbudgets: list[Teilbudget] = Field(default_factory=list)
    corridor: Corridor | None = None
    period_years: int = Field(1, ge=1, le=3)
    indexation_pct: float = 0.0

    @model_validator(mode="after")
    def _check(self):
        _check_weights(self.components, "allocation.components")
        for tb in self.teilbudgets:
            if tb.components is not None:
                _check_weights(tb.components, f"allocation.teilbudgets[{tb.id}].components")
        _check_unique([c.name for c in self.components], "Komponentennamen")
        _check_unique([t.id for t in self.teilbudgets], "Teilbudget-IDs")
        if sum(t.remainder for t in self.teilbudgets) > 1:
            raise GeoplanError(
                "Höchstens ein Teilbudget darf den Rest erhalten (remainder: true).",
                location="allocation.teilbudgets",
                found=", ".join(t.id for t in self.teilbudgets if t.remainder),
                message_en="At most one Teilbudget may receive the remainder (remainder: true).",
            )
        return self


def _check_unique(names, what):
    seen, dup = set(), []
    for n in names:
        if n in seen:
            dup.append(n)
        seen.add(n)
    if dup:
        raise GeoplanError(f"{what} müssen eindeutig sein.", found=", ".join(dup),
                           message_en=f"{ {'Komponentennamen': 'Component names', 'Teilbudget-IDs': 'Teilbudget ids'}.get(what, what)} must be unique.")


def _check_weights(components, where):
    total = math.fsum(c.weight for c in components)
    if abs(total - 1.0) > WEIGHT_TOL:
        listing = ", ".join(f"{c.name}={c.weight:g}" for c in components)
        raise GeoplanError(
            f"Die Gewichte der Komponenten müssen sich zu 1 addieren, ihre Summe ist {total:.12g}.",
            location=where,
            expected="Summe der Gewichte = 1",
            found=listing,
            hint="Gewichte anpassen, z. B. als Anteile von 1 (0.5, 0.3, 0.2).",
            message_en=f"The weights of the components must add up to 1; their sum is {total:.12g}.",
            expected_en="sum of the weights = 1", hint_en="Adjust the weights, e.g. as shares of 1 (0.5, 0.3, 0.2).",
        )


def parse_spec(data: dict | AllocationSpec, *, file=None) -> AllocationSpec:
    """Validate a dict (parsed YAML) into an :class:`AllocationSpec`.

    pydantic's errors are turned into a :class:`GeoplanError` naming the field.
    """
    if isinstance(data, AllocationSpec):
        return data
    try:
        return AllocationSpec.model_validate(data)
    except GeoplanError as exc:
        if file and not exc.file:
            exc.file = str(file)
        raise
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = "allocation." + ".".join(str(p) for p in first["loc"])
        cause = first.get("ctx", {}).get("error")
        if isinstance(cause, GeoplanError):
            raise cause
        raise GeoplanError(
            "Ungültiger Abschnitt 'allocation' in der Konfiguration.",
            file=file,
            location=loc,
            found=str(first.get("input"))[:200],
            expected=first["msg"],
            hint="Feldnamen und Werte mit der Dokumentation der Budgetformel vergleichen.",
            message_en="Invalid section 'allocation' in the configuration.",
            hint_en="Compare field names and values with the documentation of the budget formula.",
        ) from None


# --------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------
@dataclass
class AllocationResult:
    """Result of :func:`allocate`.

    table : one row per Sozialraum: ``key``, ``eur_<component>`` (int),
        ``tb_<id>_eur`` per distributed Teilbudget (int), ``eur_korridor``
        (int, change made by the corridor), ``budget_eur`` (int), ``anteil``
        (share of the distributed total). Amounts are in ``unit`` (euro or
        cent) despite the ``_eur`` suffix.
    shares : ``key`` plus one column per component (each sums to 1).
    teilbudgets : id, label, rule, amount_eur, distributed.
    binding : key, bound ("Untergrenze"/"Obergrenze"/"Korridor"), side
        ("unten"/"oben"), lower_eur, upper_eur, formula_eur, budget_eur.
    per_year : key plus ``jahr_<y>_eur`` for every year of the period, and a
        row per year in ``year_totals`` (year, factor, total_eur).
    total_eur : the total of the spec (int, in ``unit``).
    distributed_eur : the part split over Sozialräume (int).
    retained_eur : the part that stays with the public body (int).
    """

    table: pd.DataFrame
    shares: pd.DataFrame
    teilbudgets: pd.DataFrame
    binding: pd.DataFrame
    per_year: pd.DataFrame
    year_totals: pd.DataFrame
    total_eur: int
    distributed_eur: int
    retained_eur: int
    unit: str = "euro"
    components: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    notes: list[QANote] = field(default_factory=list)
    spec: AllocationSpec | None = None
    key: str = "key"
    corridor_exempt: list[str] = field(default_factory=list)   # keys of new/empty areas the corridor does not hold


# --------------------------------------------------------------------------
# Rounding
# --------------------------------------------------------------------------
def hamilton(total: int, weights, order=None) -> np.ndarray:
    """Split the integer ``total`` proportional to ``weights`` (largest remainder).

    Each part gets the floor of its exact quota; the units left over go to the
    largest remainders. Ties are broken by ``order`` (an array of sort keys,
    smaller first; default: position). The result sums to ``total`` exactly
    and differs from every quota by less than one unit (quota rule).
    """
    total = int(total)
    w = np.asarray(weights, dtype=float)
    n = w.size
    if n == 0:
        if total:
            raise GeoplanError("Betrag kann nicht auf null Einheiten verteilt werden.", found=str(total),
                               message_en="An amount cannot be distributed over zero units.")
        return np.zeros(0, dtype=np.int64)
    if total < 0:
        raise GeoplanError("Negativer Betrag kann nicht verteilt werden.", found=str(total),
                           message_en="A negative amount cannot be distributed.")
    if np.any(~np.isfinite(w)) or np.any(w < 0):
        raise GeoplanError("Gewichte für die Rundung müssen endlich und ≥ 0 sein.",
                           message_en="Weights for the rounding must be finite and ≥ 0.")
    s = w.sum()
    if s <= 0:
        if total == 0:
            return np.zeros(n, dtype=np.int64)
        raise GeoplanError("Alle Gewichte sind null; der Betrag kann nicht verteilt werden.", found=str(total),
                           message_en="All weights are zero; the amount cannot be distributed.")
    quota = w / s * total
    base = np.floor(quota).astype(np.int64)
    # floating error can push a floor one too high when quotas are integral
    base = np.minimum(base, np.int64(total))
    left = total - int(base.sum())
    if left < 0:  # pragma: no cover - only through float error
        idx = np.argsort(quota - base)[: -left]
        base[idx] -= 1
        left = 0
    if left:
        rem = quota - base
        tie = np.arange(n) if order is None else np.asarray(order)
        idx = np.lexsort((tie, -rem))[:left]
        base[idx] += 1
    return base


def _key_order(keys: pd.Series) -> np.ndarray:
    """Rank of each key in ascending text order (the tie-break for rounding)."""
    return pd.Series(keys.astype(str).to_numpy()).rank(method="first").to_numpy()


# --------------------------------------------------------------------------
# Shares
# --------------------------------------------------------------------------
def _column(frame: pd.DataFrame, col: str, comp: str, *, allow_negative=False) -> np.ndarray:
    if col not in frame.columns:
        raise GeoplanError(
            f"Spalte '{col}' fehlt für die Komponente '{comp}'.",
            location=f"Komponente {comp}",
            expected=col,
            found=", ".join(map(str, frame.columns)),  # all: a model column comes after the indicators
            hint="Spalte im Sozialraum-Datensatz bereitstellen oder den Spaltennamen in der Konfiguration korrigieren.",
            message_en=f"Column '{col}' is missing for the component '{comp}'.",
            hint_en="Provide the column in the Sozialraum data or correct the column name in the configuration.",
        )
    values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        first = frame.index[np.flatnonzero(bad)[0]]
        raise GeoplanError(
            f"Spalte '{col}' enthält {int(bad.sum())} fehlende oder nicht-numerische Werte (Komponente '{comp}').",
            location=f"Zeile {first}, Spalte '{col}'",
            hint="Fehlende Werte ergänzen oder imputieren, bevor das Budget verteilt wird.",
            message_en=f"Column '{col}' holds {int(bad.sum())} missing or non-numeric values (component '{comp}').",
            hint_en="Fill in or impute the missing values before the budget is distributed.",
        )
    if not allow_negative and (values < 0).any():
        first = frame.index[np.flatnonzero(values < 0)[0]]
        raise GeoplanError(
            f"Spalte '{col}' enthält negative Werte; Anteile brauchen Werte ≥ 0 (Komponente '{comp}').",
            location=f"Zeile {first}, Spalte '{col}'",
            found=f"{values.min():g}",
            hint="Für z-standardisierte Indizes (need_index) die Modellkomponente oder Prozent-Indikatoren verwenden.",
            message_en=f"Column '{col}' holds negative values; shares need values ≥ 0 (component '{comp}').",
            hint_en="For z-standardised indices (need_index) use the model component or percentage indicators.",
        )
    return values


def _normalise(raw: np.ndarray, comp: str, what: str) -> np.ndarray:
    s = raw.sum()
    if not s > 0:
        raise GeoplanError(
            f"Komponente '{comp}': die Summe von {what} ist 0, Anteile sind nicht bestimmbar.",
            location=f"Komponente {comp}",
            hint="Komponente entfernen oder Daten prüfen.",
            message_en=f"Component '{comp}': the sum of {'the values' if what == 'der Werte' else what} is 0, shares "
            "cannot be determined.", hint_en="Remove the component or check the data.",
        )
    return raw / s


def component_raw(frame: pd.DataFrame, comp) -> np.ndarray:
    """Unnormalised non-negative weights of one component per Sozialraum."""
    n = len(frame)
    if comp.type == "fixed":
        return np.ones(n) if comp.column is None else _column(frame, comp.column, comp.name)
    if comp.type == "population":
        cols = comp.columns or [comp.column]
        return np.sum([_column(frame, c, comp.name) for c in cols], axis=0)
    if comp.type == "indicator":
        wsum = sum(comp.indicators.values())
        base = _column(frame, comp.base, comp.name) if comp.base else np.ones(n)
        out = np.zeros(n)
        for col, w in comp.indicators.items():
            out += (w / wsum) * _normalise(base * _column(frame, col, comp.name), comp.name, f"'{col}'")
        return out
    if comp.type == "model":
        return _column(frame, comp.column, comp.name)
    if comp.type == "prior_year":
        cols = [_column(frame, c, comp.name) for c in comp.columns]
        return np.mean(cols, axis=0) if comp.combine == "mean" else np.sum(cols, axis=0)
    if comp.type == "fachleistungsstunden":
        hours = _column(frame, comp.column, comp.name) * (comp.hours_per_case or 1.0)
        rate = _column(frame, comp.rate_column, comp.name) if comp.rate_column else comp.rate_eur_per_hour
        return hours * rate
    raise AssertionError(comp.type)  # pragma: no cover


# --------------------------------------------------------------------------
# Teilbudgets
# --------------------------------------------------------------------------
def resolve_teilbudgets(spec: AllocationSpec, total_units: int) -> pd.DataFrame:
    """Amounts of the Teilbudgets (int, in the spec's unit), summing to the total.

    The rules form a linear system: ``share`` and ``amount_eur`` are constants,
    ``percent_of`` refers to another Teilbudget, ``remainder`` is the total
    minus all others. A chain of ``percent_of`` references that returns to its
    start is circular and rejected. Without a remainder the rules must add up
    to the total.
    """
    tbs = spec.teilbudgets
    ids = [t.id for t in tbs]
    index = {t: i for i, t in enumerate(ids)}
    scale = _UNIT_SCALE[spec.unit]
    for t in tbs:
        if t.percent_of is not None and t.percent_of not in index:
            raise GeoplanError(
                f"Teilbudget {t.id} verweist auf das unbekannte Teilbudget '{t.percent_of}'.",
                location=f"allocation.teilbudgets[{t.id}].percent_of",
                expected=", ".join(ids),
                found=t.percent_of, message_en=f"Teilbudget {t.id} refers to the unknown Teilbudget '{t.percent_of}'.",
            )
    for t in tbs:
        chain, cur = [t.id], t
        while cur.percent_of is not None:
            nxt = cur.percent_of
            if nxt in chain:
                chain.append(nxt)
                raise GeoplanError(
                    "Zirkelbezug zwischen Teilbudgets: " + " → ".join(chain),
                    location=f"allocation.teilbudgets[{t.id}].percent_of",
                    hint="Ein Teilbudget darf sich nicht (über andere) auf sich selbst beziehen.",
                    message_en="Circular reference between Teilbudgets: " + " → ".join(chain),
                    hint_en="A Teilbudget must not refer to itself (through others).",
                )
            chain.append(nxt)
            cur = tbs[index[nxt]]
    n = len(tbs)
    m = np.eye(n)
    c = np.zeros(n)
    total = float(total_units)
    for i, t in enumerate(tbs):
        if t.share is not None:
            c[i] = t.share * total
        elif t.amount_eur is not None:
            c[i] = t.amount_eur * scale
        elif t.percent_of is not None:
            m[i, index[t.percent_of]] -= t.percent / 100.0
        else:
            m[i, :] = 1.0
            c[i] = total
    try:
        x = np.linalg.solve(m, c)
    except np.linalg.LinAlgError:
        raise GeoplanError(
            "Die Teilbudget-Regeln sind nicht eindeutig lösbar.",
            location="allocation.teilbudgets",
            hint="Regeln prüfen (Rest-Teilbudget und Prozentbezüge).",
            message_en="The Teilbudget rules have no unique solution.",
            hint_en="Check the rules (remainder Teilbudget and percentage references).",
        ) from None
    if (x < -1e-6 * max(total, 1)).any():
        neg = [f"{ids[i]}={fmt_eur(x[i] / scale, 2)} EUR" for i in np.flatnonzero(x < 0)]
        raise GeoplanError(
            "Die Teilbudgets übersteigen das Gesamtbudget; ein Teilbudget würde negativ.",
            location="allocation.teilbudgets",
            found=", ".join(neg),
            expected=f"Summe ≤ {fmt_eur(total / scale, 2)} EUR",
            message_en="The Teilbudgets exceed the total budget; a Teilbudget would be negative.",
            expected_en=f"sum ≤ {fmt.euro(total / scale, 2, lang='en')}",
        )
    if not any(t.remainder for t in tbs):
        s = x.sum()
        if abs(s - total) > 0.5 + 1e-9 * total:
            raise GeoplanError(
                f"Die Teilbudgets ergeben {fmt_eur(s / scale, 2)} EUR, das Gesamtbudget ist {fmt_eur(total / scale, 2)} EUR.",
                location="allocation.teilbudgets",
                expected="Summe der Teilbudgets = total_eur",
                found=", ".join(f"{ids[i]}={fmt_eur(x[i] / scale, 2)}" for i in range(n)),
                hint="Ein Teilbudget mit 'remainder: true' anlegen oder die Anteile anpassen.",
                message_en=f"The Teilbudgets add up to {fmt.euro(s / scale, 2, lang='en')}, the total budget is "
                f"{fmt.euro(total / scale, 2, lang='en')}.",
                expected_en="sum of the Teilbudgets = total_eur",
                hint_en="Create a Teilbudget with 'remainder: true' or adjust the shares.",
            )
    amounts = hamilton(total_units, np.clip(x, 0, None))
    return pd.DataFrame(
        {
            "id": ids,
            "label": [t.label or f"Teilbudget {t.id}" for t in tbs],
            "rule": [t.rule for t in tbs],
            "amount_eur": amounts.astype(np.int64),
            "distributed": [t.distributed for t in tbs],
        }
    )


# --------------------------------------------------------------------------
# Corridor
# --------------------------------------------------------------------------
def corridor_bounds(frame: pd.DataFrame, corridor: Corridor, scale: int):
    """Lower and upper bound per Sozialraum (whole units) and which rule sets each.

    Returns ``(lo, hi, lo_source, hi_source)``; ``hi`` is ``inf`` where no
    upper bound applies; sources are "Korridor", "Untergrenze", "Obergrenze".
    """
    n = len(frame)
    lo = np.zeros(n)
    hi = np.full(n, np.inf)
    lo_src = np.array([""] * n, dtype=object)
    hi_src = np.array([""] * n, dtype=object)

    def raise_lo(values, name):
        nonlocal lo
        m = values > lo
        lo = np.where(m, values, lo)
        lo_src[m] = name

    def lower_hi(values, name):
        nonlocal hi
        m = values < hi
        hi = np.where(m, values, hi)
        hi_src[m] = name

    if corridor.max_decrease_pct is not None or corridor.max_increase_pct is not None:
        ref = _column(frame, corridor.reference_column, "Korridor") * scale
        held = ~corridor_exempt(frame, corridor, scale)
        if corridor.max_decrease_pct is not None:
            raise_lo(np.where(held, ref * (1 - corridor.max_decrease_pct / 100.0), 0.0), "Korridor")
        if corridor.max_increase_pct is not None:
            lower_hi(np.where(held, ref * (1 + corridor.max_increase_pct / 100.0), np.inf), "Korridor")
    if corridor.floor_column:
        raise_lo(_column(frame, corridor.floor_column, "Korridor") * scale, "Untergrenze")
    if corridor.floor_eur is not None:
        raise_lo(np.full(n, corridor.floor_eur * scale), "Untergrenze")
    if corridor.cap_column:
        lower_hi(_column(frame, corridor.cap_column, "Korridor") * scale, "Obergrenze")
    if corridor.cap_eur is not None:
        lower_hi(np.full(n, corridor.cap_eur * scale), "Obergrenze")
    # integer bounds: a Sozialraum gets whole units, so round inward
    lo_i = np.ceil(lo - 1e-9)
    hi_i = np.floor(hi + 1e-9)
    return lo_i, hi_i, lo_src, hi_src


def corridor_exempt(frame: pd.DataFrame, corridor: Corridor, scale: int = 1) -> np.ndarray:
    """True for new or empty areas (reference ≤ ``new_area_threshold_eur``) that the change limits do not hold."""
    if corridor.new_areas == "held" or (corridor.max_decrease_pct is None and corridor.max_increase_pct is None):
        return np.zeros(len(frame), dtype=bool)
    ref = _column(frame, corridor.reference_column, "Korridor") * scale
    return ref <= corridor.new_area_threshold_eur * scale + 1e-9


def corridor_rule_text(corridor: Corridor, lang: str = "de") -> str:
    """The rule for new or empty areas in one sentence (for the report)."""
    t = corridor.new_area_threshold_eur
    if lang == "de":
        who = ("Sozialräume ohne Kosten im Vorjahr" if t <= 0 else
               f"Sozialräume mit Vorjahreskosten bis {fmt_eur(t)} €")
        if corridor.new_areas == "held":
            return f"{who} bleiben beim Vorjahreswert (Regel 'held')."
        return f"{who} werden nicht vom Korridor gehalten, sondern erhalten ihren Formelwert (Regel 'formula')."
    who = "Sozialräume without prior-year costs" if t <= 0 else f"Sozialräume with prior-year costs up to €{t:,.0f}"
    if corridor.new_areas == "held":
        return f"{who} stay at their prior-year value (rule 'held')."
    return f"{who} are not held by the corridor but get their formula amount (rule 'formula')."


def solve_corridor(formula: np.ndarray, lo: np.ndarray, hi: np.ndarray, total: int, order=None) -> np.ndarray:
    """Integer budgets within [lo, hi] summing to ``total`` (see :func:`_solve_corridor`)."""
    return _solve_corridor(formula, lo, hi, total, order)[0]


def _solve_corridor(formula, lo, hi, total: int, order=None) -> tuple[np.ndarray, np.ndarray]:
    """Integer budgets within [lo, hi] summing to ``total``, as close to the formula as the bounds allow.

    Redistribution until stable: areas whose formula amount breaks a bound are
    set to the bound and the rest of the money is redistributed among the
    unbound areas in proportion to their formula amounts; repeated until no
    area breaks a bound. The fixed point is ``b_i = clip(λ·f_i, lo_i, hi_i)``
    with one factor λ for all unbound areas; λ is found by bisection (the sum is
    monotone in λ). The continuous solution is then rounded to whole units by
    largest remainder within the bounds, so the total stays exact.

    Returns the integer budgets and the unclipped ``λ·f`` (same scale as the
    bounds), which tells which areas a bound holds: ``λ·f < lo`` or ``λ·f > hi``.
    """
    f = np.asarray(formula, dtype=float)
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)
    total = int(total)
    bad = np.flatnonzero(lo > hi)
    if bad.size:
        raise GeoplanError(
            f"Korridor widersprüchlich: bei {bad.size} Sozialräumen liegt die Untergrenze über der Obergrenze.",
            location=f"Zeile {int(bad[0])}",
            found=f"Untergrenze {fmt_eur(lo[bad[0]])} > Obergrenze {fmt_eur(hi[bad[0]])}",
            message_en=f"Contradictory corridor: for {bad.size} Sozialräume the lower bound lies above the upper bound.",
            found_en=f"lower bound {fmt.euro(lo[bad[0]], lang='en')} > upper bound {fmt.euro(hi[bad[0]], lang='en')}",
        )
    slo, shi = lo.sum(), hi.sum()
    if slo > total:
        raise GeoplanError(
            f"Korridor nicht erfüllbar: die Untergrenzen summieren sich auf {fmt_eur(slo)}, "
            f"das sind {fmt_eur(slo - total)} mehr als das zu verteilende Budget ({fmt_eur(total)}).",
            location="allocation.corridor",
            hint="Budget erhöhen oder die Untergrenzen (max_decrease_pct, floor_*) lockern.",
            message_en=f"The corridor cannot be met: the lower bounds add up to {fmt.euro(slo, lang='en')}, "
            f"{fmt.euro(slo - total, lang='en')} more than the budget to distribute ({fmt.euro(total, lang='en')}).",
            hint_en="Raise the budget or loosen the lower bounds (max_decrease_pct, floor_*).",
        )
    if shi < total:
        raise GeoplanError(
            f"Korridor nicht erfüllbar: die Obergrenzen summieren sich auf {fmt_eur(shi)}, "
            f"das sind {fmt_eur(total - shi)} weniger als das zu verteilende Budget ({fmt_eur(total)}).",
            location="allocation.corridor",
            hint="Obergrenzen (max_increase_pct, cap_*) lockern.",
            message_en=f"The corridor cannot be met: the upper bounds add up to {fmt.euro(shi, lang='en')}, "
            f"{fmt.euro(total - shi, lang='en')} less than the budget to distribute ({fmt.euro(total, lang='en')}).",
            hint_en="Loosen the upper bounds (max_increase_pct, cap_*).",
        )

    def g(lam):
        return np.clip(lam * f, lo, hi).sum()

    if not f.max(initial=0.0) > 0:
        f = np.ones_like(f)
    # scale so that λ stays in a well-conditioned range (denormal formulas)
    f = f / f.max() * max(total, 1)
    f[f < 1e-300] = 0.0
    a, b = 0.0, 1.0
    while g(b) < total and b < 1e300:
        b *= 2.0
    if g(b) < total:
        # formula zero where room is left: move the last units to areas with zero formula
        f = np.where(f > 0, f, f[f > 0].min() if (f > 0).any() else 1.0)
        b = 1.0
        while g(b) < total:
            b *= 2.0
    for _ in range(200):
        mid = 0.5 * (a + b)
        if g(mid) < total:
            a = mid
        else:
            b = mid
    raw = b * f
    x = np.clip(raw, lo, hi)
    # integer rounding inside the bounds
    base = np.clip(np.floor(x + 1e-9), lo, hi).astype(np.int64)
    left = total - int(base.sum())
    tie = np.arange(f.size) if order is None else np.asarray(order)
    # only areas with room inside their bounds take or give the last units;
    # repeated passes because one unit per area may not be enough
    tie = np.asarray(tie)
    while left != 0:
        cand = np.flatnonzero(base < hi) if left > 0 else np.flatnonzero(base > lo)
        if cand.size == 0:  # pragma: no cover - excluded by the feasibility checks above
            raise GeoplanError("Korridor: Rundung innerhalb der Grenzen nicht möglich.",
                               message_en="Corridor: rounding within the bounds is not possible.")
        rem = (x - base)[cand]
        pick = cand[np.lexsort((tie[cand], -rem if left > 0 else rem))][: abs(left)]
        step = 1 if left > 0 else -1
        base[pick] += step
        left -= step * pick.size
    return base, raw


# --------------------------------------------------------------------------
# Main entry
# --------------------------------------------------------------------------
def _split(amount: int, components, shares: dict[str, np.ndarray], order) -> dict[str, np.ndarray]:
    totals = hamilton(amount, [c.weight for c in components])
    return {c.name: hamilton(int(t), shares[c.name], order) for c, t in zip(components, totals)}


def allocate(frame: pd.DataFrame, spec: AllocationSpec | dict, *, key: str = "key") -> AllocationResult:
    """Split ``spec.total_eur`` over the Sozialräume of ``frame``.

    Parameters
    ----------
    frame : DataFrame, one row per Sozialraum with the columns the components
        name (see docs/architecture.md: pop_u21, expected_cases,
        expected_cost_eur, hze_cost_prev_eur, …). Not modified.
    spec : AllocationSpec or its dict form.
    key : name of the Sozialraum key column (text).

    Returns
    -------
    AllocationResult (see there). All money is integer in ``spec.unit``.
    """
    spec = parse_spec(spec)
    if key not in frame.columns:
        raise GeoplanError(
            f"Schlüsselspalte '{key}' fehlt im Sozialraum-Datensatz.",
            expected=key,
            found=", ".join(map(str, frame.columns)),  # all: a model column comes after the indicators
            message_en=f"Key column '{key}' is missing in the Sozialraum data.",
        )
    if len(frame) == 0:
        raise GeoplanError("Keine Sozialräume: der Datensatz ist leer.",
                           message_en="No Sozialräume: the data set is empty.")
    dup = frame[key].astype(str).duplicated()
    if dup.any():
        raise GeoplanError(
            "Sozialraum-Schlüssel sind nicht eindeutig.",
            location=f"Spalte '{key}'",
            found=", ".join(frame.loc[dup.to_numpy(), key].astype(str).unique()[:10]),
            message_en="Sozialraum keys are not unique.",
        )
    frame = frame.reset_index(drop=True)
    notes: list[QANote] = []
    scale = _UNIT_SCALE[spec.unit]
    total_units = int((spec.total_eur * scale).to_integral_value(rounding="ROUND_HALF_EVEN"))
    if (spec.total_eur * scale) != total_units:
        notes.append(
            QANote(
                stage="allocation",
                level="info",
                message=f"Gesamtbudget {spec.total_eur} auf ganze Einheiten ({spec.unit}) gerundet: {total_units}.",
                message_en=f"Total budget {spec.total_eur} rounded to whole units ({spec.unit}): {total_units}.",
            )
        )
    order = _key_order(frame[key])
    keys = frame[key].to_numpy()

    # every component used anywhere, shares computed once
    all_components = {c.name: c for c in spec.components}
    for tb in spec.teilbudgets:
        for c in tb.components or []:
            if c.name in all_components and all_components[c.name] != c:
                raise GeoplanError(
                    f"Komponente '{c.name}' ist in Teilbudget {tb.id} anders definiert als anderswo.",
                    location=f"allocation.teilbudgets[{tb.id}].components",
                    hint="Jede Komponente braucht einen eindeutigen Namen.",
                    message_en=f"Component '{c.name}' is defined differently in Teilbudget {tb.id} than elsewhere.",
                    hint_en="Every component needs a unique name.",
                )
            all_components[c.name] = c
    shares = {name: _normalise(component_raw(frame, c), name, "der Werte") for name, c in all_components.items()}

    amounts = {name: np.zeros(len(frame), dtype=np.int64) for name in all_components}
    tb_cols: dict[str, np.ndarray] = {}
    if spec.teilbudgets:
        tb_table = resolve_teilbudgets(spec, total_units)
        for tb, amount in zip(spec.teilbudgets, tb_table["amount_eur"]):
            if not tb.distributed:
                continue
            parts = _split(int(amount), tb.components or spec.components, shares, order)
            for name, v in parts.items():
                amounts[name] += v
            tb_cols[f"tb_{tb.id}_eur"] = np.sum(list(parts.values()), axis=0).astype(np.int64)
        retained = int(tb_table.loc[~tb_table["distributed"], "amount_eur"].sum())
    else:
        tb_table = pd.DataFrame(
            {
                "id": ["gesamt"],
                "label": ["Gesamtbudget"],
                "rule": ["100 % des Gesamtbudgets"],
                "amount_eur": [total_units],
                "distributed": [True],
            }
        )
        for name, v in _split(total_units, spec.components, shares, order).items():
            amounts[name] += v
        retained = 0
    distributed = total_units - retained
    formula = np.sum(list(amounts.values()), axis=0).astype(np.int64)

    binding = pd.DataFrame(
        {key: pd.Series(dtype=object), "bound": pd.Series(dtype=object), "side": pd.Series(dtype=object),
         "lower_eur": pd.Series(dtype=float), "upper_eur": pd.Series(dtype=float),
         "formula_eur": pd.Series(dtype=np.int64), "budget_eur": pd.Series(dtype=np.int64)}
    )
    budget = formula
    if spec.corridor is not None:
        lo, hi, lo_src, hi_src = corridor_bounds(frame, spec.corridor, scale)
        budget, raw = _solve_corridor(formula, lo, hi, distributed, order)
        # bound: the common redistribution factor would have moved the area past the bound
        tol = 1e-9 * max(distributed, 1)
        at_lo = raw < lo - tol
        at_hi = (raw > hi + tol) & ~at_lo
        rows = np.flatnonzero(at_lo | at_hi)
        exempt = corridor_exempt(frame, spec.corridor, scale)
        if exempt.any():
            notes.append(
                QANote(
                    stage="allocation",
                    level="info",
                    message=f"{int(exempt.sum())} Sozialräume ohne nennenswerte Vorjahreskosten: "
                    + corridor_rule_text(spec.corridor),
                    message_en=f"{int(exempt.sum())} Sozialräume without notable prior-year costs: "
                    + corridor_rule_text(spec.corridor, "en"),
                    details={"keys": [str(k) for k in keys[exempt]]},
                )
            )
        binding = pd.DataFrame(
            {
                key: keys[rows],
                "bound": [lo_src[i] if at_lo[i] else hi_src[i] for i in rows],
                "side": ["unten" if at_lo[i] else "oben" for i in rows],
                "lower_eur": lo[rows],
                "upper_eur": hi[rows],
                "formula_eur": formula[rows],
                "budget_eur": budget[rows],
            }
        )
        if len(binding):
            notes.append(
                QANote(
                    stage="allocation",
                    level="info",
                    message=f"Korridor greift bei {len(binding)} Sozialräumen; der Rest wurde unter den übrigen umverteilt.",
                    message_en=f"The corridor holds {len(binding)} Sozialräume; the rest was redistributed among "
                    "the others.",
                    details={"keys": [str(k) for k in binding[key]]},
                )
            )

    table = pd.DataFrame({key: keys})
    if "name" in frame.columns:
        table["name"] = frame["name"].to_numpy()
    for name in all_components:
        table[f"eur_{name}"] = amounts[name]
    for col, v in tb_cols.items():
        table[col] = v
    table["eur_korridor"] = (budget - formula).astype(np.int64)
    table["budget_eur"] = budget.astype(np.int64)
    table["anteil"] = budget / distributed if distributed else 0.0

    shares_df = pd.DataFrame({key: keys, **shares})

    # budget period: year y gets total × (1 + p)^(y-1), split like year 1
    years, factors, ytotals = [], [], []
    per_year = pd.DataFrame({key: keys})
    for y in range(1, spec.period_years + 1):
        factor = (1.0 + spec.indexation_pct / 100.0) ** (y - 1)
        ytotal = int(round(distributed * factor))
        weights = budget if budget.sum() > 0 else np.ones(len(budget))
        per_year[f"jahr_{y}_eur"] = hamilton(ytotal, weights, order) if y > 1 else budget
        years.append(y)
        factors.append(factor)
        ytotals.append(ytotal)
    year_totals = pd.DataFrame({"year": years, "factor": factors, "total_eur": ytotals})

    labels = {name: (c.label or name) for name, c in all_components.items()}
    return AllocationResult(
        table=table,
        shares=shares_df,
        teilbudgets=tb_table,
        binding=binding,
        per_year=per_year,
        year_totals=year_totals,
        total_eur=total_units,
        distributed_eur=distributed,
        retained_eur=retained,
        unit=spec.unit,
        components=list(all_components),
        labels=labels,
        notes=notes,
        spec=spec,
        key=key,
        corridor_exempt=[str(k) for k in keys[exempt]] if spec.corridor is not None else [],
    )
