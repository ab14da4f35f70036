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

from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from corrigible.errors import ConfigError, UnknownNameError, did_you_mean
from corrigible.sim_envs.layout import LayoutConfig, ObjectRequest
from corrigible.sim_envs.vocabulary import requestable_kind

SCHEMA_VERSION = 1


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
        return requestable_kind(v)


class SuiteEpisode(BaseModel):
    """One task instance."""

    model_config = ConfigDict(extra="forbid")
    id: str
    family: str
    split: Literal["train", "heldout"] = "train"
    instruction: str | list[str]
    expect: str
    seed: int = 0
    objects: list[SuiteObject] | None = None
    drawer: bool = True

    @field_validator("instruction")
    @classmethod
    def _non_empty(cls, v: str | list[str]) -> str | list[str]:
        if (isinstance(v, str) and not v.strip()) or (isinstance(v, list) and not v):
            raise ValueError("instruction must not be empty")
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


class Suite(BaseModel):
    """A named list of episodes."""

    model_config = ConfigDict(extra="forbid")
    name: str
    version: int
    description: str = ""
    episodes: list[SuiteEpisode] = Field(min_length=1)

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
    """Loads a built-in suite by name, or a YAML file by path; errors name the bad field."""
    path = Path(name_or_path)
    if not path.is_file():
        if name_or_path not in builtin_suites():
            raise UnknownNameError(
                f"no suite file {name_or_path!r} and no built-in suite of that name; "
                f"built-in: {builtin_suites()}." + did_you_mean(name_or_path, builtin_suites())
            )
        text = (resources.files("corrigible.policies.suites") / f"{name_or_path}.yaml").read_text()
    else:
        text = path.read_text()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"suite {name_or_path!r} is not valid YAML: {exc}") from exc
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"suite {name_or_path!r}: field {where}: {first['msg']}") from exc
    ids = [e.id for e in suite.episodes]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ConfigError(f"suite {name_or_path!r}: episode ids must be unique; repeated: {dupes}")
    return suite
