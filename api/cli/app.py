"""The ``wangge`` Typer application, its command groups and the shared progress display.

Commands live in one module per domain (``api/cli/core.py``, ``tracks.py``...); each adds
itself to :data:`app` or to one of the groups here when ``api.cli`` is imported.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

app = typer.Typer(help="Wangge 网格: community grid governance on PostGIS.", no_args_is_help=True)
db_app = typer.Typer(help="Database: migrations and loading.", no_args_is_help=True)
app.add_typer(db_app, name="db")
bench_app = typer.Typer(
    help="Benchmarks: the project side by side with its peers.", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")
grids_app = typer.Typer(help="Grid network: validation.", no_args_is_help=True)
app.add_typer(grids_app, name="grids")
console = Console(stderr=True)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold blue]{task.description:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


class _Stages:
    """Adapts the core's ``progress(stage, done, total)`` callbacks to rich progress bars."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, int] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(stage, total=max(total, 1))
        self.progress.update(self.tasks[stage], completed=done, total=max(total, 1))


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
