"""The residents' report page (扫码上报), opened from a building's or grid's QR code on a phone.

One self-contained HTML page (no app to install, no outside file, works on an intranet):
the place comes filled in from the code; the resident verifies their phone with a one-time
code, reports with category, text and a photo from the camera, follows their reports and
rates the result (群众评单). Only the resident's own reports are shown back to them.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

STATUS_LABELS = {
    "reported": "已上报",
    "accepted": "已受理",
    "dispatched": "已派单",
    "in_progress": "处置中",
    "resolved": "已处置，请评价",
    "evaluated": "已评价",
    "closed": "已办结",
    "rejected": "不予受理",
    "duplicate": "已合并",
    "reopened": "重新处置中",
}

TEMPLATE = Path(__file__).with_name("templates") / "resident.html"


def resident_page(place: dict[str, Any]) -> str:
    """The page for one place: ``address``, ``micro_name``, and ``building_id`` or
    ``grid_code`` (what the report will be placed at)."""
    label = " · ".join(str(p) for p in (place.get("address"), place.get("micro_name")) if p)
    public_place = {
        "building_id": place.get("building_id"),
        "grid_code": place.get("grid_code"),
        "label": label,
    }
    as_json = json.dumps(public_place, ensure_ascii=False).replace("</", "<\\/")
    labels = json.dumps(STATUS_LABELS, ensure_ascii=False)
    return (
        TEMPLATE.read_text(encoding="utf-8")
        .replace("__TITLE__", html.escape(label or "网格"))
        .replace("__PLACE__", html.escape(label or "网格"))
        .replace("__PLACE_JSON__", as_json)
        .replace("__LABELS_JSON__", labels)
    )
