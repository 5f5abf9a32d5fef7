"""Executors: who runs a study's jobs. The driver (``mtaffect.study.runner``) alone records.

Every executor gets the same things: the jobs left to train (in plan order), a way to read
the model of a job finished in an earlier run (``teachers``), and two callbacks,
``started(job)`` and ``finished(job, result)``; ``finished`` is where the driver appends the
job's records to ``results.jsonl`` and keeps its model, and it runs in the driver only. A
job starts once the jobs it depends on have finished; among ready jobs, the one with the
longest chain of work behind it goes first (``priority``).

* ``SerialExecutor``: one job after another in this process (``workers: 1``), plan order.
* ``LocalExecutor``: a pool of processes on this machine (``workers`` > 1). Ctrl-C stops
  every worker and leaves the study resumable.
* ``RayExecutor``: each job a Ray Core task with the CPUs/GPUs it asks for
  (``resources_per_job``); the models a job reads are Ray object references to the outputs
  of the tasks that trained them, so Ray starts it when they exist and rebuilds them if a
  node that held them is lost; a task lost with its node is retried (``max_retries``).
  Ray is imported only here, and only when this executor runs.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from mtaffect.study.config import StudyConfig, job_resources
from mtaffect.study.job import JobResult, run_job
from mtaffect.study.plan import Job, JobKey

logger = logging.getLogger(__name__)

Started = Callable[[Job], None]
Finished = Callable[[Job, JobResult], None]
Teachers = Callable[[JobKey], bytes]


class Executor(Protocol):
    """Runs jobs and reports each to the driver (see the module docstring)."""

    #: Jobs it runs at once (what the ETA schedules on).
    slots: int

    def run(self, todo: Sequence[Job], config: StudyConfig, teachers: Teachers, started: Started,
            finished: Finished, priority: Mapping[JobKey, float]) -> None: ...


class _Ready:
    """Which of ``todo`` may start: every dependency that is itself to do has finished."""

    def __init__(self, todo: Sequence[Job], priority: Mapping[JobKey, float]) -> None:
        keys = {job.key for job in todo}
        self.order = {job.key: index for index, job in enumerate(todo)}
        self.priority = priority
        self.waiting = {job.key: {d for d in job.deps if d in keys} for job in todo}
        self.jobs = {job.key: job for job in todo}
        self.dependents: dict[JobKey, list[JobKey]] = {}
        for job in todo:
            for dep in self.waiting[job.key]:
                self.dependents.setdefault(dep, []).append(job.key)

    def pop(self) -> Job | None:
        """The ready job with the most work behind it (plan order among equals), or ``None``."""
        ready = [key for key, deps in self.waiting.items() if not deps]
        if not ready:
            return None
        key = min(ready, key=lambda k: (-self.priority.get(k, 0.0), self.order[k]))
        del self.waiting[key]
        return self.jobs[key]

    def done(self, job: Job) -> None:
        for key in self.dependents.get(job.key, []):
            self.waiting[key].discard(job.key)

    def __bool__(self) -> bool:
        return bool(self.waiting)


class SerialExecutor:
    """Every job in this process, in plan order (the order the progress lines have always had)."""

    slots = 1

    def run(self, todo: Sequence[Job], config: StudyConfig, teachers: Teachers, started: Started,
            finished: Finished, priority: Mapping[JobKey, float]) -> None:
        for job in todo:
            started(job)
            finished(job, run_job(job, config, {dep: teachers(dep) for dep in job.deps}))


class LocalExecutor:
    """Jobs in a pool of ``workers`` processes on this machine (``spawn``: forking a process
    that already runs torch threads can hang).

    At most ``workers`` jobs are handed out at once, so a job starts when it is announced and
    the driver, not the pool's queue, decides which job goes next. Workers leave Ctrl-C to the
    driver, which stops them all (and says how to resume) instead of every worker printing
    its own traceback; records reach ``results.jsonl`` through the driver only.

    Stopping is the pool's own shutdown, so that every worker exits normally and releases its
    semaphores (a killed one leaves them to the resource tracker, which warns at exit):
    SIGTERM ends the running jobs (``_run_job_in_worker``), the pool's sentinels end the
    workers. Only a worker still alive after 30 s is killed.
    """

    def __init__(self, workers: int) -> None:
        self.slots = max(1, int(workers))

    def run(self, todo: Sequence[Job], config: StudyConfig, teachers: Teachers, started: Started,
            finished: Finished, priority: Mapping[JobKey, float]) -> None:
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
        from multiprocessing import resource_tracker

        ready, flight, pool = _Ready(todo, priority), {}, None
        try:
            # The resource tracker starts first: starting, it blocks SIGINT for itself and unblocks
            # it after, which would unblock it for the workers too (see _sigint_held).
            resource_tracker.ensure_running()
            with _sigint_held():
                pool = ProcessPoolExecutor(self.slots, mp_context=multiprocessing.get_context("spawn"),
                                           initializer=_start_worker)
            while ready or flight:
                while len(flight) < self.slots and (job := ready.pop()) is not None:
                    started(job)
                    flight[pool.submit(_run_job_in_worker, job, config, {d: teachers(d) for d in job.deps})] = job
                done, _ = wait(list(flight), timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    job = flight.pop(future)
                    finished(job, future.result())
                    ready.done(job)
        except BaseException:
            if pool is not None:
                _stop(pool)
            for future, job in flight.items():  # models that finished just before the interrupt
                if future.done() and not future.cancelled() and future.exception() is None:
                    try:
                        finished(job, future.result())
                    except KeyboardInterrupt:
                        continue  # recorded; the interrupt is being handled already
            raise
        pool.shutdown()


def _stop(pool: Any) -> None:
    """End every worker of ``pool`` the pool's own way (SIGTERM to running jobs; see ``LocalExecutor``)."""
    from multiprocessing import connection

    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()  # SIGTERM: SystemExit in a running job, a noted stop in an idle worker
    # Its sentinel says whether a worker ended: `is_alive()` can be wrong here, the pool's
    # own thread may reap the process first (its `waitpid` then fails in this thread).
    deadline = time.time() + 30
    for process in processes:
        if not connection.wait([process.sentinel], timeout=max(0.0, deadline - time.time())):
            logger.warning("A worker did not stop within 30 s; killing it.")
            process.kill()
            process.join(timeout=5)


