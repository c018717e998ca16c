"""`--lang en` gives complete English: every QA note, input summary and (in the modules listed) error has its English.

The source is walked with ``ast``: a ``QANote(...)`` without ``message_en``, an input summary (``qa=`` of
``input_file``/``remote_input``/``InputFile`` or of the ``dict`` of their keywords) without ``qa_en``, or a
``GeoplanError(...)`` anywhere in the package without ``message_en`` (and ``hint_en`` where it has a ``hint``)
fails the test, naming file and line. Then the English demo: the CLI's notes and the report's QA annex and
inputs table hold no German fixed words.
"""

from __future__ import annotations

import ast
import io
import re
from pathlib import Path

from geoplan.errors import GeoplanError, QANote

PACKAGE = Path(__file__).resolve().parents[1] / "geoplan"

SUMMARY_CALLS = {"input_file", "remote_input", "InputFile", "dict"}


def _sources():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE).as_posix(), path.read_text(encoding="utf-8")


def _given(kw: dict, key: str) -> bool:
    v = kw.get(key)
    return v is not None and not (isinstance(v, ast.Constant) and v.value in (None, ""))


def _german_only(names: set[str], rules, only_with: str | None = None, sources=None) -> tuple[int, list[str]]:
    """Calls of ``names`` (only those with keyword ``only_with``) and, for each rule (english, german), where the
    English keyword is missing although the German one is given (``german`` None: always required)."""
    found, missing = 0, []
    for rel, text in (sources if sources is not None else _sources()):
        for node in ast.walk(ast.parse(text, filename=rel)):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            if (f.id if isinstance(f, ast.Name) else getattr(f, "attr", None)) not in names:
                continue
            kw = {k.arg: k.value for k in node.keywords if k.arg}
            if only_with is not None and only_with not in kw:
                continue
            found += 1
            missing += [f"{rel}:{node.lineno} {en}" for en, de in rules
                        if (de is None or _given(kw, de)) and not _given(kw, en)]
    return found, missing


NOTE_RULES = [("message_en", None)]
SUMMARY_RULES = [("qa_en", "qa")]
ERROR_RULES = [("message_en", None), ("hint_en", "hint")]


def test_every_qa_note_has_english():
    found, missing = _german_only({"QANote"}, NOTE_RULES)
    assert found >= 100, f"only {found} QANote constructions found; has the walk broken?"
    assert missing == [], "QANote without English:\n" + "\n".join(missing)


def test_every_input_summary_has_english():
    found, missing = _german_only(SUMMARY_CALLS, SUMMARY_RULES, only_with="qa")
    assert found >= 10, f"only {found} input summaries found; has the walk broken?"
    assert missing == [], "qa= without qa_en:\n" + "\n".join(missing)


def test_every_error_has_english():
    found, missing = _german_only({"GeoplanError"}, ERROR_RULES)
    assert found >= 400, f"only {found} GeoplanError constructions found; has the walk broken?"
    assert missing == [], "German-only GeoplanError:\n" + "\n".join(missing)


def test_the_walk_sees_a_german_only_message():
    """The checks above can fail: German-only notes, summaries and errors are found."""
    src = [("x.py", "from geoplan.errors import QANote, GeoplanError\n"
                    "n = QANote('x', 'nur deutsch')\n"
                    "m = QANote('x', 'deutsch', message_en='English')\n"
                    "e = GeoplanError('nur deutsch', hint='so', message_en='English only')\n"
                    "i = input_file('Rolle', p, qa='ohne Befund')\n")]
    assert _german_only({"QANote"}, NOTE_RULES, sources=src) == (2, ["x.py:2 message_en"])
    assert _german_only({"GeoplanError"}, ERROR_RULES, sources=src) == (1, ["x.py:4 hint_en"])
    assert _german_only(SUMMARY_CALLS, SUMMARY_RULES, only_with="qa", sources=src) == (1, ["x.py:5 qa_en"])


def test_text_picks_the_language():
    n = QANote("indicators", "3 Zeilen ohne Wert.", message_en="3 rows without a value.")
    assert n.text("de") == "3 Zeilen ohne Wert." and n.text("en") == "3 rows without a value."
    assert QANote("x", "nur deutsch").text("en") == "nur deutsch"
    assert n.to_dict()["message"] == "3 Zeilen ohne Wert." and n.to_dict()["message_en"] == "3 rows without a value."
    err = GeoplanError("Spalte fehlt.", location="Zeile 3, Spalte 'EW'", expected="Zahl oder leer",
                       hint="Spalte ergänzen.", message_en="Column missing.", hint_en="Add the column.")
    text = err.render("en")
    assert "Column missing." in text and "Add the column." in text and "row 3, column 'EW'" in text
    assert "Zeile" not in text and "Spalte" not in text and " oder " not in text
    assert err.render("de").startswith("Spalte fehlt.") and "Zeile 3" in err.render("de")


