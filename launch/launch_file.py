"""`corrigible launch FILE`: start what a YAML launch file describes, checked before it starts.

Example:
    corrigible launch launch/files/bridge_sim.launch.yaml          # rosbridge over the sim
    corrigible launch launch/files/console_mujoco.launch.yaml --check  # validate only

A launch file holds one mapping whose `kind` says what to start:

- `console`: the operator console (`corrigible console`) on a simulated session; `options`
  are the console verb's options.
- `bridge`: the rosbridge v2 server over a simulated session (`corrigible bridge`); `options`
  are the bridge verb's options.
- `sim_robot`: a simulated arm behind a rosbridge server, for trying client mode; `engine`,
  `seed`, `robot` (`robots.bridge_sim_robot.SimRobotConfig`), `duration_s`.
- `real_arm`: a session whose skills drive a real arm through its rosbridge server; `robot`
  (`robots.rosbridge_arm.RosbridgeArmConfig`), `session` (`SessionConfig`), `instruction`.

Every file is validated before anything starts: an unknown or bad setting is one `ConfigError`
naming the file and the field's dotted path (`robot.url`, `options.port`), the value and the
fix. The `console` and `bridge` kinds hand `options` to that verb's own config model and `run`
function, found by name (`corrigible.launch.<verb>`), so a launch file accepts exactly what
the verb does; a verb this install lacks is a clear error, not a traceback.

Exit status: the started verb's own; 2 for a bad launch file; 1 when a robot cannot be
reached, a skill fails or the link to the arm is lost.

The `real_arm` kind runs the session's planner, skills and corrections with a `RosbridgeArm`
as the session's arm. The session's scene is a twin of the real table: the layout of
`session.seed` (set the real table up to match), stepped with every control tick of the real
arm, its arm servoed to the measured joints and its fingers to the commanded opening, so the
twin's objects move as the real ones do while the model holds. Perception, the skills' checks
and the outcome read the twin; perceiving the real camera instead is future work.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import typer
from pydantic import BaseModel, Field, ValidationError, field_validator

from corrigible.boundary import escape, load_yaml
from corrigible.config import StrictConfig, config_error
from corrigible.errors import ConfigError, CorrigibleError, did_you_mean
from corrigible.launch.schema import VerbConfig
from corrigible.robots.bridge_sim_robot import SimRobotConfig
from corrigible.robots.rosbridge_arm import RosbridgeArmConfig
from corrigible.session import SessionConfig

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class ConsoleLaunch(StrictConfig):
    """`kind: console`: the operator console on a simulated (MuJoCo) session."""

    kind: Literal["console"]
    options: dict[str, Any] = Field(default_factory=dict)  # the console verb's options


class BridgeLaunch(StrictConfig):
    """`kind: bridge`: the rosbridge v2 server exposing a simulated session."""

    kind: Literal["bridge"]
    options: dict[str, Any] = Field(default_factory=dict)  # the bridge verb's options


class SimRobotLaunch(StrictConfig):
    """`kind: sim_robot`: a simulated arm behind a rosbridge server (client mode's test robot)."""

    kind: Literal["sim_robot"]
    engine: str = "mujoco"  # physics engine, one of `sim_envs.backends.registry.BACKENDS`
    seed: int = Field(default=0, ge=0)  # layout seed of the table
    robot: SimRobotConfig = Field(default_factory=SimRobotConfig)  # server address and topics
    duration_s: float | None = Field(default=None, gt=0)  # s to serve; None: until Ctrl-C

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        from corrigible.sim_envs.backends.registry import BACKENDS

        return BACKENDS.canonical(value)


class RealArmLaunch(StrictConfig):
    """`kind: real_arm`: a session whose skills drive a real arm through its rosbridge server."""

    kind: Literal["real_arm"]
    robot: RosbridgeArmConfig  # the robot's rosbridge server, topics, joints and envelope
    session: SessionConfig = Field(default_factory=SessionConfig)  # planner, corrections, kb
    instruction: str = Field(min_length=1)  # what to do, in words

    @field_validator("instruction")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ConfigError("instruction is blank; write e.g. 'put the red block in the bowl'")
        return value.strip()


LaunchSpec = ConsoleLaunch | BridgeLaunch | SimRobotLaunch | RealArmLaunch
KINDS: dict[str, type[StrictConfig]] = {
    "console": ConsoleLaunch,
    "bridge": BridgeLaunch,
    "sim_robot": SimRobotLaunch,
    "real_arm": RealArmLaunch,
}
# kinds that hand their `options` to a verb module of `corrigible.launch`, by name
_VERB_OF_KIND = {"console": "console", "bridge": "bridge"}


def launch_file_schema() -> dict[str, Any]:
    """The JSON Schema of a launch file: one of the kinds, told apart by `kind`."""
    from typing import Annotated

    from pydantic import TypeAdapter

    adapter = TypeAdapter(Annotated[LaunchSpec, Field(discriminator="kind")])
    return adapter.json_schema(mode="validation")


def parse(data: Any, *, source: str = "launch file") -> LaunchSpec:
    """The launch spec of one parsed YAML document.

    Raises:
        ConfigError: no mapping, a missing or unknown `kind`, or a bad setting (the message
            names `source` and the field's dotted path).
    """
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source} must hold one mapping with a `kind` ({', '.join(KINDS)}), "
            f"got {type(data).__name__}"
        )
    kind = data.get("kind")
    if kind is None:
        hint = ""
        if set(data) & set(SessionConfig.model_fields):
            hint = (
                " It looks like session settings: load those with SessionConfig.from_file, or "
                "put them under `session:` with `kind: real_arm`."
            )
        raise ConfigError(f"{source}: field `kind` is required; one of {list(KINDS)}.{hint}")
    if not isinstance(kind, str) or kind not in KINDS:
        raise ConfigError(
            f"{source}: field `kind` must be one of {list(KINDS)}, got {kind!r}."
            + did_you_mean(str(kind), KINDS)
        )
    cls = KINDS[kind]
    _check_sections(cls, data, source)
    try:
        return cls.model_validate(data)  # type: ignore[return-value]
    except ValidationError as exc:
        raise config_error(cls, exc.errors(), what=source) from exc
    except CorrigibleError as exc:  # a validator's own error (a bad engine name)
        raise ConfigError(f"{source}: {exc}") from exc


