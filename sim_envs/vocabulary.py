"""The object vocabulary: kinds of object, the nouns people use for them, and colour words.

One source of truth for "cube means block", "can means cylinder", "which kinds can be picked,
which hold things", and "grey is gray". Language, the planners, the correction interpreter,
retrieval, predicates, layouts and perception all ask this module instead of keeping maps of
their own, so a new kind of object is one `ObjectKind` declaration (plus its geometry factory in
`sim_envs/objects.py`).

Scene objects are named "<colour> <kind>" ("red block"); furniture is named by its kind alone
("drawer"). `object_name` and `parse_object_name` are the only places that know this.

Example:
    >>> kind_of_noun("cubes")
    'block'
    >>> attributes_of_name("red block")
    {'color': 'red', 'shape': 'cube'}
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from corrigible.errors import ConfigError, did_you_mean
from corrigible.registry import Registry
from corrigible.sim_envs.palette import (
    COLOR_ASSOCIATIONS,
    COLOR_SYNONYMS,
    COLORS,
    COOL_COLORS,
    WARM_COLORS,
)

if TYPE_CHECKING:
    from corrigible.sim_envs.scene_spec import ObjectSpec

# Builds one object of a kind: factory(colour, (x, y) m, *, name, [yaw rad], [size_class],
# [mass kg], [friction]) -> ObjectSpec; `ObjectKind.build` passes only what the kind takes.
ObjectFactory = Callable[..., "ObjectSpec"]


@dataclass(frozen=True, kw_only=True)
class ObjectKind:
    """One kind of scene object and every word that names it.

    Attributes:
        name: the kind as scenes and predicates spell it ("block").
        nouns: singular words for it, the kind's own name first ("block", "cube", "brick").
        plurals: irregular plurals; regular ones ("cubes", "boxes") are derived.
        shape: the shape attribute perception reports and knowledge is scoped by ("cube").
        graspable: an item the robot moves about: pick, place and put_first_on_second take it
            by its body, and the planners' families that move "the objects" (towers, lines,
            sorting, groups) and the corrections' rules move it.
        rim_grasp: pick, place and put_first_on_second take it by its wall at the rim (too
            wide for the open fingers: a bowl, which may then be set on another bowl). It
            stays out of `graspable`'s families: moving every bowl is no one's "the objects".
        pushable: push may take it.
        container: things can go *in* it (`in(x, y)`, "put it in the ...").
        furniture: fixed to the table, one per scene, named by its kind alone ("drawer").
        requestable: layouts, suites and mentioned objects may ask for "<colour> <kind>".
        footprint_radius_m: clearance radius a layout keeps around it, m.
        factory: builds one (see `ObjectFactory`); None for furniture built by the layout.
        takes_yaw: its factory takes a yaw (a round or symmetric object does not).
        sized: its factory takes a size class ("small", "medium", "large").
        default_color: the colour of furniture, which is not named by colour.
    """

    name: str
    nouns: tuple[str, ...]
    plurals: tuple[str, ...] = ()
    shape: str
    graspable: bool = False
    rim_grasp: bool = False
    pushable: bool = False
    container: bool = False
    furniture: bool = False
    requestable: bool = True
    footprint_radius_m: float = 0.03
    factory: ObjectFactory | None = field(default=None, compare=False)
    takes_yaw: bool = False
    sized: bool = False
    default_color: str | None = None

    def __post_init__(self) -> None:
        if not self.nouns or self.nouns[0] != self.name:
            raise ConfigError(
                f"ObjectKind {self.name!r}: nouns must start with the kind's own name, "
                f"got {self.nouns!r}"
            )
        if self.requestable and self.factory is None:
            raise ConfigError(
                f"ObjectKind {self.name!r} is requestable but has no factory; give "
                "factory=make_<kind> or set requestable=False"
            )

    @property
    def pickable(self) -> bool:
        """Whether pick, place and put_first_on_second take it (by its body or by its rim)."""
        return self.graspable or self.rim_grasp

    @property
    def words(self) -> tuple[str, ...]:
        """Every singular and plural word for this kind."""
        return self.nouns + tuple(_plural(n) for n in self.nouns) + self.plurals

    def build(
        self,
        color: str,
        xy: tuple[float, float],
        *,
        yaw: float = 0.0,
        size_class: str = "medium",
        name: str | None = None,
        **physics: float | None,
    ) -> ObjectSpec:
        """One object of this kind; `physics` (mass kg, friction) None keeps the default."""
        if self.factory is None:
            raise ConfigError(f"objects of kind {self.name!r} are built by the layout itself")
        kwargs: dict[str, Any] = {k: v for k, v in physics.items() if v is not None}
        if self.takes_yaw:
            kwargs["yaw"] = yaw
        if self.sized:
            kwargs["size_class"] = size_class
        return self.factory(color, xy, name=name, **kwargs)


def _plural(noun: str) -> str:
    return noun + ("es" if re.search(r"(?:s|x|ch|sh)$", noun) else "s")


OBJECT_KINDS: Registry[ObjectKind] = Registry("object kind")


def register_kind(kind: ObjectKind) -> ObjectKind:
    """Adds a kind to the vocabulary (its words must not name another kind).

    Remove one again with `OBJECT_KINDS.unregister(name)` (tests that add a kind do).
    """
    for other in OBJECT_KINDS.values():
        shared = set(kind.words) & set(other.words)
        if shared:
            raise ConfigError(
                f"ObjectKind {kind.name!r} reuses {sorted(shared)} of kind {other.name!r}"
            )
    OBJECT_KINDS.register(kind.name, kind)
    return kind


def _register_builtin() -> None:
    from corrigible.sim_envs import objects

    for kind in (
        ObjectKind(
            name="block",
            nouns=("block", "cube", "brick", "box"),
            shape="cube",
            graspable=True,
            pushable=True,
            footprint_radius_m=objects.BLOCK_CLEARANCE,
            factory=objects.make_block,
            takes_yaw=True,
            sized=True,
        ),
        ObjectKind(
            name="cylinder",
            nouns=("cylinder", "can"),
            shape="cylinder",
            graspable=True,
            pushable=True,
            footprint_radius_m=objects.BLOCK_CLEARANCE,
            factory=objects.make_cylinder,
            sized=True,
        ),
        ObjectKind(
            name="bowl",
            nouns=("bowl", "dish"),
            shape="bowl",
            rim_grasp=True,
            pushable=True,
            container=True,
            footprint_radius_m=objects.BOWL_RADIUS,
            factory=objects.make_bowl,
        ),
        ObjectKind(
            name="drawer",
            nouns=("drawer",),
            shape="drawer",
            container=True,
            furniture=True,
            requestable=False,
            footprint_radius_m=0.10,
            default_color="brown",
        ),
    ):
        register_kind(kind)


# -- nouns -----------------------------------------------------------------------------------
@cache
def _noun_table() -> dict[str, str]:
    return {word: kind.name for kind in OBJECT_KINDS.values() for word in kind.words}


@cache
def noun_words() -> tuple[str, ...]:
    """Every noun for every kind, singular and plural, longest first (for regex alternations)."""
    return tuple(sorted(_noun_table(), key=lambda w: (-len(w), w)))


def noun_pattern() -> str:
    """A regex alternation of `noun_words()` (no group, no word boundaries)."""
    return "|".join(re.escape(w) for w in noun_words())


def kind_nouns(*, plural: bool | None = None, **attrs: object) -> tuple[str, ...]:
    """Nouns of the kinds whose attributes match, longest first (for regex alternations).

    `kind_nouns(graspable=True, plural=False)` are the singular words for things a robot can
    pick up; `kind_nouns(name="block", plural=True)` the plurals of "block". `plural` None keeps
    both numbers.
    """
    words = [
        word
        for kind in kinds()
        if all(getattr(kind, a) == v for a, v in attrs.items())
        for word in dict.fromkeys(kind.words)
        if plural is None or (word not in kind.nouns) == plural
    ]
    return tuple(sorted(words, key=lambda w: (-len(w), w)))


def kind_of_noun(word: str) -> str | None:
    """The kind a noun names, singular or plural ("cubes" -> "block"); None if it names none."""
    return _noun_table().get(word.strip().lower())


def is_plural(word: str) -> bool:
    """Whether `word` is a plural noun of some kind ("blocks"), which names a class of objects."""
    word = word.strip().lower()
    return kind_of_noun(word) is not None and not any(
        word in k.nouns for k in OBJECT_KINDS.values()
    )


@cache
def kinds() -> tuple[ObjectKind, ...]:
    """The registered kinds, in registration order."""
    return tuple(OBJECT_KINDS.values())


def object_kind(name: str) -> ObjectKind:
    """The declared kind called `name` (UnknownNameError with a suggestion otherwise)."""
    return OBJECT_KINDS.get(name)


def kind_names(**flags: bool) -> tuple[str, ...]:
    """Names of the kinds whose flags match, e.g. `kind_names(graspable=True)`.

    A flag may be a property of `ObjectKind` too: `kind_names(pickable=True)` are the kinds
    pick takes (by the body or by the rim).
    """
    return tuple(k.name for k in kinds() if all(getattr(k, f) == v for f, v in flags.items()))


def requestable_kind(name: str, *, field: str = "kind") -> str:
    """`name`, checked to be a kind that layouts, suites and scenarios may ask for.

    Raises:
        ConfigError: it is not; the message names `field`, the value, the choices and the
            closest one ("bwol" -> "bowl").
    """
    choices = kind_names(requestable=True)
    if name not in choices:
        raise ConfigError(
            f"{field} must be a requestable object kind {list(choices)}, got {name!r}."
            + did_you_mean(name, choices)
        )
    return name


def shape_of_kind(kind: str) -> str:
    """The perceived shape of a kind ("block" -> "cube"); unknown kinds keep their name."""
    return OBJECT_KINDS.get(kind).shape if kind in OBJECT_KINDS else kind


def noun_of_shape(shape: str) -> str:
    """The kind's own noun for a shape attribute ("cube" -> "block"), for writing rules."""
    for kind in kinds():
        if kind.shape == shape:
            return kind.name
    return shape


