"""``run_study``: the output folder, the plan's jobs, an executor, the ETA, the report.

The driver (this process) decides which jobs are left (``Ledger``: a job is done when its
records are in ``results.jsonl``; a teacher also needs its model under ``teachers/`` while a
job that reads it is left), hands them to the executor, and records what comes back, one
line per model, append-only. The per-task choices are made here, from the candidates'
records, the moment the last candidate of a grid is recorded. The report never knows which
executor (or which run of a resumed study) trained a job.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mtaffect.data.schema import get_corpus_info
from mtaffect.eta import StudyEta
from mtaffect.output_folder import OutputFolder
from mtaffect.report import setting_order, write_report
from mtaffect.study.config import StudyConfig, config_record, load_study_folds
from mtaffect.study.executors import Executor, InterruptGuard, LocalExecutor, RayExecutor, SerialExecutor
from mtaffect.study.job import JobResult, study_environment, study_inputs
from mtaffect.study.plan import (
    Job,
    JobKey,
    StudyPlan,
    critical_path,
    fewest_machines,
    job_label,
    job_work,
    jobs,
    upward_rank,
)
from mtaffect.study.records import (
    CONFIG_FILE,
    RESULTS_FILE,
    TEACHERS_DIR,
    SeedOutcome,
    append_record,
    check_same_study,
    choice_record,
    cost,
    read_records,
    record_key,
    seed_outcome,
    teacher_path,
)
from mtaffect.teachers import save_teacher_file

logger = logging.getLogger(__name__)


@dataclass
class StudyProgress:
    """Handed to the progress callback as each job starts (on Ray: as it ends; Ray does not say when a task starts).

    Args:
        step: this job's number among the jobs to train in this run (recorded ones skipped
            by a resumed study are not counted).
        total: the jobs to train in this run.
        eta: seconds left (``mtaffect.eta.StudyEta``): the pace of the finished jobs (per
            setting, per training row × epoch) applied to the jobs left, scheduled on the
            workers as the executor hands them out (dependencies and the tail counted as
            such). ``None`` until a job has finished.
    """

    step: int
    total: int
    seed: int
    setting: str
    detail: str
    elapsed: float
    eta: float | None = None


class StudyInterrupted(KeyboardInterrupt):
    """Ctrl-C during the study: every finished model is recorded; the message says how to resume."""


def run_study(
    config: StudyConfig | None = None,
    progress: Callable[[StudyProgress], None] | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Run the whole study and write the report; returns the paths of the written files.

    Args:
        resume: continue the study recorded in ``config.output_dir`` (same config): models
            already in its ``results.jsonl`` are not trained again, whichever backend
            recorded them.
        overwrite: replace an earlier study there (only the files mtaffect wrote; see
            ``mtaffect.output_folder``). Without either, a folder holding an earlier study
            or files of the user's is refused before anything is trained.

    Raises:
        StudyInterrupted: on Ctrl-C, after stopping every worker; finished models stay recorded.
    """
    config = config or StudyConfig()
    config.validate()
    if config.workers is None:
        config = replace(config, workers=os.cpu_count() or 1)
    with study_environment(config.torch_threads):
        return _run_study(config, progress, resume=resume, overwrite=overwrite)


def make_executor(config: StudyConfig) -> Executor:
    """The executor ``config.backend`` names (``local``: in this process for one worker, else a pool)."""
    if config.backend.get("name", "local") == "ray":
        return RayExecutor(config.backend.get("address"), config.resources_per_job)
    return SerialExecutor() if (config.workers or 1) <= 1 else LocalExecutor(config.workers or 1)


