"""Read Sozialraum boundaries and indicator tables from PostgreSQL/PostGIS.

The connection is given the way GIS people write it for GDAL and QGIS:

* ``PG:service=stadtgis`` (a service in ``~/.pg_service.conf`` or the file
  ``PGSERVICEFILE`` names),
* ``PG:host=gis.stadt.de port=5432 dbname=geodaten user=jugendhilfe``,
* ``postgresql://jugendhilfe@gis.stadt.de:5432/geodaten``.

The password never comes from the configuration: libpq takes it from
``PGPASSWORD``, ``~/.pgpass`` (``PGPASSFILE``) or the service file. A
connection string with a password is refused (without repeating it), and no
message, log line or manifest entry written here contains one: errors name
server, database, user and table only.

What is read is described by :func:`provenance` (server, database, table or
SQL, row count and a SHA-256 of the rows as read) for the manifest.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import hashlib
import os
import re
from dataclasses import dataclass, field

import geopandas as gpd
import pandas as pd
import shapely
from pyproj import CRS

from geoplan.errors import GeoplanError, QANote

from geoplan.load.boundaries import _check_crs_plausible, parse_crs
from geoplan.load.tables import TableResult, table_from_rows

__all__ = [
    "PGSource",
    "parse_dsn",
    "connect",
    "read_postgis_boundaries",
    "read_postgis_table",
    "is_postgis_source",
    "scrub",
]

STAGE = "boundaries"
CONNECT_TIMEOUT_S = 15
# GDAL's PG: driver knows these; libpq does not
_GDAL_ONLY = ("schemas", "tables", "active_schema", "list_all_tables")


def is_postgis_source(value) -> bool:
    """True for ``PG:…``, ``postgresql://…`` and ``postgres://…``."""
    return isinstance(value, str) and value.strip().lower().startswith(("pg:", "postgresql://", "postgres://"))


