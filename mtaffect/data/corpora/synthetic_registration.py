"""Registers the synthetic corpus family (``mtaffect.data.corpora.synthetic``) in the corpus registry.

Generated corpora need no files: ``load_corpus("synthetic_mosei")`` (path ignored) takes
``make_synthetic_corpus``'s keyword arguments as options.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from datasets import DatasetDict

from mtaffect.data.corpora.registry import register_corpus
from mtaffect.data.corpora.synthetic import SPECS, make_synthetic_corpus

OPTIONS = {
    "seed": "data seed (same seed, same corpus)",
    "size_scale": "multiplies every split size",
    "noise": "multiplies observation and label noise",
    "shared_features": "all corpora use the CMU-style feature set (needed for cross-corpus teachers)",
    "feature_scale": "scales MUStARD's native dims when shared_features is off",
    "min_length": "shortest sequence",
    "max_length": "longest sequence",
    "map_seed": "seed of the fixed extractor maps (the feature set's identity)",
}


def _generate(
    path: Path | None,
    seed: int = 0,
    size_scale: float = 1.0,
    noise: float = 1.0,
    shared_features: bool = True,
    feature_scale: float = 0.125,
    min_length: int = 6,
    max_length: int = 16,
    map_seed: int = 0,
    *,
    _name: str,
) -> DatasetDict:
    return make_synthetic_corpus(
        _name,
        seed=seed,
        size_scale=size_scale,
        noise=noise,
        shared_features=shared_features,
        feature_scale=feature_scale,
        min_length=min_length,
        max_length=max_length,
        map_seed=map_seed,
    )


for _name, _spec in SPECS.items():
    register_corpus(
        _name,
        "synthetic",
        description=f"generated: {', '.join(_spec.modalities)}; gold {', '.join(_spec.tasks)} (path ignored)",
        options=OPTIONS,
        needs_path=False,
    )(partial(_generate, _name=_name))
