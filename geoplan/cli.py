"""Command line: ``geoplan demo | run | validate | init | presets | compare``.

Nothing is computed here: commands call :func:`geoplan.pipeline.run` and the
writers. User errors print one clear message (no traceback unless --debug)
and exit with code 2.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from geoplan.errors import GeoplanError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="geoplan – Sozialraumbudgets für Hilfen zur Erziehung: Indikatoren, Bedarfsmodell, Budgetformel, Bericht.",
)
presets_app = typer.Typer(no_args_is_help=True, help="Budgetmodelle deutscher Kommunen als Vorlagen.")
app.add_typer(presets_app, name="presets")

console = Console(stderr=True, highlight=False)
out = Console(highlight=False)
STATE = {"debug": False, "lang": "de"}

EXAMPLE_CONFIG = Path(__file__).parent / "examples" / "berlin.yaml"

MSG = {
    "de": {"done": "Fertig. Ausgaben in", "error": "Fehler", "valid": "Konfiguration ist gültig:",
           "files": "Eingabedateien vorhanden", "written": "geschrieben", "checking": "Eingaben prüfen",
           "template": "Vorlage", "config": "Konfiguration", "catalogue": "Indikatorenkatalog", "note": "Hinweis",
           "next": "Nächster Schritt: geoplan validate {}  (TODO-Kommentare in beiden Dateien prüfen)",
           "computing": "Rechne {} …"},
    "en": {"done": "Done. Outputs in", "error": "Error", "valid": "Configuration is valid:",
           "files": "input files present", "written": "written", "checking": "Checking the inputs",
           "template": "Template", "config": "Configuration", "catalogue": "Indicator catalogue", "note": "Note",
           "next": "Next step: geoplan validate {}  (check the TODO comments in both files)",
           "computing": "Computing {} …"},
}

#: English labels of the pipeline's stages (:data:`geoplan.pipeline.STAGES` are German)
STAGES_EN = {
    "boundaries": "Read and check the Sozialräume", "indicators": "Read, assign and derive the indicators",
    "hze": "HzE case counts and costs", "model": "Estimate the need model", "allocation": "Distribute the budget",
    "equity": "Measure distributional fairness", "sensitivity": "Check the sensitivity to the weights",
}

#: One line per writer of :func:`geoplan.report.write_outputs` (its progress keys), German and English
WRITER_LABELS = {
    "report": ("Bericht (bericht.html, Abbildungen und Karten)", "Report (bericht.html, figures and maps)"),
    "map": ("Interaktive Karte (karte.html)", "Interactive map (karte.html)"),
    "xlsx": ("Excel-Tabellen (verteilung.xlsx)", "Excel tables (verteilung.xlsx)"),
    "gpkg": ("GeoPackage (ergebnis.gpkg)", "GeoPackage (ergebnis.gpkg)"),
    "pdf_wait": ("PDF-Bericht (bericht.pdf, zweiter Prozess)", "PDF report (bericht.pdf, second process)"),
    "gis": ("QGIS-Projekt, PostGIS, WFS-Antworten", "QGIS project, PostGIS, WFS answers"),
    "manifest": ("Manifest (manifest.json) und Ordner übernehmen", "Manifest (manifest.json) and folder swap"),
}


def t(key: str) -> str:
    return MSG[STATE["lang"]][key]


def _version(value: bool):
    if value:
        from geoplan import __version__

        out.print(f"geoplan {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    lang: str = typer.Option("de", "--lang", help="Sprache der Ausgaben: de oder en (an beliebiger Stelle)"),
    debug: bool = typer.Option(False, "--debug", help="bei Fehlern den vollständigen Traceback zeigen"),
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_version,
                                 help="Version zeigen und beenden"),
):
    if lang not in ("de", "en"):
        raise GeoplanError("Unbekannte Sprache.", location="--lang", expected="de oder en", found=lang,
                           message_en="Unknown language.")
    STATE["lang"] = lang
    STATE["debug"] = debug


@contextmanager
def _stage(stage: str, label: str):
    if STATE["lang"] == "en":
        label = STAGES_EN.get(stage, label)
    with console.status(f"[bold blue]{label} …"):
        yield
    console.print(f"[green]✓[/green] {label}")


class _WriterProgress:
    """The progress hook of :func:`geoplan.report.write_outputs`: a spinner line per writer, ✓ when it is done."""

    def __init__(self):
        self.status = None
        self.label = None

    def __call__(self, key: str) -> None:
        self.finish()
        if key in WRITER_LABELS:
            self.label = WRITER_LABELS[key][STATE["lang"] == "en"]
            self.status = console.status(f"[bold blue]{self.label} …")
            self.status.start()

    def finish(self, ok: bool = True) -> None:
        if self.status is not None:
            self.status.stop()
            if ok:
                console.print(f"[green]✓[/green] {self.label}")
        self.status = self.label = None


def _run_and_write(cfg, out_dir: Path, force: bool, config_file: Path | None = None, offline: bool = False) -> None:
    import tempfile

    from contextlib import nullcontext

    from geoplan.load.sources import Remote, uses_wfs
    from geoplan.pipeline import run
    from geoplan.report import protected_paths, write_outputs
    from geoplan.report.outdir import locked_target, resolve_target
    from geoplan.parallel import second_core_idle
    from geoplan.report.pdf import PdfWorker

    # WFS answers: fetched into a temporary folder and copied into the outputs (provenienz/wfs);
    # --offline reads them only from there, in the existing output folder
    fetch = uses_wfs(cfg) and not offline
    # refuse early, before any work, and hold the folder's lock until the outputs are in place
    with locked_target(out_dir, force, protected_paths(cfg), config=config_file), \
            (tempfile.TemporaryDirectory(prefix="geoplan-wfs-") if fetch else nullcontext()) as fetched:
        cache = resolve_target(out_dir) / "provenienz" / "wfs" if offline else (Path(fetched) if fetch else None)
        # the PDF process imports WeasyPrint on the other core while the pipeline runs (and, when that core is
        # idle, matplotlib, to draw half of the figures); ended on any error
        worker = PdfWorker(figures=second_core_idle()) if cfg.output.pdf else None
        progress = _WriterProgress()
        try:
            result = run(cfg, progress=_stage, remote=Remote(cache_dir=cache, offline=offline))
            files = write_outputs(result, out_dir, force=force, lang=STATE["lang"], pdf_worker=worker,
                                  progress=progress)
        finally:
            progress.finish(ok=False)
            if worker is not None:
                worker.cancel()
    _print_notes(console, result.notes, 5, cfg, result.catalogue, in_report=True)
    out.print(f"{t('done')} [bold]{out_dir}[/bold]:")
    for f in files:
        out.print(f"  {f.name}")


def _load(config: Path):
    from geoplan.config import load_config

    return load_config(config)


@app.command()
def run(
    config: Path = typer.Argument(..., help="Konfigurationsdatei (YAML)"),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Ausgabeordner (muss leer sein, außer mit --force)"),
    force: bool = typer.Option(False, "--force", help="bestehenden Ausgabeordner ersetzen"),
    offline: bool = typer.Option(False, "--offline", help="WFS-Daten nicht abrufen, sondern aus dem Zwischenspeicher "
                                 "des Ausgabeordners (provenienz/wfs) des letzten Laufs nehmen"),
):
    """Eine Konfiguration rechnen und Bericht, Karte, Excel, GeoPackage und Manifest schreiben."""
    cfg = _load(config)
    _run_and_write(cfg, out_dir, force, config_file=config, offline=offline)


def demo_config(preset: str | None = None):
    from geoplan.config import config_from_dict
    import yaml

    if not EXAMPLE_CONFIG.is_file():
        raise GeoplanError("Die Beispielkonfiguration fehlt in der Installation.", file=EXAMPLE_CONFIG,
                           hint="geoplan aus dem Repository installieren: pip install -e .",
                           message_en="The example configuration is missing from the installation.",
                           hint_en="Install geoplan from the repository: pip install -e .")
    raw = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    if preset:
        from geoplan.presets import apply_preset

        raw = apply_preset(raw, preset)
    cfg = config_from_dict(raw, base_dir=EXAMPLE_CONFIG.parent, file=EXAMPLE_CONFIG)
    data = cfg.resolve(cfg.boundaries.path)
    if not data.is_file():
        raise GeoplanError(
            "Die Berliner Beispieldaten wurden nicht gefunden.",
            file=data,
            hint="geoplan aus dem Repository-Checkout installieren (pip install -e .), damit boundaries/ und indicators/ erreichbar sind.",
            message_en="The Berlin example data were not found.",
            hint_en="Install geoplan from a checkout of the repository (pip install -e .) so that boundaries/ and "
            "indicators/ can be reached.",
        )
    return cfg


@app.command()
def demo(
    out_dir: Path = typer.Option(Path("ausgabe"), "--out", "-o", help="Ausgabeordner"),
    preset: Optional[str] = typer.Option(None, "--preset", help="Budgetmodell einer Kommune verwenden (geoplan presets list)"),
    force: bool = typer.Option(False, "--force", help="bestehenden Ausgabeordner ersetzen"),
):
    """Das eingebaute Berliner Beispiel (58 Prognoseräume, echte Indikatoren, simulierte HzE-Fallliste) rechnen."""
    _run_and_write(demo_config(preset), out_dir, force, config_file=EXAMPLE_CONFIG)


@app.command()
def validate(config: Path = typer.Argument(..., help="Konfigurationsdatei (YAML)")):
    """Probelauf ohne Modell: alle Dateien lesen, Spalten und Schlüssel auflösen, verknüpfen, interpolieren,
    Budgetformel prüfen – und alle Probleme auf einmal melden."""
    import time

    from geoplan import fmt
    from geoplan.dryrun import dry_run

    t0 = time.perf_counter()
    cfg = _load(config)
    with console.status(f"[bold blue]{t('checking')} …"):
        res = dry_run(cfg)
    lang = STATE["lang"]
    if res.problems:
        n = len(res.problems)

        def listing(lang: str) -> str:
            return "\n".join(f"{i}. " + err.render(lang).replace("\n", "\n   ")
                             for i, err in enumerate(res.problems, 1))

        raise GeoplanError(f"{n} Problem(e) in {config}:\n" + listing("de"),
                           message_en=f"{n} problem(s) in {config}:\n" + listing("en"))
    spec = cfg.allocation
    out.print(f"[green]✓[/green] {t('valid')} {escape(str(config))}")
    secs = time.perf_counter() - t0
    if lang == "de":
        out.print(f"  {len(res.inputs)} Eingabedateien gelesen; {res.n_areas} Sozialräume"
                  + (f" ({res.n_excluded} ausgeschlossen)" if res.n_excluded else "")
                  + f"; Ebenen der Tabellen: {', '.join(res.levels)}; {len(spec.components)} Bestandteile der "
                  f"Budgetformel, Gesamtbudget {fmt.euro(spec.total_eur)}; {fmt.number(secs, 1)} s.")
    else:
        out.print(f"  {len(res.inputs)} input files read; {res.n_areas} areas"
                  + (f" ({res.n_excluded} excluded)" if res.n_excluded else "")
                  + f"; table levels: {', '.join(res.levels)}; {len(spec.components)} budget components, "
                  f"total {fmt.euro(spec.total_eur, lang='en')}; {fmt.number(secs, 1, lang='en')} s.")
    _print_notes(out, res.notes, 10, cfg, None, in_report=False)


@app.command()
def init(
    path: Path = typer.Argument(Path("geoplan.yaml"), help="Zieldatei"),
    force: bool = typer.Option(False, "--force", help="bestehende Datei überschreiben"),
    from_: Optional[Path] = typer.Option(None, "--from", help="eigene Sozialraum-Polygone (Shapefile, GeoPackage …): "
                                         "Konfiguration und Katalog dazu vorschlagen"),
    table: Optional[list[Path]] = typer.Option(None, "--table", help="eigene Tabelle (CSV/XLSX), mehrfach möglich"),
):
    """Eine kommentierte Konfigurationsvorlage schreiben – mit --from für die eigenen Dateien samt Katalog."""
    targets = [path]
    if from_ is not None:
        catalogue = path.with_name(path.stem + "_katalog.yaml")
        targets.append(catalogue)
    for p in targets:
        if p.exists() and not force:
            raise GeoplanError("Die Datei existiert schon; geoplan überschreibt nichts ungefragt.", file=p,
                               hint="Anderen Namen wählen oder --force angeben.",
                               message_en="The file exists already; geoplan does not overwrite without being asked.",
                               hint_en="Choose another name or give --force.")
    if from_ is None:
        if table:
            raise GeoplanError("--table gehört zu --from.", location="geoplan init",
                               hint="geoplan init meine.yaml --from sozialraeume.shp --table bevoelkerung.csv",
                               message_en="--table belongs to --from.",
                               hint_en="geoplan init mine.yaml --from areas.shp --table population.csv")
        template = (Path(__file__).parent / "examples" / "vorlage.yaml").read_text(encoding="utf-8")
        path.write_text(template, encoding="utf-8")
        out.print(f"[green]✓[/green] {t('template')} {t('written')}: {escape(str(path))}")
        return
    from geoplan.load.propose import propose

    if not from_.exists():
        raise GeoplanError("Die Polygondatei wurde nicht gefunden.", file=from_, location="--from",
                           message_en="The polygon file was not found.")
    for tp in table or []:
        if not tp.is_file():
            raise GeoplanError("Die Tabelle wurde nicht gefunden.", file=tp, location="--table",
                               message_en="The table was not found.")
    prop = propose(from_, list(table or []), path)
    path.write_text(prop.config, encoding="utf-8")
    catalogue.write_text(prop.catalogue, encoding="utf-8")
    out.print(f"[green]✓[/green] {t('config')} {t('written')}: {escape(str(path))}")
    out.print(f"[green]✓[/green] {t('catalogue')} {t('written')}: {escape(str(catalogue))}")
    for n in (prop.notes_en if STATE["lang"] == "en" else prop.notes):
        out.print(f"[yellow]{t('note')}:[/yellow] " + escape(n), soft_wrap=True)
    out.print(t("next").format(escape(str(path))))


@presets_app.command("list")
def presets_list():
    """Alle Budgetmodelle auflisten."""
    from rich.table import Table

    from geoplan.presets import list_presets

    table = Table(*(("Name", "Model", "Description") if STATE["lang"] == "en" else ("Name", "Modell", "Beschreibung")),
                  show_lines=False)
    for p in list_presets():
        table.add_row(p.name, p.title, p.description.strip().splitlines()[0] if p.description else "")
    out.print(table)


@presets_app.command("show")
def presets_show(name: str = typer.Argument(..., help="Name aus 'geoplan presets list'")):
    """Ein Budgetmodell als YAML zeigen."""
    from geoplan.presets import preset_path, load_preset

    load_preset(name)  # validates the name with a helpful error
    out.print(preset_path(name).read_text(encoding="utf-8"), markup=False)


@app.command()
def compare(
    configs: Optional[list[Path]] = typer.Argument(None, help="Konfigurationen (YAML)"),
    preset: Optional[list[str]] = typer.Option(None, "--preset", "-p",
                                               help="Budgetmodell einer Kommune auf dem Beispiel (mehrfach möglich)"),
    out_file: Optional[Path] = typer.Option(None, "--out", "-o", help="Vergleich als Excel-Datei speichern"),
):
    """Verteilungen mehrerer Konfigurationen oder Presets nebeneinander: Differenzen, Gewinner und Verlierer."""
    from geoplan.pipeline import run as run_pipeline
    from geoplan.stages.sensitivity import compare_allocations

    runs = [(c.stem, lambda c=c: _load(c)) for c in configs or []]
    runs += [(p, lambda p=p: demo_config(p)) for p in preset or []]
    if len(runs) < 2:
        raise GeoplanError("Zum Vergleichen mindestens zwei Konfigurationen oder Presets angeben.", location="compare",
                           hint="geoplan compare A.yaml B.yaml  oder  geoplan compare --preset stuttgart --preset isa",
                           message_en="Give at least two configurations or presets to compare.",
                           hint_en="geoplan compare A.yaml B.yaml  or  geoplan compare --preset stuttgart --preset isa")
    names = [n for n, _ in runs]
    if len(set(names)) != len(names):
        raise GeoplanError("Jede Konfiguration und jedes Preset nur einmal angeben.", location="compare",
                           found=", ".join(names), message_en="Give each configuration and each preset only once.")
    if out_file is not None and out_file.exists() and out_file.suffix.lower() != ".xlsx":
        raise GeoplanError("Der Vergleich wird als Excel-Datei (.xlsx) gespeichert.", file=out_file,
                           expected="Dateiname auf .xlsx",
                           message_en="The comparison is saved as an Excel file (.xlsx).",
                           expected_en="a file name ending in .xlsx")
    results = {}
    for name, load in runs:
        cfg = load()
        console.print(t("computing").format(name))
        results[name] = run_pipeline(cfg).allocation
    table_df = compare_allocations(results)
    out.print(compare_text(table_df, names, lang=STATE["lang"]), markup=False, highlight=False, soft_wrap=True)
    if out_file:
        write_compare_xlsx(table_df, names, out_file)
        out.print(f"[green]✓[/green] {out_file} {t('written')}")


def _cut(text: str, width: int) -> str:
    text = str(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def compare_text(df, names: list[str], width: int = 80, lang: str = "de") -> str:
    """The comparison as a plain table of at most ``width`` columns: reference, last scenario, difference."""
    from geoplan import fmt

    en = lang == "en"
    num = lambda x, d=0: fmt.number(x, d, lang)  # noqa: E731
    ref, last = names[0], names[-1]
    amount = 13
    name_w = width - 6 - 2 * (amount + 1) - (amount + 1) - 8
    head = f"{'Key' if en else 'Schl.':<5} {_cut('Sozialraum', name_w):<{name_w}} {_cut(ref, amount):>{amount}} " \
           f"{_cut(last, amount):>{amount}} {'Difference' if en else 'Differenz':>{amount}} {'%':>7}"
    lines = [head, "─" * min(width, len(head))]
    for _, r in df.iterrows():
        pct = r.get(f"diff_{last}_pct")
        lines.append(f"{_cut(r['key'], 5):<5} {_cut(r.get('name', ''), name_w):<{name_w}} "
                     f"{num(r[ref]):>{amount}} {num(r[last]):>{amount}} "
                     f"{num(r[f'diff_{last}']):>{amount}} {num(pct, 1):>7}")
    lines.append("─" * min(width, len(head)))
    lines.append(f"{'':<5} {'Total' if en else 'Summe':<{name_w}} {num(df[ref].sum()):>{amount}} "
                 f"{num(df[last].sum()):>{amount}} {num(df[f'diff_{last}'].sum()):>{amount}} {'':>7}")
    if len(names) > 2:
        lines.append(f"Further scenarios ({', '.join(names[1:-1])}) are in the Excel file (--out)." if en else
                     f"Weitere Szenarien ({', '.join(names[1:-1])}) stehen in der Excel-Datei (--out).")
    return "\n".join(lines)


def write_compare_xlsx(df, names: list[str], path: Path) -> Path:
    """Formatted comparison: German headers, number formats, one sheet per view, =SUM totals."""
    from openpyxl import Workbook

    from geoplan.report.xlsx import _sheet, _sum_row

    wb = Workbook()
    wb.remove(wb.active)
    ref = names[0]
    cols = [("key", "Schlüssel", "text"), ("name", "Sozialraum", "text")]
    cols += [(n, f"Budget {n} (€)", "euro") for n in names]
    for n in names[1:]:
        cols += [(f"diff_{n}", f"Differenz {n} zu {ref} (€)", "euro"), (f"diff_{n}_pct", f"Differenz {n} zu {ref} (%)", "pct")]
    cols = [c for c in cols if c[0] in df.columns]
    view = df.sort_values("key")
    ws = _sheet(wb, "Budgets", [c[1] for c in cols], view[[c[0] for c in cols]].values.tolist(), [c[2] for c in cols],
                widths=[10, 30] + [18] * (len(cols) - 2))
    _sum_row(ws, [j for j, c in enumerate(cols, start=1) if c[2] == "euro"], ["euro"] * sum(c[2] == "euro" for c in cols))
    ws.freeze_panes = "C2"
    rank = [("key", "Schlüssel", "text"), ("name", "Sozialraum", "text")] + \
        [(f"rank_{n}", f"Rang {n} (1 = größtes Budget)", "int") for n in names] + \
        [("spanne_eur", "Spanne über die Szenarien (€)", "euro"), ("max_szenario", "meistes Geld in", "text"),
         ("min_szenario", "wenigstes Geld in", "text"), ("ergebnis", f"{names[-1]} gegenüber {ref}", "text")]
    rank = [c for c in rank if c[0] in df.columns]
    ws = _sheet(wb, "Gewinner und Verlierer", [c[1] for c in rank], df[[c[0] for c in rank]].values.tolist(),
                [c[2] for c in rank], widths=[10, 30] + [18] * (len(rank) - 2))
    ws.freeze_panes = "C2"
    summary = []
    for n in names:
        row = [n, int(df[n].sum())]
        if n == ref:
            row += [None, None, None, None]
        else:
            d = df[f"diff_{n}"]
            row += [int((d > 0).sum()), int((d < 0).sum()), float(d.max()), float(d.min())]
        summary.append(row)
    _sheet(wb, "Szenarien", ["Szenario", "Budget gesamt (€)", f"Sozialräume mit mehr als in {ref}",
                             f"Sozialräume mit weniger als in {ref}", "größte Zunahme (€)", "größte Abnahme (€)"],
           summary, ["text", "euro", "int", "int", "euro", "euro"], widths=[24, 18, 18, 18, 18, 18])
    wb.save(path)
    return path


GLOBAL_FLAGS = ("--debug", "--version")


def _global_first(args: list[str]) -> list[str]:
    """Move the global options (--lang X, --lang=X, --debug, --version) to the front, wherever they were given."""
    front, rest, i = [], [], 0
    while i < len(args):
        a = args[i]
        if a == "--":
            rest += args[i:]
            break
        if a in GLOBAL_FLAGS or a.startswith("--lang="):
            front.append(a)
        elif a == "--lang" and i + 1 < len(args):
            front += [a, args[i + 1]]
            i += 1
        else:
            rest.append(a)
        i += 1
    return front + rest


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that every ``finally`` (temporary folders) runs."""


