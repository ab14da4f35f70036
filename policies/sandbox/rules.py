"""The sandbox's static rules: which syntax, names and attributes a generated program may use.

This module is the single source of truth for the allowlists. It imports only the standard library
because the sandbox child process loads it by file path (without the `corrigible` package) to
re-check the program after the parent did: defence in depth if the parent-side check is ever
bypassed.

The rules are allowlists, not denylists. A node type, builtin name or attribute name that is not
listed is refused, so a Python release that adds a new introspection attribute does not silently
open a hole. The denylist constants below exist only to give sharper error messages.
"""

from __future__ import annotations

import ast
import unicodedata
from collections.abc import Collection, Iterable
from typing import NamedTuple

# Error class names, mirrored by `result.ErrorClass` (kept as plain strings here so this module
# stays importable in the child without the package).
SYNTAX = "syntax"
FORBIDDEN = "forbidden"
UNKNOWN_API = "unknown_api"

# File name the program's code objects carry; the child's tracer keys on it.
PROGRAM_FILENAME = "<program>"

# Syntax a program may use. Everything else (imports, classes, `with`, `global`, `match`, async)
# is refused: each of those either reaches outside the program's namespace or calls dunder
# methods by name behind the AST's back (`with` calls __exit__ with a traceback, `match` class
# patterns look attributes up from strings, `class` runs metaclass machinery).
ALLOWED_NODES: frozenset[type[ast.AST]] = frozenset(
    {
        ast.Module,
        ast.Expr,
        ast.Assign,
        ast.AugAssign,
        ast.AnnAssign,
        ast.For,
        ast.While,
        ast.If,
        ast.Break,
        ast.Continue,
        ast.Pass,
        ast.Return,
        ast.FunctionDef,
        ast.Lambda,
        ast.Try,
        ast.ExceptHandler,
        ast.Raise,
        ast.Assert,
        ast.Delete,
        ast.Yield,
        ast.YieldFrom,
        ast.BoolOp,
        ast.BinOp,
        ast.UnaryOp,
        ast.IfExp,
        ast.Dict,
        ast.Set,
        ast.ListComp,
        ast.SetComp,
        ast.DictComp,
        ast.GeneratorExp,
        ast.Compare,
        ast.Call,
        ast.FormattedValue,
        ast.JoinedStr,
        ast.Constant,
        ast.Attribute,
        ast.Subscript,
        ast.Starred,
        ast.Name,
        ast.List,
        ast.Tuple,
        ast.Slice,
        ast.NamedExpr,
        ast.keyword,
        ast.arguments,
        ast.arg,
        ast.comprehension,
        # Contexts and operators carry no behaviour of their own.
        ast.Load,
        ast.Store,
        ast.Del,
        ast.And,
        ast.Or,
        ast.Add,
        ast.Sub,
        ast.Mult,
        ast.MatMult,
        ast.Div,
        ast.Mod,
        ast.Pow,
        ast.LShift,
        ast.RShift,
        ast.BitOr,
        ast.BitXor,
        ast.BitAnd,
        ast.FloorDiv,
        ast.Invert,
        ast.Not,
        ast.UAdd,
        ast.USub,
        ast.Eq,
        ast.NotEq,
        ast.Lt,
        ast.LtE,
        ast.Gt,
        ast.GtE,
        ast.Is,
        ast.IsNot,
        ast.In,
        ast.NotIn,
    }
)

# Why a refused node type is refused, for the error message.
_NODE_REASONS: dict[str, str] = {
    "Import": "imports are not allowed; `np` and `math` are already available",
    "ImportFrom": "imports are not allowed; `np` and `math` are already available",
    "ClassDef": "class definitions are not allowed; use dicts and functions",
    "With": "`with` blocks are not allowed (they call hidden methods with tracebacks)",
    "AsyncWith": "async code is not allowed",
    "AsyncFor": "async code is not allowed",
    "AsyncFunctionDef": "async code is not allowed",
    "Await": "async code is not allowed",
    "Global": "`global` is not allowed; pass values as arguments and return them",
    "Nonlocal": "`nonlocal` is not allowed; pass values as arguments and return them",
    "Match": "`match` is not allowed (class patterns look attributes up by name); use if/elif",
    "TryStar": "`except*` is not allowed",
}

