"""PyBullet backend: builds a `SceneSpec` from primitive shapes and steps it in DIRECT mode.

Each backend instance owns its own physics client, so several can run in one process. Images
come from PyBullet's TinyRenderer, which runs on the CPU. PyBullet multiplies the two
surfaces' friction coefficients; fingers and table are 1.0, so an object's own friction governs
its contacts, as in the MuJoCo backend.
"""

from __future__ import annotations

import numpy as np
import pybullet as pb

from corrigible.errors import BackendError
from corrigible.robots.assets import urdf_path
from corrigible.sim_envs.backends.base import Backend
from corrigible.sim_envs.backends.pybullet_render import TinyCamera, render_urdf
from corrigible.sim_envs.scene_spec import CameraSpec, GeomSpec, ObjectSpec, SceneSpec

_SHAPES = {"box": pb.GEOM_BOX, "cylinder": pb.GEOM_CYLINDER, "sphere": pb.GEOM_SPHERE}


# The arm's servo. PyBullet's POSITION_CONTROL motor is a velocity constraint asking, each
# physics step, for the joint speed positionGain * error / timestep. MuJoCo's servo (the
# RobotSpec's kp, kv) follows its target at kp / kv per second of error (10/s): smoothly, the
# hand's speed within 20% of the commanded one. A stiff gain (0.3: 150/s) makes the hand cover
# each 50 ms control tick's new target in a ~15 ms burst and stand still for the rest: a lift at
# 0.0625 m/s moved in spikes of 0.22 m/s with 33 m/s^2 accelerations. A pinched object then
# slipped at any lift speed at its true friction, and with the fingers' friction raised 2.4x to
# hold it slow (the former calibration), a fast lift carried it 5 cm, pivoted it in the fingers
# and dropped it on its side, where no redo can grasp it (MuJoCo: it slides down in the
# fingers, upright). So while the fingers are closed the servo gets MuJoCo's rate,
# timestep * kp / kv, and the fingers' friction is the scene's own: the heavy, slippery cylinder
# (friction 0.135, 0.55 kg) slides out at the default lift and is carried at 0.03125 m/s, as in
# MuJoCo (tests/sim_envs/test_grip_parity.py). With the fingers open the stiff gain stays: at
# MuJoCo's rate a finger landing on a block's corner (the camera-bias scenarios' 2.5 cm miss)
# slid off it and the grasp caught the block (right bias: 4 of round 1's 4 layouts, MuJoCo 2);
# at 0.3 it stays on the corner and misses as in MuJoCo (tests/sim_envs/
# test_pybullet_properties.py). Gains between (0.05-0.15) did neither. Only the gain changes,
# at a grasp or release, when the hand is still.
def _servo_position_gain(timestep: float, kp: float, kv: float) -> float:
    """PyBullet's positionGain for a servo that closes kp / kv of its error per second."""
    return timestep * kp / kv


_OPEN_HAND_POSITION_GAIN = 0.3  # positionGain while the fingers are open (see above)
_SERVO_VELOCITY_GAIN = 1.0  # the motor's velocity term: full (targets are positions only)
# A slide's viscous damping acts at a low-passed speed (this fraction of the gap closed per
# step): the raw speed would make the stopping motor chatter between full stop and free slide
# (a 30 N pull then moved a 3000 N*s/m slide 6x too far); at 0.2 a steady pull moves it within
# 3% of force / damping, as in MuJoCo.
_SLIDE_SPEED_SMOOTHING = 0.2
# m a finger can be pried open past its commanded range by a load. MuJoCo's joint limits are
# soft: a stiff drawer's pull on a bar held across the fingers opens them ~2 cm past their 4 cm
# before the drawer follows the hand. PyBullet's are hard, so the same drawer lagged the hand
# 3.3 cm instead of ~5 and the default 14 cm pull opened it 10.8 cm (the skill wants 9.6, MuJoCo
# gave 8.9): no correction was ever needed. With this give: 9.1 cm, and 11.1 cm after "pull it
# further" (MuJoCo 10.7). Commands never exceed the range; only a load reaches the give.
_FINGER_LIMIT_GIVE = 0.017
_FINGER_GEAR_FORCE = 50.0  # N, most the gear that mirrors the fingers pushes with
# Contact-solver iterations per step. At 60 a pinched object crept down the finger pads at a
# third of the lift speed with friction far below its limit (the solver had not converged), so
# no lift was slow enough to hold a heavy, slippery cylinder; at 200 it holds still in the
# fingers until friction really runs out. (Measured before the servo above was smoothed; at
# 60 with it the cylinder still slips and holds at the same speeds, but the finger give above
# was tuned at 200.)
_SOLVER_ITERATIONS = 200


