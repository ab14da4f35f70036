"""Forward and inverse kinematics of a serial arm read from its URDF, in NumPy.

IK lives here, not in an engine, so that both physics backends (and a real robot behind the
bridge) follow exactly the same joint trajectories for the same Cartesian command.
"""

from __future__ import annotations

import math
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corrigible.errors import ConfigError

_MEMO_SIZE = 6  # joint vectors whose tip pose is remembered (see `ArmKinematics._forward`)


def _rpy_matrix(rpy: np.ndarray) -> np.ndarray:
    r, p, y = rpy
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    return np.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ]
    )


_NEXT = np.array([1, 2, 0])  # (y, z, x): the cross product's first factors, by permutation
_PREV = np.array([2, 0, 1])


def _cross_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cross product of (n, 3) arrays (`np.cross` spends ~10 us on its arguments)."""
    out = a[:, _NEXT] * b[:, _PREV]
    out -= a[:, _PREV] * b[:, _NEXT]
    return out


def _orientation_error(r: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """Half the sum of the column-wise crosses r[:, i] x rot[:, i]: the IK's rotation error.

    Sum_i a_i x b_i is the axis (vee) of the skew matrix rot r^T - r rot^T, read off from one
    3x3 product instead of three cross products.
    """
    m = rot @ r.T
    return 0.5 * np.array([m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1]])


def top_down_rotation(yaw: float) -> np.ndarray:
    """End-effector orientation pointing straight down, fingers closing along the yawed y."""
    c, s = math.cos(yaw), math.sin(yaw)
    # Rot_z(yaw) @ diag(1, -1, -1), written out: it is built on every control tick.
    return np.array([[c, s, 0.0], [s, -c, 0.0], [0.0, 0.0, -1.0]])


@dataclass(frozen=True)
class _Joint:
    origin: np.ndarray  # 4x4 transform parent link -> joint frame
    axis: np.ndarray  # rotation axis in the joint frame (unit); zeros for fixed joints
    movable: bool
    lower: float
    upper: float


class ArmKinematics:
    """Kinematic chain from a URDF's root link to a tip link.

    Args:
        urdf: path of the URDF file.
        tip_link: the link whose pose is controlled (e.g. `panda_grasptarget`).
    """

    def __init__(self, urdf: Path, tip_link: str) -> None:
        root = ET.parse(urdf).getroot()
        joints_by_child = {j.find("child").get("link"): j for j in root.findall("joint")}
        chain: list[ET.Element] = []
        link = tip_link
        while link in joints_by_child:
            joint = joints_by_child[link]
            chain.append(joint)
            link = joint.find("parent").get("link")
        if not chain:
            raise ConfigError(f"tip link {tip_link!r} not found in {urdf}")
        self._joints: list[_Joint] = []
        for j in reversed(chain):
            origin = j.find("origin")
            xyz = np.array(
                [
                    float(v)
                    for v in (origin.get("xyz", "0 0 0") if origin is not None else "0 0 0").split()
                ]
            )
            rpy = np.array(
                [
                    float(v)
                    for v in (origin.get("rpy", "0 0 0") if origin is not None else "0 0 0").split()
                ]
            )
            tf = np.eye(4)
            tf[:3, :3], tf[:3, 3] = _rpy_matrix(rpy), xyz
            movable = j.get("type") in ("revolute", "continuous")
            axis_el = j.find("axis")
            axis = (
                np.array([float(v) for v in axis_el.get("xyz").split()])
                if axis_el is not None
                else np.zeros(3)
            )
            limit = j.find("limit")
            lower = float(limit.get("lower", -np.pi)) if limit is not None else -np.pi
            upper = float(limit.get("upper", np.pi)) if limit is not None else np.pi
            self._joints.append(_Joint(tf, axis, movable, lower, upper))
        self.n = sum(j.movable for j in self._joints)
        self.lower = np.array([j.lower for j in self._joints if j.movable])
        self.upper = np.array([j.upper for j in self._joints if j.movable])
        self._eye4 = np.eye(4)
        self._eye6 = np.eye(6)
        self._links: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._axes = np.array([j.axis for j in self._joints if j.movable])
        pending = np.eye(4)
        for j in self._joints:
            pending = pending @ j.origin
            if j.movable:
                k = np.array(
                    [
                        [0, -j.axis[2], j.axis[1]],
                        [j.axis[2], 0, -j.axis[0]],
                        [-j.axis[1], j.axis[0], 0],
                    ]
                )
                self._links.append((pending, k, k @ k))
                pending = np.eye(4)
        self._tip = pending
        # `_forward` builds every joint's [[R_o Rot(a, q), p_o], [0, 1]] at once from these
        # (Rodrigues: R_o Rot(a, q) = R_o + sin q R_o K + (1 - cos q) R_o K^2); the joint axis
        # in the frame before the joint is R_o a, which the rotation about a leaves alone.
        origins = np.stack([o for o, _, _ in self._links])
        ro = origins[:, :3, :3]
        self._ro = ro.copy()
        self._ro_k = ro @ np.stack([k for _, k, _ in self._links])
        self._ro_k2 = ro @ np.stack([k2 for _, _, k2 in self._links])
        self._po = origins[:, :3, 3].copy()
        self._ro_axis = np.einsum("nij,nj->ni", ro, self._axes)
        self._g = np.zeros((self.n, 4, 4))
        self._g[:, 3, 3] = 1.0
        self._g[:, :3, 3] = self._po
        self._memo: dict[bytes, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._memo_lock = threading.Lock()

    def forward(self, q: np.ndarray) -> np.ndarray:
        """4x4 world pose of the tip for joint angles `q` (rad)."""
        return self._forward(q)[0]

    def _forward(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # A small memo of the last few joint vectors: a control tick evaluates the tip at the
        # IK seed (the last tick's target), the IK solution, the joints measured at the start
        # of the tick (where the last tick ended) and at its end; all but the new solution and
        # the new measurement were computed one tick earlier (5 evaluations, 2 new). Copies go
        # out: callers may write into them.
        q = np.asarray(q, dtype=np.float64)
        key = q.tobytes()
        memo = self._memo
        hit = memo.get(key)
        if hit is None:
            hit = self._compute_forward(q)
            with self._memo_lock:  # a bridge or console thread may ask at the same time
                memo[key] = hit
                if len(memo) > _MEMO_SIZE:
                    del memo[next(iter(memo))]  # the oldest entry
        tf, axes, origins = hit
        return tf.copy(), axes.copy(), origins.copy()

    def _compute_forward(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # Fixed joints are pre-merged into `_links`; each movable joint is one 4x4, all built
        # in one vectorised step, then chained: T <- T @ [[R_o Rot(a, q), p_o], [0, 1]].
        s = np.sin(q)[:, None, None]
        c1 = (1.0 - np.cos(q))[:, None, None]
        g = self._g.copy()
        g[:, :3, :3] = self._ro + s * self._ro_k + c1 * self._ro_k2
        frames = np.empty((self.n, 4, 4))  # world transform before each joint's origin
        tf = self._eye4
        for i in range(self.n):
            frames[i] = tf
            tf = tf @ g[i]
        rots = frames[:, :3, :3]
        axes = np.einsum("nij,nj->ni", rots, self._ro_axis)
        origins = np.einsum("nij,nj->ni", rots, self._po) + frames[:, :3, 3]
        return tf @ self._tip, axes, origins

    def jacobian(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Returns (tip pose 4x4, geometric Jacobian 6xN: linear rows first)."""
        tf, axes, origins = self._forward(q)
        jac = np.empty((6, self.n))
        jac[:3] = _cross_rows(axes, tf[:3, 3] - origins).T
        jac[3:] = axes.T
        return tf, jac

    def solve(
        self,
        pos: np.ndarray,
        rot: np.ndarray,
        q_seed: np.ndarray,
        *,
        q_rest: np.ndarray | None = None,
        iterations: int = 20,
        tol: float = 1e-4,
        damping: float = 0.05,
    ) -> tuple[np.ndarray, float]:
        """Damped least-squares IK from `q_seed` towards a tip pose.

        A small null-space pull towards `q_rest` keeps the elbow away from joint limits.

        Returns:
            (joint angles, remaining position error in m).
        """
        q = np.array(q_seed, dtype=np.float64)
        err_pos = np.inf
        lam2 = damping**2
        for _ in range(iterations):
            tf, jac = self.jacobian(q)
            e_p = pos - tf[:3, 3]
            e_o = _orientation_error(tf[:3, :3], rot)
            err_pos = math.sqrt(float(e_p @ e_p))
            if err_pos < tol and math.sqrt(float(e_o @ e_o)) < 10 * tol:
                break
            err = np.concatenate([e_p, e_o])
            # dq = J+ err with the damped pseudo-inverse J+ = J^T (J J^T + lam^2 I)^-1, one
            # linear solve. A small null-space pull z towards `q_rest` steers the approach:
            # dq = J+ err + z - J+ J z = J^T (J J^T + lam^2 I)^-1 (err - J z) + z. The damped
            # pseudo-inverse is not an exact projector, so the pull would leak into the task
            # near convergence; it only acts while the error is above 2 mm.
            pull = None
            if q_rest is not None and err_pos > 2e-3:
                pull = 0.1 * (q_rest - q)
                err = err - jac @ pull
            dq = jac.T @ np.linalg.solve(jac @ jac.T + lam2 * self._eye6, err)
            if pull is not None:
                dq += pull
            q = np.minimum(np.maximum(q + dq, self.lower), self.upper)
        return q, err_pos
