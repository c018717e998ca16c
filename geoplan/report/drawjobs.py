"""The report's figures drawn by this process and the PDF worker side by side (issue 15).

:func:`geoplan.report.html.report_context` does not draw its figures where it
needs them: it hands each to a :class:`Figures` as a job — a key, a
module-level function returning PNG bytes and its (picklable) arguments —
and collects the PNGs by key at the end (:meth:`Figures.draw`), so the
context and the report are the same bytes as when each figure is drawn in
place.

With a :class:`geoplan.report.pdf.PdfWorker` started with ``figures=True``
(the CLI starts one before the pipeline; it imports matplotlib and these
modules while the pipeline runs and sits idle until the PDF), a feeder
thread sends jobs from the back of the queue to the worker as soon as they
are added and it is ready, each one after the answer to the last (waiting on
the pipe releases the GIL); this process draws from the front of the queue
once all are added. A job the worker fails (its error, a worker that ended
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
        if any(job.key == key for job in self.jobs):
            raise ValueError(f"figure {key!r} added twice")
        job = Job(key, func, args, kwargs)
        self.jobs.append(job)
        with self._cond:
            self._queue.append(job)
            self._cond.notify_all()
        if self._worker is not None and self._feeder is None:
            self._feeder = threading.Thread(target=self._feed, name="geoplan-figures", daemon=True)
            self._feeder.start()

    def _feed(self) -> None:
        """The feeder thread: once the worker is ready, send it jobs from the back of the queue, one at a time."""
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
        """Draw what the worker has not taken, wait for what it draws; the PNGs by key, in the order added."""
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
