"""The street directory (Straßenverzeichnis): street + house number -> area key.

German cities keep a table of street sections: street name, first and last
house number of the section, which side (odd, even or all numbers) and the
key of the statistical area (block, Planungsraum, Sozialraum) it lies in.
:func:`read_street_directory` reads such a table through the project's table
reader; :class:`StreetDirectory` looks addresses up.

Normalisation (both for the directory and for the addresses looked up):
case and blanks ignored; ``ä ö ü ß`` = ``ae oe ue ss``; ``Str.``, ``Str``,
``-str.``, ``Straße``, ``Strasse`` all become ``strasse`` (also inside
compounds: ``Hauptstr.`` = ``Hauptstraße``); ``Pl.`` = ``Platz``;
hyphens, dots and blanks between words do not matter (``Karl-Marx-Str.`` =
``Karl Marx Straße``). House numbers: the leading integer counts (``12a``,
``12 A``, ``12-14``, ``12/1`` -> 12); the letter suffix never moves an
address out of its number's section.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from geoplan.errors import GeoplanError, QANote
from geoplan.load.tables import read_table

__all__ = ["normalize_street", "house_number", "StreetDirectory", "read_street_directory"]

_UMLAUTS = (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss"), ("é", "e"), ("è", "e"))


def normalize_street(name) -> str | None:
    """Comparable form of a street name, or None for an empty one.

    >>> normalize_street("Karl-Marx-Str."), normalize_street("Karl Marx Straße")
    ('karlmarxstrasse', 'karlmarxstrasse')
    >>> normalize_street("Müllerstr"), normalize_street("Muellerstrasse")
    ('muellerstrasse', 'muellerstrasse')
    """
    if name is None or (isinstance(name, float) and np.isnan(name)):
        return None
    t = str(name).strip().casefold()
    if not t:
        return None
    for a, b in _UMLAUTS:
        t = t.replace(a, b)
    # "Str." / "str" / "Strasse" at a word end, also inside compounds (Hauptstr.)
    t = re.sub(r"str(?:\.|asse\b|\b)", "strasse", t)
    t = re.sub(r"pl(?:\.|\b)", "platz", t)
    t = re.sub(r"[^a-z0-9]", "", t)
    return t or None


_RE_NUMBER = re.compile(r"^\s*(\d+)")


def house_number(value) -> int | None:
    """The integer part of a house number (``12a`` -> 12, ``12-14`` -> 12), or None."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    m = _RE_NUMBER.match(str(value))
    return int(m.group(1)) if m else None


_PARITY = {
    "": "alle", "alle": "alle", "a": "alle", "f": "alle", "fortlaufend": "alle", "0": "alle", "beide": "alle",
    "gerade": "gerade", "g": "gerade", "2": "gerade", "even": "gerade",
    "ungerade": "ungerade", "u": "ungerade", "1": "ungerade", "odd": "ungerade",
}


def _parity(value) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "alle"
    t = str(value).strip().casefold()
    t = re.sub(r"\.0$", "", t)
    return _PARITY.get(t)


@dataclass
class StreetDirectory:
    """Street sections: ``street`` (normalised), ``lo``/``hi`` (int, inclusive; NaN = open), ``parity``, ``key``.

    :meth:`lookup` returns the key of the section that contains the address;
    an address in no section is a miss, one in sections with different keys
    is ambiguous (both give None; :meth:`lookup_many` says which).
    """

    sections: pd.DataFrame
    notes: list[QANote] = field(default_factory=list)

    def __post_init__(self):
        self._by_street = {s: g for s, g in self.sections.groupby("street", sort=False)}

    def lookup(self, street, number) -> str | None:
        return self._find(street, number)[0]

    def _find(self, street, number) -> tuple[str | None, str]:
        s = normalize_street(street)
        if s is None:
            return None, "ohne_adresse"
        g = self._by_street.get(s)
        if g is None:
            return None, "strasse_unbekannt"
        n = house_number(number)
        if n is None:
            keys = g["key"].unique()
            return (str(keys[0]), "ok") if len(keys) == 1 else (None, "mehrdeutig")
        lo = g["lo"].to_numpy(float)
        hi = g["hi"].to_numpy(float)
        par = g["parity"].to_numpy()
        inside = (np.isnan(lo) | (lo <= n)) & (np.isnan(hi) | (n <= hi))
        inside &= (par == "alle") | ((par == "gerade") & (n % 2 == 0)) | ((par == "ungerade") & (n % 2 == 1))
        keys = pd.unique(g["key"].to_numpy()[inside])
        if len(keys) == 1:
            return str(keys[0]), "ok"
        return None, ("nummer_unbekannt" if len(keys) == 0 else "mehrdeutig")

    def lookup_many(self, streets, numbers) -> tuple[list[str | None], list[str]]:
        """Keys and outcomes (``ok``, ``ohne_adresse``, ``strasse_unbekannt``, ``nummer_unbekannt``, ``mehrdeutig``)."""
        keys, outcome = [], []
        for s, n in zip(streets, numbers):
            k, o = self._find(s, n)
            keys.append(k)
            outcome.append(o)
        return keys, outcome


