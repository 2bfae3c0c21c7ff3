"""Walking network queries: pgRouting tables in and out, stations, buildings, isochrone store."""

from __future__ import annotations

import hashlib
import json
import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.crs import WGS84, metric_crs_for
from gis.errors import EmptyInputError, NotFoundError
from gis.isochrones import Isochrone
from gis.network import LoadReport, WalkNetwork, network_from_arrays

log = logging.getLogger(__name__)

META_KEY = "network"


def roads_frame(session: Session) -> gpd.GeoDataFrame:
    """The district's noded roads (WGS84) with kind and name."""
    rows = session.execute(
        text("SELECT id, name, kind, ST_AsBinary(geom) AS wkb FROM roads ORDER BY id")
    ).all()
    return gpd.GeoDataFrame(
        {
            "road_id": [r[0] for r in rows],
            "name": [r[1] for r in rows],
            "kind": [r[2] for r in rows],
        },
        geometry=shapely.from_wkb([bytes(r[3]) for r in rows]),
        crs=WGS84,
    )


def save_network(session: Session, net: WalkNetwork, report: LoadReport, *, source: str) -> None:
    """Replace the pgRouting tables with ``net`` (one transaction, the caller's)."""
    edges = net.edges_frame()
    nodes = net.nodes_frame()
    session.execute(text("DELETE FROM network_edges"))
    session.execute(text("DELETE FROM network_nodes"))
    session.execute(
        text("INSERT INTO network_nodes (id, geom) VALUES (:id, ST_GeomFromWKB(:wkb, 4326))"),
        [
            {"id": int(i), "wkb": shapely.to_wkb(g)}
            for i, g in zip(nodes.index, nodes.geometry, strict=True)
        ],
    )
    session.execute(
        text(
            "INSERT INTO network_edges (id, source, target, cost, reverse_cost, length_m, kind,"
            " name, geom) VALUES (:id, :s, :t, :c, :c, :c, :k, :n, ST_GeomFromWKB(:wkb, 4326))"
        ),
        [
            {
                "id": i + 1,
                "s": int(s),
                "t": int(t),
                "c": float(c),
                "k": str(k)[:24],
                "n": str(n) or None,
                "wkb": shapely.to_wkb(g),
            }
            for i, (s, t, c, k, n, g) in enumerate(
                zip(
                    edges["source"],
                    edges["target"],
                    edges["length_m"],
                    edges["kind"],
                    edges["name"],
                    edges.geometry,
                    strict=True,
                )
            )
        ],
    )
    value = {"source": source, "report": report.as_dict(), "crs": net.crs.to_wkt()}
    session.execute(
        text(
            "INSERT INTO wangge_meta (key, value) VALUES (:k, CAST(:v AS json)) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()"
        ),
        {"k": META_KEY, "v": json.dumps(value, ensure_ascii=False)},
    )
    log.info("saved network from %s: %d edges, %d nodes", source, net.n_edges, net.n_nodes)


def network_info(session: Session) -> dict[str, object] | None:
    """What the loaded network came from and its load report, or None."""
    row = session.execute(
        text("SELECT value FROM wangge_meta WHERE key = :k"), {"k": META_KEY}
    ).one_or_none()
    return None if row is None else dict(row[0])


def load_network(session: Session) -> WalkNetwork:
    """The stored network as a :class:`WalkNetwork` in its metric CRS."""
    nodes = session.execute(
        text("SELECT id, ST_X(geom), ST_Y(geom) FROM network_nodes ORDER BY id")
    ).all()
    if not nodes:
        raise EmptyInputError("no walking network loaded; run `wangge network load`")
    edges = session.execute(
        text(
            "SELECT source, target, kind, coalesce(name, ''), ST_AsBinary(geom) "
            "FROM network_edges ORDER BY id"
        )
    ).all()
    ids = np.array([r[0] for r in nodes])
    if not np.array_equal(ids, np.arange(len(ids))):
        raise EmptyInputError("network node ids are not dense 0..n-1; reload the network")
    pts = gpd.GeoSeries(shapely.points([(r[1], r[2]) for r in nodes]), crs=WGS84)
    crs = metric_crs_for(pts)
    xy = shapely.get_coordinates(pts.to_crs(crs).to_numpy())
    geoms = gpd.GeoSeries(shapely.from_wkb([bytes(r[4]) for r in edges]), crs=WGS84).to_crs(crs)
    return network_from_arrays(
        crs,
        xy,
        [r[0] for r in edges],
        [r[1] for r in edges],
        geoms=geoms.to_numpy(),
        kind=[r[2] for r in edges],
        name=[r[3] for r in edges],
    )


