"""`corrigible console` as a user starts it (subprocess): the web page is served on loopback."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

CLI = [sys.executable, "-m", "corrigible.launch.cli", "console"]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--web", "--host", "0.0.0.0"], "loopback"),  # no login: never a public address
        (["--sim", "mujco"], "Did you mean 'mujoco'"),
    ],
    ids=["public-host", "misspelt-engine"],
)
def test_bad_options_are_refused_before_anything_runs(args: list[str], said: str) -> None:
    """Exit 2 with a message that says what to use; no session, no server."""
    out = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert said in out.stderr


def test_web_console_serves_the_page_and_the_running_session(tmp_path: Path) -> None:
    """`--web --port 0`: the page, the state and a correction over HTTP; Ctrl-C ends it."""
    proc = subprocess.Popen(
        [*CLI, "--web", "--port", "0", "--kb", str(tmp_path / "kb")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert "open http://127.0.0.1:" in line, line + proc.stderr.read()
        url = line.split("open ", 1)[1].split()[0]
        page = urllib.request.urlopen(url, timeout=30).read().decode()
        assert "corrigible console" in page and "MediaRecorder" in page
        deadline = time.monotonic() + 90
        while True:
            state = json.loads(urllib.request.urlopen(url + "api/state", timeout=30).read())
            if state["program"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert "put_first_on_second('red block', 'red bowl')" in "\n".join(state["program"])
        bad = urllib.request.Request(
            url + "api/correct",
            data=json.dumps({"text": "   "}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(bad, timeout=30)
        assert err.value.code == 400
        assert "empty" in json.loads(err.value.read())["error"]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode in (0, 1)  # ended cleanly: the run's verdict, not a crash
