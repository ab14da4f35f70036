"""Repair as one more session component: a monitor on the checkpoints, a loop around the run.

`attach_repair(session, RepairSettings(...))` adds the repair's around-skill links to a reset
`corrigible.Session` (its parameter overrides and, for evaluation, a fault injector, both
innermost, just outside the tracer, so recalled knowledge and a person's corrections pass
through them), hands the controller the monitor, and returns a `RepairLink` whose `run` plans,
runs, localises and repairs. Its "checkpoint.*" and "repair.*" events are ordinary trace events,
so every session subscriber (console, bridge) sees them.

This is what `SessionConfig(monitor=..., repair=...)` builds when the session takes those
options; until then the evaluation (`launch/evaluations/repair.py`) calls it itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from pydantic import Field, field_validator

from corrigible.config import StrictConfig

if TYPE_CHECKING:
    from corrigible.corrections.repair.faults import Fault, FaultInjector
    from corrigible.corrections.repair.loop import RepairLoop, RepairOverrides, RepairReport


class SessionLike(Protocol):
    """What `attach_repair` needs of a `corrigible.Session` (corrections sit below session)."""

    api: Any  # the robot API with its around-skill chain (None before reset)
    controller: Any  # the hierarchical controller (None before reset)
    env: Any  # the tabletop env (None before reset)
    config: Any  # its SessionConfig (the seed draws pose noise)


class RepairSettings(StrictConfig):
    """How a session monitors its checkpoints and repairs its programs."""

    monitor: str = "perception"  # perception | oracle | vlm:<model>
    repair: bool = True  # False: monitor and localise only (a failure ends the run)
    repairer: str = "offline"  # offline | an LLM spec (openai:<model>, local:..., replay:...)
    max_iterations: int = Field(default=3, ge=0)  # repairs per instruction before giving up

    @field_validator("monitor")
    @classmethod
    def _known_monitor(cls, value: str) -> str:
        from corrigible.corrections.repair.monitors import make_monitor

        make_monitor(value)  # an unknown spec or a vlm: without a server fails here, early
        return value.strip()

    @field_validator("repairer")
    @classmethod
    def _repairer_given(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("repairer is empty; use 'offline' or an LLM spec like openai:<model>")
        return value.strip()


class RepairLink:
    """The repair loop of one session, with the links it added.

    Attributes:
        loop: the `RepairLoop` (its controller is the session's).
        overrides: the parameter link repairs write into.
        injector: the fault injector (evaluation only), or None.
    """

    def __init__(
        self, loop: RepairLoop, overrides: RepairOverrides, injector: FaultInjector | None
    ) -> None:
        self.loop = loop
        self.overrides = overrides
        self.injector = injector

    def run(
        self, instruction: str, *, expect: str | None = None, program: str | None = None
    ) -> RepairReport:
        """Plans (unless `program` is given), runs and repairs until `expect` holds.

        Never raises for a failing program, repair or monitor: those are report statuses.
        """
        return self.loop.run(instruction, expect=expect, program=program)

    def close(self) -> None:
        """Removes the fault injector's arm hook (twice: fine)."""
        if self.injector is not None:
            self.injector.close()


def attach_repair(
    session: SessionLike, settings: RepairSettings, *, fault: Fault | None = None
) -> RepairLink:
    """Adds monitoring and repair to a reset session.

    Args:
        session: a session after `reset()` (its API chain ends with the `SkillTracer`).
        settings: the monitor, the repairer and the bound on repairs.
        fault: a fault to inject (evaluation only).

    Raises:
        ConfigError: the session is not reset, or a bad monitor / repairer spec.
        UnknownNameError: an unknown monitor or LLM spec (with a suggestion).
    """
    from corrigible.corrections.repair.faults import FaultInjector
    from corrigible.corrections.repair.loop import (
        LLMRepairer,
        OfflineRepairer,
        RepairLoop,
        RepairOverrides,
    )
    from corrigible.corrections.repair.monitors import make_monitor
    from corrigible.errors import ConfigError
    from corrigible.policies.middleware import SkillTracer

    if session.api is None or session.controller is None or session.env is None:
        raise ConfigError("attach_repair needs a reset session; call session.reset() first")
    monitor = make_monitor(settings.monitor)
    chosen: Any
    if settings.repairer == "offline":
        chosen = OfflineRepairer()
    else:
        from corrigible.policies.llm.registry import make_llm

        chosen = LLMRepairer(make_llm(settings.repairer))
    api, env = session.api, session.env
    overrides = RepairOverrides()
    api.use(overrides, before=SkillTracer)
    injector = None
    if fault is not None:
        names = [o.name for o in env.scene.objects]
        injector = FaultInjector(
            fault,
            names,
            env.arm,
            env.trace.emit,
            locator=api.locator,
            seed=int(session.config.seed),
        )
        api.use(injector, before=SkillTracer)
    loop = RepairLoop(
        session.controller,
        monitor,
        overrides,
        repairer=chosen,
        max_iterations=settings.max_iterations if settings.repair else 0,
    )
    return RepairLink(loop, overrides, injector)


__all__ = ["RepairLink", "RepairSettings", "SessionLike", "attach_repair"]
