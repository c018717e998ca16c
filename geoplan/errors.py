"""User-facing errors and QA notes.

Every problem a user can fix is raised as :class:`GeoplanError`. It carries
where the problem is (file, row/key/field), what was expected and how to fix
it, so the CLI can print one clear message without a traceback. Text is German
by default; ``render("en")`` switches the labels (the message itself is written
by the raiser, German first, an English version may be given as ``message_en``).

Problems that do not stop the run are collected as :class:`QANote` and shown in
the report's QA section and in ``manifest.json``. Every note is written in German
and English (``message_en``); :meth:`QANote.text` picks the reader's language,
and every place that shows a note (CLI, report annex, XLSX) goes through it.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

_LABELS = {
    "de": {"file": "Datei", "location": "Stelle", "expected": "Erwartet", "found": "Gefunden", "hint": "Lösung"},
    "en": {"file": "File", "location": "Location", "expected": "Expected", "found": "Found", "hint": "Fix"},
}


#: the fixed words of locations, expected and found values (``"Zeile 17, Spalte 'EW'"``), in English; the rest
#: of such a text is the user's own (keys, column names, values) and stays as it is
_LOCATION_EN = (
    ("Spalten ", "columns "), ("Spalte ", "column "), ("Zeilen ", "rows "), ("Zeile ", "row "),
    ("Schlüssel ", "key "), ("Konfigurationsfeld ", "config field "), ("Datei ", "file "), ("Ebene ", "level "),
    ("Objekte ", "features "), ("Objekt ", "feature "), ("Tabellenblatt ", "sheet "), ("Blätter:", "sheets:"),
    ("Felder:", "fields:"), ("Spalten:", "columns:"), ("Felder(?!\\w)", "fields"), ("Kopfzeile in ", "header in "),
    ("Kopfzeile", "header"), ("Indikator ", "indicator "), ("Ebenen:", "layers:"), ("Inhalt:", "content:"),
    ("fehlt:", "missing:"), ("Koordinaten x", "coordinates x"), ("Objekte(?!\\w)", "features"),
    ("ohne Geometrie", "no geometry"), ("Komponente ", "component "), ("Summe ", "sum "),
    ("insgesamt (\\d+)", "\\1 in all"), ("summe(?!\\w)", "total"), ("Quellschlüssel", "source key"),
    ("(?<= )oder(?= )", "or"), ("(?<= )und(?= )", "and"), ("keine(?!\\w)", "none"), ("leer(?!\\w)", "empty"),
    ("Zahl(?!\\w)", "number"), ("Zahlen(?!\\w)", "numbers"),
)


def english_location(text: str | None) -> str | None:
    """The fixed words of a location, expected or found text in English (see :data:`_LOCATION_EN`)."""
    if not text:
        return text
    for de, en in _LOCATION_EN:
        text = re.sub(r"(?<!\w)" + de, en, text)
    return text


class GeoplanError(ValueError):
    """An error in the user's input or configuration, with a fix.

    A ``ValueError``: it reports a bad value (scikit-learn and numpy callers
    catch ``ValueError``). Raised inside a pydantic validator it is wrapped in
    a ``ValidationError`` like any ``ValueError``;
    :func:`geoplan.config.validation_error_to_geoplan` and
    :func:`geoplan.stages.allocate.parse_spec` unwrap it again, so its
    location, expected value and hint reach the user.

    Parameters
    ----------
    message : str
        What is wrong, in German.
    file : path-like, optional
        The input file concerned.
    location : str, optional
        Row, key, field or layer, e.g. ``"Zeile 17, Spalte 'EW'"``.
    expected, found : str, optional
        What was expected and what was found instead.
    hint : str, optional
        What the user should do.
    message_en, hint_en : str, optional
        English versions for ``--lang en``.
    location_en, expected_en, found_en : str, optional
        English versions of ``location``/``expected``/``found`` where they are sentences; without them their
        fixed words (row, column, or …) are translated by :func:`english_location`.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        location: str | None = None,
        expected: str | None = None,
        found: str | None = None,
        hint: str | None = None,
        message_en: str | None = None,
        hint_en: str | None = None,
        location_en: str | None = None,
        expected_en: str | None = None,
        found_en: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = str(file) if file is not None else None
        self.location = location
        self.expected = expected
        self.found = found
        self.hint = hint
        self.message_en = message_en
        self.hint_en = hint_en
        self.location_en = location_en
        self.expected_en = expected_en
        self.found_en = found_en

    def text(self, lang: str = "de") -> str:
        """The message in ``lang`` (German where no English was given)."""
        return self.message_en if (lang == "en" and self.message_en) else self.message

    def render(self, lang: str = "de") -> str:
        labels = _LABELS.get(lang, _LABELS["de"])
        msg = self.message_en if (lang == "en" and self.message_en) else self.message
        hint = self.hint_en if (lang == "en" and self.hint_en) else self.hint
        lines = [msg]
        words = english_location if lang == "en" else (lambda text: text)
        for key, value in (
            ("file", self.file),
            ("location", (self.location_en if lang == "en" and self.location_en else words(self.location))),
            ("expected", (self.expected_en if lang == "en" and self.expected_en else words(self.expected))),
            ("found", (self.found_en if lang == "en" and self.found_en else words(self.found))),
            ("hint", hint),
        ):
            if value:
                lines.append(f"  {labels[key]}: {value}")
        return "\n".join(lines)

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.render("de")