def _on_sigterm(signum, frame):  # pragma: no cover - exercised in a subprocess test
    raise _Terminated()


def _usage_error(exc) -> GeoplanError:
    """click's usage errors (unknown option, missing argument …) as one German/English message."""
    name = type(exc).__name__
    param = getattr(exc, "param", None)
    pname = None
    if param is not None:
        pname = (getattr(param, "opts", None) or [getattr(param, "name", "")])[0]
        if getattr(param, "param_type_name", "") == "argument":
            pname = str(getattr(param, "name", pname)).upper()
    names, ctx = [], getattr(exc, "ctx", None)
    while ctx is not None and ctx.parent is not None:
        names.insert(0, ctx.info_name)
        ctx = ctx.parent
    cmd = " ".join(["geoplan", *names])
    hint, hint_en = f"'{cmd} --help' zeigt, was angegeben werden kann.", f"'{cmd} --help' shows what can be given."
    if name == "NoSuchOption":
        opt = getattr(exc, "option_name", "?")
        poss = ", ".join(getattr(exc, "possibilities", None) or [])
        return GeoplanError(f"Unbekannte Option '{opt}'.", location=cmd, expected=poss or None, hint=hint,
                            message_en=f"Unknown option '{opt}'.", hint_en=hint_en)
    if name == "MissingParameter":
        return GeoplanError(f"Es fehlt die Angabe {pname or ''}.".replace("  ", " "), location=cmd, hint=hint,
                            message_en=f"Missing {pname or 'argument'}.", hint_en=hint_en)
    opt = getattr(exc, "option_name", None)
    if opt and "requires an argument" in exc.format_message():
        return GeoplanError(f"Die Option '{opt}' braucht einen Wert.", location=cmd, hint=hint,
                            message_en=f"Option '{opt}' requires a value.", hint_en=hint_en)
    pname = pname or opt
    if name in ("BadParameter", "BadOptionUsage", "BadArgumentUsage"):
        return GeoplanError(f"Ungültige Angabe {pname or ''}: {exc.format_message()}", location=cmd, hint=hint,
                            message_en=f"Invalid value {pname or ''}: {exc.format_message()}", hint_en=hint_en)
    return GeoplanError(f"Aufruf fehlerhaft: {exc.format_message()}", location=cmd, hint=hint,
                        message_en=f"Invalid call: {exc.format_message()}", hint_en=hint_en)


