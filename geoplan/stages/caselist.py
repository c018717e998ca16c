"""Count an HzE case list into per-area, per-year figures (pure: frames in, frames out).

The input is the frame of :class:`geoplan.load.caselist.CaseList` (one row
per help). Three phases, one function each:

1. :func:`locate` assigns each help a Sozialraum key: the Sozialraum key of
   the row if given, else a finer key through the key table (or its first n
   characters), else the point (x, y in the list's CRS) by point-in-polygon,
   else street and house number through the street directory. A point on
   the boundary of two Sozialräume goes to the one with the smallest key
   (deterministic; the polygons are closed sets, so a boundary point lies in
   both).
2. :func:`check_cases` counts what is wrong with the list (QA): rows without
   a location by reason, unknown kinds, missing or unreadable dates, end
   before start, start after the list's date, overlapping duplicates of the
   same case and kind, missing costs. Counts only, never a case id, a date
   or an address. In strict mode any finding stops the run.
3. :func:`count_years` applies the counting rules of the Kinder- und
   Jugendhilfestatistik per year, area and kind (Destatis, Statistiken der
   Kinder- und Jugendhilfe, Erzieherische Hilfen; akjstat HzE-Monitor):

   * ``started`` (begonnen): start in the year;
   * ``ended`` (beendet): end in the year (a help ending on 31.12. is ended,
     not ongoing);
   * ``ongoing`` (am 31.12. andauernd): start on or before 31.12. and no end
     or an end after 31.12.;
   * ``ongoing_or_ended`` (am 31.12. andauernd + im Jahr beendet), the
     measure of the HzE monitors; it equals the helps with at least one day
     in the year;
   * ``days``: days of help in the year, first and last day included, an
     ongoing help counted up to the list's date ``as_of``;
   * ``cost_eur``: costs in the year, pro rata by days: a yearly amount ×
     days / days of the year (365 or 366); a monthly amount × 12 × days /
     days of the year; a total × days in the year / days of the whole help
     (an ongoing help: up to ``as_of``). Computed in cents per help and
     year, summed, rounded to whole EUR per area.

   Each help counts once per year in the group of its kind (``ambulant``,
   ``teilstationaer``, ``stationaer``; a combined code ``§ 41 i.V.m. § 34``
   in the group of its form) and under its § (``p34``, ``p27_2`` …).

:func:`case_counts` runs the three phases and builds the Sozialraum
columns the pipeline expects (``hze_cases``, ``hze_cases_<kind>``,
``hze_cases_prev``, ``hze_cost_prev_eur`` …, see docs/architecture.md) and
the case forecast for the budget year (Stuttgart and Neunkirchen: prior-year
costs × case forecast).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from geoplan import fmt
from geoplan.errors import GeoplanError, QANote
from geoplan.load.caselist import DEFAULT_GROUP_OF, GROUPS, distinct_text

__all__ = [
    "MEASURES",
    "LocateResult",
    "CaseCountResult",
    "locate",
    "check_cases",
    "count_years",
    "reference_year_of",
    "forecast_factor",
    "case_counts",
]

STAGE = "hze"

#: Whole-column versions of the per-row steps (locating by key, sorting the periods, point in polygon
#: per polygon). Same result as the per-row code, which ``False`` runs (tests/test_caselist_fast.py).
VECTORISED = True

#: Config spelling -> column of :func:`count_years`.
MEASURES = {
    "andauernd_und_beendet": "ongoing_or_ended",
    "andauernd": "ongoing",
    "begonnen": "started",
    "beendet": "ended",
}

_OUTCOME_TEXT = {
    "ohne_ort": ("ohne jede Ortsangabe", "without any location"),
    "area_unbekannt": ("Sozialraum-Schlüssel unbekannt", "Sozialraum key unknown"),
    "subarea_unbekannt": ("feiner Schlüssel nicht in der Schlüsseltabelle", "finer key not in the key table"),
    "punkt_ausserhalb": ("Koordinaten außerhalb aller Sozialräume", "point outside every Sozialraum"),
    "strasse_unbekannt": ("Straße nicht im Straßenverzeichnis", "street not in the street directory"),
    "nummer_unbekannt": ("Hausnummer in keinem Abschnitt des Straßenverzeichnisses",
                         "house number in no section of the street directory"),
    "mehrdeutig": ("Adresse im Straßenverzeichnis mehrdeutig", "address ambiguous in the street directory"),
    "ohne_adresse": ("Adresse leer", "address empty"),
}


# --------------------------------------------------------------------------
# 1. locate


@dataclass
class LocateResult:
    """``key`` per row (None = not located), ``method`` (area, subarea, punkt, adresse or the reason it failed)."""

    key: pd.Series
    method: pd.Series

    def counts(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.method.value_counts().sort_index().items()}


def _points_in_polygons(x: np.ndarray, y: np.ndarray, crs, polygons, key: str) -> list[str | None]:
    import geopandas as gpd

    if polygons.crs is None:
        raise GeoplanError("Die Sozialräume haben keinen Koordinatenbezug; Punkte lassen sich nicht zuordnen.",
                           hint="Koordinatenbezug der Grenzen angeben (boundaries.crs).",
                           message_en="The Sozialräume have no CRS; points cannot be assigned.",
                           hint_en="Give the CRS of the boundaries (boundaries.crs).")
    pts = gpd.GeoDataFrame({"_i": np.arange(len(x))}, geometry=gpd.points_from_xy(x, y), crs=crs)
    pts = pts.to_crs(polygons.crs)
    if VECTORISED:
        import shapely

        # polygon by polygon in key order (each prepared once): a point takes the first, i.e. smallest, key
        # of the polygons it intersects -- what the spatial join below gives, without testing each point
        # against unprepared polygons
        px, py = pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy()
        out: list[str | None] = [None] * len(x)
        free = np.ones(len(x), dtype=bool)
        order = polygons[[key, "geometry"]].dropna(subset=[key]).sort_values(key, kind="mergesort")
        for k, geom in zip(order[key].tolist(), order.geometry.tolist()):
            if geom is None or geom.is_empty or not free.any():
                continue
            shapely.prepare(geom)
            hit = np.flatnonzero(free & shapely.intersects_xy(geom, px, py))
            free[hit] = False
            for i in hit.tolist():
                out[i] = str(k)
        return out
    poly = polygons[[key, "geometry"]].rename(columns={key: "_key"})
    # intersects: a point on a shared edge lies in both polygons; the
    # smallest key wins so the result does not depend on polygon order.
    hit = gpd.sjoin(pts, poly, how="left", predicate="intersects")
    hit = hit.sort_values(["_i", "_key"]).drop_duplicates("_i", keep="first").set_index("_i")["_key"]
    return [None if pd.isna(v) else str(v) for v in hit.reindex(np.arange(len(x))).tolist()]


def locate(
    cases: pd.DataFrame,
    *,
    area_keys,
    mapping: dict | pd.Series | None = None,
    prefix_len: int | None = None,
    polygons=None,
    polygon_key: str = "key",
    crs=None,
    directory=None,
    directory_level: str = "area",
) -> LocateResult:
    """Assign each help a Sozialraum key (see the module docstring for the order).

    Parameters
    ----------
    cases : frame with any of ``area``, ``subarea`` (text keys), ``x``, ``y``
        (coordinates in ``crs``), ``street``, ``house_number``.
    area_keys : the Sozialraum keys (text).
    mapping : finer key -> Sozialraum key (the key table), or ``prefix_len``.
    polygons : GeoDataFrame of the Sozialräume with ``polygon_key`` and a CRS.
    directory : :class:`geoplan.load.streets.StreetDirectory` whose keys are
        Sozialraum keys (``directory_level="area"``) or finer keys.
    """
    n = len(cases)
    area_set = {str(k) for k in area_keys}
    keys: list[str | None] = [None] * n
    method = np.array(["ohne_ort"] * n, dtype=object)
    mapping = dict(mapping) if mapping is not None else None

    def fine_to_area(k):
        if k is None:
            return None
        if mapping is not None:
            v = mapping.get(k)
            return None if v is None or pd.isna(v) else str(v)
        if prefix_len is not None:
            return k[:prefix_len]
        return None

    def take(i, k, ok, fail):
        if k is not None and k in area_set:
            keys[i] = k
            method[i] = ok
            return True
        if method[i] == "ohne_ort":
            method[i] = fail
        return False

    todo = np.ones(n, dtype=bool)

    def by_key(column, to_area, ok, fail):
        """Rows still to do with a key in ``column``: ``to_area(str(key))`` in the Sozialräume, else ``fail``."""
        distinct = _distinct_text(cases[column])
        if distinct is None:  # per row
            for i, v in enumerate(cases[column].tolist()):
                if todo[i] and v is not None and not (isinstance(v, float) and np.isnan(v)):
                    todo[i] = not take(i, to_area(str(v)), ok, fail)
            return
        codes, uniques = distinct  # each distinct key looked up once
        found = [to_area(str(u)) for u in uniques.tolist()]
        hit_u = np.array([k is not None and k in area_set for k in found] + [False])
        rows = todo & (codes >= 0)
        hit = rows & hit_u[codes]
        for i in np.flatnonzero(hit).tolist():
            keys[i] = found[codes[i]]
        method[hit] = ok
        method[rows & ~hit & (method == "ohne_ort")] = fail
        todo[hit] = False

    if "area" in cases.columns:
        by_key("area", lambda k: k, "area", "area_unbekannt")
    if "subarea" in cases.columns and (mapping is not None or prefix_len is not None):
        by_key("subarea", fine_to_area, "subarea", "subarea_unbekannt")
    if "x" in cases.columns and polygons is not None:
        x = cases["x"].to_numpy(float)
        y = cases["y"].to_numpy(float)
        idx = np.flatnonzero(todo & np.isfinite(x) & np.isfinite(y))
        if len(idx):
            found = _points_in_polygons(x[idx], y[idx], crs, polygons, polygon_key)
            for i, k in zip(idx, found):
                todo[i] = not take(i, k, "punkt", "punkt_ausserhalb")
    if "street" in cases.columns and directory is not None:
        idx = np.flatnonzero(todo & cases["street"].notna().to_numpy())
        if len(idx):
            found, outcome = directory.lookup_many(cases["street"].to_numpy()[idx],
                                                   cases["house_number"].to_numpy()[idx])
            for i, k, o in zip(idx, found, outcome):
                if k is not None and directory_level == "subarea":
                    k = fine_to_area(k)
                    o = o if k is not None else "subarea_unbekannt"
                todo[i] = not take(i, k, "adresse", o if o != "ok" else "area_unbekannt")
    return LocateResult(key=pd.Series(keys, index=cases.index, dtype=object),
                        method=pd.Series(method, index=cases.index))


def _distinct_text(values: pd.Series):
    """``(codes, distinct values)`` of a column of text keys (:func:`geoplan.load.caselist.distinct_text`),
    or None when :data:`VECTORISED` is off or a cell is not text."""
    return distinct_text(values) if VECTORISED else None


# --------------------------------------------------------------------------
# 2. QA


def check_cases(
    cases: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    located: LocateResult | None = None,
    unknown_kinds: dict[str, int] | None = None,
    bad_dates: dict[str, list[int]] | None = None,
    cost_mapped: bool = False,
    merge_duplicates: bool = True,
    strict: bool = False,
    file: str | None = None,
    k: int | None = None,
    duplicates: np.ndarray | None = None,
) -> tuple[pd.Series, dict[str, int], list[QANote]]:
    """QA of the list: which rows count, the findings as counts, and QA notes.

    Returns ``usable`` (bool per row: located, known kind, valid dates, not a
    merged duplicate), ``counts`` (finding -> number of rows) and notes with
    counts only. Overlapping duplicates (same case id, same kind, periods
    that overlap) are merged into the first row with the union of the
    periods when ``merge_duplicates`` (the later rows do not count).
    ``strict`` raises :class:`GeoplanError` naming the findings and up to ten
    rows of the file (row numbers, no values). ``duplicates``: the overlapping
    duplicates if the caller has them already (:func:`_overlapping_duplicates`).
    """
    n = len(cases)
    start, end = cases["start"], cases["end"]
    counts: dict[str, int] = {"rows": n}
    problems: dict[str, np.ndarray] = {}
    no_start = start.isna().to_numpy()
    problems["beginn_fehlt"] = no_start
    problems["ende_vor_beginn"] = (end.notna() & start.notna() & (end < start)).to_numpy()
    problems["beginn_nach_stand"] = (start.notna() & (start > as_of)).to_numpy()
    problems["hilfeart_unbekannt"] = cases["kind"].isna().to_numpy()
    if located is not None:
        problems["ohne_ort"] = located.key.isna().to_numpy()
    if cost_mapped and "cost" in cases.columns:
        problems["kosten_fehlen"] = cases["cost"].isna().to_numpy()
        problems["kosten_negativ"] = (cases["cost"] < 0).to_numpy()
    dup = _overlapping_duplicates(cases, _valid_period(cases)) if duplicates is None else duplicates
    problems["doppelt_ueberlappend"] = dup
    for name, mask in problems.items():
        counts[name] = int(mask.sum())
    if bad_dates:
        for role, rows in bad_dates.items():
            counts[f"datum_unlesbar_{role}"] = len(rows)
    usable = ~(no_start | problems["ende_vor_beginn"] | problems["beginn_nach_stand"]
               | problems["hilfeart_unbekannt"])
    if located is not None:
        usable &= ~problems["ohne_ort"]
    if merge_duplicates:
        usable &= ~dup
    counts["gezaehlt"] = int(usable.sum())

    notes = _qa_notes(counts, located, unknown_kinds or {}, file, merge_duplicates)
    findings = {k2: v for k2, v in counts.items() if v and k2 not in ("rows", "gezaehlt")}
    if strict and findings:
        rows = cases["row"].to_numpy() if "row" in cases.columns else np.arange(n) + 2
        where = []
        for name, mask in problems.items():
            if mask.any():
                where.append(f"{name}: Zeilen " + ", ".join(str(r) for r in rows[mask][:10])
                             + (" …" if mask.sum() > 10 else ""))
        for role, rws in (bad_dates or {}).items():
            where.append(f"datum_unlesbar_{role}: Zeilen " + ", ".join(map(str, rws[:10])))
        raise GeoplanError(
            "Die Prüfung der Fallliste hat Befunde (strenger Modus): "
            + ", ".join(f"{k2} {v}" for k2, v in findings.items()) + ".",
            file=file,
            location="; ".join(where),
            hint="Die genannten Zeilen in der Fachsoftware korrigieren und neu exportieren, "
            "oder hze.case_list.strict auf false setzen (Befunde werden dann gemeldet und die Zeilen nicht gezählt)."
            + (" Unbekannte Hilfearten: " + ", ".join(f"{s!r} ({c})" for s, c in unknown_kinds.items())
               + "; in hze.case_list.kind_map zuordnen." if unknown_kinds else ""),
            message_en="The case list check has findings (strict mode): "
            + ", ".join(f"{k2} {v}" for k2, v in findings.items()) + ".",
            hint_en="Correct the rows named in the case-management software and export again, "
            "or set hze.case_list.strict to false.",
        )
    return pd.Series(usable, index=cases.index), counts, notes


def _period_order(cases: pd.DataFrame, valid: np.ndarray) -> np.ndarray:
    """Positions of the ``valid`` rows sorted by case id, kind (missing: ``?``), start and position."""
    pos = np.flatnonzero(valid)
    if VECTORISED:  # the sort of the frame below on integer codes (sorted factorisation keeps the order)
        cid = _sorted_codes(cases["case_id"].to_numpy()[pos])[0]
        kind = pd.factorize(cases["kind"].fillna("?").to_numpy()[pos], sort=True)[0]
        start = cases["start"].to_numpy("datetime64[ns]")[pos].view(np.int64)
        return pos[np.lexsort((pos, start, kind, cid))]
    f = pd.DataFrame({
        "pos": np.arange(len(cases)),
        "case_id": cases["case_id"].to_numpy(),
        "kind": cases["kind"].fillna("?").to_numpy(),
        "start": cases["start"].to_numpy(),
    })[valid]
    return f.sort_values(["case_id", "kind", "start", "pos"], kind="mergesort")["pos"].to_numpy()


def _sorted_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize(values, sort=True)`` (codes, missing -1; the distinct values as an object array): for text,
    the distinct texts sorted by Python's ``sorted`` (the same order; faster than pandas' sort of an object
    array of tens of thousands of case ids)."""
    codes, uniques = pd.factorize(values)
    uniques = list(uniques)
    if not all(type(u) is str for u in uniques):
        codes, uniques = pd.factorize(values, sort=True)
        return codes, np.asarray(uniques, dtype=object)
    order = sorted(range(len(uniques)), key=uniques.__getitem__)
    rank = np.empty(len(uniques), dtype=np.intp)
    rank[order] = np.arange(len(uniques))
    sorted_codes = np.where(codes >= 0, rank[np.maximum(codes, 0)], -1) if uniques else codes
    return sorted_codes, np.asarray([uniques[i] for i in order], dtype=object)


