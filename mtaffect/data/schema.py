"""The unified corpus schema every loader converts to, and its validation.

One schema for every corpus is what lets corpora be mixed, weak-labelled and evaluated by
the same code. A corpus is a ``datasets.DatasetDict`` whose splits all have:

* ``id``, ``source``, ``feature_set`` (strings), ``text`` and ``speaker`` (strings, may be empty);
* one float32 ``[T, D]`` column per modality it has (``text_features``, ``audio_features``,
  ``visual_features``; none at all in a text-only corpus, which a model with a pretrained
  text encoder reads through its ``text`` column), stored as ``Array2D(shape=(None, D))`` so ``D`` travels in the
  features and a model can build its input projection from it;
* gold labels with masks: ``emotion`` / ``emotion_mask`` (per label of the union space; the
  mask is the corpus' label set, which is how a row finds its head) / ``emotion_multilabel``,
  ``sentiment`` / ``sentiment_mask`` / ``sentiment_class`` / ``sentiment_num_classes``
  (a score row has ``sentiment_num_classes`` 0 and class -1; a polarity row its class index
  and the number of classes of its space, and as ``sentiment`` the class' expected score,
  ``mtaffect.tasks.polarity_to_score``), ``sarcasm`` / ``sarcasm_mask``;
* weak labels a teacher fills: ``<task>_weak``, ``<task>_weak_mask``,
  ``<task>_weak_confidence`` (and ``emotion_weak_multilabel``; a polarity teacher writes
  class probabilities into ``sentiment_weak_probs`` with ``sentiment_weak_num_classes`` > 0).

Corpus-level metadata (corpus name, feature set, the label space of each task, extractors,
how many non-finite values a loader replaced) is kept as JSON in ``DatasetInfo.description`` so it survives ``map``,
``save_to_disk`` and the Hub.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow.compute as pc
from datasets import Array2D, Dataset, DatasetDict, Features, List, Value

from mtaffect.data.arrow import flat_values
from mtaffect.data.modalities import MODALITIES
from mtaffect.tasks import EMOTION_LABELS, MAX_POLARITY_CLASSES, SENTIMENT_RANGE, TASK_NAMES, spaces_from_info

#: The one split-alias table: each unified split name (in the order corpora list them) and
#: every name a published file, a user's ``DatasetDict`` or a command-line flag may give it.
SPLIT_ALIASES: dict[str, tuple[str, ...]] = {
    "train": ("train", "training"),
    "validation": ("validation", "valid", "dev", "val"),
    "test": ("test", "testing"),
}
NUM_EMOTIONS = len(EMOTION_LABELS)
_METADATA_KEY = "mtaffect"


def canonical_split(name: str) -> str:
    """The unified name of a split (``dev``, ``Valid`` -> ``validation``); unknown names unchanged.

    Examples:
        >>> canonical_split("dev"), canonical_split(" Training "), canonical_split("extra")
        ('validation', 'train', 'extra')
    """
    key = str(name).strip().lower()
    return next((split for split, aliases in SPLIT_ALIASES.items() if key in aliases), name)


def find_split(corpus: Mapping[str, Any], name: str) -> Any:
    """``corpus[name]`` under any of its aliases (``validation`` finds ``valid``/``dev``), else ``None``."""
    split = canonical_split(name)
    for alias in (name, *SPLIT_ALIASES.get(split, ())):
        if alias in corpus:
            return corpus[alias]
    return None


class SchemaError(ValueError):
    """A dataset does not conform to the unified schema."""


def feature_column(modality: str) -> str:
    """Name of the column holding a modality's ``[T, D]`` feature sequence."""
    if modality not in MODALITIES:
        raise ValueError(f"Unknown modality {modality!r}: expected one of {MODALITIES}.")
    return f"{modality}_features"


def label_features() -> dict[str, Any]:
    """The gold and weak label columns, identical for every corpus."""
    emotion_vector = List(Value("float32"), length=NUM_EMOTIONS)
    emotion_flags = List(Value("bool"), length=NUM_EMOTIONS)
    return {
        "emotion": emotion_vector,
        "emotion_mask": emotion_flags,
        "emotion_multilabel": Value("bool"),
        "sentiment": Value("float32"),
        "sentiment_mask": Value("bool"),
        "sentiment_class": Value("int64"),
        "sentiment_num_classes": Value("int64"),
        "sarcasm": Value("float32"),
        "sarcasm_mask": Value("bool"),
        "emotion_weak": emotion_vector,
        "emotion_weak_mask": emotion_flags,
        "emotion_weak_multilabel": Value("bool"),
        "emotion_weak_confidence": Value("float32"),
        "sentiment_weak": Value("float32"),
        "sentiment_weak_mask": Value("bool"),
        "sentiment_weak_confidence": Value("float32"),
        "sentiment_weak_probs": List(Value("float32"), length=MAX_POLARITY_CLASSES),
        "sentiment_weak_num_classes": Value("int64"),
        "sarcasm_weak": Value("float32"),
        "sarcasm_weak_mask": Value("bool"),
        "sarcasm_weak_confidence": Value("float32"),
    }


