"""Typed corrections in real MuJoCo episodes: real router (MiniLM), real knowledge base.

A correction typed before a skill changes that skill's parameters or its target; one typed
after a failure is waited for; "stop" and "pause"/"resume" act on the run; and a correction
that cannot be used is answered and changes nothing at all (parameters, targets, session,
memory).
"""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest

from corrigible.corrections.distill import EpisodeFacts, distill
from corrigible.corrections.onthefly import CorrectionLoop, unseen_objects
from corrigible.corrections.router import GrammarEmbeddingRouter
from corrigible.corrections.typed import TypedCorrector
from corrigible.memory import KnowledgeBase
from corrigible.policies.skills import default_params
from corrigible.session import EpisodeResult, Session, SessionConfig

PUT = "put the red block in the red bowl"


class _Run:
    """One episode with a typed corrector installed; replies and prompts are collected."""

    def __init__(
        self,
        router: GrammarEmbeddingRouter,
        instruction: str,
        texts: tuple[str, ...] = (),
        *,
        expect: str | None = None,
        interactive: bool = False,
        timeout_s: float = 20.0,
        kb: KnowledgeBase | None = None,
        camera_bias_y: float = 0.0,
    ) -> None:
        self.replies: list[str] = []
        self.prompts: list[str] = []
        self.typed = TypedCorrector(
            texts,
            interactive=interactive,
            timeout_s=timeout_s,
            reply=self.replies.append,
            prompt=self._on_prompt,
        )
        self.on_prompt = None
        self.instruction, self.expect = instruction, expect
        self.session = Session(
            SessionConfig(episode="typed-test", camera_bias=(0.0, camera_bias_y, 0.0)),
            kb=kb,
            router=router,
            corrector=self.typed,
        )
        self.session.reset(mention=[instruction, expect])
        assert self.session.loop is not None
        self.loop: CorrectionLoop = self.session.loop
        self.env = self.session.env
        self.api = self.session.api

    def _on_prompt(self, line: str) -> None:
        self.prompts.append(line)
        if self.on_prompt is not None:
            self.on_prompt(line)

    def run(self) -> EpisodeResult:
        try:
            result = self.session.run(self.instruction, expect=self.expect)
            self.typed.finish()
            return result
        finally:
            self.session.close()

    def skill_params(self, skill: str) -> list[dict[str, float]]:
        """The parameters each run of `skill` really used (from the trace)."""
        events = self.env.trace.of_kind("skill")
        return [e["params"] for e in events if e["skill"] == skill]


def test_unseen_objects_names_only_missing_singular_objects() -> None:
    visible = ("red block", "gray bowl", "drawer")
    assert unseen_objects("no, the purple bowl", visible) == ["purple bowl"]
    assert unseen_objects("the grey bowl please", visible) == []  # a synonym of gray
    assert unseen_objects("I like red blocks in the gray bowl", visible) == []
    assert unseen_objects("a bit more to the left", visible) == []
    assert unseen_objects("use the blue cube, not the teal can", visible) == [
        "blue block",
        "cyan cylinder",
    ]


def test_replies_and_prompts_show_control_characters_escaped() -> None:
    """A typed ESC, bell or CR is echoed as `\\x1b`, `\\x07`, `\\r`, never acting on a terminal."""
    replies: list[str] = []
    prompts: list[str] = []
    typed = TypedCorrector(
        ["\x1b]0;pwned\x07no, the \x1b[31mgray bowl\r"], reply=replies.append, prompt=prompts.append
    )
    typed.finish()
    typed._prompt("! pick failed (\x1b[2J); type a correction")
    assert len(replies) == 1 and "refused" in replies[0]
    assert "\\x1b]0;pwned\\x07no, the \\x1b[31mgray bowl\\r" in replies[0]
    assert prompts == ["! pick failed (\\x1b[2J); type a correction"]
    assert not any(c in line for line in replies + prompts for c in "\x1b\x07\r")


