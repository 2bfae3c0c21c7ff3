"""Grid layer exchange: export to files, import through the planning machinery, and 多网融合
(fusing another department's grids with ours: crosswalk table and map)."""

from __future__ import annotations

import io
import json
from typing import Annotated, Any, Literal

import geopandas as gpd
import pandas as pd
from fastapi import APIRouter, File, Form, HTTPException, Query, UploadFile, status
from fastapi.responses import HTMLResponse, JSONResponse, Response

from api.deps import SessionDep
from api.security import allow
from gis.access import ROLES, Principal
from gis.db.queries.exchange import buildings_frame, import_grids
from gis.db.queries.grids import grids_frame
from gis.exchange import FORMATS, LayerRejectedError, read_features, read_layer, write_layer
from gis.fusion import Crosswalk, FusionThresholds, crosswalk
from maps.fusion import build_fusion_page, fusion_form_page

router = APIRouter(tags=["exchange"])
PLANNERS = ("admin", "planner")
MAX_LAYER_BYTES = 50_000_000

Level = Literal["street", "community", "grid", "micro", "dedicated"]
FusionLevel = Literal["community", "grid", "micro"]
FileFormat = Literal["geojson", "gpkg", "shp", "kml"]
CRSName = Literal["wgs84", "cgcs2000", "gcj02", "bd09"]
Table = Literal["pairs", "theirs", "ours", "changes"]


def _read(upload: UploadFile) -> tuple[bytes, str]:
    data = upload.file.read(MAX_LAYER_BYTES + 1)
    if len(data) > MAX_LAYER_BYTES:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"{upload.filename}: over the {MAX_LAYER_BYTES // 1_000_000} MB limit for a layer",
        )
    return data, upload.filename or "upload"


def _rejected(exc: LayerRejectedError) -> JSONResponse:
    """422 naming every problem (reason and location), nothing stored."""
    return JSONResponse(
        status_code=422,
        content={"detail": str(exc), "error": type(exc).__name__, "problems": exc.problems},
    )


