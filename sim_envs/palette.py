"""Code-as-Policies' ten colours, as RGBA, with the warm/cool split people use."""

from __future__ import annotations

COLORS: dict[str, tuple[float, float, float, float]] = {
    "blue": (0.078, 0.371, 0.850, 1.0),
    "red": (0.850, 0.100, 0.100, 1.0),
    "green": (0.100, 0.650, 0.200, 1.0),
    "orange": (0.950, 0.500, 0.050, 1.0),
    "yellow": (0.950, 0.850, 0.100, 1.0),
    "purple": (0.450, 0.150, 0.700, 1.0),
    "pink": (0.950, 0.450, 0.700, 1.0),
    "cyan": (0.100, 0.800, 0.850, 1.0),
    "brown": (0.450, 0.280, 0.120, 1.0),
    "gray": (0.500, 0.500, 0.500, 1.0),
}

WARM_COLORS: frozenset[str] = frozenset({"red", "orange", "yellow", "pink", "brown"})
COOL_COLORS: frozenset[str] = frozenset({"blue", "green", "purple", "cyan", "gray"})

# Words people say for a palette colour.
COLOR_SYNONYMS: dict[str, str] = {"grey": "gray", "violet": "purple", "teal": "cyan"}
