"""CMU-MultimodalSDK computational sequences (``.csd``, HDF5) of CMU-MOSI and CMU-MOSEI.

A computational sequence is an HDF5 file ``<root>/data/<video_id>/{features [T, D],
intervals [T, 2]}`` plus ``<root>/metadata``. A corpus is a folder of them, one per
modality plus the labels, e.g. for MOSEI ``CMU_MOSEI_TimestampedWordVectors.csd`` (GloVe
300), ``CMU_MOSEI_COVAREP.csd`` (74), ``CMU_MOSEI_VisualFacet42.csd`` (35) and
``CMU_MOSEI_Labels.csd`` whose rows are segments ``[sentiment, happy, sad, anger,
surprise, disgust, fear]`` with their time intervals (MOSI's label file has one column,
sentiment).

What the loader does, as the SDK's ``align`` to the labels does:

* each label interval of a video is one example, id ``"<video_id>[<k>]"`` (k-th label
  row of that video, the SDK's segment ids);
* each modality contributes the frames whose interval overlaps the segment
  (``frame_start < segment_end and frame_end > segment_start``), as an unaligned
  ``[T, D]`` sequence; ``collapse="mean"`` averages them into one frame instead, and
  ``collapse="words"`` aligns every modality to the words (the SDK's ``align`` to the word
  vectors with an average, the layout of the "aligned" MOSI/MOSEI files): one frame per
  word-vector frame of the segment, the other modalities averaged over that word's interval
  (a word no frame of some modality overlaps is dropped and counted). Words from an optional
  ``TimestampedWords`` file (``sp`` silences dropped) become the ``text``.
  Segments with no frame in some modality, and videos missing from a modality's file, are
  dropped (counted in ``notes``, as the SDK warns and drops them);
* labels: sentiment in [-3, 3]; MOSEI's six emotion intensities (0..3) become multi-label
  emotions present where the intensity is > 0 (a row of zeros is a gold "none of the six"),
  ``emotion_mask`` on happiness, sadness, anger, surprise, disgust and fear. MOSEI has gold
  labels for two tasks;
* folds: the SDK's standard folds are lists of video ids
  (``cmu_mosei_std_folds.standard_{train,valid,test}_fold``). Pass them as ``folds`` (a JSON
  file or dict with ``train``, ``valid``/``validation`` and ``test`` lists); videos in no fold
  are dropped. Without folds, videos are split deterministically by a hash of their id
  (70/10/20 %) and a warning says so: results are then not comparable with the literature.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from mtaffect.data.corpora.base import SPLITS, CorpusPlan, check_sentiment, decode_text, stable_fraction
from mtaffect.data.corpora.errors import CorpusFormatError
from mtaffect.data.corpora.registry import register_corpus
from mtaffect.data.schema import SPLIT_ALIASES, CorpusInfo, canonical_split, feature_column
from mtaffect.tasks import EMOTION_LABELS, emotion_label_mask

logger = logging.getLogger(__name__)

ROLES: tuple[str, ...] = ("text", "audio", "visual", "labels", "words")
#: Default computational-sequence file names per corpus (as the SDK downloads them).
SDK_DEFAULT_FILES: dict[str, dict[str, str]] = {
    "mosei": {
        "text": "CMU_MOSEI_TimestampedWordVectors.csd",
        "audio": "CMU_MOSEI_COVAREP.csd",
        "visual": "CMU_MOSEI_VisualFacet42.csd",
        "labels": "CMU_MOSEI_Labels.csd",
        "words": "CMU_MOSEI_TimestampedWords.csd",
    },
    "mosi": {
        "text": "CMU_MOSI_TimestampedWordVectors.csd",
        "audio": "CMU_MOSI_COVAREP.csd",
        "visual": "CMU_MOSI_Visual_Facet_42.csd",
        "labels": "CMU_MOSI_Opinion_Labels.csd",
        "words": "CMU_MOSI_TimestampedWords.csd",
    },
}
#: Name fragments that identify a role when the default file name is absent.
_PATTERNS: dict[str, tuple[str, ...]] = {
    "text": ("wordvector", "glove"),
    "audio": ("covarep", "opensmile"),
    "visual": ("facet", "openface"),
    "labels": ("label",),
    "words": ("timestampedwords",),
}
#: MOSEI label columns after sentiment, as union emotion names.
MOSEI_EMOTIONS: tuple[str, ...] = ("happiness", "sadness", "anger", "surprise", "disgust", "fear")
_DEFAULT_FRACTIONS = (0.7, 0.1)
_BATCH = 256
COLLAPSES: tuple[str, ...] = ("none", "mean", "words")

OPTIONS = {
    "text": "word-vector .csd (file name in the folder or a path; '' to leave text out)",
    "audio": "acoustic .csd ('' to leave audio out)",
    "visual": "visual .csd ('' to leave visual out)",
    "labels": "label .csd (required)",
    "words": "TimestampedWords .csd for the raw text ('' for none)",
    "folds": "JSON file or dict with train / valid / test video-id lists (the SDK's standard folds)",
    "collapse": "'none' (default): frames within each segment; 'mean': their average (one frame); "
    "'words': every modality averaged per word of the word-vector sequence (word-aligned)",
    "feature_set": "feature-set name (default cmu_sdk-<corpus>)",
}


def looks_like_sdk(path: Path) -> bool:
    if path.is_file():
        return path.suffix == ".csd"
    return path.is_dir() and any(p.suffix == ".csd" for p in path.iterdir())


def _resolve(folder: Path, corpus: str, role: str, value: str | None) -> Path | None:
    if value is not None:
        if str(value).strip().lower() in ("", "none"):
            return None
        candidate = Path(value).expanduser()
        candidate = candidate if candidate.is_absolute() else folder / candidate
        if not candidate.is_file():
            raise CorpusFormatError(candidate, f"no such file (given as the {role} computational sequence).")
        return candidate
    default = folder / SDK_DEFAULT_FILES[corpus][role]
    if default.is_file():
        return default
    matches = sorted(
        p for p in folder.glob("*.csd") if any(fragment in p.name.lower() for fragment in _PATTERNS[role])
    )
    if role == "text":
        matches = [p for p in matches if "timestampedwords" not in p.name.lower()]
    if len(matches) > 1:
        raise CorpusFormatError(
            folder, f"several files could be the {role} sequence ({', '.join(p.name for p in matches)}); pick one with {role}=..."
        )
    return matches[0] if matches else None


class ComputationalSequence:
    """Read-only access to one ``.csd`` file; every error names the file (and video)."""

    def __init__(self, path: Path, role: str) -> None:
        import h5py

        self.path, self.role = path, role
        try:
            self.file = h5py.File(path, "r")
        except OSError as error:
            raise CorpusFormatError(path, f"not a readable HDF5 computational sequence ({error}).") from None
        roots = [name for name in self.file if isinstance(self.file[name], h5py.Group) and "data" in self.file[name]]
        if not roots:
            keys = list(self.file)[:5]
            self.file.close()
            raise CorpusFormatError(
                path, f"no '<root>/data' group: not a computational sequence (top-level keys: {keys})."
            )
        self.root = sorted(roots)[0]
        self.data = self.file[self.root]["data"]
        self.metadata = self._metadata()

    def _metadata(self) -> dict[str, str]:
        group = self.file[self.root].get("metadata")
        found: dict[str, str] = {}
        if group is None:
            return found
        try:
            items = list(group.attrs.items())
            if hasattr(group, "items"):
                items += [(k, v[()]) for k, v in group.items() if hasattr(v, "shape")]
        except (OSError, TypeError, ValueError):
            return found
        for key, value in items:
            text = decode_text(value)
            if len(text) < 300:
                found[str(key)] = text
        return found

    def videos(self) -> list[str]:
        return list(self.data)

    def __contains__(self, video: str) -> bool:
        return video in self.data

    def read(self, video: str, text: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``(features [T, D], intervals [T, 2])`` of a video, checked."""
        where = f"video {video!r} of the {self.role} sequence"
        group = self.data[video]
        for key in ("features", "intervals"):
            if not hasattr(group, "keys") or key not in group:
                raise CorpusFormatError(self.path, f"{where} has no {key!r} dataset.")
        try:
            features = group["features"][()]
            intervals = np.asarray(group["intervals"][()], dtype=np.float64)
        except (OSError, TypeError, ValueError) as error:
            raise CorpusFormatError(self.path, f"{where} cannot be read ({error}).") from None
        if intervals.ndim != 2 or intervals.shape[1] != 2:
            raise CorpusFormatError(self.path, f"{where}: 'intervals' should be [T, 2], found shape {intervals.shape}.")
        if features.ndim != 2:
            raise CorpusFormatError(self.path, f"{where}: 'features' should be [T, D], found shape {features.shape}.")
        if len(features) != len(intervals):
            raise CorpusFormatError(
                self.path, f"{where}: 'features' has {len(features)} rows but 'intervals' has {len(intervals)}."
            )
        if not text:
            if features.dtype.kind not in "fiu":
                raise CorpusFormatError(self.path, f"{where}: 'features' should be numeric, found dtype {features.dtype}.")
            features = features.astype(np.float32, copy=False)
        if not np.isfinite(intervals).all():
            raise CorpusFormatError(self.path, f"{where}: 'intervals' holds NaN or inf.")
        return features, intervals

    def dim(self) -> int:
        for video in self.data:
            return int(self.read(video)[0].shape[1])
        raise CorpusFormatError(self.path, f"the {self.role} sequence has no videos.")

    def close(self) -> None:
        self.file.close()


