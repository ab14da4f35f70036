"""A person's correction as it arrives: the words, when, in which episode, and how it was given.

Everything downstream (router, interpreter, knowledge base) keys off this record, so it is
validated once here: empty, over-long or control-character text is refused with a message that
says what to send instead, rather than surfacing later as a confusing routing result.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

from corrigible.errors import InvalidCorrectionError

CorrectionSource = Literal["typed", "scripted", "spoken", "bridge"]
MAX_TEXT_CHARS = 500  # a correction is one utterance; longer input is almost surely a paste error


def _first_control_char(text: str) -> tuple[int, str] | None:
    # Unicode category Cc covers C0/C1 controls, including tab and newline: a correction is a
    # single line, and a stray escape sequence from a terminal is never something a person said.
    for index, char in enumerate(text):
        if unicodedata.category(char) == "Cc":
            return index, char
    return None


@dataclass(frozen=True, kw_only=True)
class Correction:
    """One correction, exactly as received (the text is kept verbatim, not normalised).

    Raises:
        InvalidCorrectionError: a field is invalid; the message names the field, the value and
            the fix.
    """

    text: str  # what the person said or typed, one line, 1-500 characters
    time: float  # s since the episode started when the correction arrived
    episode: str  # id of the episode it belongs to
    step: int | None = None  # control step it arrived at, None when not tied to a step
    source: CorrectionSource = "typed"  # typed at a prompt, scripted in a test/eval, spoken, or
    # published on the bridge's /corrigible/correction topic

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise InvalidCorrectionError(
                f"Correction.text must be a string, got {type(self.text).__name__} "
                f"{self.text!r}; pass the words as a str."
            )
        if not self.text.strip():
            raise InvalidCorrectionError(
                f"Correction.text is empty ({self.text!r}); say what should change, "
                "e.g. 'a bit more to the left'."
            )
        if len(self.text) > MAX_TEXT_CHARS:
            raise InvalidCorrectionError(
                f"Correction.text is {len(self.text)} characters, over the {MAX_TEXT_CHARS} "
                f"limit (starts {self.text[:40]!r}); send one short correction at a time."
            )
        bad = _first_control_char(self.text)
        if bad is not None:
            index, char = bad
            raise InvalidCorrectionError(
                f"Correction.text has a control character {char!r} at index {index} "
                f"({self.text[:60]!r}); send a single line of plain text."
            )
        if isinstance(self.time, bool) or not isinstance(self.time, int | float):
            raise InvalidCorrectionError(
                f"Correction.time must be a number of seconds, got {self.time!r}."
            )
        if not math.isfinite(self.time) or self.time < 0:
            raise InvalidCorrectionError(
                f"Correction.time must be finite and >= 0 s, got {self.time!r}; use the time "
                "since the episode started."
            )
        if not isinstance(self.episode, str) or not self.episode.strip():
            raise InvalidCorrectionError(
                f"Correction.episode must be a non-empty id, got {self.episode!r}."
            )
        if self.step is not None and (
            isinstance(self.step, bool) or not isinstance(self.step, int) or self.step < 0
        ):
            raise InvalidCorrectionError(
                f"Correction.step must be an int >= 0 or None, got {self.step!r}."
            )
        if self.source not in get_args(CorrectionSource):
            raise InvalidCorrectionError(
                f"Correction.source must be one of {list(get_args(CorrectionSource))}, "
                f"got {self.source!r}."
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict, for traces and the knowledge base's provenance."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Correction:
        """Builds a correction from `to_dict` output; unknown keys are an error, not ignored.

        Raises:
            InvalidCorrectionError: a key is unknown or a value is invalid.
        """
        known = {"text", "time", "episode", "step", "source"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidCorrectionError(
                f"unknown Correction field(s) {unknown}; fields are {sorted(known)}."
            )
        return cls(**data)
