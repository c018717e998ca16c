"""Readers for indicator tables (CSV, XLSX) as statistics offices deliver them.

A table is read into a :class:`TableResult`: the key column as text (leading
zeros kept), numeric columns as float, suppressed-value markers (``–``, ``-``,
``.``, ``x``, ``/``, ``k.A.``, empty) and numeric sentinels (e.g. ``-9999``)
as NaN and counted per column. The CSV dialect (encoding, BOM, delimiter,
decimal and thousands separator) is detected from the file itself and
reported in ``TableResult.dialect`` so it can be shown in the report's
Datengrundlage section.

Everything the user can fix (wrong key column, lost leading zeros, text in a
number column, duplicate keys ...) is raised as
:class:`geoplan.errors.GeoplanError` with the file, the row as the user sees
it in the file (1-based, header included) and a hint.

:func:`join_by_key` joins two frames on their keys and reports keys missing
on either side and duplicates.

Detection rules (for the methods section)
-----------------------------------------
* Encoding: UTF-16 BOM → UTF-16 (Excel "Unicode-Text"); UTF-8 BOM → UTF-8;
  valid UTF-8 → UTF-8; otherwise cp1252
  (latin-1 if cp1252's undefined bytes occur). UTF-8 umlauts next to
  invalid bytes is a mixed file and an error.
* Delimiter: of ``;`` ``,`` tab ``|``, the one giving the most rows with the
  same number of fields (ties: more fields); an Excel ``sep=`` line wins.
* Header: the first row naming the key column (title rows above are skipped).
* Numbers: a token that can only be German (``12,5``, ``1.234,5``,
  ``1.234.567``) or only English (``12.5``, ``1,234.5``) decides a column's
  decimal separator; ambiguous ``1.234`` follows the file (semicolon files
  and Excel: German; comma files: English) and is noted. Both kinds in one
  column is an error naming the rows. A trailing ``%``, the typographic
  minus and (thin) spaces between digit groups are accepted.
* Columns: numeric when at least half of the non-marker cells are numbers;
  every other cell there is an error (row, column, value).
"""

from __future__ import annotations

import csv
import gc
import io
import math
import re
from collections import Counter
from itertools import chain
from operator import itemgetter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from geoplan.errors import GeoplanError, QANote, english_words

__all__ = [
    "DEFAULT_NA_MARKERS",
    "TableResult",
    "JoinResult",
    "read_table",
    "table_from_rows",
    "join_by_key",
    "normalize_keys",
]

STAGE = "indicators"

#: Markers German statistics offices use for suppressed or missing values.
#: ``–`` (en dash) and ``-`` "nichts vorhanden / gesperrt", ``.`` "Zahlenwert
#: unbekannt oder geheim", ``x`` "Tabellenfach gesperrt", ``/`` "keine
#: Angabe, da Zahlenwert nicht sicher genug", ``k.A.`` "keine Angabe".
DEFAULT_NA_MARKERS: frozenset[str] = frozenset(
    {"", "–", "—", "-", ".", "..", "...", "…", "x", "X", "/", "k.A.", "k. A.", "k.a.", "*"}
)

_CANDIDATE_DELIMITERS = (";", ",", "\t", "|")
_DELIM_NAMES = {";": "Semikolon", ",": "Komma", "\t": "Tabulator", "|": "senkrechter Strich"}
_DELIM_NAMES_EN = {";": "semicolon", ",": "comma", "\t": "tab", "|": "vertical bar"}

# Number shapes. "Grouped" tokens use a thousands separator in groups of three.
_RE_PLAIN_INT = re.compile(r"^[+-]?\d+$")
_RE_DOT_DECIMAL = re.compile(r"^[+-]?(\d+\.\d*|\.\d+)$")
_RE_COMMA_DECIMAL = re.compile(r"^[+-]?(\d+,\d*|,\d+)$")
_RE_DOT_GROUPED = re.compile(r"^[+-]?[1-9]\d{0,2}(\.\d{3})+$")
_RE_COMMA_GROUPED = re.compile(r"^[+-]?[1-9]\d{0,2}(,\d{3})+$")
_RE_DE_FULL = re.compile(r"^[+-]?[1-9]\d{0,2}(\.\d{3})+,\d*$")  # 1.234,5
_RE_EN_FULL = re.compile(r"^[+-]?[1-9]\d{0,2}(,\d{3})+\.\d*$")
# 1 234 / 1 234,5 with (thin) spaces as thousands separator (DIN 1333)
_RE_SPACE_GROUPED = re.compile(r"^[+-]?[1-9]\d{0,2}([ \u2009\u202f]\d{3})+([.,]\d+)?$")  # 1,234.5
_RE_SCI = re.compile(r"^[+-]?(\d+[.,]?\d*|[.,]\d+)[eE][+-]?\d+$")
_RE_DIGITS = re.compile(r"^\d+$")
_RE_UTF8_UMLAUT = re.compile(rb"\xc3[\x84\x96\x9c\xa4\xb6\xbc\x9f]")  # ÄÖÜäöüß in UTF-8
_RE_FLOAT_KEY = re.compile(r"^(\d+)[.,]0+$")  # 1100101.0: key went through a float

#: Whole-column short cuts (one check over a column instead of one per cell; number shapes in one
#: regular expression; values converted per shape). Each gives exactly what the per-cell code gives
#: and leaves every cell it is not sure about to that code, so frames, notes and messages are the
#: same. ``False`` runs the per-cell code only (tests/test_tables_fast.py compares the two).
VECTORISED = True

# Number tokens with nothing for _num_core to strip (no %, €, EUR, typographic minus, blanks):
# their shape is the first of the shape patterns (in _classify's order) that matches the whole token.
_RE_PLAIN_NUMBER = re.compile(r"[0-9.,+-]+")
_RE_PLAIN_LINES = re.compile(r"[0-9.,+-]+(?:\n[0-9.,+-]+)*")
_RE_LEADING_ZERO = re.compile(r"^[+-]?0\d", re.MULTILINE)
_SHAPE_ORDER = (("int", _RE_PLAIN_INT), ("de_full", _RE_DE_FULL), ("en_full", _RE_EN_FULL),
                ("dot_grouped", _RE_DOT_GROUPED), ("comma_grouped", _RE_COMMA_GROUPED),
                ("dot_decimal", _RE_DOT_DECIMAL), ("comma_decimal", _RE_COMMA_DECIMAL), ("sci", _RE_SCI))
_RE_SHAPE = re.compile("|".join(
    f"(?P<{name}>" + re.sub(r"\((?!\?)", "(?:", rx.pattern.removeprefix("^").removesuffix("$")) + ")"
    for name, rx in _SHAPE_ORDER))
# The shape of a plain token depends only on which characters are digits 1-9 (the patterns use \d and
# [1-9]), zero, '.', ',', '+', '-': its skeleton with 1-9 written as 9 has the same shape, and a column
# of thousands of amounts has a handful of skeletons.
_SKELETON = str.maketrans("12345678", "99999999")
# keys that normalize_keys takes as they are: no blanks, quotes, apostrophe, decimal separator
_RE_PLAIN_KEYS = re.compile(r"[^\s\"'.,]+(?:\n[^\s\"'.,]+)*")
_RE_SCI_KEY_LINE = re.compile(r"^[+-]?\d+[eE][+-]?\d+$", re.MULTILINE)


@dataclass
class TableResult:
    """One indicator table as read.

    Attributes
    ----------
    frame : pandas.DataFrame
        Key column dtype str (leading zeros kept); numeric columns float64;
        text columns dtype str (missing as NaN). Suppressed values are NaN.
    path : str
        The file read.
    dialect : dict
        ``encoding``, ``bom`` (bool), ``delimiter``, ``decimal``, ``thousands``,
        ``sheet``, ``header_row`` (1-based row of the header in the file),
        ``key`` (the key column in ``frame``: the caller's spelling),
        ``key_in_file`` (as written in the file), ``columns`` (columns whose
        decimal/thousands separators differ from the file's).
    suppressed : dict[str, int]
        Column -> number of marker or sentinel cells turned into NaN.
    notes : list[QANote]
        Findings that do not stop the run.
    """

    frame: pd.DataFrame
    path: str
    dialect: dict
    suppressed: dict[str, int]
    notes: list[QANote] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.dialect["key"]

    def summary(self) -> dict:
        """One line of the report's Datengrundlage / manifest.json."""
        numeric = [c for c in self.frame.columns if self.frame[c].dtype == "float64"]
        return {
            "file": self.path,
            "rows": int(len(self.frame)),
            "columns": int(self.frame.shape[1]),
            "numeric_columns": numeric,
            "key": self.key,
            **{k: self.dialect.get(k) for k in ("encoding", "bom", "delimiter", "decimal", "thousands",
                                                 "sheet", "header_row")},
            "suppressed_cells": int(sum(self.suppressed.values())),
            "notes": len(self.notes),
        }


@dataclass
class JoinResult:
    """Result of :func:`join_by_key`.

    ``frame`` has all rows of the left frame (in its order) and the columns
    of both; ``missing_in_left`` are keys of the right frame the left one
    lacks (their rows are dropped), ``missing_in_right`` keys of the left
    frame without a row on the right (their right columns are NaN).
    ``duplicates`` maps the frame name to its repeated keys.
    """

    frame: pd.DataFrame
    missing_in_left: list[str]
    missing_in_right: list[str]
    duplicates: dict[str, list[str]]
    notes: list[QANote] = field(default_factory=list)


# --------------------------------------------------------------------------
# small helpers


def _fmt_list(items: Sequence[Any], limit: int = 10, lang: str = "de") -> str:
    items = [str(i) for i in items]
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + (f" … (insgesamt {len(items)})" if lang == "de" else f" … ({len(items)} in all)")


def _rows_text(rows: Sequence[Any], limit: int = 10) -> str:
    # Non-numeric labels ("Objekt 3" in a layer) carry their own word.
    if rows and not isinstance(rows[0], (int, np.integer)):
        return _fmt_list(rows, limit)
    return ("Zeile " if len(rows) == 1 else "Zeilen ") + _fmt_list(rows, limit)


def _did_you_mean(word: str, choices: Sequence[str], lang: str = "de") -> str:
    import difflib

    close = difflib.get_close_matches(_norm_name(word), [_norm_name(c) for c in choices], n=1, cutoff=0.6)
    if not close:
        return ""
    original = next(c for c in choices if _norm_name(c) == close[0])
    return f"Gemeint ist vermutlich {original!r}. " if lang == "de" else f"You probably mean {original!r}. "


def _norm_name(name: str) -> str:
    return re.sub(r"\s+", " ", str(name)).strip().casefold()


# --------------------------------------------------------------------------
# raw reading: CSV


