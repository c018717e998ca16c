"""Shared fixtures: one demo run per test session (it fits the model and writes all outputs)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def demo_result():
    from geoplan.cli import demo_config
    from geoplan.pipeline import run

    return run(demo_config())


@pytest.fixture(scope="session")
def demo_outputs(demo_result, tmp_path_factory):
    from geoplan.report import write_outputs

    out = tmp_path_factory.mktemp("demo") / "ausgabe"
    write_outputs(demo_result, out)
    return out


@pytest.fixture(scope="session")
def demo_outputs_en(demo_result, tmp_path_factory):
    """The demo's outputs with ``--lang en`` (no PDF: the English PDF is the same layout)."""
    from geoplan.report import write_outputs

    out = tmp_path_factory.mktemp("demo_en") / "output"
    write_outputs(demo_result, out, lang="en", pdf=False)
    return out
