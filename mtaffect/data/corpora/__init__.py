"""Corpus loaders, one module per published format, behind one registry.

Examples:
    >>> from mtaffect.data.corpora import load_corpus, list_corpora
    >>> sorted({entry.format for entry in list_corpora()})
    ['cmu_sdk', 'emorynlp', 'meld', 'mmsa', 'mult', 'mustard', 'synthetic', 'table']

``load_corpus(name, path, format=None, **options)`` reads a corpus as published (MMSA and
MulT pickles, CMU-MultimodalSDK ``.csd`` files, MUStARD's json, MELD's CSVs) into the
unified schema (EmoryNLP's CSVs and any text table a user has, CSV / JSON Lines / Parquet,
too); ``combine_corpora`` prepares several for multi-task training. Adding a
corpus or a format is one module with one ``register_corpus`` call, named in
``registry.FORMAT_MODULES``.
"""

from __future__ import annotations

from mtaffect.data.corpora.combine import combine_corpora
from mtaffect.data.corpora.errors import CorpusFormatError, UnsafePickleError
from mtaffect.data.corpora.registry import (
    CorpusFormat,
    CorpusOption,
    corpus_names,
    detect_format,
    get_format,
    list_corpora,
    load_corpus,
    register_corpus,
)

from mtaffect.data.corpora.registry import _ensure_formats_loaded  # isort: skip

# The format modules register their loaders on import (registry.FORMAT_MODULES names them).
_ensure_formats_loaded()

__all__ = [
    "CorpusFormat",
    "CorpusFormatError",
    "CorpusOption",
    "UnsafePickleError",
    "combine_corpora",
    "corpus_names",
    "detect_format",
    "get_format",
    "list_corpora",
    "load_corpus",
    "register_corpus",
]
