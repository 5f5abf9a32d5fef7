"""Running one job: build its inputs (weak labels from its teachers), fit, evaluate, record.

``run_job`` is what every executor calls, in this process, in a worker process or in a Ray
task: it reads the study's corpora (loaded once per process, ``study_inputs``), gets the
models of the jobs it depends on as ``teacher_bytes`` blobs, and returns its records and,
for a teaching job, its own model as a blob. It writes nothing: the driver records.

Every job is deterministic on its own: ``mtaffect.recipes.fit`` seeds the model and the
sampler from the job's seed, the weak labels are a teacher's predictions, and nothing
carries over from the job a process ran before it.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import DatasetDict

from mtaffect.data.schema import get_corpus_info
from mtaffect.metrics import make_compute_metrics
from mtaffect.recipes import fit
from mtaffect.study.config import StudyConfig, load_study_folds
from mtaffect.study.plan import (
    CANDIDATE,
    GOLD_CANDIDATE,
    SINGLE_CONTEXT_CANDIDATE,
    Job,
    JobKey,
    StudyPlan,
    cross_fit_key,
    fold_tag,
    single_task_key,
    weak_label_sources,
)
from mtaffect.study.records import TrainedModel, model_record, probe_record
from mtaffect.teachers import record_as_teacher, teacher_bytes, teacher_from_bytes
from mtaffect.weak_labels import add_weak_labels

logger = logging.getLogger(__name__)

__all__ = ["STUDY_TRAINING_DEFAULTS", "JobResult", "TrainedModel", "run_job", "train_and_evaluate"]

#: Trainer arguments every study model gets unless ``StudyConfig.training`` sets them.
STUDY_TRAINING_DEFAULTS: dict[str, Any] = {
    "eval_strategy": "epoch",
    "save_strategy": "no",  # the per-task selection keeps its best weights in memory
    "load_best_model_at_end": False,  # no single best model: each task reads its own best step
    "metric_for_best_model": None,
    "greater_is_better": None,
    "logging_strategy": "epoch",
}


@dataclass
class JobResult:
    """What a job hands back to the driver: its records and, if other jobs read its model, the model."""

    records: list[dict[str, Any]]
    teacher: bytes | None = None
    #: Seconds the job ran where it ran (its records hold the model's own seconds).
    seconds: float = 0.0
    #: Where it ran (a host name; the Ray executor's node id), for the logs.
    where: str = field(default="")


def train_and_evaluate(
    train: Mapping[str, Any],
    validation: Mapping[str, Any],
    test: Mapping[str, Any],
    tasks: Sequence[str],
    config: StudyConfig,
    seed: int,
    work_dir: Path,
    weak_loss_weight: float = 0.0,
    weak_label_mode: str = "soft",
    all_corpora: Mapping[str, DatasetDict] | None = None,
    context: Mapping[str, Any] | None = None,
) -> TrainedModel:
    """Train one model with the recipe (``mtaffect.recipes.fit``); each (corpus, task) is scored on test at its own best validation step.

    The Trainer arguments are the recipe's defaults, then the study's (sampling; no
    checkpoints, no single "best model" on a mean over corpora: ``STUDY_TRAINING_DEFAULTS``),
    then everything ``config.training`` sets, which wins (``eval_strategy: steps`` with
    ``eval_steps: 50`` evaluates every 50 steps). ``PerTaskSelection`` watches each evaluation
    (early stopping after ``config.patience`` evaluations without any task improving) and
    ``MultiTaskTrainer.evaluate_per_task`` reads each task's test metrics with the weights of
    its best validation step. The validation score (what λ is chosen on) is the mean over
    (corpus, task) of those best validation scores. ``context``: the model's conversational
    context (a context candidate's; otherwise ``config.model``'s).
    """
    from mtaffect.training.selection import PerTaskSelection

    started = time.time()
    # A model that fine-tunes an encoder keeps each task's best step on disk (only what trains;
    # the frozen part is shared), not a copy of the encoder per task in memory.
    snapshots = work_dir / "selection" if config.model.get("pretrained_encoders") else None
    selection = PerTaskSelection(patience=config.patience, snapshot_dir=snapshots)
    fitted = fit(
        train,
        validation,
        None,
        output_dir=work_dir,
        model={**config.model, **({"context": dict(context)} if context else {}), "weak_loss_weight": weak_loss_weight,
               "weak_label_mode": weak_label_mode},
        tasks=tasks,
        training={
            **STUDY_TRAINING_DEFAULTS,
            "save_only_model": True,
            "disable_tqdm": True,
            "corpus_sampling": config.corpus_sampling,
            "sampling_temperature": config.sampling_temperature,
            "batch_composition": config.batch_composition,
            **config.training,
            "seed": seed,
        },
        config_corpora=dict(all_corpora or train),
        callbacks=[selection],
        quiet=True,  # the study reports progress itself
        # Predicted-class counts ride along with the metrics, so the report can show a collapsed model.
        compute_metrics=make_compute_metrics(include_counts=True),
    )
    trainer = fitted.trainer
    if not selection.choices():  # no evaluation ran (eval_strategy "no" and no validation split)
        trainer.evaluate()
    test_metrics = trainer.evaluate_per_task(dict(test), selection, metric_key_prefix="test")
    signed = [best["signed"] for best in selection.best.values()]
    shutil.rmtree(work_dir, ignore_errors=True)
    return TrainedModel(
        model=fitted.model,
        validation_score=float(sum(signed) / len(signed)) if signed else float("nan"),
        test_metrics=test_metrics,
        selection=selection.choices(),
        validation_scores={name: float(best["signed"]) for name, best in selection.best.items()},
        seconds=time.time() - started,
    )


@contextmanager
def study_environment(threads: int | None) -> Iterator[None]:
    """Thread count and quiet progress bars for the study's jobs, restored afterwards.

    The study reports its own progress (one line per model); the bars of every ``map`` and
    checkpoint save would drown it.
    """
    import datasets
    import torch
    from transformers.utils import logging as transformers_logging

    previous_threads = torch.get_num_threads()
    datasets_bars = datasets.is_progress_bar_enabled()
    transformers_bars = transformers_logging.is_progress_bar_enabled()
    if threads:
        torch.set_num_threads(threads)
    datasets.disable_progress_bars()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        torch.set_num_threads(previous_threads)
        if datasets_bars:
            datasets.enable_progress_bars()
        if transformers_bars:
            transformers_logging.enable_progress_bar()


# ------------------------------------------------------------------------------------------
# The study's inputs, once per process


@dataclass
class StudyInputs:
    """The corpora per fold and the plan: what every job of one study reads."""

    by_fold: list[dict[str, DatasetDict]]
    plan: StudyPlan

    def at(self, fold: int | None) -> dict[str, DatasetDict]:
        return self.by_fold[fold or 0]


_INPUTS: dict[str, StudyInputs] = {}


def study_inputs(config: StudyConfig, by_fold: Sequence[Mapping[str, DatasetDict]] | None = None) -> StudyInputs:
    """The study's corpora and plan, loaded once per process (``by_fold``: already loaded here).

    A worker process (or Ray worker) runs many jobs of one study; loading the corpora for
    each would cost more than a small model's training.
    """
    key = config.fingerprint()
    if key not in _INPUTS:
        loaded = list(by_fold) if by_fold is not None else load_study_folds(config)
        plan = StudyPlan.build(loaded[0], config, loaded)
        _INPUTS.clear()  # one study per process at a time
        _INPUTS[key] = StudyInputs([{name: fold[name] for name in plan.tasks} for fold in loaded], plan)
    return _INPUTS[key]


# ------------------------------------------------------------------------------------------
# One job


def run_job(job: Job, config: StudyConfig, teachers: Mapping[JobKey, bytes]) -> JobResult:
    """Run ``job``: ``teachers`` holds the model of each job it depends on (``teacher_bytes``)."""
    import socket

    started = time.time()
    inputs = study_inputs(config)
    work = Path(tempfile.mkdtemp(prefix="mtaffect-job-"))
    try:
        with study_environment(config.torch_threads):
            if job.setting == "linear-probe":
                result = _probe(job, config, inputs)
            elif job.setting in ("single-task", "cross-fit teacher", SINGLE_CONTEXT_CANDIDATE):
                result = _alone(job, config, inputs, work)
            else:
                result = _union(job, config, inputs, teachers, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result.seconds, result.where = time.time() - started, socket.gethostname()
    return result


_PROBES: dict[tuple[str, str, str], Any] = {}


def _probe(job: Job, config: StudyConfig, inputs: StudyInputs) -> JobResult:
    """The linear probe of (corpus, task): fitted once, recorded for each of the job's seeds."""
    from mtaffect.probe import linear_probe

    corpus = inputs.at(job.fold)[job.corpus]
    key = (job.corpus, job.task, corpus["train"]._fingerprint)
    started = time.time()
    if key not in _PROBES:
        _PROBES[key] = linear_probe(corpus, job.task)
    seconds = time.time() - started
    study = config.fingerprint()
    return JobResult([probe_record(study, seed, job.corpus, job.task, job.fold, _PROBES[key], seconds if i == 0 else 0.0)
                      for i, seed in enumerate(job.seeds)])


