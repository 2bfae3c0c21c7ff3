"""``wangge bench isochrones``: the project's isochrones against pgRouting and networkx.

One run, on the same network and the same start nodes, all stations × the 5/10/15-minute
bands (375 / 750 / 1,125 m at 4.5 km/h):

* project: ``scipy.sparse.csgraph.dijkstra`` with all stations as index rows and
  ``limit`` = the largest band (graph build included in the time), then per band the nodes
  with distance <= budget;
* pgRouting loop: one ``pgr_drivingDistance`` call per station at the largest band (the
  smaller bands are read from its ``agg_cost``; that favours pgRouting over a call per band);
* pgRouting batch: one ``pgr_drivingDistance`` call with every station as a start vid;
* networkx: ``single_source_dijkstra_path_length(G, s, cutoff=...)`` per station.

Reached node sets must be identical for every station and band, else
:class:`BenchmarkMismatch`. Datasets: the demo network in ``network_edges`` (stations
snapped to their nearest node), and a generated jittered lattice of about 200,000 edges
loaded into a temporary table, with one start node per 1.25 km² like the demo's station
density. On the big network the pgRouting loop is timed on ``pgr_sources`` stations and
reported per station (it rebuilds the 200,000-edge graph on every call).
"""

from __future__ import annotations

import io
import logging
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import networkx as nx
import numpy as np
import numpy.typing as npt
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.isochrones import BANDS_MIN, graph_matrix
from gis.network import WalkNetwork, band_metres, network_from_arrays

log = logging.getLogger(__name__)

Reached = list[list[frozenset[int]]]  # [source][band] -> node ids


class BenchmarkMismatch(AssertionError):
    """Two methods reached different node sets."""


@dataclass(frozen=True)
class Row:
    """One timing; ``per_s`` = stations per second; ``ratio`` relative to the project."""

    dataset: str
    method: str
    sources: int
    seconds: float
    per_s: float
    ratio: str
    agree: bool


def _project(net: WalkNetwork, sources: npt.NDArray[np.int64], budgets: list[float]) -> Reached:
    from scipy.sparse.csgraph import dijkstra

    g = graph_matrix(net)
    out: Reached = []
    for start in range(0, len(sources), 64):  # bounded memory: 64 rows of n floats at a time
        d = dijkstra(g, directed=False, indices=sources[start : start + 64], limit=budgets[-1])
        for row in np.atleast_2d(d):
            out.append([frozenset(np.flatnonzero(row <= b).tolist()) for b in budgets])
    return out


def _networkx(net: WalkNetwork, sources: npt.NDArray[np.int64], budgets: list[float]) -> Reached:
    g = nx.Graph()
    g.add_nodes_from(range(net.n_nodes))
    for s, t, w in zip(
        net.source.tolist(), net.target.tolist(), net.length_m.tolist(), strict=True
    ):
        if s != t and (not g.has_edge(s, t) or g[s][t]["w"] > w):
            g.add_edge(s, t, w=w)
    out: Reached = []
    for s in sources.tolist():
        d = nx.single_source_dijkstra_path_length(g, s, cutoff=budgets[-1], weight="w")
        out.append([frozenset(k for k, v in d.items() if v <= b) for b in budgets])
    return out


def _pgr_loop(
    session: Session, table: str, sources: npt.NDArray[np.int64], budgets: list[float]
) -> Reached:
    sql = text(
        "SELECT node, agg_cost FROM pgr_drivingDistance("
        f"'SELECT id, source, target, cost, reverse_cost FROM {table}', "
        ":v, :d, directed => false)"
    )
    out: Reached = []
    for s in sources.tolist():
        rows = session.execute(sql, {"v": int(s), "d": budgets[-1]}).all()
        out.append([frozenset(int(n) for n, c in rows if c <= b) for b in budgets])
    return out


def _pgr_batch(
    session: Session, table: str, sources: npt.NDArray[np.int64], budgets: list[float]
) -> Reached:
    sql = text(
        "SELECT from_v, node, agg_cost FROM pgr_drivingDistance("  # pgRouting 3.4 names
        f"'SELECT id, source, target, cost, reverse_cost FROM {table}', "
        ":v, :d, directed => false)"
    )
    rows = session.execute(sql, {"v": [int(s) for s in sources], "d": budgets[-1]}).all()
    by: dict[int, list[tuple[int, float]]] = {int(s): [] for s in sources}
    for sv, n, c in rows:
        by[int(sv)].append((int(n), float(c)))
    return [[frozenset(n for n, c in by[int(s)] if c <= b) for b in budgets] for s in sources]