def _load_folds(folds: Any, folder: Path) -> dict[str, str] | None:
    """video id -> split, from a JSON file or dict of id lists."""
    if folds is None:
        return None
    source = folder
    if isinstance(folds, (str, Path)):
        source = Path(folds).expanduser()
        source = source if source.is_absolute() else folder / source
        try:
            folds = json.loads(source.read_text(encoding="utf-8"))
        except OSError as error:
            raise CorpusFormatError(source, f"cannot read the folds file ({error.strerror or error}).") from None
        except json.JSONDecodeError as error:
            raise CorpusFormatError(source, f"the folds file is not valid JSON ({error}).") from None
    if not isinstance(folds, dict):
        raise CorpusFormatError(source, "folds must map train / valid / test to lists of video ids.")
    mapping: dict[str, str] = {}
    for key, videos in folds.items():
        split = canonical_split(str(key).lower().replace("standard_", "").replace("_fold", ""))
        if split not in SPLIT_ALIASES:
            raise CorpusFormatError(source, f"unknown fold {key!r}; expected train, valid and test.")
        if not isinstance(videos, (list, tuple)):
            raise CorpusFormatError(source, f"fold {key!r} should be a list of video ids.")
        for video in videos:
            video = str(video)
            if video in mapping and mapping[video] != split:
                raise CorpusFormatError(source, f"video {video!r} is in both the {mapping[video]} and {split} folds.")
            mapping[video] = split
    missing = {"train", "validation", "test"} - set(mapping.values())
    if missing:
        raise CorpusFormatError(source, f"folds lack {sorted(missing)}.")
    return mapping


