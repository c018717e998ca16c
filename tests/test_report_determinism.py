"""Same inputs and config give byte-identical outputs (report, map, Excel, GeoPackage, PDF).

The second run is a separate process with a different hash seed, so set or
dict ordering that depends on string hashing would show up as a difference.
Only manifest.json may differ (it records the run's start and end time).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMPARED = ["bericht.html", "karte.html", "verteilung.xlsx", "ergebnis.gpkg"]


def _digests(folder: Path, names) -> dict[str, str]:
    return {n: hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in names if (folder / n).exists()}


def test_two_runs_give_identical_files(demo_outputs, tmp_path):
    out = tmp_path / "zweiter_lauf"
    env = dict(os.environ, PYTHONHASHSEED="12345", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "geoplan.cli", "demo", "--out", str(out)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = COMPARED + (["bericht.pdf"] if (demo_outputs / "bericht.pdf").exists() else [])
    first, second = _digests(demo_outputs, names), _digests(out, names)
    assert set(first) == set(names) and set(second) == set(names)
    differing = [n for n in names if first[n] != second[n]]
    assert differing == []
    # the manifest differs only in the run times
    import json

    m1 = json.loads((demo_outputs / "manifest.json").read_text(encoding="utf-8"))
    m2 = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    for m in (m1, m2):
        m.pop("run_started"), m.pop("run_finished")
    assert m1 == m2