def _check_sections(cls: type[BaseModel], data: dict[str, Any], source: str) -> None:
    """Validates each nested config section on its own, so errors keep the section's name.

    The configs nested in a launch file (`robot`, `session`) validate themselves in their own
    constructors, which pydantic calls for nested fields too; an error raised there would lose
    its place in the file. Validated here first, each error is named by its full dotted path
    (`robot.url`, `robot.safety.x_range`, `session.seed`).
    """
    for name, info in cls.model_fields.items():
        sub = info.annotation
        section = data.get(name)
        if not (isinstance(sub, type) and issubclass(sub, BaseModel)) or not isinstance(
            section, dict
        ):
            continue
        try:
            sub(**section)
        except (ValidationError, CorrigibleError) as exc:
            # corrigible's configs re-raise pydantic's errors as their own; the original, with
            # each problem's place, is the cause (or, for a validator's own error, the context)
            inner = exc if isinstance(exc, ValidationError) else exc.__cause__ or exc.__context__
            if not isinstance(inner, ValidationError):
                raise ConfigError(f"{source}: {name}: {exc}") from exc
            errors = [{**err, "loc": (name, *err["loc"])} for err in inner.errors()]
            raise config_error(cls, errors, what=source) from exc


def load(path: str | Path) -> LaunchSpec:
    """Reads and validates a launch file (YAML or JSON).

    Raises:
        ConfigError: unreadable, not YAML, or a bad setting (named by its dotted path).
    """
    path = Path(path)
    data = load_yaml(path, what="launch file")
    try:
        return parse(data, source=f"launch file {path}")
    except ConfigError as exc:
        message = str(exc)
        if str(path) not in message:
            message = f"launch file {path}: {message}"
        raise ConfigError(message) from exc


