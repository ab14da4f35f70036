"""The long-horizon task family: pack three blocks into the drawer in a given order.

Each episode asks for "pack the <a>, <b> and <c> blocks into the drawer in that order". The
instruction-level steps are the short skill-level instructions of `CANDIDATES`; the existing
scripted skills (`policies.skills.SkillLibrary`, camera perception) carry each one out in real
physics. Success is the simulator's state: `sim_envs.predicates` says every block is in the
drawer and the drawer is closed, and the blocks' positions along the drawer say the order (the
low level puts the k-th block into the k-th slot, so a block packed out of turn lies in the
wrong slot).

Two things the scripted demonstrations never show make a learned high level err here, as in
Yell At Your Robot: orders the demonstrations were never recorded for (`SEEN_ORDERS` holds three
of the six), and a drawer that bounces back about a centimetre when pushed shut (the scripted
planner is open loop and says "done" anyway; a second push closes it). The person's view of the
right next instruction is `expert_instruction`, computed from privileged state, as a person
watching the table would see it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np

from corrigible.errors import (
    ConfigError,
    SkillError,
    UnknownNameError,
    UnknownObjectError,
    did_you_mean,
)
from corrigible.sim_envs.layout import LayoutConfig, ObjectRequest
from corrigible.sim_envs.objects import DRAWER_TRAVEL
from corrigible.sim_envs.predicates import WorldState, parse_predicate
from corrigible.sim_envs.scene_spec import CameraSpec
from corrigible.sim_envs.tabletop_env import TabletopEnv

COLORS: tuple[str, ...] = ("red", "green", "blue")
ORDERS: tuple[tuple[str, ...], ...] = tuple(itertools.permutations(COLORS))
# The orders the scripted demonstrations were recorded for (the three rotations of r, g, b);
# the other three are what new users ask for and the base high level has never seen.
SEEN_ORDERS: tuple[tuple[str, ...], ...] = (
    ("red", "green", "blue"),
    ("green", "blue", "red"),
    ("blue", "red", "green"),
)
DRAWER = "drawer"
OPEN = "open the drawer"
PUT = "put it in the drawer"
CLOSE = "close the drawer"
DONE = "stop, the task is done"
CANDIDATES: tuple[str, ...] = (
    OPEN,
    *(f"pick up the {c} block" for c in COLORS),
    PUT,
    CLOSE,
    DONE,
)
# The low level's drawer slots, along world y from the drawer's centre line (m). Small (3 cm)
# blocks at 4.5 cm spacing fit side by side in the 15 cm wide drawer whatever their yaw.
SLOTS_Y_M: tuple[float, ...] = (0.045, 0.0, -0.045)
_OPEN_ENOUGH_M = 0.6 * DRAWER_TRAVEL  # the place skill's own threshold for an open drawer
_ORDER_GAP_M = 0.02  # consecutive blocks must lie this much apart along the drawer (y)


def pick_instruction(color: str) -> str:
    """The candidate instruction that picks the block of `color`."""
    return f"pick up the {color} block"


@dataclass(frozen=True)
class PackTask:
    """One task of the family: the order the three blocks must go into the drawer."""

    order: tuple[str, ...]  # block colours, first packed first

    def __post_init__(self) -> None:
        if tuple(sorted(self.order)) != tuple(sorted(COLORS)):
            raise ConfigError(
                f"a pack task orders each of {list(COLORS)} once, got {list(self.order)}"
            )

    @property
    def text(self) -> str:
        """The task as the person says it."""
        a, b, c = self.order
        return f"pack the {a}, {b} and {c} blocks into the drawer in that order"

    @property
    def expect(self) -> str:
        """The predicate (`sim_envs.predicates` written form) every success needs."""
        held = " and ".join(f"in({c} block, {DRAWER})" for c in self.order)
        return f"{held} and closed({DRAWER})"

    @property
    def is_seen(self) -> bool:
        """Whether the scripted demonstrations cover this order."""
        return self.order in SEEN_ORDERS

    def scripted_plan(self) -> list[str]:
        """The scripted planner's instruction sequence (open loop, as a script is)."""
        plan = [OPEN]
        for color in self.order:
            plan += [pick_instruction(color), PUT]
        return [*plan, CLOSE, DONE]


def sample_task(seed: int, orders: tuple[tuple[str, ...], ...] = ORDERS) -> PackTask:
    """The task of episode `seed`: an order drawn from `orders` by the seed alone."""
    if not orders:
        raise ConfigError("sample_task needs at least one order to draw from")
    rng = np.random.default_rng([seed, 19])
    return PackTask(order=tuple(orders[int(rng.integers(len(orders)))]))


def pack_layout() -> LayoutConfig:
    """Three small blocks (red, green, blue) on the table and the cabinet with its drawer."""
    return LayoutConfig(
        objects=[ObjectRequest(kind="block", color=c, size_class="small") for c in COLORS],
        include_drawer=True,
    )


def make_env(engine: str = "mujoco") -> TabletopEnv:
    """A state-only env for the family (frames come from `PackEpisode.frame`, at low res)."""
    return TabletopEnv(engine, obs_mode="state", layout=pack_layout())


