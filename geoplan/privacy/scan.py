"""Output scan: find planted small counts in written outputs (html, pdf text, xlsx, gpkg, json).

This module reads output files on purpose: it is the check run on a finished output folder
(by tests and by anyone auditing a publication), not part of the pipeline."""

from __future__ import annotations
import base64
import binascii
import html as html_lib
import re
import sqlite3
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path
from geoplan.errors import GeoplanError
from geoplan.privacy.suppress import _as_number


@dataclass(frozen=True)
class ScanHit:
    """A planted value found in an output: file kind, where, the value and the text around it."""

    kind: str
    location: str
    value: float
    context: str


def _matches(cell, values) -> float | None:
    num = _as_number(cell)
    if num is None:
        return None
    for v in values:
        if num == float(v):
            return float(v)
    return None


class _HTMLRows:
    """Collect table rows (list of cell texts) from HTML with the standard library parser."""

    def __init__(self, text: str):
        from html.parser import HTMLParser

        rows: list[list[str]] = []

        class P(HTMLParser):
            def __init__(self):
                super().__init__(convert_charrefs=True)
                self.row = None
                self.cell = None

            def handle_starttag(self, tag, attrs):
                if tag == "tr":
                    self.row = []
                elif tag in ("td", "th") and self.row is not None:
                    self.cell = []

            def handle_endtag(self, tag):
                if tag in ("td", "th") and self.row is not None and self.cell is not None:
                    self.row.append("".join(self.cell).strip())
                    self.cell = None
                elif tag == "tr" and self.row is not None:
                    rows.append(self.row)
                    self.row = None

            def handle_data(self, data):
                if self.cell is not None:
                    self.cell.append(data)

        P().feed(text)
        self.rows = rows


# JSON-like property objects as folium/GeoJSON embed them: {"name": "...", "hze_cases": 2, ...}
_OBJ_RE = re.compile(r"\{[^{}]*\}")
_PAIR_RE = re.compile(r"\"([^\"\\]*)\"\s*:\s*(\"(?:[^\"\\]|\\.)*\"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|null|true|false)")


_DATA_URI_RE = re.compile(r"data:text/html;(?:charset=[\w-]+;)?base64,([A-Za-z0-9+/=]+)")


def _scan_objects(text: str, values, row_label: str, kind: str) -> list[ScanHit]:
    hits = []
    for m in _OBJ_RE.finditer(text):
        obj = m.group(0)
        if row_label not in obj:
            continue
        for key, raw in _PAIR_RE.findall(obj):
            cell = raw[1:-1] if raw.startswith('"') else raw
            cell = html_lib.unescape(cell)
            if row_label in cell:
                continue
            v = _matches(cell, values)
            if v is not None:
                hits.append(ScanHit(kind, f"Objekt mit '{row_label}', Feld '{key}'", v, obj[:200]))
    return hits


def _scan_rows(rows, values, row_label: str, kind: str, where: str) -> list[ScanHit]:
    hits = []
    for i, row in enumerate(rows):
        cells = [str(c) for c in row]
        if not any(row_label in c for c in cells):
            continue
        for j, c in enumerate(cells):
            if row_label in c:
                continue
            v = _matches(c, values)
            if v is not None:
                hits.append(ScanHit(kind, f"{where}, Zeile {i + 1}, Spalte {j + 1}", v, " | ".join(cells)[:200]))
    return hits


def _scan_text_lines(text: str, values, row_label: str, kind: str) -> list[ScanHit]:
    hits = []
    for i, line in enumerate(text.splitlines()):
        if row_label not in line:
            continue
        rest = line.replace(row_label, " ")
        for tok in re.split(r"[\s;|\t]+", rest):
            v = _matches(tok.strip("()[]:"), values)
            if v is not None:
                hits.append(ScanHit(kind, f"Zeile {i + 1}", v, line.strip()[:200]))
    return hits