def _load_sdk(
    path: Path,
    text: str | None = None,
    audio: str | None = None,
    visual: str | None = None,
    labels: str | None = None,
    words: str | None = None,
    folds: Any = None,
    collapse: str = "none",
    feature_set: str | None = None,
    *,
    _corpus: str,
) -> CorpusPlan:
    if collapse not in COLLAPSES:
        raise ValueError(f"collapse must be one of {', '.join(map(repr, COLLAPSES))}, got {collapse!r}.")
    folder = path if path.is_dir() else path.parent
    given = {"text": text, "audio": audio, "visual": visual, "labels": labels, "words": words}
    files = {role: _resolve(folder, _corpus, role, given[role]) for role in ROLES}
    if files["labels"] is None:
        raise CorpusFormatError(folder, f"no label sequence ({SDK_DEFAULT_FILES[_corpus]['labels']} or *Label*.csd); pass labels=...")
    modalities = [m for m in ("text", "audio", "visual") if files[m] is not None]
    if not modalities:
        raise CorpusFormatError(folder, "no feature sequence found (word vectors, COVAREP, Facet); pass text=/audio=/visual=.")
    if collapse == "words" and "text" not in modalities:
        raise CorpusFormatError(
            folder, "collapse='words' aligns to the word-vector sequence, and there is none: pass text=... "
            "or use collapse='none' / 'mean'."
        )
    fold_of = _load_folds(folds, folder)
    sequences: dict[str, ComputationalSequence] = {}
    try:
        for role in ("labels", *modalities, "words"):
            if files[role] is not None:
                sequences[role] = ComputationalSequence(files[role], role)
        label_dim = sequences["labels"].dim()
        if label_dim not in (1, 7):
            raise CorpusFormatError(
                files["labels"], f"label rows should have 1 (sentiment) or 7 (sentiment + 6 emotions) values, found {label_dim}."
            )
        dims = {m: sequences[m].dim() for m in modalities}
    except BaseException:
        for sequence in sequences.values():
            sequence.close()
        raise
    if fold_of is None:
        logger.warning(
            "%s: no standard folds given (folds=...): splitting videos by a hash of their id (70/10/20 %%); "
            "results are not comparable with published ones.", folder
        )
    notes: dict[str, Any] = {
        "format": "cmu_sdk",
        "files": {role: files[role].name for role in sequences},
        "roots": {role: seq.root for role, seq in sequences.items()},
        "metadata": {role: seq.metadata for role, seq in sequences.items() if seq.metadata},
        "folds": "given" if fold_of is not None else "hash 70/10/20",
        "collapse": collapse,
        "dropped": {},
    }
    has_emotions = label_dim == 7
    info = CorpusInfo(
        corpus=_corpus,
        feature_set=feature_set or f"cmu_sdk-{_corpus}" + ("" if collapse == "none" else f"-{collapse}"),
        dims=dims,
        tasks=["sentiment", "emotion"] if has_emotions else ["sentiment"],
        emotion_labels=list(MOSEI_EMOTIONS) if has_emotions else [],
        label_spaces={"sentiment": "sentiment/score", **({"emotion": "emotion/mosei"} if has_emotions else {})},
        extractors={m: f"cmu_sdk:{sequences[m].root}" for m in modalities},
        notes=notes,
    )
    batches = _batches(sequences, modalities, fold_of, collapse, has_emotions, notes["dropped"])
    return CorpusPlan(info, list(SPLITS), batches, files["labels"])


