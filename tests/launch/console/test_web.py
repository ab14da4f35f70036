"""The web console end to end: a real headless Chromium (Debian's) driven by Playwright.

The page talks to a real uvicorn server on loopback, which drives a real session (MuJoCo, the
real router, a knowledge base on disk). Push-to-talk records through Chromium's fake
microphone, fed from a WAV file espeak-ng synthesised, exactly as MediaRecorder would record a
person. Needs `chromium` and `espeak-ng` (Debian packages) and the `playwright` Python package;
never `playwright install` (the test drives the system Chromium).
"""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("fastapi")
playwright_sync = pytest.importorskip("playwright.sync_api")

from corrigible.launch.console.driver import ConsoleSession, ConsoleSettings  # noqa: E402
from corrigible.launch.console.web import serving  # noqa: E402

CHROMIUM = shutil.which("chromium") or ""
if not CHROMIUM:
    pytest.skip(
        "Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True
    )

UTTERANCE = "a bit to the left"


@pytest.fixture(scope="module")
def utterance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The correction said aloud: a WAV synthesised by espeak-ng."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    wav = tmp_path_factory.mktemp("speech") / "utterance.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), UTTERANCE], check=True, timeout=60)
    return wav


@pytest.fixture(scope="module")
def browser(
    utterance: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[playwright_sync.BrowserContext]:
    """A headless Chromium with a fresh profile; its microphone plays `utterance`."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    with playwright_sync.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={utterance}",
            ],
            viewport={"width": 1400, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


def _console(tmp_path: Path, **kw: object) -> ConsoleSession:
    settings = ConsoleSettings(
        kb=tmp_path / "kb", correction_timeout_s=1.0, learn=False, camera=True
    )
    return ConsoleSession(settings, **kw)  # type: ignore[arg-type]


def test_page_correction_moves_the_grasp_and_shows_the_camera(
    tmp_path: Path, browser: playwright_sync.BrowserContext, tools: SimpleNamespace
) -> None:
    """Typed in the page during the pick: the grasp moves; the camera view shows the scene."""
    console = _console(tmp_path)
    page = browser.new_page()
    try:
        with serving(console) as url:
            page.goto(url)
            console.start()
            page.wait_for_function(
                "document.getElementById('program').textContent.length > 0", timeout=60_000
            )
            page.fill("#say", UTTERANCE)
            page.wait_for_function(
                "document.getElementById('skill').textContent.length > 0", timeout=60_000
            )
            page.press("#say", "Enter")
            page.wait_for_function(
                "document.getElementById('reply').textContent.includes('grasp_offset_y')",
                timeout=30_000,
            )
            tools.wait_for(lambda: console.join(0), 90, "the episode to end")
            page.wait_for_function(
                "document.getElementById('status').textContent.startsWith('done') || "
                "document.getElementById('status').textContent.startsWith('stopped')",
                timeout=10_000,
            )
            shot = page.locator("#camera").screenshot()
            program = page.inner_text("#program")
        trace = tools.events(console)
    finally:
        page.close()
        console.close()
    assert "put_first_on_second('red block', 'red bowl')" in program
    request = next(r for r in console.requests if r["what"] == "correct")
    assert request["preempted"] is True and request["text"] == UTTERANCE
    dx, dy = tools.grasp_offset(trace)
    assert abs(dx) < 0.005 and 0.02 < dy < 0.04  # uncorrected: centred (test_tui)
    # The camera view: a rendered scene, not a blank or broken image.
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB"), dtype=np.float64)
    assert pixels.shape[0] >= 200 and pixels.shape[1] >= 300
    assert pixels.std() > 10.0  # table, objects and arm, not one colour
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200
    red = (pixels[..., 0] > 120) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
    assert red.sum() > 20  # the red block and bowl are in view


def test_push_to_talk_records_the_microphone_and_uploads_it(
    tmp_path: Path,
    browser: playwright_sync.BrowserContext,
    utterance: Path,
    tools: SimpleNamespace,
) -> None:
    """Held push-to-talk: MediaRecorder's clip reaches the speech hook; a file upload too."""
    got: list[tuple[bytes, str]] = []

    def hook(audio: bytes, mime: str) -> None:
        got.append((audio, mime))
        return None  # no transcript: the reply says so, the run goes on

    console = _console(tmp_path, on_audio=hook)
    page = browser.new_page()
    try:
        with serving(console) as url:
            page.goto(url)
            console.start()
            page.wait_for_function(
                "document.getElementById('skill').textContent.length > 0", timeout=60_000
            )
            page.click("#pause")  # held, so the episode cannot end before the stop button
            page.hover("#ptt")
            page.mouse.down()
            page.wait_for_timeout(1500)
            page.mouse.up()
            page.wait_for_function("window.lastUpload !== undefined", timeout=30_000)
            recorded = page.evaluate("window.lastUpload")
            page.evaluate("window.lastUpload = undefined")
            page.set_input_files("#clip", str(utterance))
            page.wait_for_function("window.lastUpload !== undefined", timeout=30_000)
            uploaded = page.evaluate("window.lastUpload")
            page.click("#stop")
            tools.wait_for(lambda: console.join(0), 60, "the stopped episode")
        trace = tools.events(console)
    finally:
        page.close()
        console.close()
    assert len(got) == 2
    clip, mime = got[0]
    assert mime in ("audio/webm", "audio/ogg") and len(clip) > 2000  # ~1.5 s of opus
    assert recorded["bytes"] == len(clip) and recorded["transcript"] is None
    assert got[1] == (utterance.read_bytes(), "audio/wav")
    assert uploaded["bytes"] == utterance.stat().st_size
    requests = [e["what"] for e in trace if e["kind"] == "console.request"]
    assert requests.count("audio") == 2 and "stop" in requests
    assert console.session.gate.stopped == "stopped: stop pressed"  # the page's stop button
    assert console.result is not None and not console.result.executed_ok


@pytest.mark.slow
def test_spoken_correction_through_push_to_talk_moves_the_grasp(
    tmp_path: Path, browser: playwright_sync.BrowserContext, tools: SimpleNamespace
) -> None:
    """Said aloud (espeak-ng through the fake microphone) and transcribed offline by Whisper.

    The person pauses the pick, holds push-to-talk while the utterance plays, and resumes: the
    arm halts at its next tick, the pick is redone with the spoken correction, the grasp moves.
    """
    pytest.importorskip("faster_whisper")
    from corrigible.corrections.speech import model_files
    from corrigible.errors import DependencyNotInstalled

    try:
        model_files.whisper_base_dir()
    except DependencyNotInstalled as exc:  # the [speech] extra's model packages are missing
        pytest.skip(f"the Whisper model is not installed: {exc}")
    console = _console(tmp_path)
    page = browser.new_page()
    try:
        with serving(console) as url:
            page.goto(url)
            console.start()
            page.wait_for_function(
                "document.getElementById('skill').textContent.length > 0", timeout=60_000
            )
            page.click("#pause")
            tools.wait_for(lambda: console.state().status == "paused", 10, "the pause")
            page.hover("#ptt")
            page.mouse.down()
            page.wait_for_timeout(2500)  # the utterance is ~1.3 s; the fake mic loops it
            page.mouse.up()
            page.wait_for_function("window.lastUpload !== undefined", timeout=180_000)
            heard = page.evaluate("window.lastUpload")
            page.click("#pause")  # resume
            tools.wait_for(lambda: console.join(0), 120, "the episode to end")
        trace = tools.events(console)
    finally:
        page.close()
        console.close()
    assert heard["transcript"] and "left" in heard["transcript"].lower()
    spoken = [e for e in trace if e["kind"] == "correction" and e.get("source") == "spoken"]
    assert spoken
    halted = [e for e in trace if e["kind"] == "motion.halted"]
    assert [h["cause"] for h in halted] == ["correction"]
    dx, dy = tools.grasp_offset(trace)
    assert abs(dx) < 0.005 and 0.02 < dy < 0.04
