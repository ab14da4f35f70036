"""`corrigible launch FILE`: validation naming the field, dispatch to verbs, bridge kind live."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from corrigible.errors import ConfigError
from corrigible.launch import launch_file
from corrigible.launch.launch_file import LaunchConfig, load, run, verb_runner

_FILES = Path(launch_file.__file__).parent / "files"
_EXAMPLES = sorted(p for p in _FILES.glob("*.launch.yaml") if "kind:" in p.read_text())


@pytest.mark.parametrize("path", _EXAMPLES, ids=[p.name for p in _EXAMPLES])
def test_every_example_file_is_valid(path: Path) -> None:
    spec = load(path)
    assert spec.kind in launch_file.KINDS


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "x.launch.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("engine: mujoco\nseed: 0\n", ["`kind` is required", "SessionConfig.from_file"]),
        ("kind: bridg\n", ["`kind` must be one of", "Did you mean 'bridge'"]),
        ("- kind: bridge\n", ["one mapping"]),
        (
            "kind: real_arm\ninstruction: pick\nrobot: {url: 'http://robot:9090'}\n",
            ["robot.url", "ws://host:port"],
        ),
        (
            "kind: real_arm\ninstruction: pick\nrobot: {comand_topic: /x}\n",
            ["unknown field 'comand_topic' in robot", "Did you mean 'command_topic'"],
        ),
        (
            "kind: real_arm\ninstruction: pick\nrobot: {command_type: std_msgs/String}\n",
            ["robot.command_type"],
        ),
        (
            "kind: real_arm\ninstruction: pick\nrobot: {safety: {x_range: [0.8, 0.2]}}\n",
            ["robot.safety", "x_range"],
        ),
        (
            "kind: real_arm\ninstruction: pick\nrobot: {}\nsession: {seed: -1}\n",
            ["session.seed"],
        ),
        ("kind: real_arm\nrobot: {}\n", ["instruction is required"]),
        ("kind: real_arm\ninstruction: '  '\nrobot: {}\n", ["instruction"]),
        ("kind: sim_robot\nrobot: {port: 70000}\n", ["robot.port"]),
        ("kind: sim_robot\nengine: mujocco\n", ["mujocco"]),
        ("kind: bridge\noptions: {port: lots}\n", ["options", "port"]),
        ("kind: bridge\noptions: {prot: 9090}\n", ["options", "'prot'", "Did you mean 'port'"]),
    ],
    ids=[
        "no-kind-session-file",
        "unknown-kind",
        "not-a-mapping",
        "robot-url",
        "robot-typo",
        "robot-command-type",
        "robot-safety",
        "session-seed",
        "no-instruction",
        "blank-instruction",
        "sim-robot-port",
        "sim-robot-engine",
        "bridge-option-type",
        "bridge-option-typo",
    ],
)
def test_bad_files_name_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, names: list[str]
) -> None:
    path = _write(tmp_path, text)
    assert run(LaunchConfig(file=path, check=True)) == launch_file.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("error: launch file") and str(path) in err
    for name in names:
        assert name in err, err


def test_unreadable_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="launch file"):
        load(tmp_path / "missing.launch.yaml")
    with pytest.raises(ConfigError, match="launch file"):
        load(_write(tmp_path, "kind: [unclosed\n"))


def test_a_verb_this_install_lacks_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="`teleport` verb is not installed"):
        verb_runner("teleport")


def test_verbs_are_found_by_name() -> None:
    from corrigible.launch.bridge import BridgeConfig
    from corrigible.launch.bridge import run as bridge_run

    run_fn, cfg_cls = verb_runner("bridge")
    assert run_fn is bridge_run and cfg_cls is BridgeConfig


def test_the_bridge_kind_serves_roslibpy(tmp_path: Path) -> None:
    """Runs `kind: bridge` in a child process briefly: roslibpy introspects it, SIGTERM ends it."""
    import roslibpy

    path = _write(
        tmp_path,
        "kind: bridge\noptions: {sim: mujoco, port: 0, seed: 0, camera_hz: 0}\n",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "corrigible.launch.launch_file", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")},
    )
    lines: list[str] = []
    url: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("# rosbridge v2 on ws://") and not url:
                url.append(line.split()[4])

    threading.Thread(target=read, daemon=True).start()
    try:
        deadline = time.monotonic() + 120
        while not url and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert url, "the bridge did not start:\n" + "".join(lines)
        port = int(url[0].rsplit(":", 1)[1].rstrip("/"))
        ros = roslibpy.Ros(host="127.0.0.1", port=port)
        ros.run(timeout=10)
        topics = ros.get_topics()
        ros.close()
        assert "/joint_states" in topics and "/corrigible/instruction" in topics
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_the_schema_lists_every_kind() -> None:
    schema = launch_file.launch_file_schema()
    assert set(schema["discriminator"]["mapping"]) == set(launch_file.KINDS)
    robot = schema["$defs"]["RosbridgeArmConfig"]["properties"]
    assert robot["command_type"]["enum"] == [
        "trajectory_msgs/JointTrajectory",
        "geometry_msgs/PoseStamped",
    ]
