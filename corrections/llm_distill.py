"""Distils an episode's corrections into knowledge entries by asking an LLM, checked against facts.

The LLM prompt path of distillation (issue 5). The model gets the episode's correction history
as JSON (the words, the routed label, the skill and object each acted on, the parameters it
left, the targets before and after, any stated rule, the task outcome, the objects that appeared
and the parameters each skill has; see `prompts/distill_system.md`) and answers
`{"entries": [...]}`. A model may phrase a rule better than a template or generalise sensibly,
but it may also invent a parameter, a value or an object, so nothing it says is trusted:

* every proposed entry is validated with a pydantic schema, then against the episode's facts:
  a skill must be a library skill whose parameters a correction changed, a parameter one that
  skill has (`policies/skills/params.py`), a value inside the span the corrections covered
  (between the skill's default and the values they left, never beyond), a scope the attributes
  of an object that was corrected, a preference target one a correction named and its pattern
  the colour or shape of the object sent there; skill parameters are kept only when the task
  succeeded, as in the offline path;
* valid entries are written through `distill._write` (the same supersede-and-merge path), with
  provenance (episode, the correction texts behind the entry) and the tags `source=llm`,
  `llm=<spec>`;
* everything the accepted entries do not cover, and everything when the LLM fails or its answer
  does not parse, goes through the offline `distill`, and the result says what was rejected and
  why.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    ValidationError,
    model_validator,
)

from corrigible.corrections.distill import Distilled, EpisodeFacts, _write, distill
from corrigible.corrections.llm_router import (
    PROMPTS_DIR,
    classify_failure,
    complete_within,
    extract_json_object,
    fill_prompt,
    load_prompt,
)
from corrigible.corrections.onthefly import AppliedCorrection
from corrigible.errors import ConfigError, LLMError, did_you_mean
from corrigible.memory import KnowledgeBase, KnowledgeEntry, ObjectScope, Provenance
from corrigible.memory.effects import PreferenceMapping
from corrigible.policies.llm import ChatMessage, LLMBackend, make_llm
from corrigible.policies.skills.specs import default_params
from corrigible.sim_envs.vocabulary import attributes_of_name

SYSTEM_PROMPT_PATH = PROMPTS_DIR / "distill_system.md"
USER_PROMPT_PATH = PROMPTS_DIR / "distill_user.md"
DEFAULT_MAX_TOKENS = 1024  # tokens; a few entries of ~60 tokens each, with room for a preamble
_VALUE_TOL = 1e-6  # m or m/s; values are rounded to 6 decimals where corrections produce them
_PATTERN_RE = re.compile(r"^(color|shape)\s*=\s*([a-z][a-z _-]*)$")
_SCOPE_KEYS = ("color", "shape", "size_class")
_ANSWER_CHARS = 2000  # characters of the model's raw answer kept on the result


# --------------------------------------------------------------------------- what the LLM sends


class _ProposedScope(BaseModel):
    """Where a proposed skill_params entry applies; only observable attributes."""

    model_config = ConfigDict(extra="forbid")

    color: str | None = None
    shape: str | None = None
    size_class: str | None = None


class ProposedEntry(BaseModel):
    """One entry as the LLM must write it (`prompts/distill_system.md`); unknown keys refused."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["skill_params", "preference"]  # the two kinds the prompt allows
    text: str = Field(min_length=1)  # the rule in words (embedded for retrieval)
    skill: str | None = None  # skill_params: the library skill, e.g. "pick"
    params: dict[str, StrictFloat] | None = None  # SI units; "0.1" or true are refused
    scope: _ProposedScope | None = None  # skill_params: colour / shape / size class
    pattern: str | None = None  # preference: "color=<colour>" or "shape=<shape>"
    target: str | None = None  # preference: where matching objects go

    @model_validator(mode="after")
    def _fields_of_kind(self) -> ProposedEntry:
        if not self.text.strip():
            raise ValueError("text is blank")
        if self.kind == "skill_params":
            missing = [n for n in ("skill", "params", "scope") if getattr(self, n) is None]
            extra = [n for n in ("pattern", "target") if getattr(self, n) is not None]
        else:
            missing = [n for n in ("pattern", "target") if getattr(self, n) is None]
            extra = [n for n in ("skill", "params", "scope") if getattr(self, n) is not None]
        if missing or extra:
            raise ValueError(
                f"a {self.kind} entry needs {missing or 'nothing more'} and must not have "
                f"{extra or 'anything else'}"
            )
        return self


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, kw_only=True)
class Rejection:
    """A proposed entry that was not written, and why."""

    proposal: Any  # the entry exactly as the model wrote it (decoded JSON)
    reason: str  # which check failed, with the values involved


