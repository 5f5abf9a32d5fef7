"""MMSA pickles of CMU-MOSI, CMU-MOSEI and CH-SIMS (``aligned_50.pkl`` / ``unaligned_50.pkl``).

Layout (MMSA and MMSA-FET, which adds a top-level ``config``):

    {'train'|'valid'|'test': {
        'id': ["<video_id>$_$<clip_id>", ...], 'raw_text': [...],
        'text': (N, L, 768) BERT features, 'text_bert': (N, 3, L) token ids / mask / segments,
        'audio': (N, La, Da), 'vision': (N, Lv, Dv),
        'audio_lengths', 'vision_lengths': (N,)  -- unaligned files only,
        'regression_labels': (N,),  'regression_labels_T'/'_A'/'_V' (SIMS only), ...}}

What the loader does with it:

* sequences are cut to their real length: text to the number of tokens in ``text_bert``'s
  attention-mask row (index 1; BERT pads at the end); in unaligned files audio/vision to
  their first ``audio_lengths`` / ``vision_lengths`` frames; in aligned files audio/vision
  lose the all-zero padding frames at both ends (the CMU-SDK-derived aligned releases pad
  at the start, MMSA-FET at the end). ``trim_padding=False`` keeps the padded length. A
  sequence of length 0 (or all padding) keeps one frame, so no sequence is ever empty;
  how many there were is in ``CorpusInfo.notes['empty_sequences']``.
* sentiment: ``regression_labels`` checked against the corpus scale ([-3, 3] MOSI/MOSEI,
  [-1, 1] SIMS). **SIMS scores are multiplied by 3** (``sentiment_scale``) so every corpus
  shares the [-3, 3] scale the model's sentiment head predicts; the factor is recorded in
  ``CorpusInfo.notes['sentiment_scale']`` (divide predictions by it to report SIMS metrics
  on its own scale). SIMS' unimodal labels become extra float32 columns ``sentiment_T``,
  ``sentiment_A``, ``sentiment_V`` on the same scale.
* ``classification_labels`` (deprecated in MMSA) and ``annotations`` are not used: the
  class views are derived from the scores.
"""

from __future__ import annotations

import logging
import re
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Value

from mtaffect.data.corpora._arrays import edge_bounds, get_array, get_lengths, nonzero_frames, split_dicts
from mtaffect.data.corpora.base import (
    SPLITS,
    CorpusPlan,
    batched,
    check_sentiment,
    decode_text,
    json_safe,
    to_sentiment_scale,
    unique_ids,
)
from mtaffect.data.corpora.errors import CorpusFormatError
from mtaffect.data.corpora.registry import register_corpus
from mtaffect.data.corpora.safe_pickle import load_pickle, pickle_strings
from mtaffect.data.raw import (
    RawCorpus,
    RawCorpusError,
    RawExample,
    normalize_split,
    read_csv,
    read_floats,
    require_columns,
)
from mtaffect.data.schema import CorpusInfo, feature_column, unknown_labels
from mtaffect.tasks import SENTIMENT_RANGE

logger = logging.getLogger(__name__)

#: Unified modality -> the MMSA key holding its features.
MMSA_KEYS: dict[str, str] = {"text": "text", "audio": "audio", "visual": "vision"}
#: Corpus -> (low, high) of its published sentiment scores.
MMSA_SCALES: dict[str, tuple[float, float]] = {"mosi": (-3.0, 3.0), "mosei": (-3.0, 3.0), "sims": (-1.0, 1.0)}
_FILE = re.compile(r"^(un)?aligned(_\d+)?\.pkl$")
#: The key only MMSA's pickles have (MulT's say ``labels``).
MMSA_MARKER = "regression_labels"
_BATCH = 512

OPTIONS = {
    "aligned": "folder input: True reads aligned_*.pkl, False unaligned_*.pkl; None (default) prefers "
    "unaligned_*.pkl as MMSA's models do. For a file, the file decides (must agree if given).",
    "modalities": "subset of text, audio, visual to keep (default: all the file has)",
    "trim_padding": "cut sequences to their real length (default True)",
    "feature_set": "feature-set name (default mmsa-<corpus>-aligned|unaligned)",
    "sentiment_scale": "factor onto the unified [-3, 3] sentiment scale (3 for SIMS, 1 otherwise)",
}


