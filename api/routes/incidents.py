"""Incidents: intake (JSON or a form with photos), the closed-loop workflow, SLA, duplicates,
the needs-location queue, photos and KPIs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import (
    APIRouter,
    File,
    Form,
    Header,
    HTTPException,
    Query,
    Response,
    UploadFile,
    status,
)
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, PlainTextResponse

from api.deps import ClockDep, SessionDep, TaxonomyDep
from api.indexes import gazetteer
from api.schemas.incidents import (
    AddressCandidate,
    BatchResult,
    CategoryOut,
    DuplicateCandidate,
    IncidentBatch,
    IncidentCreate,
    IncidentEventOut,
    IncidentPublic,
    LocationFix,
    OverdueIncident,
    QueuedIncident,
    Source,
    StatusName,
    TickResult,
    TransitionIn,
)
from api.security import allow, public
from gis.access import ROLES, Principal
from gis.crs import check_lonlat, to_wgs84
from gis.db.config import get_settings
from gis.db.queries.buildings import building_point
from gis.db.queries.incidents import (
    add_photo,
    get_incident,
    insert_incident,
    list_incidents,
    needs_location,
    photos_of,
    set_location,
)
from gis.db.queries.kpis import kpi_frame
from gis.db.queries.workflow import (
    Assignee,
    history,
    overdue,
    possible_duplicates,
    sla_tick,
    transition,
)
from gis.errors import FileFormatError, NotFoundError
from gis.kpis import GROUPINGS, incident_kpis
from gis.media import find_photo, sniff_image, store_photo
from gis.taxonomy import Taxonomy

router = APIRouter(prefix="/incidents", tags=["incidents"])
media_router = APIRouter(tags=["incidents"])
kpi_router = APIRouter(tags=["kpis"])

READERS = ROLES
FIELD = ("admin", "dispatcher", "patroller", "community")
DISPATCH = ("admin", "dispatcher")
# what a grid worker or a community account may do to an incident in their grids
FIELD_STEPS = frozenset({"in_progress", "resolved", "dispatched"})
MAX_PHOTOS = 9  # a WeChat post carries at most nine pictures; so does a report


def _scoped(who: Principal, row: dict[str, Any]) -> dict[str, Any]:
    """The row if it lies in the caller's grids; a 404 otherwise (existence is not told)."""
    chain = (row.get(k) for k in ("micro_grid_id", "grid_id", "community_id", "street_id"))
    if not who.in_scope(*chain):
        raise NotFoundError(f"incident {row['id']} does not exist")
    return row


def photo_root() -> Any:
    """Where photos live on disk (outside the database)."""
    return get_settings().var_dir / "media" / "photos"


def _out(session: SessionDep, row: dict[str, Any], *, duplicates: bool = False) -> IncidentPublic:
    """The API view of an incident row: its photos as URLs, and merge candidates if asked."""
    out = IncidentPublic(**row)
    out.photos = [f"/media/photos/{sha}" for sha in photos_of(session, row["id"])]
    if duplicates and row.get("lon") is not None:
        settings = get_settings()
        out.possible_duplicates = [
            DuplicateCandidate(**d)
            for d in possible_duplicates(
                session,
                row["id"],
                radius_m=settings.duplicate_radius_m,
                hours=settings.duplicate_hours,
            )
        ]
    return out


def create(
    session: SessionDep,
    body: IncidentCreate,
    taxonomy: Taxonomy,
    now: datetime,
    idempotency_key: str | None,
) -> tuple[dict[str, Any], bool]:
    """Intake shared by JSON, form and Open311: check the category, locate, store."""
    category = taxonomy.get(body.category)
    lon = lat = score = None
    building_id = None
    source = None
    if body.lon is not None and body.lat is not None:
        x, y = to_wgs84([body.lon], [body.lat], body.crs)
        check_lonlat(x, y, require_china=True)  # a report of a Chinese street office
        lon, lat, source = float(x[0]), float(y[0]), "point"
    elif body.address:
        match = gazetteer.get(session).resolve(body.address)
        if match is not None and match.building_id is not None:
            lon, lat = building_point(session, match.building_id)
            score, building_id, source = float(match.score), int(match.building_id), "address"
    return insert_incident(
        session,
        category=category.name,
        category_code=category.code,
        severity=body.severity or category.severity,
        source=body.source,
        reported_at=body.reported_at or now,
        lon=lon,
        lat=lat,
        description=body.description,
        address=body.address,
        reporter=body.reporter,
        idempotency_key=idempotency_key,
        location_source=source,
        address_score=score,
        building_id=building_id,
        media_url=body.media_url,
    )


