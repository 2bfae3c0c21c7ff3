"""Faults: PostgreSQL itself RESTARTED in the middle of a batch upload.

The test makes its own throwaway PostgreSQL 15 cluster (``initdb`` into a temporary folder,
as the ``postgres`` user when run as root; started on a free port on 127.0.0.1 only), adds
PostGIS and pgRouting, migrates it, loads the fixture district and serves the real app from
it with uvicorn in a subprocess. While a batch is being written the whole server is
restarted with ``pg_ctl restart``. The client must see either success or an error (503),
never a partial write; sending the same batch again completes it exactly once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from api.cli.load import free_port, served
from api.security import create_token, hash_password
from gis.bench.load import Patroller, gpx_walk

pytestmark = pytest.mark.db  # about 15 s: not "slow"

PG_BIN = Path("/usr/lib/postgresql/15/bin")
N_REPORTS = 1000  # the largest batch the API takes
N_FILES, N_FIXES = 50, 2000  # the largest track upload (files per request), 100,000 fixes


@dataclass
class Cluster:
    """A private PostgreSQL cluster and the app served from it."""

    root: Path
    port: int
    url: str
    engine: Engine
    base: str = ""
    token: str = ""

    @property
    def data(self) -> Path:
        return self.root / "data"

    def pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root / 'run'} -c fsync=off"
        return _as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"),
            "-w", "-t", "60", "-o", opts, *args,
        )  # fmt: skip

    def scalar(self, sql: str, **params: object) -> object:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar_one()


def _as_postgres(*cmd: str) -> subprocess.CompletedProcess[str]:
    """Run a server binary as the ``postgres`` OS user when we are root (PostgreSQL refuses
    to run as root), else as ourselves."""
    full = ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)
    done = subprocess.run(full, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:2])} failed: {done.stderr or done.stdout}")
    return done


@pytest.fixture(scope="module")
def cluster(db_url: str, fixture_district: Path) -> Iterator[Cluster]:
    """Throwaway cluster + migrated fixture district + the app served from it."""
    from gis.db.load import load_district
    from gis.db.migrate import upgrade
    from gis.db.queries.users import add_user

    assert (PG_BIN / "initdb").exists(), f"PostgreSQL 15 server binaries not in {PG_BIN}"
    root = Path(tempfile.mkdtemp(prefix="wangge-pg-"))
    (root / "run").mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        shutil.chown(root / "run", "postgres", "postgres")
    root.chmod(0o700)
    port = free_port()
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/wangge"
    c = Cluster(root, port, url, create_engine(url, pool_pre_ping=True))
    started = False
    try:
        _as_postgres(
            str(PG_BIN / "initdb"), "-D", str(c.data), "-U", "postgres", "--auth=trust",
            "-E", "UTF8", "--locale=C.UTF-8",
        )  # fmt: skip
        c.pg_ctl("start")
        started = True
        admin = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres")
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("CREATE DATABASE wangge"))
        admin.dispose()
        with c.engine.begin() as conn:
            conn.execute(text("CREATE EXTENSION postgis"))
            conn.execute(text("CREATE EXTENSION pgrouting"))
        upgrade(url)
        with Session(c.engine) as session, session.begin():
            load_district(session, fixture_district, tracks=False)
            uid = add_user(
                session,
                username="restart-admin",
                password_hash=hash_password("not-used-123"),
                role="admin",
            )
        c.token = create_token(uid, "admin")
        with served(url, workers=1, log=root / "uvicorn.log") as base:
            c.base = base
            yield c
    finally:
        c.engine.dispose()
        if started:
            try:
                c.pg_ctl("stop", "-m", "immediate")
            except RuntimeError:
                pass
        shutil.rmtree(root, ignore_errors=True)


def _restart_when_busy(c: Cluster, marker: str, mode: str, out: dict[str, object]) -> None:
    """Wait until a backend of the app has been inside its transaction for 0.3 s and is
    running ``marker`` SQL, then restart the whole server; records what it was doing."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with c.engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT pid, left(query, 60) FROM pg_stat_activity "
                    "WHERE datname = 'wangge' AND pid <> pg_backend_pid() "
                    "AND now() - xact_start > interval '0.3 s' AND query ILIKE :m LIMIT 1"
                ),
                {"m": f"%{marker}%"},
            ).first()
        if row is not None:
            out["caught"] = row[1]
            c.engine.dispose()  # our own pooled connections die with the server too
            c.pg_ctl("restart", "-m", mode)
            out["restarted"] = time.monotonic()
            return
        time.sleep(0.01)
    out["caught"] = None


def _post_during_restart(
    c: Cluster, path: str, marker: str, mode: str, **kw: object
) -> tuple[httpx.Response | Exception, dict[str, object]]:
    info: dict[str, object] = {}
    restarter = threading.Thread(target=_restart_when_busy, args=(c, marker, mode, info))
    restarter.start()
    try:
        answer: httpx.Response | Exception = httpx.post(
            f"{c.base}{path}", headers={"Authorization": f"Bearer {c.token}"}, timeout=120, **kw
        )
    except httpx.TransportError as exc:  # the connection dropped: also "an error"
        answer = exc
    restarter.join(timeout=120)
    shown = answer if isinstance(answer, Exception) else (answer.status_code, answer.text[:200])
    print(f"{path}: restart ({mode}) caught {info.get('caught')!r}; the client got {shown}")
    return answer, info


