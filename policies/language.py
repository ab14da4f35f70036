"""The skill-level language front end: phrasings in, skill calls out.

Covers what a person says to a single skill ("pick up the red block", "grab the red cube",
"move a bit to the left", "go up slightly", "a lot lower", "put the red block in the blue bowl",
"open the drawer"). Vague magnitudes map to metres through `MAGNITUDES`. Anything not
understood raises `ParseError` naming the words it could not read; objects that are not on the
table raise `UnknownObjectError` with a suggestion.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from corrigible.errors import ParseError, UnknownObjectError, did_you_mean
from corrigible.sim_envs.palette import COLOR_SYNONYMS, COLORS

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
_NOUNS: dict[str, str] = {
    "block": "block",
    "cube": "block",
    "box": "block",
    "brick": "block",
    "cylinder": "cylinder",
    "can": "cylinder",
    "bowl": "bowl",
    "dish": "bowl",
    "drawer": "drawer",
}
_PICK = r"(?:pick up|pick|grab|grasp|take|lift|get|hold)"
_PUT = r"(?:put|place|drop|set|move|bring|transfer|stack|carry)"
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


class ObjectResolver:
    """Maps noun phrases ("the red cube") to scene object names ("red block")."""

    def __init__(self, object_names: list[str]) -> None:
        self.names = list(object_names)

    def resolve(self, phrase: str) -> str:
        """The scene name for `phrase`.

        Raises:
            UnknownObjectError: nothing on the table matches; names what was asked for.
        """
        words = [COLOR_SYNONYMS.get(w, w) for w in phrase.replace("the ", " ").split()]
        clean = " ".join(words)
        if clean in self.names:
            return clean
        colors = list(dict.fromkeys(w for w in words if w in COLORS))
        nouns = list(dict.fromkeys(_NOUNS[w.rstrip("s")] for w in words if w.rstrip("s") in _NOUNS))
        extra = [w for w in words if w in _RELATION_WORDS]
        if len(colors) > 1 or len(nouns) > 1 or extra:
            # Never drop words silently: "the green block next to the bowl" is not "green block".
            raise UnknownObjectError(
                f"{phrase!r} names more than one object or a relation; "
                "name one object, e.g. 'the red block'"
            )
        color = colors[0] if colors else None
        noun = nouns[0] if nouns else None
        if noun == "drawer":
            drawers = [n for n in self.names if "drawer" in n]
            if drawers:
                return drawers[0]
        candidates = [
            n
            for n in self.names
            if (color is None or n.startswith(color + " ")) and (noun is None or n.endswith(noun))
        ]
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


def _mentions_object(phrase: str) -> bool:
    words = [COLOR_SYNONYMS.get(w, w).rstrip("s") for w in phrase.split()]
    return any(w in COLORS or w in _NOUNS for w in words) or phrase.strip() in ("it", "that")


def parse_skill_command(text: str, object_names: list[str]) -> list[SkillCall]:
    """Parses one skill-level phrasing into skill calls.

    Raises:
        ParseError: the phrasing is not a known skill command.
        UnknownObjectError: it names an object that is not on the table.
    """
    original = text
    text = _normalise(text)
    if not text:
        raise ParseError("empty command; try e.g. 'pick up the red block'")
    resolver = ObjectResolver(object_names)
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
    return [_parse_nudge(text, original)]


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
