"""The study's ETA: seconds left, from the pace of the models finished so far and the workers.

Pure arithmetic on (seed, model started / finished, time) events, so a constructed sequence
of events tests it (``tests/test_eta.py``); ``mtaffect.study`` feeds it from its progress
callbacks.

Why not ``elapsed × work left / work done``: that is the pace of all workers together, which
holds only while every worker is busy. When seeds outnumber workers, the last seeds run on
fewer workers than the first (the tail), and that estimate undershoots it. Here each seed
runs on one worker at a time, so the time left is a schedule: every running seed finishes its
own models, the seeds not started yet go, in order, to the first worker that frees up (as a
process pool hands them out), and the estimate is when the last worker is done.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass
class _Lane:
    """One seed's progress: what is left of it by kind, the model in flight, its last event."""

    left: dict[str, float]
    last: float | None = None  # time of its first announce, then of each record
    flight: tuple[str, float] | None = None  # (kind, work) of the model being trained


@dataclass
class StudyEta:
    """Seconds left in a study whose seeds run on ``workers`` parallel workers.

    Each model has a kind (models of one kind share a pace: a linear probe is no training run)
    and an amount of work (its training rows × epochs). The pace of a kind is the seconds its
    finished models took per unit of work, a model's time running from its seed's previous
    event to its record (so the weak labelling before a model counts as part of it); a kind
    with no finished model yet takes the pace of all finished models together.

    Args:
        work: seed -> (kind, work) of each model it will train, in the order seeds are handed
            to workers (the config's order).
        workers: how many seeds run at once.
    """

    work: Mapping[int, Sequence[tuple[str, float]]]
    workers: int = 1
    _lanes: dict[int, _Lane] = field(init=False, repr=False)
    _spent: dict[str, float] = field(init=False, repr=False, default_factory=dict)
    _done: dict[str, float] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.workers = max(1, int(self.workers))
        self._lanes = {}
        for seed, models in self.work.items():
            left: dict[str, float] = {}
            for kind, amount in models:
                left[kind] = left.get(kind, 0.0) + float(amount)
            self._lanes[seed] = _Lane(left)

    def started(self, seed: int, kind: str, work: float, now: float) -> None:
        """A model of ``seed`` starts (announced) at ``now``."""
        lane = self._lanes.setdefault(seed, _Lane({}))
        if lane.last is None:
            lane.last = now  # the seed's start: what came before (loading corpora) is not a model's
        if lane.left.get(kind, 0.0) < work:  # a model the plan did not list: the plan grows
            lane.left[kind] = float(work)
        lane.flight = (kind, float(work))

    def finished(self, seed: int, now: float) -> None:
        """The model in flight of ``seed`` is recorded at ``now`` (a record with none in flight is ignored)."""
        lane = self._lanes.get(seed)
        if lane is None or lane.flight is None or lane.last is None:
            return
        kind, work = lane.flight
        self._spent[kind] = self._spent.get(kind, 0.0) + (now - lane.last)
        self._done[kind] = self._done.get(kind, 0.0) + work
        lane.left[kind] = max(0.0, lane.left.get(kind, 0.0) - work)
        lane.flight, lane.last = None, now

    def pace(self, kind: str) -> float | None:
        """Seconds per unit of work of ``kind``; ``None`` before any model has finished."""
        if self._done.get(kind):
            return self._spent[kind] / self._done[kind]
        done = sum(self._done.values())
        return sum(self._spent.values()) / done if done else None

    def remaining(self, now: float) -> float | None:
        """Seconds left at ``now``: ``None`` until a model has finished (no pace to go by)."""
        if not self._done:
            return None
        running: list[float] = []
        queued: list[float] = []
        for lane in self._lanes.values():
            seconds = sum(amount * (self.pace(kind) or 0.0) for kind, amount in lane.left.items())
            if lane.last is None:
                if seconds > 0:
                    queued.append(seconds)
                continue
            if lane.flight is not None:  # credit the model in flight with the time it has run, up to its estimate
                kind, work = lane.flight
                seconds -= min(max(0.0, now - lane.last), work * (self.pace(kind) or 0.0))
            if seconds > 0:
                running.append(seconds)
        free = [0.0] * max(0, self.workers - len(running))
        lanes = running + free
        heapq.heapify(lanes)
        for seconds in queued:
            heapq.heappush(lanes, heapq.heappop(lanes) + seconds)
        return max(lanes, default=0.0)
