"""A resident's QR-code report on a phone, in real Chromium: verify the number with the code
the server logs, report with a photo from the camera input, the office handles it, the
resident rates the result (群众评单)."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlalchemy import Engine, text

from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.db]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _code(caplog: pytest.LogCaptureFixture) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = re.findall(r"one-time code for \S+: (\d{6})", caplog.text)
        if found:
            return found[-1]
        time.sleep(0.05)
    raise AssertionError("the server logged no code")


def test_resident_reports_by_qr_and_rates_the_result(
    live_server: str, engine: Engine, page, caplog, tmp_path: Path, auth_headers: dict[str, str]
) -> None:
    pg, log = page
    pg.set_viewport_size({"width": 390, "height": 844})  # a phone
    with engine.connect() as conn:
        building, address = conn.execute(
            text("SELECT id, address FROM buildings ORDER BY id DESC LIMIT 1")
        ).one()
    caplog.set_level(logging.INFO, logger="api.routes.residents")
    resp = pg.goto(f"{live_server}/r/b/{building}", wait_until="networkidle")
    assert resp is not None and resp.status == 200
    assert address in pg.inner_text("#place")

    pg.fill("#phone", "13811112222")
    pg.click("#send")
    pg.wait_for_selector("#login-msg.ok")
    pg.fill("#code", _code(caplog))
    pg.click("#verify")
    pg.wait_for_selector("#report:not(.hidden)")
    pg.wait_for_selector("#category option", state="attached")
    pg.select_option("#category", label="电梯故障")
    pg.fill("#text", "3单元电梯停在两层之间")
    photo = tmp_path / "lift.png"
    photo.write_bytes(PNG)
    pg.set_input_files("#photo", str(photo))
    pg.click("#submit")
    pg.wait_for_selector("#report-msg.ok")
    incident = int(re.findall(r"\d+", pg.inner_text("#report-msg"))[-1])
    pg.wait_for_selector(f'#list .item[data-id="{incident}"]')
    assert "已上报" in pg.inner_text(f'#list .item[data-id="{incident}"]')

    for to in ("accepted", "dispatched", "in_progress", "resolved"):
        r = httpx.post(
            f"{live_server}/incidents/{incident}/transitions",
            json={"to": to, "actor": "调度员", "note": "电梯已修复" if to == "resolved" else None},
            timeout=20,
            headers=auth_headers,
        )
        assert r.status_code == 200, r.text
    pg.reload(wait_until="networkidle")  # the token stays in this tab's session storage
    item = f'#list .item[data-id="{incident}"]'
    pg.wait_for_selector(f"{item} button.rate")
    assert "电梯已修复" in pg.inner_text(item)
    screenshot(pg, "resident-before-rating")
    pg.select_option(f"{item} select.score", "5")
    pg.fill(f"{item} input.comment", "很及时")
    pg.click(f"{item} button.rate")
    pg.wait_for_function(
        'id => { const el = document.querySelector(`#list .item[data-id="${id}"]`);'
        " return el && el.innerText.includes('已评价'); }",
        arg=incident,
    )
    screenshot(pg, "resident-rated")
    stored = httpx.get(
        f"{live_server}/incidents/{incident}", timeout=20, headers=auth_headers
    ).json()
    assert stored["status"] == "evaluated" and stored["satisfaction"] == 5
    assert stored["source"] == "随手拍" and len(stored["photos"]) == 1
    assert log.problems() == {}
    with engine.begin() as conn:  # the live server committed: leave the database as found
        conn.execute(text("DELETE FROM incidents WHERE id = :i"), {"i": incident})
