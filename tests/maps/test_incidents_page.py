"""The incident and briefing dashboards: server-side aggregation against direct counts, the
GCJ-02 shift of overlays on AMap/Tencent base maps, and pages that link nothing outside."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.crs import wgs84_to_gcj02
from gis.db.config import get_taxonomy
from gis.db.queries import dashboards as q
from gis.db.queries.grids import grids_frame
from gis.db.queries.kpis import kpi_frame
from gis.errors import GisError
from gis.kpis import incident_kpis
from maps.assets import outside_urls
from maps.basemaps import BaseMapError, base_map, shift_frame, shift_points
from maps.incidents import (
    RECENT_PER_GRID,
    build_incidents_page,
    choropleth_layer,
    class_breaks,
    coarsen_heat,
)

pytestmark = pytest.mark.db


def _direct_counts(session: Session, column: str, where: str = "TRUE") -> dict[int, int]:
    rows = session.execute(
        text(
            f"SELECT {column}, count(*) FROM incidents WHERE {column} IS NOT NULL AND {where} "
            "GROUP BY 1"
        )
    ).all()
    return {int(k): int(n) for k, n in rows}


@pytest.mark.parametrize(
    ("flt", "where"),
    [
        (q.IncidentFilter(), "TRUE"),
        (q.IncidentFilter(sources=("热线", "12345")), "source IN ('热线', '12345')"),
    ],
)
def test_grid_counts_equal_direct_counts(session: Session, flt: q.IncidentFilter, where: str):
    counts = q.grid_counts(session, flt)
    n_grids = session.execute(text("SELECT count(*) FROM grids")).scalar()
    assert len(counts) == n_grids and counts["grid_id"].is_unique
    for level, column in q.LEVEL_COLUMNS.items():
        direct = _direct_counts(session, column, where)
        part = counts[counts["level"] == level]
        got = {int(g): int(n) for g, n in zip(part["grid_id"], part["incidents"], strict=True)}
        assert {g: n for g, n in got.items() if n} == direct, level
        assert all(n == 0 for g, n in got.items() if g not in direct)
    # some level has counts, and the filter really filters
    assert counts["incidents"].sum() > 0
    hh = counts[counts["households"] > 0].iloc[0]
    assert hh["rate_per_1000"] == pytest.approx(round(hh["incidents"] / hh["households"] * 1000, 2))


def test_category_and_status_filters(session: Session) -> None:
    cat = session.execute(
        text("SELECT category, category_code FROM incidents GROUP BY 1, 2 ORDER BY count(*) DESC")
    ).first()
    session.execute(
        text(
            "UPDATE incidents SET status = 'rejected', closed_at = reported_at "
            "WHERE id IN (SELECT id FROM incidents ORDER BY id LIMIT 40)"
        )
    )
    by_name = q.grid_counts(session, q.IncidentFilter(categories=(cat.category,)))
    by_code = q.grid_counts(session, q.IncidentFilter(categories=(cat.category_code,)))
    direct = _direct_counts(session, "micro_grid_id", f"category = '{cat.category}'")
    for frame in (by_name, by_code):
        micro = frame[(frame["level"] == "micro") & (frame["incidents"] > 0)]
        assert dict(zip(micro["grid_id"], micro["incidents"], strict=True)) == direct
    rejected = q.grid_counts(session, q.IncidentFilter(statuses=("rejected",)))
    assert rejected.loc[rejected["level"] == "street", "incidents"].sum() == 40 - int(
        session.execute(
            text(
                "SELECT count(*) FROM (SELECT street_id FROM incidents ORDER BY id LIMIT 40) s "
                "WHERE street_id IS NULL"
            )
        ).scalar()
    )
    with pytest.raises(GisError, match="unknown status"):
        q.IncidentFilter(statuses=("lost",))
    with pytest.raises(GisError, match="unknown source"):
        q.IncidentFilter(sources=("pigeon",))


@pytest.mark.parametrize("period", ["week", "month"])
def test_period_heat_sums_to_direct_counts(session: Session, period: str) -> None:
    cells = q.period_heat(session, period=period, cell_deg=0.001)
    rows = session.execute(
        text(
            f"SELECT date_trunc('{period}', reported_at AT TIME ZONE 'Asia/Shanghai')::date, "
            "count(*) FROM incidents WHERE geom IS NOT NULL GROUP BY 1"
        )
    ).all()
    direct = {d.isoformat(): int(n) for d, n in rows}
    assert cells.groupby("period")["weight"].sum().to_dict() == direct
    # a cell holds exactly the points inside it
    one = cells.sort_values("weight").iloc[-1]
    n = session.execute(
        text(
            "SELECT count(*) FROM incidents WHERE geom IS NOT NULL "
            f"AND date_trunc('{period}', reported_at AT TIME ZONE 'Asia/Shanghai')::date = :p "
            "AND floor(ST_X(geom) / 0.001) = :gx AND floor(ST_Y(geom) / 0.001) = :gy"
        ),
        {"p": one["period"], "gx": int(one["gx"]), "gy": int(one["gy"])},
    ).scalar()
    assert n == one["weight"] > 0


def test_coarsen_heat_keeps_totals_and_caps_rows() -> None:
    rng = np.random.default_rng(3)
    cells = pd.DataFrame(
        {
            "period": rng.choice(["2026-01-01", "2026-02-01"], 5000),
            "gx": rng.integers(227_000, 227_200, 5000),
            "gy": rng.integers(69_500, 69_700, 5000),
            "weight": rng.integers(1, 5, 5000),
        }
    ).drop_duplicates(["period", "gx", "gy"])
    out, size = coarsen_heat(cells, 0.0005, max_points=1000)
    assert len(out) <= 1000 and size in (0.001, 0.002, 0.004, 0.008)
    assert out["weight"].sum() == cells["weight"].sum()
    assert out.groupby("period")["weight"].sum().to_dict() == (
        cells.groupby("period")["weight"].sum().astype(float).to_dict()
    )
    same, size1 = coarsen_heat(cells, 0.0005, max_points=10**6)
    assert size1 == 0.0005 and len(same) == len(cells)
    assert same["lon"].iloc[0] == pytest.approx((cells["gx"].iloc[0] + 0.5) * 0.0005)


def test_recent_popups_hold_the_latest_five(session: Session) -> None:
    counts = q.grid_counts(session)
    recent = q.recent_incidents(session)
    grids = grids_frame(session, level="micro")
    frame = grids.merge(
        counts[["code", "grid_id", "incidents", "handled", "open", "rate_per_1000"]], on="code"
    )
    busiest = frame.sort_values("incidents").iloc[-1]
    assert busiest["incidents"] > RECENT_PER_GRID
    _group, gj, _breaks = choropleth_layer(frame, "micro", recent, level_column="micro_grid_id")
    features = gj.data["features"]
    popup = next(f for f in features if f["properties"]["n"] == busiest["incidents"])
    popup = popup["properties"]["popup"]
    latest = session.execute(
        text(
            "SELECT reported_at, category FROM incidents WHERE micro_grid_id = :g "
            "ORDER BY reported_at DESC, id DESC LIMIT 5"
        ),
        {"g": int(busiest["grid_id"])},
    ).all()
    stamps = re.findall(r"<li>(\d\d-\d\d \d\d:\d\d) ", popup)
    expect = [
        r.reported_at.astimezone(UTC)
        .astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai"))
        .strftime("%m-%d %H:%M")
        for r in latest
    ]
    assert stamps == expect
    assert f"事件 <b>{int(busiest['incidents']):,}</b> 件" in popup


def test_kpi_summary_matches_pandas_kpis(session: Session) -> None:
    """Same numbers as gis.kpis on the per-incident frame, after some incidents move on."""
    session.execute(
        text(
            """
            UPDATE incidents SET status = s.st, handling_level = s.lvl,
                   resolved_at = CASE WHEN s.st IN ('resolved','evaluated','closed')
                                      THEN reported_at + s.h * interval '1 hour' END,
                   closed_at = CASE WHEN s.st IN ('closed','rejected')
                                    THEN reported_at + interval '3 days' END,
                   satisfaction = CASE WHEN s.st IN ('evaluated','closed') THEN s.sat END
            FROM (SELECT id,
                         (ARRAY['resolved','evaluated','closed','closed','rejected','accepted'])
                             [1 + id % 6] AS st,
                         (ARRAY['grid','community','street'])[1 + id % 7 % 3] AS lvl,
                         (id % 40) AS h, 1 + id % 5 AS sat
                  FROM incidents WHERE id % 3 = 0) s
            WHERE incidents.id = s.id
            """
        )
    )
    session.execute(
        text(
            "UPDATE incidents SET accepted_at = reported_at WHERE status <> 'reported' "
            "AND status <> 'rejected'"
        )
    )
    taxonomy = get_taxonomy()
    got = q.kpi_summary(session, taxonomy)
    frame = kpi_frame(session, taxonomy)
    want = incident_kpis(frame, []).iloc[0]
    total = got.iloc[0]
    assert total["community_id"] is None
    for col in ("incidents", "valid", "handled", "on_time", "closed", "closed_in_grid"):
        assert int(total[col]) == int(want[col]), col
    assert 0 < total["on_time"] < total["handled"]
    for col in ("handled_rate", "on_time_rate", "in_grid_share", "satisfaction"):
        assert total[col] == pytest.approx(float(want[col]), abs=1e-4), col
    per = incident_kpis(frame, ["community"]).set_index("community_name")
    for row in got.iloc[1:].itertuples():
        assert row.incidents == per.loc[row.name, "incidents"]
        assert row.on_time == per.loc[row.name, "on_time"]


def _square(lon: float, lat: float, d: float = 0.004) -> shapely.Polygon:
    return shapely.box(lon, lat, lon + d, lat + d)


def _tiny_inputs() -> tuple[gpd.GeoDataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    grids = gpd.GeoDataFrame(
        {
            "code": ["C1", "G1", "G2"],
            "name": ["一社区", "一网格", "二网格<b>"],
            "level": ["community", "grid", "grid"],
            "households": [900, 500, 400],
        },
        geometry=[_square(113.55, 34.80, 0.008), _square(113.55, 34.80), _square(113.554, 34.80)],
        crs=4326,
    )
    counts = pd.DataFrame(
        {
            "grid_id": [1, 2, 3],
            "code": ["C1", "G1", "G2"],
            "incidents": [30, 20, 10],
            "handled": [10, 5, 5],
            "open": [20, 15, 5],
            "rate_per_1000": [33.33, 40.0, 25.0],
        }
    )
    gx, gy = int(113.552 // 0.0005), int(34.802 // 0.0005)
    heat = pd.DataFrame(
        {
            "period": ["2026-01-01", "2026-02-01"],
            "gx": [gx, gx + 2],
            "gy": [gy, gy],
            "weight": [20, 40],
        }
    )
    t = datetime(2026, 2, 3, 8, 0, tzinfo=UTC)
    recent = pd.DataFrame(
        {
            "id": [1, 2],
            "reported_at": pd.to_datetime([t, t - timedelta(days=1)], utc=True),
            "category": ["环境卫生", "占道经营"],
            "source": ["巡查", "热线"],
            "status": ["reported", "closed"],
            "address": ["科学大道<script>", None],
            "street_id": [None, None],
            "community_id": [1, 1],
            "grid_id": [2, 3],
            "micro_grid_id": [None, None],
            "dedicated_grid_id": [None, None],
        }
    )
    return grids, counts, heat, recent


def _features(page: str) -> list[dict]:
    """Every feature of the GeoJSON layers embedded in the page."""
    blobs = re.findall(r'_add\((\{"features".*?"type": "FeatureCollection"\})\);', page)
    return [f for blob in blobs for f in json.loads(blob)["features"]]


def _first_ring(page: str, name: str) -> list[list[float]]:
    """The first ring of the feature named ``name`` in the page's embedded GeoJSON."""
    for feature in _features(page):
        if feature["properties"].get("name") == name:
            return feature["geometry"]["coordinates"][0]
    raise AssertionError(f"no feature {name} in the page")


