"""Grid layer exchange: export to files, 多网融合 (fusing departments' grids)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
