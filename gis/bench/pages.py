"""``wangge bench pages``: size and time-to-ready of the dashboard pages at 10k–1M incidents.

The pages are built over a real district (by default the demo district in the main database,
which is only read): for each size, synthetic incidents are COPYed into a **temporary**
table ``pg_temp.incidents`` of the bench's own connection, which hides the real
``incidents`` table for that connection only (PostgreSQL looks in ``pg_temp`` first). After
the temporary table is made, the connection is switched to read-only transactions: every
query of every page reads the real grids, buildings, tracks and isochrones, and nothing can
be written anywhere but the temporary table (which PostgreSQL allows even read-only).

Incidents: a uniform background plus 40 hotspots, a year of report times, a realistic mix of
statuses with coherent timestamps; each point carries the grid chain of the micro grid it
falls in. Every page is built the way the app builds it (queries + HTML, timed as
*server*) and opened in headless Chromium with the HTML and ``/static`` answered in-process
(timed from navigation to *ready*: the Leaflet map exists, its layers are drawn, the load
event has fired). Goals: HTML + data < 5 MB, server + browser < 3 s.
"""

from __future__ import annotations

import io
import logging
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateTable

from gis.db.models.dashboards import (
    incident_rollup_grids,
    incident_rollup_heat,
    incident_rollup_kpis,
    incident_rollup_state,
)
from gis.db.queries import dashboards as dq
from gis.taxonomy import Taxonomy

log = logging.getLogger(__name__)

SIZES: tuple[int, ...] = (10_000, 100_000, 1_000_000)
MAX_BYTES = 5_000_000
MAX_SECONDS = 3.0
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PAGE_URL = "http://127.0.0.1/bench"
SOURCES_P = {
    "巡查": 0.35,
    "热线": 0.15,
    "12345": 0.25,
    "公众号": 0.1,
    "随手拍": 0.13,
    "Open311": 0.02,
}
STATUS_P = {
    "closed": 0.55,
    "evaluated": 0.08,
    "resolved": 0.1,
    "in_progress": 0.07,
    "dispatched": 0.05,
    "accepted": 0.04,
    "reported": 0.08,
    "rejected": 0.03,
}
READY_JS = """() => document.readyState === 'complete'
  && document.querySelector('.leaflet-container') !== null
  && document.querySelector('path.leaflet-interactive, canvas') !== null"""


@dataclass(frozen=True)
class PageRow:
    """One page at one size: HTML bytes, server and browser seconds, console errors."""

    incidents: int
    page: str
    bytes: int
    server_s: float
    browser_s: float
    total_s: float
    console_errors: int
    ok: bool


def _grids(session: Session) -> gpd.GeoDataFrame:
    frame = gpd.read_postgis(
        text("SELECT id, level, parent_id, geom FROM grids"),
        session.connection(),
        geom_col="geom",
        crs=4326,
    )
    if not (frame["level"] == "micro").any():
        raise RuntimeError("the bench database has no micro grids: load a district first")
    return frame


