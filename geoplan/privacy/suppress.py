"""Small-cell suppression for HzE counts (Geheimhaltung kleiner Fallzahlen).

HzE case numbers per Sozialraum are data about families. A count from 1 to
k − 1 (k = 3 by default) could point to one identifiable family and is never
published.

Rules
-----
Primary suppression
    every published count c with 1 ≤ c ≤ k − 1 (interior cells *and* totals)
    is replaced by the marker ``"< k"`` (``"< 3"``). A count of 0 is shown: it
    says that no family in the area received that help, which discloses
    nothing about any family, and hiding zeros would force far more secondary
    suppression (a hidden 0 next to a hidden 2 is the classic way to leak the
    2). Because zeros are always shown, a reader knows that every suppressed
    cell is ≥ 1; the audit below takes that into account.
Secondary suppression
    published totals let a reader recompute a suppressed cell by
    subtraction. The table considered is: the areas × the count columns, the
    totals per ``group`` (Bezirk) and for the whole city (always treated as
    published, whether or not a total row is shown: a report always states
    them) and, when several count columns form a table, the row totals per
    area (see ``row_total``). Every *line* (a total and the cells that add up
    to it) must contain either no suppressed cell or at least two. If a line
    has exactly one, the smallest non-zero published cell of that line is
    suppressed as well (interior cells before totals, then the smallest
    count — least information lost — then the row order), and the lines are
    checked again until nothing changes (Hundepool et al. 2012, *Statistical
    Disclosure Control*, Wiley, ch. 4 "Magnitude tabular data" on secondary
    cell suppression and ch. 5 "Frequency tables": a lone suppressed cell in
    a line with a published total is recomputed by subtraction). Secondary cells are marked ``"x"``
    (Destatis: "Tabellenfach gesperrt"), not ``"< 3"``, because they are
    not small.
Audit
    the line rule is necessary but not sufficient: two small cells in one
    line whose sum is 2 are both exactly 1. After the line rule, every
    primary cell's feasible range is computed by linear programming from what
    a reader knows — the published cells, the totals, primary cells lie in
    [1, k − 1], secondary cells are ≥ k (they are non-zero and not small) —
    (Hundepool et al. 2012, ch. 4: auditing a suppression pattern by the
    feasibility intervals an intruder can compute with linear programming). If a
    primary cell's range holds only one integer, one more cell of one of its
    lines is suppressed (the line with fewest suppressed cells, then the same
    choice as above) and the whole check repeats. The structure is a
    hierarchical two-way table, whose constraint matrix is totally
    unimodular, so the LP bounds are the integer bounds. A fast interval
    propagation over the lines finds most such cases before the LP runs.
    Where a linked group of suppressed cells lies on a single line (always
    so for one count column without a group column), the feasible range is
    one equation with bounds and the interval formula gives the LP's answer
    exactly, so no LP is solved (10,000 areas in a fraction of a second).
    Some pins no suppression can lift: a total marked "< 3" made of two cells
    marked "< 3" says 1 + 1 even when every other cell is hidden. These are
    found first (propagation with every non-zero cell hidden), left alone,
    and reported (``fully_protected`` False, a warning note): the reader
    learns the exact value of a cell already shown as small, nothing more.

Rates derived from a suppressed count (cases per 1,000 under 21, observed /
expected) would give the count back; :func:`suppress_rates` turns them into
ranges or withholds them.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from geoplan import fmt
from geoplan.errors import GeoplanError, QANote

__all__ = [
    "DisclosureError",
    "SuppressionResult",
    "assert_no_small_counts",
    "audit_suppression",
    "find_small_counts",
    "format_rate_range",
    "protect_sozialraum_frame",
    "suppress_counts",
    "suppress_rates",
]

SECONDARY_MARKER = "x"
WITHHELD_MARKER = "–"
TOTAL_LABEL = "Gesamt"
ROW_TOTAL = "__row_total__"


def primary_marker(k: int) -> str:
    """Marker of a primarily suppressed count: ``"< 3"`` for k = 3."""
    return f"< {k}"


class DisclosureError(GeoplanError, AssertionError):
    """A small count (1 … k − 1) was found in data meant for publication."""


# --------------------------------------------------------------------------
# the table of cells and its lines
# --------------------------------------------------------------------------
@dataclass
class _Table:
    values: np.ndarray  # int64, one per cell
    is_total: np.ndarray  # bool
    order: np.ndarray  # deterministic tie-break (row position, column position)
    labels: list  # (row label, column) for notes
    lines: list  # list of np.ndarray of cell ids (the total first)


def _build_table(counts: np.ndarray, columns: list, row_margin: bool, groups, row_labels) -> tuple[_Table, dict]:
    """Cells: interior (n × m), row totals, group totals, city totals.

    Returns the table and an index dict mapping ("i", r, c) / ("g", g, c) /
    ("t", c) to cell ids; c == ROW_TOTAL is the row-total column.
    """
    n, m = counts.shape
    cols = list(columns) + ([ROW_TOTAL] if row_margin else [])
    idx: dict = {}
    values: list[int] = []
    is_total: list[bool] = []
    order: list[tuple] = []
    labels: list = []

    def add(key, value, total, ordkey, label):
        idx[key] = len(values)
        values.append(int(value))
        is_total.append(total)
        order.append(ordkey)
        labels.append(label)

    full = counts
    if row_margin:
        full = np.column_stack([counts, counts.sum(axis=1)])
    for r in range(n):
        for ci, c in enumerate(cols):
            add(("i", r, c), full[r, ci], c == ROW_TOTAL, (0, r, ci), (row_labels[r], c))
    group_ids = []
    if groups is not None:
        group_ids = sorted(pd.unique(groups), key=str)
        for gi, g in enumerate(group_ids):
            rows = np.flatnonzero(groups == g)
            for ci, c in enumerate(cols):
                add(("g", g, c), full[rows, ci].sum(), True, (1, gi, ci), (f"{TOTAL_LABEL} {g}", c))
    for ci, c in enumerate(cols):
        add(("t", c), full[:, ci].sum(), True, (2, 0, ci), (TOTAL_LABEL, c))

    lines = []
    for c in cols:
        if groups is not None:
            for g in group_ids:
                rows = np.flatnonzero(groups == g)
                lines.append([idx[("g", g, c)]] + [idx[("i", r, c)] for r in rows])
            lines.append([idx[("t", c)]] + [idx[("g", g, c)] for g in group_ids])
        else:
            lines.append([idx[("t", c)]] + [idx[("i", r, c)] for r in range(n)])
    if row_margin:
        for r in range(n):
            lines.append([idx[("i", r, ROW_TOTAL)]] + [idx[("i", r, c)] for c in columns])
        for g in group_ids:
            lines.append([idx[("g", g, ROW_TOTAL)]] + [idx[("g", g, c)] for c in columns])
        lines.append([idx[("t", ROW_TOTAL)]] + [idx[("t", c)] for c in columns])
    # order keys -> ranks so ties are broken by position, deterministically
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[sorted(range(len(order)), key=lambda i: order[i])] = np.arange(len(order))
    table = _Table(
        values=np.asarray(values, dtype=np.int64),
        is_total=np.asarray(is_total, dtype=bool),
        order=ranks,
        labels=labels,
        lines=[np.asarray(line, dtype=np.int64) for line in lines],
    )
    return table, idx


def _pick(table: _Table, line: np.ndarray, suppressed: np.ndarray) -> int | None:
    """The cell of ``line`` to suppress next: interior before totals, smallest, first."""
    cand = [c for c in line if not suppressed[c] and table.values[c] >= 1]
    if not cand:
        return None
    return min(cand, key=lambda c: (bool(table.is_total[c]), int(table.values[c]), int(table.order[c])))


def _line_rule(table: _Table, suppressed: np.ndarray, secondary: np.ndarray) -> list:
    """Apply "0 or ≥ 2 suppressed cells per line" until stable; returns lines that could not be fixed."""
    stuck = []
    changed = True
    while changed:
        changed = False
        stuck = []
        for line in table.lines:
            if int(suppressed[line].sum()) == 1:
                c = _pick(table, line, suppressed)
                if c is None:
                    stuck.append(line)
                    continue
                suppressed[c] = True
                secondary[c] = True
                changed = True
    return stuck


def _components(table: _Table, suppressed: np.ndarray) -> list[list[int]]:
    """Groups of suppressed cells linked by lines (each audited on its own)."""
    parent = {int(c): int(c) for c in np.flatnonzero(suppressed)}

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for line in table.lines:
        s = [int(c) for c in line if suppressed[c]]
        for a in s[1:]:
            ra, rb = find(s[0]), find(a)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    comps = defaultdict(list)
    for c in parent:
        comps[find(c)].append(c)
    return [sorted(v) for _, v in sorted(comps.items())]


def _feasible_ranges(
    table: _Table, suppressed: np.ndarray, primary: np.ndarray, k: int, *, cache: dict | None = None, full: bool = True
) -> dict[int, tuple]:
    """Feasibility interval [lo, hi] of every primary cell, as a reader can compute it.

    One LP pair (min, max) per primary cell over the variables of its linked
    group of suppressed cells. With ``full=False`` the min is skipped when the
    max already leaves room above the true value (the cell is protected, the
    interval is then reported as [value, max]). ``cache`` keeps results of
    groups whose cells did not change between rounds.
    """
    out: dict[int, tuple] = {}
    line_sets = [(line, [int(c) for c in line if suppressed[c]]) for line in table.lines]
    for comp in _components(table, suppressed):
        targets = [c for c in comp if primary[c]]
        if not targets:
            continue
        ckey = (tuple(comp), full)
        if cache is not None and ckey in cache:
            out.update(cache[ckey])
            continue
        comp_out: dict[int, tuple] = {}
        pos = {c: i for i, c in enumerate(comp)}
        comp_set = set(comp)
        comp_lines = [(line, sup) for line, sup in line_sets if sup and sup[0] in comp_set]
        if len(comp_lines) == 1:
            # One equation with box bounds: its projection onto each cell is
            # given exactly by the interval formula, the LP is not needed.
            comp_out = _single_line_ranges(table, comp_lines[0][0], suppressed, primary, k, targets, full)
            if cache is not None:
                cache[ckey] = comp_out
            out.update(comp_out)
            continue
        from scipy.optimize import linprog

        a_rows, b = [], []
        for line, sup in comp_lines:
            # line: total = Σ parts; sign +1 for the total, −1 for parts; published cells move to b
            row = np.zeros(len(comp))
            rhs = 0.0
            for j, c in enumerate(line):
                sign = 1.0 if j == 0 else -1.0
                if suppressed[c]:
                    row[pos[int(c)]] += sign
                else:
                    rhs -= sign * table.values[c]
            a_rows.append(row)
            b.append(rhs)
        bounds = [(1, k - 1) if primary[c] else (k, None) for c in comp]
        a_eq = np.array(a_rows) if a_rows else None
        b_eq = np.array(b) if b else None
        for c in targets:
            obj = np.zeros(len(comp))
            obj[pos[c]] = 1.0
            hi = linprog(-obj, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
            if hi.status != 0:  # pragma: no cover - the true values are always feasible
                raise RuntimeError(f"audit LP failed for cell {table.labels[c]}: {hi.message}")
            upper = float(-hi.fun)
            if not full and upper >= table.values[c] + 1 - 1e-7:
                comp_out[c] = (float(table.values[c]), upper)
                continue
            lo = linprog(obj, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
            if lo.status != 0:  # pragma: no cover
                raise RuntimeError(f"audit LP failed for cell {table.labels[c]}: {lo.message}")
            comp_out[c] = (float(lo.fun), upper)
        if cache is not None:
            cache[ckey] = comp_out
        out.update(comp_out)
    return out


def _single_line_ranges(
    table: _Table, line: np.ndarray, suppressed: np.ndarray, primary: np.ndarray, k: int, targets: list, full: bool
) -> dict[int, tuple]:
    """Exact feasibility intervals when a linked group of suppressed cells lies on one line.

    The constraints are one equation ``total − Σ parts = 0`` and the bounds
    of each suppressed cell (primary [1, k − 1], secondary [k, ∞)). The
    projection of such a set onto one variable ``x_j`` (coefficient s_j = ±1)
    is ``s_j·x_j ∈ [b − Hi_j, b − Lo_j]`` intersected with its own bounds,
    where ``[Lo_j, Hi_j]`` is the range of the other terms — what the two LPs
    min/max x_j return, without solving them.
    """
    sign = np.full(len(line), -1.0)
    sign[0] = 1.0
    sup = suppressed[line]
    rhs = -float(np.sum(sign[~sup] * table.values[line[~sup]]))
    cells = line[sup]
    s = sign[sup]
    lo_c = np.where(primary[cells], 1.0, float(k))
    hi_c = np.where(primary[cells], float(k - 1), np.inf)
    # range of each term s_i·x_i
    t_lo = np.where(s > 0, lo_c, -hi_c)
    t_hi = np.where(s > 0, hi_c, -lo_c)
    n_inf_hi = int(np.isinf(t_hi).sum())
    n_inf_lo = int(np.isinf(t_lo).sum())
    sum_lo = float(t_lo[np.isfinite(t_lo)].sum())
    sum_hi = float(t_hi[np.isfinite(t_hi)].sum())
    pos = {int(c): i for i, c in enumerate(cells)}
    out: dict[int, tuple] = {}
    for c in targets:
        i = pos[c]
        # range of the other terms
        o_lo = -math.inf if n_inf_lo - np.isinf(t_lo[i]) > 0 else sum_lo - (t_lo[i] if np.isfinite(t_lo[i]) else 0.0)
        o_hi = math.inf if n_inf_hi - np.isinf(t_hi[i]) > 0 else sum_hi - (t_hi[i] if np.isfinite(t_hi[i]) else 0.0)
        v_lo, v_hi = rhs - o_hi, rhs - o_lo  # range of s_i·x_i
        if s[i] < 0:
            v_lo, v_hi = -v_hi, -v_lo
        lower = max(float(lo_c[i]), v_lo)
        upper = min(float(hi_c[i]), v_hi)
        if lower > upper + 1e-9:  # pragma: no cover - the true values are always feasible
            raise RuntimeError(f"audit failed for cell {table.labels[c]}: infeasible")
        if not full and upper >= table.values[c] + 1 - 1e-7:
            out[c] = (float(table.values[c]), float(upper))
        else:
            out[c] = (float(lower), float(upper))
    return out


def _rank(table: _Table, line: np.ndarray, suppressed: np.ndarray, pick: int) -> tuple:
    return (int(suppressed[line].sum()), bool(table.is_total[pick]), int(table.values[pick]), int(table.order[pick]))


def _fix_choice(table: _Table, suppressed: np.ndarray, c: int) -> int | None:
    """Next cell to suppress so that the exposed cell ``c`` gets a range.

    First the lines through ``c`` (the one with fewest suppressed cells,
    then interior before totals, smallest count, position); if they are all
    suppressed already, the lines of every suppressed cell linked to ``c``:
    the pin then comes through a published total further away.
    """
    best = None
    for line in table.lines:
        if c in line:
            pick = _pick(table, line, suppressed)
            if pick is not None and (best is None or _rank(table, line, suppressed, pick) < best[0]):
                best = (_rank(table, line, suppressed, pick), pick)
    if best is None:
        comp = next((set(x) for x in _components(table, suppressed) if c in x), {c})
        for line in table.lines:
            if not comp.intersection(int(x) for x in line):
                continue
            pick = _pick(table, line, suppressed)
            if pick is not None and (best is None or _rank(table, line, suppressed, pick) < best[0]):
                best = (_rank(table, line, suppressed, pick), pick)
    return None if best is None else best[1]


def _propagate(table: _Table, suppressed: np.ndarray, primary: np.ndarray, k: int, max_rounds: int = 100) -> dict:
    """Interval propagation over the lines (bounds consistency).

    A fast, sound outer bound of what the LP audit computes: if it already
    pins a primary cell, the LP does too. Used to fix most exposures cheaply;
    the LP audit decides at the end.
    """
    lo = np.where(primary, 1.0, float(k))
    hi = np.where(primary, float(k - 1), np.inf)
    lo = np.where(suppressed, lo, table.values.astype(float))
    hi = np.where(suppressed, hi, table.values.astype(float))
    lines = [line for line in table.lines if suppressed[line].any()]
    for _ in range(max_rounds):
        changed = False
        for line in lines:
            tot, parts = line[0], line[1:]
            plo, phi = lo[parts].sum(), hi[parts].sum()
            # total within the parts' sum
            if suppressed[tot]:
                if plo > lo[tot] + 1e-9:
                    lo[tot], changed = plo, True
                if phi < hi[tot] - 1e-9:
                    hi[tot], changed = phi, True
            # each part = total − the other parts; the parts' sums are kept
            # up to date as bounds change (same order and values as summing
            # the other parts afresh, in linear instead of quadratic time)
            ph = hi[parts]
            run_lo = float(lo[parts].sum())
            run_hi = float(ph[np.isfinite(ph)].sum())
            n_inf = int(np.isinf(ph).sum())
            tot_lo, tot_hi = float(lo[tot]), float(hi[tot])
            for p in parts[suppressed[parts]].tolist():
                lo_p, hi_p = float(lo[p]), float(hi[p])
                p_inf = math.isinf(hi_p)
                olo = run_lo - lo_p
                ohi = math.inf if n_inf - p_inf > 0 else run_hi - (0.0 if p_inf else hi_p)
                new_lo = tot_lo - ohi if math.isfinite(ohi) else -math.inf
                new_hi = tot_hi - olo
                if new_lo > lo_p + 1e-9:
                    lo[p], changed = new_lo, True
                    run_lo += new_lo - lo_p
                if new_hi < hi_p - 1e-9:
                    hi[p], changed = new_hi, True
                    if p_inf:
                        n_inf -= 1
                        run_hi += new_hi
                    else:
                        run_hi += new_hi - hi_p
        if not changed:
            break
    return {int(c): (float(lo[c]), float(hi[c])) for c in np.flatnonzero(primary & suppressed)}


def _exposed(ranges: dict[int, tuple]) -> list[int]:
    return sorted(c for c, (lo, hi) in ranges.items() if math.floor(hi + 1e-7) - math.ceil(lo - 1e-7) < 1)


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------
@dataclass
class SuppressionResult:
    """Result of :func:`suppress_counts`.

    frame : copy of the input; the count columns have object dtype where a
        cell is suppressed: primary cells hold ``"< k"`` (``"< 3"``),
        secondary cells ``"x"``, all other cells stay Python ``int``. With
        ``total_row=True`` a last row holds the city totals (``key`` and
        ``name`` = "Gesamt"; other columns empty).
    mask : bool DataFrame, same index as ``frame``, the count columns
        (True = suppressed, primary or secondary).
    kind : same shape as ``mask``: "" / "primär" / "sekundär".
    primary, secondary : number of suppressed cells of each kind, counting
        interior cells and all totals (group, city, row totals).
    group_totals : published totals per ``group`` (one row per group, the
        group column first), markers as in ``frame``; None without a group.
    group_mask : bool DataFrame for ``group_totals``.
    row_totals : published row totals per row of ``frame`` (Series, object
        dtype) when several count columns form a table and no explicit
        ``row_total`` column was given; None otherwise. Publish row sums only
        from here.
    k : the threshold; counts 1 … k − 1 are suppressed.
    notes : QA notes (how many cells were suppressed, and why).
    fully_protected : False when a small count can still be narrowed to one
        value although every non-zero cell linked to it is suppressed (only
        where totals are themselves small, e.g. a Bezirk total of 2 made of
        two cells of 1); a warning note says where. The reader then learns
        the exact value of a cell already marked "< 3", never a count of a
        published or "x" cell. Publish such a table at a coarser level or
        with a larger k if that is not acceptable.
    pinned_by_markers : number of such cells.
    """

    frame: pd.DataFrame
    mask: pd.DataFrame
    kind: pd.DataFrame
    primary: int
    secondary: int
    group_totals: pd.DataFrame | None = None
    group_mask: pd.DataFrame | None = None
    row_totals: pd.Series | None = None
    k: int = 3
    notes: list[QANote] = field(default_factory=list)
    fully_protected: bool = True
    pinned_by_markers: int = 0


def _count_matrix(frame: pd.DataFrame, columns: list) -> np.ndarray:
    for c in columns:
        if c not in frame.columns:
            raise GeoplanError(
                f"Spalte '{c}' für die Geheimhaltung fehlt.",
                location=f"Spalte '{c}'",
                expected="Fallzahl-Spalte",
                found=", ".join(map(str, frame.columns[:20])),
                message_en=f"Column '{c}' for the confidentiality check is missing.", expected_en="a case-count column",
            )
    out = np.zeros((len(frame), len(columns)), dtype=np.int64)
    for j, c in enumerate(columns):
        s = pd.to_numeric(frame[c], errors="coerce")
        bad = s.isna() | (s < 0) | (s.round() != s)
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            key = frame["key"].iloc[i] if "key" in frame.columns else i
            raise GeoplanError(
                f"Fallzahl in '{c}' ist keine ganze Zahl ≥ 0.",
                location=f"Sozialraum {key}, Spalte '{c}'",
                expected="ganze Zahl ≥ 0",
                found=repr(frame[c].iloc[i]),
                hint="Fallzahlen vor der Geheimhaltung nicht runden oder umrechnen.",
                message_en=f"The case count in '{c}' is not a whole number ≥ 0.",
                location_en=f"Sozialraum {key}, column '{c}'", expected_en="whole number ≥ 0",
                hint_en="Do not round or convert case counts before the confidentiality check.",
            )
        out[:, j] = s.to_numpy().astype(np.int64)
    return out


def suppress_counts(
    frame: pd.DataFrame,
    *,
    columns,
    k: int = 3,
    group: str | None = None,
    total_row: bool = True,
    row_total: str | bool | None = None,
) -> SuppressionResult:
    """Primary and secondary suppression of the count ``columns`` (cases).

    Parameters
    ----------
    frame : one row per Sozialraum.
    columns : count columns (e.g. ``hze_cases_ambulant`` …); integers ≥ 0.
    k : counts 1 … k − 1 are suppressed (default 3; must be ≥ 2).
    group : column of a higher level (``bezirk``) whose totals are published.
    total_row : append a row with the city totals ("Gesamt"). The city totals
        are protected either way.
    row_total : how row totals are published when ``columns`` has several
        entries: a column name in ``columns`` that is the sum of the other
        columns (checked); ``None`` (default) — row sums are assumed to be
        published elsewhere and are protected (see ``row_totals`` of the
        result); ``False`` — row sums are never published.

    The rules (primary, secondary by lines, audit by feasibility intervals)
    are described in the module docstring. Deterministic: ties are broken by
    row and column position. The input is not modified.
    """
    if isinstance(columns, str):
        columns = [columns]
    columns = list(columns)
    if not columns:
        raise GeoplanError("Keine Fallzahl-Spalten für die Geheimhaltung angegeben.", expected="mindestens eine Spalte",
                           message_en="No case-count columns given for the confidentiality check.",
                           expected_en="at least one column")
    if not isinstance(k, (int, np.integer)) or k < 2:
        raise GeoplanError(
            "Die Geheimhaltungsschwelle k muss eine ganze Zahl ≥ 2 sein.",
            location="privacy.k",
            expected="k ≥ 2 (Standard 3: Fallzahlen 1 und 2 werden gesperrt)",
            found=repr(k), message_en="The confidentiality threshold k must be a whole number ≥ 2.",
            expected_en="k ≥ 2 (default 3: case counts 1 and 2 are suppressed)",
        )
    k = int(k)
    counts_all = _count_matrix(frame, columns)
    groups = None
    if group is not None:
        if group not in frame.columns:
            raise GeoplanError(
                f"Gruppenspalte '{group}' für die Geheimhaltung fehlt.",
                location=f"Spalte '{group}'",
                expected="z. B. 'bezirk'",
                found=", ".join(map(str, frame.columns[:20])),
                message_en=f"Group column '{group}' for the confidentiality check is missing.",
                expected_en="e.g. 'bezirk'",
            )
        if frame[group].isna().any():
            raise GeoplanError(
                f"Leere Einträge in der Gruppenspalte '{group}'.",
                location=f"Spalte '{group}'",
                expected="eine Gruppe je Sozialraum",
                found="leerer Eintrag",
                message_en=f"Empty entries in the group column '{group}'.", expected_en="one group per Sozialraum",
                found_en="empty entry",
            )
        groups = frame[group].to_numpy(dtype=object)

    explicit_total = isinstance(row_total, str)
    if explicit_total:
        if row_total not in columns:
            raise GeoplanError(
                f"Zeilensummen-Spalte '{row_total}' gehört nicht zu den Fallzahl-Spalten.",
                location="row_total",
                expected=", ".join(columns),
                found=row_total, message_en=f"Row-total column '{row_total}' is not one of the case-count columns.",
            )
        parts = [c for c in columns if c != row_total]
        j_tot = columns.index(row_total)
        part_idx = [columns.index(c) for c in parts]
        diff = counts_all[:, j_tot] - counts_all[:, part_idx].sum(axis=1)
        if np.any(diff != 0):
            i = int(np.flatnonzero(diff)[0])
            key = frame["key"].iloc[i] if "key" in frame.columns else i
            raise GeoplanError(
                f"Die Zeilensumme '{row_total}' ist nicht die Summe der Hilfearten.",
                location=f"Sozialraum {key}",
                expected=f"{row_total} = " + " + ".join(parts),
                found=f"{counts_all[i, j_tot]} ≠ {counts_all[i, part_idx].sum()}",
                message_en=f"The row total '{row_total}' is not the sum of the kinds of help.",
            )
        table_cols = parts
        counts = counts_all[:, part_idx]
        row_margin = True
    else:
        table_cols = columns
        counts = counts_all
        row_margin = bool(len(columns) > 1 and row_total is not False)

    row_labels = frame["key"].astype(str).tolist() if "key" in frame.columns else [str(i) for i in range(len(frame))]
    table, idx = _build_table(counts, table_cols, row_margin, groups, row_labels)
    primary = (table.values >= 1) & (table.values <= k - 1)
    suppressed = primary.copy()
    secondary = np.zeros_like(primary)
    notes: list[QANote] = []

    # line rule, then the fast interval propagation, then the exact LP audit;
    # every round suppresses at least one more cell, so the loop ends
    lp_cache: dict = {}
    stuck: list = []
    unprotected: set = set()
    # Pins no suppression can lift: with every non-zero cell hidden, a total
    # marked "< 3" made of two cells marked "< 3" still says 1 + 1. Publishing
    # more only narrows a reader's ranges, so these cells are pinned under any
    # pattern; chasing them would hide the whole table for nothing.
    inherent = set(_exposed(_propagate(table, table.values >= 1, primary, k)))
    while True:
        stuck = _line_rule(table, suppressed, secondary)
        exposed = [c for c in _exposed(_propagate(table, suppressed, primary, k)) if c not in inherent]
        if not exposed:
            ranges = _feasible_ranges(table, suppressed, primary, k, cache=lp_cache, full=False)
            exposed = [c for c in _exposed(ranges) if c not in inherent]
            if not exposed:
                break
        fixed_any = False
        touched: set = set()
        for c in exposed:
            if c in touched:
                continue
            pick = _fix_choice(table, suppressed, c)
            if pick is None:
                unprotected.add(c)
                label, col = table.labels[c]
                notes.append(
                    QANote(
                        stage="privacy",
                        message=(
                            "Eine kleine Fallzahl lässt sich trotz Sperrung aller Nachbarfelder eingrenzen; "
                            "bitte die Tabelle gröber zusammenfassen."
                        ),
                        message_en=(
                            "A small case count can be narrowed down although all neighbouring cells are "
                            "suppressed; please aggregate the table more coarsely."
                        ),
                        location=f"{label}, {'summe' if col == ROW_TOTAL else col}",
                    )
                )
                touched.add(c)
                continue
            suppressed[pick] = True
            secondary[pick] = True
            fixed_any = True
            # one fix per linked group and round: the next round re-checks
            for line in table.lines:
                if pick in line:
                    touched.update(int(x) for x in line)
        if not fixed_any:
            break
    if stuck:  # pragma: no cover - a line with one suppressed cell always has a non-zero partner
        notes.append(QANote(stage="privacy", message=f"{len(stuck)} Zeilen/Spalten ließen sich nicht vollständig schützen.",
                            message_en=f"{len(stuck)} rows/columns could not be fully protected."))

    pmark = primary_marker(k)

    def published(cell: int):
        if primary[cell]:
            return pmark
        if secondary[cell]:
            return SECONDARY_MARKER
        return int(table.values[cell])

    def kind_of(cell: int) -> str:
        return "primär" if primary[cell] else ("sekundär" if secondary[cell] else "")

    cell_col = {c: c for c in table_cols}
    if explicit_total:
        cell_col[row_total] = ROW_TOTAL
    out = frame.copy()
    mask = pd.DataFrame(False, index=frame.index, columns=columns)
    kind = pd.DataFrame("", index=frame.index, columns=columns)
    for c in columns:
        cc = cell_col[c]
        cells = [idx[("i", r, cc)] for r in range(len(frame))]
        out[c] = pd.Series([published(x) for x in cells], index=frame.index, dtype=object)
        mask[c] = [bool(suppressed[x]) for x in cells]
        kind[c] = [kind_of(x) for x in cells]
    row_totals = None
    if row_margin and not explicit_total:
        row_totals = pd.Series(
            [published(idx[("i", r, ROW_TOTAL)]) for r in range(len(frame))], index=frame.index, dtype=object, name="summe"
        )
    if total_row:
        total = {col: np.nan for col in out.columns}
        for col in ("key", "name"):
            if col in out.columns:
                total[col] = TOTAL_LABEL
        if group is not None:
            total[group] = TOTAL_LABEL
        for c in columns:
            total[c] = published(idx[("t", cell_col[c])])
        new_index = (out.index.max() + 1) if pd.api.types.is_integer_dtype(out.index) and len(out) else TOTAL_LABEL
        tot_frame = pd.DataFrame([total], index=[new_index])
        for col in out.columns:
            tot_frame[col] = tot_frame[col].astype(object) if out[col].dtype == object else tot_frame[col]
        out = pd.concat([out, tot_frame[out.columns]], axis=0)
        for c in columns:
            out[c] = out[c].astype(object)
        mask.loc[new_index] = [bool(suppressed[idx[("t", cell_col[c])]]) for c in columns]
        kind.loc[new_index] = [kind_of(idx[("t", cell_col[c])]) for c in columns]
        mask = mask.astype(bool)
        if row_totals is not None:
            row_totals.loc[new_index] = published(idx[("t", ROW_TOTAL)])
    group_totals = group_mask = None
    if groups is not None:
        gids = sorted(pd.unique(groups), key=str)
        group_totals = pd.DataFrame({group: gids})
        group_mask = pd.DataFrame({group: gids})
        for c in columns:
            cells = [idx[("g", g, cell_col[c])] for g in gids]
            group_totals[c] = pd.Series([published(x) for x in cells], dtype=object)
            group_mask[c] = [bool(suppressed[x]) for x in cells]
        if row_margin and not explicit_total:
            cells = [idx[("g", g, ROW_TOTAL)] for g in gids]
            group_totals["summe"] = pd.Series([published(x) for x in cells], dtype=object)
            group_mask["summe"] = [bool(suppressed[x]) for x in cells]
    n_primary = int(primary.sum())
    n_secondary = int(secondary.sum())
    if inherent:
        where = [f"{table.labels[c][0]}, {'summe' if table.labels[c][1] == ROW_TOTAL else table.labels[c][1]}" for c in sorted(inherent)]
        notes.append(
            QANote(
                stage="privacy",
                message=(
                    f"{len(inherent)} gesperrte kleine Fallzahlen lassen sich aus den Markierungen '{pmark}' "
                    "und den Summen auf einen Wert eingrenzen (z. B. eine Summe '< 3' aus zwei Feldern '< 3'); "
                    "weitere Sperrungen ändern daran nichts. Wenn das nicht hinnehmbar ist: Tabelle gröber "
                    "zusammenfassen oder k erhöhen."
                ),
                message_en=(
                    f"{len(inherent)} suppressed small case counts can be narrowed down to one value from the marks "
                    f"'{pmark}' and the totals (e.g. a total '< 3' made of two cells '< 3'); more suppression does not "
                    "change that. If that is not acceptable: aggregate the table more coarsely or raise k."
                ),
                location="; ".join(where[:20]),
                details={"cells": where},
            )
        )
    if n_primary:
        notes.append(
            QANote(
                stage="privacy",
                level="info",
                message=(
                    f"Geheimhaltung: {n_primary} Fallzahlen zwischen 1 und {k - 1} gesperrt ('{pmark}'), "
                    f"{n_secondary} weitere Felder gesperrt ('{SECONDARY_MARKER}'), damit sie nicht aus "
                    "Summen zurückgerechnet werden können."
                ),
                message_en=(
                    f"Confidentiality: {n_primary} case counts between 1 and {k - 1} suppressed ('{pmark}'), "
                    f"{n_secondary} further cells suppressed ('{SECONDARY_MARKER}') so that they cannot be "
                    "recomputed from totals."
                ),
                details={"k": k, "primary": n_primary, "secondary": n_secondary},
            )
        )
    return SuppressionResult(
        frame=out,
        mask=mask,
        kind=kind,
        primary=n_primary,
        secondary=n_secondary,
        group_totals=group_totals,
        group_mask=group_mask,
        row_totals=row_totals,
        k=k,
        notes=notes,
        fully_protected=not unprotected and not inherent,
        pinned_by_markers=len(inherent),
    )


def audit_suppression(result: SuppressionResult, original: pd.DataFrame, *, columns, group=None, row_total=None) -> pd.DataFrame:
    """Feasibility interval of every primarily suppressed cell, as a reader sees it.

    Rebuilds the table from ``original`` (the unsuppressed counts) and the
    suppression pattern of ``result`` and solves, for every primary cell, the
    LPs min/max x subject to all published totals, primary cells in
    [1, k − 1] and secondary cells ≥ k (Hundepool et al. 2012, ch. 4, audit).
    Returns one row per primary cell: ``row``, ``column``, ``value``, ``lower``,
    ``upper``, ``protected`` (more than one integer possible).
    """
    columns = [columns] if isinstance(columns, str) else list(columns)
    counts_all = _count_matrix(original, columns)
    groups = original[group].to_numpy(dtype=object) if group else None
    if isinstance(row_total, str):
        table_cols = [c for c in columns if c != row_total]
        counts = counts_all[:, [columns.index(c) for c in table_cols]]
        margin = True
    else:
        table_cols, counts = columns, counts_all
        margin = bool(len(columns) > 1 and row_total is not False)
    row_labels = original["key"].astype(str).tolist() if "key" in original.columns else [str(i) for i in range(len(original))]
    table, idx = _build_table(counts, table_cols, margin, groups, row_labels)
    k = result.k
    primary = (table.values >= 1) & (table.values <= k - 1)
    suppressed = np.zeros_like(primary)
    # read the pattern back from the published objects
    pub_frame = result.frame
    col_cell = {c: c for c in table_cols}
    if isinstance(row_total, str):
        col_cell[row_total] = ROW_TOTAL
    for c in columns:
        for r, ix in enumerate(original.index):
            suppressed[idx[("i", r, col_cell[c])]] = bool(result.mask.loc[ix, c])
        if TOTAL_LABEL in set(pub_frame.get("key", pd.Series(dtype=object)).astype(str)) or len(result.mask) > len(original):
            suppressed[idx[("t", col_cell[c])]] = bool(result.mask.iloc[-1][c])
        if result.group_mask is not None:
            for g, flag in zip(result.group_mask[group], result.group_mask[c]):
                suppressed[idx[("g", g, col_cell[c])]] = bool(flag)
    if result.row_totals is not None:
        for r in range(len(original)):
            suppressed[idx[("i", r, ROW_TOTAL)]] = result.row_totals.iloc[r] in (SECONDARY_MARKER, primary_marker(k))
        suppressed[idx[("t", ROW_TOTAL)]] = result.row_totals.iloc[-1] in (SECONDARY_MARKER, primary_marker(k))
        if result.group_totals is not None and "summe" in result.group_totals:
            for g, flag in zip(result.group_mask[group], result.group_mask["summe"]):
                suppressed[idx[("g", g, ROW_TOTAL)]] = bool(flag)
    ranges = _feasible_ranges(table, suppressed, primary & suppressed, k)
    rows = []
    for c, (lo, hi) in sorted(ranges.items()):
        label, col = table.labels[c]
        rows.append(
            {
                "row": label,
                "column": "summe" if col == ROW_TOTAL else col,
                "value": int(table.values[c]),
                "lower": lo,
                "upper": hi,
                "protected": math.floor(hi + 1e-7) - math.ceil(lo - 1e-7) >= 1,
            }
        )
    return pd.DataFrame(rows, columns=["row", "column", "value", "lower", "upper", "protected"])


# --------------------------------------------------------------------------
# rates
# --------------------------------------------------------------------------
def format_rate_range(lo: float, hi: float, *, decimals: int = 1, per: float | None = 1000) -> str:
    """German range text, rounded outward so the true rate lies inside: ``"0,5–1,9 je 1.000"``."""
    f = 10**decimals
    lo_r = math.floor(lo * f + 1e-9) / f
    hi_r = math.ceil(hi * f - 1e-9) / f
    text = f"{fmt.number(lo_r, decimals)}–{fmt.number(hi_r, decimals)}"
    if per and per != 1:
        text += f" je {fmt.number(per, 0)}"
    return text


def suppress_rates(
    frame: pd.DataFrame,
    mask,
    *,
    rate_columns: dict,
    mode: str = "range",
    k: int | None = None,
    decimals: int = 1,
) -> pd.DataFrame:
    """Hide rates computed from suppressed counts.

    Parameters
    ----------
    frame : the frame holding the rates (one row per Sozialraum, same index as
        the mask's rows).
    mask : a :class:`SuppressionResult` or a bool DataFrame (True = count
        suppressed) with the count columns.
    rate_columns : ``{rate_column: (count_column, denominator_column, per)}``,
        the rate being count / denominator × per, e.g.
        ``{"observed_per_1000": ("hze_cases", "pop_u21", 1000),
        "observed_expected_ratio": ("hze_cases", "expected_cases", 1)}``.
    mode : ``"range"`` — a primarily suppressed count c ∈ [1, k − 1] gives the
        range [1, k − 1] / denominator × per, rounded outward
        (``"0,5–1,9 je 1.000"``); it says no more than the marker "< k".
        Rates of secondarily suppressed cells are withheld ("–") in both
        modes, because a range for them would have to be open-ended and their
        exact rate gives back the count. ``"withhold"`` — every rate of a
        suppressed count becomes "–".
    k : threshold (taken from the SuppressionResult when given; default 3).

    Returns a copy of ``frame``; changed rate columns have object dtype.
    """
    if mode not in ("range", "withhold"):
        raise GeoplanError(
            "Unbekannte Darstellung für Raten gesperrter Fallzahlen.",
            location="mode",
            expected="'range' oder 'withhold'",
            found=repr(mode),
            message_en="Unknown presentation for rates of suppressed case counts.", expected_en="'range' or 'withhold'",
        )
    if isinstance(mask, SuppressionResult):
        kind = mask.kind
        k = mask.k if k is None else k
        sup = mask.mask
    else:
        sup = mask
        kind = None
    k = 3 if k is None else int(k)
    out = frame.copy()
    for rate_col, spec in rate_columns.items():
        count_col, den_col, per = spec
        for col in (rate_col, den_col):
            if col not in frame.columns:
                raise GeoplanError(
                    f"Spalte '{col}' für die Raten-Geheimhaltung fehlt.",
                    location=f"Spalte '{col}'",
                    found=", ".join(map(str, frame.columns[:20])),
                    message_en=f"Column '{col}' for the confidentiality check of rates is missing.",
                )
        if count_col not in sup.columns:
            raise GeoplanError(
                f"Zur Rate '{rate_col}' gehört die Fallzahl '{count_col}', die nicht geheim gehalten wurde.",
                location=f"Spalte '{count_col}'",
                expected=", ".join(map(str, sup.columns)),
                message_en=f"The rate '{rate_col}' belongs to the case count '{count_col}', which was not protected.",
            )
        values = out[rate_col].astype(object).copy()
        for ix in frame.index:
            if ix not in sup.index or not bool(sup.loc[ix, count_col]):
                continue
            is_primary = False
            if kind is not None:
                is_primary = kind.loc[ix, count_col] == "primär"
            elif count_col in frame.columns:
                v = pd.to_numeric(pd.Series([frame.loc[ix, count_col]]), errors="coerce").iloc[0]
                is_primary = (pd.notna(v) and 1 <= v <= k - 1) or frame.loc[ix, count_col] == primary_marker(k)
            den = pd.to_numeric(pd.Series([frame.loc[ix, den_col]]), errors="coerce").iloc[0]
            if mode == "range" and is_primary and pd.notna(den) and den > 0:
                values.loc[ix] = format_rate_range(1 / den * per, (k - 1) / den * per, decimals=decimals, per=per)
            else:
                values.loc[ix] = WITHHELD_MARKER
        out[rate_col] = values
    return out


# --------------------------------------------------------------------------
# checks on outputs
# --------------------------------------------------------------------------
_NUM_RE = re.compile(r"^[+-]?(\d{1,3}(\.\d{3})+|\d+)(,\d+)?$|^[+-]?\d+(\.\d+)?$")


def _as_number(v) -> float | None:
    """A number from a cell: int/float, or text in German ("1.234,5") or plain ("2", "2.0") form."""
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, (int, np.integer)):
        return float(v)
    if isinstance(v, (float, np.floating)):
        return None if math.isnan(v) else float(v)
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    if not isinstance(v, str):
        return None
    t = v.strip().replace("\u00a0", "").replace("\u202f", "")
    if not t or not _NUM_RE.match(t):
        return None
    # "01", "007": keys with leading zeros are identifiers, never a published count
    if re.match(r"^[+-]?0\d", t):
        return None
    if "," in t or re.match(r"^[+-]?\d{1,3}(\.\d{3})+$", t):
        t = t.replace(".", "").replace(",", ".")
    try:
        return float(t)
    except ValueError:  # pragma: no cover - guarded by the regex
        return None


def _default_count_columns(frame: pd.DataFrame) -> list:
    return [c for c in frame.columns if str(c).startswith("hze_cases") or str(c) in ("observed_cases",)]


def find_small_counts(obj, k: int = 3, columns=None) -> pd.DataFrame:
    """Cells of count columns that hold a number from 1 to k − 1.

    ``obj`` is a DataFrame or a :class:`SuppressionResult` (its ``frame``,
    group totals and row totals are checked). ``columns`` defaults to the
    standard count columns (``hze_cases*``, ``observed_cases``). Numbers
    written as text ("2", "2,0") count too; markers do not. Returns a frame
    with ``where``, ``row``, ``column``, ``value``.
    """
    frames = []
    if isinstance(obj, SuppressionResult):
        frames.append(("frame", obj.frame))
        if obj.group_totals is not None:
            frames.append(("group_totals", obj.group_totals))
        if obj.row_totals is not None:
            frames.append(("row_totals", obj.row_totals.to_frame("summe")))
    elif isinstance(obj, pd.DataFrame):
        frames.append(("frame", obj))
    else:
        raise TypeError("find_small_counts expects a DataFrame or SuppressionResult")
    hits = []
    for where, f in frames:
        cols = list(columns) if columns is not None else _default_count_columns(f)
        if where == "row_totals":
            cols = ["summe"]
        for c in cols:
            if c not in f.columns:
                continue
            for ix, v in f[c].items():
                num = _as_number(v)
                if num is not None and float(num).is_integer() and 1 <= num <= k - 1:
                    row = f.loc[ix, "key"] if "key" in f.columns else ix
                    hits.append({"where": where, "row": row, "column": c, "value": num})
    return pd.DataFrame(hits, columns=["where", "row", "column", "value"])


def assert_no_small_counts(obj, k: int = 3, columns=None) -> None:
    """Raise :class:`DisclosureError` if any count from 1 to k − 1 would be published."""
    hits = find_small_counts(obj, k=k, columns=columns)
    if len(hits):
        first = hits.iloc[0]
        raise DisclosureError(
            f"{len(hits)} kleine Fallzahlen (1 bis {k - 1}) würden veröffentlicht.",
            location=f"{first['where']}, Zeile {first['row']}, Spalte '{first['column']}'",
            expected=f"gesperrt ('{primary_marker(k)}') oder ≥ {k} oder 0",
            found=str(first["value"]),
            hint="Fallzahlen vor der Ausgabe mit geoplan.privacy.suppress_counts sperren.",
        )



HZE_KINDS = ("ambulant", "teilstationaer", "stationaer")
_OTHER = "__hze_cases_other__"


def protect_sozialraum_frame(
    frame: pd.DataFrame,
    *,
    k: int = 3,
    group: str | None = "bezirk",
    rate_mode: str = "range",
    rate_columns: dict | None = None,
    total_row: bool = False,
) -> SuppressionResult:
    """Suppress every HzE count of a Sozialraum frame in one table, then its rates.

    All count columns are protected *together*, so a cell hidden in one
    output cannot be recomputed from another: ``hze_cases_<kind>`` for the
    kinds present, with ``hze_cases`` as their row total (if the kinds do not
    add up to ``hze_cases``, the remainder is treated as a further, published
    kind — conservative — and dropped from the output), and
    ``observed_cases`` (the equity result's copy of ``hze_cases``) gets the
    same markers as ``hze_cases``. Rates: ``observed_per_1000`` (per 1,000
    under 21) and ``observed_expected_ratio`` (observed / expected cases) are
    handled by :func:`suppress_rates` when present, plus any ``rate_columns``.

    Returns the :class:`SuppressionResult` whose ``frame`` has counts and
    rates made safe; publish only that frame (and its group/row totals).
    """
    kinds = [f"hze_cases_{kind}" for kind in HZE_KINDS if f"hze_cases_{kind}" in frame.columns]
    kinds += sorted(
        c for c in frame.columns if str(c).startswith("hze_cases_") and c not in kinds and not str(c).endswith("_eur")
    )
    work = frame.copy()
    observed_alias = None
    total_col = "hze_cases" if "hze_cases" in frame.columns else None
    if total_col is None and "observed_cases" in frame.columns:
        total_col, observed_alias = "observed_cases", None
    elif total_col is not None and "observed_cases" in frame.columns:
        observed_alias = "observed_cases"
    if not kinds and total_col is None:
        raise GeoplanError(
            "Keine HzE-Fallzahlen für die Geheimhaltung gefunden.",
            expected="Spalten 'hze_cases' oder 'hze_cases_<Hilfeart>'",
            found=", ".join(map(str, frame.columns[:20])),
            message_en="No HzE case counts found for the confidentiality check.",
            expected_en="columns 'hze_cases' or 'hze_cases_<kind of help>'",
        )
    notes: list[QANote] = []
    if kinds and total_col is not None:
        counts = _count_matrix(frame, kinds + [total_col])
        other = counts[:, -1] - counts[:, :-1].sum(axis=1)
        if np.any(other < 0):
            i = int(np.flatnonzero(other < 0)[0])
            key = frame["key"].iloc[i] if "key" in frame.columns else i
            raise GeoplanError(
                f"Die Fälle nach Hilfeart sind größer als '{total_col}'.",
                location=f"Sozialraum {key}",
                expected=f"{' + '.join(kinds)} ≤ {total_col}",
                found=f"{counts[i, :-1].sum()} > {counts[i, -1]}",
                message_en=f"The cases by kind of help are larger than '{total_col}'.",
            )
        columns = list(kinds)
        if np.any(other > 0):
            work[_OTHER] = other
            columns.append(_OTHER)
            notes.append(
                QANote(
                    stage="privacy",
                    level="info",
                    message=f"Fälle ohne Hilfeart ({int(other.sum())}) als eigene Spalte in der Geheimhaltung berücksichtigt.",
                    message_en=f"Cases without a kind of help ({int(other.sum())}) treated as a column of their own "
                    "in the confidentiality check.",
                )
            )
        columns.append(total_col)
        res = suppress_counts(work, columns=columns, k=k, group=group, total_row=total_row, row_total=total_col)
    else:
        columns = kinds or [total_col]
        res = suppress_counts(work, columns=columns, k=k, group=group, total_row=total_row)
    out, mask, kind = res.frame, res.mask, res.kind
    if _OTHER in out.columns:
        out = out.drop(columns=_OTHER)
        mask = mask.drop(columns=_OTHER)
        kind = kind.drop(columns=_OTHER)
        if res.group_totals is not None:
            res.group_totals = res.group_totals.drop(columns=_OTHER)
            res.group_mask = res.group_mask.drop(columns=_OTHER)
    if observed_alias:
        out[observed_alias] = out[total_col]
        mask[observed_alias] = mask[total_col]
        kind[observed_alias] = kind[total_col]
    res.frame, res.mask, res.kind = out, mask, kind
    count_col = total_col
    rates = {}
    if "observed_per_1000" in frame.columns and "pop_u21" in frame.columns:
        rates["observed_per_1000"] = (count_col, "pop_u21", 1000)
    if "observed_expected_ratio" in frame.columns and "expected_cases" in frame.columns:
        rates["observed_expected_ratio"] = (count_col, "expected_cases", 1)
    rates.update(rate_columns or {})
    if rates:
        body = frame.index
        safe = suppress_rates(frame, res, rate_columns=rates, mode=rate_mode)
        for rc in rates:
            col = res.frame[rc].astype(object)
            col.loc[body] = safe[rc]
            res.frame[rc] = col
    res.notes = notes + res.notes
    return res
