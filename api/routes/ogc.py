"""OGC API - Features for the grid layers (Part 1 core + GeoJSON, Part 4 create/replace/delete).

One collection per level (``street``, ``community``, ``grid``, ``micro``, ``dedicated``);
feature ids are the grid codes (stable across versions), coordinates WGS84 (CRS84). Items
page with ``limit`` / ``offset`` and ``next`` / ``prev`` links and filter by ``bbox``. QGIS
("WFS / OGC API - Features" source), GDAL's OAPIF driver and OWSLib read them; a client signs
in with the usual bearer token (GDAL: ``GDAL_HTTP_HEADERS="Authorization: Bearer ..."``).

Part 4 writes go through the audited planning machinery, for planners only:

* ``POST .../items`` — a Feature with ``properties.parent`` (the parent's code) creates a
  child grid clipped to its parent (siblings give up what it covers); 201 with ``Location``;
* ``PUT .../items/{code}`` — a new outline (neighbours give and take the difference);
  optimistic locking by ``If-Match: "<version>"`` (the item's ``ETag``) or
  ``properties.version``; a stale version is 412 (If-Match) or 409;
* ``DELETE .../items/{code}`` — the grid is merged into the sibling sharing the longest edge
  (the parent stays tiled; children move along), audited as a merge. Street offices and
  grids with no adjacent sibling cannot be deleted (422).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import shapely
from fastapi import APIRouter, Body, Depends, Header, HTTPException, Path, Query, Request, status
from fastapi.responses import JSONResponse, Response
from shapely.errors import ShapelyError
from shapely.geometry import shape
from sqlalchemy import text

from api.deps import SessionDep
from api.security import allow
from gis.access import ROLES, Principal
from gis.crs import check_lonlat
from gis.db.queries import planning
from gis.db.queries.exchange import grid_id_version, level_summary, ogc_item, ogc_items
from gis.errors import InvalidGeometryError
from gis.grids import LEVELS
from maps.style import level_label

router = APIRouter(prefix="/ogc", tags=["ogc"])
PLANNERS = ("admin", "planner")
GEOJSON = "application/geo+json"
JSON = "application/json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/features",
]
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_VERTICES = 10_000


def _known_collection(
    collection_id: Annotated[str, Path(max_length=20, description="a grid level")],
) -> str:
    """The collection id (a grid level); 404 for any other."""
    if collection_id not in LEVELS:
        raise HTTPException(404, f"no collection {collection_id!r}; collections: {list(LEVELS)}")
    return collection_id


CollectionId = Annotated[str, Depends(_known_collection)]
LEVEL_TITLE = {lv: f"{level_label(lv)} ({lv})" for lv in LEVELS}
ITEM_PARAMS = frozenset({"bbox", "bbox-crs", "crs", "limit", "offset", "f"})
CRS84_NAMES = frozenset({CRS84, "CRS84", "OGC:CRS84", "urn:ogc:def:crs:OGC:1.3:CRS84"})
FeatureId = Annotated[str, Path(max_length=32, description="the grid code")]
FormatParam = Annotated[Literal["json", "geojson"] | None, Query(description="only JSON is served")]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/ogc"


def _json(body: dict[str, Any], media_type: str = JSON, **kw: Any) -> JSONResponse:
    return JSONResponse(body, media_type=media_type, **kw)


@router.get("", summary="OGC API landing page", dependencies=[allow(*ROLES)])
@router.get("/", include_in_schema=False, dependencies=[allow(*ROLES)])
def landing(request: Request, f: FormatParam = None) -> JSONResponse:
    """Links to the API definition, the conformance declaration and the collections."""
    base = _base(request)
    return _json(
        {
            "title": "Wangge 网格 — grid layers",
            "description": "Community grid network (网格) as OGC API - Features, one collection "
            "per level.",
            "links": [
                {"href": f"{base}", "rel": "self", "type": JSON, "title": "this document"},
                {
                    "href": str(request.base_url).rstrip("/") + "/openapi.json",
                    "rel": "service-desc",
                    "type": OPENAPI,
                    "title": "the API definition",
                },
                {
                    "href": str(request.base_url).rstrip("/") + "/docs",
                    "rel": "service-doc",
                    "type": "text/html",
                    "title": "the API documentation",
                },
                {"href": f"{base}/conformance", "rel": "conformance", "type": JSON},
                {"href": f"{base}/collections", "rel": "data", "type": JSON},
            ],
        }
    )


@router.get("/conformance", summary="OGC API conformance", dependencies=[allow(*ROLES)])
def conformance(f: FormatParam = None) -> JSONResponse:
    """The conformance classes implemented."""
    return _json({"conformsTo": CONFORMANCE})


def _collection(base: str, level: str, info: dict[str, Any]) -> dict[str, Any]:
    bbox = info["bbox"] or [-180.0, -90.0, 180.0, 90.0]
    return {
        "id": level,
        "title": LEVEL_TITLE[level],
        "description": f"{info['count']} {level} grids; id = grid code (GB/T 30428.1 style)",
        "itemType": "feature",
        "crs": [CRS84],
        "storageCrs": CRS84,
        "extent": {"spatial": {"bbox": [[float(v) for v in bbox]], "crs": CRS84}},
        "links": [
            {"href": f"{base}/collections/{level}", "rel": "self", "type": JSON},
            {
                "href": f"{base}/collections/{level}/items",
                "rel": "items",
                "type": GEOJSON,
                "title": f"{level} grids",
            },
        ],
    }


@router.get("/collections", summary="OGC API collections", dependencies=[allow(*ROLES)])
def collections(request: Request, session: SessionDep, f: FormatParam = None) -> JSONResponse:
    """One collection per grid level, with its extent."""
    base = _base(request)
    summary = level_summary(session)
    return _json(
        {
            "links": [{"href": f"{base}/collections", "rel": "self", "type": JSON}],
            "collections": [_collection(base, lv, summary[lv]) for lv in LEVELS],
        }
    )


@router.get(
    "/collections/{collection_id}",
    summary="OGC API collection",
    dependencies=[allow(*ROLES)],
)
def collection(
    request: Request, session: SessionDep, collection_id: CollectionId, f: FormatParam = None
) -> JSONResponse:
    """One level's collection description."""
    return _json(_collection(_base(request), collection_id, level_summary(session)[collection_id]))


