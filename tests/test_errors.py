"""The exception hierarchy: one module, one root, each class also a builtin."""

from __future__ import annotations

import ast
import builtins
import inspect
from pathlib import Path

import pytest

import corrigible.errors as errors
from corrigible.errors import CorrigibleError, did_you_mean

_ROOT = Path(errors.__file__).parent
_CLASSES = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, BaseException) and cls.__module__ == errors.__name__
]
_BUILTIN_ERRORS = {
    name
    for name, obj in vars(builtins).items()
    if isinstance(obj, type) and issubclass(obj, BaseException)
}


@pytest.mark.parametrize("cls", _CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_is_a_corrigible_error_and_a_builtin(cls: type[BaseException]) -> None:
    assert issubclass(cls, CorrigibleError)
    if cls is not CorrigibleError:
        builtin_bases = [
            base
            for base in cls.__mro__
            if base.__module__ == "builtins" and base not in (Exception, BaseException, object)
        ]
        assert builtin_bases, f"{cls.__name__} should also inherit the matching builtin"


def test_no_public_exception_is_defined_outside_errors_py() -> None:
    """Private (`_Name`) exceptions that never leave their module may stay there, and so may
    classes built inside a function (the sandbox child's mirrors of the API errors)."""
    error_names = {cls.__name__ for cls in _CLASSES} | _BUILTIN_ERRORS
    found = []
    for path in sorted(_ROOT.rglob("*.py")):
        relative = path.relative_to(_ROOT)
        if relative.parts[0] in ("tests", "build") or relative.parts[0].startswith("."):
            continue
        if relative == Path("errors.py"):
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                bases = {getattr(b, "id", getattr(b, "attr", None)) for b in node.bases}
                if bases & error_names:
                    found.append(f"{relative}: {node.name}")
    assert not found, f"move these into corrigible/errors.py: {found}"


def test_did_you_mean() -> None:
    assert did_you_mean("blu block", ["blue block", "red block"]) == " Did you mean 'blue block'?"
    assert did_you_mean("zzz", ["blue block"]) == ""
