"""`wangge bench load`: hundreds of grid workers uploading tracks at once to the app served
by uvicorn on 127.0.0.1, and :func:`served`, the server subprocess the load test uses too."""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from api.cli.app import bench_app, console


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and all its descendants, read
    from /proc (Linux); 0.0 where /proc is not there."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue  # gone meanwhile
    return total


class Served(str):
    """The base URL of an app served by :func:`served`; ``cpu_s()`` tells the CPU time its
    processes (uvicorn and its workers) have used."""

    pid: int

    def __new__(cls, base: str, pid: int) -> Served:
        out = super().__new__(cls, base)
        out.pid = pid
        return out

    def cpu_s(self) -> float:
        """CPU seconds used by the server's processes so far."""
        return process_tree_cpu_s(self.pid)


@contextmanager
def served(
    database_url: str, *, workers: int = 2, startup_s: float = 60.0, log: Path | None = None
) -> Iterator[Served]:
    """The real app in a uvicorn subprocess on 127.0.0.1 (``workers`` processes) over
    ``database_url``; yields its base URL (with the server's CPU time) and stops it on exit."""
    import httpx2 as httpx

    port = free_port()
    env = {**os.environ, "WANGGE_DATABASE_URL": database_url}
    cmd = [
        sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--log-level", "warning", "--backlog", "4096",
    ]  # fmt: skip
    out = log.open("ab") if log else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {proc.returncode} while starting")
            try:
                if httpx.get(f"{base}/auth/login", timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not answer within {startup_s:.0f} s")
            time.sleep(0.2)
        yield Served(base, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if log:
            out.close()  # type: ignore[union-attr]


@bench_app.command("load")
def bench_load(
    workers: Annotated[int, typer.Option(help="grid workers uploading at once")] = 600,
    points: Annotated[int, typer.Option(help="fixes per file (one every 5 s)")] = 120,
    resend_every: Annotated[int, typer.Option(help="every n-th worker sends twice")] = 10,
    server_workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 2,
    timeout: Annotated[float, typer.Option(help="bound on the whole run, seconds")] = 300.0,
    out_dir: Annotated[Path, typer.Option(help="where to write load.json")] = Path("var/bench"),
) -> None:
    """600 patrollers (own accounts and tokens) POST /tracks at once to the app on
    127.0.0.1; checks every fix is stored exactly once and reports throughput and p99.
    The accounts and their tracks are removed afterwards."""
    from api.security import create_token, hash_password
    from gis.bench.load import (
        add_patrollers,
        check,
        make_jobs,
        remove_patrollers,
        run_load,
        stored_counts,
    )
    from gis.db.config import get_settings
    from gis.db.session import transaction

    url = get_settings().database_url
    prefix = f"bench-load-{uuid.uuid4().hex[:8]}"
    try:
        with transaction() as session:
            patrollers = add_patrollers(
                session, workers, prefix=prefix, password_hash=hash_password(uuid.uuid4().hex)
            )
        tokens = [create_token(p.user_id, "patroller") for p in patrollers]
        jobs = make_jobs(patrollers, tokens, points=points, resend_every=resend_every)
        console.print(
            f"{workers} patrollers, {len(jobs)} files of {points} fixes, "
            f"{sum(1 for j in jobs if j.resend)} sent twice; uvicorn x{server_workers}"
        )
        with served(url, workers=server_workers) as base:
            result = run_load(base, jobs, timeout_s=timeout, server_cpu=base.cpu_s)
        with transaction() as session:
            result.stored = stored_counts(session, [p.user_id for p in patrollers])
    finally:
        with transaction() as session:
            remove_patrollers(session, prefix)
    problems = check(result, result.stored)
    s = result.summary()
    table = Table(title="wangge bench load: POST /tracks on 127.0.0.1")
    table.add_column("measure")
    table.add_column("value", justify="right")
    lat = s["latency_ms"]
    for name, value in (
        ("patrollers uploading at once", f"{s['workers']:,}"),
        ("requests (incl. re-sends)", f"{s['requests']:,}"),
        ("fixes sent", f"{s['points_sent']:,}"),
        ("wall time", f"{s['wall_s']:.1f} s"),
        ("throughput", f"{s['uploads_per_s']:,.1f} uploads/s, {s['points_per_s']:,.0f} fixes/s"),
        ("latency p50 / p90", f"{lat['p50']:,.0f} / {lat['p90']:,.0f} ms"),
        ("latency p99 / max", f"{lat['p99']:,.0f} / {lat['max']:,.0f} ms"),
        (
            "server CPU (uvicorn processes)",
            f"{s['server_cpu_s']:,.1f} s, {s['server_cpu_ms_per_request']:,.1f} ms per request",
        ),
        ("whole machine CPU busy (all processes)", f"{s['machine_cpu_s']:,.1f} s"),
        ("retries (409 / 503 / dropped)", " / ".join(str(v) for v in s["retried_on"].values())),
        ("every fix stored exactly once", "yes" if not problems else "NO"),
    ):
        table.add_row(name, value)
    console.print(table)
    console.print(f"answers: {s['statuses']}; stored: {s['stored']}")
    report = {
        **s,
        "points_per_file": points,
        "server_workers": server_workers,
        "problems": problems,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "system": platform.platform(),
        },
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "load.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    console.print(f"wrote {out_dir / 'load.json'}")
    if problems:
        for p in problems:
            console.print(f"[red]{p}")
        raise typer.Exit(1)
