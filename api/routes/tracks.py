"""Patrol tracks: upload, cleaning, per-grid effort, coverage, key-household visits and the
weekly compliance report (the patrol map page is in api.routes.dashboards)."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile, status
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import text

from api.deps import SessionDep
from api.indexes import patrol_index
from api.security import PrincipalDep, allow
from gis.access import PERSONAL_DATA_ROLES, ROLES, Principal
from gis.db.queries.tracks import (
    LOCAL_TZ,
    TrackSource,
    compliance_report,
    daily_status,
    grid_coverage,
    household_compliance,
    key_households_frame,
    store_uploads,
    track_detail,
    tracks_grid_ids,
    tracks_list,
)
from gis.db.queries.users import audit
from gis.errors import NotFoundError
from gis.tracks import MAX_FILE_BYTES, TRACK_CRS

router = APIRouter(tags=["tracks"])
UPLOADERS = ("admin", "patroller", "dispatcher")
MAX_FILES = 50


def _today() -> date:
    return datetime.now(LOCAL_TZ).date()


def _staff_of(session: SessionDep, who: Principal) -> int | None:
    if not who.user_id:
        return None
    return session.execute(
        text("SELECT staff_id FROM users WHERE id = :i"), {"i": who.user_id}
    ).scalar_one_or_none()


def _read(upload: UploadFile) -> bytes:
    data = upload.file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"{upload.filename}: over the {MAX_FILE_BYTES // 2**20} MB limit per file",
        )
    return data


@router.post(
    "/tracks",
    summary="Upload patrol tracks (GPX, GeoJSON, CSV; gzip accepted)",
    dependencies=[allow(*UPLOADERS)],
    status_code=status.HTTP_201_CREATED,
)
def upload_tracks(
    session: SessionDep,
    who: PrincipalDep,
    files: Annotated[list[UploadFile], File(description="one or more track files")],
    crs: Annotated[
        Literal["wgs84", "gcj02"],
        Form(description="datum of the coordinates: wgs84 (GPS, browser) or gcj02 (most apps)"),
    ] = "wgs84",
    staff_id: Annotated[int | None, Form(description="whose patrol (admins only)")] = None,
) -> JSONResponse:
    """Store each file's tracks, cleaned and assigned to grids, with per-file reports.

    The same file again returns the tracks stored the first time (``duplicate``: true),
    so a phone may retry freely. The batch is one transaction: a malformed file fails the
    request with the file and place named, and nothing of the batch is stored.
    """
    if len(files) > MAX_FILES:
        raise HTTPException(422, f"at most {MAX_FILES} files per upload, got {len(files)}")
    if who.role == "patroller":
        own = _staff_of(session, who)
        if staff_id is not None and staff_id != own:
            raise HTTPException(403, "a grid worker uploads only their own tracks")
        staff_id = own
    elif staff_id is not None:
        exists = session.execute(text("SELECT 1 FROM staff WHERE id = :i"), {"i": staff_id}).first()
        if exists is None:
            raise HTTPException(422, f"no staff member {staff_id}")
    assert crs in TRACK_CRS
    batch = [
        TrackSource(name=(f.filename or "upload")[-200:], data=_read(f), staff_id=staff_id)
        for f in files
    ]
    reports = store_uploads(
        session, batch, crs=crs, user_id=who.user_id or None, ctx=patrol_index.get(session)
    )
    if who.role == "patroller":
        ids = [int(t["id"]) for r in reports for t in r.get("tracks", [])]
        touched = tracks_grid_ids(session, ids)
        outside = [tid for tid, grids in touched.items() if grids and not who.in_scope(*grids)]
        if outside:
            # not refused: a worker may cross into a neighbour's grid; the report says so
            for r in reports:
                r.setdefault("warnings", []).append(
                    f"tracks {outside} run outside your grids: stored, visible to your leader"
                )
    new = any(not r.get("duplicate") for r in reports)
    return JSONResponse(
        _jsonable({"uploads": reports}),
        status_code=status.HTTP_201_CREATED if new else status.HTTP_200_OK,
    )


@router.get("/tracks", summary="Patrol tracks", dependencies=[allow(*ROLES)])
def list_tracks(
    session: SessionDep,
    who: PrincipalDep,
    staff_id: int | None = None,
    day: Annotated[date | None, Query(alias="date")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[dict[str, Any]]:
    """Tracks with their summaries, newest first; a grid worker sees those in their grids."""
    grid_ids = None if who.grid_ids is None else sorted(who.grid_ids)
    rows = tracks_list(
        session, staff_id=staff_id, day=day, grid_ids=grid_ids, limit=limit, offset=offset
    )
    return _jsonable(rows)


@router.get("/tracks/{track_id}", summary="One track", dependencies=[allow(*ROLES)])
def get_track(
    session: SessionDep,
    who: PrincipalDep,
    track_id: int,
    raw: Annotated[bool, Query(description="include every fix with its cleaning flag")] = False,
) -> dict[str, Any]:
    """Summary, cleaned line (GeoJSON), effort per grid and, with ``raw``, every fix."""
    try:
        out = track_detail(session, track_id, raw=raw)
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from exc
    if not who.in_scope(*[e["grid_id"] for e in out["effort"]]):
        raise HTTPException(404, f"no track {track_id}")
    return _jsonable(out)


@router.get(
    "/patrol/daily", summary="Per-grid patrol status of a day", dependencies=[allow(*ROLES)]
)
def patrol_daily(
    session: SessionDep,
    who: PrincipalDep,
    day: Annotated[date | None, Query(alias="date")] = None,
    level: Literal["micro", "grid", "community", "dedicated"] = "micro",
    format_: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> Any:
    """Each grid of a level: minutes and distance patrolled that day, workers, patrolled."""
    frame = daily_status(session, day or _today(), level=level)
    frame = _in_scope(frame, who, "grid_id")
    return _table(frame, format_, "patrol-daily")


@router.get("/patrol/coverage", summary="Street and building coverage of a grid",
            dependencies=[allow(*ROLES)])  # fmt: skip
def patrol_coverage(
    session: SessionDep,
    who: PrincipalDep,
    grid_id: int,
    start: date | None = None,
    end: date | None = None,
) -> dict[str, Any]:
    """Share of the grid's street length within 20 m of a cleaned track and of its
    buildings passed within 30 m, over days start..end (default today); the uncovered
    streets as GeoJSON."""
    if not who.in_scope(grid_id):
        raise HTTPException(404, f"no grid {grid_id}")
    start = start or _today()
    end = end or start
    if end < start or (end - start) > timedelta(days=31):
        raise HTTPException(422, "end must follow start, at most 31 days later")
    try:
        _cov, info = grid_coverage(session, grid_id, start, end)
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from exc
    return info


@router.get("/patrol/compliance", summary="Weekly compliance per worker or grid",
            dependencies=[allow(*ROLES)])  # fmt: skip
def patrol_compliance(
    session: SessionDep,
    who: PrincipalDep,
    week: Annotated[date | None, Query(description="any day of the week")] = None,
    by: Literal["worker", "grid"] = "worker",
    format_: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> Any:
    """Days patrolled, distance, minutes, and key-household visits due and made."""
    frame = compliance_report(session, week or _today(), by=by)
    if by == "grid":
        frame = _in_scope(frame, who, "grid_id")
    elif who.grid_ids is not None:
        mine = _staff_of(session, who)
        frame = frame[frame["staff_id"] == mine]
    return _table(frame, format_, f"compliance-{by}")


@router.get("/patrol/visits", summary="Key-household visit compliance of a week",
            dependencies=[allow(*ROLES)])  # fmt: skip
def patrol_visits(
    request: Request,
    session: SessionDep,
    who: PrincipalDep,
    week: Annotated[date | None, Query(description="any day of the week")] = None,
    personal: Annotated[bool, Query(description="names and phones (allowed roles)")] = False,
    format_: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> Any:
    """Each key household: visits made this week (one due), by whom, compliant or not.
    Without ``personal`` no personal data; with it, name and phone for the roles allowed,
    and the read is written to the audit log."""
    frame = household_compliance(session, week or _today())
    frame = _in_scope(frame, who, "grid_id")
    if personal:
        frame = frame.merge(
            _personal(request, session, who, frame["household_id"].tolist()),
            on="household_id",
            how="left",
        )
    return _table(frame, format_, "visits")


@router.get("/key-households", summary="Key households", dependencies=[allow(*ROLES)])
def key_households(
    request: Request,
    session: SessionDep,
    who: PrincipalDep,
    grid_id: int | None = None,
    personal: bool = False,
) -> list[dict[str, Any]]:
    """Key households (kind, building, grid); personal data only on request, for the roles
    allowed, each read audited."""
    grid_ids = None if who.grid_ids is None else sorted(who.grid_ids)
    if grid_id is not None:
        if not who.in_scope(grid_id):
            raise HTTPException(404, f"no grid {grid_id}")
        grid_ids = [grid_id]
    frame = key_households_frame(session, grid_ids=grid_ids)
    out = pd.DataFrame(frame.drop(columns="geom"))
    if personal:
        out = out.merge(
            _personal(request, session, who, out["household_id"].tolist()),
            on="household_id",
            how="left",
        )
    return _jsonable(out.to_dict(orient="records"))


def _personal(
    request: Request, session: SessionDep, who: Principal, ids: list[int]
) -> pd.DataFrame:
    """Names and phones of key households, for the roles allowed; every read audited."""
    if who.role not in PERSONAL_DATA_ROLES:
        raise HTTPException(403, f"role {who.role!r} may not read key households' personal data")
    audit(
        session,
        action="read_personal",
        user_id=who.user_id or None,
        username=who.username,
        method=request.method,
        path=request.url.path,
        detail={"households": ids[:1000], "count": len(ids)},
    )
    rows = key_households_frame(session, personal=True)
    rows = rows[rows["household_id"].isin(ids)]
    return pd.DataFrame(rows[["household_id", "name", "phone", "unit", "room"]])


def _in_scope(frame: pd.DataFrame, who: Principal, column: str) -> pd.DataFrame:
    if who.grid_ids is None:
        return frame
    return frame[frame[column].isin(who.grid_ids)]


def _table(frame: pd.DataFrame, format_: str, name: str) -> Any:
    if format_ == "csv":
        return PlainTextResponse(
            frame.to_csv(index=False),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return _jsonable(frame.to_dict(orient="records"))


def _jsonable(value: Any) -> Any:
    """Dates, numpy scalars and NaN made JSON-safe (NaN and NaT become null)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, date | datetime | pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
