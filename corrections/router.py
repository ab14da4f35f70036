"""Routes a correction to the level it acts on: plan, skill, preference, control or undo.

DROC's `is_planning_error` question ("is this beyond the current skill?") split in four, because a
robot that is told "stop!" must not wait for a language model, and a standing preference ("always
put cubes in the drawer") belongs in the knowledge base rather than in this episode's plan:

| label        | what it changes                                  | example                        |
|--------------|--------------------------------------------------|--------------------------------|
| `plan`       | which object/target, the order, a missing step   | "no, the blue bowl"            |
| `skill`      | how a skill runs: offsets, heights, speed        | "a bit more to the left"       |
| `preference` | a standing rule for future tasks                 | "always put cubes in drawer"   |
| `control`    | the run itself: stop / pause / resume / cancel   | "hold on"                      |
| `undo`       | takes back the last applied correction           | "scratch that"                 |

The labelling rules (what each label must DO in the session, and how ambiguous phrasings are
decided) are in `data/README.md`.

`GrammarEmbeddingRouter` (offline) tries a small grammar of high-precision rules first (no model
needed, so "stop!" is routed in microseconds even before MiniLM has loaded), then falls back to
nearest-intent matching of the MiniLM embedding against `data/router_examples.yaml`. An LLM
router subclasses `CorrectionRouter` the same way and reports `method="llm"`.

An embedding decision that is unsure (low confidence, or the runner-up label close behind) is
marked `ask_back`: a session whose person can answer on the same channel asks "did you mean
...?" (`ask_back_question`) instead of guessing, and applies nothing until a "yes".
"""

from __future__ import annotations

import abc
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

import numpy as np

from corrigible.boundary import load_yaml
from corrigible.corrections.correction import Correction
from corrigible.errors import ConfigError, ParseError, did_you_mean
from corrigible.registry import Registry
from corrigible.sim_envs.vocabulary import color_words, noun_words
from corrigible.text_embedding import TextEmbedder

Label = Literal["plan", "skill", "preference", "control", "undo"]
# The documented label order: confusion-matrix rows/columns and score dicts follow it.
LABELS: tuple[Label, ...] = get_args(Label)
RouteMethod = Literal["rule", "embedding", "llm"]  # "llm" is reserved for an LLM router
DEFAULT_EXAMPLES_PATH = Path(__file__).parent / "data" / "router_examples.yaml"


