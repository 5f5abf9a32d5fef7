"""Conversational context: the turns around the utterance being classified.

Every real corpus mtaffect ships recipes for is conversational (MELD dialogues, EmoryNLP
scenes, MUStARD's preceding turns), and emotion-recognition-in-conversation systems gain most of
their edge over single-utterance ones from context. A loader asked for it
(``context={"past": K, "future": J}``) adds these columns to every row of a split:

* ``context_text`` / ``context_speaker`` (lists of strings): the context turns, oldest first;
* ``context_position`` (list of ints): each turn's offset from the utterance, ``-1`` the turn
  just before it, ``+1`` the one just after (``0`` is never used);
* ``context_same_speaker`` (list of bools): whether the turn's speaker is the utterance's;
* ``context_<modality>_features`` (``Array2D(shape=(None, D))``): one pooled frame (the mean of
  the turn's own frames) per context turn, in the same order, for a frozen-feature model.

Turns come from the same dialogue (MELD ``Dialogue_ID``; EmoryNLP season + episode + scene,
since its ``Scene_ID`` restarts every episode) of the same split, ordered by their utterance
ids; a corpus that publishes its context (MUStARD) gives it as it is. Nothing ever crosses a
dialogue or a split. ``K`` and ``J`` are maxima: a model reads up to its own
``config.context`` turns of what a corpus holds, so one corpus loaded with ``past=8`` serves
every model with ``past <= 8``.

Examples:
    >>> options = ContextOptions.from_value({"past": 2})
    >>> turns = [("d1", 0, "Ross"), ("d1", 1, "Rachel"), ("d2", 0, "Joey"), ("d1", 2, "Ross")]
    >>> [[(i, p) for i, p in found] for found in dialogue_context([t[:2] for t in turns], options)]
    [[], [(0, -1)], [], [(0, -2), (1, -1)]]
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from datasets import Array2D, List, Value

from mtaffect.data.modalities import MODALITIES

logger = logging.getLogger(__name__)

#: The raw context columns (strings and their order), present whenever a corpus has context.
CONTEXT_TEXT = "context_text"
CONTEXT_SPEAKER = "context_speaker"
CONTEXT_POSITION = "context_position"
CONTEXT_SAME_SPEAKER = "context_same_speaker"
RAW_CONTEXT_COLUMNS: tuple[str, ...] = (CONTEXT_TEXT, CONTEXT_SPEAKER, CONTEXT_POSITION, CONTEXT_SAME_SPEAKER)


#: Help of the ``context`` option of the loaders that take it (``register_corpus(options=...)``).
CONTEXT_OPTION_HELP = (
    "conversational context: {'past': K, 'future': J} turns of the utterance's dialogue (same split), "
    "with their speakers and pooled features; None = none"
)


def context_feature_column(modality: str) -> str:
    """Column (and batch key) of a modality's pooled context turns: ``context_<modality>_features``."""
    if modality not in MODALITIES:
        raise ValueError(f"Unknown modality {modality!r}: expected one of {MODALITIES}.")
    return f"context_{modality}_features"


def context_mask_key(modality: str) -> str:
    """Batch key of the mask of a modality's context turns (True on real turns)."""
    return f"context_{modality}_mask"


@dataclass(frozen=True)
class ContextOptions:
    """How much context to keep: ``past`` turns before the utterance, ``future`` after it.

    Args:
        past: preceding turns (``K``), 0 for none.
        future: following turns (``J``), 0 for none.
        speakers: whether a model marks each turn as said by the utterance's speaker or another
            (frozen features: a learned embedding; text encoders: the ``speaker: text`` prefix).
    """

    past: int = 0
    future: int = 0
    speakers: bool = True

    @property
    def enabled(self) -> bool:
        return self.past > 0 or self.future > 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_value(cls, value: Any, where: str = "context") -> ContextOptions:
        """Options from ``None`` (none), an int (that many past turns), a dict or ``ContextOptions``.

        Examples:
            >>> ContextOptions.from_value(3), ContextOptions.from_value({"past": 2, "future": 1}).enabled
            (ContextOptions(past=3, future=0, speakers=True), True)
        """
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            value = {"past": int(value)}
        if not isinstance(value, Mapping):
            raise ValueError(f"{where} must be a dict like {{'past': 2, 'future': 0, 'speakers': true}}, got {value!r}.")
        unknown = sorted(set(value) - {"past", "future", "speakers"})
        if unknown:
            raise ValueError(f"{where} has unknown key(s) {unknown}: expected past, future, speakers.")
        counts = {}
        for key in ("past", "future"):
            number = value.get(key, 0)
            if number is None:
                number = 0
            if isinstance(number, bool) or not isinstance(number, numbers.Integral) or number < 0:
                raise ValueError(f"{where}[{key!r}] must be a number of turns >= 0, got {number!r}.")
            counts[key] = int(number)
        speakers = value.get("speakers", True)
        if not isinstance(speakers, bool):
            raise ValueError(f"{where}['speakers'] must be true or false, got {speakers!r}.")
        return cls(counts["past"], counts["future"], speakers)


