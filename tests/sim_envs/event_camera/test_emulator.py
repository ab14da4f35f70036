from __future__ import annotations

import numpy as np
import pytest

from corrigible.errors import ConfigError
from corrigible.sim_envs.event_camera.biases import DavisBiases, pixel_params
from corrigible.sim_envs.event_camera.emulator import EmulatorConfig, EventEmulator
from corrigible.sim_envs.event_camera.events_io import EVENT_DTYPE

_W, _H, _FPS = 64, 48, 1000.0  # small sensor, 1 kHz frames: several events per pixel per frame


def _grating(n_frames: int, speed_px: float = 1.5) -> np.ndarray:
    """A moving high-contrast square-wave grating (10 and 250 DN), period 16 px."""
    x = np.arange(_W)[None, :] + np.zeros((_H, 1))
    frames = [np.where(((x + speed_px * k) // 8) % 2 == 0, 250.0, 10.0) for k in range(n_frames)]
    return np.asarray(frames, np.float32)


def _fast_photoreceptor_biases() -> DavisBiases:
    # A wide photoreceptor bandwidth lets a pixel see a whole edge within one frame, so it
    # fires a burst of events whose spacing is well under a millisecond.
    biases = DavisBiases.from_jaer()
    biases.set("PrBp", coarse=4, fine=255, jaer=True)
    biases.set("PrSFBp", coarse=5, fine=255, jaer=True)
    biases.set("RefrBp", coarse=4, jaer=True)
    return biases


def _quiet_config() -> EmulatorConfig:
    return EmulatorConfig(width=_W, height=_H, leak_rate_hz=0.0, shot_noise_rate_hz=0.0, seed=3)


def _run(biases: DavisBiases, frames: np.ndarray, cfg: EmulatorConfig | None = None) -> list:
    emulator = EventEmulator(cfg or _quiet_config(), biases)
    return [emulator.emulate(f, k / _FPS) for k, f in enumerate(frames)]


def _count(biases: DavisBiases, frames: np.ndarray) -> int:
    return sum(len(e) for e in _run(biases, frames))


def test_event_rate_falls_as_refractory_period_lengthens():
    frames = _grating(60)
    counts, periods = [], []
    for fine in (57, 25, 10, 4):  # jAER RefrBp coarse 4: ~12, 27, 68, 170 us
        biases = _fast_photoreceptor_biases()
        biases.set("RefrBp", fine=fine)
        periods.append(pixel_params(biases).refractory_s)
        counts.append(_count(biases, frames))
    assert periods == sorted(periods) and periods[0] < 15e-6 and periods[-1] > 150e-6
    assert counts == sorted(counts, reverse=True), counts
    assert counts[-1] < 0.8 * counts[0], counts  # tens-to-hundreds of us matter


def test_event_rate_falls_as_thresholds_rise():
    frames = _grating(40)
    counts, thetas = [], []
    for on_fine, off_fine in ((23, 218), (63, 168), (163, 68)):  # slow-loop direction, 8 steps
        biases = _fast_photoreceptor_biases()
        # Refractory ~1 ns: isolates the thresholds (a long refractory period interacts with
        # them, since more events per frame means closer sub-frame spacing).
        biases.set("RefrBp", coarse=0, fine=255, jaer=True)
        biases.set("OnBn", fine=on_fine)
        biases.set("OffBn", fine=off_fine)
        p = pixel_params(biases)
        thetas.append((p.theta_on, p.theta_off))
        counts.append(_count(biases, frames))
    assert thetas == sorted(thetas)
    assert counts[0] > counts[1] > counts[2], counts


def test_subframe_timestamps_lie_strictly_between_frame_times():
    frames = _grating(30)
    per_frame = _run(_fast_photoreceptor_biases(), frames)
    assert len(per_frame[0]) == 0  # the first frame only initialises the pixels
    multi = 0
    for k in range(1, len(frames)):
        ev = per_frame[k]
        assert ev.dtype == EVENT_DTYPE
        t0_us, t1_us = round((k - 1) / _FPS * 1e6), round(k / _FPS * 1e6)
        assert np.all(ev["t"] > t0_us) and np.all(ev["t"] < t1_us)
        assert np.all(np.diff(ev["t"]) >= 0)  # time-sorted
        pix = ev["y"].astype(int) * _W + ev["x"]
        _, per_pixel = np.unique(pix, return_counts=True)
        multi += int((per_pixel >= 2).sum())
    assert multi > 0  # several events per pixel per frame, at distinct sub-frame times


def test_noise_makes_events_in_a_static_dark_scene_and_is_seeded():
    frames = np.full((200, _H, _W), 2.0, np.float32)
    cfg = EmulatorConfig(width=_W, height=_H, shot_noise_rate_hz=5.0, leak_rate_hz=1.0, seed=7)
    a = np.concatenate(_run(DavisBiases.from_jaer(), frames, cfg))
    b = np.concatenate(_run(DavisBiases.from_jaer(), frames, cfg))
    np.testing.assert_array_equal(a, b)
    expected = (5.0 + 1.0) * _W * _H * 0.199  # shot + leak events over 0.199 s
    assert 0.4 * expected < len(a) < 1.6 * expected


def test_bias_change_takes_effect_at_run_time():
    frames = _grating(40)
    biases = _fast_photoreceptor_biases()
    emulator = EventEmulator(_quiet_config(), biases)
    first = sum(len(emulator.emulate(f, k / _FPS)) for k, f in enumerate(frames[:20]))
    biases.set("RefrBp", fine=4)
    biases.set("OnBn", fine=200)
    emulator.set_biases(biases)
    second = sum(len(emulator.emulate(f, (k + 20) / _FPS)) for k, f in enumerate(frames[20:]))
    assert second < 0.7 * first


def test_wrong_frame_shape_and_time_order_raise():
    emulator = EventEmulator(_quiet_config(), DavisBiases.from_jaer())
    with pytest.raises(ConfigError, match="frame shape"):
        emulator.emulate(np.zeros((10, 10), np.float32), 0.0)
    emulator.emulate(np.zeros((_H, _W), np.float32), 0.0)
    with pytest.raises(ConfigError, match="not after"):
        emulator.emulate(np.zeros((_H, _W), np.float32), 0.0)


def test_mujoco_rendered_route_produces_events():
    from corrigible.sim_envs.backends.mujoco_route_renderer import MujocoRouteRenderer
    from corrigible.sim_envs.event_camera.route import RouteConfig, build_scene, traversal

    route = RouteConfig(name="t", seed=2, length_m=2.0, speed_mps=2.0)
    scene = build_scene(route)
    trav = traversal(route, scene, seed=0, fps=100.0)
    with MujocoRouteRenderer(scene) as renderer:
        frames = np.stack(
            [renderer.render_gray(trav.xyz[i], trav.yaw[i], trav.pitch) for i in range(12)]
        )
        renderer.close()  # closing twice is allowed
    assert frames.shape == (12, 260, 346) and frames.dtype == np.uint8
    assert frames.std() > 20  # textured, not blank
    emulator = EventEmulator(EmulatorConfig(), DavisBiases.from_jaer())
    counts = [len(emulator.emulate(f.astype(np.float32), k / 100.0)) for k, f in enumerate(frames)]
    assert sum(counts[1:]) > 1000


def test_video_file_to_events(tmp_path):
    import cv2

    from corrigible.sim_envs.event_camera.emulator import emulate_video

    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 200.0, (_W, _H))
    for frame in _grating(20, speed_px=2.0):
        writer.write(cv2.cvtColor(frame.astype(np.uint8), cv2.COLOR_GRAY2BGR))
    writer.release()
    events = emulate_video(path, EventEmulator(_quiet_config(), DavisBiases.from_jaer()))
    assert len(events) > 100
    assert np.all(np.diff(events["t"]) >= 0) and events["t"].max() < 20 / 200.0 * 1e6
    with pytest.raises(ConfigError, match="cannot open"):
        emulate_video(
            tmp_path / "missing.avi", EventEmulator(_quiet_config(), DavisBiases.from_jaer())
        )
