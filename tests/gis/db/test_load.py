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
