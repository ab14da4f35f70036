"""What a correction changes: one typed effect schema, from words to remembered knowledge.

The interpreter (`corrections.interpret`) turns a routed correction into these effects; the
correction loop (`corrections.onthefly`) asks each to stage itself on the skill call it
concerns; distillation (`corrections.distill`) asks each how it becomes a knowledge entry; and
the knowledge base stores plan-level ones as an entry's typed `plan_form`. `Effect` is their
discriminated union (key `kind`), so a JSON effect always reads back as the right class.

The schema lives with the knowledge base because the knowledge base stores it and sits below
corrections: corrections import memory, never the reverse.

Adding an effect: a model here with a `kind` literal, a `stage` (what it does to a running skill
call, through `StagingContext`) and a `to_entry` (what it teaches, or None), and its place in
`Effect`. No consumer has an `isinstance` chain to extend.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol

from pydantic import ConfigDict, Field, TypeAdapter, model_validator

from corrigible.config import Model
from corrigible.errors import ConfigError, UnknownNameError, did_you_mean

if TYPE_CHECKING:
    from corrigible.memory.schema import KnowledgeEntry, Provenance
    from corrigible.policies.skills.specs import SkillParams


class StagingContext(Protocol):
    """What an effect may do to the skill call being corrected (implemented by the loop).

    Nothing changes while effects stage: the loop commits everything a correction staged at
    once, or nothing (a refused correction changes no parameter, target or state).
    """

    obj: str  # the object the call acts on ("red block")
    skill: str  # the library skill running or about to run ("pick")
    is_placing: bool  # whether the call takes a place target
    visible: tuple[str, ...]  # what the robot sees, for replies

    def attributes(self) -> dict[str, str]:
        """Perceived attributes of `obj` (colour, shape)."""

    def stage_param(self, change: SkillParamChange) -> None:
        """Stages a parameter change on the call's object."""

    def stage_target(self, target: str) -> bool:
        """Stages a new place target; False (and a reason noted) when it is not usable."""

    def stage_preference(self, rule: PreferenceMapping) -> None:
        """Records the standing rule that decided the staged target."""

    def stage_control(self, command: str) -> None:
        """Stages stop / pause / resume."""

    def stage_rule(self, rule: Effect, *, acts_now: bool) -> None:
        """Records a plan-level rule said in this correction.

        It is learned even when it does not change this call (`acts_now` False: the reply
        says it is kept for later).
        """

    def stage_step(self, step: AddedPrecondition) -> None:
        """Stages a missing step to run before the call is (re)done ("open the drawer first")."""

    def current_target(self) -> str | None:
        """Where the call (or the object's coming placement) is going, when known."""

    def skip(self, why: str) -> None:
        """Notes why an understood effect changes nothing here."""


class _EffectBase(Model):
    """Base of every effect: immutable, unknown keys refused, `kind` names it in JSON.

    Constructed directly (the interpreter, tests), a failed check raises its own error
    (`ConfigError`, ...); read from JSON, problems stay pydantic `ValidationError`s.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict with its `kind` first."""
        return self.model_dump(mode="json")

    def stage(self, ctx: StagingContext) -> None:
        """Stages what this effect does to the running call (default: nothing it can do)."""
        ctx.skip(f"a {self.kind.replace('_', ' ')} cannot be applied while a skill runs")  # type: ignore[attr-defined]

    def to_entry(self, obj: str, provenance: Provenance) -> KnowledgeEntry | None:
        """The knowledge this effect teaches about `obj` (None: nothing on its own)."""
        return None


