"""Text tables a user has: CSV, JSON Lines or Parquet with named text / label / split columns.

``load_corpus("table", "reviews.csv", corpus_name="reviews", task="sentiment",
label_space="sentiment/polarity", text_column="review", label_column="stars3",
split_column="fold")`` reads one file whose ``split_column`` says each row's split
(``train`` / ``validation`` (or ``dev``, ``valid``) / ``test``), or a folder holding one file per
split (``train.csv``, ``dev.csv``, ``test.csv``; any of the three formats). The label space
says what the labels mean and which head trains on them:

* a key of ``mtaffect.tasks.LABEL_SPACES`` (``sentiment/score``, ``sentiment/polarity``,
  ``emotion/meld``, ``sarcasm/binary``...);
* or the user's own set, as a mapping (in Python or a study config, no code change):
  ``{"name": "mine", "labels": ["glad", "cross", "calm"], "union": ["joy", "anger", "neutral"]}``
  for emotion (``union`` says which union emotion each label is, so other sets convert to it),
  ``{"name": "stars5", "labels": [...5 names...], "scores": [-2, -1, 0, 1, 2],
  "thresholds": [-1.5, -0.5, 0.5, 1.5]}`` for polarity classes.

Labels are read as the space's label names (case-insensitive; emotion labels also by any
spelling of their union name) or 0-based class indices; scores as numbers in [-3, 3];
sarcasm as 0/1/true/false; multi-label emotion as a list or a ``;``-separated string. A row
whose label is empty is kept without a gold label (a teacher may label it).

Context: ``dialogue_column`` (and ``turn_column``, else the rows' order) with
``context={"past": K, "future": J}`` gives each row the turns of its dialogue in the same split
(``mtaffect.data.context``); ``speaker_column`` gives the turns their speakers.

Features: as MELD (``features=`` files keyed by id, or ``train/<id>``, or text features
extracted with ``mtaffect.data.extract.TextExtractor`` when ``features`` is omitted). Ids come
from ``id_column`` or are ``<split>-<row number>``.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from mtaffect.data.context import CONTEXT_OPTION_HELP, ContextOptions, batches_with_context, context_features
from mtaffect.data.corpora.base import CorpusPlan, batched, unique_ids
from mtaffect.data.corpora.errors import CorpusFormatError
from mtaffect.data.corpora.registry import register_corpus
from mtaffect.data.corpora.user_features import (
    FeatureProvider,
    feature_options,
    kept_batches,
    text_feature_provider,
)
from mtaffect.data.raw import split_files
from mtaffect.data.schema import SPLIT_ALIASES, CorpusInfo, canonical_split
from mtaffect.tasks import (
    EMOTION_LABELS,
    MAX_POLARITY_CLASSES,
    SENTIMENT_RANGE,
    LabelSpace,
    label_space,
    normalize_emotion,
)

logger = logging.getLogger(__name__)

TABLE_SUFFIXES: tuple[str, ...] = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
_BATCH = 256

OPTIONS = {
    "task": "the task the labels are for: emotion, sentiment or sarcasm",
    "label_space": "a label-space key (sentiment/polarity, emotion/meld...) or a mapping with name, labels (union, scores, thresholds)",
    "text_column": "column with the utterance text (default 'text')",
    "label_column": "column with the label (default 'label')",
    "split_column": "column naming each row's split (one file); None = one file per split in a folder",
    "id_column": "column with unique ids (default: <split>-<row>)",
    "speaker_column": "column with the speaker (optional)",
    **feature_options("table", limit=False),
    "dialogue_column": "column naming each row's dialogue (for context; optional)",
    "turn_column": "column ordering the turns of a dialogue (numbers; default: the rows' order)",
    "context": CONTEXT_OPTION_HELP + " (needs dialogue_column)",
}


def read_table(file: Path) -> list[dict[str, Any]]:
    """The rows of a CSV / TSV / JSON Lines / Parquet file as dicts."""
    import pandas as pd

    suffix = file.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            frame = pd.read_csv(file, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False)
        elif suffix in (".jsonl", ".json"):
            frame = pd.read_json(file, lines=True, dtype=False)
        elif suffix == ".parquet":
            frame = pd.read_parquet(file)
        else:
            raise CorpusFormatError(file, f"is not a table mtaffect reads ({', '.join(TABLE_SUFFIXES)}).")
    except (ValueError, OSError, UnicodeDecodeError) as error:
        if isinstance(error, CorpusFormatError):
            raise
        raise CorpusFormatError(file, f"cannot be read as {suffix[1:]} ({error}).") from None
    return frame.to_dict(orient="records")


def _files(path: Path) -> dict[str, Path] | None:
    """One file per split in a folder (``train.csv``, ``dev.jsonl``...), or ``None`` for a single file."""
    if path.is_file():
        return None
    return split_files(path, suffixes=TABLE_SUFFIXES, what="table", error=CorpusFormatError)


class _LabelReader:
    """One table label -> the unified schema's label columns, in the declared space."""

    def __init__(self, space: LabelSpace) -> None:
        self.space = space
        self.lookup = {label.lower(): i for i, label in enumerate(space.labels)}
        if space.task == "emotion":
            for i, name in enumerate(space.union):
                self.lookup.setdefault(name, i)

    def __call__(self, value: Any) -> dict[str, Any] | None:
        if _empty(value):
            return None
        space = self.space
        if space.kind == "score":
            score = float(value)
            low, high = SENTIMENT_RANGE
            if not math.isfinite(score) or not low <= score <= high:
                raise ValueError(f"score {value!r} is not a number in [{low:g}, {high:g}]")
            return {"sentiment": score, "sentiment_mask": True, "sentiment_class": -1, "sentiment_num_classes": 0}
        if space.kind == "binary":
            text = str(value).strip().lower()
            positives, negatives = {"1", "1.0", "true", "yes", space.labels[1].lower()}, {"0", "0.0", "false", "no", space.labels[0].lower()}
            if text not in positives | negatives:
                raise ValueError(f"{value!r} is not 0/1, true/false or {space.labels}")
            return {"sarcasm": float(text in positives), "sarcasm_mask": True}
        if space.kind == "multilabel":
            names = value if isinstance(value, (list, tuple, np.ndarray)) else [v for v in str(value).split(";") if v.strip()]
            present = [self._index(name) for name in names]
            vector = [0.0] * len(EMOTION_LABELS)
            for i in present:
                vector[EMOTION_LABELS.index(space.union[i])] = 1.0
            return {"emotion": vector, "emotion_mask": space.union_mask(), "emotion_multilabel": True}
        index = self._index(value)
        if space.task == "sentiment":
            return {
                "sentiment": float(space.scores[index]), "sentiment_mask": True,
                "sentiment_class": index, "sentiment_num_classes": len(space.labels),
            }
        vector = [0.0] * len(EMOTION_LABELS)
        vector[EMOTION_LABELS.index(space.union[index])] = 1.0
        return {"emotion": vector, "emotion_mask": space.union_mask(), "emotion_multilabel": False}

    def _index(self, value: Any) -> int:
        text = str(value).strip()
        if text.lower() in self.lookup:
            return self.lookup[text.lower()]
        if self.space.task == "emotion":
            try:
                union = normalize_emotion(text)
            except ValueError:
                union = None
            if union in self.lookup:
                return self.lookup[union]
        try:
            number = float(text)
        except ValueError:
            number = None
        if number is not None and number.is_integer() and 0 <= int(number) < len(self.space.labels):
            return int(number)
        raise ValueError(f"{value!r} is not one of {list(self.space.labels)} (or a class index 0..{len(self.space.labels) - 1})")


