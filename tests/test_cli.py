"""CLI: failing inputs stop with a clear message, exit non-zero, leave no output folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from geoplan.cli import EXAMPLE_CONFIG, main

ROOT = Path(__file__).resolve().parents[1]


def _config_copy(tmp_path: Path, change=None) -> Path:
    raw = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    # make paths absolute so the config can live in tmp_path
    base = EXAMPLE_CONFIG.parent
    raw["boundaries"]["path"] = str((base / raw["boundaries"]["path"]).resolve())
    raw["indicators"]["catalogue"] = str((base / raw["indicators"]["catalogue"]).resolve())
    raw["indicators"]["aggregate"]["key_table"] = str((base / raw["indicators"]["aggregate"]["key_table"]).resolve())
    for t in raw["indicators"]["tables"]:
        t["path"] = str((base / t["path"]).resolve())
    if raw["hze"].get("case_list"):
        raw["hze"]["case_list"]["path"] = str((base / raw["hze"]["case_list"]["path"]).resolve())
    raw["model"]["n_boot"] = 200
    raw["output"]["pdf"] = False
    if change:
        change(raw)
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return p


def test_validate_ok(tmp_path, capsys):
    assert main(["validate", str(_config_copy(tmp_path))]) == 0
    assert "gültig" in capsys.readouterr().out


def test_missing_file(tmp_path, capsys):
    cfg = _config_copy(tmp_path, lambda r: r["boundaries"].update(path=str(tmp_path / "fehlt.geojson")))
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "fehlt.geojson" in err and "boundaries.path" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_unknown_config_field_names_it_and_lists_allowed(tmp_path, capsys):
    cfg = _config_copy(tmp_path, lambda r: r["model"].update(predictor=["kinderarmut"]))
    assert main(["validate", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "model.predictor" in err and "predictors" in err


def test_unknown_column_in_table_config(tmp_path, capsys):
    def change(r):
        r["indicators"]["tables"][1]["columns"]["S99"] = "phantasie"
    cfg = _config_copy(tmp_path, change)
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "S99" in err and "mss_2021_index_indikatoren.csv" in err
    assert not out.exists()


def test_key_in_table_but_not_in_polygons(tmp_path, capsys):
    """Drop one polygon: its Prognoseraum key is then in the indicators only."""
    import geopandas as gpd

    g = gpd.read_file(ROOT / "boundaries/berlin/prognoseraeume_2021.geojson")
    g = g[g["id"] != "0110"]
    poly = tmp_path / "ohne_0110.gpkg"
    g.to_file(poly, layer="sozialraeume")
    cfg = _config_copy(tmp_path, lambda r: r["boundaries"].update(path=str(poly)))
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "0110" in err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_console_script_exit_code_and_output_survive_the_fast_exit(tmp_path):
    """The ``geoplan`` command ends without the interpreter's teardown (geoplan.parallel.leave): its exit
    code, its buffered output and what an atexit function does must still come through."""
    cfg = _config_copy(tmp_path, lambda r: r["boundaries"].update(path=str(tmp_path / "fehlt.geojson")))
    code = ("import atexit, pathlib, sys; "
            f"atexit.register(pathlib.Path({str(tmp_path / 'atexit-ran')!r}).touch); "
            "from geoplan.cli import entry; entry()")
    proc = subprocess.run([sys.executable, "-c", code, "validate", str(cfg)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "fehlt.geojson" in proc.stdout + proc.stderr
    assert (tmp_path / "atexit-ran").exists()
    ok = subprocess.run([sys.executable, "-c", "from geoplan.cli import entry; entry()", "presets", "list"],
                        capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert ok.returncode == 0 and "stuttgart" in ok.stdout.lower()
    # the installed command is this function
    scripts = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'geoplan = "geoplan.cli:entry"' in scripts


def test_refuses_non_empty_output_without_force(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "wichtig.txt").write_text("nicht löschen")
    cfg = _config_copy(tmp_path)
    assert main(["run", str(cfg), "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert (out / "wichtig.txt").read_text() == "nicht löschen"


def test_init_writes_a_valid_template(tmp_path):
    target = tmp_path / "geoplan.yaml"
    assert main(["init", str(target)]) == 0
    text = target.read_text(encoding="utf-8")
    assert text.count("#") > 20  # commented
    from geoplan.config import Config
    raw = yaml.safe_load(text)
    assert set(raw) <= set(Config.model_fields)
    assert main(["init", str(target)]) == 2  # no silent overwrite


def test_presets_list_and_show(capsys):
    assert main(["presets", "list"]) == 0
    out = capsys.readouterr().out
    assert "stuttgart" in out and "isa" in out
    assert main(["presets", "show", "stuttgart"]) == 0
    assert "allocation:" in capsys.readouterr().out
    assert main(["presets", "show", "gibtsnicht"]) == 2
    assert "stuttgart" in capsys.readouterr().err


def test_compare_two_configs(tmp_path, capsys):
    from geoplan.presets import load_preset

    a = _config_copy(tmp_path)
    isa = load_preset("isa")
    b = tmp_path / "isa.yaml"
    raw = yaml.safe_load(a.read_text(encoding="utf-8"))
    raw["allocation"] = isa["allocation"]
    b.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    xlsx = tmp_path / "vergleich.xlsx"
    assert main(["compare", str(a), str(b), "--out", str(xlsx)]) == 0
    import pandas as pd

    df = pd.read_excel(xlsx)
    assert len(df) == 59  # 58 Sozialräume and the total row
    assert any(str(c).startswith("Differenz isa") for c in df.columns)
    from openpyxl import load_workbook

    wb = load_workbook(xlsx)
    assert wb.sheetnames == ["Budgets", "Gewinner und Verlierer", "Szenarien"]
    ws = wb["Budgets"]
    assert str(ws.cell(row=60, column=3).value).startswith("=SUM(")
    text = capsys.readouterr().out
    assert max(len(line) for line in text.splitlines() if "│" not in line) <= 80


def test_figures_go_to_the_pdf_process_only_when_a_second_core_is_idle(monkeypatch, tmp_path):
    """The CLI's PDF process draws figures (and imports matplotlib for it) only on an idle second CPU."""
    import os

    import geoplan.cli
    import geoplan.pipeline
    import geoplan.report.pdf
    from geoplan import parallel

    now = parallel.runnable_now()
    assert now is None or now >= 1  # this thread wants a CPU while it reads the figure
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(parallel, "runnable_now", lambda: 1)  # only this process
    assert parallel.second_core_idle()
    monkeypatch.setattr(parallel, "runnable_now", lambda: 2)  # e.g. a test suite on both cores
    assert not parallel.second_core_idle()
    monkeypatch.setattr(parallel, "runnable_now", lambda: None)  # no /proc/loadavg: the load average
    monkeypatch.setattr(os, "getloadavg", lambda: (0.4, 0.5, 0.6))
    assert parallel.second_core_idle()
    monkeypatch.setattr(os, "getloadavg", lambda: (1.9, 1.5, 1.0))
    assert not parallel.second_core_idle()
    monkeypatch.setattr(parallel, "runnable_now", lambda: 1)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert not parallel.second_core_idle()

    # and the CLI asks for what the rule says
    made = []

    class Recorder:
        def __init__(self, figures=True):
            made.append(figures)

        def cancel(self):
            pass

    class Stop(Exception):
        pass

    def stop(*a, **k):
        raise Stop

    monkeypatch.setattr(geoplan.report.pdf, "PdfWorker", Recorder)
    monkeypatch.setattr(geoplan.pipeline, "run", stop)
    cfg = _config_copy(tmp_path, lambda r: r["output"].update(pdf=True))
    monkeypatch.setattr(parallel, "runnable_now", lambda: 1)
    for cpus, want in (({0, 1}, True), ({0}, False)):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid, c=cpus: c)
        with pytest.raises(Stop):
            geoplan.cli._run_and_write(geoplan.cli._load(cfg), tmp_path / f"out{len(cpus)}", False)
    assert made == [True, False]
