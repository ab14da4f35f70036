"""Biasing the decoder towards what people say to this robot: its objects and colours.

Whisper conditions on a prompt as if it were the text said just before, so naming the scene's
objects and the vocabulary's kinds and colours makes "read block" come out as "red block" and
"the blew bowl" as "the blue bowl". The words come from `sim_envs.vocabulary` (the one source
of truth for kinds, nouns and colours) plus the scene's own object names, so a new kind of
object is heard as soon as it is declared. The prompt is kept short: a long list of words makes
Whisper more willing to "hear" them in noise.
"""

from __future__ import annotations

from collections.abc import Iterable

from corrigible.sim_envs.palette import COLORS
from corrigible.sim_envs.vocabulary import kinds

_MAX_TERMS = 40  # more terms dilute the prompt and raise false insertions
_MAX_PROMPT_CHARS = 400  # Whisper keeps at most half its 448-token context for the prompt


def vocabulary_terms(scene_objects: Iterable[str] = ()) -> list[str]:
    """The scene's objects first (most specific), then each kind's nouns, then the colours.

    Args:
        scene_objects: names the correction may refer to ("red block", "drawer"), or any
            extra words the caller wants heard.

    Returns:
        Unique lower-case terms, at most `_MAX_TERMS`.
    """
    terms: dict[str, None] = {}
    for name in scene_objects:
        name = " ".join(str(name).lower().split())
        if name:
            terms[name] = None
    for kind in kinds():
        terms.update(dict.fromkeys(kind.nouns))
    terms.update(dict.fromkeys(COLORS))
    return list(terms)[:_MAX_TERMS]


def initial_prompt(terms: Iterable[str]) -> str:
    """A short, sentence-like prompt naming `terms` (Whisper reads it as preceding speech)."""
    words = [t for t in terms if t]
    prompt = "Corrections to a robot arm about the " + ", ".join(words) + "."
    if len(prompt) > _MAX_PROMPT_CHARS:
        prompt = prompt[:_MAX_PROMPT_CHARS].rsplit(",", 1)[0] + "."
    return prompt
