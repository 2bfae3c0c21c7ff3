"""Incidents: report one (geocoded on insert), read one, and the needs-location queue."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status

from api.deps import SessionDep
from api.indexes import gazetteer
from api.schemas.incidents import (
    AddressCandidate,
    IncidentCreate,
    IncidentPublic,
    LocationFix,
    QueuedIncident,
)
from gis.crs import to_wgs84
from gis.db.queries.buildings import building_point
from gis.db.queries.incidents import (
    get_incident,
    insert_incident,
    needs_location,
    set_location,
)

router = APIRouter(prefix="/incidents", tags=["incidents"])


@router.post(
    "",
    response_model=IncidentPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Report an incident (point in any supported CRS, or an address)",
)
def create_incident(
    body: IncidentCreate,
    session: SessionDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> IncidentPublic:
    """Store the report and assign its grid chain.

    A point outside every grid is kept as "outside". A report with only an address is
    matched against the building gazetteer: a confident match gets the building's point;
    anything else goes to the needs-location queue (never dropped). Send an
    ``Idempotency-Key`` header to make retries safe: the same key returns the stored incident
    (200) instead of creating a second one.
    """
    lon = lat = score = None
    building_id = None
    source = None
    if body.lon is not None and body.lat is not None:
        x, y = to_wgs84([body.lon], [body.lat], body.crs)
        lon, lat, source = float(x[0]), float(y[0]), "point"
    elif body.address:
        match = gazetteer.get(session).resolve(body.address)
        if match is not None and match.building_id is not None:
            lon, lat = building_point(session, match.building_id)
            score, building_id, source = float(match.score), int(match.building_id), "address"
    row, created = insert_incident(
        session,
        category=body.category,
        source=body.source,
        reported_at=body.reported_at or datetime.now(UTC),
        lon=lon,
        lat=lat,
        description=body.description,
        address=body.address,
        reporter=body.reporter,
        idempotency_key=idempotency_key,
        location_source=source,
        address_score=score,
        building_id=building_id,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return IncidentPublic(**row)


@router.get(
    "/needs-location",
    response_model=list[QueuedIncident],
    summary="Reports waiting for a location, with address candidates",
)
def list_needs_location(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[QueuedIncident]:
    """The queue a worker clears on the map; each entry carries the gazetteer's best guesses."""
    gaz = gazetteer.get(session)
    out = []
    for row in needs_location(session, limit=limit, offset=offset):
        cands = gaz.match(row["address"]) if row["address"] else []
        out.append(
            QueuedIncident(
                incident=IncidentPublic(**row),
                candidates=[
                    AddressCandidate(
                        building_id=c.building_id,
                        score=round(float(c.score), 1),
                        level=c.level,
                        matched={k: str(v) for k, v in c.matched.items()},
                        lon=c.lon,
                        lat=c.lat,
                        micro_code=c.micro_code,
                    )
                    for c in cands
                ],
            )
        )
    return out


@router.post(
    "/{incident_id}/location",
    response_model=IncidentPublic,
    summary="Give a queued (or misplaced) incident its location",
)
def fix_location(incident_id: int, body: LocationFix, session: SessionDep) -> IncidentPublic:
    """Set the point from the map (any supported CRS) or from a chosen building."""
    if body.building_id is not None:
        lon, lat = building_point(session, body.building_id)
    else:
        assert body.lon is not None and body.lat is not None  # checked by the schema
        x, y = to_wgs84([body.lon], [body.lat], body.crs)
        lon, lat = float(x[0]), float(y[0])
    row = set_location(
        session, incident_id, lon=lon, lat=lat, source="manual", building_id=body.building_id
    )
    return IncidentPublic(**row)


@router.get("/{incident_id}", response_model=IncidentPublic, summary="One incident")
def read_incident(incident_id: int, session: SessionDep) -> IncidentPublic:
    """An incident with its grid chain and status."""
    return IncidentPublic(**get_incident(session, incident_id))
