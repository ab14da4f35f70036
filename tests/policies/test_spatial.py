"""Spatial references resolved from perception, through the real planner and camera (MuJoCo).

Seed 0's layout (3 blocks, 3 bowls, drawer), as the camera places it: the gray block is the
leftmost (+y), the pink block the rightmost, the brown bowl the one next to the drawer (which
stands off the right edge), the purple block the object nearest the middle of the table.
"""

import pytest

from corrigible.corrections.interpret import InterpretContext, interpret
from corrigible.errors import UnknownObjectError
from corrigible.memory.effects import ObjectSubstitution, TargetSubstitution
from corrigible.policies.controller import HierarchicalController
from corrigible.policies.language import ObjectResolver, parse_skill_command
from corrigible.policies.planners.base import HistoryItem, PlanContext
from corrigible.policies.planners.grammar import GrammarPlanner
from corrigible.policies.robot_api import RobotAPI
from corrigible.sim_envs import TabletopEnv
from corrigible.sim_envs.predicates import WorldState, parse_predicate


@pytest.fixture(scope="module")
def camera_context():
    """What the planner is told on seed 0: names and camera-perceived positions (MuJoCo)."""
    env = TabletopEnv("mujoco", obs_mode="state")
    env.reset(seed=0)
    controller = HierarchicalController(RobotAPI(env), GrammarPlanner())
    assert controller.api.locator.source == "camera"
    ctx = controller.context()
    env.close()
    return ctx


def _plan(text: str, ctx: PlanContext) -> str:
    return GrammarPlanner().plan(text, ctx).source


@pytest.mark.parametrize(
    ("instruction", "call"),
    [
        ("put the leftmost block in the bowl next to the drawer", "('gray block', 'brown bowl')"),
        ("put the block on the left in the blue bowl", "('gray block', 'blue bowl')"),
        ("put the block on the right in the gray bowl", "('pink block', 'gray bowl')"),
        ("move the rightmost block into the left bowl", "('pink block', 'blue bowl')"),
        ("put the pink block in the bowl nearest the gray block", "('pink block', 'blue bowl')"),
        ("put the one closest to the middle in the brown bowl", "('purple block', 'brown bowl')"),
        (
            "put the block that is on the far left in the dish by the drawer",
            "('gray block', 'brown bowl')",
        ),
    ],
)
def test_spatial_instructions_plan_from_perception(camera_context, instruction, call):
    source = _plan(instruction, camera_context)
    assert f"put_first_on_second{call}" in source, source


def test_a_spatial_subject_with_a_missing_target_names_the_target(camera_context):
    with pytest.raises(UnknownObjectError, match="red bowl"):
        _plan("put the leftmost block in the red bowl", camera_context)


def test_pick_up_by_place_and_the_other_one(camera_context):
    source = _plan("pick up the one closest to the middle", camera_context)
    assert "pick('purple block')" in source
    history = [
        HistoryItem(instruction="x", program="", subject="purple block", target="gray bowl"),
        HistoryItem(instruction="y", program="", subject="pink block", target="gray bowl"),
    ]
    ctx = PlanContext(
        object_names=camera_context.object_names,
        positions=camera_context.positions,
        history=history,
    )
    source = _plan("put the other block in the blue bowl", ctx)
    assert "put_first_on_second('gray block', 'blue bowl')" in source


def test_a_spatial_instruction_runs_in_physics():
    env = TabletopEnv("mujoco", obs_mode="state")
    env.reset(seed=0)
    try:
        outcome = HierarchicalController(RobotAPI(env), GrammarPlanner()).run(
            "put the block on the left in the bowl next to the drawer"
        )
        assert outcome.status == "ok", outcome.message
        world = WorldState.from_info(env.scene, env._info())
        holds, details = parse_predicate("in(gray block, brown bowl)", env.scene).evaluate(world)
        assert holds, details
    finally:
        env.close()


# -- ambiguity and no match: a clear message, never a guess -------------------------------------
TWO_LEFT = {
    "red block": [0.45, 0.20, 0.02],
    "green block": [0.60, 0.21, 0.02],  # 1 cm further left than the red one: a tie
    "blue block": [0.50, -0.15, 0.02],
    "yellow bowl": [0.55, 0.0, 0.0],
    "drawer": [0.6, -0.45, 0.0],
}


def test_two_equally_left_blocks_are_ambiguous():
    resolver = ObjectResolver(list(TWO_LEFT), TWO_LEFT)
    with pytest.raises(
        UnknownObjectError,
        match="ambiguous.*red block.*green block|ambiguous.*green block.*red block",
    ) as err:
        resolver.resolve("the leftmost block")
    assert "equally far to the left" in str(err.value)
    assert resolver.resolve("the block on the right") == "blue block"
    ctx = PlanContext(object_names=list(TWO_LEFT), positions=TWO_LEFT)
    with pytest.raises(UnknownObjectError, match="ambiguous"):
        GrammarPlanner().plan("put the block on the left in the yellow bowl", ctx)


