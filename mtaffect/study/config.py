"""The study's config: what it varies, how it is checked, what decides its numbers, its corpora.

``StudyConfig`` maps a JSON/YAML file field by field; ``fingerprint`` names the numbers it
decides (a resumed study must have the same one); ``load_study_folds`` loads its corpora once
per fold of a cross-validated corpus.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from datasets import DatasetDict

from mtaffect.config_files import check_values, field_types, read_mapping_file
from mtaffect.configuration_mtaffect import WEAK_LABEL_MODES
from mtaffect.data.context import ContextOptions
from mtaffect.data.corpora.synthetic import make_synthetic_family
from mtaffect.data.schema import get_corpus_info, gold_tasks, validate_corpus
from mtaffect.data.sources import CorpusSource, load_sources, parse_sources
from mtaffect.recipes import ENCODER_TRAINING_DEFAULTS, TRAINING_DEFAULTS, model_encoders, trains_an_encoder
from mtaffect.tasks import check_task

logger = logging.getLogger(__name__)

#: The training settings a study's report shows (their defaults are the recipe's).
_REPORTED_TRAINING = (
    "num_train_epochs",
    "learning_rate",
    "per_device_train_batch_size",
    "per_device_eval_batch_size",
    "weight_decay",
)


#: How long every model of the default study trains: at least 600 optimisation steps, evaluated every
#: 50 (each task read at its best step on validation). Epochs alone starve a small corpus trained alone:
#: with 5 epochs a single-task model on synthetic IEMOCAP (400 rows) took 65 steps where the multi-task
#: model on the union took 290, and scored 14 points under the linear probe.
STEP_BUDGET: dict[str, Any] = {
    "min_steps": 600,
    "eval_strategy": "steps",
    "eval_steps": 50,
    "logging_strategy": "steps",
    "logging_steps": 50,
}


#: Training arguments the study sets for every model itself (a config may not set them).
STUDY_OWNED_TRAINING = frozenset(
    {"seed", "output_dir", "save_only_model", "disable_tqdm", "corpus_sampling", "sampling_temperature",
     "batch_composition"}
)
#: Config fields that do not change any model's numbers (a resumed study may change them).
_NOT_IN_FINGERPRINT = frozenset({"seeds", "workers", "backend", "resources_per_job"})
#: The executors that run a study's jobs (``mtaffect.study.executors``).
BACKENDS = ("local", "ray")
#: The settings a study trains, each a kind of job (``resources_per_job`` may differ per setting).
JOB_SETTINGS = ("linear-probe", "cross-fit teacher", "single-task", "multi-task", "multi-task-weak", "multi-task-gold",
                "single-task + context", "multi-task + context")


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
            rate, batch size...), updating ``mtaffect.recipes.TRAINING_DEFAULTS``. The default
            adds ``STEP_BUDGET``: at least 600 optimisation steps per model, evaluated every 50,
            so a corpus trained alone gets the steps the union gets. A config file's ``training``
            updates the recipe's defaults without it (``min_steps`` there sets a budget).
        weak_loss_weights: λ values tried for multi-task-weak (chosen on validation).
        weak_label_modes: ``soft`` and/or ``hard`` (chosen on validation).
        weak_thresholds: teacher-confidence thresholds (``None`` = keep every weak label).
        corpus_sampling: how the multi-task sampler draws corpora (see ``MultiTaskTrainingArguments``).
        sampling_temperature: ``T`` of temperature sampling.
        batch_composition: ``homogeneous`` (one corpus per batch) or ``mixed``.
        torch_threads: CPU threads for torch during the study. The study's models are tiny,
            and one thread trains them fastest (more threads only add synchronisation, and
            collapse when the cores are shared); ``None`` leaves torch's default.
        workers: jobs (models) trained in parallel by the ``local`` backend, one process each
            (default: one per CPU core; 1 trains them one after another in this process). Jobs
            are deterministic on their own, so this changes only the wall time.
        backend: which executor runs the jobs: ``{name: local}`` (processes on this machine,
            the default) or ``{name: ray, address: auto}`` (Ray Core tasks on a running
            cluster; no address: a Ray instance on this machine). Does not change the numbers.
        resources_per_job: what one job asks the ``ray`` backend for: ``{cpu: 1, gpu: 0.25}``,
            and per setting where it differs (``{cpu: 1, gpu: 0.25, single-task: {gpu: 1}}``).
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
        context_grid: conversational context compared against none (``mtaffect.data.context``):
            each entry a number of past turns or ``{past: K, future: J, speakers: true}``. Every
            single-task and multi-task (gold labels) model is trained again with each, and per
            (corpus, task) the one best on that task's validation split is reported as
            ``single-task + context`` / ``multi-task + context``, paired by seed with the
            context-free models. Teachers stay context-free. Corpora read from their published
            files get the most turns any entry reads; ``model.context`` (every model reads the
            same context) cannot be set as well. Empty: no context settings.
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
        default_factory=lambda: {**{key: TRAINING_DEFAULTS[key] for key in _REPORTED_TRAINING}, **STEP_BUDGET}
    )
    weak_loss_weights: list[float] = field(default_factory=lambda: [0.5, 1.0])
    weak_label_modes: list[str] = field(default_factory=lambda: ["soft"])
    weak_thresholds: list[float | None] = field(default_factory=lambda: [None])
    corpus_sampling: str = "temperature"
    sampling_temperature: float = 2.0
    batch_composition: str = "homogeneous"
    torch_threads: int | None = 1
    workers: int | None = None
    backend: dict[str, Any] = field(default_factory=lambda: {"name": "local"})
    resources_per_job: dict[str, Any] = field(default_factory=lambda: {"cpu": 1, "gpu": 0})
    output_dir: str = "mtaffect-output"
    patience: int | None = None
    linear_probe: bool = True
    cross_fit_folds: int | None = 5
    cross_fit_seed: int = 0
    context_grid: list[Any] = field(default_factory=list)

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
        for key in ("model", "training", "synthetic", "backend", "resources_per_job"):
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
                base = dict(getattr(defaults, key))
                if key == "training":  # a config's own training: the recipe's defaults, not the default study's budget
                    base = {name: value for name, value in base.items() if name not in STEP_BUDGET}
                values[key] = {**base, **(values[key] or {})}
        if trains_an_encoder(model_encoders(values.get("model") or {})):
            # A fine-tuned encoder's schedule (mtaffect.recipes.ENCODER_TRAINING_DEFAULTS) under what the file sets
            # (its own schedule: not the default study's step budget either).
            given = dict(payload.get("training") or {})
            recipe = {name: value for name, value in defaults.training.items() if name not in STEP_BUDGET}
            values["training"] = {**recipe, **ENCODER_TRAINING_DEFAULTS, **given}
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
        self.check_training(where)
        self.context_options(where)
        _check_backend(self.backend, where)
        job_resources(self.resources_per_job, "single-task", where)

    def context_options(self, where: str = "study config") -> list[ContextOptions]:
        """The ``context_grid`` entries as ``ContextOptions``, checked: each reads some context, none twice,
        and not beside ``model.context``."""
        options = [ContextOptions.from_value(value, where=f"{where}: context_grid[{i}]")
                   for i, value in enumerate(self.context_grid or [])]
        for i, option in enumerate(options):
            if not option.enabled:
                raise ValueError(f"{where}: context_grid[{i}] reads no turns ({self.context_grid[i]!r}); the study "
                                 "compares against the context-free models itself: list only K > 0.")
            if option in options[:i]:
                raise ValueError(f"{where}: context_grid lists {self.context_grid[i]!r} twice.")
        if options and ContextOptions.from_value(self.model.get("context"), where=f"{where}: model.context").enabled:
            raise ValueError(f"{where}: model.context makes every model read context, context_grid compares context "
                             "against none: set one of the two.")
        return options

    def context_turns(self) -> tuple[int, int]:
        """The most (past, future) turns any of the study's models reads: what its corpora are loaded with."""
        options = [ContextOptions.from_value(self.model.get("context")), *self.context_options()]
        return max(o.past for o in options), max(o.future for o in options)

    def check_training(self, where: str = "study config", names: Mapping[str, str] | None = None) -> None:
        """Every model's training arguments, built as each job builds them, before anything is trained
        (a negative learning rate failed in torch after the probes and teachers had trained).

        Args:
            where: what the messages name (the config file).
            names: training field -> how the user set it (``mtaffect run``'s flag), named instead of
                ``where: training.<field>``.
        """
        from mtaffect.recipes import training_arguments
        from mtaffect.training.arguments import MultiTaskTrainingArgumentError

        names = dict(names or {})
        for seed in self.seeds:
            try:
                training_arguments({**self.training, "seed": seed, "output_dir": "."})
            except MultiTaskTrainingArgumentError as error:
                key = names.get(error.field) or (f"{where}: " + ("seeds" if error.field == "seed" else
                                                                   f"training.{error.field}"))
                raise ValueError(f"{key}: {error.field} = {error.value!r}: {error.requirement}.") from None
            except ValueError as error:
                raise ValueError(f"{where}: training: {error}") from None

    def fingerprint(self) -> str:
        """What decides the numbers: every field but the seeds, the workers and the output folder.

        Results recorded under one fingerprint are reused by a resumed study only under the same one.
        """
        record = {k: v for k, v in config_record(self).items() if k not in _NOT_IN_FINGERPRINT}
        return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _check_backend(backend: Mapping[str, Any], where: str) -> None:
    unknown = sorted(set(backend) - {"name", "address"})
    if unknown:
        raise ValueError(f"{where}: backend has unknown field(s) {unknown}; it takes 'name' and 'address'.")
    if backend.get("name", "local") not in BACKENDS:
        raise ValueError(f"{where}: backend name {backend.get('name')!r} is not one of {list(BACKENDS)}.")
    if backend.get("address") is not None and backend.get("name") != "ray":
        raise ValueError(f"{where}: backend.address is for the ray backend (name: ray); the local one runs here.")


