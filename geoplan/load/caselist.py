"""Read an HzE case list as a Jugendamt's case-management software exports it.

One row per help: pseudonymised case id, kind of help by §, start, end
(empty = ongoing), costs (per year, per month or in total) and where the
family lives (a Sozialraum key, a finer key, coordinates, or street and house
number). The list holds social data (§§ 61 ff. SGB VIII), so this loader

* reads the file through :func:`geoplan.load.tables.read_table` and keeps
  only the columns named in the mapping (every other column is dropped
  right after parsing and never leaves this module);
* refuses a mapping that names a column whose header looks like a person's
  name or birth date;
* puts no case id, date or address into any message or QA note: messages
  name rows of the file and counts only.

The result is a frame with one row per help and the columns listed in
:class:`CaseList`; kinds are normalised to § codes (``"27_2"``, ``"29"`` …
``"35a"``, ``"41"``), dates to ``datetime64[ns]``, costs to EUR with the
basis they were given in. Counting happens in :mod:`geoplan.stages.caselist`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from geoplan.errors import GeoplanError, QANote
from geoplan.load import tables
from geoplan.load.tables import read_table

__all__ = [
    "KINDS",
    "GROUPS",
    "DEFAULT_GROUP_OF",
    "CaseListColumns",
    "StreetDirectoryConfig",
    "CaseListConfig",
    "CaseList",
    "normalize_kind",
    "parse_dates",
    "check_mapping",
    "read_case_list",
]

STAGE = "hze"

#: Kinds of help as § codes of SGB VIII (``27_2`` = § 27 Abs. 2).
KINDS: tuple[str, ...] = ("27_2", "28", "29", "30", "31", "32", "33", "34", "35", "35a", "41")

#: Groups of the Kinder- und Jugendhilfestatistik as geoplan names them.
GROUPS: tuple[str, ...] = ("ambulant", "teilstationaer", "stationaer")

#: The usual grouping (HzE monitors of the akjstat / Destatis tables):
#: ambulant §§ 27 Abs. 2, 28, 29, 30, 31, 35 (ISE mostly ambulant);
#: teilstationär § 32; stationär §§ 33, 34. § 35a and § 41 depend on the form
#: of the help: a combined code (``§ 41 i.V.m. § 34``) takes the group of
#: the form; a bare § 35a counts as ambulant (most Eingliederungshilfe is
#: ambulant), a bare § 41 as stationär (most help for young adults is
#: residential). Configurable through ``hze.case_list.groups``.
DEFAULT_GROUP_OF: dict[str, str] = {
    "27_2": "ambulant",
    "28": "ambulant",
    "29": "ambulant",
    "30": "ambulant",
    "31": "ambulant",
    "35": "ambulant",
    "32": "teilstationaer",
    "33": "stationaer",
    "34": "stationaer",
    "35a": "ambulant",
    "41": "stationaer",
}

# Words of the kinds as they appear in exports (checked after the § number).
_KIND_WORDS: tuple[tuple[str, str], ...] = (
    (r"eingliederungshilfe|seelisch", "35a"),
    (r"junge[rn]? volljaehrige|junge erwachsene", "41"),
    (r"\bheim|kinderheim|jugendheim|betreute[rn]? wohnform|betreutes wohnen|wohngruppe", "34"),
    (r"vollzeitpflege|pflegefamilie|pflegestelle", "33"),
    (r"tagesgruppe", "32"),
    (r"familienhilfe|spfh", "31"),
    (r"erziehungsbeistand|betreuungshelfer", "30"),
    (r"gruppenarbeit", "29"),
    (r"intensive sozialpaedagogische einzelbetreuung|\bise\b", "35"),
    (r"erziehungsberatung", "28"),
    (r"flexible|\b27\b", "27_2"),
)

# Column headers that hold a person's name or birth date: never read.
_FORBIDDEN_HEADER = re.compile(
    r"(^|[^a-z])(vor|nach|familien|ruf|geburts)?name($|[^a-z])|vorname|nachname|familienname|"
    r"geburt|geb\.|geb_|gebdat|birth|dob($|[^a-z])|first.?name|last.?name|surname|full.?name",
    re.IGNORECASE,
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CaseListColumns(_Model):
    """Which column of the export holds what (column names as in the file's header)."""

    case_id: str = Field(description="pseudonymisierte Fallnummer")
    kind: str = Field(description="Hilfeart (§ 27 Abs. 2, 29 … 35a, 41 oder Bezeichnung wie 'Heimerziehung')")
    start: str = Field(description="Beginn der Hilfe (Datum)")
    end: str | None = Field(None, description="Ende der Hilfe (Datum; leer = andauernd)")
    cost: str | None = Field(None, description="Kosten in EUR (Grundlage in 'cost_basis')")
    area: str | None = Field(None, description="Sozialraum-Schlüssel")
    subarea: str | None = Field(None, description="Schlüssel einer feineren Ebene (Block, Planungsraum)")
    x: str | None = Field(None, description="Rechtswert / Länge")
    y: str | None = Field(None, description="Hochwert / Breite")
    street: str | None = Field(None, description="Straße")
    house_number: str | None = Field(None, description="Hausnummer (auch '12a')")

    @model_validator(mode="after")
    def _pairs(self):
        if (self.x is None) != (self.y is None):
            raise ValueError("'x' und 'y' nur zusammen angeben")
        if (self.street is None) != (self.house_number is None):
            raise ValueError("'street' und 'house_number' nur zusammen angeben")
        if not any((self.area, self.subarea, self.x, self.street)):
            raise ValueError("mindestens eine Ortsangabe: 'area', 'subarea', 'x'/'y' oder 'street'/'house_number'")
        return self

    def mapped(self) -> dict[str, str]:
        """Role -> column name for every mapped column."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class StreetDirectoryConfig(_Model):
    """The Straßenverzeichnis: street, house-number range, odd/even/all, key."""

    path: Path
    street: str = Field("Straße", description="Spalte mit dem Straßennamen")
    number_from: str = Field("von", description="Spalte: erste Hausnummer des Abschnitts")
    number_to: str = Field("bis", description="Spalte: letzte Hausnummer des Abschnitts")
    parity: str | None = Field("Seite", description="Spalte: 'gerade', 'ungerade' oder 'alle' (leer = alle)")
    key: str = Field("Schlüssel", description="Spalte mit dem Schlüssel des Abschnitts")
    level: Literal["area", "subarea"] = Field(
        "area", description="'area' = Sozialraum-Schlüssel, 'subarea' = feinere Ebene (über die Schlüsseltabelle)")
    sheet: str | int | None = None
    encoding: str | None = None


class CaseListConfig(_Model):
    """``hze.case_list``: an HzE case list (one row per help) counted into per-area, per-year figures."""

    path: Path = Field(description="Fallliste (CSV/XLSX) aus der Fachsoftware")
    columns: CaseListColumns
    sheet: str | int | None = None
    header_row: int | None = None
    encoding: str | None = None
    delimiter: str | None = None
    cost_basis: Literal["jahr", "monat", "gesamt"] | None = Field(
        None, description="Kosten je Jahr (Jahresbetrag), je Monat oder gesamt über die Dauer der Hilfe")
    crs: str | None = Field(None, description="Koordinatenbezug von x/y, z. B. EPSG:25833 oder EPSG:4326")
    key_width: int | None = Field(None, ge=1, description="Schlüssel mit führenden Nullen auf diese Länge auffüllen")
    subarea_key_table: Path | None = Field(
        None, description="Schlüsseltabelle feine Ebene -> Sozialraum (leer = die aus indicators.aggregate)")
    subarea_source_key: str | None = None
    subarea_target_key: str | None = None
    subarea_prefix_len: int | None = Field(None, ge=1, description="statt Tabelle: die ersten n Zeichen")
    street_directory: StreetDirectoryConfig | None = None
    kind_map: dict[str, str] = Field(default_factory=dict,
                                     description="örtliche Bezeichnungen -> § (z. B. 'HE': '34')")
    groups: dict[str, Literal["ambulant", "teilstationaer", "stationaer"]] = Field(
        default_factory=lambda: dict(DEFAULT_GROUP_OF),
        description="§ -> ambulant/teilstationaer/stationaer (Vorgabe: übliche Zuordnung der KJH-Statistik)")
    exclude_kinds: list[str] = Field(
        default_factory=list, description="Hilfearten, die nicht gezählt werden (z. B. ['28', '35a'])")
    measure: Literal["andauernd_und_beendet", "andauernd", "begonnen", "beendet"] = Field(
        "andauernd_und_beendet", description="Fallzahl je Jahr: am 31.12. andauernd + im Jahr beendet (Vorgabe)")
    as_of: date | None = Field(None, description="Stand der Liste (leer = spätestes Datum in der Liste)")
    reference_year: int | None = Field(None, description="Berichtsjahr (leer = letztes vollständiges Jahr)")
    years: int = Field(3, ge=2, le=20, description="Jahre im Panel bis einschließlich Berichtsjahr")
    forecast: Literal["trend", "vorjahr", "mittel"] = Field(
        "trend", description="Fallprognose fürs Haushaltsjahr: stadtweiter Trend, Vorjahr, Mittel der Jahre")
    duplicates: Literal["zusammenfassen", "behalten"] = Field(
        "zusammenfassen", description="überlappende Zeilen desselben Falls und derselben Hilfeart")
    strict: bool = Field(False, description="bei Befunden der Prüfung abbrechen statt nur melden")
    simulated: bool = Field(False, description="die Liste ist simuliert (wird im Bericht so gekennzeichnet)")

    @model_validator(mode="after")
    def _consistent(self):
        cols = self.columns
        if cols.cost is not None and self.cost_basis is None:
            raise ValueError("zu 'columns.cost' gehört 'cost_basis' (jahr, monat oder gesamt)")
        if cols.x is not None and not self.crs:
            raise ValueError("zu Koordinaten (columns.x/y) gehört 'crs', z. B. EPSG:25833")
        if cols.street is not None and self.street_directory is None:
            raise ValueError("zu Adressen (columns.street) gehört 'street_directory'")
        unknown = sorted(set(self.groups) - set(KINDS))
        if unknown:
            raise ValueError(f"unbekannte Hilfearten in 'groups': {', '.join(unknown)}; erlaubt: {', '.join(KINDS)}")
        bad = sorted({*self.kind_map.values(), *self.exclude_kinds} - set(KINDS))
        if bad:
            raise ValueError(f"'kind_map'/'exclude_kinds' nennen unbekannte Hilfearten: {', '.join(bad)}; "
                             f"erlaubt: {', '.join(KINDS)}")
        check_mapping(cols.mapped())
        return self


@dataclass
class CaseList:
    """The case list as read: one row per help, only the mapped columns.

    ``frame`` columns: ``row`` (line in the file, 1-based), ``case_id`` (text),
    ``kind`` (§ code or NA if unknown), ``start``/``end`` (datetime64, NaT =
    missing / ongoing), ``cost`` (EUR, float, NaN = none) and, as mapped,
    ``area``, ``subarea`` (text), ``x``, ``y`` (float), ``street``,
    ``house_number`` (text). ``unknown_kinds`` counts the spellings that were
    not recognised (category labels, no row data). ``summary`` is what the
    manifest may hold: file, row counts, dialect. ``as_of`` is the list's
    date (``as_of_derived``: taken from the latest date in the list, which is
    a row's date; outputs then show its month only).
    """

    frame: pd.DataFrame
    path: str
    cost_basis: str | None
    as_of: pd.Timestamp
    as_of_derived: bool = False
    unknown_kinds: dict[str, int] = field(default_factory=dict)
    bad_dates: dict[str, list[int]] = field(default_factory=dict)
    notes: list[QANote] = field(default_factory=list)
    summary: dict = field(default_factory=dict)


def check_mapping(mapped: dict[str, str]) -> None:
    """Refuse a mapping that would read a person's name or birth date.

    ``mapped`` is role -> column header. The check is on the header text
    (``Name``, ``Vorname``, ``Geburtsdatum``, ``geb.``, ``birth`` …), so the
    column's values are never looked at.
    """
    bad = {role: col for role, col in mapped.items() if _FORBIDDEN_HEADER.search(str(col))}
    if bad:
        raise GeoplanError(
            "Die Zuordnung der Fallliste würde Namen oder Geburtsdaten lesen; das ist nicht zulässig "
            "(Sozialdatenschutz, §§ 61 ff. SGB VIII).",
            location="hze.case_list.columns: " + ", ".join(f"{r} = {c!r}" for r, c in bad.items()),
            expected="pseudonymisierte Fallnummer, Hilfeart, Beginn, Ende, Kosten, Ort",
            hint="Diese Spalten nicht zuordnen; für die Fallnummer eine pseudonymisierte Spalte verwenden.",
            message_en="The case-list mapping would read names or birth dates; this is not allowed "
            "(social data protection, §§ 61 ff. SGB VIII).",
            hint_en="Do not map these columns; use a pseudonymised column as case id.",
        )


# --------------------------------------------------------------------------
# kinds


def _fold(text: str) -> str:
    t = str(text).casefold().replace("ß", "ss")
    for a, b in (("ä", "ae"), ("ö", "oe"), ("ü", "ue")):
        t = t.replace(a, b)
    return re.sub(r"\s+", " ", t).strip()


_RE_PARA = re.compile(r"(?:§+|par\.?|paragraph)?\s*(\d{2})\s*(a\b)?(?:\s*(?:abs\.?|absatz)\s*(\d|ii|iii|iv))?")


def normalize_kind(value, kind_map: dict[str, str] | None = None) -> str | None:
    """§ code of a kind of help as exports write it, or None if unknown.

    ``"§ 34 SGB VIII"``, ``"34"``, ``34.0``, ``"Heimerziehung"`` -> ``"34"``;
    ``"§ 27 Abs. 2"``, ``"27.2"``, ``"27 II"`` -> ``"27_2"``; ``"35a"``,
    ``"§ 35 a SGB VIII"`` -> ``"35a"``; ``"§ 41 i.V.m. § 34"`` -> ``"41"``
    (the group follows the form, see :func:`form_of_kind`). ``kind_map``
    (local code -> §) is consulted first, ignoring case and blanks.

    >>> normalize_kind("§ 34 SGB VIII"), normalize_kind("Heimerziehung"), normalize_kind("§ 27 Abs. 2")
    ('34', '34', '27_2')
    """
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    raw = str(value).strip()
    if not raw:
        return None
    if kind_map:
        folded = {_fold(k): v for k, v in kind_map.items()}
        hit = folded.get(_fold(raw))
        if hit is not None:
            return hit
    t = _fold(raw)
    t = re.sub(r"^(\d+)\.0$", r"\1", t)  # 34.0 from a number cell
    t = re.sub(r"\b(sgb ?viii|sgb 8|kjhg)\b", " ", t)
    m = re.match(r"^\D*?(27)\s*[.,/ ]\s*(2|ii)\b", t)
    if m:
        return "27_2"
    codes = _codes_in(t)
    if codes:
        return codes[0]
    for pattern, code in _KIND_WORDS:
        if re.search(pattern, t):
            return code
    return None


def _codes_in(t: str) -> list[str]:
    out = []
    for m in _RE_PARA.finditer(t):
        num, a, _abs = m.group(1), m.group(2), m.group(3)
        code = num + ("a" if a else "")
        if code == "27":
            code = "27_2"
        if code in KINDS:
            out.append(code)
    return out


def form_of_kind(value) -> str | None:
    """For combined codes (``§ 41 i.V.m. § 34``, ``35a/33``): the § of the form of help, else None."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    codes = _codes_in(re.sub(r"\b(sgb ?viii|kjhg)\b", " ", _fold(str(value))))
    if len(codes) >= 2 and codes[0] in ("41", "35a"):
        return codes[1]
    return None


# --------------------------------------------------------------------------
# dates

_RE_DE_DATE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{2}|\d{4})$")
_RE_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$")
_RE_SERIAL = re.compile(r"^\d{5}(?:\.0+)?$")  # Excel serial day number (1954 … 2173)
_EXCEL_EPOCH = pd.Timestamp("1899-12-30")


def parse_dates(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Parse dates as exports write them; returns (datetime64 series, mask of unreadable cells).

    Accepted: ``31.12.2024``, ``1.3.24`` (two-digit years are 20xx), ISO
    ``2024-12-31`` (also with a time, as XLSX date cells arrive), Excel serial
    day numbers (``45657``). Empty cells are NaT and not unreadable.
    """
    distinct = _distinct_text(values)
    if distinct is not None:  # each distinct text parsed once, then spread by position (code -1: missing)
        codes, uniques = distinct
        u_out, u_bad = _parse_date_cells(uniques.tolist())
        u_out = np.append(u_out, np.datetime64("NaT", "ns"))
        u_bad = np.append(u_bad, False)
        return pd.Series(u_out[codes], index=values.index), u_bad[codes]
    out, bad = _parse_date_cells(values.tolist())
    return pd.Series(out, index=values.index), bad


def _parse_date_cells(values: list) -> tuple[np.ndarray, np.ndarray]:
    out = np.full(len(values), np.datetime64("NaT"), dtype="datetime64[ns]")
    bad = np.zeros(len(values), dtype=bool)
    seen: dict[str, object] = {}  # text -> datetime64 or None (unreadable); lists repeat their dates
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            continue
        s = str(v).strip()
        if not s:
            continue
        if s in seen:
            hit = seen[s]
            if hit is None:
                bad[i] = True
            else:
                out[i] = hit
            continue
        ts = None
        m = _RE_DE_DATE.match(s)
        if m:
            d, mo, y = int(m.group(1)), int(m.group(2)), int(m.group(3))
            y = y + 2000 if y < 100 else y
            ts = _safe_ts(y, mo, d)
        elif (m := _RE_ISO_DATE.match(s)) is not None:
            ts = _safe_ts(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        elif _RE_SERIAL.match(s):
            ts = _EXCEL_EPOCH + pd.Timedelta(days=int(float(s)))
        if ts is None:
            bad[i] = True
            seen[s] = None
        else:
            out[i] = seen[s] = np.datetime64(ts, "ns")
    return out, bad


def _distinct_text(values: pd.Series):
    """:func:`distinct_text`, or None when :data:`geoplan.load.tables.VECTORISED` is off."""
    if not tables.VECTORISED or len(values) < 2:
        return None
    return distinct_text(values)


def distinct_text(values: pd.Series):
    """``(codes, distinct values)`` of a column of text cells and missing values (code -1), or None
    when a cell is not text (XLSX dates, numbers)."""
    arr = values.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(arr, skipna=True) not in ("string", "empty"):
        return None
    codes, uniques = pd.factorize(arr, use_na_sentinel=True)
    return codes, np.asarray(uniques, dtype=object)


def _per_distinct(values: pd.Series, fn) -> list:
    """``[fn(v) for v in values]``, computing ``fn`` once per distinct text (missing cells: ``fn(None)``)."""
    distinct = _distinct_text(values)
    if distinct is None:
        return [fn(v) for v in values.tolist()]
    codes, uniques = distinct
    results = [fn(u) for u in uniques.tolist()] + [fn(None)]
    return [results[c] for c in codes.tolist()]


def _safe_ts(y: int, m: int, d: int):
    try:
        return pd.Timestamp(year=y, month=m, day=d)
    except ValueError:
        return None


# --------------------------------------------------------------------------
# reading


def _text_or_none(v) -> str | None:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    t = str(v).strip()
    return t or None


def read_case_list(cfg: CaseListConfig, *, base_dir: Path | None = None) -> CaseList:
    """Read the case list of ``cfg`` (paths relative to ``base_dir``) into a :class:`CaseList`.

    Raises :class:`GeoplanError` for a missing mapped column, a forbidden
    mapping, unreadable costs or coordinates. Unknown kinds and unreadable
    dates are counted (``unknown_kinds``, ``bad_dates``) for the QA stage,
    which decides (strict mode) whether they stop the run.
    """
    cols = cfg.columns
    mapped = cols.mapped()
    check_mapping(mapped)
    path = Path(cfg.path)
    if base_dir is not None and not path.is_absolute():
        path = Path(base_dir) / path
    numeric = [c for r, c in mapped.items() if r in ("cost", "x", "y")]
    text = [c for r, c in mapped.items() if r not in ("cost", "x", "y", "case_id")]
    res = read_table(
        path,
        key=cols.case_id,
        sheet=cfg.sheet,
        header_row=cfg.header_row,
        encoding=cfg.encoding,
        delimiter=cfg.delimiter,
        allow_duplicates=True,
        allow_mixed_key_lengths=True,
        text_columns=text,
        numeric_columns=numeric,
    )
    raw = res.frame
    missing = [c for c in mapped.values() if c not in raw.columns]
    if missing:
        raise GeoplanError(
            "Spalte(n) der Fallliste fehlen: " + ", ".join(repr(c) for c in missing) + ".",
            file=str(path),
            location="hze.case_list.columns",
            hint="Spaltennamen der Zuordnung an die Kopfzeile der Datei anpassen.",
            message_en="Column(s) of the case list are missing: " + ", ".join(repr(c) for c in missing) + ".",
            hint_en="Match the column names of the mapping to the file's header.",
        )
    header_line = int(res.dialect.get("header_row") or 1)
    # Rows of the file as the user sees them (empty rows are dropped by the
    # reader, so this is approximate only where the file has blank lines).
    rows = np.arange(len(raw)) + header_line + 1
    # Only the mapped columns leave the reader's frame.
    f = pd.DataFrame({"row": rows, "case_id": raw[cols.case_id].astype(str).to_numpy()})
    kinds_raw = raw[cols.kind]
    # a list has few distinct spellings: each is normalised once
    spellings: dict = {}

    def kind_and_form(v):
        memo = ("na",) if v is None or (isinstance(v, float) and np.isnan(v)) else (type(v).__name__, v)
        if memo not in spellings:
            spellings[memo] = (normalize_kind(v, cfg.kind_map), form_of_kind(v))
        return spellings[memo]

    pairs = _per_distinct(kinds_raw, kind_and_form)
    f["kind"] = [a for a, _ in pairs]
    f["form"] = [b for _, b in pairs]
    unknown = kinds_raw[f["kind"].isna().to_numpy() & kinds_raw.notna().to_numpy()].astype(str).str.strip()
    unknown_kinds = {str(k)[:40]: int(n) for k, n in unknown.value_counts().items()}
    n_kind_empty = int(kinds_raw.isna().sum())
    if n_kind_empty:
        unknown_kinds["(leer)"] = n_kind_empty
    bad_dates: dict[str, list[int]] = {}
    for role in ("start", "end"):
        colname = mapped.get(role)
        if colname is None:
            f[role] = pd.Series(np.full(len(f), np.datetime64("NaT"), dtype="datetime64[ns]"))
            continue
        parsed, bad = parse_dates(raw[colname])
        f[role] = parsed.to_numpy()
        if bad.any():
            bad_dates[role] = rows[bad].tolist()
    if "cost" in mapped:
        f["cost"] = raw[mapped["cost"]].to_numpy(dtype=float)
    for role in ("x", "y"):
        if role in mapped:
            f[role] = raw[mapped[role]].to_numpy(dtype=float)
    for role in ("area", "subarea", "street", "house_number"):
        if role in mapped:
            vals = _per_distinct(raw[mapped[role]], _text_or_none)
            if role in ("area", "subarea") and cfg.key_width:
                vals = [v.zfill(cfg.key_width) if v and v.isdigit() else v for v in vals]
            f[role] = pd.Series(vals, index=f.index, dtype=object)
    del raw, res.frame
    if cfg.as_of is not None:
        as_of = pd.Timestamp(cfg.as_of)
    else:
        latest = pd.concat([f["start"], f["end"]]).max()
        if pd.isna(latest):
            raise GeoplanError(
                "Die Fallliste enthält kein lesbares Datum.",
                file=str(path),
                location=f"Spalten {mapped['start']!r}" + (f", {mapped['end']!r}" if "end" in mapped else ""),
                expected="Datum wie 31.12.2024 oder 2024-12-31",
                hint="Datumsspalten der Zuordnung prüfen.",
                message_en="The case list holds no readable date.",
                expected_en="a date such as 31.12.2024 or 2024-12-31", hint_en="Check the date columns of the mapping.",
            )
        as_of = latest
    # Notes of the reader that do not carry cell values (dialect, encoding).
    # (empty cells are normal in a case list: no end, no coordinates; the
    # reader's note on "suppressed" cells is left out)
    # They are findings on the case list: its stage, not the table reader's ("indicators").
    notes = [replace(n, stage=STAGE) for n in res.notes
             if "Schlüssel" not in n.message and not n.details.get("keys")
             and not n.details.get("duplicates") and "suppressed" not in n.details]
    summary = {
        "file": str(path),
        "rows": int(len(f)),
        "columns_read": sorted(mapped.values()),
        **{k: res.dialect.get(k) for k in ("encoding", "delimiter", "decimal", "sheet", "header_row")},
    }
    return CaseList(frame=f, path=str(path), cost_basis=cfg.cost_basis, as_of=as_of,
                    as_of_derived=cfg.as_of is None, unknown_kinds=unknown_kinds, bad_dates=bad_dates, notes=notes, summary=summary)


def read_case_list_inputs(
    cfg: CaseListConfig,
    *,
    base_dir: Path | None = None,
    key_table: pd.DataFrame | None = None,
    key_source: str | None = None,
    key_target: str | None = None,
) -> tuple[CaseList, dict | None, object | None]:
    """Read everything ``hze.case_list`` names: the list, the finer-key mapping, the street directory.

    The mapping (finer key -> Sozialraum key) comes from
    ``cfg.subarea_key_table`` if set, else from ``key_table`` (the frame of
    ``indicators.aggregate.key_table`` the pipeline has already read, with
    its ``key_source``/``key_target`` columns), else None (then
    ``cfg.subarea_prefix_len`` or no finer keys). Returns
    ``(case_list, mapping, street_directory)``.
    """
    def resolve(p):
        p = Path(p)
        return p if base_dir is None or p.is_absolute() else Path(base_dir) / p

    cl = read_case_list(cfg, base_dir=base_dir)
    mapping = None
    if cfg.subarea_key_table is not None:
        if not (cfg.subarea_source_key and cfg.subarea_target_key):
            raise GeoplanError(
                "Zur Schlüsseltabelle der Fallliste fehlen die Spaltennamen.",
                location="hze.case_list.subarea_source_key / subarea_target_key",
                hint="Beide Spalten angeben: feiner Schlüssel und Sozialraum-Schlüssel.",
                message_en="The case list's key table needs subarea_source_key and subarea_target_key.",
                hint_en="Give both columns: the finer key and the Sozialraum key.",
            )
        kt = read_table(resolve(cfg.subarea_key_table), key=cfg.subarea_source_key,
                        text_columns=[cfg.subarea_target_key]).frame
        mapping = dict(zip(kt[cfg.subarea_source_key], kt[cfg.subarea_target_key]))
    elif key_table is not None and key_source and key_target and cfg.columns.subarea is not None:
        mapping = dict(zip(key_table[key_source].astype(str), key_table[key_target].astype(str)))
    directory = None
    if cfg.street_directory is not None:
        from geoplan.load.streets import read_street_directory

        sd = cfg.street_directory
        directory = read_street_directory(resolve(sd.path), street=sd.street, number_from=sd.number_from,
                                          number_to=sd.number_to, parity=sd.parity, key=sd.key, sheet=sd.sheet,
                                          encoding=sd.encoding)
    return cl, mapping, directory
