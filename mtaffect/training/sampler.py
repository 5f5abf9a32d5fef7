"""Which corpus each training batch comes from, and which examples it holds.

Corpora differ in size by an order of magnitude (MOSEI ~16k utterances, MUStARD 690), so
*how often* each one is drawn is an experimental choice, not an implementation detail.
``MultiCorpusBatchSampler`` makes it explicit:

* **corpus sampling** (``CorpusSampling``) -- which corpus supplies the next batch:
  ``proportional`` (every batch of every corpus exactly once per epoch, in a random
  order, so a corpus is drawn in proportion to its number of batches), ``temperature``
  (i.i.d. draws with ``p_c ∝ n_c^(1/T)``: ``T=1`` is proportional, ``T→∞`` uniform),
  ``uniform`` (``p_c = 1/K``) or ``round_robin`` (corpora in turn, in their given order);
* **batch composition** (``BatchComposition``) -- ``homogeneous`` (each batch from
  one corpus) or ``mixed`` (a batch mixes the corpora that share a feature set, each
  example slot drawn by the same strategy). Batches never mix feature sets: the model
  projects one feature set per batch.

**Epoch length** is the same for every strategy, so strategies compare at equal compute:
an epoch has as many batches as one pass over every corpus would take (``Σ_c
ceil(n_c / B)`` for homogeneous batches, ``Σ_g ceil(n_g / B)`` over feature-set groups for
mixed ones; ``floor`` with ``drop_last``). Under ``proportional`` that pass is exact (each
example once per epoch); the other strategies draw from per-corpus streams that reshuffle
and start over whenever a corpus runs out, so small corpora repeat and large ones are
only partly seen.

**Determinism.** The batch sequence is a pure function of ``(seed, epoch)``: every
shuffle and draw uses its own generator seeded from ``(seed, epoch, purpose, ...)``.
That makes resume exact (the Trainer re-creates the epoch and skips the batches already
trained) and makes every process of a distributed run compute the same global sequence.

**Distributed training.** With ``num_replicas=R``, the global sequence is truncated to a
multiple of ``R`` and rank ``r`` takes batches ``r, r+R, r+2R, ...``: ranks see distinct
batches and run the same number of steps (at most ``R-1`` batches per epoch are dropped).

Examples:
    >>> sampler = MultiCorpusBatchSampler({"a": 10, "b": 4}, batch_size=4, seed=0)
    >>> len(sampler)  # ceil(10/4) + ceil(4/4)
    4
    >>> sorted(i for batch in sampler for i in batch) == list(range(14))
    True
"""

from __future__ import annotations

import bisect
import itertools
import logging
from collections.abc import Iterator, Mapping, Sequence
from enum import Enum
from typing import Any

import numpy as np
from torch.utils.data import ConcatDataset, Dataset, Sampler

from mtaffect.data.arrow import ArrowRowReader

logger = logging.getLogger(__name__)

# Tags that keep the generators of different purposes independent of each other.
_PERMUTATION, _CORPUS_DRAW, _SLOT_DRAW, _GROUP_PERMUTATION = range(4)


class CorpusSampling(str, Enum):
    """How the corpus of each batch (or, for mixed batches, of each example) is drawn."""

    PROPORTIONAL = "proportional"
    TEMPERATURE = "temperature"
    ROUND_ROBIN = "round_robin"
    UNIFORM = "uniform"


class BatchComposition(str, Enum):
    """Whether a batch holds one corpus or mixes the corpora of one feature set."""

    HOMOGENEOUS = "homogeneous"
    MIXED = "mixed"