@dataclass(frozen=True, kw_only=True)
class RouteDecision:
    """Where a correction goes, how sure the router is, and why."""

    label: Label  # the level the correction acts on
    confidence: float  # 0-1; 1.0 for a rule hit, softmax over label scores for embeddings
    method: RouteMethod  # which mechanism decided
    matched_example: str | None = None  # nearest example phrase (embedding) or None
    rule: str | None = None  # name of the grammar rule that fired (method "rule")
    scores: dict[str, float] = field(default_factory=dict)  # per label, in LABELS order
    is_ambiguous: bool = False  # True when the tie-break (not the top score) chose the label
    # True when the router is too unsure to act: a person who can answer should be asked first
    ask_back: bool = False
    runner_up: Label | None = None  # the second-best label (embedding decisions)

    def __post_init__(self) -> None:
        if self.label not in LABELS:
            raise ConfigError(f"RouteDecision.label must be one of {LABELS}, got {self.label!r}")
        if not 0.0 <= self.confidence <= 1.0:
            raise ConfigError(f"RouteDecision.confidence must be in [0, 1], got {self.confidence}")
        if self.method not in get_args(RouteMethod):
            raise ConfigError(
                f"RouteDecision.method must be one of {get_args(RouteMethod)}, got {self.method!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (scores rounded to 4 decimals)."""
        return {
            "label": self.label,
            "confidence": round(self.confidence, 4),
            "method": self.method,
            "matched_example": self.matched_example,
            "rule": self.rule,
            "scores": {k: round(v, 4) for k, v in self.scores.items()},
            "is_ambiguous": self.is_ambiguous,
            "ask_back": self.ask_back,
            "runner_up": self.runner_up,
        }


# --------------------------------------------------------------------------- base + registry


@dataclass(kw_only=True)
class RouterConfig:
    """Base of every router config; `type` picks the implementation from the registry."""

    type: str  # registered router name, e.g. "grammar_embedding"


# router name -> class. Each concrete `CorrectionRouter` registers itself when it is defined.
# Routers whose modules import this one, so they cannot be imported at its top, are entered
# lazily and register themselves when first asked for. The LLM router also pulls in the LLM
# backends, which offline routing never needs.
ROUTERS: Registry[type[CorrectionRouter]] = Registry(
    "router type", unknown="unknown {noun} {name!r}; registered: {choices}."
)
ROUTERS.register("llm", "corrigible.corrections.llm_router:LLMRouter")


class CorrectionRouter(abc.ABC):
    """Decides which level a correction acts on.

    Subclasses set the class attributes below (checked at import) and implement `route`.
    `route_many` may be overridden to batch model calls; it must give the same decisions.
    """

    # Every concrete subclass must set these:
    name: ClassVar[str]  # registry key, equal to its config's `type`
    config_class: ClassVar[type[RouterConfig]]  # the config dataclass it is built from

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if getattr(cls, "__abstractmethods__", None):
            return  # an intermediate abstract class
        for attr in ("name", "config_class"):
            if not hasattr(cls, attr):
                raise TypeError(f"{cls.__name__} must set the class attribute {attr!r}")
        ROUTERS.register(cls.name, cls)

    @abc.abstractmethod
    def route(self, text: str) -> RouteDecision:
        """Routes one correction text.

        Raises:
            ParseError: the text is empty.
        """

    def route_correction(self, correction: Correction) -> RouteDecision:
        """Routes a validated `Correction` by its text."""
        return self.route(correction.text)

    def route_many(self, texts: Sequence[str]) -> list[RouteDecision]:
        """Routes several texts; the default calls `route` on each."""
        return [self.route(text) for text in texts]


def router_names() -> list[str]:
    """Registered router names, sorted."""
    return sorted(ROUTERS)


def default_router_config(name: str) -> RouterConfig:
    """The default config of the router registered under `name`.

    Raises:
        UnknownNameError: no router is registered under `name`.
    """
    return ROUTERS.get(name).config_class(type=name)


def make_router(cfg: RouterConfig, **kwargs: Any) -> CorrectionRouter:
    """Builds the router registered under `cfg.type`.

    Args:
        cfg: a config whose class matches the router's `config_class`.
        **kwargs: passed to the router's constructor (e.g. `embedder=`).

    Raises:
        UnknownNameError: no router is registered under `cfg.type`.
    """
    return ROUTERS.get(cfg.type)(cfg, **kwargs)


# --------------------------------------------------------------------------- the grammar


def normalise(text: str) -> str:
    """Lower-cases, unifies apostrophes, turns punctuation into spaces and collapses whitespace."""
    text = text.lower().replace("\u2019", "'").replace("`", "'")
    text = re.sub(r"[^\w\s'-]", " ", text)
    text = text.replace("-", " ")
    return " ".join(text.split())


# Colour and object words come from the vocabulary (the kinds registered when this module is
# imported). Black and white are not palette colours, but "no, the white one" is still a
# correction about an object (which the interpreter then refuses by name).
_COLOR_WORDS = "|".join((*color_words(), "black", "white"))
_OBJECT_NOUNS = "|".join((*noun_words(), "objects?"))

# Control: the whole utterance is control phrases plus fillers ("ok, continue", "wait a sec").
_CONTROL_PHRASES = (
    "emergency stop",
    "never mind",
    "nevermind",
    "carry on",
    "keep going",
    "go on",
    "go ahead",
    "hold on",
    "hold it",
    "hold up",
    "hold still",
    "hang on",
    "wait up",
    "stop",
    "halt",
    "freeze",
    "pause",
    "unpause",
    "wait",
    "resume",
    "continue",
    "proceed",
    "cancel",
    "abort",
    "quit",
    "whoa",
)
_CONTROL_FILLERS = frozenset(
    "ok okay alright fine sure yes yeah yep please pls now robot just a an one second sec "
    "moment minute bit then that it this the task everything all good and hey um uh hmm "
    "right there you can for would could will mind me now".split()
)
_CONTROL_RE = re.compile(r"\b(?:" + "|".join(map(re.escape, _CONTROL_PHRASES)) + r")\b")
_STOP_FIRST_RE = re.compile(
    r"^(?:(?:no|ok|okay|hey|robot|whoa)\s+)*(?:stop|halt|freeze|abort|emergency stop)\b"
    # "stop at the edge", "stop short of it", "stop right above it": a skill's end point
    r"(?! (?:at|when|before|after|short|above|below|over|once|where|right (?:above|over|before)))"
)

_PREFERENCE_RE = re.compile(
    r"\b(?:from now on|from here on|in (?:the )?future|going forward|next time|for later|"
    r"as a (?:standing |general )?rule|by default|always|whenever|every time|each time|"
    r"in general|generally|usually|normally|for future reference|"
    r"i (?:prefer|like|usually|generally|normally|tend to)|i'd (?:prefer|rather)|"
    r"i would (?:prefer|rather)|my (?:preference|favou?rite|rule)|never(?! mind))\b"
)

_PLAN_RES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "missing_drawer_step",
        re.compile(
            r"\b(?:open|close|shut)\b.*\bdrawer\b.*\b(?:first|before)\b"
            r"|\bfirst\b.*\b(?:open|close|shut)\b.*\bdrawer\b"
            r"|\b(?:forgot|forget|need to|have to|must|missed|skipped)\b.*"
            r"\b(?:open|close|shut)\b.*\bdrawer\b"
            r"|\bdrawer (?:has|needs|must) (?:to )?be (?:open|opened|closed|shut)\b"
        ),
    ),
    (
        "wrong_object",
        re.compile(
            r"\bwrong (?:block|bowl|cube|one|object|thing|target|cylinder|colou?r|item|can)s?\b"
        ),
    ),
    ("other_one", re.compile(r"\b(?:the|that|this) other (?:one|" + _OBJECT_NOUNS + r")\b")),
    ("meant", re.compile(r"\bi (?:meant|said|asked for|wanted)\b")),
    ("instead_of", re.compile(r"\binstead of\b")),
    (
        "one_off",  # "this time the cube goes in the drawer": about this task, not a rule
        re.compile(
            r"^(?=.*\b(?:" + _COLOR_WORDS + r"|" + _OBJECT_NOUNS + r")\b)"
            r".*\b(?:this time|for now|just this once|for this task|today)\b"
        ),
    ),
    ("back_where", re.compile(r"\bback (?:where|to where|in its place|to its place|in place)\b")),
    (
        "ordering",
        re.compile(
            r"\b(?:do|start with|begin with|finish|pick up|grab|take|move|put away)\b.*"
            r"\b(?:" + _COLOR_WORDS + r"|" + _OBJECT_NOUNS + r")\b.*"
            r"\b(?:first|last|before|after|then)\b"
        ),
    ),
    (
        "negated_object",
        re.compile(
            r"^(?:no|nope|nah|not)\b[\w\s']*\b(?:" + _COLOR_WORDS + r")\b"
            r"(?:\s+(?:" + _OBJECT_NOUNS + r"|one))?\s*$"
        ),
    ),
)

