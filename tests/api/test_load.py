"""Load: 600 grid workers, each with their own account and token, upload tracks at the same
moment to the real app served by uvicorn (two worker processes, as deployed) on 127.0.0.1.
Every fix sent is stored exactly once (counted in the database), re-sent files are
recognised (also when sent twice at the same moment), and the run is bounded in time."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from api.cli.load import served
from api.security import create_token, hash_password
from gis.bench.load import (
    add_patrollers,
    check,
    make_jobs,
    remove_patrollers,
    run_load,
    stored_counts,
)

pytestmark = [pytest.mark.db, pytest.mark.slow]  # 20-40 s on 2 cores; not skipped in CI

WORKERS = 600
POINTS = 12  # one minute of fixes: the HTTP path, not the parsing, is under test
WALL_LIMIT_S = 60.0  # the bound on the whole burst (about 30 s on a busy 2-core machine)


def test_600_patrollers_upload_at_once_and_every_point_is_stored_once(
    engine: Engine, db_url: str
) -> None:
    prefix = f"load-{uuid.uuid4().hex[:8]}"
    try:
        with Session(engine) as session, session.begin():
            patrollers = add_patrollers(
                session, WORKERS, prefix=prefix, password_hash=hash_password("not-used-123")
            )
        assert len({p.staff_id for p in patrollers}) == WORKERS
        tokens = [create_token(p.user_id, "patroller") for p in patrollers]
        jobs = make_jobs(patrollers, tokens, points=POINTS, resend_every=10)
        resends = sum(1 for j in jobs if j.resend)
        assert resends == WORKERS // 10 and {j.resend for j in jobs} == {"", "after", "concurrent"}

        with served(db_url, workers=2) as base:
            result = run_load(base, jobs, timeout_s=WALL_LIMIT_S, server_cpu=base.cpu_s)

        with Session(engine) as session:
            result.stored = stored_counts(session, [p.user_id for p in patrollers])
        summary = result.summary()
        print("load:", summary)  # shown with -s; the README table quotes these numbers
        assert check(result, result.stored) == []
        assert result.requests == WORKERS + resends
        assert result.stored["points"] == WORKERS * POINTS
        # every re-send was recognised: exactly one of each worker's two answers is new
        by_worker: dict[int, list[bool | None]] = {}
        for a in result.answers:
            by_worker.setdefault(a.worker, []).append(a.duplicate)
        assert all(d.count(False) == 1 for d in by_worker.values())
        assert sum(d.count(True) for d in by_worker.values()) == resends
        # the same file twice at the same moment: the second waits for the first, never a
        # 409 "send again"
        assert summary["retried_on"]["409"] == 0
        assert result.server_cpu_s > 0  # measured (the CPU per upload the README quotes)
        assert result.wall_s < WALL_LIMIT_S
        assert summary["latency_ms"]["p99"] < WALL_LIMIT_S * 1000
    finally:
        with Session(engine) as session, session.begin():
            remove_patrollers(session, prefix)