# Builtins a program may use. `print` is replaced in the child by a capped capture.
ALLOWED_BUILTINS: frozenset[str] = frozenset(
    {
        "abs",
        "all",
        "any",
        "ascii",
        "bin",
        "bool",
        "callable",
        "chr",
        "complex",
        "dict",
        "divmod",
        "enumerate",
        "filter",
        "float",
        "frozenset",
        "hash",
        "hex",
        "int",
        "isinstance",
        "issubclass",
        "iter",
        "len",
        "list",
        "map",
        "max",
        "min",
        "next",
        "oct",
        "ord",
        "pow",
        "print",
        "range",
        "repr",
        "reversed",
        "round",
        "set",
        "slice",
        "sorted",
        "str",
        "sum",
        "tuple",
        "zip",
        # Exceptions a program may raise and catch.
        "ArithmeticError",
        "AssertionError",
        "AttributeError",
        "Exception",
        "IndexError",
        "KeyError",
        "LookupError",
        "NameError",
        "NotImplementedError",
        "OverflowError",
        "RuntimeError",
        "StopIteration",
        "TypeError",
        "ValueError",
        "ZeroDivisionError",
        # Errors the robot API raises into the program (defined in the child).
        "ApiError",
        "SkillError",
        "UnknownObjectError",
        "SafetyError",
    }
)

# Names bound to restricted module stand-ins; a program may not rebind them.
NAMESPACES: frozenset[str] = frozenset({"np", "math"})

# Names that are escape primitives or reach interpreter state. Refused even if the program
# defines them itself, so that the message is always "forbidden", never a confusing NameError.
FORBIDDEN_NAMES: frozenset[str] = frozenset(
    {
        "eval",
        "exec",
        "compile",
        "open",
        "getattr",
        "setattr",
        "delattr",
        "hasattr",
        "globals",
        "locals",
        "vars",
        "dir",
        "type",
        "object",
        "super",
        "input",
        "breakpoint",
        "help",
        "memoryview",
        "bytearray",
        "bytes",
        "exit",
        "quit",
        "copyright",
        "credits",
        "license",
        "classmethod",
        "staticmethod",
        "property",
        "id",
        "format",
        "aiter",
        "anext",
        "BaseException",
        "SystemExit",
        "KeyboardInterrupt",
        "GeneratorExit",
        "numpy",
        "os",
        "sys",
        "builtins",
    }
)

