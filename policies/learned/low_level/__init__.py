"""The learned low level: a language-conditioned visuomotor pick and place behind the skill API.

`install_low_level(session_or_api, "learned:<checkpoint>")` makes a session's `pick` and
`place` run the policy; `corrigible train ll` trains and evaluates it. See README.md.
"""

from corrigible.errors import CheckpointError
from corrigible.policies.learned.low_level.low_level import LowLevelPolicy
from corrigible.policies.learned.low_level.skills import (
    LearnedSkillLibrary,
    install_low_level,
    parse_low_level,
)

__all__ = [
    "CheckpointError",
    "LearnedSkillLibrary",
    "LowLevelPolicy",
    "install_low_level",
    "parse_low_level",
]
