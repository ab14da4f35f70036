"""Knowledge-base corruption corpus: damage every file, then check what survived against a model.

Example:
    from corrigible.memory.corruption import run_corpus

    summary = run_corpus()  # builds a small knowledge base, damages copies of it
    print(summary["classes"]["bit-flip"])  # {"cases": 7, "ok": 7, "wrong": 0, "crashed": 0}

This is an executable conformance check of the promise in memory/README.md ("Crash safety"),
run in CI (tests/memory/test_kb_corruption.py) and by the property-based tests there. The model
is independent of the implementation:

* An acknowledged record **survives** when its exact bytes (the 8 crc hex digits in any case)
  are still somewhere in the log; crc32 makes any other change detectable. Every template
  record is acknowledged (the knowledge base was closed cleanly).
* The entries that must come back are those of replaying the surviving records in seq order
  (so a lost `delete` revives its entry, and a repair says so).
* A lost acknowledged record is "damaged" when some of its bytes remain and "missing" when
  none do; it is never "never acknowledged".

For each case the checker runs `check` (must report exactly the lost seqs, exit 1 when anything
is damaged, and write nothing), a default open (must refuse with `LostRecordsError`, changing
nothing, when anything was lost, and otherwise return every entry with identical content and a
consistent index), a repair (`on_corrupt="skip"`: exactly the surviving entries, the loss
reported and quarantined) and a reopen (clean).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from corrigible.errors import CorrigibleError, LostRecordsError
from corrigible.memory.knowledge_base import (
    FaissKnowledgeBase,
    KnowledgeBaseConfig,
    check,
)
from corrigible.memory.schema import KnowledgeEntry, ObjectScope, Provenance
from corrigible.memory.store import (
    ACK_NAME,
    INDEX_META_NAME,
    INDEX_NAME,
    LOCK_NAME,
    LOG_NAME,
    MANIFEST_NAME,
    checksummed_json,
    encode_record,
)
from corrigible.memory.visual_embedder import DESCRIPTOR_DIM
from corrigible.text_embedding import get_text_embedder

_BLANK = b" \t\r\n\x0b\x0c"
# Files other than the log, by the name the ops use.
FILES = {"manifest": MANIFEST_NAME, "ack": ACK_NAME, "index": INDEX_NAME, "meta": INDEX_META_NAME}


@dataclass(frozen=True)
class TemplateRecord:
    """One acknowledged record of the template log."""

    seq: int
    op: str
    data: dict[str, Any]
    raw: bytes  # the record's bytes, opening to closing brace
    start: int  # offsets in the template log
    stop: int


class Template:
    """A closed, clean knowledge base to copy and damage.

    A plain class rather than a dataclass so that failure reports (hypothesis) print one line.

    Args:
        path: its directory.
        records: every record of its log, all acknowledged.
        vectors: the text vector of each add / supersede record, by seq.
    """

    def __init__(
        self, path: Path, records: tuple[TemplateRecord, ...], vectors: dict[int, np.ndarray]
    ) -> None:
        self.path = path
        self.records = records
        self.vectors = vectors

    def __repr__(self) -> str:
        return f"Template({str(self.path)!r}, {len(self.records)} records)"

    def copy_to(self, target: Path) -> Path:
        """A fresh copy of the template directory (without its writer lock)."""
        shutil.copytree(self.path, target, ignore=shutil.ignore_patterns("writer.lock"))
        return target


def _unit(rng: np.random.Generator, dim: int) -> np.ndarray:
    vector = rng.normal(size=dim).astype(np.float32)
    return vector / np.linalg.norm(vector)


def build_template(path: str | Path, *, entries: int = 6, seed: int = 0) -> Template:
    """Writes a small knowledge base: adds (some with a crop), a batch, a supersede, a delete.

    Text vectors are given explicitly, so MiniLM is never loaded.
    """
    path = Path(path)
    rng = np.random.default_rng(seed)
    config = KnowledgeBaseConfig(snapshot_every=0)
    with FaissKnowledgeBase(path, config=config, text_embedder=get_text_embedder()) as kb:

        def entry(i: int, **extra: Any) -> KnowledgeEntry:
            fields: dict[str, Any] = {
                "kind": "skill_params",
                "skill": "pick",
                "params": {"grasp_height": round(-0.005 * (i + 1), 4)},
                "text": f"règle {i}: grasp object {i} lower — “slowly”",
                "provenance": [Provenance(episode=f"ep-{i}", step=i, correction_texts=["lower!"])],
            }
            if i % 2 == 0:
                fields["scope"] = ObjectScope(color="red", shape="cube")
                fields["visual_embedding"] = _unit(rng, DESCRIPTOR_DIM).tolist()
            fields.update(extra)
            return KnowledgeEntry(**fields)

        ids = [kb.add(entry(i), text_embedding=_unit(rng, 384)) for i in range(entries)]
        kb.supersede(
            ids[1], entry(100, text="grasp object 1 even lower"), text_embedding=_unit(rng, 384)
        )
        kb.delete(ids[2])
        batch = [entry(200 + i) for i in range(2)]
        kb.add_many(batch, text_embeddings=np.stack([_unit(rng, 384) for _ in batch]))
    log = (path / LOG_NAME).read_bytes()
    records: list[TemplateRecord] = []
    vectors: dict[int, np.ndarray] = {}
    position = 0
    for line in log.splitlines(keepends=True):
        rec = json.loads(line)["rec"]
        records.append(
            TemplateRecord(rec["seq"], rec["op"], rec, line.rstrip(b"\n"), position,
                           position + len(line) - 1)
        )  # fmt: skip
        if "text_embedding" in rec:
            raw = base64.b64decode(rec["text_embedding"]["b64"])
            vectors[rec["seq"]] = np.frombuffer(raw, dtype="<f4").copy()
        position += len(line)
    return Template(path, tuple(records), vectors)


# -- the model -----------------------------------------------------------------------------


def survivors(template: Template, log: bytes | None) -> set[int]:
    """Seqs whose record bytes are intact somewhere in `log` (crc hex digits in any case)."""
    if log is None:
        return set()
    found = set()
    for record in template.records:
        raw = record.raw
        pattern = re.escape(raw[:8]) + b"(?i:" + re.escape(raw[8:16]) + b")" + re.escape(raw[16:])
        if re.search(pattern, log):
            found.add(record.seq)
    return found


def expected_entries(template: Template, seqs: set[int]) -> dict[str, dict[str, Any]]:
    """The entries replaying these records gives, as stored (JSON form), by id."""
    entries: dict[str, dict[str, Any]] = {}
    for record in template.records:
        if record.seq not in seqs:
            continue
        data = record.data
        if record.op in ("add", "supersede"):
            new = dict(data["entry"])
            if record.op == "supersede" and data["old_id"] in entries:
                old = dict(entries[data["old_id"]])
                old.update(active=False, superseded_by=new["id"])
                entries[data["old_id"]] = old
            entries[new["id"]] = new
        elif record.op == "delete":
            entries.pop(data["id"], None)
    return entries


# -- corruptions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    """One corruption of one file.

    `target` is "log", "manifest", "ack", "index", "meta" or "snapshot" (both index files);
    `kind` and `args`:

    * any file: ("delete",), ("flip", position, bit), ("truncate", at), ("garbage", bytes)
    * log only: ("reformat", name) with a name of `REFORMATS`, ("delete-line", k),
      ("duplicate-line", k, to), ("swap-lines", i, j), ("insert-garbage", k, bytes),
      ("torn-write", length) (part of one more record, never acknowledged),
      ("make-directory",), ("make-fifo",), ("concatenate",)
    * manifest only: ("newer-schema",)
    Positions and line numbers are taken modulo the file's current size.
    """

    target: str
    kind: str
    args: tuple[Any, ...] = ()

    def describe(self) -> str:
        """A short label, e.g. "log:flip(120,3)"."""
        args = ",".join(repr(a) if isinstance(a, bytes) else str(a) for a in self.args)
        return f"{self.target}:{self.kind}({args})"


REFORMATS: dict[str, Callable[[bytes], bytes]] = {
    "crlf": lambda b: b.replace(b"\n", b"\r\n"),
    "cr": lambda b: b.replace(b"\n", b"\r"),
    "trailing-spaces": lambda b: b.replace(b"\n", b" \t \n"),
    "bom": lambda b: b"\xef\xbb\xbf" + b,
    "blank-lines": lambda b: b.replace(b"\n", b"\n\n"),
    "no-final-newline": lambda b: b.rstrip(b"\n"),
    "crlf-bom-no-final-newline": lambda b: b"\xef\xbb\xbf" + b.replace(b"\n", b"\r\n").rstrip(),
}
_UNUSABLE_KINDS = {"make-directory", "make-fifo", "concatenate", "newer-schema"}


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def apply_op(directory: Path, template: Template, op: Op) -> None:
    """Applies one corruption to the knowledge base copy in `directory`."""
    name = LOG_NAME if op.target == "log" else FILES.get(op.target, "")
    targets = [directory / INDEX_NAME, directory / INDEX_META_NAME]
    if op.target != "snapshot":
        targets = [directory / name]
    for path in targets:
        if not path.exists():
            continue
        data = path.read_bytes()
        kind, args = op.kind, op.args
        if kind == "delete":
            path.unlink()
            continue
        if kind == "make-directory":
            path.unlink()
            path.mkdir()
            continue
        if kind == "make-fifo":
            path.unlink()
            os.mkfifo(path)
            continue
        if kind == "flip" and data:
            position = args[0] % len(data)
            data = data[:position] + bytes([data[position] ^ (1 << args[1])]) + data[position + 1 :]
        elif kind == "truncate":
            data = data[: args[0] % (len(data) + 1)]
        elif kind == "garbage":
            data = args[0]
        elif kind == "reformat":
            data = REFORMATS[args[0]](data)
        elif kind in ("delete-line", "duplicate-line", "swap-lines", "insert-garbage"):
            lines = _lines(data)
            if lines:
                k = args[0] % (len(lines) + (kind == "insert-garbage"))
                if kind == "delete-line":
                    del lines[k]
                elif kind == "duplicate-line":
                    lines.insert(args[1] % (len(lines) + 1), lines[k])
                elif kind == "swap-lines":
                    j = args[1] % len(lines)
                    lines[k], lines[j] = lines[j], lines[k]
                else:
                    lines.insert(k, args[1] + b"\n")
            data = b"".join(lines)
        elif kind == "torn-write":
            data += _next_record(template)[: _torn_length(template, op)]
        elif kind == "concatenate":
            data += encode_record({"seq": 1, "op": "delete", "id": "from another log"})
        elif kind == "newer-schema":
            manifest = json.loads(data)
            manifest["schema_version"] = "99.0"
            data = checksummed_json(manifest)
        path.write_bytes(data)


def _next_record(template: Template) -> bytes:
    return encode_record({"seq": len(template.records), "op": "delete", "id": "never"})


def _torn_length(template: Template, op: Op) -> int:
    return max(1, op.args[0] % len(_next_record(template)))


def _log_bytes(directory: Path) -> bytes | None:
    path = directory / LOG_NAME
    if not path.exists() or not stat.S_ISREG(path.stat().st_mode):
        return None
    return path.read_bytes()


@dataclass
class Expectation:
    """What the model says must happen."""

    lost: set[int] = field(default_factory=set)  # acknowledged seqs that cannot be recovered
    causes: dict[int, str] | None = None  # "damaged" / "missing" per lost seq, when certain
    damage: bool | None = False  # whether `check` must report damage (None: either)
    unusable: bool = False  # every open must fail with a CorrigibleError
    torn: bool = False  # a never-acknowledged tail must be reported (torn-write, ack intact)
    torn_bytes: int = 0  # bytes of a torn write made (0: nothing may be called torn)
    survivors: set[int] = field(default_factory=set)


def expect(template: Template, ops: Sequence[Op], directory: Path) -> Expectation:
    """The model's verdict for `ops` applied to `template` (copied into `directory`)."""
    if any(op.kind in _UNUSABLE_KINDS for op in ops):
        return Expectation(unusable=True)
    log = _log_bytes(directory)
    alive = survivors(template, log)
    lost = {r.seq for r in template.records} - alive
    log_ops = [op for op in ops if op.target == "log"]
    # A torn write is reported as never acknowledged only while entries.ack is intact;
    # otherwise its bytes are of unknown acknowledgement.
    torn_bytes = sum(_torn_length(template, o) for o in ops if o.kind == "torn-write")
    # Inserted bytes shaped like a torn write (zeros, or a record's opening) may be taken
    # for one when they end up after the last record: no one could tell them apart.
    torn_bytes += sum(
        len(o.args[1])
        for o in ops
        if o.kind == "insert-garbage"
        and (o.args[1].startswith(b"\0") or b'{"crc":"'.startswith(o.args[1][:8]))
    )
    torn = len(ops) == 1 and ops[0].kind == "torn-write"  # alone, so entries.ack is intact
    result = Expectation(lost=lost, survivors=alive, torn=torn, torn_bytes=torn_bytes)
    single = len(log_ops) == 1
    if single:
        op = log_ops[0]
        causes: dict[int, str] = {}
        for seq in lost:
            record = template.records[seq]
            if op.kind in ("delete-line", "delete"):
                causes[seq] = "missing"
            elif op.kind == "truncate":
                at = op.args[0] % (len(template_log(template)) + 1)
                causes[seq] = "damaged" if record.start < at < record.stop else "missing"
            else:
                causes[seq] = "damaged"
        result.causes = causes
    if lost:
        result.damage = True
    elif len(log_ops) > 1:
        result.damage = None
    else:
        result.damage = any(_is_damage(op, template) for op in ops)
    return result