# --------------------------------------------------------------------------- the English demo
#: German words the QA notes, input summaries and the CLI's note lines used to show in English runs
GERMAN = ["und", "der", "die", "das", "mit", "nicht", "ist", "sind", "wird", "werden", "für", "von", "aus", "bei",
          "nach", "über", "oder", "ohne", "Zeile", "Zeilen", "Spalte", "Spalten", "Datei", "Schlüssel", "gezählt",
          "gelesen", "Hinweis", "Hinweise", "weitere", "Befund", "ungültig", "unterdrückt", "leer", "Fallliste",
          "Sozialräume gelesen", "Geheimhaltung", "Korridor", "Zielwert", "Bedarfsmodell", "Anhang",
          "Qualitätssicherung", "Bericht", "gesperrt", "fehlend", "Summe", "Quelle", "Differenz", "Ebene"]


def _german_words(text: str, keep: list[str]) -> list[str]:
    for name in sorted(keep, key=len, reverse=True):
        text = text.replace(name, " ")
    return [f"{w!r}: …{text[max(0, m.start() - 40):m.end() + 30]}…" for w in GERMAN
            for m in re.finditer(r"(?<![\w-])" + re.escape(w) + r"(?![\w-])", text)]


def _proper_names(result) -> list[str]:
    """Names an English line may keep: areas, districts, the inputs' own labels, sources and column headers."""
    f = result.frame
    names = {str(v) for v in f["name"]} | ({str(v) for v in f["bezirk"]} if "bezirk" in f.columns else set())
    for i in result.inputs:
        names |= {str(i.label or ""), i.path.name if i.path else "", str(i.source or ""), str(i.licence or "")}
    for n in result.notes:  # column names of the user's files the notes quote ('KOM', "Rechtswert")
        names |= set(re.findall(r"'[^']*'", n.text("en"))) | set(re.findall(r"\((\w+)\)", n.text("en")))
    return [n for n in names if n and len(n) > 1]


def test_english_cli_notes_have_no_german(demo_result, monkeypatch):
    from rich.console import Console

    from geoplan import cli

    monkeypatch.setitem(cli.STATE, "lang", "en")
    buf = io.StringIO()
    cli._print_notes(Console(file=buf, width=400, highlight=False), demo_result.notes, 5, demo_result.config,
                     demo_result.catalogue, in_report=True)
    text = buf.getvalue()
    assert "Note (" in text and "more notes (report, appendix: quality assurance)" in text
    hits = _german_words(text, _proper_names(demo_result))
    assert hits == [], "\n".join(hits)
    monkeypatch.setitem(cli.STATE, "lang", "de")  # and German stays German
    buf = io.StringIO()
    cli._print_notes(Console(file=buf, width=400, highlight=False), demo_result.notes, 5, demo_result.config,
                     demo_result.catalogue, in_report=True)
    assert "Hinweis (" in buf.getvalue() and "weitere Hinweise (Bericht, Anhang: Qualitätssicherung)" in buf.getvalue()


def test_english_report_qa_annex_and_inputs_have_no_german(demo_outputs_en, demo_result):
    from bs4 import BeautifulSoup

    soup = BeautifulSoup((demo_outputs_en / "bericht.html").read_text(encoding="utf-8"), "html.parser")
    annex = soup.find(id="anhang").find_next("table")
    inputs = soup.find(id="datengrundlage").find_next("table")
    rows = annex.find_all("tr")
    assert len(rows) > 10
    # the file and location columns hold paths and the user's own column names: the finding and stage are scanned
    text = "\n".join(" | ".join(td.get_text(" ") for td in tr.find_all("td")[:3]) for tr in rows)
    text += "\n" + "\n".join(tr.find_all("td")[-1].get_text(" ") + " | " + tr.find_all("td")[0].get_text(" ")
                             for tr in inputs.find_all("tr")[1:])
    assert "rows counted" in text and "no findings" in text
    hits = _german_words(text, _proper_names(demo_result))
    assert hits == [], "\n".join(hits[:40])
