"""Features of one raw utterance, with the extractors a model was trained with (inference)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mtaffect.data.extract.base import Extractor, extractor_from_description
from mtaffect.data.extract.text import TextExtractor

logger = logging.getLogger(__name__)

ExtractorSpec = Extractor | Mapping[str, Any]


def build_extractors(
    extractors: Mapping[str, ExtractorSpec] | Sequence[ExtractorSpec] | None = None,
) -> dict[str, Extractor]:
    """Modality -> extractor, from extractors or their ``describe()`` dicts.

    Accepts what ``CorpusInfo.extractors`` holds (modality -> description), a list of
    extractors/descriptions, or ``None`` for the default text extractor alone. Build once
    and reuse: loading a text encoder takes a second or more.
    """
    if extractors is None:
        return {"text": TextExtractor()}
    specs = list(extractors.values()) if isinstance(extractors, Mapping) else list(extractors)
    built: dict[str, Extractor] = {}
    for spec in specs:
        extractor = spec if isinstance(spec, Extractor) else extractor_from_description(spec)
        if extractor.modality in built:
            raise ValueError(f"Two extractors for modality {extractor.modality!r}: give one per modality.")
        built[extractor.modality] = extractor
    return built


def extract_utterance(
    text: str | None,
    audio_path: str | Path | None = None,
    video_path: str | Path | None = None,
    extractors: Mapping[str, ExtractorSpec] | Sequence[ExtractorSpec] | None = None,
    missing: str = "error",
) -> dict[str, np.ndarray]:
    """Modality -> float32 ``[T, D]`` features of one utterance.

    The audio extractor reads ``audio_path``, or the audio track of ``video_path`` when no
    audio file is given; the visual extractor reads ``video_path``.

    Args:
        missing: what to do when an extractor's input is not given: ``"error"`` (raise
            ``ValueError`` naming the input the model needs) or ``"skip"`` (leave the
            modality out; the model must then accept a missing modality).

    Raises ``ExtractionError`` when an input cannot be decoded or is empty.

    Examples:
        >>> feats = extract_utterance("Oh, great.", extractors=[TextExtractor(pooled=True)])  # doctest: +SKIP
        >>> feats["text"].shape  # doctest: +SKIP
        (1, 384)
    """
    if missing not in ("error", "skip"):
        raise ValueError(f"missing must be 'error' or 'skip', got {missing!r}.")
    built = build_extractors(extractors)
    inputs: dict[str, Any] = {
        "text": text,
        "audio": audio_path if audio_path is not None else video_path,
        "visual": video_path,
    }
    wanted = {"text": "text", "audio": "audio_path (or video_path)", "visual": "video_path"}
    features: dict[str, np.ndarray] = {}
    for modality, extractor in built.items():
        item = inputs[modality]
        if item is None:
            if missing == "skip":
                logger.info("No %s input given: %s features left out.", modality, modality)
                continue
            raise ValueError(
                f"The extractors include {extractor.name!r} but no {wanted[modality]} was given; pass it, "
                "or missing='skip' if the model accepts a missing modality."
            )
        features[modality] = extractor([item])[0]
    return features
