"""flowtide: event-driven workflow orchestration for Python.

Durable job queues, multi-step flows wired by emitted events, and a complete event-sourced
history of every run, on an embedded SQLite backend or shared Redis/PostgreSQL.
"""

from flowtide.app import App, SyncApp
from flowtide.config import Config, ConfigError, load_config
from flowtide.definitions import Backoff, Flow, awaits, function, triggers
from flowtide.engine.context import Context
from flowtide.engine.runs import InvalidInput, NotFound
from flowtide.registry import DefinitionError

__version__ = "0.1.0"

__all__ = [
    "App",
    "Backoff",
    "Config",
    "ConfigError",
    "Context",
    "DefinitionError",
    "Flow",
    "InvalidInput",
    "NotFound",
    "SyncApp",
    "__version__",
    "awaits",
    "function",
    "load_config",
    "triggers",
]
