"""The district loader: missing values arrive as SQL NULL, never as the text ``\\N``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import text
from sqlalchemy.orm import Session


def test_missing_incident_addresses_are_null_not_backslash_n(
    session: Session, fixture_district: Path
) -> None:
    frame = pd.read_csv(fixture_district / "incidents.csv", dtype={"address": str})
    missing = int(frame["address"].isna().sum())
    assert missing > 0, "the fixture should have reports without an address"
    row = session.execute(
        text(
            "SELECT count(*) FILTER (WHERE address IS NULL) AS nulls, "
            "count(*) FILTER (WHERE address = '\\N') AS backslash_n, count(*) AS n FROM incidents"
        )
    ).one()
    assert row.backslash_n == 0
    assert row.nulls == missing
    assert row.n == len(frame)


def test_loading_a_district_empties_the_dashboard_rollup(
    session: Session, fixture_district: Path
) -> None:
    """A reloaded district must not keep the old district's rollup: with no state the next
    refresh rebuilds it in full from the new incidents."""
    from gis.db.config import get_taxonomy
    from gis.db.load import load_district
    from gis.db.queries.dashboards import refresh_rollup, rollup_state

    refresh_rollup(session, get_taxonomy(), full=True)
    assert rollup_state(session) is not None
    load_district(session, fixture_district, tracks=False)
    assert rollup_state(session) is None
    assert session.execute(text("SELECT count(*) FROM incident_rollup_kpis")).scalar() == 0
    done = refresh_rollup(session, get_taxonomy())
    assert done.full
    total = session.execute(
        text("SELECT sum(incidents) FROM incident_rollup_kpis WHERE kind = 'source'")
    ).scalar()
    assert total == session.execute(text("SELECT count(*) FROM incidents")).scalar()
