"""A simulated robot behind a rosbridge server in another process, and a roslibpy status reader.

The robot process is started the way a user starts it: a `kind: sim_robot` launch file run by
`python -m corrigible.launch.launch_file`, bound to a free loopback port it prints on stdout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

_STARTUP_S = 120.0  # s: the child imports MuJoCo and builds the scene on a shared machine


class RobotProcess:
    """A child process serving a simulated arm over rosbridge on `port`."""

    def __init__(self, proc: subprocess.Popen[str], port: int) -> None:
        self.proc = proc
        self.port = port
        self.url = f"ws://127.0.0.1:{port}"

    def kill(self) -> None:
        """Kills the robot process at once (no goodbye on the websocket: a lost link)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def start_robot(tmp_path: Path, seed: int = 0, **robot: Any) -> RobotProcess:
    """Starts a sim robot child process; returns once it serves (its port read from stdout)."""
    settings = {"port": 0, **robot}
    tmp_path.mkdir(parents=True, exist_ok=True)
    spec = tmp_path / "sim_robot.launch.yaml"
    spec.write_text(
        f"kind: sim_robot\nengine: mujoco\nseed: {seed}\nduration_s: 600\n"
        f"robot: {json.dumps(settings)}\n",
        encoding="utf-8",
    )
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "corrigible.launch.launch_file", str(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: list[str] = []
    found: list[int] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "serving rosbridge on port" in line and not found:
                found.append(int(line.rsplit(" ", 1)[1]))

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + _STARTUP_S
    while not found and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if not found:
        proc.kill()
        proc.wait(10)
        raise RuntimeError("the sim robot process did not start:\n" + "".join(lines[-40:]))
    return RobotProcess(proc, found[0])


@pytest.fixture(scope="module")
def robot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RobotProcess]:
    """One sim robot process shared by a module's tests (JointTrajectory commands)."""
    process = start_robot(tmp_path_factory.mktemp("robot"))
    yield process
    process.kill()


@pytest.fixture
def robot_factory(tmp_path: Path) -> Iterator[Callable[..., RobotProcess]]:
    """Starts sim robot processes with the given `SimRobotConfig` fields; kills them after."""
    started: list[RobotProcess] = []

    def start(seed: int = 0, **robot: Any) -> RobotProcess:
        process = start_robot(tmp_path / f"robot{len(started)}", seed, **robot)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


@pytest.fixture(scope="module")
def status(robot: RobotProcess) -> Iterator[StatusReader]:
    """The shared robot's ground truth, read by a third-party roslibpy client."""
    reader = StatusReader(robot.port)
    yield reader
    reader.close()


@pytest.fixture
def status_reader() -> type[StatusReader]:
    """The `StatusReader` class, for tests that start their own robots."""
    return StatusReader


class StatusReader:
    """Reads the sim robot's `/sim/status` ground truth with a plain roslibpy client."""

    def __init__(self, url_port: int) -> None:
        import roslibpy

        self.ros = roslibpy.Ros(host="127.0.0.1", port=url_port)
        self.ros.run(timeout=10)
        self.latest: dict[str, Any] | None = None
        self.count = 0
        self._cv = threading.Condition()
        self.topic = roslibpy.Topic(self.ros, "/sim/status", "std_msgs/String")
        self.topic.subscribe(self._on)

    def _on(self, msg: dict[str, Any]) -> None:
        with self._cv:
            self.latest = json.loads(msg["data"])
            self.count += 1
            self._cv.notify_all()

    def fresh(self, timeout_s: float = 15.0) -> dict[str, Any]:
        """The first status published after this call."""
        with self._cv:
            start = self.count
            if not self._cv.wait_for(lambda: self.count > start, timeout_s):
                raise TimeoutError("no /sim/status within the timeout")
            assert self.latest is not None
            return self.latest

    def close(self) -> None:
        """Unsubscribes and disconnects."""
        self.topic.unsubscribe()
        self.ros.close()