# Undo: takes back an earlier correction. It must refer to that correction ("that", "what I
# said", "my last change") or name the act ("undo", "revert", "scratch that"); "never mind" and
# "forget about it" alone stay control (the frozen set's convention).
_LAST = r"(?:last|previous|earlier)"
_UNDO_RE = re.compile(
    r"\bundo\b|\brevert\b|\breverse (?:that|this|it|the|my)\b|\btake (?:that|it|this) back\b"
    r"|\b(?:scratch|strike) (?:that|it)\b|\bi take (?:that|it) back\b"
    r"|\b(?:ignore|disregard|forget|cancel|drop|delete|remove|retract)\b.{0,24}"
    r"\b(?:what i (?:just )?(?:said|told you|asked)|(?:my|the|that) " + _LAST + r" "
    r"(?:correction|change|instruction|command|one|thing)|that " + _LAST + r"\b)"
    r"|\b(?:go|put it|change it|set it|switch) back to (?:how|the way) (?:it|you|things|they) "
    r"(?:was|were|had|did)\b|\bback to what you (?:had|did|were doing) before\b"
    r"|\b(?:the way|how) (?:you|it) (?:were|was|had|did)\b.*\bbefore\b"
    r"|\b(?:back to|restore) (?:the |your )?(?:previous|old|original|earlier|last) "
    r"(?:settings?|values?|way|version|parameters?)\b"
)

# A standing rule stated as a norm about a described object, not the one in hand: "the red
# block should be put in the blue bowl", "cylinders belong in the drawer", "the yellow bowl is
# for blocks". One-off markers ("this time", "instead") make it a plan change.
_SIZE_WORDS = r"small|big|large|little|tall|short|tiny|wide|narrow"
_SUBJECT = (
    r"(?:the |all (?:of )?(?:the )?|every |any |each |my |those |these )?"
    r"(?:(?:" + _SIZE_WORDS + r")\s+)?(?:(?:" + _COLOR_WORDS + r")\s+)?"
    r"(?:" + _OBJECT_NOUNS + r"|things|stuff|items|ones|scissors|mugs?|cups?|tools?|toys?|"
    r"(?:" + _COLOR_WORDS + r"))"
)
_NORM_VERB = (
    r"(?:should|must|ought to|needs? to|has to|have to|shall|will|can only)\s+"
    r"(?:always\s+|only\s+)?"
    r"(?:go|be (?:put|placed|stored|kept|dropped)|end up|stay|live)"
    r"|belongs?|goes|go|live|(?:is|are) (?:supposed|meant|to) (?:to )?(?:go|be)|(?:is|are) kept"
)
_NORM_RE = re.compile(
    r"^(?:(?:and|also|so|ok|okay|remember|note|btw|just so you know)\s+)*" + _SUBJECT + r"\s+"
    r"(?:" + _NORM_VERB + r")\b.*\b(?:in|into|on|inside|onto)\b"
    r"|^(?:the\s+)?(?:(?:" + _COLOR_WORDS + r")\s+)?(?:bowl|drawer|dish|box)s?\s+(?:is|are)\s+"
    r"(?:only\s+|just\s+|meant\s+|reserved\s+)?(?:for|where)\b"
)
_ONE_OFF_RE = re.compile(
    r"\b(?:this time|for now|just this once|for this task|instead|right now|today|this one)\b"
)

# A distance or angle said as a number ("3cm", "two centimetres", "90 degrees") adjusts how a
# skill moves, even when an object is named as its reference ("move along the red block 3cm").
_METRIC_RE = re.compile(
    r"\b(?:\d+(?:\.\d+)?|a|one|two|three|four|five|few|couple of)\s*"
    r"(?:cm|mm|centimet(?:er|re)s?|millimet(?:er|re)s?|inch(?:es)?|degrees?)\b"
)
_PLAN_MARKERS = re.compile(
    r"\b(?:instead|wrong|other|meant|rather|not the|not that|not in|different)\b"
)

