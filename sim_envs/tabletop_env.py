"""`TabletopEnv`: the tabletop scene behind the Gymnasium API, on MuJoCo or PyBullet.

## Description
A Franka Panda above a table with coloured blocks, bowls and a cabinet with a drawer. The same
`SceneSpec` is built by either engine; the arm is commanded through `SimArm`, so every action
passes the safety envelope.

## Action space
`Box(-1, 1, (4,), float32)`: end-effector delta (x, y, z) scaled by `max_delta_m` per step, and
the gripper (> 0 closes, <= 0 opens). Deltas are clipped to the workspace and to the per-step
limit; `info["applied_delta_m"]` is the delta really applied.

## Observation space
| key | shape | unit / range |
|-|-|-|
| `rgb` | (H, W, 3) uint8 | fixed camera colour image (omitted in `state` mode) |
| `depth` | (H, W) float32 | metric depth along the optical axis, m (omitted in `state` mode) |
| `camera.intrinsics` | (3, 3) float64 | pinhole K, px |
| `camera.pose` | (4, 4) float64 | camera-to-world, OpenCV axes, m |
| `joint.q_rad` | (7,) | arm joint angles, rad |
| `joint.qd_rad_s` | (7,) | arm joint velocities, rad/s |
| `ee.pos_m` | (3,) | end-effector position in the world, m |
| `ee.yaw_rad` | (1,) | end-effector yaw about world z, rad |
| `gripper.width_m` | (1,) | distance between the fingers, m |

## Success / reward
Reward is 0; task success is judged by `sim_envs.predicates` on `info["objects"]`.

## Start state
`reset(seed=s)` lays out the scene from seed `s` (same layout in both engines), puts the arm at
home with the gripper open, and lets objects settle for `settle_s` seconds.

## Episode end
Never terminates; truncates after `max_episode_steps` control steps (default 1000, 50 s).

## Arguments
backend ("mujoco" | "pybullet"), obs_mode ("rgbd" | "state"), layout (LayoutConfig),
trace_path, safety (SafetyConfig), camera (CameraSpec), max_episode_steps, render_mode.

## Version history
- v0: initial release. Control at 20 Hz: 25 physics steps of 2 ms per `env.step`. Registered as
  `corrigible/Tabletop-v0` on `import corrigible.sim_envs`, with `max_episode_steps=1000` in the
  spec (50 s of control), so `gym.make` adds a `TimeLimit` at the step where the env truncates
  by default (no change to observations, reward or dynamics, hence no version bump).
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from corrigible.errors import ConfigError, did_you_mean
from corrigible.robots.safety import SafetyConfig
from corrigible.robots.sim_arm import MotionConfig, SimArm
from corrigible.sim_envs import TABLETOP_MAX_EPISODE_STEPS
from corrigible.sim_envs.backends.base import Backend
from corrigible.sim_envs.backends.registry import BACKENDS, make_backend
from corrigible.sim_envs.layout import LayoutConfig, sample_layout
from corrigible.sim_envs.scene_spec import CameraSpec, SceneSpec
from corrigible.tracing import EpisodeTrace

if TYPE_CHECKING:
    from corrigible.sim_envs.predicates import WorldState

ObsType = dict[str, np.ndarray]


class StepInfo(TypedDict, total=False):
    """What `reset` and `step` return in `info` (privileged state, for evaluation only)."""

    objects: dict[str, dict[str, np.ndarray]]  # name -> {"pos": [3] m, "quat": [4] wxyz}
    articulations: dict[str, float]  # drawer name -> opening, m
    applied_delta_m: np.ndarray  # the delta actually applied this step, m
    layout_seed: int


class TabletopEnv(gym.Env[ObsType, np.ndarray]):
    """Tabletop pick-and-place scene (see the module docstring for spaces and semantics)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        backend: str = "mujoco",
        *,
        obs_mode: str = "rgbd",
        layout: LayoutConfig | None = None,
        scene: SceneSpec | None = None,
        trace_path: Path | None = None,
        safety: SafetyConfig | None = None,
        motion: MotionConfig | None = None,
        camera: CameraSpec | None = None,
        max_episode_steps: int = TABLETOP_MAX_EPISODE_STEPS,
        max_delta_m: float = 0.02,
        settle_s: float = 0.3,
        render_mode: str | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ConfigError(
                f"unknown backend {backend!r}; use one of {sorted(BACKENDS)}."
                + did_you_mean(backend, BACKENDS)
            )
        if obs_mode not in ("rgbd", "state"):
            raise ConfigError(f"obs_mode must be 'rgbd' or 'state', got {obs_mode!r}")
        if render_mode not in (None, "rgb_array"):
            raise ConfigError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.engine = backend
        self.obs_mode = obs_mode
        self.layout = layout or LayoutConfig()
        self._fixed_scene = scene
        self.camera = camera or (scene.camera if scene is not None else CameraSpec())
        self.trace_path = trace_path
        self.safety = safety or SafetyConfig()
        self.motion_config = motion or MotionConfig()
        self.max_episode_steps = max_episode_steps
        self.max_delta_m = max_delta_m
        self.settle_s = settle_s
        self.render_mode = render_mode
        self.backend: Backend | None = None
        self.arm: SimArm | None = None
        self.scene: SceneSpec | None = None
        self.trace = EpisodeTrace(None)
        self._layout_seed: int | None = None
        self._elapsed = 0
        self._closed = False
        self._intrinsics = self.camera.intrinsics()
        self._cam_pose = self.camera.pose()
        h, w = self.camera.height, self.camera.width
        obs: dict[str, spaces.Space] = {}
        if obs_mode == "rgbd":
            obs["rgb"] = spaces.Box(0, 255, (h, w, 3), np.uint8)
            obs["depth"] = spaces.Box(0.0, np.inf, (h, w), np.float32)
        obs["camera.intrinsics"] = spaces.Box(-np.inf, np.inf, (3, 3), np.float64)
        obs["camera.pose"] = spaces.Box(-np.inf, np.inf, (4, 4), np.float64)
        obs["joint.q_rad"] = spaces.Box(-np.pi, np.pi, (7,), np.float64)
        obs["joint.qd_rad_s"] = spaces.Box(-np.inf, np.inf, (7,), np.float64)
        obs["ee.pos_m"] = spaces.Box(-np.inf, np.inf, (3,), np.float64)
        obs["ee.yaw_rad"] = spaces.Box(-np.pi, np.pi, (1,), np.float64)
        obs["gripper.width_m"] = spaces.Box(0.0, 0.1, (1,), np.float64)
        self.observation_space = spaces.Dict(obs)
        self.action_space = spaces.Box(-1.0, 1.0, (4,), np.float32)

    # -- Gymnasium API ---------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[ObsType, StepInfo]:
        """Lays out the scene for `seed` (or `options["layout_seed"]`) and settles it."""
        super().reset(seed=seed)
        options = options or {}
        if self._fixed_scene is not None:
            scene = self._fixed_scene
            layout_seed = scene.seed if scene.seed is not None else 0
        else:
            layout_seed = options.get("layout_seed", seed)
            if layout_seed is None:
                layout_seed = int(self.np_random.integers(0, 2**31 - 1))
            scene = (
                None
                if layout_seed == self._layout_seed
                else sample_layout(int(layout_seed), self.layout)
            )
        if scene is not None or self.backend is None:
            scene = scene or sample_layout(int(layout_seed), self.layout)
            scene = replace(scene, camera=self.camera)
            if self.backend is not None:
                self.backend.close()
            self.backend = make_backend(self.engine, scene)
            self.scene = scene
        else:
            self.backend.reset()
        self._layout_seed = int(layout_seed)
        self.trace.close()
        self.trace = EpisodeTrace(self.trace_path, episode=str(options.get("episode", layout_seed)))
        self.arm = SimArm(
            self.backend, safety=self.safety, motion=self.motion_config, trace=self.trace
        )
        self.arm.wait(self.settle_s)
        self._elapsed = 0
        self.trace.emit("env.reset", engine=self.engine, layout_seed=self._layout_seed)
        return self._obs(), self._info()

    def step(self, action: np.ndarray) -> tuple[ObsType, float, bool, bool, StepInfo]:
        """Applies one end-effector delta and gripper command for one 50 ms control step."""
        if self.arm is None:
            raise ConfigError("call reset() before step()")
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (4,) or not np.isfinite(action).all():
            raise ConfigError(
                f"action must be 4 finite numbers (dx, dy, dz, gripper), got {action!r}"
            )
        delta = np.clip(action[:3], -1.0, 1.0) * self.max_delta_m
        applied = self.arm.apply_action(delta, close_gripper=bool(action[3] > 0))
        self._elapsed += 1
        info = self._info()
        info["applied_delta_m"] = applied
        return self._obs(), 0.0, False, self._elapsed >= self.max_episode_steps, info

    def render(self) -> np.ndarray | None:
        """The camera's RGB image when `render_mode="rgb_array"`."""
        if self.render_mode != "rgb_array" or self.backend is None:
            return None
        return self.backend.render(self.camera)[0]

    def close(self) -> None:
        """Releases the engine and flushes the trace; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self.trace.close()
        if self.backend is not None:
            self.backend.close()
            self.backend = None

    # -- helpers ---------------------------------------------------------------------------
    def _obs(self) -> ObsType:
        # Runs every control step: scalars go through `math`, not one-element NumPy calls, and
        # the constant camera arrays are copied (a caller may write into its observation).
        assert self.backend is not None  # noqa: S101 - internal invariant after reset
        q, qd, fingers = self.backend.joint_state()
        tf = self.arm.kin.forward(q)
        obs: ObsType = {}
        if self.obs_mode == "rgbd":
            rgb, depth = self.backend.render(self.camera)
            obs["rgb"], obs["depth"] = rgb, depth
        obs["camera.intrinsics"] = self._intrinsics.copy()
        obs["camera.pose"] = self._cam_pose.copy()
        obs["joint.q_rad"] = np.clip(q, -np.pi, np.pi)
        obs["joint.qd_rad_s"] = qd
        obs["ee.pos_m"] = tf[:3, 3].copy()
        obs["ee.yaw_rad"] = np.array([math.atan2(tf[1, 0], tf[0, 0])])
        width = float(fingers[0] + fingers[1]) if len(fingers) == 2 else float(fingers.sum())
        obs["gripper.width_m"] = np.array([min(max(width, 0.0), 0.1)])
        return obs

    def world_state(self) -> WorldState:
        """Privileged snapshot for judging predicates: objects, drawers and the gripper's tip."""
        from corrigible.sim_envs.predicates import WorldState

        if self.backend is None or self.arm is None:
            raise ConfigError("call reset() before world_state()")
        poses = self.backend.object_poses()
        return WorldState(
            scene=self.scene,
            positions={n: p for n, (p, _) in poses.items()},
            articulations=self.backend.articulation_positions(),
            ee_pos=self.arm.ee_pose().pos,
        )

    def _info(self) -> StepInfo:
        poses = self.backend.object_poses()
        return StepInfo(
            objects={n: {"pos": p, "quat": q} for n, (p, q) in poses.items()},
            articulations=self.backend.articulation_positions(),
            layout_seed=self._layout_seed,
        )
