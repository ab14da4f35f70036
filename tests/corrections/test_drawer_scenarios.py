"""Drawer scenarios in MuJoCo: the default skill fails and the correction fixes it.

Stiff drawer: the default 14 cm pull leaves the damped slide short of the skill's 9.6 cm;
"pull it further" (+5 cm) opens it. Off-centre handle: aiming at the front's centre line closes
the fingers beside the bar; "a bit more to the left" (+3 cm along the handle) opens it.
"""

from __future__ import annotations

import pytest

from corrigible.corrections.interpret import InterpretContext, interpret
from corrigible.corrections.scenarios import load_scenarios
from corrigible.memory.effects import SkillParamChange
from corrigible.policies.skills import default_params
from corrigible.session import Session, SessionConfig


def _open(scenario_name: str, **overrides: float) -> bool:
    scenario = next(s for s in load_scenarios() if s.name == scenario_name)
    task = scenario.rounds[0][0]
    with Session(SessionConfig(seed=task.seed), layout=scenario.layout(task)) as session:
        session.reset()
        assert session.api is not None
        return session.api.skills.open_drawer("drawer", **overrides).success


def _corrected(text: str) -> dict[str, float]:
    ctx = InterpretContext(visible_objects=("drawer",), current_skill="open_drawer")
    (effect,) = interpret(text, "skill", ctx).effects
    assert isinstance(effect, SkillParamChange)
    new = effect.apply(default_params()["open_drawer"], "open_drawer")
    name = effect.param_for("open_drawer")
    return {name: new.to_dict()[name]}


@pytest.mark.parametrize(
    ("scenario", "text"),
    [("stiff_drawer", "pull it further"), ("offcentre_handle", "a bit more to the left")],
    ids=["stiff", "off-centre-handle"],
)
def test_default_fails_and_correction_fixes(scenario: str, text: str) -> None:
    assert not _open(scenario)
    assert _open(scenario, **_corrected(text))
