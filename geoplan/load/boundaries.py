"""Read and check Sozialraum boundaries (Shapefile, GeoPackage, GeoJSON, FlatGeobuf).

All reading goes through pyogrio. The CRS is never assumed: a layer without
one is an error unless the configuration states it. Areas are computed in a
metric CRS, ETRS89 / UTM zone 32N (EPSG:25832) west of 12° E and zone 33N
(EPSG:25833) east of it, the zones the German Länder use for ALKIS/ATKIS.

:func:`check_boundaries` writes the geometry QA as a findings table with one
row per problem (``kind``, ``key``, ``detail``, ``area_m2``):

``invalid``      self-intersecting etc. (error unless ``repair=True``)
``repaired``     repaired with :func:`shapely.make_valid` (polygonal parts kept)
``empty``        empty or missing geometry (error)
``multipart``    Sozialraum made of several polygons (note)
``overlap``      two Sozialräume overlap by more than ``min_sliver_m2`` (note)
``gap``          hole inside the union of all Sozialräume above ``min_sliver_m2`` (note)
``duplicate_key`` key used more than once (error)
``missing_key``  empty key (error)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS, Transformer

from geoplan import fmt
from geoplan.errors import GeoplanError, QANote, what_en
from geoplan.load.tables import _did_you_mean, normalize_keys

__all__ = [
    "BoundaryQA",
    "BoundaryResult",
    "list_layers",
    "read_boundaries",
    "metric_crs_for",
    "check_boundaries",
    "prepare_boundaries",
    "detect_dbf_encoding",
    "suggest_crs",
    "parse_crs",
]

STAGE = "boundaries"
FINDING_COLUMNS = ["kind", "key", "detail", "area_m2"]
ERROR_KINDS = ("invalid", "empty", "duplicate_key", "missing_key")
_KIND_EN = {
    "invalid": "invalid geometry", "repaired": "repaired", "empty": "empty geometry", "multipart": "multipart",
    "overlap": "overlap", "gap": "gap", "duplicate_key": "duplicate key", "missing_key": "missing key",
}
_KIND_DE = {
    "invalid": "ungültige Geometrie",
    "repaired": "repariert",
    "empty": "leere Geometrie",
    "multipart": "mehrteilig",
    "overlap": "Überlappung",
    "gap": "Lücke",
    "duplicate_key": "doppelter Schlüssel",
    "missing_key": "fehlender Schlüssel",
}


@dataclass
class BoundaryQA:
    """Geometry QA of a Sozialraum layer.

    ``gdf`` is the checked (and, with ``repair=True``, repaired) layer;
    ``findings`` has the columns ``kind``, ``key``, ``detail``, ``area_m2``
    (area in m² in the metric CRS, NaN where it does not apply).
    """

    gdf: gpd.GeoDataFrame
    findings: pd.DataFrame
    notes: list[QANote] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return int((self.findings["kind"] == kind).sum())

    def summary(self) -> dict:
        """Number of findings per kind (all kinds, zeros included)."""
        kinds = ["invalid", "repaired", "empty", "multipart", "overlap", "gap", "duplicate_key", "missing_key"]
        return {k: self.count(k) for k in kinds}


@dataclass
class BoundaryResult:
    """Sozialräume ready for the pipeline.

    ``gdf`` has the columns ``key`` (str), ``name`` (str), ``area_km2``
    (km², computed in ``metric_crs``) and ``geometry`` in ``metric_crs``.
    """

    gdf: gpd.GeoDataFrame
    source_crs: str
    metric_crs: str
    qa: BoundaryQA
    notes: list[QANote] = field(default_factory=list)
    path: str | None = None
    layer: str | None = None
    encoding: str | None = None
    #: polygons left out of the budget (``boundaries.exclude``): grey on maps
    excluded: gpd.GeoDataFrame | None = None

    def summary(self) -> dict:
        """One line of the report's Datengrundlage / manifest.json."""
        return {
            "file": self.path,
            "layer": self.layer,
            "encoding": self.encoding,
            "features": int(len(self.gdf)),
            "source_crs": self.source_crs,
            "metric_crs": self.metric_crs,
            "area_km2": float(self.gdf["area_km2"].sum()),
            "findings": self.qa.summary(),
            "notes": len(self.notes),
        }


# --------------------------------------------------------------------------
# reading


_VECTOR_EXTS = (".shp", ".gpkg", ".geojson", ".json", ".fgb")


@dataclass
class _Source:
    """A vector dataset as GDAL sees it, plus access to Shapefile sidecars
    (also inside a .zip, as city GIS departments often send them)."""

    display: str
    gdal_path: str
    is_shapefile: bool
    zip_path: Path | None = None
    zip_members: dict[str, str] | None = None  # lower-case member name -> name

    def sidecar(self, layer: str | None, ext: str) -> bytes | None:
        if self.zip_path is None:
            shp = Path(self.gdal_path)
            for cand in (shp.with_suffix(ext), shp.with_suffix(ext.upper())):
                if cand.exists():
                    return cand.read_bytes()
            return None
        import zipfile

        want = [m for low, m in self.zip_members.items()
                if low.endswith(ext) and Path(low).stem == str(layer).lower()]
        if not want:
            return None
        with zipfile.ZipFile(self.zip_path) as zf:
            return zf.read(want[0])


def _open_source(path: str) -> _Source:
    p = Path(path)
    if not p.exists():
        raise GeoplanError(
            "Die Grenzdatei wurde nicht gefunden.",
            file=path,
            hint="Pfad in der Konfiguration prüfen (relativ zur Konfigurationsdatei).",
            message_en="The boundary file was not found.",
            hint_en="Check the path in the configuration (relative to the configuration file).",
        )
    suffix = p.suffix.lower()
    if suffix == ".zip":
        import zipfile

        try:
            with zipfile.ZipFile(p) as zf:
                names = [n for n in zf.namelist() if not n.startswith("__MACOSX") and not n.endswith("/")]
        except zipfile.BadZipFile as exc:
            raise GeoplanError("Die ZIP-Datei ist beschädigt.", file=path, found=str(exc),
                               message_en="The ZIP file is damaged.") from exc
        members = {n.lower(): n for n in names}
        vectors = [n for n in names if Path(n).suffix.lower() in _VECTOR_EXTS]
        shps = [n for n in vectors if n.lower().endswith(".shp")]
        others = [n for n in vectors if not n.lower().endswith(".shp")]
        if shps and not others:
            dirs = sorted({str(Path(n).parent) for n in shps})
            if len(dirs) > 1:
                raise GeoplanError(
                    "Die ZIP-Datei enthält Shapefiles in mehreren Ordnern.",
                    file=path,
                    found=", ".join(shps[:20]),
                    hint="Das gewünschte Shapefile entpacken und direkt angeben.",
                    message_en="The ZIP file holds shapefiles in several folders.",
                    hint_en="Unpack the shapefile you want and give it directly.",
                )
            inner = "" if dirs[0] == "." else "/" + dirs[0]
            src = _Source(path, f"/vsizip/{p.resolve()}{inner}", True, p, members)
            for shp in shps:
                stem = Path(shp).stem
                missing = [e for e in (".shx", ".dbf")
                           if src.sidecar(stem, e) is None]
                if missing:
                    raise GeoplanError(
                        "Zum Shapefile in der ZIP-Datei fehlen Begleitdateien.",
                        file=path,
                        location=shp,
                        found="fehlt: " + ", ".join(missing),
                        hint="Alle Dateien des Shapefiles (.shp, .shx, .dbf, .prj, .cpg) zusammen packen.",
                        message_en="Files belonging to the shapefile are missing in the ZIP file.",
                        hint_en="Pack all files of the shapefile (.shp, .shx, .dbf, .prj, .cpg) together.",
                    )
            return src
        if len(others) == 1 and not shps:
            return _Source(path, f"/vsizip/{p.resolve()}/{others[0]}", False)
        raise GeoplanError(
            "Die ZIP-Datei enthält keine oder mehrere verschiedene Geodateien.",
            file=path,
            expected="ein GeoPackage, GeoJSON, FlatGeobuf oder Shapefile(s)",
            found="Inhalt: " + (", ".join(names[:20]) or "leer"),
            hint="Die gewünschte Datei entpacken und direkt angeben.",
            message_en="The ZIP file holds no geodata file or several different ones.",
            expected_en="one GeoPackage, GeoJSON, FlatGeobuf or shapefile(s)",
            hint_en="Unpack the file you want and give it directly.",
        )
    src = _Source(path, path, suffix == ".shp")
    if src.is_shapefile:
        missing = [ext for ext in (".shx", ".dbf") if src.sidecar(None, ext) is None]
        if missing:
            raise GeoplanError(
                "Zum Shapefile fehlen Begleitdateien.",
                file=path,
                expected=".shp, .shx, .dbf (und .prj) mit gleichem Namen im selben Ordner",
                found="fehlt: " + ", ".join(missing),
                hint="Alle Dateien des Shapefiles kopieren, nicht nur die .shp.",
                message_en="Files belonging to the shapefile are missing.",
                expected_en=".shp, .shx, .dbf (and .prj) with the same name in the same folder",
                hint_en="Copy all files of the shapefile, not only the .shp.",
            )
    return src


