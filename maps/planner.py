"""The grid planner page (网格规划): grids by level with household counts and edit tools.

A plain Leaflet page (not folium: the editing logic lives in ``static/planner.js``) with
Leaflet-Geoman served locally; every asset comes from ``/static``, so the page is offline.
"""

from __future__ import annotations

import html
import json

import geopandas as gpd

from maps.assets import ASSET_BASE, outside_urls

LEVEL_COLOURS: dict[str, str] = {
    "street": "#4b0082",
    "community": "#1f77b4",
    "grid": "#2ca02c",
    "micro": "#ff7f0e",
    "dedicated": "#d62728",
}

_PAGE = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{base}/leaflet/leaflet.css">
<link rel="stylesheet" href="{base}/geoman/leaflet-geoman.css">
<link rel="stylesheet" href="/static/planner.css">
</head><body>
<div id="panel">
  <h1>{title}</h1>
  <div id="legend">{legend}</div>
  <label>层级 level <select id="level">{options}</select></label>
  <div id="selected">no grid selected</div>
  <label>理由 reason <input id="reason" value="planning edit"></label>
  <div class="tools">
    <button id="btn-draw">Draw child grid</button>
    <button id="btn-split">Split with line</button>
    <button id="btn-reshape">Reshape</button>
    <button id="btn-merge">Merge with…</button>
    <label>parts <input id="parts" type="number" min="2" max="50" value="2"></label>
    <button id="btn-autosplit">Auto-split</button>
    <button id="btn-autopartition">Auto-partition 微网格</button>
  </div>
  <div id="message" role="status"></div>
</div>
<div id="map"></div>
<script src="{base}/leaflet/leaflet.js"></script>
<script src="{base}/geoman/leaflet-geoman.min.js"></script>
<script>window.WANGGE_PLANNER = {config};</script>
<script src="/static/planner.js"></script>
</body></html>
"""


def build_planner(grids: gpd.GeoDataFrame, *, title: str = "网格规划 Grid planner") -> str:
    """The planner page; ``grids`` (EPSG:4326) only sets the initial view and the legend."""
    counts = grids["level"].value_counts().to_dict() if len(grids) else {}
    legend = "".join(
        f'<div class="legend-item" data-level="{lvl}"><span style="background:{c}"></span>'
        f"{lvl} ({int(counts.get(lvl, 0))})</div>"
        for lvl, c in LEVEL_COLOURS.items()
    )
    options = "".join(
        f'<option value="{lvl}"{" selected" if lvl == "micro" else ""}>{lvl}</option>'
        for lvl in LEVEL_COLOURS
    )
    bounds = [float(v) for v in grids.total_bounds] if len(grids) else [113.6, 34.7, 113.7, 34.8]
    config = {"bounds": bounds, "colours": LEVEL_COLOURS}
    page = _PAGE.format(
        title=html.escape(title),
        base=ASSET_BASE,
        legend=legend,
        options=options,
        config=json.dumps(config),
    )
    outside = outside_urls(page)
    if outside:
        raise ValueError(f"planner page links outside the app: {outside}")
    return page