def scrub(text: str) -> str:
    """Remove anything that looks like a password from a message (libpq
    does not echo passwords, but a connection string in an error might)."""
    text = re.sub(r"(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", str(text))
    text = re.sub(r"(?i)(postgres(?:ql)?://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)
    pw = os.environ.get("PGPASSWORD")
    if pw:
        text = text.replace(pw, "***")
    return text


@dataclass
class PGSource:
    """A parsed connection: ``conninfo`` goes to libpq (never contains a
    password); ``display`` is what messages and the manifest show."""

    conninfo: str
    params: dict
    display: str
    server: str = ""
    database: str = ""
    user: str = ""
    notes: list[QANote] = field(default_factory=list)


def parse_dsn(dsn: str, *, field_name: str = "connection") -> PGSource:
    """Parse a ``PG:``/``postgresql://`` connection string (see module docs)."""
    from psycopg import conninfo as ci

    raw = str(dsn).strip()
    if raw[:3].lower() == "pg:":
        raw = raw[3:].strip()
    try:
        params = ci.conninfo_to_dict(raw)
    except Exception as exc:
        raise GeoplanError(
            "Die PostgreSQL-Verbindungsangabe ist nicht lesbar.",
            location=f"Konfigurationsfeld {field_name!r}",
            expected="'PG:service=NAME', 'PG:host=… dbname=… user=…' oder 'postgresql://user@host:5432/dbname'",
            found=scrub(str(exc).splitlines()[0] if str(exc) else type(exc).__name__),
            hint="Schreibweise wie in QGIS/GDAL verwenden; Schlüssel=Wert-Paare mit Leerzeichen trennen.",
            message_en="The PostgreSQL connection string cannot be parsed.",
            hint_en="Use the notation of QGIS/GDAL; separate key=value pairs with blanks.",
        ) from None
    if "password" in params:
        raise GeoplanError(
            "Die Verbindungsangabe enthält ein Passwort. Passwörter gehören nicht in die Konfigurationsdatei.",
            location=f"Konfigurationsfeld {field_name!r}",
            expected="Verbindung ohne Passwort, z. B. 'PG:service=stadtgis' oder 'PG:host=… dbname=… user=…'",
            found="ein Passwort (hier nicht wiedergegeben)",
            hint="Passwort aus der Konfiguration entfernen und in ~/.pgpass, einer Service-Datei "
                 "(~/.pg_service.conf) oder der Umgebungsvariable PGPASSWORD hinterlegen.",
            message_en="The connection string contains a password. Passwords do not belong in the configuration file.",
            hint_en="Remove the password and put it into ~/.pgpass, a service file (~/.pg_service.conf) or the "
                    "environment variable PGPASSWORD.",
        )
    gdal_only = [k for k in params if k in _GDAL_ONLY]
    if gdal_only:
        raise GeoplanError(
            f"Die Verbindungsangabe enthält GDAL-Optionen ({', '.join(gdal_only)}), die geoplan nicht auswertet.",
            location=f"Konfigurationsfeld {field_name!r}",
            hint="Schema und Tabelle mit 'layer: schema.tabelle' angeben (oder 'sql: SELECT …').",
            message_en=f"The connection string has GDAL options ({', '.join(gdal_only)}) geoplan does not use.",
            hint_en="Name schema and table with 'layer: schema.table' (or 'sql: SELECT …').",
        )
    params.setdefault("connect_timeout", str(CONNECT_TIMEOUT_S))
    params.setdefault("application_name", "geoplan")
    conninfo = ci.make_conninfo(**params)
    return PGSource(conninfo=conninfo, params=params, display=_display(params))


def _display(params: dict) -> str:
    if "service" in params and "host" not in params:
        return f"Service {params['service']!r}" + (f", Datenbank {params['dbname']!r}" if "dbname" in params else "")
    host = params.get("host") or os.environ.get("PGHOST") or "localhost"
    port = params.get("port") or os.environ.get("PGPORT") or "5432"
    db = params.get("dbname") or os.environ.get("PGDATABASE") or ""
    return f"{host}:{port}/{db}"


def _connect_error(src: PGSource, exc: Exception) -> GeoplanError:
    msg = scrub(str(exc)).strip()
    low = msg.lower()
    first = next((ln.strip() for ln in msg.splitlines() if ln.strip()), type(exc).__name__)
    where = src.display
    if "password authentication failed" in low or "authentication failed" in low:
        user = src.params.get("user") or os.environ.get("PGUSER") or "(Standardbenutzer)"
        return GeoplanError(
            f"Anmeldung an der Datenbank {where} abgelehnt: Benutzer oder Passwort falsch.",
            location=f"Benutzer {user!r}",
            found="Passwort-Anmeldung fehlgeschlagen (das Passwort wird nicht angezeigt)",
            hint="Passwort in ~/.pgpass (Format host:port:datenbank:benutzer:passwort, Rechte 0600), in der "
                 "Service-Datei oder in PGPASSWORD prüfen; Benutzername prüfen.",
            message_en=f"Login to the database {where} refused: wrong user name or password.",
            hint_en="Check the password in ~/.pgpass (host:port:database:user:password, mode 0600), in the service "
                    "file or in PGPASSWORD; check the user name.",
        )
    if "no password supplied" in low or "password is required" in low:
        return GeoplanError(
            f"Die Datenbank {where} verlangt ein Passwort, es wurde aber keines gefunden.",
            hint="Passwort in ~/.pgpass, einer Service-Datei (~/.pg_service.conf) oder in der Umgebungsvariable "
                 "PGPASSWORD hinterlegen – nicht in der Konfiguration.",
            message_en=f"The database {where} requires a password, but none was found.",
            hint_en="Put the password into ~/.pgpass, a service file (~/.pg_service.conf) or PGPASSWORD – not "
                    "into the configuration.",
        )
    if "connection refused" in low or "no such file or directory" in low and "socket" in low:
        return GeoplanError(
            f"Keine Verbindung zum PostgreSQL-Server {where}: Verbindung abgelehnt.",
            found=first,
            hint="Host und Port prüfen; läuft der Server, und lässt er Verbindungen von diesem Rechner zu "
                 "(listen_addresses, pg_hba.conf, Firewall, VPN)?",
            message_en=f"No connection to the PostgreSQL server {where}: connection refused.",
            hint_en="Check host and port; is the server running and does it accept connections from this machine "
                    "(listen_addresses, pg_hba.conf, firewall, VPN)?",
        )
    if "timeout expired" in low or "timed out" in low:
        return GeoplanError(
            f"Keine Verbindung zum PostgreSQL-Server {where}: Zeitüberschreitung.",
            found=first,
            hint="Netzwerk/VPN und Firewall prüfen; Host und Port prüfen.",
            message_en=f"No connection to the PostgreSQL server {where}: timed out.",
            hint_en="Check network/VPN and firewall; check host and port.",
        )
    if "could not translate host name" in low or "name or service not known" in low:
        return GeoplanError(
            f"Der Rechnername des PostgreSQL-Servers ist unbekannt ({where}).",
            found=first,
            hint="Schreibweise von 'host' prüfen (oder die IP-Adresse verwenden).",
            message_en=f"The PostgreSQL server's host name is unknown ({where}).",
            hint_en="Check the spelling of 'host' (or use the IP address).",
        )
    if "does not exist" in low and "database" in low:
        return GeoplanError(
            f"Die Datenbank gibt es auf dem Server nicht ({where}).",
            found=first,
            hint="'dbname' prüfen (in psql: \\l listet die Datenbanken).",
            message_en=f"The database does not exist on the server ({where}).",
            hint_en="Check 'dbname' (in psql, \\l lists the databases).",
        )
    if "service" in low and ("not found" in low or "definition" in low):
        return GeoplanError(
            f"Der PostgreSQL-Service {src.params.get('service')!r} ist nicht definiert.",
            found=first,
            hint="Den Abschnitt [NAME] in ~/.pg_service.conf (oder der Datei in PGSERVICEFILE) anlegen.",
            message_en=f"The PostgreSQL service {src.params.get('service')!r} is not defined.",
            hint_en="Add the section [NAME] to ~/.pg_service.conf (or the file PGSERVICEFILE names).",
        )
    return GeoplanError(
        f"Die Verbindung zur Datenbank {where} ist fehlgeschlagen.",
        found=first,
        hint="Verbindungsangabe, Netzwerk und Zugangsdaten prüfen (mit psql oder QGIS testen).",
        message_en=f"Connecting to the database {where} failed.",
        hint_en="Check the connection string, network and credentials (test with psql or QGIS).",
    )


def connect(src: PGSource | str, *, read_only: bool = True):
    """Open a psycopg connection (autocommit off), or raise a GeoplanError."""
    import psycopg

    if isinstance(src, str):
        src = parse_dsn(src)
    try:
        conn = psycopg.connect(src.conninfo)
    except psycopg.Error as exc:
        raise _connect_error(src, exc) from None
    conn.read_only = read_only
    info = conn.info
    src.server = f"{info.host}:{info.port}"
    src.database = info.dbname
    src.user = info.user
    src.display = f"{src.server}/{src.database}"
    return conn


def _require_postgis(conn, src: PGSource) -> None:
    with conn.cursor() as cur:
        cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'postgis'")
        row = cur.fetchone()
    if row is None:
        raise GeoplanError(
            f"In der Datenbank {src.display} ist die Erweiterung PostGIS nicht eingerichtet.",
            expected="PostGIS (Geometrie-Spalten)",
            hint="Die Datenbank-Administration bitten, 'CREATE EXTENSION postgis;' in dieser Datenbank "
                 "auszuführen, oder die richtige Datenbank angeben.",
            message_en=f"The PostGIS extension is not installed in the database {src.display}.",
            hint_en="Ask the database administrators to run 'CREATE EXTENSION postgis;' in this database, or name "
                    "the right database.",
        )


def split_table_name(name: str) -> tuple[str | None, str]:
    """``schema.table`` -> (schema, table); quotes allowed (``"Mein Schema"."Tabelle"``)."""
    parts = re.findall(r'"((?:[^"]|"")*)"|([^."]+)', name.strip())
    names = [q.replace('""', '"') if q else u.strip() for q, u in parts]
    if len(names) == 1:
        return None, names[0]
    if len(names) == 2:
        return names[0], names[1]
    raise GeoplanError(
        f"Der Tabellenname {name!r} ist ungültig.",
        expected="'tabelle' oder 'schema.tabelle'",
        message_en=f"The table name {name!r} is invalid.",
    )


def _qualified(schema: str | None, table: str):
    from psycopg import sql

    return sql.Identifier(schema, table) if schema else sql.Identifier(table)


def _tables_listing(conn, with_geometry: bool) -> str:
    q = ("SELECT f_table_schema || '.' || f_table_name FROM geometry_columns ORDER BY 1" if with_geometry else
         "SELECT table_schema || '.' || table_name FROM information_schema.tables "
         "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1")
    try:
        with conn.cursor() as cur:
            cur.execute(q)
            rows = [r[0] for r in cur.fetchall()]
    except Exception:
        conn.rollback()
        return ""
    if not rows:
        return "keine"
    return ", ".join(rows[:30]) + (" …" if len(rows) > 30 else "")


def _base_query(conn, src: PGSource, layer: str | None, sql_text: str | None, field_name: str, with_geometry: bool):
    """The query for ``layer`` or ``sql``, checked: returns (sql.Composable, label)."""
    from psycopg import sql

    if (layer is None) == (sql_text is None):
        raise GeoplanError(
            "Für eine PostGIS-Quelle genau eines von 'layer' (schema.tabelle) oder 'sql' (SELECT …) angeben.",
            location=f"Konfigurationsfeld {field_name!r}",
            message_en="For a PostGIS source give exactly one of 'layer' (schema.table) or 'sql' (SELECT …).",
        )
    if layer is not None:
        schema, table = split_table_name(layer)
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass(%s)", (_qualified(schema, table).as_string(conn),))
            exists = cur.fetchone()[0] is not None
        if not exists:
            raise GeoplanError(
                f"Die Tabelle {layer!r} gibt es in der Datenbank {src.display} nicht (oder sie ist für den "
                f"Benutzer {src.user!r} nicht sichtbar).",
                location=f"Konfigurationsfeld {field_name!r}",
                found=("Tabellen mit Geometrie: " if with_geometry else "Tabellen: ")
                + _tables_listing(conn, with_geometry),
                hint="'layer' als schema.tabelle angeben (Groß-/Kleinschreibung beachten) und Leserechte prüfen.",
                message_en=f"The table {layer!r} does not exist in the database {src.display} (or the user "
                           f"{src.user!r} cannot see it).",
                hint_en="Give 'layer' as schema.table (mind upper/lower case) and check the read permissions.",
            )
        return sql.SQL("SELECT * FROM {}").format(_qualified(schema, table)), layer
    text = sql_text.strip().rstrip(";")
    if not re.match(r"(?is)^\s*(select|with)\b", text):
        raise GeoplanError(
            "Die SQL-Abfrage muss mit SELECT oder WITH beginnen.",
            location=f"Konfigurationsfeld {field_name!r}",
            found=text[:80],
            message_en="The SQL query must start with SELECT or WITH.",
        )
    return sql.SQL(text), "SQL"


def _order_by(conn, layer: str | None, columns: list[str], key: str | None):
    """Rows in the table's stored order: by its primary key (how ogr2ogr, shp2pgsql and QGIS load a
    layer: in file order), else by ``key``; an ``sql`` query keeps its own order."""
    from psycopg import sql as psql

    if layer is None:
        return psql.SQL("")
    schema, table = split_table_name(layer)
    with conn.cursor() as cur:
        cur.execute("SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                    "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass(%s) AND i.indisprimary "
                    "ORDER BY array_position(i.indkey, a.attnum)", (_qualified(schema, table).as_string(conn),))
        pk = [r[0] for r in cur.fetchall()]
    order = pk if pk and all(c in columns for c in pk) else ([key] if key in columns else [])
    if not order:
        return psql.SQL("")
    return psql.SQL(" ORDER BY ") + psql.SQL(", ").join(psql.Identifier(c) for c in order)


def _run(conn, src: PGSource, query, label: str, field_name: str):
    import psycopg

    try:
        with conn.cursor() as cur:
            cur.execute(query)
            cols = [(d.name, d.type_code) for d in cur.description]
            rows = cur.fetchall()
    except psycopg.Error as exc:
        conn.rollback()
        diag = getattr(exc, "diag", None)
        detail = (diag.message_primary if diag is not None and diag.message_primary else str(exc).splitlines()[0])
        raise GeoplanError(
            f"Die Abfrage in der Datenbank {src.display} ist fehlgeschlagen.",
            location=f"Konfigurationsfeld {field_name!r} ({label})",
            found=scrub(detail),
            hint="Die Abfrage in psql oder im DB-Manager von QGIS testen; Spalten- und Tabellennamen prüfen.",
            message_en=f"The query in the database {src.display} failed.",
            hint_en="Test the query in psql or the QGIS DB Manager; check column and table names.",
        ) from None
    return cols, rows


def _py(v):
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, (_dt.date, _dt.datetime, _dt.time)):
        return v.isoformat()
    if isinstance(v, bool):
        return "WAHR" if v else "FALSCH"
    if isinstance(v, (bytes, memoryview)):
        return bytes(v).hex()
    return v


