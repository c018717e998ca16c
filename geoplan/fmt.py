"""German (and English) number formatting for reports, maps and CLI output.

German: 1.234,56 € ; English: €1,234.56. Missing values print as an en dash.
"""

from __future__ import annotations

import math

_DASH = "–"


def _is_missing(x) -> bool:
    try:
        return x is None or (isinstance(x, float) and math.isnan(x)) or x != x
    except (TypeError, ValueError):
        return False


def number(x, decimals: int = 0, lang: str = "de") -> str:
    """Format a number with grouping: ``number(1234.5, 1) == '1.234,5'``.

    Negative values get the typographic minus, except where they round to zero.
    """
    if _is_missing(x):
        return _DASH
    v = float(x)
    en = f"{abs(v):,.{decimals}f}"
    s = en.replace(",", "\u2009").replace(".", ",").replace("\u2009", ".") if lang == "de" else en
    if v < 0 and float(en.replace(",", "")) != 0:
        s = "−" + s
    return s


def euro(x, decimals: int = 0, lang: str = "de") -> str:
    """Format an amount in EUR: ``euro(1234.56, 2) == '1.234,56 €'``."""
    if _is_missing(x):
        return _DASH
    n = number(x, decimals, lang)
    return f"{n} €" if lang == "de" else f"€{n}"


def percent(x, decimals: int = 1, lang: str = "de") -> str:
    """Format a value that is already in percent: ``percent(12.34) == '12,3 %'``."""
    if _is_missing(x):
        return _DASH
    return f"{number(x, decimals, lang)} %" if lang == "de" else f"{number(x, decimals, lang)}%"


def signed(x, decimals: int = 1, lang: str = "de", unit: str = "") -> str:
    """Number with explicit sign (+/−) for changes."""
    if _is_missing(x):
        return _DASH
    s = number(abs(x), decimals, lang)
    sign = "+" if x > 0 else ("−" if x < 0 else "±")
    return f"{sign}{s}{unit}"


def pvalue(p, lang: str = "de") -> str:
    """A p-value for running text: ``pvalue(0.0004) == 'p < 0,001'``, ``pvalue(0.0234) == 'p = 0,023'``."""
    if _is_missing(p):
        return _DASH
    if p < 0.001:
        return "p < 0,001" if lang == "de" else "p < 0.001"
    return f"p = {number(p, 3, lang)}"
