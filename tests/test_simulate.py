import numpy as np
import pandas as pd
import pytest

from geoplan.errors import GeoplanError
from geoplan.stages.simulate import simulate_hze

KINDS = {"ambulant": {"share": 0.6, "cost_per_case_eur": 7000},
         "teilstationaer": {"share": 0.1, "cost_per_case_eur": 20000},
         "stationaer": {"share": 0.3, "cost_per_case_eur": 60000}}


def _frame(n=400, seed=1):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"key": [f"{i:04d}" for i in range(n)], "pop_u21": rng.integers(2000, 20000, n),
                         "armut": rng.normal(20, 8, n)})


def test_same_seed_same_numbers_and_other_seed_differs():
    f = _frame()
    a = simulate_hze(f, effects={"armut": 0.3}, rate_per_1000=30, kinds=KINDS, seed=7)
    b = simulate_hze(f, effects={"armut": 0.3}, rate_per_1000=30, kinds=KINDS, seed=7)
    c = simulate_hze(f, effects={"armut": 0.3}, rate_per_1000=30, kinds=KINDS, seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert not a["hze_cases"].equals(c["hze_cases"])


def test_citywide_rate_and_effect_direction():
    f = _frame(2000)
    s = simulate_hze(f, effects={"armut": 0.4}, rate_per_1000=30, kinds=KINDS, alpha=0.0, seed=3)
    rate = s["hze_cases"].sum() / f["pop_u21"].sum() * 1000
    assert rate == pytest.approx(30, rel=0.02)
    high = f["armut"] > f["armut"].median()
    r_high = s.loc[high, "hze_cases"].sum() / f.loc[high, "pop_u21"].sum()
    r_low = s.loc[~high, "hze_cases"].sum() / f.loc[~high, "pop_u21"].sum()
    assert r_high / r_low > 1.5


def test_kinds_add_up_and_costs_are_whole_euros():
    f = _frame()
    s = simulate_hze(f, effects={"armut": 0.3}, rate_per_1000=30, kinds=KINDS, seed=1,
                     budget_kinds=["ambulant", "teilstationaer"])
    kinds = ["ambulant", "teilstationaer", "stationaer"]
    assert (sum(s[f"hze_cases_{k}"] for k in kinds) == s["hze_cases"]).all()
    assert (sum(s[f"hze_cases_prev_{k}"] for k in kinds) == s["hze_cases_prev"]).all()
    assert s["hze_cost_prev_eur"].dtype.kind == "i"
    assert (s["hze_cost_prev_eur"] == s["hze_cost_prev_ambulant_eur"] + s["hze_cost_prev_teilstationaer_eur"]).all()
    # mean cost per ambulant case close to the stated cost per case
    per_case = s["hze_cost_prev_ambulant_eur"].sum() / s["hze_cases_prev_ambulant"].sum()
    assert per_case == pytest.approx(7000, rel=0.03)


def test_missing_indicator_is_a_clear_error():
    with pytest.raises(GeoplanError, match="armutt"):
        simulate_hze(_frame(), effects={"armutt": 0.3}, rate_per_1000=30, kinds=KINDS)