@dataclass(frozen=True)
class QANote:
    """A finding that does not stop the run (shown in report and manifest).

    level: "info" | "warnung"; stage: pipeline stage name, e.g. "boundaries". ``message`` is German,
    ``message_en`` the same facts in English (tests/test_english_messages.py requires it at every
    construction); :meth:`text` returns the one for a language.
    """

    stage: str
    message: str
    level: str = "warnung"
    file: str | None = None
    location: str | None = None
    details: dict = field(default_factory=dict)
    message_en: str | None = None

    def text(self, lang: str = "de") -> str:
        """The message in ``lang`` ("de" or "en"; German where no English was given)."""
        return self.message_en if (lang == "en" and self.message_en) else self.message

    def to_dict(self) -> dict:
        return asdict(self)


#: German phrases that code puts into messages as names (join sides, layers), in English; see :func:`english_words`
_PHRASES_EN = (
    ("den Tabellen der Ebene", "the tables of level"), ("den Indikatortabellen", "the indicator tables"),
    ("den Indikatoren", "the indicators"), ("über die Schlüsseltabelle", "through the key table"),
    ("über die ersten", "through the first"), ("Zeichen des Schlüssels", "characters of the key"),
    ("den Sozialräumen", "the Sozialräume"), ("der HzE-Tabelle", "the HzE table"),
    ("nach Fläche von", "transferred by area from"), ("dasymetrisch von", "transferred dasymetrically from"),
    (" übertragen", ""),
)


def english_words(text: str | None) -> str | None:
    """A name code built in German (``"den Tabellen der Ebene 'plr'"``) in English, for ``message_en``."""
    if not text:
        return text
    for de, en in _PHRASES_EN:
        text = text.replace(de, en)
    return text


#: what a polygon layer is (the ``what`` of ``boundaries.repair_polygons``, ``sources.read_polygon_layer``,
#: ``interpolate._check_crs``), in English
_WHAT_EN = {"Quellebene": "source layer", "Zielebene": "target layer", "Zonen": "zones",
            "Gewichtsebene": "weights layer", "Quellgeografie": "source geography", "Ziel": "target"}


def what_en(what: str) -> str:
    """A layer's German name (``"Quellgeografie 'plr'"``) in English (``"source geography 'plr'"``)."""
    head, _, rest = what.partition(" ")
    return (_WHAT_EN[head] + (" " + rest if rest else "")) if head in _WHAT_EN else what


@contextmanager
def config_field(field: str, file: Path | None = None):
    """Name the config field (and file) in any GeoplanError raised inside, so the user knows what to edit."""
    try:
        yield
    except GeoplanError as err:
        if err.location:
            err.location = err.location.replace("'_source_key'", "'Quellschlüssel'")
        where = f"Konfigurationsfeld '{field}'"
        if field not in (err.location or "") and field not in err.message:
            err.location = f"{err.location}; {where}" if err.location else where
            if err.location_en:
                err.location_en = f"{err.location_en}; config field '{field}'"
        if err.file is None and file is not None:
            err.file = str(file)
        raise
