"""What every corpus loader shares: the plan a loader produces and the Arrow writer that stores it.

A loader reads its files and returns a ``CorpusPlan``: the corpus metadata
(``CorpusInfo``) and a stream of ``(split, batch)`` pairs. The
writer here turns that stream into one Arrow file per split, written batch by batch, then
opens the files memory-mapped. A MOSEI-size corpus therefore never exists twice in memory
(once as the loader's arrays, once as a ``Dataset``), and it is only read from disk again
when a batch needs it.

A batch is a dict of equal-length lists: ``id`` (required), ``text`` and ``speaker``
(optional), ``<modality>_features`` (a list of ``[T, D]`` arrays per modality of the
corpus), any gold label column of the unified schema (missing ones are filled as
"unknown": value 0, mask off) and any extra column the plan declares.

The writer replaces NaN/±inf feature values by 0 and counts them (MOSEI's COVAREP audio
has ``-inf`` in places); the count is logged and kept in ``CorpusInfo.replaced_nonfinite``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
from datasets import Dataset, DatasetDict, DatasetInfo, Features, NamedSplit
from datasets.arrow_writer import ArrowWriter
from datasets.features.features import Array2DExtensionType

from mtaffect.data.corpora.errors import CorpusFormatError
from mtaffect.data.schema import (
    LABEL_COLUMNS,
    CorpusInfo,
    SchemaError,
    build_features,
    feature_column,
    set_corpus_info,
    unknown_labels,
    validate_corpus,
)
from mtaffect.tasks import SENTIMENT_RANGE

logger = logging.getLogger(__name__)

#: Split names of the unified corpora (MMSA's ``valid`` and MELD's ``dev`` become ``validation``).
SPLITS: tuple[str, ...] = ("train", "validation", "test")
#: Bumped whenever a loader's output changes, so cached conversions are rebuilt.
LOADER_VERSION = "1"
_MANIFEST = "mtaffect_corpus.json"


@dataclass
class CorpusPlan:
    """What a loader hands to the writer.

    Args:
        info: corpus metadata (``replaced_nonfinite`` is filled by the writer).
        split_names: the splits, in order; every one is written even if it gets no rows.
        batches: ``(split, batch)`` pairs, see the module docstring.
        source: the file or folder the corpus came from (named in errors).
        extra_features: types of extra columns beyond the unified schema
            (e.g. SIMS' unimodal labels ``sentiment_T``).
        rows: how many utterances the batches hold in all, when the loader knows it
            (sizes the progress bar, so its ETA means something).
    """

    info: CorpusInfo
    split_names: Sequence[str]
    batches: Iterable[tuple[str, dict[str, Any]]]
    source: Path
    extra_features: dict[str, Any] = field(default_factory=dict)
    #: Utterances the batches will hold in all (before drops), when known: sizes the progress bar.
    rows: int | None = None


def features_for(plan: CorpusPlan) -> Features:
    """The unified features of a plan's corpus plus its extra columns."""
    features = build_features(plan.info.dims)
    for name, feature in plan.extra_features.items():
        if name in features:
            raise ValueError(f"Extra column {name!r} clashes with a unified-schema column.")
        features[name] = feature
    return features


def sequence_array(sequences: Sequence[np.ndarray], dim: int) -> tuple[pa.Array, int]:
    """An ``Array2D(shape=(None, dim), float32)`` Arrow array from ``[T, dim]`` arrays.

    Returns the array and how many non-finite values were replaced by 0. Built from
    offsets and one flat buffer, which is much faster than letting Arrow infer nested lists.
    """
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    total = int(lengths.sum())
    if total:
        flat = np.concatenate([np.asarray(s, dtype=np.float32).reshape(-1) for s in sequences if len(s)])
    else:
        flat = np.zeros(0, dtype=np.float32)
    if flat.size != total * dim:
        raise ValueError(f"feature sequences do not all have {dim} values per frame")
    bad = ~np.isfinite(flat)
    replaced = int(bad.sum())
    if replaced:
        flat[bad] = 0.0  # flat is a fresh copy made by concatenate
    inner = pa.ListArray.from_arrays(pa.array(np.arange(total + 1, dtype=np.int32) * dim), pa.array(flat))
    outer_offsets = np.zeros(len(sequences) + 1, dtype=np.int32)
    np.cumsum(lengths, out=outer_offsets[1:])
    outer = pa.ListArray.from_arrays(pa.array(outer_offsets), inner)
    return pa.ExtensionArray.from_storage(Array2DExtensionType((None, dim), "float32"), outer), replaced


class _SplitWriter:
    def __init__(self, path: Path, features: Features) -> None:
        self.path = path
        self.features = features
        self.writer = ArrowWriter(features=features, path=str(path), writer_batch_size=1000)
        self.rows = 0

    def write(self, columns: dict[str, Any]) -> None:
        self.writer.write_batch(columns)
        self.rows += len(columns["id"])

    def close(self) -> None:
        self.writer.finalize()


def _batch_columns(
    plan: CorpusPlan, features: Features, split: str, batch: Mapping[str, Any]
) -> tuple[dict[str, Any], int]:
    info = plan.info
    if "id" not in batch:
        raise ValueError("a loader batch has no 'id' column")
    n = len(batch["id"])
    known = {"id", "text", "speaker", *LABEL_COLUMNS, *plan.extra_features, *(feature_column(m) for m in info.dims)}
    unexpected = set(batch) - known
    if unexpected:
        raise ValueError(f"a loader batch has unexpected columns {sorted(unexpected)}")
    columns: dict[str, Any] = {
        "id": [str(x) for x in batch["id"]],
        "source": [info.corpus] * n,
        "feature_set": [info.feature_set] * n,
        "text": [str(x) for x in batch.get("text", [""] * n)],
        "speaker": [str(x) for x in batch.get("speaker", [""] * n)],
    }
    replaced = 0
    for modality, dim in info.dims.items():
        name = feature_column(modality)
        if name not in batch:
            raise ValueError(f"a loader batch lacks {name!r}")
        array, count = sequence_array(batch[name], dim)
        columns[name] = array
        replaced += count
    defaults = unknown_labels()
    for name in LABEL_COLUMNS:
        if name in batch:
            value = batch[name]
            columns[name] = value.tolist() if isinstance(value, np.ndarray) else list(value)
        else:
            columns[name] = [defaults[name]] * n
    for name in plan.extra_features:
        if name not in batch:
            raise ValueError(f"a loader batch lacks the extra column {name!r}")
        value = batch[name]
        columns[name] = value.tolist() if isinstance(value, np.ndarray) else list(value)
    for name, value in columns.items():
        if len(value) != n:
            raise ValueError(f"column {name!r} of a {split} batch has {len(value)} rows, expected {n}")
    return columns, replaced


def write_corpus(plan: CorpusPlan, directory: Path, limit: int | None = None) -> DatasetDict:
    """Write ``plan`` as one Arrow file per split under ``directory`` and open it memory-mapped.

    ``directory`` must not exist; it is created through a temporary sibling and renamed at
    the end, so an error (which names the source file) leaves nothing behind. ``limit``
    keeps the first rows of each split only. A progress bar (datasets' own, so
    ``datasets.disable_progress_bars()`` hides it) counts the utterances written.
    """
    from datasets.utils.tqdm import tqdm

    directory = Path(directory)
    features = features_for(plan)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    replaced = 0
    try:
        writers = {name: _SplitWriter(staging / f"{name}.arrow", features) for name in plan.split_names}
        with tqdm(total=plan.rows, desc=f"convert {plan.info.corpus}", unit=" utterances", leave=False) as bar:
            for split, batch in plan.batches:
                if split not in writers:
                    raise ValueError(f"loader produced split {split!r}, not one of {list(writers)}")
                bar.update(len(batch["id"]))
                if limit is not None:
                    room = limit - writers[split].rows
                    if room <= 0:
                        continue
                    batch = {key: values[:room] for key, values in batch.items()}
                columns, count = _batch_columns(plan, features, split, batch)
                replaced += count
                writers[split].write(columns)
        for writer in writers.values():
            writer.close()
        plan.info.replaced_nonfinite = replaced
        if replaced:
            logger.warning(
                "%s: replaced %d non-finite feature values (NaN/inf) by 0.", plan.source, replaced
            )
        manifest = {
            "loader_version": LOADER_VERSION,
            "splits": [[name, writer.rows] for name, writer in writers.items()],
            "info": asdict(plan.info),
            "extra_features": {k: v.to_dict() if hasattr(v, "to_dict") else str(v) for k, v in plan.extra_features.items()},
        }
        (staging / _MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True, default=str))
        corpus = _open(staging, plan.info, features, list(writers))
        try:
            check_corpus(corpus)
        except SchemaError as error:
            raise CorpusFormatError(plan.source, f"converted corpus is off-schema: {error}") from None
        del corpus
        try:
            staging.rename(directory)
        except OSError:
            if not (directory / _MANIFEST).is_file():
                raise
            # Someone converted the same source concurrently; theirs is as good as ours.
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return open_corpus(directory)


