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

__all__ = ["BatchComposition", "CorpusSampling", "MultiTaskTrainingArgumentError", "MultiTaskTrainingArguments"]


class MultiTaskTrainingArgumentError(ValueError):
    """A training argument out of its range; ``field`` names it, so a front door can name the
    flag or the config key the value came from."""

    def __init__(self, field: str, value: Any, requirement: str) -> None:
        self.field, self.value, self.requirement = field, value, requirement
        super().__init__(f"{field} = {value!r}: {requirement}")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


#: Range checks of the stock fields that ``TrainingArguments`` leaves to the optimizer or the
#: data loader (which fail late, after the data loaded, naming no field): name -> (accepts, requirement).
RANGE_CHECKS: dict[str, tuple[Any, str]] = {
    "learning_rate": (lambda v: _number(v) and v >= 0, "must be a number >= 0 (e.g. 2e-3)"),
    "weight_decay": (lambda v: _number(v) and v >= 0, "must be a number >= 0"),
    "num_train_epochs": (lambda v: _number(v) and v > 0, "must be a number > 0 (or set max_steps)"),
    "max_steps": (lambda v: isinstance(v, int) and (v == -1 or v > 0), "must be a whole number > 0 (-1: use num_train_epochs)"),
    "per_device_train_batch_size": (lambda v: isinstance(v, int) and v >= 1, "must be a whole number >= 1"),
    "per_device_eval_batch_size": (lambda v: isinstance(v, int) and v >= 1, "must be a whole number >= 1"),
    "gradient_accumulation_steps": (lambda v: isinstance(v, int) and v >= 1, "must be a whole number >= 1"),
    "max_grad_norm": (lambda v: v is None or (_number(v) and v >= 0), "must be a number >= 0 (0 turns clipping off)"),
    "adam_beta1": (lambda v: _number(v) and 0 <= v < 1, "must lie in [0, 1)"),
    "adam_beta2": (lambda v: _number(v) and 0 <= v < 1, "must lie in [0, 1)"),
    "adam_epsilon": (lambda v: _number(v) and v >= 0, "must be a number >= 0"),
    "warmup_steps": (lambda v: _number(v) and v >= 0, "must be >= 0 (steps, or a ratio below 1)"),
    "label_smoothing_factor": (lambda v: _number(v) and 0 <= v < 1, "must lie in [0, 1)"),
    "seed": (lambda v: isinstance(v, int) and 0 <= v < 2**32, "must be a whole number in [0, 2**32)"),
    "dataloader_num_workers": (lambda v: isinstance(v, int) and v >= 0, "must be a whole number >= 0"),
    "save_total_limit": (lambda v: v is None or (isinstance(v, int) and v >= 1), "must be a whole number >= 1 (or unset)"),
    "min_steps": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "must be a whole number >= 0"),
}


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
        min_steps: `int`, defaults to `0`.
            At least this many optimisation steps: where ``num_train_epochs`` gives fewer (a small
            corpus trained alone), training runs more epochs, up to this budget. It makes the
            settings of a study comparable: a single-task model on a corpus of 400 rows gets as
            many steps as the multi-task model on the union, and each task's best step is still
            chosen on validation. Per-epoch evaluations, checkpoints and logs then come every
            ``min_steps / num_train_epochs`` steps (as many as the epochs asked for). ``0``: the
            epochs decide; ``max_steps`` > 0 wins over both.
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
    min_steps: int = field(
        default=0,
        metadata={"help": "At least this many optimisation steps: more epochs where num_train_epochs gives fewer "
                  "(0: the epochs decide; max_steps > 0 wins)."},
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
        # Ranges first: the stock checks below may compute with a value (steps from a ratio).
        for name, (accepts, requirement) in RANGE_CHECKS.items():
            if name == "num_train_epochs" and isinstance(self.max_steps, int) and self.max_steps > 0:
                continue  # max_steps decides
            if hasattr(self, name) and not accepts(getattr(self, name)):
                raise MultiTaskTrainingArgumentError(name, getattr(self, name), requirement)
        super().__post_init__()
        self.corpus_sampling = _enum(CorpusSampling, self.corpus_sampling, "corpus_sampling")
        self.batch_composition = _enum(BatchComposition, self.batch_composition, "batch_composition")
        if not _number(self.sampling_temperature) or not self.sampling_temperature > 0:
            raise MultiTaskTrainingArgumentError("sampling_temperature", self.sampling_temperature, "must be a number > 0")
        self.sampling_temperature = float(self.sampling_temperature)
        if self.encoder_learning_rate is not None and not (
            _number(self.encoder_learning_rate) and self.encoder_learning_rate >= 0
        ):
            raise MultiTaskTrainingArgumentError("encoder_learning_rate", self.encoder_learning_rate, "must be a number >= 0")
        if self.encoder_warmup_steps is not None and not (
            _number(self.encoder_warmup_steps) and self.encoder_warmup_steps >= 0
        ):
            raise MultiTaskTrainingArgumentError(
                "encoder_warmup_steps", self.encoder_warmup_steps, "must be steps (>= 1) or a ratio in [0, 1)"
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
