"""The layout's contracts: the report only formats and writes, it computes no statistic."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "geoplan"
# what computes statistics; a writer under geoplan/report/ must not reach it
FORBIDDEN = ("statsmodels", "scipy.stats", "geoplan.stages.sensitivity", "geoplan.stages.model")


def _module_file(name: str) -> Path | None:
    rel = Path(*name.split("."))
    for cand in (ROOT / rel.with_suffix(".py"), ROOT / rel / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def _package(path: Path) -> list[str]:
    """The package a module file belongs to (for relative imports)."""
    return list(path.relative_to(ROOT).with_suffix("").parts[:-1])


def _imports(path: Path, package: list[str]) -> set[str]:
    """Every module an ``import`` statement in ``path`` names (also inside functions), absolute."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package[: len(package) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)  # "from geoplan.stages import sensitivity"
    return out


def _reachable(start: list[tuple[Path, list[str]]]) -> dict[str, str]:
    """Modules imported from the ``(file, package)`` pairs in ``start``, following geoplan's own
    modules; name -> the file importing it."""
    seen: dict[str, str] = {}
    todo = list(start)
    done: set[Path] = set()
    while todo:
        path, package = todo.pop()
        if path in done:
            continue
        done.add(path)
        for name in _imports(path, package):
            seen.setdefault(name, path.name)
            f = _module_file(name) if name.startswith("geoplan") else None
            if f is not None:
                todo.append((f, _package(f)))
    return seen


def _statistics(reached: dict[str, str]) -> dict[str, str]:
    return {name: by for name, by in reached.items() if name.startswith(FORBIDDEN)}


def test_report_imports_no_statistics():
    reached = _reachable([(f, _package(f)) for f in sorted((PKG / "report").glob("*.py"))])
    assert "geoplan.fmt" in reached  # the walk follows geoplan's modules
    assert not _statistics(reached), f"geoplan/report reaches statistics code: {_statistics(reached)}"


def test_the_import_check_can_fail(tmp_path):
    # a function-level import, relative or absolute, and one reached through another geoplan module are all found
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from ..stages.sensitivity import weight_sensitivity\n", encoding="utf-8")
    assert "geoplan.stages.sensitivity" in _statistics(_reachable([(probe, ["geoplan", "report"])]))
    probe.write_text("import geoplan.stages.allocate\n", encoding="utf-8")
    assert not _statistics(_reachable([(probe, ["geoplan", "report"])]))
    probe.write_text("from geoplan.pipeline import run\n", encoding="utf-8")
    assert "geoplan.stages.model" in _statistics(_reachable([(probe, ["geoplan", "report"])]))


def test_importing_the_report_loads_no_statistics_module():
    code = (
        "import sys, importlib, pkgutil, geoplan.report as r\n"
        "for m in pkgutil.iter_modules(r.__path__):\n"
        "    importlib.import_module('geoplan.report.' + m.name)\n"
        "print(' '.join(sorted(k for k in sys.modules if k.startswith(('statsmodels', 'geoplan.stages')))))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True, env=env)
    assert out.stdout.strip() == "", out.stdout


def test_no_circular_import_between_geoplan_modules():
    files = sorted(PKG.rglob("*.py"))
    graph = {}
    for f in files:
        name = ".".join(f.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        graph[name] = {m for m in _imports(f, _package(f)) if m.startswith("geoplan") and _module_file(m) is not None} - {name}
    # a package importing its own submodules (re-exports) is not a cycle between parts
    cycles = [(a, b) for a, deps in graph.items() for b in deps
              if a in graph.get(b, set()) and not (b.startswith(a + ".") or a.startswith(b + "."))]
    assert not cycles, cycles
