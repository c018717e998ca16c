"""The PDF worker draws some of the report's figures (issue 15): the same bytes as drawn here, and a worker
problem (an error in a job, a killed worker) never loses a figure."""

from __future__ import annotations

import os
import time

import pytest

from geoplan.report import drawjobs, figures, html, i18n
from geoplan.report.mapping import map_jobs
from geoplan.report.pdf import PdfWorker, WorkerCallError, WorkerGone
from geoplan.report.published import build_published


@pytest.fixture(scope="module")
def pub(demo_result):
    return build_published(demo_result, lang="de")


@pytest.fixture(scope="module")
def local_report(demo_result, pub):
    """bericht.html and the PDF's text of the demo, every figure drawn in this process."""
    return html.render_reports(demo_result, pub, "de")


def _ready_worker():
    w = PdfWorker(figures=True)
    assert w.wait_ready()
    return w


@pytest.fixture(scope="module")
def worker():
    """One ready worker for the tests that leave it working (starting one costs about 2 s CPU)."""
    w = _ready_worker()
    yield w
    w.cancel()


class Picky:
    """Gives its bytes only in the process that made it: drawn by the worker, the job fails (there it raises,
    or — when the worker cannot import this module — it cannot even be unpickled)."""

    def __init__(self):
        self.pid = os.getpid()

    def __bytes__(self):
        if os.getpid() != self.pid:
            raise RuntimeError("nur im Elternprozess")
        return b"png"


def test_worker_draws_the_same_bytes_with_the_reports_labels(demo_result, pub, worker):
    frame = demo_result.frame.drop(columns="geometry")
    (key, func, args, kwargs), *_ = map_jobs(demo_result, pub, "de")
    # another exposure label: the figure's axis text changes, in the worker as here
    labels = dict(i18n.labels_of(demo_result), de="Junge Menschen unter 21")
    token = i18n._CTX.set(labels)
    try:
        local = [figures.budget_vs_need_plot(frame, "de"), func(*args, **kwargs)]
    finally:
        i18n._CTX.reset(token)
    default = figures.budget_vs_need_plot(frame, "de")
    drawn = [worker.call(drawjobs._draw_with_labels, labels, figures.budget_vs_need_plot, (frame, "de"), {}),
             worker.call(drawjobs._draw_with_labels, labels, func, args, kwargs)]
    assert drawn == local
    assert drawn[0] != default  # the labels really went along
    assert drawn[0][:8] == b"\x89PNG\r\n\x1a\n"


def test_a_job_that_fails_in_the_worker_is_drawn_here(worker):
    with pytest.raises(WorkerCallError, match="nur im Elternprozess|Picky"):
        worker.call(bytes, Picky())
    jobs = drawjobs.Figures(worker)
    jobs.add("x", bytes, Picky())
    deadline = time.monotonic() + 120
    while "x" not in jobs.failed_in_worker and time.monotonic() < deadline:  # the feeder has sent it, it failed
        time.sleep(0.05)
    assert jobs.failed_in_worker == ["x"]
    assert jobs.draw() == {"x": b"png"}
    assert worker.call(bytes, b"weiter") == b"weiter"  # the worker goes on after a failed job


def test_report_is_the_same_with_figures_drawn_by_the_worker(demo_result, pub, local_report, worker, monkeypatch):
    calls = []
    real = worker.call

    def counted(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(args[2].__name__)
        return out

    monkeypatch.setattr(worker, "call", counted)
    assert html.render_reports(demo_result, pub, "de", worker=worker) == local_report
    assert calls  # the worker drew some of them
    assert worker.proc.poll() is None and not worker.sent  # and still waits for the PDF


def test_killed_worker_loses_no_figure(demo_result, pub, local_report):
    worker = _ready_worker()
    real = worker.call
    answered = []

    def then_killed(*args, **kwargs):  # the worker is killed after its first figure
        if answered:
            worker.proc.kill()
            worker.proc.wait()
        out = real(*args, **kwargs)
        answered.append(out)
        return out

    worker.call = then_killed
    assert html.render_reports(demo_result, pub, "de", worker=worker) == local_report
    assert len(answered) == 1
    with pytest.raises(WorkerGone):
        real(bytes, b"x")
    worker.cancel()


def test_worker_that_died_before_it_was_ready_draws_nothing():
    w = PdfWorker(figures=True)
    w.proc.kill()
    w.proc.wait()
    assert not w.wait_ready()
    jobs = drawjobs.Figures(w)
    jobs.add("a", bytes, b"1")
    jobs.add("b", bytes, b"2")
    assert jobs.draw() == {"a": b"1", "b": b"2"} and jobs.by_worker == []
    w.cancel()


def test_without_figures_the_worker_takes_no_calls():
    w = PdfWorker(figures=False)
    try:
        with pytest.raises(WorkerGone):
            w.call(bytes, b"x")
        assert drawjobs.Figures(w)._worker is None
    finally:
        w.cancel()
