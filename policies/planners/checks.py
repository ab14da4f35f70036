"""Warnings about programs that run but cannot be monitored (no checkpoint after subgoals)."""

from __future__ import annotations

import ast

_SUBGOAL_CALLS = frozenset({"put_first_on_second", "place", "push", "open_drawer", "close_drawer"})


def _calls(tree: ast.AST) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]


def checkpoint_warnings(source: str) -> list[str]:
    """Why a program's failures would be found late, or an empty list.

    A program that moves objects but calls `checkpoint(name, expect=...)` nowhere, or never
    with an expectation, cannot be judged by a monitor until it ends, so a failed subgoal is
    neither localised nor repaired where it happened. Unparsable source gives no warning here:
    the sandbox's validator reports it.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    calls = _calls(tree)
    subgoals = [c for c in calls if c.func.id in _SUBGOAL_CALLS]  # type: ignore[attr-defined]
    checks = [c for c in calls if c.func.id == "checkpoint"]  # type: ignore[attr-defined]
    if not subgoals:
        return []
    if not checks:
        return [
            f"the program has {len(subgoals)} subgoal call(s) and no checkpoint(name, expect=...);"
            " add one after every subgoal so a monitor can judge it"
        ]
    with_expect = [
        c for c in checks if len(c.args) > 1 or any(k.arg == "expect" for k in c.keywords)
    ]
    if not with_expect:
        return [
            "no checkpoint states an expectation; write checkpoint(name, expect='in(x, y)') "
            "so a monitor can judge the subgoal"
        ]
    return []


__all__ = ["checkpoint_warnings"]
