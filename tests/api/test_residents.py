"""Residents: QR codes, one-time codes, own reports only, rating the result (群众评单)."""

from __future__ import annotations

import logging
import re

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.residents import PhoneError, mask_phone, normalise_phone

pytestmark = pytest.mark.db
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
LOGGER = "api.routes.residents"


def test_phone_numbers() -> None:
    assert normalise_phone("+86 138-0013-8000") == "13800138000"
    assert mask_phone("13800138000") == "138****8000"
    for bad in ("12345", "23800138000", "1380013800a", ""):
        with pytest.raises(PhoneError):
            normalise_phone(bad)


def _sign_in(client, caplog, phone: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    with caplog.at_level(logging.INFO, logger=LOGGER):
        sent = client.post("/resident/code", json={"phone": phone})
    assert sent.status_code == 202 and sent.json()["sent_to"] == mask_phone(phone)
    code = re.findall(r"one-time code for \S+: (\d{6})", caplog.text)[-1]
    resp = client.post("/resident/verify", json={"phone": phone, "code": code})
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


def _building(session: Session) -> int:
    return int(session.execute(text("SELECT min(id) FROM buildings")).scalar_one())


def test_wrong_codes_are_counted_and_codes_are_rate_limited(client, caplog) -> None:
    phone = "13900001111"
    with caplog.at_level(logging.INFO, logger=LOGGER):
        client.post("/resident/code", json={"phone": phone})
    code = re.findall(r"(\d{6})", caplog.text)[-1]
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(5):
        bad = client.post("/resident/verify", json={"phone": phone, "code": wrong})
        assert bad.status_code == 400 and bad.json()["detail"] == "wrong code"
    locked = client.post("/resident/verify", json={"phone": phone, "code": code})
    assert locked.status_code == 400 and "too many" in locked.json()["detail"]
    client.post("/resident/code", json={"phone": phone})
    client.post("/resident/code", json={"phone": phone})
    fourth = client.post("/resident/code", json={"phone": phone})
    assert fourth.status_code == 422 and "at most 3" in fourth.json()["detail"]
    assert client.post("/resident/code", json={"phone": "12345678901"}).status_code == 422


def test_report_follow_and_rate_own_reports_only(client, session: Session, caplog) -> None:
    me = _sign_in(client, caplog, "13800138000")
    other = _sign_in(client, caplog, "13700137000")
    building = _building(session)
    page = client.get(f"/r/b/{building}")
    assert page.status_code == 200 and "居民扫码上报" in page.text and "http" not in page.text
    made = client.post(
        "/resident/reports",
        data={"category": "管道滴漏", "description": "楼道水管漏水", "building_id": str(building)},
        files=[("photos", ("leak.png", PNG, "image/png"))],
        headers={**me, "Idempotency-Key": "res-1"},
    )
    assert made.status_code == 201, made.text
    iid = made.json()["id"]
    stored = client.get(f"/incidents/{iid}").json()
    assert stored["source"] == "随手拍" and stored["building_id"] is None
    assert stored["micro_code"] is not None and len(stored["photos"]) == 1
    again = client.post(
        "/resident/reports",
        data={"category": "管道滴漏", "description": "楼道水管漏水", "building_id": str(building)},
        headers={**me, "Idempotency-Key": "res-1"},
    )
    assert again.json()["id"] == iid  # a retry from the phone is the same report
    mine = client.get("/resident/reports", headers=me).json()
    assert [r["id"] for r in mine] == [iid] and mine[0]["status"] == "reported"
    assert client.get("/resident/reports", headers=other).json() == []
    assert client.get("/resident/reports").status_code in (401, 403)  # only residents
    # the office handles it
    for to in ("accepted", "dispatched", "in_progress", "resolved"):
        r = client.post(f"/incidents/{iid}/transitions", json={"to": to, "actor": "调度员",
                                                               "note": f"{to} 已处理"})  # fmt: skip
        assert r.status_code == 200
    assert client.get("/resident/reports", headers=me).json()[0]["last_note"] == "resolved 已处理"
    stranger = client.post(f"/resident/reports/{iid}/evaluate", json={"satisfaction": 5},
                           headers=other)  # fmt: skip
    assert stranger.status_code == 404
    poor = client.post(f"/resident/reports/{iid}/evaluate",
                       json={"satisfaction": 2, "comment": "还在漏"}, headers=me)  # fmt: skip
    assert poor.status_code == 200 and poor.json()["status"] == "reopened"
    assert client.get(f"/incidents/{iid}").json()["evaluation_comment"] == "还在漏"


def test_qr_codes_and_the_community_sheet(client, session: Session) -> None:
    building = _building(session)
    png = client.get(f"/qr/buildings/{building}.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    code = session.execute(
        text("SELECT code FROM grids WHERE level = 'micro' ORDER BY code LIMIT 1")
    ).scalar_one()
    assert client.get(f"/qr/grids/{code}.png").content.startswith(b"\x89PNG")
    assert client.get(f"/r/g/{code}").status_code == 200
    community, n = session.execute(
        text(
            "SELECT c.code, count(b.id) FROM buildings b JOIN grids g ON g.id = b.micro_grid_id "
            "JOIN grids t ON t.id = g.parent_id JOIN grids c ON c.id = t.parent_id "
            "GROUP BY c.code ORDER BY count(b.id) DESC LIMIT 1"
        )
    ).one()
    pdf = client.get(f"/qr/communities/{community}.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type /Page\b", pdf.content))
    assert pages == -(-n // 20)  # twenty codes per A4 page
    assert client.get("/qr/communities/999999999.pdf").status_code == 404
    assert client.get("/qr/buildings/99999999.png").status_code == 404
