"""GET /hotspots (GeoJSON of Gi* classes and emerging patterns) and GET /maps/hotspots."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import geopandas as gpd
import pytest

from gis.hotspots import EMERGING_LABELS, GI_CLASSES

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def planted(fixture_district: Path) -> dict[str, str]:
    """The fixture's one planted hotspot: category, its first day and a day three weeks in
    (hotspots last 21-57 days), micro code."""
    h = gpd.read_file(fixture_district / "district.gpkg", layer="hotspots").iloc[0]
    start = date.fromisoformat(h["start"][:10])
    return {
        "category": h["category"],
        "start": start.isoformat(),
        "end": (start + timedelta(days=20)).isoformat(),
        "code": h["micro_codes"].split(",")[0],
    }


def test_hotspots_json_marks_the_planted_grid(client, planted: dict[str, str]) -> None:
    params = {k: planted[k] for k in ("category", "start", "end")}
    r = client.get("/hotspots", params=params)
    assert r.status_code == 200, r.text
    fc = r.json()
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 20
    assert fc["params"]["category"] == planted["category"] and fc["params"]["weeks"] == 8
    by_code = {f["properties"]["code"]: f["properties"] for f in fc["features"]}
    hot = by_code[planted["code"]]
    assert hot["gi_level"] > 0 and hot["gi_class"].startswith("热点") and hot["gi_core"] is True
    assert hot["count"] == max(p["count"] for p in by_code.values())
    assert fc["features"][0]["geometry"]["type"] == "MultiPolygon"
    summary = fc["summary"]
    assert list(summary["gi_classes"]) == list(GI_CLASSES)
    assert sum(summary["gi_classes"].values()) == 20 and summary["core"] == 1
    assert summary["incidents"] == sum(p["count"] for p in by_code.values())
    # emerging: 8 weeks ending with the week of `end`, the last three in the hotspot. In 20
    # grids a lone busy grid's weekly z stays near 1.7 (see tests/gis/db/test_hotspots_demo),
    # so only some of those weeks reach 90 %; the demo test checks the patterns themselves.
    assert len(fc["emerging_weeks"]) == 8 and fc["emerging_weeks"][-1] <= planted["end"]
    assert hot["hot_weeks"] >= 2 and hot["cold_weeks"] == 0
    assert hot["pattern_label"] == EMERGING_LABELS[hot["pattern"]]


def test_hotspots_json_filters_and_options(client, planted: dict[str, str]) -> None:
    everything = client.get("/hotspots", params={"geometry": "false"}).json()
    one = client.get(
        "/hotspots", params={"category": planted["category"], "geometry": "false"}
    ).json()
    assert 0 < one["summary"]["incidents"] < everything["summary"]["incidents"]
    assert all(f["geometry"] is None for f in one["features"])
    band = client.get("/hotspots", params={"weights": "distance", "weeks": 4}).json()
    assert band["params"]["weights"] == "distance" and len(band["emerging_weeks"]) == 4


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"start": "2026-06-01", "end": "2026-05-01"}, "after end"),
        ({"weeks": 2}, "greater than or equal"),
        ({"weights": "rook"}, "queen"),
        ({"end": "1900-01-01"}, "dates must lie between"),
    ],
)
def test_hotspots_json_rejects_bad_parameters(client, params: dict, match: str) -> None:
    r = client.get("/hotspots", params=params)
    assert r.status_code == 422 and match in r.text


def test_hotspots_page_is_offline_html(client, planted: dict[str, str]) -> None:
    r = client.get("/maps/hotspots", params={"category": planted["category"]})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert "事件热点分析" in page and "Gi* 热点分析" in page and "新兴热点" in page
    assert f'value="{planted["category"]}" selected' in page
    assert "cdn" not in page.lower() and "https://" not in page
