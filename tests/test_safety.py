"""Issue 12: nothing lost, nothing injected, nothing leaked.

Through the CLI as a user runs it: the output folder rules of ``--force``,
one run per folder, temporary folders, symlinks, signals, write errors;
hostile names and title in ``karte.html`` / ``bericht.html`` in a real browser;
the proportionality scan; every hint names only real config fields.

One real pipeline run on hostile input (module fixture) feeds every test that
needs a result; the CLI tests reuse it through ``geoplan.pipeline.run``.
"""

from __future__ import annotations

import ast
import errno
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geoplan.cli import main
from geoplan.report.outdir import MARKER, locked_target, lock_path, tmp_prefix, old_prefix, resolve_target
from tests.bad_inputs import Workspace

ROOT = Path(__file__).resolve().parents[1]

PWN = "document.documentElement.appendChild(document.createElement('pwned'))"
HOSTILE_NAMES = [
    f'<img src=x onerror="{PWN}">',
    '<img src="https://evil.example/remote.png">',
    f"</script><script>{PWN}</script>",
    f"<svg onload=\"{PWN}\"></svg>&amp; \"Zitat\" 'x'",
]
HOSTILE_TITLE = f"</title><script>{PWN}</script>Budget"
HOSTILE_REGION = f"Berlin<img src=https://evil.example/region.png onerror=\"{PWN}\">"


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if p.name.startswith(".geoplan.") or ".tmp-" in p.name
            or ".old-" in p.name]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A workspace whose Sozialraum names, title, region and sources are hostile, and its pipeline result."""
    from geoplan.config import load_config
    from geoplan.pipeline import run

    ws = Workspace.create(tmp_path_factory.mktemp("hostile") / "ws")
    g = ws.geojson()
    for i, name in enumerate(HOSTILE_NAMES):
        g["features"][i]["properties"]["name"] = name
    ws.write_geojson(g)
    ws.raw["title"] = HOSTILE_TITLE
    ws.raw["region"] = HOSTILE_REGION
    ws.raw["sources"] = [{"text": "<img src=https://evil.example/src.png>", "short": f"<b onmouseover=\"{PWN}\">Q</b>"}]
    cfg_path = ws.write_config()
    result = run(load_config(cfg_path))
    return ws, cfg_path, result


@pytest.fixture()
def fake_run(hostile, monkeypatch):
    """``geoplan run`` through the CLI with the hostile result instead of a new computation."""
    import geoplan.pipeline

    ws, cfg_path, result = hostile
    monkeypatch.setattr(geoplan.pipeline, "run", lambda cfg, progress=None, remote=None: result)
    return ws, cfg_path


def _cli(capsys, argv):
    code = main(argv)
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err and "Interner Fehler" not in cap.err, cap.err
    return code, " ".join(cap.err.split()), cap.out


# --------------------------------------------------------------------------- output folder

def test_force_replaces_own_folder_and_removes_stale_temp_folders(fake_run, tmp_path, capsys):
    ws, cfg = fake_run
    before = _hashes(ws.root)
    out = tmp_path / "ausgabe"
    assert _cli(capsys, ["run", str(cfg), "--out", str(out)])[0] == 0
    assert (out / MARKER).is_file() and (out / "karte.html").is_file()
    # a killed run left its temporary and backup folders
    target = resolve_target(out)
    stale_tmp = tmp_path / (tmp_prefix(target) + "4242-abc")
    stale_tmp.mkdir()
    (stale_tmp / MARKER).write_text("x")
    (stale_tmp / "bericht.html").write_text("halb")
    stale_old = tmp_path / (old_prefix(target) + "4242-def")
    stale_old.mkdir()
    (stale_old / MARKER).write_text("x")
    legacy = tmp_path / ".ausgabe.tmp-k3j4h5"  # naming of geoplan 0.1, without a marker
    legacy.mkdir()
    (legacy / "bericht.html").write_text("halb")
    (out / "karte.html").write_text("alt")
    code, err, stdout = _cli(capsys, ["run", str(cfg), "--out", str(out), "--force"])
    assert code == 0, err
    assert (out / "karte.html").read_text(encoding="utf-8") != "alt"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ausgabe"]  # stale folders and lock file gone
    assert _hashes(ws.root) == before


def test_concurrent_run_on_same_folder_fails_clearly(fake_run, tmp_path, capsys):
    ws, cfg = fake_run
    import fcntl

    out = tmp_path / "ausgabe"
    lp = lock_path(resolve_target(out))
    fd = os.open(lp, os.O_RDWR | os.O_CREAT)  # as another process would hold it
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        code, err, _ = _cli(capsys, ["run", str(cfg), "--out", str(out)])
    finally:
        os.close(fd)
        lp.unlink()
    assert code == 2
    assert "anderer geoplan-Lauf" in err
    assert not out.exists() and _leftovers(tmp_path) == []


def test_second_process_is_refused_while_the_first_holds_the_lock(tmp_path):
    """The lock is a real fcntl lock: another process sees it."""
    out = tmp_path / "ausgabe"
    code = ("import sys; from geoplan.report.outdir import locked_target\n"
            "from geoplan.errors import GeoplanError\n"
            "try:\n    with locked_target(sys.argv[1], False):\n        print('bekommen')\n"
            "except GeoplanError as e:\n    print(e.message)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with locked_target(out, False):
        res = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, env=env,
                             timeout=120)
    assert "anderer geoplan-Lauf" in res.stdout, res.stdout + res.stderr
    res = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, env=env, timeout=120)
    assert "bekommen" in res.stdout
    assert _leftovers(tmp_path) == []


def test_symlinked_out_is_resolved_and_nothing_left_beside(fake_run, tmp_path, capsys):
    ws, cfg = fake_run
    real = tmp_path / "echt"
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    assert _cli(capsys, ["run", str(cfg), "--out", str(link)])[0] == 0
    assert _cli(capsys, ["run", str(cfg), "--out", str(link), "--force"])[0] == 0
    assert link.is_symlink() and Path(os.readlink(link)) == real
    assert (real / "bericht.html").is_file() and (real / MARKER).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["echt", "link"]


def test_long_folder_name_works(fake_run, tmp_path, capsys):
    ws, cfg = fake_run
    out = tmp_path / ("a" * 250)
    code, err, _ = _cli(capsys, ["run", str(cfg), "--out", str(out)])
    assert code == 0, err
    assert (out / "verteilung.xlsx").is_file()
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("where", ["cwd", "home", "cwd_parent"])
def test_force_refuses_cwd_and_home(where, fake_run, tmp_path, monkeypatch, capsys):
    ws, cfg = fake_run
    place = tmp_path / "platz"
    (place / "sub").mkdir(parents=True)
    (place / "wichtig.txt").write_text("bleibt")
    before = _hashes(place)
    if where == "home":
        monkeypatch.setenv("HOME", str(place))
        out = "~"
    elif where == "cwd":
        monkeypatch.chdir(place)
        out = "."
    else:
        monkeypatch.chdir(place / "sub")
        out = ".."
    code, err, _ = _cli(capsys, ["run", str(cfg), "--out", out, "--force"])
    assert code == 2
    assert "nicht erlaubt" in err and ("Home" in err or "Arbeitsverzeichnis" in err)
    assert _hashes(place) == before
    assert _leftovers(tmp_path) == [] and _leftovers(place) == []


def _break_writer(monkeypatch, exc_factory):
    import geoplan.report.xlsx

    def boom(*a, **k):
        raise exc_factory()
    monkeypatch.setattr(geoplan.report.xlsx, "write_xlsx", boom)


@pytest.mark.parametrize(("exc", "code", "fragments"), [
    (lambda: KeyboardInterrupt(), 130, ["Abgebrochen; es wurde nichts geschrieben."]),
    (lambda: OSError(errno.ENOSPC, "No space left on device"), 2, ["Kein Platz", "nichts geschrieben"]),
    (lambda: PermissionError(errno.EACCES, "Permission denied"), 2, ["Keine Schreibberechtigung"]),
])
def test_interrupt_and_write_errors_leave_nothing(exc, code, fragments, fake_run, tmp_path, monkeypatch, capsys):
    ws, cfg = fake_run
    before = _hashes(ws.root)
    _break_writer(monkeypatch, exc)
    out = tmp_path / "ausgabe"
    got, err, _ = _cli(capsys, ["run", str(cfg), "--out", str(out)])
    assert got == code, err
    for f in fragments:
        assert f in err
    assert not out.exists() and _leftovers(tmp_path) == []
    assert _hashes(ws.root) == before


def test_ctrl_c_message_in_english(fake_run, tmp_path, monkeypatch, capsys):
    ws, cfg = fake_run
    _break_writer(monkeypatch, KeyboardInterrupt)
    code, err, _ = _cli(capsys, ["run", str(cfg), "--out", str(tmp_path / "o"), "--lang", "en"])
    assert code == 130 and "Aborted; nothing was written." in err


def test_sigterm_while_writing_exits_143(fake_run, tmp_path, monkeypatch, capsys):
    ws, cfg = fake_run
    _break_writer(monkeypatch, lambda: os.kill(os.getpid(), signal.SIGTERM) or RuntimeError("nicht erreicht"))
    out = tmp_path / "ausgabe"
    code, err, _ = _cli(capsys, ["run", str(cfg), "--out", str(out)])
    assert code == 143 and "Abgebrochen; es wurde nichts geschrieben." in err
    assert not out.exists() and _leftovers(tmp_path) == []
    assert signal.getsignal(signal.SIGTERM) is not None


def test_read_only_parent(fake_run, tmp_path, monkeypatch, capsys):
    """As root the permission bits do not stop us, so the refusal of the file system is simulated."""
    import geoplan.report.outdir as outdir

    ws, cfg = fake_run

    def denied(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path))
    monkeypatch.setattr(outdir.tempfile, "mkdtemp", denied)
    code, err, _ = _cli(capsys, ["run", str(cfg), "--out", str(tmp_path / "o")])
    assert code == 2 and "Keine Schreibberechtigung" in err
    assert _leftovers(tmp_path) == [] and not (tmp_path / "o").exists()


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_real_signal_to_a_running_process(sig, code, tmp_path):
    """A real ``geoplan run`` process: Ctrl-C (SIGINT) and SIGTERM while it computes."""
    ws = Workspace.create(tmp_path / "ws")
    cfg = ws.write_config()
    before = _hashes(ws.root)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, "-m", "geoplan.cli", "run", str(cfg), "--out", str(ws.out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lock = lock_path(resolve_target(ws.out))
    deadline = time.monotonic() + 120
    while not lock.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert lock.exists(), "the run never took the lock"
    time.sleep(1.0)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    # After Ctrl-C CPython (3.11) sometimes ends the process by re-raising SIGINT once main() returned 130;
    # a shell shows both as exit status 130 (128 + 2), which is what Ctrl-C should give.
    assert proc.returncode in (code, -sig), err
    assert "Abgebrochen; es wurde nichts geschrieben." in err and "Traceback" not in err
    assert not ws.out.exists() and _leftovers(ws.root) == []
    assert _hashes(ws.root) == before


# --------------------------------------------------------------------------- CLI usage

def test_version_and_global_options_anywhere(tmp_path, capsys):
    from geoplan import __version__

    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out
    code = main(["validate", str(tmp_path / "fehlt.yaml"), "--lang", "en"])
    err = capsys.readouterr().err
    assert code == 2 and "Configuration file not found." in err
    code = main(["run", str(tmp_path / "fehlt.yaml"), "--lang=en", "--out", str(tmp_path / "o"), "--bogus"])
    err = capsys.readouterr().err
    assert code == 2 and "Unknown option '--bogus'" in err


def test_no_arguments_shows_help(capsys):
    assert main([]) == 0
    assert "Usage" in capsys.readouterr().out


def test_help_speaks_the_users_language(capsys):
    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Optionen" in out and "Diese Hilfe zeigen und beenden." in out and "Show this message" not in out
    assert main(["--lang", "en", "run", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Options" in out and "Show this message and exit." in out and "Optionen" not in out


# --------------------------------------------------------------------------- browser

def _need_browser():
    from geoplan.browser import chromium_available

    if not chromium_available():
        if os.environ.get("GEOPLAN_REQUIRE_BROWSER"):
            pytest.fail("GEOPLAN_REQUIRE_BROWSER ist gesetzt, aber Chromium/chromedriver fehlen.")
        pytest.skip("Chromium/chromedriver nicht installiert (Debian: apt install chromium chromium-driver)")


@pytest.fixture(scope="module")
def hostile_outputs(hostile, tmp_path_factory):
    from geoplan.report import write_outputs

    ws, cfg, result = hostile
    out = tmp_path_factory.mktemp("hostile_out") / "ausgabe"
    write_outputs(result, out, pdf=False)
    return out


FIRE_TOOLTIPS = """
var paths = document.querySelectorAll('path.leaflet-interactive');
if (paths.length < 58) return false;
if (!window.__fired) {
  window.__fired = true;
  var seen = 0, hostile = 0, names = %s;
  paths.forEach(function(p) {
    var r = p.getBoundingClientRect();
    var o = {bubbles: true, cancelable: true, view: window,
             clientX: r.left + r.width / 2, clientY: r.top + r.height / 2};
    p.dispatchEvent(new MouseEvent('mouseover', o));
    p.dispatchEvent(new MouseEvent('mousemove', o));
    var t = document.querySelector('.leaflet-tooltip');
    if (t) {
      seen++;
      if (names.some(function(n) { return t.textContent.indexOf(n) >= 0; })) hostile++;
      if (t.querySelector('img, script, svg')) document.body.setAttribute('data-tip-element', '1');
    }
    p.dispatchEvent(new MouseEvent('mouseout', o));
  });
  document.body.setAttribute('data-tips', String(seen));
  document.body.setAttribute('data-hostile-tips', String(hostile));
  var title = document.querySelector('.geoplan-title');
  document.body.setAttribute('data-title-ok',
    String(document.title.indexOf('</title><script>') === 0 && title.textContent.indexOf('<script>') >= 0));
}
return true;
"""


def test_browser_hostile_map_runs_no_script_and_loads_nothing(hostile_outputs):
    from geoplan.browser import open_offline

    _need_browser()
    page = hostile_outputs / "karte.html"
    res = open_offline(page, wait_js=FIRE_TOOLTIPS % json.dumps(HOSTILE_NAMES),
                       selectors=("path.leaflet-interactive", "pwned", 'body[data-tips="58"]',
                                  f'body[data-hostile-tips="{len(HOSTILE_NAMES)}"]', "body[data-tip-element]",
                                  'body[data-title-ok="true"]', ".geoplan-legend-layer"))
    assert res.dom_counts["path.leaflet-interactive"] == 58
    assert res.dom_counts['body[data-tips="58"]'] == 1, "not every tooltip opened"
    assert res.dom_counts[f'body[data-hostile-tips="{len(HOSTILE_NAMES)}"]'] == 1, "hostile names not shown as text"
    assert res.dom_counts["body[data-tip-element]"] == 0
    assert res.dom_counts['body[data-title-ok="true"]'] == 1, "title not shown as text"
    assert res.dom_counts["pwned"] == 0, "a script from user text ran"
    assert res.external_requests(hostile_outputs) == []
    assert not [u for u in res.requests if "evil.example" in u]


def test_browser_hostile_report_runs_no_script_and_loads_nothing(hostile_outputs):
    from geoplan.browser import open_offline

    _need_browser()
    page = hostile_outputs / "bericht.html"
    res = open_offline(page, selectors=("pwned", "img", "table"))
    assert res.dom_counts["table"] > 0
    assert res.dom_counts["pwned"] == 0, "a script from user text ran"
    assert res.external_requests(hostile_outputs) == []
    assert not [u for u in res.requests if "evil.example" in u]


def test_hostile_text_reaches_html_only_escaped(hostile_outputs):
    """Static check of both pages: no hostile tag survives as markup anywhere in the files."""
    for name in ("karte.html", "bericht.html"):
        doc = (hostile_outputs / name).read_text(encoding="utf-8")
        assert "<img src=x" not in doc and "<img src=\"https://evil" not in doc, name
        assert "<svg onload" not in doc and "<b onmouseover" not in doc, name
        assert doc.count("</title>") == 1 and doc.count("<title>") == 1, name
        # remote URLs of the hostile text occur only inside escaped text, never as an attribute value
        assert not re.search(r"""<[a-zA-Z][^<>]*\b(?:src|href)\s*=\s*["']?https://evil""", doc), name