class SkillParamChange(_EffectBase):
    """Change one skill parameter by an additive `delta` (m) or a multiplicative `factor`."""

    kind: Literal["skill_param_change"] = "skill_param_change"
    skill: str | None  # declared skill; None = whichever skill is running
    param: str  # the skill's parameter, or a skill-neutral name when skill is None
    delta: float | None = None  # m (or m/s) added to the parameter
    factor: float | None = None  # multiplier (speeds)
    reason: str = ""  # the words that caused the change

    @model_validator(mode="after")
    def _check(self) -> SkillParamChange:
        """Checks the change names a declared skill and parameter (errors say which exist)."""
        from corrigible.policies.skills.specs import generic_params, skill_spec

        if (self.delta is None) == (self.factor is None):
            raise ConfigError(
                f"SkillParamChange needs exactly one of delta/factor, got delta={self.delta} "
                f"factor={self.factor}"
            )
        if self.factor is not None and self.factor <= 0:
            raise ConfigError(f"SkillParamChange.factor must be > 0, got {self.factor}")
        if self.skill is None:
            generic = generic_params()
            if self.param not in generic:
                raise UnknownNameError(
                    f"generic parameter {self.param!r} unknown; known: {sorted(generic)}."
                    + did_you_mean(self.param, generic)
                )
            return self
        skill_spec(self.skill).param(self.param)
        return self

    def param_for(self, skill: str) -> str:
        """The concrete parameter of `skill` this change acts on.

        Raises:
            UnknownNameError: the change does not apply to `skill`.
        """
        from corrigible.policies.skills.specs import generic_params

        if self.skill is not None:
            if skill != self.skill:
                raise UnknownNameError(f"this change is for {self.skill!r}, not {skill!r}")
            return self.param
        per_skill = generic_params()[self.param]
        if skill not in per_skill:
            raise UnknownNameError(
                f"{self.param!r} has no meaning for skill {skill!r}; it applies to "
                f"{sorted(per_skill)}"
            )
        return per_skill[skill]

    def apply(self, params: SkillParams, skill: str) -> SkillParams:
        """`params` (of `skill`) with this change applied, kept inside the declared bounds.

        `SkillParams` applies the bounds (the one place that does, `specs.bound_params`); the
        result's `clipped` says whether this change ran into one.
        """
        name = self.param_for(skill)
        value = params.to_dict()[name]
        new = value + self.delta if self.delta is not None else value * (self.factor or 1.0)
        return params.with_updates({name: round(new, 6)})

    def stage(self, ctx: StagingContext) -> None:  # noqa: D102
        ctx.stage_param(self)

    def words(self) -> str:
        """How the change reads in a reply ("+0.030", "x0.50")."""
        return f"{self.delta:+.3f}" if self.delta is not None else f"x{self.factor:.2f}"


class TargetSubstitution(_EffectBase):
    """Put the object somewhere else: a visible container/object name or a table location."""

    kind: Literal["target_substitution"] = "target_substitution"
    new_target: str | None  # object name ("blue bowl"), location ("middle"); None = "another"
    excluded: str | None = None  # the target to avoid (the current one)

    def stage(self, ctx: StagingContext) -> None:  # noqa: D102
        if self.new_target:
            ctx.stage_target(self.new_target)
        else:
            ctx.skip(f"which target? name it (I see: {', '.join(ctx.visible)})")

    def to_entry(self, obj: str, provenance: Provenance) -> KnowledgeEntry | None:
        """A one-off "not there, here" generalises by the object's colour (DROC plan-level)."""
        from corrigible.sim_envs.vocabulary import attributes_of_name

        color = attributes_of_name(obj).get("color")
        if not self.new_target or color is None:
            return None
        rule = PreferenceMapping(attributes={"color": color}, target=self.new_target)
        return rule.to_entry(obj, provenance)


class ObjectSubstitution(_EffectBase):
    """Act on a different object; `new_object` None means "any but `excluded`"."""

    kind: Literal["object_substitution"] = "object_substitution"
    new_object: str | None  # scene object name, or None when only "not that one" was said
    excluded: str | None = None  # the object to avoid (the current one), if known

    def stage(self, ctx: StagingContext) -> None:
        """While placing, "no, the orange one" names a container: the target, not the object."""
        from corrigible.sim_envs.vocabulary import OBJECT_KINDS

        kind = self.new_object.split()[-1] if self.new_object else None
        if ctx.is_placing and kind in OBJECT_KINDS and OBJECT_KINDS.get(kind).container:
            ctx.stage_target(self.new_object)  # type: ignore[arg-type]  # set when kind is
        elif self.new_object in ctx.visible and self.new_object != ctx.obj and self.excluded:
            # "no, the blue block": the rest of the plan is re-planned on the other object.
            ctx.stage_rule(self, acts_now=False)
        else:
            super().stage(ctx)

    def rule_text(self) -> str:
        """The substitution as a rule of this episode ("use the blue block, not the red block")."""
        return f"use the {self.new_object}, not the {self.excluded}"