def _decode(raw: bytes, path: str, encoding: str | None) -> tuple[str, str, bool, list[QANote]]:
    """Return text, encoding name, BOM flag and notes."""
    notes: list[QANote] = []
    if raw.startswith(b"PK\x03\x04"):
        raise GeoplanError(
            "Die Datei ist eine Excel-Arbeitsmappe (.xlsx), trägt aber die Endung einer Textdatei.",
            file=path,
            hint="Die Endung in .xlsx ändern (und den Pfad in der Konfiguration) oder in Excel als CSV speichern.",
            message_en="The file is an Excel workbook (.xlsx) but has the extension of a text file.",
            hint_en="Change the extension to .xlsx (and the path in the configuration) or save it as CSV in Excel.",
        )
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) and encoding is None:
        # Excel's "Unicode-Text" export: UTF-16 with BOM, tab-separated.
        try:
            return raw.decode("utf-16"), "utf-16", True, notes
        except UnicodeDecodeError as exc:
            raise GeoplanError("Die UTF-16-Datei ist beschädigt.", file=path, found=str(exc),
                               message_en="The UTF-16 file is damaged.") from exc
    bom = raw.startswith(b"\xef\xbb\xbf")
    if encoding is not None:
        enc = "utf-8-sig" if (bom and encoding.lower().replace("_", "-") in ("utf-8", "utf8")) else encoding
        try:
            return raw.decode(enc), encoding, bom, notes
        except (UnicodeDecodeError, LookupError) as exc:
            pos = getattr(exc, "start", 0)
            line = raw[:pos].count(b"\n") + 1
            raise GeoplanError(
                f"Die Datei lässt sich nicht mit der Kodierung {encoding!r} lesen.",
                file=path,
                location=f"Zeile {line}",
                expected=f"Text in {encoding}",
                found=str(exc),
                hint="Die Angabe 'encoding' weglassen (automatische Erkennung) oder richtig setzen, z. B. 'cp1252'.",
                message_en=f"The file cannot be read with the encoding {encoding!r}.",
                expected_en=f"text in {encoding}",
                hint_en="Leave out 'encoding' (automatic detection) or set it correctly, e.g. 'cp1252'.",
            ) from exc
    if bom:
        try:
            return raw.decode("utf-8-sig"), "utf-8", True, notes
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise GeoplanError(
                "Die Datei beginnt mit einer UTF-8-Markierung (BOM), enthält aber Zeichen, die kein UTF-8 sind.",
                file=path,
                location=f"Zeile {line}",
                hint="Datei in Excel oder einem Editor als 'CSV UTF-8' neu speichern.",
                message_en="The file starts with a UTF-8 mark (BOM) but holds characters that are not UTF-8.",
                hint_en="Save the file again as 'CSV UTF-8' in Excel or an editor.",
            ) from exc
    try:
        return raw.decode("utf-8"), "utf-8", False, notes
    except UnicodeDecodeError as exc:
        first_bad = exc.start
    # UTF-8 umlauts (ä = C3 A4 …) next to single Windows bytes: the file was
    # pieced together from two sources; any one decoding garbles part of it.
    if _RE_UTF8_UMLAUT.search(raw):
        line = raw[:first_bad].count(b"\n") + 1
        utf8_line = raw[: _RE_UTF8_UMLAUT.search(raw).start()].count(b"\n") + 1
        raise GeoplanError(
            "Die Datei mischt zwei Zeichenkodierungen (UTF-8 und Windows/cp1252).",
            file=path,
            location=f"Zeile {line} (Windows-Zeichen), Zeile {utf8_line} (UTF-8-Umlaut)",
            hint="Datei in einem Editor öffnen und einheitlich als UTF-8 speichern; "
            "meist wurden Zeilen aus zwei Exporten zusammenkopiert.",
            message_en="The file mixes two character encodings (UTF-8 and Windows/cp1252).",
            hint_en="Open the file in an editor and save it as UTF-8 throughout; usually rows of two exports were "
            "copied together.",
        )
    # Windows files from Excel/SPSS are cp1252; its five undefined bytes
    # (0x81, 0x8D, 0x8F, 0x90, 0x9D) only occur in latin-1 text.
    try:
        text = raw.decode("cp1252")
        enc = "cp1252"
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
        enc = "latin-1"
    notes.append(
        QANote(
            STAGE,
            f"Datei ist nicht UTF-8-kodiert; gelesen als {enc} (Windows-Kodierung).",
            level="info",
            file=path,
            details={"encoding": enc},
            message_en=f"The file is not UTF-8 encoded; read as {enc} (Windows encoding).",
        )
    )
    return text, enc, False, notes


def _head_lines(text: str, n: int) -> list[str]:
    """``[ln for ln in text.splitlines() if ln.strip()][:n]``, splitting only as much of ``text`` as needed."""
    size = 1 << 16
    while size < len(text):
        lines = [ln for ln in text[:size].splitlines() if ln.strip()]
        if len(lines) > n:  # the n-th line ends inside the head: the first n are whole
            return lines[:n]
        size *= 4
    return [ln for ln in text.splitlines() if ln.strip()][:n]


def _sniff_delimiter(text: str, path: str) -> str:
    lines = _head_lines(text, 200)
    best: tuple | None = None
    for cand in _CANDIDATE_DELIMITERS:
        try:
            rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=cand, quotechar='"'))
        except csv.Error:
            continue
        counts = [len(r) for r in rows if any(c.strip() for c in r)]
        if not counts:
            continue
        modal, freq = Counter(counts).most_common(1)[0]
        if modal < 2:
            continue
        score = (freq / len(counts), modal)
        if best is None or score > best[0]:
            best = (score, cand)
    if best is None:
        raise GeoplanError(
            "Das Trennzeichen der CSV-Datei ist nicht zu erkennen (nur eine Spalte gefunden).",
            file=path,
            expected="Spalten getrennt durch ';', ',', Tabulator oder '|'",
            # never echo the content: the path may point at a file that is no table at all (e.g. /etc/shadow)
            found=(f"{len(lines)} Zeile(n) ohne Trennzeichen (Inhalt wird nicht angezeigt)" if lines else "leere Datei"),
            hint="Prüfen, ob der Pfad auf die richtige Tabelle zeigt; sonst das Trennzeichen in der Konfiguration "
                 "angeben ('delimiter').",
            message_en="The CSV delimiter cannot be recognised (only one column found).",
            hint_en="Check that the path points at the right table; otherwise give the delimiter in the "
                    "configuration ('delimiter').",
        )
    return best[1]


def _read_csv_rows(path: str, encoding, delimiter) -> tuple[list[list[Any]], dict, list[QANote]]:
    raw = Path(path).read_bytes()
    if not raw.strip(b"\xef\xbb\xbf \t\r\n"):
        raise GeoplanError(
            "Die Tabelle ist leer.",
            file=path,
            expected="Kopfzeile und mindestens eine Datenzeile",
            found=f"{len(raw)} Byte ohne Inhalt",
            hint="Export wiederholen; die Datei wurde vermutlich unvollständig gespeichert.",
            message_en="The table is empty.", expected_en="a header and at least one data row",
            found_en=f"{len(raw)} bytes without content",
            hint_en="Repeat the export; the file was probably saved incompletely.",
        )
    text, enc, bom, notes = _decode(raw, path, encoding)
    # Excel's "sep=;" hint line: honour it, and blank it so that line
    # numbers in messages stay those of the file.
    m = re.match(r"sep=(.)\r?\n", text)
    if m:
        delimiter = delimiter or m.group(1)
        text = "\n" + text[m.end():]
    delim = delimiter or _sniff_delimiter(text, path)
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delim, quotechar='"', strict=False))
    except csv.Error as exc:  # pragma: no cover - csv is lenient with strict=False
        raise GeoplanError("Die CSV-Datei ist fehlerhaft.", file=path, found=str(exc),
                           message_en="The CSV file is malformed.") from exc
    # A quote that is never closed swallows the rest of the file into one cell.
    # (Only a quoted cell can hold a line break: without '"' there is nothing to look for.)
    for i, r in enumerate(rows if '"' in text or not VECTORISED else ()):
        if any("\n" in c and c.count("\n") > 5 for c in r):
            raise GeoplanError(
                "Ein Anführungszeichen wird nicht geschlossen; der Rest der Datei landet in einem Feld.",
                file=path,
                location=f"Zeile {i + 1}",
                hint="Anführungszeichen in dieser Zeile prüfen oder Datei neu exportieren.",
                message_en="A quotation mark is not closed; the rest of the file ends up in one field.",
                hint_en="Check the quotation marks in this row or export the file again.",
            )
    dialect = {"encoding": enc, "bom": bom, "delimiter": delim, "sheet": None}
    return rows, dialect, notes


# --------------------------------------------------------------------------
# raw reading: XLSX


def _check_uncached_formulas(path: str, sheet: str, values: list[list[Any]]) -> None:
    """Formulas whose result was never saved (files written by scripts, not Excel) read as empty cells: stop."""
    import openpyxl
    from openpyxl.utils import get_column_letter

    wb = openpyxl.load_workbook(path, read_only=True, data_only=False)
    try:
        ws = wb[sheet]
        ws.reset_dimensions()
        for i, row in enumerate(ws.iter_rows(values_only=True)):
            for j, c in enumerate(row):
                if isinstance(c, str) and c.startswith("=") and (
                        i >= len(values) or j >= len(values[i]) or values[i][j] is None):
                    raise GeoplanError(
                        "Formeln ohne gespeicherte Werte: in Excel öffnen und speichern.",
                        file=path,
                        location=f"Blatt {sheet!r}, Zelle {get_column_letter(j + 1)}{i + 1}",
                        expected="Zellen mit Werten (Excel speichert das Ergebnis jeder Formel mit)",
                        found="Formel ohne Ergebnis",
                        hint="Die Datei in Excel oder LibreOffice öffnen und speichern (dabei werden die Ergebnisse "
                             "gespeichert) oder die Werte als Zahlen exportieren.",
                        message_en="Formulas without stored values: open and save the file in Excel.",
                        hint_en="Open and save the file in Excel or LibreOffice (this stores the results) or export "
                                "the values as numbers.",
                    )
    finally:
        wb.close()


