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
from corrigible.policies.sandbox.result import RESULT_JSON_MAX_BYTES

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


def test_wall_clock_counts_time_inside_api_calls() -> None:
    # Slow robot calls used to be excluded: 61 s with --wall-time-s 5. Without a control the
    # overrunning call runs to its end (0.3 s here), then the run ends as a timeout.
    limits = SandboxLimits(wall_time_s=1.0, cpu_time_s=5.0)
    calls: list[int] = []

    def slow() -> None:
        calls.append(1)
        time.sleep(0.3)

    events: list[dict] = []
    result = run_program(
        "while True:\n    slow()\n", {"slow": slow}, limits, on_event=events.append
    )
    running = result.duration_s - _events("started", events)[0]["startup_s"]
    assert result.error_class is ErrorClass.TIMEOUT and result.line == 2
    assert "inside the robot API call slow()" in result.message, result.message
    assert running < limits.wall_time_s + 1.0
    assert len(calls) == len(result.api_calls) <= 5  # nothing served after the decision


def test_wall_clock_stops_a_skill_at_its_checkpoint(api: dict) -> None:
    control = SandboxControl()
    steps: list[int] = []

    def long_skill() -> str:
        for _ in range(3000):  # 30 s, checking the control every 10 ms like the arm does
            control.checkpoint()
            steps.append(1)
            time.sleep(0.01)
        return "finished"

    started = time.monotonic()
    result = run_program(
        "say('go')\nlong_skill()\n",
        {**api, "long_skill": long_skill},
        SandboxLimits(wall_time_s=1.0),
        control=control,
    )
    assert time.monotonic() - started < 5.0 and len(steps) < 300
    assert result.error_class is ErrorClass.TIMEOUT and result.line == 2
    assert result.api_calls[1]["error"]["kind"] == "interrupted"
    assert "wall_time_s=1" in result.api_calls[1]["error"]["message"]
    # The expiry belonged to that run: the control is not interrupted, and works again.
    assert not control.is_interrupted
    control.checkpoint()
    again = run_program("say('again')\n", api, control=control)
    assert again.is_ok, again.message


def test_wall_clock_excludes_paused_time_inside_api_calls() -> None:
    control = SandboxControl()

    def skill() -> None:
        control.pause()
        threading.Timer(1.5, control.resume).start()
        control.checkpoint()  # blocks while paused, as the arm does between control steps

    result = run_program(
        "skill()\n", {"skill": skill}, SandboxLimits(wall_time_s=1.0), control=control
    )
    assert result.is_ok, result.message


@pytest.mark.parametrize(
    ("source", "lines"),
    [
        # CPython drops a tracer whose call fails: a caught RecursionError switched line
        # tracing off, so the step guard and the reported line stopped with it.
        (
            "def f(n):\n    return f(n + 1)\ntry:\n    f(0)\nexcept Exception:\n    pass\n"
            "x = 0\nwhile True:\n    x += 1\n",
            (8, 9),
        ),
        # ... and looping right at the recursion limit, where even the re-arming handler
        # cannot run at first.
        (
            "def f():\n    try:\n        f()\n    except Exception:\n        while True:\n"
            "            pass\nf()\n",
            (5, 6),
        ),
    ],
    ids=["caught_then_loop", "loop_at_the_limit"],
)
def test_step_budget_and_line_survive_a_caught_recursion_error(
    api: dict, source: str, lines: tuple
) -> None:
    limits = SandboxLimits(wall_time_s=30.0, cpu_time_s=30.0, max_steps=300_000)
    started = time.monotonic()
    result = run_program(source, api, limits)
    assert result.error_class is ErrorClass.TIMEOUT, result.message
    assert "max_steps=300000" in result.message
    assert result.line in lines, (result.line, result.message)
    assert time.monotonic() - started < 15.0  # the step budget, not the 30 s limits, ended it


def test_line_cpu_budget_stops_one_endless_line(api: dict) -> None:
    limits = SandboxLimits(wall_time_s=30.0, cpu_time_s=30.0, max_line_cpu_s=0.5)
    source = "x = 1\ny = np.convolve(np.ones(300000), np.ones(300000))\n"
    result = run_program(source, api, limits)
    assert result.error_class is ErrorClass.TIMEOUT and result.line == 2
    assert "without reaching a new line" in result.message, result.message
    assert result.cpu_time_s is not None and result.cpu_time_s < 5.0


def test_no_program_code_runs_after_the_program_failed(api: dict) -> None:
    # Clearing a failed program's globals finalised its suspended generator with tracing
    # off: the arm moved five more times and the ValueError was reported as a timeout.
    source = (
        "def g(move=pick_place):\n"
        "    try:\n"
        "        yield 1\n"
        "    finally:\n"
        "        for i in range(5):\n"
        "            move('red block', [0.1, -0.5, 0.3])\n"
        "        while True:\n"
        "            pass\n"
        "it = g()\n"
        "next(it)\n"
        "raise ValueError('boom')\n"
    )
    result = run_program(source, api, SandboxLimits(wall_time_s=5.0))
    assert result.error_class is ErrorClass.RUNTIME and result.line == 11
    assert result.message == "ValueError: boom"
    assert result.api_calls == []


