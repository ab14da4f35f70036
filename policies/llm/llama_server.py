"""An OpenAI-compatible server on loopback for a bundled or given GGUF, via llama-cpp-python.

`corrigible llm serve` runs this. The server is llama-cpp-python's own (`llama_cpp.server`, a
FastAPI app speaking `/v1/chat/completions` and `/v1/models`), so the `openai:` backend, the
planner, the router, distillation and repair reach it exactly as they reach Ollama or vLLM:

    corrigible llm serve --model coder-1.5b          # http://127.0.0.1:8080/v1
    corrigible run "stack all the blocks" --planner openai:coder-1.5b

The model id the server answers to is the bundled key (`coder-1.5b`), so `openai:coder-1.5b`
names it; `openai:` specs naming a bundled key default to this server's address when
CORRIGIBLE_LLM_BASE_URL is unset (`DEFAULT_PORT`).

Why these settings: the planner's prompt is a fixed prefix (system text, API, few-shot turns)
followed by one short user turn, and llama.cpp reuses the KV cache of the longest common token
prefix of consecutive requests, so after the first plan a request costs mostly generation
(measured: 994 of 1006 prompt tokens reused). A function-generation request shares only the
system text (~530 tokens) and the next plan re-reads the few-shot turns once. Greedy decoding
comes from the client (temperature 0).
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
from pathlib import Path

from pydantic import Field, field_validator

from corrigible.config import StrictConfig
from corrigible.errors import ConfigError, DependencyNotInstalled
from corrigible.policies.llm.model_cache import BUNDLED_MODELS, model_path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080  # llama.cpp's own server default
DEFAULT_MODEL = "coder-1.5b"
_PIP = "pip install 'corrigible[llm]' (or pip install 'llama-cpp-python[server]')"


def default_base_url(port: int = DEFAULT_PORT) -> str:
    """The `/v1` root a `corrigible llm serve` on `port` answers at."""
    return f"http://{DEFAULT_HOST}:{port}/v1"


class ServeConfig(StrictConfig):
    """What `corrigible llm serve` serves and how (a bad field is a `ConfigError`)."""

    model: str = DEFAULT_MODEL  # a bundled key (coder-1.5b, coder-0.5b) or a .gguf file path
    host: str = DEFAULT_HOST  # listen address; loopback only (127.0.0.0/8, ::1, localhost)
    port: int = Field(default=DEFAULT_PORT, ge=1, le=65535)  # listen port
    n_ctx: int = Field(default=4096, ge=512, le=32768)  # context window, tokens
    threads: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)  # CPU threads
    # llama-cpp-python's RAM prompt-state cache, MiB (0 = off, the default). Off because each
    # saved state also copies the logits buffer (n_batch x 152k vocabulary floats, ~300 MB for
    # Qwen) beyond what the capacity counts: the 1.5B server grew to 8.7 GB and was killed for
    # memory with 1024 here. The KV cache's longest-common-prefix reuse needs no state cache.
    cache_mb: int = Field(default=0, ge=0)
    verbose: bool = False  # llama.cpp's own timing lines on stderr

    @field_validator("host")
    @classmethod
    def _loopback(cls, v: str) -> str:
        if v == "localhost":
            return v
        try:
            loopback = ipaddress.ip_address(v).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(
                f"--host {v!r} is not a loopback address; the server has no authentication, so "
                "it listens on 127.0.0.1, ::1 or localhost only"
            )
        return v

    @property
    def alias(self) -> str:
        """The model id clients send: the bundled key, or the file's stem."""
        return self.model if self.model in BUNDLED_MODELS else Path(self.model).stem

    def gguf(self) -> Path:
        """The GGUF file to serve (joining a bundled model's parts on first use).

        Raises:
            ConfigError: neither a bundled key nor an existing .gguf file.
            DependencyNotInstalled, LLMError: as `model_cache.model_path`.
        """
        if self.model in BUNDLED_MODELS:
            return model_path(self.model)
        path = Path(self.model).expanduser()
        if path.suffix != ".gguf" or not path.is_file():
            raise ConfigError(
                f"--model {self.model!r} is neither a bundled model {sorted(BUNDLED_MODELS)} "
                "nor an existing .gguf file."
            )
        return path


def require_llama_cpp() -> None:
    """Raises DependencyNotInstalled unless llama-cpp-python and its server extra import."""
    for module, what in (
        ("llama_cpp", "llama-cpp-python"),
        ("uvicorn", "uvicorn"),
        ("sse_starlette", "sse-starlette"),
        ("starlette_context", "starlette-context"),
    ):
        if importlib.util.find_spec(module) is None:
            raise DependencyNotInstalled(
                f"`corrigible llm serve` needs {what} (module {module}); {_PIP}. "
                "llama-cpp-python builds from source with the system C++ compiler "
                "(about 20 CPU-minutes on 2 cores)."
            )


def build_app(cfg: ServeConfig) -> object:
    """The llama-cpp-python FastAPI app for `cfg`, with the model loaded (a few seconds)."""
    require_llama_cpp()
    # ggml's OpenMP threads spin-wait at every barrier by default. On a shared CPU (other
    # processes want the same cores) that turns a 3 s completion into 90 s (measured with the
    # 0.5B model, 2 threads, a loaded 2-core machine); passive waiting costs little when idle.
    # libgomp reads this once, when llama_cpp loads its libraries, so it is set before import.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    model = ModelSettings(
        model=str(cfg.gguf()),
        model_alias=cfg.alias,
        n_ctx=cfg.n_ctx,
        n_threads=cfg.threads,
        n_threads_batch=cfg.threads,
        n_gpu_layers=0,
        cache=cfg.cache_mb > 0,
        cache_type="ram",
        cache_size=max(cfg.cache_mb, 1) << 20,
        # No logits for every prompt token: only the last one is sampled (saves memory/time).
        logits_all=False,
        verbose=cfg.verbose,
    )
    server = ServerSettings(host=cfg.host, port=cfg.port)
    return create_app(server_settings=server, model_settings=[model])


def serve(cfg: ServeConfig) -> None:
    """Loads the model and serves until interrupted (blocks)."""
    import uvicorn

    app = build_app(cfg)
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning")
