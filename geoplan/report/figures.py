"""Report figures (matplotlib, Agg backend) as PNG bytes, deterministic.

PNG metadata is fixed so the same result gives byte-identical files.
"""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from geoplan import fmt  # noqa: E402

plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False, "svg.hashsalt": "geoplan"})


def png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=150, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _de_axis(ax, axis="y", decimals=0, unit=""):
    from matplotlib.ticker import FuncFormatter

    f = FuncFormatter(lambda v, _: fmt.number(v, decimals) + unit)
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(f)


def coefficient_plot(coefs: pd.DataFrame, lang: str = "de") -> bytes:
    """Incidence rate ratios per SD with 95 % CI (forest plot)."""
    c = coefs[coefs["term"] != "const"].copy() if "term" in coefs else coefs
    c = c[~c["term"].astype(str).str.lower().isin(["const", "intercept", "konstante"])]
    labels = c["label"] if "label" in c.columns else c["term"]
    fig, ax = plt.subplots(figsize=(7.5, 0.6 * len(c) + 1.6))
    y = np.arange(len(c))[::-1]
    ax.errorbar(c["irr"], y, xerr=[c["irr"] - c["irr_low"], c["irr_high"] - c["irr"]], fmt="o", color="#1f4e79",
                ecolor="#1f4e79", capsize=3)
    ax.axvline(1.0, color="#888", lw=1, ls="--")
    ax.set_yticks(y, labels)
    ax.set_xlabel("Inzidenzratenverhältnis je Standardabweichung (95-%-KI)" if lang == "de"
                  else "Incidence rate ratio per SD (95 % CI)")
    _de_axis(ax, "x", 2)
    return png_bytes(fig)


def concentration_curve_plot(curve: pd.DataFrame, ci: float, lang: str = "de") -> bytes:
    """Concentration curve of the budget (and of expected demand), Sozialräume ranked by need index."""
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    x = curve["pop_share_cum"].to_numpy(float)
    ax.plot([0, 1], [0, 1], color="#888", lw=1, ls="--", label="Gleichverteilung je Kopf" if lang == "de" else "Equal per head")
    if "need_share_cum" in curve.columns:
        ax.plot(x, curve["need_share_cum"].to_numpy(float), color="#2166ac", lw=1.5, ls=":",
                label="erwarteter Bedarf" if lang == "de" else "expected demand")
    ax.plot(x, curve["budget_share_cum"].to_numpy(float), color="#b2182b", lw=2,
            label=("Budget, Konzentrationsindex " if lang == "de" else "Budget, concentration index ") + fmt.number(ci, 3, lang))
    ax.set_xlabel("kumulierter Anteil Einwohner unter 21 (nach Bedarfsindex aufsteigend)" if lang == "de"
                  else "cumulative share of residents under 21 (ranked by need index)")
    ax.set_ylabel("kumulierter Anteil" if lang == "de" else "cumulative share")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    _de_axis(ax, "x", 1)
    _de_axis(ax, "y", 1)
    ax.legend(loc="upper left", frameon=False)
    return png_bytes(fig)


def budget_vs_need_plot(frame: pd.DataFrame, lang: str = "de") -> bytes:
    """Budget per resident under 21 against expected cases per 1,000 under 21."""
    fig, ax = plt.subplots(figsize=(6.0, 4.4))
    ax.scatter(frame["expected_per_1000"], frame["budget_per_u21"], s=18, color="#2166ac")
    ax.set_xlabel("erwartete HzE-Fälle je 1.000 unter 21" if lang == "de" else "expected HzE cases per 1,000 under 21")
    ax.set_ylabel("Budget je Einwohner unter 21 (€)" if lang == "de" else "budget per resident under 21 (€)")
    _de_axis(ax, "y", 0)
    _de_axis(ax, "x", 0)
    return png_bytes(fig)


def funnel_plot_png(funnel: pd.DataFrame, mask: np.ndarray | None = None, lang: str = "de") -> bytes:
    """Observed/expected ratio against expected cases with exact control limits (ratios).

    Uses the negative binomial limits when the model has them (overdispersion),
    else exact Poisson limits (Spiegelhalter 2005). Points of areas whose
    counts are suppressed are not drawn: ratio and expected value together
    would reveal the count.
    """
    fig, ax = plt.subplots(figsize=(6.0, 4.4))
    suffix = "_nb" if "lo95_nb" in funnel.columns else ""
    fs = funnel.sort_values("expected")
    e = fs["expected"].to_numpy(float)
    for lvl, style, lab in (("95", "--", "95 %"), ("998", ":", "99,8 %")):
        ax.plot(e, fs[f"lo{lvl}{suffix}"], color="#555", ls=style, lw=1, label=lab)
        ax.plot(e, fs[f"hi{lvl}{suffix}"], color="#555", ls=style, lw=1)
    show = np.ones(len(funnel), bool) if mask is None else ~np.asarray(mask, bool)
    flag = funnel.get(f"flag{suffix}", pd.Series("", index=funnel.index)).astype(str).str.len().to_numpy() > 0
    pts = funnel[show]
    ax.scatter(pts["expected"], pts["ratio"], s=16, c=np.where(flag[show], "#b2182b", "#2166ac"), zorder=3)
    ax.axhline(1.0, color="#888", lw=1)
    ax.set_xlabel("erwartete Fälle" if lang == "de" else "expected cases")
    ax.set_ylabel("beobachtet / erwartet" if lang == "de" else "observed / expected")
    _de_axis(ax, "y", 2)
    _de_axis(ax, "x", 0)
    title = ("Kontrollgrenzen (negativ-binomial)" if suffix else "Kontrollgrenzen (Poisson)") if lang == "de" else "control limits"
    ax.legend(frameon=False, title=title)
    return png_bytes(fig)
