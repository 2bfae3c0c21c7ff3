"""The patroller's page on the phone (网格员移动端), an installable PWA served by the app.

The page, its script and style, the web manifest, the icons and the service worker all come
from this origin under ``/field/`` (the service worker's scope), with no CDN: plain
JavaScript in ``maps/static/field/``, and Leaflet for the small map of my grids and the track
being recorded, from the npm copy under ``/static/vendor`` (see :mod:`maps.assets`). The
service worker caches the app shell, Leaflet included, so the page opens and works with no
network; positions and 随手记 reports wait in IndexedDB and are uploaded, each with an
idempotency key, when the connection returns (see ``app.js``). The map has no tile base map
(none is reachable offline): the grid outlines and the track on a plain background.

Positions come from the browser's Geolocation API, which gives WGS84: the page sends them
with ``crs=wgs84`` and the server converts nothing (never GCJ-02 twice).
"""

from __future__ import annotations

import hashlib
import io
import json
from functools import lru_cache
from pathlib import Path

from maps.assets import ASSET_BASE, VENDOR_DIR

FIELD_DIR = Path(__file__).resolve().parent / "static" / "field"
TEMPLATE = Path(__file__).with_name("templates") / "field.html"
SCOPE = "/field/"
ICON_SIZES = (192, 512)
# what the service worker caches on install: the whole app shell
SHELL = (
    SCOPE,
    f"{SCOPE}app.js",
    f"{SCOPE}app.css",
    f"{SCOPE}manifest.webmanifest",
    *(f"{SCOPE}icon-{n}.png" for n in ICON_SIZES),
    # the map: Leaflet from this origin (outside the scope, but fetched by pages inside it)
    f"{ASSET_BASE}/leaflet/leaflet.js",
    f"{ASSET_BASE}/leaflet/leaflet.css",
)
THEME = "#b22222"


def _read(name: str) -> str:
    return (FIELD_DIR / name).read_text(encoding="utf-8")


def shell_version() -> str:
    """A hash of every shell file: a new version makes the service worker re-cache."""
    digest = hashlib.sha256()
    for path in (TEMPLATE, FIELD_DIR / "app.js", FIELD_DIR / "app.css", FIELD_DIR / "sw.js"):
        digest.update(path.read_bytes())
    leaflet = VENDOR_DIR / "leaflet" / "leaflet.js"  # a new Leaflet is re-cached too
    if leaflet.exists():
        digest.update(leaflet.read_bytes())
    return digest.hexdigest()[:12]


def field_page() -> str:
    """The app shell: no personal data in it (that comes from the API once signed in)."""
    return TEMPLATE.read_text(encoding="utf-8").replace("__VERSION__", shell_version())


def app_script() -> str:
    """The page's script."""
    return _read("app.js")


def app_style() -> str:
    """The page's style sheet."""
    return _read("app.css")


def service_worker() -> str:
    """The service worker with its cache version and the shell's URLs filled in."""
    return (
        _read("sw.js")
        .replace("__VERSION__", shell_version())
        .replace("__SHELL__", json.dumps(list(SHELL)))
    )


def manifest() -> dict[str, object]:
    """The web app manifest (installable: name, start URL and scope, standalone, icons)."""
    return {
        "name": "网格巡查",
        "short_name": "网格巡查",
        "description": "网格员巡查、随手记与重点户走访（离线可用）",
        "lang": "zh-CN",
        "id": SCOPE,
        "start_url": SCOPE,
        "scope": SCOPE,
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#f3f1ec",
        "theme_color": THEME,
        "icons": [
            {"src": f"{SCOPE}icon-{n}.png", "sizes": f"{n}x{n}", "type": "image/png",
             "purpose": "any maskable"}
            for n in ICON_SIZES
        ],
    }  # fmt: skip


@lru_cache(maxsize=len(ICON_SIZES))
def icon_png(size: int) -> bytes:
    """The app icon: a red tile with a white 3×3 grid (网格), drawn, no font needed."""
    if size not in ICON_SIZES:
        raise ValueError(f"icon sizes are {ICON_SIZES}, not {size}")
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size), THEME)
    draw = ImageDraw.Draw(img)
    margin, width = size // 5, max(2, size // 40)
    inner = size - 2 * margin
    for i in range(4):
        at = margin + i * inner // 3
        draw.line([(margin, at), (size - margin, at)], fill="white", width=width)
        draw.line([(at, margin), (at, size - margin)], fill="white", width=width)
    dot = size // 14
    cx = cy = margin + inner // 2
    draw.ellipse([cx - dot, cy - dot, cx + dot, cy + dot], fill="#ffd54f")
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()
