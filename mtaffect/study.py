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
5. **multi-task-gold** — the same grid, but corpora keep their gold auxiliary labels (run only
   when some corpus has a gold auxiliary task that a teacher could replace; otherwise it would
   be the very same model as multi-task-weak). Comparing 4 and 5 on those corpora's primary
   tasks tests "weak labels are nearly as good as gold ones".

In 4 and 5 each (corpus, task)'s numbers come from the grid point (λ, mode, threshold) whose
model scored best on *that task's* validation split, so λ is chosen on the target task, not on
a mean over corpora. A corpus' gold auxiliary labels are replaced by **cross-fitted
same-corpus teachers** (``cross_fit_folds``, default 5; ``mtaffect.teachers.cross_fit_teachers``):
K single-task models of that corpus and task, each trained and selected on the rows outside
one fold and labelling the rows inside it, so no row is labelled by a model that saw it and
the weak labels are in the corpus' own label space (MELD's 3 polarity classes for MELD's
sentiment). They are trained once per study (``cross_fit_seed``), before the seeds.

A corpus given as **folds** (``folds: 5`` in its source: MUStARD's 5-fold protocol) is
cross-validated inside the one study: every model that reads it is trained once per fold, the
other corpora's single-task models and probes once per seed, and each seed's number is the
mean over folds (predicted-class counts: their sum; a model that predicts one class on one
fold is reported as a collapse of that fold).

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
        cross_fit_folds: K of the cross-fitted same-corpus teachers that replace a corpus'
            gold *auxiliary* labels in multi-task-weak (``mtaffect.teachers.cross_fit_teachers``:
            each row labelled by a teacher that never saw it, in the corpus' own label space),
            so that multi-task-weak vs multi-task-gold compares like with like. ``None``: use
            another corpus' single-task model where one exists (the pre-cross-fitting study).
        cross_fit_seed: seed of the folds and of the cross-fitted teachers' training. They are
            trained once per study, not per training seed: every seed reads the same weak
            labels, as it reads the same corpora.
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
    cross_fit_folds: int | None = 5
    cross_fit_seed: int = 0

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
        if self.cross_fit_folds is not None and self.cross_fit_folds < 2:
            raise ValueError(f"{where}: 'cross_fit_folds' must be >= 2 (or null for teachers of other corpora), "
                             f"got {self.cross_fit_folds}.")
        folded = [source.name for source in self.corpora if source.folds is not None]
        if len(folded) > 1:
            raise ValueError(f"{where}: corpora {folded} are all given as folds; a study cross-validates one corpus "
                             "(give the others as plain train/validation/test corpora).")
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
    """The study's corpora, validated, keyed by name (a corpus given as folds: its first fold)."""
    return load_study_folds(config)[0]


def load_study_folds(config: StudyConfig) -> list[dict[str, DatasetDict]]:
    """The study's corpora once per fold of its cross-validated corpus (one entry without one).

    Every entry holds every corpus; only the cross-validated corpus (``folds`` in its source)
    differs between entries, and the other corpora are the very same objects, loaded once.
    """
    if not config.corpora:
        return [_checked(make_synthetic_family(**config.synthetic))]
    folded = [source for source in config.corpora if source.folds is not None]
    plain = load_sources([source for source in config.corpora if source.folds is None])
    if not folded:
        return [_checked({source.name: plain[source.name] for source in config.corpora})]
    versions = [load_sources([fold])[folded[0].name] for fold in folded[0].fold_sources()]
    return [
        _checked({source.name: version if source is folded[0] else plain[source.name] for source in config.corpora})
        for version in versions
    ]


def _checked(corpora: dict[str, DatasetDict]) -> dict[str, DatasetDict]:
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
    #: "corpus/task" -> its best validation score, oriented so that higher is better (what a
    #: per-task choice of λ compares).
    validation_scores: dict[str, float] = field(default_factory=dict)
    #: Wall-clock seconds to train and evaluate the model (what a study's cost is made of).
    seconds: float = 0.0


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

    started = time.time()
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
        validation_scores={name: float(best["signed"]) for name, best in selection.best.items()},
        seconds=time.time() - started,
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
    cross_fitted: Mapping[tuple[str, str], Any] | None = None,
) -> tuple[dict[str, DatasetDict], list[str]]:
    """Corpora with weak labels for their missing tasks (and, optionally, auxiliary ones).

    ``teachers(corpus, task)`` gives the single-task model of that corpus and task. A gold
    auxiliary task with cross-fitted teachers (``cross_fitted[(corpus, task)]``) is replaced
    by their out-of-fold labels, in the corpus' own label space; without, by another
    corpus' single-task model (``choose_teacher``), converted where the spaces differ.
    """
    from mtaffect.weak_labels import add_cross_fitted_weak_labels, weak_label_quality

    out: dict[str, DatasetDict] = {}
    notes: list[str] = []
    for name, corpus in corpora.items():
        own = tasks[name]
        for task in study_tasks:
            auxiliary = task in own[1:]
            if task in own and not (auxiliary and replace_auxiliary):
                continue
            if auxiliary and (name, task) in (cross_fitted or {}):
                fitted = cross_fitted[(name, task)]
                labelled = add_cross_fitted_weak_labels(corpus, fitted, mode=mode, threshold=threshold)
                quality = weak_label_quality(labelled["train"], task, gold=corpus["train"])
                agreement = (f"; out-of-fold agreement with the gold train labels: weighted F1 {quality['weighted_f1']:.3f} "
                             f"(majority class {quality['majority_weighted_f1']:.3f})"
                             if "weighted_f1" in quality and "majority_weighted_f1" in quality else "")
                notes.append(f"{name}/{task}: weak labels from {fitted.k} cross-fitted {name} {task} teachers "
                             "(each row labelled by the teacher blind to its fold), replacing the gold auxiliary labels"
                             + agreement)
                corpus = labelled
                continue
            teacher_corpus = choose_teacher(name, task, corpora, tasks)
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
    #: Folds of the cross-validated corpus (1: none).
    folds: int = 1
    #: The cross-validated corpus (``folds`` in its source), if any.
    fold_corpus: str | None = None
    #: (corpus, auxiliary task) pairs whose gold labels cross-fitted same-corpus teachers replace.
    cross_fit: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def build(cls, corpora: Mapping[str, DatasetDict], config: StudyConfig) -> StudyPlan:
        tasks = corpus_tasks(corpora, config)
        folded = [source for source in config.corpora if source.folds is not None and source.name in tasks]
        cross_fit = [(name, task) for name, own in tasks.items() for task in own[1:]] if config.cross_fit_folds else []
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
            replaces_gold=bool(cross_fit) or any(
                choose_teacher(name, task, corpora, tasks) is not None
                for name, own in tasks.items()
                for task in own[1:]
            ),
            probe=config.linear_probe,
            folds=folded[0].num_folds if folded else 1,
            fold_corpus=folded[0].name if folded else None,
            cross_fit=cross_fit,
        )

    def corpus_folds(self, name: str) -> list[int | None]:
        """The folds a model of ``name`` alone is trained on: every fold for the cross-validated corpus."""
        return list(range(self.folds)) if name == self.fold_corpus else [None]

    @property
    def union_folds(self) -> list[int | None]:
        """The folds a model of the union is trained on (every fold when one corpus is cross-validated)."""
        return list(range(self.folds)) if self.fold_corpus else [None]

    @property
    def models_per_seed(self) -> int:
        """Steps announced per seed: a probe per (corpus, task) when on, then every model."""
        alone = sum(len(self.corpus_folds(name)) for name, _ in self.pairs)
        union = 1 + len(self.grid) * (2 if self.replaces_gold else 1)
        return (alone if self.probe else 0) + alone + union * len(self.union_folds)


