"""MuJoCo backend: builds a `SceneSpec` with `mujoco.MjSpec` and steps it.

The Panda comes from pybullet_data's URDF (its `package://` mesh paths rewritten to that folder),
compiled by MuJoCo's URDF importer; joint servos, gravity compensation and object bodies are
added through `MjSpec`. Object geoms get a higher contact `priority` than the fingers and the
table so that an object's own friction governs its contacts, which is what PyBullet's
multiplicative combination gives with fingers and table at friction 1.0.
"""

from __future__ import annotations

import os
import threading

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from corrigible.errors import BackendError  # noqa: E402
from corrigible.robots.assets import urdf_path  # noqa: E402
from corrigible.sim_envs.backends.base import Backend  # noqa: E402
from corrigible.sim_envs.scene_spec import CameraSpec, GeomSpec, ObjectSpec, SceneSpec  # noqa: E402

_GEOM_TYPES = {
    "box": mujoco.mjtGeom.mjGEOM_BOX,
    "cylinder": mujoco.mjtGeom.mjGEOM_CYLINDER,
    "sphere": mujoco.mjtGeom.mjGEOM_SPHERE,
}
# Collision groups: arm geoms never collide with each other, everything else collides.
_ARM_CONTYPE, _ARM_CONAFFINITY = 2, 1
_WORLD_CONTYPE, _WORLD_CONAFFINITY = 1, 3
# Object contacts are stiffer than MuJoCo's default (0.02 s): soft contacts let a pinched block
# creep along the finger pads under load until it drops out at the end of a long carry.
_OBJECT_SOLREF_TIMECONST = 0.005


def _geom_volume(g: GeomSpec) -> float:
    if g.type == "box":
        return 8 * g.size[0] * g.size[1] * g.size[2]
    if g.type == "cylinder":
        return np.pi * g.size[0] ** 2 * 2 * g.size[1]
    return 4 / 3 * np.pi * g.size[0] ** 3


def _mj_size(g: GeomSpec) -> list[float]:
    return list(g.size)


# Renderers made by a thread other than the one that closed their backend (a session run in a
# worker thread, closed by the main thread): see `MujocoBackend._close`.
_FOREIGN_RENDERERS: list[mujoco.Renderer] = []


