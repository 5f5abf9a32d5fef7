"""MulT / MultiBench pickles of CMU-MOSI, CMU-MOSEI and IEMOCAP.

Files: ``mosi_data.pkl``, ``mosei_senti_data.pkl``, ``iemocap_data.pkl`` (word-aligned,
50 steps) and their ``*_noalign.pkl`` versions. Layout:

    {'train'|'valid'|'test': {'text': (N, Lt, Dt), 'audio': (N, La, Da), 'vision': (N, Lv, Dv),
                              'labels': (N, 1, 1) sentiment | (N, 4, 2) IEMOCAP,
                              'id': (N,) or (N, k) of bytes/str   -- optional}}

What the loader does with it:

* **padding**: the CMU-SDK-derived sequences are zero-padded *at the start*. As MultiBench
  does, aligned files are cut from the first frame where the text is non-zero (all
  modalities together, so they stay aligned); unaligned files are cut per modality from
  its first non-zero frame. Frames after that are kept even if zero. An all-zero sequence
  keeps one frame (counted in ``notes['all_padding']``); MultiBench drops examples whose
  text is all zero, this loader keeps them so split sizes match the published ones.
  ``trim_padding=False`` keeps the padded sequences.
* **audio** ``-inf``/NaN values (present in MOSEI's COVAREP) become 0 and are counted.
* **sentiment** (MOSI/MOSEI): ``labels[:, 0, 0]``, checked to lie in [-3, 3].
* **IEMOCAP** ``(N, 4, 2)``: per emotion in the order neutral, happy, sad, angry a
  one-hot pair (not present, present); MulT reads it with ``argmax(-1)``. It maps to the
  union labels neutral/happiness/sadness/anger with ``emotion_mask`` on those four.
  ``emotion_multilabel``: the literature treats IEMOCAP as four binary tasks and a row may
  carry zero or several positives. With the default ``emotion_multilabel=None`` the whole
  corpus is marked multi-label (BCE per emotion) if any row in any split has a number of
  positives other than one, and single-label (CE) otherwise; pass True/False to force it
  (False fails on rows without exactly one positive).
* **ids**: bytes are decoded; a row of parts ``(video, a, b, ...)`` becomes
  ``"video[a,b,...]"`` (the SDK's segment-id style), missing ids become ``"<split>_<i>"``.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from mtaffect.data.corpora._arrays import edge_bounds, get_array, nonzero_frames, split_dicts
from mtaffect.data.corpora.base import SPLITS, CorpusPlan, batched, check_sentiment, decode_text, unique_ids
from mtaffect.data.corpora.errors import CorpusFormatError
from mtaffect.data.corpora.mmsa import MMSA_MARKER
from mtaffect.data.corpora.registry import register_corpus
from mtaffect.data.corpora.safe_pickle import load_pickle, pickle_strings
from mtaffect.data.schema import CorpusInfo, feature_column
from mtaffect.tasks import EMOTION_LABELS, emotion_label_mask

logger = logging.getLogger(__name__)

MULT_KEYS: dict[str, str] = {"text": "text", "audio": "audio", "visual": "vision"}
#: MulT's file stem per corpus.
MULT_STEMS: dict[str, str] = {"mosi": "mosi", "mosei": "mosei_senti", "iemocap": "iemocap"}
#: IEMOCAP's label order in the (N, 4, 2) array, as union emotion names.
IEMOCAP_ORDER: tuple[str, ...] = ("neutral", "happiness", "sadness", "anger")
_BATCH = 512

OPTIONS = {
    "aligned": "folder input: True reads <stem>_data.pkl, False <stem>_data_noalign.pkl; None (default) "
    "prefers the _noalign file as MulT does. For a file, its name decides (must agree if given).",
    "modalities": "subset of text, audio, visual to keep (default: all three)",
    "trim_padding": "drop the leading zero padding (default True)",
    "feature_set": "feature-set name (default mult-<corpus>-aligned|unaligned)",
    "emotion_multilabel": "IEMOCAP only: None = multi-label if any row has != 1 positive; True/False forces it",
}


def looks_like_mult(path: Path, corpus: str | None = None) -> bool:
    """MulT names its files ``<stem>_data[_noalign].pkl``; a ``.pkl`` named otherwise is told by its
    content (split dicts with ``labels`` and ``vision``, and no MMSA ``regression_labels``)."""
    stems = [MULT_STEMS[corpus]] if corpus else list(MULT_STEMS.values())
    names = [path.name] if path.is_file() else [p.name for p in path.iterdir()] if path.is_dir() else []
    if any(name in (f"{stem}_data.pkl", f"{stem}_data_noalign.pkl") for name in names for stem in stems):
        return True
    if path.is_file() and path.suffix == ".pkl":
        keys = pickle_strings(path)
        return {"labels", "vision"} <= keys and MMSA_MARKER not in keys
    return False


def resolve_mult_file(path: Path, corpus: str, aligned: bool | None) -> Path:
    if path.is_file():
        return path
    stem = MULT_STEMS[corpus]
    aligned_file, unaligned_file = path / f"{stem}_data.pkl", path / f"{stem}_data_noalign.pkl"
    if aligned is None:
        chosen = unaligned_file if unaligned_file.is_file() else aligned_file
    else:
        chosen = aligned_file if aligned else unaligned_file
    if not chosen.is_file():
        raise CorpusFormatError(path, f"no MulT file {chosen.name} in this folder.")
    return chosen


def _load_mult(
    path: Path,
    aligned: bool | None = None,
    modalities: list[str] | str | None = None,
    trim_padding: bool = True,
    feature_set: str | None = None,
    emotion_multilabel: bool | None = None,
    *,
    _corpus: str,
) -> CorpusPlan:
    file = resolve_mult_file(path, _corpus, aligned)
    splits = split_dicts(file, load_pickle(file))
    wanted = list(MULT_KEYS)
    if modalities is not None:
        wanted = [m.strip() for m in modalities.split(",")] if isinstance(modalities, str) else list(modalities)
        unknown = [m for m in wanted if m not in MULT_KEYS]
        if unknown:
            raise ValueError(f"Unknown modalities {unknown}: choose from {list(MULT_KEYS)}.")
    chosen = [m for m in MULT_KEYS if m in wanted]
    prepared = {split: _arrays(file, split, d, chosen) for split, d in splits.items()}
    lengths = {m: prepared["train"]["arrays"][m].shape[1] for m in chosen}
    file_aligned = "noalign" not in file.name and len(set(lengths.values())) == 1
    if aligned is not None and path.is_file() and bool(aligned) != file_aligned:
        raise CorpusFormatError(file, f"aligned={aligned} was asked for but the file is {'aligned' if file_aligned else 'unaligned'}.")
    dims = {m: int(prepared["train"]["arrays"][m].shape[2]) for m in chosen}
    for split, prep in prepared.items():
        split_dims = {m: int(a.shape[2]) for m, a in prep["arrays"].items()}
        if split_dims != dims:
            raise CorpusFormatError(file, f"split {split!r} has feature dims {split_dims}, train has {dims}.")
        if file_aligned and len({a.shape[1] for a in prep["arrays"].values()}) != 1:
            raise CorpusFormatError(file, f"split {split!r}: aligned modalities must share one length, found {lengths}.")
    label_kind = {split: prep["labels"].shape[1:] for split, prep in prepared.items()}
    kinds = set(label_kind.values())
    if len(kinds) != 1:
        raise CorpusFormatError(file, f"the splits' 'labels' have different shapes: {label_kind}.")
    shape = kinds.pop()
    if _corpus == "iemocap":
        if shape != (4, 2):
            raise CorpusFormatError(
                file, f"IEMOCAP 'labels' should be (N, 4, 2) one-hot pairs for neutral/happy/sad/angry, found (N, {', '.join(map(str, shape))})."
            )
        present = {split: _iemocap_present(file, split, prep["labels"]) for split, prep in prepared.items()}
        counts = np.concatenate([p.sum(1) for p in present.values()])
        if emotion_multilabel is None:
            emotion_multilabel = bool((counts != 1).any())
        elif not emotion_multilabel and (counts != 1).any():
            raise CorpusFormatError(
                file, f"emotion_multilabel=False but {int((counts != 1).sum())} examples do not have exactly one emotion."
            )
        for split, prep in prepared.items():
            prep["emotion"] = present[split]
        tasks, emotion_labels = ["emotion"], list(IEMOCAP_ORDER)
    else:
        if shape not in ((), (1,), (1, 1)):
            raise CorpusFormatError(
                file, f"{_corpus.upper()} 'labels' should be (N, 1, 1) sentiment scores, found (N, {', '.join(map(str, shape))})."
            )
        for split, prep in prepared.items():
            prep["sentiment"] = check_sentiment(
                file, f"split {split!r}: 'labels'", prep["labels"].reshape(len(prep["labels"])), -3.0, 3.0
            ).astype(np.float32)
        tasks, emotion_labels = ["sentiment"], []
    all_padding: dict[str, dict[str, int]] = {}
    for split, prep in prepared.items():
        prep["bounds"], counts_split = _bounds(prep["arrays"], file_aligned, trim_padding)
        if any(counts_split.values()):
            all_padding[split] = counts_split
            logger.warning("%s: split %r has all-zero sequences %s; each keeps one frame.", file, split, counts_split)
        prep["ids"] = unique_ids(_ids(file, split, splits[split], len(prep["labels"])), file, split)
    info = CorpusInfo(
        corpus=_corpus,
        feature_set=feature_set or f"mult-{_corpus}-{'aligned' if file_aligned else 'unaligned'}",
        dims=dims,
        tasks=tasks,
        emotion_labels=emotion_labels,
        label_spaces={"emotion": "emotion/iemocap"} if "emotion" in tasks else {"sentiment": "sentiment/score"},
        extractors={m: f"mult:{MULT_KEYS[m]}" for m in chosen},
        notes={
            "format": "mult",
            "file": file.name,
            "aligned": file_aligned,
            "split_names": {"validation": "valid"},
            "all_padding": all_padding,
            **({"emotion_multilabel": emotion_multilabel} if _corpus == "iemocap" else {}),
        },
    )
    return CorpusPlan(info, list(SPLITS), _batches(prepared, chosen, bool(emotion_multilabel)), file)


def _arrays(file: Path, split: str, data: dict[str, Any], modalities: list[str]) -> dict[str, Any]:
    labels = get_array(file, split, data, "labels", ndim=(1, 2, 3))
    n = labels.shape[0]
    arrays = {}
    for modality in modalities:
        array = get_array(file, split, data, MULT_KEYS[modality], ndim=3, rows=n)
        if array.shape[1] == 0 or array.shape[2] == 0:
            raise CorpusFormatError(file, f"split {split!r}: {MULT_KEYS[modality]!r} is empty (shape {array.shape}).")
        arrays[modality] = array
    return {"labels": labels, "arrays": arrays}


def _iemocap_present(file: Path, split: str, labels: np.ndarray) -> np.ndarray:
    if not np.isin(labels, (0, 1)).all():
        raise CorpusFormatError(file, f"split {split!r}: IEMOCAP 'labels' must hold only 0/1 (one-hot pairs).")
    both = (labels[:, :, 0] == 1) & (labels[:, :, 1] == 1)
    if both.any():
        rows = np.flatnonzero(both.any(1))[:5].tolist()
        raise CorpusFormatError(file, f"split {split!r}: IEMOCAP 'labels' rows {rows} mark an emotion both absent and present.")
    return labels[:, :, 1] == 1


def _bounds(arrays: dict[str, np.ndarray], aligned: bool, trim: bool) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, int]]:
    bounds, counts = {}, {}
    if not trim:
        for m, a in arrays.items():
            bounds[m] = (np.zeros(len(a), dtype=np.int64), np.full(len(a), a.shape[1], dtype=np.int64))
            counts[m] = 0
        return bounds, counts
    if aligned:
        # One start for all modalities (from the text, as MultiBench does), so they stay aligned.
        reference = nonzero_frames(arrays["text"]) if "text" in arrays else np.logical_or.reduce(
            [nonzero_frames(a) for a in arrays.values()]
        )
        start, stop, empty = edge_bounds(reference, trailing=False)
        return {m: (start, stop) for m in arrays}, dict.fromkeys(arrays, empty)
    for modality, array in arrays.items():
        start, stop, empty = edge_bounds(nonzero_frames(array), trailing=False)
        bounds[modality], counts[modality] = (start, stop), empty
    return bounds, counts


def _ids(file: Path, split: str, data: dict[str, Any], n: int) -> list[str]:
    if "id" not in data:
        return [f"{split}_{i:05d}" for i in range(n)]
    raw = get_array(file, split, data, "id", ndim=(1, 2), rows=n, numeric=False)
    if raw.ndim == 1:
        return [decode_text(x) for x in raw]
    ids = []
    for row in raw:
        parts = [decode_text(x) for x in row]
        ids.append(parts[0] if len(parts) == 1 else f"{parts[0]}[{','.join(parts[1:])}]")
    return ids


def _batches(prepared: dict[str, dict[str, Any]], modalities: list[str], multilabel: bool):
    iemocap_mask = emotion_label_mask(IEMOCAP_ORDER)
    columns = [EMOTION_LABELS.index(name) for name in IEMOCAP_ORDER]
    for split, prep in prepared.items():
        n = len(prep["ids"])
        for rows in batched(n, _BATCH):
            size = rows.stop - rows.start
            batch: dict[str, Any] = {"id": prep["ids"][rows]}
            if "sentiment" in prep:
                batch["sentiment"] = prep["sentiment"][rows]
                batch["sentiment_mask"] = [True] * size
            else:
                emotion = np.zeros((size, len(EMOTION_LABELS)), dtype=np.float32)
                emotion[:, columns] = prep["emotion"][rows]
                batch["emotion"] = emotion
                batch["emotion_mask"] = [iemocap_mask] * size
                batch["emotion_multilabel"] = [multilabel] * size
            for modality in modalities:
                array, (start, stop) = prep["arrays"][modality], prep["bounds"][modality]
                batch[feature_column(modality)] = [array[i, start[i] : stop[i]] for i in range(rows.start, rows.stop)]
            yield split, batch


_DESCRIPTIONS = {
    "mosi": "CMU-MOSI from MulT's mosi_data.pkl / mosi_data_noalign.pkl (GloVe 300 / COVAREP 5 / Facet 20)",
    "mosei": "CMU-MOSEI from MulT's mosei_senti_data(_noalign).pkl (GloVe 300 / COVAREP 74 / Facet 35)",
    "iemocap": "IEMOCAP from MulT's iemocap_data(_noalign).pkl: 4 emotions (neutral, happy, sad, angry)",
}

for _name in MULT_STEMS:
    register_corpus(
        _name, "mult", detect=partial(looks_like_mult, corpus=_name), description=_DESCRIPTIONS[_name], options=OPTIONS
    )(partial(_load_mult, _corpus=_name))