def _xlsx_rows(path: Path) -> dict[str, list[list[str]]]:
    import xml.etree.ElementTree as ET

    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    out: dict[str, list[list[str]]] = {}
    with zipfile.ZipFile(path) as z:
        shared: list[str] = []
        if "xl/sharedStrings.xml" in z.namelist():
            root = ET.fromstring(z.read("xl/sharedStrings.xml"))
            for si in root.findall("m:si", ns):
                shared.append("".join(t.text or "" for t in si.iter(f"{{{ns['m']}}}t")))
        for name in sorted(n for n in z.namelist() if n.startswith("xl/worksheets/") and n.endswith(".xml")):
            root = ET.fromstring(z.read(name))
            rows = []
            for row in root.iter(f"{{{ns['m']}}}row"):
                cells = []
                for c in row.findall("m:c", ns):
                    t = c.get("t")
                    v = c.find("m:v", ns)
                    if t == "s" and v is not None:
                        cells.append(shared[int(v.text)])
                    elif t == "inlineStr":
                        cells.append("".join(x.text or "" for x in c.iter(f"{{{ns['m']}}}t")))
                    else:
                        cells.append(v.text if v is not None and v.text is not None else "")
                rows.append(cells)
            out[name] = rows
    return out


def _gpkg_rows(path: Path) -> dict[str, list[list]]:
    out = {}
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for t in tables:
            if t.startswith(("gpkg_", "rtree_", "sqlite_")):
                continue
            # the primary key (fid) numbers features 1, 2, 3 …: not an attribute value
            pk = {r[1] for r in con.execute(f'PRAGMA table_info("{t}")') if r[5]}
            cur = con.execute(f'SELECT * FROM "{t}"')
            names = [d[0] for d in cur.description]
            rows = []
            for r in cur.fetchall():
                # geometry blobs are not attribute values
                rows.append([v for v, n in zip(r, names) if n not in pk and not isinstance(v, (bytes, memoryview))])
            out[t] = rows
    finally:
        con.close()
    return out


