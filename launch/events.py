"""`corrigible events`: event-camera bias-controller evaluation on place recognition.

Runs the emulator with each bias controller in the loop over MuJoCo-rendered traversals of a
textured street under low, medium, high and changing light (5 query traversals per condition,
pooled), then prints Recall@1/@5, the in-band fractions and the issue's acceptance check, and
writes the JSON results and a PNG plot beside them.

Example:
    corrigible events eval --quick --out runs/events/eval_quick.json
    corrigible events eval --quick --ray    # every (traversal, controller) run a Ray job

Without `--ray`, each traversal's controllers run in the YAML's `workers` forked processes; with
`--ray [HOST:PORT]` every (traversal, controller) run is a job on a local Ray instance or a
cluster (launch/distributed.py), with the same figures, and each finished run's figures stream
to `<out>.partial.jsonl`.

Any YAML key can be overridden with dotted paths, e.g. `--set controllers.slow.step=10` or
`--set 'conditions=[low, changing]'`. The shipped YAML is `launch/evaluations/event_camera.yaml`;
every layer (that file, `--config`, `--quick`, `--set`) is merged first and the result validated
once by `launch.evaluations.config_event_camera.EventCameraEvalConfig`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
from pydantic import Field, model_validator

from corrigible.errors import ConfigError, CorrigibleError
from corrigible.launch.distributed import RAY_HELP, RunnerConfig, ray_command_class
from corrigible.launch.schema import VerbConfig


class EventsEvalConfig(VerbConfig):
    """What `corrigible events eval` runs and where it writes (`corrigible schema events-eval`).

    The evaluation's own settings are the YAML's (`corrigible schema events`); these fields say
    which layers to merge onto the shipped file.
    """

    out: Path = Path("runs/events/eval.json")  # JSON results (.json); the PNG goes next to it
    quick: bool = False  # apply the YAML's `quick:` section (short routes)
    config: Path | None = None  # YAML overlaid on the shipped event_camera.yaml
    route: str | None = None  # override `eval_route`, a key of the YAML's `routes` ("tuning")
    cache_dir: Path | None = None  # cache rendered traversals here
    overrides: dict[str, Any] = Field(default_factory=dict)  # nested YAML keys, applied last
    ray: str | None = None  # None: forked workers; "local": a local Ray instance; HOST:PORT
    workers: int | None = None  # Ray actors (None: one per CPU of the cluster)

    @model_validator(mode="after")
    def _usable(self) -> EventsEvalConfig:
        if self.out.suffix.lower() != ".json":
            raise ConfigError(f"--out {self.out} must end in .json (the PNG is written beside).")
        if self.config is not None and not self.config.is_file():
            raise ConfigError(f"--config {self.config} does not exist; pass a YAML file.")
        if self.workers is not None and self.ray is None:
            raise ConfigError(
                "--workers counts Ray workers; give --ray too (or set `workers` in the YAML)"
            )
        self.runner()  # checks the address and the worker count
        return self

    def runner(self) -> RunnerConfig:
        """Where the controller runs go."""
        return RunnerConfig(ray=self.ray, workers=self.workers)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Turns dotted `key.sub=value` strings into a nested dict; values are parsed as YAML.

    Raises:
        ConfigError: when an item has no `=` or an empty key.
    """
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r} must look like key.sub=value, e.g. warmup_s=3.")
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(value)
    return out


def run(cfg: EventsEvalConfig) -> dict[str, Any]:
    """Runs the evaluation, prints the table and writes JSON + PNG."""
    from corrigible.launch.evaluations.config_event_camera import load_eval_config
    from corrigible.launch.evaluations.event_camera import run_eval
    from corrigible.launch.evaluations.report_event_camera import format_table, write_results

    overrides = dict(cfg.overrides)
    if cfg.route is not None:
        overrides["eval_route"] = cfg.route
    if cfg.cache_dir is not None:
        overrides["cache_dir"] = str(cfg.cache_dir)
    eval_cfg = load_eval_config(cfg.config, quick=cfg.quick, overrides=overrides)
    runner = cfg.runner().check()  # Ray installed, the head node answers: before any work
    results = run_eval(
        eval_cfg,
        log=lambda line: print(line, file=sys.stderr, flush=True),
        runner=runner,
        partial=cfg.out.with_suffix(".partial.jsonl"),
    )
    print(format_table(results))
    json_path, png_path = write_results(results, cfg.out)
    t = results["timing"]
    print(
        f"\nwrote {json_path} and {png_path} ({t['total_s']:.0f} s total: render "
        f"{t['render_s']:.0f} s, emulate {t['emulate_s']:.0f} s at "
        f"{t['closed_loop_frames_per_s']:.0f} frames/s incl. controller and binning, "
        f"{t['workers']} workers)"
    )
    return results


def register(app: typer.Typer) -> None:
    """Adds the `events` verb group with its `eval` command."""
    events_app = typer.Typer(help="Event-camera emulator and bias controllers.")

    @events_app.command("eval", cls=ray_command_class())
    def eval_cmd(
        out: Path = typer.Option(Path("runs/events/eval.json"), help="JSON results (PNG beside)"),
        quick: bool = typer.Option(False, help="small version: short routes (~1 min)"),
        config: Path | None = typer.Option(
            None, help="YAML overlaid on the shipped event_camera.yaml"
        ),
        route: str | None = typer.Option(None, help="route to score: test (default) or tuning"),
        cache_dir: Path | None = typer.Option(None, help="cache rendered traversals here"),
        set_: list[str] = typer.Option(
            [], "--set", help="dotted override, repeatable: --set controllers.slow.step=10"
        ),
        ray: str | None = typer.Option(None, "--ray", help=RAY_HELP),
        workers: int | None = typer.Option(
            None, help="with --ray: worker processes (default: one per CPU of the cluster)"
        ),
    ) -> None:
        """Score default, fast, slow, fast+slow and hysteresis bias control on place recognition."""
        try:
            cfg = EventsEvalConfig(
                out=out,
                quick=quick,
                config=config,
                route=route,
                cache_dir=cache_dir,
                overrides=parse_overrides(set_),
                ray=ray,
                workers=workers,
            )
            run(cfg)
        except CorrigibleError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from exc

    app.add_typer(events_app, name="events")
