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


# scope="function": the transaction commits when the endpoint returns, BEFORE the response is
# sent. With the default (request) scope FastAPI sends the response first and commits after,
# so a client could be told "201 Created" for a write whose commit then fails.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_clock() -> Callable[[], datetime]:
    """The current time; tests override this dependency to move the clock."""
    return lambda: datetime.now(UTC)


ClockDep = Annotated[Callable[[], datetime], Depends(get_clock)]


def taxonomy() -> Taxonomy:
    """The incident taxonomy in force (``WANGGE_TAXONOMY_FILE`` or the default)."""
    return get_taxonomy()


TaxonomyDep = Annotated[Taxonomy, Depends(taxonomy)]