def _overlapping_duplicates(cases: pd.DataFrame, valid: np.ndarray, order: np.ndarray | None = None) -> np.ndarray:
    """Rows whose period overlaps an earlier row (by start) of the same case id and kind.

    ``order``: :func:`_period_order` of ``valid`` if already computed."""
    dup = np.zeros(len(cases), dtype=bool)
    order = _period_order(cases, valid) if order is None else order
    case_id = cases["case_id"].to_numpy()[order]
    kind = cases["kind"].fillna("?").to_numpy()[order]
    same = (case_id[1:] == case_id[:-1]) & (kind[1:] == kind[:-1])
    if not same.any():
        return dup
    # running max of the end within a (case, kind) group: a row starting on
    # or before it overlaps an earlier row
    grp = np.concatenate([[0], np.cumsum(~same)])
    ends = _end_or_far(cases)[order]
    run_end = pd.Series(ends).groupby(grp).cummax().to_numpy()
    starts = cases["start"].to_numpy()[order]
    overl = np.concatenate([[False], same & (starts[1:] <= run_end[:-1])])
    dup[order[overl]] = True
    return dup


_FAR = np.datetime64("2261-12-31", "ns")  # "no end" when comparing periods


def _end_or_far(cases: pd.DataFrame) -> np.ndarray:
    e = cases["end"].to_numpy("datetime64[ns]")
    return np.where(np.isnat(e), _FAR, e)


