"""MELD: ``train_sent_emo.csv``, ``dev_sent_emo.csv``, ``test_sent_emo.csv`` + features.

Columns: ``Sr No., Utterance, Speaker, Emotion, Sentiment, Dialogue_ID, Utterance_ID,
Season, Episode, StartTime, EndTime``; an utterance's clip is ``dia<D>_utt<U>.mp4``, which
is also its id here (ids repeat across splits: each split is its own folder of clips).

Labels: MELD is gold for two tasks, in its own label spaces (``CorpusInfo.label_spaces``):
emotion in the ``emotion/meld`` set (7 single-label classes under MELD's names, ``joy`` is the
union's ``happiness``), sentiment in the ``sentiment/polarity`` space: 3 classes stored as
``sentiment_class`` (0 negative, 1 neutral, 2 positive) with ``sentiment_num_classes`` 3, so
a model trains a 3-class cross-entropy head on them (not a regression). ``sentiment`` holds
the class' expected score -1/0/1 (``mtaffect.tasks.polarity_to_score``) for inspection.

Text: the CSVs are read as UTF-8 and, failing that, as Windows-1252; C1 control
characters (the ``\\x92`` of some releases, a Windows-1252 quote that went through Latin-1)
and UTF-8-read-as-1252 mojibake (``â€™``) are repaired, so the utterance keeps its
apostrophes. The text itself is never dropped.

Features: pass ``features=`` (see ``mtaffect.data.corpora.user_features``; keys
``train/dia0_utt0`` in one file, or one file per split keyed ``dia0_utt0``), or leave it
out to extract text features with ``mtaffect.data.extract.TextExtractor``. Extra columns:
``dialogue_id``, ``utterance_id`` (for conversational context).
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from typing import Any

from datasets import Value

from mtaffect.data.corpora.base import CorpusPlan, batched, unique_ids
from mtaffect.data.corpora.encoding import decode_text
from mtaffect.data.corpora.errors import CorpusFormatError
from mtaffect.data.corpora.registry import register_corpus
from mtaffect.data.corpora.user_features import (
    FeatureProvider,
    kept_batches,
    make_text_extractor,
    open_feature_sources,
)
from mtaffect.data.raw import RawCorpus, RawCorpusError, RawExample
from mtaffect.data.schema import CorpusInfo, unknown_labels
from mtaffect.tasks import (
    EMOTION_LABELS,
    SENTIMENT_CLASS_SCORES,
    SENTIMENT_CLASSES,
    label_space,
    normalize_emotion,
)

#: MELD's label spaces: its own 7 emotion names and 3 polarity classes.
MELD_SPACES: dict[str, str] = {"emotion": "emotion/meld", "sentiment": "sentiment/polarity"}

logger = logging.getLogger(__name__)

#: Unified split -> (MELD's split name, CSV file).
MELD_FILES: dict[str, tuple[str, str]] = {
    "train": ("train", "train_sent_emo.csv"),
    "validation": ("dev", "dev_sent_emo.csv"),
    "test": ("test", "test_sent_emo.csv"),
}
REQUIRED_COLUMNS: tuple[str, ...] = ("Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID")
_BATCH = 256

OPTIONS = {
    "features": "folder or {modality: file | {split: file}} of per-utterance features; None = extract text",
    "transpose": "modalities whose files store [D, T]",
    "missing_features": "'error' (default) or 'drop' utterances absent from a feature file",
    "extract_text": "None = extract text features only when features is None; True/False forces it",
    "extractor": "options passed to mtaffect.data.extract.TextExtractor",
    "feature_set": "feature-set name (default: the extractor's name or meld-user-<dims>)",
    "limit": "keep the first N utterances of each split (a dry run: only those are extracted)",
}

_C1 = {code: bytes([code]).decode("cp1252") for code in range(0x80, 0xA0) if code not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)}


def repair_text(text: str) -> str:
    """Undo the two encoding accidents found in MELD releases; leave anything else alone.

    Examples:
        >>> repair_text("You\\x92re") == "You\\u2019re", repair_text("Youâ€™re") == "You\\u2019re"
        (True, True)
    """
    if any("\x80" <= ch <= "\x9f" for ch in text):
        text = text.translate(_C1)
    if "â€" in text or "Ã" in text:
        try:
            text = text.encode("cp1252").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return text


def read_meld_csv(file: Path) -> list[dict[str, Any]]:
    """Rows of one MELD CSV with checked, typed fields."""
    try:
        raw = file.read_bytes()
    except OSError as error:
        raise CorpusFormatError(file, f"cannot be read ({error.strerror or error}).") from None
    # Latin-1 decodes every byte; C1 characters are repaired per field (repair_text).
    content = decode_text(raw, file, fallback="latin-1")
    try:
        reader = csv.DictReader(io.StringIO(content, newline=""))
        header = [name.strip() for name in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise CorpusFormatError(file, f"lacks the column(s) {missing} (header: {header}).")
        reader.fieldnames = header
        records = list(reader)
    except csv.Error as error:
        raise CorpusFormatError(file, f"not a readable CSV ({error}).") from None
    rows = []
    for line, record in enumerate(records, start=2):
        if None in record:
            raise CorpusFormatError(file, f"line {line} has more fields than the header.")
        if any(record.get(c) is None for c in REQUIRED_COLUMNS):
            raise CorpusFormatError(file, f"line {line} has fewer fields than the header.")
        try:
            dialogue, utterance = int(record["Dialogue_ID"]), int(record["Utterance_ID"])
        except ValueError:
            raise CorpusFormatError(
                file, f"line {line}: Dialogue_ID / Utterance_ID must be integers, found {record['Dialogue_ID']!r} / {record['Utterance_ID']!r}."
            ) from None
        try:
            emotion = normalize_emotion(record["Emotion"])
        except ValueError:
            raise CorpusFormatError(
                file, f"line {line}: unknown emotion {record['Emotion']!r} (MELD uses anger, disgust, fear, joy, neutral, sadness, surprise)."
            ) from None
        sentiment = record["Sentiment"].strip().lower()
        if sentiment not in SENTIMENT_CLASSES:
            raise CorpusFormatError(file, f"line {line}: unknown sentiment {record['Sentiment']!r} (expected {', '.join(SENTIMENT_CLASSES)}).")
        rows.append(
            {
                "id": f"dia{dialogue}_utt{utterance}",
                "text": repair_text(record["Utterance"]),
                "speaker": repair_text(record["Speaker"]),
                "emotion": emotion,
                "sentiment": SENTIMENT_CLASSES.index(sentiment),
                "dialogue_id": dialogue,
                "utterance_id": utterance,
            }
        )
    if not rows:
        raise CorpusFormatError(file, "has a header but no utterances.")
    return rows


def looks_like_meld(path: Path) -> bool:
    names = {name for _, name in MELD_FILES.values()}
    return path.name in names if path.is_file() else any((path / name).is_file() for name in names)


def _load_meld(
    path: Path,
    features: Any = None,
    transpose: Any = None,
    missing_features: str = "error",
    extract_text: bool | None = None,
    extractor: dict[str, Any] | None = None,
    feature_set: str | None = None,
    limit: int | None = None,
) -> CorpusPlan:
    folder = path if path.is_dir() else path.parent
    splits = {}
    for split, (_, name) in MELD_FILES.items():
        file = folder / name
        if not file.is_file():
            raise CorpusFormatError(folder, f"missing {name} (MELD needs train_sent_emo.csv, dev_sent_emo.csv, test_sent_emo.csv).")
        splits[split] = read_meld_csv(file)[:limit]
    if extract_text is None:
        extract_text = features is None
    aliases = {meld: split for split, (meld, _) in MELD_FILES.items()}
    sources = open_feature_sources(features, folder, transpose, split_aliases=aliases)
    text_extractor = make_text_extractor(extractor, folder) if extract_text else None
    provider = FeatureProvider(sources, text_extractor, missing_features, folder)
    info = CorpusInfo(
        corpus="meld",
        feature_set=feature_set or provider.default_feature_set("meld"),
        dims=provider.dims,
        tasks=["emotion", "sentiment"],
        emotion_labels=list(label_space(MELD_SPACES["emotion"]).labels),
        label_spaces=dict(MELD_SPACES),
        extractors=provider.extractors(),
        notes={
            "format": "meld",
            "split_names": {"validation": "dev"},
            "sentiment_scores": dict(zip(SENTIMENT_CLASSES, SENTIMENT_CLASS_SCORES)),
            "split_sizes_before_drops": {k: len(v) for k, v in splits.items()},
        },
    )
    extra = {"dialogue_id": Value("int64"), "utterance_id": Value("int64")}
    batches = kept_batches(provider, info.notes, "MELD", _batches(splits, provider, folder))
    return CorpusPlan(info, list(splits), batches, folder, extra, rows=sum(map(len, splits.values())))


def _batches(splits: dict[str, list[dict[str, Any]]], provider: FeatureProvider, folder: Path):
    full_mask = label_space(MELD_SPACES["emotion"]).union_mask()
    for split, rows in splits.items():
        meld_split = MELD_FILES[split][0]
        ids = unique_ids([r["id"] for r in rows], folder / MELD_FILES[split][1], split)
        for part in batched(len(rows), _BATCH):
            chunk, chunk_ids = rows[part], ids[part]
            keys = [[f"{meld_split}/{i}", f"{split}/{i}", i] for i in chunk_ids]
            columns, keep = provider.fill(split, keys, [r["text"] for r in chunk])
            batch: dict[str, Any] = {
                "id": chunk_ids,
                "text": [r["text"] for r in chunk],
                "speaker": [r["speaker"] for r in chunk],
                "emotion": [[float(name == r["emotion"]) for name in EMOTION_LABELS] for r in chunk],
                "emotion_mask": [full_mask] * len(chunk),
                "emotion_multilabel": [False] * len(chunk),
                "sentiment": [SENTIMENT_CLASS_SCORES[r["sentiment"]] for r in chunk],
                "sentiment_mask": [True] * len(chunk),
                "sentiment_class": [r["sentiment"] for r in chunk],
                "sentiment_num_classes": [len(SENTIMENT_CLASSES)] * len(chunk),
                "dialogue_id": [r["dialogue_id"] for r in chunk],
                "utterance_id": [r["utterance_id"] for r in chunk],
                **columns,
            }
            yield split, batch, keep


register_corpus(
    "meld",
    "meld",
    detect=looks_like_meld,
    description="MELD: the three *_sent_emo.csv files; 7 single-label emotions + 3-class sentiment, features user-supplied or extracted",
    options=OPTIONS,
)(_load_meld)

# ---------------------------------------------------------------------------------------
# Raw reader: transcripts + clips for feature extraction (mtaffect extract)


_MELD_CLIP_DIRS = {
    "train": ("train_splits", "train/train_splits", "train"),
    "validation": ("dev_splits_complete", "dev/dev_splits_complete", "dev", "validation"),
    "test": ("output_repeated_splits_test", "test/output_repeated_splits_test", "test"),
}


def read_meld(csv_dir: str | Path, media_dir: str | Path | None = None) -> RawCorpus:
    """MELD: ``train/dev/test_sent_emo.csv`` in ``csv_dir``; clips ``diaX_uttY.mp4`` under ``media_dir``.

    The CSVs are parsed by the MELD loader (``read_meld_csv``:
    encoding repair, checked labels), so ids, splits, labels and extra columns
    (``dialogue_id``, ``utterance_id``) are the same as ``load_corpus("meld", ...)``. A split
    whose CSV is absent is left out. ``media_dir`` may hold each split's clips in MELD.Raw's
    folders (``train_splits``, ``dev_splits_complete``, ``output_repeated_splits_test``,
    optionally under ``train/``, ``dev/``, ``test/``) or, for a single split, directly.
    Dialogue ids restart in every split, so ids (``dia0_utt0``) are unique within a split only.
    """
    csv_dir = Path(csv_dir)
    if not csv_dir.is_dir():
        raise RawCorpusError(csv_dir, "MELD needs the folder holding train/dev/test_sent_emo.csv")
    found = {split: csv_dir / name for split, (_, name) in MELD_FILES.items() if (csv_dir / name).is_file()}
    if not found:
        raise RawCorpusError(csv_dir, f"none of {sorted(name for _, name in MELD_FILES.values())} is there")
    full_mask = label_space(MELD_SPACES["emotion"]).union_mask()
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
            labels["sentiment_num_classes"] = len(SENTIMENT_CLASSES)
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
        emotion_labels=list(label_space(MELD_SPACES["emotion"]).labels),
        label_spaces=dict(MELD_SPACES),
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
