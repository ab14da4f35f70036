"""Regenerates `tiny_chat.jsonl`, the committed replay fixture, from a live loopback server.

It builds the tiny test model, starts `transformers serve` on 127.0.0.1, sends the chats below
through the real `openai:` backend with recording on, and stops the server. Offline; ~15 s.

Run from the repository root::

    python tests/policies/llm/data/make_replay_fixture.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

# The loopback server is a test helper in tests/support/ (pytest puts it on sys.path; a script
# run directly has to do so itself).
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "support"))

from corrigible.policies.llm import ChatMessage  # noqa: E402
from corrigible.policies.llm.openai_backend import OpenAIBackend, OpenAIBackendConfig  # noqa: E402
from loopback_llm import (  # noqa: E402
    TINY_MODEL_NAME,
    LoopbackServer,
    LoopbackServerConfig,
    build_tiny_chat_model,
)

OUT = Path(__file__).with_name("tiny_chat.jsonl")
_SYSTEM = ChatMessage.system("You write Python code for a tabletop robot.")
# (messages, max_tokens, stop) per exchange; the replay test re-sends whatever the file holds.
CHATS: list[tuple[list[ChatMessage], int, list[str] | None]] = [
    ([_SYSTEM, ChatMessage.user("put the red block in the blue bowl")], 48, None),
    ([ChatMessage.user("stack the blocks")], 48, ["bowl"]),
    ([_SYSTEM, ChatMessage.user("say hello")], 4, None),
]


def main() -> None:
    """Records every chat in `CHATS` into `OUT`, replacing it."""
    OUT.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_chat_model(Path(tmp) / TINY_MODEL_NAME)
        with LoopbackServer(LoopbackServerConfig(model=model_dir)) as server:
            config = OpenAIBackendConfig(
                model=server.model_id, base_url=server.base_url, record_path=OUT
            )
            with OpenAIBackend(config) as llm:
                for messages, max_tokens, stop in CHATS:
                    reply = llm.complete(messages, max_tokens=max_tokens, stop=stop)
                    print(f"{reply.text!r}  ({reply.latency_s * 1000:.0f} ms)")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
