"""Grid versions and the audit of planning edits; filled by the grid-planning work."""

from __future__ import annotations

__all__: list[str] = []
