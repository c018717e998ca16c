"""Per-area charts stay readable at 10,000 Sozialräume (issue 15)."""

from __future__ import annotations

import io

import numpy as np
import pytest
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


def test_png_has_the_figures_pixels_and_resolution():
    # issue 10/15: the PNG is written by geoplan.report.png (rows unfiltered) — the same pixels as Agg's buffer
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from geoplan.report import png

    fig, ax = plt.subplots(figsize=(3.0, 2.0))
    ax.plot([0, 1, 2], [1, 0, 2], lw=2)
    ax.set_title("Ä 1,5")
    data = png.figure_png(fig, 110)
    assert isinstance(fig.canvas, FigureCanvasAgg)
    rgba = np.asarray(fig.canvas.buffer_rgba()).copy()
    plt.close(fig)
    img = Image.open(io.BytesIO(data))
    assert img.mode == "RGB" and img.size == (330, 220)
    assert img.info["dpi"] == pytest.approx((110, 110), abs=0.01)
    assert np.array_equal(np.asarray(img), rgba[..., :3])
    assert data == png.encode_png(rgba[..., :3], 110)  # deterministic
    translucent = rgba.copy()
    translucent[0, 0, 3] = 10
    back = Image.open(io.BytesIO(png.encode_png(translucent, 72)))
    assert back.mode == "RGBA" and np.array_equal(np.asarray(back), translucent)
    with pytest.raises(ValueError):
        png.encode_png(rgba[..., 0], 72)


def test_one_pass_layout_falls_back_to_constrained_layout(monkeypatch):
    # when the ticks change after placing, the axes is put back and constrained layout places it (set_position
    # takes an axes out of constrained layout: it must be put back in)
    import matplotlib.axis

    seen = []
    monkeypatch.setattr(figures, "figure_png", lambda fig, dpi: seen.append(fig.axes[0].get_position().bounds) or b"")
    f = _frame(58)
    with monkeypatch.context() as m:
        m.setattr(figures, "_fit_one_pass", lambda fig: False)
        figures.distance_plot(f)  # constrained layout
    calls = iter(range(10**6))
    with monkeypatch.context() as m:  # every tick query gives other ticks: the one-pass layout gives up
        m.setattr(matplotlib.axis.Axis, "get_majorticklocs", lambda self: np.array([next(calls)]))
        fig, ax = figures.plt.subplots()
        ax.set_position([0.2, 0.2, 0.5, 0.5])
        ax.set_in_layout(True)
        assert figures._fit_one_pass(fig) is False
        assert ax.get_in_layout() and np.allclose(ax.get_position(original=True).bounds, (0.2, 0.2, 0.5, 0.5))
        figures.plt.close(fig)
    real_fit = figures._fit_one_pass

    def failing_fit(fig):
        with monkeypatch.context() as m:
            m.setattr(matplotlib.axis.Axis, "get_majorticklocs", lambda self: np.array([next(calls)]))
            return real_fit(fig)

    monkeypatch.setattr(figures, "_fit_one_pass", failing_fit)
    figures.distance_plot(f)
    assert np.allclose(seen[0], seen[1], atol=1e-3)  # constrained layout's place, not where the one pass left it


def test_tick_labels_show_their_ticks_exactly():
    # the cross-validation chart's error axis (0 decimals, 0–15) had ticks every 2.5 labelled "0, 2, 5, 8, 10, 12, 15"
    from matplotlib.ticker import AutoLocator

    import matplotlib.pyplot as plt

    for decimals, (lo, hi) in ((0, (0, 15.5)), (0, (0, 3.2)), (1, (0, 0.6)), (0, (-8, 104)), (2, (0.8, 1.7))):
        fig, ax = plt.subplots(figsize=(3.5, 2.0))
        ax.set_xlim(lo, hi)
        figures._de_axis(ax, "x", decimals)
        ticks = ax.xaxis.get_majorticklocs()
        assert np.allclose(np.round(ticks, decimals), ticks)
        default = AutoLocator()
        default.set_axis(ax.xaxis)
        auto = default()
        if np.allclose(np.round(auto, decimals), auto):
            assert np.array_equal(ticks, auto)  # where the default ticks are shown exactly, they stay
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(3.5, 2.0))
    ax.set_xlim(0, 15.5)
    auto = AutoLocator()
    auto.set_axis(ax.xaxis)
    assert not np.allclose(np.round(auto(), 0), auto())  # the case above is a real one
    plt.close(fig)


@pytest.mark.parametrize("lang", ["de", "en"])
def test_nothing_in_the_demo_figures_runs_over_their_edge(demo_result, monkeypatch, lang):
    """Every chart and map of the report keeps a blank margin: nothing drawn touches the PNG's edge, where it
    would be cut off (the coefficient plot's axis label, wider than its axes, ended in the last column)."""
    from geoplan.report import drawjobs
    from geoplan.report.html import report_context
    from geoplan.report.i18n import set_labels
    from geoplan.report.published import build_published

    drawn = {}
    original = drawjobs.Figures.draw

    def keep(self):
        pngs = original(self)
        drawn.update(pngs)
        return pngs

    monkeypatch.setattr(drawjobs.Figures, "draw", keep)
    set_labels(demo_result)
    report_context(demo_result, build_published(demo_result, lang=lang), lang=lang)
    assert len(drawn) >= 13
    for key, png in drawn.items():
        rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
        ink = np.abs(rgb - rgb[0, 0]).sum(axis=2) > 30  # differs from the background (the corner's colour)
        assert not (ink[0].any() or ink[-1].any() or ink[:, 0].any() or ink[:, -1].any()), key
