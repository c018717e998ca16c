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


def test_per_area_charts_lay_out_like_constrained_layout(monkeypatch):
    # issue 10/15: the per-area charts are laid out in one pass (row labels as plain texts); the result is
    # constrained layout's, every label inside the figure
    f = _frame(58)
    seen = []

    def keep(fig, dpi):
        renderer = fig.canvas.get_renderer()
        texts = [t for t in fig.axes[0].texts if t.get_text()]
        inside = all(fig.bbox.contains(*e.p0) and fig.bbox.contains(*e.p1)
                     for e in (fig.axes[0].get_tightbbox(renderer),))
        seen.append((fig.axes[0].get_position().bounds, [t.get_text() for t in texts], inside))
        return b""

    monkeypatch.setattr(figures, "figure_png", keep)
    for plot in (figures.distance_plot, figures.sensitivity_plot):
        plot(f)
        with monkeypatch.context() as m:
            m.setattr(figures, "_fit_one_pass", lambda fig: False)  # constrained layout instead
            plot(f)
    for (one, labels, inside), (constrained, labels_cl, inside_cl) in zip(seen[::2], seen[1::2]):
        assert np.allclose(one, constrained, atol=1e-3)
        assert sorted(labels) == sorted(f["label"]) and labels == labels_cl
        assert inside and inside_cl
