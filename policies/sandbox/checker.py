"""The sandbox's static checker: applies the allowlists to a program's syntax tree.

`check_source` parses a program and returns every rule violation (syntax, forbidden syntax,
names and attributes) and every call to a name defined nowhere. The lists themselves live in
`allowlists.py`. Both modules import only the standard library, because the sandbox child
process loads them by file path (without the `corrigible` package) to re-check the program
after the parent did: defence in depth if the parent-side check is ever bypassed.
"""

from __future__ import annotations

import ast
import sys
import unicodedata
from collections.abc import Collection, Iterable
from typing import NamedTuple

# The child loads allowlists.py by path under this private name before loading this module; in
# the parent the package import is used.
allowlists = sys.modules.get("_corrigible_sandbox_allowlists")
if allowlists is None:
    from corrigible.policies.sandbox import allowlists

# Error class names, mirrored by `result.ErrorClass` (kept as plain strings here so this module
# stays importable in the child without the package).
SYNTAX = "syntax"
FORBIDDEN = "forbidden"
UNKNOWN_API = "unknown_api"

# File name the program's code objects carry; the child's tracer keys on it.
PROGRAM_FILENAME = "<program>"
_SHOWN_NAME_CHARS = 60  # longer names are cut in messages (a name may be 64 KiB long)


class Problem(NamedTuple):
    """One rule violation: error class name, 1-based line (or None), column and message."""

    error_class: str
    line: int | None
    col: int | None
    message: str
    name: str | None = None  # the undefined name, for UNKNOWN_API problems


def shown(name: str) -> str:
    """`repr(name)`, cut to a readable length (messages must stay small)."""
    if len(name) > _SHOWN_NAME_CHARS:
        return repr(name[: _SHOWN_NAME_CHARS - 3] + "...")
    return repr(name)


def unparsable_message(exc: BaseException) -> str:
    """Says why the parser or compiler gave up on a program with no SyntaxError.

    CPython raises RecursionError or MemoryError (often with an empty message) for input
    nested deeper than it can handle, and ValueError for NUL bytes.
    """
    if isinstance(exc, RecursionError | MemoryError):
        return (
            f"program cannot be parsed: it is nested too deeply ({type(exc).__name__} in the "
            "parser; e.g. thousands of nested brackets, operators or 'not's); flatten it"
        )
    detail = str(exc) or type(exc).__name__
    return f"program cannot be parsed: {detail}"


def normalize(name: str) -> str:
    """NFKC-normalises an identifier the way the Python parser does.

    The AST already holds normalised identifiers ('＿' variants and full-width letters fold
    to ASCII); normalising again is idempotent and guards callers that pass raw strings.
    """
    return unicodedata.normalize("NFKC", name)


def identifier_problem(name: str) -> str | None:
    """Returns why a variable, function or argument name is refused, or None if it is fine.

    Names starting with '_' are refused (dunders such as `__builtins__`, `__import__`,
    `__class__` reach interpreter state); the single throwaway name `_` is allowed.
    """
    name = normalize(name)
    if name.startswith("_") and name != "_":
        return f"name {shown(name)} starts with '_'; private and dunder names are not allowed"
    if name in allowlists.FORBIDDEN_NAMES:
        return f"name {name!r} is not available in the sandbox (it can escape or introspect)"
    return None


def attribute_problem(attr: str) -> str | None:
    """Returns why reading attribute `attr` is refused, or None if it is on the allowlist."""
    attr = normalize(attr)
    if attr.startswith("_"):
        return (
            f"attribute {shown(attr)} starts with '_'; private and dunder attributes are not "
            "allowed"
        )
    if attr in allowlists.FORMAT_ATTRIBUTES:
        return (
            f"'.{attr}()' is not allowed (format fields can read attributes); "
            "use an f-string or '+' instead"
        )
    if attr.startswith(allowlists.INTERNAL_PREFIXES) or attr in allowlists.INTERNAL_ATTRIBUTES:
        return f"attribute {attr!r} reaches interpreter, memory or file internals"
    if attr not in allowlists.SAFE_ATTRIBUTES:
        return f"attribute {shown(attr)} is not on the sandbox allowlist"
    return None


def _namespace_problem(node: ast.Attribute) -> str | None:
    """Checks `np.x`, `np.linalg.x` and `math.x` against their member allowlists."""
    value = node.value
    if isinstance(value, ast.Name) and value.id in allowlists.NAMESPACE_MEMBERS:
        if node.attr not in allowlists.NAMESPACE_MEMBERS[value.id]:
            return f"{shown(value.id + '.' + node.attr)} is not available in the sandbox"
    if (
        isinstance(value, ast.Attribute)
        and value.attr == "linalg"
        and isinstance(value.value, ast.Name)
        and value.value.id == "np"
        and node.attr not in allowlists.NUMPY_LINALG_NAMES
    ):
        return f"{shown('np.linalg.' + node.attr)} is not available in the sandbox"
    return None


