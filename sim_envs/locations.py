"""Named table locations (Code as Policies' nine spots) over the object workspace.

The robot faces +x. "Top" is the far edge (+x), "bottom" the near edge, "left" is +y: the
robot's left, which is also the left of the camera image.
"""

from __future__ import annotations

import numpy as np

from corrigible.errors import UnknownNameError, did_you_mean

# Axis-aligned workspace where objects are laid out: ((x_min, x_max), (y_min, y_max)) in m.
WORKSPACE_XY: tuple[tuple[float, float], tuple[float, float]] = ((0.35, 0.70), (-0.28, 0.30))
_MARGIN = 0.05  # m, corners sit this far inside the workspace edge

_PHRASES: dict[str, tuple[float, float]] = {
    # name: (fraction along x from bottom to top, fraction along y from right to left)
    "top left corner": (1.0, 1.0),
    "top right corner": (1.0, 0.0),
    "bottom left corner": (0.0, 1.0),
    "bottom right corner": (0.0, 0.0),
    "top side": (1.0, 0.5),
    "bottom side": (0.0, 0.5),
    "left side": (0.5, 1.0),
    "right side": (0.5, 0.0),
    "middle": (0.5, 0.5),
}
_ALIASES: dict[str, str] = {
    "center": "middle",
    "centre": "middle",
    "middle of the table": "middle",
    "top edge": "top side",
    "bottom edge": "bottom side",
    "left edge": "left side",
    "right edge": "right side",
}


def location_names() -> list[str]:
    """The canonical names of the nine spots."""
    return list(_PHRASES)


def canonical_location(name: str) -> str:
    """Normalises a phrase ("top-left corner", "the centre") to a canonical location name."""
    raw = " ".join(name.lower().replace("-", " ").split())
    for suffix in (" of the table", " of the workspace", " of the tabletop"):
        raw = raw.removesuffix(suffix)
    key = " ".join(raw.replace("the ", " ").split())
    key = _ALIASES.get(raw.removeprefix("the "), _ALIASES.get(key, key))
    if key in _PHRASES:
        return key
    if key + " corner" in _PHRASES:
        return key + " corner"
    if key + " side" in _PHRASES:
        return key + " side"
    raise UnknownNameError(
        f"unknown location {name!r}; known: {location_names()}."
        + did_you_mean(key, list(_PHRASES) + list(_ALIASES))
    )


def location_xy(name: str) -> np.ndarray:
    """The (x, y) of a named location in the world frame, m."""
    fx, fy = _PHRASES[canonical_location(name)]
    (x0, x1), (y0, y1) = WORKSPACE_XY
    x = x0 + _MARGIN + fx * (x1 - x0 - 2 * _MARGIN)
    y = y0 + _MARGIN + fy * (y1 - y0 - 2 * _MARGIN)
    return np.array([x, y])