def test_gcj_shift_moves_overlays_by_the_gcj_offset() -> None:
    grids, counts, heat, recent = _tiny_inputs()
    plain = build_incidents_page(grids, counts, heat, recent, base=base_map("none"))
    amap = build_incidents_page(grids, counts, heat, recent, base=base_map("amap"))
    ring0 = np.array(_first_ring(plain, "一网格"))
    ring1 = np.array(_first_ring(amap, "一网格"))
    gx, gy = wgs84_to_gcj02(ring0[:, 0], ring0[:, 1])
    np.testing.assert_allclose(ring1[:, 0], gx, atol=2e-5)
    np.testing.assert_allclose(ring1[:, 1], gy, atol=2e-5)
    # the offset in Zhengzhou is a few hundred metres
    shift_m = np.hypot((gx - ring0[:, 0]) * 91_000, (gy - ring0[:, 1]) * 111_000)
    assert ((shift_m > 200) & (shift_m < 700)).all()
    # heat cells move the same way
    lon, lat = (113.552 // 0.0005 + 0.5) * 0.0005, (34.802 // 0.0005 + 0.5) * 0.0005
    slon, slat = shift_points(np.array([lon]), np.array([lat]), base_map("amap"))
    assert f"[{round(lat, 5)}, {round(lon, 5)}" in plain.replace(".0,", ",")
    assert f"[{round(float(slat[0]), 5)}, {round(float(slon[0]), 5)}" in amap
    assert "autonavi.com/appmaptile" in amap and "autonavi" not in plain
    # no shift for Tianditu / OSM (WGS84-aligned); frames are untouched
    tdt = base_map("tianditu", tianditu_key="k&1")
    assert tdt.tiles[0].url.startswith("https://t{s}.tianditu.gov.cn/vec_w/")
    assert tdt.tiles[1].url.endswith("TILECOL={x}&tk=k%261") and "cva_w" in tdt.tiles[1].url
    same = shift_frame(grids, tdt)
    assert same.geometry.equals(grids.geometry)
    assert shift_frame(grids, base_map("tencent")).geometry.iloc[0].bounds[0] > 113.55


def test_page_links_nothing_outside_and_escapes() -> None:
    grids, counts, heat, recent = _tiny_inputs()
    page = build_incidents_page(
        grids, counts, heat, recent, filters={"source": ("热线",)}, choices={"source": ["热线"]}
    )
    assert outside_urls(page) == []
    assert "https://" not in page.replace("http://www.w3.org", "")
    popups = " ".join(f["properties"]["popup"] for f in _features(page))
    assert "科学大道&lt;script&gt;" in popups and "<script>" not in popups
    assert "二网格&lt;b&gt;" in {f["properties"]["name"] for f in _features(page)}
    for label in ("事件热力图", "三级网格·事件分布", "社区·事件分布", "每千户事件数", "筛选"):
        assert label in page or json.dumps(label)[1:-1] in page, label
    assert "2026年1月" in page and "2026年2月" in page
    assert page.count("/static/vendor/timedimension/") >= 2
    with pytest.raises(BaseMapError, match="WANGGE_TIANDITU_KEY"):
        base_map("tianditu")
    with pytest.raises(BaseMapError, match="unknown base map"):
        base_map("google")


def test_class_breaks() -> None:
    assert class_breaks([0, 0]) == []
    b = class_breaks([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    assert b[-1] == 10 and b == sorted(b) and len(b) == 5


def test_routes_serve_pages_and_reject_bad_input(client) -> None:
    r = client.get("/maps/incidents", params={"source": ["热线", ""], "period": "week"})
    assert r.status_code == 200 and "事件态势图" in r.text
    assert outside_urls(r.text) == []
    r = client.get("/maps/briefing")
    assert r.status_code == 200
    for label in ("处置率", "按时办结率", "群众满意度", "小事不出格", "巡查覆盖率", "服务圈覆盖率"):
        assert label in r.text
    assert outside_urls(r.text) == []
    assert client.get("/maps/incidents", params={"base": "google"}).status_code == 422
    assert client.get("/maps/incidents", params={"base": "tianditu"}).status_code == 422
    assert client.get("/maps/incidents", params={"status": "lost"}).status_code == 422
    assert client.get("/maps/incidents", params={"period": "year"}).status_code == 422
