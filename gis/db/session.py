"""Lazy engine and session factory: nothing connects at import time.

Creating the engine on first use (not at import) lets the CLI, the tests and the API pick a
different ``WANGGE_DATABASE_URL`` before anything touches the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from gis.db.config import get_settings, normalise_url

_ENGINES: dict[str, Engine] = {}


def get_engine(url: str | None = None) -> Engine:
    """Engine for ``url`` (default: the configured database), created once per URL."""
    target = normalise_url(url or get_settings().database_url)
    if target not in _ENGINES:
        _ENGINES[target] = create_engine(target, pool_pre_ping=True, pool_size=5, max_overflow=10)
    return _ENGINES[target]


def dispose_engines() -> None:
    """Close every pooled connection (tests, and before a process forks or exits)."""
    while _ENGINES:
        _, engine = _ENGINES.popitem()
        engine.dispose()


def session_factory(url: str | None = None) -> sessionmaker[Session]:
    """A sessionmaker bound to the engine for ``url``."""
    return sessionmaker(bind=get_engine(url), expire_on_commit=False)


@contextmanager
def transaction(url: str | None = None) -> Iterator[Session]:
    """A session inside one transaction: committed on success, rolled back on any error."""
    with session_factory(url)() as session, session.begin():
        yield session
