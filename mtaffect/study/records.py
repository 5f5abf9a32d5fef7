"""The study's records: ``results.jsonl``, one JSON line per evaluated model, append-only.

Only the driver (the process that runs ``run_study``) writes it, one whole line in one
``write`` (``append_record``): a killed study leaves at most a partial last line, which
``read_records`` skips. A record is named by (setting, seed, model, fold), which is
``Job.record_keys()``: resume, the fold means and the report read the records of the plan's
jobs, whichever executor (or run) trained them.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtaffect.report import Result
from mtaffect.study.config import _NOT_IN_FINGERPRINT, StudyConfig, config_record
from mtaffect.study.plan import (
    CANDIDATE,
    CANDIDATES,
    CHOICE_OF,
    CONTEXT_CANDIDATES,
    ContextPoint,
    GridPoint,
    Job,
    StudyPlan,
    context_name,
    fold_tag,
    grid_name,
)

#: The per-task choices among context candidates (``single-task + context``, ``multi-task + context``).
CONTEXT_CHOICES = tuple(CHOICE_OF[setting] for setting in CONTEXT_CANDIDATES)

logger = logging.getLogger(__name__)

#: What a study folder holds besides its report (``report.json``/``.md``/``.png``).
RESULTS_FILE = "results.jsonl"
CONFIG_FILE = "study.json"
#: Where the models other jobs read (single-task models, cross-fitted teachers) are kept until the study is done.
TEACHERS_DIR = "teachers"
#: Under ``TEACHERS_DIR``: the cross-fitted teachers, shared by every seed.
CROSS_FIT_DIR = "cross-fit"

RecordKey = tuple[str, int, str, "int | None"]


@dataclass
class TrainedModel:
    """What training and evaluating one model gives (``mtaffect.study.job.train_and_evaluate``)."""

    model: Any
    validation_score: float
    test_metrics: dict[str, dict[str, dict[str, float]]]  # corpus -> task -> metric -> value
    #: "corpus/task" -> {"step", "metric", "score"}: the validation step each task's test numbers come from.
    selection: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: "corpus/task" -> its best validation score, oriented so that higher is better (what a
    #: per-task choice of λ compares).
    validation_scores: dict[str, float] = field(default_factory=dict)
    #: Wall-clock seconds to train and evaluate the model (what a study's cost is made of).
    seconds: float = 0.0


def record_key(record: Mapping[str, Any]) -> RecordKey:
    """(setting, seed, model, fold): what names a model record (``Job.record_keys``)."""
    return (record["setting"], int(record["seed"]), record["model"], record.get("fold"))


def teacher_path(root: Path, job: Job) -> Path:
    """Where the model of a teaching job is kept: ``teachers/seed<N>/<corpus>--<task>[--fold<F>].safetensors``,
    a cross-fitted teacher under ``teachers/cross-fit/<corpus>--<task>[--fold<F>]/teacher-<j>.safetensors``."""
    name = f"{job.corpus}--{job.task}{'' if job.fold is None else f'--fold{job.fold}'}"
    if job.setting == "cross-fit teacher":
        return root / CROSS_FIT_DIR / name / f"teacher-{job.part}.safetensors"
    return root / f"seed{job.seed}" / f"{name}.safetensors"


def model_record(
    study: str,
    seed: int,
    setting: str,
    model: str,
    trained: TrainedModel,
    only: Mapping[str, Sequence[str]],
    **extra: Any,
) -> dict[str, Any]:
    """The record of one evaluated model: its test numbers (for the tasks ``only`` lists per corpus)."""
    results = [
        {"corpus": corpus, "task": task, "metric": metric, "value": value}
        for corpus, by_task in trained.test_metrics.items()
        for task, metrics in by_task.items()
        for metric, value in metrics.items()
        if task in only.get(corpus, [])
    ]
    # The validation step each (corpus, task)'s test numbers were read at (every choice on validation).
    selected = {
        key: {"step": choice["step"], "validation": f"{choice['metric']} {choice['score']:.4f}"}
        for key, choice in trained.selection.items()
        if key.split("/", 1)[1] in only.get(key.split("/", 1)[0], [])
    }
    return {
        "record": "model",
        "study": study,
        "seed": seed,
        "setting": setting,
        "model": model,
        "validation_combined_score": trained.validation_score,
        "validation_scores": {key: value for key, value in trained.validation_scores.items()
                              if key.split("/", 1)[1] in only.get(key.split("/", 1)[0], [])},
        "results": results,
        "selected_steps": selected,
        "seconds": round(trained.seconds, 2),
        **extra,
    }



def read_records(path: str | Path) -> list[dict[str, Any]]:
    """The model records of a results file (lines of other kinds are skipped); names a bad line."""
    path = Path(path)
    records = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                if not line.endswith("\n"):
                    logger.warning("%s:%d: an incomplete last line (the study was killed while writing it); ignored.",
                                   path, number)
                    continue
                raise ValueError(f"{path}:{number}: not a JSON record ({error.msg}).") from None
            if isinstance(record, dict) and record.get("record") == "model":
                records.append(record)
    return records


def recorded_results(record: Mapping[str, Any]) -> list[Result]:
    """The report's results of one model record."""
    return [
        Result(record["setting"], int(record["seed"]), r["corpus"], r["task"], r["metric"], float(r["value"]))
        for r in record["results"]
    ]


