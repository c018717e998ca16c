"""Every municipal preset runs through the whole pipeline and produces a report.

The presets' logic (formula, Teilbudgets, settlement rules) is under test here,
not Berlin: they run on the small synthetic city of
:func:`geoplan.synthetic.write_example` (40 Sozialräume). The Berlin example
itself runs once per session (tests/conftest.py).
"""

from __future__ import annotations

from html import unescape

import pytest
from openpyxl import load_workbook

from geoplan.config import config_from_dict
from geoplan.pipeline import run
from geoplan.presets import apply_preset, list_presets, load_preset
from geoplan.report import write_outputs
from geoplan.stages.allocate import parse_spec

NAMES = [p.name for p in list_presets()]


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    from geoplan.synthetic import write_example

    folder = tmp_path_factory.mktemp("beispielstadt")
    return folder, write_example(folder)


def test_all_eleven_models_and_isa_are_presets():
    assert len(NAMES) >= 12
    assert {"stuttgart", "hannover", "bremen", "frankfurt_oder", "wiesbaden", "celle", "siegen",
            "landkreis_tuebingen", "kamp_lintfort", "neunkirchen", "landkreis_nordfriesland", "isa"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_preset_runs_end_to_end_and_writes_a_report(name, example, tmp_path):
    folder, raw = example
    cfg = config_from_dict(apply_preset(raw, name), base_dir=folder)
    preset = parse_spec(load_preset(name)["allocation"])
    assert cfg.allocation == preset  # the preset's formula is what runs
    result = run(cfg)
    alloc = result.allocation
    f = result.frame
    # every euro of the preset's total is either distributed over the Sozialräume or retained
    assert alloc.distributed_eur + alloc.retained_eur == int(preset.total_eur)
    assert int(f["budget_eur"].sum()) == alloc.distributed_eur
    assert (f["budget_eur"] >= 0).all()
    # each Teilbudget is split exactly as the preset says, its formula's components add up to it
    tb = alloc.teilbudgets
    for t in preset.teilbudgets:
        amount = int(tb.loc[tb["id"] == t.id, "amount_eur"].iloc[0])
        if t.distributed:
            assert int(alloc.table[f"tb_{t.id}_eur"].sum()) == amount, t.id
    if not preset.teilbudgets:
        parts = sum(int(f[f"eur_{c.name}"].sum()) for c in preset.components) + int(f["eur_korridor"].sum())
        assert parts == alloc.distributed_eur
    assert (result.settlement_rules is not None) == (load_preset(name).get("settlement") is not None)

    files = {p.name for p in write_outputs(result, tmp_path / "out", pdf=False)}
    assert {"bericht.html", "karte.html", "verteilung.xlsx", "ergebnis.gpkg", "manifest.json"} <= files
    html = unescape((tmp_path / "out" / "bericht.html").read_text(encoding="utf-8"))
    assert "simuliert" in html and "Beispielstadt" in html
    for comp in preset.components:  # the report names every component of the preset's formula
        assert (comp.label or comp.name) in html, comp.name
    # every number-bearing sentence of the summary and section 6 equals the tables of this output
    from test_claims import check_report_claims, check_reconciliation

    assert check_report_claims(tmp_path / "out") >= 10
    check_reconciliation(tmp_path / "out", result)
    if cfg.settlement is not None:  # the preset's own settlement rules with this run's euros
        assert "Abrechnung und Auszahlung" in html and "Abrechnung" in load_workbook(tmp_path / "out" / "verteilung.xlsx").sheetnames
