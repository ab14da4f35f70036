"""The `vlm:` monitor against a real vision-language model with random weights, on loopback.

The model is built here (torch, seeded): a small CNN reads every image of the request, a byte
embedding reads its text, and a GRU writes the answer byte by byte, greedily. It understands
nothing; the point is the real multimodal wire path (images as PNG data URLs, decoded by the
server into tensors the network runs on) and what the monitor does with the junk a model
answers: a classified `MonitorError`, never a crash or a made-up verdict.
"""

from __future__ import annotations

import base64
import socket
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
fastapi = pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

from corrigible.corrections.repair.monitors import VLMMonitor, VLMMonitorConfig  # noqa: E402
from corrigible.policies.controller import MonitorError  # noqa: E402

from .test_vlm_monitor import _evidence  # noqa: E402

_MAX_NEW_BYTES = 48


class TinyVLM(torch.nn.Module):
    """Images and text in, bytes out; random weights from a seed."""

    def __init__(self, seed: int = 0, hidden: int = 64) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.vision = torch.nn.Sequential(
            torch.nn.Conv2d(3, 16, 5, stride=4),
            torch.nn.ReLU(),
            torch.nn.Conv2d(16, hidden, 3, stride=2),
            torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(),
        )
        self.embed = torch.nn.Embedding(256, hidden)
        self.gru = torch.nn.GRU(hidden, hidden, batch_first=True)
        self.head = torch.nn.Linear(hidden, 256)

    @torch.no_grad()
    def generate(self, images: list[np.ndarray], text: str) -> str:
        """Greedy bytes (printable ASCII only) after the images and the prompt."""
        pixels = [torch.from_numpy(im).permute(2, 0, 1).float().unsqueeze(0) / 255 for im in images]
        visual = torch.stack([self.vision(p)[0] for p in pixels]).unsqueeze(0)
        prompt = torch.tensor([list(text.encode("utf-8")[-256:])])
        _, state = self.gru(torch.cat([visual, self.embed(prompt)], dim=1))
        out, token = bytearray(), prompt[:, -1:]
        for _ in range(_MAX_NEW_BYTES):
            step, state = self.gru(self.embed(token), state)
            logits = self.head(step[:, -1])
            logits[:, :32] = -1e9  # printable answers only, as a text model's vocabulary is
            logits[:, 127:] = -1e9
            token = logits.argmax(dim=-1, keepdim=True)
            out.append(int(token))
        return out.decode("ascii")


class VLMServer:
    """An OpenAI-compatible /v1/chat/completions around `TinyVLM`, on a free loopback port."""

    def __init__(self) -> None:
        self.model = TinyVLM()
        self.seen: list[dict[str, Any]] = []
        app = fastapi.FastAPI()

        @app.post("/v1/chat/completions")
        def chat(body: dict[str, Any]) -> dict[str, Any]:
            images: list[np.ndarray] = []
            texts: list[str] = []
            for message in body["messages"]:
                content = message["content"]
                parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
                for part in parts:
                    if part["type"] == "text":
                        texts.append(part["text"])
                    elif part["type"] == "image_url":
                        url = part["image_url"]["url"]
                        head, data = url.split(",", 1)
                        assert head == "data:image/png;base64"
                        raw = np.frombuffer(base64.b64decode(data), np.uint8)
                        images.append(
                            cv2.cvtColor(cv2.imdecode(raw, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
                        )
            answer = self.model.generate(images, "\n".join(texts))
            self.seen.append({"shapes": [im.shape for im in images], "answer": answer})
            return {
                "id": "chatcmpl-tiny",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "tiny-vlm"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer},
                        "finish_reason": "length",
                    }
                ],
                "usage": {"prompt_tokens": 0, "completion_tokens": _MAX_NEW_BYTES},
            }

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started and time.time() < deadline:
            time.sleep(0.05)
        assert self.server.started, "the tiny VLM server did not start"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def tiny_vlm():
    server = VLMServer()
    yield server
    server.close()


def test_a_random_vision_model_sees_the_images_and_its_junk_is_classified(
    tiny_vlm, tmp_path: Path
) -> None:
    evidence = _evidence(tmp_path)
    monitor = VLMMonitor(VLMMonitorConfig(model="tiny-vlm", base_url=tiny_vlm.base_url))
    with pytest.raises(MonitorError) as info:
        monitor.judge(evidence)
    assert info.value.kind == "malformed"
    (seen,) = tiny_vlm.seen
    # Both images (RGB and the depth rendering) reached the network at the evidence's size.
    assert len(seen["shapes"]) == 2
    assert all(s[:2] == evidence.rgb.shape[:2] for s in seen["shapes"])
    assert len(seen["answer"]) == _MAX_NEW_BYTES and seen["answer"].isprintable()
