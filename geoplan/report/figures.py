"""Report figures (matplotlib, Agg backend) as PNG bytes, deterministic.

PNG metadata is fixed so the same result gives byte-identical files.
"""

from __future__ import annotations

import base64

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from geoplan import fmt  # noqa: E402
from geoplan.report.i18n import gettext  # noqa: E402
from geoplan.report.png import figure_png  # noqa: E402

plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False, "svg.hashsalt": "geoplan"})


#: Resolution of the figures: they print at most 180 mm (7.1 in) wide — two side by side at 86 mm, the tall
#: per-area charts at most 170 mm high —, so 130 dpi (110 for the smaller ones) gives 130–230 dpi on paper.
DPI, DPI_SMALL = 130, 110


def png_bytes(fig) -> bytes:
    """The figure as PNG, laid out by matplotlib's constrained layout and drawn once.

    (``bbox_inches="tight"`` drew every figure twice: once to find the
    bounding box, once to save; ``savefig`` with a layout engine draws every
    artist once more, rendering switched off, only to run the layout — so the
    layout runs here alone.) The per-area charts are laid out in one pass
    (:func:`_fit_one_pass`). Figures up to 6 in wide (printed two side by
    side) and the tall per-area charts get :data:`DPI_SMALL`.
    """
    w, h = fig.get_size_inches()
    dpi = DPI_SMALL if w <= 6.0 or h > 8.0 else DPI
    if not getattr(fig, "geoplan_fixed_layout", False):  # the waterfall grid sets its margins itself
        fig.set_dpi(dpi)  # the layout at the output's dpi
        if not (getattr(fig, "geoplan_one_pass", False) and _fit_one_pass(fig)):
            fig.set_layout_engine("constrained")
            fig.get_layout_engine().execute(fig)
            fig.set_layout_engine("none")
    png = figure_png(fig, dpi)
    plt.close(fig)
    return png


#: Padding (in) between the decorations of a one-pass layout and the figure edge (constrained layout's w_pad/h_pad).
PAD_IN = 3 / 72


def _fit_one_pass(fig) -> bool:
    """Place the figure's single axes so that it and its labels fill the figure with :data:`PAD_IN` around.

    For the per-area charts (``fig.geoplan_one_pass``): their row labels sit on
    fixed rows and decide the layout. Constrained layout measures every label,
    places the axes, and measures again, because the new axes size may bring
    other ticks; here the second measurement is skipped when the ticks are the
    same after placing (only a tick label at the very end of the value axis
    may then move by a pixel or two, well inside the padding). Returns False
    (axes left where they were) when the ticks changed; the caller then runs
    constrained layout.
    """
    (ax,) = fig.axes
    w, h = fig.get_size_inches() * fig.dpi
    renderer = fig.canvas.get_renderer()
    ticks = [a.get_majorticklocs().tolist() for a in (ax.xaxis, ax.yaxis)]
    box = ax.get_window_extent(renderer)
    tight = ax.get_tightbbox(renderer, for_layout_only=True)
    pad = PAD_IN * fig.dpi
    left, right = box.x0 - tight.x0 + pad, tight.x1 - box.x1 + pad
    bottom, top = box.y0 - tight.y0 + pad, tight.y1 - box.y1 + pad
    before = ax.get_position(original=True)
    ax.set_position([left / w, bottom / h, 1 - (left + right) / w, 1 - (bottom + top) / h])
    if [a.get_majorticklocs().tolist() for a in (ax.xaxis, ax.yaxis)] == ticks:
        return True
    ax.set_position(before)
    ax.set_in_layout(True)  # set_position took the axes out of constrained layout, which now places it
    return False


def _tick_labels(ax, axis: str, positions: np.ndarray, labels, fontsize: float, rotation: float = 0) -> None:
    """One label per bar beside the ``axis`` ("x" below, "y" left), looking like tick labels with their marks.

    Plain texts and one line of tick markers: a chart of 58 areas otherwise
    builds, lays out and draws 58 tick objects of five artists each (the
    pixels are the same).
    """
    from matplotlib import markers
    from matplotlib.transforms import offset_copy

    rc = plt.rcParams
    size, width, pad = (rc[f"{axis}tick.major.{k}"] for k in ("size", "width", "pad"))
    zeros = np.zeros(len(positions))
    if axis == "y":
        ax.set_yticks([])
        beside = ax.get_yaxis_transform()  # x in axes fractions, y in data
        shifted = offset_copy(beside, fig=ax.figure, x=-(size + pad), units="points")
        xy, align, marker = list(zip(zeros, positions)), dict(ha="right", va="center_baseline"), markers.TICKLEFT
    else:
        ax.set_xticks([])
        beside = ax.get_xaxis_transform()  # x in data, y in axes fractions
        shifted = offset_copy(beside, fig=ax.figure, y=-(size + pad), units="points")
        xy, align, marker = list(zip(positions, zeros)), dict(ha="right" if rotation else "center", va="top"), markers.TICKDOWN
    for (x, y), text in zip(xy, labels):
        ax.text(x, y, str(text), transform=shifted, rotation=rotation, fontsize=fontsize, **align)
    ax.plot(*np.asarray(xy, float).reshape(-1, 2).T, ls="none", marker=marker, ms=size, mew=width,
            color=rc[f"{axis}tick.color"], transform=beside, clip_on=False)