def context_features(dims: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The ``datasets`` types of the context columns (raw ones, plus pooled features per modality in ``dims``)."""
    columns: dict[str, Any] = {
        CONTEXT_TEXT: List(Value("string")),
        CONTEXT_SPEAKER: List(Value("string")),
        CONTEXT_POSITION: List(Value("int64")),
        CONTEXT_SAME_SPEAKER: List(Value("bool")),
    }
    for modality, dim in (dims or {}).items():
        columns[context_feature_column(modality)] = Array2D(shape=(None, int(dim)), dtype="float32")
    return columns


def same_speaker(a: str, b: str) -> bool:
    """Whether two speaker names are the same person (case and surrounding spaces ignored; empty never matches)."""
    a, b = str(a).strip().lower(), str(b).strip().lower()
    return bool(a) and a == b


def dialogue_context(turns: Sequence[tuple[Hashable, Any]], options: ContextOptions) -> list[list[tuple[int, int]]]:
    """For each turn, ``(index, position)`` of its context turns, oldest first.

    Args:
        turns: ``(dialogue key, order)`` per row of ONE split; rows of a dialogue are ordered
            by ``order`` (ties keep the rows' order), whatever the order of the rows themselves.
        options: how many turns before (``past``) and after (``future``) to keep.
    """
    dialogues: dict[Hashable, list[int]] = {}
    for index, (key, _) in enumerate(turns):
        dialogues.setdefault(key, []).append(index)
    found: list[list[tuple[int, int]]] = [[] for _ in turns]
    for members in dialogues.values():
        members.sort(key=lambda i: turns[i][1])
        for rank, index in enumerate(members):
            before = members[max(0, rank - options.past):rank]
            after = members[rank + 1:rank + 1 + options.future]
            found[index] = [(j, j_rank - rank) for j_rank, j in enumerate(before, start=rank - len(before))]
            found[index] += [(j, offset) for offset, j in enumerate(after, start=1)]
    return found


def pooled(array: Any, dim: int) -> np.ndarray:
    """A turn's features as one frame ``[1, dim]``: the mean of its frames (zeros for an empty sequence)."""
    values = np.asarray(array, dtype=np.float32).reshape(-1, dim)
    return values.mean(0, keepdims=True) if len(values) else np.zeros((1, dim), dtype=np.float32)


def context_columns(
    rows: Sequence[Mapping[str, Any]],
    found: Sequence[Sequence[tuple[int, int]]],
    features: Mapping[str, Sequence[Any]] | None = None,
    dims: Mapping[str, int] | None = None,
    usable: Sequence[bool] | None = None,
) -> dict[str, list[Any]]:
    """The context columns of ``rows`` (one split), from ``dialogue_context``'s turns.

    Args:
        rows: the split's rows, each with ``text`` and ``speaker``.
        found: ``dialogue_context(...)`` of the same rows.
        features: modality -> each row's feature sequence ``[T, D]`` (same order as ``rows``),
            pooled into the context turns' frames.
        dims: modality -> feature dim (shapes an empty context).
        usable: rows that may serve as context (a row dropped for lacking features may not).
    """
    features, dims = dict(features or {}), dict(dims or {})
    columns: dict[str, list[Any]] = {name: [] for name in RAW_CONTEXT_COLUMNS}
    columns.update({context_feature_column(m): [] for m in features})
    cache: dict[tuple[str, int], np.ndarray] = {}
    for row, turns in zip(rows, found):
        kept = [(j, p) for j, p in turns if usable is None or usable[j]]
        columns[CONTEXT_TEXT].append([str(rows[j]["text"]) for j, _ in kept])
        columns[CONTEXT_SPEAKER].append([str(rows[j]["speaker"]) for j, _ in kept])
        columns[CONTEXT_POSITION].append([int(p) for _, p in kept])
        columns[CONTEXT_SAME_SPEAKER].append([same_speaker(rows[j]["speaker"], row["speaker"]) for j, _ in kept])
        for modality, values in features.items():
            frames = []
            for j, _ in kept:
                if (modality, j) not in cache:
                    cache[(modality, j)] = pooled(values[j], dims[modality])
                frames.append(cache[(modality, j)])
            dim = dims[modality]
            columns[context_feature_column(modality)].append(
                np.concatenate(frames) if frames else np.zeros((0, dim), dtype=np.float32)
            )
    return columns


def batches_with_context(
    batches: Iterable[tuple[str, dict[str, list[Any]], list[bool]]],
    splits: Mapping[str, Sequence[Mapping[str, Any]]],
    turns: Mapping[str, Sequence[tuple[Hashable, Any]]],
    options: ContextOptions,
    dims: Mapping[str, int],
) -> Iterator[tuple[str, dict[str, list[Any]], list[bool]]]:
    """A loader's ``(split, batch, keep)`` stream with the context columns added to every batch.

    The batches of one split are held until the split ends (its context turns may sit in any
    of them), then yielded with their context: raw turns and, per modality of ``dims``, the
    turns' pooled features (a row the loader drops for lacking features serves as no one's context).

    Args:
        batches: the loader's stream, split after split, rows in the order of ``splits``.
        splits: split -> its rows (with ``text`` and ``speaker``), as the batches hold them.
        turns: split -> ``(dialogue key, order)`` per row (``dialogue_context``).
        options: how many turns to keep.
        dims: modality -> feature dim of the ``<modality>_features`` columns of the batches.
    """
    held: list[tuple[dict[str, list[Any]], list[bool]]] = []
    current = None
    for split, batch, keep in [*batches, (None, None, None)]:
        if split != current and held:
            rows = splits[current]
            usable = [k for _, keeps in held for k in keeps]
            features = {m: [a for part, _ in held for a in part[f"{m}_features"]] for m in dims}
            if len(usable) != len(rows):
                raise RuntimeError(f"split {current!r}: {len(usable)} rows in the batches, {len(rows)} parsed.")
            columns = context_columns(rows, dialogue_context(turns[current], options), features, dims, usable)
            start = 0
            for part, keeps in held:
                size = len(keeps)
                yield current, {**part, **{k: v[start:start + size] for k, v in columns.items()}}, keeps
                start += size
            held = []
        current = split
        if split is not None:
            held.append((batch, keep))


def published_context(
    rows: Sequence[Mapping[str, Any]],
    options: ContextOptions,
    extract: Callable[[list[str]], list[Any]] | None = None,
    dim: int | None = None,
) -> dict[str, list[Any]]:
    """Context columns from turns a corpus publishes per utterance (MUStARD's ``context``).

    Args:
        rows: each with ``text``, ``speaker``, ``context`` (the preceding turns, oldest first)
            and ``context_speakers``.
        options: ``past`` turns are kept (the latest ones); such corpora publish no future turns.
        extract: the corpus' text extractor (``texts -> [T, dim]`` arrays); with it, the pooled
            text features of the turns fill ``context_text_features``.
        dim: the extractor's feature dim.
    """
    columns: dict[str, list[Any]] = {name: [] for name in RAW_CONTEXT_COLUMNS}
    kept_turns = []
    for row in rows:
        texts, speakers = list(row["context"]), list(row["context_speakers"])
        if len(speakers) != len(texts):
            raise ValueError(
                f"utterance {row.get('id')!r} has {len(texts)} context turns but {len(speakers)} context speakers."
            )
        keep = len(texts) if options.past >= len(texts) else options.past
        texts, speakers = texts[len(texts) - keep:], speakers[len(speakers) - keep:]
        kept_turns.append(texts)
        columns[CONTEXT_TEXT].append([str(t) for t in texts])
        columns[CONTEXT_SPEAKER].append([str(s) for s in speakers])
        columns[CONTEXT_POSITION].append(list(range(-len(texts), 0)))
        columns[CONTEXT_SAME_SPEAKER].append([same_speaker(s, row["speaker"]) for s in speakers])
    if extract is not None:
        flat = [text for texts in kept_turns for text in texts]
        arrays = list(extract(flat)) if flat else []
        if len(arrays) != len(flat):
            raise RuntimeError(f"The text extractor returned {len(arrays)} sequences for {len(flat)} context turns.")
        frames = [pooled(array, int(dim)) for array in arrays]
        column, start = [], 0
        for texts in kept_turns:
            part = frames[start:start + len(texts)]
            start += len(texts)
            column.append(np.concatenate(part) if part else np.zeros((0, int(dim)), dtype=np.float32))
        columns[context_feature_column("text")] = column
    return columns


def has_context(dataset: Any) -> bool:
    """Whether a unified dataset carries context columns."""
    return CONTEXT_POSITION in getattr(dataset, "column_names", ())


def require_context(corpora: Mapping[str, Any], asked: str, among: str = "no corpus") -> None:
    """Refuse ``corpora`` (name -> ``DatasetDict``) when no split of any carries context columns.

    A model with context trained on them would learn only its "no context" embedding.

    Args:
        asked: what asked for context (``"model.context asks for 2 past turns"``), opening the message.
        among: how the message names the corpora (``"no corpus of the study"``).
    """
    if not any(has_context(split) for corpus in corpora.values() for split in corpus.values()):
        raise ValueError(
            f"{asked}, but {among} has context columns: give corpora read by a loader with dialogues (meld, "
            "emorynlp, mustard, a table with dialogue_column) or folders saved from load_corpus(..., "
            "context={'past': K})."
        )


def context_dims(features: Mapping[str, Any]) -> dict[str, int]:
    """Modality -> dim of the pooled context features a dataset's ``features`` hold."""
    dims = {}
    for modality in MODALITIES:
        column = features.get(context_feature_column(modality))
        if column is not None:
            dims[modality] = int(column.shape[1])
    return dims
