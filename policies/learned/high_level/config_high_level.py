"""Typed configs of the learned high level: the instructor network and its training runs."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from corrigible.config import StrictConfig
from corrigible.errors import ConfigError


class InstructorConfig(StrictConfig):
    """Shape of the instructor network (stored in every checkpoint, so a load rebuilds it)."""

    frame_height: int = 48  # px, the high level's camera frames (the camera's 240 scaled down)
    frame_width: int = 64  # px
    n_frames: int = 2  # recent frames stacked: the one before the last instruction and now
    history: int = 2  # previous instructions fed back in (embedded like the task)
    image_features: int = 64  # width of the CNN's image feature
    hidden: int = 256  # width of the MLP's hidden layers
    dropout: float = 0.1  # dropout on the hidden layers, fraction
    temperature: float = 0.05  # softmax temperature of the cosine scores over the candidates

    @model_validator(mode="after")
    def _check(self) -> InstructorConfig:
        if not (16 <= self.frame_height <= 240 and 16 <= self.frame_width <= 320):
            raise ConfigError(
                f"frame size must be 16-240 x 16-320 px, got {self.frame_height} x "
                f"{self.frame_width}; the default 48 x 64 keeps training on 2 cores short"
            )
        if not 1 <= self.n_frames <= 4:
            raise ConfigError(f"n_frames must be 1-4, got {self.n_frames}")
        if not 0 <= self.history <= 4:
            raise ConfigError(f"history must be 0-4 instructions, got {self.history}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 < self.temperature <= 1.0:
            raise ConfigError(f"temperature must be in (0, 1], got {self.temperature}")
        if self.image_features < 1 or self.hidden < 1:
            raise ConfigError("image_features and hidden must be >= 1")
        return self


class TrainConfig(StrictConfig):
    """One training run (the base run, or a fine-tuning run from a base checkpoint)."""

    epochs: int = 60  # passes over the training split
    lr: float = 1e-3  # Adam learning rate
    weight_decay: float = 1e-4  # Adam L2 weight decay
    batch_size: int = 32  # samples per step
    val_fraction: float = 0.2  # fraction of episodes held out for validation
    seed: int = 0  # seeds the split, the shuffling, the initial weights and dropout
    # torch CPU threads. One by default: on a shared 2-core machine two OpenMP threads wait on
    # each other at every barrier (measured 15x slower per epoch than one thread).
    threads: int = 1
    correction_repeat: int = 4  # each correction sample is seen this many times per epoch
    # Episodes the validation split is drawn from: "all", or "corrected" only (fine-tuning: the
    # demonstrations' labels are what the corrections overrule, e.g. "done" after a drawer that
    # bounced open, so a validation loss over them would reward forgetting the corrections).
    val_on: Literal["all", "corrected"] = "all"

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {self.epochs}")
        if not 0.0 < self.lr < 1.0:
            raise ConfigError(f"lr must be in (0, 1), got {self.lr}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")
        if not 1 <= self.threads <= 64:
            raise ConfigError(f"threads must be 1-64, got {self.threads}")
        if self.correction_repeat < 1:
            raise ConfigError(f"correction_repeat must be >= 1, got {self.correction_repeat}")
        return self
