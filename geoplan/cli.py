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
           "files": "Eingabedateien vorhanden", "written": "geschrieben"},
    "en": {"done": "Done. Outputs in", "error": "Error", "valid": "Configuration is valid:",
           "files": "input files present", "written": "written"},
}


def t(key: str) -> str:
    return MSG[STATE["lang"]][key]


@app.callback()
def _main(
    lang: str = typer.Option("de", "--lang", help="Sprache der Ausgaben: de oder en"),
    debug: bool = typer.Option(False, "--debug", help="bei Fehlern den vollständigen Traceback zeigen"),
):
    if lang not in ("de", "en"):
        raise GeoplanError("Unbekannte Sprache.", location="--lang", expected="de oder en", found=lang)
    STATE["lang"] = lang
    STATE["debug"] = debug


@contextmanager
def _stage(stage: str, label: str):
    with console.status(f"[bold blue]{label} …"):
        yield
    console.print(f"[green]✓[/green] {label}")


def _run_and_write(cfg, out_dir: Path, force: bool) -> None:
    from geoplan.pipeline import run
    from geoplan.report import prepare_out_dir, write_outputs

    prepare_out_dir(out_dir, force)  # refuse early, before any work
    result = run(cfg, progress=_stage)
    with console.status("[bold blue]Bericht, Karte, Excel und GeoPackage schreiben …"):
        files = write_outputs(result, out_dir, force=force, lang=STATE["lang"])
    console.print("[green]✓[/green] Ausgaben schreiben")
    warnings = [n for n in result.notes if n.level != "info"]
    for n in warnings[:5]:
        console.print(f"[yellow]Hinweis ({n.stage}):[/yellow] " + escape(n.message), soft_wrap=True)
    if len(warnings) > 5:
        console.print(f"[yellow]… und {len(warnings) - 5} weitere Hinweise[/yellow] (Bericht, Anhang: Qualitätssicherung)")
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
):
    """Eine Konfiguration rechnen und Bericht, Karte, Excel, GeoPackage und Manifest schreiben."""
    cfg = _load(config)
    _run_and_write(cfg, out_dir, force)


def demo_config(preset: str | None = None):
    from geoplan.config import config_from_dict
    import yaml

    if not EXAMPLE_CONFIG.is_file():
        raise GeoplanError("Die Beispielkonfiguration fehlt in der Installation.", file=EXAMPLE_CONFIG,
                           hint="geoplan aus dem Repository installieren: pip install -e .")
    raw = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    if preset:
        from geoplan.presets import load_preset

        p = load_preset(preset)
        raw["allocation"] = p["allocation"]
        if p.get("settlement") is not None:
            raw["settlement"] = p["settlement"]
        raw["title"] = f"{raw.get('title', 'Sozialraumbudget')} – Modell {p.get('title', preset)}"
    cfg = config_from_dict(raw, base_dir=EXAMPLE_CONFIG.parent, file=EXAMPLE_CONFIG)
    data = cfg.resolve(cfg.boundaries.path)
    if not data.is_file():
        raise GeoplanError(
            "Die Berliner Beispieldaten wurden nicht gefunden.",
            file=data,
            hint="geoplan aus dem Repository-Checkout installieren (pip install -e .), damit boundaries/ und indicators/ erreichbar sind.",
        )
    return cfg


@app.command()
def demo(
    out_dir: Path = typer.Option(Path("ausgabe"), "--out", "-o", help="Ausgabeordner"),
    preset: Optional[str] = typer.Option(None, "--preset", help="Budgetmodell einer Kommune verwenden (geoplan presets list)"),
    force: bool = typer.Option(False, "--force", help="bestehenden Ausgabeordner ersetzen"),
):
    """Das eingebaute Berliner Beispiel (58 Prognoseräume, echte Indikatoren, simulierte HzE-Daten) rechnen."""
    _run_and_write(demo_config(preset), out_dir, force)


