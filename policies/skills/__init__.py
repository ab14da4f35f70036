"""Language-conditioned low-level skills, declared once with named, correctable parameters."""

from corrigible.policies.skills.library import SkillLibrary, SkillResult
from corrigible.policies.skills.specs import SkillParams, SkillSpec, default_params, skill_spec

__all__ = [
    "SkillLibrary",
    "SkillParams",
    "SkillResult",
    "SkillSpec",
    "default_params",
    "skill_spec",
]
