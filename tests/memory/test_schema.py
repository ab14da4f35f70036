from __future__ import annotations

import pytest
from pydantic import ValidationError

from corrigible.errors import SchemaVersionError
from corrigible.memory import schema
from corrigible.memory.effects import (
    AddedPrecondition,
    ControlCommand,
    Ordering,
    PreferenceMapping,
    TargetSubstitution,
)
from corrigible.memory.schema import KnowledgeEntry, ObjectScope, Provenance, migrate_entry


@pytest.mark.parametrize(
    "form",
    [
        TargetSubstitution(new_target="cup", excluded="mug"),
        AddedPrecondition(skill="open_drawer", obj="drawer", before="place"),
        Ordering(first="cup", last="plate"),
        PreferenceMapping(attributes={"category": "fruit"}, target="basket"),
    ],
    ids=lambda form: form.kind,
)
def test_plan_forms_round_trip_through_json(form):
    entry = KnowledgeEntry(kind="plan_rule", text="a rule", plan_form=form)
    again = KnowledgeEntry.model_validate_json(entry.model_dump_json())
    assert again == entry
    assert type(again.plan_form) is type(form)


def test_skill_params_needs_a_skill():
    with pytest.raises(ValidationError, match="needs `skill`"):
        KnowledgeEntry(kind="skill_params", text="lower", params={"grasp_height": -0.01})


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("text", "   ", "whitespace"),
        ("params", {"speed": float("nan")}, "finite"),
        ("visual_embedding", [0.0, 0.0], "zero norm"),
        ("id", "has space", "without whitespace"),
        ("schema_version", "one", "MAJOR.MINOR"),
        ("colour", "red", "Extra inputs"),
    ],
    ids=["blank-text", "nan-param", "zero-visual", "bad-id", "bad-version", "typo-field"],
)
def test_bad_fields_are_rejected_with_a_message(field, value, message):
    fields = {"kind": "plan_rule", "text": "rule", field: value}
    with pytest.raises((ValidationError, SchemaVersionError), match=message):
        KnowledgeEntry(**fields)


def test_lenient_context_drops_fields_of_a_newer_minor_version():
    data = KnowledgeEntry(kind="preference", text="fruit in the basket").model_dump(mode="json")
    data["future_field"] = 1
    data["scope"]["future_scope_field"] = "x"
    with pytest.raises(ValidationError):
        KnowledgeEntry.model_validate(data)
    entry = KnowledgeEntry.model_validate(data, context=schema.lenient_context())
    assert entry.text == "fruit in the basket"


def test_newer_major_version_is_refused():
    data = KnowledgeEntry(kind="plan_rule", text="rule").model_dump(mode="json")
    data["schema_version"] = "99.0"
    with pytest.raises(SchemaVersionError, match="upgrade corrigible"):
        schema.migrate_entry(data)


def test_migration_hook_upgrades_older_major_versions(monkeypatch):
    def rename_rule_to_text(data):
        data["text"] = data.pop("rule")
        return data

    monkeypatch.setitem(schema.MIGRATIONS, 0, rename_rule_to_text)
    old = {"schema_version": "0.3", "kind": "plan_rule", "rule": "legacy rule"}
    migrated = schema.migrate_entry(old)
    assert migrated["text"] == "legacy rule"
    assert migrated["schema_version"] == schema.SCHEMA_VERSION  # 0.3 -> 1.0 -> 2.0 -> 3.0
    assert KnowledgeEntry.model_validate(migrated).text == "legacy rule"


def test_missing_migration_is_a_clear_error():
    with pytest.raises(SchemaVersionError, match="no migration"):
        schema.migrate_entry({"schema_version": "0.1", "kind": "plan_rule", "text": "x"})


def test_scope_and_preference_matching():
    scope = ObjectScope(color="red", shape="cylinder", task_pattern="*pick*")
    assert scope.matches(attributes={"color": "red", "shape": "cylinder"}, task="pick it up")
    assert not scope.matches(attributes={"color": "red", "shape": "cube"})
    assert scope.matches(attributes={"color": "red"})  # unknown shape does not disqualify
    assert not scope.matches(task="open the drawer")
    assert ObjectScope().is_empty and ObjectScope().describe() == "any object"
    mapping = PreferenceMapping(attributes={"category": "fruit"}, target="basket")
    assert mapping.matches("apple", {"category": "fruit"})
    assert not mapping.matches("apple", {"category": "tool"})
    assert mapping.pattern == "category=fruit"
    glob = PreferenceMapping(attributes={"name": "*apple*"}, target="bowl")
    assert glob.matches("green_apple") and not glob.matches("pear")


def test_provenance_needs_the_correction_text():
    with pytest.raises(ValidationError):
        Provenance(episode="ep-1", correction_texts=[])


def test_a_control_command_is_not_a_plan_form():
    with pytest.raises(ValidationError, match="plan-level"):
        KnowledgeEntry(kind="plan_rule", text="stop", plan_form=ControlCommand(command="stop"))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (
            {"form": "target_substitution", "from_target": "mug", "to_target": "cup"},
            TargetSubstitution(new_target="cup", excluded="mug"),
        ),
        (
            {
                "form": "added_precondition",
                "skill": "place",
                "precondition_skill": "open_drawer",
                "args": ["drawer"],
            },
            AddedPrecondition(skill="open_drawer", obj="drawer", before="place"),
        ),
        (
            {"form": "ordering", "first": "cup", "then": "plate"},
            Ordering(first="cup", last="plate"),
        ),
        (
            {"form": "preference_mapping", "pattern": "color=red", "target": "blue bowl"},
            PreferenceMapping(attributes={"color": "red"}, target="blue bowl"),
        ),
        (
            {"form": "preference_mapping", "pattern": "*apple*", "target": "bowl"},
            PreferenceMapping(attributes={"name": "*apple*"}, target="bowl"),
        ),
    ],
    ids=["target", "precondition", "ordering", "preference", "name-glob"],
)
def test_schema_1_plan_forms_migrate_to_effects(old, new):
    raw = {"schema_version": "1.0", "kind": "plan_rule", "text": "a rule", "plan_form": old}
    entry = KnowledgeEntry.model_validate(migrate_entry(raw))
    assert entry.plan_form == new and entry.schema_version == schema.SCHEMA_VERSION