def _os_error(exc: OSError) -> GeoplanError:
    import errno

    from geoplan.report.outdir import os_error

    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.ENAMETOOLONG, errno.EROFS):
        return os_error(exc)
    where = exc.filename
    if exc.errno == errno.ENOENT:
        return GeoplanError("Datei oder Ordner existiert nicht.", file=where,
                            hint="Pfad prüfen; einen fehlenden Ordner zuerst anlegen.",
                            message_en="File or folder does not exist.",
                            hint_en="Check the path; create a missing folder first.")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return GeoplanError("Keine Berechtigung für diese Datei oder diesen Ordner.", file=where,
                            hint="Rechte prüfen oder einen anderen Ort wählen.",
                            message_en="No permission for this file or folder.",
                            hint_en="Check the permissions or choose another place.")
    return GeoplanError(f"Dateizugriff fehlgeschlagen: {exc.strerror or exc}", file=where,
                        hint="Pfad, Rechte und Datenträger prüfen.",
                        message_en=f"File access failed: {exc.strerror or exc}",
                        hint_en="Check path, permissions and drive.")


def _print_notes(printer, notes, limit: int, cfg, catalogue, in_report: bool) -> None:
    """The warnings of a run as a reader sees them (in the user's language, column names in words, paths
    relative to the config), each once, with its file; at most ``limit``, then how many more (``in_report``:
    and that the report's QA annex lists them all)."""
    from geoplan.report.vocabulary import humanize_note

    lang = STATE["lang"]
    words = NOTE_WORDS[lang]
    names = ({i.name: ((i.label_en or i.label) if lang == "en" else i.label) for i in catalogue.indicators}
             if catalogue is not None else None)
    seen, shown = set(), []
    for n in notes:
        if n.level == "info":
            continue
        h = humanize_note(n, lang, getattr(cfg, "base_dir", None), names)
        text = h.message + (f" ({words['file']}: {h.file})" if h.file else "")
        if (n.stage, text) not in seen:
            seen.add((n.stage, text))
            shown.append((h.stage, text))
    for stage, text in shown[:limit]:
        printer.print(f"[yellow]{words['note']} ({escape(stage)}):[/yellow] " + escape(text), soft_wrap=True)
    if len(shown) > limit:
        more = words["more"].format(n=len(shown) - limit)
        printer.print(f"[yellow]{more}[/yellow]" + (words["where"] if in_report else ""))


