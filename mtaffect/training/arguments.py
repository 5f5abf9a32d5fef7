"""Training arguments: the stock ``TrainingArguments`` plus how corpora are sampled.

Every field of ``transformers.TrainingArguments`` works as usual (checkpoints,
``report_to``, mixed precision, gradient accumulation, ``push_to_hub``...). The added
fields choose how corpora are sampled into batches. How the model weighs its losses (λ, the
weak-label mode, per-task weights) is not here: the model config owns every loss setting
(``MTAffectConfig``), so a checkpoint's ``config.json`` records what it was trained with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from transformers import TrainingArguments

from mtaffect.training.sampler import BatchComposition, CorpusSampling

__all__ = ["BatchComposition", "CorpusSampling", "MultiTaskTrainingArguments"]


@dataclass
class MultiTaskTrainingArguments(TrainingArguments):
    """``TrainingArguments`` for ``MultiTaskTrainer``.

    Args:
        corpus_sampling: `CorpusSampling` or `str`, defaults to `"proportional"`.
            Which corpus supplies each batch: ``proportional``, ``temperature``
            (``p ∝ n^(1/T)``), ``round_robin`` or ``uniform``. See ``mtaffect.training.sampler``.
        sampling_temperature: `float`, defaults to `2.0`.
            ``T`` for ``temperature`` sampling (1 = proportional, large = uniform).
        batch_composition: `BatchComposition` or `str`, defaults to `"homogeneous"`.
            ``homogeneous`` (one corpus per batch) or ``mixed`` (corpora sharing a feature
            set share batches; feature sets are never mixed).
        encoder_learning_rate: `float`.
            Learning rate of the pretrained encoders' own weights (``config.pretrained_encoders``;
            LoRA adapters included); everything else trains at ``learning_rate``. Unset: one rate.
        encoder_warmup_steps: `float`.
            Warm-up of the encoder learning rate: steps (>= 1) or a ratio of the training steps
            (< 1), like ``warmup_steps``. Unset: the same warm-up as the rest.
        cache_frozen_encoders: `bool`, defaults to `True`.
            Run each frozen pretrained encoder once per example and train on its cached outputs
            (``mtaffect.training.encoder_cache``) instead of re-encoding every epoch.

    ``remove_unused_columns`` defaults to False here: the collator needs the label and
    mask columns, which are not all named in the model's ``forward`` signature.

    Examples:
        >>> args = MultiTaskTrainingArguments("out", corpus_sampling="temperature", sampling_temperature=3)
        >>> args.corpus_sampling, args.sampling_temperature
        (<CorpusSampling.TEMPERATURE: 'temperature'>, 3.0)
    """

    corpus_sampling: CorpusSampling = field(
        default=CorpusSampling.PROPORTIONAL,
        metadata={
            "help": "Which corpus supplies each batch: proportional (each batch of each corpus once per epoch), "
            "temperature (p ∝ n^(1/T)), round_robin or uniform."
        },
    )
    sampling_temperature: float = field(
        default=2.0,
        metadata={"help": "T of temperature sampling, p ∝ n^(1/T): 1 = proportional, large = uniform."},
    )
    batch_composition: BatchComposition = field(
        default=BatchComposition.HOMOGENEOUS,
        metadata={
            "help": "homogeneous: each batch from one corpus; mixed: a batch mixes the corpora that share a "
            "feature set (feature sets are never mixed)."
        },
    )
    encoder_learning_rate: float | None = field(
        default=None,
        metadata={"help": "Learning rate of the pretrained encoders (LoRA adapters included). Unset: learning_rate."},
    )
    encoder_warmup_steps: float | None = field(
        default=None,
        metadata={"help": "Warm-up of the encoder learning rate: steps (>= 1) or a ratio (< 1). Unset: warmup_steps."},
    )
    cache_frozen_encoders: bool = field(
        default=True,
        metadata={"help": "Encode each example once with a frozen pretrained encoder and train on the cached states."},
    )
    remove_unused_columns: bool = field(
        default=False,
        metadata={"help": "Kept False: the collator needs label and mask columns the model signature does not name."},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        self.corpus_sampling = _enum(CorpusSampling, self.corpus_sampling, "corpus_sampling")
        self.batch_composition = _enum(BatchComposition, self.batch_composition, "batch_composition")
        if not isinstance(self.sampling_temperature, (int, float)) or not self.sampling_temperature > 0:
            raise ValueError(f"sampling_temperature must be > 0, got {self.sampling_temperature!r}.")
        self.sampling_temperature = float(self.sampling_temperature)
        if self.encoder_learning_rate is not None and not (
            isinstance(self.encoder_learning_rate, (int, float)) and self.encoder_learning_rate >= 0
        ):
            raise ValueError(f"encoder_learning_rate must be a number >= 0, got {self.encoder_learning_rate!r}.")
        if self.encoder_warmup_steps is not None and not (
            isinstance(self.encoder_warmup_steps, (int, float)) and self.encoder_warmup_steps >= 0
        ):
            raise ValueError(
                f"encoder_warmup_steps must be steps (>= 1) or a ratio in [0, 1), got {self.encoder_warmup_steps!r}."
            )

    def get_encoder_warmup_steps(self, num_training_steps: int) -> int:
        """Warm-up steps of the encoder learning rate (``encoder_warmup_steps``, else ``warmup_steps``)."""
        if self.encoder_warmup_steps is None:
            return self.get_warmup_steps(num_training_steps)
        value = self.encoder_warmup_steps
        return int(value) if value >= 1 else math.ceil(num_training_steps * value)


def _enum(cls: type[Enum], value: Any, name: str) -> Any:
    try:
        return cls(value.value if isinstance(value, Enum) else value)
    except ValueError:
        raise ValueError(f"{name} must be one of {[m.value for m in cls]}, got {value!r}.") from None