def _layer_listing(src: _Source) -> str:
    """'name' (geometry type) for each layer, for error messages."""
    try:
        rows = pyogrio.list_layers(src.gdal_path)
    except Exception:  # pragma: no cover - listing already succeeded once
        return ""
    return "Ebenen: " + ", ".join(f"{str(r[0])!r} ({r[1] or 'ohne Geometrie'})" for r in rows)


def _layers_of(src: _Source) -> list[str]:
    try:
        layers = pyogrio.list_layers(src.gdal_path)
    except Exception as exc:
        raise GeoplanError(
            "Die Grenzdatei lässt sich nicht öffnen.",
            file=src.display,
            found=f"{type(exc).__name__}: {exc}",
            hint="Format prüfen: Shapefile (auch als .zip), GeoPackage, GeoJSON oder FlatGeobuf.",
            message_en="The boundary file cannot be opened.",
            hint_en="Check the format: shapefile (also as .zip), GeoPackage, GeoJSON or FlatGeobuf.",
        ) from exc
    return [str(row[0]) for row in layers]


def _geojson_info(src: _Source, encoding: str | None) -> dict | None:
    """``pyogrio.read_info`` of a GeoJSON file's layer, or None for any other file (or one GDAL cannot open).

    A GeoJSON file holds exactly one layer, and GDAL parses the whole file on every open: its info names
    that layer, so the file is not parsed once more just to list its layers."""
    if src.is_shapefile or Path(src.gdal_path).suffix.lower() not in (".geojson", ".json"):
        return None
    try:
        info = pyogrio.read_info(src.gdal_path, encoding=encoding)
    except Exception:
        return None  # listing the layers says why (the message of an unreadable file)
    return info if info.get("driver") == "GeoJSON" and info.get("layer_name") else None


def list_layers(path) -> list[str]:
    """Names of the layers in a vector file (GeoPackage or a .zip of
    Shapefiles may hold several)."""
    return _layers_of(_open_source(str(path)))


def detect_dbf_encoding(dbf_path) -> tuple[str, str]:
    """Guess the text encoding of a DBF file (path or bytes) from its bytes.

    Returns ``(encoding, reason)``. The bytes of all character fields are
    test-decoded: pure ASCII needs no decision; valid UTF-8 with non-ASCII
    bytes is UTF-8 (cp1252 text with umlauts is practically never valid
    UTF-8); otherwise cp1252, or latin-1 when cp1252's undefined bytes occur.
    """
    raw = dbf_path if isinstance(dbf_path, (bytes, bytearray)) else Path(dbf_path).read_bytes()
    if len(raw) < 32:
        return "utf-8", "leere DBF"
    n_rec = int.from_bytes(raw[4:8], "little")
    header_len = int.from_bytes(raw[8:10], "little")
    rec_len = int.from_bytes(raw[10:12], "little")
    fields = []
    pos, offset = 32, 1  # each record starts with a deletion flag byte
    while pos + 32 <= len(raw) and raw[pos] != 0x0D:
        ftype = chr(raw[pos + 11])
        flen = raw[pos + 16]
        if ftype in ("C", "M"):
            fields.append((offset, flen))
        offset += flen
        pos += 32
    body = raw[header_len:]
    if body.isascii():
        return "utf-8", "nur ASCII-Zeichen"
    try:
        body.decode("utf-8")
        return "utf-8", "gültiges UTF-8 mit Umlauten"
    except UnicodeDecodeError:
        pass  # maybe only a multi-byte character cut at a field's end: check per field
    chunks = []
    for r in range(n_rec):
        base = header_len + r * rec_len
        rec = raw[base : base + rec_len]
        for off, ln in fields:
            chunks.append(rec[off : off + ln].rstrip(b" \x00"))
    non_ascii = [c for c in chunks if any(b > 0x7F for b in c)]
    if not non_ascii:
        return "utf-8", "nur ASCII-Zeichen"
    try:
        for c in non_ascii:
            c.decode("utf-8")
        return "utf-8", "gültiges UTF-8 mit Umlauten"
    except UnicodeDecodeError:
        pass
    try:
        for c in non_ascii:
            c.decode("cp1252")
        return "cp1252", "kein gültiges UTF-8; Windows-Kodierung cp1252"
    except UnicodeDecodeError:
        return "latin-1", "kein gültiges UTF-8 und kein cp1252; latin-1"


#: the reasons of :func:`detect_dbf_encoding`, in English
_ENCODING_REASON_EN = {
    "nur ASCII-Zeichen": "ASCII characters only",
    "gültiges UTF-8 mit Umlauten": "valid UTF-8 with umlauts",
    "kein gültiges UTF-8; Windows-Kodierung cp1252": "not valid UTF-8; Windows encoding cp1252",
    "kein gültiges UTF-8 und kein cp1252; latin-1": "neither valid UTF-8 nor cp1252; latin-1",
}

