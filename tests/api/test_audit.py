"""The audit log: every read of key households' personal data (独居老人, 残疾户...) and every
write is recorded, by whom, how and where; no route hands out personal data unrecorded."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from api.main import create_app
from api.security import api_routes, create_token, declared_access, hash_password
from gis.db.queries.users import add_user, load_principal

pytestmark = pytest.mark.db

WEEK = "2026-10-28"  # the fixture district's patrol week
KNOWN_PERSONAL = {"/key-households", "/patrol/visits", "/maps/patrol"}
# GET routes a leak scan cannot call without arguments it must invent, or that only serve
# static assets / documentation
SKIP_SCAN = {"/docs", "/field/app.js", "/field/app.css", "/field/sw.js"}


def _routes() -> list[Any]:
    return api_routes(create_app().router.routes)


def _personal_routes() -> list[str]:
    """Every GET route offering personal data (a ``personal`` query flag)."""
    return sorted(
        r.path
        for r in _routes()
        if "GET" in r.methods and any(p.name == "personal" for p in r.dependant.query_params)
    )


def _audits(session: Session, action: str, path: str | None = None) -> list[Any]:
    sql = "SELECT username, method, path, detail FROM audit_log WHERE action = :a"
    if path is not None:
        sql += " AND path = :p"
    return session.execute(text(sql + " ORDER BY id"), {"a": action, "p": path}).all()


def _headers(session: Session, role: str) -> dict[str, str]:
    uid = add_user(
        session, username=f"audit-{role}", password_hash=hash_password("x" * 12), role=role
    )
    session.flush()
    return {"Authorization": f"Bearer {create_token(uid, role)}"}


def _params(path: str) -> dict[str, str]:
    return {"week": WEEK} if path == "/patrol/visits" else {}


# Routes whose personal reads are known not to be audited (none now).
UNAUDITED: set[str] = set()


def test_the_personal_data_routes_are_found() -> None:
    assert set(_personal_routes()) >= KNOWN_PERSONAL


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(
            p,
            marks=pytest.mark.xfail(
                strict=True, reason="no audit record for volunteers' phones (community.py)"
            ),
        )
        if p in UNAUDITED
        else p
        for p in _personal_routes()
    ],
)
def test_every_personal_data_read_is_audited(client: Any, session: Session, path: str) -> None:
    phones = set(session.execute(text("SELECT phone FROM key_household_people")).scalars())
    assert phones
    before = len(_audits(session, "read_personal", path))
    plain = client.get(path, params=_params(path))
    assert plain.status_code == 200, (path, plain.text[:200])
    assert len(_audits(session, "read_personal", path)) == before  # nothing personal read
    assert not any(p in plain.text for p in phones if p)

    r = client.get(path, params={**_params(path), "personal": "true"})
    assert r.status_code == 200, (path, r.text[:200])
    rows = _audits(session, "read_personal", path)
    assert len(rows) == before + 1  # exactly one record per read
    username, method, where, detail = rows[-1]
    assert (username, method, where) == ("test-admin", "GET", path)
    assert detail is not None and "count" in detail

    if path in KNOWN_PERSONAL:  # key households: leaders read everything but this
        leader = _headers(session, "leader")
        refused = client.get(path, params={**_params(path), "personal": "true"}, headers=leader)
        assert refused.status_code == 403
        assert len(_audits(session, "read_personal", path)) == before + 1


def test_the_audit_record_names_the_households_read(client: Any, session: Session) -> None:
    phones = set(session.execute(text("SELECT phone FROM key_household_people")).scalars())
    # the records name what was read: the key households of the answer
    r = client.get("/key-households", params={"personal": "true"})
    shown = [h["household_id"] for h in r.json()]
    assert any(h["phone"] in phones for h in r.json())
    detail = _audits(session, "read_personal", "/key-households")[-1][3]
    assert detail["count"] == len(shown) and detail["households"] == shown[:1000]


def test_a_grid_worker_reads_only_their_households_and_is_audited(
    client: Any, session: Session
) -> None:
    staff_id, grid_id = session.execute(
        text(
            "SELECT s.id, sg.grid_id FROM staff s JOIN staff_grids sg ON sg.staff_id = s.id "
            "JOIN key_households k ON k.grid_id = sg.grid_id ORDER BY s.id LIMIT 1"
        )
    ).one()
    uid = add_user(
        session,
        username="audit-patroller",
        password_hash=hash_password("x" * 12),
        role="patroller",
        staff_id=staff_id,
    )
    session.flush()
    h = {"Authorization": f"Bearer {create_token(uid, 'patroller')}"}
    r = client.get("/key-households", params={"personal": "true"}, headers=h)
    assert r.status_code == 200
    mine = r.json()
    assert mine and all(row["name"] for row in mine)
    everyone = session.execute(text("SELECT count(*) FROM key_households")).scalar_one()
    assert len(mine) < everyone  # scoped to their grids
    rows = _audits(session, "read_personal", "/key-households")
    assert rows[-1][0] == "audit-patroller" and rows[-1][3]["count"] == len(mine)
    scope = load_principal(session, uid).grid_ids
    assert scope and grid_id in scope
    other = session.execute(
        text("SELECT grid_id FROM key_households WHERE grid_id <> ALL(:s) LIMIT 1"),
        {"s": sorted(scope)},
    ).scalar_one()
    outside = client.get(
        "/key-households", params={"personal": "true", "grid_id": other}, headers=h
    )
    assert outside.status_code in (403, 404)


def test_no_get_route_hands_out_personal_data_without_an_audit_record(
    client: Any, session: Session
) -> None:
    """A scan of every GET route that needs no arguments, as an admin (who may read
    everything): no key household's phone or room appears unless the read was recorded."""
    people = session.execute(
        text("SELECT phone, name FROM key_household_people WHERE phone IS NOT NULL")
    ).all()
    phones = {p for p, _ in people}
    scanned = 0
    for route in _routes():
        if "GET" not in route.methods or "{" in route.path or route.path in SKIP_SCAN:
            continue
        if any(p.field_info.is_required() for p in route.dependant.query_params):
            continue
        before = len(_audits(session, "read_personal"))
        r = client.get(route.path, params=_params(route.path))
        scanned += 1
        if r.status_code != 200:
            continue
        leaked = [p for p in phones if p in r.text]
        audited = len(_audits(session, "read_personal")) > before
        assert not leaked or audited, f"{route.path} shows {len(leaked)} phones unrecorded"
    assert scanned >= 30


