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
import hashlib
import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pydantic

from flowtide._util.clock import iso, now
from flowtide._util.cron import check_cron, next_cron, next_interval, zone
from flowtide._util.durations import parse_duration
from flowtide._util.ids import derived_uuid7, uuid7
from flowtide._util.jsonutil import dumps
from flowtide.backends.base import CommitItem, RecordOp, Timer, Transition
from flowtide.definitions.triggers import Trigger
from flowtide.engine.awaits import AwaitService
from flowtide.engine.runs import InvalidInput, NotFound, RunService, validation_errors

__all__ = [
    "MISSED_AFTER",
    "Conflict",
    "Paused",
    "TriggerError",
    "TriggerService",
    "code_triggers",
    "normalize",
]

logger = logging.getLogger("flowtide.triggers")
TRIGGERS = "triggers"
SCHEDULES = "schedules"
TYPES = ("event", "webhook", "schedule", "manual")
MISSED_AFTER = 30.0  # an occurrence this late counts as missed (downtime), not merely delayed
SYNC_INTERVAL = 1.0  # how often a process re-reads the registry (changes spread within 2 s)


class TriggerError(ValueError):
    """An invalid trigger definition (HTTP 400)."""


class Paused(Exception):
    """The trigger is paused (HTTP 409)."""


class Conflict(Exception):
    """The trigger exists already, or has the wrong type for the operation (HTTP 409)."""


def _stats(name: str) -> str:
    return f"trigger_stats:{name}"


def fires_of(name: str) -> str:
    return f"fires:{name}"


def schedule_timer_id(name: str) -> str:
    return f"schedule:{name}"


# -- definitions ----------------------------------------------------------------------------------


def _schema_json(schema: Any) -> Any:
    if schema is None or isinstance(schema, dict):
        return schema
    return pydantic.TypeAdapter(schema).json_schema()


def _auth_json(auth: Any) -> dict[str, Any] | None:
    if auth is None:
        return None
    if isinstance(auth, dict):
        return auth
    return {
        "kind": auth.kind,
        "secret_env": auth.secret_env,
        "header": auth.header,
        "algorithm": auth.algorithm,
        "encoding": auth.encoding,
        "prefix": auth.prefix,
    }


def normalize(doc: dict[str, Any]) -> dict[str, Any]:
    """Check a trigger definition (from code or the API) and return its stored shape."""
    name, kind = doc.get("name"), doc.get("type")
    if not isinstance(name, str) or not name or "/" in name:
        raise TriggerError("a trigger needs a name without '/'")
    if kind not in TYPES:
        raise TriggerError(f"trigger type must be one of {', '.join(TYPES)}, got {kind!r}")
    options = dict(doc.get("options") or {})
    if kind == "schedule":
        cron, every = options.get("cron"), options.get("every")
        if (cron is None) == (every is None):
            raise TriggerError("a schedule needs exactly one of cron or every")
        tz = options.setdefault("tz", "UTC")
        try:
            zone(tz)
            if cron is not None:
                check_cron(cron, tz)
            else:
                options["every"] = parse_duration(every)  # type: ignore[arg-type]
                if options["every"] <= 0:
                    raise ValueError("every must be positive")
        except ValueError as exc:
            raise TriggerError(str(exc)) from None
        options.setdefault("overlap", "skip")
        options.setdefault("catch_up", "none")
        if options["overlap"] not in ("skip", "queue", "replace"):
            raise TriggerError("overlap must be skip, queue or replace")
        if options["catch_up"] not in ("none", "once"):
            raise TriggerError("catch_up must be none or once")
    if kind == "webhook":
        options["method"] = str(options.get("method") or "POST").upper()
        options["auth"] = _check_auth(_auth_json(options.get("auth")))
        _check_idempotency(options.get("idempotency"))
        if options.get("rate_limit"):
            _rate(options["rate_limit"])
        options.setdefault("idempotency", None)
        options.setdefault("idempotency_window", 86400.0)
    if kind == "event":
        options["from_emits"] = bool(options.get("from_emits", False))
    subscriptions = {}
    for flow, sub in (doc.get("subscriptions") or {}).items():
        mode = sub.get("mode", "auto") if isinstance(sub, dict) else sub
        if mode not in ("auto", "manual"):
            raise TriggerError(f"subscription mode must be auto or manual, got {mode!r}")
        subscriptions[flow] = {"mode": mode}
    return {
        "name": name,
        "type": kind,
        "description": doc.get("description") or "",
        "options": options,
        "schema": _schema_json(doc.get("schema")),
        "subscriptions": subscriptions,
        "status": "paused" if doc.get("status") == "paused" else "active",
    }


