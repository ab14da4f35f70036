"""The skill-level language front end: phrasings in, skill calls out.

Covers what a person says to a single skill ("pick up the red block", "grab the red cube",
"move a bit to the left", "go up slightly", "a lot lower", "put the red block in the blue bowl",
"open the drawer"). Vague magnitudes map to metres through `MAGNITUDES`. Anything not
understood raises `ParseError` naming the words it could not read; objects that are not on the
table raise `UnknownObjectError` with a suggestion.

Spatial references ("the leftmost block", "the bowl next to the drawer", "the one closest to the
middle", "the other block") are resolved by `ObjectResolver` from perceived positions, with
left/right/front/back as the camera and the operator see them; a tie or no match is refused
with the reason, never guessed. Turns of the gripper ("90 degrees", "a quarter turn") are read
by `parse_turn`.

Nouns ("cube" is a block, "dishes" are bowls), colour words and the "<colour> <kind>" naming
convention come from `sim_envs.vocabulary`, so a newly registered kind of object is understood
here without changes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from corrigible.errors import ParseError, UnknownObjectError, did_you_mean
from corrigible.sim_envs.layout import ObjectRequest
from corrigible.sim_envs.vocabulary import (
    GENERIC_OBJECT_WORDS,
    canonical_color,
    canonical_size,
    color_words,
    kind_names,
    kind_nouns,
    kind_of_name,
    kind_of_noun,
    luminance,
    normalise_color_phrases,
    noun_pattern,
    object_kind,
    parse_object_name,
)

# Vague magnitude -> metres (DROC's get_pos_scale, made explicit). Longest phrases first.
MAGNITUDES: dict[str, float] = {
    "a tiny bit": 0.01,
    "a little bit": 0.02,
    "a tad": 0.015,
    "very slightly": 0.01,
    "a touch": 0.015,
    "slightly": 0.02,
    "a little": 0.02,
    "a bit": 0.03,
    "somewhat": 0.04,
    "a lot": 0.10,
    "a great deal": 0.12,
    "much": 0.08,
    "far": 0.12,
    "way": 0.10,
}
DEFAULT_MAGNITUDE = 0.05  # m when no magnitude is said ("move left")

_DIRECTION_WORDS: dict[str, str] = {
    "left": "left",
    "right": "right",
    "forward": "forward",
    "forwards": "forward",
    "ahead": "forward",
    "away": "forward",
    "further": "forward",
    "back": "backward",
    "backward": "backward",
    "backwards": "backward",
    "closer": "backward",
    "towards me": "backward",
    "toward me": "backward",
    "up": "up",
    "upward": "up",
    "upwards": "up",
    "higher": "up",
    "raise": "up",
    "down": "down",
    "downward": "down",
    "downwards": "down",
    "lower": "down",
}
_PICK = r"(?:pick up|pick|grab|grasp|take|lift|get|hold)"
_PUT = r"(?:put|place|drop|set|move|bring|transfer|stack|carry|stash|store|stow|tuck|pop)"
_PREP = r"(?:on top of|in the middle of|inside|into|onto|over|in|on|to|at)"
_FILLER = re.compile(r"\b(please|now|can you|could you|would you|robot|then|just|okay|ok)\b[,]?\s*")


@dataclass(frozen=True)
class SkillCall:
    """One parsed skill invocation."""

    skill: str
    args: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
        return f"{self.skill}({inner})"


def _normalise(text: str) -> str:
    text = text.lower().strip().rstrip(".!?")
    text = text.replace(",", " ").replace("-", " ")
    text = _FILLER.sub("", text)
    return " ".join(text.split())


def parse_magnitude(text: str) -> tuple[float, str]:
    """Finds a magnitude in `text`: explicit ("5 cm", "0.1 m") or vague ("a bit").

    Returns:
        (metres, the text with the magnitude removed).
    """
    m = re.search(
        r"(\d+(?:\.\d+)?)\s*(cm|centimet(?:er|re)s?|mm|millimet(?:er|re)s?|m|met(?:er|re)s?)\b",
        text,
    )
    if m:
        value, unit = float(m.group(1)), m.group(2)
        scale = (
            0.01
            if unit.startswith("c")
            else 0.001
            if unit.startswith("mm") or unit.startswith("milli")
            else 1.0
        )
        return value * scale, (text[: m.start()] + text[m.end() :]).strip()
    for phrase in sorted(MAGNITUDES, key=len, reverse=True):
        pattern = rf"\b{re.escape(phrase)}\b"
        if re.search(pattern, text):
            return MAGNITUDES[phrase], re.sub(pattern, " ", text, count=1).strip()
    return DEFAULT_MAGNITUDE, text


# Turns of the gripper about the vertical. Vague amounts in degrees; longest phrases first.
TURN_WORDS_DEG: dict[str, float] = {
    "a quarter turn": 90.0,
    "quarter turn": 90.0,
    "quarter of a turn": 90.0,
    "a right angle": 90.0,
    "right angle": 90.0,
    "half a turn": 180.0,
    "a half turn": 180.0,
    "half turn": 180.0,
    "an eighth of a turn": 45.0,
    "a tiny bit": 5.0,
    "very slightly": 5.0,
    "a little bit": 10.0,
    "a touch": 10.0,
    "a tad": 10.0,
    "slightly": 10.0,
    "a little": 10.0,
    "a bit": 15.0,
    "somewhat": 20.0,
    "a lot": 60.0,
}
DEFAULT_TURN_DEG = 30.0  # "turn the gripper" with no amount
_TURN_RE = re.compile(r"(-?\d+(?:\.\d+)?)\s*(?P<unit>degrees?|degs?|deg\b|°|radians?|rads?\b)")


def parse_turn(text: str) -> tuple[float, bool]:
    """A turn about the vertical said in `text`, rad, signed (counter-clockwise from above is +).

    "90 degrees", "1.2 rad", "a quarter turn", "a bit" (vague words: `TURN_WORDS_DEG`);
    "clockwise" / "to the right" turn the other way. Turns are reduced modulo a half turn into
    (-90, 90] degrees: the two-finger gripper, the blocks and the cylinders look the same after
    a half turn, so "half a turn" asks for nothing and "270 degrees" is the same as 90.

    Returns:
        (rad, whether an amount was said; False means `DEFAULT_TURN_DEG` was used).
    """
    said = True
    m = _TURN_RE.search(text)
    if m:
        value = float(m.group(1))
        deg = value if m.group("unit").startswith(("d", "°")) else math.degrees(value)
    else:
        words = sorted(TURN_WORDS_DEG, key=len, reverse=True)
        phrase = next((w for w in words if re.search(rf"\b{w}\b", text)), None)
        said = phrase is not None
        deg = TURN_WORDS_DEG[phrase] if phrase else DEFAULT_TURN_DEG
    if re.search(r"\b(?:anti|counter)\s*clockwise\b", text):
        pass
    elif re.search(r"\bclockwise\b|\b(?:to the )?right\b", text):
        deg = -deg
    deg = -((-deg + 90.0) % 180.0 - 90.0)  # into (-90, 90]
    return math.radians(deg) + 0.0, said


# Words that make a noun phrase relational ("the block next to the bowl"), never part of a name.
_RELATION_WORDS = frozenset(
    {
        "next",
        "beside",
        "near",
        "behind",
        "left",
        "right",
        "front",
        "closest",
        "nearest",
        "farthest",
        "furthest",
        "between",
        "under",
        "above",
        "below",
        "and",
        "of",
    }
)


# -- spatial references ----------------------------------------------------------------------
# Left, right, front and back are the camera's and the operator's (sim_envs.locations): the
# robot faces +x from the near edge, "left" is +y (the left of the camera image), the front is
# the near edge (-x, "towards me"), the back the far edge (+x). Axis and sign of each side:
_SIDES: dict[str, tuple[int, float]] = {
    "left": (1, +1.0),
    "right": (1, -1.0),
    "front": (0, -1.0),
    "back": (0, +1.0),
}
_SIDE_WORDS = {"rear": "back", "far": "back", "near": "front"}
# Superlatives without a reference: "the closest block" is the one nearest the operator.
_SUPERLATIVE_SIDES = {
    "leftmost": "left",
    "rightmost": "right",
    "frontmost": "front",
    "backmost": "back",
    "rearmost": "back",
    "topmost": "back",
    "uppermost": "back",
    "bottommost": "front",
    "lowermost": "front",
    "closest": "front",
    "nearest": "front",
    "farthest": "back",
    "furthest": "back",
}
# Superlatives over the palette colour's lightness ("the light colored block", which
# `normalise_color_phrases` reads as "the lightest block"), not over where things are.
_LIGHTNESS_SUPERLATIVES = ("lightest", "darkest")
# Relations to a reference object or named spot -> "near", "far" or a side.
_RELATIONS: dict[str, str] = {
    "to the left of": "left",
    "left of": "left",
    "to the right of": "right",
    "right of": "right",
    "in front of": "front",
    "behind": "back",
    "in back of": "back",
    "beyond": "back",
    "next to": "near",
    "beside": "near",
    "near to": "near",
    "near": "near",
    "close to": "near",
    "closest to": "near",
    "nearest to": "near",
    "nearest": "near",
    "closest": "near",
    "alongside": "near",
    "by": "near",
    "farthest from": "far",
    "furthest from": "far",
    # Only after a superlative: "the nearest bowl to the red block", "the farthest ... from".
    "to": "sup",
    "from": "sup",
}
TIE_M = 0.02  # m: candidates closer than this in what is compared are equally good (ambiguous)
SIDE_MARGIN_M = 0.03  # m: "left of the bowl" means more than this to its left
_LOCATION = (
    r"(?:(?:top|bottom) (?:left|right) corner|(?:top|bottom|left|right) (?:side|edge)"
    r"|middle|cent(?:er|re))(?: of the table)?"
)
# Words a plain noun phrase may carry that change nothing about which object it names.
_NEUTRAL_WORDS = frozenset({"the", "a", "an", "that", "this", "my", "your"}) | GENERIC_OBJECT_WORDS


# Words after the noun that say how or when, never which object ("the red block carefully",
# "the blue bowl for me", "... thanks"): kept out of object identity, as people add them freely.
_MANNER_WORDS = frozenset(
    {
        "please",
        "thanks",
        "thank",
        "you",
        "for",
        "me",
        "us",
        "now",
        "again",
        "too",
        "then",
        "kindly",
        "ok",
        "okay",
        "quick",
        "fast",
        "asap",
        "already",
        "here",
        "there",
        "as",
        "well",
    }
)
# After the noun, these start a qualifier that does change which object is meant ("the red
# block under the bowl", "the block that is not red"): those phrases are refused, not dropped.
_QUALIFIER_WORDS = frozenset(
    {
        "under",
        "above",
        "below",
        "beneath",
        "on",
        "in",
        "inside",
        "with",
        "without",
        "except",
        "but",
        "not",
        "that",
        "which",
        "who",
        "whose",
        "between",
        "by",
        "of",
        "from",
        "than",
        "is",
        "are",
        "second",
        "third",
        "last",
        "first",
        "only",
        "all",
        "every",
        "each",
        "both",
    }
)


def _identity_words(words: list[str]) -> list[str]:
    """The words of a noun phrase that could change which object it names.

    Before the noun every word counts (an unknown adjective such as 'wooden' or 'teal' may
    pick another object). After the noun, manner and politeness words and '-ly' adverbs are
    dropped unless a qualifier ('under', 'that', 'not', ...) is among them, since then the tail
    describes the object and must be read or refused.
    """
    noun_at = [i for i, w in enumerate(words) if kind_of_noun(w) or w in GENERIC_OBJECT_WORDS]
    head, tail = (
        (words, []) if not noun_at else (words[: noun_at[-1] + 1], words[noun_at[-1] + 1 :])
    )
    known = [w for w in head if not (canonical_color(w) or kind_of_noun(w) or canonical_size(w))]
    if any(w in _QUALIFIER_WORDS for w in tail):
        return known + [w for w in tail if not canonical_size(w)]
    return known + [w for w in tail if not (w.endswith("ly") or w in _MANNER_WORDS)]


def _np_pattern() -> re.Pattern[str]:
    """A (spatial) noun phrase: "the leftmost block", "the bowl next to the drawer", ..."""
    colors = "|".join(sorted(color_words(), key=len, reverse=True))
    nouns = noun_pattern() + "|" + "|".join(sorted(GENERIC_OBJECT_WORDS))
    sups = "|".join([*_SUPERLATIVE_SIDES, *_LIGHTNESS_SUPERLATIVES, "other"])
    rels = "|".join(re.escape(r) for r in sorted(_RELATIONS, key=len, reverse=True))
    head = (
        rf"(?:(?P<sup>{sups})\s+)?(?:(?P<adj>left|right|front|back|rear|middle|cent(?:er|re))\s+)?"
        r"(?:(?:small|big|large|little|medium|tiny)\s+)?"
        rf"(?:(?P<color>{colors})\s+)?(?P<noun>{nouns})"
    )
    side = (
        r"(?:on|at|to|in|towards)\s+(?:the\s+)?(?:far\s+|very\s+)?"
        r"(?P<side>left|right|front|back|rear)(?:\s+(?:side|end|edge))?(?:\s+of the table)?"
        r"|in\s+the\s+(?P<mid>middle|cent(?:er|re))(?:\s+of the table)?"
    )
    ref = rf"(?:the\s+)?(?P<ref>{_LOCATION}|(?:(?:{colors})\s+)?(?:{noun_pattern()}))"
    qual = rf"\s+(?:(?:that|which)\s+(?:is|are)\s+|that's\s+)?(?:{side}|(?P<rel>{rels})\s+{ref})"
    return re.compile(rf"\bthe\s+{head}\b(?P<qual>{qual})?(?![a-z])")


# "the second block from the left" (Code as Policies): a rank along one side of the table.
_ORDINALS = {
    "first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2,
    "fourth": 3, "4th": 3, "fifth": 4, "5th": 4, "last": -1,
}  # fmt: skip
_ORDINAL_SIDES = {"top": "back", "bottom": "front", "far": "back", "near": "front", "rear": "back"}


def _ordinal_pattern() -> re.Pattern[str]:
    colors = "|".join(sorted(color_words(), key=len, reverse=True))
    nouns = noun_pattern() + "|" + "|".join(sorted(GENERIC_OBJECT_WORDS))
    return re.compile(
        rf"\bthe\s+(?P<rank>{'|'.join(_ORDINALS)})\s+(?:(?P<color>{colors})\s+)?"
        rf"(?P<noun>{nouns})\s+(?:from|on|at)\s+the\s+"
        r"(?P<side>left|right|top|bottom|front|back|far|near|rear)(?:\s+(?:side|edge|end))?\b"
    )


def _is_spatial(m: re.Match[str]) -> bool:
    """Whether a matched noun phrase says where its object is (not "the right one": correct)."""
    if m.group("adj") == "right" and m.group("noun") in GENERIC_OBJECT_WORDS:
        return bool(m.group("sup") or m.group("qual"))
    return bool(m.group("sup") or m.group("qual") or m.group("adj"))


def merge_superlatives(text: str) -> str:
    """Joins "left most" into "leftmost", "top most" into "topmost" (as CaP writes them)."""
    return re.sub(
        r"\b(left|right|front|back|rear|top|bottom|upper|lower)\s+most\b", r"\1most", text
    )


def _phrase_words(phrase: str) -> str:
    """Lower case, canonical colours, "left most" -> "leftmost", no punctuation."""
    text = re.sub(r"[^a-z0-9'\s]", " ", phrase.lower().replace("-", " "))
    text = merge_superlatives(normalise_color_phrases(" ".join(text.split())))
    return " ".join(canonical_color(w) or w for w in text.split())


class ObjectResolver:
    """Maps noun phrases ("the red cube", "the bowl next to the drawer") to scene object names.

    Args:
        object_names: what the robot sees now ("red block", ..., "drawer").
        positions: where perception puts them (name -> [x, y, z] m, world frame); spatial
            references ("the leftmost block") need them and say so when they are missing.
        recent: names referred to lately, oldest first; "the other one" is one not among them.
        default_kind: the kind "one" means ("the one on the left" while handling a block is a
            block); None: any object.
    """

    def __init__(
        self,
        object_names: list[str],
        positions: dict[str, Any] | None = None,
        recent: tuple[str, ...] | list[str] = (),
        default_kind: str | None = None,
    ) -> None:
        self.names = list(object_names)
        self.default_kind = default_kind
        self.positions = {n: [float(v) for v in p] for n, p in (positions or {}).items()}
        self.recent = [r for r in recent if r]

    def resolve(self, phrase: str) -> str:
        """The scene name for `phrase`.

        Raises:
            UnknownObjectError: nothing on the table matches, or several match equally well
                (two equally left blocks); the message names what was asked for.
        """
        text = _phrase_words(phrase)
        ordinal = _ordinal_pattern().fullmatch("the " + text.removeprefix("the ").strip())
        if ordinal:
            return self._ordinal(ordinal, phrase)
        m = _np_pattern().fullmatch("the " + text.removeprefix("the ").strip())
        if m and _is_spatial(m):
            return self._spatial(m, phrase)
        return self._plain(text, phrase)

    def _plain(self, text: str, phrase: str) -> str:
        words = text.split()
        if " ".join(w for w in words if w != "the") in self.names:
            return " ".join(w for w in words if w != "the")
        if "empty" in words and self.positions:
            return self._empty([w for w in words if w != "the"], phrase)
        colors = list(dict.fromkeys(w for w in words if canonical_color(w)))
        nouns = list(dict.fromkeys(k for k in map(kind_of_noun, words) if k))
        extra = [w for w in words if w in _RELATION_WORDS]
        if len(colors) > 1 or len(nouns) > 1 or extra:
            # Never drop words silently: "the green block next to the bowl" is not "green block".
            raise UnknownObjectError(
                f"{phrase!r} names more than one object or a relation the robot cannot place; "
                "name one object, e.g. 'the red block', or say where it is, e.g. 'the block "
                "on the left', 'the bowl next to the drawer'"
            )
        unread = [w for w in _identity_words(words) if w not in _NEUTRAL_WORDS]
        if unread:
            # A word the resolver cannot read may change which object is meant ("the red block
            # under the bowl"); refusing beats acting on the wrong object.
            raise UnknownObjectError(
                f"could not read {' '.join(unread)!r} in {phrase!r}; name the object by colour "
                "and kind ('the red block') or by where it is ('the block on the left')"
            )
        color = colors[0] if colors else None
        noun = nouns[0] if nouns else None
        if noun is None and self.default_kind and any(w in GENERIC_OBJECT_WORDS for w in words):
            noun = self.default_kind  # "the gray one" while stacking blocks is the gray block
        if noun is not None and object_kind(noun).furniture:  # named by its kind alone
            furniture = [n for n in self.names if kind_of_name(n) == noun]
            if furniture:
                return furniture[0]
        candidates = self._candidates(color, noun)
        if color is None and noun is None:
            raise UnknownObjectError(
                f"could not tell which object {phrase!r} means; objects: {self.names}"
            )
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            asked = " ".join(x for x in (color, noun) if x) or phrase
            raise UnknownObjectError(
                f"there is no {asked!r} on the table; objects: {self.names}."
                + did_you_mean(asked, self.names)
            )
        raise UnknownObjectError(
            f"{phrase!r} is ambiguous: it could be any of {candidates}; say which one"
        )

    def _candidates(self, color: str | None, kind: str | None) -> list[str]:
        """Scene objects (not furniture) of this colour and kind (None: any)."""
        return [
            n
            for n, parsed in ((n, parse_object_name(n)) for n in self.names)
            if parsed is not None
            and parsed[0] is not None
            and (color is None or parsed[0] == color)
            and (kind is None or parsed[1] == kind)
        ]

    # -- spatial -----------------------------------------------------------------------------
    def _xy(self, name: str, phrase: str) -> tuple[float, float]:
        if name not in self.positions:
            raise UnknownObjectError(
                f"{phrase!r} refers to where things are, but perception gave no position for "
                f"the {name}; name the object by colour instead (objects: {self.names})"
            )
        x, y = self.positions[name][:2]
        return x, y

    def _spatial(self, m: re.Match[str], phrase: str) -> str:
        sup, color, noun_word = m.group("sup"), m.group("color"), m.group("noun")
        kind = self.default_kind if noun_word in GENERIC_OBJECT_WORDS else kind_of_noun(noun_word)
        if sup == "other":
            return self._other(color, kind, phrase)
        if sup in _LIGHTNESS_SUPERLATIVES and not m.group("qual") and not m.group("adj"):
            return self._by_lightness(sup, color, kind, phrase)
        if not self.positions:
            raise UnknownObjectError(
                f"{phrase!r} refers to where things are, but no perceived positions were "
                "given; name the object by colour (e.g. 'the red block')"
            )
        rel = _RELATIONS.get(m.group("rel") or "")
        if rel == "sup":  # "the nearest bowl to ...", "the farthest block from ..."
            if sup in ("closest", "nearest"):
                rel = "near"
            elif sup in ("farthest", "furthest"):
                rel = "far"
            else:
                raise UnknownObjectError(
                    f"could not read {m.group('qual').strip()!r} in {phrase!r}; say e.g. 'the "
                    "block nearest the red bowl' or 'the leftmost block'"
                )
            sup = None
        said = [w.strip() for w in (sup, m.group("adj"), m.group("qual")) if w]
        if len(said) > 1:
            raise UnknownObjectError(
                f"{phrase!r} says where the object is twice ({' and '.join(map(repr, said))}); "
                f"say one, e.g. 'the {noun_word} {said[-1]}'"
            )
        ref_xy, ref_name = None, None
        if m.group("ref"):
            ref_xy, ref_name = self._reference(m.group("ref"), phrase)
        elif m.group("mid"):
            from corrigible.sim_envs.locations import location_xy

            ref_xy, rel = tuple(location_xy("middle")), "near"
        pool = [n for n in self._candidates(color, kind) if n != ref_name and n in self.positions]
        described = f"{color + ' ' if color else ''}{kind or 'object'}"
        if not pool:
            raise UnknownObjectError(
                f"{phrase!r} matches nothing: perception sees no {described} "
                f"(objects: {self.names})"
            )
        side = m.group("side")
        if m.group("adj") in ("middle", "center", "centre"):
            from corrigible.sim_envs.locations import location_xy

            ref_xy, rel = tuple(location_xy("middle")), "near"
        elif m.group("adj"):
            side = m.group("adj")
        if sup or side:
            side = _SUPERLATIVE_SIDES.get(sup or "", None) or _SIDE_WORDS.get(side, side)
            axis, sign = _SIDES[side]
            score = {n: sign * self._xy(n, phrase)[axis] for n in pool}
            return self._best(score, phrase, f"equally far to the {side}")
        assert ref_xy is not None and rel is not None
        where = f"the {ref_name}" if ref_name else m.group("ref") or "the middle"
        dist = {n: float(np.hypot(*(np.subtract(self._xy(n, phrase), ref_xy)))) for n in pool}
        if rel in _SIDES:
            axis, sign = _SIDES[rel]
            pool = [
                n for n in pool if sign * (self._xy(n, phrase)[axis] - ref_xy[axis]) > SIDE_MARGIN_M
            ]
            if not pool:
                raise UnknownObjectError(
                    f"{phrase!r} matches nothing: no {described} is {m.group('rel')} {where} "
                    f"(by more than {SIDE_MARGIN_M * 100:.0f} cm)"
                )
            return self._best({n: -dist[n] for n in pool}, phrase, f"equally close to {where}")
        sign = -1.0 if rel == "near" else 1.0
        word = "close to" if rel == "near" else "far from"
        return self._best({n: sign * dist[n] for n in pool}, phrase, f"equally {word} {where}")

    def _ordinal(self, m: re.Match[str], phrase: str) -> str:
        """The n-th candidate counted from one side ("the second block from the left")."""
        noun = m.group("noun")
        kind = self.default_kind if noun in GENERIC_OBJECT_WORDS else kind_of_noun(noun)
        pool = [n for n in self._candidates(m.group("color"), kind) if n in self.positions]
        side = _ORDINAL_SIDES.get(m.group("side"), m.group("side"))
        axis, sign = _SIDES[side]
        ranked = sorted(pool, key=lambda n: -sign * self._xy(n, phrase)[axis])
        rank = _ORDINALS[m.group("rank")]
        if not ranked or rank >= len(ranked):
            raise UnknownObjectError(
                f"{phrase!r}: there are only {len(ranked)} such objects (objects: {self.names})"
            )
        i = rank % len(ranked)
        coord = [sign * self._xy(n, phrase)[axis] for n in ranked]
        near = [
            j for j in (i - 1, i + 1) if 0 <= j < len(ranked) and abs(coord[j] - coord[i]) < TIE_M
        ]
        if near:
            raise UnknownObjectError(
                f"{phrase!r} is ambiguous: the {ranked[i]} and the {ranked[near[0]]} are equally "
                f"far to the {side} (within {TIE_M * 100:.0f} cm); say which one by colour"
            )
        return ranked[i]

    def _by_lightness(self, sup: str, color: str | None, kind: str | None, phrase: str) -> str:
        """The lightest (or darkest) candidate by its palette colour's luminance (Rec. 601)."""
        pool = self._candidates(color, kind)
        if not pool:
            raise UnknownObjectError(
                f"{phrase!r} matches nothing: there is no {kind or 'object'} "
                f"(objects: {self.names})"
            )
        sign = 1.0 if sup == "lightest" else -1.0
        score = {n: sign * luminance(parse_object_name(n)[0]) for n in pool}
        ranked = sorted(score, key=lambda n: -score[n])
        if len(ranked) > 1 and score[ranked[0]] - score[ranked[1]] < 0.05:
            raise UnknownObjectError(
                f"{phrase!r} is ambiguous: the {ranked[0]} and the {ranked[1]} are about as "
                f"{sup.removesuffix('est')}; say which one by colour"
            )
        return ranked[0]

    def _empty(self, words: list[str], phrase: str) -> str:
        """The one container of that description with nothing in it ('the empty bowl').

        Something is in a container when perception puts it inside the rim in the table plane
        (the kind's footprint radius less 1 cm, as the `in` predicate reads it).
        """
        rest = [w for w in words if w != "empty"]
        colors = [c for c in map(canonical_color, rest) if c]
        nouns = [k for k in map(kind_of_noun, rest) if k]
        pool = [
            n
            for n in self._candidates(colors[0] if colors else None, nouns[0] if nouns else None)
            if kind_of_name(n) in kind_names(container=True)
        ]
        if not pool:
            raise UnknownObjectError(f"{phrase!r}: there is no such container ({self.names})")
        empty = []
        for n in pool:
            centre = np.asarray(self._xy(n, phrase))
            rim = object_kind(kind_of_name(n)).footprint_radius_m - 0.01
            inside = [
                o
                for o in self.names
                if o != n
                and o in self.positions
                and kind_of_name(o) not in kind_names(furniture=True)
                and float(np.hypot(*(np.asarray(self.positions[o][:2]) - centre))) < rim
            ]
            if not inside:
                empty.append(n)
        if len(empty) == 1:
            return empty[0]
        if not empty:
            raise UnknownObjectError(
                f"{phrase!r} matches nothing: every one of {pool} holds something"
            )
        raise UnknownObjectError(f"{phrase!r} is ambiguous: {empty} are all empty; say which one")

    def _reference(self, ref: str, phrase: str) -> tuple[tuple[float, float], str | None]:
        """(x, y) of the reference ("the drawer", "the red block", "the middle"), its name."""
        if re.fullmatch(_LOCATION, ref):
            from corrigible.sim_envs.locations import canonical_location, location_xy

            x, y = location_xy(canonical_location(ref))
            return (float(x), float(y)), None
        name = self._plain(ref, ref)
        return self._xy(name, phrase), name

    @staticmethod
    def _best(score: dict[str, float], phrase: str, what: str) -> str:
        """The highest-scoring name; two within `TIE_M` are ambiguous, not a guess."""
        ranked = sorted(score, key=lambda n: -score[n])
        if len(ranked) > 1 and score[ranked[0]] - score[ranked[1]] < TIE_M:
            tied = [n for n in ranked if score[ranked[0]] - score[n] < TIE_M]
            raise UnknownObjectError(
                f"{phrase!r} is ambiguous: the {' and the '.join(tied)} are {what} (within "
                f"{TIE_M * 100:.0f} cm of each other); say which one, e.g. 'the {tied[0]}'"
            )
        return ranked[0]

    def _other(self, color: str | None, kind: str | None, phrase: str) -> str:
        """The other one: the one object like the recent ones that was not referred to."""
        if not self.recent:
            raise UnknownObjectError(
                f"{phrase!r}: nothing was referred to before, so there is no 'other' one; "
                "name the object, e.g. 'the red block'"
            )
        last = self.recent[-1]
        kind = kind or kind_of_name(last)
        others = [n for n in self._candidates(color, kind) if n not in self.recent]
        if len(others) == 1:
            return others[0]
        if not others:
            raise UnknownObjectError(
                f"{phrase!r} matches nothing: there is no {kind or 'object'} other than the "
                f"{' and the '.join(dict.fromkeys(self.recent))} (objects: {self.names})"
            )
        raise UnknownObjectError(
            f"{phrase!r} is ambiguous: besides the {last}, it could be any of {others}; "
            "say which one"
        )