def template_log(template: Template) -> bytes:
    """The template's log bytes."""
    return (template.path / LOG_NAME).read_bytes()


def _is_damage(op: Op, template: Template) -> bool:
    """Whether an op that lost nothing must still be reported as damage by `check`."""
    if op.target == "snapshot":
        return op.kind != "delete"  # without both files there is simply no snapshot
    if op.target != "log":
        return True
    if op.kind in ("reformat", "torn-write"):
        return False
    if op.kind == "truncate":  # only the final newline went
        return False
    if op.kind == "swap-lines":
        count = len(template.records)
        return op.args[0] % count != op.args[1] % count
    if op.kind == "flip":
        data = template_log(template)
        position = op.args[0] % len(data)
        flipped = data[position] ^ (1 << op.args[1])
        if data[position] == ord("\n"):
            return flipped not in _BLANK  # a separator turned into junk, or into whitespace
        return False  # a case change of a crc hex digit: nothing changed that matters
    if op.kind == "insert-garbage":  # a line holding only whitespace or BOMs is formatting
        return bool(op.args[1].replace(b"\xef\xbb\xbf", b"").strip(_BLANK))
    return True  # duplicated or reordered lines


# -- checking ------------------------------------------------------------------------------


def _files(directory: Path) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    for path in sorted(directory.iterdir()):
        if path.name == LOCK_NAME:  # a writer creates it to lock, even when it then refuses
            continue
        mode = path.lstat().st_mode
        out[path.name] = path.read_bytes() if stat.S_ISREG(mode) else f"<mode {mode:o}>"
    return out


