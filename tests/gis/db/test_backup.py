"""`wangge backup` / `wangge restore`: a round trip gives the same data; a bad file changes
nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from gis.db.backup import backup, restore
from gis.errors import GisError

pytestmark = pytest.mark.db

FINGERPRINT = """
    SELECT (SELECT count(*) FROM grids), (SELECT count(*) FROM buildings),
           (SELECT count(*) FROM incidents), (SELECT count(*) FROM track_points),
           (SELECT md5(string_agg(code || ST_AsEWKB(geom)::text, ',' ORDER BY code)) FROM grids),
           (SELECT md5(string_agg(id || ST_AsEWKB(geom)::text, ',' ORDER BY id))
              FROM incidents WHERE geom IS NOT NULL)
"""


def _fingerprint(engine: Engine) -> tuple:
    with engine.connect() as conn:
        return tuple(conn.execute(text(FINGERPRINT)).one())


def test_backup_restore_round_trip(engine: Engine, db_url: str, tmp_path: Path) -> None:
    scratch_url = db_url + "_scratch"
    scratch = create_engine(scratch_url)
    try:
        dump = backup(db_url, tmp_path / "wangge.dump")
        assert dump.stat().st_size > 10_000
        restore(scratch_url, dump)
        original = _fingerprint(engine)
        assert original[0] > 0 and original[2] > 0
        assert _fingerprint(scratch) == original
        # the trigger and the locate function came along and still work
        with scratch.begin() as conn:
            new_id = conn.execute(
                text(
                    "INSERT INTO incidents (category, source, reported_at, status, "
                    "location_status, geom) SELECT '噪音扰民', '热线', now(), 'reported', "
                    "'needs_location', ST_PointOnSurface(geom) FROM grids WHERE level = 'micro' "
                    "LIMIT 1 RETURNING id"
                )
            ).scalar_one()
            located = conn.execute(
                text("SELECT location_status FROM incidents WHERE id = :i"), {"i": new_id}
            ).scalar_one()
        assert located == "located"
        restore(scratch_url, dump)  # again: --clean replaces, nothing doubles
        assert _fingerprint(scratch) == original

        bad = tmp_path / "broken.dump"
        bad.write_bytes(dump.read_bytes()[: dump.stat().st_size // 3])
        with pytest.raises(GisError, match=r"nothing was changed|not a pg_dump"):
            restore(scratch_url, bad)
        assert _fingerprint(scratch) == original
        with pytest.raises(GisError, match="no such backup"):
            restore(scratch_url, tmp_path / "missing.dump")
    finally:
        scratch.dispose()