# --------------------------------------------------------------------------- privacy scan

def test_scanner_finds_columns_proportional_to_small_counts(tmp_path):
    from geoplan.privacy import scan_output_proportional

    keys = [f"{i:04d}" for i in range(1, 21)]
    counts = pd.Series([1 + i % 2 if i < 6 else 10 + 3 * i for i in range(20)], index=keys)
    pop = np.linspace(3000, 9000, 20)
    df = pd.DataFrame({
        "Schlüssel": keys,
        "budget_eur": np.round(2297.5 * counts.to_numpy()),                 # proportional: 1 case = 2.297 €
        "budget_fix_plus_faelle_eur": np.round(50_000 + 1000.0 * counts.to_numpy()),  # affine: still recoverable
        "budget_nach_einwohnern_eur": np.round(pop * 12.5),                 # not a function of the counts
    })
    with pd.ExcelWriter(tmp_path / "verteilung.xlsx") as xw:
        pd.DataFrame([["Titelzeile"]]).to_excel(xw, sheet_name="Verteilung", index=False, header=False)
        df.to_excel(xw, sheet_name="Verteilung", index=False, startrow=2)
    hits = scan_output_proportional(tmp_path, counts, k=3)
    cols = {h.column for h in hits["verteilung.xlsx"]}
    assert cols == {"budget_eur", "budget_fix_plus_faelle_eur"}
    h = next(h for h in hits["verteilung.xlsx"] if h.column == "budget_eur")
    assert h.per_case == pytest.approx(2297.5, abs=1) and h.small_keys
    # with every count ≥ k there is nothing small to recover
    assert scan_output_proportional(tmp_path, counts.where(counts >= 3, 3), k=3) == {}