# NumPy functions and constants reachable as `np.<name>`. Nothing that reads or writes files
# (load, save, fromfile, memmap, genfromtxt, loadtxt, DataSource), reaches ctypes or raw memory
# (ctypeslib, frombuffer, as_strided, ndarray, empty), changes global state (seterr,
# set_printoptions) or wraps arbitrary callables into new objects (vectorize, frompyfunc).
NUMPY_NAMES: frozenset[str] = frozenset(
    {
        "pi",
        "e",
        "inf",
        "nan",
        "newaxis",
        "float32",
        "float64",
        "int32",
        "int64",
        "uint8",
        "bool_",
        "array",
        "asarray",
        "copy",
        "zeros",
        "ones",
        "full",
        "zeros_like",
        "ones_like",
        "full_like",
        "arange",
        "linspace",
        "eye",
        "identity",
        "diag",
        "meshgrid",
        "concatenate",
        "stack",
        "vstack",
        "hstack",
        "column_stack",
        "split",
        "array_split",
        "reshape",
        "ravel",
        "transpose",
        "squeeze",
        "expand_dims",
        "atleast_1d",
        "atleast_2d",
        "broadcast_to",
        "flip",
        "fliplr",
        "flipud",
        "roll",
        "rot90",
        "tile",
        "repeat",
        "append",
        "insert",
        "delete",
        "take",
        "where",
        "argwhere",
        "nonzero",
        "count_nonzero",
        "clip",
        "abs",
        "absolute",
        "sign",
        "sqrt",
        "cbrt",
        "square",
        "exp",
        "log",
        "log2",
        "log10",
        "log1p",
        "expm1",
        "power",
        "sin",
        "cos",
        "tan",
        "arcsin",
        "arccos",
        "arctan",
        "arctan2",
        "hypot",
        "sinh",
        "cosh",
        "tanh",
        "deg2rad",
        "rad2deg",
        "degrees",
        "radians",
        "floor",
        "ceil",
        "round",
        "around",
        "rint",
        "trunc",
        "mod",
        "fmod",
        "remainder",
        "add",
        "subtract",
        "multiply",
        "divide",
        "true_divide",
        "floor_divide",
        "negative",
        "maximum",
        "minimum",
        "fmax",
        "fmin",
        "sum",
        "prod",
        "cumsum",
        "cumprod",
        "mean",
        "median",
        "average",
        "std",
        "var",
        "min",
        "max",
        "amin",
        "amax",
        "ptp",
        "argmin",
        "argmax",
        "argsort",
        "sort",
        "unique",
        "searchsorted",
        "digitize",
        "bincount",
        "percentile",
        "quantile",
        "histogram",
        "dot",
        "vdot",
        "inner",
        "outer",
        "cross",
        "matmul",
        "tensordot",
        "trace",
        "isclose",
        "allclose",
        "array_equal",
        "isnan",
        "isinf",
        "isfinite",
        "all",
        "any",
        "logical_and",
        "logical_or",
        "logical_not",
        "logical_xor",
        "isin",
        "intersect1d",
        "union1d",
        "setdiff1d",
        "nan_to_num",
        "interp",
        "diff",
        "gradient",
        "convolve",
        "polyfit",
        "polyval",
        "cov",
        "corrcoef",
        "linalg",
    }
)

# `np.linalg.<name>`.
NUMPY_LINALG_NAMES: frozenset[str] = frozenset(
    {
        "norm",
        "inv",
        "pinv",
        "det",
        "solve",
        "lstsq",
        "eig",
        "eigh",
        "eigvals",
        "svd",
        "qr",
        "cholesky",
        "matrix_rank",
        "matrix_power",
        "multi_dot",
    }
)

# `math.<name>`: the math module holds only pure functions of numbers.
MATH_NAMES: frozenset[str] = frozenset(
    {
        "pi",
        "e",
        "tau",
        "inf",
        "nan",
        "sqrt",
        "cbrt",
        "exp",
        "exp2",
        "expm1",
        "log",
        "log2",
        "log10",
        "log1p",
        "pow",
        "sin",
        "cos",
        "tan",
        "asin",
        "acos",
        "atan",
        "atan2",
        "sinh",
        "cosh",
        "tanh",
        "asinh",
        "acosh",
        "atanh",
        "hypot",
        "dist",
        "degrees",
        "radians",
        "floor",
        "ceil",
        "trunc",
        "fabs",
        "fmod",
        "remainder",
        "copysign",
        "isclose",
        "isfinite",
        "isinf",
        "isnan",
        "factorial",
        "comb",
        "perm",
        "gcd",
        "lcm",
        "prod",
        "fsum",
        "isqrt",
        "modf",
        "frexp",
        "ldexp",
        "erf",
        "erfc",
        "gamma",
        "lgamma",
    }
)

_NAMESPACE_MEMBERS: dict[str, frozenset[str]] = {"np": NUMPY_NAMES, "math": MATH_NAMES}

