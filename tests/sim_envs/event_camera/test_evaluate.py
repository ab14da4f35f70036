from __future__ import annotations

import json
from pathlib import Path

import pytest

from corrigible.errors import ConfigError, UnknownNameError
from corrigible.launch.events import EventsEvalConfig, run
from corrigible.sim_envs.event_camera.evaluate import load_eval_config

_TINY = {
    "warmup_s": 0.6,
    "routes": {"test": {"length_m": 3.6}},
    "conditions": ["low", "changing"],
    "lighting": {"changing": [[0.0, 1.0], [0.4, 1.0], [0.5, 0.035]]},
    "controllers": {"enabled": ["default", "fast_slow"]},
    "vpr": {"tolerance_m": 0.5},
}


def test_eval_end_to_end_writes_json_and_png(tmp_path, capsys):
    out = tmp_path / "eval.json"
    results = run(EventsEvalConfig(out=out, quick=True, overrides=_TINY))
    data = json.loads(out.read_text())
    assert out.with_suffix(".png").stat().st_size > 10_000
    assert data["controllers"] == ["default", "fast_slow"]
    for kind in data["controllers"]:
        for cond in ("low", "changing"):
            entry = data["results"][kind][cond]
            assert 0.0 <= entry["recall@1"] <= entry["recall@5"] <= 1.0
            assert 0.0 <= entry["in_own_band"] <= 1.0 and entry["n_windows"] >= 3
    assert data["bands"]["fast_slow"] == pytest.approx([5e5, 2.5e6])
    assert results["timing"]["emulated_frames"] > 0
    assert "R@1/R@5" in capsys.readouterr().out


def test_eval_config_is_validated():
    with pytest.raises(UnknownNameError, match="lighting"):
        load_eval_config(overrides={"conditions": ["dusk"]})
    with pytest.raises(ConfigError, match="unknown eval config keys"):
        load_eval_config(overrides={"emulate_hz": 3})
    with pytest.raises(ConfigError, match="integer multiple"):
        load_eval_config(overrides={"emulate_fps": 75})
    with pytest.raises(ConfigError, match=".json"):
        EventsEvalConfig(out=Path("results.txt"))


def test_dotted_overrides_parse_into_nested_yaml_values():
    from corrigible.launch.events import parse_overrides

    got = parse_overrides(["controllers.slow.step=10", "conditions=[low, high]", "warmup_s=3"])
    assert got == {
        "controllers": {"slow": {"step": 10}},
        "conditions": ["low", "high"],
        "warmup_s": 3,
    }
    with pytest.raises(ConfigError, match="key.sub=value"):
        parse_overrides(["oops"])


def test_run_controller_leaves_holdoff_events_out_of_the_measured_rate(monkeypatch):
    """Events only in the first 0.1 s of each window: scored, but hidden by a 0.1 s hold-off."""
    import numpy as np

    from corrigible.sim_envs.event_camera import evaluate
    from corrigible.sim_envs.event_camera.controllers import BiasController

    class Recorder(BiasController):
        kind = "recorder_for_test"

        def __init__(self) -> None:
            super().__init__(n_pixels=16 * 8)
            self.seen: list[float] = []

        def on_window(self, rate_hz, biases):
            self.seen.append(rate_hz)
            self.ignore_s = 0.1
            return {}

    rec = Recorder()
    monkeypatch.setattr(evaluate, "make_controller", lambda *a, **k: rec)
    cfg = load_eval_config(
        overrides={
            "warmup_s": 0.0,
            "workers": 1,
            "emulator": {"width": 16, "height": 8, "leak_rate_hz": 0.0, "shot_noise_rate_hz": 0.0},
        }
    )
    # Render frames at 50 Hz = emulator frames 0, 2, 4, ...; window = 30 emulator frames.
    n = 46  # 0.9 s of renders: 3 windows
    level = np.full(n, 100.0)
    for i in range(n):
        j = 2 * i  # emulator frame
        if j % 30 and (j - 1) % 30 < 4:  # brightness steps early in each window only
            level[i] = 100.0 * (1.5 if i % 2 else 0.6)
    frames = np.repeat(level[:, None, None], 8 * 16, axis=1).reshape(n, 8, 16)
    run = evaluate.run_controller(cfg, "recorder_for_test", frames, cfg.lighting["high"])
    assert len(rec.seen) == 3 and np.all(run.rates_hz > 0)
    assert rec.seen[0] == pytest.approx(run.rates_hz[0])  # no hold-off before the first write
    assert rec.seen[1] == 0.0 and rec.seen[2] == 0.0  # the hold-off hides every event