def _bbox(raw: str | None) -> tuple[float, float, float, float] | None:
    if raw is None:
        return None
    try:
        vals = [float(v) for v in raw.split(",")]
    except ValueError:
        raise HTTPException(400, "bbox must be numbers: minx,miny,maxx,maxy") from None
    if len(vals) == 6:  # minx,miny,minz,maxx,maxy,maxz
        vals = [vals[0], vals[1], vals[3], vals[4]]
    if len(vals) != 4:
        raise HTTPException(400, "bbox must have 4 (or 6) numbers: minx,miny,maxx,maxy")
    x0, y0, x1, y1 = vals
    if not (-180 <= x0 <= 180 and -180 <= x1 <= 180 and -90 <= y0 <= 90 and -90 <= y1 <= 90):
        raise HTTPException(400, "bbox is outside lon -180..180, lat -90..90 (CRS84)")
    if y0 > y1:
        raise HTTPException(400, "bbox miny is greater than maxy")
    if x0 > x1:
        raise HTTPException(400, "bbox crossing the antimeridian is not supported here")
    return x0, y0, x1, y1


def _feature(rec: dict[str, Any], geometry: Any, base: str, level: str) -> dict[str, Any]:
    code = str(rec["code"])
    return {
        "type": "Feature",
        "id": code,
        "geometry": shapely.geometry.mapping(geometry),
        "properties": {
            "code": code,
            "name": rec["name"],
            "level": rec["level"],
            "parent": rec["parent_code"],
            "kind": rec["kind"],
            "households": int(rec["households"]),
            "residents": int(rec["residents"]),
            "version": int(rec["version"]),
            "updated_at": rec["updated_at"].isoformat() if rec["updated_at"] else None,
        },
        "links": [
            {"href": f"{base}/collections/{level}/items/{code}", "rel": "self", "type": GEOJSON},
            {"href": f"{base}/collections/{level}", "rel": "collection", "type": JSON},
        ],
    }


