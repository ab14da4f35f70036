"""Sandbox for LLM-generated robot programs (Code as Policies): validate, isolate, trace.

Example:
    from corrigible.policies.sandbox import run_program
    result = run_program("say('hi')", {"say": print})
    print(result.to_json())
"""

from corrigible.policies.sandbox.config_sandbox import SandboxLimits
from corrigible.policies.sandbox.control import SandboxControl
from corrigible.policies.sandbox.executor import exec_file, run_program
from corrigible.policies.sandbox.result import ErrorClass, SandboxResult
from corrigible.policies.sandbox.validator import (
    ValidationProblem,
    ValidationReport,
    validate_program,
)

__all__ = [
    "ErrorClass",
    "SandboxControl",
    "SandboxLimits",
    "SandboxResult",
    "ValidationProblem",
    "ValidationReport",
    "exec_file",
    "run_program",
    "validate_program",
]
