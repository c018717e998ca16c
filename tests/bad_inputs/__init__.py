"""A corpus of broken inputs, each built from the real Berlin example.

Every case is a function ``build(ws) -> (argv, fragments)``: it breaks one thing
in a private copy of the example (``ws``, a :class:`Workspace`) and returns the
CLI arguments and text fragments the error message must contain (the file, the
row/key/field, the fix). ``tests/test_bad_inputs.py`` runs each through the CLI
and checks exit code, message, no traceback, no (partial) output folder and
unchanged inputs.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "geoplan" / "examples" / "berlin.yaml"
BOUNDARIES = ROOT / "boundaries" / "berlin" / "prognoseraeume_2021.geojson"
IND = ROOT / "indicators" / "berlin"


@dataclass
class Workspace:
    root: Path
    raw: dict = field(default_factory=dict)

    @classmethod
    def create(cls, root: Path) -> "Workspace":
        data = root / "daten"
        data.mkdir(parents=True)
        shutil.copy(BOUNDARIES, data / BOUNDARIES.name)
        for p in IND.iterdir():
            if p.suffix in (".csv", ".yaml"):
                shutil.copy(p, data / p.name)
        raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
        raw["boundaries"]["path"] = f"daten/{BOUNDARIES.name}"
        raw["indicators"]["catalogue"] = "daten/katalog.yaml"
        raw["indicators"]["aggregate"]["key_table"] = "daten/lor_2021_plr_schluessel.csv"
        for t in raw["indicators"]["tables"]:
            t["path"] = "daten/" + Path(t["path"]).name
        if raw["hze"].get("case_list"):  # the example's simulated case list (copied with the indicators)
            raw["hze"]["case_list"]["path"] = "daten/" + Path(raw["hze"]["case_list"]["path"]).name
        raw["model"]["n_boot"] = 200
        raw["output"]["pdf"] = False
        return cls(root=root, raw=raw)

    @property
    def data(self) -> Path:
        return self.root / "daten"

    @property
    def out(self) -> Path:
        return self.root / "ausgabe"

    def write_config(self, raw: dict | None = None, name: str = "config.yaml") -> Path:
        p = self.root / name
        p.write_text(yaml.safe_dump(raw if raw is not None else self.raw, allow_unicode=True, sort_keys=False),
                     encoding="utf-8")
        return p

    def run_args(self, raw: dict | None = None) -> list[str]:
        return ["run", str(self.write_config(raw)), "--out", str(self.out)]

    def table(self, name: str) -> Path:
        return self.data / name

    def edit_text(self, name: str, fn: Callable[[str], str], encoding: str = "utf-8-sig") -> Path:
        p = self.data / name
        p.write_text(fn(p.read_text(encoding=encoding)), encoding=encoding)
        return p

    def edit_lines(self, name: str, fn: Callable[[list[str]], list[str]], encoding: str = "utf-8-sig") -> Path:
        return self.edit_text(name, lambda t: "\n".join(fn(t.splitlines())) + "\n", encoding)

    def geojson(self) -> dict:
        return json.loads((self.data / BOUNDARIES.name).read_text(encoding="utf-8"))

    def write_geojson(self, obj: dict, name: str | None = None) -> Path:
        p = self.data / (name or BOUNDARIES.name)
        p.write_text(json.dumps(obj), encoding="utf-8")
        return p


def _set_cell(lines: list[str], sep: str, key: str, column: str, value: str) -> list[str]:
    header = lines[0].split(sep)
    j = header.index(column)
    out = [lines[0]]
    for line in lines[1:]:
        cells = line.split(sep)
        if cells and key in cells[header.index(next(h for h in header if "PLR" in h and "ID" in h))]:
            cells[j] = value
        out.append(sep.join(cells))
    return out
