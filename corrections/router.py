"""Routes a correction to the level it acts on: plan, skill, preference or control.

DROC's `is_planning_error` question ("is this beyond the current skill?") split in four, because a
robot that is told "stop!" must not wait for a language model, and a standing preference ("always
put cubes in the drawer") belongs in the knowledge base rather than in this episode's plan:

| label        | what it changes                                  | example                        |
|--------------|--------------------------------------------------|--------------------------------|
| `plan`       | which object/target, the order, a missing step   | "no, the blue bowl"            |
| `skill`      | how a skill runs: offsets, heights, speed        | "a bit more to the left"       |
| `preference` | a standing rule for future tasks                 | "always put cubes in drawer"   |
| `control`    | the run itself: stop / pause / resume / cancel   | "hold on"                      |

`GrammarEmbeddingRouter` (offline) tries a small grammar of high-precision rules first (no model
needed, so "stop!" is routed in microseconds even before MiniLM has loaded), then falls back to
nearest-intent matching of the MiniLM embedding against `data/router_examples.yaml`. An LLM
router subclasses `CorrectionRouter` the same way and reports `method="llm"`.
"""

from __future__ import annotations

import abc
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

import numpy as np

from corrigible.boundary import load_yaml
from corrigible.corrections.correction import Correction
from corrigible.errors import ConfigError, ParseError, did_you_mean
from corrigible.memory.text_embedder import TextEmbedder
from corrigible.registry import Registry
from corrigible.sim_envs.vocabulary import color_words, noun_words

Label = Literal["plan", "skill", "preference", "control"]
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
    "right there you can for".split()
)
_CONTROL_RE = re.compile(r"\b(?:" + "|".join(map(re.escape, _CONTROL_PHRASES)) + r")\b")

_PREFERENCE_RE = re.compile(
    r"\b(?:from now on|from here on|in (?:the )?future|going forward|next time|for later|"
    r"as a (?:standing |general )?rule|by default|always|whenever|every time|each time|"
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
            r"more|less|much|way|slightly|somewhat|too|so|far|further|a lot|go|move|shift|it|"
            r"to|the|towards?|please|just|and|now|\d+(?:\.\d+)?\s*(?:cm|mm|m)|"
            + _DIRECTION
            + r")\s*)+$"
        ),
    ),
    ("speed", re.compile(r"\b(?:slow(?:er|ly)?|fast(?:er)?|quick(?:er|ly)?|speed)\b")),
    ("too_much", re.compile(r"\b(?:too|so) (?:fast|slow|quick|high|low|far)\b")),
    ("verb_direction", re.compile(r"\b(?:" + _SKILL_VERB + r")\b.*\b(?:" + _DIRECTION + r")\b")),
    ("pull_more", re.compile(r"\b(?:pull|open)\b.*\b(?:more|further|wider|enough)\b")),
)
_SKILL_BLOCKERS = re.compile(
    r"\b(?:" + _COLOR_WORDS + r"|instead|wrong|other|first|before|rather|meant|cylinders?|cubes?|"
    r"blocks?|corners?|side)\b"
)


_COLOR_RE = re.compile(r"\b(?:" + _COLOR_WORDS + r")\b")


def embedding_text(text: str) -> str:
    """The text the embedder sees: normalised, with every colour word replaced by "red".

    Colours say which object, never which level a correction acts on, yet MiniLM weighs them
    heavily: "try the yellow bowl" sat nearest to a preference example that happened to mention
    the yellow bowl. Mapping all colours to one word removes that spurious similarity.
    """
    return _COLOR_RE.sub("red", normalise(text))


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
    return None


def _preference_rule(text: str) -> _RuleHit | None:
    return _RuleHit("preference", "standing_marker") if _PREFERENCE_RE.search(text) else None


def _plan_rule(text: str) -> _RuleHit | None:
    for name, pattern in _PLAN_RES:
        if pattern.search(text):
            return _RuleHit("plan", name)
    return None


def _skill_rule(text: str) -> _RuleHit | None:
    if _SKILL_BLOCKERS.search(text):
        return None
    for name, pattern in _SKILL_RES:
        if pattern.search(text):
            return _RuleHit("skill", name)
    return None


# Order matters and is part of the contract: control first (a stop must never be read as anything
# else), then preference markers (a standing rule often also names objects and targets), then the
# plan markers, then the skill grammar (which refuses any text naming a colour or object).
_RULES: tuple[Callable[[str], _RuleHit | None], ...] = (
    _control_rule,
    _preference_rule,
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
    # nudge within this episode), preference (persisted for future tasks, so it needs the
    # clearest evidence).
    tie_break: tuple[str, ...] = ("control", "plan", "skill", "preference")

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ConfigError(f"top_k must be >= 1, got {self.top_k}; try 2")
        if not 0.0 <= self.margin < 1.0:
            raise ConfigError(f"margin must be in [0, 1) cosine, got {self.margin}; try 0.02")
        if not 0 < self.temperature < float("inf"):  # NaN fails too
            raise ConfigError(
                f"temperature must be a finite number > 0, got {self.temperature}; try 0.05"
            )
        if sorted(self.tie_break) != sorted(LABELS):
            raise ConfigError(
                f"tie_break must order exactly the labels {list(LABELS)}, got {self.tie_break}"
            )
        self.examples_path = Path(self.examples_path)


class GrammarEmbeddingRouter(CorrectionRouter):
    """High-precision grammar first, then nearest-intent matching on MiniLM embeddings.

    Scoring: each label's score is the mean cosine similarity of the text to that label's
    `top_k` nearest examples. The highest score wins; when the runner-up is within `margin`, the
    decision is marked ambiguous and the first label of `tie_break` among those within `margin`
    of the best wins instead. Confidence is the softmax of the scores at `temperature`.

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

    def _get_embedder(self) -> TextEmbedder:
        if self._embedder is None:
            from corrigible.memory.text_embedder import get_text_embedder

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
            clean = normalise(text)
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
            vectors = self._get_embedder().embed([embedding_text(texts[i]) for i in pending])
            sims = vectors @ self._example_matrix().T
            for row, index in zip(sims, pending, strict=True):
                decisions[index] = self._decide(row)
        return [d for d in decisions if d is not None]

    def _decide(self, sims: np.ndarray) -> RouteDecision:
        labels = np.array(self._example_labels)
        scores: dict[str, float] = {}
        for label in LABELS:
            label_sims = np.sort(sims[labels == label])[::-1]
            scores[label] = float(label_sims[: self.cfg.top_k].mean())
        best = max(LABELS, key=lambda lab: scores[lab])
        close = [lab for lab in LABELS if scores[best] - scores[lab] < self.cfg.margin]
        label: Label = best
        if len(close) > 1:
            label = next(lab for lab in self.cfg.tie_break if lab in close)  # type: ignore[assignment]
        top = max(scores.values())
        exps = {lab: math.exp((s - top) / self.cfg.temperature) for lab, s in scores.items()}
        total = sum(exps.values())
        mask = labels == label
        nearest = int(np.flatnonzero(mask)[np.argmax(sims[mask])])
        return RouteDecision(
            label=label,
            confidence=min(1.0, exps[label] / total),
            method="embedding",
            matched_example=self._example_texts[nearest],
            scores=scores,
            is_ambiguous=len(close) > 1,
        )
