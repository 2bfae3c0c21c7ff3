"""`wangge` commands for the incident loop: replay the demo year, the SLA tick, KPI export."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from api.cli.app import app, console

log = logging.getLogger(__name__)
incidents_app = typer.Typer(help="Incidents: replay, KPIs.", no_args_is_help=True)
app.add_typer(incidents_app, name="incidents")
sla_app = typer.Typer(help="SLA colour warnings and escalation (分色预警).", no_args_is_help=True)
app.add_typer(sla_app, name="sla")


def _when(value: str | None) -> datetime:
    if not value:
        return datetime.now(UTC)
    ts = datetime.fromisoformat(value)
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def run_replay(*, until: datetime | None = None, seed: int = 20261123) -> dict[str, Any]:
    """Replay every incident still untouched since its report; returns timings and counts."""
    from data.replay import Handlers, replay
    from gis.db.config import get_taxonomy
    from gis.db.queries.dashboards import refresh_rollup
    from gis.db.queries.workflow import replay_inputs, store_replay
    from gis.db.session import transaction

    taxonomy = get_taxonomy()
    t0 = time.perf_counter()
    with transaction() as session:
        frame, workers, names = replay_inputs(session)
        t_read = time.perf_counter()
        if frame.empty:
            return {"incidents": 0}
        end = until or (frame["reported_at"].max() + timedelta(days=1)).to_pydatetime()
        events, states = replay(frame, taxonomy, Handlers(workers, names), until=end, seed=seed)
        t_sim = time.perf_counter()
        store_replay(session, events, states)
        # the replay writes steps at their historical times, behind the rollup's watermark:
        # an incremental refresh would not see them, so the dashboards' rollup is rebuilt
        refresh_rollup(session, taxonomy, full=True)
    t_end = time.perf_counter()
    return {
        "incidents": len(frame),
        "events": len(events),
        "until": end.isoformat(),
        "read_s": round(t_read - t0, 2),
        "simulate_s": round(t_sim - t_read, 2),
        "store_s": round(t_end - t_sim, 2),
        "total_s": round(t_end - t0, 2),
        "statuses": states["status"].value_counts().to_dict(),
    }


@incidents_app.command("replay")
def replay_cmd(
    until: Annotated[str | None, typer.Option(help="replay up to (ISO time); default: end")] = None,
    seed: int = 20261123,
    out: Annotated[Path, typer.Option(help="results folder")] = Path("var/bench"),
) -> None:
    """Run every untouched incident through the closed loop (accept, dispatch by the routing
    rules, escalate when late, resolve, evaluate, reopen, close), then compute the KPIs."""
    from gis.db.config import get_taxonomy
    from gis.db.queries.kpis import kpi_frame
    from gis.db.session import transaction
    from gis.kpis import incident_kpis

    info = run_replay(until=_when(until) if until else None, seed=seed)
    if not info["incidents"]:
        console.print("nothing to replay: every incident has moved since its report")
        return
    t0 = time.perf_counter()
    with transaction() as session:
        frame = kpi_frame(session, get_taxonomy())
    overall = incident_kpis(frame, [])
    by_community = incident_kpis(frame, ["community"])
    info["kpis_s"] = round(time.perf_counter() - t0, 2)
    info["overall"] = overall.iloc[0].to_dict()
    out.mkdir(parents=True, exist_ok=True)
    (out / "replay.json").write_text(json.dumps(info, indent=1, default=str, ensure_ascii=False))
    table = Table(title=f"replayed {info['incidents']:,} incidents ({info['events']:,} events)")
    for col in ("step", "seconds"):
        table.add_column(col)
    for key in ("read_s", "simulate_s", "store_s", "total_s", "kpis_s"):
        table.add_row(key.removesuffix("_s"), f"{info[key]:.2f}")
    console.print(table)
    _print_kpis(by_community, "KPIs per community (社区)")
    console.print(f"overall: {info['overall']}")


def _print_kpis(frame: Any, title: str) -> None:
    table = Table(title=title)
    cols = [
        "community_name",
        "incidents",
        "handled_rate",
        "on_time_rate",
        "median_response_min",
        "median_resolution_h",
        "satisfaction",
        "in_grid_share",
    ]
    cols = [c for c in cols if c in frame.columns]
    for col in cols:
        table.add_column(col, justify="right")
    for rec in frame[cols].itertuples(index=False):
        table.add_row(*("—" if v is None else str(v) for v in rec))
    console.print(table)


@incidents_app.command("kpis")
def kpis_cmd(
    by: Annotated[list[str], typer.Option(help="grouping; repeat for several")] = ["community"],  # noqa: B006
    start: Annotated[str | None, typer.Option(help="from (ISO)")] = None,
    end: Annotated[str | None, typer.Option(help="until (ISO)")] = None,
    out: Annotated[Path | None, typer.Option(help="CSV file (default: print)")] = None,
) -> None:
    """KPIs per grid, community, worker, category, source or period, as CSV."""
    from gis.db.config import get_taxonomy
    from gis.db.queries.kpis import kpi_frame
    from gis.db.session import transaction
    from gis.kpis import incident_kpis

    with transaction() as session:
        frame = kpi_frame(
            session,
            get_taxonomy(),
            start=_when(start) if start else None,
            end=_when(end) if end else None,
        )
    table = incident_kpis(frame, by)
    if out is None:
        typer.echo(table.to_csv(index=False))
    else:
        table.to_csv(out, index=False)
        console.print(f"{len(table)} rows written to {out}")


@sla_app.command("tick")
def sla_tick_cmd(
    now: Annotated[str | None, typer.Option(help="the time to tick at (ISO); default: now")] = None,
    every: Annotated[int, typer.Option(help="repeat every N seconds (0: once)")] = 0,
    rebuild_rollup: Annotated[
        bool, typer.Option(help="rebuild the dashboards' rollup in full (after a replay)")
    ] = False,
) -> None:
    """Re-colour open incidents, escalate overdue ones, close unevaluated resolved ones; then
    bring the dashboards' rollup up to date."""
    from gis.db.config import get_taxonomy
    from gis.db.queries.dashboards import refresh_rollup
    from gis.db.queries.workflow import sla_tick
    from gis.db.session import transaction

    while True:
        with transaction() as session:
            counts = sla_tick(session, _when(now), get_taxonomy())
        console.print(f"sla tick: {counts}")
        with transaction() as session:  # the dashboards' rollup: the days touched since
            done = refresh_rollup(session, get_taxonomy(), full=rebuild_rollup)
        rebuild_rollup = False
        console.print(
            f"dashboard rollup: {'full rebuild' if done.full else f'{done.days} days'} "
            f"in {done.seconds:.2f} s"
        )
        if every <= 0:
            return
        time.sleep(every)


def start_sla_ticker(every_s: int) -> threading.Thread:
    """The in-process scheduler of ``wangge serve``: an SLA tick every ``every_s`` seconds in a
    daemon thread, each followed by a refresh of the dashboards' rollup; a failed tick is
    logged and the next one runs as planned."""
    from gis.db.config import get_taxonomy
    from gis.db.queries.dashboards import refresh_rollup
    from gis.db.queries.workflow import sla_tick
    from gis.db.session import transaction

    def loop() -> None:
        while True:
            time.sleep(every_s)
            try:
                with transaction() as session:
                    sla_tick(session, datetime.now(UTC), get_taxonomy())
            except Exception:
                log.exception("SLA tick failed; trying again in %d s", every_s)
            try:
                with transaction() as session:
                    refresh_rollup(session, get_taxonomy())
            except Exception:
                log.exception("dashboard rollup refresh failed; trying again in %d s", every_s)

    thread = threading.Thread(target=loop, name="sla-ticker", daemon=True)
    thread.start()
    log.info("SLA tick every %d s in the background", every_s)
    return thread
