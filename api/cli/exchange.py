"""`wangge` commands for exchange."""

from __future__ import annotations
