"""`corrigible train ll|hl`: train the learned low level or high level (CPU, seeded).

Example:
    corrigible train ll --out runs/ll.pt
    corrigible train hl --out runs/hl.pt

Each sub-command lives in its own module (`launch/train_ll.py`, `launch/train_hl.py`) exposing
`register(train_app)`; this module only groups them under one verb so `--help` lists both.
"""

from __future__ import annotations

import importlib

import typer

_SUBCOMMANDS = ("train_ll", "train_hl")


def register(app: typer.Typer) -> None:
    """Adds the `train` verb with every sub-command module that is present."""
    train_app = typer.Typer(
        help="Train the learned low level (ll) or high level (hl) on recorded episodes.",
        no_args_is_help=True,
    )
    for name in _SUBCOMMANDS:
        try:
            module = importlib.import_module(f"corrigible.launch.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"corrigible.launch.{name}":
                continue  # sub-command not built yet
            raise
        module.register(train_app)
    app.add_typer(train_app, name="train")
