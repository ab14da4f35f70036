"""run_program end to end: results, trace, limits, error classes, pause/resume/interrupt."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from corrigible.errors import ConfigError
from corrigible.policies.sandbox import (
    ErrorClass,
    SandboxControl,
    SandboxLimits,
    exec_file,
    run_program,
)

SMOKE_PROGRAM = Path(__file__).with_name("numpy_smoke_program.txt").read_text()


def _events(kind: str, events: list[dict]) -> list[dict]:
    return [e for e in events if e["type"] == kind]


def test_benign_program_runs_and_is_traced(api: dict, is_dead) -> None:
    source = (
        "names = get_obj_names()\n"
        "pos = get_obj_pos('red block')\n"
        "moved = pick_place('red block', pos + np.array([0.0, 0.1, 0.0]))\n"
        "say('done')\n"
        "print(type_name if False else 'ok', isinstance(pos, list), pos.shape)\n"
    ).replace("type_name if False else ", "")
    events: list[dict] = []
    result = run_program(source, api, on_event=events.append)
    assert result.is_ok, result.message
    assert result.output == "ok False (3,)\n"
    assert result.lines == [1, 2, 3, 4, 5] and result.line_count == 5
    names = [c["name"] for c in result.api_calls]
    assert names == ["get_obj_names", "get_obj_pos", "pick_place", "say"]
    place = result.api_calls[2]
    assert place["args"] == ["red block", [0.1, -0.4, 0.02]]
    assert place["result"] == {"picked": "red block", "placed_at": [0.1, -0.4, 0.02]}
    assert place["line"] == 3 and place["duration_s"] >= 0 and place["t_start"] > 0
    assert result.api_calls[1]["result"] == {"$nd": [0.1, -0.5, 0.02], "dtype": "float64"}
    kinds = [e["type"] for e in events]
    assert kinds[0] == "started" and kinds[-1] == "end"
    assert len(_events("api_call_start", events)) == len(_events("api_call_end", events)) == 4
    assert "seccomp" in result.hardening, result.hardening
    json.dumps(result.to_json())
    assert is_dead(_events("started", events)[0]["pid"])


def test_numpy_allowlist_smoke() -> None:
    result = run_program(SMOKE_PROGRAM, {})
    assert result.is_ok, f"line {result.line}: {result.message}"
    assert result.output.startswith("106 ")


@pytest.mark.parametrize(
    ("source", "error_class", "line"),
    [
        ("x = 1\ndef f(:\n", ErrorClass.SYNTAX, 2),
        ("x = 1\nimport os\n", ErrorClass.FORBIDDEN, 2),
        ("x = 1\nfly_to_moon()\n", ErrorClass.UNKNOWN_API, 2),
        ("x = 1\ny = table_centre\n", ErrorClass.UNKNOWN_API, 2),
        ("x = 1\ny = [1][5]\n", ErrorClass.RUNTIME, 2),
        ("x = 1\nfail_skill('a')\n", ErrorClass.RUNTIME, 2),
        ("x = 1\nunsafe_move([0, 0, -1])\n", ErrorClass.SAFETY, 2),
        ("x = 1\nget_obj_pos('unicorn')\n", ErrorClass.RUNTIME, 2),
    ],
    ids=[
        "syntax",
        "forbidden",
        "unknown_static",
        "unknown_runtime",
        "runtime",
        "skill",
        "safety",
        "unknown_object",
    ],
)
def test_error_classes_and_lines(
    api: dict, source: str, error_class: ErrorClass, line: int
) -> None:
    result = run_program(source, api)
    assert result.status == "error"
    assert result.error_class is error_class, result.message
    assert result.line == line
    assert result.message


def test_unknown_name_suggests_api(api: dict) -> None:
    result = run_program("x = get_obj_pso\n", api)
    assert result.error_class is ErrorClass.UNKNOWN_API
    assert "Did you mean 'get_obj_pos'" in result.message


def test_api_errors_are_catchable_with_messages(api: dict) -> None:
    source = (
        "try:\n    fail_skill('blue block')\nexcept SkillError as e:\n    print('S', e)\n"
        "try:\n    get_obj_pos('unicorn')\nexcept UnknownObjectError as e:\n    print('U', e)\n"
        "try:\n    unsafe_move(1)\nexcept SafetyError as e:\n    print('F', e)\n"
    )
    result = run_program(source, api)
    assert result.is_ok, result.message
    out = result.output.splitlines()
    assert out[0].startswith("S fail_skill(): could not grasp 'blue block'")
    assert out[1].startswith("U get_obj_pos(): no object named 'unicorn'")
    assert out[2].startswith("F unsafe_move(): target 1 is outside")
    assert result.api_calls[0]["error"]["kind"] == "skill"


def test_infinite_loop_is_stopped_within_its_limit(
    api: dict, short_limits: SandboxLimits, is_dead
) -> None:
    events: list[dict] = []
    started = time.monotonic()
    result = run_program(
        "x = 0\nwhile True:\n    x += 1\n", api, short_limits, on_event=events.append
    )
    elapsed = time.monotonic() - started
    assert result.error_class is ErrorClass.TIMEOUT
    assert result.line in (2, 3)
    assert elapsed < short_limits.wall_time_s + 4.0  # start-up and a loaded machine
    assert result.cpu_time_s is not None and result.cpu_time_s < short_limits.cpu_time_s + 1.5
    assert is_dead(_events("started", events)[0]["pid"])
    assert _events("end", events)


def test_wall_clock_limit_kills(api: dict) -> None:
    limits = SandboxLimits(wall_time_s=0.5, cpu_time_s=30.0)
    result = run_program("while True:\n    pass\n", api, limits)
    assert result.error_class is ErrorClass.TIMEOUT
    assert "wall_time_s=0.5" in result.message and result.line in (1, 2)


def test_wall_clock_excludes_time_inside_api_calls() -> None:
    limits = SandboxLimits(wall_time_s=0.5, cpu_time_s=5.0)
    result = run_program(
        "for i in range(4):\n    slow()\n", {"slow": lambda: time.sleep(0.25)}, limits
    )
    assert result.is_ok, result.message


def test_memory_limit(api: dict, short_limits: SandboxLimits) -> None:
    result = run_program("x = 1\ny = [0] * 10**9\n", api, short_limits)
    assert result.error_class is ErrorClass.MEMORY and result.line == 2


def test_output_cap(api: dict, short_limits: SandboxLimits) -> None:
    result = run_program("while True:\n    print('spam' * 10)\n", api, short_limits)
    assert result.error_class is ErrorClass.LIMIT
    assert len(result.output.encode()) <= short_limits.max_output_bytes
    assert result.output.startswith("spam")


def test_api_call_cap(api: dict) -> None:
    limits = SandboxLimits(max_api_calls=10)
    result = run_program("while True:\n    say('hi')\n", api, limits)
    assert result.error_class is ErrorClass.LIMIT
    assert len(result.api_calls) == 10


def test_giant_api_argument_is_refused_in_the_child(api: dict) -> None:
    result = run_program("say('x' * 10**6)\n", api, SandboxLimits(max_message_bytes=1024))
    assert result.error_class is ErrorClass.RUNTIME and "max_message_bytes" in result.message
    assert result.api_calls == []


def test_trace_is_capped_but_counted(api: dict) -> None:
    limits = SandboxLimits(max_trace_lines=100)
    result = run_program("for i in range(5000):\n    x = i\n", api, limits)
    assert result.is_ok
    assert len(result.lines) == 100 and result.line_count == 10001


def test_pause_freezes_the_child_and_resume_continues(api: dict) -> None:
    control = SandboxControl()
    events: list[dict] = []
    box: dict = {}
    source = "say('start')\ni = 0\nwhile i < 2000000:\n    i += 1\nsay('end')\n"
    thread = threading.Thread(
        target=lambda: box.update(
            r=run_program(source, api, control=control, on_event=events.append)
        )
    )
    thread.start()
    while not any(e["type"] == "api_call_end" for e in events):
        time.sleep(0.01)
    control.pause()
    time.sleep(0.6)
    pid = _events("started", events)[0]["pid"]
    stat = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
    assert stat[0] == b"T", stat[0]  # stopped
    control.resume()
    thread.join(30)
    result = box["r"]
    assert result.is_ok, result.message
    assert [e["type"] for e in events if e["type"] in ("paused", "resumed")] == [
        "paused",
        "resumed",
    ]
    assert [c["name"] for c in result.api_calls] == ["say", "say"]


def test_interrupt_inside_a_skill(api: dict) -> None:
    control = SandboxControl()

    def long_skill() -> str:
        for _ in range(500):
            control.checkpoint()  # a skill that can be stopped between control steps
            time.sleep(0.01)
        return "finished"

    threading.Timer(0.5, control.interrupt, args=("operator said stop",)).start()
    source = "say('go')\nlong_skill()\nsay('never')\n"
    result = run_program(source, {**api, "long_skill": long_skill}, control=control)
    assert result.error_class is ErrorClass.INTERRUPTED
    assert "operator said stop" in result.message
    assert [c["name"] for c in result.api_calls] == ["say", "long_skill"]
    assert result.api_calls[1]["error"]["kind"] == "interrupted"
    assert result.line == 2


def test_interrupt_during_computation(api: dict) -> None:
    control = SandboxControl()
    threading.Timer(0.5, control.interrupt).start()
    started = time.monotonic()
    result = run_program(
        "while True:\n    pass\n", api, SandboxLimits(cpu_time_s=20), control=control
    )
    assert result.error_class is ErrorClass.INTERRUPTED
    assert time.monotonic() - started < 5.0


def test_exec_file_prints_contract_json(tmp_path: Path, api: dict) -> None:
    program = tmp_path / "prog.py"
    program.write_text("say('hi')\nprint(1 / 0)\n")
    result = exec_file(program, api)
    data = result.to_json()
    assert {"status", "error_class", "line", "message", "output", "api_calls", "lines"} <= set(data)
    assert data["status"] == "error" and data["error_class"] == "runtime" and data["line"] == 2
    assert "ZeroDivisionError" in data["message"]
    json.dumps(data)


def test_exec_file_rejects_non_utf8(tmp_path: Path, api: dict) -> None:
    program = tmp_path / "prog.py"
    program.write_bytes(b"say('\xff')\n")
    assert exec_file(program, api).error_class is ErrorClass.SYNTAX


def test_source_size_limit(api: dict) -> None:
    result = run_program("x = 1\n" * 100, api, SandboxLimits(max_source_bytes=100))
    assert result.error_class is ErrorClass.LIMIT


@pytest.mark.parametrize(
    "kwargs",
    [
        {"wall_time_s": 0},
        {"cpu_time_s": -1.0},
        {"memory_mb": 64},
        {"max_api_calls": 0},
        {"max_output_bytes": 1.5},
        {"wall_time_s": float("nan")},
    ],
    ids=["wall0", "cpu_neg", "mem_low", "calls0", "out_float", "wall_nan"],
)
def test_limits_validate(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        SandboxLimits(**kwargs)


@pytest.mark.parametrize("name", ["_private", "print2 x", "exec", "np"])
def test_api_names_are_checked(name: str) -> None:
    with pytest.raises(ConfigError):
        run_program("pass", {name: lambda: None})


def test_api_result_that_cannot_cross_is_an_error_in_the_program() -> None:
    result = run_program("x = bad()\n", {"bad": lambda: object()})
    assert result.error_class is ErrorClass.RUNTIME and "cannot pass on" in result.message


def test_ndarray_dtypes_round_trip() -> None:
    api = {"img": lambda: np.zeros((2, 2), dtype=np.uint8), "flag": lambda: np.bool_(True)}
    result = run_program("a = img()\nprint(a.dtype, a.shape, flag())\n", api)
    assert result.output == "uint8 (2, 2) True\n", result.message


def test_startup_and_round_trip_latency_are_small(api: dict) -> None:
    from corrigible.policies.sandbox.hostile_report import measure_latency

    latency = measure_latency(repeats=2)
    print(f"\nsandbox latency: {latency}")
    assert latency["child_startup_s"] < 2.0
    assert latency["api_round_trip_s"] < 0.05
