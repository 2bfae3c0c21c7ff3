"""Structural checks of the overview page: layers, legend, bounds, local assets only."""

from __future__ import annotations

import json
import re
from pathlib import Path

import folium
import geopandas as gpd
import pandas as pd
import pytest
from branca.element import JavascriptLink
from folium import plugins

from maps.assets import (
    FILES,
    LOCAL,
    ROTATE_CSS,
    VENDOR_DIR,
    install_assets,
    local_asset_refs,
    local_map,
    localise,
    outside_urls,
    render_offline,
)
from maps.layers import MAX_HEAT_ROWS, aggregate_cells, grid_outline_layer, heat_layer
from maps.overview import build_overview
from maps.style import LEVEL_LABEL, LEVELS
from tests.maps import tiny_grids, tiny_heat

NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"
ANY_URL = re.compile(r"https?://", re.IGNORECASE)


@pytest.fixture(scope="module")
def grids() -> gpd.GeoDataFrame:
    return tiny_grids()


@pytest.fixture(scope="module")
def page(grids: gpd.GeoDataFrame) -> str:
    return build_overview(grids, tiny_heat(), title="测试总览")


@pytest.fixture(scope="module")
def vendor(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """The assets installed from node_modules (``npm ci``) into a fresh folder."""
    if not (NODE_MODULES / "leaflet").is_dir():
        pytest.fail("node_modules is missing: run `npm ci` in the repository root")
    out = tmp_path_factory.mktemp("vendor")
    return out, install_assets(NODE_MODULES, out)


def _overlay_names(page: str) -> list[str]:
    """Names of the overlays in the layer control, decoded from the page's script."""
    block = page[re.search(r"\boverlays\s*:", page).start() :]
    block = block[: block.index("}")]
    keys = re.findall(r'"((?:[^"\\]|\\.)*)"\s*:\s*feature_group_', block)
    return [json.loads(f'"{k}"') for k in keys]


def test_one_layer_per_level_then_heat_in_the_layer_control(page: str) -> None:
    names = _overlay_names(page)
    assert names == ["微网格", "三级网格", "社区", "街道/办事处", "专属网格", "事件热力图"]
    assert page.count("L.geoJson(") == 5
    assert page.count("L.heatLayer(") == 1
    assert page.count("L.control.layers(") == 1
    # each level in its own pane, stacked micro (bottom) to dedicated (top)
    panes = re.findall(r'createPane\(\s*"wangge-(\w+)"\);\s*\w+\.style\.zIndex = (\d+)', page)
    assert [lv for lv, _z in panes] == ["micro", "grid", "community", "street", "dedicated"]
    assert [int(z) for _lv, z in panes] == sorted(int(z) for _lv, z in panes)
    assert all(int(z) > 400 for _lv, z in panes)


def test_only_levels_present_get_a_layer(grids: gpd.GeoDataFrame) -> None:
    page = build_overview(grids[grids["level"].isin(["community", "micro"])], tiny_heat())
    assert _overlay_names(page) == ["微网格", "社区", "事件热力图"]
    assert page.count("L.geoJson(") == 2


def test_legend_title_and_counts(page: str) -> None:
    legend = page[page.index('<div id="wangge-legend"') :]
    legend = legend[: legend.index("</div></div>")]
    assert "测试总览" in legend and "<title>测试总览</title>" in page
    for level, n in (("street", 1), ("community", 2), ("grid", 4), ("micro", 8)):
        assert f"{LEVEL_LABEL[level]}（{n} 个）" in legend
    assert "专属网格（1 个）" in legend
    assert "事件热力图：共 113 件事件（13 个聚合点）" in legend
    # top-down order in the legend
    positions = [legend.index(LEVEL_LABEL[lv]) for lv in LEVELS]
    assert positions == sorted(positions)


def test_fitted_to_the_grids_bounds(page: str, grids: gpd.GeoDataFrame) -> None:
    found = re.search(r"fitBounds\(\s*(\[\[.*?\]\])", page, re.DOTALL)
    assert found
    (s, w), (n, e) = json.loads(found.group(1))
    minx, miny, maxx, maxy = grids.total_bounds
    assert (s, w, n, e) == pytest.approx((miny, minx, maxy, maxx))


def test_no_outside_url_and_no_tiles(page: str) -> None:
    assert ANY_URL.findall(page) == []
    assert outside_urls(page) == []
    assert "L.tileLayer(" not in page
    assert "body .leaflet-container{background:" in page


def test_tooltips_and_escaped_names(page: str) -> None:
    assert page.count("bindTooltip(") == 5
    assert "名称" in json.loads(re.search(r"let aliases = (\[.*?\]);", page).group(1))
    assert "<img" not in page
    assert r"\u0026lt;img src=x onerror=\u0026quot;" in page  # escaped, then JSON-encoded


def test_heat_points_are_lat_lon_weight_scaled(page: str) -> None:
    data = json.loads(re.search(r"L\.heatLayer\(\s*(\[\[.*?\]\])", page, re.DOTALL).group(1))
    heat = tiny_heat()
    assert len(data) == len(heat)
    lat, lon, weight = data[0]
    assert (lat, lon) == pytest.approx((heat["lat"][0], heat["lon"][0]))
    assert 34 < lat < 35 and 113 < lon < 114
    assert weight == 1.0 and max(p[2] for p in data) == 1.0
    assert '"maxZoom": 0' in page


def test_heat_is_aggregated_above_the_cap() -> None:
    n = MAX_HEAT_ROWS + 1000
    # 100 x 50 points on a 1 m lattice spread over about 100 m x 50 m, weight 1 each
    i = pd.RangeIndex(n)
    pts = pd.DataFrame(
        {"lon": 113.55 + (i % 100) * 1.1e-5, "lat": 34.80 + (i // 100 % 50) * 0.9e-5, "weight": 1}
    )
    layer = heat_layer(pts)
    heat = next(c for c in layer._children.values() if isinstance(c, plugins.HeatMap))
    assert 6 <= len(heat.data) <= 30  # about 4 x 2 cells of 25 m, plus edges
    cells = aggregate_cells(pts)
    assert cells["weight"].sum() == n
    assert len(cells) == len(heat.data)


def test_heat_guard_coarsens_until_under_the_cap() -> None:
    # 60,000 points 100 m apart: 25 m cells do not merge them; coarser cells must.
    i = pd.RangeIndex(60_000)
    pts = pd.DataFrame(
        {"lon": 113.0 + (i % 300) * 1.1e-3, "lat": 34.0 + (i // 300) * 0.9e-3, "weight": 2}
    )
    layer = heat_layer(pts)
    heat = next(c for c in layer._children.values() if isinstance(c, plugins.HeatMap))
    assert 0 < len(heat.data) <= MAX_HEAT_ROWS


def test_heat_rejects_missing_columns_and_accepts_no_rows(grids: gpd.GeoDataFrame) -> None:
    with pytest.raises(ValueError, match="lon, lat, weight"):
        heat_layer(pd.DataFrame({"x": [1.0], "y": [2.0]}))
    page = build_overview(grids, pd.DataFrame(columns=["lon", "lat", "weight"]))
    assert "共 0 件事件" in page and outside_urls(page) == []


def test_outline_layer_of_a_level_without_grids_is_empty(grids: gpd.GeoDataFrame) -> None:
    layer = grid_outline_layer(grids, "street")
    assert layer.layer_name == "街道/办事处" and len(layer._children) == 1
    assert grid_outline_layer(grids.iloc[0:0], "micro")._children == {}
    assert grid_outline_layer(grids, "micro").show is False


def test_every_linked_asset_is_installed(page: str, vendor: tuple[Path, list[Path]]) -> None:
    out, installed = vendor
    refs = local_asset_refs(page)
    assert len(refs) == 11 and len(set(refs)) == 11
    for ref in refs:
        assert (out / ref).is_file(), ref
        assert (out / ref) in installed
    assert (out / ROTATE_CSS).read_text().count(".fa-rotate-") == 360


def test_install_copies_exactly_the_files_and_the_fonts_their_css_needs(
    vendor: tuple[Path, list[Path]],
) -> None:
    out, installed = vendor
    on_disk = sorted(p for p in out.rglob("*") if p.is_file())
    assert sorted(installed) == on_disk
    rel = {p.relative_to(out).as_posix() for p in installed}
    assert set(FILES) | {ROTATE_CSS} <= rel
    assert {
        "fontawesome/webfonts/fa-solid-900.woff2",
        "glyphicons/fonts/glyphicons-halflings-regular.woff2",
        "leaflet/images/layers.png",
        "awesome-markers/images/markers-soft.png",
    } <= rel
    # nothing a stylesheet does not use: no matte/plain marker sprites, no font-awesome svgs
    assert not any(
        "matte" in r or "plain" in r or (r.endswith(".svg") and "fontawesome" in r) for r in rel
    )
    # every relative url() of every installed stylesheet resolves to an installed file
    for css in (p for p in installed if p.suffix == ".css"):
        for url in re.findall(r"""url\(\s*['"]?([^'")]+)""", css.read_text()):
            if url.startswith(("data:", "#", "%23")):  # %23: a fragment inside an inline SVG
                continue
            path = (css.parent / url.split("?")[0].split("#")[0]).resolve()
            assert path.is_file(), (css, url)


def test_the_app_vendor_dir_has_every_linked_asset(page: str) -> None:
    """What the app serves: set-up runs ``npm ci`` and ``python -m maps.assets``."""
    missing = [ref for ref in local_asset_refs(page) if not (VENDOR_DIR / ref).is_file()]
    assert missing == [], f"run `python -m maps.assets` to install {missing}"


def test_every_folium_map_asset_has_a_local_copy() -> None:
    names = {n for n, _ in folium.Map.default_js + folium.Map.default_css}
    names |= {n for n, _ in plugins.HeatMap.default_js}
    assert names <= set(LOCAL)
    assert set(LOCAL.values()) <= set(FILES) | {ROTATE_CSS}


def test_local_map_leaves_folium_classes_alone_and_honours_asset_base() -> None:
    m = local_map((34.8, 113.55), asset_base="/assets/v1/")
    page = m.get_root().render()
    assert outside_urls(page) == [] and ANY_URL.findall(page) == []
    assert 'src="/assets/v1/leaflet/leaflet.js"' in page
    assert any(url.startswith("https://") for _n, url in folium.Map.default_js)


def test_explicit_tiles_are_the_only_outside_url() -> None:
    m = local_map((34.8, 113.55), tiles="OpenStreetMap")
    page = render_offline(m)
    assert "L.tileLayer(" in page
    assert outside_urls(page) == []
    assert all("openstreetmap" in u for u in re.findall(r"https?://[^\"'\s\\]+", page))


def test_unknown_plugin_assets_are_refused() -> None:
    m = local_map((34.8, 113.55))
    plugins.Fullscreen().add_to(m)
    with pytest.raises(KeyError, match="fullscreen"):
        render_offline(m)
    m = local_map((34.8, 113.55))
    m.get_root().header.add_child(JavascriptLink("https://cdn.example.org/x.js"))
    with pytest.raises(ValueError, match=r"cdn\.example\.org"):
        render_offline(m)


def test_localise_rewrites_a_plugin_instance_only() -> None:
    heat = plugins.HeatMap([[34.8, 113.55, 1.0]])
    localise(heat, "/v")
    assert heat.default_js == [("leaflet-heat.js", "/v/leaflet.heat/leaflet-heat.js")]
    assert plugins.HeatMap.default_js[0][1].startswith("https://")


def test_outside_urls_finds_fetches_not_mentions() -> None:
    html = (
        '<script src="https://a.example/x.js"></script><link href="//b.example/y.css">'
        "<style>@import 'http://c.example/z.css'; i{background:url(https://d.example/i.png)}"
        '</style><p>see https://e.example/</p><script src="/static/vendor/ok.js"></script>'
    )
    assert outside_urls(html) == [
        "https://a.example/x.js",
        "//b.example/y.css",
        "http://c.example/z.css",
        "https://d.example/i.png",
    ]
