"""The learned low level's network, its observations and actions, and its checkpoints.

A step of the policy sees the scene camera's image (cropped to the table, downsampled), the
proprioception and the instruction's MiniLM embedding, and predicts a chunk of the next
`chunk` arm primitives (ACT-style), each a Cartesian target relative to the measured end
effector, a gripper yaw change and the gripper state after it, plus whether the skill is done.
Only the first primitive of a chunk is executed (receding horizon); the rest are auxiliary
targets that make the features plan ahead.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from corrigible.errors import CheckpointError, ConfigError
from corrigible.policies.learned.low_level.config_low_level import LowLevelModelConfig

CHECKPOINT_FORMAT = "corrigible-low-level-v1"
# The crop of the default 320x240 scene camera that holds the table, the bowls and the arm
# above them (rows, columns in px): everything outside is floor, cabinet or sky.
CROP_ROWS, CROP_COLS = (30, 190), (40, 280)
CAMERA_SIZE = (320, 240)  # px, the scene camera the crop is written for (width, height)
PROPRIO_DIM = 7  # ee.pos_m (3), sin/cos of the commanded yaw (2), gripper width (1), closed (1)
POS_SCALE = 10.0  # labels in decimetres: unit-scale regression targets
# per primitive: dx, dy, dz (dm), cos(4 dyaw), sin(4 dyaw), gripper closed
PRIMITIVE_DIM = 6
TABLE_POINT_Z = 0.02  # m, height at which a keypoint's ray is cut: the objects' centres


def camera_image(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The policy's image: the table crop of a 320x240 RGB frame, box-downsampled to `size`.

    Args:
        rgb: (240, 320, 3) uint8 frame of the scene camera.
        size: (width, height) of the result, px.

    Returns:
        (height, width, 3) uint8.
    """
    from PIL import Image

    if rgb.shape != (CAMERA_SIZE[1], CAMERA_SIZE[0], 3):
        raise ConfigError(
            f"the learned low level reads the {CAMERA_SIZE[0]}x{CAMERA_SIZE[1]} scene camera, got "
            f"a frame of shape {rgb.shape}; use the default CameraSpec"
        )
    crop = rgb[CROP_ROWS[0] : CROP_ROWS[1], CROP_COLS[0] : CROP_COLS[1]]
    return np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BOX), dtype=np.uint8)


def proprioception(ee_pos: np.ndarray, cmd_yaw: float, width: float, closed: bool) -> np.ndarray:
    """The proprioceptive vector (PROPRIO_DIM floats); the yaw as sin/cos of 4x (cube symmetry)."""
    return np.array(
        [
            *np.asarray(ee_pos, dtype=np.float64),
            math.sin(cmd_yaw),
            math.cos(cmd_yaw),
            width * 10,
            float(closed),
        ],
        dtype=np.float32,
    )


@dataclass(frozen=True)
class Primitive:
    """One arm primitive the policy asks for (the first of its chunk)."""

    delta_m: np.ndarray  # target minus the measured end-effector position, m
    dyaw_rad: float  # gripper turn, rad, in [-pi/4, pi/4) (grasps repeat every quarter turn)
    gripper_closed: bool  # gripper state after the primitive
    done: float  # probability the skill has finished
    # the rest of the chunk: the primitives predicted after this one, relative to the same
    # observation (for temporal ensembling)
    later: tuple[Primitive, ...] = ()


def _torch() -> Any:
    import torch

    return torch


