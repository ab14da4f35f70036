"""Restricted stand-ins for `numpy` and `math`: only allowlisted functions, as plain attributes.

The sandbox child loads this module by file path (standard library and NumPy only), so it must
not import from the `corrigible` package.
"""

from __future__ import annotations

import math as _math
import sys as _sys
from collections.abc import Iterable, Mapping
from typing import Any

# The child loads allowlists.py by path under this private name before loading this module; in
# the parent the package import is used.
_allowlists = _sys.modules.get("_corrigible_sandbox_allowlists")
if _allowlists is None:
    from corrigible.policies.sandbox import allowlists as _allowlists


class SafeNamespace:
    """A read-only bag of allowlisted callables and constants, standing in for a module.

    Unlike a module it has no `__dict__` of importable state, no `__loader__` and no submodule
    attributes, so `np.ctypeslib` or `np.lib` simply do not exist. Asking for a missing name
    raises AttributeError that says the name is not available in the sandbox.
    """

    __slots__ = ("_label", "_members")

    def __init__(self, label: str, members: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_label", label)
        object.__setattr__(self, "_members", dict(members))

    def __getattr__(self, name: str) -> Any:
        members = object.__getattribute__(self, "_members")
        if name in members:
            return members[name]
        label = object.__getattribute__(self, "_label")
        raise AttributeError(f"'{label}.{name}' is not available in the sandbox")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("sandbox namespaces are read-only")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("sandbox namespaces are read-only")

    def __dir__(self) -> list[str]:
        return sorted(object.__getattribute__(self, "_members"))

    def __repr__(self) -> str:
        label = object.__getattribute__(self, "_label")
        count = len(object.__getattribute__(self, "_members"))
        return f"<sandbox namespace {label!r} with {count} names>"


def _pick(module: Any, names: Iterable[str], label: str) -> dict[str, Any]:
    members: dict[str, Any] = {}
    for name in sorted(names):
        if not hasattr(module, name):  # an older NumPy may lack e.g. `cbrt`; skip quietly
            continue
        members[name] = getattr(module, name)
    return members


def build_numpy_namespace() -> SafeNamespace:
    """Returns the `np` the program sees: allowlisted NumPy functions plus `np.linalg`."""
    import numpy

    members = _pick(numpy, _allowlists.NUMPY_NAMES - {"linalg"}, "np")
    members["linalg"] = SafeNamespace(
        "np.linalg", _pick(numpy.linalg, _allowlists.NUMPY_LINALG_NAMES, "np.linalg")
    )
    return SafeNamespace("np", members)


def build_math_namespace() -> SafeNamespace:
    """Returns the `math` the program sees."""
    return SafeNamespace("math", _pick(_math, _allowlists.MATH_NAMES, "math"))