def synthetic_incidents(
    grids: gpd.GeoDataFrame, taxonomy: Taxonomy, n: int, *, seed: int = 11
) -> pd.DataFrame:
    """``n`` incidents inside the micro grids, with their grid chain and workflow columns.

    70 % are spread uniformly over the district, 30 % around 40 hotspots (σ ≈ 60 m).
    Report times cover the year before 2026-11-01 (local time).
    """
    rng = np.random.default_rng(seed)
    micro = grids[grids["level"] == "micro"].reset_index(drop=True)
    parent = dict(zip(grids["id"], grids["parent_id"], strict=True))
    minx, miny, maxx, maxy = micro.total_bounds
    centres = np.column_stack([rng.uniform(minx, maxx, 40), rng.uniform(miny, maxy, 40)])
    tree = shapely.STRtree(micro.geometry.to_numpy())
    xs, ys, ids = [], [], []
    have = 0
    while have < n:
        k = int((n - have) * 1.3) + 1000
        hot = rng.random(k) < 0.3
        c = centres[rng.integers(0, len(centres), k)]
        x = np.where(hot, c[:, 0] + rng.normal(0, 0.0007, k), rng.uniform(minx, maxx, k))
        y = np.where(hot, c[:, 1] + rng.normal(0, 0.00055, k), rng.uniform(miny, maxy, k))
        pts = shapely.points(x, y)
        p_idx, g_idx = tree.query(pts, predicate="within")
        _, first = np.unique(p_idx, return_index=True)  # one micro grid per point
        p_idx, g_idx = p_idx[first], g_idx[first]
        xs.append(x[p_idx])
        ys.append(y[p_idx])
        ids.append(micro["id"].to_numpy()[g_idx])
        have += len(p_idx)
    x = np.concatenate(xs)[:n]
    y = np.concatenate(ys)[:n]
    micro_id = np.concatenate(ids)[:n]

    def up(values: np.ndarray) -> np.ndarray:
        return np.array([parent.get(int(v)) if v is not None else None for v in values], object)

    chain = {int(m): (int(m),) for m in np.unique(micro_id)}
    for m in list(chain):
        g = parent.get(m)
        c = parent.get(g) if g is not None else None
        s = parent.get(c) if c is not None else None
        chain[m] = (g, c, s)
    grid_id = np.array([chain[int(m)][0] for m in micro_id], object)
    community_id = np.array([chain[int(m)][1] for m in micro_id], object)
    street_id = np.array([chain[int(m)][2] for m in micro_id], object)
    dedicated = grids[grids["level"] == "dedicated"]
    dedicated_id = np.full(n, None, object)
    if len(dedicated):
        d_tree = shapely.STRtree(dedicated.geometry.to_numpy())
        p_idx, g_idx = d_tree.query(shapely.points(x, y), predicate="within")
        dedicated_id[p_idx] = dedicated["id"].to_numpy()[g_idx]

    cats = list(taxonomy)
    cat_i = rng.integers(0, len(cats), n)
    year_start = pd.Timestamp("2025-11-01", tz="Asia/Shanghai").tz_convert("UTC")
    reported = year_start + pd.to_timedelta(rng.uniform(0, 365 * 86400, n), unit="s")
    status = rng.choice(list(STATUS_P), n, p=list(STATUS_P.values()))
    done = np.isin(status, ["resolved", "evaluated", "closed"])
    moved = status != "reported"
    accepted = reported + pd.to_timedelta(rng.exponential(600, n), unit="s")
    resolved = reported + pd.to_timedelta(rng.exponential(20 * 3600, n), unit="s")
    closed = resolved + pd.to_timedelta(rng.exponential(24 * 3600, n), unit="s")
    level = rng.choice(["grid", "community", "street"], n, p=[0.75, 0.18, 0.07])
    frame = pd.DataFrame(
        {
            "category": [cats[i].name for i in cat_i],
            "category_code": [cats[i].code for i in cat_i],
            "source": rng.choice(list(SOURCES_P), n, p=list(SOURCES_P.values())),
            "reported_at": reported,
            "status": status,
            "location_status": "located",
            "location_source": "point",
            "micro_grid_id": micro_id.astype(object),
            "grid_id": grid_id,
            "community_id": community_id,
            "street_id": street_id,
            "dedicated_grid_id": dedicated_id,
            "severity": [cats[i].severity for i in cat_i],
            "initial_level": "grid",
            "handling_level": np.where(moved, level, None),
            "accepted_at": pd.Series(accepted).where(moved & (status != "rejected")),
            "resolved_at": pd.Series(resolved).where(done),
            "closed_at": pd.Series(closed).where((status == "closed") | (status == "rejected")),
            "satisfaction": pd.Series(rng.integers(1, 6, n)).where(
                np.isin(status, ["evaluated", "closed"]) & (rng.random(n) < 0.7)
            ),
            "address": None,
            "geom": [f"SRID=4326;POINT({a:.7f} {b:.7f})" for a, b in zip(x, y, strict=True)],
        }
    )
    for col in ("satisfaction", *(c for c in frame.columns if c.endswith("_id"))):
        frame[col] = pd.array(
            [None if v is None or pd.isna(v) else int(v) for v in frame[col]], dtype="Int64"
        )
    return frame


EXTRA_COLUMNS = ("id", "created_at", "updated_at", "colour", "reopen_count", "version")


ROLLUP_TABLES = (
    incident_rollup_kpis,
    incident_rollup_grids,
    incident_rollup_heat,
    incident_rollup_state,
)


