"""MUStARD (sarcasm): ``sarcasm_data.json`` + ``split_indices.p`` + features.

``sarcasm_data.json`` maps an utterance id to ``utterance``, ``speaker``, ``context``,
``context_speakers``, ``show`` and ``sarcasm``. ``split_indices.p`` (a Python 2 pickle,
read with the restricted unpickler) holds 5 ``(train_indices, test_indices)`` folds of
552/138 positions in the json's key order.

Protocols (``protocol=``):

* ``"fold"`` (default, speaker-dependent 5-fold CV): ``fold=k`` (0-4) of ``split_indices.p``;
* ``"speaker_independent"``: every FRIENDS utterance is the test set (356), the other
  shows (BBT, GOLDENGIRLS, SARCASMOHOLICS) are train/validation.

Validation: MUStARD defines none, so ``validation_fraction`` (default 0.1) of the training
ids are set aside, stratified by label: within each class, ids are ordered by a hash of
``(seed, id)`` and the first ``round(fraction * class size)`` go to validation. The choice
depends only on the ids, so it is the same on every machine. ``validation_fraction=0``
gives no validation split.

Features: MUStARD publishes none in the json. Pass ``features=`` (see
``mtaffect.data.corpora.user_features``; ids are the json keys, MUStARD's own
``audio_features.p`` needs ``transpose=["audio"]``), or leave it out to extract text
features from the utterances with ``mtaffect.data.extract.TextExtractor`` (``extractor=``
passes its options). Extra columns: ``show``, ``context``, ``context_speakers``; with
``context={"past": K}`` also the unified context columns (``mtaffect.data.context``): the last K
published turns, their speakers and, with the text extractor, their pooled text features
(extracted like the utterances').
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from datasets import List, Value

from mtaffect.data.context import CONTEXT_OPTION_HELP, ContextOptions, context_features, published_context
from mtaffect.data.corpora.base import CorpusPlan, batched, stable_fraction
from mtaffect.data.corpora.encoding import decode_text
from mtaffect.data.corpora.errors import CorpusFormatError
from mtaffect.data.corpora.registry import register_corpus
from mtaffect.data.corpora.safe_pickle import load_pickle
from mtaffect.data.corpora.user_features import (
    FeatureProvider,
    feature_options,
    kept_batches,
    text_feature_provider,
)
from mtaffect.data.raw import RawCorpus, RawCorpusError, RawExample
from mtaffect.data.schema import CorpusInfo, unknown_labels

logger = logging.getLogger(__name__)

JSON_NAME = "sarcasm_data.json"
SPLITS_NAME = "split_indices.p"
REQUIRED_KEYS: tuple[str, ...] = ("utterance", "speaker", "context", "context_speakers", "show", "sarcasm")
SPEAKER_INDEPENDENT_TEST_SHOW = "FRIENDS"
_BATCH = 256

OPTIONS = {
    "protocol": "'fold' (5-fold CV from split_indices.p, default) or 'speaker_independent' (FRIENDS = test)",
    "fold": "which of the 5 folds (0-4) when protocol='fold'",
    "validation_fraction": "share of train set aside for validation, stratified by label (0 = none)",
    "seed": "seed of the validation carve-out",
    **feature_options("mustard"),
    "features": "folder or {modality: file} of per-id features (.npz / .pkl / .h5); None = extract text",
    "transpose": "modalities whose files store [D, T] (MUStARD's audio_features.p: ['audio'])",
    "context": CONTEXT_OPTION_HELP.replace("'future': J", "'future': 0") + " (MUStARD publishes preceding turns only)",
}


def looks_like_mustard(path: Path) -> bool:
    return path.name == JSON_NAME if path.is_file() else (path / JSON_NAME).is_file()


def read_mustard_json(file: Path) -> dict[str, dict[str, Any]]:
    try:
        text = decode_text(file.read_bytes(), file)
    except OSError as error:
        raise CorpusFormatError(file, f"cannot be read ({error.strerror or error}).") from None
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as error:
        raise CorpusFormatError(file, f"not valid JSON ({error}).") from None
    except _DuplicateKey as duplicate:
        # json keeps the last of two equal keys: one utterance would vanish without a word
        # (and split_indices.p, written for the full json, would then look out of range).
        line = _line_of_second(text, duplicate.key)
        where = f" (second time on line {line})" if line else ""
        raise CorpusFormatError(
            file, f"the key {duplicate.key!r} appears twice{where}; every utterance id (and every field of a "
            "record) must be unique. Remove or rename the duplicate."
        ) from None
    if not isinstance(data, dict) or not data:
        raise CorpusFormatError(file, "should be a non-empty JSON object mapping utterance ids to records.")
    for key, record in data.items():
        if not isinstance(record, dict):
            raise CorpusFormatError(file, f"record {key!r} should be an object, found {type(record).__name__}.")
        missing = [k for k in REQUIRED_KEYS if k not in record]
        if missing:
            raise CorpusFormatError(file, f"record {key!r} lacks {missing}.")
        if record["sarcasm"] not in (True, False, 0, 1):
            raise CorpusFormatError(file, f"record {key!r}: 'sarcasm' should be true/false, found {record['sarcasm']!r}.")
        if not isinstance(record["utterance"], str):
            raise CorpusFormatError(file, f"record {key!r}: 'utterance' should be a string.")
        for name in ("context", "context_speakers"):
            if not isinstance(record[name], list):
                raise CorpusFormatError(file, f"record {key!r}: {name!r} should be a list.")
    return data


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _line_of_second(text: str, key: str) -> int | None:
    import re

    matches = list(re.finditer(re.escape(json.dumps(key)) + r"\s*:", text))
    return text.count("\n", 0, matches[1].start()) + 1 if len(matches) > 1 else None


def read_split_indices(file: Path, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    folds = load_pickle(file, encoding="latin1")
    if not isinstance(folds, (list, tuple)) or not folds:
        raise CorpusFormatError(file, f"should hold a list of (train, test) index pairs, found {type(folds).__name__}.")
    checked = []
    for k, pair in enumerate(folds):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise CorpusFormatError(file, f"fold {k} should be a (train_indices, test_indices) pair.")
        arrays = []
        for name, indices in zip(("train", "test"), pair):
            array = np.asarray(indices)
            if array.ndim != 1 or array.dtype.kind not in "iu":
                raise CorpusFormatError(file, f"fold {k}: {name} indices should be a 1-D integer array, found {array.dtype} {array.shape}.")
            if len(array) and (array.min() < 0 or array.max() >= n):
                raise CorpusFormatError(file, f"fold {k}: {name} indices must lie in [0, {n}) (the json has {n} utterances).")
            arrays.append(array.astype(np.int64))
        if np.intersect1d(arrays[0], arrays[1]).size:
            raise CorpusFormatError(file, f"fold {k}: train and test indices overlap.")
        checked.append((arrays[0], arrays[1]))
    return checked


def carve_validation(ids: list[str], labels: list[bool], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Positions (train, validation) of a stratified, hash-ordered validation carve-out."""
    if not 0 <= fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1), got {fraction}.")
    validation: list[int] = []
    for label in (False, True):
        members = [i for i, y in enumerate(labels) if bool(y) == label]
        members.sort(key=lambda i: stable_fraction("mustard-validation", seed, ids[i]))
        validation.extend(members[: int(round(fraction * len(members)))])
    chosen = set(validation)
    return [i for i in range(len(ids)) if i not in chosen], sorted(validation)