@router.get(
    "/collections/{collection_id}/items",
    summary="OGC API items (GeoJSON)",
    dependencies=[allow(*ROLES)],
    response_class=JSONResponse,
    responses={200: {"content": {GEOJSON: {}}}},
)
def items(
    request: Request,
    session: SessionDep,
    collection_id: CollectionId,
    bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy in CRS84")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    f: FormatParam = None,
) -> JSONResponse:
    """A page of grids ordered by code, with numberMatched, numberReturned and next/prev
    links. A ``limit`` above 1000 is served as 1000 (as the standard allows)."""
    unknown = set(request.query_params) - ITEM_PARAMS
    if unknown:
        raise HTTPException(400, f"unknown query parameters: {', '.join(sorted(unknown))}")
    for name in ("crs", "bbox-crs"):
        value = request.query_params.get(name)
        if value is not None and value not in CRS84_NAMES:
            raise HTTPException(400, f"{name} {value!r} is not offered; only {CRS84}")
    limit = min(limit, MAX_LIMIT)
    frame, matched = ogc_items(session, collection_id, bbox=_bbox(bbox), limit=limit, offset=offset)
    base = _base(request)
    url = f"{base}/collections/{collection_id}/items"
    keep = {k: v for k, v in request.query_params.items() if k in ("bbox", "f")}

    def page(off: int) -> str:
        return f"{url}?{urlencode({**keep, 'limit': limit, 'offset': off})}"

    links = [
        {"href": page(offset), "rel": "self", "type": GEOJSON},
        {"href": f"{base}/collections/{collection_id}", "rel": "collection", "type": JSON},
    ]
    if offset + len(frame) < matched:
        links.append({"href": page(offset + limit), "rel": "next", "type": GEOJSON})
    if offset > 0:
        links.append({"href": page(max(0, offset - limit)), "rel": "prev", "type": GEOJSON})
    records = frame.drop(columns="geometry").to_dict("records")
    feats = [
        _feature(rec, geom, base, collection_id)
        for rec, geom in zip(records, frame.geometry.values, strict=True)
    ]
    return _json(
        {
            "type": "FeatureCollection",
            "timeStamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "numberMatched": matched,
            "numberReturned": len(feats),
            "features": feats,
            "links": links,
        },
        media_type=GEOJSON,
        headers={"Content-Crs": f"<{CRS84}>"},
    )


def _one(session: SessionDep, level: str, code: str) -> tuple[dict[str, Any], Any]:
    frame = ogc_item(session, level, code)
    if frame.empty:
        raise HTTPException(404, f"no {level} grid with code {code}")
    rec = frame.drop(columns="geometry").to_dict("records")[0]
    return rec, frame.geometry.iloc[0]


@router.get(
    "/collections/{collection_id}/items/{feature_id}",
    summary="OGC API item (GeoJSON)",
    dependencies=[allow(*ROLES)],
    response_class=JSONResponse,
    responses={200: {"content": {GEOJSON: {}}}},
)
def item(
    request: Request,
    session: SessionDep,
    collection_id: CollectionId,
    feature_id: FeatureId,
    f: FormatParam = None,
) -> JSONResponse:
    """One grid by code; its ``ETag`` is the grid version (for Part 4 If-Match)."""
    rec, geom = _one(session, collection_id, feature_id)
    return _json(
        _feature(rec, geom, _base(request), collection_id),
        media_type=GEOJSON,
        headers={"ETag": f'"{rec["version"]}"', "Content-Crs": f"<{CRS84}>"},
    )


# --- Part 4: create, replace, delete ---------------------------------------------------------


def _body_geometry(body: dict[str, Any]) -> Any:
    if not isinstance(body, dict) or body.get("type") != "Feature":
        raise InvalidGeometryError("the body must be a GeoJSON Feature")
    try:
        geom = shape(body.get("geometry") or {})
    except (ValueError, TypeError, AttributeError, IndexError, KeyError, ShapelyError) as exc:
        raise InvalidGeometryError(f"the Feature's geometry is not valid GeoJSON: {exc}") from None
    if geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise InvalidGeometryError("a grid must be a non-empty Polygon or MultiPolygon")
    xy = shapely.get_coordinates(geom)
    if len(xy) > MAX_VERTICES:
        raise InvalidGeometryError(f"at most {MAX_VERTICES:,} vertices are accepted")
    check_lonlat(xy[:, 0], xy[:, 1], require_china=True)
    if not shapely.is_valid(geom):
        raise InvalidGeometryError(f"invalid geometry: {shapely.is_valid_reason(geom)}")
    return geom


def _props(body: dict[str, Any]) -> dict[str, Any]:
    props = body.get("properties") or {}
    if not isinstance(props, dict):
        raise InvalidGeometryError("properties must be an object")
    return props


def _text(value: object, limit: int = 500) -> str:
    return str(value)[:limit] if value is not None else ""