def _xyzw(quat_wxyz: tuple[float, ...] | np.ndarray) -> list[float]:
    w, x, y, z = quat_wxyz
    return [x, y, z, w]


class PybulletBackend(Backend):
    """The scene in PyBullet (DIRECT mode, CPU TinyRenderer)."""

    engine = "pybullet"

    def __init__(self, scene: SceneSpec) -> None:
        super().__init__(scene)
        self._cid = pb.connect(pb.DIRECT)
        if self._cid < 0:
            raise BackendError("PyBullet could not start a DIRECT physics client")
        self._camera = TinyCamera(self._cid)
        try:
            self._build(scene)
        except pb.error as exc:
            pb.disconnect(self._cid)
            raise BackendError(f"PyBullet could not build the scene: {exc}") from exc
        self.reset()

    # -- building ------------------------------------------------------------------------
    def _build(self, scene: SceneSpec) -> None:
        c = self._cid
        phys = scene.physics
        pb.setGravity(*phys.gravity, physicsClientId=c)
        pb.setPhysicsEngineParameter(
            fixedTimeStep=phys.timestep,
            numSubSteps=0,
            numSolverIterations=_SOLVER_ITERATIONS,
            enableConeFriction=0,  # pyramid friction, as calibrated (PyBullet's default: cone)
            physicsClientId=c,
        )
        table_col = pb.createCollisionShape(
            pb.GEOM_BOX, halfExtents=scene.table_size, physicsClientId=c
        )
        table_vis = pb.createVisualShape(
            pb.GEOM_BOX,
            halfExtents=scene.table_size,
            rgbaColor=list(scene.table_rgba),
            physicsClientId=c,
        )
        self._table = pb.createMultiBody(
            0, table_col, table_vis, scene.table_center, physicsClientId=c
        )
        pb.changeDynamics(self._table, -1, lateralFriction=scene.table_friction, physicsClientId=c)

        robot = scene.robot
        self._robot = pb.loadURDF(
            str(render_urdf(urdf_path(robot.urdf))),  # low-poly visuals, as MuJoCo draws
            basePosition=robot.base_pos,
            useFixedBase=True,
            flags=pb.URDF_ENABLE_CACHED_GRAPHICS_SHAPES,
            physicsClientId=c,
        )
        names = {
            pb.getJointInfo(self._robot, i, physicsClientId=c)[1].decode(): i
            for i in range(pb.getNumJoints(self._robot, physicsClientId=c))
        }
        self._arm_j = [names[n] for n in robot.arm_joints]
        self._finger_j = [names[n] for n in robot.finger_joints]
        for j in range(pb.getNumJoints(self._robot, physicsClientId=c)):
            pb.changeDynamics(self._robot, j, linearDamping=0, angularDamping=0, physicsClientId=c)
        for j in self._finger_j:
            pb.changeDynamics(
                self._robot,
                j,
                lateralFriction=robot.finger_friction,
                spinningFriction=scene.physics.torsional_friction,
                frictionAnchor=True,
                jointLowerLimit=0.0,
                jointUpperLimit=robot.finger_max_opening + _FINGER_LIMIT_GIVE,
                physicsClientId=c,
            )
        # The Panda's fingers are one mechanism: a gear keeps them mirrored, so a squeezed
        # object stays centred between them (two free fingers, each pressing with the same
        # force limit, let it drift sideways on a lift until it drops out).
        gear = pb.createConstraint(
            self._robot,
            self._finger_j[0],
            self._robot,
            self._finger_j[1],
            pb.JOINT_GEAR,
            [1, 0, 0],
            [0, 0, 0],
            [0, 0, 0],
            physicsClientId=c,
        )
        pb.changeConstraint(
            gear, gearRatio=-1, erp=0.1, maxForce=_FINGER_GEAR_FORCE, physicsClientId=c
        )
        self._bodies: dict[str, int] = {}
        self._slides: dict[str, int] = {}
        self._slide_speed: dict[str, float] = {}  # m/s, smoothed, sets each slide's damping
        for obj in scene.objects:
            self._bodies[obj.name] = self._add_object(obj)
        self._owner = {body: name for name, body in self._bodies.items()}
        self._state = None
        self._fingers_closed = False  # sets the arm servo's rate (see _servo_position_gain)

    def _shape_arrays(self, geoms: tuple[GeomSpec, ...]) -> tuple[int, int]:
        c = self._cid
        kinds = [_SHAPES[g.type] for g in geoms]
        half = [list(g.size) if g.type == "box" else [0, 0, 0] for g in geoms]
        radii = [g.size[0] if g.type != "box" else 0.0 for g in geoms]
        lengths = [2 * g.size[1] if g.type == "cylinder" else 0.0 for g in geoms]
        pos = [list(g.pos) for g in geoms]
        orn = [_xyzw(g.quat) for g in geoms]
        col = pb.createCollisionShapeArray(
            shapeTypes=kinds,
            halfExtents=half,
            radii=radii,
            lengths=lengths,
            collisionFramePositions=pos,
            collisionFrameOrientations=orn,
            physicsClientId=c,
        )
        vis = pb.createVisualShapeArray(
            shapeTypes=kinds,
            halfExtents=half,
            radii=radii,
            lengths=lengths,
            rgbaColors=[list(g.rgba) for g in geoms],
            visualFramePositions=pos,
            visualFrameOrientations=orn,
            physicsClientId=c,
        )
        return col, vis

    def _add_object(self, obj: ObjectSpec) -> int:
        c = self._cid
        col, vis = self._shape_arrays(obj.geoms)
        if not obj.fixed:
            body = pb.createMultiBody(
                obj.mass, col, vis, obj.pos, _xyzw(obj.quat), physicsClientId=c
            )
            pb.changeDynamics(
                body,
                -1,
                lateralFriction=obj.friction,
                spinningFriction=self.scene.physics.torsional_friction,
                rollingFriction=self.scene.physics.rolling_friction,
                physicsClientId=c,
            )
            return body
        if obj.joint is None:
            body = pb.createMultiBody(0, col, vis, obj.pos, _xyzw(obj.quat), physicsClientId=c)
            pb.changeDynamics(body, -1, lateralFriction=obj.friction, physicsClientId=c)
            return body
        link_col, link_vis = self._shape_arrays(obj.link_geoms)
        body = pb.createMultiBody(
            baseMass=0,
            baseCollisionShapeIndex=col,
            baseVisualShapeIndex=vis,
            basePosition=obj.pos,
            baseOrientation=_xyzw(obj.quat),
            linkMasses=[obj.mass],
            linkCollisionShapeIndices=[link_col],
            linkVisualShapeIndices=[link_vis],
            linkPositions=[[0, 0, 0]],
            linkOrientations=[[0, 0, 0, 1]],
            linkInertialFramePositions=[[0, 0, 0.04]],
            linkInertialFrameOrientations=[[0, 0, 0, 1]],
            linkParentIndices=[0],
            linkJointTypes=[pb.JOINT_PRISMATIC],
            linkJointAxis=[list(obj.joint.axis)],
            physicsClientId=c,
        )
        lo, hi = obj.joint.range
        # No `jointDamping`: PyBullet applies it as an explicit force, which diverges once
        # damping * timestep exceeds the link's mass (a stiff drawer: 3000 N*s/m * 2 ms >> 0.5
        # kg flung the drawer past its limit). The slide's resistance is the motor below.
        pb.changeDynamics(
            body,
            0,
            lateralFriction=obj.friction,
            jointLowerLimit=lo,
            jointUpperLimit=hi,
            jointDamping=0.0,
            physicsClientId=c,
        )
        pb.changeDynamics(body, -1, lateralFriction=obj.friction, physicsClientId=c)
        self._slides[obj.name] = body
        self._slide_speed[obj.name] = 0.0
        self._resist_slide(obj, 0.0)
        return body

    def _resist_slide(self, obj: ObjectSpec, speed: float) -> None:
        """Sets a slide's resistance for the next step: dry friction plus viscous damping.

        A velocity motor holding zero speed is a constraint the solver meets implicitly, with
        at most `force` N; it can stop the slide but never push it backwards, so it is stable
        at any damping. Its force bound, `frictionloss + damping * |v|` at the smoothed
        slide speed, is MuJoCo's dry friction plus viscous damping.
        """
        assert obj.joint is not None
        pb.setJointMotorControl2(
            self._slides[obj.name],
            0,
            pb.VELOCITY_CONTROL,
            targetVelocity=0.0,
            force=obj.joint.frictionloss + obj.joint.damping * abs(speed),
            physicsClientId=self._cid,
        )

    # -- Backend API ---------------------------------------------------------------------
    def reset(self) -> None:
        c = self._cid
        robot = self.scene.robot
        for obj in self.scene.objects:
            body = self._bodies[obj.name]
            pb.resetBasePositionAndOrientation(body, obj.pos, _xyzw(obj.quat), physicsClientId=c)
            pb.resetBaseVelocity(body, [0, 0, 0], [0, 0, 0], physicsClientId=c)
            if obj.joint is not None:
                pb.resetJointState(body, 0, 0.0, 0.0, physicsClientId=c)
                self._slide_speed[obj.name] = 0.0
                self._resist_slide(obj, 0.0)
        for j, q in zip(self._arm_j, robot.home_q, strict=True):
            pb.resetJointState(self._robot, j, q, 0.0, physicsClientId=c)
        for j in self._finger_j:
            pb.resetJointState(self._robot, j, robot.finger_max_opening, 0.0, physicsClientId=c)
        self.set_arm_targets(np.asarray(robot.home_q))
        self.set_finger_target(robot.finger_max_opening)
        self._steps = 0

    def step(self, n: int) -> None:
        c = self._cid
        slides = [o for o in self.scene.objects if o.joint is not None]
        for _ in range(n):
            pb.stepSimulation(physicsClientId=c)
            for obj in slides:
                speed = pb.getJointState(self._slides[obj.name], 0, physicsClientId=c)[1]
                smooth = self._slide_speed[obj.name]
                smooth += _SLIDE_SPEED_SMOOTHING * (speed - smooth)
                self._slide_speed[obj.name] = smooth
                self._resist_slide(obj, smooth)
        self._steps += n

    def joint_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c = self._cid
        arm = pb.getJointStates(self._robot, self._arm_j, physicsClientId=c)
        fingers = pb.getJointStates(self._robot, self._finger_j, physicsClientId=c)
        q = np.array([s[0] for s in arm])
        qd = np.array([s[1] for s in arm])
        return q, qd, np.array([s[0] for s in fingers])

    def object_poses(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        out = {}
        for obj in self.scene.objects:
            if obj.fixed:
                continue
            pos, (x, y, z, w) = pb.getBasePositionAndOrientation(
                self._bodies[obj.name], physicsClientId=self._cid
            )
            out[obj.name] = (np.array(pos), np.array([w, x, y, z]))
        return out

    def set_object_pose(self, name: str, pos: np.ndarray, quat: np.ndarray) -> None:
        body = self._bodies[name]
        pb.resetBasePositionAndOrientation(body, list(pos), _xyzw(quat), physicsClientId=self._cid)
        pb.resetBaseVelocity(body, [0, 0, 0], [0, 0, 0], physicsClientId=self._cid)

    def articulation_positions(self) -> dict[str, float]:
        return {
            name: float(pb.getJointState(body, 0, physicsClientId=self._cid)[0])
            for name, body in self._slides.items()
        }

    def set_arm_targets(self, q: np.ndarray) -> None:
        robot = self.scene.robot
        gain = (
            _servo_position_gain(self.scene.physics.timestep, robot.arm_kp, robot.arm_kv)
            if self._fingers_closed
            else _OPEN_HAND_POSITION_GAIN
        )
        pb.setJointMotorControlArray(
            self._robot,
            self._arm_j,
            pb.POSITION_CONTROL,
            targetPositions=list(q),
            forces=list(robot.arm_torque_limits),
            positionGains=[gain] * 7,
            velocityGains=[_SERVO_VELOCITY_GAIN] * 7,
            physicsClientId=self._cid,
        )

    def set_finger_target(self, opening: float) -> None:
        # A grasp commands 0 (closed); any opening releases. The arm's servo rate follows.
        self._fingers_closed = opening <= 0.0
        force = self.scene.robot.grip_force
        pb.setJointMotorControlArray(
            self._robot,
            self._finger_j,
            pb.POSITION_CONTROL,
            targetPositions=[opening, opening],
            forces=[force, force],
            physicsClientId=self._cid,
        )

    def finger_contacts(self) -> dict[str, int]:
        touching: dict[str, set[int]] = {}
        for pt in pb.getContactPoints(bodyA=self._robot, physicsClientId=self._cid):
            link, other = pt[3], pt[2]
            if link in self._finger_j and other in self._owner:
                touching.setdefault(self._owner[other], set()).add(link)
        return {name: len(links) for name, links in touching.items()}

    def render(self, camera: CameraSpec) -> tuple[np.ndarray, np.ndarray]:
        return self._camera.render(camera)

    def _close(self) -> None:
        pb.disconnect(self._cid)