def test_every_write_is_audited(client: Any, session: Session) -> None:
    """Structurally: every write route is declared with allow(...) (which records each
    admitted write in the request's transaction) or public() (which records it too; the
    sign-in routes record the sign-ins themselves). Then for real, on three writes."""
    writes = [r for r in _routes() if set(r.methods) - {"GET", "HEAD"}]
    assert len(writes) > 20
    for r in writes:
        assert declared_access(r) is not None, r.path

    before = len(_audits(session, "write"))
    report = {"category": "噪音扰民", "source": "热线", "lon": 113.55, "lat": 34.8}
    assert client.post("/incidents", json=report).status_code == 201
    rows = _audits(session, "write")
    assert len(rows) == before + 1
    assert rows[-1][:3] == ("test-admin", "POST", "/incidents")

    # a public write (Open311: anyone may file a request) is recorded with the address
    services = client.get("/open311/v2/services.json").json()
    filed = client.post(
        "/open311/v2/requests.json",
        data={"service_code": services[0]["service_code"], "lat": 34.8, "long": 113.55,
              "description": "路灯不亮"},
        headers={"Authorization": ""},
    )  # fmt: skip
    assert filed.status_code == 201, filed.text
    rows = _audits(session, "write")
    assert rows[-1][:3] == ("public:testclient", "POST", "/open311/v2/requests.json")

    # a refused write leaves nothing: neither the write nor its record
    leader = _headers(session, "leader")
    n = len(_audits(session, "write"))
    assert client.post("/incidents", json=report, headers=leader).status_code == 403
    bad = client.post("/incidents", json={**report, "lon": float("1e308")})
    assert bad.status_code == 422
    assert len(_audits(session, "write")) == n
