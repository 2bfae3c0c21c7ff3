"""The OpenAPI docs page, served with the local Swagger UI copy (FastAPI's default uses a CDN)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from api.security import public

router = APIRouter(include_in_schema=False, dependencies=[public()])
SWAGGER = "/static/vendor/swagger-ui"


@router.get("/docs")
def docs(request: Request) -> HTMLResponse:
    """Swagger UI for the API, working on an offline intranet."""
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url or "/openapi.json",
        title=f"{request.app.title} — API",
        swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
        swagger_css_url=f"{SWAGGER}/swagger-ui.css",
        swagger_favicon_url=f"{SWAGGER}/favicon-32x32.png",
    )
