"""Entry triggers at run time: the registry in the backend, firing, events, and schedules.

Storage (backend records):
- ``triggers``: one document per trigger name (type, options, JSON schema, subscriptions,
  status, where it came from);
- ``fires:{name}``: one record per fire, keyed by its time-ordered id (newest first = reverse);
- ``trigger_stats:{name}``: counters ``fires``, ``runs``, ``failures``, ``skipped`` and the
  record ``last_fire_at``;
- ``idem:{name}`` and ``rate:{name}``: webhook delivery ids and rate-limit windows, expiring;
- ``schedules``: per schedule trigger, the last and next occurrence and its last runs.

Exactly once: the runs a fire starts get ids derived from the fire id, and a fire's id is
derived from what it stands for where that repeats (a schedule occurrence, a step's emit, a
webhook delivery id). Doing a fire twice therefore starts each run once and records it once.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import pydantic

from flowtide._util.clock import iso, now
from flowtide._util.ids import derived_uuid7, uuid7
from flowtide.backends.base import CommitItem, RecordOp, Timer, Transition
from flowtide.engine.awaits import AwaitService
from flowtide.engine.occurrences import SCHEDULES, next_timer, timer_id
from flowtide.engine.runs import InvalidInput, NotFound, RunService, validation_errors
from flowtide.engine.trigger_defs import TriggerError, code_triggers, definition_hash, normalize

__all__ = [
    "Conflict",
    "Paused",
    "TriggerError",
    "TriggerService",
]

logger = logging.getLogger("flowtide.triggers")
TRIGGERS = "triggers"
SYNC_INTERVAL = 1.0  # how often a process re-reads the registry (changes spread within 2 s)


class Paused(Exception):
    """The trigger is paused (HTTP 409)."""


class Conflict(Exception):
    """The trigger exists already, or has the wrong type for the operation (HTTP 409)."""


def stats_of(name: str) -> str:
    return f"trigger_stats:{name}"


def fires_of(name: str) -> str:
    return f"fires:{name}"


@dataclass(slots=True)
class FireRequest:
    payload: Any
    source: str = "api"  # api | webhook | event | emit | schedule | replay
    fire_id: str | None = None
    ts: float | None = None
    replay_of: str | None = None
    delivery_id: str | None = None
    check_status: bool = True
    exclude: frozenset[str] = frozenset()  # flows to skip (a schedule's overlap policy)
    scheduled_at: float | None = None


class TriggerService:
    def __init__(self, service: RunService, awaits: AwaitService) -> None:
        self.service = service
        self.backend = service.backend
        self.awaits = awaits
        self.cache: dict[str, dict[str, Any]] = {}
        self.models: dict[str, Any] = {}
        self._synced_at = 0.0
        self._sync_lock = asyncio.Lock()
        self._awaited = {  # event names some step's event await waits for
            decl.options["name"]
            for g in service.registry.flows.values()
            for s in g.steps.values()
            for decl in (s.await_before, s.await_after)
            if decl is not None and decl.type == "event"
        }
        service.emit_interest = self._interested

    # -- the registry --------------------------------------------------------------------------
    def _interested(self, name: str) -> bool:
        if name in self._awaited:
            return True
        doc = self.cache.get(name)
        return doc is not None and doc["type"] == "event" and doc["options"]["from_emits"]

    async def sync(self) -> None:
        """Re-read every trigger document (other processes' changes)."""
        async with self._sync_lock:
            fresh: dict[str, dict[str, Any]] = {}
            after = None
            while True:
                page = await self.backend.list_records(TRIGGERS, 500, after)
                fresh.update(page)
                if len(page) < 500:
                    break
                after = page[-1][0]
            self.cache = fresh
            self._synced_at = now()

    async def run_sync(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.sync()
            except Exception as exc:
                logger.warning("reading the trigger registry failed: %s", exc)
            try:
                await asyncio.wait_for(stop.wait(), SYNC_INTERVAL)
            except TimeoutError:
                pass

    async def get(self, name: str) -> dict[str, Any]:
        doc = await self.backend.get_record(TRIGGERS, name)
        if doc is None:
            raise NotFound(f"unknown trigger {name!r}")
        self.cache[name] = doc
        result: dict[str, Any] = doc
        return result

    async def cached(self, name: str) -> dict[str, Any]:
        """The trigger as of the last sync (at most a second old); the backend if unknown."""
        doc = self.cache.get(name)
        return doc if doc is not None else await self.get(name)

    async def all(self) -> list[dict[str, Any]]:
        await self.sync()
        return [self.cache[name] for name in sorted(self.cache)]

    async def stats(self, name: str) -> dict[str, Any]:
        counters = dict(await self.backend.list_records(stats_of(name)))
        return {
            "fires": counters.get("fires", 0),
            "runs_started": counters.get("runs", 0),
            "failures": counters.get("failures", 0),
            "skipped": counters.get("skipped", 0),
            "last_fire_at": counters.get("last_fire_at"),
        }

    async def reconcile(self) -> None:
        """Bring code-declared triggers into the registry.

        Rule: a trigger missing from the registry is created; one whose code changed since it
        was last reconciled takes the code's definition (its status and subscriptions added at
        run time are kept); run-time edits of a trigger whose code did not change survive
        restarts."""
        docs, self.models = code_triggers(self.service)
        for name, doc in docs.items():
            code_hash = definition_hash(doc)
            stored = await self.backend.get_record(TRIGGERS, name)
            if stored is not None and stored.get("code_hash") == code_hash:
                continue
            ts = now()
            if stored is None:
                new = {**doc, "source": "code", "created_at": iso(ts)}
            else:
                subs = {**stored.get("subscriptions", {}), **doc["subscriptions"]}
                new = {**stored, **doc, "subscriptions": subs, "status": stored["status"]}
            new.update(code_hash=code_hash, updated_at=iso(ts))
            await self._store(new, stored)
        await self.sync()

    async def _store(self, doc: dict[str, Any], previous: dict[str, Any] | None) -> None:
        doc["def_hash"] = definition_hash(doc, ("type", "options"))  # when a schedule fires
        ops = [RecordOp(TRIGGERS, doc["name"], doc)]
        t = Transition(records=ops)
        changed = previous is None or previous.get("def_hash") != doc["def_hash"]
        status_changed = previous is not None and previous.get("status") != doc["status"]
        if doc["type"] == "schedule" and (changed or status_changed):
            if doc["status"] == "active":
                t.timers.append(next_timer(doc, now()))
            else:
                t.cancel_timers.append(timer_id(doc["name"]))
        elif previous is not None and previous["type"] == "schedule" and doc["type"] != "schedule":
            t.cancel_timers.append(timer_id(doc["name"]))
        await self.backend.commit([CommitItem(None, lambda _: t)])
        self.cache[doc["name"]] = doc

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        doc = normalize(body)
        if await self.backend.get_record(TRIGGERS, doc["name"]) is not None:
            raise Conflict(f"trigger {doc['name']!r} exists; PATCH it to change it")
        ts = iso(now())
        doc.update(source="api", created_at=ts, updated_at=ts)
        await self._store(doc, None)
        return doc

    async def update(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        stored = await self.get(name)
        merged = {**stored, **{k: v for k, v in changes.items() if k != "name"}}
        if "options" in changes:
            merged["options"] = {**stored["options"], **(changes["options"] or {})}
        doc = {**stored, **normalize({**merged, "name": name})}
        doc["updated_at"] = iso(now())
        await self._store(doc, stored)
        return doc

    async def set_status(self, name: str, paused: bool) -> dict[str, Any]:
        return await self.update(name, {"status": "paused" if paused else "active"})

    async def delete(self, name: str) -> None:
        stored = await self.get(name)
        t = Transition(records=[RecordOp(TRIGGERS, name, None), RecordOp(SCHEDULES, name, None)])
        if stored["type"] == "schedule":
            t.cancel_timers.append(timer_id(name))
        await self.backend.commit([CommitItem(None, lambda _: t)])
        self.cache.pop(name, None)

    async def subscribe(self, name: str, flow: str, mode: str = "auto") -> dict[str, Any]:
        stored = await self.get(name)
        subs = {**stored["subscriptions"], flow: {"mode": mode}}
        return await self.update(name, {"subscriptions": subs})

    async def unsubscribe(self, name: str, flow: str) -> dict[str, Any]:
        stored = await self.get(name)
        subs = {k: v for k, v in stored["subscriptions"].items() if k != flow}
        return await self.update(name, {"subscriptions": subs})

    # -- firing --------------------------------------------------------------------------------
    def validate(self, doc: dict[str, Any], payload: Any) -> None:
        model = self.models.get(doc["name"])
        if model is not None and doc.get("source") == "code":
            try:
                pydantic.TypeAdapter(model).validate_python(payload)
            except pydantic.ValidationError as exc:
                raise InvalidInput(
                    f"invalid payload for trigger {doc['name']!r}", validation_errors(exc)
                ) from None
            return
        if doc.get("schema"):
            import jsonschema

            errors = [
                {"loc": list(e.absolute_path), "msg": e.message, "type": str(e.validator)}
                for e in jsonschema.Draft202012Validator(doc["schema"]).iter_errors(payload)
            ]
            if errors:
                raise InvalidInput(f"invalid payload for trigger {doc['name']!r}", errors)

    async def fire(
        self, name: str, request: FireRequest, doc: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Start every ``auto`` subscriber; record the fire. Returns the fire record (the
        original one if this fire id was recorded before). Firing an event trigger through
        the API (or a replay) is publishing the event: it also resolves event awaits."""
        doc = doc or await self.get(name)
        record = await self._fire(name, request, doc)
        if doc["type"] == "event" and request.source in ("api", "replay"):
            await self.awaits.on_event(name, request.payload, request.ts or now())
        return record

    async def _fire(self, name: str, request: FireRequest, doc: dict[str, Any]) -> dict[str, Any]:
        if request.check_status and doc["status"] != "active":
            raise Paused(f"trigger {name!r} is paused")
        self.validate(doc, request.payload)
        ts = request.ts or now()
        fire_id = request.fire_id or uuid7()
        trigger = {"name": name, "type": doc["type"], "data": request.payload, "fire_id": fire_id}
        skipped: list[dict[str, str]] = []
        failed: list[dict[str, Any]] = []
        planned: dict[str, str] = {}
        for flow, sub in sorted(doc["subscriptions"].items()):
            if sub["mode"] != "auto":
                skipped.append({"flow": flow, "reason": "manual subscription"})
            elif flow in request.exclude:
                skipped.append({"flow": flow, "reason": "overlap: the previous run is active"})
            elif flow not in self.service.registry.flows:
                skipped.append({"flow": flow, "reason": "flow is not loaded by this process"})
            else:
                try:
                    self.service.check_input(flow, request.payload)
                except InvalidInput as exc:
                    failed.append({"flow": flow, "error": str(exc), "errors": exc.errors})
                    continue
                planned[flow] = derived_uuid7(int(ts * 1000), f"{fire_id}:{flow}")
        items = list(planned.items())
        first, last = items[:-1], (items[-1] if items else None)
        for flow, run_id in first:
            try:
                await self.service.start(flow, request.payload, trigger, run_id)
            except Exception as exc:  # one subscriber failing does not stop the others
                failed.append({"flow": flow, "error": f"{type(exc).__name__}: {exc}"})
                del planned[flow]
        record = {
            "fire_id": fire_id,
            "trigger": name,
            "type": doc["type"],
            "ts": iso(ts),
            "source": request.source,
            "payload": request.payload,
            "run_ids": list(planned.values()),
            "runs": planned,
            "skipped": skipped,
            "failed": failed,
            "replay_of": request.replay_of,
            "delivery_id": request.delivery_id,
            "scheduled_at": iso(request.scheduled_at),
        }
        if last is not None:
            # The fire record and its counters commit with the last run's start: one write,
            # and none at all when that run exists already (this fire happened before).
            flow, run_id = last
            ops = self._bookkeeping(name, record)
            if not await self.service.start_new(flow, request.payload, trigger, run_id, ops):
                earlier = await self.backend.get_record(fires_of(name), fire_id)
                if earlier is not None:
                    result: dict[str, Any] = earlier
                    return result
            return record
        earlier = await self.backend.put_record(fires_of(name), fire_id, record, only_new=True)
        if earlier is not None:
            return dict(earlier)
        ops = self._bookkeeping(name, record)[1:]
        await self.backend.commit([CommitItem(None, lambda _: Transition(records=ops))])
        return record

    @staticmethod
    def _bookkeeping(name: str, record: dict[str, Any]) -> list[RecordOp]:
        """The fire record and the trigger's counters, as record writes."""
        stats = stats_of(name)
        ops = [
            RecordOp(fires_of(name), record["fire_id"], record),
            RecordOp(stats, "fires", add=1),
            RecordOp(stats, "last_fire_at", record["ts"]),
        ]
        if record["run_ids"]:
            ops.append(RecordOp(stats, "runs", add=len(record["run_ids"])))
        if record["failed"]:
            ops.append(RecordOp(stats, "failures", add=len(record["failed"])))
        return ops

    async def replay(self, name: str, fire_id: str) -> dict[str, Any]:
        original = await self.backend.get_record(fires_of(name), fire_id)
        if original is None:
            raise NotFound(f"trigger {name!r} has no fire {fire_id!r}")
        return await self.fire(
            name, FireRequest(original["payload"], source="replay", replay_of=fire_id)
        )

    async def fires(
        self, name: str, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        await self.get(name)
        page = await self.backend.list_records(fires_of(name), limit + 1, cursor, reverse=True)
        items = [value for _, value in page[:limit]]
        return items, (page[limit - 1][0] if len(page) > limit else None)

    # -- events --------------------------------------------------------------------------------
    async def emit(
        self,
        name: str,
        payload: Any = None,
        *,
        from_run: str | None = None,
        fire_id: str | None = None,
        ts: float | None = None,
    ) -> list[str]:
        """An event: fires the event trigger ``name`` (from a run's emit only if the trigger
        listens to flow emits) and resolves the event awaits waiting for it."""
        ts = ts or now()
        run_ids: list[str] = []
        doc = self.cache.get(name) or await self.backend.get_record(TRIGGERS, name)
        if (
            doc is not None
            and doc["type"] == "event"
            and doc["status"] == "active"
            and (from_run is None or doc["options"]["from_emits"])
        ):
            source = "emit" if from_run else "event"
            request = FireRequest(payload, source, fire_id=fire_id, ts=ts)
            try:
                run_ids = (await self.fire(name, request, doc))["run_ids"]
            except InvalidInput as exc:
                if from_run is None:
                    raise
                logger.warning("emit %s from run %s did not fire: %s", name, from_run, exc)
        await self.awaits.on_event(name, payload, ts)
        return run_ids

    async def emit_due(self, timer: Timer) -> None:
        """A step's emit that someone listens to (an outbox timer), acted on once."""
        data = timer.data
        fire_id = derived_uuid7(int(data["ts"] * 1000), timer.id)
        await self.emit(
            data["name"], data["payload"], from_run=data["run_id"], fire_id=fire_id, ts=data["ts"]
        )
        await self.backend.delete_timer(timer.id)

    # -- schedules -----------------------------------------------------------------------------