@dataclass(kw_only=True)
class LLMDistillResult:
    """What `distill_with_llm` wrote, from which path, and what it refused."""

    llm: str | None  # the backend's spec; None when the LLM was not asked (nothing to distil)
    from_llm: list[Distilled] = field(default_factory=list)  # written from accepted entries
    from_fallback: list[Distilled] = field(default_factory=list)  # written by offline distill
    rejected: list[Rejection] = field(default_factory=list)  # proposals refused, with reasons
    fallback_reasons: list[str] = field(default_factory=list)  # why the offline path ran
    llm_error: str | None = None  # "<kind>: <why>" when the LLM gave no usable answer at all
    llm_text: str | None = None  # the model's raw answer (first 2000 characters)

    @property
    def written(self) -> list[Distilled]:
        """Everything written, LLM entries first (the return value of `distill` for this path)."""
        return [*self.from_llm, *self.from_fallback]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary."""
        return {
            "llm": self.llm,
            "from_llm": [d.__dict__ for d in self.from_llm],
            "from_fallback": [d.__dict__ for d in self.from_fallback],
            "rejected": [{"proposal": r.proposal, "reason": r.reason} for r in self.rejected],
            "fallback_reasons": self.fallback_reasons,
            "llm_error": self.llm_error,
            "llm_text": self.llm_text,
        }


# --------------------------------------------------------------------------- episode facts


@dataclass(frozen=True)
class _SkillFact:
    """The parameters corrections left for one (skill, object), as the offline path sees them."""

    skill: str
    obj: str
    params: dict[str, float]
    texts: tuple[str, ...]
    attrs: dict[str, str]  # colour, shape and (when known) size class of the object


@dataclass(frozen=True)
class _PreferenceFact:
    """One correction that sent an object to a target (stated rule or substitution)."""

    index: int  # position in `records`
    obj: str
    target: str
    attrs: dict[str, str]  # the attributes a pattern may name: the stated ones, or perceived
    text: str


def _object_attrs(obj: str, sizes: dict[str, str]) -> dict[str, str]:
    attrs = dict(attributes_of_name(obj))
    if sizes.get(obj):
        attrs["size_class"] = sizes[obj]
    return attrs


def _facts(
    records: list[AppliedCorrection], sizes: dict[str, str]
) -> tuple[dict[tuple[str, str], _SkillFact], list[_PreferenceFact]]:
    """The facts an entry may be built from, following `distill`'s reading of the records."""
    params: dict[tuple[str, str], dict[str, float]] = {}
    texts: dict[tuple[str, str], list[str]] = {}
    prefs: list[_PreferenceFact] = []
    for index, rec in enumerate(records):
        if not rec.applied or rec.obj is None:
            continue
        changed = rec.params_by_skill or ({rec.skill: rec.params_after} if rec.params_after else {})
        for skill, after in changed.items():
            if after:
                key = (skill, rec.obj)
                params[key] = dict(after)  # the last record wins, as in distill
                texts.setdefault(key, []).append(rec.correction.text)
        target = rec.preference.target if rec.preference else rec.target_after
        if isinstance(target, str):
            attrs = (
                {k: str(v).lower() for k, v in rec.preference.attributes.items()}
                if rec.preference
                else attributes_of_name(rec.obj)
            )
            prefs.append(_PreferenceFact(index, rec.obj, target, attrs, rec.correction.text))
    skills = {
        key: _SkillFact(
            key[0], key[1], params[key], tuple(texts[key]), _object_attrs(key[1], sizes)
        )
        for key in params
    }
    return skills, prefs


