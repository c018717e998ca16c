"""The whole-column short cuts of the table reader and the case list give what the per-cell code gives.

``geoplan.load.tables.VECTORISED`` (and ``geoplan.stages.caselist.VECTORISED``) switch the short cuts
off; every input here is read both ways and the frames, dialects, suppressed counts, QA notes and
error messages must be equal -- on the demo's 53,882-row case list and on edgy small files (German
numbers, markers, empty cells, leading zeros, BOM, delimiters, decorated numbers, dates in several
formats, errors).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geoplan.errors import GeoplanError
from geoplan.load import caselist as load_caselist
from geoplan.load import tables
from geoplan.stages import caselist as stage_caselist
from tests.conftest import ROOT


def _both(monkeypatch, fn):
    """``fn()`` with the short cuts and with the per-cell code: (result or error, result or error)."""
    out = []
    for fast in (True, False):
        monkeypatch.setattr(tables, "VECTORISED", fast)
        monkeypatch.setattr(stage_caselist, "VECTORISED", fast)
        try:
            out.append(fn())
        except GeoplanError as err:
            out.append(err)
    monkeypatch.setattr(tables, "VECTORISED", True)
    monkeypatch.setattr(stage_caselist, "VECTORISED", True)
    return out


def _notes(notes):
    return [(n.stage, n.message, n.level, n.file, n.location, n.details) for n in notes]


def _same_table(a, b):
    if isinstance(a, GeoplanError) or isinstance(b, GeoplanError):
        assert isinstance(a, GeoplanError) and isinstance(b, GeoplanError), (a, b)
        assert type(a) is type(b) and vars(a) == vars(b) and str(a) == str(b)
        return
    pd.testing.assert_frame_equal(a.frame, b.frame, check_exact=True)
    assert [str(t) for t in a.frame.dtypes] == [str(t) for t in b.frame.dtypes]
    assert a.dialect == b.dialect and a.suppressed == b.suppressed and a.path == b.path
    assert _notes(a.notes) == _notes(b.notes)


EDGY = {
    # German numbers, markers, empty cells, leading-zero keys, semicolons, BOM
    "german_bom.csv": ("\ufeffSchlüssel;Name;Einwohner;Quote;Anteil\n"
                       "01011;Mitte;1.234;12,5;3,0\n02022;Süd;987;–;.\n03033;Nord;12.345.678;0,25;\n"
                       "04044;Ost;-;1.234,56;7\n05055;West;;-3,5;x\n", {}),
    # English numbers in a comma file, quoted thousands
    "english.csv": ('key,name,pop,rate\n1,"A, B","1,234",1.5\n2,C,"12,345,678",-0.25\n3,D,17,.5\n', {}),
    # the ambiguous 1.234 in a semicolon file (German by convention, noted)
    "ambiguous.csv": ("key;n\n11;1.234\n12;5.678\n13;9\n", {}),
    # decorated numbers: percent, euro, typographic minus, thin-space groups, science notation
    "decorated.csv": ("key;a;b;c;d\n1;12,5 %;1.234,50 €;\u22123,5;1\u202f234\n2;7 %;€ 99;4;2 345\n"
                      "3;0,5%;5 EUR;\u22120,1;1,5e3\n", {}),
    # blanks and no-break spaces around cells, empty lines, quotes, a footnote
    "blanks.csv": ("key;v;t\n 0001 ;\u00a012,5\u00a0; x y \n\n0002;\"3,5\";\"a;b\"\n0003; - ;\n\nQuelle: Amt\n", {}),
    # a units row skipped, title rows above the header, drop a totals row
    "titles.csv": ("Bevölkerung 2024\n\nkey;v\nAnzahl;%\n1;2,5\n2;3,5\n99;6,0\n",
                   {"skip_rows": 1, "drop_keys": ["^99$"]}),
    # sentinels and a validity column
    "sentinels.csv": ("key;v;w;KOM\n1;-9999;1,5;gültig\n2;2,5;-9999;ungültig\n3;3,5;4;gültig\n",
                      {"sentinels": (-9999,), "valid_column": "KOM"}),
    # key_width pads, numeric columns asked for
    "key_width.csv": ("key;v;code\n1;1;01\n22;2;02\n333;3;03\n", {"key_width": 4, "numeric_columns": ["v"]}),
    # tab and pipe delimiters, dot decimals
    "tab.tsv": ("key\tv\n1\t1.5\n2\t2.25\n", {}),
    "pipe.csv": ("key|v\n1|1,5\n2|2,25\n", {}),
    # errors: text in a number column, mixed decimal styles, lost leading zeros, duplicates, floats as keys,
    # science keys, short rows, missing key
    "text_in_number.csv": ("key;v\n1;1,5\n2;abc\n3;2,5\n4;3,5\n", {"numeric_columns": ["v"]}),
    "mixed_decimal.csv": ("key;v\n1;1,5\n2;2.5\n3;3,25\n4;4.75\n", {}),
    "lost_zeros.csv": ("key;v\n01001;1\n1002;2\n01003;3\n", {}),
    "duplicates.csv": ("key;v\nA1;1\nA1;2\nB2;3\n", {}),
    "float_keys.csv": ("key;v\n1100101.0;1\n1100102.0;2\n", {}),
    "sci_keys.csv": ("key;v\n1E5;1\n2E5;2\n", {}),
    "short_rows.csv": ("key;v;w\n1;1;2\n2;3\n3;4;5\n", {}),
    "missing_key.csv": ("Schluessel;v\n1;1\n", {}),
    "cp1252.csv": ("key;name;v\n1;Gr\u00fcnau;1,5\n2;Wei\u00dfensee;2,5\n".encode("cp1252"), {}),
}


@pytest.mark.parametrize("name", sorted(EDGY))
def test_edgy_tables_equal(tmp_path, monkeypatch, name):
    text, kw = EDGY[name]
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    key = "Schlüssel" if "Schlüssel" in str(text) else "key"
    a, b = _both(monkeypatch, lambda: tables.read_table(path, key=key, **kw))
    _same_table(a, b)


def _per_cell(tokens, markers, decimal, thousands):
    """What the per-cell code gives for a column of these cells: shape counts, kind and value per cell."""
    shapes = {t: tables._classify(t) for t in tokens if t not in markers}
    return shapes, {t: tables._cell_value(t, markers, decimal, thousands) for t in tokens}


def test_short_cuts_are_taken():
    """The fast path really runs on plain columns (else the comparisons above would compare a path with itself)."""
    markers = set(tables.DEFAULT_NA_MARKERS)
    assert tables._PlainColumn.of(["1.234,5", "12", "-", "abc1"], markers) is None
    assert tables._PlainColumn.of(["12,5 %", "3"], markers) is None  # decorated: per cell
    cells = ["1.234,5", "12", "-", "0,5", "1.234.567", "12", "", "1,2,3"]
    pc = tables._PlainColumn.of(cells, markers)
    assert pc is not None and pc.counts.sum() == len(cells)
    assert pc.shape_counts() == {"de_full": 1, "int": 1, "comma_decimal": 1, "dot_grouped": 1,
                                 "dot_grouped_multi": 1}
    assert pc.convert(",", ".") is None  # '1,2,3' is no number: the per-cell code names its row
    pc = tables._PlainColumn.of(cells[:-1], markers)
    kind, value = pc.convert(",", ".")
    got = {u: (("n", v) if k == 1 else tables._MARKER) for u, k, v in zip(pc.uniques, kind, value)}
    assert got == _per_cell(set(cells[:-1]), markers, ",", ".")[1]
    assert got["1.234.567"] == ("n", 1234567.0)
    assert not pc.leading_zero_code() and tables._PlainColumn.of(["01", "2", "-"], markers).leading_zero_code()


@pytest.fixture(scope="module")
def plain_token_columns():
    """All short tokens over the plain alphabet, each as a column ``[tok, "-", tok]`` of its own:
    {token: :class:`tables._PlainColumn`} (built once; :meth:`convert` does not change the column)."""
    import itertools

    alphabet = "01.,+-9"
    tokens = {"".join(p) for n in range(1, 6) for p in itertools.product(alphabet, repeat=n)}
    tokens |= {"1.234", "1.234,5", "1,234.5", "12.345.678", "1,234,567", "-0,5", "+3.", ",5", "007"}
    markers = set(tables.DEFAULT_NA_MARKERS)
    return {tok: tables._PlainColumn.of([tok, "-", tok], markers) for tok in sorted(tokens)}


def test_shape_of_every_plain_token(plain_token_columns):
    """The one-regex shapes of every plain token agree with the per-cell function (:func:`_classify`)."""
    markers = set(tables.DEFAULT_NA_MARKERS)
    for tok, pc in plain_token_columns.items():
        assert pc is not None
        shapes = {t: tables._classify(t) for t in {tok} if t not in markers}
        counts = tables.Counter(s for s in shapes.values() if s)
        for shape, sep in (("dot_grouped", "."), ("comma_grouped", ",")):
            if shapes.get(tok) == shape and tok.count(sep) > 1:
                counts[shape + "_multi"] += 1
        assert pc.shape_counts() == counts, tok
        assert pc.leading_zero_code() == (shapes.get(tok) == "int" and tok.lstrip("+-").startswith("0")
                                          and len(tok.lstrip("+-")) > 1)


@pytest.mark.parametrize("decimal,thousands", [(",", "."), (",", None), (".", ","), (".", None), (".", ".")])
def test_value_of_every_plain_token(plain_token_columns, decimal, thousands):
    """The per-shape conversion of every plain token (one column each) agrees with the per-cell function
    (:func:`_cell_value`) in each decimal style."""
    markers = set(tables.DEFAULT_NA_MARKERS)
    for tok, pc in plain_token_columns.items():
        assert pc is not None
        expected = tables._cell_value(tok, markers, decimal, thousands)
        got = pc.convert(decimal, thousands)
        if expected[0] == "m":
            assert got is not None and set(got[0].tolist()) == {0}
        elif expected[0] == "n":
            assert got is not None and got[0][list(pc.uniques).index(tok)] == 1
            assert got[1][list(pc.uniques).index(tok)] == expected[1], tok
        else:  # other style or no number: left to the per-cell code
            assert got is None, tok


def test_key_short_cut_matches_per_key_code(monkeypatch):
    cases = [["A1", "B2", "C3"], ["0101", "0102"], ["1E5", "2"], [" 1", "2"], ["'0101", "0102"], ["1.0", "2.0"],
             ['"7"', "8"], ["12", "1"], ["001", "01", "1"], ["x", ""], ["Mitte-Süd", "Nord"]]
    for keys in cases:
        for kw in ({}, {"allow_mixed_lengths": True}, {"key_width": 4}):
            a, b = _both(monkeypatch, lambda: tables.normalize_keys(keys, file="f.csv", **kw))
            if isinstance(a, GeoplanError):
                assert isinstance(b, GeoplanError) and vars(a) == vars(b)
            else:
                assert a == b, (keys, kw)


# --------------------------------------------------------------------------
# the case list


LIST = ROOT / "indicators" / "berlin" / "hze_fallliste_simuliert.csv"


def _caselist_cfg(path, **kw):
    cols = kw.pop("columns", {"case_id": "Fallnummer", "kind": "Hilfeart", "start": "Beginn", "end": "Ende",
                              "cost": "Kosten je Monat", "subarea": "Planungsraum", "x": "Rechtswert",
                              "y": "Hochwert"})
    return load_caselist.CaseListConfig(path=path, columns=cols, cost_basis="monat", crs="EPSG:25833", **kw)


def _same_caselist(a, b):
    pd.testing.assert_frame_equal(a.frame, b.frame, check_exact=True)
    assert a.unknown_kinds == b.unknown_kinds and a.bad_dates == b.bad_dates and a.summary == b.summary
    assert a.as_of == b.as_of and _notes(a.notes) == _notes(b.notes)


@pytest.fixture(scope="module")
def demo_inputs():
    from geoplan.cli import demo_config
    from geoplan.load import sources

    cfg = demo_config()
    bres = sources.read_boundaries_config(cfg, [], [])
    key_table, _ = sources.read_key_table(cfg, [])
    return cfg, bres.gdf, key_table


def test_demo_case_list_and_counts_equal(monkeypatch, demo_inputs):
    cfg, polygons, key_table = demo_inputs
    cl_cfg = cfg.hze.case_list
    agg = cfg.indicators.aggregate

    def run():
        cl, mapping, directory = load_caselist.read_case_list_inputs(
            cl_cfg, base_dir=cfg.base_dir, key_table=key_table, key_source=agg.source_key,
            key_target=agg.target_key)
        counts = stage_caselist.case_counts(
            cl, cl_cfg, area_keys=polygons["key"].tolist(), budget_year=cfg.budget_year,
            budget_kinds=cfg.hze.budget_kinds, mapping=mapping, polygons=polygons[["key", "geometry"]],
            directory=directory)
        return cl, counts

    (cl_a, cc_a), (cl_b, cc_b) = _both(monkeypatch, run)
    assert len(cl_a.frame) == 53882
    _same_caselist(cl_a, cl_b)
    pd.testing.assert_frame_equal(cc_a.frame, cc_b.frame, check_exact=True)
    pd.testing.assert_frame_equal(cc_a.panel, cc_b.panel, check_exact=True)
    assert cc_a.qa == cc_b.qa and cc_a.located == cc_b.located and _notes(cc_a.notes) == _notes(cc_b.notes)
    # the list has what the short cuts must get right: points, finer keys, duplicates, unknown kinds
    assert cc_a.located["punkt"] > 10000 and cc_a.located["subarea"] > 10000
    assert cc_a.qa["doppelt_ueberlappend"] > 0 and cc_a.qa["hilfeart_unbekannt"] > 0


def test_edgy_case_list_equal(tmp_path, monkeypatch):
    """Dates in several formats and unreadable ones, kinds as words and codes, empty cells, area keys with
    leading zeros padded by key_width, overlapping duplicates, a BOM and German costs."""
    rows = [
        "Fallnummer;Hilfeart;Beginn;Ende;Kosten je Monat;Sozialraum;Planungsraum",
        "F1;§ 34 SGB VIII;01.01.2023;31.12.2024;1.234,56;0101;",
        "F1;Heimerziehung;01.06.2024;;1.234,56;0101;",
        "F2;27.2;1.3.24;2025-01-31;99,5;101;",
        "F3;§ 41 i.V.m. § 34;2023-02-01 10:30:00;45657;;0202;",
        "F4;Eingliederungshilfe § 35a;45000;32.13.2024;-;;03030303",
        "F5;unbekannt;01.01.2024;;12;0303;",
        "F6;;kein Datum;01.01.2025;12;;",
        "F7;31;01.01.2024;01.01.2023;1.000;202;",
        "F8; 30 ; 02.02.2024 ;;  5,5 ;0404;",
    ]
    path = tmp_path / "liste.csv"
    path.write_text("\ufeff" + "\n".join(rows) + "\n", encoding="utf-8")
    cfg = _caselist_cfg(path, key_width=4, as_of="2025-12-31", columns={
        "case_id": "Fallnummer", "kind": "Hilfeart", "start": "Beginn", "end": "Ende", "cost": "Kosten je Monat",
        "area": "Sozialraum", "subarea": "Planungsraum"}, subarea_prefix_len=4)
    a, b = _both(monkeypatch, lambda: load_caselist.read_case_list(cfg))
    _same_caselist(a, b)
    assert a.bad_dates and a.unknown_kinds
    assert a.frame["start"].notna().sum() >= 7
    areas = ["0101", "0202", "0303", "0404"]
    ca, cb = _both(monkeypatch, lambda: stage_caselist.case_counts(
        a, cfg, area_keys=areas, budget_year=2026, budget_kinds=("ambulant", "teilstationaer")))
    pd.testing.assert_frame_equal(ca.frame, cb.frame, check_exact=True)
    pd.testing.assert_frame_equal(ca.panel, cb.panel, check_exact=True)
    assert ca.qa == cb.qa and ca.located == cb.located
    assert ca.qa["doppelt_ueberlappend"] == 1 and ca.located["area"] >= 5


def test_parse_dates_short_cut(monkeypatch):
    values = pd.Series(["31.12.2024", "1.3.24", "2024-12-31", "2024-12-31T08:00", "45657", "45657.0", None,
                        "", " 31.12.2024 ", "30.02.2024", "x", np.nan, "31.12.2024"] * 3, dtype=object)
    (pa, ba), (pb, bb) = _both(monkeypatch, lambda: load_caselist.parse_dates(values))
    pd.testing.assert_series_equal(pa, pb, check_exact=True)
    assert (ba == bb).all() and ba.sum() == 6


def test_queen_weights_as_libpysal(demo_inputs):
    """Queen neighbours from sorted boundary vertices equal libpysal's Queen; Moran's I and p unchanged."""
    import warnings

    import geopandas as gpd
    from libpysal.weights import Queen
    from shapely.geometry import MultiPolygon, Polygon, box

    from geoplan.stages.model import glm
    from geoplan.synthetic import make_sozialraeume

    def libpysal_queen(geometry):  # queen_weights before: libpysal's Queen
        gdf = gpd.GeoDataFrame(geometry=gpd.GeoSeries(geometry).reset_index(drop=True))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            w = Queen.from_dataframe(gdf, use_index=True)
        w.transform = "r"
        return w

    def esda_moran(v, w, seed):  # morans_i before: esda.Moran on libpysal's weights, islands left out
        from esda.moran import Moran
        from libpysal.weights import w_subset

        islands = list(w.islands)
        if islands:
            keep = [i for i in range(len(v)) if i not in set(islands)]
            w = w_subset(w, keep)
            w.transform = "r"
            v = v[keep]
        state = np.random.get_state()
        np.random.seed(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mi = Moran(v, w, permutations=999)
        np.random.set_state(state)
        return {"I": mi.I, "expected_I": mi.EI, "z": mi.z_sim, "p_value": mi.p_sim, "islands": len(islands),
                "n": len(v)}

    _, polygons, _ = demo_inputs
    # a square with a hole, the square in the hole, a two-part area touching at one corner only,
    # an island, a strip sharing an edge without a common vertex (no queen neighbour for libpysal)
    odd = [Polygon(box(0, 0, 3, 3).exterior.coords, [box(1, 1, 2, 2).exterior.coords]), box(1, 1, 2, 2),
           MultiPolygon([box(3, 3, 4, 4), box(5, 5, 6, 6)]), box(10, 10, 11, 11), box(-1, 0.5, 0, 2.5),
           box(6, 6, 7, 7)]
    grids = [polygons.geometry, make_sozialraeume(n=120, seed=3, geometry=True)[0].geometry, gpd.GeoSeries(odd)]
    for geometry in grids:
        ref = libpysal_queen(geometry)
        w = glm.queen_weights(geometry)
        assert {k: sorted(v) for k, v in ref.neighbors.items()} == w.neighbors
        assert w.transform == "R" and list(w.islands) == list(ref.islands)
        for v in (np.random.default_rng(7).normal(size=len(geometry)), np.arange(len(geometry), dtype=float)):
            got = glm.morans_i(v, geometry, seed=0)
            expected = esda_moran(v, ref, seed=0)
            assert abs(got["I"] - expected["I"]) < 1e-12 and abs(got["p_value"] - expected["p_value"]) < 1e-12
            assert abs(got["z"] - expected["z"]) < 1e-9 and abs(got["expected_I"] - expected["expected_I"]) < 1e-15
            assert got["islands"] == expected["islands"] and got["n"] == expected["n"]
    assert glm.morans_i(np.arange(6.0), gpd.GeoSeries(odd))["islands"] == 2


def test_overlap_check_only_overlays_meeting_interiors(demo_inputs):
    """check_boundaries skips the overlay for neighbours that only touch; its overlap findings are those of
    intersecting every pair (reference computed here), on odd shapes and on the demo's polygons."""
    import geopandas as gpd
    import shapely
    from shapely.geometry import box

    from geoplan.load.boundaries import check_boundaries

    def reference(geoms, labels, min_sliver):
        out = []
        for i in range(len(geoms)):
            for j in range(i + 1, len(geoms)):
                if shapely.intersects(geoms[i], geoms[j]):
                    ar = shapely.area(shapely.intersection(geoms[i], geoms[j]))
                    if ar > min_sliver:
                        out.append((f"{labels[i]} / {labels[j]}", ar))
        return sorted(out)

    odd = gpd.GeoDataFrame(
        {"key": ["a", "b", "c", "d", "e", "f", "g"]},
        geometry=[box(0, 0, 100, 100), box(100, 0, 200, 100),       # touch along an edge
                  box(199, 0, 300, 100),                            # overlaps b by 100 m²
                  box(0, 100, 100, 200), box(10, 110, 20, 120),     # e inside d (contained)
                  box(300, 0, 400, 100.005), box(300, 99.999, 400, 200)],  # sliver 0.6 m² below 1 m²
        crs="EPSG:25833")
    _, polygons, _ = demo_inputs
    for gdf in (odd, polygons[["key", "geometry"]]):
        for min_sliver in (1.0, 0.0):
            qa = check_boundaries(gdf, key="key", min_sliver_m2=min_sliver, strict=False)
            got = sorted((r.key, r.area_m2) for r in qa.findings.itertuples() if r.kind == "overlap")
            assert got == reference(list(gdf.geometry), list(gdf["key"]), min_sliver)
    assert len(got) == 3  # the demo's three overlaps (digitising noise of the open data)


@pytest.mark.parametrize("vectorised", [True, False])
@pytest.mark.parametrize("text, decimal, row", [
    ("key;v\n1;1,5\n2;2,5\n3;1,234,567\n", None, 4),      # several commas in a decimal-comma column
    ("key,v\n1,1.5\n2,2.5\n3,1.234.567\n", ".", 4),       # several dots with decimal '.'
])
def test_number_with_several_decimal_separators_is_a_clear_error(tmp_path, monkeypatch, vectorised, text,
                                                                   decimal, row):
    """'1,234,567' in a decimal-comma column (or '1.234.567' with decimal '.') was a ValueError traceback;
    now both paths name the column and the row."""
    monkeypatch.setattr(tables, "VECTORISED", vectorised)
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    kw = {"decimal": decimal} if decimal else {}
    with pytest.raises(GeoplanError) as err:
        tables.read_table(path, key="key", **kw)
    msg = str(err.value)
    assert "Spalte 'v'" in msg and f"Zeile {row}" in msg and "t.csv" in msg