def _timed(fn: Callable[[], Reached]) -> tuple[Reached, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def lattice(n_edges: int, *, spacing_m: float = 100.0, seed: int = 7) -> WalkNetwork:
    """A jittered square lattice with about ``n_edges`` edges (metric, CGCS2000 GK 114E)."""
    import pyproj

    side = int(np.sqrt(n_edges / 2.0)) + 1
    rng = np.random.default_rng(seed)
    ii, jj = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    xy = np.stack([ii.ravel(), jj.ravel()], axis=1) * spacing_m
    xy = xy + rng.uniform(-0.3, 0.3, xy.shape) * spacing_m + [500_000.0, 3_850_000.0]
    idx = np.arange(side * side).reshape(side, side)
    s = np.r_[idx[:-1, :].ravel(), idx[:, :-1].ravel()]
    t = np.r_[idx[1:, :].ravel(), idx[:, 1:].ravel()]
    return network_from_arrays(pyproj.CRS("EPSG:4547"), xy, s, t)


def _copy_edges(session: Session, net: WalkNetwork, table: str) -> None:
    session.execute(
        text(
            f"CREATE TEMP TABLE {table} (id int PRIMARY KEY, source int, target int, "
            "cost float8, reverse_cost float8) ON COMMIT DROP"
        )
    )
    buf = io.StringIO()
    for i, (s, t, w) in enumerate(
        zip(net.source.tolist(), net.target.tolist(), net.length_m.tolist(), strict=True)
    ):
        buf.write(f"{i + 1}\t{s}\t{t}\t{w!r}\t{w!r}\n")
    raw = session.connection().connection.driver_connection
    with raw.cursor().copy(f"COPY {table} FROM STDIN") as cp:  # type: ignore[union-attr]
        cp.write(buf.getvalue())
    session.execute(text(f"ANALYZE {table}"))


def _agree(a: Reached, b: Reached) -> bool:
    return all(x == y for x, y in zip(a, b, strict=True))


def _bench_one(
    session: Session,
    dataset: str,
    net: WalkNetwork,
    table: str,
    sources: npt.NDArray[np.int64],
    budgets: list[float],
    pgr_sources: int,
) -> list[Row]:
    rows: list[Row] = []
    proj, tp = _timed(lambda: _project(net, sources, budgets))
    rate_p = len(sources) / tp
    rows.append(
        Row(dataset, "project: scipy csgraph multi-source", len(sources), tp, rate_p, "1.0×", True)
    )
    sub = sources[:pgr_sources]
    loop, tl = _timed(lambda: _pgr_loop(session, table, sub, budgets))
    ok = _agree(loop, proj[: len(sub)])
    rows.append(
        Row(
            dataset,
            "pgr_drivingDistance, one call per station",
            len(sub),
            tl,
            len(sub) / tl,
            f"{rate_p / (len(sub) / tl):.1f}× slower",
            ok,
        )
    )
    batch, tb = _timed(lambda: _pgr_batch(session, table, sources, budgets))
    okb = _agree(batch, proj)
    rows.append(
        Row(
            dataset,
            "pgr_drivingDistance, all stations in one call",
            len(sources),
            tb,
            len(sources) / tb,
            f"{rate_p / (len(sources) / tb):.1f}× slower",
            okb,
        )
    )
    nxr, tn = _timed(lambda: _networkx(net, sources, budgets))
    okn = _agree(nxr, proj)
    rows.append(
        Row(
            dataset,
            "networkx single_source_dijkstra_path_length (incl. graph)",
            len(sources),
            tn,
            len(sources) / tn,
            f"{rate_p / (len(sources) / tn):.1f}× slower",
            okn,
        )
    )
    if not (ok and okb and okn):
        bad = [r.method for r in rows if not r.agree]
        raise BenchmarkMismatch(f"{dataset}: reached node sets differ for {bad}")
    return rows


def run_bench(session: Session, *, edges: int = 200_000, pgr_sources: int = 20) -> dict[str, Any]:
    """Run both datasets; returns rows, environment and a Markdown table."""
    from gis.db.queries.network import load_network, stations_frame

    budgets = [band_metres(m) for m in BANDS_MIN]
    session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
    rows: list[Row] = []
    demo = load_network(session)
    st = stations_frame(session).to_crs(demo.crs)
    tree = shapely.STRtree(shapely.points(demo.nodes))
    demo_src = np.asarray(tree.nearest(st.geometry.to_numpy()), dtype=np.int64)
    # pgRouting ids are the stored network ids: node ids are the same 0..n-1.
    rows += _bench_one(
        session,
        f"demo ({demo.n_edges:,} edges)",
        demo,
        "network_edges",
        demo_src,
        budgets,
        len(demo_src),
    )
    big = lattice(edges)
    _copy_edges(session, big, "bench_edges")
    area_km2 = float(np.ptp(big.nodes[:, 0]) * np.ptp(big.nodes[:, 1])) / 1e6
    n_src = max(20, int(area_km2 / 1.25))
    rng = np.random.default_rng(11)
    big_src = np.sort(rng.choice(big.n_nodes, size=n_src, replace=False)).astype(np.int64)
    rows += _bench_one(
        session,
        f"generated ({big.n_edges:,} edges)",
        big,
        "bench_edges",
        big_src,
        budgets,
        pgr_sources,
    )
    env = {
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, shared by several jobs",
        "postgres": session.execute(text("SHOW server_version")).scalar_one(),
        "pgrouting": session.execute(text("SELECT pgr_version()")).scalar_one(),
        "bands_m": budgets,
    }
    md = [
        "| dataset | method | stations | seconds | stations/s | vs project | agree |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        md.append(
            f"| {r.dataset} | {r.method} | {r.sources:,} | {r.seconds:.3f} | {r.per_s:,.1f} "
            f"| {r.ratio} | {'yes' if r.agree else 'NO'} |"
        )
    return {"rows": [asdict(r) for r in rows], "env": env, "markdown": "\n".join(md) + "\n"}
