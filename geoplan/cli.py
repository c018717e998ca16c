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
                           hint="geoplan compare A.yaml B.yaml  oder  geoplan compare --preset stuttgart --preset isa")
    names = [n for n, _ in runs]
    if len(set(names)) != len(names):
        raise GeoplanError("Jede Konfiguration und jedes Preset nur einmal angeben.", location="compare",
                           found=", ".join(names))
    if out_file is not None and out_file.exists() and out_file.suffix.lower() != ".xlsx":
        raise GeoplanError("Der Vergleich wird als Excel-Datei (.xlsx) gespeichert.", file=out_file,
                           expected="Dateiname auf .xlsx")
    results = {}
    for name, load in runs:
        cfg = load()
        console.print(f"Rechne {name} …")
        results[name] = run_pipeline(cfg).allocation
    table_df = compare_allocations(results)
    out.print(compare_text(table_df, names), markup=False, highlight=False, soft_wrap=True)
    if out_file:
        write_compare_xlsx(table_df, names, out_file)
        out.print(f"[green]✓[/green] {out_file} {t('written')}")


def _cut(text: str, width: int) -> str:
    text = str(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def compare_text(df, names: list[str], width: int = 80) -> str:
    """The comparison as a plain table of at most ``width`` columns: reference, last scenario, difference."""
    from geoplan import fmt

    ref, last = names[0], names[-1]
    amount = 13
    name_w = width - 6 - 2 * (amount + 1) - (amount + 1) - 8
    head = f"{'Schl.':<5} {_cut('Sozialraum', name_w):<{name_w}} {_cut(ref, amount):>{amount}} {_cut(last, amount):>{amount}} " \
           f"{'Differenz':>{amount}} {'%':>7}"
    lines = [head, "─" * min(width, len(head))]
    for _, r in df.iterrows():
        pct = r.get(f"diff_{last}_pct")
        lines.append(f"{_cut(r['key'], 5):<5} {_cut(r.get('name', ''), name_w):<{name_w}} "
                     f"{fmt.number(r[ref], 0):>{amount}} {fmt.number(r[last], 0):>{amount}} "
                     f"{fmt.number(r[f'diff_{last}'], 0):>{amount}} {fmt.number(pct, 1):>7}")
    lines.append("─" * min(width, len(head)))
    lines.append(f"{'':<5} {'Summe':<{name_w}} {fmt.number(df[ref].sum(), 0):>{amount}} {fmt.number(df[last].sum(), 0):>{amount}} "
                 f"{fmt.number(df[f'diff_{last}'].sum(), 0):>{amount}} {'':>7}")
    if len(names) > 2:
        lines.append(f"Weitere Szenarien ({', '.join(names[1:-1])}) stehen in der Excel-Datei (--out).")
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
