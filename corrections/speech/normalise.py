"""Cleaning a transcript into the words a person would have typed to this robot.

Whisper base, biased or not, still writes what an English sentence *might* contain: "rip it
lower" for "grip it lower", "posh it further" for "push", "shift right to cm" for "2 cm", "open
the door" where the scene has a drawer. The router and the interpreter read words, so one such
word changes the effect. `TranscriptNormaliser` repairs only what it can be confident about:

1. Numbers before a unit: "to cm" / "too cm" / "two centimetres" -> "2 cm" (Whisper hears
   the digit as the preposition), number words up to twenty -> digits ("three cm" -> "3 cm"),
   which is how the interpreter reads a distance; and the other way round, a "2" before "far",
   "high", "fast" ... is "too" ("2 far right" -> "too far right").
2. Near-miss words: a word that is NOT in the correction vocabulary (the router's example
   phrasings, the simulated person's phrasings, the object vocabulary, the scene's object
   names, the magnitude and turn words the interpreter knows, common function words, and any
   of these plus an inflection) is replaced by the effect-carrying word (`KEY_WORDS`: a
   direction, a skill verb, a part of the arm, a speed; or a colour, a kind, a scene object's
   word) that sounds most like it, only when exactly one word is that close both in a rough
   phonetic key and in spelling. A word that IS in the vocabulary is never touched: "lift" and
   "left" are both correction words, so neither becomes the other.
3. One context: "to the lift" -> "to the left" (the lift is a motion, never a side). Nothing
   else changes a vocabulary word.

Why not a bigger language model: the repairs must be explainable (the trace keeps the raw
transcript beside the repaired one) and must never invent a word the person did not nearly say.

The vocabulary is built from the project's tuning phrasings only (never the frozen evaluation
sets the speech benchmark speaks), so the benchmark measures the normaliser, not a lookup.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from corrigible.policies.language import MAGNITUDES, TURN_WORDS_DEG
from corrigible.sim_envs.vocabulary import color_words, noun_words

_CORRECTIONS = Path(__file__).resolve().parents[1]
# The project's own phrasings of corrections, used to tune the router and to simulate people;
# never the frozen evaluation sets (corrections/data/README.md).
_PHRASE_SOURCES = (
    _CORRECTIONS / "data" / "router_examples.yaml",
    _CORRECTIONS / "corrector_phrases.yaml",
)
_WORD_RE = re.compile(r"[a-z]+(?:'[a-z]+)?")

_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
}  # fmt: skip
# Whisper's spellings of a spoken digit right before a unit ("shift right to cm").
_DIGIT_HOMOPHONES = {"to": 2, "too": 2, "for": 4, "fore": 4, "won": 1, "ate": 8}
_UNIT = r"(?:cm|mm|centimet(?:er|re)s?|millimet(?:er|re)s?|met(?:er|re)s?|degrees?|inch(?:es)?)"
# The words that carry a correction's effect: where to move, which motion, how fast, which part
# of the arm. Only these (and the scene's object words, colours and kinds) are ever snapped to:
# snapping to any vocabulary word turned "and" into "end" and "were" into "lower".
KEY_WORDS: frozenset[str] = frozenset(
    """left right forward forwards back backwards up down higher lower high low further farther
    closer grip grasp grab push pull lift drop release place put rotate turn twist open close
    hold gripper handle fingers slower faster slow fast gently gentler harder softer bit little
    touch hair tad notch wrong other instead first last wait stop""".split()
)
# Function words Whisper writes correctly far more often than it mishears a key word as one.
_FUNCTION_WORDS: frozenset[str] = frozenset(
    """the a an and or but if then than that this these those there here it its it's is are
    was were be been being am do does did done have has had having will would shall should can
    could may might must not no yes you your yours you're we our us they them their he she him
    her his i me my mine what which who whom whose when where why how all any both each few
    more most some such only own same so too very just also now again once of in on at by for
    with about against between into through during before after above below to from out off
    over under until while because as one ones get got go going gone come came make made say
    said see saw let want need like well way much many another table floor ground top side
    edge middle corner center centre long short big small good bad new old""".split()
)
# A "2" Whisper wrote for "too" ("2 far right"): the words that follow "too" in a correction.
_TOO_AFTER = r"(?:far|high|low|much|fast|slow|quick|quickly|hard|close|early|late|soon|little)"
_INFLECTIONS = ("s", "es", "ed", "d", "er", "ly")  # a known word plus one of these is known
_MIN_SNAP_LETTERS = 3  # "it", "to", "a" are never snapped: too many words sound alike
_MIN_KEY_SIMILARITY = 0.66  # 1 - phonetic key edit distance / longer key
_MIN_SPELLING_RATIO = 0.6  # difflib ratio of the spellings
_MIN_KEY_SIMILARITY_SCENE = 0.75  # enough, alone, for a noun of the scene's own objects
_MIN_SPELLING_RATIO_SAME_KEY = 0.5  # the same when the keys agree exactly ("ball", "bowl")


def _edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def phonetic_key(word: str) -> str:
    """A rough English sound skeleton: consonants kept, each vowel run one `V`.

    Coarse on purpose (non-rhotic "drawer" and "door" share "d..r"): it only proposes a
    candidate; spelling similarity and uniqueness must agree before anything is replaced.
    """
    w = re.sub(r"[^a-z]", "", word.lower())
    for old, new in (
        ("tch", "ch"), ("ph", "f"), ("ck", "k"), ("gh", ""), ("wh", "w"), ("wr", "r"),
        ("kn", "n"), ("qu", "kw"), ("x", "ks"), ("dg", "j"), ("ce", "se"), ("ci", "si"),
        ("cy", "sy"), ("c", "k"), ("z", "s"), ("aw", "a"), ("ow", "o"), ("ew", "e"),
    ):  # fmt: skip
        w = w.replace(old, new)
    if len(w) > 3 and w.endswith("e"):
        w = w[:-1]  # silent final e: "ride" ~ "rid"
    w = re.sub(r"[aeiouy]+", "V", w)
    return re.sub(r"(.)\1+", r"\1", w)


@cache
def _phrase_words() -> frozenset[str]:
    words: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, str):
            words.update(_WORD_RE.findall(node.lower()))
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in _PHRASE_SOURCES:
        walk(yaml.safe_load(path.read_text()))
    for phrase in (*MAGNITUDES, *TURN_WORDS_DEG):
        words.update(_WORD_RE.findall(phrase.lower()))
    words.update(color_words())
    words.update(noun_words())
    return frozenset(words)


def correction_vocabulary(scene_objects: Iterable[str] = ()) -> frozenset[str]:
    """Every word the correction language uses, plus the words of the scene's object names."""
    extra = {w for name in scene_objects for w in _WORD_RE.findall(str(name).lower())}
    return _phrase_words() | extra


