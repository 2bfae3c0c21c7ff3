"""The leadership overview (cards, map layers, small maps, charts), the patrol page and the
base-map switch of every page: built from hand-made frames, and served from the fixture
district with the numbers checked against direct queries."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from api.security import create_token, hash_password
from gis.crs import wgs84_to_gcj02
from gis.db.queries import dashboards as q
from gis.db.queries.tracks import daily_status
from gis.db.queries.users import add_user
from maps.assets import outside_urls
from maps.basemaps import base_map
from maps.hotspots import build_hotspot_page
from maps.overview import OverviewPanel, build_overview, svg_small_map
from maps.patrol import LAYERS, patrol_page_html, visit_buildings
from maps.service import build_service_page
from tests.maps import X0, Y0, tiny_grids, tiny_heat

CARD_LABELS = (
    "事件总数",
    "处置率",
    "按时办结率",
    "群众满意度",
    "小事不出格",
    "巡查覆盖率",
    "服务圈覆盖率",
)


def _in_page(label: str, page: str) -> bool:
    """Text reaches the page as HTML or inside JSON (where non-ASCII is escaped)."""
    return label in page or json.dumps(label)[1:-1] in page


def _panel(grids: gpd.GeoDataFrame) -> OverviewPanel:
    micro = grids[grids["level"] == "micro"].reset_index(drop=True)
    status = ["patrolled", "short", "none", "patrolled", "patrolled", "none", "short", "none"]
    kpis = pd.DataFrame(
        [
            {"community_id": None, "name": None, "incidents": 120, "valid": 110, "handled": 99,
             "on_time": 90, "closed": 80, "closed_in_grid": 60, "satisfaction": 4.5,
             "evaluations": 70, "handled_rate": 0.9, "on_time_rate": 0.9091, "in_grid_share": 0.75},
            {"community_id": 2, "name": "枫杨社区", "incidents": 70, "valid": 65, "handled": 60,
             "on_time": 55, "closed": 50, "closed_in_grid": 40, "satisfaction": 4.4,
             "evaluations": 40, "handled_rate": 0.923, "on_time_rate": 0.9167,
             "in_grid_share": 0.8},
        ]
    )  # fmt: skip
    buildings = gpd.GeoDataFrame(
        {"band": [5.0, 10.0, 15.0, np.nan]},
        geometry=[shapely.box(X0 + k * 0.004, Y0 + 0.004, X0 + k * 0.004 + 0.0005, Y0 + 0.0045)
                  for k in range(4)],
        crs=4326,
    )  # fmt: skip
    return OverviewPanel(
        kpis=kpis,
        trend=pd.DataFrame(
            {"period": ["2026-01-01", "2026-02-01"], "incidents": [60, 60], "handled": [50, 49]}
        ),
        by_category=pd.DataFrame({"key": ["噪音扰民", "乱停车"], "incidents": [70, 50]}),
        patrol={"day": "2026-10-27", "grids": 8, "patrolled": 3, "unit": "微网格",
                "visits_due": 10, "visits_made": 7},
        service={"minutes": 15, "households": 1000, "covered": 850, "covered_straight": 990},
        patrol_grids=micro.assign(status=status, minutes=[30, 4, 0, 12, 50, 0, 2, 0]),
        patrol_days=pd.DataFrame({"day": ["2026-10-26", "2026-10-27"], "patrolled": [5, 3]}),
        service_bands=pd.DataFrame(
            {"minutes": [5, 10, 15], "share": [0.3, 0.6, 0.85], "share_straight": [0.5, 0.9, 0.99]}
        ),
        buildings=buildings,
        isochrones=gpd.GeoDataFrame(
            {"name": ["甲站"]}, geometry=[shapely.box(X0, Y0, X0 + 0.01, Y0 + 0.01)], crs=4326
        ),
        stations=gpd.GeoDataFrame(
            {"name": ["甲站"], "kind": ["养老服务站"]},
            geometry=[shapely.Point(X0 + 0.005, Y0 + 0.005)],
            crs=4326,
        ),
        communities=grids[grids["level"] == "community"],
        subtitle="测试",
        export_query="base=none",
    )  # fmt: skip


def test_overview_panel_cards_layers_small_maps_and_export_links() -> None:
    grids = tiny_grids()
    page = build_overview(grids, tiny_heat(), title="总览测试", panel=_panel(grids))
    cards = page[page.index('<div id="wangge-cards">') :]
    cards = cards[: cards.index('<div class="wg-row wg-main">')]
    assert [c in cards for c in CARD_LABELS] == [True] * 7
    assert "120" in cards and "90.0%" in cards and "4.50 / 5" in cards and "75.0%" in cards
    assert "37.5%" in cards and "微网格 3/8（10-27）" in cards  # 3 of 8 patrolled
    assert "85.0%" in cards and "15 分钟步行可达户数" in cards
    # the map sits in its slot, its legend inside it; extra layers in the control
    assert "getElementById('wg-map-slot').prepend(" in page
    for name in ("巡查状态（2026-10-27）", "15分钟服务圈", "服务站点", "事件热力图", "微网格"):
        assert _in_page(name, page)
    assert page.count('class="wg-smallmap"') == 2
    assert page.count('class="wg-chart"') == 4  # trend, categories, patrol days, bands
    # the small patrol map: one path per micro grid (8) + community outlines (2)
    patrol = page[page.index('id="wangge-patrol"') :]
    patrol = patrol[: patrol.index("</svg>")]
    assert patrol.count("<path ") == 8 + 2
    assert patrol.count('fill="#d73027"') == 3  # three grids nobody entered
    service = page[page.index('id="wangge-service"') :]
    assert service[: service.index("</svg>")].count("<circle ") == 4
    assert "15分钟圈外 1 栋" in service and "本周重点户走访：7/10 户（70.0%）" in page
    assert 'href="/maps/overview.pdf?base=none"' in page
    assert outside_urls(page) == [] and "L.tileLayer(" not in page


def test_overview_without_panel_is_the_full_screen_map() -> None:
    page = build_overview(tiny_grids(), tiny_heat())
    assert 'id="wangge-cards"' not in page and "wg-map-slot" not in page
    assert "position:fixed" in page[page.index('<div id="wangge-legend"') :][:200]


def test_overview_on_amap_shifts_every_overlay() -> None:
    grids = tiny_grids()
    plain = build_overview(grids, tiny_heat(), panel=_panel(grids))
    amap = build_overview(grids, tiny_heat(), panel=_panel(grids), base=base_map("amap"))
    assert "autonavi.com/appmaptile" in amap and "高德地图（GCJ-02，叠加图层已转换）" in amap
    heat0 = json.loads(re.search(r"L\.heatLayer\(\s*(\[\[.*?\]\])", plain, re.S).group(1))
    heat1 = json.loads(re.search(r"L\.heatLayer\(\s*(\[\[.*?\]\])", amap, re.S).group(1))
    glon, glat = wgs84_to_gcj02(np.array([heat0[0][1]]), np.array([heat0[0][0]]))
    assert heat1[0][:2] == pytest.approx([float(glat[0]), float(glon[0])], abs=2e-6)
    station0 = re.search(r"L\.circleMarker\(\s*\[([\d.]+), ([\d.]+)\]", plain)
    station1 = re.search(r"L\.circleMarker\(\s*\[([\d.]+), ([\d.]+)\]", amap)
    slon, slat = wgs84_to_gcj02(np.array([float(station0[2])]), np.array([float(station0[1])]))
    assert (float(station1[1]), float(station1[2])) == pytest.approx(
        (float(slat[0]), float(slon[0])), abs=2e-6
    )
    shift_m = (float(station1[2]) - float(station0[2])) * 91_000
    assert 100 < abs(shift_m) < 800


def test_svg_small_map_keeps_the_shape_inside_the_frame() -> None:
    square = shapely.box(113.5, 34.8, 113.51, 34.81)
    svg = svg_small_map(
        [([square], ["#f00"], {}), ([shapely.Point(113.505, 34.805)], ["#00f"], {"r": 2})],
        bounds=square.bounds,
        width=200,
        height=200,
    )
    d = re.search(r'd="M([^"]+)Z"', svg).group(1)
    xy = np.array([[float(v) for v in p.split(",")] for p in d.split("L")])
    assert xy.min() >= 0 and xy.max() <= 200
    # cos(latitude) scaling: the square is narrower than tall on the page
    w, h = np.ptp(xy[:, 0]), np.ptp(xy[:, 1])
    assert w / h == pytest.approx(np.cos(np.radians(34.805)), rel=1e-3)
    cx, cy = (float(v) for v in re.search(r'cx="([\d.]+)" cy="([\d.]+)"', svg).groups())
    centre = (xy.min(axis=0) + xy.max(axis=0)) / 2
    assert (cx, cy) == pytest.approx(tuple(centre), abs=0.5)


def _patrol_inputs():
    grids = tiny_grids()
    micro = grids[grids["level"] == "micro"].reset_index(drop=True)
    g = micro[["code", "name", "geometry"]].assign(
        minutes=[30.0, 4, 0, 12, 50, 0, 2, 0],
        distance_m=[900.0, 80, 0, 300, 1500, 0, 40, 0],
        workers=[1, 1, 0, 1, 2, 0, 1, 0],
        patrolled=[True, False, False, True, True, False, False, False],
    )
    tracks = gpd.GeoDataFrame(
        {"id": [1], "staff_name": ["王<b>五</b>"], "distance_m": [1200.0]},
        geometry=[shapely.MultiLineString([[(X0 + 0.001, Y0 + 0.001), (X0 + 0.01, Y0 + 0.008)]])],
        crs=4326,
    )
    unc = gpd.GeoDataFrame(
        {"length_m": [55.0]},
        geometry=[shapely.LineString([(X0 + 0.015, Y0 + 0.002), (X0 + 0.0156, Y0 + 0.002)])],
        crs=4326,
    )
    b1 = shapely.box(X0 + 0.002, Y0 + 0.002, X0 + 0.0025, Y0 + 0.0025)
    b2 = shapely.box(X0 + 0.012, Y0 + 0.012, X0 + 0.0125, Y0 + 0.0125)
    homes = pd.DataFrame(
        {
            "household_id": [1, 2, 3],
            "building_id": [10, 10, 20],
            "kind": ["独居老人", "低保户", "独居老人"],
            "visits": [1, 0, 2],
            "address": ["科学大道9号1号楼", "科学大道9号1号楼", "珍珠街11号2号楼"],
            "geometry": [b1, b1, b2],
        }
    )
    return g, tracks, unc, homes


def test_visit_buildings_groups_households_by_building() -> None:
    *_, homes = _patrol_inputs()
    b = visit_buildings(homes).set_index("building_id")
    assert b.loc[10, "households"] == 2 and b.loc[10, "visited"] == 1
    assert b.loc[10, "status"] == "some" and b.loc[20, "status"] == "all"
    assert set(b.loc[10, "kinds"].split("、")) == {"独居老人1", "低保户1"}
    assert "people" not in b.columns
    assert visit_buildings(homes.iloc[0:0]).empty


def test_patrol_page_layers_legend_and_no_personal_data_by_default() -> None:
    g, tracks, unc, homes = _patrol_inputs()
    day = date(2026, 10, 27)
    page = patrol_page_html(day, g, tracks, unc, street_share=0.9, households=homes)
    for name in LAYERS:
        assert _in_page(name, page)
    legend = page[page.index('<div id="wangge-legend"') :]
    assert "巡查地图 2026-10-27" in legend and "已巡查（≥10分钟）（3 个微网格）" in legend
    assert "巡查不足（2 个微网格）" in legend and "未巡查（3 个微网格）" in legend
    assert "2/3 户，66.7%" in legend and "不含个人信息" in legend and "街道覆盖 90.0%" in legend
    assert 'name="date" value="2026-10-27"' in page  # the day picker
    assert "<b>五</b>" not in page  # names escaped
    assert not _in_page("户主", page)
    with_people = homes.assign(
        people=["张三（1单元101室）", "李四（2单元202室）", "赵六（1单元3室）"]
    )
    page = patrol_page_html(day, g, tracks, unc, households=with_people)
    assert _in_page("张三（1单元101室）；李四（2单元202室）", page)
    assert _in_page("户主（个人信息）", page)
    assert "含个人信息（已记入审计日志）" in page


def test_patrol_hotspot_and_service_pages_shift_on_amap() -> None:
    g, tracks, unc, homes = _patrol_inputs()
    amap = base_map("amap")
    plain = patrol_page_html(date(2026, 10, 27), g, tracks, unc, households=homes)
    shifted = patrol_page_html(date(2026, 10, 27), g, tracks, unc, households=homes, base=amap)

    def first_coord(page: str, key: str) -> tuple[float, float]:
        """First vertex of the first embedded feature having property ``key``."""
        for blob in re.findall(r"_add\((\{\"features\".*?\})\);\n", page):
            for f in json.loads(blob)["features"]:
                if key in f["properties"]:
                    xy = np.asarray(f["geometry"]["coordinates"], dtype=float).reshape(-1, 2)
                    return float(xy[0, 0]), float(xy[0, 1])
        raise AssertionError(f"no feature with {key}")

    x0, y0 = first_coord(plain, "length_m")
    x1, y1 = first_coord(shifted, "length_m")
    gx, gy = wgs84_to_gcj02(np.array([x0]), np.array([y0]))
    assert (x1, y1) == pytest.approx((float(gx[0]), float(gy[0])), abs=2e-5)
    assert "autonavi" in shifted and "autonavi" not in plain
    x0, y0 = first_coord(plain, "kinds")  # the key households' buildings move too
    x1, y1 = first_coord(shifted, "kinds")
    gx, gy = wgs84_to_gcj02(np.array([x0]), np.array([y0]))
    assert (x1, y1) == pytest.approx((float(gx[0]), float(gy[0])), abs=2e-5)
    # hotspot and service pages take the base map too
    gi = tiny_grids()
    gi = gi[gi["level"] == "micro"].assign(
        count=3, gi_z=0.1, gi_p=0.9, gi_class="不显著", gi_core=False
    )
    hp = build_hotspot_page(gi, None, base=amap)
    assert "autonavi" in hp and "高德地图（GCJ-02" in hp and 'option value="amap" selected' in hp
    assert "autonavi" not in build_hotspot_page(gi, None)
    st = gpd.GeoDataFrame(
        {"station_id": [1], "kind": ["养老服务站"], "name": ["甲站"]},
        geometry=[shapely.Point(X0 + 0.005, Y0 + 0.005)],
        crs=4326,
    )
    empty = gpd.GeoDataFrame({"station_id": [], "name": [], "minutes": []}, geometry=[], crs=4326)
    sp0 = build_service_page(st, empty, pd.DataFrame(), empty)
    sp1 = build_service_page(st, empty, pd.DataFrame(), empty, base=amap)
    m0 = re.search(r"L\.circleMarker\(\s*\[([\d.]+), ([\d.]+)\]", sp0)
    m1 = re.search(r"L\.circleMarker\(\s*\[([\d.]+), ([\d.]+)\]", sp1)
    slon, slat = wgs84_to_gcj02(np.array([float(m0[2])]), np.array([float(m0[1])]))
    assert (float(m1[1]), float(m1[2])) == pytest.approx((float(slat[0]), float(slon[0])), abs=1e-6)
    assert "高德地图（GCJ-02" in sp1


# ------------------------------------------------------------------ served, fixture district


@pytest.mark.db
def test_patrol_days_match_daily_status(session: Session) -> None:
    day = q.latest_patrol_day(session)
    assert day is not None
    frame = q.patrol_days(session, day, days=7)
    assert len(frame) == 7 and frame["day"].iloc[-1] == day.isoformat()
    for d, n in zip(frame["day"], frame["patrolled"], strict=True):
        status = daily_status(session, date.fromisoformat(d), level="micro")
        assert n == int(status["patrolled"].sum()), d
    assert frame["patrolled"].sum() > 0
    assert (frame["grids"] == len(daily_status(session, day, level="micro"))).all()
    before = q.latest_patrol_day(session, before=pd.Timestamp(day, tz="Asia/Shanghai"))
    assert before is None or before < day


@pytest.mark.db
def test_overview_route_cards_match_the_database(client, session: Session) -> None:
    from api.routes.dashboards import patrol_summary

    r = client.get("/maps/overview")
    assert r.status_code == 200 and outside_urls(r.text) == []
    total = session.execute(text("SELECT count(*) FROM incidents")).scalar()
    cards = r.text[r.text.index('<div id="wangge-cards">') :]
    assert f"{total:,}" in cards[:400]
    card, frame, days = patrol_summary(session)
    assert len(days) == 7 and days["day"].iloc[-1] == card["day"]
    status = daily_status(session, date.fromisoformat(card["day"]), level="micro")
    assert card["patrolled"] == int(status["patrolled"].sum()) and card["grids"] == len(status)
    assert f"微网格 {card['patrolled']}/{card['grids']}" in cards
    assert set(frame["status"]) <= {"patrolled", "short", "none"}
    # a filter narrows the cards and the heat alike
    n = session.execute(text("SELECT count(*) FROM incidents WHERE source = '热线'")).scalar()
    located = session.execute(
        text("SELECT count(*) FROM incidents WHERE source = '热线' AND geom IS NOT NULL")
    ).scalar()
    r = client.get("/maps/overview", params={"source": "热线"})
    assert r.status_code == 200 and "筛选：热线" in r.text
    cards = r.text[r.text.index('<div id="wangge-cards">') :]
    assert f">{n:,}</div>" in cards[:400]
    assert f"事件热力图：共 {located:,} 件事件" in r.text
    assert client.get("/maps/overview", params={"base": "google"}).status_code == 422
    r = client.get("/maps/overview", params={"base": "amap"})
    assert r.status_code == 200 and "autonavi.com" in r.text
    assert 'href="/maps/overview.pdf?base=amap"' in r.text


def _role_headers(session: Session, role: str) -> dict[str, str]:
    uid = add_user(
        session, username=f"h8-{role}", password_hash=hash_password("correct horse"), role=role
    )
    session.flush()
    return {"Authorization": f"Bearer {create_token(uid, role)}"}


@pytest.mark.db
def test_patrol_route_personal_data_only_for_allowed_roles(client, session: Session) -> None:
    names = [
        n for (n,) in session.execute(text("SELECT name FROM key_household_people")).all() if n
    ]
    assert names
    r = client.get("/maps/patrol")
    assert r.status_code == 200 and "重点户走访" in r.text and "不含个人信息" in r.text
    assert not any(_in_page(n, r.text) for n in names)
    leader = _role_headers(session, "leader")
    assert client.get("/maps/patrol", headers=leader).status_code == 200
    assert client.get("/maps/patrol", params={"personal": True}, headers=leader).status_code == 403
    before = session.execute(
        text("SELECT count(*) FROM audit_log WHERE action = 'read_personal'")
    ).scalar()
    r = client.get("/maps/patrol", params={"personal": True})
    assert r.status_code == 200 and any(_in_page(n, r.text) for n in names)
    after = session.execute(
        text("SELECT count(*) FROM audit_log WHERE action = 'read_personal'")
    ).scalar()
    assert after == before + 1
    day = q.latest_patrol_day(session)
    earlier = day - timedelta(days=1)
    r = client.get("/maps/patrol", params={"date": earlier.isoformat()})
    assert r.status_code == 200 and f"巡查地图 {earlier.isoformat()}" in r.text
    assert client.get("/maps/patrol", params={"date": "yesterday"}).status_code == 422
    assert client.get("/maps/patrol", params={"base": "bing"}).status_code == 422
    for path in ("/maps/hotspots", "/maps/service"):
        assert client.get(path, params={"base": "bing"}).status_code == 422
        assert "autonavi.com" in client.get(path, params={"base": "amap"}).text


@pytest.mark.db
@pytest.mark.parametrize("period", ["month", "week"])
def test_one_scan_summary_equals_the_separate_queries(session: Session, period: str) -> None:
    from gis.db.config import get_taxonomy

    taxonomy = get_taxonomy()
    for flt in (q.IncidentFilter(), q.IncidentFilter(sources=("热线", "12345"))):
        got = q.dashboard_summary(session, taxonomy, flt, period=period)
        want = q.kpi_summary(session, taxonomy, flt)
        assert len(want) > 1 and want["incidents"].iloc[0] > 0
        cols = list(want.columns)
        pd.testing.assert_frame_equal(got["kpis"][cols], want, check_dtype=False)
        pd.testing.assert_frame_equal(got["trend"], q.period_counts(session, flt, period=period))
        for column in ("category", "source"):
            pd.testing.assert_frame_equal(
                got[f"by_{column}"], q.counts_by(session, column, flt), check_dtype=False
            )