def stations_frame(session: Session) -> gpd.GeoDataFrame:
    """Service stations (WGS84): station_id, kind, name, address."""
    rows = session.execute(
        text("SELECT id, kind, name, address, ST_X(geom), ST_Y(geom) FROM stations ORDER BY id")
    ).all()
    return gpd.GeoDataFrame(
        {
            "station_id": [r[0] for r in rows],
            "kind": [r[1] for r in rows],
            "name": [r[2] for r in rows],
            "address": [r[3] for r in rows],
        },
        geometry=shapely.points([(r[4], r[5]) for r in rows]) if rows else [],
        crs=WGS84,
    )


def station_exists(session: Session, station_id: int) -> None:
    """Raise NotFoundError unless the station exists."""
    if (
        session.execute(
            text("SELECT 1 FROM stations WHERE id = :id"), {"id": station_id}
        ).one_or_none()
        is None
    ):
        raise NotFoundError(f"station {station_id} does not exist")


def buildings_with_grids(session: Session) -> gpd.GeoDataFrame:
    """Buildings (WGS84 polygons) with households, residents and their community (社区)."""
    rows = session.execute(
        text(
            """
            SELECT b.id, b.households, b.residents, b.address,
                   coalesce(c.name, '(none)') AS community, ST_AsBinary(b.geom)
            FROM buildings b
            LEFT JOIN grids m ON m.id = b.micro_grid_id
            LEFT JOIN grids g ON g.id = m.parent_id
            LEFT JOIN grids c ON c.id = g.parent_id
            ORDER BY b.id
            """
        )
    ).all()
    return gpd.GeoDataFrame(
        {
            "building_id": [r[0] for r in rows],
            "households": [r[1] for r in rows],
            "residents": [r[2] for r in rows],
            "address": [r[3] for r in rows],
            "grid": [r[4] for r in rows],
        },
        geometry=shapely.from_wkb([bytes(r[5]) for r in rows]) if rows else [],
        crs=WGS84,
    )


def fingerprint(session: Session, params: dict[str, object]) -> str:
    """SHA-256 of the network edges, the stations and the method parameters.

    Isochrones stored with another fingerprint are stale and are recomputed.
    """
    row = session.execute(
        text(
            """
            SELECT
              (SELECT md5(coalesce(string_agg(
                  id || ':' || source || ':' || target || ':' || round(length_m::numeric, 3),
                  ',' ORDER BY id), '')) FROM network_edges),
              (SELECT md5(coalesce(string_agg(
                  id || ':' || kind || ':' || ST_AsText(geom), ',' ORDER BY id), ''))
               FROM stations)
            """
        )
    ).one()
    h = hashlib.sha256()
    h.update(f"{row[0]}|{row[1]}|{json.dumps(params, sort_keys=True)}".encode())
    return h.hexdigest()


def stored_fingerprints(session: Session) -> set[str]:
    """Distinct fingerprints of the stored isochrones."""
    return {r[0] for r in session.execute(text("SELECT DISTINCT fingerprint FROM isochrones"))}


def save_isochrones(
    session: Session,
    net: WalkNetwork,
    station_ids: list[int],
    result: list[list[Isochrone]],
    *,
    fingerprint_: str,
) -> int:
    """Replace all stored isochrones with ``result`` (metric geometries) under one fingerprint."""
    session.execute(text("DELETE FROM isochrones"))
    polys: list[shapely.Geometry] = []
    lines: list[shapely.Geometry] = []
    keys: list[tuple[int, Isochrone]] = []
    for sid, row in zip(station_ids, result, strict=True):
        for iso in row:
            polys.append(iso.polygon)
            lines.append(iso.lines)
            keys.append((sid, iso))
    if not keys:
        return 0
    p84 = gpd.GeoSeries(polys, crs=net.crs).to_crs(WGS84).to_numpy()
    l84 = gpd.GeoSeries(lines, crs=net.crs).to_crs(WGS84).to_numpy()
    session.execute(
        text(
            "INSERT INTO isochrones (station_id, minutes, fingerprint, budget_m, street_m, lines,"
            " geom) VALUES (:sid, :m, :f, :b, :s,"
            " ST_Multi(ST_GeomFromWKB(:l, 4326)), ST_Multi(ST_MakeValid(ST_GeomFromWKB(:g, 4326))))"
        ),
        [
            {
                "sid": sid,
                "m": int(iso.minutes),
                "f": fingerprint_,
                "b": iso.budget_m,
                "s": iso.street_m,
                "l": shapely.to_wkb(lg) if not lg.is_empty else None,
                "g": shapely.to_wkb(pg),
            }
            for (sid, iso), pg, lg in zip(keys, p84, l84, strict=True)
        ],
    )
    return len(keys)


