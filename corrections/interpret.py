"""Turns a routed correction into typed effects the controller, planner and memory can apply.

One interpreter per route label, registered in `INTERPRETERS`:

- `skill` -> `SkillParamChange` list ("a bit more to the left" -> offset_y +0.03 m),
- `plan` -> `TargetSubstitution`, `ObjectSubstitution`, `AddedPrecondition`, `Ordering`,
- `preference` -> `PreferenceMapping` list ("always put cubes in the drawer"),
- `control` -> `ControlCommand` ("hold on" -> pause).

Anything not understood raises `ParseError` naming the words; an object that is not visible
raises `UnknownObjectError` naming it (with a "did you mean"). The full phrase -> parameter table
and the magnitude mapping are in corrections/README.md.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

from corrigible.corrections.router import LABELS, Label, normalise
from corrigible.errors import ParseError, UnknownObjectError, did_you_mean
from corrigible.memory.effects import (
    AddedPrecondition,
    ControlCommand,
    Effect,
    ObjectSubstitution,
    Ordering,
    PreferenceMapping,
    SkillParamChange,
    TargetSubstitution,
)
from corrigible.policies.language import (
    DEFAULT_MAGNITUDE,
    ObjectResolver,
    parse_magnitude,
    parse_turn,
)
from corrigible.policies.skills.specs import generic_params, skill_of_words
from corrigible.registry import Registry
from corrigible.sim_envs.vocabulary import (
    GENERIC_OBJECT_WORDS,
    canonical_color,
    canonical_size,
    color_words,
    is_plural,
    kind_names,
    kind_of_noun,
    noun_words,
    shape_of_kind,
)

# The effects themselves (SkillParamChange, TargetSubstitution, ...) are the one schema in
# memory/effects.py, shared with the correction loop, distillation and the knowledge base.


@dataclass(frozen=True, kw_only=True)
class InterpretContext:
    """What the interpreter may know about the moment the correction arrived."""

    visible_objects: tuple[str, ...] = ()  # scene names ("red block") that may be referred to
    current_skill: str | None = None  # skill running when corrected, e.g. "pick"
    current_object: str | None = None  # object the robot is acting on
    # Perceived positions (name -> x, y, z m) for spatial references ("the bowl next to the
    # drawer", "the one on the left"); empty: objects are named by colour and kind only.
    positions: Mapping[str, Sequence[float]] = field(default_factory=dict)
    current_target: str | None = None  # where it is taking it


@dataclass(frozen=True, kw_only=True)
class Interpretation:
    """The effects of one correction."""

    label: Label
    text: str
    effects: tuple[Effect, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        return {
            "label": self.label,
            "text": self.text,
            "effects": [e.to_dict() for e in self.effects],
        }


# --------------------------------------------------------------------------- shared helpers

_LOCATION_RE = re.compile(
    r"\b(?:(?:top|bottom) (?:left|right) corner|(?:top|bottom|left|right) (?:side|edge)|"
    r"middle(?: of the table)?|cent(?:er|re)(?: of the table)?)\b"
)


@cache
def _typo_vocab(nouns: tuple[str, ...]) -> list[str]:
    """Colour and noun words a near-miss is snapped to (rebuilt when kinds are registered)."""
    return [*color_words(), *sorted(nouns)]


def _fix_typos(text: str) -> str:
    """Snaps near-miss colour/noun words ("bleu", "cylindr", "drawr") to the vocabulary.

    Words of 5+ letters match at difflib ratio >= 0.75. A 4-letter word is only corrected when
    it is a transposition (same letters), because at that length real words sit close to the
    vocabulary: "grab" ~ "gray" and "pick" ~ "pink" score 0.75.
    """
    words = []
    vocab = _typo_vocab(noun_words())
    for word in text.split():
        if len(word) >= 4 and word not in vocab:
            match = difflib.get_close_matches(word, vocab, n=1, cutoff=0.75)
            if match and (len(word) >= 5 or sorted(match[0]) == sorted(word)):
                word = match[0]
        words.append(word)
    return " ".join(words)


def _clean(text: str) -> str:
    return _fix_typos(normalise(text))


@dataclass(frozen=True)
class _Phrase:
    """A noun phrase found in the text: colour and/or noun, its position and its role marks."""

    text: str  # e.g. "red block", "red one", "drawer", "top left corner"
    color: str | None
    noun: str | None  # canonical noun, None for "one/thing"
    start: int
    is_negated: bool
    after_place_prep: bool  # follows in/into/on/onto/to/inside
    is_location: bool = False
    position: str | None = None  # "left"/"right"/... for "the left bowl"

    @property
    def is_container(self) -> bool:
        return self.is_location or self.noun in ("bowl", "drawer")


@cache
def _phrase_re(nouns: tuple[str, ...]) -> re.Pattern[str]:
    """A colour and/or noun phrase, or a bare colour (rebuilt when kinds are registered)."""
    colors = "|".join(color_words())
    return re.compile(
        rf"\b(?:(?P<color>{colors})\s+)?"
        r"(?:(?P<pos>left|right|middle|top|bottom|first|second|third)\s+)?"
        r"(?P<noun>"
        + "|".join(sorted(nouns, key=len, reverse=True))
        + r"|"
        + "|".join(sorted(GENERIC_OBJECT_WORDS))
        + r")\b"
        rf"|\b(?P<bare_color>{colors})\b"
    )


# A phrase is negated when a negator precedes it with at most two function words between
# ("not the red block", "rather than in the bowl"). A sentence-initial "no" is an interjection
# ("no, the blue bowl"), so "no" is deliberately not a negator.
_NEGATORS = re.compile(
    r"\b(?:not|rather than|instead of|wrong|leave|except|other than)\s+"
    r"(?:(?:the|a|an|that|this|those|these|on|in|into|to|onto|it|put|use|my)\s+){0,2}$"
)
_PLACE_PREP = re.compile(
    r"\b(?:in|into|on|onto|to|inside|on top of|in the middle of)\s+(?:the\s+)?$"
)


def _phrases(text: str) -> list[_Phrase]:
    found: list[_Phrase] = []
    for loc in _LOCATION_RE.finditer(text):
        before = text[: loc.start()]
        found.append(
            _Phrase(
                text=loc.group(0),
                color=None,
                noun=None,
                start=loc.start(),
                is_negated=bool(_NEGATORS.search(before)),
                after_place_prep=bool(_PLACE_PREP.search(before)),
                is_location=True,
            )
        )
    taken = [(m.start(), m.end()) for m in _LOCATION_RE.finditer(text)]
    for m in _phrase_re(noun_words()).finditer(text):
        if any(s <= m.start() < e for s, e in taken):
            continue
        raw_color = m.group("color") or m.group("bare_color")
        color = canonical_color(raw_color) if raw_color else None
        noun_word = m.group("noun")
        noun = kind_of_noun(noun_word) if noun_word else None
        if noun_word in GENERIC_OBJECT_WORDS and color is None and m.group("pos") is None:
            # "that one", "the things": only meaningful with a colour or with "other".
            if not re.search(r"\bother\s+$", text[: m.start()]):
                continue
        before = text[: m.start()]
        found.append(
            _Phrase(
                text=m.group(0),
                color=color,
                noun=noun,
                start=m.start(),
                is_negated=bool(_NEGATORS.search(before)),
                after_place_prep=bool(_PLACE_PREP.search(before)),
                position=m.group("pos"),
            )
        )
    return sorted(found, key=lambda p: p.start)


def _resolve(phrase: _Phrase, ctx: InterpretContext) -> str:
    """The visible object name (or canonical location) a phrase refers to.

    Raises:
        UnknownObjectError: nothing visible matches; the message names the phrase.
    """
    if phrase.is_location:
        from corrigible.sim_envs.locations import canonical_location

        # canonical_location drops "the " before its alias lookup, so "middle of the table"
        # would miss its alias; the "of the table" tail adds nothing, so drop it here.
        return canonical_location(re.sub(r"\s+of the table$", "", phrase.text))
    names = list(ctx.visible_objects)
    if not names:
        raise UnknownObjectError(
            f"cannot resolve {phrase.text!r}: no visible objects were given; pass the scene's "
            "object names (InterpretContext.visible_objects or `--visible`)"
        )
    query = " ".join(x for x in (phrase.color, phrase.noun) if x)
    if phrase.noun is None and phrase.color is not None:
        # "the yellow one": prefer the kind of thing currently being handled.
        matches = [n for n in names if n.startswith(phrase.color + " ")]
        if ctx.current_object and len(matches) > 1:
            kind = ctx.current_object.split()[-1]
            matches = [n for n in matches if n.endswith(kind)] or matches
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise UnknownObjectError(
                f"there is no {phrase.color} object on the table (asked for {phrase.text!r}); "
                f"objects: {names}." + did_you_mean(phrase.text, names)
            )
        raise UnknownObjectError(
            f"{phrase.text!r} is ambiguous: it could be any of {matches}; say which one"
        )
    if phrase.position is not None and phrase.color is None:
        raise UnknownObjectError(
            f"cannot tell which object {phrase.text!r} is from its position alone; name its "
            f"colour (objects: {names})"
        )
    return ObjectResolver(names).resolve(query)


def _resolve_other(ctx: InterpretContext, noun: str | None) -> ObjectSubstitution:
    """The "other one/block": the single other visible object of the same kind, if unique."""
    kind = noun or (ctx.current_object.split()[-1] if ctx.current_object else None)
    others = [
        n
        for n in ctx.visible_objects
        if n != ctx.current_object and (kind is None or n.endswith(kind))
    ]
    if len(others) == 1:
        return ObjectSubstitution(new_object=others[0], excluded=ctx.current_object)
    return ObjectSubstitution(new_object=None, excluded=ctx.current_object)


# --------------------------------------------------------------------------- skill

# Extra vague magnitudes parse_magnitude does not know (m); checked only when it found none.
_EXTRA_MAGNITUDES: dict[str, float] = {
    "a smidge": 0.01,
    "a smidgen": 0.01,
    "a hair": 0.005,
    "a notch": 0.02,
    "lil bit": 0.02,
    "tiny bit": 0.01,
    "little bit": 0.02,
    "bit": 0.03,
    "little": 0.02,
}
# Fine parameters (heights inside a ~4 cm object) default to 1 cm and scale vague words by 1/3.
_FINE_PARAMS = frozenset({"height", "grasp_height", "release_height", "contact_height"})
_FINE_DEFAULT = 0.01  # m for "grasp it lower"
_FINE_SCALE = 1 / 3
# Speed factors by how much was said: small ("a bit", "slightly"), unqualified, large ("a lot").
_SLOWER = {"small": 0.75, "default": 0.5, "large": 0.25}
_FASTER = {"small": 1.25, "default": 1.5, "large": 2.0}

_DIRS: tuple[tuple[str, str, float], ...] = (
    # (regex, axis, sign): the direction the person wants the gripper to go.
    (r"left|leftwards|lefter", "y", +1.0),
    (r"right|rightwards|rite", "y", -1.0),
    (r"forwards?|ahead|front|away|short|reach|further out|farther out", "x", +1.0),
    (r"back|backwards?|closer|towards me|toward me", "x", -1.0),
    (r"up|higher|high|raise", "z", +1.0),
    (r"down|lower|low|lowr", "z", -1.0),
)
_SPEED_DIRS: tuple[tuple[str, float], ...] = (
    (
        r"slow(?:er|ly)?|gentl[ey]|gentler|carefully|ease off|ease up|easy|"
        r"(?:don't|do not|no|not|stop|without) rush(?:ing)?|take (?:your|its|it) time",
        -1.0,
    ),
    (r"fast(?:er)?|quick(?:er|ly)?|speed (?:it )?up|hurry", +1.0),
)
# "No need to be that slow": a slowness said not to be needed asks for more speed.
_NOT_NEEDED_RE = re.compile(r"\b(?:no need|needn't|don't need|do not need|overly)\b")
# Where a speed change belongs when the words say which motion: carrying vs lifting.
_CARRY_RE = re.compile(
    r"\b(?:carry|carrying|across|on the way over|over there|while (?:you're|you are) holding|"
    r"while holding|move it|moving it)\b"
)
_LIFT_RE = re.compile(r"\b(?:lift|lifting|raise|raising|on the way up|pick it up)\b")
# A description of what fell or slipped, with no other cue: the motion was too fast.
_FELL_RE = re.compile(r"\b(?:slipped|slipping|slips|fell|falls|falling|dropped|dropping)\b")
_INVERT_RE = re.compile(
    r"\b(?:too|off|not so|don't|do not|less|so much|overshot|overshooting|past)\b"
)
_DRAWER_RE = re.compile(r"\b(?:drawers?|pull|yank|tug|handle)\b")
_MORE_RE = re.compile(
    r"\b(?:further|farther|more|wider|out|enough|another|harder|all the way|barely|stuck)\b"
)


def _magnitude(text: str, param: str) -> float:
    """Metres for a distance change of `param` said in `text` (see README for the table)."""
    text = re.sub(r"\btoo far\b|\bfar enough\b|\bso far\b", " ", text)
    metres, rest = parse_magnitude(text)
    said_units = re.search(r"\d\s*(?:cm|mm|m)\b|\d\s*(?:centi|milli)", text) is not None
    if rest == text:  # parse_magnitude found nothing
        metres = next(
            (v for k, v in _EXTRA_MAGNITUDES.items() if re.search(rf"\b{k}\b", text)),
            DEFAULT_MAGNITUDE,
        )
        vague_found = metres != DEFAULT_MAGNITUDE or any(
            re.search(rf"\b{k}\b", text) for k in _EXTRA_MAGNITUDES
        )
    else:
        vague_found = True
    if param in _FINE_PARAMS and not said_units:
        return round(metres * _FINE_SCALE, 4) if vague_found else _FINE_DEFAULT
    return round(metres, 4)


def _size(text: str) -> str:
    if re.search(r"\b(?:a lot|much|way|waa+y|really|very much|a great deal)\b", text):
        return "large"
    if re.search(
        r"\b(?:a bit|bit|slightly|a little|little|a tad|tad|a touch|notch|smidge|hair)\b", text
    ):
        return "small"
    return "default"


def _clauses(text: str) -> list[str]:
    """The cleaned clauses of the raw `text` (split before normalising drops the commas)."""
    parts = re.split(r"[,;:]|\bthen\b|\band\b|\bbut\b", text.lower())
    return [c for c in (_clean(p) for p in parts) if c]


def _skill_of(text: str, ctx: InterpretContext) -> str | None:
    """The skill the correction's verb names (skill declarations), else the running one."""
    return skill_of_words(text) or ctx.current_skill