@dataclass
class SeedOutcome:
    """Everything one seed produced: test numbers (fold means), what validation chose, weak-label notes."""

    seed: int
    results: list[Result]
    chosen: dict[str, Any]
    weak_notes: list[str]
    #: Collapses inside one fold (hidden by the fold mean): "setting seed corpus task fold" messages.
    fold_collapses: list[Any] = field(default_factory=list)


# ------------------------------------------------------------------------------------------
# Records: one JSON line per trained model in results.jsonl

#: What a study folder holds besides its report (``report.json``/``.md``/``.png``).
RESULTS_FILE = "results.jsonl"
CONFIG_FILE = "study.json"
TEACHERS_DIR = "teachers"
#: Under ``TEACHERS_DIR``: the cross-fitted teachers, shared by every seed.
CROSS_FIT_DIR = "cross-fit"
#: The setting of the multi-task-weak candidates (one per λ / mode / threshold); the chosen
#: one is recorded again as ``multi-task-weak``.
CANDIDATE = "multi-task-weak candidate"
#: The setting of the multi-task-gold models (one per grid point some corpus' primary task chose).
GOLD_CANDIDATE = "multi-task-gold candidate"


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
    """The report's results of model records: per seed, the mean over folds (``_fold_means``).

    The candidates (one model per λ / mode / threshold) are recorded for resuming; the report
    shows the chosen ones.
    """
    by_seed: dict[int, list[Mapping[str, Any]]] = {}
    for record in records:
        if record["setting"] not in (CANDIDATE, GOLD_CANDIDATE):
            by_seed.setdefault(int(record["seed"]), []).append(record)
    return [result for seed, group in by_seed.items() for result in _fold_means(seed, group)[0]]