# Words that stand for "an object" without naming a kind ("that one", "the other thing").
GENERIC_OBJECT_WORDS: frozenset[str] = frozenset(
    "one ones thing things stuff object objects item items".split()
)


# -- colours ---------------------------------------------------------------------------------
def canonical_color(word: str) -> str | None:
    """The palette colour a word names ("grey" -> "gray"), or None."""
    word = word.strip().lower()
    word = COLOR_SYNONYMS.get(word, word)
    return word if word in COLORS else None


def associated_color(word: str) -> str | None:
    """The palette colour a thing is known by ("ocean" -> "blue", "grasslands" -> "green").

    Only for words said where a colour is expected ("the sun-coloured block") or as a place
    standing for a container ("build a tower in the grasslands"); never for object names.
    """
    word = word.strip().lower()
    return COLOR_ASSOCIATIONS.get(word) or COLOR_ASSOCIATIONS.get(word.removesuffix("s"))


# "forest coloured", "sun-colored", "pinkish", "reddish coloured".
_COLOURED = re.compile(r"\b(?:the\s+)?([a-z]+)[\s-]+colou?red\b|\b([a-z]+?)(?:d?ish)\b")
# Lightness said instead of a colour ("the light colored block"): a superlative over palette
# luminance, read by the object resolver.
_LIGHTNESS = re.compile(r"\b(light|pale|bright|dark|deep)(?:er|est)?[\s-]+colou?red\b")


