"""The study: single-task baselines, teachers, weak labels and multi-task models, over seeds.

For every seed:

0. **linear-probe** — per (corpus, task), logistic / ridge regression on the same pooled
   features (``mtaffect.probe``; regularisation chosen on validation): the simplest baseline,
   computed once per process (it does not depend on the seed).
1. **single-task** — one model per (corpus, task with gold labels), trained on that corpus.
2. **teachers** — those same single-task models. A corpus lacking a task gets weak labels
   from the single-task model of another corpus with that task and the same feature set
   (the largest such corpus; a teacher never labels the corpus it was trained on).
3. **multi-task** — one model, every task, on the union of corpora with gold labels only
   (λ = 0): the control that shows what sharing the encoder alone does.
4. **multi-task-weak** — the same on the union where teachers fill every missing label, and
   where a corpus has gold labels for two tasks, its *auxiliary* (non-primary) task's gold
   labels are replaced by teacher labels. λ (and the weak-label mode and confidence
   threshold, if several are given) is chosen on the validation splits.
5. **multi-task-gold** — as multi-task-weak with the chosen setting, but corpora keep their
   gold auxiliary labels (run only when some corpus has a gold auxiliary task that a teacher
   could replace; otherwise it would be the very same model as multi-task-weak). Comparing 4 and 5
   on those corpora' primary tasks tests "weak labels are nearly as good as gold ones".

Every model is trained with ``MultiTaskTrainer`` with one head per (task, label space) its
corpora use, evaluated on validation at every evaluation step of its Trainer arguments
(``training:`` in the study config; every argument set there is honoured), and each (corpus,
task)'s test numbers are read with the weights of *that task's* best validation step
(``mtaffect.training.selection.PerTaskSelection``; early stopping with ``patience``). Every
choice is made on validation, and the report's metadata lists them (``selected steps``).
A teacher whose label space differs from the corpus' (a [-3, 3] score teacher for MELD's
polarity classes) is converted by ``mtaffect.tasks``' documented rules and the weak-label
notes say so. ``mtaffect.report`` turns the numbers into
``report.json``, ``report.md`` and ``report.png``.

The study is resumable and append-only: each model's numbers are appended to
``results.jsonl`` (one record per seed × setting × model, :func:`model_record`) the moment it
is evaluated, the single-task teachers are kept under ``teachers/`` until their seed is done,
and ``study.json`` holds the config. ``run_study(..., resume=True)`` skips every recorded model
(refusing a changed config), so a study killed mid-way resumes to the same report as an
uninterrupted one; ``mtaffect report`` rebuilds a report from whatever is recorded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from datasets import DatasetDict

from mtaffect.config_files import check_values, field_types, read_mapping_file
from mtaffect.configuration_mtaffect import WEAK_LABEL_MODES
from mtaffect.data.corpora.synthetic import make_synthetic_family
from mtaffect.data.schema import get_corpus_info, gold_tasks, validate_corpus
from mtaffect.data.sources import CorpusSource, load_sources, parse_sources
from mtaffect.eta import StudyEta
from mtaffect.metrics import make_compute_metrics, split_metric_key
from mtaffect.output_folder import OutputFolder
from mtaffect.recipes import TRAINING_DEFAULTS, fit
from mtaffect.report import Result, setting_order, write_report
from mtaffect.tasks import TASK_NAMES, check_task
from mtaffect.teachers import choose_teacher, record_teacher, teacher_record_from_corpora
from mtaffect.weak_labels import add_weak_labels

logger = logging.getLogger(__name__)

#: The training settings a study's report shows (their defaults are the recipe's).
_REPORTED_TRAINING = (
    "num_train_epochs",
    "learning_rate",
    "per_device_train_batch_size",
    "per_device_eval_batch_size",
    "weight_decay",
)


#: Training arguments the study sets for every model itself (a config may not set them).
STUDY_OWNED_TRAINING = frozenset(
    {"seed", "output_dir", "save_only_model", "disable_tqdm", "corpus_sampling", "sampling_temperature",
     "batch_composition"}
)
#: Config fields that do not change any model's numbers (a resumed study may change them).
_NOT_IN_FINGERPRINT = frozenset({"seeds", "workers"})


@dataclass
class StudyConfig:
    """Everything the study varies; JSON/YAML files map onto it field by field.

    Args:
        corpora: the corpora (``mtaffect.data.sources.CorpusSource``: a string
            ``[NAME=]LOCATION`` or a mapping in a file); empty = the synthetic family (see ``synthetic``).
        seeds: training seeds (model initialisation and sampling). Corpora stay fixed.
        tasks: restrict to these tasks (default: every task with gold labels somewhere).
        synthetic: arguments of ``make_synthetic_family``
            for the default corpora (``seed`` is the data seed, fixed across training seeds).
        model: ``MTAffectConfig`` arguments shared by every model.
        training: ``MultiTaskTrainingArguments`` fields shared by every model (epochs, learning
            rate, batch size...), updating ``mtaffect.recipes.TRAINING_DEFAULTS``.
        weak_loss_weights: λ values tried for multi-task-weak (chosen on validation).
        weak_label_modes: ``soft`` and/or ``hard`` (chosen on validation).
        weak_thresholds: teacher-confidence thresholds (``None`` = keep every weak label).
        corpus_sampling: how the multi-task sampler draws corpora (see ``MultiTaskTrainingArguments``).
        sampling_temperature: ``T`` of temperature sampling.
        batch_composition: ``homogeneous`` (one corpus per batch) or ``mixed``.
        torch_threads: CPU threads for torch during the study. The study's models are tiny,
            and one thread trains them fastest (more threads only add synchronisation, and
            collapse when the cores are shared); ``None`` leaves torch's default.
        workers: seeds trained in parallel, one process each (default: one per CPU core,
            at most one per seed). Seeds are independent, so this changes only the wall time.
        output_dir: where the report and per-seed results go.
        patience: stop a model's training after this many evaluations in which no (corpus,
            task) improved on validation (``None``: train for the configured epochs/steps).
            Each task's test numbers are always read at its own best validation step.
        linear_probe: also fit the linear probe (``mtaffect.probe``) per corpus and task, on
            the same features; its numbers are the ``linear-probe`` rows of the report.
    """

    corpora: list[CorpusSource] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    tasks: list[str] | None = None
    synthetic: dict[str, Any] = field(default_factory=lambda: {"seed": 0, "size_scale": 1.0})
    model: dict[str, Any] = field(
        default_factory=lambda: {
            "hidden_size": 32,
            "encoder_type": "transformer",
            "fusion": "concat",
            "num_layers": 1,
            "num_heads": 4,
            "dropout": 0.1,
        }
    )
    training: dict[str, Any] = field(
        default_factory=lambda: {key: TRAINING_DEFAULTS[key] for key in _REPORTED_TRAINING}
    )
    weak_loss_weights: list[float] = field(default_factory=lambda: [0.5, 1.0])
    weak_label_modes: list[str] = field(default_factory=lambda: ["soft"])
    weak_thresholds: list[float | None] = field(default_factory=lambda: [None])
    corpus_sampling: str = "temperature"
    sampling_temperature: float = 2.0
    batch_composition: str = "homogeneous"
    torch_threads: int | None = 1
    workers: int | None = None
    output_dir: str = "mtaffect-output"
    patience: int | None = None
    linear_probe: bool = True

    @classmethod
    def from_file(cls, path: str | Path) -> StudyConfig:
        """Read a JSON or YAML study config (unknown keys are an error, not ignored)."""
        payload = read_mapping_file(path, cls.__dataclass_fields__, what="study config")
        return cls.from_dict(payload, where=str(path))

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any], where: str = "study config") -> StudyConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(payload) - known)
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {unknown}; known fields: {sorted(known)}.")
        values = dict(payload)
        sources = values.pop("corpora", []) or []  # CorpusSource specs: parse_sources checks them
        values = check_values(values, field_types(cls), where)
        for key in ("model", "training", "synthetic"):
            if values.get(key) is not None and not isinstance(values[key], Mapping):
                raise ValueError(f"{where}: '{key}' should be a mapping (key: value lines), got {values[key]!r}.")
        if values.get("training"):
            from mtaffect.training import MultiTaskTrainingArguments

            owned = sorted(set(values["training"]) & STUDY_OWNED_TRAINING)
            if owned:
                raise ValueError(
                    f"{where}: training.{owned[0]} is set by the study itself (it owns {sorted(STUDY_OWNED_TRAINING)}); "
                    "remove it from 'training'."
                )
            values["training"] = check_values(
                dict(values["training"]), field_types(MultiTaskTrainingArguments), where, "training."
            )
        if values.get("model"):
            from mtaffect.configuration_mtaffect import MTAffectConfig

            values["model"] = check_values(dict(values["model"]), field_types(MTAffectConfig), where, "model.", open_ended=True)
            try:
                MTAffectConfig(**values["model"])  # its own range checks (positive sizes, known encoders)
            except (TypeError, ValueError) as error:
                raise ValueError(f"{where}: model: {error}") from None
        corpora = parse_sources(sources, where=f"{where}: corpora")
        defaults = cls()
        for key in ("model", "training", "synthetic"):
            if key in values:
                values[key] = {**getattr(defaults, key), **(values[key] or {})}
        config = cls(corpora=corpora, **values)
        config.validate(where)
        return config

    def validate(self, where: str = "study config") -> None:
        if not self.seeds:
            raise ValueError(f"{where}: 'seeds' must list at least one seed.")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"{where}: 'seeds' has duplicates: {self.seeds}.")
        for task in self.tasks or []:
            check_task(task)
        if not self.weak_loss_weights or any(w <= 0 for w in self.weak_loss_weights):
            raise ValueError(f"{where}: 'weak_loss_weights' must be positive (λ = 0 is the multi-task control).")
        for mode in self.weak_label_modes:
            if mode not in WEAK_LABEL_MODES:
                raise ValueError(f"{where}: weak label mode {mode!r} is not 'soft' or 'hard'.")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"{where}: 'workers' must be >= 1, got {self.workers}.")
        for threshold in self.weak_thresholds:
            if threshold is not None and not 0.0 <= threshold <= 1.0:
                raise ValueError(f"{where}: weak threshold {threshold!r} is not in [0, 1].")
        if self.torch_threads is not None and self.torch_threads < 1:
            raise ValueError(f"{where}: 'torch_threads' must be >= 1 (or null for torch's default), got {self.torch_threads}.")
        if not self.sampling_temperature > 0:
            raise ValueError(f"{where}: 'sampling_temperature' must be > 0, got {self.sampling_temperature}.")
        if self.patience is not None and (not isinstance(self.patience, int) or self.patience < 1):
            raise ValueError(f"{where}: 'patience' must be a positive number of evaluations or null, got {self.patience!r}.")
        for key in ("output_dir", "seed"):
            if key in self.training:
                raise ValueError(f"{where}: training.{key} is set by the study (output_dir: the study's own; seed: 'seeds').")

    def fingerprint(self) -> str:
        """What decides the numbers: every field but the seeds, the workers and the output folder.

        Results recorded under one fingerprint are reused by a resumed study only under the same one.
        """
        record = {k: v for k, v in _config_record(self).items() if k not in _NOT_IN_FINGERPRINT}
        return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class StudyProgress:
    """Handed to the progress callback before each model is trained.

    Args:
        step: this model's number among the models to train in this run (recorded ones
            skipped by a resumed study are not counted).
        total: the models to train in this run.
        eta: seconds left (``mtaffect.eta.StudyEta``): the pace of the finished models (per
            setting, per training row × epoch) applied to the models left, scheduled on the
            workers as the pool runs them (so the tail, fewer seeds left than workers, is
            counted as such). ``None`` until a model has finished.
    """

    step: int
    total: int
    seed: int
    setting: str
    detail: str
    elapsed: float
    eta: float | None = None


# ------------------------------------------------------------------------------------------
# Corpora


def load_study_corpora(config: StudyConfig) -> dict[str, DatasetDict]:
    """The study's corpora, validated, keyed by name."""
    if not config.corpora:
        corpora = make_synthetic_family(**config.synthetic)
    else:
        corpora = load_sources(config.corpora)
    for name, corpus in corpora.items():
        missing = [split for split in ("train", "validation", "test") if split not in corpus]
        if missing:
            raise ValueError(
                f"Corpus {name!r} has splits {sorted(corpus)}; the study needs train, validation and test "
                f"(missing {missing}). Pick a fold/protocol option that yields all three."
            )
        validate_corpus(corpus)
    return corpora


