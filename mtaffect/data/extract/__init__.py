"""Raw media -> feature sequences: one extractor per modality behind one small interface.

Examples:
    >>> from mtaffect.data.extract import TextExtractor  # doctest: +SKIP
    >>> TextExtractor()(["Oh, great."])[0].shape  # doctest: +SKIP
    (4, 384)
"""

from __future__ import annotations

import importlib
from typing import Any

# Public name -> the module that defines it, imported on first use: ``predict`` needs the
# extractors of one utterance, not the corpus writer (``corpus``: datasets, pyarrow) nor the
# raw-corpus readers.
_LAZY: dict[str, str] = {
    "AudioExtractor": "mtaffect.data.extract.audio",
    "ExtractionError": "mtaffect.data.extract.base",
    "Extractor": "mtaffect.data.extract.base",
    "MissingExtraError": "mtaffect.data.extract.base",
    "extractor_from_description": "mtaffect.data.extract.base",
    "feature_set_name": "mtaffect.data.extract.base",
    "ExtractionResult": "mtaffect.data.extract.corpus",
    "extract_corpus": "mtaffect.data.extract.corpus",
    "TextExtractor": "mtaffect.data.extract.text",
    "build_extractors": "mtaffect.data.extract.utterance",
    "extract_utterance": "mtaffect.data.extract.utterance",
    "VisualExtractor": "mtaffect.data.extract.visual",
    "RawCorpus": "mtaffect.data.raw",
    "RawCorpusError": "mtaffect.data.raw",
    "RawExample": "mtaffect.data.raw",
    "read_text_table": "mtaffect.data.raw",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mtaffect.data.extract' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))
