"""`corrigible.registry.Registry`, and every registry in the tree built on it."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from corrigible.errors import (
    ConfigError,
    CorrigibleError,
    DependencyNotInstalled,
    UnknownNameError,
)
from corrigible.registry import Registry


@pytest.fixture
def engines() -> Registry[object]:
    registry: Registry[object] = Registry("simulator")
    registry.register("mujoco", "json:dumps", aliases=("mj",))
    registry.register("pybullet", "json:loads")
    return registry


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on sys.path for throwaway modules; they are forgotten afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [n for n in sys.modules if n.startswith("_regtest_")]:
        del sys.modules[name]


def test_register_as_call_and_as_decorator() -> None:
    shapes: Registry[type] = Registry("shape")
    shapes.register("tuple", tuple)

    @shapes.register("mine", aliases=("my",))
    class Mine:
        pass

    assert shapes.get("tuple") is tuple
    assert shapes.get("mine") is Mine and shapes.get("my") is Mine
    assert shapes.names() == ["tuple", "mine"]  # registration order, aliases left out
    assert list(shapes) == ["tuple", "mine"] and len(shapes) == 2
    assert "my" in shapes and "mine" in shapes and "yours" not in shapes
    assert shapes.canonical("my") == "mine"
    assert shapes.describe() == "tuple, mine (my)"


def test_lazy_entry_is_imported_on_first_get_only(module_dir: Path) -> None:
    (module_dir / "_regtest_lazy.py").write_text("VALUE = object()\n")
    values: Registry[object] = Registry("value")
    values.register("v", "_regtest_lazy:VALUE")
    assert "_regtest_lazy" not in sys.modules  # registering imports nothing
    first = values.get("v")
    assert "_regtest_lazy" in sys.modules
    assert values.get("v") is first is sys.modules["_regtest_lazy"].VALUE


def test_lazy_module_may_register_its_own_object(module_dir: Path) -> None:
    """A class hook (like `CorrectionRouter.__init_subclass__`) keeps a lazy entry's promise."""
    (module_dir / "_regtest_plugins.py").write_text(
        "from corrigible.registry import Registry\n"
        "PLUGINS = Registry('plugin')\n"
        "PLUGINS.register('plugin', '_regtest_self:Plugin')\n"
    )
    (module_dir / "_regtest_self.py").write_text(
        "from _regtest_plugins import PLUGINS\n"
        "class Plugin:\n"
        "    pass\n"
        "PLUGINS.register('plugin', Plugin)\n"
    )
    plugins = importlib.import_module("_regtest_plugins").PLUGINS
    cls = plugins.get("plugin")
    assert cls is sys.modules["_regtest_self"].Plugin
    with pytest.raises(ConfigError, match="already registered"):
        plugins.register("plugin", type("Plugin", (), {}))  # a different object: refused


@pytest.mark.parametrize(
    ("typed", "hint"),
    [("pybulet", "Did you mean 'pybullet'?"), ("mjc", "Did you mean 'mj'?"), ("ode", "")],
    ids=["typo", "alias-typo", "nothing-close"],
)
def test_unknown_name_says_what_exists(engines: Registry[object], typed: str, hint: str) -> None:
    with pytest.raises(UnknownNameError) as info:
        engines.get(typed)
    text = str(info.value)
    assert text.startswith(f"unknown simulator {typed!r}; choose one of ['mujoco', 'pybullet'].")
    assert text.endswith(hint)
    assert isinstance(info.value, KeyError) and isinstance(info.value, CorrigibleError)


def test_a_table_may_keep_its_own_wording() -> None:
    controllers: Registry[int] = Registry("controller", unknown="no {noun} {name!r}; use {names}")
    controllers.register("slow", 1)
    controllers.register("fast", 2)
    with pytest.raises(UnknownNameError) as info:
        controllers.get("fats")
    assert str(info.value) == "no controller 'fats'; use ['slow', 'fast'] Did you mean 'fast'?"


def test_names_are_never_silently_replaced(engines: Registry[object]) -> None:
    with pytest.raises(ConfigError, match="'mujoco' is already registered"):
        engines.register("mujoco", 1)
    with pytest.raises(ConfigError, match="'mj' is already registered"):
        engines.register("other", 1, aliases=("mj",))  # an alias of another entry
    with pytest.raises(ConfigError, match="'pybullet' is already registered"):
        engines.register("mujoco", 1, aliases=("pybullet",), replace=True)  # another entry
    engines.register("mujoco", 2, aliases=("mjc",), replace=True)
    assert engines.get("mujoco") == 2 and engines.get("mjc") == 2
    assert "mj" not in engines  # the replaced entry's aliases went with it
    assert engines.names() == ["mujoco", "pybullet"]  # and it kept its place


