"""The ``wangge`` command line: database, demo district, serving, batch jobs and benchmarks."""

from api.cli import core, exchange, incidents, isochrones, pages, planning, tracks, users  # noqa: F401  (register)
from api.cli.app import app

__all__ = ["app"]