def recorded_choices(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Seed -> what validation chose for multi-task-weak, from the records (per fold where there are folds)."""
    chosen: dict[str, Any] = {}
    for r in records:
        if r["setting"] == "multi-task-weak" and "chosen" in r:
            if r.get("fold") is None:
                chosen[str(r["seed"])] = r["chosen"]
            else:
                chosen.setdefault(str(r["seed"]), {"per fold": {}})["per fold"][str(r["fold"])] = r["chosen"]
    return chosen


def records_results(records: Sequence[Mapping[str, Any]]) -> list[Result]:
    """The report's results of model records: per seed, the mean over folds (``fold_means``).

    The candidates (one model per λ / mode / threshold) are recorded for resuming; the report
    shows the chosen ones.
    """
    by_seed: dict[int, list[Mapping[str, Any]]] = {}
    for record in records:
        if record["setting"] not in CANDIDATES:
            by_seed.setdefault(int(record["seed"]), []).append(record)
    return [result for seed, group in by_seed.items() for result in fold_means(seed, group)[0]]



def choose_per_task(
    candidates: Sequence[tuple[Any, Mapping[str, Any]]],
    pairs: Sequence[tuple[str, str]],
) -> dict[str, Any]:
    """Per (corpus, task): the grid point (or context option) whose model scored best on *that* task's validation split.

    A task without a validation score of its own in these models (an auxiliary task whose gold
    labels were replaced, so its validation split has none) falls back to the mean over tasks.
    """
    chosen = {}
    for name, task in pairs:
        key = f"{name}/{task}"

        def score(item: tuple[Any, Mapping[str, Any]], key: str = key) -> float:
            own = item[1].get("validation_scores", {}).get(key)
            return _score(own if own is not None else item[1]["validation_combined_score"])

        chosen[key] = max(candidates, key=score)[0]
    return chosen


def composite(records_by_point: Mapping[Any, Mapping[str, Any]], per_task: Mapping[str, Any], **fields: Any) -> dict[str, Any]:
    """One record whose (corpus, task) numbers come from the model of that task's chosen grid point."""
    first = next(iter(records_by_point.values()))
    results, selected = [], {}
    for key, point in per_task.items():
        record = records_by_point.get(point, first)
        corpus, task = key.split("/", 1)
        results += [r for r in record["results"] if r["corpus"] == corpus and r["task"] == task]
        if key in record.get("selected_steps", {}):
            selected[key] = record["selected_steps"][key]
    # Its models' time is in their own (candidate) records.
    return {**first, "results": results, "selected_steps": selected, "seconds": 0.0, **fields}



def cost(path: Path) -> dict[str, dict[str, float]]:
    """Setting -> models trained, their total and mean seconds (from every record, teachers included)."""
    cost: dict[str, list[float]] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and record.get("seconds"):
                cost.setdefault(str(record.get("setting")), []).append(float(record["seconds"]))
    return {setting: {"models": len(values), "seconds": round(sum(values), 1), "mean": round(sum(values) / len(values), 1)}
            for setting, values in cost.items()}


def probe_record(study: str, seed: int, name: str, task: str, fold: int | None, probe: Any, seconds: float) -> dict[str, Any]:
    """The record of a linear probe: the same for every seed (it has none), recorded once per seed."""
    return {
        "record": "model", "study": study, "seed": seed, "setting": "linear-probe", "model": f"{name}/{task}",
        "fold": fold,
        "validation_combined_score": max(probe.validation.values()),
        "results": [
            {"corpus": name, "task": task, "metric": metric, "value": value}
            for metric, value in probe.test_metrics.items() if metric.startswith(task + "_")
        ],
        "selected_steps": {probe.parameter: probe.value},
        "seconds": round(seconds, 2),  # fitted once: the other seeds' copies record 0
    }


def _rounded(value: float) -> float:
    return round(value, 4) if value == value else value


def fold_means(seed: int, records: Sequence[Mapping[str, Any]]) -> tuple[list[Result], list[Any]]:
    """Each setting's numbers for one seed: the mean over folds of every (corpus, task, metric).

    Records without a fold (a study without a cross-validated corpus, or a model of another
    corpus trained once per seed) count as they are. Predicted-class counts are summed over
    folds (the folds' test sets together cover the corpus once). A model that predicts one
    class on one fold is a collapse the mean would hide: those are returned per fold.
    """
    from mtaffect.metrics import PREDICTED_COUNT
    from mtaffect.statistics import find_collapses

    values: dict[tuple[str, str, str, str], list[float]] = {}
    fold_counts: dict[tuple[str, int, str, str], dict[str, float]] = {}
    for record in records:
        fold = record.get("fold")
        for result in recorded_results(record):
            values.setdefault((result.setting, result.corpus, result.task, result.metric), []).append(result.value)
            marker = f"_{PREDICTED_COUNT}_"
            if fold is not None and marker in result.metric:
                label = result.metric.split(marker, 1)[1]
                fold_counts.setdefault((result.setting, seed, f"{result.corpus} (fold {fold})", result.task), {})[label] = result.value
    results = []
    for (setting, corpus, task, metric), found in values.items():
        value = float(sum(found)) if f"_{PREDICTED_COUNT}_" in metric else float(sum(found) / len(found))
        results.append(Result(setting, seed, corpus, task, metric, value))
    return results, find_collapses(fold_counts)



def check_same_study(records_dir: Path, config: StudyConfig, records: Sequence[Mapping[str, Any]]) -> None:
    """Refuse to resume results recorded under another config, naming what changed."""
    path = records_dir / CONFIG_FILE
    previous = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    current = json.loads(json.dumps(config_record(config), default=str))
    if previous is not None:
        changed = [
            f"{key}: {previous.get(key)!r} -> {current.get(key)!r}"
            for key in sorted(set(previous) | set(current))
            if key not in _NOT_IN_FINGERPRINT and previous.get(key) != current.get(key)
        ]
    else:
        changed = []
    foreign = sorted({str(r.get("study")) for r in records} - {config.fingerprint()})
    if changed or foreign:
        what = "; ".join(changed) if changed else f"fingerprint {foreign[0]}, this config's is {config.fingerprint()}"
        raise ValueError(
            f"{records_dir / RESULTS_FILE}: recorded by a study with another config ({what}), so --resume would "
            "mix two studies. Resume with the config it was run with, or choose another --output-dir, or pass "
            "--overwrite to replace it."
        )



def append_record(path: Path, record: Mapping[str, Any]) -> None:
    """One line in one write, flushed to disk: a kill leaves at most a partial last line (skipped on reading)."""
    line = (json.dumps(record) + "\n").encode("utf-8")
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, line)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)