def isochrones_of(
    session: Session, station_id: int, *, geometry: str = "polygon"
) -> gpd.GeoDataFrame:
    """Stored isochrones of one station (WGS84), smallest band first.

    ``geometry="lines"`` gives the reached street network (partial edges cut) instead of
    the polygon.
    """
    station_exists(session, station_id)
    column = {"polygon": "geom", "lines": "lines"}[geometry]
    rows = session.execute(
        text(
            "SELECT minutes, budget_m, street_m, fingerprint, computed_at, "
            f"ST_AsBinary({column}) FROM isochrones WHERE station_id = :id ORDER BY minutes"
        ),
        {"id": station_id},
    ).all()
    return gpd.GeoDataFrame(
        pd.DataFrame(
            {
                "minutes": [r[0] for r in rows],
                "budget_m": [r[1] for r in rows],
                "street_m": [r[2] for r in rows],
                "fingerprint": [r[3] for r in rows],
                "computed_at": [r[4] for r in rows],
            }
        ),
        geometry=shapely.from_wkb([bytes(r[5]) for r in rows]) if rows else [],
        crs=WGS84,
    )


def all_isochrones(session: Session) -> gpd.GeoDataFrame:
    """All stored isochrones (WGS84) with station kind and name."""
    rows = session.execute(
        text(
            "SELECT i.station_id, s.kind, s.name, i.minutes, i.street_m, ST_AsBinary(i.geom) "
            "FROM isochrones i JOIN stations s ON s.id = i.station_id "
            "ORDER BY i.minutes DESC, i.station_id"
        )
    ).all()
    return gpd.GeoDataFrame(
        {
            "station_id": [r[0] for r in rows],
            "kind": [r[1] for r in rows],
            "name": [r[2] for r in rows],
            "minutes": [r[3] for r in rows],
            "street_m": [r[4] for r in rows],
        },
        geometry=shapely.from_wkb([bytes(r[5]) for r in rows]) if rows else [],
        crs=WGS84,
    )


def driving_distance_nodes(
    session: Session, start_vid: int, distance_m: float, *, table: str = "network_edges"
) -> set[int]:
    """Nodes reached by ``pgr_drivingDistance`` from one node (undirected)."""
    sql = (
        "SELECT node FROM pgr_drivingDistance("
        f"'SELECT id, source, target, cost, reverse_cost FROM {table}', "
        ":v, :d, directed => false)"
    )
    return {int(r[0]) for r in session.execute(text(sql), {"v": start_vid, "d": distance_m})}


def load_demo_network(session: Session) -> LoadReport:
    """Build the walking network from the ``roads`` table and store it."""
    from gis.network import build_network

    roads = roads_frame(session)
    if roads.empty:
        raise EmptyInputError("the roads table is empty; load a district first")
    net, report = build_network(roads)
    save_network(session, net, report, source="roads table")
    return report


def isochrone_params(
    bands_min: tuple[int, ...] = (5, 10, 15), speed_kmh: float = 4.5, buffer_m: float = 40.0
) -> dict[str, object]:
    """The method parameters that enter the isochrone fingerprint."""
    from gis.isochrones import QUAD_SEGS, SIMPLIFY_M

    return {
        "bands": list(bands_min),
        "speed_kmh": speed_kmh,
        "buffer_m": buffer_m,
        "quad_segs": QUAD_SEGS,
        "simplify_m": SIMPLIFY_M,
    }


