"""Checks for the dict-of-arrays pickles (MMSA, MulT): every failure names the file, split and key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mtaffect.data.corpora.errors import CorpusFormatError
from mtaffect.data.schema import SPLIT_ALIASES


def split_dicts(path: Path, data: Any) -> dict[str, dict[str, Any]]:
    """``{'train'|'valid'|'test': {...}}`` -> unified split name -> that split's dict."""
    if not isinstance(data, dict):
        raise CorpusFormatError(
            path, f"expected a dict with 'train', 'valid' and 'test' at the top level, found a {type(data).__name__}."
        )
    splits = {}
    for split, aliases in SPLIT_ALIASES.items():
        found = [name for name in aliases if name in data]
        if not found:
            raise CorpusFormatError(
                path,
                f"missing split {split!r} (named one of {list(aliases)}; top-level keys: {sorted(map(str, data))[:10]}).",
            )
        value = data[found[0]]
        if not isinstance(value, dict):
            raise CorpusFormatError(path, f"split {found[0]!r} should be a dict of arrays, found a {type(value).__name__}.")
        splits[split] = value
    return splits


def get_array(
    path: Path,
    split: str,
    data: dict[str, Any],
    key: str,
    ndim: int | tuple[int, ...] | None = None,
    rows: int | None = None,
    numeric: bool = True,
) -> np.ndarray:
    """``data[key]`` as an array, checked for presence, rank, row count and numeric dtype."""
    if key not in data:
        raise CorpusFormatError(path, f"split {split!r} has no {key!r} key (keys: {sorted(map(str, data))}).")
    value = data[key]
    try:
        array = np.asarray(value) if isinstance(value, np.ndarray) or not numeric else np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise CorpusFormatError(path, f"split {split!r}: {key!r} is not an array ({error}).") from None
    if numeric and array.dtype.kind not in "fiub":
        raise CorpusFormatError(path, f"split {split!r}: {key!r} should be numeric, found dtype {array.dtype}.")
    ranks = (ndim,) if isinstance(ndim, int) else ndim
    if ranks is not None and array.ndim not in ranks:
        expected = " or ".join(map(str, ranks))
        raise CorpusFormatError(
            path, f"split {split!r}: {key!r} should have rank {expected}, found shape {array.shape}."
        )
    if rows is not None and (array.ndim == 0 or array.shape[0] != rows):
        raise CorpusFormatError(
            path,
            f"split {split!r}: {key!r} has {array.shape[0] if array.ndim else 0} rows but the split has "
            f"{rows} examples (shape {array.shape}); the modalities and labels must have one row per example.",
        )
    return array


def get_lengths(path: Path, split: str, data: dict[str, Any], key: str, rows: int, max_length: int) -> np.ndarray:
    """Per-example sequence lengths (``audio_lengths``), checked against the padded length."""
    lengths = get_array(path, split, data, key, ndim=(1, 2), rows=rows).reshape(rows, -1)
    if lengths.shape[1] != 1:
        raise CorpusFormatError(path, f"split {split!r}: {key!r} should hold one length per example, found shape {lengths.shape}.")
    lengths = lengths[:, 0]
    if not np.all(np.isfinite(lengths)) or np.any(lengths != np.round(lengths)):
        raise CorpusFormatError(path, f"split {split!r}: {key!r} must hold whole numbers.")
    bad = (lengths < 0) | (lengths > max_length)
    if bad.any():
        rows_bad = np.flatnonzero(bad)[:5].tolist()
        raise CorpusFormatError(
            path,
            f"split {split!r}: {key!r} must lie in [0, {max_length}] (the padded length); rows {rows_bad} hold "
            f"{lengths[bad][:5].astype(int).tolist()}.",
        )
    return lengths.astype(np.int64)


def nonzero_frames(array: np.ndarray, chunk: int = 256) -> np.ndarray:
    """``(N, L)`` bool: which frames of an ``(N, L, D)`` array have any non-zero value.

    Computed in chunks of examples so a MOSEI-size BERT array does not need an
    ``(N, L, 768)`` temporary. NaN and ±inf count as non-zero (they are real frames).
    """
    out = np.zeros(array.shape[:2], dtype=bool)
    for start in range(0, array.shape[0], chunk):
        block = array[start : start + chunk]
        out[start : start + chunk] = (block != 0).any(axis=2)
    return out


def edge_bounds(nonzero: np.ndarray, leading: bool = True, trailing: bool = True) -> tuple[np.ndarray, np.ndarray, int]:
    """``(start, stop)`` per example dropping all-zero frames at the start and/or end.

    An all-zero example keeps its first frame (``(0, 1)``) so no sequence becomes empty;
    the third value counts them.
    """
    n, length = nonzero.shape
    has = nonzero.any(axis=1)
    start = np.where(has, np.argmax(nonzero, axis=1), 0) if leading else np.zeros(n, dtype=np.int64)
    stop = np.where(has, length - np.argmax(nonzero[:, ::-1], axis=1), 1) if trailing else np.full(n, length)
    if not trailing:
        stop = np.where(has, stop, np.maximum(start + 1, 1))
    start = np.where(has, start, 0)
    return start.astype(np.int64), stop.astype(np.int64), int((~has).sum())
