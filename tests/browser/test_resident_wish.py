"""A resident's small wish (微心愿) on the QR page, in real Chromium: post it at the building of
the code, a party member claims (诺单) and completes it through the API, the resident sees who
claimed it and that it is done, and confirms it (评单) in the browser; the volunteer's points
ledger then holds that wish exactly once, also after the confirmation is sent again, and
another phone number sees nothing of it."""

from __future__ import annotations

import logging
import re
import threading
import uuid
from datetime import date, timedelta
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from gis.db.queries.community import points_rules
from tests.browser.conftest import screenshot
from tests.browser.test_resident_page import _code

pytestmark = [pytest.mark.browser, pytest.mark.db]
HOURS = 2.0


def _sign_in(live_server: str, caplog: pytest.LogCaptureFixture, phone: str) -> str:
    """A resident's token through the API (the code from the server log)."""
    assert httpx.post(f"{live_server}/resident/code", json={"phone": phone},
                      timeout=20).status_code == 202  # fmt: skip
    code = _code(caplog)
    r = httpx.post(f"{live_server}/resident/verify", json={"phone": phone, "code": code},
                   timeout=20)  # fmt: skip
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def _item(pg: Any, wish: int) -> str:
    return f'#wish-list .item[data-id="{wish}"]'


def test_resident_posts_a_wish_and_confirms_it_once(
    live_server: str, engine: Engine, page, caplog, auth_headers: dict[str, str]
) -> None:
    pg, log = page
    pg.set_viewport_size({"width": 390, "height": 844})  # a phone
    with engine.connect() as conn:
        building, address = conn.execute(
            text("SELECT id, address FROM buildings ORDER BY id LIMIT 1")
        ).one()
    caplog.set_level(logging.INFO, logger="api.routes.residents")
    name = f"党员-{uuid.uuid4().hex[:6]}"
    r = httpx.post(f"{live_server}/volunteers", json={"name": name, "kind": "party_member"},
                   headers=auth_headers, timeout=20)  # fmt: skip
    assert r.status_code == 201, r.text
    volunteer = int(r.json()["id"])
    wishes: list[int] = []
    try:
        _walk_through(live_server, engine, pg, caplog, auth_headers, building, address,
                      volunteer, name, wishes)  # fmt: skip
        assert log.problems() == {}
    finally:
        with engine.begin() as conn:  # the live server committed: leave the database as found
            conn.execute(
                text("ALTER TABLE points_ledger DISABLE TRIGGER points_ledger_append_only")
            )
            conn.execute(text("DELETE FROM points_ledger WHERE volunteer_id = :v"),
                         {"v": volunteer})  # fmt: skip
            conn.execute(text("ALTER TABLE points_ledger ENABLE TRIGGER points_ledger_append_only"))
            conn.execute(text("DELETE FROM wishes WHERE id = ANY(:w)"), {"w": wishes})
            conn.execute(text("DELETE FROM volunteers WHERE id = :v"), {"v": volunteer})