def _empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _load_table(
    path: Path,
    task: str | None = None,
    label_space: Any = None,
    text_column: str = "text",
    label_column: str = "label",
    split_column: str | None = "split",
    id_column: str | None = None,
    speaker_column: str | None = None,
    features: Any = None,
    transpose: Any = None,
    missing_features: str = "error",
    extract_text: bool | None = None,
    extractor: dict[str, Any] | None = None,
    feature_set: str | None = None,
    dialogue_column: str | None = None,
    turn_column: str | None = None,
    context: Any = None,
) -> CorpusPlan:
    options = ContextOptions.from_value(context)
    if options.enabled and not dialogue_column:
        raise CorpusFormatError(path, "context= needs dialogue_column= (the column naming each row's dialogue).")
    if label_space is None:
        raise CorpusFormatError(path, "a text table needs label_space= (e.g. 'sentiment/polarity', or a mapping with its labels).")
    space = _space(label_space, task, path)
    if space.task == "sentiment" and space.kind == "classes" and len(space.labels) > MAX_POLARITY_CLASSES:
        raise CorpusFormatError(path, f"polarity spaces have at most {MAX_POLARITY_CLASSES} classes.")
    files = _files(path)
    where = path if files is None else path
    if files is None:
        rows_of: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        for number, row in enumerate(read_table(path), start=1):
            if split_column not in row:
                raise CorpusFormatError(
                    path, f"row {number} has no {split_column!r} column (columns: {sorted(row)}); give split_column= or "
                    "one file per split in a folder."
                )
            split = canonical_split(str(row[split_column]))
            if split not in SPLIT_ALIASES:
                raise CorpusFormatError(path, f"row {number}: split {row[split_column]!r} is not train, validation (dev) or test.")
            rows_of.setdefault(split, []).append((number, row))
        sources = {split: path for split in rows_of}
    else:
        rows_of = {split: list(enumerate(read_table(file), start=1)) for split, file in files.items()}
        sources = files
    reader = _LabelReader(space)
    splits: dict[str, list[dict[str, Any]]] = {}
    for split in (s for s in SPLIT_ALIASES if s in rows_of):
        parsed = []
        for number, row in rows_of[split]:
            file = sources[split]
            for column in (text_column, label_column, *(c for c in (dialogue_column, turn_column) if options.enabled and c)):
                if column not in row:
                    raise CorpusFormatError(file, f"row {number} has no {column!r} column (columns: {sorted(row)}).")
            try:
                labels = reader(row[label_column])
            except (ValueError, TypeError) as error:
                raise CorpusFormatError(
                    file, f"row {number}: label {row[label_column]!r} does not fit {space.key} ({error}); fix the row or "
                    "the label_space."
                ) from None
            identifier = str(row[id_column]) if id_column else f"{split}-{number}"
            parsed.append({
                "id": identifier,
                "text": "" if _empty(row[text_column]) else str(row[text_column]),
                "speaker": "" if not speaker_column or _empty(row.get(speaker_column)) else str(row[speaker_column]),
                "labels": labels or {},
                "turn": _turn(row, dialogue_column, turn_column, number, file) if options.enabled else None,
            })
        splits[split] = parsed
    if "train" not in splits:
        raise CorpusFormatError(where, "has no train rows.")
    folder = path if path.is_dir() else path.parent
    provider = text_feature_provider(features, folder, transpose, missing_features, extract_text, extractor)
    info = CorpusInfo(
        corpus="table",
        feature_set=feature_set or provider.default_feature_set("table"),
        dims=provider.dims,
        tasks=[space.task],
        emotion_labels=list(space.labels) if space.task == "emotion" else [],
        label_spaces={space.task: space.key if _registered(space) else space.to_dict()},
        extractors=provider.extractors(),
        notes={
            "format": "table",
            "files": {split: str(file) for split, file in sources.items()},
            "columns": {"text": text_column, "label": label_column, "split": split_column if files is None else None},
            "split_sizes_before_drops": {k: len(v) for k, v in splits.items()},
        },
    )
    batches = _batches(splits, provider, sources)
    extra: dict[str, Any] = {}
    if options.enabled:
        info.notes["context"] = {**options.to_dict(), "dialogue_column": dialogue_column, "turn_column": turn_column}
        extra = context_features(provider.dims)
        turns = {split: [r["turn"] for r in rows] for split, rows in splits.items()}
        batches = batches_with_context(batches, splits, turns, options, provider.dims)
    return CorpusPlan(info, list(splits), kept_batches(provider, info.notes, "table", batches), folder, extra)


