"""Training arguments: the stock ``TrainingArguments`` plus what multi-task training needs.

Every field of ``transformers.TrainingArguments`` works as usual (checkpoints,
``report_to``, mixed precision, gradient accumulation, ``push_to_hub``...). The added
fields choose how corpora are sampled and how the model weighs its losses.

**Loss settings and the model config.** ``weak_loss_weight``, ``weak_label_mode``,
``weak_use_confidence`` and ``task_loss_weights`` default to ``None``, meaning "keep what
the model's config says". A value set here overrides the matching
``model.config`` attribute when the ``MultiTaskTrainer`` is built
(and again for every model made by ``model_init``), so the saved checkpoint's config
records what was actually trained with.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from transformers import TrainingArguments

from mtaffect.tasks import TASK_NAMES
from mtaffect.training.sampler import BatchComposition, CorpusSampling

__all__ = [
    "BatchComposition",
    "CorpusSampling",
    "MultiTaskTrainingArguments",
    "WeakLabelMode",
    "parse_task_loss_weights",
]


class WeakLabelMode(str, Enum):
    """Train on a teacher's probabilities (``soft``) or on its arg-max (``hard``)."""

    SOFT = "soft"
    HARD = "hard"


#: Model-config attributes that the arguments of the same name override when set.
MODEL_CONFIG_FIELDS: tuple[str, ...] = (
    "weak_loss_weight",
    "weak_label_mode",
    "weak_use_confidence",
    "task_loss_weights",
)


def parse_task_loss_weights(value: Any) -> dict[str, float] | None:
    """Read per-task loss weights from a dict, JSON, ``"task=w,task=w"`` or a list of ``"task=w"``.

    Examples:
        >>> parse_task_loss_weights("emotion=1, sarcasm=0.5")
        {'emotion': 1.0, 'sarcasm': 0.5}
        >>> parse_task_loss_weights('{"sentiment": 2}')
        {'sentiment': 2.0}
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text.startswith("{"):
            value = json.loads(text)
        else:
            value = [part for part in text.split(",") if part.strip()]
    if isinstance(value, (list, tuple)):
        pairs = {}
        for item in value:
            name, sep, weight = str(item).partition("=")
            if not sep:
                raise ValueError(f"task_loss_weights entry {item!r} must look like 'task=weight', e.g. 'sarcasm=0.5'.")
            pairs[name.strip()] = weight.strip()
        value = pairs
    if not isinstance(value, Mapping):
        raise ValueError(f"task_loss_weights must be a dict or 'task=w' strings, got {type(value).__name__}.")
    weights = {}
    for name, weight in value.items():
        if name not in TASK_NAMES:
            raise ValueError(f"task_loss_weights names unknown task {name!r}; tasks are {', '.join(TASK_NAMES)}.")
        try:
            weights[name] = float(weight)
        except (TypeError, ValueError):
            raise ValueError(f"task_loss_weights[{name!r}] must be a number, got {weight!r}.") from None
        if weights[name] < 0:
            raise ValueError(f"task_loss_weights[{name!r}] must be >= 0, got {weights[name]}.")
    return weights


@dataclass
class MultiTaskTrainingArguments(TrainingArguments):
    """``TrainingArguments`` for ``MultiTaskTrainer``.

    Args:
        corpus_sampling (`CorpusSampling` or `str`, *optional*, defaults to ``"proportional"``):
            Which corpus supplies each batch: ``proportional``, ``temperature``
            (``p ∝ n^(1/T)``), ``round_robin`` or ``uniform``. See ``mtaffect.training.sampler``.
        sampling_temperature (`float`, *optional*, defaults to 2.0):
            ``T`` for ``temperature`` sampling (1 = proportional, large = uniform).
        batch_composition (`BatchComposition` or `str`, *optional*, defaults to ``"homogeneous"``):
            ``homogeneous`` (one corpus per batch) or ``mixed`` (corpora sharing a feature
            set share batches; feature sets are never mixed).
        weak_loss_weight (`float`, *optional*):
            λ multiplying every weak-label loss. Overrides ``model.config.weak_loss_weight``.
        weak_label_mode (`WeakLabelMode` or `str`, *optional*):
            ``soft`` or ``hard`` weak labels. Overrides the model config.
        weak_use_confidence (`bool`, *optional*):
            Weigh each weak label by its teacher confidence. Overrides the model config.
        task_loss_weights (`dict[str, float]` or `str`, *optional*):
            Per-task weights of the gold+weak loss, e.g. ``{"sarcasm": 0.5}`` or
            ``"sarcasm=0.5,emotion=1"``. Replaces the model config's weights as a whole:
            enabled tasks not named get 1.0.

    ``remove_unused_columns`` defaults to False here: the collator needs the label and
    mask columns, which are not all named in the model's ``forward`` signature.

    Examples:
        >>> args = MultiTaskTrainingArguments("out", corpus_sampling="temperature", task_loss_weights="sarcasm=0.5")
        >>> args.corpus_sampling, args.task_loss_weights
        (<CorpusSampling.TEMPERATURE: 'temperature'>, {'sarcasm': 0.5})
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
    weak_loss_weight: float | None = field(
        default=None,
        metadata={"help": "λ, the weight of weak-label losses. Unset: keep model.config.weak_loss_weight."},
    )
    weak_label_mode: WeakLabelMode | None = field(
        default=None,
        metadata={"help": "soft (teacher probabilities) or hard (arg-max) weak labels. Unset: keep the model config."},
    )
    weak_use_confidence: bool | None = field(
        default=None,
        metadata={"help": "Weigh weak labels by teacher confidence. Unset: keep the model config."},
    )
    task_loss_weights: dict[str, float] | str | None = field(
        default=None,
        metadata={
            "help": "Per-task loss weights as JSON or 'task=w,task=w' (e.g. 'sarcasm=0.5'). Unset: keep the model config."
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
        if self.weak_label_mode is not None:
            self.weak_label_mode = _enum(WeakLabelMode, self.weak_label_mode, "weak_label_mode")
        if not isinstance(self.sampling_temperature, (int, float)) or not self.sampling_temperature > 0:
            raise ValueError(f"sampling_temperature must be > 0, got {self.sampling_temperature!r}.")
        self.sampling_temperature = float(self.sampling_temperature)
        if self.weak_loss_weight is not None:
            if not isinstance(self.weak_loss_weight, (int, float)) or self.weak_loss_weight < 0:
                raise ValueError(f"weak_loss_weight must be a number >= 0, got {self.weak_loss_weight!r}.")
            self.weak_loss_weight = float(self.weak_loss_weight)
        self.task_loss_weights = parse_task_loss_weights(self.task_loss_weights)

    def model_config_overrides(self) -> dict[str, Any]:
        """The model-config attributes these arguments set explicitly (enums as their values)."""
        overrides = {}
        for name in MODEL_CONFIG_FIELDS:
            value = getattr(self, name)
            if value is not None:
                overrides[name] = value.value if isinstance(value, Enum) else value
        return overrides


def _enum(cls: type[Enum], value: Any, name: str) -> Any:
    try:
        return cls(value.value if isinstance(value, Enum) else value)
    except ValueError:
        raise ValueError(f"{name} must be one of {[m.value for m in cls]}, got {value!r}.") from None
