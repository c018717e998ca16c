"""Writers: report (HTML, PDF), map, Excel, GeoPackage, manifest.

:func:`write_outputs` writes everything into a temporary folder beside the
target and moves it into place at the end, so a failed run leaves either no
output folder or the previous complete one, never a partial one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from geoplan.errors import GeoplanError

OUTPUT_FILES = ["bericht.html", "karte.html", "verteilung.xlsx", "ergebnis.gpkg", "manifest.json"]


def prepare_out_dir(out_dir: Path, force: bool) -> None:
    """Refuse to write into a non-empty folder unless ``force``."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise GeoplanError(
            "Der Ausgabepfad ist eine Datei, kein Ordner.",
            file=out_dir,
            hint="Einen Ordnernamen für --out angeben.",
            message_en="The output path is a file, not a folder.",
        )
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise GeoplanError(
            "Der Ausgabeordner ist nicht leer; geoplan überschreibt nichts ungefragt.",
            file=out_dir,
            hint="Einen neuen Ordner wählen oder --force angeben, um ihn zu ersetzen.",
            message_en="The output folder is not empty; geoplan does not overwrite without being asked.",
            hint_en="Choose a new folder or pass --force to replace it.",
        )


def write_outputs(result, out_dir: str | Path, *, force: bool = False, lang: str = "de", pdf: bool | None = None) -> list[Path]:
    """Write all outputs of ``result`` into ``out_dir`` atomically; return the file paths."""
    from geoplan.report import gpkg, html, xlsx
    from geoplan.report.published import build_published
    from geoplan.provenance import build_manifest, package_versions

    out_dir = Path(out_dir)
    prepare_out_dir(out_dir, force)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    # mkdtemp makes the folder private (0700); outputs get the user's usual permissions
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)
    try:
        pub = build_published(result, lang=lang)
        written = []
        written += html.write_report(result, pub, tmp, lang=lang, pdf=result.config.output.pdf if pdf is None else pdf)
        written += html.write_map(result, pub, tmp, lang=lang)
        written.append(xlsx.write_xlsx(result, pub, tmp / "verteilung.xlsx", lang=lang))
        written.append(gpkg.write_gpkg(result, pub, tmp / "ergebnis.gpkg"))
        manifest = build_manifest(result, [p.name for p in written] + ["manifest.json"], package_versions())
        (tmp / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
                                           encoding="utf-8")
        if out_dir.exists():
            backup = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            backup.rmdir()
            out_dir.rename(backup)
            tmp.rename(out_dir)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return sorted(out_dir.iterdir())
