"""Raw media -> feature sequences: one extractor per modality behind one small interface.

Examples:
    >>> from mtaffect.data.extract import TextExtractor  # doctest: +SKIP
    >>> TextExtractor()(["Oh, great."])[0].shape  # doctest: +SKIP
    (4, 384)
"""

from __future__ import annotations

from mtaffect.data.extract.audio import AudioExtractor
from mtaffect.data.extract.base import (
    ExtractionError,
    Extractor,
    MissingExtraError,
    extractor_from_description,
    feature_set_name,
)
from mtaffect.data.extract.corpus import ExtractionResult, extract_corpus
from mtaffect.data.extract.text import TextExtractor
from mtaffect.data.extract.utterance import build_extractors, extract_utterance
from mtaffect.data.extract.visual import VisualExtractor
from mtaffect.data.raw import RawCorpus, RawCorpusError, RawExample, read_text_table

__all__ = [
    "AudioExtractor",
    "ExtractionError",
    "ExtractionResult",
    "Extractor",
    "MissingExtraError",
    "RawCorpus",
    "RawCorpusError",
    "RawExample",
    "TextExtractor",
    "VisualExtractor",
    "build_extractors",
    "extract_corpus",
    "extract_utterance",
    "extractor_from_description",
    "feature_set_name",
    "read_text_table",
]
