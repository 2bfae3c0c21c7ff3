"""Matching a resident's need or small wish to volunteers and party members (需求对接):
the nearest suitable helpers by walking distance on the street network, those of the same
grid first ("就近、同网格优先").

Walking distances reuse the service-circle machinery: the wish's point joins the network at
the foot of its perpendicular (:func:`gis.network.attach_points`), one Dijkstra run from
there reaches every node (:func:`gis.isochrones.node_distances`), and each helper's home is
reached through its nearest street (:func:`gis.service_coverage.walk_to_points`).
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely

from gis.errors import EmptyInputError, GisError
from gis.isochrones import node_distances
from gis.network import WalkNetwork, attach_points
from gis.service_coverage import access_points, walk_to_points

MAX_WALK_M = 5000.0


@dataclass(frozen=True)
class Match:
    """One proposed helper: walking and straight-line metres, and why they rank there."""

    volunteer_id: int
    name: str
    kind: str
    walk_m: float
    straight_m: float
    same_grid: bool
    skill_match: bool


def match_helpers(
    net: WalkNetwork,
    wish_point: shapely.Point,
    wish_grid_id: int | None,
    category: str,
    helpers: gpd.GeoDataFrame,
    *,
    k: int = 5,
    max_walk_m: float = MAX_WALK_M,
) -> list[Match]:
    """The ``k`` best helpers for a wish at ``wish_point`` (in the network's metric CRS).

    ``helpers`` has columns volunteer_id, name, kind, skills (list), home_grid_id and a
    geometry in the same metric CRS. Ranking: helpers whose skills name the category (or who
    list none) before others; of those, the same home grid first; then by walking metres.
    Helpers farther than ``max_walk_m`` on foot are left out.
    """
    if helpers.empty:
        raise EmptyInputError("no volunteers with a home location to match")
    if str(helpers.crs) != str(net.crs):
        raise GisError(f"helpers are in {helpers.crs}, the network in {net.crs}")
    joined, ids = attach_points(net, np.array([wish_point], dtype=object), kind="wish")
    dist = node_distances(joined, ids, limit_m=max_walk_m)
    access = access_points(joined, helpers.geometry.to_numpy())
    walk = walk_to_points(joined, dist, access)[0]
    straight = shapely.distance(helpers.geometry.to_numpy(), wish_point)
    skills = helpers["skills"].apply(lambda s: list(s) if isinstance(s, list | tuple) else [])
    skill_ok = skills.apply(lambda s: not s or category in s).to_numpy(bool)
    same = (
        (helpers["home_grid_id"].to_numpy() == wish_grid_id)
        if wish_grid_id
        else np.zeros(len(helpers), dtype=bool)
    )
    order = np.lexsort((walk, ~same, ~skill_ok))
    out = []
    for i in order:
        if not np.isfinite(walk[i]) or walk[i] > max_walk_m:
            continue
        out.append(
            Match(
                volunteer_id=int(helpers["volunteer_id"].iloc[i]),
                name=str(helpers["name"].iloc[i]),
                kind=str(helpers["kind"].iloc[i]),
                walk_m=round(float(walk[i]), 1),
                straight_m=round(float(straight[i]), 1),
                same_grid=bool(same[i]),
                skill_match=bool(skill_ok[i]),
            )
        )
        if len(out) == k:
            break
    return out
