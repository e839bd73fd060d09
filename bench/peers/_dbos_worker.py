"""DBOS worker child process for the benchmark: ``python -m bench.peers._dbos_worker``.

Launches DBOS against the SQLite system database given on the command line, announces
readiness by writing ``time.time()`` to the ready file, then either serves the queues
registered in the database until SIGTERM (``--mode queue``), or runs a probe in-process
and writes its result as JSON to ``--out``: ``--n`` latency workflows one at a time and
their step timestamps (``--mode latency``), the ``state_probe`` workflow's ``--n``
get_event timings (``--mode state_get``) or the ``append_probe`` workflow's ``--n``
write_stream and set_event timings (``--mode append``). SIGTERM makes a probe stop early.
"""

from __future__ import annotations

import argparse
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from dbos import DBOS, DBOSConfig

from . import _dbos_app
from ._common import write_atomically


def _latency(n: int) -> list[list[float]]:
    samples = []
    for i in range(n):
        if _dbos_app.STOP.is_set():
            break
        out = _dbos_app.latency(i)
        samples.append([out["t1_end"], out["t2_start"]])
    return samples


_PROBES: dict[str, Callable[[int], Any]] = {
    "latency": _latency,
    "state_get": _dbos_app.state_probe,
    "append": _dbos_app.append_probe,
}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db-url", required=True)
    parser.add_argument("--ready", required=True, type=Path)
    parser.add_argument("--mode", choices=("queue", *_PROBES), default="queue")
    parser.add_argument("--n", type=int, default=0)
    parser.add_argument("--out", type=Path)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    stop = _dbos_app.STOP

    def _on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGINT, _on_term)

    config: DBOSConfig = {
        "name": _dbos_app.APP_NAME,
        "system_database_url": args.db_url,
        "application_version": _dbos_app.APP_VERSION,
    }
    DBOS(config=config)
    DBOS.launch()
    try:
        write_atomically(args.ready, repr(time.time()))
        if args.mode in _PROBES:
            result = _PROBES[args.mode](args.n)
            write_atomically(args.out, json.dumps(result))
        stop.wait()
    finally:
        DBOS.destroy()


if __name__ == "__main__":
    main()
