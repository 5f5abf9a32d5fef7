"""Corpus-level extraction: raw transcripts/clips + labels -> a unified ``DatasetDict``.

Two steps:

1. a *reader* turns a published raw-media layout into a ``RawCorpus`` (ids, splits,
   transcripts, media paths, gold labels in the unified schema): ``read_meld`` (the three
   CSVs + ``diaX_uttY.mp4`` clips), ``read_mustard`` (``sarcasm_data.json`` + ``<id>.mp4``),
   ``read_mmsa_fet`` (``label.csv`` + ``Raw/<video_id>/<clip_id>.mp4``) and
   ``read_text_table`` (any CSV/JSON/Parquet table with a text column);
2. ``extract_corpus`` runs the extractors over it in shards of ``shard_size`` examples
   and writes each finished shard to ``work_dir`` as an Arrow file plus a ``.done.json``
   marker, so a crashed or interrupted run picks up where it stopped: finished shards are
   not extracted again (a shard whose inputs changed — transcript, labels, media file size or
   mtime — is). An input that cannot be extracted (empty transcript, corrupt WAV or clip,
   missing file) is logged, written to ``failures.jsonl`` and its example left out; the rest
   of the corpus is still extracted.

Examples:
    >>> corpus = read_meld("MELD.Raw", media_dir="MELD.Raw")  # doctest: +SKIP
    >>> result = extract_corpus(corpus, [TextExtractor(), AudioExtractor()], "meld.work", "meld.unified")  # doctest: +SKIP
    >>> result.failures[:1]  # doctest: +SKIP
    [{'id': 'dia125_utt3', 'split': 'train', 'modality': 'audio', 'input': '...', 'error': '...'}]
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from datasets import (
    Dataset,
    DatasetDict,
    DatasetInfo,
    Features,
    List,
    NamedSplit,
    Value,
    concatenate_datasets,
)
from datasets.arrow_writer import ArrowWriter
from datasets.features.features import Array2DExtensionType

from mtaffect.data.extract.base import ExtractionError, Extractor, feature_set_name
from mtaffect.data.schema import (
    MODALITIES,
    CorpusInfo,
    build_features,
    feature_column,
    set_corpus_info,
    unknown_labels,
    validate_corpus,
)
from mtaffect.tasks import (
    EMOTION_LABELS,
    SENTIMENT_CLASS_SCORES,
    SENTIMENT_CLASSES,
    SENTIMENT_RANGE,
    emotion_label_mask,
    normalize_emotion,
)

logger = logging.getLogger(__name__)

#: Unified split names, in the order they are written.
SPLIT_ORDER: tuple[str, ...] = ("train", "validation", "test")
_SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "dev": "validation",
    "valid": "validation",
    "val": "validation",
    "validation": "validation",
    "test": "test",
    "testing": "test",
}
#: Bump when the shard layout or row content changes, so old work dirs are not reused.
SHARD_FORMAT_VERSION = 1
_MAX_LOGGED_FAILURES = 20


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

    def splits(self) -> list[str]:
        present = {example.split for example in self.examples}
        ordered = [name for name in SPLIT_ORDER if name in present]
        return ordered + sorted(present - set(ordered))

    def split_examples(self, split: str) -> list[RawExample]:
        return [example for example in self.examples if example.split == split]


@dataclass
class ExtractionResult:
    """What ``extract_corpus`` returns: the corpus, every failure, and where things are."""

    dataset: DatasetDict
    failures: list[dict[str, Any]]
    counts: dict[str, dict[str, int]]
    work_dir: Path
    failures_file: Path
    shards_reused: int = 0
    shards_extracted: int = 0


# ---------------------------------------------------------------------------------------
# Readers


def normalize_split(value: Any, path: str | Path) -> str:
    key = str(value).strip().lower()
    if key not in _SPLIT_ALIASES:
        raise RawCorpusError(path, f"unknown split {value!r}; expected one of {sorted(_SPLIT_ALIASES)}")
    return _SPLIT_ALIASES[key]


def _read_csv(path: Path, **kwargs: Any) -> Any:
    import pandas as pd

    if not path.is_file():
        raise RawCorpusError(path, "no such file")
    try:
        # keep_default_na=False: an utterance reading "NA" or "None" is text, not a missing value.
        return pd.read_csv(path, keep_default_na=False, encoding="utf-8", **kwargs)
    except (UnicodeDecodeError, ValueError) as error:
        raise RawCorpusError(path, f"cannot read as UTF-8 CSV: {error}") from error


def _require_columns(path: Path, frame: Any, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise RawCorpusError(path, f"missing column(s) {missing}; found {list(frame.columns)}")


_MELD_CLIP_DIRS = {
    "train": ("train_splits", "train/train_splits", "train"),
    "validation": ("dev_splits_complete", "dev/dev_splits_complete", "dev", "validation"),
    "test": ("output_repeated_splits_test", "test/output_repeated_splits_test", "test"),
}


def read_meld(csv_dir: str | Path, media_dir: str | Path | None = None) -> RawCorpus:
    """MELD: ``train/dev/test_sent_emo.csv`` in ``csv_dir``; clips ``diaX_uttY.mp4`` under ``media_dir``.

    The CSVs are parsed by the MELD loader (``mtaffect.data.corpora.meld.read_meld_csv``:
    encoding repair, checked labels), so ids, splits, labels and extra columns
    (``dialogue_id``, ``utterance_id``) are the same as ``load_corpus("meld", ...)``. A split
    whose CSV is absent is left out. ``media_dir`` may hold each split's clips in MELD.Raw's
    folders (``train_splits``, ``dev_splits_complete``, ``output_repeated_splits_test``,
    optionally under ``train/``, ``dev/``, ``test/``) or, for a single split, directly.
    Dialogue ids restart in every split, so ids (``dia0_utt0``) are unique within a split only.
    """
    from mtaffect.data.corpora.meld import MELD_FILES, read_meld_csv

    csv_dir = Path(csv_dir)
    if not csv_dir.is_dir():
        raise RawCorpusError(csv_dir, "MELD needs the folder holding train/dev/test_sent_emo.csv")
    found = {split: csv_dir / name for split, (_, name) in MELD_FILES.items() if (csv_dir / name).is_file()}
    if not found:
        raise RawCorpusError(csv_dir, f"none of {sorted(name for _, name in MELD_FILES.values())} is there")
    full_mask = [True] * len(EMOTION_LABELS)
    examples = []
    for split, path in found.items():
        clip_dir = _meld_clip_dir(Path(media_dir), split) if media_dir is not None else None
        for row in read_meld_csv(path):
            labels = unknown_labels()
            labels["emotion"] = [float(name == row["emotion"]) for name in EMOTION_LABELS]
            labels["emotion_mask"] = full_mask
            labels["sentiment"] = SENTIMENT_CLASS_SCORES[row["sentiment"]]
            labels["sentiment_mask"] = True
            labels["sentiment_class"] = row["sentiment"]
            media = str(clip_dir / f"{row['id']}.mp4") if clip_dir is not None else None
            examples.append(
                RawExample(
                    id=row["id"], split=split, text=row["text"], speaker=row["speaker"],
                    audio=media, video=media, labels=labels,
                    extra={"dialogue_id": row["dialogue_id"], "utterance_id": row["utterance_id"]},
                )
            )
    return RawCorpus(
        name="meld",
        examples=examples,
        tasks=["emotion", "sentiment"],
        emotion_labels=list(EMOTION_LABELS),
        notes={
            "format": "meld",
            "split_names": {"validation": "dev"},
            "sentiment_scores": dict(zip(SENTIMENT_CLASSES, SENTIMENT_CLASS_SCORES)),
        },
        extra_features={"dialogue_id": Value("int64"), "utterance_id": Value("int64")},
        source=str(csv_dir),
    )


def _meld_clip_dir(media_dir: Path, split: str) -> Path:
    if not media_dir.is_dir():
        raise RawCorpusError(media_dir, "no such media folder")
    for name in _MELD_CLIP_DIRS[split]:
        if (media_dir / name).is_dir():
            return media_dir / name
    return media_dir


def read_mustard(
    path: str | Path,
    media_dir: str | Path | None = None,
    protocol: str = "fold",
    fold: int = 0,
    validation_fraction: float = 0.1,
    seed: int = 0,
) -> RawCorpus:
    """MUStARD: ``sarcasm_data.json`` (``path`` or its folder); clips ``<id>.mp4`` under ``media_dir``.

    Splits follow the MUStARD loader (``mtaffect.data.corpora.mustard``), whose parsing
    functions this reuses: ``protocol="fold"`` takes fold ``fold`` of ``split_indices.p``
    (speaker-dependent 5-fold CV); ``"speaker_independent"`` makes every FRIENDS utterance
    the test set. ``validation_fraction`` of train is set aside as validation (stratified,
    hash-ordered by id with ``seed``; 0 = none). ``media_dir`` may be MUStARD's
    ``utterances_final`` folder or its parent.
    """
    from mtaffect.data.corpora.mustard import (
        JSON_NAME,
        SPEAKER_INDEPENDENT_TEST_SHOW,
        SPLITS_NAME,
        carve_validation,
        read_mustard_json,
        read_split_indices,
    )

    path = Path(path)
    json_path = path / JSON_NAME if path.is_dir() else path
    if not json_path.is_file():
        raise RawCorpusError(json_path, f"no such file (MUStARD's {JSON_NAME})")
    data = read_mustard_json(json_path)
    keys = list(data)
    if protocol == "fold":
        folds = read_split_indices(json_path.parent / SPLITS_NAME, len(keys))
        if not isinstance(fold, int) or not 0 <= fold < len(folds):
            raise ValueError(f"fold must be an int in [0, {len(folds) - 1}], got {fold!r}.")
        train_pos, test_pos = (positions.tolist() for positions in folds[fold])
        note: dict[str, Any] = {"protocol": "fold", "fold": fold, "num_folds": len(folds)}
    elif protocol == "speaker_independent":
        test_pos = [i for i, k in enumerate(keys) if data[k]["show"] == SPEAKER_INDEPENDENT_TEST_SHOW]
        train_pos = [i for i, k in enumerate(keys) if data[k]["show"] != SPEAKER_INDEPENDENT_TEST_SHOW]
        note = {"protocol": "speaker_independent", "test_show": SPEAKER_INDEPENDENT_TEST_SHOW}
    else:
        raise ValueError(f"protocol must be 'fold' or 'speaker_independent', got {protocol!r}.")
    train_keys = [keys[i] for i in train_pos]
    keep, held = carve_validation(train_keys, [bool(data[k]["sarcasm"]) for k in train_keys], validation_fraction, seed)
    splits = {"train": [train_keys[i] for i in keep]}
    if validation_fraction > 0:
        splits["validation"] = [train_keys[i] for i in held]
    splits["test"] = [keys[i] for i in test_pos]

    clip_dir = None
    if media_dir is not None:
        clip_dir = Path(media_dir)
        if (clip_dir / "utterances_final").is_dir():
            clip_dir = clip_dir / "utterances_final"
    examples = []
    for split, split_keys in splits.items():
        for key in split_keys:
            entry = data[key]
            labels = unknown_labels()
            labels["sarcasm"] = float(bool(entry["sarcasm"]))
            labels["sarcasm_mask"] = True
            media = str(clip_dir / f"{key}.mp4") if clip_dir is not None else None
            examples.append(
                RawExample(
                    id=str(key), split=split, text=entry["utterance"], speaker=str(entry["speaker"]),
                    audio=media, video=media, labels=labels,
                    extra={
                        "show": str(entry["show"]),
                        "context": [str(c) for c in entry["context"]],
                        "context_speakers": [str(c) for c in entry["context_speakers"]],
                    },
                )
            )
    return RawCorpus(
        name="mustard",
        examples=examples,
        tasks=["sarcasm"],
        notes={
            "format": "mustard",
            **note,
            "validation": {"fraction": validation_fraction, "seed": seed, "stratified": True},
        },
        extra_features={
            "show": Value("string"),
            "context": List(Value("string")),
            "context_speakers": List(Value("string")),
        },
        source=str(json_path),
    )


def _as_bool(value: Any, path: Path, key: str) -> bool:
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


def read_mmsa_fet(root: str | Path, sentiment_scale: float | None = None) -> RawCorpus:
    """MMSA-FET input: ``label.csv`` + ``Raw/<video_id>/<clip_id>.mp4`` under ``root``.

    ``label`` is a sentiment score; ``sentiment_scale`` multiplies it onto [-3, 3]. By
    default it is 3 when every label lies in [-1, 1] (CH-SIMS' scale) and 1 otherwise
    (MOSI/MOSEI already use [-3, 3]); the choice is recorded in the corpus notes. CH-SIMS'
    unimodal labels ``label_T/A/V`` become extra float32 columns ``sentiment_T/A/V`` on the
    same scale (NaN where a row has none). ``mode`` gives the split (``valid`` -> validation).
    """
    root = Path(root)
    label_path = root / "label.csv" if root.is_dir() else root
    root = label_path.parent
    frame = _read_csv(label_path, dtype=str)
    _require_columns(label_path, frame, ("video_id", "clip_id", "text", "label", "mode"))
    scores = _floats(frame["label"], label_path, "label")
    if sentiment_scale is None:
        sentiment_scale = 3.0 if np.all(np.abs(scores) <= 1.0) else 1.0
        if sentiment_scale == 3.0:
            logger.warning(
                "%s: every label lies in [-1, 1]; treating them as CH-SIMS-style scores and multiplying "
                "by 3 onto [-3, 3] (pass sentiment_scale=1 if they already are on [-3, 3]).", label_path,
            )
    low, high = SENTIMENT_RANGE
    scaled = scores * sentiment_scale
    bad = np.flatnonzero((scaled < low - 1e-6) | (scaled > high + 1e-6))
    if len(bad):
        raise RawCorpusError(
            label_path,
            f"labels x {sentiment_scale:g} fall outside [{low:g}, {high:g}] on data rows {bad[:5].tolist()}; "
            "pass the right sentiment_scale",
        )
    extras = {}
    for part in ("T", "A", "V"):
        column = f"label_{part}"
        if column in frame.columns and (frame[column].str.strip() != "").any():
            extras[f"sentiment_{part}"] = _floats(frame[column], label_path, column, allow_empty=True) * sentiment_scale
    raw_dir = root / "Raw"
    examples = []
    for i, row in enumerate(frame.itertuples(index=False)):
        record = row._asdict()
        video_id, clip_id = record["video_id"].strip(), record["clip_id"].strip()
        labels = unknown_labels()
        labels["sentiment"] = float(np.clip(scaled[i], low, high))
        labels["sentiment_mask"] = True
        media = str(_find_clip(raw_dir / video_id, clip_id))
        examples.append(
            RawExample(
                id=f"{video_id}$_${clip_id}",
                split=normalize_split(record["mode"], label_path),
                text=record["text"],
                audio=media,
                video=media,
                labels=labels,
                extra={name: float(values[i]) for name, values in extras.items()},
            )
        )
    notes = {
        "sentiment_scale": sentiment_scale,
        "sentiment": f"label.csv 'label' x {sentiment_scale:g} onto [-3, 3]",
    }
    if extras:
        notes["unimodal_labels"] = (
            f"label_T/A/V x {sentiment_scale:g} stored in extra float32 columns {sorted(extras)} (NaN = missing)"
        )
    return RawCorpus(
        name=root.name or "mmsa_fet",
        examples=examples,
        tasks=["sentiment"],
        notes=notes,
        extra_features={name: Value("float32") for name in sorted(extras)},
        source=str(label_path),
    )


def _find_clip(folder: Path, clip_id: str) -> Path:
    expected = folder / f"{clip_id}.mp4"
    if expected.is_file() or not folder.is_dir():
        return expected
    others = sorted(p for p in folder.glob(f"{clip_id}.*") if p.is_file())
    return others[0] if others else expected


def _floats(column: Any, path: Path, name: str, allow_empty: bool = False) -> np.ndarray:
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
        if suffix in (".csv", ".tsv"):
            frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", keep_default_na=False, dtype=str)
        elif suffix == ".jsonl":
            frame = pd.read_json(path, lines=True, dtype=False)
        elif suffix == ".json":
            frame = pd.read_json(path, dtype=False)
        elif suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            raise RawCorpusError(path, "expected a .csv, .tsv, .json, .jsonl or .parquet file")
    except (ValueError, UnicodeDecodeError) as error:
        raise RawCorpusError(path, f"cannot read the table: {error}") from error
    wanted = [c for c in (text_column, id_column, split_column, speaker_column, emotion_column,
                          sentiment_column, sarcasm_column) if c]
    _require_columns(path, frame, wanted)
    tasks = []
    emotion_mask = None
    if emotion_column:
        names = sorted({normalize_emotion(str(v)) for v in frame[emotion_column] if str(v).strip()})
        emotion_mask = emotion_label_mask(names)
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
                labels["sarcasm"] = 1.0 if _as_bool(record[sarcasm_column], path, f"row {i}") else 0.0
                labels["sarcasm_mask"] = True
        except ValueError as error:
            raise RawCorpusError(path, f"data row {i}: {error}") from error
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
        return {"sentiment": SENTIMENT_CLASS_SCORES[cls], "sentiment_mask": True, "sentiment_class": cls}
    score = float(text)
    low, high = SENTIMENT_RANGE
    if not low <= score <= high:
        raise ValueError(f"sentiment {score} outside [{low:g}, {high:g}]")
    return {"sentiment": score, "sentiment_mask": True, "sentiment_class": -1}


#: Format name -> reader, for the CLI.
RAW_FORMATS: dict[str, Callable[..., RawCorpus]] = {
    "meld": read_meld,
    "mustard": read_mustard,
    "mmsa-fet": read_mmsa_fet,
    "text": read_text_table,
}


# ---------------------------------------------------------------------------------------
# Extraction


def extract_corpus(
    corpus: RawCorpus,
    extractors: Sequence[Extractor] | Mapping[str, Extractor],
    work_dir: str | Path,
    output_dir: str | Path | None = None,
    shard_size: int = 256,
    overwrite: bool = False,
    progress: bool = True,
) -> ExtractionResult:
    """Extract every example of ``corpus`` with ``extractors`` into a unified ``DatasetDict``.

    Args:
        extractors: one per modality; an example is kept only if every one succeeds on it.
        work_dir: where finished shards, their markers and ``failures.jsonl`` go. Running
            again with the same work dir reuses finished shards (resume after a crash).
        output_dir: if given, the corpus is saved there (``save_to_disk``) and returned
            memory-mapped from it; otherwise it is memory-mapped from ``work_dir``.
        shard_size: examples per shard (the unit of resumption).
        overwrite: delete ``work_dir`` (and ``output_dir``) first instead of resuming.
        progress: show a tqdm progress bar (inputs per modality).

    Raises ``ValueError`` if the work dir was made with other extractors or another corpus.
    """
    extractors = list(extractors.values()) if isinstance(extractors, Mapping) else list(extractors)
    _check_extractors(corpus, extractors)
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}.")
    work_dir = Path(work_dir)
    if overwrite:
        shutil.rmtree(work_dir, ignore_errors=True)
        if output_dir is not None:
            shutil.rmtree(output_dir, ignore_errors=True)
    shard_dir = work_dir / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    extractors.sort(key=lambda ex: MODALITIES.index(ex.modality))
    dims = {ex.modality: int(ex.dim) for ex in extractors}
    features = build_features(dims)
    for name, feature in corpus.extra_features.items():
        if name in features:
            raise ValueError(f"Extra column {name!r} of {corpus.name} clashes with a unified-schema column.")
        features[name] = feature
    info = CorpusInfo(
        corpus=corpus.name,
        feature_set=feature_set_name(extractors),
        dims=dims,
        tasks=list(corpus.tasks),
        emotion_labels=list(corpus.emotion_labels),
        extractors={ex.modality: ex.describe() for ex in extractors},
        notes=dict(corpus.notes),
    )
    _check_manifest(work_dir, corpus, extractors, shard_size)

    plan = [
        (split, index, examples[start : start + shard_size])
        for split in corpus.splits()
        for examples in [corpus.split_examples(split)]
        for index, start in enumerate(range(0, len(examples), shard_size))
    ]
    from tqdm.auto import tqdm

    total = len(corpus.examples) * len(extractors)
    reused = extracted = 0
    with tqdm(total=total, desc=f"extract {corpus.name}", unit="input", disable=not progress) as bar:
        for split, index, shard in plan:
            stem = shard_dir / f"{split}-{index:05d}"
            fingerprint = _shard_fingerprint(shard)
            if _shard_done(stem, fingerprint):
                reused += 1
                bar.update(len(shard) * len(extractors))
                continue
            _extract_shard(stem, fingerprint, shard, extractors, corpus, info, features, bar)
            extracted += 1
    if reused:
        logger.info("%s: reused %d finished shard(s) from %s.", corpus.name, reused, work_dir)

    failures: list[dict[str, Any]] = []
    counts: dict[str, dict[str, int]] = {}
    splits: dict[str, Dataset] = {}
    for split in corpus.splits():
        parts = []
        counts[split] = {"examples": 0, "extracted": 0, "failed": 0}
        for s, index, shard in plan:
            if s != split:
                continue
            stem = shard_dir / f"{split}-{index:05d}"
            marker = json.loads(_marker(stem).read_text())
            failures.extend(marker["failures"])
            counts[split]["examples"] += len(shard)
            counts[split]["extracted"] += marker["rows"]
            parts.append(_open_shard(stem, features, info, split))
        counts[split]["failed"] = counts[split]["examples"] - counts[split]["extracted"]
        splits[split] = concatenate_datasets(parts, info=_dataset_info(features, info), split=NamedSplit(split))
    failures_file = work_dir / "failures.jsonl"
    _write_jsonl(failures_file, failures)
    _log_failures(corpus.name, failures, failures_file)
    info.notes["extraction"] = {
        "counts": counts,
        "failed_examples": sum(c["failed"] for c in counts.values()),
        "failures_file": "extraction_failures.jsonl",
    }
    dataset = DatasetDict(splits)
    set_corpus_info(dataset, info)
    validate_corpus(dataset)
    if output_dir is not None:
        output_dir = Path(output_dir)
        dataset.save_to_disk(str(output_dir))
        _write_jsonl(output_dir / "extraction_failures.jsonl", failures)
        from datasets import load_from_disk

        dataset = load_from_disk(str(output_dir))
        set_corpus_info(dataset, info)
    return ExtractionResult(
        dataset=dataset,
        failures=failures,
        counts=counts,
        work_dir=work_dir,
        failures_file=failures_file,
        shards_reused=reused,
        shards_extracted=extracted,
    )


def _check_extractors(corpus: RawCorpus, extractors: list[Extractor]) -> None:
    if not extractors:
        raise ValueError("Give at least one extractor.")
    modalities = [ex.modality for ex in extractors]
    if len(set(modalities)) != len(modalities) or not set(modalities) <= set(MODALITIES):
        raise ValueError(f"Give one extractor per modality ({', '.join(MODALITIES)}), got {modalities}.")
    for modality in ("audio", "visual"):
        if modality in modalities and corpus.examples and all(e.input_for(modality) is None for e in corpus.examples):
            raise ValueError(
                f"A {modality} extractor was given but corpus {corpus.name!r} has no media paths: "
                "pass the folder of clips (media_dir / --media-dir)."
            )


def _check_manifest(work_dir: Path, corpus: RawCorpus, extractors: list[Extractor], shard_size: int) -> None:
    manifest = {
        "format_version": SHARD_FORMAT_VERSION,
        "corpus": corpus.name,
        "shard_size": shard_size,
        "extra_columns": sorted(corpus.extra_features),
        # Batch size changes speed, not features: a resumed run may pick another one.
        "extractors": [
            {
                "class": d["class"],
                "name": d["name"],
                "dim": d["dim"],
                "config": {k: v for k, v in d["config"].items() if k != "batch_size"},
            }
            for d in (ex.describe() for ex in extractors)
        ],
    }
    path = work_dir / "manifest.json"
    if path.is_file():
        try:
            previous = json.loads(path.read_text())
        except json.JSONDecodeError:
            previous = None
        if previous != json.loads(json.dumps(manifest)):
            raise ValueError(
                f"{work_dir} holds shards of another extraction (corpus, extractors or shard size differ: "
                f"{previous} vs {manifest}); use another work dir or overwrite=True (--overwrite)."
            )
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _shard_fingerprint(shard: list[RawExample]) -> str:
    digest = hashlib.sha256()
    for example in shard:
        record = asdict(example)
        for key in ("audio", "video"):
            if record[key] is not None:
                record[f"{key}_stat"] = _file_stat(record[key])
        digest.update(json.dumps(record, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _file_stat(path: str) -> list[int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def _marker(stem: Path) -> Path:
    return stem.with_name(stem.name + ".done.json")


def _shard_done(stem: Path, fingerprint: str) -> bool:
    marker = _marker(stem)
    if not marker.is_file() or not stem.with_suffix(".arrow").is_file():
        return False
    try:
        done = json.loads(marker.read_text())
    except json.JSONDecodeError:
        return False
    if done.get("fingerprint") != fingerprint:
        logger.info("%s: inputs changed since it was extracted; extracting it again.", stem.name)
        return False
    return True


def _extract_shard(
    stem: Path,
    fingerprint: str,
    shard: list[RawExample],
    extractors: list[Extractor],
    corpus: RawCorpus,
    info: CorpusInfo,
    features: Features,
    bar: Any,
) -> None:
    outputs: dict[str, list[Any]] = {}
    failures: list[dict[str, Any]] = []
    failed: set[int] = set()
    for extractor in extractors:
        items = [example.input_for(extractor.modality) for example in shard]
        results: list[Any] = [None] * len(items)
        todo = [i for i, item in enumerate(items) if item is not None]
        for i, item in enumerate(items):
            if item is None:
                results[i] = ExtractionError(f"<{extractor.modality} of {shard[i].id}>", "no input file given")
        # Text extractors batch internally: give them the whole shard; media one file at a time.
        step = len(todo) if hasattr(extractor, "batch_size") else 1
        for start in range(0, len(todo), max(step, 1)):
            chunk = todo[start : start + step]
            for i, result in zip(chunk, extractor.extract_safe([items[i] for i in chunk])):
                results[i] = result
            bar.update(len(chunk))
        bar.update(len(items) - len(todo))
        for i, result in enumerate(results):
            if isinstance(result, ExtractionError):
                failed.add(i)
                failures.append(
                    {
                        "id": shard[i].id,
                        "split": shard[i].split,
                        "modality": extractor.modality,
                        "extractor": extractor.name,
                        "input": result.item,
                        "error": result.reason,
                    }
                )
        outputs[extractor.modality] = results
    keep = [i for i in range(len(shard)) if i not in failed]
    columns: dict[str, Any] = {
        "id": [shard[i].id for i in keep],
        "source": [corpus.name] * len(keep),
        "feature_set": [info.feature_set] * len(keep),
        "text": [shard[i].text for i in keep],
        "speaker": [shard[i].speaker for i in keep],
    }
    for extractor in extractors:
        columns[feature_column(extractor.modality)] = _sequence_array(
            [outputs[extractor.modality][i] for i in keep], extractor.dim
        )
    defaults = unknown_labels()
    labels = [{**defaults, **shard[i].labels} for i in keep]
    for name in defaults:
        columns[name] = [row[name] for row in labels]
    for name in corpus.extra_features:
        columns[name] = [shard[i].extra.get(name) for i in keep]

    arrow_path = stem.with_suffix(".arrow")
    tmp = stem.with_suffix(".arrow.tmp")
    writer = ArrowWriter(features=features, path=str(tmp))
    if keep:
        writer.write_batch(columns)
    writer.finalize()
    os.replace(tmp, arrow_path)
    marker = {"fingerprint": fingerprint, "rows": len(keep), "failures": failures}
    tmp_marker = _marker(stem).with_suffix(".tmp")
    tmp_marker.write_text(json.dumps(marker, ensure_ascii=False))
    os.replace(tmp_marker, _marker(stem))


def _sequence_array(sequences: list[np.ndarray], dim: int) -> pa.Array:
    """``Array2D(shape=(None, dim), float32)`` column built from offsets and one flat buffer.

    Much faster than letting Arrow infer nested lists from Python (token-level MELD is ~80M
    floats).
    """
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    total = int(lengths.sum())
    flat = (
        np.concatenate([np.asarray(s, dtype=np.float32).reshape(-1) for s in sequences])
        if total
        else np.zeros(0, dtype=np.float32)
    )
    inner = pa.ListArray.from_arrays(pa.array(np.arange(total + 1, dtype=np.int32) * dim), pa.array(flat))
    offsets = np.zeros(len(sequences) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    outer = pa.ListArray.from_arrays(pa.array(offsets), inner)
    return pa.ExtensionArray.from_storage(Array2DExtensionType((None, dim), "float32"), outer)


def _dataset_info(features: Features, info: CorpusInfo) -> DatasetInfo:
    return DatasetInfo(features=features.copy(), description=info.to_json())


def _open_shard(stem: Path, features: Features, info: CorpusInfo, split: str) -> Dataset:
    return Dataset.from_file(
        str(stem.with_suffix(".arrow")), info=_dataset_info(features, info), split=NamedSplit(split)
    )


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def _log_failures(name: str, failures: list[dict[str, Any]], path: Path) -> None:
    if not failures:
        return
    for failure in failures[:_MAX_LOGGED_FAILURES]:
        logger.warning(
            "%s: skipped %s/%s (%s): %s: %s",
            name, failure["split"], failure["id"], failure["modality"], failure["input"], failure["error"],
        )
    if len(failures) > _MAX_LOGGED_FAILURES:
        logger.warning("%s: ... and %d more failures.", name, len(failures) - _MAX_LOGGED_FAILURES)
    logger.warning("%s: %d input(s) failed; every failure is listed in %s.", name, len(failures), path)