def _shapefile_encoding(src: _Source, layer: str, encoding: str | None, notes: list[QANote]) -> str | None:
    if encoding is not None:
        return encoding
    dbf = src.sidecar(layer, ".dbf")
    if dbf is None:
        return None
    detected, reason = detect_dbf_encoding(dbf)
    cpg = src.sidecar(layer, ".cpg")
    if cpg is not None:
        declared = cpg.decode("ascii", errors="replace").strip()
        norm = declared.lower().replace("-", "").replace("_", "")
        declared_utf8 = norm in ("utf8", "65001")
        if declared_utf8 and detected != "utf-8":
            notes.append(QANote(STAGE, f".cpg nennt {declared!r}, die Attribute sind aber kein UTF-8; gelesen als "
                                f"{detected} ({reason}).", file=src.display,
                                message_en=f"The .cpg names {declared!r}, but the attributes are not UTF-8; read as "
                                f"{detected} ({_ENCODING_REASON_EN.get(reason, reason)})."))
            return detected
        if not declared_utf8 and detected == "utf-8" and reason.startswith("gültiges UTF-8"):
            notes.append(QANote(STAGE, f".cpg nennt {declared!r}, die Attribute sind aber UTF-8; gelesen als UTF-8.",
                                file=src.display,
                                message_en=f"The .cpg names {declared!r}, but the attributes are UTF-8; read as UTF-8."))
            return "utf-8"
        return None  # GDAL honours the .cpg
    notes.append(QANote(STAGE, f"Shapefile ohne .cpg; Kodierung der Attribute erkannt als {detected} ({reason}).",
                        level="info", file=src.display, details={"encoding": detected},
                        message_en=f"Shapefile without a .cpg; attribute encoding detected as {detected} "
                        f"({_ENCODING_REASON_EN.get(reason, reason)})."))
    return detected


def read_boundaries(path, *, key: str, name: str | None = None, layer=None, crs=None,
                    encoding: str | None = None) -> gpd.GeoDataFrame:
    """Read a Sozialraum layer as it is stored (source CRS), via pyogrio.

    Parameters
    ----------
    path : path-like
        Shapefile, GeoPackage, GeoJSON or FlatGeobuf.
    key : str
        Attribute with the Sozialraum key (returned as text).
    name : str, optional
        Attribute with the Sozialraum name.
    layer : str or int, optional
        Layer to read; required when the file has several.
    crs : str, optional
        CRS to use when the file has none (e.g. Shapefile without .prj), or to
        override a wrong one (e.g. ``"EPSG:4326"`` for degrees labelled as
        metres).
    encoding : str, optional
        Attribute encoding; by default detected for Shapefiles without .cpg.

    Returns
    -------
    GeoDataFrame in the source CRS (or ``crs``), with ``attrs["geoplan"]``
    holding ``notes``, ``layer``, ``encoding`` and ``source_crs``.
    """
    path = str(path)
    src = _open_source(path)
    notes: list[QANote] = []
    single = _geojson_info(src, encoding)
    layers = [str(single["layer_name"])] if single is not None else _layers_of(src)
    if layer is None:
        if len(layers) > 1:
            raise GeoplanError(
                "Die Datei enthält mehrere Ebenen; welche die Sozialräume sind, ist nicht eindeutig.",
                file=path,
                found=_layer_listing(src),
                hint="In der Konfiguration 'layer' auf eine dieser Ebenen setzen.",
                message_en="The file holds several layers; which one holds the Sozialräume is not clear.",
                hint_en="Set 'layer' in the configuration to one of these layers.",
            )
        if not layers:
            raise GeoplanError("Die Datei enthält keine Ebene.", file=path, message_en="The file holds no layer.")
        layer = layers[0]
    elif isinstance(layer, str) and layer not in layers:
        raise GeoplanError(
            f"Die Ebene {layer!r} gibt es nicht.",
            file=path,
            found=_layer_listing(src),
            hint="'layer' auf eine dieser Ebenen setzen.",
            message_en=f"There is no layer {layer!r}.", hint_en="Set 'layer' to one of these layers.",
        )
    elif isinstance(layer, int):
        if not 0 <= layer < len(layers):
            raise GeoplanError(f"Ebene Nr. {layer} gibt es nicht (Zählung ab 0).", file=path,
                               found=_layer_listing(src),
                               message_en=f"There is no layer no. {layer} (counting from 0).")
        layer = layers[layer]
    read_encoding = encoding
    if src.is_shapefile:
        read_encoding = _shapefile_encoding(src, layer, encoding, notes)
    try:
        if single is not None and layer == layers[0] and read_encoding == encoding:
            info = single  # the only layer, read with the same encoding
        else:
            info = pyogrio.read_info(src.gdal_path, layer=layer, encoding=read_encoding)
        gdf = gpd.read_file(src.gdal_path, layer=layer, engine="pyogrio", encoding=read_encoding, force_2d=True)
    except GeoplanError:
        raise
    except Exception as exc:
        raise GeoplanError(
            "Die Grenzdatei lässt sich nicht lesen.",
            file=path,
            location=f"Ebene {layer!r}",
            found=f"{type(exc).__name__}: {exc}",
            hint="Datei in QGIS öffnen und als GeoPackage neu speichern.",
            message_en="The boundary file cannot be read.", location_en=f"layer {layer!r}",
            hint_en="Open the file in QGIS and save it again as a GeoPackage.",
        ) from exc
    fields = [str(f) for f in info["fields"]]
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry.name not in gdf.columns or not info.get("geometry_type"):
        raise GeoplanError(
            "Die Ebene hat keine Geometrie (reine Attributtabelle).",
            file=path,
            location=f"Ebene {layer!r}",
            found=_layer_listing(src),
            hint="Die Ebene mit den Sozialraum-Polygonen wählen ('layer').",
            message_en="The layer has no geometry (attribute table only).", location_en=f"layer {layer!r}",
            hint_en="Choose the layer with the Sozialraum polygons ('layer').",
        )
    if len(gdf) == 0:
        raise GeoplanError(
            "Die Ebene enthält keine Objekte.",
            file=path,
            location=f"Ebene {layer!r}",
            expected="ein Polygon je Sozialraum",
            found="0 Objekte",
            hint="Richtige Ebene wählen ('layer') oder Export wiederholen.",
            message_en="The layer holds no features.", location_en=f"layer {layer!r}",
            expected_en="one polygon per Sozialraum", found_en="0 features",
            hint_en="Choose the right layer ('layer') or repeat the export.",
        )
    for col in (key, name):
        if col is not None and col not in gdf.columns:
            # DBF field names are often upper case; accept a unique match
            # ignoring case, as the table reader does.
            same = [c for c in gdf.columns if str(c).casefold() == col.casefold() and c != gdf.geometry.name]
            if len(same) == 1:
                gdf = gdf.rename(columns={same[0]: col})
                notes.append(QANote(STAGE, f"Feld {same[0]!r} als {col!r} verwendet (Groß-/Kleinschreibung).",
                                    level="info", file=path,
                                    message_en=f"Field {same[0]!r} used as {col!r} (upper/lower case)."))
    for col, what in ((key, "Schlüsselfeld"), (name, "Namensfeld")):
        if col is not None and col not in gdf.columns:
            raise GeoplanError(
                f"Das {what} {col!r} fehlt.",
                file=path,
                location=f"Ebene {layer!r}",
                expected=repr(col),
                found="Felder: " + ", ".join(repr(f) for f in fields),
                hint=_did_you_mean(col, fields)
                + f"In der Konfiguration {'key' if col == key else 'name'!r} auf eines dieser Felder setzen.",
                message_en=f"The {'key field' if what == 'Schlüsselfeld' else 'name field'} {col!r} is missing.",
                location_en=f"layer {layer!r}",
                hint_en=_did_you_mean(col, fields, "en")
                + f"Set {'key' if col == key else 'name'!r} in the configuration to one of these fields.",
            )
    source_crs = gdf.crs
    if crs is not None:
        want = parse_crs(crs, field="crs")
        if source_crs is not None and not CRS.from_user_input(source_crs).equals(want):
            notes.append(QANote(STAGE, f"KBS der Datei ({crs_short(source_crs)}) durch die "
                                f"Konfiguration ersetzt: {crs_short(want)}.", file=path,
                                message_en=f"The file's CRS ({crs_short(source_crs)}) replaced by the "
                                f"configuration's: {crs_short(want)}."))
        gdf = gdf.set_crs(want, allow_override=True)
    elif source_crs is None:
        raise GeoplanError(
            "Die Grenzdatei hat kein Koordinatenbezugssystem (KBS)"
            + (" – die .prj-Datei fehlt." if src.is_shapefile else "."),
            file=path,
            expected="KBS in der Datei (.prj) oder in der Konfiguration",
            found=_suggestion_text(gdf.total_bounds),
            hint=_crs_hint(gdf.total_bounds), message_en="The boundary file has no coordinate reference system (CRS)"
            + (" – the .prj file is missing." if src.is_shapefile else "."),
            expected_en="a CRS in the file (.prj) or in the configuration",
            found_en=_suggestion_text(gdf.total_bounds, "en"),
            hint_en=_crs_hint(gdf.total_bounds, "en"),
        )
    _check_crs_plausible(gdf, path, notes)
    gdf.attrs["geoplan"] = {
        "notes": notes,
        "layer": layer,
        "encoding": read_encoding or info.get("encoding"),
        "source_crs": crs_short(gdf.crs),
        "fields": fields,
    }
    return gdf