def resolve_references(text: str, resolver: ObjectResolver) -> tuple[str, list[str]]:
    """`text` with each spatial noun phrase replaced by the scene name it picks.

    "put the block on the left in the bowl next to the drawer" becomes "put the green block in
    the blue bowl" (as perception places them). A phrase whose head already names one object
    ("the red block on the left") is left as it is: its tail may be a destination. Normalised
    text in (lower case, canonical colours).

    Returns:
        (the text, one note per replaced phrase: "'the block on the left' is the green block").

    Raises:
        UnknownObjectError: a spatial phrase matches nothing or is ambiguous (the message says
            which and why).
    """
    notes: list[str] = []

    def ordinal(m: re.Match[str]) -> str:
        name = resolver._ordinal(m, m.group(0))
        notes.append(f"{m.group(0)!r} is the {name}")
        return "the " + name

    text = _ordinal_pattern().sub(ordinal, text)
    out: list[str] = []
    last = 0
    for m in _np_pattern().finditer(text):
        if not _is_spatial(m):
            continue
        if not m.group("sup"):
            try:
                resolver._plain(f"{m.group('color') or ''} {m.group('noun')}".strip(), m.group(0))
                continue  # the head names one object already
            except UnknownObjectError:
                pass
        by = resolver
        if re.search(r"\b(?:in|into|inside|onto|on|to)\s+$", text[: m.start()]):
            # "put it in the one next to the drawer": a place, not the kind being handled.
            by = ObjectResolver(resolver.names, resolver.positions, resolver.recent)
        name = by.resolve(m.group(0))
        notes.append(f"{m.group(0)!r} is the {name}")
        out.append(text[last : m.start()] + "the " + name)
        last = m.end()
    out.append(text[last:])
    return "".join(out), notes