def scan_for_values(text_or_path, values, *, row_label: str | None = None, kind: str | None = None) -> list[ScanHit]:
    """Look for planted small counts in an output file (or text).

    How false positives are avoided: a test plants a distinctive count (e.g.
    2) in a Sozialraum with a distinctive name or key (``row_label``, e.g.
    "Zwergwinkel"). Only the cells that belong to that Sozialraum are
    compared with ``values``, and a cell matches only if its whole text is the
    number (German "2", "2,0" or "2.0"), so "12", "2,5 je 1.000", "2026" or a
    percentage elsewhere never match; text with a leading zero ("01", a
    Bezirk key) is an identifier, not a count:

    - html: table rows (``<tr>``) containing the label, cell by cell; and
      JSON-like objects (``{...}``, the GeoJSON properties folium embeds for
      tooltips and popups) containing the label, field by field; and the
      visible text lines with the label, token by token. Pages embedded as
      ``data:text/html;base64`` URIs or html-escaped in ``srcdoc`` are
      decoded and scanned the same way.
    - xlsx: every sheet's rows from the unzipped XML (shared strings
      resolved), rows containing the label, cell by cell.
    - gpkg: every feature/attribute table (SQLite), rows with the label,
      attribute by attribute (geometry blobs and the primary key ``fid``
      skipped).
    - pdf: text from ``pdftotext -layout``, lines with the label, token by
      token (a table row stays on one line in layout mode).
    - json/geojson/csv/txt: like html objects / text lines.

    Without ``row_label`` every token of the text is compared (only useful
    for values that cannot occur otherwise). Returns the hits (empty list =
    not found).
    """
    values = [values] if isinstance(values, (int, float)) else list(values)
    path = None
    if isinstance(text_or_path, Path) or (
        isinstance(text_or_path, str) and len(text_or_path) < 4096 and "\n" not in text_or_path and Path(text_or_path).is_file()
    ):
        path = Path(text_or_path)
        kind = kind or path.suffix.lower().lstrip(".")
    kind = kind or "text"
    label = row_label
    if path is not None and kind == "xlsx":
        hits = []
        for sheet, rows in _xlsx_rows(path).items():
            if label is None:
                hits += [ScanHit(kind, sheet, v, c) for row in rows for c in row if (v := _matches(c, values)) is not None]
            else:
                hits += _scan_rows(rows, values, label, kind, sheet)
        return hits
    if path is not None and kind == "gpkg":
        hits = []
        for table, rows in _gpkg_rows(path).items():
            if label is None:
                hits += [ScanHit(kind, table, v, str(row)[:200]) for row in rows for c in row if (v := _matches(c, values)) is not None]
            else:
                hits += _scan_rows(rows, values, label, kind, table)
        return hits
    if path is not None and kind == "pdf":
        res = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise GeoplanError(
                "PDF-Text konnte nicht gelesen werden (pdftotext).",
                file=path,
                found=res.stderr.strip()[:200],
                hint="poppler-utils installieren.",
                message_en="The PDF text could not be read (pdftotext).", hint_en="Install poppler-utils.",
            )
        text = res.stdout
    elif path is not None:
        text = path.read_text(encoding="utf-8", errors="replace")
    else:
        text = str(text_or_path)
    if label is None:
        return [
            ScanHit(kind, f"Token {i}", v, tok)
            for i, tok in enumerate(re.split(r"[\s<>\"',;:|(){}\[\]=]+", html_lib.unescape(text)))
            if (v := _matches(tok, values)) is not None
        ]
    hits: list[ScanHit] = []
    if kind in ("html", "htm"):
        # maps embedded as data URIs (folium's notebook form) are scanned as html too
        for m in _DATA_URI_RE.finditer(text):
            try:
                inner = base64.b64decode(m.group(1)).decode("utf-8", "replace")
            except (ValueError, binascii.Error):
                continue
            hits += [
                ScanHit(h.kind, f"eingebettete Seite: {h.location}", h.value, h.context)
                for h in scan_for_values(inner, values, row_label=label, kind="html")
            ]
        hits += _scan_rows(_HTMLRows(text).rows, values, label, kind, "Tabelle")
        hits += _scan_objects(text, values, label, kind)
        # iframe srcdoc holds the map html-escaped (&quot;), possibly twice
        unescaped = text
        for _ in range(2):
            nxt = html_lib.unescape(unescaped)
            if nxt == unescaped:
                break
            unescaped = nxt
            hits += _scan_objects(unescaped, values, label, kind)
            hits += _scan_rows(_HTMLRows(unescaped).rows, values, label, kind, "eingebettete Tabelle")
        visible = re.sub(r"<script.*?</script>|<style.*?</style>", " ", text, flags=re.S)
        visible = html_lib.unescape(re.sub(r"<[^>]+>", "\n", visible))
        hits += _scan_text_lines(visible, values, label, kind)
    elif kind in ("json", "geojson", "js"):
        hits += _scan_objects(text, values, label, kind)
    else:
        hits += _scan_text_lines(text, values, label, kind)
        if kind == "csv":
            hits += _scan_rows([re.split(r"[;,\t]", line) for line in text.splitlines()], values, label, kind, "CSV")
    return hits


# --------------------------------------------------------------------------
# one call for the Sozialraum frame
# --------------------------------------------------------------------------

SCANNABLE = ("html", "htm", "pdf", "xlsx", "gpkg", "json", "geojson", "js", "csv", "txt", "md")


def scan_output_dir(folder, values, *, row_label: str) -> dict[str, list[ScanHit]]:
    """Run :func:`scan_for_values` on every output file below ``folder``.

    Files with the suffixes in ``SCANNABLE`` are read; returns
    ``{relative path: hits}`` for files with hits and the key
    ``"__not_scanned__"`` listing other files (e.g. PNG maps, which must not
    print counts) so a test can see what was left out.
    """
    folder = Path(folder)
    out: dict = {}
    skipped = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = str(path.relative_to(folder))
        suffix = path.suffix.lower().lstrip(".")
        if path.name == ".geoplan-ausgabe":  # geoplan's marker file (geoplan.report.outdir.MARKER)
            continue
        if suffix not in SCANNABLE:
            skipped.append(rel)
            continue
        hits = scan_for_values(path, values, row_label=row_label, kind=suffix)
        if hits:
            out[rel] = hits
    out["__not_scanned__"] = skipped
    return out


