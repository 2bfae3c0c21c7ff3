"""Request dependencies: a database session per request (committed on success), the clock,
the incident taxonomy."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends
from sqlalchemy.orm import Session

from gis.db.config import get_taxonomy
from gis.db.session import session_factory
from gis.taxonomy import Taxonomy


def get_session() -> Iterator[Session]:
    """One session and transaction per request; rolled back on any error."""
    with session_factory()() as session, session.begin():
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_clock() -> Callable[[], datetime]:
    """The current time; tests override this dependency to move the clock."""
    return lambda: datetime.now(UTC)


ClockDep = Annotated[Callable[[], datetime], Depends(get_clock)]


def taxonomy() -> Taxonomy:
    """The incident taxonomy in force (``WANGGE_TAXONOMY_FILE`` or the default)."""
    return get_taxonomy()


TaxonomyDep = Annotated[Taxonomy, Depends(taxonomy)]
