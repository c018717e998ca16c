"""bericht.pdf: WeasyPrint renders the report's HTML, in this process or in a second one.

The HTML is bericht.html, or — when the PDF leaves detail tables out
(``output.pdf_detail_tables_max_areas``) — its PDF variant, written by
:func:`geoplan.report.html.write_report` to a file in the output's temporary
folder and removed when the PDF is done, failed or cancelled.

The second process (:class:`PdfWorker`) is started before the report is
ready — by the CLI before the pipeline runs, or at the start of
:func:`geoplan.report.write_outputs` — so that importing WeasyPrint and
loading its fonts overlaps the other work; it is sent the path of the HTML
when that is written and renders the same bytes as :func:`pdf_from_html` in
this process (same HTML text, base URL and identifier). A worker started with
``figures=True`` (the CLI's) also imports matplotlib and the report's figure
and map modules meanwhile, and before the PDF it draws figures for
:mod:`geoplan.report.drawjobs` (:meth:`PdfWorker.call`), side by side with
this process. This module imports nothing heavy itself.
"""

from __future__ import annotations

import gc
import hashlib
import io
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import traceback
import zlib
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def _fixed_font_timestamp():
    """Set SOURCE_DATE_EPOCH for the PDF's font subsets (fixed bytes), unless the user set it."""
    if "SOURCE_DATE_EPOCH" in os.environ:
        yield
        return
    os.environ["SOURCE_DATE_EPOCH"] = "946684800"  # 2000-01-01: any constant will do
    try:
        yield
    finally:
        os.environ.pop("SOURCE_DATE_EPOCH", None)


