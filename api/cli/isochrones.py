"""`wangge` commands for isochrones."""

from __future__ import annotations
