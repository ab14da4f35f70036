"""The `vlm:<model>` monitor over a real HTTP server on loopback, replaying recorded answers."""

from __future__ import annotations

import base64
import socket
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from corrigible.corrections.repair.monitors import (
    VLMMonitor,
    VLMMonitorConfig,
    make_monitor,
)
from corrigible.errors import ConfigError, UnknownNameError
from corrigible.policies.controller import CheckpointEvidence, MonitorError
from corrigible.sim_envs.layout import LayoutConfig, sample_layout
from corrigible.sim_envs.vocabulary import object_name


def _evidence(tmp_path: Path) -> CheckpointEvidence:
    scene = sample_layout(0, LayoutConfig())
    block = next(o.name for o in scene.objects if o.kind == "block")
    bowl = next(o.name for o in scene.objects if o.kind == "bowl")
    rng = np.random.default_rng(0)
    return CheckpointEvidence(
        index=0,
        name=f"{block} placed",
        expect=f"in({block}, {bowl})",
        line=3,
        line_text="checkpoint(...)",
        rgb=rng.integers(0, 255, (48, 64, 3), dtype=np.uint8),
        depth=rng.uniform(1.2, 1.8, (48, 64)),
        intrinsics=np.eye(3),
        cam_pose=np.eye(4),
        scene=scene,
        rgb_path=tmp_path / "cp000_rgb.png",
        depth_path=tmp_path / "cp000_depth.png",
        state_path=tmp_path / "cp000_state.json",
        sim_time_s=1.0,
    )


def _monitor(url: str, timeout_s: float = 5.0) -> VLMMonitor:
    return VLMMonitor(
        VLMMonitorConfig(model="qwen2-vl-2b-instruct", base_url=url, timeout_s=timeout_s)
    )


@pytest.mark.parametrize(
    ("recording", "holds"),
    [("holds", True), ("fails_fenced", False), ("unsure", None)],
)
def test_recorded_verdicts(vlm_server, tmp_path: Path, recording: str, holds: bool | None) -> None:
    vlm_server.replies.append(("recording", recording))
    evidence = _evidence(tmp_path)
    verdict = _monitor(vlm_server.base_url).judge(evidence)
    assert verdict.holds is holds and verdict.reason and verdict.monitor.startswith("vlm:")
    assert [a["kind"] for a in verdict.atoms] == ["in"]
    # The exact OpenAI wire format: a user message with text and two PNG data URLs.
    (request,) = vlm_server.requests
    assert request["path"] == "/v1/chat/completions"
    body = request["body"]
    assert body["model"] == "qwen2-vl-2b-instruct" and body["messages"][0]["role"] == "system"
    parts = body["messages"][1]["content"]
    assert parts[0]["type"] == "text" and evidence.expect in parts[0]["text"]
    images = [p["image_url"]["url"] for p in parts[1:]]
    assert len(images) == 2 and all(u.startswith("data:image/png;base64,") for u in images)
    rgb = cv2.imdecode(
        np.frombuffer(base64.b64decode(images[0].split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR
    )
    assert np.array_equal(cv2.cvtColor(rgb, cv2.COLOR_BGR2RGB), evidence.rgb)


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (("recording", "junk_prose"), "malformed"),
        (("recording", "junk_verdict"), "malformed"),
        (("recording", "junk_no_verdict"), "malformed"),
        (("raw", 200, "<html>gateway</html>"), "malformed"),
        (("raw", 200, '{"choices": []}'), "malformed"),
        (("raw", 500, '{"error": {"message": "out of memory"}}'), "http"),
    ],
    ids=["prose", "bad-verdict", "no-verdict", "html", "no-choices", "http-500"],
)
def test_junk_answers_are_classified(vlm_server, tmp_path: Path, reply, kind: str) -> None:
    vlm_server.replies.append(reply)
    with pytest.raises(MonitorError) as info:
        _monitor(vlm_server.base_url).judge(_evidence(tmp_path))
    assert info.value.kind == kind


def test_a_hung_server_times_out(vlm_server, tmp_path: Path) -> None:
    vlm_server.replies.append(("hang", 10.0))
    t0 = time.perf_counter()
    with pytest.raises(MonitorError) as info:
        _monitor(vlm_server.base_url, timeout_s=0.5).judge(_evidence(tmp_path))
    assert info.value.kind == "timeout" and time.perf_counter() - t0 < 5


def test_an_unreachable_server(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(MonitorError) as info:
        _monitor(f"http://127.0.0.1:{port}/v1").judge(_evidence(tmp_path))
    assert info.value.kind == "unreachable"


def test_monitor_specs() -> None:
    assert make_monitor("perception").name == "perception"
    assert make_monitor("oracle").name == "oracle"
    env = {"CORRIGIBLE_VLM_BASE_URL": "http://127.0.0.1:9/v1"}
    assert make_monitor("vlm:qwen", env).name == "vlm:qwen"
    with pytest.raises(ConfigError, match="CORRIGIBLE_VLM_BASE_URL"):
        make_monitor("vlm:qwen", {})
    with pytest.raises(UnknownNameError, match="perception"):
        make_monitor("perceptoin")
    assert object_name("red", "block") == "red block"


@pytest.mark.parametrize("engine", ["mujoco"])
def test_a_junk_answer_mid_run_is_a_safe_stop(vlm_server, monkeypatch, tmp_path, engine) -> None:
    from corrigible.launch.evaluations.repair import run_episode

    vlm_server.replies.append(("recording", "junk_prose"))
    monkeypatch.setenv("CORRIGIBLE_VLM_BASE_URL", vlm_server.base_url)
    episode = run_episode(
        engine=engine,
        seed=0,
        instruction="put the red block in the blue bowl",
        expect="in(red block, blue bowl)",
        monitor="vlm:qwen2-vl-2b-instruct",
        trace=tmp_path / "run" / "trace.jsonl",
    )
    assert episode["status"] == "monitor_error"
    assert episode["monitor_error"]["kind"] == "malformed"
    assert episode["iterations"] == 0 and not episode["attempts"]
    text = (tmp_path / "run" / "trace.jsonl").read_text()
    assert "checkpoint.monitor_error" in text
