"""Every municipal preset runs on the Berlin example and produces a report."""

from __future__ import annotations

import pytest
from openpyxl import load_workbook

from geoplan.cli import demo_config
from geoplan.pipeline import run
from geoplan.presets import list_presets
from geoplan.report import write_outputs

NAMES = [p.name for p in list_presets()]


def test_all_eleven_models_and_isa_are_presets():
    assert len(NAMES) >= 12
    assert {"stuttgart", "hannover", "bremen", "frankfurt_oder", "wiesbaden", "celle", "siegen",
            "landkreis_tuebingen", "kamp_lintfort", "neunkirchen", "landkreis_nordfriesland", "isa"} <= set(NAMES)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_demo_with_preset_writes_a_report(name, tmp_path):
    cfg = demo_config(preset=name)
    cfg.model.n_boot = 200
    result = run(cfg)
    total = int(result.allocation.distributed_eur) if hasattr(result.allocation, "distributed_eur") else None
    assert int(result.frame["budget_eur"].sum()) == total
    files = {p.name for p in write_outputs(result, tmp_path / "out", pdf=False)}
    assert {"bericht.html", "karte.html", "verteilung.xlsx", "ergebnis.gpkg", "manifest.json"} <= files
    html = (tmp_path / "out" / "bericht.html").read_text(encoding="utf-8")
    assert "Modell" in html and "simuliert" in html
    # every number-bearing sentence of the summary and section 6 equals the tables of this output
    from test_claims import check_reconciliation, check_report_claims

    assert check_report_claims(tmp_path / "out") >= 10
    check_reconciliation(tmp_path / "out", result)
    if cfg.settlement is not None:  # the preset's own settlement rules with this run's euros
        assert "Abrechnung und Auszahlung" in html and "Abrechnung" in load_workbook(tmp_path / "out" / "verteilung.xlsx").sheetnames