#: Set in a worker process once the driver has asked it to stop (SIGTERM).
_STOPPING = False


def _run_job_in_worker(job: Job, config: StudyConfig, teachers: Mapping[JobKey, bytes]) -> JobResult:
    """Entry point of a worker process: one job.

    SIGTERM from the driver ends the job as ``SystemExit``, which the pool sends back as this
    call's outcome; the worker then declines jobs still queued for it (they raise
    ``SystemExit`` at once) until the pool's shutdown sentinel lets it exit normally, running
    its finalizers (see ``_start_worker``).
    """
    global _STOPPING
    guard = InterruptGuard(signal.SIGTERM, SystemExit)
    try:
        with guard:
            if _STOPPING:  # asked to stop before this job started (checked with the guard in place: no gap)
                raise SystemExit
            return run_job(job, config, teachers)
    finally:
        _STOPPING = _STOPPING or guard.hit


def _note_stop(signum: int, frame: Any) -> None:
    """SIGTERM in a worker between jobs: noted, so the next job is declined (the worker is idle)."""
    global _STOPPING
    _STOPPING = True


def _start_worker() -> None:
    """Initializer of a worker process: Ctrl-C is the driver's, SIGTERM a request to stop.

    * SIGINT is ignored (it is also blocked from the worker's start, see ``_sigint_held``):
      the driver stops every worker and prints the one line that says how to resume.
    * SIGTERM between jobs only notes the stop. Raising there (in the pool's wait for work)
      would end the process outside the pool's protocol, which the pool reads as a crash;
      ending it by default would skip the finalizers and leave named semaphores to the
      resource tracker's "leaked semaphore" warning. During a job, ``_run_job_in_worker``'s
      guard turns it into ``SystemExit``.
    * tqdm's write lock is a thread lock: its default, a ``multiprocessing`` lock, is a named
      semaphore in a spawned process (shared with no one: each worker would make its own).
    """
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _note_stop)
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with datasets and transformers
        return
    tqdm.set_lock(threading.RLock())


class InterruptGuard:
    """Ctrl-C that cannot be lost: noted as well as raised, and checked again between jobs.

    Python swallows an exception raised inside ``__del__`` (printing "Exception ignored"
    with a traceback); a SIGINT landing there would neither stop the study nor be silent.
    The handler notes it, the unraisable hook drops that one message, and the next check
    raises it again.
    """

    def __init__(self, signum: int = signal.SIGINT, exception: type[BaseException] = KeyboardInterrupt) -> None:
        self.signum, self.exception = signum, exception
        self.hit = False
        self._previous: Any = None
        self._previous_hook: Any = None

    def __enter__(self) -> InterruptGuard:
        import sys
        import threading

        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(self.signum, self._handler)
        self._previous_hook = sys.unraisablehook
        sys.unraisablehook = self._unraisable
        return self

    def _handler(self, signum: int, frame: Any) -> None:
        self.hit = True
        raise self.exception

    def _unraisable(self, unraisable: Any) -> None:
        if self.hit and unraisable.exc_type is not None and issubclass(unraisable.exc_type, self.exception):
            return  # noted by the handler; raised again at the next check
        self._previous_hook(unraisable)

    def check(self) -> None:
        if self.hit:
            raise self.exception

    def __exit__(self, *exc: Any) -> None:
        import sys

        if self._previous is not None:
            signal.signal(self.signum, self._previous)
        if self._previous_hook is not None:
            sys.unraisablehook = self._previous_hook