def _change(
    skill: str | None, generic: str, delta: float | None, factor: float | None, reason: str
) -> SkillParamChange:
    """A change on `skill` if it has the parameter, else on the current skill (skill=None)."""
    per_skill = generic_params()[generic]
    if skill is not None and skill in per_skill:
        return SkillParamChange(
            skill=skill,
            param=per_skill[skill],
            delta=delta,
            factor=factor,
            reason=reason,
        )
    return SkillParamChange(skill=None, param=generic, delta=delta, factor=factor, reason=reason)


# Turning the hand about the vertical: the gripper's yaw at the grasp or at the place
# ("turn the gripper 90 degrees", "rotate your hand a bit when you grab it", "twist it a
# quarter turn before you put it down"). Amounts: `policies.language.parse_turn`.
_TURN_VERB_RE = re.compile(r"\b(?:rotat\w*|turn(?:ed|ing|s)?|twist\w*|spin\w*|swivel\w*|yaw)\b")
_TURN_WHAT_RE = re.compile(
    r"\b(?:gripper|hand|wrist|fingers|claw|it|degrees?|deg|radians?|rad|quarter|half|"
    r"(?:anti|counter)?\s*clockwise|angle)\b|\d\s*°"
)
_TURN_ALIGN_RE = re.compile(r"\b(?:line[sd]? up|lining up|align\w*|straight\w*|square\w*)\b")


