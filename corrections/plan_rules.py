"""Plan-level knowledge (DROC's plan-level half): standing rules the planner must follow.

A plan-level correction ("open the drawer first", "never use the green bowl", "the cylinders
go in the pink bowl", "do the blue ones first", "put each block in the bowl of the same
colour") is a typed effect (`memory.effects`). This module is everything that happens to such
a rule after the correction loop recorded it (`AppliedCorrection.rules`):

* `distill_plan_rules` writes each rule as a knowledge entry (`plan_rule`, or `preference` for
  a positive target rule), kept apart from the skill-parameter distiller (`corrections.distill`).
* `RuleBook` gathers the rules in force for one instruction: those said in this episode and
  the stored ones that concern the instruction and the objects in the scene.
* `RuledPlanner` wraps any planner: the rules go into its context (the LLM planner puts them in
  its prompt) and the program it returns is checked and rewritten (`rewrite_program`: targets,
  missing steps, order of the top-level placements), each change noted with the rule behind it.
* `PlanRuleGuard` is a link of the around-skill chain that applies the same rules to each call
  a program makes (loops the rewriter cannot see through, and rules said mid-episode).

Every change is traced ("plan_rule.applied": which rule, what it changed and why).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from corrigible.memory.effects import (
    AddedPrecondition,
    Effect,
    ObjectSubstitution,
    Ordering,
    PreferenceMapping,
    TargetSubstitution,
    alternative_target,
)
from corrigible.memory.schema import KnowledgeEntry, Provenance
from corrigible.policies.middleware import Proceed, SkillCall
from corrigible.policies.planners.base import PlanContext, Planner, Program
from corrigible.sim_envs.vocabulary import (
    attributes_of_name,
    color_group,
    kind_names,
    kind_of_name,
)

if TYPE_CHECKING:
    from corrigible.corrections.onthefly import AppliedCorrection, CorrectionLoop
    from corrigible.memory import KnowledgeBase
    from corrigible.policies.robot_api import RobotAPI

PLAN_RULE_KINDS: tuple[str, ...] = ("plan_rule", "preference")
_PUT = "put_first_on_second"


def perceived_attributes(name: str, size_class: str | None = None) -> dict[str, str]:
    """What a rule may test about an object: colour, shape (its name), size, colour group."""
    attrs = attributes_of_name(name)
    if size_class:
        attrs["size_class"] = size_class
    if attrs.get("color") and color_group(attrs["color"]):
        attrs["color_group"] = color_group(attrs["color"])  # type: ignore[assignment]
    return attrs


@dataclass(frozen=True)
class Rule:
    """One rule in force, with where it came from (for the trace)."""

    form: Effect
    source: str  # "said in this episode" or "learned in episode <id>"
    entry: KnowledgeEntry | None = None  # the stored entry, when it came from memory

    @property
    def text(self) -> str:
        """The rule as a person would say it."""
        return self.form.rule_text()  # type: ignore[union-attr]


# ------------------------------------------------------------------------------ distillation


@dataclass(frozen=True)
class WrittenRule:
    """One plan-level entry written (or superseding an equal older one)."""

    entry_id: str
    kind: str
    text: str
    superseded: str | None


def _same_rule(a: KnowledgeEntry, b: KnowledgeEntry) -> bool:
    fa, fb = a.plan_form, b.plan_form
    if fa is None or fb is None or fa.kind != fb.kind:
        return False
    if isinstance(fa, PreferenceMapping) and isinstance(fb, PreferenceMapping):
        # The same class of objects: a newer target for it replaces the older one.
        return (fa.pattern, fa.is_negative) == (fb.pattern, fb.is_negative) and (
            not fa.is_negative or fa.target == fb.target
        )
    return a.text == b.text


def distill_plan_rules(
    records: Sequence[AppliedCorrection], kb: KnowledgeBase, *, episode: str
) -> list[WrittenRule]:
    """Writes the plan-level rules said in one episode's applied corrections.

    A positive target rule that decided a placement is already written by the skill-level
    distiller (through `AppliedCorrection.target_effect`); every other rule is written here,
    so "never use the green bowl" or "do the blue ones first" is never lost because it did not
    change the call it was said during. Rules learned from a task that failed are kept too: a
    plan rule states what the person wants, not how well a skill went.
    """
    written: list[WrittenRule] = []
    for rec in records:
        if not rec.applied:
            continue
        for rule in rec.rules:
            already = rule == rec.preference and not (
                isinstance(rule, PreferenceMapping) and (rule.is_negative or rule.same_attribute)
            )
            if already:
                continue
            provenance = Provenance(episode=episode, correction_texts=[rec.correction.text])
            entry = rule.to_entry(rec.obj or "", provenance)
            if entry is None:
                continue
            old = next((e for e in kb.list(kind=entry.kind) if _same_rule(e, entry)), None)
            if old is not None:
                entry = entry.model_copy(update={"provenance": [*old.provenance, provenance]})
                written.append(
                    WrittenRule(kb.supersede(old.id, entry), entry.kind, entry.text, old.id)
                )
            else:
                written.append(WrittenRule(kb.add(entry), entry.kind, entry.text, None))
    return written


# ------------------------------------------------------------------------------ which rules


def _mentions(rule: Effect, instruction: str, scene: Sequence[str], sizes: dict[str, str]) -> bool:
    """Whether a stored rule concerns this instruction and scene (retrieval by attributes).

    The objects considered are those the instruction names, or the whole scene when it names
    none ("sort everything"); a rule concerns them when its attributes cover one of them.
    """
    text = instruction.lower()
    named = [n for n in scene if n in text]
    if not isinstance(rule, AddedPrecondition) and any(_movable(n) for n in named):
        scene = named
    if isinstance(rule, AddedPrecondition):
        # The drawer need not be named: a target rule may send things into it.
        return (rule.obj or "drawer") in scene
    if isinstance(rule, Ordering):
        if rule.attributes:
            return any(rule.rank(n, perceived_attributes(n, sizes.get(n))) != 1 for n in scene)
        return any(o in scene for o in (rule.first, rule.last) if o)
    if isinstance(rule, PreferenceMapping):
        covered = any(rule.matches(n, perceived_attributes(n, sizes.get(n))) for n in scene)
        if rule.is_negative:
            return covered and rule.target in scene
        return covered
    if isinstance(rule, TargetSubstitution):
        return False  # a one-off: the distiller turns it into a preference
    return False


class RuleBook:
    """The plan rules in force: said in this episode (the loop's records) and remembered.

    Args:
        kb: the knowledge base (None: only this episode's rules).
        loop: the correction loop whose applied corrections hold this episode's rules.
        sizes: object -> perceived size class.
    """

    def __init__(
        self,
        kb: KnowledgeBase | None,
        loop: CorrectionLoop | None,
        sizes: dict[str, str],
    ) -> None:
        self.kb = kb
        self.loop = loop
        self.sizes = sizes
        self.stored: list[Rule] = []

    def recall(self, instruction: str, scene: Sequence[str]) -> list[Rule]:
        """Looks up the stored rules that concern `instruction` in this scene (kept for calls)."""
        self.stored = []
        if self.kb is None or len(self.kb) == 0:
            return []
        for kind in PLAN_RULE_KINDS:
            for entry in self.kb.list(kind=kind):
                form = entry.plan_form
                if form is None or not _mentions(form, instruction, scene, self.sizes):
                    continue
                where = entry.provenance[-1].episode if entry.provenance else "?"
                self.stored.append(Rule(form, f"learned in episode {where}", entry))
        return list(self.stored)

    def episode_rules(self) -> list[Rule]:
        """Rules said in this episode, newest last."""
        if self.loop is None:
            return []
        return [
            Rule(rule, f'said in this episode: "{rec.correction.text}"')
            for rec in self.loop.records
            if rec.applied
            for rule in rec.rules
        ]

    def in_force(self) -> list[Rule]:
        """Stored rules, then this episode's (a later rule about the same objects wins)."""
        return [*self.stored, *self.episode_rules()]


# ------------------------------------------------------------------------------ rewriting


@dataclass
class _Block:
    """One top-level statement of a program, with the comment lines above it."""

    lines: list[str]
    put: tuple[str, Any] | None = None  # (object, target) of a literal put_first_on_second
    opens: str | None = None  # the drawer a literal open_drawer opens


def _blocks(source: str) -> list[_Block] | None:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    lines = source.splitlines()
    blocks: list[_Block] = []
    start = 0
    for node in tree.body:
        end = node.end_lineno or node.lineno
        block = _Block(lines[start:end])
        start = end
        call = node.value if isinstance(node, ast.Expr) else None
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name):
            args = [a.value for a in call.args if isinstance(a, ast.Constant)]
            if call.func.id == _PUT and len(args) == 2 == len(call.args):
                block.put = (str(args[0]), args[1])
            elif call.func.id == "open_drawer":
                block.opens = str(args[0]) if args else "drawer"
        blocks.append(block)
    if start < len(lines):
        blocks.append(_Block(lines[start:]))
    return blocks


def _retarget(blocks: list[_Block], i: int, obj: str, old: Any, new: str) -> None:
    """Points the put of block `i` (and the checkpoint expecting it) at a new target."""
    blocks[i].put = (obj, new)
    blocks[i].lines = [
        line.replace(f"{_PUT}({obj!r}, {old!r})", f"{_PUT}({obj!r}, {new!r})")
        for line in blocks[i].lines
    ]
    if isinstance(old, str):
        for block in blocks[i + 1 :]:
            block.lines = [
                line.replace(f"({obj}, {old})", f"({obj}, {new})") for line in block.lines
            ]


def _reobject(blocks: list[_Block], i: int, old: str, new: str) -> None:
    """Makes the put of block `i` (and the checkpoints after it) act on another object."""
    target = blocks[i].put[1]  # type: ignore[index]
    blocks[i].put = (new, target)
    blocks[i].lines = [
        line.replace(f"{_PUT}({old!r}, ", f"{_PUT}({new!r}, ") for line in blocks[i].lines
    ]
    for block in blocks[i + 1 :]:
        block.lines = [
            line.replace(f"({old}, ", f"({new}, ").replace(f"'{old} placed'", f"'{new} placed'")
            for line in block.lines
        ]


def target_for(
    rules: Iterable[Rule],
    obj: str,
    attrs: dict[str, str],
    target: Any,
    visible: Sequence[str],
) -> tuple[Any, Rule | None]:
    """The target the rules give `obj` (and the deciding rule), starting from `target`.

    Positive rules apply in order (a later one wins: this episode's word beats memory, a
    later correction an earlier one); then a negative rule that forbids the result moves it
    to the only other object of the same kind, when there is exactly one.
    """
    chosen, why = target, None
    # A rule says which container things go in: it does not turn a stack, a named spot or a
    # relative move ("5 cm to the left") into a trip to a bowl.
    into_container = isinstance(target, str) and kind_of_name(target) in kind_names(container=True)
    for rule in rules:
        form = rule.form
        if (
            into_container
            and isinstance(form, PreferenceMapping)
            and not form.is_negative
            and form.matches(obj, attrs)
        ):
            new = form.resolve_target(obj, attrs, tuple(visible))  # type: ignore[union-attr]
            if new is not None and (new in visible or kind_of_name(new) is None) and new != obj:
                if new != chosen:
                    chosen, why = new, rule
    for rule in rules:
        form = rule.form
        if isinstance(form, PreferenceMapping) and form.forbids(obj, attrs, chosen):
            alternative = alternative_target(form.target, tuple(visible), obj)
            if alternative is not None:
                chosen, why = alternative, rule
    return chosen, why


def rewrite_program(
    source: str,
    rules: Sequence[Rule],
    ctx: PlanContext,
    *,
    sizes: dict[str, str] | None = None,
    done: Callable[[str, Any], bool] | None = None,
) -> tuple[str, list[str]]:
    """Checks a program against the rules and rewrites its top-level placements.

    Targets of literal `put_first_on_second(obj, target)` calls follow the target rules; a
    placement into a drawer that no earlier step opens gets the rule's `open_drawer` before it;
    runs of consecutive placements are reordered by the ordering rules (stable); placements
    `done` already holds (a re-plan after a mid-task correction) are dropped. Statements the
    rewriter cannot read (loops, computed names) are left to `PlanRuleGuard` at run time.

    Returns:
        The new source (the same text when nothing changed) and one note per change.
    """
    sizes = sizes or {}
    blocks = _blocks(source)
    if not blocks or not rules:
        return source, []
    notes: list[str] = []
    visible = ctx.object_names
    swaps = {
        r.form.excluded: r.form.new_object
        for r in rules
        if isinstance(r.form, ObjectSubstitution) and r.form.excluded and r.form.new_object
    }
    for i, block in enumerate(blocks):
        if block.put is None:
            continue
        obj, target = block.put
        if swaps.get(obj) is not None and swaps[obj] != target:
            _reobject(blocks, i, obj, swaps[obj])
            notes.append(f"{obj} -> {swaps[obj]} (said in this episode)")
            obj = swaps[obj]
        attrs = perceived_attributes(obj, sizes.get(obj))
        new, rule = target_for(rules, obj, attrs, target, visible)
        if rule is not None and new != target:
            _retarget(blocks, i, obj, target, new)
            notes.append(f"{obj}: {target} -> {new} by the rule '{rule.text}' ({rule.source})")
    if done is not None:
        kept = []
        for block in blocks:
            if block.put is not None and done(*block.put):
                notes.append(f"{block.put[0]} is already in the {block.put[1]}: step dropped")
                continue
            kept.append(block)
        blocks = kept
    orders = [r for r in rules if isinstance(r.form, Ordering)]
    if orders:
        blocks = _reorder(blocks, orders, sizes, notes)
    pre = [r for r in rules if isinstance(r.form, AddedPrecondition)]
    if pre:
        blocks = _add_steps(blocks, pre, notes)
    if not notes:
        return source, []
    text = "\n".join(line for block in blocks for line in block.lines)
    return text + "\n", notes


def _reorder(
    blocks: list[_Block], orders: list[Rule], sizes: dict[str, str], notes: list[str]
) -> list[_Block]:
    """Sorts each run of placements (a put and the checkpoint after it) by the ordering rules."""
    units: list[list[_Block]] = []
    for block in blocks:
        head = units[-1][0].put if units else None
        if block.put is None and head is not None and _checks_only(block, head[0]):
            units[-1].append(block)
        else:
            units.append([block])
    out: list[list[_Block]] = []
    run: list[list[_Block]] = []

    def flush() -> None:
        if len(run) > 1:

            def key(unit: list[_Block]) -> tuple[int, ...]:
                obj = unit[0].put[0]  # type: ignore[index]
                attrs = perceived_attributes(obj, sizes.get(obj))
                return tuple(r.form.rank(obj, attrs) for r in reversed(orders))  # type: ignore[union-attr]

            ordered = sorted(run, key=key)
            if ordered != run:
                names = [u[0].put[0] for u in ordered]  # type: ignore[index]
                rule = orders[-1]
                notes.append(f"order {names} by the rule '{rule.text}' ({rule.source})")
            out.extend(ordered)
        else:
            out.extend(run)
        run.clear()

    for unit in units:
        if unit[0].put is not None:
            run.append(unit)
        else:
            flush()
            out.append(unit)
    flush()
    return [b for unit in out for b in unit]


def _checks_only(block: _Block, obj: str) -> bool:
    """Whether a block is a checkpoint about `obj` alone (it moves with that placement)."""
    line = block.lines[-1].lstrip() if block.lines else ""
    return line.startswith("checkpoint(") and f"({obj}, " in line and " and " not in line


def _movable(name: str) -> bool:
    return kind_of_name(name) in kind_names(graspable=True)


def _add_steps(blocks: list[_Block], pre: list[Rule], notes: list[str]) -> list[_Block]:
    """Inserts a rule's missing step (open the drawer) before the first placement needing it."""
    out: list[_Block] = []
    opened: set[str] = set()
    for block in blocks:
        if block.opens is not None:
            opened.add(block.opens)
        if block.put is not None:
            for rule in pre:
                form = rule.form
                assert isinstance(form, AddedPrecondition)
                drawer = form.obj or "drawer"
                if form.skill == "open_drawer" and block.put[1] == drawer and drawer not in opened:
                    out.append(_Block([f"open_drawer({drawer!r})"], opens=drawer))
                    opened.add(drawer)
                    notes.append(
                        f"open_drawer({drawer!r}) before putting the {block.put[0]} in it, by "
                        f"the rule '{rule.text}' ({rule.source})"
                    )
        out.append(block)
    return out


class RuledPlanner(Planner):
    """Any planner, with the plan rules in force put in its context and applied to its program.

    Args:
        inner: the planner that writes programs (grammar, LLM, replay).
        book: where the rules in force come from.
        sizes: object -> perceived size class.
        trace: called with one dict per planning ("plan.rules" events).
        done: whether an (object, target) placement already holds (for re-plans).
    """

    name = "ruled"

    def __init__(
        self,
        inner: Planner,
        book: RuleBook,
        *,
        sizes: dict[str, str] | None = None,
        trace: Callable[[dict[str, Any]], None] | None = None,
        done: Callable[[str, Any], bool] | None = None,
    ) -> None:
        self.inner = inner
        self.book = book
        self.name = inner.name  # type: ignore[misc]  # traces name the planner that wrote it
        self.sizes = sizes or {}
        self.trace = trace
        self.done = done
        self.replanning = False  # set by the session for a re-plan after a plan correction

    def plan(self, instruction: str, context: PlanContext) -> Program:
        """The inner planner's program, checked and rewritten by the rules in force."""
        self.book.recall(instruction, context.object_names)
        rules = self.book.in_force()
        texts = [r.text for r in rules]
        context.knowledge = [*context.knowledge, *(t for t in texts if t not in context.knowledge)]
        program = self.inner.plan(instruction, context)
        source, notes = rewrite_program(
            program.source,
            rules,
            context,
            sizes=self.sizes,
            done=self.done if self.replanning else None,
        )
        program.source = source
        program.notes = [*program.notes, *notes]
        if self.trace is not None and (rules or notes):
            self.trace({"instruction": instruction, "rules": texts, "changes": notes})
        return program


# ------------------------------------------------------------------------------ at run time


class PlanRuleGuard:
    """Applies the plan rules in force to each skill call (the around-skill chain).

    It sits after memory lookup and before the live-corrections link, so the person's word in
    this episode still beats every rule. It changes a placement's target (preferences by any
    attribute, "same colour", "never use ..."), and runs a missing step before a placement
    that needs it (a closed drawer that a rule says to open first).

    Args:
        api: the robot API.
        book: the rules in force.
        sizes: object -> perceived size class.
    """

    def __init__(self, api: RobotAPI, book: RuleBook, sizes: dict[str, str]) -> None:
        self.api = api
        self.book = book
        self.sizes = sizes
        self.applied: list[dict[str, Any]] = []

    def around_skill(self, call: SkillCall, proceed: Proceed) -> bool:
        """Retargets and completes the call by the rules, then runs it."""
        obj = call.obj
        if obj is None or not call.spec.places:
            return proceed(call)
        rules = self.book.in_force()
        if not rules:
            return proceed(call)
        visible = self.api.get_obj_names()
        attrs = perceived_attributes(obj, self.sizes.get(obj))
        new, rule = target_for(rules, obj, attrs, call.target, visible)
        if rule is not None and new != call.target and (isinstance(new, str) and new in visible):
            self._note(rule, obj, f"place target {call.target} -> {new}")
            call.target = new
        self._open_first(call, rules)
        return proceed(call)

    def _open_first(self, call: SkillCall, rules: list[Rule]) -> None:
        target = call.target
        if not isinstance(target, str) or kind_of_name(target) != "drawer":
            return
        for rule in rules:
            form = rule.form
            if (
                isinstance(form, AddedPrecondition)
                and form.skill == "open_drawer"
                and (form.obj or "drawer") == target
                and self._closed(target)
            ):
                self._note(rule, call.obj or "", f"open_drawer({target!r}) first: it is closed")
                with _suppress_skill_error():
                    self.api.open_drawer(target)
                return

    def _closed(self, drawer: str) -> bool:
        from corrigible.sim_envs.objects import DRAWER_TRAVEL

        opening = self.api.skills.world().articulations.get(drawer)
        return opening is not None and opening < 0.6 * DRAWER_TRAVEL

    def _note(self, rule: Rule, obj: str, change: str) -> None:
        from corrigible.corrections.retrieval import is_false_application

        record = {"rule": rule.text, "source": rule.source, "obj": obj, "change": change}
        self.applied.append(record)
        self.api.env.trace.emit("plan_rule.applied", **record)
        if rule.entry is not None:  # knowledge from memory: judged like every other use
            false = is_false_application(rule.entry, self.api, obj)
            self.api.env.trace.emit(
                "knowledge.used",
                skill="place",
                obj=obj,
                mode="plan_rule",
                entry_id=rule.entry.id,
                entry_kind=rule.entry.kind,
                text=rule.entry.text,
                reason=f"applies: {rule.text} ({rule.source}); {change}",
                false_application=false,
            )


def _suppress_skill_error():  # noqa: ANN202 - a context manager
    import contextlib

    from corrigible.errors import SkillError

    return contextlib.suppress(SkillError)


__all__ = [
    "PLAN_RULE_KINDS",
    "PlanRuleGuard",
    "Rule",
    "RuleBook",
    "RuledPlanner",
    "WrittenRule",
    "distill_plan_rules",
    "perceived_attributes",
    "rewrite_program",
    "target_for",
]
