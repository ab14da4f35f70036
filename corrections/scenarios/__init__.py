"""Scripted correction scenarios: hidden object properties, preferences and rounds of tasks."""

from corrigible.corrections.scenarios.schema import Scenario, TaskInstance, load_scenarios

__all__ = ["Scenario", "TaskInstance", "load_scenarios"]