def check_corpus(corpus: Dataset | DatasetDict, check_finite: bool = False) -> None:
    """``validate_corpus`` (loaders sanitise features first, so finiteness is opt-in)."""
    validate_corpus(corpus, check_finite=check_finite)


def _open(directory: Path, info: CorpusInfo, features: Features, splits: list[str]) -> DatasetDict:
    description = info.to_json()
    corpus = DatasetDict(
        {
            name: Dataset.from_file(
                str(directory / f"{name}.arrow"),
                info=DatasetInfo(features=features.copy(), description=description),
                split=NamedSplit(name),
            )
            for name in splits
        }
    )
    set_corpus_info(corpus, info)
    return corpus


def open_corpus(directory: str | Path) -> DatasetDict | None:
    """Open a corpus written by ``write_corpus`` (memory-mapped); ``None`` if incomplete."""
    directory = Path(directory)
    manifest_path = directory / _MANIFEST
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("loader_version") != LOADER_VERSION:
            return None
        info = CorpusInfo(**manifest["info"])
        splits = [name for name, _ in manifest["splits"]]
        features = Features.from_arrow_schema(_schema_of(directory / f"{splits[0]}.arrow")) if splits else None
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowException):
        logger.warning("Ignoring unreadable converted corpus in %s.", directory)
        return None
    if features is None:
        return None
    return _open(directory, info, features, splits)


