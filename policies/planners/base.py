"""The planner interface: an instruction (plus context) in, a robot-API Python program out."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(kw_only=True)
class HistoryItem:
    """One earlier instruction of the session, for "undo that" and "do the same"."""

    instruction: str
    program: str
    subject: str | None = None  # the main object acted on ("red block")
    target: Any = None  # where it went
    moved_from: dict[str, list[float]] = field(default_factory=dict)  # object -> xy before


@dataclass(kw_only=True)
class PlanContext:
    """What a planner may know when writing a program."""

    object_names: list[str]  # what the robot sees now
    positions: dict[str, list[float]] = field(default_factory=dict)  # perceived xyz, m
    history: list[HistoryItem] = field(default_factory=list)
    knowledge: list[str] = field(default_factory=list)  # retrieved rules, as text
    corrections: list[str] = field(default_factory=list)  # corrections given in this episode


@dataclass(kw_only=True)
class Program:
    """A program to run in the sandbox, with what the planner understood."""

    source: str
    planner: str
    family: str = "unknown"  # instruction family the planner recognised
    subject: str | None = None
    target: Any = None
    notes: list[str] = field(default_factory=list)
    raw_llm_output: str | None = None
    # LLM requests this plan took: 1 for the program, plus one per function fgen defined
    # (0 for the grammar); evaluations report them per plan
    llm_calls: int = 0


class Planner(abc.ABC):
    """Writes a program for an instruction."""

    name: ClassVar[str]  # registry name, e.g. "grammar"

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if not getattr(cls, "name", None):
            raise TypeError(f"{cls.__name__} must set the class attribute `name`")

    @abc.abstractmethod
    def plan(self, instruction: str, context: PlanContext) -> Program:
        """Returns a program; raises ParseError/UnknownObjectError for what it cannot do."""