def _read_xlsx_rows(path: str, sheet, key: str) -> tuple[list[list[Any]], dict, list[QANote]]:
    try:
        import openpyxl
    except ImportError as exc:  # pragma: no cover - declared dependency
        raise GeoplanError("Zum Lesen von Excel-Dateien wird das Paket openpyxl benötigt.", file=path,
                           message_en="Reading Excel files needs the package openpyxl.") from exc
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise GeoplanError(
            "Die Excel-Datei lässt sich nicht öffnen (beschädigt oder kein .xlsx).",
            file=path,
            found=f"{type(exc).__name__}: {exc}",
            hint="Datei in Excel öffnen und erneut als .xlsx speichern; alte .xls-Dateien vorher umwandeln.",
            message_en="The Excel file cannot be opened (damaged or not .xlsx).",
            hint_en="Open the file in Excel and save it again as .xlsx; convert old .xls files first.",
        ) from exc
    notes: list[QANote] = []
    try:
        names = list(wb.sheetnames)
        if sheet is None:
            if len(names) == 1:
                chosen = names[0]
            else:
                # Choose the only sheet whose first rows contain the key column.
                want = _norm_name(key)
                hits = []
                for n in names:
                    ws = wb[n]
                    for row in ws.iter_rows(max_row=30, values_only=True):
                        if any(c is not None and _norm_name(c) == want for c in row):
                            hits.append(n)
                            break
                if len(hits) != 1:
                    raise GeoplanError(
                        "Die Excel-Datei hat mehrere Tabellenblätter; welches gelesen werden soll, ist nicht eindeutig.",
                        file=path,
                        expected=f"ein Blatt mit der Schlüsselspalte {key!r}",
                        found="Blätter: " + ", ".join(repr(n) for n in names)
                        + (f"; Schlüsselspalte in: {', '.join(hits)}" if hits else "; Schlüsselspalte in keinem"),
                        hint="In der Konfiguration 'sheet' auf eines dieser Blätter setzen.",
                        message_en="The Excel file has several sheets; which one to read is not clear.",
                        expected_en=f"a sheet with the key column {key!r}",
                        found_en="sheets: " + ", ".join(repr(n) for n in names)
                        + (f"; key column in: {', '.join(hits)}" if hits else "; key column in none"),
                        hint_en="Set 'sheet' in the configuration to one of these sheets.",
                    )
                chosen = hits[0]
                notes.append(
                    QANote(STAGE, f"Tabellenblatt {chosen!r} gewählt (enthält die Schlüsselspalte {key!r}).",
                           level="info", file=path,
                           message_en=f"Sheet {chosen!r} chosen (it holds the key column {key!r}).")
                )
        elif isinstance(sheet, int):
            if not 0 <= sheet < len(names):
                raise GeoplanError(
                    f"Tabellenblatt Nr. {sheet} gibt es nicht (Zählung ab 0).",
                    file=path,
                    found="Blätter: " + ", ".join(repr(n) for n in names),
                    hint="'sheet' auf einen dieser Namen setzen.",
                    message_en=f"There is no sheet no. {sheet} (counting from 0).",
                    hint_en="Set 'sheet' to one of these names.",
                )
            chosen = names[sheet]
        else:
            if sheet not in names:
                raise GeoplanError(
                    f"Tabellenblatt {sheet!r} gibt es nicht.",
                    file=path,
                    expected=repr(sheet),
                    found="Blätter: " + ", ".join(repr(n) for n in names),
                    hint="'sheet' auf einen dieser Namen setzen.",
                    message_en=f"There is no sheet {sheet!r}.", hint_en="Set 'sheet' to one of these names.",
                )
            chosen = sheet
        ws = wb[chosen]
        # Some exports store a wrong sheet dimension (e.g. "A1"), which would
        # make read-only mode stop after the first cell.
        ws.reset_dimensions()
        # Booleans would pass as 1/0 in number columns; Excel shows them as text.
        rows = [[("WAHR" if c else "FALSCH") if isinstance(c, bool) else c for c in r]
                for r in ws.iter_rows(values_only=True)]
    finally:
        wb.close()
    if any(c is None for r in rows for c in r):
        _check_uncached_formulas(path, chosen, rows)
    dialect = {"encoding": None, "bom": False, "delimiter": None, "sheet": chosen}
    return rows, dialect, notes


# --------------------------------------------------------------------------
# header and numbers


def _find_header(rows: list[list[Any]], key: str) -> int:
    """0-based index of the header: the first row naming ``key``."""
    want = _norm_name(key)
    for i, r in enumerate(rows[:50]):
        if any(c is not None and _norm_name(c) == want for c in r):
            return i
    # No row names the key: take the first row that is as wide as the data,
    # so the error about the missing key lists sensible column names.
    widths = [sum(1 for c in r if c not in (None, "")) for r in rows]
    modal = Counter(w for w in widths if w > 0).most_common(1)[0][0]
    for i, w in enumerate(widths):
        if w >= max(2, modal):
            return i
    return 0


def _num_core(token: str) -> str:
    """Drop what decorates a number in German tables: a trailing ``%``,
    the typographic minus, spaces as thousands separator."""
    t = token
    if t.endswith("%"):
        t = t[:-1].rstrip()
    # currency as Excel formats it: "35.206,98 €", "€ 1,234.50", "1.234 EUR"
    if t.endswith("€"):
        t = t[:-1].rstrip()
    elif t.startswith("€"):
        t = t[1:].lstrip()
    elif t.endswith(" EUR"):
        t = t[:-4].rstrip()
    if "\u2212" in t:
        t = t.replace("\u2212", "-")
    if (" " in t or "\u2009" in t or "\u202f" in t) and _RE_SPACE_GROUPED.match(t):
        t = t.replace(" ", "").replace("\u2009", "").replace("\u202f", "")
    return t


def _classify(token: str) -> str | None:
    """Shape of a numeric token, or None when it is not a number."""
    token = _num_core(token)
    if _RE_PLAIN_INT.match(token):
        return "int"
    if _RE_DE_FULL.match(token):
        return "de_full"
    if _RE_EN_FULL.match(token):
        return "en_full"
    if _RE_DOT_GROUPED.match(token):
        return "dot_grouped"  # 1.234 : thousands (de) or decimal (en)
    if _RE_COMMA_GROUPED.match(token):
        return "comma_grouped"  # 1,234 : thousands (en) or decimal (de)
    if _RE_DOT_DECIMAL.match(token):
        return "dot_decimal"
    if _RE_COMMA_DECIMAL.match(token):
        return "comma_decimal"
    if _RE_SCI.match(token):
        return "sci"
    return None


def _detect_separators(shapes: Counter, delimiter: str | None) -> tuple[str, str | None, str | None]:
    """Decide decimal and thousands separators from the token shapes of a file.

    Returns (decimal, thousands, ambiguity note (German, English) or None).
    """
    de_evidence, en_evidence = _evidence(shapes)
    if de_evidence and not en_evidence:
        return ",", ("." if shapes["dot_grouped"] or shapes["de_full"] else None), None
    if en_evidence and not de_evidence:
        return ".", ("," if shapes["comma_grouped"] or shapes["en_full"] else None), None
    if de_evidence and en_evidence:
        # Decided per column later; the majority sets the file default.
        return ("," if de_evidence >= en_evidence else "."), None, None
    # Only ambiguous tokens such as 1.234 or 1,234 (or plain integers):
    # semicolon files and Excel cells follow the German convention, comma
    # files the English one.
    if shapes["dot_grouped"] or shapes["comma_grouped"]:
        if delimiter != ",":
            return ",", ".", _AMBIGUOUS_DE
        return ".", ",", _AMBIGUOUS_EN
    return ("," if delimiter == ";" else "."), None, None


#: the ambiguity notes of :func:`_detect_separators` (German text, English text)
_AMBIGUOUS_DE = ("Zahlen wie '1.234' sind mehrdeutig; gelesen im deutschen Format "
                 "(Tausenderpunkt, Dezimalkomma: 1.234 = 1234).",
                 "Numbers such as '1.234' are ambiguous; read in the German format "
                 "(thousands point, decimal comma: 1.234 = 1234).")
_AMBIGUOUS_EN = ("Zahlen wie '1.234' sind mehrdeutig; gelesen im englischen Format "
                 "(Dezimalpunkt: '1.234' = 1,234 in deutscher Schreibweise).",
                 "Numbers such as '1.234' are ambiguous; read in the English format "
                 "(decimal point: '1.234' = one point two three four).")


def _evidence(shapes: Counter) -> tuple[int, int]:
    """Counts of tokens that can only be German (decimal comma) or English."""
    de = shapes["comma_decimal"] + shapes["de_full"] + shapes["dot_grouped_multi"]
    en = shapes["dot_decimal"] + shapes["en_full"] + shapes["comma_grouped_multi"]
    return de, en


_MARKER = ("m", None)
_BAD = ("b", None)
_OTHER = ("o", None)


def _cell_value(cell, markers, decimal, thousands) -> tuple[str, float | None]:
    """Classify one distinct cell: ("m") marker, ("n", v) number,
    ("o") number in the other decimal style, ("b") not a number."""
    if cell is None:
        return _MARKER
    if isinstance(cell, str):
        if cell in markers:
            return _MARKER
        v = _to_float(cell, decimal, thousands)
        if v is not None:
            return ("n", v)
        return _OTHER if _classify(cell) is not None else _BAD
    if isinstance(cell, (int, float, np.integer, np.floating)) and not isinstance(cell, bool):
        v = float(cell)
        return _MARKER if math.isnan(v) else ("n", v)
    return _BAD  # dates, times


def _text_cells(cells) -> list:
    if VECTORISED and set(map(type, cells)) <= {str}:
        return [c or None for c in cells]
    out = []
    for c in cells:
        if c is None or c == "":
            out.append(None)
        elif isinstance(c, float) and c.is_integer():
            out.append(str(int(c)))
        else:
            out.append(str(c))
    return out


def _to_float(token: str, decimal: str, thousands: str | None) -> float | None:
    t = _num_core(token)
    shape = _classify(t)
    if shape is None:
        return None
    if shape == "int":
        return float(t)
    if shape == "sci":
        return float(t.replace(",", ".")) if decimal == "," else (float(t) if "," not in t else None)
    if decimal == ",":
        if shape in ("comma_decimal", "comma_grouped"):
            # '1,234,567' has no decimal comma: a number in the other style, not one value here
            return float(t.replace(",", ".")) if t.count(",") == 1 else None
        if shape in ("dot_grouped", "de_full"):
            return float(t.replace(".", "").replace(",", "."))
        return None  # dot decimal or en_full in a comma-decimal column
    if shape in ("dot_decimal", "dot_grouped"):
        if shape == "dot_grouped" and thousands == ".":
            return float(t.replace(".", ""))
        return float(t) if t.count(".") == 1 else None  # '1.234.567' read with decimal '.'
    if shape in ("comma_grouped", "en_full"):
        if thousands == "," or shape == "en_full":
            return float(t.replace(",", ""))
        return None
    return None


def _shape(token: str) -> str | None:
    """:func:`_classify`, with one regular expression for tokens that have nothing to strip."""
    if VECTORISED and _RE_PLAIN_NUMBER.fullmatch(token):
        m = _RE_SHAPE.fullmatch(token)
        return m.lastgroup if m else None
    return _classify(token)


def _plain_transform(shape: str, decimal: str, thousands: str | None) -> tuple | None:
    """What :func:`_to_float` does to a plain token of ``shape`` before ``float()``: the replacements, in
    order, or None when the token is in the other decimal style."""
    if shape == "int":
        return ()
    if decimal == ",":
        if shape in ("comma_decimal", "comma_grouped"):
            return ((",", "."),)
        if shape in ("dot_grouped", "de_full"):
            return ((".", ""), (",", "."))
        return None
    if shape == "dot_decimal":
        return ()
    if shape == "dot_grouped":
        return ((".", ""),) if thousands == "." else ()
    if shape == "comma_grouped":
        return ((",", ""),) if thousands == "," else None
    if shape == "en_full":
        return ((",", ""),)
    return None