def corpus_probabilities(
    sizes: Sequence[int], sampling: CorpusSampling | str, temperature: float = 1.0
) -> np.ndarray:
    """Probability of drawing each corpus, for the i.i.d. and round-robin strategies.

    ``proportional`` gives ``n_c / Σn`` (the rate it realises exactly, per batch of examples),
    ``temperature`` ``n_c^(1/T)`` normalised, ``uniform`` and ``round_robin`` ``1/K``.

    Examples:
        >>> corpus_probabilities([100, 25], "temperature", 2.0).round(3).tolist()
        [0.667, 0.333]
    """
    sampling = CorpusSampling(sampling)
    n = np.asarray(sizes, dtype=np.float64)
    if sampling is CorpusSampling.PROPORTIONAL:
        weights = n
    elif sampling is CorpusSampling.TEMPERATURE:
        if not temperature > 0:
            raise ValueError(f"The sampling temperature must be > 0, got {temperature}.")
        weights = n ** (1.0 / temperature)
    else:
        weights = np.ones_like(n)
    return weights / weights.sum()


class MultiCorpusBatchSampler(Sampler[list[int]]):
    """Batch sampler over the concatenation of several corpora (see the module docstring).

    Indices are global positions in the concatenation, in the order of ``corpus_sizes``
    (use ``CorpusConcatDataset`` with the same mapping).

    Args:
        corpus_sizes: `Mapping[str, int]`. Corpus name -> number of examples.
        batch_size: `int`. Examples per batch (per process).
        sampling: `CorpusSampling` or `str`, defaults to `"proportional"`. How
            corpora are drawn.
        temperature: `float`, defaults to `2.0`. ``T`` of ``temperature`` sampling.
        composition: `BatchComposition` or `str`, defaults to `"homogeneous"`.
            one corpus per batch, or corpora of one feature set mixed.
        feature_sets: `Mapping[str, str]`. Corpus name -> feature set; corpora
            of one feature set may share a ``mixed`` batch. Defaults to one set per corpus.
        drop_last: `bool`, defaults to `False`. Drop each pass' incomplete
            last batch (per corpus, or per feature-set group for mixed batches).
        seed: `int`, defaults to `0`. With the epoch, fixes the whole sequence.
        num_replicas: `int`, defaults to `1`. The distributed world size.
        rank: `int`, defaults to `0`. This process' rank.

    The sampler deliberately has no ``batch_size`` attribute: batches can be shorter than
    ``batch_size`` and accelerate's ``BatchSamplerShard`` drops short batches of a batch
    sampler that declares a fixed size. ``max_batch_size`` holds it instead.
    """

    def __init__(
        self,
        corpus_sizes: Mapping[str, int],
        batch_size: int,
        sampling: CorpusSampling | str = CorpusSampling.PROPORTIONAL,
        temperature: float = 2.0,
        composition: BatchComposition | str = BatchComposition.HOMOGENEOUS,
        feature_sets: Mapping[str, str] | None = None,
        drop_last: bool = False,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if not corpus_sizes:
            raise ValueError("MultiCorpusBatchSampler needs at least one corpus.")
        self.names = list(corpus_sizes)
        self.sizes = [int(corpus_sizes[name]) for name in self.names]
        empty = [name for name, n in zip(self.names, self.sizes) if n <= 0]
        if empty:
            raise ValueError(f"Training corpora {empty} are empty; remove them from train_dataset.")
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}.")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"Invalid distributed setup: rank {rank} of {num_replicas} processes.")
        self.max_batch_size = batch_size
        self.sampling = CorpusSampling(sampling)
        self.temperature = float(temperature)
        self.composition = BatchComposition(composition)
        self.drop_last = bool(drop_last)
        self.seed = int(seed)
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.epoch = 0
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)
        self.probabilities = corpus_probabilities(self.sizes, self.sampling, self.temperature)

        feature_sets = dict(feature_sets or {name: name for name in self.names})
        missing = [name for name in self.names if name not in feature_sets]
        if missing:
            raise ValueError(f"feature_sets has no entry for corpora {missing}.")
        self.feature_sets = [str(feature_sets[name]) for name in self.names]
        # Feature-set groups in order of first appearance: corpus indices per group.
        self.groups: list[list[int]] = []
        group_of: dict[str, int] = {}
        for k, feature_set in enumerate(self.feature_sets):
            if feature_set not in group_of:
                group_of[feature_set] = len(self.groups)
                self.groups.append([])
            self.groups[group_of[feature_set]].append(k)

        units = self._unit_sizes()
        too_small = [name for name, n in units.items() if self._batches_per_pass(n) == 0]
        if too_small:
            raise ValueError(
                f"{too_small} hold fewer examples than batch_size={batch_size} and drop_last is on, "
                "so they would never be drawn; lower the batch size or set dataloader_drop_last=False."
            )
        self.global_num_batches = sum(self._batches_per_pass(n) for n in units.values())
        if self.global_num_batches < self.num_replicas:
            raise ValueError(
                f"An epoch has {self.global_num_batches} batches, fewer than the {self.num_replicas} "
                "processes; lower the batch size or add data."
            )

    # ---- public API ------------------------------------------------------------------

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose sequence ``__iter__`` yields (called by the Trainer)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.global_num_batches // self.num_replicas

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.global_batches(self.epoch)
        usable = len(batches) - len(batches) % self.num_replicas
        yield from batches[self.rank : usable : self.num_replicas]

    def global_batches(self, epoch: int) -> list[list[int]]:
        """The batch sequence of ``epoch`` before it is split across processes."""
        if self.composition is BatchComposition.HOMOGENEOUS:
            return self._homogeneous(epoch)
        return self._mixed(epoch)

    def corpus_of(self, index: int) -> str:
        """Name of the corpus a global index belongs to."""
        return self.names[int(np.searchsorted(self.offsets, index, side="right")) - 1]

    # ---- internals -------------------------------------------------------------------

    def _unit_sizes(self) -> dict[str, int]:
        """Sizes of the units batches are cut from: corpora, or feature-set groups if mixed."""
        if self.composition is BatchComposition.HOMOGENEOUS:
            return dict(zip(self.names, self.sizes))
        return {
            f"feature set {self.feature_sets[group[0]]!r}": sum(self.sizes[k] for k in group)
            for group in self.groups
        }

    def _batches_per_pass(self, n: int) -> int:
        return n // self.max_batch_size if self.drop_last else -(-n // self.max_batch_size)

    def _rng(self, epoch: int, *tags: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, epoch, *tags])

    def _chunks(self, indices: np.ndarray) -> list[list[int]]:
        step = self.max_batch_size
        chunks = [indices[i : i + step].tolist() for i in range(0, len(indices), step)]
        if self.drop_last and chunks and len(chunks[-1]) < step:
            chunks.pop()
        return chunks

    def _corpus_batches(self, epoch: int, k: int) -> Iterator[list[int]]:
        """Endless batches of corpus ``k``: pass after pass, each freshly shuffled."""
        for pass_index in itertools.count():
            order = self._rng(epoch, _PERMUTATION, k, pass_index).permutation(self.sizes[k])
            yield from self._chunks(order + self.offsets[k])

    def _corpus_examples(self, epoch: int, k: int) -> Iterator[int]:
        """Endless examples of corpus ``k``, reshuffled at every pass."""
        for pass_index in itertools.count():
            order = self._rng(epoch, _PERMUTATION, k, pass_index).permutation(self.sizes[k])
            yield from (order + self.offsets[k]).tolist()

    def _draw_order(self, epoch: int, counts: Sequence[int], probabilities: np.ndarray) -> np.ndarray:
        """Which unit (corpus or group) supplies each batch of the epoch."""
        total = int(sum(counts))
        if self.sampling is CorpusSampling.PROPORTIONAL:
            units = np.repeat(np.arange(len(counts)), counts)
            return self._rng(epoch, _CORPUS_DRAW).permutation(units)
        if self.sampling is CorpusSampling.ROUND_ROBIN:
            return np.arange(total) % len(counts)
        return self._rng(epoch, _CORPUS_DRAW).choice(len(counts), size=total, p=probabilities)

    def _homogeneous(self, epoch: int) -> list[list[int]]:
        counts = [self._batches_per_pass(n) for n in self.sizes]
        streams = [self._corpus_batches(epoch, k) for k in range(len(self.sizes))]
        return [next(streams[k]) for k in self._draw_order(epoch, counts, self.probabilities)]

    def _mixed(self, epoch: int) -> list[list[int]]:
        group_sizes = [sum(self.sizes[k] for k in group) for group in self.groups]
        counts = [self._batches_per_pass(n) for n in group_sizes]
        if self.sampling is CorpusSampling.PROPORTIONAL:
            # Exact pass: pool each group's examples, shuffle, cut into batches.
            group_batches = []
            for g, group in enumerate(self.groups):
                pool = np.concatenate([np.arange(self.sizes[k]) + self.offsets[k] for k in group])
                shuffled = self._rng(epoch, _GROUP_PERMUTATION, g).permutation(pool)
                group_batches.append(iter(self._chunks(shuffled)))
            order = self._draw_order(epoch, counts, np.asarray(group_sizes) / sum(group_sizes))
            return [next(group_batches[g]) for g in order]

        group_probabilities = np.asarray([self.probabilities[group].sum() for group in self.groups])
        order = self._draw_order(epoch, counts, group_probabilities)
        streams = [self._corpus_examples(epoch, k) for k in range(len(self.sizes))]
        slot_rng = self._rng(epoch, _SLOT_DRAW)
        turns = [0] * len(self.groups)
        batches = []
        for g in order:
            group = self.groups[g]
            if self.sampling is CorpusSampling.ROUND_ROBIN:
                slots = [group[(turns[g] + j) % len(group)] for j in range(self.max_batch_size)]
                turns[g] += self.max_batch_size
            else:
                within = self.probabilities[group] / self.probabilities[group].sum()
                slots = [group[j] for j in slot_rng.choice(len(group), size=self.max_batch_size, p=within)]
            batches.append([next(streams[k]) for k in slots])
        return batches


