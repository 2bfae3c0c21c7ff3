"""Shared fixtures: a real PostGIS test database, the fixture district, API client, live server.

The test database (``WANGGE_TEST_DATABASE_URL``, default: the main URL with ``_test``) is
rebuilt from the migrations once per session and the small fixture district is loaded into
it; each test then runs inside a transaction that is rolled back, so tests cannot see each
other's writes. There is no mock and no SQLite: without a database the tests fail.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from gis.db.config import get_settings, normalise_url

REPO = Path(__file__).resolve().parents[1]
FIXTURE_SEED = 7


def _test_url() -> str:
    url = os.environ.get("WANGGE_TEST_DATABASE_URL")
    if not url:
        url = normalise_url(os.environ.get("WANGGE_DATABASE_URL", get_settings().database_url))
        url = url + "_test"
    return normalise_url(url)


def _reset_schema(engine: Engine) -> None:
    """Drop what the migrations create (not the PostGIS extension) and migrate afresh."""
    from gis.db.migrate import upgrade

    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER IF EXISTS incidents_locate ON incidents"))
        tables = conn.execute(
            text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'spatial_ref_sys'"
            )
        ).scalars()
        for table in list(tables):
            conn.execute(text(f'DROP TABLE IF EXISTS "{table}" CASCADE'))
        # every function the migrations made (those of extensions such as PostGIS stay)
        functions = conn.execute(
            text(
                """
                SELECT p.oid::regprocedure::text FROM pg_proc p
                JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = 'public' AND NOT EXISTS (
                    SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
                """
            )
        ).scalars()
        for function in list(functions):
            conn.execute(text(f"DROP FUNCTION IF EXISTS {function} CASCADE"))
    upgrade(engine.url.render_as_string(hide_password=False))


@pytest.fixture(scope="session")
def db_url() -> Iterator[str]:
    """URL of the test database, with settings and engines pointed at it for the session."""
    from gis.db.session import dispose_engines

    url = _test_url()
    old = os.environ.get("WANGGE_DATABASE_URL")
    os.environ["WANGGE_DATABASE_URL"] = url
    # one signing key for the session, whatever var/ a test points at
    os.environ.setdefault("WANGGE_SECRET_KEY", "wangge-test-signing-key-" + "0" * 24)
    get_settings.cache_clear()
    dispose_engines()
    yield url
    dispose_engines()
    if old is None:
        os.environ.pop("WANGGE_DATABASE_URL", None)
    else:
        os.environ["WANGGE_DATABASE_URL"] = old
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def fixture_district(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny deterministic fixture district, generated once per session (seconds)."""
    from data.generate import generate_district

    out = tmp_path_factory.mktemp("district")
    generate_district(out, preset="fixture", seed=FIXTURE_SEED)
    return out


@pytest.fixture(scope="session")
def engine(db_url: str, fixture_district: Path) -> Iterator[Engine]:
    """Engine on a freshly migrated test database holding the fixture district."""
    from gis.db.load import load_district

    eng = create_engine(db_url, pool_pre_ping=True)
    _reset_schema(eng)
    with Session(eng) as session, session.begin():
        load_district(session, fixture_district)
    yield eng
    eng.dispose()


ADMIN = "test-admin"


@pytest.fixture(scope="session")
def admin_token(engine: Engine) -> str:
    """A signed token of an admin account made once in the test database; the test clients
    send it, so the suite runs the same with sign-in required (``WANGGE_AUTH=true``)."""
    from api.security import create_token, hash_password
    from gis.db.queries.users import add_user

    with Session(engine) as session, session.begin():
        user_id = add_user(
            session, username=ADMIN, password_hash=hash_password("not-used-123"), role="admin"
        )
    return create_token(user_id, "admin")


@pytest.fixture
def auth_headers(admin_token: str) -> dict[str, str]:
    """Headers for requests to ``live_server`` as the test admin."""
    return {"Authorization": f"Bearer {admin_token}"}


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose every write is rolled back at the end of the test."""
    conn = engine.connect()
    outer = conn.begin()
    sess = Session(bind=conn, join_transaction_mode="create_savepoint")
    try:
        yield sess
    finally:
        sess.close()
        outer.rollback()
        conn.close()


@pytest.fixture
def client(session: Session, admin_token: str) -> Iterator[object]:
    """FastAPI TestClient sharing the test's rolled-back session, signed in as the admin."""
    from fastapi.testclient import TestClient

    from api.deps import get_session
    from api.main import create_app

    app = create_app()

    def _session() -> Iterator[Session]:
        # one savepoint per request: a request that fails leaves nothing, as in production
        with session.begin_nested():
            yield session

    app.dependency_overrides[get_session] = _session
    with TestClient(app) as test_client:
        test_client.headers["Authorization"] = f"Bearer {admin_token}"
        yield test_client


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def live_server(engine: Engine) -> Iterator[str]:
    """The real app served by uvicorn on 127.0.0.1 over the fixture district."""
    import uvicorn

    from api.main import create_app

    port = _free_port()
    config = uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start within 20 s")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