class AddedPrecondition(_EffectBase):
    """A step the plan missed that must run before the current one ("open the drawer first")."""

    kind: Literal["added_precondition"] = "added_precondition"
    skill: str  # the missing step's skill, e.g. "open_drawer"
    obj: str | None = None  # its object argument, e.g. "drawer"
    before: str | None = None  # the skill it must precede, when known (e.g. "place")

    def rule_text(self) -> str:
        """The rule as remembered ("open the drawer before putting anything in the drawer")."""
        if self.skill == "open_drawer":
            drawer = self.obj or "drawer"
            return f"open the {drawer} before putting anything in the {drawer}"
        verb = self.skill.replace("_drawer", "").replace("_", " ")
        return f"{verb} the {self.obj} first" if self.obj else f"{verb} first"

    def stage(self, ctx: StagingContext) -> None:  # noqa: D102
        ctx.stage_step(self)
        ctx.stage_rule(self, acts_now=True)

    def to_entry(self, obj: str, provenance: Provenance) -> KnowledgeEntry | None:
        """A `plan_rule`: the step runs before any placement into its object (the drawer)."""
        from corrigible.memory.schema import KnowledgeEntry, ObjectScope

        if self.skill != "open_drawer":
            return None  # a one-off step ("close the drawer first"): nothing general to keep
        return KnowledgeEntry(
            kind="plan_rule",
            text=self.rule_text(),
            plan_form=self,
            scope=ObjectScope(task_pattern=f"*{self.obj or 'drawer'}*"),
            provenance=[provenance],
            tags=["precondition"],
        )


class Ordering(_EffectBase):
    """An ordering constraint between objects: `first` before `last` (either may be None)."""

    kind: Literal["ordering"] = "ordering"
    first: str | None = None  # object (or target) to handle first
    last: str | None = None  # object (or target) to handle last / after `first`
    # A standing order by attributes ("do the blue ones first"): objects matching these
    # perceived attributes go first (or last with `attributes_last`); `first`/`last` unused.
    attributes: dict[str, str] = Field(default_factory=dict)
    attributes_last: bool = False

    @model_validator(mode="after")
    def _check(self) -> Ordering:
        if self.first is None and self.last is None and not self.attributes:
            raise ConfigError("Ordering needs `first`, `last` or `attributes`")
        return self

    def rule_text(self) -> str:
        """The order as remembered ("handle blue things first")."""
        if self.attributes:
            subject = describe_attributes(self.attributes)
            return f"handle {subject} {'last' if self.attributes_last else 'first'}"
        if self.first and self.last:
            return f"handle the {self.first} before the {self.last}"
        return f"handle the {self.first} first" if self.first else f"handle the {self.last} last"

    def rank(self, obj: str, attributes: Mapping[str, str]) -> int:
        """Sort key of one object under this order (0 first, 1 middle, 2 last)."""
        if self.attributes:
            hit = _attributes_match(self.attributes, obj, attributes)
            return (2 if self.attributes_last else 0) if hit else 1
        return 0 if obj == self.first else 2 if obj == self.last else 1

    def stage(self, ctx: StagingContext) -> None:
        """Order cannot change inside one call; the rest of the plan is re-planned with it."""
        ctx.stage_rule(self, acts_now=False)

    def to_entry(self, obj: str, provenance: Provenance) -> KnowledgeEntry | None:
        """A `plan_rule` for an order by attributes, or by the objects named."""
        from corrigible.memory.schema import KnowledgeEntry

        return KnowledgeEntry(
            kind="plan_rule",
            text=self.rule_text(),
            plan_form=self,
            provenance=[provenance],
            tags=["ordering"],
        )


