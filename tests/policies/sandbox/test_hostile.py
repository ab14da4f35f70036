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


@pytest.mark.parametrize("program", PROGRAMS, ids=[p.name for p in PROGRAMS])
def test_hostile_program_is_contained(program) -> None:
    outcome = run_hostile_program(program)
    assert outcome.escapes == [], outcome.to_json()
    assert outcome.matched, outcome.to_json()
    if not outcome.result.is_ok:
        assert outcome.result.message
