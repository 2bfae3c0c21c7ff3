"""The PostGIS locator (``wangge_locate``) against brute force on 10,000 points."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.db.queries.grids import grids_frame
from tests.brute import brute_locate, sample_points

pytestmark = pytest.mark.db


@pytest.mark.parametrize("level", ["micro", "dedicated"])
def test_sql_locate_agrees_with_brute_force(session: Session, level: str) -> None:
    grids = grids_frame(session, level=level)
    everything = grids_frame(session, level="micro")
    lon, lat = sample_points(everything if level == "dedicated" else grids, 10_000, seed=11)
    expected = brute_locate(grids, lon, lat)
    got = (
        session.execute(
            text(
                """
            SELECT g.code FROM unnest(CAST(:x AS float8[]), CAST(:y AS float8[]))
                 WITH ORDINALITY AS p(x, y, n)
            LEFT JOIN grids g ON g.id = wangge_locate(ST_SetSRID(ST_MakePoint(p.x, p.y), 4326),
                                                      :lvl)
            ORDER BY p.n
            """
            ),
            {"x": lon.tolist(), "y": lat.tolist(), "lvl": level},
        )
        .scalars()
        .all()
    )
    mismatches = [(i, e, g) for i, (e, g) in enumerate(zip(expected, got, strict=True)) if e != g]
    assert mismatches == []
    assert sum(e is None for e in expected) > 0 or level == "micro"
    if level == "micro":
        assert 0 < sum(e is None for e in expected) < len(expected)
