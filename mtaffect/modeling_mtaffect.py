"""The mtaffect model: one shared multimodal encoder, one head per affect task.

Read top to bottom, this file is the architecture:

1. **Input projections** — one ``Linear`` per (feature set, modality) maps a corpus'
   features (e.g. GloVe 300-d text, COVAREP 74-d audio) into the shared ``hidden_size``
   space. This is the only part that knows which extractor produced the features.
2. **Modality encoders** — one per modality, shared by every feature set: a Transformer
   pooled by a learned [CLS] token, a BiLSTM, or a masked mean + MLP.
3. **Missing modalities** — a modality absent from the batch, or a row whose sequence is
   empty, is replaced by a learned "missing" embedding, so nothing divides by zero.
4. **Fusion** — ``concat``: concatenate the modality vectors and mix them with an MLP;
   ``late``: keep modalities apart and let every task head mix per-modality logits. With
   ``config.context`` the pooled features of the dialogue's context turns (offset and
   same-speaker embeddings added) go through the same projection and modality encoder, and
   fusion reads their vector as one more input (``config.fusion_inputs``).
5. **Task heads** — emotion (logits over the union label space), sentiment (a score
   squashed into the sentiment range), sarcasm (one logit).
6. **Masked losses** — gold and weak labels, each averaged over the labels that are known
   only, combined as ``sum_t w_t * (gold_t + λ * weak_t)``.

Like the configuration, this module is copied next to checkpoints for
``trust_remote_code`` loading: it imports only torch, transformers, the standard library
and the configuration module.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_mtaffect import MODALITIES, MTAffectConfig, _check_feature_sets, resolve_encoder_path
from .encoders_mtaffect import (
    ENCODER_INPUT_NAMES,
    MTAffectPretrainedEncoder,
    encoder_hidden_key,
    encoder_input_key,
    encoder_mask_key,
    encoder_states_key,
)

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------


@dataclass
class MTAffectModelOutput(ModelOutput):
    """Output of the shared encoder [`MTAffectModel`][mtaffect.modeling_mtaffect.MTAffectModel].

    Args:
        pooled_output: `torch.FloatTensor` of shape `(batch_size, hidden_size)`.
            The fused representation of each example.
        modality_states: `torch.FloatTensor` of shape `(batch_size, num_modalities, hidden_size)`.
            Pooled vector per modality (in `config.modalities` order); a missing modality holds
            the learned missing-modality embedding.
        modality_present: `torch.BoolTensor` of shape `(batch_size, num_modalities)`.
            Whether each example has a non-empty sequence for each modality.
    """

    pooled_output: torch.FloatTensor | None = None
    modality_states: torch.FloatTensor | None = None
    modality_present: torch.BoolTensor | None = None


@dataclass
class MTAffectOutput(ModelOutput):
    """Output of [`MTAffectForMultiTaskAffect`].

    Args:
        loss: `torch.FloatTensor` of shape `()`, returned when labels are given.
            `sum over heads h of task_loss_weights[task(h)] * (gold_h + λ * weak_h)`. A zero that
            is still connected to the graph when no label in the batch is known.
        head_outputs: `dict[str, torch.FloatTensor]`.
            One entry per head (`config.label_spaces`), keyed `"<task>/<space>"`: `[B, K]` logits
            of a `classes` or `multilabel` head (in the order of its `labels`), `[B]` logit of a
            `binary` head, `[B]` score of a `score` head (inside its `score_range`).
        pooled_output: `torch.FloatTensor` of shape `(batch_size, hidden_size)`.
            The fused representation the heads read.
        task_losses: `dict[str, torch.FloatTensor]`.
            Unweighted mean loss per term, for logging: `"<head>"` (gold) and `"<head>_weak"`
            (weak, only when λ > 0). A term appears only if the batch has at least one known
            label for it.
    """

    loss: torch.FloatTensor | None = None
    head_outputs: dict[str, torch.Tensor] | None = None
    pooled_output: torch.FloatTensor | None = None
    task_losses: dict[str, torch.Tensor] | None = None

    def _single(self, task: str) -> torch.Tensor | None:
        found = [value for key, value in (self.head_outputs or {}).items() if key.split("/")[0] == task]
        if len(found) > 1:
            raise ValueError(f"The model has several {task} heads; read head_outputs['{task}/<space>'].")
        return found[0] if found else None

    @property
    def emotion_logits(self) -> torch.Tensor | None:
        """The emotion head's logits when the model has exactly one emotion head."""
        return self._single("emotion")

    @property
    def sentiment_score(self) -> torch.Tensor | None:
        """The ``sentiment/score`` head's scores (None without a score head)."""
        return (self.head_outputs or {}).get("sentiment/score")

    @property
    def sarcasm_logits(self) -> torch.Tensor | None:
        """The sarcasm head's logit."""
        return self._single("sarcasm")


# --------------------------------------------------------------------------------------
# 1. Input projection: feature set x modality -> shared space
# --------------------------------------------------------------------------------------