def _alone(job: Job, config: StudyConfig, inputs: StudyInputs, work: Path) -> JobResult:
    """A model of one corpus: single-task (a baseline, and a teacher of its seed), one cross-fitted
    teacher, or a single-task context candidate (a baseline only: teachers stay context-free)."""
    from mtaffect.teachers import cross_fit_splits

    name, task = job.corpus, job.task
    corpus = inputs.at(job.fold)[name]
    part = cross_fit_splits(corpus, job.k, job.seed)[1][job.part] if job.setting == "cross-fit teacher" else corpus
    # A cross-fitted teacher selects on the validation rows outside its fold; it has no test of its own.
    test = part["validation"] if job.setting == "cross-fit teacher" else corpus["test"]
    trained = train_and_evaluate({name: part["train"]}, {name: part["validation"]}, {name: test}, [task], config,
                                 job.seed, work, all_corpora={name: corpus}, context=job.context_options)
    study = config.fingerprint()
    if job.setting != "cross-fit teacher":
        record = model_record(study, job.seed, job.setting, job.model, trained, {name: [task]}, fold=job.fold)
    else:
        record = {"record": "teacher", "study": study, "seed": job.seeds[0], "setting": job.setting, "model": job.model,
                  "fold": job.fold, "validation_combined_score": trained.validation_score,
                  "seconds": round(trained.seconds, 2)}
    if not job.teaches:
        return JobResult([record])
    record_as_teacher(trained.model, task, {name: part})
    return JobResult([record], teacher_bytes(trained.model))


