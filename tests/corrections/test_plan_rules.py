"""Plan-level corrections: preferences by any attribute, constraints, preconditions, orderings.

Interpretation and program rewriting are checked directly; the loop is checked in real MuJoCo
sessions with the real router (MiniLM) and a real FAISS knowledge base: a rule said in one
episode changes that episode's plan, is written as knowledge, and changes the next episode's
plan only where it applies (the control tasks).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from corrigible.corrections import plan_corrector
from corrigible.corrections.interpret import InterpretContext, interpret
from corrigible.corrections.plan_rules import Rule, RuleBook, RuledPlanner, rewrite_program
from corrigible.errors import ParseError
from corrigible.memory.effects import AddedPrecondition, Ordering, PreferenceMapping
from corrigible.memory.schema import Provenance
from corrigible.policies.planners.base import PlanContext, Planner, Program
from corrigible.session import Session, SessionConfig, SessionEvent
from corrigible.sim_envs.layout import LayoutConfig, ObjectRequest

SCENE = ("red cylinder", "red block", "blue block", "pink bowl", "green bowl", "yellow bowl")
CTX = InterpretContext(
    visible_objects=SCENE,
    current_skill="put_first_on_second",
    current_object="red block",
    current_target="green bowl",
)


@pytest.mark.parametrize(
    ("text", "attributes", "target"),
    [
        ("always put cylinders in the pink bowl", {"shape": "cylinder"}, "pink bowl"),
        (
            "small red blocks go in the pink bowl",
            {"color": "red", "shape": "cube", "size_class": "small"},
            "pink bowl",
        ),
        ("I want big blocks in the yellow bowl", {"shape": "cube", "size_class": "large"}, None),
        ("warm coloured things go in the pink bowl", {"color_group": "warm"}, "pink bowl"),
    ],
)
def test_preferences_by_any_attribute(text, attributes, target) -> None:
    (rule,) = interpret(text, "preference", CTX).effects
    assert isinstance(rule, PreferenceMapping) and not rule.is_negative
    assert rule.attributes == attributes
    assert rule.target == (target or "yellow bowl")


def test_same_colour_negative_and_order_rules_are_typed() -> None:
    (same,) = interpret("put each block in the bowl of the same colour", "preference", CTX).effects
    assert isinstance(same, PreferenceMapping) and same.same_attribute == "color"
    assert same.resolve_target("blue block", {"color": "blue"}, ("blue bowl",)) == "blue bowl"
    assert same.resolve_target("blue block", {"color": "blue"}, ("red bowl",)) is None
    (never,) = interpret("never use the green bowl", "preference", CTX).effects
    assert isinstance(never, PreferenceMapping) and never.is_negative and not never.attributes
    assert never.forbids("red block", {"color": "red"}, "green bowl")
    assert not never.forbids("red block", {"color": "red"}, "yellow bowl")
    (order,) = interpret("do the blue ones first", "plan", CTX).effects
    assert isinstance(order, Ordering) and order.attributes == {"color": "blue"}
    (step,) = interpret("open the drawer first", "plan", CTX).effects
    assert isinstance(step, AddedPrecondition) and step.skill == "open_drawer"


def test_a_rule_about_what_cannot_be_seen_says_it_cannot_be_stored() -> None:
    with pytest.raises(ParseError, match="cannot be stored"):
        interpret("always put the heavy ones in the blue bowl", "preference", CTX)


def test_rules_become_entries_of_the_right_kind_and_scope() -> None:
    prov = Provenance(episode="e", correction_texts=["x"])
    shape = PreferenceMapping(attributes={"shape": "cylinder"}, target="pink bowl")
    entry = shape.to_entry("red cylinder", prov)
    assert entry is not None and entry.kind == "preference"
    assert entry.scope.shape == "cylinder" and entry.scope.color is None
    assert entry.text == "put cylinders in the pink bowl"
    never = PreferenceMapping(target="green bowl", is_negative=True).to_entry("red block", prov)
    assert never is not None and never.kind == "plan_rule"
    step = AddedPrecondition(skill="open_drawer", obj="drawer").to_entry("red block", prov)
    assert step is not None and step.kind == "plan_rule" and step.plan_form is not None


def test_every_plan_phrase_of_the_simulated_person_is_understood(router) -> None:
    for text in plan_corrector.all_plan_phrases():
        label = router.route(text).label
        assert label in ("plan", "preference"), (text, label)
        effects = interpret(text, label, CTX).effects
        kinds = {e.kind for e in effects}
        if "drawer" in text:
            assert kinds == {"added_precondition"}, text
        else:
            assert kinds == {"preference_mapping"}, (text, effects)
            (rule,) = effects
            assert rule.is_negative == any(w in text for w in ("never", "out of")), text


def _rule(form) -> Rule:
    return Rule(form, "learned in episode test")


def test_the_rewriter_retargets_adds_the_step_and_reorders() -> None:
    ctx = PlanContext(object_names=[*SCENE, "drawer"])
    source = (
        "'put things away'\n"
        "put_first_on_second('red block', 'green bowl')\n"
        "checkpoint('red block placed', expect='in(red block, green bowl)')\n"
        "put_first_on_second('blue block', 'yellow bowl')\n"
        "put_first_on_second('red cylinder', 'yellow bowl')\n"
        "checkpoint('all placed', expect='in(blue block, yellow bowl)')\n"
    )
    rules = [
        _rule(PreferenceMapping(target="green bowl", is_negative=True)),
        _rule(PreferenceMapping(attributes={"shape": "cylinder"}, target="drawer")),
        _rule(AddedPrecondition(skill="open_drawer", obj="drawer")),
        _rule(Ordering(attributes={"color": "blue"})),
    ]
    new, notes = rewrite_program(source, rules, ctx)
    lines = new.splitlines()
    # "never use the green bowl": two other bowls, so no single alternative; kept as written.
    assert "put_first_on_second('red block', 'green bowl')" in lines
    assert lines.index("put_first_on_second('blue block', 'yellow bowl')") == 1
    assert lines.index("open_drawer('drawer')") + 1 == lines.index(
        "put_first_on_second('red cylinder', 'drawer')"
    )
    assert lines[-1].startswith("checkpoint('all placed'")  # the final check stays last
    assert any("learned in episode test" in n for n in notes)
    two_bowls = PlanContext(object_names=["red block", "green bowl", "yellow bowl"])
    moved, notes = rewrite_program(source.split("put_first_on_second('blue")[0], rules, two_bowls)
    assert "put_first_on_second('red block', 'yellow bowl')" in moved
    assert "expect='in(red block, yellow bowl)'" in moved and notes
    same, notes = rewrite_program(source, [], ctx)
    assert same == source and notes == []


# ------------------------------------------------------------------------------- sessions


def _layout(*objects: tuple[str, str], drawer: bool = False) -> LayoutConfig:
    return LayoutConfig(
        objects=[ObjectRequest(kind=kind, color=color) for color, kind in objects],
        include_drawer=drawer,
    )


def _run(kb: Path, router, episode: str, seed: int, layout, text: str, expect: str, **config):
    events: list[SessionEvent] = []
    with Session(
        SessionConfig(kb=kb, episode=episode, seed=seed, **config), router=router, layout=layout
    ) as session:
        session.subscribe(events.append)
        result = session.run(text, expect=expect)
        learned = session.learn(task_succeeded=bool(result.expect_holds))
    return result, events, learned


def _of(events: list[SessionEvent], kind: str) -> list[dict]:
    return [e.data for e in events if e.kind == kind]


@pytest.mark.slow
def test_a_shape_preference_transfers_to_new_colours_but_not_to_other_shapes(
    tmp_path, router
) -> None:
    kb = tmp_path / "kb"
    scene = _layout(("red", "cylinder"), ("red", "block"), ("pink", "bowl"), ("yellow", "bowl"))
    result, events, learned = _run(
        kb,
        router,
        "said",
        1,
        scene,
        "put the red cylinder in the yellow bowl",
        "in(red cylinder, pink bowl)",
        corrections=["always put cylinders in the pink bowl"],
    )
    assert result.expect_holds, result.expect_details
    (reply,) = _of(events, "correction.reply")
    assert "will remember: put cylinders in the pink bowl" in reply["reply"]
    assert [(d.kind, d.text) for d in learned] == [("preference", "put cylinders in the pink bowl")]
    blue = _layout(("blue", "cylinder"), ("blue", "block"), ("pink", "bowl"), ("yellow", "bowl"))
    result, events, _ = _run(
        kb,
        router,
        "new",
        2,
        blue,
        "put the blue cylinder in the yellow bowl",
        "in(blue cylinder, pink bowl)",
    )
    assert result.expect_holds, result.expect_details
    (rules,) = _of(events, "plan.rules")
    assert "by the rule 'put cylinders in the pink bowl'" in rules["changes"][0]
    # The control: same colour, another shape; the rule must not move it.
    result, events, _ = _run(
        kb,
        router,
        "control",
        3,
        blue,
        "put the blue block in the yellow bowl",
        "in(blue block, yellow bowl)",
    )
    assert result.expect_holds, result.expect_details
    assert _of(events, "knowledge.used") == [] and _of(events, "plan_rule.applied") == []
    assert all(not r["changes"] for r in _of(events, "plan.rules"))


@pytest.mark.slow
def test_open_the_drawer_first_is_applied_at_once_and_remembered(tmp_path, router) -> None:
    kb = tmp_path / "kb"
    scene = _layout(("red", "cylinder"), ("red", "block"), ("yellow", "bowl"), drawer=True)
    result, events, learned = _run(
        kb,
        router,
        "said",
        1,
        scene,
        "put the red cylinder in the yellow bowl",
        "in(red cylinder, drawer)",
        corrections=["the cylinders go in the drawer", "open the drawer first"],
    )
    assert result.expect_holds, result.expect_details
    assert _of(events, "correction.step") == [{"skill": "open_drawer", "obj": "drawer"}]
    assert ("plan_rule", "open the drawer before putting anything in the drawer") in [
        (d.kind, d.text) for d in learned
    ]
    blue = _layout(("blue", "cylinder"), ("blue", "block"), ("yellow", "bowl"), drawer=True)
    result, events, _ = _run(
        kb,
        router,
        "new",
        2,
        blue,
        "put the blue cylinder in the yellow bowl",
        "in(blue cylinder, drawer)",
    )
    assert result.expect_holds, result.expect_details
    program = result.steps[0]["program"].splitlines()
    assert program.index("open_drawer('drawer')") < program.index(
        "put_first_on_second('blue cylinder', 'drawer')"
    )
    # Not involved: a block for the bowl; the drawer is not opened.
    result, events, _ = _run(
        kb,
        router,
        "control",
        3,
        blue,
        "put the blue block in the yellow bowl",
        "in(blue block, yellow bowl)",
    )
    assert result.expect_holds, result.expect_details
    assert "open_drawer" not in result.steps[0]["program"]


@pytest.mark.slow
def test_never_use_the_green_bowl_substitutes_now_and_later(tmp_path, router) -> None:
    kb = tmp_path / "kb"
    scene = _layout(("red", "block"), ("blue", "block"), ("green", "bowl"), ("yellow", "bowl"))
    result, events, learned = _run(
        kb,
        router,
        "said",
        1,
        scene,
        "put the red block in the green bowl",
        "in(red block, yellow bowl)",
        corrections=["never use the green bowl"],
    )
    assert result.expect_holds, result.expect_details
    (reply,) = _of(events, "correction.reply")
    assert "green bowl -> yellow bowl" in reply["reply"]
    assert [(d.kind, d.text) for d in learned] == [
        ("plan_rule", "never put anything in the green bowl")
    ]
    result, events, _ = _run(
        kb,
        router,
        "later",
        2,
        scene,
        "put the blue block in the green bowl",
        "in(blue block, yellow bowl)",
    )
    assert result.expect_holds, result.expect_details


@pytest.mark.slow
def test_an_unstorable_preference_is_refused_in_words_and_nothing_is_learned(
    tmp_path, router
) -> None:
    scene = _layout(("red", "block"), ("green", "bowl"), ("yellow", "bowl"))
    result, events, learned = _run(
        tmp_path / "kb",
        router,
        "heavy",
        1,
        scene,
        "put the red block in the green bowl",
        "in(red block, green bowl)",
        corrections=["always put the heavy ones in the yellow bowl"],
    )
    assert result.expect_holds, result.expect_details
    (reply,) = _of(events, "correction.reply")
    assert reply["status"] == "refused" and "cannot be stored" in reply["reply"]
    assert learned == []


@pytest.mark.slow
def test_an_order_said_mid_task_replans_the_rest(tmp_path, router) -> None:
    scene = _layout(("red", "block"), ("blue", "block"), ("yellow", "bowl"))
    result, events, learned = _run(
        tmp_path / "kb",
        router,
        "order",
        1,
        scene,
        "put all the blocks in the yellow bowl",
        "in(red block, yellow bowl) and in(blue block, yellow bowl)",
        corrections=["do the red ones first"],
    )
    assert result.expect_holds, result.expect_details
    assert _of(events, "plan.replan")
    starts = _of(events, "skill.start")
    placed = [e["args"][0] for e in starts if e["skill"] == "put_first_on_second"]
    assert placed[0] == "red block", placed
    assert [(d.kind, d.text) for d in learned] == [("plan_rule", "handle red things first")]


@pytest.mark.slow
def test_another_object_said_before_the_pick_replans_on_it(tmp_path, router) -> None:
    scene = _layout(("red", "block"), ("blue", "block"), ("yellow", "bowl"))
    result, events, learned = _run(
        tmp_path / "kb",
        router,
        "swap",
        1,
        scene,
        "put the red block in the yellow bowl",
        "in(blue block, yellow bowl)",
        corrections=["no, the blue block"],
    )
    assert result.expect_holds, result.expect_details
    starts = _of(events, "skill.start")
    # The red block's call ended before any motion; the re-plan acts on the blue block.
    assert [e["args"][0] for e in starts if e["skill"] == "put_first_on_second"] == ["blue block"]
    assert _of(events, "plan.replan")
    assert learned == []  # a one-off choice of object teaches nothing


class _Written(Planner):
    """A planner that returns one fixed program, as an LLM that forgot the drawer would."""

    name = "written"

    def plan(self, instruction: str, context: PlanContext) -> Program:
        self.seen = list(context.knowledge)
        return Program(source="put_first_on_second('red cylinder', 'drawer')\n", planner=self.name)


def test_any_planner_gets_the_rules_in_its_context_and_its_program_rewritten(tmp_path) -> None:
    from corrigible.memory import KnowledgeBase
    from corrigible.policies.planners.llm_planner import LLMPlanner

    prov = Provenance(episode="before", correction_texts=["open the drawer first"])
    with KnowledgeBase.open(tmp_path / "kb") as kb:
        kb.add(AddedPrecondition(skill="open_drawer", obj="drawer").to_entry("x", prov))
        inner = _Written()
        planner = RuledPlanner(inner, RuleBook(kb, None, {}))
        ctx = PlanContext(object_names=["red cylinder", "yellow bowl", "drawer"])
        program = planner.plan("put the red cylinder in the drawer", ctx)
    rule = "open the drawer before putting anything in the drawer"
    assert inner.seen == [rule]
    assert program.source.splitlines() == [
        "open_drawer('drawer')",
        "put_first_on_second('red cylinder', 'drawer')",
    ]
    assert "learned in episode before" in program.notes[0]
    # The LLM planner writes what its context holds into the system prompt.
    llm_planner = LLMPlanner.__new__(LLMPlanner)
    llm_planner.prompt_style = "full"
    system = llm_planner._messages("put the red cylinder in the drawer", ctx)[0].content
    assert f"- {rule}" in system


@pytest.mark.slow
def test_a_conjunction_with_size_acts_now_and_spares_another_size(tmp_path, router) -> None:
    kb = tmp_path / "kb"

    def scene(size: str) -> LayoutConfig:
        return LayoutConfig(
            objects=[
                ObjectRequest(kind="block", color="red", size_class=size),
                ObjectRequest(kind="bowl", color="blue"),
                ObjectRequest(kind="bowl", color="yellow"),
            ]
        )

    result, events, learned = _run(
        kb,
        router,
        "small",
        1,
        scene("small"),
        "put the red block in the yellow bowl",
        "in(red block, blue bowl)",
        corrections=["small red blocks go in the blue bowl"],
    )
    assert result.expect_holds, result.expect_details
    assert [d.text for d in learned] == ["put small red blocks in the blue bowl"]
    result, events, _ = _run(
        kb,
        router,
        "medium",
        2,
        scene("medium"),
        "put the red block in the yellow bowl",
        "in(red block, yellow bowl)",
    )
    assert result.expect_holds, result.expect_details
    assert _of(events, "plan_rule.applied") == []
    result, events, _ = _run(
        kb,
        router,
        "small-again",
        3,
        scene("small"),
        "put the red block in the yellow bowl",
        "in(red block, blue bowl)",
    )
    assert result.expect_holds, result.expect_details


def test_a_target_rule_leaves_moves_to_a_spot_alone() -> None:
    ctx = PlanContext(object_names=list(SCENE))
    rules = [_rule(PreferenceMapping(attributes={"shape": "cylinder"}, target="pink bowl"))]
    for target in ("[0.4, 0.1]", "'top left corner'", "'red block'"):
        source = f"put_first_on_second('red cylinder', {target})\n"
        assert rewrite_program(source, rules, ctx) == (source, [])
    moved, notes = rewrite_program(
        "put_first_on_second('red cylinder', 'green bowl')\n", rules, ctx
    )
    assert moved == "put_first_on_second('red cylinder', 'pink bowl')\n" and len(notes) == 1


def test_the_plan_phrases_are_not_the_routers_own_examples() -> None:
    data = Path(__file__).parents[2] / "corrections" / "data"
    known = (data / "router_examples.yaml").read_text().lower()
    for path in data.glob("*.jsonl"):
        known += "\n" + path.read_text().lower()
    for text in plan_corrector.all_plan_phrases():
        assert f'"{text}"' not in known and f"- {text}\n" not in known, text
