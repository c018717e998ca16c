"""Real GIS services for the tests: PostgreSQL + PostGIS, a MapServer WFS, QGIS.

Nothing here is a stand-in. :func:`postgis_server` runs Debian's ``initdb`` and
``pg_ctl`` in a temporary folder (as the unprivileged user ``nobody`` when the
tests run as root, because PostgreSQL refuses to run as root), listening on a
free port on 127.0.0.1 and on a unix socket in that folder, with password
authentication (scram-sha-256) for TCP. :func:`mapserver_wfs` serves a
MapServer mapfile through Debian's ``mapserv`` CGI binary behind a tiny HTTP
server on 127.0.0.1.

Where a package is missing the tests skip with the reason; with the matching
``GEOPLAN_REQUIRE_POSTGIS`` / ``GEOPLAN_REQUIRE_WFS`` / ``GEOPLAN_REQUIRE_QGIS``
set (``.ci/run`` sets them) they fail instead.
"""

from __future__ import annotations

import functools
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BERLIN_BOUNDARIES = ROOT / "boundaries" / "berlin"
BERLIN_INDICATORS = ROOT / "indicators" / "berlin"


def missing(flag: str, reason: str):
    """Skip with ``reason``, or fail when the CI flag ``flag`` is set."""
    if os.environ.get(flag):
        pytest.fail(f"{flag} ist gesetzt, aber: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# PostgreSQL + PostGIS


def pg_bindir() -> Path | None:
    for cand in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(cand) / "initdb").exists() and (Path(cand) / "pg_ctl").exists():
            return Path(cand)
    return None


def postgis_available(bindir: Path) -> bool:
    version = bindir.parent.name
    return bool(glob.glob(f"/usr/share/postgresql/{version}/extension/postgis.control"))


