"""Incidents: report one (geocoded on insert), read one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, Response, status

from api.deps import SessionDep
from api.schemas.incidents import IncidentCreate, IncidentPublic
from gis.crs import to_wgs84
from gis.db.queries.incidents import get_incident, insert_incident

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
    """Store the report and assign its grid chain; a point outside every grid is kept as
    "outside", a report with only an address goes to the needs-location queue.

    Send an ``Idempotency-Key`` header to make retries safe: the same key returns the stored
    incident (200) instead of creating a second one.
    """
    lon = lat = None
    if body.lon is not None and body.lat is not None:
        x, y = to_wgs84([body.lon], [body.lat], body.crs)
        lon, lat = float(x[0]), float(y[0])
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
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return IncidentPublic(**row)


@router.get("/{incident_id}", response_model=IncidentPublic, summary="One incident")
def read_incident(incident_id: int, session: SessionDep) -> IncidentPublic:
    """An incident with its grid chain and status."""
    return IncidentPublic(**get_incident(session, incident_id))