#: the fixed words of :func:`_print_notes`
NOTE_WORDS = {
    "de": {"note": "Hinweis", "file": "Datei", "more": "… und {n} weitere Hinweise",
           "where": " (Bericht, Anhang: Qualitätssicherung)"},
    "en": {"note": "Note", "file": "file", "more": "… and {n} more notes",
           "where": " (report, appendix: quality assurance)"},
}


ABORTED = {"de": "Abgebrochen; es wurde nichts geschrieben.", "en": "Aborted; nothing was written."}

HELP_WORDS = {  # typer's fixed help words, in the user's language (the rest of the help text is German)
    "de": {"OPTIONS_PANEL_TITLE": "Optionen", "COMMANDS_PANEL_TITLE": "Befehle",
           "ARGUMENTS_PANEL_TITLE": "Argumente", "ERRORS_PANEL_TITLE": "Fehler",
           "DEFAULT_STRING": "[Vorgabe: {}]", "REQUIRED_LONG_STRING": "[Pflicht]",
           "ABORTED_TEXT": "Abgebrochen.", "RICH_HELP": "Hilfe mit [blue]'{command_path} {help_option}'[/].",
           "help": "Diese Hilfe zeigen und beenden."},
}


def _localize_help(lang: str) -> None:
    """German words for typer's panels, defaults and the --help option (English stays typer's own)."""
    import typer.rich_utils as ru
    from typer._click import core as click_core

    typer_words = HELP_WORDS.setdefault("_typer", {n: getattr(ru, n) for n in HELP_WORDS["de"] if hasattr(ru, n)})
    for name, text in HELP_WORDS.get(lang, typer_words).items():
        if hasattr(ru, name):
            setattr(ru, name, text)
    original = click_core.Command.get_help_option
    if getattr(original, "_geoplan", False):
        return

    def get_help_option(self, ctx):
        opt = original(self, ctx)
        if opt is not None:
            opt.help = HELP_WORDS.get(STATE.get("lang", "de"), {}).get("help", "Show this message and exit.")
        return opt

    get_help_option._geoplan = True
    click_core.Command.get_help_option = get_help_option


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 2 user error, 130 Ctrl-C, 143 SIGTERM, 1 internal error)."""
    import signal
    import threading

    args = _global_first(list(argv if argv is not None else sys.argv[1:]))
    debug = "--debug" in args
    lang = "en" if ("--lang=en" in args or any(a == "--lang" and b == "en" for a, b in zip(args, args[1:]))) else "de"
    STATE["lang"], STATE["debug"] = lang, debug
    if "--help" in args or "-h" in args or len(args) <= 1:
        _localize_help(lang)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)

    def report(err: GeoplanError) -> int:
        # soft_wrap: no line breaks inserted into file paths and keys
        console.print(f"[bold red]{MSG[lang]['error']}:[/bold red] " + escape(err.render(lang)), soft_wrap=True)
        return 2

    try:
        rc = app(args=args, standalone_mode=False)
        if rc == 130:  # typer turns Ctrl-C (KeyboardInterrupt) into exit code 130
            console.print(ABORTED[lang])
        return rc if isinstance(rc, int) else 0
    except GeoplanError as err:
        if debug:
            raise
        return report(err)
    except typer.Exit as e:
        if e.exit_code == 130:
            console.print(ABORTED[lang])
        return e.exit_code
    except (typer.Abort, KeyboardInterrupt):
        console.print(ABORTED[lang])
        return 130
    except _Terminated:
        console.print(ABORTED[lang])
        return 143
    except Exception as exc:  # click usage errors and internal errors
        if isinstance(exc, typer.exceptions.TyperException) and hasattr(exc, "format_message"):
            if type(exc).__name__ == "NoArgsIsHelpError":
                return 0  # the help was shown
            if type(exc).__name__ in ("Exit", "Abort"):
                return getattr(exc, "exit_code", 130)
            return report(_usage_error(exc))
        if debug:
            raise
        if isinstance(exc, OSError):
            return report(_os_error(exc))
        console.print(
            "[bold red]Interner Fehler:[/bold red] "
            + escape(f"{type(exc).__name__}: {exc}\n")
            + "Bitte mit --debug erneut ausführen und die Ausgabe an das geoplan-Team melden."
        )
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def entry() -> None:  # pragma: no cover - the console script (tests run it as a subprocess)
    """The ``geoplan`` command: :func:`main`, then :func:`geoplan.parallel.leave` (no interpreter teardown)."""
    from geoplan.parallel import leave

    leave(main())


if __name__ == "__main__":  # pragma: no cover
    entry()
