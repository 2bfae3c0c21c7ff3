"""Replaying the fixture's incidents through the loop: every path is legal, the stored state
matches its audit trail, escalations happen only when late, KPIs come out."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from data.replay import Handlers, replay
from gis.db.queries.kpis import kpi_frame
from gis.db.queries.workflow import replay_inputs, store_replay
from gis.incidents import TRANSITIONS, Status
from gis.kpis import incident_kpis
from gis.taxonomy import load_taxonomy

pytestmark = pytest.mark.db
TAX = load_taxonomy()


@pytest.fixture
def replayed(session: Session) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    frame, workers, names = replay_inputs(session)
    assert len(frame) > 50
    until = (frame["reported_at"].max() - timedelta(days=2)).to_pydatetime()
    events, states = replay(frame, TAX, Handlers(workers, names), until=until, seed=5)
    store_replay(session, events, states)
    return frame, events, states


def test_every_replayed_path_is_legal_and_matches_the_stored_state(
    session: Session, replayed
) -> None:
    frame, events, states = replayed
    assert set(states["id"]) == set(frame["id"])
    stored = pd.read_sql(
        text("SELECT id, status, version, duplicate_of FROM incidents"), session.connection()
    ).set_index("id")
    trail = events[events["kind"] == "transition"].sort_values(["incident_id", "at"], kind="stable")
    for iid, steps in trail.groupby("incident_id"):
        status = Status.REPORTED
        for frm, to in zip(steps["from_status"], steps["to_status"], strict=True):
            assert frm == status and Status(to) in TRANSITIONS[status], (iid, frm, to)
            status = Status(to)
        assert stored.loc[iid, "status"] == status
    n_events = events.groupby("incident_id").size()
    for iid, version in stored["version"].items():
        if iid in set(frame["id"]):
            assert version == 1 + n_events.get(iid, 0)
    dups = stored[stored["status"] == "duplicate"]
    assert len(dups) > 0
    assert not stored.loc[dups["duplicate_of"].astype(int), "status"].eq("duplicate").any()
    assert set(stored["status"]) >= {"closed", "rejected", "duplicate"}


def test_escalations_happen_only_after_the_on_site_deadline(session: Session, replayed) -> None:
    _frame, events, _states = replayed
    esc = events[events["kind"] == "escalation"]
    assert len(esc) > 0
    rows = session.execute(
        text(
            "SELECT id, reported_at, started_at, category_code FROM incidents WHERE id IN :ids"
        ).bindparams(bindparam("ids", expanding=True)),
        {"ids": [int(i) for i in esc["incident_id"].unique()]},
    ).all()
    for iid, reported, started, code in rows:
        due = reported + TAX.get(code).deadlines.on_site
        for at in esc.loc[esc["incident_id"] == iid, "at"]:
            assert at >= due
            assert started is None or started > at


def test_kpis_on_the_replay_and_a_second_replay_does_nothing(session: Session, replayed) -> None:
    frame = kpi_frame(session, TAX)
    overall = incident_kpis(frame, []).iloc[0]
    assert 0.7 < overall["handled_rate"] <= 1.0
    assert 0 < overall["on_time_rate"] <= 1.0
    assert 1 <= overall["satisfaction"] <= 5
    assert 0 < overall["in_grid_share"] < 1
    per_worker = incident_kpis(frame, ["worker"])
    assert len(per_worker) > 3
    # only the reports whose first step lies after ``until`` are still untouched
    _frame, _events, states = replayed
    again, _w, _n = replay_inputs(session)
    assert set(again["id"]) == set(states.loc[states["status"] == "reported", "id"])