def _bars(ax, y: np.ndarray, width: np.ndarray, colors, height: float = 0.8) -> None:
    """Horizontal bars from 0 to ``width`` centred on ``y``, like ``ax.barh``, as one collection.

    ``barh`` makes one patch per bar (and updates the data limits per bar); a
    chart of 58 areas spent 70 ms on it, one collection 6 ms. Same look: no
    edges, the value axis sticks to 0 as with ``barh``.
    """
    from matplotlib.collections import PolyCollection

    y0, y1 = y - height / 2, y + height / 2
    zeros = np.zeros(len(y))
    verts = np.stack([np.column_stack(c) for c in ((zeros, y0), (width, y0), (width, y1), (zeros, y1))], axis=1)
    bars = PolyCollection(verts, facecolors=colors, edgecolors="none", linewidths=0)
    bars.sticky_edges.x.append(0.0)
    ax.add_collection(bars)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _de_axis(ax, axis="y", decimals=0, unit="", lang="de"):
    """Tick labels with ``decimals`` decimals (German or English separators), at ticks they can show exactly."""
    f = FuncFormatter(lambda v, _: fmt.number(v, decimals, lang) + unit)
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(f)
    target.set_major_locator(ShownLocator(decimals))


class ShownLocator(MaxNLocator):
    """matplotlib's default ticks (those of AutoLocator), unless labels with ``decimals`` decimals would round
    them (steps of 2.5 at 0 decimals were labelled "0, 2, 5, 8, 10, 12, 15"): then steps of 1, 2 or 5 only,
    and whole numbers at 0 decimals."""

    def __init__(self, decimals: int):
        super().__init__(nbins="auto", steps=[1, 2, 2.5, 5, 10])
        self.decimals = decimals

    def tick_values(self, vmin, vmax):
        ticks = super().tick_values(vmin, vmax)
        if np.allclose(np.round(ticks, self.decimals), ticks, rtol=0, atol=1e-9 * max(1.0, np.abs(ticks).max())):
            return ticks
        self.set_params(steps=[1, 2, 5, 10], integer=self.decimals == 0)
        try:
            return super().tick_values(vmin, vmax)
        finally:
            self.set_params(steps=[1, 2, 2.5, 5, 10], integer=False)


def coefficient_plot(coefs: pd.DataFrame, lang: str = "de") -> bytes:
    """Incidence rate ratios per SD with 95 % CI (forest plot)."""
    _ = gettext(lang)
    c = coefs[coefs["term"] != "const"].copy() if "term" in coefs else coefs
    c = c[~c["term"].astype(str).str.lower().isin(["const", "intercept", "konstante"])]
    labels = c["label"] if "label" in c.columns else c["term"]
    fig, ax = plt.subplots(figsize=(7.5, 0.6 * len(c) + 1.6))
    y = np.arange(len(c))[::-1]
    ax.errorbar(c["irr"], y, xerr=[c["irr"] - c["irr_low"], c["irr_high"] - c["irr"]], fmt="o", color="#1f4e79",
                ecolor="#1f4e79", capsize=3)
    ax.axvline(1.0, color="#888", lw=1, ls="--")
    ax.set_yticks(y, labels)
    # right-aligned: the label is wider than the axes, and constrained layout leaves a label's width to it
    ax.set_xlabel(_("Inzidenzratenverhältnis je Standardabweichung (95-%-KI)"), loc="right")
    _de_axis(ax, "x", 2, lang=lang)
    return png_bytes(fig)


