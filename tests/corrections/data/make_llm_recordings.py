"""Regenerates the HAND-WRITTEN replay recordings of the LLM router and LLM distillation tests.

These recordings were not produced by a language model. The answers below were written by
hand: the `good` ones are what a capable chat model asked with our prompts would answer, the
`flawed` ones imitate typical failures (an invented label, prose without JSON, a made-up
parameter, object or value). Only the request side is real: each request is built by the code
under test (`LLMRouter.messages`, `distill_messages`) and sent through the stock `openai` client
of the `openai:` backend, whose bytes `RecordingTransport` writes down; the transport under it
answers with the hand-written text instead of a server. The files are therefore in the exact
wire format `replay:<file>` reads, and a prompt change shows up as a replay miss. Token counts
in `usage` are 0 because no tokenizer ever saw these answers.

Run from the repository root after changing a prompt in corrections/prompts/ (offline, ~3 s)::

    python tests/corrections/data/make_llm_recordings.py
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from corrigible.corrections.correction import Correction
from corrigible.corrections.llm_distill import DEFAULT_MAX_TOKENS, distill_messages
from corrigible.corrections.llm_router import LLMRouter, LLMRouterConfig
from corrigible.corrections.onthefly import AppliedCorrection
from corrigible.memory.effects import PreferenceMapping
from corrigible.policies.llm.openai_backend import OpenAIBackend, OpenAIBackendConfig
from corrigible.policies.llm.recorder import RecordingTransport, httpx

DATA = Path(__file__).parent
ROUTER_FILE = DATA / "llm_router.jsonl"
DISTILL_FILE = DATA / "llm_distill.jsonl"
MODEL = "hand-written"  # the model id in every recorded request: no model wrote these answers

# ---------------------------------------------------------------------------- router answers

# text -> (true label, hand-written answer of a capable model)
ROUTER_GOOD: dict[str, tuple[str, str]] = {
    "you are grabbing it too close to the top": (
        "skill",
        '{"label": "skill", "reason": "the grasp point is too high on the object"}',
    ),
    "that goes in the drawer, not the bowl": (
        "plan",
        '{"label": "plan", "reason": "changes the place target"}',
    ),
    "whenever there's a cylinder, it belongs in the drawer": (
        "preference",
        '{"label": "preference", "reason": "a standing rule for cylinders"}',
    ),
    "take the green cylinder instead": (
        "plan",
        '```json\n{"label": "plan", "reason": "a different object"}\n```',
    ),
    "no, the one by the drawer": (
        "plan",
        '{"label": "Plan", "reason": "names a different object"}',
    ),
    "set it down more gently": (
        "skill",
        'The person wants a softer release.\n{"label": "skill", "reason": "release more gently"}',
    ),
    "my bad, what you were doing before was right": (
        "undo",
        '{"label": "undo", "reason": "takes back the previous correction"}',
    ),
}
# text -> (true label, hand-written flawed answer, the fallback kind it must cause)
ROUTER_FLAWED: dict[str, tuple[str, str, str]] = {
    "nudge it towards me": (
        "skill",
        '{"label": "adjustment", "reason": "a small position change"}',
        "invalid_label",
    ),
    "not so close to the edge": (
        "skill",
        "This correction is about how the skill positions the object, so it is skill-level.",
        "unparsable",
    ),
    "ease off on the speed while you carry it": (
        "skill",
        '{"label": "skill-level", "reason": "speed"}',
        "invalid_label",
    ),
}

# ---------------------------------------------------------------------------- distill episodes

SIZES = {
    "yellow cylinder": "small",
    "red block": "medium",
    "red bowl": "large",
    "blue bowl": "large",
    "drawer": "large",
}


def episode_records(episode: str) -> list[AppliedCorrection]:
    """One episode's corrections, with the values the interpreter and loop produce for them.

    The yellow cylinder slips: "grasp it a bit lower" (pick.grasp_height -0.01 m), then "lift
    it more slowly" (pick.speed x0.5 -> 0.125 m/s); the red block goes to the blue bowl instead
    of the red one; a "hold on" changed nothing.
    """

    def correction(text: str, time: float) -> Correction:
        return Correction(text=text, time=time, episode=episode, source="scripted")

    lower = correction("grasp it a bit lower", 3.0)
    slower = correction("lift it more slowly", 9.5)
    bowl = correction("no, in the blue bowl please", 21.0)
    hold = correction("hold on", 30.0)
    return [
        AppliedCorrection(
            correction=lower,
            label="skill",
            route={"label": "skill", "method": "rule", "rule": "verb_direction"},
            effects=[
                {
                    "kind": "skill_param_change",
                    "skill": "pick",
                    "param": "grasp_height",
                    "delta": -0.01,
                    "factor": None,
                    "reason": lower.text,
                }
            ],
            skill="pick",
            obj="yellow cylinder",
            params_after={"grasp_height": -0.01},
            target_before="red bowl",
            applied=True,
        ),
        AppliedCorrection(
            correction=slower,
            label="skill",
            route={"label": "skill", "method": "rule", "rule": "speed"},
            effects=[
                {
                    "kind": "skill_param_change",
                    "skill": "pick",
                    "param": "speed",
                    "delta": None,
                    "factor": 0.5,
                    "reason": slower.text,
                }
            ],
            skill="pick",
            obj="yellow cylinder",
            params_after={"grasp_height": -0.01, "speed": 0.125},
            target_before="red bowl",
            applied=True,
        ),
        AppliedCorrection(
            correction=bowl,
            label="plan",
            route={"label": "plan", "method": "embedding"},
            effects=[{"kind": "target_substitution", "new_target": "blue bowl", "excluded": None}],
            skill="place",
            obj="red block",
            target_before="red bowl",
            target_after="blue bowl",
            applied=True,
        ),
        AppliedCorrection(
            correction=hold,
            label="control",
            route={"label": "control", "method": "rule", "rule": "control_only"},
            effects=[{"kind": "control_command", "command": "pause"}],
            skill="place",
            obj="red block",
            target_before="blue bowl",
            applied=False,
        ),
    ]


def stated_rule_records(episode: str) -> list[AppliedCorrection]:
    """A stated standing rule ("from now on, red blocks go in the blue bowl") and nothing else."""
    text = "from now on, red blocks go in the blue bowl"
    rule = PreferenceMapping(attributes={"color": "red", "shape": "cube"}, target="blue bowl")
    return [
        AppliedCorrection(
            correction=Correction(text=text, time=5.0, episode=episode, source="scripted"),
            label="preference",
            route={"label": "preference", "method": "rule", "rule": "standing_marker"},
            effects=[rule.to_dict()],
            skill="place",
            obj="red block",
            target_before="red bowl",
            target_after="blue bowl",
            preference=rule,
            applied=True,
        )
    ]


_SKILL_ENTRY = {
    "kind": "skill_params",
    "skill": "pick",
    "params": {"grasp_height": -0.01, "speed": 0.125},
    "scope": {"color": "yellow", "shape": "cylinder", "size_class": "small"},
    "text": "pick small yellow cylinders 1 cm lower and lift them at 0.125 m/s; they slip",
}
_RED_TO_BLUE = {
    "kind": "preference",
    "pattern": "color=red",
    "target": "blue bowl",
    "text": "put red things in the blue bowl",
}

# episode id -> (records builder, task_succeeded, hand-written answer)
EPISODES: dict[str, tuple[Callable[[str], list[AppliedCorrection]], bool, str]] = {
    # What a capable model answers: both facts, values copied, nothing for the "hold on".
    "ep-llm-good": (
        episode_records,
        True,
        "```json\n" + json.dumps({"entries": [_SKILL_ENTRY, _RED_TO_BLUE]}, indent=1) + "\n```",
    ),
    # A flawed answer: one good preference among invented parameters, values, scopes, targets
    # and an unsupported kind. Only the preference may be written; the skill fact falls back.
    "ep-llm-flawed": (
        episode_records,
        True,
        json.dumps(
            {
                "entries": [
                    {**_SKILL_ENTRY, "params": {"grip_force": 20.0}},
                    {**_SKILL_ENTRY, "params": {"grasp_height": -0.05, "speed": 0.125}},
                    {**_SKILL_ENTRY, "scope": {"color": "purple", "shape": "cylinder"}},
                    {**_SKILL_ENTRY, "skill": "grasp"},
                    {**_RED_TO_BLUE, "pattern": "color=green", "target": "green bowl"},
                    {"kind": "plan_rule", "text": "open the drawer before placing"},
                    {**_SKILL_ENTRY, "params": {"speed": "slow"}},
                    _RED_TO_BLUE,
                ]
            }
        ),
    ),
    # The corrected task failed: a model that ignores the instruction proposes parameters anyway.
    "ep-llm-failed-task": (episode_records, False, json.dumps({"entries": [_SKILL_ENTRY]})),
    # Prose without JSON: everything goes through the offline path.
    "ep-llm-prose": (
        episode_records,
        True,
        "The yellow cylinder needed a lower grasp and a slower lift, and the red block belongs "
        "in the blue bowl.",
    ),
    # A stated rule generalised by shape, as the person said "red blocks": color and shape are
    # both stated, the model picks the shape.
    "ep-llm-stated-rule": (
        stated_rule_records,
        True,
        json.dumps(
            {
                "entries": [
                    {
                        "kind": "preference",
                        "pattern": "shape=cube",
                        "target": "blue bowl",
                        "text": "put cubes in the blue bowl",
                    }
                ]
            }
        ),
    ),
}

# ---------------------------------------------------------------------------- the recorder


class HandWrittenAnswers(httpx.BaseTransport):
    """Answers a chat-completion request with hand-written text, as an OpenAI server would.

    Args:
        answer_for: request body -> the assistant's answer text.
    """

    def __init__(self, answer_for: Callable[[dict[str, Any]], str]) -> None:
        self._answer_for = answer_for
        self._count = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Returns a `chat.completion` holding the hand-written answer."""
        body = json.loads(request.read())
        self._count += 1
        reply = {
            "id": f"chatcmpl-handwritten-{self._count:04d}",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": self._answer_for(body)},
                }
            ],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }
        return httpx.Response(200, json=reply, request=request)