def verb_runner(verb: str) -> tuple[Callable[[Any], Any], type]:
    """The `run` function of verb module `corrigible.launch.<verb>` and its config class.

    Raises:
        ConfigError: this install has no such verb, or its module has no `run(cfg)`.
    """
    module_name = f"corrigible.launch.{verb}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise ConfigError(
            f"the `{verb}` verb is not installed in this corrigible (no module {module_name}); "
            f"`corrigible --help` lists the verbs there are. Use another kind, or update."
        ) from exc
    run = getattr(module, "run", None)
    params = list(inspect.signature(run).parameters) if callable(run) else []
    if not params:
        raise ConfigError(f"{module_name} has no run(cfg) function to launch")
    hints = typing.get_type_hints(run)
    cfg_cls = hints.get(params[0])
    if not isinstance(cfg_cls, type):
        raise ConfigError(f"{module_name}.run does not declare its config type")
    return run, cfg_cls


def verb_config(verb: str, options: dict[str, Any]) -> tuple[Callable[[Any], Any], Any]:
    """The verb's `run` and its config built from `options` (errors name `options.<field>`)."""
    run, cfg_cls = verb_runner(verb)
    try:
        return run, cfg_cls(**options)
    except ConfigError as exc:
        raise ConfigError(f"options (the `{verb}` verb's settings): {exc}") from exc
    except (ValidationError, TypeError) as exc:
        raise ConfigError(f"options (the `{verb}` verb's settings): {exc}") from exc


class LaunchConfig(VerbConfig):
    """One `corrigible launch` invocation."""

    file: Path  # the launch file, YAML or JSON
    check: bool = False  # validate only: print the kind and settings, start nothing


def run(cfg: LaunchConfig) -> int:
    """Validates the launch file, then starts what it describes; returns the exit status."""
    try:
        spec = load(cfg.file)
        runner: Callable[[], Any]
        if isinstance(spec, ConsoleLaunch | BridgeLaunch):
            try:
                verb_run, verb_cfg = verb_config(_VERB_OF_KIND[spec.kind], spec.options)
            except ConfigError as exc:
                raise ConfigError(f"launch file {cfg.file}: {exc}") from exc
            runner = lambda: verb_run(verb_cfg)  # noqa: E731 - one deferred call
        elif isinstance(spec, SimRobotLaunch):
            runner = lambda: serve_sim_robot(spec)  # noqa: E731
        else:
            runner = lambda: run_real_arm(spec)  # noqa: E731
    except ConfigError as exc:
        _say(f"error: {exc}", err=True)
        return EXIT_BAD_INPUT
    if cfg.check:
        _say(f"# {cfg.file}: kind {spec.kind}, valid")
        print(spec.model_dump_json(indent=2))
        return EXIT_OK
    try:
        status = runner()
    except ConfigError as exc:
        _say(f"error: {exc}", err=True)
        return EXIT_BAD_INPUT
    except CorrigibleError as exc:  # e.g. the robot cannot be reached: said, not a traceback
        _say(f"error: {exc}", err=True)
        return EXIT_FAILED
    return int(status) if isinstance(status, int) else EXIT_OK


