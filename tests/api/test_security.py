"""Sign-in, tokens, roles, default deny, grid scope and the audit log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import APIRouter
from sqlalchemy import text
from sqlalchemy.orm import Session

from api import security
from api.security import allow, create_token, hash_password, public, verify_password
from gis.access import Principal
from gis.db.config import get_settings
from gis.db.queries.users import add_user, load_principal
from gis.db.session import transaction

pytestmark = pytest.mark.db

probe = APIRouter(prefix="/probe")


@probe.get("/open", dependencies=[public()])
def _open() -> dict:
    return {"ok": True}


@probe.get("/plans")
def _read(who: Principal = allow("planner", "leader", "admin")) -> dict:  # noqa: B008
    return {"user": who.username}


@probe.post("/plans")
def _write(who: Principal = allow("planner", "leader", "admin")) -> dict:  # noqa: B008
    return {"user": who.username}


@probe.get("/undeclared")
def _undeclared() -> dict:
    return {"leak": True}


@pytest.fixture
def auth_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("WANGGE_AUTH", "true")
    monkeypatch.setenv("WANGGE_SECRET_KEY", "test-secret-" + "x" * 32)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def app_client(client, auth_on):  # type: ignore[no-untyped-def]
    client.app.include_router(probe)
    client.headers.pop("Authorization", None)  # these tests sign in themselves
    security.failed_logins.failures.clear()
    return client


def _user(session: Session, name: str, role: str, **kw) -> int:  # type: ignore[no-untyped-def]
    return add_user(
        session, username=name, password_hash=hash_password("correct horse"), role=role, **kw
    )


def _token(client, name: str, password: str = "correct horse"):  # type: ignore[no-untyped-def]
    return client.post("/auth/token", data={"username": name, "password": password})


def test_password_hashes_are_argon2_and_verify() -> None:
    digest = hash_password("correct horse")
    assert digest.startswith("$argon2id$")
    assert verify_password(digest, "correct horse")
    assert not verify_password(digest, "wrong horse")
    assert not verify_password("not-a-hash", "x")
    with pytest.raises(ValueError, match="at least 8"):
        hash_password("short")


def test_sign_in_and_roles(app_client, session: Session) -> None:
    _user(session, "planner1", "planner")
    _user(session, "leader1", "leader")
    _user(session, "dispatch1", "dispatcher")
    resp = _token(app_client, "planner1")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["token_type"] == "bearer" and body["role"] == "planner"
    planner = {"Authorization": f"Bearer {body['access_token']}"}
    assert app_client.get("/probe/plans", headers=planner).json() == {"user": "planner1"}
    assert app_client.post("/probe/plans", headers=planner).status_code == 200

    leader = {"Authorization": f"Bearer {_token(app_client, 'leader1').json()['access_token']}"}
    assert app_client.get("/probe/plans", headers=leader).status_code == 200
    refused = app_client.post("/probe/plans", headers=leader)  # leaders read, never write
    assert refused.status_code == 403 and "leader" in refused.json()["detail"]

    disp = {"Authorization": f"Bearer {_token(app_client, 'dispatch1').json()['access_token']}"}
    assert app_client.get("/probe/plans", headers=disp).status_code == 403

    assert app_client.get("/probe/plans").status_code == 401
    assert app_client.get("/probe/open").json() == {"ok": True}
    assert app_client.get("/probe/undeclared", headers=planner).status_code == 403  # default deny


def test_writes_are_audited_in_the_same_transaction(app_client, session: Session) -> None:
    _user(session, "planner2", "planner")
    token = _token(app_client, "planner2").json()["access_token"]
    app_client.post("/probe/plans", headers={"Authorization": f"Bearer {token}"})
    rows = session.execute(
        text("SELECT username, action, method, path FROM audit_log WHERE username = 'planner2'")
    ).all()
    assert ("planner2", "write", "POST", "/probe/plans") in rows
    assert ("planner2", "login", None, "/auth/token") in rows


def test_bad_tokens_and_passwords(app_client, session: Session) -> None:
    uid = _user(session, "planner3", "planner")
    assert _token(app_client, "planner3", "wrong horse").status_code == 401
    assert _token(app_client, "nobody-here", "wrong horse").status_code == 401
    old = create_token(uid, "planner", now=datetime.now(UTC) - timedelta(days=2))
    expired = app_client.get("/probe/plans", headers={"Authorization": f"Bearer {old}"})
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    good = create_token(uid, "planner")
    forged = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    bad = app_client.get("/probe/plans", headers={"Authorization": f"Bearer {forged}"})
    assert bad.status_code == 401 and "not valid" in bad.json()["detail"]
    app_client.cookies.set(security.COOKIE, good)
    assert app_client.get("/probe/plans").status_code == 200  # pages sign in by cookie
    app_client.cookies.clear()
    session.execute(text("UPDATE users SET active = false WHERE id = :i"), {"i": uid})
    gone = app_client.get("/probe/plans", headers={"Authorization": f"Bearer {good}"})
    assert gone.status_code == 401


def test_five_failures_block_the_name_and_failures_are_audited(app_client) -> None:
    name = "brute-force-target"
    try:
        for _ in range(5):
            assert _token(app_client, name, "guess-guess").status_code == 401
        assert _token(app_client, name, "guess-guess").status_code == 429
        with transaction() as own:
            n = own.execute(
                text(
                    "SELECT count(*) FROM audit_log WHERE username = :n AND action = 'login_failed'"
                ),
                {"n": name},
            ).scalar_one()
        assert n == 5
    finally:
        with transaction() as own:
            own.execute(text("DELETE FROM audit_log WHERE username = :n"), {"n": name})


def test_grid_scope_of_patrollers_and_community_accounts(session: Session) -> None:
    staff_id, grid_id = session.execute(
        text(
            "SELECT s.id, sg.grid_id FROM staff s JOIN staff_grids sg ON sg.staff_id = s.id "
            "WHERE s.role = '网格长' ORDER BY s.id LIMIT 1"
        )
    ).one()
    pid = _user(session, "patrol1", "patroller", staff_id=staff_id)
    patroller = load_principal(session, pid)
    assert patroller is not None and patroller.grid_ids is not None
    children = set(
        session.execute(text("SELECT id FROM grids WHERE parent_id = :g"), {"g": grid_id}).scalars()
    )
    assert {grid_id} | children <= patroller.grid_ids
    assert patroller.in_scope(None, grid_id) and not patroller.in_scope(None)

    code, cid = session.execute(
        text("SELECT code, id FROM grids WHERE level = 'community' ORDER BY code LIMIT 1")
    ).one()
    com = load_principal(session, _user(session, "com1", "community", community_code=code))
    under = set(
        session.execute(
            text(
                "WITH RECURSIVE t AS (SELECT id FROM grids WHERE id = :c UNION "
                "SELECT g.id FROM grids g JOIN t ON g.parent_id = t.id) SELECT id FROM t"
            ),
            {"c": cid},
        ).scalars()
    )
    assert com is not None and com.grid_ids == frozenset(under) and len(under) > 3
    other = session.execute(
        text("SELECT id FROM grids WHERE level = 'community' AND id <> :c LIMIT 1"), {"c": cid}
    ).scalar_one()
    assert not com.in_scope(other)
    with pytest.raises(Exception, match="staff id"):
        _user(session, "patrol2", "patroller")
    with pytest.raises(Exception, match="taken"):
        _user(session, "com1", "leader")


def _bearer(client, name: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"Authorization": f"Bearer {_token(client, name).json()['access_token']}"}


def test_incidents_are_scoped_to_the_patrollers_grids(app_client, session: Session) -> None:
    staff_id, micro_id = session.execute(
        text(
            "SELECT s.id, g.id FROM staff s JOIN staff_grids sg ON sg.staff_id = s.id "
            "JOIN grids g ON g.id = sg.grid_id WHERE s.role = '网格员' AND g.level = 'micro' "
            "ORDER BY s.id LIMIT 1"
        )
    ).one()
    _user(session, "patrol9", "patroller", staff_id=staff_id)
    _user(session, "dispatch9", "dispatcher")
    _user(session, "leader9", "leader")
    mine, theirs = session.execute(
        text(
            "SELECT (SELECT id FROM incidents WHERE micro_grid_id = :m LIMIT 1), "
            "(SELECT id FROM incidents WHERE micro_grid_id <> :m "
            " AND grid_id <> (SELECT parent_id FROM grids WHERE id = :m) LIMIT 1)"
        ),
        {"m": micro_id},
    ).one()
    patrol, disp, leader = (_bearer(app_client, n) for n in ("patrol9", "dispatch9", "leader9"))
    assert app_client.get(f"/incidents/{mine}", headers=patrol).status_code == 200
    assert app_client.get(f"/incidents/{theirs}", headers=patrol).status_code == 404
    assert app_client.get(f"/incidents/{theirs}", headers=disp).status_code == 200
    listed = app_client.get("/incidents", params={"limit": 500}, headers=patrol).json()
    assert listed and all(r["id"] != theirs for r in listed)
    # a grid worker may report the work done, not accept or dispatch for the office
    step = {"to": "accepted", "actor": "网格员"}
    refused = app_client.post(f"/incidents/{mine}/transitions", json=step, headers=patrol)
    assert refused.status_code == 403
    foreign = app_client.post(f"/incidents/{theirs}/transitions", json=step, headers=patrol)
    assert foreign.status_code == 404
    assert app_client.post(f"/incidents/{mine}/transitions", json=step, headers=disp).is_success
    # leaders read everything and write nothing
    assert app_client.get(f"/incidents/{theirs}", headers=leader).status_code == 200
    report = {"category": "噪音扰民", "source": "热线", "lon": 113.55, "lat": 34.8}
    assert app_client.post("/incidents", json=report, headers=leader).status_code == 403
    assert app_client.get("/kpis", headers=leader).status_code == 200
    assert app_client.get("/kpis", headers=patrol).status_code == 403
    assert app_client.post("/incidents/sla-tick", headers=patrol).status_code == 403
    assert app_client.get("/open311/v2/services.json").status_code == 200  # open by design


def test_pages_sign_in_with_a_cookie(app_client, session: Session) -> None:
    _user(session, "leader7", "leader")
    page = app_client.get(
        "/probe/plans?x=1", headers={"Accept": "text/html"}, follow_redirects=False
    )
    assert page.status_code == 303
    assert page.headers["location"] == "/auth/login?next=/probe/plans%3Fx%3D1"
    form = app_client.get("/auth/login", params={"next": "/probe/plans"})
    assert form.status_code == 200 and "登录" in form.text and "http" not in form.text
    bad = app_client.post(
        "/auth/login",
        data={"username": "leader7", "password": "nope-nope", "next": "/probe/plans"},
        follow_redirects=False,
    )
    assert bad.status_code == 303 and "error=1" in bad.headers["location"]
    good = app_client.post(
        "/auth/login",
        data={"username": "leader7", "password": "correct horse", "next": "//evil.example/x"},
        follow_redirects=False,
    )
    assert good.status_code == 303 and good.headers["location"] == "/"  # no open redirect
    cookie = good.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert app_client.get("/probe/plans").json() == {"user": "leader7"}
    app_client.post("/auth/logout", follow_redirects=False)
    app_client.cookies.clear()
    assert app_client.get("/probe/plans").status_code == 401


def test_every_endpoint_declares_who_may_call_it() -> None:
    """Default deny is only safe if nothing relies on it by accident: every route of the app
    names its roles or says it is public."""
    from api.main import create_app
    from api.security import api_routes, declared_access

    undeclared = [
        f"{sorted(r.methods)} {r.path}"
        for r in api_routes(create_app().router.routes)
        if declared_access(r) is None
    ]
    assert undeclared == []
