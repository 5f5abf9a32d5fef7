"""The one small interface every feature extractor implements.

An extractor turns a batch of raw inputs of one modality (transcripts, audio files, video
files) into one float32 ``[T, D]`` array per input. It says what it produces (``name``,
``modality``, ``dim``, ``step``/``frame_rate``) and can describe itself as a JSON-able dict,
which is stored in the corpus metadata (``CorpusInfo.extractors``) and in a trained model's
config, so the *same* extractor can be rebuilt at inference time with
``extractor_from_description``.

Failures on single inputs (an empty transcript, a corrupt WAV) raise
``ExtractionError`` naming the input; ``Extractor.extract_safe`` isolates them so a
corpus runner can report and skip the bad item and keep the rest of the batch.
"""

from __future__ import annotations

import importlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mtaffect.data.modalities import MODALITIES

logger = logging.getLogger(__name__)

#: Extractor class name -> module defining it, for ``extractor_from_description``.
EXTRACTOR_CLASSES: dict[str, str] = {
    "TextExtractor": "mtaffect.data.extract.text",
    "AudioExtractor": "mtaffect.data.extract.audio",
    "VisualExtractor": "mtaffect.data.extract.visual",
}


class ExtractionError(ValueError):
    """One input could not be turned into features (names the input and the reason).

    Raised per item, so a corpus-level run can report the item and extract the rest.
    """

    def __init__(self, item: Any, reason: str) -> None:
        self.item = _item_label(item)
        self.reason = reason
        super().__init__(f"{self.item}: {reason}")


class MissingExtraError(ImportError):
    """An optional dependency of an extractor is not installed (names the pip extra)."""


def require(module: str, extra: str, purpose: str) -> Any:
    """Import ``module`` or raise ``MissingExtraError`` telling which extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(
            f"{purpose} needs the Python package {module!r}, which is not installed: "
            f"pip install 'mtaffect[{extra}]'"
        ) from error


def _item_label(item: Any) -> str:
    if isinstance(item, str):
        text = item if len(item) <= 60 else item[:57] + "..."
        return repr(text)
    if isinstance(item, tuple) and item and isinstance(item[0], np.ndarray):
        return f"<in-memory signal of {item[0].shape[0]} samples>"
    return str(item)


class Extractor(ABC):
    """Raw inputs of one modality -> one float32 ``[T, dim]`` array per input.

    Subclasses set ``modality`` and, in ``__init__``, ``name`` (unique per configuration:
    it becomes part of the corpus' feature-set name), ``dim``, ``step`` (what one row of the
    output stands for: ``"token"``, ``"10ms"``, ``"200ms"``, or ``None`` for one vector per
    input) and ``frame_rate`` (rows per second, ``None`` where rows are not time frames).
    """

    modality: str = ""
    name: str
    dim: int
    step: str | None = None
    frame_rate: float | None = None

    @abstractmethod
    def __call__(self, items: Sequence[Any]) -> list[np.ndarray]:
        """Features of each item, in order; raises ``ExtractionError`` for a bad item."""

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this extractor (JSON-able, machine-independent)."""

    def describe(self) -> dict[str, Any]:
        """JSON-able description: what the features are and how to rebuild the extractor."""
        return {
            "class": type(self).__name__,
            "name": self.name,
            "modality": self.modality,
            "dim": int(self.dim),
            "step": self.step,
            "frame_rate": self.frame_rate,
            "config": self.config(),
            **self.details(),
        }

    def details(self) -> dict[str, Any]:
        """Extra descriptive fields (feature names, library versions) for ``describe``."""
        return {}

    def extract_safe(self, items: Sequence[Any]) -> list[np.ndarray | ExtractionError]:
        """Like ``__call__``, but a bad item yields its ``ExtractionError`` in its place.

        Tries the whole batch first (fast path); if an item fails, extracts the items one by
        one so the good ones still come through.
        """
        items = list(items)
        if not items:
            return []
        try:
            return list(self(items))
        except ExtractionError as error:
            if len(items) == 1:
                return [error]
        results: list[np.ndarray | ExtractionError] = []
        for item in items:
            try:
                results.append(self([item])[0])
            except ExtractionError as error:
                results.append(error)
        return results

    def check_output(self, item: Any, array: np.ndarray) -> np.ndarray:
        """Validate one output: float32 ``[T>=1, dim]`` and finite, else ``ExtractionError``."""
        array = np.asarray(array, dtype=np.float32)
        if array.ndim != 2 or array.shape[1] != self.dim:
            raise ExtractionError(item, f"{self.name} produced shape {array.shape}, expected [T, {self.dim}]")
        if array.shape[0] == 0:
            raise ExtractionError(item, f"{self.name} produced no frames")
        if not np.isfinite(array).all():
            raise ExtractionError(item, f"{self.name} produced non-finite values")
        return array

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim}, step={self.step!r})"


def extractor_from_description(description: Mapping[str, Any]) -> Extractor:
    """Rebuild an extractor from its ``Extractor.describe`` dict.

    Raises ``ValueError`` if the description is not one, or if the rebuilt extractor's name
    or dim differ from the recorded ones (a different model or library than at training time).

    Examples:
        >>> from mtaffect.data.extract import AudioExtractor
        >>> ex = extractor_from_description(AudioExtractor(level="functionals").describe())  # doctest: +SKIP
    """
    if not isinstance(description, Mapping) or "class" not in description or "config" not in description:
        raise ValueError(
            f"Not an extractor description (needs 'class' and 'config' keys): {description!r}. "
            "Pass the dict that Extractor.describe() returned (stored in CorpusInfo.extractors)."
        )
    class_name = description["class"]
    if class_name not in EXTRACTOR_CLASSES:
        raise ValueError(f"Unknown extractor class {class_name!r}: expected one of {sorted(EXTRACTOR_CLASSES)}.")
    cls = getattr(importlib.import_module(EXTRACTOR_CLASSES[class_name]), class_name)
    extractor = cls(**dict(description["config"]))
    for key in ("name", "dim"):
        if key in description and getattr(extractor, key) != description[key]:
            raise ValueError(
                f"Rebuilt {class_name} has {key} {getattr(extractor, key)!r} but the description says "
                f"{description[key]!r}: the model or library differs from the one the features were made with."
            )
    return extractor


def feature_set_name(extractors: Sequence[Extractor]) -> str:
    """Feature-set name of a corpus made by ``extractors`` (their names, joined in modality order)."""
    ordered = sorted(extractors, key=lambda ex: MODALITIES.index(ex.modality))
    return "+".join(ex.name for ex in ordered)
