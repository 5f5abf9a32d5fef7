"""Mix several unified corpora for multi-task training.

Corpora generally have different feature dims (MOSEI's CMU features vs MUStARD's BERT/
ResNet), so they cannot be concatenated into one Arrow table; the multi-task trainer takes
a dict ``corpus name -> Dataset`` per split instead and its sampler draws batches from one
corpus (one feature set) at a time. ``combine_corpora`` builds those dicts and checks
what would otherwise fail late in training: schema conformance, unique names, the
``source`` column matching the name, and one set of dims per feature-set name.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

import pyarrow.compute as pc
from datasets import Dataset, DatasetDict

from mtaffect.data.corpora.base import check_corpus
from mtaffect.data.schema import feature_dims, find_split, get_corpus_info

logger = logging.getLogger(__name__)

def _named(corpora: Mapping[str, DatasetDict] | Iterable[DatasetDict]) -> dict[str, DatasetDict]:
    if isinstance(corpora, Mapping):
        named = dict(corpora)
    else:
        named = {}
        for corpus in corpora:
            name = get_corpus_info(corpus).corpus
            if name == "unknown":
                first = next(iter(corpus.values()))
                sources = first.unique("source") if "source" in first.column_names and len(first) else []
                if len(sources) != 1:
                    raise ValueError("A corpus without metadata needs a name: pass a dict {name: DatasetDict}.")
                name = sources[0]
            if name in named:
                raise ValueError(
                    f"Two corpora are named {name!r}; pass a dict with distinct names or load one with corpus_name=..."
                )
            named[name] = corpus
    if not named:
        raise ValueError("combine_corpora needs at least one corpus.")
    for name, corpus in named.items():
        if not isinstance(corpus, DatasetDict):
            raise TypeError(f"Corpus {name!r} should be a DatasetDict, got {type(corpus).__name__}.")
    return named


def combine_corpora(
    corpora: Mapping[str, DatasetDict] | Sequence[DatasetDict],
    splits: Sequence[str] = ("train", "validation", "test"),
    check_finite: bool = False,
) -> dict[str, dict[str, Dataset]]:
    """Per split, a dict ``corpus name -> Dataset`` ready for ``MultiTaskTrainer``.

    Args:
        corpora: ``{name: DatasetDict}``, or a list whose names come from each corpus'
            metadata (``get_corpus_info``).
        splits: which splits to return (``valid``/``dev`` are accepted for ``validation``).
            A corpus lacking a split is left out of that split (logged); a split no corpus
            has is an error.
        check_finite: also scan every feature value (slow on MOSEI-size corpora; the
            loaders already sanitise).

    Returns:
        ``{"train": {"mosei": Dataset, "mustard": Dataset}, "validation": {...}, ...}``.

    Raises:
        SchemaError: a corpus is off-schema.
        ValueError: duplicate names, a ``source`` column that does not match its name, or
            one feature-set name with two different sets of dims.

    Examples:
        >>> from mtaffect.data.corpora.synthetic import make_synthetic_family
        >>> family = make_synthetic_family(size_scale=0.05, corpora=["synthetic_mosei", "synthetic_mustard"])
        >>> mixed = combine_corpora(family)
        >>> sorted(mixed["train"]), mixed["train"]["synthetic_mosei"].num_rows
        (['synthetic_mosei', 'synthetic_mustard'], 32)
    """
    named = _named(corpora)
    feature_set_dims: dict[str, tuple[str, dict[str, int]]] = {}
    combined: dict[str, dict[str, Dataset]] = {split: {} for split in splits}
    for name, corpus in named.items():
        check_corpus(corpus, check_finite=check_finite)
        for split in splits:
            dataset = find_split(corpus, split)
            if dataset is None:
                logger.info("Corpus %r has no %r split; it is left out of it.", name, split)
                continue
            if len(dataset):
                sources = pc.unique(dataset.data.column("source")).to_pylist()
                if sources != [name]:
                    raise ValueError(
                        f"Corpus {name!r}, split {split!r}: its 'source' column holds {sources[:5]}, not {name!r}. "
                        "Name it as its source column does, or reload it with load_corpus(..., corpus_name=...)."
                    )
                for feature_set in pc.unique(dataset.data.column("feature_set")).to_pylist():
                    dims = feature_dims(dataset.features)
                    seen = feature_set_dims.setdefault(feature_set, (name, dims))
                    if seen[1] != dims:
                        raise ValueError(
                            f"Feature set {feature_set!r} has dims {seen[1]} in corpus {seen[0]!r} but {dims} in "
                            f"{name!r}: one feature-set name must mean one extractor (and dims). Load one of them "
                            "with feature_set=... to tell them apart."
                        )
            combined[split][name] = dataset
    empty = [split for split, members in combined.items() if not members]
    if empty:
        raise ValueError(f"No corpus has the split(s) {empty}.")
    return combined