# Step commands: a skill named as an action, with no manner ("pick it up", "put it down", "now
# grasp the handle", "let go of it"). They add, repeat or reorder a step: plan. The particle of
# a phrasal verb ("pick it UP", "put it DOWN") is not a direction.
_STEP_VERB = (
    r"pick|grab|grasp|grip|take|lift|put|set|place|drop|release|let go(?: of)?|open|close|"
    r"shut|pull|push|stack|bring|fetch|get|carry|insert|stow|store|return|move|tidy|clear"
)
_PHRASAL_RE = re.compile(
    r"\b((?:pick|put|set|lay|sit|lift)"
    r"(?: (?:it|them|that|this|one|(?:the|that|this) \w+(?: \w+)?))?)"
    r" (?:up|down)\b"
)
_LOCATION_RE = re.compile(
    r"\b(?:top |bottom )?(?:left|right|front|back|far|near)\s+(?:side|corner|edge|half|end)\b"
    r"|\b(?:middle|center|centre)\s+of\b"
)
_MANNER_RE = re.compile(
    r"\b(?:left|right|forwards?|backwards?|back|further|farther|closer|up|down|higher|lower|faster|"
    r"slower|quicker|slowly|quickly|wider|more|less|bit|little|slightly|tad|touch|hair|smidge|"
    r"gently|gentle|carefully|softly|firmly|tighter|tightly|harder|softer|lightly|rotate|turn|"
    r"twist|tilt|angle|edge|around|along|above|below|deeper|halfway|all the way|too|so|speed|"
    r"slow|fast|quick|careful|steady|cm|mm|rush|ease|easy|your time|fully|completely)\b"
)
_LEAD = (
    r"(?:now|then|ok|okay|alright|please|and|so|just|next|you|can you|could you|would you|"
    r"will you|go ahead and|try to|try and|now you can|you can|you should|you need to|no|yes|"
    r"yeah|right|i want you to|i need you to|let's|lets)"
)
_OBJ_REF = r"(?:it|that|this|them|one|(?:the|that|this|a|an|your|its)(?: \w+){1,3})"
_STEP_RE = re.compile(
    r"^(?:" + _LEAD + r"\s+)*(?:" + _STEP_VERB + r")(?:\s+(?:up|down|out|away|back))?"
    r"(?:\s+" + _OBJ_REF + r")?(?:\s+(?:up|down|out|away|open|closed|shut|again|too|now|"
    r"please|then))*$"
)
# A limit on what the robot may do in a task ("you can only pick up one thing at a time",
# "you can't carry two"): the steps must change, no parameter does.
_CONSTRAINT_RE = re.compile(
    r"\b(?:one|two|\d+) (?:\w+ )?at a time\b"
    r"|\b(?:can only|cannot|can't|can not|are not allowed to|aren't allowed to|may only) "
    r"(?:pick|carry|hold|take|grab|move|put|place|open|close|use|stack|lift)\b"
)
# Re-instruction: an imperative naming a (coloured) object or a container to use.
_REINSTRUCT_RE = re.compile(
    r"^(?:" + _LEAD + r"\s+)*(?:" + _STEP_VERB + r"|use|try|do|go for|go get|choose|pick up)\b"
    r".*\b(?:" + _COLOR_WORDS + r"|" + _OBJECT_NOUNS + r"|handle)\b"
)


def _without_particles(text: str) -> str:
    """The text with phrasal-verb particles and table locations taken out (see `_STEP_RE`)."""
    return _LOCATION_RE.sub(" ", _PHRASAL_RE.sub(r"\1", text))


