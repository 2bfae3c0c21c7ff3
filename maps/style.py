"""Colours and Chinese labels shared by the dashboard pages.

Grid levels, from the top: street office (街道/办事处), community (社区), the third-level grid
(三级网格), the micro grid (微网格); dedicated grids (专属网格: schools, hospitals, markets...)
sit beside the chain.
"""

from __future__ import annotations

LEVELS: tuple[str, ...] = ("street", "community", "grid", "micro", "dedicated")

LEVEL_LABEL: dict[str, str] = {
    "street": "街道/办事处",
    "community": "社区",
    "grid": "三级网格",
    "micro": "微网格",
    "dedicated": "专属网格",
}

# Leaflet path options per level: heavier, darker lines for the higher levels.
LEVEL_STYLE: dict[str, dict[str, object]] = {
    "street": {"color": "#7a0019", "weight": 4, "fill": False},
    "community": {"color": "#c0392b", "weight": 3, "fill": False},
    "grid": {"color": "#2c3e50", "weight": 2, "fill": False},
    "micro": {"color": "#7f8c8d", "weight": 1, "fill": True, "fillOpacity": 0.03},
    "dedicated": {"color": "#8e44ad", "weight": 2, "dashArray": "6 4", "fillOpacity": 0.15},
}

# Drawing order, bottom first: the fine micro grids under the outlines of their parents.
LEVEL_ORDER: tuple[str, ...] = ("micro", "grid", "community", "street", "dedicated")

# Levels whose layer starts hidden (hundreds of small polygons): switch on in the control.
HIDDEN_AT_START: frozenset[str] = frozenset({"micro"})

HEAT_LABEL = "事件热力图"
HEAT_GRADIENT: dict[float, str] = {
    0.2: "#2c7bb6",
    0.45: "#abd9e9",
    0.65: "#ffffbf",
    0.8: "#fdae61",
    1.0: "#d7191c",
}


def level_label(level: str) -> str:
    """Chinese name of a grid level (the code itself for an unknown level)."""
    return LEVEL_LABEL.get(level, level)
