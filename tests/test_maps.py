"""Tests for geoplan.report.maps: interactive karte.html and static print maps."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import geopandas as gpd
import mapclassify
import numpy as np
import pytest

from geoplan.errors import GeoplanError
from geoplan.fmt import by_kind
from geoplan.report.maps import (
    NODATA_LABEL,
    MapLayer,
    classify,
    interactive_map,
    static_map,
    static_map_png_bytes,
    write_interactive_map,
)

ROOT = Path(__file__).resolve().parents[1]
BERLIN = ROOT / "boundaries" / "berlin" / "prognoseraeume_2021.geojson"

#: Attributes/CSS constructs that make a browser load something.
_LOADING_URL = re.compile(
    r"""(?:\b(?:src|srcset|poster|data|action|formaction)\s*=\s*["']?\s*|url\(\s*["']?|@import\s+["']?)"""
    r"""(?:https?:)?//""",
    re.IGNORECASE,
)
_HREF = re.compile(r"""<([a-zA-Z][\w-]*)\b[^<>]*\bhref\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def external_loads(doc: str) -> list[str]:
    """Places in ``doc`` that would load from another host (attribution ``<a href>`` is allowed)."""
    hits = [m.group(0) for m in _LOADING_URL.finditer(doc)]
    hits += [m.group(0) for m in _HREF.finditer(doc) if m.group(1).lower() != "a"]
    # Dynamic loaders in script text: fetch("https://…"), import("https://…"), .src = "https://…"
    hits += re.findall(r"""(?:fetch|import|ajax)\s*\(\s*["'](?:https?:)?//[^"']+""", doc)
    hits += re.findall(r"""\.src\s*=\s*["'](?:https?:)?//[^"']+""", doc)
    return hits


@pytest.fixture(scope="module")
def berlin() -> gpd.GeoDataFrame:
    g = gpd.read_file(BERLIN).rename(columns={"id": "key"})
    rng = np.random.default_rng(42)
    n = len(g)
    g["budget_per_u21_eur"] = np.round(rng.gamma(4.0, 300.0, n), 2)
    g.loc[0, "budget_per_u21_eur"] = 1234.56
    g["need_index"] = rng.normal(0.0, 1.0, n)
    g["change_pct"] = rng.normal(0.0, 8.0, n)
    g["pop_u21"] = rng.integers(3000, 40000, n)
    g["secret"] = 7777777.0  # never shown: must not reach the map data
    return g


LAYERS = [
    MapLayer("budget_per_u21_eur", "Budget je Kind/Jugendl. (unter 21) in €", fmt="euro", palette="YlOrRd", show=True),
    MapLayer("need_index", "Bedarfsindex", scheme="natural_breaks", fmt="index", palette="viridis"),
    MapLayer("change_pct", "Veränderung zum Vorjahr in %", scheme="user_defined", bins=(-10, -2, 2, 10, 1000),
             palette="BrBG", fmt="prozent"),
]
TOOLTIP = {
    "budget_per_u21_eur": "Budget je Kind/Jugendl.",
    "pop_u21": "Einwohner unter 21",
    "need_index": "Bedarfsindex",
    "change_pct": "Veränderung",
}
ATTR = 'Grenzen: <a href="https://www.statistik-berlin-brandenburg.de">AfS Berlin-Brandenburg</a> (CC BY 3.0 DE)'


def _html(gdf, **kw):
    args = dict(tooltip=TOOLTIP, title="Sozialraumbudget Berlin", attribution=ATTR)
    args.update(kw)
    return interactive_map(gdf, LAYERS, **args)


def _map_data(doc: str) -> dict:
    marker = "var geoplan_sozialraeume = "
    start = doc.index(marker) + len(marker)
    data, _ = json.JSONDecoder().raw_decode(doc, start)
    return data


def _legend_html(doc: str) -> str:
    marker = "d.innerHTML = "
    start = doc.index(marker) + len(marker)
    text, _ = json.JSONDecoder().raw_decode(doc, start)
    return text


def _legends(doc: str) -> dict[str, list[float]]:
    return {
        m.group(1): json.loads(m.group(2).replace("&quot;", '"'))
        for m in re.finditer(r'data-column="([^"]+)" data-breaks="([^"]+)"', _legend_html(doc))
    }


# --------------------------------------------------------------------------- formatting
@pytest.mark.parametrize(
    ("value", "fmt", "expected"),
    [
        (1234.56, "euro", "1.234,56\u00a0€"),
        (1234567, "zahl", "1.234.567"),
        (1234.54, "zahl", "1.234,5"),
        (12.345, "prozent", "12,3\u00a0%"),
        (-0.1234, "index", "\u22120,12"),
        (-1234.5, "euro", "\u22121.234,50\u00a0€"),
        (-0.001, "index", "0,00"),
        (float("nan"), "euro", "–"),
        (None, "zahl", "–"),
    ],
)
def test_by_kind(value, fmt, expected):
    assert by_kind(value, fmt) == expected


@pytest.mark.parametrize(
    ("value", "fmt", "expected"),
    [(1234.56, "euro", "€1,234.56"), (-1234.5, "euro", "−€1,234.50"), (12.345, "prozent", "12.3%"),
     (1234567, "zahl", "1,234,567"), (0.5, "index", "0.50")],
)
def test_format_english(value, fmt, expected):
    assert by_kind(value, fmt, lang="en") == expected


def test_english_map(berlin):
    doc = _html(berlin, lang="en")
    assert '<html lang="en">' in doc
    legend = _legend_html(doc)
    assert "Classes: quantiles" in legend and "Klassen" not in legend
    feats = {f["properties"]["key"]: f["properties"] for f in _map_data(doc)["features"]}
    assert feats[berlin.loc[0, "key"]]["t0"] == "€1,234.56"
    assert json.dumps("Area") in doc
    png_en = static_map_png_bytes(berlin, LAYERS[0], title="T", source_line="Q", figsize=(4, 3.5), dpi=50, lang="en")
    png_de = static_map_png_bytes(berlin, LAYERS[0], title="T", source_line="Q", figsize=(4, 3.5), dpi=50)
    assert png_en != png_de
    with pytest.raises(GeoplanError):
        _html(berlin, lang="fr")


def test_format_de_unknown_format():
    with pytest.raises(GeoplanError, match="Zahlenformat"):
        by_kind(1.0, "waehrung")
    with pytest.raises(GeoplanError, match="Sprache"):
        by_kind(1.0, "euro", lang="fr")


# --------------------------------------------------------------------------- interactive map
def test_map_data_has_all_features_in_wgs84(berlin):
    doc = _html(berlin)
    data = _map_data(doc)
    assert len(data["features"]) == 58
    assert sorted(f["properties"]["key"] for f in data["features"]) == sorted(berlin["key"])
    coords = np.array(
        [c for f in data["features"] for poly in f["geometry"]["coordinates"] for ring in poly for c in ring]
    )
    # Berlin in lon/lat, rounded to 5 decimals
    assert 13.0 < coords[:, 0].min() and coords[:, 0].max() < 13.8
    assert 52.3 < coords[:, 1].min() and coords[:, 1].max() < 52.7
    assert np.allclose(coords, np.round(coords, 5))
    # one copy of the geometry and one set of polygons for all layers; a layer is a colouring
    assert doc.count("var geoplan_sozialraeume") == 1
    assert doc.count("L.geoJson(") == 1 and "geo_json_" not in doc
    assert all(len(f["properties"]["c"]) == len(LAYERS) for f in data["features"])


def test_class_numbers_are_the_legend_classes(berlin):
    """Each area's class per layer (drawn with the layer's palette) is the classification of the legend."""
    g = berlin.copy()
    g.loc[[4, 9], "need_index"] = np.nan
    doc = _html(g)
    by_key = {f["properties"]["key"]: f["properties"]["c"] for f in _map_data(doc)["features"]}
    palettes = json.loads(re.search(r"var palettes = (\[\[.*?\]\]), current", doc).group(1))
    assert len(palettes) == len(LAYERS)
    for i, ly in enumerate(LAYERS):
        clf = classify(g[ly.column].to_numpy(), ly)
        assert [by_key[k][i] for k in g["key"]] == clf.classes.tolist()
        assert palettes[i] == list(clf.colors)
    assert by_key[g.loc[4, "key"]][1] == -1  # no value: the grey no-data fill


def test_tolerance_from_area_size_and_stated(berlin, monkeypatch):
    from geoplan.report.maps import display_tolerance

    # Berlin's Prognoseräume (about 12 km² each): 5 m, stated in the legend (German and English)
    assert display_tolerance(berlin) == 5.0
    doc = _html(berlin)
    assert 'data-simplify-m="5"' in _legend_html(doc)
    assert "Grenzen für die Anzeige vereinfacht (Toleranz 5\u00a0m)" in _legend_html(doc)
    en = _html(berlin, lang="en")
    assert "Boundaries simplified for display (tolerance 5\u00a0m)" in _legend_html(en)
    # a given tolerance is used and stated; coarser means fewer vertices
    coarse = _html(berlin, simplify_m=50)
    assert 'data-simplify-m="50"' in _legend_html(coarse)
    n = lambda d: sum(len(r) for f in _map_data(d)["features"] for p in f["geometry"]["coordinates"] for r in p)
    assert n(coarse) < n(doc) / 2
    # the same areas ten times smaller (1/√10 the side): a smaller tolerance
    small = berlin.set_geometry(berlin.geometry.scale(0.3, 0.3, origin=(390000, 5820000)))
    assert display_tolerance(small) == 2.0
    # more vertices than the budget: the next larger tolerance (Berlin: 17,235 vertices at 5 m, 11,718 at 10 m)
    import shapely

    from geoplan.report import maps

    monkeypatch.setattr(maps, "SIMPLIFY_MAX_VERTICES", 15_000)
    assert display_tolerance(berlin) == 10.0
    assert shapely.get_num_coordinates(shapely.coverage_simplify(berlin.geometry.values, 10.0)).sum() <= 15_000


def test_simplified_geometry_keeps_areas_and_topology(berlin):
    data = _map_data(_html(berlin))
    web = gpd.GeoDataFrame.from_features(data["features"], crs=4326).to_crs(berlin.crs)
    web = web.set_index("key").loc[berlin["key"]]
    rel = np.abs(web.area.to_numpy() / berlin.area.to_numpy() - 1)
    assert rel.max() < 0.01
    assert web.is_valid.all()
    # Simplification on the coverage: no slivers or gaps between neighbours
    union_area = web.union_all().area
    assert abs(union_area - web.area.sum()) / union_area < 1e-3


def test_tooltip_fields_and_german_format(berlin):
    doc = _html(berlin)
    feats = {f["properties"]["key"]: f["properties"] for f in _map_data(doc)["features"]}
    first = feats[berlin.loc[0, "key"]]
    assert first["name"] == berlin.loc[0, "name"]
    assert first["t0"] == "1.234,56\u00a0€"
    assert first["t1"] == by_kind(berlin.loc[0, "pop_u21"], "zahl")
    assert re.fullmatch(r"\u2212?\d,\d\d", first["t2"])  # index format
    assert re.fullmatch(r"\u2212?\d{1,2},\d\u00a0%", first["t3"])
    for alias in ["Sozialraum", *TOOLTIP.values()]:
        assert json.dumps(alias) in doc
    # only key, name, the formatted tooltip strings and the class numbers leave the frame
    assert set(first) == {"key", "name", "t0", "t1", "t2", "t3", "c"}
    assert "7777777" not in doc and "7.777.777" not in doc


@pytest.mark.filterwarnings("ignore:Numba not installed")
def test_legend_breaks_equal_mapclassify(berlin):
    doc = _html(berlin)
    legends = _legends(doc)
    assert set(legends) == {ly.column for ly in LAYERS}
    y = berlin["budget_per_u21_eur"].to_numpy()
    q = mapclassify.Quantiles(y, k=5)
    assert legends["budget_per_u21_eur"][0] == pytest.approx(y.min())
    assert legends["budget_per_u21_eur"][1:] == pytest.approx(list(q.bins))
    fj = mapclassify.FisherJenks(berlin["need_index"].to_numpy(), k=5)
    assert legends["need_index"][1:] == pytest.approx(list(fj.bins))
    assert legends["change_pct"][1:] == pytest.approx([-10, -2, 2, 10, 1000])
    # German labels for the breaks
    first_upper = by_kind(q.bins[0], "euro", 0)
    assert f"{by_kind(y.min(), 'euro', 0)} – {first_upper}" in _legend_html(doc)


def test_no_external_urls(berlin):
    doc = _html(berlin)
    assert external_loads(doc) == []
    assert "cdn." not in doc and "jquery" not in doc.lower() and "bootstrap" not in doc.lower()
    assert "L.tileLayer" not in doc
    assert "Leaflet 1.9.4" in doc  # vendored library inlined


def test_scanner_finds_folium_default_cdn_links():
    """Negative control: the scanner would catch folium's default CDN assets."""
    import folium

    doc = folium.Map(location=[52.5, 13.4], tiles=None).get_root().render()
    assert len(external_loads(doc)) >= 5
    assert external_loads('<link rel="stylesheet" href="https://x.org/a.css">')
    assert external_loads("<style>@import 'https://x.org/a.css';</style>")
    assert external_loads('<div style="background:url(//x.org/a.png)"></div>')
    assert not external_loads('<a href="https://x.org">Quelle</a>')


def test_tiles_only_when_configured(berlin):
    url = "https://tiles.example.org/{z}/{x}/{y}.png"
    doc = _html(berlin, tiles=url, tiles_attribution="© Beispiel-Kacheln")
    assert "L.tileLayer" in doc and "tiles.example.org" in doc and "Beispiel-Kacheln" in doc
    # folium's own CDN assets stay out even with tiles
    assert "cdn.jsdelivr" not in doc and "code.jquery" not in doc
    assert "L.tileLayer" not in _html(berlin, tiles="")
    with pytest.raises(GeoplanError) as err:
        _html(berlin, tiles=url)
    assert err.value.location == "output.tiles_attribution"
    with pytest.raises(GeoplanError):
        _html(berlin, tiles="https://tiles.example.org/karte.png", tiles_attribution="x")


def test_html_is_deterministic_and_written(berlin, tmp_path):
    a = _html(berlin)
    b = _html(berlin)
    assert a == b
    assert not re.search(r"_[0-9a-f]{32}\b", a)
    path = write_interactive_map(tmp_path / "out" / "karte.html", berlin, LAYERS, tooltip=TOOLTIP,
                                 title="T", attribution=ATTR)
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert '<html lang="de">' in path.read_text(encoding="utf-8")


def test_inputs_not_modified(berlin):
    before = berlin.copy()
    _html(berlin)
    static_map_png_bytes(berlin, LAYERS[0], title="T", source_line="Q", figsize=(4, 3.5), dpi=50)
    assert before.equals(berlin)
    assert before.crs == berlin.crs


def test_missing_values_get_nodata_class(berlin):
    g = berlin.copy()
    g.loc[[1, 2], "budget_per_u21_eur"] = np.nan
    clf = classify(g["budget_per_u21_eur"].to_numpy(), LAYERS[0])
    assert (clf.classes[[1, 2]] == -1).all()
    assert sum(clf.counts) == 56
    doc = _html(g)
    assert NODATA_LABEL in _legend_html(doc)
    feats = {f["properties"]["key"]: f["properties"] for f in _map_data(doc)["features"]}
    assert feats[g.loc[1, "key"]]["t0"] == "–"


def test_diverging_palette_is_centred():
    """Neutral colour means 'no change' even when quantile breaks are skewed."""
    from matplotlib.colors import to_rgb

    y = np.array([-1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 20, 30, 40])
    clf = classify(y, MapLayer("x", "x", scheme="quantiles", k=5, palette="BrBG"))
    # all classes but the first lie above 0 -> green-blue side of BrBG (blue > red)
    rgb = [to_rgb(c) for c in clf.colors]
    assert all(b > r for r, _, b in rgb[1:])
    assert len(set(clf.colors)) == 5
    # symmetric data -> symmetric colours around the neutral middle
    sym = classify(np.linspace(-10, 10, 21), MapLayer("x", "x", scheme="user_defined",
                                                     bins=(-6, -2, 2, 6, 10), palette="BrBG"))
    assert sym.colors[0] != sym.colors[-1]
    mid = to_rgb(sym.colors[2])
    assert min(mid) > 0.9  # near-white neutral class around 0
    # a neutral value other than 0, e.g. observed/expected = 1
    oe = classify(np.array([0.5, 0.8, 0.95, 1.05, 1.2, 1.5]),
                  MapLayer("x", "x", scheme="user_defined", bins=(0.9, 1.1, 2.0), palette="PuOr", center=1.0))
    assert min(to_rgb(oe.colors[1])) > 0.9


def test_tooltip_name_not_repeated(berlin):
    doc = interactive_map(berlin, LAYERS[:1], tooltip={"name": "Sozialraum", "key": "Schlüssel"},
                          title="T", attribution="")
    assert doc.count('"Sozialraum"') == 1
    feats = _map_data(doc)["features"]
    # name and key are shown from their own properties, not written twice
    assert set(feats[0]["properties"]) == {"key", "name", "c"}
    assert re.search(r'tipFields = \["name", ?"key"\]', doc)


def test_classify_ties_give_fewer_classes():
    import warnings

    y = np.array([0.0] * 40 + list(range(1, 19)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = classify(y, MapLayer("x", "x", k=5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = list(mapclassify.Quantiles(y, k=5).bins)
    assert clf.bins == pytest.approx(expected)
    assert len(clf.colors) == len(clf.labels) == len(clf.bins) == 3
    assert clf.labels[0] == "bis 0,0" and sum(clf.counts) == 58


def test_classify_few_distinct_values():
    layer = MapLayer("x", "x", k=5)
    clf = classify(np.array([1.0, 1.0, 2.0, 2.0]), layer)
    assert len(clf.bins) == 2 and clf.classes.tolist() == [0, 0, 1, 1]
    empty = classify(np.array([np.nan, np.nan]), layer)
    assert empty.bins == [] and empty.classes.tolist() == [-1, -1]


# --------------------------------------------------------------------------- bad input
def test_wrong_crs(berlin):
    with pytest.raises(GeoplanError) as err:
        _html(berlin.to_crs(4326))
    assert "metrisch" in err.value.message
    no_crs = berlin.copy()
    no_crs = no_crs.set_crs(None, allow_override=True)
    with pytest.raises(GeoplanError):
        _html(no_crs)
    with pytest.raises(GeoplanError):
        static_map_png_bytes(berlin.to_crs(4326), LAYERS[0], title="T", source_line="Q")


def test_missing_column(berlin):
    with pytest.raises(GeoplanError) as err:
        interactive_map(berlin, [MapLayer("gibt_es_nicht", "X")], tooltip={}, title="T", attribution="")
    assert "gibt_es_nicht" in err.value.message
    with pytest.raises(GeoplanError):
        _html(berlin.drop(columns="name"))
    with pytest.raises(GeoplanError):
        static_map_png_bytes(berlin, MapLayer("gibt_es_nicht", "X"), title="T", source_line="Q")


def test_bad_layer_settings(berlin):
    with pytest.raises(GeoplanError):
        interactive_map(berlin, [MapLayer("need_index", "X", palette="jet")], tooltip={}, title="T", attribution="")
    with pytest.raises(GeoplanError):
        interactive_map(berlin, [MapLayer("need_index", "X", scheme="kmeans")], tooltip={}, title="T", attribution="")
    with pytest.raises(GeoplanError):
        interactive_map(berlin, [], tooltip={}, title="T", attribution="")
    g = berlin.copy()
    g["need_index"] = g["need_index"].astype(object)
    g.loc[5, "need_index"] = "hoch"
    with pytest.raises(GeoplanError) as err:
        interactive_map(g, [MapLayer("need_index", "X")], tooltip={}, title="T", attribution="")
    assert "Zeile 6" in err.value.location
    dup = berlin.copy()
    dup.loc[1, "key"] = dup.loc[0, "key"]
    with pytest.raises(GeoplanError):
        _html(dup)


# --------------------------------------------------------------------------- static map
def test_static_map_png(berlin, tmp_path):
    from PIL import Image

    layer = LAYERS[0]
    kw = dict(title="Budget je Kind/Jugendl. (unter 21)",
              source_line="Quelle: Amt für Statistik Berlin-Brandenburg (CC BY 3.0 DE); HzE-Werte simuliert",
              figsize=(6, 5), dpi=80)
    path = static_map(berlin, layer, path=tmp_path / "karte_budget.png", **kw)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    img = Image.open(io.BytesIO(data))
    assert img.size == (480, 400)
    assert "Software" not in img.info
    # deterministic bytes
    assert static_map_png_bytes(berlin, layer, **kw) == data
    # the choropleth colours are drawn (YlOrRd class colours present)
    from geoplan.report.maps import _palette_colors

    pixels = {tuple(p[:3]) for p in np.asarray(img.convert("RGB")).reshape(-1, 3)[::7]}
    for hexcol in _palette_colors("YlOrRd", 5):
        rgb = tuple(int(hexcol[i : i + 2], 16) for i in (1, 3, 5))
        assert rgb in pixels
    # different data -> different picture
    other = berlin.copy()
    other["budget_per_u21_eur"] = other["budget_per_u21_eur"][::-1].to_numpy()
    assert static_map_png_bytes(other, layer, **kw) != data


def test_static_map_small_area_and_empty_layer():
    """A few hundred metres (scale bar in m), one area without value, and a layer without any value."""
    import shapely
    from PIL import Image

    squares = [shapely.box(400000 + i * 200, 5800000 + j * 200, 400200 + i * 200, 5800200 + j * 200)
               for i in range(3) for j in range(2)]
    g = gpd.GeoDataFrame({"key": [f"{i:02d}" for i in range(6)], "name": [f"Gebiet {i}" for i in range(6)],
                          "v": [1, 2, 3, 4, 5, np.nan], "w": np.nan}, geometry=squares, crs=25833)
    png = static_map_png_bytes(g, MapLayer("v", "Wert"), title="Klein", source_line="Q", figsize=(5, 4), dpi=60)
    assert Image.open(io.BytesIO(png)).size == (300, 240)
    png = static_map_png_bytes(g, MapLayer("w", "Leer"), title="Leer", source_line="Q", figsize=(5, 4), dpi=60)
    assert Image.open(io.BytesIO(png)).size == (300, 240)
    doc = interactive_map(g, [MapLayer("w", "Leer"), MapLayer("v", "Wert", scheme="std_mean")],
                          tooltip={"v": "Wert"}, title="T", attribution="")
    assert len(_map_data(doc)["features"]) == 6


def test_static_maps_share_one_coverage_and_stay_identical():
    # issue 15: the areas' coverage (for placing legend, scale bar and arrow) is built once for
    # several maps of the same areas; a different set of areas gets its own
    import shapely

    from geoplan.report import maps

    gdf = gpd.GeoDataFrame(
        {"v": [1.0, 2.0, 3.0, 4.0], "w": [4.0, 3.0, 2.0, 1.0]},
        geometry=[shapely.box(i, j, i + 1, j + 1) for i in (0, 1) for j in (0, 1)],
        crs=25833,
    )
    layers = [maps.MapLayer(column=c, label=c) for c in ("v", "w")]
    maps._COVERAGE_CACHE.clear()
    first = maps.static_map_png_bytes(gdf, layers[0], title="t", source_line="s")
    coverage = maps._COVERAGE_CACHE[0][1]
    maps.static_map_png_bytes(gdf.assign(x=1), layers[1], title="t", source_line="s")
    assert maps._COVERAGE_CACHE[0][1] is coverage  # reused for the same geometry objects
    maps._COVERAGE_CACHE.clear()
    assert maps.static_map_png_bytes(gdf, layers[0], title="t", source_line="s") == first
    moved = gdf.set_geometry(gdf.geometry.translate(5, 0))
    maps.static_map_png_bytes(moved, layers[0], title="t", source_line="s")
    moved_cov = maps._COVERAGE_CACHE[0][1]
    assert moved_cov is not coverage
    assert moved_cov.covered(shapely.box(5, 0, 7, 2)) == pytest.approx(4.0)  # the moved areas, whole
    assert moved_cov.covered(shapely.box(4.5, 0.5, 5.5, 1.5)) == pytest.approx(0.5)  # cut at their edge
    assert moved_cov.covered(shapely.box(0, 0, 2, 2)) == 0.0  # where the areas were before


def test_coverage_equals_the_union_of_real_areas(berlin):
    # the covered area of a box is the area of the union's part in it (Sozialräume do not overlap)
    import shapely

    from geoplan.report.maps import _Coverage

    geoms = np.asarray(berlin.geometry.values, dtype=object)
    union, cov = shapely.union_all(geoms), _Coverage(geoms)
    x0, y0, x1, y1 = union.bounds
    for fx, fy, fw, fh in ((0, 0, 1, 1), (0, 0, 0.3, 0.2), (0.7, 0.8, 0.3, 0.2), (0.4, 0.4, 0.2, 0.1), (0, 0.9, 0.1, 0.1)):
        box = shapely.box(x0 + fx * (x1 - x0), y0 + fy * (y1 - y0),
                          x0 + (fx + fw) * (x1 - x0), y0 + (fy + fh) * (y1 - y0))
        assert cov.covered(box) == pytest.approx(union.intersection(box).area, rel=1e-6, abs=1.0)


def test_web_geometry_is_simplified_once_per_content(berlin, monkeypatch):
    # issue 15: maps of the same areas in one process (two languages, several presets) simplify them once;
    # the key is the geometry's content, CRS and tolerance, never the objects
    import shapely

    from geoplan.report import maps

    maps._WEB_CACHE.clear()
    calls = []
    real = maps._simplified_web_geometry
    monkeypatch.setattr(maps, "_simplified_web_geometry", lambda *a: calls.append(a[2]) or real(*a))
    first, whole = maps._web_geometry(berlin, 5.0)
    copy = berlin.copy()
    copy["geometry"] = shapely.from_wkb(shapely.to_wkb(berlin.geometry.values))  # equal content, new objects
    again, whole_again = maps._web_geometry(copy, 5.0)
    assert calls == [5.0] and whole_again == whole
    assert all(shapely.equals_exact(a, b, 0) for a, b in zip(first, again))
    maps._web_geometry(berlin, 10.0)  # another tolerance
    moved = berlin.set_geometry(berlin.geometry.translate(1.0, 0))
    maps._web_geometry(moved, 5.0)  # other coordinates
    assert calls == [5.0, 10.0, 5.0]


def test_static_map_paths_are_built_once_per_content_and_tolerance(berlin, monkeypatch):
    # issue 15: the PDF worker gets each map's areas as new objects (pickled per job): the outlines are
    # simplified and converted once per content; maps drawn from a copy are the same bytes
    import shapely

    from geoplan.report import maps

    maps._PATH_CACHE.clear()
    maps._COVERAGE_CACHE.clear()
    built = []
    real = maps._build_paths
    monkeypatch.setattr(maps, "_build_paths", lambda arr, tol: built.append(tol) or real(arr, tol))
    kw = dict(title="T", source_line="Q", figsize=(6, 5), dpi=60)
    first = static_map_png_bytes(berlin, LAYERS[0], **kw)
    copy = berlin.copy()
    copy["geometry"] = shapely.from_wkb(shapely.to_wkb(berlin.geometry.values))  # equal content, new objects
    coverage = maps._COVERAGE_CACHE[0][1]
    assert static_map_png_bytes(copy, LAYERS[0], **kw) == first
    assert len(built) == 1 and maps._COVERAGE_CACHE[0][1] is coverage
    # a tenth of a pixel: 6 in at 60 dpi over Berlin's ~47 km is about 0.13 km per pixel -> 10 m
    assert built[0] == 10.0
    static_map_png_bytes(berlin, LAYERS[0], **dict(kw, dpi=120))  # another size: another tolerance
    assert built == [10.0, 5.0]
    # the drawn outlines are within the tolerance of the areas and have fewer vertices
    paths = maps._paths_once(berlin.geometry.values, 5.0)
    whole = shapely.get_num_coordinates(berlin.geometry.values).sum()
    assert sum(len(p.vertices) for p in paths) < whole / 2
    for geom, path in zip(berlin.geometry.values, paths):
        drawn = shapely.points(path.vertices)
        assert shapely.distance(shapely.boundary(geom), drawn).max() < 1e-6  # every drawn vertex lies on the area's outline
