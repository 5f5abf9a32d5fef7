"""Pretrained encoders inside the mtaffect model: raw text / waveforms -> one vector per example.

A modality listed in ``config.pretrained_encoders`` is read by a transformers encoder
(BERT-like for text, wav2vec2 / HuBERT / WavLM-like for audio) instead of a feature
projection plus mtaffect's own frame encoder:

1. **Encoder** — ``AutoModel.from_config`` of the encoder config stored in the mtaffect
   config, so ``from_pretrained`` rebuilds it without a download; its weights live in the
   mtaffect checkpoint's safetensors like every other parameter.
2. **Layers** — the last hidden state, one layer by index, or a learned softmax-weighted
   sum of all hidden states (a "scalar mix").
3. **Pooling** — ``cls`` (first position) or ``mean`` (attention-masked mean; for audio the
   mask is mapped onto the encoder's frames).
4. **Projection** — ``Linear`` + ``LayerNorm`` + dropout into the shared ``hidden_size``.

Pooling is linear, so pooling every layer first and mixing afterwards equals mixing first:
``encode`` returns the pooled states of the layers used (``[batch, layers, encoder_hidden]``),
which is also what frozen mode caches per example, and ``forward`` mixes and projects them.

Fine-tuning modes: ``frozen`` (no gradient, dropout off, outputs cacheable), ``lora``
(peft LoRA adapters injected into the encoder; only they and the layers after the encoder
train), ``full``, and ``top-K``: the embeddings and the layers below the top K are frozen
(no gradient, dropout off), so their output, the hidden states at the boundary
(``encode_lower``, ``[batch, tokens, encoder_hidden]``), is a fixed function of the input
that training caches once per example (``mtaffect.training.encoder_cache``); only the top K
layers (``encode_upper``), the layer mix, the projection and what follows train. ``top-K``
needs a BERT-like encoder (``embeddings`` + ``encoder.layer``) and ``layers="last"``.

Like the modeling file, this module is copied next to checkpoints for ``trust_remote_code``
loading (the modeling file imports it relatively): it imports only torch, transformers and
the standard library at module level; peft is imported when a LoRA encoder is built.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

logger = logging.getLogger(__name__)

#: The input the encoder of each modality reads (the batch key is ``<modality>_<name>``).
ENCODER_INPUT_NAMES: dict[str, str] = {"text": "input_ids", "audio": "input_values"}


def encoder_input_key(modality: str) -> str:
    """Batch key of the raw input a modality's encoder reads (``text_input_ids``, ``audio_input_values``)."""
    return f"{modality}_{ENCODER_INPUT_NAMES[modality]}"


def encoder_mask_key(modality: str) -> str:
    """Batch key of the attention mask of a modality's encoder input."""
    return f"{modality}_attention_mask"


def encoder_states_key(modality: str) -> str:
    """Batch / column key of cached pooled encoder states (frozen mode): ``[layers, encoder_hidden]`` per example."""
    return f"{modality}_encoder_states"


def encoder_hidden_key(modality: str) -> str:
    """Batch / column key of cached boundary hidden states (``top-K`` mode): ``[tokens, encoder_hidden]`` per example."""
    return f"{modality}_encoder_hidden"


