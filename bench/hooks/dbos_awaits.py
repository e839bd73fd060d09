"""DBOS peer of the awaits benchmark: ``python -m bench.hooks.dbos_awaits N SEQ_N SENDERS``
prints one JSON result.

One DBOS process (``_dbos_waiter``) holds N workflows blocked in ``DBOS.recv_async``; this
process measures its resident memory, then resolves them with ``DBOSClient.send``: the first
SEQ_N one call at a time, the others from SENDERS concurrent threads; then it reads every
workflow's result (the time ``recv`` returned).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.hooks._flowtide import rss_mib
from bench.hooks._load import cpu_seconds, summary
from bench.peers._common import Child, Deadline, child_process, temp_dir, wait_for

BUDGET_S = 800.0


Sent = tuple[dict[int, float], list[float], float, float]


def _send_all(client: Any, ids: range, senders: int, pid: int, deadline: Deadline) -> Sent:
    """``client.send`` to each workflow of ``ids`` from ``senders`` threads: the wall-clock
    time each call started, the calls' durations (ms), the DBOS process's CPU seconds and the
    phase's duration."""
    sent: dict[int, float] = {}
    calls: list[float] = []
    lock = threading.Lock()

    def send(i: int) -> None:
        if deadline.remaining() <= 0:
            return
        t_sent = time.time()
        t = time.perf_counter()
        client.send(f"wait-{i}", {"approved": True, "by": "bench"}, topic="approve")
        ms = (time.perf_counter() - t) * 1000.0
        with lock:
            sent[i] = t_sent
            calls.append(ms)

    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    with ThreadPoolExecutor(senders) as pool:
        list(pool.map(send, ids))
    return sent, calls, cpu_seconds(pid) - cpu0, time.perf_counter() - t0


def _results(client: Any, n: int, child: Child, deadline: Deadline) -> dict[int, float]:
    """Each workflow's resume time, once all N finished (bounded)."""
    resumed: dict[int, float] = {}
    ids = [f"wait-{i}" for i in range(n)]
    while len(resumed) < n:
        child.check_alive()
        deadline.check(f"waiting for {n - len(resumed)} workflows to resume")
        for lo in range(0, n, 500):
            todo = [w for w in ids[lo : lo + 500] if int(w[5:]) not in resumed]
            if not todo:
                continue
            for st in client.list_workflows(workflow_ids=todo, load_input=False):
                if st.status == "SUCCESS" and st.output is not None:
                    resumed[int(st.output["i"])] = float(st.output["t"])
        if len(resumed) < n:
            time.sleep(0.5)
    return resumed


def run(n: int, seq_n: int, senders: int) -> dict[str, Any]:
    from dbos import DBOSClient

    with temp_dir("awaits-dbos") as tmp:
        url = f"sqlite:///{tmp}/dbos.sqlite"
        ready = tmp / "ready"
        deadline = Deadline("dbos:awaits", BUDGET_S)
        out: dict[str, Any] = {"n": n}
        t0 = time.perf_counter()
        args = [url, str(n), str(ready)]
        with child_process("bench.hooks._dbos_waiter", args, {}, tmp / "dbos.log") as child:
            launched = tmp / "ready.launched"
            wait_for(launched.exists, deadline, "DBOS to launch", child, 0.05)
            out["rss_idle_mib"] = rss_mib(child.pid)
            wait_for(ready.exists, deadline, "DBOS workflows to enter recv", child, 0.1)
            out["all_awaiting_s"] = time.perf_counter() - t0
            out["rss_awaiting_mib"] = rss_mib(child.pid)
            client = DBOSClient(system_database_url=url)
            phases = {
                "one": _send_all(client, range(seq_n), 1, child.pid, deadline),
                "load": _send_all(client, range(seq_n, n), senders, child.pid, deadline),
            }
            resumed = _results(client, n, child, deadline)
            out["rss_after_mib"] = rss_mib(child.pid)
            client.destroy()
        out["completed"] = len(resumed)
        for name, (sent, calls, cpu, elapsed) in phases.items():
            out[name] = {
                "accepted": len(sent),
                "elapsed_s": elapsed,
                "intake_ms": summary(calls),
                "start_ms": summary([(resumed[i] - sent[i]) * 1000 for i in sent if i in resumed]),
                "server_cpu_ms_per_request": cpu * 1000 / max(1, len(sent)),
            }
        sent = phases["load"][0]
        out["load"]["all_resumed_s"] = max(resumed[i] for i in sent) - min(sent.values())
        return out


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))))