def concentration_curve_plot(curve: pd.DataFrame, ci: float, lang: str = "de") -> bytes:
    """Concentration curve of the budget (and of expected demand), Sozialräume ranked by need index."""
    _ = gettext(lang)
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    x = curve["pop_share_cum"].to_numpy(float)
    ax.plot([0, 1], [0, 1], color="#888", lw=1, ls="--", label=_("Gleichverteilung je Kopf"))
    if "need_share_cum" in curve.columns:
        ax.plot(x, curve["need_share_cum"].to_numpy(float), color="#2166ac", lw=1.5, ls=":",
                label=_("erwarteter Bedarf"))
    ax.plot(x, curve["budget_share_cum"].to_numpy(float), color="#b2182b", lw=2,
            label=(_("Budget, Konzentrationsindex ")) + fmt.number(ci, 3, lang))
    ax.set_xlabel(_("kumulierter Anteil Einwohner unter 21 (nach Bedarfsindex aufsteigend)"))
    ax.set_ylabel(_("kumulierter Anteil"))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    _de_axis(ax, "x", 1, lang=lang)
    _de_axis(ax, "y", 1, lang=lang)
    ax.legend(loc="upper left", frameon=False)
    return png_bytes(fig)


def budget_vs_need_plot(frame: pd.DataFrame, lang: str = "de") -> bytes:
    """Budget per resident under 21 against expected cases per 1,000 under 21."""
    _ = gettext(lang)
    fig, ax = plt.subplots(figsize=(6.0, 4.4))
    ax.scatter(frame["expected_per_1000"], frame["budget_per_u21"], s=18, color="#2166ac")
    ax.set_xlabel(_("erwartete HzE-Fälle je 1.000 unter 21"))
    ax.set_ylabel(_("Budget je Einwohner unter 21 (€)"))
    _de_axis(ax, "y", 0, lang=lang)
    _de_axis(ax, "x", 0, lang=lang)
    return png_bytes(fig)


def funnel_plot_png(funnel: pd.DataFrame, mask: np.ndarray | None = None, lang: str = "de") -> bytes:
    """Observed/expected ratio against expected cases with exact control limits (ratios).

    Uses the negative binomial limits when the model has them (overdispersion),
    else exact Poisson limits (Spiegelhalter 2005). Points of areas whose
    counts are suppressed are not drawn: ratio and expected value together
    would reveal the count.
    """
    _ = gettext(lang)
    fig, ax = plt.subplots(figsize=(6.0, 4.4))
    suffix = "_nb" if "lo95_nb" in funnel.columns else ""
    fs = funnel.sort_values("expected")
    e = fs["expected"].to_numpy(float)
    for lvl, style, lab in (("95", "--", "95 %"), ("998", ":", fmt.number(99.8, 1, lang) + " %")):
        ax.plot(e, fs[f"lo{lvl}{suffix}"], color="#555", ls=style, lw=1, label=lab)
        ax.plot(e, fs[f"hi{lvl}{suffix}"], color="#555", ls=style, lw=1)
    show = np.ones(len(funnel), bool) if mask is None else ~np.asarray(mask, bool)
    flag = funnel.get(f"flag{suffix}", pd.Series("", index=funnel.index)).astype(str).str.len().to_numpy() > 0
    pts = funnel[show]
    ax.scatter(pts["expected"], pts["ratio"], s=16, c=np.where(flag[show], "#b2182b", "#2166ac"), zorder=3)
    ax.axhline(1.0, color="#888", lw=1)
    ax.set_xlabel(_("erwartete Fälle"))
    ax.set_ylabel(_("beobachtet / erwartet"))
    _de_axis(ax, "y", 2, lang=lang)
    _de_axis(ax, "x", 0, lang=lang)
    title = _("Kontrollgrenzen (negativ-binomial)" if suffix else "Kontrollgrenzen (Poisson)")
    ax.legend(frameon=False, title=title, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=7)
    return png_bytes(fig)