def episode_json(
    records: list[AppliedCorrection],
    *,
    episode: str,
    sizes: dict[str, str],
    task_succeeded: bool,
) -> str:
    """The episode as the LLM sees it: corrections in order, objects, skill parameters, outcome.

    Deterministic (same records, same text), so a recorded exchange replays.
    """
    objects: dict[str, dict[str, str]] = {}
    skills: dict[str, dict[str, float]] = {}
    defaults = default_params()
    corrections = []
    for index, rec in enumerate(records):
        for name in (rec.obj, rec.target_before, rec.target_after):
            if isinstance(name, str) and name not in objects:
                objects[name] = _object_attrs(name, sizes)
        if rec.skill in defaults and rec.skill not in skills:
            skills[rec.skill] = defaults[rec.skill].to_dict()
        stated = None
        if rec.preference is not None:
            stated = {
                "attributes": dict(rec.preference.attributes),
                "target": rec.preference.target,
                "is_negative": rec.preference.is_negative,
            }
        corrections.append(
            {
                "index": index,
                "text": rec.correction.text,
                "routed_label": rec.label,
                "applied": rec.applied,
                "skill": rec.skill,
                "object": rec.obj,
                "params_after": rec.params_after,
                "target_before": rec.target_before,
                "target_after": rec.target_after,
                "stated_rule": stated,
            }
        )
    payload = {
        "episode": episode,
        "task_succeeded": task_succeeded,
        "corrections": corrections,
        "objects": objects,
        "skill_parameters_defaults": skills,
    }
    return json.dumps(payload, indent=1, ensure_ascii=False)


def distill_messages(
    records: list[AppliedCorrection],
    *,
    episode: str,
    sizes: dict[str, str],
    task_succeeded: bool,
    system_prompt_path: Path = SYSTEM_PROMPT_PATH,
    user_prompt_path: Path = USER_PROMPT_PATH,
) -> list[ChatMessage]:
    """The chat sent to the LLM for one episode (system prompt, then the episode JSON)."""
    user = fill_prompt(
        load_prompt(user_prompt_path),
        episode=episode_json(records, episode=episode, sizes=sizes, task_succeeded=task_succeeded),
    )
    return [
        ChatMessage.system(load_prompt(system_prompt_path).strip()),
        ChatMessage.user(user.strip()),
    ]


# --------------------------------------------------------------------------- checking proposals


class _Rejected(Exception):
    """A proposal failed a check; the message is the reason."""


def _same(a: str, b: str) -> bool:
    return " ".join(a.lower().split()) == " ".join(b.lower().split())


def _describe_objects(facts: list[_SkillFact] | list[_PreferenceFact]) -> str:
    return "; ".join(sorted({f"{f.obj} {f.attrs}" for f in facts}))


def _scope_matches(scope: dict[str, str], attrs: dict[str, str]) -> bool:
    """Strict: every set scope field must equal the object's known attribute."""
    return all(key in attrs and _same(value, attrs[key]) for key, value in scope.items())


@dataclass(frozen=True)
class _Checked:
    entry: KnowledgeEntry
    skill_facts: tuple[_SkillFact, ...] = ()
    pref_facts: tuple[_PreferenceFact, ...] = ()


