"""Typed settings of the learned low level: the network, demonstration collection and training."""

from __future__ import annotations

from pydantic import Field, field_validator

from corrigible.config import StrictConfig
from corrigible.errors import ConfigError

# Layout seeds of evaluation start here; collection refuses seeds at or above it, so held-out
# layouts are never trained on, whatever `--seed` and `--episodes` say.
HELD_OUT_SEED_BASE = 1_000_000_000


class LowLevelModelConfig(StrictConfig):
    """The network's shapes (saved in every checkpoint, so a checkpoint rebuilds its network)."""

    image_width: int = Field(default=96, ge=16, le=320)  # px, of the cropped scene-camera image
    image_height: int = Field(default=64, ge=16, le=240)  # px
    channels: int = Field(default=16, ge=4, le=128)  # conv feature maps (= spatial keypoints)
    hidden: int = Field(default=256, ge=16, le=2048)  # width of the MLP head
    language_hidden: int = Field(default=128, ge=8, le=1024)  # width of the language projection
    chunk: int = Field(default=2, ge=1, le=8)  # primitives predicted per step (ACT-style chunk)


class CollectConfig(StrictConfig):
    """Which scripted executions to record as demonstrations."""

    episodes: int = Field(default=240, ge=1)  # layouts, each one pick, nudges and one place
    engines: tuple[str, ...] = ("mujoco",)  # physics engines the episodes are split across
    seed: int = Field(default=0, ge=0)  # seeds layouts, phrasings and start poses
    nudges: int = Field(default=2, ge=0, le=6)  # correction phrasings executed per episode
    random_start: float = Field(default=0.5, ge=0.0, le=1.0)  # share starting off the home pose
    relabel: bool = True  # also record each first step for the other blocks / bowls
    # m, std of the offset added to a skill's first motion (DART); labels stay the skill's
    dart_noise_m: float = Field(default=0.02, ge=0.0, le=0.1, allow_inf_nan=False)

    @field_validator("engines")
    @classmethod
    def _known_engines(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from corrigible.sim_envs.backends.registry import BACKENDS

        if not value:
            raise ConfigError("CollectConfig.engines is empty; give e.g. ('mujoco',)")
        return tuple(BACKENDS.canonical(v) for v in value)

    def layout_seed(self, episode: int) -> int:
        """The layout seed of training episode `episode` (below the held-out range)."""
        seed = self.seed * 100_000 + episode
        if seed >= HELD_OUT_SEED_BASE:
            raise ConfigError(
                f"CollectConfig.seed {self.seed} with {self.episodes} episodes reaches layout "
                f"seed {seed}, inside the held-out range (>= {HELD_OUT_SEED_BASE}); use a "
                "smaller --seed"
            )
        return seed


class TrainConfig(StrictConfig):
    """Behaviour cloning on the recorded demonstrations."""

    epochs: int = Field(default=30, ge=1)  # passes over the training split
    batch_size: int = Field(default=16, ge=1)  # samples per gradient step
    lr: float = Field(default=2e-3, gt=0, allow_inf_nan=False)  # AdamW learning rate
    weight_decay: float = Field(default=1e-4, ge=0, allow_inf_nan=False)  # AdamW decay
    val_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)  # layouts held for validation
    seed: int = Field(default=0, ge=0)  # initial weights, batches and the split
    # torch CPU threads; 1 by default: on a shared 2-core machine two OpenMP threads ran
    # epochs 3-6x slower than one whenever another process held a core
    threads: int = Field(default=1, ge=1, le=64)
