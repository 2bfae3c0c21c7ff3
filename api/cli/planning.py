"""`wangge` commands for planning."""

from __future__ import annotations
