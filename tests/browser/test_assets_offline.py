"""The overview page and its vendored assets in real Chromium, with no network but 127.0.0.1.

The page is built from a tiny hand-made district, written with the assets installed from
node_modules into a temporary folder laid out like the app (``/static/vendor``), and served by
``http.server`` on a free port of 127.0.0.1.
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator

import pytest

from maps.assets import install_assets
from maps.overview import build_overview
from tests.browser.conftest import REPO, PageLog, screenshot
from tests.maps import tiny_grids, tiny_heat

pytestmark = pytest.mark.browser

LAYER_NAMES = ("街道/办事处", "社区", "三级网格", "微网格", "专属网格", "事件热力图")

# Finds the folium map object of the page (folium names it map_<hash>).
MAP_JS = "Object.keys(window).filter(k => k.startsWith('map_') && window[k] instanceof L.Map)"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a static server holding index.html and static/vendor/."""
    root = tmp_path_factory.mktemp("site")
    install_assets(REPO / "node_modules", root / "static" / "vendor")
    page = build_overview(tiny_grids(), tiny_heat(), title="网格总览（离线测试）")
    (root / "index.html").write_text(page, encoding="utf-8")
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _heat_pixels(pg) -> int:  # type: ignore[no-untyped-def]
    """How many pixels of the heat canvas are painted."""
    return pg.evaluate(
        """() => {
            const c = document.querySelector('canvas.leaflet-heatmap-layer');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
            return n;
        }"""
    )


def test_overview_renders_offline_from_vendored_assets(site: str, page) -> None:
    pg, log = page
    grids = tiny_grids()
    n_micro = int((grids["level"] == "micro").sum())
    resp = pg.goto(f"{site}/index.html", wait_until="networkidle")
    assert resp is not None and resp.status == 200
    pg.wait_for_selector(".leaflet-container")
    pg.wait_for_selector("path.leaflet-interactive")
    assert pg.evaluate(f"{MAP_JS}.length") == 1

    # every grid level but the micro grids (hidden at start) drawn as SVG paths, in its pane
    for level, n in grids["level"].value_counts().items():
        paths = pg.locator(f".leaflet-wangge-{level}-pane svg path.leaflet-interactive")
        assert paths.count() == (0 if level == "micro" else n), level
    assert pg.locator("path.leaflet-interactive").count() == len(grids) - n_micro
    assert pg.locator("canvas.leaflet-heatmap-layer").count() == 1
    assert _heat_pixels(pg) > 500

    control = pg.inner_text(".leaflet-control-layers")
    for name in LAYER_NAMES:
        assert name in control
    legend = pg.inner_text("#wangge-legend")
    assert "网格总览（离线测试）" in legend and "共 113 件事件" in legend

    overlays = pg.locator(".leaflet-control-layers-overlays label")
    overlays.filter(has_text="微网格").locator("input").check()
    assert pg.locator(".leaflet-wangge-micro-pane path.leaflet-interactive").count() == n_micro
    assert pg.locator("path.leaflet-interactive").count() == len(grids)
    overlays.filter(has_text="事件热力图").locator("input").uncheck()
    assert pg.locator("canvas.leaflet-heatmap-layer").count() == 0
    overlays.filter(has_text="事件热力图").locator("input").check()
    assert pg.locator("canvas.leaflet-heatmap-layer").count() == 1

    # the tooltip of the dedicated grid shows its name as text, never as HTML
    school = grids[grids["level"] == "dedicated"].geometry.iloc[0].centroid
    x, y = pg.evaluate(
        f"""([lat, lon]) => {{
            const m = window[{MAP_JS}[0]];
            const p = m.latLngToContainerPoint([lat, lon]);
            const r = m.getContainer().getBoundingClientRect();
            return [r.left + p.x, r.top + p.y];
        }}""",
        [school.y, school.x],
    )
    pg.mouse.move(x, y)
    tooltip = pg.wait_for_selector(".leaflet-tooltip")
    text = tooltip.inner_text()
    assert '实验小学<img src=x onerror="window.__xss=1">' in text and "S01D01" in text
    assert pg.evaluate("window.__xss") is None

    shot = screenshot(pg, "assets-offline")
    assert shot.stat().st_size > 20_000
    assert log.problems() == {}


def test_every_vendored_font_and_image_loads(site: str, page) -> None:
    """Icon fonts load on use: draw one of each icon family and wait for the fonts."""
    pg, log = page
    pg.goto(f"{site}/index.html", wait_until="networkidle")
    pg.evaluate(
        """() => {
            const box = document.createElement('div');
            box.innerHTML = '<i class="fa-solid fa-house"></i><i class="fa-regular fa-bell">'
                + '</i><i class="fa-brands fa-github"></i>'
                + '<span class="glyphicon glyphicon-info-sign"></span>';
            document.body.appendChild(box);
            L.marker([34.798, 113.55], {icon: L.AwesomeMarkers.icon({icon: 'info-sign'})})
                .addTo(window[Object.keys(window).find(k => k.startsWith('map_'))]);
        }"""
    )
    pg.wait_for_load_state("networkidle")
    families = pg.evaluate(
        """async () => {
            await document.fonts.ready;
            return [...document.fonts].filter(f => f.status === 'loaded').map(f => f.family);
        }"""
    )
    joined = " ".join(families)
    for family in ("Font Awesome 6 Free", "Font Awesome 6 Brands", "Glyphicons Halflings"):
        assert family in joined, families
    assert pg.locator(".awesome-marker-icon-blue .glyphicon-info-sign").count() == 1
    assert log.problems() == {}


def test_outside_requests_are_recorded_and_aborted(page) -> None:
    """The fixture itself: a page asking a CDN is caught, and the request never leaves."""
    pg, log = page
    pg.set_content(
        '<img src="https://cdn.jsdelivr.net/npm/leaflet@1.9.4/dist/images/layers.png">'
        '<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>'
    )
    pg.wait_for_load_state("networkidle")
    assert sorted(log.outside_requests) == [
        "https://cdn.jsdelivr.net/npm/leaflet@1.9.4/dist/images/layers.png",
        "https://code.jquery.com/jquery-3.7.1.min.js",
    ]
    assert set(log.failed_requests) == set(log.outside_requests)
    assert isinstance(log, PageLog) and "outside_requests" in log.problems()