def _yaw_change(clean: str, skill: str | None, raw: str) -> SkillParamChange | None:
    """A gripper-yaw change when the correction turns the hand, else None.

    The amount is read from the `raw` text: normalising drops a decimal point ("1.2 rad").

    Raises:
        ParseError: it asks to line the hand up without saying by how much (the skill already
            lines its grasp up with what it sees; a turn needs an amount or a direction).
    """
    if not (_TURN_VERB_RE.search(clean) and _TURN_WHAT_RE.search(clean)):
        return None
    rad, said = parse_turn(" ".join(raw.lower().split()))
    if not said and _TURN_ALIGN_RE.search(clean):
        raise ParseError(
            f"understood a turn of the gripper in {clean!r} but not how far; say e.g. 'turn "
            "the gripper 20 degrees' or 'a quarter turn clockwise'"
        )
    if re.search(r"\b(?:too much|too far|less|back|undo|other way)\b", clean):
        rad = -rad
    return _change(skill, "yaw", round(rad, 4), None, clean)


def _interpret_skill(text: str, ctx: InterpretContext) -> list[Effect]:
    clean = _clean(text)
    skill = _skill_of(clean, ctx)
    turn = _yaw_change(clean, skill, text)
    if turn is not None:
        return [turn]
    # Speed first: "come down more slowly" is a speed change, not a height change.
    speeds: dict[tuple[str | None, str], SkillParamChange] = {}
    for clause in _clauses(text):
        for pattern, sign in _SPEED_DIRS:
            if not re.search(rf"\b(?:{pattern})\b", clause):
                continue
            sign = -sign if re.search(r"\b(?:too|not so|so)\b", clause) else sign
            if sign < 0 and _NOT_NEEDED_RE.search(clause):
                sign = -sign
            table = _FASTER if sign > 0 else _SLOWER
            generic = (
                "descend_speed"
                if re.search(r"\b(?:descend|come down|coming down|lower(?:ing)?)\b", clause)
                else "speed"
            )
            size = table[_size(clause)]
            for target in _speed_skills(clean, skill, generic, sign):
                change = _change(target, generic, None, size, clause)
                # "still too fast, lift even slower" says one change twice: apply it once, as
                # strongly as it was said ("gently now, a lot slower" is "a lot slower").
                key = (change.skill, change.param)
                factor = speeds[key].factor if key in speeds else None
                if factor is None or abs(math.log(size)) > abs(math.log(factor or 1)):
                    speeds[key] = change
            break
    if speeds:
        return list(speeds.values())
    sideways = re.search(r"\b(?:left|right|leftwards|rightwards)\b", clean) is not None
    on_drawer = ctx.current_skill in ("open_drawer", "close_drawer")
    if (
        (_DRAWER_RE.search(clean) or on_drawer)
        and _MORE_RE.search(clean)
        and not sideways
        and not re.search(r"\b(?:reach|forwards?|back|backwards?|up|down|higher|lower)\b", clean)
    ):
        sign = -1.0 if re.search(r"\b(?:less|too far|not so far|too much)\b", clean) else 1.0
        return [
            _change(
                "open_drawer",
                "pull_distance",
                sign * _magnitude(clean, "pull_distance"),
                None,
                clean,
            )
        ]
    if re.search(r"\b(?:push|shove)\b", clean) and re.search(r"\b(?:further|more|less)\b", clean):
        sign = -1.0 if re.search(r"\bless\b", clean) else 1.0
        return [_change("push", "distance", sign * _magnitude(clean, "distance"), None, clean)]
    candidates: list[tuple[bool, str, str, float]] = []  # (inverted, clause, axis, sign)
    for clause in _clauses(text):
        for pattern, axis, sign in _DIRS:
            if re.search(rf"\b(?:{pattern})\b", clause):
                inverted = bool(_INVERT_RE.search(clause))
                candidates.append((inverted, clause, axis, -sign if inverted else sign))
                break
    if not candidates and _FELL_RE.search(clean) and not re.search(r"\bshort\b", clean):
        # "it slipped out", "it fell off on the way over": it went too fast for its grip.
        return [
            _change(target, "speed", None, _SLOWER["default"], clean)
            for target in _speed_skills(clean, skill, "speed", -1)
        ]
    if not candidates:
        raise ParseError(
            f"did not understand the skill correction {text!r}: found no direction, height, "
            "speed or distance word; try e.g. 'a bit more to the left', 'grasp it lower', "
            "'slower', 'pull the drawer further'"
        )
    # An imperative clause ("go left") beats a description ("you're off to the right").
    imperative = [c for c in candidates if not c[0]]
    _, clause, axis, sign = imperative[-1] if imperative else candidates[0]
    if axis == "z":
        if re.search(r"\b(?:lift|lifting|raise|raising)\b", clean):
            skill, generic = "pick", "lift_height"
        elif re.search(
            r"\b(?:approach|hover|carry|carrying|transit|before you move|before moving|across|"
            r"moving over|when moving|while moving|over the)\b",
            clean,
        ):
            if re.search(r"\b(?:carry|carrying|hover|over the)\b", clean):
                skill = "place"
            generic = "approach_height"
        else:
            generic = "height"
    else:
        generic = "offset_y" if axis == "y" else "offset_x"
    if generic in ("offset_y", "offset_x", "height") and (
        re.search(r"\bhandle\b", clean) or (on_drawer and "drawer" in clean)
    ):
        # "grab the handle further right": where on the handle, not the pick skill.
        skill = ctx.current_skill if on_drawer else "open_drawer"
    return [_change(skill, generic, sign * _magnitude(clean, generic), None, clause)]


