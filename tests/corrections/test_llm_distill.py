"""`distill_with_llm`: hand-written wire recordings, a real knowledge base, a real loopback server.

The replay recordings in `data/llm_distill.jsonl` are HAND-WRITTEN (see
`data/make_llm_recordings.py`): the requests are the ones `distill_messages` builds, sent through
the stock `openai` client; the answers were written by hand, not by a model ("good": what a
capable model answers; the others imitate typical failures). Entries go into a real
`KnowledgeBase` with real MiniLM text embeddings and real crop descriptors.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from corrigible.corrections.distill import EpisodeFacts, distill
from corrigible.corrections.llm_distill import (
    LLMDistillResult,
    distill_messages,
    distill_with_llm,
    episode_json,
)
from corrigible.errors import ConfigError
from corrigible.memory import KnowledgeBase, KnowledgeEntry
from corrigible.memory.visual_embedder import embed_crop, render_crop
from corrigible.policies.llm import LLMBackend, make_llm
from corrigible.policies.llm.openai_backend import OpenAIBackend, OpenAIBackendConfig
from corrigible.text_embedding import MiniLMEmbedder
from loopback_llm import (
    LoopbackServer,
    free_loopback_port,
)


def _load_recordings_module():
    # Tests are not a package (pytest runs with --import-mode=importlib), so load it by path.
    path = Path(__file__).parent / "data" / "make_llm_recordings.py"
    spec = importlib.util.spec_from_file_location("corrections_llm_recordings", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REC = _load_recordings_module()
STALE = "re-run tests/corrections/data/make_llm_recordings.py if a prompt changed"
YELLOW = (220, 200, 40)
RED = (200, 30, 30)


@pytest.fixture(scope="module")
def visuals() -> dict[str, np.ndarray | None]:
    """Crop descriptors of the corrected objects, from synthetic top-down crops."""
    return {
        "yellow cylinder": embed_crop(render_crop("cylinder", YELLOW)[0], metres_per_pixel=0.001),
        "red block": embed_crop(render_crop("cube", RED)[0], metres_per_pixel=0.001),
    }


@pytest.fixture
def kb(tmp_path: Path, embedder: MiniLMEmbedder) -> Iterator[KnowledgeBase]:
    with KnowledgeBase.open(tmp_path / "kb", text_embedder=embedder) as handle:
        yield handle


@pytest.fixture(scope="module")
def replay() -> Iterator[LLMBackend]:
    with make_llm(f"replay:{REC.DISTILL_FILE}") as llm:
        yield llm


def _run(episode: str, kb: KnowledgeBase, llm: LLMBackend | str, visuals) -> LLMDistillResult:
    build, succeeded, _ = REC.EPISODES.get(episode, (REC.episode_records, True, ""))
    facts = EpisodeFacts(
        episode=episode, sizes=REC.SIZES, visuals=visuals, task_succeeded=succeeded
    )
    return distill_with_llm(build(episode), kb, facts, llm=llm)


def _by_kind(kb: KnowledgeBase) -> dict[str, list[KnowledgeEntry]]:
    out: dict[str, list[KnowledgeEntry]] = {}
    for entry in kb.list():
        out.setdefault(entry.kind, []).append(entry)
    return out


def _offline(episode: str, tmp_path: Path, embedder: MiniLMEmbedder, visuals) -> list[tuple]:
    """What the offline path alone writes for an episode: (kind, text, params, scope) rows."""
    build, succeeded, _ = REC.EPISODES[episode]
    with KnowledgeBase.open(tmp_path / "offline", text_embedder=embedder) as kb:
        facts = EpisodeFacts(
            episode=episode, sizes=REC.SIZES, visuals=visuals, task_succeeded=succeeded
        )
        distill(build(episode), kb, facts)
        return sorted((e.kind, e.text, e.params, e.scope.describe()) for e in kb.list())


# --------------------------------------------------------------------------- good answer


def test_good_answer_distils_into_valid_entries(kb, replay, visuals) -> None:
    result = _run("ep-llm-good", kb, replay, visuals)
    assert result.llm_error is None, f"{result.llm_error} ({STALE})"
    assert result.rejected == [] and result.from_fallback == [] and result.fallback_reasons == []
    assert [d.kind for d in result.from_llm] == ["skill_params", "preference"]
    entries = _by_kind(kb)
    (skill,) = entries["skill_params"]
    assert skill.skill == "pick" and skill.params == {"grasp_height": -0.01, "speed": 0.125}
    assert skill.scope.describe() == "color=yellow shape=cylinder size_class=small"
    assert skill.text.startswith("pick small yellow cylinders")  # the model's wording
    assert skill.visual_embedding == pytest.approx(list(visuals["yellow cylinder"]))
    assert skill.provenance[0].episode == "ep-llm-good"
    assert skill.provenance[0].correction_texts == ["grasp it a bit lower", "lift it more slowly"]
    assert skill.tags == ["source=llm", f"llm=replay:{REC.DISTILL_FILE}"]
    (pref,) = entries["preference"]
    assert (pref.plan_form.pattern, pref.plan_form.target) == ("color=red", "blue bowl")
    assert pref.scope.describe() == "color=red"
    assert pref.provenance[0].correction_texts == ["no, in the blue bowl please"]
    hits = kb.search("pick the yellow cylinder", k=1)
    assert hits and hits[0].entry.id == skill.id


def test_same_episode_again_supersedes_through_the_offline_write_path(kb, replay, visuals):
    first = _run("ep-llm-good", kb, replay, visuals)
    second = _run("ep-llm-good", kb, replay, visuals)
    assert [d.superseded for d in second.from_llm] == [d.entry_id for d in first.from_llm]
    assert len(kb.list()) == 2  # the old ones are inactive
    assert len(kb.list(active_only=False)) == 4


# --------------------------------------------------------------------------- flawed answers


@pytest.mark.parametrize(
    "needle",
    [
        "skill 'pick' has no parameter 'grip_force'",
        "pick.grasp_height = -0.05 lies outside what the corrections produced",
        "scope {'color': 'purple', 'shape': 'cylinder'} matches no object",
        "'grasp' is not a skill",
        "target 'green bowl' is not a target any correction named",
        "kind: Input should be 'skill_params' or 'preference'",
        "params.speed: Input should be a valid number",
    ],
    ids=["param", "value", "scope", "skill", "object", "kind", "type"],
)
def test_hallucinations_are_rejected_with_a_reason(kb, replay, visuals, needle: str) -> None:
    result = _run("ep-llm-flawed", kb, replay, visuals)
    assert result.llm_error is None, f"{result.llm_error} ({STALE})"
    assert len(result.rejected) == 7
    assert sum(needle in r.reason for r in result.rejected) == 1, [
        r.reason for r in result.rejected
    ]


def test_flawed_answer_writes_nothing_bad_and_falls_back_for_the_rest(
    kb, replay, visuals, tmp_path, embedder
) -> None:
    result = _run("ep-llm-flawed", kb, replay, visuals)
    assert [d.kind for d in result.from_llm] == ["preference"]  # the one valid entry
    assert [d.kind for d in result.from_fallback] == ["skill_params"]
    assert result.fallback_reasons == ["not covered by an accepted LLM entry: pick yellow cylinder"]
    every = kb.list(active_only=False)
    stored = json.dumps([e.model_dump(mode="json") for e in every])
    for invented in ("grip_force", "green bowl", "purple", "-0.05"):
        assert invented not in stored
    assert {e.skill for e in every} == {"pick", None}  # not the invented "grasp"
    (skill,) = _by_kind(kb)["skill_params"]
    assert skill.tags == []  # written by the offline path, as it would have been
    offline = _offline("ep-llm-flawed", tmp_path, embedder, visuals)
    assert ("skill_params", skill.text, skill.params, skill.scope.describe()) in offline


def test_failed_task_keeps_no_skill_parameters(kb, replay, visuals) -> None:
    result = _run("ep-llm-failed-task", kb, replay, visuals)
    (rejection,) = result.rejected
    assert rejection.reason.startswith("the task failed")
    assert [d.kind for d in result.from_fallback] == ["preference"]  # offline keeps preferences
    assert "skill_params" not in _by_kind(kb)


def test_prose_answer_falls_back_to_offline_for_everything(
    kb, replay, visuals, tmp_path, embedder
) -> None:
    result = _run("ep-llm-prose", kb, replay, visuals)
    assert result.llm_error is not None and result.llm_error.startswith("unparsable: ")
    assert result.fallback_reasons == [result.llm_error]
    assert result.from_llm == [] and result.llm_text.startswith("The yellow cylinder")
    written = sorted((e.kind, e.text, e.params, e.scope.describe()) for e in kb.list())
    assert written == _offline("ep-llm-prose", tmp_path, embedder, visuals)


def test_stated_rule_may_generalise_by_the_stated_shape(kb, replay, visuals) -> None:
    result = _run("ep-llm-stated-rule", kb, replay, visuals)
    assert result.rejected == [] and result.from_fallback == []
    (pref,) = kb.list()
    assert (pref.plan_form.pattern, pref.plan_form.target) == ("shape=cube", "blue bowl")
    assert pref.provenance[0].correction_texts == ["from now on, red blocks go in the blue bowl"]


# --------------------------------------------------------------------------- failures, inputs


def test_unreachable_llm_falls_back_to_offline(kb, visuals, tmp_path, embedder) -> None:
    url = f"http://127.0.0.1:{free_loopback_port()}/v1"
    with OpenAIBackend(OpenAIBackendConfig(model="m", base_url=url, max_retries=0)) as llm:
        result = _run("ep-llm-prose", kb, llm, visuals)
    assert result.llm_error.startswith("unreachable: could not reach the LLM server")
    assert result.llm_text is None
    written = sorted((e.kind, e.text, e.params, e.scope.describe()) for e in kb.list())
    assert written == _offline("ep-llm-prose", tmp_path, embedder, visuals)


def test_nothing_to_distil_asks_no_llm(kb, visuals) -> None:
    hold_only = [r for r in REC.episode_records("ep-x") if r.label == "control"]
    facts = EpisodeFacts(episode="ep-x", sizes=REC.SIZES, visuals=visuals, task_succeeded=True)
    result = distill_with_llm(hold_only, kb, facts, llm=f"replay:{REC.DISTILL_FILE}")
    assert result.llm is None and result.written == [] and len(kb) == 0


def test_spec_string_builds_and_closes_its_backend(kb, visuals) -> None:
    result = _run("ep-llm-good", kb, f"replay:{REC.DISTILL_FILE}", visuals)
    assert result.llm == f"replay:{REC.DISTILL_FILE}" and len(result.from_llm) == 2


def test_bad_arguments_are_config_errors(kb, visuals, replay) -> None:
    records = REC.episode_records("ep-x")
    facts = EpisodeFacts(episode="ep-x", sizes=REC.SIZES, visuals=visuals, task_succeeded=True)
    with pytest.raises(ConfigError, match="max_tokens"):
        distill_with_llm(records, kb, facts, llm=replay, max_tokens=0)
    with pytest.raises(ConfigError, match="openai:<model>"):
        distill_with_llm(records, kb, facts, llm="gpt4")


def test_prompt_carries_the_episode_facts() -> None:
    records = REC.episode_records("ep-llm-good")
    payload = json.loads(
        episode_json(records, episode="ep-llm-good", sizes=REC.SIZES, task_succeeded=True)
    )
    assert payload["task_succeeded"] is True
    first, _, bowl, hold = payload["corrections"]
    assert (first["text"], first["routed_label"], first["skill"], first["object"]) == (
        "grasp it a bit lower",
        "skill",
        "pick",
        "yellow cylinder",
    )
    assert first["params_after"] == {"grasp_height": -0.01}
    assert (bowl["target_before"], bowl["target_after"]) == ("red bowl", "blue bowl")
    assert hold["applied"] is False
    assert payload["objects"]["yellow cylinder"] == {
        "color": "yellow",
        "shape": "cylinder",
        "size_class": "small",
    }
    assert "grasp_height" in payload["skill_parameters_defaults"]["pick"]
    messages = distill_messages(
        records, episode="ep-llm-good", sizes=REC.SIZES, task_succeeded=True
    )
    assert [m.role for m in messages] == ["system", "user"]
    assert '"skill_params"' in messages[0].content and "ep-llm-good" in messages[1].content


# --------------------------------------------------------------------------- live loopback


def test_live_server_junk_answer_falls_back_to_offline(
    loopback_server: LoopbackServer, kb, visuals, tmp_path, embedder
) -> None:
    config = OpenAIBackendConfig(model=loopback_server.model_id, base_url=loopback_server.base_url)
    with OpenAIBackend(config) as llm:
        build, succeeded, _ = REC.EPISODES["ep-llm-good"]
        facts = EpisodeFacts(
            episode="ep-llm-good", sizes=REC.SIZES, visuals=visuals, task_succeeded=succeeded
        )
        result = distill_with_llm(build("ep-llm-good"), kb, facts, llm=llm, max_tokens=48)
    assert result.llm == f"openai:{loopback_server.model_id}"
    assert result.llm_text  # the tiny model really answered over HTTP...
    assert result.llm_error.startswith("unparsable: ")  # ...but not with {"entries": [...]}
    written = sorted((e.kind, e.text, e.params, e.scope.describe()) for e in kb.list())
    assert written == _offline("ep-llm-good", tmp_path, embedder, visuals)
