"""Damage to every file of a knowledge base, against a model of what must survive.

The corpus (`memory/corruption.py`, named cases per class) runs in CI; the property-based tests
draw random corruptions of every file (truncation at any byte, bit flips, line-ending changes,
deleted / duplicated / reordered / inserted lines, a torn final write, a deleted or damaged
index, meta, manifest or ack file) and check each with the same model:

* every acknowledged entry whose bytes are intact is recovered with identical content;
* nothing unacknowledged appears (the entries are exactly those of the surviving records);
* every loss is reported, with the right cause (damaged / missing, never "never acknowledged"),
  a default open refuses and changes nothing, `check` writes nothing, repair quarantines.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corrigible.memory.corruption import (
    CLASSES,
    REFORMATS,
    Op,
    build_template,
    corpus,
    run_case,
)


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return build_template(tmp_path_factory.mktemp("template") / "kb")


@pytest.mark.parametrize("name", CLASSES)
def test_corruption_corpus(template, tmp_path, name):
    """Every named case of one class keeps the promise (0 wrong, 0 crashed)."""
    failures = {}
    for ops in corpus(template)[name]:
        problems = run_case(template, ops, tmp_path)
        if problems:
            failures[" + ".join(op.describe() for op in ops)] = problems
    assert not failures


_position = st.integers(0, 10**6)  # taken modulo the file's size by apply_op
_junk = st.binary(min_size=1, max_size=24).filter(lambda b: b.strip() and b"\n" not in b)

log_ops = st.one_of(
    st.builds(lambda at: Op("log", "truncate", (at,)), _position),
    st.builds(lambda p, b: Op("log", "flip", (p, b)), _position, st.integers(0, 7)),
    st.sampled_from(sorted(REFORMATS)).map(lambda name: Op("log", "reformat", (name,))),
    st.builds(lambda k: Op("log", "delete-line", (k,)), st.integers(0, 99)),
    st.builds(lambda k, to: Op("log", "duplicate-line", (k, to)), _position, _position),
    st.builds(lambda i, j: Op("log", "swap-lines", (i, j)), _position, _position),
    st.builds(lambda k, junk: Op("log", "insert-garbage", (k, junk)), _position, _junk),
    st.builds(lambda n: Op("log", "torn-write", (n,)), _position),
    st.just(Op("log", "delete")),
)
# Truncation stays below every file's size (150 bytes) so that it always changes the file.
other_ops = st.builds(
    Op,
    st.sampled_from(["manifest", "ack", "index", "meta", "snapshot"]),
    st.sampled_from(["delete", "flip", "truncate", "garbage"]),
).flatmap(
    lambda op: {
        "delete": st.just(op),
        "flip": st.builds(lambda p, b: Op(op.target, "flip", (p, b)), _position, st.integers(0, 7)),
        "truncate": st.builds(lambda at: Op(op.target, "truncate", (at,)), st.integers(0, 150)),
        "garbage": st.builds(lambda g: Op(op.target, "garbage", (g,)), st.binary(max_size=40)),
    }[op.kind]
)
# At most one file besides the log is damaged, so that entries.ack or the snapshot meta still
# says which records were acknowledged (without either, a loss at the very end of the log
# cannot be detected by anyone, and the README says so).
corruptions = st.tuples(st.lists(log_ops, min_size=0, max_size=2), st.none() | other_ops).map(
    lambda pair: tuple(pair[0]) + ((pair[1],) if pair[1] is not None else ())
)


def _run(template, ops):
    with tempfile.TemporaryDirectory(prefix="kb-prop-") as tmp:
        return run_case(template, ops, Path(tmp))


_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@settings(max_examples=60, **_SETTINGS)
@given(ops=corruptions)
def test_random_corruptions_keep_every_intact_acknowledged_entry(template, ops):
    assert _run(template, ops) == []


@settings(max_examples=40, **_SETTINGS)
@given(op=log_ops)
def test_one_log_corruption_reports_each_loss_with_its_cause(template, op):
    """A single corruption of the log: exact causes (damaged / missing) and check's exit code."""
    assert _run(template, (op,)) == []


@pytest.mark.slow
@settings(max_examples=1500, **_SETTINGS)
@given(ops=corruptions)
def test_random_corruptions_at_length(template, ops):
    assert _run(template, ops) == []