def _split_of(video: str, fold_of: dict[str, str] | None) -> str | None:
    if fold_of is not None:
        return fold_of.get(video)
    value = stable_fraction("cmu_sdk-split", video)
    train, validation = _DEFAULT_FRACTIONS
    return "train" if value < train else "validation" if value < train + validation else "test"


def _batches(
    sequences: dict[str, ComputationalSequence],
    modalities: list[str],
    fold_of: dict[str, str] | None,
    collapse: str,
    has_emotions: bool,
    dropped: dict[str, int],
) -> Iterator[tuple[str, dict[str, Any]]]:
    labels = sequences["labels"]
    emotion_mask = emotion_label_mask(MOSEI_EMOTIONS)
    emotion_columns = [EMOTION_LABELS.index(name) for name in MOSEI_EMOTIONS]
    buffers: dict[str, dict[str, list]] = {}
    counts = {
        "videos_not_in_folds": 0, "videos_missing_a_modality": 0, "segments_without_frames": 0,
        "words_without_frames": 0,
    }
    try:
        for video in labels.videos():
            split = _split_of(video, fold_of)
            if split is None:
                counts["videos_not_in_folds"] += 1
                continue
            if any(video not in sequences[m] for m in modalities):
                counts["videos_missing_a_modality"] += 1
                continue
            values, segments = labels.read(video)
            where = f"video {video!r}"
            sentiment = check_sentiment(labels.path, where, values[:, 0], -3.0, 3.0).astype(np.float32)
            if has_emotions:
                intensity = values[:, 1:7].astype(np.float64)
                if not np.isfinite(intensity).all() or (intensity < 0).any() or (intensity > 3 + 1e-6).any():
                    raise CorpusFormatError(labels.path, f"{where}: emotion intensities must be finite and in [0, 3].")
            streams = {m: sequences[m].read(video) for m in modalities}
            words = sequences["words"].read(video, text=True) if "words" in sequences and video in sequences["words"] else None
            buffer = buffers.setdefault(split, _empty_buffer(modalities, has_emotions))
            for k, (start, end) in enumerate(segments):
                frames = {}
                for modality, (features, intervals) in streams.items():
                    inside = (intervals[:, 0] < end) & (intervals[:, 1] > start)
                    frames[modality] = (features[inside], intervals[inside])
                if collapse == "words":
                    frames, unmatched = _align_to_words(frames)
                    counts["words_without_frames"] += unmatched
                else:
                    frames = {m: chunk for m, (chunk, _) in frames.items()}
                    if collapse == "mean":
                        frames = {m: chunk.mean(0, keepdims=True) if len(chunk) else chunk for m, chunk in frames.items()}
                if any(len(chunk) == 0 for chunk in frames.values()):
                    counts["segments_without_frames"] += 1
                    continue
                buffer["id"].append(f"{video}[{k}]")
                buffer["text"].append(_words_in(words, start, end))
                buffer["sentiment"].append(float(sentiment[k]))
                for modality, chunk in frames.items():
                    buffer[feature_column(modality)].append(chunk)
                if has_emotions:
                    vector = np.zeros(len(EMOTION_LABELS), dtype=np.float32)
                    vector[emotion_columns] = (intensity[k] > 0).astype(np.float32)
                    buffer["emotion"].append(vector.tolist())
                if len(buffer["id"]) >= _BATCH:
                    yield split, _finish(buffers.pop(split), has_emotions, emotion_mask)
        for split, buffer in buffers.items():
            if buffer["id"]:
                yield split, _finish(buffer, has_emotions, emotion_mask)
    finally:
        for sequence in sequences.values():
            sequence.close()
    dropped.update({k: v for k, v in counts.items() if v})
    for reason, count in counts.items():
        if count:
            logger.warning("%s: dropped %d (%s).", labels.path.parent, count, reason.replace("_", " "))


