"""What lies on a correction's latency path: no camera frame is taken after it arrives.

Real MuJoCo episode, real perception, real router (MiniLM). The camera sees the block 3 cm to
the right of where it is, so the first grasp misses and the person types a correction.
"""

from __future__ import annotations

import threading
from typing import Any

from corrigible.corrections.typed import TypedCorrector
from corrigible.session import Session, SessionConfig

PUT = "put the red block in the red bowl"


def test_the_scene_is_looked_at_before_the_correction_is_asked(router) -> None:  # noqa: ANN001
    replies: list[str] = []
    seen: dict[str, Any] = {}
    session: Session | None = None

    def on_prompt(line: str) -> None:
        if "failed" in line and "prompt" not in seen:
            assert session is not None
            locator = session.api.locator
            # The frame staging reads is already the current one when the person is asked.
            seen["prompt"] = (locator.frames, locator._cache_time, session.env.backend.time)
            threading.Timer(
                0.2, lambda: (typed.put("a bit more to the left"), typed.close())
            ).start()

    typed = TypedCorrector(
        (), interactive=True, timeout_s=20.0, reply=replies.append, prompt=on_prompt
    )
    session = Session(
        SessionConfig(episode="latency-path", camera_bias=(0.0, -0.03, 0.0)),
        router=router,
        corrector=typed,
    )
    try:
        session.reset(mention=[PUT])

        def on_event(event: dict[str, Any]) -> None:
            if event["kind"] == "correction.applied":
                seen["applied"] = session.api.locator.frames

        session.env.trace.subscribe(on_event)
        result = session.run(PUT, expect="in(red block, red bowl)")
        typed.finish()
    finally:
        session.close()
    assert result.expect_holds
    frames, frame_time, sim_time = seen["prompt"]
    assert frame_time == sim_time
    assert seen["applied"] == frames  # routing, interpreting and staging rendered nothing
    [record] = session.loop.records
    assert record.when == "failure" and record.latency_s is not None