def _check_skill(
    proposal: ProposedEntry,
    skill_facts: dict[tuple[str, str], _SkillFact],
    *,
    task_succeeded: bool,
) -> tuple[str, dict[str, float], dict[str, str], list[_SkillFact]]:
    """Checks a skill_params proposal; returns (skill, params, scope, facts it stands on)."""
    skill = (proposal.skill or "").strip()  # the schema made skill, params and scope present
    params = proposal.params or {}
    proposed_scope = proposal.scope.model_dump() if proposal.scope is not None else {}
    if not task_succeeded:
        raise _Rejected(
            "the task failed: skill parameters proposed by an LLM are kept only from a successful "
            "task (the offline distill also keeps refinements of knowledge it applied)"
        )
    defaults = default_params()
    if skill not in defaults:
        raise _Rejected(
            f"{skill!r} is not a skill; skills: {sorted(defaults)}." + did_you_mean(skill, defaults)
        )
    facts = [f for f in skill_facts.values() if f.skill == skill]
    if not facts:
        corrected = sorted({f.skill for f in skill_facts.values()})
        raise _Rejected(
            f"no correction in this episode changed a parameter of {skill!r} (changed: "
            f"{corrected or 'none'})"
        )
    known = defaults[skill].to_dict()
    if not params:
        raise _Rejected("params is empty; a skill_params entry must set at least one parameter")
    for name in params:
        if name not in known:
            raise _Rejected(
                f"skill {skill!r} has no parameter {name!r}; parameters: {sorted(known)}."
                + did_you_mean(name, known)
            )
    scope = {k: " ".join(v.lower().split()) for k, v in proposed_scope.items() if v}
    if not ({"color", "shape"} & set(scope)):
        raise _Rejected(
            f"scope {scope} names neither colour nor shape; an entry for every object is a "
            "generalisation one episode cannot support"
        )
    matching = [f for f in facts if _scope_matches(scope, f.attrs)]
    if not matching:
        raise _Rejected(
            f"scope {scope} matches no object whose {skill!r} parameters were corrected "
            f"(corrected: {_describe_objects(facts)})"
        )
    for name, value in params.items():
        produced = [f.params[name] for f in matching if name in f.params]
        if not produced:
            raise _Rejected(
                f"no correction changed {skill}.{name} for the objects in scope "
                f"({_describe_objects(matching)})"
            )
        if not math.isfinite(value):
            raise _Rejected(f"{skill}.{name} = {value!r} is not a finite number")
        low = min(known[name], *produced) - _VALUE_TOL
        high = max(known[name], *produced) + _VALUE_TOL
        if not low <= value <= high:
            raise _Rejected(
                f"{skill}.{name} = {value:g} lies outside what the corrections produced "
                f"(default {known[name]:g}, corrections left {sorted(produced)}); values may not "
                "go beyond them"
            )
    return skill, dict(params), scope, matching


def _check_preference(
    proposal: ProposedEntry, pref_facts: list[_PreferenceFact]
) -> tuple[str, str, str, list[_PreferenceFact]]:
    """Checks a preference proposal; returns (key, value, target, facts it stands on)."""
    pattern, wanted = proposal.pattern or "", proposal.target or ""  # present: schema-checked
    match = _PATTERN_RE.match(pattern.strip().lower())
    if match is None:
        raise _Rejected(f"pattern {pattern!r} is not 'color=<colour>' or 'shape=<shape>'")
    key, value = match.group(1), " ".join(match.group(2).split())
    if not pref_facts:
        raise _Rejected("no correction in this episode sent an object to another target")
    to_target = [f for f in pref_facts if _same(f.target, wanted)]
    if not to_target:
        named = sorted({f.target for f in pref_facts})
        raise _Rejected(
            f"target {wanted!r} is not a target any correction named (named: {named})."
            + did_you_mean(wanted, named)
        )
    matching = [f for f in to_target if key in f.attrs and _same(f.attrs[key], value)]
    if not matching:
        raise _Rejected(
            f"pattern {key}={value} does not describe what the corrections sent to "
            f"{to_target[0].target!r} ({_describe_objects(to_target)})"
        )
    return key, value, to_target[0].target, matching


