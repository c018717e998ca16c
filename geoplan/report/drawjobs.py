"""The report's figures drawn by this process and the PDF worker side by side (issue 15).

:func:`geoplan.report.html.report_context` does not draw its figures where it
needs them: it hands each to a :class:`Figures` as a job — a key, a
module-level function returning PNG bytes and its (picklable) arguments —
and collects the PNGs by key at the end (:meth:`Figures.draw`), so the
context and the report are the same bytes as when each figure is drawn in
place.

With a :class:`geoplan.report.pdf.PdfWorker` started with ``figures=True``
(the CLI starts one before the pipeline; it imports matplotlib, the figure
and map modules and mapclassify while the pipeline runs and sits idle until
the PDF), a feeder thread sends jobs from one end of the queue to the worker
as soon as they are added and it is ready, each one after the answer to the
last (waiting on the pipe releases the GIL); this process draws from the
other end once all are added. The static maps are queued at the worker's
end (:meth:`Figures.add_for_worker`): this process then needs neither
mapclassify nor the maps' first-call costs before the report is written
(karte.html, written while the PDF is laid out, loads them). A job the worker fails (its error, a worker that ended
or was killed, arguments that cannot be pickled) is drawn here, so a worker
problem never loses a figure; a figure that fails here raises as before.
Without a worker everything is drawn here, in the order added.

The worker draws with the same matplotlib settings (:mod:`geoplan.report.figures`
sets them when imported) and with this process's report labels
(:func:`geoplan.report.i18n.set_labels`, sent with each job), so its PNGs are
the bytes this process would draw (tests/test_figure_worker.py).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from geoplan.report import i18n


@dataclass(frozen=True)
class Job:
    key: str
    func: Callable[..., bytes]
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)

    def draw(self) -> bytes:
        return self.func(*self.args, **self.kwargs)


def _draw_with_labels(labels: dict | None, func: Callable[..., bytes], args: tuple, kwargs: dict) -> bytes:
    """In the worker: ``func(*args, **kwargs)`` with the parent's report labels (exposure wording of the config)."""
    i18n._CTX.set(labels)  # the module's own context variable: set_labels() needs a whole Result
    return func(*args, **kwargs)


class Figures:
    """The figure jobs of one report: :meth:`add` them, then :meth:`draw` (or :meth:`close` on an error).

    ``worker``: a :class:`geoplan.report.pdf.PdfWorker` that draws figures
    (``figures=True``), or None (all drawn here). The arguments of a job must
    not change after :meth:`add`: the feeder thread may pickle them at any time.
    """

    def __init__(self, worker=None):
        self.jobs: list[Job] = []
        self._worker = worker if getattr(worker, "figures", False) and not getattr(worker, "sent", True) else None
        self._labels = i18n._CTX.get()
        self._queue: deque[Job] = deque()
        self._cond = threading.Condition()
        self._closed = False  # no more jobs for the feeder (all added, or an error)
        self._busy = False  # the feeder waits for the worker's answer to a job
        self._done: dict[str, bytes] = {}
        self._failed: list[Job] = []  # jobs the worker could not draw: drawn here
        self._feeder: threading.Thread | None = None
        self.by_worker: list[str] = []  # keys of the figures the worker drew
        self.failed_in_worker: list[str] = []  # keys of the jobs the worker failed (drawn here)

    def add(self, key: str, func: Callable[..., bytes], *args: Any, **kwargs: Any) -> None:
        """A figure ``func(*args, **kwargs)`` (PNG bytes) under ``key``; ``func`` a module-level function."""
        self._add(Job(key, func, args, kwargs), worker_first=False)

    def add_for_worker(self, key: str, func: Callable[..., bytes], *args: Any, **kwargs: Any) -> None:
        """Like :meth:`add`, for a figure the worker takes before the others (the static maps: the worker
        loaded their libraries while the pipeline ran); this process draws it only when nothing else is left."""
        self._add(Job(key, func, args, kwargs), worker_first=True)

    def _add(self, job: Job, worker_first: bool) -> None:
        if any(other.key == job.key for other in self.jobs):
            raise ValueError(f"figure {job.key!r} added twice")
        self.jobs.append(job)
        with self._cond:
            # the feeder takes from the right end, this process from the left: the worker's own jobs go right,
            # the others left, so this process starts with the latest (the large per-area charts) and the
            # worker, after its own, with the earliest
            if worker_first:
                self._queue.append(job)
            else:
                self._queue.appendleft(job)
            self._cond.notify_all()
        if self._worker is not None and self._feeder is None:
            self._feeder = threading.Thread(target=self._feed, name="geoplan-figures", daemon=True)
            self._feeder.start()

    def _feed(self) -> None:
        """The feeder thread: once the worker is ready, send it jobs from the right end of the queue, one at a time."""
        from geoplan.report.pdf import WorkerCallError, WorkerGone

        worker = self._worker
        if not worker.wait_ready():  # it ended before it was ready: this process draws everything
            return
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                job = self._queue.pop()
                self._busy = True
            png, gone = None, False
            try:
                png = worker.call(_draw_with_labels, self._labels, job.func, job.args, job.kwargs)
            except WorkerCallError:
                pass
            except WorkerGone:
                gone = True
            with self._cond:
                if isinstance(png, bytes):
                    self._done[job.key] = png
                    self.by_worker.append(job.key)
                else:
                    self._failed.append(job)
                    self.failed_in_worker.append(job.key)
                self._busy = False
                self._cond.notify_all()
            if gone:
                return

    def close(self) -> None:
        """No more jobs for the worker (after :meth:`draw`, or when the report failed before it)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def draw(self) -> dict[str, bytes]:
        """Draw what the worker has not taken (from the left end of the queue), wait for what it draws; the
        PNGs by key, in the order added."""
        self.close()
        while True:
            with self._cond:
                if not self._queue:
                    break
                job = self._queue.popleft()
            png = job.draw()
            with self._cond:
                self._done[job.key] = png
        with self._cond:
            while self._busy:  # the worker's last job: at most one figure's drawing time
                self._cond.wait()
            failed, self._failed = self._failed, []
        for job in failed:  # the worker's error, or it ended: drawn here (an error here raises as it would have)
            self._done[job.key] = job.draw()
        return {job.key: self._done[job.key] for job in self.jobs}
