"""Walking network in pgRouting tables: load, agree with pgr_drivingDistance, isochrone store."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.db.queries.network import (
    build_isochrones,
    district_coverage,
    driving_distance_nodes,
    isochrones_of,
    load_demo_network,
    load_network,
    network_info,
    stations_frame,
)
from gis.isochrones import node_distances

pytestmark = pytest.mark.db


def test_roads_become_a_noded_metric_network(session: Session) -> None:
    report = load_demo_network(session)
    n_roads = session.execute(text("SELECT count(*) FROM roads")).scalar_one()
    n_motor = session.execute(
        text("SELECT count(*) FROM roads WHERE kind = 'motorway'")
    ).scalar_one()
    assert report.edges == n_roads - n_motor
    assert report.skipped.get("excluded kind: motorway", 0) == n_motor
    info = network_info(session)
    assert info is not None and info["report"]["edges"] == report.edges
    # Lengths in metres agree with PostGIS geography lengths to 0.5%.
    ratio = session.execute(
        text("SELECT sum(length_m) / sum(ST_Length(geom::geography)) FROM network_edges")
    ).scalar_one()
    assert ratio == pytest.approx(1.0, abs=5e-3)
    # Every edge end is a node at the same place.
    bad = session.execute(
        text(
            "SELECT count(*) FROM network_edges e JOIN network_nodes n ON n.id = e.source "
            "WHERE ST_Distance(ST_StartPoint(e.geom)::geography, n.geom::geography) > 0.05"
        )
    ).scalar_one()
    assert bad == 0


def test_scipy_reaches_the_same_nodes_as_pgr_driving_distance(session: Session) -> None:
    load_demo_network(session)
    net = load_network(session)
    rng = np.random.default_rng(7)
    starts = rng.choice(net.n_nodes, size=3, replace=False)
    d = node_distances(net, starts, limit_m=1125.0)
    for row, v in zip(d, starts.tolist(), strict=True):
        pgr = driving_distance_nodes(session, v, 1125.0)
        assert set(np.flatnonzero(row <= 1125.0).tolist()) == pgr


def test_isochrones_are_stored_and_recomputed_only_on_change(session: Session) -> None:
    load_demo_network(session)
    first = build_isochrones(session)
    n_st = len(stations_frame(session))
    assert first["computed"] and first["isochrones"] == 3 * n_st
    again = build_isochrones(session)
    assert not again["computed"] and again["fingerprint"] == first["fingerprint"]
    sid = int(stations_frame(session)["station_id"].iloc[0])
    iso = isochrones_of(session, sid)
    assert iso["minutes"].tolist() == [5, 10, 15]
    areas = iso.to_crs(3857).area.to_numpy()
    assert areas[0] < areas[1] < areas[2]
    metric = iso.to_crs(3857).geometry
    # 5 minutes lies in 15 minutes (up to the buffer's arc approximation, < 0.1%).
    assert metric.iloc[0].difference(metric.iloc[2]).area < 1e-3 * metric.iloc[0].area
    # Moving a station changes the fingerprint: recomputed.
    session.execute(
        text("UPDATE stations SET geom = ST_Translate(geom, 0.0005, 0) WHERE id = :id"),
        {"id": sid},
    )
    moved = build_isochrones(session)
    assert moved["computed"] and moved["fingerprint"] != first["fingerprint"]


def test_coverage_counts_match_households(session: Session) -> None:
    load_demo_network(session)
    cov = district_coverage(session)
    total = session.execute(text("SELECT sum(households) FROM buildings")).scalar_one()
    s = cov.summary
    overall = s[s["scope"] == "overall"].set_index("minutes")
    assert int(overall.loc[15, "households_total"]) == total
    assert (
        overall.loc[5, "households"]
        <= overall.loc[10, "households"]
        <= overall.loc[15, "households"]
    )
    # Walking is never shorter than the straight line.
    b = cov.buildings
    assert (b["walk_m"] + 1e-6 >= b["straight_m"]).all()
    assert (overall["households"] <= overall["households_straight"]).all()
    # Per-grid counts add up to the overall count.
    grids = s[(s["scope"] == "grid") & (s["minutes"] == 15)]
    assert grids["households"].sum() == overall.loc[15, "households"]
    outside = cov.outside(15)
    assert int(outside["households"].sum()) == total - overall.loc[15, "households"]


def test_real_osm_extract_in_pgrouting_tables(session: Session) -> None:
    from gis.db.queries.network import save_network
    from gis.network import build_network, read_osm_lines

    roads, compounds, gates = read_osm_lines("/work/shared/data/real/haidian-xueyuanlu.osm")
    net, report = build_network(roads, compounds=compounds, gates=gates)
    save_network(session, net, report, source="haidian-xueyuanlu.osm")
    back = load_network(session)
    assert back.n_edges == net.n_edges and back.n_nodes == net.n_nodes
    assert back.length_m.sum() == pytest.approx(net.length_m.sum(), rel=1e-6)
    assert network_info(session)["source"] == "haidian-xueyuanlu.osm"
    d = node_distances(back, [0], limit_m=750.0)[0]
    assert set(np.flatnonzero(d <= 750.0).tolist()) == driving_distance_nodes(session, 0, 750.0)
