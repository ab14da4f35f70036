"""The exception hierarchy of corrigible.

Every error a user can cause derives from `CorrigibleError` *and* from the matching builtin, so
callers can catch either. Messages say what was wrong, the value received and what to do next.
All public exceptions live here, grouped by the part that raises them; errors that never leave
their module (the sandbox wire protocol's, which its stdlib-only child loads by path) stay there.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# --------------------------------------------------------------------------- general


class CorrigibleError(Exception):
    """Base class of every error corrigible raises on purpose."""


class ConfigError(CorrigibleError, ValueError):
    """A configuration field holds an invalid value."""


class CheckpointError(ConfigError):
    """A learned policy's checkpoint cannot be used (missing, unreadable, corrupt, another format).

    The message says which, and what to do (train one, or point at the right file).
    """


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


# --------------------------------------------------------------------------- robot and simulation


class SafetyError(CorrigibleError, RuntimeError):
    """A command was refused by the safety envelope; no motion happened."""


class EmergencyStopError(SafetyError):
    """The e-stop is engaged; motion commands are refused until it is released."""


class BackendError(CorrigibleError, RuntimeError):
    """A physics backend failed to build or step the scene."""


class SkillError(CorrigibleError, RuntimeError):
    """A skill could not be carried out."""


class MotionError(CorrigibleError, RuntimeError):
    """A motion could not be planned or did not reach its target (e.g. out of reach)."""


class BiasRangeError(ConfigError):
    """A bias write lies outside what the event camera's bias generator can produce."""


# --------------------------------------------------------------------------- sandbox


class SandboxInterrupted(CorrigibleError, RuntimeError):
    """The operator interrupted a sandboxed program; raised by `SandboxControl.checkpoint`."""


# --------------------------------------------------------------------------- LLM backends


class LLMError(CorrigibleError, RuntimeError):
    """An LLM backend could not produce a completion (server down, model missing, bad reply)."""


class LLMUnreachableError(LLMError, ConnectionError):
    """The LLM server could not be reached or did not answer in time."""


class LLMModelNotFoundError(LLMError, LookupError):
    """The server is up but does not serve the requested model."""


class LLMClosedError(LLMError):
    """A backend was used after `close()`."""


class LLMOutputError(CorrigibleError, ValueError):
    """The model answered, but the answer holds no usable code.

    A `ValueError` rather than an `LLMError`: the backend worked, the *content* is wrong, so the
    planner should re-prompt or fall back, not restart the server. Weak models (`local:bundled`)
    raise this routinely; it is a validation result, never a crash.
    """


class ReplayMissError(LLMError, LookupError):
    """A replayed request matches no recorded exchange; the message names the closest one."""


# --------------------------------------------------------------------------- corrections


class InvalidCorrectionError(CorrigibleError, ValueError):
    """A `Correction` field holds a value that cannot be a correction."""


class InvalidLabelError(LLMOutputError):
    """The LLM router's answer is JSON, but its `label` is not one of the four labels."""


class LabelledFileError(ParseError):
    """A labelled corrections file has a malformed line or an unknown label."""


# --------------------------------------------------------------------------- knowledge base


class UnknownEntryError(UnknownNameError):
    """No knowledge entry has the given id (or it was deleted)."""


class CorruptStoreError(ParseError):
    """A knowledge-base file is damaged in a way that cannot be repaired without a decision."""


class LostRecordsError(CorruptStoreError):
    """Acknowledged knowledge-base records are damaged or missing (never a crash's doing).

    Attributes:
        damaged: seqs of acknowledged records whose bytes no longer verify.
        missing: seqs of acknowledged records whose bytes are gone.
    """

    def __init__(self, message: str, *, damaged: list[int], missing: list[int]) -> None:
        super().__init__(message)
        self.damaged = list(damaged)
        self.missing = list(missing)


class StoreUnreadableError(CorrigibleError, OSError):
    """A knowledge-base file exists but cannot be read (a directory, a FIFO, no permission)."""


class SchemaVersionError(CorrigibleError, ValueError):
    """The knowledge base was written by a newer, incompatible schema version."""


class StoreLockedError(CorrigibleError, RuntimeError):
    """Another process holds the writer lock of the knowledge-base directory."""


class ReadOnlyError(CorrigibleError, PermissionError):
    """A write was attempted on a knowledge base opened read-only."""


class KnowledgeBaseClosedError(CorrigibleError, RuntimeError):
    """The knowledge base was used after `close()`."""


class IndexFormatError(CorrigibleError, ValueError):
    """Serialized vector-index bytes could not be read back."""


class SpeechError(CorrigibleError, RuntimeError):
    """Speech could not be transcribed (the model failed, the endpoint refused or timed out)."""


class CheckpointFailedError(SkillError):
    """A checkpoint's expectation does not hold by the monitor's judgement (raised in programs)."""


class MonitorError(CorrigibleError, RuntimeError):
    """A monitor could not judge a checkpoint; the run stops safely.

    Args:
        kind: the class of the failure: "malformed" (an answer that is not the verdict JSON),
            "timeout" (no answer in time), "unreachable" (no connection), "http" (an error
            status), "invalid" (evidence or expectation it cannot judge).
        message: what went wrong and what to do next.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class MotionPreempted(SandboxInterrupted):
    """A correction arrived while the arm moved: the motion halted, the skill is redone.

    Raised inside the arm's control tick by `RunGate` and caught by the same gate around the
    skill call, which runs the call again through the rest of the chain, so the correction loop
    takes the waiting correction and the skill starts over from where the arm is. Only escapes
    to a program if no gate is around the motion, where it reads as an interrupted call.
    """


class ProtocolError(CorrigibleError, ValueError):
    """A frame that is not a valid rosbridge operation (the message says which field and why)."""


class RobotLinkError(CorrigibleError, ConnectionError):
    """The robot's rosbridge server could not be reached (nothing was sent)."""


class RobotLinkLostError(EmergencyStopError, ConnectionError):
    """The link to the robot was lost or its state went stale: the arm was stopped (e-stop on)."""