def build_network(config: LowLevelModelConfig) -> Any:
    """The policy network for `config` (a `torch.nn.Module`)."""
    torch = _torch()
    nn = torch.nn

    class SpatialSoftmax(nn.Module):
        """Expected image coordinates of each feature map (Levine et al. 2016): keypoints."""

        def __init__(self, height: int, width: int) -> None:
            super().__init__()
            ys, xs = torch.meshgrid(
                torch.linspace(-1, 1, height), torch.linspace(-1, 1, width), indexing="ij"
            )
            self.register_buffer("xs", xs.reshape(-1), persistent=False)
            self.register_buffer("ys", ys.reshape(-1), persistent=False)
            self.temperature = nn.Parameter(torch.ones(1))

        def forward(self, features: Any) -> tuple[Any, Any]:
            """(keypoints: x of every map, then y; the first map's logits over positions)."""
            b, c, h, w = features.shape
            logits = features.reshape(b, c, h * w) / self.temperature
            attention = torch.softmax(logits, dim=-1)
            keypoints = torch.cat([attention @ self.xs, attention @ self.ys], dim=-1)  # (b, 2c)
            return keypoints, logits[:, 0]

    class TablePoint(nn.Module):
        """Where a crop keypoint's camera ray meets the plane z = `TABLE_POINT_Z` (world, m).

        The camera is fixed and known (the env reports its intrinsics and pose), so this is
        geometry, not learning: the head gets the named object's table position and its offset
        from the hand directly, and only has to learn the skill.
        """

        def __init__(self) -> None:
            super().__init__()
            from corrigible.sim_envs.scene_spec import CameraSpec

            camera = CameraSpec()
            k_inv = np.linalg.inv(camera.intrinsics())
            pose = camera.pose()
            self.register_buffer("k_inv", torch.tensor(k_inv, dtype=torch.float32), False)
            self.register_buffer("rot", torch.tensor(pose[:3, :3], dtype=torch.float32), False)
            self.register_buffer("eye", torch.tensor(pose[:3, 3], dtype=torch.float32), False)

        def forward(self, xy: Any) -> Any:
            (r0, r1), (c0, c1) = CROP_ROWS, CROP_COLS
            u = c0 + (xy[:, 0] + 1) / 2 * (c1 - c0)
            v = r0 + (xy[:, 1] + 1) / 2 * (r1 - r0)
            pixels = torch.stack([u, v, torch.ones_like(u)], dim=-1)
            rays = pixels @ self.k_inv.T @ self.rot.T  # world directions
            t = (TABLE_POINT_Z - self.eye[2]) / rays[:, 2]
            return self.eye[None, :2] + t[:, None] * rays[:, :2]

    class LowLevelNet(nn.Module):
        """CoordConv trunk, FiLM by the instruction, spatial-softmax keypoints, MLP head."""

        def __init__(self) -> None:
            super().__init__()
            self.table_point = TablePoint()
            c = config.channels
            h, w = config.image_height, config.image_width
            ys, xs = torch.meshgrid(
                torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij"
            )
            self.register_buffer("coords", torch.stack([xs, ys])[None], persistent=False)
            self.conv1 = nn.Conv2d(5, c, 5, stride=2, padding=2)
            self.conv2 = nn.Conv2d(c, c, 3, padding=1)
            self.conv3 = nn.Conv2d(c, c, 3, padding=1)
            self.language = nn.Sequential(nn.Linear(384, config.language_hidden), nn.ReLU())
            # FiLM: the instruction scales and shifts the features, so the keypoints can follow
            # the object it names ("the red block") rather than every object.
            self.film1 = nn.Linear(config.language_hidden, 2 * c)
            self.film2 = nn.Linear(config.language_hidden, 2 * c)
            self.keypoints = SpatialSoftmax((h + 1) // 2, (w + 1) // 2)
            width = 2 * c + PROPRIO_DIM + config.language_hidden + 4
            self.head = nn.Sequential(
                nn.Linear(width, config.hidden),
                nn.ReLU(),
                nn.Linear(config.hidden, config.hidden),
                nn.ReLU(),
                nn.Linear(config.hidden, config.chunk * PRIMITIVE_DIM + 1),
            )

        def local_argmax(self, logits: Any) -> Any:
            """(x, y) in [-1, 1] of the peak, refined by a soft-argmax within 2 cells of it.

            The global soft-argmax of a map is pulled towards the middle by whatever mass lies
            elsewhere (distractors, a diffuse early map); the peak's neighbourhood is not.
            """
            xs, ys = self.keypoints.xs, self.keypoints.ys
            peak = logits.argmax(dim=-1)
            cell_x = 2.5 * 2 / (config.image_width // 2 - 1)
            cell_y = 2.5 * 2 / (config.image_height // 2 - 1)
            near = ((xs[None] - xs[peak][:, None]).abs() <= cell_x) & (
                (ys[None] - ys[peak][:, None]).abs() <= cell_y
            )
            attention = torch.softmax(logits.masked_fill(~near, float("-inf")), dim=-1)
            return torch.stack([attention @ xs, attention @ ys], dim=-1)

        def forward(self, image: Any, proprio: Any, language: Any) -> tuple[Any, Any]:
            """(chunk and done logit, the first map's logits over positions) of a batch."""
            x = image.float() / 255.0 - 0.5  # (b, 3, h, w) uint8 in
            x = torch.cat([x, self.coords.expand(x.shape[0], -1, -1, -1)], dim=1)
            lang = self.language(language)
            x = torch.relu(self.conv1(x))
            g1, b1 = self.film1(lang).chunk(2, dim=-1)
            x = torch.relu(self.conv2(x) * (1 + g1[..., None, None]) + b1[..., None, None])
            g2, b2 = self.film2(lang).chunk(2, dim=-1)
            x = self.conv3(x) * (1 + g2[..., None, None]) + b2[..., None, None]
            keypoints, first_logits = self.keypoints(x)
            # the first map is trained to peak on the skill's object (see training._loss)
            point = self.table_point(self.local_argmax(first_logits))
            offset = (point - proprio[:, :2]) * POS_SCALE  # object minus hand, dm
            features = torch.cat([keypoints, proprio, lang, point, offset], dim=-1)
            return self.head(features), first_logits

    return LowLevelNet()


class LowLevelPolicy:
    """A trained network with what it needs at run time: its config and instruction embeddings.

    Args:
        config: the network's shapes.
        state: the network's weights (None: fresh, seeded by the caller's torch seed).
        embeddings: instruction -> MiniLM vector, cached so a phrasing is embedded once.
        meta: what the checkpoint records about its training (engines, layout seeds, kinds).
    """

    def __init__(
        self,
        config: LowLevelModelConfig,
        state: dict[str, Any] | None = None,
        embeddings: dict[str, np.ndarray] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.net = build_network(config)
        if state is not None:
            self.net.load_state_dict(state)
        self.net.eval()
        self.embeddings: dict[str, np.ndarray] = dict(embeddings or {})
        self.meta: dict[str, Any] = dict(meta or {})

    # -- language ----------------------------------------------------------------------------
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """MiniLM vectors of `texts`, each phrasing embedded once and cached."""
        missing = sorted({t for t in texts if t not in self.embeddings})
        if missing:
            from corrigible.text_embedding import get_text_embedder

            for text, vector in zip(missing, get_text_embedder().embed(missing), strict=True):
                self.embeddings[text] = vector
        return np.stack([self.embeddings[t] for t in texts]).astype(np.float32)

    # -- acting ------------------------------------------------------------------------------
    def act(self, image: np.ndarray, proprio: np.ndarray, instruction: str) -> Primitive:
        """The next primitive for one observation (the first of the predicted chunk)."""
        torch = _torch()
        with torch.no_grad():
            out = self.net(
                torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None],
                torch.from_numpy(proprio)[None],
                torch.from_numpy(self.embed([instruction])),
            )[0][0].numpy()
        done = float(1 / (1 + math.exp(-float(out[-1]))))
        rows = out[: self.config.chunk * PRIMITIVE_DIM].reshape(self.config.chunk, PRIMITIVE_DIM)
        chunk = [
            Primitive(
                delta_m=row[:3].astype(np.float64) / POS_SCALE,
                dyaw_rad=float(math.atan2(row[4], row[3]) / 4),
                gripper_closed=bool(row[5] > 0),
                done=done,
            )
            for row in rows
        ]
        return replace(chunk[0], later=tuple(chunk[1:]))

    # -- checkpoints -------------------------------------------------------------------------
    def save(self, path: Path) -> Path:
        """Writes the checkpoint atomically (a crash leaves the old file, never half a file)."""
        torch = _torch()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        texts = sorted(self.embeddings)
        payload = {
            "format": CHECKPOINT_FORMAT,
            "config": self.config.model_dump_json(),
            "meta": json.dumps(self.meta),
            "state": self.net.state_dict(),
            "texts": json.dumps(texts),
            "embeddings": torch.from_numpy(
                np.stack([self.embeddings[t] for t in texts])
                if texts
                else np.zeros((0, 384), np.float32)
            ),
        }
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(buffer.getvalue())
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path | str) -> LowLevelPolicy:
        """Reads a checkpoint written by `save`.

        Raises:
            CheckpointError: the file is missing, not a checkpoint, corrupt or of another format.
        """
        torch = _torch()
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(
                f"no low-level checkpoint at {path}"
                + (" (it is a directory)" if path.is_dir() else "")
                + "; train one with `corrigible train ll --out FILE` or use --low-level scripted"
            )
        try:
            payload = torch.load(io.BytesIO(path.read_bytes()), weights_only=True)
        except Exception as exc:  # torch raises many types for a damaged file
            raise CheckpointError(
                f"{path} is not a readable low-level checkpoint ({type(exc).__name__}: "
                f"{str(exc)[:200]}); retrain it with `corrigible train ll --out {path}`"
            ) from exc
        if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
            found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
            raise CheckpointError(
                f"{path} is not a {CHECKPOINT_FORMAT} checkpoint (found {found!r}); "
                "retrain it with `corrigible train ll`"
            )
        try:
            config = LowLevelModelConfig.model_validate_json(payload["config"])
            texts = json.loads(payload["texts"])
            vectors = payload["embeddings"].numpy()
            policy = cls(
                config,
                state=payload["state"],
                embeddings=dict(zip(texts, vectors, strict=True)),
                meta=json.loads(payload["meta"]),
            )
        except Exception as exc:
            raise CheckpointError(
                f"{path} holds a damaged low-level checkpoint ({type(exc).__name__}: "
                f"{str(exc)[:200]}); retrain it with `corrigible train ll`"
            ) from exc
        return policy

    def fingerprint(self) -> str:
        """A short hash of the weights (two runs with one seed give the same)."""
        digest = hashlib.sha256()
        for name, tensor in sorted(self.net.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().numpy().tobytes())
        return digest.hexdigest()[:16]