def mustard_splits(
    data: dict[str, dict[str, Any]],
    file: Path,
    protocol: str = "fold",
    fold: int = 0,
    validation_fraction: float = 0.1,
    seed: int = 0,
) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """MUStARD's split protocol: ids per split (train, validation, test) and a note saying which.

    ``file`` is the json ``data`` came from (``split_indices.p`` is read next to it). The
    feature loader and the raw reader (``read_mustard``) both split with this.
    """
    ids = list(data)
    if protocol == "fold":
        split_file = file.parent / SPLITS_NAME
        if not split_file.is_file():
            raise CorpusFormatError(file.parent, f"protocol='fold' needs {SPLITS_NAME} next to {JSON_NAME}.")
        folds = read_split_indices(split_file, len(ids))
        if not isinstance(fold, int) or not 0 <= fold < len(folds):
            raise ValueError(f"fold must be an int in [0, {len(folds) - 1}], got {fold!r}.")
        train_pos, test_pos = folds[fold]
        note: dict[str, Any] = {"protocol": "fold", "fold": fold, "num_folds": len(folds)}
    elif protocol == "speaker_independent":
        test_pos = np.array([i for i, k in enumerate(ids) if data[k]["show"] == SPEAKER_INDEPENDENT_TEST_SHOW], dtype=np.int64)
        train_pos = np.array([i for i, k in enumerate(ids) if data[k]["show"] != SPEAKER_INDEPENDENT_TEST_SHOW], dtype=np.int64)
        if not len(test_pos):
            raise CorpusFormatError(file, f"protocol='speaker_independent' needs {SPEAKER_INDEPENDENT_TEST_SHOW} utterances; there are none.")
        note = {"protocol": "speaker_independent", "test_show": SPEAKER_INDEPENDENT_TEST_SHOW}
    else:
        raise ValueError(f"protocol must be 'fold' or 'speaker_independent', got {protocol!r}.")
    train_ids = [ids[i] for i in train_pos]
    keep, held = carve_validation(train_ids, [bool(data[k]["sarcasm"]) for k in train_ids], validation_fraction, seed)
    splits = {"train": [train_ids[i] for i in keep]}
    if validation_fraction > 0:
        splits["validation"] = [train_ids[i] for i in held]
    splits["test"] = [ids[i] for i in test_pos]
    return splits, note


