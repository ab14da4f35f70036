"""The one interface every LLM backend implements: chat messages in, a completion out.

Every backend returns the OpenAI chat-completion wire dict as `LLMResponse.raw`, whether it came
over HTTP (`openai:`), from a recording (`replay:`) or from an in-process model (`local:`). One
parser (`LLMResponse.from_wire`) turns that dict into the typed response, so the planner sees the
same fields, with the same meaning, whichever backend produced them.
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, Literal, Self

from corrigible.errors import ConfigError, LLMClosedError, LLMError

Role = Literal["system", "user", "assistant"]
_ROLES: tuple[str, ...] = ("system", "user", "assistant")


@dataclass(frozen=True, kw_only=True)
class ChatMessage:
    """One turn of a chat, exactly as the OpenAI wire format carries it."""

    role: Role  # who speaks: "system" (instructions), "user" (the person), "assistant" (the LLM)
    content: str  # the text of the turn

    def __post_init__(self) -> None:
        if self.role not in _ROLES:
            raise ConfigError(
                f"ChatMessage.role must be one of {list(_ROLES)}, got {self.role!r}; tool and "
                "function roles are not used by corrigible's planners."
            )
        if not isinstance(self.content, str):
            raise ConfigError(
                f"ChatMessage.content must be a str, got {type(self.content).__name__}; join "
                "multi-part content into one string before sending."
            )

    @classmethod
    def system(cls, content: str) -> ChatMessage:
        """A system turn (instructions and API description)."""
        return cls(role="system", content=content)

    @classmethod
    def user(cls, content: str) -> ChatMessage:
        """A user turn (the command or the correction)."""
        return cls(role="user", content=content)

    @classmethod
    def assistant(cls, content: str) -> ChatMessage:
        """An assistant turn (a previous answer, e.g. a few-shot example)."""
        return cls(role="assistant", content=content)

    def to_wire(self) -> dict[str, str]:
        """The JSON object the OpenAI API expects for this turn."""
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True, kw_only=True)
class TokenUsage:
    """Token counts as the server reported them (0 where it reported none)."""

    prompt_tokens: int = 0  # tokens in the rendered prompt
    completion_tokens: int = 0  # tokens generated
    total_tokens: int = 0  # prompt + completion, as reported


@dataclass(frozen=True, kw_only=True)
class LLMResponse:
    """One completion, with what it cost and the exact reply it was parsed from."""

    text: str  # the assistant message content ("" when the model said nothing)
    model: str  # the model id the server says answered
    usage: TokenUsage  # token counts
    latency_s: float  # wall-clock seconds of the call, measured around the backend
    finish_reason: str | None = None  # "stop", "length", ... as reported; None if absent
    raw: dict[str, Any] = field(default_factory=dict, repr=False)  # the wire dict, unmodified

    @classmethod
    def from_wire(
        cls, raw: dict[str, Any], *, latency_s: float, stop: list[str] | None = None
    ) -> LLMResponse:
        """Parses an OpenAI `chat.completion` object.

        Args:
            raw: the decoded JSON body of a chat-completion reply.
            latency_s: measured duration of the call.
            stop: the request's stop strings. The text is cut before the first one, as the
                OpenAI API specifies; some servers (`transformers serve`) leave the stop string
                in, so this keeps every backend alike. `raw` is left as received.

        Raises:
            LLMError: the body is not a chat completion (no choices, no message).
        """
        try:
            choice = raw["choices"][0]
            message = choice["message"]
        except (KeyError, IndexError, TypeError) as exc:
            raise LLMError(
                f"the LLM reply is not a chat completion (no choices[0].message): "
                f"{str(raw)[:300]!r}. Check that the server implements /v1/chat/completions."
            ) from exc
        usage = raw.get("usage") or {}
        text = message.get("content") or ""
        cuts = [i for i in (text.find(s) for s in stop or []) if i >= 0]
        return cls(
            text=text[: min(cuts)] if cuts else text,
            model=str(raw.get("model", "")),
            usage=TokenUsage(
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
                total_tokens=int(usage.get("total_tokens") or 0),
            ),
            latency_s=latency_s,
            finish_reason=choice.get("finish_reason"),
            raw=raw,
        )


class LLMBackend(abc.ABC):
    """A chat LLM behind one call, selected with `--planner <prefix>:<argument>`.

    Subclasses implement `_complete` (return the wire dict), `_close`, `name` and `from_spec`;
    argument checks, timing, parsing and the closed-state guard live here once.
    """

    # The `--planner` prefix this backend answers to ("openai", "local", "replay"); every
    # concrete subclass must set it, checked at class creation.
    spec_prefix: ClassVar[str]
    _closed: bool = False  # set by close(); instances shadow it, subclasses need no __init__ call

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # ABCMeta fills `__abstractmethods__` only after this hook runs, so look for abstract
        # members directly: only concrete backends must name their prefix.
        is_abstract = any(
            getattr(getattr(cls, attr, None), "__isabstractmethod__", False) for attr in dir(cls)
        )
        if not is_abstract and not isinstance(getattr(cls, "spec_prefix", None), str):
            raise TypeError(f"{cls.__name__} must set the class attribute `spec_prefix: str`.")

    @classmethod
    @abc.abstractmethod
    def from_spec(cls, argument: str) -> Self:
        """Builds the backend from the part of the `--planner` spec after `<prefix>:`."""

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """The spec that rebuilds this backend, e.g. `openai:gpt-4o-mini`; used in logs."""

    @abc.abstractmethod
    def _complete(
        self, messages: list[dict[str, str]], *, max_tokens: int, stop: list[str] | None
    ) -> dict[str, Any]:
        """Runs one completion and returns the OpenAI chat-completion wire dict."""

    @abc.abstractmethod
    def _close(self) -> None:
        """Releases clients or model references; called at most once."""

    def complete(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int = 512,
        stop: list[str] | None = None,
    ) -> LLMResponse:
        """Asks the model to continue the chat, greedily (temperature 0).

        Args:
            messages: the chat so far; at least one turn.
            max_tokens: upper bound on generated tokens (CaP used 512).
            stop: strings that end the answer; the stop string itself is not returned.

        Returns:
            The parsed completion, with the wire dict in `raw`.

        Raises:
            LLMClosedError: the backend was closed.
            ConfigError: empty `messages`, non-positive `max_tokens` or empty stop strings.
            LLMError: the backend failed (each backend says why and what to do).
        """
        if self._closed:
            raise LLMClosedError(f"LLM backend {self.name!r} is closed; build a new one.")
        if not messages:
            raise ConfigError("complete() needs at least one ChatMessage, got an empty list.")
        if not all(isinstance(m, ChatMessage) for m in messages):
            kinds = sorted({type(m).__name__ for m in messages})
            raise ConfigError(
                f"complete() takes ChatMessage objects, got {kinds}; build them with "
                "ChatMessage.user(...) and friends."
            )
        if max_tokens < 1:
            raise ConfigError(f"max_tokens must be >= 1, got {max_tokens}.")
        if stop is not None and (not stop or any(not s for s in stop)):
            raise ConfigError(f"stop must be None or non-empty strings, got {stop!r}.")
        start = time.perf_counter()
        raw = self._complete([m.to_wire() for m in messages], max_tokens=max_tokens, stop=stop)
        return LLMResponse.from_wire(raw, latency_s=time.perf_counter() - start, stop=stop)

    @property
    def is_closed(self) -> bool:
        """True once `close()` has run."""
        return self._closed

    def close(self) -> None:
        """Releases the backend; calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        self._close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"{type(self).__name__}({self.name!r}, {state})"
