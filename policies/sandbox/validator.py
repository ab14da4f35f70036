"""Static checks of a generated program before it runs: syntax, sandbox rules, undefined calls."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from corrigible.errors import did_you_mean
from corrigible.policies.sandbox import allowlists, checker
from corrigible.policies.sandbox.result import ErrorClass


@dataclass(frozen=True, kw_only=True)
class ValidationProblem:
    """One reason a program may not run, with the 1-based line it sits on."""

    error_class: ErrorClass  # SYNTAX, FORBIDDEN or UNKNOWN_API
    line: int | None  # 1-based line, None when the parser could not say
    col: int | None  # 0-based column, None when unknown
    message: str  # what is wrong and what to write instead

    def to_json(self) -> dict[str, Any]:
        """Returns a JSON-able dict."""
        return {
            "error_class": str(self.error_class),
            "line": self.line,
            "col": self.col,
            "message": self.message,
        }


@dataclass(frozen=True, kw_only=True)
class ValidationReport:
    """Everything `validate_program` found.

    `undefined_calls` lists names the program calls but nobody defines, in order of first use;
    each also appears in `problems` as UNKNOWN_API so a plain runner refuses the program, while
    a Code-as-Policies planner can instead generate those functions (fgen) and re-validate.
    """

    problems: tuple[ValidationProblem, ...]  # sorted: syntax/forbidden by line, then unknown_api
    undefined_calls: tuple[str, ...]  # called names defined nowhere

    @property
    def ok(self) -> bool:
        """True when the program may run as is."""
        return not self.problems

    @property
    def is_safe(self) -> bool:
        """True when the only problems are undefined calls (the program breaks no rule)."""
        return all(p.error_class is ErrorClass.UNKNOWN_API for p in self.problems)

    @property
    def first_problem(self) -> ValidationProblem | None:
        """The problem to report first: a syntax or rule violation before an unknown name."""
        return self.problems[0] if self.problems else None

    def to_json(self) -> dict[str, Any]:
        """Returns a JSON-able dict."""
        return {
            "ok": self.ok,
            "problems": [p.to_json() for p in self.problems],
            "undefined_calls": list(self.undefined_calls),
        }


def validate_program(source: str, api_names: Collection[str]) -> ValidationReport:
    """Checks `source` against the sandbox rules without running it.

    Args:
        source: the generated Python program.
        api_names: names of the robot API functions the program may call.

    Returns:
        A report listing syntax errors, rule violations (imports, dunder names, private or
        non-allowlisted attributes, exec/eval/open/getattr/..., `.format`, classes, `with`,
        `global`) and calls to names defined nowhere.
    """
    if not isinstance(source, str):
        raise TypeError(f"source must be str, got {type(source).__name__}")
    api = frozenset(api_names)
    tree, raw = checker.check_source(source, api)
    problems: list[ValidationProblem] = []
    undefined: list[str] = []
    known = sorted(api | allowlists.ALLOWED_BUILTINS)
    for p in raw:
        message = p.message
        if p.error_class == checker.UNKNOWN_API and p.name is not None:
            name = p.name
            undefined.append(name)
            hint = did_you_mean(name, known)
            message = f"{message}; it is neither a robot API function nor a builtin.{hint}"
        problems.append(
            ValidationProblem(
                error_class=ErrorClass(p.error_class), line=p.line, col=p.col, message=message
            )
        )
    return ValidationReport(problems=tuple(problems), undefined_calls=tuple(undefined))
