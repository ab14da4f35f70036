"""The offline planner: a deterministic semantic parser that writes Code-as-Policies programs.

No LLM. It recognises these instruction families (paraphrases and any colours/objects), and
writes the same kind of program an LLM would, against the same robot API:

Families, with example instructions:

- pick_place: "put the red block in the blue bowl", "pick up the green cube and place it on the
  red block", "move the yellow block to the top left corner", "put the red block to the left of
  the blue bowl"
- stack: "stack all the blocks", "build a tower with the blocks", "pile the cubes on top of each
  other"
- matching: "put all the blocks in the matching bowls", "put each block in the bowl of the same
  colour"
- line: "put the blocks in a horizontal line", "arrange the cubes in a vertical column", "line up
  the blocks"
- spatial: "move the block left of the blue bowl to the top right corner", "put the block closest
  to the red bowl in the drawer"
- warm_cool: "put the warm coloured blocks in one bowl and the cool ones in another"
- drawer: "put the red block in the drawer", "open the drawer", "close the drawer"
- skill: every skill phrasing of `policies.language` ("pick up the red block", "move a bit left")
- session: "undo that", "do the same with the blue block", "now the other one"
- group: "group the blue objects together" (into the bowl of that colour, else side by side)
- context: "imagine that the bowls are biomes ..." (acknowledged; "in the grasslands" then
  reads as the container of the colour the place is known by)

Code as Policies' wording is read too: colours by association ("the forest-colored block",
"pinkish", "the light colored block" = the lightest), "top most" / "bottom most", a placement
without its verb ("the yellow block on the yellow bowl") or its preposition ("put the yellow
one the green thing"), destinations measured from the moved object ("the farthest bowl", "the
bowl closest to it", "the corner closest to the red block"), "the empty bowl", towers on a
spot, in a bowl or on a given base ("... with the gray one on the bottom") and lines along a
side of the table.

Object nouns ("cube", "cans", "dish"), colour words and kinds' flags (graspable, container,
furniture) come from `sim_envs.vocabulary`; families about blocks and bowls (stacking, lines,
matching, warm/cool) ask it for the words of those kinds.

Code as Policies' further classes: questions answered with say() when the program runs ("how
many blocks are there?", "what colour is the leftmost block?", "where is the red block?",
"which block is closest to the bowl?", "is there a purple bowl?"); shapes ("arrange the blocks
in a circle / triangle / square", a diagonal line); "in between" two things (their midpoint);
distances from an object ("10 cm to the left of the pink bowl"); every block moved relative to
where it is; one block per corner; bowls of non-matching colours; "all blocks except ...";
ordinals ("the second block from the left"); pointing the gripper at an object ("point the
gripper at the red block": `point_at`, which holds the arm over it); a bowl stacked on another
("put the blue bowl on the red bowl", "stack the green bowl on top of the yellow bowl", "place
the red bowl in the blue bowl": pick holds it by its rim; checked by `on(blue bowl, red bowl)`).

Not covered (it says so with a ParseError naming the families): other questions ("how heavy
is ..."), conditionals ("if ... then ...") and a bowl set on or in anything but another bowl
or a spot on the table (the drawer, a block).

English only: an instruction with letters, digits or symbols outside ASCII ("把红色方块...",
"положи красный блок", "the 🔴 block") gets a ParseError saying so, rather than being read
with those words silently dropped; so does one longer than 500 characters. ANSI escape
sequences and other control characters are ignored.

User text never becomes code. A program is built only from the robot API, names taken from
the scene (`PlanContext.object_names`), canonical location names and numbers the planner
computed, each written as a literal by `_literal` (`repr` for strings, finite numbers only).
The instruction itself appears once, as data: the program's first line is its docstring,
`repr` of the instruction (whitespace collapsed, at most 200 characters), so a newline, quote
or `#` in the instruction stays inside a string literal.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Any

import numpy as np

from corrigible.errors import ParseError, UnknownObjectError, did_you_mean
from corrigible.policies.language import (
    ObjectResolver,
    merge_superlatives,
    parse_skill_command,
    resolve_references,
)
from corrigible.policies.planners.base import HistoryItem, PlanContext, Planner, Program
from corrigible.sim_envs.locations import canonical_location, location_xy
from corrigible.sim_envs.palette import COOL_COLORS, WARM_COLORS
from corrigible.sim_envs.vocabulary import (
    GENERIC_OBJECT_WORDS,
    associated_color,
    canonical_color,
    kind_names,
    kind_nouns,
    kind_of_name,
    kind_of_noun,
    normalise_color_phrases,
    noun_words,
    object_kind,
    parse_object_name,
)

_FILLERS = re.compile(
    r"\b(please|pls|plz|kindly|now|can you|could you|would you|will you|i want you to|"
    r"i'd like you to|"
    r"i would like you to|go ahead and|robot|okay|ok|then|just)\b"
)
_OBJ = r"(?:the\s+)?([a-z]+(?:\s+[a-z]+)?)"
_PLACE_VERB = (
    r"(?:put|place|drop|set|move|bring|transfer|stack|carry|relocate|shift|get|take|stash|store|"
    r"stow|tuck|pop)"
)
_PREP = r"(on top of|inside of|inside|into|onto|over|in|on|to|at)"
_RELATIONS = {
    "left of": "left",
    "to the left of": "left",
    "right of": "right",
    "to the right of": "right",
    "in front of": "front",
    "below": "front",
    "closer than": "front",
    "behind": "behind",
    "above": "behind",
    "beyond": "behind",
    "closest to": "closest",
    "nearest to": "closest",
    "nearest": "closest",
    "closest": "closest",
    "next to": "closest",
    "farthest from": "farthest",
    "furthest from": "farthest",
}
_RELATION_WORDS = {
    "left": "left of",
    "right": "right of",
    "front": "in front of",
    "behind": "behind",
    "closest": "closest to",
    "farthest": "farthest from",
}
_DEST_OFFSETS = {
    "left": (0.0, 0.12),
    "right": (0.0, -0.12),
    "front": (-0.11, 0.0),
    "behind": (0.11, 0.0),
}
_FAMILIES_HELP = (
    "pick and place ('put the red block in the blue bowl'), stacking ('stack all the blocks'), "
    "matching bowls, lines ('put the blocks in a horizontal line'), spatial references ('move the "
    "block left of the blue bowl to the top right corner'), warm/cool sorting, drawer tasks, skill "
    "commands ('move a bit to the left') and 'undo that' / 'do the same with ...'"
)


def _alternation(words: tuple[str, ...]) -> str:
    """A regex alternation of `words` (no group, no word boundaries)."""
    return "|".join(re.escape(w) for w in words)


def _is_kind(name: str, **flags: bool) -> bool:
    """Whether the scene object `name` is of a kind with these flags (a name of no kind is not)."""
    return kind_of_name(name) in kind_names(**flags)


_MAX_INSTRUCTION_CHARS = 500  # longer instructions are refused (no family needs more)
_HEADER_CHARS = 200  # of the instruction, kept in the program's docstring
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-_])")  # CSI sequences and 2-byte escapes


def _refuse_unreadable(instruction: str) -> None:
    """Raises ParseError for an instruction the grammar cannot read at all.

    Letters, digits and symbols outside ASCII (Chinese, Arabic, Cyrillic, accented letters,
    emoji) would otherwise be dropped by `_normalise`, leaving "empty instruction" or, worse, an
    instruction with words missing ("the 红 block" read as "the block"). Non-ASCII spaces,
    punctuation and control characters are harmless and ignored.
    """
    if not isinstance(instruction, str):
        raise ParseError(f"an instruction must be text, got {type(instruction).__name__}")
    if len(instruction) > _MAX_INSTRUCTION_CHARS:
        raise ParseError(
            f"the instruction is {len(instruction)} characters long; the grammar planner reads "
            f"at most {_MAX_INSTRUCTION_CHARS}: give one task at a time"
        )
    foreign = [
        word
        for word in instruction.split()
        if any(ord(c) > 127 and unicodedata.category(c)[0] in "LNS" for c in word)
    ]
    if foreign:
        shown = " ".join(foreign)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise ParseError(
            "the grammar planner understands English instructions only (plain ASCII words, "
            f"e.g. 'put the red block in the blue bowl'); it cannot read {shown!r}. "
            "Say it in English, or use an LLM planner (--planner openai:<model>)"
        )
    if not instruction.strip():
        raise ParseError("empty instruction; try 'put the red block in the blue bowl'")


def _header(instruction: str) -> str:
    """The program's first line: the instruction as a docstring, data written by `repr`."""
    words = " ".join(instruction.split())
    if len(words) > _HEADER_CHARS:
        words = words[: _HEADER_CHARS - 3] + "..."
    return repr(words) + "\n"


# "get the drawer open" / "have the drawer shut" / "pull the drawer out" / "slide the drawer in":
# the state the drawer should be in, said with a verb ("get") that otherwise means picking
# something up, or with the motion that gets it there.
_DRAWER_STATE = re.compile(
    r"\b(?:get|make|have|leave|set|pull|slide|yank|draw|push)\s+(the\s+drawer)\s+"
    r"(?:(open(?:ed)?|out)|shut|closed|in)\b"
)