def directory_from_frame(frame: pd.DataFrame, *, street: str, number_from: str, number_to: str,
                         parity: str | None, key: str, file: str | None = None) -> StreetDirectory:
    """Build a :class:`StreetDirectory` from a frame with the named columns (no disk)."""
    for c in [street, number_from, number_to, key, *([parity] if parity else [])]:
        if c not in frame.columns:
            raise GeoplanError(
                f"Spalte {c!r} fehlt im Straßenverzeichnis.",
                file=file,
                found="Spalten: " + ", ".join(repr(x) for x in frame.columns),
                hint="Spaltennamen in hze.case_list.street_directory anpassen.",
                message_en=f"Column {c!r} is missing in the street directory.",
                hint_en="Adjust the column names in hze.case_list.street_directory.",
            )
    par = [(_parity(v) if parity else "alle") for v in (frame[parity] if parity else [None] * len(frame))]
    bad = [i for i, p in enumerate(par) if p is None]
    if bad:
        raise GeoplanError(
            "Unbekannte Angabe der Straßenseite im Straßenverzeichnis.",
            file=file,
            location="Zeilen " + ", ".join(str(i + 2) for i in bad[:10]),
            expected="gerade / ungerade / alle (auch g, u, a, 2, 1, 0, leer)",
            found=repr(str(frame[parity].iloc[bad[0]])),
            hint="Werte der Spalte vereinheitlichen.",
            message_en="Unknown side (odd/even/all) in the street directory.",
            expected_en="gerade / ungerade / alle (even / odd / all; also g, u, a, 2, 1, 0, empty)",
            hint_en="Make the values of the column uniform.",
        )

    def num(v):
        n = house_number(v)
        return np.nan if n is None else float(n)

    sections = pd.DataFrame({
        "street": [normalize_street(v) for v in frame[street]],
        "lo": [num(v) for v in frame[number_from]],
        "hi": [num(v) for v in frame[number_to]],
        "parity": par,
        "key": frame[key].astype(str).str.strip().to_numpy(),
    })
    sections = sections[sections["street"].notna()].reset_index(drop=True)
    notes = []
    flipped = (sections["lo"] > sections["hi"]).to_numpy()
    if flipped.any():
        lo = sections.loc[flipped, "lo"].copy()
        sections.loc[flipped, "lo"] = sections.loc[flipped, "hi"]
        sections.loc[flipped, "hi"] = lo
        notes.append(QANote("hze", f"{int(flipped.sum())} Abschnitte im Straßenverzeichnis mit 'von' > 'bis' "
                            "als umgekehrt gelesen.", level="info", file=file,
                            message_en=f"{int(flipped.sum())} sections of the street directory with 'from' > 'to' "
                            "read the other way round."))
    return StreetDirectory(sections, notes)


def read_street_directory(path, *, street: str = "Straße", number_from: str = "von", number_to: str = "bis",
                          parity: str | None = "Seite", key: str = "Schlüssel", sheet=None,
                          encoding: str | None = None) -> StreetDirectory:
    """Read a Straßenverzeichnis (CSV/XLSX) through :func:`geoplan.load.tables.read_table`."""
    cols = [c for c in (street, number_from, number_to, parity, key) if c]
    res = read_table(Path(path), key=street, sheet=sheet, encoding=encoding, allow_duplicates=True,
                     allow_mixed_key_lengths=True, text_columns=[c for c in cols if c != street])
    d = directory_from_frame(res.frame, street=res.key, number_from=number_from, number_to=number_to,
                             parity=parity, key=key, file=str(path))
    d.notes[:0] = [n for n in res.notes if not n.details.get("duplicates")]
    return d
