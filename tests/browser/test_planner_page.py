"""The planner page in real Chromium: draw a micro grid (微网格), split it with a drawn line,
and find both parts stored with household counts; the fixture is restored afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import shapely
from sqlalchemy import Engine, text

from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.db]


@pytest.fixture
def restore(engine: Engine) -> Iterator[dict[str, Any]]:
    """Snapshot grids, buildings and history; put them back after the test (it commits)."""
    with engine.begin() as conn:
        state = {
            "max_grid": conn.execute(text("SELECT max(id) FROM grids")).scalar_one(),
            "max_version": conn.execute(text("SELECT max(id) FROM grid_versions")).scalar_one(),
            "grids": conn.execute(
                text("SELECT id, version, households, residents, geom, updated_at FROM grids")
            ).all(),
            "buildings": conn.execute(text("SELECT id, micro_grid_id FROM buildings")).all(),
            "open": conn.execute(text("SELECT id FROM grid_versions WHERE upper_inf(valid)"))
            .scalars()
            .all(),
        }
    yield state
    with engine.begin() as conn:
        for bid, mid in state["buildings"]:
            conn.execute(
                text("UPDATE buildings SET micro_grid_id = :m WHERE id = :id"),
                {"m": mid, "id": bid},
            )
        conn.execute(text("DELETE FROM grids WHERE id > :m"), {"m": state["max_grid"]})
        for gid, ver, hh, rs, geom, upd in state["grids"]:
            conn.execute(
                text(
                    "UPDATE grids SET version = :v, households = :hh, residents = :rs, "
                    "geom = :g, updated_at = :u WHERE id = :id AND version <> :v"
                ),
                {"v": ver, "hh": hh, "rs": rs, "g": geom, "u": upd, "id": gid},
            )
        conn.execute(text("DELETE FROM grid_versions WHERE id > :m"), {"m": state["max_version"]})
        conn.execute(
            text(
                "UPDATE grid_versions SET valid = tstzrange(lower(valid), NULL) "
                "WHERE id = ANY(:ids)"
            ),
            {"ids": list(state["open"])},
        )


def _screen(pg: Any, lon: float, lat: float) -> tuple[float, float]:
    x, y = pg.evaluate(
        """([lat, lng]) => {
            const p = window.WANGGE_PLANNER.map.latLngToContainerPoint([lat, lng]);
            const r = document.getElementById('map').getBoundingClientRect();
            return [p.x + r.left, p.y + r.top];
        }""",
        [lat, lon],
    )
    return float(x), float(y)


def test_draw_a_grid_and_split_it_with_a_line(
    live_server: str, engine: Engine, page: Any, restore: dict[str, Any]
) -> None:
    pg, log = page
    pg.set_viewport_size({"width": 1280, "height": 900})
    with engine.connect() as conn:
        grid_code, wkb = conn.execute(
            text("SELECT code, ST_AsBinary(geom) FROM grids WHERE level = 'grid' ORDER BY code")
        ).first()
    area = shapely.from_wkb(bytes(wkb))
    resp = pg.goto(f"{live_server}/maps/planner", wait_until="networkidle")
    assert resp is not None and resp.status == 200
    pg.wait_for_selector("body[data-loaded]")
    assert pg.locator(".legend-item").count() == 5
    assert pg.locator("path.leaflet-interactive").count() > 0
    # zoom to the 三级 grid so the drawing is big enough on screen
    x0, y0, x1, y1 = area.bounds
    pg.evaluate(
        "(b) => window.WANGGE_PLANNER.map.fitBounds([[b[1], b[0]], [b[3], b[2]]])",
        [x0, y0, x1, y1],
    )
    pg.wait_for_timeout(400)
    c = area.representative_point()
    dx, dy = (x1 - x0) * 0.2, (y1 - y0) * 0.2
    corners = [
        (c.x - dx, c.y - dy),
        (c.x + dx, c.y - dy),
        (c.x + dx, c.y + dy),
        (c.x - dx, c.y + dy),
    ]
    pg.click("#btn-draw")
    pts = [_screen(pg, lon, lat) for lon, lat in corners]
    for x, y in [*pts, pts[0]]:
        pg.mouse.click(x, y)
        pg.wait_for_timeout(150)
    pg.wait_for_selector("#message.ok", timeout=15000)
    assert "created: " in pg.inner_text("#message")
    with engine.connect() as conn:
        new = conn.execute(
            text("SELECT id, code FROM grids WHERE id > :m"), {"m": restore["max_grid"]}
        ).all()
    assert len(new) == 1 and new[0].code.startswith(grid_code)
    pg.wait_for_timeout(300)
    pg.evaluate("(id) => window.WANGGE_PLANNER.pick(id)", new[0].id)
    assert new[0].code in pg.inner_text("#selected")
    pg.click("#btn-split")
    a = _screen(pg, c.x, c.y - dy * 1.6)
    b = _screen(pg, c.x, c.y + dy * 1.6)
    pg.mouse.click(*a)
    pg.wait_for_timeout(150)
    pg.mouse.click(*b)
    pg.wait_for_timeout(150)
    pg.mouse.click(*b)
    pg.wait_for_selector("#message.ok >> text=split", timeout=15000)
    with engine.connect() as conn:
        parts = conn.execute(
            text(
                """
                SELECT g.id, g.households,
                       (SELECT COALESCE(sum(b.households), 0) FROM buildings b
                        WHERE ST_Intersects(g.geom, ST_PointOnSurface(b.geom))) AS counted,
                       ST_Area(g.geom::geography) AS m2
                FROM grids g WHERE g.id > :m ORDER BY g.id
                """
            ),
            {"m": restore["max_grid"]},
        ).all()
    assert len(parts) == 2
    for p in parts:
        assert p.households == p.counted and p.m2 > 0
    drawn = shapely.Polygon(corners)
    assert sum(p.m2 for p in parts) > 0
    assert parts[0].households + parts[1].households == sum(p.counted for p in parts)
    assert drawn.area > 0
    pg.wait_for_timeout(500)
    shot = screenshot(pg, "planner_split")
    assert shot.stat().st_size > 10_000
    assert log.problems() == {}