@dataclass(frozen=True)
class StepOutcome:
    """What carrying out one instruction did."""

    instruction: str
    success: bool  # the skill's own verdict
    message: str


class PackEpisode:
    """One episode of the family: the robot API, frames, the low level and the judge.

    Args:
        env: an env from `make_env`; reset here on `seed`.
        task: what to pack, in which order.
        seed: the layout seed.
        frame_size: (height, width) of the high level's frames, px.
        perception: "camera" (the skills aim from the camera image) or "privileged".
    """

    def __init__(
        self,
        env: TabletopEnv,
        task: PackTask,
        seed: int,
        *,
        frame_size: tuple[int, int] = (48, 64),
        perception: str = "camera",
    ) -> None:
        from corrigible.policies.robot_api import RobotAPI

        self.env = env
        self.task = task
        self.seed = seed
        env.reset(seed=seed)
        self.api = RobotAPI(env, perception=perception)
        self.skills = self.api.skills
        self._camera: CameraSpec = replace(env.camera, width=frame_size[1], height=frame_size[0])
        self._predicate = parse_predicate(task.expect, env.scene)

    # -- what the high level sees ---------------------------------------------------------
    def frame(self) -> np.ndarray:
        """The fixed camera's RGB image at the high level's low resolution, (H, W, 3) uint8."""
        assert self.env.backend is not None  # noqa: S101 - reset in __init__
        return self.env.backend.render(self._camera)[0]

    def gripper_width_m(self) -> float:
        """Distance between the fingers, m (proprioception: holding a block or not)."""
        assert self.env.backend is not None  # noqa: S101 - reset in __init__
        fingers = self.env.backend.joint_state()[2]
        return float(np.clip(np.sum(fingers), 0.0, 0.1))

    # -- the low level --------------------------------------------------------------------
    def execute(self, instruction: str) -> StepOutcome:
        """Carries out one candidate instruction with the scripted skills, in physics.

        Raises:
            UnknownNameError: `instruction` is not one of `CANDIDATES`.
        """
        if instruction not in CANDIDATES:
            raise UnknownNameError(
                f"the low level knows no instruction {instruction!r}; use one of "
                f"{list(CANDIDATES)}." + did_you_mean(instruction, CANDIDATES)
            )
        if instruction == DONE:
            return StepOutcome(instruction, True, "the high level ended the episode")
        try:
            if instruction == OPEN:
                result = self.skills.open_drawer(DRAWER)
            elif instruction == CLOSE:
                result = self.skills.close_drawer(DRAWER)
            elif instruction == PUT:
                held = self.skills.arm.holding()
                if held is None:
                    return StepOutcome(instruction, False, "not holding anything to put away")
                slot = min(len(self.blocks_in_drawer()), len(SLOTS_Y_M) - 1)
                result = self.skills.place(held, DRAWER, offset_y=SLOTS_Y_M[slot])
            else:
                color = instruction.removeprefix("pick up the ").removesuffix(" block")
                result = self.skills.pick(f"{color} block")
        except (SkillError, UnknownObjectError) as exc:
            # Refused before the arm moved: a place into the closed drawer, or a pick of a block
            # the camera cannot see (already in the drawer). A failed step, as a skill's own
            # failure is; a safety stop is no such thing and propagates.
            return StepOutcome(instruction, False, str(exc))
        return StepOutcome(instruction, result.success, result.message)

    # -- privileged state: the person's eyes and the judge --------------------------------
    def world(self) -> WorldState:
        """The simulator's state now."""
        return self.skills.world()

    def blocks_in_drawer(self) -> list[str]:
        """Colours of the blocks lying in the drawer now."""
        from corrigible.sim_envs.predicates import PREDICATES

        inside = PREDICATES.get("in")[0]
        world = self.world()
        return [c for c in COLORS if inside(world, f"{c} block", DRAWER)[0]]

    def drawer_opening_m(self) -> float:
        """How far the drawer is open, m."""
        return float(self.world().articulations[DRAWER])

    def judge(self) -> tuple[bool, list[str]]:
        """Success from the simulator's state: all in, drawer closed, blocks in task order."""
        world = self.world()
        ok, details = self._predicate.evaluate(world)
        ys = [float(world.positions[f"{c} block"][1]) for c in self.task.order]
        # Slot k lies at +y of slot k+1 (SLOTS_Y_M), so the order is a descending y.
        in_order = all(a - b > _ORDER_GAP_M for a, b in itertools.pairwise(ys))
        details.append(
            f"order {'yes' if in_order else 'no'} (y of {', '.join(self.task.order)}: "
            f"{', '.join(f'{y:.3f}' for y in ys)} m, each must exceed the next by "
            f"{_ORDER_GAP_M * 100:.0f} cm)"
        )
        return ok and in_order, details

    def expert_instruction(self) -> str:
        """The right next instruction as the watching person sees it (privileged state)."""
        held = self.skills.arm.holding()
        if held is not None:
            return PUT
        inside = set(self.blocks_in_drawer())
        remaining = [c for c in self.task.order if c not in inside]
        opening = self.drawer_opening_m()
        if remaining:
            if opening < _OPEN_ENOUGH_M:
                return OPEN
            return pick_instruction(remaining[0])
        return CLOSE if opening >= 0.01 else DONE