@dataclass
class PostGIS:
    """A running PostgreSQL cluster."""

    datadir: Path
    sockdir: Path
    port: int
    user: str
    password: str
    bindir: Path
    run_as: str | None

    def dsn(self, dbname: str = "geoplan", *, password: bool = False, host: str = "127.0.0.1") -> str:
        """A libpq key/value string; with ``password=True`` the password is in it."""
        s = f"host={host} port={self.port} dbname={dbname} user={self.user}"
        return s + (f" password={self.password}" if password else "")

    def env(self) -> dict:
        """Environment for a client that authenticates through PGPASSWORD."""
        return {**os.environ, "PGPASSWORD": self.password}

    def psql(self, dbname: str, sql: str) -> str:
        """Run SQL as the superuser over the unix socket (trust auth)."""
        out = subprocess.run(
            [str(self.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-h", str(self.sockdir),
             "-p", str(self.port), "-U", self.user, "-d", dbname, "-c", sql],
            capture_output=True, text=True, check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(out.stderr)
        return out.stdout

    def createdb(self, name: str, postgis: bool = True) -> None:
        self.psql("postgres", f'CREATE DATABASE "{name}"')
        if postgis:
            self.psql(name, "CREATE EXTENSION postgis")

    def ogr2ogr(self, dbname: str, src: Path, table: str, *extra: str) -> None:
        """Load a file into ``table`` with GDAL's ogr2ogr (as the city GIS would)."""
        cmd = ["ogr2ogr", "-f", "PostgreSQL", f"PG:host={self.sockdir} port={self.port} dbname={dbname} "
               f"user={self.user}", str(src), "-nln", table, "-lco", "GEOMETRY_NAME=geom", *extra]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"ogr2ogr {src}: {out.stderr}")

    def stop(self) -> None:
        _as_user(self.run_as, [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "stop"],
                 check=False)


def _as_user(user: str | None, cmd: list[str], check: bool = True) -> subprocess.CompletedProcess:
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if check and out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {out.stdout}\n{out.stderr}")
    return out


def start_postgis(base: Path) -> PostGIS:
    bindir = pg_bindir()
    if bindir is None:
        missing("GEOPLAN_REQUIRE_POSTGIS", "PostgreSQL-Server fehlt (Debian: apt install postgresql postgis)")
    if not postgis_available(bindir):
        missing("GEOPLAN_REQUIRE_POSTGIS", "PostGIS fehlt (Debian: apt install postgresql-15-postgis-3)")
    if shutil.which("ogr2ogr") is None:
        missing("GEOPLAN_REQUIRE_POSTGIS", "ogr2ogr fehlt (Debian: apt install gdal-bin)")
    run_as = None
    if os.geteuid() == 0:
        run_as = "nobody"
        pwd.getpwnam(run_as)
    base.mkdir(parents=True, exist_ok=True)
    datadir, sockdir = base / "data", base / "sock"
    sockdir.mkdir()
    user = "geoplan_admin"
    password = "Pw-" + secrets.token_hex(12)  # the tests grep every output for it
    pwfile = base / "pw"
    pwfile.write_text(password + "\n")
    if run_as:
        for p in (base, sockdir, pwfile):
            shutil.chown(p, run_as)
    _as_user(run_as, [str(bindir / "initdb"), "-D", str(datadir), "-U", user, "--pwfile", str(pwfile),
                      "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
    pwfile.unlink()
    port = free_port()
    opts = f"-c port={port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={sockdir} -c fsync=off"
    _as_user(run_as, [str(bindir / "pg_ctl"), "-D", str(datadir), "-o", opts, "-l", str(base / "server.log"),
                      "-w", "-t", "60", "start"])
    return PostGIS(datadir, sockdir, port, user, password, bindir, run_as)


@pytest.fixture(scope="session")
def postgis_server():
    base = Path(tempfile.mkdtemp(prefix="geoplan-pg-"))
    os.chmod(base, 0o755)
    server = start_postgis(base / "pg")
    try:
        server.createdb("geoplan")
        load_berlin(server, "geoplan")
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def load_berlin(server: PostGIS, dbname: str) -> None:
    """The Berlin example into schema ``berlin``, the way a city GIS keeps it.

    Boundaries with ogr2ogr as they are (EPSG:25833); the CSV tables with
    ogr2ogr as text columns, then typed in SQL (numbers as numeric, keys as text
    with their leading zeros, as a GIS department stores them).
    """
    server.psql(dbname, "CREATE SCHEMA berlin")
    server.ogr2ogr(dbname, BERLIN_BOUNDARIES / "prognoseraeume_2021.geojson", "berlin.prognoseraeume")
    server.ogr2ogr(dbname, BERLIN_BOUNDARIES / "bezirke.geojson", "berlin.bezirke")
    for csv, table in [
        ("einwohner_plr_2022-06.csv", "einwohner_plr"),
        ("mss_2021_index_indikatoren.csv", "mss_index"),
        ("mss_2021_kontext_indikatoren.csv", "mss_kontext"),
        ("lor_2021_plr_schluessel.csv", "lor_schluessel"),
    ]:
        server.ogr2ogr(dbname, BERLIN_INDICATORS / csv, f"berlin.{table}", "-lco", "LAUNDER=NO",
                       "-oo", "EMPTY_STRING_AS_NULL=YES")
        # in one statement per table: suppressed cells ("–") become NULL, columns whose every
        # non-empty cell is a plain number without leading zero become numeric
        server.psql(dbname, f"""DO $$
DECLARE c text; ok boolean;
BEGIN
  FOR c IN SELECT column_name FROM information_schema.columns
           WHERE table_schema = 'berlin' AND table_name = '{table}' AND column_name <> 'ogc_fid' LOOP
    EXECUTE format('UPDATE berlin.{table} SET %I = NULL WHERE %I IN (''–'', ''-'', ''.'')', c, c);
    EXECUTE format('SELECT bool_and(%I ~ ''^-?(0|[1-9][0-9]*)(\\.[0-9]+)?$'') FROM berlin.{table} '
                   'WHERE %I IS NOT NULL', c, c) INTO ok;
    IF ok THEN
      EXECUTE format('ALTER TABLE berlin.{table} ALTER COLUMN %I TYPE numeric USING %I::numeric', c, c);
    END IF;
  END LOOP;
END $$""")
        server.psql(dbname, f"ALTER TABLE berlin.{table} DROP COLUMN ogc_fid")


# --------------------------------------------------------------------------
# MapServer WFS


def mapserv_binary() -> str | None:
    for cand in ("/usr/lib/cgi-bin/mapserv", shutil.which("mapserv")):
        if cand and Path(cand).exists():
            return cand
    return None


class _CGIHandler(BaseHTTPRequestHandler):
    mapserv: str = ""
    config: str = ""
    delay: float = 0.0
    fail_status: int = 0
    requests: list = []

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        cls = type(self)
        path, _, query = self.path.partition("?")
        cls.requests.append(self.path)
        if cls.delay:
            time.sleep(cls.delay)
        if cls.fail_status:
            body = b"<html><body><h1>Internal Server Error</h1></body></html>"
            self.send_response(cls.fail_status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "REQUEST_METHOD": "GET", "QUERY_STRING": query,
               "MAPSERVER_CONFIG_FILE": cls.config, "GATEWAY_INTERFACE": "CGI/1.1",
               "SERVER_NAME": "127.0.0.1", "SERVER_PORT": str(self.server.server_address[1]),
               "SCRIPT_NAME": path, "SERVER_PROTOCOL": "HTTP/1.1"}
        out = subprocess.run([cls.mapserv], env=env, capture_output=True, check=False, timeout=120)
        head, sep, body = out.stdout.partition(b"\r\n\r\n")
        if not sep:
            head, sep, body = out.stdout.partition(b"\n\n")
        status = 200
        headers = []
        for line in head.decode("latin-1").splitlines():
            k, _, v = line.partition(":")
            if k.lower() == "status":
                status = int(v.strip().split()[0])
            elif k:
                headers.append((k, v.strip()))
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@dataclass
class WFSServer:
    url: str
    httpd: ThreadingHTTPServer
    handler: type
    thread: threading.Thread

    @property
    def requests(self) -> list:
        return self.handler.requests

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# Planungsraum tables as a Geoportal serves them: XML-safe field names, a point per row
# (the WFS needs a geometry; the table reader ignores it).
WFS_TABLES = {
    "einwohner_plr": ("einwohner_plr_2022-06.csv", [], 'SELECT "PLR-ID" AS PLR_ID, Gesamt, unter6, '
                      '"6-15" AS ew_6_15, "15-18" AS ew_15_18, "18-27" AS ew_18_27, "27-45" AS ew_27_45, '
                      '"45-55" AS ew_45_55, "55-65" AS ew_55_65, "65undmehr" AS ew_65plus'),
    "mss_index": ("mss_2021_index_indikatoren.csv", ["-oo", "AUTODETECT_TYPE=YES", "-oo",
                  "QUOTED_FIELDS_AS_STRING=YES"], "SELECT PLR_ID, S1, S3, S4, D1, D3, D4, KOM"),
    "mss_kontext": ("mss_2021_kontext_indikatoren.csv", ["-oo", "AUTODETECT_TYPE=YES", "-oo",
                    "QUOTED_FIELDS_AS_STRING=YES"], "SELECT PLR_ID, KI_01, KI_02, KOM"),
}


def berlin_wfs_data(folder: Path) -> Path:
    """GeoPackage with the Berlin Prognoseräume and Planungsraum tables for MapServer."""
    gpkg = folder / "berlin_wfs.gpkg"
    cmd = ["ogr2ogr", "-f", "GPKG", str(gpkg), str(BERLIN_BOUNDARIES / "prognoseraeume_2021.geojson"),
           "-nln", "prognoseraeume", "-lco", "GEOMETRY_NAME=geom"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(out.stderr)
    for layer, (csv, opts, select) in WFS_TABLES.items():
        stem = Path(csv).stem
        sql = f'{select}, MakePoint(390000, 5820000, 25833) AS geom FROM "{stem}"'
        cmd = ["ogr2ogr", "-f", "GPKG", "-update", str(gpkg), str(BERLIN_INDICATORS / csv), *opts,
               "-dialect", "sqlite", "-sql", sql, "-nln", layer, "-a_srs", "EPSG:25833", "-nlt", "POINT"]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode:
            raise RuntimeError(f"ogr2ogr {csv}: {out.stderr}")
    return gpkg


def _mapfile(gpkg: Path, url: str, max_features: int = 10000) -> str:
    def layer(name, kind, title):
        return f'''
  LAYER
    NAME "{name}"
    TYPE {kind}
    STATUS ON
    CONNECTIONTYPE OGR
    CONNECTION "{gpkg}"
    DATA "{name}"
    PROJECTION "init=epsg:25833" END
    METADATA
      "wfs_title" "{title}"
      "gml_include_items" "all"
      "gml_exclude_items" "fid"
      "gml_types" "auto"
      "wfs_use_default_extent_for_getfeature" "false"
    END
  END'''

    layers = layer("prognoseraeume", "POLYGON", "LOR-Prognoseräume 2021") + "".join(
        layer(n, "POINT", n) for n in WFS_TABLES)
    return f'''MAP
  NAME "geoplan_test"
  EXTENT 360000 5800000 420000 5840000
  PROJECTION "init=epsg:25833" END
  WEB
    METADATA
      "wfs_title" "geoplan Test-WFS"
      "wfs_onlineresource" "{url}?"
      "wfs_srs" "EPSG:25833 EPSG:4326 EPSG:3857"
      "wfs_enable_request" "*"
      "wfs_maxfeatures" "{max_features}"
    END
  END{layers}
END
'''


def require_wfs() -> str:
    """The mapserv binary; skips (or fails, with GEOPLAN_REQUIRE_WFS) without MapServer or ogr2ogr."""
    binary = mapserv_binary()
    if binary is None:
        missing("GEOPLAN_REQUIRE_WFS", "MapServer fehlt (Debian: apt install cgi-mapserver mapserver-bin)")
    if shutil.which("ogr2ogr") is None:
        missing("GEOPLAN_REQUIRE_WFS", "ogr2ogr fehlt (Debian: apt install gdal-bin)")
    return binary


def start_wfs(folder: Path, max_features: int = 10000, data: Path | None = None) -> WFSServer:
    """MapServer (Debian's mapserv CGI) serving the Berlin data on 127.0.0.1, at most ``max_features``
    features per answer (the server's own limit, whatever a client asks for). ``data``: a GeoPackage
    :func:`berlin_wfs_data` wrote before (MapServer only reads it, so servers can share one); without
    it the GeoPackage is written into ``folder``."""
    binary = require_wfs()
    folder.mkdir(parents=True, exist_ok=True)
    gpkg = berlin_wfs_data(folder) if data is None else Path(data)
    conf = folder / "mapserver.conf"
    handler = type("Handler", (_CGIHandler,), {"mapserv": binary, "config": str(conf), "requests": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    url = f"http://127.0.0.1:{httpd.server_address[1]}/wfs"
    (folder / "berlin.map").write_text(_mapfile(gpkg, url, max_features), encoding="utf-8")
    conf.write_text(f'CONFIG\n  ENV\n    MS_MAPFILE "{folder / "berlin.map"}"\n  END\nEND\n', encoding="utf-8")
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    return WFSServer(url, httpd, handler, thread)


# --------------------------------------------------------------------------
# QGIS


@functools.cache
def qgis_python() -> str | None:
    """The system Python that has Debian's python3-qgis (the venv does not see it); asked once per process."""
    for py in ("/usr/bin/python3",):
        if Path(py).exists() and subprocess.run([py, "-c", "import qgis.core"], capture_output=True,
                                                env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
                                                check=False).returncode == 0:
            return py
    return None


def run_qgis(script: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    py = qgis_python()
    if py is None:
        missing("GEOPLAN_REQUIRE_QGIS", "QGIS fehlt (Debian: apt install python3-qgis qgis-providers)")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=tempfile.mkdtemp(prefix="geoplan-xdg-"))
    return subprocess.run([py, "-c", script, *args], capture_output=True, text=True, env=env, timeout=timeout,
                          check=False)


__all__ = ["missing", "postgis_server", "start_postgis", "require_wfs", "start_wfs", "run_qgis", "qgis_python", "PostGIS",
           "WFSServer", "free_port", "sys"]


# --------------------------------------------------------------------------
# `geoplan run` end to end

EXAMPLE = ROOT / "geoplan" / "examples" / "berlin.yaml"


def example_config() -> dict:
    """berlin.yaml with absolute paths (to be edited and written elsewhere)."""
    import yaml

    raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    base = EXAMPLE.parent

    def absolute(p):
        return str((base / p).resolve())

    raw["boundaries"]["path"] = absolute(raw["boundaries"]["path"])
    raw["indicators"]["catalogue"] = absolute(raw["indicators"]["catalogue"])
    for t in raw["indicators"]["tables"]:
        t["path"] = absolute(t["path"])
    raw["indicators"]["aggregate"]["key_table"] = absolute(raw["indicators"]["aggregate"]["key_table"])
    if raw["hze"].get("case_list"):
        raw["hze"]["case_list"]["path"] = absolute(raw["hze"]["case_list"]["path"])
    return raw


def geoplan_cli(*args: str, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    code = "import sys; from geoplan.cli import main; sys.exit(main(sys.argv[1:]))"
    e = {**(env or os.environ), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=e,
                          timeout=timeout, check=False)


def geoplan_main(capfd, *args: str) -> subprocess.CompletedProcess:
    """``geoplan ARGS`` in this process: the CLI's ``main()`` as the console script calls it (the test worker has
    imported geoplan already, a new interpreter would spend some 3 s importing it again). Everything written to
    file descriptors 1 and 2, by this process and the PDF process it starts, is captured, as ``geoplan_cli``
    captures a process's output. Tests of the process itself (signals, exit status) use ``geoplan_cli``."""
    from geoplan.cli import main

    capfd.readouterr()  # what earlier code of the test printed is not this run's output
    code = main(list(args))
    out, err = capfd.readouterr()
    return subprocess.CompletedProcess(["geoplan", *args], code, out, err)


def budgets(out_dir: Path) -> dict:
    import pyogrio

    df = pyogrio.read_dataframe(out_dir / "ergebnis.gpkg", layer="sozialraeume", read_geometry=False)
    return dict(zip(df["key"].astype(str), df["budget_eur"].astype(int)))


def _pdf_streams(data: bytes) -> list[bytes]:
    """The decompressed content of every Flate-encoded stream of a PDF (text, XMP metadata, fonts' names …):
    a string in a compressed stream is not in the file's bytes."""
    import re
    import zlib

    out = []
    for m in re.finditer(rb"stream\r?\n", data):
        try:
            out.append(zlib.decompressobj().decompress(data[m.end():]))
        except zlib.error:
            continue  # not Flate (an image's DCT, an uncompressed stream: searched as the file's bytes)
    return out


def grep_tree(folder: Path, needle: str) -> list[str]:
    """Files under ``folder`` that contain ``needle``: in their bytes, inside .zip/.qgz/.xlsx members, and in a
    PDF's decompressed streams and in the text ``pdftotext`` reads from it."""
    import zipfile

    hits = []
    raw = needle.encode()
    for f in sorted(folder.rglob("*")):
        if not f.is_file():
            continue
        data = f.read_bytes()
        if raw in data:
            hits.append(str(f))
        if zipfile.is_zipfile(f):
            with zipfile.ZipFile(f) as z:
                hits += [f"{f}!{n}" for n in z.namelist() if raw in z.read(n)]
        if data.startswith(b"%PDF"):
            if any(raw in s for s in _pdf_streams(data)):
                hits.append(f"{f} (stream)")
            text = subprocess.run(["pdftotext", str(f), "-"], capture_output=True, check=True).stdout
            if raw in text:
                hits.append(f"{f} (text)")
    return hits
