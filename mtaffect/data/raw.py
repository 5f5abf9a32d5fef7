"""Raw corpora: what a reader of raw transcripts/clips gives, and the helpers readers share.

A *reader* turns a published raw-media layout into a ``RawCorpus`` (ids, splits,
transcripts, media paths, gold labels in the unified schema), which
``mtaffect.data.extract.extract_corpus`` turns into features. Each corpus' reader lives
beside its feature loader (``mtaffect.data.corpora.meld.read_meld``,
``mtaffect.data.corpora.mustard.read_mustard``, ``mtaffect.data.corpora.mmsa.read_mmsa_fet``);
``read_text_table`` reads any CSV/JSON/Parquet table with a text column.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mtaffect.data.schema import SPLIT_ALIASES, canonical_split, unknown_labels
from mtaffect.tasks import (
    EMOTION_LABELS,
    SENTIMENT_CLASS_SCORES,
    SENTIMENT_CLASSES,
    SENTIMENT_RANGE,
    emotion_label_mask,
    normalize_emotion,
)

logger = logging.getLogger(__name__)


class RawCorpusError(ValueError):
    """A raw corpus' label file is missing or malformed (names the file and the fix)."""

    def __init__(self, path: str | Path, message: str) -> None:
        self.path = Path(path)
        super().__init__(f"{path}: {message}")


@dataclass
class RawExample:
    """One utterance before extraction: its inputs per modality and its unified labels.

    ``audio`` may be an audio file or a video (its audio track is used); ``labels`` holds
    unified-schema label columns (missing ones stay unknown); ``extra`` holds the corpus'
    extra columns (declared with their types in ``RawCorpus.extra_features``, e.g. CH-SIMS'
    unimodal ``sentiment_T`` or MELD's ``dialogue_id``).
    """

    id: str
    split: str
    text: str = ""
    speaker: str = ""
    audio: str | None = None
    video: str | None = None
    labels: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def input_for(self, modality: str) -> Any:
        return {"text": self.text, "audio": self.audio, "visual": self.video}[modality]


@dataclass
class RawCorpus:
    """A corpus as a reader found it: examples (in file order), the tasks it labels, notes."""

    name: str
    examples: list[RawExample]
    tasks: list[str]
    emotion_labels: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    extra_features: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    #: Task -> label space of its labels (``CorpusInfo.label_spaces``); empty = read from the labels.
    label_spaces: dict[str, Any] = field(default_factory=dict)

    def splits(self) -> list[str]:
        present = {example.split for example in self.examples}
        ordered = [name for name in SPLIT_ALIASES if name in present]
        return ordered + sorted(present - set(ordered))

    def split_examples(self, split: str) -> list[RawExample]:
        return [example for example in self.examples if example.split == split]


def normalize_split(value: Any, path: str | Path) -> str:
    """A split name as a raw file spells it (``dev``, ``Valid``...) -> the unified name, or an error."""
    split = canonical_split(str(value))
    if split not in SPLIT_ALIASES:
        known = sorted(alias for group in SPLIT_ALIASES.values() for alias in group)
        raise RawCorpusError(path, f"unknown split {value!r}; expected one of {known}")
    return split


