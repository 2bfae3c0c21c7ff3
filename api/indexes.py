"""In-memory indexes the API keeps between requests, rebuilt when their source data changes.

Each request asks the database for a cheap fingerprint (row count, versions, last update);
when it differs from the one the index was built from, the index is rebuilt. So a grid edit
or a building import is seen by the next request, and the index costs one small query
otherwise.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

from gis.address import Gazetteer
from gis.db.queries.buildings import buildings_fingerprint, buildings_frame
from gis.db.queries.grids import grids_fingerprint, grids_frame
from gis.db.queries.tracks import patrol_context
from gis.geocode import GridIndex
from gis.patrol import PatrolContext

log = logging.getLogger(__name__)
T = TypeVar("T")


class Cached(Generic[T]):
    """A value built from the database, rebuilt whenever its fingerprint changes."""

    def __init__(
        self,
        name: str,
        fingerprint: Callable[[Session], Hashable],
        build: Callable[[Session], T],
    ) -> None:
        self.name = name
        self._fingerprint = fingerprint
        self._build = build
        self._lock = threading.Lock()
        self._key: Hashable | None = None
        self._value: T | None = None

    def get(self, session: Session) -> T:
        """The current value, rebuilt first if the data behind it changed."""
        key = self._fingerprint(session)
        with self._lock:
            if self._value is None or key != self._key:
                log.info("building %s index (%s)", self.name, key)
                self._value = self._build(session)
                self._key = key
            return self._value

    def clear(self) -> None:
        """Forget the value (tests, or after a bulk load in the same process)."""
        with self._lock:
            self._key = None
            self._value = None


class GridLocator:
    """The in-memory grid index plus each grid's id and name, for answers with references."""

    def __init__(self, session: Session) -> None:
        grids = grids_frame(session)
        self.index = GridIndex.from_grids(grids)
        self.refs: dict[str, dict[str, object]] = {
            code: {"id": int(gid), "code": code, "name": name}
            for gid, code, name in zip(grids["id"], grids["code"], grids["name"], strict=True)
        }

    def chain(self, lon: float, lat: float) -> dict[str, dict[str, object] | None] | None:
        """The chain of one WGS84 point as references, or None when outside every grid."""
        hit = self.index.locate_one(lon, lat)
        if hit is None:
            return None
        return {
            level: (self.refs[ref["code"]] if (ref := hit.get(level)) else None)
            for level in ("micro", "grid", "community", "street", "dedicated")
        }


grid_locator: Cached[GridLocator] = Cached("grid", grids_fingerprint, GridLocator)
# the grid index and chain lookups of POST /tracks (building it costs ~30 ms per request on
# the fixture district, more on the demo): kept until a grid changes
patrol_index: Cached[PatrolContext] = Cached("patrol", grids_fingerprint, patrol_context)
gazetteer: Cached[Gazetteer] = Cached(
    "address", buildings_fingerprint, lambda s: Gazetteer.from_buildings(buildings_frame(s))
)
