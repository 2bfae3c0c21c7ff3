"""One table from domain errors to HTTP statuses; users get a clear message, logs the detail."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from gis.errors import (
    AddressNotFoundError,
    CoordinateRangeError,
    CRSError,
    EmptyInputError,
    FileFormatError,
    GisError,
    HierarchyError,
    InvalidGeometryError,
    NotFoundError,
    StaleVersionError,
)
from gis.incidents import IllegalTransitionError

log = logging.getLogger(__name__)

STATUS: dict[type[Exception], int] = {
    IllegalTransitionError: 409,
    NotFoundError: 404,
    StaleVersionError: 409,
    HierarchyError: 409,
    InvalidGeometryError: 422,
    CoordinateRangeError: 422,
    CRSError: 422,
    EmptyInputError: 422,
    FileFormatError: 422,
    AddressNotFoundError: 422,
    GisError: 422,
}


def _status_for(exc: Exception) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


async def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    status = _status_for(exc)
    body: dict[str, object] = {"detail": str(exc), "error": type(exc).__name__}
    if isinstance(exc, StaleVersionError):
        body["current_version"] = exc.current_version
    return JSONResponse(status_code=status, content=body)


async def _database_down(_request: Request, exc: Exception) -> JSONResponse:
    log.error("database unavailable: %s", exc)
    return JSONResponse(
        status_code=503,
        content={"detail": "database unavailable, try again", "error": "Unavailable"},
    )


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return JSONResponse(status_code=500, content={"detail": "internal error", "error": "Internal"})


def add_exception_handlers(app: FastAPI) -> None:
    """Register the mapping above; no stack trace ever reaches a response."""
    for cls in STATUS:
        app.add_exception_handler(cls, _domain_error)
    app.add_exception_handler(OperationalError, _database_down)
    app.add_exception_handler(Exception, _unexpected)