def build_isochrones(
    session: Session,
    *,
    bands_min: tuple[int, ...] = (5, 10, 15),
    speed_kmh: float = 4.5,
    buffer_m: float = 40.0,
    force: bool = False,
) -> dict[str, object]:
    """Compute and store every station's isochrones unless they are already current.

    Returns ``{"computed": bool, "isochrones": n, "fingerprint": ...}``.
    """
    from gis.isochrones import isochrones
    from gis.network import attach_points

    fp = fingerprint(session, isochrone_params(bands_min, speed_kmh, buffer_m))
    n_stations = session.execute(text("SELECT count(*) FROM stations")).scalar_one()
    n_stored = session.execute(
        text("SELECT count(*) FROM isochrones WHERE fingerprint = :f"), {"f": fp}
    ).scalar_one()
    if (
        not force
        and stored_fingerprints(session) == {fp}
        and n_stored == n_stations * len(bands_min)
    ):
        return {"computed": False, "isochrones": int(n_stored), "fingerprint": fp}
    net = load_network(session)
    stations = stations_frame(session)
    if stations.empty:
        raise EmptyInputError("no stations to compute isochrones for")
    att, ids = attach_points(net, stations.to_crs(net.crs).geometry.to_numpy())
    res = isochrones(att, ids, bands_min=bands_min, speed_kmh=speed_kmh, buffer_m=buffer_m)
    n = save_isochrones(session, att, stations["station_id"].tolist(), res, fingerprint_=fp)
    return {"computed": True, "isochrones": n, "fingerprint": fp}


def district_coverage(
    session: Session, *, bands_min: tuple[int, ...] = (5, 10, 15), speed_kmh: float = 4.5
):  # -> gis.service_coverage.Coverage
    """Household coverage of the stored network and stations (see gis.service_coverage)."""
    from gis.service_coverage import coverage

    return coverage(
        load_network(session),
        stations_frame(session),
        buildings_with_grids(session),
        bands_min=bands_min,
        speed_kmh=speed_kmh,
    )


def _spread(n: int, k: int) -> np.ndarray:
    """At most ``k`` indices spread evenly over ``range(n)`` (candidate thinning)."""
    return np.unique(np.linspace(0, n - 1, min(n, k)).round().astype(np.int64))


def district_siting(
    session: Session,
    k: int,
    *,
    minutes: float = 15,
    speed_kmh: float = 4.5,
    candidates: str = "nodes",
    max_candidates: int = 400,
) -> dict[str, object]:
    """Suggest ``k`` new stations (street nodes or buildings) by MCLP; before/after coverage."""
    from gis.network import attach_points, band_metres
    from gis.service_coverage import access_points, coverage
    from gis.siting import candidate_cover, maximal_covering

    net = load_network(session)
    stations = stations_frame(session)
    buildings = buildings_with_grids(session)
    cov = coverage(net, stations, buildings, bands_min=(minutes,), speed_kmh=speed_kmh)
    budget = band_metres(minutes, speed_kmh=speed_kmh)
    b_pts = shapely.point_on_surface(buildings.to_crs(net.crs).geometry.to_numpy())
    if candidates == "buildings":
        cand_idx = _spread(len(b_pts), max_candidates)
        att, cand_nodes = attach_points(net, b_pts[cand_idx])
        cand_xy = shapely.get_coordinates(b_pts[cand_idx])
        labels = [int(buildings["building_id"].iloc[i]) for i in cand_idx]
    else:
        cand_nodes = _spread(net.n_nodes, max_candidates)
        att = net
        cand_xy = net.nodes[cand_nodes]
        labels = [int(i) for i in cand_nodes]
    access = access_points(att, b_pts)
    cover = candidate_cover(att, cand_nodes, access, budget_m=budget)
    before = (cov.buildings["walk_m"] <= budget).to_numpy()
    res = maximal_covering(cover, buildings["households"].to_numpy(), k, already_covered=before)
    pts = gpd.GeoSeries(shapely.points(cand_xy[res.chosen]), crs=net.crs).to_crs(WGS84)
    return {
        "k": k,
        "minutes": minutes,
        "candidates": candidates,
        "n_candidates": len(labels),
        "households_total": int(buildings["households"].sum()),
        "covered_before": res.covered_before,
        "covered_after": res.covered_after,
        "newly_covered": res.newly_covered,
        "optimal": res.optimal,
        "sites": [
            {"candidate": labels[j], "lon": float(p.x), "lat": float(p.y)}
            for j, p in zip(res.chosen, pts, strict=True)
        ],
    }