class StudyInterrupted(KeyboardInterrupt):
    """Ctrl-C during the study: every finished model is recorded; the message says how to resume."""


# ------------------------------------------------------------------------------------------
# One seed


def _model_names(plan: StudyPlan) -> list[tuple[str, str, str, int | None]]:
    """(setting, model, detail, fold) of the models of a seed trained before the choice, in order."""
    alone = [(name, task, fold) for name, task in plan.pairs for fold in plan.corpus_folds(name)]
    names = [("linear-probe", f"{n}/{t}", f"{n}/{t}{_fold_tag(f)}", f) for n, t, f in alone] if plan.probe else []
    names += [("single-task", f"{n}/{t}", f"{n}/{t}{_fold_tag(f)}", f) for n, t, f in alone]
    for fold in plan.union_folds:
        names.append(("multi-task", "union", f"union, gold labels only (λ = 0){_fold_tag(fold)}", fold))
        names.extend((CANDIDATE, _grid_name(w, m, t), _grid_name(w, m, t) + _fold_tag(fold), fold) for w, m, t in plan.grid)
    return names


def _fold_tag(fold: int | None) -> str:
    return "" if fold is None else f" [fold {fold}]"


def _grid_name(weight: float, mode: str, threshold: float | None) -> str:
    return f"λ={weight} mode={mode} threshold={threshold}"