def _union(job: Job, config: StudyConfig, inputs: StudyInputs, teachers: Mapping[JobKey, bytes], work: Path) -> JobResult:
    """A model of the union: gold labels only (the multi-task control, a multi-task context candidate)
    or a weak / gold candidate of the grid."""
    plan, corpora = inputs.plan, inputs.at(job.fold)
    weight, mode, threshold = job.point or (0.0, "soft", None)
    labelled, notes = corpora, []
    if job.setting in (CANDIDATE, GOLD_CANDIDATE):
        replace_auxiliary = job.setting == CANDIDATE
        labelled, notes = _weak_corpora(job, config, inputs, teachers, mode, threshold, replace_auxiliary)
    trained = train_and_evaluate(
        {n: c["train"] for n, c in labelled.items()}, {n: c["validation"] for n, c in labelled.items()},
        {n: c["test"] for n, c in corpora.items()}, plan.study_tasks, config, job.seed, work,
        weak_loss_weight=weight, weak_label_mode=mode, all_corpora=labelled, context=job.context_options,
    )
    extra = {"weak_notes": notes} if job.setting == CANDIDATE else {}
    return JobResult([model_record(config.fingerprint(), job.seed, job.setting, job.model, trained, plan.tasks,
                                   fold=job.fold, **extra)])


#: The weak-labelled corpora of the last few (seed, fold, mode, threshold, auxiliary) in this process:
#: the candidates of one grid share them (λ does not change the labels).
_WEAK: dict[tuple[Any, ...], tuple[dict[str, DatasetDict], list[str]]] = {}


def _weak_corpora(job: Job, config: StudyConfig, inputs: StudyInputs, teachers: Mapping[JobKey, bytes], mode: str,
                  threshold: float | None, replace_auxiliary: bool) -> tuple[dict[str, DatasetDict], list[str]]:
    key = (config.fingerprint(), job.seed, job.fold, mode, threshold, replace_auxiliary)
    if key not in _WEAK:
        missing = [dep for dep in job.deps if dep not in teachers]
        if missing:
            raise RuntimeError(f"{job.setting} {job.detail}: the models of {missing} were not handed to it.")
        models = {dep: teacher_from_bytes(teachers[dep]) for dep in job.deps}
        while len(_WEAK) >= 2:
            _WEAK.pop(next(iter(_WEAK)))
        _WEAK[key] = weak_labelled(inputs, job.seed, job.fold, models, config, mode, threshold, replace_auxiliary)
    return _WEAK[key]