def job_resources(resources: Mapping[str, Any], setting: str, where: str = "study config") -> dict[str, float]:
    """``{"cpu": …, "gpu": …}`` one job of ``setting`` asks for (``StudyConfig.resources_per_job``).

    Examples:
        >>> job_resources({"cpu": 1, "gpu": 0.25, "single-task": {"gpu": 1}}, "single-task")
        {'cpu': 1.0, 'gpu': 1.0}
        >>> job_resources({"cpu": 2}, "multi-task")
        {'cpu': 2.0, 'gpu': 0.0}
    """
    unknown = sorted(set(resources) - {"cpu", "gpu", *JOB_SETTINGS})
    if unknown:
        raise ValueError(f"{where}: resources_per_job has unknown key(s) {unknown}; it takes cpu, gpu and "
                         f"per-setting mappings ({', '.join(JOB_SETTINGS)}).")
    chosen: dict[str, float] = {}
    scopes = [("", {key: resources[key] for key in ("cpu", "gpu") if key in resources})]
    scopes += [(f"{name}.", resources[name]) for name in JOB_SETTINGS if name in resources]
    for scope, values in scopes:
        if not isinstance(values, Mapping) or set(values) - {"cpu", "gpu"}:
            raise ValueError(f"{where}: resources_per_job.{scope.rstrip('.')} should map cpu/gpu to amounts, "
                             f"got {values!r}.")
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{where}: resources_per_job.{scope}{key} must be a number >= 0, got {value!r}.")
            if scope in ("", f"{setting}."):
                chosen[key] = float(value)
    return {"cpu": chosen.get("cpu", 1.0), "gpu": chosen.get("gpu", 0.0)}


def config_record(config: StudyConfig) -> dict[str, Any]:
    """The config as ``study.json`` holds it (the output folder left out: a study can be moved)."""
    record = asdict(config)
    record.pop("output_dir", None)
    if not record["context_grid"]:
        del record["context_grid"]  # a study without one keeps the record (and fingerprint) it had before the field
    return record


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
    # A model whose text encoder reads the transcripts takes published text corpora without features.
    raw_text = "text" in model_encoders(config.model)
    past, future = config.context_turns()
    plain = load_sources([source.with_context(past, future) for source in config.corpora if source.folds is None],
                         raw_text=raw_text)
    if not folded:
        return [_checked({source.name: plain[source.name] for source in config.corpora})]
    versions = [load_sources([fold.with_context(past, future)], raw_text=raw_text)[folded[0].name]
                for fold in folded[0].fold_sources()]
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