def _speed_skills(clean: str, skill: str | None, generic: str, sign: int) -> list[str | None]:
    """The skills a speed change is for.

    "Much more gently" said while picking, naming neither the lift nor the carry, is about
    handling the object: the carry that follows is slowed too (a person who saw it slip does
    not mean "lift gently, then rush it across"). Named motions, speed-ups and descents keep
    to one skill.
    """
    one = _speed_skill(clean, skill)
    if one == "pick" == skill and generic == "speed" and sign < 0 and not _LIFT_RE.search(clean):
        return ["pick", "place"]
    return [one]


def _speed_skill(clean: str, skill: str | None) -> str | None:
    """The skill a speed change is for: the carry (place) or the lift (pick) when named."""
    if _CARRY_RE.search(clean) and skill in ("pick", "place", None):
        return "place"
    if _LIFT_RE.search(clean) and skill in ("pick", "place", None):
        return "pick"
    return skill


# --------------------------------------------------------------------------- plan

_DRAWER_STEP_RE = re.compile(r"\b(open|opened|close|closed|shut)\b")


def _names_class(phrase: _Phrase) -> bool:
    """Whether a phrase names a class of objects ("blue ones", "cylinders"), not one object."""
    last = phrase.text.split()[-1]
    return last in ("ones", "things", "objects", "items") or is_plural(last)


