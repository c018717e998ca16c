"""Settlement rules at the end of a budget period (all money in whole EUR).

The rules come from the municipal models in the source document (ISSAB
expert report, chapter 3; rules of chapter 6.2/6.3, Verfügungsfonds chapter 5):

* surplus sharing between provider(s) and public body by percentage
  (Frankfurt (Oder) 25 % / 75 %, Siegen 40 %, Hannover half of the remainder of
  Teilbudget B) and carry-over of the kept surplus into the next period;
* overspend: re-financing clauses (by change of social indicators: Hannover,
  Siegen; by detailed case costs), otherwise the budget works as a cap
  ("Deckelung") and the overspend is reported as uncovered;
* conditional payout (Stuttgart: 95 % in instalments, 1 % volunteers, 3 %
  reports, 1 % year-end accounts, bonus up to 1 %) with an instalment schedule;
* dynamic coupling (Siegen: savings in A added to B, B never below its start
  value), Celle's first-year refund from C, Nordfriesland's move of old cases
  from A to B;
* provider models for one Sozialraum (single provider, Trägerverbund,
  Gewährleistungsträger with sub-contractors);
* Verfügungsfonds (fixed amount per quarter, or a pot split by a rule;
  DM amounts converted at the fixed rate 1 EUR = 1.95583 DM).

Every function is pure and returns integer euros that add up exactly (largest
remainder rounding, :func:`geoplan.stages.allocate.hamilton`), plus a German table
for the report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from geoplan.stages.allocate import fmt_eur, hamilton
from geoplan import fmt
from geoplan.errors import GeoplanError, QANote

__all__ = [
    "DM_PER_EUR",
    "SettlementSpec",
    "parse_settlement",
    "describe_settlement",
    "base_total",
    "share_surplus",
    "settle_overspend",
    "conditional_payout",
    "dynamic_coupling",
    "first_year_refund",
    "transfer_old_cases",
    "provider_split",
    "verfuegungsfonds",
    "dm_to_eur",
    "settle_allocation",
    "SettlementResult",
    "SettlementView",
    "settlement_view",
]

#: irrevocable conversion rate fixed by the Council of the EU on 31.12.1998
DM_PER_EUR = 1.95583


#: the names of amounts in the settlement's messages, in English
_WHAT_EN = {"Budget": "Budget", "Ist-Ausgaben": "Actual spending", "Trägeranteil": "Provider share",
            "Budget der nächsten Periode": "Budget of the next period", "Gesamtbudget": "Total budget",
            "Startbudget B": "Starting budget B", "Teilbudget C": "Teilbudget C", "Budget A": "Budget A",
            "Budget B": "Budget B", "Betrag": "Amount", "Ist-Kosten": "Actual costs",
            "Einzelfallkosten": "Single-case costs"}


def _int(x, what: str) -> int:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise GeoplanError(f"{what} muss eine Zahl sein.", found=repr(x),
                           message_en=f"{_WHAT_EN.get(what, what)} must be a number.") from None
    if not math.isfinite(v):
        raise GeoplanError(f"{what} muss endlich sein.", found=repr(x),
                           message_en=f"{_WHAT_EN.get(what, what)} must be finite.")
    return int(round(v))


def _pct(p, what: str) -> float:
    p = float(p)
    if not 0.0 <= p <= 100.0:
        raise GeoplanError(f"{what} muss zwischen 0 und 100 % liegen.", found=f"{p:g} %",
                           message_en=f"{_WHAT_EN.get(what, what)} must lie between 0 and 100%.")
    return p


def _split2(amount: int, pct: float) -> tuple[int, int]:
    """Split ``amount`` into (pct %, rest) exactly (largest remainder)."""
    a, b = hamilton(amount, [pct, 100.0 - pct]) if amount > 0 else (0, 0)
    return int(a), int(b)


# --------------------------------------------------------------------------
# The ``settlement:`` section of a preset / config
# --------------------------------------------------------------------------
class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SurplusRule(_M):
    """Share of a surplus kept by the provider(s); the rest goes back to the public body."""

    provider_pct: float = Field(ge=0, le=100)
    teilbudget: str | None = None
    carry_over: bool = True
    use: str = ""


class OverspendRule(_M):
    """Re-financing clause on overspend; ``none`` means the budget is a cap."""

    refinancing: Literal["indicator", "case_costs", "none"] = "none"
    indicators: list[str] = Field(default_factory=list)
    threshold_pct: float = Field(0.0, ge=0)
    not_if_principles_broken: bool = False


class Condition(_M):
    label: str
    pct: float = Field(ge=0, le=100)


class PayoutRule(_M):
    instalments: int = Field(12, ge=1, le=366)
    unconditional_pct: float = Field(95.0, ge=0, le=100)
    conditions: list[Condition] = Field(default_factory=list)
    bonus_max_pct: float = Field(0.0, ge=0, le=100)

    @model_validator(mode="after")
    def _sum(self):
        s = self.unconditional_pct + sum(c.pct for c in self.conditions)
        if abs(s - 100.0) > 1e-9:
            raise ValueError(f"Auszahlung: unbedingter Anteil und Bedingungen müssen 100 % ergeben, gefunden {s:g} %")
        return self


class CouplingRule(_M):
    source: str = "A"
    target: str = "B"
    floor_at_start: bool = True


class RefundRule(_M):
    from_teilbudget: str = "C"
    months: int = Field(12, ge=1, le=36)


class TransferRule(_M):
    from_teilbudget: str = "A"
    to_teilbudget: str = "B"
    requires_review: bool = True


class ProviderMember(_M):
    name: str
    share: float | None = Field(None, ge=0)
    cases: float | None = Field(None, ge=0)
    role: str | None = None


class ProviderRule(_M):
    model: Literal["single", "verbund", "gewaehrleistung"]
    basis: Literal["agreed", "past_cases"] = "agreed"
    members: list[ProviderMember] = Field(default_factory=list)


class FondsRule(_M):
    mode: Literal["per_quarter", "pot"]
    amount_eur: float | None = Field(None, gt=0)
    amount_dm: float | None = Field(None, gt=0)
    areas: int | None = Field(None, ge=1)
    quarters: int = Field(4, ge=1)
    years: int = Field(1, ge=1)
    rule: Literal["equal", "column"] = "equal"
    column: str | None = None

    @model_validator(mode="after")
    def _amount(self):
        if (self.amount_eur is None) == (self.amount_dm is None):
            raise ValueError("Verfügungsfonds: genau eines von amount_eur oder amount_dm angeben")
        return self


class ActualCosts(_M):
    """Settlement input: actual costs at period end, one row per Sozialraum (CSV/XLSX)."""

    path: str
    key: str
    column: str


class SettlementSpec(_M):
    """The ``settlement:`` section: which end-of-period rules apply (``actual_costs``: optional input table)."""

    actual_costs: ActualCosts | None = None

    surplus: SurplusRule | None = None
    overspend: OverspendRule | None = None
    payout: PayoutRule | None = None
    coupling: CouplingRule | None = None
    refund: RefundRule | None = None
    transfer: TransferRule | None = None
    providers: ProviderRule | None = None
    verfuegungsfonds: FondsRule | None = None
    notes: list[str] = Field(default_factory=list)


def parse_settlement(data: dict | SettlementSpec | None, *, file=None) -> SettlementSpec:
    """Validate the ``settlement:`` section; GeoplanError naming the field."""
    if isinstance(data, SettlementSpec):
        return data
    try:
        return SettlementSpec.model_validate(data or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise GeoplanError(
            "Ungültiger Abschnitt 'settlement' (Abrechnungsregeln).",
            file=file,
            location="settlement." + ".".join(str(p) for p in first["loc"]),
            expected=first["msg"],
            found=str(first.get("input"))[:200], message_en="Invalid section 'settlement' (settlement rules).",
        ) from None


def describe_settlement(spec: SettlementSpec | dict, lang: str = "de") -> pd.DataFrame:
    """The rules in German (or English), one row each (columns ``regel``, ``beschreibung``)."""
    spec = parse_settlement(spec)
    rows = []
    if spec.surplus:
        s = spec.surplus
        tb = f" aus Teilbudget {s.teilbudget}" if s.teilbudget else ""
        text = f"{s.provider_pct:g} % der Einsparung{tb} verbleiben beim Träger, {100 - s.provider_pct:g} % beim öffentlichen Träger"
        if s.carry_over:
            text += "; der Trägeranteil wird in die nächste Periode übertragen"
        if s.use:
            text += f" (Verwendung: {s.use})"
        rows.append(("Überschuss", text))
    if spec.overspend:
        o = spec.overspend
        text = {
            "indicator": "Nachfinanzierung bei Veränderung der Sozialindikatoren"
            + (f" ({', '.join(o.indicators)})" if o.indicators else "")
            + (f" ab {o.threshold_pct:g} %" if o.threshold_pct else ""),
            "case_costs": "Nachfinanzierung nach detaillierter Erhebung der Einzelfallkosten",
            "none": "keine Nachfinanzierung: das Budget wirkt als Deckel",
        }[o.refinancing]
        if o.not_if_principles_broken:
            text += "; keine Erhöhung, wenn fachliche Prinzipien nicht eingehalten wurden"
        rows.append(("Überschreitung", text))
    if spec.payout:
        p = spec.payout
        cond = ", ".join(f"{c.pct:g} % {c.label}" for c in p.conditions)
        text = f"{p.unconditional_pct:g} % in {p.instalments} Raten"
        if cond:
            text += f"; bedingt: {cond}"
        if p.bonus_max_pct:
            text += f"; Leistungsbonus bis {p.bonus_max_pct:g} %"
        rows.append(("Auszahlung", text))
    if spec.coupling:
        c = spec.coupling
        text = f"Einsparungen in Teilbudget {c.source} erhöhen Teilbudget {c.target}"
        if c.floor_at_start:
            text += f"; {c.target} nie unter dem Startbudget"
        rows.append(("Kopplung", text))
    if spec.refund:
        rows.append(
            (
                "Erstattung",
                f"bei Verselbständigung aus stationärer Hilfe: Erstattung von {spec.refund.months} Monaten "
                f"aus Teilbudget {spec.refund.from_teilbudget}",
            )
        )
    if spec.transfer:
        rows.append(
            (
                "Umbuchung",
                f"Altfälle wechseln nach Überprüfung von Teilbudget {spec.transfer.from_teilbudget} "
                f"nach {spec.transfer.to_teilbudget}",
            )
        )
    if spec.providers:
        pr = spec.providers
        name = {"single": "ein Träger", "verbund": "Trägerverbund", "gewaehrleistung": "Gewährleistungsträger mit Subunternehmern"}[pr.model]
        basis = {"agreed": "vereinbarten Anteilen", "past_cases": "bisherigem Fallvolumen"}[pr.basis]
        rows.append(("Träger", f"{name}; Aufteilung nach {basis}"))
    if spec.verfuegungsfonds:
        f = spec.verfuegungsfonds
        amount = f"{fmt_eur(f.amount_eur)} EUR" if f.amount_eur else f"{fmt_eur(f.amount_dm)} DM"
        text = f"{amount} je Quartal und Gebiet" if f.mode == "per_quarter" else f"Topf {amount} über {f.years} Jahr(e)"
        rows.append(("Verfügungsfonds", text))
    for n in spec.notes:
        rows.append(("Hinweis", n))
    if lang == "en":
        rows = [(r, _describe_en(spec, r, text)) for r, text in rows]
    return pd.DataFrame(rows, columns=["regel", "beschreibung"])


def _describe_en(spec: SettlementSpec, rule: str, german: str) -> str:
    """English text of one rule (user-written labels, uses and notes stay as written)."""
    if rule == "Überschuss":
        s = spec.surplus
        tb = f" of Teilbudget {s.teilbudget}" if s.teilbudget else ""
        text = f"{s.provider_pct:g} % of the surplus{tb} stays with the provider, {100 - s.provider_pct:g} % with the public body"
        if s.carry_over:
            text += "; the provider's share is carried into the next period"
        return text + (f" (use: {s.use})" if s.use else "")
    if rule == "Überschreitung":
        o = spec.overspend
        text = {"indicator": "re-financing when the social indicators change"
                + (f" ({', '.join(o.indicators)})" if o.indicators else "")
                + (f" from {o.threshold_pct:g} %" if o.threshold_pct else ""),
                "case_costs": "re-financing after a detailed check of the individual case costs",
                "none": "no re-financing: the budget is a cap"}[o.refinancing]
        return text + ("; no increase if professional principles were broken" if o.not_if_principles_broken else "")
    if rule == "Auszahlung":
        p = spec.payout
        text = f"{p.unconditional_pct:g} % in {p.instalments} instalments"
        if p.conditions:
            text += "; conditional: " + ", ".join(f"{c.pct:g} % {c.label}" for c in p.conditions)
        return text + (f"; performance bonus up to {p.bonus_max_pct:g} %" if p.bonus_max_pct else "")
    if rule == "Kopplung":
        c = spec.coupling
        return f"savings in Teilbudget {c.source} raise Teilbudget {c.target}" + (
            f"; {c.target} never below its start budget" if c.floor_at_start else "")
    if rule == "Erstattung":
        return (f"when a young person leaves residential care: {spec.refund.months} months refunded from Teilbudget "
                f"{spec.refund.from_teilbudget}")
    if rule == "Umbuchung":
        return (f"old cases move after review from Teilbudget {spec.transfer.from_teilbudget} to "
                f"{spec.transfer.to_teilbudget}")
    if rule == "Träger":
        pr = spec.providers
        name = {"single": "one provider", "verbund": "provider network",
                "gewaehrleistung": "lead provider with sub-contractors"}[pr.model]
        return f"{name}; split by " + {"agreed": "agreed shares", "past_cases": "past case volume"}[pr.basis]
    if rule == "Verfügungsfonds":
        f = spec.verfuegungsfonds
        amount = f"EUR {f.amount_eur:,.0f}" if f.amount_eur else f"DM {f.amount_dm:,.0f}"
        return f"{amount} per quarter and area" if f.mode == "per_quarter" else f"pot of {amount} over {f.years} year(s)"
    return german



# --------------------------------------------------------------------------
# Base budget from prior years (Stuttgart, Kamp-Lintfort, Neunkirchen, Nordfriesland)
# --------------------------------------------------------------------------
def base_total(
    prior_costs_eur,
    *,
    combine: Literal["mean", "sum", "last"] = "last",
    case_forecast_pct: float = 0.0,
    lump_sum_eur: float = 0.0,
) -> int:
    """Budget total (EUR) from prior-year costs.

    ``prior_costs_eur`` are the costs of one or several years (oldest first).
    ``combine``: ``last`` (Stuttgart, Neunkirchen: last year's costs), ``mean``
    (Kamp-Lintfort: the two previous years; Nordfriesland: mean cost of new
    cases in the two years before), ``sum``. The result is multiplied by the
    case forecast (1 + p/100) and a lump sum (e.g. fallunspezifische Arbeit,
    prevention) is added; rounded half up to whole EUR.
    """
    costs = np.atleast_1d(np.asarray(prior_costs_eur, dtype=float))
    if costs.size == 0 or not np.all(np.isfinite(costs)) or (costs < 0).any():
        raise GeoplanError("Vorjahreskosten müssen endliche Beträge ≥ 0 sein.", found=str(list(costs)),
                           message_en="Prior-year costs must be finite amounts ≥ 0.")
    base = {"last": costs[-1], "mean": costs.mean(), "sum": costs.sum()}[combine]
    return int(math.floor(base * (1 + case_forecast_pct / 100.0) + float(lump_sum_eur) + 0.5))


# --------------------------------------------------------------------------
# Surplus and overspend
# --------------------------------------------------------------------------
@dataclass
class SurplusResult:
    """Surplus split (EUR). ``table``: position, amount_eur."""

    budget_eur: int
    actual_eur: int
    surplus_eur: int
    provider_eur: int
    public_eur: int
    overspend_eur: int
    carry_over_eur: int
    next_budget_eur: int | None
    table: pd.DataFrame
    notes: list[QANote] = field(default_factory=list)


def share_surplus(
    budget_eur,
    actual_eur,
    provider_pct: float,
    *,
    carry_over: bool = True,
    next_budget_eur=None,
) -> SurplusResult:
    """Split a surplus (budget − actual, EUR) between provider and public body.

    Frankfurt (Oder): ``provider_pct=25`` (25 % for fallunspezifische Arbeit or
    reserves, 75 % stay with the city); Siegen 40; Hannover: 50 of the
    remainder of Teilbudget B (call with B's budget and actual). The
    provider's part is carried over into the next period (added to
    ``next_budget_eur`` when given). An overspend is reported, not shared
    (see :func:`settle_overspend`).
    """
    budget = _int(budget_eur, "Budget")
    actual = _int(actual_eur, "Ist-Ausgaben")
    pct = _pct(provider_pct, "Trägeranteil")
    diff = budget - actual
    surplus = max(diff, 0)
    overspend = max(-diff, 0)
    prov, pub = _split2(surplus, pct)
    carry = prov if carry_over else 0
    nxt = None if next_budget_eur is None else _int(next_budget_eur, "Budget der nächsten Periode") + carry
    rows = [
        ("Budget", budget),
        ("Ist-Ausgaben", actual),
        ("Einsparung", surplus),
        (f"Anteil Träger ({pct:g} %)", prov),
        (f"Anteil öffentlicher Träger ({100 - pct:g} %)", pub),
        ("Überschreitung", overspend),
        ("Übertrag in die nächste Periode", carry),
    ]
    if nxt is not None:
        rows.append(("Budget der nächsten Periode mit Übertrag", nxt))
    notes = []
    if overspend:
        notes.append(
            QANote(stage="settlement", message=f"Budget um {fmt_eur(overspend)} EUR überschritten; kein Überschuss zu teilen.",
                   message_en=f"Budget exceeded by {fmt.euro(overspend, lang='en')}; no surplus to share.")
        )
    return SurplusResult(
        budget_eur=budget,
        actual_eur=actual,
        surplus_eur=surplus,
        provider_eur=prov,
        public_eur=pub,
        overspend_eur=overspend,
        carry_over_eur=carry,
        next_budget_eur=nxt,
        table=pd.DataFrame(rows, columns=["position", "amount_eur"]),
        notes=notes,
    )


@dataclass
class OverspendResult:
    """Overspend and how much of it is re-financed (EUR)."""

    overspend_eur: int
    refinanced_eur: int
    uncovered_eur: int
    capped: bool
    adjusted_budget_eur: int
    reason: str
    table: pd.DataFrame
    notes: list[QANote] = field(default_factory=list)


def settle_overspend(
    budget_eur,
    actual_eur,
    *,
    refinancing: Literal["indicator", "case_costs", "none"] = "none",
    indicator_before=None,
    indicator_after=None,
    indicator_weights=None,
    threshold_pct: float = 0.0,
    documented_case_costs_eur=None,
    principles_kept: bool = True,
    not_if_principles_broken: bool = False,
) -> OverspendResult:
    """Re-financing of an overspend (source section 6.2: without a clause the budget is a cap).

    ``indicator``: the budget is adjusted by the relative change of the
    (weighted mean of the) social indicators, ``after / before − 1``, when the
    change exceeds ``threshold_pct``; the re-financed amount is the smaller of
    the overspend and ``budget × change`` (Hannover contract clause; Siegen:
    "sozialstrukturelle Entwicklungen"). Siegen excludes re-financing when the
    overspend comes from broken professional principles
    (``not_if_principles_broken`` and ``principles_kept=False``).
    ``case_costs``: the documented costs of the necessary individual cases
    (EUR) are re-financed above the budget, at most the overspend.
    ``none``: the overspend stays uncovered (cap).
    """
    budget = _int(budget_eur, "Budget")
    actual = _int(actual_eur, "Ist-Ausgaben")
    over = max(actual - budget, 0)
    refin = 0
    reason = "keine Überschreitung"
    notes: list[QANote] = []
    if over:
        if refinancing == "none":
            reason = "keine Nachfinanzierungsklausel: Budget wirkt als Deckel"
        elif not_if_principles_broken and not principles_kept:
            reason = "keine Nachfinanzierung: fachliche Prinzipien nicht eingehalten"
        elif refinancing == "indicator":
            if indicator_before is None or indicator_after is None:
                raise GeoplanError(
                    "Nachfinanzierung nach Indikatoren braucht Indikatorwerte vorher und nachher.",
                    location="settlement.overspend",
                    hint="indicator_before und indicator_after angeben.",
                    message_en="Refinancing by indicators needs indicator values before and after.",
                    hint_en="Give indicator_before and indicator_after.",
                )
            before = np.atleast_1d(np.asarray(indicator_before, dtype=float))
            after = np.atleast_1d(np.asarray(indicator_after, dtype=float))
            if before.shape != after.shape or (before <= 0).any():
                raise GeoplanError(
                    "Indikatorwerte vorher/nachher müssen gleich viele und positive Werte sein.",
                    found=f"{before.tolist()} / {after.tolist()}",
                    message_en="Indicator values before/after must be equally many and positive.",
                )
            w = np.ones_like(before) if indicator_weights is None else np.asarray(indicator_weights, dtype=float)
            change = float(np.sum(w * (after / before - 1.0)) / np.sum(w))
            if change * 100 > threshold_pct:
                refin = min(over, int(math.floor(budget * change + 0.5)))
                reason = f"Sozialindikatoren um {change * 100:.1f} % gestiegen"
            else:
                reason = f"Indikatorveränderung {change * 100:.1f} % unter der Schwelle {threshold_pct:g} %"
        elif refinancing == "case_costs":
            if documented_case_costs_eur is None:
                raise GeoplanError(
                    "Nachfinanzierung nach Einzelfallkosten braucht die dokumentierten Fallkosten.",
                    location="settlement.overspend",
                    message_en="Refinancing by single-case costs needs the documented case costs.",
                )
            doc = int(np.sum(np.asarray(documented_case_costs_eur, dtype=float)).round())
            refin = min(over, max(doc - budget, 0))
            reason = f"dokumentierte Einzelfallkosten {fmt_eur(doc)} EUR"
        else:
            raise GeoplanError("Unbekannte Nachfinanzierungsregel.", found=str(refinancing),
                               expected="indicator, case_costs, none", message_en="Unknown refinancing rule.")
    uncovered = over - refin
    if uncovered:
        notes.append(
            QANote(stage="settlement", message=f"Überschreitung von {fmt_eur(uncovered)} EUR nicht nachfinanziert (Deckelung).",
                   message_en=f"Overspend of {fmt.euro(uncovered, lang='en')} not refinanced (cap).")
        )
    table = pd.DataFrame(
        [
            ("Budget", budget),
            ("Ist-Ausgaben", actual),
            ("Überschreitung", over),
            ("Nachfinanzierung", refin),
            ("nicht gedeckt", uncovered),
            ("angepasstes Budget", budget + refin),
        ],
        columns=["position", "amount_eur"],
    )
    return OverspendResult(
        overspend_eur=over,
        refinanced_eur=refin,
        uncovered_eur=uncovered,
        capped=bool(uncovered),
        adjusted_budget_eur=budget + refin,
        reason=reason,
        table=table,
        notes=notes,
    )


# --------------------------------------------------------------------------
# Conditional payout (Stuttgart)
# --------------------------------------------------------------------------
@dataclass
class PayoutResult:
    """Payout of a budget (EUR).

    schedule: rate (1..n), amount_eur (the unconditional part in instalments).
    conditions: label, pct, amount_eur, met, paid_eur; plus the bonus row.
    """

    total_eur: int
    unconditional_eur: int
    conditional_eur: int
    paid_eur: int
    withheld_eur: int
    bonus_eur: int
    schedule: pd.DataFrame
    conditions: pd.DataFrame


def conditional_payout(
    total_eur,
    *,
    instalments: int = 12,
    unconditional_pct: float = 95.0,
    conditions: list[tuple[str, float]] | list[dict] | None = None,
    met: dict[str, bool] | None = None,
    bonus_max_pct: float = 0.0,
    bonus_achieved: float = 0.0,
) -> PayoutResult:
    """Stuttgart's payout: a guaranteed part in instalments, the rest tied to conditions.

    ``total_eur`` is the whole budget (A + B). The unconditional part
    (``unconditional_pct``, 95 %) is paid in ``instalments`` equal rates
    (largest remainder, earlier rates take the extra euro). Each condition
    (label, % of the total) is paid when ``met[label]`` is true. The bonus is
    up to ``bonus_max_pct`` of the total, paid as ``bonus_achieved`` (0–1,
    share of agreed quality indicators fulfilled); it comes on top.
    Percent parts are split from the total with largest remainder so that
    unconditional + conditions = total exactly.
    """
    total = _int(total_eur, "Gesamtbudget")
    conds = []
    for c in conditions or []:
        if isinstance(c, dict):
            conds.append((str(c["label"]), float(c["pct"])))
        else:
            conds.append((str(c[0]), float(c[1])))
    pcts = [float(unconditional_pct)] + [p for _, p in conds]
    if abs(sum(pcts) - 100.0) > 1e-9:
        raise GeoplanError(
            "Unbedingter Anteil und Bedingungen müssen zusammen 100 % ergeben.",
            found=f"{sum(pcts):g} %",
            expected="100 %", message_en="The unconditional share and the conditions must add up to 100%.",
        )
    parts = hamilton(total, pcts) if total > 0 else np.zeros(len(pcts), dtype=np.int64)
    uncond = int(parts[0])
    if not 0 <= bonus_achieved <= 1:
        raise GeoplanError("Bonus-Erfüllungsgrad muss zwischen 0 und 1 liegen.", found=f"{bonus_achieved:g}",
                           message_en="The bonus achievement level must lie between 0 and 1.")
    bonus = int(math.floor(total * bonus_max_pct / 100.0 * bonus_achieved + 0.5))
    rates = hamilton(uncond, np.ones(instalments)) if uncond else np.zeros(instalments, dtype=np.int64)
    schedule = pd.DataFrame({"rate": np.arange(1, instalments + 1), "amount_eur": rates.astype(np.int64)})
    met = met or {}
    rows = []
    paid_cond = 0
    for (label, pct), amount in zip(conds, parts[1:]):
        ok = bool(met.get(label, False))
        rows.append((label, pct, int(amount), ok, int(amount) if ok else 0))
        paid_cond += int(amount) if ok else 0
    rows.append(("Leistungsbonus", bonus_max_pct, int(math.floor(total * bonus_max_pct / 100.0 + 0.5)), bonus_achieved > 0, bonus))
    cond_df = pd.DataFrame(rows, columns=["label", "pct", "amount_eur", "met", "paid_eur"])
    conditional = total - uncond
    return PayoutResult(
        total_eur=total,
        unconditional_eur=uncond,
        conditional_eur=conditional,
        paid_eur=uncond + paid_cond + bonus,
        withheld_eur=conditional - paid_cond,
        bonus_eur=bonus,
        schedule=schedule,
        conditions=cond_df,
    )


# --------------------------------------------------------------------------
# Coupling and transfers between Teilbudgets
# --------------------------------------------------------------------------
def dynamic_coupling(a_budget_eur, a_actual_eur, b_start_eur, *, floor_at_start: bool = True) -> pd.DataFrame:
    """Siegen: Teilbudget B moves with the savings in Teilbudget A, year by year.

    ``a_actual_eur`` is a sequence of A's actual costs per year (EUR);
    ``a_budget_eur`` A's budget (one value or one per year). Savings in A
    (budget − actual > 0) are added to B; if A's spending rises above its
    budget, B may be cut by the excess but never below B's start value.
    Returns one row per year: year, a_budget_eur, a_actual_eur,
    a_saving_eur, b_before_eur, b_after_eur, floor_binding.
    """
    actual = [int(round(float(x))) for x in np.atleast_1d(a_actual_eur)]
    budgets = np.atleast_1d(a_budget_eur)
    if budgets.size == 1:
        budgets = np.repeat(budgets, len(actual))
    if budgets.size != len(actual):
        raise GeoplanError("Teilbudget A: ein Budget je Jahr oder ein Wert für alle Jahre.",
                           found=f"{budgets.size} Budgets, {len(actual)} Jahre",
                           message_en="Teilbudget A: one budget per year or one value for all years.",
                           found_en=f"{budgets.size} budgets, {len(actual)} years")
    b_start = _int(b_start_eur, "Startbudget B")
    b = b_start
    rows = []
    for y, (ab, aa) in enumerate(zip(budgets, actual), start=1):
        ab = int(round(float(ab)))
        saving = ab - aa
        raw = b + saving
        after = max(raw, b_start) if floor_at_start else raw
        rows.append((y, ab, aa, saving, b, after, bool(floor_at_start and raw < b_start)))
        b = after
    return pd.DataFrame(
        rows, columns=["year", "a_budget_eur", "a_actual_eur", "a_saving_eur", "b_before_eur", "b_after_eur", "floor_binding"]
    )


@dataclass
class RefundResult:
    table: pd.DataFrame
    refund_eur: int
    c_before_eur: int
    c_after_eur: int
    notes: list[QANote] = field(default_factory=list)


def first_year_refund(leavers: pd.DataFrame, c_budget_eur, *, months: int = 12) -> RefundResult:
    """Celle: refund from Teilbudget C when a young person leaves stationary care.

    For each young person who becomes independent ("Verselbständigung") from
    full-time residential care, the providers receive the stationary costs
    saved in the first year: ``monthly_cost_eur × months`` (12 by default),
    paid from C (EUR). ``leavers`` has columns ``case`` and
    ``monthly_cost_eur``. If C does not cover all refunds, they are cut
    proportionally (largest remainder) and a note says so.
    """
    need = {"case", "monthly_cost_eur"}
    if not need.issubset(leavers.columns):
        raise GeoplanError("Tabelle der Verselbständigungen unvollständig.", expected="case, monthly_cost_eur",
                           found=", ".join(map(str, leavers.columns)),
                           message_en="The table of young people leaving care is incomplete.")
    monthly = pd.to_numeric(leavers["monthly_cost_eur"], errors="coerce").to_numpy(float)
    if not np.all(np.isfinite(monthly)) or (monthly < 0).any():
        raise GeoplanError("Monatskosten müssen Beträge ≥ 0 sein.", location="monthly_cost_eur",
                           message_en="Monthly costs must be amounts ≥ 0.")
    claim = np.floor(monthly * months + 0.5).astype(np.int64)
    c = _int(c_budget_eur, "Teilbudget C")
    notes = []
    if claim.sum() > c:
        paid = hamilton(c, claim)
        notes.append(QANote(stage="settlement", message=f"Teilbudget C reicht nicht für alle Erstattungen; gekürzt um {fmt_eur(claim.sum() - c)} EUR.",
                            message_en=f"Teilbudget C does not cover all refunds; cut by "
                            f"{fmt.euro(claim.sum() - c, lang='en')}."))
    else:
        paid = claim
    table = pd.DataFrame({"case": leavers["case"].to_numpy(), "monthly_cost_eur": monthly, "months": months,
                          "claim_eur": claim, "refund_eur": paid})
    refund = int(paid.sum())
    return RefundResult(table=table, refund_eur=refund, c_before_eur=c, c_after_eur=c - refund, notes=notes)


def transfer_old_cases(a_budget_eur, b_budget_eur, cases: pd.DataFrame) -> tuple[int, int, pd.DataFrame]:
    """Nordfriesland: old cases move from A (ASD) to B (provider) after review.

    ``cases``: columns ``case``, ``annual_cost_eur``, ``reviewed`` (bool). The
    annual costs of reviewed cases are moved from A to B; returns (A after,
    B after, table of moved cases). Next year's B is the extended B.
    """
    for col in ("case", "annual_cost_eur", "reviewed"):
        if col not in cases.columns:
            raise GeoplanError("Tabelle der Altfälle unvollständig.", expected="case, annual_cost_eur, reviewed",
                               found=", ".join(map(str, cases.columns)),
                               message_en="The table of existing cases is incomplete.")
    a = _int(a_budget_eur, "Budget A")
    b = _int(b_budget_eur, "Budget B")
    moved = cases.loc[cases["reviewed"].astype(bool)].copy()
    amount = int(np.floor(pd.to_numeric(moved["annual_cost_eur"]).to_numpy(float) + 0.5).sum())
    if amount > a:
        raise GeoplanError(
            f"Die umzubuchenden Altfälle ({fmt_eur(amount)} EUR) übersteigen Budget A ({fmt_eur(a)} EUR).",
            hint="Altfälle und Budget A prüfen.",
            message_en=f"The existing cases to be rebooked ({fmt.euro(amount, lang='en')}) exceed budget A "
            f"({fmt.euro(a, lang='en')}).", hint_en="Check the existing cases and budget A.",
        )
    moved["from"] = "A"
    moved["to"] = "B"
    return a - amount, b + amount, moved.reset_index(drop=True)


# --------------------------------------------------------------------------
# Provider models and Verfügungsfonds
# --------------------------------------------------------------------------
def provider_split(amount_eur, model: Literal["single", "verbund", "gewaehrleistung"], members) -> pd.DataFrame:
    """Each provider's amount (EUR, exact) for one Sozialraum (source section 6.3).

    ``single``: one provider gets everything ("Monopolisten-Variante").
    ``verbund``: Trägerverbund; members share by ``share`` (agreed) or by
    ``cases`` (past case volume). ``gewaehrleistung``: the first member is the
    Gewährleistungsträger; sub-contractors get their ``share`` (fraction of the
    total) and the Gewährleistungsträger keeps the rest.
    Members: list of dicts or ProviderMember. Columns of the result:
    provider, role, basis, amount_eur.
    """
    amount = _int(amount_eur, "Budget")
    ms = [m if isinstance(m, ProviderMember) else ProviderMember.model_validate(m) for m in members]
    if not ms:
        raise GeoplanError("Mindestens ein Träger muss angegeben sein.", location="settlement.providers.members",
                           message_en="At least one provider must be given.")
    if model == "single":
        if len(ms) != 1:
            raise GeoplanError("Das Modell 'single' hat genau einen Träger.", found=f"{len(ms)} Träger",
                               message_en="The model 'single' has exactly one provider.",
                               found_en=f"{len(ms)} providers")
        return pd.DataFrame({"provider": [ms[0].name], "role": ["alleiniger Träger"], "basis": ["100 %"],
                             "amount_eur": [amount]})
    if model == "verbund":
        use_cases = all(m.cases is not None for m in ms) and not all(m.share is not None for m in ms)
        w = np.array([(m.cases if use_cases else m.share) if (m.cases if use_cases else m.share) is not None else np.nan
                      for m in ms], dtype=float)
        if np.isnan(w).any() or w.sum() <= 0:
            raise GeoplanError("Trägerverbund: jeder Träger braucht 'share' (vereinbart) oder 'cases' (Fallvolumen).",
                               location="settlement.providers.members",
                               message_en="Provider network: every provider needs 'share' (agreed) or 'cases' (case volume).")
        amounts = hamilton(amount, w)
        basis = [f"{c:g} Fälle" if use_cases else f"{s / w.sum() * 100:.1f} %" for c, s in zip(w, w)]
        return pd.DataFrame({"provider": [m.name for m in ms], "role": ["Verbundmitglied"] * len(ms),
                             "basis": basis, "amount_eur": amounts.astype(np.int64)})
    if model == "gewaehrleistung":
        subs = ms[1:]
        shares = np.array([m.share or 0.0 for m in subs], dtype=float)
        if shares.sum() > 1 + 1e-12:
            raise GeoplanError("Subunternehmer erhalten zusammen mehr als das Budget.",
                               found=f"Summe der Anteile {shares.sum():g}", expected="≤ 1",
                               message_en="Subcontractors get more than the budget together.",
                               found_en=f"sum of the shares {shares.sum():g}")
        amounts = hamilton(amount, np.concatenate([[1.0 - shares.sum()], shares]))
        return pd.DataFrame({
            "provider": [m.name for m in ms],
            "role": ["Gewährleistungsträger"] + ["Subunternehmer"] * len(subs),
            "basis": ["Rest"] + [f"{s * 100:g} %" for s in shares],
            "amount_eur": amounts.astype(np.int64),
        })
    raise GeoplanError("Unbekanntes Trägermodell.", found=str(model), expected="single, verbund, gewaehrleistung",
                       message_en="Unknown provider model.")


def dm_to_eur(amount_dm: float) -> float:
    """Convert Deutsche Mark to EUR at the fixed rate 1 EUR = 1.95583 DM (not rounded)."""
    return float(amount_dm) / DM_PER_EUR


@dataclass
class FondsResult:
    """Verfügungsfonds: table (area, quarter or year, amount_eur), total_eur, notes."""

    table: pd.DataFrame
    total_eur: int
    per_area_eur: pd.Series
    notes: list[QANote] = field(default_factory=list)


def verfuegungsfonds(
    *,
    mode: Literal["per_quarter", "pot"],
    areas=None,
    amount_eur=None,
    amount_dm=None,
    quarters: int = 4,
    years: int = 1,
    weights=None,
) -> FondsResult:
    """Verfügungsfonds (small citizen-run funds, source chapter 5).

    ``per_quarter``: every area gets ``amount_eur`` in each of ``quarters``
    quarters (Vierteljahre). ``pot``: one pot (``amount_eur`` or ``amount_dm``)
    for ``years`` years split over the areas equally or by ``weights``, then
    evenly over the years (largest remainder; exact to the euro).
    ``areas``: list of names or their number. Wiesbaden: about 20,000 EUR per
    region (8 regions); Berlin: 15 Quartiere (neighbourhoods) shared DM
    1,000,000 for 2001/2002 — DM amounts are converted at 1.95583 DM per EUR
    and a note says so.
    """
    notes: list[QANote] = []
    if (amount_eur is None) == (amount_dm is None):
        raise GeoplanError("Verfügungsfonds: genau einen Betrag in EUR oder DM angeben.",
                           message_en="Verfügungsfonds: give exactly one amount in EUR or DM.")
    if amount_dm is not None:
        eur = dm_to_eur(amount_dm)
        notes.append(QANote(stage="settlement", level="info",
                            message=f"{fmt_eur(amount_dm)} DM zum festen Kurs 1 EUR = 1,95583 DM umgerechnet: {fmt_eur(eur, 2)} EUR.",
                            message_en=f"{fmt.number(amount_dm, lang='en')} DM converted at the fixed rate "
                            f"EUR 1 = DM 1.95583: {fmt.euro(eur, 2, lang='en')}."))
        amount = int(math.floor(eur + 0.5))
    else:
        amount = _int(amount_eur, "Betrag")
    if areas is None:
        raise GeoplanError("Verfügungsfonds: Gebiete (Anzahl oder Namen) angeben.",
                           message_en="Verfügungsfonds: give the areas (number or names).")
    names = [f"Gebiet {i + 1}" for i in range(int(areas))] if isinstance(areas, (int, np.integer)) else [str(a) for a in areas]
    n = len(names)
    if n == 0:
        raise GeoplanError("Verfügungsfonds: keine Gebiete.", message_en="Verfügungsfonds: no areas.")
    if mode == "per_quarter":
        rows = [(a, q, amount) for a in names for q in range(1, quarters + 1)]
        table = pd.DataFrame(rows, columns=["area", "quarter", "amount_eur"])
    elif mode == "pot":
        w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
        if w.shape != (n,):
            raise GeoplanError("Verfügungsfonds: ein Gewicht je Gebiet.", found=f"{w.size} Gewichte, {n} Gebiete",
                               message_en="Verfügungsfonds: one weight per area.",
                               found_en=f"{w.size} weights, {n} areas")
        per_area = hamilton(amount, w)
        rows = []
        for a, v in zip(names, per_area):
            for y, part in enumerate(hamilton(int(v), np.ones(years)), start=1):
                rows.append((a, y, int(part)))
        table = pd.DataFrame(rows, columns=["area", "year", "amount_eur"])
    else:
        raise GeoplanError("Unbekannter Modus für Verfügungsfonds.", found=str(mode), expected="per_quarter, pot",
                           message_en="Unknown mode for the Verfügungsfonds.")
    table["amount_eur"] = table["amount_eur"].astype(np.int64)
    per_area = table.groupby("area", sort=False)["amount_eur"].sum()
    return FondsResult(table=table, total_eur=int(table["amount_eur"].sum()), per_area_eur=per_area, notes=notes)


# --------------------------------------------------------------------------
# Applying a settlement section to a whole allocation
# --------------------------------------------------------------------------
@dataclass
class SettlementResult:
    """End-of-period settlement of an allocation (all EUR, int).

    table : per Sozialraum: key, budget_eur, actual_eur, surplus_eur,
        provider_eur, public_eur, overspend_eur, refinanced_eur,
        uncovered_eur, adjusted_budget_eur, next_budget_eur.
    totals : position, amount_eur (sums of the table; exact).
    payout : PayoutResult for the distributed total (if a payout rule is set).
    providers : key, provider, role, basis, amount_eur (if a provider rule is set).
    rules : :func:`describe_settlement` of the spec.
    """

    table: pd.DataFrame
    totals: pd.DataFrame
    payout: PayoutResult | None
    providers: pd.DataFrame | None
    rules: pd.DataFrame
    notes: list[QANote] = field(default_factory=list)


def _aligned(values, keys: pd.Series, what: str) -> np.ndarray:
    """Values per Sozialraum in the order of ``keys`` (Series indexed by key, or array)."""
    if isinstance(values, pd.Series):
        idx = values.index.astype(str)
        missing = set(keys.astype(str)) - set(idx)
        if missing:
            raise GeoplanError(f"{what}: Werte für {len(missing)} Sozialräume fehlen.",
                               location="Sozialräume " + ", ".join(sorted(missing)[:10]),
                               message_en=f"{_WHAT_EN.get(what, what)}: values for {len(missing)} Sozialräume are missing.")
        return pd.Series(values.to_numpy(), index=idx).loc[keys.astype(str)].to_numpy(dtype=float)
    arr = np.asarray(values, dtype=float)
    if arr.shape[0] != len(keys):
        raise GeoplanError(f"{what}: ein Wert je Sozialraum erwartet.", expected=str(len(keys)), found=str(arr.shape[0]),
                           message_en=f"{_WHAT_EN.get(what, what)}: one value per Sozialraum expected.")
    return arr


def settle_allocation(
    result,
    actual_eur,
    spec: SettlementSpec | dict | None,
    *,
    indicator_before: pd.DataFrame | None = None,
    indicator_after: pd.DataFrame | None = None,
    documented_case_costs_eur=None,
    principles_kept: bool = True,
    payout_met: dict[str, bool] | None = None,
    bonus_achieved: float = 0.0,
    missing: Literal["error", "note"] = "error",
) -> SettlementResult:
    """Settle an :class:`~geoplan.stages.allocate.AllocationResult` against actual costs.

    ``actual_eur``: actual costs per Sozialraum (EUR; a Series indexed by key,
    or an array in the order of ``result.table``). When the surplus rule names
    a Teilbudget (Hannover: B), its column ``tb_<id>_eur`` is the budget that
    the actual costs are compared with; otherwise ``budget_eur``.
    Per Sozialraum, a surplus is shared by ``surplus.provider_pct`` and the
    provider part carried into the next period; an overspend is re-financed by
    the ``overspend`` rule (indicator change from ``indicator_before`` /
    ``indicator_after``: DataFrames indexed by key with the rule's indicator
    columns; or documented case costs per Sozialraum), the rest is reported as
    capped. Payout and provider split are computed for the distributed budget.
    ``missing="note"``: when the data a re-financing clause needs are not
    given, the overspend is reported as uncovered with a note instead of an error
    (e.g. for a demo without indicator time series).
    """
    spec = parse_settlement(spec)
    if getattr(result, "unit", "euro") == "cent":
        raise GeoplanError("Abrechnung erwartet Beträge in Euro (unit: euro).", found="cent",
                           message_en="The settlement expects amounts in euros (unit: euro).")
    t = result.table
    key = result.key
    keys = t[key].astype(str)
    budget_col = "budget_eur"
    if spec.surplus and spec.surplus.teilbudget:
        col = f"tb_{spec.surplus.teilbudget}_eur"
        if col in t.columns:
            budget_col = col
    budget = t[budget_col].to_numpy(dtype=np.int64)
    actual = np.floor(_aligned(actual_eur, keys, "Ist-Kosten") + 0.5).astype(np.int64)
    pct = spec.surplus.provider_pct if spec.surplus else 0.0
    carry = spec.surplus.carry_over if spec.surplus else False
    rule = spec.overspend.refinancing if spec.overspend else "none"
    notes: list[QANote] = []
    docs = None if documented_case_costs_eur is None else _aligned(documented_case_costs_eur, keys, "Einzelfallkosten")
    if rule == "indicator" and (indicator_before is None or indicator_after is None) and missing == "note":
        notes.append(QANote(stage="settlement", message="Indikatorwerte vorher/nachher fehlen: Nachfinanzierung nicht geprüft.",
                            message_en="Indicator values before/after are missing: refinancing not checked."))
        rule = "none"
    if rule == "case_costs" and docs is None and missing == "note":
        notes.append(QANote(stage="settlement", message="Einzelfallkosten fehlen: Nachfinanzierung nicht geprüft.",
                            message_en="Single-case costs are missing: refinancing not checked."))
        rule = "none"
    rows = []
    for i, k in enumerate(keys):
        s = share_surplus(int(budget[i]), int(actual[i]), pct, carry_over=carry)
        kwargs = {}
        if rule == "indicator" and s.overspend_eur:
            cols = spec.overspend.indicators
            if indicator_before is None or indicator_after is None:
                raise GeoplanError("Nachfinanzierung nach Indikatoren braucht Indikatorwerte vorher und nachher.",
                                   location="settlement.overspend", hint="indicator_before/indicator_after angeben.",
                                   message_en="Refinancing by indicators needs indicator values before and after.",
                                   hint_en="Give indicator_before/indicator_after.")
            kwargs = {"indicator_before": indicator_before.loc[k, cols].to_numpy(float) if cols else
                      indicator_before.loc[k].to_numpy(float),
                      "indicator_after": indicator_after.loc[k, cols].to_numpy(float) if cols else
                      indicator_after.loc[k].to_numpy(float)}
        if rule == "case_costs" and s.overspend_eur:
            if docs is None:
                raise GeoplanError("Nachfinanzierung nach Einzelfallkosten braucht die dokumentierten Fallkosten.",
                                   location="settlement.overspend",
                                   message_en="Refinancing by single-case costs needs the documented case costs.")
            kwargs = {"documented_case_costs_eur": [docs[i]]}
        o = settle_overspend(
            int(budget[i]), int(actual[i]), refinancing=rule,
            threshold_pct=spec.overspend.threshold_pct if spec.overspend else 0.0,
            not_if_principles_broken=spec.overspend.not_if_principles_broken if spec.overspend else False,
            principles_kept=principles_kept, **kwargs,
        )
        rows.append((k, int(budget[i]), int(actual[i]), s.surplus_eur, s.provider_eur, s.public_eur,
                     o.overspend_eur, o.refinanced_eur, o.uncovered_eur, o.adjusted_budget_eur,
                     int(t["budget_eur"].iloc[i]) + s.carry_over_eur))
    table = pd.DataFrame(rows, columns=[key, "budget_eur", "actual_eur", "surplus_eur", "provider_eur", "public_eur",
                                        "overspend_eur", "refinanced_eur", "uncovered_eur", "adjusted_budget_eur",
                                        "next_budget_eur"])
    uncovered = int(table["uncovered_eur"].sum())
    if uncovered:
        n_capped = int((table["uncovered_eur"] > 0).sum())
        notes.append(QANote(stage="settlement", message=f"In {n_capped} Sozialräumen bleiben {fmt_eur(uncovered)} EUR "
                                                        "Überschreitung ungedeckt (Deckelung).",
                            message_en=f"In {n_capped} Sozialräume {fmt.euro(uncovered, lang='en')} of overspend "
                            "remain uncovered (cap)."))
    labels = {"budget_eur": "Budget", "actual_eur": "Ist-Kosten", "surplus_eur": "Einsparungen",
              "provider_eur": "davon Träger", "public_eur": "davon öffentlicher Träger",
              "overspend_eur": "Überschreitungen", "refinanced_eur": "davon nachfinanziert",
              "uncovered_eur": "davon ungedeckt (Deckelung)"}
    totals = pd.DataFrame([(lab, int(table[c].sum())) for c, lab in labels.items()], columns=["position", "amount_eur"])
    payout = None
    if spec.payout:
        p = spec.payout
        payout = conditional_payout(int(t["budget_eur"].sum()), instalments=p.instalments,
                                    unconditional_pct=p.unconditional_pct,
                                    conditions=[(c.label, c.pct) for c in p.conditions],
                                    met=payout_met, bonus_max_pct=p.bonus_max_pct, bonus_achieved=bonus_achieved)
    providers = None
    if spec.providers:
        parts = []
        for k, amount in zip(keys, t["budget_eur"]):
            part = provider_split(int(amount), spec.providers.model, spec.providers.members)
            part.insert(0, key, k)
            parts.append(part)
        providers = pd.concat(parts, ignore_index=True)
    return SettlementResult(table=table, totals=totals, payout=payout, providers=providers,
                            rules=describe_settlement(spec), notes=notes)


# --------------------------------------------------------------------------
# The settlement rules applied to this run's allocation (for report, XLSX, manifest)
# --------------------------------------------------------------------------
@dataclass
class SettlementView:
    """The configured rules with this run's euros.

    rules : :func:`describe_settlement` (regel, beschreibung).
    payout : per Sozialraum (key, name, budget_eur, unconditional_eur, rate_eur (first instalment),
        one ``cond_<i>_eur`` per condition, bonus_max_eur) or None; ``payout_labels`` names the
        conditions; ``instalments`` their number.
    examples : worked rules on the median budget: list of dicts (rule, budget_eur, actual_eur and the result).
    settled : :class:`SettlementResult` when actual costs per Sozialraum were given, else None.
    fonds : Verfügungsfonds total (EUR) or None.
    """

    rules: pd.DataFrame
    payout: pd.DataFrame | None = None
    payout_labels: list[str] = field(default_factory=list)
    instalments: int = 0
    bonus_max_pct: float = 0.0
    unconditional_pct: float = 0.0
    examples: list[dict] = field(default_factory=list)
    settled: SettlementResult | None = None
    fonds_eur: int | None = None
    notes: list[QANote] = field(default_factory=list)

    def manifest(self) -> dict:
        """JSON-ready summary for manifest.json."""
        out = {"regeln": self.rules.to_dict(orient="records"), "beispiele": self.examples}
        if self.payout is not None:
            money = [c for c in self.payout.columns if c.endswith("_eur")]
            out["auszahlung_summen_eur"] = {c: int(self.payout[c].sum()) for c in money}
        if self.settled is not None:
            out["abrechnung_summen_eur"] = dict(zip(self.settled.totals["position"],
                                                    map(int, self.settled.totals["amount_eur"])))
        if self.fonds_eur is not None:
            out["verfuegungsfonds_eur"] = int(self.fonds_eur)
        return out


def settlement_view(alloc, spec: SettlementSpec | dict, *, names: dict | None = None, actual_eur=None) -> SettlementView:
    """Apply the settlement rules to an allocation: payment schedule and conditional payout per Sozialraum,
    the surplus/overspend rules worked on the median budget (±5 %), and, with actual costs per Sozialraum
    (``actual_eur``: Series indexed by key), the settlement itself (:func:`settle_allocation`)."""
    spec = parse_settlement(spec)
    t = alloc.table
    key = alloc.key
    names = names or {}
    view = SettlementView(rules=describe_settlement(spec))
    if spec.payout:
        p = spec.payout
        rows = []
        for k, b in zip(t[key].astype(str), t["budget_eur"].astype(int)):
            r = conditional_payout(int(b), instalments=p.instalments, unconditional_pct=p.unconditional_pct,
                                   conditions=[(c.label, c.pct) for c in p.conditions], bonus_max_pct=p.bonus_max_pct)
            cond = r.conditions
            row = {key: k, "name": names.get(k, ""), "budget_eur": int(b), "unconditional_eur": r.unconditional_eur,
                   "rate_eur": int(r.schedule["amount_eur"].iloc[0])}
            for i, (_, c) in enumerate(cond[cond["label"] != "Leistungsbonus"].iterrows()):
                row[f"cond_{i + 1}_eur"] = int(c["amount_eur"])
            row["bonus_max_eur"] = int(cond.loc[cond["label"] == "Leistungsbonus", "amount_eur"].iloc[0])
            rows.append(row)
        view.payout = pd.DataFrame(rows)
        view.payout_labels = [c.label for c in p.conditions]
        view.instalments = p.instalments
        view.bonus_max_pct = p.bonus_max_pct
        view.unconditional_pct = p.unconditional_pct
    budgets = t["budget_eur"].astype(int).to_numpy()
    if len(budgets):
        i = int(np.argsort(budgets, kind="mergesort")[len(budgets) // 2])
        k, b = str(t[key].iloc[i]), int(budgets[i])
        if spec.surplus:
            tb = spec.surplus.teilbudget
            if tb and f"tb_{tb}_eur" in t.columns:  # the rule applies to one Teilbudget (Hannover, Siegen: B)
                b = int(t[f"tb_{tb}_eur"].iloc[i])
            else:
                tb = None
            s = share_surplus(b, int(round(b * 0.95)), spec.surplus.provider_pct, carry_over=spec.surplus.carry_over)
            view.examples.append({"rule": "surplus", "teilbudget": tb, "key": k, "name": names.get(k, ""), "budget_eur": b,
                                  "actual_eur": int(round(b * 0.95)), "surplus_eur": s.surplus_eur,
                                  "provider_eur": s.provider_eur, "public_eur": s.public_eur,
                                  "carry_over_eur": s.carry_over_eur})
        if spec.overspend is not None or spec.surplus is not None:
            b = int(view.examples[-1]["budget_eur"]) if view.examples else b
            o = settle_overspend(b, int(round(b * 1.05)), refinancing="none")
            rule = spec.overspend.refinancing if spec.overspend else "none"
            view.examples.append({"rule": "overspend", "refinancing": rule, "key": k, "name": names.get(k, ""),
                                  "budget_eur": b, "actual_eur": int(round(b * 1.05)), "overspend_eur": o.overspend_eur,
                                  "uncovered_eur": o.uncovered_eur if rule == "none" else None})
    if spec.verfuegungsfonds:
        f = spec.verfuegungsfonds
        fr = verfuegungsfonds(mode=f.mode, areas=f.areas or len(t), amount_eur=f.amount_eur, amount_dm=f.amount_dm,
                              quarters=f.quarters, years=f.years)
        view.fonds_eur = int(fr.total_eur)
    if actual_eur is not None:
        view.settled = settle_allocation(alloc, actual_eur, spec, missing="note")
        view.notes.extend(view.settled.notes)
    return view
