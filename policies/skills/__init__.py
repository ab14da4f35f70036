"""Language-conditioned low-level skills with named, correctable parameters."""

from corrigible.policies.skills.library import SkillLibrary, SkillResult
from corrigible.policies.skills.params import DEFAULT_PARAMS, SkillParams

__all__ = ["DEFAULT_PARAMS", "SkillLibrary", "SkillParams", "SkillResult"]
