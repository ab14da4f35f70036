"""Routes a correction to plan/skill/preference/control by asking an LLM, with an offline fallback.

`LLMRouter` is the LLM path of issue 5: any backend of `corrigible.policies.llm` (`openai:<model>`,
`local:<dir>`, `local:bundled`, `replay:<file>`) reads the prompt in `prompts/router_system.md`
(the five labels, a few examples, a strict JSON answer format) and answers
`{"label": "skill", "reason": "..."}`. Three rules keep it safe on a robot:

1. Control first. A text the grammar's control rule matches ("stop!", "hold on") is routed by
   that rule before the LLM is asked: a robot told to stop must not wait for a model.
2. Never guess. The answer must hold a JSON object (bare, in prose or in a code fence) whose
   `label` is one of the five labels (`LABELS`), ignoring case only; synonyms ("planning",
   "param") are invalid, not mapped.
3. Never crash, never succeed silently. An unparsable answer, an invalid label, a timeout, an
   unreachable server or any other backend error routes the text with the offline
   `GrammarEmbeddingRouter` instead, and the decision's `fallback` says why
   (`"invalid_label: ..."`). LLM decisions have `method="llm"`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from corrigible.corrections.router import (
    LABELS,
    CorrectionRouter,
    GrammarEmbeddingRouter,
    GrammarEmbeddingRouterConfig,
    Label,
    RouteDecision,
    RouterConfig,
    apply_rules,
    normalise,
    routing_text,
)
from corrigible.errors import ConfigError, InvalidLabelError, LLMError, LLMOutputError, ParseError
from corrigible.policies.llm import ChatMessage, LLMBackend, make_llm
from corrigible.text_embedding import TextEmbedder

PROMPTS_DIR = Path(__file__).parent / "prompts"
_ANSWER_CHARS = 500  # characters of the model's raw answer kept on a decision (for debugging)

FallbackKind = Literal["unparsable", "invalid_label", "timeout", "unreachable", "llm_error"]

# ```json ... ``` (any tag, or none); the closing fence is optional because an answer cut off by
# max_tokens may still hold the whole object.
_FENCE = re.compile(r"```[^\n]*\n(?P<body>.*?)(?:```|\Z)", re.DOTALL)


# --------------------------------------------------------------------------- shared helpers


def load_prompt(path: Path) -> str:
    """Reads a prompt file as UTF-8 text.

    Raises:
        ConfigError: the file cannot be read; names the path and the prompts folder.
    """
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read the prompt file {str(path)!r} ({exc}); the shipped prompts are in "
            f"{PROMPTS_DIR}."
        ) from exc


def fill_prompt(template: str, **values: str) -> str:
    """Replaces each `{{name}}` in `template` by `values[name]`.

    `str.format` is not used because the prompts are full of literal JSON braces.

    Raises:
        ConfigError: a placeholder is left unfilled (the template and the code disagree).
    """
    for name, value in values.items():
        template = template.replace("{{" + name + "}}", value)
    left = re.findall(r"\{\{(\w+)\}\}", template)
    if left:
        raise ConfigError(f"prompt placeholders {left} were not filled; fill {sorted(values)}")
    return template


def extract_json_object(text: str, *, key: str) -> dict[str, Any]:
    """The first JSON object in an LLM answer that has `key` (matched case-insensitively).

    Models wrap JSON in prose ("Sure! {...}") or in ```json fences; fenced blocks are searched
    first, then the whole text, trying every `{` as the start of an object. Keys of the returned
    object are lower-cased; values are left exactly as the model wrote them.

    Raises:
        LLMOutputError: no JSON object with `key` is in the text; the message quotes the start
            of the answer.
    """
    decoder = json.JSONDecoder()
    chunks = [m.group("body") for m in _FENCE.finditer(text)] + [text]
    for chunk in chunks:
        for start, char in enumerate(chunk):
            if char != "{":
                continue
            try:
                value, _ = decoder.raw_decode(chunk, start)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                lowered = {str(k).strip().lower(): v for k, v in value.items()}
                if key in lowered:
                    return lowered
    raise LLMOutputError(
        f"the answer holds no JSON object with the key {key!r}: {text[:200]!r}"
        + ("" if len(text) <= 200 else "...")
    )


def complete_within(
    llm: LLMBackend, messages: list[ChatMessage], *, max_tokens: int, timeout_s: float | None
) -> tuple[str, float]:
    """Asks `llm` and returns (answer text, seconds), giving up after `timeout_s`.

    The backend's own timeout (`CORRIGIBLE_LLM_TIMEOUT_S`, default 120 s) suits planning, not a
    robot waiting on a correction, and `local:` backends have none. The call therefore runs in
    a daemon thread; past the deadline its result is discarded (the thread cannot be killed and
    finishes in the background).

    Raises:
        TimeoutError: no answer within `timeout_s`.
        LLMError: the backend failed (unreachable, model missing, closed, ...).
    """
    start = time.perf_counter()
    if timeout_s is None:
        reply = llm.complete(messages, max_tokens=max_tokens)
        return reply.text, time.perf_counter() - start
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["text"] = llm.complete(messages, max_tokens=max_tokens).text
        except BaseException as exc:  # re-raised in the caller's thread below
            box["error"] = exc

    thread = threading.Thread(target=work, name="corrigible-llm-call", daemon=True)
    thread.start()
    thread.join(timeout_s)
    elapsed = time.perf_counter() - start
    if thread.is_alive():
        raise TimeoutError(f"{llm.name} gave no answer within {timeout_s:g} s")
    if "error" in box:
        raise box["error"]
    return box["text"], elapsed


def classify_failure(exc: BaseException) -> FallbackKind:
    """Names the kind of an LLM failure for a `fallback` reason and for counting."""
    if isinstance(exc, TimeoutError) or "Timeout" in type(exc.__cause__).__name__:
        return "timeout"
    if isinstance(exc, ConnectionError):  # LLMUnreachableError is also a ConnectionError
        return "unreachable"
    if isinstance(exc, LLMOutputError):
        return "unparsable"
    return "llm_error"


# --------------------------------------------------------------------------- the router


@dataclass(frozen=True, kw_only=True)
class LLMRouteDecision(RouteDecision):
    """A `RouteDecision` with what the LLM said, or why the offline router decided instead."""

    llm: str | None = None  # the backend asked, as its spec ("openai:gpt-4o-mini"); None if not
    llm_text: str | None = None  # the model's raw answer (first 500 characters), if it answered
    reason: str | None = None  # the model's own reason for the label (LLM decisions)
    fallback: str | None = None  # "<kind>: <why>" when GrammarEmbeddingRouter decided instead
    latency_s: float | None = None  # s spent waiting on the LLM; None when it was not asked

    @property
    def is_fallback(self) -> bool:
        """True when the offline router decided because the LLM answer was unusable."""
        return self.fallback is not None

    @property
    def fallback_kind(self) -> str | None:
        """The fallback's kind (`unparsable`, `invalid_label`, `timeout`, ...), or None."""
        return None if self.fallback is None else self.fallback.split(":", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict: the `RouteDecision` keys plus the LLM fields."""
        return {
            **super().to_dict(),
            "llm": self.llm,
            "llm_text": self.llm_text,
            "reason": self.reason,
            "fallback": self.fallback,
            "latency_s": None if self.latency_s is None else round(self.latency_s, 4),
        }


@dataclass(kw_only=True)
class LLMRouterConfig(RouterConfig):
    """LLM router: control rule first, then the LLM, then GrammarEmbeddingRouter on failure."""

    type: str = "llm"  # registry key
    llm: str | None = None  # LLM spec: openai:<model>, local:<dir>, local:bundled, replay:<file>
    system_prompt_path: Path = PROMPTS_DIR / "router_system.md"  # labels, examples, JSON format
    user_prompt_path: Path = PROMPTS_DIR / "router_user.md"  # template with {{text}}
    max_tokens: int = 96  # tokens; a {"label", "reason"} answer needs about 30
    timeout_s: float | None = 30.0  # s per LLM call before falling back; None: backend's own
    grammar_first: bool = False  # True: every grammar rule before the LLM (LLM on misses only)
    fallback: GrammarEmbeddingRouterConfig = field(default_factory=GrammarEmbeddingRouterConfig)

    def __post_init__(self) -> None:
        if self.llm is not None and not self.llm.strip():
            raise ConfigError("LLMRouterConfig.llm is empty; pass a spec such as openai:<model>")
        if self.max_tokens < 1:
            raise ConfigError(f"max_tokens must be >= 1, got {self.max_tokens}; try 96")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ConfigError(f"timeout_s must be > 0 s or None, got {self.timeout_s}; try 30")
        self.system_prompt_path = Path(self.system_prompt_path)
        self.user_prompt_path = Path(self.user_prompt_path)


class LLMRouter(CorrectionRouter):
    """Asks an LLM which level a correction acts on; the offline router covers every failure.

    Order per text: (1) the grammar's control rule (or, with `grammar_first`, every grammar
    rule), answered without the LLM; (2) the LLM, whose answer must parse to one of `LABELS`;
    (3) on any failure, `GrammarEmbeddingRouter`, with the reason in `decision.fallback`.
    Confidence of an LLM decision is 1.0 and its scores are one-hot, like a rule hit: a greedy
    answer carries no calibrated probability, and self-reported confidences of small models are
    not trustworthy.

    Args:
        cfg: the router config; `cfg.llm` names the backend unless `llm` is given.
        llm: an already built backend (then the caller closes it); default: `make_llm(cfg.llm)`,
            closed by `close()`.
        embedder: text embedder for the fallback router (default: the process-wide MiniLM,
            loaded only when the fallback first needs it).
        fallback: the router used on failures (default: `GrammarEmbeddingRouter(cfg.fallback)`).

    Raises:
        ConfigError: neither `llm` nor `cfg.llm` is given, the spec is invalid, or a prompt
            file cannot be read.
    """

    name = "llm"
    config_class = LLMRouterConfig

    def __init__(
        self,
        cfg: LLMRouterConfig | None = None,
        *,
        llm: LLMBackend | None = None,
        embedder: TextEmbedder | None = None,
        fallback: CorrectionRouter | None = None,
    ) -> None:
        self.cfg = cfg or LLMRouterConfig()
        self.system_prompt = load_prompt(self.cfg.system_prompt_path)
        self.user_template = load_prompt(self.cfg.user_prompt_path)
        self.fallback_router = fallback or GrammarEmbeddingRouter(
            self.cfg.fallback, embedder=embedder
        )
        if llm is None:
            if self.cfg.llm is None:
                raise ConfigError(
                    "the llm router needs an LLM: set LLMRouterConfig.llm to a spec "
                    "(openai:<model>, local:<dir>, local:bundled, replay:<file>), or pass "
                    "--llm <spec> to `corrigible route --router llm`."
                )
            llm = make_llm(self.cfg.llm)
            self._owns_llm = True
        else:
            self._owns_llm = False
        self.llm = llm

    def messages(self, text: str) -> list[ChatMessage]:
        """The chat sent for `text`: the system prompt, then the filled user template."""
        user = fill_prompt(self.user_template, text=json.dumps(text, ensure_ascii=False))
        return [ChatMessage.system(self.system_prompt.strip()), ChatMessage.user(user.strip())]

    def route(self, text: str) -> LLMRouteDecision:
        """Routes one correction text (see the class docstring for the order).

        Raises:
            ParseError: the text is empty.
        """
        clean = normalise(text)
        if not clean:
            raise ParseError(f"cannot route an empty correction ({text!r}); say what should change")
        hit = apply_rules(routing_text(text))
        # Control and undo are the first grammar rules, so such a hit here is theirs; they
        # never wait for a model (the prompt knows only the four content labels).
        if hit is not None and (hit.label in ("control", "undo") or self.cfg.grammar_first):
            return LLMRouteDecision(
                label=hit.label,
                confidence=1.0,
                method="rule",
                rule=hit.rule,
                scores={lab: float(lab == hit.label) for lab in LABELS},
            )
        try:
            answer, latency = complete_within(
                self.llm,
                self.messages(text),
                max_tokens=self.cfg.max_tokens,
                timeout_s=self.cfg.timeout_s,
            )
        except Exception as exc:  # any backend failure, even an unforeseen one, must not crash
            why = str(exc) if isinstance(exc, LLMError) else f"{type(exc).__name__}: {exc}"
            return self._fall_back(text, classify_failure(exc), why, None, None)
        try:
            label, reason = parse_label(answer)
        except InvalidLabelError as exc:
            return self._fall_back(text, "invalid_label", str(exc), answer, latency)
        except LLMOutputError as exc:
            return self._fall_back(text, "unparsable", str(exc), answer, latency)
        return LLMRouteDecision(
            label=label,
            confidence=1.0,
            method="llm",
            scores={lab: float(lab == label) for lab in LABELS},
            llm=self.llm.name,
            llm_text=answer[:_ANSWER_CHARS],
            reason=reason,
            latency_s=latency,
        )

    def route_many(self, texts: Sequence[str]) -> list[RouteDecision]:
        """Routes several texts one LLM call at a time (chat APIs have no batch call)."""
        return [self.route(text) for text in texts]

    def _fall_back(
        self,
        text: str,
        kind: FallbackKind,
        why: str,
        answer: str | None,
        latency: float | None,
    ) -> LLMRouteDecision:
        offline = self.fallback_router.route(text)
        base = {f.name: getattr(offline, f.name) for f in fields(RouteDecision)}
        return LLMRouteDecision(
            **base,
            llm=self.llm.name,
            llm_text=None if answer is None else answer[:_ANSWER_CHARS],
            fallback=f"{kind}: {why}",
            latency_s=latency,
        )

    @property
    def is_closed(self) -> bool:
        """True once the router's own backend was closed."""
        return self.llm.is_closed

    def close(self) -> None:
        """Closes the backend if the router built it; idempotent."""
        if self._owns_llm:
            self.llm.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def parse_label(answer: str) -> tuple[Label, str | None]:
    """The label (and reason) in an LLM routing answer.

    Raises:
        LLMOutputError: there is no JSON object with a `label` key.
        InvalidLabelError: the label is not one of `LABELS` (case aside); synonyms are not
            mapped.
    """
    obj = extract_json_object(answer, key="label")
    raw = obj["label"]
    label = raw.strip().lower() if isinstance(raw, str) else raw
    if label not in LABELS:
        raise InvalidLabelError(f"the model answered label {raw!r}, not one of {list(LABELS)}")
    reason = obj.get("reason")
    return label, reason if isinstance(reason, str) else None
