"""Writers: report (HTML, PDF), map, Excel, GeoPackage, manifest; optionally the QGIS project
(``output.qgis_project``), a PostGIS table (``output.postgis``) and the WFS answers read
(``provenienz/wfs/``).

:func:`write_outputs` writes everything into a temporary folder beside the
target and moves it into place at the end, so a failed run leaves either no
output folder or the previous complete one, never a partial one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from geoplan.report.outdir import MARKER, check_target, locked_target, new_tmp, os_error, swap_in

OUTPUT_FILES = ["bericht.html", "karte.html", "verteilung.xlsx", "ergebnis.gpkg", "manifest.json"]


def protected_paths(config) -> list[Path]:
    """Inputs of ``config`` and its folder: an output folder may never hold one of them."""
    paths = [p for p in config.input_paths() if p is not None]
    base = getattr(config, "base_dir", None)
    if base is not None:
        paths.append(Path(base))
    return paths


def prepare_out_dir(out_dir: Path, force: bool, protected=()) -> Path:
    """Refuse an output folder early (see :mod:`geoplan.report.outdir`); return the resolved target."""
    return check_target(out_dir, force, protected)


def write_outputs(result, out_dir: str | Path, *, force: bool = False, lang: str = "de", pdf: bool | None = None) -> list[Path]:
    """Write all outputs of ``result`` into ``out_dir`` atomically; return the file paths."""
    from geoplan.report import gpkg, html, i18n, xlsx
    from geoplan.report.published import build_published
    from geoplan.provenance import build_manifest, package_versions

    protected = protected_paths(result.config)
    i18n.set_labels(result)  # exposure, its label and formula, group or none: from the config
    with locked_target(out_dir, force, protected) as target:
        tmp = new_tmp(target)
        pending = None
        try:
            pub = build_published(result, lang=lang)
            # the PDF (the slowest writer) is laid out by a second process while this one writes the rest
            written, pending = html.write_report(result, pub, tmp, lang=lang, background=True,
                                                 pdf=result.config.output.pdf if pdf is None else pdf)
            written += html.write_map(result, pub, tmp, lang=lang)
            written.append(xlsx.write_xlsx(result, pub, tmp / "verteilung.xlsx", lang=lang))
            written.append(gpkg.write_gpkg(result, pub, tmp / "ergebnis.gpkg", lang=lang))
            if pending is not None:  # the PostGIS table is written last: only when the PDF succeeded
                pending.wait()
                pending = None
            extra, pg_info = _gis_outputs(result, pub, tmp, lang)
            manifest = build_manifest(result, [p.name for p in written] + extra + ["manifest.json"],
                                      package_versions())
            if pg_info is not None:
                manifest["postgis_output"] = pg_info
            if getattr(result, "settlement", None) is not None:
                manifest["settlement"] = result.settlement.manifest()
            (tmp / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
                                               encoding="utf-8")
            swap_in(tmp, target, force, protected)
        except OSError as exc:
            raise os_error(exc, target) from None
        finally:
            if pending is not None:  # an error or an interrupt before the PDF was waited for
                pending.cancel()
            shutil.rmtree(tmp, ignore_errors=True)
    return sorted(p for p in target.iterdir() if p.name != MARKER)


def _gis_outputs(result, pub, tmp: Path, lang: str) -> tuple[list[str], dict | None]:
    """The QGIS project, the WFS answers of the run (``provenienz/wfs/``) and the PostGIS table.

    Called inside the temporary folder, after ``ergebnis.gpkg``; the PostGIS
    table is written last, so a failure before it leaves the database as it was.
    Returns the extra output files (relative to the folder) and the manifest
    entry of the PostGIS table (server, database, table, rows, SHA-256; no
    user, no password) or None.
    """
    from geoplan.report import gpkg
    from geoplan.report import qgis as qgis_writer

    cfg = result.config
    extra: list[str] = []
    need_layer = cfg.output.qgis_project or cfg.output.postgis is not None
    layer = gpkg.result_layer(result, pub) if need_layer else None
    aliases = {c: (de if lang == "de" else en) for c, de, en, _ in pub.columns}
    title = f"{cfg.title} – {cfg.region} {cfg.budget_year}"
    if cfg.output.qgis_project:
        qgis_writer.write_bezirke_layer(tmp / "ergebnis.gpkg", layer, stamp=f"{cfg.budget_year}-01-01T00:00:00.000Z")
        qgz = qgis_writer.write_qgis_project(tmp / "ergebnis.qgz", tmp / "ergebnis.gpkg", frame=layer, title=title,
                                             simulated=result.simulated, aliases=aliases, lang=lang,
                                             corridor=cfg.allocation.corridor)
        extra.append(qgz.name)
    remote = getattr(result, "remote", None)
    cache = getattr(remote, "cache_dir", None)
    if cache is not None and Path(cache).is_dir() and any(Path(cache).iterdir()):
        shutil.copytree(cache, tmp / "provenienz" / "wfs")
        extra += [p.relative_to(tmp).as_posix() for p in sorted((tmp / "provenienz").rglob("*")) if p.is_file()]
    pg_info = None
    if cfg.output.postgis is not None:
        from geoplan.report.postgis import write_postgis

        pg = cfg.output.postgis
        pg_info = write_postgis(layer, pg.connection, pg.table, pg.if_exists,
                                qgis_writer.styles_for(layer, aliases=aliases, lang=lang,
                                                       corridor=cfg.allocation.corridor), description=title)
    return extra, pg_info
