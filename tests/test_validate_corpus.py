"""``geoplan validate`` catches every error that ``geoplan run`` raises from the inputs (bad-input corpus).

For each broken input of ``tests/bad_inputs`` (``test_bad_inputs.py`` runs them
through ``run``) this runs ``validate`` on the same config: exit code 2, the same
message fragments, no traceback, inputs unchanged. Cases about the output folder
are run-only.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from geoplan.cli import main
from tests.bad_inputs import Workspace
from tests.bad_inputs.cases import CASES

RUN_ONLY = {"output_is_a_file", "output_not_empty"}


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _validate_argv(argv: list[str]) -> list[str]:
    i = argv.index("run") if "run" in argv else argv.index("validate")
    return [*argv[:i], "validate", argv[i + 1]]


@pytest.mark.parametrize("name", sorted(set(CASES) - RUN_ONLY))
def test_validate_catches(name, tmp_path, capsys):
    ws = Workspace.create(tmp_path / "ws")
    argv, fragments = CASES[name](ws)
    before = _hashes(ws.root)
    code = main(_validate_argv(argv))
    cap = capsys.readouterr()
    err = cap.err + cap.out
    assert code == 2, f"validate exit code {code}; output:\n{err}"
    assert "Traceback" not in err and "Interner Fehler" not in err, err
    flat = " ".join(err.split()).lower()
    for frag in fragments:
        assert frag.lower() in flat, f"{frag!r} fehlt in der Meldung von validate:\n{err}"
    assert _hashes(ws.root) == before
    assert not ws.out.exists()


def test_validate_lists_all_problems(tmp_path, capsys):
    """Three independent problems (a missing table, an unknown predictor column in a second table, a
    missing HzE file) are all reported at once."""
    ws = Workspace.create(tmp_path / "ws")
    ws.raw["indicators"]["tables"][0]["path"] = "daten/einwohner_2030.csv"
    ws.raw["indicators"]["tables"][1]["columns"]["S99"] = "phantasie"
    ws.raw["hze"] = {"path": "daten/hze.csv", "key": "SR", "columns": {"F": "hze_cases"}}
    code = main(["validate", str(ws.write_config())])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2
    assert "3 Problem(e)" in err, err
    for frag in ("einwohner_2030.csv", "S99", "hze.csv", "hze.path"):
        assert frag in err, err
