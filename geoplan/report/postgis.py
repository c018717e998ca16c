"""Write the published Sozialraum layer to a PostGIS table, with QGIS styles.

One transaction: the rows go into a new table under a temporary name, then
(``if_exists: replace``) the old table is dropped and the new one renamed, so
readers see either the old or the new table, never a half-written one. A table
geoplan did not write (no ``geoplan:`` comment) is never replaced. The styles
(:mod:`geoplan.report.styles`) go into the database's ``layer_styles`` table,
the one QGIS reads when the layer is added, the first as default style.

The password comes from PGPASSWORD, ~/.pgpass or the service file, as for
input (:mod:`geoplan.load.postgis`); it appears in no message and in nothing
this module returns.
"""

from __future__ import annotations

import hashlib
import math
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geoplan.errors import GeoplanError
from geoplan.load.postgis import PGSource, _require_postgis, connect, parse_dsn, scrub, split_table_name

__all__ = ["write_postgis", "GEOPLAN_COMMENT"]

GEOPLAN_COMMENT = "geoplan:"

_LAYER_STYLES_DDL = """
CREATE TABLE IF NOT EXISTS public.layer_styles (
    id serial PRIMARY KEY,
    f_table_catalog varchar,
    f_table_schema varchar,
    f_table_name varchar,
    f_geometry_column varchar,
    stylename text,
    styleqml xml,
    stylesld xml,
    useasdefault boolean,
    description text,
    owner varchar(63) DEFAULT CURRENT_USER,
    ui xml,
    update_time timestamp DEFAULT CURRENT_TIMESTAMP,
    type varchar
)"""


def _pg_type(s: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(s):
        return "boolean"
    if pd.api.types.is_integer_dtype(s):
        return "bigint"
    if pd.api.types.is_float_dtype(s):
        return "double precision"
    if pd.api.types.is_numeric_dtype(s):
        return "double precision"
    return "text"


def _cell(v):
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, (float, np.floating)):
        return None if math.isnan(v) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def _error(src: PGSource, table: str, exc: Exception) -> GeoplanError:
    diag = getattr(exc, "diag", None)
    detail = diag.message_primary if diag is not None and diag.message_primary else str(exc).splitlines()[0]
    return GeoplanError(
        f"Das Ergebnis ließ sich nicht in die Datenbank {src.display} schreiben; nichts wurde geändert.",
        location=f"Tabelle {table!r}",
        found=scrub(detail),
        hint="Schreibrechte des Benutzers im Schema prüfen (CREATE, und für layer_styles INSERT/DELETE).",
        message_en=f"The result could not be written to the database {src.display}; nothing was changed.",
        hint_en="Check the user's permissions in the schema (CREATE, and INSERT/DELETE on layer_styles).",
    )


