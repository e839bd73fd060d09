"""DBOS worker child process for the benchmark: ``python -m bench.peers._dbos_worker``.

Launches DBOS against the SQLite system database given on the command line, announces
readiness by writing ``time.time()`` to the ready file, then either serves the queues
registered in the database until SIGTERM (``--mode queue``) or runs ``--n`` latency
workflows one at a time in-process and writes their step timestamps as JSON to
``--out`` (``--mode latency``).
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from pathlib import Path
from types import FrameType

from dbos import DBOS, DBOSConfig

from . import _dbos_app
from ._common import write_atomically


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db-url", required=True)
    parser.add_argument("--ready", required=True, type=Path)
    parser.add_argument("--mode", choices=("queue", "latency"), default="queue")
    parser.add_argument("--n", type=int, default=0)
    parser.add_argument("--out", type=Path)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    stop = threading.Event()

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
        if args.mode == "latency":
            samples = []
            for i in range(args.n):
                if stop.is_set():
                    break
                out = _dbos_app.latency(i)
                samples.append([out["t1_end"], out["t2_start"]])
            write_atomically(args.out, json.dumps(samples))
        stop.wait()
    finally:
        DBOS.destroy()


if __name__ == "__main__":
    main()