def _spatial_names(clean: str, ctx: InterpretContext) -> str:
    """`clean` with spatial references replaced by the perceived objects they pick.

    "no, the bowl next to the drawer" reads as "no, the blue bowl" when perception places the
    blue bowl there; "the other one" keeps its own handling (it also says what to exclude).
    Ambiguous or unmatched references raise UnknownObjectError saying why.
    """
    if not ctx.positions or re.search(r"\bother\b", clean):
        return clean
    from corrigible.policies.language import resolve_references
    from corrigible.sim_envs.vocabulary import kind_of_name

    recent = [n for n in (ctx.current_object, ctx.current_target) if n]
    # "the one on the left" while handling a block means a block.
    kind = kind_of_name(ctx.current_object) if ctx.current_object else None
    resolver = ObjectResolver(list(ctx.visible_objects), dict(ctx.positions), recent, kind)
    return resolve_references(clean, resolver)[0]


def _interpret_plan(text: str, ctx: InterpretContext) -> list[Effect]:
    clean = _spatial_names(_clean(text), ctx)
    effects: list[Effect] = []
    drawer_names = [n for n in ctx.visible_objects if "drawer" in n]
    drawer = drawer_names[0] if drawer_names else "drawer"
    step = _DRAWER_STEP_RE.search(clean)
    if (
        step
        and "drawer" in clean
        and re.search(
            r"\b(?:first|before|forgot|forget|need|have to|must|missed|skipped|should|after|"
            r"has to)\b",
            clean,
        )
    ):
        skill = "open_drawer" if step.group(1).startswith("open") else "close_drawer"
        return [AddedPrecondition(skill=skill, obj=drawer)]
    if re.search(r"\b(?:pick it up|grab it|grasp it)\b.*\bfirst\b", clean):
        return [AddedPrecondition(skill="pick", obj=ctx.current_object)]
    if _SAME_RE.search(clean):  # "in the bowl of the same colour": a target per object
        same = _mapping_in(clean, ctx, is_negative=False)
        if same is not None and same.same_attribute:
            return [same]
    avoided = re.search(r"\b(?:don't|do not|not|never|stop) (?:use|using|put it in)\b", clean)
    if avoided:  # "don't use the green bowl": the target to avoid, not the one to use
        named = [p for p in _phrases(clean[avoided.end() :]) if p.is_container and p.color]
        if named:
            excluded = _resolve(named[0], ctx)
            kind = excluded.split()[-1]
            others = [
                n
                for n in ctx.visible_objects
                if n.split()[-1] == kind and n not in (excluded, ctx.current_object)
            ]
            return [
                TargetSubstitution(
                    new_target=others[0] if len(others) == 1 else None, excluded=excluded
                )
            ]
    phrases = _phrases(clean)
    if re.search(r"\b(?:first|last|before|after|then|order)\b", clean):
        ordered = [p for p in phrases if not p.is_negated]
        if re.search(r"\b(?:other|reverse|swap)\b.*\border\b|\bswap\b", clean) and len(ordered) < 2:
            raise ParseError(
                f"understood that the order should change in {text!r} but not which objects; "
                "say e.g. 'do the blue block first'"
            )
        # "the blue ones first", "cylinders last": a class of objects, an order by attributes.
        if any(_names_class(p) for p in ordered):
            standing = _standing_order(clean, ctx)
            if standing is not None:
                return [standing]
        if ordered:
            names = [_resolve(p, ctx) for p in ordered]
            if re.search(r"\blast\b", clean) and len(names) == 1:
                return [Ordering(last=names[0])]
            return [Ordering(first=names[0], last=names[1] if len(names) > 1 else None)]
    if re.search(r"\b(?:other|different)\b", clean) and not any(
        p.color for p in phrases if not p.is_negated
    ):
        noun = next((p.noun for p in phrases if p.noun), None)
        if noun in ("bowl", "drawer"):
            others = [
                n for n in ctx.visible_objects if n.endswith(noun) and n != ctx.current_target
            ]
            return [
                TargetSubstitution(
                    new_target=others[0] if len(others) == 1 else None,
                    excluded=ctx.current_target,
                )
            ]
        return [_resolve_other(ctx, noun)]
    wanted = [p for p in phrases if not p.is_negated]
    targets = [p for p in wanted if p.is_container or p.after_place_prep]
    objects = [p for p in wanted if p not in targets]
    if targets:
        effects.append(TargetSubstitution(new_target=_resolve(targets[0], ctx)))
        coloured = [p for p in objects if p.color]
        if coloured:
            effects.insert(0, ObjectSubstitution(new_object=_resolve(coloured[0], ctx)))
        return effects
    if objects:
        return [
            ObjectSubstitution(new_object=_resolve(objects[0], ctx), excluded=ctx.current_object)
        ]
    if re.search(r"\b(?:wrong|not (?:that|this)|not the one)\b", clean):
        return [ObjectSubstitution(new_object=None, excluded=ctx.current_object)]
    raise ParseError(
        f"did not understand the plan correction {text!r}: it names no object, target, "
        "location or missing step; try e.g. 'no, the blue bowl' or 'open the drawer first'"
    )