def _run_study(config: StudyConfig, progress: Callable[[StudyProgress], None] | None, resume: bool = False,
               overwrite: bool = False) -> dict[str, Path]:
    start = time.time()
    folder, records_dir = _study_folder(config, resume, overwrite)
    results_path = records_dir / RESULTS_FILE
    previous = read_records(results_path) if resume and results_path.is_file() else []
    if previous:
        check_same_study(records_dir, config, previous)
    records_dir.mkdir(parents=True, exist_ok=True)
    (records_dir / CONFIG_FILE).write_text(json.dumps(config_record(config), indent=1, default=str) + "\n")
    inputs = study_inputs(config, load_study_folds(config))
    ledger = Ledger(config, jobs(inputs.plan, config), previous, records_dir)
    executor = make_executor(config)
    guard = InterruptGuard()
    try:
        with guard:
            ledger.choose()  # grids a resumed study finished but did not choose in
            todo = ledger.todo()
            if previous:
                logger.info("Resuming: %d recorded model(s) reused, %d job(s) to run.", len(previous), len(todo))
            _execute(executor, ledger, todo, config, progress, inputs.by_fold[0], start, guard)
            guard.check()
    except KeyboardInterrupt:
        recorded = len(read_records(results_path)) if results_path.is_file() else 0
        raise StudyInterrupted(
            f"interrupted; the {recorded} model record(s) finished so far are in {results_path}. "
            "Run the same command with --resume to continue."
        ) from None
    shutil.rmtree(records_dir / TEACHERS_DIR, ignore_errors=True)  # every job is done: nothing is left to weak-label
    outcomes = [seed_outcome(seed, [j for j in ledger.jobs if seed in j.seeds], ledger.records) for seed in config.seeds]
    metadata = _metadata(config, inputs.plan, inputs.by_fold[0], outcomes, executor, results_path, start)
    results = [result for outcome in outcomes for result in outcome.results]
    collapses = [collapse for outcome in outcomes for collapse in outcome.fold_collapses]
    if records_dir == folder.target:
        with folder.staging(replace_all=False, check=False) as report_dir:
            written = write_report(results, report_dir, metadata=metadata, collapses=collapses)
    else:
        written = write_report(results, records_dir, metadata=metadata, collapses=collapses)
        folder.commit(records_dir)  # replaces the earlier study; the user's own files stay
    paths = {kind: folder.target / Path(path).name for kind, path in written.items()}
    paths["results"] = folder.target / RESULTS_FILE
    return paths


def _execute(executor: Executor, ledger: Ledger, todo: Sequence[Job], config: StudyConfig,
             progress: Callable[[StudyProgress], None] | None, corpora: Mapping[str, Any], start: float,
             guard: InterruptGuard) -> None:
    """Run ``todo`` on ``executor``, announcing each job and recording each result.

    A Ctrl-C swallowed where Python cannot raise it (a ``__del__``) is raised at the next job boundary.
    """
    rows = {name: corpus["train"].num_rows for name, corpus in corpora.items()}
    work = {job.key: job_work(job, rows, config) for job in ledger.jobs}
    rank = upward_rank(ledger.jobs, work)
    if isinstance(executor, RayExecutor):
        executor.connect()  # its slots are the cluster's
    clock = StudyEta({job.key: (job.shown, work[job.key], job.deps) for job in todo}, executor.slots,
                     None if isinstance(executor, SerialExecutor) else rank)
    step = 0

    def started(job: Job) -> None:
        nonlocal step
        guard.check()
        step += 1
        now = time.time()
        clock.started(job.key, now)
        seed = job.seeds[0] if job.setting in ("linear-probe", "cross-fit teacher") else job.seed
        event = StudyProgress(step, len(todo), seed, job.shown, job.detail, now - start, clock.remaining(now))
        logger.info("[%d/%d] seed %d %s %s", step, len(todo), seed, job.shown, job.detail)
        if progress:
            progress(event)

    def finished(job: Job, result: JobResult) -> None:
        ledger.record(job, result)
        clock.finished(job.key, time.time())
        guard.check()

    executor.run(todo, config, ledger.teacher, started, finished, rank)