class _PassThroughEmbeddings(nn.Module):
    """Stands in for an encoder's embeddings while its top layers run on cached boundary states."""

    def forward(self, *args: Any, inputs_embeds: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor:
        return inputs_embeds


def build_encoder_config(spec: Mapping[str, Any]) -> Any:
    """The transformers config of an encoder spec, from its stored dict (never a download)."""
    # Imported here: importing transformers' Auto modules runs mtaffect's Auto registration,
    # which imports the modeling file, which imports this one.
    from transformers import AutoConfig

    stored = dict(spec["config"])
    model_type = stored.pop("model_type")
    # Keys transformers writes that are not constructor arguments of every config class.
    for key in ("transformers_version", "architectures", "_name_or_path"):
        stored.pop(key, None)
    return AutoConfig.for_model(model_type, **stored)


def _default_lora_targets(model_type: str) -> list[str]:
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING

    mapping = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
    if model_type in mapping:
        return list(mapping[model_type])
    if model_type in ("wav2vec2", "hubert", "wavlm", "data2vec-audio", "whisper"):
        return ["q_proj", "v_proj"]
    raise ValueError(
        f"peft has no default LoRA target modules for encoder type {model_type!r}: set "
        "pretrained_encoders[<modality>]['lora']['target_modules'] (e.g. ['query', 'value'])."
    )


class MTAffectPretrainedEncoder(nn.Module):
    """One modality's pretrained encoder, its layer mix, pooling and projection (see the module doc).

    Args:
        modality: ``"text"`` or ``"audio"``.
        spec: the modality's entry of ``config.pretrained_encoders``.
        hidden_size: the shared width the projection maps into.
        dropout: dropout after the projection.
    """

    def __init__(self, modality: str, spec: Mapping[str, Any], hidden_size: int, dropout: float) -> None:
        super().__init__()
        self.modality = modality
        self.pooling = spec["pooling"]
        self.layers = spec["layers"]
        self.finetune = spec["finetune"]
        from transformers import AutoModel

        from .configuration_mtaffect import finetune_top_layers

        encoder_config = build_encoder_config(spec)
        self.model = AutoModel.from_config(encoder_config)
        num_states = int(encoder_config.num_hidden_layers) + 1  # embeddings + every layer
        self.layer_weights: nn.Parameter | None = None
        if self.layers == "weighted":
            self.layer_weights = nn.Parameter(torch.zeros(num_states))
        elif isinstance(self.layers, int) and not -num_states <= self.layers < num_states:
            raise ValueError(
                f"pretrained_encoders[{modality!r}]['layers']={self.layers} is out of range: the encoder has "
                f"{num_states} hidden states (embeddings + {num_states - 1} layers)."
            )
        width = int(encoder_config.hidden_size)
        self.dense = nn.Linear(width, hidden_size)
        self.norm = nn.LayerNorm(hidden_size)
        self.dropout = nn.Dropout(dropout)
        #: Top-K mode: index of the first trained layer (the layers below it and the embeddings are frozen).
        self.boundary: int | None = None
        if self.finetune == "lora":
            self._inject_lora(spec.get("lora") or {}, encoder_config.model_type)
        elif self.finetune == "frozen":
            self.model.requires_grad_(False)
        elif (top := finetune_top_layers(self.finetune)) is not None:
            self._freeze_below_top(top)

    def _freeze_below_top(self, top: int) -> None:
        layers = getattr(getattr(self.model, "encoder", None), "layer", None)
        if not hasattr(self.model, "embeddings") or not isinstance(layers, nn.ModuleList):
            raise ValueError(
                f"pretrained_encoders[{self.modality!r}]['finetune']={self.finetune!r} needs a BERT-like encoder "
                f"(embeddings + encoder.layer); {type(self.model).__name__} is not one: use 'full', 'lora' or 'frozen'."
            )
        if self.layers != "last":
            raise ValueError(
                f"pretrained_encoders[{self.modality!r}]['finetune']={self.finetune!r} reads the last layer: set "
                f"layers='last' (got {self.layers!r})."
            )
        self.boundary = len(layers) - top
        self.model.requires_grad_(False)
        for layer in layers[self.boundary:]:
            layer.requires_grad_(True)

    def _lower_modules(self) -> list[nn.Module]:
        """The frozen part of a top-K encoder: embeddings and the layers below the boundary."""
        return [self.model.embeddings, *self.model.encoder.layer[: self.boundary]]

    # ---- fine-tuning modes ------------------------------------------------------------

    def _inject_lora(self, options: Mapping[str, Any], model_type: str) -> None:
        try:
            from peft import LoraConfig, inject_adapter_in_model
        except ImportError as error:
            raise ImportError(
                "A LoRA encoder (finetune='lora') needs peft: pip install 'mtaffect[peft]' (or pip install peft)."
            ) from error
        targets = options.get("target_modules") or _default_lora_targets(model_type)
        lora = LoraConfig(
            r=int(options.get("r", 8)),
            lora_alpha=int(options.get("lora_alpha", 16)),
            lora_dropout=float(options.get("lora_dropout", 0.0)),
            target_modules=list(targets),
            bias="none",
        )
        inject_adapter_in_model(lora, self.model)
        for name, parameter in self.model.named_parameters():
            parameter.requires_grad_("lora_" in name)

    def train(self, mode: bool = True) -> MTAffectPretrainedEncoder:
        super().train(mode)
        if self.finetune == "frozen":
            # A frozen encoder is a fixed function: no dropout, so its outputs can be cached.
            self.model.eval()
        elif self.boundary is not None:
            for module in self._lower_modules():  # likewise the frozen part of a top-K encoder
                module.eval()
        return self

    def merge_lora(self) -> None:
        """Fold the LoRA adapters into the encoder's weights and remove them (a plain encoder again)."""
        if self.finetune != "lora":
            return
        from peft.tuners.tuners_utils import BaseTunerLayer

        for parent in list(self.model.modules()):
            for child_name, child in list(parent.named_children()):
                if isinstance(child, BaseTunerLayer):
                    child.merge()
                    setattr(parent, child_name, child.get_base_layer())
        self.finetune = "frozen"
        self.model.requires_grad_(False)
        self.model.eval()

    def load_base_state_dict(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """Load a plain encoder's weights (e.g. ``AutoModel.from_pretrained``'s) into ``self.model``.

        LoRA renames each adapted ``Linear``'s weights to ``<name>.base_layer.*``; those are
        mapped back, and the adapter weights (not in a plain checkpoint) keep their init.
        """
        target = self.model.state_dict()
        mapped = {}
        for key in target:
            source = key.replace(".base_layer.", ".")
            if source in state_dict:
                mapped[key] = state_dict[source]
        missing = [k for k in target if k not in mapped and "lora_" not in k]
        if missing:
            raise ValueError(
                f"The pretrained {self.modality} encoder lacks {len(missing)} weights the configured encoder has "
                f"(e.g. {missing[:3]}): the stored encoder config does not match these weights."
            )
        self.model.load_state_dict(mapped, strict=False)

    # ---- forward ----------------------------------------------------------------------

    def encode(
        self, inputs: torch.Tensor, attention_mask: torch.Tensor | None = None, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Pooled hidden states of the layers used: ``[batch, layers, encoder_hidden]`` (1 layer unless weighted).

        ``token_type_ids`` (text pairs: context turns, then the utterance) go to the encoder when given.
        """
        if self.boundary is not None:
            return self.encode_upper(self.encode_lower(inputs, attention_mask, token_type_ids), attention_mask)
        name = ENCODER_INPUT_NAMES[self.modality]
        want_all = self.layers != "last"
        extra = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        output = self.model(
            **{name: inputs},
            **extra,
            attention_mask=attention_mask,
            output_hidden_states=want_all,
            return_dict=True,
        )
        if self.layers == "last":
            states = [output.last_hidden_state]
        elif self.layers == "weighted":
            states = list(output.hidden_states)
        else:
            states = [output.hidden_states[self.layers]]
        frame_mask = self._frame_mask(attention_mask, states[0])
        return torch.stack([self._pool(state, frame_mask) for state in states], dim=1)

    @contextmanager
    def _running_layers(self, start: int, stop: int, cached: bool) -> Iterator[None]:
        """Let ``self.model`` run only ``encoder.layer[start:stop]`` (and, with ``cached``, no embeddings).

        The encoder's own forward then builds the attention masks as it always does, so the
        split computes exactly what one full pass computes.
        """
        encoder, embeddings = self.model.encoder, self.model.embeddings
        layers = encoder.layer
        encoder.layer = layers[start:stop]
        if cached:
            self.model.embeddings = _PassThroughEmbeddings()
        try:
            yield
        finally:
            encoder.layer = layers
            self.model.embeddings = embeddings

    def encode_lower(
        self, inputs: torch.Tensor, attention_mask: torch.Tensor | None = None, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Top-K mode: hidden states at the boundary, ``[batch, tokens, encoder_hidden]`` (no gradient).

        A fixed function of the input (frozen weights, dropout off), which training caches;
        ``token_type_ids`` as in :meth:`encode` (the embeddings add them, so they end here).
        """
        extra = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        with torch.no_grad(), self._running_layers(0, self.boundary, cached=False):
            output = self.model(input_ids=inputs, attention_mask=attention_mask, return_dict=True, **extra)
        return output.last_hidden_state

    def encode_upper(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Top-K mode: the trained top layers over boundary states, pooled: ``[batch, 1, encoder_hidden]``."""
        with self._running_layers(self.boundary, len(self.model.encoder.layer), cached=True):
            output = self.model(inputs_embeds=hidden, attention_mask=attention_mask, return_dict=True)
        state = output.last_hidden_state
        return self._pool(state, self._frame_mask(attention_mask, state)).unsqueeze(1)

    def _frame_mask(self, attention_mask: torch.Tensor | None, state: torch.Tensor) -> torch.Tensor:
        batch, frames = state.shape[:2]
        if attention_mask is None:
            return torch.ones(batch, frames, dtype=torch.bool, device=state.device)
        if attention_mask.shape[1] != frames and hasattr(self.model, "_get_feature_vector_attention_mask"):
            # Audio encoders downsample samples to frames; transformers maps the mask for us.
            attention_mask = self.model._get_feature_vector_attention_mask(frames, attention_mask)
        return attention_mask.bool()

    def _pool(self, state: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.pooling == "cls":
            return state[:, 0]
        weights = mask.unsqueeze(-1).to(state.dtype)
        return (state * weights).sum(1) / weights.sum(1).clamp(min=1.0)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        """Mix the pooled layer states (``encode``'s output, maybe cached) and project: ``[batch, hidden_size]``."""
        if self.layer_weights is not None:
            weights = self.layer_weights.softmax(dim=0).to(states.dtype)
            pooled = (states * weights[None, :, None]).sum(1)
        else:
            pooled = states[:, 0]
        return self.dropout(self.norm(self.dense(pooled)))