# --------------------------------------------------------------------------
# proportionality: a published column that is a linear function of counts
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class ProportionalHit:
    """A published column from which small counts follow: ``value = offset + per_case × count``."""

    source: str
    column: str
    per_case: float
    offset: float
    small_keys: tuple


def _key_column(table, keys: set) -> str | None:
    best, best_n = None, 0
    for c in table.columns:
        vals = table[c].astype(str).str.strip()
        n = int(vals.isin(keys).sum())
        if n > best_n:
            best, best_n = c, n
    return best if best_n >= 3 else None


def proportional_columns(table, counts, *, k: int, source: str = "", tol: float = 1.0) -> list[ProportionalHit]:
    """Columns of ``table`` that are ``a + b × count`` (up to rounding, ``tol``) with a count in 1..k-1.

    ``counts``: observed counts per key (pandas Series indexed by key). The key
    column of ``table`` is found by its values. Such a column gives every small
    count back, however well the count column itself is suppressed.
    """
    import numpy as np
    import pandas as pd

    counts = pd.Series(counts)
    counts.index = counts.index.astype(str)
    keycol = _key_column(table, set(counts.index))
    if keycol is None:
        return []
    keys = table[keycol].astype(str).str.strip()
    c_all = pd.to_numeric(keys.map(counts), errors="coerce").to_numpy(dtype=float)
    hits = []
    for col in table.columns:
        if col == keycol:
            continue
        v = pd.to_numeric(table[col], errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(v) & np.isfinite(c_all)
        if ok.sum() < 3:
            continue
        c, y = c_all[ok], v[ok]
        small = (c >= 1) & (c < k)
        if not small.any() or len(np.unique(c)) < 2:
            continue
        X = np.column_stack([np.ones_like(c), c])
        (a, b), *_ = np.linalg.lstsq(X, y, rcond=None)
        if not np.isfinite(b) or abs(b) <= 1e-12:
            continue
        resid = np.abs(y - (a + b * c))
        if resid.max() <= max(tol, 1e-9 * np.abs(y).max()) and abs(b) > 2 * tol:
            small_keys = tuple(keys.to_numpy()[ok][small][:5])
            hits.append(ProportionalHit(source, str(col), float(b), float(a), small_keys))
    return hits


def scan_output_proportional(folder, counts, *, k: int) -> dict[str, list[ProportionalHit]]:
    """:func:`proportional_columns` on every table of an output folder (xlsx sheets, gpkg layers, csv)."""
    import numpy as np
    import pandas as pd

    folder = Path(folder)
    out: dict[str, list[ProportionalHit]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = str(path.relative_to(folder))
        suffix = path.suffix.lower()
        tables = []
        if suffix == ".xlsx":
            for name, df in pd.read_excel(path, sheet_name=None, header=None).items():
                if df.empty:
                    continue
                # the header may sit below title rows: the first row with the most text cells
                texts = [sum(isinstance(c, str) and _as_number(c) is None for c in df.iloc[h])
                         for h in range(min(8, len(df)))]
                h = int(np.argmax(texts))
                t = df.iloc[h + 1:].copy()
                t.columns = [str(x) for x in df.iloc[h]]
                tables.append((f"{rel}:{name}", t.loc[:, ~pd.Index(t.columns).duplicated()]))
        elif suffix == ".gpkg":
            import pyogrio

            for layer, _ in pyogrio.list_layers(path):
                tables.append((f"{rel}:{layer}", pyogrio.read_dataframe(path, layer=layer, read_geometry=False)))
        elif suffix == ".csv":
            tables.append((rel, pd.read_csv(path, sep=None, engine="python")))
        hits = [h for src, t in tables for h in proportional_columns(t, counts, k=k, source=src)]
        if hits:
            out[rel] = list({(h.source.split(":")[0], h.column): h for h in hits}.values())
    return out
