"""One name -> implementation table for every pluggable part: engines, planners, routers...

corrigible used to keep such tables in four styles (dicts of "module:class" strings, dicts of
lambdas, an if/elif chain, a class hook), each with its own error text. They now share this
class, so a typo gets the same "did you mean" everywhere, an optional backend is imported only
when it is asked for, and every table can be listed in `--help`. The spirit is dm_control's
`manipulation/shared/registry.py` (a decorator adds an entry; names never silently override) and
Gymnasium's `registration.py` ("module:attribute" entry points imported on first use).

Example:
    ENGINES: Registry[type[Backend]] = Registry("simulator")
    ENGINES.register("pybullet", "corrigible.sim_envs.backends.pybullet_backend:PybulletBackend")

    @ENGINES.register("mujoco", aliases=("mj",))
    class MujocoBackend(Backend): ...

    ENGINES.get("pybulet")  # UnknownNameError: unknown simulator 'pybulet'; choose one of
                            # ['mujoco', 'pybullet']. Did you mean 'pybullet'?
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar, cast, overload

from corrigible.errors import ConfigError, DependencyNotInstalled, UnknownNameError, did_you_mean

T = TypeVar("T")

# An ImportError naming a module of this package is a bug or a wrong entry, not a missing extra.
_PACKAGE = __name__.partition(".")[0]
_UNKNOWN = "unknown {noun} {name!r}; choose one of {choices}."


@dataclass(kw_only=True)
class _Entry(Generic[T]):
    target: str  # "module:attribute" of a lazy entry; "" for an object registered directly
    obj: T | None  # the implementation; None for a lazy entry, which Python's import cache holds
    aliases: tuple[str, ...]  # other names that find this entry
    extra: str | None  # pip extra installing what `target` imports, named when it is missing


class Registry(Generic[T]):
    """Names -> implementations, with aliases, lazy imports and "did you mean" on a typo.

    Values may be anything but `None` (`register` without one returns a decorator) or a `str`
    (a string given to `register` is a lazy "module:attribute" entry point).

    Args:
        noun: what one entry is, for messages ("simulator", "LLM backend").
        unknown: the message for an unknown name, before its "did you mean"; a format string
            with `{noun}`, `{name}`, `{choices}` (the names, sorted) and `{names}` (in
            registration order), so a table keeps the wording its users already know.
    """

    def __init__(self, noun: str, *, unknown: str = _UNKNOWN) -> None:
        self.noun = noun
        self._unknown = unknown
        self._entries: dict[str, _Entry[T]] = {}  # in registration order, which `names` keeps
        self._aliases: dict[str, str] = {}  # alias -> name
        self._listeners: list[Callable[[], None]] = []  # told after every (un)registration

    @overload
    def register(
        self,
        name: str,
        obj: None = None,
        *,
        aliases: Iterable[str] = (),
        replace: bool = False,
        extra: str | None = None,
    ) -> Callable[[T], T]: ...

    @overload
    def register(
        self,
        name: str,
        obj: T | str,
        *,
        aliases: Iterable[str] = (),
        replace: bool = False,
        extra: str | None = None,
    ) -> None: ...

    def register(
        self,
        name: str,
        obj: T | str | None = None,
        *,
        aliases: Iterable[str] = (),
        replace: bool = False,
        extra: str | None = None,
    ) -> Callable[[T], T] | None:
        """Adds `obj` under `name`; without `obj`, returns a decorator that adds what it wraps.

        Args:
            name: the key users type.
            obj: the implementation, or "module:attribute" to import on the first `get`.
            aliases: other names for the same entry (listed in parentheses by `describe`).
            replace: let this entry replace one already registered under `name`.
            extra: the pip extra that installs a lazy entry's dependencies.

        Raises:
            ConfigError: the name or an alias is taken (without `replace`), or a lazy entry
                does not read "module:attribute".
        """
        if obj is None:

            def decorator(value: T) -> T:
                self.register(name, value, aliases=aliases, replace=replace, extra=extra)
                return value

            return decorator
        aliases = tuple(aliases)
        old = self._entries.get(name)
        if old is not None and old.obj is None and not isinstance(obj, str) and _names(obj, old):
            return None  # the module of a lazy entry registers its own object on import: agreed
        for key in (name, *aliases):
            owner = self._aliases.get(key, key if key in self._entries else None)
            if owner is not None and not (owner == name and replace):
                raise ConfigError(
                    f"{self.noun} {key!r} is already registered; pick another name, or pass "
                    "replace=True to replace that entry."
                )
        target = obj if isinstance(obj, str) else ""
        module, _, attribute = target.partition(":")
        if isinstance(obj, str) and not (module and attribute):
            raise ConfigError(f"lazy {self.noun} entry {obj!r} must read 'module:attribute'.")
        for alias in old.aliases if old is not None else ():
            del self._aliases[alias]  # a replaced entry keeps its place in the order, not aliases
        loaded = None if isinstance(obj, str) else obj
        self._entries[name] = _Entry(target=target, obj=loaded, aliases=aliases, extra=extra)
        self._aliases.update(dict.fromkeys(aliases, name))
        self._changed()
        return None

    def unregister(self, name: str) -> None:
        """Removes the entry `name` (or the entry an alias names) with all its aliases."""
        entry = self._entries.pop(self.canonical(name))
        for alias in entry.aliases:
            del self._aliases[alias]
        self._changed()

    def on_change(self, listener: Callable[[], None]) -> None:
        """Calls `listener()` after every later registration or removal.

        Tables derived from a registry (the nouns of every object kind, the skill-neutral
        parameter names) are cached; their owners clear the caches here, so an entry added at
        run time is seen at once.
        """
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    def values(self) -> list[T]:
        """Every implementation, in registration order (imports the lazy ones)."""
        return [self.get(name) for name in self._entries]

    def canonical(self, name: str) -> str:
        """The registered name for `name` or its alias; imports nothing (cheap config checks).

        Raises:
            UnknownNameError: nothing is registered under `name`; suggests the closest name.
        """
        if name in self._entries:
            return name
        if name in self._aliases:
            return self._aliases[name]
        names = list(self._entries)
        text = self._unknown.format(noun=self.noun, name=name, choices=sorted(names), names=names)
        raise UnknownNameError(text + did_you_mean(name, [*names, *self._aliases]))

    def get(self, name: str) -> T:
        """The implementation registered under `name`; a lazy entry imports its module.

        A lazy entry is looked up through the import system on every call (a dict lookup once
        the module is loaded), so it sees what `sys.modules` holds, as an `import` would.

        Raises:
            UnknownNameError: nothing is registered under `name`; suggests the closest name.
            DependencyNotInstalled: a lazy entry's module needs a package that is missing.
        """
        key = self.canonical(name)
        entry = self._entries[key]
        if entry.obj is not None:
            return entry.obj
        module_name, _, attribute = entry.target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            missing = exc.name or "the package named in the cause"
            if missing.partition(".")[0] == _PACKAGE:
                raise
            package = f"'corrigible[{entry.extra}]'" if entry.extra else missing
            raise DependencyNotInstalled(
                f"the {self.noun} {key!r} needs a package that is not installed: "
                f"pip install {package} ({exc})"
            ) from exc
        return cast(T, getattr(module, attribute))

    def names(self) -> list[str]:
        """The registered names (not the aliases), in registration order."""
        return list(self._entries)

    def describe(self) -> str:
        """The names with their aliases in parentheses, comma-separated, for help texts."""
        return ", ".join(
            f"{name} ({', '.join(entry.aliases)})" if entry.aliases else name
            for name, entry in self._entries.items()
        )

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.noun!r}: {self.describe()})"


def _names(obj: object, entry: _Entry[T]) -> bool:
    """True when the lazy `entry` points at `obj` (its module and qualified name)."""
    where = f"{getattr(obj, '__module__', '')}:{getattr(obj, '__qualname__', '')}"
    return entry.target == where
