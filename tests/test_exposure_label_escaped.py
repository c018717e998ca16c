"""The config's exposure label reaches the report HTML escaped (it replaces the default wording there)."""
from __future__ import annotations

import dataclasses

import pytest

EVIL = '<img src=x onerror="document.title=1">Kinder'


@pytest.mark.parametrize("lang", ["de", "en"])
def test_hostile_exposure_label_is_escaped_in_the_report(demo_result, lang):
    from geoplan.report import html as report_html
    from geoplan.report import i18n
    from geoplan.report.published import build_published

    cfg = demo_result.config
    cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"exposure_label": EVIL})})
    result = dataclasses.replace(demo_result, config=cfg)
    try:
        i18n.set_labels(result)
        page = report_html.render_report(result, build_published(result, lang=lang), lang)
    finally:
        i18n.set_labels(demo_result)
    assert "<img src=x" not in page
    # the label is there, as text: in headings and table headers (Jinja) and in the relabelled sentences
    assert page.count("&lt;img src=x onerror=") >= 2


def test_a_label_containing_the_default_wording_is_put_in_once(demo_result):
    """"Junge Menschen unter 21" contains "unter 21": relabelling must not insert it into itself."""
    import re

    from geoplan.report import html as report_html
    from geoplan.report import i18n
    from geoplan.report.published import build_published

    label = "Junge Menschen unter 21"
    cfg = demo_result.config
    cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"exposure_label": label})})
    result = dataclasses.replace(demo_result, config=cfg)
    try:
        i18n.set_labels(result)
        page = report_html.render_report(result, build_published(result, lang="de"), "de")
        assert i18n.relabel(i18n.relabel("je Einwohner unter 21")) == f"je {label}"
    finally:
        i18n.set_labels(demo_result)
    text = re.sub(r"<[^>]+>", " ", page)
    assert text.count(label) > 10 and "Menschen Junge" not in text and "Menschen unter 21 Junge" not in text
