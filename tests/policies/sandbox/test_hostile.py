"""Every hostile program is stopped with its expected error class and leaves no trace behind."""

from __future__ import annotations

from collections import Counter

import pytest

from corrigible.policies.sandbox.hostile_report import (
    HOSTILE_DIR,
    load_hostile_programs,
    run_hostile_program,
)

PROGRAMS = load_hostile_programs()


def test_hostile_set_is_large_and_covers_every_class() -> None:
    assert len(PROGRAMS) >= 60
    expected = Counter(e for p in PROGRAMS for e in p.expected)
    for error_class in ("forbidden", "memory", "timeout", "limit", "runtime", "syntax", "ok"):
        assert expected[error_class] >= 1, error_class
    assert sum(1 for p in PROGRAMS if p.expected == ("ok",)) >= 5  # benign controls
    assert all(p.attempt for p in PROGRAMS)


def test_hostile_set_is_data_not_a_package() -> None:
    assert not (HOSTILE_DIR / "__init__.py").exists()
    files = sorted(p.name for p in HOSTILE_DIR.iterdir() if p.suffix in (".py", ".txt"))
    assert files == sorted(p.path.name for p in PROGRAMS)  # every program file is read


def test_hostile_set_reproduces_every_hardening_class() -> None:
    names = {p.name for p in PROGRAMS}
    for name in (
        "recursion_caught_then_loop",  # step budget and lines after a caught RecursionError
        "recursion_loop_at_the_limit",
        "generator_finally_after_error",  # no program code after the outcome is decided
        "generator_finally_after_limit",
        "slow_robot_calls",  # wall time includes robot calls
        "fake_memory_error_on_stderr",  # classification from the child's report only
        "nan_arguments",  # strict JSON
        "huge_api_call_trace",  # output caps on the trace and messages
        "huge_api_error_messages",
        "validation_problem_flood",
        "validation_long_name",
        "deep_not_nesting",  # a message that names the nesting
        "instruction_injection_comment",  # what a planner pasting user text produced
    ):
        assert name in names, name
    by_name = {p.name: p for p in PROGRAMS}
    assert by_name["generator_finally_after_error"].max_api_calls == 0
    assert by_name["recursion_caught_then_loop"].expected_lines == (15, 16)


@pytest.mark.parametrize("program", PROGRAMS, ids=[p.name for p in PROGRAMS])
def test_hostile_program_is_contained(program) -> None:
    outcome = run_hostile_program(program)
    assert outcome.escapes == [], outcome.to_json()
    assert not outcome.misclassified, outcome.to_json()
