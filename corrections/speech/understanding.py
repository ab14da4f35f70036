"""Which reading of an utterance the correction pipeline understands.

Whisper base often has the right words in its n best readings but not on top ("Rotate the
red block, purple block." over "Not the red block, the purple block."). A person correcting
a robot speaks a small language: the router's labels and the interpreter's effects. So the
transcript is the best scored reading that this language can act on; a reading the
interpreter refuses or that asks for no change is passed over. It is a filter, not a guess:
when no reading is understood, the decoder's best stays, and the session replies to it as it
would to the typed text.

`corrigible bench speech` reports the effect of this choice against the decoder's top
reading (`same_effect_top`).
"""

from __future__ import annotations

from collections.abc import Callable

from corrigible.corrections.interpret import InterpretContext, interpret
from corrigible.corrections.router import CorrectionRouter
from corrigible.errors import CorrigibleError


def understood_in(
    router: CorrectionRouter, context: InterpretContext | None = None
) -> Callable[[str], bool]:
    """A test for `Transcriber.transcribe(understands=...)`.

    Args:
        router: the session's correction router.
        context: what the interpreter knows of the scene (visible objects, the current skill);
            None: an empty scene.

    Returns:
        A function: True when `text` routes without asking back and interprets into at least
        one effect in `context` (or routes to "undo", which needs no interpretation).
    """
    ctx = context or InterpretContext()

    def understands(text: str) -> bool:
        if not text.strip():
            return False
        try:
            decision = router.route(text)
            if decision.ask_back:
                return False
            if decision.label == "undo":  # "undo that" takes the last correction back
                return True
            return bool(interpret(text, decision.label, ctx).effects)
        except (CorrigibleError, ValueError, KeyError):
            return False

    return understands
