"""The skill-level language front end: phrasings in, skill calls out.

Covers what a person says to a single skill ("pick up the red block", "grab the red cube",
"move a bit to the left", "go up slightly", "a lot lower", "put the red block in the blue bowl",
"open the drawer"). Vague magnitudes map to metres through `MAGNITUDES`. Anything not
understood raises `ParseError` naming the words it could not read; objects that are not on the
table raise `UnknownObjectError` with a suggestion.

Nouns ("cube" is a block, "dishes" are bowls), colour words and the "<colour> <kind>" naming
convention come from `sim_envs.vocabulary`, so a newly registered kind of object is understood
here without changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from corrigible.errors import ParseError, UnknownObjectError, did_you_mean
from corrigible.sim_envs.layout import ObjectRequest
from corrigible.sim_envs.vocabulary import (
    canonical_color,
    kind_nouns,
    kind_of_name,
    kind_of_noun,
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
        words = [canonical_color(w) or w for w in phrase.replace("the ", " ").split()]
        clean = " ".join(words)
        if clean in self.names:
            return clean
        colors = list(dict.fromkeys(w for w in words if canonical_color(w)))
        nouns = list(dict.fromkeys(k for k in map(kind_of_noun, words) if k))
        extra = [w for w in words if w in _RELATION_WORDS]
        if len(colors) > 1 or len(nouns) > 1 or extra:
            # Never drop words silently: "the green block next to the bowl" is not "green block".
            raise UnknownObjectError(
                f"{phrase!r} names more than one object or a relation; "
                "name one object, e.g. 'the red block'"
            )
        color = colors[0] if colors else None
        noun = nouns[0] if nouns else None
        if noun is not None and object_kind(noun).furniture:  # named by its kind alone
            furniture = [n for n in self.names if kind_of_name(n) == noun]
            if furniture:
                return furniture[0]
        candidates = [
            n
            for n, parsed in ((n, parse_object_name(n)) for n in self.names)
            if parsed is not None
            and (color is None or parsed[0] == color)
            and (noun is None or parsed[1] == noun)
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
