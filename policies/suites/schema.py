"""Suites are data: a YAML file of episodes, written independently of any planner.

Each episode has its instruction(s), objects, seed and the predicate that defines success.

Schema (version 1):

```yaml
name: tabletop            # required
version: 1                # required, this schema
description: free text
episodes:                 # required, non-empty
  - id: stack-003         # required, unique
    family: stack         # required: groups results
    split: train          # train | heldout (default train)
    instruction: "stack all the blocks"      # a string, or a list of strings run in order
    expect: "stacked(all blocks)"            # required: the success predicate
    seed: 3                                  # layout seed (default 0)
    objects:                                 # optional: the exact objects (else random + named)
      - {kind: block, color: red}            # kind: block | cylinder | bowl (any requestable
                                             # kind of sim_envs.vocabulary); color: palette
      - {kind: block, color: blue, size: small, friction: 0.2, mass: 0.1}
    drawer: true                             # include the cabinet (default true)
```
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from corrigible.boundary import escape, load_yaml
from corrigible.errors import (
    ConfigError,
    CorrigibleError,
    ParseError,
    UnknownNameError,
    UnknownObjectError,
    did_you_mean,
)
from corrigible.sim_envs.layout import LayoutConfig, ObjectRequest, sample_layout
from corrigible.sim_envs.palette import COLORS
from corrigible.sim_envs.vocabulary import requestable_kind

SCHEMA_VERSION = 1
MAX_SEED = 2**32 - 1  # layout seeds are 32-bit


class SuiteObject(BaseModel):
    """One object of an episode's layout."""

    model_config = ConfigDict(extra="forbid")
    kind: str  # a requestable kind of `sim_envs.vocabulary` ("block", "cylinder", "bowl")
    color: str
    size: Literal["small", "medium", "large"] = "medium"
    friction: float | None = Field(default=None, gt=0, le=5)
    mass: float | None = Field(default=None, gt=0, le=5)

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        try:
            return requestable_kind(v)
        except UnknownNameError as exc:  # a KeyError: pydantic would not catch it
            raise ValueError(str(exc)) from None

    @field_validator("color")
    @classmethod
    def _color(cls, v: str) -> str:
        if v not in COLORS:
            raise ValueError(
                f"color {v!r} is not a palette colour {sorted(COLORS)}." + did_you_mean(v, COLORS)
            )
        return v


class SuiteEpisode(BaseModel):
    """One task instance."""

    model_config = ConfigDict(extra="forbid")
    id: str
    family: str
    split: Literal["train", "heldout"] = "train"
    instruction: str | list[str]
    expect: str = Field(min_length=1)  # the success predicate, e.g. "in(red block, blue bowl)"
    seed: int = Field(default=0, ge=0, le=MAX_SEED)  # layout seed
    objects: list[SuiteObject] | None = None
    drawer: bool = True

    @field_validator("instruction")
    @classmethod
    def _non_empty(cls, v: str | list[str]) -> str | list[str]:
        texts = [v] if isinstance(v, str) else v
        if not texts or not all(t.strip() for t in texts):
            raise ValueError("instruction must not be empty (nor any of a list's)")
        return v

    def layout(self) -> LayoutConfig | None:
        """The layout request, or None to draw a random one around the named objects."""
        if self.objects is None:
            return None
        reqs = [
            ObjectRequest(
                kind=o.kind, color=o.color, size_class=o.size, friction=o.friction, mass=o.mass
            )
            for o in self.objects
        ]
        return LayoutConfig(objects=reqs, include_drawer=self.drawer)

    def problems(self) -> Iterator[str]:
        """What this episode could not run with, each naming its field (empty: none).

        The episode's layout is drawn as the session will draw it (`sample_layout`: pure and
        fast, no engine; without `objects`, a random one holding the objects the texts name)
        and `expect` parsed against it: an object the predicate names that is not in the
        layout, two objects with one name or an overcrowded table are found at load.
        """
        from corrigible.policies.language import mentioned_objects
        from corrigible.sim_envs.predicates import parse_predicate

        texts = [self.instruction] if isinstance(self.instruction, str) else self.instruction
        layout = self.layout() or LayoutConfig(required=mentioned_objects(*texts, self.expect))
        try:
            scene = sample_layout(self.seed, layout)
        except CorrigibleError as exc:
            yield f"objects: {exc}"
            return
        try:
            parse_predicate(self.expect, scene)
        except (ParseError, UnknownNameError, UnknownObjectError) as exc:
            yield f"expect {escape(repr(self.expect))}: {exc}"


