"""Settlement rules: exact euros, bad input, rule descriptions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geoplan.errors import GeoplanError
from geoplan.stages.settlement import (
    DM_PER_EUR,
    base_total,
    conditional_payout,
    describe_settlement,
    dm_to_eur,
    dynamic_coupling,
    parse_settlement,
    provider_split,
    settle_overspend,
    share_surplus,
    verfuegungsfonds,
)


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 10**9), st.integers(0, 10**9), st.floats(0, 100))
def test_surplus_split_is_exact(budget, actual, pct):
    r = share_surplus(budget, actual, pct)
    assert r.provider_eur + r.public_eur == r.surplus_eur == max(budget - actual, 0)
    assert r.overspend_eur == max(actual - budget, 0)
    assert abs(r.provider_eur - r.surplus_eur * pct / 100) < 1
    assert r.table["amount_eur"].dtype.kind == "i"


def test_surplus_overspend_gives_note_and_nothing_to_share():
    r = share_surplus(100, 150, 25)
    assert r.surplus_eur == 0 and r.overspend_eur == 50 and r.notes


def test_bad_percentage():
    with pytest.raises(GeoplanError, match="0 und 100"):
        share_surplus(100, 50, 120)


def test_overspend_case_costs_and_cap():
    r = settle_overspend(1_000, 1_300, refinancing="case_costs", documented_case_costs_eur=[600, 500, 100])
    assert r.refinanced_eur == 200 and r.uncovered_eur == 100 and r.adjusted_budget_eur == 1_200
    r = settle_overspend(1_000, 1_300, refinancing="case_costs", documented_case_costs_eur=[900, 600])
    assert r.refinanced_eur == 300 and not r.capped
    with pytest.raises(GeoplanError, match="Fallkosten"):
        settle_overspend(1_000, 1_300, refinancing="case_costs")
    with pytest.raises(GeoplanError, match="vorher und nachher"):
        settle_overspend(1_000, 1_300, refinancing="indicator")
    assert settle_overspend(1_000, 900, refinancing="none").overspend_eur == 0


def test_overspend_indicator_threshold_and_weights():
    below = settle_overspend(1_000_000, 1_100_000, refinancing="indicator", indicator_before=[10.0],
                             indicator_after=[10.1], threshold_pct=2)
    assert below.refinanced_eur == 0 and "Schwelle" in below.reason
    w = settle_overspend(1_000_000, 1_100_000, refinancing="indicator", indicator_before=[10.0, 10.0],
                         indicator_after=[11.0, 10.0], indicator_weights=[3, 1])
    assert w.refinanced_eur == 75_000


def test_payout_validation_and_small_totals():
    with pytest.raises(GeoplanError, match="100 %"):
        conditional_payout(1000, unconditional_pct=95, conditions=[("x", 3)])
    p = conditional_payout(7, instalments=12, unconditional_pct=95, conditions=[("a", 5)])
    assert p.schedule["amount_eur"].sum() == p.unconditional_eur and p.unconditional_eur + p.conditional_eur == 7


def test_coupling_without_floor_can_go_below_start():
    t = dynamic_coupling([100, 100], [150, 150], 80, floor_at_start=False)
    assert list(t["b_after_eur"]) == [30, -20]
    with pytest.raises(GeoplanError):
        dynamic_coupling([100, 100, 100], [90, 90], 80)


def test_provider_models():
    single = provider_split(1_000, "single", [{"name": "Träger X"}])
    assert single["amount_eur"].tolist() == [1_000]
    with pytest.raises(GeoplanError):
        provider_split(1_000, "single", [{"name": "a"}, {"name": "b"}])
    agreed = provider_split(1_000, "verbund", [{"name": "a", "share": 1}, {"name": "b", "share": 2}])
    assert agreed["amount_eur"].tolist() == [333, 667]
    with pytest.raises(GeoplanError, match="share"):
        provider_split(1_000, "verbund", [{"name": "a", "share": 1}, {"name": "b"}])
    with pytest.raises(GeoplanError, match="mehr als das Budget"):
        provider_split(1_000, "gewaehrleistung", [{"name": "lead"}, {"name": "s", "share": 1.2}])


def test_dm_conversion():
    assert dm_to_eur(DM_PER_EUR) == pytest.approx(1.0)
    assert round(dm_to_eur(25_000), 2) == 12_782.30
    with pytest.raises(GeoplanError):
        verfuegungsfonds(mode="pot", amount_eur=1, amount_dm=1, areas=2)
    w = verfuegungsfonds(mode="pot", amount_eur=1_000, areas=["a", "b", "c"], weights=[1, 1, 2])
    assert w.per_area_eur.tolist() == [250, 250, 500]


def test_base_total():
    assert base_total([100, 200], combine="mean") == 150
    assert base_total([100, 200], combine="sum", case_forecast_pct=10) == 330
    with pytest.raises(GeoplanError):
        base_total([-5])


def test_parse_and_describe():
    spec = {"surplus": {"provider_pct": 25}, "overspend": {"refinancing": "none"},
            "payout": {"unconditional_pct": 95, "conditions": [{"label": "Berichte", "pct": 5}]}}
    d = describe_settlement(spec)
    assert list(d["regel"]) == ["Überschuss", "Überschreitung", "Auszahlung"]
    assert "25 %" in d.loc[0, "beschreibung"] and "Deckel" in d.loc[1, "beschreibung"]
    with pytest.raises(GeoplanError) as exc:
        parse_settlement({"surplus": {"provider_pct": 25, "bogus": 1}})
    assert "surplus.bogus" in exc.value.location
    with pytest.raises(GeoplanError):
        parse_settlement({"payout": {"unconditional_pct": 90}})
    assert isinstance(describe_settlement({}), pd.DataFrame)


def _alloc():
    from geoplan.stages.allocate import allocate

    f = pd.DataFrame({"key": ["01", "02", "03"], "pop_u21": [1000, 2000, 3000],
                      "hze_cost_prev_eur": [100_000, 250_000, 250_000]})
    spec = {"total_eur": 660_000, "components": [{"name": "vorjahr", "type": "prior_year", "weight": 1}],
            "teilbudgets": [{"id": "A", "share": 0.1, "distributed": False},
                            {"id": "B", "remainder": True}]}
    return allocate(f, spec)


def test_settle_allocation_surplus_and_cap():
    from geoplan.stages.settlement import settle_allocation

    res = _alloc()
    assert res.table["tb_B_eur"].tolist() == [99_000, 247_500, 247_500]
    actual = pd.Series({"01": 90_000, "02": 260_000, "03": 247_500})
    spec = {"surplus": {"provider_pct": 50, "teilbudget": "B"}, "overspend": {"refinancing": "none"},
            "payout": {"instalments": 4, "unconditional_pct": 95, "conditions": [{"label": "Berichte", "pct": 5}]},
            "providers": {"model": "verbund", "members": [{"name": "a", "share": 3}, {"name": "b", "share": 1}]}}
    s = settle_allocation(res, actual, spec)
    t = s.table.set_index("key")
    assert t.loc["01", "surplus_eur"] == 9_000 and t.loc["01", "provider_eur"] == 4_500
    assert t.loc["01", "next_budget_eur"] == 99_000 + 4_500
    assert t.loc["02", "overspend_eur"] == 12_500 and t.loc["02", "uncovered_eur"] == 12_500
    assert t.loc["03", "surplus_eur"] == 0 and t.loc["03", "overspend_eur"] == 0
    totals = s.totals.set_index("position")["amount_eur"]
    assert totals["Einsparungen"] == 9_000 and totals["davon ungedeckt (Deckelung)"] == 12_500
    assert s.notes and "Deckelung" in s.notes[0].message
    assert s.payout.schedule["amount_eur"].sum() == s.payout.unconditional_eur
    assert s.payout.unconditional_eur + s.payout.conditional_eur == 594_000
    by_key = s.providers.groupby("key")["amount_eur"].sum()
    assert by_key.tolist() == res.table["budget_eur"].tolist()
    assert len(s.rules) == 4


def test_settle_allocation_refinancing():
    from geoplan.stages.settlement import settle_allocation

    res = _alloc()
    actual = np.array([120_000, 247_500, 300_000])
    docs = pd.Series({"01": 110_000, "02": 0, "03": 320_000})
    s = settle_allocation(res, actual, {"overspend": {"refinancing": "case_costs"}}, documented_case_costs_eur=docs)
    t = s.table.set_index("key")
    assert t.loc["01", "refinanced_eur"] == 11_000 and t.loc["01", "uncovered_eur"] == 10_000
    assert t.loc["03", "refinanced_eur"] == 52_500 and t.loc["03", "uncovered_eur"] == 0
    before = pd.DataFrame({"kinderarmut": [10.0, 10.0, 10.0]}, index=["01", "02", "03"])
    after = pd.DataFrame({"kinderarmut": [11.0, 10.0, 10.0]}, index=["01", "02", "03"])
    spec = {"overspend": {"refinancing": "indicator", "indicators": ["kinderarmut"]}}
    s = settle_allocation(res, actual, spec, indicator_before=before, indicator_after=after)
    t = s.table.set_index("key")
    assert t.loc["01", "refinanced_eur"] == 9_900 and t.loc["03", "refinanced_eur"] == 0
    with pytest.raises(GeoplanError, match="Ist-Kosten"):
        settle_allocation(res, pd.Series({"01": 1}), {})
    with pytest.raises(GeoplanError, match="vorher und nachher"):
        settle_allocation(res, actual, spec)


def test_settle_allocation_missing_data_as_note():
    from geoplan.stages.settlement import settle_allocation

    res = _alloc()
    actual = np.array([120_000, 247_500, 300_000])
    s = settle_allocation(res, actual, {"overspend": {"refinancing": "indicator"}}, missing="note")
    assert s.table["refinanced_eur"].sum() == 0 and s.table["uncovered_eur"].sum() == 21_000 + 52_500
    assert any("nicht geprüft" in n.message for n in s.notes)


def test_settlement_view_applies_the_rules_to_an_allocation():
    """Payout per Sozialraum adds up to each budget; worked examples; settlement against actual costs."""
    import pandas as pd

    from geoplan.stages.allocate import allocate
    from geoplan.stages.settlement import settlement_view

    fr = pd.DataFrame({"key": ["a", "b", "c"], "pop_u21": [1000, 2000, 3001]})
    alloc = allocate(fr, {"total_eur": 1_000_003, "components": [{"name": "bev", "type": "population", "weight": 1}],
                          "teilbudgets": [{"id": "A", "remainder": True}, {"id": "B", "percent_of": "A", "percent": 6}]})
    spec = {"payout": {"instalments": 12, "unconditional_pct": 95, "bonus_max_pct": 1,
                       "conditions": [{"label": "Berichte", "pct": 3}, {"label": "Abrechnung", "pct": 2}]},
            "surplus": {"provider_pct": 40, "teilbudget": "B"}, "overspend": {"refinancing": "none"}}
    v = settlement_view(alloc, spec, names={"a": "A-Dorf", "b": "B-Stadt", "c": "C-Heim"})
    p = v.payout.set_index("key")
    assert (p["unconditional_eur"] + p["cond_1_eur"] + p["cond_2_eur"] == p["budget_eur"]).all()
    assert p["budget_eur"].sum() == 1_000_003 and v.payout_labels == ["Berichte", "Abrechnung"]
    sur = v.examples[0]
    assert sur["teilbudget"] == "B" and sur["name"] == "B-Stadt"  # the median budget, its Teilbudget B
    assert sur["budget_eur"] == int(alloc.table.set_index("key").loc["b", "tb_B_eur"])
    assert sur["provider_eur"] + sur["public_eur"] == sur["surplus_eur"] == sur["budget_eur"] - sur["actual_eur"]
    assert v.examples[1]["overspend_eur"] == v.examples[1]["actual_eur"] - v.examples[1]["budget_eur"]
    assert v.settled is None
    actual = pd.Series({"a": 150_000.0, "b": 400_000.0, "c": 400_000.0})
    s = settlement_view(alloc, spec, actual_eur=actual).settled
    assert s is not None and int(s.table["actual_eur"].sum()) == 950_000
    import json

    json.dumps(settlement_view(alloc, spec, actual_eur=actual).manifest())
