"""Plain-data definitions: flows, steps, functions, triggers, awaits, backoff."""

from flowtide.definitions import awaits, triggers
from flowtide.definitions.backoff import Backoff
from flowtide.definitions.flow import Flow, FunctionDef, StepDef, function

__all__ = ["Backoff", "Flow", "FunctionDef", "StepDef", "awaits", "function", "triggers"]
