"""Indicator catalogue (YAML): the models of one indicator and of the catalogue, and the loader.

See ``indicators/berlin/katalog.yaml``; :func:`load_catalogue` names the file,
the indicator and the field of every problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pydantic
import yaml

from geoplan.errors import GeoplanError

Unit = Literal["%", "je 1.000", "Anzahl", "Index", "Prozentpunkte"]
Direction = Literal["hoch = mehr Bedarf", "hoch = weniger Bedarf"]
Smoothing = Literal["keine", "eb_global", "eb_lokal"]
#: Multiplier from a proportion (events / base) to the unit of a rate.
RATE_SCALE: dict[str, float] = {"%": 100.0, "je 1.000": 1000.0}

Group = Literal["status", "kontext", "dynamik"]


# --------------------------------------------------------------------------- catalogue


class Indicator(pydantic.BaseModel, extra="forbid"):
    """One indicator of the catalogue.

    Either ``column`` (a share/rate already in the frame, e.g. the MSS shares
    in %) or ``numerator`` (a count column; the rate is numerator / base in
    ``unit``) must be given. ``base`` lists count columns (persons) whose sum is
    the population base: the weight when aggregating small areas to
    Sozialräume and the denominator for smoothing.
    """

    name: str
    label: str
    label_en: str | None = None
    column: str | None = None
    numerator: str | None = None
    base: list[str] = []
    unit: Unit
    direction: Direction
    weight: float = 1.0
    group: Group = "kontext"
    source: str
    reference_date: str
    licence: str | None = None
    smoothing: Smoothing = "keine"
    description: str | None = None

    @pydantic.field_validator("name")
    @classmethod
    def _name_is_identifier(cls, v: str) -> str:
        if not v.isidentifier():
            raise ValueError("name muss ein Spaltenname aus Buchstaben, Ziffern und _ sein")
        return v

    @pydantic.field_validator("weight")
    @classmethod
    def _weight_nonnegative(cls, v: float) -> float:
        if not np.isfinite(v) or v < 0:
            raise ValueError("weight muss eine Zahl >= 0 sein")
        return v

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> "Indicator":
        if (self.column is None) == (self.numerator is None):
            raise ValueError("genau eines von 'column' oder 'numerator' angeben")
        if self.numerator is not None and not self.base:
            raise ValueError("'numerator' braucht 'base' (Nenner-Spalten)")
        if self.numerator is not None and self.unit not in RATE_SCALE:
            raise ValueError("'numerator' nur mit unit '%' oder 'je 1.000'")
        if self.smoothing != "keine":
            if self.unit not in RATE_SCALE:
                raise ValueError("Glättung nur für Raten (unit '%' oder 'je 1.000')")
            if not self.base:
                raise ValueError("Glättung braucht 'base' (Nenner-Spalten)")
        return self

    @property
    def need_sign(self) -> float:
        """+1 if higher values mean more need, -1 otherwise."""
        return 1.0 if self.direction == "hoch = mehr Bedarf" else -1.0


class Catalogue(pydantic.BaseModel, extra="forbid"):
    """An indicator catalogue (printed in the report as Datengrundlage)."""

    title: str = "Indikatorenkatalog"
    notes: str | None = None
    indicators: list[Indicator]

    @pydantic.model_validator(mode="after")
    def _unique_names(self) -> "Catalogue":
        names = [i.name for i in self.indicators]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"Indikatornamen doppelt: {', '.join(dup)}")
        if not self.indicators:
            raise ValueError("mindestens ein Indikator nötig")
        return self

    def get(self, name: str) -> Indicator:
        for ind in self.indicators:
            if ind.name == name:
                return ind
        raise GeoplanError(
            f"Indikator '{name}' steht nicht im Katalog.",
            expected=", ".join(i.name for i in self.indicators),
            found=name, message_en=f"Indicator '{name}' is not in the catalogue.",
        )

    @property
    def index_indicators(self) -> list[Indicator]:
        """Indicators with weight > 0 (part of the composite need index)."""
        return [i for i in self.indicators if i.weight > 0]


def _loc(error: dict, raw: object) -> str:
    """Readable location of a pydantic error, naming the indicator where possible."""
    loc = list(error.get("loc", ()))
    parts: list[str] = []
    if len(loc) >= 2 and loc[0] == "indicators" and isinstance(loc[1], int):
        name = None
        try:
            name = raw["indicators"][loc[1]].get("name")  # type: ignore[index]
        except Exception:  # noqa: BLE001 - location is best effort
            name = None
        parts.append(f"indicators[{loc[1]}]" + (f" ('{name}')" if name else ""))
        loc = loc[2:]
    parts.extend(str(p) for p in loc)
    return ".".join(parts) if parts else "Katalog"


def _expected_for(error: dict, lang: str = "de") -> str | None:
    en = lang == "en"
    ctx = error.get("ctx") or {}
    if "expected" in ctx:
        return str(ctx["expected"]) if en else str(ctx["expected"]).replace(" or ", " oder ")
    if error.get("type") == "extra_forbidden":
        fields = sorted(Indicator.model_fields) if "indicators" in error.get("loc", ()) else sorted(Catalogue.model_fields)
        return ("one of the fields: " if en else "eines der Felder: ") + ", ".join(fields)
    if error.get("type") == "missing":
        return "required field" if en else "Pflichtfeld"
    return None


_PYDANTIC_DE = {
    "literal_error": "ungültiger Wert",
    "extra_forbidden": "unbekanntes Feld",
    "missing": "Pflichtfeld fehlt",
    "string_type": "Text erwartet",
    "float_type": "Zahl erwartet",
    "float_parsing": "Zahl erwartet",
    "list_type": "Liste erwartet",
    "model_type": "Zuordnung (Feld: Wert) erwartet",
    "dict_type": "Zuordnung (Feld: Wert) erwartet",
}


def _english_msg(error: dict) -> str:
    """pydantic's own (English) text for an error, or the English of a GeoplanError a validator raised."""
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, GeoplanError):
        return cause.text("en")
    return str(error.get("msg", error.get("type", ""))).removeprefix("Value error, ")