class Ledger:
    """The driver's book of the study: what is recorded, what is left, where the teachers are.

    Only the driver holds one, so only the driver writes ``results.jsonl`` (append-only, one
    line per record, each record once) and ``teachers/``.
    """

    def __init__(self, config: StudyConfig, all_jobs: Sequence[Job], previous: Sequence[Mapping[str, Any]],
                 records_dir: Path) -> None:
        self.config, self.jobs = config, list(all_jobs)
        self.results_path = records_dir / RESULTS_FILE
        self.teachers = records_dir / TEACHERS_DIR
        self.records = {record_key(r): r for r in previous if int(r["seed"]) in config.seeds}
        self.by_key = {job.key: job for job in self.jobs}
        self.plan_keys = {key for job in self.jobs for key in job.record_keys()}

    def recorded(self, job: Job) -> bool:
        return all(key in self.records for key in job.record_keys())

    def todo(self) -> list[Job]:
        """The jobs to run, in plan order: those not recorded (a probe: for the seeds it lacks), and
        the teachers whose model is gone (``teachers/`` is removed when a study ends) while a job
        that reads it is left."""
        dependents: dict[JobKey, list[JobKey]] = {}
        for job in self.jobs:
            for dep in job.deps:
                dependents.setdefault(dep, []).append(job.key)
        needed: set[JobKey] = set()
        for job in reversed(self.jobs):  # dependents first
            if not job.trains:
                if not self.recorded(job):
                    needed.add(job.key)  # made here, but its candidates must be recorded
                continue
            gone = job.teaches and not teacher_path(self.teachers, job).is_file()
            if not self.recorded(job) or (job.setting == "cross-fit teacher" and gone) or (
                    gone and any(d in needed for d in dependents.get(job.key, []))):
                needed.add(job.key)
        todo = [job for job in self.jobs if job.key in needed and job.trains]
        # A cross-fit teacher is needed only by a weak model that is left to train.
        wanted = {dep for job in todo for dep in job.deps}
        todo = [job for job in todo if job.setting != "cross-fit teacher" or job.key in wanted]
        return [replace(job, seeds=tuple(s for s in job.seeds if (job.setting, s, job.model, job.fold) not in self.records))
                if job.setting == "linear-probe" else job for job in todo]

    def teacher(self, key: JobKey) -> bytes:
        """The model of a finished teaching job (what the executors hand to the jobs that read it)."""
        return teacher_path(self.teachers, self.by_key[key]).read_bytes()

    def record(self, job: Job, result: JobResult) -> None:
        """Keep a finished job's model and append its records (each record once), then choose where a grid is done."""
        if result.teacher is not None:
            save_teacher_file(result.teacher, teacher_path(self.teachers, job))
        for record in result.records:
            if record.get("record") == "model":
                key = record_key(record)
                if key in self.records:
                    continue  # a teacher trained again only for its model: its numbers are recorded
                self.records[key] = record
            append_record(self.results_path, record)
        self.choose()

    def choose(self) -> None:
        """Record every per-task choice whose candidates are all recorded and that is not yet."""
        for job in self.jobs:
            if job.trains or self.recorded(job):
                continue
            candidates = [self.by_key[dep] for dep in job.deps]
            if all(self.recorded(c) for c in candidates):
                records = [(c.choice_point, self.records[c.record_keys()[0]]) for c in candidates]
                record = choice_record(job, records, _plan_of(self.config))
                self.records[record_key(record)] = record
                append_record(self.results_path, record)


def _plan_of(config: StudyConfig) -> StudyPlan:
    return study_inputs(config).plan


