"""Batch geocoding: upload a points file, get it back with the grid chain of every row."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, UploadFile
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from api.deps import SessionDep
from api.indexes import grid_locator
from api.security import allow
from gis.db.config import get_settings
from gis.io import geocode_file

router = APIRouter(
    prefix="/geocode", tags=["geocoding"], dependencies=[allow("admin", "planner", "dispatcher")]
)

SUFFIXES = {
    ".csv": "text/csv",
    ".geojson": "application/geo+json",
    ".parquet": "application/vnd.apache.parquet",
}


@router.post(
    "",
    summary="Assign every point of an uploaded file to its grid chain",
    response_class=FileResponse,
)
def geocode_upload(
    session: SessionDep,
    file: Annotated[UploadFile, File(description="points as .csv, .geojson or .parquet")],
    crs: Annotated[str, Form(description="wgs84, cgcs2000, gcj02 or bd09")] = "wgs84",
) -> FileResponse:
    """Same format back, with micro_code, grid_code, community_code, street_code and
    dedicated_code columns (empty where a point is outside every grid) and an error column
    for rows whose coordinates are unusable."""
    name = Path(file.filename or "upload.csv").name
    suffix = Path(name).suffix.lower()
    if suffix == ".json":
        suffix = ".geojson"
    if suffix not in SUFFIXES:
        raise HTTPException(
            415, f"unsupported file type {suffix!r}; use .csv, .geojson or .parquet"
        )
    limit = get_settings().max_upload_mb * 1024 * 1024
    work = Path(tempfile.mkdtemp(prefix="wangge-geocode-"))
    try:
        src = work / f"in{suffix}"
        written = 0
        with src.open("wb") as fh:
            while chunk := file.file.read(1 << 20):
                written += len(chunk)
                if written > limit:
                    raise HTTPException(
                        413, f"upload larger than {get_settings().max_upload_mb} MB"
                    )
                fh.write(chunk)
        dst = work / f"out{suffix}"
        geocode_file(src, dst, grid_locator.get(session).index, crs=crs)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return FileResponse(
        dst,
        media_type=SUFFIXES[suffix],
        filename=f"{Path(name).stem}-geocoded{suffix}",
        background=BackgroundTask(shutil.rmtree, work, ignore_errors=True),
    )