def _entries_of(kb: FaissKnowledgeBase) -> dict[str, dict[str, Any]]:
    return {e.id: e.model_dump(mode="json") for e in kb.list(active_only=False)}


def _index_problems(kb: FaissKnowledgeBase, template: Template) -> list[str]:
    state = kb._state
    active = {state.seq_of[e.id] for e in state.entries.values() if e.active}
    held = set(kb._text_index.ids().tolist())
    if held != active:
        return [f"text index holds {sorted(held)}, active entries are {sorted(active)}"]
    for seq in active:
        if not np.allclose(kb._text_index.reconstruct(seq), template.vectors[seq]):
            return [f"text index vector of seq {seq} differs from the log's"]
    return []


def verify(template: Template, directory: Path, ops: Sequence[Op]) -> list[str]:
    """Runs check, default open, repair and reopen on a damaged copy; returns what was wrong.

    An empty list means the knowledge base kept its promise for this damage.
    """
    problems: list[str] = []
    exp = expect(template, ops, directory)
    embedder = get_text_embedder()
    skip = KnowledgeBaseConfig(on_corrupt="skip")

    def never_acknowledged(messages: list[str]) -> bool:
        return any("never acknowledged" in m for m in messages)

    before = _files(directory)
    # 1. check: reads only, reports exactly what was lost.
    try:
        report = check(directory, text_embedder=embedder).to_dict()
    except CorrigibleError as exc:
        if not exp.unusable:
            problems.append(f"check failed: {type(exc).__name__}: {exc}")
        report = None
    if report is not None:
        if exp.unusable:
            problems.append("check accepted an unusable knowledge base")
        reported = {d["seq"] for d in report["damaged"]} | set(report["missing"])
        if reported != exp.lost:
            problems.append(f"check reported lost {sorted(reported)}, expected {sorted(exp.lost)}")
        if exp.causes is not None:
            causes = {d["seq"]: "damaged" for d in report["damaged"]}
            causes.update({seq: "missing" for seq in report["missing"]})
            if causes != exp.causes:
                problems.append(f"check gave causes {causes}, expected {exp.causes}")
        if exp.damage is not None and report["exit_code"] != int(exp.damage):
            problems.append(f"check exit {report['exit_code']}, expected {int(exp.damage)}")
        # Lost seqs are matched exactly above (as damaged or missing); beyond that nothing may
        # be called a torn, never-acknowledged write unless one was made.
        if not exp.torn_bytes and (
            report["torn_tail_bytes"] or never_acknowledged(report["messages"])
        ):
            problems.append("check called damage to acknowledged records never acknowledged")
    if _files(directory) != before:
        problems.append("check changed files")
    # 2. default open: refuses when acknowledged records were lost, changing nothing.
    try:
        with FaissKnowledgeBase(directory, text_embedder=embedder) as kb:
            if exp.unusable or exp.lost:
                problems.append("default open succeeded although records were lost or unusable")
            elif _entries_of(kb) != expected_entries(template, exp.survivors):
                problems.append("default open returned entries that differ from the model")
            else:
                problems += _index_problems(kb, template)
            claimed = never_acknowledged(kb.open_report.messages)
            if (exp.torn and not claimed) or (claimed and not exp.torn_bytes):
                problems.append(f"torn tail expected: {exp.torn}, reported: {claimed}")
    except LostRecordsError as exc:
        if not exp.lost:
            problems.append(f"default open refused: {exc}")
        elif set(exc.damaged) | set(exc.missing) != exp.lost:
            problems.append(f"refused with lost {exc.damaged + exc.missing}, not {exp.lost}")
        if _files(directory) != before:
            problems.append("a refused open changed files")
    except CorrigibleError as exc:
        if not exp.unusable:
            problems.append(f"default open failed: {type(exc).__name__}: {exc}")
    if exp.unusable:
        return problems
    # 3. repair: exactly the surviving entries, every loss reported, damaged bytes kept.
    try:
        with FaissKnowledgeBase(directory, config=skip, text_embedder=embedder) as kb:
            if _entries_of(kb) != expected_entries(template, exp.survivors):
                problems.append("repair returned entries that differ from the model")
            if set(kb.open_report.lost) != exp.lost and exp.lost:
                problems.append(f"repair reported lost {kb.open_report.lost}, not {exp.lost}")
            if not exp.torn_bytes and (
                kb.open_report.torn_tail_bytes or never_acknowledged(kb.open_report.messages)
            ):
                problems.append("repair called lost acknowledged records never acknowledged")
            damaged = [d for d in kb.open_report.damaged]
            if damaged and not any(".corrupt-damaged-" in p.name for p in kb.open_report.backups):
                problems.append("damaged records were not quarantined")
            problems += _index_problems(kb, template)
    except CorrigibleError as exc:
        problems.append(f"repair failed: {type(exc).__name__}: {exc}")
        return problems
    # 4. reopen: clean, same entries; check agrees.
    try:
        with FaissKnowledgeBase(directory, text_embedder=embedder) as kb:
            if kb.open_report.lost or not kb.open_report.is_clean:
                problems.append(f"reopen after repair not clean: {kb.open_report.messages}")
            if _entries_of(kb) != expected_entries(template, exp.survivors):
                problems.append("reopen after repair returned different entries")
        if check(directory, text_embedder=embedder).exit_code != 0:
            problems.append("check after repair still finds damage")
    except CorrigibleError as exc:
        problems.append(f"reopen after repair failed: {type(exc).__name__}: {exc}")
    return problems


