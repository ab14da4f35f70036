"""The `corrigible` command line: one verb per module in `corrigible.launch`.

Each verb module exposes `register(app)`, which adds its typer command; the command only parses
arguments into the module's config dataclass and calls the module's `run(cfg)`. Heavy imports
(physics engines, torch) happen inside `run`, so `corrigible --help` stays fast.

Example:
    corrigible --help
"""

from __future__ import annotations

import os
from collections.abc import Callable

import typer

from corrigible.registry import Registry

# verb module `corrigible.launch.<name>` -> its `register(app)`, in the order `--help` lists the
# verbs; a module is imported only when the app is built.
VERBS: Registry[Callable[[typer.Typer], None]] = Registry("verb module")
for _name in (
    "demo",
    "run",
    "eval",
    "bench",
    "exec_program",
    "trace",
    "kb",
    "events",
    "route",
    "learn",
    "schema",
    "console",
    "bridge",
    "launch_file",
    "llm",
    "evaluations.repair",
    "dataset",
    "train",
):
    VERBS.register(_name, f"corrigible.launch.{_name}:register")


def build_app() -> typer.Typer:
    """Builds the typer application with every available verb registered."""
    app = typer.Typer(
        name="corrigible",
        help="Correct robots in plain language; they act on it, remember it, need it less.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    for name in VERBS:
        try:
            register = VERBS.get(name)
        except ModuleNotFoundError as exc:
            if exc.name == f"corrigible.launch.{name}":
                continue  # verb not built yet
            raise
        register(app)
    return app


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    build_app()()


if __name__ == "__main__":
    main()