def _schema_of(path: Path) -> pa.Schema:
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_stream(source).schema


# ---------------------------------------------------------------------------------------
# Helpers the format modules share.


def decode_text(value: Any) -> str:
    """A str from the many ways published files spell one (bytes, numpy scalars, 0-d arrays)."""
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            value = value.item()
        elif value.size == 1:
            value = value.reshape(-1)[0]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return bytes(value).decode("latin-1")
    return str(value)


def stable_fraction(*parts: object) -> float:
    """A number in [0, 1) fixed by ``parts``: deterministic splits that do not depend on order."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") / 2**64


def unique_ids(ids: list[str], source: Path, split: str) -> list[str]:
    """Make ids unique within a split (``#2``, ``#3`` suffixes), warning once if needed."""
    seen: dict[str, int] = {}
    out = []
    for value in ids:
        count = seen.get(value, 0) + 1
        seen[value] = count
        out.append(value if count == 1 else f"{value}#{count}")
    duplicates = sum(c - 1 for c in seen.values())
    if duplicates:
        logger.warning("%s: %d duplicate ids in split %r were suffixed with '#<n>'.", source, duplicates, split)
    return out


def check_sentiment(path: Path, where: str, scores: np.ndarray, low: float, high: float) -> np.ndarray:
    """Raise if sentiment scores are not finite or outside the corpus' scale ``[low, high]``."""
    scores = np.asarray(scores, dtype=np.float64)
    bad = ~np.isfinite(scores) | (scores < low - 1e-6) | (scores > high + 1e-6)
    if bad.any():
        rows = np.flatnonzero(bad)[:5].tolist()
        values = scores[np.flatnonzero(bad)[:5]].tolist()
        raise CorpusFormatError(
            path, f"{where}: sentiment labels must be finite and in [{low:g}, {high:g}]; rows {rows} hold {values}."
        )
    return np.clip(scores, low, high)


def to_sentiment_scale(scores: np.ndarray, scale: float) -> np.ndarray:
    """Scale scores onto the unified [-3, 3] range (SIMS' [-1, 1] times 3) and clip rounding noise."""
    low, high = SENTIMENT_RANGE
    return np.clip(np.asarray(scores, dtype=np.float64) * scale, low, high).astype(np.float32)


def batched(n: int, size: int) -> Iterator[slice]:
    """Slices covering ``range(n)`` in steps of ``size``."""
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def json_safe(value: Any, limit: int = 20000) -> Any:
    """A JSON-serialisable summary of ``value`` (for notes); ``None`` if it would be too large."""
    try:
        text = json.dumps(value, default=lambda o: o.tolist() if isinstance(o, np.ndarray) and o.size < 64 else str(o))
    except (TypeError, ValueError):
        return None
    return json.loads(text) if len(text) <= limit else None