def _valid_period(cases: pd.DataFrame) -> np.ndarray:
    """Rows with a start and no end before it (the rows duplicates are looked for in)."""
    start, end = cases["start"], cases["end"]
    return (start.notna() & ~(end.notna() & (end < start))).to_numpy()


def _merged_ends(cases: pd.DataFrame, dup: np.ndarray, order: np.ndarray | None = None) -> pd.Series:
    """End of each row, for the first of overlapping duplicates extended to the union of their periods.

    ``order``: :func:`_period_order` of the valid periods if already computed."""
    end = cases["end"].copy()
    if not dup.any():
        return end
    order = _period_order(cases, _valid_period(cases)) if order is None else order
    d = dup[order]
    head = np.cumsum(~d)
    union = pd.Series(_end_or_far(cases)[order]).groupby(head).transform("max")
    heads = ~d
    new = union.to_numpy()[heads]
    new = pd.Series(new).where(pd.Series(new) != _FAR)
    end.iloc[order[heads]] = new.to_numpy()
    return end


def _qa_notes(counts, located, unknown_kinds, file, merge) -> list[QANote]:
    notes: list[QANote] = []
    n, n_en = fmt.number(counts["rows"]), fmt.number(counts["rows"], lang="en")

    def add(key, text, text_en, level="warnung"):
        v = counts.get(key, 0)
        if v:
            notes.append(QANote(STAGE, f"Fallliste: {fmt.number(v)} von {n} Zeilen {text}.", level=level, file=file,
                                details={"finding": key, "rows": v},
                                message_en=f"Case list: {fmt.number(v, lang='en')} of {n_en} rows {text_en}."))

    if located is not None and counts.get("ohne_ort"):
        by = located.counts()
        parts = [f"{_OUTCOME_TEXT[m][0]}: {c}" for m, c in by.items() if m in _OUTCOME_TEXT and c]
        parts_en = [f"{_OUTCOME_TEXT[m][1]}: {c}" for m, c in by.items() if m in _OUTCOME_TEXT and c]
        notes.append(QANote(STAGE, f"Fallliste: {fmt.number(counts['ohne_ort'])} von {n} Zeilen ohne Zuordnung zu einem "
                            "Sozialraum (" + "; ".join(parts) + "); sie werden nicht gezählt.",
                            file=file, details={"finding": "ohne_ort", "rows": counts["ohne_ort"],
                                                "by_reason": {m: c for m, c in by.items() if m in _OUTCOME_TEXT}},
                            message_en=f"Case list: {fmt.number(counts['ohne_ort'], lang='en')} of {n_en} rows not assigned to a Sozialraum ("
                            + "; ".join(parts_en) + "); they are not counted."))
    if counts.get("hilfeart_unbekannt"):
        notes.append(QANote(STAGE, f"Fallliste: {fmt.number(counts['hilfeart_unbekannt'])} von {n} Zeilen mit unbekannter "
                            f"Hilfeart ({len(unknown_kinds)} " + ("Schreibweise" if len(unknown_kinds) == 1 else "verschiedene Schreibweisen")
                            + "); sie werden nicht gezählt. "
                            "Örtliche Bezeichnungen in hze.case_list.kind_map zuordnen.",
                            file=file, details={"finding": "hilfeart_unbekannt",
                                                "rows": counts["hilfeart_unbekannt"]},
                            message_en=f"Case list: {fmt.number(counts['hilfeart_unbekannt'], lang='en')} of {n_en} rows with an unknown kind "
                            f"of help ({len(unknown_kinds)} " + ("spelling" if len(unknown_kinds) == 1 else "different spellings")
                            + "); they are not counted. Map the local names in hze.case_list.kind_map."))
    add("beginn_fehlt", "ohne Beginn; sie werden nicht gezählt", "without a start date; they are not counted")
    for role, word, word_en in (("start", "Beginn", "start"), ("end", "Ende", "end")):
        add(f"datum_unlesbar_{role}", f"mit unlesbarem Datum ({word}); als fehlend gelesen",
            f"with an unreadable date ({word_en}); read as missing")
    add("ende_vor_beginn", "mit Ende vor Beginn; sie werden nicht gezählt", "ending before they start; they are not counted")
    add("beginn_nach_stand", "mit Beginn nach dem Stand der Liste; sie werden nicht gezählt",
        "starting after the list's reference date; they are not counted")
    add("doppelt_ueberlappend", "überschneiden sich mit einer anderen Zeile desselben Falls und derselben Hilfeart"
        + ("; sie werden mit ihr zu einer Hilfe zusammengefasst" if merge else "; beide werden gezählt"),
        "overlap another row of the same case and the same kind of help"
        + ("; they are merged with it into one help" if merge else "; both are counted"))
    add("kosten_fehlen", "ohne Kosten; als 0 EUR gezählt", "without costs; counted as EUR 0")
    add("kosten_negativ", "mit negativen Kosten (Erstattungen?); so übernommen",
        "with negative costs (refunds?); taken as they are", level="info")
    return notes