# Skill: words that say how, not what. A skill rule never fires when a colour word (an object
# or target is being named) or a plan marker is present.
_DIRECTION = (
    r"left|right|forward|forwards|back|backwards?|further|closer|up|down|higher|lower|"
    r"faster|slower|quicker|slowly|quickly|wider|front|lefter|leftwards|rightwards"
)
_SKILL_VERB = (
    r"grasp|grab|grip|pick|hold|pinch|release|drop|let go|place|put|lift|raise|carry|approach|"
    r"hover|descend|come down|pull|push|open|move|go|shift|nudge|slide"
)
_SKILL_RES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "bare_adjustment",
        re.compile(
            r"^(?=.*\b(?:" + _DIRECTION + r")\b)"  # at least one direction or speed word
            r"(?:(?:you're|you are|it's|it is|you|a|an|bit|little|tiny|tad|touch|smidge|hair|"
            r"more|less|much|way|slightly|somewhat|too|so|far|further|a lot|go|move|shift|it|again|"
            r"still|even|try|maybe|perhaps|could|can|would|"
            r"to|the|towards?|please|just|and|now|\d+(?:\.\d+)?\s*(?:cm|mm|m)|"
            + _DIRECTION
            + r")\s*)+$"
        ),
    ),
    ("speed", re.compile(r"\b(?:slow(?:er|ly)?|fast(?:er)?|quick(?:er|ly)?|speed)\b")),
    ("too_much", re.compile(r"\b(?:too|so) (?:fast|slow|quick|high|low|far)\b")),
    ("verb_direction", re.compile(r"\b(?:" + _SKILL_VERB + r")\b.*\b(?:" + _DIRECTION + r")\b")),
    (
        "pull_more",
        re.compile(
            r"\b(?:pull|open)\b.*\b(?:more|further|wider|enough|all the way|fully|completely)\b"
        ),
    ),
    (
        "manner",
        re.compile(
            r"\b(?:gently|softly|carefully|firmly|tighter|harder|lightly|more force|less force)\b"
            r"|\b(?:rotate|turn|twist|tilt|angle)\b.*\b(?:gripper|wrist|hand|it|claw)\b"
            r"|\b(?:gripper|wrist|hand|claw)\b.*\b(?:rotate|turn|twist|tilt|angle)\b"
        ),
    ),
)
# What went wrong in a motion (a slip, a miss, a knock, an overshoot): the fix is a parameter.
_FAILURE_RE = re.compile(
    r"\b(?:slip(?:s|ping|ped)?|slid(?:es|ing)? out|f[ae]ll(?:s|ing)? out|you drop|dropped|"
    r"dropping|overshot|overshoot(?:ing)?|undershot|short of|miss(?:ed|ing|es)? it|"
    r"overd(?:id|one|o)|knock(?:s|ed|ing)?|"
    r"hitting|hit the|bump(?:s|ed|ing)?|collid\w*|crash\w*|off cent(?:er|re)|bounc\w*|"
    r"not (?:open|far|high|low|deep|wide) enough|isn't (?:open|far|high|low) enough|"
    r"isnt (?:open|far|high|low) enough|only (?:opened|open|went) (?:halfway|half way|a bit)|"
    r"halfway|half way)\b"
)
_SKILL_BLOCKERS = re.compile(
    r"\b(?:" + _COLOR_WORDS + r"|instead|wrong|other|first|before|rather|meant|cylinders?|cubes?|"
    r"blocks?|corners?|side)\b"
)


_COLOR_RE = re.compile(r"\b(?:" + _COLOR_WORDS + r")\b")

# Speech-recognition homophones and split words (Whisper writes what it hears) that change how a
# correction routes; each needs the context that makes the intended word certain.
_HOMOPHONES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(?:write|rite|wright)\b"), "right"),
    (re.compile(r"\bblew\b"), "blue"),
    (re.compile(r"\bread(?= (?:" + _OBJECT_NOUNS + r"|ones?)\b)"), "red"),
    (re.compile(r"\b(" + _COLOR_WORDS + r") won\b"), r"\1 one"),
    (re.compile(r"\b(?:un do|undue)\b"), "undo"),
    (re.compile(r"\btoo(?= (?:the )?(?:left|right|front|back|middle|side)\b)"), "to"),
    (re.compile(r"\b(higher|lower|further|more|less|faster|slower) then\b"), r"\1 than"),
    (re.compile(r"\bpickup\b"), "pick up"),
    (re.compile(r"\bur\b"), "you're"),
)
# Words whose misspellings ("alwasy", "contniue", "slowr") would otherwise slip past the
# grammar. A word of 5+ letters is snapped to one of them only when it is one adjacent swap, one
# letter more or one letter less away: a substitution would turn real words into keywords
# ("doing" -> "going", "closed" -> "closer").
_KEYWORDS: frozenset[str] = frozenset(
    "always never whenever prefer rather future default continue resume proceed "
    "cancel abort pause freeze carry going ahead undo revert scratch ignore forget "
    "disregard higher lower further slower faster quicker slowly quickly closer left "
    "right forward backward backwards little slightly please instead wrong first "
    "before drawer gripper grasp release place".split()
)


def _one_slip(word: str, key: str) -> bool:
    """True when `word` is `key` with two adjacent letters swapped, or one letter added/lost."""
    if len(word) == len(key):
        diff = [i for i, (a, b) in enumerate(zip(word, key, strict=True)) if a != b]
        return (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and word[diff[0]] == key[diff[1]]
            and word[diff[1]] == key[diff[0]]
        )
    short, long_ = sorted((word, key), key=len)
    if len(long_) - len(short) != 1 or (word.startswith(key) and word[-1] in "sd"):
        return False
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def _fix_slips(text: str) -> str:
    """Fixes speech-recognition homophones and near-miss spellings of routing keywords."""
    for pattern, repl in _HOMOPHONES:
        text = pattern.sub(repl, text)
    words = []
    for word in text.split():
        # ("places", "lowered": an inflection of a keyword is a real word, kept as it is)
        if len(word) >= 5 and word not in _KEYWORDS and word.isalpha():
            word = next((key for key in sorted(_KEYWORDS) if _one_slip(word, key)), word)
        words.append(word)
    return " ".join(words)


def routing_text(text: str) -> str:
    """The text the grammar sees: normalised, homophones and keyword misspellings fixed."""
    return _fix_slips(normalise(text))


def embedding_text(text: str) -> str:
    """The text the embedder sees: `routing_text`, with every colour word replaced by "red".

    Colours say which object, never which level a correction acts on, yet MiniLM weighs them
    heavily: "try the yellow bowl" sat nearest to a preference example that happened to mention
    the yellow bowl. Mapping all colours to one word removes that spurious similarity.
    """
    return _COLOR_RE.sub("red", routing_text(text))