def corpus_tasks(corpora: Mapping[str, DatasetDict], config: StudyConfig) -> dict[str, list[str]]:
    """Gold tasks per corpus, primary task first (restricted to ``config.tasks``)."""
    primary = {s.name: s.primary_task for s in config.corpora if s.primary_task}
    tasks: dict[str, list[str]] = {}
    for name, corpus in corpora.items():
        found = gold_tasks(corpus["train"])
        listed = [t for t in get_corpus_info(corpus).tasks if t in found]
        ordered = listed + [t for t in found if t not in listed]
        if name in primary:
            check_task(primary[name])
            if primary[name] not in ordered:
                raise ValueError(f"Corpus {name!r}: primary_task {primary[name]!r} has no gold label in train.")
            ordered.remove(primary[name])
            ordered.insert(0, primary[name])
        if config.tasks:
            ordered = [t for t in ordered if t in config.tasks]
        if ordered:
            tasks[name] = ordered
        else:
            logger.warning("Corpus %s has no gold label for the study's tasks: left out.", name)
    return tasks


# ------------------------------------------------------------------------------------------
# Training one model


@dataclass
class TrainedModel:
    model: Any
    validation_score: float
    test_metrics: dict[str, dict[str, float]]  # corpus -> metric -> value
    #: "corpus/task" -> {"step", "metric", "score"}: the validation step each task's test numbers come from.
    selection: dict[str, dict[str, Any]] = field(default_factory=dict)


