"""`openai:<model>`: any OpenAI-compatible chat server through the official `openai` client.

Works with OpenAI itself and with local servers that speak the same protocol (Ollama, vLLM,
llama.cpp's `llama-server`, `transformers serve`). Decoding is greedy (temperature 0), as in
Code as Policies, so the same prompt gives the same program.

Environment:
    CORRIGIBLE_LLM_BASE_URL, else OPENAI_BASE_URL: the server, e.g. `http://127.0.0.1:11434/v1`.
        Unset means api.openai.com, except for a bundled model id (`coder-1.5b`, `coder-0.5b`),
        which means `corrigible llm serve` at http://127.0.0.1:8080/v1.
    OPENAI_API_KEY: the key; local servers ignore it, so it defaults to "not-needed".
    CORRIGIBLE_LLM_TIMEOUT_S: seconds to wait for one completion (default 120; CPU servers are
        slow).
    CORRIGIBLE_LLM_RECORD: append every exchange to this JSONL file, for `replay:<file>`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

from corrigible.errors import (
    ConfigError,
    DependencyNotInstalled,
    LLMError,
    LLMModelNotFoundError,
    LLMUnreachableError,
    ReplayMissError,
)
from corrigible.policies.llm.base import LLMBackend
from corrigible.policies.llm.llama_server import default_base_url
from corrigible.policies.llm.model_cache import BUNDLED_MODELS
from corrigible.policies.llm.recorder import RecordingTransport, httpx

if TYPE_CHECKING:
    import openai

_DEFAULT_API_KEY = "not-needed"  # local servers ignore the key but the client insists on one


@dataclass(kw_only=True)
class OpenAIBackendConfig:
    """How to reach an OpenAI-compatible server and how to ask it."""

    model: str  # model id as the server knows it, e.g. "gpt-4o-mini", "qwen2.5-coder:1.5b"
    base_url: str | None = None  # server root incl. "/v1"; None means api.openai.com
    api_key: str = _DEFAULT_API_KEY  # bearer token; local servers accept anything
    temperature: float = 0.0  # sampling temperature; 0 = greedy, reproducible programs
    timeout_s: float = 120.0  # seconds for one whole completion (CPU servers are slow)
    connect_timeout_s: float = 5.0  # seconds to open the TCP connection (fail fast when down)
    max_retries: int = 2  # client retries on connection errors, 429 and 5xx (with backoff)
    record_path: Path | None = None  # append each exchange to this JSONL file (replay format)

    def __post_init__(self) -> None:
        if not self.model:
            raise ConfigError(
                "OpenAIBackendConfig.model is empty; pass the server's model id, e.g. "
                "--planner openai:gpt-4o-mini."
            )
        if self.base_url is not None and not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"OpenAIBackendConfig.base_url must start with http:// or https://, got "
                f"{self.base_url!r}; e.g. http://127.0.0.1:11434/v1."
            )
        if self.temperature < 0:
            raise ConfigError(f"temperature must be >= 0, got {self.temperature}.")
        if self.timeout_s <= 0 or self.connect_timeout_s <= 0:
            raise ConfigError(
                f"timeouts must be > 0 s, got timeout_s={self.timeout_s}, "
                f"connect_timeout_s={self.connect_timeout_s}."
            )
        if self.max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {self.max_retries}.")
        if self.record_path is not None:
            self.record_path = Path(self.record_path)

    @classmethod
    def from_env(cls, model: str, environ: Mapping[str, str] | None = None) -> OpenAIBackendConfig:
        """Reads the server address, key, timeout and recording file from the environment.

        The corrigible-specific variable wins over OPENAI_BASE_URL so that a shell exporting
        OPENAI_BASE_URL for other tools can still point corrigible elsewhere.

        Args:
            model: the model id.
            environ: variables to read (default `os.environ`).
        """
        env = os.environ if environ is None else environ
        timeout = env.get("CORRIGIBLE_LLM_TIMEOUT_S")
        try:
            timeout_s = float(timeout) if timeout else cls.timeout_s
        except ValueError as exc:
            raise ConfigError(
                f"CORRIGIBLE_LLM_TIMEOUT_S must be a number of seconds, got {timeout!r}."
            ) from exc
        record = env.get("CORRIGIBLE_LLM_RECORD")
        base_url = env.get("CORRIGIBLE_LLM_BASE_URL") or env.get("OPENAI_BASE_URL") or None
        if base_url is None and model in BUNDLED_MODELS:
            # A bundled model's id can only mean `corrigible llm serve` at its default port.
            base_url = default_base_url()
        return cls(
            model=model,
            base_url=base_url,
            api_key=env.get("OPENAI_API_KEY") or _DEFAULT_API_KEY,
            timeout_s=timeout_s,
            record_path=Path(record) if record else None,
        )


def _import_openai() -> Any:
    try:
        import openai
    except ImportError as exc:
        raise DependencyNotInstalled(
            "the openai: and replay: planners need the `openai` client; pip install openai"
        ) from exc
    return openai


class OpenAIBackend(LLMBackend):
    """Chat completions from an OpenAI-compatible server (`--planner openai:<model>`).

    Args:
        config: server, model and timeouts.
        http_client: an HTTP client (of the library the `openai` client uses) to send through;
            the replay backend passes one whose transport answers from a recording. Default:
            the client's own, wrapped in a recorder when `config.record_path` is set.
    """

    spec_prefix: ClassVar[str] = "openai"

    def __init__(self, config: OpenAIBackendConfig, *, http_client: Any | None = None) -> None:
        openai = _import_openai()
        self.config = config
        timeout = openai.Timeout(config.timeout_s, connect=config.connect_timeout_s)
        if http_client is None and config.record_path is not None:
            http_client = httpx.Client(
                transport=RecordingTransport(config.record_path), timeout=timeout
            )
        self._http_client = http_client
        self._client: openai.OpenAI = openai.OpenAI(
            base_url=config.base_url,
            api_key=config.api_key,
            timeout=timeout,
            max_retries=config.max_retries,
            http_client=http_client,
        )

    @classmethod
    def from_spec(cls, argument: str) -> Self:
        """`openai:<model>`, with the server taken from the environment."""
        return cls(OpenAIBackendConfig.from_env(argument))

    @property
    def name(self) -> str:
        """`openai:<model>`."""
        return f"{self.spec_prefix}:{self.config.model}"

    @property
    def base_url(self) -> str:
        """The server root the client sends to."""
        return str(self._client.base_url)

    def _complete(
        self, messages: list[dict[str, str]], *, max_tokens: int, stop: list[str] | None
    ) -> dict[str, Any]:
        openai = _import_openai()
        request: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "temperature": self.config.temperature,
            # `max_tokens`, not `max_completion_tokens`: every local server (Ollama, vLLM,
            # llama.cpp, transformers serve) understands it; OpenAI's chat models still do.
            "max_tokens": max_tokens,
        }
        if stop:
            request["stop"] = stop
        try:
            reply = self._client.chat.completions.with_raw_response.create(**request)
            reply.parse()  # the client's own validation: a malformed reply fails here
            return json.loads(reply.http_response.content)
        except ReplayMissError:
            raise
        except openai.OpenAIError as exc:
            raise self._translate(exc) from exc
        except json.JSONDecodeError as exc:
            raise LLMError(
                f"the server at {self.base_url} answered {self.name} with a body that is not "
                f"JSON ({exc}); check that it is an OpenAI-compatible endpoint."
            ) from exc

    def _translate(self, exc: Exception) -> LLMError:
        """Turns an `openai` exception into an `LLMError` that says what to do next."""
        for exc_type, explain in _explainers():
            if isinstance(exc, exc_type):
                return explain(self, exc)
        return LLMError(f"{self.name} at {self.base_url} failed: {exc}")

    def _close(self) -> None:
        self._client.close()
        if self._http_client is not None:
            self._http_client.close()


def _status_detail(exc: Any) -> str:
    """`HTTP <code>: <the server's own words>`, whichever error shape the server uses."""
    status = getattr(exc, "status_code", "?")
    body = getattr(exc, "body", None)
    detail: Any = None
    if isinstance(body, dict):
        # OpenAI/vLLM/Ollama: {"error": {"message"}} (the client unwraps it to the inner dict);
        # FastAPI servers such as `transformers serve`: {"detail": "..."}.
        error = body.get("error")
        detail = (
            (error.get("message") if isinstance(error, dict) else error)
            or body.get("message")
            or body.get("detail")
        )
    elif body:
        detail = body
    if detail is None:
        response = getattr(exc, "response", None)
        detail = response.text[:300] if response is not None else getattr(exc, "message", exc)
    return f"HTTP {status}: {detail}"


_ExcTypes = type[Exception] | tuple[type[Exception], ...]


def _explainers() -> list[tuple[_ExcTypes, Callable[[OpenAIBackend, Any], LLMError]]]:
    """Exception type -> message builder, most specific first (subclasses before bases)."""
    openai = _import_openai()
    return [
        (
            openai.APITimeoutError,
            lambda b, e: LLMUnreachableError(
                f"the LLM server at {b.base_url} did not answer {b.name} within "
                f"{b.config.timeout_s:g} s. CPU servers are slow: raise CORRIGIBLE_LLM_TIMEOUT_S, "
                "lower max_tokens or use a smaller model."
            ),
        ),
        (
            openai.APIConnectionError,
            lambda b, e: LLMUnreachableError(
                f"could not reach the LLM server at {b.base_url} for {b.name} "
                f"({e.__cause__ or e}). Start it (`corrigible llm serve`, `ollama serve`, "
                "`vllm serve`, `llama-server`, `transformers serve`) or point "
                "CORRIGIBLE_LLM_BASE_URL / OPENAI_BASE_URL at it."
            ),
        ),
        (
            openai.NotFoundError,
            lambda b, e: LLMModelNotFoundError(
                f"the server at {b.base_url} has no model {b.config.model!r} "
                f"({_status_detail(e)}). List its models with `curl {b.base_url}models` and use "
                "one of those ids in --planner openai:<id>; also check the base URL ends in /v1."
            ),
        ),
        (
            (openai.AuthenticationError, openai.PermissionDeniedError),
            lambda b, e: LLMError(
                f"the server at {b.base_url} refused the API key for {b.name} "
                f"({_status_detail(e)}); set OPENAI_API_KEY."
            ),
        ),
        (
            openai.RateLimitError,
            lambda b, e: LLMError(
                f"the server at {b.base_url} rate-limited {b.name} after "
                f"{b.config.max_retries} retries ({_status_detail(e)}); wait, or check quota."
            ),
        ),
        (
            openai.BadRequestError,
            lambda b, e: LLMError(
                f"the server at {b.base_url} rejected the request for {b.name} "
                f"({_status_detail(e)}). A server pinned to one model (`transformers serve "
                "<model>`) rejects other model ids; check --planner openai:<model>."
            ),
        ),
        (
            openai.InternalServerError,
            lambda b, e: LLMError(
                f"the server at {b.base_url} failed on {b.name} after {b.config.max_retries} "
                f"retries ({_status_detail(e)}); its own log says why (e.g. a model without "
                "a chat template, or out of memory)."
            ),
        ),
        (
            openai.APIStatusError,
            lambda b, e: LLMError(
                f"the server at {b.base_url} refused the request for {b.name} "
                f"({_status_detail(e)})."
            ),
        ),
        (
            openai.APIResponseValidationError,
            lambda b, e: LLMError(
                f"the server at {b.base_url} sent {b.name} a reply that is not a chat "
                f"completion ({e}); check that it implements /v1/chat/completions."
            ),
        ),
    ]
