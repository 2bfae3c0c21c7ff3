"""KPIs: the vectorised deadlines equal the scalar rule; aggregates on a hand-made frame."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from gis.errors import GisError
from gis.kpis import incident_kpis, resolve_deadlines
from gis.taxonomy import load_taxonomy

TAX = load_taxonomy()


def test_vectorised_resolve_deadlines_match_deadlines_resolve_by() -> None:
    rng = np.random.default_rng(3)
    base = datetime(2025, 11, 1, tzinfo=UTC)
    times = [base + timedelta(minutes=int(m)) for m in rng.integers(0, 60 * 24 * 365, 3000)]
    codes = [c.code for c in TAX]
    picked = [codes[int(i)] for i in rng.integers(0, len(codes), len(times))]
    got = resolve_deadlines(pd.Series(times), pd.Series(picked), TAX)
    want = [TAX.get(c).deadlines.resolve_by(t) for c, t in zip(picked, times, strict=True)]
    assert [g.to_pydatetime() for g in got] == want


def _frame() -> pd.DataFrame:
    t = pd.Timestamp("2026-03-02T01:00:00Z")
    rows = [
        # community A: closed in grid, on time, response 2 min, satisfaction 5
        {
            "status": "closed",
            "community_code": "A",
            "accepted": 2,
            "resolved": 60,
            "sat": 5,
            "lvl": "grid",
        },
        # community A: closed after escalation to community, late (resolved next day)
        {
            "status": "closed",
            "community_code": "A",
            "accepted": 10,
            "resolved": 60 * 30,
            "sat": 3,
            "lvl": "community",
            "init": "grid",
        },
        # community A: rejected: not valid, not handled
        {
            "status": "rejected",
            "community_code": "A",
            "accepted": None,
            "resolved": None,
            "sat": None,
            "lvl": None,
        },
        # community B: in progress, response 4 min
        {
            "status": "in_progress",
            "community_code": "B",
            "accepted": 4,
            "resolved": None,
            "sat": None,
            "lvl": "grid",
        },
    ]
    out = []
    for i, r in enumerate(rows):
        out.append(
            {
                "id": i,
                "status": r["status"],
                "community_code": r["community_code"],
                "community_name": r["community_code"] + "社区",
                "category_code": "2002",
                "category": "噪音扰民",
                "source": "热线",
                "reported_at": t,
                "accepted_at": t + pd.Timedelta(minutes=r["accepted"]) if r["accepted"] else pd.NaT,
                "resolved_at": t + pd.Timedelta(minutes=r["resolved"]) if r["resolved"] else pd.NaT,
                "satisfaction": r["sat"],
                "initial_level": r.get("init", r["lvl"]),
                "handling_level": r["lvl"],
                "reopen_count": 0,
            }
        )
    frame = pd.DataFrame(out)
    frame["resolve_by"] = resolve_deadlines(frame["reported_at"], frame["category_code"], TAX)
    return frame


def test_kpis_per_community_on_a_hand_made_frame() -> None:
    out = incident_kpis(_frame(), ["community"]).set_index("community_code")
    a, b = out.loc["A"], out.loc["B"]
    assert (a["incidents"], a["valid"], a["handled"], a["closed"]) == (3, 2, 2, 2)
    assert a["handled_rate"] == 1.0
    assert a["on_time"] == 1 and a["on_time_rate"] == 0.5
    assert a["in_grid_share"] == 0.5 and a["escalated"] == 1
    assert a["median_response_min"] == 6.0  # (2 + 10) / 2
    assert a["satisfaction"] == 4.0 and a["evaluations"] == 2
    assert (b["handled"], b["handled_rate"], b["median_response_min"]) == (0, 0.0, 4.0)
    assert b["on_time_rate"] is None and b["in_grid_share"] is None  # nothing to divide by


def test_overall_and_period_groupings() -> None:
    overall = incident_kpis(_frame(), [])
    assert len(overall) == 1 and overall.iloc[0]["incidents"] == 4
    weekly = incident_kpis(_frame(), ["week", "source"])
    assert list(weekly["week"]) == ["2026-W10"] and list(weekly["source"]) == ["热线"]
    with pytest.raises(GisError, match="unknown grouping"):
        incident_kpis(_frame(), ["planet"])
