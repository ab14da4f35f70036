"""`attach_repair`: the repair as a session component, its settings checked up front."""

from __future__ import annotations

import pytest

from corrigible.corrections.repair.loop import LLMRepairer, OfflineRepairer, RepairOverrides
from corrigible.corrections.repair.session_link import RepairSettings, attach_repair
from corrigible.errors import ConfigError, UnknownNameError
from corrigible.policies.middleware import SkillTracer
from corrigible.session import Session, SessionConfig


def test_settings_are_checked_before_any_physics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CORRIGIBLE_VLM_BASE_URL", raising=False)
    with pytest.raises(UnknownNameError, match="perception"):
        RepairSettings(monitor="percepton")
    with pytest.raises(ConfigError, match="CORRIGIBLE_VLM_BASE_URL"):
        RepairSettings(monitor="vlm:qwen2-vl")
    with pytest.raises(ConfigError, match="repairer"):
        RepairSettings(repairer=" ")
    with pytest.raises(ConfigError, match="max_iterations"):
        RepairSettings(max_iterations=-1)
    with pytest.raises(ConfigError, match="reset"):
        attach_repair(Session(SessionConfig()), RepairSettings())


def test_the_links_sit_just_inside_the_tracer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRIGIBLE_LLM_BASE_URL", "http://127.0.0.1:9/v1")  # never called here
    with Session(SessionConfig(engine="mujoco", seed=0)) as session:
        session.reset(mention=["put the red block in the blue bowl"])
        assert session.api is not None and session.controller is not None
        link = attach_repair(session, RepairSettings(monitor="oracle", max_iterations=2))
        chain = [type(m) for m in session.api.middleware]
        assert chain[-2:] == [RepairOverrides, SkillTracer]
        assert session.controller.monitor is link.loop.monitor
        assert link.loop.monitor.name == "oracle" and link.loop.max_iterations == 2
        assert isinstance(link.loop.repairer, OfflineRepairer) and link.injector is None
        off = attach_repair(session, RepairSettings(repair=False, repairer="openai:coder-test"))
        assert off.loop.max_iterations == 0 and isinstance(off.loop.repairer, LLMRepairer)
        link.close()
        link.close()  # twice: fine