def _align_to_words(
    frames: dict[str, tuple[np.ndarray, np.ndarray]],
) -> tuple[dict[str, np.ndarray], int]:
    """One frame per word-vector frame: other modalities averaged over each word's interval.

    Returns the aligned ``[W, D]`` arrays and how many words were dropped because some
    modality has no frame overlapping them (the SDK drops those too).
    """
    words, word_intervals = frames["text"]
    keep = np.ones(len(words), dtype=bool)
    averaged: dict[str, np.ndarray] = {}
    for modality, (chunk, intervals) in frames.items():
        if modality == "text":
            continue
        overlap = (intervals[None, :, 0] < word_intervals[:, 1, None]) & (intervals[None, :, 1] > word_intervals[:, 0, None])
        matched = overlap.any(1)
        keep &= matched
        means = np.zeros((len(words), chunk.shape[1]), dtype=np.float32)
        for w in np.flatnonzero(matched):
            # A plain mean over the overlapping frames: a non-finite frame spoils only its own
            # words (then replaced and counted like any non-finite value), never its neighbours.
            means[w] = chunk[overlap[w]].mean(0)
        averaged[modality] = means
    aligned = {"text": words[keep], **{m: a[keep] for m, a in averaged.items()}}
    return aligned, int((~keep).sum())


def _empty_buffer(modalities: list[str], has_emotions: bool) -> dict[str, list]:
    keys = ["id", "text", "sentiment", *(feature_column(m) for m in modalities)]
    return {key: [] for key in keys + (["emotion"] if has_emotions else [])}


def _finish(buffer: dict[str, list], has_emotions: bool, emotion_mask: list[bool]) -> dict[str, list]:
    n = len(buffer["id"])
    buffer["sentiment_mask"] = [True] * n
    if has_emotions:
        buffer["emotion_mask"] = [emotion_mask] * n
        buffer["emotion_multilabel"] = [True] * n
    return buffer


def _words_in(words: tuple[np.ndarray, np.ndarray] | None, start: float, end: float) -> str:
    if words is None:
        return ""
    tokens, intervals = words
    inside = (intervals[:, 0] < end) & (intervals[:, 1] > start)
    picked = [decode_text(token) for token in tokens[inside]]
    return " ".join(word for word in picked if word and word != "sp")


_DESCRIPTIONS = {
    "mosei": "CMU-MOSEI from CMU-MultimodalSDK .csd files: sentiment + 6 multi-label emotions, standard folds via folds=",
    "mosi": "CMU-MOSI from CMU-MultimodalSDK .csd files: sentiment, standard folds via folds=",
}

for _name in SDK_DEFAULT_FILES:
    register_corpus(_name, "cmu_sdk", detect=looks_like_sdk, description=_DESCRIPTIONS[_name], options=OPTIONS)(
        partial(_load_sdk, _corpus=_name)
    )
