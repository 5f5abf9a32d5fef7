"""The study's ETA converges to the true time left, the tail included (constructed events, no training)."""

from __future__ import annotations

import heapq
import random

import pytest

from mtaffect.eta import StudyEta

#: One seed of a small study: probes, single-task models, the control, weak candidates (kind, work).
SEED = [("linear-probe", 40), ("linear-probe", 30), ("single-task", 400), ("single-task", 300),
        ("multi-task", 700), ("multi-task-weak", 700), ("multi-task-weak", 700)]
#: Seconds per unit of work of each kind (a probe is far faster per row than training).
PACE = {"linear-probe": 0.001, "single-task": 0.01, "multi-task": 0.012, "multi-task-weak": 0.012}


def simulate(seeds, workers, pace=PACE, jitter=0.0, gap=0.0, rng=None):
    """Events of a pool handing seeds, in order, to the first free worker: (time, what, seed, kind, work).

    Each model takes work x pace (x a random factor within ±jitter); ``gap`` seconds (the weak
    labelling) come before each weak candidate. Returns the events and the study's end.
    """
    free = [(0.0, worker) for worker in range(workers)]
    events = []
    for seed, models in seeds.items():
        now, worker = heapq.heappop(free)
        for kind, work in models:
            now += gap if kind == "multi-task-weak" else 0.0
            events.append((now, 1, seed, kind, work))  # announce
            factor = 1.0 + (rng.uniform(-jitter, jitter) if jitter else 0.0)
            now += work * pace[kind] * factor
            events.append((now, 0, seed, kind, work))  # record (sorted before an announce at the same time)
        heapq.heappush(free, (now, worker))
    events.sort()
    return events, max(t for t, *_ in events)


def estimates(seeds, workers, events, naive=False):
    """(time, estimate) at each announce, as the study computes it (or the old elapsed x left/done)."""
    clock = StudyEta(seeds, workers)
    total = sum(work for models in seeds.values() for _, work in models)
    done, out = 0.0, []
    for now, what, seed, kind, work in events:
        if what == 0:
            clock.finished(seed, now)
            done += work
            continue
        clock.started(seed, kind, work, now)
        if naive:
            out.append((now, now * (total - done) / done if done else None))
        else:
            out.append((now, clock.remaining(now)))
    return out


@pytest.mark.parametrize("n_seeds, workers", [(5, 2), (3, 2), (4, 1), (2, 2), (7, 3)])
def test_exact_once_every_kind_has_a_finished_model(n_seeds, workers):
    seeds = {seed: list(SEED) for seed in range(n_seeds)}
    events, end = simulate(seeds, workers)
    got = estimates(seeds, workers, events)
    assert got[0][1] is None  # nothing finished: no pace to go by
    kinds_done: set[str] = set()
    checked = 0
    announces = iter(got)
    for _, what, _, kind, _ in events:
        if what == 0:
            kinds_done.add(kind)
            continue
        at, estimate = next(announces)
        if kinds_done == set(PACE):
            assert estimate == pytest.approx(end - at, abs=1e-6), (at, estimate, end - at)
            checked += 1
    assert checked >= 2  # not vacuous


def test_the_old_estimate_undershoots_the_tail_and_this_one_does_not():
    seeds = {seed: list(SEED) for seed in range(5)}  # 5 seeds on 2 workers: the last one runs alone
    events, end = simulate(seeds, 2)
    ours = dict(estimates(seeds, 2, events))
    naive = dict(estimates(seeds, 2, events, naive=True))
    # Halfway through (every worker busy for a while, every kind seen), before the tail.
    at = min(t for t in ours if t >= end / 2)
    assert ours[at] == pytest.approx(end - at, rel=1e-6)
    assert naive[at] < 0.8 * (end - at)  # the pace of 2 workers, applied to a tail that has 1


def test_converges_with_noisy_paces_and_weak_labelling_gaps():
    rng = random.Random(0)
    seeds = {seed: list(SEED) for seed in range(6)}
    events, end = simulate(seeds, 4, jitter=0.3, gap=2.0, rng=rng)
    got = [(at, estimate) for at, estimate in estimates(seeds, 4, events) if estimate is not None]
    errors = [abs(estimate - (end - at)) / end for at, estimate in got]
    first, last = errors[: len(errors) // 3], errors[-len(errors) // 3:]
    assert max(last) < 0.1  # within 10% of the study's length in the last third
    assert sum(last) / len(last) < sum(first) / len(first)  # and better than at the start
    assert got[-1][1] == pytest.approx(end - got[-1][0], abs=0.1 * (end - got[-1][0]) + 1.0)


def test_unplanned_models_and_records_without_a_model_do_not_break_it():
    clock = StudyEta({0: [("single-task", 10.0)]}, workers=1)
    clock.finished(0, 1.0)  # a record with no model in flight (the chosen candidate's copy)
    assert clock.remaining(1.0) is None
    clock.started(0, "single-task", 10.0, 0.0)
    clock.finished(0, 5.0)
    assert clock.pace("single-task") == pytest.approx(0.5) and clock.remaining(5.0) == 0.0
    clock.started(0, "multi-task", 20.0, 5.0)  # not in the plan: it joins it
    assert clock.remaining(6.0) == pytest.approx(20 * 0.5 - 1.0)  # pooled pace, 1 s already run
    assert clock.remaining(100.0) == 0.0  # overdue: not negative
