"""Limits: body size (413, also for chunked uploads), requests per minute (429), CORS closed,
no stack traces."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.db.config import get_settings

pytestmark = pytest.mark.db


@pytest.fixture
def small_limits(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("WANGGE_MAX_UPLOAD_MB", "1")
    monkeypatch.setenv("WANGGE_RATE_PER_MINUTE", "30")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _count(session: Session) -> int:
    return session.execute(text("SELECT count(*) FROM incidents")).scalar_one()


def test_declared_oversize_body_is_refused_before_reading(client, session, small_limits) -> None:
    before = _count(session)
    resp = client.post(
        "/incidents",
        content=b"{" + b" " * 1_200_000 + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 413 and "larger than 1 MB" in resp.json()["detail"]
    assert _count(session) == before


def test_chunked_oversize_body_is_cut_off(client, session, small_limits) -> None:
    def chunks() -> Iterator[bytes]:
        yield '{"category": "噪音扰民", "source": "热线", "description": "'.encode()
        for _ in range(40):
            yield b"x" * 50_000  # 2 MB in all, no Content-Length
        yield b'"}'

    before = _count(session)
    resp = client.post("/incidents", content=chunks(), headers={"Content-Type": "application/json"})
    assert resp.status_code == 413
    assert _count(session) == before


def test_rate_limit_per_client(client, small_limits) -> None:
    codes = [client.get("/incidents/categories").status_code for _ in range(35)]
    assert codes[:30] == [200] * 30
    assert codes[30:] == [429] * 5
    last = client.get("/incidents/categories")
    assert last.status_code == 429 and int(last.headers["retry-after"]) >= 1
    assert client.get("/static/vendor/leaflet/leaflet.css").status_code == 200  # not counted


def test_cors_is_closed(client) -> None:
    resp = client.options(
        "/incidents",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in resp.headers
    got = client.get("/incidents/categories", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in got.headers


def test_unexpected_errors_show_no_stack_trace(client, session: Session) -> None:
    from fastapi.testclient import TestClient

    session.execute(text("ALTER TABLE incident_events RENAME TO incident_events_gone"))
    quiet = TestClient(client.app, raise_server_exceptions=False, headers=dict(client.headers))
    resp = quiet.get("/incidents/1/history")
    assert resp.status_code == 500
    assert resp.json() == {"detail": "internal error", "error": "Internal"}
    assert "Traceback" not in resp.text and "incident_events" not in resp.text
