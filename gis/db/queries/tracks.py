"""Storing patrol-track uploads and reading patrol effort, coverage, visits and compliance.

An upload is idempotent by the SHA-256 of the file's bytes: the same file again returns the
tracks already stored. A batch is written in the caller's transaction with one COPY for all
its fixes, so a failure leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.crs import metric_crs, metric_crs_for
from gis.db.queries.grids import grids_frame
from gis.errors import GisError, NotFoundError
from gis.patrol import (
    PATROL_MIN_MINUTES,
    Coverage,
    PatrolContext,
    ProcessedTrack,
    VisitRules,
    coverage,
    detect_visits,
    process_file,
    uncovered_streets,
    visit_compliance,
)
from gis.tracks import (
    FLAG_NAMES,
    JITTER,
    KEPT,
    CleaningRules,
    decompress,
    project,
    read_track_file,
)

log = logging.getLogger(__name__)

LOCAL_TZ = ZoneInfo("Asia/Shanghai")  # a patrol's work day is the local calendar day
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class TrackSource:
    """One file of an upload batch."""

    name: str
    data: bytes
    staff_id: int | None = None


def patrol_context(session: Session) -> PatrolContext:
    """The grid index and chain lookups for processing tracks, from the grids table."""
    return PatrolContext.from_grids(grids_frame(session))


def store_uploads(
    session: Session,
    files: Iterable[TrackSource],
    *,
    crs: str = "wgs84",
    user_id: int | None = None,
    ctx: PatrolContext | None = None,
    rules: CleaningRules | None = None,
    visit_rules: VisitRules | None = None,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """Read, clean, assign and store a batch of track files; one report per file.

    A file already stored (same bytes once gunzipped) is not stored again: its report says
    ``"duplicate": true`` and is the report of the first copy. Each file's upload row is
    claimed first with ``INSERT ... ON CONFLICT DO NOTHING``: when a concurrent request is
    storing the same file, the claim waits for that request's transaction and then answers
    with what it stored (or stores the file itself if that request failed), so two phones
    sending the same file at once both get an answer and the file is stored once. Runs in
    the caller's transaction; any error raises before the caller commits, so nothing is
    half-written. ``ctx`` defaults to one built from the grids table.
    """
    step = progress or (lambda _s, _d, _t: None)
    files = list(files)
    datas = [decompress(f.data, f.name) for f in files]  # gzipped or not: the same file
    digests = [hashlib.sha256(d).hexdigest() for d in datas]
    first_of: dict[str, int] = {}
    for i, digest in enumerate(digests):
        first_of.setdefault(digest, i)
    # claims in one order (by hash) for every request: two batches holding the same files
    # wait for each other instead of deadlocking
    claimed: dict[str, int] = {}
    known: dict[str, dict[str, Any]] = {}
    for digest in sorted(first_of):
        f = files[first_of[digest]]
        upload_id, old = _claim_upload(session, digest, f, crs=crs, user_id=user_id)
        if upload_id is not None:
            claimed[digest] = upload_id
        else:
            known[digest] = old or {}
    batch: list[tuple[int, TrackSource, list[ProcessedTrack], pd.DataFrame, Any]] = []
    for i, f in enumerate(files):
        digest = digests[i]
        if digest in claimed and first_of[digest] == i:
            ctx = ctx or patrol_context(session)
            tf = read_track_file(datas[i], name=f.name, crs=crs)
            tracks, effort = process_file(tf, ctx, rules)
            batch.append((claimed[digest], f, tracks, effort, tf))
        step("tracks", i + 1, len(files))
    new: dict[str, dict[str, Any]] = {}
    if batch:
        hash_of = {upload_id: digest for digest, upload_id in claimed.items()}
        for report in _store_batch(session, batch, hash_of=hash_of, visit_rules=visit_rules):
            new[hash_of[report["upload_id"]]] = report
    reports = []
    for i, f in enumerate(files):
        digest = digests[i]
        if digest in known:
            reports.append(known[digest])
        elif first_of[digest] == i:
            reports.append(new[digest])
        else:  # twice in this batch: the second says what the first stored
            reports.append({**new[digest], "file": f.name, "duplicate": True})
    return reports


def _claim_upload(
    session: Session, digest: str, f: TrackSource, *, crs: str, user_id: int | None
) -> tuple[int | None, dict[str, Any] | None]:
    """The new upload row's id, or (None, the stored report) when the file is stored
    already. A claim of a file that a concurrent transaction is storing waits for it: if
    that one commits, the claim gives way and reads its report; if it rolls back, the claim
    succeeds."""
    for _ in range(3):
        upload_id = session.execute(
            text(
                """
                INSERT INTO track_uploads (content_hash, filename, format, crs, staff_id,
                                           user_id, n_points, report)
                VALUES (:h, :n, '', :c, :s, :u, 0, '{}'::jsonb)
                ON CONFLICT (content_hash) DO NOTHING RETURNING id
                """
            ),
            {"h": digest, "n": f.name, "c": crs, "s": f.staff_id, "u": user_id},
        ).scalar_one_or_none()
        if upload_id is not None:
            return int(upload_id), None
        old = _existing_upload(session, digest)
        if old is not None:
            return None, old
        # the row that stopped the claim is gone again (deleted meanwhile): claim again
    raise GisError(f"{f.name}: could not claim the upload, send it again")


def _existing_upload(session: Session, digest: str) -> dict[str, Any] | None:
    row = session.execute(
        text("SELECT id, report FROM track_uploads WHERE content_hash = :h"), {"h": digest}
    ).first()
    if row is None:
        return None
    return {**row.report, "duplicate": True}


def _store_batch(
    session: Session,
    batch: list[tuple[int, TrackSource, list[ProcessedTrack], pd.DataFrame, Any]],
    *,
    hash_of: dict[int, str],
    visit_rules: VisitRules | None,
) -> list[dict[str, Any]]:
    """Insert the tracks, COPY all fixes, set the cleaned lines, effort and visits."""
    track_rows = []
    for pos, (upload_id, f, tracks, _effort, _tf) in enumerate(batch):
        for tr in tracks:
            kept = tr.flag == KEPT
            t_kept = tr.t[kept] if kept.any() else tr.t
            start = datetime.fromtimestamp(float(t_kept.min()), LOCAL_TZ)
            track_rows.append(
                {
                    "pos": pos,
                    "upload_id": upload_id,
                    "number": tr.number,
                    "staff_id": f.staff_id,
                    "source_name": f"{f.name}#{tr.number}",
                    "name": tr.name or None,
                    "content_hash": hashlib.sha256(
                        f"{hash_of[upload_id]}:{tr.number}".encode()
                    ).hexdigest(),
                    "started_at": datetime.fromtimestamp(float(t_kept.min()), LOCAL_TZ),
                    "ended_at": datetime.fromtimestamp(float(t_kept.max()), LOCAL_TZ),
                    "work_date": start.date(),
                    "n_points": len(tr.t),
                    "n_kept": int(kept.sum()),
                    "distance_m": round(tr.distance_m, 2),
                    "dropped": json.dumps({k: v for k, v in tr.counts.items() if k != "kept"}),
                }
            )
    if not track_rows:
        raise GisError("no track with timed points in the upload")
    frame = pd.DataFrame(track_rows)
    session.execute(
        text(
            "CREATE TEMP TABLE stage_tracks (pos int, upload_id int, number int, staff_id int, "
            "source_name text, name text, content_hash text, started_at timestamptz, "
            "ended_at timestamptz, work_date date, n_points int, n_kept int, distance_m float8, "
            "dropped jsonb) ON COMMIT DROP"
        )
    )
    copy_frame(session, "stage_tracks", frame)
    ids = session.execute(
        text(
            """
            INSERT INTO patrol_tracks (upload_id, staff_id, source_name, name, content_hash,
                   started_at, ended_at, work_date, n_points, n_kept, distance_m, dropped)
            SELECT upload_id, staff_id, source_name, name, content_hash, started_at, ended_at,
                   work_date, n_points, n_kept, distance_m, dropped
            FROM stage_tracks ORDER BY pos, number
            RETURNING id, upload_id, source_name
            """
        )
    ).all()
    session.execute(text("DROP TABLE stage_tracks"))
    track_id = {(r.upload_id, r.source_name): r.id for r in ids}
    pts, efforts, visits_in = [], [], []
    for upload_id, f, tracks, effort, _tf in batch:
        by_number = {}
        for tr in tracks:
            tid = track_id[(upload_id, f"{f.name}#{tr.number}")]
            by_number[tr.number] = tid
            pts.append(
                pd.DataFrame(
                    {
                        "track_id": tid,
                        "seq": tr.seq,
                        "segment": tr.segment,
                        "t": tr.t,
                        "accuracy_m": tr.accuracy,
                        "lon": tr.lon,
                        "lat": tr.lat,
                        "flag": tr.flag,
                        "cseg": np.where(tr.cseg >= 0, tr.cseg, -1),
                        "grid_id": tr.grid_id,
                    }
                )
            )
            visits_in.append((tid, f.staff_id, tr))
        if not effort.empty:
            efforts.append(effort.assign(track_id=effort["track"].map(by_number)))
    allpts = pd.concat(pts, ignore_index=True)
    _copy_points(session, allpts)
    _set_lines(session, [tid for tid, _, _ in visits_in])
    if efforts:
        eff = pd.concat(efforts, ignore_index=True)
        copy_frame(
            session,
            "track_effort (track_id, grid_id, level, distance_m, seconds, entries)",
            eff[["track_id", "grid", "level", "distance_m", "seconds", "entries"]],
        )
    for upload_id, _f, _tracks, _effort, tf in batch:
        if not tf.waypoints.empty:
            wp = tf.waypoints
            session.execute(
                text(
                    "INSERT INTO track_waypoints (upload_id, name, t, geom) VALUES "
                    "(:u, :n, to_timestamp(:t), ST_SetSRID(ST_MakePoint(:x, :y), 4326))"
                ),
                [
                    {
                        "u": upload_id,
                        "n": r.name,
                        "t": None if pd.isna(r.t) else float(r.t),
                        "x": float(r.lon),
                        "y": float(r.lat),
                    }
                    for r in wp.itertuples()
                ],
            )
    n_visits = store_visits(session, visits_in, visit_rules)
    reports = []
    for upload_id, f, tracks, _effort, tf in batch:
        report = {
            "upload_id": upload_id,
            "file": f.name,
            "format": tf.format,
            "points": len(tf),
            "waypoints": len(tf.waypoints),
            "truncated": tf.truncated,
            "warnings": tf.warnings,
            "tracks": [
                {
                    "id": track_id[(upload_id, f"{f.name}#{tr.number}")],
                    "name": tr.name or None,
                    "points": len(tr.t),
                    "kept": tr.counts["kept"],
                    "dropped": {k: v for k, v in tr.counts.items() if k != "kept" and v},
                    "segments": int(tr.cseg.max()) + 1 if (tr.cseg >= 0).any() else 0,
                    "distance_m": round(tr.distance_m, 1),
                    "visits": n_visits.get(track_id[(upload_id, f"{f.name}#{tr.number}")], 0),
                }
                for tr in tracks
            ],
            "duplicate": False,
        }
        session.execute(
            text(
                "UPDATE track_uploads SET report = CAST(:r AS jsonb), format = :f, "
                "n_points = :p WHERE id = :i"
            ),
            {"r": json.dumps(report), "f": tf.format, "p": len(tf), "i": upload_id},
        )
        reports.append(report)
    return reports


def copy_frame(
    session: Session, target: str, frame: pd.DataFrame, *, float_format: str | None = None
) -> None:
    """COPY a frame into ``target`` (a table, optionally with its column list) as CSV."""
    buf = io.StringIO()
    frame.to_csv(buf, index=False, header=False, na_rep="", float_format=float_format)
    buf.seek(0)
    raw = session.connection().connection.driver_connection
    with raw.cursor() as cur, cur.copy(f"COPY {target} FROM STDIN WITH (FORMAT csv)") as cp:
        while chunk := buf.read(1 << 20):
            cp.write(chunk)


def _copy_points(session: Session, pts: pd.DataFrame) -> None:
    """COPY the fixes through a staging table (7 decimals: 1 cm; times to the microsecond)."""
    stage = pts[
        ["track_id", "seq", "segment", "t", "accuracy_m", "lon", "lat", "flag", "cseg", "grid_id"]
    ]
    session.execute(
        text(
            "CREATE TEMP TABLE stage_points (track_id int, seq int, segment int, t float8, "
            "accuracy_m float8, lon float8, lat float8, flag smallint, cseg int, grid_id int) "
            "ON COMMIT DROP"
        )
    )
    copy_frame(session, "stage_points", stage, float_format="%.7f")
    session.execute(
        text(
            """
            INSERT INTO track_points (track_id, seq, segment, t, accuracy_m, geom, flag, cseg,
                                      grid_id)
            SELECT track_id, seq, segment, to_timestamp(t), accuracy_m,
                   ST_SetSRID(ST_MakePoint(lon, lat), 4326), flag, nullif(cseg, -1),
                   nullif(grid_id, -1)
            FROM stage_points
            """
        )
    )
    session.execute(text("DROP TABLE stage_points"))


def _set_lines(session: Session, track_ids: list[int]) -> None:
    """The cleaned line of each track: kept fixes in time order, one part per segment."""
    session.execute(
        text(
            """
            WITH seg AS (
              SELECT track_id, cseg, ST_RemoveRepeatedPoints(ST_MakeLine(geom ORDER BY t)) AS l
              FROM track_points WHERE track_id = ANY(:ids) AND flag = 0
              GROUP BY track_id, cseg
            ), agg AS (
              SELECT track_id, ST_Multi(ST_Collect(l ORDER BY cseg)) AS geom FROM seg
              WHERE ST_NPoints(l) > 1 GROUP BY track_id
            )
            UPDATE patrol_tracks p SET geom = a.geom FROM agg a WHERE p.id = a.track_id
            """
        ),
        {"ids": track_ids},
    )


def key_households_frame(
    session: Session, *, grid_ids: Iterable[int] | None = None, personal: bool = False
) -> gpd.GeoDataFrame:
    """Key households with their building polygon (EPSG:4326) and grid chain ids.

    Personal data (name, phone, unit, room) are joined only when ``personal`` is true: the
    caller checks the role and writes the read to the audit log.
    """
    cols = "k.id AS household_id, k.kind, k.building_id, k.grid_id, b.address, b.geom"
    join = ""
    if personal:
        cols += ", p.name, p.phone, p.unit, p.room"
        join = "LEFT JOIN key_household_people p ON p.household_id = k.id"
    where, params = "TRUE", {}
    if grid_ids is not None:
        where = "k.grid_id = ANY(:g)"
        params["g"] = list(grid_ids)
    frame = gpd.read_postgis(
        text(
            f"SELECT {cols} FROM key_households k JOIN buildings b ON b.id = k.building_id "
            f"{join} WHERE {where} ORDER BY k.id"
        ),
        session.connection(),
        geom_col="geom",
        crs=4326,
        params=params,
    )
    return frame


def store_visits(
    session: Session,
    tracks: list[tuple[int, int | None, ProcessedTrack]],
    rules: VisitRules | None = None,
) -> dict[int, int]:
    """Detect and store visits to key households for the given tracks; visits per track.

    Presence counts kept and jitter fixes (a worker standing at a door jitters); jumps,
    impossible speeds and duplicates do not.
    """
    if not tracks:
        return {}
    lon = np.concatenate([tr.lon for _, _, tr in tracks])
    lat = np.concatenate([tr.lat for _, _, tr in tracks])
    lon0, lat0 = float(np.median(lon)), float(np.median(lat))
    near = _buildings_near(session, lon, lat)
    hh = pd.DataFrame(
        [(int(k), row) for row, (_b, keys, _g) in enumerate(near) for k in keys],
        columns=["household_id", "building"],
    )
    if hh.empty:
        return {}
    polys = shapely.transform(
        shapely.from_wkb([bytes(g) for _b, _k, g in near]),
        lambda c: np.c_[project(c[:, 0], c[:, 1], lon0, lat0)],
    )
    parts = []
    for tid, _staff, tr in tracks:
        keep = (tr.flag == KEPT) | (tr.flag == JITTER)
        x, y = project(tr.lon[keep], tr.lat[keep], lon0, lat0)
        parts.append((np.full(int(keep.sum()), tid, dtype=np.int64), tr.t[keep], x, y))
    track = np.concatenate([p[0] for p in parts])
    t = np.concatenate([p[1] for p in parts])
    x = np.concatenate([p[2] for p in parts])
    y = np.concatenate([p[3] for p in parts])
    visits = detect_visits(track, t, x, y, hh, polys, rules)
    if visits.empty:
        return {}
    staff = {tid: s for tid, s, _ in tracks}
    rows = pd.DataFrame(
        {
            "household_id": visits["household_id"].astype(int),
            "track_id": visits["track"].astype(int),
            "staff_id": visits["track"].map(staff).astype("Int64"),
            "started_at": pd.to_datetime(visits["start"], unit="s", utc=True).map(
                lambda v: v.isoformat()
            ),
            "ended_at": pd.to_datetime(visits["end"], unit="s", utc=True).map(
                lambda v: v.isoformat()
            ),
            "minutes": visits["minutes"].round(2),
            "min_distance_m": visits["min_distance_m"].round(2),
        }
    )
    copy_frame(
        session,
        "household_visits (household_id, track_id, staff_id, started_at, ended_at, minutes, "
        "min_distance_m)",
        rows,
    )
    return rows.groupby("track_id").size().to_dict()


def _buildings_near(
    session: Session, lon: np.ndarray, lat: np.ndarray
) -> list[tuple[int, list[int], bytes]]:
    """Every building around the fixes (id, key household ids it holds, WKB polygon), or
    none at all when no key household lives around: then there is no visit to look for."""
    pad = 0.001  # ~100 m
    rows = session.execute(
        text(
            """
            WITH env AS (SELECT ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326) AS e)
            SELECT b.id, array_remove(array_agg(k.id ORDER BY k.id), NULL) AS households,
                   ST_AsBinary(b.geom) AS wkb
            FROM buildings b LEFT JOIN key_households k ON k.building_id = b.id, env
            WHERE b.geom && env.e
              AND EXISTS (SELECT 1 FROM key_households k2 JOIN buildings b2
                          ON b2.id = k2.building_id, env WHERE b2.geom && env.e)
            GROUP BY b.id ORDER BY b.id
            """
        ),
        {
            "x0": float(lon.min()) - pad,
            "y0": float(lat.min()) - pad,
            "x1": float(lon.max()) + pad,
            "y1": float(lat.max()) + pad,
        },
    ).all()
    return [(int(r.id), list(r.households), r.wkb) for r in rows]


# ---------------------------------------------------------------------------------- reading


def tracks_list(
    session: Session,
    *,
    staff_id: int | None = None,
    day: date | None = None,
    grid_ids: Iterable[int] | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Tracks with their summary, newest first; optionally of one worker, day or grids."""
    where, params = ["TRUE"], {"limit": limit, "offset": offset}
    if staff_id is not None:
        where.append("p.staff_id = :s")
        params["s"] = staff_id
    if day is not None:
        where.append("p.work_date = :d")
        params["d"] = day
    if grid_ids is not None:
        where.append(
            "EXISTS (SELECT 1 FROM track_effort e WHERE e.track_id = p.id AND e.grid_id = ANY(:g))"
        )
        params["g"] = list(grid_ids)
    rows = session.execute(
        text(
            f"""
            SELECT p.id, p.staff_id, s.name AS staff_name, p.name, p.work_date, p.started_at,
                   p.ended_at, p.n_points, p.n_kept, p.distance_m, p.dropped, p.upload_id
            FROM patrol_tracks p LEFT JOIN staff s ON s.id = p.staff_id
            WHERE {" AND ".join(where)}
            ORDER BY p.started_at DESC NULLS LAST, p.id DESC LIMIT :limit OFFSET :offset
            """
        ),
        params,
    ).mappings()
    return [dict(r) for r in rows]