def _drop_temp_tables(session: Session) -> None:
    for table in ("incidents", *(t.name for t in ROLLUP_TABLES)):
        session.execute(text(f"DROP TABLE IF EXISTS pg_temp.{table}"))


def make_temp_incidents(session: Session) -> None:
    """(Re)create ``pg_temp.incidents`` shaped like the real table, without its defaults
    (they would call the real sequence), triggers or foreign keys, with an index on
    ``updated_at``; and temporary rollup tables (from the models: the database read need
    not have them) that hide the real ones the same way, so the rollup the pages read is
    built from the synthetic incidents. Then make every further transaction of the
    connection read-only (writes to temporary tables stay allowed)."""
    session.execute(text("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE"))
    session.commit()
    _drop_temp_tables(session)
    session.execute(text("CREATE TEMP TABLE incidents (LIKE public.incidents INCLUDING INDEXES)"))
    session.execute(text("CREATE INDEX ON pg_temp.incidents (updated_at)"))
    dialect = postgresql.dialect()
    for table in ROLLUP_TABLES:
        ddl = str(CreateTable(table).compile(dialect=dialect)).strip()
        if not ddl.startswith("CREATE TABLE "):
            raise RuntimeError(f"unexpected DDL for {table.name}: {ddl[:60]}")
        session.execute(text("CREATE TEMPORARY TABLE " + ddl.removeprefix("CREATE TABLE ")))
    session.commit()
    session.execute(text("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"))
    session.commit()
    where = session.execute(
        text(
            "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.oid = 'incidents'::regclass"
        )
    ).scalar()
    if not str(where).startswith("pg_temp"):
        raise RuntimeError(f"incidents resolves to {where}, not the temporary table")
    for table in ROLLUP_TABLES:
        kind = session.execute(
            text("SELECT relpersistence FROM pg_class WHERE oid = CAST(:t AS regclass)"),
            {"t": table.name},
        ).scalar()
        if kind != "t":
            raise RuntimeError(f"{table.name} is not the temporary table")


def drop_temp_incidents(session: Session) -> None:
    """Drop ``pg_temp.incidents`` and the temporary rollup tables, and make the connection
    read-write again, so a pooled connection goes back as it came."""
    session.rollback()
    session.execute(text("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE"))
    session.commit()
    _drop_temp_tables(session)
    session.commit()


def load_incidents(session: Session, frame: pd.DataFrame, *, chunk: int = 200_000) -> float:
    """Put ``frame`` into a fresh ``pg_temp.incidents`` by COPY; returns seconds.

    The session must be bound to one connection (temporary tables live per connection).
    """
    t0 = time.perf_counter()
    make_temp_incidents(session)
    reported = frame["reported_at"]
    frame = frame.assign(
        id=np.arange(1, len(frame) + 1),
        created_at=reported,
        updated_at=reported,
        colour="blue",
        reopen_count=0,
        version=1,
    )
    cols = list(frame.columns)
    raw = session.connection().connection.driver_connection
    sql = f"COPY pg_temp.incidents ({', '.join(cols)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')"
    with raw.cursor() as cur, cur.copy(sql) as copy:
        for start in range(0, len(frame), chunk):
            buf = io.StringIO()
            frame.iloc[start : start + chunk].to_csv(buf, index=False, header=False, na_rep="\\N")
            copy.write(buf.getvalue())
    session.commit()
    session.execute(text("ANALYZE pg_temp.incidents"))
    session.commit()
    return time.perf_counter() - t0


CHANGED = 1_000  # incidents changed before the incremental refresh