def weak_labelled(
    inputs: StudyInputs,
    seed: int | None,
    fold: int | None,
    models: Mapping[JobKey, Any],
    config: StudyConfig,
    mode: str,
    threshold: float | None,
    replace_auxiliary: bool,
) -> tuple[dict[str, DatasetDict], list[str]]:
    """The corpora of ``fold`` with weak labels for their missing tasks (and, optionally, auxiliary ones).

    ``models`` holds the teachers, by the key of the job that trained them. A gold auxiliary
    task with cross-fitted teachers is replaced by their out-of-fold labels, in the corpus'
    own label space; without, by another corpus' single-task model (``choose_teacher``),
    converted where the spaces differ (``weak_label_sources``).
    """
    plan = inputs.plan
    out = dict(inputs.at(fold))
    notes: list[str] = []
    for name, task, source in weak_label_sources(plan, fold, replace_auxiliary):
        auxiliary = task in plan.tasks[name][1:]
        if source is None:
            out[name], note = _cross_fitted(out[name], name, task, plan.own_fold(name, fold), models, config, mode,
                                            threshold)
        elif source == "":
            note = (f"{name}/{task}: no teacher with the same feature set, so no weak {task} labels"
                    + (f"; its gold {task} labels (auxiliary) are kept" if auxiliary else ""))
        else:
            teacher = models[single_task_key(seed, plan.own_fold(source, fold), source, task)]
            out[name] = add_weak_labels(out[name], teacher, task, mode=mode, threshold=threshold,
                                        ablation="replace" if auxiliary else None, cache=False, convert=True)
            rule = get_corpus_info(out[name]).notes.get("weak_labels", {}).get(task, {}).get("conversion", "none")
            note = (f"{name}/{task}: weak labels from the {source} single-task model"
                    + (" (replacing the gold auxiliary labels)" if auxiliary else "")
                    + (f", converted {rule}" if rule != "none" else ""))
        notes.append(note)
    return out, notes


def _cross_fitted(corpus: DatasetDict, name: str, task: str, fold: int | None, models: Mapping[JobKey, Any],
                  config: StudyConfig, mode: str, threshold: float | None) -> tuple[DatasetDict, str]:
    """``corpus`` with its gold auxiliary ``task`` replaced by its K cross-fitted teachers' out-of-fold labels."""
    from mtaffect.data.arrow import column_values
    from mtaffect.teachers import CrossFittedTeachers, cross_fit_splits
    from mtaffect.weak_labels import add_cross_fitted_weak_labels, weak_label_quality

    k, seed = int(config.cross_fit_folds or 0), config.cross_fit_seed
    folds, parts = cross_fit_splits(corpus, k, seed)
    teachers = [models[cross_fit_key(seed, fold, name, task, j)] for j in range(k)]
    seen = [{split: [str(i) for i in column_values(part[split], "id")] for split in part} for part in parts]
    fitted = CrossFittedTeachers(task, teachers, folds, seen, seed)
    labelled = add_cross_fitted_weak_labels(corpus, fitted, mode=mode, threshold=threshold)
    quality = weak_label_quality(labelled["train"], task, gold=corpus["train"])
    agreement = (f"; out-of-fold agreement with the gold train labels: weighted F1 {quality['weighted_f1']:.3f} "
                 f"(majority class {quality['majority_weighted_f1']:.3f})"
                 if "weighted_f1" in quality and "majority_weighted_f1" in quality else "")
    return labelled, (f"{name}/{task}: weak labels from {k} cross-fitted {name} {task} teachers "
                      "(each row labelled by the teacher blind to its fold), replacing the gold auxiliary labels"
                      + agreement)


def describe_job(job: Job) -> str:
    """``seed 0 single-task synthetic_meld/emotion [fold 1]``: a job in a log line."""
    seed = "" if job.seed is None else f"seed {job.seed} "
    return f"{seed}{job.shown} {job.model}{fold_tag(job.fold)}"