class _PlainColumn:
    """A column of text cells whose non-marker cells are all *plain* number tokens (digits, ``.``, ``,``,
    ``+``, ``-``: nothing for ``_num_core`` to strip), held as one entry per distinct cell.

    What the per-cell code computes per distinct cell (shape, kind, value) is computed here per shape:
    the shapes with :func:`_classify` once per skeleton (:data:`_SKELETON`), the values with one
    ``replace`` per shape and ``float()``. :meth:`of` returns None for any other column.
    """

    def __init__(self, codes, uniques, is_marker, shapes):
        self.codes = codes                          # cell -> distinct cell
        self.uniques = uniques                      # distinct cells (object array of str)
        self.is_marker = is_marker                  # per distinct cell
        self.counts = np.bincount(codes, minlength=len(uniques))
        self.tokens = np.flatnonzero(~is_marker)    # distinct non-marker cells
        self.shapes = shapes                        # their shapes ("none": no number)

    @classmethod
    def of(cls, cells: list, markers) -> "_PlainColumn | None":
        if not VECTORISED or not cells or set(map(type, cells)) != {str}:
            return None
        codes, uniques = pd.factorize(np.asarray(cells, dtype=object))
        uniques = np.asarray(uniques, dtype=object)
        is_marker = np.fromiter(map(markers.__contains__, uniques.tolist()), dtype=bool, count=len(uniques))
        cand = uniques[~is_marker].tolist()
        joined = "\n".join(cand)
        if cand and not _RE_PLAIN_LINES.fullmatch(joined):
            return None
        if cand:
            skel, skeletons = pd.factorize(np.asarray(joined.translate(_SKELETON).split("\n"), dtype=object))
            shapes = np.asarray([_classify(k) or "none" for k in skeletons.tolist()], dtype=object)[skel]
        else:
            shapes = np.asarray([], dtype=object)
        return cls(np.asarray(codes), uniques, is_marker, shapes)

    def shape_counts(self) -> Counter:
        """The column's Counter of shapes over its distinct tokens (as the per-cell loop counts them)."""
        cs = Counter(self.shapes.tolist())
        cs.pop("none", None)
        for shape, sep in (("dot_grouped", "."), ("comma_grouped", ",")):
            if cs[shape]:
                n = sum(1 for i, sh in zip(self.tokens.tolist(), self.shapes.tolist())
                        if sh == shape and self.uniques[i].count(sep) > 1)
                if n:
                    cs[shape + "_multi"] += n
        return +cs

    def convert(self, decimal: str, thousands: str | None):
        """``(kind, value)`` per distinct cell (kind 0 marker, 1 number) in this decimal style, or None when
        some cell is no number in it (the per-cell code then names the rows)."""
        kind = np.zeros(len(self.uniques), dtype=np.int8)
        value = np.full(len(self.uniques), np.nan)
        shapes = self.shapes
        for shape in dict.fromkeys(self.shapes.tolist()):
            tr = None if shape in ("none", "sci") else _plain_transform(shape, decimal, thousands)
            if tr is None:
                return None
            idx = self.tokens[shapes == shape]
            joined = "\n".join(self.uniques[idx].tolist())
            sep = {"comma_grouped": ",", "dot_grouped": "."}.get(shape)
            if sep == decimal and thousands != sep and any(self.uniques[i].count(sep) > 1 for i in idx.tolist()):
                return None  # '1,234,567' with decimal ',': no number in this style, the per-cell code says where
            for a, b in tr:
                joined = joined.replace(a, b)
            value[idx] = list(map(float, joined.split("\n")))
            kind[idx] = 1
        return kind, value

    def leading_zero_code(self) -> bool:
        """All non-marker cells integers and one of them with a leading zero (a code such as ``01``)."""
        if not len(self.shapes) or (self.shapes != "int").any():
            return False
        return bool(_RE_LEADING_ZERO.search("\n".join(self.uniques[self.tokens].tolist())))


