"""Training arguments: the stock ``TrainingArguments`` plus how corpora are sampled.

Every field of ``transformers.TrainingArguments`` works as usual (checkpoints,
``report_to``, mixed precision, gradient accumulation, ``push_to_hub``...). The added
fields choose how corpora are sampled into batches. How the model weighs its losses (λ, the
weak-label mode, per-task weights) is not here: the model config owns every loss setting
(``MTAffectConfig``), so a checkpoint's ``config.json`` records what it was trained with.
"""

from __future__ import annotations

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


def _enum(cls: type[Enum], value: Any, name: str) -> Any:
    try:
        return cls(value.value if isinstance(value, Enum) else value)
    except ValueError:
        raise ValueError(f"{name} must be one of {[m.value for m in cls]}, got {value!r}.") from None
