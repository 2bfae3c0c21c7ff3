"""`wangge` commands for pages."""

from __future__ import annotations