def _turn(row: dict[str, Any], dialogue_column: str, turn_column: str | None, number: int, file: Path) -> tuple[str, float]:
    """A row's (dialogue, order): its dialogue name and its turn number (else its row number)."""
    if _empty(row[dialogue_column]):
        raise CorpusFormatError(file, f"row {number}: {dialogue_column!r} is empty; every row needs its dialogue for context.")
    if turn_column is None:
        return str(row[dialogue_column]), float(number)
    try:
        order = float(row[turn_column])
    except (TypeError, ValueError):
        raise CorpusFormatError(file, f"row {number}: {turn_column!r} must be a number, got {row[turn_column]!r}.") from None
    if math.isnan(order):
        raise CorpusFormatError(file, f"row {number}: {turn_column!r} is empty; every row needs its turn number.")
    return str(row[dialogue_column]), order


def _space(spec: Any, task: str | None, path: Path) -> LabelSpace:
    if isinstance(spec, str) and spec.strip().startswith("{"):
        spec = json.loads(spec)  # a mapping given on the command line
    try:
        space = label_space(spec, task)
    except ValueError as error:
        raise CorpusFormatError(path, f"label_space: {error}") from None
    if task is not None and space.task != task:
        raise CorpusFormatError(path, f"label_space {space.key!r} is a {space.task} space, but task={task!r}.")
    return space


def _registered(space: LabelSpace) -> bool:
    from mtaffect.tasks import LABEL_SPACES

    builtin = LABEL_SPACES.get(space.key)
    return builtin is not None and builtin.description != "" and builtin == space


def _batches(splits: dict[str, list[dict[str, Any]]], provider: FeatureProvider, sources: dict[str, Path]):
    for split, rows in splits.items():
        ids = unique_ids([r["id"] for r in rows], sources[split], split)
        for part in batched(len(rows), _BATCH):
            chunk, chunk_ids = rows[part], ids[part]
            keys = [[f"{split}/{i}", i] for i in chunk_ids]
            columns, keep = provider.fill(split, keys, [r["text"] for r in chunk])
            batch: dict[str, Any] = {
                "id": chunk_ids,
                "text": [r["text"] for r in chunk],
                "speaker": [r["speaker"] for r in chunk],
                **columns,
            }
            names = sorted({name for r in chunk for name in r["labels"]})
            if names:
                from mtaffect.data.schema import unknown_labels

                defaults = unknown_labels()
                for name in names:
                    batch[name] = [r["labels"].get(name, defaults[name]) for r in chunk]
            yield split, batch, keep


def looks_like_table(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in TABLE_SUFFIXES


register_corpus(
    "table",
    "table",
    detect=looks_like_table,
    description="A text table (CSV / TSV / JSON Lines / Parquet) with text, label and split columns and a declared label space",
    options=OPTIONS,
)(_load_table)