LABEL_COLUMNS: tuple[str, ...] = tuple(label_features())


def build_features(dims: Mapping[str, int]) -> Features:
    """The unified ``Features`` for a corpus whose modalities have the given dims.

    Empty ``dims`` is a text-only corpus: no feature column, the raw ``text`` column is what
    a model with a pretrained text encoder reads (``MTAffectConfig.pretrained_encoders``).

    Examples:
        >>> sorted(build_features({"text": 300, "audio": 74}))[:3]
        ['audio_features', 'emotion', 'emotion_mask']
        >>> "text_features" in build_features({}), "text" in build_features({})
        (False, True)
    """
    columns: dict[str, Any] = {
        "id": Value("string"),
        "source": Value("string"),
        "feature_set": Value("string"),
        "text": Value("string"),
        "speaker": Value("string"),
    }
    for modality, dim in dims.items():
        if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool) or dim <= 0:
            raise SchemaError(f"Feature dim of {modality!r} must be a positive int, got {dim!r}.")
        columns[feature_column(modality)] = Array2D(shape=(None, int(dim)), dtype="float32")
    columns.update(label_features())
    return Features(columns)


def unknown_labels() -> dict[str, Any]:
    """Label values of an example that carries no label at all (every mask off).

    Loaders start from this and fill what their corpus annotates, so "unknown" is spelled
    one way everywhere: value 0 (class -1) with the mask off.
    """
    return {
        "emotion": [0.0] * NUM_EMOTIONS,
        "emotion_mask": [False] * NUM_EMOTIONS,
        "emotion_multilabel": False,
        "sentiment": 0.0,
        "sentiment_mask": False,
        "sentiment_class": -1,
        "sentiment_num_classes": 0,
        "sarcasm": 0.0,
        "sarcasm_mask": False,
        "emotion_weak": [0.0] * NUM_EMOTIONS,
        "emotion_weak_mask": [False] * NUM_EMOTIONS,
        "emotion_weak_multilabel": False,
        "emotion_weak_confidence": 0.0,
        "sentiment_weak": 0.0,
        "sentiment_weak_mask": False,
        "sentiment_weak_confidence": 0.0,
        "sentiment_weak_probs": [0.0] * MAX_POLARITY_CLASSES,
        "sentiment_weak_num_classes": 0,
        "sarcasm_weak": 0.0,
        "sarcasm_weak_mask": False,
        "sarcasm_weak_confidence": 0.0,
    }


@dataclass
class CorpusInfo:
    """Corpus-level metadata that travels with every split of a unified corpus."""

    corpus: str
    feature_set: str
    dims: dict[str, int]
    tasks: list[str]
    emotion_labels: list[str] = field(default_factory=list)
    #: Task -> the label space its gold labels use: a key of ``mtaffect.tasks.LABEL_SPACES``
    #: (``"sentiment/polarity"``) or a user's space as a mapping (see ``mtaffect.tasks.label_space``).
    label_spaces: dict[str, Any] = field(default_factory=dict)
    extractors: dict[str, Any] = field(default_factory=dict)
    replaced_nonfinite: int = 0
    notes: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({_METADATA_KEY: asdict(self)}, sort_keys=True)

    def spaces(self) -> dict[str, Any]:
        """Task -> ``mtaffect.tasks.LabelSpace`` of every task this corpus declares a space for."""
        return spaces_from_info(self.label_spaces)


def set_corpus_info(corpus: Dataset | DatasetDict, info: CorpusInfo) -> None:
    """Attach ``info`` to every split (in ``DatasetInfo.description``)."""
    for split in _splits(corpus):
        split.info.description = info.to_json()


def get_corpus_info(dataset: Dataset | DatasetDict) -> CorpusInfo:
    """Read the metadata back; falls back to what the features say for foreign datasets."""
    split = next(iter(_splits(dataset)))
    try:
        payload = json.loads(split.info.description or "{}")[_METADATA_KEY]
        return CorpusInfo(**payload)
    except (json.JSONDecodeError, KeyError, TypeError):
        dims = feature_dims(split.features)
        return CorpusInfo(corpus="unknown", feature_set="unknown", dims=dims, tasks=[])


def feature_dims(features: Features) -> dict[str, int]:
    """Modality -> feature dim, read from the ``Array2D`` columns of ``features``."""
    dims = {}
    for modality in MODALITIES:
        column = features.get(feature_column(modality))
        if column is not None:
            dims[modality] = int(column.shape[1])
    return dims