class MTAffectFeatureProjection(nn.Module):
    """Map one feature set's modality (``[B, T, dim]``) into the shared space (``[B, T, hidden]``).

    The LayerNorm puts features of very different scales (GloVe vs. COVAREP vs. Facet) on
    a common footing before the shared encoder sees them.
    """

    def __init__(self, input_dim: int, config: MTAffectConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(input_dim, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.norm(self.dense(features)))


# --------------------------------------------------------------------------------------
# 2. Modality encoders: [B, T, hidden] + mask [B, T] -> [B, hidden]
# --------------------------------------------------------------------------------------


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the frames where ``mask`` is True; an all-masked row gives zeros, not NaN."""
    weights = mask.unsqueeze(-1).to(values.dtype)
    return (values * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def sinusoidal_positions(length: int, dim: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Fixed sine/cosine position codes (``[length, dim]``): no length limit, nothing to learn."""
    half = (dim + 1) // 2
    positions = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    frequencies = torch.exp(torch.arange(half, device=device, dtype=torch.float32) * (-math.log(10000.0) / half))
    angles = positions * frequencies
    return torch.cat([angles.sin(), angles.cos()], dim=1)[:, :dim].to(dtype)


class MTAffectTransformerEncoder(nn.Module):
    """Transformer encoder over the frames, read out through a learned [CLS] token.

    The [CLS] token is always attendable, so a row whose frames are all padding still has
    one key to attend to and attention never sees an all-masked row (which would be NaN).
    """

    def __init__(self, config: MTAffectConfig) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        layer = nn.TransformerEncoderLayer(
            d_model=config.hidden_size,
            nhead=config.num_heads,
            dim_feedforward=config.intermediate_size,
            dropout=config.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, config.num_layers, norm=nn.LayerNorm(config.hidden_size), enable_nested_tensor=False
        )

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch_size, length, dim = hidden.shape
        hidden = hidden + sinusoidal_positions(length, dim, hidden.device, hidden.dtype)
        hidden = torch.cat([self.cls_token.expand(batch_size, -1, -1), hidden], dim=1)
        keep = torch.cat([mask.new_ones(batch_size, 1), mask], dim=1)
        return self.encoder(hidden, src_key_padding_mask=~keep)[:, 0]


class MTAffectBiLSTMEncoder(nn.Module):
    """Bidirectional LSTM over the real frames; the final states of both directions are the output."""

    def __init__(self, config: MTAffectConfig) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            config.hidden_size,
            config.hidden_size // 2,
            num_layers=config.num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # Packing skips padding; an empty row is run over one (padding) frame and replaced by
        # the missing-modality embedding afterwards. Frames must be left-aligned (the collator's layout).
        lengths = mask.sum(1).clamp(min=1).cpu()
        packed = pack_padded_sequence(hidden, lengths, batch_first=True, enforce_sorted=False)
        _, (final, _) = self.lstm(packed)
        return torch.cat([final[-2], final[-1]], dim=-1)


class MTAffectMeanEncoder(nn.Module):
    """Masked mean of the frames followed by ``num_layers`` feed-forward layers: the simplest baseline."""

    def __init__(self, config: MTAffectConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(config.num_layers):
            layers += [nn.Linear(config.hidden_size, config.hidden_size), nn.GELU(), nn.Dropout(config.dropout)]
        self.mlp = nn.Sequential(*layers)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.mlp(masked_mean(hidden, mask))


MODALITY_ENCODERS: dict[str, type[nn.Module]] = {
    "transformer": MTAffectTransformerEncoder,
    "bilstm": MTAffectBiLSTMEncoder,
    "mean": MTAffectMeanEncoder,
}


# --------------------------------------------------------------------------------------
# 4. Fusion: modality vectors [B, M, hidden] -> pooled [B, hidden]
# --------------------------------------------------------------------------------------


def _mixable(present: torch.Tensor) -> torch.Tensor:
    """Modalities to combine per row: the present ones, or all of them (their missing embeddings) if none is."""
    return present | ~present.any(dim=1, keepdim=True)


class MTAffectConcatFusion(nn.Module):
    """Concatenate every modality's vector (missing ones hold the learned embedding) and mix with an MLP."""

    def __init__(self, config: MTAffectConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(len(config.fusion_inputs) * config.hidden_size, config.hidden_size)
        self.activation = nn.GELU()
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, modality_states: torch.Tensor, modality_present: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.activation(self.dense(modality_states.flatten(1))))


class MTAffectLateFusion(nn.Module):
    """Late fusion mixes per-modality *logits* in the heads; the pooled vector is the mean of the present modalities."""

    def __init__(self, config: MTAffectConfig) -> None:
        super().__init__()

    def forward(self, modality_states: torch.Tensor, modality_present: torch.Tensor) -> torch.Tensor:
        weights = _mixable(modality_present).unsqueeze(-1).to(modality_states.dtype)
        return (modality_states * weights).sum(1) / weights.sum(1)


FUSIONS: dict[str, type[nn.Module]] = {"concat": MTAffectConcatFusion, "late": MTAffectLateFusion}


# --------------------------------------------------------------------------------------
# Pre-trained model base
# --------------------------------------------------------------------------------------


class MTAffectPreTrainedModel(PreTrainedModel):
    """Weight initialisation and the `save_pretrained`/`from_pretrained` plumbing shared by the mtaffect models."""

    config_class = MTAffectConfig
    base_model_prefix = "mtaffect"
    main_input_name = "text_features"
    # Only pretrained encoders checkpoint their layers (transformers raises for a model without one).
    supports_gradient_checkpointing = True
    _no_split_modules = ["MTAffectTransformerEncoder", "MTAffectBiLSTMEncoder", "MTAffectMeanEncoder"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        # Linear, LayerNorm, LSTM and attention layers get transformers' defaults; the
        # parameters this file creates by hand are initialised here.
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, MTAffectTransformerEncoder):
            init.normal_(module.cls_token, mean=0.0, std=std)
        elif isinstance(module, MTAffectModel):
            init.normal_(module.missing_modality_embeddings, mean=0.0, std=std)
            if module.missing_context_embeddings is not None:
                init.normal_(module.missing_context_embeddings, mean=0.0, std=std)
        elif isinstance(module, MTAffectTaskHead) and module.modality_weights is not None:
            init.zeros_(module.modality_weights)
        elif isinstance(module, MTAffectPretrainedEncoder) and module.layer_weights is not None:
            init.zeros_(module.layer_weights)

    # ---- pretrained encoders: weights, processors, LoRA ---------------------------------

    @classmethod
    def from_encoders(cls, config: MTAffectConfig, **kwargs: Any) -> MTAffectPreTrainedModel:
        """A new model whose pretrained encoders hold their pretrained weights (the rest is freshly initialised).

        ``cls(config)`` builds the encoders from their stored configs with random weights (that is
        what ``from_pretrained`` fills from a checkpoint); this loads each encoder's weights and its
        tokenizer / feature extractor from ``config.pretrained_encoders[m]['name_or_path']``.
        ``kwargs`` go to ``AutoModel.from_pretrained`` (e.g. ``local_files_only=True``, ``revision``).

        Examples:
            >>> from mtaffect.data.extract.text import default_text_model_path
            >>> config = MTAffectConfig(pretrained_encoders={"text": str(default_text_model_path())},
            ...                         hidden_size=16, tasks=["sentiment"])
            >>> model = MTAffectForMultiTaskAffect.from_encoders(config)
            >>> batch = model.processors["text"](["So happy!"], return_tensors="pt")
            >>> model(text_input_ids=batch["input_ids"], text_attention_mask=batch["attention_mask"]).sentiment_score.shape
            torch.Size([1])
        """
        model = cls(config)
        model.load_pretrained_encoders(**kwargs)
        return model

    def load_pretrained_encoders(self, **kwargs: Any) -> None:
        """Load every pretrained encoder's weights and processor from its ``name_or_path`` (see ``from_encoders``)."""
        from transformers import AutoModel

        for modality, spec in self.config.pretrained_encoders.items():
            name = spec.get("name_or_path")
            if not name:
                raise ValueError(f"pretrained_encoders[{modality!r}] has no name_or_path to load weights from.")
            name = resolve_encoder_path(name)  # a Hub id an installed package ships: its offline copy
            pretrained = AutoModel.from_pretrained(name, **kwargs)
            encoder = self.get_pretrained_encoder(modality)
            encoder.load_base_state_dict(pretrained.state_dict())
            encoder.to(device=self.device)
            self.processors[modality] = _load_processor(modality, name, kwargs)

    def load_encoder_processors(self, **kwargs: Any) -> None:
        """Load each encoder's tokenizer / feature extractor (not its weights) from its ``name_or_path``.

        For weights restored some other way than ``from_pretrained`` (a state dict, a safetensors
        blob): the processor never trains, so the encoder's own source gives back the one it had.
        """
        for modality, spec in self.config.pretrained_encoders.items():
            name = spec.get("name_or_path")
            if not name:
                raise ValueError(f"pretrained_encoders[{modality!r}] has no name_or_path to load its processor from.")
            self.processors[modality] = _load_processor(modality, resolve_encoder_path(name), kwargs)

    def get_pretrained_encoder(self, modality: str) -> MTAffectPretrainedEncoder:
        """The ``MTAffectPretrainedEncoder`` reading ``modality``."""
        base = getattr(self, self.base_model_prefix, self)
        encoders = getattr(base, "pretrained_encoders", {})
        if modality not in encoders:
            raise ValueError(f"This model has no pretrained {modality} encoder (config.pretrained_encoders).")
        return encoders[modality]

    @property
    def processors(self) -> dict[str, Any]:
        """Modality -> tokenizer / feature extractor of its pretrained encoder (saved with the model)."""
        if "_processors" not in self.__dict__:
            self.__dict__["_processors"] = {}
        return self.__dict__["_processors"]

    def merge_lora(self) -> None:
        """Fold every LoRA adapter into its encoder's weights; the config then records a plain (frozen) encoder.

        Saving afterwards writes a checkpoint without adapters, loadable without peft.
        """
        for modality, spec in self.config.pretrained_encoders.items():
            if spec["finetune"] == "lora":
                self.get_pretrained_encoder(modality).merge_lora()
                self.config.pretrained_encoders = {
                    **self.config.pretrained_encoders,
                    modality: {**spec, "finetune": "frozen", "merged_lora": dict(spec.get("lora") or {})},
                }

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Any, *args: Any, **kwargs: Any) -> MTAffectPreTrainedModel:
        """Load as transformers does, plus the encoders' tokenizer / feature extractor saved beside the weights."""
        loaded = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded  # output_loading_info=True gives (model, info)
        for modality, spec in getattr(model.config, "pretrained_encoders", {}).items():
            if spec.get("adapter_only"):
                # An adapter-only checkpoint: the frozen base weights come from the encoder's own source.
                from transformers import AutoModel

                hub = {k: kwargs[k] for k in _HUB_KWARGS if k in kwargs}
                base = AutoModel.from_pretrained(resolve_encoder_path(spec["name_or_path"]), **hub)
                model.get_pretrained_encoder(modality).load_base_state_dict(base.state_dict())
                model.config.pretrained_encoders = {
                    **model.config.pretrained_encoders, modality: {k: v for k, v in spec.items() if k != "adapter_only"}
                }
            hub = {k: kwargs[k] for k in _HUB_KWARGS if k in kwargs}
            try:
                processor = _load_processor(modality, str(pretrained_model_name_or_path), hub, PROCESSOR_FOLDERS[modality])
            except (OSError, ValueError):
                name = spec.get("name_or_path")
                logger.warning(
                    f"{pretrained_model_name_or_path} holds no {PROCESSOR_FOLDERS[modality]}/; loading the {modality} "
                    f"processor from the encoder's own {name!r}."
                )
                processor = _load_processor(modality, resolve_encoder_path(name), hub)
            model.processors[modality] = processor
        return loaded

    def save_pretrained(self, save_directory: Any, *args: Any, adapter_only: bool = False, **kwargs: Any) -> None:
        """Save as transformers does, plus the encoders' processors and the generated model card (``README.md``).

        With ``adapter_only=True`` a model with LoRA encoders leaves their pretrained (frozen)
        weights out: the checkpoint holds the adapters and everything after the encoders, and
        ``from_pretrained`` reads the base weights from each encoder's ``name_or_path`` again.
        """
        lora = [m for m, spec in self.config.pretrained_encoders.items() if spec["finetune"] == "lora"]
        saved_specs = self.config.pretrained_encoders
        if adapter_only:
            if not lora:
                raise ValueError("adapter_only=True needs a LoRA encoder (pretrained_encoders[m]['finetune'] == 'lora').")
            prefixes = tuple(f"{self.base_model_prefix}.pretrained_encoders.{m}.model." for m in lora)
            kwargs["state_dict"] = {
                key: value for key, value in self.state_dict().items() if not key.startswith(prefixes) or "lora_" in key
            }
            self.config.pretrained_encoders = {
                m: {**spec, "adapter_only": m in lora} for m, spec in saved_specs.items()
            }
        try:
            super().save_pretrained(save_directory, *args, **kwargs)
        finally:
            self.config.pretrained_encoders = saved_specs
        if kwargs.get("is_main_process", True):
            self.save_processors(save_directory)
        try:  # a trust_remote_code copy of this file runs without mtaffect: no card then
            from mtaffect.modelcard import write_model_card
        except ImportError:
            return
        if kwargs.get("is_main_process", True):
            write_model_card(self, save_directory)

    def save_processors(self, save_directory: Any) -> None:
        """Write each encoder's tokenizer / feature extractor into ``<save_directory>/<modality>_processor/``.

        ``save_pretrained`` calls it; so does any other way of saving the weights (the study's
        working copies of its teachers), so that the folder can feed raw inputs again.
        """
        import os

        for modality, processor in self.processors.items():
            processor.save_pretrained(os.path.join(save_directory, PROCESSOR_FOLDERS[modality]))

    def load_processors(self, save_directory: Any) -> None:
        """Read back what ``save_processors`` wrote, for every encoder of the config (an error names a missing one)."""
        import os

        for modality in self.config.pretrained_encoders:
            folder = os.path.join(save_directory, PROCESSOR_FOLDERS[modality])
            if not os.path.isdir(folder):
                raise FileNotFoundError(
                    f"{folder}: the {modality} encoder's processor was not saved with these weights "
                    "(save them with save_pretrained, or call save_processors(folder))."
                )
            self.processors[modality] = _load_processor(modality, folder, {})

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> Any:
        """Push weights, code and our card (transformers' own push would replace the card)."""
        try:
            from mtaffect.modelcard import push_to_hub
        except ImportError:
            return super().push_to_hub(repo_id, **kwargs)
        return push_to_hub(self, repo_id, **kwargs)


#: Subfolder of a checkpoint holding each encoder modality's tokenizer / feature extractor.
PROCESSOR_FOLDERS: dict[str, str] = {"text": "text_processor", "audio": "audio_processor"}
_HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision")


def _load_processor(modality: str, name_or_path: str, kwargs: Mapping[str, Any], subfolder: str = "") -> Any:
    """The tokenizer (text) or feature extractor (audio) of an encoder, from a folder or Hub id."""
    from transformers import AutoFeatureExtractor, AutoTokenizer

    hub = {k: kwargs[k] for k in _HUB_KWARGS if k in kwargs}
    if subfolder:
        hub["subfolder"] = subfolder
    if modality == "text":
        return AutoTokenizer.from_pretrained(name_or_path, **hub)
    return AutoFeatureExtractor.from_pretrained(name_or_path, **hub)


# --------------------------------------------------------------------------------------
# 3. The shared encoder: projections -> modality encoders -> missing modalities -> fusion
# --------------------------------------------------------------------------------------


class MTAffectModel(MTAffectPreTrainedModel):
    """The shared multimodal encoder: features of any known feature set -> one pooled vector per example.

    Examples:
        >>> config = MTAffectConfig(feature_sets={"cmu": {"text": 300, "audio": 74}}, hidden_size=16)
        >>> model = MTAffectModel(config)
        >>> out = model("cmu", text_features=torch.randn(2, 5, 300), audio_features=torch.randn(2, 7, 74))
        >>> out.pooled_output.shape, out.modality_present.tolist()
        (torch.Size([2, 16]), [[True, True], [True, True]])
    """

    def __init__(self, config: MTAffectConfig) -> None:
        super().__init__(config)
        if not config.feature_sets and not config.pretrained_encoders:
            raise ValueError(
                "config.feature_sets is empty: the model needs the dims of at least one feature set (or a "
                "pretrained encoder, config.pretrained_encoders), e.g. "
                "MTAffectConfig(feature_sets={'cmu': {'text': 300, 'audio': 74, 'visual': 35}}) or "
                "MTAffectConfig.from_corpora(corpora)."
            )
        self.projections = nn.ModuleDict(
            {
                name: nn.ModuleDict({m: MTAffectFeatureProjection(dim, config) for m, dim in dims.items()})
                for name, dims in config.feature_sets.items()
            }
        )
        encoded = config.pretrained_encoders
        self.encoders = nn.ModuleDict(
            {m: MODALITY_ENCODERS[config.encoder_type](config) for m in config.modalities if m not in encoded}
        )
        # Modalities read from raw inputs: the pretrained encoder replaces projection + frame encoder.
        self.pretrained_encoders = nn.ModuleDict(
            {m: MTAffectPretrainedEncoder(m, spec, config.hidden_size, config.dropout) for m, spec in encoded.items()}
        )
        self.missing_modality_embeddings = nn.Parameter(torch.zeros(len(config.modalities), config.hidden_size))
        # Context turns (only with config.context): an offset embedding per position -K..-1, 1..J, a
        # same-speaker marker, and a "no context" embedding per context modality. None without context,
        # so a context-free model has exactly the parameters it always had.
        self.missing_context_embeddings: nn.Parameter | None = None
        self.context_position_embeddings: nn.Embedding | None = None
        self.context_speaker_embeddings: nn.Embedding | None = None
        if config.context_modalities:
            width = config.context["past"] + config.context["future"]
            self.context_position_embeddings = nn.Embedding(width, config.hidden_size)
            if config.context["speakers"]:
                self.context_speaker_embeddings = nn.Embedding(2, config.hidden_size)
            self.missing_context_embeddings = nn.Parameter(
                torch.zeros(len(config.context_modalities), config.hidden_size)
            )
        self.fusion = FUSIONS[config.fusion](config)
        self.post_init()

    def forward(
        self,
        feature_set: str | None = None,
        text_features: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
        audio_features: torch.Tensor | None = None,
        audio_mask: torch.Tensor | None = None,
        visual_features: torch.Tensor | None = None,
        visual_mask: torch.Tensor | None = None,
        text_input_ids: torch.Tensor | None = None,
        text_attention_mask: torch.Tensor | None = None,
        text_encoder_states: torch.Tensor | None = None,
        text_encoder_hidden: torch.Tensor | None = None,
        text_token_type_ids: torch.Tensor | None = None,
        audio_input_values: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        audio_encoder_states: torch.Tensor | None = None,
        context_text_features: torch.Tensor | None = None,
        context_text_mask: torch.Tensor | None = None,
        context_audio_features: torch.Tensor | None = None,
        context_audio_mask: torch.Tensor | None = None,
        context_visual_features: torch.Tensor | None = None,
        context_visual_mask: torch.Tensor | None = None,
        context_position: torch.Tensor | None = None,
        context_same_speaker: torch.Tensor | None = None,
        return_dict: bool | None = None,
    ) -> MTAffectModelOutput | tuple[torch.Tensor, ...]:
        r"""
        Args:
            feature_set: `str`.
                Name of the feature set all examples of the batch use (a key of `config.feature_sets`).
            text_features: `torch.FloatTensor` of shape `(batch_size, length, dim)`.
                Left-aligned, zero-padded feature sequences; omit a modality the corpus lacks.
            text_mask: `torch.BoolTensor` of shape `(batch_size, length)`.
                True on real frames; defaults to all True. An all-False row counts as missing.
            audio_features: `torch.FloatTensor` of shape `(batch_size, length, dim)`.
                As `text_features`, for audio.
            audio_mask: `torch.BoolTensor` of shape `(batch_size, length)`.
                As `text_mask`, for audio.
            visual_features: `torch.FloatTensor` of shape `(batch_size, length, dim)`.
                As `text_features`, for the visual modality.
            visual_mask: `torch.BoolTensor` of shape `(batch_size, length)`.
                As `text_mask`, for the visual modality.
            text_input_ids: `torch.LongTensor` of shape `(batch_size, tokens)`.
                Token ids for the pretrained text encoder (its own tokenizer's, `model.processors["text"]`).
            text_attention_mask: `torch.LongTensor` of shape `(batch_size, tokens)`.
                1 on real tokens. An all-zero row counts as a missing text modality.
            text_encoder_states: `torch.FloatTensor` of shape `(batch_size, layers, encoder_hidden)`.
                Cached pooled states of a frozen text encoder (`MTAffectPretrainedEncoder.encode`), used
                instead of `text_input_ids`.
            text_encoder_hidden: `torch.FloatTensor` of shape `(batch_size, tokens, encoder_hidden)`.
                Cached boundary hidden states of a `top-K` text encoder (`MTAffectPretrainedEncoder.encode_lower`,
                masked by `text_attention_mask`), used instead of `text_input_ids`: only the top K layers run.
            text_token_type_ids: `torch.LongTensor` of shape `(batch_size, tokens)`.
                Segment ids of `text_input_ids` when the tokenizer pairs context turns with the utterance.
            audio_input_values: `torch.FloatTensor` of shape `(batch_size, samples)`.
                Waveforms for the pretrained audio encoder, as its feature extractor gives them.
            audio_attention_mask: `torch.LongTensor` of shape `(batch_size, samples)`.
                1 on real samples. An all-zero row counts as a missing audio modality.
            audio_encoder_states: `torch.FloatTensor` of shape `(batch_size, layers, encoder_hidden)`.
                As `text_encoder_states`, for audio.
            context_text_features: `torch.FloatTensor` of shape `(batch_size, turns, dim)`.
                One pooled text frame per context turn, oldest first (`config.context`); ignored by a
                model without context.
            context_text_mask: `torch.BoolTensor` of shape `(batch_size, turns)`.
                True on real context turns.
            context_audio_features: `torch.FloatTensor` of shape `(batch_size, turns, dim)`.
                As `context_text_features`, for audio.
            context_audio_mask: `torch.BoolTensor` of shape `(batch_size, turns)`.
                As `context_text_mask`, for audio.
            context_visual_features: `torch.FloatTensor` of shape `(batch_size, turns, dim)`.
                As `context_text_features`, for the visual modality.
            context_visual_mask: `torch.BoolTensor` of shape `(batch_size, turns)`.
                As `context_text_mask`, for the visual modality.
            context_position: `torch.LongTensor` of shape `(batch_size, turns)`.
                Each turn's offset from the utterance (-1 the turn before it, +1 the one after); turns
                beyond the model's `config.context` past / future are left out.
            context_same_speaker: `torch.BoolTensor` of shape `(batch_size, turns)`.
                Whether each turn's speaker is the utterance's.
            return_dict: `bool`.
                Return an `MTAffectModelOutput` (default) or a plain tuple.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if text_encoder_states is None and text_encoder_hidden is not None:
            text_encoder_states = self._encode_upper("text", text_encoder_hidden, text_attention_mask)
        raw = {
            "text": (text_input_ids, text_attention_mask, text_encoder_states),
            "audio": (audio_input_values, audio_attention_mask, audio_encoder_states),
        }
        raw = {m: triple for m, triple in raw.items() if triple[0] is not None or triple[2] is not None}
        for modality in raw:
            if modality not in self.config.pretrained_encoders:
                raise ValueError(
                    f"{encoder_input_key(modality)} was given but this model has no pretrained {modality} encoder "
                    f"(config.pretrained_encoders has {sorted(self.config.pretrained_encoders)}): pass "
                    f"{modality}_features of a feature set instead."
                )
        given = {
            "text": (text_features, text_mask),
            "audio": (audio_features, audio_mask),
            "visual": (visual_features, visual_mask),
        }
        given = {m: pair for m, pair in given.items() if pair[0] is not None}
        if raw and not given:
            # Raw inputs only: the batch's feature set (a corpus name) selects nothing.
            dims: Mapping[str, int] = {}
        else:
            feature_set = _single_feature_set(feature_set)
            dims = self.config.check_feature_set(feature_set)
        if not given and not raw:
            raise ValueError(
                f"No features given: pass at least one of {[f'{m}_features' for m in dims]} "
                f"(feature set {feature_set!r})."
            )
        for modality in given:
            if modality not in dims:
                raise ValueError(
                    f"Feature set {feature_set!r} has no {modality} modality (it has {dims}), but "
                    f"{modality}_features was given: drop it from the batch or register a feature set "
                    "that includes it with model.add_feature_set(name, dims)."
                )
        batch_size = _batch_size(
            {**given, **{m: (ids if ids is not None else cached, None) for m, (ids, _, cached) in raw.items()}}
        )

        states, present = [], []
        for index, modality in enumerate(self.config.modalities):
            missing = self.missing_modality_embeddings[index].expand(batch_size, -1)
            if modality in raw:
                token_types = text_token_type_ids if modality == "text" else None
                pooled, row_present = self._encode_raw(modality, *raw[modality], batch_size, token_types)
                states.append(torch.where(row_present.unsqueeze(-1), pooled, missing))
                present.append(row_present)
                continue
            if modality not in given:
                states.append(missing)
                present.append(torch.zeros(batch_size, dtype=torch.bool, device=missing.device))
                continue
            features, mask = self._prepare(feature_set, dims, modality, *given[modality], batch_size)
            hidden = self.projections[feature_set][modality](features)
            pooled = self.encoders[modality](hidden, mask)
            row_present = mask.any(dim=1)
            states.append(torch.where(row_present.unsqueeze(-1), pooled, missing))
            present.append(row_present)
        context = {
            "text": (context_text_features, context_text_mask),
            "audio": (context_audio_features, context_audio_mask),
            "visual": (context_visual_features, context_visual_mask),
        }
        for index, modality in enumerate(self.config.context_modalities):
            missing = self.missing_context_embeddings[index].expand(batch_size, -1)
            features, mask = context[modality]
            if features is None or modality not in dims:
                states.append(missing)
                present.append(torch.zeros(batch_size, dtype=torch.bool, device=missing.device))
                continue
            pooled, row_present = self._encode_context(
                feature_set, dims, modality, features, mask, context_position, context_same_speaker
            )
            states.append(torch.where(row_present.unsqueeze(-1), pooled, missing))
            present.append(row_present)
        modality_states = torch.stack(states, dim=1)
        modality_present = torch.stack(present, dim=1)
        pooled_output = self.fusion(modality_states, modality_present)

        output = MTAffectModelOutput(
            pooled_output=pooled_output, modality_states=modality_states, modality_present=modality_present
        )
        return output if return_dict else output.to_tuple()

    def _encode_upper(self, modality: str, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """Pooled states of a ``top-K`` encoder from its cached boundary hidden states."""
        if modality not in self.config.pretrained_encoders:
            raise ValueError(f"{modality}_encoder_hidden was given but this model has no pretrained {modality} encoder.")
        encoder = self.pretrained_encoders[modality]
        if encoder.boundary is None:
            raise ValueError(
                f"{modality}_encoder_hidden (cached boundary states) needs a 'top-K' encoder; this one is "
                f"finetune={encoder.finetune!r}: pass {encoder_input_key(modality)} instead."
            )
        if attention_mask is not None:
            attention_mask = attention_mask.to(self.device)
            attention_mask = attention_mask.clone()
            attention_mask[~attention_mask.bool().any(dim=1), 0] = 1  # empty rows: masked out as missing later
        return encoder.encode_upper(hidden.to(device=self.device, dtype=self.dtype), attention_mask)
    def _encode_context(
        self,
        feature_set: str,
        dims: Mapping[str, int],
        modality: str,
        features: torch.Tensor,
        mask: torch.Tensor | None,
        position: torch.Tensor | None,
        same_speaker: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Context vector (``[B, hidden]``) and presence (``[B]``) of one modality's context turns.

        Turns outside ``config.context`` (older than ``past``, later than ``future``) are dropped
        and the rest left-aligned (the BiLSTM packs from the left), then each turn is projected like
        the utterance's frames, marked with its offset and speaker embeddings and read by the
        modality's own encoder.
        """
        past, future = self.config.context["past"], self.config.context["future"]
        expected = dims[modality]
        if features.dim() != 3 or features.shape[-1] != expected:
            raise ValueError(
                f"context_{modality}_features has shape {tuple(features.shape)}, but feature set {feature_set!r} "
                f"expects [batch, turns, {expected}] (one pooled frame per turn, from the same extractor)."
            )
        size, turns = features.shape[:2]
        device = self.device
        mask = torch.ones(size, turns, dtype=torch.bool) if mask is None else mask
        if position is None:
            raise ValueError(
                f"context_{modality}_features needs context_position (each turn's offset from the utterance: "
                "-1 the turn before it), as MTAffectCollator gives it."
            )
        if tuple(mask.shape) != (size, turns) or tuple(position.shape) != (size, turns):
            raise ValueError(
                f"context_{modality}_mask {tuple(mask.shape)} and context_position {tuple(position.shape)} must "
                f"both have the shape [batch, turns] of context_{modality}_features ({size}, {turns})."
            )
        mask, position = mask.to(device=device, dtype=torch.bool), position.to(device=device, dtype=torch.long)
        same = (
            torch.zeros_like(mask) if same_speaker is None else same_speaker.to(device=device, dtype=torch.bool)
        )
        keep = mask & (position != 0) & (position >= -past) & (position <= future)
        # Stable sort of "dropped" flags: the kept turns move to the front, in their order.
        order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices
        keep, position, same = keep.gather(1, order), position.gather(1, order), same.gather(1, order)
        features = features.to(device=device, dtype=self.dtype).gather(1, order.unsqueeze(-1).expand(-1, -1, expected))
        width = max(int(keep.sum(1).max()) if turns else 0, 1)
        if turns == 0:
            features, keep = features.new_zeros(size, 1, expected), keep.new_zeros(size, 1)
            position, same = position.new_zeros(size, 1), same.new_zeros(size, 1)
        features, keep, position, same = features[:, :width], keep[:, :width], position[:, :width], same[:, :width]
        slot = torch.where(position < 0, position + past, position + past - 1).clamp(0, past + future - 1)
        hidden = self.projections[feature_set][modality](features) + self.context_position_embeddings(slot)
        if self.context_speaker_embeddings is not None:
            hidden = hidden + self.context_speaker_embeddings(same.long())
        return self.encoders[modality](hidden, keep), keep.any(dim=1)

    def _encode_raw(
        self,
        modality: str,
        inputs: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
        cached: torch.Tensor | None,
        batch_size: int,
        token_type_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Pretrained-encoder vector (``[B, hidden]``) and presence (``[B]``) of one raw modality."""
        encoder = self.pretrained_encoders[modality]
        if attention_mask is not None:
            attention_mask = attention_mask.to(self.device)
            row_present = attention_mask.bool().any(dim=1)
        else:
            row_present = torch.ones(batch_size, dtype=torch.bool, device=self.device)
        if cached is None:
            inputs = inputs.to(self.device)
            if inputs.is_floating_point():
                inputs = inputs.to(self.dtype)
            if attention_mask is not None and not row_present.all():
                # An empty row (a corpus without this modality in a mixed batch) still runs, on one
                # unmasked position, and is replaced by the missing-modality embedding afterwards.
                attention_mask = attention_mask.clone()
                attention_mask[~row_present, 0] = 1
            # Segment ids only where the tokenizer paired context turns with the utterance.
            extra = (token_type_ids.to(self.device),) if token_type_ids is not None else ()
            cached = encoder.encode(inputs, attention_mask, *extra)
        return encoder(cached.to(device=self.device, dtype=self.dtype)), row_present

    def _prepare(
        self,
        feature_set: str,
        dims: Mapping[str, int],
        modality: str,
        features: torch.Tensor,
        mask: torch.Tensor | None,
        batch_size: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Check shapes against the feature set, default and truncate the mask, move to the model's device/dtype."""
        expected = dims[modality]
        if features.dim() != 3 or features.shape[-1] != expected:
            raise ValueError(
                f"{modality}_features has shape {tuple(features.shape)}, but feature set {feature_set!r} expects "
                f"[batch, length, {expected}]: these features were extracted differently; give their corpus its "
                "own feature_set name and add it with model.add_feature_set(name, dims)."
            )
        if mask is None:
            mask = torch.ones(features.shape[:2], dtype=torch.bool, device=features.device)
        if tuple(mask.shape) != tuple(features.shape[:2]):
            raise ValueError(
                f"{modality}_mask has shape {tuple(mask.shape)}, expected {tuple(features.shape[:2])} "
                f"(batch, length of {modality}_features)."
            )
        if self.config.max_frames is not None:
            features, mask = features[:, : self.config.max_frames], mask[:, : self.config.max_frames]
        if features.shape[1] == 0:
            # A batch whose sequences are all empty: one padding frame keeps every encoder's shapes valid.
            features = features.new_zeros(batch_size, 1, expected)
            mask = mask.new_zeros(batch_size, 1)
        return features.to(device=self.device, dtype=self.dtype), mask.to(device=self.device, dtype=torch.bool)

    def add_feature_set(self, name: str, dims: Mapping[str, int]) -> None:
        """Add an input projection for a new feature set (e.g. to fine-tune on a corpus with other extractors).

        Its modalities must be among ``config.modalities`` (the shared encoders and fusion are
        sized for them). The new projection is freshly initialised and recorded in the config,
        so ``save_pretrained`` keeps it.
        """
        if name in self.config.feature_sets:
            if dict(dims) == self.config.feature_sets[name]:
                return
            raise ValueError(
                f"Feature set {name!r} already exists with dims {self.config.feature_sets[name]}; "
                f"use another name for dims {dict(dims)}."
            )
        checked = _check_feature_sets({name: dims})[name]
        extra = [m for m in checked if m not in self.config.modalities]
        if extra:
            raise ValueError(
                f"Feature set {name!r} has modalities {extra} this model has no encoder for "
                f"(config.modalities={self.config.modalities}); build a new model whose config lists them."
            )
        projections = nn.ModuleDict({m: MTAffectFeatureProjection(dim, self.config) for m, dim in checked.items()})
        projections.apply(self._init_weights)
        self.projections[name] = projections.to(device=self.device, dtype=self.dtype)
        self.config.feature_sets = {**self.config.feature_sets, name: checked}


def _single_feature_set(feature_set: Any) -> str:
    if isinstance(feature_set, str):
        return feature_set
    if isinstance(feature_set, Sequence) and feature_set and all(isinstance(f, str) for f in feature_set):
        names = set(feature_set)
        if len(names) == 1:
            return names.pop()
        raise ValueError(
            f"A batch mixes feature sets {sorted(names)}; batch each feature set separately "
            "(MTAffectCollator and MultiTaskTrainer's sampler do)."
        )
    raise ValueError(f"feature_set must be the name of the batch's feature set (a str), got {feature_set!r}.")


def _batch_size(given: Mapping[str, tuple[torch.Tensor, torch.Tensor | None]]) -> int:
    sizes = {m: int(features.shape[0]) for m, (features, _) in given.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"The modalities of one batch have different batch sizes: {sizes}.")
    return next(iter(sizes.values()))


# --------------------------------------------------------------------------------------
# 5. Task heads
# --------------------------------------------------------------------------------------


class MTAffectTaskHead(nn.Module):
    """Output layer of one task.

    With ``concat`` fusion it reads the pooled vector. With ``late`` fusion it has one layer
    per modality and mixes their logits with learned weights (softmax over the modalities
    present in each example), as the authors' late-fusion baselines do.
    """

    def __init__(self, config: MTAffectConfig, out_features: int) -> None:
        super().__init__()
        self.dropout = nn.Dropout(config.dropout)
        self.modality_weights: nn.Parameter | None = None
        if config.fusion == "late":
            self.modality_heads = nn.ModuleDict(
                {m: nn.Linear(config.hidden_size, out_features) for m in config.fusion_inputs}
            )
            self.modality_weights = nn.Parameter(torch.zeros(len(config.fusion_inputs)))
        else:
            self.dense = nn.Linear(config.hidden_size, out_features)

    def forward(self, encoded: MTAffectModelOutput) -> torch.Tensor:
        if self.modality_weights is None:
            return self.dense(self.dropout(encoded.pooled_output))
        states = encoded.modality_states
        logits = torch.stack(
            [head(self.dropout(states[:, i])) for i, head in enumerate(self.modality_heads.values())], dim=1
        )
        mixable = _mixable(encoded.modality_present)
        weights = self.modality_weights.expand_as(mixable).masked_fill(~mixable, float("-inf")).softmax(dim=-1)
        return (weights.unsqueeze(-1) * logits).sum(dim=1)


# --------------------------------------------------------------------------------------
# 6. Masked losses (pure functions of tensors; every mean runs over known labels only)
# --------------------------------------------------------------------------------------


def masked_emotion_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    label_mask: torch.Tensor,
    multilabel: torch.Tensor,
    row_weight: torch.Tensor | None = None,
    pos_weight: torch.Tensor | None = None,
    single_label_loss: str = "ce",
    soft: bool = False,
    threshold: float = 0.5,
) -> torch.Tensor | None:
    """Emotion loss over the known labels; ``None`` when no label is known.

    * multi-label rows: BCE (with ``pos_weight``) averaged over their known labels;
    * single-label rows: cross-entropy over the softmax of the known labels only (logits of
      labels the corpus does not annotate are left out), averaged over rows.

    A batch mixing both averages the two parts weighted by their number of rows. Targets are
    0/1 (gold), probabilities (``soft=True``: soft BCE / soft CE after renormalising over the
    known labels) or probabilities to binarise at ``threshold`` / arg-max (``soft=False``).
    ``row_weight`` (e.g. teacher confidence) scales each row's terms; the denominators still
    count rows/labels, so a low weight shrinks the loss instead of cancelling out.
    """
    label_mask = label_mask.bool()
    rows = label_mask.any(dim=-1)
    multilabel = multilabel.bool() & rows
    single = rows & ~multilabel
    if single_label_loss == "bce":
        multilabel, single = rows, torch.zeros_like(rows)
    targets = targets.to(logits.dtype)
    weight = row_weight.to(logits.dtype) if row_weight is not None else torch.ones_like(targets[:, 0])

    parts: list[tuple[torch.Tensor, int]] = []  # (mean loss, number of rows)
    if multilabel.any():
        known = label_mask[multilabel]
        target = targets[multilabel]
        if not soft:
            target = (target >= threshold).to(logits.dtype)
        losses = F.binary_cross_entropy_with_logits(
            logits[multilabel], target, pos_weight=pos_weight, reduction="none"
        )
        losses = losses * weight[multilabel].unsqueeze(-1)
        parts.append((losses[known].sum() / known.sum(), int(multilabel.sum())))
    if single.any():
        known = label_mask[single]
        target = targets[single] * known
        usable = target.sum(dim=-1) > 0  # a row whose known labels all have zero mass carries no label
        if usable.any():
            known, target = known[usable], target[usable]
            log_probs = logits[single][usable].masked_fill(~known, float("-inf")).log_softmax(dim=-1)
            log_probs = log_probs.masked_fill(~known, 0.0)
            if soft:
                losses = -(target / target.sum(dim=-1, keepdim=True) * log_probs).sum(dim=-1)
            else:
                losses = -log_probs.gather(1, target.argmax(dim=-1, keepdim=True)).squeeze(1)
            losses = losses * weight[single][usable]
            parts.append((losses.mean(), int(usable.sum())))
    if not parts:
        return None
    total_rows = sum(n for _, n in parts)
    return sum(loss * (n / total_rows) for loss, n in parts)


def masked_l1_loss(
    prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, row_weight: torch.Tensor | None = None
) -> torch.Tensor | None:
    """Mean absolute error over the rows where ``mask`` is True; ``None`` when none is."""
    mask = mask.bool()
    if not mask.any():
        return None
    losses = (prediction - target.to(prediction.dtype)).abs()
    if row_weight is not None:
        losses = losses * row_weight
    return losses[mask].mean()


def masked_binary_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    row_weight: torch.Tensor | None = None,
    soft: bool = True,
    threshold: float = 0.5,
) -> torch.Tensor | None:
    """BCE over the rows where ``mask`` is True (targets binarised at ``threshold`` unless ``soft``)."""
    mask = mask.bool()
    if not mask.any():
        return None
    target = target.to(logits.dtype)
    if not soft:
        target = (target >= threshold).to(logits.dtype)
    losses = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    if row_weight is not None:
        losses = losses * row_weight
    return losses[mask].mean()