@contextmanager
def gc_paused():
    """No cyclic garbage collection while a table is parsed: the parse allocates a few hundred thousand
    cells, rows and tuples and no reference cycle, and each collection would walk all of them again
    (a third of the reading time of a 54,000-row case list). Reference counting frees as usual."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _strip_rows(rows: list[list[Any]]) -> list[tuple[int, list[Any]]]:
    """(line, cells) of the non-empty rows, text cells stripped of blanks (no-break spaces count as blanks)."""
    if VECTORISED and rows:
        cells = list(chain.from_iterable(rows))
        if set(map(type, cells)) <= {str} and "\u00a0" not in "".join(cells) and list(map(str.strip, cells)) == cells:
            return [(i + 1, r) for i, r in enumerate(rows) if any(r)]  # the caller's lists: not changed below
    numbered = []
    for i, r in enumerate(rows):
        r = [(c.replace("\u00a0", " ").strip() if isinstance(c, str) else c) for c in r]
        if any(c is not None and c != "" for c in r):
            numbered.append((i + 1, r))
    return numbered


# --------------------------------------------------------------------------
# keys


def normalize_keys(
    values: Iterable[Any],
    *,
    key_width: int | None = None,
    file: str | None = None,
    column: str = "key",
    row_numbers: Sequence[int] | None = None,
    numeric_cells: Sequence[bool] | None = None,
    allow_mixed_lengths: bool = False,
    notes: list[QANote] | None = None,
) -> list[str]:
    """Turn key cells into text keys and check for lost leading zeros.

    Parameters
    ----------
    values : iterable
        Raw key cells (str, int or float from Excel).
    key_width : int, optional
        Pad purely numeric keys with leading zeros to this many digits
        (Berlin LOR Planungsräume: 8, Prognoseräume: 4).
    row_numbers : sequence of int or str, optional
        Row of each value in the file (1-based), used in messages; strings
        such as ``"Objekt 3"`` are used as they are.
    numeric_cells : sequence of bool, optional
        True where the cell was stored as a number (Excel), which is where
        leading zeros get lost.
    allow_mixed_lengths : bool
        Accept numeric keys of different length even when the longest has
        four or more digits.
    notes : list, optional
        Receives a QANote when short running numbers of mixed length are
        accepted.

    Raises
    ------
    GeoplanError
        Empty keys; keys written as floats or in scientific notation; purely
        numeric keys of mixed length without ``key_width`` (lost zeros);
        keys longer than ``key_width``. Mixed lengths are only an error
        when the longest key has four or more digits (hierarchical codes);
        running numbers such as 1 … 12 pass with a note.
    """
    vals = list(values)
    rows = list(row_numbers) if row_numbers is not None else list(range(1, len(vals) + 1))
    numeric = list(numeric_cells) if numeric_cells is not None else [False] * len(vals)
    keys: list[str] = []
    empty_rows, sci_rows, float_rows = [], [], []
    plain = False
    if VECTORISED and vals and set(map(type, vals)) == {str}:
        # text keys without blanks, quotes, apostrophe or decimal separator come out as they are,
        # unless they look like scientific notation (1E5)
        joined = "\n".join(vals)
        plain = bool(_RE_PLAIN_KEYS.fullmatch(joined)) and not _RE_SCI_KEY_LINE.search(joined)
    if plain:
        keys = vals
    for v, r, is_num in zip(() if plain else vals, rows, numeric):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            empty_rows.append(r)
            keys.append("")
            continue
        if isinstance(v, bool):
            s = str(v)
        elif isinstance(v, (int, np.integer)):
            s = str(int(v))
        elif isinstance(v, (float, np.floating)):
            if float(v).is_integer():
                s = str(int(v))
            else:
                s = repr(float(v))
                float_rows.append(r)
        else:
            s = str(v).strip().strip('"').strip()
            if s.startswith("'") and _RE_DIGITS.match(s[1:] or "x"):
                s = s[1:]  # Excel's text prefix survives some exports
        if s == "":
            empty_rows.append(r)
        elif _RE_SCI.match(s) and not _RE_DIGITS.match(s):
            sci_rows.append(r)
        else:
            m = _RE_FLOAT_KEY.match(s)
            if m:
                if key_width is None:
                    float_rows.append(r)
                s = m.group(1)
        keys.append(s)
    if empty_rows:
        raise GeoplanError(
            f"Leere Schlüssel in der Spalte {column!r}.",
            file=file,
            location=_rows_text(empty_rows),
            expected="in jeder Datenzeile ein Schlüssel",
            hint="Zeilen ergänzen oder löschen; Fußnoten unter der Tabelle entfernen.",
            message_en=f"Empty keys in the column {column!r}.", expected_en="a key in every data row",
            hint_en="Fill in or delete the rows; remove footnotes below the table.",
        )
    if sci_rows:
        bad = [keys[rows.index(r)] for r in sci_rows]
        raise GeoplanError(
            f"Schlüssel in der Spalte {column!r} stehen in wissenschaftlicher Schreibweise; Stellen sind verloren.",
            file=file,
            location=_rows_text(sci_rows),
            found=_fmt_list(bad),
            hint="Die Spalte in Excel als Text formatieren und neu exportieren; die Originalschlüssel sind nicht rekonstruierbar.",
            message_en=f"Keys in the column {column!r} are in scientific notation; digits are lost.",
            hint_en="Format the column as text in Excel and export again; the original keys cannot be recovered.",
        )
    if float_rows:
        bad = [keys[rows.index(r)] for r in float_rows]
        raise GeoplanError(
            f"Schlüssel in der Spalte {column!r} sehen wie Kommazahlen aus (z. B. '1100101.0'); die Spalte wurde als Zahl gespeichert.",
            file=file,
            location=_rows_text(float_rows),
            found=_fmt_list(bad),
            hint="Spalte als Text exportieren oder 'key_width' setzen (z. B. 8 für LOR-Planungsräume), dann wird mit Nullen aufgefüllt.",
            message_en=f"Keys in the column {column!r} look like decimal numbers (e.g. '1100101.0'); the column was "
            "saved as a number.",
            hint_en="Export the column as text or set 'key_width' (e.g. 8 for LOR planning areas) to pad with zeros.",
        )
    all_digits = all(_RE_DIGITS.match(k) for k in keys)
    if key_width is not None:
        # with allow_mixed_lengths, longer keys are kept (e.g. a combined area '0304' among '1', '2' …)
        too_long = [] if allow_mixed_lengths else [(r, k) for r, k in zip(rows, keys) if len(k) > key_width]
        if too_long:
            raise GeoplanError(
                f"Schlüssel in der Spalte {column!r} sind länger als key_width={key_width}.",
                file=file,
                location=_rows_text([r for r, _ in too_long]),
                found=_fmt_list([k for _, k in too_long]),
                hint="'key_width' prüfen.",
                message_en=f"Keys in the column {column!r} are longer than key_width={key_width}.",
                hint_en="Check 'key_width'.",
            )
        return [k.zfill(key_width) if _RE_DIGITS.match(k) else k for k in keys]
    if all_digits and keys:
        lengths = Counter(len(k) for k in keys)
        longest = max(lengths)
        # Plain running numbers (1 … 12) legitimately differ in length;
        # hierarchical codes (LOR, AGS, Zensus) have a fixed width of 4+.
        if len(lengths) > 1 and longest >= 4 and not allow_mixed_lengths:
            short = [(r, k) for r, k in zip(rows, keys) if len(k) < longest]
            raise GeoplanError(
                f"Die Schlüssel in der Spalte {column!r} sind unterschiedlich lang; vermutlich sind führende Nullen verloren gegangen (Excel).",
                file=file,
                location=_rows_text([r for r, _ in short]),
                expected=f"alle Schlüssel {longest}-stellig",
                found=_fmt_list([k for _, k in short]) + " ("
                + ", ".join(f"{n}× {ln}-stellig" for ln, n in sorted(lengths.items())) + ")",
                hint=("Die Spalte ist in Excel als Zahl formatiert. " if any(numeric) else "")
                + f"In der Konfiguration key_width: {longest} setzen (füllt mit Nullen auf) oder die Spalte als Text "
                "exportieren; sind die Schlüssel wirklich verschieden lang, allow_mixed_key_lengths: true setzen.",
                message_en=f"The keys in the column {column!r} differ in length; leading zeros were probably lost (Excel).",
                expected_en=f"all keys with {longest} digits",
                found_en=_fmt_list([k for _, k in short], lang="en") + " ("
                + ", ".join(f"{n}× {ln} digits" for ln, n in sorted(lengths.items())) + ")",
                hint_en=("The column is formatted as a number in Excel. " if any(numeric) else "")
                + f"Set key_width: {longest} in the configuration (pads with zeros) or export the column as text; "
                "if the keys really differ in length, set allow_mixed_key_lengths: true.",
            )
        if len(lengths) > 1 and notes is not None:
            notes.append(QANote(
                STAGE,
                f"Schlüssel in {column!r} sind Nummern verschiedener Länge ({min(lengths)}–{longest} Stellen); "
                "sie werden ohne führende Nullen verglichen.",
                level="info", file=file,
                message_en=f"Keys in {column!r} are numbers of different lengths ({min(lengths)}–{longest} digits); "
                "they are compared without leading zeros.",
            ))
    return keys


# --------------------------------------------------------------------------
# the reader

_DELIM_ALIASES = {"tab": "\t", "\\t": "\t", "tabulator": "\t", "semikolon": ";", "semicolon": ";",
                  "komma": ",", "comma": ",", "pipe": "|"}


def _check_dialect_args(delimiter, decimal, thousands, path):
    if delimiter is not None:
        delimiter = _DELIM_ALIASES.get(str(delimiter).strip().lower(), delimiter)
        if len(delimiter) != 1:
            raise GeoplanError(
                f"Ungültiges Trennzeichen {delimiter!r}.",
                file=path,
                location="Konfigurationsfeld 'delimiter'",
                expected="ein Zeichen: ';', ',', '|' oder 'tab'",
                found=repr(delimiter),
                message_en=f"Invalid delimiter {delimiter!r}.", expected_en="one character: ';', ',', '|' or 'tab'",
            )
    if decimal is not None and decimal not in (",", "."):
        raise GeoplanError(
            f"Ungültiges Dezimaltrennzeichen {decimal!r}.",
            file=path,
            location="Konfigurationsfeld 'decimal'",
            expected="',' oder '.'",
            found=repr(decimal), message_en=f"Invalid decimal separator {decimal!r}.",
        )
    if thousands is not None and thousands not in (",", ".", ""):
        raise GeoplanError(
            f"Ungültiges Tausendertrennzeichen {thousands!r}.",
            file=path,
            location="Konfigurationsfeld 'thousands'",
            expected="'.', ',' oder '' (keines)",
            found=repr(thousands),
            message_en=f"Invalid thousands separator {thousands!r}.", expected_en="'.', ',' or '' (none)",
        )
    if decimal is not None and thousands == decimal:
        raise GeoplanError(
            "Dezimal- und Tausendertrennzeichen sind gleich.",
            file=path,
            location="Konfigurationsfelder 'decimal' und 'thousands'",
            found=f"beide {decimal!r}",
            message_en="Decimal and thousands separators are the same.", found_en=f"both {decimal!r}",
        )
    return delimiter, decimal, thousands


def read_table(
    path,
    *,
    key: str,
    sheet=None,
    header_row: int | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    decimal: str | None = None,
    thousands: str | None = None,
    na_markers: Iterable[str] | None = None,
    sentinels: Iterable[float] = (),
    key_width: int | None = None,
    valid_column: str | None = None,
    valid_values: Iterable[str] | None = None,
    allow_duplicates: bool = False,
    text_columns: Iterable[str] = (),
    allow_mixed_key_lengths: bool = False,
    numeric_columns: Iterable[str] | None = None,
    skip_rows: int = 0,
    drop_keys: Iterable[str] = (),
    drop_labels: Iterable[str] = (),
) -> TableResult:
    """Read an indicator table (CSV or XLSX) keyed by Sozialraum.

    Parameters
    ----------
    path : path-like
        ``.csv``/``.txt``/``.tsv`` or ``.xlsx``/``.xlsm``.
    key : str
        Name of the key column (matched ignoring case and surrounding
        blanks). Keys are always text.
    sheet : str or int, optional
        XLSX sheet name (or 0-based index). Without it the only sheet, or the
        only one containing ``key``, is read.
    header_row : int, optional
        1-based row of the header. Default: the first row naming ``key``
        (skips title rows above the table).
    encoding, delimiter, decimal, thousands : str, optional
        Override the detected CSV dialect.
    na_markers : iterable of str, optional
        Cell texts meaning "suppressed/missing"; default
        :data:`DEFAULT_NA_MARKERS`. Empty cells are always missing.
    sentinels : iterable of float
        Numeric codes meaning missing, e.g. ``(-9999,)`` in the Berlin MSS.
    key_width : int, optional
        Zero-pad numeric keys to this width.
    valid_column, valid_values : optional
        Rows whose ``valid_column`` is not in ``valid_values`` get all numeric
        columns set to NaN (Berlin MSS: ``KOM`` = ``gültig``).
    allow_duplicates : bool
        Keep repeated keys instead of failing.
    text_columns : iterable of str
        Columns to keep as text even if they look numeric.
    allow_mixed_key_lengths : bool
        Accept numeric keys of different length (see :func:`normalize_keys`).
    numeric_columns : iterable of str, optional
        The columns the caller needs as numbers. They must exist and every
        non-marker cell in them must be a number. Other columns become
        numbers only when all their cells are numbers, else stay text
        without complaint (a house-number column ``12a`` that nobody uses
        does not stop the run).
    skip_rows : int
        Non-empty rows directly under the header to skip (a units or
        description row such as "Anzahl | % | Anzahl").
    drop_keys, drop_labels : iterable of str
        Rows that are no areas (totals, sub-totals): a row is dropped when its
        key matches one of the regular expressions ``drop_keys`` (searched,
        case-insensitive) or any of its text cells equals one of
        ``drop_labels`` (case and surrounding blanks ignored). Noted.

    Without ``numeric_columns`` a column counts as numeric when most of its non-marker cells are
    numbers; then every other cell in it is an error. Columns of integers
    with leading zeros (codes such as ``BEZ_ID`` = ``01``) stay text.
    """
    with gc_paused():
        return _read_table(
            path, key=key, sheet=sheet, header_row=header_row, encoding=encoding, delimiter=delimiter,
            decimal=decimal, thousands=thousands, na_markers=na_markers, sentinels=sentinels, key_width=key_width,
            valid_column=valid_column, valid_values=valid_values, allow_duplicates=allow_duplicates,
            text_columns=text_columns, allow_mixed_key_lengths=allow_mixed_key_lengths,
            numeric_columns=numeric_columns, skip_rows=skip_rows, drop_keys=drop_keys, drop_labels=drop_labels)


def _read_table(path, *, key, sheet, header_row, encoding, delimiter, decimal, thousands, na_markers, sentinels,
                key_width, valid_column, valid_values, allow_duplicates, text_columns, allow_mixed_key_lengths,
                numeric_columns, skip_rows, drop_keys, drop_labels) -> TableResult:
    path = str(path)
    delimiter, decimal, thousands = _check_dialect_args(delimiter, decimal, thousands, path)
    p = Path(path)
    if not p.exists():
        raise GeoplanError(
            "Die Tabelle wurde nicht gefunden.",
            file=path,
            hint="Pfad in der Konfiguration prüfen (relativ zur Konfigurationsdatei).",
            message_en="The table was not found.",
            hint_en="Check the path in the configuration (relative to the configuration file).",
        )
    if p.is_dir():
        raise GeoplanError("Der Pfad ist ein Ordner, keine Tabelle.", file=path,
                           message_en="The path is a folder, not a table.")
    suffix = p.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        rows, dialect, notes = _read_xlsx_rows(path, sheet, key)
    elif suffix == ".xls":
        raise GeoplanError(
            "Das alte Excel-Format .xls wird nicht gelesen.",
            file=path,
            hint="Datei in Excel als .xlsx oder als CSV (UTF-8) speichern.",
            message_en="The old Excel format .xls is not read.",
            hint_en="Save the file in Excel as .xlsx or as CSV (UTF-8).",
        )
    else:
        if suffix == ".tsv" and delimiter is None:
            delimiter = "\t"
        rows, dialect, notes = _read_csv_rows(path, encoding, delimiter)

    return table_from_rows(
        rows, dialect, notes, source=path, key=key, header_row=header_row, decimal=decimal,
        thousands=thousands, na_markers=na_markers, sentinels=sentinels, key_width=key_width,
        valid_column=valid_column, valid_values=valid_values, allow_duplicates=allow_duplicates,
        text_columns=text_columns, allow_mixed_key_lengths=allow_mixed_key_lengths,
        numeric_columns=numeric_columns, skip_rows=skip_rows, drop_keys=drop_keys, drop_labels=drop_labels,
    )


def table_from_rows(
    rows: list[list[Any]],
    dialect: dict,
    notes: list[QANote],
    *,
    source: str,
    key: str,
    header_row: int | None = None,
    decimal: str | None = None,
    thousands: str | None = None,
    na_markers: Iterable[str] | None = None,
    sentinels: Iterable[float] = (),
    key_width: int | None = None,
    valid_column: str | None = None,
    valid_values: Iterable[str] | None = None,
    allow_duplicates: bool = False,
    text_columns: Iterable[str] = (),
    allow_mixed_key_lengths: bool = False,
    numeric_columns: Iterable[str] | None = None,
    skip_rows: int = 0,
    drop_keys: Iterable[str] = (),
    drop_labels: Iterable[str] = (),
) -> TableResult:
    """The checks and conversions of :func:`read_table` on rows already read
    (header row first; cells as str, int/float or None, like an XLSX sheet).

    Used for tables that do not come from a file (PostGIS, WFS): ``source``
    is what error messages name; ``dialect`` needs at least ``delimiter``
    (None for typed cells).
    """
    path = source
    markers = set(DEFAULT_NA_MARKERS if na_markers is None else na_markers) | {""}
    sentinel_set = {float(s) for s in sentinels}
    text_columns = list(text_columns)
    numeric_columns = None if numeric_columns is None else list(numeric_columns)
    text_cols = {_norm_name(c) for c in text_columns}
    numeric_set = None if numeric_columns is None else {_norm_name(c) for c in numeric_columns}

    # Strip blanks (incl. no-break spaces from Excel) and drop empty rows.
    numbered = _strip_rows(rows)
    if not numbered:
        raise GeoplanError("Die Tabelle ist leer.", file=path, expected="Kopfzeile und Datenzeilen",
                           message_en="The table is empty.", expected_en="a header and data rows")
    if header_row is None:
        h = _find_header([r for _, r in numbered], key)
    else:
        idx = [i for i, (n, _) in enumerate(numbered) if n == header_row]
        if not idx:
            raise GeoplanError(
                f"Kopfzeile {header_row} ist leer oder liegt außerhalb der Datei.",
                file=path,
                hint="'header_row' prüfen (Zählung ab 1, wie in Excel/Editor).",
                message_en=f"Header row {header_row} is empty or outside the file.",
                hint_en="Check 'header_row' (counting from 1, as in Excel or an editor).",
            )
        h = idx[0]
    header_line, header = numbered[h]
    header = list(header)
    # Trailing empty header cells come from Excel's used range.
    while header and header[-1] in (None, ""):
        header.pop()
    names: list[str] = []
    for j, c in enumerate(header):
        if isinstance(c, float) and c.is_integer():
            c = int(c)  # year columns typed as numbers in Excel
        # Line breaks inside Excel header cells become single blanks.
        name = "" if c is None else re.sub(r"\s+", " ", str(c)).strip().strip('"').strip()
        names.append(name if name else f"Spalte_{j + 1}")
    dup_names = [n for n, k in Counter(names).items() if k > 1]
    if dup_names:
        raise GeoplanError(
            "Spaltennamen kommen mehrfach vor.",
            file=path,
            location=f"Kopfzeile (Zeile {header_line})",
            found=_fmt_list(dup_names),
            hint="Spalten in der Datei eindeutig benennen.",
            message_en="Column names occur more than once.", hint_en="Give the columns in the file unique names.",
        )
    want = _norm_name(key)
    key_idx = [j for j, n in enumerate(names) if _norm_name(n) == want]
    if not key_idx:
        raise GeoplanError(
            f"Die Schlüsselspalte {key!r} fehlt.",
            file=path,
            location=f"Kopfzeile (Zeile {header_line})",
            expected=repr(key),
            found="Spalten: " + ", ".join(repr(n) for n in names),
            hint=_did_you_mean(key, names)
            + "In der Konfiguration 'key' auf einen dieser Spaltennamen setzen"
            + (" oder 'header_row' angeben." if header_row is None else "."),
            message_en=f"The key column {key!r} is missing.",
            hint_en=_did_you_mean(key, names, "en") + "Set 'key' in the configuration to one of these column names"
            + (" or give 'header_row'." if header_row is None else "."),
        )
    kj = key_idx[0]
    ncol = len(names)
    if numeric_set is not None:
        by_norm = {_norm_name(n) for n in names}
        absent = [c for c in numeric_columns if _norm_name(c) not in by_norm]
        if absent:
            raise GeoplanError(
                "Spalte(n) " + ", ".join(repr(c) for c in absent) + " fehlen in der Tabelle.",
                file=path,
                location=f"Kopfzeile (Zeile {header_line})",
                found="Spalten: " + ", ".join(repr(n) for n in names),
                hint=_did_you_mean(absent[0], names) + "Spaltennamen in der Konfiguration an die Tabelle anpassen.",
                message_en="Column(s) " + ", ".join(repr(c) for c in absent) + " missing in the table.",
                hint_en=_did_you_mean(absent[0], names, "en") + "Match the column names in the configuration to the table.",
            )
    data = numbered[h + 1 :]
    if skip_rows:
        skipped = [n for n, _ in data[:skip_rows]]
        data = data[skip_rows:]
        notes.append(QANote(STAGE, f"{len(skipped)} Zeile(n) unter der Kopfzeile übersprungen (skip_rows).",
                            level="info", file=path, location=_rows_text(skipped),
                            message_en=f"{len(skipped)} row(s) below the header skipped (skip_rows)."))

    # Footnotes below the table ("Quelle: ...") have no key and one cell.
    footnotes = []
    while data:
        n, r = data[-1]
        filled = [c for c in r if c not in (None, "")]
        kcell = r[kj] if kj < len(r) else None
        # A lone text with blanks or a colon in the key column is a note
        # ("Quelle: ..."), not a key.
        note_in_key = isinstance(kcell, str) and (" " in kcell or ":" in kcell)
        if len(filled) <= 1 and (kcell in (None, "") or note_in_key) and ncol > 2:
            footnotes.append(n)
            data.pop()
        else:
            break
    if footnotes:
        notes.append(QANote(STAGE, f"{len(footnotes)} Fußnotenzeile(n) unter der Tabelle ignoriert.",
                            level="info", file=path, location=_rows_text(sorted(footnotes)),
                            message_en=f"{len(footnotes)} footnote row(s) below the table ignored."))
    drop_keys = list(drop_keys)
    labels = {str(x).strip().casefold() for x in drop_labels}
    if drop_keys or labels:
        try:
            patterns = [re.compile(p, re.IGNORECASE) for p in drop_keys]
        except re.error as exc:
            raise GeoplanError(
                f"Ungültiges Muster in drop_rows.keys: {exc}.",
                file=path, found=", ".join(drop_keys),
                hint="Reguläre Ausdrücke prüfen, z. B. '^99' für Schlüssel, die mit 99 beginnen.",
                message_en=f"Invalid pattern in drop_rows.keys: {exc}.",
                hint_en="Check the regular expressions, e.g. '^99' for keys starting with 99.",
            ) from None
        kept, dropped = [], []
        for n, r in data:
            kcell = r[kj] if kj < len(r) else None
            ktext = "" if kcell is None else (str(int(kcell)) if isinstance(kcell, float) and kcell.is_integer()
                                               else str(kcell))
            hit = any(p.search(ktext) for p in patterns) if ktext else False
            if not hit and labels:
                hit = any(isinstance(c, str) and c.strip().casefold() in labels for c in r)
            (dropped if hit else kept).append((n, r))
        data = kept
        if dropped:
            notes.append(QANote(STAGE, f"{len(dropped)} Zeile(n) ohne Gebiet (Summen o. Ä., drop_rows) "
                                "nicht gelesen.", level="info", file=path,
                                location=_rows_text([n for n, _ in dropped]),
                                details={"rows": [n for n, _ in dropped]},
                                message_en=f"{len(dropped)} row(s) without an area (totals or similar, drop_rows) "
                                "not read."))
    if not data:
        raise GeoplanError(
            "Die Tabelle hat keine Datenzeilen (nur die Kopfzeile).",
            file=path,
            location=f"Kopfzeile in Zeile {header_line}",
            hint="Export wiederholen; die Datei ist vermutlich abgeschnitten.",
            message_en="The table has no data rows (only the header).",
            hint_en="Repeat the export; the file is probably cut off.",
        )
    # Row width: extra cells must be empty, short rows mean a broken CSV.
    # Excel rows simply end at their last filled cell.
    if dialect["delimiter"] is None:
        data = [(n, r + [None] * (ncol - len(r)) if len(r) < ncol else r) for n, r in data]
    short, long_ = [], []
    # (rows all as wide as the header, as in nearly every file: nothing to look for row by row)
    same_width = VECTORISED and set(map(len, map(itemgetter(1), data))) == {ncol}
    for n, r in () if same_width else data:
        if len(r) < ncol:
            short.append(n)
        elif len(r) > ncol and any(c not in (None, "") for c in r[ncol:]):
            long_.append(n)
    if short:
        truncated = short == [data[-1][0]]
        raise GeoplanError(
            "Die Datei ist abgeschnitten: die letzte Zeile ist unvollständig." if truncated
            else "Zeilen haben weniger Felder als die Kopfzeile.",
            file=path,
            location=_rows_text(short),
            expected=f"{ncol} Felder je Zeile (Trennzeichen {_DELIM_NAMES.get(dialect['delimiter'], dialect['delimiter'])!s})",
            found=f"{min(len(r) for n, r in data if n in short)} Felder",
            hint="Export wiederholen." if truncated
            else "Trennzeichen in Textfeldern in Anführungszeichen setzen oder 'delimiter' angeben.",
            message_en="The file is cut off: the last row is incomplete." if truncated
            else "Rows have fewer fields than the header.",
            expected_en=f"{ncol} fields per row (delimiter {_DELIM_NAMES_EN.get(dialect['delimiter'], dialect['delimiter'])!s})",
            hint_en="Repeat the export." if truncated
            else "Put delimiters inside text fields in quotation marks or give 'delimiter'.",
        )
    if long_:
        raise GeoplanError(
            "Zeilen haben mehr Felder als die Kopfzeile.",
            file=path,
            location=_rows_text(long_),
            expected=f"{ncol} Felder je Zeile",
            hint="Trennzeichen in Textfeldern (z. B. Namen mit Komma) in Anführungszeichen setzen oder 'delimiter' angeben.",
            message_en="Rows have more fields than the header.", expected_en=f"{ncol} fields per row",
            hint_en="Put delimiters inside text fields (e.g. names with a comma) in quotation marks or give 'delimiter'.",
        )
    line_no = [n for n, _ in data]
    if VECTORISED:  # every row has at least ncol cells now
        cols = dict(zip(names, map(list, zip(*(r for _, r in data)))))
    else:
        cols = {names[j]: [r[j] for _, r in data] for j in range(ncol)}

    # The shapes of the distinct number-like texts decide decimal and
    # thousands separators: per column where the column itself is
    # unambiguous (``12,5``), else by the file's majority / convention.
    col_shapes: dict[str, Counter] = {}
    plain_cols: dict[str, _PlainColumn] = {}
    file_shapes: Counter = Counter()
    for j, name in enumerate(names):
        if j == kj or _norm_name(name) in text_cols:
            continue
        pc = _PlainColumn.of(cols[name], markers)
        if pc is not None:
            plain_cols[name] = pc
            col_shapes[name] = cs = pc.shape_counts()
            file_shapes.update(cs)
            continue
        cs: Counter = Counter()
        for tok in set(cols[name]):
            shape = _shape(tok) if isinstance(tok, str) and tok not in markers else None
            if shape:
                cs[shape] += 1
                if shape == "dot_grouped" and tok.count(".") > 1:
                    cs["dot_grouped_multi"] += 1
                if shape == "comma_grouped" and tok.count(",") > 1:
                    cs["comma_grouped_multi"] += 1
        col_shapes[name] = cs
        file_shapes.update(cs)
    det_dec, det_thou, ambiguity = _detect_separators(file_shapes, dialect["delimiter"])
    if decimal is not None:
        file_dec = decimal
        file_thou = thousands if thousands is not None else ("." if decimal == "," else ",")
    else:
        file_dec = det_dec
        file_thou = thousands if thousands is not None else det_thou
    if thousands == "":
        file_thou = None
    used_ambiguous = False
    per_column: dict[str, dict] = {}

    frame_cols: dict[str, Any] = {}
    suppressed: dict[str, int] = {}
    for j, name in enumerate(names):
        cells = cols[name]
        if j == kj:
            continue
        if _norm_name(name) in text_cols:
            frame_cols[name] = _text_cells(cells)
            continue
        dec, thou = file_dec, file_thou
        cs = col_shapes[name]
        de_ev, en_ev = _evidence(cs)
        if decimal is None and thousands is None:
            if de_ev and not en_ev:
                dec, thou = ",", ("." if cs["dot_grouped"] or cs["de_full"] else None)
            elif en_ev and not de_ev:
                dec, thou = ".", ("," if cs["comma_grouped"] or cs["en_full"] else None)
            elif de_ev and en_ev:
                dec = "," if de_ev >= en_ev else "."
                thou = None
            elif cs["dot_grouped"] or cs["comma_grouped"]:
                used_ambiguous = True
        plain = plain_cols[name].convert(dec, thou) if name in plain_cols else None
        if plain is not None:  # every cell a marker or a number in this style: the counts per distinct cell
            pc = plain_cols[name]
            kind, uvalue = plain
            n_marker_cells = int(pc.counts[kind == 0].sum())
            n_numberlike = int(pc.counts[kind == 1].sum())
            n_non_marker = len(cells) - n_marker_cells
            leading_zero_code = pc.leading_zero_code()
            has_bad = False
        else:
            counts = Counter(cells)
            info = {tok: _cell_value(tok, markers, dec, thou) for tok in counts}
            n_marker_cells = sum(n for tok, n in counts.items() if info[tok][0] == "m")
            n_numberlike = sum(n for tok, n in counts.items() if info[tok][0] in ("n", "o"))
            n_non_marker = len(cells) - n_marker_cells
            leading_zero_code = False
            str_tokens = [tok for tok in counts if isinstance(tok, str) and info[tok][0] != "m"]
            if str_tokens and all(_RE_PLAIN_INT.match(t) for t in str_tokens):
                leading_zero_code = any(len(t.lstrip("+-")) > 1 and t.lstrip("+-").startswith("0")
                                        for t in str_tokens)
            has_bad = any(info[tok][0] in ("b", "o") for tok in counts)
        if numeric_set is not None and _norm_name(name) not in numeric_set:
            # Not asked for: a number column only if every cell is one.
            if has_bad or leading_zero_code or (n_numberlike == 0 and n_non_marker > 0):
                frame_cols[name] = _text_cells(cells)
                continue
        elif numeric_set is None:
            # A column of markers only is a fully suppressed number column.
            if (n_numberlike == 0 and n_non_marker > 0) or n_numberlike * 2 < n_non_marker or leading_zero_code:
                frame_cols[name] = _text_cells(cells)
                continue
        bad = [(line_no[i], c) for i, c in enumerate(cells) if info[c][0] == "b"] if has_bad else []
        if bad:
            r0, v0 = bad[0]
            raise GeoplanError(
                f"Text in der Zahlenspalte {name!r}.",
                file=path,
                location=f"Zeile {r0}, Spalte {name!r}"
                + (f" (und {_rows_text([r for r, _ in bad[1:]])})" if len(bad) > 1 else ""),
                expected="eine Zahl oder ein Sperrzeichen (–, -, ., x, /, k.A., leer)",
                found=repr(v0),
                hint="Wert in der Datei korrigieren; eigene Zeichen für 'kein Wert' in 'na_markers' angeben "
                "(Zahlen wie -9999 in 'sentinels')"
                + ("." if numeric_set is not None else "; ist die Spalte Text, sie nicht als Zahlenspalte unter 'columns' aufführen."),
                message_en=f"Text in the numeric column {name!r}.",
                expected_en="a number or a suppression mark (–, -, ., x, /, k.A., empty)",
                hint_en="Correct the value in the file; give your own marks for 'no value' in 'na_markers' "
                "(numbers such as -9999 in 'sentinels')"
                + ("." if numeric_set is not None else "; if the column is text, do not list it as a numeric column under 'columns'."),
            )
        other_style = [line_no[i] for i, c in enumerate(cells) if info[c][0] == "o"] if has_bad else []
        if other_style:
            same_style = [line_no[i] for i, c in enumerate(cells)
                          if info[c][0] == "n" and isinstance(c, str) and _classify(c) not in ("int", None)]
            raise GeoplanError(
                f"In der Spalte {name!r} werden Dezimalkomma und Dezimalpunkt gemischt.",
                file=path,
                location=f"Spalte {name!r}: "
                + ("Dezimalpunkt in " if dec == "," else "Dezimalkomma in ")
                + _rows_text(other_style)
                + (("; Dezimalkomma in " if dec == "," else "; Dezimalpunkt in ") + _rows_text(same_style)
                   if same_style else ""),
                expected=f"einheitlich Dezimal{'komma' if dec == ',' else 'punkt'} (überwiegt in der Spalte)",
                hint="Zahlen in der Datei einheitlich schreiben oder 'decimal' und 'thousands' angeben.",
                message_en=f"The column {name!r} mixes decimal comma and decimal point.",
                expected_en=f"decimal {'comma' if dec == ',' else 'point'} throughout (the majority in the column)",
                hint_en="Write the numbers in the file uniformly or give 'decimal' and 'thousands'.",
            )
        if plain is not None:
            if sentinel_set:
                uvalue = np.where(np.isin(uvalue, np.array(sorted(sentinel_set), dtype=float)), np.nan, uvalue)
            values = uvalue[pc.codes]
        else:
            valmap = {tok: (v[1] if v[0] == "n" and v[1] not in sentinel_set else np.nan)
                      for tok, v in info.items()}
            values = np.fromiter(map(valmap.__getitem__, cells), dtype=float, count=len(cells))
        frame_cols[name] = values
        n_suppressed = int(np.isnan(values).sum())
        if n_suppressed:
            suppressed[name] = n_suppressed
        if (dec, thou) != (file_dec, file_thou):
            per_column[name] = {"decimal": dec, "thousands": thou}
    if ambiguity and used_ambiguous and decimal is None:
        notes.append(QANote(STAGE, ambiguity[0], level="warnung", file=path,
                            details={"decimal": file_dec, "thousands": file_thou}, message_en=ambiguity[1]))
    if per_column:
        notes.append(QANote(
            STAGE,
            "Spalten mit abweichendem Zahlenformat: "
            + ", ".join(f"{c} (Dezimal {d['decimal']!r})" for c, d in per_column.items()) + ".",
            level="info", file=path, details={"columns": per_column},
            message_en="Columns with a different number format: "
            + ", ".join(f"{c} (decimal {d['decimal']!r})" for c, d in per_column.items()) + ".",
        ))

    key_name = names[kj]
    key_cells = cols[key_name]
    # text keys (every CSV): no cell stored as a number
    numeric_cells = ([False] * len(key_cells) if VECTORISED and set(map(type, key_cells)) == {str}
                     else [isinstance(c, (int, float)) for c in key_cells])
    keys = normalize_keys(
        [c for c in key_cells],
        key_width=key_width,
        file=path,
        column=key_name,
        row_numbers=line_no,
        numeric_cells=numeric_cells,
        allow_mixed_lengths=allow_mixed_key_lengths,
        notes=notes,
    )
    if key_width is not None and any(isinstance(c, (int, float)) or (isinstance(c, str) and len(c) < key_width)
                                     for c in cols[key_name]):
        notes.append(QANote(STAGE, f"Schlüssel mit führenden Nullen auf {key_width} Stellen aufgefüllt.",
                            level="info", file=path,
                            message_en=f"Keys padded with leading zeros to {key_width} digits."))
    dups = [k for k, n in Counter(keys).items() if n > 1]
    if dups and not allow_duplicates:
        rows_of = {k: [line_no[i] for i, kk in enumerate(keys) if kk == k] for k in dups}
        raise GeoplanError(
            f"Schlüssel kommen in der Spalte {key_name!r} mehrfach vor.",
            file=path,
            location="; ".join(f"{k}: {_rows_text(r)}" for k, r in list(rows_of.items())[:10]),
            found=f"{len(dups)} doppelte Schlüssel: {_fmt_list(dups)}",
            hint="Doppelte Zeilen entfernen oder zusammenfassen (z. B. Summen je Schlüssel).",
            message_en=f"Keys occur more than once in the column {key_name!r}.",
            found_en=f"{len(dups)} duplicate keys: {_fmt_list(dups, lang='en')}",
            hint_en="Remove or combine the duplicate rows (e.g. totals per key).",
        )
    if dups:
        notes.append(QANote(STAGE, f"{len(dups)} Schlüssel kommen mehrfach vor: {_fmt_list(dups)}.",
                            file=path, details={"duplicates": dups},
                            message_en=f"{len(dups)} keys occur more than once: {_fmt_list(dups, lang='en')}."))

    frame = pd.DataFrame({key_name: pd.Series(keys, dtype=str)})
    for name in names:
        if name == key_name:
            continue
        v = frame_cols[name]
        frame[name] = pd.Series(v, dtype="float64") if isinstance(v, np.ndarray) else pd.Series(v, dtype=str)
    frame.index = pd.RangeIndex(len(frame))

    if valid_column is not None:
        vmatch = [n for n in names if _norm_name(n) == _norm_name(valid_column)]
        if not vmatch:
            raise GeoplanError(
                f"Die Gültigkeitsspalte {valid_column!r} fehlt.",
                file=path,
                found="Spalten: " + ", ".join(repr(n) for n in names),
                hint="In der Konfiguration 'valid' (column, values) prüfen oder weglassen.",
                message_en=f"The validity column {valid_column!r} is missing.",
                hint_en="Check 'valid' (column, values) in the configuration or leave it out.",
            )
        vc = vmatch[0]
        ok_values = {str(v).strip().casefold() for v in (valid_values if valid_values is not None else ["gültig"])}
        status = frame[vc].map(
            lambda s: None if s is None or (isinstance(s, float) and math.isnan(s))
            else (str(int(s)) if isinstance(s, float) and s.is_integer() else str(s).strip())
        )
        invalid = ~status.map(lambda s: s is not None and s.casefold() in ok_values)
        if invalid.any():
            numeric_cols = [c for c in frame.columns if frame[c].dtype == "float64" and c != vc]
            frame.loc[invalid, numeric_cols] = np.nan
            bad_keys = frame.loc[invalid, key_name].tolist()
            reasons = Counter(status[invalid].fillna("(leer)"))
            notes.append(
                QANote(
                    STAGE,
                    f"{len(bad_keys)} Zeilen sind als ungültig markiert ({vc}); ihre Werte werden nicht verwendet: "
                    + _fmt_list(bad_keys) + ".",
                    level="warnung",
                    file=path,
                    location=f"Spalte {vc!r}",
                    details={"keys": bad_keys, "reasons": dict(reasons)},
                    message_en=f"{len(bad_keys)} rows are marked invalid ({vc}); their values are not used: "
                    + _fmt_list(bad_keys, lang="en") + ".",
                )
            )
    if suppressed:
        total = sum(suppressed.values())
        notes.append(
            QANote(
                STAGE,
                f"{total} gesperrte oder fehlende Werte (Sperrzeichen, leere Felder"
                + (", Kennzahlen " + ", ".join(f"{s:g}" for s in sorted(sentinel_set)) if sentinel_set else "")
                + f") in {len(suppressed)} Spalten als fehlend gelesen.",
                level="info",
                file=path,
                details={"suppressed": dict(suppressed)},
                message_en=f"{total} suppressed or missing values (suppression marks, empty cells"
                + (", codes " + ", ".join(f"{s:g}" for s in sorted(sentinel_set)) if sentinel_set else "")
                + f") in {len(suppressed)} columns read as missing.",
            )
        )
    # Names are matched ignoring case and blanks; callers then index the
    # frame with their own spelling.
    wanted = [key, *(numeric_columns or ()), *text_columns, *([valid_column] if valid_column else [])]
    rename: dict[str, str] = {}
    for w in wanted:
        for n in frame.columns:
            if n != w and _norm_name(n) == _norm_name(w) and w not in frame.columns and n not in rename:
                rename[n] = w
    if rename:
        frame = frame.rename(columns=rename)
        suppressed = {rename.get(k, k): v for k, v in suppressed.items()}
        per_column = {rename.get(k, k): v for k, v in per_column.items()}
        notes.append(QANote(STAGE, "Spalten unter dem Namen aus der Konfiguration geführt: "
                            + ", ".join(f"{a!r} → {b!r}" for a, b in rename.items()) + ".",
                            level="info", file=path,
                            message_en="Columns carried under the name the configuration gives: "
                            + ", ".join(f"{a!r} → {b!r}" for a, b in rename.items()) + "."))
    dialect.update(
        {
            "key_in_file": key_name,
            "decimal": file_dec,
            "thousands": file_thou,
            "columns": per_column,
            "header_row": header_line,
            "key": rename.get(key_name, key_name),
        }
    )
    return TableResult(frame=frame, path=path, dialect=dialect, suppressed=suppressed, notes=notes)


# --------------------------------------------------------------------------
# joining


def _key_columns_text(left_key: str, right_key: str) -> str | None:
    """Where the keys come from, for messages; geoplan's internal key columns are not worth naming."""
    internal = {"key", "_source_key"}
    if left_key == right_key:
        return None if left_key in internal else f"Schlüsselspalte {left_key!r}"
    names = [repr(k) for k in (left_key, right_key) if k not in internal]
    return ("Schlüsselspalten " + " ↔ ".join(names)) if len(names) == 2 else (
        f"Schlüsselspalte {names[0]}" if names else None)


