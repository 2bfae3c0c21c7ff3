"""OGC API - Features for the grid layers."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