def _score(value: float) -> float:
    return value if value == value else float("-inf")  # nan ranks last


def choice_record(job: Job, candidates: Sequence[tuple[GridPoint | ContextPoint, Mapping[str, Any]]],
                  plan: StudyPlan) -> dict[str, Any]:
    """The record of a per-task choice: each (corpus, task)'s numbers from the grid point (context
    option) that scored best on that task's own validation split (``choose_per_task``). A single-task
    context choice chooses for its own (corpus, task) only."""
    context = job.setting in CONTEXT_CHOICES
    name = context_name if context else (lambda point: grid_name(*point))
    per_task = choose_per_task(candidates, [(job.corpus, job.task)] if job.corpus else plan.pairs)
    chosen: dict[str, Any] = {"per task": {key: name(point) for key, point in per_task.items()}}
    extra: dict[str, Any] = {}
    if job.setting == "multi-task-weak" or context:
        chosen["validation"] = {
            key: {name(point): _rounded(c.get("validation_scores", {}).get(key, c["validation_combined_score"]))
                  for point, c in candidates}
            for key in per_task
        }
    if job.setting == "multi-task-weak":
        extra["weak_notes"] = candidate_notes(record for _, record in candidates)
    return composite(dict(candidates), per_task, setting=job.setting, model=job.model, chosen=chosen, **extra)


def candidate_notes(records: Any) -> list[str]:
    """The weak-label notes of candidate records, each once, in order."""
    notes: list[str] = []
    for record in records:
        notes.extend(note for note in record.get("weak_notes", []) if note not in notes)
    return notes


@dataclass
class SeedOutcome:
    """Everything one seed produced: test numbers (fold means), what validation chose, weak-label notes."""

    seed: int
    results: list[Result]
    chosen: dict[str, Any]
    weak_notes: list[str]
    #: Collapses inside one fold (hidden by the fold mean): "setting seed corpus task fold" messages.
    fold_collapses: list[Any] = field(default_factory=list)


def seed_outcome(seed: int, seed_jobs: Sequence[Job], records: Mapping[RecordKey, Mapping[str, Any]]) -> SeedOutcome:
    """One seed's numbers, choices and notes from its jobs' records, in plan order (whichever run trained them)."""
    keys = [(job, (job.setting, seed, job.model, job.fold)) for job in seed_jobs
            if job.setting not in (*CANDIDATES, "cross-fit teacher")]
    results, collapses = fold_means(seed, [records[key] for _, key in keys])
    choices = {str(job.fold): records[key]["chosen"] for job, key in keys if job.setting == "multi-task-weak"}
    chosen: dict[str, Any] = dict(choices["None"]) if list(choices) == ["None"] else {"per fold": choices}
    for job, key in keys:  # the context each task chose, per setting (and fold)
        if job.setting in CONTEXT_CHOICES:
            context = chosen.setdefault("context", {}).setdefault(f"{job.setting}{fold_tag(job.fold)}", {})
            context.update(records[key]["chosen"]["per task"])
    chosen["selected steps"] = {
        f"{job.setting} {job.model}{fold_tag(job.fold)}": records[key].get("selected_steps", {}) for job, key in keys
    }
    weak = [records[(job.setting, seed, job.model, job.fold)] for job in seed_jobs if job.setting == CANDIDATE]
    return SeedOutcome(seed, results, chosen, candidate_notes(weak), collapses)
