"""The one progress bar the long-running verbs (demo, eval) share, and rich-safe text."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape as escape_markup
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from corrigible.boundary import escape


def plain(text: object) -> str:
    """Outside text (a name, an option, a message) safe inside rich markup, on a terminal.

    Control characters are escaped (`boundary.escape`) and `[` is escaped for rich, so
    "[bold]" prints as written and "[/x]" cannot raise a `MarkupError`.
    """
    return escape_markup(escape(text))


def progress_bar(
    console: Console, *, label: str = "{task.description}", eta: bool = False
) -> Progress:
    """A bar with a label, done/total and elapsed time (and the time left when `eta`)."""
    columns = [TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    if eta:
        columns.append(TimeRemainingColumn())
    return Progress(*columns, console=console)
