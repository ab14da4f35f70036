"""Failure localisation: the trace of one attempt fused into a classified failure record.

The classes (README.md has the full definitions and the evidence each rests on):

- `code_error`: the program cannot run as written: syntax, a forbidden construct, an unknown
  function, a Python exception, or an API call with a name or argument the API refuses.
- `grasp_failure`: a pick closed on the object but lost it (it slipped while lifting, or the
  fingers touched it and missed), or the object was no longer held at the place.
- `wrong_object`: a subgoal's expectation is about object X, but the subgoal moved another
  object and not X.
- `wrong_target`: X was moved, but to another container or place than expected.
- `placement_inaccuracy`: X was put at the right target but landed outside what the target
  accepts (the place skill's check, or the monitor's, measured it off).
- `plan_error`: the plan misses a step (X is never acted on, so the expectation cannot hold),
  orders steps wrongly (placing into a closed drawer), or the planner gave no program.
- `perception_error`: the robot aimed where nothing was (a grasp that touched nothing), or the
  skill's own success check and the monitor disagree on a placement.
- `unknown`: none of the above explains the trace (e.g. the run was stopped).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from corrigible.corrections.repair.program import ProgramParts

FailureClass = Literal[
    "code_error",
    "grasp_failure",
    "wrong_object",
    "wrong_target",
    "placement_inaccuracy",
    "plan_error",
    "perception_error",
    "unknown",
]
FAILURE_CLASSES: tuple[str, ...] = FailureClass.__args__  # type: ignore[attr-defined]
_STATIC = ("syntax", "forbidden", "unknown_api", "timeout", "memory", "limit")
_PLACING = ("put_first_on_second", "place")
_DISTANCE = re.compile(r"is (\d+(?:\.\d+)?) cm from .*\(limit (\d+(?:\.\d+)?)\)")


class FailureRecord(BaseModel):
    """Where and why an attempt failed, with the evidence it rests on."""

    model_config = ConfigDict(extra="forbid")

    failure_class: FailureClass  # one of FAILURE_CLASSES
    line: int | None = None  # 1-based program line of the failure
    line_text: str = ""  # that line's source
    subgoal: int | None = None  # 0-based subgoal of the program (`program.split_program`)
    subgoal_name: str | None = None  # the subgoal's checkpoint name
    expect: str | None = None  # the expectation that failed, if one did
    obj: str | None = None  # the object the failed subgoal is about
    target: str | None = None  # where it should have gone
    moved_instead: list[str] = Field(default_factory=list)  # wrong_object: what was moved
    message: str = ""  # one line: what happened
    evidence: list[str] = Field(default_factory=list)  # trace facts it rests on, in order

    def summary(self) -> str:
        """One line for `corrigible trace show` and logs."""
        where = f"line {self.line}" if self.line else "no line"
        sub = f", subgoal {self.subgoal} {self.subgoal_name or ''}".rstrip()
        return (
            f"{self.failure_class} at {where}{sub if self.subgoal is not None else ''}: "
            + (self.message[:200])
        )


def _atom_parts(atom: str) -> tuple[str, list[str]]:
    m = re.match(r"\s*([a-z_]+)\((.*)\)\s*$", atom)
    if not m:
        return atom, []
    return m.group(1), [a.strip() for a in m.group(2).split(",") if a.strip()]


def _placements(events: list[dict[str, Any]]) -> list[tuple[str, Any, bool]]:
    """(object, target, success) of every place skill in `events`."""
    out = []
    for e in events:
        if e.get("kind") == "skill" and e.get("skill") == "place":
            args = e.get("args") or {}
            out.append((args.get("obj"), args.get("target"), bool(e.get("success"))))
    return out


def _judge_atom(
    atom: dict[str, Any], placed: list[tuple[str, Any, bool]], expected: set[str] | None = None
) -> tuple[str, str | None, str | None, str]:
    """(class, object, target, message) for one failing atom and the placements before it.

    `expected` names every object of the whole expectation: moving one of those instead is a
    step done, not a wrong object.
    """
    name, args = _atom_parts(str(atom.get("atom", "")))
    obj = args[0] if args else None
    target = args[1] if name in ("in", "on", "at") and len(args) > 1 else None
    why = str(atom.get("why", ""))
    if name in ("in", "on", "at") and obj is not None:
        moved = [p for p in placed if p[0] == obj]
        if not moved:
            others = sorted({str(p[0]) for p in placed if p[0] not in (expected or set())})
            if others:
                return "wrong_object", obj, target, f"moved {others} instead of the {obj}"
            return "plan_error", obj, target, f"nothing ever moved the {obj} (a missing step)"
        last_target = moved[-1][1]
        if target is not None and isinstance(last_target, str) and last_target != target:
            return "wrong_target", obj, target, f"the {obj} went to {last_target}, not {target}"
        m = _DISTANCE.search(why)
        if m and float(m.group(1)) <= 2.5 * float(m.group(2)):
            return "placement_inaccuracy", obj, target, f"the {obj} landed off target: {why}"
        if isinstance(last_target, list) and target is not None:
            return "wrong_target", obj, target, f"the {obj} went to {last_target}, not {target}"
        return (
            "perception_error",
            obj,
            target,
            f"the place skill reported success but the monitor disagrees: {why}",
        )
    names = [a for a in args if a not in ("horizontal", "vertical")]
    moved_names = {p[0] for p in placed}
    missing = [n for n in names if n not in moved_names]
    if name in ("stacked", "line", "together", "apart") and missing and len(missing) == len(names):
        return "plan_error", None, None, f"none of {names} was moved"
    if name in ("stacked", "line", "together", "apart"):
        return "placement_inaccuracy", None, None, f"{atom.get('atom')}: {why}"
    if name in ("open", "closed"):
        return "plan_error", args[0] if args else None, None, f"{atom.get('atom')}: {why}"
    return "unknown", obj, target, f"{atom.get('atom')}: {why}"


def _named(atoms: list[dict[str, Any]]) -> set[str]:
    """The objects an expectation's atoms are about (their first arguments)."""
    return {args[0] for a in atoms if (args := _atom_parts(str(a.get("atom", "")))[1])}


