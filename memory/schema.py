"""Pydantic models of distilled knowledge: entries, scopes, provenance and typed plan forms.

A plan-level entry's `plan_form` is a correction effect from `memory.effects` (one schema from
the person's words to what is remembered).

Distillation (DROC-style) turns a correction history into general knowledge. Plan-level entries
(`plan_rule`, `preference`) change *what* the planner does and may carry a typed `plan_form` the
planner can apply without re-parsing text; skill-level entries (`skill_params`) change *how* a
skill runs for an object or an object attribute. Every entry says where it came from
(`provenance`) and where it applies (`scope`).

Versioning: `SCHEMA_VERSION` is "MAJOR.MINOR". A minor bump only adds optional fields, so an older
reader can load newer-minor data by ignoring unknown keys (see `lenient_context`). A major bump
changes meaning; older readers refuse it and newer readers upgrade old records through the
functions registered in `MIGRATIONS`.
"""

from __future__ import annotations

import fnmatch
import math
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from corrigible.errors import SchemaVersionError
from corrigible.memory.effects import PLAN_KINDS, Effect

SCHEMA_VERSION = "3.0"


def _plan_forms_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Rewrites a schema-1 plan form as the correction effect schema 2 stores.

    Schema 1 kept its own plan-form classes (discriminator "form"); schema 2 stores the
    correction effects themselves (discriminator "kind").
    """
    form = data.get("plan_form")
    if not isinstance(form, dict) or "form" not in form:
        return data
    kind = form.get("form")
    if kind == "target_substitution":
        new = {"new_target": form.get("to_target"), "excluded": form.get("from_target")}
    elif kind == "added_precondition":
        args = form.get("args") or []
        new = {
            "skill": form.get("precondition_skill"),
            "obj": args[0] if args else None,
            "before": form.get("skill"),
        }
    elif kind == "ordering":
        new = {"first": form.get("first"), "last": form.get("then")}
    elif kind == "preference_mapping":
        pattern = str(form.get("pattern", ""))
        key, sep, value = pattern.partition("=")
        attributes = {key.strip(): value.strip()} if sep else {"name": pattern}
        new = {"attributes": attributes, "target": form.get("target")}
    else:
        return data  # unknown form: validation names it
    return {**data, "plan_form": {"kind": kind, **new}}


def _evidence_v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    """Gives a schema-2 skill entry the evidence its provenance implies (schema 3).

    Schema 2 knew only that a correction had been needed, once per provenance record, on the one
    object its scope names; it kept no outcome of later uses. Each provenance record becomes a
    "needed" piece of evidence on that object, so the entry starts with the confidence of what
    it saw. Its scope keeps no explaining attribute (`explains` None): it stays recall of the
    exact object it was learned on, as schema 2 retrieved it, until new evidence widens it.
    """
    if data.get("kind") != "skill_params" or data.get("evidence"):
        return data
    scope = data.get("scope") or {}
    color, shape = scope.get("color"), scope.get("shape")
    from corrigible.sim_envs.vocabulary import noun_of_shape

    obj = f"{color} {noun_of_shape(shape)}" if color and shape else None
    evidence = [
        {
            "episode": str(p.get("episode", "?")),
            "obj": obj,
            "size_class": scope.get("size_class"),
            "outcome": "needed",
            "note": "migrated from schema 2",
        }
        for p in data.get("provenance") or []
        if isinstance(p, dict)
    ]
    return {**data, "evidence": evidence}


# MIGRATIONS[m] upgrades an entry dict written under major version m to major version m + 1.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    1: _plan_forms_v1_to_v2,
    2: _evidence_v2_to_v3,
}

EntryKind = Literal["plan_rule", "preference", "skill_params"]
EvidenceOutcome = Literal["needed", "helped", "failed", "contradicted"]
# Attributes that can explain a skill entry: perceived ones (appearance groups), the furniture
# instance, or the camera (a perception offset every object seen through it shares).
EXPLAINING: tuple[str, ...] = ("color", "shape", "size_class", "object_name", "camera")
ENTRY_KINDS: tuple[str, ...] = ("plan_rule", "preference", "skill_params")


def parse_version(version: str) -> tuple[int, int]:
    """Splits "MAJOR.MINOR" into integers.

    Raises:
        SchemaVersionError: the string is not of that form.
    """
    try:
        major, minor = (int(part) for part in version.split("."))
    except (ValueError, AttributeError) as exc:
        raise SchemaVersionError(
            f"schema version {version!r} is not of the form 'MAJOR.MINOR' (e.g. "
            f"{SCHEMA_VERSION!r}); the file was not written by corrigible or is damaged."
        ) from exc
    return major, minor


def check_readable(version: str, *, what: str) -> None:
    """Refuses data from a newer major schema version.

    Args:
        version: the version found in the data.
        what: what holds it (a path), for the message.

    Raises:
        SchemaVersionError: `version` has a newer major version than this code understands.
    """
    major, _ = parse_version(version)
    current_major, _ = parse_version(SCHEMA_VERSION)
    if major > current_major:
        raise SchemaVersionError(
            f"{what} uses knowledge-base schema {version}, newer than this corrigible "
            f"(schema {SCHEMA_VERSION}); upgrade corrigible to read it. Nothing was changed."
        )


def migrate_entry(data: dict[str, Any]) -> dict[str, Any]:
    """Upgrades an entry dict from an older major version to the current one.

    Args:
        data: the raw entry as stored, with its own `schema_version`.

    Returns:
        The dict, upgraded step by step through `MIGRATIONS`, with `schema_version` current.

    Raises:
        SchemaVersionError: the entry is newer than this code, or a migration step is missing.
    """
    version = str(data.get("schema_version", SCHEMA_VERSION))
    check_readable(version, what=f"entry {data.get('id', '?')!r}")
    major, _ = parse_version(version)
    current_major, _ = parse_version(SCHEMA_VERSION)
    while major < current_major:
        step = MIGRATIONS.get(major)
        if step is None:
            raise SchemaVersionError(
                f"entry {data.get('id', '?')!r} uses schema {version} and no migration from "
                f"major version {major} exists; export it with the corrigible that wrote it."
            )
        data = step(dict(data))
        major += 1
        data["schema_version"] = f"{major}.0"
    return data


def lenient_context() -> dict[str, bool]:
    """Validation context that ignores unknown keys (data from a newer minor version)."""
    return {"lenient": True}


class _Model(BaseModel):
    """Base model: unknown keys are an error (typos), except under `lenient_context()`."""

    model_config = ConfigDict(extra="forbid", frozen=False, validate_assignment=True)

    @model_validator(mode="before")
    @classmethod
    def _drop_unknown_when_lenient(cls, data: Any, info: ValidationInfo) -> Any:
        # A newer minor version may add optional fields; an older reader drops them rather than
        # refusing the whole knowledge base. Outside that context a stray key is a user typo.
        if isinstance(data, dict) and info.context and info.context.get("lenient"):
            return {key: value for key, value in data.items() if key in cls.model_fields}
        return data


class ObjectScope(_Model):
    """Where an entry applies. Every field that is set must match; unset fields match anything."""

    object_name: str | None = None  # e.g. "red_cylinder" or a glob "*cylinder*"
    color: str | None = None  # e.g. "red"
    shape: str | None = None  # e.g. "cylinder", "cube"
    size_class: str | None = None  # e.g. "small", "large"
    task_pattern: str | None = None  # fnmatch glob over the task text, e.g. "*drawer*"
    # The attributes that explain why the knowledge was needed (`EXPLAINING`): what an unseen
    # object must share for the knowledge to transfer to it. None: the whole scope, i.e. recall
    # of the object it was learned on (schema-2 entries, plan-level entries).
    explains: list[str] | None = None

    @field_validator("explains")
    @classmethod
    def _check_explains(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        unknown = [name for name in value if name not in EXPLAINING]
        if unknown or not value:
            raise ValueError(f"explains must name some of {list(EXPLAINING)}, got {value!r}")
        return value

    @property
    def is_empty(self) -> bool:
        """True when the scope places no restriction."""
        return all(value is None for value in self.model_dump().values())

    def describe(self) -> str:
        """A short phrase such as "color=red shape=cylinder", or "any object"."""
        parts = [
            f"{key}={value}"
            for key, value in self.model_dump().items()
            if value and key != "explains"
        ]
        if self.explains:
            parts.append(f"because of {'+'.join(self.explains)}")
        return " ".join(parts) if parts else "any object"

    def matches(
        self,
        *,
        object_name: str | None = None,
        attributes: Mapping[str, str] | None = None,
        task: str | None = None,
    ) -> bool:
        """Whether an object (and task) falls inside this scope.

        Args:
            object_name: the object's name; matched as an fnmatch glob.
            attributes: known attributes such as {"color": "red", "shape": "cylinder"}.
            task: the task text; matched against `task_pattern`.

        Returns:
            False as soon as a set field contradicts a known value; unknown values do not
            disqualify (appearance retrieval decides those).
        """
        attributes = attributes or {}
        if self.object_name and object_name is not None:
            if not fnmatch.fnmatch(object_name.lower(), self.object_name.lower()):
                return False
        for key in ("color", "shape", "size_class"):
            wanted = getattr(self, key)
            known = attributes.get(key)
            if wanted and known is not None and wanted.lower() != known.lower():
                return False
        if self.task_pattern and task is not None:
            if not fnmatch.fnmatch(task.lower(), self.task_pattern.lower()):
                return False
        return True


class Evidence(_Model):
    """One episode's word on a skill entry: needed there, or what happened when it was applied.

    `needed`: a correction was needed on `obj` and the task then succeeded (the entry was
    learned or refined from it). `helped`: applied, and the task succeeded without a correction
    of its parameters. `failed`: applied, and the task failed. `contradicted`: applied, and the
    person corrected its parameters the opposite way (it overshot).
    """

    episode: str = Field(min_length=1)
    obj: str | None = None  # the object's perceived name ("red cylinder"); None if unknown
    size_class: str | None = None  # its perceived size class
    outcome: EvidenceOutcome
    match: Literal["learned", "recall", "transfer"] = "learned"  # how the entry reached obj
    params: dict[str, float] = Field(default_factory=dict)  # the values needed (or applied)
    note: str = ""
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class Provenance(_Model):
    """Which episode and correction an entry was distilled from."""

    episode: str = Field(min_length=1)  # episode id, e.g. "ep-0007"
    step: int | None = Field(default=None, ge=0)  # step index inside the episode, if known
    correction_texts: list[str] = Field(min_length=1)  # the human's words, verbatim
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


# A plan-level entry's typed form is a correction effect (memory/effects.py): the same schema
# the interpreter produces and the correction loop applies.
PlanForm = Effect


def _new_id() -> str:
    return str(uuid.uuid4())


class KnowledgeEntry(_Model):
    """One piece of distilled knowledge.

    `text` is what gets embedded and retrieved, so it should read as a general rule
    ("grasp slippery red cylinders lower and lift slowly"), not as the raw correction.
    """

    id: str = Field(default_factory=_new_id)  # uuid4 string
    schema_version: str = SCHEMA_VERSION  # "MAJOR.MINOR" the entry was written under
    kind: EntryKind  # plan_rule | preference | skill_params
    text: str = Field(min_length=1)  # the natural-language rule, embedded for retrieval
    skill: str | None = None  # the skill a skill_params entry tunes, e.g. "pick"
    params: dict[str, float] = Field(default_factory=dict)  # SI units, e.g. {"speed": 0.05} m/s
    plan_form: PlanForm | None = None  # typed form of a plan-level entry
    scope: ObjectScope = Field(default_factory=ObjectScope)
    provenance: list[Provenance] = Field(default_factory=list)
    supersedes: list[str] = Field(default_factory=list)  # ids this entry replaced
    superseded_by: str | None = None  # id of the entry that replaced this one
    active: bool = True  # False once superseded
    visual_embedding: list[float] | None = None  # appearance of the object it is about
    tags: list[str] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)  # skill entries: where it held or not
    retired: str | None = None  # why it is no longer applied (kept, never retrieved); None: in use

    @property
    def confidence(self) -> float:
        """How far the entry is trusted, from its evidence (`memory.confidence`)."""
        from corrigible.memory.confidence import confidence

        return confidence(self.evidence)

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not value or any(ch.isspace() for ch in value) or len(value) > 128:
            raise ValueError(
                f"id must be 1-128 characters without whitespace, got {value!r}; "
                "leave it out to get a fresh uuid4"
            )
        return value

    @field_validator("schema_version")
    @classmethod
    def _check_version(cls, value: str) -> str:
        parse_version(value)
        return value

    @field_validator("text")
    @classmethod
    def _check_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text must contain a rule, got only whitespace")
        return value

    @field_validator("params")
    @classmethod
    def _check_params(cls, value: dict[str, float]) -> dict[str, float]:
        for name, number in value.items():
            if not math.isfinite(number):
                raise ValueError(f"params[{name!r}] must be finite, got {number!r}")
        return value

    @field_validator("visual_embedding")
    @classmethod
    def _check_visual(cls, value: list[float] | None) -> list[float] | None:
        if value is None:
            return None
        if not value or not all(math.isfinite(x) for x in value):
            raise ValueError("visual_embedding must be a non-empty list of finite floats")
        if math.sqrt(sum(x * x for x in value)) < 1e-8:
            raise ValueError("visual_embedding has zero norm; pass None when no crop is known")
        return value

    @model_validator(mode="after")
    def _check_kind(self) -> KnowledgeEntry:
        if self.kind == "skill_params":
            if not self.skill:
                raise ValueError(
                    "a skill_params entry needs `skill` (e.g. 'pick'), got None; use kind "
                    "'plan_rule' for knowledge that is not tied to one skill"
                )
            if self.plan_form is not None:
                raise ValueError("plan_form belongs to plan_rule/preference entries, not skills")
        if self.plan_form is not None and self.plan_form.kind not in PLAN_KINDS:
            raise ValueError(
                f"plan_form must be a plan-level effect {list(PLAN_KINDS)}, "
                f"got {self.plan_form.kind!r}"
            )
        if self.superseded_by is not None and self.active:
            raise ValueError(f"entry {self.id} is superseded by {self.superseded_by} but active")
        return self

    def summary(self, width: int = 60) -> str:
        """The rule text, cut to `width` characters for tables and traces."""
        return self.text if len(self.text) <= width else self.text[: width - 1] + "…"