#: Trainer arguments every study model gets unless ``StudyConfig.training`` sets them.
STUDY_TRAINING_DEFAULTS: dict[str, Any] = {
    "eval_strategy": "epoch",
    "save_strategy": "no",  # the per-task selection keeps its best weights in memory
    "load_best_model_at_end": False,  # no single best model: each task reads its own best step
    "metric_for_best_model": None,
    "greater_is_better": None,
    "logging_strategy": "epoch",
}


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
) -> TrainedModel:
    """Train one model with the recipe (``mtaffect.recipes.fit``); each (corpus, task) is scored on test at its own best validation step.

    The Trainer arguments are the recipe's defaults, then the study's (sampling; no
    checkpoints, no single "best model" on a mean over corpora: ``STUDY_TRAINING_DEFAULTS``),
    then everything ``config.training`` sets, which wins (``eval_strategy: steps`` with
    ``eval_steps: 50`` evaluates every 50 steps). ``PerTaskSelection`` watches each evaluation
    (early stopping after ``config.patience`` evaluations without any task improving) and
    ``MultiTaskTrainer.evaluate_per_task`` reads each task's test metrics with the weights of
    its best validation step. The validation score (what λ is chosen on) is the mean over
    (corpus, task) of those best validation scores.
    """
    from mtaffect.training.selection import PerTaskSelection

    selection = PerTaskSelection(patience=config.patience)
    fitted = fit(
        train,
        validation,
        None,
        output_dir=work_dir,
        model={**config.model, "weak_loss_weight": weak_loss_weight, "weak_label_mode": weak_label_mode},
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
    choices = selection.choices()
    signed = [best["signed"] for best in selection.best.values()]
    shutil.rmtree(work_dir, ignore_errors=True)
    return TrainedModel(
        model=fitted.model,
        validation_score=float(sum(signed) / len(signed)) if signed else float("nan"),
        test_metrics=_split_metrics(test_metrics, list(test), "test"),
        selection=choices,
    )


def _split_metrics(metrics: Mapping[str, float], corpora: Sequence[str], prefix: str) -> dict[str, dict[str, float]]:
    """``test_<corpus>_<task>_<metric>`` keys -> {corpus: {"<task>_<metric>": value}}."""
    per_corpus: dict[str, dict[str, float]] = {name: {} for name in corpora}
    for key, value in metrics.items():
        parsed = split_metric_key(key, corpora)
        if parsed and parsed.prefix == prefix and parsed.corpus in per_corpus and parsed.task:
            per_corpus[parsed.corpus][parsed.name] = float(value)
    return per_corpus


# ------------------------------------------------------------------------------------------
# The study


def _weak_labelled(
    corpora: Mapping[str, DatasetDict],
    tasks: Mapping[str, list[str]],
    study_tasks: Sequence[str],
    teachers: Callable[[str, str], Any],
    mode: str,
    threshold: float | None,
    replace_auxiliary: bool,
) -> tuple[dict[str, DatasetDict], list[str]]:
    """Corpora with weak labels for their missing tasks (and, optionally, auxiliary ones).

    ``teachers(corpus, task)`` gives the single-task model of that corpus and task.
    """
    out: dict[str, DatasetDict] = {}
    notes: list[str] = []
    for name, corpus in corpora.items():
        own = tasks[name]
        for task in study_tasks:
            teacher_corpus = choose_teacher(name, task, corpora, tasks)
            auxiliary = task in own[1:]
            if task in own and not (auxiliary and replace_auxiliary):
                continue
            if teacher_corpus is None:
                notes.append(f"{name}/{task}: no teacher with the same feature set; left without {task} labels"
                             + (" (gold auxiliary labels kept)" if auxiliary else ""))
                continue
            corpus = add_weak_labels(
                corpus,
                teachers(teacher_corpus, task),
                task,
                mode=mode,
                threshold=threshold,
                ablation="replace" if auxiliary else None,
                cache=False,
                convert=True,
            )
            rule = get_corpus_info(corpus).notes.get("weak_labels", {}).get(task, {}).get("conversion", "none")
            notes.append(f"{name}/{task}: weak labels from the {teacher_corpus} single-task model"
                         + (" (replacing the gold auxiliary labels)" if auxiliary else "")
                         + (f", converted {rule}" if rule != "none" else ""))
        out[name] = corpus
    return out, notes


def run_study(
    config: StudyConfig | None = None,
    progress: Callable[[StudyProgress], None] | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Run the whole study and write the report; returns the paths of the written files.

    Args:
        resume: continue the study recorded in ``config.output_dir`` (same config): models
            already in its ``results.jsonl`` are not trained again.
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
    with _study_environment(config.torch_threads):
        return _run_study(config, progress, resume=resume, overwrite=overwrite)


@contextmanager
def _study_environment(threads: int | None) -> Iterator[None]:
    """Thread count and quiet progress bars for the study, restored afterwards.

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


@dataclass
class StudyPlan:
    """What one seed of the study trains: derived once from the corpora and the config."""

    tasks: dict[str, list[str]]
    study_tasks: list[str]
    pairs: list[tuple[str, str]]
    grid: list[tuple[float, str, float | None]]
    #: Some corpus has a gold auxiliary task a teacher can replace; without one, multi-task-gold
    #: would be the very same model as multi-task-weak, so it is not trained.
    replaces_gold: bool
    #: The linear probe runs (``StudyConfig.linear_probe``).
    probe: bool = True

    @classmethod
    def build(cls, corpora: Mapping[str, DatasetDict], config: StudyConfig) -> StudyPlan:
        tasks = corpus_tasks(corpora, config)
        return cls(
            tasks=tasks,
            study_tasks=[t for t in TASK_NAMES if any(t in own for own in tasks.values())],
            pairs=[(name, task) for name, own in tasks.items() for task in own],
            grid=[
                (weight, mode, threshold)
                for weight in config.weak_loss_weights
                for mode in config.weak_label_modes
                for threshold in config.weak_thresholds
            ],
            replaces_gold=any(
                choose_teacher(name, task, corpora, tasks) is not None
                for name, own in tasks.items()
                for task in own[1:]
            ),
            probe=config.linear_probe,
        )

    @property
    def models_per_seed(self) -> int:
        """Steps announced per seed: a probe per (corpus, task) when on, then every model."""
        return (len(self.pairs) if self.probe else 0) + len(self.pairs) + 1 + len(self.grid) + (1 if self.replaces_gold else 0)


@dataclass
class SeedOutcome:
    """Everything one seed produced: test numbers, what validation chose, weak-label notes."""

    seed: int
    results: list[Result]
    chosen: dict[str, Any]
    weak_notes: list[str]


# ------------------------------------------------------------------------------------------
# Records: one JSON line per trained model in results.jsonl

#: What a study folder holds besides its report (``report.json``/``.md``/``.png``).
RESULTS_FILE = "results.jsonl"
CONFIG_FILE = "study.json"
TEACHERS_DIR = "teachers"
#: The setting of the multi-task-weak candidates (one per λ / mode / threshold); the chosen
#: one is recorded again as ``multi-task-weak``.
CANDIDATE = "multi-task-weak candidate"


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
        {"corpus": corpus, "task": metric.split("_", 1)[0], "metric": metric, "value": value}
        for corpus, metrics in trained.test_metrics.items()
        for metric, value in metrics.items()
        if metric.split("_", 1)[0] in only.get(corpus, []) and not metric.endswith("_selected_step")
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
        "results": results,
        "selected_steps": selected,
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
    """Seed -> what validation chose for multi-task-weak, from the records."""
    return {str(r["seed"]): r["chosen"] for r in records if r["setting"] == "multi-task-weak" and "chosen" in r}


class StudyInterrupted(KeyboardInterrupt):
    """Ctrl-C during the study: every finished model is recorded; the message says how to resume."""


# ------------------------------------------------------------------------------------------
# One seed


def _model_names(plan: StudyPlan) -> list[tuple[str, str, str]]:
    """(setting, model, detail) of the models of a seed trained before the choice, in order."""
    names = [("linear-probe", f"{name}/{task}", f"{name}/{task}") for name, task in plan.pairs] if plan.probe else []
    names += [("single-task", f"{name}/{task}", f"{name}/{task}") for name, task in plan.pairs]
    names.append(("multi-task", "union", "union, gold labels only (λ = 0)"))
    names.extend((CANDIDATE, _grid_name(w, m, t), _grid_name(w, m, t)) for w, m, t in plan.grid)
    return names


def _grid_name(weight: float, mode: str, threshold: float | None) -> str:
    return f"λ={weight} mode={mode} threshold={threshold}"


def run_seed(
    config: StudyConfig,
    seed: int,
    announce: Callable[[int, str, str], None],
    corpora: Mapping[str, DatasetDict] | None = None,
    done: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
    emit: Callable[[dict[str, Any]], None] | None = None,
    teacher_dir: Path | None = None,
) -> SeedOutcome:
    """Train and evaluate every model of one seed (see the module docstring).

    Args:
        done: records of this seed already in the results file, by (setting, model): those
            models are not trained again (a resumed study).
        emit: called with each new record the moment its model is evaluated.
        teacher_dir: where the single-task models are kept (so a resumed seed can still
            weak-label with them); a temporary folder when ``None``.
    """
    if corpora is None:
        corpora = load_study_corpora(config)
    study = config.fingerprint()
    plan = StudyPlan.build(corpora, config)
    tasks, study_tasks = plan.tasks, plan.study_tasks
    corpora = {name: corpora[name] for name in tasks}
    splits = {split: {name: corpus[split] for name, corpus in corpora.items()} for split in ("train", "validation", "test")}
    work_root = Path(tempfile.mkdtemp(prefix=f"mtaffect-study-seed{seed}-"))
    teacher_root = teacher_dir if teacher_dir is not None else work_root / TEACHERS_DIR
    records: dict[tuple[str, str], Mapping[str, Any]] = dict(done or {})

    def keep(record: dict[str, Any]) -> None:
        records[(record["setting"], record["model"])] = record
        if emit is not None:
            emit(record)

    def train_single(name: str, task: str) -> TrainedModel:
        trained = train_and_evaluate(
            {name: corpora[name]["train"]}, {name: corpora[name]["validation"]},
            {name: corpora[name]["test"]}, [task], config, seed, work_root / f"st-{name}-{task}",
            all_corpora={name: corpora[name]},
        )
        _record_as_teacher(trained.model, task, {name: corpora[name]})
        return trained

    teachers: dict[tuple[str, str], Any] = {}

    def teacher(name: str, task: str) -> Any:
        """The single-task model of (name, task), read back from disk: the same whether resumed or not."""
        if (name, task) not in teachers:
            folder = teacher_root / f"{name}--{task}"
            if not (folder / "model.safetensors").is_file():
                logger.info("Seed %d: the %s/%s teacher is not on disk; training it again.", seed, name, task)
                _save_teacher(train_single(name, task).model, folder)
            teachers[(name, task)] = _load_teacher(folder)
        return teachers[(name, task)]

    labelled: dict[tuple[str, float | None, bool], tuple[dict[str, DatasetDict], list[str]]] = {}

    def weak_corpora(mode: str, threshold: float | None, replace_auxiliary: bool) -> tuple[dict[str, DatasetDict], list[str]]:
        key = (mode, threshold, replace_auxiliary)
        if key not in labelled:
            labelled[key] = _weak_labelled(corpora, tasks, study_tasks, teacher, mode, threshold, replace_auxiliary)
        return labelled[key]

    try:
        for name, task in plan.pairs if plan.probe else []:
            if ("linear-probe", f"{name}/{task}") in records:
                continue
            announce(seed, "linear-probe", f"{name}/{task}")
            probe = _linear_probe(name, corpora[name], task)
            keep({
                "record": "model", "study": study, "seed": seed, "setting": "linear-probe", "model": f"{name}/{task}",
                "validation_combined_score": max(probe.validation.values()),
                "results": [
                    {"corpus": name, "task": task, "metric": metric, "value": value}
                    for metric, value in probe.test_metrics.items() if metric.startswith(task + "_")
                ],
                "selected_steps": {probe.parameter: probe.value},
            })
        for name, task in plan.pairs:
            if ("single-task", f"{name}/{task}") in records:
                continue
            announce(seed, "single-task", f"{name}/{task}")
            trained = train_single(name, task)
            _save_teacher(trained.model, teacher_root / f"{name}--{task}")
            keep(model_record(study, seed, "single-task", f"{name}/{task}", trained, {name: [task]}))

        if ("multi-task", "union") not in records:
            announce(seed, "multi-task", "union, gold labels only (λ = 0)")
            control = train_and_evaluate(
                splits["train"], splits["validation"], splits["test"], study_tasks, config, seed,
                work_root / "mt", weak_loss_weight=0.0,
            )
            keep(model_record(study, seed, "multi-task", "union", control, tasks))

        for index, (weight, mode, threshold) in enumerate(plan.grid):
            grid_name = _grid_name(weight, mode, threshold)
            if (CANDIDATE, grid_name) in records:
                continue
            weak, notes = weak_corpora(mode, threshold, True)
            announce(seed, "multi-task-weak", grid_name)
            trained = train_and_evaluate(
                {n: c["train"] for n, c in weak.items()}, {n: c["validation"] for n, c in weak.items()},
                splits["test"], study_tasks, config, seed, work_root / f"mtw-{index}",
                weak_loss_weight=weight, weak_label_mode=mode, all_corpora=weak,
            )
            keep(model_record(study, seed, CANDIDATE, grid_name, trained, tasks, weak_notes=notes))

        candidates = [(point, records[(CANDIDATE, _grid_name(*point))]) for point in plan.grid]
        (weight, mode, threshold), best = max(candidates, key=lambda item: _score(item[1]["validation_combined_score"]))
        weak_notes: list[str] = []
        for _, candidate in candidates:
            weak_notes.extend(note for note in candidate.get("weak_notes", []) if note not in weak_notes)
        chosen = {
            "weak_loss_weight": weight,
            "weak_label_mode": mode,
            "weak_threshold": threshold,
            "validation_combined_score": {
                _grid_name(*point): round(c["validation_combined_score"], 4) for point, c in candidates
            },
        }
        chosen_name = _grid_name(weight, mode, threshold)
        if ("multi-task-weak", chosen_name) not in records:
            keep({**best, "setting": "multi-task-weak", "chosen": chosen, "weak_notes": weak_notes})

        gold_name = f"gold auxiliary labels, λ={weight} mode={mode}"
        if plan.replaces_gold and ("multi-task-gold", gold_name) not in records:
            gold_aux, _ = weak_corpora(mode, threshold, False)
            announce(seed, "multi-task-gold", gold_name)
            trained = train_and_evaluate(
                {n: c["train"] for n, c in gold_aux.items()}, {n: c["validation"] for n, c in gold_aux.items()},
                splits["test"], study_tasks, config, seed, work_root / "mtg",
                weak_loss_weight=weight, weak_label_mode=mode, all_corpora=gold_aux,
            )
            keep(model_record(study, seed, "multi-task-gold", gold_name, trained, tasks))
    finally:
        shutil.rmtree(work_root, ignore_errors=True)
    # Results in training order, whichever run trained them: a resumed study reports the same.
    order = [(setting, model) for setting, model, _ in _model_names(plan) if setting != CANDIDATE]
    order.append(("multi-task-weak", chosen_name))
    if plan.replaces_gold:
        order.append(("multi-task-gold", gold_name))
    results = [result for key in order for result in recorded_results(records[key])]
    chosen["selected steps"] = {f"{setting} {model}": records[(setting, model)].get("selected_steps", {}) for setting, model in order}
    return SeedOutcome(seed, results, chosen, weak_notes)


def _save_teacher(model: Any, folder: Path) -> None:
    """The model's config and weights (safetensors), no model card: a working file, not a release."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    model.config.to_json_file(str(folder / "config.json"))
    save_file({key: value.detach().contiguous() for key, value in model.state_dict().items()},
              str(folder / "model.safetensors"))


_PROBES: dict[tuple[str, str, str], Any] = {}


def _linear_probe(name: str, corpus: DatasetDict, task: str) -> Any:
    """The linear probe of (corpus, task), computed once per process: it does not depend on the seed."""
    from mtaffect.probe import linear_probe

    key = (name, task, corpus["train"]._fingerprint)
    if key not in _PROBES:
        _PROBES[key] = linear_probe(corpus, task)
    return _PROBES[key]


def _load_teacher(folder: Path) -> Any:
    from safetensors.torch import load_file

    from mtaffect.configuration_mtaffect import MTAffectConfig
    from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect

    model = MTAffectForMultiTaskAffect(MTAffectConfig.from_json_file(str(folder / "config.json")))
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    return model.eval()


#: Set in a worker process once the main process has asked it to stop (SIGTERM).
_STOPPING = False


def _run_seed_in_worker(
    config: StudyConfig, seed: int, events: Any, done: Mapping[tuple[str, str], Any], teacher_dir: Path
) -> SeedOutcome:
    """Entry point of a worker process: one seed; progress and records go back through ``events``.

    SIGTERM from the main process ends the seed as ``SystemExit``, which the pool sends back as
    this call's outcome; the worker then declines the seeds still queued for it (they raise
    ``SystemExit`` at once) until the pool's shutdown sentinel lets it exit normally, running
    its finalizers (see ``_start_worker``).
    """
    global _STOPPING
    guard = _InterruptGuard(signal.SIGTERM, SystemExit)

    def announce(*event: Any) -> None:
        guard.check()
        events.put(("announce", event))

    def emit(record: dict[str, Any]) -> None:
        events.put(("record", record))
        guard.check()

    try:
        with guard, _study_environment(config.torch_threads):
            if _STOPPING:  # asked to stop before this seed started (checked with the guard in place: no gap)
                raise SystemExit
            return run_seed(config, seed, announce, done=done, emit=emit, teacher_dir=teacher_dir)
    finally:
        _STOPPING = _STOPPING or guard.hit


def _note_stop(signum: int, frame: Any) -> None:
    """SIGTERM in a worker between seeds: noted, so the next seed is declined (the worker is idle)."""
    global _STOPPING
    _STOPPING = True


def _start_worker() -> None:
    """Initializer of a worker process: Ctrl-C is the main process's, SIGTERM a request to stop.

    * SIGINT is ignored (it is also blocked from the worker's start, see
      ``_run_seeds_in_parallel``): the main process stops every worker and prints the one line
      that says how to resume, instead of each worker printing a traceback.
    * SIGTERM between seeds only notes the stop. Raising there (in the pool's wait for work)
      would end the process outside the pool's protocol, which the pool reads as a crash;
      ending it by default would skip the finalizers and leave named semaphores to the
      resource tracker's "leaked semaphore" warning. During a seed, ``_run_seed_in_worker``'s
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


# ------------------------------------------------------------------------------------------
# The whole study


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


def _check_same_study(records_dir: Path, config: StudyConfig, records: Sequence[Mapping[str, Any]]) -> None:
    """Refuse to resume results recorded under another config, naming what changed."""
    path = records_dir / CONFIG_FILE
    previous = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    current = json.loads(json.dumps(_config_record(config), default=str))
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


def _run_study(
    config: StudyConfig,
    progress: Callable[[StudyProgress], None] | None,
    resume: bool = False,
    overwrite: bool = False,
) -> dict[str, Path]:
    start = time.time()
    folder, records_dir = _study_folder(config, resume, overwrite)
    results_path = records_dir / RESULTS_FILE
    previous = read_records(results_path) if resume and results_path.is_file() else []
    if previous:
        _check_same_study(records_dir, config, previous)
    records_dir.mkdir(parents=True, exist_ok=True)
    (records_dir / CONFIG_FILE).write_text(json.dumps(_config_record(config), indent=1, default=str) + "\n")
    corpora = load_study_corpora(config)
    plan = StudyPlan.build(corpora, config)
    done_by_seed: dict[int, dict[tuple[str, str], Mapping[str, Any]]] = {seed: {} for seed in config.seeds}
    for record in previous:
        if int(record["seed"]) in done_by_seed:
            done_by_seed[int(record["seed"])][(record["setting"], record["model"])] = record

    # A model's work ~ its training rows x epochs (a probe's: its rows, it has no epochs), and
    # models of a setting share a pace: the ETA (mtaffect.eta) weighs them by both.
    epochs = float(config.training.get("num_train_epochs") or 1)
    rows = {name: corpora[name]["train"].num_rows for name in plan.tasks}

    def work(setting: str, detail: str) -> float:
        own = rows.get(detail.split("/", 1)[0])
        if setting == "linear-probe" and own is not None:
            return float(own)
        if setting == "single-task" and own is not None:
            return own * epochs
        return sum(rows.values()) * epochs

    todo = []
    for seed in config.seeds:
        done = done_by_seed[seed]
        todo.extend(
            (seed, "multi-task-weak" if setting == CANDIDATE else setting, detail)
            for setting, model, detail in _model_names(plan)
            if (setting, model) not in done
        )
        if plan.replaces_gold and not any(setting == "multi-task-gold" for setting, _ in done):
            todo.append((seed, "multi-task-gold", ""))
    total = len(todo)
    reused = sum(len(done) for done in done_by_seed.values())
    if reused:
        logger.info("Resuming: %d recorded model(s) reused, %d to train.", reused, total)
    state: dict[str, Any] = {"step": 0}

    def announce(seed: int, setting: str, detail: str) -> None:
        guard.check()
        now = time.time()
        state["step"] += 1
        clock.started(seed, setting, work(setting, detail), now)
        event = StudyProgress(state["step"], total, seed, setting, detail, now - start, clock.remaining(now))
        logger.info("[%d/%d] seed %d %s %s", state["step"], total, seed, setting, detail)
        if progress:
            progress(event)

    def emit(record: dict[str, Any]) -> None:
        _append_record(results_path, record)
        guard.check()
        clock.finished(int(record["seed"]), time.time())

    teachers = records_dir / TEACHERS_DIR
    workers = min(config.workers or 1, len(config.seeds))
    clock = StudyEta({seed: [(s, work(s, d)) for t, s, d in todo if t == seed] for seed in config.seeds}, workers)
    guard = _InterruptGuard()
    try:
        guard.__enter__()
        if workers <= 1:
            outcomes = [
                run_seed(config, seed, announce, corpora, done_by_seed[seed], emit, teachers / f"seed{seed}")
                for seed in config.seeds
            ]
        else:
            outcomes = _run_seeds_in_parallel(config, workers, announce, emit, done_by_seed, teachers)
        guard.check()
    except KeyboardInterrupt:
        recorded = len(read_records(results_path)) if results_path.is_file() else 0
        raise StudyInterrupted(
            f"interrupted; the {recorded} model record(s) finished so far are in {results_path}. "
            "Run the same command with --resume to continue."
        ) from None
    finally:
        guard.__exit__()
    shutil.rmtree(teachers, ignore_errors=True)  # every seed is done: nothing is left to weak-label
    # Seeds run in parallel finish in any order; the report lists them in the config's order.
    outcomes = sorted(outcomes, key=lambda o: config.seeds.index(o.seed))
    results = [result for outcome in outcomes for result in outcome.results]

    tasks = plan.tasks
    metadata = {
        "seeds": list(config.seeds),
        "corpora": {name: {"tasks": own, "primary_task": own[0], "train_size": corpora[name]["train"].num_rows,
                           "feature_set": get_corpus_info(corpora[name]).feature_set}
                    for name, own in tasks.items()},
        "settings": setting_order(r.setting for r in results),
        "chosen on validation (per seed)": {str(o.seed): o.chosen for o in outcomes},
        "weak labels": outcomes[0].weak_notes if outcomes else [],
        "model": config.model,
        "training": config.training,
        "sampling": {"strategy": config.corpus_sampling, "temperature": config.sampling_temperature,
                     "batch_composition": config.batch_composition},
        "workers": workers,
        "wall_time_seconds": round(time.time() - start, 1),
        "config": _config_record(config),
    }
    if records_dir == folder.target:
        with folder.staging(replace_all=False, check=False) as report_dir:
            written = write_report(results, report_dir, metadata=metadata)
    else:
        written = write_report(results, records_dir, metadata=metadata)
        folder.commit(records_dir)  # replaces the earlier study; the user's own files stay
    paths = {kind: folder.target / Path(path).name for kind, path in written.items()}
    paths["results"] = folder.target / RESULTS_FILE
    return paths


class _InterruptGuard:
    """Ctrl-C that cannot be lost: noted as well as raised, and checked again between models.

    Python swallows an exception raised inside ``__del__`` (printing "Exception ignored"
    with a traceback); a SIGINT landing there would neither stop the study nor be silent.
    The handler notes it, the unraisable hook drops that one message, and the next model
    boundary raises it again.
    """

    def __init__(self, signum: int = signal.SIGINT, exception: type[BaseException] = KeyboardInterrupt) -> None:
        self.signum, self.exception = signum, exception
        self.hit = False
        self._previous: Any = None
        self._previous_hook: Any = None

    def __enter__(self) -> _InterruptGuard:
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


def _append_record(path: Path, record: Mapping[str, Any]) -> None:
    """One line in one write, flushed to disk: a kill leaves at most a partial last line (skipped on reading)."""
    line = (json.dumps(record) + "\n").encode("utf-8")
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, line)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _run_seeds_in_parallel(
    config: StudyConfig,
    workers: int,
    announce: Callable[[int, str, str], None],
    emit: Callable[[dict[str, Any]], None],
    done_by_seed: Mapping[int, Mapping[tuple[str, str], Any]],
    teachers: Path,
) -> list[SeedOutcome]:
    """One process per seed (``spawn``: forking a process that already runs torch threads can hang).

    Workers leave Ctrl-C to the main process, which stops them all (and says how to resume)
    instead of every worker printing its own traceback. Records reach the results file
    through the main process only, so the lines of two seeds never interleave.

    Stopping is the pool's own shutdown, so that every worker exits normally and releases its
    semaphores (a killed one leaves them to the resource tracker, which warns at exit): the
    queued seeds are cancelled, SIGTERM ends the running ones (``_run_seed_in_worker``), and
    the pool's sentinels end the workers. Only a worker still alive after 30 s is killed.
    """
    import multiprocessing
    import queue
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from multiprocessing import connection, resource_tracker

    context = multiprocessing.get_context("spawn")
    manager = pool = events = None

    def drain() -> None:
        while events is not None:
            try:
                kind, payload = events.get_nowait()
            except queue.Empty:
                return
            if kind == "announce":
                announce(*payload)
            else:
                emit(payload)

    try:
        # The resource tracker starts first: starting, it blocks SIGINT for itself and unblocks it
        # after, which would unblock it for the manager and the workers too (see _sigint_held).
        resource_tracker.ensure_running()
        with _sigint_held():
            manager = context.Manager()
            events = manager.Queue()
            pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker)
            pending = {
                pool.submit(
                    _run_seed_in_worker, config, seed, events, dict(done_by_seed[seed]), teachers / f"seed{seed}"
                )
                for seed in config.seeds
            }
        outcomes = []
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            drain()
            outcomes.extend(future.result() for future in done)
        drain()
    except BaseException:
        if pool is not None:
            processes = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)  # queued seeds never start; sentinels follow
            for process in processes:
                process.terminate()  # SIGTERM: SystemExit in a running seed, a noted stop in an idle worker
            # Its sentinel says whether a worker ended: `is_alive()` can be wrong here, the pool's
            # own thread may reap the process first (its `waitpid` then fails in this thread).
            deadline = time.time() + 30
            for process in processes:
                if not connection.wait([process.sentinel], timeout=max(0.0, deadline - time.time())):
                    logger.warning("A worker did not stop within 30 s; killing it.")
                    process.kill()
                    process.join(timeout=5)
        try:
            drain()  # records of models that finished just before the interrupt
        except Exception:  # noqa: BLE001 - the manager may be gone already
            pass
        if manager is not None:
            manager.shutdown()
        raise
    pool.shutdown()
    manager.shutdown()
    return outcomes


@contextmanager
def _sigint_held() -> Iterator[None]:
    """A Ctrl-C during the block is held back to its end, and the processes started in it ignore it.

    SIGINT is blocked in this thread, and a spawned process inherits the mask: the manager and
    the workers cannot take a Ctrl-C before they ignore it (a traceback each). It can still
    reach another thread of this process, so the handler only notes it: raised in the middle
    of ``Manager()``, it would leave the manager process running, and the exit waiting on it.
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


def _score(value: float) -> float:
    return value if value == value else float("-inf")  # nan ranks last


def _record_as_teacher(model: Any, task: str, corpora: Mapping[str, DatasetDict]) -> None:
    record_teacher(model, teacher_record_from_corpora(task, corpora))


def _config_record(config: StudyConfig) -> dict[str, Any]:
    record = asdict(config)
    record.pop("output_dir", None)
    return record

