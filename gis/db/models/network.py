"""Road network for service circles (pgRouting topology, isochrones)."""

from __future__ import annotations

__all__: list[str] = []
