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
        else:
            super().stage(ctx)


class AddedPrecondition(_EffectBase):
    """A step the plan missed that must run before the current one ("open the drawer first")."""

    kind: Literal["added_precondition"] = "added_precondition"
    skill: str  # the missing step's skill, e.g. "open_drawer"
    obj: str | None = None  # its object argument, e.g. "drawer"
    before: str | None = None  # the skill it must precede, when known (e.g. "place")


class Ordering(_EffectBase):
    """An ordering constraint between objects: `first` before `last` (either may be None)."""

    kind: Literal["ordering"] = "ordering"
    first: str | None = None  # object (or target) to handle first
    last: str | None = None  # object (or target) to handle last / after `first`

    @model_validator(mode="after")
    def _check(self) -> Ordering:
        if self.first is None and self.last is None:
            raise ConfigError("Ordering needs `first` or `last`")
        return self


class PreferenceMapping(_EffectBase):
    """A standing rule: objects matching `attributes` go to (or never to) `target`.

    Attribute keys are perceived attributes ("color", "shape", "size_class", "color_group") or
    "name", an fnmatch glob over object names ("*apple*").
    """

    kind: Literal["preference_mapping"] = "preference_mapping"
    attributes: dict[str, str] = Field(default_factory=dict)  # e.g. {"color": "red"}
    target: str  # object name, location or positional phrase ("left bowl")
    is_negative: bool = False  # True for "never put ... in ..."

    @property
    def pattern(self) -> str:
        """Attributes as "color=red,shape=cube" ("*" when it applies to everything)."""
        return ",".join(f"{k}={v}" for k, v in sorted(self.attributes.items())) or "*"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict, with the attribute pattern spelled out."""
        return {**super().to_dict(), "pattern": self.pattern}

    def matches(self, object_name: str, attributes: Mapping[str, str] | None = None) -> bool:
        """Whether an object with these (perceived) attributes falls under the rule."""
        attributes = attributes or {}
        for key, wanted in self.attributes.items():
            if key == "name":
                if not fnmatch.fnmatch(object_name.lower(), wanted.lower()):
                    return False
            elif attributes.get(key) != wanted:
                return False
        return True

    def stage(self, ctx: StagingContext) -> None:  # noqa: D102
        if self.is_negative:
            super().stage(ctx)
        elif not self.matches(ctx.obj, ctx.attributes()):
            ctx.skip(f"the rule {self.pattern} -> {self.target} does not cover the {ctx.obj}")
        elif ctx.stage_target(self.target):
            ctx.stage_preference(self)

    def to_entry(self, obj: str, provenance: Provenance) -> KnowledgeEntry | None:
        """A preference entry scoped by colour ("put red things in the blue bowl").

        Rules without a colour teach nothing yet (the corrections issue generalises them).
        """
        from corrigible.memory.schema import KnowledgeEntry, ObjectScope

        color = self.attributes.get("color")
        if color is None:
            return None
        return KnowledgeEntry(
            kind="preference",
            text=f"put {color} things in the {self.target}",
            plan_form=PreferenceMapping(attributes={"color": color}, target=self.target),
            scope=ObjectScope(color=color),
            provenance=[provenance],
        )


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
    "SkillParamChange",
    "StagingContext",
    "TargetSubstitution",
    "effect_from_dict",
]