def cv_plot(cv: pd.DataFrame, lang: str = "de") -> bytes:
    """Out-of-fold deviance explained (D², Poisson deviance) and mean absolute error
    (cases per 1,000 under 21) of the model's cross-validations and of the two
    baselines (prior-year cases; citywide rate × population under 21)."""
    _ = gettext(lang)
    c = cv.copy()
    labels = [_(str(v)) if lang == "en" and not str(v).startswith("Modell") else str(v) for v in c["label"]]
    if lang == "en":
        labels = [("Model, " + k.replace("model_", "").replace("kfold", "k-fold CV").replace("blocked", "spatially blocked CV"))
                  if k.startswith("model_") else lab for k, lab in zip(c.index, labels)]
    colors = ["#1f4e79" if str(k).startswith("model") else "#999999" for k in c.index]
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 0.5 * len(c) + 1.5), sharey=True)
    y = np.arange(len(c))[::-1]
    axes[0].barh(y, c["deviance_explained"].to_numpy(float) * 100, color=colors)
    axes[0].set_yticks(y, labels)
    axes[0].set_xlabel(_("erklärte Devianz") + " (%)")
    axes[0].axvline(0, color="#333", lw=0.8)
    axes[1].barh(y, c["mae_per_1000"].to_numpy(float), color=colors)
    axes[1].set_xlabel(_("mittlerer absoluter Fehler je 1.000 unter 21"))
    for ax, col, dec, mult in ((axes[0], "deviance_explained", 1, 100), (axes[1], "mae_per_1000", 1, 1)):
        for yi, v in zip(y, c[col].to_numpy(float) * mult):
            ax.text(max(v, 0), yi, " " + fmt.number(v, dec, lang), va="center", fontsize=8)
        _de_axis(ax, "x", 0, lang=lang)
    return png_bytes(fig)


def calibration_png(model_result, lang: str = "de") -> bytes:
    """Calibration by decile: observed against expected rate per 1,000 under 21
    (out-of-fold predictions of the k-fold cross-validation, ``model_result.calibration``)
    with the diagonal."""
    _ = gettext(lang)
    c = model_result.calibration
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    lim = [0, float(max(c["rate_expected_per_1000"].max(), c["rate_observed_per_1000"].max()) * 1.1)]
    ax.plot(lim, lim, color="0.5", lw=1, label=_("perfekte Kalibrierung"))
    ax.plot(c["rate_expected_per_1000"], c["rate_observed_per_1000"], "o-", color="tab:blue", label=_("Dezile"))
    for _i, row in c.iterrows():
        ax.annotate(str(int(row["decile"])), (row["rate_expected_per_1000"], row["rate_observed_per_1000"]), fontsize=7,
                    xytext=(3, -9), textcoords="offset points")
    ax.set_xlim(lim)
    ax.set_ylim(lim)
    ax.set_xlabel(_("Erwartete Fälle je 1.000 unter 21"))
    ax.set_ylabel(_("Beobachtete Fälle je 1.000 unter 21"))
    ax.set_title(_("Kalibrierung nach Dezilen des erwarteten Bedarfs"), fontsize=9, y=1.0)  # y: see waterfall_grid
    ax.legend(fontsize=7, loc="upper left")
    _de_axis(ax, "x", 0, lang=lang)
    _de_axis(ax, "y", 0, lang=lang)
    return png_bytes(fig)


def waterfall_grid(explanations: list[tuple[str, pd.DataFrame]], lang: str = "de") -> bytes:
    """Waterfall charts of several Sozialräume's budgets (EUR), one panel each.

    Each table has ``label``, ``amount_eur``, ``start_eur``, ``end_eur`` and
    ``position`` (component name, ``korridor``, ``budget``): bars for the
    components stack up, the corridor adjustment moves up or down, the last
    bar is the budget.
    """
    _ = gettext(lang)
    n = len(explanations)
    ncol = 3
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(10.0, 3.3 * nrow), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    for ax, (title, t) in zip(axes.ravel(), explanations):
        x = np.arange(len(t))
        lo = np.minimum(t["start_eur"], t["end_eur"]).to_numpy(float)
        h = np.abs(t["end_eur"] - t["start_eur"]).to_numpy(float)
        pos = t["position"].astype(str).to_numpy()
        colors = np.where(pos == "budget", "#333333",
                          np.where(pos == "korridor", np.where(t["amount_eur"].to_numpy() < 0, "#b2182b", "#1b7837"),
                                   "#4c72b0"))
        ax.bar(x, h / 1e6, bottom=lo / 1e6, color=list(colors), width=0.7)
        for xi, top, amount in zip(x, (lo + h) / 1e6, t["amount_eur"].to_numpy(float)):
            ax.text(xi, top, fmt.number(amount / 1e6, 2, lang), ha="center", va="bottom", fontsize=7)
        _tick_labels(ax, "x", x, t["short"], fontsize=7, rotation=30)
        # y given: matplotlib does not look for tick labels above the axes (it measured the whole y axis for that,
        # 20 % of this figure's time); nothing is above the axes here, so the title sits where it did
        ax.set_title(title, fontsize=8.5, y=1.0)
        ax.set_ylabel(_("Budget") + " (Mio. €)" if lang == "de" else "Budget (€ million)", fontsize=8)
        ax.margins(y=0.12)
        _de_axis(ax, "y", 1, lang=lang)
    # fixed margins in inches (constrained layout measured every text of the six panels: 2× the drawing time);
    # the rotated labels are short (the first word of a component's label)
    fig.subplots_adjust(left=0.06, right=0.99, top=1 - 0.3 / (3.3 * nrow), bottom=0.85 / (3.3 * nrow),
                        wspace=0.28, hspace=1.3 / 3.3 if nrow > 1 else 0.2)
    fig.geoplan_fixed_layout = True
    return png_bytes(fig)


