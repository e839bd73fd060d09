"""The Redis key layout of flowtide. Every key starts with the prefix (default ``flowtide:``,
``?prefix=`` in the URL), written ``P`` below. docs/redis.md has the same table for users.

=============================  ===========  ==================================================
Key                            Type         Contents
=============================  ===========  ==================================================
``P job:{id}``                 hash         a job: queue, name, run_id, flow, state, attempt,
                                            reclaims, priority, run_at, created_at,
                                            finished_at, key, worker, lease_until, input,
                                            result, error (JSON), ord, mem (its ready member)
``P seq``                      string       counter giving each job its ``ord`` (insertion order)
``P queues``                   set          every queue that ever had a job
``P paused``                   set          paused queues
``P q:{queue}:ready``          sorted set   waiting jobs, all scores 0; the member
                                            ``{10 digits 2^31-1-priority}{17 digits run_at in
                                            µs}{12 digits ord}{job id}`` sorts in claim order
``P q:{queue}:all``            sorted set   every job of the queue by ord (listing)
``P q:{queue}:counts``         hash         job count per state
``P q:{queue}:{state}``        sorted set   completed / failed / canceled jobs by finish time
                                            (retention)
``P q:{queue}:done:{minute}``  string       jobs completed in that minute (epoch s // 60);
                                            expires after 3 minutes (throughput)
``P delayed``                  sorted set   delayed jobs by run_at (every queue)
``P active``                   sorted set   leased jobs by lease expiry (every queue)
``P key:{queue}:{key}``        string       the job id holding a dedupe key
``P rjobs:{run_id}``           set          the jobs of a run
``P run:{run_id}``             hash         v (version), status, flow, flowj (flow as JSON),
                                            seq (last event seq), rec (the record as JSON)
``P ev:{run_id}``              list         the run's events as JSON, index = seq - 1
``P runs``                     sorted set   every run id (scores 0: lexical = time order)
``P runs:f:{flow}``            sorted set   run ids of one flow
``P runs:s:{status}``          sorted set   run ids with one status
``P runs:ended``               sorted set   ended runs by completion time (retention)
``P gid``                      string       counter of the lifecycle feed
``P feed``                     stream       lifecycle events, entry id ``{gid}-1``, field ``e``
``P st:{scope}``               hash         state values (JSON) of a run or function job
``P stx:{scope}``              hash         expiry times of the state values that have one
``P timers``                   sorted set   timers by due time
``P timer``                    hash         timer id -> JSON ``[kind, data]``
``P rec:{collection}``         hash         records: key -> value (JSON)
``P recx:{collection}``        sorted set   the collection's keys, all scores 0: lexical
                                            order (listing, ZRANGEBYLEX)
``P rece:{collection}``        sorted set   expiry time of each record that has one (expired
                                            records are removed when met, by every record
                                            operation on the collection and by the sweep)
``P reccols``                  set          collections that hold records
``P wake``                     channel      published after every change (wake-ups)
``P sweep``                    string       short-lived lock: one process sweeps at a time
=============================  ===========  ==================================================
"""

from __future__ import annotations

__all__ = ["DEFAULT_PREFIX", "Keys"]

DEFAULT_PREFIX = "flowtide:"


class Keys:
    """Names of the keys Python reads directly (scripts build theirs from the prefix)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.paused = f"{prefix}paused"
        self.queues = f"{prefix}queues"
        self.feed = f"{prefix}feed"
        self.wake = f"{prefix}wake"
        self.sweep = f"{prefix}sweep"
        self.timers = f"{prefix}timers"
        self.timer = f"{prefix}timer"

    def job(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    def run(self, run_id: str) -> str:
        return f"{self.prefix}run:{run_id}"

    def events(self, run_id: str) -> str:
        return f"{self.prefix}ev:{run_id}"

    def counts(self, queue: str) -> str:
        return f"{self.prefix}q:{queue}:counts"

    def done(self, queue: str, minute: int) -> str:
        return f"{self.prefix}q:{queue}:done:{minute}"

    def state(self, scope: str) -> str:
        return f"{self.prefix}st:{scope}"

    def state_expiry(self, scope: str) -> str:
        return f"{self.prefix}stx:{scope}"