@dataclass(frozen=True)
class _RuleHit:
    label: Label
    rule: str


def _control_rule(text: str) -> _RuleHit | None:
    if not _CONTROL_RE.search(text):
        return None
    rest = _CONTROL_RE.sub(" ", text).split()
    if all(word in _CONTROL_FILLERS for word in rest):
        return _RuleHit("control", "control_only")
    # "stop, you'll knock it over": a stop word first, then only the reason. Halting comes first;
    # a reason that names another object or target ("stop, wrong bowl") is left to the rest.
    if _STOP_FIRST_RE.match(text) and not (
        _PLAN_MARKERS.search(text) or _COLOR_RE.search(text) or _UNDO_RE.search(text)
    ):
        return _RuleHit("control", "stop_first")
    return None


def _undo_rule(text: str) -> _RuleHit | None:
    return _RuleHit("undo", "take_back") if _UNDO_RE.search(text) else None


def _preference_rule(text: str) -> _RuleHit | None:
    if _PREFERENCE_RE.search(text):
        return _RuleHit("preference", "standing_marker")
    if _NORM_RE.search(text) and not _ONE_OFF_RE.search(text):
        return _RuleHit("preference", "norm")
    return None


def _metric_rule(text: str) -> _RuleHit | None:
    if _METRIC_RE.search(text) and not _PLAN_MARKERS.search(text):
        return _RuleHit("skill", "metric")
    return None


def _plan_rule(text: str) -> _RuleHit | None:
    for name, pattern in _PLAN_RES:
        if pattern.search(text):
            return _RuleHit("plan", name)
    bare = _without_particles(text)
    if _MANNER_RE.search(bare) or _FAILURE_RE.search(text):
        return None
    if _CONSTRAINT_RE.search(bare):
        return _RuleHit("plan", "constraint")
    if _STEP_RE.search(bare):
        return _RuleHit("plan", "step_command")
    if _REINSTRUCT_RE.search(bare):
        return _RuleHit("plan", "reinstruction")
    return None


def _skill_rule(text: str) -> _RuleHit | None:
    if _FAILURE_RE.search(text) and not _PLAN_MARKERS.search(text):
        return _RuleHit("skill", "failure_description")
    if _SKILL_BLOCKERS.search(text):
        return None
    bare = _PHRASAL_RE.sub(r"\1", text)  # "pick it up": "up" is no direction
    for name, pattern in _SKILL_RES:
        if pattern.search(bare):
            return _RuleHit("skill", name)
    return None


# Order matters and is part of the contract: control first (a stop must never be read as anything
# else), then undo (it names an earlier correction, whatever that said), then preference markers
# and norms (a standing rule often also names objects and targets), then a metric distance (an
# object named in it is only the reference), then the plan markers, step commands and
# re-instructions, then the skill grammar (which refuses any text naming a colour or object).
_RULES: tuple[Callable[[str], _RuleHit | None], ...] = (
    _control_rule,
    _undo_rule,
    _preference_rule,
    _metric_rule,
    _plan_rule,
    _skill_rule,
)


def apply_rules(text: str) -> _RuleHit | None:
    """The first grammar rule matching the normalised `text`, or None."""
    for rule in _RULES:
        hit = rule(text)
        if hit is not None:
            return hit
    return None


# --------------------------------------------------------------------------- asking back

# What each label would do, as the robot says it in a "did you mean ...?" question.
_MEANINGS: dict[str, str] = {
    "plan": "a change of which object, target or step I do in this task",
    "skill": "a change in how I move (where I grasp or place, how high, how fast, how far)",
    "preference": "a standing rule to remember for later tasks",
    "control": "stopping, pausing or resuming the run",
    "undo": "taking back your last correction",
}
_YES_RE = re.compile(
    r"^(?:yes|yeah|yep|yup|ya|yes please|correct|right|exactly|that's right|that is right|"
    r"sure|affirmative|i did|yes i did|ok|okay|do it|please do)(?: please| thanks| thank you)?$"
)
_NO_RE = re.compile(
    r"^(?:no|nope|nah|no thanks|not that|wrong|negative|i didn't|no i didn't|neither|"
    r"not really|no no)(?: thanks| thank you)?$"
)


def ask_back_question(decision: RouteDecision) -> str:
    """The question asked instead of acting on an unsure decision ("did you mean ...?")."""
    return f"did you mean {_MEANINGS[decision.label]}? (yes/no)"


def read_answer(text: str) -> bool | None:
    """True for a yes, False for a no, None when the text is neither (a new correction)."""
    clean = routing_text(text)
    if _YES_RE.match(clean):
        return True
    if _NO_RE.match(clean):
        return False
    return None


# --------------------------------------------------------------------------- offline router