def split_files(
    folder: Path,
    names: Mapping[str, str] | None = None,
    *,
    suffixes: Sequence[str] = (),
    required: bool = False,
    what: str = "the corpus",
    error: Callable[[Path, str], Exception] = RawCorpusError,
) -> dict[str, Path]:
    """Each split's file in ``folder``, by unified split name (in ``SPLIT_ALIASES`` order).

    The one walk of a folder of split files, for the feature loaders and the raw readers: by
    the corpus' own file names (``names``: unified split -> file name, MELD's
    ``dev_sent_emo.csv``) or, without ``names``, any file whose stem is a split's alias
    (``train.csv``, ``dev.jsonl``, ``Valid.parquet``) and whose suffix is one of ``suffixes``.

    Args:
        folder: the folder to look in.
        names: the corpus' file name of each split.
        suffixes: with no ``names``, the file types that count.
        required: every file of ``names`` must be there (else: one at least).
        what: the corpus (or kind of file), as messages name it.
        error: what to raise, ``error(path, message)``: a loader's ``CorpusFormatError``, a
            reader's ``RawCorpusError``.
    """
    if names is not None:
        found = {split: folder / name for split, name in names.items() if (folder / name).is_file()}
        absent = [name for split, name in names.items() if split not in found]
        if required and absent:
            raise error(folder, f"missing {absent[0]} ({what} needs {', '.join(names.values())}).")
        if not found:
            raise error(folder, f"none of {sorted(names.values())} is there")
    else:
        found = {}
        for file in sorted(folder.iterdir()):
            split = canonical_split(file.stem)
            if file.is_file() and file.suffix.lower() in suffixes and split in SPLIT_ALIASES:
                if split in found:
                    raise error(folder, f"has two files for the {split} split: {found[split].name} and {file.name}.")
                found[split] = file
        if not found:
            raise error(folder, f"holds no train/dev/test {what} (e.g. train{suffixes[0]}, dev{suffixes[-1]}; "
                                f"one of {tuple(suffixes)}).")
    return {split: found[split] for split in SPLIT_ALIASES if split in found}


def decoded_text(path: Path) -> str:
    """The file's text (UTF-8, or UTF-16/32 with a byte-order mark), or one ``RawCorpusError``."""
    from mtaffect.data.corpora.encoding import decode_text
    from mtaffect.data.corpora.errors import CorpusFormatError

    try:
        return decode_text(path.read_bytes(), path)
    except CorpusFormatError as error:
        raise RawCorpusError(path, error.problem) from None


def read_csv(path: Path, **kwargs: Any) -> Any:
    """A CSV (UTF-8, or UTF-16 with a byte-order mark) as a pandas frame, text kept as text.

    One ``RawCorpusError`` for any failure.
    """
    import pandas as pd

    if not path.is_file():
        raise RawCorpusError(path, "no such file")
    try:
        # keep_default_na=False: an utterance reading "NA" or "None" is text, not a missing value.
        return pd.read_csv(io.StringIO(decoded_text(path)), keep_default_na=False, **kwargs)
    except RawCorpusError:
        raise
    except ValueError as error:
        raise RawCorpusError(path, f"cannot read as CSV: {error}") from None


