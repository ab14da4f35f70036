"""The one progress bar the long-running verbs (demo, eval) share."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def progress_bar(
    console: Console, *, label: str = "{task.description}", eta: bool = False
) -> Progress:
    """A bar with a label, done/total and elapsed time (and the time left when `eta`)."""
    columns = [TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    if eta:
        columns.append(TimeRemainingColumn())
    return Progress(*columns, console=console)
