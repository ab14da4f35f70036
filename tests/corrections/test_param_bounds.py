"""Every correctable parameter stays inside its declared bounds: in skills, corrections and
stored knowledge alike (recalled, merged at distillation), with what was clipped traced."""

from __future__ import annotations

import math

import pytest

from corrigible.corrections.correction import Correction
from corrigible.corrections.distill import EpisodeFacts, distill
from corrigible.corrections.onthefly import AppliedCorrection
from corrigible.corrections.retrieval import Retriever
from corrigible.errors import ConfigError, UnknownNameError
from corrigible.memory import KnowledgeBase, KnowledgeEntry, ObjectScope, Provenance
from corrigible.memory.effects import SkillParamChange
from corrigible.policies.skills import SkillLibrary, default_params, skill_spec
from corrigible.policies.skills.specs import SkillParams, bound_params, skill_specs, stored_params
from corrigible.sim_envs import TabletopEnv
from corrigible.sim_envs.layout import LayoutConfig, ObjectRequest

PICK_SPEED = skill_spec("pick").param("speed")


def test_every_declared_bound_is_sane():
    """Speeds let a skill finish in a sane time and never exceed the arm's limit."""
    for spec in skill_specs():
        for param in spec.params:
            lo, hi = param.bounds
            assert math.isfinite(lo) and math.isfinite(hi) and lo <= param.default <= hi
            if param.unit == "m/s":
                assert 0.3 / lo <= 30.0, f"{spec.name}.{param.name}: 30 cm take {0.3 / lo:.0f} s"
                assert hi <= 0.6, f"{spec.name}.{param.name} may ask more than the arm allows"


def test_skill_params_are_clipped_on_construction():
    params = default_params()["pick"].with_updates(
        {"speed": 1e-6, "lift_height": 9.0, "grasp_height": -math.inf}
    )
    assert params.speed == PICK_SPEED.bounds[0]
    assert params.lift_height == skill_spec("pick").param("lift_height").bounds[1]
    assert params.grasp_height == skill_spec("pick").param("grasp_height").bounds[0]
    assert params.clipped == {
        "speed": (1e-6, PICK_SPEED.bounds[0]),
        "lift_height": (9.0, 0.40),
        "grasp_height": (-math.inf, -0.10),
    }
    assert SkillParams("pick", params.to_dict()).clipped == {}  # in bounds stays as it is


@pytest.mark.parametrize(
    "value", [math.nan, "slow", None, True], ids=["nan", "text", "none", "bool"]
)
def test_a_parameter_that_is_not_a_number_is_refused(value):
    with pytest.raises(ConfigError, match=r"pick\.speed must be a number"):
        default_params()["pick"].with_updates({"speed": value})


def test_bound_params_names_an_unknown_parameter():
    with pytest.raises(UnknownNameError, match="lift_height"):
        bound_params("pick", {"lift_hieght": 0.1})


def test_repeated_a_lot_slower_stops_at_the_minimum_speed():
    params = default_params()["pick"]
    change = SkillParamChange(skill=None, param="speed", factor=0.25, reason="a lot slower")
    for _ in range(6):
        params = change.apply(params, "pick")
    assert params.speed == PICK_SPEED.bounds[0]


def test_stored_values_are_clipped_or_dropped_with_a_note():
    usable, notes = stored_params(
        "pick", {"speed": 1e-6, "lift_height": 0.2, "wobble": 1.0, "grasp_height": math.nan}
    )
    assert usable == {"speed": PICK_SPEED.bounds[0], "lift_height": 0.2}
    assert notes["clipped"] == {"speed": [1e-6, PICK_SPEED.bounds[0]]}
    assert set(notes["dropped"]) == {"wobble", "grasp_height"}
    assert stored_params("pick", {"lift_height": 0.2}) == ({"lift_height": 0.2}, {})


@pytest.fixture
def kb(embedder):
    base = KnowledgeBase.open(None, text_embedder=embedder)
    yield base
    base.close()


def _slow_entry(**params: float) -> KnowledgeEntry:
    """A hand-edited (or pre-bounds) entry for picking the red block."""
    return KnowledgeEntry(
        kind="skill_params",
        skill="pick",
        params=params,
        text="pick the medium red block with speed 0.000001 m/s",
        scope=ObjectScope(color="red", shape="cube", size_class="medium"),
        provenance=[Provenance(episode="old", correction_texts=["slower"])],
    )


def test_recalled_knowledge_is_bounded_and_the_trace_says_so(kb):
    kb.add(_slow_entry(speed=1e-6, lift_height=0.2))
    recalled = Retriever(kb, "text").lookup(("pick",), "red block", None)
    assert recalled.overrides["pick"] == {"speed": PICK_SPEED.bounds[0], "lift_height": 0.2}
    assert recalled.used[0]["clipped"] == {"speed": [1e-6, PICK_SPEED.bounds[0]]}


def test_merging_at_distillation_bounds_the_older_values(kb):
    old_id = kb.add(_slow_entry(speed=1e-6, lift_height=5.0))
    record = AppliedCorrection(
        correction=Correction(text="grab it lower", time=1.0, episode="new"),
        label="skill",
        route={},
        effects=[],
        skill="pick",
        obj="red block",
        params_after={"grasp_height": -0.01},
        applied=True,
    )
    facts = EpisodeFacts(
        episode="new", sizes={"red block": "medium"}, visuals={}, task_succeeded=True
    )
    (written,) = distill([record], kb, facts)
    assert written.superseded == old_id
    merged = kb.get(written.entry_id).params
    assert merged == {"speed": PICK_SPEED.bounds[0], "lift_height": 0.40, "grasp_height": -0.01}


def test_a_near_zero_speed_in_knowledge_no_longer_hangs_a_skill(kb, engine):
    """The issue's reproduction: `speed: 1e-6` recalled for a pick, run in real physics."""
    kb.add(_slow_entry(speed=1e-6))
    layout = LayoutConfig(objects=[ObjectRequest(kind="block", color="red")], include_drawer=False)
    env = TabletopEnv(engine, obs_mode="state", layout=layout)
    env.reset(seed=1)
    skills = SkillLibrary(env)
    recalled = Retriever(kb, "text").lookup(("pick",), "red block", None)
    # as the robot API runs a call: the skill's parameters with the recalled overrides
    skills.params["pick"] = skills.params["pick"].with_updates(recalled.overrides["pick"])
    result = skills.pick("red block")
    assert result.success, result.message
    assert result.params["speed"] == PICK_SPEED.bounds[0]
    assert result.duration_s < 90.0  # simulated seconds; at 1e-6 m/s it was ~10^5 s
    env.close()


def test_a_correction_that_runs_into_a_bound_says_so():
    params = default_params()["pick"].with_updates({"speed": 0.02})
    change = SkillParamChange(skill="pick", param="speed", factor=0.25, reason="a lot slower")
    slowed = change.apply(params, "pick")
    assert slowed.speed == PICK_SPEED.bounds[0]
    assert slowed.clipped == {"speed": (0.005, PICK_SPEED.bounds[0])}
