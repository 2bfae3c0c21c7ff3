"""Open311 GeoReport v2 over the incident workflow, so existing Open311 clients can file and
read requests (JSON format; ``.xml`` is not offered).

Services are the taxonomy's categories (``service_code`` = category code). A request's
``status`` is ``open`` until the incident is closed, rejected or merged as a duplicate.
Errors follow the spec: an array of ``{"code", "description"}`` with the HTTP status.
Coordinates are WGS84 ``lat``/``long`` as the spec says.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Header, Query
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from api.deps import ClockDep, SessionDep, TaxonomyDep
from api.routes.incidents import create
from api.schemas.incidents import IncidentCreate
from api.security import public
from gis.db.queries.incidents import get_incident
from gis.db.queries.open311 import find_requests, last_notes
from gis.errors import GisError, NotFoundError
from gis.taxonomy import Taxonomy

log = logging.getLogger(__name__)

# Open311 is open by design: anyone may file and read requests (rate-limited; no personal
# data in the answers).
router = APIRouter(prefix="/open311/v2", tags=["open311"], dependencies=[public()])

CLOSED = ("closed", "rejected", "duplicate")
STATUS_NOTES = {
    "reported": "已上报，待受理",
    "accepted": "已受理",
    "dispatched": "已派单",
    "in_progress": "处置中",
    "resolved": "已处置，待评价",
    "evaluated": "已评价",
    "closed": "已结案",
    "rejected": "不予受理",
    "duplicate": "重复上报，已合并",
    "reopened": "群众不满意，重新处置",
}
MAX_REQUESTS = 1000


def _error(status: int, description: str) -> JSONResponse:
    return JSONResponse(status_code=status, content=[{"code": status, "description": description}])


def _guard(fn: Callable[[], Any]) -> Any:
    """Run a handler body and answer errors in the Open311 shape."""
    try:
        return fn()
    except NotFoundError as exc:
        return _error(404, str(exc))
    except (GisError, ValidationError) as exc:
        msg = str(exc).splitlines()[0] if isinstance(exc, GisError) else _validation(exc)
        return _error(400, msg)


def _validation(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'request'}: {e['msg']}" for e in exc.errors()
    )


def _iso(ts: datetime | None) -> str | None:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z") if ts else None


def _request_out(row: dict[str, Any], taxonomy: Taxonomy, notes: dict[int, str]) -> dict:
    cat = taxonomy.by_key.get(row["category_code"] or row["category"])
    deadline = None
    if cat is not None:
        deadline = cat.deadlines.resolve_by(row["reported_at"])
    return {
        "service_request_id": str(row["id"]),
        "status": "closed" if row["status"] in CLOSED else "open",
        "status_notes": notes.get(row["id"]) or STATUS_NOTES.get(row["status"]),
        "service_name": row["category"],
        "service_code": row["category_code"],
        "description": row["description"],
        "agency_responsible": row.get("assignee_name"),
        "service_notice": None,
        "requested_datetime": _iso(row["reported_at"]),
        "updated_datetime": _iso(row.get("updated_at")),
        "expected_datetime": _iso(deadline),
        "address": row["address"],
        "address_id": str(row["building_id"]) if row.get("building_id") else None,
        "zipcode": None,
        "lat": row["lat"],
        "long": row["lon"],
        "media_url": row.get("media_url"),
    }


@router.get("/services.json", summary="Open311: the service list (our incident categories)")
def services(taxonomy: TaxonomyDep) -> list[dict[str, Any]]:
    """One service per category: code, Chinese name, class as the group."""
    return [
        {
            "service_code": c.code,
            "service_name": c.name,
            "description": c.description or f"{c.class_name} · {c.name}",
            "metadata": False,
            "type": "realtime",
            "keywords": ",".join(k for k in (c.class_name, c.name) if k),
            "group": c.class_name,
        }
        for c in taxonomy
    ]


@router.get("/services/{service_code}.json", summary="Open311: a service definition")
def service_definition(service_code: str, taxonomy: TaxonomyDep) -> Any:
    """No service has extra attributes (``metadata`` is false), so there is no definition."""
    if service_code not in {c.code for c in taxonomy}:
        return _error(404, f"unknown service_code {service_code!r}")
    return _error(404, f"service {service_code} has no attributes (metadata is false)")


@router.post("/requests.json", status_code=201, summary="Open311: file a service request")
def post_request(
    session: SessionDep,
    taxonomy: TaxonomyDep,
    clock: ClockDep,
    service_code: Annotated[str | None, Form()] = None,
    lat: Annotated[str | None, Form()] = None,
    long: Annotated[str | None, Form()] = None,
    address_string: Annotated[str | None, Form(max_length=500)] = None,
    address_id: Annotated[str | None, Form()] = None,
    description: Annotated[str | None, Form(max_length=4000)] = None,
    media_url: Annotated[str | None, Form(max_length=2000)] = None,
    email: Annotated[str | None, Form(max_length=200)] = None,
    phone: Annotated[str | None, Form(max_length=50)] = None,
    first_name: Annotated[str | None, Form(max_length=100)] = None,
    last_name: Annotated[str | None, Form(max_length=100)] = None,
    device_id: Annotated[str | None, Form(max_length=200)] = None,
    account_id: Annotated[str | None, Form(max_length=200)] = None,
    api_key: Annotated[str | None, Form(max_length=200)] = None,
    jurisdiction_id: Annotated[str | None, Form(max_length=200)] = None,
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> Any:
    """Form-encoded as in the spec: ``service_code`` and a place (``lat``+``long`` or
    ``address_string``); answers ``[{"service_request_id", "service_notice", "account_id"}]``.
    ``api_key`` is accepted and not checked (access control comes with the security work)."""

    def run() -> Any:
        if not service_code:
            raise GisError("service_code is required")
        if (lat is None) != (long is None):
            raise GisError("give both lat and long, or neither")
        if lat is None and not (address_string and address_string.strip()):
            raise GisError("a location is required: lat and long, or address_string")
        try:
            lon_f = float(long) if long is not None else None
            lat_f = float(lat) if lat is not None else None
        except ValueError:
            raise GisError(f"lat/long must be numbers, got {lat!r}, {long!r}") from None
        reporter = " ".join(p for p in (last_name, first_name) if p) or None
        contact = ", ".join(p for p in (reporter, phone, email) if p) or None
        body = IncidentCreate(
            category=service_code,
            source="Open311",
            description=description,
            lon=lon_f,
            lat=lat_f,
            crs="wgs84",
            address=address_string,
            reporter=contact,
            media_url=media_url,
        )
        row, _created = create(session, body, taxonomy, clock(), idempotency_key)
        notice = None if row["location_status"] != "needs_location" else "地址待核实"
        return JSONResponse(
            status_code=201,
            content=[
                {
                    "service_request_id": str(row["id"]),
                    "service_notice": notice,
                    "account_id": account_id,
                }
            ],
        )

    return _guard(run)


@router.get("/requests.json", summary="Open311: find service requests")
def get_requests(
    session: SessionDep,
    taxonomy: TaxonomyDep,
    clock: ClockDep,
    service_request_id: Annotated[str | None, Query(max_length=2000)] = None,
    service_code: Annotated[str | None, Query(max_length=200)] = None,
    start_date: Annotated[str | None, Query(max_length=40)] = None,
    end_date: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
) -> Any:
    """Comma-separated ids win over the other filters; without dates, the last 90 days; at
    most 1,000 requests, newest first."""

    def run() -> Any:
        ids = None
        if service_request_id:
            try:
                ids = [int(x) for x in service_request_id.split(",") if x.strip()]
            except ValueError:
                raise GisError("service_request_id must be comma-separated numbers") from None
        if status not in (None, "", "open", "closed"):
            raise GisError(f"status must be open or closed, got {status!r}")
        end = _date(end_date, "end_date") or clock()
        start = _date(start_date, "start_date") or end - timedelta(days=90)
        rows = find_requests(
            session,
            ids=ids,
            codes=[c for c in (service_code or "").split(",") if c] or None,
            start=None if ids else start,
            end=None if ids else end,
            closed=None if not status else status == "closed",
            closed_statuses=CLOSED,
            limit=MAX_REQUESTS,
        )
        notes = last_notes(session, [r["id"] for r in rows])
        return [_request_out(r, taxonomy, notes) for r in rows]

    return _guard(run)


@router.get("/requests/{request_id}.json", summary="Open311: one service request")
def get_request(request_id: str, session: SessionDep, taxonomy: TaxonomyDep) -> Any:
    """An array with the one request, as the spec says."""

    def run() -> Any:
        if not request_id.isdigit():
            raise NotFoundError(f"service request {request_id!r} does not exist")
        row = get_incident(session, int(request_id))
        return [_request_out(row, taxonomy, last_notes(session, [row["id"]]))]

    return _guard(run)


def _date(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise GisError(f"{name} must be a W3C date-time, got {value!r}") from None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