class CorpusConcatDataset(ConcatDataset):
    """``ConcatDataset`` of named corpora that reads a whole batch per corpus at once.

    ``torch``'s ``ConcatDataset`` reads examples one by one. This one offers
    ``__getitems__`` (which the DataLoader uses when present) and reads numpy-formatted
    ``datasets.Dataset`` corpora straight from Arrow (``ArrowRowReader``); other
    datasets go through their own ``__getitems__``. Row order is preserved.
    """

    def __init__(self, datasets: Mapping[str, Dataset]) -> None:
        if not datasets:
            raise ValueError("CorpusConcatDataset needs at least one dataset.")
        self.names = list(datasets)
        super().__init__(list(datasets.values()))
        self._readers: list[ArrowRowReader | None] | None = None

    def corpus_sizes(self) -> dict[str, int]:
        return {name: len(dataset) for name, dataset in zip(self.names, self.datasets)}

    def __getstate__(self) -> dict[str, Any]:
        # Readers hold Arrow arrays: rebuild them in each DataLoader worker, do not pickle them.
        state = self.__dict__.copy()
        state["_readers"] = None
        return state

    def __getitems__(self, indices: Sequence[int]) -> list[Any]:
        if self._readers is None:
            self._readers = [ArrowRowReader.for_dataset(dataset) for dataset in self.datasets]
        by_dataset: dict[int, list[tuple[int, int]]] = {}
        for position, index in enumerate(indices):
            index = int(index)
            if index < 0:
                index += len(self)
            d = bisect.bisect_right(self.cumulative_sizes, index)
            local = index - (self.cumulative_sizes[d - 1] if d else 0)
            by_dataset.setdefault(d, []).append((position, local))
        rows: list[Any] = [None] * len(indices)
        for d, pairs in by_dataset.items():
            dataset, reader = self.datasets[d], self._readers[d]
            locals_ = [local for _, local in pairs]
            if reader is not None:
                fetched = reader(locals_)
            else:
                fetch = getattr(dataset, "__getitems__", None)
                fetched = fetch(locals_) if fetch else [dataset[i] for i in locals_]
            for (position, _), row in zip(pairs, fetched):
                rows[position] = row
        return rows
