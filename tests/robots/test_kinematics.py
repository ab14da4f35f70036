import numpy as np

from corrigible.robots.assets import urdf_path
from corrigible.robots.kinematics import ArmKinematics, top_down_rotation

HOME = np.array((0.0, -0.25, 0.0, -2.2, 0.0, 1.95, 0.785))


def test_ik_round_trip_over_workspace():
    kin = ArmKinematics(urdf_path("franka_panda/panda.urdf"), "panda_grasptarget")
    rng = np.random.default_rng(0)
    for _ in range(25):
        target = np.array([rng.uniform(0.3, 0.7), rng.uniform(-0.3, 0.3), rng.uniform(0.02, 0.4)])
        yaw = rng.uniform(-np.pi / 2, np.pi / 2)
        q, err = kin.solve(target, top_down_rotation(yaw), HOME, q_rest=HOME, iterations=300)
        tf = kin.forward(q)
        assert err < 1e-3 and np.linalg.norm(tf[:3, 3] - target) < 1e-3
        assert np.allclose(tf[:3, 2], [0, 0, -1], atol=1e-2)  # pointing down
        assert np.all(q >= kin.lower - 1e-9) and np.all(q <= kin.upper + 1e-9)