def test_lines_from_a_stream_end_at_eof_and_empty_ones_are_answered() -> None:
    replies: list[str] = []
    typed = TypedCorrector(interactive=True, reply=replies.append, prompt=lambda _: None)
    typed.read_from(io.StringIO("no, the gray bowl\n   \nstop\n")).join(timeout=5)
    taken = list(typed.before_skill("pick", "red block", None, episode="e"))  # type: ignore[arg-type]
    assert [c.text for c in taken] == ["no, the gray bowl", "stop"]
    assert all(c.source == "typed" for c in taken)
    assert typed.has_ended
    assert len(replies) == 1 and "empty" in replies[0] and replies[0].endswith("nothing changed")
    assert typed.on_failure("pick", "red block", "missed", None, episode="e") is None  # type: ignore[arg-type]


def test_no_other_bowl_before_the_place_changes_the_target(router) -> None:
    run = _Run(router, PUT, ("no, the gray bowl",), expect="in(red block, gray bowl)")
    result = run.run()
    assert result.expect_holds
    assert run.api.skill_results[-1].args["target"] == "gray bowl"
    [record] = run.loop.records
    assert (record.target_before, record.target_after) == ("red bowl", "gray bowl")
    assert run.replies == [
        "[correction] 'no, the gray bowl': plan: place target red bowl -> gray bowl for the "
        "red block; applies to this put_first_on_second"
    ]
    kinds = [e["kind"] for e in run.env.trace.events]
    assert "correction.applied" in kinds and "correction.reply" in kinds


def test_a_skill_correction_before_the_pick_changes_its_parameter(router) -> None:
    run = _Run(router, "pick up the red block", ("a tiny bit more to the left",))
    run.run()
    [pick] = run.api.skill_results
    assert pick.success
    assert pick.params["grasp_offset_y"] == pytest.approx(0.01)
    assert run.loop.session == {("pick", "red block"): {"grasp_offset_y": pytest.approx(0.01)}}
    assert run.replies[0].endswith(
        "skill: pick grasp_offset_y +0.010 (now 0.010) for the red block; applies to this pick"
    )


# Each line with the words its reply must contain. Lines the `Correction` record rejects never
# reach the loop; the others are routed and interpreted, then refused before anything changes.
_REFUSED = {
    "": "is empty",
    "   ": "is empty",
    "x" * 600: "over the 500 limit",
    "left\x1b[2J": "control character",
    "asdf qwerty": "could not understand 'asdf qwerty'",
    "put it in the purple bowl": "there is no purple bowl here (I see: ",
    "grab the purple block a bit more to the left": "there is no purple block here",
    "I like red things in the purple bowl": "there is no purple bowl here",
    "resume": "not paused",
}


def test_unusable_corrections_are_answered_and_change_nothing(router, tmp_path: Path) -> None:
    with KnowledgeBase.open(tmp_path / "kb") as kb:
        run = _Run(
            router,
            PUT,
            tuple(_REFUSED),
            expect="in(red block, red bowl)",
            interactive=True,  # every queued line is taken at the first skill boundary
            kb=kb,
        )
        run.typed.close()
        result = run.run()
        facts = EpisodeFacts(
            episode="typed-test",
            sizes={o.name: o.size_class for o in run.env.scene.objects},
            visuals=run.session.memory.visuals,
            task_succeeded=bool(result.expect_holds),
        )
        written = distill(run.loop.records, kb, facts)
        assert written == [] and len(kb) == 0
    assert len(run.replies) == len(_REFUSED)
    for reply, (text, words) in zip(run.replies, _REFUSED.items(), strict=True):
        assert words in reply, (text, reply)
        assert reply.endswith("; nothing changed"), reply
    assert [e["status"] for e in run.typed.log] == ["refused"] * len(_REFUSED)
    # Nothing changed: no applied correction, no session parameter, no target, default params.
    assert run.loop.records == [] and run.loop.controls == []
    assert run.loop.session == {} and run.loop.targets == {}
    assert result.expect_holds  # placed where the instruction said
    assert run.api.skill_results[-1].args["target"] == "red bowl"
    assert run.skill_params("pick") == [default_params()["pick"].to_dict()]
    assert run.skill_params("place") == [default_params()["place"].to_dict()]
    assert len(run.loop.refused) == 5  # the four the record rejected never reached the loop


