"""Batching: pad each modality's ``[T, D]`` sequences and stack every label tensor.

A batch holds examples of **one feature set** (the model's input projection is chosen
per batch), but may mix corpora that share it. Mixing feature sets in one batch would
need a projection call per sub-batch and ragged bookkeeping for little gain, so the
sampler groups by feature set instead and the collator refuses mixed batches.

Every label tensor the model reads is present (masked where unknown): the Trainer drops loss
and labels from evaluation when any name in ``label_names`` is missing from a batch. Which
ones it reads is ``label_columns_read`` (its tasks' gold columns, and their weak columns when
it learns from weak labels); a collator built with ``label_columns`` stacks only those, so a
single-task model's batches do not carry (nor read from Arrow) the other tasks' columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from mtaffect.data.context import (
    CONTEXT_POSITION,
    CONTEXT_SAME_SPEAKER,
    context_dims,
    context_feature_column,
    context_mask_key,
)
from mtaffect.data.schema import LABEL_COLUMNS, MODALITIES, NUM_EMOTIONS, feature_column, feature_dims
from mtaffect.tasks import MAX_POLARITY_CLASSES

_BOOL_COLUMNS = {name for name in LABEL_COLUMNS if name.endswith("_mask") or name.endswith("multilabel")}
_LONG_COLUMNS = {"sentiment_class", "sentiment_num_classes", "sentiment_weak_num_classes"}
_VECTOR_COLUMNS = {
    "emotion": NUM_EMOTIONS,
    "emotion_mask": NUM_EMOTIONS,
    "emotion_weak": NUM_EMOTIONS,
    "emotion_weak_mask": NUM_EMOTIONS,
    "sentiment_weak_probs": MAX_POLARITY_CLASSES,
}


def label_columns_read(tasks: Sequence[str], weak: bool) -> tuple[str, ...]:
    """The label columns a model of ``tasks`` reads: their gold columns, and their weak ones if ``weak``.

    Examples:
        >>> label_columns_read(["sarcasm"], weak=False)
        ('sarcasm', 'sarcasm_mask')
        >>> len(label_columns_read(["emotion", "sentiment", "sarcasm"], weak=True)) == len(LABEL_COLUMNS)
        True
    """
    prefixes = tuple(f"{task}_weak" for task in tasks) if weak else ()
    return tuple(
        name for name in LABEL_COLUMNS
        if (name.split("_", 1)[0] in tasks and "_weak" not in name) or name.startswith(prefixes)
    )


def mask_key(modality: str) -> str:
    """Batch key of a modality's attention mask (True on real frames)."""
    return f"{modality}_mask"


