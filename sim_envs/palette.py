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

# Things people name a colour by ("the sun-coloured block", "put it in the ocean", Code as
# Policies' "forest-colored block on the ocean-colored bowl" and its biomes): the thing's usual
# colour in the palette. Words of a material whose colour varies ("wooden", "metal") are absent.
COLOR_ASSOCIATIONS: dict[str, str] = {
    **dict.fromkeys(
        "sun sunshine sunflower lemon banana gold golden butter corn canary mustard desert sand "
        "honey".split(),
        "yellow",
    ),
    **dict.fromkeys(
        "forest grass grassland grasslands meadow leaf leaves jungle lime emerald frog moss "
        "tree trees pine olive mint lawn".split(),
        "green",
    ),
    **dict.fromkeys("ocean sea sky water lake river sapphire navy denim blueberry".split(), "blue"),
    **dict.fromkeys(
        "blood fire cherry tomato strawberry ruby lava brick wine apple".split(), "red"
    ),
    **dict.fromkeys("carrot tangerine pumpkin apricot mango peach".split(), "orange"),
    **dict.fromkeys("grape lavender plum eggplant amethyst lilac violet".split(), "purple"),
    **dict.fromkeys("flamingo bubblegum rose blush salmon".split(), "pink"),
    **dict.fromkeys("turquoise aqua aquamarine".split(), "cyan"),
    **dict.fromkeys("chocolate coffee soil dirt earth mud bark cinnamon".split(), "brown"),
    **dict.fromkeys("ash slate silver stone concrete cement smoke elephant".split(), "gray"),
}