def _choose_per_task(
    candidates: Sequence[tuple[tuple[float, str, float | None], Mapping[str, Any]]],
    pairs: Sequence[tuple[str, str]],
) -> dict[str, tuple[float, str, float | None]]:
    """Per (corpus, task): the grid point whose model scored best on *that* task's validation split.

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


def _composite(records_by_point: Mapping[Any, Mapping[str, Any]], per_task: Mapping[str, Any], **fields: Any) -> dict[str, Any]:
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


def run_seed(
    config: StudyConfig,
    seed: int,
    announce: Callable[[int, str, str], None],
    corpora: Sequence[Mapping[str, DatasetDict]] | Mapping[str, DatasetDict] | None = None,
    done: Mapping[tuple[str, str, int | None], Mapping[str, Any]] | None = None,
    emit: Callable[[dict[str, Any]], None] | None = None,
    teacher_dir: Path | None = None,
    cross_fit_dir: Path | None = None,
) -> SeedOutcome:
    """Train and evaluate every model of one seed (see the module docstring).

    Args:
        corpora: the study's corpora per fold (``load_study_folds``), or one mapping when no
            corpus is cross-validated; loaded from the config when ``None``.
        done: records of this seed already in the results file, by (setting, model, fold):
            those models are not trained again (a resumed study).
        emit: called with each new record the moment its model is evaluated.
        teacher_dir: where the single-task models are kept (so a resumed seed can still
            weak-label with them); a temporary folder when ``None``.
        cross_fit_dir: where ``prepare_cross_fits`` saved the cross-fitted teachers (trained
            once per study, not per seed); trained here, into a temporary folder, when ``None``.
    """
    if corpora is None:
        corpora = load_study_folds(config)
    by_fold = [corpora] if isinstance(corpora, Mapping) else list(corpora)
    study = config.fingerprint()
    plan = StudyPlan.build(by_fold[0], config)
    tasks, study_tasks = plan.tasks, plan.study_tasks
    by_fold = [{name: fold_corpora[name] for name in tasks} for fold_corpora in by_fold]
    work_root = Path(tempfile.mkdtemp(prefix=f"mtaffect-study-seed{seed}-"))
    teacher_root = teacher_dir if teacher_dir is not None else work_root / TEACHERS_DIR
    records: dict[tuple[str, str, int | None], Mapping[str, Any]] = dict(done or {})

    def at(fold: int | None) -> dict[str, DatasetDict]:
        return by_fold[fold or 0]

    def keep(record: dict[str, Any]) -> None:
        records[(record["setting"], record["model"], record.get("fold"))] = record
        if emit is not None:
            emit(record)

    def train_single(name: str, task: str, fold: int | None) -> TrainedModel:
        corpus = at(fold)[name]
        trained = train_and_evaluate(
            {name: corpus["train"]}, {name: corpus["validation"]}, {name: corpus["test"]}, [task], config, seed,
            work_root / f"st-{name}-{task}-{fold}", all_corpora={name: corpus},
        )
        _record_as_teacher(trained.model, task, {name: corpus})
        return trained

    def teacher_folder(name: str, task: str, fold: int | None) -> Path:
        return teacher_root / f"{name}--{task}{'' if fold is None else f'--fold{fold}'}"

    teachers: dict[tuple[str, str, int | None], Any] = {}

    def teacher_of(fold: int | None) -> Callable[[str, str], Any]:
        def teacher(name: str, task: str) -> Any:
            """The single-task model of (name, task), read back from disk: the same whether resumed or not."""
            own_fold = fold if name == plan.fold_corpus else None
            if (name, task, own_fold) not in teachers:
                folder = teacher_folder(name, task, own_fold)
                if not (folder / "model.safetensors").is_file():
                    logger.info("Seed %d: the %s/%s teacher is not on disk; training it again.", seed, name, task)
                    _save_teacher(train_single(name, task, own_fold).model, folder)
                teachers[(name, task, own_fold)] = _load_teacher(folder)
            return teachers[(name, task, own_fold)]

        return teacher

    labelled: dict[tuple[int | None, str, float | None, bool], tuple[dict[str, DatasetDict], list[str]]] = {}
    cross_fits: dict[int | None, dict[tuple[str, str], Any]] = {}

    def weak_corpora(fold: int | None, mode: str, threshold: float | None, replace_auxiliary: bool):
        key = (fold, mode, threshold, replace_auxiliary)
        if key not in labelled:
            if replace_auxiliary and fold not in cross_fits:
                root = cross_fit_dir if cross_fit_dir is not None else (
                teacher_dir.parent / CROSS_FIT_DIR if teacher_dir is not None else work_root / CROSS_FIT_DIR)
                cross_fits[fold] = {
                    (name, task): load_cross_fit(config, at(fold)[name], name, task,
                                                 fold if name == plan.fold_corpus else None, root, announce, emit)
                    for name, task in plan.cross_fit
                }
            labelled[key] = _weak_labelled(at(fold), tasks, study_tasks, teacher_of(fold), mode, threshold,
                                           replace_auxiliary, cross_fits.get(fold))
        return labelled[key]

    def union(fold: int | None, corpora_: Mapping[str, DatasetDict], split: str) -> dict[str, Any]:
        return {name: corpus[split] for name, corpus in corpora_.items()}

    def grid_model(setting: str, point: tuple[float, str, float | None]) -> str:
        return _grid_name(*point) if setting == CANDIDATE else f"gold auxiliary labels, {_grid_name(*point)}"

    def grid_records(fold: int | None, setting: str) -> list[tuple[tuple[float, str, float | None], Mapping[str, Any]]]:
        return [(point, records[(setting, grid_model(setting, point), fold)]) for point in plan.grid]

    def train_grid(fold: int | None, shown: str, replace_auxiliary: bool) -> dict[str, tuple[float, str, float | None]]:
        """One model per grid point (recorded as candidates); returns the point each (corpus, task) chose."""
        setting = CANDIDATE if replace_auxiliary else GOLD_CANDIDATE
        for index, point in enumerate(plan.grid):
            name = grid_model(setting, point)
            if (setting, name, fold) in records:
                continue
            weight, mode, threshold = point
            labelled_corpora, notes = weak_corpora(fold, mode, threshold, replace_auxiliary)
            announce(seed, shown, name + _fold_tag(fold))
            trained = train_and_evaluate(
                union(fold, labelled_corpora, "train"), union(fold, labelled_corpora, "validation"),
                union(fold, at(fold), "test"), study_tasks, config, seed, work_root / f"{setting}-{fold}-{index}",
                weak_loss_weight=weight, weak_label_mode=mode, all_corpora=labelled_corpora,
            )
            extra = {"weak_notes": notes} if replace_auxiliary else {}
            keep(model_record(study, seed, setting, name, trained, tasks, fold=fold, **extra))
        candidates = grid_records(fold, setting)
        if replace_auxiliary:
            for _, candidate in candidates:
                outcome_notes.extend(n for n in candidate.get("weak_notes", []) if n not in outcome_notes)
        return _choose_per_task(candidates, plan.pairs)

    outcome_notes: list[str] = []
    chosen_by_fold: dict[str, Any] = {}
    try:
        for name, task in plan.pairs if plan.probe else []:
            for fold in plan.corpus_folds(name):
                if ("linear-probe", f"{name}/{task}", fold) in records:
                    continue  # a study fits its probes once, before the seeds (see _run_study)
                announce(seed, "linear-probe", f"{name}/{task}{_fold_tag(fold)}")
                started = time.time()
                probe = _linear_probe(name, at(fold)[name], task)
                keep(_probe_record(study, seed, name, task, fold, probe, time.time() - started))
        for name, task in plan.pairs:
            for fold in plan.corpus_folds(name):
                if ("single-task", f"{name}/{task}", fold) in records:
                    continue
                announce(seed, "single-task", f"{name}/{task}{_fold_tag(fold)}")
                trained = train_single(name, task, fold)
                _save_teacher(trained.model, teacher_folder(name, task, fold))
                keep(model_record(study, seed, "single-task", f"{name}/{task}", trained, {name: [task]}, fold=fold))

        for fold in plan.union_folds:
            corpora_f = at(fold)
            if ("multi-task", "union", fold) not in records:
                announce(seed, "multi-task", f"union, gold labels only (λ = 0){_fold_tag(fold)}")
                control = train_and_evaluate(
                    union(fold, corpora_f, "train"), union(fold, corpora_f, "validation"), union(fold, corpora_f, "test"),
                    study_tasks, config, seed, work_root / f"mt-{fold}", weak_loss_weight=0.0, all_corpora=corpora_f,
                )
                keep(model_record(study, seed, "multi-task", "union", control, tasks, fold=fold))

            # multi-task-weak: the grid with the auxiliary labels replaced; then (where that replaced
            # any) multi-task-gold: the same grid with them kept. λ chosen per task on its own
            # validation score in both: weak and gold labels compared like with like.
            per_task = train_grid(fold, "multi-task-weak", True)
            chosen = {
                "per task": {key: _grid_name(*point) for key, point in per_task.items()},
                "validation": {
                    key: {_grid_name(*point): _rounded(c.get("validation_scores", {}).get(key, c["validation_combined_score"]))
                          for point, c in grid_records(fold, CANDIDATE)}
                    for key in per_task
                },
            }
            chosen_by_fold[str(fold)] = chosen
            if ("multi-task-weak", "chosen per task", fold) not in records:
                keep(_composite(dict(grid_records(fold, CANDIDATE)), per_task, setting="multi-task-weak",
                                model="chosen per task", chosen=chosen, weak_notes=outcome_notes))
            if plan.replaces_gold:
                gold_per_task = train_grid(fold, "multi-task-gold", False)
                if ("multi-task-gold", "chosen per task", fold) not in records:
                    keep(_composite(dict(grid_records(fold, GOLD_CANDIDATE)), gold_per_task, setting="multi-task-gold",
                                    model="chosen per task",
                                    chosen={"per task": {k: _grid_name(*p) for k, p in gold_per_task.items()}}))
    finally:
        shutil.rmtree(work_root, ignore_errors=True)
    # Results in training order, whichever run trained them: a resumed study reports the same.
    order = [(setting, model, fold) for setting, model, _, fold in _model_names(plan) if setting != CANDIDATE]
    for fold in plan.union_folds:
        order.append(("multi-task-weak", "chosen per task", fold))
        if plan.replaces_gold:
            order.append(("multi-task-gold", "chosen per task", fold))
    results, collapses = _fold_means(seed, [records[key] for key in order])
    chosen_record: dict[str, Any] = (dict(chosen_by_fold["None"]) if list(chosen_by_fold) == ["None"]
                                     else {"per fold": chosen_by_fold})
    chosen_record["selected steps"] = {
        f"{setting} {model}{_fold_tag(fold)}": records[(setting, model, fold)].get("selected_steps", {})
        for setting, model, fold in order
    }
    return SeedOutcome(seed, results, chosen_record, outcome_notes, collapses)


def _cost(path: Path) -> dict[str, dict[str, float]]:
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


def _probe_record(study: str, seed: int, name: str, task: str, fold: int | None, probe: Any, seconds: float) -> dict[str, Any]:
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


def _fold_means(seed: int, records: Sequence[Mapping[str, Any]]) -> tuple[list[Result], list[Any]]:
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


def load_cross_fit(
    config: StudyConfig,
    corpus: DatasetDict,
    name: str,
    task: str,
    fold: int | None,
    root: Path,
    announce: Callable[[int, str, str], None] | None = None,
    emit: Callable[[dict[str, Any]], None] | None = None,
) -> Any:
    """The cross-fitted teachers of (corpus, task): read from ``root`` if saved, else trained and saved.

    Trained once per study with ``config.cross_fit_seed`` (folds and weights), whatever the
    training seed, so every seed and setting reads the same weak labels (as they read the same
    corpora). ``cross_fit.json`` is written after the K teachers, so a half-saved cross-fit
    (an interrupted study) is trained again rather than used.
    """
    from mtaffect.data.arrow import column_values
    from mtaffect.teachers import CrossFittedTeachers, cross_fit_splits, cross_fit_teachers

    k, seed = int(config.cross_fit_folds or 0), config.cross_fit_seed
    folder = root / f"{name}--{task}{'' if fold is None else f'--fold{fold}'}"
    manifest = folder / "cross_fit.json"
    if manifest.is_file():
        saved = json.loads(manifest.read_text(encoding="utf-8"))
        if saved.get("k") == k and saved.get("seed") == seed and saved.get("rows") == _split_rows(corpus):
            folds, parts = cross_fit_splits(corpus, k, seed)
            return CrossFittedTeachers(
                task, [_load_teacher(folder / f"teacher-{j}") for j in range(k)], folds,
                [{split: [str(i) for i in column_values(part[split], "id")] for split in part} for part in parts], seed,
            )
    work = Path(tempfile.mkdtemp(prefix="mtaffect-cross-fit-"))

    def train(part: DatasetDict, j: int) -> Any:
        detail = f"{name}/{task} {j + 1}/{k}{_fold_tag(fold)}"
        if announce is not None:
            announce(config.seeds[0], "cross-fit teacher", detail)
        trained = train_and_evaluate(
            {name: part["train"]}, {name: part["validation"]}, {name: part["validation"]}, [task], config, seed,
            work / f"teacher-{j}", all_corpora={name: corpus},
        )
        _record_as_teacher(trained.model, task, {name: part})
        _save_teacher(trained.model, folder / f"teacher-{j}")
        if emit is not None:
            emit({"record": "teacher", "study": config.fingerprint(), "seed": config.seeds[0],
                  "setting": "cross-fit teacher", "model": detail, "fold": fold,
                  "validation_combined_score": trained.validation_score, "seconds": round(trained.seconds, 2)})
        return trained.model.eval()

    try:
        fitted = cross_fit_teachers(corpus, task, k, train, seed=seed)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    manifest.write_text(json.dumps({"k": k, "seed": seed, "rows": _split_rows(corpus)}) + "\n", encoding="utf-8")
    return fitted


def prepare_cross_fits(
    config: StudyConfig,
    by_fold: Sequence[Mapping[str, DatasetDict]],
    root: Path,
    announce: Callable[[int, str, str], None] | None = None,
    emit: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Train every cross-fitted teacher of the study once, before the seeds (which then read them)."""
    plan = StudyPlan.build(by_fold[0], config)
    for name, task in plan.cross_fit:
        for fold in plan.corpus_folds(name):
            load_cross_fit(config, by_fold[fold or 0][name], name, task, fold, root, announce, emit)