def _splits(corpus: Dataset | DatasetDict) -> Iterable[Dataset]:
    return corpus.values() if isinstance(corpus, DatasetDict) else [corpus]


def validate_corpus(corpus: Dataset | DatasetDict, check_finite: bool = True) -> None:
    """Raise ``SchemaError`` naming the split, column and problem if ``corpus`` is off-schema.

    Checks column presence and types, label ranges, that masks agree with labels (an
    unknown label must be stored as 0 with its mask off), single-label emotion rows having
    exactly one positive label, and (optionally) that every feature value is finite.
    """
    splits = corpus.items() if isinstance(corpus, DatasetDict) else [("dataset", corpus)]
    for split_name, split in splits:
        _validate_split(split_name, split, check_finite)


def _validate_split(split_name: str, split: Dataset, check_finite: bool) -> None:
    where = f"split {split_name!r}"
    dims = feature_dims(split.features)
    if not dims and "text" not in split.features:
        raise SchemaError(
            f"{where}: no modality column; expected at least one of "
            f"{[feature_column(m) for m in MODALITIES]} as Array2D(shape=(None, D), dtype='float32'), "
            "or a 'text' column (a text-only corpus, for a model with a text encoder)."
        )
    expected = build_features(dims)
    for name, feature in expected.items():
        if name not in split.features:
            raise SchemaError(f"{where}: missing column {name!r} (expected {feature}).")
        if split.features[name] != feature:
            raise SchemaError(
                f"{where}: column {name!r} has type {split.features[name]}, expected {feature}."
            )
    if len(split) == 0:
        return
    columns = _label_arrays(split, LABEL_COLUMNS)
    _check_labels(where, columns)
    if check_finite:
        for modality in dims:
            name = feature_column(modality)
            values = flat_values(split.data.column(name))
            if len(values) and not pc.all(pc.is_finite(values)).as_py():
                raise SchemaError(
                    f"{where}: column {name!r} holds NaN or inf values; sanitise the features "
                    "(the mtaffect loaders replace them and count them)."
                )


def _fail_rows(where: str, column: str, bad: np.ndarray, problem: str) -> None:
    rows = np.flatnonzero(bad)
    if len(rows):
        raise SchemaError(f"{where}: column {column!r} {problem} (rows {rows[:5].tolist()}).")


def _check_labels(where: str, c: dict[str, np.ndarray]) -> None:
    low, high = SENTIMENT_RANGE
    emotion, emotion_mask = c["emotion"].astype(np.float32), c["emotion_mask"].astype(bool)
    _fail_rows(where, "emotion", ((emotion < 0) | (emotion > 1)).any(1), "has values outside [0, 1]")
    _fail_rows(
        where, "emotion", ((emotion != 0) & ~emotion_mask).any(1), "is non-zero where emotion_mask is off"
    )
    single = ~c["emotion_multilabel"].astype(bool) & emotion_mask.any(1)
    positives = (emotion * emotion_mask).sum(1)
    _fail_rows(
        where,
        "emotion",
        single & ~np.isclose(positives, 1.0),
        "must have exactly one positive label on single-label rows (emotion_multilabel=False)",
    )
    sentiment, sentiment_mask = c["sentiment"], c["sentiment_mask"].astype(bool)
    _fail_rows(
        where, "sentiment", ~np.isfinite(sentiment) | (sentiment < low) | (sentiment > high),
        f"has scores outside [{low}, {high}]",
    )
    _fail_rows(where, "sentiment", (sentiment != 0) & ~sentiment_mask, "is non-zero where sentiment_mask is off")
    classes, num_classes = c["sentiment_class"], c["sentiment_num_classes"]
    _fail_rows(
        where, "sentiment_num_classes", (num_classes != 0) & ((num_classes < 2) | (num_classes > MAX_POLARITY_CLASSES)),
        f"must be 0 (a score) or the number of polarity classes (2..{MAX_POLARITY_CLASSES})",
    )
    _fail_rows(
        where, "sentiment_class", (classes < -1) | ((num_classes > 0) & (classes >= num_classes)),
        "must be -1 (unknown / a score) or a class index below sentiment_num_classes",
    )
    _fail_rows(where, "sentiment_class", (classes >= 0) & ~sentiment_mask, "is set where sentiment_mask is off")
    _fail_rows(
        where, "sentiment_class", sentiment_mask & ((classes >= 0) != (num_classes > 0)),
        "and sentiment_num_classes disagree (a polarity row has both, a score row neither)",
    )
    sarcasm, sarcasm_mask = c["sarcasm"], c["sarcasm_mask"].astype(bool)
    _fail_rows(where, "sarcasm", ~np.isin(sarcasm, (0.0, 1.0)), "must be 0 or 1")
    _fail_rows(where, "sarcasm", (sarcasm != 0) & ~sarcasm_mask, "is non-zero where sarcasm_mask is off")
    for task in TASK_NAMES:
        confidence = c[f"{task}_weak_confidence"]
        _fail_rows(
            where, f"{task}_weak_confidence", ~np.isfinite(confidence) | (confidence < 0) | (confidence > 1),
            "must lie in [0, 1]",
        )
    weak_emotion = c["emotion_weak"]
    _fail_rows(where, "emotion_weak", ((weak_emotion < 0) | (weak_emotion > 1)).any(1), "must hold probabilities in [0, 1]")
    weak_probs = c["sentiment_weak_probs"]
    _fail_rows(where, "sentiment_weak_probs", ((weak_probs < 0) | (weak_probs > 1)).any(1), "must hold probabilities in [0, 1]")
    weak_sarcasm = c["sarcasm_weak"]
    _fail_rows(where, "sarcasm_weak", (weak_sarcasm < 0) | (weak_sarcasm > 1), "must be a probability in [0, 1]")
    weak_sentiment = c["sentiment_weak"]
    _fail_rows(
        where, "sentiment_weak", ~np.isfinite(weak_sentiment) | (weak_sentiment < low) | (weak_sentiment > high),
        f"has scores outside [{low}, {high}]",
    )