# --------------------------------------------------------------------------- preference

_NEGATIVE_PREF_RE = re.compile(
    r"\b(?:never(?! mind)|don't ever|do not ever|avoid|not ever|don't use|do not use|"
    r"stop using|no more|keep (?:\w+ ){0,3}out of|off limits)\b"
)
_GROUP_RE = re.compile(r"\b(warm|cool|cold)(?:[- ]?colou?r(?:ed|s)?| ones| tones?)\b")
_SAME_RE = re.compile(
    r"\b(?:(?:the )?same colou?r|matching|(?:its|their) own colou?r|colou?r matches|"
    r"of (?:its|their) colou?r)\b"
)
_ORDER_RE = re.compile(r"\b(first|last|before anything else|at the end|after everything)\b")
# Words a person may use for a class of objects that the robot cannot perceive: a rule about
# them cannot be stored, and the reply says so.
_UNSEEN_WORDS_RE = re.compile(
    r"\b(heavy|heavier|light|lighter|fragile|slippery|breakable|wet|full|empty|hot|"
    r"soft|hard|metal|metallic|wooden|plastic|glass|new|old|dirty|clean|expensive|cheap|"
    r"sharp)\s+(?:ones|things|objects|items|stuff|one)\b"
)


def _size_before(phrase: _Phrase | None, clause: str) -> str | None:
    """The size class said just before the subject ("small red blocks", "big ones")."""
    if phrase is None:
        return None
    before = clause[: phrase.start].split()[-2:]
    return next((canonical_size(w) for w in reversed(before) if canonical_size(w)), None)