def bench_rollup(session: Session, taxonomy: Taxonomy, *, changed: int = CHANGED) -> dict[str, Any]:
    """Build the (temporary) rollup in full, then close the ``changed`` most recently
    reported open incidents (what the day's work changes) and refresh incrementally; check
    that the rollup's cards, trend and grid counts equal the direct SQL. Seconds and rows."""
    full = dq.refresh_rollup(session, taxonomy, full=True)
    session.commit()
    n = session.execute(
        text(
            """
            UPDATE incidents SET status = 'closed', handling_level = 'grid',
                   resolved_at = greatest(reported_at, clock_timestamp() - interval '1 hour'),
                   closed_at = clock_timestamp(), updated_at = clock_timestamp()
            WHERE id IN (SELECT id FROM incidents
                         WHERE status IN ('reported', 'accepted', 'dispatched', 'in_progress')
                         ORDER BY reported_at DESC LIMIT :n)
            """
        ),
        {"n": changed},
    ).rowcount
    session.commit()
    inc = dq.refresh_rollup(session, taxonomy)
    session.commit()
    if inc.full:
        raise RuntimeError("the refresh after the changes rebuilt in full")
    rows = session.execute(
        text(
            "SELECT (SELECT count(*) FROM incident_rollup_kpis), "
            "(SELECT count(*) FROM incident_rollup_grids), "
            "(SELECT count(*) FROM incident_rollup_heat)"
        )
    ).one()
    t0 = time.perf_counter()
    agree = True
    for period in dq.PERIODS:
        a = dq.dashboard_summary(session, taxonomy, period=period, rollup=True)
        b = dq.dashboard_summary(session, taxonomy, period=period)
        agree &= all(a[k].equals(b[k]) for k in ("kpis", "trend", "by_category", "by_source"))
    agree &= dq.grid_counts(session, rollup=True).equals(dq.grid_counts(session))
    check_s = time.perf_counter() - t0
    session.rollback()
    return {
        "full_s": round(full.seconds, 2),
        "changed": int(n),
        "incremental_s": round(inc.seconds, 2),
        "days": inc.days,
        "rows": {"kpis": int(rows[0]), "grids": int(rows[1]), "heat": int(rows[2])},
        "agree": bool(agree),
        "check_s": round(check_s, 2),
    }


def _static_file(path: str, static_dir: Path) -> Path | None:
    rel = path.removeprefix("/static/")
    target = (static_dir / rel).resolve()
    if rel == path or not target.is_relative_to(static_dir.resolve()) or not target.is_file():
        return None
    return target


_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


def open_in_chromium(browser: Any, page_html: str, static_dir: Path) -> tuple[float, int]:
    """Seconds from navigation to ready, and the console errors, for one page."""
    body = page_html.encode("utf-8")
    ctx = browser.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN")
    errors: list[str] = []

    def on_route(route: Any) -> None:
        url = route.request.url
        parsed = urlparse(url)
        if url == PAGE_URL:
            route.fulfill(status=200, content_type="text/html; charset=utf-8", body=body)
            return
        found = _static_file(parsed.path, static_dir) if parsed.hostname == "127.0.0.1" else None
        if found is None:
            errors.append(f"refused {url}")
            route.abort("blockedbyclient")
            return
        kind = _TYPES.get(found.suffix, "application/octet-stream")
        route.fulfill(status=200, content_type=kind, body=found.read_bytes())

    try:
        ctx.route("**/*", on_route)
        pg = ctx.new_page()
        pg.on("console", lambda m: m.type == "error" and errors.append(m.text))
        pg.on("pageerror", lambda e: errors.append(str(e)))
        t0 = time.perf_counter()
        pg.goto(PAGE_URL, wait_until="load", timeout=60_000)
        pg.wait_for_function(READY_JS, timeout=60_000)
        seconds = time.perf_counter() - t0
    finally:
        ctx.close()
    if errors:
        log.warning("page errors: %s", errors[:5])
    return seconds, len(errors)


