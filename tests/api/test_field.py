"""The patroller's PWA as served: shell, manifest, icons, service worker (scope, version,
no HTTP caching) and ``/field/me`` for each kind of account."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from api.security import create_token, hash_password
from gis.db.queries.users import add_user
from maps.field import SHELL, shell_version

pytestmark = pytest.mark.db


def test_shell_manifest_icons_and_service_worker(client) -> None:
    page = client.get("/field/")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-cache"
    assert f'content="{shell_version()}"' in page.text
    assert 'rel="manifest" href="/field/manifest.webmanifest"' in page.text
    assert not re.search(r'(src|href)="(https?:)?//', page.text)  # nothing from elsewhere
    assert client.get("/field", follow_redirects=False).headers["location"] == "/field/"
    sw = client.get("/field/sw.js")
    assert sw.headers["content-type"].startswith("text/javascript")
    assert "no-store" in sw.headers["cache-control"]
    assert shell_version() in sw.text and "__SHELL__" not in sw.text
    assert json.loads(re.search(r"const SHELL = (\[.*?\]);", sw.text).group(1)) == list(SHELL)
    for url in SHELL:  # everything the worker caches is served
        assert client.get(url).status_code == 200, url
    manifest = client.get("/field/manifest.webmanifest").json()
    assert manifest["scope"] == "/field/" and manifest["display"] == "standalone"
    sizes = {i["sizes"] for i in manifest["icons"]}
    assert sizes == {"192x192", "512x512"}
    assert client.get("/field/icon-64.png").status_code == 404
    js = client.get("/field/app.js").text
    assert 'form.append("crs", "wgs84")' in js and "Idempotency-Key" in js


def test_me_for_anonymous_patroller_and_community(client, session: Session) -> None:
    anonymous = client.get("/field/me", headers={"Authorization": ""})
    assert anonymous.status_code == 200 and anonymous.json() == {"signed_in": False}
    assert client.get("/field/me", headers={"Authorization": "Bearer junk"}).json() == {
        "signed_in": False
    }
    staff_id = session.execute(text("SELECT staff_id FROM staff_grids LIMIT 1")).scalar_one()
    codes = set(
        session.execute(
            text(
                "SELECT g.code FROM staff_grids sg JOIN grids g ON g.id = sg.grid_id "
                "WHERE sg.staff_id = :s"
            ),
            {"s": staff_id},
        ).scalars()
    )
    uid = add_user(session, username="field-me", password_hash=hash_password("x" * 10),
                   role="patroller", staff_id=staff_id)  # fmt: skip
    me = client.get(
        "/field/me", headers={"Authorization": f"Bearer {create_token(uid, 'patroller')}"}
    )
    body = me.json()
    assert body["signed_in"] and body["role_label"] == "网格员" and not body["all_grids"]
    assert body["staff_id"] == staff_id and {g["code"] for g in body["grids"]} == codes
    code = session.execute(
        text("SELECT code FROM grids WHERE level = 'community' ORDER BY code LIMIT 1")
    ).scalar_one()
    cid = add_user(session, username="field-community", password_hash=hash_password("x" * 10),
                   role="community", community_code=code)  # fmt: skip
    mine = client.get(
        "/field/me", headers={"Authorization": f"Bearer {create_token(cid, 'community')}"}
    )
    assert [g["code"] for g in mine.json()["grids"]] == [code]
    admin = client.get("/field/me").json()
    assert admin["role"] == "admin" and admin["all_grids"] and admin["grids"] == []
