"""党员中心户 (party-member households): each looks after 1–5 key households (重点户) and
visits them; those visits count towards the weekly visit compliance alongside the grid
workers' (detected from their patrol tracks), and the households that nobody visited in a
week are reported. Pure: frames in, frames out; the database side is
``gis/db/queries/party.py``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from gis.errors import GisError
from gis.patrol import VISITS_PER_WEEK

MAX_HOUSEHOLDS = 5  # 一名党员联系1至5户重点户
PARTY_KIND = "party_member"
VISIT_RADIUS_M = 300.0  # a visit with a position must be made near the household's building
CLOCK_SKEW = timedelta(minutes=5)  # a phone's clock may run a little ahead

COMPLIANCE_COLUMNS = [
    "household_id",
    "kind",
    "grid_id",
    "grid_code",
    "party_member_id",
    "party_member",
    "worker_visits",
    "party_visits",
    "visits",
    "visited_by",
    "compliant",
]


class PartyLinkError(GisError):
    """A link the rules do not allow (not a party member, more than five households)."""


class PartyLinkConflict(PartyLinkError):
    """A key household already looked after by another party member."""


class PartyVisitError(GisError):
    """A visit that cannot be right (in the future, far from the household, not linked)."""


def check_party_member(kind: str, name: str = "") -> None:
    """Only a volunteer of kind ``party_member`` is a 党员中心户."""
    if kind != PARTY_KIND:
        who = f" {name!r}" if name else ""
        raise PartyLinkError(f"volunteer{who} is a {kind}, not a party member (party_member)")


def check_link_count(current: int, adding: int) -> None:
    """Raise unless a party member may look after ``current + adding`` households (1–5)."""
    if adding < 1:
        raise PartyLinkError("name at least one key household to link")
    total = current + adding
    if total > MAX_HOUSEHOLDS:
        raise PartyLinkError(
            f"a party member looks after at most {MAX_HOUSEHOLDS} key households; "
            f"this one has {current} and {adding} more would make {total}"
        )


def check_visit(visited_at: datetime, now: datetime, distance_m: float | None) -> None:
    """A visit is not in the future, and one with a position was made near the household."""
    if visited_at.tzinfo is None:
        raise PartyVisitError("visited_at needs a time zone (e.g. 2026-12-01T09:30:00+08:00)")
    if visited_at > now + CLOCK_SKEW:
        raise PartyVisitError(f"visited_at {visited_at.isoformat()} is in the future")
    if distance_m is not None and distance_m > VISIT_RADIUS_M:
        raise PartyVisitError(
            f"the position is {distance_m:.0f} m from the household's building; "
            f"a visit is recorded within {VISIT_RADIUS_M:.0f} m"
        )


def combined_compliance(
    households: pd.DataFrame, worker_visits: pd.DataFrame, party_visits: pd.DataFrame
) -> pd.DataFrame:
    """Visits of one week per key household, by grid workers and by party members together.

    ``households``: household_id, kind, grid_id, grid_code, party_member_id, party_member;
    ``worker_visits``: household_id (one row per visit detected from a track);
    ``party_visits``: household_id (one row per visit a party member recorded). Both already
    limited to the week. ``visited_by`` is worker, party, both or nobody; a household is
    compliant with :data:`gis.patrol.VISITS_PER_WEEK` visits from anyone.
    """
    out = households.copy()
    for column, visits in (("worker_visits", worker_visits), ("party_visits", party_visits)):
        counts = visits.groupby("household_id").size() if len(visits) else pd.Series(dtype=int)
        out[column] = out["household_id"].map(counts).fillna(0).astype(int)
    out["visits"] = out["worker_visits"] + out["party_visits"]
    worker, party = out["worker_visits"] > 0, out["party_visits"] > 0
    out["visited_by"] = "nobody"
    out.loc[worker, "visited_by"] = "worker"
    out.loc[party, "visited_by"] = "party"
    out.loc[worker & party, "visited_by"] = "both"
    out["compliant"] = out["visits"] >= VISITS_PER_WEEK
    return out[COMPLIANCE_COLUMNS].sort_values("household_id").reset_index(drop=True)


def unvisited(compliance: pd.DataFrame) -> pd.DataFrame:
    """The key households that nobody (no grid worker, no party member) visited."""
    return compliance[compliance["visits"] == 0].reset_index(drop=True)