def normalise_color_phrases(text: str) -> str:
    """Rewrites colours said by association or hedge into palette words, lower case in and out.

    "the forest-colored block" -> "the green block", "pinkish colored" -> "pink", "reddish"
    -> "red"; "the light colored block" -> "the lightest block", "dark coloured" ->
    "darkest". A word that names no palette colour is left as it was ("wooden coloured"), so
    the resolver still refuses what it cannot read.
    """

    def colour(word: str) -> str | None:
        return canonical_color(word) or associated_color(word)

    def coloured(m: re.Match[str]) -> str:
        word = m.group(1) or m.group(2)
        stems = [word, word + "e"]  # "bluish" -> "blu" -> "blue"
        if m.group(1) is not None:  # "pinkish coloured", "orangey coloured", "sky coloured"
            stems += [word.removesuffix("ish"), word.removesuffix("y"), word.removesuffix("dish")]
        stems += [stem + "e" for stem in stems]  # "bluish coloured" -> "blu" -> "blue"
        found = next((c for c in map(colour, stems) if c), None)
        if found is None:
            return m.group(0)
        lead = "the " if m.group(0).startswith("the ") else ""
        return lead + found

    text = _LIGHTNESS.sub(
        lambda m: "lightest" if m.group(1) in ("light", "pale", "bright") else "darkest", text
    )
    return _COLOURED.sub(coloured, text)