def test_a_failed_pick_waits_for_the_typed_correction_and_redoes(router) -> None:
    # The camera sees the block 3 cm to the right of where it is, so the first grasp misses.
    run = _Run(router, PUT, expect="in(red block, red bowl)", interactive=True, camera_bias_y=-0.03)

    def type_after_failure(line: str) -> None:
        if "failed" in line and not run.replies:  # the person reads, then types two lines

            def type_lines() -> None:
                run.typed.put("hmm")
                run.typed.put("a bit more to the left")
                run.typed.close()

            threading.Timer(0.3, type_lines).start()

    run.on_prompt = type_after_failure
    result = run.run()
    assert result.expect_holds
    assert [r.success for r in run.api.skill_results] == [False, True]
    assert "could not understand 'hmm'" in run.replies[0]
    assert run.replies[1].endswith("grasp_offset_y +0.030 (now 0.030) for the red block; redoing")
    [record] = run.loop.records
    assert record.when == "failure" and record.latency_s is not None


@pytest.mark.parametrize("ending", ["timeout", "eof"])
def test_a_failure_without_a_usable_line_gives_up(router, ending: str) -> None:
    run = _Run(
        router,
        PUT,
        expect="in(red block, red bowl)",
        interactive=True,
        timeout_s=0.5,
        camera_bias_y=-0.03,
    )
    if ending == "eof":
        run.typed.close()
    result = run.run()
    assert not result.expect_holds
    assert result.steps[0]["error_class"] == "runtime"  # the program saw the skill error
    assert run.loop.records == []
    expected = "no correction within 0.5 s" if ending == "timeout" else "input ended"
    assert any(expected in p for p in run.prompts)


def test_stop_ends_the_episode_cleanly(router) -> None:
    run = _Run(router, PUT, ("stop",), expect="in(red block, red bowl)")
    result = run.run()  # returns normally: the stop is a clean end, not a crash
    assert run.loop.stopped == "stopped: the person said 'stop'"
    assert result.steps[0]["status"] == "error"
    assert result.steps[0]["error_class"] == "interrupted"
    assert run.api.skill_results == []  # stopped before the arm moved
    assert run.replies == ["[correction] 'stop': control: stopping; the episode ends here"]


def test_pause_holds_the_run_until_resume(router) -> None:
    texts = ("pause", "no, the gray bowl", "resume")
    run = _Run(router, PUT, texts, expect="in(red block, gray bowl)")
    result = run.run()
    assert result.expect_holds
    assert [r.control for r in run.loop.controls] == ["pause", "resume"]
    assert run.loop.records[0].when == "paused"
    assert not run.session.controller.control.is_paused
    kinds = [e["kind"] for e in run.env.trace.events]
    assert kinds.index("correction.paused") < kinds.index("correction.resumed")


def test_input_ending_while_paused_stops_the_run(router) -> None:
    run = _Run(router, PUT, ("pause",), expect="in(red block, red bowl)")
    result = run.run()
    assert run.loop.stopped == "stopped: input ended while paused"
    assert result.steps[0]["error_class"] == "interrupted"
    assert not run.session.controller.control.is_paused


def test_a_line_typed_during_a_skill_is_taken_at_the_next_boundary(router) -> None:
    run = _Run(
        router,
        "pick up the red block then place it in the red bowl",
        expect="in(red block, gray bowl)",
        interactive=True,
    )
    ticks: list[int] = []

    def type_mid_pick(_arm: object) -> None:  # the person types while the arm is moving
        ticks.append(1)
        if len(ticks) == 20:
            run.typed.put("no, the gray bowl")
            run.typed.close()

    run.env.arm.add_tick_hook(type_mid_pick)
    result = run.run()
    assert result.expect_holds
    first, second = run.api.skill_results
    assert (first.skill, second.args["target"]) == ("pick", "gray bowl")
    [record] = run.loop.records
    assert record.when == "before_skill" and record.target_before == "red bowl"