def looks_like_mmsa(path: Path) -> bool:
    """MMSA names its files ``aligned_50.pkl`` / ``unaligned_50.pkl`` (``unaligned_39.pkl`` for SIMS).

    A ``.pkl`` named otherwise (``mosei_unaligned_50.pkl``) is told by its content: MMSA's split
    dicts hold ``regression_labels`` (read without loading the file, ``pickle_strings``).
    """
    if path.is_file():
        return bool(_FILE.match(path.name)) or (path.suffix == ".pkl" and MMSA_MARKER in pickle_strings(path))
    return path.is_dir() and any(_FILE.match(p.name) for p in path.iterdir())


def resolve_mmsa_file(path: Path, aligned: bool | None) -> Path:
    if path.is_file():
        return path
    candidates = sorted(p for p in path.iterdir() if _FILE.match(p.name))
    unaligned = [p for p in candidates if p.name.startswith("unaligned")]
    aligned_files = [p for p in candidates if not p.name.startswith("unaligned")]
    if aligned is None:
        chosen = unaligned or aligned_files
    else:
        chosen = aligned_files if aligned else unaligned
    if not chosen:
        wanted = "aligned_*.pkl" if aligned else "unaligned_*.pkl" if aligned is False else "aligned_*.pkl or unaligned_*.pkl"
        raise CorpusFormatError(path, f"no MMSA file {wanted} in this folder.")
    if len(chosen) > 1:
        raise CorpusFormatError(path, f"several MMSA files match ({', '.join(p.name for p in chosen)}); pass the file itself.")
    return chosen[0]


def _load_mmsa(
    path: Path,
    aligned: bool | None = None,
    modalities: list[str] | str | None = None,
    trim_padding: bool = True,
    feature_set: str | None = None,
    sentiment_scale: float = 1.0,
    *,
    _corpus: str,
) -> CorpusPlan:
    file = resolve_mmsa_file(path, aligned)
    data = load_pickle(file)
    splits = split_dicts(file, data)
    first = splits["train"]
    file_aligned = not any(f"{key}_lengths" in first for key in ("audio", "vision"))
    if aligned is not None and path.is_file() and bool(aligned) != file_aligned:
        raise CorpusFormatError(
            file, f"aligned={aligned} was asked for but the file is {'aligned' if file_aligned else 'unaligned'} "
            "(unaligned MMSA files carry audio_lengths / vision_lengths)."
        )
    present = [m for m, key in MMSA_KEYS.items() if key in first]
    _check_same_modalities(file, splits, modalities)
    chosen = _choose_modalities(file, modalities, present)
    low, high = MMSA_SCALES[_corpus]
    if not (sentiment_scale > 0 and high * sentiment_scale <= 3.0 + 1e-6):
        raise ValueError(f"sentiment_scale={sentiment_scale} must be > 0 and map [{low}, {high}] into [-3, 3].")
    prepared = {split: _prepare_split(file, split, d, chosen, file_aligned, trim_padding, _corpus) for split, d in splits.items()}
    dims = {m: prepared["train"]["dims"][m] for m in chosen}
    for split, prep in prepared.items():
        if prep["dims"] != dims:
            raise CorpusFormatError(file, f"split {split!r} has feature dims {prep['dims']}, train has {dims}.")
    unimodal = [k for k in ("T", "A", "V") if f"regression_labels_{k}" in first]
    extra = {f"sentiment_{k}": Value("float32") for k in unimodal} if _corpus == "sims" else {}
    notes: dict[str, Any] = {
        "format": "mmsa",
        "file": file.name,
        "aligned": file_aligned,
        "sentiment_scale": sentiment_scale,
        "original_sentiment_range": [low, high],
        "split_names": {"validation": "valid"},
        "empty_sequences": {split: prep["empty"] for split, prep in prepared.items() if any(prep["empty"].values())},
    }
    if extra:
        notes["unimodal_label_columns"] = sorted(extra)
    if "config" in data:
        notes["mmsa_fet_config"] = json_safe(data["config"])
    info = CorpusInfo(
        corpus=_corpus,
        feature_set=feature_set or f"mmsa-{_corpus}-{'aligned' if file_aligned else 'unaligned'}",
        dims=dims,
        tasks=["sentiment"],
        emotion_labels=[],
        label_spaces={"sentiment": "sentiment/score"},
        extractors={m: f"mmsa:{MMSA_KEYS[m]}" for m in chosen},
        notes=notes,
    )
    return CorpusPlan(
        info=info,
        split_names=list(SPLITS),
        batches=_batches(file, prepared, chosen, extra, low, high, sentiment_scale),
        source=file,
        extra_features=extra,
    )