def _mentions_object(phrase: str) -> bool:
    if phrase.strip() in ("it", "that"):
        return True
    return any(canonical_color(w) or kind_of_noun(w) for w in phrase.split())


def mentioned_objects(*texts: str) -> list[ObjectRequest]:
    """Objects named as "<colour> <noun>" in any of the texts, so the layout can include them.

    Any noun of a requestable kind counts, singular or plural ("the red cube", "both blue
    dishes"); each (kind, colour) is asked for once, in order of first mention.
    """
    nouns = "|".join(re.escape(w) for w in kind_nouns(requestable=True))
    mention = re.compile(rf"\b([a-z]+)\s+({nouns})\b")
    seen: dict[tuple[str, str], ObjectRequest] = {}
    for text in texts:
        for word, noun in mention.findall((text or "").lower()):
            color, kind = canonical_color(word), kind_of_noun(noun)
            if color is not None and kind is not None and (kind, color) not in seen:
                seen[(kind, color)] = ObjectRequest(kind=kind, color=color)
    return list(seen.values())


def parse_skill_command(
    text: str, object_names: list[str], resolver: ObjectResolver | None = None
) -> list[SkillCall]:
    """Parses one skill-level phrasing into skill calls.

    `resolver` (with perceived positions) lets it read spatial references ("pick up the
    leftmost block"); without one, objects are named by colour and kind.

    Raises:
        ParseError: the phrasing is not a known skill command.
        UnknownObjectError: it names an object that is not on the table.
    """
    original = text
    text = _normalise(text)
    if not text:
        raise ParseError("empty command; try e.g. 'pick up the red block'")
    resolver = resolver or ObjectResolver(object_names)
    if re.fullmatch(
        r"(?:go|return|move|come)?\s*(?:back\s*)?(?:to\s*)?(?:the\s*)?"
        r"(?:home|home position|start)|reset|go back home",
        text,
    ):
        return [SkillCall("go_home")]
    m = re.fullmatch(r"(open|close|shut|pull open|push closed?)\s+(?:the\s+)?(.*drawer.*)", text)
    if m:
        skill = "open_drawer" if m.group(1) in ("open", "pull open") else "close_drawer"
        return [SkillCall(skill, {"drawer": resolver.resolve(m.group(2))})]
    m = re.fullmatch(rf"{_PUT}\s+(?:the\s+)?(.+?)\s+{_PREP}\s+(?:the\s+)?(.+)", text)
    if m and _mentions_object(m.group(1)):
        obj = resolver.resolve(m.group(1))
        target_phrase = m.group(2)
        try:
            target = resolver.resolve(target_phrase)
        except UnknownObjectError:
            from corrigible.sim_envs.locations import canonical_location

            try:
                target = canonical_location(target_phrase)
            except Exception:
                raise UnknownObjectError(
                    f"there is no {target_phrase!r} to put the {obj} on; objects: {object_names}"
                    + did_you_mean(target_phrase, object_names)
                ) from None
        return [SkillCall("put_first_on_second", {"obj": obj, "target": target})]
    m = re.fullmatch(rf"{_PICK}\s+(?:up\s+)?(?:the\s+)?(.+?)(?:\s+up)?", text)
    if m and _mentions_object(m.group(1)):
        return [SkillCall("pick", {"obj": resolver.resolve(m.group(1))})]
    m = re.fullmatch(
        r"(?:push|slide|shove|nudge)\s+(?:the\s+)?(.+?)\s+(?:to\s+the\s+|towards\s+the\s+|to\s+)?(left|right|forward|forwards|backward|backwards|back|away|closer)(?:\s+(.*))?",
        text,
    )
    if m:
        distance, rest = parse_magnitude(m.group(3) or "")
        rest = re.sub(r"\b(by|about|around|roughly)\b", " ", rest)
        if rest.strip():
            raise ParseError(f"did not understand {rest!r} in {original!r}")
        direction = _DIRECTION_WORDS[m.group(2)]
        return [
            SkillCall(
                "push",
                {"obj": resolver.resolve(m.group(1)), "direction": direction, "distance": distance},
            )
        ]
    declared = _declared_command(text, resolver)
    if declared is not None:
        return [declared]
    return [_parse_nudge(text, original)]