@pytest.mark.parametrize(
    ("phrase", "message"),
    [
        ("the leftmost cylinder", "matches nothing: perception sees no cylinder"),
        ("the block left of the green block", "no block is left of the green block"),
        ("the other block", "nothing was referred to before"),
        ("the leftmost block on the right", "says where the object is twice"),
        ("the red block under the bowl", "could not read 'under'|relation"),
        ("the red block with the stripes", "could not read 'with stripes'"),
    ],
)
def test_no_match_and_unreadable_words_are_refused(phrase, message):
    with pytest.raises(UnknownObjectError, match=message):
        ObjectResolver(list(TWO_LEFT), TWO_LEFT).resolve(phrase)


def test_spatial_words_without_positions_say_so():
    with pytest.raises(UnknownObjectError, match="no perceived positions"):
        ObjectResolver(list(TWO_LEFT)).resolve("the leftmost block")


def test_words_that_change_the_object_are_refused_manner_words_are_not():
    """An unknown adjective or a qualifier after the noun may pick another object: refused.

    How and when ("carefully", "for me", "thanks") never says which object, so those stay
    readable: people add them freely to instructions.
    """
    names = list(TWO_LEFT)
    with pytest.raises(UnknownObjectError, match="could not read 'wooden'"):
        parse_skill_command("pick up the wooden red block", names)
    with pytest.raises(UnknownObjectError, match="could not read"):
        parse_skill_command("pick up the red block that is not small", names)
    with pytest.raises(UnknownObjectError, match="names more than one object or a relation"):
        parse_skill_command("pick up the red block under the yellow thing", names)
    for polite in ("pick up the red block carefully", "pick up the red block for me thanks"):
        assert str(parse_skill_command(polite, names)[0]) == "pick(obj='red block')"
    assert str(parse_skill_command("pick up the big red cube", names)[0]) == (
        "pick(obj='red block')"
    )


def test_front_and_back_follow_the_direction_words():
    """'Front' is the near edge (-x, 'towards me'), as `_DIRECTION_WORDS` has 'closer'."""
    resolver = ObjectResolver(list(TWO_LEFT), TWO_LEFT)
    assert resolver.resolve("the frontmost block") == "red block"  # x 0.45
    assert resolver.resolve("the block at the back") == "green block"  # x 0.60
    assert resolver.resolve("the block in front of the yellow bowl") == "blue block"


# -- corrections ----------------------------------------------------------------------------
def _correction_ctx(camera_context) -> InterpretContext:
    return InterpretContext(
        visible_objects=tuple(camera_context.object_names),
        current_skill="place",
        current_object="purple block",
        current_target="gray bowl",
        positions=camera_context.positions,
    )


@pytest.mark.parametrize(
    ("text", "effect"),
    [
        ("no, the bowl next to the drawer", TargetSubstitution(new_target="brown bowl")),
        ("put it in the bowl on the left instead", TargetSubstitution(new_target="blue bowl")),
        ("wrong one, the left bowl", TargetSubstitution(new_target="blue bowl")),
        ("no, put it in the one next to the drawer", TargetSubstitution(new_target="brown bowl")),
        (
            "no, the one on the left",  # "one" while handling a block: a block
            ObjectSubstitution(new_object="gray block", excluded="purple block"),
        ),
        (
            "use the block on the right instead",
            ObjectSubstitution(new_object="pink block", excluded="purple block"),
        ),
        (
            "take the block farthest from the drawer",
            ObjectSubstitution(new_object="gray block", excluded="purple block"),
        ),
    ],
)
def test_spatial_corrections_resolve_from_perception(camera_context, text, effect):
    assert interpret(text, "plan", _correction_ctx(camera_context)).effects == (effect,)


def test_an_ambiguous_spatial_correction_says_so():
    ctx = InterpretContext(
        visible_objects=tuple(TWO_LEFT),
        current_skill="pick",
        current_object="blue block",
        positions=TWO_LEFT,
    )
    with pytest.raises(UnknownObjectError, match="ambiguous"):
        interpret("no, the leftmost block", "plan", ctx)


def test_a_typed_spatial_correction_retargets_the_place_in_physics(router):
    """The loop gives the interpreter the camera's positions: 'the bowl next to the drawer'."""
    from corrigible.corrections.typed import TypedCorrector
    from corrigible.session import Session, SessionConfig
    from corrigible.sim_envs.layout import LayoutConfig

    replies: list[str] = []
    typed = TypedCorrector(
        ("no, the bowl next to the drawer",), timeout_s=20.0, reply=replies.append
    )
    session = Session(
        SessionConfig(episode="spatial-test"), layout=LayoutConfig(), router=router, corrector=typed
    )
    session.reset()
    try:
        result = session.run(
            "put the purple block in the gray bowl", expect="in(purple block, brown bowl)"
        )
        typed.finish()
        assert result.expect_holds, replies
        [record] = session.loop.records
        assert (record.target_before, record.target_after) == ("gray bowl", "brown bowl")
    finally:
        session.close()
