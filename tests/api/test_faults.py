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


def _probe_client(app):  # type: ignore[no-untyped-def]
    """The app with routes raising what the database layer raises under faults."""
    import psycopg
    from fastapi import APIRouter
    from fastapi.testclient import TestClient
    from sqlalchemy.exc import IntegrityError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from api.security import public

    probe = APIRouter(prefix="/probe-db", dependencies=[public()])
    faults = {
        "raw-copy-died": psycopg.OperationalError("server closed the connection unexpectedly"),
        "pool-empty": PoolTimeout("QueuePool limit of size 5 overflow 10 reached"),
        "same-key-raced": IntegrityError(
            "INSERT", {}, psycopg.errors.UniqueViolation("duplicate key value")
        ),
        "raw-same-key": psycopg.errors.UniqueViolation("duplicate key value"),
        "deadlock": psycopg.errors.DeadlockDetected("deadlock detected"),
        "check-broken": IntegrityError("INSERT", {}, psycopg.errors.CheckViolation("check")),
    }

    def raising(exc: Exception):  # type: ignore[no-untyped-def]
        def raiser() -> None:
            raise exc

        return raiser

    for name, exc in faults.items():
        probe.add_api_route(f"/{name}", raising(exc), methods=["GET"])
    app.include_router(probe)
    return TestClient(app, raise_server_exceptions=False)


def test_database_faults_answer_503_or_409_with_a_clear_body_never_500() -> None:
    from api.main import create_app

    c = _probe_client(create_app())
    for name in ("raw-copy-died", "pool-empty"):
        r = c.get(f"/probe-db/{name}")
        assert r.status_code == 503, name
        assert r.json() == {"detail": "database unavailable, try again", "error": "Unavailable"}
        assert r.headers["retry-after"]
    for name, status in (("same-key-raced", 409), ("raw-same-key", 409), ("deadlock", 503)):
        r = c.get(f"/probe-db/{name}")
        assert r.status_code == status, name
        assert "send the same request again" in r.json()["detail"]
    r = c.get("/probe-db/check-broken")  # not a race: a bug, answered without any detail
    assert r.status_code == 500 and r.json() == {"detail": "internal error", "error": "Internal"}


def test_requests_wait_for_a_database_slot_then_get_503(monkeypatch: pytest.MonkeyPatch) -> None:
    """At most DB_SLOTS requests hold a session; the next waits (no thread held), and after
    SLOT_WAIT_S is told 503 with Retry-After; a freed slot is taken again."""
    import asyncio

    from fastapi import HTTPException

    from api import deps

    monkeypatch.setattr(deps, "DB_SLOTS", 1)
    monkeypatch.setattr(deps, "SLOT_WAIT_S", 0.2)

    async def scenario() -> None:
        first = deps.get_session()
        await first.__anext__()
        second = deps.get_session()
        with pytest.raises(HTTPException) as refused:
            await second.__anext__()
        assert refused.value.status_code == 503
        assert refused.value.headers == {"Retry-After": "5"}
        await first.aclose()  # the first request ends: its slot is free again
        third = deps.get_session()
        assert await third.__anext__() is not None
        await third.aclose()

    asyncio.run(scenario())
