"""Schema 3: evidence, confidence, explaining attributes and retirement; the 2 -> 3 migration."""

from __future__ import annotations

import json

import pytest

from corrigible.memory import KnowledgeBase, KnowledgeEntry, ObjectScope, Provenance, schema
from corrigible.memory.confidence import confidence, transfer_threshold
from corrigible.memory.schema import Evidence
from corrigible.memory.store import ACK_NAME, INDEX_META_NAME, INDEX_NAME, LOG_NAME, MANIFEST_NAME

from .conftest import MPP, RED


def _v2_skill_entry() -> dict:
    """A skill entry as schema 2 wrote it: scoped to one object, no evidence."""
    return {
        "schema_version": "2.0",
        "kind": "skill_params",
        "skill": "pick",
        "params": {"speed": 0.0625},
        "text": "pick the medium red cylinder with speed 0.062 m/s",
        "scope": {"color": "red", "shape": "cylinder", "size_class": "medium"},
        "provenance": [
            {"episode": "ep-1", "correction_texts": ["slower"]},
            {"episode": "ep-2", "correction_texts": ["slower still"]},
        ],
    }


def test_a_schema_2_skill_entry_gets_the_evidence_its_provenance_implies():
    migrated = schema.migrate_entry(_v2_skill_entry())
    entry = KnowledgeEntry.model_validate(migrated)
    assert entry.schema_version == schema.SCHEMA_VERSION == "3.0"
    assert [(e.episode, e.obj, e.outcome) for e in entry.evidence] == [
        ("ep-1", "red cylinder", "needed"),
        ("ep-2", "red cylinder", "needed"),
    ]
    assert entry.scope.explains is None  # still recall of that object only
    assert transfer_threshold(entry.scope) == float("inf")
    assert entry.confidence == pytest.approx((1.25 + 1) / (1.25 + 2))
    assert entry.retired is None


def test_plan_entries_pass_the_migration_unchanged():
    raw = {"schema_version": "2.0", "kind": "plan_rule", "text": "open the drawer first"}
    assert schema.migrate_entry(dict(raw)) == {**raw, "schema_version": "3.0"}


def test_unknown_explaining_attributes_are_refused():
    with pytest.raises(ValueError, match="explains must name"):
        ObjectScope(shape="cylinder", explains=["friction"])


def test_confidence_weighs_objects_repeats_help_and_failure():
    def ev(obj, outcome):
        return Evidence(episode="e", obj=obj, outcome=outcome)

    assert confidence([]) == 0.5
    one = confidence([ev("a", "needed")])
    assert confidence([ev("a", "needed"), ev("a", "needed")]) < confidence(
        [ev("a", "needed"), ev("b", "needed")]
    )
    assert confidence([ev("a", "needed"), ev("a", "helped")]) > one
    assert confidence([ev("a", "needed"), ev("c", "failed")]) < one
    assert confidence([ev("a", "needed"), ev("c", "contradicted")]) < one


def test_a_schema_2_knowledge_base_opens_and_recalls_but_does_not_transfer(tmp_path, embedder):
    """A directory written by schema 2 (manifest, log and entries at 2.0) keeps working."""
    from corrigible.corrections.retrieval import Retriever
    from corrigible.memory.store import encode_record
    from corrigible.memory.visual_embedder import embed_crop, render_crop

    def look(rgb):
        crop, mask = render_crop("cylinder", rgb, size_px=50)
        return embed_crop(crop, mask, metres_per_pixel=MPP)

    path = tmp_path / "kb"
    with KnowledgeBase.open(path, text_embedder=embedder) as kb:
        entry_id = kb.add(
            KnowledgeEntry(
                kind="skill_params",
                skill="pick",
                params={"speed": 0.0625},
                text="pick the medium red cylinder with speed 0.062 m/s",
                scope=ObjectScope(color="red", shape="cylinder", size_class="medium"),
                provenance=[Provenance(episode="ep-1", correction_texts=["slower"])],
                visual_embedding=look(RED).tolist(),
            )
        )
    log = path / LOG_NAME
    (line,) = log.read_bytes().splitlines()
    rec = json.loads(line)["rec"]
    for key in ("evidence", "retired"):
        rec["entry"].pop(key)
    rec["entry"]["scope"].pop("explains")
    rec["entry"]["schema_version"] = "2.0"
    log.write_bytes(encode_record(rec))
    for name in (INDEX_NAME, INDEX_META_NAME, ACK_NAME):
        (path / name).unlink()
    manifest = json.loads((path / MANIFEST_NAME).read_text())
    del manifest["crc"]
    (path / MANIFEST_NAME).write_text(json.dumps({**manifest, "schema_version": "2.0"}))
    with KnowledgeBase.open(path, text_embedder=embedder) as kb:
        entry = kb.get(entry_id)
        assert entry.evidence[0].obj == "red cylinder" and entry.schema_version == "3.0"
        retriever = Retriever(kb, "text+visual")
        recalled = retriever.lookup(("pick",), "red cylinder", look(RED))
        assert recalled.overrides == {"pick": {"speed": 0.0625}}
        assert recalled.used[0]["match"] == "recall"
        other = retriever.lookup(("pick",), "green cylinder", look((30, 170, 50)))
        assert other.overrides == {} and "color green is not red" in other.rejected[0]["reason"]
