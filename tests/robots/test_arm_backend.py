"""`ArmBackend` lists exactly what `SimArm` uses of a physics backend."""

from __future__ import annotations

import inspect

from corrigible.robots import sim_arm
from corrigible.robots.arm_backend import ArmBackend, ArmDescription, ArmScene, ArmTiming


def test_every_protocol_member_is_used_by_sim_arm():
    source = inspect.getsource(sim_arm)
    for protocol in (ArmBackend, ArmScene, ArmDescription, ArmTiming):
        members = [n for n, _ in inspect.getmembers(protocol) if not n.startswith("_")]
        assert members
        for name in members:
            assert f".{name}" in source, f"{protocol.__name__}.{name} is not used by SimArm"
