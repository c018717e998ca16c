"""Tests for geoplan.load.tables: real Berlin files and quirky files built here."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geoplan.errors import GeoplanError
from geoplan.load.tables import join_by_key, normalize_keys, read_table

ROOT = Path(__file__).resolve().parents[1]
BERLIN = ROOT / "indicators" / "berlin"


def write(tmp_path, name, text, encoding="utf-8", bom=False):
    p = tmp_path / name
    data = text.encode(encoding)
    if bom:
        data = b"\xef\xbb\xbf" + data
    p.write_bytes(data)
    return p


# --------------------------------------------------------------------------
# shipped Berlin files


def test_berlin_einwohner():
    r = read_table(BERLIN / "einwohner_plr_2022-06.csv", key="PLR-ID")
    f = r.frame
    assert len(f) == 542
    assert r.dialect["delimiter"] == ";"
    assert r.dialect["bom"] is True
    assert r.dialect["encoding"] == "utf-8"
    assert list(f.columns)[0] == "PLR-ID"
    assert f["PLR-ID"].iloc[0] == "01100101"
    assert f["PLR-ID"].str.len().eq(8).all()
    assert pd.api.types.is_string_dtype(f["PLR-ID"])
    assert f["Gesamt"].dtype == np.float64
    assert f.loc[0, "Gesamt"] == 3503.0
    # row "–;–;…;03400831" is fully suppressed
    row = f[f["PLR-ID"] == "03400831"].iloc[0]
    assert math.isnan(row["Gesamt"]) and math.isnan(row["ausländer"])
    # 52;4;6;3;–;9;–;18;12;22;6;03300515
    row = f[f["PLR-ID"] == "03300515"].iloc[0]
    assert row["Gesamt"] == 52 and math.isnan(row["18-27"]) and math.isnan(row["45-55"])
    assert r.suppressed["Gesamt"] == 2
    assert sum(r.suppressed.values()) == 30
    assert "ausländer" in f.columns  # umlaut in header survives


def test_berlin_mss_sentinels_and_validity():
    r = read_table(
        BERLIN / "mss_2021_index_indikatoren.csv",
        key="PLR_ID",
        sentinels=(-9999,),
        valid_column="KOM",
        valid_values=["gültig"],
    )
    f = r.frame
    assert len(f) == 542
    assert r.dialect["delimiter"] == ","
    assert r.dialect["decimal"] == "."
    assert f["PLR_ID"].iloc[0] == "01100101"  # quoted 8-digit key
    assert f["BEZ_ID"].iloc[0] == "01"  # code column with leading zero stays text
    assert f["PLR_NAME"].iloc[0] == "Stülerstraße"
    assert f.loc[0, "S1"] == pytest.approx(4.22594)
    assert (f["S1"] == -9999).sum() == 0
    assert f["S1"].min() > -100
    invalid = f["KOM"] != "gültig"
    assert invalid.sum() == 6
    assert f.loc[invalid, "S1"].isna().all()
    assert f.loc[invalid, "EW"].isna().all()
    assert f.loc[~invalid, "S1"].notna().all()
    note = [n for n in r.notes if "ungültig" in n.message]
    assert len(note) == 1
    assert set(note[0].details["keys"]) == set(f.loc[invalid, "PLR_ID"])
    assert "03300515" in note[0].message
    assert note[0].details["reasons"]["ungültig (EW unter 300)"] == 5
    assert r.suppressed["S1"] == 6  # the -9999 rows
    assert r.suppressed["S2"] == 542  # S2 is empty in 2021


def test_berlin_mss_without_validity_keeps_values():
    r = read_table(BERLIN / "mss_2021_index_indikatoren.csv", key="PLR_ID")
    # without sentinels, -9999 stays a number: the caller must name it
    assert (r.frame["S1"] == -9999).sum() == 6


def test_berlin_key_table():
    r = read_table(BERLIN / "lor_2021_plr_schluessel.csv", key="Planungsraum (Nummer)")
    f = r.frame
    assert len(f) == 542
    assert r.dialect["bom"] is True and r.dialect["delimiter"] == ","
    assert f["Prognoseraum (Nummer)"].iloc[0] == "0110"
    assert f["Planungsraum (Name)"].iloc[0] == "Stülerstraße"
    assert f["Fläche in qm"].iloc[0] == pytest.approx(366933.12)
    assert f["Stand der Daten"].iloc[0] == "01.01.2021"


# --------------------------------------------------------------------------
# quirky CSVs


def test_cp1252_semicolon_decimal_comma_thousands_dot(tmp_path):
    text = (
        "Schlüssel;Name;Einwohner;Quote\r\n"
        "0101;Märkisches Viertel;1.234;12,5\r\n"
        "0102;Süd – Ost;12.345.678;3,25\r\n"
        "0103;Groß;999;–\r\n"
    )
    p = write(tmp_path, "cp.csv", text, encoding="cp1252")
    r = read_table(p, key="Schlüssel")
    f = r.frame
    assert r.dialect["encoding"] == "cp1252"
    assert r.dialect["bom"] is False
    assert r.dialect["decimal"] == "," and r.dialect["thousands"] == "."
    assert f["Name"].tolist() == ["Märkisches Viertel", "Süd – Ost", "Groß"]
    assert f["Einwohner"].tolist() == [1234.0, 12345678.0, 999.0]
    assert f["Quote"].iloc[:2].tolist() == [12.5, 3.25]
    assert math.isnan(f["Quote"].iloc[2])
    assert r.suppressed == {"Quote": 1}
    assert f["Schlüssel"].tolist() == ["0101", "0102", "0103"]


def test_english_thousands_comma_quoted(tmp_path):
    text = 'key,pop,rate\n"001","1,234.5",0.5\n"002","12,000",1.25\n"003",7,2\n'
    r = read_table(write(tmp_path, "en.csv", text), key="key")
    assert r.dialect["decimal"] == "." and r.dialect["thousands"] == ","
    assert r.frame["pop"].tolist() == [1234.5, 12000.0, 7.0]
    assert r.frame["key"].tolist() == ["001", "002", "003"]


def test_bom_tab_and_pipe_delimiters(tmp_path):
    for delim in ("\t", "|"):
        text = delim.join(["id", "a", "b"]) + "\n" + delim.join(["07", "1,5", "2"]) + "\n" + delim.join(
            ["08", "2,5", "x"]) + "\n"
        r = read_table(write(tmp_path, "d.txt", text, bom=True), key="id")
        assert r.dialect["delimiter"] == delim
        assert r.dialect["bom"] is True
        assert r.frame["a"].tolist() == [1.5, 2.5]
        assert r.frame["id"].tolist() == ["07", "08"]
        assert math.isnan(r.frame["b"].iloc[1])


def test_markers_whitespace_and_quotes(tmp_path):
    text = (
        'Nr; "Name" ;Wert;Anteil\n'
        '" 0001 ";"Müller; Meier";  12 ;k.A.\n'
        '0002;Nord;.;x\n'
        '0003;Süd;/;-\n'
        '0004;West;;–\n'
        '0005;Ost;-3;1,5\n'
    )
    r = read_table(write(tmp_path, "m.csv", text), key="Nr")
    f = r.frame
    assert f["Nr"].tolist() == ["0001", "0002", "0003", "0004", "0005"]
    assert f["Name"].iloc[0] == "Müller; Meier"
    assert f["Wert"].iloc[0] == 12.0
    assert f["Wert"].iloc[4] == -3.0
    assert f["Wert"].isna().sum() == 3
    assert r.suppressed == {"Wert": 3, "Anteil": 4}
    assert f["Anteil"].iloc[4] == 1.5


def test_sentinels_counted(tmp_path):
    text = "id,v\n1,5\n2,-9999\n3,-9999.0\n"
    r = read_table(write(tmp_path, "s.csv", text), key="id", sentinels=(-9999,))
    assert r.frame["v"].isna().tolist() == [False, True, True]
    assert r.suppressed == {"v": 2}


def test_text_in_number_column_names_row_and_column(tmp_path):
    text = "id;EW;Quote\n01;10;1,5\n02;12a;2,5\n03;14;3,0\n"
    with pytest.raises(GeoplanError) as ei:
        read_table(write(tmp_path, "t.csv", text), key="id")
    e = ei.value
    assert "EW" in e.message
    assert "Zeile 3" in e.location and "'EW'" in e.location
    assert "12a" in e.found
    assert e.file.endswith("t.csv")


def test_mixed_decimal_comma_and_point(tmp_path):
    text = "id;Quote\n01;1,5\n02;2,5\n03;3.25\n04;4,5\n"
    with pytest.raises(GeoplanError) as ei:
        read_table(write(tmp_path, "mix.csv", text), key="id")
    e = ei.value
    assert "gemischt" in e.message
    assert "Zeile 4" in e.location  # the point row
    assert "Zeilen 2, 3, 5" in e.location  # the comma rows


def test_missing_key_column_lists_columns(tmp_path):
    p = write(tmp_path, "k.csv", "id;EW\n01;3\n")
    with pytest.raises(GeoplanError) as ei:
        read_table(p, key="PLR_ID")
    assert "'id'" in ei.value.found and "'EW'" in ei.value.found
    assert "PLR_ID" in ei.value.message


def test_key_match_ignores_case_and_blanks(tmp_path):
    p = write(tmp_path, "k.csv", " Plr_Id ;EW\n01;3\n02;4\n")
    r = read_table(p, key="PLR_ID")
    # the frame uses the caller's spelling, the dialect keeps the file's
    assert r.key == "PLR_ID" and r.dialect["key_in_file"] == "Plr_Id"
    assert r.frame["PLR_ID"].tolist() == ["01", "02"]
    r = read_table(p, key="plr_id", numeric_columns=["ew"])
    assert list(r.frame.columns) == ["plr_id", "ew"]
    assert r.frame["ew"].tolist() == [3.0, 4.0]


def test_missing_empty_truncated_files(tmp_path):
    with pytest.raises(GeoplanError, match="nicht gefunden"):
        read_table(tmp_path / "nope.csv", key="id")
    with pytest.raises(GeoplanError, match="leer"):
        read_table(write(tmp_path, "e.csv", ""), key="id")
    with pytest.raises(GeoplanError, match="leer"):
        read_table(write(tmp_path, "e2.csv", "\n\n", bom=True), key="id")
    with pytest.raises(GeoplanError, match="keine Datenzeilen"):
        read_table(write(tmp_path, "h.csv", "id;a;b\n"), key="id")
    with pytest.raises(GeoplanError, match="abgeschnitten") as ei:
        read_table(write(tmp_path, "tr.csv", "id;a;b\n01;1;2\n02;3;4\n03;5"), key="id")
    assert ei.value.location == "Zeile 4"


def test_leading_zeros_lost_is_an_error_and_key_width_pads(tmp_path):
    text = "PLR;EW\n1100101;3\n12601236;4\n2100102;5\n"
    p = write(tmp_path, "z.csv", text)
    with pytest.raises(GeoplanError) as ei:
        read_table(p, key="PLR")
    e = ei.value
    assert "führende Nullen" in e.message
    assert "Zeilen 2, 4" in e.location
    assert "key_width: 8" in e.hint
    r = read_table(p, key="PLR", key_width=8)
    assert r.frame["PLR"].tolist() == ["01100101", "12601236", "02100102"]


def test_float_keys_after_excel(tmp_path):
    p = write(tmp_path, "f.csv", "PLR;EW\n1100101.0;3\n12601236.0;4\n")
    with pytest.raises(GeoplanError, match="Kommazahlen"):
        read_table(p, key="PLR")
    r = read_table(p, key="PLR", key_width=8)
    assert r.frame["PLR"].tolist() == ["01100101", "12601236"]
    p2 = write(tmp_path, "sci.csv", "PLR;EW\n1.1001E+07;3\n1.2601E+07;4\n")
    with pytest.raises(GeoplanError, match="wissenschaftlicher"):
        read_table(p2, key="PLR")


def test_duplicate_keys(tmp_path):
    p = write(tmp_path, "d.csv", "id;v\n01;1\n02;2\n01;3\n")
    with pytest.raises(GeoplanError) as ei:
        read_table(p, key="id")
    assert "01" in ei.value.found
    assert "Zeilen 2, 4" in ei.value.location
    r = read_table(p, key="id", allow_duplicates=True)
    assert len(r.frame) == 3


def test_rows_with_wrong_field_count(tmp_path):
    p = write(tmp_path, "w.csv", "id,name,v\n01,Nord,1\n02,Süd, West,2\n03,Ost,3\n")
    with pytest.raises(GeoplanError) as ei:
        read_table(p, key="id")
    assert ei.value.location == "Zeile 3"


def test_title_rows_and_footnotes_in_csv(tmp_path):
    text = (
        "Einwohner nach Planungsraum;;\n"
        "Stand 31.12.2022;;\n"
        ";;\n"
        "PLR;EW;Quote\n"
        "0101;10;1,5\n"
        "0102;20;2,5\n"
        ";;\n"
        "Quelle: Amt für Statistik;;\n"
    )
    r = read_table(write(tmp_path, "title.csv", text), key="PLR")
    assert r.dialect["header_row"] == 4
    assert r.frame["PLR"].tolist() == ["0101", "0102"]
    assert r.frame["EW"].tolist() == [10.0, 20.0]
    assert any("Fußnote" in n.message for n in r.notes)


def test_decoding_with_wrong_explicit_encoding(tmp_path):
    p = write(tmp_path, "c.csv", "id;Name\n01;Müller\n", encoding="cp1252")
    with pytest.raises(GeoplanError) as ei:
        read_table(p, key="id", encoding="utf-8")
    assert ei.value.location == "Zeile 2"


def test_explicit_dialect_overrides(tmp_path):
    # "1.234" alone is ambiguous; with a comma delimiter it reads as decimal point
    p = write(tmp_path, "a.csv", "id,v\n01,1.234\n02,2.5\n")
    assert read_table(p, key="id").frame["v"].tolist() == [1.234, 2.5]
    p2 = write(tmp_path, "b.csv", "id;v\n01;1.234\n02;2.000\n")
    r = read_table(p2, key="id")
    assert r.frame["v"].tolist() == [1234.0, 2000.0]
    assert any("mehrdeutig" in n.message for n in r.notes)
    r = read_table(p2, key="id", decimal=".", thousands="")
    assert r.frame["v"].tolist() == [1.234, 2.0]


# --------------------------------------------------------------------------
# XLSX


def _xlsx(path, sheets: dict[str, list[list]]):
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for r in rows:
            ws.append(r)
    wb.save(path)
    return path


def test_xlsx_header_offset_and_numbers(tmp_path):
    p = _xlsx(
        tmp_path / "jc.xlsx",
        {
            "SGB II": [
                ["Jobcenter Musterstadt: SGB-II-Quote nach Sozialraum"],
                ["Stand: Dezember 2022"],
                [],
                ["Sozialraum", "Name", "SGB II", "Quote"],
                ["0101", "Nord", 1234, 12.5],
                ["0102", "Süd", "*", "3,5"],
                ["0103", "Ost", 88, None],
            ]
        },
    )
    r = read_table(p, key="Sozialraum")
    f = r.frame
    assert r.dialect["sheet"] == "SGB II"
    assert r.dialect["header_row"] == 4
    assert f["Sozialraum"].tolist() == ["0101", "0102", "0103"]
    assert f["SGB II"].iloc[0] == 1234.0 and math.isnan(f["SGB II"].iloc[1])
    assert f["Quote"].iloc[0] == 12.5 and f["Quote"].iloc[1] == 3.5
    assert r.suppressed == {"SGB II": 1, "Quote": 1}
    r2 = read_table(p, key="Sozialraum", header_row=4)
    assert r2.frame.equals(f)


def test_xlsx_numeric_keys_lost_zeros(tmp_path):
    p = _xlsx(tmp_path / "n.xlsx", {"T": [["PLR", "EW"], [1100101, 3], [12601236, 4]]})
    with pytest.raises(GeoplanError) as ei:
        read_table(p, key="PLR")
    assert "Zeile 2" in ei.value.location and "key_width" in ei.value.hint
    r = read_table(p, key="PLR", key_width=8)
    assert r.frame["PLR"].tolist() == ["01100101", "12601236"]


def test_xlsx_sheet_choice(tmp_path):
    p = _xlsx(
        tmp_path / "s.xlsx",
        {
            "Info": [["Erläuterungen"]],
            "Daten": [["id", "v"], ["01", 1], ["02", 2]],
            "Daten 2021": [["id", "v"], ["01", 5], ["02", 6]],
        },
    )
    with pytest.raises(GeoplanError) as ei:
        read_table(p, key="id")
    assert "'Info'" in ei.value.found and "'Daten 2021'" in ei.value.found
    with pytest.raises(GeoplanError) as ei:
        read_table(p, key="id", sheet="Daten 2022")
    assert "'Daten'" in ei.value.found
    assert read_table(p, key="id", sheet="Daten 2021").frame["v"].tolist() == [5.0, 6.0]
    assert read_table(p, key="id", sheet=1).frame["v"].tolist() == [1.0, 2.0]
    p2 = _xlsx(tmp_path / "s2.xlsx", {"Info": [["Erläuterungen"]], "Daten": [["id", "v"], ["01", 1]]})
    r = read_table(p2, key="id")
    assert r.dialect["sheet"] == "Daten"


# --------------------------------------------------------------------------
# keys and joins


def test_normalize_keys_direct():
    assert normalize_keys(["1", "02"], key_width=3) == ["001", "002"]
    assert normalize_keys(["A1", "B22"]) == ["A1", "B22"]  # not numeric: no length check
    with pytest.raises(GeoplanError, match="länger"):
        normalize_keys(["12345"], key_width=4)
    with pytest.raises(GeoplanError, match="Leere"):
        normalize_keys(["01", None])


def test_join_reports_and_fails_on_missing_keys():
    left = pd.DataFrame({"key": ["01", "02", "03"], "name": ["a", "b", "c"]})
    right = pd.DataFrame({"PLR": ["02", "03", "04"], "EW": [2.0, 3.0, 4.0], "name": ["x", "y", "z"]})
    with pytest.raises(GeoplanError) as ei:
        join_by_key(left, right, left_key="key", right_key="PLR", left_name="grenzen.gpkg",
                    right_name="einwohner.csv")
    e = ei.value
    assert "grenzen.gpkg" in e.message and "einwohner.csv" in e.message
    assert "01" in e.found and "04" in e.found
    assert "allow_missing_right" in e.hint and "allow_missing_left" in e.hint
    j = join_by_key(left, right, left_key="key", right_key="PLR", left_name="grenzen.gpkg",
                    right_name="einwohner.csv", allow_missing_left=["04"], allow_missing_right=True)
    assert j.missing_in_right == ["01"]
    assert j.missing_in_left == ["04"]
    assert j.frame["key"].tolist() == ["01", "02", "03"]
    assert math.isnan(j.frame["EW"].iloc[0]) and j.frame["EW"].iloc[2] == 3.0
    assert j.frame["name_einwohner"].tolist()[1:] == ["x", "y"]
    assert len(j.notes) == 2
    # a list that does not cover every missing key still fails
    with pytest.raises(GeoplanError, match="passen nicht"):
        join_by_key(left, right, left_key="key", right_key="PLR", left_name="l", right_name="r",
                    allow_missing_left=["05"], allow_missing_right=True)


def test_join_duplicates_and_zero_hint():
    left = pd.DataFrame({"key": ["0101", "0102"]})
    right = pd.DataFrame({"k": ["101", "102", "102"], "v": [1.0, 2.0, 3.0]})
    with pytest.raises(GeoplanError) as ei:
        join_by_key(left, right, left_key="key", right_key="k", left_name="l", right_name="r")
    assert "mehrfach" in ei.value.message and "102" in ei.value.found
    right = right.drop_duplicates("k")
    with pytest.raises(GeoplanError) as ei:
        join_by_key(left, right, left_key="key", right_key="k", left_name="l", right_name="r")
    assert "führende Nullen" in ei.value.hint


def test_join_berlin_einwohner_with_key_table():
    ew = read_table(BERLIN / "einwohner_plr_2022-06.csv", key="PLR-ID")
    kt = read_table(BERLIN / "lor_2021_plr_schluessel.csv", key="Planungsraum (Nummer)")
    j = join_by_key(kt, ew, left_key="Planungsraum (Nummer)", right_key="PLR-ID",
                    left_name="lor_2021_plr_schluessel.csv", right_name="einwohner_plr_2022-06.csv")
    assert j.missing_in_left == [] and j.missing_in_right == []
    assert len(j.frame) == 542
    assert j.frame["Gesamt"].sum() == pytest.approx(ew.frame["Gesamt"].sum())


def test_running_numbers_of_mixed_length_pass_with_note(tmp_path):
    text = "Nr;EW\n" + "".join(f"{i};{i * 10}\n" for i in range(1, 13))
    r = read_table(write(tmp_path, "n.csv", text), key="Nr")
    assert r.frame["Nr"].tolist()[:2] == ["1", "2"] and r.frame["Nr"].iloc[-1] == "12"
    assert any("verschiedener Länge" in n.message for n in r.notes)
    p = write(tmp_path, "ags.csv", "AGS;EW\n1001000;1\n11000000;2\n")
    with pytest.raises(GeoplanError, match="führende Nullen"):
        read_table(p, key="AGS")
    r = read_table(p, key="AGS", allow_mixed_key_lengths=True)
    assert r.frame["AGS"].tolist() == ["1001000", "11000000"]


def test_decimal_style_decided_per_column(tmp_path):
    # a German file where one column was pasted with decimal points
    text = "id;Quote;Anteil;EW\n01;1,5;0.25;1.234\n02;2,5;0.5;12.345\n"
    r = read_table(write(tmp_path, "pc.csv", text), key="id")
    f = r.frame
    assert f["Quote"].tolist() == [1.5, 2.5]
    assert f["Anteil"].tolist() == [0.25, 0.5]
    assert f["EW"].tolist() == [1234.0, 12345.0]
    assert r.dialect["decimal"] == ","
    assert r.dialect["columns"]["Anteil"]["decimal"] == "."
    assert any("abweichendem Zahlenformat" in n.message for n in r.notes)


def test_xlsx_booleans_and_dates_are_not_numbers(tmp_path):
    import datetime as dt

    p = _xlsx(tmp_path / "b.xlsx", {"T": [["id", "flag", "EW", "Stand"],
                                           ["01", True, 5, dt.datetime(2022, 12, 31)],
                                           ["02", False, 6, dt.datetime(2022, 12, 31)]]})
    r = read_table(p, key="id")
    assert r.frame["flag"].tolist() == ["WAHR", "FALSCH"]
    assert r.frame["EW"].tolist() == [5.0, 6.0]
    assert r.frame["Stand"].iloc[0].startswith("2022-12-31")
    p2 = _xlsx(tmp_path / "d.xlsx", {"T": [["id", "EW"], ["01", 5], ["02", dt.datetime(2022, 1, 1)], ["03", 7]]})
    with pytest.raises(GeoplanError, match="Text in der Zahlenspalte") as ei:
        read_table(p2, key="id")
    assert "Zeile 3" in ei.value.location


def test_mixed_encodings_in_one_file(tmp_path):
    raw = "id;Name\n01;Müller\n".encode("utf-8") + "02;Bäcker\n".encode("cp1252")
    p = tmp_path / "mixed.csv"
    p.write_bytes(raw)
    with pytest.raises(GeoplanError, match="mischt") as ei:
        read_table(p, key="id")
    assert "Zeile 3" in ei.value.location and "Zeile 2" in ei.value.location


def test_comma_file_with_quoted_decimal_commas(tmp_path):
    text = 'id,Name,Quote\n"01","Nord, Ost","1,5"\n"02","Süd","2,25"\n'
    r = read_table(write(tmp_path, "q.csv", text), key="id")
    assert r.dialect["delimiter"] == ","
    assert r.frame["Quote"].tolist() == [1.5, 2.25]
    assert r.frame["Name"].tolist() == ["Nord, Ost", "Süd"]


def test_berlin_key_table_aggregates_to_prognoseraum_boundaries():
    """The shipped key table and Prognoseraum layer agree on all 58 keys."""
    from geoplan.load.boundaries import prepare_boundaries

    b = prepare_boundaries(ROOT / "boundaries" / "berlin" / "prognoseraeume_2021.geojson", key="id", name="name")
    kt = read_table(BERLIN / "lor_2021_plr_schluessel.csv", key="Planungsraum (Nummer)")
    ew = read_table(BERLIN / "einwohner_plr_2022-06.csv", key="PLR-ID")
    plr = join_by_key(kt, ew, left_key="Planungsraum (Nummer)", right_key="PLR-ID",
                      left_name="lor_2021_plr_schluessel.csv", right_name="einwohner_plr_2022-06.csv").frame
    pgr = plr.groupby("Prognoseraum (Nummer)", as_index=False)["Gesamt"].sum(min_count=1)
    j = join_by_key(b.gdf, pgr, left_key="key", right_key="Prognoseraum (Nummer)",
                    left_name="prognoseraeume_2021.geojson", right_name="einwohner (Prognoseräume)")
    assert len(j.frame) == 58 and j.missing_in_left == [] and j.missing_in_right == []
    assert j.frame.crs.to_epsg() == 25833  # still a GeoDataFrame
    # Berlin had about 3.7 million residents in mid-2022
    assert 3.6e6 < j.frame["Gesamt"].sum() < 3.9e6


# --------------------------------------------------------------------------
# property: what a German or English export writes, read_table reads back

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _de(v: float) -> str:
    s = f"{v:,.3f}"  # 1,234.500
    return s.replace(",", "X").replace(".", ",").replace("X", ".")


@settings(max_examples=40, deadline=None)
@given(
    keys=st.lists(st.integers(0, 99_999_999), min_size=1, max_size=15, unique=True),
    values=st.lists(st.floats(-1e7, 1e7, allow_nan=False).map(lambda v: round(v, 3)), min_size=15, max_size=15),
    suppressed=st.lists(st.booleans(), min_size=15, max_size=15),
    german=st.booleans(),
)
def test_roundtrip_exports(tmp_path_factory, keys, values, suppressed, german):
    tmp = tmp_path_factory.mktemp("rt")
    rows = []
    expected = []
    for i, k in enumerate(keys):
        v = values[i]
        if suppressed[i]:
            cell, exp = "–" if german else "", np.nan
        else:
            cell, exp = (_de(v) if german else f'"{v:,.3f}"'), v
        rows.append((f"{k:08d}", cell))
        expected.append(exp)
    sep = ";" if german else ","
    text = f"PLR{sep}Wert\n" + "".join(f'"{k}"{sep}{c}\n' for k, c in rows)
    p = tmp / "t.csv"
    p.write_bytes(text.encode("cp1252" if german else "utf-8"))
    r = read_table(p, key="PLR")
    assert r.frame["PLR"].tolist() == [k for k, _ in rows]
    got = r.frame["Wert"].to_numpy()
    assert np.allclose(got, np.array(expected, dtype=float), equal_nan=True, rtol=0, atol=1e-9)
    assert r.suppressed.get("Wert", 0) == sum(suppressed[: len(keys)])


def test_summary_for_datengrundlage():
    r = read_table(BERLIN / "einwohner_plr_2022-06.csv", key="PLR-ID")
    s = r.summary()
    assert s["rows"] == 542 and s["key"] == "PLR-ID" and s["delimiter"] == ";" and s["bom"] is True
    assert s["suppressed_cells"] == 30
    assert "Gesamt" in s["numeric_columns"] and "PLR-ID" not in s["numeric_columns"]


def test_number_decorations(tmp_path):
    text = "id;Quote;EW;Saldo;Anteil\n01;12,5 %;1 234;\u22123;0,500\n02;7 %;12\u202f345;4;0,250\n"
    r = read_table(write(tmp_path, "deco.csv", text), key="id")
    f = r.frame
    assert f["Quote"].tolist() == [12.5, 7.0]
    assert f["EW"].tolist() == [1234.0, 12345.0]
    assert f["Saldo"].tolist() == [-3.0, 4.0]
    assert f["Anteil"].tolist() == [0.5, 0.25]  # 0,500 is never a thousands group


def test_numeric_validity_flag(tmp_path):
    p = write(tmp_path, "v.csv", "id;EW;ok\n01;5;1\n02;6;0\n03;7;1\n")
    r = read_table(p, key="id", valid_column="ok", valid_values=["1"])
    assert r.frame["EW"].isna().tolist() == [False, True, False]
    assert r.frame["ok"].tolist() == [1.0, 0.0, 1.0]  # the flag itself is kept
    assert any(n.details.get("keys") == ["02"] for n in r.notes)


def test_join_empty_key_names_frame():
    left = pd.DataFrame({"key": ["01", None]})
    right = pd.DataFrame({"k": ["01"], "v": [1.0]})
    with pytest.raises(GeoplanError) as ei:
        join_by_key(left, right, left_key="key", right_key="k", left_name="grenzen.gpkg", right_name="r.csv")
    assert ei.value.file == "grenzen.gpkg"


def test_join_hint_names_configured_fields():
    left = pd.DataFrame({"key": ["01", "02"]})
    right = pd.DataFrame({"k": ["01"], "v": [1.0]})
    with pytest.raises(GeoplanError) as ei:
        join_by_key(left, right, left_key="key", right_key="k", left_name="l", right_name="r",
                    config_fields=("indicators.allow_extra_keys", "indicators.allow_missing_keys"))
    assert "'indicators.allow_missing_keys'" in ei.value.hint
    assert "allow_extra_keys" not in ei.value.hint


def test_excel_sep_hint_line(tmp_path):
    p = write(tmp_path, "sep.csv", "sep=;\nid;Name, Zusatz;EW\n01;a, b;5\n02;c;6x\n")
    with pytest.raises(GeoplanError) as ei:
        read_table(p, key="id")
    assert ei.value.location.startswith("Zeile 4")  # line numbers as in the file
    p2 = write(tmp_path, "sep2.csv", "sep=;\nid;Name, Zusatz;EW\n01;a, b;5\n02;c;6\n")
    r = read_table(p2, key="id")
    assert r.dialect["delimiter"] == ";" and r.dialect["header_row"] == 2
    assert r.frame["EW"].tolist() == [5.0, 6.0]


def test_xlsx_with_wrong_dimension(tmp_path):
    """Some exports claim the sheet spans only A1; read-only mode must not trust it."""
    import re
    import zipfile

    src = _xlsx(tmp_path / "ok.xlsx", {"T": [["id", "EW"], ["01", 5], ["02", 6]]})
    bad = tmp_path / "dim.xlsx"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(bad, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.startswith("xl/worksheets/sheet"):
                data, n = re.subn(rb'<dimension ref="A1:B3"\s*/>', b'<dimension ref="A1"/>', data)
                assert n == 1
            zout.writestr(item, data)
    r = read_table(bad, key="id")
    assert r.frame["EW"].tolist() == [5.0, 6.0]


def test_header_cells_with_line_breaks_and_year_numbers(tmp_path):
    p = _xlsx(tmp_path / "h.xlsx", {"T": [["PLR-ID", "Einwohner\ninsgesamt", 2021, 2022.0],
                                           ["0101", 5, 1, 2]]})
    r = read_table(p, key="PLR-ID")
    assert list(r.frame.columns) == ["PLR-ID", "Einwohner insgesamt", "2021", "2022"]


def test_missing_key_suggests_close_name():
    with pytest.raises(GeoplanError) as ei:
        read_table(BERLIN / "einwohner_plr_2022-06.csv", key="PLR_ID")
    assert "'PLR-ID'" in ei.value.hint


_CELLS = st.sampled_from(["", "–", "-", ".", "x", "/", "k.A.", "12", "1,5", "1.5", "1.234", "1.234,5",
                          "1,234.5", "0101", "12a", "Müller", '"q;u,o"', "-9999", "1e3", " 7 "])


@settings(max_examples=80, deadline=None)
@given(
    header=st.lists(st.sampled_from(["id", "EW", "Quote", "Name", "", "id2"]), min_size=1, max_size=4),
    rows=st.lists(st.lists(_CELLS, min_size=0, max_size=5), min_size=0, max_size=6),
    sep=st.sampled_from([";", ",", "\t"]),
    enc=st.sampled_from(["utf-8", "cp1252"]),
)
def test_fuzz_only_geoplan_errors(tmp_path_factory, header, rows, sep, enc):
    """Whatever a table looks like, the reader answers with a result or a GeoplanError."""
    text = sep.join(header) + "\n" + "".join(sep.join(r) + "\n" for r in rows)
    p = tmp_path_factory.mktemp("fz") / "f.csv"
    p.write_bytes(text.encode(enc))
    try:
        r = read_table(p, key="id")
    except GeoplanError as e:
        assert e.message and e.file
    else:
        assert pd.api.types.is_string_dtype(r.frame[r.key])
        assert r.frame[r.key].str.len().gt(0).all()
        for c in r.frame.columns:
            assert r.frame[c].dtype == np.float64 or pd.api.types.is_string_dtype(r.frame[c])


def test_numeric_columns_strict_only_where_asked(tmp_path):
    text = "id;Hausnr;EW;Quote;Code\n01;12;5;1,5;07\n02;12a;6;2,5;08\n03;14;7;x;09\n"
    p = write(tmp_path, "nc.csv", text)
    with pytest.raises(GeoplanError, match="Text in der Zahlenspalte 'Hausnr'"):
        read_table(p, key="id")
    r = read_table(p, key="id", numeric_columns=["EW", "quote"])
    f = r.frame
    assert f["Hausnr"].tolist() == ["12", "12a", "14"]
    assert f["EW"].tolist() == [5.0, 6.0, 7.0]
    assert f["quote"].iloc[:2].tolist() == [1.5, 2.5]  # caller's spelling
    assert r.suppressed == {"quote": 1}
    assert f["Code"].tolist() == ["07", "08", "09"]
    with pytest.raises(GeoplanError) as ei:
        read_table(p, key="id", numeric_columns=["Hausnr"])
    assert "Zeile 3" in ei.value.location
    with pytest.raises(GeoplanError) as ei:
        read_table(p, key="id", numeric_columns=["Einwohner", "EW"])
    assert "'Einwohner'" in ei.value.message and "'EW'" in ei.value.found
    # a requested column with mostly text is still checked, not silently text
    p2 = write(tmp_path, "nc2.csv", "id;EW\n01;viele\n02;wenige\n03;5\n")
    with pytest.raises(GeoplanError, match="Text in der Zahlenspalte"):
        read_table(p2, key="id", numeric_columns=["EW"])


def test_dialect_arguments_checked(tmp_path):
    p = write(tmp_path, "t.tsv", "id\tv\n01\t1,5\n")
    assert read_table(p, key="id", delimiter="tab").frame["v"].tolist() == [1.5]
    for kwargs, field in (({"delimiter": ";;"}, "delimiter"), ({"decimal": "komma"}, "decimal"),
                          ({"thousands": " "}, "thousands"), ({"decimal": ",", "thousands": ","}, "decimal")):
        with pytest.raises(GeoplanError) as ei:
            read_table(p, key="id", **kwargs)
        assert field in ei.value.location
    with pytest.raises(GeoplanError, match="Kodierung"):
        read_table(p, key="id", encoding="klingonisch")


def test_excel_unicode_text_export_utf16(tmp_path):
    text = "Schlüssel\tName\tQuote\r\n0101\tMärkisches Viertel\t12,5\r\n0102\tSüd\t3,25\r\n"
    p = tmp_path / "unicode.txt"
    p.write_bytes(text.encode("utf-16"))  # with BOM, as Excel writes it
    r = read_table(p, key="Schlüssel")
    assert r.dialect["encoding"] == "utf-16" and r.dialect["delimiter"] == "\t"
    assert r.frame["Name"].tolist() == ["Märkisches Viertel", "Süd"]
    assert r.frame["Quote"].tolist() == [12.5, 3.25]


def test_xlsx_with_csv_extension(tmp_path):
    src = _xlsx(tmp_path / "a.xlsx", {"T": [["id", "v"], ["01", 1]]})
    p = tmp_path / "a.csv"
    p.write_bytes(src.read_bytes())
    with pytest.raises(GeoplanError, match="Excel-Arbeitsmappe"):
        read_table(p, key="id")