_AUTH_KEYS = {"kind", "secret_env", "header", "algorithm", "encoding", "prefix"}


def _check_auth(auth: dict[str, Any] | None) -> dict[str, Any] | None:
    from flowtide.engine.webhook_auth import KINDS

    if auth is None:
        return None
    if not set(auth) <= _AUTH_KEYS:
        raise TriggerError(f"unknown auth keys: {', '.join(sorted(set(auth) - _AUTH_KEYS))}")
    if auth.get("kind") not in KINDS:
        raise TriggerError(f"auth kind must be one of {', '.join(KINDS)}")
    if not auth.get("secret_env"):
        raise TriggerError("auth needs secret_env: the environment variable holding the secret")
    if auth.get("encoding", "hex") not in ("hex", "base64"):
        raise TriggerError("auth encoding must be hex or base64")
    return auth


def _check_idempotency(spec: Any) -> None:
    if spec is None:
        return
    if not isinstance(spec, str) or not spec.startswith(("header:", "body:")) or spec[-1] == ":":
        raise TriggerError("idempotency must be 'header:<Name>' or 'body:<dot.path>'")


def _definition_hash(
    doc: dict[str, Any], keys: tuple[str, ...] = ("type", "options", "schema", "subscriptions")
) -> str:
    return hashlib.sha256(dumps({k: doc.get(k) for k in keys})).hexdigest()[:16]