def _load_mustard(
    path: Path,
    protocol: str = "fold",
    fold: int = 0,
    validation_fraction: float = 0.1,
    seed: int = 0,
    features: Any = None,
    transpose: Any = None,
    missing_features: str = "error",
    extract_text: bool | None = None,
    extractor: dict[str, Any] | None = None,
    feature_set: str | None = None,
    limit: int | None = None,
    context: Any = None,
) -> CorpusPlan:
    options = ContextOptions.from_value(context)
    if options.future:
        raise ValueError("MUStARD publishes the turns before each utterance only: context['future'] must be 0.")
    folder = path if path.is_dir() else path.parent
    file = path if path.is_file() else folder / JSON_NAME
    if not file.is_file():
        raise CorpusFormatError(folder, f"no {JSON_NAME} here.")
    data = read_mustard_json(file)
    splits, protocol_note = mustard_splits(data, file, protocol, fold, validation_fraction, seed)
    if limit is not None:
        splits = {name: members[:limit] for name, members in splits.items()}

    provider = text_feature_provider(features, folder, transpose, missing_features, extract_text, extractor)
    info = CorpusInfo(
        corpus="mustard",
        feature_set=feature_set or provider.default_feature_set("mustard"),
        dims=provider.dims,
        tasks=["sarcasm"],
        emotion_labels=[],
        label_spaces={"sarcasm": "sarcasm/binary"},
        extractors=provider.extractors(),
        notes={
            "format": "mustard",
            **protocol_note,
            "validation": {"fraction": validation_fraction, "seed": seed, "stratified": True},
            "split_sizes_before_drops": {k: len(v) for k, v in splits.items()},
        },
    )
    extra = {"show": Value("string"), "context": List(Value("string")), "context_speakers": List(Value("string"))}
    if options.enabled:
        # The context turns are not utterances of the corpus: their text features are extracted
        # with the utterances' own extractor (user-supplied files have none for them).
        info.notes["context"] = {**options.to_dict(), "source": "MUStARD's context / context_speakers"}
        extracted = {"text": provider.dims["text"]} if provider.extractor is not None else {}
        if not extracted:
            logger.warning("MUStARD: context turns have no features without the text extractor; only their text is kept.")
        extra.update(context_features(extracted))
    batches = kept_batches(provider, info.notes, "MUStARD", _batches(data, splits, provider, options, file))
    return CorpusPlan(info, list(splits), batches, file, extra, rows=sum(map(len, splits.values())))


def _batches(data, splits, provider: FeatureProvider, context: ContextOptions | None = None, file: Path | None = None):
    for split, ids in splits.items():
        for rows in batched(len(ids), _BATCH):
            chunk = ids[rows]
            texts = [data[k]["utterance"] for k in chunk]
            columns, keep = provider.fill(split, [[k] for k in chunk], texts)
            records = [data[k] for k in chunk]
            batch: dict[str, Any] = {
                "id": chunk,
                "text": texts,
                "speaker": [str(r["speaker"]) for r in records],
                "sarcasm": [float(bool(r["sarcasm"])) for r in records],
                "sarcasm_mask": [True] * len(chunk),
                "show": [str(r["show"]) for r in records],
                "context": [[str(c) for c in r["context"]] for r in records],
                "context_speakers": [[str(c) for c in r["context_speakers"]] for r in records],
                **columns,
            }
            if context is not None and context.enabled:
                rows = [{**r, "id": k, "text": t, "speaker": str(r["speaker"])} for k, r, t in zip(chunk, records, texts)]
                try:
                    batch.update(published_context(rows, context, provider.extractor, provider.dims.get("text")))
                except ValueError as error:
                    raise CorpusFormatError(file, str(error)) from None
            yield split, batch, keep


register_corpus(
    "mustard",
    "mustard",
    detect=looks_like_mustard,
    description="MUStARD sarcasm: sarcasm_data.json + split_indices.p (5 folds or speaker-independent) + features",
    options=OPTIONS,
)(_load_mustard)

# ---------------------------------------------------------------------------------------
# Raw reader: transcripts + clips for feature extraction (mtaffect extract)


def read_mustard(
    path: str | Path,
    media_dir: str | Path | None = None,
    protocol: str = "fold",
    fold: int = 0,
    validation_fraction: float = 0.1,
    seed: int = 0,
) -> RawCorpus:
    """MUStARD: ``sarcasm_data.json`` (``path`` or its folder); clips ``<id>.mp4`` under ``media_dir``.

    Splits follow the MUStARD loader (``mustard_splits``, the same protocol):
    ``protocol="fold"`` takes fold ``fold`` of ``split_indices.p`` (speaker-dependent 5-fold CV); ``"speaker_independent"`` makes every FRIENDS utterance
    the test set. ``validation_fraction`` of train is set aside as validation (stratified,
    hash-ordered by id with ``seed``; 0 = none). ``media_dir`` may be MUStARD's
    ``utterances_final`` folder or its parent.
    """
    path = Path(path)
    json_path = path / JSON_NAME if path.is_dir() else path
    if not json_path.is_file():
        raise RawCorpusError(json_path, f"no such file (MUStARD's {JSON_NAME})")
    data = read_mustard_json(json_path)
    splits, note = mustard_splits(data, json_path, protocol, fold, validation_fraction, seed)

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
