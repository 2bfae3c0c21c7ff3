"""Service stations: walking isochrones, household coverage and new-station siting."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