def _walk_through(
    live_server: str,
    engine: Engine,
    pg: Any,
    caplog: pytest.LogCaptureFixture,
    auth_headers: dict[str, str],
    building: int,
    address: str,
    volunteer: int,
    name: str,
    wishes: list[int],
) -> None:
    resp = pg.goto(f"{live_server}/r/b/{building}", wait_until="networkidle")
    assert resp is not None and resp.status == 200
    assert address in pg.inner_text("#wish .note")  # the place comes from the code
    assert not pg.is_visible("#wish")  # only after the number is verified
    pg.fill("#phone", "13955556666")
    pg.click("#send")
    pg.wait_for_selector("#login-msg.ok")
    pg.fill("#code", _code(caplog))
    pg.click("#verify")
    pg.wait_for_selector("#wish:not(.hidden)")
    pg.wait_for_function("document.getElementById('wish-list').textContent.includes('暂无心愿')")

    # post the wish: category, text, wanted-by date
    wanted = (date.today() + timedelta(days=7)).isoformat()
    pg.select_option("#wish-category", "陪诊")
    pg.fill("#wish-text", "想请人周五陪同去社区医院复诊")
    pg.fill("#wish-date", wanted)
    pg.click("#wish-submit")
    pg.wait_for_selector("#wish-msg.ok")
    wish = int(re.findall(r"\d+", pg.inner_text("#wish-msg"))[-1])
    wishes.append(wish)
    item = _item(pg, wish)
    pg.wait_for_selector(item)
    assert "待认领" in pg.inner_text(item) and wanted in pg.inner_text(item)
    with engine.connect() as conn:  # stored at the building of the QR code, as the resident's
        row = conn.execute(
            text(
                "SELECT w.kind, w.category, w.wanted_by, w.posted_by, w.resident_key IS NOT NULL,"
                " ST_Covers(b.geom, w.geom) FROM wishes w, buildings b"
                " WHERE w.id = :w AND b.id = :b"
            ),
            {"w": wish, "b": building},
        ).one()
    assert row == ("wish", "陪诊", date.fromisoformat(wanted), "居民", True, True)

    # a party member claims it (诺单); the resident sees by whom
    step = f"{live_server}/wishes/{wish}/steps"
    r = httpx.post(step, json={"to": "claimed", "volunteer_id": volunteer},
                   headers=auth_headers, timeout=20)  # fmt: skip
    assert r.status_code == 200, r.text
    pg.reload(wait_until="networkidle")  # the token stays in this tab's session storage
    pg.wait_for_selector(f'{item}[data-status="claimed"]')
    assert "已认领" in pg.inner_text(item) and name in pg.inner_text(item)
    assert not pg.is_visible(f"{item} button.confirm")  # nothing to confirm before it is done

    # done; the resident confirms in the browser (评单)
    r = httpx.post(step, json={"to": "done", "hours": HOURS}, headers=auth_headers, timeout=20)
    assert r.status_code == 200, r.text
    pg.reload(wait_until="networkidle")
    pg.wait_for_selector(f"{item} button.confirm")
    assert "已完成" in pg.inner_text(item)
    screenshot(pg, "resident-wish-done")
    pg.select_option(f"{item} select.wish-score", "5")
    pg.click(f"{item} button.confirm")
    pg.wait_for_selector(f'{item}[data-status="confirmed"]')
    assert "已确认" in pg.inner_text(item) and "我的评价：5 分" in pg.inner_text(item)
    screenshot(pg, "resident-wish-confirmed")

    # the confirmation sent again, twice at once (a double tap, a retry): refused, not paid
    token = pg.evaluate("sessionStorage.getItem('wangge_resident_token')")
    confirm = f"{live_server}/resident/wishes/{wish}/confirm"
    codes: list[int] = []

    def again() -> None:
        r = httpx.post(confirm, json={"rating": 5}, timeout=20,
                       headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        codes.append(r.status_code)

    threads = [threading.Thread(target=again) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(codes) == 2 and all(c in (409, 422) for c in codes), codes
    with Session(engine) as s:
        expected = points_rules(s).for_service(HOURS, 5, wish=True)
        entries = s.execute(
            text("SELECT count(*), sum(delta) FROM points_ledger WHERE volunteer_id = :v "
                 "AND ref_kind = 'wish' AND ref_id = :w"), {"v": volunteer, "w": wish}
        ).one()  # fmt: skip
    assert expected > 0 and entries == (1, expected)
    points = httpx.get(f"{live_server}/volunteers/{volunteer}/points", headers=auth_headers,
                       timeout=20).json()  # fmt: skip
    assert points["balance"] == expected and len(points["entries"]) == 1

    # personal data only to its owner: another number sees none of it and cannot confirm it
    other = _sign_in(live_server, caplog, "13700001111")
    mine = httpx.get(f"{live_server}/resident/wishes", timeout=20,
                     headers={"Authorization": f"Bearer {other}"})  # fmt: skip
    assert mine.status_code == 200 and wish not in {w["id"] for w in mine.json()}
    stolen = httpx.post(confirm, json={"rating": 1}, timeout=20,
                        headers={"Authorization": f"Bearer {other}"})  # fmt: skip
    assert stolen.status_code == 404
    assert httpx.get(f"{live_server}/resident/wishes", timeout=20).status_code == 401

    # a grid's code (no building): the wish is placed at the grid's point, same resident
    with engine.connect() as conn:
        grid_id, grid_code = conn.execute(
            text("SELECT id, code FROM grids WHERE level = 'micro' ORDER BY code LIMIT 1")
        ).one()
    pg.goto(f"{live_server}/r/g/{grid_code}", wait_until="networkidle")
    pg.wait_for_selector(f"{item}[data-status='confirmed']")  # signed in: own wishes listed
    pg.select_option("#wish-kind", "need")
    pg.select_option("#wish-category", "维修")
    pg.fill("#wish-text", "楼道灯坏了，老人晚上看不清")
    pg.click("#wish-submit")
    pg.wait_for_selector("#wish-msg.ok")
    need = int(re.findall(r"\d+", pg.inner_text("#wish-msg"))[-1])
    wishes.append(need)
    pg.wait_for_selector(f"{_item(pg, need)}[data-status='open']")
    assert "需求 · 维修" in pg.inner_text(_item(pg, need))
    with engine.connect() as conn:
        assert conn.execute(
            text("SELECT kind, micro_grid_id, wanted_by FROM wishes WHERE id = :w"), {"w": need}
        ).one() == ("need", grid_id, None)
