"""Shared fixtures: one demo run per test session (it fits the model and writes all outputs), shared by
the xdist workers; each report figure drawn once per input and worker; the order in which the files are
handed to the workers."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The files that take longest (seconds on one worker, measured with -n 0), in that order. pytest-xdist
# (--dist loadfile --no-loadscope-reorder, pyproject.toml) hands whole files to the two workers in the
# collection order: the long ones start first and the many short files fill the gaps at the end,
# instead of a long file starting last and leaving one worker idle for minutes.
LONGEST_FIRST = [
    "test_bym2.py",  # the coverage study on the Berlin adjacency: 8 BYM2 fits (and refits)
    "test_presets_demo.py",  # 12 pipeline runs and reports on the synthetic city
    "test_validate_corpus.py",  # 69 broken inputs, each read and checked
    "test_postgis.py",  # a PostgreSQL cluster, two runs through the database
    "test_safety.py",  # real signals to real runs, a hostile workspace
    "test_wfs.py",  # MapServer, two runs through the WFS
    "test_bad_inputs.py",  # 84 broken inputs through the CLI
    "test_notebooks.py",  # 5 notebooks in a kernel, each runs the pipeline
    "test_bym2_pipeline.py",  # the Berlin example with the BYM2 model, outputs in two languages
    "test_privacy.py",  # suppression on random tables
    "test_accessibility.py",  # axe in Chromium on every HTML output
    "test_figure_worker.py",  # figures drawn by the PDF process, every figure drawn
    "test_report_pdf_process.py",  # two PDFs
    "test_report_determinism.py",  # a second demo run with its PDF in a new process
    "test_qgis.py",  # headless QGIS
]


def pytest_configure(config):
    """JAX's persistent compilation cache for the session (the workers and the geoplan processes the tests
    start inherit it): every BYM2 fit of the same size compiles the same sampler (about 20 s CPU each),
    which is then compiled once. Set JAX_COMPILATION_CACHE_DIR yourself to keep it between sessions."""
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return
    import tempfile

    folder = tempfile.mkdtemp(prefix="geoplan-test-jax-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = folder
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")
    config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


@contextlib.contextmanager
def _once_per_session(tmp_path_factory, name):
    """A folder that the first worker to ask for ``name`` fills, the other workers find filled.

    Yields (folder, done): the caller builds into ``folder`` when ``done`` is False. With xdist the
    folder lies in the temp directory the workers share and the build holds a file lock, so the demo
    is computed and written once per session rather than once per worker."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):  # one process: nothing to share
        folder = tmp_path_factory.mktemp(name)
        yield folder, False
        return
    import fcntl

    root = tmp_path_factory.getbasetemp().parent / "shared"
    root.mkdir(exist_ok=True)
    folder, marker = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            done = marker.exists()
            if not done and folder.exists():  # left by a build that failed
                shutil.rmtree(folder)
            folder.mkdir(exist_ok=True)
            yield folder, done
            marker.touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def demo_result(tmp_path_factory):
    """``geoplan demo``'s pipeline result (the Berlin example): computed once, shared by the workers."""
    import pickle

    with _once_per_session(tmp_path_factory, "demo_result") as (folder, done):
        if done:
            return pickle.loads((folder / "result.pickle").read_bytes())
        from geoplan.cli import demo_config
        from geoplan.pipeline import run

        result = run(demo_config())
        (folder / "result.pickle").write_bytes(pickle.dumps(result))
        return result


@pytest.fixture(scope="session")
def demo_outputs(demo_result, tmp_path_factory):
    """The demo's outputs, with the PDF (read only: tests that change files copy the folder)."""
    with _once_per_session(tmp_path_factory, "demo") as (folder, done):
        out = folder / "ausgabe"
        if not done:
            from geoplan.report import write_outputs

            write_outputs(demo_result, out)
        return out


@pytest.fixture(scope="session")
def demo_outputs_en(demo_result, tmp_path_factory):
    """The demo's outputs with ``--lang en`` (no PDF: the English PDF is the same layout)."""
    with _once_per_session(tmp_path_factory, "demo_en") as (folder, done):
        out = folder / "output"
        if not done:
            from geoplan.report import write_outputs

            write_outputs(demo_result, out, lang="en", pdf=False)
        return out


#: Test files whose reports draw every figure: test_figure_worker tests how this process and the PDF process
#: share the drawing, which depends on how long this process takes for its figures; test_figures_scale looks
#: at the pixels of every figure the report draws.
DRAW_EVERY_FIGURE = ("test_figure_worker.py", "test_figures_scale.py")


@pytest.fixture(autouse=True, scope="session")
def _each_figure_drawn_once_per_worker():
    """A report figure whose job (function, arguments, report labels) was drawn before in this test process
    is taken from then, not drawn again.

    A figure job fully determines its PNG — the contract on which the PDF process draws figures for
    the report (geoplan/report/drawjobs.py; tests/test_figure_worker.py holds it to that) — and many
    tests write the report of the same result (the demo's, the hostile workspace's) again; each time
    the same 13 figures took about 3 s. Only this process's drawing (``Job.draw``) is shared: what the
    PDF process draws is always drawn, and a job whose arguments cannot be pickled is drawn each time.
    Drawing itself is deterministic across processes (tests/test_report_determinism.py runs the demo
    twice in new processes, which do not load this file)."""
    import hashlib
    import pickle

    from geoplan.report import drawjobs, i18n

    drawn: dict[bytes, bytes] = {}
    original = drawjobs.Job.draw

    def draw(job):
        test = os.environ.get("PYTEST_CURRENT_TEST", "")
        if any(test.startswith(f"tests/{name}::") for name in DRAW_EVERY_FIGURE):
            return original(job)
        try:
            key = hashlib.sha256(pickle.dumps(
                (job.func.__module__, job.func.__qualname__, job.args, job.kwargs, i18n._CTX.get()),
                protocol=pickle.HIGHEST_PROTOCOL)).digest()
        except Exception:  # noqa: BLE001 - not picklable: drawn as usual
            return original(job)
        if key not in drawn:
            if len(drawn) >= 400:  # about 40 reports' figures; the oldest go first
                drawn.pop(next(iter(drawn)))
            drawn[key] = original(job)
        return drawn[key]

    drawjobs.Job.draw = draw
    yield
    drawjobs.Job.draw = original
