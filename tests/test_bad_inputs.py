"""Every broken input: exit code 2, one clear message, no traceback, no output, inputs unchanged."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from geoplan.cli import main
from tests.bad_inputs import Workspace
from tests.bad_inputs.cases import CASES


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_corpus_is_large_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, tmp_path, capsys):
    ws = Workspace.create(tmp_path / "ws")
    argv, fragments = CASES[name](ws)
    out_existed = ws.out.exists()
    before = _hashes(ws.root)
    code = main(argv)
    cap = capsys.readouterr()
    err = cap.err
    assert code == 2, f"exit code {code}; stderr:\n{err}\nstdout:\n{cap.out}"
    assert "Traceback" not in err and "Interner Fehler" not in err, err
    flat = " ".join(err.split())
    for frag in fragments:
        assert frag.lower() in flat.lower(), f"{frag!r} fehlt in der Meldung:\n{err}"
    assert _hashes(ws.root) == before, "inputs (or an existing output) were changed"
    if not out_existed:
        assert not ws.out.exists(), "an output folder was left behind"
    assert not [p for p in ws.root.iterdir() if ".tmp-" in p.name or ".old-" in p.name]