def track_detail(session: Session, track_id: int, *, raw: bool = False) -> dict[str, Any]:
    """A track's summary, cleaned line (GeoJSON), per-grid effort and, if asked, raw fixes."""
    row = (
        session.execute(
            text(
                """
            SELECT p.id, p.staff_id, p.name, p.work_date, p.started_at, p.ended_at, p.n_points,
                   p.n_kept, p.distance_m, p.dropped, p.upload_id,
                   ST_AsGeoJSON(p.geom, 7)::json AS geometry
            FROM patrol_tracks p WHERE p.id = :i
            """
            ),
            {"i": track_id},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFoundError(f"no track {track_id}")
    out = dict(row)
    out["effort"] = [
        dict(r)
        for r in session.execute(
            text(
                """
                SELECT e.grid_id, g.code, g.name, e.level, round(e.distance_m::numeric, 1)
                       AS distance_m, round(e.seconds::numeric) AS seconds, e.entries
                FROM track_effort e JOIN grids g ON g.id = e.grid_id
                WHERE e.track_id = :i ORDER BY e.level, g.code
                """
            ),
            {"i": track_id},
        ).mappings()
    ]
    if raw:
        pts = session.execute(
            text(
                "SELECT seq, segment, t, ST_X(geom) AS lon, ST_Y(geom) AS lat, accuracy_m, flag, "
                "cseg FROM track_points WHERE track_id = :i ORDER BY t, seq"
            ),
            {"i": track_id},
        ).mappings()
        out["points"] = [{**dict(p), "flag": FLAG_NAMES[p["flag"]]} for p in pts]
    return out


def track_grid_ids(session: Session, track_id: int) -> list[int]:
    """The grids a track touched (every level), for scope checks."""
    return list(
        session.execute(
            text("SELECT grid_id FROM track_effort WHERE track_id = :i"), {"i": track_id}
        ).scalars()
    )


def tracks_grid_ids(session: Session, track_ids: list[int]) -> dict[int, list[int]]:
    """The grids each track touched (every level), for scope checks: one query for all."""
    out: dict[int, list[int]] = {tid: [] for tid in track_ids}
    if track_ids:
        rows = session.execute(
            text("SELECT track_id, grid_id FROM track_effort WHERE track_id = ANY(:i)"),
            {"i": track_ids},
        )
        for tid, gid in rows:
            out[int(tid)].append(int(gid))
    return out


def daily_status(
    session: Session, day: date, *, level: str = "micro", min_minutes: float = PATROL_MIN_MINUTES
) -> pd.DataFrame:
    """Per grid of a level on a day: minutes and distance patrolled, by whom, and whether it
    counts as patrolled (at least ``min_minutes`` inside); grids nobody entered included."""
    return pd.read_sql(
        text(
            """
            SELECT g.id AS grid_id, g.code, g.name,
                   coalesce(sum(e.seconds), 0) / 60.0 AS minutes,
                   coalesce(sum(e.distance_m), 0) AS distance_m,
                   count(DISTINCT p.staff_id) AS workers,
                   coalesce(sum(e.seconds), 0) / 60.0 >= :m AS patrolled
            FROM grids g
            LEFT JOIN track_effort e ON e.grid_id = g.id
              AND e.track_id IN (SELECT id FROM patrol_tracks WHERE work_date = :d)
            LEFT JOIN patrol_tracks p ON p.id = e.track_id
            WHERE g.level = :lv
            GROUP BY g.id, g.code, g.name ORDER BY g.code
            """
        ),
        session.connection(),
        params={"d": day, "lv": level, "m": min_minutes},
    )


def grid_coverage(
    session: Session, grid_id: int, start: date, end: date
) -> tuple[Coverage, dict[str, Any]]:
    """Street and building coverage of a grid by the cleaned tracks of days start..end."""
    g = session.execute(
        text("SELECT id, code, name, level, geom FROM grids WHERE id = :i"), {"i": grid_id}
    ).first()
    if g is None:
        raise NotFoundError(f"no grid {grid_id}")
    area = gpd.read_postgis(
        text("SELECT geom FROM grids WHERE id = :i"),
        session.connection(),
        params={"i": grid_id},
        crs=4326,
    )
    crs = metric_crs(*area.geometry.iloc[0].centroid.coords[0])
    area_m = area.to_crs(crs).geometry.iloc[0]
    roads = gpd.read_postgis(
        text(
            "SELECT r.geom FROM roads r, grids g WHERE g.id = :i AND r.kind <> 'motorway' "
            "AND ST_Intersects(r.geom, g.geom)"
        ),
        session.connection(),
        params={"i": grid_id},
        crs=4326,  # also when no row comes back
    ).to_crs(crs)
    buildings = gpd.read_postgis(
        text(
            "SELECT b.geom FROM buildings b, grids g WHERE g.id = :i "
            "AND ST_Intersects(ST_PointOnSurface(b.geom), g.geom)"
        ),
        session.connection(),
        params={"i": grid_id},
        crs=4326,  # also when no row comes back
    ).to_crs(crs)
    tracks = gpd.read_postgis(
        text(
            """
            SELECT p.geom FROM patrol_tracks p, grids g
            WHERE g.id = :i AND p.work_date BETWEEN :a AND :b AND p.geom IS NOT NULL
              AND ST_Intersects(p.geom, ST_Buffer(g.geom::geography, 50)::geometry)
            """
        ),
        session.connection(),
        params={"i": grid_id, "a": start, "b": end},
        crs=4326,
    ).to_crs(crs)
    cov = coverage(
        area_m, roads.geometry.to_numpy(), buildings.geometry.to_numpy(), tracks.geometry.to_numpy()
    )
    parts = shapely.get_parts(cov.uncovered)
    parts = parts[shapely.length(parts) >= 1.0] if len(parts) else parts
    uncovered = (
        gpd.GeoSeries(
            [shapely.multilinestrings(parts) if len(parts) else shapely.MultiLineString()], crs=crs
        )
        .to_crs(4326)
        .iloc[0]
    )
    info = {
        "grid_id": g.id,
        "code": g.code,
        "name": g.name,
        "level": g.level,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "street_m": round(cov.street_m, 1),
        "covered_m": round(cov.covered_m, 1),
        "street_share": round(cov.street_share, 4),
        "buildings": cov.buildings,
        "buildings_passed": cov.passed,
        "building_share": round(cov.building_share, 4),
        "uncovered": json.loads(shapely.to_geojson(uncovered)) if not uncovered.is_empty else None,
    }
    return cov, info


def week_bounds(day: date) -> tuple[date, date]:
    """Monday..Sunday of the week holding ``day``."""
    monday = day - timedelta(days=day.weekday())
    return monday, monday + timedelta(days=6)


def visits_frame(session: Session, start: date, end: date) -> pd.DataFrame:
    """Visits to key households made on days start..end (local time)."""
    return pd.read_sql(
        text(
            """
            SELECT v.household_id, v.staff_id, v.track_id, v.started_at AS start, v.minutes
            FROM household_visits v
            WHERE (v.started_at AT TIME ZONE 'Asia/Shanghai')::date BETWEEN :a AND :b
            ORDER BY v.started_at
            """
        ),
        session.connection(),
        params={"a": start, "b": end},
    )


def household_compliance(session: Session, week_of: date) -> pd.DataFrame:
    """Per key household: visits made in the week (due: one), visitors, compliant. No
    personal data: household id, kind, grid and building address only."""
    start, end = week_bounds(week_of)
    homes = pd.read_sql(
        text(
            "SELECT k.id AS household_id, k.kind, k.grid_id, g.code AS grid_code "
            "FROM key_households k LEFT JOIN grids g ON g.id = k.grid_id ORDER BY k.id"
        ),
        session.connection(),
    )
    visits = visits_frame(session, start, end)
    out = visit_compliance(homes, visits, [pd.Timestamp(start)])
    return out.merge(homes[["household_id", "kind", "grid_code"]], on="household_id")


def compliance_report(session: Session, week_of: date, *, by: str = "worker") -> pd.DataFrame:
    """Weekly compliance per worker or per grid (micro): days patrolled, distance, minutes,
    key-household visits due and made.

    Per worker: the days with a track of theirs, the grids assigned to them, visits due =
    key households in their grids (one each), made = those visited by anyone that week.
    """
    start, end = week_bounds(week_of)
    if by not in ("worker", "grid"):
        raise GisError(f"compliance is by worker or grid, not {by!r}")
    households = household_compliance(session, week_of)
    visited = set(households.loc[households["compliant"], "household_id"])
    if by == "worker":
        frame = pd.read_sql(
            text(
                """
                SELECT s.id AS staff_id, s.name, s.role,
                       count(DISTINCT p.work_date) AS days_patrolled,
                       coalesce(sum(p.distance_m), 0) AS distance_m,
                       coalesce(sum(extract(epoch FROM p.ended_at - p.started_at)), 0) / 60.0
                         AS minutes
                FROM staff s
                LEFT JOIN patrol_tracks p ON p.staff_id = s.id
                  AND p.work_date BETWEEN :a AND :b
                WHERE s.role = '网格员'
                GROUP BY s.id, s.name, s.role ORDER BY s.id
                """
            ),
            session.connection(),
            params={"a": start, "b": end},
        )
        due = pd.read_sql(
            text(
                """
                SELECT sg.staff_id, k.id AS household_id
                FROM staff_grids sg JOIN key_households k ON k.grid_id = sg.grid_id
                """
            ),
            session.connection(),
        )
        due["made"] = due["household_id"].isin(visited)
        agg = due.groupby("staff_id").agg(
            visits_due=("household_id", "size"), visits_made=("made", "sum")
        )
        frame = frame.merge(agg, left_on="staff_id", right_index=True, how="left")
    else:
        frame = pd.read_sql(
            text(
                """
                WITH daily AS (
                  SELECT e.grid_id, p.work_date, sum(e.seconds) AS seconds,
                         sum(e.distance_m) AS distance_m
                  FROM track_effort e JOIN patrol_tracks p ON p.id = e.track_id
                  WHERE p.work_date BETWEEN :a AND :b
                  GROUP BY e.grid_id, p.work_date
                )
                SELECT g.id AS grid_id, g.code, g.name,
                       count(d.work_date) FILTER (WHERE d.seconds >= :m * 60) AS days_patrolled,
                       coalesce(sum(d.distance_m), 0) AS distance_m,
                       coalesce(sum(d.seconds), 0) / 60.0 AS minutes
                FROM grids g LEFT JOIN daily d ON d.grid_id = g.id
                WHERE g.level = 'micro'
                GROUP BY g.id, g.code, g.name ORDER BY g.code
                """
            ),
            session.connection(),
            params={"a": start, "b": end, "m": PATROL_MIN_MINUTES},
        )
        agg = households.groupby("grid_id").agg(
            visits_due=("household_id", "size"), visits_made=("compliant", "sum")
        )
        frame = frame.merge(agg, left_on="grid_id", right_index=True, how="left")
    frame[["visits_due", "visits_made"]] = (
        frame[["visits_due", "visits_made"]].fillna(0).astype(int)
    )
    frame["distance_m"] = frame["distance_m"].astype(float).round(1)
    frame["minutes"] = frame["minutes"].astype(float).round(1)
    frame.insert(0, "week", start.isoformat())
    return frame


def patrol_day_layers(
    session: Session, day: date, scope: Iterable[int] | None = None
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame, float | None]:
    """What the patrol page shows for a day: micro grids with their status, the day's
    cleaned tracks, the uncovered street parts (EPSG:4326) and the district's street share
    covered. ``scope`` limits everything to those grids (a grid worker's)."""
    status = daily_status(session, day, level="micro")
    grids = grids_frame(session, level="micro")
    grids = grids[["id", "geometry"]].merge(status, left_on="id", right_on="grid_id")
    if scope is not None:
        grids = grids[grids["grid_id"].isin(list(scope))]
    tracks = gpd.read_postgis(
        text(
            """
            SELECT p.id, coalesce(s.name, '') AS staff_name, round(p.distance_m) AS distance_m,
                   ST_Multi(ST_Simplify(p.geom, 0.00005)) AS geom
            FROM patrol_tracks p LEFT JOIN staff s ON s.id = p.staff_id
            WHERE p.work_date = :d AND p.geom IS NOT NULL ORDER BY p.id
            """
        ),
        session.connection(),
        params={"d": day},
        geom_col="geom",
        crs=4326,
    ).rename_geometry("geometry")
    roads = gpd.read_postgis(
        text("SELECT id, geom FROM roads WHERE kind <> 'motorway' ORDER BY id"),
        session.connection(),
        geom_col="geom",
        crs=4326,
    ).rename_geometry("geometry")
    if scope is not None and len(grids):
        area = grids.geometry.union_all()
        roads = roads[roads.intersects(area)]
        tracks = tracks[tracks.intersects(area)]
    if roads.empty:
        empty = gpd.GeoDataFrame({"length_m": []}, geometry=[], crs=4326)
        return grids, tracks, empty, None
    crs = metric_crs_for(roads)
    streets_m = roads.to_crs(crs).geometry.to_numpy()
    tracks_m = tracks.to_crs(crs).geometry.to_numpy() if len(tracks) else np.empty(0, object)
    rest, covered = uncovered_streets(streets_m, tracks_m)
    total = float(shapely.length(streets_m).sum())
    keep = ~shapely.is_empty(rest) & (shapely.length(rest) >= 1.0)
    uncovered = gpd.GeoDataFrame(
        {"length_m": np.round(shapely.length(rest[keep]), 1)},
        geometry=list(rest[keep]),
        crs=crs,
    ).to_crs(4326)
    return grids, tracks, uncovered, (float(covered.sum()) / total if total else None)