def parse_crs(value, *, field: str = "crs") -> CRS:
    """A CRS from the configuration, or a GeoplanError naming the field."""
    try:
        return CRS.from_user_input(value)
    except Exception as exc:
        raise GeoplanError(
            f"Das Koordinatenbezugssystem {value!r} ist unbekannt.",
            location=f"Konfigurationsfeld {field!r}",
            expected="ein EPSG-Code, z. B. 'EPSG:25833' (UTM 33N), 'EPSG:25832' (UTM 32N) oder 'EPSG:4326'",
            found=str(value),
            hint="Den EPSG-Code aus den Metadaten der Datei oder aus QGIS (Layer-Eigenschaften) übernehmen.",
            message_en=f"The coordinate reference system {value!r} is unknown.",
            expected_en="an EPSG code, e.g. 'EPSG:25833' (UTM 33N), 'EPSG:25832' (UTM 32N) or 'EPSG:4326'",
            hint_en="Take the EPSG code from the file's metadata or from QGIS (layer properties).",
        ) from exc


# CRSs German municipal data come in: ETRS89/UTM (also with zone prefix),
# Gauss-Krüger zones 2-5, LAEA Europe (Zensus grid), WGS84, Web Mercator.
_CANDIDATE_CRS = ("EPSG:25832", "EPSG:25833", "EPSG:4647", "EPSG:5650", "EPSG:31466", "EPSG:31467",
                  "EPSG:31468", "EPSG:31469", "EPSG:3035", "EPSG:4326", "EPSG:3857")
_GERMANY_LONLAT = (5.0, 47.0, 16.0, 55.5)  # generous bounding box, degrees


def crs_short(crs) -> str:
    """A CRS for messages: 'EPSG:25832' when it has an EPSG code, else its name (never a full WKT)."""
    if crs is None:
        return "ohne KBS"
    c = CRS.from_user_input(crs)
    code = c.to_epsg()
    if code:
        return f"EPSG:{code}"
    auth = c.to_authority()
    return ":".join(auth) if auth else c.name


def _de(x: float, decimals: int = 0) -> str:
    from geoplan import fmt

    return fmt.number(x, decimals)


def suggest_crs(bounds) -> list[str]:
    """CRSs under which the bounds ``(minx, miny, maxx, maxy)`` lie in Germany.

    UTM coordinates fit both zone 32 and 33 (each zone extends into its
    neighbour), so usually two candidates remain; the list narrows the
    choice, the user decides.
    """
    minx, miny, maxx, maxy = (float(v) for v in bounds)
    if not np.all(np.isfinite([minx, miny, maxx, maxy])):
        return []
    xs = [minx, maxx, minx, maxx, (minx + maxx) / 2]
    ys = [miny, miny, maxy, maxy, (miny + maxy) / 2]
    w, so, e, n = _GERMANY_LONLAT
    out = []
    for code in _CANDIDATE_CRS:
        c = CRS.from_user_input(code)
        if c.is_geographic:
            lon, lat = xs, ys
        else:
            try:
                lon, lat = Transformer.from_crs(c, "EPSG:4326", always_xy=True).transform(xs, ys)
            except Exception:  # pragma: no cover - projection domain errors
                continue
        lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
        if np.all(np.isfinite(lon)) and np.all(np.isfinite(lat)) and np.all((lon >= w) & (lon <= e)) \
                and np.all((lat >= so) & (lat <= n)):
            out.append(code)
    return out


def _suggestion_text(bounds, lang: str = "de") -> str:
    minx, miny, maxx, maxy = (float(v) for v in bounds)
    if lang == "en":
        n = lambda v: fmt.number(v, 2, lang="en")  # noqa: E731
        ext = f"coordinates x {n(minx)} … {n(maxx)}, y {n(miny)} … {n(maxy)}"
        cands = suggest_crs(bounds)
        if not cands:
            return ext + " (fit no usual CRS in Germany)"
        return ext + "; fit: " + ", ".join(f"{c} ({CRS.from_user_input(c).name})" for c in cands)
    ext = f"Koordinaten x {_de(minx, 2)} … {_de(maxx, 2)}, y {_de(miny, 2)} … {_de(maxy, 2)}"
    cands = suggest_crs(bounds)
    if not cands:
        return ext + " (passen zu keinem üblichen KBS in Deutschland)"
    names = [f"{c} ({CRS.from_user_input(c).name})" for c in cands]
    return ext + "; passen zu: " + ", ".join(names)


def _crs_hint(bounds, lang: str = "de") -> str:
    """The fix for a missing CRS, naming the same candidate the message found (not a fixed default)."""
    cands = [c for c in suggest_crs(bounds) if c != "EPSG:4326"] or suggest_crs(bounds)
    if lang == "en":
        if cands:
            others = (" (or " + ", ".join(cands[1:3]) + ")") if len(cands) > 1 else ""
            return (f"Give 'crs' in the configuration, probably crs: '{cands[0]}' "
                    f"({CRS.from_user_input(cands[0]).name}){others}; if in doubt, ask the sender for the .prj.")
        return "Give 'crs' in the configuration (ask the sender of the file for the CRS)."
    if cands:
        first = cands[0]
        others = (" (oder " + ", ".join(cands[1:3]) + ")") if len(cands) > 1 else ""
        return (f"In der Konfiguration 'crs' angeben, vermutlich crs: '{first}' "
                f"({CRS.from_user_input(first).name}){others}; im Zweifel die .prj beim Absender anfordern.")
    return "In der Konfiguration 'crs' angeben (das KBS beim Absender der Datei erfragen)."