def _metadata(config: StudyConfig, plan: StudyPlan, corpora: Mapping[str, Any], outcomes: Sequence[SeedOutcome],
              executor: Executor, results_path: Path, start: float) -> dict[str, Any]:
    """What report.json says about the study besides its numbers."""
    results = [result for outcome in outcomes for result in outcome.results]
    return {
        "seeds": list(config.seeds),
        "corpora": {name: {"tasks": own, "primary_task": own[0], "train_size": corpora[name]["train"].num_rows,
                           "feature_set": get_corpus_info(corpora[name]).feature_set}
                    for name, own in plan.tasks.items()},
        "settings": setting_order(r.setting for r in results),
        "chosen on validation (per seed)": {str(o.seed): o.chosen for o in outcomes},
        "weak labels": outcomes[0].weak_notes if outcomes else [],
        **({"cross-validated corpus": {"corpus": plan.fold_corpus, "folds": plan.folds,
                                       "what a seed's number is": "the mean over folds (predicted counts: the sum)"}}
           if plan.fold_corpus else {}),
        "model": config.model,
        "training": config.training,
        "sampling": {"strategy": config.corpus_sampling, "temperature": config.sampling_temperature,
                     "batch_composition": config.batch_composition},
        "workers": executor.slots,
        "backend": config.backend.get("name", "local"),
        "wall_time_seconds": round(time.time() - start, 1),
        "model seconds per setting": cost(results_path),
        "config": config_record(config),
    }


def _study_folder(config: StudyConfig, resume: bool, overwrite: bool) -> tuple[OutputFolder, Path]:
    """The output folder's rules, and where this run records its models (the folder, or a scratch one).

    A fresh or resumed study records straight into the output folder (append-only). One that
    replaces an earlier study (``overwrite``) records into a scratch folder beside it, moved
    into place when done: interrupted, it leaves the earlier study and its report whole, and
    ``resume`` continues it there.
    """
    folder = OutputFolder(
        config.output_dir, command="mtaffect run", overwrite=overwrite, resume=resume, resume_flag="--resume"
    )
    report_files = [f"report.{kind}" for kind in ("json", "md", "png")]
    folder.check(will_write=[*report_files, RESULTS_FILE, CONFIG_FILE])
    scratch = folder.persistent_scratch("study")
    if scratch.exists() and not resume:
        shutil.rmtree(scratch)  # an interrupted --overwrite run, now started afresh
    if scratch.exists() or (overwrite and folder.written()):
        scratch.mkdir(exist_ok=True)
        return folder, scratch
    folder.record([RESULTS_FILE, CONFIG_FILE, f"{TEACHERS_DIR}/"])
    return folder, folder.target




# ------------------------------------------------------------------------------------------
# The plan, without training


@dataclass
class PlanSummary:
    """What ``mtaffect run --plan`` prints: the job graph, its cost and how far it would scale.

    Args:
        jobs: every job of the study (the per-task choices included: they cost nothing).
        cost: seconds per job key (``unit`` says what they are).
        unit: ``"s"`` when the costs come from recorded seconds, ``"work"`` (training rows ×
            epochs) when no study of this config has recorded any.
        critical: the chain of dependent jobs that takes longest, and its cost.
        source: where the recorded seconds come from (and how many jobs had their own).
    """

    jobs: list[Job]
    cost: dict[JobKey, float]
    unit: str
    critical: tuple[float, list[JobKey]]
    source: str

    @property
    def total(self) -> float:
        return sum(self.cost.values())

    def per_setting(self) -> dict[str, tuple[int, float]]:
        """Setting -> (jobs, their total cost), in plan order."""
        table: dict[str, tuple[int, float]] = {}
        for job in self.jobs:
            count, total = table.get(job.setting, (0, 0.0))
            table[job.setting] = (count + 1, total + self.cost.get(job.key, 0.0))
        return table

    def lines(self) -> list[str]:
        """The printout: jobs and cost per setting, total work, critical path, fewest workers."""
        unit = "s" if self.unit == "s" else ""
        table = self.per_setting()
        width = max([28, *(len(setting) + 2 for setting in table)])
        out = [f"{'setting':<{width}}{'jobs':>6}{'each':>12}{'total':>12}"]
        for setting, (count, total) in table.items():
            out.append(f"{setting:<{width}}{count:>6}{f'{total / count:.1f}{unit}':>12}{f'{total:.1f}{unit}':>12}")
        path, chain = self.critical
        share = f" ({path / self.total:.1%} of the work)" if self.total else ""
        out += [
            f"total work: {self.total:.1f}{unit} in {len(self.jobs)} jobs",
            f"critical path: {path:.1f}{unit} over {len(chain)} jobs{share}:",
            *(f"  {job_label(key)}" for key in chain),
            f"fewest workers that finish in critical-path time: {fewest_machines(self.total, path)}",
            f"costs: {self.source}",
        ]
        return out