def _check_same_modalities(file: Path, splits: dict[str, dict[str, Any]], modalities: list[str] | str | None) -> None:
    """Refuse a file whose splits carry different modalities (unless ``modalities`` picks common ones).

    Left unchecked, the modalities of the train split would be used and a modality the other
    splits have would be dropped from every split without a word.
    """
    have = {split: [m for m, key in MMSA_KEYS.items() if key in data] for split, data in splits.items()}
    if len({tuple(found) for found in have.values()}) == 1:
        return
    common = [m for m in MMSA_KEYS if all(m in found for found in have.values())]
    wanted = None
    if modalities is not None:
        wanted = [m.strip() for m in modalities.split(",")] if isinstance(modalities, str) else list(modalities)
        if set(wanted) <= set(common):
            return
    lacking = {split: [m for m in MMSA_KEYS if m not in found and any(m in other for other in have.values())]
               for split, found in have.items()}
    described = "; ".join(f"split {split!r} lacks {', '.join(repr(MMSA_KEYS[m]) for m in missing)}"
                          for split, missing in lacking.items() if missing)
    raise CorpusFormatError(
        file,
        f"the splits carry different modalities ({described}). Pass modalities={common} to use those all "
        "splits have" + (f" (modalities={wanted} asks for more)" if wanted else "") + ", or complete the file.",
    )


def _choose_modalities(file: Path, modalities: list[str] | str | None, present: list[str]) -> list[str]:
    if not present:
        raise CorpusFormatError(file, "split 'train' has none of the feature keys 'text', 'audio', 'vision'.")
    if modalities is None:
        return present
    wanted = [m.strip() for m in modalities.split(",")] if isinstance(modalities, str) else list(modalities)
    missing = [m for m in wanted if m not in present]
    if missing:
        raise CorpusFormatError(file, f"modalities {missing} were asked for but the file only has {present}.")
    return [m for m in present if m in wanted]


def _prepare_split(
    file: Path, split: str, data: dict[str, Any], modalities: list[str], aligned: bool, trim: bool, corpus: str
) -> dict[str, Any]:
    raw_ids = get_array(file, split, data, "id", ndim=1, numeric=False)
    n = len(raw_ids)
    labels = get_array(file, split, data, "regression_labels", ndim=(1, 2), rows=n).reshape(n, -1)
    if labels.shape[1] != 1:
        raise CorpusFormatError(file, f"split {split!r}: 'regression_labels' should hold one score per example, found shape {labels.shape}.")
    arrays: dict[str, np.ndarray] = {}
    for modality in modalities:
        array = get_array(file, split, data, MMSA_KEYS[modality], ndim=3, rows=n)
        if array.shape[1] == 0:
            raise CorpusFormatError(file, f"split {split!r}: {MMSA_KEYS[modality]!r} has no frames (shape {array.shape}).")
        if array.shape[2] == 0:
            raise CorpusFormatError(file, f"split {split!r}: {MMSA_KEYS[modality]!r} has feature dim 0 (shape {array.shape}).")
        arrays[modality] = array
    bounds: dict[str, tuple[np.ndarray, np.ndarray]] = {
        m: (np.zeros(n, dtype=np.int64), np.full(n, a.shape[1], dtype=np.int64)) for m, a in arrays.items()
    }
    empty = dict.fromkeys(arrays, 0)
    if "text" in arrays and "text_bert" in data:
        bert = get_array(file, split, data, "text_bert", ndim=3, rows=n)
        if bert.shape[1] != 3 or bert.shape[2] != arrays["text"].shape[1]:
            raise CorpusFormatError(
                file, f"split {split!r}: 'text_bert' should be (N, 3, {arrays['text'].shape[1]}) token ids / "
                f"attention mask / segment ids, found {bert.shape}."
            )
        mask = bert[:, 1, :]
        if not np.isin(mask, (0, 1)).all():
            raise CorpusFormatError(file, f"split {split!r}: row 1 of 'text_bert' (the attention mask) must hold only 0/1.")
        if trim:
            # BERT inputs are padded at the end: the real tokens are the first mask.sum() ones.
            length = mask.sum(1).astype(np.int64)
            empty["text"] = int((length == 0).sum())
            bounds["text"] = (bounds["text"][0], np.maximum(length, 1))
    if trim:
        for modality in ("audio", "visual"):
            if modality not in arrays:
                continue
            if aligned:
                # Aligned files pad audio/vision with all-zero frames (at the start in the
                # CMU-SDK-derived releases, at the end in MMSA-FET output): drop them at both ends.
                start, stop, count = edge_bounds(nonzero_frames(arrays[modality]))
            else:
                length = get_lengths(file, split, data, f"{MMSA_KEYS[modality]}_lengths", n, arrays[modality].shape[1])
                start, stop, count = np.zeros(n, dtype=np.int64), np.maximum(length, 1), int((length == 0).sum())
            bounds[modality] = (start, stop)
            empty[modality] = count
    for modality, count in empty.items():
        if count:
            logger.warning(
                "%s: %d %s sequences in split %r are empty (length 0 or all padding); keeping one frame.",
                file, count, modality, split,
            )
    ids = unique_ids([decode_text(x) for x in raw_ids], file, split)
    texts = [decode_text(x) for x in get_array(file, split, data, "raw_text", ndim=1, rows=n, numeric=False)] if "raw_text" in data else [""] * n
    unimodal = {}
    if corpus == "sims":
        for key in ("T", "A", "V"):
            name = f"regression_labels_{key}"
            if name in data:
                unimodal[f"sentiment_{key}"] = get_array(file, split, data, name, ndim=(1, 2), rows=n).reshape(n)
    return {
        "ids": ids,
        "texts": texts,
        "labels": labels[:, 0],
        "arrays": arrays,
        "bounds": bounds,
        "dims": {m: int(a.shape[2]) for m, a in arrays.items()},
        "empty": empty,
        "unimodal": unimodal,
    }


