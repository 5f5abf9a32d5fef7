"""Reading unified-schema columns straight from Arrow, and padding what was read.

The ``datasets`` numpy formatter converts ragged ``[T, D]`` sequences row by row and
re-creates the ``Array2D`` extension type per example; reading a column's flat values and
row lengths is one copy per column and batch. Everything that reads feature columns in
bulk goes through here: the training sampler (``ArrowRowReader``), weak labelling
(``read_columns`` + ``pad_rows``), schema validation and ``mtaffect data describe``
(``flat_values`` / ``sequence_lengths``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    import torch


def storage(array: Any) -> Any:
    """The plain Arrow storage of an extension array (``Array2D``); other arrays unchanged."""
    return array.storage if isinstance(array, pa.ExtensionArray) else array


def sequence_frames(column: pa.Array, dim: int, writable: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A ``[T, D]`` sequence column as (every frame ``[sum T, D]``, frames per row).

    Examples:
        >>> column = pa.array([[[1.0, 2.0]], [], [[3.0, 4.0], [5.0, 6.0]]])
        >>> frames, lengths = sequence_frames(column, 2)
        >>> frames.tolist(), lengths.tolist()
        ([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], [1, 0, 2])
    """
    column = storage(column)
    lengths = column.value_lengths().fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    values = column.flatten().flatten().to_numpy(zero_copy_only=False, writable=writable)
    return values.reshape(-1, dim), lengths


def flat_values(column: pa.ChunkedArray) -> pa.Array:
    """Every value of a (chunked) sequence column, flattened into one array."""
    chunks = [storage(chunk).flatten().flatten() for chunk in column.chunks]
    return pa.concat_arrays(chunks) if chunks else pa.array([], pa.float32())


def sequence_lengths(dataset: Any, column: str) -> np.ndarray:
    """Frames per example of a ``datasets.Dataset`` column, from the Arrow offsets (no value is read)."""
    import pyarrow.compute as pc

    chunks = [
        pc.list_value_length(storage(chunk)).to_numpy(zero_copy_only=False)
        for chunk in dataset.data.column(column).chunks
    ]
    lengths = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)
    if dataset._indices is not None:  # a selected / shuffled view
        lengths = lengths[np.asarray(dataset._indices.column(0))]
    return lengths


def column_values(dataset: Any, name: str) -> np.ndarray:
    """One column of a ``Dataset`` as a numpy array, read in one slice.

    ``dataset[name]`` is a lazy ``Column`` in datasets 5, which ``np.asarray`` (or a Python
    loop) converts row by row: 31 s for 20,000 rows of a 2-label mask, against 0.24 s for
    one slice. Every whole-column read goes through here.
    """
    return dataset.with_format("numpy", columns=[name])[:][name]


def read_columns(table: pa.Table, dims: Mapping[str, int]) -> dict[str, Any]:
    """Columns of an Arrow batch as numpy; a ``[T, D]`` feature column as (frames ``[sum T, D]``, lengths).

    The numpy formatter of ``datasets`` converts ragged sequences row by row; reading the
    column's flat values and row lengths is one copy per column and batch.
    """
    batch: dict[str, Any] = {}
    for name in table.column_names:
        chunked = table.column(name)
        column = storage(chunked.chunk(0) if chunked.num_chunks == 1 else chunked.combine_chunks())
        modality = name[: -len("_features")] if name.endswith("_features") else None
        if modality in dims:
            frames, lengths = sequence_frames(column, dims[modality])
            batch[name] = (frames.astype(np.float32, copy=False), lengths)
        elif pa.types.is_fixed_size_list(column.type) or pa.types.is_list(column.type):
            batch[name] = column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), -1)
        else:
            batch[name] = column.to_numpy(zero_copy_only=False)
    return batch


