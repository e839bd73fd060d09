"""Child-process runtimes (DESIGN A7): ``python-process`` and ``node``, over one protocol.

The engine dispatches a job whose step has ``runtime != "python"`` to a :class:`Pool` of warm
children; ``docs/protocol.md`` specifies what parent and child say to each other.
"""

from flowtide.runtimes.child import Host, Invocation, Outcome
from flowtide.runtimes.pool import Pool, PoolOptions, RuntimePools, options_from_config
from flowtide.runtimes.protocol import MAX_FRAME, PROTOCOL_VERSION

__all__ = [
    "MAX_FRAME",
    "PROTOCOL_VERSION",
    "Host",
    "Invocation",
    "Outcome",
    "Pool",
    "PoolOptions",
    "RuntimePools",
    "options_from_config",
]
