from __future__ import annotations

import pytest
from pydantic import ValidationError

from corrigible.memory import schema
from corrigible.memory.kb_errors import SchemaVersionError
from corrigible.memory.schema import (
    AddedPrecondition,
    KnowledgeEntry,
    ObjectScope,
    Ordering,
    PreferenceMapping,
    Provenance,
    TargetSubstitution,
)


@pytest.mark.parametrize(
    "form",
    [
        TargetSubstitution(from_target="mug", to_target="cup"),
        AddedPrecondition(skill="place", precondition_skill="open", args=["drawer"]),
        Ordering(first="cup", then="plate"),
        PreferenceMapping(pattern="category=fruit", target="basket"),
    ],
    ids=lambda form: form.form,
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
    assert migrated["schema_version"] == "1.0"
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
    mapping = PreferenceMapping(pattern="category=fruit", target="basket")
    assert mapping.matches("apple", {"category": "fruit"})
    assert not mapping.matches("apple", {"category": "tool"})
    assert PreferenceMapping(pattern="*apple*", target="bowl").matches("green_apple")


def test_provenance_needs_the_correction_text():
    with pytest.raises(ValidationError):
        Provenance(episode="ep-1", correction_texts=[])
