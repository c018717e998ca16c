"""Read boundaries and attribute tables from a WFS (2.0.0 and 1.1.0).

``connection: "WFS:https://gdi.berlin.de/services/wfs/lor_2021"`` plus the type
name (``layer: lor_prognoseraeume``) is what a Geoportal publishes. The
features are fetched page by page (``STARTINDEX`` with ``COUNT`` /
``MAXFEATURES``) until a page comes back short, together with the
DescribeFeatureType schema (so keys like ``0930`` stay text), and parsed with
GDAL's GML reader. No other host is contacted: schema imports are not
followed.

Axis order: WFS 1.1 and 2.0 give coordinates in the order the EPSG
definition states, latitude first for EPSG:4326. geoplan always asks with
the URN form (``urn:ogc:def:crs:EPSG::4326``), for which the order is fixed by
the standard, and swaps such coordinates to x = longitude itself, whatever
``srsName`` spelling the server puts in its answer. A server that answers in
another CRS than requested is an error; the CRS is checked for plausibility
as for files.

Cache: every answer is stored in ``cache_dir`` (the output folder's
provenance) with its SHA-256; ``offline=True`` (``geoplan run --offline``)
reads only from there and stops when an entry is missing or was changed.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import geopandas as gpd
import pandas as pd
import pyogrio
import pyogrio.errors
import shapely
from pyproj import CRS

from geoplan.errors import GeoplanError, QANote

from geoplan.load.boundaries import _check_crs_plausible, parse_crs
from geoplan.load.tables import TableResult, table_from_rows

__all__ = ["WFSDownload", "is_wfs_source", "fetch_wfs", "read_wfs_boundaries", "read_wfs_table"]

STAGE = "boundaries"
VERSIONS = ("2.0.0", "1.1.0")
DEFAULT_PAGE_SIZE = 1000
DEFAULT_TIMEOUT_S = 60
MAX_PAGES = 10_000


def is_wfs_source(value) -> bool:
    return isinstance(value, str) and value.strip().upper().startswith("WFS:")


def _base_url(source: str, field_name: str) -> str:
    url = source.strip()
    if url.upper().startswith("WFS:"):
        url = url[4:].strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise GeoplanError(
            "Die WFS-Adresse ist keine http(s)-URL.",
            location=f"Konfigurationsfeld {field_name!r}",
            expected="'WFS:https://server/pfad' (die Dienst-URL aus dem Geoportal)",
            found=url[:100] if "@" not in url else "(Adresse mit Zugangsdaten, hier nicht wiedergegeben)",
            message_en="The WFS address is not an http(s) URL.",
        )
    if parts.username or parts.password:
        raise GeoplanError(
            "Die WFS-Adresse enthält Zugangsdaten. Passwörter gehören nicht in die Konfigurationsdatei.",
            location=f"Konfigurationsfeld {field_name!r}",
            found="Benutzer/Passwort in der URL (hier nicht wiedergegeben)",
            hint="Zugangsdaten aus der URL entfernen; geschützte Dienste über einen Export nutzen.",
            message_en="The WFS address contains credentials. Passwords do not belong in the configuration file.",
            found_en="user/password in the URL (not repeated here)",
            hint_en="Remove the credentials from the URL; use protected services through an export.",
        )
    # keep the server's own parameters (e.g. MAP=…), drop the WFS request ones we set ourselves
    ours = {"service", "version", "request", "typename", "typenames", "count", "maxfeatures", "startindex",
            "srsname", "outputformat", "resulttype"}
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() not in ours]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def _url(base: str, params: dict) -> str:
    parts = urlsplit(base)
    q = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(q, safe=":,"), ""))


def _urn(crs: CRS) -> str:
    auth = crs.to_authority()
    if not auth or auth[0] != "EPSG":
        raise GeoplanError("Für WFS-Abfragen wird ein EPSG-Code gebraucht.", found=crs.to_string(),
                           message_en="WFS requests need an EPSG code.")
    return f"urn:ogc:def:crs:EPSG::{auth[1]}"


def _lat_first(crs: CRS) -> bool:
    axes = crs.axis_info
    return bool(axes) and axes[0].direction.lower() in ("north", "south")


@dataclass
class WFSDownload:
    """The raw answers of one WFS read, as stored in the cache."""

    folder: Path
    url: str
    typename: str
    version: str
    srs: str | None
    pages: list[Path]
    schema: Path
    sha256: str
    from_cache: bool
    notes: list[QANote] = field(default_factory=list)

    def provenance(self, rows: int) -> dict:
        return {"kind": "wfs", "url": self.url, "typename": self.typename, "version": self.version,
                "srs": self.srs, "features": rows, "pages": len(self.pages), "sha256": self.sha256,
                "cache": self.folder.name, "source": "Zwischenspeicher (--offline)" if self.from_cache else "Server"}


def _cache_key(url: str, typename: str, version: str, srs: str | None, page_size: int) -> str:
    h = hashlib.sha256(json.dumps([url, typename, version, srs, page_size]).encode()).hexdigest()[:16]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", typename)[:40] + "-" + h


def _hash_files(files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def _server_error(url: str, typename: str, text: str, status: int | None) -> GeoplanError | None:
    """An OGC exception report (or HTML error page) as a GeoplanError."""
    head = text[:4000]
    if re.search(r"<(\w+:)?(ExceptionReport|ServiceExceptionReport)\b", head):
        msgs = re.findall(r"<(?:\w+:)?(?:ExceptionText|ServiceException)[^>]*>(.*?)</", text, re.S)
        detail = " ".join(m.strip() for m in msgs)[:400] or head[:300]
        return GeoplanError(
            f"Der WFS-Server meldet einen Fehler für die Ebene {typename!r}.",
            location=url,
            found=re.sub(r"\s+", " ", detail),
            hint="Typnamen ('layer') mit den Ebenen in GetCapabilities des Dienstes vergleichen; "
                 "WFS-Version ('wfs_version': 2.0.0 oder 1.1.0) und KBS ('srs') prüfen.",
            message_en=f"The WFS server reports an error for the layer {typename!r}.",
            hint_en="Compare the type name ('layer') with the layers in the service's GetCapabilities; check the "
                    "WFS version ('wfs_version': 2.0.0 or 1.1.0) and the CRS ('srs').",
        )
    if status is not None and status >= 400:
        return GeoplanError(
            f"Der WFS-Server antwortet mit einem Fehler (HTTP {status}).",
            location=url,
            found=re.sub(r"<[^>]+>", " ", head[:300]).strip(),
            hint="Adresse prüfen; bei 5xx liegt der Fehler beim Server – später erneut versuchen oder mit "
                 "--offline den Zwischenspeicher des letzten Laufs nutzen.",
            message_en=f"The WFS server answers with an error (HTTP {status}).",
            hint_en="Check the address; a 5xx is a server fault – try again later or use the cache of the last run "
                    "with --offline.",
        )
    return None


def _get(session, url: str, typename: str, timeout: float) -> bytes:
    import requests

    try:
        r = session.get(url, timeout=(min(10.0, timeout), timeout))
    except requests.Timeout:
        raise GeoplanError(
            f"Der WFS-Server antwortet nicht (Zeitüberschreitung nach {timeout:g} s).",
            location=_strip_query(url),
            hint="Später erneut versuchen oder mit --offline den Zwischenspeicher des letzten Laufs nutzen.",
            message_en=f"The WFS server does not answer (timed out after {timeout:g} s).",
            hint_en="Try again later or use the cache of the last run with --offline.",
        ) from None
    except requests.ConnectionError as exc:
        refused = "refused" in str(exc).lower()
        raise GeoplanError(
            "Keine Verbindung zum WFS-Server" + (": Verbindung abgelehnt." if refused else "."),
            location=_strip_query(url),
            found=type(exc).__name__,
            hint="Adresse, Netzwerk/VPN und Proxy prüfen; ohne Netz mit --offline den Zwischenspeicher nutzen.",
            message_en="No connection to the WFS server" + (": connection refused." if refused else "."),
            hint_en="Check the address, network/VPN and proxy; without network use the cache with --offline.",
        ) from None
    text = r.content[:20000].decode("utf-8", "replace")
    err = _server_error(_strip_query(url), typename, text, r.status_code)
    if err is not None:
        raise err
    return r.content


def _strip_query(url: str) -> str:
    p = urlsplit(url)
    return urlunsplit((p.scheme, p.netloc, p.path, "", ""))


def _count_features(gml: bytes) -> int:
    m = re.search(rb'numberReturned="(\d+)"', gml[:5000])
    if m:
        return int(m.group(1))
    return len(re.findall(rb"<(?:wfs:member|gml:featureMember)\b", gml)) + sum(
        len(re.findall(rb"<(\w+:)?\w+\s+gml:id=", blk)) for blk in re.findall(rb"<gml:featureMembers>(.*?)</gml:featureMembers>", gml, re.S))


def _more(gml: bytes, have: int) -> bool:
    """WFS 2.0: the answer says more features follow (``next`` link, or ``numberMatched`` above ``have``)."""
    head = gml[:5000]
    m = re.search(rb'numberMatched="(\d+)"', head)
    return bool(re.search(rb'<(?:\w+:)?FeatureCollection\b[^>]*\snext="', head)) or (m is not None and int(m.group(1)) > have)


def _response_epsg(gml: bytes) -> int | None:
    m = re.search(rb'srsName="[^"]*?(\d{4,6})"', gml)
    return int(m.group(1)) if m else None


def fetch_wfs(source: str, typename: str, *, version: str = "2.0.0", srs=None, cache_dir=None, offline: bool = False,
              timeout: float = DEFAULT_TIMEOUT_S, page_size: int = DEFAULT_PAGE_SIZE,
              field_name: str = "connection") -> WFSDownload:
    """Download (or, with ``offline``, take from ``cache_dir``) all features of ``typename``."""
    if version not in VERSIONS:
        raise GeoplanError(f"WFS-Version {version!r} wird nicht unterstützt.", expected=" oder ".join(VERSIONS),
                           location="Konfigurationsfeld 'wfs_version'",
                           message_en=f"WFS version {version!r} is not supported.")
    base = _base_url(source, field_name)
    srs_urn = _urn(parse_crs(srs, field="srs")) if srs is not None else None
    key = _cache_key(base, typename, version, srs_urn, page_size)
    folder = Path(cache_dir) / key if cache_dir is not None else None
    if offline:
        return _from_cache(folder, base, typename, version, srs_urn)
    import requests

    work = Path(tempfile.mkdtemp(prefix="geoplan-wfs-"))
    try:
        with requests.Session() as session:
            session.headers["User-Agent"] = "geoplan"
            tn = "TYPENAMES" if version == "2.0.0" else "TYPENAME"
            common = {"SERVICE": "WFS", "VERSION": version}
            xsd = _get(session, _url(base, {**common, "REQUEST": "DescribeFeatureType", tn: typename}), typename,
                       timeout)
            (work / "schema.xsd").write_bytes(xsd)
            pages: list[Path] = []
            start = 0
            while True:
                params = {**common, "REQUEST": "GetFeature", tn: typename, "STARTINDEX": str(start),
                          ("COUNT" if version == "2.0.0" else "MAXFEATURES"): str(page_size)}
                if srs_urn:
                    params["SRSNAME"] = srs_urn
                body = _get(session, _url(base, params), typename, timeout)
                n = _count_features(body)
                if start == 0 and srs_urn is None:
                    code = _response_epsg(body)
                    if code is not None and _lat_first(CRS.from_epsg(code)):
                        # a geographic default CRS: ask again with the URN, whose axis order is defined
                        srs_urn = f"urn:ogc:def:crs:EPSG::{code}"
                        continue
                if n == 0 and start > 0:
                    break
                page = work / f"seite-{len(pages) + 1:04d}.gml"
                page.write_bytes(body)
                pages.append(page)
                start += n
                # a short page ends the layer, unless WFS 2.0 says there are more (a server whose own
                # limit is below page_size): a 'next' link or numberMatched above what we have
                if (n < page_size and not (n > 0 and _more(body, start))) or len(pages) >= MAX_PAGES:
                    break
        meta = {"url": base, "typename": typename, "version": version, "srs": srs_urn, "page_size": page_size,
                "pages": [p.name for p in pages], "sha256": _hash_files([work / "schema.xsd", *pages])}
        (work / "abruf.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False), encoding="utf-8")
        if folder is not None:
            folder.parent.mkdir(parents=True, exist_ok=True)
            if folder.exists():
                shutil.rmtree(folder)
            shutil.copytree(work, folder)
            target = folder
        else:
            target = work
        return WFSDownload(target, base, typename, version, srs_urn, [target / p.name for p in pages],
                           target / "schema.xsd", meta["sha256"], False)
    finally:
        if folder is not None:
            shutil.rmtree(work, ignore_errors=True)


def _from_cache(folder: Path | None, base: str, typename: str, version: str, srs_urn: str | None) -> WFSDownload:
    meta_path = folder / "abruf.json" if folder is not None else None
    if meta_path is None or not meta_path.exists():
        raise GeoplanError(
            f"Für --offline fehlt der Zwischenspeicher der WFS-Ebene {typename!r}.",
            location=_strip_query(base),
            expected=f"{folder}" if folder is not None else "ein Zwischenspeicher-Ordner",
            hint="Einmal ohne --offline (mit Netz) in denselben Ausgabeordner rechnen; der Abruf wird dort "
                 "gespeichert und danach offline wiederverwendet.",
            message_en=f"For --offline the cache of the WFS layer {typename!r} is missing.",
            hint_en="Run once without --offline (with network) into the same output folder; the download is stored "
                    "there and reused offline afterwards.",
        )
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    pages = [folder / p for p in meta["pages"]]
    files = [folder / "schema.xsd", *pages]
    if any(not f.exists() for f in files) or _hash_files(files) != meta["sha256"]:
        raise GeoplanError(
            f"Der Zwischenspeicher der WFS-Ebene {typename!r} ist unvollständig oder wurde verändert.",
            file=folder,
            expected=f"SHA-256 {meta['sha256']}",
            hint="Ohne --offline neu abrufen.",
            message_en=f"The cache of the WFS layer {typename!r} is incomplete or was changed.",
            hint_en="Fetch again without --offline.",
        )
    return WFSDownload(folder, meta["url"], typename, meta["version"], meta["srs"], pages, folder / "schema.xsd",
                       meta["sha256"], True)


def _parse(dl: WFSDownload, *, geometry: bool) -> gpd.GeoDataFrame | pd.DataFrame:
    """All pages as one frame, parsed by GDAL with the server's schema."""
    work = Path(tempfile.mkdtemp(prefix="geoplan-gml-"))
    try:
        # the schema without its imports (GDAL knows GML; nothing is fetched from elsewhere)
        xsd = re.sub(rb"<(\w+:)?import\b[^>]*/>", b"", dl.schema.read_bytes())
        (work / "schema.xsd").write_bytes(xsd)
        crs = CRS.from_user_input(dl.srs) if dl.srs else None
        swap = "YES" if crs is not None and _lat_first(crs) else "NO"
        frames = []
        pyogrio.set_gdal_config_options({"GML_DOWNLOAD_SCHEMA": "NO", "GML_SKIP_RESOLVE_ELEMS": "ALL"})
        try:
            for page in dl.pages:
                if _count_features(page.read_bytes()) == 0:
                    continue
                local = work / page.name
                shutil.copy(page, local)
                opts = dict(XSD=str(work / "schema.xsd"), WRITE_GFS="NO", DOWNLOAD_SCHEMA="NO", SWAP_COORDINATES=swap,
                            read_geometry=geometry, force_2d=True)
                try:
                    df = pyogrio.read_dataframe(local, layer=dl.typename.split(":")[-1], **opts)
                except pyogrio.errors.DataLayerError:
                    df = pyogrio.read_dataframe(local, **opts)
                frames.append(df)
        finally:
            pyogrio.set_gdal_config_options({"GML_DOWNLOAD_SCHEMA": None, "GML_SKIP_RESOLVE_ELEMS": None})
    except GeoplanError:
        raise
    except Exception as exc:
        raise GeoplanError(
            f"Die Antwort des WFS-Servers für {dl.typename!r} lässt sich nicht lesen.",
            location=dl.url,
            found=f"{type(exc).__name__}: {str(exc)[:300]}",
            hint="Mit wfs_version: 1.1.0 versuchen oder den Dienst in QGIS öffnen.",
            message_en=f"The WFS server's answer for {dl.typename!r} cannot be read.",
            hint_en="Try wfs_version: 1.1.0 or open the service in QGIS.",
        ) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not frames:
        return gpd.GeoDataFrame() if geometry else pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    for c in ("gml_id", "boundedBy"):
        if c in out.columns:
            out = out.drop(columns=c)
    return out