def _check_crs_plausible(gdf: gpd.GeoDataFrame, path: str, notes: list[QANote]) -> None:
    """Catch degrees labelled as metres and metres labelled as degrees."""
    with np.errstate(all="ignore"):
        minx, miny, maxx, maxy = gdf.total_bounds
    if not np.all(np.isfinite([minx, miny, maxx, maxy])):
        return
    c = CRS.from_user_input(gdf.crs)
    label = crs_short(c)
    looks_degrees = -180 <= minx and maxx <= 180 and -90 <= miny and maxy <= 90
    if c.is_geographic:
        if not looks_degrees:
            raise GeoplanError(
                "Die Koordinaten sind als Grad (geographisch) ausgewiesen, sind aber offenbar Meter.",
                file=path,
                expected=f"Längen −180…180, Breiten −90…90 ({label})",
                found=_suggestion_text((minx, miny, maxx, maxy)),
                hint="Das richtige KBS in der Konfiguration angeben ('crs', z. B. 'EPSG:25833' oder 'EPSG:25832').",
                message_en="The coordinates are labelled as degrees (geographic) but are apparently metres.",
                expected_en=f"longitudes −180…180, latitudes −90…90 ({label})",
                found_en=_suggestion_text((minx, miny, maxx, maxy), "en"),
                hint_en="Give the right CRS in the configuration ('crs', e.g. 'EPSG:25833' or 'EPSG:25832').",
            )
        return
    if c.is_projected and looks_degrees:
        raise GeoplanError(
            "Die Koordinaten sind als Meter ausgewiesen, sind aber offenbar Grad (Länge/Breite).",
            file=path,
            expected=f"Meterkoordinaten in {label}",
            found=_suggestion_text((minx, miny, maxx, maxy)),
            hint="In der Konfiguration crs: 'EPSG:4326' angeben; geoplan rechnet dann in das metrische KBS um."
            if "EPSG:4326" in suggest_crs((minx, miny, maxx, maxy))
            else "Die Koordinaten liegen nicht in Deutschland: Export in QGIS prüfen und das KBS in 'crs' angeben.",
            message_en="The coordinates are labelled as metres but are apparently degrees (longitude/latitude).",
            expected_en=f"metre coordinates in {label}",
            found_en=_suggestion_text((minx, miny, maxx, maxy), "en"),
            hint_en="Give crs: 'EPSG:4326' in the configuration; geoplan then converts to the metric CRS."
            if "EPSG:4326" in suggest_crs((minx, miny, maxx, maxy))
            else "The coordinates do not lie in Germany: check the export in QGIS and give the CRS in 'crs'.",
        )
    aou = c.area_of_use
    if c.is_projected and aou is not None:
        try:
            tr = Transformer.from_crs(c, "EPSG:4326", always_xy=True)
            xs, ys = tr.transform([minx, maxx, minx, maxx], [miny, miny, maxy, maxy])
        except Exception:  # pragma: no cover - exotic CRS
            return
        tol = 3.0
        if (min(xs) < aou.west - tol or max(xs) > aou.east + tol
                or min(ys) < aou.south - tol or max(ys) > aou.north + tol
                or not np.all(np.isfinite(xs + ys))):
            cands = [x for x in suggest_crs((minx, miny, maxx, maxy)) if not CRS.from_user_input(x).equals(c)]
            notes.append(QANote(
                STAGE,
                f"Die Koordinaten liegen außerhalb des Gültigkeitsbereichs von {label} ({aou.name}); "
                "ist das KBS richtig angegeben?"
                + (f" Die Koordinaten passen zu {', '.join(cands)} ('crs' in der Konfiguration)." if cands else ""),
                message_en=f"The coordinates lie outside the area of use of {label} ({aou.name}); "
                "is the CRS given correctly?"
                + (f" The coordinates fit {', '.join(cands)} ('crs' in the configuration)." if cands else ""),
                file=path,
                details={"bounds": [float(minx), float(miny), float(maxx), float(maxy)]},
            ))


# --------------------------------------------------------------------------
# CRS choice


def metric_crs_for(gdf: gpd.GeoDataFrame) -> str:
    """ETRS89/UTM zone for the layer: ``"EPSG:25832"`` if its centroid (in
    EPSG:4326) lies west of 12° E, else ``"EPSG:25833"``.

    The centroid is the area-weighted mean of the polygon centroids.
    """
    if gdf.crs is None:
        raise GeoplanError("Die Ebene hat kein KBS; das metrische KBS lässt sich nicht wählen.",
                           hint="'crs' in der Konfiguration angeben.",
                           message_en="The layer has no CRS; the metric CRS cannot be chosen.",
                           hint_en="Give 'crs' in the configuration.")
    geo = gdf.geometry[~(gdf.geometry.isna() | gdf.geometry.is_empty)]
    if len(geo) == 0:
        raise GeoplanError("Die Ebene enthält keine Geometrien.", message_en="The layer holds no geometries.")
    # centroid and area in degrees are fine for a zone choice; computed with shapely on the array (what
    # GeoSeries.centroid/.area do), which skips geopandas' geographic-CRS warning and its stack inspection
    g4326 = np.asarray(geo.to_crs("EPSG:4326").array, dtype=object)
    w = shapely.area(g4326)
    x = shapely.get_x(shapely.centroid(g4326))
    lon = float(np.average(x, weights=w)) if w.sum() > 0 else float(np.mean(x))
    return "EPSG:25832" if lon < 12.0 else "EPSG:25833"


# --------------------------------------------------------------------------
# QA


def _polygonal(geom):
    """Keep the polygonal parts of a geometry (after make_valid)."""
    if geom is None or geom.is_empty:
        return geom
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
    polys = []
    for g in parts:
        polys.extend(shapely.get_parts(g) if g.geom_type == "MultiPolygon" else [g])
    if not polys:
        return shapely.Polygon()
    return polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)


def repair_polygons(geoms, what: str, stage: str = "indicators") -> tuple[np.ndarray, list[QANote]]:
    """Invalid polygons (self-intersections, zero-width spikes, bowties) repaired with make_valid,
    keeping the polygonal parts, with a note naming how many and which (positions, 1-based)."""
    arr = np.asarray(geoms, dtype=object)
    notes: list[QANote] = []
    present = ~(shapely.is_missing(arr) | shapely.is_empty(arr))
    invalid = present & ~shapely.is_valid(arr)
    if invalid.any():
        arr = arr.copy()
        idx = np.flatnonzero(invalid)
        for i in idx:
            arr[i] = _polygonal(shapely.make_valid(arr[i]))
        notes.append(QANote(stage, f"{len(idx)} ungültige Geometrie(n) der {what} repariert (make_valid: "
                            "Selbstüberschneidungen, Spitzen ohne Breite).",
                            location="Objekt " + ", ".join(str(i + 1) for i in idx[:10]),
                            details={"rows": idx.tolist()},
                            message_en=f"{len(idx)} invalid geometr{'y' if len(idx) == 1 else 'ies'} of the "
                            f"{what_en(what)} repaired by make_valid (self-intersections, zero-width spikes)."))
    return arr, notes


def _reason_in_crs(reason: str, crs, source_crs) -> str:
    """GEOS's 'Self-intersection[x y]' with the location in the file's CRS (as the user sees it in QGIS)."""
    import re

    m = re.search(r"\[([-0-9.eE+]+) ([-0-9.eE+]+)\]", reason or "")
    if not m:
        return reason
    x, y = float(m.group(1)), float(m.group(2))
    label = crs_short(crs) if crs is not None else ""
    if source_crs is not None and crs is not None and not CRS.from_user_input(source_crs).equals(
            CRS.from_user_input(crs)):
        x, y = Transformer.from_crs(crs, source_crs, always_xy=True).transform(x, y)
        label = crs_short(source_crs)
    geo = source_crs is not None and CRS.from_user_input(source_crs).is_geographic if label else False
    d = 6 if geo else 1
    return reason[:m.start()] + f" bei x={_de(x, d)}, y={_de(y, d)}" + (f" ({label})" if label else "") + reason[m.end():]