def load_examples(path: Path) -> dict[Label, list[str]]:
    """Reads `router_examples.yaml`: `examples: {label: [phrase, ...]}` for every label.

    Raises:
        ParseError: the file is malformed, names an unknown label or lacks a label.
    """
    try:  # not readable, not UTF-8 (byte offset), not YAML (line), too deeply nested
        data = load_yaml(path, what="router examples file")
    except ConfigError as exc:
        raise ParseError(str(exc)) from None
    examples = data.get("examples") if isinstance(data, dict) else None
    if not isinstance(examples, dict):
        raise ParseError(f"{str(path)!r} must have a mapping 'examples: {{label: [phrases]}}'")
    out: dict[Label, list[str]] = {}
    for label, phrases in examples.items():
        if label not in LABELS:
            raise ParseError(
                f"{str(path)!r} has unknown label {label!r}; labels are {list(LABELS)}."
                + did_you_mean(str(label), LABELS)
            )
        if not isinstance(phrases, list) or not all(isinstance(p, str) for p in phrases):
            raise ParseError(
                f"{str(path)!r}: examples for {label!r} must be a list of strings (quote a "
                "phrase containing ':')"
            )
        out[label] = [p.strip() for p in phrases if p.strip()]
    missing = [label for label in LABELS if not out.get(label)]
    if missing:
        raise ParseError(f"{str(path)!r} has no examples for {missing}")
    return out


@dataclass(kw_only=True)
class GrammarEmbeddingRouterConfig(RouterConfig):
    """Offline router: grammar rules, then MiniLM nearest-intent matching."""

    type: str = "grammar_embedding"  # registry key
    examples_path: Path = DEFAULT_EXAMPLES_PATH  # YAML file of example phrases per label
    use_rules: bool = True  # False routes everything by embeddings (for ablations)
    top_k: int = 2  # label score = mean cosine of its k nearest examples
    margin: float = 0.02  # cosine; top-2 label scores closer than this trigger the tie-break
    temperature: float = 0.05  # cosine units; softmax temperature turning scores into confidence
    # Tie-break order among labels within `margin` of the best (most cautious first): control
    # (pausing is always safe), plan (replanning re-checks the whole task), skill (a parameter
    # nudge within this episode), undo (takes a person's correction back), preference
    # (persisted for future tasks, so it needs the clearest evidence).
    tie_break: tuple[str, ...] = ("control", "plan", "skill", "undo", "preference")
    # An embedding decision below this confidence is marked `ask_back`: a session whose person
    # can answer asks "did you mean ...?" rather than act on a guess. 0 never asks. Below 0.35
    # the other four labels together are about twice as likely as the chosen one. A near tie
    # alone does not ask: on the dev phrasings the tie-break chose right every time.
    ask_below: float = 0.35
    # An undo takes a person's correction back, so embeddings must be clearly sure of it: an
    # embedding undo below this confidence goes to the runner-up label instead (a rule "undo"
    # is always kept).
    undo_min_confidence: float = 0.6

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ConfigError(f"top_k must be >= 1, got {self.top_k}; try 2")
        if not 0.0 <= self.margin < 1.0:
            raise ConfigError(f"margin must be in [0, 1) cosine, got {self.margin}; try 0.02")
        if not 0 < self.temperature < float("inf"):  # NaN fails too
            raise ConfigError(
                f"temperature must be a finite number > 0, got {self.temperature}; try 0.05"
            )
        if not 0.0 <= self.undo_min_confidence <= 1.0:
            raise ConfigError(
                f"undo_min_confidence must be in [0, 1], got {self.undo_min_confidence}; try 0.6"
            )
        if not 0.0 <= self.ask_below <= 1.0:
            raise ConfigError(f"ask_below must be in [0, 1], got {self.ask_below}; try 0.35")
        if sorted(self.tie_break) != sorted(LABELS):
            raise ConfigError(
                f"tie_break must order exactly the labels {list(LABELS)}, got {self.tie_break}"
            )
        self.examples_path = Path(self.examples_path)


_VECTOR_CACHE_SIZE = 4096  # texts whose embeddings a router keeps (~6 MB at 384-d)