def plan_study(config: StudyConfig, results: Path | None = None) -> PlanSummary:
    """The study's jobs and their estimated cost, without training anything.

    A job's cost is the seconds its record took where ``results`` (a ``results.jsonl`` of a
    study with this config, the same fingerprint) has it; a job without (another seed, a new
    fold) is the pace of its setting (seconds per training row × epoch) recorded there times
    its work. With no recorded seconds, costs are the work itself (training rows × epochs),
    and the critical path and the fewest workers still hold, in those units.
    """
    inputs = study_inputs(config, load_study_folds(config))
    all_jobs = jobs(inputs.plan, config)
    rows = {name: corpus["train"].num_rows for name, corpus in inputs.by_fold[0].items()}
    work = {job.key: job_work(job, rows, config) for job in all_jobs}
    seconds = _recorded_seconds(results, config) if results is not None and results.is_file() else {}
    if not seconds:
        where = f"{results} has no records of this config" if results is not None and results.is_file() else (
            "no study of this config is recorded")
        return PlanSummary(all_jobs, work, "work", critical_path(all_jobs, work),
                           f"{where}: training rows × epochs per job (a probe: its rows), not seconds")
    cost, own = {}, 0
    pace = _paces(all_jobs, work, seconds)
    for job in all_jobs:
        if job.key in seconds:
            cost[job.key], own = seconds[job.key], own + 1
        else:
            cost[job.key] = work[job.key] * pace.get(job.setting, pace.get("", 0.0))
    return PlanSummary(all_jobs, cost, "s", critical_path(all_jobs, cost),
                       f"recorded seconds of {own} of {len(all_jobs)} jobs in {results}; the others at their setting's pace")


def _recorded_seconds(results: Path, config: StudyConfig) -> dict[JobKey, float]:
    """Job key -> seconds, from the records of this config (a probe: the seed that fitted it)."""
    inputs = study_inputs(config)
    by_record: dict[tuple[str, int | None, str, int | None], float] = {}
    study = config.fingerprint()
    for line in results.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("study") == study and "seconds" in record:
            key = (record["setting"], None if record["setting"] == "linear-probe" else record.get("seed"),
                   record["model"], record.get("fold"))
            by_record[key] = max(by_record.get(key, 0.0), float(record["seconds"]))
    seconds = {}
    for job in jobs(inputs.plan, config):
        key = (job.setting, None if job.setting == "linear-probe" else job.seeds[0] if job.seeds else job.seed,
               job.model, job.fold)
        if key in by_record:
            seconds[job.key] = by_record[key]
    return seconds


def _paces(all_jobs: Sequence[Job], work: Mapping[JobKey, float], seconds: Mapping[JobKey, float]) -> dict[str, float]:
    """Setting -> recorded seconds per unit of work ("" : every setting together)."""
    spent: dict[str, list[float]] = {}
    for job in all_jobs:
        if job.key in seconds and work[job.key]:
            for setting in (job.setting, ""):
                totals = spent.setdefault(setting, [0.0, 0.0])
                totals[0] += seconds[job.key]
                totals[1] += work[job.key]
    return {setting: total / amount for setting, (total, amount) in spent.items() if amount}