def _finding(kind, key, detail, area=np.nan):
    return {"kind": kind, "key": key, "detail": detail, "area_m2": float(area)}


def check_boundaries(gdf: gpd.GeoDataFrame, *, key: str, repair: bool = False, min_sliver_m2: float = 1.0,
                     file=None, strict: bool = True, source_crs=None) -> BoundaryQA:
    """Geometry QA of a Sozialraum layer.

    Parameters
    ----------
    gdf : GeoDataFrame
        Sozialräume; areas are measured in its CRS when metric, else in
        :func:`metric_crs_for`.
    key : str
        Key column.
    repair : bool
        Repair invalid geometries with :func:`shapely.make_valid` (polygonal
        parts kept) instead of failing.
    min_sliver_m2 : float
        Overlaps and gaps up to this area (m²) are digitising noise and not
        reported.
    file : str, optional
        File name for messages.
    strict : bool
        Raise :class:`GeoplanError` on error findings (invalid without
        repair, empty geometry, duplicate or missing key). With ``False`` the
        findings are only returned (for ``geoplan validate``).

    Returns
    -------
    BoundaryQA with a copy of ``gdf`` (repaired where allowed).
    """
    if key not in gdf.columns:
        raise GeoplanError(f"Das Schlüsselfeld {key!r} fehlt.", file=file,
                           found="Felder: " + ", ".join(repr(c) for c in gdf.columns if c != gdf.geometry.name),
                           message_en=f"The key field {key!r} is missing.")
    out = gdf.copy()
    findings: list[dict] = []
    notes: list[QANote] = []
    keys = out[key].map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip())
    labels = [k if k else f"(Objekt {i + 1})" for i, k in enumerate(keys)]

    for i, k in enumerate(keys):
        if not k:
            findings.append(_finding("missing_key", labels[i], f"Objekt {i + 1} ohne Schlüssel"))
    vc = keys[keys != ""].value_counts()
    for k, n in vc[vc > 1].items():
        findings.append(_finding("duplicate_key", k, f"{n}× vergeben"))

    geoms = out.geometry.array
    crs = out.crs
    if crs is not None and CRS.from_user_input(crs).is_projected:
        metric = out.geometry
    elif crs is not None:
        metric = out.geometry.to_crs(metric_crs_for(out))
    else:
        metric = out.geometry  # no CRS: areas in layer units
    mgeoms = np.asarray(metric.array, dtype=object)

    empty = np.array([g is None or g.is_empty for g in geoms])
    for i in np.flatnonzero(empty):
        findings.append(_finding("empty", labels[i], "leere oder fehlende Geometrie"))

    polygonal = np.array([g is not None and g.geom_type in ("Polygon", "MultiPolygon") for g in geoms])
    for i in np.flatnonzero(~polygonal & ~empty):
        findings.append(_finding("invalid", labels[i], f"keine Fläche ({geoms[i].geom_type})"))

    valid = shapely.is_valid(np.asarray(geoms, dtype=object))
    bad = np.flatnonzero(~valid & ~empty & polygonal)
    repaired_geoms = list(geoms)
    for i in bad:
        reason = _reason_in_crs(shapely.is_valid_reason(geoms[i]), crs, source_crs)
        findings.append(_finding("invalid", labels[i], reason, mgeoms[i].area))
        if repair:
            fixed = _polygonal(shapely.make_valid(geoms[i]))
            repaired_geoms[i] = fixed
            fixed_m = _polygonal(shapely.make_valid(mgeoms[i]))
            mgeoms[i] = fixed_m
            if fixed_m.is_empty:
                # A polygon collapsed to a line has no area left to plan with.
                findings.append(_finding("empty", labels[i], f"nach Reparatur keine Fläche übrig ({reason})"))
            else:
                findings.append(_finding("repaired", labels[i], f"mit make_valid repariert ({reason})",
                                         fixed_m.area))
    if repair and len(bad):
        out = out.set_geometry(gpd.GeoSeries(repaired_geoms, index=out.index, crs=crs))
        notes.append(QANote(STAGE, f"{len(bad)} ungültige Geometrien mit make_valid repariert: "
                            + ", ".join(labels[i] for i in bad[:10]) + ("…" if len(bad) > 10 else "") + ".",
                            file=file, details={"keys": [labels[i] for i in bad]},
                            message_en=f"{len(bad)} invalid geometries repaired with make_valid: "
                            + ", ".join(labels[i] for i in bad[:10]) + ("…" if len(bad) > 10 else "") + "."))

    usable = np.array([g is not None and not g.is_empty and g.geom_type in ("Polygon", "MultiPolygon")
                       and (repair or valid[i]) for i, g in enumerate(mgeoms)])
    for i in np.flatnonzero(usable):
        n_parts = shapely.get_num_geometries(mgeoms[i])
        if n_parts > 1:
            findings.append(_finding("multipart", labels[i], f"{n_parts} Teilflächen", mgeoms[i].area))

    idx = np.flatnonzero(usable)
    ug = np.asarray([mgeoms[i] for i in idx], dtype=object)
    if len(ug) > 1:
        tree = shapely.STRtree(ug)
        a, b = tree.query(ug, predicate="intersects")
        sel = a < b
        a, b = a[sel], b[sel]
        if len(a) and min_sliver_m2 >= 0:
            # neighbours that only touch share a boundary and no area (their intersection is a line):
            # the overlay is only needed where the interiors meet
            inside = ~shapely.touches(ug[a], ug[b])
            a, b = a[inside], b[inside]
        if len(a):
            inter = shapely.intersection(ug[a], ug[b])
            areas = shapely.area(inter)
            for ia, ib, ar in zip(a, b, areas):
                if ar > min_sliver_m2:
                    findings.append(_finding("overlap", f"{labels[idx[ia]]} / {labels[idx[ib]]}",
                                             "Sozialräume überlappen", ar))
    if len(ug):
        union = shapely.union_all(ug)
        holes = []
        for poly in shapely.get_parts(union):
            if poly.geom_type != "Polygon":
                continue
            for ring in poly.interiors:
                holes.append(shapely.Polygon(ring))
        if holes:
            harr = np.asarray(holes, dtype=object)
            tree = shapely.STRtree(ug)
            for h in harr:
                near = tree.query(h, predicate="intersects")
                if len(near):
                    # Sozialräume lying inside the hole (islands) are not gap.
                    h = shapely.difference(h, shapely.union_all(ug[near]))
                ar = h.area
                if ar <= min_sliver_m2:
                    continue
                neighbours = sorted(labels[idx[j]] for j in near)
                c = h.representative_point()
                findings.append(_finding("gap", " / ".join(neighbours),
                                         "Lücke" + _reason_in_crs(f"[{c.x} {c.y}]", crs, source_crs), ar))

    fdf = pd.DataFrame(findings, columns=FINDING_COLUMNS)
    fdf["area_m2"] = fdf["area_m2"].astype(float)
    for kind, level in (("multipart", "info"), ("overlap", "warnung"), ("gap", "warnung")):
        sub = fdf[fdf["kind"] == kind]
        if len(sub):
            total = sub["area_m2"].sum()
            msg = {
                "multipart": f"{len(sub)} Sozialräume bestehen aus mehreren Teilflächen.",
                "overlap": f"{len(sub)} Überlappungen zwischen Sozialräumen (zusammen {_de(total)} m²) "
                           f"über der Toleranz von {_de(min_sliver_m2, 1 if min_sliver_m2 % 1 else 0)} m².",
                "gap": f"{len(sub)} Lücken innerhalb des Gebiets (zusammen {_de(total)} m²) "
                       f"über der Toleranz von {_de(min_sliver_m2, 1 if min_sliver_m2 % 1 else 0)} m².",
            }[kind]
            tol_en = fmt.number(min_sliver_m2, 1 if min_sliver_m2 % 1 else 0, lang="en")
            msg_en = {
                "multipart": f"{len(sub)} Sozialräume consist of several parts.",
                "overlap": f"{len(sub)} overlaps between Sozialräume (together {fmt.number(total, lang='en')} m²) "
                           f"above the tolerance of {tol_en} m².",
                "gap": f"{len(sub)} gaps inside the area (together {fmt.number(total, lang='en')} m²) "
                       f"above the tolerance of {tol_en} m².",
            }[kind]
            notes.append(QANote(STAGE, msg, level=level, file=file,
                                details={"keys": sub["key"].tolist()[:50]}, message_en=msg_en))

    errors = fdf[fdf["kind"].isin(["empty", "duplicate_key", "missing_key"])
                 | ((fdf["kind"] == "invalid") & (not repair))]
    if repair:
        # Non-polygon geometries cannot be repaired into Sozialräume.
        errors = pd.concat([errors, fdf[(fdf["kind"] == "invalid") & fdf["detail"].str.startswith("keine Fläche")]])
    if strict and len(errors):
        lines = [f"{_KIND_DE[r.kind]}: {r.key} ({r.detail})" for r in errors.itertuples()]
        hint_parts = []
        kinds = set(errors["kind"])
        if "invalid" in kinds:
            hint_parts.append("ungültige Geometrien in QGIS reparieren (Geometrien reparieren) "
                              "oder in der Konfiguration repair: true setzen")
        if "empty" in kinds:
            hint_parts.append("Objekte ohne Geometrie löschen")
        if kinds & {"duplicate_key", "missing_key"}:
            hint_parts.append(f"Schlüsselfeld {key!r} eindeutig und vollständig befüllen "
                              "(mehrteilige Sozialräume zu einem Objekt zusammenfassen)")
        _DETAIL_EN = (("Objekt ", "feature "), ("ohne Schlüssel", "without a key"), ("× vergeben", "× used"),
                      ("leere oder fehlende Geometrie", "empty or missing geometry"), ("keine Fläche", "no area"),
                      ("nach Reparatur keine Fläche übrig", "no area left after repair"))
        lines_en = []
        for r in errors.itertuples():
            detail = str(r.detail)
            for de, en in _DETAIL_EN:
                detail = detail.replace(de, en)
            lines_en.append(f"{_KIND_EN[r.kind]}: {r.key} ({detail})")
        hint_en = []
        if "invalid" in kinds:
            hint_en.append("repair invalid geometries in QGIS (Fix geometries) or set repair: true in the configuration")
        if "empty" in kinds:
            hint_en.append("delete features without geometry")
        if kinds & {"duplicate_key", "missing_key"}:
            hint_en.append(f"fill the key field {key!r} uniquely and completely (merge multipart Sozialräume into "
                           "one feature)")
        exc = GeoplanError(
            f"Die Geometrieprüfung der Sozialräume hat {len(errors)} Fehler gefunden.",
            file=file,
            location="; ".join(lines[:10]) + (f" … (insgesamt {len(lines)})" if len(lines) > 10 else ""),
            hint="; ".join(hint_parts) + ".",
            message_en=f"The geometry check of the Sozialräume found {len(errors)} errors.",
            location_en="; ".join(lines_en[:10]) + (f" … ({len(lines_en)} in all)" if len(lines_en) > 10 else ""),
            hint_en="; ".join(hint_en).capitalize() + ".",
        )
        exc.findings = fdf
        raise exc
    return BoundaryQA(gdf=out, findings=fdf, notes=notes)