def require_columns(path: Path, frame: Any, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise RawCorpusError(path, f"missing column(s) {missing}; found {list(frame.columns)}")


def as_bool(value: Any, path: Path, key: str) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise RawCorpusError(path, f"{key}: cannot read {value!r} as a yes/no label")


def read_floats(column: Any, path: Path, name: str, allow_empty: bool = False) -> np.ndarray:
    """A column of numbers written as text; names the file, column and row of the first bad one."""
    values = []
    for row, value in enumerate(column):
        text = str(value).strip()
        if not text and allow_empty:
            values.append(np.nan)
            continue
        try:
            values.append(float(text))
        except ValueError:
            raise RawCorpusError(path, f"column {name!r}, data row {row}: {value!r} is not a number") from None
    array = np.asarray(values, dtype=np.float64)
    if not allow_empty and not np.isfinite(array).all():
        raise RawCorpusError(path, f"column {name!r} holds non-finite values")
    return array


def read_text_table(
    path: str | Path,
    text_column: str = "text",
    id_column: str | None = None,
    split_column: str | None = None,
    speaker_column: str | None = None,
    emotion_column: str | None = None,
    sentiment_column: str | None = None,
    sarcasm_column: str | None = None,
    name: str | None = None,
) -> RawCorpus:
    """A plain table (CSV, TSV, JSON/JSONL or Parquet) with a transcript column and optional labels.

    ``emotion_column`` holds one emotion name per row (any spelling
    ``normalize_emotion`` knows; the corpus' label mask is the set of
    emotions that occur); ``sentiment_column`` a score in [-3, 3] or a class name
    (negative/neutral/positive, stored as -1/0/1 with a class); ``sarcasm_column`` 0/1 or
    true/false. Rows without a split column go to ``train``; ids default to ``row<N>``.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise RawCorpusError(path, "no such file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv", ".json", ".jsonl"):
            text = io.StringIO(decoded_text(path))
        if suffix in (".csv", ".tsv"):
            frame = pd.read_csv(text, sep="\t" if suffix == ".tsv" else ",", keep_default_na=False, dtype=str)
        elif suffix == ".jsonl":
            frame = pd.read_json(text, lines=True, dtype=False)
        elif suffix == ".json":
            frame = pd.read_json(text, dtype=False)
        elif suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            raise RawCorpusError(path, "expected a .csv, .tsv, .json, .jsonl or .parquet file")
    except RawCorpusError:
        raise
    except (ValueError, UnicodeDecodeError) as error:
        raise RawCorpusError(path, f"cannot read the table: {error}") from error
    wanted = [c for c in (text_column, id_column, split_column, speaker_column, emotion_column,
                          sentiment_column, sarcasm_column) if c]
    require_columns(path, frame, wanted)
    tasks = []
    emotion_mask = None
    # Where a row is in the file, for messages: CSV/TSV have a header line, JSONL does not.
    first_line = {".csv": 2, ".tsv": 2, ".jsonl": 1}.get(suffix)

    def row(i: int) -> str:
        return f"line {i + first_line}" if first_line else f"record {i}"

    if emotion_column:
        names = set()
        for i, value in enumerate(frame[emotion_column]):
            if str(value).strip():
                try:
                    names.add(normalize_emotion(str(value)))
                except ValueError as error:
                    raise RawCorpusError(path, f"{row(i)}, column {emotion_column!r}: {error}") from None
        emotion_mask = emotion_label_mask(sorted(names))
        tasks.append("emotion")
    if sentiment_column:
        tasks.append("sentiment")
    if sarcasm_column:
        tasks.append("sarcasm")
    examples = []
    for i, record in enumerate(frame.to_dict("records")):
        labels = unknown_labels()
        try:
            if emotion_column and str(record[emotion_column]).strip():
                index = EMOTION_LABELS.index(normalize_emotion(str(record[emotion_column])))
                labels["emotion"] = [1.0 if j == index else 0.0 for j in range(len(EMOTION_LABELS))]
                labels["emotion_mask"] = list(emotion_mask)
            if sentiment_column and str(record[sentiment_column]).strip():
                labels.update(_sentiment_labels(record[sentiment_column]))
            if sarcasm_column and str(record[sarcasm_column]).strip():
                labels["sarcasm"] = 1.0 if as_bool(record[sarcasm_column], path, f"row {i}") else 0.0
                labels["sarcasm_mask"] = True
        except ValueError as error:
            raise RawCorpusError(path, f"{row(i)}: {error}") from None
        text = record[text_column]
        examples.append(
            RawExample(
                id=str(record[id_column]) if id_column else f"row{i}",
                split=normalize_split(record[split_column], path) if split_column else "train",
                text="" if text is None else str(text),
                speaker=str(record[speaker_column]) if speaker_column else "",
                labels=labels,
            )
        )
    return RawCorpus(
        name=name or path.stem,
        examples=examples,
        tasks=tasks,
        emotion_labels=[n for n, m in zip(EMOTION_LABELS, emotion_mask) if m] if emotion_mask else [],
        source=str(path),
    )


def _sentiment_labels(value: Any) -> dict[str, Any]:
    text = str(value).strip().lower()
    if text in SENTIMENT_CLASSES:
        cls = SENTIMENT_CLASSES.index(text)
        return {
            "sentiment": SENTIMENT_CLASS_SCORES[cls], "sentiment_mask": True, "sentiment_class": cls,
            "sentiment_num_classes": len(SENTIMENT_CLASSES),
        }
    score = float(text)
    low, high = SENTIMENT_RANGE
    if not low <= score <= high:
        raise ValueError(f"sentiment {score} outside [{low:g}, {high:g}]")
    return {"sentiment": score, "sentiment_mask": True, "sentiment_class": -1}