def _batches(file, prepared, modalities, extra, low, high, scale):
    for split, prep in prepared.items():
        scores = to_sentiment_scale(check_sentiment(file, f"split {split!r}: 'regression_labels'", prep["labels"], low, high), scale)
        unimodal = {}
        for name in extra:
            if name not in prep["unimodal"]:
                raise CorpusFormatError(file, f"split {split!r} lacks 'regression_labels_{name[-1]}', which split 'train' has.")
            where = f"split {split!r}: 'regression_labels_{name[-1]}'"
            unimodal[name] = to_sentiment_scale(check_sentiment(file, where, prep["unimodal"][name], low, high), scale)
        n = len(prep["ids"])
        for rows in batched(n, _BATCH):
            batch: dict[str, Any] = {
                "id": prep["ids"][rows],
                "text": prep["texts"][rows],
                "sentiment": scores[rows],
                "sentiment_mask": [True] * (rows.stop - rows.start),
            }
            for modality in modalities:
                array, (start, stop) = prep["arrays"][modality], prep["bounds"][modality]
                batch[feature_column(modality)] = [array[i, start[i] : stop[i]] for i in range(rows.start, rows.stop)]
            for name, values in unimodal.items():
                batch[name] = values[rows]
            yield split, batch


_DESCRIPTIONS = {
    "mosi": "CMU-MOSI from MMSA's aligned_50.pkl / unaligned_50.pkl (BERT 768 / COVAREP 5 / Facet 20)",
    "mosei": "CMU-MOSEI from MMSA's aligned_50.pkl / unaligned_50.pkl (BERT 768 / COVAREP 74 / Facet 35)",
    "sims": "CH-SIMS from MMSA's pickles; scores x3 onto [-3, 3], unimodal labels kept as sentiment_T/A/V",
}

for _name in ("mosi", "mosei", "sims"):
    register_corpus(_name, "mmsa", detect=looks_like_mmsa, description=_DESCRIPTIONS[_name], options=OPTIONS)(
        partial(_load_mmsa, _corpus=_name, sentiment_scale=3.0 if _name == "sims" else 1.0)
    )

# ---------------------------------------------------------------------------------------
# Raw reader: transcripts + clips for feature extraction (mtaffect extract)


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
    frame = read_csv(label_path, dtype=str)
    require_columns(label_path, frame, ("video_id", "clip_id", "text", "label", "mode"))
    scores = read_floats(frame["label"], label_path, "label")
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
            extras[f"sentiment_{part}"] = read_floats(frame[column], label_path, column, allow_empty=True) * sentiment_scale
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
