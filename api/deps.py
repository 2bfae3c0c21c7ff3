"""Request dependencies: a database session per request, committed on success."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends
from sqlalchemy.orm import Session

from gis.db.session import session_factory


def get_session() -> Iterator[Session]:
    """One session and transaction per request; rolled back on any error."""
    with session_factory()() as session, session.begin():
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
