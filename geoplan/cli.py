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
    with console.status(f"[bold blue]{label} …"):
        yield
    console.print(f"[green]✓[/green] {label}")


def _run_and_write(cfg, out_dir: Path, force: bool, config_file: Path | None = None) -> None:
    from geoplan.pipeline import run
    from geoplan.report import protected_paths, write_outputs
    from geoplan.report.outdir import locked_target

    # refuse early, before any work, and hold the folder's lock until the outputs are in place
    with locked_target(out_dir, force, protected_paths(cfg), config=config_file):
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
    _run_and_write(cfg, out_dir, force, config_file=config)


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
    _run_and_write(demo_config(preset), out_dir, force, config_file=EXAMPLE_CONFIG)


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


ABORTED = {"de": "Abgebrochen; es wurde nichts geschrieben.", "en": "Aborted; nothing was written."}


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 2 user error, 130 Ctrl-C, 143 SIGTERM, 1 internal error)."""
    import signal
    import threading

    args = _global_first(list(argv if argv is not None else sys.argv[1:]))
    debug = "--debug" in args
    lang = "en" if ("--lang=en" in args or any(a == "--lang" and b == "en" for a, b in zip(args, args[1:]))) else "de"
    STATE["lang"], STATE["debug"] = lang, debug
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


def entry() -> None:  # pragma: no cover
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