def _german_msg(error: dict) -> str:
    """German text for a pydantic error (own validators already raise German text)."""
    kind = error.get("type", "")
    if kind in _PYDANTIC_DE:
        return _PYDANTIC_DE[kind]
    msg = str(error.get("msg", kind))
    return msg.removeprefix("Value error, ")


def parse_catalogue(raw: object, *, file: str | Path | None = None) -> Catalogue:
    """Validate a catalogue given as a mapping (e.g. inline in the config).

    Raises GeoplanError naming ``file``, the indicator, the field and the allowed values.
    """
    if not isinstance(raw, dict):
        raise GeoplanError(
            "Indikatorenkatalog muss eine Zuordnung mit dem Schlüssel 'indicators' sein.",
            file=file, expected="title:, notes:, indicators: [...]", found=type(raw).__name__,
            message_en="The indicator catalogue must be a mapping with the key 'indicators'.",
        )
    try:
        return Catalogue.model_validate(raw)
    except pydantic.ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        found = first.get("input")
        more = f" (und {len(errors) - 1} weitere)" if len(errors) > 1 else ""
        others = "; ".join(f"{_loc(e, raw)}: {_german_msg(e)}" for e in errors[1:6])
        others_en = "; ".join(f"{_loc(e, raw)}: {_english_msg(e)}" for e in errors[1:6])
        more_en = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise GeoplanError(
            f"Indikatorenkatalog ungültig: {_german_msg(first)}{more}.",
            file=file,
            location=_loc(first, raw),
            expected=_expected_for(first),
            found=None if isinstance(found, dict) else repr(found),
            hint="Feld im Katalog korrigieren (Schreibweise, erlaubte Werte)."
            + (f" Weitere Fehler: {others}" if others else ""),
            message_en=f"Indicator catalogue invalid: {_english_msg(first)}{more_en}.", expected_en=_expected_for(first, 'en'),
            hint_en="Correct the field in the catalogue (spelling, allowed values)."
            + (f" Further errors: {others_en}" if others_en else ""),
        ) from None


def load_catalogue(path: str | Path) -> Catalogue:
    """Read and validate an indicator catalogue (YAML, UTF-8).

    Raises
    ------
    GeoplanError
        On a missing file, invalid YAML or any schema problem; the error names
        the file, the indicator and field, and the allowed values.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GeoplanError(
            "Indikatorenkatalog nicht gefunden.", file=path, hint="Pfad in der Konfiguration prüfen.",
            message_en="Indicator catalogue not found.", hint_en="Check the path in the configuration."
        ) from None
    except UnicodeDecodeError as exc:
        raise GeoplanError(
            "Indikatorenkatalog ist nicht UTF-8-kodiert.", file=path, found=str(exc),
            hint="Datei als UTF-8 speichern.",
            message_en="The indicator catalogue is not UTF-8 encoded.", hint_en="Save the file as UTF-8.",
        ) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise GeoplanError(
            "Indikatorenkatalog ist kein gültiges YAML.",
            file=path,
            location=f"Zeile {mark.line + 1}, Spalte {mark.column + 1}" if mark else None,
            found=str(getattr(exc, "problem", exc)),
            hint="Einrückung und Doppelpunkte prüfen; Texte mit ':' in Anführungszeichen setzen.",
            message_en="The indicator catalogue is not valid YAML.",
            hint_en="Check the indentation and colons; put texts containing ':' in quotation marks.",
        ) from None
    return parse_catalogue(raw, file=path)


_TABLE_HEADINGS = {
    "de": ["Indikator", "Name", "Gruppe", "Einheit", "Richtung", "Gewicht im Index", "Bezugsbevölkerung",
           "Glättung", "Quelle", "Stand", "Lizenz"],
    "en": ["Indicator", "Name", "Group", "Unit", "Direction", "Weight in index", "Population base",
           "Smoothing", "Source", "Reference date", "Licence"],
}


def catalogue_table(catalogue: Catalogue, *, lang: str = "de") -> pd.DataFrame:
    """The catalogue as a table for the report's Datengrundlage (``lang`` "de" or "en";
    English uses ``label_en`` where given). Values of unit/direction stay as in the catalogue."""
    heads = _TABLE_HEADINGS.get(lang, _TABLE_HEADINGS["de"])
    rows = []
    for ind in catalogue.indicators:
        label = ind.label_en if (lang == "en" and ind.label_en) else ind.label
        values = [
            label, ind.name, ind.group, ind.unit, ind.direction, ind.weight,
            " + ".join(ind.base) if ind.base else "–", ind.smoothing, ind.source,
            ind.reference_date, ind.licence or "–",
        ]
        rows.append(dict(zip(heads, values)))
    return pd.DataFrame(rows, columns=heads)