class GrammarEmbeddingRouter(CorrectionRouter):
    """High-precision grammar first, then nearest-intent matching on MiniLM embeddings.

    Scoring: each label's score is the mean cosine similarity of the text to that label's
    `top_k` nearest examples. The highest score wins; when the runner-up is within `margin`, the
    decision is marked ambiguous and the first label of `tie_break` among those within `margin`
    of the best wins instead. Confidence is the softmax of the scores at `temperature`; below
    `ask_below` the decision is marked `ask_back`.

    Args:
        cfg: the router config.
        embedder: text embedder; defaults to the process-wide MiniLM (loaded on first use, so
            rule-only traffic such as "stop!" never pays for loading it).
    """

    name = "grammar_embedding"
    config_class = GrammarEmbeddingRouterConfig

    def __init__(
        self,
        cfg: GrammarEmbeddingRouterConfig | None = None,
        *,
        embedder: TextEmbedder | None = None,
    ) -> None:
        self.cfg = cfg or GrammarEmbeddingRouterConfig()
        self.examples = load_examples(self.cfg.examples_path)
        self._embedder = embedder
        self._matrix: np.ndarray | None = None  # (n_examples, dim), unit rows
        self._example_labels: list[Label] = [lab for lab in LABELS for _ in self.examples[lab]]
        self._example_texts: list[str] = [t for lab in LABELS for t in self.examples[lab]]
        labels = np.array(self._example_labels)
        self._label_rows = {lab: np.flatnonzero(labels == lab) for lab in LABELS}
        # Embedding text -> unit vector, most recent last. A correction is on the latency path
        # from its arrival to the changed command, and one MiniLM call is most of an embedding
        # decision's cost (14 ms on a quiet core, 30-50 ms at a load average of 8-10); people
        # and the simulated corrector repeat phrasings ("it slid straight out, go a lot
        # slower"), and a repeat is routed from the cache with its first decision.
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._vectors_lock = threading.Lock()

    def _get_embedder(self) -> TextEmbedder:
        if self._embedder is None:
            from corrigible.text_embedding import get_text_embedder

            self._embedder = get_text_embedder()
        return self._embedder

    def _example_matrix(self) -> np.ndarray:
        if self._matrix is None:
            self._matrix = self._get_embedder().embed(
                [embedding_text(t) for t in self._example_texts]
            )
        return self._matrix

    def warm_up(self) -> float:
        """Loads MiniLM and embeds the examples now; returns the seconds it took.

        Otherwise the first correction that needs embeddings pays the model load (~0.3 s), which
        would be reported as that correction's latency.
        """
        import time

        t0 = time.perf_counter()
        self._example_matrix()
        return time.perf_counter() - t0

    def route(self, text: str) -> RouteDecision:
        """Routes one correction text (see the class docstring for the scoring)."""
        return self.route_many([text])[0]

    def route_many(self, texts: Sequence[str]) -> list[RouteDecision]:
        """Routes several texts, embedding all rule misses in one batch."""
        decisions: list[RouteDecision | None] = []
        pending: list[int] = []
        for index, text in enumerate(texts):
            clean = routing_text(text)
            if not clean:
                raise ParseError(
                    f"cannot route an empty correction ({text!r}); say what should change"
                )
            hit = apply_rules(clean) if self.cfg.use_rules else None
            if hit is None:
                decisions.append(None)
                pending.append(index)
            else:
                decisions.append(
                    RouteDecision(
                        label=hit.label,
                        confidence=1.0,
                        method="rule",
                        rule=hit.rule,
                        scores={lab: float(lab == hit.label) for lab in LABELS},
                    )
                )
        if pending:
            vectors = self._embed_cached([embedding_text(texts[i]) for i in pending])
            sims = vectors @ self._example_matrix().T
            for row, index in zip(sims, pending, strict=True):
                decisions[index] = self._decide(row)
        return [d for d in decisions if d is not None]

    def _embed_cached(self, texts: list[str]) -> np.ndarray:
        """Unit vectors of `texts`, embedding (in one batch) only those not seen recently."""
        with self._vectors_lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            fresh = self._get_embedder().embed(missing)
            with self._vectors_lock:
                for text, vector in zip(missing, fresh, strict=True):
                    self._vectors[text] = vector
                    self._vectors.move_to_end(text)
                while len(self._vectors) > _VECTOR_CACHE_SIZE:
                    self._vectors.popitem(last=False)
        with self._vectors_lock:
            rows = []
            for text in texts:
                vector = self._vectors.get(text)
                if vector is None:  # evicted by another thread's batch meanwhile
                    vector = self._get_embedder().embed([text])[0]
                else:
                    self._vectors.move_to_end(text)
                rows.append(vector)
        return np.stack(rows)

    def _decide(self, sims: np.ndarray) -> RouteDecision:
        scores: dict[str, float] = {}
        for label in LABELS:
            label_sims = np.sort(sims[self._label_rows[label]])[::-1]
            scores[label] = float(label_sims[: self.cfg.top_k].mean())
        best = max(LABELS, key=lambda lab: scores[lab])
        close = [lab for lab in LABELS if scores[best] - scores[lab] < self.cfg.margin]
        label: Label = best
        if len(close) > 1:
            label = next(lab for lab in self.cfg.tie_break if lab in close)  # type: ignore[assignment]
        top = max(scores.values())
        exps = {lab: math.exp((s - top) / self.cfg.temperature) for lab, s in scores.items()}
        total = sum(exps.values())
        rows = self._label_rows[label]
        nearest = int(rows[np.argmax(sims[rows])])
        confidence = min(1.0, exps[label] / total)
        runner_up = max((lab for lab in LABELS if lab != label), key=lambda lab: scores[lab])
        unsure_undo = label == "undo" and confidence < self.cfg.undo_min_confidence
        if unsure_undo:
            label, runner_up = runner_up, label
            confidence = min(1.0, exps[label] / total)
            rows = self._label_rows[label]
            nearest = int(rows[np.argmax(sims[rows])])
        return RouteDecision(
            label=label,
            confidence=confidence,
            method="embedding",
            matched_example=self._example_texts[nearest],
            scores=scores,
            is_ambiguous=len(close) > 1 or unsure_undo,
            ask_back=confidence < self.cfg.ask_below,
            runner_up=runner_up,
        )