def luminance(color: str | None) -> float:
    """How light a palette colour looks, 0 (black) to 1 (white): Rec. 601 luma of its RGB."""
    if color is None or color not in COLORS:
        return 0.5
    r, g, b, _ = COLORS[color]
    return 0.299 * r + 0.587 * g + 0.114 * b


def color_words() -> tuple[str, ...]:
    """Every colour word: the palette, then its synonyms."""
    return (*COLORS, *COLOR_SYNONYMS)


def color_group(color: str) -> str | None:
    """The colour group ("warm" or "cool") of a palette colour, else None."""
    if color in WARM_COLORS:
        return "warm"
    if color in COOL_COLORS:
        return "cool"
    return None


# -- sizes -----------------------------------------------------------------------------------
# Words for the layout's size classes ("small" | "medium" | "large"), which perception reads
# from an object's bounding box; standing rules may name them ("small red blocks").
SIZE_WORDS: dict[str, str] = {
    "small": "small",
    "little": "small",
    "tiny": "small",
    "smaller": "small",
    "medium": "medium",
    "medium-sized": "medium",
    "mid-sized": "medium",
    "large": "large",
    "big": "large",
    "bigger": "large",
    "larger": "large",
    "huge": "large",
}


def canonical_size(word: str) -> str | None:
    """The size class a word names ("big" -> "large"), or None."""
    return SIZE_WORDS.get(word.strip().lower())


# -- names -----------------------------------------------------------------------------------
def object_name(color: str, kind: str) -> str:
    """The scene name of an object: "<colour> <kind>", or the kind alone for furniture."""
    if kind in OBJECT_KINDS and OBJECT_KINDS.get(kind).furniture:
        return kind
    return f"{color} {kind}"


def parse_object_name(name: str) -> tuple[str | None, str] | None:
    """The (colour, kind) of a scene name; None when the name is not of that form.

    "red block" -> ("red", "block"); furniture has no colour: "drawer" -> (None, "drawer").
    """
    words = name.split()
    if len(words) == 1 and words[0] in OBJECT_KINDS and OBJECT_KINDS.get(words[0]).furniture:
        return None, words[0]
    if len(words) == 2 and words[0] in COLORS and words[1] in OBJECT_KINDS:
        return words[0], words[1]
    return None


def kind_of_name(name: str) -> str | None:
    """The kind of a scene name ("red block" -> "block", "drawer" -> "drawer"), else None."""
    parsed = parse_object_name(name)
    return parsed[1] if parsed else None


def attributes_of_name(name: str) -> dict[str, str]:
    """Colour and shape as the robot knows them, from a perceived "<colour> <kind>" name.

    This is what retrieval and distillation may use: the name is what perception reported, so
    it carries no privileged property (size, mass, friction).
    """
    words = name.split()
    if len(words) == 2:
        return {"color": words[0], "shape": shape_of_kind(words[1])}
    return {}


for _derived in (_noun_table, noun_words, kinds):
    OBJECT_KINDS.on_change(_derived.cache_clear)
_register_builtin()

__all__ = [
    "GENERIC_OBJECT_WORDS",
    "OBJECT_KINDS",
    "ObjectKind",
    "attributes_of_name",
    "canonical_color",
    "color_group",
    "color_words",
    "is_plural",
    "kind_names",
    "kind_nouns",
    "kind_of_name",
    "kind_of_noun",
    "kinds",
    "noun_of_shape",
    "noun_pattern",
    "noun_words",
    "object_kind",
    "object_name",
    "parse_object_name",
    "register_kind",
    "requestable_kind",
    "shape_of_kind",
]
