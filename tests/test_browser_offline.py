"""Open karte.html in headless Chromium with the network blocked.

Skipped only when Chromium/chromedriver are missing and GEOPLAN_REQUIRE_BROWSER
is not set; CI sets it, so there a missing browser fails the test.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest

from geoplan.browser import Browser, chromium_available, open_offline
from geoplan.report.maps import MapLayer, write_interactive_map

ROOT = Path(__file__).resolve().parents[1]
BERLIN = ROOT / "boundaries" / "berlin" / "prognoseraeume_2021.geojson"
N_POLYGONS = 58
WAIT_POLYGONS = f"return document.querySelectorAll('path.leaflet-interactive').length >= {N_POLYGONS};"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module", autouse=True)
def _need_browser():
    if not chromium_available():
        if os.environ.get("GEOPLAN_REQUIRE_BROWSER"):
            pytest.fail("GEOPLAN_REQUIRE_BROWSER ist gesetzt, aber /usr/bin/chromium oder /usr/bin/chromedriver fehlt.")
        pytest.skip("Chromium/chromedriver nicht installiert (Debian: apt install chromium chromium-driver)")


@pytest.fixture(scope="module")
def browser(_need_browser):
    """One Chromium for the module's pages (each page in a new tab, the network blocked there)."""
    with Browser() as b:
        yield b


@functools.cache
def _berlin_once() -> gpd.GeoDataFrame:
    g = gpd.read_file(BERLIN)
    assert len(g) == N_POLYGONS
    rng = np.random.default_rng(7)
    g["budget_per_u21_eur"] = rng.gamma(4.0, 300.0, len(g))
    g["need_index"] = rng.normal(0.0, 1.0, len(g))
    g["change_pct"] = rng.normal(0.0, 8.0, len(g))
    return g


def _berlin() -> gpd.GeoDataFrame:
    """The Berlin Prognoseräume with random test values (read once; each caller gets its own copy)."""
    return _berlin_once().copy()


LAYERS = [
    MapLayer("budget_per_u21_eur", "Budget je Kind/Jugendl. (unter 21) in €", fmt="euro", palette="YlOrRd", show=True),
    MapLayer("need_index", "Bedarfsindex", fmt="index", palette="viridis"),
    MapLayer("change_pct", "Veränderung zum Vorjahr in %", scheme="user_defined", bins=(-10, -2, 2, 10, 1000),
             palette="BrBG", fmt="prozent"),
]


@pytest.fixture(scope="module")
def karte(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ausgabe")
    return write_interactive_map(
        out / "karte.html", _berlin(), LAYERS,
        tooltip={"budget_per_u21_eur": "Budget je Kind/Jugendl.", "need_index": "Bedarfsindex"},
        title="Sozialraumbudget Berlin (Testdaten)",
        attribution='Grenzen: <a href="https://www.statistik-berlin-brandenburg.de">AfS Berlin-Brandenburg</a>',
        key="id", name="name",
    )


def _non_blank(png: Path) -> tuple[int, float]:
    from PIL import Image

    img = np.asarray(Image.open(png).convert("RGB"))
    colours = len({tuple(p) for p in img.reshape(-1, 3)[::3]})
    not_white = float((img.sum(axis=2) < 3 * 245).mean())
    return colours, not_white


def test_map_loads_offline_and_draws_polygons(karte, browser):
    shot = karte.parent / "karte.png"
    res = open_offline(karte, screenshot=shot, wait_js=WAIT_POLYGONS, browser=browser)
    assert res.requests, "the performance log recorded nothing"
    assert res.requests[0] == karte.resolve().as_uri()
    assert res.external_requests(karte.parent) == []
    assert res.failed == []
    assert res.dom_counts["path.leaflet-interactive"] == N_POLYGONS
    assert res.console_errors == []
    assert res.title == "Sozialraumbudget Berlin (Testdaten)"
    colours, not_white = _non_blank(shot)
    assert colours >= 6  # 5 classes + lines/labels
    assert not_white > 0.25  # polygons cover a good part of the window
    # every class colour of the visible layer is painted (opaque fill, no tiles)
    from PIL import Image

    from geoplan.report.maps import classify

    img = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3)
    clf = classify(_berlin()["budget_per_u21_eur"].to_numpy(), LAYERS[0])
    for hexcol in clf.colors:
        rgb = np.array([int(hexcol[i : i + 2], 16) for i in (1, 3, 5)])
        # far more pixels than the 18×13 legend swatch: the polygons carry the colour
        assert int((img == rgb).all(axis=1).sum()) > 2000, hexcol


