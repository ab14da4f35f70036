"""KnowledgeBase: API, persistence, index rebuilds, and hybrid retrieval with real MiniLM."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from corrigible.errors import (
    ConfigError,
    CorrigibleError,
    CorruptStoreError,
    KnowledgeBaseClosedError,
    ReadOnlyError,
    SchemaVersionError,
    UnknownEntryError,
)
from corrigible.memory.effects import AddedPrecondition, PreferenceMapping, TargetSubstitution
from corrigible.memory.knowledge_base import KnowledgeBase, KnowledgeBaseConfig
from corrigible.memory.schema import KnowledgeEntry, ObjectScope, Provenance
from corrigible.memory.store import (
    ACK_NAME,
    INDEX_META_NAME,
    INDEX_NAME,
    LOG_NAME,
    MANIFEST_NAME,
    checksummed_json,
)

from .conftest import GREEN, crop_descriptor


@pytest.fixture
def kb(tmp_path, embedder):
    with KnowledgeBase.open(tmp_path / "kb", text_embedder=embedder) as handle:
        yield handle


def test_add_get_list_delete(kb, make_entry):
    first = kb.add(make_entry("grasp the red block lower"))
    second = kb.add(
        make_entry(
            "open the drawer before placing items in it", kind="plan_rule", skill=None, params={}
        )
    )
    assert len(kb) == 2
    assert kb.get(first).text == "grasp the red block lower"
    assert [e.id for e in kb.list()] == [first, second]
    assert [e.id for e in kb.list(kind="plan_rule")] == [second]
    kb.delete(first)
    assert [e.id for e in kb.list()] == [second]
    with pytest.raises(UnknownEntryError, match="was deleted"):
        kb.get(first)
    with pytest.raises(UnknownEntryError, match="was deleted"):
        kb.delete(first)


def test_unknown_ids_and_bad_arguments_are_clear_errors(kb, make_entry):
    entry_id = kb.add(make_entry())
    with pytest.raises(UnknownEntryError, match="Did you mean") as info:
        kb.get(entry_id[:-1] + "x")
    assert isinstance(info.value, KeyError) and isinstance(info.value, CorrigibleError)
    with pytest.raises(ConfigError, match="already exists"):
        kb.add(kb.get(entry_id))
    with pytest.raises(ConfigError, match="Did you mean 'plan_rule'"):
        kb.list(kind="plan_rules")
    with pytest.raises(ConfigError, match="mode"):
        kb.search("x", mode="hybrid")
    with pytest.raises(ConfigError, match="needs visual"):
        kb.search("x", mode="text+visual")
    with pytest.raises(ConfigError, match="descriptor"):
        kb.search("x", visual=np.ones(3), mode="text+visual")
    with pytest.raises(ConfigError, match="length"):
        kb.add(make_entry(visual_embedding=[1.0, 0.0]))
    assert kb.resolve_id(entry_id[:8]) == entry_id


def test_entries_survive_reopen_and_the_snapshot_is_used(tmp_path, embedder, make_entry):
    with KnowledgeBase.open(tmp_path / "kb", text_embedder=embedder) as kb:
        ids = kb.add_many([make_entry(f"rule number {i}") for i in range(5)])
        kb.delete(ids[1])
    assert (tmp_path / "kb" / INDEX_NAME).exists()
    with KnowledgeBase.open(tmp_path / "kb", text_embedder=embedder) as kb:
        assert [e.id for e in kb.list()] == [ids[0], *ids[2:]]
        assert kb.open_report.messages == []  # snapshot matched: nothing rebuilt
        assert kb.search("rule number 3", k=1)[0].entry.id == ids[3]


def test_supersede_keeps_both_provenances(kb, make_entry):
    old_id = kb.add(make_entry("grasp the red block lower", scope=ObjectScope(color="red")))
    new_id = kb.supersede(
        old_id,
        make_entry(
            "grasp the red block at mid height",
            provenance=[Provenance(episode="ep-9", correction_texts=["no, not that low"])],
        ),
    )
    old, new = kb.get(old_id), kb.get(new_id)
    assert not old.active and old.superseded_by == new_id
    assert new.active and new.supersedes == [old_id]
    assert [p.episode for p in new.provenance] == ["ep-1", "ep-9"]
    assert new.scope.color == "red"  # inherited from the contradicted entry
    assert [e.id for e in kb.list()] == [new_id]
    assert [e.id for e in kb.list(active_only=False)] == [old_id, new_id]
    assert [e.id for e in kb.lineage(old_id)] == [old_id, new_id]
    hits = kb.search("grasp the red block", k=5)
    assert [h.entry.id for h in hits] == [new_id]  # the superseded rule is never applied
    assert "supersedes" in hits[0].reason
    with pytest.raises(ConfigError, match="already superseded"):
        kb.supersede(old_id, make_entry("another"))


def test_supersede_is_durable_as_one_record(tmp_path, embedder, make_entry):
    with KnowledgeBase.open(tmp_path / "kb", text_embedder=embedder) as kb:
        old_id = kb.add(
            make_entry(
                "put apples in the bowl",
                kind="preference",
                skill=None,
                params={},
                plan_form=PreferenceMapping(attributes={"name": "*apple*"}, target="bowl"),
            )
        )
        new_id = kb.supersede(
            old_id,
            make_entry(
                "put apples in the basket",
                kind="preference",
                skill=None,
                params={},
                plan_form=PreferenceMapping(attributes={"name": "*apple*"}, target="basket"),
            ),
        )
    records = (tmp_path / "kb" / LOG_NAME).read_bytes().splitlines()
    assert len(records) == 2 and b'"op":"supersede"' in records[1]
    with KnowledgeBase.open(tmp_path / "kb", read_only=True, text_embedder=embedder) as kb:
        assert kb.get(old_id).superseded_by == new_id
        assert kb.get(new_id).plan_form.target == "basket"


def test_hybrid_retrieval_tells_same_colour_objects_apart(kb, red_objects_kb_entries):
    cylinder_id, cube_id = kb.add_many(red_objects_kb_entries)
    query = "slippery red cylinder"
    # Text alone cannot tell them apart: both rules are about red objects being grasped.
    text_hits = {h.entry.id for h in kb.search(query, k=5)}
    assert text_hits == {cylinder_id, cube_id}
    seen_cylinder = crop_descriptor("cylinder", angle_deg=25, seed=7)
    hits = kb.search(query, visual=seen_cylinder, mode="text+visual", k=5)
    assert [h.entry.id for h in hits] == [cylinder_id]
    assert "appearance" in hits[0].reason and "matches the stored crop" in hits[0].reason
    # And the other way round: looking at the cube, only the cube's knowledge applies.
    seen_cube = crop_descriptor("cube", angle_deg=40, seed=8)
    hits = kb.search("pick up the red block", visual=seen_cube, mode="text+visual", k=5)
    assert [h.entry.id for h in hits] == [cube_id]
    # The trace can show why the cylinder rule was not applied to the cube.
    traced = kb.search(
        "pick up the red block", visual=seen_cube, mode="text+visual", include_rejected=True
    )
    rejected = [h for h in traced if not h.accepted]
    assert [h.entry.id for h in rejected] == [cylinder_id]
    assert "different-looking object" in rejected[0].reason
    assert rejected[0].to_trace()["accepted"] is False


def test_visual_only_lookup_uses_the_appearance_index(kb, red_objects_kb_entries):
    cylinder_id, _ = kb.add_many(red_objects_kb_entries)
    hits = kb.search("", visual=crop_descriptor("cylinder", seed=3), mode="visual")
    assert [h.entry.id for h in hits] == [cylinder_id]


def test_control_tasks_get_no_knowledge(kb, red_objects_kb_entries, make_entry):
    """Queries where stored knowledge must NOT be applied; false applications are counted."""
    kb.add_many(red_objects_kb_entries)
    kb.add(
        make_entry(
            "open the drawer slowly by pulling the handle",
            kind="skill_params",
            skill="open",
            params={"speed": 0.03},
        )
    )
    controls = [
        # (query text, crop descriptor or None): a different object or a different task.
        ("pick up the green cylinder", crop_descriptor("cylinder", GREEN)),
        ("pick up the small red block", crop_descriptor("cube", size_px=24)),
        ("pick up the large red cylinder", crop_descriptor("cylinder", size_px=70)),
        ("wipe the table with the sponge", None),
        ("pour water into the glass", None),
    ]
    false_applications = 0
    for text, visual in controls:
        mode = "text" if visual is None else "text+visual"
        hits = kb.search(
            text, visual=visual, mode=mode, skill="pick" if visual is not None else None
        )
        false_applications += len(hits)
    assert false_applications == 0


def test_thresholds_filter_unrelated_queries(kb, make_entry):
    kb.add(make_entry("grasp the red block lower"))
    assert kb.search("open the drawer") == []
    hits = kb.search("open the drawer", include_rejected=True)
    assert hits and not hits[0].accepted and "<" in hits[0].reason
    assert kb.search("open the drawer", text_threshold=0.0)  # explicit override


def test_kind_and_skill_filters(kb, make_entry):
    kb.add(make_entry("grasp the red block lower"))
    rule = kb.add(
        make_entry(
            "open the drawer before putting the red block away",
            kind="plan_rule",
            skill=None,
            params={},
            plan_form=AddedPrecondition(skill="open_drawer", obj="drawer", before="place"),
        )
    )
    hits = kb.search("put the red block away", kind="plan_rule")
    assert [h.entry.id for h in hits] == [rule]
    assert isinstance(hits[0].entry.plan_form, AddedPrecondition)
    assert all(h.entry.skill == "pick" for h in kb.search("red block", skill="pick"))


def test_filters_reach_past_the_first_candidate_pool(tmp_path, embedder, make_entry):
    config = KnowledgeBaseConfig(candidate_pool=4, text_threshold=0.0)
    with KnowledgeBase.open(None, config=config, text_embedder=embedder) as kb:
        rng = np.random.default_rng(0)
        fillers = [make_entry(f"filler {i}") for i in range(40)]
        vectors = rng.normal(size=(40, 384)).astype(np.float32)
        kb.add_many(fillers, text_embeddings=vectors)
        target = kb.add(make_entry("rare plan rule", kind="plan_rule", skill=None, params={}))
        hits = kb.search("grasp", kind="plan_rule", k=1)
        assert [h.entry.id for h in hits] == [target]


def test_corrupt_index_is_rebuilt_with_a_warning(tmp_path, embedder, make_entry, caplog):
    with KnowledgeBase.open(tmp_path / "kb", text_embedder=embedder) as kb:
        ids = kb.add_many(
            [
                make_entry("grasp the red block lower"),
                make_entry("open the drawer", kind="plan_rule", skill=None, params={}),
            ]
        )
    index_path = tmp_path / "kb" / INDEX_NAME
    index_path.write_bytes(b"\x00garbage" + index_path.read_bytes()[8:])
    with caplog.at_level(logging.WARNING):
        with KnowledgeBase.open(tmp_path / "kb", text_embedder=embedder) as kb:
            assert any("rebuilding the text index" in m for m in kb.open_report.messages)
            assert kb.search("grasp the red block lower", k=1)[0].entry.id == ids[0]
            assert len(kb) == 2
    assert "rebuilding the text index" in caplog.text
    # The rebuilt snapshot was written back: the next open is clean.
    with KnowledgeBase.open(tmp_path / "kb", text_embedder=embedder) as kb:
        assert kb.open_report.messages == []


@pytest.mark.parametrize("damage", ["missing", "meta-garbage", "stale", "foreign"])
def test_missing_or_stale_index_is_rebuilt(tmp_path, embedder, make_entry, damage):
    path = tmp_path / "kb"
    with KnowledgeBase.open(path, text_embedder=embedder) as kb:
        first = kb.add(make_entry("grasp the red block lower"))
    saved_index = (path / INDEX_NAME).read_bytes()
    saved_meta = (path / INDEX_META_NAME).read_bytes()
    with KnowledgeBase.open(path, text_embedder=embedder) as kb:
        second = kb.add(
            make_entry("pour slowly into small glasses", kind="plan_rule", skill=None, params={})
        )
        kb.delete(first)
    if damage == "missing":
        (path / INDEX_NAME).unlink()
    elif damage == "meta-garbage":
        (path / INDEX_META_NAME).write_text("{")
    elif damage == "stale":  # an older snapshot: it lacks the new entry and has the deleted one
        (path / INDEX_NAME).write_bytes(saved_index)
        (path / INDEX_META_NAME).write_bytes(saved_meta)
    else:  # a snapshot claiming to cover records this log does not have
        meta = json.loads(saved_meta)
        meta["covered_crc"] = 12345
        (path / INDEX_NAME).write_bytes(saved_index)
        (path / INDEX_META_NAME).write_text(json.dumps(meta))
    with KnowledgeBase.open(path, text_embedder=embedder) as kb:
        hits = kb.search("pour into a glass", k=5, text_threshold=-1.0)
        assert [h.entry.id for h in hits] == [second]


def test_torn_log_tail_keeps_earlier_entries(tmp_path, embedder, make_entry):
    path = tmp_path / "kb"
    with KnowledgeBase.open(path, text_embedder=embedder) as kb:
        ids = kb.add_many([make_entry(f"rule {i}") for i in range(3)])
    with open(path / LOG_NAME, "ab") as handle:
        handle.write(b'{"crc":"0badf00d","rec":{"seq":3,"op":"add","entry":{"te')
    with KnowledgeBase.open(path, text_embedder=embedder) as kb:
        assert [e.id for e in kb.list()] == ids
        assert kb.open_report.torn_tail_bytes > 0
        assert "incomplete" in kb.open_report.messages[0]


def test_garbage_mid_log_is_refused_then_repaired(tmp_path, embedder, make_entry):
    path = tmp_path / "kb"
    with KnowledgeBase.open(path, text_embedder=embedder) as kb:
        ids = kb.add_many([make_entry(f"rule {i}") for i in range(2)])
        kb.delete(ids[0])
        later = kb.add(make_entry("rule after the damage"))
    lines = (path / LOG_NAME).read_bytes().splitlines(keepends=True)
    lines[1] = lines[1][:40] + b"#" + lines[1][41:]  # a flipped byte inside record 1
    (path / LOG_NAME).write_bytes(b"".join(lines))
    with pytest.raises(CorruptStoreError, match="line"):
        KnowledgeBase.open(path, text_embedder=embedder)
    config = KnowledgeBaseConfig(on_corrupt="skip")
    with KnowledgeBase.open(path, config=config, text_embedder=embedder) as kb:
        # Record 1 (an add) is gone; the delete of entry 0 and the later add survived.
        assert [e.id for e in kb.list()] == [later]
        assert kb.open_report.skipped_lines == [2]
    with KnowledgeBase.open(path, text_embedder=embedder) as kb:  # clean from now on
        assert [e.id for e in kb.list()] == [later]


def test_newer_schema_is_refused_without_changes(tmp_path, embedder, make_entry):
    path = tmp_path / "kb"
    with KnowledgeBase.open(path, text_embedder=embedder) as kb:
        kb.add(make_entry())
    manifest = json.loads((path / MANIFEST_NAME).read_text())
    manifest["schema_version"] = "99.0"  # a newer major version than this code reads
    (path / MANIFEST_NAME).write_bytes(checksummed_json(manifest))  # as a newer writer would
    before = (path / LOG_NAME).read_bytes()
    with pytest.raises(SchemaVersionError, match="upgrade corrigible"):
        KnowledgeBase.open(path, text_embedder=embedder)
    assert (path / LOG_NAME).read_bytes() == before


def test_other_text_model_is_refused(tmp_path, embedder, make_entry):
    path = tmp_path / "kb"
    with KnowledgeBase.open(path, text_embedder=embedder) as kb:
        kb.add(make_entry())
    manifest = json.loads((path / MANIFEST_NAME).read_text())
    manifest["text_model"] = "some-other-model"
    (path / MANIFEST_NAME).write_bytes(checksummed_json(manifest))
    with pytest.raises(ConfigError, match="some-other-model"):
        KnowledgeBase.open(path, text_embedder=embedder)
    # Changed without its checksum, the manifest is damage, recovered from the log's vectors.
    (path / MANIFEST_NAME).write_text(json.dumps(manifest))
    with KnowledgeBase.open(path, text_embedder=embedder) as kb:
        assert len(kb) == 1 and "recovered" in kb.open_report.messages[0]


def test_read_only_handle_follows_the_writer(tmp_path, embedder, make_entry):
    path = tmp_path / "kb"
    with KnowledgeBase.open(path, text_embedder=embedder) as writer:
        writer.add(make_entry("first"))
        with KnowledgeBase.open(path, read_only=True, text_embedder=embedder) as reader:
            assert len(reader) == 1
            added = writer.add(make_entry("grasp the red block lower"))
            assert reader.search("grasp the red block lower", k=1)[0].entry.id == added
            with pytest.raises(ReadOnlyError):
                reader.add(make_entry("nope"))


def test_closed_and_in_memory(embedder, make_entry, tmp_path):
    kb = KnowledgeBase.open(None, text_embedder=embedder)
    kb.add(make_entry())
    kb.export(tmp_path / "mem.jsonl")
    kb.close()
    kb.close()
    with pytest.raises(KnowledgeBaseClosedError):
        kb.list()
    with pytest.raises(ConfigError, match="read-only"):
        KnowledgeBase.open(None, read_only=True)


def test_export_writes_every_entry_as_json_lines(kb, make_entry, tmp_path):
    first = kb.add(make_entry(plan_form=None))
    kb.supersede(
        first,
        make_entry(
            "use the cup, not the mug",
            kind="plan_rule",
            skill=None,
            params={},
            plan_form=TargetSubstitution(new_target="cup", excluded="mug"),
        ),
    )
    count = kb.export(tmp_path / "out" / "kb.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "out" / "kb.jsonl").read_text().splitlines()]
    assert count == 2 and [row["active"] for row in rows] == [False, True]
    assert rows[1]["plan_form"]["kind"] == "target_substitution"


def test_subclass_must_name_its_backend():
    with pytest.raises(TypeError, match="backend_name"):

        class Nameless(KnowledgeBase):
            def add(self, entry): ...
            def get(self, entry_id): ...
            def list(self, kind=None, active_only=True): ...
            def delete(self, entry_id): ...
            def supersede(self, old_id, new_entry): ...
            def search(self, query_text, **kwargs): ...
            def export(self, path): ...
            def close(self): ...


def test_a_schema_1_knowledge_base_opens_with_its_plan_forms_as_effects(tmp_path, embedder):
    """A knowledge base written before the effect schema (1.0, "form" plan forms) still reads."""
    from corrigible.memory.store import encode_record

    path = tmp_path / "kb"
    with KnowledgeBase.open(path, text_embedder=embedder) as kb:
        entry_id = kb.add(
            KnowledgeEntry(
                kind="preference",
                text="put red things in the blue bowl",
                plan_form=PreferenceMapping(attributes={"color": "red"}, target="blue bowl"),
            )
        )
    log = path / LOG_NAME
    (line,) = log.read_bytes().splitlines()
    rec = json.loads(line)["rec"]
    rec["entry"]["schema_version"] = "1.0"
    rec["entry"]["plan_form"] = {
        "form": "preference_mapping",
        "pattern": "color=red",
        "target": "blue bowl",
    }
    log.write_bytes(encode_record(rec))
    for name in (INDEX_NAME, INDEX_META_NAME, ACK_NAME):  # as schema 1 left them
        (path / name).unlink()
    manifest = json.loads((path / MANIFEST_NAME).read_text())
    del manifest["crc"], manifest["ack_file"]  # schema-1 manifests carried neither
    (path / MANIFEST_NAME).write_text(json.dumps({**manifest, "schema_version": "1.0"}))
    with KnowledgeBase.open(path, text_embedder=embedder) as kb:
        form = kb.get(entry_id).plan_form
    assert form == PreferenceMapping(attributes={"color": "red"}, target="blue bowl")