@router.post(
    "/collections/{collection_id}/items",
    status_code=201,
    summary="OGC API Part 4: create a grid",
    responses={201: {"description": "created; Location names the new item"}},
)
def create_item(
    request: Request,
    session: SessionDep,
    who: Annotated[Principal, allow(*PLANNERS)],
    collection_id: CollectionId,
    body: Annotated[dict[str, Any], Body(media_type=GEOJSON)],
) -> Response:
    """A child grid drawn inside ``properties.parent`` (a code), clipped to it."""
    geom = _body_geometry(body)
    props = _props(body)
    parent_code = props.get("parent")
    if not parent_code:
        raise HTTPException(422, "properties.parent (the parent grid's code) is required")
    parent = session.execute(
        text("SELECT id, level FROM grids WHERE code = :c"), {"c": str(parent_code)[:32]}
    ).one_or_none()
    if parent is None:
        raise HTTPException(422, f"parent {parent_code} does not exist")
    want = {"street": "community", "community": "grid", "grid": "micro"}.get(parent.level)
    if collection_id != want:
        raise HTTPException(
            422, f"a child of a {parent.level} grid is a {want} grid, not a {collection_id}"
        )
    res = planning.create_grid(
        session,
        int(parent.id),
        geom,
        name=_text(props.get("name"), 200),
        who=who.username,
        why=_text(props.get("reason")) or "OGC API create",
    )
    code = session.execute(
        text("SELECT code FROM grids WHERE id = :i"), {"i": res.created[0]}
    ).scalar_one()
    loc = f"{_base(request)}/collections/{collection_id}/items/{code}"
    return Response(status_code=201, headers={"Location": loc})


def _version(if_match: str | None, props: dict[str, Any], current: int) -> int:
    if if_match is not None:
        tag = if_match.strip().removeprefix("W/").strip('"')
        if tag != str(current):
            raise HTTPException(
                status.HTTP_412_PRECONDITION_FAILED,
                f"If-Match {if_match} is stale: the grid is at version {current}",
            )
        return current
    if "version" in props:
        try:
            return int(props["version"])
        except (TypeError, ValueError):
            raise HTTPException(422, "properties.version must be an integer") from None
    raise HTTPException(
        status.HTTP_428_PRECONDITION_REQUIRED,
        "send If-Match with the item's ETag (or properties.version) to replace it",
    )


@router.put(
    "/collections/{collection_id}/items/{feature_id}",
    status_code=204,
    summary="OGC API Part 4: replace a grid's outline",
)
def replace_item(
    session: SessionDep,
    who: Annotated[Principal, allow(*PLANNERS)],
    collection_id: CollectionId,
    feature_id: FeatureId,
    body: Annotated[dict[str, Any], Body(media_type=GEOJSON)],
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    """A new outline as a new audited version; neighbours give and take the difference."""
    found = grid_id_version(session, collection_id, feature_id)
    if found is None:
        raise HTTPException(404, f"no {collection_id} grid with code {feature_id}")
    gid, current = found
    geom = _body_geometry(body)
    props = _props(body)
    version = _version(if_match, props, current)
    planning.reshape_grid(
        session,
        gid,
        geom,
        version=version,
        who=who.username,
        why=_text(props.get("reason")) or "OGC API replace",
    )
    return Response(status_code=204)


@router.delete(
    "/collections/{collection_id}/items/{feature_id}",
    status_code=204,
    summary="OGC API Part 4: delete a grid (merged into its neighbour)",
)
def delete_item(
    session: SessionDep,
    who: Annotated[Principal, allow(*PLANNERS)],
    collection_id: CollectionId,
    feature_id: FeatureId,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The grid is merged into the sibling sharing its longest edge, so the parent stays
    tiled; its history is kept."""
    found = grid_id_version(session, collection_id, feature_id)
    if found is None:
        raise HTTPException(404, f"no {collection_id} grid with code {feature_id}")
    gid, current = found
    if if_match is not None:
        _version(if_match, {}, current)
    neighbour = session.execute(
        text(
            """
            SELECT n.id, n.version FROM grids g JOIN grids n
              ON n.parent_id = g.parent_id AND n.level = g.level AND n.id <> g.id
             AND n.geom && ST_Expand(g.geom, 0.0001)
            WHERE g.id = :id
            ORDER BY ST_Length(ST_Intersection(ST_Boundary(g.geom),
                                               ST_Buffer(ST_Boundary(n.geom), 0.000001))) DESC,
                     n.code
            LIMIT 1
            """
        ),
        {"id": gid},
    ).one_or_none()
    if neighbour is None:
        raise HTTPException(
            422, f"grid {feature_id} has no adjacent sibling to merge into; it cannot be deleted"
        )
    planning.merge_grids(
        session,
        int(neighbour.id),
        gid,
        version=int(neighbour.version),
        other_version=current,
        who=who.username,
        why=f"OGC API delete of {feature_id}",
    )
    return Response(status_code=204)
