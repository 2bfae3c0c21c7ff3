"""QR codes for residents' reports: one per building and per grid, as PNG, and a printable A4
PDF sheet per community (二维码张贴). Each code opens the report form with the place filled in.

QR matrices come from segno; the sheet is drawn with reportlab (vector, so it prints sharp).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import segno

CJK_FONT = "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"  # TrueType outlines: embeddable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Label:
    """One code on a sheet: the URL it opens and the text printed under it."""

    url: str
    title: str
    subtitle: str = ""


def building_url(base: str, building_id: int) -> str:
    """The report form for one building."""
    return f"{base.rstrip('/')}/r/b/{int(building_id)}"


def grid_url(base: str, grid_code: str) -> str:
    """The report form for one grid."""
    if not grid_code.isdigit():
        raise ValueError(f"a grid code is digits, got {grid_code!r}")
    return f"{base.rstrip('/')}/r/g/{grid_code}"


def qr_png(url: str, *, scale: int = 8) -> bytes:
    """A PNG of the QR code (error correction M, 4-module quiet zone)."""
    out = io.BytesIO()
    segno.make(url, error="m", micro=False).save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


def qr_matrix(url: str) -> list[list[bool]]:
    """The dark/light modules of the QR code, without the quiet zone."""
    code = segno.make(url, error="m", micro=False)
    return [[bool(v) for v in row] for row in code.matrix]


def _font() -> str:
    """Register the embedded CJK font once; fall back to the unembedded PDF standard font."""
    from reportlab.pdfbase import pdfmetrics

    if "WQY" in pdfmetrics.getRegisteredFontNames():
        return "WQY"
    if Path(CJK_FONT).exists():
        from reportlab.pdfbase.ttfonts import TTFont

        pdfmetrics.registerFont(TTFont("WQY", CJK_FONT, subfontIndex=0))
        return "WQY"
    log.warning("%s is missing (apt-get install fonts-wqy-zenhei): Chinese not embedded", CJK_FONT)
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    if "STSong-Light" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    return "STSong-Light"


def sheet_pdf(title: str, labels: Sequence[Label], *, cols: int = 4, rows: int = 5) -> bytes:
    """An A4 PDF with ``cols × rows`` codes per page, each with its label, and the sheet's
    title on every page.

    Drawn with reportlab: codes as vector rectangles (one per run of dark modules), Chinese
    text in WenQuanYi Zen Hei embedded as a subset (the set-up installs fonts-wqy-zenhei), so
    every reader shows it, also one without CJK language packs.
    """
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    if not labels:
        raise ValueError("no codes to print")
    font = _font()
    width, height = A4
    margin, head = 36.0, 40.0
    cell_w = (width - 2 * margin) / cols
    cell_h = (height - 2 * margin - head) / rows
    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=A4)
    pdf.setTitle(title)
    pdf.setCreator("Wangge")
    per_page = cols * rows
    for start in range(0, len(labels), per_page):
        pdf.setFont(font, 14)
        pdf.drawCentredString(width / 2, height - margin - 14, title)
        for i, label in enumerate(labels[start : start + per_page]):
            r, c = divmod(i, cols)
            x0 = margin + c * cell_w
            top = height - margin - head - r * cell_h
            matrix = qr_matrix(label.url)
            n = len(matrix)
            size = min(cell_w, cell_h - 30) * 0.86
            module = size / n
            left = x0 + (cell_w - size) / 2
            for y, row in enumerate(matrix):
                x = 0
                while x < n:  # one rectangle per horizontal run of dark modules
                    if row[x]:
                        run = x
                        while run < n and row[run]:
                            run += 1
                        pdf.rect(left + x * module, top - 4 - (y + 1) * module,
                                 (run - x) * module, module, stroke=0, fill=1)  # fmt: skip
                        x = run
                    else:
                        x += 1
            pdf.setFont(font, 8)
            pdf.drawCentredString(x0 + cell_w / 2, top - 4 - size - 11, label.title[:24])
            if label.subtitle:
                pdf.setFont(font, 6.5)
                pdf.drawCentredString(x0 + cell_w / 2, top - 4 - size - 20, label.subtitle[:32])
        pdf.showPage()
    pdf.save()
    return out.getvalue()