# -- the corpus ----------------------------------------------------------------------------

# The corruption classes of `corpus`, in order.
CLASSES = (
    "line-endings",
    "bit-flip",
    "truncation",
    "lines",
    "torn-write",
    "files",
    "index",
    "manifest",
    "ack",
    "combined",
)


def corpus(template: Template) -> dict[str, list[tuple[Op, ...]]]:
    """Named corruption classes, each a list of cases (a case is a sequence of ops)."""
    log = template_log(template)
    records = template.records
    last = records[-1]
    newline = records[0].stop  # the first line's newline
    hex_letter = next(
        r.start + 8 + i for r in records for i, ch in enumerate(r.raw[8:16]) if ch in b"abcdef"
    )
    return {
        "line-endings": [(Op("log", "reformat", (name,)),) for name in REFORMATS],
        "bit-flip": [
            (Op("log", "flip", (last.stop - 3, 0)),),  # the last acknowledged record
            (Op("log", "flip", (records[0].start + 40, 2)),),  # the first
            (Op("log", "flip", (records[4].start + 2, 6)),),  # framing of a middle record
            (Op("log", "flip", (hex_letter, 5)),),  # crc digit case: nothing lost
            (Op("log", "flip", (newline, 0)),),  # separator -> whitespace
            (Op("log", "flip", (newline, 5)),),  # separator -> junk
            (Op("log", "flip", (len(log) - 1, 6)),),  # the final newline -> junk
        ],
        "truncation": [
            (Op("log", "truncate", (at,)),)
            for at in (0, 1, records[3].start, records[3].start + 30, last.stop - 1, last.stop)
        ],
        "lines": [
            (Op("log", "delete-line", (0,)),),
            (Op("log", "delete-line", (len(records) - 1,)),),
            (Op("log", "duplicate-line", (2, 6)),),
            (Op("log", "swap-lines", (1, 5)),),
            (Op("log", "insert-garbage", (3, b"not a record")),),
            (Op("log", "insert-garbage", (len(records), b"}{")),),  # after the last record
        ],
        "torn-write": [(Op("log", "torn-write", (n,)),) for n in (3, 40, 10**6)],
        "files": [
            (Op("log", "delete"),),
            (Op("log", "make-directory"),),
            (Op("log", "make-fifo"),),
            (Op("log", "concatenate"),),
            (Op("manifest", "newer-schema"),),
        ],
        "index": [
            (Op(target, kind, args),)
            for target in ("index", "meta", "snapshot")
            for kind, args in (("delete", ()), ("flip", (77, 1)), ("truncate", (50,)))
        ],
        "manifest": [
            (Op("manifest", kind, args),)
            for kind, args in (
                ("delete", ()),
                ("flip", (30, 0)),
                ("truncate", (20,)),
                ("garbage", (b"\x00\xff",)),
            )
        ],
        "ack": [
            (Op("ack", kind, args),)
            for kind, args in (("delete", ()), ("flip", (10, 3)), ("truncate", (90,)))
        ],
        "combined": [
            (Op("ack", "delete"), Op("log", "flip", (last.stop - 3, 0))),
            (Op("manifest", "delete"), Op("log", "reformat", ("crlf",))),
            (Op("index", "flip", (5, 5)), Op("log", "delete-line", (3,))),
            (Op("meta", "delete"), Op("log", "truncate", (records[5].start + 9,))),
            (Op("log", "reformat", ("crlf",)), Op("log", "flip", (records[2].start + 99, 1))),
            (Op("manifest", "delete"), Op("log", "delete")),
            (Op("ack", "truncate", (80,)), Op("log", "torn-write", (20,))),
        ],
    }


