"""Residents: QR codes on buildings and grids, the report page they open, phone verification
by one-time code, reports with a photo, following them and rating the result (群众评单)."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, Response, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from api.deps import ClockDep, SessionDep, TaxonomyDep
from api.routes.incidents import _attach, _check_photos, create
from api.schemas.incidents import IncidentCreate
from api.security import _secret, allow, create_token, public
from gis.access import RESIDENT, Principal
from gis.db.config import get_settings
from gis.db.queries.incidents import get_incident
from gis.db.queries.residents import (
    buildings_of_community,
    own_reports,
    owner_key,
    place_of_building,
    place_of_grid,
    set_reporter_key,
    store_code,
    use_code,
)
from gis.db.queries.workflow import transition
from gis.errors import NotFoundError
from gis.residents import CodePolicy, mask_phone, new_code, normalise_phone, phone_key
from maps.qr import Label, building_url, grid_url, qr_png, sheet_pdf
from maps.resident import resident_page

log = logging.getLogger(__name__)
router = APIRouter(tags=["residents"])
POLICY = CodePolicy()


class PhoneIn(BaseModel):
    """A resident's phone number."""

    phone: str = Field(min_length=11, max_length=20)


class CodeIn(PhoneIn):
    """The number and the code sent to it."""

    code: str = Field(pattern=r"^\d{6}$")


class EvaluationIn(BaseModel):
    """The resident's rating of how their report was handled."""

    satisfaction: int = Field(ge=1, le=5)
    comment: str | None = Field(default=None, max_length=500)


def _base() -> str:
    settings = get_settings()
    return settings.public_url or f"http://{settings.host}:{settings.port}"


@router.get("/r/b/{building_id}", response_class=HTMLResponse, dependencies=[public()],
            include_in_schema=False)  # fmt: skip
def building_page(building_id: int, session: SessionDep) -> HTMLResponse:
    """The report page a building's QR code opens."""
    place = place_of_building(session, building_id)
    if place is None:
        raise NotFoundError(f"building {building_id} does not exist")
    return HTMLResponse(resident_page({**place, "building_id": building_id}))


@router.get("/r/g/{grid_code}", response_class=HTMLResponse, dependencies=[public()],
            include_in_schema=False)  # fmt: skip
def grid_page(
    grid_code: Annotated[str, PathParam(pattern=r"^\d{9,20}$")], session: SessionDep
) -> HTMLResponse:
    """The report page a grid's QR code opens."""
    place = place_of_grid(session, grid_code)
    if place is None:
        raise NotFoundError(f"grid {grid_code} does not exist")
    return HTMLResponse(resident_page({**place, "grid_code": grid_code}))


@router.get("/qr/buildings/{building_id}.png", dependencies=[allow("admin", "community",
            "dispatcher", "patroller")], summary="A building's QR code (PNG)")  # fmt: skip
def building_qr(building_id: int, session: SessionDep) -> Response:
    """Opens the report form for this building."""
    if place_of_building(session, building_id) is None:
        raise NotFoundError(f"building {building_id} does not exist")
    return Response(qr_png(building_url(_base(), building_id)), media_type="image/png")


@router.get("/qr/grids/{grid_code}.png", dependencies=[allow("admin", "community", "dispatcher",
            "patroller")], summary="A grid's QR code (PNG)")  # fmt: skip
def grid_qr(
    grid_code: Annotated[str, PathParam(pattern=r"^\d{9,20}$")], session: SessionDep
) -> Response:
    """Opens the report form for this grid."""
    if place_of_grid(session, grid_code) is None:
        raise NotFoundError(f"grid {grid_code} does not exist")
    return Response(qr_png(grid_url(_base(), grid_code)), media_type="image/png")


@router.get("/qr/communities/{code}.pdf", dependencies=[allow("admin", "community",
            "dispatcher")], summary="A printable A4 sheet of a community's QR codes")  # fmt: skip
def community_sheet(
    code: Annotated[str, PathParam(pattern=r"^\d{9,20}$")], session: SessionDep
) -> Response:
    """One code per building, labelled with its address and micro grid (20 per page)."""
    buildings = buildings_of_community(session, code)
    if not buildings:
        raise NotFoundError(f"community {code} has no buildings (or does not exist)")
    base = _base()
    labels = [
        Label(building_url(base, b["id"]), b["address"], f"{b['micro_name']} · 扫码上报")
        for b in buildings
    ]
    pdf = sheet_pdf(f"居民扫码上报 · 社区 {code}", labels)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="qr-{code}.pdf"'},
    )


