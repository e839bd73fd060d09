"""The engine: pure orchestration decisions, the worker loop, the handler context, timers."""
