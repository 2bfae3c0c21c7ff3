"""Lazy engine and session factory: nothing connects at import time.

Creating the engine on first use (not at import) lets the CLI, the tests and the API pick a
different ``WANGGE_DATABASE_URL`` before anything touches the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from gis.db.config import get_settings, normalise_url


@lru_cache(maxsize=8)
def get_engine(url: str | None = None) -> Engine:
    """Engine for ``url`` (default: the configured database), created once per URL."""
    target = normalise_url(url or get_settings().database_url)
    return create_engine(target, pool_pre_ping=True, pool_size=5, max_overflow=10)


def session_factory(url: str | None = None) -> sessionmaker[Session]:
    """A sessionmaker bound to the engine for ``url``."""
    return sessionmaker(bind=get_engine(url), expire_on_commit=False)


@contextmanager
def transaction(url: str | None = None) -> Iterator[Session]:
    """A session inside one transaction: committed on success, rolled back on any error."""
    with session_factory(url)() as session, session.begin():
        yield session
