"""`replay:<file>`: answers from recorded OpenAI exchanges, through the real `openai` client.

The backend *is* an `OpenAIBackend`; only the HTTP transport under the `openai` client is
replaced. Request building, JSON encoding, response parsing and error mapping are the live
code, so a test on a replay exercises everything but the socket.

Matching: a request matches a recorded exchange when their normalised bodies (model, messages,
temperature, max_tokens, stop; see `recorder.normalise_request`) are equal. Identical recorded
requests are answered in recording order, and the last answer repeats after that (a greedy
server gives the same answer anyway). Recorded error replies (404, 500, ...) replay as errors.
"""

from __future__ import annotations

import difflib
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

from corrigible.errors import ConfigError, ParseError, ReplayMissError
from corrigible.policies.llm.openai_backend import OpenAIBackend, OpenAIBackendConfig
from corrigible.policies.llm.recorder import httpx, normalise_request, request_key

# Never resolved: the transport answers before any socket is opened. `.invalid` is reserved
# (RFC 2606), so a replay that somehow escaped the transport could not reach a real host.
_REPLAY_BASE_URL = "http://replay.invalid/v1"
_CHAT_PATH_SUFFIX = "/chat/completions"


@dataclass(frozen=True, kw_only=True)
class _Exchange:
    status: int  # recorded HTTP status
    body: Any  # recorded response body (decoded JSON)


class ReplayTransport(httpx.BaseTransport):
    """An HTTP transport that answers chat-completion requests from a JSONL recording.

    Args:
        path: a file written by `RecordingTransport` (one exchange per line).

    Raises:
        ConfigError: the file does not exist.
        ParseError: a line is not a recorded exchange.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._answers: dict[str, list[_Exchange]] = defaultdict(list)
        self._served: dict[str, int] = defaultdict(int)
        self._requests: dict[str, dict[str, Any]] = {}
        for key, request, exchange in _read_recording(self.path):
            self._answers[key].append(exchange)
            self._requests[key] = request

    @property
    def models(self) -> list[str]:
        """The distinct model ids of the recorded requests, sorted."""
        return sorted({str(r["model"]) for r in self._requests.values() if r.get("model")})

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Returns the recorded reply to `request`, or raises `ReplayMissError`."""
        try:
            body = json.loads(request.read() or b"null")
        except json.JSONDecodeError:
            body = None
        if request.method != "POST" or not request.url.path.endswith(_CHAT_PATH_SUFFIX):
            raise ReplayMissError(
                f"replay file {self.path} only answers POST .../chat/completions, got "
                f"{request.method} {request.url.path}."
            )
        key = request_key(body)
        answers = self._answers.get(key)
        if not answers:
            raise ReplayMissError(self._miss_message(normalise_request(body)))
        exchange = answers[min(self._served[key], len(answers) - 1)]
        self._served[key] += 1
        return httpx.Response(
            status_code=exchange.status,
            headers={"content-type": "application/json"},
            content=json.dumps(exchange.body).encode("utf-8"),
            request=request,
        )

    def _miss_message(self, wanted: dict[str, Any]) -> str:
        head = (
            f"no recorded exchange in {self.path} matches this request "
            f"({len(self._requests)} recorded)"
        )
        if not self._requests:
            return head + "; the file is empty. Record one (see policies/llm/README.md)."
        wanted_key = json.dumps(wanted, sort_keys=True, ensure_ascii=False)
        closest = max(
            self._requests.values(),
            key=lambda r: difflib.SequenceMatcher(
                None, wanted_key, json.dumps(r, sort_keys=True, ensure_ascii=False)
            ).ratio(),
        )
        differences = "; ".join(_differences(wanted, closest)) or "nothing visible"
        return (
            f"{head}. Closest recorded request differs in: {differences}. Closest recorded "
            f"request: {json.dumps(closest, ensure_ascii=False)[:800]}. If the prompt changed "
            "on purpose, re-record the file against a live server (policies/llm/README.md)."
        )


def _differences(wanted: dict[str, Any], recorded: dict[str, Any]) -> list[str]:
    """Names each normalised field that differs, e.g. `messages[1].content: 'a' != 'b'`."""
    out: list[str] = []
    for field in ("model", "temperature", "max_tokens", "stop"):
        if wanted.get(field) != recorded.get(field):
            out.append(f"{field}: sent {wanted.get(field)!r}, recorded {recorded.get(field)!r}")
    sent, rec = wanted.get("messages") or [], recorded.get("messages") or []
    if len(sent) != len(rec):
        out.append(f"messages: sent {len(sent)} turns, recorded {len(rec)}")
    for i, (a, b) in enumerate(zip(sent, rec, strict=False)):
        for part in ("role", "content"):
            if a.get(part) != b.get(part):
                out.append(
                    f"messages[{i}].{part}: sent {str(a.get(part))[:80]!r}, "
                    f"recorded {str(b.get(part))[:80]!r}"
                )
    return out


def _read_recording(path: Path) -> list[tuple[str, dict[str, Any], _Exchange]]:
    """Parses a recording into (match key, normalised request, recorded reply) triples."""
    if not path.is_file():
        raise ConfigError(
            f"replay file {str(path)!r} does not exist; record one against a live server "
            "(policies/llm/README.md) or fix the path in --planner replay:<file>."
        )
    entries: list[tuple[str, dict[str, Any], _Exchange]] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            request, response = record["request"], record["response"]
            if not str(request.get("path", "")).endswith(_CHAT_PATH_SUFFIX):
                continue  # e.g. a recorded GET /v1/models; replay only answers completions
            exchange = _Exchange(status=int(response["status"]), body=response["body"])
            body = request["body"]
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ParseError(
                f"{path}:{lineno} is not a recorded exchange ({exc}); each line must be "
                '{"request": {"method", "path", "body"}, "response": {"status", "body"}}.'
            ) from exc
        entries.append((request_key(body), normalise_request(body), exchange))
    return entries


@dataclass(kw_only=True)
class ReplayBackendConfig:
    """Which recording to answer from."""

    path: Path  # JSONL recording written by RecordingTransport
    model: str | None = None  # model id to request; None = the one model in the recording

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if self.model == "":
            raise ConfigError("ReplayBackendConfig.model is empty; pass None to auto-detect.")


class ReplayBackend(OpenAIBackend):
    """The `openai:` backend with its HTTP transport answering from a recording.

    Args:
        config: the recording, and the model id when the file holds several.

    Raises:
        ConfigError: the file is missing, or holds several models and none was chosen.
        ParseError: the file is not a recording.
    """

    spec_prefix: ClassVar[str] = "replay"

    def __init__(self, config: ReplayBackendConfig) -> None:
        transport = ReplayTransport(config.path)
        model = config.model
        if model is None:
            if len(transport.models) != 1:
                raise ConfigError(
                    f"replay file {config.path} records models {transport.models}; choose one "
                    "with ReplayBackendConfig(model=...)."
                )
            model = transport.models[0]
        self.replay_config = config
        super().__init__(
            # Retries would only re-ask the same recording; fail on the first miss.
            OpenAIBackendConfig(model=model, base_url=_REPLAY_BASE_URL, max_retries=0),
            http_client=httpx.Client(transport=transport),
        )

    @classmethod
    def from_spec(cls, argument: str) -> Self:
        """`replay:<file>`."""
        if not argument:
            raise ConfigError("replay: needs a file, e.g. --planner replay:tests/data/chat.jsonl.")
        return cls(ReplayBackendConfig(path=Path(argument)))

    @property
    def name(self) -> str:
        """`replay:<file>`."""
        return f"{self.spec_prefix}:{self.replay_config.path}"
