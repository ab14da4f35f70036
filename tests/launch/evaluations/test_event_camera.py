"""The event-camera evaluation loop, its report and the `corrigible events eval` verb."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corrigible.errors import ConfigError, UnknownNameError
from corrigible.launch.evaluations import event_camera
from corrigible.launch.evaluations.config_event_camera import load_eval_config
from corrigible.launch.events import EventsEvalConfig, run

_TINY = {
    "warmup_s": 0.6,
    "routes": {"test": {"length_m": 3.6}},
    "conditions": ["low", "changing"],
    "lighting": {"changing": [[0.0, 1.0], [0.4, 1.0], [0.5, 0.035]]},
    "controllers": {"enabled": ["default", "fast_slow"]},
    "vpr": {"tolerance_m": 0.5},
    "repeats": 2,
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
    # Two query traversals per condition, with their own seeds, pooled query by query.
    entry = data["results"]["fast_slow"]["low"]
    reps = entry["repeats"]
    assert [r["seed"] for r in reps] == [101, 1101]
    assert entry["n_queries"] == sum(r["n_queries"] for r in reps)
    assert entry["correct@1"] == sum(r["correct@1"] for r in reps)
    assert entry["recall@1"] == pytest.approx(entry["correct@1"] / entry["n_queries"])
    assert entry["n_windows"] == sum(r["n_windows"] for r in reps)
    assert len(data["traces"]["fast_slow"]["changing"]) == 2
    assert set(data["acceptance"]["recall@1"]) == {"low", "changing"}
    out = capsys.readouterr().out
    assert "R@1/R@5" in out and "Recall@1 per repeat" in out and "acceptance (fast_slow" in out


def test_eval_config_is_validated():
    with pytest.raises(UnknownNameError, match="lighting"):
        load_eval_config(overrides={"conditions": ["dusk"]})
    with pytest.raises(ConfigError, match="unknown field"):
        load_eval_config(overrides={"emulate_hz": 3})
    with pytest.raises(ConfigError, match="integer multiple"):
        load_eval_config(overrides={"emulate_fps": 75})
    with pytest.raises(ConfigError, match=".json"):
        EventsEvalConfig(out=Path("results.txt"))


def test_repeats_get_distinct_seeds_or_a_clear_error():
    cfg = load_eval_config(overrides={"repeats": 3, "conditions": ["low"]})
    assert event_camera.traversal_plan(cfg) == [
        ("reference", 0, 100),
        ("low", 0, 101),
        ("low", 1, 1101),
        ("low", 2, 2101),
    ]
    with pytest.raises(ConfigError, match="same seed"):
        event_camera.traversal_plan(
            load_eval_config(
                overrides={"repeats": 2, "traversal_seeds": {"reference": 1100, "low": 100}}
            )
        )
    with pytest.raises(ConfigError, match="repeats"):
        load_eval_config(overrides={"repeats": 0})


def _fake_results(ours: dict, theirs: dict, in_band: tuple[float, float]) -> dict:
    results = {
        kind: {
            c: {"recall@1": k / 100, "correct@1": k, "n_queries": 100, "in_common_band": band}
            for c, k in counts.items()
        }
        for kind, counts, band in (("fast_slow", ours, in_band[0]), ("default", theirs, in_band[1]))
    }
    summary = {
        "fast_slow": {"in_common_band": in_band[0]},
        "default": {"in_common_band": in_band[1]},
    }
    return {"conditions": list(ours), "results": results, "summary": summary, "repeats": 5}


def test_acceptance_needs_the_band_and_recall_in_every_condition():
    from corrigible.launch.evaluations.report_event_camera import acceptance, format_acceptance

    ok = acceptance(_fake_results({"low": 90, "high": 99}, {"low": 80, "high": 99}, (0.95, 0.4)))
    assert ok["met"] and ok["recall@1"]["high"]["met"]  # a tie counts as "at least"
    one_short = acceptance(
        _fake_results({"low": 90, "high": 98}, {"low": 80, "high": 99}, (0.95, 0.4))
    )
    assert not one_short["met"] and not one_short["recall@1"]["high"]["met"]
    assert "Recall@1 high: 0.980 vs 0.990 (98 vs 99 of 100): NOT met" in "\n".join(
        format_acceptance(one_short)
    )
    low_band = acceptance(_fake_results({"low": 90}, {"low": 80}, (0.89, 0.4)))
    assert not low_band["met"] and not low_band["in_band"]["met"]
    res = _fake_results({"low": 90}, {"low": 80}, (0.95, 0.4))
    del res["results"]["default"]
    assert acceptance(res) is None


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
    monkeypatch.setattr(event_camera, "make_controller", lambda *a, **k: rec)
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
    run = event_camera.run_controller(cfg, "recorder_for_test", frames, cfg.lighting["high"])
    assert len(rec.seen) == 3 and np.all(run.rates_hz > 0)
    assert rec.seen[0] == pytest.approx(run.rates_hz[0])  # no hold-off before the first write
    assert rec.seen[1] == 0.0 and rec.seen[2] == 0.0  # the hold-off hides every event