def _backend(path: Path, answer_for: Callable[[dict[str, Any]], str]) -> OpenAIBackend:
    transport = RecordingTransport(path, inner=HandWrittenAnswers(answer_for))
    config = OpenAIBackendConfig(model=MODEL, base_url="http://hand-written.invalid/v1")
    return OpenAIBackend(config, http_client=httpx.Client(transport=transport))


def _user_text(body: dict[str, Any]) -> str:
    return body["messages"][-1]["content"]


def record_router() -> None:
    """Writes ROUTER_FILE: one exchange per text of ROUTER_GOOD and ROUTER_FLAWED."""
    answers = {text: answer for text, (_, answer) in ROUTER_GOOD.items()}
    answers |= {text: answer for text, (_, answer, _) in ROUTER_FLAWED.items()}

    def answer_for(body: dict[str, Any]) -> str:
        user = _user_text(body)
        return next(a for t, a in answers.items() if json.dumps(t, ensure_ascii=False) in user)

    ROUTER_FILE.unlink(missing_ok=True)
    with _backend(ROUTER_FILE, answer_for) as llm:
        router = LLMRouter(LLMRouterConfig(), llm=llm)
        for text in answers:
            llm.complete(router.messages(text), max_tokens=router.cfg.max_tokens)


def record_distill() -> None:
    """Writes DISTILL_FILE: one exchange per episode of EPISODES."""

    def answer_for(body: dict[str, Any]) -> str:
        user = _user_text(body)
        return next(a for ep, (_, _, a) in EPISODES.items() if f'"episode": "{ep}"' in user)

    DISTILL_FILE.unlink(missing_ok=True)
    with _backend(DISTILL_FILE, answer_for) as llm:
        for episode, (build, succeeded, _) in EPISODES.items():
            messages = distill_messages(
                build(episode), episode=episode, sizes=SIZES, task_succeeded=succeeded
            )
            llm.complete(messages, max_tokens=DEFAULT_MAX_TOKENS)


def main() -> None:
    """Rewrites both recordings."""
    record_router()
    record_distill()
    print(f"wrote {ROUTER_FILE} and {DISTILL_FILE}")


if __name__ == "__main__":
    main()
