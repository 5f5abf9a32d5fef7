"""Multi-task training on the stock ``transformers.Trainer``: corpus sampling, per-corpus
evaluation, loss logging per task. See ``MultiTaskTrainer``."""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    "BatchComposition": "mtaffect.training.sampler",
    "CorpusSampling": "mtaffect.training.sampler",
    "CorpusConcatDataset": "mtaffect.training.sampler",
    "MultiCorpusBatchSampler": "mtaffect.training.sampler",
    "corpus_probabilities": "mtaffect.training.sampler",
    "MultiTaskTrainingArguments": "mtaffect.training.arguments",
    "MultiTaskTrainer": "mtaffect.training.trainer",
    "FeatureSetCollator": "mtaffect.training.trainer",
    "PerTaskSelection": "mtaffect.training.selection",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    # Lazy, so that importing the sampler does not import transformers.
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mtaffect.training' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))
