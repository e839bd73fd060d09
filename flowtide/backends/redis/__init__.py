"""The Redis backend (``redis://HOST:PORT/DB``, extra ``redis``): see backend.py and keys.py."""

from flowtide.backends.redis.backend import RedisBackend

__all__ = ["RedisBackend"]
