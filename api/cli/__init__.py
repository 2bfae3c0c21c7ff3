"""The ``wangge`` command line: database, demo district, serving, batch jobs and benchmarks."""

from api.cli import (  # noqa: F401  (register)
    backup,
    core,
    dashboards,
    exchange,
    incidents,
    isochrones,
    load,
    pages,
    planning,
    tracks,
    users,
)
from api.cli.app import app

__all__ = ["app"]