@dataclass
class MTAffectCollator:
    """Turn a list of unified-schema rows into model inputs.

    Args:
        feature_dims: `dict[str, int]`.
            Dims per modality, used to shape a modality whose sequences are all empty in a
            batch. Read from the dataset's features when built with ``for_dataset``.
        max_length: `int`.
            Truncate sequences longer than this (keeps the first frames).
        pad_to_multiple_of: `int`.
            Round the padded length up, which helps tensor-core kernels on GPU.
        label_columns: `tuple[str, ...]`.
            The label columns to stack (``label_columns_read``); ``None``: every one.
    """

    feature_dims: dict[str, int] = field(default_factory=dict)
    max_length: int | None = None
    pad_to_multiple_of: int | None = None
    label_columns: tuple[str, ...] | None = None

    @classmethod
    def for_dataset(cls, dataset: Any, **kwargs: Any) -> MTAffectCollator:
        return cls(feature_dims={**context_dims(dataset.features), **feature_dims(dataset.features)}, **kwargs)

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        if not rows:
            raise ValueError("Cannot collate an empty batch.")
        feature_sets = {str(row.get("feature_set", "")) for row in rows}
        if len(feature_sets) > 1:
            raise ValueError(
                f"A batch mixes feature sets {sorted(feature_sets)}; the model projects one "
                "feature set per batch. Use MultiTaskTrainer's sampler (it groups batches by "
                "feature set) or one DataLoader per corpus."
            )
        batch: dict[str, Any] = {"feature_set": feature_sets.pop()}
        for modality in MODALITIES:
            column = feature_column(modality)
            if any(column in row for row in rows):
                # A row without the column (a corpus lacking the modality, in a mixed batch) is an
                # empty sequence: the model treats it as a missing modality.
                empty = np.zeros((0, self.feature_dims.get(modality, 0)), np.float32)
                values, mask = self._pad([row.get(column, empty) for row in rows], modality)
                batch[column] = values
                batch[mask_key(modality)] = mask
        batch.update(self._context(rows))
        for name in LABEL_COLUMNS if self.label_columns is None else self.label_columns:
            batch[name] = self._stack(name, [row[name] for row in rows])
        return batch

    def _context(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Context turns (``mtaffect.data.context``): pooled features per modality, offsets, speaker flags.

        All padded to the same number of turns (rows without context, e.g. another corpus in a
        mixed batch, get none); ``max_length`` does not cut turns (the model keeps its own
        ``config.context`` turns).
        """
        columns = [m for m in MODALITIES if any(context_feature_column(m) in row for row in rows)]
        if not columns:
            return {}
        batch: dict[str, Any] = {}
        for modality in columns:
            column = context_feature_column(modality)
            empty = np.zeros((0, self.feature_dims.get(modality, 0)), np.float32)
            arrays = [_as_2d(row.get(column, empty), self.feature_dims.get(modality)) for row in rows]
            values, mask = self._pad_turns(arrays, modality)
            batch[column], batch[context_mask_key(modality)] = values, mask
        turns = batch[context_feature_column(columns[0])].shape[1]
        position = np.zeros((len(rows), turns), dtype=np.int64)
        same = np.zeros((len(rows), turns), dtype=bool)
        for i, row in enumerate(rows):
            offsets = np.asarray(row.get(CONTEXT_POSITION, ()), dtype=np.int64).reshape(-1)
            flags = np.asarray(row.get(CONTEXT_SAME_SPEAKER, ()), dtype=bool).reshape(-1)
            count = int(batch[context_mask_key(columns[0])][i].sum())
            if len(offsets) != count or len(flags) not in (0, count):
                raise ValueError(
                    f"Row {row.get('id')!r} has {count} context turns but {len(offsets)} context_position and "
                    f"{len(flags)} context_same_speaker entries: they must list the same turns."
                )
            position[i, :count], same[i, : len(flags)] = offsets, flags
        batch[CONTEXT_POSITION] = torch.from_numpy(position)
        batch[CONTEXT_SAME_SPEAKER] = torch.from_numpy(same)
        return batch

    def _pad_turns(self, arrays: list[np.ndarray], modality: str) -> tuple[torch.Tensor, torch.Tensor]:
        dims = {a.shape[1] for a in arrays if a.shape[0] > 0}
        if len(dims) > 1:
            raise ValueError(f"context {modality} features in one batch have different dims {sorted(dims)}.")
        dim = dims.pop() if dims else self.feature_dims.get(modality, 0)
        lengths = np.fromiter((a.shape[0] for a in arrays), dtype=np.int64, count=len(arrays))
        length = max(int(lengths.max()), 1)
        values = np.zeros((len(arrays), length, dim), dtype=np.float32)
        for i, array in enumerate(arrays):
            if lengths[i]:
                values[i, : lengths[i]] = array.reshape(-1, dim)
        return torch.from_numpy(values), torch.arange(length) < torch.from_numpy(lengths)[:, None]

    def _pad(self, sequences: list[Any], modality: str) -> tuple[torch.Tensor, torch.Tensor]:
        arrays = [_as_2d(seq, self.feature_dims.get(modality)) for seq in sequences]
        dims = {a.shape[1] for a in arrays if a.shape[0] > 0}
        if len(dims) > 1:
            raise ValueError(f"{modality} features in one batch have different dims {sorted(dims)}.")
        dim = dims.pop() if dims else self.feature_dims.get(modality)
        if dim is None:
            raise ValueError(
                f"Every {modality} sequence in the batch is empty and the collator does not know "
                "the feature dim: build it with MTAffectCollator.for_dataset(dataset)."
            )
        if self.max_length is not None:
            arrays = [a[: self.max_length] for a in arrays]
        length = max(max(a.shape[0] for a in arrays), 1)
        if self.pad_to_multiple_of:
            step = self.pad_to_multiple_of
            length = -(-length // step) * step
        # Padded in numpy and handed to torch without a copy: one slice assignment per row is
        # several times cheaper than torch's per-row copies or an index scatter (benchmarks/collate.py).
        lengths = np.fromiter((a.shape[0] for a in arrays), dtype=np.int64, count=len(arrays))
        values = np.zeros((len(arrays), length, dim), dtype=np.float32)
        for i, array in enumerate(arrays):
            if lengths[i]:
                values[i, : lengths[i]] = array.reshape(-1, dim)
        mask = torch.arange(length) < torch.from_numpy(lengths)[:, None]
        return torch.from_numpy(values), mask

    @staticmethod
    def _stack(name: str, values: list[Any]) -> torch.Tensor:
        if name in _BOOL_COLUMNS:
            dtype = torch.bool
        elif name in _LONG_COLUMNS:
            dtype = torch.long
        else:
            dtype = torch.float32
        if isinstance(values[0], torch.Tensor):
            tensor = torch.stack([v.to(dtype) for v in values])
        else:
            tensor = torch.as_tensor(np.asarray(values), dtype=dtype)
        if name in _VECTOR_COLUMNS and tensor.shape[-1] != _VECTOR_COLUMNS[name]:
            raise ValueError(f"Column {name!r} must have {_VECTOR_COLUMNS[name]} entries, got {tensor.shape[-1]}.")
        return tensor


def _as_2d(sequence: Any, dim: int | None) -> np.ndarray:
    if isinstance(sequence, torch.Tensor):
        array = sequence.detach().cpu().numpy()
    elif isinstance(sequence, np.ndarray) and sequence.dtype == object:
        array = np.stack(sequence) if len(sequence) else np.zeros((0, dim or 0), np.float32)
    else:
        array = np.asarray(sequence, dtype=np.float32)
    array = array.astype(np.float32, copy=False)
    if array.ndim == 1 and array.size == 0:
        return np.zeros((0, dim or 0), dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"Expected a [T, D] feature sequence, got shape {array.shape}.")
    return array