# Methods and data attributes of plain values (str, list, dict, set, numbers, ndarrays,
# exceptions). `format` and `format_map` are absent on purpose: format strings can walk
# attributes ('{0.__class__}'). ndarray's ctypes/data/base/tofile/dump/dumps/view/getfield/
# setfield/strides/flags/resize are absent: they reach raw memory, the file system or the
# buffer owner.
SAFE_ATTRIBUTES: frozenset[str] = (
    frozenset(
        {
            # str
            "capitalize",
            "casefold",
            "center",
            "count",
            "endswith",
            "expandtabs",
            "find",
            "index",
            "isalnum",
            "isalpha",
            "isascii",
            "isdecimal",
            "isdigit",
            "isidentifier",
            "islower",
            "isnumeric",
            "isprintable",
            "isspace",
            "istitle",
            "isupper",
            "join",
            "ljust",
            "lower",
            "lstrip",
            "partition",
            "removeprefix",
            "removesuffix",
            "replace",
            "rfind",
            "rindex",
            "rjust",
            "rpartition",
            "rsplit",
            "rstrip",
            "split",
            "splitlines",
            "startswith",
            "strip",
            "swapcase",
            "title",
            "upper",
            "zfill",
            # list
            "append",
            "clear",
            "copy",
            "extend",
            "insert",
            "pop",
            "remove",
            "reverse",
            "sort",
            # dict
            "get",
            "items",
            "keys",
            "values",
            "popitem",
            "setdefault",
            "update",
            "fromkeys",
            # set
            "add",
            "discard",
            "difference",
            "difference_update",
            "intersection",
            "intersection_update",
            "isdisjoint",
            "issubset",
            "issuperset",
            "symmetric_difference",
            "symmetric_difference_update",
            "union",
            # numbers
            "real",
            "imag",
            "conjugate",
            "bit_length",
            "bit_count",
            "is_integer",
            "as_integer_ratio",
            "numerator",
            "denominator",
            # exceptions
            "args",
            # ndarray and NumPy scalars
            "T",
            "shape",
            "ndim",
            "size",
            "dtype",
            "itemsize",
            "nbytes",
            "flat",
            "all",
            "any",
            "argmax",
            "argmin",
            "argpartition",
            "argsort",
            "astype",
            "choose",
            "clip",
            "compress",
            "conj",
            "cumprod",
            "cumsum",
            "diagonal",
            "dot",
            "fill",
            "flatten",
            "item",
            "max",
            "mean",
            "min",
            "nonzero",
            "prod",
            "put",
            "ravel",
            "repeat",
            "reshape",
            "round",
            "searchsorted",
            "squeeze",
            "std",
            "sum",
            "swapaxes",
            "take",
            "tolist",
            "trace",
            "transpose",
            "var",
        }
    )
    | NUMPY_NAMES
    | NUMPY_LINALG_NAMES
    | MATH_NAMES
)

# Prefixes of interpreter-internal attributes (frames, tracebacks, generators, coroutines,
# code and function objects). None is in SAFE_ATTRIBUTES; listed for the error message.
_INTERNAL_PREFIXES: tuple[str, ...] = ("gi_", "cr_", "ag_", "f_", "tb_", "co_", "func_", "im_")
_FORMAT_ATTRIBUTES: frozenset[str] = frozenset({"format", "format_map"})
_INTERNAL_ATTRIBUTES: frozenset[str] = frozenset(
    {
        "mro",
        "cell_contents",
        "with_traceback",
        "ctypes",
        "data",
        "base",
        "tofile",
        "dump",
        "dumps",
        "obj",
        "send",
        "throw",
        "close",
        "view",
        "getfield",
        "setfield",
        "strides",
        "flags",
        "lib",
        "ctypeslib",
        "load",
        "save",
        "fromfile",
        "memmap",
    }
)


def _check_tables() -> None:
    """Fails at import if an internal attribute slipped into the allowlist."""
    leaked = {
        name
        for name in SAFE_ATTRIBUTES
        if name.startswith("_") or name.startswith(_INTERNAL_PREFIXES) or name in _FORMAT_ATTRIBUTES
    } | (SAFE_ATTRIBUTES & _INTERNAL_ATTRIBUTES)
    if leaked:
        raise RuntimeError(f"sandbox rules: unsafe names in SAFE_ATTRIBUTES: {sorted(leaked)}")
    overlap = ALLOWED_BUILTINS & FORBIDDEN_NAMES
    if overlap:
        raise RuntimeError(f"sandbox rules: names both allowed and forbidden: {sorted(overlap)}")


_check_tables()