def _drawer_state(match: re.Match[str]) -> str:
    return f"{'open' if match.group(2) else 'close'} {match.group(1)}"


# "i need the red block in the blue bowl", "the red block should go in the blue bowl": a wish
# for where something ends up, said without a placing verb, is a placement.
_WISH = re.compile(
    r"^(?:i\s+(?:need|want|would like)|i'd like|i d like|let's have|let s have)\s+(.+?)\s+"
    r"((?:in|into|inside|on|onto|on top of|at|to)\s+.+)$"
)
_SHOULD = re.compile(
    r"^(.+?)\s+(?:should|must|needs to|has to|ought to)\s+(?:go|be|end up|be put)\s+"
    r"((?:in|into|inside|on|onto|on top of|at|to)\s+.+)$"
)


def _wish_as_placement(text: str) -> str:
    for pattern in (_WISH, _SHOULD):
        m = pattern.match(text)
        if m:
            return f"put {m.group(1)} {m.group(2)}"
    return text


def _edit_distance(a: str, b: str) -> int:
    """Damerau-Levenshtein distance (adjacent swaps count one), for short words."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def _fix_noun_typos(words: list[str]) -> list[str]:
    """A misspelt object noun right after a colour ("the orange cylindr") becomes the noun.

    Only there, where a noun must follow, and only when one noun of the vocabulary is nearer
    than every other, within one edit (two for words of seven letters or more): anything else
    is left for the parser to refuse by name.
    """
    nouns = set(noun_words())
    out = list(words)
    for i in range(1, len(out)):
        word = out[i]
        if word in nouns or len(word) < 4 or not canonical_color(out[i - 1]):
            continue
        limit = 2 if len(word) >= 7 else 1
        close = [n for n in nouns if abs(len(n) - len(word)) <= limit]
        scored = [(_edit_distance(word, n), n) for n in close]
        scored = [(d, n) for d, n in scored if d <= limit]
        best = min((d for d, _ in scored), default=None)
        nearest = [n for d, n in scored if d == best]
        if len(nearest) == 1:
            out[i] = nearest[0]
    return out


def _normalise(text: str) -> str:
    text = _ANSI.sub(" ", text)
    text = text.lower().replace("-", " ").replace("colored", "coloured")
    text = re.sub(r"[^a-z0-9.\s']", " ", text)
    text = _FILLERS.sub(" ", text)
    text = merge_superlatives(normalise_color_phrases(" ".join(text.split())))
    words = _fix_noun_typos([canonical_color(w) or w for w in text.split()])
    text = _wish_as_placement(" ".join(words))
    return _DRAWER_STATE.sub(_drawer_state, text).strip(" .")


def _literal(value: Any) -> str:
    """A Python literal for generated code; the only way values reach program text.

    Strings, bools, None and ints are written by `repr`, floats only when finite, lists and
    tuples of numbers through `_q`.

    Raises:
        ParseError: a number is NaN or infinite (e.g. "move 1e999 cm left").
        TypeError: `value` is of another type (a planner bug, not user input).
    """
    if value is None or isinstance(value, bool | str | int):
        return repr(value)
    if isinstance(value, float | np.floating):
        if not math.isfinite(value):
            raise ParseError(f"a number in the instruction is not finite ({value}); say e.g. 5 cm")
        return repr(float(value))
    if isinstance(value, list | tuple | np.ndarray):
        return _q(value)
    raise TypeError(f"no literal for a {type(value).__name__} in a generated program")


def _q(value: Any) -> str:
    """A Python literal for a name (a string) or a position (a list of finite numbers, 0.1 mm)."""
    if isinstance(value, str):
        return repr(value)
    numbers = [float(v) for v in value]
    if not all(math.isfinite(v) for v in numbers):
        raise ParseError(f"a position in the instruction is not finite ({numbers})")
    return "[" + ", ".join(f"{v:.4f}" for v in numbers) + "]"


class GrammarPlanner(Planner):
    """Deterministic instruction parser that composes programs from the robot API."""

    name = "grammar"

    def plan(self, instruction: str, context: PlanContext) -> Program:
        """Writes the program for the first family that parses the instruction (else ParseError).

        An instruction no family reads whole is tried as a sequence of clauses ("open the
        drawer and put the red block inside", "put X in Y, then Z in W"), each planned in turn
        with the previous clause as context for "it" and "inside".
        """
        _refuse_unreadable(instruction)
        text = _normalise(instruction)
        if not text:
            raise ParseError(
                "the instruction has no words the grammar planner can read (only punctuation "
                "or control characters); try 'put the red block in the blue bowl'"
            )
        try:
            program = self._plan_text(text, context)
        except (ParseError, UnknownObjectError) as whole_error:
            # Spatial references ("the block on the left") become the names perception gives
            # them, then the families read the instruction as if it had named them.
            resolved, notes = resolve_references(text, self._resolver(context))
            if notes:
                try:
                    program = self._plan_text(resolved, context)
                except (ParseError, UnknownObjectError) as exc:
                    program = self._plan_clauses(resolved, context, exc)
                program.notes.extend(notes)
            else:
                program = self._plan_clauses(instruction, context, whole_error)
        program.source = _header(instruction) + program.source
        return program

    def _plan_clauses(self, instruction: str, ctx: PlanContext, whole_error: Exception) -> Program:
        marked = re.sub(
            r"\s*(?:,|;|\band then\b|\bthen\b|\bafter that\b|\band\b)\s*",
            " ; ",
            _ANSI.sub(" ", instruction).lower(),
        )
        parts = [_normalise(p) for p in marked.split(";")]
        parts = [p for p in parts if p]
        if len(parts) < 2:
            raise whole_error
        verb = None
        for i, part in enumerate(parts):  # "put X in Y and the Z in W": carry the verb over
            first = part.split()[0]
            if re.fullmatch(_PLACE_VERB, first) or first in (
                "pick",
                "grab",
                "open",
                "close",
                "stack",
                "push",
            ):
                verb = first
            elif verb is not None and re.match(
                rf"(?:the\s+)?[a-z]+\s+(?:{_alternation(kind_nouns(graspable=True))})\b", part
            ):
                parts[i] = f"{verb} {part}"
        history = list(ctx.history)
        programs: list[Program] = []
        for part in parts:
            sub = PlanContext(
                object_names=ctx.object_names,
                positions=ctx.positions,
                history=history,
                knowledge=ctx.knowledge,
                corrections=ctx.corrections,
            )
            if programs and programs[-1].family == "skill" and "open_drawer" in programs[-1].source:
                part = re.sub(r"\b(inside|in it|in there|into it)$", "in the drawer", part)
            try:
                program = self._plan_text(part, sub)
            except (ParseError, UnknownObjectError) as exc:
                raise type(whole_error)(
                    f"{whole_error} (as clauses, {part!r} failed: {exc})"
                ) from exc
            programs.append(program)
            history = [
                *history,
                HistoryItem(
                    instruction=part,
                    program=program.source,
                    subject=program.subject,
                    target=program.target,
                ),
            ]
        last = programs[-1]
        lines: list[str] = []
        for line in "".join(p.source for p in programs).splitlines():
            if line == "open_drawer('drawer')" and line in lines:
                continue  # already opened by an earlier clause
            lines.append(line)
        return Program(
            source="\n".join(lines) + "\n",
            planner=self.name,
            family="+".join(dict.fromkeys(p.family for p in programs)),
            subject=last.subject,
            target=last.target,
        )

    def _handlers(self) -> tuple[Any, ...]:
        """The families in the order they are tried (`_session` first)."""
        return (
            self._session,
            self._drawer,
            self._warm_cool,
            self._matching,
            self._line,
            self._shape,
            self._stack_all,
            self._group,
            self._corners,
            self._question,
            self._imagine,
            self._spatial,
            self._all_into,
            self._relative_move,
            self._pick_place,
            self._skill,
        )

    def _plan_text(self, text: str, context: PlanContext) -> Program:
        for handler in self._handlers():
            program = handler(text, context)
            if program is not None:
                return program
        first = text.split()[0] if text.split() else ""
        if not re.fullmatch(_PLACE_VERB, first) and re.match(
            rf"(?:the\s+)?[a-z]+(?:\s+[a-z]+)?\s+{_PREP}\s+\S", text
        ):
            # "the yellow block on the yellow bowl" (Code as Policies' prompt): a placement said
            # without its verb is the placement.
            program = self._pick_place("put " + text, context)
            if program is not None:
                program.notes.append("read as 'put " + text[:60] + "'")
                return program
        raise ParseError(
            f"the grammar planner does not understand {text!r}; it knows {_FAMILIES_HELP}"
        )

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def _resolver(ctx: PlanContext) -> ObjectResolver:
        # Perceived positions for spatial references; earlier subjects for "the other one".
        recent = [h.subject for h in ctx.history if h.subject]
        return ObjectResolver(ctx.object_names, ctx.positions, recent)

    def _object(self, phrase: str, ctx: PlanContext) -> str:
        phrase = phrase.strip()
        if phrase in ("it", "that", "this", "that one", "this one", "the same one") and ctx.history:
            last = ctx.history[-1].subject
            if last:
                return last
        return self._resolver(ctx).resolve(phrase)  # superlatives and relations too

    def _destination(
        self, phrase: str, ctx: PlanContext, subject: str | None = None
    ) -> tuple[Any, str | None]:
        """(target for put_first_on_second, predicate for the checkpoint or None).

        With the object being moved (`subject`), "it" is that object and a superlative with no
        reference is measured from it, as Code as Policies reads "put the red block on the
        farthest bowl" and "the bowl closest to it".
        """
        phrase = phrase.strip()
        if subject is not None:
            phrase = re.sub(r"\b(?:it|that one|this one)$", f"the {subject}", phrase)
            nouns = _alternation(kind_nouns(furniture=False, plural=False))
            m = re.fullmatch(rf"(?:the\s+)?(closest|nearest|farthest|furthest)\s+({nouns})", phrase)
            if m:
                relation = "closest to" if m.group(1) in ("closest", "nearest") else "farthest from"
                phrase = f"the {m.group(2)} {relation} the {subject}"
        same = re.fullmatch(r"(?:the\s+)?same\s+([a-z]+)\s+as\s+(?:the\s+)?(.+)", phrase)
        if same and kind_of_noun(same.group(1)):
            return self._container_of(self._object(same.group(2), ctx), ctx), None
        if subject is not None and re.search(r"\bones?\b", phrase):
            recent = [h.subject for h in ctx.history if h.subject]
            by = ObjectResolver(
                ctx.object_names, ctx.positions, recent, default_kind=kind_of_name(subject)
            )
            try:  # "put the red block on top of the blue one": the blue block
                return by.resolve(phrase), None
            except UnknownObjectError:
                pass
        m = re.fullmatch(
            r"(?:the\s+)?(corner|side|edge)\s+(closest|nearest|farthest|furthest)\s+(?:to|from)\s+(.+)",
            phrase,
        )
        if m:
            return self._location_by_distance(m.group(1), m.group(2), m.group(3), ctx), "at"
        m = re.fullmatch(r"(?:next to|beside|near|by|close to|alongside)\s+(?:the\s+)?(.+)", phrase)
        if m:
            return self._beside(self._object(m.group(1), ctx), ctx), None
        for rel, kind in sorted(_RELATIONS.items(), key=lambda kv: -len(kv[0])):
            m = re.fullmatch(rf"(?:the\s+)?{rel}\s+(?:the\s+)?(.+)", phrase)
            if m and kind in _DEST_OFFSETS:
                ref = self._object(m.group(1), ctx)
                base = np.asarray(ctx.positions[ref][:2])
                return (base + np.asarray(_DEST_OFFSETS[kind])).tolist(), None
        try:
            return canonical_location(phrase.removeprefix("the ")), "at"
        except Exception:
            pass
        try:
            return self._object(phrase, ctx), None
        except UnknownObjectError:
            place = self._associated_container(phrase, ctx)
            if place is None:
                raise
            return place, None

    def _location_by_distance(self, what: str, rel: str, ref_phrase: str, ctx: PlanContext) -> str:
        """The named spot of that type nearest to (or farthest from) an object."""
        from corrigible.sim_envs.locations import location_names, location_xy

        ref = self._object(ref_phrase, ctx)
        base = np.asarray(ctx.positions[ref][:2])
        kind = "corner" if what == "corner" else "side"
        spots = [n for n in location_names() if n.endswith(kind)]
        dist = {n: float(np.linalg.norm(location_xy(n) - base)) for n in spots}
        return (min if rel in ("closest", "nearest") else max)(spots, key=dist.__getitem__)

    @staticmethod
    def _container_of(obj: str, ctx: PlanContext) -> str:
        """The container `obj` is in now (within a rim, as the `in` predicate reads it)."""
        here = np.asarray(ctx.positions[obj][:2])
        for name in ctx.object_names:
            if name == obj or not _is_kind(name, container=True, furniture=False):
                continue
            rim = object_kind(kind_of_name(name)).footprint_radius_m - 0.01
            if float(np.linalg.norm(np.asarray(ctx.positions[name][:2]) - here)) < rim:
                return name
        raise UnknownObjectError(f"the {obj} is not in a bowl now, so there is no 'same bowl'")

    @staticmethod
    def _xy_of(target: Any, ctx: PlanContext) -> np.ndarray:
        """(x, y) of an object, a named location or a position."""
        if isinstance(target, str):
            if target in ctx.positions:
                return np.asarray(ctx.positions[target][:2], dtype=float)
            return np.asarray(location_xy(target), dtype=float)
        return np.asarray(target[:2], dtype=float)

    @staticmethod
    def _associated_container(phrase: str, ctx: PlanContext) -> str | None:
        """The one container of the colour a place is known by ("the grasslands" -> green).

        Code as Policies' "imagine the bowls are biomes ... build a tower in the grasslands":
        a destination that names no object but a thing of one colour means the container of
        that colour, when exactly one is on the table.
        """
        words = [w for w in phrase.split() if w not in ("the", "a", "an")]
        if len(words) != 1 or kind_of_noun(words[0]):
            return None
        color = associated_color(words[0])
        containers = [
            n
            for n in ctx.object_names
            if _is_kind(n, container=True, furniture=False) and n.split()[0] == color
        ]
        return containers[0] if len(containers) == 1 else None

    @staticmethod
    def _beside(ref: str, ctx: PlanContext) -> list[float]:
        """A table spot next to `ref` on the side with the most free space."""
        from corrigible.sim_envs.locations import WORKSPACE_XY

        (x0, x1), (y0, y1) = WORKSPACE_XY
        base = np.asarray(ctx.positions[ref][:2])
        # A bowl's rim is wide; the drawer (furniture) counts as a block-sized reference.
        gap = 0.13 if _is_kind(ref, container=True, furniture=False) else 0.08
        others = [
            np.asarray(p[:2])
            for n, p in ctx.positions.items()
            if n != ref and not _is_kind(n, furniture=True)
        ]
        best, best_clear = None, -np.inf
        for offset in ((0.0, gap), (0.0, -gap), (gap, 0.0), (-gap, 0.0)):
            spot = base + np.asarray(offset)
            if not (x0 + 0.03 <= spot[0] <= x1 - 0.03 and y0 + 0.03 <= spot[1] <= y1 - 0.03):
                continue
            clear = min((float(np.linalg.norm(spot - o)) for o in others), default=1.0)
            if clear > best_clear:
                best, best_clear = spot, clear
        if best is None:
            raise UnknownObjectError(
                f"there is no free spot next to the {ref} inside the workspace"
            )
        return [float(v) for v in best]

    @staticmethod
    def _expect(obj: str, target: Any, ctx: PlanContext) -> str | None:
        if not isinstance(target, str):
            return None
        if target in ctx.object_names:
            stacked = _is_kind(obj, rim_grasp=True) and _is_kind(target, rim_grasp=True)
            relation = "in" if _is_kind(target, container=True) and not stacked else "on"
            return f"{relation}({obj}, {target})"
        return f"at({obj}, {target})"

    def _put(self, obj: str, target: Any, ctx: PlanContext, family: str) -> Program:
        if _is_kind(obj, rim_grasp=True) and isinstance(target, str):
            if kind_of_name(target) is not None and not _is_kind(target, rim_grasp=True):
                # pick holds a bowl by its rim; it sets one down only on another bowl or the
                # table (`SkillLibrary.place`), so say so before anything moves.
                kind = kind_of_name(obj)
                raise ParseError(
                    f"a {kind} can go on another {kind} or a spot on the table, not on or in the "
                    f"{target}; try 'put the {obj} on the <colour> {kind}' or '... in the top "
                    "left corner'"
                )
        expect = self._expect(obj, target, ctx)
        lines = []
        if target == "drawer":
            lines.append("open_drawer('drawer')")
        lines.append(f"put_first_on_second({_q(obj)}, {_q(target)})")
        if expect:
            lines.append(f"checkpoint({_q(obj + ' placed')}, expect={_q(expect)})")
        return Program(
            source="\n".join(lines) + "\n",
            planner=self.name,
            family=family,
            subject=obj,
            target=target,
        )

    @staticmethod
    def _blocks(ctx: PlanContext) -> list[str]:
        return [n for n in ctx.object_names if kind_of_name(n) == "block"]

    # -- families --------------------------------------------------------------------------
    def _session(self, text: str, ctx: PlanContext) -> Program | None:
        if re.fullmatch(
            r"(undo|revert|reverse|take back)( that| it| the last (one|step|command|thing))?"
            r"|put (it|that) back( where it was)?",
            text,
        ):
            if not ctx.history or not ctx.history[-1].moved_from:
                raise ParseError("there is nothing to undo yet")
            last = ctx.history[-1]
            # Top of a pile first; objects that did not move stay where they are.
            order = sorted(last.moved_from, key=lambda o: -ctx.positions.get(o, [0, 0, 0])[2])
            lines = [
                f"put_first_on_second({_q(obj)}, {_q(last.moved_from[obj])})"
                for obj in order
                if obj in ctx.positions
                and np.linalg.norm(np.subtract(ctx.positions[obj][:2], last.moved_from[obj])) > 0.02
            ]
            if not lines:
                raise ParseError(
                    f"nothing moved in {last.instruction!r}, so there is nothing to undo"
                )
            return Program(
                source="\n".join(lines) + "\n",
                planner=self.name,
                family="session",
                notes=[f"undo: {last.instruction}"],
            )
        back = re.fullmatch(
            rf"{_PLACE_VERB}\s+{_OBJ}\s+back(?:\s+(?:where it was|where it came from|to where it "
            r"was|in its place|to its place))?",
            text,
        )
        if back and self._mentions(back.group(1), ctx):
            obj = self._object(back.group(1), ctx)
            origin = next(
                (h.moved_from[obj] for h in reversed(ctx.history) if obj in h.moved_from), None
            )
            if origin is None:
                raise ParseError(
                    f"the {obj} has not been moved yet, so it has no place to go back to"
                )
            return self._put(obj, [float(v) for v in origin[:2]], ctx, "session")
        m = re.fullmatch(
            r"(?:do|repeat) (?:the )?same (?:thing )?(?:with|for|to) (.+)"
            r"|same (?:for|with) (.+)"
            r"|(?:and )?(?:now )?(.+) too",
            text,
        )
        if (
            m
            and ctx.history
            and (m.group(1) or m.group(2) or (m.group(3) and self._mentions(m.group(3), ctx)))
        ):
            phrase = m.group(1) or m.group(2) or m.group(3)
            return self._redo_with(self._object(phrase, ctx), ctx)
        nouns = _alternation(kind_nouns(furniture=False, plural=False))
        if re.fullmatch(
            r"(?:and )?(?:now )?(?:do )?(?:the )?other one(?: too| as well)?"
            rf"|(?:now )?(?:the )?other ({nouns}|one)",
            text,
        ):
            action = self._last_action(ctx)
            used = {h.subject for h in ctx.history}
            kind = kind_of_name(action.subject) or action.subject.split()[-1]
            others = [
                n
                for n in ctx.object_names
                if kind_of_name(n) == kind and n not in used and n != action.target
            ]
            if not others:
                raise UnknownObjectError(f"there is no other {kind} left to act on")
            return self._redo_with(others[0], ctx)
        return None

    def _mentions(self, phrase: str, ctx: PlanContext) -> bool:
        try:
            self._object(phrase, ctx)
            return True
        except UnknownObjectError:
            return False

    @staticmethod
    def _last_action(ctx: PlanContext) -> HistoryItem:
        """The latest instruction that moved one object somewhere (undos are skipped)."""
        for item in reversed(ctx.history):
            if item.subject is not None and item.target is not None:
                return item
        raise ParseError("there is no earlier 'put X in/on Y' to repeat")

    def _redo_with(self, obj: str, ctx: PlanContext) -> Program:
        """The last action again with `obj` in its subject's place.

        The instruction is re-read with the new object named in it, so a rule travels with it
        ("move the cyan block into its corresponding bowl", then "do the same with the blue
        block" is the blue bowl; "move the red block 5 cm left" moves the new one 5 cm from
        where it is). An instruction that did not name its subject keeps the old target.
        """
        last = self._last_action(ctx)
        text = _normalise(last.instruction)
        if last.subject and re.search(rf"\b{re.escape(last.subject)}\b", text):
            again = re.sub(rf"\b{re.escape(last.subject)}\b", obj, text)
            for handler in self._handlers()[1:]:  # not _session: no redo of a redo
                try:
                    program = handler(again, ctx)
                except (ParseError, UnknownObjectError):
                    break
                if program is not None:
                    program.family = "session"
                    return program
        return self._put(obj, last.target, ctx, "session")

    def _drawer(self, text: str, ctx: PlanContext) -> Program | None:
        m = re.fullmatch(
            rf"{_PLACE_VERB}\s+{_OBJ}\s+(?:in|into|inside|in to)\s+(?:the\s+)?drawer"
            r"(\s+and\s+(?:close|shut)\s+(?:it|the drawer))?",
            text,
        )
        if not m:
            return None
        if re.match(r"(all|every|each)\b|\w+s$", m.group(1)):
            return None  # several objects: _all_into
        obj = self._object(m.group(1), ctx)
        program = self._put(obj, "drawer", ctx, "drawer")
        if m.group(2):
            program.source += "close_drawer('drawer')\n"
        return program

    def _stack_all(self, text: str, ctx: PlanContext) -> Program | None:
        """A tower of all the blocks, optionally on a spot, in a bowl or on a given base block.

        'stack all the blocks', 'build a tower', 'stack the blocks on the bottom right corner',
        'stack the blocks in the pink bowl with the gray one on the bottom'. One named block
        onto another ("stack the red block on the blue block") is a pick-and-place, left to
        `_pick_place`.
        """
        if not re.search(r"\b(stack|pile|tower|stacked|heap)\b", text):
            return None
        blocks = _alternation(kind_nouns(name="block", plural=True))
        plural = re.search(rf"\b(all|{blocks}|everything|them)\b", text) or re.search(
            r"\b(?:build|make|form|create)\s+(?:a|the|one)\s+(?:tower|stack|pile)\b", text
        )
        if not plural:
            return None
        base_m = re.search(
            r"\s+with\s+(?:the\s+)?(.+?)\s+(?:on the bottom|at the bottom|on bottom|as the base"
            r"|as the bottom|at the base)$",
            text,
        )
        rest = text[: base_m.start()] if base_m else text
        dest_m = re.search(
            r"\b(?:on top of|onto|on|in|into|inside|at|to)\s+(?:the\s+)?"
            r"(?!top of each other|each other|one another|top\b)(.+)$",
            rest,
        )
        base = None
        if base_m:  # "the gray one" is a block here
            recent = [h.subject for h in ctx.history if h.subject]
            by = ObjectResolver(ctx.object_names, ctx.positions, recent, default_kind="block")
            base = by.resolve(base_m.group(1))
        target, target_name = None, None
        if dest_m:
            singular = re.fullmatch(
                rf"(?:stack|pile|put|place)\s+{_OBJ}\s+(?:on top of|onto|on)\s+.+", rest
            )
            if singular and not re.fullmatch(
                rf"(?:all\s+(?:of\s+)?)?(?:the\s+)?(?:{blocks})|them|everything",
                singular.group(1).strip(),
            ):
                return None  # one block onto another: pick and place
            target, _ = self._destination(dest_m.group(1), ctx)
            if isinstance(target, str) and target in ctx.object_names:
                if _is_kind(target, graspable=True) and kind_of_name(target) == "block":
                    base, target = base or target, None  # "on the red block": it is the base
                elif not _is_kind(target, container=True):
                    raise ParseError(
                        f"a tower can stand on the table, a block or in a bowl, not on the {target}"
                    )
            target_name = target if isinstance(target, str) else None
        names = self._blocks(ctx)
        if len(names) < 2:
            raise UnknownObjectError(
                f"a tower needs two blocks or more; the robot sees {ctx.object_names}"
            )
        if base is not None and base not in names:
            raise UnknownObjectError(f"the {base} is not a block, so it cannot be the tower's base")
        if target is None and base is None:
            source = (
                "block_names = [name for name in get_obj_names() if name.endswith(' block')]\n"
                "# Build on the block nearest the middle of the table.\n"
                "middle = get_location_pos('middle')\n"
                "block_names = sorted(block_names, key=lambda name: "
                "float(np.linalg.norm(get_obj_pos(name)[:2] - middle)))\n"
                "for i in range(1, len(block_names)):\n"
                "    put_first_on_second(block_names[i], block_names[i - 1])\n"
                "checkpoint('tower built', expect='stacked(all blocks)')\n"
            )
            return Program(source=source, planner=self.name, family="stack")
        # The base first (moved to the spot when one is named), then the others, nearest first.
        if target is None:
            where = np.asarray(ctx.positions[base][:2])
        elif target_name in ctx.positions:
            where = np.asarray(ctx.positions[target_name][:2])
        elif target_name is not None:
            where = np.asarray(location_xy(target_name))
        else:
            where = np.asarray(target[:2])
        if base is None:
            base = min(
                names, key=lambda n: float(np.linalg.norm(np.asarray(ctx.positions[n][:2]) - where))
            )
        order = [base] + sorted(
            (n for n in names if n != base),
            key=lambda n: float(np.linalg.norm(np.asarray(ctx.positions[n][:2]) - where)),
        )
        lines = [f"block_names = {_q_list(order)}"]
        expect_where = ""
        if target is not None:
            lines.append(f"put_first_on_second(block_names[0], {_q(target)})")
            base_expect = self._expect(base, target, ctx)
            if base_expect:
                lines.append(f"checkpoint('base placed', expect={_q(base_expect)})")
                expect_where = " and " + base_expect
        lines += [
            "for i in range(1, len(block_names)):",
            "    put_first_on_second(block_names[i], block_names[i - 1])",
            f"checkpoint('tower built', expect={_q('stacked(all blocks)' + expect_where)})",
        ]
        return Program(
            source="\n".join(lines) + "\n", planner=self.name, family="stack", subject=order[-1]
        )

    def _group(self, text: str, ctx: PlanContext) -> Program | None:
        """'group the blue objects together': the objects of one colour (or kind) together.

        A container among them receives the others; with none, the others go next to the one
        nearest their middle.
        """
        nouns = _alternation(
            (*kind_nouns(furniture=False, plural=True), *sorted(GENERIC_OBJECT_WORDS))
        )
        m = re.fullmatch(
            r"(?:group|gather|collect|bring|put|place|move|keep|cluster|cluster up|round up)\s+"
            rf"(?:all\s+(?:of\s+)?)?(?:the\s+)?(?:([a-z]+)\s+)?({nouns})\s+"
            r"(?:together|in one place|in a group|into a group|close together)",
            text,
        )
        if not m:
            return None
        color = canonical_color(m.group(1) or "")
        if m.group(1) and color is None:
            return None
        kind = kind_of_noun(m.group(2))
        members = [
            n
            for n in ctx.object_names
            if not _is_kind(n, furniture=True)
            and (color is None or n.split()[0] == color)
            and (kind is None or kind_of_name(n) == kind)
        ]
        if len(members) < 2:
            raise UnknownObjectError(
                f"grouping needs two objects or more; {len(members)} match "
                f"(objects: {ctx.object_names})"
            )
        containers = [n for n in members if _is_kind(n, container=True)]
        movers = [n for n in members if _is_kind(n, graspable=True) and n not in containers]
        lines: list[str] = []
        if containers:
            centre = np.mean([np.asarray(ctx.positions[n][:2]) for n in movers], axis=0)
            bowl = min(
                containers,
                key=lambda c: float(np.linalg.norm(np.asarray(ctx.positions[c][:2]) - centre)),
            )
            for name in movers:
                lines += _placed_step(name, bowl, "in", done="grouped")
        else:
            centre = np.mean([np.asarray(ctx.positions[n][:2]) for n in movers], axis=0)
            anchor = min(
                movers,
                key=lambda c: float(np.linalg.norm(np.asarray(ctx.positions[c][:2]) - centre)),
            )
            placed = dict(ctx.positions)
            for name in movers:
                if name == anchor:
                    continue
                spot = self._beside(
                    anchor,
                    PlanContext(
                        object_names=ctx.object_names,
                        positions={k: v for k, v in placed.items() if k != name},
                    ),
                )
                placed[name] = [*spot, 0.0]
                lines.append(f"put_first_on_second({_q(name)}, {_q(spot)})")
        if not movers:
            raise UnknownObjectError("none of those objects can be picked up")
        return Program(
            source="\n".join(lines) + "\n", planner=self.name, family="group", subject=movers[-1]
        )

    def _corners(self, text: str, ctx: PlanContext) -> Program | None:
        """'put all the blocks in different corners': one block to each corner, nearest first."""
        from corrigible.sim_envs.locations import location_names

        plural = _alternation(kind_nouns(graspable=True, plural=True))
        m = re.fullmatch(
            rf"{_PLACE_VERB}\s+(?:all\s+(?:of\s+)?)?(?:the\s+)?({plural})\s+(?:in|into|on|at|to)\s+"
            r"(?:the\s+)?(?:different|separate|distinct|their own|all four|the four|four)"
            r"\s+corners",
            text,
        )
        if not m:
            return None
        kind = kind_of_noun(m.group(1))
        names = [n for n in ctx.object_names if kind_of_name(n) == kind]
        corners = [c for c in location_names() if c.endswith("corner")]
        if not names or len(names) > len(corners):
            raise UnknownObjectError(
                f"there are {len(names)} {m.group(1)} and {len(corners)} corners; one per corner "
                "needs at most four"
            )
        free = list(corners)
        lines: list[str] = []
        for name in names:
            here = np.asarray(ctx.positions[name][:2])
            corner = min(free, key=lambda c: float(np.linalg.norm(location_xy(c) - here)))
            free.remove(corner)
            lines += _placed_step(name, corner, "at")
        return Program(source="\n".join(lines) + "\n", planner=self.name, family="location")

    def _question(self, text: str, ctx: PlanContext) -> Program | None:
        """Questions answered with say(): how many, what colour, where, which, is there.

        The program looks when it runs (counts and colours come from perception then); what
        a question names is resolved as any object phrase is, and refused the same way.
        """
        m = re.fullmatch(
            r"how many\s+(?:([a-z]+)\s+)?([a-z]+)\s+(?:are there|do you see|can you see|are on the"
            r" table|are (?:there )?on the table|are left|remain|there are)(?:\s+on the table)?",
            text,
        )
        if m:
            color = canonical_color(m.group(1) or "") if m.group(1) else None
            if m.group(1) and color is None:
                return None
            kind = kind_of_noun(m.group(2))
            if kind is None and m.group(2) not in GENERIC_OBJECT_WORDS:
                return None
            tests = []
            if color:
                tests.append(f"name.startswith({_q(color + ' ')})")
            if kind:
                tests.append(f"name.endswith({_q(' ' + kind)})")
            else:
                tests.append("name != 'drawer'")
            said = " " + (f"{color} " if color else "") + m.group(2)
            source = (
                f"names = [name for name in get_obj_names() if {' and '.join(tests)}]\n"
                f"say('I see ' + str(len(names)) + {_q(said)})\n"
            )
            return Program(source=source, planner=self.name, family="question")
        m = re.fullmatch(r"what colou?r is\s+(.+)", text)
        if m:
            obj = self._object(m.group(1), ctx)
            source = f"say({_q('the ' + obj + ' is ')} + get_color({_q(obj)}))\n"
            return Program(source=source, planner=self.name, family="question", subject=obj)
        m = re.fullmatch(r"where is\s+(.+)", text)
        if m:
            obj = self._object(m.group(1), ctx)
            source = (
                f"pos = get_obj_pos({_q(obj)})\n"
                "near = min(get_location_names(), key=lambda n: "
                "float(np.linalg.norm(get_location_pos(n) - pos[:2])))\n"
                f"say({_q('the ' + obj + ' is nearest the ')} + near)\n"
            )
            return Program(source=source, planner=self.name, family="question", subject=obj)
        m = re.fullmatch(r"which\s+(.+?)\s+is\s+(.+)", text)
        if m:
            obj = self._object(f"the {m.group(1)} {m.group(2)}", ctx)
            source = f"say({_q('the ' + obj)})\n"
            return Program(source=source, planner=self.name, family="question", subject=obj)
        m = re.fullmatch(
            r"(?:is there|are there|do you see|can you see)\s+(?:an?|any)\s+(.+)", text
        )
        if m:
            words = m.group(1).split()
            color = canonical_color(words[0]) if len(words) == 2 else None
            kind = kind_of_noun(words[-1])
            if kind is None or (len(words) == 2 and color is None) or len(words) > 2:
                return None
            tests = [f"name.endswith({_q(' ' + kind)})"]
            if color:
                tests.append(f"name.startswith({_q(color + ' ')})")
            source = (
                f"found = [name for name in get_obj_names() if {' and '.join(tests)}]\n"
                "say('yes: ' + ', '.join(found) if found else 'no')\n"
            )
            return Program(source=source, planner=self.name, family="question")
        return None

    def _imagine(self, text: str, ctx: PlanContext) -> Program | None:
        """'imagine that the bowls are biomes and the blocks are parts of a building'.

        Code as Policies sets up a mapping before the task; the program acknowledges it and
        moves nothing. The task that follows names places by what they stand for ("in the
        grasslands"), which destinations read by colour (`_associated_container`).
        """
        plurals = _alternation(kind_nouns(furniture=False, plural=True))
        clause = (
            r"(?:let's\s+)?(?:imagine|pretend|suppose|assume)\s+(?:that\s+)?(?:the\s+)?"
            rf"({plurals})\s+(?:are|is)\s+[a-z ]+?"
        )
        m = re.fullmatch(rf"{clause}(?:\s+and\s+{clause})?", text)
        if not m:
            return None
        kinds = [kind_of_noun(g) for g in m.groups() if g]
        said = " and ".join(f"the {object_kind(k).name}s" for k in kinds if k)
        return Program(
            source=f"say({_q('noted what ' + said + ' stand for; nothing to move yet')})\n",
            planner=self.name,
            family="context",
        )

    def _matching(self, text: str, ctx: PlanContext) -> Program | None:
        if re.search(
            r"\b(non\s?matching|not matching|mismatch(?:ed|ing)?|different colou?rs?"
            r"|wrong colou?rs?|other colou?rs?|(?:don't|do not|doesn't|does not) match)\b",
            text,
        ):
            return self._mismatching(text, ctx)
        if not re.search(
            r"\b(matching|same colou?r|corresponding|own colou?r|their colou?rs?|its colou?r"
            r"|colou?r matching|by colou?r)\b",
            text,
        ):
            return None
        if not any(noun in text for noun in object_kind("bowl").nouns):
            return None
        one = re.match(rf"{_PLACE_VERB}\s+{_OBJ}\s+{_PREP}\s+", text)
        if one and self._mentions(one.group(1), ctx):
            # "move the cyan block into its corresponding bowl": that block only.
            obj = self._object(one.group(1), ctx)
            color = parse_object_name(obj)
            bowl = f"{color[0]} bowl" if color and color[0] else None
            if bowl is None or bowl not in ctx.object_names:
                raise UnknownObjectError(
                    f"there is no bowl of the {obj}'s colour on the table; objects: "
                    f"{ctx.object_names}"
                )
            return self._put(obj, bowl, ctx, "matching")
        source = (
            "for block in [name for name in get_obj_names() if name.endswith(' block')]:\n"
            "    bowl = get_color(block) + ' bowl'\n"
            "    if is_obj_visible(bowl):\n"
            "        put_first_on_second(block, bowl)\n"
            "        checkpoint(block + ' matched', expect='in(' + block + ', ' + bowl + ')')\n"
        )
        return Program(source=source, planner=self.name, family="matching")

    def _mismatching(self, text: str, ctx: PlanContext) -> Program | None:
        """'put the blocks in the bowls with non-matching colors': no block in its colour."""
        if not any(noun in text for noun in object_kind("bowl").nouns):
            return None
        blocks = self._blocks(ctx)
        bowls = [n for n in ctx.object_names if kind_of_name(n) == "bowl"]
        # Each block to the nearest bowl of another colour not yet used (any bowl once all
        # are used); one bowl of each block's own colour only is no answer.
        lines: list[str] = []
        free = list(bowls)
        for block in sorted(blocks):
            own = block.split()[0]
            choices = [b for b in free if b.split()[0] != own] or [
                b for b in bowls if b.split()[0] != own
            ]
            if not choices:
                raise UnknownObjectError(
                    f"every bowl is the {block}'s colour; there is no other bowl for it"
                )
            here = np.asarray(ctx.positions[block][:2])
            bowl = min(
                choices,
                key=lambda b: float(np.linalg.norm(np.asarray(ctx.positions[b][:2]) - here)),
            )
            if bowl in free:
                free.remove(bowl)
            lines += _placed_step(block, bowl, "in")
        return Program(source="\n".join(lines) + "\n", planner=self.name, family="matching")

    def _line(self, text: str, ctx: PlanContext) -> Program | None:
        if not re.search(r"\b(line|row|column|line up|lined up)\b", text):
            return None
        vertical = bool(
            re.search(
                r"\b(vertical|vertically|column|front to back|back to front|top to bottom)\b", text
            )
        )
        # "a line of blocks on the right side": along that side (Code as Policies' prompt).
        side_m = re.search(
            r"\b(?:on|along|at|to|by)\s+the\s+(left|right|top|bottom|far|near|front|back)\s+"
            r"(?:side|edge)\b",
            text,
        )
        side = side_m.group(1) if side_m else None
        side = {"far": "top", "back": "top", "near": "bottom", "front": "bottom"}.get(side, side)
        if side is not None and not re.search(
            r"\b(horizontal|horizontally|vertical|vertically)\b", text
        ):
            vertical = side in ("left", "right")
        blocks = self._blocks(ctx)
        if len(blocks) < 2:
            raise UnknownObjectError(
                f"a line needs at least two blocks; the robot sees {ctx.object_names}"
            )
        if re.search(r"\bdiagonal(?:ly)?\b", text):
            return self._diagonal(blocks, text, ctx)
        slots = self._line_slots(blocks, ctx, vertical, side)
        axis = 0 if vertical else 1
        order = sorted(blocks, key=lambda b: ctx.positions[b][axis])
        slot_order = sorted(range(len(slots)), key=lambda i: slots[i][axis])
        lines = ["# Slots chosen clear of the bowls and of the blocks not yet moved."]
        lines.append("slots = " + "[" + ", ".join(_q(s) for s in slots) + "]")
        lines.append(
            "for name, slot in zip("
            + _q_list(order)
            + ", "
            + "[slots[i] for i in "
            + str(slot_order)
            + "]):"
        )
        lines.append("    put_first_on_second(name, slot)")
        lines.append(
            "checkpoint('line done', "
            f"expect='line(all blocks, {'vertical' if vertical else 'horizontal'})')"
        )
        return Program(source="\n".join(lines) + "\n", planner=self.name, family="line")

    def _diagonal(self, blocks: list[str], text: str, ctx: PlanContext) -> Program:
        """A diagonal line through the middle, bottom left to top right unless said otherwise."""
        from corrigible.sim_envs.locations import location_xy

        # Top is +x, left is +y: bottom left -> top right runs along (+x, -y).
        falling = bool(re.search(r"top left|bottom right", text))
        direction = np.array([1.0, 1.0 if falling else -1.0]) / np.sqrt(2.0)
        spacing = 0.10 if len(blocks) <= 4 else 0.08
        offsets = (np.arange(len(blocks)) - (len(blocks) - 1) / 2) * spacing
        slots = [location_xy("middle") + o * direction for o in offsets]
        return self._arrange(blocks, slots, ctx, "line", "diagonal line done")

    def _arrange(
        self, blocks: list[str], slots: list[np.ndarray], ctx: PlanContext, family: str, done: str
    ) -> Program:
        """Puts each block on a slot (nearest first), after moving away blocks in the way."""
        remaining = list(range(len(slots)))
        pairs: list[tuple[str, list[float]]] = []
        for block in sorted(
            blocks,
            key=lambda b: min(
                float(np.linalg.norm(np.asarray(ctx.positions[b][:2]) - slots[i]))
                for i in remaining
            ),
        ):
            here = np.asarray(ctx.positions[block][:2])
            i = min(remaining, key=lambda k: float(np.linalg.norm(here - slots[k])))
            remaining.remove(i)
            pairs.append((block, [float(v) for v in slots[i]]))
        # A block whose slot another unmoved block still covers waits until that one moved.
        where = {b: np.asarray(ctx.positions[b][:2]) for b in blocks}
        ordered: list[tuple[str, list[float]]] = []
        while pairs:
            clear = [
                (b, slot)
                for b, slot in pairs
                if all(
                    o == b or float(np.linalg.norm(where[o] - np.asarray(slot))) > 0.06
                    for o, _ in pairs
                )
            ]
            b, slot = (clear or pairs)[0]
            pairs.remove((b, slot))
            where[b] = np.asarray(slot)
            ordered.append((b, slot))
        lines = [f"put_first_on_second({_q(b)}, {_q(s)})" for b, s in ordered]
        lines.append(f"checkpoint({_q(done)})")
        return Program(source="\n".join(lines) + "\n", planner=self.name, family=family)

    def _shape(self, text: str, ctx: PlanContext) -> Program | None:
        """'arrange the blocks in a circle / triangle / square' around the middle (CaP's shapes)."""
        from corrigible.sim_envs.locations import location_xy

        m = re.search(
            r"\b(?:in|into|as|to form|forming|making|make)\s+(?:a|the)\s+"
            r"(circle|ring|triangle|square|rectangle)\b",
            text,
        )
        if not m or not re.search(
            r"\b(arrange|put|place|move|make|form|set|lay|organi[sz]e)\b", text
        ):
            return None
        blocks = self._blocks(ctx)
        shape = {"ring": "circle", "rectangle": "square"}.get(m.group(1), m.group(1))
        need = {"circle": 3, "triangle": 3, "square": 4}[shape]
        if len(blocks) < need:
            raise UnknownObjectError(
                f"a {shape} needs at least {need} blocks; the robot sees {len(blocks)}"
            )
        n = len(blocks)
        centre = location_xy("middle")
        if shape == "circle":
            radius = max(0.08, 0.10 * n / (2 * np.pi) * 1.2)
            angles = np.arange(n) * 2 * np.pi / n
            slots = [centre + radius * np.array([np.cos(a), np.sin(a)]) for a in angles]
        else:
            corners = 3 if shape == "triangle" else 4
            radius = 0.12 if shape == "triangle" else 0.10
            start = np.pi / 2 if shape == "triangle" else np.pi / 4
            vertices = [
                centre
                + radius
                * np.array(
                    [
                        np.cos(start + k * 2 * np.pi / corners),
                        np.sin(start + k * 2 * np.pi / corners),
                    ]
                )
                for k in range(corners)
            ]
            # The vertices first, then evenly along the sides (one more per side each round).
            per_side = int(np.ceil(n / corners))
            slots = [
                vertices[k] + (vertices[(k + 1) % corners] - vertices[k]) * j / per_side
                for j in range(per_side)
                for k in range(corners)
            ][:n]
        return self._arrange(blocks, slots, ctx, "shape", f"{shape} done")

    @staticmethod
    def _line_slots(
        blocks: list[str], ctx: PlanContext, vertical: bool, side: str | None = None
    ) -> list[list[float]]:
        # 10 cm apart: room for the open fingers between neighbours (8 cm caused missed grasps).
        n, spacing = len(blocks), 0.10 if len(blocks) <= 4 else 0.08
        fixed = [
            (np.asarray(ctx.positions[o][:2]), 0.115 if _is_kind(o, container=True) else 0.075)
            for o in ctx.object_names
            if o not in blocks and o in ctx.positions and not _is_kind(o, furniture=True)
        ]
        movers = {b: np.asarray(ctx.positions[b][:2]) for b in blocks}
        order = sorted(blocks, key=lambda b: movers[b][0 if vertical else 1])
        best, best_score = None, -np.inf
        along_range = np.arange(-0.10, 0.121, 0.01)
        cross_range = (
            np.arange(0.42, 0.631, 0.01) if not vertical else np.arange(-0.20, 0.221, 0.01)
        )
        # A line said to be on a side keeps to that third of the table across it, out to the
        # corners' margin inside the workspace (`locations.WORKSPACE_XY`): a bowl standing on
        # that side can leave no clear slot nearer the middle (a block set on its rim slides).
        cross_range = (
            {
                "left": np.arange(0.10, 0.251, 0.01),
                "right": np.arange(-0.23, -0.079, 0.01),
                "top": np.arange(0.56, 0.651, 0.01),
                "bottom": np.arange(0.40, 0.481, 0.01),
            }.get(side or "", cross_range)
            if (side in ("left", "right")) == vertical
            else cross_range
        )
        for cross in cross_range:
            for centre in along_range if not vertical else np.arange(0.47, 0.581, 0.01):
                offsets = (np.arange(n) - (n - 1) / 2) * spacing
                slots = [
                    np.array([cross, centre + o]) if not vertical else np.array([centre + o, cross])
                    for o in offsets
                ]
                score = np.inf
                # Blocks go to slots in order along the line (as the program assigns them); a
                # slot must be clear of the bowls and of every block except its own.
                for s, own in zip(slots, order, strict=True):
                    for p, r in fixed:
                        score = min(score, np.linalg.norm(s - p) - r)
                    for name, p in movers.items():
                        if name != own:
                            score = min(score, np.linalg.norm(s - p) - 0.065)
                if score > best_score:
                    best, best_score = slots, score
        return [[float(v) for v in s] for s in best]

    def _warm_cool(self, text: str, ctx: PlanContext) -> Program | None:
        if not (re.search(r"\bwarm\b", text) and re.search(r"\b(cool|cold)\b", text)):
            return None
        bowls = [n for n in ctx.object_names if kind_of_name(n) == "bowl"]
        if len(bowls) < 2:
            raise UnknownObjectError(
                f"sorting warm and cool blocks needs two bowls; the robot sees {bowls}"
            )
        warm_bowl = next((b for b in bowls if b.split()[0] in WARM_COLORS), bowls[0])
        cool_bowl = next(
            (b for b in bowls if b.split()[0] in COOL_COLORS and b != warm_bowl),
            next(b for b in bowls if b != warm_bowl),
        )
        source = (
            f"warm_colors = {sorted(WARM_COLORS)!r}\n"
            f"warm_bowl, cool_bowl = {_q(warm_bowl)}, {_q(cool_bowl)}\n"
            "for block in [name for name in get_obj_names() if name.endswith(' block')]:\n"
            "    bowl = warm_bowl if get_color(block) in warm_colors else cool_bowl\n"
            "    put_first_on_second(block, bowl)\n"
            "    checkpoint(block + ' sorted', expect='in(' + block + ', ' + bowl + ')')\n"
        )
        return Program(source=source, planner=self.name, family="warm_cool")

    def _spatial(self, text: str, ctx: PlanContext) -> Program | None:
        rels = "|".join(sorted((re.escape(r) for r in _RELATIONS), key=len, reverse=True))
        nouns = _alternation(kind_nouns(graspable=True, plural=False))
        m = re.fullmatch(
            rf"{_PLACE_VERB}\s+(?:the\s+)?({nouns}|object|thing|one)\s+"
            rf"(?:that\s+is\s+|which\s+is\s+|that's\s+)?({rels})\s+{_OBJ}\s+{_PREP}\s+"
            r"(?:the\s+)?(.+)",
            text,
        )
        if not m:
            return None
        noun, rel, ref_phrase, _, dest_phrase = m.groups()
        ref = self._object(ref_phrase, ctx)
        subject = self._select(noun, _RELATIONS[rel], ref, ctx)
        if dest_phrase.strip() in ("drawer", "the drawer"):
            return self._put(subject, "drawer", ctx, "spatial")
        target, _ = self._destination(dest_phrase, ctx)
        program = self._put(subject, target, ctx, "spatial")
        program.notes.append(f"'the {noun} {rel} the {ref}' is the {subject}")
        return program

    @staticmethod
    def _select(noun: str, relation: str, ref: str, ctx: PlanContext) -> str:
        kind = None if noun in GENERIC_OBJECT_WORDS else kind_of_noun(noun)
        candidates = [
            n
            for n in ctx.object_names
            if n != ref
            and n in ctx.positions
            and _is_kind(n, graspable=True)
            and (kind is None or kind_of_name(n) == kind)
        ]
        r = np.asarray(ctx.positions[ref][:2])
        tests = {
            "left": lambda p: p[1] > r[1] + 0.03,
            "right": lambda p: p[1] < r[1] - 0.03,
            "front": lambda p: p[0] < r[0] - 0.03,
            "behind": lambda p: p[0] > r[0] + 0.03,
            "closest": lambda p: True,
            "farthest": lambda p: True,
        }
        chosen = [c for c in candidates if tests[relation](np.asarray(ctx.positions[c][:2]))]
        if not chosen:
            raise UnknownObjectError(
                f"no {kind or 'object'} is {_RELATION_WORDS[relation]} the {ref}; "
                f"the robot sees {ctx.object_names}"
            )
        dist = lambda c: float(np.linalg.norm(np.asarray(ctx.positions[c][:2]) - r))  # noqa: E731
        return max(chosen, key=dist) if relation == "farthest" else min(chosen, key=dist)

    def _all_into(self, text: str, ctx: PlanContext) -> Program | None:
        """'put all the blocks in the red bowl', 'put the red and blue blocks in the drawer'.

        Also 'all the blocks except the red one' and 'the warm coloured blocks' (the palette's
        warm/cool split).
        """
        graspable = _alternation(kind_nouns(graspable=True))
        excluded: list[str] = []
        but = re.fullmatch(
            rf"({_PLACE_VERB}\s+(?:all\s+(?:of\s+)?the|all|every|each|the)\s+({graspable}))\s+"
            r"(?:except(?:\s+for)?|but(?:\s+not)?|apart from|other than|besides)\s+(.+?)\s+"
            rf"({_PREP}\s+.+)",
            text,
        )
        if but:
            kind = kind_of_noun(but.group(2))
            recent = [h.subject for h in ctx.history if h.subject]
            by = ObjectResolver(ctx.object_names, ctx.positions, recent, default_kind=kind)
            for phrase in re.split(r"\s*,\s*|\s+and\s+|\s+or\s+", but.group(3)):
                if phrase.strip():
                    excluded.append(by.resolve(phrase))
            text = f"{but.group(1)} {but.group(4)}"
        group = re.fullmatch(
            rf"{_PLACE_VERB}\s+(?:all\s+(?:of\s+)?)?(?:the\s+)?(warm|cool|cold)\s+(?:coloured\s+)?"
            rf"({graspable})\s+{_PREP}\s+(?:the\s+)?(.+)",
            text,
        )
        if group:
            palette = WARM_COLORS if group.group(1) == "warm" else COOL_COLORS
            kind = kind_of_noun(group.group(2))
            names = [
                n for n in ctx.object_names if kind_of_name(n) == kind and n.split()[0] in palette
            ]
            return self._into(names, group.group(4), ctx)
        m = re.fullmatch(
            rf"{_PLACE_VERB}\s+(?:all\s+(?:of\s+)?the|all|every|each|the)\s+({graspable})\s+"
            rf"{_PREP}\s+(?:the\s+)?(.+)",
            text,
        )
        names: list[str] = []
        if m:
            kind = kind_of_noun(m.group(1))
            names = [n for n in ctx.object_names if kind_of_name(n) == kind and n not in excluded]
            dest = m.group(3)
        else:
            plurals = _alternation(kind_nouns(graspable=True, plural=True))
            m = re.fullmatch(
                rf"{_PLACE_VERB}\s+(?:the\s+)?((?:[a-z]+\s*,\s*)*[a-z]+\s+and\s+(?:the\s+)?"
                rf"[a-z]+)\s+({plurals})\s+{_PREP}\s+(?:the\s+)?(.+)",
                text,
            )
            if not m:
                return None
            kind = kind_of_noun(m.group(2))
            colors = [c for c in re.split(r"\s*,\s*|\s+and\s+(?:the\s+)?", m.group(1)) if c]
            names = [self._object(f"{c} {kind}", ctx) for c in colors]
            dest = m.group(4)
        return self._into(names, dest, ctx)

    def _into(self, names: list[str], dest: str, ctx: PlanContext) -> Program:
        """Each of `names` into one container, a checkpoint after each and for the whole."""
        if not names:
            raise UnknownObjectError(
                f"there are no such objects on the table; objects: {ctx.object_names}"
            )
        target, _ = self._destination(dest, ctx)
        if (
            not isinstance(target, str)
            or target not in ctx.object_names
            or not _is_kind(target, container=True)
        ):
            raise ParseError(f"several objects can go into a bowl or the drawer, not onto {dest!r}")
        lines = ["open_drawer('drawer')"] if target == "drawer" else []
        for name in names:  # a checkpoint after every subgoal, then the whole
            lines += _placed_step(name, target, "in")
        expect = " and ".join(f"in({n}, {target})" for n in names)
        lines.append(f"checkpoint('all placed', expect={_q(expect)})")
        return Program(
            source="\n".join(lines) + "\n",
            planner=self.name,
            family="pick_place",
            subject=names[-1],
            target=target,
        )

    def _relative_move(self, text: str, ctx: PlanContext) -> Program | None:
        """'move the red block a bit to the left', 'slide the blue cube 5 cm forward'."""
        from corrigible.policies.language import _DIRECTION_WORDS, parse_magnitude
        from corrigible.policies.skills.library import DIRECTIONS

        plural = _alternation(kind_nouns(graspable=True, plural=True))
        every = re.fullmatch(
            rf"(?:move|shift|slide|nudge)\s+(?:all\s+(?:of\s+)?the|all|every|each|the)\s+({plural})"
            r"\s+(.*\d.*|.*\b(?:bit|little|slightly)\b.*)",
            text,
        )
        if every:
            kind = kind_of_noun(every.group(1))
            names = [n for n in ctx.object_names if kind_of_name(n) == kind]
            programs = [self._relative_move(f"move the {n} {every.group(2)}", ctx) for n in names]
            if not names or any(p is None for p in programs):
                return None
            return Program(
                source="".join(p.source for p in programs if p),
                planner=self.name,
                family="pick_place",
                subject=names[-1],
            )
        m = re.fullmatch(rf"(?:move|shift|slide|nudge|bring|put|place)\s+{_OBJ}\s+(.*)", text)
        if not m or not self._mentions(m.group(1), ctx):
            return None
        rest = m.group(2)
        if re.search(r"\b(side|corner|edge|middle|center|centre|of)\b", rest):
            return None  # a named location or a relation, handled elsewhere
        distance, rest = parse_magnitude(rest)
        rest = " " + re.sub(r"\b(to the|to|towards?|the|a|more|bit|further|by)\b", " ", rest) + " "
        words = " ".join(rest.split())
        if words in (
            "closer to the robot",
            "closer to me",
            "toward the robot",
            "towards me",
            "robot",
        ):
            words = "closer"
        words = {"top": "forward", "bottom": "backward", "towards top": "forward"}.get(words, words)
        direction = _DIRECTION_WORDS.get(words.replace(" robot", "").strip())
        if direction is None or direction in ("up", "down"):
            return None
        obj = self._object(m.group(1), ctx)
        start = np.asarray(ctx.positions[obj][:2])
        goal = start + np.asarray(DIRECTIONS[direction][:2]) * distance
        program = self._put(obj, [float(goal[0]), float(goal[1])], ctx, "pick_place")
        program.notes.append(f"moved {distance * 100:.0f} cm {direction}")
        return program

    def _pick_place(self, text: str, ctx: PlanContext) -> Program | None:
        two = re.fullmatch(
            rf"({_PLACE_VERB}\s+{_OBJ}\s+(?:(?:in|halfway|midway|right)\s+)?between)\s+"
            r"(?:the\s+)?(?:two|2)\s+([a-z]+)",
            text,
        )
        if two and kind_of_noun(two.group(3)):  # "in between the two bowls": when two there are
            kind = kind_of_noun(two.group(3))
            pair = [n for n in ctx.object_names if kind_of_name(n) == kind]
            if len(pair) != 2:
                raise UnknownObjectError(
                    f"'the two {two.group(3)}': the robot sees {len(pair)} ({ctx.object_names})"
                )
            text = f"{two.group(1)} the {pair[0]} and the {pair[1]}"
        m = re.fullmatch(
            rf"{_PLACE_VERB}\s+{_OBJ}\s+(?:(?:in|halfway|midway|right)\s+)?between\s+(.+?)"
            r"\s+and\s+(.+)",
            text,
        )
        if m and self._mentions(m.group(1), ctx):
            # "place the red block between the blue bowl and the green block": the midpoint.
            obj = self._object(m.group(1), ctx)
            ends = [self._destination(m.group(k), ctx, obj)[0] for k in (2, 3)]
            points = [self._xy_of(e, ctx) for e in ends]
            program = self._put(
                obj, [float(v) for v in (points[0] + points[1]) / 2], ctx, "pick_place"
            )
            program.notes.append("halfway between " + " and ".join(map(str, ends)))
            return program
        m = re.fullmatch(
            rf"{_PLACE_VERB}\s+{_OBJ}\s+(\d+(?:\.\d+)?\s*[a-z]+)\s+"
            r"(to the left of|left of|to the right of|right of|in front of|behind|above|below)"
            r"\s+(.+)",
            text,
        )
        if m and self._mentions(m.group(1), ctx):
            # "put the green block 10 cm to the left of the pink bowl".
            from corrigible.policies.language import parse_magnitude

            obj = self._object(m.group(1), ctx)
            distance, rest = parse_magnitude(m.group(2))
            if rest:
                raise ParseError(f"could not read the distance {m.group(2)!r}; say e.g. 10 cm")
            side = _RELATIONS[m.group(3)]
            ref = self._xy_of(self._destination(m.group(4), ctx, obj)[0], ctx)
            unit = np.asarray(_DEST_OFFSETS[side]) / np.linalg.norm(_DEST_OFFSETS[side])
            return self._put(obj, [float(v) for v in ref + unit * distance], ctx, "pick_place")
        rel_prep = (
            r"(to the left of|to the right of|left of|right of|in front of|behind|next to|"
            r"beside|near|close to|by)"
        )
        m = re.fullmatch(rf"{_PLACE_VERB}\s+{_OBJ}\s+{rel_prep}\s+(.+)", text)
        if m and self._mentions(m.group(1), ctx):
            obj = self._object(m.group(1), ctx)
            target, _ = self._destination(f"{m.group(2)} {m.group(3)}", ctx, obj)
            return self._put(obj, target, ctx, "pick_place")
        patterns = [
            rf"(?:pick up|pick|grab|take|lift|grasp)\s+(?:up\s+)?{_OBJ}\s+(?:up\s+)?and\s+"
            rf"(?:put|place|drop|set|move|stack)\s+(?:it|that)\s+{_PREP}\s+(.+)",
            rf"{_PLACE_VERB}\s+{_OBJ}\s+{_PREP}\s+(.+)",
        ]
        for pattern in patterns:
            m = re.fullmatch(pattern, text)
            if (
                not m
                or not self._mentions(m.group(1), ctx)
                and m.group(1).strip() not in ("it", "that")
            ):
                continue
            obj = self._object(m.group(1), ctx)
            target, _ = self._destination(m.group(3), ctx, obj)
            if target == obj:
                raise ParseError(f"cannot put the {obj} on itself")
            return self._put(obj, target, ctx, "pick_place")
        # "put the yellow one the green thing" (SayCan's prompt): two objects, no preposition.
        m = re.fullmatch(
            rf"{_PLACE_VERB}\s+(the\s+[a-z]+(?:\s+[a-z]+)?)\s+(the\s+[a-z]+(?:\s+[a-z]+)?)", text
        )
        if m and self._mentions(m.group(1), ctx) and self._mentions(m.group(2), ctx):
            obj, target = self._object(m.group(1), ctx), self._object(m.group(2), ctx)
            if target != obj and _is_kind(obj, graspable=True):
                return self._put(obj, target, ctx, "pick_place")
        return None

    def _skill(self, text: str, ctx: PlanContext) -> Program | None:
        try:
            calls = parse_skill_command(text, ctx.object_names, self._resolver(ctx))
        except ParseError:
            return None
        lines, subject = [], None
        for call in calls:
            if call.skill == "move_ee":
                dx, dy, dz = call.args["delta"]
                lines.append(f"move_ee({_q([dx, dy, dz])[1:-1]})")
            elif call.skill == "put_first_on_second":
                return self._put(call.args["obj"], call.args["target"], ctx, "pick_place")
            else:
                args = ", ".join(_literal(v) for v in call.args.values())
                lines.append(f"{call.skill}({args})")
                subject = call.args.get("obj", subject)
                if call.skill == "point_at":  # the pose is the result: check it
                    expect = f"pointing_at({call.args['obj']})"
                    lines.append(f"checkpoint('pointing', expect={_q(expect)})")
        return Program(
            source="\n".join(lines) + "\n", planner=self.name, family="skill", subject=subject
        )


def _placed_step(obj: str, target: str, relation: str, done: str = "placed") -> list[str]:
    """One subgoal's program lines: the placement, then its checkpoint (`relation(obj, target)`)."""
    return [
        f"put_first_on_second({_q(obj)}, {_q(target)})",
        f"checkpoint({_q(obj + ' ' + done)}, expect={_q(f'{relation}({obj}, {target})')})",
    ]


def _q_list(names: list[str]) -> str:
    return "[" + ", ".join(_literal(n) for n in names) + "]"


def record_history(
    program: Program, instruction: str, before: dict[str, list[float]]
) -> HistoryItem:
    """What the session remembers of a finished instruction (for undo / do the same)."""
    moved = {}
    if program.subject and program.subject in before:
        moved[program.subject] = before[program.subject][:2]
    if program.family in ("stack", "matching", "line", "warm_cool", "session"):
        moved = {n: p[:2] for n, p in before.items() if not _is_kind(n, container=True)}
    return HistoryItem(
        instruction=instruction,
        program=program.source,
        subject=program.subject,
        target=program.target,
        moved_from=moved,
    )


__all__ = ["GrammarPlanner", "record_history", "did_you_mean"]
