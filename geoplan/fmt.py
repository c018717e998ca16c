"""German (and English) number formatting for reports, maps and CLI output.

German: 1.234,56 € ; English: €1,234.56. Missing values print as an en dash.
"""

from __future__ import annotations

import math

_DASH = "–"


def _is_missing(x) -> bool:
    """None, NaN or pandas.NA (whose comparison raises TypeError)."""
    try:
        return x is None or (isinstance(x, float) and math.isnan(x)) or bool(x != x)
    except (TypeError, ValueError):
        return True


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


def euro(x, decimals: int = 0, lang: str = "de", sep: str = " ") -> str:
    """Format an amount in EUR: ``euro(1234.56, 2) == '1.234,56 €'``; English ``€1,234.56``, ``−€5``.

    ``sep`` goes between number and unit (maps use a no-break space).
    """
    if _is_missing(x):
        return _DASH
    n = number(x, decimals, lang)
    if lang == "de":
        return f"{n}{sep}€"
    return f"−€{n[1:]}" if n.startswith("−") else f"€{n}"


def percent(x, decimals: int = 1, lang: str = "de", sep: str = " ") -> str:
    """Format a value that is already in percent: ``percent(12.34) == '12,3 %'``."""
    if _is_missing(x):
        return _DASH
    return f"{number(x, decimals, lang)}{sep}%" if lang == "de" else f"{number(x, decimals, lang)}%"


#: display kinds of map layers and legends, with their usual decimals (``zahl``: 0 for whole numbers, else 1)
KINDS = {"euro": 2, "prozent": 1, "zahl": None, "index": 2}
LANGS = ("de", "en")
NBSP = "\u00a0"


def by_kind(x, kind: str = "zahl", decimals: int | None = None, lang: str = "de", sep: str = NBSP) -> str:
    """Format ``x`` as one of :data:`KINDS` (the maps' formats): ``by_kind(1234.56, "euro") == '1.234,56\u00a0€'``.

    ``euro`` → :func:`euro`, ``prozent`` → :func:`percent`, ``zahl`` and ``index`` → :func:`number`; the
    number and its unit are joined by ``sep`` (a no-break space by default). Unknown kinds or languages
    raise :class:`geoplan.errors.GeoplanError`.
    """
    from geoplan.errors import GeoplanError

    if lang not in LANGS:
        raise GeoplanError(f"Unbekannte Sprache '{lang}'.", expected="de oder en", found=str(lang),
                           message_en=f"Unknown language '{lang}'.")
    if kind not in KINDS:
        raise GeoplanError(f"Unbekanntes Zahlenformat '{kind}'.", expected=", ".join(KINDS), found=str(kind),
                           message_en=f"Unknown number format '{kind}'.")
    if _is_missing(x):
        return _DASH
    if decimals is None:
        decimals = KINDS[kind] if KINDS[kind] is not None else (0 if float(x).is_integer() else 1)
    if kind == "euro":
        return euro(x, decimals, lang, sep)
    if kind == "prozent":
        return percent(x, decimals, lang, sep)
    return number(x, decimals, lang)


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
