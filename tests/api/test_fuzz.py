"""API fuzzing with schemathesis against the OpenAPI spec, on a bounded budget: whatever a
client sends, no endpoint answers 5xx, and every answer matches the documented schema.

Each generated request runs in a savepoint of the test's rolled-back transaction, so a
request that fails leaves nothing behind and the next one starts clean.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from sqlalchemy.orm import Session

from api.deps import get_session
from api.main import create_app
from gis.db.config import get_settings

pytestmark = pytest.mark.db

EXAMPLES = int(os.environ.get("WANGGE_FUZZ_EXAMPLES", "20"))


APP = create_app()  # connects to nothing until a request comes
TOKEN: dict[str, str] = {}  # the test admin's token, so every operation is reached
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(autouse=True)
def _test_session(
    session: Session, monkeypatch: pytest.MonkeyPatch, admin_token: str
) -> Iterator[None]:
    """Requests use the test's session, one savepoint each; no rate limit for the fuzzer."""
    monkeypatch.setenv("WANGGE_RATE_PER_MINUTE", "0")
    get_settings.cache_clear()

    def _session() -> Iterator[Session]:
        with session.begin_nested():
            yield session

    APP.dependency_overrides[get_session] = _session
    TOKEN["value"] = admin_token
    yield
    APP.dependency_overrides.clear()
    get_settings.cache_clear()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_5xx_and_responses_match_the_schema(case) -> None:  # type: ignore[no-untyped-def]
    case.call_and_validate(
        checks=[not_a_server_error, response_schema_conformance],
        headers={"Authorization": f"Bearer {TOKEN['value']}"},
    )
