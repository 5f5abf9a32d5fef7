"""Frozen pretrained encoders run once per example per run, not once per epoch.

A frozen encoder (``finetune="frozen"``) is a fixed function (no gradient, dropout off), so
its pooled layer states (``MTAffectPretrainedEncoder.encode``, ``[layers, encoder_hidden]``
per example) are computed in one pass over each dataset with ``datasets.map`` and stored
in a column ``<modality>_encoder_states``; ``EncoderInputCollator`` then passes them to the
model, which skips the encoder. What trains (the layer mix, the projection, everything
after) is unchanged, so training on the cache equals training on the raw inputs.

``MultiTaskTrainer`` caches its train and eval datasets this way when the model has frozen
encoders (``MultiTaskTrainingArguments.cache_frozen_encoders``, on by default). The cache is
kept in memory (``keep_in_memory=True``): it belongs to this run and these weights.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from mtaffect.data.raw_inputs import EncoderInputCollator, states_column

logger = logging.getLogger(__name__)

__all__ = ["cache_frozen_encoder_states", "frozen_encoder_modalities"]


def frozen_encoder_modalities(model: Any) -> list[str]:
    """Modalities of ``model`` read by a frozen pretrained encoder (empty for other models)."""
    specs = getattr(getattr(model, "config", None), "pretrained_encoders", None) or {}
    return [m for m, spec in specs.items() if spec.get("finetune") == "frozen"]


@torch.no_grad()
def cache_frozen_encoder_states(model: Any, dataset: Any, batch_size: int = 32) -> Any:
    """``dataset`` plus a ``<modality>_encoder_states`` column per frozen encoder of ``model``.

    Args:
        model: an ``MTAffectForMultiTaskAffect`` with pretrained encoders and their processors.
        dataset: a ``datasets.Dataset`` with the raw columns the encoders read (``text``, ``audio``).
        batch_size: examples per encoder pass.

    Returns the dataset unchanged when the model has no frozen encoder or it is already cached.
    """
    modalities = [m for m in frozen_encoder_modalities(model) if states_column(m) not in dataset.column_names]
    if not modalities:
        return dataset
    collator = EncoderInputCollator(
        processors={m: model.processors[m] for m in modalities},
        base=lambda rows: {},
        max_length={m: model.config.pretrained_encoders[m]["max_length"] for m in modalities},
        context=getattr(model.config, "context", None),
    )
    encoders = {m: model.get_pretrained_encoder(m) for m in modalities}
    # The context turns a text encoder reads before the utterance (config.context) are part of its input.
    columns = sorted({"id", "text", "audio", "context_text", "context_speaker", "context_position"} & set(dataset.column_names))

    def encode(batch: dict[str, list[Any]]) -> dict[str, list[np.ndarray]]:
        size = len(next(iter(batch.values())))
        rows = [{column: batch[column][i] for column in columns} for i in range(size)]
        inputs = collator(rows)
        result = {}
        for modality, encoder in encoders.items():
            values = inputs[f"{modality}_input_ids" if modality == "text" else f"{modality}_input_values"]
            mask = inputs[f"{modality}_attention_mask"]
            usable = mask.clone()
            usable[~mask.bool().any(dim=1), 0] = 1  # empty rows: the model marks them missing from the mask anyway
            token_types = inputs.get("text_token_type_ids") if modality == "text" else None
            extra = (token_types.to(model.device),) if token_types is not None else ()
            states = encoder.encode(values.to(model.device), usable.to(model.device), *extra)
            result[states_column(modality)] = list(states.float().cpu().numpy())
        return result

    was_training = model.training
    model.eval()
    try:
        plain = dataset.with_format(None)
        cached = plain.map(
            encode,
            batched=True,
            batch_size=batch_size,
            input_columns=None,
            keep_in_memory=True,
            load_from_cache_file=False,
            desc=f"Encoding {', '.join(modalities)} once (frozen encoder)",
        )
    finally:
        model.train(was_training)
    logger.info(f"Cached frozen {modalities} encoder states for {len(dataset)} examples.")
    return cached.with_format(**_format_of(dataset))


def _format_of(dataset: Any) -> dict[str, Any]:
    fmt = getattr(dataset, "format", None) or {}
    return {"type": fmt.get("type"), "columns": None, "output_all_columns": fmt.get("output_all_columns", False)}