# --------------------------------------------------------------------------
# 3. counting


def _days(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whole days from a to b, both included (0 if b < a); datetime64 arrays."""
    d = (b - a).astype("timedelta64[D]").astype(np.int64) + 1
    return np.maximum(d, 0)


def count_years(
    cases: pd.DataFrame,
    years,
    *,
    as_of: pd.Timestamp,
    cost_basis: str | None = None,
    group_of: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Per-year counts of the helps in ``cases`` (all rows count; filter before).

    ``cases`` needs ``key``, ``kind`` (§ code), ``start``, ``end`` (NaT =
    ongoing), optionally ``form`` (§ of the form for combined codes) and
    ``cost`` (EUR on ``cost_basis``). Returns a long frame, one row per
    (key, year, kind) with kind = each group, each § (``p34`` …) and
    ``alle``; columns ``started``, ``ended``, ``ongoing``,
    ``ongoing_or_ended``, ``days`` (int) and ``cost_eur`` (int EUR).
    """
    group_of = dict(DEFAULT_GROUP_OF if group_of is None else group_of)
    start = cases["start"].to_numpy("datetime64[D]")
    end_raw = cases["end"].to_numpy("datetime64[D]")
    has_end = ~np.isnat(end_raw)
    as_of_d = np.datetime64(pd.Timestamp(as_of).date(), "D")
    # days are counted up to the end, an ongoing help up to the list's date
    last = np.where(has_end, np.minimum(np.where(has_end, end_raw, as_of_d), as_of_d), as_of_d)
    cost = cases["cost"].to_numpy(float) if "cost" in cases.columns else np.zeros(len(cases))
    cost = np.nan_to_num(cost, nan=0.0)
    total_days = _days(start, last)
    kind = cases["kind"].astype(object).to_numpy()
    form = cases["form"].astype(object).to_numpy() if "form" in cases.columns else np.full(len(cases), None)
    group = np.array([group_of.get(f if isinstance(f, str) else k, None) for k, f in zip(kind, form)], dtype=object)
    coded = _coded_columns(cases["key"].to_numpy(dtype=object), group, kind) if VECTORISED and years else None
    out = []
    for y in years:
        y0 = np.datetime64(f"{int(y)}-01-01", "D")
        y1 = np.datetime64(f"{int(y)}-12-31", "D")
        n_days_year = int((y1 - y0).astype(np.int64)) + 1
        started = (start >= y0) & (start <= y1)
        ended = has_end & (end_raw >= y0) & (end_raw <= y1)
        ongoing = (start <= y1) & (~has_end | (end_raw > y1))
        days = _days(np.maximum(start, y0), np.minimum(last, y1))
        if cost_basis == "jahr":
            c = cost * days / n_days_year
        elif cost_basis == "monat":
            c = cost * 12.0 * days / n_days_year
        elif cost_basis == "gesamt":
            c = np.divide(cost * days, total_days, out=np.zeros(len(cost)), where=total_days > 0)
        else:
            c = np.zeros(len(cost))
        cents = np.rint(c * 100.0).astype(np.int64)
        part = pd.DataFrame({
            **({"key": cases["key"].to_numpy(), "group": group, "para": kind} if coded is None else coded[0]),
            "year": int(y),
            "started": started.astype(np.int64), "ended": ended.astype(np.int64),
            "ongoing": ongoing.astype(np.int64), "ongoing_or_ended": (ongoing | ended).astype(np.int64),
            "days": days.astype(np.int64), "cents": cents,
        })
        out.append(part)
    rows = pd.concat(out, ignore_index=True) if out else pd.DataFrame(
        columns=["key", "year", "group", "para", "started", "ended", "ongoing", "ongoing_or_ended", "days", "cents"])
    vals = ["started", "ended", "ongoing", "ongoing_or_ended", "days", "cents"]
    if coded is not None:
        return _count_coded(rows, coded[1], vals)
    by_group = rows.dropna(subset=["group"]).groupby(["key", "year", "group"], sort=True)[vals].sum()
    by_group = by_group.reset_index().rename(columns={"group": "kind"})
    by_para = rows.groupby(["key", "year", "para"], sort=True)[vals].sum().reset_index()
    by_para["kind"] = "p" + by_para.pop("para").astype(str)
    total = rows.groupby(["key", "year"], sort=True)[vals].sum().reset_index()
    total["kind"] = "alle"
    panel = pd.concat([by_group, by_para, total], ignore_index=True)
    panel["cost_eur"] = _cents_to_eur(panel.pop("cents").to_numpy())
    return panel[["key", "year", "kind", *vals[:-1], "cost_eur"]].reset_index(drop=True)


def _coded_columns(key: np.ndarray, group: np.ndarray, para: np.ndarray):
    """The text columns ``key``, ``group``, ``para`` of :func:`count_years` as sorted integer codes (missing: -1),
    factorised once for all years instead of grouped as text per year: ``(columns, distinct values)``, or None
    when a column holds anything but text (then the rows are grouped as they are)."""
    columns, values = {}, {}
    for name, arr in (("key", key), ("group", group), ("para", para)):
        codes, uniques = _sorted_codes(arr)
        if pd.api.types.infer_dtype(uniques, skipna=False) not in ("string", "empty"):
            return None
        columns[name], values[name] = codes, uniques
    if not (columns["key"] >= 0).any():
        return None
    return columns, values


def _count_coded(rows: pd.DataFrame, values: dict, vals: list[str]) -> pd.DataFrame:
    """The sums of :func:`count_years` over rows whose text columns are sorted codes (:func:`_coded_columns`):
    grouping by the codes gives the groups in the order of their texts; missing texts (-1) are left out, as
    grouping by the texts leaves out missing ones."""
    rows = rows[rows["key"].to_numpy() >= 0]
    parts = []
    for column, prefix in (("group", ""), ("para", "p")):
        sub = rows[rows[column].to_numpy() >= 0]
        g = sub.groupby(["key", "year", column], sort=True)[vals].sum().reset_index()
        parts.append((g, np.asarray([prefix + str(v) for v in values[column]], dtype=object)[g.pop(column).to_numpy()]))
    total = rows.groupby(["key", "year"], sort=True)[vals].sum().reset_index()
    parts.append((total, np.full(len(total), "alle", dtype=object)))
    panel = pd.concat([g for g, _ in parts], ignore_index=True)
    kinds = np.concatenate([k for _, k in parts])
    return pd.DataFrame({
        "key": values["key"][panel["key"].to_numpy()], "year": panel["year"].to_numpy(), "kind": kinds,
        **{v: panel[v].to_numpy() for v in vals[:-1]}, "cost_eur": _cents_to_eur(panel["cents"].to_numpy()),
    })


def _cents_to_eur(cents: np.ndarray) -> np.ndarray:
    """Whole EUR, half a euro rounded away from zero (commercial rounding)."""
    c = np.asarray(cents, dtype=np.int64)
    return (np.sign(c) * ((np.abs(c) + 50) // 100)).astype(np.int64)


def reference_year_of(as_of: pd.Timestamp) -> int:
    """The last complete calendar year of a list dated ``as_of``."""
    as_of = pd.Timestamp(as_of)
    return as_of.year if (as_of.month, as_of.day) == (12, 31) else as_of.year - 1


def forecast_factor(totals: pd.Series, method: str, horizon: int) -> float:
    """City-wide factor from the reference year's cases to the budget year.

    ``totals``: city-wide cases per year (index = year, ascending).
    ``trend``: geometric mean annual change over the panel,
    ``(last / first) ** (1 / (years − 1))``, to the power ``horizon`` (years
    from the reference year to the budget year); ``vorjahr``: 1;
    ``mittel``: mean over the panel / last year. Area counts are too small
    for trends of their own, so every area gets the city-wide factor.
    """
    t = totals.sort_index().astype(float)
    if method == "vorjahr" or len(t) < 2 or t.iloc[-1] <= 0:
        return 1.0
    if method == "mittel":
        return float(t.mean() / t.iloc[-1])
    if t.iloc[0] <= 0:
        return 1.0
    g = (t.iloc[-1] / t.iloc[0]) ** (1.0 / (len(t) - 1))
    return float(g ** horizon)


@dataclass
class CaseCountResult:
    """Everything :func:`case_counts` computes from a case list.

    frame : one row per Sozialraum key (index ``key``) with ``hze_cases``,
        ``hze_cases_<group>``, ``hze_cases_prev``, ``hze_cases_prev_<group>``,
        ``hze_cost_prev_eur`` (budget kinds), ``hze_cost_prev_<group>_eur``,
        ``hze_cases_forecast`` and ``hze_cost_forecast_eur``.
    panel : long frame of :func:`count_years` (all areas, years, kinds).
    years : the panel years; ``reference_year`` the last of them.
    qa : finding -> number of rows; ``located``: method -> rows.
    """

    frame: pd.DataFrame
    panel: pd.DataFrame
    years: list[int]
    reference_year: int
    as_of: pd.Timestamp
    stand: str
    measure: str
    forecast_factor: float
    qa: dict[str, int]
    located: dict[str, int]
    notes: list[QANote] = field(default_factory=list)

    def panel_wide(self, kind: str = "alle", value: str | None = None) -> pd.DataFrame:
        """Counts per key (rows) and year (columns ``hze_cases_<year>``) of one kind; for the need model's panel."""
        value = value or MEASURES[self.measure]
        p = self.panel[self.panel["kind"] == kind].pivot(index="key", columns="year", values=value)
        p = p.reindex(index=self.frame.index, columns=self.years).fillna(0).astype(np.int64)
        p.columns = [f"hze_cases_{y}" for y in p.columns]
        return p

    def summary(self) -> dict:
        """What the manifest may hold: counts and settings, nothing row-level."""
        return {"as_of": self.stand, "years": self.years,
                "reference_year": self.reference_year, "measure": self.measure,
                "forecast_factor": round(self.forecast_factor, 6), "qa": self.qa, "located": self.located}


def case_counts(
    caselist,
    cfg,
    *,
    area_keys,
    budget_year: int,
    budget_kinds=GROUPS,
    mapping=None,
    polygons=None,
    polygon_key: str = "key",
    directory=None,
) -> CaseCountResult:
    """Locate, check and count a case list (``geoplan.load.caselist.CaseList``) by ``cfg`` (``CaseListConfig``).

    ``area_keys``: the Sozialraum keys in frame order; ``mapping``: finer key
    -> Sozialraum key (the key table; default prefix ``cfg.subarea_prefix_len``);
    ``polygons``: the Sozialräume (GeoDataFrame) for coordinates;
    ``directory``: the street directory. Areas without any help get 0.
    """
    cases = caselist.frame
    as_of = pd.Timestamp(caselist.as_of)
    loc = locate(cases, area_keys=area_keys, mapping=mapping, prefix_len=cfg.subarea_prefix_len,
                 polygons=polygons, polygon_key=polygon_key, crs=cfg.crs, directory=directory,
                 directory_level=cfg.street_directory.level if cfg.street_directory else "area")
    merge = cfg.duplicates == "zusammenfassen"
    order = _period_order(cases, _valid_period(cases))
    dup = _overlapping_duplicates(cases, _valid_period(cases), order)
    usable, qa, notes = check_cases(cases, as_of=as_of, located=loc, unknown_kinds=caselist.unknown_kinds,
                                    bad_dates=caselist.bad_dates, cost_mapped=cfg.columns.cost is not None,
                                    merge_duplicates=merge, strict=cfg.strict, file=caselist.path, duplicates=dup)
    # a list date taken from the rows is a row's date: show its month only
    stand = f"{as_of:%m.%Y}" if getattr(caselist, "as_of_derived", False) else f"{as_of:%d.%m.%Y}"
    ref = cfg.reference_year if cfg.reference_year is not None else reference_year_of(as_of)
    if pd.Timestamp(year=ref, month=12, day=31) > as_of:
        raise GeoplanError(
            f"Das Berichtsjahr {ref} ist in der Fallliste nicht vollständig (Stand {stand}).",
            file=caselist.path, location="hze.case_list.reference_year",
            hint="Ein früheres Berichtsjahr wählen oder 'as_of' (Stand der Liste) angeben.",
            message_en=f"The reference year {ref} is not complete in the case list (as of {stand}).",
            hint_en="Choose an earlier reference year or give 'as_of' (the list's reference date).",
        )
    years = list(range(ref - cfg.years + 1, ref + 1))
    work = cases.loc[usable.to_numpy()].copy()
    if merge and qa.get("doppelt_ueberlappend"):
        work["end"] = _merged_ends(cases, dup, order).loc[work.index]
    work["key"] = loc.key.loc[work.index].to_numpy()
    if cfg.exclude_kinds:
        excluded = work["kind"].isin(cfg.exclude_kinds).to_numpy()
        qa["nicht_gezaehlte_hilfeart"] = int(excluded.sum())
        qa["gezaehlt"] -= int(excluded.sum())
        work = work.loc[~excluded]
        notes.append(QANote(STAGE, f"Fallliste: {int(excluded.sum())} Zeilen der Hilfearten "
                            + ", ".join(f"§ {k.replace('_2', ' Abs. 2')}" for k in cfg.exclude_kinds)
                            + " nicht gezählt (hze.case_list.exclude_kinds).", level="info", file=caselist.path,
                            message_en=f"Case list: {int(excluded.sum())} rows of the kinds of help "
                            + ", ".join(f"§ {k.replace('_2', '(2)')}" for k in cfg.exclude_kinds)
                            + " not counted (hze.case_list.exclude_kinds)."))
    panel = count_years(work, years, as_of=as_of, cost_basis=caselist.cost_basis, group_of=cfg.groups)
    frame, factor = _area_columns(panel, [str(k) for k in area_keys], years, MEASURES[cfg.measure],
                                  budget_kinds, budget_year, cfg.forecast)
    qa_total = int(panel.loc[(panel["kind"] == "alle") & (panel["year"] == ref), MEASURES[cfg.measure]].sum())
    notes = list(caselist.notes) + notes
    notes.append(QANote(
        STAGE,
        f"HzE-Fallliste: {fmt.number(qa['gezaehlt'])} von {fmt.number(qa['rows'])} Zeilen gezählt; {ref}: {fmt.number(qa_total)} Hilfen "
        f"({_MEASURE_TEXT[cfg.measure]}), Jahre {years[0]}–{years[-1]}, Stand {stand}"
        + ("; die Liste ist simuliert." if cfg.simulated else "."),
        level="info", file=caselist.path, details={"rows": qa["rows"], "counted": qa["gezaehlt"]},
        message_en=f"HzE case list: {fmt.number(qa['gezaehlt'], lang='en')} of {fmt.number(qa['rows'], lang='en')} rows counted; "
        f"{ref}: {fmt.number(qa_total, lang='en')} helps "
        f"({_MEASURE_TEXT_EN[cfg.measure]}), years {years[0]}–{years[-1]}, as of {stand}"
        + ("; the list is simulated." if cfg.simulated else "."),
    ))
    return CaseCountResult(frame=frame, panel=panel, years=years, reference_year=ref, as_of=as_of, stand=stand,
                           measure=cfg.measure, forecast_factor=factor, qa=qa, located=loc.counts(), notes=notes)


_MEASURE_TEXT = {
    "andauernd_und_beendet": "am 31.12. andauernd + im Jahr beendet",
    "andauernd": "am 31.12. andauernd",
    "begonnen": "im Jahr begonnen",
    "beendet": "im Jahr beendet",
}
_MEASURE_TEXT_EN = {
    "andauernd_und_beendet": "ongoing on 31 Dec + ended in the year",
    "andauernd": "ongoing on 31 Dec",
    "begonnen": "begun in the year",
    "beendet": "ended in the year",
}


def _area_columns(panel, keys, years, value, budget_kinds, budget_year, method):
    ref, prev = years[-1], years[-1] - 1

    def pick(year, kind, col):
        sel = panel[(panel["year"] == year) & (panel["kind"] == kind)].set_index("key")[col]
        return sel.reindex(keys).fillna(0).astype(np.int64)

    out = pd.DataFrame(index=pd.Index(keys, name="key"))
    out["hze_cases"] = pick(ref, "alle", value)
    for g in GROUPS:
        out[f"hze_cases_{g}"] = pick(ref, g, value)
    out["hze_cases_prev"] = pick(prev, "alle", value)
    for g in GROUPS:
        out[f"hze_cases_prev_{g}"] = pick(prev, g, value)
    # "prior-year costs" from the budget year's view: the reference year
    cost_total = np.zeros(len(keys), dtype=np.int64)
    for g in GROUPS:
        c = pick(ref, g, "cost_eur")
        out[f"hze_cost_prev_{g}_eur"] = c
        if g in budget_kinds:
            cost_total += c.to_numpy()
    out["hze_cost_prev_eur"] = cost_total
    totals = panel[panel["kind"] == "alle"].groupby("year")[value].sum().reindex(years).fillna(0)
    factor = forecast_factor(totals, method, budget_year - ref)
    out["hze_cases_forecast"] = out["hze_cases"] * factor
    out["hze_cost_forecast_eur"] = np.rint(out["hze_cost_prev_eur"] * factor).astype(np.int64)
    return out, factor