def _rows_hash(columns: list[str], rows) -> str:
    h = hashlib.sha256()
    h.update(repr(columns).encode())
    for r in rows:
        h.update(repr(tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)).encode())
    return h.hexdigest()


def provenance(src: PGSource, *, layer: str | None, sql_text: str | None, rows: int, sha256: str) -> dict:
    """The manifest entry of a PostGIS read (no user, no password)."""
    return {"kind": "postgis", "server": src.server, "database": src.database, "table": layer,
            "sql": sql_text, "rows": rows, "sha256": sha256}


def read_postgis_boundaries(dsn: str, *, key: str, name: str | None = None, layer: str | None = None,
                            sql: str | None = None, geometry_column: str | None = None, crs=None,
                            field_name: str = "boundaries") -> gpd.GeoDataFrame:
    """Read the Sozialraum polygons from PostGIS, as :func:`read_boundaries`
    reads them from a file: source CRS (the geometry's SRID, or ``crs``), key
    as text, ``attrs["geoplan"]`` with ``notes``, ``layer``, ``source_crs``,
    ``fields`` and ``provenance`` (for the manifest).

    Feed the result to ``prepare_boundaries(…, raw=gdf)`` for the checks and
    reprojection the pipeline does for files.
    """
    from psycopg import sql as psql

    src = parse_dsn(dsn, field_name=f"{field_name}.connection")
    notes: list[QANote] = []
    conn = connect(src, read_only=True)
    try:
        _require_postgis(conn, src)
        base, label = _base_query(conn, src, layer, sql, field_name, with_geometry=True)
        with conn.cursor() as cur:
            cur.execute("SELECT oid FROM pg_type WHERE typname = 'geometry'")
            geom_oid = cur.fetchone()[0]
        probe, _ = _run(conn, src, psql.SQL("SELECT * FROM ({}) AS q LIMIT 0").format(base), label, field_name)
        names = [c for c, _ in probe]
        geoms = [c for c, t in probe if t == geom_oid]
        if geometry_column is not None:
            if geometry_column not in geoms:
                raise GeoplanError(
                    f"Die Geometriespalte {geometry_column!r} gibt es nicht.",
                    location=f"{label} in {src.display}",
                    found="Geometriespalten: " + (", ".join(geoms) or "keine"),
                    message_en=f"The geometry column {geometry_column!r} does not exist.",
                )
            gcol = geometry_column
        elif len(geoms) == 1:
            gcol = geoms[0]
        elif not geoms:
            raise GeoplanError(
                "Die Tabelle/Abfrage hat keine Geometriespalte (reine Attributtabelle).",
                location=f"{label} in {src.display}",
                found="Spalten: " + ", ".join(names),
                hint="Die Tabelle mit den Sozialraum-Polygonen angeben (oder in 'sql' die Geometrie auswählen).",
                message_en="The table/query has no geometry column (attribute table only).",
                hint_en="Give the table with the Sozialraum polygons (or select the geometry in 'sql').",
            )
        else:
            raise GeoplanError(
                "Die Tabelle/Abfrage hat mehrere Geometriespalten.",
                location=f"{label} in {src.display}",
                found="Geometriespalten: " + ", ".join(geoms),
                hint="In der Konfiguration 'geometry_column' angeben (boundaries.geometry_column).",
                message_en="The table/query has several geometry columns.",
                hint_en="Give 'geometry_column' in the configuration (boundaries.geometry_column).",
            )
        for col, what in ((key, "Schlüsselfeld"), (name, "Namensfeld")):
            if col is not None and col not in names:
                raise GeoplanError(
                    f"Das {what} {col!r} fehlt.",
                    location=f"{label} in {src.display}",
                    found="Spalten: " + ", ".join(repr(n) for n in names),
                    hint=f"In der Konfiguration {'key' if col == key else 'name'!r} auf eine dieser Spalten setzen.",
                    message_en=f"The field {col!r} is missing.",
                    hint_en=f"Set {'key' if col == key else 'name'!r} in the configuration to one of these columns.",
                )
        attrs = [c for c in names if c not in geoms]
        select = psql.SQL("SELECT {attrs}, ST_AsBinary(ST_Force2D({g})), ST_SRID({g}) FROM ({base}) AS q").format(
            attrs=psql.SQL(", ").join(psql.Identifier(c) for c in attrs) if attrs else psql.SQL("1"),
            g=psql.Identifier(gcol), base=base) + _order_by(conn, layer, names, key)
        _, rows = _run(conn, src, select, label, field_name)
    finally:
        conn.close()
    if not rows:
        raise GeoplanError(
            "Die Tabelle/Abfrage liefert keine Objekte.",
            location=f"{label} in {src.display}",
            expected="ein Polygon je Sozialraum",
            found="0 Zeilen",
            message_en="The table/query returns no features.",
        )
    n_attr = len(attrs) if attrs else 1
    sha = _rows_hash(names, rows)
    data = {c: [_py(r[i]) for r in rows] for i, c in enumerate(attrs)}
    frame = pd.DataFrame(data)
    wkb = [bytes(r[n_attr]) if r[n_attr] is not None else None for r in rows]
    geometry = shapely.from_wkb(wkb)
    srids = sorted({r[n_attr + 1] for r in rows if r[n_attr + 1] is not None})
    if len(srids) > 1:
        raise GeoplanError(
            "Die Geometrien haben verschiedene Koordinatenbezugssysteme (SRID).",
            location=f"{label} in {src.display}",
            found="SRID " + ", ".join(map(str, srids)),
            hint="In 'sql' mit ST_Transform auf ein KBS bringen.",
            message_en="The geometries have different coordinate reference systems (SRID).",
            hint_en="Bring them to one CRS with ST_Transform in 'sql'.",
        )
    source_crs = CRS.from_epsg(srids[0]) if srids and srids[0] > 0 else None
    if crs is not None:
        want = parse_crs(crs, field="crs")
        if source_crs is not None and not source_crs.equals(want):
            notes.append(QANote(STAGE, f"KBS der Tabelle ({source_crs.to_string()}) durch die Konfiguration "
                                f"ersetzt: {want.to_string()}.", file=f"{label} in {src.display}",
                                message_en=f"The table's CRS ({source_crs.to_string()}) replaced by the "
                                f"configuration's: {want.to_string()}."))
        source_crs = want
    elif source_crs is None:
        raise GeoplanError(
            "Die Geometrien haben kein Koordinatenbezugssystem (SRID 0).",
            location=f"{label} in {src.display}",
            hint="In der Konfiguration 'crs' angeben, z. B. 'EPSG:25833', oder in der Datenbank die SRID setzen "
                 "(UpdateGeometrySRID).",
            message_en="The geometries have no coordinate reference system (SRID 0).",
            hint_en="Give 'crs' in the configuration, e.g. 'EPSG:25833', or set the SRID in the database "
                 "(UpdateGeometrySRID).",
        )
    gdf = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geometry, crs=source_crs), crs=source_crs)
    if key in gdf.columns:
        gdf[key] = gdf[key].map(lambda v: v if v is None or isinstance(v, str) else
                                (str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)))
    _check_crs_plausible(gdf, f"{label} in {src.display}", notes)
    gdf.attrs["geoplan"] = {
        "notes": notes,
        "layer": layer or "SQL",
        "encoding": "UTF-8",
        "source_crs": gdf.crs.to_string(),
        "fields": attrs,
        "provenance": provenance(src, layer=layer, sql_text=sql, rows=len(rows), sha256=sha),
    }
    return gdf