def test_layer_switch_changes_legend(karte, browser):
    # Click the second base layer's radio button, then report which legend is visible.
    js = (
        "if (!window.__switched) {"
        "  var r = document.querySelectorAll('.leaflet-control-layers-base input');"
        "  if (r.length < 2) return false; r[1].click(); window.__switched = true; }"
        "var v = Array.from(document.querySelectorAll('.geoplan-legend-layer'))"
        "  .filter(function(e){return e.style.display !== 'none';});"
        "return v.length === 1 && v[0].getAttribute('data-column') === 'need_index'"
        "  && document.querySelectorAll('path.leaflet-interactive').length === 58;"
    )
    res = open_offline(karte, wait_js=js, selectors=("path.leaflet-interactive", ".geoplan-legend-layer"),
                       browser=browser)
    assert res.dom_counts["path.leaflet-interactive"] == N_POLYGONS  # one layer at a time
    assert res.dom_counts[".geoplan-legend-layer"] == 3
    assert res.external_requests(karte.parent) == []


def test_blocked_external_request_is_recorded(tmp_path, browser):
    """Negative control: a page with CDN links is caught (recorded and blocked)."""
    page = tmp_path / "cdn.html"
    page.write_text(
        '<!DOCTYPE html><html><head><script src="https://cdn.jsdelivr.net/npm/leaflet@1.9.4/dist/leaflet.js">'
        '</script><link rel="stylesheet" href="http://example.org/a.css"></head>'
        '<body><img src="https://tile.openstreetmap.org/1/1/1.png"><img src="local.png"></body></html>',
        encoding="utf-8",
    )
    res = open_offline(page, selectors=("img",), browser=browser)
    ext = res.external_requests(tmp_path)
    assert any("cdn.jsdelivr.net" in u for u in ext)
    assert any("example.org" in u for u in ext)
    assert any("openstreetmap" in u for u in ext)
    assert not any(u.endswith("/local.png") for u in ext)  # inside the output folder: allowed
    assert set(ext) <= set(res.failed)  # nothing got through


def test_tiles_from_output_folder_stay_local(tmp_path, browser):
    """Tiles on: a relative tile URL is requested from the output folder only."""
    path = write_interactive_map(
        tmp_path / "karte.html", _berlin(), LAYERS[:1], tooltip={}, title="Mit Kacheln", attribution="Test",
        key="id", tiles="kacheln/{z}/{x}/{y}.png", tiles_attribution="eigene Kacheln",
    )
    res = open_offline(path, wait_js=WAIT_POLYGONS, browser=browser)
    tiles = [u for u in res.requests if "/kacheln/" in u]
    assert tiles, "Leaflet requested no tiles"
    assert all(u.startswith((tmp_path.resolve() / "kacheln").as_uri()) for u in tiles)
    assert res.external_requests(tmp_path) == []
    assert res.dom_counts["path.leaflet-interactive"] == N_POLYGONS


def test_remote_tiles_are_recorded_and_blocked(tmp_path, browser):
    path = write_interactive_map(
        tmp_path / "karte.html", _berlin(), LAYERS[:1], tooltip={}, title="Fremde Kacheln", attribution="Test",
        key="id", tiles="https://tiles.example.org/{z}/{x}/{y}.png", tiles_attribution="Beispiel",
    )
    res = open_offline(path, wait_js=WAIT_POLYGONS, browser=browser)
    ext = res.external_requests(tmp_path)
    assert ext and all(u.startswith("https://tiles.example.org/") for u in ext)
    assert set(ext) <= set(res.failed)


