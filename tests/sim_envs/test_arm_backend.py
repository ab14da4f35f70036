"""The engine backends satisfy `robots.arm_backend.ArmBackend` by shape (robots never name them)."""

from __future__ import annotations

import inspect

from corrigible.robots.arm_backend import ArmBackend, ArmDescription, ArmScene, ArmTiming
from corrigible.sim_envs.backends.registry import make_backend
from corrigible.sim_envs.layout import LayoutConfig, sample_layout


def _members(protocol: type) -> set[str]:
    return {n for n, _ in inspect.getmembers(protocol) if not n.startswith("_")}


def test_engine_backends_satisfy_the_arm_protocol(engine):
    backend = make_backend(engine, sample_layout(0, LayoutConfig()))
    try:
        assert isinstance(backend, ArmBackend)
        scene = backend.scene
        for obj, protocol in (
            (scene, ArmScene),
            (scene.robot, ArmDescription),
            (scene.physics, ArmTiming),
        ):
            missing = sorted(n for n in _members(protocol) if not hasattr(obj, n))
            assert not missing, f"{type(obj).__name__} lacks {missing} of {protocol.__name__}"
    finally:
        backend.close()