def read_wfs_boundaries(source: str, typename: str, *, key: str, name: str | None = None, version: str = "2.0.0",
                        srs=None, crs=None, cache_dir=None, offline: bool = False,
                        timeout: float = DEFAULT_TIMEOUT_S, page_size: int = DEFAULT_PAGE_SIZE,
                        field_name: str = "boundaries") -> gpd.GeoDataFrame:
    """Sozialraum polygons from a WFS, in the form :func:`read_boundaries`
    returns (``attrs["geoplan"]["provenance"]`` for the manifest); feed to
    ``prepare_boundaries(…, raw=gdf)``."""
    dl = fetch_wfs(source, typename, version=version, srs=srs, cache_dir=cache_dir, offline=offline,
                   timeout=timeout, page_size=page_size, field_name=f"{field_name}.connection")
    try:
        gdf = _parse(dl, geometry=True)
        code = _response_epsg(dl.pages[0].read_bytes()) if dl.pages else None
    finally:
        if cache_dir is None:  # nothing to keep: the download was only in a temporary folder
            shutil.rmtree(dl.folder, ignore_errors=True)
    where = f"WFS-Ebene {typename!r} ({_strip_query(dl.url)})"
    notes: list[QANote] = []
    if len(gdf) == 0 or not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry.name not in gdf.columns:
        raise GeoplanError(
            "Der WFS liefert für die Ebene keine Objekte mit Geometrie.",
            location=where,
            expected="ein Polygon je Sozialraum",
            found=f"{len(gdf)} Objekte",
            message_en="The WFS returns no features with geometry for the layer.",
        )
    for col, what in ((key, "Schlüsselfeld"), (name, "Namensfeld")):
        if col is not None and col not in gdf.columns:
            fields = [c for c in gdf.columns if c != gdf.geometry.name]
            raise GeoplanError(
                f"Das {what} {col!r} fehlt.",
                location=where,
                found="Felder: " + ", ".join(repr(f) for f in fields),
                hint=f"In der Konfiguration {'key' if col == key else 'name'!r} auf eines dieser Felder setzen.",
                message_en=f"The field {col!r} is missing.",
                hint_en=f"Set {'key' if col == key else 'name'!r} in the configuration to one of these fields.",
            )
    source_crs = CRS.from_user_input(dl.srs) if dl.srs else (CRS.from_epsg(code) if code else None)
    if dl.srs and code is not None and CRS.from_epsg(code).to_epsg() != source_crs.to_epsg():
        raise GeoplanError(
            "Der WFS-Server liefert ein anderes Koordinatenbezugssystem als angefragt.",
            location=where,
            expected=dl.srs,
            found=f"EPSG:{code}",
            hint="Ein KBS aus der Liste des Dienstes (GetCapabilities) als 'srs' angeben.",
            message_en="The WFS server delivers another coordinate reference system than requested.",
            hint_en="Give a CRS from the service's list (GetCapabilities) as 'srs'.",
        )
    if crs is not None:
        source_crs = parse_crs(crs, field="crs")
    if source_crs is None:
        raise GeoplanError(
            "Die WFS-Antwort nennt kein Koordinatenbezugssystem.",
            location=where,
            hint="In der Konfiguration 'srs' angeben, z. B. 'EPSG:25833'.",
            message_en="The WFS answer names no coordinate reference system.",
            hint_en="Give 'srs' in the configuration, e.g. 'EPSG:25833'.",
        )
    gdf = gdf.set_crs(source_crs, allow_override=True)
    # single polygons and multipolygons as the files have them
    gdf[key] = gdf[key].map(lambda v: None if v is None else str(v))
    gdf = gdf.set_geometry(shapely.force_2d(gdf.geometry.to_numpy()))
    _check_crs_plausible(gdf, where, notes)
    gdf.attrs["geoplan"] = {
        "notes": notes,
        "layer": typename,
        "encoding": "UTF-8",
        "source_crs": source_crs.to_string(),
        "fields": [c for c in gdf.columns if c != gdf.geometry.name],
        "provenance": dl.provenance(len(gdf)),
    }
    return gdf