class Problem(NamedTuple):
    """One rule violation: error class name, 1-based line (or None), column and message."""

    error_class: str
    line: int | None
    col: int | None
    message: str


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
        return f"name {name!r} starts with '_'; private and dunder names are not allowed"
    if name in FORBIDDEN_NAMES:
        return f"name {name!r} is not available in the sandbox (it can escape or introspect)"
    return None


def attribute_problem(attr: str) -> str | None:
    """Returns why reading attribute `attr` is refused, or None if it is on the allowlist."""
    attr = normalize(attr)
    if attr.startswith("_"):
        return f"attribute {attr!r} starts with '_'; private and dunder attributes are not allowed"
    if attr in _FORMAT_ATTRIBUTES:
        return (
            f"'.{attr}()' is not allowed (format fields can read attributes); "
            "use an f-string or '+' instead"
        )
    if attr.startswith(_INTERNAL_PREFIXES) or attr in _INTERNAL_ATTRIBUTES:
        return f"attribute {attr!r} reaches interpreter, memory or file internals"
    if attr not in SAFE_ATTRIBUTES:
        return f"attribute {attr!r} is not on the sandbox allowlist"
    return None


def _namespace_problem(node: ast.Attribute) -> str | None:
    """Checks `np.x`, `np.linalg.x` and `math.x` against their member allowlists."""
    value = node.value
    if isinstance(value, ast.Name) and value.id in _NAMESPACE_MEMBERS:
        if node.attr not in _NAMESPACE_MEMBERS[value.id]:
            return f"'{value.id}.{node.attr}' is not available in the sandbox"
    if (
        isinstance(value, ast.Attribute)
        and value.attr == "linalg"
        and isinstance(value.value, ast.Name)
        and value.value.id == "np"
        and node.attr not in NUMPY_LINALG_NAMES
    ):
        return f"'np.linalg.{node.attr}' is not available in the sandbox"
    return None


def parse(source: str) -> tuple[ast.Module | None, Problem | None]:
    """Parses `source`; returns (tree, None) or (None, a syntax Problem).

    Deeply nested input makes CPython's parser raise RecursionError or MemoryError rather than
    SyntaxError; all three are reported as syntax problems, as are NUL bytes (ValueError).
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
        return None, Problem(SYNTAX, None, None, f"program cannot be parsed: {exc or 'too deep'}")
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
        if kind not in ALLOWED_NODES:
            reason = _NODE_REASONS.get(kind.__name__, f"'{kind.__name__}' syntax is not allowed")
            add(node, reason)
            continue
        stack.extend((child, line) for child in ast.iter_child_nodes(node))
        if kind is ast.Name:
            why = identifier_problem(node.id)
            if why:
                add(node, why)
            elif not isinstance(node.ctx, ast.Load) and node.id in NAMESPACES:
                add(
                    node, f"'{node.id}' is reserved for the sandbox's {node.id} and cannot be bound"
                )
        elif kind is ast.Attribute:
            if normalize(node.attr).startswith("_"):
                why = attribute_problem(node.attr)
            elif not isinstance(node.ctx, ast.Load):
                why = f"assigning or deleting attribute {node.attr!r} is not allowed; use a dict"
            else:
                why = _namespace_problem(node) or attribute_problem(node.attr)
            if why:
                add(node, why)
        elif kind is ast.FunctionDef:
            why = identifier_problem(node.name)
            if why:
                add(node, why)
            elif node.name in NAMESPACES:
                add(node, f"'{node.name}' is reserved for the sandbox and cannot be bound")
        elif kind is ast.arg:
            why = identifier_problem(node.arg)
            if why:
                add(node, why)
        elif kind is ast.keyword:
            if node.arg is not None and normalize(node.arg).startswith("_"):
                add(node, f"keyword argument {node.arg!r} starts with '_'")
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
    known = bound_names(tree) | set(api_names) | ALLOWED_BUILTINS | NAMESPACES | FORBIDDEN_NAMES
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
        problems.append(Problem(UNKNOWN_API, line, None, f"{name!r} is called but is not defined"))
    return tree, problems