def _check(
    raw: Any,
    skill_facts: dict[tuple[str, str], _SkillFact],
    pref_facts: list[_PreferenceFact],
    *,
    episode: str,
    visuals: dict[str, np.ndarray | None],
    task_succeeded: bool,
    tags: list[str],
) -> _Checked:
    """Validates one proposal (schema, then facts) and builds the entry to write.

    Raises:
        _Rejected: a check failed; the message says which and with what values.
    """
    try:
        proposal = ProposedEntry.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'entry'}: {e['msg']}" for e in exc.errors()
        )
        raise _Rejected(f"not a valid entry ({problems})") from None
    try:
        if proposal.kind == "skill_params":
            skill, params, scope, facts = _check_skill(
                proposal, skill_facts, task_succeeded=task_succeeded
            )
            objs = {f.obj for f in facts}
            visual = visuals.get(next(iter(objs))) if len(objs) == 1 else None
            entry = KnowledgeEntry(
                kind="skill_params",
                skill=skill,
                params=params,
                text=proposal.text.strip(),
                scope=ObjectScope(**scope),
                provenance=[
                    Provenance(
                        episode=episode, correction_texts=[t for f in facts for t in f.texts]
                    )
                ],
                visual_embedding=None if visual is None else [float(v) for v in visual],
                tags=tags,
            )
            return _Checked(entry, skill_facts=tuple(facts))
        key, value, target, prefs = _check_preference(proposal, pref_facts)
        entry = KnowledgeEntry(
            kind="preference",
            text=proposal.text.strip(),
            plan_form=PreferenceMapping(attributes={key: value}, target=target),
            scope=ObjectScope(**{key: value}),
            provenance=[Provenance(episode=episode, correction_texts=[f.text for f in prefs])],
            tags=tags,
        )
        return _Checked(entry, pref_facts=tuple(prefs))
    except ValidationError as exc:  # the knowledge-base schema refused the built entry
        raise _Rejected(f"the knowledge-base schema refused it: {exc.errors()[0]['msg']}") from None


def _covers_skill(checked: list[_Checked], fact: _SkillFact) -> bool:
    return any(
        c.entry.skill == fact.skill
        and _scope_matches(
            {k: v for k, v in c.entry.scope.model_dump().items() if k in _SCOPE_KEYS and v},
            fact.attrs,
        )
        and set(fact.params) <= set(c.entry.params)
        for c in checked
        if c.entry.kind == "skill_params"
    )


def _covers_preference(checked: list[_Checked], fact: _PreferenceFact) -> bool:
    return any(fact in c.pref_facts for c in checked)


# --------------------------------------------------------------------------- the entry point


def distill_with_llm(
    records: list[AppliedCorrection],
    kb: KnowledgeBase,
    facts: EpisodeFacts,
    *,
    llm: LLMBackend | str,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    timeout_s: float | None = None,
) -> LLMDistillResult:
    """Writes the knowledge in one episode's corrections, proposed by an LLM and checked.

    Args:
        records: the applied corrections, in order.
        kb: where entries go.
        facts: the episode's id, object sizes and appearances, and whether it succeeded.
        llm: a backend (the caller closes it) or a spec such as `openai:<model>` (built and
            closed here).
        max_tokens: upper bound on the answer's tokens.
        timeout_s: seconds to wait for the answer before falling back; None: the backend's own
            timeout (distillation runs after the episode, so nothing waits on it).

    Returns:
        What was written by each path, what was rejected and why.

    Raises:
        ConfigError: `llm` is an invalid spec or `max_tokens` < 1.
    """
    if max_tokens < 1:
        raise ConfigError(f"max_tokens must be >= 1, got {max_tokens}; try 1024")
    skill_facts, pref_facts = _facts(records, facts.sizes)
    if not skill_facts and not pref_facts:
        return LLMDistillResult(llm=None)  # nothing to distil; do not spend a call on it
    backend = make_llm(llm) if isinstance(llm, str) else llm
    try:
        result = _distill(
            records,
            kb,
            backend,
            skill_facts,
            pref_facts,
            facts,
            max_tokens=max_tokens,
            timeout_s=timeout_s,
        )
    finally:
        if isinstance(llm, str):
            backend.close()
    return result