def serve_sim_robot(spec: SimRobotLaunch, *, ready: Callable[[int], None] | None = None) -> int:
    """Serves a simulated arm over rosbridge until `duration_s` passes or Ctrl-C.

    Args:
        spec: what to serve.
        ready: called with the bound port once clients can connect (default: print it).
    """
    import time

    from corrigible.robots.bridge_sim_robot import BridgeSimRobot
    from corrigible.sim_envs.layout import LayoutConfig
    from corrigible.sim_envs.tabletop_env import TabletopEnv

    env = TabletopEnv(spec.engine, obs_mode="state", layout=LayoutConfig())
    try:
        env.reset(seed=spec.seed)
        assert env.backend is not None and env.arm is not None
        backend, camera = env.backend, env.camera
        with BridgeSimRobot(
            env.arm,
            spec.robot,
            render=lambda: backend.render(camera)[0],
            object_poses=backend.object_poses,
        ) as robot:
            (ready or _print_ready)(robot.port)
            end = None if spec.duration_s is None else time.monotonic() + spec.duration_s
            try:
                while end is None or time.monotonic() < end:
                    robot.raise_if_failed()
                    time.sleep(0.1)
            except KeyboardInterrupt:
                pass
    finally:
        env.close()
    return EXIT_OK


def _print_ready(port: int) -> None:
    print(f"# sim robot serving rosbridge on port {port}", flush=True)


def run_real_arm(spec: RealArmLaunch) -> int:
    """Runs `spec.instruction` through a session whose arm is the real one (`RosbridgeArm`).

    The session's scene becomes a twin of the real table: every control tick of the real arm
    steps it with the twin's arm servoed to the measured joints and its fingers to the
    commanded opening, so the twin's objects move as the real ones do while the model holds
    (perception, the skills' checks and `expect` read the twin). A lost link stops the run
    safely and says so.

    Returns:
        0 when the program ran to its end with every skill done; 1 when it did not (a skill
        failed, the plan failed, or the link was lost).
    """
    from corrigible.policies.middleware import SafetyGate
    from corrigible.robots.rosbridge_arm import RosbridgeArm
    from corrigible.session import Session
    from corrigible.sim_envs.layout import LayoutConfig

    # the twin is the seed's own layout (as `kind: sim_robot` lays out its table), not one
    # drawn to hold the objects the instruction names: it must match the real table
    with Session(spec.session, on_reply=_say, layout=LayoutConfig()) as session:
        session.reset()
        env, api = session.env, session.api
        assert env is not None and api is not None and env.backend is not None
        arm = RosbridgeArm(spec.robot, trace=env.trace)
        arm.mirror_into(env.backend)  # the session's scene becomes the real table's twin
        with arm:
            env.arm = arm  # type: ignore[assignment]  # the skills read env.arm at each call
            for link in api.middleware:
                if isinstance(link, SafetyGate):
                    link.arm = arm
            names = ", ".join(o.name for o in env.scene.objects)
            _say(f"# real arm at {spec.robot.url}; table twin (seed {spec.session.seed}): {names}")
            try:
                result = session.run(spec.instruction)
            except CorrigibleError as exc:
                _say(f"error: {exc}", err=True)
                return EXIT_FAILED
    for step in result.steps:
        for skill in step["skills"]:
            mark = "ok  " if skill["success"] else "FAIL"
            _say(f"[{mark}] {skill['skill']}: {skill['message']}")
        if step["status"] != "ok":
            _say(f"[program {step['status']}] {step['message']}")
    return EXIT_OK if result.executed_ok else EXIT_FAILED


def _say(text: str, *, err: bool = False) -> None:
    print(escape(text), file=sys.stderr if err else sys.stdout, flush=True)


def register(app: typer.Typer) -> None:
    """Adds the `launch` verb."""

    @app.command("launch")
    def launch_cmd(
        file: Path = typer.Argument(..., help="a launch file (launch/files/*.launch.yaml)"),
        check: bool = typer.Option(False, "--check", help="validate only; start nothing"),
    ) -> None:
        """Start what a YAML launch file describes (console, bridge, sim_robot, real_arm)."""
        raise typer.Exit(run(LaunchConfig(file=file, check=check)))


def main() -> None:
    """`python -m corrigible.launch.launch_file FILE [--check]`: this verb alone.

    Child processes (tests, supervisors) start a launch file this way without building the
    whole CLI, whose other verbs they do not need.
    """
    import os

    os.environ.setdefault("MUJOCO_GL", "egl")
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    register(app)
    app()


if __name__ == "__main__":
    main()