def _split_rows(corpus: DatasetDict) -> dict[str, int]:
    return {split: corpus[split].num_rows for split in corpus}


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
    by_fold = load_study_folds(config)
    corpora = by_fold[0]
    plan = StudyPlan.build(corpora, config)
    done_by_seed: dict[int, dict[tuple[str, str, int | None], Mapping[str, Any]]] = {seed: {} for seed in config.seeds}
    for record in previous:
        if int(record["seed"]) in done_by_seed:
            done_by_seed[int(record["seed"])][(record["setting"], record["model"], record.get("fold"))] = record

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
        if setting == "cross-fit teacher" and own is not None:  # trained on (K-1)/K of the rows
            return own * epochs * (1 - 1 / (config.cross_fit_folds or 2))
        return sum(rows.values()) * epochs

    teachers = records_dir / TEACHERS_DIR
    cross_fit_dir = teachers / CROSS_FIT_DIR
    todo = [
        (config.seeds[0], "cross-fit teacher", f"{name}/{task} {j + 1}/{config.cross_fit_folds}{_fold_tag(fold)}")
        for name, task in plan.cross_fit
        for fold in plan.corpus_folds(name)
        if not (cross_fit_dir / f"{name}--{task}{'' if fold is None else f'--fold{fold}'}" / "cross_fit.json").is_file()
        and not all(("multi-task-weak", "chosen per task", f) in done_by_seed[s] for s in config.seeds for f in plan.union_folds)
        for j in range(config.cross_fit_folds or 0)
    ]
    # The probes have no seed: fitted once, before the seeds, and recorded for each.
    probes = [
        (setting, model, detail, fold) for setting, model, detail, fold in _model_names(plan)
        if setting == "linear-probe" and any((setting, model, fold) not in done_by_seed[s] for s in config.seeds)
    ]
    todo.extend((next(s for s in config.seeds if (setting, model, fold) not in done_by_seed[s]), setting, detail)
                for setting, model, detail, fold in probes)
    for seed in config.seeds:
        done = done_by_seed[seed]
        todo.extend(
            (seed, "multi-task-weak" if setting == CANDIDATE else setting, detail)
            for setting, model, detail, fold in _model_names(plan)
            if setting != "linear-probe" and (setting, model, fold) not in done
        )
        if plan.replaces_gold:
            todo.extend((seed, "multi-task-gold", "") for fold in plan.union_folds for point in plan.grid
                        if (GOLD_CANDIDATE, f"gold auxiliary labels, {_grid_name(*point)}", fold) not in done)
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

    workers = min(config.workers or 1, len(config.seeds))
    clock = StudyEta({seed: [(s, work(s, d)) for t, s, d in todo if t == seed] for seed in config.seeds}, workers)
    guard = _InterruptGuard()
    try:
        guard.__enter__()
        study = config.fingerprint()
        for _, model, detail, fold in probes:
            name, task = model.split("/", 1)
            missing = [s for s in config.seeds if ("linear-probe", model, fold) not in done_by_seed[s]]
            announce(missing[0], "linear-probe", detail)
            started = time.time()
            probe = _linear_probe(name, by_fold[fold or 0][name], task)
            for index, seed in enumerate(missing):
                record = _probe_record(study, seed, name, task, fold, probe, time.time() - started if index == 0 else 0.0)
                emit(record)
                done_by_seed[seed][("linear-probe", model, fold)] = record
        if any(s == "cross-fit teacher" for _, s, _ in todo):
            # Once per study, before the seeds: every seed (and worker) then reads them from disk.
            prepare_cross_fits(config, by_fold, cross_fit_dir, announce, emit)
        if workers <= 1:
            outcomes = [
                run_seed(config, seed, announce, by_fold, done_by_seed[seed], emit, teachers / f"seed{seed}")
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
    fold_collapses = [collapse for outcome in outcomes for collapse in outcome.fold_collapses]

    tasks = plan.tasks
    metadata = {
        "seeds": list(config.seeds),
        "corpora": {name: {"tasks": own, "primary_task": own[0], "train_size": corpora[name]["train"].num_rows,
                           "feature_set": get_corpus_info(corpora[name]).feature_set}
                    for name, own in tasks.items()},
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
        "workers": workers,
        "wall_time_seconds": round(time.time() - start, 1),
        "model seconds per setting": _cost(results_path),
        "config": _config_record(config),
    }
    if records_dir == folder.target:
        with folder.staging(replace_all=False, check=False) as report_dir:
            written = write_report(results, report_dir, metadata=metadata, collapses=fold_collapses)
    else:
        written = write_report(results, records_dir, metadata=metadata, collapses=fold_collapses)
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

