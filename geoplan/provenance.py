"""Where a result came from: input files with SHA-256, package versions, the manifest."""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from geoplan import __version__


@dataclass
class InputFile:
    """One input of a run, as the manifest and the report's Datengrundlage list it."""

    role: str
    path: Path | None                 # a file; None for a PostGIS/WFS input
    sha256: str                       # of the file, or of the rows/answers as read
    label: str | None = None
    source: str | None = None
    licence: str | None = None
    reference_date: str | None = None
    rows: int | None = None
    qa: str = ""                      # what reading it found, German ("ohne Befund", "53.840 von 53.882 Zeilen gezählt")
    location: str | None = None       # PostGIS/WFS: 'host:port/db schema.table' or 'URL typename'; no user/password
    qa_en: str = ""                   # the same in English (every input_file/remote_input with qa= gives it)

    def role_text(self, lang: str = "de") -> str:
        """The role in ``lang`` (the vocabulary's ``role.*`` terms)."""
        from geoplan.report.vocabulary import label

        return label("role." + self.role, lang, self.role)

    def qa_text(self, lang: str = "de") -> str:
        """What reading the input found, in ``lang`` (German where no English was given)."""
        return self.qa_en if (lang == "en" and self.qa_en) else self.qa

    @property
    def name(self) -> str:
        """Short name for tables: the file name, or where a PostGIS/WFS input was read."""
        return self.path.name if self.path is not None else (self.location or "")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def input_file(role: str, path: Path, **kw) -> InputFile:
    """An :class:`InputFile` with its hash computed."""
    return InputFile(role, path, sha256_of(path), **kw)


def package_versions() -> dict[str, str]:
    names = ["geoplan", "numpy", "pandas", "geopandas", "shapely", "pyogrio", "pyproj", "scikit-learn",
             "statsmodels", "libpysal", "esda", "mapclassify", "folium", "matplotlib", "openpyxl", "pydantic",
             "jinja2", "weasyprint", "numpyro", "jax", "jaxlib"]
    out = {"python": platform.python_version()}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = __version__ if n == "geoplan" else "nicht installiert"
    return out


def sensitivity_manifest(sens) -> dict | None:
    """The weight-sensitivity Monte Carlo (:class:`geoplan.stages.sensitivity.SensitivityResult`) as JSON data."""
    if sens is None:
        return None
    t = sens.table
    return {
        "n_draws": int(sens.n_draws),
        "concentration": float(sens.concentration),
        "seed": int(sens.seed),
        "median_range_pct": float(t["range_pct"].median()),
        "max_range_pct": float(t["range_pct"].max()),
        "per_area": json.loads(t.to_json(orient="records", double_precision=10)),
    }


def _public_note(d: dict, base) -> dict:
    from geoplan.report.vocabulary import humanize, public_path

    if d.get("file"):
        d["file"] = public_path(d["file"], base)
    for k, lang in (("message", "de"), ("message_en", "en"), ("location", "de")):
        if isinstance(d.get(k), str):
            d[k] = humanize(d[k], lang, base, names={})  # paths only need it; labels make it plainer too
    return d


def build_manifest(result, files: list[str], versions: dict) -> dict:
    """The run's record. Input paths and the QA notes' files are relative to the config's folder."""
    from geoplan.report.vocabulary import public_path

    cfg = result.config
    base = getattr(cfg, "base_dir", None)
    return {
        "geoplan": versions.get("geoplan"),
        "run_started": result.started,
        "run_finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": cfg.model_dump(mode="json", exclude={"base_dir"}),
        # paths relative to the config's folder: no machine path in a published file
        "inputs": [
            {"role": i.role, "path": public_path(i.path, base) if i.path is not None else None, "sha256": i.sha256,
             "rows": i.rows, "qa": i.qa, **({"qa_en": i.qa_en} if i.qa_en else {}),
             **({"location": i.location} if i.location else {})}
            for i in result.inputs
        ],
        "outputs": sorted(files),
        "versions": versions,
        "simulated_hze": result.simulated,
        "qa_notes": [_public_note(n.to_dict(), base) for n in result.notes],
        "sensitivity": sensitivity_manifest(getattr(result, "sensitivity", None)),
        "totals": {
            "budget_eur": int(result.frame["budget_eur"].sum()),
            "sozialraeume": int(len(result.frame)),
        },
    }
