"""Schedule triggers: each occurrence is a timer in the backend, fired exactly once.

A due occurrence is claimed by one process (``claim_timers``); its fire id is derived from the
schedule and the instant, so a process that dies mid-fire and is retried by another cannot
fire it twice. Occurrences more than ``MISSED_AFTER`` late count as missed (downtime): skipped,
or one made up with ``catch_up="once"``. Overlap policies: ``skip`` records the occurrence as
skipped while the previous run is active, ``queue`` holds it until that run ends, ``replace``
cancels that run.
"""

from __future__ import annotations

from typing import Any

from flowtide._util.clock import iso, now
from flowtide._util.ids import derived_uuid7
from flowtide.backends.base import CommitItem, RecordOp, Timer, Transition
from flowtide.engine.occurrences import MISSED_AFTER, SCHEDULES, next_at
from flowtide.engine.triggers import TRIGGERS, FireRequest, TriggerService, stats_of

__all__ = ["ScheduleService"]


class ScheduleService:
    def __init__(self, triggers: TriggerService) -> None:
        self.triggers = triggers
        self.backend = triggers.backend

    async def due(self, timer: Timer) -> None:
        """The schedule's next occurrence is due: fire it once, arm the one after."""
        name, at = timer.data["name"], float(timer.data["at"])
        doc = await self.backend.get_record(TRIGGERS, name)
        if doc is None or doc["type"] != "schedule" or doc["status"] != "active":
            await self.backend.delete_timer(timer.id)
            return
        if doc["def_hash"] != timer.data["def_hash"]:
            return  # a stale timer: the edit that changed the definition armed a new one
        ts = now()
        state = await self.backend.get_record(SCHEDULES, name) or {}
        missed = ts - at > MISSED_AFTER and not timer.data.get("queued")
        fire = not missed or doc["options"]["catch_up"] == "once"
        record = None
        if fire:
            record = await self._fire_occurrence(doc, at, state)
            if record is None:  # overlap=queue: try again shortly, same occurrence
                retry = Timer(timer.id, ts + 1.0, "schedule", {**timer.data, "queued": True})
                await self.backend.commit([CommitItem(None, lambda _: Transition(timers=[retry]))])
                return
        nxt = next_at(doc, at + 0.001)  # strictly later, whatever the float rounding
        if nxt < ts - MISSED_AFTER:
            nxt = next_at(doc, ts)  # after downtime: on from the next future occurrence
        self._update_state(state, at, record, missed and not fire, nxt)
        data = {"name": name, "at": nxt, "def_hash": doc["def_hash"]}
        t = Transition(
            timers=[Timer(timer.id, nxt, "schedule", data)],
            records=[RecordOp(SCHEDULES, name, state)],
        )
        await self.backend.commit([CommitItem(None, lambda _: t)])

    async def _fire_occurrence(
        self, doc: dict[str, Any], at: float, state: dict[str, Any]
    ) -> dict[str, Any] | None:
        name, overlap = doc["name"], doc["options"]["overlap"]
        busy = set()
        for run_id, flow in (state.get("last_runs") or {}).items():
            run = await self.backend.get_run(run_id)
            if run is not None and not run.terminal:
                busy.add((run_id, flow))
        exclude: frozenset[str] = frozenset()
        if busy and overlap == "queue":
            return None
        if busy and overlap == "replace":
            for run_id, _ in busy:
                try:
                    await self.triggers.service.cancel(run_id, f"replaced by schedule {name}")
                except Exception:
                    pass  # it ended meanwhile
        elif busy:
            exclude = frozenset(flow for _, flow in busy)
        fire_id = derived_uuid7(int(at * 1000), f"schedule:{name}:{at}")
        request = FireRequest(
            {"scheduled_at": iso(at)}, "schedule", fire_id, at, exclude=exclude, scheduled_at=at
        )
        record = await self.triggers.fire(name, request, doc)
        if exclude:
            await self.backend.add_to_counter(stats_of(name), "skipped")
        return record

    @staticmethod
    def _update_state(
        state: dict[str, Any],
        at: float,
        record: dict[str, Any] | None,
        skipped: bool,
        nxt: float,
    ) -> None:
        state["next_at"] = iso(nxt)
        if skipped:
            state["missed"] = state.get("missed", 0) + 1
            return
        state["last_at"] = iso(at)
        if record is not None:
            state["last_fire_id"] = record["fire_id"]
            state["last_runs"] = {run: flow for flow, run in record.get("runs", {}).items()}

    async def list(self) -> list[dict[str, Any]]:
        """Every schedule trigger with its next and last occurrence and counters."""
        out = []
        for doc in await self.triggers.all():
            if doc["type"] != "schedule":
                continue
            state = await self.backend.get_record(SCHEDULES, doc["name"]) or {}
            upcoming = state.get("next_at")
            if doc["status"] == "active" and upcoming is None:
                upcoming = iso(next_at(doc, now()))
            out.append(
                {
                    "name": doc["name"],
                    "status": doc["status"],
                    "cron": doc["options"].get("cron"),
                    "every": doc["options"].get("every"),
                    "tz": doc["options"].get("tz"),
                    "overlap": doc["options"].get("overlap"),
                    "catch_up": doc["options"].get("catch_up"),
                    "flows": sorted(doc["subscriptions"]),
                    "next_at": upcoming if doc["status"] == "active" else None,
                    "last_at": state.get("last_at"),
                    "missed": state.get("missed", 0),
                    "stats": await self.triggers.stats(doc["name"]),
                }
            )
        return out
