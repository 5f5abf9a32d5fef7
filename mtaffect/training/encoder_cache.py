"""Frozen parts of pretrained encoders run once per example per run, not once per epoch.

A frozen encoder (``finetune="frozen"``) is a fixed function (no gradient, dropout off), so
its pooled layer states (``MTAffectPretrainedEncoder.encode``, ``[layers, encoder_hidden]``
per example) are computed in one pass over each dataset with ``datasets.map`` and stored
in a column ``<modality>_encoder_states``; ``EncoderInputCollator`` then passes them to the
model, which skips the encoder.

A ``top-K`` encoder's frozen part (embeddings and the layers below the top K) is likewise a
fixed function: its output, the hidden states at the boundary (``encode_lower``,
``[tokens, encoder_hidden]`` per example, each row cut to its own tokens), is stored in a
column ``<modality>_encoder_hidden``; the collator pads it back into a batch with its
attention mask, and only the top K layers run during training.

What trains is unchanged either way, so training on the cache equals training on the raw
inputs. ``MultiTaskTrainer`` caches its train and eval datasets this way when the model has
such encoders (``MultiTaskTrainingArguments.cache_frozen_encoders``, on by default). The
cache is kept in memory (``keep_in_memory=True``): it belongs to this run and these weights.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from datasets import Array2D, List, Value

from mtaffect.data.raw_inputs import EncoderInputCollator, hidden_column, states_column

logger = logging.getLogger(__name__)

__all__ = ["cache_frozen_encoder_states", "frozen_encoder_modalities", "top_k_encoder_modalities"]


def frozen_encoder_modalities(model: Any) -> list[str]:
    """Modalities of ``model`` read by a frozen pretrained encoder (empty for other models)."""
    specs = getattr(getattr(model, "config", None), "pretrained_encoders", None) or {}
    return [m for m, spec in specs.items() if spec.get("finetune") == "frozen"]


def top_k_encoder_modalities(model: Any) -> list[str]:
    """Modalities of ``model`` read by a ``top-K`` encoder (its lower part is cached)."""
    specs = getattr(getattr(model, "config", None), "pretrained_encoders", None) or {}
    return [m for m, spec in specs.items() if str(spec.get("finetune", "")).startswith("top-")]


@torch.no_grad()
def cache_frozen_encoder_states(model: Any, dataset: Any, batch_size: int = 32) -> Any:
    """``dataset`` plus a cached column per frozen (or ``top-K``) encoder of ``model``.

    Args:
        model: an ``MTAffectForMultiTaskAffect`` with pretrained encoders and their processors.
        dataset: a ``datasets.Dataset`` with the raw columns the encoders read (``text``, ``audio``).
        batch_size: examples per encoder pass.

    Returns the dataset unchanged when the model has no such encoder or it is already cached:
    ``<modality>_encoder_states`` for a frozen encoder, ``<modality>_encoder_hidden`` for a
    ``top-K`` one.
    """
    frozen = [m for m in frozen_encoder_modalities(model) if states_column(m) not in dataset.column_names]
    lower = [m for m in top_k_encoder_modalities(model) if hidden_column(m) not in dataset.column_names]
    modalities = frozen + lower
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
    plain = dataset.with_format(None)
    features = plain.features.copy()
    for modality in lower:
        width = int(encoders[modality].model.config.hidden_size)
        features[hidden_column(modality)] = Array2D(shape=(None, width), dtype="float32")
    for modality in frozen:
        features[states_column(modality)] = List(List(Value("float32")))

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
            if modality in lower:
                hidden = encoder.encode_lower(values.to(model.device), usable.to(model.device), *extra).float().cpu().numpy()
                # Each row keeps its own tokens; a row without input keeps none (a missing modality).
                lengths = mask.sum(dim=1).tolist()
                result[hidden_column(modality)] = [hidden[i, : int(n)] for i, n in enumerate(lengths)]
            else:
                states = encoder.encode(values.to(model.device), usable.to(model.device), *extra)
                result[states_column(modality)] = list(states.float().cpu().numpy())
        return result

    was_training = model.training
    model.eval()
    try:
        cached = plain.map(
            encode,
            batched=True,
            batch_size=batch_size,
            input_columns=None,
            features=features if lower else None,
            keep_in_memory=True,
            load_from_cache_file=False,
            desc=f"Encoding {', '.join(modalities)} once (frozen encoder part)",
        )
    finally:
        model.train(was_training)
    logger.info(f"Cached the frozen part of the {modalities} encoder(s) for {len(dataset)} examples.")
    return cached.with_format(**_format_of(dataset))


def _format_of(dataset: Any) -> dict[str, Any]:
    fmt = getattr(dataset, "format", None) or {}
    return {"type": fmt.get("type"), "columns": None, "output_all_columns": fmt.get("output_all_columns", False)}