def masked_regression_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    row_weight: torch.Tensor | None = None,
    loss: str = "l1",
) -> torch.Tensor | None:
    """Mean absolute (``l1``) or squared (``mse``) error over the rows where ``mask`` is True."""
    mask = mask.bool()
    if not mask.any():
        return None
    error = prediction - target.to(prediction.dtype)
    losses = error.abs() if loss == "l1" else error.square()
    if row_weight is not None:
        losses = losses * row_weight
    return losses[mask].mean()


def masked_class_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    row_weight: torch.Tensor | None = None,
) -> torch.Tensor | None:
    """Softmax cross-entropy over the rows where ``mask`` is True.

    ``target`` is class ids ``[B]`` (gold) or class probabilities ``[B, K]`` (a soft weak label).
    """
    mask = mask.bool()
    if not mask.any():
        return None
    log_probs = logits.log_softmax(dim=-1)
    if target.dim() == 1:
        losses = -log_probs.gather(1, target.long().clamp(min=0).unsqueeze(1)).squeeze(1)
    else:
        target = target.to(logits.dtype)
        total = target.sum(dim=-1, keepdim=True).clamp(min=1e-12)
        losses = -(target / total * log_probs).sum(dim=-1)
    if row_weight is not None:
        losses = losses * row_weight
    return losses[mask].mean()