# Attribute keys the robot can test, all perceivable: colour and shape from the name, size
# class from the perceived bounding box, colour group from the colour (sim_envs.palette). A rule
# with another key (written by hand or an LLM) is kept but never matches: it is not applied
# where the robot cannot tell.
RULE_ATTRIBUTES: tuple[str, ...] = ("color", "shape", "size_class", "color_group", "name")


def _attributes_match(wanted: Mapping[str, str], obj: str, attributes: Mapping[str, str]) -> bool:
    """Whether an object's perceived attributes satisfy every key of `wanted`.

    An attribute that is not known does not match (a rule is applied only where it is sure).
    """
    from corrigible.sim_envs.vocabulary import color_group

    for key, value in wanted.items():
        if key == "name":
            if not fnmatch.fnmatch(obj.lower(), value.lower()):
                return False
            continue
        known = attributes.get(key)
        if known is None and key == "color_group" and attributes.get("color"):
            known = color_group(attributes["color"])
        if known is None or known.lower() != value.lower():
            return False
    return True


def describe_attributes(attributes: Mapping[str, str]) -> str:
    """How people name the objects a rule covers ("small red blocks", "warm-coloured things")."""
    from corrigible.sim_envs.vocabulary import noun_of_shape

    if not attributes:
        return "everything"
    words = []
    if attributes.get("size_class"):
        words.append(attributes["size_class"])
    if attributes.get("color_group"):
        words.append(f"{attributes['color_group']}-coloured")
    if attributes.get("color"):
        words.append(attributes["color"])
    shape = attributes.get("shape")
    words.append(f"{noun_of_shape(shape)}s" if shape else "things")
    if attributes.get("name"):
        words.append(f"named {attributes['name']}")
    return " ".join(words)


class PreferenceMapping(_EffectBase):
    """A standing rule: objects matching `attributes` go to (or never to) `target`.

    Attribute keys are perceived attributes ("color", "shape", "size_class", "color_group") or
    "name", an fnmatch glob over object names ("*apple*"); several keys are a conjunction
    ("small red blocks"). With `same_attribute` ("color") the target is a kind ("bowl") and the
    object goes to the one of that kind sharing its attribute ("the bowl of the same colour").
    """

    kind: Literal["preference_mapping"] = "preference_mapping"
    attributes: dict[str, str] = Field(default_factory=dict)  # e.g. {"color": "red"}
    target: str  # object name, location, positional phrase ("left bowl"), or a kind (same_*)
    is_negative: bool = False  # True for "never put ... in ..." / "never use ..."
    same_attribute: Literal["color"] | None = None  # "the bowl of the same colour"

    @property
    def pattern(self) -> str:
        """Attributes as "color=red,shape=cube" ("*" when it applies to everything)."""
        base = ",".join(f"{k}={v}" for k, v in sorted(self.attributes.items())) or "*"
        return f"{base},same={self.same_attribute}" if self.same_attribute else base

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict, with the attribute pattern spelled out."""
        return {**super().to_dict(), "pattern": self.pattern}

    def rule_text(self) -> str:
        """The rule as a person would say it, for replies, traces and the entry's text."""
        subject = describe_attributes(self.attributes)
        if self.same_attribute:
            return f"put {subject} in the {self.target} of the same {self.same_attribute}"
        if self.is_negative:
            what = "anything" if not self.attributes else subject
            return f"never put {what} in the {self.target}"
        return f"put {subject} in the {self.target}"

    def matches(self, object_name: str, attributes: Mapping[str, str] | None = None) -> bool:
        """Whether an object with these (perceived) attributes falls under the rule."""
        return _attributes_match(self.attributes, object_name, attributes or {})

    def resolve_target(
        self, obj: str, attributes: Mapping[str, str], visible: tuple[str, ...] | list[str]
    ) -> str | None:
        """The concrete target for `obj` (None: the rule names nothing usable for it here)."""
        if self.same_attribute:
            value = attributes.get(self.same_attribute)
            name = f"{value} {self.target}" if value else None
            return name if name in visible and name != obj else None
        return self.target

    def forbids(self, obj: str, attributes: Mapping[str, str], target: object) -> bool:
        """Whether this (negative) rule forbids putting `obj` at `target`."""
        return self.is_negative and target == self.target and self.matches(obj, attributes)

    def stage(self, ctx: StagingContext) -> None:
        """Applies the rule to this call when it covers the object; always kept as a rule."""
        attrs = ctx.attributes()
        covers = self.matches(ctx.obj, attrs)
        if self.is_negative:
            current = ctx.current_target()
            if covers and current == self.target:
                alternative = alternative_target(self.target, ctx.visible, ctx.obj)
                if alternative is None:
                    ctx.skip(f"the rule forbids the {self.target}; which one instead?")
                elif ctx.stage_target(alternative):
                    ctx.stage_preference(self)
            ctx.stage_rule(self, acts_now=covers and current == self.target)
            return
        target = self.resolve_target(ctx.obj, attrs, ctx.visible) if covers else None
        acts = False
        if not covers:
            ctx.skip(f"the rule '{self.rule_text()}' does not cover the {ctx.obj}")
        elif target is None:
            ctx.skip(f"there is no {self.target} of the {ctx.obj}'s {self.same_attribute} here")
        elif ctx.stage_target(target):
            ctx.stage_preference(self)
            acts = True
        ctx.stage_rule(self, acts_now=acts)

    def to_entry(self, obj: str, provenance: Provenance) -> KnowledgeEntry | None:
        """The knowledge this rule teaches, scoped by the attributes it names.

        A positive rule is a `preference` (scope: its colour, shape and size class); a negative
        or same-attribute rule is a `plan_rule` (it is not one target for a class of objects).
        """
        from corrigible.memory.schema import KnowledgeEntry, ObjectScope

        scope = ObjectScope(
            color=self.attributes.get("color"),
            shape=self.attributes.get("shape"),
            size_class=self.attributes.get("size_class"),
        )
        plan_rule = self.is_negative or self.same_attribute is not None
        return KnowledgeEntry(
            kind="plan_rule" if plan_rule else "preference",
            text=self.rule_text(),
            plan_form=self,
            scope=scope,
            provenance=[provenance],
            tags=["constraint" if self.is_negative else "preference"],
        )


