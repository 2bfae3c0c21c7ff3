"""Auto-partition endpoints: a 三级 grid, and a community grid by grid with a report."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session


def _grid(session: Session, code: str) -> tuple[int, int, int]:
    rec = session.execute(
        text("SELECT id, version, households FROM grids WHERE code = :c"), {"c": code}
    ).one()
    return int(rec[0]), int(rec[1]), int(rec[2])


def test_community_auto_partition_reports_per_grid(client: Any, session: Session) -> None:
    cid, _, _ = _grid(session, "410171003001")
    g1, _, _ = _grid(session, "41017100300101")
    g2, _, hh2 = _grid(session, "41017100300102")
    kids_g1 = (
        session.execute(text("SELECT id FROM grids WHERE parent_id = :g ORDER BY id"), {"g": g1})
        .scalars()
        .all()
    )
    r = client.post(
        f"/grids/{cid}/auto-partition-grids",
        json={"reason": "re-plan", "min_households": 40, "max_households": 60},
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["community_id"] == cid and out["done"] == 1 and out["refused"] == 1
    by = {g["code"]: g for g in out["grids"]}
    refused, done = by["41017100300101"], by["41017100300102"]
    assert not refused["done"] and "69 households" in refused["reason"]
    assert refused["created"] == [] and refused["households"] is None
    assert done["done"] and done["method"] == "building graph" and sum(done["households"]) == hh2
    assert all(40 <= h <= 60 for h in done["households"])
    stored = session.execute(
        text("SELECT id, households FROM grids WHERE parent_id = :g"), {"g": g2}
    ).all()
    assert sorted(s[0] for s in stored) == sorted(done["created"])
    assert sorted(s[1] for s in stored) == sorted(done["households"])
    # the refused grid keeps its micro grids
    assert (
        session.execute(text("SELECT id FROM grids WHERE parent_id = :g ORDER BY id"), {"g": g1})
        .scalars()
        .all()
        == kids_g1
    )


def test_auto_partition_refusals_are_422_with_the_reason(client: Any, session: Session) -> None:
    g1, v1, _ = _grid(session, "41017100300101")
    r = client.post(
        f"/grids/{g1}/auto-partition",
        json={"version": v1, "reason": "x", "min_households": 40, "max_households": 60},
    )
    assert r.status_code == 422 and "69 households" in r.text
    r = client.post(f"/grids/{g1}/auto-partition-grids", json={"reason": "x"})
    assert r.status_code == 422 and "communities, not on a grid" in r.text
    r = client.post(
        f"/grids/{g1}/auto-partition",
        json={"version": v1, "reason": "x", "min_households": 0},
    )
    assert r.status_code == 422