def test_error_class_never_comes_from_stderr_text(api: dict) -> None:
    # An unraisable error puts "MemoryError" on the child's stderr, then the program crashes
    # the interpreter: that is a runtime error, whatever stderr says.
    source = (
        "def g():\n"
        "    try:\n"
        "        yield 1\n"
        "    finally:\n"
        "        raise ValueError('MemoryError: Cannot allocate memory')\n"
        "it = g()\n"
        "next(it)\n"
        "it = None\n"
        "m = iter([0])\n"
        "for i in range(200000):\n"
        "    m = map(abs, m)\n"
        "print(next(m))\n"
    )
    result = run_program(source, api, SandboxLimits(memory_mb=256))
    assert result.error_class is ErrorClass.RUNTIME, result.message
    assert "SIGSEGV" in result.message and result.line == 12


def _strict(text: str) -> dict:
    def refuse(name: str) -> None:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_nan_and_infinity_give_strict_json(api: dict) -> None:
    source = (
        "echo(float('nan'))\n"
        "echo([math.inf, -math.inf])\n"
        "pick_place('red block', [math.nan, 0, 0])\n"
    )
    events: list[dict] = []
    result = run_program(source, api, on_event=events.append)
    assert result.is_ok, result.message
    data = _strict(json.dumps(result.to_json()))
    assert data["api_calls"][0]["args"] == ["nan"] and data["api_calls"][0]["result"] == "nan"
    assert data["api_calls"][1]["result"] == ["inf", "-inf"]
    for event in events:
        _strict(json.dumps(event))


def test_result_json_stays_under_its_cap_with_a_marker(api: dict) -> None:
    source = (
        "for i in range(45):\n"
        "    echo('x' * 16000)\n"
        "    try:\n"
        "        get_obj_pos('y' * 60000)\n"
        "    except Exception as exc:\n"
        "        print(str(exc)[:20])\n"
    )
    limits = SandboxLimits(max_api_calls=100, max_output_bytes=64 * 1024)
    result = run_program(source, api, limits)
    assert result.is_ok, result.message
    assert len(result.api_calls) == 90
    assert all(len(c.get("error", {}).get("message", "")) <= 1000 for c in result.api_calls)
    text = json.dumps(result.to_json())
    assert len(text) <= RESULT_JSON_MAX_BYTES
    data = _strict(text)
    assert data["truncated"] is True and data["omitted"]["api_calls"] > 0
    assert len(json.dumps(result.to_json(max_bytes=None))) > RESULT_JSON_MAX_BYTES
    small = result.to_json(max_bytes=8192)
    assert len(json.dumps(small)) <= 8192 and small["truncated"]


def test_oversized_api_result_is_an_error_in_the_program() -> None:
    api = {"big": lambda: "z" * 200_000}
    result = run_program("x = big()\n", api, SandboxLimits(max_message_bytes=64 * 1024))
    assert result.error_class is ErrorClass.RUNTIME
    assert "max_message_bytes=65536" in result.message and "big()" in result.message


def test_deep_nesting_gives_a_message_that_names_it(api: dict) -> None:
    result = run_program("x = " + "not " * 15000 + "1\n", api)
    assert result.error_class is ErrorClass.SYNTAX
    assert "nested too deeply" in result.message, result.message
    assert result.problems and result.problems[0]["message"] == result.message


def test_validation_problems_and_names_are_capped(api: dict) -> None:
    many = "\n".join(f"_x{i} = {i}" for i in range(3000)) + "\n"
    result = run_program(many, api)
    assert result.error_class is ErrorClass.FORBIDDEN and "2999 more problems" in result.message
    assert len(result.problems) == 100
    long_name = "y" * 30000
    result = run_program(f"{long_name}()\n", api)
    assert result.error_class is ErrorClass.UNKNOWN_API and len(result.message) < 300


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
        {"wall_time_s": float("inf")},
        {"cpu_time_s": 1e300},
        {"memory_mb": 10**15},
        {"max_line_cpu_s": 0},
    ],
    ids=[
        "wall0",
        "cpu_neg",
        "mem_low",
        "calls0",
        "out_float",
        "wall_nan",
        "wall_inf",
        "cpu_huge",
        "mem_huge",
        "line_cpu0",
    ],
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
    from corrigible.launch.benchmarks.sandbox import measure_latency

    latency = measure_latency(repeats=2)
    print(f"\nsandbox latency: {latency}")
    assert latency["child_startup_s"] < 2.0
    assert latency["api_round_trip_s"] < 0.05
