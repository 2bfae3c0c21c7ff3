"""One table from domain errors to HTTP statuses; users get a clear message, logs the detail."""

from __future__ import annotations

import logging
from urllib.parse import quote

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

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
        headers={"Retry-After": "5"},
    )


# SQLSTATEs of a clash with a concurrent transaction: the same request again succeeds.
_RETRYABLE = {"23505": 409, "40001": 503, "40P01": 503}


async def _conflict(request: Request, exc: Exception) -> JSONResponse:
    """A unique key taken by a concurrent request (two phones sending the same upload at
    once), a serialization failure or a deadlock: 409/503 asking to retry, never 500."""
    orig = getattr(exc, "orig", exc)
    status = _RETRYABLE.get(getattr(orig, "sqlstate", None) or "")
    if status is None:
        return await _unexpected(request, exc)
    log.warning("concurrent conflict on %s: %s", request.url.path, str(orig).splitlines()[0])
    return JSONResponse(
        status_code=status,
        content={
            "detail": "conflict with a concurrent request: send the same request again",
            "error": "Conflict",
        },
        headers={"Retry-After": "1"},
    )


async def _bad_value(_request: Request, exc: Exception) -> JSONResponse:
    """A value the database cannot hold (an id beyond bigint, a malformed number): the
    client's input, not a server fault."""
    log.info("refused a value the database cannot hold: %s", str(exc).splitlines()[0])
    return JSONResponse(
        status_code=422,
        content={
            "detail": "a value is out of range or malformed: "
            + str(getattr(exc, "orig", exc)).splitlines()[0],
            "error": "InvalidValue",
        },
    )


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return JSONResponse(status_code=500, content={"detail": "internal error", "error": "Internal"})


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette/FastAPI HTTP errors in the same shape as domain errors; a browser asking
    for a page without signing in is sent to the sign-in form instead."""
    assert isinstance(exc, StarletteHTTPException)
    wants_page = "text/html" in request.headers.get("accept", "")
    if exc.status_code == 401 and wants_page and request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/auth/login?next={quote(target)}", status_code=303)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return JSONResponse(
        status_code=exc.status_code,
        content={"detail": detail, "error": "HTTPError"},
        headers=getattr(exc, "headers", None),
    )


def add_exception_handlers(app: FastAPI) -> None:
    """Register the mapping above; no stack trace ever reaches a response."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for cls in STATUS:
        app.add_exception_handler(cls, _domain_error)
    app.add_exception_handler(OperationalError, _database_down)
    app.add_exception_handler(psycopg.OperationalError, _database_down)  # raw COPY cursors
    app.add_exception_handler(PoolTimeoutError, _database_down)  # no pooled connection free
    app.add_exception_handler(IntegrityError, _conflict)
    app.add_exception_handler(psycopg.IntegrityError, _conflict)
    app.add_exception_handler(psycopg.errors.SerializationFailure, _conflict)
    app.add_exception_handler(psycopg.errors.DeadlockDetected, _conflict)
    app.add_exception_handler(DataError, _bad_value)
    app.add_exception_handler(Exception, _unexpected)


ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "required": ["detail", "error"],
    "properties": {
        "detail": {"type": "string", "description": "what was wrong, in words"},
        "error": {"type": "string", "description": "the error class"},
        "current_version": {"type": "integer", "description": "with 409 on a stale version"},
    },
}
OPEN311_ERROR_SCHEMA = {
    "title": "Open311Error",
    "type": "array",
    "items": {
        "type": "object",
        "required": ["code", "description"],
        "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
    },
}
_DOCUMENTED = {
    "400": "Bad request",
    "404": "Not found",
    "409": "Conflict: an illegal step or a stale version",
    "413": "Request body too large",
    "422": "Invalid input (validation list, or a domain error naming the problem)",
    "429": "Too many requests",
    "503": "Database unavailable",
}


def document_errors(app: FastAPI) -> None:
    """Declare the error bodies in the OpenAPI document: every operation may answer a domain
    error (``{"detail": str, "error": str}``); 422 is that or FastAPI's validation list.
    Clients and fuzzers then check real answers against the real schema."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        schemas["Error"] = ERROR_SCHEMA
        schemas["Open311Error"] = OPEN311_ERROR_SCHEMA
        for route, path in doc.get("paths", {}).items():
            name = "Open311Error" if route.startswith("/open311/") else "Error"
            ref = {"$ref": f"#/components/schemas/{name}"}
            for op in path.values():
                responses = op.setdefault("responses", {})
                for code, text in _DOCUMENTED.items():
                    entry = responses.setdefault(code, {"description": text})
                    content = entry.setdefault("content", {}).setdefault("application/json", {})
                    current = content.get("schema")
                    if current is None or current == ref:
                        content["schema"] = ref
                    elif "anyOf" not in current:
                        content["schema"] = {"anyOf": [current, ref]}
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