def _declared_command(text: str, resolver: ObjectResolver) -> SkillCall | None:
    """The call of a skill that declares command verbs ("tap the red block").

    The built-in skills' phrasings are the patterns above; a skill added later is commanded
    through its declaration alone ("tap the red block").
    """
    from corrigible.policies.skills.specs import skill_specs

    for spec in skill_specs():
        required = [a for a in spec.args if a.is_required]
        if not spec.command_verbs or len(required) != 1 or required[0].kind != "object":
            continue
        verbs = "|".join(re.escape(v) for v in spec.command_verbs)
        m = re.fullmatch(rf"(?:{verbs})\s+(?:on\s+)?(?:the\s+)?(.+)", text)
        if m and _mentions_object(m.group(1)):
            return SkillCall(spec.name, {required[0].name: resolver.resolve(m.group(1))})
    return None


def _parse_nudge(text: str, original: str) -> SkillCall:
    distance, rest = parse_magnitude(text)
    rest = re.sub(
        r"\b(move|go|shift|get|bring it|take it|it|the|gripper|hand|arm|a|to|more|bit|little"
        r"|towards?|further|position|your|yourself)\b",
        " ",
        " " + rest + " ",
    )
    found = None
    for phrase in sorted(_DIRECTION_WORDS, key=len, reverse=True):
        pattern = rf"\b{re.escape(phrase)}\b"
        if re.search(pattern, rest):
            found = _DIRECTION_WORDS[phrase]
            rest = re.sub(pattern, " ", rest, count=1)
            break
    leftover = " ".join(rest.split())
    if found is None or leftover:
        raise ParseError(
            f"did not understand {original!r}"
            + (f" (could not read {leftover!r})" if leftover and found else "")
            + "; try 'pick up the red block', 'put the red block in the blue bowl', "
            "'move a bit to the left', 'open the drawer' or 'go home'"
        )
    from corrigible.policies.skills.library import DIRECTIONS

    delta = [round(v * distance, 4) for v in DIRECTIONS[found]]
    return SkillCall("move_ee", {"delta": delta})
