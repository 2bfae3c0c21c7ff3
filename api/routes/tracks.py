"""Patrol tracks: upload, cleaning, per-grid effort, coverage, visits, compliance."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