def test_real_outputs_have_no_column_proportional_to_counts(hostile, hostile_outputs):
    from geoplan.privacy import scan_output_proportional

    _, _, result = hostile
    counts = result.frame.set_index("key")["hze_cases"].astype(float)
    # pretend the smallest areas had 1-2 cases: no published column may follow them
    assert scan_output_proportional(hostile_outputs, counts, k=int(counts.max()) + 1) == {}


# --------------------------------------------------------------------------- hints name real fields

def _schema_fields() -> tuple[set[str], set[str]]:
    """All field names of the config schema, and all dotted paths (list items as [])."""
    import typing

    from pydantic import BaseModel

    from geoplan.config import Config

    names, paths = set(), set()

    def models_in(ann):
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            yield ann
        for arg in typing.get_args(ann):
            yield from models_in(arg)

    def walk(model, prefix, depth=0):
        if depth > 6:
            return
        for fname, f in model.model_fields.items():
            names.add(fname)
            path = f"{prefix}.{fname}" if prefix else fname
            paths.add(path)
            for sub in models_in(f.annotation):
                walk(sub, path, depth + 1)

    walk(Config, "")
    return names, paths


def _hint_texts() -> list[tuple[str, int, str]]:
    """Constant text of every hint (hint=, hint_en=) and QA note/error message in geoplan/."""
    out = []
    for py in sorted((ROOT / "geoplan").rglob("*.py")):
        tree = ast.parse(py.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            parts = [kw.value for kw in node.keywords if kw.arg in ("hint", "hint_en", "message", "message_en")]
            fn = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if fn in ("GeoplanError", "QANote", "_implausible") and node.args:
                parts += list(node.args[:2])
            for part in parts:
                text = "".join(n.value for n in ast.walk(part) if isinstance(n, ast.Constant) and isinstance(n.value, str))
                if text:
                    out.append((str(py.relative_to(ROOT)), node.lineno, text))
    return out


# `field: value` as a user would write it in YAML, and dotted config paths
_YAML_FIELD = re.compile(
    r"(?<![\w.'\"-])(?:([a-z][a-z0-9]*_[a-z0-9_]*)(?=\s*:\s+(?:true|false|\[|\{|-?\d|[a-z_]+\b(?!\s*\()))"
    r"|([a-z][a-z0-9]*)(?=\s*:\s+(?:true|false|\[|\{|-?\d)))")


def _yaml_fields(text: str) -> list[str]:
    """Names written as ``field: value`` (snake_case with any value; plain words only before true/false/numbers)."""
    return [m.group(1) or m.group(2) for m in _YAML_FIELD.finditer(text)]


_DOTTED = re.compile(r"(?<![\w.])((?:boundaries|indicators|hze|model|allocation|settlement|privacy|output)"
                     r"(?:\.[a-z_][a-z0-9_]*|\[[^\]]*\])+)")
_QUOTED = re.compile(r"'([a-z][a-z0-9]*_[a-z0-9_]+)'")

#: identifiers that appear in hints and are not config fields: column names of the data, types, values
NOT_FIELDS = {
    "z", "b", "d", "h", "zb", "type", "gewichtet", "mss", "pca", "mean", "sum", "euro", "cent",
    "model", "population", "indicator", "fixed", "prior_year", "fachleistungsstunden", "simulate",
    "user_defined",  # a classification scheme of the maps
    "rank_by",  # a Python-API argument of geoplan.stages.equity, named in its own error
}


def test_every_hint_names_only_existing_config_fields():
    names, paths = _schema_fields()
    from geoplan.stages.allocate import AllocationSpec
    from geoplan.load.catalogue import __dict__ as catalogue_ns  # noqa: F401 - the catalogue has fields of its own

    catalogue_fields = set()
    for obj in list(catalogue_ns.values()):
        if isinstance(obj, type) and hasattr(obj, "model_fields"):
            catalogue_fields |= set(obj.model_fields)
    columns = set()
    for py in (ROOT / "geoplan").rglob("*.py"):
        columns |= set(re.findall(r"[\"']((?:hze|pop|expected|need|budget|eur|share)_[a-z0-9_]*)[\"']",
                                  py.read_text(encoding="utf-8")))
    allowed = names | catalogue_fields | NOT_FIELDS | columns | set(AllocationSpec.model_fields)
    bad = []
    texts = _hint_texts()
    assert len(texts) > 200
    for file, line, text in texts:
        for name in _yaml_fields(text):
            if name not in allowed:
                bad.append(f"{file}:{line}: '{name}' in {text[:120]!r}")
        for m in _DOTTED.finditer(text):
            path = re.sub(r"\[[^\]]*\]", "", m.group(1)).rstrip(".")
            if path not in paths and path.split(".")[0] not in ("settlement",):
                bad.append(f"{file}:{line}: '{m.group(1)}' in {text[:120]!r}")
        for m in _QUOTED.finditer(text):
            if m.group(1) not in allowed:
                bad.append(f"{file}:{line}: '{m.group(1)}' in {text[:120]!r}")
    assert not bad, "Hinweise nennen Felder, die es in der Konfiguration nicht gibt:\n" + "\n".join(bad)


def test_hint_check_catches_a_made_up_field():
    """Negative control for the check above."""
    names, paths = _schema_fields()
    assert "erlaube_alles" not in names and "spatial_lag" not in names
    assert _yaml_fields("…, erlaube_alles: true setzen.") == ["erlaube_alles"]
    assert _yaml_fields("(spatial_lag: need_index) oder method: gewichtet") == ["spatial_lag"]
    assert _yaml_fields("installieren: pip install; key_width: 8") == ["key_width"]
    assert _DOTTED.search("siehe model.spatial_lag").group(1) == "model.spatial_lag"
    assert "model.spatial_lag" not in paths and "hze.columns" in paths