def parse(source: str) -> tuple[ast.Module | None, Problem | None]:
    """Parses `source`; returns (tree, None) or (None, a syntax Problem).

    Deeply nested input makes CPython's parser raise RecursionError or MemoryError rather than
    SyntaxError; both are reported as syntax problems that name the nesting, as are NUL bytes
    (ValueError).
    """
    try:
        tree = ast.parse(source, filename=PROGRAM_FILENAME, mode="exec")
        # The parser accepts some programs only the compiler rejects ('return' outside a
        # function, duplicate arguments); compiling (never running) catches those too.
        compile(tree, PROGRAM_FILENAME, "exec", dont_inherit=True)
    except SyntaxError as exc:
        msg = f"{type(exc).__name__}: {exc.msg}"
        return None, Problem(SYNTAX, exc.lineno, exc.offset, msg)
    except (ValueError, RecursionError, MemoryError) as exc:
        return None, Problem(SYNTAX, None, None, unparsable_message(exc))
    return tree, None


def check_tree(tree: ast.AST) -> list[Problem]:
    """Returns every rule violation in `tree`, in source order.

    The walk is iterative, so a pathologically deep tree cannot exhaust the checker's own
    stack. The inside of a refused construct is not reported again; nodes without a position
    (`withitem`, `match_case`) take their parent's line.
    """
    problems: list[Problem] = []
    stack: list[tuple[ast.AST, int | None]] = [(tree, None)]

    def add(node: ast.AST, message: str) -> None:
        problems.append(Problem(FORBIDDEN, line, getattr(node, "col_offset", None), message))

    while stack:
        node, parent_line = stack.pop()
        line = getattr(node, "lineno", None) or parent_line
        kind = type(node)
        if kind not in allowlists.ALLOWED_NODES:
            reason = allowlists.NODE_REASONS.get(
                kind.__name__, f"'{kind.__name__}' syntax is not allowed"
            )
            add(node, reason)
            continue
        stack.extend((child, line) for child in ast.iter_child_nodes(node))
        if kind is ast.Name:
            why = identifier_problem(node.id)
            if why:
                add(node, why)
            elif not isinstance(node.ctx, ast.Load) and node.id in allowlists.NAMESPACES:
                add(
                    node, f"'{node.id}' is reserved for the sandbox's {node.id} and cannot be bound"
                )
        elif kind is ast.Attribute:
            if normalize(node.attr).startswith("_"):
                why = attribute_problem(node.attr)
            elif not isinstance(node.ctx, ast.Load):
                why = (
                    f"assigning or deleting attribute {shown(node.attr)} is not allowed; use a dict"
                )
            else:
                why = _namespace_problem(node) or attribute_problem(node.attr)
            if why:
                add(node, why)
        elif kind is ast.FunctionDef:
            why = identifier_problem(node.name)
            if why:
                add(node, why)
            elif node.name in allowlists.NAMESPACES:
                add(node, f"'{node.name}' is reserved for the sandbox and cannot be bound")
        elif kind is ast.arg:
            why = identifier_problem(node.arg)
            if why:
                add(node, why)
        elif kind is ast.keyword:
            if node.arg is not None and normalize(node.arg).startswith("_"):
                add(node, f"keyword argument {shown(node.arg)} starts with '_'")
        elif kind is ast.ExceptHandler:
            if node.name is not None:
                why = identifier_problem(node.name)
                if why:
                    add(node, why)
    problems.sort(key=lambda p: (p.line or 0, p.col or 0))  # None (unknown) first
    return problems


def bound_names(tree: ast.AST) -> set[str]:
    """Every name the program binds anywhere (assignment, def, argument, loop, except, walrus).

    Scope is ignored on purpose: the question is whether a called name could ever exist, and
    without `global`, imports or `exec` every binding is visible in the source.
    """
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


def undefined_calls(tree: ast.AST, api_names: Iterable[str]) -> list[tuple[str, int | None]]:
    """Names called as `name(...)` that neither the program, the API nor the builtins define.

    Returns (name, first line) pairs in source order; Code-as-Policies' fgen writes these.
    """
    known = (
        bound_names(tree)
        | set(api_names)
        | allowlists.ALLOWED_BUILTINS
        | allowlists.NAMESPACES
        | allowlists.FORBIDDEN_NAMES
    )
    first: dict[str, int | None] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            name = node.func.id
            if name not in known:
                line = node.lineno
                if name not in first or (line or 0) < (first[name] or 0):
                    first[name] = line
    return sorted(first.items(), key=lambda item: (item[1] or 0, item[0]))


def check_source(
    source: str, api_names: Collection[str]
) -> tuple[ast.Module | None, list[Problem]]:
    """Parses and checks `source`; returns the tree (None on syntax errors) and all problems.

    Undefined calls are included as UNKNOWN_API problems after the rule violations.
    """
    tree, syntax = parse(source)
    if tree is None:
        return None, [syntax] if syntax else []
    problems = check_tree(tree)
    for name, line in undefined_calls(tree, api_names):
        problems.append(
            Problem(UNKNOWN_API, line, None, f"{shown(name)} is called but is not defined", name)
        )
    return tree, problems