def run_bench(
    session: Session,
    taxonomy: Taxonomy,
    pages: Mapping[str, Callable[[Session], str]],
    *,
    static_dir: Path,
    sizes: Sequence[int] = SIZES,
    seed: int = 11,
    district: str = "district",
    repeats: int = 3,
) -> dict[str, Any]:
    """Load each size, build and open every page; the rows and a markdown report.

    ``session`` must be bound to a single connection (see :func:`load_incidents`). Each
    page is built and opened ``repeats`` times; the run with the median total is reported.
    """
    from playwright.sync_api import sync_playwright

    grids = _grids(session)
    rows: list[PageRow] = []
    loads: dict[int, float] = {}
    rollups: dict[int, dict[str, Any]] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        warm = browser.new_context()  # start a renderer once, outside the timings
        warm.new_page().goto("about:blank")
        warm.close()
        try:
            for n in sizes:
                t0 = time.perf_counter()
                frame = synthetic_incidents(grids, taxonomy, n, seed=seed)
                gen_s = time.perf_counter() - t0
                loads[n] = round(gen_s + load_incidents(session, frame), 2)
                del frame
                log.info("loaded %d incidents in %.1f s", n, loads[n])
                rollups[n] = bench_rollup(session, taxonomy)
                log.info("rollup at %d: %s", n, rollups[n])
                for name, build in pages.items():
                    runs = []
                    for _ in range(max(repeats, 1)):
                        t1 = time.perf_counter()
                        page_html = build(session)
                        session.rollback()
                        server_s = time.perf_counter() - t1
                        browser_s, n_err = open_in_chromium(browser, page_html, static_dir)
                        runs.append((server_s + browser_s, server_s, browser_s, n_err))
                    # the median run (by total): one busy moment of a shared machine is not
                    # the page's time; errors count from every run
                    total, server_s, browser_s, _ = sorted(runs)[len(runs) // 2]
                    n_err = sum(r[3] for r in runs)
                    size = len(page_html.encode("utf-8"))
                    rows.append(
                        PageRow(
                            incidents=n,
                            page=name,
                            bytes=size,
                            server_s=round(server_s, 3),
                            browser_s=round(browser_s, 3),
                            total_s=round(total, 3),
                            console_errors=n_err,
                            ok=size < MAX_BYTES and total < MAX_SECONDS and n_err == 0,
                        )
                    )
                    log.info("%s at %d: %.0f kB, %.2f s", name, n, size / 1024, total)
        finally:
            browser.close()
            drop_temp_incidents(session)
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {platform.python_version()}",
        "goal": {"max_bytes": MAX_BYTES, "max_seconds": MAX_SECONDS},
        "grids": len(grids),
        "district": district,
        "repeats": repeats,
        "load_average": _load_average(),
        "load_seconds": {str(k): v for k, v in loads.items()},
        "rollup": {str(k): v for k, v in rollups.items()},
        "rows": [asdict(r) for r in rows],
    }
    result["markdown"] = markdown(result)
    return result


def _load_average() -> list[float] | None:
    """The machine's 1/5/15-minute load averages at the end of the run (shared machines)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def markdown(result: Mapping[str, Any]) -> str:
    """The report as a markdown table."""
    lines = [
        "# wangge bench pages",
        "",
        f"Goal: every page < {result['goal']['max_bytes'] / 1e6:.0f} MB of HTML and ready in "
        f"headless Chromium < {result['goal']['max_seconds']:.0f} s (server + browser). "
        f"{result['grids']} grids ({result.get('district', 'district')}); "
        f"machine: {result['machine']}, {os.cpu_count()} cores, load average "
        f"{result.get('load_average')} at the end; median of {result.get('repeats', 1)} runs "
        "per page, every page built cold.",
        "",
        "| incidents | page | HTML | server s | browser s | total s | console errors | ok |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['incidents']:,} | {r['page']} | {r['bytes'] / 1e6:.2f} MB | {r['server_s']:.2f} "
            f"| {r['browser_s']:.2f} | {r['total_s']:.2f} | {r['console_errors']} | "
            f"{'yes' if r['ok'] else 'NO'} |"
        )
    if result.get("rollup"):
        lines += [
            "",
            "Rollup (incident_rollup_*, built from the synthetic incidents): full rebuild, then "
            "an incremental refresh after closing the most recently reported open incidents; "
            "agree = the rollup's cards, trend, breakdowns and grid counts equal the direct SQL.",
            "",
            "| incidents | full rebuild s | changed | incremental s | days | rows kpis/grids/heat "
            "| agree |",
            "| ---: | ---: | ---: | ---: | ---: | --- | --- |",
        ]
        for k, v in result["rollup"].items():
            r = v["rows"]
            lines.append(
                f"| {int(k):,} | {v['full_s']:.2f} | {v['changed']:,} | {v['incremental_s']:.2f} "
                f"| {v['days']} | {r['kpis']:,}/{r['grids']:,}/{r['heat']:,} "
                f"| {'yes' if v['agree'] else 'NO'} |"
            )
    lines += ["", "Load (generate + COPY + ANALYZE), seconds: "]
    lines.append(", ".join(f"{int(k):,}: {v}" for k, v in result["load_seconds"].items()))
    return "\n".join(lines) + "\n"
