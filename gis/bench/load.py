"""``wangge bench load``: hundreds of grid workers (网格员) uploading tracks at once.

Each simulated worker is a real patroller account (its own staff record, micro grid and
signed token) and sends one small GPX day to ``POST /tracks`` of the app served on
127.0.0.1, all at the same time, each from its own HTTP connection. A share of the workers
send their file twice: one half again after the first answer (a phone that lost the
answer), the other half at the same moment as the first (a phone retrying while the first
request is still running). An answer of 409 or 503, or a dropped connection, is retried
with the same bytes, as a phone would (uploads are idempotent by content).

Afterwards the database is counted: every fix sent must be stored exactly once (one upload
row per distinct file, one track per upload, ``track_points`` rows equal to the fixes
sent). Reported: uploads per second, fixes per second, and latency percentiles.

Only 127.0.0.1 is ever contacted. The accounts are made with :func:`add_patrollers` and
removed with their tracks by :func:`remove_patrollers`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 11, 3, 9, 0, tzinfo=LOCAL_TZ)  # a Tuesday morning patrol
FIX_S = 5
RETRIED = (409, 503)  # answers a phone retries with the same bytes
MAX_TRIES = 4


class LoadCheckFailed(AssertionError):
    """What the database holds does not match what was sent."""


@dataclass(frozen=True)
class Patroller:
    """One simulated grid worker: account, staff record, grid and a point inside it."""

    user_id: int
    staff_id: int
    grid_id: int
    lon: float
    lat: float


@dataclass(frozen=True)
class Job:
    """One file to upload for one worker; ``resend`` is "", "after" or "concurrent"."""

    worker: int
    token: str
    name: str
    data: bytes
    points: int
    resend: str = ""


@dataclass
class Answer:
    """One HTTP exchange as the client saw it."""

    worker: int
    kind: str  # "first" or "resend"
    status: int
    seconds: float
    tries: int
    duplicate: bool | None
    detail: str = ""
    retried_on: list[int] = field(default_factory=list)


@dataclass
class LoadResult:
    """Answers, wall time and the check against the database."""

    workers: int
    files: int
    points_sent: int
    requests: int
    wall_s: float
    answers: list[Answer] = field(default_factory=list)
    stored: dict[str, int] = field(default_factory=dict)
    server_cpu_s: float = math.nan  # CPU used by the server's processes during the burst
    machine_cpu_s: float = math.nan  # CPU busy on the whole machine (other work included)

    def latency_ms(self, q: float) -> float:
        """The ``q`` quantile (0..1) of request latency in milliseconds."""
        values = np.array([a.seconds for a in self.answers]) * 1000.0
        return float(np.quantile(values, q)) if len(values) else math.nan

    def statuses(self) -> dict[int, int]:
        """Final HTTP status -> how many requests ended with it."""
        out: dict[int, int] = {}
        for a in self.answers:
            out[a.status] = out.get(a.status, 0) + 1
        return dict(sorted(out.items()))

    def summary(self) -> dict[str, Any]:
        """The numbers worth keeping, JSON-ready."""
        return {
            "workers": self.workers,
            "files": self.files,
            "points_sent": self.points_sent,
            "requests": self.requests,
            "retries": sum(a.tries - 1 for a in self.answers),
            "retried_on": {
                str(c): sum(a.retried_on.count(c) for a in self.answers)
                for c in (*RETRIED, 0)  # 0: the connection dropped
            },
            "wall_s": round(self.wall_s, 3),
            "uploads_per_s": round(self.requests / self.wall_s, 1),
            "points_per_s": round(self.points_sent / self.wall_s, 1),
            "latency_ms": {
                "p50": round(self.latency_ms(0.50), 1),
                "p90": round(self.latency_ms(0.90), 1),
                "p99": round(self.latency_ms(0.99), 1),
                "max": round(self.latency_ms(1.0), 1),
            },
            "server_cpu_s": round(self.server_cpu_s, 2),
            "server_cpu_ms_per_request": round(1000.0 * self.server_cpu_s / self.requests, 1),
            "machine_cpu_s": round(self.machine_cpu_s, 2),
            "statuses": {str(k): v for k, v in self.statuses().items()},
            "stored": self.stored,
        }


# ------------------------------------------------------------------------ accounts


def add_patrollers(session: Session, n: int, *, prefix: str, password_hash: str) -> list[Patroller]:
    """``n`` patroller accounts named ``<prefix>-00000``..., each with its own staff record
    assigned to one micro grid (round robin over the micro grids, by code)."""
    grids = session.execute(
        text(
            "SELECT id, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) "
            "FROM grids WHERE level = 'micro' ORDER BY code"
        )
    ).all()
    if not grids:
        raise RuntimeError("no micro grids in the database: load a district first")
    names = [f"{prefix}-{i:05d}" for i in range(n)]
    staff = dict(
        session.execute(
            text(
                "INSERT INTO staff (name, role) SELECT u, '网格员' "
                "FROM unnest(CAST(:n AS text[])) u RETURNING name, id"
            ),
            {"n": names},
        ).all()
    )
    staff_ids = [int(staff[name]) for name in names]
    grid_of = [grids[i % len(grids)] for i in range(n)]
    session.execute(
        text(
            "INSERT INTO staff_grids (staff_id, grid_id) "
            "SELECT * FROM unnest(CAST(:s AS int[]), CAST(:g AS int[]))"
        ),
        {"s": staff_ids, "g": [int(g[0]) for g in grid_of]},
    )
    users = dict(
        session.execute(
            text(
                "INSERT INTO users (username, password_hash, role, staff_id) "
                "SELECT u, :h, 'patroller', s "
                "FROM unnest(CAST(:u AS text[]), CAST(:s AS int[])) AS x(u, s) "
                "RETURNING staff_id, id"
            ),
            {"u": names, "s": staff_ids, "h": password_hash},
        ).all()
    )
    return [
        Patroller(int(users[sid]), sid, int(g[0]), float(g[1]), float(g[2]))
        for sid, g in zip(staff_ids, grid_of, strict=True)
    ]


def remove_patrollers(session: Session, prefix: str) -> int:
    """Remove the accounts made by :func:`add_patrollers` with everything they uploaded
    (tracks, fixes, effort and visits go with their upload) and their audit entries."""
    pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "-%"
    ids = (
        session.execute(text("SELECT id FROM users WHERE username LIKE :p"), {"p": pattern})
        .scalars()
        .all()
    )
    session.execute(
        text(
            "DELETE FROM track_uploads WHERE user_id = ANY(:u) OR staff_id IN "
            "(SELECT id FROM staff WHERE name LIKE :p)"
        ),
        {"u": list(ids), "p": pattern},
    )
    session.execute(text("DELETE FROM audit_log WHERE username LIKE :p"), {"p": pattern})
    session.execute(text("DELETE FROM users WHERE username LIKE :p"), {"p": pattern})
    session.execute(text("DELETE FROM staff WHERE name LIKE :p"), {"p": pattern})
    return len(ids)


# ------------------------------------------------------------------------ files


def gpx_walk(p: Patroller, points: int, *, worker: int, radius_m: float = 25.0) -> bytes:
    """A GPX 1.1 file: ``points`` fixes every 5 s walking round a circle inside the grid
    (about 1.3 m/s), starting at a time unique to the worker (so every file differs)."""
    start = DAY + timedelta(seconds=7 * worker)
    k = np.arange(points)
    angle = k * (1.3 * FIX_S / radius_m) + worker
    dlat = radius_m / 111_320.0
    dlon = dlat / max(math.cos(math.radians(p.lat)), 0.1)
    lon = p.lon + dlon * np.cos(angle)
    lat = p.lat + dlat * np.sin(angle)
    rows = []
    for i in range(points):
        t = (start + timedelta(seconds=FIX_S * int(i))).astimezone(ZoneInfo("UTC"))
        rows.append(
            f'<trkpt lat="{lat[i]:.7f}" lon="{lon[i]:.7f}">'
            f"<time>{t:%Y-%m-%dT%H:%M:%SZ}</time></trkpt>"
        )
    body = "\n".join(rows)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<gpx version="1.1" creator="wangge bench load" '
        'xmlns="http://www.topografix.com/GPX/1/1">\n'
        f"<trk><name>worker {worker}</name><trkseg>\n{body}\n</trkseg></trk></gpx>\n"
    ).encode()


def make_jobs(
    patrollers: list[Patroller],
    tokens: list[str],
    *,
    points: int,
    resend_every: int = 10,
) -> list[Job]:
    """One job per worker; every ``resend_every``-th worker sends its file twice,
    alternately after the first answer and at the same moment as the first request."""
    jobs = []
    for i, (p, token) in enumerate(zip(patrollers, tokens, strict=True)):
        resend = ""
        if resend_every and i % resend_every == 0:
            resend = "after" if (i // resend_every) % 2 == 0 else "concurrent"
        jobs.append(
            Job(i, token, f"worker-{i:05d}.gpx", gpx_walk(p, points, worker=i), points, resend)
        )
    return jobs


# ------------------------------------------------------------------------ load


def _local_only(base_url: str) -> None:
    host = urlsplit(base_url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"the load test only talks to 127.0.0.1, not {host!r}")


async def _post(client: Any, job: Job, kind: str) -> Answer:
    """Upload one file, retrying 409/503 answers and dropped connections with the same
    bytes (at most ``MAX_TRIES`` sends); the latency covers every try."""
    t0 = time.perf_counter()
    tries = 0
    retried: list[int] = []
    while True:
        tries += 1
        try:
            resp = await client.post(
                "/tracks",
                files={"files": (job.name, job.data, "application/gpx+xml")},
                headers={"Authorization": f"Bearer {job.token}"},
            )
        except Exception as exc:  # a dropped connection: a phone sends the same bytes again
            if tries < MAX_TRIES:
                retried.append(0)
                await asyncio.sleep(0.05 * tries)
                continue
            return Answer(job.worker, kind, 0, time.perf_counter() - t0, tries, None, repr(exc),
                          retried)  # fmt: skip
        if resp.status_code in RETRIED and tries < MAX_TRIES:
            retried.append(resp.status_code)
            await asyncio.sleep(0.05 * tries)
            continue
        dup = None
        detail = ""
        if resp.status_code in (200, 201):
            uploads = resp.json()["uploads"]
            dup = bool(uploads[0].get("duplicate"))
        else:
            detail = resp.text[:300]
        return Answer(job.worker, kind, resp.status_code, time.perf_counter() - t0, tries, dup,
                      detail, retried)  # fmt: skip


async def _worker(client: Any, job: Job) -> list[Answer]:
    if job.resend == "concurrent":
        return list(await asyncio.gather(_post(client, job, "first"), _post(client, job, "resend")))
    first = await _post(client, job, "first")
    if job.resend == "after":
        return [first, await _post(client, job, "resend")]
    return [first]


async def _run(base_url: str, jobs: list[Job], timeout_s: float) -> tuple[list[Answer], float]:
    import httpx2 as httpx  # dev extra; only the load test and the benchmark need it

    logging.getLogger("httpx2").setLevel(logging.WARNING)  # not one line per request

    n = len(jobs) + sum(1 for j in jobs if j.resend)
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(
        base_url=base_url, limits=limits, timeout=httpx.Timeout(timeout_s), trust_env=False
    ) as client:
        t0 = time.perf_counter()
        done = await asyncio.wait_for(
            asyncio.gather(*(_worker(client, j) for j in jobs)), timeout=timeout_s
        )
        wall = time.perf_counter() - t0
    return [a for answers in done for a in answers], wall


def machine_cpu_s() -> float:
    """CPU seconds the whole machine has been busy (not idle) since boot, from /proc/stat;
    NaN where there is none."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return math.nan
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def run_load(
    base_url: str,
    jobs: list[Job],
    *,
    timeout_s: float = 120.0,
    server_cpu: Callable[[], float] | None = None,
) -> LoadResult:
    """Send every job at once to ``base_url`` (127.0.0.1 only); bounded by ``timeout_s``.
    ``server_cpu`` tells the server's CPU seconds so far: the burst's share is reported."""
    _local_only(base_url)
    cpu0, machine0 = (server_cpu() if server_cpu else math.nan), machine_cpu_s()
    answers, wall = asyncio.run(_run(base_url, jobs, timeout_s))
    cpu1, machine1 = (server_cpu() if server_cpu else math.nan), machine_cpu_s()
    return LoadResult(
        workers=len(jobs),
        files=len(jobs),
        points_sent=sum(j.points for j in jobs),
        requests=len(answers),
        wall_s=wall,
        answers=answers,
        server_cpu_s=cpu1 - cpu0,
        machine_cpu_s=machine1 - machine0,
    )


