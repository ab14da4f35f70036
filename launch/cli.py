"""The `corrigible` command line: one verb per module in `corrigible.launch`.

Each verb module exposes `register(app)`, which adds its typer command; the command only parses
arguments into the module's config dataclass and calls the module's `run(cfg)`. Heavy imports
(physics engines, torch) happen inside `run`, so `corrigible --help` stays fast.

Example:
    corrigible --help
"""

from __future__ import annotations

import importlib
import os

import typer

# Verbs in the order `--help` lists them. A verb is a module `corrigible.launch.<name>`.
_VERB_MODULES: tuple[str, ...] = (
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
)


def build_app() -> typer.Typer:
    """Builds the typer application with every available verb registered."""
    app = typer.Typer(
        name="corrigible",
        help="Correct robots in plain language; they act on it, remember it, need it less.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    for name in _VERB_MODULES:
        try:
            module = importlib.import_module(f"corrigible.launch.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"corrigible.launch.{name}":
                continue  # verb not built yet
            raise
        module.register(app)
    return app


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    build_app()()


if __name__ == "__main__":
    main()
