"""Teachers: what a teacher is, its record, loading and compatibility, choosing and training one.

A teacher is an ordinary ``MTAffectForMultiTaskAffect``
with one task enabled, trained with the same ``MultiTaskTrainer``
as every other model (train splits for training, validation splits for model selection
through ``eval_combined_score``), saved with ``save_pretrained``. Its config also records
what ``mtaffect.weak_labels.add_weak_labels`` needs to use it
(``config.mtaffect_teacher[task]``, a ``TeacherRecord``: training corpora, the feature sets
and modalities it was trained on, and for emotion the labels it knows and whether it is
multi-label).

A teacher only labels corpora of a feature set it was trained on (its input projection is
per feature set), so the corpora it will label can be named up front (``label_corpora``)
and are checked before any training starts; ``choose_teacher`` picks, among a study's
corpora, the one whose single-task model labels another.

Examples:
    >>> from mtaffect.data.corpora.synthetic import make_synthetic_family  # doctest: +SKIP
    >>> family = make_synthetic_family(size_scale=0.2)                      # doctest: +SKIP
    >>> path = train_teacher("sentiment", family, "teachers/sentiment",
    ...                      label_corpora={"synthetic_iemocap": family["synthetic_iemocap"]},
    ...                      training_args={"num_train_epochs": 5})          # doctest: +SKIP
    >>> from mtaffect.weak_labels import add_weak_labels                   # doctest: +SKIP
    >>> iemocap = add_weak_labels(family["synthetic_iemocap"], path, "sentiment")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from datasets import Dataset, DatasetDict

from mtaffect.data.arrow import column_values
from mtaffect.data.schema import NUM_EMOTIONS, corpus_name, feature_dims, get_corpus_info, labelled_rows
from mtaffect.recipes import CheckpointError, fit, load_model
from mtaffect.tasks import (
    EMOTION_LABELS,
    GOLD_COLUMNS,
    LabelSpace,
    check_task,
    label_space,
    normalize_emotion,
)
from mtaffect.training import MultiTaskTrainingArguments

if TYPE_CHECKING:
    from torch import nn

logger = logging.getLogger(__name__)

#: Key of the teacher record in a model's config (``config.mtaffect_teacher[task]``).
TEACHER_CONFIG_KEY = "mtaffect_teacher"


class TeacherError(ValueError):
    """A teacher cannot label this task or this corpus (wrong task, feature set, broken checkpoint)."""


# --------------------------------------------------------------------------------------------
# The teacher record: what a teacher knows, stored in its config so it survives save/load.
# --------------------------------------------------------------------------------------------


@dataclass
class TeacherRecord:
    """What a teacher was trained on, kept in ``config.mtaffect_teacher[task]``.

    Args:
        task: the task it labels.
        corpora: names of its training corpora.
        trained_on: feature set -> modalities its training data had; only these input
            projections were trained, so only these can be used to label another corpus.
        emotion_labels: (emotion) the union labels its training corpora annotated.
        emotion_multilabel: (emotion) sigmoid per label (True) or softmax over its labels.
        notes: anything else worth keeping (``train_teacher`` stores its validation metrics).
    """

    task: str
    corpora: list[str] = field(default_factory=list)
    trained_on: dict[str, list[str]] = field(default_factory=dict)
    emotion_labels: list[str] = field(default_factory=list)
    emotion_multilabel: bool = False
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def emotion_label_mask(self) -> np.ndarray:
        known = set(self.emotion_labels)
        return np.array([name in known for name in EMOTION_LABELS], dtype=bool)


def teacher_record_from_corpora(task: str, corpora: Mapping[str, Dataset | DatasetDict]) -> TeacherRecord:
    """Describe a teacher for ``task`` trained on the ``train`` splits of ``corpora``.

    Reads which feature sets and modalities the corpora have and, for emotion, the union of
    the labels they annotate (from ``emotion_mask``) and whether they are multi-label.
    Raises if no corpus has a gold label for ``task`` or if emotion corpora mix multi-label
    and single-label annotation (one activation cannot serve both).
    """
    check_task(task)
    record = TeacherRecord(task=task)
    kinds: dict[str, bool] = {}
    known = np.zeros(NUM_EMOTIONS, dtype=bool)
    for name, corpus in corpora.items():
        split = _train_split(name, corpus)
        table = split.with_format("numpy", columns=[*GOLD_COLUMNS[task], "feature_set"])
        gold = labelled_rows(table[:], task)
        if not gold.any():
            raise TeacherError(
                f"Corpus {name!r} has no gold {task} label in its train split: a {task} teacher "
                f"is trained only on corpora annotated for {task}."
            )
        dims = feature_dims(split.features)
        for feature_set in split.unique("feature_set"):
            modalities = record.trained_on.setdefault(feature_set, [])
            modalities.extend(m for m in dims if m not in modalities)
        record.corpora.append(name)
        if task == "emotion":
            rows = table[:]
            known |= np.asarray(rows["emotion_mask"], dtype=bool)[gold].any(0)
            multilabel = np.asarray(rows["emotion_multilabel"], dtype=bool)[gold]
            kinds[name] = bool(multilabel.any())
            if multilabel.any() and not multilabel.all():
                raise TeacherError(f"Corpus {name!r} mixes multi-label and single-label emotion rows.")
    if task == "emotion":
        if len(set(kinds.values())) > 1:
            multi = sorted(n for n, k in kinds.items() if k)
            single = sorted(n for n, k in kinds.items() if not k)
            raise TeacherError(
                f"Emotion teacher corpora mix multi-label ({', '.join(multi)}) and single-label "
                f"({', '.join(single)}) annotation: train one teacher per kind, the teacher's "
                "activation (sigmoid or softmax) must match how its labels were annotated."
            )
        record.emotion_labels = [label for label, on in zip(EMOTION_LABELS, known) if on]
        record.emotion_multilabel = next(iter(kinds.values()))
    return record


def record_teacher(model: nn.Module, record: TeacherRecord) -> None:
    """Store ``record`` in ``model.config`` (saved with ``save_pretrained``)."""
    records = dict(getattr(model.config, TEACHER_CONFIG_KEY, None) or {})
    records[record.task] = asdict(record)
    setattr(model.config, TEACHER_CONFIG_KEY, records)


def record_as_teacher(model: nn.Module, task: str, corpora: Mapping[str, Dataset | DatasetDict]) -> None:
    """Record in ``model.config`` that it is a ``task`` teacher trained on ``corpora`` (``teacher_record_from_corpora``)."""
    record_teacher(model, teacher_record_from_corpora(task, corpora))


#: Metadata key of the config in a teacher file (``teacher_bytes``).
_CONFIG_METADATA = "mtaffect_config"


def teacher_bytes(model: nn.Module) -> bytes:
    """A model as one safetensors blob, its config in the metadata: a working copy, not a release.

    What the study hands from a teaching job to the jobs it teaches (through the process pool
    or Ray's object store) and keeps under ``teachers/`` until the study is done; the weights
    read back bit for bit (``teacher_from_bytes``), with the tokenizer / feature extractor of
    each pretrained encoder loaded again from the encoder's ``name_or_path``. Releases go through
    ``save_pretrained``, which writes the processors beside the weights.
    """
    from safetensors.torch import save

    tensors = {key: value.detach().contiguous().cpu() for key, value in model.state_dict().items()}
    return save(tensors, metadata={_CONFIG_METADATA: model.config.to_json_string()})


def teacher_from_bytes(data: bytes) -> nn.Module:
    """The model of a ``teacher_bytes`` blob, in eval mode."""
    import json

    from safetensors.torch import load

    from mtaffect.configuration_mtaffect import MTAffectConfig
    from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect

    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
    config = header.get("__metadata__", {}).get(_CONFIG_METADATA)
    if config is None:
        raise TeacherError("A teacher blob without its config: it was not written by mtaffect.teachers.teacher_bytes.")
    model = MTAffectForMultiTaskAffect(MTAffectConfig.from_dict(json.loads(config)))
    model.load_state_dict(load(data))
    if model.config.pretrained_encoders:
        # The tokenizer / feature extractor never trains: the encoder's own source gives it back,
        # so a teacher that reads raw text can label another corpus (and a resumed study's too).
        model.load_encoder_processors()
    return model.eval()


def save_teacher_file(data: bytes, path: str | os.PathLike) -> None:
    """Write a ``teacher_bytes`` blob whole or not at all (a kill mid-write leaves no half file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def load_teacher_file(path: str | os.PathLike) -> nn.Module:
    """The model of a file ``save_teacher_file`` wrote."""
    return teacher_from_bytes(Path(path).read_bytes())


def get_teacher_record(model: nn.Module, task: str) -> TeacherRecord:
    """The teacher record of ``task`` in ``model.config``; checks the model predicts ``task``.

    A model without a record (not made by ``train_teacher``) can still label sentiment or
    sarcasm (with a warning: nothing tells which input projections were trained); emotion
    needs the record because the label space and activation cannot be guessed.
    """
    config = model.config
    tasks = list(getattr(config, "tasks", []) or [])
    if task not in tasks:
        raise TeacherError(
            f"The teacher predicts {tasks} (config.tasks); it cannot label {task!r}. "
            f"Use a teacher trained for {task} (mtaffect.teachers.train_teacher(task={task!r}, ...))."
        )
    if task == "emotion" and list(getattr(config, "emotion_labels", EMOTION_LABELS)) != list(EMOTION_LABELS):
        raise TeacherError(
            f"The teacher's emotion head predicts {list(config.emotion_labels)}, but weak labels are "
            f"written over the union label space {list(EMOTION_LABELS)}: build the teacher with the "
            "default emotion_labels."
        )
    records = getattr(config, TEACHER_CONFIG_KEY, None) or {}
    if task in records:
        payload = dict(records[task])
        try:
            record = TeacherRecord(**payload)
        except TypeError as error:
            raise TeacherError(f"config.{TEACHER_CONFIG_KEY}[{task!r}] is malformed: {error}.") from error
        for label in record.emotion_labels:
            normalize_emotion(label)
        return record
    if task == "emotion":
        raise TeacherError(
            f"The model has no teacher record for emotion (config.{TEACHER_CONFIG_KEY}): which "
            "labels it knows and whether it is multi-label cannot be guessed. Train it with "
            "mtaffect.teachers.train_teacher, or call record_teacher(model, "
            "teacher_record_from_corpora('emotion', its_training_corpora))."
        )
    logger.warning(
        "The model has no teacher record for %s: assuming every feature set it was built for was trained.",
        task,
    )
    built = getattr(config, "feature_sets", {}) or {}
    return TeacherRecord(task=task, trained_on={name: list(dims) for name, dims in built.items()})


# --------------------------------------------------------------------------------------------
# Loading and checking a teacher.
# --------------------------------------------------------------------------------------------


def load_teacher(teacher: nn.Module | str | os.PathLike, task: str) -> nn.Module:
    """Return a teacher model for ``task`` from a model, a ``save_pretrained`` folder or a Hub id.

    Errors name the folder and the problem (``mtaffect.recipes.load_model``): missing folder,
    unreadable config, a config of another model type, missing/corrupt/incomplete weights; or
    a model that does not predict ``task``.
    """
    check_task(task)
    if isinstance(teacher, (str, os.PathLike)):
        try:
            model = load_model(teacher, what="teacher")
        except CheckpointError as error:
            raise TeacherError(str(error)) from error
    else:
        model = teacher
        if not hasattr(model, "config") or not callable(model):
            raise TeacherError(f"teacher must be a model or a checkpoint folder, got {type(teacher).__name__}.")
    get_teacher_record(model, task)
    return model


def check_teacher_for_dataset(model: nn.Module, record: TeacherRecord, dataset: Dataset) -> list[str]:
    """Modalities of ``dataset`` the teacher can use; raises if it cannot label it at all.

    A teacher owns one input projection per feature set (name + dims) it was built for, and
    only those its training data went through were trained. Modalities the teacher never
    saw in training are left out (treated as missing), with a log line.
    """
    corpus = corpus_name(dataset)
    dims = feature_dims(dataset.features)
    encoders = getattr(model.config, "pretrained_encoders", None) or {}
    if encoders and not (getattr(model.config, "feature_sets", None) or {}):
        # Its pretrained encoders read raw columns, which any corpus can carry: no feature set to match.
        from mtaffect.data.raw_inputs import RAW_COLUMNS

        if not any(RAW_COLUMNS[m] in dataset.column_names for m in encoders):
            raise TeacherError(
                f"The teacher reads raw {sorted(encoders)} with pretrained encoders, but corpus {corpus!r} "
                f"has no {sorted(RAW_COLUMNS[m] for m in encoders)} column: load it with its transcripts / audio."
            )
        return []
    built: dict[str, dict[str, int]] = {
        name: dict(value) for name, value in (getattr(model.config, "feature_sets", {}) or {}).items()
    }
    used: list[str] | None = None
    for feature_set in dataset.unique("feature_set"):
        if feature_set not in built:
            raise TeacherError(
                f"The teacher was built for feature sets {sorted(built)}; corpus {corpus!r} uses "
                f"{feature_set!r} ({dims}): extract the same features for both (mtaffect extract)."
            )
        expected = built[feature_set]
        wrong = {m: (d, expected.get(m)) for m, d in dims.items() if m in expected and expected[m] != d}
        if wrong:
            raise TeacherError(
                f"Corpus {corpus!r} has feature set {feature_set!r} with dims {dims}, but the teacher "
                f"was built for {feature_set!r} = {expected}: extract the same features for both "
                "(mtaffect extract)."
            )
        if feature_set not in record.trained_on:
            raise TeacherError(
                f"The teacher was built for feature sets {sorted(built)} but trained only on "
                f"{sorted(record.trained_on)}; corpus {corpus!r} uses {feature_set!r}, whose input "
                "projection was never trained: extract the same features for both (mtaffect extract)."
            )
        trained = set(record.trained_on[feature_set]) & set(expected)
        usable = [m for m in dims if m in trained]
        if not usable:
            raise TeacherError(
                f"Corpus {corpus!r} has modalities {sorted(dims)} but the teacher was trained on "
                f"{sorted(trained)} for feature set {feature_set!r}: no modality in common."
            )
        dropped = sorted(set(dims) - set(usable))
        if dropped:
            logger.info("Teacher never saw %s for %s: labelling %s without them.", dropped, feature_set, corpus)
        used = usable if used is None else [m for m in used if m in usable]
    return used or []



def teacher_space(model: nn.Module, task: str) -> LabelSpace:
    """The label space of the teacher's one head for ``task`` (``config.label_spaces``)."""
    spaces = {key: value for key, value in (getattr(model.config, "label_spaces", None) or {}).items() if value["task"] == task}
    if len(spaces) != 1:
        raise TeacherError(
            f"A {task} teacher has one {task} head; this model has {sorted(spaces) or 'none'}. Train one "
            "teacher per label space (each on corpora that share it)."
        )
    return label_space(dict(next(iter(spaces.values()))))


def conversion(source: LabelSpace, target: LabelSpace) -> str:
    """How a teacher's ``source`` labels become ``target`` ones (``mtaffect.tasks``' rules), or raise.

    Examples:
        >>> conversion(label_space("sentiment/score"), label_space("sentiment/polarity"))
        'score -> polarity by thresholds (-0.5, 0.5)'
    """
    if source.key == target.key:
        return "none"
    if source.task != target.task:
        raise TeacherError(f"A {source.task} teacher cannot label {target.task}.")
    if source.task == "emotion":
        shared = sorted(set(source.union) & set(target.union))
        if not shared:
            raise TeacherError(f"Emotion sets {source.key} and {target.key} share no label: no conversion exists.")
        return f"{source.name} -> {target.name} through the union labels {shared}"
    if source.kind == "score":
        return f"score -> {target.name} by thresholds {target.thresholds}"
    if target.kind == "score":
        return f"{source.name} -> score as the expected score {dict(zip(source.labels, source.scores))}"
    return f"{source.name} -> {target.name} through the expected score and {target.name}'s thresholds"


def _train_split(name: str, corpus: Dataset | DatasetDict) -> Dataset:
    if isinstance(corpus, DatasetDict):
        if "train" not in corpus:
            raise TeacherError(f"Corpus {name!r} has no 'train' split (splits: {sorted(corpus)}).")
        return corpus["train"]
    return corpus


def choose_teacher(
    target: str,
    task: str,
    corpora: Mapping[str, DatasetDict],
    tasks: Mapping[str, list[str]],
    raw_modalities: Sequence[str] = (),
) -> str | None:
    """The corpus whose single-task model labels ``task`` on ``target``.

    Another corpus with gold ``task`` labels whose model can read ``target``: with the same
    feature set (a teacher can only read features its input projection was trained on) or,
    for models whose pretrained encoders read ``raw_modalities`` themselves
    (``pretrained_encoders``), where neither corpus has features and both have the same raw
    inputs (a text encoder reads any corpus' transcripts). The largest training split wins,
    ties broken by name. ``None`` when there is none.

    Examples:
        >>> from datasets import Dataset, DatasetDict
        >>> talk = lambda n: DatasetDict({"train": Dataset.from_dict({"text": ["a"] * n})})
        >>> corpora = {"meld": talk(5), "emorynlp": talk(3), "mustard": talk(2)}
        >>> tasks = {"meld": ["emotion"], "emorynlp": ["emotion"], "mustard": ["sarcasm"]}
        >>> choose_teacher("mustard", "emotion", corpora, tasks, raw_modalities=["text"])
        'meld'
    """
    reads = _what_a_teacher_reads(corpora[target], raw_modalities)
    candidates = [
        name
        for name, own in tasks.items()
        if name != target and task in own and _what_a_teacher_reads(corpora[name], raw_modalities) == reads
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda name: (corpora[name]["train"].num_rows, name))


def _what_a_teacher_reads(corpus: DatasetDict, raw_modalities: Sequence[str]) -> tuple[str, Any]:
    """A corpus' inputs as a model reads them: its raw inputs (no features, encoders for them) or its feature set."""
    from mtaffect.data.raw_inputs import RAW_COLUMNS

    split = next(iter(corpus.values()))
    if raw_modalities and not feature_dims(split.features):
        raw = tuple(sorted(m for m in raw_modalities if RAW_COLUMNS[m] in split.column_names))
        if raw:
            return ("raw", raw)
    return ("features", get_corpus_info(corpus).feature_set)


# --------------------------------------------------------------------------------------------
# Training a teacher.
# --------------------------------------------------------------------------------------------

def train_teacher(
    task: str,
    corpora: Mapping[str, DatasetDict],
    output_dir: str | Path,
    label_corpora: Mapping[str, Dataset | DatasetDict] | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    training_args: Any = None,
    keep_checkpoints: bool = False,
    callbacks: list[Any] | None = None,
) -> Path:
    """Train a single-task teacher for ``task`` and save it to ``output_dir``.

    Args:
        task: ``"emotion"``, ``"sentiment"`` or ``"sarcasm"``.
        corpora: corpus name -> ``DatasetDict`` with a ``train`` (and ideally a
            ``validation``) split. Corpora without gold ``task`` labels in ``train`` are
            skipped (so a whole family can be passed); at least one must have them.
        output_dir: where the teacher is saved (``save_pretrained``); must not hold a
            ``config.json`` already.
        label_corpora: corpora the teacher will label. Their feature sets (name and dims)
            must be ones the teacher is trained on: checked before training, a
            ``TeacherError`` otherwise.
        model_kwargs: ``MTAffectConfig`` arguments
            (``hidden_size``, ``encoder_type``...); feature sets and ``tasks`` come from the
            corpora. A multi-label emotion teacher defaults to ``emotion_pos_weight="balanced"``.
        training_args: a ``MultiTaskTrainingArguments`` (used as is), or a dict of its fields
            updating ``mtaffect.recipes.TRAINING_DEFAULTS`` (``output_dir`` then defaults to
            ``<output_dir>/checkpoints``).
        keep_checkpoints: keep the Trainer's checkpoint folder of a dict/default
            ``training_args`` (removed after the final save otherwise).
        callbacks: Trainer callbacks (e.g. ``EarlyStoppingCallback``).

    Returns:
        ``Path(output_dir)``, a checkpoint ``add_weak_labels`` and ``from_pretrained`` load.
    """
    check_task(task)
    output = Path(output_dir)
    if (output / "config.json").exists():
        raise FileExistsError(f"{output} already holds a model (config.json): choose a new folder.")
    gold = _corpora_with_gold(task, corpora)
    record = teacher_record_from_corpora(task, gold)

    kwargs = dict(model_kwargs or {})
    if task == "emotion" and record.emotion_multilabel:
        kwargs.setdefault("emotion_pos_weight", "balanced")
    for reserved in ("tasks", "feature_sets"):
        if reserved in kwargs:
            raise ValueError(f"model_kwargs[{reserved!r}] is set by train_teacher (from task and corpora).")
    validation = {name: corpus["validation"] for name, corpus in gold.items() if "validation" in corpus}
    if not validation:
        logger.warning("No validation split in %s: the teacher is the last epoch's model.", sorted(gold))
    owned_checkpoints = None if isinstance(training_args, MultiTaskTrainingArguments) else output / "checkpoints"
    if owned_checkpoints is not None and training_args and "output_dir" in training_args:
        owned_checkpoints = Path(training_args["output_dir"])

    def check_before_training(model: nn.Module) -> None:
        record_teacher(model, record)
        for name, corpus in (label_corpora or {}).items():
            for split in corpus.values() if isinstance(corpus, DatasetDict) else [corpus]:
                try:
                    check_teacher_for_dataset(model, record, split)
                except TeacherError as error:
                    raise TeacherError(f"label_corpora[{name!r}]: {error}") from None

    fitted = fit(
        {name: corpus["train"] for name, corpus in gold.items()},
        validation,
        output_dir=owned_checkpoints or training_args.output_dir,
        model=kwargs,
        tasks=[task],
        training=training_args,
        config_corpora=gold,
        callbacks=callbacks,
        prepare=check_before_training,
    )
    if fitted.eval_metrics:
        record.notes = {"validation": {k: float(v) for k, v in fitted.eval_metrics.items() if isinstance(v, (int, float))}}
    record_teacher(fitted.model, record)
    fitted.trainer.save_model(str(output))
    if owned_checkpoints is not None and not keep_checkpoints and fitted.trainer.is_world_process_zero():
        shutil.rmtree(owned_checkpoints, ignore_errors=True)
    logger.info("%s teacher trained on %s saved to %s.", task, ", ".join(gold), output)
    return output


def _corpora_with_gold(task: str, corpora: Mapping[str, DatasetDict]) -> dict[str, DatasetDict]:
    gold: dict[str, DatasetDict] = {}
    for name, corpus in corpora.items():
        if not isinstance(corpus, DatasetDict) or "train" not in corpus:
            raise TeacherError(
                f"Corpus {name!r} must be a DatasetDict with a 'train' split (got "
                f"{type(corpus).__name__}{' with splits ' + str(sorted(corpus)) if isinstance(corpus, DatasetDict) else ''})."
            )
        mask = np.asarray(column_values(corpus["train"], f"{task}_mask"), dtype=bool)
        if mask.any():
            gold[name] = corpus
        else:
            logger.info("Corpus %s has no gold %s label: not a %s teacher corpus.", name, task, task)
    if not gold:
        raise TeacherError(
            f"None of the corpora {sorted(corpora)} has gold {task} labels in its train split: a "
            f"{task} teacher needs at least one corpus annotated for {task}."
        )
    return gold


# --------------------------------------------------------------------------------------------
# Cross-fitting: teachers of a corpus' own rows.
# --------------------------------------------------------------------------------------------

#: Splits a cross-fit assigns to folds (test rows are labelled too, by a teacher that never saw them).
CROSS_FIT_SPLITS = ("train", "validation", "test")


def cross_fit_folds(num_rows: int, k: int, seed: int) -> np.ndarray:
    """Fold id (0 … k-1) of each of ``num_rows`` rows: a seeded shuffle dealt round-robin.

    Folds differ in size by at most one row; the same (rows, k, seed) always gives the same
    folds, so a resumed study or another seed's worker rebuilds them without storing them.
    """
    if k < 2:
        raise ValueError(f"cross-fitting needs at least 2 folds, got {k}.")
    folds = np.empty(num_rows, dtype=np.int64)
    folds[np.random.default_rng(seed).permutation(num_rows)] = np.arange(num_rows) % k
    return folds


@dataclass
class CrossFittedTeachers:
    """K teachers of one corpus and task, each blind to one fold of the corpus' rows.

    Every row of every split is dealt to a fold (``folds[split]``); teacher ``j`` is trained on
    the train rows outside fold ``j`` and selects its best step on the validation rows
    outside fold ``j``, so when it labels the rows of fold ``j`` no row is labelled by a model
    that was trained or selected on it. ``seen[j]`` lists the row ids teacher ``j`` used,
    per split, which is what lets that promise be checked row by row.

    Args:
        task: the task the teachers predict, in the corpus' own label space.
        teachers: the K models, fold order.
        folds: split -> fold id per row (``cross_fit_folds``).
        seen: per teacher, split -> the ids of the rows it was trained or selected on.
        seed: the seed of the fold assignment (and of the teachers' training).
    """

    task: str
    teachers: list[Any]
    folds: dict[str, np.ndarray]
    seen: list[dict[str, list[str]]]
    seed: int = 0

    @property
    def k(self) -> int:
        return len(self.teachers)


def cross_fit_splits(corpus: DatasetDict, k: int, seed: int) -> tuple[dict[str, np.ndarray], list[DatasetDict]]:
    """The fold of every row, and per fold the ``train`` / ``validation`` rows its teacher may use."""
    missing = [split for split in ("train", "validation") if split not in corpus]
    if missing:
        raise TeacherError(f"Cross-fitting {corpus_name(corpus['train'] if 'train' in corpus else next(iter(corpus.values())))!r} "
                           f"needs train and validation splits (missing {missing}).")
    folds = {split: cross_fit_folds(corpus[split].num_rows, k, seed + index)
             for index, split in enumerate(CROSS_FIT_SPLITS) if split in corpus}
    parts = [
        DatasetDict({split: corpus[split].select(np.flatnonzero(folds[split] != j)) for split in ("train", "validation")})
        for j in range(k)
    ]
    return folds, parts


def cross_fit_teachers(
    corpus: DatasetDict,
    task: str,
    k: int,
    train: Any,
    seed: int = 0,
) -> CrossFittedTeachers:
    """Train the K out-of-fold teachers of ``corpus`` for ``task`` (see ``CrossFittedTeachers``).

    Args:
        corpus: a unified corpus with gold ``task`` labels and train / validation splits.
        task: the task to label; the teachers use the corpus' own label space.
        k: number of folds (5 is the usual choice: each teacher sees 80% of the rows).
        train: ``train(fold_corpus, j) -> model``: trains one single-task teacher on
            ``fold_corpus["train"]``, selecting on ``fold_corpus["validation"]`` (the study
            passes its own single-task recipe; a library user can wrap ``train_teacher``).
        seed: seeds the fold assignment.

    Returns:
        The K teachers with their folds, ready for
        ``mtaffect.weak_labels.add_cross_fitted_weak_labels``.
    """
    check_task(task)
    if not labelled_rows(corpus["train"].with_format("numpy", columns=[f"{task}_mask"])[:], task).any():
        raise TeacherError(f"Corpus {corpus_name(corpus['train'])!r} has no gold {task} label to cross-fit a teacher on.")
    folds, parts = cross_fit_splits(corpus, k, seed)
    teachers, seen = [], []
    for j, part in enumerate(parts):
        teachers.append(train(part, j))
        seen.append({split: [str(i) for i in column_values(part[split], "id")] for split in part})
        logger.info("Cross-fitted %s teacher %d/%d of %s: trained on %d rows.", task, j + 1, k,
                    corpus_name(corpus["train"]), part["train"].num_rows)
    return CrossFittedTeachers(task, teachers, folds, seen, seed)