def read_wfs_table(source: str, typename: str, *, key: str, version: str = "2.0.0", cache_dir=None,
                   offline: bool = False, timeout: float = DEFAULT_TIMEOUT_S, page_size: int = DEFAULT_PAGE_SIZE,
                   field_name: str = "indicators.tables[]", **table_options) -> TableResult:
    """An attribute table from a WFS (geometry ignored), through the same
    checks as a CSV/XLSX file (:func:`table_from_rows`).
    ``result.dialect["provenance"]`` is the manifest entry."""
    dl = fetch_wfs(source, typename, version=version, cache_dir=cache_dir, offline=offline, timeout=timeout,
                   page_size=page_size, field_name=f"{field_name}.connection")
    try:
        df = _parse(dl, geometry=False)
    finally:
        if cache_dir is None:
            shutil.rmtree(dl.folder, ignore_errors=True)
    if isinstance(df, gpd.GeoDataFrame) and df.geometry.name in df.columns:
        df = pd.DataFrame(df.drop(columns=df.geometry.name))
    cols = list(df.columns)

    def cell(v):
        if v is None or (isinstance(v, float) and v != v):
            return None
        if hasattr(v, "item"):
            v = v.item()
        return v

    rows = [cols] + [[cell(v) for v in r] for r in df.itertuples(index=False, name=None)]
    dialect = {"encoding": "UTF-8", "bom": False, "delimiter": None, "sheet": None}
    res = table_from_rows(rows, dialect, [], source=f"WFS-Ebene {typename!r} ({_strip_query(dl.url)})", key=key,
                          **table_options)
    res.dialect["provenance"] = dl.provenance(len(df))
    return res