# Above this many Sozialräume the per-area charts show only the smallest and
# largest EXTREMES areas (a chart of 10,000 bars would be 240,000 pixels tall);
# the full table is in verteilung.xlsx.
MAX_AREAS_PER_CHART = 300
EXTREMES = 25


def _extremes(frame: pd.DataFrame, max_areas: int, lang: str) -> tuple[pd.DataFrame, str]:
    """The sorted ``frame`` itself, or its first and last EXTREMES rows with a "…" row between."""
    n = len(frame)
    if n <= max_areas:
        return frame, ""
    gap = pd.DataFrame({c: [np.nan] for c in frame.columns}).assign(label="…")
    out = pd.concat([frame.iloc[:EXTREMES], gap, frame.iloc[-EXTREMES:]], ignore_index=True)
    note = (f"\n(die {EXTREMES} kleinsten und {EXTREMES} größten von {fmt.number(n, 0, lang)} Sozialräumen; "
            "alle in verteilung.xlsx)" if lang == "de" else
            f"\n(the {EXTREMES} smallest and {EXTREMES} largest of {fmt.number(n, 0, lang)} areas; all in verteilung.xlsx)")
    return out, note


def distance_plot(frame: pd.DataFrame, lang: str = "de", max_areas: int = MAX_AREAS_PER_CHART) -> bytes:
    """Distance from target per Sozialraum (target − prior-year allocation, EUR), sorted.

    ``frame`` has ``label`` and ``distance_to_target_eur``; bars right of zero are
    areas below their formula target (they gain over the coming years). Above
    ``max_areas`` areas only the smallest and largest 25 are drawn."""
    _ = gettext(lang)
    d, note = _extremes(frame.sort_values("distance_to_target_eur"), max_areas, lang)
    fig, ax = plt.subplots(figsize=(7.0, 0.16 * len(d) + 1.2))
    y = np.arange(len(d))
    v = np.nan_to_num(d["distance_to_target_eur"].to_numpy(float) / 1e6)  # the "…" row: no bar
    _bars(ax, y, v, np.where(v >= 0, "#2166ac", "#b2182b"))
    _tick_labels(ax, "y", y, d["label"], fontsize=6)
    ax.axvline(0, color="#333", lw=0.8)
    ax.set_xlabel(("Zielwert − Vorjahr (Mio. €)" if lang == "de" else "target − prior year (€ million)") + note)
    ax.set_ylim(-0.7, len(d) - 0.3)
    _de_axis(ax, "x", 1, lang=lang)
    fig.geoplan_one_pass = True
    return png_bytes(fig)


def sensitivity_plot(table: pd.DataFrame, lang: str = "de", max_areas: int = MAX_AREAS_PER_CHART) -> bytes:
    """Budget per Sozialraum (EUR) with the 5–95 % range of the Monte Carlo draws,
    sorted by the configured budget. ``table`` has ``label``, ``budget_eur``,
    ``p05_eur``, ``p50_eur``, ``p95_eur``. Above ``max_areas`` areas only the
    smallest and largest 25 are drawn."""
    _ = gettext(lang)
    t, note = _extremes(table.sort_values("budget_eur"), max_areas, lang)
    fig, ax = plt.subplots(figsize=(7.0, 0.16 * len(t) + 1.2))
    y = np.arange(len(t))
    b = t["budget_eur"].to_numpy(float) / 1e6
    ax.hlines(y, t["p05_eur"].to_numpy(float) / 1e6, t["p95_eur"].to_numpy(float) / 1e6, color="#6baed6", lw=3)
    ax.plot(b, y, "|", color="#08306b", markersize=8)
    _tick_labels(ax, "y", y, t["label"], fontsize=6)
    ax.set_xlabel(("Budget, konfiguriert und 5–95-%-Spanne (Mio. €)" if lang == "de"
                   else "Budget, configured and 5–95 % range (€ million)") + note)
    ax.set_ylim(-0.7, len(t) - 0.3)
    _de_axis(ax, "x", 1, lang=lang)
    fig.geoplan_one_pass = True
    return png_bytes(fig)
