"""A program as subgoals: the statements up to and including each checkpoint.

Repair resumes from the failed subgoal: the remainder of a program is the subgoal holding the
failing line and every one after it. A subgoal is a run of top-level statements ending with a
statement that calls `checkpoint` (a loop that checkpoints inside is one subgoal); statements
after the last checkpoint form a final subgoal without an expectation. The instruction's
docstring line (the planners' first line) belongs to no subgoal and is kept as the header.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Subgoal:
    """One subgoal of a program."""

    index: int  # 0-based position in the program
    first_line: int  # 1-based, inclusive
    last_line: int  # 1-based, inclusive
    source: str  # its statements, as written
    name: str | None  # the checkpoint's name, when written as a literal
    expect: str | None  # the checkpoint's expectation, when written as a literal
    objects: tuple[str, ...]  # literal object arguments of its placing calls
    targets: tuple[str, ...]  # literal target arguments of its placing calls


@dataclass(frozen=True, kw_only=True)
class ProgramParts:
    """A program split into its header and subgoals."""

    header: str  # the docstring line(s) before the first statement that acts, or ""
    subgoals: tuple[Subgoal, ...]

    def at_line(self, line: int | None) -> Subgoal | None:
        """The subgoal holding a 1-based program line."""
        if line is None:
            return None
        return next((s for s in self.subgoals if s.first_line <= line <= s.last_line), None)

    def remainder(self, start: int) -> str:
        """The program from subgoal `start` on, with the header."""
        body = "\n".join(s.source for s in self.subgoals[start:])
        return (self.header + "\n" if self.header else "") + body + "\n"


def _calls(node: ast.AST, name: str) -> list[ast.Call]:
    return [
        n
        for n in ast.walk(node)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == name
    ]


def _literal(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _argument(call: ast.Call, position: int, keyword: str) -> ast.AST | None:
    if len(call.args) > position:
        return call.args[position]
    return next((k.value for k in call.keywords if k.arg == keyword), None)


def split_program(source: str) -> ProgramParts:
    """Splits `source` into subgoals (one subgoal for the whole when it does not parse)."""
    lines = source.splitlines()
    try:
        tree = ast.parse(source)
    except SyntaxError:
        whole = Subgoal(
            index=0,
            first_line=1,
            last_line=max(len(lines), 1),
            source=source.rstrip("\n"),
            name=None,
            expect=None,
            objects=(),
            targets=(),
        )
        return ProgramParts(header="", subgoals=(whole,))
    body = list(tree.body)
    header = ""
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        first = body.pop(0)
        header = "\n".join(lines[first.lineno - 1 : first.end_lineno])
    groups: list[list[ast.stmt]] = [[]]
    for stmt in body:
        groups[-1].append(stmt)
        if _calls(stmt, "checkpoint"):
            groups.append([])
    groups = [g for g in groups if g]
    subgoals = []
    for i, group in enumerate(groups):
        first, last = group[0].lineno, group[-1].end_lineno or group[-1].lineno
        checks = [c for stmt in group for c in _calls(stmt, "checkpoint")]
        check = checks[-1] if checks else None
        puts = [c for stmt in group for c in _calls(stmt, "put_first_on_second")]
        subgoals.append(
            Subgoal(
                index=i,
                first_line=first,
                last_line=last,
                source="\n".join(lines[first - 1 : last]),
                name=_literal(_argument(check, 0, "name")) if check else None,
                expect=_literal(_argument(check, 1, "expect")) if check else None,
                objects=tuple(o for c in puts if (o := _literal(_argument(c, 0, "obj")))),
                targets=tuple(t for c in puts if (t := _literal(_argument(c, 1, "target")))),
            )
        )
    return ProgramParts(header=header, subgoals=tuple(subgoals))


__all__ = ["ProgramParts", "Subgoal", "split_program"]