def gold_tasks(dataset: Dataset) -> list[str]:
    """Tasks for which at least one example of ``dataset`` has a gold label."""
    masks = _label_arrays(dataset, [f"{task}_mask" for task in TASK_NAMES])
    return [task for task in TASK_NAMES if masks[f"{task}_mask"].any()]


def labelled_rows(columns: Mapping[str, Any], task: str) -> np.ndarray:
    """Rows of a column batch whose ``task`` label is known: ``<task>_mask`` on (any label for emotion).

    ``task`` may also name a weak column family (``"sarcasm_weak"``: rows a teacher labelled).
    """
    mask = np.asarray(columns[f"{task}_mask"], dtype=bool)
    return mask.any(1) if mask.ndim == 2 else mask


def corpus_name(dataset: Dataset) -> str:
    """The corpus a split belongs to, for messages: its metadata name, else its ``source`` values."""
    info = get_corpus_info(dataset)
    if info.corpus != "unknown":
        return info.corpus
    sources = dataset.unique("source") if "source" in dataset.column_names else []
    return ",".join(sorted(sources)) or "dataset"


def _label_arrays(dataset: Dataset, names: Iterable[str]) -> dict[str, np.ndarray]:
    """Label columns as numpy arrays straight from Arrow (no per-row formatting of the features)."""
    table = dataset.with_format("numpy", columns=list(names))[:]
    return {name: np.asarray(table[name]) for name in names}


def corpus_label_spaces(dataset: Dataset | DatasetDict) -> dict[str, Any]:
    """Task -> ``mtaffect.tasks.LabelSpace`` of each task with gold labels in ``dataset``.

    What the corpus declares (``CorpusInfo.label_spaces``) wins; a corpus that declares
    nothing (an older or foreign one) is read from its labels: emotion by the union names its
    mask switches on, sentiment by ``sentiment_num_classes`` (0: the score space; 3: the
    3-class polarity space...), sarcasm is binary.
    """
    from mtaffect.tasks import LABEL_SPACES, default_space, emotion_space_for_mask, label_space

    declared = get_corpus_info(dataset).spaces()
    found: dict[str, Any] = {}
    for split in _splits(dataset):
        if len(split) == 0:
            continue
        for task in gold_tasks(split):
            if task in declared or task in found:
                continue
            columns = _label_arrays(split, [f"{task}_mask"] + (["emotion_mask"] if task == "emotion" else [])
                                    + (["sentiment_num_classes"] if task == "sentiment" else []))
            known = columns[f"{task}_mask"].astype(bool)
            if task == "emotion":
                rows = known.any(1)
                found[task] = emotion_space_for_mask(known[rows][0])
            elif task == "sentiment":
                counts = set(columns["sentiment_num_classes"][known].tolist())
                if len(counts) > 1:
                    raise SchemaError(f"corpus mixes sentiment spaces (num_classes {sorted(counts)}) in one split.")
                k = counts.pop()
                matches = [s for s in LABEL_SPACES.values() if s.task == "sentiment" and s.kind == "classes" and len(s.labels) == k]
                found[task] = (label_space("polarity", "sentiment") if k == 3 else matches[0]) if k else default_space(task)
            else:
                found[task] = default_space(task)
    return {**found, **declared}
