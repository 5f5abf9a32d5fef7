"""The study: single-task baselines, teachers, weak labels and multi-task models, over seeds.

For every seed:

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

Every model is trained with ``MultiTaskTrainer``, its best
checkpoint chosen on the validation splits (``eval_combined_score``), and evaluated on every
corpus' test split with gold labels only. ``mtaffect.report`` turns the numbers into
``report.json``, ``report.md`` and ``report.png``.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from datasets import DatasetDict

from mtaffect.config_files import read_mapping_file
from mtaffect.data.corpora.synthetic import make_synthetic_family
from mtaffect.data.schema import get_corpus_info, gold_tasks, validate_corpus
from mtaffect.data.sources import CorpusSource, load_sources, parse_sources
from mtaffect.metrics import metric_key, split_metric_key
from mtaffect.recipes import TRAINING_DEFAULTS, fit
from mtaffect.report import REPORT_METRICS, SETTINGS, Result, append_results, write_report
from mtaffect.tasks import TASK_NAMES, check_task
from mtaffect.teachers import choose_teacher, record_teacher, teacher_record_from_corpora
from mtaffect.training.trainer import COMBINED_SCORE
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
        corpora = parse_sources(values.pop("corpora", []) or [], where=f"{where}: corpora")
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
            if mode not in ("soft", "hard"):
                raise ValueError(f"{where}: weak label mode {mode!r} is not 'soft' or 'hard'.")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"{where}: 'workers' must be >= 1, got {self.workers}.")
        for threshold in self.weak_thresholds:
            if threshold is not None and not 0.0 <= threshold <= 1.0:
                raise ValueError(f"{where}: weak threshold {threshold!r} is not in [0, 1].")


@dataclass
class StudyProgress:
    """Handed to the progress callback before each model is trained."""

    step: int
    total: int
    seed: int
    setting: str
    detail: str
    elapsed: float

    @property
    def eta(self) -> float | None:
        return self.elapsed / self.step * (self.total - self.step) if self.step else None


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
    """Train one model with the recipe (``mtaffect.recipes.fit``), best epoch on validation, score on test."""
    fitted = fit(
        train,
        validation,
        test,
        output_dir=work_dir,
        model={**config.model, "weak_loss_weight": weak_loss_weight, "weak_label_mode": weak_label_mode},
        tasks=tasks,
        training={
            "seed": seed,
            "save_only_model": True,
            "disable_tqdm": True,
            "corpus_sampling": config.corpus_sampling,
            "sampling_temperature": config.sampling_temperature,
            "batch_composition": config.batch_composition,
            **config.training,
        },
        config_corpora=dict(all_corpora or train),
        quiet=True,  # the study reports progress itself
    )
    shutil.rmtree(work_dir, ignore_errors=True)
    return TrainedModel(
        model=fitted.model,
        validation_score=float(fitted.eval_metrics.get(metric_key("eval", COMBINED_SCORE), float("nan"))),
        test_metrics=_split_metrics(fitted.test_metrics, list(test), "test"),
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
    teachers: Mapping[tuple[str, str], Any],
    mode: str,
    threshold: float | None,
    replace_auxiliary: bool,
) -> tuple[dict[str, DatasetDict], list[str]]:
    """Corpora with weak labels for their missing tasks (and, optionally, auxiliary ones)."""
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
                teachers[(teacher_corpus, task)],
                task,
                mode=mode,
                threshold=threshold,
                ablation="replace" if auxiliary else None,
                cache=False,
            )
            notes.append(f"{name}/{task}: weak labels from the {teacher_corpus} single-task model"
                         + (" (replacing the gold auxiliary labels)" if auxiliary else ""))
        out[name] = corpus
    return out, notes


def run_study(
    config: StudyConfig | None = None,
    progress: Callable[[StudyProgress], None] | None = None,
) -> dict[str, Path]:
    """Run the whole study and write the report; returns the paths of the written files."""
    config = config or StudyConfig()
    config.validate()
    if config.workers is None:
        config = replace(config, workers=os.cpu_count() or 1)
    with _study_environment(config.torch_threads):
        return _run_study(config, progress)


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
        )

    @property
    def models_per_seed(self) -> int:
        return len(self.pairs) + 1 + len(self.grid) + (1 if self.replaces_gold else 0)


@dataclass
class SeedOutcome:
    """Everything one seed produced: test numbers, what validation chose, weak-label notes."""

    seed: int
    results: list[Result]
    chosen: dict[str, Any]
    weak_notes: list[str]


def run_seed(
    config: StudyConfig,
    seed: int,
    announce: Callable[[int, str, str], None],
    corpora: Mapping[str, DatasetDict] | None = None,
) -> SeedOutcome:
    """Train and evaluate every model of one seed (see the module docstring)."""
    if corpora is None:
        corpora = load_study_corpora(config)
    plan = StudyPlan.build(corpora, config)
    tasks, study_tasks = plan.tasks, plan.study_tasks
    corpora = {name: corpora[name] for name in tasks}
    splits = {split: {name: corpus[split] for name, corpus in corpora.items()} for split in ("train", "validation", "test")}
    results: list[Result] = []
    work_root = Path(tempfile.mkdtemp(prefix=f"mtaffect-study-seed{seed}-"))

    def record(setting: str, trained: TrainedModel, only: Mapping[str, list[str]]) -> None:
        for corpus, metrics in trained.test_metrics.items():
            for metric, value in metrics.items():
                task = metric.split("_", 1)[0]
                if task in only.get(corpus, []):
                    results.append(Result(setting, seed, corpus, task, metric, value))

    try:
        teachers: dict[tuple[str, str], Any] = {}
        for name, task in plan.pairs:
            announce(seed, "single-task", f"{name}/{task}")
            trained = train_and_evaluate(
                {name: corpora[name]["train"]}, {name: corpora[name]["validation"]},
                {name: corpora[name]["test"]}, [task], config, seed, work_root / f"st-{name}-{task}",
                all_corpora={name: corpora[name]},
            )
            record("single-task", trained, {name: [task]})
            _record_as_teacher(trained.model, task, {name: corpora[name]})
            teachers[(name, task)] = trained.model

        announce(seed, "multi-task", "union, gold labels only (λ = 0)")
        control = train_and_evaluate(
            splits["train"], splits["validation"], splits["test"], study_tasks, config, seed,
            work_root / "mt", weak_loss_weight=0.0,
        )
        record("multi-task", control, tasks)

        candidates = []
        weak_notes: list[str] = []
        labelled: dict[tuple[str, float | None], dict[str, DatasetDict]] = {}
        for weight, mode, threshold in plan.grid:
            if (mode, threshold) not in labelled:
                labelled[(mode, threshold)], notes = _weak_labelled(
                    corpora, tasks, study_tasks, teachers, mode, threshold, replace_auxiliary=True
                )
                weak_notes.extend(note for note in notes if note not in weak_notes)
            weak = labelled[(mode, threshold)]
            announce(seed, "multi-task-weak", f"λ={weight} mode={mode} threshold={threshold}")
            trained = train_and_evaluate(
                {n: c["train"] for n, c in weak.items()}, {n: c["validation"] for n, c in weak.items()},
                splits["test"], study_tasks, config, seed, work_root / f"mtw-{len(candidates)}",
                weak_loss_weight=weight, weak_label_mode=mode, all_corpora=weak,
            )
            candidates.append(((weight, mode, threshold), trained))
        (weight, mode, threshold), best = max(candidates, key=lambda item: _score(item[1].validation_score))
        chosen = {
            "weak_loss_weight": weight,
            "weak_label_mode": mode,
            "weak_threshold": threshold,
            "validation_combined_score": {
                f"λ={w} mode={m} threshold={t}": round(c.validation_score, 4) for (w, m, t), c in candidates
            },
        }
        record("multi-task-weak", best, tasks)

        if plan.replaces_gold:
            gold_aux, _ = _weak_labelled(corpora, tasks, study_tasks, teachers, mode, threshold, replace_auxiliary=False)
            announce(seed, "multi-task-gold", f"gold auxiliary labels, λ={weight} mode={mode}")
            trained = train_and_evaluate(
                {n: c["train"] for n, c in gold_aux.items()}, {n: c["validation"] for n, c in gold_aux.items()},
                splits["test"], study_tasks, config, seed, work_root / "mtg",
                weak_loss_weight=weight, weak_label_mode=mode, all_corpora=gold_aux,
            )
            record("multi-task-gold", trained, tasks)
    finally:
        shutil.rmtree(work_root, ignore_errors=True)
    return SeedOutcome(seed, results, chosen, weak_notes)


def _run_seed_in_worker(config: StudyConfig, seed: int, events: Any) -> SeedOutcome:
    """Entry point of a worker process: one seed, progress sent back through ``events``."""
    with _study_environment(config.torch_threads):
        return run_seed(config, seed, lambda *event: events.put(event))


def _run_study(config: StudyConfig, progress: Callable[[StudyProgress], None] | None) -> dict[str, Path]:
    start = time.time()
    output = Path(config.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    results_path = output / "results.jsonl"
    if results_path.exists():
        results_path.unlink()  # our own file from an earlier run of this study
    corpora = load_study_corpora(config)
    plan = StudyPlan.build(corpora, config)
    total = plan.models_per_seed * len(config.seeds)
    step = 0

    def announce(seed: int, setting: str, detail: str) -> None:
        nonlocal step
        step += 1
        event = StudyProgress(step, total, seed, setting, detail, time.time() - start)
        logger.info("[%d/%d] seed %d %s %s", step, total, seed, setting, detail)
        if progress:
            progress(event)

    workers = min(config.workers or 1, len(config.seeds))
    if workers <= 1:
        outcomes = [run_seed(config, seed, announce, corpora) for seed in config.seeds]
    else:
        outcomes = _run_seeds_in_parallel(config, workers, announce)
    # Seeds run in parallel finish in any order; the report lists them in the config's order.
    outcomes = sorted(outcomes, key=lambda o: config.seeds.index(o.seed))
    results: list[Result] = []
    for outcome in outcomes:
        results.extend(outcome.results)
        append_results(results_path, outcome.results)

    tasks = plan.tasks
    metadata = {
        "seeds": list(config.seeds),
        "corpora": {name: {"tasks": own, "primary_task": own[0], "train_size": corpora[name]["train"].num_rows,
                           "feature_set": get_corpus_info(corpora[name]).feature_set}
                    for name, own in tasks.items()},
        "settings": [s for s in SETTINGS if s != "multi-task-gold" or plan.replaces_gold],
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
    paths = write_report(results, output, REPORT_METRICS, metadata)
    paths["results"] = results_path
    return paths


def _run_seeds_in_parallel(
    config: StudyConfig, workers: int, announce: Callable[[int, str, str], None]
) -> list[SeedOutcome]:
    """One process per seed (``spawn``: forking a process that already runs torch threads can hang)."""
    import multiprocessing
    import queue
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(workers, mp_context=context) as pool:
        events = manager.Queue()
        pending = {pool.submit(_run_seed_in_worker, config, seed, events) for seed in config.seeds}
        outcomes = []
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            while True:
                try:
                    announce(*events.get_nowait())
                except queue.Empty:
                    break
            outcomes.extend(future.result() for future in done)
    return outcomes


def _score(value: float) -> float:
    return value if value == value else float("-inf")  # nan ranks last


def _record_as_teacher(model: Any, task: str, corpora: Mapping[str, DatasetDict]) -> None:
    record_teacher(model, teacher_record_from_corpora(task, corpora))


def _config_record(config: StudyConfig) -> dict[str, Any]:
    record = asdict(config)
    record.pop("output_dir", None)
    return record

