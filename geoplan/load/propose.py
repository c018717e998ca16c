"""``geoplan init --from POLYGONS [--table CSV …]``: a config and a catalogue proposed from the user's own files.

Reads the polygon layer (layers, CRS, fields: key, name and group candidates)
and each table (dialect, key column, numeric columns), matches the table keys
against the polygon keys (on the Sozialräume, or a prefix of them, or another
geography) and writes a commented YAML config and an indicator catalogue that
``geoplan validate`` can check right away. Every guess is marked in a comment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from geoplan.errors import GeoplanError

# column name patterns -> geoplan count columns (age groups)
_POP_PATTERNS = [
    (r"^(einwohner|ew|bev(ö|oe)lkerung|insgesamt|gesamt|einw)(_?gesamt|_?insgesamt)?$", "pop_total"),
    (r"^(unter|u|0\s*(bis|-|–)\s*(unter)?)\s*_?6\b|^unter6$|^u6$|^0_6$|^0_5$", "pop_u6"),
    (r"^6\s*(bis|-|–|_)\s*(unter\s*)?15$", "pop_6_15"),
    (r"^15\s*(bis|-|–|_)\s*(unter\s*)?18$", "pop_15_18"),
    (r"^18\s*(bis|-|–|_)\s*(unter\s*)?21$", "pop_18_21"),
    (r"^18\s*(bis|-|–|_)\s*(unter\s*)?27$", "pop_18_27"),
    (r"^(unter|u)\s*_?18$", "pop_u18"),
    (r"^(unter|u)\s*_?21$", "pop_u21"),
]
_KEY_HINT = re.compile(r"(^id$|_id$|^id_|nr|nummer|schl|key|code|kenn|^ags$|^plz$)", re.I)
_NAME_HINT = re.compile(r"(name|bez(eichnung)?$|^bez$|titel|label)", re.I)
_GROUP_HINT = re.compile(r"(bezirk|district|stadtbezirk|region|ortsamt|gruppe)", re.I)


@dataclass
class Proposal:
    config: str
    catalogue: str
    notes: list[str] = field(default_factory=list)
    notes_en: list[str] = field(default_factory=list)   # the same notes in English (``geoplan --lang en init``)


def _slug(text: str) -> str:
    t = str(text).strip().lower()
    for a, b in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        t = t.replace(a, b)
    t = re.sub(r"[^a-z0-9]+", "_", t).strip("_")
    if not t or t[0].isdigit():
        t = "x_" + t
    return t


def _crs_short(crs) -> str | None:
    if crs is None:
        return None
    from pyproj import CRS

    c = CRS.from_user_input(crs)
    epsg = c.to_epsg()
    return f"EPSG:{epsg}" if epsg else c.name


def _q(v) -> str:
    """A YAML scalar, quoted when needed."""
    import yaml

    return yaml.safe_dump(v, allow_unicode=True, default_flow_style=True, width=1000).strip().removesuffix("\n...")


def _polygons(path: Path) -> tuple[pd.DataFrame, dict]:
    import geopandas as gpd
    import pyogrio

    from geoplan.load.boundaries import _layers_of, _open_source

    src = _open_source(str(path))
    layers = _layers_of(src)
    poly_layers = []
    for lay in layers:
        info = pyogrio.read_info(src.gdal_path, layer=lay)
        if info.get("geometry_type") and "Polygon" in str(info.get("geometry_type")):
            poly_layers.append((lay, int(info.get("features") or 0)))
    if not poly_layers:
        raise GeoplanError("Die Datei enthält keine Polygonebene.", file=path, found=", ".join(layers) or "keine Ebene",
                           hint="Die Datei mit den Sozialraum-Polygonen angeben (Shapefile, GeoPackage, GeoJSON).",
                           message_en="The file holds no polygon layer.",
                           hint_en="Give the file with the Sozialraum polygons (shapefile, GeoPackage, GeoJSON).")
    layer = max(poly_layers, key=lambda x: x[1])[0]
    gdf = gpd.read_file(src.gdal_path, layer=layer, engine="pyogrio")
    meta = {"layer": layer if len(layers) > 1 else None, "layers": [lay for lay, _ in poly_layers],
            "crs": _crs_short(gdf.crs), "n": len(gdf), "is_shapefile": src.is_shapefile}
    return pd.DataFrame(gdf.drop(columns=gdf.geometry.name)), meta


def _as_text(s: pd.Series) -> pd.Series:
    return s.map(lambda v: None if pd.isna(v) else (str(int(v)) if isinstance(v, float) and v.is_integer() else str(v).strip()))


def _key_candidates(df: pd.DataFrame) -> list[str]:
    cands = [c for c in df.columns if df[c].notna().all() and _as_text(df[c]).is_unique]
    return sorted(cands, key=lambda c: (not bool(_KEY_HINT.search(str(c))), list(df.columns).index(c)))


def _name_candidate(df: pd.DataFrame, key: str) -> str | None:
    texts = [c for c in df.columns if c != key and (df[c].dtype == object or pd.api.types.is_string_dtype(df[c]))
             and _as_text(df[c]).str.contains(r"[A-Za-zÄÖÜäöü]", regex=True, na=False).mean() > 0.8]
    texts.sort(key=lambda c: (not bool(_NAME_HINT.search(str(c))), -_as_text(df[c]).nunique()))
    return texts[0] if texts else None


def _group_candidate(df: pd.DataFrame, key: str, name: str | None) -> str | None:
    n = len(df)
    for c in df.columns:
        if c in (key, name):
            continue
        k = _as_text(df[c]).nunique()
        if _GROUP_HINT.search(str(c)) and 1 < k <= max(2, n // 2) and df[c].notna().all():
            return c
    return None


def _raw_header(path: Path) -> tuple[list[str], list[list], dict]:
    from geoplan.load.tables import _read_csv_rows, _read_xlsx_rows

    if path.suffix.lower() in (".xlsx", ".xlsm"):
        rows, dialect, _ = _read_xlsx_rows(str(path), None, "")
    else:
        rows, dialect, _ = _read_csv_rows(str(path), None, None)
    rows = [[("" if c is None else str(c).strip()) for c in r] for r in rows]
    rows = [r for r in rows if any(r)]
    width = max(len(r) for r in rows)
    header_i = next(i for i, r in enumerate(rows) if sum(1 for c in r if c) >= max(2, width - 1))
    return rows[header_i], rows[header_i + 1:], {**dialect, "header_line": header_i}


def _table(path: Path, poly_keys: set[str]) -> dict:
    from geoplan.load.tables import read_table

    header, data, dialect = _raw_header(path)
    best = None
    for j, name in enumerate(header):
        vals = {r[j] for r in data if j < len(r) and r[j]}
        if not vals or not name:
            continue
        exact = len(vals & poly_keys) / len(vals)
        padded = len({v.zfill(max(map(len, poly_keys))) for v in vals if v.isdigit()} & poly_keys) / len(vals)
        prefix = 0.0
        if not exact and poly_keys:
            plen = max(map(len, poly_keys))
            prefix = len({v[:plen] for v in vals} & poly_keys) / len(vals)
        score = max(exact, padded, prefix * 0.9)
        if best is None or score > best[0]:
            best = (score, name, exact, padded, prefix)
    if best is None:
        raise GeoplanError("In der Tabelle wurde keine Spalte gefunden.", file=path,
                           message_en="No column was found in the table.")
    score, key, exact, padded, prefix = best
    info = {"path": path, "key": key, "score": score, "dialect": dialect}
    if padded > exact:
        info["key_width"] = max(map(len, poly_keys))
    if prefix > max(exact, padded):
        info["prefix_len"] = max(map(len, poly_keys))
    # total rows: a key that matches no polygon next to a word like "insgesamt"
    kj = header.index(key)
    width = info.get("key_width")
    total_word = re.compile(r"^(stadt\s*)?(insgesamt|gesamt|summe|total|stadt)(\s*insgesamt)?$", re.I)
    totals = sorted({r[kj] for r in data if kj < len(r) and r[kj]
                     and (r[kj].zfill(width) if width and r[kj].isdigit() else r[kj]) not in poly_keys
                     and sum(1 for c in r if c) > 1
                     and any(total_word.match(c) for c in r if c)})
    if totals:
        info["drop_keys"] = ["^" + re.escape(t) + "$" for t in totals]
    opts = dict(key_width=width, allow_duplicates=True, allow_mixed_key_lengths=True,
                drop_keys=info.get("drop_keys", ()))
    frame = pd.DataFrame(columns=header)
    for skip in (0, 1, 2):
        try:
            res = read_table(path, key=key, skip_rows=skip, **opts)
        except GeoplanError as err:
            info["error"] = err.message
            continue
        frame = res.frame
        info["dialect"] = res.dialect
        info.pop("error", None)
        if skip:
            info["skip_rows"] = skip
        break
    numeric = [c for c in frame.columns if c != key and frame[c].dtype == "float64"]
    info["numeric"] = numeric
    info["frame"] = frame
    return info


def _pop_name(col: str) -> str | None:
    t = str(col).strip().lower().replace("jahre", "").replace("j.", "").strip()
    for pat, name in _POP_PATTERNS:
        if re.search(pat, t, re.I):
            return name
    return None


def propose(polygons: Path, tables: list[Path], config_path: Path) -> Proposal:
    """A commented config (YAML text) and a catalogue for ``polygons`` and ``tables``."""
    polygons = Path(polygons)
    base = Path(config_path).resolve().parent

    def rel(p: Path) -> str:
        p = Path(p).resolve()
        try:
            return p.relative_to(base).as_posix()
        except ValueError:
            return p.as_posix()

    df, meta = _polygons(polygons)
    keys = _key_candidates(df)
    if not keys:
        raise GeoplanError("Kein Feld der Polygone ist ein eindeutiger Schlüssel.", file=polygons,
                           found="Felder: " + ", ".join(map(str, df.columns)),
                           hint="Ein Feld mit einer eindeutigen Nummer je Sozialraum ergänzen (z. B. in QGIS).",
                           message_en="No field of the polygons is a unique key.",
                           hint_en="Add a field with a unique number per Sozialraum (e.g. in QGIS).")
    key = keys[0]
    name = _name_candidate(df, key)
    group = _group_candidate(df, key, name)
    poly_keys = set(_as_text(df[key]))
    notes: list[str] = []
    notes_en: list[str] = []

    tinfo = [_table(Path(t), poly_keys) for t in tables]
    columns_by_table: list[dict[str, str]] = []
    used: set[str] = set()
    indicators: list[dict] = []
    for t in tinfo:
        cols: dict[str, str] = {}
        for c in t["numeric"]:
            pop = _pop_name(c)
            if pop and pop not in used:
                cols[c] = pop
                used.add(pop)
            else:
                nm = _slug(c)
                while nm in used:
                    nm += "_2"
                used.add(nm)
                cols[c] = nm
                v = pd.to_numeric(t["frame"][c], errors="coerce")
                is_share = bool(v.notna().any() and v.min() >= 0 and v.max() <= 100 and (v % 1 != 0).any())
                indicators.append({"name": nm, "label": str(c), "column": nm, "unit": "%" if is_share else "Anzahl",
                                   "share": is_share})
        columns_by_table.append(cols)
    pops = used & {"pop_u6", "pop_6_15", "pop_15_18", "pop_18_21", "pop_18_27", "pop_u18", "pop_u21", "pop_total"}
    derived = None
    if "pop_u21" in pops:
        exposure = "pop_u21"
    elif {"pop_u6", "pop_6_15", "pop_15_18", "pop_18_21"} <= pops:
        exposure, derived = "pop_u21", {"pop_u6": 1, "pop_6_15": 1, "pop_15_18": 1, "pop_18_21": 1}
    elif {"pop_u6", "pop_6_15", "pop_15_18", "pop_18_27"} <= pops:
        exposure, derived = "pop_u21", {"pop_u6": 1, "pop_6_15": 1, "pop_15_18": 1, "pop_18_27": 0.3333333333333333}
    elif "pop_u18" in pops:
        exposure = "pop_u18"
    elif {"pop_u6", "pop_6_15", "pop_15_18"} <= pops:
        exposure, derived = "pop_u18", {"pop_u6": 1, "pop_6_15": 1, "pop_15_18": 1}
    elif "pop_total" in pops:
        exposure = "pop_total"
        notes.append("Keine Altersgruppen erkannt: Bezugsbevölkerung ist vorläufig pop_total (alle Einwohner).")
        notes_en.append("No age groups recognised: the reference population is pop_total (all residents) for now.")
    else:
        exposure = "pop_total"
        notes.append("Keine Einwohnerspalte erkannt: in indicators.tables[].columns eine Spalte als pop_total "
                     "benennen.")
        notes_en.append("No population column recognised: name a column pop_total in indicators.tables[].columns.")
    shares = [i for i in indicators if i["share"]]
    predictors = [i["name"] for i in (shares or indicators)[:3]]
    base_col = exposure if exposure in used or derived else None

    L: list[str] = []
    add = L.append
    add("# geoplan – Konfiguration, vorgeschlagen von 'geoplan init --from' (alle Vermutungen sind kommentiert)")
    add("# Nächster Schritt: geoplan validate " + Path(config_path).name + "   (prüft alles außer dem Modell)")
    add("# Rechnen:          geoplan run " + Path(config_path).name + " --out ausgabe")
    add("")
    add("title: Sozialraumbudget Hilfen zur Erziehung")
    add("region: " + _q(Path(polygons).stem.replace("_", " ").title()) + "       # TODO: Name der Kommune")
    add("budget_year: 2027")
    add("")
    add("boundaries:")
    add(f"  path: {_q(rel(polygons))}")
    add(f"  key: {_q(key)}" + (f"        # eindeutig in allen {meta['n']} Objekten; andere Kandidaten: "
                               + ", ".join(map(str, keys[1:4])) if len(keys) > 1 else
                               f"        # eindeutig in allen {meta['n']} Objekten"))
    add(f"  name: {_q(name)}" if name else "  # name: FELD                      # kein Namensfeld erkannt")
    if meta["layer"]:
        add(f"  layer: {_q(meta['layer'])}        # Ebenen mit Polygonen: {', '.join(meta['layers'])}")
    if meta["crs"]:
        add(f"  # KBS der Datei: {meta['crs']}")
    else:
        add("  crs: EPSG:25832                    # TODO: die Datei hat kein KBS (.prj fehlt) – bitte prüfen")
    add(f"  group: {_q(group)}" + "              # übergeordnete Einheit (Bezirk) aus den Polygonen" if group else
        "  # group: BEZIRK                    # Feld mit der übergeordneten Einheit, falls vorhanden")
    add("  # merge: [{keys: ['03', '04'], key: '0304', name: 'A/B'}]   # Polygone, die die Statistik als eines führt")
    add("  # exclude: ['20']                  # unbewohnte Polygone: grau, kein Budget")
    add("")
    add("indicators:")
    add("  catalogue: " + _q(Path(config_path).stem + "_katalog.yaml") + "   # von init geschrieben; Quellen ergänzen")
    add("  tables:")
    for t, cols in zip(tinfo, columns_by_table):
        add(f"    - path: {_q(rel(t['path']))}")
        add(f"      key: {_q(t['key'])}" + f"         # {t['score']:.0%} der Schlüssel passen zu den Polygonen")
        d = t.get("dialect", {})
        extras = []
        if d.get("delimiter"):
            extras.append(f"Trennzeichen {d['delimiter']!r}")
        if d.get("encoding"):
            extras.append(f"Kodierung {d['encoding']}")
        if d.get("decimal"):
            extras.append(f"Dezimalzeichen {d['decimal']!r}")
        if extras:
            add("      # erkannt: " + ", ".join(extras) + " (nur bei Fehlern angeben)")
        if t.get("key_width"):
            add(f"      key_width: {t['key_width']}               # führende Nullen fehlten in der Tabelle")
        if t.get("prefix_len"):
            add("      level: kleinraum               # die Schlüssel sind feiner als die Sozialräume")
        elif t["score"] < 0.5:
            add("      # TODO: die Schlüssel passen kaum zu den Polygonen – andere Geografie? Dann 'level:' setzen und")
            add("      # unter indicators.levels beschreiben (Schlüsseltabelle, prefix_len oder Polygone + method).")
        if t.get("error"):
            add("      # Achtung beim Lesen: " + t["error"].replace("\n", " "))
        if t.get("skip_rows"):
            add(f"      skip_rows: {t['skip_rows']}                # Zeile(n) unter der Kopfzeile sind keine Daten")
        if t.get("drop_keys"):
            add(f"      drop_rows: {{keys: {_q(t['drop_keys'])}}}   # Summenzeilen, keine Gebiete")
        else:
            add("      # drop_rows: {labels: ['Insgesamt']}  # Summenzeilen überspringen")
        keys_t = t["frame"][t["key"]].astype(str) if t["key"] in t["frame"].columns else pd.Series(dtype=str)
        if len(keys_t) and keys_t.str.len().nunique() > 1:
            add("      allow_mixed_key_lengths: true    # Schlüssel verschiedener Länge")
        add("      columns:")
        if not cols:
            add("        {}   # TODO: keine Zahlenspalten erkannt")
        for c, g in cols.items():
            add(f"        {_q(c)}: {g}")
    if any(t.get("prefix_len") for t in tinfo):
        add("  levels:")
        add("    kleinraum:")
        add(f"      prefix_len: {max(map(len, poly_keys))}             # Sozialraum = Anfang des Tabellenschlüssels")
    add("  # levels:                          # Tabellen auf anderer Geografie, z. B. je Postleitzahl:")
    add("  #   plz: {polygons: plz.shp, key: plz, method: dasymetric, weights: {raster: zensus_100m.tif}}")
    if derived:
        add("  derived:")
        add(f"    {exposure}: " + _q(derived))
    add("")
    add("hze:")
    add("  # echte Falldaten je Sozialraum (empfohlen):")
    add("  # path: hze.csv")
    add(f"  # key: {key}")
    add("  # columns: {Faelle: hze_cases, Faelle_Vorjahr: hze_cases_prev, Kosten_Vorjahr: hze_cost_prev_eur}")
    add("  # bis dahin simuliert (nur zum Ausprobieren; der Bericht sagt es):")
    add("  simulate:")
    add("    seed: 2026")
    add("    rate_per_1000: 30")
    add("    effects: " + _q({p: 0.2 for p in predictors}))
    add("    kinds:")
    add("      ambulant: {share: 0.62, cost_per_case_eur: 7000}")
    add("      teilstationaer: {share: 0.08, cost_per_case_eur: 20000}")
    add("      stationaer: {share: 0.30, cost_per_case_eur: 62000}")
    add("")
    add("model:")
    add(f"  predictors: {_q(predictors)}")
    add(f"  exposure: {exposure}")
    add("  # exposure_label: Einwohner unter 18   # Bezeichnung im Bericht (sonst aus dem Namen)")
    add("  cv_folds: 5")
    add("  n_boot: 1000")
    add("")
    add("allocation:")
    add("  total_eur: 10000000                 # TODO: Gesamtbudget")
    add("  unit: euro")
    add("  components:")
    add(f"    - {{name: grundanteil, label: Grundanteil nach Bezugsbevölkerung, type: population, weight: 0.4, "
        f"columns: [{exposure}]}}")
    add("    - {name: bedarf, label: Bedarfsanteil nach erwarteten Fällen, type: model, weight: 0.6, "
        "column: expected_cases}")
    add("")
    add("output:")
    add("  tiles: null")
    add("  pdf: true")

    C: list[str] = []
    C.append("# Indikatorenkatalog, vorgeschlagen von 'geoplan init --from'. Bitte prüfen: label, unit ('%', 'je 1.000',")
    C.append("# 'Anzahl', 'Index', 'Prozentpunkte'), direction ('hoch = mehr Bedarf' / 'hoch = weniger Bedarf'),")
    C.append("# weight (Gewicht im Bedarfsindex, 0 = nicht im Index), source und reference_date (Pflicht).")
    C.append("title: " + _q("Indikatoren " + Path(polygons).stem))
    C.append("indicators:")
    if not indicators:
        C.append("  []   # TODO: keine Indikatorspalten erkannt")
    for i in indicators:
        C.append(f"  - name: {i['name']}")
        C.append(f"    label: {_q(i['label'])}")
        C.append(f"    column: {i['column']}")
        if i["share"] and base_col:
            C.append(f"    base: [{base_col}]                # Bezugsbevölkerung (Gewicht beim Zusammenfassen)")
        C.append(f"    unit: {_q(i['unit'])}" + ("" if i["share"] else "          # TODO: Einheit prüfen"))
        C.append("    direction: hoch = mehr Bedarf")
        C.append("    weight: 1.0")
        C.append("    group: kontext")
        C.append("    smoothing: keine")
        C.append("    source: TODO Quelle")
        C.append("    reference_date: TODO Stichtag")
    return Proposal(config="\n".join(L) + "\n", catalogue="\n".join(C) + "\n", notes=notes, notes_en=notes_en)