def write_postgis(published: gpd.GeoDataFrame, dsn: str, table: str, if_exists: str = "fail",
                  styles: list | None = None, *, description: str = "", field_name: str = "output.postgis") -> dict:
    """Write ``published`` (the GeoPackage's layer: after suppression, same
    columns) to ``table`` (``schema.table``; schema default ``public``).

    ``if_exists``: ``fail`` (default) stops when the table exists;
    ``replace`` replaces a table geoplan wrote before. ``styles``: the
    :class:`geoplan.report.styles.Style` list of the layer (QML and SLD) or
    ``(name, qml)`` pairs; the first is QGIS's default.
    Returns the manifest entry (server, database, table, rows, sha256; no
    user, no password).
    """
    import psycopg
    from psycopg import sql

    if if_exists not in ("fail", "replace"):
        raise GeoplanError(
            f"'if_exists' muss 'fail' oder 'replace' sein, nicht {if_exists!r}.",
            location=f"Konfigurationsfeld '{field_name}.if_exists'",
            message_en=f"'if_exists' must be 'fail' or 'replace', not {if_exists!r}.",
        )
    schema, name = split_table_name(table)
    schema = schema or "public"
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,50}", name):
        raise GeoplanError(
            f"Der Tabellenname {name!r} ist für PostGIS/QGIS ungeeignet.",
            location=f"Konfigurationsfeld '{field_name}.table'",
            expected="Buchstaben, Ziffern und _ (beginnend mit Buchstabe), höchstens 50 Zeichen",
            message_en=f"The table name {name!r} is not suitable for PostGIS/QGIS.",
        )
    full = f"{schema}.{name}"
    src = parse_dsn(dsn, field_name=f"{field_name}.connection")
    gdf = published
    geom_name = gdf.geometry.name
    epsg = gdf.crs.to_epsg() if gdf.crs is not None else None
    if epsg is None:
        raise GeoplanError("Das Ergebnis hat kein EPSG-Koordinatenbezugssystem.", location=full,
                           message_en="The result has no EPSG coordinate reference system.")
    attrs = [c for c in gdf.columns if c != geom_name]
    for reserved in ("fid", "geom"):
        if reserved in attrs:
            raise GeoplanError(f"Die Spalte {reserved!r} ist für die PostGIS-Ausgabe reserviert.", location=full,
                               message_en=f"The column {reserved!r} is reserved for the PostGIS output.")
    geoms = shapely.force_2d(gdf.geometry.to_numpy())
    geoms = np.array([g if g is None or g.geom_type == "MultiPolygon" else shapely.MultiPolygon([g])
                      if g.geom_type == "Polygon" else g for g in geoms], dtype=object)
    wkb = shapely.to_wkb(shapely.set_srid(geoms, epsg), hex=True, include_srid=True)
    rows = [tuple(_cell(v) for v in rec) + (w,) for rec, w in zip(gdf[attrs].itertuples(index=False, name=None), wkb)]
    sha = hashlib.sha256(repr([attrs, rows]).encode()).hexdigest()
    tmp = f"{name}__geoplan_neu"[:63]
    conn = connect(src, read_only=False)
    try:
        _require_postgis(conn, src)
        with conn.cursor() as cur:
            cur.execute("SELECT c.oid, obj_description(c.oid, 'pg_class') FROM pg_class c JOIN pg_namespace n "
                        "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s", (schema, name))
            existing = cur.fetchone()
            cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
            has_schema = cur.fetchone() is not None
        if not has_schema:
            raise GeoplanError(
                f"Das Schema {schema!r} gibt es in der Datenbank {src.display} nicht.",
                location=f"Konfigurationsfeld '{field_name}.table'",
                hint="Ein vorhandenes Schema angeben oder es anlegen lassen (CREATE SCHEMA).",
                message_en=f"The schema {schema!r} does not exist in the database {src.display}.",
                hint_en="Give an existing schema or have it created (CREATE SCHEMA).",
            )
        if existing is not None:
            if if_exists == "fail":
                raise GeoplanError(
                    f"Die Tabelle {full!r} gibt es in der Datenbank {src.display} schon.",
                    location=f"Konfigurationsfeld '{field_name}.if_exists'",
                    hint="Einen anderen Tabellennamen wählen oder 'if_exists: replace' setzen, um eine von "
                         "geoplan geschriebene Tabelle zu ersetzen.",
                    message_en=f"The table {full!r} already exists in the database {src.display}.",
                    hint_en="Choose another table name or set 'if_exists: replace' to replace a table geoplan wrote.",
                )
            if not (existing[1] or "").startswith(GEOPLAN_COMMENT):
                raise GeoplanError(
                    f"Die Tabelle {full!r} wurde nicht von geoplan geschrieben und wird nicht ersetzt.",
                    location=f"Konfigurationsfeld '{field_name}.table'",
                    hint="Einen anderen Tabellennamen wählen; fremde Tabellen überschreibt geoplan nie.",
                    message_en=f"The table {full!r} was not written by geoplan and is not replaced.",
                    hint_en="Choose another table name; geoplan never overwrites tables it did not write.",
                )
        t_tmp = sql.Identifier(schema, tmp)
        coldefs = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(_pg_type(gdf[c]))) for c in attrs)
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(t_tmp))
            cur.execute(sql.SQL("CREATE TABLE {} (fid integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, {}, "
                                "geom geometry(MultiPolygon, {}))").format(t_tmp, coldefs, sql.Literal(epsg)))
            collist = sql.SQL(", ").join([sql.Identifier(c) for c in attrs] + [sql.Identifier("geom")])
            with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(t_tmp, collist)) as cp:
                for r in rows:
                    cp.write_row(r)
            if existing is not None:
                cur.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(schema, name)))
            cur.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(t_tmp, sql.Identifier(name)))
            cur.execute(sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                sql.Identifier(schema, f"{tmp}_pkey"[:63]), sql.Identifier(f"{name}_pkey"[:63])))
            cur.execute(sql.SQL("CREATE INDEX {} ON {} USING gist (geom)").format(
                sql.Identifier(f"{name}_geom_idx"[:63]), sql.Identifier(schema, name)))
            cur.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(
                sql.Identifier(schema, name), sql.Literal(f"{GEOPLAN_COMMENT} {description}".strip())))
            cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, name)))
            if styles:
                cur.execute(_LAYER_STYLES_DDL)
                cur.execute("DELETE FROM public.layer_styles WHERE f_table_catalog = current_database() "
                            "AND f_table_schema = %s AND f_table_name = %s", (schema, name))
                for i, style in enumerate(styles):
                    title, qml, sld = ((style.name, style.qml, style.sld) if hasattr(style, "qml")
                                       else (*style, None))
                    cur.execute(
                        "INSERT INTO public.layer_styles (f_table_catalog, f_table_schema, f_table_name, "
                        "f_geometry_column, stylename, styleqml, stylesld, useasdefault, description, type) "
                        "VALUES (current_database(), %s, %s, 'geom', %s, XMLPARSE(DOCUMENT %s), "
                        "XMLPARSE(DOCUMENT %s), %s, %s, 'Polygon')",
                        (schema, name, str(title)[:60], qml.split("\n", 1)[1] if qml.startswith("<!DOCTYPE") else qml,
                         sld, i == 0, f"geoplan: {title}"))
        conn.commit()
    except GeoplanError:
        conn.rollback()
        raise
    except psycopg.Error as exc:
        conn.rollback()
        raise _error(src, full, exc) from None
    finally:
        conn.close()
    return {"kind": "postgis", "server": src.server, "database": src.database, "table": full, "rows": len(rows),
            "sha256": sha, "styles": len(styles or [])}
