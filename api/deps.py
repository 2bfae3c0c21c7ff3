"""Request dependencies: a database session per request (committed on success), the clock,
the incident taxonomy."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, HTTPException
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from gis.db.config import get_taxonomy
from gis.db.session import session_factory
from gis.taxonomy import Taxonomy

# Requests holding a database session at once, per event loop. Fewer than the engine's pool
# (5 + 10 overflow) so a request never waits for a connection inside a worker thread: with
# hundreds of requests at once, threads blocked on an empty pool would hold every worker
# thread while the requests holding the connections wait for a thread to finish (a
# deadlock broken only by the pool's 30 s timeout). Waiting for a slot costs no thread.
DB_SLOTS = 10
SLOT_WAIT_S = 30.0
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _semaphore() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    if loop not in _slots:
        _slots[loop] = asyncio.Semaphore(DB_SLOTS)
    return _slots[loop]


async def get_session() -> AsyncIterator[Session]:
    """One session and transaction per request, committed when the endpoint returns and
    rolled back on any error. At most ``DB_SLOTS`` requests hold one at a time; the others
    wait (without a thread) up to ``SLOT_WAIT_S``, then get 503 with Retry-After."""
    slots = _semaphore()
    try:
        await asyncio.wait_for(slots.acquire(), SLOT_WAIT_S)
    except TimeoutError:
        raise HTTPException(
            503, "server busy: try again shortly", headers={"Retry-After": "5"}
        ) from None
    try:
        session = session_factory()()  # connects lazily, on the first statement
        try:
            session.begin()
            yield session
            await run_in_threadpool(session.commit)
        except BaseException:
            await run_in_threadpool(session.rollback)
            raise
        finally:
            await run_in_threadpool(session.close)
    finally:
        slots.release()


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