@contextmanager
def _sigint_held() -> Iterator[None]:
    """A Ctrl-C during the block is held back to its end, and the processes started in it ignore it.

    SIGINT is blocked in this thread, and a spawned process inherits the mask: the workers
    cannot take a Ctrl-C before they ignore it (a traceback each). It can still reach another
    thread of this process, so the handler only notes it.
    """
    import threading

    if threading.current_thread() is not threading.main_thread():  # signals are the main thread's
        yield
        return
    hit: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: hit.append(signum))
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if hasattr(signal, "pthread_sigmask") else None
    try:
        yield
    finally:
        if mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a pending Ctrl-C is noted now
        signal.signal(signal.SIGINT, previous)
    if hit:
        raise KeyboardInterrupt


# ------------------------------------------------------------------------------------------
# Ray


class RayExecutor:
    """Each job a Ray Core task on a Ray cluster (``address``: ``auto`` joins the one ``ray start``
    started; ``None``: a Ray instance on this machine, started and stopped here).

    Tasks are submitted at once, each with the resources its setting asks for
    (``StudyConfig.resources_per_job``) and, as arguments, the object references of the
    models it reads (the second output of the tasks that train them; a model finished in an
    earlier run is read from ``teachers/`` and put in the object store once). Ray starts a
    task when its arguments exist. The driver collects results as they finish (``ray.wait``)
    and records each once: a task retried after a lost node (``max_retries``) or re-run to
    rebuild a lost object returns to the same reference, which the driver reads once.
    """

    def __init__(self, address: str | None = None, resources: Mapping[str, Any] | None = None,
                 max_retries: int = 3) -> None:
        self.address = address
        self.resources = dict(resources or {"cpu": 1, "gpu": 0})
        self.max_retries = max_retries
        self.slots = 1
        self._started_here = False

    def connect(self) -> None:
        """Join (or start) the cluster; ``slots`` becomes the jobs it can run at once."""
        import ray

        if not ray.is_initialized():
            # No address: a fresh instance here ("local"), never another session's running cluster.
            ray.init(address=self.address or "local", include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING, configure_logging=False)
            self._started_here = True
        cpus = float(ray.cluster_resources().get("CPU", 1))
        self.slots = max(1, int(cpus // max(job_resources(self.resources, "multi-task")["cpu"], 1e-9)))

    def run(self, todo: Sequence[Job], config: StudyConfig, teachers: Teachers, started: Started,
            finished: Finished, priority: Mapping[JobKey, float]) -> None:
        import ray

        self.connect()
        try:
            outputs = self._submit(todo, config, teachers, priority)
            pending = {records: key for key, (records, _) in outputs.items()}
            jobs = {job.key: job for job in todo}
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
                for ref in ready:
                    job = jobs[pending.pop(ref)]
                    result = ray.get(ref)
                    if job.teaches:
                        result.teacher = ray.get(outputs[job.key][1])
                    started(job)  # Ray says when a task ends, not when it starts
                    finished(job, result)
        except BaseException:
            for records, model in outputs.values() if "outputs" in locals() else []:
                for ref in (records, model):
                    ray.cancel(ref, force=True)
            raise
        finally:
            if self._started_here:
                ray.shutdown()
                self._started_here = False

    def _submit(self, todo: Sequence[Job], config: StudyConfig, teachers: Teachers,
                priority: Mapping[JobKey, float]) -> dict[JobKey, tuple[Any, Any]]:
        """Submit every job, dependencies first, the most work behind it first among the rest."""
        import ray

        remote = ray.remote(_ray_job)
        config_ref = ray.put(config)
        outputs: dict[JobKey, tuple[Any, Any]] = {}
        earlier: dict[JobKey, Any] = {}
        jobs = {job.key: job for job in todo}

        def submit(job: Job) -> None:
            for dep in job.deps:
                if dep in jobs and dep not in outputs:
                    submit(jobs[dep])
            deps = [outputs[d][1] if d in outputs else earlier.setdefault(d, ray.put(teachers(d))) for d in job.deps]
            asked = job_resources(self.resources, job.shown)
            outputs[job.key] = tuple(remote.options(
                num_cpus=asked["cpu"], num_gpus=asked["gpu"], num_returns=2, max_retries=self.max_retries,
                name=f"mtaffect {job.shown} {job.detail}",
            ).remote(job, config_ref, list(job.deps), *deps))

        for job in sorted(todo, key=lambda j: -priority.get(j.key, 0.0)):
            if job.key not in outputs:
                submit(job)
        return outputs


def _ray_job(job: Job, config: StudyConfig, deps: list[JobKey], *models: bytes) -> tuple[JobResult, bytes | None]:
    """A Ray task: one job. Its model comes back as a second output, so the jobs that read it
    take that reference alone (and the records can be read without fetching the weights)."""
    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    result = run_job(job, config, dict(zip(deps, models)))
    teacher, result.teacher = result.teacher, None
    import ray

    context = ray.get_runtime_context()
    result.where = context.get_node_id()
    return result, teacher