@router.get(
    "/grids/export",
    summary="Export a grid level as GeoJSON, GeoPackage, zipped Shapefile or KML",
    dependencies=[allow(*ROLES)],
    response_class=Response,
    responses={200: {"content": {k.media_type: {} for k in FORMATS.values()}}},
)
def export_grids(
    session: SessionDep,
    level: Level,
    format: FileFormat = "geojson",
    crs: Annotated[
        CRSName, Query(description="coordinates of the file: wgs84, cgcs2000, gcj02, bd09")
    ] = "wgs84",
) -> Response:
    """One file with the grids of a level: code, name, level, parent, households, residents,
    version. GCJ-02 and BD-09 coordinates carry a WGS84 label (they have no EPSG code)."""
    frame = grids_frame(session, level=level)
    if frame.empty:
        raise HTTPException(404, f"there are no {level} grids")
    data = write_layer(frame, format, crs=crs, layer=f"wangge_{level}")
    kind = FORMATS[format]
    name = f"wangge_{level}_{crs}{kind.extension}"
    return Response(
        data,
        media_type=kind.media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.post(
    "/grids/import",
    summary="Import a grid layer (all or nothing, audited versions)",
)
def import_layer(
    session: SessionDep,
    who: Annotated[Principal, allow(*PLANNERS)],
    file: Annotated[UploadFile, File(description=".geojson, .gpkg, .zip (Shapefile) or .kml")],
    crs: Annotated[CRSName, Form(description="the CRS of the file's coordinates")],
    repair: Annotated[bool, Form(description="repair invalid geometry (make_valid)")] = False,
    dry_run: Annotated[bool, Form(description="check and report, store nothing")] = False,
    reason: Annotated[str, Form(max_length=500)] = "layer import",
) -> Any:
    """New codes create grids, existing codes get the file's outline as a new version,
    unchanged outlines are left alone; nothing is deleted. The hierarchy of every family
    touched is checked afterwards: a new gap, overlap, spill or sliver refuses the whole file
    (422 with ``problems``: kind, grids, area_m2, location)."""
    data, filename = _read(file)
    try:
        layer = read_layer(data, filename, crs=crs, repair=repair)
        with session.begin_nested() as savepoint:
            report = import_grids(
                session,
                layer.frame,
                who=who.username,
                why=f"import of {filename}: {reason}",
                repaired=layer.repaired,
            )
            if dry_run:
                savepoint.rollback()
    except LayerRejectedError as exc:
        return _rejected(exc)
    return {"file": filename, "crs": crs, "dry_run": dry_run, **report.as_dict()}


def _crosswalk(
    session: SessionDep,
    data: bytes,
    filename: str,
    crs: str,
    level: str,
    repair: bool,
    thresholds: FusionThresholds,
) -> tuple[Crosswalk, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    foreign = read_features(data, filename, crs=crs, repair=repair, require_code=False).frame
    ours = grids_frame(session, level=level)
    if ours.empty:
        raise HTTPException(404, f"there are no {level} grids to compare with")
    minx, miny, maxx, maxy = (float(v) for v in foreign.total_bounds)
    ox0, oy0, ox1, oy1 = (float(v) for v in ours.total_bounds)
    bbox = (min(minx, ox0), min(miny, oy0), max(maxx, ox1), max(maxy, oy1))
    result = crosswalk(ours, foreign, buildings_frame(session, bbox), thresholds=thresholds)
    return result, ours, foreign


def _thresholds(
    match_share: float, sliver_share: float, sliver_width_m: float, min_area_m2: float
) -> FusionThresholds:
    return FusionThresholds(
        match_share=match_share,
        sliver_share=sliver_share,
        sliver_width_m=sliver_width_m,
        min_area_m2=min_area_m2,
    )


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records", force_ascii=False))


def _summary(cw: Crosswalk) -> dict[str, int]:
    status_counts = cw.theirs["status"].value_counts().to_dict() if len(cw.theirs) else {}
    return {
        "ours": len(cw.ours),
        "theirs": len(cw.theirs),
        "pairs": len(cw.pairs),
        "slivers": len(cw.slivers),
        "fused": len(cw.fused),
        "aligned": int(status_counts.get("aligned", 0)),
        "misaligned": int(status_counts.get("misaligned", 0)),
        "spans": int(status_counts.get("spans", 0)),
        "outside": int(status_counts.get("outside", 0)),
        "absorbed": int((cw.changes["action"] == "absorb").sum()) if len(cw.changes) else 0,
    }


@router.post(
    "/fusion/crosswalk",
    summary="多网融合: crosswalk another department's grids with ours (JSON or CSV)",
    dependencies=[allow(*PLANNERS)],
    responses={200: {"content": {"application/json": {}, "text/csv": {}}}},
)
def fusion_crosswalk(
    session: SessionDep,
    file: Annotated[UploadFile, File(description=".geojson, .gpkg, .zip (Shapefile) or .kml")],
    crs: Annotated[CRSName, Form()] = "wgs84",
    level: Annotated[FusionLevel, Form(description="our level to compare with")] = "grid",
    department: Annotated[str, Form(max_length=40)] = "外部门",
    repair: Annotated[bool, Form()] = False,
    match_share: Annotated[float, Form(ge=0.5, le=1.0)] = 0.95,
    sliver_share: Annotated[float, Form(ge=0.0, le=0.5)] = 0.05,
    sliver_width_m: Annotated[float, Form(ge=0.0, le=1000.0)] = 5.0,
    min_area_m2: Annotated[float, Form(ge=0.0, le=10_000.0)] = 0.5,
    format: Annotated[Literal["json", "csv"], Form()] = "json",
    table: Annotated[Table, Form(description="which table the CSV holds")] = "pairs",
) -> Any:
    """Stateless: nothing is stored. For each overlapping pair the overlap in m² (metric CRS),
    its share of each side's area and households (buildings table); misaligned boundaries
    and slivers flagged; the proposed fused network (foreign grids redrawn from ours) with the
    list of changes. ``format=csv`` answers one table (``table``), UTF-8 with BOM for Excel."""
    data, filename = _read(file)
    thresholds = _thresholds(match_share, sliver_share, sliver_width_m, min_area_m2)
    try:
        cw, _, _ = _crosswalk(session, data, filename, crs, level, repair, thresholds)
    except LayerRejectedError as exc:
        return _rejected(exc)
    if format == "csv":
        frame = getattr(cw, table)
        buf = io.StringIO()
        frame.to_csv(buf, index=False)
        name = f"fusion_{table}_{level}.csv"
        return Response(
            "\ufeff" + buf.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return {
        "department": department,
        "level": level,
        "crs": crs,
        "thresholds": thresholds.__dict__,
        "summary": _summary(cw),
        "pairs": _records(cw.pairs),
        "theirs": _records(cw.theirs),
        "ours": _records(cw.ours),
        "changes": _records(cw.changes),
        "fused": json.loads(cw.fused.to_json(drop_id=True)),
        "slivers": json.loads(cw.slivers.to_json(drop_id=True)),
    }


@router.get(
    "/maps/fusion",
    response_class=HTMLResponse,
    summary="多网融合 page: upload another department's layer",
    dependencies=[allow(*PLANNERS)],
    tags=["pages"],
)
def fusion_form() -> HTMLResponse:
    """The upload form; it posts to the same address and gets the crosswalk map back."""
    return HTMLResponse(fusion_form_page())


@router.post(
    "/maps/fusion",
    response_class=HTMLResponse,
    summary="多网融合 map: our grids, theirs, slivers and the fused proposal",
    dependencies=[allow(*PLANNERS)],
    tags=["pages"],
)
def fusion_map(
    session: SessionDep,
    file: Annotated[UploadFile, File()],
    crs: Annotated[CRSName, Form()] = "wgs84",
    level: Annotated[FusionLevel, Form()] = "grid",
    department: Annotated[str, Form(max_length=40)] = "外部门",
    repair: Annotated[bool, Form()] = False,
    sliver_share: Annotated[float, Form(ge=0.0, le=0.5)] = 0.05,
    sliver_width_m: Annotated[float, Form(ge=0.0, le=1000.0)] = 5.0,
) -> Any:
    """The crosswalk as a map with the list of proposed changes."""
    data, filename = _read(file)
    thresholds = _thresholds(0.95, sliver_share, sliver_width_m, 0.5)
    try:
        cw, ours, foreign = _crosswalk(session, data, filename, crs, level, repair, thresholds)
    except LayerRejectedError as exc:
        return _rejected(exc)
    ours_l = ours[["code", "name", "geometry"]].merge(
        cw.ours[["code", "households", "owner"]], on="code", how="left"
    )
    theirs_l = foreign[["code", "geometry"]].merge(
        cw.theirs[["code", "name", "households", "home", "status"]], on="code", how="left"
    )
    page = build_fusion_page(
        gpd.GeoDataFrame(ours_l, geometry="geometry", crs=4326),
        gpd.GeoDataFrame(theirs_l, geometry="geometry", crs=4326),
        cw.slivers,
        cw.fused,
        cw.changes,
        _summary(cw),
        department=department,
    )
    return HTMLResponse(page)
