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
this process (same HTML text, base URL and identifier). This module imports
nothing heavy: the worker loads only WeasyPrint, not pandas or matplotlib.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
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


def _worker() -> None:  # pragma: no cover - runs in the second process (tested through PdfWorker)
    """Entry point of the PDF process: import and warm up WeasyPrint, then render what stdin names.

    stdin carries one JSON line ``{"html": …, "out_dir": …, "pdf": …}``; end of
    input without a line (the parent gave up or died) ends the process quietly.
    """
    from weasyprint import HTML

    # fonts, Pango and the user-agent stylesheet are loaded once per process: do it while the parent works
    # (a throw-away document; the report's bytes are the same with or without it, tested)
    HTML(string=_WARM_UP).render()
    _embed_png_directly()
    line = sys.stdin.readline()
    if not line.strip():
        return
    job = json.loads(line)
    html_path = Path(job["html"])
    pdf_from_html(html_path.read_text(encoding="utf-8"), Path(job["out_dir"]), Path(job["pdf"]))


class PdfWorker:
    """A second process that has imported WeasyPrint and waits for the report.

    :meth:`render` hands it bericht.html and returns a :class:`PendingPdf`;
    :meth:`cancel` ends it (idempotent; also after :meth:`render`). Its error
    output goes to an anonymous temporary file, so no log is left anywhere.
    """

    def __init__(self):
        code = (f"import sys; sys.path[:0] = {[p for p in sys.path if p]!r}; "
                "from geoplan.report.pdf import _worker; _worker()")
        self._err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=self._err)
        self.sent = False

    def render(self, html_path: Path, out_dir: Path, remove_source: bool = False) -> PendingPdf:
        """Send the job; ``remove_source``: ``html_path`` is a temporary file the :class:`PendingPdf` removes."""
        pdf_path = Path(out_dir) / "bericht.pdf"
        job = json.dumps({"html": str(html_path), "out_dir": str(out_dir), "pdf": str(pdf_path)})
        try:
            self.proc.stdin.write((job + "\n").encode("utf-8"))
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass  # the process has ended already: wait() reports its error output
        self.sent = True
        return PendingPdf(self, pdf_path, Path(html_path) if remove_source else None)

    def error_text(self) -> str:
        self._err.seek(0)
        return self._err.read().decode("utf-8", errors="replace")

    def cancel(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self._err):
            try:
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
    return (worker or PdfWorker()).render(html_path, out_dir, remove_source)
