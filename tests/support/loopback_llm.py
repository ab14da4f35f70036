"""Test support: a real OpenAI-compatible server on 127.0.0.1, and a tiny model for it, offline.

`transformers serve` (transformers >= 5 with its `serving` extra, installed by
`pip install -e '.[test]'` through corrigible's `[llm]` extra) serves a local model directory
over the OpenAI protocol. `LoopbackServer` starts it on a free loopback port with the Hub
switched off, waits until `/v1/models` answers, and kills its process group on exit. Tests use
it to run the `openai:` backend against a live server and to record replay files.

Not part of the library: this module lives in `tests/support/`, which pytest puts on `sys.path`
(`pythonpath` in pyproject.toml) and `tests/conftest.py` passes on to subprocesses through
`PYTHONPATH`, so tests write `from loopback_llm import LoopbackServer`.

`build_tiny_chat_model` writes a ~130 kB Llama with a byte-level BPE tokenizer and a chat
template, trained for a fraction of a second to always answer one fixed ```python block. It
makes the server's greedy output deterministic and code-like without downloading anything.

Example (the command `LoopbackServer` runs, for a model directory `./tiny`)::

    HF_HUB_OFFLINE=1 transformers serve ./tiny --host 127.0.0.1 --port 8000 --device cpu
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from corrigible.errors import ConfigError, DependencyNotInstalled, LLMError

# The one answer the tiny model is trained to give, whatever it is asked.
TINY_ANSWER = "```python\nput_first_on_second('red block', 'blue bowl')\n```"
TINY_MODEL_NAME = "corrigible-tiny-llama"

_TINY_CORPUS = (
    "put_first_on_second('red block', 'blue bowl')",
    "put_first_on_second('green block', 'yellow block')",
    "pos = get_obj_pos('red block')\ngoto_pos(pos)",
    "for name in get_obj_names():\n    say(name)",
    "def stack_objects_in_order(names):\n    for a, b in zip(names, names[1:]):\n"
    "        put_first_on_second(b, a)",
    "# pick up the red block and put it in the blue bowl.",
    "```python\nrobot.pick('red block')\nrobot.place('blue bowl')\n```",
)
_TINY_PROMPTS = (
    "put the red block in the blue bowl",
    "stack the blocks",
    "say hello",
    "move the green block to the left",
    "# pick up the red block.",
)
_SPECIAL_TOKENS = ("<|pad|>", "<|bos|>", "<|eos|>", "<|end|>")
# Role names inside <|...|> are plain text, so any role the API sends renders.
_TINY_CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def build_tiny_chat_model(directory: str | Path, *, seed: int = 0, train_steps: int = 150) -> Path:
    """Writes a tiny chat causal LM to `directory`, offline, in about a second.

    Args:
        directory: where to `save_pretrained` (created; existing files are overwritten).
        seed: torch seed for the weights and training, so builds are reproducible.
        train_steps: AdamW steps on the fixed answer; 0 keeps random weights (gibberish out).

    Returns:
        `directory`, holding config.json, model.safetensors, generation_config.json and the
        tokenizer files with a chat template.
    """
    try:
        import torch
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
        from transformers import (
            GenerationConfig,
            LlamaConfig,
            LlamaForCausalLM,
            PreTrainedTokenizerFast,
        )
    except ImportError as exc:
        raise DependencyNotInstalled(
            "building the tiny test model needs torch, tokenizers and transformers; "
            f"pip install -e '.[test]' ({exc})"
        ) from exc
    if train_steps < 0:
        raise ConfigError(f"train_steps must be >= 0, got {train_steps}.")
    directory = Path(directory)
    # Byte-level BPE decodes back to the exact text, spaces and newlines included.
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        list(_TINY_CORPUS) * 4 + [TINY_ANSWER] * 4,
        trainers.BpeTrainer(
            vocab_size=400,
            special_tokens=list(_SPECIAL_TOKENS),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<|bos|>",
        eos_token="<|end|>",
        pad_token="<|pad|>",
        chat_template=_TINY_CHAT_TEMPLATE,
    )
    end_id = tokenizer.convert_tokens_to_ids("<|end|>")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=end_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    if train_steps:
        # One thread: the model is tiny, and OpenMP threads spinning against other processes on
        # a shared 2-core machine turned a 1 s build into 30 s.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            _train_on_answer(model, tokenizer, torch, train_steps)
        finally:
            torch.set_num_threads(threads)
    model.eval()
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=end_id,
        pad_token_id=config.pad_token_id,
        do_sample=False,
        max_new_tokens=64,
    )
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def _train_on_answer(model: object, tokenizer: object, torch: object, steps: int) -> None:
    """Teaches `model` to reply `TINY_ANSWER` to a few chats (loss on the answer only)."""
    rows = []
    answer = tokenizer(TINY_ANSWER + "<|end|>", add_special_tokens=False)["input_ids"]
    for prompt in _TINY_PROMPTS:
        for system in (None, "You write Python code for a tabletop robot."):
            chat = ([{"role": "system", "content": system}] if system else []) + [
                {"role": "user", "content": prompt}
            ]
            text = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
            rows.append((tokenizer(text, add_special_tokens=False)["input_ids"], answer))
    width = max(len(p) + len(a) for p, a in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id)
    labels = torch.full((len(rows), width), -100)  # -100: ignored by the loss
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (p, a) in enumerate(rows):
        ids[i, : len(p) + len(a)] = torch.tensor(p + a)
        labels[i, len(p) : len(p) + len(a)] = torch.tensor(a)
        mask[i, : len(p) + len(a)] = 1
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def free_loopback_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(kw_only=True)
class LoopbackServerConfig:
    """What `transformers serve` serves and how long to wait for it."""

    model: Path  # a transformers model directory (served under its folder name)
    port: int | None = None  # TCP port on 127.0.0.1; None picks a free one
    startup_timeout_s: float = 120.0  # seconds to wait for /v1/models to answer
    threads: int = 1  # torch CPU threads of the server (cores are shared with the tests)
    extra_env: dict[str, str] = field(default_factory=dict)  # more environment variables

    def __post_init__(self) -> None:
        self.model = Path(self.model)
        if not (self.model / "config.json").is_file():
            raise ConfigError(
                f"LoopbackServerConfig.model {str(self.model)!r} is not a model directory "
                "(no config.json); build one with build_tiny_chat_model(dir)."
            )
        if self.startup_timeout_s <= 0:
            raise ConfigError(f"startup_timeout_s must be > 0, got {self.startup_timeout_s}.")
        if self.threads < 1:
            raise ConfigError(f"threads must be >= 1, got {self.threads}.")


class LoopbackServer:
    """`transformers serve <model>` on 127.0.0.1, started and stopped as a context manager.

    The server runs in its own session (process group), cwd = the model's parent folder, and
    is given the folder *name*: the model id clients must send is then `model_id` (the folder
    name), independent of where the folder lives, so recordings are reproducible.

    Args:
        config: model, port and timeouts.
    """

    def __init__(self, config: LoopbackServerConfig) -> None:
        self.config = config
        self.port = config.port or free_loopback_port()
        self.startup_s: float | None = None  # seconds until /v1/models answered
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None

    @property
    def model_id(self) -> str:
        """The model id the server is pinned to."""
        return self.config.model.name

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>/v1`, for `OPENAI_BASE_URL`."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def command(self) -> list[str]:
        """The argv that starts the server."""
        return [
            sys.executable,
            "-m",
            "transformers.cli.transformers",
            "serve",
            self.model_id,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--device",
            "cpu",
        ]

    @property
    def log_path(self) -> Path | None:
        """The server's combined stdout/stderr, while it runs."""
        return None if self._workdir is None else self._workdir / "serve.log"

    def start(self) -> Self:
        """Starts the server and blocks until it answers.

        Raises:
            DependencyNotInstalled: fastapi/uvicorn (transformers[serving]) are missing.
            LLMError: the server exited or did not answer in time; the message has its log.
        """
        if self._process is not None:
            raise LLMError(f"the loopback server on {self.base_url} is already running.")
        for module in ("fastapi", "uvicorn"):
            if importlib.util.find_spec(module) is None:
                raise DependencyNotInstalled(
                    f"`transformers serve` needs {module}; pip install 'corrigible[llm]' "
                    "(it holds transformers[serving])"
                )
        self._workdir = Path(tempfile.mkdtemp(prefix="corrigible-serve-"))
        hub_cache = self._workdir / "hf-hub"  # empty: /v1/models scans it, nothing is fetched
        hub_cache.mkdir()
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HF_HUB_CACHE": str(hub_cache),
            "OMP_NUM_THREADS": str(self.config.threads),
            "TOKENIZERS_PARALLELISM": "false",
            **self.config.extra_env,
        }
        start = time.perf_counter()
        with self.log_path.open("wb") as log:  # type: ignore[union-attr]
            self._process = subprocess.Popen(
                self.command,
                cwd=self.config.model.parent,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: stop() kills uvicorn's children too
            )
        deadline = start + self.config.startup_timeout_s
        while time.perf_counter() < deadline:
            code = self._process.poll()
            if code is not None:
                tail = self._log_tail()
                self.stop()
                raise LLMError(
                    f"`transformers serve` exited with code {code} before "
                    f"answering; its log ends with:\n{tail}"
                )
            if self._models_answer():
                self.startup_s = time.perf_counter() - start
                return self
            time.sleep(0.25)
        tail = self._log_tail()
        self.stop()
        raise LLMError(
            f"`transformers serve` did not answer on {self.base_url}/models within "
            f"{self.config.startup_timeout_s:g} s; its log ends with:\n{tail}"
        )

    def _models_answer(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as reply:
                return reply.status == 200 and "data" in json.loads(reply.read())
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            return False

    def _log_tail(self, chars: int = 3000) -> str:
        path = self.log_path
        if path is None or not path.is_file():
            return "(no log)"
        return path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        """Terminates the server's process group (SIGTERM, then SIGKILL); idempotent."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            except ProcessLookupError:
                pass
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
