"""`wangge` commands for tracks."""

from __future__ import annotations
