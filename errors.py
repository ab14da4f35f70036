"""The exception hierarchy of corrigible.

Every error a user can cause derives from `CorrigibleError` *and* from the matching builtin, so
callers can catch either. Messages say what was wrong, the value received and what to do next.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class CorrigibleError(Exception):
    """Base class of every error corrigible raises on purpose."""


class ConfigError(CorrigibleError, ValueError):
    """A configuration field holds an invalid value."""


class UnknownObjectError(CorrigibleError, KeyError):
    """A name refers to no object in the scene."""

    def __str__(self) -> str:  # KeyError would repr() the message; keep it readable.
        return str(self.args[0]) if self.args else ""


class UnknownNameError(CorrigibleError, KeyError):
    """A name (skill, location, predicate, backend, registry entry) is not known."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ParseError(CorrigibleError, ValueError):
    """A phrase, predicate or file could not be understood."""


class SafetyError(CorrigibleError, RuntimeError):
    """A command was refused by the safety envelope; no motion happened."""


class EmergencyStopError(SafetyError):
    """The e-stop is engaged; motion commands are refused until it is released."""


class BackendError(CorrigibleError, RuntimeError):
    """A physics backend failed to build or step the scene."""


class SkillError(CorrigibleError, RuntimeError):
    """A skill could not be carried out."""


class RobotNotConnectedError(CorrigibleError, ConnectionError):
    """A robot was used before `connect()` or after `close()`."""


class DependencyNotInstalled(CorrigibleError, ImportError):
    """An optional dependency is missing; the message names the pip extra."""


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """Returns a " Did you mean 'x'?" suffix for `value`, or "" when nothing is close.

    Args:
        value: what the user typed.
        choices: the valid names.
    """
    matches = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f" Did you mean {matches[0]!r}?" if matches else ""


class MotionError(CorrigibleError, RuntimeError):
    """A motion could not be planned or did not reach its target (e.g. out of reach)."""


class InterruptedByHuman(CorrigibleError, RuntimeError):
    """A person paused or stopped the robot mid-motion; the motion was abandoned."""