def pad_rows(values: np.ndarray, lengths: np.ndarray, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-aligned zero padding of the sequences ``rows``, exactly as ``MTAffectCollator`` pads.

    ``values`` and ``lengths`` are what ``read_columns`` gives for a feature column; returns
    the ``[len(rows), T, D]`` features and the ``[len(rows), T]`` mask.

    Vectorised (one gather and one scatter per batch) because the collator's per-row loop
    costs about a third of a small teacher's forward; a test keeps both equal.
    """
    import torch  # only here: schema checks and `mtaffect data` read Arrow without torch

    counts = lengths[rows]
    ends = np.cumsum(counts)
    total = int(ends[-1]) if len(ends) else 0
    within = np.arange(total) - np.repeat(ends - counts, counts)  # frame position inside its row
    if len(rows) == len(lengths) and np.array_equal(rows, np.arange(len(rows))):
        frames = values
    else:
        starts = (np.cumsum(lengths) - lengths)[rows]
        frames = values[np.repeat(starts, counts) + within]
    length = max(int(counts.max()) if len(counts) else 0, 1)
    index = torch.from_numpy(np.repeat(np.arange(len(rows)) * length, counts) + within)
    features = torch.zeros(len(rows) * length, values.shape[1], dtype=torch.float32)
    mask = torch.zeros(len(rows) * length, dtype=torch.bool)
    if total:
        with warnings.catch_warnings():  # Arrow buffers are read-only; torch only reads them here
            warnings.simplefilter("ignore", UserWarning)
            source = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))
        features.index_copy_(0, index, source)
        mask[index] = True
    return features.view(len(rows), length, -1), mask.view(len(rows), length)


class ArrowRowReader:
    """Rows of a numpy-formatted ``datasets.Dataset``, read straight from its Arrow table.

    Same values and dtypes as ``dataset.__getitems__`` (a test checks it), several times
    faster: the ``datasets`` numpy formatter gathers one slice per example and re-creates
    the ``Array2D`` extension type for each, which dominated the training step of small
    models. Here each column's plain storage is gathered with one ``take`` per batch, and
    the column plan is built once per dataset. ``for_dataset`` returns ``None`` (use the
    formatter) for anything but a plain numpy format over primitive, fixed-size-list,
    string and variable-length ``Array2D`` columns.
    """

    def __init__(self, columns: list[tuple[str, str, Any, Any]], mapping: Any) -> None:
        self.columns = columns
        self.mapping = mapping

    @classmethod
    def for_dataset(cls, dataset: Any) -> ArrowRowReader | None:
        try:
            from datasets import Dataset as HFDataset
            from datasets.features.features import Array2DExtensionType
        except ImportError:  # pragma: no cover - datasets is a dependency
            return None
        if not isinstance(dataset, HFDataset):
            return None
        form = dataset.format
        if form.get("type") != "numpy" or form.get("format_kwargs") or form.get("output_all_columns"):
            return None
        table = dataset.data.table
        columns = []
        for name in form.get("columns") or table.column_names:
            column = table.column(name)
            kind = column.type
            if isinstance(kind, Array2DExtensionType):
                if kind.shape[0] is not None:
                    return None
                storage = pa.chunked_array([chunk.storage for chunk in column.chunks], type=kind.storage_type)
                columns.append((name, "array2d", storage, (kind.shape[1], np.dtype(kind.value_type))))
            elif pa.types.is_fixed_size_list(kind) and _is_primitive(kind.value_type):
                columns.append((name, "vector", column, kind.list_size))
            elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
                columns.append((name, "string", column, None))
            elif _is_primitive(kind):
                columns.append((name, "scalar", column, None))
            elif pa.types.is_list(kind) and (_is_primitive(kind.value_type) or pa.types.is_string(kind.value_type)):
                # Variable-length lists (conversational context: its turns' texts, offsets, speaker flags).
                columns.append((name, "list", column, kind.value_type))
            else:
                return None
        mapping = dataset._indices.column(0) if dataset._indices is not None else None
        return cls(columns, mapping)

    def __call__(self, indices: list[int]) -> list[dict[str, Any]]:
        positions = pa.array(indices, type=pa.int64())
        if self.mapping is not None:
            positions = self.mapping.take(positions)
        converted: dict[str, Any] = {}
        for name, kind, column, extra in self.columns:
            taken = column.take(positions).combine_chunks()
            if taken.null_count:
                raise ValueError(f"Column {name!r} holds nulls; the unified schema has none.")
            if kind == "array2d":
                dim, dtype = extra
                frames, lengths = sequence_frames(taken, dim, writable=True)
                converted[name] = np.split(frames.astype(dtype, copy=False), np.cumsum(lengths)[:-1])
            elif kind == "vector":
                values = taken.flatten().to_numpy(zero_copy_only=False, writable=True)
                converted[name] = values.reshape(len(taken), extra)
            elif kind == "string":
                converted[name] = [np.str_(value) for value in taken.to_pylist()]
            elif kind == "list":
                dtype = object if pa.types.is_string(extra) else extra.to_pandas_dtype()
                converted[name] = [np.asarray(values, dtype=dtype) for values in taken.to_pylist()]
            else:
                converted[name] = taken.to_numpy(zero_copy_only=False, writable=True)
        return [{name: values[i] for name, values in converted.items()} for i in range(len(indices))]


def _is_primitive(kind: Any) -> bool:
    return pa.types.is_boolean(kind) or pa.types.is_integer(kind) or pa.types.is_floating(kind)
