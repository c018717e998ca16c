"""Budget models of German municipalities as configuration presets.

One YAML file per model from the source document (ISSAB expert report on
Sozialraumbudgets, chapter 3) plus an ISA indicator model. Every file holds
``title``, ``source`` (chapter of the source), ``description`` (German),
``allocation`` (valid as :class:`geoplan.stages.allocate.AllocationSpec`) and
``settlement`` (valid as :class:`geoplan.stages.settlement.SettlementSpec`).

``allocation.total_eur`` is sized for the built-in Berlin example (58
Prognoseräume); for a real Jugendamt it is replaced by the local total.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from geoplan.errors import GeoplanError

__all__ = ["PresetInfo", "list_presets", "load_preset", "preset_path", "PRESET_DIR"]

PRESET_DIR = Path(__file__).resolve().parent
_REQUIRED = ("title", "source", "description", "allocation", "settlement")


@dataclass(frozen=True)
class PresetInfo:
    """Name (file stem), title and German description of a preset."""

    name: str
    title: str
    description: str
    source: str = ""


def _names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def preset_path(name: str) -> Path:
    """Path of the preset's YAML file; GeoplanError listing the names when unknown."""
    key = str(name).strip().lower().replace("-", "_").replace(" ", "_")
    path = PRESET_DIR / f"{key}.yaml"
    if not path.is_file():
        raise GeoplanError(
            f"Unbekanntes Budgetmodell '{name}'.",
            location="preset",
            expected=", ".join(_names()),
            found=str(name),
            hint="Verfügbare Modelle mit 'geoplan presets list' anzeigen.",
            message_en=f"Unknown budget model '{name}'.",
            hint_en="List the available models with 'geoplan presets list'.",
        )
    return path


def load_preset(name: str) -> dict:
    """The preset as a dict (parsed YAML), checked for the required sections.

    The ``allocation`` section is validated as AllocationSpec and the
    ``settlement`` section as SettlementSpec, so a broken preset fails here
    with the file named.
    """
    from geoplan.stages.allocate import parse_spec
    from geoplan.stages.settlement import parse_settlement

    path = preset_path(name)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise GeoplanError("Budgetmodell ist kein gültiges YAML.", file=path, found=str(exc)[:300],
                           message_en="The budget model is not valid YAML.") from None
    if not isinstance(data, dict):
        raise GeoplanError("Budgetmodell muss ein YAML-Mapping sein.", file=path,
                           message_en="A budget model must be a YAML mapping.")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise GeoplanError(
            "Budgetmodell unvollständig.", file=path, expected=", ".join(_REQUIRED), found=", ".join(missing) + " fehlt",
            message_en="The budget model is incomplete.", found_en=", ".join(missing) + " missing"
        )
    parse_spec(data["allocation"], file=path)
    parse_settlement(data["settlement"], file=path)
    data["name"] = path.stem
    return data


def list_presets() -> list[PresetInfo]:
    """All presets, sorted by name."""
    out = []
    for name in _names():
        data = yaml.safe_load((PRESET_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
        out.append(
            PresetInfo(
                name=name,
                title=str(data.get("title", name)),
                description=str(data.get("description", "")).strip(),
                source=str(data.get("source", "")),
            )
        )
    return out


def apply_preset(raw: dict, name: str) -> dict:
    """``raw`` (a parsed config) with the preset's ``allocation`` (and ``settlement``) and its name in the title."""
    p = load_preset(name)
    raw = {**raw, "allocation": p["allocation"]}
    if p.get("settlement") is not None:
        raw["settlement"] = p["settlement"]
    raw["title"] = f"{raw.get('title', 'Sozialraumbudget')} – Modell {p.get('title', name)}"
    return raw
