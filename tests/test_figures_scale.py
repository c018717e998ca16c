"""Per-area charts stay readable at 10,000 Sozialräume (issue 15)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from PIL import Image

from geoplan.report import figures


def _frame(n, seed=0):
    rng = np.random.default_rng(seed)
    b = rng.uniform(1e5, 3e6, n)
    return pd.DataFrame({
        "label": [f"Raum {i}" for i in range(n)],
        "distance_to_target_eur": rng.normal(0, 2e5, n),
        "budget_eur": b, "p05_eur": b * 0.9, "p50_eur": b, "p95_eur": b * 1.1,
    })


def test_small_projects_keep_one_bar_per_area():
    f = _frame(58)
    for plot in (figures.distance_plot, figures.sensitivity_plot):
        png = plot(f)
        assert png == plot(f, max_areas=10**9)  # below the limit nothing changes
        assert Image.open(io.BytesIO(png)).size[1] > 0.16 * 58 * 150 * 0.8


def test_large_projects_show_extremes_only():
    f = _frame(2_000)
    for plot in (figures.distance_plot, figures.sensitivity_plot):
        h = Image.open(io.BytesIO(plot(f))).size[1]
        assert h < (0.16 * 51 + 2.0) * 150  # 25 + "…" + 25 rows, not 2,000
    sub, note = figures._extremes(f.sort_values("budget_eur"), 300, "de")
    assert len(sub) == 51 and sub["label"].iloc[25] == "…"
    assert sub["budget_eur"].iloc[0] == f["budget_eur"].min() and sub["budget_eur"].iloc[-1] == f["budget_eur"].max()
    assert "2.000" in note and "verteilung.xlsx" in note
    assert "2,000" in figures._extremes(f, 300, "en")[1]
