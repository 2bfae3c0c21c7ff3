"""`wangge` commands for incidents."""

from __future__ import annotations