def _read_photo(upload: UploadFile, max_bytes: int) -> bytes:
    data = upload.file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise FileFormatError(f"photo {upload.filename!r} is larger than {max_bytes / 1e6:.0f} MB")
    return data


def _check_photos(photos: list[UploadFile]) -> list[tuple[str, bytes]]:
    """Read and check every photo before anything is stored: count, size and type."""
    if len(photos) > MAX_PHOTOS:
        raise FileFormatError(f"{len(photos)} photos; at most {MAX_PHOTOS} per report")
    max_bytes = get_settings().max_photo_mb * 1_000_000
    checked = []
    for upload in photos:
        data = _read_photo(upload, max_bytes)
        try:
            sniff_image(data)
        except FileFormatError as exc:
            raise FileFormatError(f"photo {upload.filename!r}: {exc}") from None
        checked.append((upload.filename or "photo", data))
    return checked


def _attach(session: SessionDep, incident_id: int, photos: list[tuple[str, bytes]]) -> None:
    max_bytes = get_settings().max_photo_mb * 1_000_000
    for _name, data in photos:
        add_photo(session, incident_id, store_photo(photo_root(), data, max_bytes=max_bytes))


@router.post(
    "",
    response_model=IncidentPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Report an incident (point in any supported CRS, or an address)",
    dependencies=[allow(*FIELD)],
)
def create_incident(
    body: IncidentCreate,
    session: SessionDep,
    response: Response,
    taxonomy: TaxonomyDep,
    clock: ClockDep,
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> IncidentPublic:
    """Store the report and assign its grid chain.

    The category is a code or a name of the taxonomy (``GET /incidents/categories``). A point
    outside every grid is kept as "outside". A report with only an address is matched against
    the building gazetteer: a confident match gets the building's point; anything else goes
    to the needs-location queue (never dropped). Send an ``Idempotency-Key`` header to make
    retries safe: the same key returns the stored incident (200) instead of a second one.
    The answer lists possible duplicates (same category nearby, shortly before or after).
    """
    row, created = create(session, body, taxonomy, clock(), idempotency_key)
    if not created:
        response.status_code = status.HTTP_200_OK
    return _out(session, row, duplicates=True)


@router.post(
    "/form",
    response_model=IncidentPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Report an incident from a form, with up to nine photos (multipart)",
    dependencies=[allow(*FIELD)],
)
def create_incident_form(
    body: Annotated[IncidentCreate, Form()],
    session: SessionDep,
    response: Response,
    taxonomy: TaxonomyDep,
    clock: ClockDep,
    photos: Annotated[list[UploadFile], File(description="JPEG, PNG, WebP or HEIC")] = [],  # noqa: B006
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> IncidentPublic:
    """Like ``POST /incidents`` as ``multipart/form-data`` with ``photos`` files. Photos are
    checked by their bytes (not the declared type) and size, and stored on disk under their
    SHA-256; a retry with the same key stores nothing twice."""
    checked = _check_photos(photos)
    row, created = create(session, body, taxonomy, clock(), idempotency_key)
    _attach(session, row["id"], checked)
    if not created:
        response.status_code = status.HTTP_200_OK
    return _out(session, row, duplicates=True)


@router.post(
    "/batch",
    response_model=list[BatchResult],
    summary="Report many incidents at once (a phone's offline queue), all or nothing",
    dependencies=[allow(*FIELD)],
)
def create_batch(
    body: IncidentBatch, session: SessionDep, taxonomy: TaxonomyDep, clock: ClockDep
) -> list[BatchResult]:
    """Every report carries its own idempotency key; the batch is one transaction, so after
    a failure (a dropped connection, a database restart) nothing of it is stored, and the
    same batch sent again stores each report exactly once. Reports already stored by an
    earlier attempt come back with ``created: false``."""
    keys = [r.idempotency_key for r in body.reports]
    if len(set(keys)) != len(keys):
        raise FileFormatError("the batch repeats an idempotency_key")
    now = clock()
    out = []
    for item in body.reports:
        row, created = create(session, item, taxonomy, now, item.idempotency_key)
        out.append(
            BatchResult(
                idempotency_key=item.idempotency_key,
                id=row["id"],
                created=created,
                location_status=row["location_status"],
            )
        )
    return out


@router.get("", response_model=list[IncidentPublic], summary="Incidents, newest first")
def list_all(
    session: SessionDep,
    who: Annotated[Principal, allow(*READERS)],
    taxonomy: TaxonomyDep,
    status_: Annotated[StatusName | None, Query(alias="status")] = None,
    category: Annotated[str | None, Query(max_length=32, description="code or name")] = None,
    source: Annotated[Source | None, Query()] = None,
    grid: Annotated[
        str | None, Query(pattern="^[0-9]{1,20}$", description="code of any level")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[IncidentPublic]:
    """Filter by status, category (code or name), source and grid code (any level)."""
    rows = list_incidents(
        session,
        status=status_,
        category=taxonomy.get(category).code if category else None,
        source=source,
        grid_code=grid,
        grid_ids=who.grid_ids,
        limit=limit,
        offset=offset,
    )
    return [IncidentPublic(**r) for r in rows]


@router.get(
    "/categories",
    response_model=list[CategoryOut],
    summary="The incident taxonomy",
    dependencies=[public()],
)
def categories(taxonomy: TaxonomyDep) -> list[CategoryOut]:
    """Codes, names, classes, default severity, handling level and deadlines."""
    return [
        CategoryOut(
            code=c.code,
            name=c.name,
            class_code=c.class_code,
            class_name=c.class_name,
            severity=c.severity,
            level=c.level,
            department=c.department,
            description=c.description,
            respond_minutes=c.deadlines.respond.total_seconds() / 60,
            on_site_minutes=c.deadlines.on_site.total_seconds() / 60,
            resolve_same_day=c.deadlines.resolve_same_day,
            resolve_minutes=c.deadlines.resolve.total_seconds() / 60,
        )
        for c in taxonomy
    ]


@router.get(
    "/overdue",
    response_model=list[OverdueIncident],
    summary="Open incidents past their deadline (分色预警)",
    dependencies=[allow(*READERS)],
)
def list_overdue(
    session: SessionDep,
    taxonomy: TaxonomyDep,
    clock: ClockDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[OverdueIncident]:
    """Most overdue first, with the stage (respond / on site / resolve) and the colour."""
    return [
        OverdueIncident(**r)
        for r in overdue(session, clock(), taxonomy, limit=limit, offset=offset)
    ]


@router.post(
    "/sla-tick",
    response_model=TickResult,
    summary="Run the SLA job now",
    dependencies=[allow(*DISPATCH)],
)
def run_sla_tick(session: SessionDep, taxonomy: TaxonomyDep, clock: ClockDep) -> TickResult:
    """Re-colour, escalate overdue incidents, close unevaluated resolved ones (the same job as
    ``wangge sla tick``)."""
    return TickResult(**sla_tick(session, clock(), taxonomy))


@router.get(
    "/needs-location",
    response_model=list[QueuedIncident],
    summary="Reports waiting for a location, with address candidates",
    dependencies=[allow(*DISPATCH)],
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
    dependencies=[allow(*DISPATCH)],
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
    return _out(session, row)


@router.post(
    "/{incident_id}/transitions",
    response_model=IncidentPublic,
    summary="Move an incident one step (受理/派单/处置/反馈/评价/结案...)",
    responses={409: {"description": "illegal step, or a stale expected_version"}},
)
def post_transition(
    incident_id: int,
    body: TransitionIn,
    session: SessionDep,
    who: Annotated[Principal, allow(*FIELD)],
    taxonomy: TaxonomyDep,
    clock: ClockDep,
) -> IncidentPublic:
    """A step the state machine does not allow from the current status gets 409 with the
    allowed ones. ``dispatched`` without an assignee routes by the rules (grid worker of the
    micro grid first; community, street office or department by category and severity). An
    evaluation with satisfaction 1–2 reopens the incident. Every step is audited."""
    _scoped(who, get_incident(session, incident_id))
    if who.role in ("patroller", "community") and body.to not in FIELD_STEPS:
        raise HTTPException(403, f"role {who.role!r} may not move an incident to {body.to}")
    assignee = None
    if body.assignee is not None:
        assignee = Assignee(
            body.assignee.kind,
            staff_id=body.assignee.staff_id,
            grid_id=body.assignee.grid_id,
            name=body.assignee.name,
        )
    transition(
        session,
        incident_id,
        body.to,
        actor=body.actor,
        at=clock(),
        taxonomy=taxonomy,
        note=body.note,
        expected_version=body.expected_version,
        assignee=assignee,
        satisfaction=body.satisfaction,
        comment=body.comment,
        duplicate_of=body.duplicate_of,
    )
    return _out(session, get_incident(session, incident_id))


@router.get(
    "/{incident_id}/history",
    response_model=list[IncidentEventOut],
    summary="The audit trail of an incident",
)
def read_history(
    incident_id: int, session: SessionDep, who: Annotated[Principal, allow(*READERS)]
) -> list[IncidentEventOut]:
    """Every transition, escalation and colour change: who, when, from what to what, why."""
    _scoped(who, get_incident(session, incident_id))
    return [IncidentEventOut(**e) for e in history(session, incident_id)]


@router.get(
    "/{incident_id}/duplicates",
    response_model=list[DuplicateCandidate],
    summary="Possible duplicates to merge",
)
def read_duplicates(
    incident_id: int,
    session: SessionDep,
    who: Annotated[Principal, allow(*READERS)],
    radius_m: Annotated[float, Query(gt=0, le=1000)] = 50.0,
    hours: Annotated[float, Query(gt=0, le=720)] = 24.0,
) -> list[DuplicateCandidate]:
    """Same category within ``radius_m`` and ``hours``; merge one with a ``duplicate``
    transition naming the original (``duplicate_of``)."""
    _scoped(who, get_incident(session, incident_id))
    return [
        DuplicateCandidate(**d)
        for d in possible_duplicates(session, incident_id, radius_m=radius_m, hours=hours)
    ]


@router.post(
    "/{incident_id}/photos",
    response_model=IncidentPublic,
    summary="Add photos to an incident (multipart)",
)
def post_photos(
    incident_id: int,
    session: SessionDep,
    who: Annotated[Principal, allow(*FIELD)],
    photos: Annotated[list[UploadFile], File(description="JPEG, PNG, WebP or HEIC")],
) -> IncidentPublic:
    """The same photo twice is stored once."""
    _scoped(who, get_incident(session, incident_id))
    _attach(session, incident_id, _check_photos(photos))
    return _out(session, get_incident(session, incident_id))


@router.get("/{incident_id}", response_model=IncidentPublic, summary="One incident")
def read_incident(
    incident_id: int, session: SessionDep, who: Annotated[Principal, allow(*READERS)]
) -> IncidentPublic:
    """An incident with its grid chain, status, handler, colour and photos."""
    return _out(session, _scoped(who, get_incident(session, incident_id)))


@media_router.get(
    "/media/photos/{sha256}",
    response_class=FileResponse,
    summary="A stored photo by its SHA-256",
    dependencies=[allow(*READERS)],
)
def read_photo(sha256: Annotated[str, PathParam(pattern="^[0-9a-f]{64}$")]) -> FileResponse:
    """Photos are content-addressed: the URL is the hash of the bytes."""
    found = find_photo(photo_root(), sha256)
    if found is None:
        raise NotFoundError("no such photo")
    path, kind = found
    return FileResponse(path, media_type=kind)


@kpi_router.get(
    "/kpis",
    summary="KPIs per grid, community, worker and period (JSON or CSV)",
    dependencies=[allow("admin", "leader", "dispatcher")],
)
def read_kpis(
    session: SessionDep,
    taxonomy: TaxonomyDep,
    by: Annotated[
        list[str],
        Query(description=f"group by any of: {', '.join(GROUPINGS)}; repeat for several"),
    ] = ["community"],  # noqa: B006
    start: datetime | None = None,
    end: datetime | None = None,
    format_: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> Any:
    """Counts, 处置率 (handled rate), on-time rate, median response and resolution time,
    satisfaction and the share closed inside the grid (小事不出格), per group."""
    frame = kpi_frame(
        session,
        taxonomy,
        start=start.astimezone(UTC) if start else None,
        end=end.astimezone(UTC) if end else None,
    )
    table = incident_kpis(frame, by)
    if format_ == "csv":
        return PlainTextResponse(
            table.to_csv(index=False),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="kpis.csv"'},
        )
    return table.to_dict(orient="records")