def _attributes(phrase: _Phrase | None, clause: str) -> dict[str, str]:
    """The perceivable attributes naming the subject: colour, shape, size and colour group."""
    attrs: dict[str, str] = {}
    if phrase is not None and phrase.color:
        attrs["color"] = phrase.color
    if phrase is not None and phrase.noun in kind_names(graspable=True):
        attrs["shape"] = shape_of_kind(phrase.noun)
    size = _size_before(phrase, clause)
    if size is not None:
        attrs["size_class"] = size
    group = _GROUP_RE.search(clause)
    if group and "color" not in attrs:
        attrs["color_group"] = "warm" if group.group(1) == "warm" else "cool"
    return attrs


def _target_name(phrase: _Phrase, ctx: InterpretContext) -> str:
    """Preferences outlive the scene, so an unresolvable target keeps its words."""
    if phrase.position is not None and phrase.color is None:
        return f"{phrase.position} {phrase.noun}"
    try:
        return _resolve(phrase, ctx)
    except UnknownObjectError:
        return " ".join(x for x in (phrase.color, phrase.noun) if x) or phrase.text


def _mapping_in(clause: str, ctx: InterpretContext, is_negative: bool) -> PreferenceMapping | None:
    phrases = _phrases(clause)
    # The target is the container/location; when two bowls are named, the one after a
    # placement preposition ("in the left bowl") is the target and the other the subject.
    containers = [p for p in phrases if p.is_container]
    if not containers:
        return None
    target = next((p for p in containers if p.after_place_prep), containers[0])
    subjects = [p for p in phrases if p is not target and not p.is_container]
    subject = subjects[0] if subjects else None
    if subject is None:  # "small ones go in the blue bowl": the size word is the subject
        words = clause[: target.start].split()
        size = next((canonical_size(w) for w in words if canonical_size(w)), None)
        attrs = {"size_class": size} if size else _attributes(None, clause)
    else:
        attrs = _attributes(subject, clause)
    if _SAME_RE.search(clause) and target.noun is not None:
        # "put each block in the bowl of the same colour": the target is a kind, per object.
        attrs.pop("color", None)
        return PreferenceMapping(attributes=attrs, target=target.noun, same_attribute="color")
    everything = re.search(r"\b(?:everything|all|anything|nothing)\b", clause)
    if not attrs and not everything and not is_negative:
        return None
    return PreferenceMapping(
        attributes=attrs, target=_target_name(target, ctx), is_negative=is_negative
    )


def _standing_order(text: str, ctx: InterpretContext) -> Ordering | None:
    """An order by attributes: "do the blue ones first", "always leave the cylinders for last"."""
    order = _ORDER_RE.search(text)
    if order is None:
        return None
    subjects = [p for p in _phrases(text) if not p.is_location and not p.is_negated]
    subject = next((p for p in subjects if p.color or p.noun), None)
    attrs = _attributes(subject, text)
    if not attrs:
        return None
    last = order.group(1) in ("last", "at the end", "after everything")
    return Ordering(attributes=attrs, attributes_last=last)


