"""Writers: report (HTML, PDF), map, Excel, GeoPackage, manifest.

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
        try:
            pub = build_published(result, lang=lang)
            written = []
            written += html.write_report(result, pub, tmp, lang=lang,
                                         pdf=result.config.output.pdf if pdf is None else pdf)
            written += html.write_map(result, pub, tmp, lang=lang)
            written.append(xlsx.write_xlsx(result, pub, tmp / "verteilung.xlsx", lang=lang))
            written.append(gpkg.write_gpkg(result, pub, tmp / "ergebnis.gpkg"))
            manifest = build_manifest(result, [p.name for p in written] + ["manifest.json"], package_versions())
            if getattr(result, "settlement", None) is not None:
                manifest["settlement"] = result.settlement.manifest()
            (tmp / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
                                               encoding="utf-8")
            swap_in(tmp, target, force, protected)
        except OSError as exc:
            raise os_error(exc, target) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return sorted(p for p in target.iterdir() if p.name != MARKER)