def _distill(
    records: list[AppliedCorrection],
    kb: KnowledgeBase,
    llm: LLMBackend,
    skill_facts: dict[tuple[str, str], _SkillFact],
    pref_facts: list[_PreferenceFact],
    facts: EpisodeFacts,
    *,
    max_tokens: int,
    timeout_s: float | None,
) -> LLMDistillResult:
    result = LLMDistillResult(llm=llm.name)
    episode, task_succeeded = facts.episode, facts.task_succeeded
    messages = distill_messages(
        records, episode=episode, sizes=facts.sizes, task_succeeded=task_succeeded
    )
    try:
        answer, _ = complete_within(llm, messages, max_tokens=max_tokens, timeout_s=timeout_s)
    except Exception as exc:  # any backend failure means the offline path, never a crash
        why = str(exc) if isinstance(exc, LLMError) else f"{type(exc).__name__}: {exc}"
        return _all_offline(result, records, kb, f"{classify_failure(exc)}: {why}", facts)
    result.llm_text = answer[:_ANSWER_CHARS]
    try:
        proposals = extract_json_object(answer, key="entries")["entries"]
    except ValueError as exc:  # LLMOutputError: no {"entries": ...} object in the answer
        return _all_offline(result, records, kb, f"unparsable: {exc}", facts)
    if not isinstance(proposals, list):
        why = f"unparsable: 'entries' is a {type(proposals).__name__}, not a list"
        return _all_offline(result, records, kb, why, facts)

    tags = ["source=llm", f"llm={llm.name}"]
    checked: list[_Checked] = []
    for raw in proposals:
        try:
            checked.append(
                _check(
                    raw,
                    skill_facts,
                    pref_facts,
                    episode=episode,
                    visuals=facts.visuals,
                    task_succeeded=task_succeeded,
                    tags=tags,
                )
            )
        except _Rejected as exc:
            result.rejected.append(Rejection(proposal=raw, reason=str(exc)))
    for item in checked:
        result.from_llm.append(_write(kb, item.entry))

    # Whatever the accepted entries leave uncovered goes through the offline path, record by
    # record, with the covered half of a record (its parameters or its target) blanked out.
    uncovered_skills = {
        key
        for key, fact in skill_facts.items()
        if task_succeeded and not _covers_skill(checked, fact)
    }
    uncovered_prefs = {f.index for f in pref_facts if not _covers_preference(checked, f)}
    for skill, obj in sorted(uncovered_skills):
        result.fallback_reasons.append(f"not covered by an accepted LLM entry: {skill} {obj}")
    for fact in pref_facts:
        if fact.index in uncovered_prefs:
            result.fallback_reasons.append(
                f"not covered by an accepted LLM entry: {fact.obj} -> {fact.target}"
            )
    subset = []
    for index, rec in enumerate(records):
        keep_skill = (rec.skill, rec.obj) in uncovered_skills
        keep_pref = index in uncovered_prefs
        if keep_skill or keep_pref:
            subset.append(
                replace(
                    rec,
                    params_after=rec.params_after if keep_skill else {},
                    preference=rec.preference if keep_pref else None,
                    target_after=rec.target_after if keep_pref else None,
                )
            )
    if subset:
        result.from_fallback = distill(subset, kb, facts)
    return result


def _all_offline(
    result: LLMDistillResult,
    records: list[AppliedCorrection],
    kb: KnowledgeBase,
    why: str,
    facts: EpisodeFacts,
) -> LLMDistillResult:
    """The LLM gave nothing usable: the offline path distils every record."""
    result.llm_error = why
    result.fallback_reasons.append(why)
    result.from_fallback = distill(records, kb, facts)
    return result