class Suite(BaseModel):
    """A named list of episodes."""

    model_config = ConfigDict(extra="forbid")
    name: str
    version: int
    description: str = ""
    episodes: list[SuiteEpisode] = Field(min_length=1, max_length=5000)  # each checked at load

    @field_validator("version")
    @classmethod
    def _version(cls, v: int) -> int:
        if v != SCHEMA_VERSION:
            raise ValueError(
                f"this corrigible reads suite schema version {SCHEMA_VERSION}, the file says {v}"
            )
        return v


def builtin_suites() -> list[str]:
    """Names of the suites shipped in the package."""
    return sorted(
        p.name.removesuffix(".yaml")
        for p in resources.files("corrigible.policies.suites").iterdir()
        if p.name.endswith(".yaml")
    )


def load_suite(name_or_path: str) -> Suite:
    """Loads a built-in suite by name, or a YAML file by path; errors name the file and field.

    Every episode is checked as it will run (`SuiteEpisode.problems`): its layout drawn and its
    predicate parsed against it.

    Raises:
        UnknownNameError: no such file and no built-in suite of that name.
        ConfigError: the file is not UTF-8, not YAML, too deeply nested, or a field (or an
            episode's layout or predicate) is invalid; names the file, episode and field.
    """
    path = Path(name_or_path)
    shown = escape(repr(name_or_path))
    if not path.is_file():
        if name_or_path not in builtin_suites():
            if path.exists():
                raise ConfigError(f"suite {shown} is not a file; give a suite YAML file")
            raise UnknownNameError(
                f"no suite file {shown} and no built-in suite of that name; "
                f"built-in: {builtin_suites()}." + did_you_mean(name_or_path, builtin_suites())
            )
        text = (resources.files("corrigible.policies.suites") / f"{name_or_path}.yaml").read_text()
        data = load_yaml(name_or_path, what="suite", text=text)
    else:
        data = load_yaml(path, what="suite")  # ConfigError: not UTF-8, not YAML, too deep
    if data is None:
        raise ConfigError(
            f"suite {shown}: the file is empty; `corrigible schema suite` lists the fields"
        )
    if not isinstance(data, dict):
        raise ConfigError(
            f"suite {shown}: a suite must be a mapping of fields (`corrigible schema suite`), "
            f"got {type(data).__name__}"
        )
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        episode = _episode_id(data, first["loc"])
        raise ConfigError(
            f"suite {shown}: field {escape(where)}{episode}: "
            f"{escape(first['msg'].removeprefix('Value error, '))} (got "
            f"{escape(repr(first.get('input')))[:200]}); {len(exc.errors())} problem(s) in all"
        ) from None
    ids = [e.id for e in suite.episodes]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ConfigError(f"suite {shown}: episode ids must be unique; repeated: {escape(dupes)}")
    problems = [
        f"field episodes.{i} (id {escape(repr(ep.id))}).{problem}"
        for i, ep in enumerate(suite.episodes)
        for problem in ep.problems()
    ]
    if problems:
        more = f"; {len(problems)} problem(s) in all" if len(problems) > 1 else ""
        raise ConfigError(f"suite {shown}: {escape(problems[0])}{more}")
    return suite


def _episode_id(data: dict, loc: tuple) -> str:
    """The " (id 'x')" of the episode an error at `loc` lies in, when it has a string id."""
    if len(loc) < 2 or loc[0] != "episodes" or not isinstance(loc[1], int):
        return ""
    episodes = data.get("episodes")
    if not isinstance(episodes, list) or not isinstance(episodes[loc[1]], dict):
        return ""
    episode_id = episodes[loc[1]].get("id")
    return f" (id {escape(repr(episode_id))})" if isinstance(episode_id, str) else ""