@pytest.mark.slow
def test_every_html_output_offline(demo_outputs, browser):
    """All HTML outputs of the demo run (karte.html, bericht.html, …) load nothing from outside the output folder."""
    out = Path(demo_outputs)
    pages = sorted(out.rglob("*.html"))
    assert {"karte.html", "bericht.html"} <= {p.name for p in pages}
    for page in pages:
        is_map = page.name == "karte.html"
        res = open_offline(page, wait_js=WAIT_POLYGONS if is_map else None, browser=browser)
        assert res.requests and res.requests[0] == page.resolve().as_uri(), page.name
        assert res.external_requests(out) == [], page.name
        assert res.console_errors == [], page.name
        if is_map:
            assert res.dom_counts["path.leaflet-interactive"] == N_POLYGONS


def test_thousands_of_polygons_drawn_and_recoloured(tmp_path, browser):
    """issue 15: 3,000 areas — all drawn from the one shared GeoJSON, nothing requested from outside;
    switching the layer recolours the same polygons with the second layer's classes."""
    import json

    import shapely

    from geoplan.report.maps import classify

    n, side = 3000, 400.0
    i = np.arange(n)
    geom = shapely.box(370_000 + (i % 55) * side, 5_790_000 + (i // 55) * side,
                       370_000 + (i % 55 + 1) * side, 5_790_000 + (i // 55 + 1) * side)
    rng = np.random.default_rng(3)
    g = gpd.GeoDataFrame({"key": [f"{k:05d}" for k in i], "name": [f"Gebiet {k}" for k in i],
                          "budget_per_u21_eur": rng.gamma(4.0, 300.0, n), "need_index": rng.normal(0, 1, n),
                          "change_pct": rng.normal(0, 8, n)}, geometry=geom, crs=25833)
    g.loc[::50, "need_index"] = np.nan  # no value: the grey no-data fill
    path = write_interactive_map(tmp_path / "karte.html", g, LAYERS, tooltip={"need_index": "Bedarfsindex"},
                                 title="Viele Gebiete", attribution="Test")
    clf = classify(g["need_index"].to_numpy(), LAYERS[1])
    expected = {c: int((clf.classes == k).sum()) for k, c in enumerate(clf.colors)}
    expected["#d9d9d9"] = int((clf.classes < 0).sum())
    js = (
        f"var p = document.querySelectorAll('path.leaflet-interactive'); if (p.length < {n}) return false;"
        "if (!window.__switched) {"
        "  var r = document.querySelectorAll('.leaflet-control-layers-base input');"
        "  r[1].click(); window.__switched = true; return false; }"
        "var counts = {}; p.forEach(function(e) { var f = e.getAttribute('fill'); counts[f] = (counts[f] || 0) + 1; });"
        f"var want = {json.dumps(expected)};"
        "var ok = Object.keys(want).length === Object.keys(counts).length"
        "  && Object.keys(want).every(function(k) { return counts[k] === want[k]; });"
        "document.body.setAttribute('data-recoloured', String(ok)); return ok;"
    )
    res = open_offline(path, wait_js=js, timeout=120, browser=browser,
                       selectors=("path.leaflet-interactive", 'body[data-recoloured="true"]', ".geoplan-note"))
    assert res.dom_counts["path.leaflet-interactive"] == n  # one set of polygons, all drawn
    assert res.dom_counts['body[data-recoloured="true"]'] == 1, "the second layer's classes are not the fills"
    assert res.dom_counts[".geoplan-note"] == 1  # the simplification tolerance is stated
    assert res.external_requests(tmp_path) == []
    assert res.failed == [] and res.console_errors == []