@router.post("/resident/code", status_code=202, dependencies=[public()],
             summary="Send a one-time code to a resident's phone")  # fmt: skip
def send_code(body: PhoneIn, session: SessionDep, clock: ClockDep) -> dict[str, Any]:
    """There is no SMS gateway in this build: the code is written to the server log (the
    development set-up); at most three codes per number per ten minutes."""
    phone = normalise_phone(body.phone)
    key = phone_key(phone, _secret())
    code = new_code()
    store_code(session, key=key, code=code, now=clock(), policy=POLICY)
    log.info("one-time code for %s: %s", mask_phone(phone), code)
    return {"sent_to": mask_phone(phone), "expires_in": int(POLICY.ttl.total_seconds())}


@router.post("/resident/verify", dependencies=[public()], summary="Verify the code: a token")
def verify_code(body: CodeIn, session: SessionDep, clock: ClockDep) -> Any:
    """A wrong code counts against the five tries of that code (and is stored: the answer is
    400, the transaction still commits)."""
    phone = normalise_phone(body.phone)
    key = phone_key(phone, _secret())
    problem = use_code(session, key=key, code=body.code, now=clock(), policy=POLICY)
    if problem:
        return JSONResponse(status_code=400, content={"detail": problem, "error": "CodeError"})
    return {
        "access_token": create_token(f"resident:{key}", RESIDENT),
        "token_type": "bearer",
        "phone": mask_phone(phone),
    }


@router.post("/resident/reports", status_code=201, summary="A resident's report with a photo")
def resident_report(
    who: Annotated[Principal, allow(RESIDENT)],
    session: SessionDep,
    taxonomy: TaxonomyDep,
    clock: ClockDep,
    category: Annotated[str, Form(max_length=32)],
    description: Annotated[str | None, Form(max_length=1000)] = None,
    building_id: Annotated[int | None, Form()] = None,
    grid_code: Annotated[str | None, Form(pattern=r"^\d{9,20}$")] = None,
    photos: Annotated[list[UploadFile], File()] = [],  # noqa: B006
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> dict[str, Any]:
    """Placed at the building or grid of the QR code; source 随手拍."""
    if building_id is not None:
        place = place_of_building(session, building_id)
    elif grid_code is not None:
        place = place_of_grid(session, grid_code)
    else:
        place = None
    if place is None:
        raise NotFoundError("the report needs the building or grid of its QR code")
    checked = _check_photos(photos)
    body = IncidentCreate(
        category=category,
        source="随手拍",
        description=description,
        lon=place["lon"],
        lat=place["lat"],
        address=place["address"],
    )
    key = who.subject or ""
    retry_key = f"resident:{key[:16]}:{idempotency_key}" if idempotency_key else None
    row, _created = create(session, body, taxonomy, clock(), retry_key)
    set_reporter_key(session, row["id"], key)
    _attach(session, row["id"], checked)
    return {"id": row["id"], "status": row["status"], "category": row["category"]}


@router.get("/resident/reports", summary="A resident's own reports")
def resident_reports(
    who: Annotated[Principal, allow(RESIDENT)], session: SessionDep
) -> list[dict[str, Any]]:
    """Only the reports made with this phone number."""
    return own_reports(session, who.subject or "")


@router.post("/resident/reports/{incident_id}/evaluate", summary="Rate the result (群众评单)")
def resident_evaluate(
    incident_id: int,
    body: EvaluationIn,
    who: Annotated[Principal, allow(RESIDENT)],
    session: SessionDep,
    taxonomy: TaxonomyDep,
    clock: ClockDep,
) -> dict[str, Any]:
    """1–5 and a comment on a resolved report of one's own; 1–2 reopens it."""
    if owner_key(session, incident_id) != who.subject:
        raise NotFoundError(f"incident {incident_id} does not exist")
    passed = transition(
        session,
        incident_id,
        "evaluated",
        actor="居民",
        at=clock(),
        taxonomy=taxonomy,
        satisfaction=body.satisfaction,
        comment=body.comment,
    )
    return {"id": incident_id, "status": get_incident(session, incident_id)["status"],
            "passed": passed}  # fmt: skip