# --------------------------------------------------------------------------------------
# The multi-task model
# --------------------------------------------------------------------------------------


def head_module_name(head: str) -> str:
    """``"sentiment/polarity"`` -> ``"sentiment__polarity"`` (a ModuleDict key cannot hold '.', and '/' reads badly)."""
    return head.replace("/", "__")


class MTAffectForMultiTaskAffect(MTAffectPreTrainedModel):
    """The shared encoder plus one head per (task, label space), trained with masked gold and weak labels.

    ``config.label_spaces`` lists the heads: e.g. ``sentiment/score`` (a [-3, 3] score, L1),
    ``sentiment/polarity`` (3 classes, cross-entropy), ``emotion/meld`` (MELD's 7 labels, CE),
    ``emotion/mosei`` (6 labels, BCE). A row trains the head of its own label space: sentiment
    rows by ``sentiment_num_classes`` (0: the score head, K: the K-class polarity head),
    emotion rows by the union labels their ``emotion_mask`` switches on (the head whose labels
    are exactly those, else the smallest head covering them). A single-task model (a teacher)
    has the heads of one task.

    ``forward`` takes exactly the batches of ``mtaffect.data.MTAffectCollator``.

    Examples:
        >>> config = MTAffectConfig(feature_sets={"cmu": {"text": 300}}, hidden_size=16, tasks=["sentiment"])
        >>> model = MTAffectForMultiTaskAffect(config)
        >>> out = model("cmu", text_features=torch.randn(2, 4, 300), sentiment=torch.tensor([1.0, -2.0]))
        >>> sorted(out.task_losses), out.sentiment_score.shape, out.emotion_logits is None
        (['sentiment/score'], torch.Size([2]), True)
    """

    # forward computes its own (already averaged) loss: the Trainer must not rescale it.
    accepts_loss_kwargs = False

    def __init__(self, config: MTAffectConfig) -> None:
        super().__init__(config)
        self.mtaffect = MTAffectModel(config)
        self.heads = nn.ModuleDict(
            {
                head_module_name(key): MTAffectTaskHead(config, _num_outputs(space))
                for key, space in config.label_spaces.items()
            }
        )
        union = list(config.emotion_labels)
        emotion_heads = config.heads_of("emotion")
        # Row routing for emotion: each head's label set as a mask over the union vector (a plain
        # list, not a buffer: from_pretrained would not restore a non-persistent buffer's values).
        self._emotion_sets = [[name in space["union"] for name in union] for space in emotion_heads.values()]
        self._emotion_index = {key: [union.index(name) for name in space["union"]] for key, space in emotion_heads.items()}
        self.post_init()

    def forward(
        self,
        feature_set: str | None = None,
        text_features: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
        audio_features: torch.Tensor | None = None,
        audio_mask: torch.Tensor | None = None,
        visual_features: torch.Tensor | None = None,
        visual_mask: torch.Tensor | None = None,
        text_input_ids: torch.Tensor | None = None,
        text_attention_mask: torch.Tensor | None = None,
        text_encoder_states: torch.Tensor | None = None,
        text_encoder_hidden: torch.Tensor | None = None,
        text_token_type_ids: torch.Tensor | None = None,
        audio_input_values: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        audio_encoder_states: torch.Tensor | None = None,
        context_text_features: torch.Tensor | None = None,
        context_text_mask: torch.Tensor | None = None,
        context_audio_features: torch.Tensor | None = None,
        context_audio_mask: torch.Tensor | None = None,
        context_visual_features: torch.Tensor | None = None,
        context_visual_mask: torch.Tensor | None = None,
        context_position: torch.Tensor | None = None,
        context_same_speaker: torch.Tensor | None = None,
        emotion: torch.Tensor | None = None,
        emotion_mask: torch.Tensor | None = None,
        emotion_multilabel: torch.Tensor | None = None,
        sentiment: torch.Tensor | None = None,
        sentiment_mask: torch.Tensor | None = None,
        sentiment_class: torch.Tensor | None = None,
        sentiment_num_classes: torch.Tensor | None = None,
        sarcasm: torch.Tensor | None = None,
        sarcasm_mask: torch.Tensor | None = None,
        emotion_weak: torch.Tensor | None = None,
        emotion_weak_mask: torch.Tensor | None = None,
        emotion_weak_multilabel: torch.Tensor | None = None,
        emotion_weak_confidence: torch.Tensor | None = None,
        sentiment_weak: torch.Tensor | None = None,
        sentiment_weak_mask: torch.Tensor | None = None,
        sentiment_weak_confidence: torch.Tensor | None = None,
        sentiment_weak_probs: torch.Tensor | None = None,
        sentiment_weak_num_classes: torch.Tensor | None = None,
        sarcasm_weak: torch.Tensor | None = None,
        sarcasm_weak_mask: torch.Tensor | None = None,
        sarcasm_weak_confidence: torch.Tensor | None = None,
        return_dict: bool | None = None,
    ) -> MTAffectOutput | tuple[Any, ...]:
        r"""
        Args:
            feature_set: `str`.
                Name of the feature set all examples of the batch use (a key of `config.feature_sets`).
            text_features: `torch.FloatTensor` of shape `(batch_size, length, dim)`.
                The text sequences, as in `MTAffectModel.forward`.
            text_mask: `torch.BoolTensor` of shape `(batch_size, length)`.
                True on real text frames, as in `MTAffectModel.forward`.
            audio_features: `torch.FloatTensor` of shape `(batch_size, length, dim)`.
                The audio sequences, as in `MTAffectModel.forward`.
            audio_mask: `torch.BoolTensor` of shape `(batch_size, length)`.
                True on real audio frames, as in `MTAffectModel.forward`.
            visual_features: `torch.FloatTensor` of shape `(batch_size, length, dim)`.
                The visual sequences, as in `MTAffectModel.forward`.
            visual_mask: `torch.BoolTensor` of shape `(batch_size, length)`.
                True on real visual frames, as in `MTAffectModel.forward`.
            text_input_ids: `torch.LongTensor` of shape `(batch_size, tokens)`.
                Token ids for the pretrained text encoder, as in `MTAffectModel.forward`.
            text_attention_mask: `torch.LongTensor` of shape `(batch_size, tokens)`.
                Attention mask of `text_input_ids`.
            text_encoder_states: `torch.FloatTensor` of shape `(batch_size, layers, encoder_hidden)`.
                Cached frozen text-encoder states, as in `MTAffectModel.forward`.
            text_encoder_hidden: `torch.FloatTensor` of shape `(batch_size, tokens, encoder_hidden)`.
                Cached boundary states of a `top-K` text encoder, as in `MTAffectModel.forward`.
            text_token_type_ids: `torch.LongTensor` of shape `(batch_size, tokens)`.
                Segment ids of `text_input_ids`, as in `MTAffectModel.forward`.
            audio_input_values: `torch.FloatTensor` of shape `(batch_size, samples)`.
                Waveforms for the pretrained audio encoder, as in `MTAffectModel.forward`.
            audio_attention_mask: `torch.LongTensor` of shape `(batch_size, samples)`.
                Attention mask of `audio_input_values`.
            audio_encoder_states: `torch.FloatTensor` of shape `(batch_size, layers, encoder_hidden)`.
                Cached frozen audio-encoder states, as in `MTAffectModel.forward`.
            context_text_features: `torch.FloatTensor` of shape `(batch_size, turns, dim)`.
                Pooled text features of the context turns, as in `MTAffectModel.forward`.
            context_text_mask: `torch.BoolTensor` of shape `(batch_size, turns)`.
                True on real context turns.
            context_audio_features: `torch.FloatTensor` of shape `(batch_size, turns, dim)`.
                As `context_text_features`, for audio.
            context_audio_mask: `torch.BoolTensor` of shape `(batch_size, turns)`.
                As `context_text_mask`, for audio.
            context_visual_features: `torch.FloatTensor` of shape `(batch_size, turns, dim)`.
                As `context_text_features`, for the visual modality.
            context_visual_mask: `torch.BoolTensor` of shape `(batch_size, turns)`.
                As `context_text_mask`, for the visual modality.
            context_position: `torch.LongTensor` of shape `(batch_size, turns)`.
                Each context turn's offset from the utterance, as in `MTAffectModel.forward`.
            context_same_speaker: `torch.BoolTensor` of shape `(batch_size, turns)`.
                Whether each context turn's speaker is the utterance's.
            emotion: `torch.FloatTensor` of shape `(batch_size, num_emotion_labels)`.
                Gold emotion over the union vector: one-hot (single-label rows) or multi-hot.
            emotion_mask: `torch.BoolTensor` of shape `(batch_size, num_emotion_labels)`.
                Which union labels each row's corpus annotates (its label set, which picks its head);
                defaults to all when `emotion` is given.
            emotion_multilabel: `torch.BoolTensor` of shape `(batch_size,)`.
                BCE (True) or softmax CE (False, the default) for each row.
            sentiment: `torch.FloatTensor` of shape `(batch_size,)`.
                Gold sentiment score (score rows).
            sentiment_mask: `torch.BoolTensor` of shape `(batch_size,)`.
                Where sentiment is known (defaults to all when `sentiment` is given).
            sentiment_class: `torch.LongTensor` of shape `(batch_size,)`.
                Gold polarity class (polarity rows; -1 on score rows).
            sentiment_num_classes: `torch.LongTensor` of shape `(batch_size,)`.
                0 on score rows, else the number of classes of the row's polarity space (which
                picks its head). Defaults to 0 (every row a score).
            sarcasm: `torch.FloatTensor` of shape `(batch_size,)`.
                Gold sarcasm (0/1).
            sarcasm_mask: `torch.BoolTensor` of shape `(batch_size,)`.
                Where sarcasm is known.
            emotion_weak: `torch.FloatTensor` of shape `(batch_size, num_emotion_labels)`.
                A teacher's emotion probabilities; all weak terms are weighted by `config.weak_loss_weight`.
            emotion_weak_mask: `torch.BoolTensor` of shape `(batch_size, num_emotion_labels)`.
                Where the weak emotion labels are known (the teacher's label set).
            emotion_weak_multilabel: `torch.BoolTensor` of shape `(batch_size,)`.
                Whether the teacher's emotion labels are multi-label (BCE) or one distribution (CE).
            emotion_weak_confidence: `torch.FloatTensor` of shape `(batch_size,)`.
                The teacher's confidence per row (weights the loss if `config.weak_use_confidence`).
            sentiment_weak: `torch.FloatTensor` of shape `(batch_size,)`.
                A score teacher's sentiment score.
            sentiment_weak_mask: `torch.BoolTensor` of shape `(batch_size,)`.
                Where the weak sentiment label is known.
            sentiment_weak_confidence: `torch.FloatTensor` of shape `(batch_size,)`.
                The teacher's confidence per row.
            sentiment_weak_probs: `torch.FloatTensor` of shape `(batch_size, 7)`.
                A polarity teacher's class probabilities (first `sentiment_weak_num_classes` entries).
            sentiment_weak_num_classes: `torch.LongTensor` of shape `(batch_size,)`.
                0 where the weak label is a score, else the classes of the teacher's polarity space.
            sarcasm_weak: `torch.FloatTensor` of shape `(batch_size,)`.
                A teacher's sarcasm probability.
            sarcasm_weak_mask: `torch.BoolTensor` of shape `(batch_size,)`.
                Where the weak sarcasm label is known.
            sarcasm_weak_confidence: `torch.FloatTensor` of shape `(batch_size,)`.
                The teacher's confidence per row.
            return_dict: `bool`.
                Return an [`MTAffectOutput`][mtaffect.modeling_mtaffect.MTAffectOutput] (default) or a plain tuple.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        encoded = self.mtaffect(
            feature_set,
            text_features=text_features,
            text_mask=text_mask,
            audio_features=audio_features,
            audio_mask=audio_mask,
            visual_features=visual_features,
            visual_mask=visual_mask,
            text_input_ids=text_input_ids,
            text_attention_mask=text_attention_mask,
            text_encoder_states=text_encoder_states,
            text_encoder_hidden=text_encoder_hidden,
            text_token_type_ids=text_token_type_ids,
            audio_input_values=audio_input_values,
            audio_attention_mask=audio_attention_mask,
            audio_encoder_states=audio_encoder_states,
            context_text_features=context_text_features,
            context_text_mask=context_text_mask,
            context_audio_features=context_audio_features,
            context_audio_mask=context_audio_mask,
            context_visual_features=context_visual_features,
            context_visual_mask=context_visual_mask,
            context_position=context_position,
            context_same_speaker=context_same_speaker,
            return_dict=True,
        )
        raw = {key: self.heads[head_module_name(key)](encoded) for key in self.config.label_spaces}
        head_outputs: dict[str, torch.Tensor] = {}
        for key, space in self.config.label_spaces.items():
            value = raw[key]
            if space["kind"] == "score":
                low, high = space["score_range"]
                value = (low + high) / 2 + (high - low) / 2 * torch.tanh(value.squeeze(-1))
            elif space["kind"] == "binary":
                value = value.squeeze(-1)
            head_outputs[key] = value

        labels = {
            "emotion": (emotion, emotion_mask, emotion_multilabel),
            "sentiment": (sentiment, sentiment_mask, sentiment_class, sentiment_num_classes),
            "sarcasm": (sarcasm, sarcasm_mask),
            "emotion_weak": (emotion_weak, emotion_weak_mask, emotion_weak_multilabel, emotion_weak_confidence),
            "sentiment_weak": (
                sentiment_weak, sentiment_weak_mask, sentiment_weak_confidence, sentiment_weak_probs, sentiment_weak_num_classes
            ),
            "sarcasm_weak": (sarcasm_weak, sarcasm_weak_mask, sarcasm_weak_confidence),
        }
        loss, task_losses = None, None
        if any(labels[key][0] is not None for task in self.config.tasks for key in (task, f"{task}_weak")) or (
            sentiment_class is not None and "sentiment" in self.config.tasks
        ):
            task_losses = self._head_losses(head_outputs, labels)
            # Zero times every head's output keeps each head in the graph (with an exact zero
            # gradient) when its labels are all missing, so DDP and the Trainer always get a
            # differentiable loss.
            loss = sum(0.0 * output.sum() for output in raw.values())
            weak_weight = self.config.weak_loss_weight
            for key, space in self.config.label_spaces.items():
                weight = (self.config.task_loss_weights or {}).get(space["task"], 1.0)
                if key in task_losses:
                    loss = loss + weight * task_losses[key]
                if f"{key}_weak" in task_losses:
                    loss = loss + weight * weak_weight * task_losses[f"{key}_weak"]

        output = MTAffectOutput(
            loss=loss,
            head_outputs=head_outputs,
            pooled_output=encoded.pooled_output,
            task_losses=task_losses,
        )
        return output if return_dict else output.to_tuple()

    # ----------------------------------------------------------------------------------
    # Routing rows to heads, and the masked losses
    # ----------------------------------------------------------------------------------

    def route_emotion(self, mask: torch.Tensor) -> torch.Tensor:
        """Index into ``config.heads_of("emotion")`` of each row's head (-1: no emotion label / no head).

        A row's head is the one whose label set equals the union labels its mask switches on,
        else the smallest head whose set covers them (weak labels converted from another set).
        """
        mask = mask.bool()
        sets = torch.tensor(self._emotion_sets, dtype=torch.bool, device=mask.device).reshape(-1, mask.shape[-1])
        if sets.shape[0] == 0:
            return torch.full(mask.shape[:1], -1, dtype=torch.long, device=mask.device)
        exact = (mask.unsqueeze(1) == sets.unsqueeze(0)).all(-1)
        covering = (~mask.unsqueeze(1) | sets.unsqueeze(0)).all(-1)
        sizes = sets.sum(-1).float()
        big = float(sets.shape[1] + 1)
        cost = torch.where(exact, torch.zeros_like(sizes), torch.where(covering, sizes, torch.full_like(sizes, big)))
        best_cost, best = cost.min(dim=1)
        return torch.where((best_cost < big) & mask.any(-1), best, torch.full_like(best, -1))

    def _head_losses(
        self, outputs: dict[str, torch.Tensor], labels: dict[str, tuple[torch.Tensor | None, ...]]
    ) -> dict[str, torch.Tensor]:
        """Mean gold and weak loss per head, for the terms with at least one known label."""
        config = self.config
        reference = next(iter(outputs.values()))
        batch_size, device = reference.shape[0], reference.device
        union_size = config.num_emotion_labels

        def tensor(value: torch.Tensor | None, shape: tuple[int, ...], fill: float | bool | int) -> torch.Tensor:
            if value is None:
                dtype = torch.bool if isinstance(fill, bool) else torch.long if isinstance(fill, int) else reference.dtype
                return torch.full(shape, fill, dtype=dtype, device=device)
            if tuple(value.shape) != shape:
                raise ValueError(
                    f"A label tensor has shape {tuple(value.shape)}, expected {shape} "
                    f"(batch size, and {union_size} union emotion labels where per label)."
                )
            value = value.to(device)
            return value.bool() if isinstance(fill, bool) else value

        row = (batch_size,)
        emotion_shape = (batch_size, union_size)
        soft = config.weak_label_mode == "soft"
        threshold = config.weak_hard_threshold
        weak = config.weak_loss_weight > 0
        losses: dict[str, torch.Tensor | None] = {}

        def weak_rows(mask: torch.Tensor | None, confidence: torch.Tensor | None, shape: tuple[int, ...]):
            """Known weak labels above the confidence threshold, and the per-row weight."""
            known = tensor(mask, shape, True)
            confidence = tensor(confidence, row, 1.0).to(reference.dtype)
            keep = confidence >= config.weak_confidence_threshold
            known = known & (keep.unsqueeze(-1) if known.dim() == 2 else keep)
            return known, (confidence if config.weak_use_confidence else None)

        emotion_heads = list(config.heads_of("emotion"))
        if emotion_heads:
            pos_weight = None
            if config.emotion_pos_weight is not None:
                pos_weight = torch.tensor(config.emotion_pos_weight, dtype=reference.dtype, device=device)
            value, mask, multilabel = labels["emotion"]
            gold = None
            if value is not None:
                gold = (tensor(value, emotion_shape, 0.0), tensor(mask, emotion_shape, True), tensor(multilabel, row, False), None)
            value, mask, multilabel, confidence = labels["emotion_weak"]
            weak_part = None
            if weak and value is not None:
                known, weight = weak_rows(mask, confidence, emotion_shape)
                weak_part = (tensor(value, emotion_shape, 0.0), known, tensor(multilabel, row, False), weight)
            for suffix, part, is_soft in (("", gold, True), ("_weak", weak_part, soft)):
                if part is None:
                    continue
                values, known, rows_multilabel, weight = part
                route = self.route_emotion(known)
                for h, key in enumerate(emotion_heads):
                    rows = route == h
                    if not rows.any():
                        continue
                    index = self._emotion_index[key]
                    head_mask = known[:, index] & rows.unsqueeze(-1)
                    losses[key + suffix] = masked_emotion_loss(
                        outputs[key],
                        values[:, index],
                        head_mask,
                        rows_multilabel,
                        row_weight=weight,
                        pos_weight=pos_weight[index] if pos_weight is not None else None,
                        single_label_loss=config.emotion_single_label_loss,
                        soft=is_soft,
                        threshold=threshold,
                    )
        sentiment_heads = config.heads_of("sentiment")
        if sentiment_heads:
            value, mask, classes, num_classes = labels["sentiment"]
            known = tensor(mask, row, True) if (value is not None or classes is not None) else None
            counts = tensor(num_classes, row, 0)
            if classes is not None and num_classes is None:
                # Legacy batches (no sentiment_num_classes): a class >= 0 marks a 3-class polarity row.
                counts = torch.where(tensor(classes, row, -1) >= 0, torch.full_like(counts, 3), counts)
            weak_value, weak_mask, weak_confidence, weak_probs, weak_counts = labels["sentiment_weak"]
            weak_known = weight = None
            if weak and (weak_value is not None or weak_probs is not None):
                weak_known, weight = weak_rows(weak_mask, weak_confidence, row)
                weak_counts = tensor(weak_counts, row, 0)
            for key, space in sentiment_heads.items():
                k = 0 if space["kind"] == "score" else len(space["labels"])
                if known is not None:
                    rows = known & (counts == k)
                    if k == 0 and value is not None:
                        losses[key] = masked_regression_loss(outputs[key], tensor(value, row, 0.0), rows, loss=space["loss"])
                    elif k and classes is not None:
                        losses[key] = masked_class_loss(outputs[key], tensor(classes, row, -1), rows)
                if weak_known is not None:
                    rows = weak_known & (weak_counts == k)
                    if k == 0 and weak_value is not None:
                        losses[key + "_weak"] = masked_regression_loss(
                            outputs[key], tensor(weak_value, row, 0.0), rows, weight, loss=space["loss"]
                        )
                    elif k and weak_probs is not None:
                        target = weak_probs.to(device)[:, :k]
                        if not soft:
                            target = target.argmax(dim=-1)
                        losses[key + "_weak"] = masked_class_loss(outputs[key], target, rows, weight)
        for key in config.heads_of("sarcasm"):
            logits = outputs[key]
            value, mask = labels["sarcasm"]
            if value is not None:
                losses[key] = masked_binary_loss(logits, tensor(value, row, 0.0), tensor(mask, row, True))
            value, mask, confidence = labels["sarcasm_weak"]
            if weak and value is not None:
                known, weight = weak_rows(mask, confidence, row)
                losses[key + "_weak"] = masked_binary_loss(
                    logits, tensor(value, row, 0.0), known, weight, soft=soft, threshold=threshold
                )
        return {name: value for name, value in losses.items() if value is not None}

    # ----------------------------------------------------------------------------------
    # Inference helpers
    # ----------------------------------------------------------------------------------

    def add_feature_set(self, name: str, dims: Mapping[str, int]) -> None:
        """Add an input projection for a new feature set; see [`MTAffectModel.add_feature_set`][mtaffect.modeling_mtaffect.MTAffectModel.add_feature_set]."""
        self.mtaffect.add_feature_set(name, dims)

    @torch.no_grad()
    def predict_proba(self, batch: Mapping[str, Any], heads: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Per head, probabilities (class and multi-label heads, sarcasm) or scores (score heads).

        Returns a dict head name -> tensor: ``[B, K]`` softmax for a ``classes`` head (MELD's 7
        emotions, 3 polarity classes), ``[B, K]`` sigmoids for a ``multilabel`` head (MOSEI),
        ``[B]`` P(positive) for a ``binary`` head, ``[B]`` the score for a ``score`` head.
        ``heads`` restricts the heads (default: all). Label keys of the batch are ignored; the
        model runs in eval mode and is restored to its previous mode afterwards.
        """
        inputs = {"feature_set": batch.get("feature_set")}
        raw_keys = [
            key for m in ENCODER_INPUT_NAMES
            for key in (encoder_input_key(m), encoder_mask_key(m), encoder_states_key(m), encoder_hidden_key(m))
        ]
        raw_keys.append("text_token_type_ids")
        for key in raw_keys:
            if batch.get(key) is not None:
                inputs[key] = torch.as_tensor(batch[key]).to(self.device)
        for modality in MODALITIES:
            for key in (f"{modality}_features", f"{modality}_mask"):
                if batch.get(key) is not None:
                    inputs[key] = torch.as_tensor(batch[key]).to(self.device)
        context_keys = ("context_position", "context_same_speaker")
        for key in (*(f"context_{m}_{part}" for m in MODALITIES for part in ("features", "mask")), *context_keys):
            if batch.get(key) is not None:
                inputs[key] = torch.as_tensor(batch[key]).to(self.device)
        chosen = self._check_heads(heads)
        was_training = self.training
        self.eval()
        try:
            output = self(**inputs, return_dict=True)
        finally:
            self.train(was_training)
        result: dict[str, torch.Tensor] = {}
        for key in chosen:
            kind, value = self.config.label_spaces[key]["kind"], output.head_outputs[key]
            if kind == "classes":
                value = value.softmax(dim=-1)
            elif kind in ("multilabel", "binary"):
                value = value.sigmoid()
            result[key] = value
        return result

    def _check_heads(self, heads: Sequence[str] | None) -> list[str]:
        if heads is None:
            return list(self.config.label_spaces)
        resolved = []
        for head in heads:
            if head in self.config.label_spaces:
                resolved.append(head)
            elif len(self.config.heads_of(head)) >= 1:  # a task name: all its heads
                resolved += list(self.config.heads_of(head))
            else:
                raise ValueError(f"Unknown head {head!r}: this model has {list(self.config.label_spaces)}.")
        return resolved

    def predict(
        self, batch: Mapping[str, Any], heads: Sequence[str] | None = None, threshold: float = 0.5
    ) -> list[dict[str, Any]]:
        """Labelled predictions in each head's own label names, one dict per example of a collated batch.

        Keys are task names when the model has one head for the task (``"emotion"``), else head
        names (``"emotion/meld"``, ``"emotion/emorynlp"``): ``config.prediction_keys(heads)``. Values:

        * a ``classes`` head: ``{"label": top label, "scores": {label: probability}}`` (MELD's
          labels read ``joy``, EmoryNLP's ``Joyful``);
        * a ``multilabel`` head: ``{"label": top label, "labels": [labels with p >= threshold], "scores": {...}}``;
        * a ``score`` head: ``{"score": float, "label": its 3-class polarity}`` (negative below -0.5,
          positive above 0.5, else neutral: ``mtaffect.tasks.score_to_polarity``'s rule);
        * a ``binary`` head: ``{"score": P(positive), "label": P >= threshold}``.
        """
        probabilities = self.predict_proba(batch, heads=heads)
        columns = {key: value.detach().cpu().tolist() for key, value in probabilities.items()}
        size = len(next(iter(columns.values())))
        names = self.config.prediction_keys(columns)
        predictions = []
        for i in range(size):
            example: dict[str, Any] = {}
            for key, values in columns.items():
                space = self.config.label_spaces[key]
                name = names[key]
                if space["kind"] == "score":
                    example[name] = {"score": values[i], "label": _polarity_of(values[i])}
                elif space["kind"] == "binary":
                    example[name] = {"score": values[i], "label": values[i] >= threshold}
                else:
                    scores = dict(zip(space["labels"], values[i]))
                    top = max(scores, key=scores.get)
                    example[name] = {"label": top, "scores": scores}
                    if space["kind"] == "multilabel":
                        example[name]["labels"] = [label for label, p in scores.items() if p >= threshold]
            predictions.append(example)
        return predictions


def _polarity_of(score: float) -> str:
    """The 3-class view of a score (``mtaffect.tasks.score_to_polarity``; a test keeps them equal)."""
    return "negative" if score < -0.5 else "positive" if score > 0.5 else "neutral"


def _num_outputs(space: Mapping[str, Any]) -> int:
    return 1 if space["kind"] in ("score", "binary") else len(space["labels"])


# `save_pretrained` copies this file (and the configuration) next to the weights and writes
# `auto_map`, so `AutoModel.from_pretrained(path, trust_remote_code=True)` works without mtaffect.
MTAffectForMultiTaskAffect.register_for_auto_class("AutoModel")

__all__ = [
    "MTAffectForMultiTaskAffect",
    "MTAffectModel",
    "MTAffectModelOutput",
    "MTAffectOutput",
    "MTAffectPreTrainedModel",
    "masked_binary_loss",
    "masked_class_loss",
    "masked_emotion_loss",
    "masked_l1_loss",
    "masked_regression_loss",
]