@dataclass(frozen=True)
class Repair:
    """One word changed by the normaliser (kept in the transcript's trace)."""

    heard: str  # as transcribed
    typed: str  # what it became
    why: str  # "number", "near-miss" or "context"


@dataclass(frozen=True)
class NormalisedText:
    """The repaired text and what was changed."""

    text: str
    repairs: tuple[Repair, ...] = field(default_factory=tuple)


class TranscriptNormaliser:
    """Repairs a transcript towards the correction vocabulary (see the module docstring).

    Args:
        scene_objects: the scene's object names ("red block", "drawer"); their words join the
            vocabulary, so a scene with a "mug" can snap "mog" to it.
    """

    def __init__(self, scene_objects: Iterable[str] = ()) -> None:
        scene_objects = tuple(scene_objects)
        self.vocabulary = correction_vocabulary(scene_objects) | _FUNCTION_WORDS
        targets = set(KEY_WORDS) | set(color_words()) | set(noun_words())
        self._scene_words = {
            w for name in scene_objects for w in _WORD_RE.findall(str(name).lower())
        } - set(color_words())
        targets.update(self._scene_words)
        self.vocabulary |= targets  # a word it may become is never itself changed ("high")
        self._keys: dict[str, list[str]] = {}
        for word in sorted(targets):
            if len(word) >= _MIN_SNAP_LETTERS:
                self._keys.setdefault(phonetic_key(word), []).append(word)

    def nearest(self, word: str) -> str | None:
        """The single vocabulary word `word` was most likely heard for, or None if unsure."""
        w = word.lower()
        if len(w) < _MIN_SNAP_LETTERS or w in self.vocabulary or not w.isalpha():
            return None
        if w.endswith("ing"):
            return None  # "doing" is not "down": a verb form is heard, rarely misheard
        if any(w.endswith(end) and w[: -len(end)] in self.vocabulary for end in _INFLECTIONS):
            return None  # "comes" is "come" said otherwise, not "cubes"
        key = phonetic_key(w)
        scored: list[tuple[float, str]] = []
        for cand_key, cands in self._keys.items():
            longest = max(len(key), len(cand_key))
            key_sim = 1 - _edit_distance(key, cand_key) / longest
            if key_sim < _MIN_KEY_SIMILARITY:
                continue
            for cand in cands:
                if w.startswith(cand):
                    continue  # an inflection ("blocked", "picking") is another word
                spelling = difflib.SequenceMatcher(None, w, cand).ratio()
                same_sound = key == cand_key and spelling >= _MIN_SPELLING_RATIO_SAME_KEY
                # the scene's own objects are the likeliest words of all ("door" -> "drawer")
                in_scene = cand in self._scene_words and key_sim >= _MIN_KEY_SIMILARITY_SCENE
                if spelling >= _MIN_SPELLING_RATIO or same_sound or in_scene:
                    scored.append((key_sim + spelling, cand))
        if not scored:
            return None
        scored.sort(reverse=True)
        if len(scored) > 1 and scored[1][0] >= scored[0][0] - 1e-9:
            return None  # two equally good words: do not guess
        return scored[0][1]

    def __call__(self, text: str) -> NormalisedText:
        """`text` with numbers before units as digits and confident near-misses repaired."""
        repairs: list[Repair] = []

        def number(m: re.Match[str]) -> str:
            said = m.group(1).lower()
            value = _NUMBER_WORDS.get(said, _DIGIT_HOMOPHONES.get(said))
            if value is None:
                return m.group(0)
            repairs.append(Repair(heard=m.group(1), typed=str(value), why="number"))
            return f"{value} {m.group(2)}"

        def too(m: re.Match[str]) -> str:
            repairs.append(Repair(heard=m.group(1), typed="too", why="number"))
            return f"{'Too' if m.start() == 0 else 'too'} {m.group(2)}"

        text = re.sub(rf"\b(2|two)\s+({_TOO_AFTER})\b", too, text, flags=re.IGNORECASE)
        words = "|".join((*_NUMBER_WORDS, *_DIGIT_HOMOPHONES))
        text = re.sub(rf"\b({words})\s+({_UNIT})\b", number, text, flags=re.IGNORECASE)

        def snap(m: re.Match[str]) -> str:
            heard = m.group(0)
            best = self.nearest(heard)
            if best is None:
                return heard
            typed = best.capitalize() if heard[:1].isupper() else best
            repairs.append(Repair(heard=heard, typed=typed, why="near-miss"))
            return typed

        text = re.sub(r"[A-Za-z]+(?:'[A-Za-z]+)?", snap, text)

        # "to the lift" is never the lift (a motion, "slower on the lift"): it is the side.
        def side(m: re.Match[str]) -> str:
            repairs.append(Repair(heard=m.group(1), typed="left", why="context"))
            return m.group(0)[: m.start(1) - m.start(0)] + "left"

        text = re.sub(r"\bto the (lift)\b", side, text, flags=re.IGNORECASE)
        return NormalisedText(text=text, repairs=tuple(repairs))