def code_triggers(service: RunService) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The triggers declared on entry steps, merged by name; and their pydantic schemas."""
    docs: dict[str, dict[str, Any]] = {}
    models: dict[str, Any] = {}
    for graph in service.registry.flows.values():
        for t in graph.entry.triggers:
            name = t.resolved_name(graph.name)
            doc = docs.get(name)
            if doc is None:
                doc = docs[name] = _from_declaration(t, name)
                if t.schema is not None:
                    models[name] = t.schema
            doc["subscriptions"][graph.name] = {"mode": t.mode}
    return {n: normalize(d) for n, d in docs.items()}, models


def _from_declaration(t: Trigger, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "type": t.type,
        "options": dict(t.options),
        "schema": t.schema,
        "subscriptions": {},
    }


def _rate(spec: str) -> tuple[int, float]:
    """``"100/minute"`` -> (100, 60.0)."""
    units = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
    try:
        count, per = spec.split("/")
        per = per.strip().rstrip("s")
        window = units[per] if per in units else parse_duration(per)
        return int(count), window
    except (ValueError, KeyError):
        raise TriggerError(
            f"invalid rate_limit {spec!r}: use 'N/second|minute|hour|day' or 'N/30s'"
        ) from None


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
        self._awaited = {
            s.await_before.options["name"] if s.await_before is not None else None
            for g in service.registry.flows.values()
            for s in g.steps.values()
            if s.await_before is not None and s.await_before.type == "event"
        } | {
            s.await_after.options["name"]
            for g in service.registry.flows.values()
            for s in g.steps.values()
            if s.await_after is not None and s.await_after.type == "event"
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
        counters = dict(await self.backend.list_records(_stats(name)))
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
            code_hash = _definition_hash(doc)
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
        doc["def_hash"] = _definition_hash(doc, ("type", "options"))  # when a schedule fires
        ops = [RecordOp(TRIGGERS, doc["name"], doc)]
        t = Transition(records=ops)
        changed = previous is None or previous.get("def_hash") != doc["def_hash"]
        status_changed = previous is not None and previous.get("status") != doc["status"]
        if doc["type"] == "schedule" and (changed or status_changed):
            if doc["status"] == "active":
                t.timers.append(self._next_timer(doc, now()))
            else:
                t.cancel_timers.append(schedule_timer_id(doc["name"]))
        elif previous is not None and previous["type"] == "schedule" and doc["type"] != "schedule":
            t.cancel_timers.append(schedule_timer_id(doc["name"]))
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
            t.cancel_timers.append(schedule_timer_id(name))
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
        original one if this fire id was recorded before)."""
        doc = doc or await self.get(name)
        if request.check_status and doc["status"] != "active":
            raise Paused(f"trigger {name!r} is paused")
        self.validate(doc, request.payload)
        ts = request.ts or now()
        fire_id = request.fire_id or uuid7()
        trigger = {"name": name, "type": doc["type"], "data": request.payload, "fire_id": fire_id}
        runs: dict[str, str] = {}
        skipped: list[dict[str, str]] = []
        failed: list[dict[str, Any]] = []
        for flow, sub in sorted(doc["subscriptions"].items()):
            if sub["mode"] != "auto":
                skipped.append({"flow": flow, "reason": "manual subscription"})
            elif flow in request.exclude:
                skipped.append({"flow": flow, "reason": "overlap: the previous run is active"})
            elif flow not in self.service.registry.flows:
                skipped.append({"flow": flow, "reason": "flow is not loaded by this process"})
            else:
                run_id = derived_uuid7(int(ts * 1000), f"{fire_id}:{flow}")
                try:
                    runs[flow] = await self.service.start(flow, request.payload, trigger, run_id)
                except InvalidInput as exc:
                    failed.append({"flow": flow, "error": str(exc), "errors": exc.errors})
                except Exception as exc:
                    failed.append({"flow": flow, "error": f"{type(exc).__name__}: {exc}"})
        record = {
            "fire_id": fire_id,
            "trigger": name,
            "type": doc["type"],
            "ts": iso(ts),
            "source": request.source,
            "payload": request.payload,
            "run_ids": list(runs.values()),
            "runs": runs,
            "skipped": skipped,
            "failed": failed,
            "replay_of": request.replay_of,
            "delivery_id": request.delivery_id,
            "scheduled_at": iso(request.scheduled_at),
        }
        earlier = await self.backend.put_record(fires_of(name), fire_id, record, only_new=True)
        if earlier is not None:
            result: dict[str, Any] = earlier
            return result
        await self._count(name, record)
        return record

    async def _count(self, name: str, record: dict[str, Any]) -> None:
        # Independent writes: issued together (one round trip's wait instead of four on
        # Redis/PostgreSQL, where a webhook's answer waits for them).
        stats = _stats(name)
        writes = [
            self.backend.add_to_counter(stats, "fires"),
            self.backend.put_record(stats, "last_fire_at", record["ts"]),
        ]
        if record["run_ids"]:
            writes.append(self.backend.add_to_counter(stats, "runs", len(record["run_ids"])))
        if record["failed"]:
            writes.append(self.backend.add_to_counter(stats, "failures", len(record["failed"])))
        await asyncio.gather(*writes)

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
    def _next_at(self, doc: dict[str, Any], after: float) -> float:
        opts = doc["options"]
        if opts.get("cron"):
            moment = datetime.fromtimestamp(after, UTC)
            return next_cron(opts["cron"], opts["tz"], moment).timestamp()
        anchor = _anchor(doc)
        return next_interval(float(opts["every"]), anchor, after)

    def _next_timer(self, doc: dict[str, Any], after: float) -> Timer:
        at = self._next_at(doc, after)
        data = {"name": doc["name"], "at": at, "def_hash": doc["def_hash"]}
        return Timer(schedule_timer_id(doc["name"]), at, "schedule", data)

    async def schedule_due(self, timer: Timer) -> None:
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
        nxt = self._next_at(doc, at + 0.001)  # strictly later, whatever the float rounding
        if nxt < ts - MISSED_AFTER:
            nxt = self._next_at(doc, ts)  # after downtime: on from the next future occurrence
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
                    await self.service.cancel(run_id, f"replaced by schedule {name}")
                except Exception:
                    pass  # it ended meanwhile
        elif busy:
            exclude = frozenset(flow for _, flow in busy)
        fire_id = derived_uuid7(int(at * 1000), f"schedule:{name}:{at}")
        request = FireRequest(
            {"scheduled_at": iso(at)}, "schedule", fire_id, at, exclude=exclude, scheduled_at=at
        )
        record = await self.fire(name, request, doc)
        if exclude:
            await self.backend.add_to_counter(_stats(name), "skipped")
        return record

    def _update_state(
        self,
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

    async def schedules(self) -> list[dict[str, Any]]:
        out = []
        for doc in await self.all():
            if doc["type"] != "schedule":
                continue
            state = await self.backend.get_record(SCHEDULES, doc["name"]) or {}
            next_at = state.get("next_at")
            if doc["status"] == "active" and next_at is None:
                next_at = iso(self._next_at(doc, now()))
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
                    "next_at": next_at if doc["status"] == "active" else None,
                    "last_at": state.get("last_at"),
                    "missed": state.get("missed", 0),
                    "stats": await self.stats(doc["name"]),
                }
            )
        return out


def _anchor(doc: dict[str, Any]) -> float:
    stamp = doc.get("updated_at") or doc.get("created_at")
    if not stamp:
        return 0.0
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def retry_after(window: float, ts: float) -> int:
    return max(1, math.ceil((math.floor(ts / window) + 1) * window - ts))