def test_unregister_removes_the_entry_and_its_aliases(engines: Registry[object]) -> None:
    engines.unregister("mj")  # by alias
    assert engines.names() == ["pybullet"] and "mj" not in engines
    with pytest.raises(UnknownNameError, match="unknown simulator 'mujoco'"):
        engines.unregister("mujoco")
    engines.register("mj", 3)  # the alias is free again
    assert engines.get("mj") == 3


@pytest.mark.parametrize("target", ["json", "json:", ":dumps", ""], ids=repr)
def test_lazy_target_must_read_module_colon_attribute(target: str) -> None:
    with pytest.raises(ConfigError, match="must read 'module:attribute'"):
        Registry[object]("thing").register("x", target)


def test_missing_dependency_names_the_extra() -> None:
    registry: Registry[object] = Registry("LLM backend")
    registry.register("with_extra", "_regtest_absent_pkg.backend:Backend", extra="llm")
    registry.register("without", "_regtest_absent_pkg:Backend")
    with pytest.raises(DependencyNotInstalled, match=r"pip install 'corrigible\[llm\]'") as info:
        registry.get("with_extra")
    assert isinstance(info.value, ImportError)
    assert "the LLM backend 'with_extra' needs a package" in str(info.value)
    with pytest.raises(DependencyNotInstalled, match="pip install _regtest_absent_pkg "):
        registry.get("without")


def test_a_missing_module_of_corrigible_itself_is_a_bug_not_an_extra() -> None:
    registry: Registry[object] = Registry("verb module")
    registry.register("gone", "corrigible.launch._no_such_verb:register", extra="llm")
    with pytest.raises(ModuleNotFoundError) as info:
        registry.get("gone")
    assert not isinstance(info.value, DependencyNotInstalled)
    assert info.value.name == "corrigible.launch._no_such_verb"


# --------------------------------------------------------------------------- the tree's registries

_REGISTRIES = {
    "engines": ("corrigible.sim_envs.backends.registry", "BACKENDS"),
    "planners": ("corrigible.policies.planners.registry", "PLANNERS"),
    "llm_backends": ("corrigible.policies.llm.registry", "LLM_BACKENDS"),
    "routers": ("corrigible.corrections.router", "ROUTERS"),
    "event_controllers": ("corrigible.sim_envs.event_camera.controllers", "CONTROLLER_KINDS"),
    "predicates": ("corrigible.sim_envs.predicates", "PREDICATES"),
    "benchmarks": ("corrigible.launch.bench", "BENCHMARKS"),
    "cli_verbs": ("corrigible.launch.cli", "VERBS"),
    "skills": ("corrigible.policies.skills.specs", "SKILLS"),
    "object_kinds": ("corrigible.sim_envs.vocabulary", "OBJECT_KINDS"),
    "schemas": ("corrigible.launch.schema", "SCHEMAS"),
}


@pytest.mark.parametrize("key", sorted(_REGISTRIES))
def test_every_registered_name_resolves(key: str) -> None:
    """Catches a misspelt "module:attribute" target before a user does."""
    module, attribute = _REGISTRIES[key]
    registry = getattr(importlib.import_module(module), attribute)
    assert isinstance(registry, Registry) and registry.names()
    for name in registry:
        assert registry.get(name) is not None


def test_engine_list_is_the_backend_registry() -> None:
    from corrigible.sim_envs.backends.registry import BACKENDS, make_backend

    assert BACKENDS.names() == ["mujoco", "pybullet"]
    with pytest.raises(UnknownNameError, match="unknown simulator 'pybulet'.*'pybullet'"):
        make_backend("pybulet", None)  # type: ignore[arg-type]  # fails before the scene is used


def test_listeners_hear_every_change_and_values_keep_the_order() -> None:
    registry: Registry[int] = Registry("number")
    heard: list[list[str]] = []
    registry.on_change(lambda: heard.append(registry.names()))
    registry.register("one", 1)
    registry.register("two", 2)
    registry.unregister("one")
    assert heard == [["one"], ["one", "two"], ["two"]]
    assert registry.values() == [2]