# --------------------------------------------------------------------------
# all together


def prepare_boundaries(path, *, key: str, name: str | None = None, layer=None, crs=None, metric_crs=None,
                       repair: bool = False, min_sliver_m2: float = 1.0, encoding: str | None = None,
                       key_width: int | None = None, keep_columns=(), raw: gpd.GeoDataFrame | None = None
                       ) -> BoundaryResult:
    """Read, check and reproject the Sozialraum layer for the pipeline.

    Returns a :class:`BoundaryResult` whose ``gdf`` has ``key`` (str),
    ``name`` (str; the key when no name field is given), ``area_km2`` (km²)
    and ``geometry`` in ``metric_crs`` (given, or from
    :func:`metric_crs_for`), plus any ``keep_columns`` of the file.

    ``raw``: a layer already read elsewhere (PostGIS, WFS) in the form
    :func:`read_boundaries` returns; ``path`` is then only the name shown in
    messages.
    """
    path = str(path)
    if raw is None:
        raw = read_boundaries(path, key=key, name=name, layer=layer, crs=crs, encoding=encoding)
    meta = raw.attrs.get("geoplan", {})
    notes: list[QANote] = list(meta.get("notes", []))
    for col in keep_columns:
        if col not in raw.columns:
            raise GeoplanError(f"Das Feld {col!r} fehlt.", file=path,
                               found="Felder: " + ", ".join(repr(c) for c in meta.get("fields", [])),
                               message_en=f"The field {col!r} is missing.")
    source_crs = meta.get("source_crs", crs_short(raw.crs))
    target = metric_crs or metric_crs_for(raw)
    tcrs = parse_crs(target, field="metric_crs")
    if not tcrs.is_projected:
        raise GeoplanError("Das metrische KBS muss projiziert sein (Meter).", found=str(target),
                           hint="metric_crs: 'EPSG:25832' oder 'EPSG:25833'.",
                           message_en="The metric CRS must be projected (metres).",
                           hint_en="metric_crs: 'EPSG:25832' or 'EPSG:25833'.")
    gdf = raw.to_crs(tcrs)
    # Keys: text; lost leading zeros fail here like in the tables.
    nonnull = gdf[key].notna()
    if nonnull.all():
        keys = normalize_keys(gdf[key].tolist(), key_width=key_width, file=path, column=key,
                              row_numbers=[f"Objekt {i + 1}" for i in range(len(gdf))])
        gdf[key] = keys
    qa = check_boundaries(gdf, key=key, repair=repair, min_sliver_m2=min_sliver_m2, file=path, source_crs=raw.crs)
    g = qa.gdf
    names = g[name].astype(str).str.strip() if name is not None else g[key].astype(str)
    data = {"key": pd.Series(g[key].astype(str).str.strip().to_numpy(), dtype=str),
            "name": pd.Series(names.to_numpy(), dtype=str)}
    for col in keep_columns:
        data[col] = g[col].to_numpy()
    geom = gpd.GeoSeries(g.geometry.to_numpy(), crs=tcrs)
    data["area_km2"] = geom.area.to_numpy() / 1e6
    result = gpd.GeoDataFrame(data, geometry=geom, crs=tcrs)
    result = result.rename_geometry("geometry") if result.geometry.name != "geometry" else result
    notes.extend(qa.notes)
    notes.append(QANote(STAGE, f"{len(result)} Sozialräume gelesen (KBS der Datei {source_crs}, "
                        f"gerechnet in {crs_short(tcrs)}).", level="info", file=path,
                        message_en=f"{len(result)} Sozialräume read (file CRS {source_crs}, "
                        f"computed in {crs_short(tcrs)})."))
    return BoundaryResult(gdf=result, source_crs=source_crs, metric_crs=tcrs.to_string(), qa=qa, notes=notes,
                          path=path, layer=meta.get("layer"), encoding=meta.get("encoding"))