def _as_frame(x) -> tuple[pd.DataFrame, str | None]:
    if isinstance(x, TableResult):
        return x.frame, x.path
    return x, None


def _allowed(spec, keys: list[str]) -> tuple[list[str], list[str]]:
    """Split keys into (accepted, rejected) by an allow_* spec."""
    if spec is True:
        return keys, []
    if not spec:
        return [], keys
    ok = {str(k) for k in spec}
    return [k for k in keys if k in ok], [k for k in keys if k not in ok]


def join_by_key(
    left,
    right,
    *,
    left_key: str,
    right_key: str,
    left_name: str,
    right_name: str,
    allow_missing_left: bool | Sequence[str] = False,
    allow_missing_right: bool | Sequence[str] = False,
    allow_duplicates: bool = False,
    config_fields: tuple[str, str] = ("allow_missing_left", "allow_missing_right"),
) -> JoinResult:
    """Join ``right`` onto ``left`` by text keys and report every mismatch.

    Parameters
    ----------
    left, right : DataFrame or TableResult
        Typically left = Sozialräume (boundaries), right = an indicator table.
    left_key, right_key : str
        Key columns; compared as stripped text.
    left_name, right_name : str
        File or layer names used in messages and as suffix for clashing
        column names (``<column>_<right_name stem>``).
    allow_missing_left : bool or list of str
        Keys of ``right`` that may be absent from ``left`` (their rows are
        dropped). ``True`` accepts all.
    allow_missing_right : bool or list of str
        Keys of ``left`` that may be absent from ``right`` (their values are
        NaN). ``True`` accepts all.
    allow_duplicates : bool
        Keep the first row of repeated keys instead of failing.
    config_fields : (str, str)
        Names of the configuration fields behind ``allow_missing_left`` and
        ``allow_missing_right``, quoted in the error's hint.

    Raises
    ------
    GeoplanError
        Duplicate keys, or missing keys that are not allowed; the message
        names the keys, both files and the config field to set.
    """
    lf, _ = _as_frame(left)
    rf, _ = _as_frame(right)
    for frame, k, nm in ((lf, left_key, left_name), (rf, right_key, right_name)):
        if k not in frame.columns:
            raise GeoplanError(
                f"Schlüsselspalte {k!r} fehlt in {nm}.",
                file=nm,
                found="Spalten: " + ", ".join(repr(c) for c in frame.columns if c != "geometry"),
                hint="Schlüsselspalte in der Konfiguration prüfen.",
                message_en=f"Key column {k!r} is missing in {english_words(nm)}.",
                hint_en="Check the key column in the configuration.",
            )
    notes: list[QANote] = []

    def keys_of(frame, k, nm):
        s = frame[k]
        if s.isna().any():
            raise GeoplanError(
                f"Leere Schlüssel in der Spalte {k!r}.",
                file=nm,
                location=f"{int(s.isna().sum())} Zeilen",
                hint="Zeilen ohne Schlüssel ergänzen oder entfernen.",
                message_en=f"Empty keys in the column {k!r}.", hint_en="Fill in or remove the rows without a key.",
            )
        return s.map(lambda v: str(int(v)) if isinstance(v, float) and float(v).is_integer() else str(v).strip())

    lk = keys_of(lf, left_key, left_name)
    rk = keys_of(rf, right_key, right_name)
    duplicates: dict[str, list[str]] = {}
    for nm, ks in ((left_name, lk), (right_name, rk)):
        d = sorted(ks[ks.duplicated()].unique().tolist())
        if d:
            duplicates[nm] = d
    if duplicates and not allow_duplicates:
        raise GeoplanError(
            "Schlüssel kommen beim Verknüpfen mehrfach vor.",
            file=", ".join(duplicates),
            found="; ".join(f"{nm}: {_fmt_list(d)}" for nm, d in duplicates.items()),
            hint="Doppelte Zeilen entfernen oder zusammenfassen.",
            message_en="Keys occur more than once in the join.", hint_en="Remove or combine the duplicate rows.",
        )
    if duplicates:
        notes.append(QANote(STAGE, "Doppelte Schlüssel; jeweils die erste Zeile verwendet: "
                            + "; ".join(f"{nm}: {_fmt_list(d)}" for nm, d in duplicates.items()),
                            details={"duplicates": duplicates},
                            message_en="Duplicate keys; the first row of each used: "
                            + "; ".join(f"{nm}: {_fmt_list(d, lang='en')}" for nm, d in duplicates.items())))
    lset, rset = set(lk), set(rk)
    missing_in_right = [k for k in dict.fromkeys(lk) if k not in rset]
    missing_in_left = [k for k in dict.fromkeys(rk) if k not in lset]

    def zero_hint(missing, other, lang="de"):
        # Keys that match after zero-padding mean lost leading zeros.
        other_stripped = {o.lstrip("0"): o for o in other if _RE_DIGITS.match(o)}
        hits = [m for m in missing if _RE_DIGITS.match(m) and m.lstrip("0") in other_stripped]
        if hits and lang == "en":
            return (f" Note: {len(hits)} keys match when leading zeros are ignored "
                    f"(e.g. {hits[0]!r} ↔ {other_stripped[hits[0].lstrip('0')]!r}); set 'key_width'.")
        if hits:
            return (f" Achtung: {len(hits)} Schlüssel passen, wenn man führende Nullen ignoriert "
                    f"(z. B. {hits[0]!r} ↔ {other_stripped[hits[0].lstrip('0')]!r}); 'key_width' setzen.")
        return ""

    ok_l, bad_l = _allowed(allow_missing_left, missing_in_left)
    ok_r, bad_r = _allowed(allow_missing_right, missing_in_right)
    if bad_l or bad_r:
        parts = []
        if bad_r:
            parts.append(f"{len(bad_r)} Schlüssel aus {left_name} fehlen in {right_name}: {_fmt_list(bad_r)}")
        if bad_l:
            parts.append(f"{len(bad_l)} Schlüssel aus {right_name} fehlen in {left_name}: {_fmt_list(bad_l)}")
        parts_en = []
        if bad_r:
            parts_en.append(f"{len(bad_r)} keys of {english_words(left_name)} are missing in "
                            f"{english_words(right_name)}: {_fmt_list(bad_r, lang='en')}")
        if bad_l:
            parts_en.append(f"{len(bad_l)} keys of {english_words(right_name)} are missing in "
                            f"{english_words(left_name)}: {_fmt_list(bad_l, lang='en')}")
        fields = []
        if bad_r:
            fields.append(config_fields[1])
        if bad_l:
            fields.append(config_fields[0])
        raise GeoplanError(
            f"Die Schlüssel von {left_name} und {right_name} passen nicht zusammen.",
            file=f"{left_name}, {right_name}",
            location=_key_columns_text(left_key, right_key),
            found="; ".join(parts),
            hint="Schlüssel in den Dateien angleichen oder die hinnehmbaren Schlüssel in der Konfiguration unter "
            + " bzw. ".join(repr(f) for f in fields)
            + " eintragen (Liste oder true)."
            + zero_hint(bad_r, rset) + zero_hint(bad_l, lset),
            message_en=f"The keys of {english_words(left_name)} and {english_words(right_name)} do not match.",
            found_en="; ".join(parts_en),
            hint_en="Align the keys in the files or enter the keys that may be missing in the configuration under "
            + " or ".join(repr(f) for f in fields)
            + " (a list or true)."
            + zero_hint(bad_r, rset, "en") + zero_hint(bad_l, lset, "en"),
        )
    if ok_r:
        notes.append(QANote(STAGE, f"{len(ok_r)} Schlüssel aus {left_name} fehlen in {right_name} (zugelassen); "
                            f"Werte bleiben leer: {_fmt_list(ok_r)}.", file=right_name, details={"keys": ok_r},
                            message_en=f"{len(ok_r)} keys of {english_words(left_name)} are missing in "
                            f"{english_words(right_name)} (allowed); "
                            f"their values stay empty: {_fmt_list(ok_r, lang='en')}."))
    if ok_l:
        notes.append(QANote(STAGE, f"{len(ok_l)} Schlüssel aus {right_name} fehlen in {left_name} (zugelassen); "
                            f"Zeilen nicht verwendet: {_fmt_list(ok_l)}.", file=right_name, details={"keys": ok_l},
                            message_en=f"{len(ok_l)} keys of {english_words(right_name)} are missing in "
                            f"{english_words(left_name)} (allowed); "
                            f"those rows are not used: {_fmt_list(ok_l, lang='en')}."))

    lf2 = lf.copy()
    lf2[left_key] = lk.values
    rf2 = rf.copy()
    rf2[right_key] = rk.values
    if allow_duplicates:
        rf2 = rf2[~rk.duplicated().values]
    rf2 = rf2.rename(columns={right_key: "__join_key__"})
    stem = re.sub(r"\W+", "_", Path(str(right_name)).stem).strip("_") or "right"
    clash = {c: f"{c}_{stem}" for c in rf2.columns if c in lf2.columns and c != "__join_key__"}
    rf2 = rf2.rename(columns=clash)
    if "geometry" in rf2.columns:
        rf2 = pd.DataFrame(rf2.drop(columns="geometry"))
    merged = lf2.merge(pd.DataFrame(rf2), how="left", left_on=left_key, right_on="__join_key__", sort=False)
    merged = merged.drop(columns="__join_key__")
    if type(lf).__name__ == "GeoDataFrame" and type(merged).__name__ != "GeoDataFrame":
        import geopandas as gpd

        merged = gpd.GeoDataFrame(merged, geometry=lf.geometry.name, crs=lf.crs)
    merged.index = lf.index
    return JoinResult(frame=merged, missing_in_left=missing_in_left, missing_in_right=missing_in_right,
                      duplicates=duplicates, notes=notes)
