"""Builds an LLM backend from a `--planner` spec such as `openai:gpt-4o-mini`.

The spec is `<prefix>:<argument>`; the prefix picks the backend class from `LLM_BACKENDS`, and
the class parses the argument itself (`from_spec`). Backends are imported lazily, so `openai:`
works without torch and `local:` without the `openai` client.
"""

from __future__ import annotations

from corrigible.errors import ConfigError, did_you_mean
from corrigible.policies.llm.base import LLMBackend
from corrigible.registry import Registry

# Planner names that are valid for --planner but are not LLMs; make_llm explains instead.
_NOT_LLMS: dict[str, str] = {
    "grammar": "`grammar` is the rule-based planner with no LLM; the planner handles it itself, "
    "so do not build an LLM backend for it (check the spec before calling make_llm).",
}

# prefix -> the spec forms it accepts, for error messages.
_FORMS: dict[str, str] = {
    "openai": "openai:<model>",
    "local": "local:<path> or local:bundled",
    "replay": "replay:<file>",
}
_EXAMPLES = ", ".join(_FORMS.values())

# spec prefix -> backend class, imported on first use; each class has `from_spec(argument)`.
LLM_BACKENDS: Registry[type[LLMBackend]] = Registry(
    "LLM backend",
    unknown=f"unknown {{noun}} {{name!r}}; choose one of {{choices}} (specs: {_EXAMPLES}).",
)
LLM_BACKENDS.register("openai", "corrigible.policies.llm.openai_backend:OpenAIBackend")
LLM_BACKENDS.register("local", "corrigible.policies.llm.local_backend:LocalBackend", extra="llm")
LLM_BACKENDS.register("replay", "corrigible.policies.llm.replay_backend:ReplayBackend")


def backend_class(prefix: str) -> type[LLMBackend]:
    """The backend class registered under `prefix` (imports its module).

    Raises:
        UnknownNameError: no backend has that prefix; the message suggests the closest one.
        DependencyNotInstalled: the backend's module needs a package that is missing.
    """
    return LLM_BACKENDS.get(prefix)


def make_llm(spec: str) -> LLMBackend:
    """Builds the backend a `--planner` spec names.

    Args:
        spec: `openai:<model>`, `local:<path>`, `local:bundled` or `replay:<file>`. Only the
            first colon separates prefix and argument, so `openai:qwen2.5-coder:1.5b` and
            `local:C:/models/x` keep theirs.

    Returns:
        A ready backend; use it as a context manager or call `close()`.

    Raises:
        ConfigError: the spec has no `<prefix>:<argument>` shape, names `grammar`, or its
            argument is invalid (missing file or directory, empty model).
        UnknownNameError: the prefix is not a registered backend.
        DependencyNotInstalled: the backend's optional packages are missing.
    """
    spec = spec.strip()
    if spec in _NOT_LLMS:
        raise ConfigError(_NOT_LLMS[spec])
    prefix, sep, argument = spec.partition(":")
    if not argument and prefix in _FORMS:
        raise ConfigError(f"LLM spec {spec!r} lacks its argument; write {_FORMS[prefix]}.")
    if not sep:
        hint = did_you_mean(spec, [*LLM_BACKENDS, *_NOT_LLMS])
        raise ConfigError(
            f"LLM spec {spec!r} has no '<backend>:<argument>' form; use one of {_EXAMPLES}." + hint
        )
    if prefix in _NOT_LLMS:
        raise ConfigError(_NOT_LLMS[prefix])
    return backend_class(prefix).from_spec(argument)
