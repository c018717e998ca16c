"""Writers: report (HTML, PDF), map, Excel, GeoPackage, manifest; optionally the QGIS project
(``output.qgis_project``), a PostGIS table (``output.postgis``) and the WFS answers read
(``provenienz/wfs/``).

:func:`write_outputs` writes everything into a temporary folder beside the
target and moves it into place at the end, so a failed run leaves either no
output folder or the previous complete one, never a partial one.
"""

from __future__ import annotations

import gc
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


def write_outputs(result, out_dir: str | Path, *, force: bool = False, lang: str = "de", pdf: bool | None = None,
                  pdf_worker=None, progress=None) -> list[Path]:
    """Write all outputs of ``result`` into ``out_dir`` atomically; return the file paths.

    ``pdf_worker``: a :class:`geoplan.report.pdf.PdfWorker` started earlier (the
    CLI starts it before the pipeline, so WeasyPrint is imported meanwhile; with
    ``figures=True`` it also draws some of the report's figures);
    without one it is started here, first thing. It is ended on every error.
    ``progress(key)``: called before each writer with one of :data:`WRITERS`'
    keys (the CLI shows a line per writer) and with ``"done"`` at the end.
    """
    from geoplan.report import pdf as pdf_writer

    cfg = result.config
    want_pdf = cfg.output.pdf if pdf is None else pdf
    worker = pdf_worker
    if worker is not None and not want_pdf:
        worker.cancel()
        worker = None
    try:
        if want_pdf and worker is None:
            # imports WeasyPrint while this process draws the figures; started this late it would be ready to draw
            # figures only when most are drawn, so it loads no matplotlib (the CLI's worker does, see pdf.PdfWorker)
            worker = pdf_writer.PdfWorker(figures=False)
        # the objects alive now (the result, the loaded libraries) outlive the writers: the garbage collector
        # leaves them out of its full collections meanwhile (0.3 s of a Berlin write went to scanning them)
        gc.freeze()
        return _write_outputs(result, out_dir, force=force, lang=lang, want_pdf=want_pdf, worker=worker,
                              progress=progress or (lambda key: None))
    finally:
        gc.unfreeze()
        if worker is not None:
            worker.cancel()  # no-op when the PDF was waited for; kills it after an error or an interrupt


#: The writers in the order :func:`write_outputs` runs them (keys of the progress hook).
WRITERS = ("report", "map", "xlsx", "gpkg", "pdf_wait", "gis", "manifest")


def _write_outputs(result, out_dir, *, force, lang, want_pdf, worker, progress) -> list[Path]:
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
            # the PDF (the slowest writer) is laid out by the second process while this one writes the rest
            progress("report")
            written, pending = html.write_report(result, pub, tmp, lang=lang, background=True, pdf=want_pdf,
                                                 worker=worker, max_areas=result.config.output.max_areas_in_report)
            progress("map")
            written += html.write_map(result, pub, tmp, lang=lang)
            progress("xlsx")
            written.append(xlsx.write_xlsx(result, pub, tmp / "verteilung.xlsx", lang=lang))
            progress("gpkg")
            written.append(gpkg.write_gpkg(result, pub, tmp / "ergebnis.gpkg", lang=lang))
            if pending is not None:  # the PostGIS table is written last: only when the PDF succeeded
                progress("pdf_wait")
                pending.wait()
                pending = None
            if _has_gis_outputs(result):  # no line for outputs the config does not ask for
                progress("gis")
            extra, pg_info = _gis_outputs(result, pub, tmp, lang)
            progress("manifest")
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
    progress("done")
    return sorted(p for p in target.iterdir() if p.name != MARKER)


def _has_gis_outputs(result) -> bool:
    """Whether :func:`_gis_outputs` writes anything for this run."""
    cfg = result.config
    cache = getattr(getattr(result, "remote", None), "cache_dir", None)
    return bool(cfg.output.qgis_project or cfg.output.postgis is not None
                or (cache is not None and Path(cache).is_dir() and any(Path(cache).iterdir())))


def _gis_outputs(result, pub, tmp: Path, lang: str) -> tuple[list[str], dict | None]:
    """The QGIS project, the WFS answers of the run (``provenienz/wfs/``) and the PostGIS table.

    Called inside the temporary folder, after ``ergebnis.gpkg``; the PostGIS
    table is written last, so a failure before it leaves the database as it was.
    Returns the extra output files (relative to the folder) and the manifest
    entry of the PostGIS table (server, database, table, rows, SHA-256; no
    user, no password) or None.
    """
    from geoplan.report import qgis as qgis_writer
    from geoplan.report.gpkg import layer_aliases, styled_layer
    from geoplan.report.styles import layer_styles

    cfg = result.config
    extra: list[str] = []
    need_layer = cfg.output.qgis_project or cfg.output.postgis is not None
    layer, styles = None, []
    if need_layer:  # the GeoPackage's layer and styles (the same classes as the report's maps)
        layer, layers = styled_layer(result, pub, lang)
        _words, aliases = layer_aliases(result, pub, layer, lang)
        styles = layer_styles(layer, layers, lang=lang, aliases=aliases)
    title = f"{cfg.title} – {cfg.region} {cfg.budget_year}"
    if cfg.output.qgis_project:
        qgis_writer.write_bezirke_layer(tmp / "ergebnis.gpkg", layer, stamp=f"{cfg.budget_year}-01-01T00:00:00.000Z")
        qgz = qgis_writer.write_qgis_project(tmp / "ergebnis.qgz", tmp / "ergebnis.gpkg", frame=layer, styles=styles,
                                             title=title, simulated=result.simulated, lang=lang)
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
        pg_info = write_postgis(layer, pg.connection, pg.table, pg.if_exists, styles, description=title)
    return extra, pg_info