def _skill_failure(event: dict[str, Any]) -> tuple[str, str]:
    skill, message = str(event.get("skill")), str(event.get("message", ""))
    if skill == "pick":
        if "slipped" in message:
            return "grasp_failure", message
        if "already holding" in message:
            return "plan_error", message
        if "touched nothing" in message:
            return "perception_error", f"aimed where nothing was: {message}"
        return "grasp_failure", message
    if skill == "place":
        if "not holding" in message:
            return "grasp_failure", f"the object was lost before the place: {message}"
        return "placement_inaccuracy", message
    return "unknown", f"{skill} failed: {message}"


def localise(
    events: list[dict[str, Any]],
    parts: ProgramParts,
    *,
    final: dict[str, Any] | None = None,
) -> FailureRecord | None:
    """The failure record of one attempt, or None when it did not fail.

    Args:
        events: the trace events of the attempt, in order (plan, program, api, skill,
            checkpoint events).
        parts: the attempt's program as subgoals.
        final: the monitor's verdict on the task's expectation after a program that ran to
            its end (`CheckpointVerdict.to_dict()`), if one was judged.
    """
    evidence: list[str] = []
    plan_errors = [e for e in events if e.get("kind") == "plan" and e.get("error")]
    if plan_errors:
        message = str(plan_errors[-1]["error"])
        return FailureRecord(
            failure_class="plan_error", message=message, evidence=[f"plan: {message}"]
        )
    results = [e for e in events if e.get("kind") == "program.result"]
    result = results[-1] if results else {}
    line = result.get("line") if isinstance(result.get("line"), int) else None
    sub = parts.at_line(line)

    def record(cls: str, message: str, **fields: Any) -> FailureRecord:
        text = ""
        if line is not None:
            lines = [s for s in parts.subgoals if s.first_line <= line <= s.last_line]
            if lines:
                src = lines[0].source.splitlines()
                offset = line - lines[0].first_line
                text = src[offset].strip() if 0 <= offset < len(src) else ""
        return FailureRecord(
            failure_class=cls,  # type: ignore[arg-type]
            line=fields.pop("line", line),
            line_text=text,
            subgoal=sub.index if sub else fields.pop("subgoal", None),
            subgoal_name=sub.name if sub else None,
            message=message[:500],
            evidence=evidence,
            **fields,
        )

    if result.get("status") == "error":
        evidence.append(
            f"program.result: {result.get('error_class')} at line {line}: "
            f"{str(result.get('message', ''))[:300]}"
        )
        error_class = str(result.get("error_class"))
        if error_class == "timeout" and "inside the robot API call" in str(result.get("message")):
            return record("unknown", f"a skill outlasted the time limit: {result.get('message')}")
        if error_class in _STATIC:
            return record("code_error", str(result.get("message", "")))
        if error_class == "interrupted":
            return record("unknown", f"the run was stopped: {result.get('message', '')}")
        verdicts = [e for e in events if e.get("kind") == "checkpoint.verdict"]
        if verdicts and verdicts[-1].get("holds") is False and verdicts[-1].get("line") == line:
            return _checkpoint_failure(events, evidence, record)
        api_errors = [e for e in events if e.get("kind") == "api" and e.get("error")]
        failing = api_errors[-1] if api_errors else None
        if failing is None:  # a Python exception in the program's own code
            return record("code_error", str(result.get("message", "")))
        error = str(failing["error"])
        evidence.append(f"api {failing.get('name')}: {error[:300]}")
        if error.startswith("CheckpointFailedError"):
            return _checkpoint_failure(events, evidence, record)
        failed_skills = [e for e in events if e.get("kind") == "skill" and not e.get("success")]
        if error.startswith("SkillError") and failed_skills:
            skill = failed_skills[-1]
            evidence.append(f"skill {skill.get('skill')} failed: {skill.get('message')}")
            cls, message = _skill_failure(skill)
            args = skill.get("args") or {}
            return record(
                cls,
                message,
                obj=args.get("obj"),
                target=args.get("target") if isinstance(args.get("target"), str) else None,
                expect=sub.expect if sub else None,
            )
        if "open it first" in error:
            return record("plan_error", f"a step is missing before this one: {error}")
        return record("code_error", error)
    if final is not None and final.get("holds") is False:
        evidence.append(f"final expectation fails ({final.get('monitor')}): {final.get('reason')}")
        atoms = final.get("atoms", [])
        failing = [a for a in atoms if a.get("holds") is False]
        expected = _named(atoms)
        placed = _placements(events)
        cls, obj, target, message = _judge_atom(failing[0], placed, expected)
        instead = sorted({str(p[0]) for p in placed if p[0] not in expected})
        return record(
            cls,
            message,
            obj=obj,
            target=target,
            expect=str(failing[0].get("atom")),
            moved_instead=instead if cls == "wrong_object" else [],
        )
    return None


