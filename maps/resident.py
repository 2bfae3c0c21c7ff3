"""The residents' report page (扫码上报), opened from a building's or grid's QR code on a phone.

One self-contained HTML page (no app to install, no outside file, works on an intranet):
the place comes filled in from the code; the resident verifies their phone with a one-time
code, reports with category, text and a photo from the camera, follows their reports and
rates the result (群众评单). On the same page they post a small wish or a need (微心愿/需求:
category, text, wanted-by date, at the place of the code), see who claimed it (党员诺单) and
confirm it once it is done (评单). Only the resident's own reports and wishes are shown back
to them (the API filters by the verified number).
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

WISH_LABELS = {
    "open": "待认领",
    "claimed": "已认领",
    "done": "已完成，请确认",
    "confirmed": "已确认",
    "cancelled": "已取消",
}
# what a resident may ask for (the API takes any short text; these are the usual ones)
WISH_CATEGORIES = ("代购", "陪诊", "维修", "助餐", "陪伴", "家政", "助学", "其他")

TEMPLATE = Path(__file__).with_name("templates") / "resident.html"


def resident_page(place: dict[str, Any]) -> str:
    """The page for one place: ``address``, ``micro_name``, and ``building_id`` or
    ``grid_code`` (what the report will be placed at); a grid's page also carries its point
    (``lon``/``lat``, WGS84, inside the grid) for the wishes, which are placed at a point."""
    label = " · ".join(str(p) for p in (place.get("address"), place.get("micro_name")) if p)
    public_place = {
        "building_id": place.get("building_id"),
        "grid_code": place.get("grid_code"),
        "label": label,
    }
    if place.get("building_id") is None and place.get("lon") is not None:
        public_place.update(lon=float(place["lon"]), lat=float(place["lat"]))
    as_json = json.dumps(public_place, ensure_ascii=False).replace("</", "<\\/")
    labels = json.dumps(STATUS_LABELS, ensure_ascii=False)
    wish_labels = json.dumps(WISH_LABELS, ensure_ascii=False)
    options = "".join(
        f'<option value="{html.escape(c)}">{html.escape(c)}</option>' for c in WISH_CATEGORIES
    )
    return (
        TEMPLATE.read_text(encoding="utf-8")
        .replace("__TITLE__", html.escape(label or "网格"))
        .replace("__PLACE__", html.escape(label or "网格"))
        .replace("__PLACE_JSON__", as_json)
        .replace("__LABELS_JSON__", labels)
        .replace("__WISH_LABELS_JSON__", wish_labels)
        .replace("__WISH_OPTIONS__", options)
    )
