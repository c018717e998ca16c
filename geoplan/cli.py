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
    """Konfiguration prüfen, ohne zu rechnen: Felder, Werte, Eingabedateien, Budgetformel."""
    from geoplan.load.sources import check_inputs

    cfg = _load(config)
    check_inputs(cfg)
    spec = cfg.allocation
    out.print(f"[green]✓[/green] {t('valid')} {config}")
    out.print(f"  {len(cfg.input_paths())} {t('files')}; {len(spec.components)} Bestandteile der Budgetformel, "
              f"Gesamtbudget {spec.total_eur:,.0f} €".replace(",", "."))


@app.command()
def init(
    path: Path = typer.Argument(Path("geoplan.yaml"), help="Zieldatei"),
    force: bool = typer.Option(False, "--force", help="bestehende Datei überschreiben"),
):
    """Eine kommentierte Konfigurationsvorlage schreiben."""
    if path.exists() and not force:
        raise GeoplanError("Die Datei existiert schon; geoplan überschreibt nichts ungefragt.", file=path,
                           hint="Anderen Namen wählen oder --force angeben.")
    template = (Path(__file__).parent / "examples" / "vorlage.yaml").read_text(encoding="utf-8")
    path.write_text(template, encoding="utf-8")
    out.print(f"[green]✓[/green] Vorlage {t('written')}: {path}")


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
