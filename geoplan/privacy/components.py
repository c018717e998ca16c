"""Privacy by construction: no budget formula may take observed HzE counts.

A component that distributes money in proportion to observed case counts
(``hze_cases``, ``hze_cases_prev``, ``hze_cases_prev_ambulant`` …) makes every
Sozialraum's euros a linear function of its count: with 1 case 2.297 €, with
2 cases 4.595 €. The count can then be recomputed from the published budget,
past every suppression. Such formulas are refused before anything is computed.
"""

from __future__ import annotations

from geoplan.errors import GeoplanError

#: Columns holding observed HzE case counts start with this.
OBSERVED_PREFIX = "hze_cases"

# fields of a component that are names/labels, not columns
_NOT_COLUMNS = {"name", "label", "type", "combine", "id"}


def _columns_in(value, where: str):
    """(location, column) for every string naming a column inside a dumped component."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _columns_in(v, f"{where}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            if k in _NOT_COLUMNS:
                continue
            # indicator weights: the keys are the columns
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                yield f"{where}.{k}", str(k)
            else:
                yield from _columns_in(v, f"{where}.{k}")


def observed_count_uses(spec) -> list[tuple[str, str]]:
    """Where the allocation ``spec`` uses an observed-count column: [(config location, column)]."""
    uses = []
    parts = [("allocation.components", spec.components)]
    for tb in getattr(spec, "teilbudgets", None) or []:
        if tb.components:
            parts.append((f"allocation.teilbudgets[{tb.id}].components", tb.components))
    for base, comps in parts:
        for i, comp in enumerate(comps):
            dump = comp.model_dump(exclude_none=True)
            for where, col in _columns_in(dump, f"{base}[{i}]"):
                if col.startswith(OBSERVED_PREFIX):
                    uses.append((where, col))
    corridor = getattr(spec, "corridor", None)
    if corridor is not None:
        for where, col in _columns_in(corridor.model_dump(exclude_none=True), "allocation.corridor"):
            if col.startswith(OBSERVED_PREFIX):
                uses.append((where, col))
    return uses


def check_no_observed_counts(spec, *, k: int = 3, file=None) -> None:
    """Refuse a budget formula that takes observed HzE counts (see the module text)."""
    uses = observed_count_uses(spec)
    if not uses:
        return
    where, col = uses[0]
    raise GeoplanError(
        f"Die Budgetformel verteilt nach beobachteten HzE-Fallzahlen ('{col}'). Dann ist der Betrag jedes "
        "Sozialraums proportional zu seiner Fallzahl, und aus den veröffentlichten Euro-Beträgen lässt sich jede "
        f"kleine Fallzahl (1 bis {k - 1}) zurückrechnen – an der Unterdrückung kleiner Fallzahlen vorbei. "
        "Deshalb rechnet geoplan so nicht.",
        file=file,
        location=", ".join(w for w, _ in uses),
        expected="erwartete Fälle des Bedarfsmodells oder Vorjahreskosten, keine beobachteten Fallzahlen",
        found=col,
        hint="Stattdessen 'type: model' mit 'column: expected_cases' (oder expected_cost_eur) verwenden, oder "
             "'type: prior_year' mit 'columns: [hze_cost_prev_eur]' (Vorjahreskosten).",
        message_en=f"The budget formula distributes by observed HzE case counts ('{col}'). Each area's amount is then "
                   "proportional to its count, and every small count (1 to "
                   f"{k - 1}) can be recomputed from the published euros, past the suppression of small counts. "
                   "geoplan therefore refuses this formula.",
        hint_en="Use 'type: model' with 'column: expected_cases' (or expected_cost_eur) instead, or "
                "'type: prior_year' with 'columns: [hze_cost_prev_eur]' (prior-year costs).",
    )