def _png_chunks(data: bytes) -> tuple[tuple[int, ...], bytes, set[bytes]] | None:
    """The IHDR fields (width, height, bit depth, colour type, compression, filter, interlace), the joined
    IDAT data and the other chunk types of a PNG; None if ``data`` is no well-formed PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    pos, ihdr, idat, kinds = 8, None, [], set()
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length:
            return None
        if kind == b"IHDR" and length == 13:
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        else:
            kinds.add(kind)
        pos += 12 + length
        if kind == b"IEND":
            break
    return (ihdr, b"".join(idat), kinds) if ihdr is not None and idat else None


def _png_x_object(image, interpolate: bool):
    """The PDF image of a PNG figure without WeasyPrint's decode-and-re-encode round trip, or None.

    WeasyPrint (``RasterImage.get_x_object``) decodes every PNG and encodes it
    again through Pillow — twice for RGBA, colour and alpha mask — which was
    a third of writing bericht.pdf. An 8-bit, non-interlaced RGB or grey PNG
    is embedded as it is: its compressed data (IDAT) is exactly what a PDF
    image with the PNG predictor holds. An RGBA or grey-alpha PNG whose alpha
    is opaque everywhere (matplotlib's figures and maps) is decoded once and
    its colour deflated without predictor and without a mask (same pixels,
    smaller). Anything else: None, and WeasyPrint's own code embeds it.
    """
    import pydyf
    from PIL import Image

    parsed = _png_chunks(image.image_data.data)
    if parsed is None:
        return None
    (width, height, depth, colour, _comp, _filter, interlace), idat, kinds = parsed
    if depth != 8 or interlace or b"tRNS" in kinds or colour not in (0, 2, 4, 6):
        return None
    extra = pydyf.Dictionary({
        "Type": "/XObject", "Subtype": "/Image", "Width": width, "Height": height,
        "ColorSpace": "/DeviceRGB" if colour in (2, 6) else "/DeviceGray", "BitsPerComponent": 8,
        "Interpolate": "true" if interpolate else "false", "Filter": "/FlateDecode"})
    if colour in (0, 2):
        extra["DecodeParms"] = pydyf.Dictionary({"Predictor": 15, "Columns": width, "Colors": 3 if colour == 2 else 1})
        return pydyf.Stream([idat], extra)
    picture = Image.open(io.BytesIO(image.image_data.data))
    if picture.size != (width, height) or picture.getchannel("A").getextrema() != (255, 255):
        return None  # a real mask: WeasyPrint's code keeps it
    return pydyf.Stream([zlib.compress(picture.convert("RGB" if colour == 6 else "L").tobytes(), 6)], extra)


def _embed_png_directly() -> None:
    """Make WeasyPrint embed PNG figures through :func:`_png_x_object` (once per process; in the worker
    and in :func:`pdf_from_html` alike, so both give the same bytes). Falls back to WeasyPrint's own code
    for every image it does not handle, and for every image if WeasyPrint's internals are not as expected."""
    from weasyprint import images

    cls = getattr(images, "RasterImage", None)
    original = getattr(cls, "get_x_object", None)
    if original is None or getattr(original, "geoplan", False):
        return

    def get_x_object(self, interpolate, dpi_ratio):
        if dpi_ratio == 1 and getattr(self, "format", None) == "PNG":
            try:
                found = _png_x_object(self, interpolate)
            except (AttributeError, KeyError, OSError, ValueError, struct.error):
                found = None
            if found is not None:
                return found
        return original(self, interpolate, dpi_ratio)

    get_x_object.geoplan = True
    cls.get_x_object = get_x_object


def pdf_from_html(html: str, out_dir: Path, pdf_path: Path) -> None:
    """Render ``html`` (the text of bericht.html in ``out_dir``) to ``pdf_path``."""
    from weasyprint import HTML

    _embed_png_directly()

    # the PDF's file identifier is derived from the report text, so the same report gives the same bytes
    ident = hashlib.sha256(html.encode("utf-8")).hexdigest()[:32].encode("ascii")
    # fontTools stamps each embedded font subset with "now" unless SOURCE_DATE_EPOCH is set
    with _fixed_font_timestamp():
        # PDF/UA-1: tagged structure, document language and title for screen readers (BITV 2.0)
        HTML(string=html, base_url=str(out_dir)).write_pdf(pdf_path, uncompressed_pdf=False, pdf_identifier=ident,
                                                           pdf_variant="pdf/ua-1")


_WARM_UP = ('<!DOCTYPE html><html lang="de"><head><meta charset="utf-8"><title>x</title><style>'
            'body{font-family:"DejaVu Sans",sans-serif;font-size:10pt} th,td{padding:2px}</style></head><body>'
            '<h1>Ä</h1><p>Text <b>fett</b> <i>kursiv</i> 1.234,5 €</p><table><thead><tr><th>a</th></tr></thead>'
            '<tr><td>1</td></tr></table></body></html>')


# The pipes between this process and the worker carry frames: an 8-byte big-endian length, then a pickle.
# Pickle is acceptable here because both ends are geoplan's own processes: the parent writes the jobs into
# the worker's stdin and the worker writes the answers into a pipe only the parent reads; no frame is ever
# read from a file, a socket or any other program.
_LENGTH = struct.Struct(">Q")


def _send_bytes(stream, data: bytes) -> None:
    stream.write(_LENGTH.pack(len(data)))
    stream.write(data)
    stream.flush()


def _receive_bytes(stream) -> bytes:
    """One frame's pickle; EOFError when the other end has closed the pipe (before or inside the frame)."""
    head = stream.read(_LENGTH.size)
    if head is None or len(head) < _LENGTH.size:
        raise EOFError
    (size,) = _LENGTH.unpack(head)
    data = stream.read(size)
    if data is None or len(data) < size:
        raise EOFError
    return data


def _dumps(obj) -> bytes:
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


READY = ("ready",)


def _warm_up_figures() -> None:  # pragma: no cover - runs in the second process
    """Import the figure and map modules and mapclassify (the maps' classes; it loads scipy.stats and
    sklearn.cluster) and draw a throw-away figure (matplotlib's fonts and the Agg renderer are loaded once
    per process; the figures' bytes are the same with or without it, tested)."""
    import mapclassify  # noqa: F401

    from geoplan.report import figures, mapping  # noqa: F401 - mapping imports maps (geopandas, shapely)

    fig, ax = figures.plt.subplots(figsize=(1.0, 1.0))
    ax.set_title("Ä 1,5", fontweight="bold")
    ax.set_xlabel("x")
    ax.plot([0, 1], [0, 1])
    figures.png_bytes(fig)


def _worker(figures: bool = False) -> None:  # pragma: no cover - runs in the second process (tested through PdfWorker)
    """Entry point of the second process: import and warm up, then do what stdin's frames ask.

    ``figures``: also import the figure modules (:func:`_warm_up_figures`)
    and answer ``("ready",)`` on stdout when everything is loaded. Frames on
    stdin: ``("call", function, args, kwargs)``, answered by ``(True, return
    value)`` or ``(False, traceback text)``; then ``("pdf", {"html": …,
    "out_dir": …, "pdf": …})``, rendered, and the process ends (an error
    there: traceback on stderr, exit code 1). End of input without a PDF job
    (the parent gave up or died) ends the process quietly.
    """
    from geoplan.parallel import leave

    # the answers go out on a private copy of stdout; whatever a library prints lands in the error file
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    jobs = sys.stdin.buffer
    if figures:  # first: the figures are asked for before the PDF
        _warm_up_figures()
    from weasyprint import HTML

    # fonts, Pango and the user-agent stylesheet are loaded once per process: do it while the parent works
    # (a throw-away document; the report's bytes are the same with or without it, tested)
    HTML(string=_WARM_UP).render()
    _embed_png_directly()
    # what is loaded now lives as long as the process: the garbage collector leaves it out of its full
    # collections, which the PDF's layout sets off often (with matplotlib and pandas loaded: 0.2–0.6 s CPU)
    gc.freeze()
    if figures:
        _send_bytes(answers, _dumps(READY))
    while True:
        try:
            data = _receive_bytes(jobs)
        except EOFError:
            return
        kind = None
        try:
            kind, *body = pickle.loads(data)
            if kind == "pdf":
                job = body[0]
                pdf_from_html(Path(job["html"]).read_text(encoding="utf-8"), Path(job["out_dir"]), Path(job["pdf"]))
                # the PDF is written and closed; the parent waits for this process to end: leave without the
                # interpreter's teardown (freeing WeasyPrint's, matplotlib's and pandas' objects one by one)
                leave(0)
            func, args, kwargs = body
            answer = _dumps((True, func(*args, **kwargs)))
        except Exception:  # noqa: BLE001 - a call's error goes back (the parent draws the figure itself)
            if kind == "pdf":
                raise  # traceback on stderr, exit code 1: PendingPdf.wait reports it
            answer = _dumps((False, traceback.format_exc()))
        _send_bytes(answers, answer)


class WorkerCallError(Exception):
    """A call raised in the worker (or its arguments could not be sent): the text of the error."""


class WorkerGone(Exception):
    """The worker cannot take calls: it has ended, was cancelled, has the PDF job already or draws no figures."""


class PdfWorker:
    """A second process that has imported WeasyPrint (and, ``figures=True``, matplotlib) and waits for the report.

    :meth:`call` has it run a function (the report's figures, see
    :mod:`geoplan.report.drawjobs`) before the PDF; :meth:`render` hands it
    bericht.html and returns a :class:`PendingPdf`; :meth:`cancel` ends it
    (idempotent; also after :meth:`render`). Its error output goes to an
    anonymous temporary file, so no log is left anywhere. :meth:`call` and
    :meth:`render` are not to be used by two threads at once.
    """

    def __init__(self, figures: bool = True):
        code = (f"import sys; sys.path[:0] = {[p for p in sys.path if p]!r}; "
                f"from geoplan.report.pdf import _worker; _worker(figures={bool(figures)!r})")
        self._err = tempfile.TemporaryFile()
        self.figures = bool(figures)
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE if figures else subprocess.DEVNULL, stderr=self._err)
        self.sent = False
        self._ready = False
        self._gone = not figures

    def wait_ready(self) -> bool:
        """Wait until the worker has loaded everything; False when it takes no calls (see :class:`WorkerGone`)."""
        if self._ready or self._gone or self.sent:
            return self._ready and not self._gone and not self.sent
        try:
            self._ready = pickle.loads(_receive_bytes(self.proc.stdout)) == READY
        except (EOFError, OSError, ValueError, pickle.UnpicklingError):
            pass
        self._gone = not self._ready
        return self._ready

    def call(self, func, *args, **kwargs):
        """``func(*args, **kwargs)`` run in the worker (``func`` a module-level function; it and the arguments
        picklable), its return value. Raises :class:`WorkerCallError` when it raised there or could not be
        sent, :class:`WorkerGone` when the worker cannot answer (then every later call raises it too)."""
        try:
            data = _dumps(("call", func, args, kwargs))
        except Exception as exc:  # noqa: BLE001 - not picklable: the caller runs it itself
            raise WorkerCallError(f"{type(exc).__name__}: {exc}") from None
        if not self.wait_ready():
            raise WorkerGone
        try:
            _send_bytes(self.proc.stdin, data)
            ok, value = pickle.loads(_receive_bytes(self.proc.stdout))
        except (EOFError, OSError, ValueError, pickle.UnpicklingError):  # ended, killed, or cancelled meanwhile
            self._gone = True
            raise WorkerGone from None
        if not ok:
            raise WorkerCallError(value)
        return value

    def render(self, html_path: Path, out_dir: Path, remove_source: bool = False) -> PendingPdf:
        """Send the job; ``remove_source``: ``html_path`` is a temporary file the :class:`PendingPdf` removes."""
        pdf_path = Path(out_dir) / "bericht.pdf"
        job = {"html": str(html_path), "out_dir": str(out_dir), "pdf": str(pdf_path)}
        self.sent = True
        try:
            _send_bytes(self.proc.stdin, _dumps(("pdf", job)))
            self.proc.stdin.close()
        except (BrokenPipeError, OSError, ValueError):
            pass  # the process has ended already: wait() reports its error output
        return PendingPdf(self, pdf_path, Path(html_path) if remove_source else None)

    def error_text(self) -> str:
        self._err.seek(0)
        return self._err.read().decode("utf-8", errors="replace")

    def cancel(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._gone = True
        for stream in (self.proc.stdin, self.proc.stdout, self._err):
            try:
                if stream is not None:
                    stream.close()
            except (OSError, ValueError):
                pass


class PendingPdf:
    """A PDF being rendered by a :class:`PdfWorker`; :meth:`wait` returns its path or raises."""

    def __init__(self, worker: PdfWorker, pdf_path: Path, source: Path | None = None):
        self.worker, self.proc, self.path, self.source = worker, worker.proc, pdf_path, source

    def _remove_source(self) -> None:
        if self.source is not None:
            self.source.unlink(missing_ok=True)

    def wait(self) -> Path:
        code = self.proc.wait()
        err = self.worker.error_text()
        self.worker.cancel()  # closes the error file
        self._remove_source()
        if code != 0 or not self.path.exists():
            from geoplan.errors import GeoplanError

            self.path.unlink(missing_ok=True)
            raise GeoplanError(
                "Der PDF-Bericht konnte nicht erstellt werden.",
                file=self.path,
                found=err.strip().splitlines()[-1] if err.strip() else f"Exit-Code {code}",
                hint="bericht.html enthält denselben Bericht; output.pdf: false schaltet das PDF ab.",
                message_en="The PDF report could not be written.",
                hint_en="bericht.html holds the same report; output.pdf: false switches the PDF off.",
            )
        return self.path

    def cancel(self) -> None:
        self.worker.cancel()
        self._remove_source()
        self.path.unlink(missing_ok=True)


def start_pdf(html_path: Path, out_dir: Path, worker: PdfWorker | None = None,
              remove_source: bool = False) -> PendingPdf:
    """Render ``bericht.pdf`` from the written HTML in a second process (started now if not given).

    ``remove_source``: ``html_path`` is the PDF's own text in a temporary file, removed when the PDF is done.
    """
    return (worker or PdfWorker(figures=False)).render(html_path, out_dir, remove_source)
