"""Faults: the database connection dies in the middle of a batch upload (what a PostgreSQL
restart does to every open connection). The client sees an error, nothing of the batch is
stored, and sending the same batch again stores each report exactly once."""

from __future__ import annotations

import threading
import time
import uuid

import httpx2 as httpx
import pytest
from sqlalchemy import Engine, text

pytestmark = pytest.mark.db

N = 200


def _batch(keys: list[str], lon: float, lat: float) -> dict:
    return {
        "reports": [
            {"category": "环境卫生", "source": "巡查", "lon": lon, "lat": lat, "idempotency_key": k}
            for k in keys
        ]
    }


def _stored(engine: Engine, keys: list[str]) -> int:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM incidents WHERE idempotency_key = ANY(:k)"), {"k": keys}
        ).scalar_one()


def test_connection_killed_mid_batch_then_retry_stores_exactly_once(
    live_server: str, engine: Engine, auth_headers: dict[str, str]
) -> None:
    prefix = f"fault-{uuid.uuid4().hex[:12]}"
    keys = [f"{prefix}-{i:04d}" for i in range(N)]
    with engine.connect() as conn:
        lon, lat = conn.execute(
            text(
                "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) "
                "FROM grids WHERE level = 'micro' ORDER BY code LIMIT 1"
            )
        ).one()
    batch = _batch(keys, lon, lat)
    blocker = engine.connect()
    try:
        # Hold the key of report #150 in an open transaction: the server's insert of that
        # report waits for us, 150 reports into its own transaction.
        hold = blocker.begin()
        blocker.execute(
            text(
                "INSERT INTO incidents (category, source, reported_at, status, location_status,"
                " idempotency_key) VALUES ('环境卫生', '巡查', now(), 'reported',"
                " 'needs_location', :k)"
            ),
            {"k": keys[150]},
        )
        result: dict[str, httpx.Response] = {}
        upload = threading.Thread(
            target=lambda: result.setdefault(
                "first",
                httpx.post(
                    f"{live_server}/incidents/batch", json=batch, timeout=60, headers=auth_headers
                ),
            )
        )
        upload.start()
        victim = None
        deadline = time.monotonic() + 30
        while victim is None and time.monotonic() < deadline:
            # a fresh connection per look: pg_stat_activity is a snapshot per transaction
            with engine.connect() as watcher:
                victim = watcher.execute(
                    text(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO incidents%' "
                        "AND pid <> pg_backend_pid() LIMIT 1"
                    )
                ).scalar_one_or_none()
            time.sleep(0.05)
        assert victim is not None, "the upload never reached the held key"
        with engine.connect() as killer:
            assert killer.execute(text("SELECT pg_terminate_backend(:p)"), {"p": victim}).scalar()
        hold.rollback()
        upload.join(timeout=60)
        first = result["first"]
        assert first.status_code == 503, first.text
        assert "database unavailable" in first.json()["detail"]
        assert _stored(engine, keys) == 0  # never a partial write

        retry = httpx.post(
            f"{live_server}/incidents/batch", json=batch, timeout=60, headers=auth_headers
        )
        assert retry.status_code == 200, retry.text
        assert all(r["created"] for r in retry.json())
        assert _stored(engine, keys) == N
        again = httpx.post(
            f"{live_server}/incidents/batch", json=batch, timeout=60, headers=auth_headers
        )
        assert again.status_code == 200
        assert not any(r["created"] for r in again.json())
        assert [r["id"] for r in again.json()] == [r["id"] for r in retry.json()]
        assert _stored(engine, keys) == N
    finally:
        blocker.close()
        with engine.begin() as conn:
            conn.execute(
                text("DELETE FROM incidents WHERE idempotency_key LIKE :p"), {"p": prefix + "%"}
            )
