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

Text (read by ``mtaffect.data.corpora.split_csv``, as EmoryNLP's): the CSVs are read as UTF-8 and, failing that, as Windows-1252; C1 control
characters (the ``\\x92`` of some releases, a Windows-1252 quote that went through Latin-1)
and UTF-8-read-as-1252 mojibake (``â€™``) are repaired, so the utterance keeps its
apostrophes. The text itself is never dropped.

Features: pass ``features=`` (see ``mtaffect.data.corpora.user_features``; keys
``train/dia0_utt0`` in one file, or one file per split keyed ``dia0_utt0``), or leave it
out to extract text features with ``mtaffect.data.extract.TextExtractor``. Extra columns:
``dialogue_id``, ``utterance_id``; with ``context={"past": K, "future": J}`` the turns of the
utterance's dialogue in the same split (``Dialogue_ID`` restarts in every split), ordered by
``Utterance_ID`` (``mtaffect.data.context``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from datasets import Value

from mtaffect.data.context import CONTEXT_OPTION_HELP
from mtaffect.data.corpora.registry import register_corpus
from mtaffect.data.corpora.split_csv import SplitCsvCorpus, repair_text
from mtaffect.data.corpora.user_features import feature_options
from mtaffect.data.raw import RawCorpus, RawCorpusError, RawExample
from mtaffect.data.schema import unknown_labels
from mtaffect.tasks import SENTIMENT_CLASS_SCORES, SENTIMENT_CLASSES, label_space, normalize_emotion

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
_EXTRA = {"dialogue_id": Value("int64"), "utterance_id": Value("int64")}


def _parse(record: Mapping[str, str], line: int) -> dict[str, Any]:
    """One MELD record: id ``dia<D>_utt<U>``, the emotion's index in ``emotion/meld``, the polarity class."""
    try:
        dialogue, utterance = int(record["Dialogue_ID"]), int(record["Utterance_ID"])
    except ValueError:
        raise ValueError(
            f"Dialogue_ID / Utterance_ID must be integers, found {record['Dialogue_ID']!r} / {record['Utterance_ID']!r}."
        ) from None
    space = label_space(MELD_SPACES["emotion"])
    try:
        emotion = space.union.index(normalize_emotion(record["Emotion"]))
    except ValueError:
        raise ValueError(f"unknown emotion {record['Emotion']!r} (MELD uses {', '.join(space.labels)}).") from None
    sentiment = record["Sentiment"].strip().lower()
    if sentiment not in SENTIMENT_CLASSES:
        raise ValueError(f"unknown sentiment {record['Sentiment']!r} (expected {', '.join(SENTIMENT_CLASSES)}).")
    return {
        "id": f"dia{dialogue}_utt{utterance}",
        "text": repair_text(record["Utterance"]),
        "speaker": repair_text(record["Speaker"]),
        "emotion": emotion,
        "sentiment": SENTIMENT_CLASSES.index(sentiment),
        "dialogue_id": dialogue,
        "utterance_id": utterance,
    }


#: MELD as a CSV-per-split corpus (the reading it shares with EmoryNLP: ``split_csv``).
MELD = SplitCsvCorpus(
    name="meld",
    title="MELD",
    files=MELD_FILES,
    columns=REQUIRED_COLUMNS,
    parse=_parse,
    spaces=MELD_SPACES,
    extra_features=_EXTRA,
    dialogue=lambda row: (row["dialogue_id"], row["utterance_id"]),
    notes={
        "format": "meld",
        "split_names": {"validation": "dev"},
        "sentiment_scores": dict(zip(SENTIMENT_CLASSES, SENTIMENT_CLASS_SCORES)),
    },
)
OPTIONS = {**feature_options("meld"), "context": CONTEXT_OPTION_HELP}


def read_meld_csv(file: Path) -> list[dict[str, Any]]:
    """Rows of one MELD CSV with checked, typed fields (emotion as its index in ``emotion/meld``)."""
    return MELD.read(file)


def looks_like_meld(path: Path) -> bool:
    return MELD.looks_like(path)


register_corpus(
    "meld",
    "meld",
    detect=looks_like_meld,
    description="MELD: the three *_sent_emo.csv files; 7 single-label emotions + 3-class sentiment, features user-supplied or extracted",
    options=OPTIONS,
)(MELD.load)

# ---------------------------------------------------------------------------------------
# Raw reader: transcripts + clips for feature extraction (mtaffect extract)


_MELD_CLIP_DIRS = {
    "train": ("train_splits", "train/train_splits", "train"),
    "validation": ("dev_splits_complete", "dev/dev_splits_complete", "dev", "validation"),
    "test": ("output_repeated_splits_test", "test/output_repeated_splits_test", "test"),
}


def read_meld(csv_dir: str | Path, media_dir: str | Path | None = None) -> RawCorpus:
    """MELD: ``train/dev/test_sent_emo.csv`` in ``csv_dir``; clips ``diaX_uttY.mp4`` under ``media_dir``.

    The CSVs are parsed as the MELD loader parses them (``MELD.read``:
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
    found = MELD.split_files(csv_dir, required=False, error=RawCorpusError)
    examples = []
    for split, path in found.items():
        clip_dir = _meld_clip_dir(Path(media_dir), split) if media_dir is not None else None
        for row in MELD.read(path):
            labels = {**unknown_labels(), **MELD.label_columns(row)}
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
        tasks=MELD.tasks,
        emotion_labels=MELD.emotion_labels,
        label_spaces=dict(MELD_SPACES),
        notes=dict(MELD.notes),
        extra_features=dict(_EXTRA),
        source=str(csv_dir),
    )


def _meld_clip_dir(media_dir: Path, split: str) -> Path:
    if not media_dir.is_dir():
        raise RawCorpusError(media_dir, "no such media folder")
    for name in _MELD_CLIP_DIRS[split]:
        if (media_dir / name).is_dir():
            return media_dir / name
    return media_dir
