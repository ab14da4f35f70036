"""Named, correctable parameters of the low-level skills.

These are exactly the knobs a person's correction changes ("grasp it lower" lowers
`grasp_height`, "slower" lowers `speed`) and that distilled knowledge stores per object.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from corrigible.errors import ConfigError, UnknownNameError, did_you_mean


@dataclass(frozen=True, kw_only=True)
class SkillParams:
    """Base class: every field is a float with a unit in its comment."""

    def to_dict(self) -> dict[str, float]:
        """Plain dict of the parameters."""
        return asdict(self)

    def with_updates(self, updates: dict[str, Any]) -> SkillParams:
        """A copy with some parameters changed; unknown names are a clear error."""
        known = {f.name for f in fields(self)}
        for key, value in updates.items():
            if key not in known:
                raise UnknownNameError(
                    f"{type(self).__name__} has no parameter {key!r}; parameters: {sorted(known)}."
                    + did_you_mean(key, known)
                )
            if not isinstance(value, int | float):
                raise ConfigError(f"{type(self).__name__}.{key} must be a number, got {value!r}")
        return replace(self, **{k: float(v) for k, v in updates.items()})


@dataclass(frozen=True, kw_only=True)
class PickParams(SkillParams):
    """How `pick` approaches, grasps and lifts."""

    approach_height: float = 0.10  # m above the object's top before descending
    grasp_height: float = 0.0  # m relative to the object's centre (negative: lower)
    grasp_offset_x: float = 0.0  # m, world x offset of the grasp point from the centre
    grasp_offset_y: float = 0.0  # m, world y offset of the grasp point from the centre
    lift_height: float = 0.15  # m lifted after grasping
    speed: float = 0.25  # m/s for transit and lifting
    descend_speed: float = 0.12  # m/s for the final approach


@dataclass(frozen=True, kw_only=True)
class PlaceParams(SkillParams):
    """How `place` carries and releases."""

    approach_height: float = 0.10  # m above the target surface while carrying
    release_height: float = 0.015  # m between the object's bottom and the surface at release
    offset_x: float = 0.0  # m, world x offset from the target's centre
    offset_y: float = 0.0  # m, world y offset from the target's centre
    speed: float = 0.25  # m/s while carrying
    descend_speed: float = 0.12  # m/s for the final approach


@dataclass(frozen=True, kw_only=True)
class PushParams(SkillParams):
    """How `push` slides an object along the table."""

    distance: float = 0.10  # m pushed when the caller names no distance
    standoff: float = 0.05  # m behind the object's centre where the fingers come down
    contact_height: float = 0.015  # m above the table of the pushing fingertips
    speed: float = 0.10  # m/s while pushing


@dataclass(frozen=True, kw_only=True)
class DrawerParams(SkillParams):
    """How `open_drawer` and `close_drawer` grip the handle and pull or push."""

    pull_distance: float = 0.14  # m the handle is pulled (open) or pushed (close)
    approach_height: float = 0.08  # m above the handle before descending
    grasp_height: float = 0.0  # m relative to the handle bar's centre
    grasp_offset_y: float = 0.0  # m along the handle (off-centre handles)
    speed: float = 0.10  # m/s while pulling or pushing


@dataclass(frozen=True, kw_only=True)
class MoveParams(SkillParams):
    """How `move_ee` nudges the end effector."""

    speed: float = 0.15  # m/s


DEFAULT_PARAMS: dict[str, SkillParams] = {
    "pick": PickParams(),
    "place": PlaceParams(),
    "push": PushParams(),
    "open_drawer": DrawerParams(),
    "close_drawer": DrawerParams(),
    "move_ee": MoveParams(),
    "go_home": MoveParams(speed=0.3),
}
