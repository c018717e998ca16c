"""The output folder: what ``--out`` may be, and how it is replaced safely.

Rules (issue 12):

- ``--out`` is resolved first (a symlink is followed; the link itself stays).
- Never the current directory, the home directory, a file system root, a folder
  that holds an input file or the config, or an ancestor of an input.
- An existing non-empty folder is replaced only with ``--force`` and only when
  geoplan wrote it (the marker file :data:`MARKER` from an earlier run).
- One run per target at a time: a lock file beside the target
  (``fcntl.flock``); a second run stops with a clear message.
- Everything is written into a temporary folder beside the target and renamed
  into place at the end, under the lock. Temporary folders of killed runs are
  removed by the next run on the same target. Nothing is left beside it.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from geoplan.errors import GeoplanError

#: Written into every output folder; ``--force`` replaces only folders that hold it.
MARKER = ".geoplan-ausgabe"
_MARKER_TEXT = "Dieser Ordner wurde von geoplan geschrieben; 'geoplan run --force' darf ihn ersetzen.\n"

# Locks this process holds: resolved target -> open file descriptor.
_HELD: dict[Path, int] = {}


def resolve_target(out_dir: str | Path) -> Path:
    """Absolute path of ``out_dir`` with symlinks followed (also a dangling one)."""
    return Path(os.path.realpath(os.path.abspath(os.path.expanduser(str(out_dir)))))


def _tag(target: Path) -> str:
    # short and fixed-length, so even a 250-character folder name gets valid neighbours
    return hashlib.sha256(str(target).encode("utf-8", "surrogateescape")).hexdigest()[:12]


def tmp_prefix(target: Path) -> str:
    return f".geoplan.tmp-{_tag(target)}-"


def old_prefix(target: Path) -> str:
    return f".geoplan.old-{_tag(target)}-"


def lock_path(target: Path) -> Path:
    return target.parent / f".geoplan.lock-{_tag(target)}"


def os_error(exc: OSError, path: str | Path | None = None, *, action: str = "schreiben") -> GeoplanError:
    """A German/English message for a file system error while writing."""
    where = path if path is not None else (exc.filename or None)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return GeoplanError("Kein Platz mehr auf dem Datenträger; es wurde nichts geschrieben.", file=where,
                            hint="Platz schaffen oder einen Ausgabeordner auf einem anderen Laufwerk wählen (--out).",
                            message_en="No space left on the device; nothing was written.",
                            hint_en="Free some space or choose an output folder on another drive (--out).")
    if exc.errno == errno.ENAMETOOLONG:
        return GeoplanError("Der Name des Ausgabeordners ist zu lang für das Dateisystem.", file=where,
                            expected="höchstens etwa 200 Zeichen je Ordnername",
                            hint="Einen kürzeren Namen für --out wählen.",
                            message_en="The output folder name is too long for the file system.",
                            hint_en="Choose a shorter name for --out.")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return GeoplanError(f"Keine Schreibberechtigung; geoplan kann hier nicht {action}.", file=where,
                            hint="Einen Ordner wählen, in dem Sie schreiben dürfen (--out), oder die Rechte prüfen.",
                            message_en="No permission to write here.",
                            hint_en="Choose a folder you may write to (--out) or check the permissions.")
    if exc.errno == errno.ENOENT:
        return GeoplanError("Der Ordner existiert nicht.", file=where,
                            hint="Den Ordner zuerst anlegen oder den Pfad korrigieren.",
                            message_en="The folder does not exist.",
                            hint_en="Create the folder first or correct the path.")
    if exc.errno == errno.ENOTDIR:
        return GeoplanError("Ein Teil des Pfads ist eine Datei, kein Ordner.", file=where,
                            hint="Den Pfad für --out korrigieren.",
                            message_en="Part of the path is a file, not a folder.",
                            hint_en="Correct the path given to --out.")
    return GeoplanError(f"Schreiben fehlgeschlagen: {exc.strerror or exc}", file=where,
                        hint="Ausgabeordner und Datenträger prüfen.",
                        message_en=f"Writing failed: {exc.strerror or exc}",
                        hint_en="Check the output folder and the drive.")


def _refuse(target: Path, why: str, why_en: str) -> GeoplanError:
    return GeoplanError(
        f"Dieser Ausgabeordner ist nicht erlaubt: {why}. geoplan ersetzt ihn nicht, auch nicht mit --force.",
        file=target,
        location="--out",
        hint="Einen eigenen, neuen Ordner für die Ausgaben angeben, z. B. --out ausgabe_2026.",
        message_en=f"This output folder is not allowed: {why_en}. geoplan does not replace it, not even with --force.",
        hint_en="Give a new folder of its own for the outputs, e.g. --out output_2026.",
    )


def _is_within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_target(out_dir: str | Path, force: bool, protected: Iterable[str | Path] = (),
                 config: str | Path | None = None) -> Path:
    """Check ``out_dir`` against the rules above; return the resolved target.

    ``protected``: input files and the config; the target may not be any of
    them, nor a folder holding one of them.
    """
    target = resolve_target(out_dir)
    if any(len(part.encode("utf-8", "surrogateescape")) > 255 for part in target.parts):
        raise os_error(OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG)), target)
    if target == Path(target.anchor):
        raise _refuse(target, "ein Wurzelverzeichnis des Dateisystems", "a file system root")
    home = resolve_target(Path.home())
    if target == home:
        raise _refuse(target, "das Home-Verzeichnis", "the home folder")
    if _is_within(home, target):
        raise _refuse(target, "ein Ordner, der das Home-Verzeichnis enthält", "a folder that holds the home folder")
    cwd = resolve_target(os.getcwd())
    if _is_within(cwd, target):
        raise _refuse(target, "das aktuelle Arbeitsverzeichnis (oder ein Ordner darüber)",
                      "the current directory (or a folder above it)")
    for p in ([config] if config is not None else []) + list(protected):
        if p is None:
            continue
        src = resolve_target(p)
        if _is_within(src, target):
            if p is config:
                what, what_en = "die Konfiguration", "the configuration"
            elif src.is_dir():
                what, what_en = "den Ordner der Konfiguration", "the folder of the configuration"
            else:
                what, what_en = "eine Eingabedatei oder die Konfiguration", "an input file or the configuration"
            raise _refuse(target, f"er enthält {what} ({src.name})", f"it holds {what_en} ({src.name})")
    if target.exists() and not target.is_dir():
        raise GeoplanError(
            "Der Ausgabepfad ist eine Datei, kein Ordner.",
            file=target,
            hint="Einen Ordnernamen für --out angeben.",
            message_en="The output path is a file, not a folder.",
            hint_en="Give a folder name for --out.",
        )
    if target.is_dir():
        try:
            entries = [e.name for e in os.scandir(target)]
        except OSError as exc:
            raise os_error(exc, target, action="lesen") from None
        if entries and not force:
            raise GeoplanError(
                "Der Ausgabeordner ist nicht leer; geoplan überschreibt nichts ungefragt.",
                file=target,
                hint="Einen neuen Ordner wählen oder --force angeben, um eine frühere geoplan-Ausgabe zu ersetzen.",
                message_en="The output folder is not empty; geoplan does not overwrite without being asked.",
                hint_en="Choose a new folder or pass --force to replace an earlier geoplan output.",
            )
        if entries and MARKER not in entries:
            raise GeoplanError(
                "Der Ausgabeordner wurde nicht von geoplan geschrieben; --force ersetzt nur frühere geoplan-Ausgaben "
                "(erkennbar an der Datei " + MARKER + ").",
                file=target,
                found=", ".join(sorted(entries)[:5]) + (" …" if len(entries) > 5 else ""),
                hint="Einen neuen, leeren Ordner für --out wählen; fremde Dateien löscht geoplan nicht.",
                message_en="The output folder was not written by geoplan; --force replaces only earlier geoplan "
                           "outputs (they hold the file " + MARKER + ").",
                hint_en="Choose a new, empty folder for --out; geoplan does not delete other files.",
            )
    return target


def _remove_stale(target: Path) -> None:
    """Remove temporary/backup folders of killed runs on this target (called under the lock)."""
    parent = target.parent
    if not parent.is_dir():
        return
    for prefix in (tmp_prefix(target), old_prefix(target)):
        for p in parent.glob(prefix + "*"):
            if p.is_symlink() or not p.is_dir():
                continue
            names = os.listdir(p)
            if names and MARKER not in names:
                continue  # not ours after all: leave it
            shutil.rmtree(p, ignore_errors=True)
    # geoplan up to 0.1 named them .<name>.tmp-XXXX / .<name>.old-XXXX, without a marker:
    # removed only when they hold nothing but geoplan's own output files
    for p in parent.glob(f".{target.name}.tmp-*"):
        _remove_if_outputs_only(p)
    for p in parent.glob(f".{target.name}.old-*"):
        _remove_if_outputs_only(p)


_OWN_FILES = {"bericht.html", "bericht.pdf", "karte.html", "verteilung.xlsx", "ergebnis.gpkg", "manifest.json", MARKER}


def _remove_if_outputs_only(p: Path) -> None:
    if p.is_symlink() or not p.is_dir():
        return
    entries = list(os.scandir(p))
    if all(e.is_file(follow_symlinks=False) and e.name in _OWN_FILES for e in entries):
        shutil.rmtree(p, ignore_errors=True)


@contextmanager
def locked_target(out_dir: str | Path, force: bool, protected: Iterable[str | Path] = (),
                  config: str | Path | None = None) -> Iterator[Path]:
    """Check ``out_dir``, take the lock for it and yield the resolved target.

    Re-entrant within one process (the CLI takes it before the computation,
    :func:`geoplan.report.write_outputs` again around the writing).
    """
    protected = list(protected)
    target = check_target(out_dir, force, protected, config)
    if target in _HELD:
        yield target
        return
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise os_error(exc, target.parent) from None
    lp = lock_path(target)
    while True:
        try:
            fd = os.open(lp, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise os_error(exc, target) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise GeoplanError(
                "In diesen Ausgabeordner schreibt gerade ein anderer geoplan-Lauf.",
                file=target,
                hint="Warten, bis der andere Lauf fertig ist, oder einen anderen Ordner für --out wählen.",
                message_en="Another geoplan run is writing into this output folder right now.",
                hint_en="Wait until the other run has finished or choose another folder for --out.",
            ) from None
        # the file may have been removed by the previous holder between open and flock: retry
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lp))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    _HELD[target] = fd
    try:
        _remove_stale(target)
        yield target
    finally:
        _HELD.pop(target, None)
        try:
            os.unlink(lp)
        except OSError:
            pass
        os.close(fd)


def new_tmp(target: Path) -> Path:
    """A fresh temporary folder beside ``target`` (with the marker), permissions as the user's umask."""
    try:
        tmp = Path(tempfile.mkdtemp(prefix=tmp_prefix(target) + f"{os.getpid()}-", dir=target.parent))
    except OSError as exc:
        raise os_error(exc, target) from None
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)
    (tmp / MARKER).write_text(_MARKER_TEXT, encoding="utf-8")
    return tmp


def swap_in(tmp: Path, target: Path, force: bool, protected: Iterable[str | Path] = ()) -> None:
    """Move the finished ``tmp`` into place (under the lock); re-check the target first."""
    check_target(target, force, protected)  # it may have changed while we computed
    if target.exists():
        backup = Path(tempfile.mkdtemp(prefix=old_prefix(target) + f"{os.getpid()}-", dir=target.parent))
        backup.rmdir()
        target.rename(backup)
        try:
            tmp.rename(target)
        except BaseException:
            backup.rename(target)
            raise
        shutil.rmtree(backup, ignore_errors=True)
    else:
        tmp.rename(target)