# --------------------------------------------------------------------------
# combined and excluded areas


def apply_merge_exclude(bres: BoundaryResult, *, merge=(), exclude=(), group: str | None = None) -> BoundaryResult:
    """Dissolve groups of polygons the statistics publish as one area, set aside uninhabited ones.

    ``merge``: items with ``keys`` (polygon keys), ``key`` (the key of the
    combined area, as in the tables) and optional ``name``; the polygons are
    united, areas added. ``exclude``: keys of polygons that get no budget; they
    are kept in ``excluded`` for the maps. ``group``: a field of the polygons
    (kept by :func:`prepare_boundaries`) that becomes the column ``bezirk``.
    Every change is noted.
    """
    gdf = bres.gdf.copy()
    path = bres.path
    notes = list(bres.notes)
    keys = gdf["key"].tolist()
    known = set(keys)
    seen: dict[str, str] = {}
    unknown: list[str] = []
    for i, m in enumerate(merge):
        for k in m.keys:
            k = str(k)
            if k not in known:
                unknown.append(f"boundaries.merge[{i}]: {k}")
            if k in seen:
                raise GeoplanError(f"Der Schlüssel {k!r} steht in zwei Einträgen von boundaries.merge/exclude.",
                                   file=path, location=f"{seen[k]} und boundaries.merge[{i}]",
                                   hint="Jedes Polygon höchstens einmal zusammenfassen oder ausschließen.",
                                   message_en=f"The key {k!r} is in two entries of boundaries.merge/exclude.",
                                   location_en=f"{seen[k]} and boundaries.merge[{i}]",
                                   hint_en="Merge or exclude each polygon at most once.")
            seen[k] = f"boundaries.merge[{i}]"
        if str(m.key) in known and str(m.key) not in map(str, m.keys):
            raise GeoplanError(f"Der neue Schlüssel {m.key!r} gibt es schon als eigenes Polygon.", file=path,
                               location=f"Konfigurationsfeld 'boundaries.merge[{i}].key'",
                               hint="Einen Schlüssel wählen, den kein anderes Polygon trägt "
                                    "(so wie die Tabellen das zusammengefasste Gebiet nennen).",
                               message_en=f"The new key {m.key!r} already exists as a polygon of its own.",
                               hint_en="Choose a key no other polygon has (the one the tables use for the merged area).")
    for k in exclude:
        k = str(k)
        if k not in known:
            unknown.append(f"boundaries.exclude: {k}")
        if k in seen:
            raise GeoplanError(f"Der Schlüssel {k!r} steht in boundaries.merge und boundaries.exclude.", file=path,
                               location=f"{seen[k]} und boundaries.exclude",
                               hint="Ein Polygon entweder zusammenfassen oder ausschließen.",
                               message_en=f"The key {k!r} is in boundaries.merge and boundaries.exclude.",
                               location_en=f"{seen[k]} and boundaries.exclude",
                               hint_en="Either merge or exclude a polygon.")
        seen[k] = "boundaries.exclude"
    if unknown:
        sample = sorted(known)[:8]
        raise GeoplanError(
            "boundaries.merge/exclude nennen Schlüssel, die es in den Polygonen nicht gibt.",
            file=path, location="; ".join(unknown[:10]),
            expected="Schlüssel aus dem Feld boundaries.key, z. B. " + ", ".join(sample),
            hint="Schlüssel so schreiben wie in der Polygondatei (als Text, mit führenden Nullen).",
            message_en="boundaries.merge/exclude name keys that the polygons do not have.",
            expected_en="keys of the field boundaries.key, e.g. " + ", ".join(sample),
            hint_en="Write the keys as in the polygon file (as text, with leading zeros).",
        )
    for i, m in enumerate(merge):
        parts = [str(k) for k in m.keys]
        sel = gdf["key"].isin(parts)
        sub = gdf[sel]
        geom = shapely.union_all(np.asarray(sub.geometry.values, dtype=object))
        row = {c: sub[c].iloc[0] for c in gdf.columns if c != "geometry"}
        row["key"] = str(m.key)
        row["name"] = m.name or " / ".join(sub["name"].astype(str))
        row["area_km2"] = float(sub["area_km2"].sum())
        if group and group in gdf.columns:
            vals = list(dict.fromkeys(sub[group].astype(str)))
            row[group] = vals[0] if len(vals) == 1 else " / ".join(vals)
        first = int(np.flatnonzero(sel.to_numpy())[0])
        new = gpd.GeoDataFrame([row], geometry=[geom], crs=gdf.crs)
        gdf = pd.concat([gdf.iloc[:first][~sel.iloc[:first]], new, gdf.iloc[first:][~sel.iloc[first:]]],
                        ignore_index=True)
        gdf = gpd.GeoDataFrame(gdf, geometry="geometry", crs=bres.gdf.crs)
        notes.append(QANote(STAGE, f"Polygone {', '.join(parts)} zu einem Sozialraum {m.key!r} "
                            f"({row['name']}) zusammengefasst (boundaries.merge).", level="info", file=path,
                            message_en=f"Polygons {', '.join(parts)} merged into one Sozialraum {m.key!r} "
                            f"({row['name']}) (boundaries.merge)."))
    excluded = None
    if exclude:
        ex = gdf["key"].isin([str(k) for k in exclude])
        excluded = gdf[ex].reset_index(drop=True)
        gdf = gdf[~ex].reset_index(drop=True)
        notes.append(QANote(STAGE, f"{len(excluded)} Polygon(e) ohne Budget ausgeschlossen (boundaries.exclude): "
                            + ", ".join(f"{k} ({n})" for k, n in zip(excluded['key'], excluded['name'])) + ".",
                            level="info", file=path,
                            message_en=f"{len(excluded)} polygon(s) excluded, no budget (boundaries.exclude): "
                            + ", ".join(f"{k} ({n})" for k, n in zip(excluded['key'], excluded['name'])) + "."))
    if group:
        vals = gdf[group]
        if vals.isna().any():
            rows = gdf.loc[vals.isna(), "key"].tolist()
            raise GeoplanError(f"Das Gruppenfeld {group!r} ist bei {len(rows)} Polygon(en) leer.", file=path,
                               location="Schlüssel " + ", ".join(map(str, rows[:10])),
                               hint="Feld füllen oder boundaries.group weglassen.",
                               message_en=f"The group field {group!r} is empty for {len(rows)} polygon(s).",
                               hint_en="Fill the field or leave out boundaries.group.")
        gdf["bezirk"] = vals.map(lambda v: str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
        if group != "bezirk":
            gdf = gdf.drop(columns=[group])
            if excluded is not None and group in excluded.columns:
                excluded = excluded.drop(columns=[group])
    return BoundaryResult(gdf=gdf, source_crs=bres.source_crs, metric_crs=bres.metric_crs, qa=bres.qa,
                          notes=notes, path=bres.path, layer=bres.layer, encoding=bres.encoding, excluded=excluded)