def read_postgis_table(dsn: str, *, key: str, layer: str | None = None, sql: str | None = None,
                       field_name: str = "indicators.tables[]", **table_options) -> TableResult:
    """Read an indicator/key table from PostgreSQL (PostGIS not needed).

    The rows go through the same checks and conversions as a CSV/XLSX file
    (:func:`geoplan.load.tables.table_from_rows`): keys as text with leading
    zeros, ``sentinels``, ``valid_column``/``valid_values``, ``key_width``,
    ``numeric_columns``, duplicate keys. ``table_options`` are those keyword
    arguments of :func:`read_table`. Geometry columns are left out.
    ``result.dialect["provenance"]`` is the manifest entry.
    """
    from psycopg import sql as psql

    src = parse_dsn(dsn, field_name=f"{field_name}.connection")
    conn = connect(src, read_only=True)
    try:
        base, label = _base_query(conn, src, layer, sql, field_name, with_geometry=False)
        with conn.cursor() as cur:
            cur.execute("SELECT oid FROM pg_type WHERE typname IN ('geometry', 'geography')")
            skip = {r[0] for r in cur.fetchall()}
        probe, _ = _run(conn, src, psql.SQL("SELECT * FROM ({}) AS q LIMIT 0").format(base), label, field_name)
        attrs = [c for c, t in probe if t not in skip]
        order = _order_by(conn, layer, [c for c, _ in probe], key)
        select = psql.SQL("SELECT {} FROM ({}) AS q").format(
            psql.SQL(", ").join(psql.Identifier(c) for c in attrs), base) + order
        _, rows = _run(conn, src, select, label, field_name)
    finally:
        conn.close()
    sha = _rows_hash(attrs, rows)
    table_rows = [list(attrs)] + [[_py(v) for v in r] for r in rows]
    dialect = {"encoding": "UTF-8", "bom": False, "delimiter": None, "sheet": None}
    display = f"{label} in {src.display}" if layer is None else f"{layer} in {src.display}"
    res = table_from_rows(table_rows, dialect, [], source=display, key=key, **table_options)
    res.dialect["provenance"] = provenance(src, layer=layer, sql_text=sql, rows=len(rows), sha256=sha)
    return res