def _unstorable(text: str) -> str | None:
    """Why a stated rule cannot be kept: it names objects by something the robot cannot see."""
    hit = _UNSEEN_WORDS_RE.search(text)
    if hit is None:
        return None
    return (
        f"I cannot see which things are {hit.group(1)} (I can tell colour, colour group, shape "
        "and size), so this preference cannot be stored; name them by what they look like, "
        "e.g. 'the red cylinders go in the blue bowl'"
    )


def _interpret_preference(text: str, ctx: InterpretContext) -> list[Effect]:
    clean = _clean(text)
    unstorable = _unstorable(clean)
    if unstorable is not None:
        raise ParseError(f"understood {text!r} as a standing rule, but {unstorable}")
    is_negative = bool(_NEGATIVE_PREF_RE.search(clean))
    # "blocks in bowls, cylinders in the drawer" holds one mapping per clause; otherwise the
    # whole sentence is one mapping (its clauses alone may lack the subject or the target).
    per_clause: list[Effect] = []
    for clause in _clauses(text):
        mapping = _mapping_in(clause, ctx, is_negative)
        if mapping is not None and mapping not in per_clause:
            per_clause.append(mapping)
    if len(per_clause) > 1:
        return per_clause
    whole = _mapping_in(clean, ctx, is_negative)
    if whole is not None:
        return [whole]
    if per_clause:
        return per_clause
    order = _standing_order(clean, ctx)
    if order is not None:
        return [order]
    raise ParseError(
        f"did not understand the preference {text!r}, so nothing is stored: need which objects "
        "(a colour, shape, size or warm/cool colours) and where they go (a bowl, the drawer or "
        "a table location), e.g. 'always put cubes in the drawer', or an order, e.g. 'do the "
        "blue ones first'"
    )


# --------------------------------------------------------------------------- control

ControlKind = Literal["stop", "pause", "resume"]
_CONTROL_WORDS: tuple[tuple[str, ControlKind], ...] = (
    (
        r"never ?mind|carry on|keep going|go on|go ahead|continue|contineu|resume|unpause|proceed|"
        r"off you go|you can go|back to work|let's go|go go",
        "resume",
    ),
    (
        r"stop|stahp|halt|abort|cancel|quit|forget it|forget about it|cease|emergency|"
        r"don't move|stop moving|freeze",
        "stop",
    ),
    (
        r"wait|hold|hang on|pause|pasue|one moment|a sec|a second|a minute|not yet|whoa|"
        r"hold your horses|don't do anything",
        "pause",
    ),
)


def _interpret_control(text: str, ctx: InterpretContext) -> list[Effect]:
    clean = normalise(text)
    hits: list[tuple[int, ControlKind]] = []
    for pattern, command in _CONTROL_WORDS:
        hits.extend((m.start(), command) for m in re.finditer(rf"\b(?:{pattern})\b", clean))
    if not hits:
        raise ParseError(
            f"did not understand the control command {text!r}; say 'stop', 'wait' or 'continue'"
        )
    # The last command word wins: "wait... ok continue" resumes, "ok go, no wait" pauses.
    return [ControlCommand(command=max(hits)[1])]


# route label -> its interpreter, in the router's label order.
INTERPRETERS: Registry[Callable[[str, InterpretContext], list[Effect]]] = Registry(
    "route label", unknown="unknown {noun} {name!r}; labels: {names}."
)
# "undo" has no interpreter: it changes nothing itself, the correction loop takes back the last
# applied correction (CorrectionLoop.undo).
for _label, _interpreter in zip(
    (label for label in LABELS if label != "undo"),
    (_interpret_plan, _interpret_skill, _interpret_preference, _interpret_control),
    strict=True,
):
    INTERPRETERS.register(_label, _interpreter)


def interpret(text: str, label: str, context: InterpretContext | None = None) -> Interpretation:
    """The typed effects of a correction already routed to `label`.

    Args:
        text: the correction as said.
        label: its route label (one of LABELS).
        context: visible objects and the current skill/object/target; defaults to empty.

    Raises:
        ParseError: the words were not understood (the message names them).
        UnknownObjectError: a named object is not visible (with a "did you mean").
        UnknownNameError: `label` is not a route label.
    """
    interpreter = INTERPRETERS.get(label)  # UnknownNameError with a "did you mean"
    if not normalise(text):
        raise ParseError(f"cannot interpret an empty correction ({text!r})")
    effects = interpreter(text, context or InterpretContext())
    return Interpretation(label=label, text=text, effects=tuple(effects))  # type: ignore[arg-type]


__all__ = ["InterpretContext", "Interpretation", "interpret"]