def test_incident_batch_survives_a_postgres_restart_and_retry_stores_exactly_once(
    cluster: Cluster,
) -> None:
    c = cluster
    prefix = f"restart-{uuid.uuid4().hex[:10]}"
    keys = [f"{prefix}-{i:05d}" for i in range(N_REPORTS)]
    with c.engine.connect() as conn:
        lon, lat = conn.execute(
            text(
                "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM grids "
                "WHERE level = 'micro' ORDER BY code LIMIT 1"
            )
        ).one()
    batch = {
        "reports": [
            {"category": "环境卫生", "source": "巡查", "lon": lon, "lat": lat, "idempotency_key": k}
            for k in keys
        ]
    }
    stored = "SELECT count(*) FROM incidents WHERE idempotency_key LIKE :p"

    first, info = _post_during_restart(
        c, "/incidents/batch", "INSERT INTO incidents", "fast", json=batch
    )
    assert info.get("caught"), "the restart never caught the batch in flight"
    n = c.scalar(stored, p=prefix + "%")
    if isinstance(first, httpx.Response) and first.status_code == 200:
        assert n == N_REPORTS  # it committed just before the restart: all of it
    else:
        if isinstance(first, httpx.Response):
            assert first.status_code == 503, first.text
            assert first.json()["detail"].startswith("database unavailable")
            assert first.headers.get("retry-after")
        assert n == 0  # never a partial write

    retry = httpx.post(
        f"{c.base}/incidents/batch", json=batch, timeout=120,
        headers={"Authorization": f"Bearer {c.token}"},
    )  # fmt: skip
    assert retry.status_code == 200, retry.text
    assert c.scalar(stored, p=prefix + "%") == N_REPORTS
    again = httpx.post(
        f"{c.base}/incidents/batch", json=batch, timeout=120,
        headers={"Authorization": f"Bearer {c.token}"},
    )  # fmt: skip
    assert again.status_code == 200
    assert not any(r["created"] for r in again.json())
    assert [r["id"] for r in again.json()] == [r["id"] for r in retry.json()]
    assert c.scalar(stored, p=prefix + "%") == N_REPORTS
    assert (
        c.scalar(
            "SELECT count(DISTINCT idempotency_key) FROM incidents WHERE idempotency_key LIKE :p",
            p=prefix + "%",
        )
        == N_REPORTS
    )


def test_track_upload_survives_an_immediate_restart_and_retry_stores_each_fix_once(
    cluster: Cluster,
) -> None:
    c = cluster
    with c.engine.connect() as conn:
        grids = conn.execute(
            text(
                "SELECT id, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) "
                "FROM grids WHERE level = 'micro' ORDER BY code"
            )
        ).all()
    salt = uuid.uuid4().int % 100_000
    files = []
    for i in range(N_FILES):
        gid, x, y = grids[i % len(grids)]
        data = gpx_walk(Patroller(0, 0, gid, x, y), N_FIXES, worker=salt * 100 + i)
        files.append(("files", (f"restart-{salt}-{i:02d}.gpx", data, "application/gpx+xml")))
    names = [f[1][0] for f in files]
    count = (
        "SELECT count(DISTINCT u.id), count(DISTINCT t.id), count(p.*) FROM track_uploads u "
        "LEFT JOIN patrol_tracks t ON t.upload_id = u.id "
        "LEFT JOIN track_points p ON p.track_id = t.id WHERE u.filename = ANY(:n)"
    )

    def stored() -> tuple[int, int, int]:
        with c.engine.connect() as conn:
            return tuple(conn.execute(text(count), {"n": names}).one())  # type: ignore[return-value]

    # "immediate": the server dies without a clean shutdown and recovers from its WAL
    first, info = _post_during_restart(c, "/tracks", "stage_points", "immediate", files=files)
    assert info.get("caught"), "the restart never caught the upload in flight"
    if isinstance(first, httpx.Response) and first.status_code in (200, 201):
        assert stored() == (N_FILES, N_FILES, N_FILES * N_FIXES)
    else:
        if isinstance(first, httpx.Response):
            assert first.status_code == 503, first.text
            assert first.json()["detail"].startswith("database unavailable")
        assert stored() == (0, 0, 0)  # never a partial write

    retry = httpx.post(
        f"{c.base}/tracks", files=files, timeout=120,
        headers={"Authorization": f"Bearer {c.token}"},
    )  # fmt: skip
    assert retry.status_code in (200, 201), retry.text
    assert stored() == (N_FILES, N_FILES, N_FILES * N_FIXES)
    again = httpx.post(
        f"{c.base}/tracks", files=files, timeout=120,
        headers={"Authorization": f"Bearer {c.token}"},
    )  # fmt: skip
    assert again.status_code == 200
    assert all(u["duplicate"] for u in again.json()["uploads"])
    assert stored() == (N_FILES, N_FILES, N_FILES * N_FIXES)