class MujocoBackend(Backend):
    """The scene in MuJoCo (CPU rendering through EGL or OSMesa)."""

    engine = "mujoco"

    def __init__(self, scene: SceneSpec) -> None:
        super().__init__(scene)
        try:
            self.model = self._compile(scene)
        except Exception as exc:
            raise BackendError(f"MuJoCo could not build the scene: {exc}") from exc
        self.data = mujoco.MjData(self.model)
        self._index()
        self._renderers: dict[tuple[int, int, int], tuple[mujoco.Renderer, mujoco.Renderer]] = {}
        self.reset()

    # -- building ------------------------------------------------------------------------
    def _compile(self, scene: SceneSpec) -> mujoco.MjModel:
        robot = scene.robot
        path = urdf_path(robot.urdf)
        urdf = path.read_text().replace("package://", f"{path.parent}/")
        ext = (
            '<mujoco><compiler discardvisual="true" fusestatic="false" strippath="false"/></mujoco>'
        )
        urdf = urdf.replace('<robot name="panda">', f'<robot name="panda">{ext}', 1)
        spec = mujoco.MjSpec.from_string(urdf)
        phys = scene.physics
        spec.option.timestep = phys.timestep
        spec.option.gravity = list(phys.gravity)
        spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
        spec.option.impratio = 10.0
        spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
        spec.visual.global_.offwidth = max(640, scene.camera.width)
        spec.visual.global_.offheight = max(480, scene.camera.height)

        finger_bodies = {"panda_leftfinger", "panda_rightfinger"}
        for body in spec.bodies:
            if body.name == "world":
                continue
            body.gravcomp = 1.0
            for geom in body.geoms:
                geom.contype, geom.conaffinity = _ARM_CONTYPE, _ARM_CONAFFINITY
                geom.friction = [
                    robot.finger_friction,
                    phys.torsional_friction,
                    phys.rolling_friction,
                ]
                if body.name in finger_bodies:
                    geom.condim = 4
        for joint in spec.joints:
            joint.armature = 0.1 if joint.name in robot.arm_joints else 0.01
            joint.damping = [0.0 if joint.name in robot.arm_joints else 5.0, 0.0, 0.0]
        for jname in robot.arm_joints:
            act = spec.add_actuator(name=f"act_{jname}", target=jname)
            act.trntype = mujoco.mjtTrn.mjTRN_JOINT
            act.set_to_position(kp=robot.arm_kp, kv=robot.arm_kv)
            act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
            limit = robot.arm_torque_limits[robot.arm_joints.index(jname)]
            act.forcerange = [-limit, limit]
        for jname in robot.finger_joints:
            act = spec.add_actuator(name=f"act_{jname}", target=jname)
            act.trntype = mujoco.mjtTrn.mjTRN_JOINT
            act.set_to_position(kp=2000.0, kv=20.0)
            act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
            act.forcerange = [-robot.grip_force, robot.grip_force]

        world = spec.worldbody
        table = world.add_geom(
            name="table",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=list(scene.table_size),
            pos=list(scene.table_center),
            rgba=list(scene.table_rgba),
            friction=[scene.table_friction, phys.torsional_friction, phys.rolling_friction],
        )
        table.contype, table.conaffinity = _WORLD_CONTYPE, _WORLD_CONAFFINITY
        # Shadow-free lighting, as in the PyBullet renderer, so colours read alike in both.
        # Intensities sum to ~1 on a top face so colours render close to the palette, unclipped.
        spec.visual.headlight.ambient = [0.35, 0.35, 0.35]
        spec.visual.headlight.diffuse = [0.05, 0.05, 0.05]
        spec.visual.headlight.specular = [0.0, 0.0, 0.0]
        world.add_light(
            pos=[0.5, 0.0, 2.0],
            dir=[0, 0, -1],
            diffuse=[0.55, 0.55, 0.55],
            specular=[0, 0, 0],
            castshadow=False,
        )
        world.add_light(
            pos=[1.5, 1.0, 1.5],
            dir=[-1, -0.6, -1],
            diffuse=[0.1, 0.1, 0.1],
            specular=[0, 0, 0],
            castshadow=False,
        )
        for obj in scene.objects:
            self._add_object(world, obj)
        cam = scene.camera
        pose = cam.pose()
        # MuJoCo cameras look along their -z with y up: columns (right, up, backward).
        rot = np.stack([pose[:3, 0], -pose[:3, 1], -pose[:3, 2]], axis=1)
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, rot.flatten())
        world.add_camera(name=cam.name, pos=list(cam.pos), quat=list(quat), fovy=cam.fovy_deg)
        return spec.compile()

    def _add_object(self, world: mujoco.MjsBody, obj: ObjectSpec) -> None:
        body = world.add_body(name=obj.name, pos=list(obj.pos), quat=list(obj.quat))
        if not obj.fixed:
            body.add_freejoint(name=f"{obj.name}/free")
            self._add_geoms(body, obj.geoms, obj, obj.mass)
            return
        self._add_geoms(body, obj.geoms, obj, None)
        if obj.joint is not None:
            link = body.add_body(name=f"{obj.name}/link")
            link.add_joint(
                name=f"{obj.name}/slide",
                type=mujoco.mjtJoint.mjJNT_SLIDE,
                axis=list(obj.joint.axis),
                range=list(obj.joint.range),
                limited=mujoco.mjtLimited.mjLIMITED_TRUE,
                damping=[obj.joint.damping, 0.0, 0.0],
                frictionloss=obj.joint.frictionloss,
                armature=0.01,
            )
            self._add_geoms(link, obj.link_geoms, obj, obj.mass)

    def _add_geoms(
        self,
        body: mujoco.MjsBody,
        geoms: tuple[GeomSpec, ...],
        obj: ObjectSpec,
        mass: float | None,
    ) -> None:
        total = sum(_geom_volume(g) for g in geoms)
        phys = self.scene.physics
        for g in geoms:
            geom = body.add_geom(
                type=_GEOM_TYPES[g.type],
                size=_mj_size(g),
                pos=list(g.pos),
                quat=list(g.quat),
                rgba=list(g.rgba),
                friction=[obj.friction, phys.torsional_friction, phys.rolling_friction],
                condim=4,
                priority=1,
                solref=[_OBJECT_SOLREF_TIMECONST, 1.0],
            )
            geom.contype, geom.conaffinity = _WORLD_CONTYPE, _WORLD_CONAFFINITY
            if mass is not None:
                geom.mass = mass * _geom_volume(g) / total
            else:
                geom.density = 0.0

    def _index(self) -> None:
        m, robot = self.model, self.scene.robot
        jid = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, j) for j in robot.arm_joints]
        fid = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, j) for j in robot.finger_joints]
        self._arm_qadr = np.array([m.jnt_qposadr[j] for j in jid])
        self._arm_vadr = np.array([m.jnt_dofadr[j] for j in jid])
        self._finger_qadr = np.array([m.jnt_qposadr[j] for j in fid])
        self._arm_act = np.arange(7)
        self._finger_act = np.array([7, 8])
        self._free: dict[str, tuple[int, int]] = {}
        self._slides: dict[str, int] = {}
        self._geom_owner: dict[int, str] = {}
        for obj in self.scene.objects:
            if obj.fixed:
                if obj.joint is not None:
                    j = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, f"{obj.name}/slide")
                    self._slides[obj.name] = int(m.jnt_qposadr[j])
            else:
                j = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, f"{obj.name}/free")
                self._free[obj.name] = (int(m.jnt_qposadr[j]), int(m.jnt_dofadr[j]))
            for body_name in (obj.name, f"{obj.name}/link"):
                b = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, body_name)
                if b >= 0:
                    for g in range(m.body_geomadr[b], m.body_geomadr[b] + m.body_geomnum[b]):
                        self._geom_owner[g] = obj.name
        self._finger_body = {
            mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, n)
            for n in ("panda_leftfinger", "panda_rightfinger")
        }

    # -- Backend API ---------------------------------------------------------------------
    def reset(self) -> None:
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        home = np.asarray(self.scene.robot.home_q)
        d.qpos[self._arm_qadr] = home
        d.qpos[self._finger_qadr] = self.scene.robot.finger_max_opening
        for obj in self.scene.objects:
            if obj.name in self._free:
                qadr, _ = self._free[obj.name]
                d.qpos[qadr : qadr + 3] = obj.pos
                d.qpos[qadr + 3 : qadr + 7] = obj.quat
        d.ctrl[self._arm_act] = home
        d.ctrl[self._finger_act] = self.scene.robot.finger_max_opening
        mujoco.mj_forward(m, d)
        self._steps = 0

    def step(self, n: int) -> None:
        mujoco.mj_step(self.model, self.data, nstep=n)
        self._steps += n

    def joint_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        d = self.data
        return (
            d.qpos[self._arm_qadr].copy(),
            d.qvel[self._arm_vadr].copy(),
            d.qpos[self._finger_qadr].copy(),
        )

    def object_poses(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        q = self.data.qpos
        return {
            name: (q[a : a + 3].copy(), q[a + 3 : a + 7].copy())
            for name, (a, _) in self._free.items()
        }

    def set_object_pose(self, name: str, pos: np.ndarray, quat: np.ndarray) -> None:
        a, d = self._free[name]
        self.data.qpos[a : a + 3] = pos
        self.data.qpos[a + 3 : a + 7] = quat
        self.data.qvel[d : d + 6] = 0.0
        mujoco.mj_forward(self.model, self.data)

    def articulation_positions(self) -> dict[str, float]:
        return {name: float(self.data.qpos[a]) for name, a in self._slides.items()}

    def set_arm_targets(self, q: np.ndarray) -> None:
        self.data.ctrl[self._arm_act] = q

    def set_finger_target(self, opening: float) -> None:
        self.data.ctrl[self._finger_act] = opening

    def finger_contacts(self) -> dict[str, int]:
        m, d = self.model, self.data
        touching: dict[str, set[int]] = {}
        for i in range(d.ncon):
            c = d.contact[i]
            for mine, other in ((c.geom1, c.geom2), (c.geom2, c.geom1)):
                body = int(m.geom_bodyid[mine])
                if body in self._finger_body and other in self._geom_owner:
                    touching.setdefault(self._geom_owner[other], set()).add(body)
        return {name: len(bodies) for name, bodies in touching.items()}

    def render(self, camera: CameraSpec) -> tuple[np.ndarray, np.ndarray]:
        # An offscreen GL context belongs to the thread that made it, so renderers are kept
        # per thread (a controller may perceive from a worker thread).
        key = (camera.width, camera.height, threading.get_ident())
        if key not in self._renderers:
            rgb_r = mujoco.Renderer(self.model, camera.height, camera.width)
            depth_r = mujoco.Renderer(self.model, camera.height, camera.width)
            depth_r.enable_depth_rendering()
            self._renderers[key] = (rgb_r, depth_r)
        rgb_r, depth_r = self._renderers[key]
        rgb_r.update_scene(self.data, camera=camera.name)
        depth_r.update_scene(self.data, camera=camera.name)
        return rgb_r.render().copy(), depth_r.render().astype(np.float32)

    def _close(self) -> None:
        me = threading.get_ident()
        for (_, _, owner), (rgb_r, depth_r) in self._renderers.items():
            if owner != me:
                # Another thread's GL context cannot be made current (nor freed) here; keep the
                # renderers alive so their __del__ does not try, and let process exit free them.
                _FOREIGN_RENDERERS.extend((rgb_r, depth_r))
                continue
            rgb_r.close()
            depth_r.close()
        self._renderers.clear()
