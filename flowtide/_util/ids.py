"""Time-ordered identifiers (UUIDv7, RFC 9562)."""

from __future__ import annotations

import os
import threading
import time
import uuid

__all__ = ["derived_uuid7", "uuid7"]

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7() -> str:
    """A UUIDv7 string; monotonic within this process (a 12-bit counter breaks ms ties)."""
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            _counter += 1
            if _counter > 0xFFF:
                _last_ms += 1
                _counter = 0
            ms = _last_ms
        else:
            _last_ms = ms
            _counter = 0
        counter = _counter
    rand = int.from_bytes(os.urandom(8), "big") & 0x3FFFFFFFFFFFFFFF
    value = (ms & 0xFFFFFFFFFFFF) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand
    return str(uuid.UUID(int=value))


def derived_uuid7(ms: int, seed: str) -> str:
    """A UUIDv7 for instant ``ms`` whose random bits come from ``seed``: the same seed gives
    the same id, so work keyed by it (the runs of one fire) happens at most once."""
    import hashlib

    bits = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:10], "big")
    rand_a, rand_b = bits >> 68 & 0xFFF, bits & 0x3FFFFFFFFFFFFFFF
    value = (ms & 0xFFFFFFFFFFFF) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return str(uuid.UUID(int=value))
