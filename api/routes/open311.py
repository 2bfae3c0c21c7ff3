"""Open311 GeoReport v2 over the incident workflow."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
