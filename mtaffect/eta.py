"""The study's ETA: seconds left, from the pace of the jobs finished so far and the workers.

Pure arithmetic on (job started / finished, time) events, so a constructed sequence of
events tests it (``tests/test_eta.py``); ``mtaffect.study.runner`` feeds it from its
executor's callbacks.

Why not ``elapsed × work left / work done``: that is the pace of all workers together, which
holds only while every worker is busy. A study's jobs wait on each other (the weak models on
their teachers), so near the end fewer jobs are ready than there are workers (the tail), and
that estimate undershoots it. Here the time left is a schedule: the jobs running finish
their estimated time, then the jobs left go, as soon as the jobs they wait on are done and
the one with the most work behind it first (as the executors hand them out), to the first
worker that frees up; the estimate is when the last one is done.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass
class StudyEta:
    """Seconds left in a study whose jobs run on ``workers`` parallel workers.

    Each job has a kind (jobs of one kind share a pace: a linear probe is no training run)
    and an amount of work (its training rows × epochs). The pace of a kind is the seconds its
    finished jobs took per unit of work; a kind with no finished job yet takes the pace of all
    finished jobs together.

    Args:
        jobs: key -> (kind, work, keys of the jobs it waits on) of every job to run, in the
            order they are handed out among equals (dependencies outside ``jobs`` are done).
        workers: how many jobs run at once.
        priority: key -> rank; a ready job with a higher rank starts first (default: order).
    """

    jobs: Mapping[Hashable, tuple[str, float, Sequence[Hashable]]]
    workers: int = 1
    priority: Mapping[Hashable, float] | None = None
    _running: dict[Hashable, float] = field(init=False, repr=False, default_factory=dict)
    _finished: set[Hashable] = field(init=False, repr=False, default_factory=set)
    _spent: dict[str, float] = field(init=False, repr=False, default_factory=dict)
    _done: dict[str, float] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.workers = max(1, int(self.workers))
        self.jobs = dict(self.jobs)
        self._order = {key: index for index, key in enumerate(self.jobs)}

    def started(self, key: Hashable, now: float, kind: str | None = None, work: float = 0.0) -> None:
        """Job ``key`` starts at ``now`` (a job the plan did not list joins it with ``kind`` and ``work``)."""
        if key not in self.jobs:
            self.jobs[key] = (kind or "unknown", float(work), ())
            self._order[key] = len(self._order)
        self._running[key] = now

    def finished(self, key: Hashable, now: float) -> None:
        """Job ``key`` is recorded at ``now`` (one that was not started is ignored)."""
        began = self._running.pop(key, None)
        if began is None:
            return
        kind, work, _ = self.jobs[key]
        self._spent[kind] = self._spent.get(kind, 0.0) + (now - began)
        self._done[kind] = self._done.get(kind, 0.0) + work
        self._finished.add(key)

    def pace(self, kind: str) -> float | None:
        """Seconds per unit of work of ``kind``; ``None`` before any job has finished."""
        if self._done.get(kind):
            return self._spent[kind] / self._done[kind]
        done = sum(self._done.values())
        return sum(self._spent.values()) / done if done else None

    def estimate(self, key: Hashable) -> float:
        """Seconds job ``key`` takes at the paces seen so far."""
        kind, work, _ = self.jobs[key]
        return work * (self.pace(kind) or 0.0)

    def remaining(self, now: float) -> float | None:
        """Seconds left at ``now``: ``None`` until a job has finished (no pace to go by)."""
        if not self._done:
            return None
        # (finish time, key) of the jobs running, credited with the time they have run.
        events = [(max(0.0, self.estimate(key) - (now - began)), self._order[key], key)
                  for key, began in self._running.items()]
        heapq.heapify(events)
        free = self.workers - len(events)
        left = {key for key in self.jobs if key not in self._finished and key not in self._running}
        waiting = {key: {d for d in self.jobs[key][2] if d in left or d in self._running} for key in left}
        rank = self.priority or {}
        clock = end = 0.0
        while left or events:
            ready = sorted((key for key in left if not waiting[key]), key=lambda k: (-rank.get(k, 0.0), self._order[k]))
            for key in ready[: max(0, free)]:
                left.discard(key)
                heapq.heappush(events, (clock + self.estimate(key), self._order[key], key))
                free -= 1
            if not events:  # nothing can run: a dependency outside the plan never finishes
                break
            clock, _, done = heapq.heappop(events)
            end, free = max(end, clock), free + 1
            for key in left:
                waiting[key].discard(done)
        return end