def alternative_target(forbidden: str, visible: tuple[str, ...], obj: str) -> str | None:
    """The one other visible object of the forbidden target's kind (None: none or several)."""
    kind = forbidden.split()[-1]
    others = [n for n in visible if n.split()[-1] == kind and n not in (forbidden, obj)]
    return others[0] if len(others) == 1 else None


class ControlCommand(_EffectBase):
    """Stop (abandon the task), pause (hold still, keep the task) or resume."""

    kind: Literal["control_command"] = "control_command"
    command: Literal["stop", "pause", "resume"]

    def stage(self, ctx: StagingContext) -> None:  # noqa: D102
        ctx.stage_control(self.command)


Effect = Annotated[
    SkillParamChange
    | TargetSubstitution
    | ObjectSubstitution
    | AddedPrecondition
    | Ordering
    | PreferenceMapping
    | ControlCommand,
    Field(discriminator="kind"),
]
EFFECT_ADAPTER: TypeAdapter[Effect] = TypeAdapter(Effect)
PLAN_KINDS: tuple[str, ...] = (
    "target_substitution",
    "object_substitution",
    "added_precondition",
    "ordering",
    "preference_mapping",
)  # the effects a plan-level knowledge entry may carry as its `plan_form`


def effect_from_dict(data: Mapping[str, Any]) -> Effect:
    """The effect a JSON dict describes (`kind` picks the class; a stray "pattern" is ignored)."""
    data = {k: v for k, v in data.items() if not (k == "pattern" and "attributes" in data)}
    return EFFECT_ADAPTER.validate_python(data)


__all__ = [
    "AddedPrecondition",
    "ControlCommand",
    "EFFECT_ADAPTER",
    "Effect",
    "ObjectSubstitution",
    "Ordering",
    "PLAN_KINDS",
    "PreferenceMapping",
    "RULE_ATTRIBUTES",
    "SkillParamChange",
    "StagingContext",
    "TargetSubstitution",
    "alternative_target",
    "describe_attributes",
    "effect_from_dict",
]