def run_case(template: Template, ops: Sequence[Op], workdir: Path) -> list[str]:
    """Copies the template, applies `ops` and verifies; never raises for a wrong outcome."""
    directory = template.copy_to(workdir / f"case-{len(list(workdir.iterdir()))}")
    for op in ops:
        apply_op(directory, template, op)
    try:
        return verify(template, directory, ops)
    except Exception as exc:  # noqa: BLE001 - an unexpected exception is the finding
        return [f"crashed: {type(exc).__name__}: {exc}"]


def run_corpus(workdir: str | Path | None = None) -> dict[str, Any]:
    """Runs every corpus case; per class: cases, ok, wrong (model violated), crashed.

    Returns:
        {"classes": {name: counts}, "failures": [{"class", "case", "problems"}], totals}.
    """
    with tempfile.TemporaryDirectory(prefix="kb-corpus-") as tmp:
        root = Path(workdir) if workdir is not None else Path(tmp)
        template = build_template(root / "template")
        cases_dir = root / "cases"
        cases_dir.mkdir()
        classes: dict[str, dict[str, int]] = {}
        failures: list[dict[str, Any]] = []
        for name, cases in corpus(template).items():
            counts = classes.setdefault(name, {"cases": 0, "ok": 0, "wrong": 0, "crashed": 0})
            for ops in cases:
                problems = run_case(template, ops, cases_dir)
                counts["cases"] += 1
                if not problems:
                    counts["ok"] += 1
                    continue
                counts["crashed" if problems[0].startswith("crashed") else "wrong"] += 1
                failures.append(
                    {"class": name, "case": [op.describe() for op in ops], "problems": problems}
                )
        totals = {
            key: sum(c[key] for c in classes.values())
            for key in ("cases", "ok", "wrong", "crashed")
        }
        return {"classes": classes, "failures": failures, **totals}