@app.command()
def validate(config: Path = typer.Argument(..., help="Konfigurationsdatei (YAML)")):
    """Probelauf ohne Modell: alle Dateien lesen, Spalten und Schlüssel auflösen, verknüpfen, interpolieren,
    Budgetformel prüfen – und alle Probleme auf einmal melden."""
    import time

    from geoplan import fmt
    from geoplan.pipeline import dry_run

    t0 = time.perf_counter()
    cfg = _load(config)
    with console.status("[bold blue]Eingaben prüfen …"):
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
    warnings = [n for n in res.notes if n.level != "info"]
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
    for n in warnings[:10]:
        out.print(f"[yellow]Hinweis ({escape(n.stage)}):[/yellow] " + escape(n.message), soft_wrap=True)
    if len(warnings) > 10:
        out.print(f"[yellow]… und {len(warnings) - 10} weitere Hinweise[/yellow]")


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
                               message_en="The file exists already; geoplan does not overwrite without being asked.")
    if from_ is None:
        if table:
            raise GeoplanError("--table gehört zu --from.", location="geoplan init",
                               hint="geoplan init meine.yaml --from sozialraeume.shp --table bevoelkerung.csv")
        template = (Path(__file__).parent / "examples" / "vorlage.yaml").read_text(encoding="utf-8")
        path.write_text(template, encoding="utf-8")
        out.print(f"[green]✓[/green] Vorlage {t('written')}: {escape(str(path))}")
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
    out.print(f"[green]✓[/green] Konfiguration {t('written')}: {escape(str(path))}")
    out.print(f"[green]✓[/green] Indikatorenkatalog {t('written')}: {escape(str(catalogue))}")
    for n in prop.notes:
        out.print("[yellow]Hinweis:[/yellow] " + escape(n), soft_wrap=True)
    out.print(f"Nächster Schritt: geoplan validate {escape(str(path))}  (TODO-Kommentare in beiden Dateien prüfen)")


@presets_app.command("list")
def presets_list():
    """Alle Budgetmodelle auflisten."""
    from rich.table import Table

    from geoplan.presets import list_presets

    table = Table("Name", "Modell", "Beschreibung", show_lines=False)
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
    configs: list[Path] = typer.Argument(..., help="zwei oder mehr Konfigurationen (YAML)"),
    out_file: Optional[Path] = typer.Option(None, "--out", "-o", help="Vergleich als Excel-Datei speichern"),
):
    """Verteilungen mehrerer Konfigurationen nebeneinander: Differenzen, Gewinner und Verlierer."""
    from rich.table import Table

    from geoplan import fmt
    from geoplan.pipeline import run as run_pipeline
    from geoplan.stages.sensitivity import compare_allocations

    if len(configs) < 2:
        raise GeoplanError("Zum Vergleichen mindestens zwei Konfigurationen angeben.", location="compare",
                           hint="geoplan compare A.yaml B.yaml")
    results = {}
    for c in configs:
        cfg = _load(c)
        console.print(f"Rechne {c} …")
        results[c.stem] = run_pipeline(cfg).allocation
    table_df = compare_allocations(results)
    table = Table(*[str(c) for c in table_df.columns])
    for _, r in table_df.iterrows():
        table.add_row(*[fmt.number(v) if isinstance(v, (int, float)) else str(v) for v in r])
    out.print(table)
    if out_file:
        table_df.to_excel(out_file, index=False)
        out.print(f"[green]✓[/green] {out_file} {t('written')}")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 2 user error, 1 internal error)."""
    args = list(argv if argv is not None else sys.argv[1:])
    debug = "--debug" in args
    lang = "en" if ("--lang=en" in args or any(a == "--lang" and b == "en" for a, b in zip(args, args[1:]))) else "de"
    try:
        app(args=argv, standalone_mode=False)
        return 0
    except GeoplanError as err:
        if debug:
            raise
        # soft_wrap: no line breaks inserted into file paths and keys
        console.print(f"[bold red]{MSG[lang]['error']}:[/bold red] " + escape(err.render(lang)), soft_wrap=True)
        return 2
    except typer.Exit as e:
        return e.exit_code
    except (typer.Abort, KeyboardInterrupt):
        console.print("Abgebrochen.")
        return 130
    except Exception as exc:  # click usage errors and internal errors
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            return exc.exit_code
        if debug:
            raise
        console.print(
            "[bold red]Interner Fehler:[/bold red] "
            + escape(f"{type(exc).__name__}: {exc}\n")
            + "Bitte mit --debug erneut ausführen und die Ausgabe an das geoplan-Team melden."
        )
        return 1


def entry() -> None:  # pragma: no cover
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
