"""``wangge bench pages``: synthetic incidents live in a temporary table of the bench's own
connection, every page sees them instead of the real ones, nothing real is written, and the
report has one row per page and size."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from gis.bench.pages import run_bench
from gis.db.config import get_taxonomy
from maps.assets import STATIC_DIR

pytestmark = [pytest.mark.db, pytest.mark.browser]

PAGE = (
    '<html><body><div class="leaflet-container"><svg width="10" height="10">'
    '<path class="leaflet-interactive" d="M0,0L5,5"/></svg></div>{n}</body></html>'
)


ROLLUP_STAMP = (
    "SELECT (SELECT count(*) FROM incident_rollup_kpis), "
    "(SELECT count(*) FROM incident_rollup_heat), "
    "(SELECT max(refreshed_at) FROM incident_rollup_state)"
)


def test_bench_uses_a_temporary_table_and_writes_nothing(engine: Engine) -> None:
    with Session(engine) as s:
        real = s.execute(text("SELECT count(*) FROM incidents")).scalar()
        real_rollup = s.execute(text(ROLLUP_STAMP)).one()
        grids = s.execute(text("SELECT count(*) FROM grids")).scalar()
    seen: list[int] = []
    refused: list[bool] = []

    def page(session: Session) -> str:
        n = session.execute(text("SELECT count(*) FROM incidents")).scalar()
        temp = session.execute(
            text("SELECT relpersistence FROM pg_class WHERE oid = 'incidents'::regclass")
        ).scalar()
        assert temp == "t"  # the temporary table hides the real one for this connection
        # so does a temporary rollup, built from the synthetic incidents
        rollup = session.execute(
            text(
                "SELECT (SELECT relpersistence FROM pg_class "
                "        WHERE oid = 'incident_rollup_kpis'::regclass), "
                "(SELECT sum(incidents) FROM incident_rollup_kpis WHERE kind = 'source')"
            )
        ).one()
        assert rollup[0] == "t" and rollup[1] == n
        seen.append(int(n))
        try:  # while the pages are built the connection only reads
            session.execute(text("UPDATE grids SET name = name WHERE false"))
        except DBAPIError as exc:
            refused.append("read-only" in str(exc))
        session.rollback()
        return PAGE.format(n=n)

    with engine.connect() as conn:
        session = Session(bind=conn)
        # Playwright's sync API refuses a thread with a running event loop, which the browser
        # tests' session-wide Playwright leaves in this one: the bench runs in its own thread,
        # as it does in the command (a process with no loop).
        with ThreadPoolExecutor(max_workers=1) as pool:
            result = pool.submit(
                run_bench, session, get_taxonomy(), {"count": page}, static_dir=STATIC_DIR,
                sizes=[300, 700], repeats=2, district="fixture",
            ).result()  # fmt: skip
        # afterwards the connection is as it was: real table, read-write
        assert session.execute(text("SELECT count(*) FROM incidents")).scalar() == real
        session.execute(text("UPDATE grids SET name = name WHERE false"))
        session.rollback()
        session.close()
    assert seen == [300, 300, 700, 700] and refused == [True] * 4
    with Session(engine) as s:
        assert s.execute(text("SELECT count(*) FROM incidents")).scalar() == real
        assert s.execute(text("SELECT count(*) FROM grids")).scalar() == grids
    rows = result["rows"]
    assert [(r["incidents"], r["page"]) for r in rows] == [(300, "count"), (700, "count")]
    assert all(r["ok"] and r["console_errors"] == 0 and r["bytes"] > 0 for r in rows)
    assert result["repeats"] == 2 and "| 700 | count |" in result["markdown"]
    # the rollup was timed at each size: a full rebuild, then an incremental refresh of the
    # changed incidents' days, and its numbers equal the direct SQL
    assert list(result["rollup"]) == ["300", "700"]
    for size, r in result["rollup"].items():
        assert r["agree"] and r["changed"] > 0 and r["days"] > 0, size
        assert r["full_s"] > 0 and r["incremental_s"] > 0 and r["rows"]["kpis"] > 0
    assert "| full rebuild s |" in result["markdown"]
    with Session(engine) as s:  # the real rollup was not touched by the bench
        assert s.execute(text(ROLLUP_STAMP)).one() == real_rollup