def _checkpoint_failure(
    events: list[dict[str, Any]], evidence: list[str], record: Any
) -> FailureRecord:
    """A failed checkpoint: what the subgoal moved, against what it expected."""
    verdicts = [i for i, e in enumerate(events) if e.get("kind") == "checkpoint.verdict"]
    last = verdicts[-1]
    verdict = events[last]
    before = verdicts[-2] if len(verdicts) > 1 else -1
    evidence.append(
        f"checkpoint {verdict.get('name')!r} ({verdict.get('monitor')}): {verdict.get('reason')}"
    )
    failing = [a for a in verdict.get("atoms", []) if a.get("holds") is False]
    atom = failing[0] if failing else {"atom": verdict.get("expect"), "why": verdict.get("reason")}
    placed = _placements(events[before + 1 : last])
    evidence.extend(f"placed {o} -> {t} ({'ok' if ok else 'failed'})" for o, t, ok in placed)
    expected = _named(verdict.get("atoms", []))
    cls, obj, target, message = _judge_atom(atom, placed, expected)
    instead = sorted({str(p[0]) for p in placed if p[0] not in expected})
    return record(
        cls,
        message,
        obj=obj,
        target=target,
        expect=str(verdict.get("expect")),
        line=verdict.get("line"),
        moved_instead=instead if cls == "wrong_object" else [],
    )


__all__ = ["FAILURE_CLASSES", "FailureClass", "FailureRecord", "localise"]