def stored_counts(session: Session, user_ids: list[int]) -> dict[str, int]:
    """What the database holds for these accounts: uploads, tracks, fixes, and fixes
    stored more than once (same track and sequence number, or same file twice)."""
    row = session.execute(
        text(
            """
            SELECT count(DISTINCT u.id) AS uploads,
                   count(DISTINCT u.content_hash) AS distinct_files,
                   count(DISTINCT t.id) AS tracks,
                   count(p.*) AS points,
                   count(DISTINCT (p.track_id, p.seq)) AS distinct_points
            FROM track_uploads u
            LEFT JOIN patrol_tracks t ON t.upload_id = u.id
            LEFT JOIN track_points p ON p.track_id = t.id
            WHERE u.user_id = ANY(:u)
            """
        ),
        {"u": user_ids},
    ).one()
    return dict(row._mapping)


def check(result: LoadResult, stored: dict[str, int]) -> list[str]:
    """Every way the run fell short: failed requests, points lost or stored twice."""
    problems = []
    failed = [a for a in result.answers if a.status not in (200, 201)]
    if failed:
        sample = "; ".join(f"worker {a.worker}: {a.status} {a.detail}" for a in failed[:5])
        problems.append(f"{len(failed)} requests failed ({sample})")
    firsts = {}
    for a in result.answers:
        if a.status in (200, 201):
            firsts.setdefault(a.worker, []).append(a.duplicate)
    doubled = [w for w, dups in firsts.items() if dups.count(False) > 1]
    if doubled:
        problems.append(f"{len(doubled)} files stored as new twice (workers {doubled[:5]})")
    expected = {
        "uploads": result.files,
        "distinct_files": result.files,
        "tracks": result.files,
        "points": result.points_sent,
        "distinct_points": result.points_sent,
    }
    for key, want in expected.items():
        if stored.get(key) != want:
            problems.append(f"{key}: stored {stored.get(key)}, expected {want}")
    return problems
